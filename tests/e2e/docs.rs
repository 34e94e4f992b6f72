//! The docs stay true: every test that `docs/security.md` and `docs/protocols.md` name exists,
//! so their tables cannot point at a test that was renamed or removed; and the discovery
//! document advertises exactly what `docs/protocols.md` lists.

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
    tests_named_exist("docs/security.md", 100);
}

#[test]
fn every_test_named_in_the_protocol_table_exists() {
    tests_named_exist("docs/protocols.md", 30);
}

/// Fails naming each test `doc` names (at least `at_least` of them) that no source defines.
fn tests_named_exist(doc_path: &str, at_least: usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let doc = std::fs::read_to_string(root.join(doc_path)).unwrap();
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
        named.len() > at_least,
        "{doc_path} names its tests: {}",
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
        "{doc_path} names tests that do not exist: {missing:?}"
    );
}

/// `docs/protocols.md`'s last section lists each `*_supported` member of the discovery
/// document with its values; the live document has exactly those.
#[tokio::test]
async fn discovery_advertises_what_this_table_says() {
    use crate::support::{Db, Store, TestServer};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let doc = std::fs::read_to_string(root.join("docs/protocols.md")).unwrap();
    let section = doc
        .split("## What discovery advertises")
        .nth(1)
        .expect("the section");
    let listed: std::collections::BTreeMap<String, String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("- `"))
        .filter_map(|l| l.split_once("`: "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let metadata: serde_json::Value = reqwest::get(server.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let shown = |v: &serde_json::Value| match v {
        serde_json::Value::Array(items) => items
            .iter()
            .map(|i| format!("`{}`", i.as_str().unwrap()))
            .collect::<Vec<_>>()
            .join(", "),
        other => format!("`{other}`"),
    };
    let advertised: std::collections::BTreeMap<String, String> = metadata
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.ends_with("_supported"))
        .map(|(k, v)| (k.clone(), shown(v)))
        .collect();
    assert_eq!(listed, advertised, "docs/protocols.md against discovery");
    server.stop().await;
}
