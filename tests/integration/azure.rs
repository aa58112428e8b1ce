//! `az://` output against a real Azure Blob service on 127.0.0.1 (Azurite, started by
//! `.ci/run`, which exports `SHARDFLOW_TEST_AZURE_ENDPOINT`), with the real binary; blobs are
//! created and fetched with azure-storage-blob (`tests/tools/azutil.py`), independently of
//! shardflow's storage code. Credentials reach shardflow the way Azure's own tools take them
//! for the emulator (`AZURE_STORAGE_USE_EMULATOR`, `AZURITE_BLOB_STORAGE_URL`).
//!
//! By hand: `azurite-blob --blobHost 127.0.0.1 --blobPort 10000 --inMemoryPersistence &` then
//! `SHARDFLOW_TEST_AZURE_ENDPOINT=http://127.0.0.1:10000 cargo test --test integration azure::`.
//! Without a server these tests say so loudly and pass, unless `SHARDFLOW_REQUIRE_AZURE=1`
//! (set by CI).

use std::path::Path;
use std::process::Command;

use crate::common::*;

/// The Azurite blob endpoint, or `None` (after a loud message) when there is none.
fn azurite() -> Option<String> {
    let required = std::env::var("SHARDFLOW_REQUIRE_AZURE").is_ok_and(|v| v == "1");
    let endpoint = std::env::var("SHARDFLOW_TEST_AZURE_ENDPOINT").ok();
    let reachable = endpoint.as_deref().is_some_and(|e| {
        let addr = e.trim_start_matches("http://").trim_end_matches('/');
        std::net::TcpStream::connect(addr).is_ok()
    });
    if !reachable {
        let msg = format!(
            "AZURE TESTS SKIPPED: no Azurite at SHARDFLOW_TEST_AZURE_ENDPOINT={endpoint:?}; start \
             `azurite-blob --blobHost 127.0.0.1 --blobPort 10000 --inMemoryPersistence` and set \
             SHARDFLOW_TEST_AZURE_ENDPOINT=http://127.0.0.1:10000"
        );
        assert!(!required, "{msg} (SHARDFLOW_REQUIRE_AZURE=1)");
        eprintln!("\n*** {msg} ***\n");
        return None;
    }
    endpoint
}

/// `tests/tools/azutil.py` against `endpoint`.
fn azutil(endpoint: &str, args: &[&str]) -> String {
    stdout_of(
        tool("azutil.py")
            .args(args)
            .env("AZURITE_BLOB_STORAGE_URL", endpoint),
        &format!("azutil {args:?}"),
    )
}

/// `shardflow` in `cwd` with the emulator's settings only (HOME is `cwd`).
fn command(endpoint: &str, cwd: &Path) -> Command {
    let mut cmd = shardflow_command(cwd);
    cmd.env("AZURE_STORAGE_USE_EMULATOR", "true")
        .env("AZURITE_BLOB_STORAGE_URL", endpoint)
        .env("HOME", cwd);
    cmd
}

/// The sample dataset sharded to `az://`: the blobs read back equal the reference's output
/// byte for byte, and `inspect` and `verify` read the dataset from the store (given the output
/// path or the version directory).
#[test]
fn sample_dataset_on_azure_equals_the_reference() {
    let Some(endpoint) = azurite() else { return };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("sample-dataset");
    copy_tree(&data("sample-dataset"), &input);
    let container = format!("shardflow-{}", std::process::id());
    azutil(&endpoint, &["mkcontainer", &container]);
    let out_uri = format!("az://{container}/out");
    let remap = format!("{SAMPLE_ROOT}={}", input.display());
    let model = data("t5-tiny");
    let out = command(&endpoint, dir.path())
        .args(["shard", "--input-clip-path"])
        .arg(&input)
        .args([
            "--output-dataset-path",
            &out_uri,
            "--annotation-version",
            "v0",
        ])
        .arg("--t5-model")
        .arg(&model)
        .args(["--remap-clip-location", &remap])
        .args(["--max-rejected-fraction", "0.05"])
        .output()
        .unwrap();
    assert_ok(&out);
    let local = dir.path().join("downloaded");
    let n: usize = azutil(&endpoint, &["download", &out_uri, local.to_str().unwrap()])
        .trim()
        .parse()
        .unwrap();
    assert!(n > 30, "only {n} blobs written");
    let line = compare_strict(&data("sample-dataset-expected"), &local);
    assert!(line.ends_with("OK"), "{line}");
    // no lock or partial object is left behind
    assert!(!local.join("v0/_shardflow/lock").exists());
    // the tools read it from the store, named by the output path or the version directory
    let version = format!("{out_uri}/v0");
    for (tool, path) in [
        ("inspect", &out_uri),
        ("verify", &version),
        ("verify", &out_uri),
    ] {
        let out = command(&endpoint, dir.path())
            .args([tool, path])
            .output()
            .unwrap();
        assert_ok(&out);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("reading {version}")),
            "{tool} {path}: {err}"
        );
    }
}
