//! `shardflow export --format cosmos-predict2-dir` with the real binary: the sample dataset,
//! in both layouts, exported for cosmos-predict2's directory loader and checked by
//! `tests/tools/check_export.py` (one-array pickles equal to the dataset's embeddings, stripped
//! prompts, whole clips copied, cut windows of exactly their frames); a second run skips
//! everything, an interrupted export is finished by running it again, and S3 works both ways.

use std::path::Path;
use std::process::Output;

use crate::common::*;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `export` of `dataset` into `out` (both relative to `cwd`).
fn export(cwd: &Path, dataset: &str, out: &str, extra: &[&str]) -> Output {
    let mut args = vec!["export", "--format", "cosmos-predict2-dir", dataset, out];
    args.extend_from_slice(extra);
    shardflow(cwd, &args)
}

/// `check_export.py` of `export` against `dataset`: its summary.
fn check(dataset: &Path, export: &Path, extra: &[&str]) -> serde_json::Value {
    let out = run_tool(
        "check_export.py",
        [dataset.as_os_str(), export.as_os_str()]
            .into_iter()
            .map(|s| s.to_owned())
            .chain(["--d-model", "16"].into_iter().map(Into::into))
            .chain(extra.iter().map(Into::into)),
    );
    serde_json::from_str(out.trim()).expect("a JSON summary")
}

/// The summary line's figures, in order: written, cut, already there, without a caption,
/// too short, failed.
fn figures(o: &Output) -> Vec<u64> {
    let out = stdout(o);
    let line = out.lines().last().unwrap_or("");
    // after the export directory's name, which may hold digits
    let (_, counts) = line.rsplit_once(": ").unwrap_or(("", line));
    counts
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

fn exported_and_checked(extra_shard: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let o = shard(dir.path(), &data("sample-dataset"), "out", extra_shard);
    assert_ok(&o);
    // the output path names the one version
    let o = export(dir.path(), "out", "exp", &[]);
    assert_ok(&o);
    let summary = check(&dir.path().join("out/v0"), &dir.path().join("exp"), &[]);
    let n = |k: &str| summary[k].as_u64().unwrap();
    // 23 clips, some with several windows: whole clips and cut windows both
    assert!(n("whole") >= 10 && n("cut") >= 10, "{summary}");
    assert_eq!(
        figures(&o),
        [n("entries"), n("cut"), 0, n("uncaptioned"), 0, 0],
        "{}",
        stdout(&o)
    );
    assert_eq!(n("uncaptioned"), 2, "{summary}");

    // a second run writes nothing
    let o = export(dir.path(), "out/v0", "exp", &[]);
    assert_ok(&o);
    assert_eq!(figures(&o), [0, 0, n("entries"), 2, 0, 0], "{}", stdout(&o));

    // an export cut short (files of two entries missing, a partial file left) is finished
    let exp = dir.path().join("exp");
    let mut videos: Vec<_> = std::fs::read_dir(exp.join("videos"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    videos.sort();
    std::fs::remove_file(&videos[0]).unwrap();
    let stem = videos[1].file_stem().unwrap().to_str().unwrap().to_string();
    std::fs::remove_file(exp.join(format!("metas/{stem}.txt"))).unwrap();
    std::fs::write(exp.join(format!("metas/.{stem}.txt.partial")), b"half").unwrap();
    let o = export(dir.path(), "out", "exp", &[]);
    assert_ok(&o);
    assert_eq!(figures(&o)[..3], [2, figures(&o)[1], n("entries") - 2]);
    std::fs::remove_file(exp.join(format!("metas/.{stem}.txt.partial"))).unwrap();
    assert_eq!(check(&dir.path().join("out/v0"), &exp, &[]), summary);

    // --min-frames skips the short windows, counted
    let o = export(dir.path(), "out", "long", &["--min-frames", "257"]);
    assert_ok(&o);
    let long = check(
        &dir.path().join("out/v0"),
        &dir.path().join("long"),
        &["--min-frames", "257"],
    );
    assert!(long["too_short"].as_u64().unwrap() > 0, "{long}");
    assert!(long["entries"].as_u64().unwrap() > 0, "{long}");
    assert_eq!(figures(&o)[4], long["too_short"].as_u64().unwrap());
}

#[test]
fn the_sample_dataset_exports_for_cosmos_predict2_and_resumes() {
    exported_and_checked(&[]);
}

#[test]
fn the_predict25_layout_exports_the_same_way() {
    exported_and_checked(&["--layout", "cosmos-predict2.5"]);
}

#[test]
fn a_window_that_cannot_be_cut_is_named_and_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    assert_ok(&shard(dir.path(), &data("sample-dataset"), "out", &[]));
    let o = export(
        dir.path(),
        "out",
        "exp",
        &["--ffmpeg", "/nonexistent/ffmpeg"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("/video/part_000000/") && err.contains(".mp4: window 1 (frames 256..=511)"),
        "{err}"
    );
    assert!(err.contains("running /nonexistent/ffmpeg"), "{err}");
    let f = figures(&o);
    // the whole clips are exported all the same; the cut windows are the failures
    assert_eq!((f[1], f[5] > 0), (0, true), "{}", stdout(&o));
    assert!(f[0] > 0, "{}", stdout(&o));
    // with ffmpeg, the rerun finishes the export
    let o = export(dir.path(), "out", "exp", &[]);
    assert_ok(&o);
    assert_eq!(figures(&o)[1], f[5], "{}", stdout(&o));
    check(&dir.path().join("out/v0"), &dir.path().join("exp"), &[]);
}

#[test]
fn from_s3_to_s3() {
    let Some(s3) = crate::s3::s3() else { return };
    let dir = tempfile::tempdir().unwrap();
    assert_ok(&shard(dir.path(), &data("sample-dataset"), "out", &[]));
    let bucket = s3.bucket("export");
    let local = dir.path().join("out/v0");
    s3.util(&[
        "upload",
        local.to_str().unwrap(),
        &format!("s3://{bucket}/ds/v0"),
    ]);
    // a finished job leaves no lock file: the copy on S3 reads as finished as it is
    let o = s3
        .command(dir.path())
        .args(["export", "--format", "cosmos-predict2-dir"])
        .args([format!("s3://{bucket}/ds"), format!("s3://{bucket}/exp")])
        .output()
        .unwrap();
    assert_ok(&o);
    s3.download(&format!("s3://{bucket}/exp"), &dir.path().join("exp"));
    let summary = check(&local, &dir.path().join("exp"), &[]);
    assert_eq!(figures(&o)[0], summary["entries"].as_u64().unwrap());
    // and the rerun finds them all there
    let o = s3
        .command(dir.path())
        .args(["export", "--format", "cosmos-predict2-dir"])
        .args([format!("s3://{bucket}/ds/v0"), format!("s3://{bucket}/exp")])
        .output()
        .unwrap();
    assert_ok(&o);
    assert_eq!(
        figures(&o)[..3],
        [0, 0, summary["entries"].as_u64().unwrap()]
    );
}

/// A cut window holds the clip's own frames, not its neighbours': one sample clip is replaced
/// by a moving test pattern (every frame differs), and `check_export.py` matches the decoded
/// pixels of each cut against the clip's frames at the window's start and one frame either side.
#[test]
fn a_cut_window_holds_exactly_the_clip_s_frames() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input");
    copy_tree(&data("sample-dataset"), &input);
    let uuid = "4ba4e725-d8e4-553e-a09d-0044d4ab5e35"; // 1100 frames, 4 windows
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(input.join(format!("metas/v0/{uuid}.json"))).unwrap(),
    )
    .unwrap();
    let n = &meta["num_frames"];
    let clip = input.join(format!("clips/{uuid}.mp4"));
    // small, so the cuts are quick: the export cuts frames, whatever their size
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size=160x120:rate={}", meta["framerate"]))
        .args([
            "-frames:v",
            &n.to_string(),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ])
        .args(["-pix_fmt", "yuv420p", "-an"])
        .arg(&clip)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
    // its num_bytes no longer matches: a warning, and the tar grouping uses num_bytes
    assert_ok(&shard(dir.path(), &input, "out", &[]));
    assert_ok(&export(dir.path(), "out", "exp", &[]));
    let summary = check(&dir.path().join("out/v0"), &dir.path().join("exp"), &[]);
    // its four windows are cut (none covers the clip), each matched at its own start
    assert!(summary["aligned"].as_u64().unwrap() >= 4, "{summary}");
}
