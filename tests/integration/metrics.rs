//! `--metrics-listen`: the live metrics endpoint, scraped while a real job runs.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::*;

/// A loopback port free now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET /metrics` on `addr`: the response's head and body, or `None` if nothing listens.
fn scrape(addr: SocketAddr) -> Option<(String, String)> {
    let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    c.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((head.to_string(), body.to_string()))
}

/// The samples of an exposition text, `name{labels}` → value, after checking that every
/// line is a `# HELP`, a `# TYPE` (counter or gauge) or a sample of a family typed before it.
fn parse(body: &str) -> BTreeMap<String, f64> {
    let mut typed = BTreeMap::new();
    let mut samples = BTreeMap::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(name.starts_with("shardflow_") && !help.is_empty(), "{line}");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(["counter", "gauge"].contains(&kind), "{line}");
            typed.insert(name.to_string(), kind.to_string());
        } else {
            let (series, value) = line.rsplit_once(' ').expect("name value");
            let name = series.split('{').next().unwrap();
            assert!(typed.contains_key(name), "{line}: no # TYPE before it");
            if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
                let inner = labels.strip_prefix('{').and_then(|l| l.strip_suffix('}'));
                let (key, val) = inner.and_then(|l| l.split_once('=')).expect(line);
                assert!(["reason", "stage"].contains(&key), "{line}");
                assert!(val.starts_with('"') && val.ends_with('"'), "{line}");
            }
            let v: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
            assert!(v.is_finite() && v >= 0.0, "{line}");
            samples.insert(series.to_string(), v);
        }
    }
    samples
}

/// A job of a few hundred clips, one worker and one caption window per encoder batch, is
/// scraped as it runs: the text parses, counters never go down, and the last values seen stay
/// within the report's counts; once the job ends the port is closed.
#[test]
fn metrics_are_served_while_the_job_runs() {
    let dir = tempfile::tempdir().unwrap();
    let gen = tool("make_dataset.py")
        .args([
            "generate",
            "ds",
            "--size",
            "random",
            "--count",
            "300",
            "--seed",
            "5",
            "--clip-location-relative",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_ok(&gen);
    // one input to reject, counted as the job reads it
    std::fs::write(dir.path().join("ds/metas/v0/broken.json"), "{not json").unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut child = shardflow_command(dir.path())
        .args(["shard", "--input-clip-path", "ds"])
        .args(["--output-dataset-path", "out", "--annotation-version", "v0"])
        .arg("--t5-model")
        .arg(data("t5-tiny"))
        .args([
            "--workers",
            "1",
            "--batch-size",
            "1",
            "--target-tar-size-mb",
            "5",
        ])
        .args(["--max-rejected-fraction", "0.01"])
        .args(["--metrics-listen", &addr.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    // every scrape answered while the process still ran afterwards: taken mid-run
    let mut during: Vec<BTreeMap<String, f64>> = Vec::new();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the job did not end in 300 s"
        );
        if let Some((head, body)) = scrape(addr) {
            assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
            assert!(
                head.contains("Content-Type: text/plain; version=0.0.4"),
                "{head}"
            );
            let samples = parse(&body);
            if child.try_wait().unwrap().is_none() {
                during.push(samples);
            }
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "exit {status:?}\n{stderr}");
    assert!(
        scrape(addr).is_none(),
        "metrics still served after the job ended"
    );

    assert!(!during.is_empty(), "no scrape during the run");
    // the endpoint is up from before the job starts until it ends: some scrape saw work done
    let worked = |s: &BTreeMap<String, f64>| s["shardflow_windows_encoded_total"] > 0.0;
    assert!(
        during.iter().any(worked),
        "no scrape of {} during the run saw an encoded window",
        during.len()
    );
    let broken = "shardflow_rejects_total{reason=\"invalid_json\"}";
    assert!(
        during.iter().any(|s| s[broken] == 1.0),
        "no scrape during the run saw the reject"
    );
    for pair in during.windows(2) {
        for (series, before) in &pair[0] {
            if series.starts_with("shardflow_batch_queued_clips") {
                continue; // a gauge
            }
            let now = pair[1].get(series).copied().unwrap_or(f64::NAN);
            assert!(now >= *before, "{series} went from {before} to {now}");
        }
    }

    let counts = reconciled_counts(&dir.path().join("out/v0"));
    let count = |k: &str| counts[k].as_u64().unwrap() as f64;
    let last = during.last().unwrap();
    let at_most = [
        ("shardflow_planned_clips_total", count("listed")),
        ("shardflow_samples_written_total", count("written")),
        ("shardflow_windows_encoded_total", count("windows_embedded")),
        ("shardflow_tokens_encoded_total", count("tokens_embedded")),
        ("shardflow_bytes_written_total", count("bytes")),
        ("shardflow_tars_completed_total", count("tars")),
    ];
    for (series, limit) in at_most {
        let v = last[series];
        assert!(v <= limit, "{series} {v} > the report's {limit}");
    }
    assert!(count("written") > 0.0 && count("tars") > 1.0, "{counts}");
    for (series, v) in last {
        if let Some(reason) = series
            .strip_prefix("shardflow_rejects_total{reason=\"")
            .and_then(|r| r.strip_suffix("\"}"))
        {
            let limit = counts["rejected"][reason].as_u64().unwrap_or(0) as f64;
            assert!(*v <= limit, "{series} {v} > the report's {limit}");
        }
    }
    let stages: Vec<&String> = last
        .keys()
        .filter(|k| k.starts_with("shardflow_stage_busy_seconds_total{"))
        .collect();
    assert!(
        stages.iter().any(|s| s.contains("stage=\"encode\"")),
        "{stages:?}"
    );
}

/// A port already in use fails the command before the job starts (exit 2, naming the
/// address); so does an address that does not parse.
#[test]
fn a_metrics_port_in_use_fails_before_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = shard(
        dir.path(),
        &data("sample-dataset"),
        "out",
        &["--metrics-listen", &addr],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot serve metrics on {addr}")),
        "{stderr}"
    );
    assert!(
        !dir.path().join("out/v0/_shardflow/report.json").exists(),
        "the job ran"
    );

    let out = shard(
        dir.path(),
        &data("sample-dataset"),
        "out",
        &["--metrics-listen", "localhost"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("metrics_listen (--metrics-listen)"),
        "{stderr}"
    );
}
