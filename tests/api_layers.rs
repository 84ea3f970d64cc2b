//! The facade's dependency rule (README module map, `src/api/mod.rs`): each layer of
//! `src/api/` imports only the layers before it, so there is no import circle. Read from
//! the source: every `crate::api::X` / `super::X` path in a file is an edge from the
//! file's top-level module to `X`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layers, lowest first; a module may import its own layer's earlier entries
/// (features in this order) and every lower layer.
const ORDER: &[&str] = &[
    "domain",
    "store",
    "config",
    "openapi",
    "throttle",
    "bearer",
    "auth",
    "clients",
    "state",
    "error",
    "call",
    "issuing",
    "customers",
    "embosser",
    "accounts",
    "card_ops",
    "mass",
    "portadores",
    "http",
];

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module of `api` a file belongs to.
fn module_of(root: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(root).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    // `auth_tests.rs` is `auth`'s test module.
    let name = first.trim_end_matches(".rs");
    Some(name.strip_suffix("_tests").unwrap_or(name).to_owned())
}

/// Modules named after `crate::api::` (and `super::` in a top-level file) in `text`.
fn imports(text: &str, top_level_file: bool) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut scan = |prefix: &str| {
        let mut rest = text;
        while let Some(i) = rest.find(prefix) {
            rest = &rest[i + prefix.len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    };
    scan("crate::api::");
    if top_level_file {
        scan("super::");
    }
    out
}

#[test]
fn api_imports_point_down_only() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut all = Vec::new();
    files(&root, &mut all);
    let rank = |m: &str| ORDER.iter().position(|o| *o == m);
    let mut violations = Vec::new();
    let mut seen_modules = BTreeSet::new();
    for file in &all {
        let Some(module) = module_of(&root, file) else {
            continue;
        };
        if module == "mod" {
            continue;
        }
        seen_modules.insert(module.clone());
        let Some(own) = rank(&module) else {
            violations.push(format!("{}: module {module} has no layer", file.display()));
            continue;
        };
        let top_level = file.parent() == Some(root.as_path());
        let text = std::fs::read_to_string(file).unwrap();
        for target in imports(&text, top_level) {
            if target == module || ORDER.iter().all(|o| *o != target) {
                continue;
            }
            if rank(&target).is_some_and(|t| t > own) {
                violations.push(format!(
                    "{}: {module} imports {target}, a later layer",
                    file.display()
                ));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
    // The check sees every layer (a renamed module would silently escape it).
    for m in ORDER {
        assert!(seen_modules.contains(*m), "no module {m} under src/api");
    }
}

#[test]
fn the_check_finds_an_upward_import() {
    // Positive control: a store file naming a feature is reported.
    let found = imports("use crate::api::portadores::common::load;", false);
    assert!(found.contains("portadores"));
    let found = imports("use super::http::Route;", true);
    assert!(found.contains("http"));
}
