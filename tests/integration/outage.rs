//! Outages, interruptions and races in the middle of a job, with the real binary: the job
//! fails loudly, naming what it could not read or write, claims no completeness, and
//! `--resume` finishes it; no two writers work on one output at once.

use std::path::{Path, PathBuf};

use crate::common::*;
use crate::s3::{s3, Proxy};

/// A metadata file of the sample dataset that is valid and binned.
const META: &str = "22756df8-ac7e-5b10-bbe1-b392e219c386.json";

/// The storage serves a metadata file while the job plans, then fails (503 after all retries)
/// when the planned clip's metadata is read again in full: an outage, not a changed input.
/// The job must stop (exit 1, the file named, no summaries), not reject the clip as
/// "changed during the job" and succeed without it; `--resume` then completes the dataset.
#[test]
fn an_outage_while_metadata_is_read_again_fails_the_job_and_resume_completes() {
    let Some(s3) = s3() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let bucket = s3.bucket("reload");
    let input = data("sample-dataset");
    let s3_in = format!("s3://{bucket}/in");
    s3.util(&["upload", input.to_str().unwrap(), &s3_in]);
    let remap = format!("{SAMPLE_ROOT}={s3_in}");
    let args = |out: &str| {
        [
            "--input-clip-path",
            &s3_in,
            "--output-dataset-path",
            out,
            "--remap-clip-location",
            &remap,
            "--max-rejected-fraction",
            "0.1",
            "--s3-max-retries",
            "1",
        ]
        .map(str::to_string)
    };
    let run = |endpoint: &str, out: &str, extra: &[&str]| {
        let mut a: Vec<String> = args(out).to_vec();
        a.extend(extra.iter().map(|s| s.to_string()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        s3.shard(tmp.path(), endpoint, &a, &[])
    };
    assert_ok(&run(&s3.endpoint, "base", &[]));

    // the first GET of the file (planning) passes, every later one fails
    let proxy = Proxy::start(
        &s3,
        &tmp.path().join("proxy"),
        &["--fail-gets-matching", META, "--fail-gets-after", "1"],
    );
    let failed = run(&proxy.endpoint, "out", &[]);
    assert!(
        proxy.faults().iter().any(|f| f.contains(META)),
        "the metadata was read again through the failing proxy: {:?}",
        proxy.faults()
    );
    let err = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{err}");
    let v0 = tmp.path().join("out/v0");
    let r = report(&v0);
    assert_eq!(r["ok"], false, "{r}");
    let error = r["error"].as_str().unwrap();
    assert!(
        error.contains(META) && error.contains("storage failed"),
        "{error}"
    );
    assert!(!v0.join("wdinfo_list.csv").exists());
    let rejects = std::fs::read_to_string(v0.join("_shardflow/rejects.jsonl")).unwrap_or_default();
    assert!(!rejects.contains(META), "an outage is no reject: {rejects}");
    drop(proxy);

    // the storage is back: --resume finishes the job as an uninterrupted run does
    assert_ok(&run(&s3.endpoint, "out", &["--resume"]));
    let line = compare_strict(&tmp.path().join("base"), &tmp.path().join("out"));
    assert!(line.ends_with("OK"), "{line}");
    let (got, want) = (
        reconciled_counts(&v0),
        reconciled_counts(&tmp.path().join("base/v0")),
    );
    for k in ["listed", "written", "rejected"] {
        assert_eq!(got[k], want[k], "{k}");
    }
}

/// A `--resume` over changed inputs rewrites tars of a finished dataset. Killed (SIGKILL)
/// after it rewrote one, before its summaries and report, it leaves tars that its
/// `SHA256SUMS` and the earlier run's successful report do not describe: the dataset tools
/// must call that dataset incomplete (as they call any interrupted job's), not finished; a
/// `--resume` then finishes it.
#[test]
fn a_resume_killed_after_rewriting_a_tar_leaves_no_finished_looking_dataset() {
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir().unwrap();
    // more clips, in small tars: a run writes many triples
    let input = sample_with_copies(tmp.path(), 300);
    let shard = |extra: &[&str]| {
        let mut cmd = shardflow_command(tmp.path());
        cmd.arg("shard")
            .args(["--t5-model", data("t5-tiny").to_str().unwrap()])
            .args(["--input-clip-path", input.to_str().unwrap()])
            .args(["--output-dataset-path", "out", "--workers", "2"])
            .args(["--target-tar-size-mb", "0.05"])
            .args(["--max-rejected-fraction", "0.05"])
            .args([
                "--remap-clip-location",
                &format!("{SAMPLE_ROOT}={}", input.display()),
            ])
            .args(extra)
            .env("SOURCE_DATE_EPOCH", "1700000000");
        cmd
    };
    assert_ok(&shard(&[]).output().unwrap());
    let v0 = tmp.path().join("out/v0");
    let tool = |name: &str| shardflow(tmp.path(), &[name, v0.to_str().unwrap()]);
    assert_ok(&tool("inspect"));

    // the first triple of the largest bin: its first clip gets a new caption
    let done = v0.join("_shardflow/done");
    let first = files_below(&done)
        .into_iter()
        .filter(|p| p.ends_with("part_000000/000000.json"))
        .max_by_key(|p| {
            std::fs::read_dir(p.parent().unwrap().parent().unwrap())
                .unwrap()
                .count()
        })
        .unwrap();
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&first).unwrap()).unwrap();
    let key = record["contents"]["keys"][0].as_str().unwrap().to_string();
    let meta = files_below(&input.join("metas/v0"))
        .into_iter()
        .find(|p| {
            std::fs::read_to_string(p)
                .is_ok_and(|t| t.contains(&format!("\"span_uuid\": \"{key}\"")))
        })
        .unwrap();
    let text = std::fs::read_to_string(&meta).unwrap();
    assert!(text.contains("\"qwen_caption\": \""), "{}", meta.display());
    std::fs::write(
        &meta,
        text.replacen("\"qwen_caption\": \"", "\"qwen_caption\": \"An edited ", 1),
    )
    .unwrap();
    // every other triple to be written again too (the same bytes), so the job is still
    // writing when the edited one is done
    for p in files_below(&done) {
        std::fs::remove_file(p).unwrap();
    }
    let mut child = shard(&["--resume"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !first.exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the resume ended early"
        );
        assert!(
            Instant::now() < deadline,
            "the edited triple was never rewritten"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        files_below(&done).len()
            < files_below(&v0)
                .iter()
                .filter(|p| p.extension().is_some_and(|e| e == "tar"))
                .count()
                / 3,
        "the resume was killed before it had rewritten every triple"
    );

    // its tars are no longer those its SHA256SUMS lists
    let checked = shardflow(tmp.path(), &["verify", "--checksums", v0.to_str().unwrap()]);
    assert!(!checked.status.success());

    let inspect = tool("inspect");
    let err = String::from_utf8_lossy(&inspect.stderr);
    assert_eq!(inspect.status.code(), Some(1), "{err}");
    assert!(err.contains("is incomplete"), "{err}");
    assert_eq!(tool("index").status.code(), Some(2));

    assert_ok(&shard(&["--resume"]).output().unwrap());
    assert_ok(&tool("inspect"));
    assert_ok(&shardflow(
        tmp.path(),
        &["verify", "--checksums", v0.to_str().unwrap()],
    ));
}

/// `index` writes into a finished dataset (DALI indexes beside its tars, `SHA256SUMS`). It
/// refuses a dataset a job is writing; a job started while it runs must in turn be refused
/// (exit 2, "locked"), not write the same output at once: `index` holds the output lock.
#[test]
fn a_job_started_while_index_writes_the_dataset_is_refused() {
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    copy_tree(&data("sample-dataset"), &input);
    // a 256 MiB clip (sparse): reading its tar keeps `index` busy for a while
    run_tool(
        "edit_input.py",
        [
            "add-clip",
            input.to_str().unwrap(),
            "big",
            &(256u64 << 20).to_string(),
            "sparse",
        ],
    );
    assert_ok(&shard(tmp.path(), &input, "out", &[]));
    let v0 = tmp.path().join("out/v0");
    let index = shardflow_command(tmp.path())
        .args(["index", v0.to_str().unwrap(), "--threads", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // once it is past its check of the dataset (it holds the lock, or has written an index),
    // it is paused, so that the job below starts while it is still writing
    let deadline = Instant::now() + Duration::from_secs(60);
    while !v0.join("_shardflow/lock").exists()
        && !files_below(&v0)
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "idx"))
    {
        assert!(Instant::now() < deadline, "index never started");
        std::thread::sleep(Duration::from_millis(1));
    }
    let signal = |sig: &str| {
        let pid = index.id().to_string();
        let ok = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap();
        assert!(ok.success());
    };
    signal("-STOP");
    let resumed = shard(tmp.path(), &input, "out", &["--resume"]);
    signal("-CONT");
    let indexed = index.wait_with_output().unwrap();
    assert!(
        indexed.status.success(),
        "{}",
        String::from_utf8_lossy(&indexed.stderr)
    );
    let err = String::from_utf8_lossy(&resumed.stderr);
    assert_eq!(resumed.status.code(), Some(2), "{err}");
    assert!(err.contains("is locked"), "{err}");
    // the index released its lock: the dataset is finished, and a job may write it again
    assert!(!v0.join("_shardflow/lock").exists());
    assert_ok(&shardflow(tmp.path(), &["inspect", v0.to_str().unwrap()]));
    assert_ok(&shard(tmp.path(), &input, "out", &["--resume"]));
}

/// The answer to the conditional PUT that creates the lock object on S3 is lost (the
/// connection drops after the server took the write). The job must know the lock object
/// it finds as its own, not refuse to run because "another job" (itself) holds the output,
/// leaving a lock object that blocks every job for the lease's 120 s.
#[test]
fn a_lost_answer_to_the_lock_write_does_not_lock_the_job_out() {
    let Some(s3) = s3() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let bucket = s3.bucket("lockanswer");
    let input = data("sample-dataset");
    let out_uri = format!("s3://{bucket}/out");
    let proxy = Proxy::start(
        &s3,
        &tmp.path().join("proxy"),
        &["--drop-answer-matching", "_shardflow/lock"],
    );
    let run = s3.shard(
        tmp.path(),
        &proxy.endpoint,
        &[
            "--input-clip-path",
            input.to_str().unwrap(),
            "--output-dataset-path",
            &out_uri,
            "--remap-clip-location",
            &format!("{SAMPLE_ROOT}={}", input.display()),
        ],
        &[],
    );
    assert!(
        proxy
            .faults()
            .iter()
            .any(|f| f.starts_with("drop-after PUT") && f.contains("_shardflow/lock")),
        "the lock write's answer was dropped: {:?}",
        proxy.faults()
    );
    assert_ok(&run);
    let left = s3.util(&["ls", &out_uri]);
    assert!(!left.contains("_shardflow/lock"), "{left}");
    let dl = tmp.path().join("dl");
    s3.download(&out_uri, &dl);
    let line = compare_strict(&data("sample-dataset-expected"), &dl);
    assert!(line.ends_with("OK"), "{line}");
}

/// Process 0 of a cluster job whose peers never connect stops after the connect timeout
/// (exit 3). Its S3 lock object must go with it, as on a lost peer: a lock left behind
/// refuses every job on the output, a `--resume` included, for the lease's 120 s.
#[test]
fn a_cluster_job_that_never_connects_releases_its_s3_lock() {
    let Some(s3) = s3() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let bucket = s3.bucket("connect");
    let input = data("sample-dataset");
    let out_uri = format!("s3://{bucket}/out");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // the second process is a closed port: it never connects
    std::fs::write(
        tmp.path().join("hosts"),
        format!("127.0.0.1:{port}\n127.0.0.1:9\n"),
    )
    .unwrap();
    let args = [
        "--input-clip-path",
        input.to_str().unwrap(),
        "--output-dataset-path",
        &out_uri,
        "--remap-clip-location",
        &format!("{SAMPLE_ROOT}={}", input.display()),
    ];
    let mut cluster = args.to_vec();
    cluster.extend([
        "--processes",
        "2",
        "--process",
        "0",
        "--hostfile",
        "hosts",
        "--connect-timeout-s",
        "2",
    ]);
    let out = s3.shard(tmp.path(), &s3.endpoint, &cluster, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("did not all connect within 2 s"), "{err}");
    let left = s3.util(&["ls", &out_uri]);
    assert!(!left.contains("_shardflow/lock"), "{left}");
    // the output can be written at once
    let mut resume = args.to_vec();
    resume.push("--resume");
    assert_ok(&s3.shard(tmp.path(), &s3.endpoint, &resume, &[]));
}

/// SIGTERM sent to `launch` alone (a scheduler or container runtime signals the process it
/// started) must stop the job's processes, gracefully as SIGTERM stops `shard`: `launch` may
/// not die leaving them writing the output, holding its lock, unseen.
#[test]
fn sigterm_to_launch_stops_its_processes_and_resume_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let input = sample_with_copies(tmp.path(), 300);
    let (launch, v0) = start_launch(tmp.path(), &input);
    let term = std::process::Command::new("kill")
        .args(["-TERM", &launch.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let out = launch.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    // no process of the job is left running: the output lock is free at once
    let lock = v0.join("_shardflow/lock");
    if lock.exists() {
        let free = std::process::Command::new("flock")
            .args(["-n", lock.to_str().unwrap(), "true"])
            .status()
            .unwrap();
        assert!(
            free.success(),
            "a process of the job still holds the lock: {err}"
        );
    }
    // it stopped as a signal stops a job: a report that says so, no summaries
    let r = report(&v0);
    assert_eq!(r["ok"], false, "{r}");
    assert!(r["error"].as_str().unwrap().contains("interrupted"), "{r}");
    assert!(!v0.join("wdinfo_list.csv").exists());
    let mut resume = shardflow_command(tmp.path());
    resume
        .arg("shard")
        .args(launch_shard_args(&input))
        .arg("--resume");
    assert_ok(&resume.output().unwrap());
    assert!(v0.join("wdinfo_list.csv").exists());
    reconciled_counts(&v0);
}

/// A scheduler that signals every process of a job (Slurm's `scancel`) reaches each of
/// `launch`'s processes twice: directly and through `launch`. That is one request to stop:
/// the processes stop gracefully and write their report, they do not exit at once.
#[test]
fn a_signal_to_every_process_of_a_launch_stops_the_job_gracefully() {
    let tmp = tempfile::tempdir().unwrap();
    let input = sample_with_copies(tmp.path(), 300);
    let (launch, v0) = start_launch(tmp.path(), &input);
    let children = std::process::Command::new("pgrep")
        .args(["-P", &launch.id().to_string()])
        .output()
        .unwrap();
    let mut pids: Vec<String> = String::from_utf8_lossy(&children.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(pids.len(), 2, "launch's processes: {pids:?}");
    pids.push(launch.id().to_string());
    let term = std::process::Command::new("kill")
        .arg("-TERM")
        .args(&pids)
        .status()
        .unwrap();
    assert!(term.success());
    let out = launch.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        !err.contains("signalled again"),
        "a process took the repeated signal for a second request: {err}"
    );
    // process 0 stopped gracefully: its report says so
    let r = report(&v0);
    assert_eq!(r["ok"], false, "{r}");
    assert!(r["error"].as_str().unwrap().contains("interrupted"), "{r}");
}

/// `shard`'s arguments for `input` into `out`: one worker, small tars.
fn launch_shard_args(input: &Path) -> Vec<String> {
    [
        "--t5-model",
        data("t5-tiny").to_str().unwrap(),
        "--input-clip-path",
        input.to_str().unwrap(),
        "--output-dataset-path",
        "out",
        "--workers",
        "1",
        "--target-tar-size-mb",
        "0.05",
        "--max-rejected-fraction",
        "0.05",
        "--remap-clip-location",
        &format!("{SAMPLE_ROOT}={}", input.display()),
    ]
    .map(str::to_string)
    .to_vec()
}

/// Starts `launch --processes 2` of [`launch_shard_args`] in `dir` (its stderr piped) and
/// waits until the job has started planning and writing; returns it and the version folder.
fn start_launch(dir: &Path, input: &Path) -> (std::process::Child, PathBuf) {
    use std::time::{Duration, Instant};
    let launch = shardflow_command(dir)
        .args(["launch", "--processes", "2", "--"])
        .args(launch_shard_args(input))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let v0 = dir.join("out/v0");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !v0.join("_shardflow/job.json").exists() {
        assert!(Instant::now() < deadline, "the job never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    (launch, v0)
}
