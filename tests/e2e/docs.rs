//! The docs stay true: every test that `docs/security.md` names exists, so its tables of
//! conformance modules and attacks cannot point at a test that was renamed or removed.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() && name != "target" && name != "node_modules" {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_test_named_in_the_security_doc_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let doc = std::fs::read_to_string(root.join("docs/security.md")).unwrap();
    let mut files = Vec::new();
    for dir in ["crates", "tests"] {
        sources(&root.join(dir), &mut files);
    }
    let code: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    // Names are written `module::test` in backticks; the last segment is the function.
    let named: Vec<&str> = doc
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| s.contains("::") && !s.contains([' ', '<']))
        .collect();
    assert!(
        named.len() > 100,
        "the doc names its tests: {}",
        named.len()
    );
    let missing: Vec<&str> = named
        .iter()
        .copied()
        .filter(|name| {
            let function = name.rsplit("::").next().unwrap();
            let function = function.trim_end_matches('*').trim_end_matches('_');
            !code.contains(&format!("fn {function}"))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "docs/security.md names tests that do not exist: {missing:?}"
    );
}
