//! `shardflow bench`: the real shard job on a generated input, timed; the figures add up, the
//! JSON has its documented keys, and a sampled real input is left as it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::*;

/// Runs `shardflow bench` in `dir` with the tiny model, temporary files under `dir/tmp`.
fn bench(dir: &Path, extra: &[&str]) -> std::process::Output {
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let model = data("t5-tiny");
    shardflow_command(dir)
        .env("TMPDIR", &tmp)
        .args(["bench", "--t5-model", model.to_str().unwrap()])
        .args(extra)
        .output()
        .expect("shardflow runs")
}

fn json_of(out: &std::process::Output) -> serde_json::Value {
    assert_ok(out);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stdout));
    })
}

/// The documented keys of `bench --json` and the JSON type of each.
const KEYS: &[(&str, &str)] = &[
    ("input", "string"),
    ("model", "string"),
    ("device", "string"),
    ("t5_dtype", "string"),
    ("workers", "integer"),
    ("cpu", "string"),
    ("project_clips", "integer"),
    ("clips", "integer"),
    ("clips_written", "integer"),
    ("clips_not_written", "integer"),
    ("captions", "integer"),
    ("tokens", "integer"),
    ("bytes_written", "integer"),
    ("wall_seconds", "number"),
    ("model_load_seconds", "number"),
    ("steady_seconds", "number"),
    ("clips_per_second", "number"),
    ("captions_per_second", "number"),
    ("tokens_per_second", "number"),
    ("mb_per_second_written", "number"),
    ("stage_seconds", "object"),
    ("stage_share", "object"),
    ("bounding_stage", "string"),
    ("milestone_seconds", "object"),
    ("project_hours", "number"),
];

fn check_types(j: &serde_json::Value) {
    let obj = j.as_object().unwrap();
    for (key, kind) in KEYS {
        let v = &j[*key];
        let ok = match *kind {
            "string" => v.is_string(),
            "integer" => v.is_u64(),
            "number" => v.is_number(),
            "object" => v.is_object(),
            _ => unreachable!(),
        };
        assert!(ok, "{key} should be a {kind}: {v}");
    }
    assert_eq!(obj.len(), KEYS.len(), "undocumented keys in {j}");
    for m in ["planned", "first_caption_encoded", "first_tar_completed"] {
        assert!(j["milestone_seconds"][m].is_number(), "{m}: {j}");
    }
}

#[test]
fn bench_runs_the_job_on_what_it_generated_and_the_figures_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let out = bench(
        dir.path(),
        &[
            "--clips",
            "60",
            "--windows-per-clip",
            "2",
            "--clip-mb",
            "0.05",
            "--workers",
            "2",
            "--project-clips",
            "1000000",
            "--json",
        ],
    );
    let j = json_of(&out);
    check_types(&j);
    assert_eq!(j["input"], "synthetic");
    assert_eq!(j["clips"], 60);
    assert_eq!(
        j["clips_written"].as_u64().unwrap() + j["clips_not_written"].as_u64().unwrap(),
        60
    );
    // every generated clip lands in a bin
    assert_eq!(j["clips_written"], 60);
    assert_eq!(j["captions"], 120);
    assert!(j["tokens"].as_u64().unwrap() > 120 * 30 / 2, "{j}");
    assert!(j["bytes_written"].as_u64().unwrap() > 60 * 45_000, "{j}");
    let wall = j["wall_seconds"].as_f64().unwrap();
    let workers = j["workers"].as_f64().unwrap();
    assert_eq!(workers, 2.0);
    let stages = j["stage_seconds"].as_object().unwrap();
    for s in ["read_meta", "encode", "write_tar"] {
        assert!(stages.contains_key(s), "{s} missing: {j}");
    }
    let busy: f64 = stages.values().map(|v| v.as_f64().unwrap()).sum();
    assert!(
        busy <= wall * workers * 1.05 + 0.05,
        "{busy} > {wall} x {workers}"
    );
    let bounding = j["bounding_stage"].as_str().unwrap();
    let largest = stages
        .iter()
        .max_by(|a, b| a.1.as_f64().unwrap().total_cmp(&b.1.as_f64().unwrap()))
        .unwrap()
        .0;
    assert_eq!(bounding, largest);
    let share = j["stage_share"][bounding].as_f64().unwrap();
    assert!((share - stages[bounding].as_f64().unwrap() / (wall * workers)).abs() < 1e-9);
    let steady = j["steady_seconds"].as_f64().unwrap();
    assert!((steady + j["model_load_seconds"].as_f64().unwrap() - wall).abs() < 1e-6);
    let rate = j["clips_per_second"].as_f64().unwrap();
    assert!((rate - 60.0 / steady).abs() < 1e-6 * rate, "{j}");
    let hours = j["project_hours"].as_f64().unwrap();
    let expected = (1e6 / rate + j["model_load_seconds"].as_f64().unwrap()) / 3600.0;
    assert!(
        (hours - expected).abs() < 1e-9 * expected,
        "{hours} vs {expected}"
    );
    // the generated input and the output are gone
    assert!(files_below(&dir.path().join("tmp")).is_empty());
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );
}

#[test]
fn bench_prints_text_with_the_estimate_and_the_bounding_stage() {
    let dir = tempfile::tempdir().unwrap();
    let out = bench(
        dir.path(),
        &[
            "--clips",
            "12",
            "--clip-mb",
            "0.01",
            "--caption-words",
            "3..6",
        ],
    );
    assert_ok(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("20000000 clips ≈ "), "{text}");
    assert!(text.contains("hours on this machine"), "{text}");
    assert!(text.contains("<- bounds the job"), "{text}");
    assert!(text.contains("12 listed, 12 written"), "{text}");
    assert!(text.contains("24 captions"), "{text}");
}

/// Every file below `dir` → its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    files_below(dir)
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

#[test]
fn bench_on_a_real_input_reports_its_clips_and_leaves_it_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("sample-dataset");
    copy_tree(&data("sample-dataset"), &input);
    // point clip_location at the copy, as `make_dataset.py relocate` does
    for meta in files_below(&input.join("metas")) {
        let text = std::fs::read_to_string(&meta).unwrap();
        let text = text.replace(SAMPLE_ROOT, input.to_str().unwrap());
        std::fs::write(&meta, text).unwrap();
    }
    let before = snapshot(&input);
    assert_eq!(
        before.len(),
        28 + 26 + 2,
        "metas, clips, README and manifest"
    );
    let out = bench(
        dir.path(),
        &[
            "--input-clip-path",
            input.to_str().unwrap(),
            "--clips",
            "1000",
            "--json",
        ],
    );
    let j = json_of(&out);
    check_types(&j);
    assert_eq!(j["input"], input.to_str().unwrap());
    // the sample's counts (see cli::sample_dataset_matches_reference_output)
    assert_eq!(j["clips"], 28);
    assert_eq!(j["clips_written"], 23);
    assert_eq!(j["clips_not_written"], 5);
    assert_eq!(j["captions"], 31);
    assert_eq!(j["tokens"], 2186);
    assert_eq!(snapshot(&input), before, "the input changed");
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );

    // --clips takes the first N metadata files
    let out = bench(
        dir.path(),
        &[
            "--input-clip-path",
            input.to_str().unwrap(),
            "--clips",
            "5",
            "--json",
        ],
    );
    assert_eq!(json_of(&out)["clips"], 5);
    assert_eq!(snapshot(&input), before, "the input changed");
}

/// Every file below `dir` with its bytes, by path relative to it.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    files_below(dir)
        .into_iter()
        .map(|p| {
            (
                p.strip_prefix(dir).unwrap().to_path_buf(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn generate_only_keeps_a_seeded_input_that_shard_and_bench_take() {
    let dir = tempfile::tempdir().unwrap();
    let generate = |to: &str, seed: &str| {
        shardflow(
            dir.path(),
            &[
                "bench",
                "--generate-only",
                "--keep-input",
                to,
                "--clips",
                "30",
                "--windows-per-clip",
                "3",
                "--clip-mb",
                "0.01",
                "--seed",
                seed,
                "--json",
            ],
        )
    };
    let g = json_of(&generate("a", "7"));
    assert_eq!(
        (g["clips"].as_u64(), g["windows"].as_u64()),
        (Some(30), Some(90))
    );
    let a = tree(&dir.path().join("a"));
    let metas = a.keys().filter(|p| p.starts_with("metas/v0")).count();
    let clips: u64 = a
        .iter()
        .filter(|(p, _)| p.starts_with("clips"))
        .map(|(_, b)| b.len() as u64)
        .sum();
    assert_eq!(metas, 30);
    assert_eq!(Some(clips), g["clip_bytes"].as_u64());
    // the same seed writes the same files; another seed other ones
    json_of(&generate("b", "7"));
    assert!(a == tree(&dir.path().join("b")), "same seed, other files");
    json_of(&generate("c", "8"));
    assert!(a != tree(&dir.path().join("c")));
    // a directory that holds anything is refused, and left as it was
    let o = generate("a", "9");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not empty"));
    assert!(a == tree(&dir.path().join("a")));

    // the kept input is a shard input as it is
    let o = shardflow(
        dir.path(),
        &[
            "shard",
            "--input-clip-path",
            "a",
            "--output-dataset-path",
            "out",
            "--t5-model",
            data("t5-tiny").to_str().unwrap(),
        ],
    );
    assert_ok(&o);
    assert_eq!(reconciled_counts(&dir.path().join("out/v0"))["written"], 30);
    // and bench --keep-input runs on it and keeps it
    let j = json_of(&bench(
        dir.path(),
        &[
            "--keep-input",
            "kept",
            "--clips",
            "12",
            "--clip-mb",
            "0.01",
            "--json",
        ],
    ));
    assert_eq!(j["clips_written"], 12, "{j}");
    assert_eq!(
        files_below(&dir.path().join("kept/metas/v0")).len(),
        12,
        "the input is kept"
    );
}

/// `--input-clip-path s3://...`: the first N metadata files of a dataset on the store, whose
/// relative clip locations are read from the store; the input is left as it was.
#[test]
fn bench_on_an_s3_input_reads_its_clips_there_and_leaves_it_untouched() {
    let Some(s3) = crate::s3::s3() else { return };
    let dir = tempfile::tempdir().unwrap();
    // a generated input: its clip locations are relative to it
    let o = shardflow(
        dir.path(),
        &[
            "bench",
            "--generate-only",
            "--keep-input",
            "in",
            "--clips",
            "20",
            "--clip-mb",
            "0.01",
        ],
    );
    assert_ok(&o);
    let bucket = s3.bucket("bench-in");
    let uri = format!("s3://{bucket}/data");
    s3.util(&["upload", dir.path().join("in").to_str().unwrap(), &uri]);
    let before = s3.util(&["ls", &uri]);
    // only the store's copy is left to read the clips from
    std::fs::remove_dir_all(dir.path().join("in")).unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let o = s3
        .command(dir.path())
        .env("TMPDIR", &tmp)
        .args(["bench", "--t5-model", data("t5-tiny").to_str().unwrap()])
        .args(["--input-clip-path", &uri, "--clips", "12", "--json"])
        .output()
        .unwrap();
    let j = json_of(&o);
    assert_eq!(j["input"], uri.as_str(), "{j}");
    assert_eq!(
        (j["clips"].as_u64(), j["clips_written"].as_u64()),
        (Some(12), Some(12)),
        "{j}"
    );
    assert_eq!(s3.util(&["ls", &uri]), before, "the input is only read");
    assert!(
        std::fs::read_dir(&tmp).unwrap().next().is_none(),
        "temporary files removed"
    );
}
