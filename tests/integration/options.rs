//! The reference's later options with the real binary on the sample dataset: duration bins,
//! a custom bin table, `summary.json` listing, semantic dedup (tables written by pyarrow),
//! and `--min-clips-per-tar` with `--drop-small-shards`. Each is checked against an
//! expectation computed independently (in Python from SPEC's rules, or from a plain run).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::common::*;

/// Written samples by bin: bin path → keys in tar order (from the `metas` tars).
fn samples_by_bin(version_dir: &Path) -> BTreeMap<String, Vec<String>> {
    let tars: Vec<PathBuf> = files_below(version_dir)
        .into_iter()
        .filter(|p| {
            p.extension().is_some_and(|e| e == "tar") && p.to_string_lossy().contains("/metas/")
        })
        .collect();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in tars {
        let rel = t
            .strip_prefix(version_dir)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let bin = rel.split("/metas/").next().unwrap().to_string();
        let mut a = tar::Archive::new(std::fs::File::open(&t).unwrap());
        for e in a.entries().unwrap() {
            let name = e.unwrap().path().unwrap().to_string_lossy().into_owned();
            out.entry(bin.clone())
                .or_default()
                .push(name.trim_end_matches(".json").to_string());
        }
    }
    out
}

fn sample_input(dir: &Path) -> PathBuf {
    let input = dir.join("in");
    copy_tree(&data("sample-dataset"), &input);
    input
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn duration_bins_match_the_spec_rules_computed_in_python() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample_input(dir.path());
    assert_ok(&shard(
        dir.path(),
        &input,
        "out",
        &["--bin-spec", "duration"],
    ));
    let got = samples_by_bin(&dir.path().join("out/v0"));
    // SPEC §3, duration spec, written out independently
    let want = run_tool(
        "duration_bins.py",
        [input.join("metas/v0").to_str().unwrap()],
    );
    let want: BTreeMap<String, Vec<String>> = serde_json::from_str(want.trim()).unwrap();
    let key_sets = |m: &BTreeMap<String, Vec<String>>| -> BTreeMap<String, BTreeSet<String>> {
        m.iter()
            .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
            .collect()
    };
    assert_eq!(key_sets(&got), key_sets(&want));
    assert!(got.keys().all(|b| b.contains("/duration_")));
    let c = reconciled_counts(&dir.path().join("out/v0"));
    assert!(c["dropped_no_bin"].as_u64().unwrap() > 0, "{c}");
}

#[test]
fn custom_bin_table_from_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample_input(dir.path());
    let config = dir.path().join("job.toml");
    std::fs::write(
        &config,
        r#"
[bins]
length = "duration_s"
path = "res_{resolution}/ar_{aspect_ratio}/len_{length}"
resolution = [ { min_short_side = 720, name = "hd" }, { min_short_side = 0, name = "sd" } ]
aspect_ratio = [ { above = 0.0, up_to = 1.0, name = "tall" }, { above = 1.0, up_to = 100.0, name = "wide" } ]
length_bins = [ { from = 0.0, to = 5.0, name = "short" }, { from = 5.0, name = "long" } ]
"#,
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    assert_ok(&shard(dir.path(), &input, "out", &["--config", cfg]));
    let got = samples_by_bin(&dir.path().join("out/v0"));
    assert!(!got.is_empty());
    for bin in got.keys() {
        let parts: Vec<&str> = bin.split('/').collect();
        assert!(
            ["res_hd", "res_sd"].contains(&parts[0])
                && ["ar_tall", "ar_wide"].contains(&parts[1])
                && ["len_short", "len_long"].contains(&parts[2]),
            "{bin}"
        );
    }
    // every valid clip with a framerate lands in some bin: the table has no gaps
    let c = reconciled_counts(&dir.path().join("out/v0"));
    assert_eq!(c["dropped_no_bin"].as_u64(), Some(0), "{c}");

    // an invalid table: every problem, with its key path, before anything runs
    std::fs::write(
        &config,
        r#"
[bins]
path = "x_{resolution}/{length}"
aspect_ratio = [ { above = 0.0, up_to = 1.0, name = "a" }, { above = 0.9, up_to = 2.0, name = "b/c" } ]
"#,
    )
    .unwrap();
    let o = shard(dir.path(), &input, "out2", &["--config", cfg, "--check"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    for want in [
        "bins.aspect_ratio[1].above: 0.9 overlaps",
        "bins.aspect_ratio[1].name",
        "must use {aspect_ratio} exactly once",
    ] {
        assert!(stderr(&o).contains(want), "{want:?} not in {}", stderr(&o));
    }
    assert!(!dir.path().join("out2").exists());
}

#[test]
fn summary_listing_reads_only_the_listed_clips() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample_input(dir.path());
    // list half of the files' uuids under two videos, plus one clip without metadata and one
    // whose metadata file is over the 16 MiB guard (summary.json gives no sizes)
    let listed = run_tool("edit_input.py", ["summary-half", input.to_str().unwrap()]);
    let listed: Vec<String> = serde_json::from_str(listed.trim()).unwrap();
    assert_ok(&shard(
        dir.path(),
        &input,
        "out",
        &["--listing", "summary", "--max-rejected-fraction", "0.5"],
    ));
    let c = reconciled_counts(&dir.path().join("out/v0"));
    assert_eq!(c["listed"].as_u64(), Some(listed.len() as u64 + 2), "{c}");
    assert!(
        c["rejected"]["unreadable_meta"].as_u64().unwrap() >= 1,
        "{c}"
    );
    assert_eq!(c["rejected"]["meta_too_large"].as_u64(), Some(1), "{c}");
    let written: BTreeSet<String> = samples_by_bin(&dir.path().join("out/v0"))
        .into_values()
        .flatten()
        .collect();
    assert!(!written.is_empty());
    assert!(written.iter().all(|k| listed.contains(k)), "{written:?}");
    // a scan writes more
    assert_ok(&shard(
        dir.path(),
        &input,
        "scan",
        &["--max-rejected-fraction", "0.1"],
    ));
    let scanned: BTreeSet<String> = samples_by_bin(&dir.path().join("scan/v0"))
        .into_values()
        .flatten()
        .collect();
    assert!(written.is_subset(&scanned) && written.len() < scanned.len());

    std::fs::remove_file(input.join("summary.json")).unwrap();
    let o = shard(dir.path(), &input, "out3", &["--listing", "summary"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("summary.json: no such file"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn semantic_dedup_drops_clips_at_or_above_the_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample_input(dir.path());
    assert_ok(&shard(dir.path(), &input, "plain", &[]));
    let all: Vec<String> = samples_by_bin(&dir.path().join("plain/v0"))
        .into_values()
        .flatten()
        .collect();
    assert!(all.len() >= 6);
    // two tables (one in a subfolder); scores: 1.0 and exactly 0.99 are duplicates at the
    // default epsilon 0.01, 0.9899 is not; ids not in the dataset are harmless
    let dedup = dir.path().join("dedup");
    run_tool(
        "edit_input.py",
        ["dedup-tables", dedup.to_str().unwrap(), &all[..4].join(",")],
    );
    let d = dedup.to_str().unwrap();
    assert_ok(&shard(
        dir.path(),
        &input,
        "out",
        &["--input-semantic-dedup-path", d],
    ));
    let written: BTreeSet<String> = samples_by_bin(&dir.path().join("out/v0"))
        .into_values()
        .flatten()
        .collect();
    let removed: BTreeSet<String> = all
        .iter()
        .filter(|k| !written.contains(*k))
        .cloned()
        .collect();
    assert_eq!(removed, BTreeSet::from([all[1].clone(), all[2].clone()]));
    let c = reconciled_counts(&dir.path().join("out/v0"));
    assert_eq!(c["removed_semantic_dedup"].as_u64(), Some(2), "{c}");
    // a larger epsilon catches the 0.9899 one too
    assert_ok(&shard(
        dir.path(),
        &input,
        "out2",
        &[
            "--input-semantic-dedup-path",
            d,
            "--semantic-dedup-epsilon",
            "0.02",
        ],
    ));
    let c = reconciled_counts(&dir.path().join("out2/v0"));
    assert_eq!(c["removed_semantic_dedup"].as_u64(), Some(3), "{c}");
    // a path without tables stops the job before it starts
    let o = shard(
        dir.path(),
        &input,
        "out3",
        &["--input-semantic-dedup-path", "/nonexistent"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("semdedup_pruning_tables"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn drop_small_shards_drops_only_small_last_tars() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample_input(dir.path());
    let small = ["--target-tar-size-mb", "0.05"];
    assert_ok(&shard(dir.path(), &input, "plain", &small));
    let o = shard(
        dir.path(),
        &input,
        "out",
        &[
            &small[..],
            &["--min-clips-per-tar", "2", "--drop-small-shards"],
        ]
        .concat(),
    );
    assert_ok(&o);
    // from the plain run: each bin's last tar, when under 2 clips, is the only difference
    let per_tar = |v: &Path| -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        for p in files_below(v) {
            if p.to_string_lossy().contains("/metas/") && p.extension().is_some_and(|e| e == "tar")
            {
                let mut a = tar::Archive::new(std::fs::File::open(&p).unwrap());
                let keys = a
                    .entries()
                    .unwrap()
                    .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
                    .collect();
                out.insert(
                    p.strip_prefix(v).unwrap().to_string_lossy().into_owned(),
                    keys,
                );
            }
        }
        out
    };
    let plain = per_tar(&dir.path().join("plain/v0"));
    let got = per_tar(&dir.path().join("out/v0"));
    let mut expected = plain.clone();
    let mut dropped = 0;
    let bins: BTreeSet<String> = plain
        .keys()
        .map(|k| k.split("/metas/").next().unwrap().to_string())
        .collect();
    for bin in &bins {
        let last = plain
            .keys()
            .filter(|k| k.starts_with(&format!("{bin}/metas/")))
            .max()
            .unwrap()
            .clone();
        if plain[&last].len() < 2 {
            dropped += plain[&last].len();
            expected.remove(&last);
        }
    }
    assert!(dropped > 0, "the sample at 0.05 MiB has small last tars");
    assert_eq!(got, expected);
    let c = reconciled_counts(&dir.path().join("out/v0"));
    assert_eq!(c["dropped_small_tar"].as_u64(), Some(dropped as u64), "{c}");
    // a bin left without tars has no wdinfo and no csv row
    let csv = std::fs::read_to_string(dir.path().join("out/v0/wdinfo_list.csv")).unwrap();
    let kept_bins: BTreeSet<String> = expected
        .keys()
        .map(|k| k.split("/metas/").next().unwrap().to_string())
        .collect();
    assert_eq!(csv.lines().count(), kept_bins.len());
    for bin in bins.difference(&kept_bins) {
        assert!(
            !dir.path()
                .join("out/v0")
                .join(bin)
                .join("wdinfo.json")
                .exists(),
            "{bin}"
        );
    }
    // without --drop-small-shards the minimum changes nothing
    assert_ok(&shard(
        dir.path(),
        &input,
        "same",
        &[&small[..], &["--min-clips-per-tar", "2"]].concat(),
    ));
    assert_eq!(per_tar(&dir.path().join("same/v0")), plain);
}
