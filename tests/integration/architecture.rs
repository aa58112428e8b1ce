//! The layering the README describes, checked by reading the sources: operators are imported
//! only by operators and dataflows, and no two top-level modules import each other, directly
//! or through others.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The library's top-level modules: `(name, files)`. The binary (`main.rs` and its modules)
/// and `lib.rs` are left out: they sit above everything.
fn modules() -> BTreeMap<String, Vec<PathBuf>> {
    let src = Path::new(ROOT).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let mut out = BTreeMap::new();
    for line in lib.lines() {
        let Some(name) = line
            .strip_prefix("pub mod ")
            .and_then(|l| l.strip_suffix(';'))
        else {
            continue;
        };
        let files = if name == "dataflows" {
            rust_files(&Path::new(ROOT).join("dataflows"))
        } else if src.join(name).is_dir() {
            let mut f = rust_files(&src.join(name));
            f.extend(Some(src.join(format!("{name}.rs"))).filter(|p| p.is_file()));
            f
        } else {
            vec![src.join(format!("{name}.rs"))]
        };
        assert!(!files.is_empty(), "module {name} has no files");
        out.insert(name.to_string(), files);
    }
    assert!(out.len() > 10, "lib.rs lists too few modules: {out:?}");
    out
}

/// The top-level modules `text` names as `crate::<module>` (code, doc links and tests alike).
fn mentioned(text: &str, known: &BTreeMap<String, Vec<PathBuf>>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let before = text[..i].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `shardflow_crate::`
        }
        let rest = &text[i + "crate::".len()..];
        let names = match rest.strip_prefix('{') {
            // `crate::{a::x, b}`: the first name of each item at the group's top level
            Some(group) => group_heads(group),
            None => vec![ident(rest)],
        };
        out.extend(names.into_iter().filter(|n| known.contains_key(n)));
    }
    out
}

/// The identifier `s` starts with.
fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The first name of each item of a `use` group, `group` being the text after its `{`.
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = vec![ident(group.trim_start())];
    let mut depth = 0;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => heads.push(ident(group[i + 1..].trim_start())),
            _ => {}
        }
    }
    heads
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    let mut g = BTreeMap::new();
    for (name, files) in &modules {
        let mut deps = BTreeSet::new();
        for f in files {
            deps.extend(mentioned(&std::fs::read_to_string(f).unwrap(), &modules));
        }
        deps.remove(name);
        g.insert(name.clone(), deps);
    }
    g
}

#[test]
fn only_operators_and_dataflows_import_operators() {
    let modules = modules();
    let mut offenders = vec![];
    for (name, files) in &modules {
        if name == "ops" || name == "dataflows" {
            continue;
        }
        for f in files {
            let text = std::fs::read_to_string(f).unwrap();
            if mentioned(&text, &modules).contains("ops") {
                offenders.push(f.strip_prefix(ROOT).unwrap().display().to_string());
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "files below the operators import crate::ops: {offenders:?}"
    );
}

#[test]
fn top_level_modules_import_each_other_without_cycles() {
    let g = graph();
    // depth-first search; a back edge is a cycle, reported as its path
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(2) => return None,
            Some(1) => {
                let from = path.iter().position(|p| p == n).unwrap();
                let mut cycle = path[from..].to_vec();
                cycle.push(n.to_string());
                return Some(cycle);
            }
            _ => {}
        }
        state.insert(n.to_string(), 1);
        path.push(n.to_string());
        for d in &g[n] {
            if let Some(c) = visit(d, g, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in g.keys() {
        if let Some(cycle) = visit(n, &g, &mut state, &mut vec![]) {
            panic!(
                "import cycle between top-level modules: {}\nthe graph: {g:#?}",
                cycle.join(" -> ")
            );
        }
    }
}

#[test]
fn the_checker_sees_imports() {
    // the two checks above can fail: the reader finds the edges that exist
    let g = graph();
    assert!(g["ops"].contains("record"), "{g:#?}");
    assert!(g["dataflows"].contains("ops"), "{g:#?}");
    let known = modules();
    assert_eq!(
        mentioned(
            "use crate::ops::x; crate::record::Y; my_crate::spec",
            &known
        ),
        ["ops", "record"].map(String::from).into_iter().collect()
    );
    assert_eq!(
        mentioned(
            "use crate::{\n    ops::{a, b::c},\n    record::Y,\n    storage,\n};",
            &known
        ),
        ["ops", "record", "storage"]
            .map(String::from)
            .into_iter()
            .collect()
    );
}
