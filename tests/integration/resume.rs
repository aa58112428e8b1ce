//! Crash safety and `--resume` with the real binary: SIGKILL at seeded random points, SIGTERM,
//! and resumes that must be refused. The uninterrupted run is the oracle; with
//! `SOURCE_DATE_EPOCH` pinning the tar mtime, every output file must be byte-identical.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const EPOCH: &str = "1700000000";

fn command(cwd: &Path, input: &Path, out: &str, extra: &[&str]) -> Command {
    let model = data("t5-tiny");
    let mut cmd = shardflow_command(cwd);
    cmd.arg("shard");
    if !extra.contains(&"--t5-model") {
        cmd.args(["--t5-model", model.to_str().unwrap()]);
    }
    if !extra.contains(&"--target-tar-size-mb") {
        // small tars: many of them, so kills land between tars
        cmd.args(["--target-tar-size-mb", "0.05"]);
    }
    cmd.args(["--input-clip-path", input.to_str().unwrap()])
        .args(["--output-dataset-path", out])
        .args([
            "--remap-clip-location",
            &format!("{SAMPLE_ROOT}={}", input.display()),
        ])
        .args(["--workers", "2", "--max-rejected-fraction", "0.05"])
        .args(extra);
    cmd
}

fn run(cwd: &Path, input: &Path, out: &str, extra: &[&str], epoch: bool) -> Output {
    let mut cmd = command(cwd, input, out, extra);
    if epoch {
        cmd.env("SOURCE_DATE_EPOCH", EPOCH);
    }
    cmd.output().expect("shardflow runs")
}

fn spawn(cwd: &Path, input: &Path, out: &str) -> Child {
    command(cwd, input, out, &[])
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("shardflow starts")
}

/// Every file below `dir` except the job's own folder, with its bytes; in the summaries
/// (`wdinfo.json`, `wdinfo_list.csv`), which name the output folder, that name reads `OUT`.
fn dataset_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let mut out = BTreeMap::new();
    for p in files_below(dir) {
        let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
        if rel.starts_with("v0/_shardflow") {
            continue;
        }
        if rel.ends_with("wdinfo.json") || rel.ends_with(".csv") {
            let text = std::fs::read_to_string(&p).unwrap();
            out.insert(rel, text.replace(&name, "OUT").into_bytes());
        } else {
            out.insert(rel, std::fs::read(&p).unwrap());
        }
    }
    out
}

/// Every file below `dir`, the job folder included (the lock file aside: it names the
/// process that last held it), with its bytes and modification time.
fn every_file(dir: &Path) -> BTreeMap<String, (Vec<u8>, std::time::SystemTime)> {
    files_below(dir)
        .into_iter()
        .filter(|p| !p.ends_with("_shardflow/lock"))
        .map(|p| {
            let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();
            (
                p.to_string_lossy().into_owned(),
                (std::fs::read(&p).unwrap(), mtime),
            )
        })
        .collect()
}

/// Files whose name marks them as incomplete.
fn partial_files(dir: &Path) -> Vec<String> {
    files_below(dir)
        .into_iter()
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|p| p.ends_with(".partial"))
        .collect()
}

fn done_records(out: &Path) -> usize {
    files_below(&out.join("v0/_shardflow/done")).len()
}

/// xorshift64*: seeded delays without a dependency.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

#[test]
fn sigkill_at_random_points_then_resume_equals_the_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let input = sample_with_copies(tmp.path(), 200);
    let started = Instant::now();
    let base = run(tmp.path(), &input, "base", &[], true);
    assert_ok(&base);
    let wall = started.elapsed();
    let expected = dataset_files(&tmp.path().join("base"));
    let total = reconciled_counts(&tmp.path().join("base/v0"))["tars"]
        .as_u64()
        .unwrap();
    assert!(total > 50, "the run has many tars ({total})");

    let mut mid_run = 0;
    for seed in 1..=5u64 {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let frac = 0.15 + 0.75 * (next(&mut state) % 1000) as f64 / 1000.0;
        let delay = wall.mul_f64(frac);
        let out = format!("killed-{seed}");
        let mut child = spawn(tmp.path(), &input, &out);
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let out_dir = tmp.path().join(&out);
        let recorded = done_records(&out_dir);
        if recorded > 0 && (recorded as u64) < total {
            mid_run += 1;
        }
        let resumed = run(tmp.path(), &input, &out, &["--resume"], true);
        assert!(
            resumed.status.success(),
            "seed {seed} (killed after {delay:?}, {recorded} tars recorded): resume failed:\n{}",
            String::from_utf8_lossy(&resumed.stderr)
        );
        let got = dataset_files(&out_dir);
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "seed {seed}: file names differ"
        );
        for (name, bytes) in &expected {
            assert!(
                got[name] == *bytes,
                "seed {seed} (killed after {delay:?}): {name} differs from the uninterrupted run"
            );
        }
        assert_eq!(partial_files(&out_dir), Vec::<String>::new(), "seed {seed}");
        let counts = reconciled_counts(&out_dir.join("v0"));
        assert_eq!(counts["tars"].as_u64().unwrap(), total, "seed {seed}");
        assert!(
            counts["tars_resumed"].as_u64().unwrap() <= recorded as u64,
            "seed {seed}: {counts}"
        );
    }
    assert!(
        mid_run >= 2,
        "at least two kills landed mid-run ({mid_run})"
    );
}

#[test]
fn sigterm_stops_cleanly_and_resume_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let input = sample_with_copies(tmp.path(), 150);
    assert_ok(&run(tmp.path(), &input, "base", &[], true));
    let expected = dataset_files(&tmp.path().join("base"));

    let out_dir = tmp.path().join("term");
    let child = spawn(tmp.path(), &input, "term");
    // wait until some tars are complete, then ask it to stop
    let deadline = Instant::now() + Duration::from_secs(120);
    while done_records(&out_dir) < 3 {
        assert!(Instant::now() < deadline, "no tar completed");
        std::thread::sleep(Duration::from_millis(20));
    }
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("interrupted") && err.contains("--resume"),
        "{err}"
    );
    // complete tars only, no summary claiming completeness, a report that says so
    assert_eq!(partial_files(&out_dir), Vec::<String>::new());
    assert!(!out_dir.join("v0/wdinfo_list.csv").exists());
    let r = report(&out_dir.join("v0"));
    assert_eq!(r["ok"], false);
    let recorded = done_records(&out_dir);
    assert!(recorded >= 3);

    let resumed = run(tmp.path(), &input, "term", &["--resume"], true);
    assert_ok(&resumed);
    assert!(
        dataset_files(&out_dir) == expected,
        "resumed output differs"
    );
    let counts = reconciled_counts(&out_dir.join("v0"));
    assert_eq!(counts["tars_resumed"].as_u64().unwrap(), recorded as u64);
}

#[test]
fn resume_refuses_a_different_job_and_keeps_the_journal_mtime() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    copy_tree(&data("sample-dataset"), &input);
    // no SOURCE_DATE_EPOCH: the mtime is the job's start, kept in the journal
    assert_ok(&run(tmp.path(), &input, "out", &[], false));
    let before = dataset_files(&tmp.path().join("out"));

    let again = run(tmp.path(), &input, "out", &[], false);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("not empty") && err.contains("--resume"),
        "{err}"
    );

    let journal_before = every_file(&tmp.path().join("out"));
    let other = run(
        tmp.path(),
        &input,
        "out",
        &["--resume", "--target-tar-size-mb", "0.07"],
        false,
    );
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(
        err.contains("target_tar_size_mb: 0.05 before, 0.07 now"),
        "{err}"
    );

    let model = tmp.path().join("model");
    copy_tree(&data("t5-tiny"), &model);
    let cfg = std::fs::read_to_string(model.join("config.json")).unwrap();
    std::fs::write(model.join("config.json"), format!("{cfg}\n")).unwrap();
    let other_model = run(
        tmp.path(),
        &input,
        "out",
        &["--resume", "--t5-model", model.to_str().unwrap()],
        false,
    );
    let err = String::from_utf8_lossy(&other_model.stderr);
    assert!(!other_model.status.success());
    assert!(err.contains("the T5 model differs"), "{err}");
    // a refusal writes nothing: no report claiming a failed job, the journal as it was
    assert_eq!(other_model.status.code(), Some(2), "{err}");
    assert!(
        every_file(&tmp.path().join("out")) == journal_before,
        "a refused resume changed the output"
    );

    // inputs changed since the run: an edited caption and the last quarter of the metadata
    // files gone. Resuming writes what a fresh run over today's inputs writes: the tars whose
    // clips changed again, and the tars today's plan no longer has removed
    let metas = input.join("metas/v0");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&metas)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let name = files
        .iter()
        .find(|p| {
            std::fs::read_to_string(p)
                .is_ok_and(|t| t.contains("\"qwen_caption\": \"") && t.contains("\"valid\": true"))
        })
        .unwrap()
        .clone();
    let text = std::fs::read_to_string(&name).unwrap();
    std::fs::write(
        &name,
        text.replacen("\"qwen_caption\": \"", "\"qwen_caption\": \"An edited ", 1),
    )
    .unwrap();
    let gone: Vec<(PathBuf, Vec<u8>)> = files[files.len() * 3 / 4..]
        .iter()
        .filter(|p| **p != name)
        .map(|p| (p.clone(), std::fs::read(p).unwrap()))
        .collect();
    for (p, _) in &gone {
        std::fs::remove_file(p).unwrap();
    }
    let job: serde_json::Value = serde_json::from_slice(
        &std::fs::read(tmp.path().join("out/v0/_shardflow/job.json")).unwrap(),
    )
    .unwrap();
    let mtime = job["mtime"].as_u64().unwrap().to_string();
    let edited = run(tmp.path(), &input, "out", &["--resume"], false);
    assert_ok(&edited);
    let err = String::from_utf8_lossy(&edited.stderr);
    assert!(err.contains("writing it again"), "{err}");
    assert!(err.contains("removing it"), "{err}");
    let fresh = command(tmp.path(), &input, "fresh", &[])
        .env("SOURCE_DATE_EPOCH", &mtime)
        .output()
        .unwrap();
    assert_ok(&fresh);
    let (resumed, expected) = (
        dataset_files(&tmp.path().join("out")),
        dataset_files(&tmp.path().join("fresh")),
    );
    assert_eq!(
        resumed.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    let differing: Vec<&String> = resumed
        .iter()
        .filter(|(k, v)| expected.get(*k) != Some(v))
        .map(|(k, _)| k)
        .collect();
    assert!(
        differing.is_empty(),
        "resuming over changed inputs differs from a fresh run: {differing:?}"
    );
    let c = reconciled_counts(&tmp.path().join("out/v0"));
    assert!(c["tars_resumed"].as_u64().unwrap() > 0, "{c}");
    assert!(c["tars_resumed"].as_u64() < c["tars"].as_u64(), "{c}");
    std::fs::write(&name, text).unwrap();
    for (p, bytes) in &gone {
        std::fs::write(p, bytes).unwrap();
    }
    // and back: the inputs as they were give the dataset as it was
    let back = run(tmp.path(), &input, "out", &["--resume"], false);
    assert_ok(&back);
    assert!(dataset_files(&tmp.path().join("out")) == before);

    // resuming the finished job keeps every tar and rewrites the same summaries
    let same = run(tmp.path(), &input, "out", &["--resume"], false);
    assert_ok(&same);
    assert!(dataset_files(&tmp.path().join("out")) == before);
    let c = reconciled_counts(&tmp.path().join("out/v0"));
    assert_eq!(c["tars_resumed"], c["tars"]);

    // a lost tar is written again, a second later, with the journal's mtime: same bytes
    let bin = tmp
        .path()
        .join("out/v0/resolution_1080/aspect_ratio_16_9/frames_0_120");
    std::fs::remove_file(bin.join("video/part_000000/000000.tar")).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let redo = run(tmp.path(), &input, "out", &["--resume"], false);
    assert_ok(&redo);
    assert!(dataset_files(&tmp.path().join("out")) == before);
    let c = reconciled_counts(&tmp.path().join("out/v0"));
    assert_eq!(
        c["tars_resumed"].as_u64().unwrap() + 1,
        c["tars"].as_u64().unwrap()
    );

    // a clip replaced in place (same size, other bytes; the metadata is the same): its
    // triple is written again with the new bytes, the others are kept
    let video = bin.join("video/part_000000/000000.tar");
    let mut a = tar::Archive::new(std::fs::File::open(&video).unwrap());
    let mut first = Vec::new();
    std::io::Read::read_to_end(
        &mut a.entries().unwrap().next().unwrap().unwrap(),
        &mut first,
    )
    .unwrap();
    let clip = files_below(&input)
        .into_iter()
        .find(|p| std::fs::read(p).is_ok_and(|b| b == first))
        .expect("the clip of the first sample");
    let replaced: Vec<u8> = first.iter().map(|b| b ^ 0x5a).collect();
    std::fs::write(&clip, &replaced).unwrap();
    let redo = run(tmp.path(), &input, "out", &["--resume"], false);
    assert_ok(&redo);
    let c = reconciled_counts(&tmp.path().join("out/v0"));
    assert_eq!(
        c["tars_resumed"].as_u64().unwrap() + 1,
        c["tars"].as_u64().unwrap()
    );
    let mut a = tar::Archive::new(std::fs::File::open(&video).unwrap());
    let mut now = Vec::new();
    std::io::Read::read_to_end(&mut a.entries().unwrap().next().unwrap().unwrap(), &mut now)
        .unwrap();
    assert!(now == replaced, "the video tar holds the replaced clip");
}

#[test]
fn a_failed_write_stops_the_job_naming_the_file_and_resume_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    copy_tree(&data("sample-dataset"), &input);
    assert_ok(&run(tmp.path(), &input, "out", &[], true));
    let before = dataset_files(&tmp.path().join("out"));
    // lose one tar (10 KiB), and let the job write no file over 8 KiB: writing it again fails
    // with EFBIG, as a full disk fails with ENOSPC (RLIMIT_FSIZE, with SIGXFSZ ignored)
    let dir = tmp
        .path()
        .join("out/v0/resolution_1080/aspect_ratio_16_9/frames_0_120/video/part_000000");
    assert!(std::fs::metadata(dir.join("000001.tar")).unwrap().len() > 8192);
    std::fs::remove_file(dir.join("000001.tar")).unwrap();
    let cmd = command(tmp.path(), &input, "out", &["--resume"]);
    // bash: its `ulimit -f` counts KiB (dash's counts 512-byte blocks)
    let full = Command::new("bash")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 8; exec \"$0\" \"$@\"")
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .current_dir(tmp.path())
        .env("SHARDFLOW_LOG", "warn")
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .output()
        .unwrap();
    assert_eq!(full.status.code(), Some(1));
    let err = String::from_utf8_lossy(&full.stderr);
    assert!(
        err.contains("000001.tar") && err.contains("File too large"),
        "{err}"
    );
    assert!(!dir.join("000001.tar").exists());
    assert!(report(&tmp.path().join("out/v0"))["ok"] == false);
    assert_eq!(
        partial_files(&tmp.path().join("out")),
        Vec::<String>::new(),
        "the failed temporary file is removed"
    );
    // room again: resume finishes the job, identical to the first run
    assert_ok(&run(tmp.path(), &input, "out", &["--resume"], true));
    assert!(dataset_files(&tmp.path().join("out")) == before);
}

/// A job killed while it wrote its journal leaves the lock and a temporary `job.json`:
/// `--resume` starts the job afresh (nothing was written yet) instead of refusing, a plain
/// run may use the output too, and neither leaves the temporary file behind.
#[test]
fn killed_while_writing_the_journal_resumes_from_scratch() {
    let tmp = tempfile::tempdir().unwrap();
    let input = sample_with_copies(tmp.path(), 0);
    let expected = {
        assert_ok(&run(tmp.path(), &input, "base", &[], true));
        dataset_files(&tmp.path().join("base"))
    };
    for (out, extra) in [("resumed", &["--resume"][..]), ("fresh", &[][..])] {
        let job_dir = tmp.path().join(out).join("v0/_shardflow");
        std::fs::create_dir_all(&job_dir).unwrap();
        std::fs::write(job_dir.join("lock"), b"").unwrap();
        std::fs::write(job_dir.join(".job.json.4242-0.partial"), b"{\"format\":").unwrap();
        let o = run(tmp.path(), &input, out, extra, true);
        assert_ok(&o);
        assert_eq!(dataset_files(&tmp.path().join(out)), expected, "{out}");
        assert_eq!(
            partial_files(&tmp.path().join(out)),
            Vec::<String>::new(),
            "{out}"
        );
    }
}
