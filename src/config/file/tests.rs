use super::*;

#[test]
fn unknown_keys_are_errors_with_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(&p, "workers = 2\ntarget_tar_size_gb = 1\n").unwrap();
    let err = ShardOptions::load(&p).unwrap_err();
    assert!(err.contains("target_tar_size_gb"), "{err}");
    std::fs::write(&p, "[cluster]\nprocesses = 2\nhosts = []\n").unwrap();
    let err = ShardOptions::load(&p).unwrap_err();
    assert!(err.contains("hosts"), "{err}");
}

#[test]
fn every_wrong_type_is_reported_with_its_key() {
    let text = "workers = \"x\"\nbatch_size = \"y\"\ntarget_tar_size_mb = \"z\"\n\
                device = \"cpu\"\n";
    let errs = ShardOptions::parse(text).unwrap_err();
    assert_eq!(errs.len(), 3, "{errs:#?}");
    for (key, value) in [
        ("workers", "\"x\""),
        ("batch_size", "\"y\""),
        ("target_tar_size_mb", "\"z\""),
    ] {
        let prefix = format!("{key}: invalid type: string {value}");
        assert!(
            errs.iter().any(|e| e.starts_with(&prefix)),
            "{prefix} missing in {errs:#?}"
        );
    }
    // through load: one message, one problem per line
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(&p, text).unwrap();
    let err = ShardOptions::load(&p).unwrap_err();
    assert!(err.contains("3 problems"), "{err}");
    assert_eq!(err.lines().count(), 4, "{err}");
}

#[test]
fn sections_and_unknown_keys_are_reported_together() {
    let text = "workerz = 1\nworkers = -1\nindex = [\"dali\", 3]\n\
                [cluster]\nprocesses = \"two\"\nhosts = []\nprocess = 0\n\
                [storage]\nmax_retries = 1.5\n\
                [bins]\nlength = \"frames\"\n\
                resolution = [ { min_short_side = 720, name = \"hd\" }, { min_short_side = 0 } ]\n";
    let errs = ShardOptions::parse(text).unwrap_err();
    for key in [
        "workerz: unknown field",
        "workers: invalid value",
        "index[1]: invalid type",
        "cluster.processes: invalid type",
        "cluster.hosts: unknown field",
        "storage.max_retries: invalid type",
        "bins.length: unknown variant",
        "bins.resolution[1]: missing field `name`",
    ] {
        assert!(errs.iter().any(|e| e.starts_with(key)), "{key}: {errs:#?}");
    }
    assert_eq!(errs.len(), 8, "{errs:#?}");
    // valid sections parse as before
    let f =
        ShardOptions::parse("workers = 2\n[cluster]\nprocesses = 2\n[storage]\nmax_retries = 3\n")
            .unwrap();
    assert_eq!(f.workers, Some(2));
    assert_eq!(f.cluster.processes, Some(2));
    assert_eq!(f.storage.max_retries, Some(3));
}

#[test]
fn huge_or_binary_values_are_not_echoed() {
    let huge = "a".repeat(10 << 20);
    let n = huge.len();
    for (text, shows, bytes) in [
        (
            format!("workers = \"{huge}\"\n"),
            "workers: invalid type: string \"aaaa",
            Some(n),
        ),
        (
            format!("captioning_algorithm = [\"{huge}\"]\n"),
            "captioning_algorithm: invalid type: sequence",
            None,
        ),
        (format!("{huge} = 1\n"), "unknown field `aaaa", Some(n)),
        (
            format!("[bins]\nlength = \"{huge}\"\n"),
            "bins.length: unknown variant `aaaa",
            Some(n),
        ),
        (format!("workers = 1 {huge}\n"), "line 1, column 1", None),
        (
            format!("workers = \"\\u0000\\u001b[31m{huge}\"\n"),
            "workers: invalid type: string \"\\0\\u{1b}[31maaaa",
            Some(n + 6),
        ),
    ] {
        let errs = ShardOptions::parse(&text).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        let e = &errs[0];
        let head: String = e.chars().take(300).collect();
        assert!(e.len() < 1024, "{} bytes: {head}", e.len());
        assert!(!e.contains('\u{0}') && !e.contains('\u{1b}'), "{head}");
        assert!(
            e.starts_with(shows) || e.contains(shows),
            "{shows} not in {head}"
        );
        if let Some(bytes) = bytes {
            assert!(e.contains(&format!("({bytes} bytes)")), "{head}");
        }
    }
}

#[test]
fn the_example_config_is_valid_also_with_its_bin_table() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/shard.example.toml");
    let env = |_: &str| None;
    let f = ShardOptions::load(&example).unwrap();
    let cfg = crate::config::ShardConfig::resolve(f, &env).unwrap();
    assert_eq!(cfg.bins, crate::spec::BinSpec::Frames);
    // uncomment the [bins] table (and drop bin_spec, which it replaces)
    let text = std::fs::read_to_string(&example).unwrap();
    let mut out = String::new();
    let mut in_bins = false;
    for line in text.lines() {
        if line.starts_with("bin_spec") {
            continue;
        }
        if line == "# [bins]" {
            in_bins = true;
        }
        out.push_str(if in_bins {
            line.trim_start_matches("# ")
        } else {
            line
        });
        out.push('\n');
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(&p, out).unwrap();
    let mut f = ShardOptions::load(&p).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    f.input_clip_path = Some(root.join("tests/data/sample-dataset").display().to_string());
    f.t5_model = Some(root.join("tests/data/t5-tiny"));
    let cfg = crate::config::ShardConfig::resolve(f, &env).unwrap();
    let crate::spec::BinSpec::Custom(t) = cfg.bins else {
        panic!("the [bins] table is used");
    };
    assert_eq!(t.aspect_ratio.len(), 2);
    assert_eq!(t.length, crate::spec::bins::LengthKind::DurationS);
}

#[test]
fn relative_paths_follow_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(&p, "input_clip_path = \"in\"\nt5_model = \"/abs/model\"\noutput_dataset_path = \"out\"\n[cluster]\nhostfile = \"hosts\"\n").unwrap();
    let f = ShardOptions::load(&p).unwrap();
    assert_eq!(
        f.input_clip_path.unwrap(),
        dir.path().join("in").to_string_lossy()
    );
    assert_eq!(f.t5_model.unwrap(), PathBuf::from("/abs/model"));
    assert_eq!(
        f.output_dataset_path.unwrap(),
        dir.path().join("out").to_string_lossy()
    );
    assert_eq!(f.cluster.hostfile.unwrap(), dir.path().join("hosts"));
}

#[test]
fn a_section_of_the_wrong_type_names_the_table_not_a_rust_type() {
    for (text, want) in [
        (
            "cluster = 5\n",
            "cluster: invalid type: integer `5`, expected a [cluster] table",
        ),
        (
            "storage = \"x\"\n",
            "storage: invalid type: string \"x\", expected a [storage] table",
        ),
    ] {
        let errs = ShardOptions::parse(text).unwrap_err();
        assert!(
            errs.iter().any(|e| e.starts_with(want)),
            "{want}: {errs:#?}"
        );
    }
}
