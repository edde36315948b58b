//! The layers of ARCHITECTURE.md hold: every `crate::` path in a source file of the engine
//! names a module of the file's own layer or a lower one, and every module is in the table.
//! The table in ARCHITECTURE.md is the source of truth: this test reads it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Module name to layer, from the table's rows (`| 3 paths | `write/`, `flush`, ... |`).
fn layer_table(doc: &str) -> BTreeMap<String, u32> {
    let mut layers = BTreeMap::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (Some(head), Some(mods)) = (cells.get(1), cells.get(2)) else {
            continue;
        };
        let Some(layer) = head.split_whitespace().next().and_then(|n| n.parse().ok()) else {
            continue;
        };
        // Module names are the backticked words before any parenthesis of that entry.
        let mut depth = 0;
        let mut text = String::new();
        for c in mods.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ if depth == 0 => text.push(c),
                _ => {}
            }
        }
        for (i, part) in text.split('`').enumerate() {
            if i % 2 == 1 {
                let name = part.trim_end_matches('/').trim_end_matches(".rs");
                layers.insert(name.to_string(), layer);
            }
        }
    }
    layers
}

/// Items the crate root re-exports (`pub use module::{A, B};`), to the module they are in.
fn root_reexports(lib_rs: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in lib_rs.lines() {
        let Some(path) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let module: String = path
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let items = path.rsplit("::").next().unwrap_or_default();
        for item in items.trim_matches(|c| "{};".contains(c)).split(',') {
            out.insert(item.trim().to_string(), module.clone());
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a source line names through `crate::` (also inside `use
/// crate::{a, b}` groups).
fn named_modules(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.push(name);
            }
        } else {
            out.push(
                rest.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect(),
            );
        }
    }
    out
}

#[test]
fn every_crate_path_names_a_module_of_the_same_or_a_lower_layer() {
    // Proves the one-way layering over the production code of every source file (test
    // modules at the end of a file are left out): a violation names the file, the line and
    // both layers.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("../../ARCHITECTURE.md")).unwrap();
    let layers = layer_table(&doc);
    assert!(layers.len() > 20, "the table was not read: {layers:?}");
    let src = root.join("src");
    let reexports = root_reexports(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut problems = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" {
            continue; // the crate root declares and re-exports every module
        }
        let Some(&own) = layers.get(&top) else {
            problems.push(format!(
                "module `{top}` is not in ARCHITECTURE.md's layer table"
            ));
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let mut skip_next = false;
        for (n, line) in lines.iter().enumerate() {
            // Test modules (at the end of a file) may reach any layer; production code not.
            // A `#[cfg(test)]` item that is one line (`mod x;`, `use ...;`) is skipped alone.
            if std::mem::take(&mut skip_next) {
                continue;
            }
            if line.trim() == "#[cfg(test)]" {
                match lines.get(n + 1) {
                    Some(next) if next.trim_end().ends_with(';') => {
                        skip_next = true;
                        continue;
                    }
                    _ => break,
                }
            }
            if line.trim_start().starts_with("//") {
                continue;
            }
            for name in named_modules(line) {
                let name = reexports.get(&name).cloned().unwrap_or(name);
                if name.is_empty() || name == "self" || name == top {
                    continue;
                }
                match layers.get(&name) {
                    Some(&theirs) if theirs > own => problems.push(format!(
                        "{}:{}: `{top}` (layer {own}) uses `{name}` (layer {theirs})",
                        rel.display(),
                        n + 1
                    )),
                    Some(_) => {}
                    None => problems.push(format!(
                        "{}:{}: `{name}` is not in ARCHITECTURE.md's layer table",
                        rel.display(),
                        n + 1
                    )),
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_table_reader_reads_modules_and_skips_remarks() {
    // Proves the parser on a row like the real ones: backticked names outside parentheses
    // are modules, with their trailing slash or `.rs` dropped.
    let t =
        layer_table("| 3 paths | `write/`, `read/` (the `Reader`, `DbIterator`), `db.rs` | x |");
    let names: Vec<&str> = t.keys().map(String::as_str).collect();
    assert_eq!(names, ["db", "read", "write"]);
    assert!(t.values().all(|&l| l == 3));
    assert_eq!(
        named_modules("use crate::{a::B, c, d::{e}};"),
        ["a", "c", "d"]
    );
    assert_eq!(
        named_modules("let x = crate::clock::now() + crate::key::f();"),
        ["clock", "key"]
    );
}
