//! Differential test against the plain-Python oracle (`tests/tools/reference_shard.py`).
//!
//! For several seeds and option sets: generate an unseen dataset with real H.264 clips
//! (`tests/tools/make_dataset.py`, needs ffmpeg), mutate its metadata for edge cases
//! (`tests/tools/mutate_metas.py`), run `shardflow shard` and the oracle with the same options, and
//! require `compare_datasets.py --strict-bytes --check-headers --strict-csv-order` to print OK,
//! plus byte-identical `wdinfo.json` files and `wdinfo_list.csv`.
//!
//! Needs `python3` on PATH with numpy, safetensors and tokenizers (CI puts `.venv/bin` first), and
//! ffmpeg/ffprobe. Extra random seeds:
//! `SHARDFLOW_ORACLE_SEEDS=7,8,9 cargo test --test integration oracle::`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

use crate::common::{data, shardflow_command, tool};

fn tiny_model() -> PathBuf {
    data("t5-tiny")
}

fn s(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_string()
}

/// The last `n` lines of a command's output.
fn tail(bytes: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs a command; an error carries its exit status and the tails of stdout and stderr.
fn run(cmd: &mut Command, what: &str) -> Result<Output, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("{what}: cannot start {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            tail(&out.stdout, 30),
            tail(&out.stderr, 30)
        ))
    }
}

/// A generated input dataset and how both implementations must be told where its clips are.
struct Dataset {
    tmp: TempDir,
    dir: PathBuf,
    label: String,
    /// Extra arguments for the oracle (a remap that finds the clip files).
    oracle_args: Vec<String>,
    /// Extra arguments for shardflow.
    shardflow_args: Vec<String>,
    /// Whether `mutate_metas.py` ran (exact tar-size boundary bins exist).
    mutated: bool,
}

/// `make_dataset.py generate --seed SEED GEN_ARGS`, then optionally `mutate_metas.py` with
/// `flags`.
/// `root`: a placeholder `--clip-location-root`, remapped to the real directory in both runs.
fn dataset(seed: u64, gen_args: &[&str], root: Option<&str>, mutate: Option<&[&str]>) -> Dataset {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    let mut label = format!("seed={seed} generate={gen_args:?}");
    let mut cmd = tool("make_dataset.py");
    cmd.arg("generate")
        .arg(&dir)
        .arg("--seed")
        .arg(seed.to_string())
        .args(gen_args);
    if let Some(r) = root {
        cmd.args(["--clip-location-root", r]);
        label += &format!(" clip-root={r}");
    }
    if let Err(e) = run(
        &mut cmd,
        "make_dataset.py generate (needs ffmpeg + ffprobe)",
    ) {
        panic!("[{label}] {e}");
    }
    let (mut oracle_args, mut shardflow_args) = (Vec::new(), Vec::new());
    if let Some(r) = root {
        let remap = format!("{r}={}", s(&dir));
        for v in [&mut oracle_args, &mut shardflow_args] {
            v.push("--remap-clip-location".to_string());
            v.push(remap.clone());
        }
    }
    if let Some(flags) = mutate {
        label += &format!(" mutate={flags:?}");
        let mut cmd = tool("mutate_metas.py");
        cmd.arg(&dir).arg(seed.to_string()).args(flags);
        if let Err(e) = run(&mut cmd, "metadata mutation") {
            panic!("[{label}] {e}");
        }
        if flags.contains(&"relative") {
            // shardflow resolves relative clip_locations against the input root; the reference
            // opens them relative to its working directory, so the oracle is pointed there.
            oracle_args.push("--remap-clip-location".to_string());
            oracle_args.push(format!("clips/={}/clips/", s(&dir)));
        }
    }
    Dataset {
        tmp,
        dir,
        label,
        oracle_args,
        shardflow_args,
        mutated: mutate.is_some(),
    }
}

/// All `wdinfo.json` paths under `dir`, relative to it, sorted.
fn wdinfos(dir: &Path, base: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            wdinfos(&p, base, out);
        } else if p.file_name().is_some_and(|n| n == "wdinfo.json") {
            out.push(p.strip_prefix(base).unwrap().to_path_buf());
        }
    }
    out.sort();
}

fn data_list_len(version_dir: &Path, bin: &str) -> Option<usize> {
    let text = std::fs::read_to_string(version_dir.join(bin).join("wdinfo.json")).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v["data_list"].as_array().map(|a| a.len())
}

/// Runs the oracle and shardflow on `ds` with `model` and `opts`; Ok(summary) or Err(report).
fn check(ds: &Dataset, model: &Path, model_label: &str, opts: &[&str]) -> Result<String, String> {
    let label = format!("{} model={model_label} opts={opts:?}", ds.label);
    let fail = |e: String| format!("[{label}]\n{e}");
    let work = tempfile::tempdir_in(ds.tmp.path()).unwrap();
    let (ref_cwd, sf_cwd) = (work.path().join("oracle"), work.path().join("shardflow"));
    std::fs::create_dir_all(&ref_cwd).unwrap();
    std::fs::create_dir_all(&sf_cwd).unwrap();
    let common = |cmd: &mut Command| {
        cmd.args([
            "--input-clip-path",
            &s(&ds.dir),
            "--output-dataset-path",
            "out",
        ])
        .args(["--annotation-version", "v0", "--t5-model", &s(model)])
        .args(opts);
    };

    let mut oracle = tool("reference_shard.py");
    oracle.current_dir(&ref_cwd);
    common(&mut oracle);
    oracle.args(&ds.oracle_args);
    run(&mut oracle, "reference_shard.py").map_err(fail)?;

    let mut sf = shardflow_command(&sf_cwd);
    sf.arg("shard");
    common(&mut sf);
    // rejects are compared with the oracle's, not judged here
    sf.args(["--workers", "2", "--max-rejected-fraction", "1"])
        .args(&ds.shardflow_args);
    run(&mut sf, "shardflow shard").map_err(fail)?;

    let mut cmp = tool("compare_datasets.py");
    cmp.arg(ref_cwd.join("out")).arg(sf_cwd.join("out")).args([
        "--strict-bytes",
        "--check-headers",
        "--strict-csv-order",
    ]);
    let out = cmp
        .output()
        .map_err(|e| fail(format!("cannot run compare_datasets.py: {e}")))?;
    let last = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    if !out.status.success() || !last.ends_with(": OK") {
        return Err(fail(format!(
            "compare_datasets.py ORACLE SHARDFLOW did not print OK:\n{}\n{}",
            tail(&out.stdout, 40),
            tail(&out.stderr, 10)
        )));
    }

    // Both were given the same output path, so the summaries must match byte for byte.
    let (rv, sv) = (ref_cwd.join("out/v0"), sf_cwd.join("out/v0"));
    let mut files = Vec::new();
    wdinfos(&rv, &rv, &mut files);
    files.push(PathBuf::from("wdinfo_list.csv"));
    for f in &files {
        let a = std::fs::read(rv.join(f)).unwrap();
        match std::fs::read(sv.join(f)) {
            Ok(b) if a == b => {}
            Ok(b) => {
                return Err(fail(format!(
                    "{} differs:\n--- oracle\n{}\n--- shardflow\n{}",
                    f.display(),
                    String::from_utf8_lossy(&a),
                    String::from_utf8_lossy(&b)
                )))
            }
            Err(e) => {
                return Err(fail(format!(
                    "{}: missing in shardflow output: {e}",
                    f.display()
                )))
            }
        }
    }

    // The case must exercise what it is meant to.
    if !last.contains(" samples") || last.contains(" 0 samples") {
        return Err(fail(format!("vacuous comparison: {last}")));
    }
    let small_parts = opts
        .windows(2)
        .any(|w| w[0] == "--max-tars-per-part" && w[1].parse::<u32>().unwrap() <= 3);
    if small_parts
        && !files
            .iter()
            .any(|f| data_list_len(&rv, &s(f.parent().unwrap())).unwrap_or(0) > 3)
    {
        return Err(fail(
            "no bin with several parts: the case does not test parts".to_string(),
        ));
    }
    if ds.mutated
        && opts
            .windows(2)
            .any(|w| w == ["--target-tar-size-mb", "0.0625"])
    {
        let pair_sum_eq = data_list_len(&rv, "resolution_1080/aspect_ratio_1_1/frames_0_120");
        let pair_sum_gt = data_list_len(&rv, "resolution_1080/aspect_ratio_4_3/frames_0_120");
        if (pair_sum_eq, pair_sum_gt) != (Some(1), Some(2)) {
            return Err(fail(format!(
                "boundary bins: {pair_sum_eq:?} / {pair_sum_gt:?} tars, expected 1 / 2"
            )));
        }
    }
    Ok(format!("[{label}] {last}"))
}

/// Runs every case and fails with all the failures at once.
fn run_cases(cases: Vec<Result<String, String>>) {
    let mut failures = Vec::new();
    for c in cases {
        match c {
            Ok(msg) => eprintln!("ok {msg}"),
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) differ from the oracle:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

const SMALL_PARTS: &[&str] = &["--target-tar-size-mb", "0.0625", "--max-tars-per-part", "2"];

/// The hand-designed dataset "a": every bin, bin boundaries, windows, captions, nesting, exact
/// 1 MiB tar boundaries, inflated `num_bytes`, with the default, 1 MiB and tiny tar targets.
#[test]
fn oracle_dataset_a() {
    let ds = dataset(11, &["--size", "a"], None, None);
    let model = tiny_model();
    run_cases(vec![
        check(&ds, &model, "t5-tiny", &[]),
        check(
            &ds,
            &model,
            "t5-tiny",
            &["--target-tar-size-mb", "1", "--max-tars-per-part", "3"],
        ),
        check(
            &ds,
            &model,
            "t5-tiny",
            &["--target-tar-size-mb", "0.05", "--max-tars-per-part", "2"],
        ),
    ]);
}

/// Random datasets (multi-window clips) with mutated metadata: long, non-ASCII, astral and
/// Python-whitespace captions, NaN/Infinity and unknown keys, bin boundaries, exact tar-size
/// boundaries, multi-part bins, listing-order traps, relative and remapped clip locations, and
/// another captioning algorithm.
#[test]
fn oracle_random_seeds() {
    let model = tiny_model();
    let random = ["--size", "random", "--count", "40"];
    let mut cases = Vec::new();

    let ds = dataset(101, &random, None, Some(&[]));
    cases.push(check(&ds, &model, "t5-tiny", &[]));
    cases.push(check(&ds, &model, "t5-tiny", SMALL_PARTS));

    let ds = dataset(202, &random, None, Some(&["relative"]));
    cases.push(check(&ds, &model, "t5-tiny", SMALL_PARTS));
    cases.push(check(
        &ds,
        &model,
        "t5-tiny",
        &["--target-tar-size-mb", "0.03", "--max-tars-per-part", "1"],
    ));

    let ds = dataset(
        303,
        &random,
        Some("/cosmos-curate-fixtures/random-303"),
        Some(&["algo=gemma"]),
    );
    let opts = [
        "--captioning-algorithm",
        "gemma",
        "--target-tar-size-mb",
        "0.0625",
        "--max-tars-per-part",
        "2",
    ];
    cases.push(check(&ds, &model, "t5-tiny", &opts));

    let extra = std::env::var("SHARDFLOW_ORACLE_SEEDS").unwrap_or_default();
    for seed in extra.split(',').filter(|x| !x.trim().is_empty()) {
        let seed: u64 = seed
            .trim()
            .parse()
            .expect("SHARDFLOW_ORACLE_SEEDS: comma-separated integers");
        let ds = dataset(seed, &random, None, Some(&[]));
        cases.push(check(&ds, &model, "t5-tiny", SMALL_PARTS));
    }
    run_cases(cases);
}

/// A tiny random T5 v1.1 (gated-GELU, untied embeddings) in one safetensors file and sharded
/// into two with an index.
#[test]
fn oracle_gated_gelu_t5() {
    let ds = dataset(404, &["--size", "random", "--count", "40"], None, Some(&[]));
    let (single, sharded) = (
        ds.tmp.path().join("t5-gated"),
        ds.tmp.path().join("t5-gated-sharded"),
    );
    let mut cmd = tool("write_gated_t5.py");
    cmd.arg(&single)
        .arg(&sharded)
        .arg(tiny_model().join("tokenizer.json"));
    if let Err(e) = run(&mut cmd, "writing the gated T5 models") {
        panic!("{e}");
    }
    run_cases(vec![
        check(&ds, &single, "gated-gelu (model.safetensors)", SMALL_PARTS),
        check(&ds, &sharded, "gated-gelu (2 shards + index)", &[]),
    ]);
}
