//! End-to-end tests: the real `shardflow` binary in fresh temp dirs.

mod edge_inputs;
mod hardening;

use crate::common::*;
use std::path::Path;

fn sample_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&data("sample-dataset"), &dir.path().join("sample-dataset"));
    dir
}

/// The sample dataset equals the reference's output, strictly, for 1 and 3 workers.
#[test]
fn sample_dataset_matches_reference_output() {
    for workers in ["1", "3"] {
        let dir = sample_copy();
        let input = dir.path().join("sample-dataset");
        let out = shard(dir.path(), &input, "out", &["--workers", workers]);
        assert_ok(&out);
        let line = compare_strict(&data("sample-dataset-expected"), &dir.path().join("out"));
        assert!(line.ends_with("OK"), "workers {workers}: {line}");
        let c = reconciled_counts(&dir.path().join("out/v0"));
        assert_eq!(c["listed"], 28);
        assert_eq!(c["written"], 23);
        assert_eq!(c["invalid"], 2);
        assert_eq!(c["dropped_no_bin"], 2);
        assert_eq!(c["rejected"]["invalid_json"], 1);
        assert_eq!(c["warnings"]["missing_caption"], 2);
        assert_eq!(c["warnings"]["num_bytes_mismatch"], 2);
        // 31 arrays of 2186 rows in the reference's pickles
        assert_eq!(c["windows_embedded"], 31);
        assert_eq!(c["tokens_embedded"], 2186);
        // the wdinfo root is the output path as given
        let wd = std::fs::read_to_string(
            dir.path()
                .join("out/v0/resolution_720/aspect_ratio_9_16/frames_0_120/wdinfo.json"),
        )
        .unwrap();
        assert!(
            wd.contains("\"root\": \"out/v0/resolution_720/aspect_ratio_9_16/frames_0_120\""),
            "{wd}"
        );
        let rejects =
            std::fs::read_to_string(dir.path().join("out/v0/_shardflow/rejects.jsonl")).unwrap();
        assert_eq!(rejects.lines().count(), 1);
        assert!(
            rejects.contains("9a5dca49-2522-5aa3-91d7-d6c1298844ce.json"),
            "{rejects}"
        );
    }
}

/// The report times the job's milestones from its start: planning complete, the first caption
/// encoded, the first tar completed. Today planning precedes batching, so they come in that
/// order; each is within the wall time.
/// Log lines written to a pipe carry no colour escapes (`NO_COLOR` or not): they end up in
/// files and log collectors.
#[test]
fn log_lines_to_a_pipe_are_plain_text() {
    let dir = sample_copy();
    let input = dir.path().join("sample-dataset");
    let out = shard(dir.path(), &input, "out", &[]);
    assert_ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    // the sample dataset's broken metadata file is logged
    assert!(err.contains("WARN") || err.contains("ERROR"), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "colour escapes in piped logs: {err:?}"
    );
}

#[test]
fn report_times_planning_the_first_encode_and_the_first_tar() {
    for workers in ["1", "3"] {
        let dir = sample_copy();
        let input = dir.path().join("sample-dataset");
        assert_ok(&shard(dir.path(), &input, "out", &["--workers", workers]));
        let r = report(&dir.path().join("out/v0"));
        let m = &r["milestone_seconds"];
        let at = |k: &str| {
            m[k].as_f64()
                .unwrap_or_else(|| panic!("workers {workers}: no milestone_seconds.{k}: {r}"))
        };
        let (planned, encoded, tar) = (
            at("planned"),
            at("first_caption_encoded"),
            at("first_tar_completed"),
        );
        let wall = r["wall_seconds"].as_f64().unwrap();
        // the plan streams: the first tars are encoded while the rest is still planned
        assert!(
            0.0 < encoded && encoded <= tar && tar <= wall && 0.0 < planned && planned <= wall,
            "workers {workers}: {m}, wall {wall}"
        );
    }
}

/// Python's tarfile, pickle + numpy and webdataset read every sample back.
#[test]
fn python_readers_open_every_sample() {
    let dir = sample_copy();
    let input = dir.path().join("sample-dataset");
    assert_ok(&shard(dir.path(), &input, "out", &["--workers", "2"]));
    let n = run_tool(
        "read_dataset.py",
        ["readers", dir.path().join("out/v0").to_str().unwrap()],
    );
    assert_eq!(n.trim(), "23");
}

/// A non-empty output version is refused before any work; a missing model is a clear error.
#[test]
fn refuses_non_empty_output_and_bad_model() {
    let dir = sample_copy();
    let input = dir.path().join("sample-dataset");
    std::fs::create_dir_all(dir.path().join("out/v0")).unwrap();
    std::fs::write(dir.path().join("out/v0/keep.txt"), b"x").unwrap();
    let out = shard(dir.path(), &input, "out", &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not empty") && err.contains("out/v0"), "{err}");

    let out = shardflow(
        dir.path(),
        &[
            "shard",
            "--input-clip-path",
            input.to_str().unwrap(),
            "--output-dataset-path",
            "fresh",
            "--t5-model",
            "no-such-model",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-model"), "{err}");
    assert!(
        !dir.path().join("fresh").exists(),
        "output created before the model was checked"
    );
}

/// `--check` validates without running; invalid options are all reported at once.
#[test]
fn check_and_option_validation() {
    let dir = sample_copy();
    let input = dir.path().join("sample-dataset");
    let out = shard(dir.path(), &input, "out", &["--check"]);
    assert_ok(&out);
    assert!(!dir.path().join("out").exists());
    let out = shard(
        dir.path(),
        &input,
        "out",
        &[
            "--workers",
            "0",
            "--batch-size",
            "0",
            "--max-tars-per-part",
            "0",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for opt in ["--workers", "--batch-size", "--max-tars-per-part"] {
        assert!(err.contains(opt), "{opt} not reported: {err}");
    }
}

fn write_meta(input: &Path, name: &str, text: &str) {
    let p = input.join("metas/v0").join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// The bad-input corpus: every case of SPEC §9 (and the limits shardflow adds) gets its exact
/// reject reason and a message, every valid clip is written, the counts add up, and the exit
/// code reflects `--max-rejected-fraction`.
#[test]
fn bad_inputs_are_reported_and_the_rest_written() {
    let dir = sample_copy();
    let input = dir.path().join("sample-dataset");
    let good =
        std::fs::read_to_string(input.join("metas/v0/7af5e99a-2a9f-5924-8d03-e1decf7f6f38.json"))
            .unwrap();
    // a variant of the good file with its own span_uuid
    let variant = |uuid: &str, from: &str, to: &str| {
        assert!(good.contains(from), "{from}");
        good.replace(from, to).replace(
            "\"span_uuid\": \"7af5e99a-2a9f-5924-8d03-e1decf7f6f38\"",
            &format!("\"span_uuid\": \"{uuid}\""),
        )
    };
    let outside = dir.path().join("elsewhere/clip.mp4");
    std::fs::create_dir_all(outside.parent().unwrap()).unwrap();
    std::fs::copy(
        input.join("clips/7af5e99a-2a9f-5924-8d03-e1decf7f6f38.mp4"),
        &outside,
    )
    .unwrap();
    let clip_loc =
        "/cosmos-curate-fixtures/sample-dataset/clips/7af5e99a-2a9f-5924-8d03-e1decf7f6f38.mp4";
    let nested = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let cases: Vec<(&str, String, &str)> = vec![
        ("bad-dup.json", good.clone(), "duplicate_span_uuid"),
        ("bad-slash.json", variant("x/y", "", ""), "unsafe_span_uuid"),
        ("bad-dot.json", variant("x.y", "", ""), "unsafe_span_uuid"),
        ("bad-dotdot.json", variant("..", "", ""), "unsafe_span_uuid"),
        (
            "bad-empty-uuid.json",
            variant("", "", ""),
            "unsafe_span_uuid",
        ),
        (
            "bad-type.json",
            variant("u-type", "\"width\": 1280", "\"width\": \"1280\""),
            "wrong_type",
        ),
        (
            "bad-float-int.json",
            variant("u-float", "\"width\": 1280", "\"width\": 1280.0"),
            "wrong_type",
        ),
        (
            "bad-nan.json",
            variant("u-nan", "\"framerate\": 24.0", "\"framerate\": NaN"),
            "wrong_type",
        ),
        (
            "bad-inf.json",
            variant("u-inf", "\"framerate\": 24.0", "\"framerate\": -Infinity"),
            "wrong_type",
        ),
        (
            "bad-negative.json",
            variant("u-neg", "\"num_bytes\": 18376", "\"num_bytes\": -1"),
            "wrong_type",
        ),
        (
            "bad-windows.json",
            variant("u-win", "\"windows\": [", "\"windows\": {\"a\": ["),
            "invalid_json",
        ),
        (
            "bad-missing.json",
            variant("u-miss", "\"num_frames\": 72,", ""),
            "missing_key",
        ),
        (
            "bad-clip.json",
            variant(
                "u-clip",
                "7af5e99a-2a9f-5924-8d03-e1decf7f6f38.mp4\"",
                "nope.mp4\"",
            ),
            "clip_missing",
        ),
        (
            "bad-clip-dir.json",
            variant(
                "u-cdir",
                clip_loc,
                "/cosmos-curate-fixtures/sample-dataset/clips",
            ),
            "clip_unreadable",
        ),
        (
            "bad-outside.json",
            variant("u-out", clip_loc, outside.to_str().unwrap()),
            "clip_outside_allowed_roots",
        ),
        (
            "bad-escape.json",
            variant(
                "u-esc",
                clip_loc,
                "/cosmos-curate-fixtures/sample-dataset/clips/../../elsewhere/clip.mp4",
            ),
            "clip_outside_allowed_roots",
        ),
        (
            "bad-caption.json",
            variant(
                "u-cap",
                "\"qwen_caption\": ",
                "\"qwen_caption\": 3, \"x\": ",
            ),
            "caption_not_string",
        ),
        ("bad-top-list.json", "[1, 2]".into(), "invalid_json"),
        ("bad-nested.json", nested, "invalid_json"),
        (
            "bad-truncated.json",
            good[..good.len() / 2].to_string(),
            "invalid_json",
        ),
        ("notes.txt", "not json at all".into(), "invalid_json"),
    ];
    for (name, text, _) in &cases {
        write_meta(&input, name, text);
    }
    // an enormous metadata file (sparse: costs no disk) is rejected unread
    let huge = std::fs::File::create(input.join("metas/v0/bad-huge.json")).unwrap();
    huge.set_len(17 << 20).unwrap();
    // a file name that is not UTF-8 cannot be a key of the report: rejected as unreadable
    {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::OsStr::from_bytes(b"bad-\xff.json");
        std::fs::write(input.join("metas/v0").join(name), &good).unwrap();
    }
    // suspicious but valid: written, with a warning
    write_meta(
        &input,
        "ok-bytes.json",
        &variant("u-bytes", "\"num_bytes\": 18376", "\"num_bytes\": 1"),
    );
    let roots = format!("--allowed-clip-roots={}", input.display());
    let out = shard(dir.path(), &input, "out", &["--workers", "2", &roots]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--max-rejected-fraction"), "{err}");
    let c = reconciled_counts(&dir.path().join("out/v0"));
    let n_bad = cases.len() as u64 + 2;
    assert_eq!(c["listed"].as_u64().unwrap(), 28 + n_bad + 1);
    assert_eq!(c["written"], 23 + 1, "{c}");
    assert_eq!(c["warnings"]["num_bytes_mismatch"], 2 + 1, "{c}");
    let rejects =
        std::fs::read_to_string(dir.path().join("out/v0/_shardflow/rejects.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = rejects
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // the sample's own broken file, plus ours
    assert_eq!(lines.len() as u64, 1 + n_bad, "{rejects}");
    let reason_of = |meta: &str| -> String {
        let l = lines
            .iter()
            .find(|l| l["meta"] == meta)
            .unwrap_or_else(|| panic!("no reject for {meta}: {rejects}"));
        assert!(!l["message"].as_str().unwrap().is_empty(), "{l}");
        l["reason"].as_str().unwrap().to_string()
    };
    for (name, _, reason) in &cases {
        assert_eq!(reason_of(name), *reason, "{name}");
    }
    assert_eq!(reason_of("bad-huge.json"), "meta_too_large");
    assert_eq!(reason_of("bad-\u{fffd}.json"), "unreadable_meta");
    // the duplicate is the later file in listing order ('7' < 'b')
    let dup = lines
        .iter()
        .find(|l| l["reason"] == "duplicate_span_uuid")
        .unwrap();
    assert!(
        dup["message"].as_str().unwrap().contains("7af5e99a"),
        "{dup}"
    );
    // no partial files anywhere
    let partial = walk(&dir.path().join("out"))
        .into_iter()
        .filter(|p| p.contains(".partial"))
        .count();
    assert_eq!(partial, 0);

    // the same run with a tolerance that covers the rejects exits 0
    let ok = shard(
        dir.path(),
        &input,
        "out2",
        &["--workers", "2", &roots, "--max-rejected-fraction", "0.5"],
    );
    assert_ok(&ok);
}

fn walk(p: &Path) -> Vec<String> {
    let mut out = vec![];
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path().to_string_lossy().into_owned());
        }
    }
    out
}

/// An object store that cannot be reached is an outage, not bad input: with the clips remapped
/// to S3 on a loopback port that refuses connections, every clip check fails after its
/// retries, and the job stops (exit 1) naming the object, rejecting no clip, resumably: a
/// `--resume` once the clips can be read writes the whole dataset.
#[test]
fn an_unreachable_clip_store_fails_the_job_instead_of_rejecting_clips() {
    let dir = sample_copy();
    let input = dir.path().join("sample-dataset");
    // bound, then closed: connections are refused (nothing leaves 127.0.0.1)
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let model = data("t5-tiny");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shardflow"))
        .args(["shard", "--input-clip-path", input.to_str().unwrap()])
        .args(["--output-dataset-path", "out", "--annotation-version", "v0"])
        .args(["--t5-model", model.to_str().unwrap(), "--workers", "2"])
        .args([
            "--remap-clip-location",
            &format!("{SAMPLE_ROOT}=s3://clips/remapped"),
        ])
        .args(["--s3-max-retries", "1", "--s3-retry-timeout-s", "2"])
        .args(["--max-rejected-fraction", "1"])
        .current_dir(dir.path())
        // test keys only, no user profile; the instance-metadata fallback is a closed port too
        .env("HOME", dir.path())
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL_S3")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_METADATA_ENDPOINT", "http://127.0.0.1:9")
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .env("SHARDFLOW_LOG", "warn")
        .output()
        .expect("shardflow runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("s3://clips/remapped/clips/"), "{err}");
    assert!(err.contains("--resume"), "{err}");
    let v0 = dir.path().join("out/v0");
    let r = report(&v0);
    assert_eq!(r["ok"], false, "{r}");
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("s3://clips/remapped/clips/"),
        "{r}"
    );
    let rejects = std::fs::read_to_string(v0.join("_shardflow/rejects.jsonl")).unwrap();
    assert!(
        !rejects.contains("clip_unreadable") && !rejects.contains("clip_missing"),
        "{rejects}"
    );
    assert!(!v0.join("wdinfo_list.csv").exists());
    // the job is recorded without a plan: --resume plans again
    let job: serde_json::Value =
        serde_json::from_slice(&std::fs::read(v0.join("_shardflow/job.json")).unwrap()).unwrap();
    assert!(job["inputs"].is_null(), "{job}");
    let resumed = shard(dir.path(), &input, "out", &["--workers", "2", "--resume"]);
    assert_ok(&resumed);
    let line = compare_strict(&data("sample-dataset-expected"), &dir.path().join("out"));
    assert!(line.ends_with("OK"), "{line}");
    assert_eq!(reconciled_counts(&v0)["written"], 23);
}
