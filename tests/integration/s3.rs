//! S3 input and output against a real S3-compatible server on 127.0.0.1 (`moto_server`,
//! started by `.ci/run`, which exports `SHARDFLOW_TEST_S3_ENDPOINT`), with the real binary.
//! Objects are put and fetched with boto3 (`tests/tools/s3util.py`), independently of
//! shardflow's own storage code; faults come from `tests/tools/fault_proxy.py`.
//!
//! By hand: `moto_server -H 127.0.0.1 -p 5000 &` then
//! `SHARDFLOW_TEST_S3_ENDPOINT=http://127.0.0.1:5000 cargo test --test integration s3::`. Without a
//! server these tests say so loudly and pass, unless `SHARDFLOW_REQUIRE_S3=1` (set by CI).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

use crate::common::*;

/// The S3 server under test.
pub(crate) struct S3 {
    pub(crate) endpoint: String,
}

pub(crate) fn s3() -> Option<S3> {
    let required = std::env::var("SHARDFLOW_REQUIRE_S3").is_ok_and(|v| v == "1");
    let endpoint = std::env::var("SHARDFLOW_TEST_S3_ENDPOINT").ok();
    let reachable = endpoint.as_deref().is_some_and(|e| {
        let addr = e.trim_start_matches("http://").trim_end_matches('/');
        std::net::TcpStream::connect(addr).is_ok()
    });
    if !reachable {
        let msg = format!(
            "S3 TESTS SKIPPED: no S3 server at SHARDFLOW_TEST_S3_ENDPOINT={endpoint:?}; start \
             `moto_server -H 127.0.0.1 -p 5000` and set SHARDFLOW_TEST_S3_ENDPOINT=http://127.0.0.1:5000"
        );
        assert!(!required, "{msg} (SHARDFLOW_REQUIRE_S3=1)");
        eprintln!("\n*** {msg} ***\n");
        return None;
    }
    Some(S3 {
        endpoint: endpoint.unwrap(),
    })
}

/// Keys of the test server (moto accepts any); the instance-metadata fallback of the AWS
/// credential chain points at a closed loopback port, so nothing ever leaves 127.0.0.1.
pub(crate) const AWS_ENV: [(&str, &str); 4] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_METADATA_ENDPOINT", "http://127.0.0.1:9"),
];

impl S3 {
    /// A fresh bucket for one test.
    pub(crate) fn bucket(&self, name: &str) -> String {
        let b = format!("{name}-{}", std::process::id());
        self.util(&["mkbucket", &b]);
        b
    }

    pub(crate) fn util(&self, args: &[&str]) -> String {
        stdout_of(
            tool("s3util.py")
                .args(args)
                .envs(AWS_ENV)
                .env("AWS_ENDPOINT_URL", &self.endpoint),
            &format!("s3util {args:?}"),
        )
    }

    pub(crate) fn download(&self, uri: &str, to: &Path) {
        self.util(&["download", uri, to.to_str().unwrap()]);
    }

    /// `shardflow` in `cwd`, talking to the test server with its keys only (HOME is `cwd`, so
    /// no user profile leaks in).
    pub(crate) fn command(&self, cwd: &Path) -> Command {
        let mut cmd = shardflow_command(cwd);
        cmd.envs(AWS_ENV)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("HOME", cwd);
        cmd
    }

    /// Runs `shardflow shard` with the tiny model against `endpoint` (the server or a proxy).
    pub(crate) fn shard(
        &self,
        cwd: &Path,
        endpoint: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Output {
        let model = data("t5-tiny");
        let mut cmd = shardflow_command(cwd);
        cmd.arg("shard")
            .args(["--t5-model", model.to_str().unwrap(), "--workers", "2"])
            .args(if args.contains(&"--max-rejected-fraction") {
                &[][..]
            } else {
                // the sample dataset holds one deliberately broken metadata file
                &["--max-rejected-fraction", "0.05"][..]
            })
            .args(args)
            .envs(AWS_ENV)
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("HOME", cwd);
        for (k, v) in env {
            if v.is_empty() {
                cmd.env_remove(k);
            } else {
                cmd.env(k, v);
            }
        }
        cmd.output().expect("shardflow runs")
    }
}

/// A running fault proxy in front of the server; killed on drop.
pub(crate) struct Proxy {
    child: Child,
    pub(crate) endpoint: String,
    faults: PathBuf,
}

impl Proxy {
    pub(crate) fn start(s3: &S3, dir: &Path, extra: &[&str]) -> Proxy {
        std::fs::create_dir_all(dir).unwrap();
        let port_file = dir.join("proxy.port");
        let child = tool("fault_proxy.py")
            .args(["--upstream", &s3.endpoint, "--port-file"])
            .arg(&port_file)
            .args(extra)
            .spawn()
            .expect("python3 runs");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                break p;
            }
            assert!(std::time::Instant::now() < deadline, "proxy did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        Proxy {
            child,
            endpoint: format!("http://127.0.0.1:{}", port.trim()),
            faults: dir.join("proxy.port.faults"),
        }
    }

    pub(crate) fn faults(&self) -> Vec<String> {
        lines(&self.faults)
    }

    /// Access key ids that signed requests through the proxy.
    fn keys(&self) -> Vec<String> {
        lines(&self.faults.with_extension("keys"))
    }
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn remap_to(target: &str) -> String {
    format!("{SAMPLE_ROOT}={target}")
}

/// The sample dataset plus one clip of 12 MiB (random bytes; binning reads only metadata), so
/// its video tar goes up as a multipart upload with 5 MiB parts.
fn dataset_with_big_clip(dir: &Path) -> PathBuf {
    let input = dir.join("in");
    copy_tree(&data("sample-dataset"), &input);
    let size = (12 * 1024 * 1024).to_string();
    run_tool(
        "edit_input.py",
        [
            "add-clip",
            input.to_str().unwrap(),
            "big-clip",
            &size,
            "random",
        ],
    );
    input
}

#[test]
fn sample_dataset_in_every_direction_matches_the_reference() {
    let Some(s3) = s3() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let bucket = s3.bucket("dirs");
    let input = data("sample-dataset");
    s3.util(&[
        "upload",
        input.to_str().unwrap(),
        &format!("s3://{bucket}/in"),
    ]);
    let s3_in = format!("s3://{bucket}/in");
    let expected = data("sample-dataset-expected");
    let cases: [(&str, String, String, String); 3] = [
        (
            "s3-to-s3",
            s3_in.clone(),
            format!("s3://{bucket}/out-s3s3/"),
            remap_to(&s3_in),
        ),
        (
            "s3-to-local",
            s3_in.clone(),
            "local-out".into(),
            remap_to(&s3_in),
        ),
        (
            "local-to-s3",
            input.to_string_lossy().into_owned(),
            format!("s3://{bucket}/deep/out-ls3"),
            remap_to(input.to_str().unwrap()),
        ),
    ];
    for (name, from, to, remap) in cases {
        let out = s3.shard(
            tmp.path(),
            &s3.endpoint,
            &[
                "--input-clip-path",
                &from,
                "--output-dataset-path",
                &to,
                "--remap-clip-location",
                &remap,
            ],
            &[],
        );
        assert_ok(&out);
        let got = if to.starts_with("s3://") {
            let d = tmp.path().join(format!("dl-{name}"));
            s3.download(&to, &d);
            d
        } else {
            tmp.path().join(&to)
        };
        let line = compare_strict(&expected, &got);
        assert!(line.ends_with("OK"), "{name}: {line}");
        let counts = reconciled_counts(&got.join("v0"));
        assert_eq!(counts["written"], 23, "{name}");
        if let Some(uri) = to.strip_prefix("s3://") {
            // SPEC §7: root is the key prefix without bucket; csv rows name the objects
            let key_prefix = uri.split_once('/').unwrap().1.trim_end_matches('/');
            let wd: serde_json::Value = serde_json::from_slice(
                &std::fs::read(
                    got.join("v0/resolution_1080/aspect_ratio_16_9/frames_0_120/wdinfo.json"),
                )
                .unwrap(),
            )
            .unwrap();
            assert_eq!(
                wd["root"],
                format!("{key_prefix}/v0/resolution_1080/aspect_ratio_16_9/frames_0_120"),
                "{name}"
            );
            let csv = std::fs::read_to_string(got.join("v0/wdinfo_list.csv")).unwrap();
            let first = csv.lines().next().unwrap();
            assert!(
                first.starts_with(&format!("{}/v0/resolution_", to.trim_end_matches('/'))),
                "{name}: {first}"
            );
        }
    }
    // a second run into the same S3 output is refused
    let again = s3.shard(
        tmp.path(),
        &s3.endpoint,
        &[
            "--input-clip-path",
            &s3_in,
            "--output-dataset-path",
            &format!("s3://{bucket}/out-s3s3"),
            "--remap-clip-location",
            &remap_to(&s3_in),
        ],
        &[],
    );
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains(&format!("s3://{bucket}/out-s3s3/v0")) && err.contains("not empty"),
        "{err}"
    );
}

#[test]
fn s3_clip_locations_with_profile_credentials() {
    let Some(s3) = s3() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let bucket = s3.bucket("clips");
    let s3_in = format!("s3://{bucket}/split-output");
    // the splitting pipeline wrote S3 URIs into clip_location
    let input = tmp.path().join("in");
    copy_tree(&data("sample-dataset"), &input);
    run_tool(
        "edit_input.py",
        [
            "s3-clip-locations",
            input.join("metas/v0").to_str().unwrap(),
            &s3_in,
        ],
    );
    s3.util(&["upload", input.to_str().unwrap(), &s3_in]);
    // baseline: the same metadata, clips read from disk
    let local_remap = format!("{s3_in}={}", input.display());
    let base = s3.shard(
        tmp.path(),
        &s3.endpoint,
        &[
            "--input-clip-path",
            input.to_str().unwrap(),
            "--output-dataset-path",
            "base",
            "--remap-clip-location",
            &local_remap,
        ],
        &[],
    );
    assert_ok(&base);

    // keys only in a profile of a credentials file; none in the environment
    let creds = tmp.path().join("aws-credentials");
    std::fs::write(
        &creds,
        "[default]\naws_access_key_id = default-key\naws_secret_access_key = s\n\n[team]\naws_access_key_id = team-key\naws_secret_access_key = s\n",
    )
    .unwrap();
    let env = [
        ("AWS_ACCESS_KEY_ID", ""),
        ("AWS_SECRET_ACCESS_KEY", ""),
        ("AWS_SHARED_CREDENTIALS_FILE", creds.to_str().unwrap()),
    ];
    // a proxy that injects nothing, to see which keys sign the requests
    let proxy = Proxy::start(&s3, tmp.path(), &["--rate", "0"]);
    let run = s3.shard(
        tmp.path(),
        &proxy.endpoint,
        &[
            "--input-clip-path",
            &s3_in,
            "--output-dataset-path",
            "from-s3",
            "--input-s3-profile-name",
            "team",
        ],
        &env,
    );
    assert_ok(&run);
    assert_eq!(proxy.keys(), ["team-key"]);
    // no profile named, no keys in the environment: the default profile signs
    let proxy2 = Proxy::start(&s3, &tmp.path().join("p2"), &["--rate", "0"]);
    let run = s3.shard(
        tmp.path(),
        &proxy2.endpoint,
        &[
            "--input-clip-path",
            &s3_in,
            "--output-dataset-path",
            "from-s3-default",
        ],
        &env,
    );
    assert_ok(&run);
    assert_eq!(proxy2.keys(), ["default-key"]);
    let line = compare_strict(&tmp.path().join("base"), &tmp.path().join("from-s3"));
    assert!(line.ends_with("OK"), "{line}");
    let json = run_tool(
        "read_dataset.py",
        [
            "clip-location",
            tmp.path()
                .join("from-s3/v0/resolution_1080/aspect_ratio_16_9/frames_0_120/metas/part_000000/000000.tar")
                .to_str()
                .unwrap(),
        ],
    );
    assert!(
        json.trim().starts_with(&format!("{s3_in}/clips/")),
        "{json}"
    );

    // a named profile that does not exist is refused up front, naming it
    let missing = s3.shard(
        tmp.path(),
        &s3.endpoint,
        &[
            "--input-clip-path",
            &s3_in,
            "--output-dataset-path",
            "never",
            "--input-s3-profile-name",
            "nobody",
        ],
        &env,
    );
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("\"nobody\"") && err.contains("aws-credentials"),
        "{err}"
    );
    assert!(!tmp.path().join("never").exists());
}

#[test]
fn multipart_uploads_survive_injected_faults() {
    let Some(s3) = s3() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let bucket = s3.bucket("faults");
    let input = dataset_with_big_clip(tmp.path());
    let remap = remap_to(input.to_str().unwrap());
    let base = s3.shard(
        tmp.path(),
        &s3.endpoint,
        &[
            "--input-clip-path",
            input.to_str().unwrap(),
            "--output-dataset-path",
            "base",
            "--remap-clip-location",
            &remap,
        ],
        &[],
    );
    assert_ok(&base);
    // input on S3 too, so reads, listing and HEADs also see faults
    let s3_in = format!("s3://{bucket}/in");
    s3.util(&["upload", input.to_str().unwrap(), &s3_in]);
    let proxy = Proxy::start(
        &s3,
        tmp.path(),
        &["--rate", "0.2", "--seed", "11", "--fail-first-part"],
    );
    let out_uri = format!("s3://{bucket}/out");
    let run = s3.shard(
        tmp.path(),
        &proxy.endpoint,
        &[
            "--input-clip-path",
            &s3_in,
            "--output-dataset-path",
            &out_uri,
            "--remap-clip-location",
            &remap_to(&s3_in),
            "--s3-part-size-mb",
            "5",
        ],
        &[],
    );
    assert_ok(&run);
    let faults = proxy.faults();
    for kind in ["503", "500", "drop-"] {
        assert!(
            faults.iter().any(|f| f.starts_with(kind)),
            "no {kind} fault injected: {faults:?}"
        );
    }
    assert!(
        faults.iter().any(|f| f.contains("partNumber=")),
        "no multipart part was faulted: {faults:?}"
    );
    let got = tmp.path().join("dl");
    s3.download(&out_uri, &got);
    let line = compare_strict(&tmp.path().join("base"), &got);
    assert!(line.ends_with("OK"), "{line}");
    let counts = reconciled_counts(&got.join("v0"));
    assert_eq!(counts["written"], 24);
    assert_eq!(
        s3.util(&["uploads", &bucket]),
        "",
        "orphaned multipart uploads"
    );
}

#[test]
fn failing_uploads_fail_the_job_and_leave_nothing() {
    let Some(s3) = s3() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let bucket = s3.bucket("fail");
    let input = dataset_with_big_clip(tmp.path());
    // every multipart part upload fails: the big clip's tar cannot be written
    let proxy = Proxy::start(
        &s3,
        tmp.path(),
        &["--fail-puts", "--fail-puts-matching", "partNumber="],
    );
    let out_uri = format!("s3://{bucket}/out");
    let run = s3.shard(
        tmp.path(),
        &proxy.endpoint,
        &[
            "--input-clip-path",
            input.to_str().unwrap(),
            "--output-dataset-path",
            &out_uri,
            "--remap-clip-location",
            &remap_to(input.to_str().unwrap()),
            "--s3-part-size-mb",
            "5",
            "--s3-max-retries",
            "1",
        ],
        &[],
    );
    assert!(!run.status.success(), "the job must fail");
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains(&format!("{out_uri}/v0/")) && err.contains(".tar"),
        "the error names the object: {err}"
    );
    assert!(
        proxy.faults().iter().any(|f| f.contains("partNumber=")),
        "the big tar went up as a multipart upload"
    );
    // nothing claims completeness: no wdinfo, no csv, and not the big tar; the report says
    // the job failed, naming that tar
    let left = s3.util(&["ls", &out_uri]);
    assert!(!left.contains("wdinfo"), "{left}");
    let dl = tmp.path().join("dl");
    s3.download(&out_uri, &dl);
    let r = report(&dl.join("v0"));
    assert_eq!(r["ok"], false);
    let error = r["error"].as_str().unwrap();
    let failed_tar = error
        .split_whitespace()
        .find(|w| w.starts_with("s3://") && w.contains("/video/part_"))
        .unwrap_or_else(|| panic!("no tar named: {error}"))
        .trim_end_matches(':');
    let key = failed_tar.trim_start_matches(&format!("s3://{bucket}/"));
    assert!(!left.lines().any(|k| k == key), "{key} exists: {left}");
    assert_eq!(
        s3.util(&["uploads", &bucket]),
        "",
        "failed uploads are aborted"
    );
}

#[test]
fn listing_pages_through_thousands_of_objects() {
    let Some(s3) = s3() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let bucket = s3.bucket("pages");
    // 2,500 metadata objects: more than two pages of 1,000
    s3.util(&["many", &format!("s3://{bucket}/in/metas/v0"), "2500"]);
    let run = s3.shard(
        tmp.path(),
        &s3.endpoint,
        &[
            "--input-clip-path",
            &format!("s3://{bucket}/in"),
            "--output-dataset-path",
            "out",
            "--max-rejected-fraction",
            "1",
        ],
        &[],
    );
    assert_ok(&run);
    let counts = reconciled_counts(&tmp.path().join("out/v0"));
    assert_eq!(counts["listed"], 2500);
    assert_eq!(counts["rejected"]["missing_key"], 2500, "{counts}");
    let rejects =
        std::fs::read_to_string(tmp.path().join("out/v0/_shardflow/rejects.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(rejects.lines().next().unwrap()).unwrap();
    assert_eq!(first["meta"], "000000.json");
    let last: serde_json::Value = serde_json::from_str(rejects.lines().last().unwrap()).unwrap();
    assert_eq!(last["meta"], "002499.json");
}

#[test]
fn two_processes_write_to_s3_and_a_lost_tar_is_resumed() {
    let Some(s3) = s3() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let bucket = s3.bucket("multi");
    let input = data("sample-dataset");
    let out_uri = format!("s3://{bucket}/out");
    let model = data("t5-tiny");
    let remap = remap_to(input.to_str().unwrap());
    let shard_args = [
        "--input-clip-path",
        input.to_str().unwrap(),
        "--output-dataset-path",
        &out_uri,
        "--t5-model",
        model.to_str().unwrap(),
        "--remap-clip-location",
        &remap,
        "--workers",
        "1",
        "--max-rejected-fraction",
        "0.05",
    ];
    let shardflow = |head: &[&str]| {
        s3.command(tmp.path())
            .args(head)
            .args(shard_args)
            .output()
            .unwrap()
    };
    assert_ok(&shardflow(&["launch", "--processes", "2", "--"]));
    let first = tmp.path().join("first");
    s3.download(&out_uri, &first);
    let line = compare_strict(&data("sample-dataset-expected"), &first);
    assert!(line.ends_with("OK"), "{line}");

    // lose a tar on the server; --resume writes it again and keeps the rest
    let lost =
        "out/v0/resolution_1080/aspect_ratio_16_9/frames_0_120/t5_xxl/part_000000/000001.tar";
    s3.util(&["rm", &format!("s3://{bucket}/{lost}")]);
    assert_ok(&shardflow(&["shard", "--resume"]));
    let second = tmp.path().join("second");
    s3.download(&out_uri, &second);
    let line = compare_strict(&data("sample-dataset-expected"), &second);
    assert!(line.ends_with("OK"), "{line}");
    let c = reconciled_counts(&second.join("v0"));
    assert_eq!(
        c["tars_resumed"].as_u64().unwrap() + 1,
        c["tars"].as_u64().unwrap(),
        "{c}"
    );
    assert_eq!(
        std::fs::read(first.join(&lost[4..])).unwrap(),
        std::fs::read(second.join(&lost[4..])).unwrap(),
        "the rewritten tar has the journal's mtime"
    );
}

/// Every `.tar` below `dir`, by path relative to it.
fn tars_below(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    files_below(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "tar"))
        .map(|p| {
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            (rel, std::fs::read(&p).unwrap())
        })
        .collect()
}

#[test]
fn reshard_on_s3_with_two_processes_copies_server_side() {
    let Some(s3) = s3() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let bucket = s3.bucket("reshard");
    let input = tmp.path().join("in");
    copy_tree(&data("sample-dataset"), &input);
    copy_tree(&input.join("metas/v0"), &input.join("metas/v1"));
    // v1: one caption rewritten
    run_tool(
        "edit_input.py",
        ["recaption-one", input.join("metas/v1").to_str().unwrap()],
    );
    let out_uri = format!("s3://{bucket}/out");
    let model = data("t5-tiny");
    let remap = remap_to(input.to_str().unwrap());
    let common = [
        "--input-clip-path",
        input.to_str().unwrap(),
        "--t5-model",
        model.to_str().unwrap(),
        "--remap-clip-location",
        &remap,
        "--workers",
        "1",
        "--max-rejected-fraction",
        "0.05",
        "--target-tar-size-mb",
        "0.05",
    ];
    let shardflow = |head: &[&str], out: &str| {
        s3.command(tmp.path())
            .args(head)
            .args(common)
            .args(["--output-dataset-path", out])
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .output()
            .unwrap()
    };
    assert_ok(&shardflow(&["shard"], &out_uri));
    assert_ok(&shardflow(
        &[
            "launch",
            "--processes",
            "2",
            "--",
            "reshard",
            "--from-version",
            "v0",
            "--annotation-version",
            "v1",
        ],
        &out_uri,
    ));
    assert_ok(&shardflow(
        &["shard", "--annotation-version", "v1"],
        "local",
    ));
    let got = tmp.path().join("got");
    s3.download(&format!("{out_uri}/v1"), &got);
    let (got_tars, want_tars) = (tars_below(&got), tars_below(&tmp.path().join("local/v1")));
    assert_eq!(
        got_tars.keys().collect::<Vec<_>>(),
        want_tars.keys().collect::<Vec<_>>()
    );
    for (rel, bytes) in &want_tars {
        assert!(got_tars[rel] == *bytes, "{rel} differs from a full shard");
    }
    let c = reconciled_counts(&got);
    assert_eq!(c["windows_embedded"].as_u64(), Some(1), "{c}");
    assert!(c["tars_copied"].as_u64().unwrap() > 0, "{c}");
    assert!(
        c["tar_files_copied"].as_u64().unwrap() > 3 * c["tars_copied"].as_u64().unwrap(),
        "{c}"
    );
}

#[test]
fn summary_listing_and_dedup_tables_on_s3() {
    let Some(s3) = s3() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let bucket = s3.bucket("options");
    let input = tmp.path().join("in");
    copy_tree(&data("sample-dataset"), &input);
    // summary.json naming every metadata file; a dedup table removing two of its clips
    let dedup = tmp.path().join("dedup");
    let removed = run_tool(
        "edit_input.py",
        [
            "summary-and-dedup",
            input.to_str().unwrap(),
            dedup.to_str().unwrap(),
        ],
    );
    let (listed, removed) = removed.trim().split_once(' ').unwrap();
    let removed: Vec<&str> = removed.split(',').collect();
    s3.util(&[
        "upload",
        input.to_str().unwrap(),
        &format!("s3://{bucket}/in"),
    ]);
    s3.util(&[
        "upload",
        dedup.to_str().unwrap(),
        &format!("s3://{bucket}/dedup"),
    ]);
    let s3_in = format!("s3://{bucket}/in");
    let out = s3.shard(
        tmp.path(),
        &s3.endpoint,
        &[
            "--input-clip-path",
            &s3_in,
            "--output-dataset-path",
            "out",
            "--remap-clip-location",
            &remap_to(&s3_in),
            "--listing",
            "summary",
            "--input-semantic-dedup-path",
            &format!("s3://{bucket}/dedup"),
        ],
        &[],
    );
    assert_ok(&out);
    let c = reconciled_counts(&tmp.path().join("out/v0"));
    assert_eq!(c["removed_semantic_dedup"].as_u64(), Some(2), "{c}");
    assert_eq!(c["listed"].as_u64(), listed.parse().ok(), "{c}");
    let written = run_tool(
        "read_dataset.py",
        ["metas-keys", tmp.path().join("out/v0").to_str().unwrap()],
    );
    for r in removed {
        assert!(!written.contains(r), "{r} was deduplicated away");
    }
}

#[test]
fn verify_index_and_inspect_read_a_dataset_on_s3() {
    let Some(s3) = s3() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let bucket = s3.bucket("tools");
    let input = data("sample-dataset");
    let out_uri = format!("s3://{bucket}/out");
    assert_ok(&s3.shard(
        tmp.path(),
        &s3.endpoint,
        &[
            "--input-clip-path",
            input.to_str().unwrap(),
            "--output-dataset-path",
            &out_uri,
            "--remap-clip-location",
            &remap_to(input.to_str().unwrap()),
            "--target-tar-size-mb",
            "0.05",
            "--index",
            "dali",
        ],
        &[],
    ));
    let tool = |args: &[&str]| s3.command(tmp.path()).args(args).output().unwrap();
    let v0 = format!("{out_uri}/v0");
    let o = tool(&["verify", &v0]);
    assert_ok(&o);
    assert!(String::from_utf8_lossy(&o.stdout).ends_with("OK\n"));
    // the manifest written on the store checks the objects there
    let o = tool(&["verify", &v0, "--checksums"]);
    assert_ok(&o);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("48 tars hashed and compared with SHA256SUMS"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_ok(&tool(&["index", &v0, "--index", "wids"]));
    // an index the store fails to serve fails verify, named once, not skipped
    {
        let broken = "resolution_1080/aspect_ratio_16_9/frames_0_120/metas/shardindex.json";
        let proxy = Proxy::start(
            &s3,
            &tmp.path().join("proxy"),
            &["--rate", "0", "--fail-gets-matching", broken],
        );
        let o = s3
            .command(tmp.path())
            .env("AWS_ENDPOINT_URL", &proxy.endpoint)
            .args(["verify", &v0])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(1), "{stdout}");
        let unreadable: Vec<&str> = stdout
            .lines()
            .filter(|l| l.contains("shardindex.json: cannot be read"))
            .collect();
        assert_eq!(unreadable.len(), 1, "{stdout}");
        assert!(unreadable[0].contains(broken), "{stdout}");
    }
    let o = tool(&["inspect", &v0, "--json"]);
    assert_ok(&o);
    let bins: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(bins.as_array().unwrap().len(), 12);
    let local = tmp.path().join("local");
    s3.download(&v0, &local);
    let wids = files_below(&local)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "shardindex.json"))
        .count();
    assert_eq!(wids, 36);
    // and a copy of the dataset: `sha256sum -c` in the copied version directory
    let o = std::process::Command::new("sha256sum")
        .args(["-c", "--strict", "SHA256SUMS"])
        .current_dir(&local)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    // verify names what is missing on the server
    let lost = "resolution_720/aspect_ratio_16_9/frames_0_120/t5_xxl/part_000000/000000.tar";
    s3.util(&["rm", &format!("{v0}/{lost}")]);
    let o = tool(&["verify", &v0]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!("{lost}: missing")),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = tool(&["verify", &v0, "--checksums"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains(&format!("{lost}: listed in SHA256SUMS, but cannot be read")),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    // a prefix without wdinfo_list.csv is not a dataset
    let nothing = format!("s3://{bucket}/nothing/v0");
    for t in ["index", "inspect", "verify"] {
        let o = tool(&[t, &nothing]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{t}: {err}");
        assert!(
            err.contains(&format!("{nothing}: not a dataset (no wdinfo_list.csv)")),
            "{t}: {err}"
        );
    }
    // a dataset without its report is unfinished: no indexes of it, inspect warns
    s3.util(&["rm", &format!("{v0}/_shardflow/report.json")]);
    let o = tool(&["index", &v0]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("{v0} is incomplete")), "{err}");
    // (its missing t5_xxl tar makes inspect fail as well, after the warning)
    let o = tool(&["inspect", &v0]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains(&format!("warning: {v0} is incomplete")),
        "{err}"
    );
}

/// The output lock on an object store: a lock object another job holds stops a job with exit
/// 2 before it writes; a job removes its own lock when it ends.
#[test]
fn a_held_lock_object_stops_a_second_job_and_a_job_removes_its_own() {
    let Some(s3) = s3() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let bucket = s3.bucket("lock");
    let input = data("sample-dataset");
    let held = tmp.path().join("held");
    std::fs::create_dir_all(held.join("v0/_shardflow")).unwrap();
    std::fs::write(
        held.join("v0/_shardflow/lock"),
        "process 4242 on another-host since unix time 1",
    )
    .unwrap();
    s3.util(&[
        "upload",
        held.to_str().unwrap(),
        &format!("s3://{bucket}/out"),
    ]);
    let args = [
        "--input-clip-path",
        input.to_str().unwrap(),
        "--output-dataset-path",
        &format!("s3://{bucket}/out"),
        "--remap-clip-location",
        &remap_to(input.to_str().unwrap()),
    ];
    let refused = s3.shard(tmp.path(), &s3.endpoint, &args, &[]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(
        err.contains("locked") && err.contains("another-host"),
        "{err}"
    );
    let keys = s3.util(&["ls", &format!("s3://{bucket}/out")]);
    assert_eq!(
        keys.trim(),
        "out/v0/_shardflow/lock",
        "nothing else written"
    );

    s3.util(&["rm", &format!("s3://{bucket}/out/v0/_shardflow/lock")]);
    assert_ok(&s3.shard(tmp.path(), &s3.endpoint, &args, &[]));
    let keys = s3.util(&["ls", &format!("s3://{bucket}/out")]);
    assert!(keys.contains("wdinfo_list.csv"), "{keys}");
    assert!(!keys.contains("_shardflow/lock"), "{keys}");
}
