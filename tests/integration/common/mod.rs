//! Helpers shared by the integration tests: temp datasets, running the real binary and the
//! Python tools (`commands`), reading reports.

#![allow(dead_code)]

mod commands;

pub use commands::*;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Output;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Test data folder.
pub fn data(rel: &str) -> PathBuf {
    root().join("tests/data").join(rel)
}

/// The placeholder root the sample dataset's `clip_location`s use.
pub const SAMPLE_ROOT: &str = "/cosmos-curate-fixtures/sample-dataset";

/// Copies a directory tree.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
            let mut perm = std::fs::metadata(&dst).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perm.set_readonly(false);
            std::fs::set_permissions(&dst, perm).unwrap();
        }
    }
}

/// The sample dataset copied to `dir/in`, with `copies` more clips (copies of its valid
/// metadata under new `span_uuid`s, same clips), so a run takes a few seconds.
pub fn sample_with_copies(dir: &Path, copies: usize) -> PathBuf {
    let input = dir.join("in");
    copy_tree(&data("sample-dataset"), &input);
    commands::run_tool(
        "edit_input.py",
        [
            "add-copies",
            input.join("metas/v0").to_str().unwrap(),
            &copies.to_string(),
        ],
    );
    input
}

/// Asserts a command succeeded, printing its output otherwise.
pub fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Reads the job report.
pub fn report(version_dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(version_dir.join("_shardflow/report.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Asserts that the report's counts reconcile and returns them.
pub fn reconciled_counts(version_dir: &Path) -> serde_json::Value {
    let r = report(version_dir);
    let c = &r["counts"];
    let rejected: u64 = c["rejected"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    let sum = c["written"].as_u64().unwrap()
        + c["invalid"].as_u64().unwrap()
        + c["dropped_no_bin"].as_u64().unwrap()
        + c["removed_semantic_dedup"].as_u64().unwrap()
        + c["dropped_small_tar"].as_u64().unwrap()
        + rejected;
    assert_eq!(
        c["listed"].as_u64().unwrap(),
        sum,
        "counts do not reconcile: {c}"
    );
    c.clone()
}

/// Every file below `dir`, sorted (none if it does not exist).
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Every tar member below `version_dir` (path of the tar relative to it, member name) → bytes:
/// two outputs with these equal hold the same data, whatever their tars' mtimes.
pub fn tar_members(version_dir: &Path) -> BTreeMap<(String, String), Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![version_dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "tar") {
                let rel = p
                    .strip_prefix(version_dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let mut a = tar::Archive::new(std::fs::File::open(&p).unwrap());
                for entry in a.entries().unwrap() {
                    let mut entry = entry.unwrap();
                    let name = entry.path().unwrap().to_string_lossy().into_owned();
                    let mut data = Vec::new();
                    entry.read_to_end(&mut data).unwrap();
                    out.insert((rel.clone(), name), data);
                }
            }
        }
    }
    out
}
