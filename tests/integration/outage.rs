//! Outages in the middle of a job, with the real binary: the job fails loudly, naming what
//! it could not read or write, claims no completeness, and `--resume` finishes it.

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
