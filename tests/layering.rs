//! The stages' import arrows, checked: data flows one way, no two modules import each other,
//! and the pool never reaches validation (ARCHITECTURE.md draws the same graph).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

/// What each top-level module may import (besides `duration_secs`, the config helper).
const ALLOWED: &[(&str, &[&str])] = &[
    ("tx", &[]),
    ("state", &["tx"]),
    ("validate", &["tx"]),
    ("pool", &["state", "tx"]),
    ("builder", &["pool", "tx"]),
    ("gossip", &["tx"]),
    ("store", &["tx"]),
    ("ingest", &["pool", "state", "tx", "validate"]),
    ("net", &["gossip", "ingest", "pool", "tx"]),
    ("service", &["builder", "ingest", "net", "pool", "state", "store", "tx", "validate"]),
    ("follow", &["service", "state", "tx", "validate"]),
    ("node", &["follow", "gossip", "ingest", "net", "pool", "service", "state", "tx", "validate"]),
    ("sim", &["gossip", "net", "pool", "service", "state", "tx", "validate"]),
];

/// The modules a source text names through `crate::` paths, outside comments.
fn imports(text: &str) -> BTreeSet<String> {
    let code: String = text.lines().map(|line| line.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::b, c, d::{e, f}}`: the first segment of each top-level item.
            let (mut depth, mut item) = (1, String::new());
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 || (depth == 1 && c == ',') {
                    found.extend(first_segment(&item));
                    item.clear();
                    if depth == 0 {
                        break;
                    }
                } else {
                    item.push(c);
                }
            }
        } else {
            found.extend(first_segment(rest));
        }
    }
    found
}

fn first_segment(path: &str) -> Option<String> {
    let name: String = path.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    (!name.is_empty()).then_some(name)
}

fn module_sources(root: &Path, module: &str) -> String {
    let file = root.join(format!("{module}.rs"));
    if file.exists() {
        return std::fs::read_to_string(file).expect("readable");
    }
    let mut text = String::new();
    let mut dirs = vec![root.join(module)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("module folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                text += &std::fs::read_to_string(path).expect("readable");
            }
        }
    }
    text
}

#[test]
fn imports_point_down_the_stages_only() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut graph = BTreeMap::new();
    for (&module, &may) in &allowed {
        let used: BTreeSet<String> = imports(&module_sources(&root, module))
            .into_iter()
            .filter(|m| m != module && allowed.contains_key(m.as_str()))
            .collect();
        let extra: Vec<_> = used.iter().filter(|m| !may.contains(&m.as_str())).collect();
        assert!(extra.is_empty(), "{module} imports {extra:?}, beyond its allowed {may:?}");
        graph.insert(module, used);
    }
    assert!(!graph["pool"].contains("validate"), "the pool must not reach validation");
    for (a, uses) in &graph {
        for b in uses {
            assert!(!graph[b.as_str()].contains(*a), "{a} and {b} import each other");
        }
    }
}

#[test]
fn the_scanner_reads_grouped_and_plain_paths() {
    let text = "use crate::{pool::{A, B}, tx,\n state::C};\n// crate::sim in a comment\nlet x = crate::gossip::f();";
    let found: Vec<_> = imports(text).into_iter().collect();
    assert_eq!(found, ["gossip", "pool", "state", "tx"]);
}
