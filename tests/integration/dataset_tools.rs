//! `--index`, `shardflow index`, `verify` and `inspect` with the real binary.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::*;

const EPOCH: &str = "1700000000";

fn run(cwd: &Path, args: &[&str]) -> Output {
    shardflow_command(cwd)
        .args(args)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .output()
        .expect("shardflow runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The sample dataset sharded into `<dir>/<out>/v0` with small tars.
fn sample_output(dir: &Path, out: &str, extra: &[&str]) -> PathBuf {
    let input = dir.join("in");
    if !input.exists() {
        copy_tree(&data("sample-dataset"), &input);
    }
    let mut args = vec!["--target-tar-size-mb", "0.05", "--workers", "2"];
    args.extend_from_slice(extra);
    let o = shardflow_command(dir)
        .args(["shard", "--input-clip-path", input.to_str().unwrap()])
        .args(["--output-dataset-path", out, "--t5-model"])
        .arg(data("t5-tiny"))
        .args([
            "--remap-clip-location",
            &format!("{SAMPLE_ROOT}={}", input.display()),
        ])
        .args(["--max-rejected-fraction", "0.05"])
        .args(&args)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .output()
        .unwrap();
    assert_ok(&o);
    dir.join(out).join("v0")
}

fn tars(dir: &Path) -> Vec<PathBuf> {
    files_below(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "tar"))
        .collect()
}

fn idx_of(tar: &Path) -> PathBuf {
    tar.with_extension("idx")
}

fn wds2idx(tar: &Path) -> String {
    let out = tool("wds2idx_ref.py").arg(tar).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn dali_indexes_written_while_sharding_equal_dalis_algorithm() {
    let dir = tempfile::tempdir().unwrap();
    let v0 = sample_output(dir.path(), "out", &["--index", "dali,wids"]);
    let all = tars(&v0);
    assert!(all.len() > 30);
    for t in &all {
        let ours = std::fs::read_to_string(idx_of(t)).unwrap();
        assert_eq!(ours, wds2idx(t), "{}", t.display());
    }
    // wids: one index per bin and stream, listing every tar with its samples and size
    let checked = run_tool("read_dataset.py", ["wids-indexes", v0.to_str().unwrap()]);
    assert_eq!(checked.trim(), "36", "12 bins x 3 streams");
    // the reference's own tars (PAX headers): `shardflow index` agrees with DALI's algorithm too
    let reference = dir.path().join("reference");
    copy_tree(&data("sample-dataset-expected/v0"), &reference);
    let o = run(
        dir.path(),
        &["index", reference.to_str().unwrap(), "--index", "dali"],
    );
    assert_ok(&o);
    for t in tars(&reference) {
        assert_eq!(
            std::fs::read_to_string(idx_of(&t)).unwrap(),
            wds2idx(&t),
            "{}",
            t.display()
        );
    }
}

#[test]
fn index_command_writes_what_sharding_writes() {
    let dir = tempfile::tempdir().unwrap();
    let with = sample_output(dir.path(), "with", &["--index", "dali,wids"]);
    let without = sample_output(dir.path(), "without", &[]);
    assert!(!files_below(&without)
        .iter()
        .any(|p| p.extension().is_some_and(|e| e == "idx")));
    let o = run(dir.path(), &["index", without.to_str().unwrap()]);
    assert_ok(&o);
    assert!(stdout(&o).contains("48 tars"), "{}", stdout(&o));
    let indexes = |v: &Path| -> Vec<(String, Vec<u8>)> {
        files_below(v)
            .into_iter()
            .filter(|p| {
                p.extension().is_some_and(|e| e == "idx")
                    || p.file_name().is_some_and(|n| n == "shardindex.json")
            })
            .map(|p| {
                (
                    p.strip_prefix(v).unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect()
    };
    let (a, b) = (indexes(&with), indexes(&without));
    assert_eq!(a.len(), 48 + 36);
    assert_eq!(a, b);
    // verify checks each tar against its stream's wids index: a wrong count, a missing entry
    // and an index that does not parse are each named
    assert_ok(&run(dir.path(), &["verify", with.to_str().unwrap()]));
    let mut wids: Vec<PathBuf> = files_below(&with)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "shardindex.json"))
        .collect();
    wids.sort();
    let edit = |p: &Path, f: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
        f(&mut v);
        std::fs::write(p, serde_json::to_vec(&v).unwrap()).unwrap();
    };
    edit(&wids[0], &|v| {
        let n = v["shardlist"][0]["nsamples"].as_u64().unwrap();
        v["shardlist"][0]["nsamples"] = (n + 1).into();
    });
    edit(&wids[1], &|v| v["shardlist"] = serde_json::json!([]));
    std::fs::write(&wids[2], b"{not json").unwrap();
    let o = run(dir.path(), &["verify", with.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    let rel = |p: &Path| {
        p.strip_prefix(&with)
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    assert!(
        out.contains(&format!(
            "{}: part_000000/000000.tar: nsamples",
            rel(&wids[0])
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("{}: has no entry for part_", rel(&wids[1]))),
        "{out}"
    );
    let invalid: Vec<&str> = out
        .lines()
        .filter(|l| l.contains(&format!("{}: is not valid JSON", rel(&wids[2]))))
        .collect();
    assert_eq!(invalid.len(), 1, "{out}");
}

/// A fresh copy of a good dataset, given the damage `name` of `damage_dataset.py` in `bin`;
/// verify must fail naming `expect`.
fn broken(good: &Path, name: &str, bin: &str, expect: &str) {
    let copy = good.parent().unwrap().join(format!("broken-{name}"));
    copy_tree(good, &copy);
    run_tool("damage_dataset.py", [name, copy.to_str().unwrap(), bin]);
    let o = run(good, &["verify", copy.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{name}: {}", stdout(&o));
    assert!(
        stdout(&o).contains(expect),
        "{name}: expected {expect:?} in\n{}",
        stdout(&o)
    );
}

#[test]
fn verify_passes_good_output_and_names_each_kind_of_damage() {
    let dir = tempfile::tempdir().unwrap();
    let good = sample_output(dir.path(), "out", &["--index", "dali,wids"]);
    let o = run(dir.path(), &["verify", good.to_str().unwrap()]);
    assert_ok(&o);
    assert!(
        stdout(&o).contains("23 samples") && stdout(&o).ends_with("OK\n"),
        "{}",
        stdout(&o)
    );
    let bin = "resolution_720/aspect_ratio_16_9/frames_0_120";
    // a truncated tar
    broken(
        &good,
        "truncated",
        bin,
        &format!("{bin}/video/part_000000/000000.tar: does not read to the end"),
    );
    // a missing t5_xxl tar
    broken(
        &good,
        "missing",
        bin,
        &format!("{bin}/t5_xxl/part_000000/000000.tar: missing"),
    );
    // members out of order in one stream
    broken(
        &good,
        "order",
        bin,
        &format!("{bin}/metas/part_000000/000000.tar: keys differ from the other streams' from position 0"),
    );
    // a corrupted pickle (same size, garbage)
    broken(&good, "pickle", bin, ".pickle: does not decode");
    // embeddings that decode but hold NaN
    broken(&good, "nan", bin, "holds NaN or infinite values");
    // a wdinfo count off by one
    broken(
        &good,
        "count",
        bin,
        &format!("{bin}/wdinfo.json: total_key_count is"),
    );
    // an index that no longer matches its tar
    broken(
        &good,
        "idx",
        bin,
        &format!("{bin}/video/part_000000/000000.idx: does not match its tar"),
    );
}

#[test]
fn verify_re_embeds_a_sample_of_windows_with_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let good = sample_output(dir.path(), "out", &[]);
    let model = data("t5-tiny");
    let m = model.to_str().unwrap();
    let o = run(
        dir.path(),
        &[
            "verify",
            good.to_str().unwrap(),
            "--t5-model",
            m,
            "--sample",
            "12",
        ],
    );
    assert_ok(&o);
    // scale every stored embedding: still a valid pickle, but not the model's output
    run_tool(
        "damage_dataset.py",
        ["scale-embeddings", good.to_str().unwrap()],
    );
    let o = run(dir.path(), &["verify", good.to_str().unwrap()]);
    assert_ok(&o);
    let o = run(
        dir.path(),
        &[
            "verify",
            good.to_str().unwrap(),
            "--t5-model",
            m,
            "--sample",
            "4",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert_eq!(
        stdout(&o)
            .matches("differs from the model's embedding")
            .count(),
        4,
        "{}",
        stdout(&o)
    );
}

#[test]
fn inspect_counts_what_the_report_counts() {
    let dir = tempfile::tempdir().unwrap();
    let v0 = sample_output(dir.path(), "out", &[]);
    let o = run(dir.path(), &["inspect", v0.to_str().unwrap(), "--json"]);
    assert_ok(&o);
    let bins: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let sum = |k: &str| -> u64 {
        bins.as_array()
            .unwrap()
            .iter()
            .map(|b| b[k].as_u64().unwrap())
            .sum()
    };
    let c = reconciled_counts(&v0);
    assert_eq!(sum("clips"), c["written"].as_u64().unwrap());
    assert_eq!(sum("windows"), c["windows_embedded"].as_u64().unwrap());
    assert_eq!(sum("tars"), c["tars"].as_u64().unwrap());
    let tokens: f64 = bins
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["mean_tokens_per_window"].as_f64().unwrap() * b["windows"].as_f64().unwrap())
        .sum();
    assert_eq!(
        tokens.round() as u64,
        c["tokens_embedded"].as_u64().unwrap()
    );
    let table = stdout(&run(dir.path(), &["inspect", v0.to_str().unwrap()]));
    assert!(
        table.lines().last().unwrap().starts_with("total"),
        "{table}"
    );
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn the_tools_refuse_what_is_not_a_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let random = dir.path().join("random");
    for (f, text) in [
        ("notes.txt", "hello"),
        ("a/b/c.json", "{}"),
        ("x/video/part_000000/000000.tar", "not a tar"),
    ] {
        let p = random.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    for d in [&empty, &random] {
        let before = files_below(d);
        for tool in ["index", "inspect", "verify"] {
            let o = run(dir.path(), &[tool, d.to_str().unwrap()]);
            assert_eq!(
                o.status.code(),
                Some(2),
                "{tool} {}: {}",
                d.display(),
                stderr(&o)
            );
            assert!(
                stderr(&o).contains(&format!(
                    "{}: not a dataset (no wdinfo_list.csv)",
                    d.display()
                )),
                "{tool}: {}",
                stderr(&o)
            );
            assert!(!stdout(&o).contains("bins"), "{tool}: {}", stdout(&o));
        }
        assert_eq!(files_below(d), before, "nothing written to {}", d.display());
    }
}

#[test]
fn the_tools_tell_an_unfinished_dataset_from_a_finished_one() {
    let dir = tempfile::tempdir().unwrap();
    let v0 = sample_output(dir.path(), "out", &[]);
    // a run still going has written tars and its journal, but no report yet
    std::fs::remove_file(v0.join("_shardflow/report.json")).unwrap();
    let incomplete = format!(
        "{} is incomplete (being written, or interrupted: finish it with shard --resume)",
        v0.display()
    );
    let o = run(dir.path(), &["index", v0.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains(&incomplete), "{}", stderr(&o));
    assert!(!files_below(&v0)
        .iter()
        .any(|p| p.extension().is_some_and(|e| e == "idx")
            || p.file_name().is_some_and(|n| n == "shardindex.json")));
    let o = run(dir.path(), &["inspect", v0.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("warning: {incomplete}")),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).contains("total"), "{}", stdout(&o));
    let o = run(dir.path(), &["inspect", v0.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap();
    let o = run(dir.path(), &["verify", v0.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stderr(&o).contains(&format!("warning: {incomplete}")),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).contains(&incomplete), "{}", stdout(&o));
    assert!(stdout(&o).contains("1 problems"), "{}", stdout(&o));
    // a report that says the job failed: the same
    std::fs::write(
        v0.join("_shardflow/report.json"),
        r#"{"ok": false, "error": "interrupted by a signal"}"#,
    )
    .unwrap();
    let o = run(dir.path(), &["index", v0.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("interrupted by a signal"),
        "{}",
        stderr(&o)
    );
    // finished: every tool works
    std::fs::write(v0.join("_shardflow/report.json"), r#"{"ok": true}"#).unwrap();
    for tool in ["inspect", "verify", "index"] {
        assert_ok(&run(dir.path(), &[tool, v0.to_str().unwrap()]));
    }
    // the reference's own output has no job folder at all, and is a dataset
    let reference = dir.path().join("reference");
    copy_tree(&data("sample-dataset-expected/v0"), &reference);
    for tool in ["inspect", "index"] {
        assert_ok(&run(dir.path(), &[tool, reference.to_str().unwrap()]));
    }
}

/// Every tool takes a shard job's output path (all its versions, or `--annotation-version`)
/// as well as a version directory, and says on stderr which directories it read.
#[test]
fn the_tools_take_the_output_path_or_a_version_directory() {
    let dir = tempfile::tempdir().unwrap();
    let v0 = sample_output(dir.path(), "out", &[]);
    let out = v0.parent().unwrap().to_path_buf();
    let (out_s, v0_s) = (out.to_str().unwrap(), v0.to_str().unwrap());
    // one version: the output path reads it, as does the version directory
    for args in [
        vec!["verify", out_s],
        vec!["verify", v0_s],
        vec!["verify", out_s, "--annotation-version", "v0"],
        vec!["inspect", out_s],
        vec!["index", out_s],
    ] {
        let o = run(dir.path(), &args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!("reading {v0_s}")),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    let o = run(dir.path(), &["verify", out_s]);
    assert!(stdout(&o).ends_with("OK\n"), "{}", stdout(&o));
    // a second version: both are read, JSON keyed by directory, in name order
    copy_tree(&v0, &out.join("v1"));
    let o = run(dir.path(), &["inspect", out_s, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
    let v1_s = out.join("v1").to_str().unwrap().to_owned();
    assert_eq!(keys, [&v0_s.to_owned(), &v1_s]);
    let o = run(dir.path(), &["verify", out_s, "--annotation-version", "v1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !stderr(&o).contains(&format!("reading {v0_s}")),
        "{}",
        stderr(&o)
    );
    // neither a dataset nor a directory of them: a clear error naming it, exit 2
    std::fs::create_dir_all(dir.path().join("empty/logs")).unwrap();
    let empty = dir.path().join("empty");
    let o = run(dir.path(), &["verify", empty.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a dataset"), "{}", stderr(&o));
}
