//! A job's processes on hosts really apart: three network namespaces the test makes (veth
//! pairs on a bridge, a private /24 of their own, 5 ms of delay on every link where the kernel
//! has netem), one `shardflow shard` process in each, the input on the shared local file
//! system and the output on the S3 server of `tests/integration/s3.rs` (reached from the
//! namespaces through a forwarder on the bridge's address). Making namespaces needs root and
//! iproute2; without them these tests say so loudly and pass, unless
//! `SHARDFLOW_REQUIRE_NETNS=1` (set by CI).

mod net;

use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::s3::{s3, AWS_ENV, S3};
use net::{Forwarder, Hosts};

/// The hosts of one test, or `None` (after a loud message) where namespaces cannot be made.
fn hosts(n: usize) -> Option<Hosts> {
    let required = std::env::var("SHARDFLOW_REQUIRE_NETNS").is_ok_and(|v| v == "1");
    match Hosts::make(n) {
        Ok(h) => {
            h.delay(5);
            Some(h)
        }
        Err(e) => {
            let msg = format!(
                "MULTI-HOST TESTS SKIPPED: cannot make network namespaces ({e}); they need root \
                 and iproute2 (`ip`)"
            );
            assert!(!required, "{msg} (SHARDFLOW_REQUIRE_NETNS=1)");
            eprintln!("\n*** {msg} ***\n");
            None
        }
    }
}

/// A generated dataset of `count` clips at `dir/ds` (clip locations relative to it).
fn dataset(dir: &Path, count: usize) {
    let (out, count) = (dir.join("ds"), count.to_string());
    run_tool(
        "make_dataset.py",
        [
            "generate",
            out.to_str().unwrap(),
            "--size",
            "random",
            "--count",
            &count,
            "--seed",
            "11",
            "--clip-location-relative",
        ],
    );
}

/// `shard` of `dir/ds` into `output` with the tiny model, one worker per process.
fn shard_args(output: &str, extra: &[&str]) -> Vec<String> {
    let model = data("t5-tiny");
    let mut args: Vec<String> = [
        "shard",
        "--input-clip-path",
        "ds",
        "--output-dataset-path",
        output,
        "--t5-model",
        model.to_str().unwrap(),
        "--workers",
        "1",
    ]
    .map(str::to_string)
    .to_vec();
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

/// The processes of one job, one per host; killed on drop (a failed test leaves none behind).
struct Job {
    children: Vec<Child>,
}

impl Job {
    /// Starts process `i` of `args` on host `i`, for every host, against the S3 server
    /// through `s3`; each one's stderr goes to `dir/<name>-<i>.log`.
    fn start(hosts: &Hosts, s3: &Forwarder, dir: &Path, name: &str, args: &[String]) -> Job {
        let n = hosts.namespaces.len().to_string();
        let endpoint = format!("http://{}", s3.addr);
        let children = (0..hosts.namespaces.len())
            .map(|i| {
                let log = std::fs::File::create(dir.join(format!("{name}-{i}.log"))).unwrap();
                hosts
                    .command(i, SHARDFLOW)
                    .args(args)
                    .args(["--processes", &n, "--process", &i.to_string()])
                    .args(["--hostfile", "hostfile"])
                    .current_dir(dir)
                    .envs(AWS_ENV)
                    .env("AWS_ENDPOINT_URL", &endpoint)
                    .env("HOME", dir)
                    .env("SHARDFLOW_LOG", "warn")
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()
                    .unwrap()
            })
            .collect();
        Job { children }
    }

    /// Whether every process is still running.
    fn all_running(&mut self) -> bool {
        self.children
            .iter_mut()
            .all(|c| c.try_wait().unwrap().is_none())
    }

    /// Waits for every process to end, failing the test past `limit`; each one's status and
    /// when it ended, from `since`.
    fn wait(&mut self, since: Instant, limit: Duration) -> Vec<(ExitStatus, Duration)> {
        let mut ended: Vec<Option<(ExitStatus, Duration)>> = vec![None; self.children.len()];
        while ended.iter().any(Option::is_none) {
            for (c, e) in self.children.iter_mut().zip(ended.iter_mut()) {
                if e.is_none() {
                    *e = c.try_wait().unwrap().map(|s| (s, since.elapsed()));
                }
            }
            assert!(
                since.elapsed() < limit,
                "processes still running after {limit:?}: {ended:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        ended.into_iter().map(Option::unwrap).collect()
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What a test needs around its hosts: the dataset, a bucket, the hostfile, the forwarder,
/// and the one-process reference output (run in the root namespace), downloaded.
struct Setup {
    dir: tempfile::TempDir,
    bucket: String,
    forwarder: Forwarder,
}

fn setup(s3: &S3, hosts: &Hosts, name: &str, clips: usize) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path(), clips);
    let bucket = s3.bucket(name);
    let hostfile: String = hosts
        .addresses
        .iter()
        .map(|a| format!("{a}:2101\n"))
        .collect();
    std::fs::write(dir.path().join("hostfile"), hostfile).unwrap();
    let server: std::net::SocketAddr = s3
        .endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let forwarder = Forwarder::start(hosts.gateway, server);
    let reference = format!("s3://{bucket}/reference");
    let one = s3
        .command(dir.path())
        .args(shard_args(&reference, &[]))
        .output()
        .unwrap();
    assert_ok(&one);
    s3.download(&reference, &dir.path().join("reference"));
    Setup {
        dir,
        bucket,
        forwarder,
    }
}

impl Setup {
    /// Downloads `output` and checks it against the reference: every tar member byte for
    /// byte, and the summaries (`compare_datasets.py --strict-bytes`).
    fn assert_same_as_reference(&self, s3: &S3, output: &str) {
        let got = self.dir.path().join(output);
        s3.download(&format!("s3://{}/{output}", self.bucket), &got);
        let reference = self.dir.path().join("reference");
        let (want, have) = (
            tar_members(&reference.join("v0")),
            tar_members(&got.join("v0")),
        );
        assert!(!want.is_empty());
        assert_eq!(want.len(), have.len(), "tar member count");
        for (k, v) in &want {
            assert!(
                have.get(k) == Some(v),
                "{k:?} differs from the one-process run"
            );
        }
        let line = compare_strict(&reference, &got);
        assert!(line.ends_with("OK"), "{line}");
        reconciled_counts(&got.join("v0"));
    }

    fn log(&self, name: &str, i: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}-{i}.log"))).unwrap()
    }
}

/// Three processes on three hosts write the dataset one process writes, member for member.
#[test]
fn three_hosts_write_the_dataset_of_one_process() {
    let Some(s3) = s3() else { return };
    let Some(hosts) = hosts(3) else { return };
    let setup = setup(&s3, &hosts, "hosts", 300);
    let output = format!("s3://{}/hosts", setup.bucket);
    let args = shard_args(&output, &[]);
    let mut job = Job::start(&hosts, &setup.forwarder, setup.dir.path(), "run", &args);
    let ended = job.wait(Instant::now(), Duration::from_secs(300));
    for (i, (status, took)) in ended.iter().enumerate() {
        assert!(
            status.success(),
            "process {i}: {status}\n{}",
            setup.log("run", i)
        );
        eprintln!("process {i} ended after {:.1} s", took.as_secs_f64());
    }
    setup.assert_same_as_reference(&s3, "hosts");
}

/// A link that goes down mid-job (no process dies, nothing is closed: the host just stops
/// answering) stops every process with exit code 3 within the peer timeout and some slack;
/// with the link back, `--resume` completes the dataset of one process.
#[test]
fn a_link_down_stops_every_host_and_resume_completes() {
    const PEER_TIMEOUT_S: u64 = 10;
    let Some(s3) = s3() else { return };
    let Some(hosts) = hosts(3) else { return };
    let setup = setup(&s3, &hosts, "linkdown", 1000);
    let output = format!("s3://{}/hosts", setup.bucket);
    let timeout = PEER_TIMEOUT_S.to_string();
    let args = shard_args(&output, &["--peer-timeout-s", &timeout]);
    let started = Instant::now();
    let mut job = Job::start(&hosts, &setup.forwarder, setup.dir.path(), "run", &args);
    // once process 0 has planned (its job journal exists), cut host 2 off
    let journal = format!("s3://{}/hosts/v0/_shardflow", setup.bucket);
    let waiting = Instant::now();
    while !s3.util(&["ls", &journal]).contains("job.json") {
        assert!(
            waiting.elapsed() < Duration::from_secs(120),
            "process 0 did not plan within 120 s"
        );
        assert!(job.all_running(), "a process ended before the job planned");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        job.all_running(),
        "a process finished before the link went down; use a bigger dataset"
    );
    hosts.set_link(2, false);
    let down = Instant::now();
    eprintln!(
        "link down {:.1} s after the start",
        (down - started).as_secs_f64()
    );
    let limit = Duration::from_secs(PEER_TIMEOUT_S + 30);
    let ended = job.wait(down, limit);
    for (i, (status, after)) in ended.iter().enumerate() {
        eprintln!(
            "process {i}: {status} {:.1} s after the link went down",
            after.as_secs_f64()
        );
    }
    for (i, (status, _)) in ended.iter().enumerate() {
        let log = setup.log("run", i);
        assert_eq!(status.code(), Some(3), "process {i}:\n{log}");
        assert!(log.contains("lost contact with another process"), "{log}");
    }
    let left = s3.util(&["ls", &journal]);
    assert!(!left.contains("report.json"), "{left}");
    // process 0 released the output lock as it stopped: --resume need not wait out its lease
    assert!(!left.contains("_shardflow/lock"), "{left}");

    hosts.set_link(2, true);
    let mut args = args;
    args.push("--resume".into());
    let mut job = Job::start(&hosts, &setup.forwarder, setup.dir.path(), "resume", &args);
    let ended = job.wait(Instant::now(), Duration::from_secs(300));
    for (i, (status, _)) in ended.iter().enumerate() {
        assert!(
            status.success(),
            "process {i}: {status}\n{}",
            setup.log("resume", i)
        );
    }
    setup.assert_same_as_reference(&s3, "hosts");
}
