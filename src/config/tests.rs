use super::*;
use crate::layout::StreamNames;

fn cfg() -> ShardConfig {
    ShardConfig {
        input: ".".into(),
        output: "out/".into(),
        version: "v0".into(),
        model_dir: ".".into(),
        workers: 2,
        batch_size: 8,
        max_batch_tokens: 4096,
        device: DeviceSpec::Cpu,
        precision: Precision::Fp32,
        target_tar_size_mb: 500.0,
        max_tars_per_part: 100,
        captioning_algorithm: "qwen".into(),
        remaps: vec![],
        cluster: Cluster::default(),
        storage: StorageOptions::default(),
        allowed_clip_roots: vec![],
        max_rejected_fraction: 0.0,
        bins: BinSpec::Frames,
        listing: Listing::Scan,
        semantic_dedup: None,
        min_clips_per_tar: 1,
        drop_small_shards: false,
        allow_no_captions: false,
        gathered_plan: false,
        layout: crate::layout::OutputLayout::Reference,
        names: crate::layout::StreamNames::REFERENCE,
        index: Indexes::default(),
        metrics_listen: None,
    }
}

#[test]
fn object_store_paths() {
    let c = ShardConfig {
        input: "s3://in-bucket/data/".into(),
        output: "s3://out-bucket/sets/run1/".into(),
        ..cfg()
    };
    assert!(c.validate().is_ok());
    assert_eq!(c.meta_dir().to_string(), "s3://in-bucket/data/metas/v0");
    assert_eq!(c.version_dir().to_string(), "s3://out-bucket/sets/run1/v0");
    assert_eq!(c.root_version_dir(), "sets/run1/v0");
    assert_eq!(c.display_version_dir(), "s3://out-bucket/sets/run1/v0");
    assert_eq!(cfg().root_version_dir(), "out/v0");
    let bad = ShardConfig {
        input: "ftp://h/x".into(),
        output: "http://h/y".into(),
        remaps: vec![("/a".into(), "hdfs://x/".into())],
        ..cfg()
    };
    let errs = bad.validate().unwrap_err();
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(
        errs[0].starts_with("input_clip_path (--input-clip-path): ftp://h/x: unsupported scheme"),
        "{errs:?}"
    );
    assert!(errs[1].starts_with("output_dataset_path"), "{errs:?}");
    assert!(errs[2].starts_with("remap_clip_location[0]"), "{errs:?}");
}

#[test]
fn storage_section_is_validated() {
    let f = ShardOptions {
        input_clip_path: Some(".".into()),
        output_dataset_path: Some("o".into()),
        t5_model: Some(".".into()),
        output_s3_profile_name: Some("team".into()),
        storage: StorageSection {
            part_size_mb: Some(4),
            read_concurrency: Some(0),
            max_retries: Some(2),
            ..StorageSection::default()
        },
        ..ShardOptions::default()
    };
    let errs = ShardConfig::resolve(f.clone(), &|_| None).unwrap_err();
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[0].contains("storage.part_size_mb") && errs[0].contains("at least 5"));
    assert!(errs[1].contains("storage.read_concurrency"));
    let mut ok = f;
    ok.storage = StorageSection {
        part_size_mb: Some(8),
        max_retries: Some(2),
        ..StorageSection::default()
    };
    let c = ShardConfig::resolve(ok, &|_| None).unwrap();
    assert_eq!(c.storage.part_size_bytes, 8 << 20);
    assert_eq!(c.storage.max_retries, 2);
    assert_eq!(c.storage.output_profile.as_deref(), Some("team"));
    assert_eq!(c.storage.input_profile, None);
}

#[test]
fn valid_config_and_derived_paths() {
    let c = cfg();
    assert!(c.validate().is_ok());
    assert_eq!(c.target_tar_bytes(), 500 * 1024 * 1024);
    assert_eq!(c.display_version_dir(), "out/v0");
    assert_eq!(c.meta_dir(), Location::Local(PathBuf::from("./metas/v0")));
}

#[test]
fn every_error_reported_at_once() {
    let mut c = cfg();
    c.workers = 0;
    c.batch_size = 0;
    c.target_tar_size_mb = -1.0;
    c.max_tars_per_part = 0;
    c.version = "a/b".into();
    let errs = c.validate().unwrap_err();
    assert_eq!(errs.len(), 5, "{errs:?}");
    for opt in [
        "--workers",
        "--batch-size",
        "--target-tar-size-mb",
        "--max-tars-per-part",
        "--annotation-version",
    ] {
        assert!(
            errs.iter().any(|e| e.contains(&format!("({opt})"))),
            "{opt} missing in {errs:?}"
        );
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn resolve_reports_every_problem_with_its_key_path() {
    let f = ShardOptions {
        workers: Some(0),
        device: Some("gpu".into()),
        remap_clip_location: Some(vec!["x".into()]),
        cluster: ClusterSection {
            processes: Some(2),
            process: Some(5),
            addresses: Some(vec!["127.0.0.1:1".into(), "nope".into()]),
            ..Default::default()
        },
        ..Default::default()
    };
    let errs = ShardConfig::resolve(f, &no_env).unwrap_err();
    for key in [
        "input_clip_path (--input-clip-path): required",
        "output_dataset_path",
        "t5_model",
        "workers (--workers)",
        "device (--device)",
        "remap_clip_location[0]",
        "cluster.process (--process)",
        "cluster.addresses[1]",
    ] {
        assert!(
            errs.iter().any(|e| e.starts_with(key)),
            "{key} missing in {errs:#?}"
        );
    }
}

#[test]
fn command_line_overrides_file_and_env_gives_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let file = ShardOptions {
        input_clip_path: Some(dir.path().to_string_lossy().into_owned()),
        output_dataset_path: Some("out".into()),
        t5_model: Some(dir.path().into()),
        workers: Some(4),
        batch_size: Some(7),
        cluster: ClusterSection {
            processes: Some(3),
            process_env: Some("SLURM_PROCID".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let cli = ShardOptions {
        workers: Some(2),
        ..Default::default()
    };
    let env = |k: &str| (k == "SLURM_PROCID").then(|| "2".to_string());
    let cfg = ShardConfig::resolve(cli.over(file), &env).unwrap();
    assert_eq!(cfg.workers, 2);
    assert_eq!(cfg.batch_size, 7);
    assert_eq!(cfg.cluster.process, 2);
    assert_eq!(cfg.cluster.processes, 3);
    assert_eq!(
        cfg.cluster.addresses,
        ["localhost:2101", "localhost:2102", "localhost:2103"]
    );
}

#[test]
fn huge_values_are_shortened_in_messages() {
    let huge = "a".repeat(10 << 20);
    let f = ShardOptions {
        device: Some(huge.clone()),
        t5_dtype: Some(format!("\u{1b}[2J{huge}")),
        listing: Some(huge.clone()),
        index: Some(vec![huge.clone()]),
        remap_clip_location: Some(vec![huge.clone()]),
        annotation_version: Some(format!("{huge}/x")),
        input_clip_path: Some(format!("ftp://{huge}")),
        output_dataset_path: Some(huge.clone()),
        t5_model: Some(PathBuf::from(&huge)),
        cluster: ClusterSection {
            processes: Some(2),
            addresses: Some(vec![huge.clone(), "b:1".into()]),
            ..Default::default()
        },
        ..Default::default()
    };
    let errs = ShardConfig::resolve(f, &no_env).unwrap_err();
    for key in [
        "device (--device): expected cpu, cuda or cuda:N, got \"aaaa",
        "t5_dtype (--t5-dtype): expected fp32, bf16 or fp16, got \"\\u{1b}[2Jaaa",
        "listing (--listing)",
        "index (--index)",
        "remap_clip_location[0]",
        "annotation_version (--annotation-version): \"aaaa",
        "input_clip_path (--input-clip-path): ftp://aaaa",
        "t5_model (--t5-model): aaaa",
        "cluster.addresses[0]: \"aaaa",
    ] {
        assert!(
            errs.iter().any(|e| e.starts_with(key)),
            "{key} missing in {:?}",
            errs.iter()
                .map(|e| e.chars().take(200).collect::<String>())
                .collect::<Vec<_>>()
        );
    }
    for e in &errs {
        let head: String = e.chars().take(200).collect();
        assert!(e.len() < 1024, "{} bytes: {head}", e.len());
        assert!(!e.contains('\u{1b}'), "{head}");
    }
    let device = errs.iter().find(|e| e.starts_with("device")).unwrap();
    assert!(
        device.ends_with(&format!("… ({} bytes)", huge.len())),
        "{device}"
    );
    // short values are echoed as before
    let f = ShardOptions {
        device: Some("gpu".into()),
        ..Default::default()
    };
    let errs = ShardConfig::resolve(f, &no_env).unwrap_err();
    assert!(
        errs.contains(&"device (--device): expected cpu, cuda or cuda:N, got \"gpu\"".into()),
        "{errs:?}"
    );
}

#[test]
fn version_rule() {
    for bad in ["", ".", "..", "../x", "a/b", "/v0"] {
        let e = check_version(bad).unwrap_err();
        assert!(e.contains("is not a directory name"), "{e}");
    }
    for good in ["v0", "v1.2", "..v", "x..y"] {
        assert!(check_version(good).is_ok(), "{good}");
    }
}

#[test]
fn remap_parsing() {
    assert_eq!(
        parse_remap("/a=/b").unwrap(),
        ("/a".to_string(), "/b".to_string())
    );
    assert_eq!(
        parse_remap("/a=").unwrap(),
        ("/a".to_string(), String::new())
    );
    assert!(parse_remap("=/b").is_err());
    assert!(parse_remap("nope").is_err());
}

#[test]
fn relative_remap_targets_and_clip_roots_become_absolute() {
    let cwd = std::env::current_dir().unwrap();
    let under_cwd = |p: &str| cwd.join(p).to_string_lossy().into_owned();
    let mut c = ShardConfig {
        remaps: vec![
            ("/a".into(), "clips".into()),
            ("/b".into(), "s3://bucket/clips".into()),
            ("/c".into(), "/abs/clips".into()),
            ("/d".into(), String::new()),
        ],
        allowed_clip_roots: vec!["roots/x".into(), "/abs/root".into(), "s3://b/r".into()],
        ..cfg()
    };
    c.absolutize_paths().unwrap();
    assert_eq!(
        c.remaps,
        vec![
            ("/a".to_string(), under_cwd("clips")),
            ("/b".to_string(), "s3://bucket/clips".to_string()),
            ("/c".to_string(), "/abs/clips".to_string()),
            ("/d".to_string(), String::new()),
        ]
    );
    assert_eq!(
        c.allowed_clip_roots,
        vec![
            under_cwd("roots/x"),
            "/abs/root".to_string(),
            "s3://b/r".to_string()
        ]
    );
}

#[test]
fn layout_defaults_to_the_reference() {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let f = ShardOptions {
        input_clip_path: Some(".".into()),
        output_dataset_path: Some("o".into()),
        t5_model: Some(data.join("t5-tiny")),
        ..ShardOptions::default()
    };
    let c = ShardConfig::resolve(f.clone(), &no_env).unwrap();
    assert_eq!(c.layout, crate::layout::OutputLayout::Reference);
    assert_eq!(c.names, StreamNames::REFERENCE);
    let p = ShardConfig::resolve(
        ShardOptions {
            layout: Some("cosmos-predict2.5".into()),
            ..f.clone()
        },
        &no_env,
    )
    .unwrap();
    assert_eq!(p.layout, crate::layout::OutputLayout::CosmosPredict25);
    assert_eq!(p.names, StreamNames::REFERENCE);
    // a UMT5 model's embedding stream is umt5_xxl in the predict2.5 layout only
    let umt5 = ShardOptions {
        t5_model: Some(data.join("umt5-tiny")),
        ..f.clone()
    };
    let r = ShardConfig::resolve(umt5.clone(), &no_env).unwrap();
    assert_eq!(r.names, StreamNames::REFERENCE);
    let u = ShardConfig::resolve(
        ShardOptions {
            layout: Some("cosmos-predict2.5".into()),
            ..umt5
        },
        &no_env,
    )
    .unwrap();
    assert_eq!(u.names.embedding, crate::layout::EmbeddingName::Umt5Xxl);
    // the model's config.json is read for it: a directory without one is named
    let errs = ShardConfig::resolve(
        ShardOptions {
            layout: Some("cosmos-predict2.5".into()),
            t5_model: Some(".".into()),
            ..f.clone()
        },
        &no_env,
    )
    .unwrap_err();
    assert!(
        errs.iter()
            .any(|e| e.starts_with("t5_model (--t5-model): ") && e.contains("config.json")),
        "{errs:?}"
    );
    let errs = ShardConfig::resolve(
        ShardOptions {
            layout: Some("predict".into()),
            ..f
        },
        &no_env,
    )
    .unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("layout (--layout): unknown layout"),
        "{errs:?}"
    );
}
