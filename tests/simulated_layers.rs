//! No layer imports one above it (`docs/layout.md`): the application layer (`src/app/`) knows
//! neither the scenarios and the command line above it nor the built-in applications beside it,
//! so that a library user's application is built on exactly what the built-in ones are; and the
//! built-in applications (`src/apps/`) know nothing above the application layer either.
//!
//! Every Rust file under a layer's directory is read, comments included (a doc link is a use
//! too), for the crate's modules it names: `crate::m`, each `m` of `crate::{m, …}`, and
//! `super::super`, which climbs out of the layer to the crate's root.

use std::fs;
use std::path::{Path, PathBuf};

/// A layer's directory, and the crate's modules it must not name.
const RULES: &[(&str, &[&str])] = &[
    ("src/app", &["apps", "cli", "scenario", "tools", "report"]),
    ("src/apps", &["cli", "scenario", "tools", "report"]),
];

/// The repository's root.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, in order.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            found.extend(rust_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
    found
}

/// The crate's top-level modules `text` names through `crate::`, with `super::super` as
/// `super::super` itself.
fn named_modules(text: &str) -> Vec<String> {
    let mut named = Vec::new();
    let ident = |rest: &str| -> String {
        rest.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    for (at, _) in text.match_indices("crate::") {
        if text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let rest = text[at + "crate::".len()..].trim_start();
        match rest.strip_prefix('{') {
            Some(group) => {
                let mut depth = 0;
                let mut item_start = true;
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => item_start = true,
                        c if c.is_whitespace() => {}
                        _ if item_start => {
                            named.push(ident(&group[i..]));
                            item_start = false;
                        }
                        _ => {}
                    }
                }
            }
            None => named.push(ident(rest)),
        }
    }
    if text.contains("super::super") {
        named.push("super::super".to_owned());
    }
    named
}

#[test]
fn simulated_the_module_scan_sees_paths_groups_and_climbs() {
    let text = "use crate::app::{Common, Input};\nuse crate::{\n    apps::sum::SumApp,\n    system::{Sim, States},\n};\n/// [`Scenario`](crate::scenario::Scenario)\nuse super::super::cli;\nlet x = $crate::tools; my_crate::cli;";
    assert_eq!(
        named_modules(text),
        ["app", "apps", "system", "scenario", "super::super"]
    );
}

#[test]
fn simulated_no_layer_names_a_layer_above_it() {
    let root = root();
    let mut breaches = Vec::new();
    for (layer, forbidden) in RULES {
        let files = rust_files(&root.join(layer));
        assert!(!files.is_empty(), "{layer} holds no Rust file");
        for file in files {
            let text = fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
            for module in named_modules(&text) {
                if module == "super::super" || forbidden.contains(&module.as_str()) {
                    let shown = file.strip_prefix(&root).unwrap_or(&file).display();
                    breaches.push(format!("{shown} names {module}"));
                }
            }
        }
    }
    assert!(
        breaches.is_empty(),
        "layers import only the ones below them (docs/layout.md):\n{}",
        breaches.join("\n")
    );
}
