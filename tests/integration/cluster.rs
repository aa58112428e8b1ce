//! Multi-process jobs: the real binary as several processes on loopback, config files, and
//! failures of a process.

use crate::common::*;
use std::collections::BTreeMap;
use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// 1×1, 1×4, 2×2 and 3×1 (processes × workers) write the same dataset, member for member.
#[test]
fn same_dataset_for_every_process_layout() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&data("sample-dataset"), &dir.path().join("in"));
    let input = dir.path().join("in");
    let remap = format!("{SAMPLE_ROOT}={}", input.display());
    let model = data("t5-tiny");
    let mut reference: Option<BTreeMap<(String, String), Vec<u8>>> = None;
    for (processes, workers) in [(1, 1), (1, 4), (2, 2), (3, 1)] {
        let out = format!("out-{processes}x{workers}");
        let shard_args = [
            "--input-clip-path",
            input.to_str().unwrap(),
            "--output-dataset-path",
            &out,
            "--t5-model",
            model.to_str().unwrap(),
            "--remap-clip-location",
            &remap,
            "--workers",
            &workers.to_string(),
            "--max-rejected-fraction",
            "0.05",
        ]
        .map(str::to_string);
        let mut args: Vec<String> = if processes == 1 {
            vec!["shard".into()]
        } else {
            vec![
                "launch".into(),
                "--processes".into(),
                processes.to_string(),
                "--".into(),
            ]
        };
        args.extend(shard_args);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = shardflow(dir.path(), &argv);
        assert_ok(&run);
        let line = compare_strict(&data("sample-dataset-expected"), &dir.path().join(&out));
        assert!(line.ends_with("OK"), "{processes}x{workers}: {line}");
        let version_dir = dir.path().join(&out).join("v0");
        reconciled_counts(&version_dir);
        let m = tar_members(&version_dir);
        assert_eq!(m.len(), 23 * 3);
        match &reference {
            None => reference = Some(m),
            Some(r) => assert!(
                r == &m,
                "{processes}x{workers}: tar members differ from 1x1"
            ),
        }
    }
}

/// A process that dies makes the others stop promptly with a clear message, and nothing is
/// marked complete.
#[test]
fn killed_process_fails_the_job_fast() {
    let dir = tempfile::tempdir().unwrap();
    let gen = tool("make_dataset.py")
        .args([
            "generate",
            "ds",
            "--size",
            "random",
            "--count",
            "1000",
            "--seed",
            "9",
            "--clip-location-relative",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        gen.status.success(),
        "{}",
        String::from_utf8_lossy(&gen.stderr)
    );
    let ports: Vec<u16> = (0..2)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        })
        .collect();
    std::fs::write(
        dir.path().join("hosts"),
        format!("127.0.0.1:{}\n127.0.0.1:{}\n", ports[0], ports[1]),
    )
    .unwrap();
    let start = |i: usize| {
        shardflow_command(dir.path())
            .args([
                "shard",
                "--input-clip-path",
                "ds",
                "--output-dataset-path",
                "out",
                "--workers",
                "1",
            ])
            .arg("--t5-model")
            .arg(data("t5-tiny"))
            .args([
                "--processes",
                "2",
                "--hostfile",
                "hosts",
                "--process",
                &i.to_string(),
            ])
            .env("SHARDFLOW_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut p0 = start(0);
    let mut p1 = start(1);
    // let them connect and start working (process 0 has planned: the job journal exists),
    // then kill process 1; a fixed sleep raced with a fast job
    let planned = dir.path().join("out/v0/_shardflow/job.json");
    let waiting = Instant::now();
    while !planned.exists() {
        assert!(
            waiting.elapsed() < Duration::from_secs(60),
            "process 0 did not plan within 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        p0.try_wait().unwrap().is_none(),
        "process 0 finished before the kill; use a bigger dataset"
    );
    p1.kill().unwrap();
    p1.wait().unwrap();
    let killed = Instant::now();
    let status = loop {
        if let Some(s) = p0.try_wait().unwrap() {
            break s;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "process 0 still running 30 s after its peer died"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    p0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(err.contains("lost contact with another process"), "{err}");
    assert!(!dir.path().join("out/v0/_shardflow/report.json").exists());
    assert!(!dir.path().join("out/v0/wdinfo_list.csv").exists());
}

/// A process whose peers never come stops after the connect timeout.
#[test]
fn missing_peer_times_out() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&data("sample-dataset"), &dir.path().join("in"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        dir.path().join("hosts"),
        format!("127.0.0.1:{port}\n127.0.0.1:9\n"),
    )
    .unwrap();
    let t = Instant::now();
    let out = shard(
        dir.path(),
        &dir.path().join("in"),
        "out",
        &[
            "--processes",
            "2",
            "--process",
            "0",
            "--hostfile",
            "hosts",
            "--connect-timeout-s",
            "2",
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(t.elapsed() < Duration::from_secs(20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("did not all connect within 2 s"), "{err}");
}

/// `--check` on a broken config lists every problem with its key path, and runs nothing.
#[test]
fn check_lists_every_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "input_clip_path = \"nope\"\nt5_model = \"missing-model\"\nworkers = 0\nt5_dtype = \"fp8\"\n\
         max_batch_tokens = 10\n[cluster]\nprocesses = 2\nprocess = 7\naddresses = [\"a:1\", \"b\"]\n",
    )
    .unwrap();
    let out = shardflow(
        dir.path(),
        &["shard", "--config", cfg.to_str().unwrap(), "--check"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "output_dataset_path (--output-dataset-path): required",
        "input_clip_path (--input-clip-path):",
        "t5_model (--t5-model):",
        "workers (--workers):",
        "t5_dtype (--t5-dtype):",
        "max_batch_tokens (--max-batch-tokens):",
        "cluster.process (--process):",
        "cluster.addresses[1]:",
    ] {
        assert!(err.contains(key), "{key} not reported:\n{err}");
    }
    // an unknown key is named
    std::fs::write(&cfg, "workerz = 2\n").unwrap();
    let out = shardflow(
        dir.path(),
        &["shard", "--config", cfg.to_str().unwrap(), "--check"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("workerz"));
}

/// Every file in `configs/` loads and validates (with `--check`, which also loads the model).
#[test]
fn every_example_config_validates() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    for e in std::fs::read_dir(root().join("configs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            n += 1;
            let out = shardflow(
                dir.path(),
                &[
                    "shard",
                    "--config",
                    p.to_str().unwrap(),
                    "--process",
                    "0",
                    "--check",
                ],
            );
            assert_ok(&out);
        }
    }
    assert!(n >= 3, "only {n} configs");
}

/// The quickstart config runs from the config alone, with the output path overridden.
#[test]
fn config_file_drives_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("qs");
    let cfg = root().join("configs/quickstart.toml");
    let out = shardflow(
        dir.path(),
        &[
            "shard",
            "--config",
            cfg.to_str().unwrap(),
            "--output-dataset-path",
            out_dir.to_str().unwrap(),
            "--workers",
            "2",
        ],
    );
    assert_ok(&out);
    let line = compare_strict(&data("sample-dataset-expected"), &out_dir);
    assert!(line.ends_with("OK"), "{line}");
}
