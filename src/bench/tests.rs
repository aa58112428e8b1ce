use super::*;
use crate::report::Counts;

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "shardflow-bench-unit-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn spec(seed: u64) -> SyntheticSpec {
    SyntheticSpec {
        clips: 12,
        windows_per_clip: 3,
        caption_words: (5, 9),
        clip_bytes: 2000,
        seed,
        clip_root: None,
    }
}

/// Every file below `dir` with its bytes, by relative path.
fn contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().into(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

#[test]
fn the_generator_is_deterministic_per_seed() {
    let (a, b, c) = (temp("a"), temp("b"), temp("c"));
    let ga = generate(&spec(7), &a, "v0").unwrap();
    generate(&spec(7), &b, "v0").unwrap();
    generate(&spec(8), &c, "v0").unwrap();
    assert_eq!(contents(&a), contents(&b));
    assert_ne!(contents(&a), contents(&c));
    assert_eq!(contents(&a).len(), 24, "a metadata file and a clip each");
    assert_eq!(ga.clips, 12);
    for d in [a, b, c] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn metadata_has_the_windows_captions_and_clip_sizes_asked_for() {
    let dir = temp("meta");
    let g = generate(&spec(3), &dir, "v0").unwrap();
    assert_eq!(g.windows, 36);
    let mut sizes = std::collections::BTreeSet::new();
    let mut bytes = 0;
    for e in std::fs::read_dir(dir.join("metas/v0")).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        let m: serde_json::Value = serde_json::from_str(&text).unwrap();
        let windows = m["windows"].as_array().unwrap();
        assert_eq!(windows.len(), 3);
        for w in windows {
            let words = w["qwen_caption"].as_str().unwrap().split(' ').count();
            assert!((5..=9).contains(&words), "{words} words");
        }
        let clip = dir.join(m["clip_location"].as_str().unwrap());
        let size = std::fs::metadata(&clip).unwrap().len();
        assert_eq!(size, m["num_bytes"].as_u64().unwrap());
        assert!((1800..=2200).contains(&size), "{size}");
        bytes += size;
        sizes.insert((m["width"].as_i64().unwrap(), m["height"].as_i64().unwrap()));
        assert_eq!(m["valid"], true);
    }
    assert_eq!(bytes, g.clip_bytes);
    assert!(sizes.len() >= 4, "several bins: {sizes:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn captions_stay_within_the_word_range() {
    let mut rng = SplitMix::new(1);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..500 {
        let n = caption(&mut rng, 10, 40).split(' ').count();
        assert!((10..=40).contains(&n), "{n}");
        seen.insert(n);
    }
    assert!(seen.len() > 10, "a mix of lengths: {seen:?}");
    assert_eq!(caption(&mut rng, 4, 4).split(' ').count(), 4);
}

#[test]
fn extrapolation_is_clips_over_rate_plus_the_fixed_time() {
    assert_eq!(extrapolate_hours(36_000, 10.0, 0.0), Some(1.0));
    assert_eq!(extrapolate_hours(36_000, 10.0, 1800.0), Some(1.5));
    assert_eq!(extrapolate_hours(20_000_000, 0.0, 5.0), None);
}

#[test]
fn the_summary_divides_by_the_steady_time_and_names_the_largest_stage() {
    let report = JobReport {
        job: "shard".into(),
        ok: true,
        error: None,
        counts: Counts {
            listed: 110,
            written: 100,
            windows_embedded: 200,
            tokens_embedded: 4000,
            bytes: 50_000_000,
            ..Default::default()
        },
        stage_seconds: [("encode".to_string(), 12.0), ("write_tar".to_string(), 4.0)]
            .into_iter()
            .collect(),
        wall_seconds: 12.0,
        milestone_seconds: Default::default(),
        workers: 2,
        processes: 1,
        bins: vec![],
    };
    let setup = BenchSetup {
        input: "synthetic".into(),
        model: "m".into(),
        device: "cpu".into(),
        t5_dtype: "fp32".into(),
        workers: 2,
        cpu: "x".into(),
        project_clips: 36_000,
    };
    let r = summarize(setup, &report, 2.0);
    assert_eq!(r.steady_seconds, 10.0);
    assert_eq!(r.clips_per_second, 10.0);
    assert_eq!(r.captions_per_second, 20.0);
    assert_eq!(r.tokens_per_second, 400.0);
    assert_eq!(r.mb_per_second_written, 5.0);
    assert_eq!(r.clips_not_written, 10);
    assert_eq!(r.stage_share["encode"], 0.5);
    assert_eq!(r.bounding_stage.as_deref(), Some("encode"));
    // 36 000 clips at 10/s is one hour, plus the 2 s load
    assert!((r.project_hours.unwrap() - (1.0 + 2.0 / 3600.0)).abs() < 1e-12);
    let text = render_text(&r);
    assert!(text.contains("36000 clips ≈ 1.0 hours"), "{text}");
    assert!(
        text.contains("encode") && text.contains("<- bounds the job"),
        "{text}"
    );
}

#[test]
fn a_clip_root_makes_every_clip_location_absolute_and_nothing_else_changes() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate(&spec(3), a.path(), "v0").unwrap();
    let rooted = SyntheticSpec {
        clip_root: Some("/data/in/".into()),
        ..spec(3)
    };
    generate(&rooted, b.path(), "v0").unwrap();
    let metas = |d: &std::path::Path| -> Vec<(String, serde_json::Value)> {
        let mut v: Vec<_> = std::fs::read_dir(d.join("metas/v0"))
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                let json = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                (p.file_name().unwrap().to_string_lossy().into_owned(), json)
            })
            .collect();
        v.sort_by(|x, y| x.0.cmp(&y.0));
        v
    };
    let (plain, with_root) = (metas(a.path()), metas(b.path()));
    assert_eq!(plain.len(), 12);
    for ((name, m), (name2, mut r)) in plain.into_iter().zip(with_root) {
        assert_eq!(name, name2);
        let loc = r["clip_location"].as_str().unwrap().to_string();
        assert_eq!(
            loc,
            format!("/data/in/{}", m["clip_location"].as_str().unwrap())
        );
        r["clip_location"] = m["clip_location"].clone();
        assert_eq!(r, m);
    }
}
