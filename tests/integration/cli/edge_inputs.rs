//! Valid-looking metadata at the edges of what the job accepts: keys that would break an
//! index, clips with no windows. Each must end in a dataset that `verify` passes (or a reject).

use crate::common::*;
use std::path::{Path, PathBuf};

const GOOD: &str = "7af5e99a-2a9f-5924-8d03-e1decf7f6f38";

/// The sample dataset copied to `<dir>/in`.
fn sample_in(dir: &Path) -> PathBuf {
    let input = dir.join("in");
    copy_tree(&data("sample-dataset"), &input);
    input
}

/// Writes `metas/v0/<name>`: the sample's good clip `GOOD` under `span_uuid` `uuid`
/// (a JSON string literal, escapes allowed), with `from` replaced by `to`.
fn write_variant(input: &Path, name: &str, uuid_literal: &str, from: &str, to: &str) {
    let good = std::fs::read_to_string(input.join(format!("metas/v0/{GOOD}.json"))).unwrap();
    assert!(good.contains(from), "{from}");
    let text = good.replace(from, to).replace(
        &format!("\"span_uuid\": \"{GOOD}\""),
        &format!("\"span_uuid\": {uuid_literal}"),
    );
    std::fs::write(input.join("metas/v0").join(name), text).unwrap();
}

fn verify(cwd: &Path, dataset: &Path) -> std::process::Output {
    shardflow(cwd, &["verify", dataset.to_str().unwrap()])
}

/// A `span_uuid` holding whitespace or a control character would be written as a key that
/// breaks DALI's index (whitespace-separated text, one sample a line: DALI's own `wds2idx.py`
/// writes it the same way), and one over 200 bytes as members no file system can extract (nor
/// `export` write): such a uuid is an unsafe key, rejected naming the file, and every `.idx`
/// written has well-formed lines.
#[test]
fn span_uuids_that_would_break_an_index_or_a_file_name_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample_in(dir.path());
    let space = "whitespace or a control character";
    let long = format!("\"{}\"", "k".repeat(201));
    let cases = [
        ("ws-space.json", r#""a b""#, space),
        ("ws-newline.json", r#""a\nb""#, space),
        ("ws-tab.json", r#""a\tb""#, space),
        ("ws-only.json", r#"" ""#, space),
        ("ws-control.json", r#""a\u007fb""#, space),
        ("long.json", long.as_str(), "longer than 200 bytes"),
    ];
    for (name, uuid, _) in cases {
        write_variant(&input, name, uuid, "", "");
    }
    // the longest key allowed is written
    write_variant(
        &input,
        "long-ok.json",
        &format!("\"{}\"", "k".repeat(200)),
        "",
        "",
    );
    let out = shard(
        dir.path(),
        &input,
        "out",
        &["--index", "dali", "--max-rejected-fraction", "1"],
    );
    assert_ok(&out);
    let version = dir.path().join("out/v0");
    let c = reconciled_counts(&version);
    assert_eq!(c["written"], 24, "{c}");
    assert_eq!(c["rejected"]["unsafe_span_uuid"], cases.len() as u64, "{c}");
    let rejects = std::fs::read_to_string(version.join("_shardflow/rejects.jsonl")).unwrap();
    for (name, _, why) in cases {
        let line: serde_json::Value = rejects
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .find(|l: &serde_json::Value| l["meta"] == name)
            .unwrap_or_else(|| panic!("no reject for {name}:\n{rejects}"));
        assert_eq!(line["reason"], "unsafe_span_uuid", "{line}");
        assert!(line["message"].as_str().unwrap().contains(why), "{line}");
    }
    // every DALI index line: "<ext> <offset> <size> <name>" per member, as many as announced
    let idx: Vec<PathBuf> = files_below(&version)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "idx"))
        .collect();
    assert!(!idx.is_empty());
    for p in idx {
        let text = std::fs::read_to_string(&p).unwrap();
        let mut lines = text.lines();
        let head: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        let samples: Vec<&str> = lines.collect();
        assert_eq!(head[0], "v1.2", "{}", p.display());
        assert_eq!(head[1].parse::<usize>().unwrap(), samples.len(), "{text}");
        for l in samples {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert!(
                !f.is_empty() && f.len().is_multiple_of(4),
                "{}: {l:?}",
                p.display()
            );
            for m in f.chunks(4) {
                assert!(
                    m[1].parse::<u64>().is_ok() && m[2].parse::<u64>().is_ok(),
                    "{l:?}"
                );
                assert!(m[3].ends_with(&format!(".{}", m[0])), "{l:?}");
            }
        }
    }
    let v = verify(dir.path(), &dir.path().join("out"));
    assert_ok(&v);
}

/// A clip with an empty `windows` list is valid input (the reference writes it with an empty
/// pickle list). Written in either layout, the dataset verifies: in cosmos-predict2.5's,
/// `pickle.dumps([])` is the empty list of per-window dicts, not a list of arrays in the
/// wrong layout.
#[test]
fn a_clip_with_no_windows_is_written_and_verifies_in_each_layout() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample_in(dir.path());
    let windows = std::fs::read_to_string(input.join(format!("metas/v0/{GOOD}.json"))).unwrap();
    let start = windows.find("\"windows\": [").unwrap();
    let end = windows[start..].find("\n    ],").unwrap() + start + "\n    ]".len();
    write_variant(
        &input,
        "no-windows.json",
        r#""no-windows""#,
        &windows[start..end],
        "\"windows\": []",
    );
    for layout in ["reference", "cosmos-predict2.5"] {
        let out_name = format!("out-{layout}");
        let out = shard(dir.path(), &input, &out_name, &["--layout", layout]);
        assert_ok(&out);
        let version = dir.path().join(&out_name).join("v0");
        let c = reconciled_counts(&version);
        assert_eq!(c["written"], 24, "{layout}: {c}");
        assert!(tar_members(&version)
            .keys()
            .any(|(_, m)| m == "no-windows.pickle"));
        let v = verify(dir.path(), &version);
        assert_ok(&v);
        let stdout = String::from_utf8_lossy(&v.stdout);
        assert!(stdout.contains("24 samples"), "{layout}: {stdout}");
    }
}

/// `--append` after metadata files of clips already in the output were removed or broke: those
/// clips stay in their tars (an append rewrites nothing), the broken file is rejected, and the
/// report still counts every listed file once (`listed = written + ...`, `written` the listed
/// clips the output holds), with a warning naming the clips no listed file plans.
#[test]
fn an_append_after_metadata_was_removed_or_broke_still_reconciles() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample_in(dir.path());
    assert_ok(&shard(dir.path(), &input, "out", &[]));
    let version = dir.path().join("out/v0");
    let keys = |v: &Path| -> Vec<String> {
        tar_members(v)
            .into_keys()
            .filter_map(|(_, m)| m.strip_suffix(".json").map(str::to_string))
            .collect()
    };
    let before = keys(&version);
    assert_eq!(before.len(), 23);
    let (removed, broken) = (GOOD, "22756df8-ac7e-5b10-bbe1-b392e219c386");
    assert!(before.iter().any(|k| k == removed) && before.iter().any(|k| k == broken));
    write_variant(&input, "zz-new.json", r#""zz-new""#, "", "");
    std::fs::remove_file(input.join(format!("metas/v0/{removed}.json"))).unwrap();
    std::fs::write(input.join(format!("metas/v0/{broken}.json")), "{broken").unwrap();

    let out = shard(
        dir.path(),
        &input,
        "out",
        &["--append", "--max-rejected-fraction", "1"],
    );
    assert_ok(&out);
    let c = reconciled_counts(&version);
    assert_eq!(c["listed"], 28, "{c}");
    assert_eq!(c["written"], 23 - 2 + 1, "{c}");
    assert_eq!(c["rejected"]["invalid_json"], 2, "{c}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("2 clips in the output are not planned by this listing")
            && err.contains(removed)
            && err.contains(broken),
        "{err}"
    );
    // nothing was removed from the output: the old clips and the new one
    let after = keys(&version);
    assert_eq!(after.len(), 24);
    assert!(after.iter().any(|k| k == "zz-new"));
    let r = report(&version);
    let samples: u64 = r["bins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["samples"].as_u64().unwrap())
        .sum();
    assert_eq!(samples, 24, "{r}");
    assert_ok(&verify(dir.path(), &version));
}

/// A framerate so small that `num_frames / framerate` overflows is a positive number, so the
/// job writes the clip; `inspect` then leaves its duration out instead of making the bin's
/// video time infinite (`inf` in the table, `null` in `--json`).
#[test]
fn inspect_keeps_video_time_finite_with_a_tiny_framerate() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample_in(dir.path());
    write_variant(
        &input,
        "tiny-fps.json",
        r#""tiny-fps""#,
        "\"framerate\": 24.0",
        "\"framerate\": 5e-324",
    );
    assert_ok(&shard(dir.path(), &input, "out", &[]));
    let version = dir.path().join("out/v0");
    assert_eq!(reconciled_counts(&version)["written"], 24);
    let o = shardflow(
        dir.path(),
        &["inspect", version.to_str().unwrap(), "--json"],
    );
    assert_ok(&o);
    let bins: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let bin = bins
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["bin"] == "resolution_720/aspect_ratio_16_9/frames_0_120")
        .unwrap();
    // the bin's other clips still count (GOOD alone: 72 frames at 24 fps, 3 s)
    let s = bin["video_seconds"].as_f64();
    assert!(s.is_some_and(|s| s.is_finite() && s >= 3.0), "{bin}");
    let table = String::from_utf8_lossy(
        &shardflow(dir.path(), &["inspect", version.to_str().unwrap()]).stdout,
    )
    .into_owned();
    for row in ["resolution_720/aspect_ratio_16_9/frames_0_120 ", "total "] {
        let line = table.lines().find(|l| l.starts_with(row)).unwrap();
        let hours: f64 = line.split_whitespace().nth(5).unwrap().parse().unwrap();
        assert!(hours.is_finite(), "{table}");
    }
}
