use super::*;
use crate::record::{ClipMeta, PlannedClip};
use crate::storage::StorageOptions;

fn tar(bin: &str, t: u32) -> TarId {
    TarId {
        bin_order: 0,
        bin: bin.into(),
        part: 0,
        tar: t,
    }
}

fn done(t: TarId, bytes: u64) -> TarDone {
    TarDone {
        tar: t,
        samples: 2,
        bytes,
        windows_embedded: 3,
        tokens_embedded: 40,
        rejects: vec![],
        error: None,
        resumed: false,
        ..Default::default()
    }
}

fn job() -> JobFingerprint {
    JobFingerprint {
        format: FORMAT,
        mtime: 1_700_000_000,
        options: BTreeMap::from([
            ("target_tar_size_mb".to_string(), serde_json::json!(500.0)),
            (
                "captioning_algorithm".to_string(),
                serde_json::json!("qwen"),
            ),
        ]),
        model: ModelFingerprint {
            sha256: "ab".repeat(32),
            weights: vec![("model.safetensors".into(), 10)],
        },
        inputs: None,
    }
}

#[test]
fn differences_name_each_option_and_the_model() {
    let a = job();
    assert!(differences(&a, &a).is_empty());
    let mut b = job();
    b.options
        .insert("target_tar_size_mb".into(), serde_json::json!(100.0));
    b.options.remove("captioning_algorithm");
    b.model.weights[0].1 = 11;
    let d = differences(&a, &b);
    assert_eq!(d.len(), 3, "{d:?}");
    assert_eq!(d[0], "captioning_algorithm: \"qwen\" before, unset now");
    assert_eq!(d[1], "target_tar_size_mb: 500.0 before, 100.0 now");
    assert!(d[2].starts_with("the T5 model differs"), "{d:?}");
}

#[test]
fn a_layout_change_is_a_difference_named_both_ways() {
    let a = job();
    let mut b = job();
    b.options
        .insert("layout".into(), serde_json::json!("cosmos-predict2.5"));
    assert_eq!(
        differences(&a, &b),
        ["layout: \"reference\" before, \"cosmos-predict2.5\" now"]
    );
    assert_eq!(
        differences(&b, &a),
        ["layout: \"cosmos-predict2.5\" before, \"reference\" now"]
    );
}

#[test]
fn job_and_done_records_round_trip_and_stale_records_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::new(StorageOptions::default());
    let version = Location::Local(dir.path().join("v0"));
    let j = Journal::new(storage, version.clone());
    assert_eq!(j.read_job().unwrap(), None);
    assert!(j.load_done().unwrap().is_empty());
    j.write_job(&job()).unwrap();
    assert_eq!(j.read_job().unwrap(), Some(job()));
    // three triples recorded; their tars: complete, one member missing, one changed size
    for (t, sizes) in [(0, [1, 2, 3]), (1, [1, 2, 3]), (2, [1, 2, 3])] {
        let id = tar("b/x", t);
        for (stream, n) in crate::layout::Stream::ALL.into_iter().zip(sizes) {
            let p = crate::layout::StreamNames::REFERENCE.tar_path(&version, &id, stream);
            let p = p.as_local().unwrap();
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, vec![0u8; n]).unwrap();
        }
        j.record_done(&done(id, 6)).unwrap();
    }
    std::fs::remove_file(dir.path().join("v0/b/x/metas/part_000000/000001.tar")).unwrap();
    std::fs::write(
        dir.path().join("v0/b/x/video/part_000000/000002.tar"),
        b"xx",
    )
    .unwrap();
    // a record that does not parse is ignored too
    std::fs::write(
        dir.path()
            .join("v0/_shardflow/done/b/x/part_000000/000009.json"),
        b"{",
    )
    .unwrap();
    let kept = j.load_done().unwrap();
    assert_eq!(kept, [done(tar("b/x", 0), 6)]);
    std::fs::write(dir.path().join("v0/_shardflow/job.json"), b"[1]").unwrap();
    let e = j.read_job().unwrap_err().to_string();
    assert!(
        e.contains("job.json") && e.contains("not a shardflow job journal"),
        "{e}"
    );
}

fn planned(json: &[u8]) -> PlannedClip {
    let meta_hash = crate::hash::stable_hash(json);
    PlannedClip {
        rank: 0,
        tar: tar("b", 0),
        index: 0,
        tar_len: 1,
        meta: Box::new(ClipMeta {
            seq: 0,
            rel_path: "a.json".into(),
            span_uuid: "a".into(),
            bin: Some("b".into()),
            num_bytes: 5,
            clip_path: "/c/a.mp4".into(),
            captions: vec![Some("hi".into()), None],
            json: json.to_vec(),
            warnings: vec![],
            meta_hash,
            ..Default::default()
        }),
        mtime: 0,
        gone: None,
        ..Default::default()
    }
}

#[test]
fn inputs_fingerprint_follows_the_plan() {
    let s = PlanSummary {
        listed: 1,
        planned: 1,
        ..Default::default()
    };
    let a = inputs_fingerprint(&[planned(b"{}")], &s);
    assert_eq!(a, inputs_fingerprint(&[planned(b"{}")], &s));
    assert_ne!(a.sha256, inputs_fingerprint(&[planned(b"{ }")], &s).sha256);
    let mut moved = planned(b"{}");
    moved.tar.tar = 1;
    assert_ne!(a.sha256, inputs_fingerprint(&[moved], &s).sha256);
    let more_invalid = PlanSummary {
        invalid: 1,
        ..s.clone()
    };
    assert_ne!(
        a.sha256,
        inputs_fingerprint(&[planned(b"{}")], &more_invalid).sha256
    );
}

#[test]
fn model_fingerprint_json_is_the_journal_format() {
    // journals written before the fingerprint moved to the model module must still read
    let text = serde_json::to_string(&job().model).unwrap();
    assert_eq!(
        text,
        format!(
            "{{\"sha256\":\"{}\",\"weights\":[[\"model.safetensors\",10]]}}",
            "ab".repeat(32)
        )
    );
    assert_eq!(
        serde_json::from_str::<ModelFingerprint>(&text).unwrap(),
        job().model
    );
}

#[test]
fn model_fingerprint_hashes_small_files_and_sizes_weights() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), b"{\"d_model\": 4}").unwrap();
    std::fs::write(dir.path().join("tokenizer.json"), b"{}").unwrap();
    std::fs::write(dir.path().join("model.safetensors"), vec![0u8; 100]).unwrap();
    let a = model_fingerprint(dir.path()).unwrap();
    assert_eq!(a.weights, [("model.safetensors".to_string(), 100)]);
    std::fs::write(dir.path().join("model.safetensors"), vec![1u8; 100]).unwrap();
    assert_eq!(
        a,
        model_fingerprint(dir.path()).unwrap(),
        "weights: by size only"
    );
    std::fs::write(dir.path().join("config.json"), b"{\"d_model\": 8}").unwrap();
    assert_ne!(a, model_fingerprint(dir.path()).unwrap());
    assert!(model_fingerprint(&dir.path().join("none")).is_err());
}

#[test]
fn only_a_layout_other_than_the_reference_enters_the_fingerprint() {
    use crate::config::{ShardConfig, ShardOptions};
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let f = ShardOptions {
        input_clip_path: Some(".".into()),
        output_dataset_path: Some("o".into()),
        t5_model: Some(data.join("t5-tiny")),
        ..ShardOptions::default()
    };
    let c = ShardConfig::resolve(f.clone(), &|_| None).unwrap();
    // journals written before the option still match
    assert!(!options_of(&c).contains_key("layout"));
    let p_options = ShardOptions {
        layout: Some("cosmos-predict2.5".into()),
        ..f
    };
    let p = ShardConfig::resolve(p_options.clone(), &|_| None).unwrap();
    assert_eq!(
        options_of(&p)["layout"],
        serde_json::json!("cosmos-predict2.5")
    );
    // nor do the reference's stream names; a UMT5 model's in that layout do, and a base
    // read back from them finds its tars there
    assert!(!options_of(&p).contains_key("embedding_stream"));
    assert_eq!(
        stream_names_of(&options_of(&p)),
        Some(StreamNames::REFERENCE)
    );
    let u = ShardConfig::resolve(
        ShardOptions {
            t5_model: Some(data.join("umt5-tiny")),
            ..p_options
        },
        &|_| None,
    )
    .unwrap();
    assert_eq!(
        options_of(&u)["embedding_stream"],
        serde_json::json!("umt5_xxl")
    );
    assert_eq!(stream_names_of(&options_of(&u)), Some(u.names));
    let mut unknown = options_of(&u);
    unknown.insert("embedding_stream".into(), serde_json::json!("t6"));
    assert_eq!(stream_names_of(&unknown), None);
}
