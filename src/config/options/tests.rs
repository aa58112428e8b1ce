use std::collections::BTreeSet;
use std::path::Path;

use clap::{CommandFactory, Parser};

use super::*;

/// `shard`'s arguments alone, as the binary parses them.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    shard: ShardArgs,
}

fn command_line(args: &[&str]) -> ShardArgs {
    Cli::try_parse_from(std::iter::once("shard").chain(args.iter().copied()))
        .unwrap()
        .shard
}

#[test]
fn an_empty_command_line_sets_nothing() {
    // so that it never hides a value of the file
    let args = command_line(&[]);
    assert_eq!(args.options, ShardOptions::default());
    assert!(args.config.is_none() && !args.check && !args.resume && !args.append);
}

#[test]
fn command_line_overrides_the_file_and_the_file_fills_the_gaps() {
    let file = ShardOptions::parse(
        "workers = 4\nbatch_size = 7\ndrop_small_shards = false\nallow_no_captions = true\n\
         index = [\"dali\"]\nremap_clip_location = [\"/a=/b\"]\n",
    )
    .unwrap();
    let cli = command_line(&[
        "--workers",
        "2",
        "--drop-small-shards",
        "--index",
        "wids",
        "--allowed-clip-roots",
        "/x,s3://b/y",
    ]);
    let merged = cli.options.over(file);
    assert_eq!(merged.workers, Some(2), "the command line wins");
    assert_eq!(merged.batch_size, Some(7), "the file fills a gap");
    assert_eq!(
        merged.drop_small_shards,
        Some(true),
        "a flag overrides false"
    );
    assert_eq!(
        merged.allow_no_captions,
        Some(true),
        "an absent flag keeps the file's"
    );
    assert_eq!(
        merged.index,
        Some(vec!["wids".to_string()]),
        "a list is replaced"
    );
    assert_eq!(merged.remap_clip_location, Some(vec!["/a=/b".to_string()]));
    assert_eq!(
        merged.allowed_clip_roots,
        Some(vec!["/x".to_string(), "s3://b/y".to_string()])
    );
    assert_eq!(
        merged.max_batch_tokens, None,
        "set nowhere: the default applies later"
    );
}

#[test]
fn nested_sections_merge_key_by_key() {
    let file = ShardOptions::parse(
        "[cluster]\nprocesses = 4\nhostfile = \"/h\"\naddresses = [\"a:1\"]\n\
         [storage]\nmax_retries = 3\npart_size_mb = 8\nparts_in_flight = 2\n",
    )
    .unwrap();
    let cli = command_line(&[
        "--processes",
        "2",
        "--process",
        "1",
        "--s3-max-retries",
        "9",
        "--s3-retry-timeout-s",
        "5",
    ]);
    let merged = cli.options.over(file);
    let cluster = &merged.cluster;
    assert_eq!(cluster.processes, Some(2));
    assert_eq!(cluster.process, Some(1));
    assert_eq!(cluster.hostfile.as_deref(), Some(Path::new("/h")));
    assert_eq!(cluster.addresses, Some(vec!["a:1".to_string()]));
    assert_eq!(cluster.connect_timeout_s, None);
    let storage = &merged.storage;
    assert_eq!(storage.max_retries, Some(9));
    assert_eq!(storage.retry_timeout_s, Some(5));
    assert_eq!(storage.part_size_mb, Some(8));
    assert_eq!(storage.parts_in_flight, Some(2));
    assert_eq!(storage.read_concurrency, None);
    // no section on either side stays empty
    let none = ShardOptions::default().over(ShardOptions::default());
    assert_eq!(none.cluster, ClusterSection::default());
}

#[test]
fn config_file_is_read_under_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(
        &p,
        "workers = 4\nt5_model = \"m\"\n[cluster]\nprocesses = 3\n",
    )
    .unwrap();
    let path = p.to_str().unwrap();
    let merged = command_line(&["--config", path, "--process", "2", "--check"])
        .merged_options()
        .unwrap();
    assert_eq!(merged.workers, Some(4));
    assert_eq!(merged.t5_model, Some(dir.path().join("m")));
    assert_eq!(merged.cluster.processes, Some(3));
    assert_eq!(merged.cluster.process, Some(2));
    std::fs::write(&p, "workerz = 4\n").unwrap();
    let err = command_line(&["--config", path])
        .merged_options()
        .unwrap_err();
    assert!(err.contains("workerz: unknown field"), "{err}");
}

/// Keys with no command-line flag.
const FILE_ONLY: [&str; 4] = [
    "bins",
    "cluster.addresses",
    "storage.read_concurrency",
    "storage.parts_in_flight",
];

/// Every config-file key, sections' as `section.key`.
fn all_keys() -> BTreeSet<String> {
    let top = ShardOptions::KEYS
        .iter()
        .filter(|k| !["cluster", "storage"].contains(k))
        .map(|k| k.to_string());
    let cluster = ClusterSection::KEYS.iter().map(|k| format!("cluster.{k}"));
    let storage = StorageSection::KEYS.iter().map(|k| format!("storage.{k}"));
    top.chain(cluster).chain(storage).collect()
}

#[test]
fn every_key_but_the_file_only_ones_is_a_flag_of_the_same_name() {
    let flags: BTreeSet<String> = Cli::command()
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_owned))
        .collect();
    let mut expected: BTreeSet<String> = all_keys()
        .iter()
        .filter(|k| !FILE_ONLY.contains(&k.as_str()))
        .map(|k| {
            let k = k.strip_prefix("cluster.").unwrap_or(k);
            match k.strip_prefix("storage.") {
                Some(k) => format!("s3-{}", k.replace('_', "-")),
                None => k.replace('_', "-"),
            }
        })
        .collect();
    expected.extend(["config", "check", "resume", "append"].map(String::from));
    assert_eq!(flags, expected);
}

/// A config file with its commented-out keys (`# key = ...`) and sections (`# [bins]`)
/// uncommented.
fn uncommented(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let key_len = |s: &str| {
            s.find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(s.len())
        };
        let line = match line.strip_prefix("# ") {
            Some(rest) if key_len(rest) > 0 && rest[key_len(rest)..].starts_with(" = ") => rest,
            Some(rest) if rest.starts_with('[') && rest.ends_with(']') => rest,
            _ => line,
        };
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The keys of a parsed config file, sections' as `section.key` (`[bins]` is one key: its
/// own keys are checked by parsing).
fn keys_of(table: &toml::Table) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for (k, v) in table {
        match v {
            toml::Value::Table(t) if k == "cluster" || k == "storage" => {
                keys.extend(t.keys().map(|inner| format!("{k}.{inner}")));
            }
            _ => {
                keys.insert(k.clone());
            }
        }
    }
    keys
}

#[test]
fn the_example_configs_hold_only_real_options_and_the_full_example_every_one() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        seen += 1;
        let text = uncommented(&std::fs::read_to_string(&path).unwrap());
        // unknown keys are errors, so this also catches a misspelt or removed option
        if let Err(errors) = ShardOptions::parse(&text) {
            panic!("{}: {errors:#?}", path.display());
        }
        if path.ends_with("shard.example.toml") {
            let table: toml::Table = toml::from_str(&text).unwrap();
            assert_eq!(
                keys_of(&table),
                all_keys(),
                "{} documents every key",
                path.display()
            );
        }
    }
    assert!(seen >= 3, "{seen} config files in {}", dir.display());
}
