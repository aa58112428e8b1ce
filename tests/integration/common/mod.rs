//! Helpers shared by the integration tests: temp datasets, running the real binary, Python.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

/// Runs `shardflow` with `args` in `cwd`.
pub fn shardflow(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shardflow"))
        .args(args)
        .current_dir(cwd)
        .env("SHARDFLOW_LOG", "warn")
        .output()
        .expect("shardflow runs")
}

/// Runs `shardflow shard` on `input` into `output` (relative to `cwd`) with the tiny model.
pub fn shard(cwd: &Path, input: &Path, output: &str, extra: &[&str]) -> Output {
    let model = data("t5-tiny");
    let remap = format!("{SAMPLE_ROOT}={}", input.display());
    let mut args = vec![
        "shard",
        "--input-clip-path",
        input.to_str().unwrap(),
        "--output-dataset-path",
        output,
        "--annotation-version",
        "v0",
        "--t5-model",
        model.to_str().unwrap(),
        "--remap-clip-location",
        &remap,
    ];
    // the sample dataset holds one deliberately broken metadata file of 28
    if !extra.contains(&"--max-rejected-fraction") {
        args.extend_from_slice(&["--max-rejected-fraction", "0.05"]);
    }
    args.extend_from_slice(extra);
    shardflow(cwd, &args)
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

/// Runs a Python script with arguments; returns stdout, failing the test on error.
pub fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `compare_datasets.py` strictly; returns its last line.
pub fn compare_strict(expected: &Path, actual: &Path) -> String {
    let tool = root().join("tests/tools/compare_datasets.py");
    let out = Command::new("python3")
        .arg(tool)
        .arg(expected)
        .arg(actual)
        .args(["--strict-bytes", "--check-headers", "--strict-csv-order"])
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "compare failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().last().unwrap_or_default().to_string()
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
