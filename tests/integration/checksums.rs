//! `SHA256SUMS` with the real binary: written by `shard`, `--resume` and `reshard`, accepted by
//! coreutils' `sha256sum -c`, checked by `verify --checksums`, and written by `index` for a
//! dataset without one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::*;

const EPOCH: &str = "1700000000";

/// `shardflow <sub>` of the sample input (`in`, versions `v0`/`v1`) into `<dir>/out`.
fn shard(dir: &Path, sub: &str, version: &str, extra: &[&str]) -> Output {
    let input = dir.join("in");
    shardflow_command(dir)
        .args([sub, "--input-clip-path", input.to_str().unwrap()])
        .args(["--output-dataset-path", "out", "--t5-model"])
        .arg(data("t5-tiny"))
        .args(["--annotation-version", version])
        .args([
            "--remap-clip-location",
            &format!("{SAMPLE_ROOT}={}", input.display()),
        ])
        .args(["--max-rejected-fraction", "0.5", "--workers", "2"])
        .args(["--target-tar-size-mb", "0.05"])
        .args(extra)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .output()
        .expect("shardflow runs")
}

fn sample_input(dir: &Path) {
    let input = dir.join("in");
    copy_tree(&data("sample-dataset"), &input);
    copy_tree(&input.join("metas/v0"), &input.join("metas/v1"));
    run_tool(
        "edit_input.py",
        ["make-v1", input.join("metas/v1").to_str().unwrap()],
    );
}

fn run(dir: &Path, args: &[&str]) -> Output {
    shardflow_command(dir)
        .args(args)
        .output()
        .expect("shardflow runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `sha256sum -c --strict SHA256SUMS` in `version_dir`; its output.
fn sha256sum_check(version_dir: &Path) -> Output {
    Command::new("sha256sum")
        .args(["-c", "--strict", "SHA256SUMS"])
        .current_dir(version_dir)
        .output()
        .expect("sha256sum (coreutils) runs")
}

fn assert_sha256sum_accepts(version_dir: &Path) {
    let o = sha256sum_check(version_dir);
    assert!(o.status.success(), "sha256sum -c: {}", text(&o));
}

/// Every tar below `version_dir`, relative to it, sorted.
fn tars(version_dir: &Path) -> Vec<String> {
    let mut t: Vec<String> = files_below(version_dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "tar"))
        .map(|p| {
            p.strip_prefix(version_dir)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    t.sort();
    t
}

fn manifest(version_dir: &Path) -> String {
    std::fs::read_to_string(version_dir.join("SHA256SUMS")).unwrap()
}

/// The journal's completion records.
fn records(version_dir: &Path) -> Vec<PathBuf> {
    files_below(&version_dir.join("_shardflow/done"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect()
}

#[test]
fn shard_resume_index_and_verify_agree_with_sha256sum() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    sample_input(d);
    assert_ok(&shard(d, "shard", "v0", &[]));
    let v0 = d.join("out/v0");
    let sums = manifest(&v0);
    // one line per tar, sorted by path, each a tar of the dataset
    let paths: Vec<&str> = sums.lines().map(|l| &l[66..]).collect();
    assert!(paths.len() > 30, "{sums}");
    assert_eq!(paths, tars(&v0));
    assert!(sums.ends_with('\n') && !sums.contains('\r'));
    assert_sha256sum_accepts(&v0);
    let o = run(d, &["verify", v0.to_str().unwrap(), "--checksums"]);
    assert_ok(&o);
    assert!(
        text(&o).contains(&format!("{} tars hashed and compared", paths.len())),
        "{}",
        text(&o)
    );
    // every record keeps its three checksums
    for r in records(&v0) {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&r).unwrap()).unwrap();
        let s = v["sha256"].as_array().expect("checksums recorded");
        assert!(
            s.iter().all(|h| h.as_str().is_some_and(|h| h.len() == 64)),
            "{v}"
        );
    }

    // resuming the finished job keeps the records' checksums: the same manifest
    std::fs::remove_file(v0.join("SHA256SUMS")).unwrap();
    assert_ok(&shard(d, "shard", "v0", &["--resume"]));
    assert_eq!(manifest(&v0), sums);
    assert_sha256sum_accepts(&v0);

    // a dataset written before checksums were kept: no manifest, records without them
    std::fs::remove_file(v0.join("SHA256SUMS")).unwrap();
    for r in records(&v0) {
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&r).unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("sha256");
        std::fs::write(&r, serde_json::to_vec(&v).unwrap()).unwrap();
    }
    let o = run(d, &["verify", v0.to_str().unwrap(), "--checksums"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("SHA256SUMS: missing: checksums cannot be verified"),
        "{}",
        text(&o)
    );
    // without the records' checksums a resume writes no manifest (and says why)
    let o = shard(d, "shard", "v0", &["--resume"]);
    assert_ok(&o);
    assert!(!v0.join("SHA256SUMS").exists());
    assert!(text(&o).contains("no checksum recorded"), "{}", text(&o));
    // `index` reads every tar once and writes it
    let o = run(d, &["index", v0.to_str().unwrap(), "--index", "dali"]);
    assert_ok(&o);
    assert!(text(&o).contains("SHA256SUMS written"), "{}", text(&o));
    assert_eq!(manifest(&v0), sums);
    assert_sha256sum_accepts(&v0);
    // an existing manifest is left alone
    let o = run(d, &["index", v0.to_str().unwrap(), "--index", "dali"]);
    assert_ok(&o);
    assert!(text(&o).contains("already present"), "{}", text(&o));

    // one byte flipped inside one tar (in a member's data, past the first header)
    let victim = &paths[paths.len() / 2];
    let at = v0.join(victim);
    let mut bytes = std::fs::read(&at).unwrap();
    bytes[600] ^= 0x01;
    std::fs::write(&at, &bytes).unwrap();
    let expected = sums
        .lines()
        .find(|l| l.ends_with(&format!("  {victim}")))
        .unwrap()[..64]
        .to_string();
    let o = run(d, &["verify", v0.to_str().unwrap(), "--checksums"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    let actual = sha256_of_file(&at);
    assert!(
        out.contains(&format!(
            "{victim}: checksum mismatch: expected {expected}, actual {actual}"
        )),
        "{out}"
    );
    assert_eq!(out.matches("checksum mismatch").count(), 1, "{out}");
    assert!(!sha256sum_check(&v0).status.success());
    // a tar cut short fails its structural read: it is read again for its digest
    let cut = &paths[1];
    let cut_at = v0.join(cut);
    let whole = std::fs::read(&cut_at).unwrap();
    std::fs::write(&cut_at, &whole[..whole.len() / 2]).unwrap();
    let expected_cut = sums
        .lines()
        .find(|l| l.ends_with(&format!("  {cut}")))
        .unwrap()[..64]
        .to_string();
    let out = text(&run(d, &["verify", v0.to_str().unwrap(), "--checksums"]));
    assert!(
        out.contains(&format!(
            "{cut}: checksum mismatch: expected {expected_cut}, actual {}",
            sha256_of_file(&cut_at)
        )),
        "{out}"
    );
    assert_eq!(out.matches("checksum mismatch").count(), 2, "{out}");

    // a tar the manifest does not list is named too
    let short: String = sums
        .lines()
        .filter(|l| !l.ends_with(&format!("  {}", paths[0])))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(v0.join("SHA256SUMS"), short).unwrap();
    let out = text(&run(d, &["verify", v0.to_str().unwrap(), "--checksums"]));
    assert!(
        out.contains(&format!("{}: not listed in SHA256SUMS", paths[0])),
        "{out}"
    );
}

fn sha256_of_file(p: &Path) -> String {
    let o = Command::new("sha256sum").arg(p).output().unwrap();
    String::from_utf8_lossy(&o.stdout)[..64].to_string()
}

#[test]
fn reshard_carries_checksums_of_copied_tars() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    sample_input(d);
    assert_ok(&shard(d, "shard", "v0", &[]));
    let o = shard(d, "reshard", "v1", &["--from-version", "v0"]);
    assert_ok(&o);
    let v1 = d.join("out/v1");
    let c = reconciled_counts(&v1);
    assert!(c["tars_copied"].as_u64().unwrap() > 0, "{c}");
    let sums = manifest(&v1);
    let paths: Vec<&str> = sums.lines().map(|l| &l[66..]).collect();
    assert_eq!(paths, tars(&v1));
    assert_sha256sum_accepts(&v1);
    let o = run(d, &["verify", v1.to_str().unwrap(), "--checksums"]);
    assert_ok(&o);
    // tars copied unchanged have the checksums of v0's
    let v0_sums = manifest(&d.join("out/v0"));
    let common = sums
        .lines()
        .filter(|l| v0_sums.lines().any(|m| m == *l))
        .count();
    assert!(common > 0, "no tar of v1 equals v0's:\n{sums}\n{v0_sums}");
}
