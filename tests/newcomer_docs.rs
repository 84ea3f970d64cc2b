//! The pages a newcomer reads point at what exists: the module map of
//! `docs/architecture.md` names every file of `src/` and no other, and every relative
//! link of the README, `docs/` and `keys-example/` resolves inside the repository, with
//! nothing pointing outside it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod newcomer;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use newcomer::{between, read, root};

fn source_files(dir: &Path, out: &mut BTreeSet<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let path = e.path();
        if e.file_type().unwrap().is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            let rel = path.strip_prefix(root()).unwrap();
            out.insert(rel.to_string_lossy().into_owned());
        }
    }
}

/// The `.rs` paths named at the start of the map's lines.
fn map_files(map: &str) -> BTreeSet<String> {
    map.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.ends_with(".rs"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn module_map_names_every_source_file() {
    let doc = read("docs/architecture.md");
    let named = map_files(between(&doc, "module-map"));
    let mut tree = BTreeSet::new();
    source_files(&root().join("src"), &mut tree);
    let missing: Vec<_> = tree.difference(&named).collect();
    let stale: Vec<_> = named.difference(&tree).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "docs/architecture.md's module map: add {missing:?}, remove {stale:?}"
    );
    // Positive control: a map without one of the files is caught.
    let mut short = named.clone();
    short.remove("src/hsm/state.rs");
    assert_ne!(short, tree);
}

/// Relative link targets of a Markdown text: `](target)`.
fn links(text: &str) -> Vec<String> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .map(|t| t.split('#').next().unwrap_or_default().to_owned())
        .filter(|t| !t.is_empty() && !t.contains("://"))
        .collect()
}

#[test]
fn links_resolve_inside_the_repository() {
    let mut pages = vec![
        PathBuf::from("README.md"),
        PathBuf::from("keys-example/README.md"),
        PathBuf::from("keys-example/requests/README.md"),
    ];
    for e in std::fs::read_dir(root().join("docs")).unwrap() {
        pages.push(Path::new("docs").join(e.unwrap().file_name()));
    }
    let repo = root().canonicalize().unwrap();
    let mut count = 0;
    for page in pages {
        let text = read(&page.to_string_lossy());
        assert!(
            !text.contains("shared/"),
            "{} names a directory outside the repository",
            page.display()
        );
        let dir = root().join(page.parent().unwrap());
        for target in links(&text) {
            let resolved = dir
                .join(&target)
                .canonicalize()
                .unwrap_or_else(|_| panic!("{}: broken link {target}", page.display()));
            assert!(resolved.starts_with(&repo), "{}: {target}", page.display());
            count += 1;
        }
    }
    assert!(count >= 10, "links found: {count}");
    // Positive control: the extractor finds a link.
    assert_eq!(
        links("see [x](../y.md#z) and [w](http://a)"),
        vec!["../y.md"]
    );
}
