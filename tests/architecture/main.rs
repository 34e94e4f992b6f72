//! The architecture test (rust-analyzer's `tidy`, for our layers): it reads the rules in
//! `docs/architecture.md` (the fenced `architecture-rules` block) and fails, naming the file
//! and the import, when the code breaks one:
//!
//! - `layers CRATE: a b > c > d`: the top-level modules of the crate, top layer first; a
//!   module imports only from its own layer or below, and every module is in a layer.
//! - `never CRATE: a::b -> c`: no module at or under `a::b` imports from `c` or below it.
//! - `only PATH: place, place`: the crate `PATH` (`axum`, `sea_orm`) is named only in files
//!   under these places (`crate-dir/src/folder`, a file, or a whole crate directory).
//! - `deps CRATE: not a b`: the crate's `[dependencies]` do not include these.
//!
//! And, for every crate of the workspace, without a rule to write: **no import circles**.
//! Within each folder, the modules it holds (files, and sub-folders taken whole) depend on
//! each other without a circle; a folder's own `mod.rs` and its children may use each
//! other (the folder is one unit to the rest).
//!
//! Imports are read with `syn` from every path in the code (`use` trees, expressions,
//! types, and paths inside macro calls), resolved through `crate::`, `self::`, `super::`,
//! child modules, and in a binary the library's own name.

#![allow(clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use proc_macro2::{TokenStream, TokenTree};
use syn::visit::Visit;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

// ------------------------------------------------------------------------------- the rules

/// A `never` rule: no module at or under the first imports from the second or below it.
type Never = (Vec<String>, Vec<String>);

#[derive(Debug, Default)]
struct Rules {
    /// crate → layers, top first; each layer a set of top-level module names.
    layers: BTreeMap<String, Vec<Vec<String>>>,
    /// crate → (from, to) module paths.
    never: BTreeMap<String, Vec<Never>>,
    /// external crate name → the places allowed to name it.
    only: BTreeMap<String, Vec<String>>,
    /// crate → dependencies it must not have.
    deps: BTreeMap<String, Vec<String>>,
}

fn module_path(text: &str) -> Vec<String> {
    text.split("::")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn read_rules() -> Rules {
    let doc = std::fs::read_to_string(root().join("docs/architecture.md"))
        .expect("docs/architecture.md is readable");
    let block = doc
        .split("```architecture-rules")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/architecture.md has an `architecture-rules` block");
    let mut rules = Rules::default();
    for line in block.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (head, body) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("rule without ':': {line}"));
        let (kind, subject) = head
            .trim()
            .split_once(' ')
            .unwrap_or_else(|| panic!("rule without a subject: {line}"));
        let subject = subject.trim().to_owned();
        match kind {
            "layers" => {
                let layers = body
                    .split('>')
                    .map(|layer| layer.split_whitespace().map(str::to_owned).collect())
                    .collect();
                rules.layers.insert(subject, layers);
            }
            "never" => {
                let (from, to) = body
                    .split_once("->")
                    .unwrap_or_else(|| panic!("`never` rule without '->': {line}"));
                rules
                    .never
                    .entry(subject)
                    .or_default()
                    .push((module_path(from), module_path(to)));
            }
            "only" => {
                let places = body.split(',').map(|p| p.trim().to_owned()).collect();
                rules.only.insert(subject, places);
            }
            "deps" => {
                let names = body
                    .trim()
                    .strip_prefix("not ")
                    .unwrap_or_else(|| panic!("`deps` rule is `deps CRATE: not a b`: {line}"));
                rules.deps.insert(
                    subject,
                    names.split_whitespace().map(str::to_owned).collect(),
                );
            }
            other => panic!("unknown rule kind {other:?}: {line}"),
        }
    }
    rules
}

// ------------------------------------------------------------------------------- the code

/// One crate target (a library or a binary) of a workspace package.
#[derive(Debug)]
struct Target {
    /// The package name (`lanyard-idp`).
    package: String,
    /// file (relative to the workspace root) → its module path in the target.
    files: BTreeMap<String, Vec<String>>,
    /// The library's name as code names it (`lanyard_idp`), for binaries that use it.
    lib_name: String,
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn packages() -> Vec<(String, PathBuf)> {
    let root = root();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .expect("crates/ is readable")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("Cargo.toml").exists())
        .collect();
    dirs.push(root.join("migrations"));
    dirs.sort();
    dirs.into_iter()
        .map(|dir| {
            let manifest: toml::Table = std::fs::read_to_string(dir.join("Cargo.toml"))
                .expect("Cargo.toml is readable")
                .parse()
                .expect("Cargo.toml parses");
            let name = manifest["package"]["name"]
                .as_str()
                .expect("package.name")
                .to_owned();
            (name, dir)
        })
        .collect()
}

/// The targets of a package: its library (`src/lib.rs`, every file under `src/` not of a
/// binary) and each binary (`src/main.rs`, `src/bin/*.rs`) as a module `main` of its own.
fn targets() -> Vec<Target> {
    let root = root();
    let mut targets = Vec::new();
    for (package, dir) in packages() {
        let mut files = Vec::new();
        rust_files(&dir.join("src"), &mut files);
        let mut modules = BTreeMap::new();
        for file in files {
            let rel = file
                .strip_prefix(dir.join("src"))
                .unwrap_or(&file)
                .to_string_lossy()
                .into_owned();
            let rel_to_root = file
                .strip_prefix(&root)
                .unwrap_or(&file)
                .to_string_lossy()
                .into_owned();
            let path: Vec<String> = if rel == "main.rs" || rel.starts_with("bin/") {
                vec!["main".to_owned()]
            } else {
                let rel = rel.trim_end_matches(".rs");
                let mut parts: Vec<String> = rel.split('/').map(str::to_owned).collect();
                if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
                    parts.pop();
                }
                parts
            };
            modules.insert(rel_to_root, path);
        }
        targets.push(Target {
            lib_name: package.replace('-', "_"),
            package,
            files: modules,
        });
    }
    targets
}

/// One import: the module it names, and what it was (for the message).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Import {
    to: Vec<String>,
    text: String,
}

/// Collects the paths one file names, resolved to absolute module paths of its crate (or
/// left as written, first segment an external crate).
struct Collector<'a> {
    /// The module the file is (plus the inline modules we are inside).
    current: Vec<String>,
    /// Child modules declared in the file: a path may start with one.
    children: BTreeSet<String>,
    lib_name: &'a str,
    is_binary: bool,
    /// The depth of the file's own module (deeper: inside an inline module).
    depth: usize,
    /// Resolved paths within the crate.
    internal: Vec<Import>,
    /// Every path's first segment as written (external crates such as `axum`).
    roots: BTreeSet<String>,
    /// Collecting a `pub use`: its paths are re-exports, not imports.
    in_reexport: bool,
    /// Names this module re-exports → the absolute path they stand for.
    reexports: BTreeMap<String, Vec<String>>,
}

impl Collector<'_> {
    fn resolve(&mut self, segments: Vec<String>) {
        let Some(first) = segments.first() else {
            return;
        };
        self.roots.insert(first.clone());
        let text = segments.join("::");
        let name = segments.last().cloned().unwrap_or_default();
        let absolute = match first.as_str() {
            "crate" => segments[1..].to_vec(),
            "self" => [self.current.clone(), segments[1..].to_vec()].concat(),
            "super" => {
                let mut base = self.current.clone();
                let mut rest = &segments[..];
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop();
                    rest = &rest[1..];
                }
                [base, rest.to_vec()].concat()
            }
            name if self.is_binary && name == self.lib_name => segments[1..].to_vec(),
            name if self.children.contains(name) => {
                [self.current.clone(), segments.clone()].concat()
            }
            _ => return,
        };
        if self.in_reexport {
            self.reexports.insert(name, absolute);
        } else {
            self.internal.push(Import { to: absolute, text });
        }
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let name = n.ident.to_string();
                let mut full = prefix.clone();
                if name != "self" {
                    full.push(name);
                }
                self.resolve(full);
            }
            syn::UseTree::Rename(r) => {
                let mut full = prefix.clone();
                full.push(r.ident.to_string());
                self.resolve(full);
                if self.in_reexport
                    && let Some(target) = self.reexports.remove(&r.ident.to_string())
                {
                    self.reexports.insert(r.rename.to_string(), target);
                }
            }
            syn::UseTree::Glob(_) => self.resolve(prefix.clone()),
            syn::UseTree::Group(g) => {
                for item in &g.items {
                    self.use_tree(prefix, item);
                }
            }
        }
    }

    /// Paths inside a macro call's tokens: `a::b::c` sequences.
    fn tokens(&mut self, tokens: TokenStream) {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < trees.len() {
            match &trees[i] {
                TokenTree::Group(g) => self.tokens(g.stream()),
                TokenTree::Ident(ident) => {
                    let mut segments = vec![ident.to_string()];
                    let mut j = i;
                    while let (
                        Some(TokenTree::Punct(a)),
                        Some(TokenTree::Punct(b)),
                        Some(TokenTree::Ident(next)),
                    ) = (trees.get(j + 1), trees.get(j + 2), trees.get(j + 3))
                    {
                        if a.as_char() != ':' || b.as_char() != ':' {
                            break;
                        }
                        segments.push(next.to_string());
                        j += 3;
                    }
                    if segments.len() > 1 {
                        self.resolve(segments);
                    }
                    i = j;
                }
                _ => {}
            }
            i += 1;
        }
    }
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        // A re-export is the folder's face, not a use of what it re-exports: an import of the
        // re-exported name counts as an import of where it is defined.
        let reexport = !matches!(item.vis, syn::Visibility::Inherited) && !self.is_binary;
        self.in_reexport = reexport && self.current.len() == self.depth;
        self.use_tree(&mut Vec::new(), &item.tree);
        self.in_reexport = false;
    }

    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {
        // `pub(crate)`, `pub(super)`: a visibility, not an import.
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments = path.segments.iter().map(|s| s.ident.to_string()).collect();
        self.resolve(segments);
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.visit_path(&mac.path);
        self.tokens(mac.tokens.clone());
    }

    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if let Some((_, items)) = &item.content {
            let saved = std::mem::take(&mut self.children);
            self.current.push(item.ident.to_string());
            for item in items {
                if let syn::Item::Mod(m) = item {
                    self.children.insert(m.ident.to_string());
                }
            }
            for item in items {
                self.visit_item(item);
            }
            self.current.pop();
            self.children = saved;
        }
    }
}

/// A file's imports: (the module it names within the crate, the path as written), and the
/// first segments of every path (external crates).
struct FileImports {
    module: Vec<String>,
    internal: Vec<Import>,
    roots: BTreeSet<String>,
    reexports: BTreeMap<String, Vec<String>>,
}

fn read_file(target: &Target, file: &str, module: &[String]) -> FileImports {
    let text = std::fs::read_to_string(root().join(file)).expect("source is readable");
    let syntax = syn::parse_file(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    let is_binary = module == ["main"];
    let mut collector = Collector {
        current: if is_binary {
            Vec::new()
        } else {
            module.to_vec()
        },
        children: syntax
            .items
            .iter()
            .filter_map(|i| match i {
                syn::Item::Mod(m) => Some(m.ident.to_string()),
                _ => None,
            })
            .collect(),
        lib_name: &target.lib_name,
        is_binary,
        depth: if is_binary { 0 } else { module.len() },
        internal: Vec::new(),
        roots: BTreeSet::new(),
        in_reexport: false,
        reexports: BTreeMap::new(),
    };
    collector.visit_file(&syntax);
    FileImports {
        module: module.to_vec(),
        internal: collector.internal,
        roots: collector.roots,
        reexports: collector.reexports,
    }
}

/// The module of the crate a path names: its longest prefix that is a module.
fn module_of(path: &[String], modules: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|prefix| modules.contains(prefix))
}

/// An import of one module by another, within one crate.
#[derive(Debug, Clone)]
struct Edge {
    file: String,
    from: Vec<String>,
    to: Vec<String>,
    text: String,
}

fn edges(target: &Target) -> (Vec<Edge>, BTreeMap<String, BTreeSet<String>>) {
    let mut modules: BTreeSet<Vec<String>> = target.files.values().cloned().collect();
    modules.insert(Vec::new());
    let mut files = Vec::new();
    let mut reexports: BTreeMap<Vec<String>, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for (file, module) in &target.files {
        let imports = read_file(target, file, module);
        reexports.insert(module.clone(), imports.reexports.clone());
        files.push((file.clone(), imports));
    }
    // Where a path really leads: through re-exports to the module that defines the item.
    let follow = |mut path: Vec<String>| {
        for _ in 0..8 {
            let module = module_of(&path, &modules)?;
            let next = path
                .get(module.len())
                .and_then(|name| reexports.get(&module)?.get(name));
            match next {
                Some(target) => path = [target.clone(), path[module.len() + 1..].to_vec()].concat(),
                None => return Some(module),
            }
        }
        module_of(&path, &modules)
    };
    let mut edges = Vec::new();
    let mut roots = BTreeMap::new();
    for (file, imports) in files {
        for import in imports.internal {
            let Some(to) = follow(import.to) else {
                continue;
            };
            if to != imports.module {
                edges.push(Edge {
                    file: file.clone(),
                    from: imports.module.clone(),
                    to,
                    text: import.text,
                });
            }
        }
        roots.insert(file, imports.roots);
    }
    (edges, roots)
}

fn show(module: &[String]) -> String {
    if module.is_empty() {
        "(crate root)".to_owned()
    } else {
        module.join("::")
    }
}

fn is_prefix(prefix: &[String], path: &[String]) -> bool {
    path.len() >= prefix.len() && path[..prefix.len()] == *prefix
}

// ------------------------------------------------------------------------------- the checks

/// One folder's members: member → the members it imports from → the imports behind that.
type Members<'e> = BTreeMap<String, BTreeMap<String, Vec<&'e Edge>>>;

/// Within each folder, its members' dependencies have no circle.
fn circles(target: &Target, edges: &[Edge]) -> Vec<String> {
    let mut graph: BTreeMap<Vec<String>, Members<'_>> = BTreeMap::new();
    for edge in edges {
        if is_prefix(&edge.from, &edge.to) || is_prefix(&edge.to, &edge.from) {
            continue; // a folder and what it holds
        }
        let common = edge
            .from
            .iter()
            .zip(&edge.to)
            .take_while(|(a, b)| a == b)
            .count();
        graph
            .entry(edge.from[..common].to_vec())
            .or_default()
            .entry(edge.from[common].clone())
            .or_default()
            .entry(edge.to[common].clone())
            .or_default()
            .push(edge);
    }
    let mut found = Vec::new();
    for (folder, members) in &graph {
        for component in strongly_connected(members) {
            if component.len() < 2 {
                continue;
            }
            let mut message = format!(
                "{}: import circle in {} between {}:",
                target.package,
                show(folder),
                component.iter().cloned().collect::<Vec<_>>().join(", ")
            );
            let mut lines = BTreeSet::new();
            for from in &component {
                for (to, behind) in &members[from] {
                    if component.contains(to) {
                        lines.extend(behind.iter().map(|e| format!("{} uses {}", e.file, e.text)));
                    }
                }
            }
            for line in lines {
                let _ = write!(message, "\n    {line}");
            }
            found.push(message);
        }
    }
    found
}

/// Tarjan's strongly connected components.
fn strongly_connected(graph: &Members<'_>) -> Vec<BTreeSet<String>> {
    struct State<'g> {
        graph: &'g Members<'g>,
        index: BTreeMap<String, usize>,
        low: BTreeMap<String, usize>,
        stack: Vec<String>,
        on_stack: BTreeSet<String>,
        next: usize,
        out: Vec<BTreeSet<String>>,
    }
    fn visit(s: &mut State<'_>, v: &str) {
        s.index.insert(v.to_owned(), s.next);
        s.low.insert(v.to_owned(), s.next);
        s.next += 1;
        s.stack.push(v.to_owned());
        s.on_stack.insert(v.to_owned());
        let targets: Vec<String> = s
            .graph
            .get(v)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for w in targets {
            if !s.index.contains_key(&w) {
                visit(s, &w);
                let low = s.low[v].min(s.low[&w]);
                s.low.insert(v.to_owned(), low);
            } else if s.on_stack.contains(&w) {
                let low = s.low[v].min(s.index[&w]);
                s.low.insert(v.to_owned(), low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = BTreeSet::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(&w);
                let done = w == v;
                component.insert(w);
                if done {
                    break;
                }
            }
            s.out.push(component);
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    let nodes: Vec<String> = graph.keys().cloned().collect();
    for v in nodes {
        if !state.index.contains_key(&v) {
            visit(&mut state, &v);
        }
    }
    state.out
}

fn layer_breaks(target: &Target, edges: &[Edge], layers: &[Vec<String>]) -> Vec<String> {
    let mut found = Vec::new();
    let layer_of = |name: &str| layers.iter().position(|l| l.iter().any(|m| m == name));
    let mut top: BTreeSet<String> = target
        .files
        .values()
        .filter_map(|m| m.first().cloned())
        .collect();
    top.insert("lib".to_owned());
    for module in &top {
        if layer_of(module).is_none() {
            found.push(format!(
                "{}: the module `{module}` is in no layer of docs/architecture.md",
                target.package
            ));
        }
    }
    for edge in edges {
        // The crate root (lib.rs) declares the modules and re-exports: it is `lib`.
        let name = |m: &[String]| m.first().cloned().unwrap_or_else(|| "lib".to_owned());
        let (from, to) = (name(&edge.from), name(&edge.to));
        if from == to {
            continue;
        }
        if let (Some(a), Some(b)) = (layer_of(&from), layer_of(&to))
            && b < a
        {
            found.push(format!(
                "{}: `{from}` imports from `{to}`, a layer above it ({} uses {})",
                target.package, edge.file, edge.text
            ));
        }
    }
    found
}

fn forbidden(target: &Target, edges: &[Edge], never: &[Never]) -> Vec<String> {
    let mut found = Vec::new();
    for edge in edges {
        for (from, to) in never {
            if is_prefix(from, &edge.from) && is_prefix(to, &edge.to) {
                found.push(format!(
                    "{}: {} must not import from {} ({} uses {})",
                    target.package,
                    show(from),
                    show(to),
                    edge.file,
                    edge.text
                ));
            }
        }
    }
    found
}

fn outside(
    crate_name: &str,
    places: &[String],
    roots: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    roots
        .iter()
        .filter(|(_, names)| names.contains(crate_name))
        .filter(|(file, _)| {
            !places.iter().any(|place| {
                let place = place.trim_end_matches('/');
                file.as_str() == place || file.starts_with(&format!("{place}/"))
            })
        })
        .map(|(file, _)| format!("{file} names `{crate_name}`, which only {places:?} may"))
        .collect()
}

fn dependency_breaks(rules: &Rules) -> Vec<String> {
    let mut found = Vec::new();
    let packages: BTreeMap<String, PathBuf> = packages().into_iter().collect();
    for (package, banned) in &rules.deps {
        let dir = packages
            .get(package)
            .unwrap_or_else(|| panic!("docs/architecture.md names an unknown crate {package}"));
        let manifest: toml::Table = std::fs::read_to_string(dir.join("Cargo.toml"))
            .expect("Cargo.toml is readable")
            .parse()
            .expect("Cargo.toml parses");
        let deps = manifest
            .get("dependencies")
            .and_then(toml::Value::as_table)
            .cloned()
            .unwrap_or_default();
        for name in banned {
            if deps.contains_key(name) {
                found.push(format!("{package} depends on {name}, which it must not"));
            }
        }
    }
    found
}

#[test]
fn the_code_keeps_the_rules_of_docs_architecture_md() {
    let rules = read_rules();
    let targets = targets();
    let mut broken = dependency_breaks(&rules);
    let mut all_roots = BTreeMap::new();
    let known: BTreeSet<&str> = targets.iter().map(|t| t.package.as_str()).collect();
    for name in rules.layers.keys().chain(rules.never.keys()) {
        assert!(
            known.contains(name.as_str()),
            "docs/architecture.md names an unknown crate {name}"
        );
    }
    for target in &targets {
        let (edges, roots) = edges(target);
        all_roots.extend(roots);
        broken.extend(circles(target, &edges));
        if let Some(layers) = rules.layers.get(&target.package) {
            broken.extend(layer_breaks(target, &edges, layers));
        }
        if let Some(never) = rules.never.get(&target.package) {
            broken.extend(forbidden(target, &edges, never));
        }
    }
    // The tests of the workspace (`tests/`, `crates/*/tests`, benches, examples) may name
    // anything: only the crates' sources are held to `only`.
    for (name, places) in &rules.only {
        broken.extend(outside(name, places, &all_roots));
    }
    let broken: BTreeSet<String> = broken.into_iter().collect();
    assert!(
        broken.is_empty(),
        "the code breaks {} rule(s) of docs/architecture.md:\n{}",
        broken.len(),
        broken.into_iter().collect::<Vec<_>>().join("\n")
    );
}

/// The checker itself finds what it is meant to find, on code written for it.
#[test]
fn the_checker_sees_circles_layers_and_paths_in_macros() {
    let dir = std::env::temp_dir().join(format!("lanyard-tidy-{}", std::process::id()));
    let write = |rel: &str, text: &str| {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    };
    write("src/lib.rs", "mod a; mod b; mod c;");
    write("src/a.rs", "use crate::b::X;");
    write("src/b/mod.rs", "mod inner; pub use inner::X;");
    write(
        "src/b/inner.rs",
        "pub struct X; fn f() { tracing::info!(\"{}\", crate::c::Y); }",
    );
    write("src/c.rs", "pub struct Y; fn g() { let _ = super::a::Z; }");
    let files: BTreeMap<String, Vec<String>> = [
        ("src/lib.rs", vec![]),
        ("src/a.rs", vec!["a"]),
        ("src/b/mod.rs", vec!["b"]),
        ("src/b/inner.rs", vec!["b", "inner"]),
        ("src/c.rs", vec!["c"]),
    ]
    .into_iter()
    .map(|(f, m)| {
        (
            dir.join(f).to_string_lossy().into_owned(),
            m.into_iter().map(str::to_owned).collect(),
        )
    })
    .collect();
    let target = Target {
        package: "sample".to_owned(),
        files,
        lib_name: "sample".to_owned(),
    };
    let (edges, _) = edges(&target);
    let found = circles(&target, &edges);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("between a, b, c") && found[0].contains("crate::c::Y"),
        "{}",
        found[0]
    );
    let layers = vec![
        vec!["lib".to_owned()],
        vec!["a".to_owned()],
        vec!["b".to_owned(), "c".to_owned()],
    ];
    let found = layer_breaks(&target, &edges, &layers);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("`c` imports from `a`"), "{}", found[0]);
    let _ = std::fs::remove_dir_all(&dir);
}
