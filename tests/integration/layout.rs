//! `--layout cosmos-predict2.5` with the real binary: the sample dataset written for NVIDIA's
//! cosmos-predict2.5 trainer reads, sample by sample, as that trainer reads it
//! (`tests/tools/read_predict25.py`), passes `verify`, `inspect` and `index`; a re-shard in
//! the layout equals a fresh shard; a layout change is refused by `--append` and
//! `reshard`; and a UMT5 model's embedding stream is `umt5_xxl` in this layout, through
//! every command that writes or reads the dataset.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use crate::common::*;

const LAYOUT: [&str; 2] = ["--layout", "cosmos-predict2.5"];

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `read_predict25.py` on `version_dir`, run in `cwd` (the wdinfo roots are relative to it):
/// its summary, or its problems.
fn read_as_the_trainer(cwd: &Path, version_dir: &str) -> Result<serde_json::Value, String> {
    read_as_the_trainer_with(cwd, version_dir, "t5_xxl")
}

/// [`read_as_the_trainer`] with the trainer's `embedding_type` set to `embedding_key`.
fn read_as_the_trainer_with(
    cwd: &Path,
    version_dir: &str,
    embedding_key: &str,
) -> Result<serde_json::Value, String> {
    let out = tool("read_predict25.py")
        .args([
            version_dir,
            "--d-model",
            "16",
            "--embedding-key",
            embedding_key,
        ])
        .current_dir(cwd)
        .output()
        .expect("python3 runs");
    if out.status.success() {
        Ok(serde_json::from_str(stdout(&out).trim()).expect("a JSON summary"))
    } else {
        Err(format!("{}{}", stdout(&out), stderr(&out)))
    }
}

#[test]
fn the_sample_dataset_in_the_predict25_layout_reads_as_the_trainer_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = data("sample-dataset");
    let o = shard(dir.path(), &input, "out", &LAYOUT);
    assert_ok(&o);
    let summary = read_as_the_trainer(dir.path(), "out/v0").unwrap();
    let n = |k: &str| summary[k].as_u64().unwrap();
    assert_eq!(n("samples"), 23, "{summary}");
    // two written clips have a window without a caption: a placeholder each, in its place
    assert_eq!(n("placeholders"), 2, "{summary}");
    assert_eq!(
        n("captioned") + n("placeholders"),
        n("windows"),
        "{summary}"
    );
    assert_eq!(n("trainable_windows"), n("captioned"), "{summary}");

    // verify checks the layout's members, and re-embeds windows read from the dicts
    let o = shardflow(dir.path(), &["verify", "out/v0", "--json"]);
    assert_ok(&o);
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["layout"], "cosmos-predict2.5", "{report}");
    assert_eq!(report["samples"], 23, "{report}");
    let model = data("t5-tiny");
    let o = shardflow(
        dir.path(),
        &[
            "verify",
            "out/v0",
            "--t5-model",
            model.to_str().unwrap(),
            "--sample",
            "10",
        ],
    );
    assert_ok(&o);
    let o = shardflow(dir.path(), &["inspect", "out/v0", "--json"]);
    assert_ok(&o);
    assert!(stdout(&o).contains("\"windows\""), "{}", stdout(&o));
    let o = shardflow(dir.path(), &["index", "out/v0"]);
    assert_ok(&o);
    let o = shardflow(dir.path(), &["verify", "out/v0"]);
    assert_ok(&o);

    // the reference layout, the default, is not what the trainer reads: the reader says so
    let o = shard(dir.path(), &input, "ref", &[]);
    assert_ok(&o);
    let e = read_as_the_trainer(dir.path(), "ref/v0").unwrap_err();
    assert!(e.contains("metas has no 'nb_frames'"), "{e}");
    let o = shardflow(dir.path(), &["verify", "ref/v0", "--json"]);
    assert_ok(&o);
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(report.get("layout").is_none(), "{report}");

    // a damaged member is caught by verify: a window key the trainer rejects
    let damaged = dir.path().join("damaged");
    copy_tree(&dir.path().join("out"), &damaged);
    let metas = files_below(&damaged.join("v0"))
        .into_iter()
        .find(|p| {
            p.to_string_lossy().contains("/metas/") && p.extension().is_some_and(|e| e == "tar")
        })
        .unwrap();
    let bytes = std::fs::read(&metas).unwrap();
    let from = b"\"start_frame\": 0, \"end_frame\": ";
    let at = bytes
        .windows(from.len())
        .rposition(|w| w == from)
        .expect("a t2w window");
    let mut changed = bytes.clone();
    // same length, so the tar stays readable: `start_frame` becomes `start_framX`
    changed[at + 11] = b'X';
    std::fs::write(&metas, changed).unwrap();
    let o = shardflow(dir.path(), &["verify", "damaged/v0"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("not one the trainer accepts"),
        "{}",
        stdout(&o)
    );

    // the journal records the layout; verify holds the samples to it
    let relabelled = dir.path().join("relabelled");
    copy_tree(&dir.path().join("out"), &relabelled);
    let job = relabelled.join("v0/_shardflow/job.json");
    let text = std::fs::read_to_string(&job).unwrap();
    assert!(text.contains("\"layout\": \"cosmos-predict2.5\""), "{text}");
    std::fs::write(&job, text.replace("\"layout\": \"cosmos-predict2.5\",", "")).unwrap();
    let o = shardflow(dir.path(), &["verify", "relabelled/v0"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("the job wrote the reference layout, but the samples are in the cosmos-predict2.5 layout"),
        "{}",
        stdout(&o)
    );
}

/// Every file of a version's dataset (the job folder aside), by relative path.
fn dataset_files(version_dir: &Path) -> BTreeMap<String, Vec<u8>> {
    files_below(version_dir)
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(version_dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (rel, p)
        })
        .filter(|(rel, _)| !rel.starts_with("_shardflow"))
        .map(|(rel, p)| (rel, std::fs::read(p).unwrap()))
        .collect()
}

#[test]
fn a_reshard_keeps_the_layout_and_a_layout_change_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input");
    copy_tree(&data("sample-dataset"), &input);
    copy_tree(&input.join("metas/v0"), &input.join("metas/v1"));
    // v1: two captions rewritten, one clip gone, one clip turned portrait
    run_tool(
        "edit_input.py",
        ["make-v1", input.join("metas/v1").to_str().unwrap()],
    );
    let (work, fresh) = (dir.path().join("work"), dir.path().join("fresh"));
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(&fresh).unwrap();
    let run = |cwd: &Path, sub: &str, version: &str, extra: &[&str]| {
        let model = data("t5-tiny");
        let mut cmd = shardflow_command(cwd);
        cmd.arg(sub)
            .args(["--input-clip-path", input.to_str().unwrap()])
            .args([
                "--output-dataset-path",
                "out",
                "--annotation-version",
                version,
            ])
            .args([
                "--remap-clip-location",
                &format!("{SAMPLE_ROOT}={}", input.display()),
            ])
            .args(["--t5-model", model.to_str().unwrap()])
            .args([
                "--max-rejected-fraction",
                "0.5",
                "--target-tar-size-mb",
                "0.05",
            ])
            .args(extra)
            .env("SOURCE_DATE_EPOCH", "1700000000");
        cmd.output().expect("shardflow runs")
    };
    assert_ok(&run(&work, "shard", "v0", &LAYOUT));
    // a re-shard into the other layout cannot take the embeddings over
    let o = run(&work, "reshard", "v1", &["--from-version", "v0"]);
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("layout: \"cosmos-predict2.5\" before, \"reference\" now"),
        "{}",
        stderr(&o)
    );
    // in the same layout it embeds only the new captions, and equals a fresh shard
    let o = run(
        &work,
        "reshard",
        "v1",
        &[&["--from-version", "v0"][..], &LAYOUT].concat(),
    );
    assert_ok(&o);
    assert!(
        stdout(&o).contains("2 caption windows embedded"),
        "{}",
        stdout(&o)
    );
    assert_ok(&run(&fresh, "shard", "v1", &LAYOUT));
    let (a, b) = (
        dataset_files(&work.join("out/v1")),
        dataset_files(&fresh.join("out/v1")),
    );
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (rel, bytes) in &a {
        assert!(bytes == &b[rel], "{rel} differs from a fresh shard's");
    }
    read_as_the_trainer(&work, "out/v1").unwrap();

    // appending in the other layout is refused, naming the option
    let o = run(&work, "shard", "v1", &["--append"]);
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(stderr(&o).contains("layout:"), "{}", stderr(&o));
}

/// Each tar of `version_dir` by the stream directory it lies in.
fn tars_by_stream(version_dir: &Path) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for p in files_below(version_dir) {
        if p.extension().is_some_and(|e| e == "tar") {
            let stream = p.parent().unwrap().parent().unwrap().file_name().unwrap();
            *out.entry(stream.to_string_lossy().into_owned())
                .or_default() += 1;
        }
    }
    out
}

#[test]
fn a_umt5_model_writes_the_predict25_embedding_stream_as_umt5_xxl() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input");
    copy_tree(&data("sample-dataset"), &input);
    let umt5 = data("umt5-tiny");
    let model = umt5.to_str().unwrap();
    let o = shard_with_model(dir.path(), &input, "out", &umt5, &LAYOUT);
    assert_ok(&o);
    let v0 = dir.path().join("out/v0");
    let by_stream = tars_by_stream(&v0);
    assert_eq!(
        by_stream.keys().collect::<Vec<_>>(),
        ["metas", "umt5_xxl", "video"],
        "{by_stream:?}"
    );
    assert!(by_stream["umt5_xxl"] == by_stream["video"] && by_stream["video"] > 0);
    let job = std::fs::read_to_string(v0.join("_shardflow/job.json")).unwrap();
    assert!(job.contains("\"embedding_stream\": \"umt5_xxl\""), "{job}");
    // the trainer set to embedding_type umt5_xxl reads every sample; set to t5_xxl it finds
    // no such data key
    let summary = read_as_the_trainer_with(dir.path(), "out/v0", "umt5_xxl").unwrap();
    assert_eq!(summary["samples"], 23, "{summary}");
    let e = read_as_the_trainer(dir.path(), "out/v0").unwrap_err();
    assert!(e.contains("data_keys"), "{e}");

    // the dataset tools find the stream by its name
    let o = shardflow(dir.path(), &["verify", "out", "--json"]);
    assert_ok(&o);
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["embedding_stream"], "umt5_xxl", "{report}");
    assert_eq!(report["samples"], 23, "{report}");
    let o = shardflow(
        dir.path(),
        &[
            "verify",
            "out/v0",
            "--checksums",
            "--t5-model",
            model,
            "--sample",
            "8",
        ],
    );
    assert_ok(&o);
    let o = shardflow(dir.path(), &["inspect", "out/v0", "--json"]);
    assert_ok(&o);
    let bins: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let windows: u64 = bins
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["windows"].as_u64().unwrap())
        .sum();
    assert_eq!(windows, 31, "{bins}");
    let o = shardflow(dir.path(), &["index", "out/v0"]);
    assert_ok(&o);
    assert!(files_below(&v0)
        .iter()
        .any(|p| p.ends_with("umt5_xxl/shardindex.json")));
    let o = shardflow(
        dir.path(),
        &["export", "--format", "cosmos-predict2-dir", "out/v0", "exp"],
    );
    assert_ok(&o);
    let checked = run_tool(
        "check_export.py",
        [
            v0.to_str().unwrap(),
            dir.path().join("exp").to_str().unwrap(),
            "--d-model",
            "16",
            "--embedding-key",
            "umt5_xxl",
        ],
    );
    assert!(checked.contains("\"entries\": 31"), "{checked}");

    // a resume of the complete job keeps everything; a re-shard from it copies every tar
    let before = dataset_files(&v0);
    let o = shard_with_model(
        dir.path(),
        &input,
        "out",
        &umt5,
        &[&LAYOUT[..], &["--resume"]].concat(),
    );
    assert_ok(&o);
    assert_eq!(dataset_files(&v0), before);
    copy_tree(&input.join("metas/v0"), &input.join("metas/v1"));
    let remap = format!("{SAMPLE_ROOT}={}", input.display());
    let reshard = |version: &str, model: &str| {
        let args = [
            "reshard",
            "--input-clip-path",
            input.to_str().unwrap(),
            "--output-dataset-path",
            "out",
            "--annotation-version",
            version,
            "--from-version",
            "v0",
            "--t5-model",
            model,
            "--remap-clip-location",
            &remap,
            "--max-rejected-fraction",
            "0.5",
        ];
        shardflow(dir.path(), &[&args[..], &LAYOUT].concat())
    };
    let o = reshard("v1", model);
    assert_ok(&o);
    assert!(
        stdout(&o).contains("0 caption windows embedded"),
        "{}",
        stdout(&o)
    );
    assert_eq!(tars_by_stream(&dir.path().join("out/v1")), by_stream);
    let o = shardflow(dir.path(), &["verify", "out/v1"]);
    assert_ok(&o);

    // with every embedding tar gone, verify still names them by the job's recorded stream
    let gone = dir.path().join("gone");
    copy_tree(&v0, &gone);
    for p in files_below(&gone) {
        if p.to_string_lossy().contains("/umt5_xxl/") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let o = shardflow(dir.path(), &["verify", "gone", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let problems = report["problems"].as_array().unwrap();
    assert!(!problems.is_empty(), "{report}");
    for p in problems {
        let (path, message) = (p["path"].as_str().unwrap(), p["message"].as_str().unwrap());
        assert!(
            !path.contains("/t5_xxl/") && !message.contains("job wrote"),
            "{p}"
        );
        assert!(!message.contains("data_keys"), "{p}");
    }
    assert!(problems
        .iter()
        .any(|p| p["path"].as_str().unwrap().contains("/umt5_xxl/part_")));

    // a re-shard with the T5 model is another model: refused, naming the stream it changes
    copy_tree(&input.join("metas/v0"), &input.join("metas/v2"));
    let o = reshard("v2", data("t5-tiny").to_str().unwrap());
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("embedding_stream: \"umt5_xxl\" before, \"t5_xxl\" now"),
        "{}",
        stderr(&o)
    );
}
