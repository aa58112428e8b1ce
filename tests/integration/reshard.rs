//! `reshard` and `shard --append` with the real binary. The oracle of a re-shard is a
//! from-scratch `shard` of the new version: with `SOURCE_DATE_EPOCH` pinning the tar mtime,
//! every file of the output must be byte-identical, and the encoder must have embedded
//! exactly the caption windows whose (stripped) text the earlier version did not embed.
//! A clip replaced in place (same size, other bytes) is not taken over from the earlier
//! version.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::*;

const EPOCH: &str = "1700000000";

/// Runs `shardflow <sub>` in `cwd` with the tiny model, small tars and a pinned mtime.
fn run(cwd: &Path, sub: &str, input: &Path, version: &str, extra: &[&str]) -> Output {
    let model = data("t5-tiny");
    let mut cmd = shardflow_command(cwd);
    cmd.arg(sub)
        .args(["--input-clip-path", input.to_str().unwrap()])
        .args([
            "--output-dataset-path",
            "out",
            "--annotation-version",
            version,
        ])
        .args([
            "--remap-clip-location",
            &format!("{SAMPLE_ROOT}={}", input.display()),
        ])
        .args(["--workers", "2", "--max-rejected-fraction", "0.5"]);
    if !extra.contains(&"--t5-model") {
        cmd.args(["--t5-model", model.to_str().unwrap()]);
    }
    if !extra.contains(&"--target-tar-size-mb") {
        cmd.args(["--target-tar-size-mb", "0.012", "--max-tars-per-part", "2"]);
    }
    cmd.args(extra)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .output()
        .expect("shardflow runs")
}

/// Every file of a version's dataset (the job folder aside), by relative path.
fn dataset_files(version_dir: &Path) -> BTreeMap<String, Vec<u8>> {
    files_below(version_dir)
        .into_iter()
        .map(|p| {
            (
                p.strip_prefix(version_dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                p,
            )
        })
        .filter(|(rel, _)| !rel.starts_with("_shardflow"))
        .map(|(rel, p)| (rel, std::fs::read(p).unwrap()))
        .collect()
}

/// Asserts two versions hold the same files with the same bytes (naming the first that
/// differs, without printing contents).
fn assert_same_files(got: &Path, want: &Path, ctx: &str) {
    let (got, want) = (dataset_files(got), dataset_files(want));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{ctx}: file lists differ"
    );
    for (rel, bytes) in &want {
        assert!(got[rel] == *bytes, "{ctx}: {rel} differs");
    }
}

/// Per written sample (in tar order), the stripped captions of its windows, from the
/// `.json` members of the `metas` tars.
fn written_captions(version_dir: &Path) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for p in files_below(version_dir) {
        let rel = p
            .strip_prefix(version_dir)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if !(rel.contains("/metas/") && rel.ends_with(".tar")) {
            continue;
        }
        let mut a = tar::Archive::new(std::fs::File::open(&p).unwrap());
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut text = String::new();
            std::io::Read::read_to_string(&mut e, &mut text).unwrap();
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            let caps = v["windows"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|w| w["qwen_caption"].as_str())
                .map(|c| c.trim().to_string())
                .collect();
            out.push((name, caps));
        }
    }
    out
}

fn counts(version_dir: &Path) -> serde_json::Value {
    reconciled_counts(version_dir)
}

fn n(c: &serde_json::Value, k: &str) -> u64 {
    c[k].as_u64()
        .unwrap_or_else(|| panic!("no count {k} in {c}"))
}

#[cfg(unix)]
fn links(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).unwrap().nlink()
}

/// A tiny random generator (xorshift), so a failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E3779B97F4A7C15) | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

const CAPTIONS: [&str; 6] = [
    "a cat sleeps on a sofa",
    "a red car drives at night",
    "two dogs play in the snow",
    "a person walks along the beach",
    "rain falls on a city street",
    "a train crosses a bridge",
];

/// One clip of a generated dataset.
#[derive(Clone, Debug)]
struct Clip {
    uuid: String,
    dims: (u32, u32),
    frames: u32,
    bytes: usize,
    captions: Vec<Option<String>>,
    valid: bool,
}

impl Clip {
    fn random(rng: &mut Rng, uuid: String) -> Clip {
        let dims = [(1280, 720), (720, 1280), (1920, 1080)][rng.below(3) as usize];
        let windows = 1 + rng.below(3) as usize;
        Clip {
            uuid,
            dims,
            frames: [60, 200][rng.below(2) as usize],
            bytes: 1500 + 500 * rng.below(8) as usize,
            captions: (0..windows)
                .map(|_| Some(CAPTIONS[rng.below(CAPTIONS.len() as u64) as usize].to_string()))
                .collect(),
            valid: true,
        }
    }

    fn json(&self, clips: &Path) -> String {
        let windows: Vec<serde_json::Value> = self
            .captions
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut w = serde_json::json!({"start_frame": i * 10, "end_frame": i * 10 + 9});
                if let Some(c) = c {
                    w["qwen_caption"] = serde_json::json!(c);
                }
                w
            })
            .collect();
        serde_json::json!({
            "span_uuid": self.uuid,
            "clip_location": clips.join(format!("{}.mp4", self.uuid)).to_string_lossy(),
            "width": self.dims.0,
            "height": self.dims.1,
            "framerate": 30.0,
            "num_frames": self.frames,
            "num_bytes": self.bytes,
            "windows": windows,
            "valid": self.valid,
        })
        .to_string()
    }
}

/// Writes `clips` as `metas/<version>/` (and their clip files, random bytes) under `input`.
fn write_version(input: &Path, version: &str, clips: &[Clip], rng: &mut Rng) {
    let metas = input.join("metas").join(version);
    std::fs::create_dir_all(&metas).unwrap();
    let clip_dir = input.join("clips");
    std::fs::create_dir_all(&clip_dir).unwrap();
    for c in clips {
        let clip = clip_dir.join(format!("{}.mp4", c.uuid));
        if !clip.exists() || std::fs::metadata(&clip).unwrap().len() != c.bytes as u64 {
            let bytes: Vec<u8> = (0..c.bytes).map(|_| rng.below(256) as u8).collect();
            std::fs::write(&clip, bytes).unwrap();
        }
        std::fs::write(metas.join(format!("{}.json", c.uuid)), c.json(&clip_dir)).unwrap();
    }
}

/// v1 as random edits of v0: new captions, captions differing only in surrounding
/// whitespace, captions swapped for ones other clips have, removed and added clips, clips
/// invalidated, moved to another bin, resized (regrouping their bin), or losing a caption.
fn edit(v0: &[Clip], rng: &mut Rng, seed: u64) -> Vec<Clip> {
    let mut v1 = Vec::new();
    for (i, c) in v0.iter().enumerate() {
        let mut c = c.clone();
        match rng.below(14) {
            0 => continue,
            1 => c.captions[0] = Some(format!("a new caption {seed} {i}")),
            2 => {
                if let Some(t) = &c.captions[0] {
                    c.captions[0] = Some(format!("  {t}\n"));
                }
            }
            3 => c.dims = (c.dims.1, c.dims.0),
            4 => c.valid = false,
            5 => *c.captions.last_mut().unwrap() = None,
            6 => c.captions[0] = Some(CAPTIONS[rng.below(6) as usize].to_string()),
            7 => c.bytes += 500,
            _ => {}
        }
        v1.push(c);
    }
    for i in 0..rng.below(4) {
        let mut c = Clip::random(rng, format!("new-{seed}-{i}"));
        if rng.below(2) == 0 {
            c.captions[0] = Some(format!("another new caption {seed} {i}"));
        }
        v1.push(c);
    }
    v1
}

/// The expected number of embedded windows: those of the new version whose stripped caption
/// no sample of the old version had.
fn expected_embedded(old: &Path, new: &Path) -> (u64, u64) {
    let known: BTreeSet<String> = written_captions(old)
        .into_iter()
        .flat_map(|(_, c)| c)
        .collect();
    let windows: Vec<String> = written_captions(new)
        .into_iter()
        .flat_map(|(_, c)| c)
        .collect();
    let embedded = windows.iter().filter(|c| !known.contains(*c)).count() as u64;
    (embedded, windows.len() as u64 - embedded)
}

#[test]
fn reshard_equals_a_full_shard_over_many_random_seeds() {
    let (mut copied_total, mut files_copied_total, mut dropped_total) = (0, 0, 0);
    for seed in 0..24u64 {
        let dir = tempfile::tempdir().unwrap();
        let (work, fresh) = (dir.path().join("work"), dir.path().join("fresh"));
        std::fs::create_dir_all(&work).unwrap();
        std::fs::create_dir_all(&fresh).unwrap();
        let input = dir.path().join("in");
        let mut rng = Rng::new(seed);
        let v0: Vec<Clip> = (0..6 + rng.below(14))
            .map(|i| Clip::random(&mut rng, format!("c{seed}-{i:02}")))
            .collect();
        write_version(&input, "v0", &v0, &mut rng);
        let v1 = edit(&v0, &mut rng, seed);
        write_version(&input, "v1", &v1, &mut rng);

        // odd seeds also drop small remainder tars (the planner and the change computation
        // must agree on what is left)
        let drop: &[&str] = if seed % 2 == 1 {
            &["--min-clips-per-tar", "4", "--drop-small-shards"]
        } else {
            &[]
        };
        let ctx = format!("seed {seed}");
        let o = run(&work, "shard", &input, "v0", drop);
        assert!(
            o.status.success(),
            "{ctx}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        // every third seed replaces a clip in place by other bytes of the same size: its
        // `video` tar must be written again, not copied
        if seed % 3 == 0 {
            let clip = input.join("clips").join(format!("{}.mp4", v1[0].uuid));
            let old = std::fs::read(&clip).unwrap();
            let new: Vec<u8> = old.iter().map(|b| b ^ 0x5a).collect();
            std::fs::write(&clip, new).unwrap();
        }
        let o = run(
            &work,
            "reshard",
            &input,
            "v1",
            &[&["--from-version", "v0"], drop].concat(),
        );
        assert!(
            o.status.success(),
            "{ctx}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let o = run(&fresh, "shard", &input, "v1", drop);
        assert!(
            o.status.success(),
            "{ctx}: {}",
            String::from_utf8_lossy(&o.stderr)
        );

        let (got, want) = (work.join("out/v1"), fresh.join("out/v1"));
        assert_same_files(&got, &want, &ctx);

        let c = counts(&got);
        let full = counts(&want);
        for k in ["listed", "written", "invalid", "dropped_no_bin"] {
            assert_eq!(n(&c, k), n(&full, k), "{ctx}: {k}");
        }
        let (embedded, reused) = expected_embedded(&work.join("out/v0"), &want);
        assert_eq!(
            n(&c, "windows_embedded"),
            embedded,
            "{ctx}: windows embedded ({c})"
        );
        assert_eq!(
            n(&c, "windows_reused"),
            reused,
            "{ctx}: windows reused ({c})"
        );
        assert_eq!(n(&full, "windows_embedded"), embedded + reused, "{ctx}");
        assert_eq!(
            n(&c, "tars") + n(&c, "tars_copied"),
            n(&full, "tars"),
            "{ctx}: every triple written or copied"
        );
        // a copied member tar is a hard link to the earlier version's
        #[cfg(unix)]
        {
            let linked = files_below(&got)
                .iter()
                .filter(|p| p.extension().is_some_and(|e| e == "tar") && links(p) == 2)
                .count() as u64;
            assert_eq!(
                linked,
                n(&c, "tar_files_copied"),
                "{ctx}: copies are hard links"
            );
        }
        copied_total += n(&c, "tars_copied");
        dropped_total += n(&c, "dropped_small_tar");
        assert_eq!(
            n(&c, "dropped_small_tar"),
            n(&full, "dropped_small_tar"),
            "{ctx}"
        );
        files_copied_total += n(&c, "tar_files_copied");
    }
    // the seeds exercise copies of whole triples and of single members
    assert!(copied_total > 0 && files_copied_total > 3 * copied_total);
    assert!(dropped_total > 0, "the odd seeds drop small tars");
}

fn sample_with_v1(dir: &Path) -> PathBuf {
    let input = dir.join("in");
    copy_tree(&data("sample-dataset"), &input);
    copy_tree(&input.join("metas/v0"), &input.join("metas/v1"));
    // v1: two captions rewritten, one clip gone, one clip turned portrait (another bin)
    run_tool(
        "edit_input.py",
        ["make-v1", input.join("metas/v1").to_str().unwrap()],
    );
    input
}

#[test]
fn reshard_of_the_sample_dataset_embeds_two_captions_and_reads_back_in_python() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample_with_v1(dir.path());
    let (work, fresh) = (dir.path().join("work"), dir.path().join("fresh"));
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(&fresh).unwrap();
    let big = ["--target-tar-size-mb", "0.05"];
    assert_ok(&run(&work, "shard", &input, "v0", &big));
    let o = run(
        &work,
        "reshard",
        &input,
        "v1",
        &[&["--from-version", "v0"][..], &big].concat(),
    );
    assert_ok(&o);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("2 caption windows embedded"), "{stdout}");
    assert_ok(&run(&fresh, "shard", &input, "v1", &big));
    assert_same_files(&work.join("out/v1"), &fresh.join("out/v1"), "reshard");
    let c = counts(&work.join("out/v1"));
    assert_eq!(n(&c, "windows_embedded"), 2, "{c}");
    assert!(n(&c, "tars_copied") > 0 && n(&c, "tars") > 0, "{c}");
    let compared = compare_strict(&fresh.join("out/v1"), &work.join("out/v1"));
    assert!(compared.ends_with("OK"), "{compared}");

    // lose one written and one copied member tar: `reshard --resume` restores both
    #[cfg(unix)]
    {
        let tars: Vec<PathBuf> = files_below(&work.join("out/v1"))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "tar"))
            .collect();
        let written = tars.iter().find(|p| links(p) == 1).unwrap();
        let copied = tars.iter().find(|p| links(p) == 2).unwrap();
        std::fs::remove_file(written).unwrap();
        std::fs::remove_file(copied).unwrap();
        let o = run(
            &work,
            "reshard",
            &input,
            "v1",
            &[&["--from-version", "v0", "--resume"][..], &big].concat(),
        );
        assert_ok(&o);
        assert_same_files(
            &work.join("out/v1"),
            &fresh.join("out/v1"),
            "after --resume",
        );
        let c = counts(&work.join("out/v1"));
        assert!(n(&c, "tars_resumed") > 0, "{c}");
    }
}

#[test]
fn an_unusable_from_version_is_refused_unless_full_is_asked() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample_with_v1(dir.path());
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    assert_ok(&run(&work, "shard", &input, "v0", &[]));

    let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();
    // missing
    let o = run(&work, "reshard", &input, "v1", &["--from-version", "v9"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cannot re-shard from v9") && stderr(&o).contains("--full"),
        "{}",
        stderr(&o)
    );
    // the cause is printed once, not again as the error's source
    assert_eq!(
        stderr(&o).matches("no shardflow job journal").count(),
        1,
        "{}",
        stderr(&o)
    );
    // other options
    let o = run(
        &work,
        "reshard",
        &input,
        "v1",
        &["--from-version", "v0", "--target-tar-size-mb", "0.02"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("target_tar_size_mb"), "{}", stderr(&o));
    // another model
    let model = dir.path().join("model");
    copy_tree(&data("t5-tiny"), &model);
    let config = model.join("config.json");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}\n")).unwrap();
    let m = model.to_str().unwrap();
    let o = run(
        &work,
        "reshard",
        &input,
        "v1",
        &["--from-version", "v0", "--t5-model", m],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("T5 model differs"), "{}", stderr(&o));
    assert!(!work.join("out/v1").exists());
    // --full: a plain full run
    let o = run(
        &work,
        "reshard",
        &input,
        "v1",
        &["--from-version", "v0", "--t5-model", m, "--full"],
    );
    assert_ok(&o);
    let c = counts(&work.join("out/v1"));
    assert_eq!(
        (n(&c, "tars_copied"), n(&c, "windows_reused")),
        (0, 0),
        "{c}"
    );
    assert!(n(&c, "windows_embedded") > 0);
}

#[test]
fn append_adds_new_clips_as_new_parts_and_leaves_existing_tars_alone() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    copy_tree(&data("sample-dataset"), &input);
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    // hold back every third metadata file, shard, then let them "arrive"
    let metas = input.join("metas/v0");
    let held = dir.path().join("held");
    std::fs::create_dir_all(&held).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&metas)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names.iter().step_by(3) {
        std::fs::rename(metas.join(name), held.join(name)).unwrap();
    }
    let small = ["--target-tar-size-mb", "0.05"];
    assert_ok(&run(&work, "shard", &input, "v0", &small));
    let out = work.join("out/v0");
    let before: BTreeMap<String, (Vec<u8>, std::time::SystemTime)> = files_below(&out)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "tar"))
        .map(|p| {
            let t = std::fs::metadata(&p).unwrap().modified().unwrap();
            (
                p.to_string_lossy().into_owned(),
                (std::fs::read(&p).unwrap(), t),
            )
        })
        .collect();
    let keys_before: BTreeSet<String> =
        written_captions(&out).into_iter().map(|(k, _)| k).collect();
    for name in names.iter().step_by(3) {
        std::fs::rename(held.join(name), metas.join(name)).unwrap();
    }

    let o = run(
        &work,
        "shard",
        &input,
        "v0",
        &[&["--append"][..], &small].concat(),
    );
    assert_ok(&o);
    // existing tars untouched
    for (p, (bytes, t)) in &before {
        let path = Path::new(p);
        assert_eq!(&std::fs::read(path).unwrap(), bytes, "{p} changed");
        assert_eq!(
            std::fs::metadata(path).unwrap().modified().unwrap(),
            *t,
            "{p} rewritten"
        );
    }
    // every clip a full run writes is there exactly once; the new ones in new parts
    let fresh = dir.path().join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    assert_ok(&run(&fresh, "shard", &input, "v0", &small));
    let all = |d: &Path| -> Vec<String> {
        let mut k: Vec<String> = written_captions(d).into_iter().map(|(k, _)| k).collect();
        k.sort();
        k
    };
    assert_eq!(all(&out), all(&fresh.join("out/v0")));
    let c = counts(&out);
    assert_eq!(n(&c, "tars_kept"), before.len() as u64 / 3, "{c}");
    assert!(n(&c, "tars") > 0, "{c}");
    assert_eq!(n(&c, "written") as usize, all(&out).len());
    for p in files_below(&out) {
        let rel = p.strip_prefix(&out).unwrap().to_string_lossy().into_owned();
        if rel.contains("/metas/")
            && rel.ends_with(".tar")
            && !before.contains_key(&p.to_string_lossy().into_owned())
        {
            // a new tar: only new clips, in a part after the bin's existing ones
            let mut a = tar::Archive::new(std::fs::File::open(&p).unwrap());
            for e in a.entries().unwrap() {
                let name = e.unwrap().path().unwrap().to_string_lossy().into_owned();
                assert!(!keys_before.contains(&name), "{name} written twice");
            }
            let bin = rel.split("/metas/").next().unwrap();
            let part = &rel[rel.len() - 22..rel.len() - 11];
            let existing_parts: BTreeSet<&str> = before
                .keys()
                .filter(|k| k.contains(&format!("{bin}/metas/")))
                .map(|k| &k[k.len() - 22..k.len() - 11])
                .collect();
            assert!(
                existing_parts.iter().all(|e| *e < part),
                "{rel} not after {existing_parts:?}"
            );
        }
    }
    // wdinfo lists every tar and counts every sample; Python reads the result
    run_tool(
        "read_dataset.py",
        [
            "wdinfo-totals",
            out.to_str().unwrap(),
            work.to_str().unwrap(),
        ],
    );
    // appending again finds nothing new
    let o = run(
        &work,
        "shard",
        &input,
        "v0",
        &[&["--append"][..], &small].concat(),
    );
    assert_ok(&o);
    let c2 = counts(&out);
    assert_eq!(n(&c2, "tars"), 0, "{c2}");
    assert_eq!(n(&c2, "written"), n(&c, "written"));
}

/// `reshard` killed at several points, then resumed: the same files as a fresh shard, one
/// completion record per tar triple, no temporary file left.
#[test]
fn reshard_killed_then_resumed_leaves_records_for_every_tar_and_no_partials() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample_with_v1(dir.path());
    let fresh = dir.path().join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    assert_ok(&run(&fresh, "shard", &input, "v1", &[]));
    let model = data("t5-tiny");
    for (i, delay_ms) in [30u64, 120, 250, 400, 700].into_iter().enumerate() {
        let work = dir.path().join(format!("work-{i}"));
        std::fs::create_dir_all(&work).unwrap();
        assert_ok(&run(&work, "shard", &input, "v0", &[]));
        let mut child = shardflow_command(&work)
            .arg("reshard")
            .args(["--from-version", "v0", "--annotation-version", "v1"])
            .args(["--input-clip-path", input.to_str().unwrap()])
            .args(["--output-dataset-path", "out", "--t5-model"])
            .arg(&model)
            .args([
                "--remap-clip-location",
                &format!("{SAMPLE_ROOT}={}", input.display()),
            ])
            .args(["--workers", "2", "--max-rejected-fraction", "0.5"])
            .args(["--target-tar-size-mb", "0.012", "--max-tars-per-part", "2"])
            .env("SHARDFLOW_LOG", "off")
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        child.wait().unwrap();
        let resumed = run(
            &work,
            "reshard",
            &input,
            "v1",
            &["--from-version", "v0", "--resume"],
        );
        assert_ok(&resumed);
        let v1 = work.join("out/v1");
        assert_same_files(
            &v1,
            &fresh.join("out/v1"),
            &format!("killed after {delay_ms} ms"),
        );
        let partial: Vec<PathBuf> = files_below(&v1)
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with(".partial"))
            .collect();
        assert!(
            partial.is_empty(),
            "killed after {delay_ms} ms: {partial:?}"
        );
        let records = files_below(&v1.join("_shardflow/done")).len() as u64;
        let c = counts(&v1);
        assert_eq!(
            records,
            n(&c, "tars") + n(&c, "tars_copied"),
            "killed after {delay_ms} ms: one record per tar triple"
        );
    }
}
