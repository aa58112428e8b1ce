use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use super::serve::MetricsServer;
use super::*;

#[test]
fn reject_kinds_index_their_counters_in_order() {
    for (i, k) in RejectKind::ALL.iter().enumerate() {
        assert_eq!(*k as usize, i, "{k:?}");
    }
}

#[test]
fn a_snapshot_renders_as_exact_exposition_text() {
    let s = Snapshot {
        planned_clips: 27,
        samples_written: 12,
        windows_encoded: 30,
        tokens_encoded: 456,
        bytes_written: 1_048_576,
        tars_completed: 2,
        batch_queued_clips: 5,
        rejects: [
            ("invalid_json".to_string(), 1),
            ("we\"ird\\".to_string(), 0),
        ]
        .into_iter()
        .collect(),
        stage_seconds: [("batch".to_string(), 0.25), ("encode".to_string(), 3.0)]
            .into_iter()
            .collect(),
    };
    let expected = "\
# HELP shardflow_planned_clips_total Clips planned for writing.
# TYPE shardflow_planned_clips_total counter
shardflow_planned_clips_total 27
# HELP shardflow_samples_written_total Samples appended to tar triples by this process's writers.
# TYPE shardflow_samples_written_total counter
shardflow_samples_written_total 12
# HELP shardflow_windows_encoded_total Caption windows run through the text encoder.
# TYPE shardflow_windows_encoded_total counter
shardflow_windows_encoded_total 30
# HELP shardflow_tokens_encoded_total Tokens run through the text encoder.
# TYPE shardflow_tokens_encoded_total counter
shardflow_tokens_encoded_total 456
# HELP shardflow_bytes_written_total Bytes of the tar triples completed by this process's writers.
# TYPE shardflow_bytes_written_total counter
shardflow_bytes_written_total 1048576
# HELP shardflow_tars_completed_total Tar triples completed by this process's writers.
# TYPE shardflow_tars_completed_total counter
shardflow_tars_completed_total 2
# HELP shardflow_batch_queued_clips Clips queued in batch, waiting for the encoder.
# TYPE shardflow_batch_queued_clips gauge
shardflow_batch_queued_clips 5
# HELP shardflow_rejects_total Inputs rejected so far, per reason.
# TYPE shardflow_rejects_total counter
shardflow_rejects_total{reason=\"invalid_json\"} 1
shardflow_rejects_total{reason=\"we\\\"ird\\\\\"} 0
# HELP shardflow_stage_busy_seconds_total Seconds spent in each stage, summed over this process's workers.
# TYPE shardflow_stage_busy_seconds_total counter
shardflow_stage_busy_seconds_total{stage=\"batch\"} 0.25
shardflow_stage_busy_seconds_total{stage=\"encode\"} 3
";
    assert_eq!(render(&s), expected);
}

#[test]
fn counters_add_up_and_untimed_stages_are_left_out() {
    let m = Metrics::default();
    Metrics::add(&m.samples_written, 3);
    Metrics::add(&m.samples_written, 4);
    m.reject(RejectKind::ClipMissing);
    m.reject(RejectKind::ClipMissing);
    m.add_stage("encode", Duration::from_millis(1500));
    m.add_stage("encode", Duration::from_millis(500));
    m.add_stage("some_new_stage", Duration::from_millis(250));
    let s = m.snapshot();
    assert_eq!(s.samples_written, 7);
    assert_eq!(s.rejects.len(), RejectKind::ALL.len());
    assert_eq!(s.rejects["clip_missing"], 2);
    assert_eq!(s.rejects["invalid_json"], 0);
    let stages: Vec<(&str, f64)> = s
        .stage_seconds
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(stages, [("encode", 2.0), ("some_new_stage", 0.25)]);
}

/// Sends `request` to `addr` and returns the whole answer.
fn ask(addr: SocketAddr, request: &str) -> String {
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn the_endpoint_serves_metrics_and_nothing_else_until_dropped() {
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = MetricsServer::start(loopback, || "x 1\n".to_string()).unwrap();
    let addr = server.addr();
    assert_ne!(addr.port(), 0);
    let ok = ask(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    assert!(
        ok.contains("\r\nContent-Type: text/plain; version=0.0.4\r\n"),
        "{ok}"
    );
    assert!(ok.contains("\r\nConnection: close\r\n"), "{ok}");
    assert!(ok.ends_with("\r\n\r\nx 1\n"), "{ok}");
    let missing = ask(addr, "GET /other HTTP/1.1\r\n\r\n");
    assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");
    let post = ask(addr, "POST /metrics HTTP/1.1\r\n\r\n");
    assert!(post.starts_with("HTTP/1.1 405 "), "{post}");

    // the port is taken while it serves: a second bind fails, naming the address
    let e = MetricsServer::start(addr, String::new).err().unwrap();
    assert!(e.to_string().contains(&addr.to_string()), "{e}");
    drop(server);
    assert!(
        TcpStream::connect(addr).is_err(),
        "still serving after drop"
    );
}
