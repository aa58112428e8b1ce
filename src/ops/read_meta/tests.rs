use super::*;

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("metas/v0")).unwrap();
        std::fs::create_dir_all(dir.path().join("clips")).unwrap();
        std::fs::write(dir.path().join("clips/c1.mp4"), vec![7u8; 100]).unwrap();
        Fixture { dir }
    }

    fn reader(&self) -> MetaReader {
        MetaReader {
            storage: Storage::new(crate::storage::StorageOptions::default()),
            meta_dir: Location::Local(self.dir.path().join("metas/v0")),
            input_root: Location::Local(self.dir.path().to_path_buf()),
            remaps: vec![],
            caption_field: "qwen_caption".into(),
            bins: BinSpec::Frames,
            layout: crate::layout::OutputLayout::Reference,
            allowed_roots: vec![],
            slim: false,
            check_clips: true,
        }
    }

    fn read_text(&self, text: &str) -> MetaOutcome {
        std::fs::write(self.dir.path().join("metas/v0/m.json"), text).unwrap();
        self.reader().read(&ListedFile {
            size: 0,
            seq: 3,
            rel_path: "m.json".into(),
            error: None,
            failed: false,
        })
    }
}

fn meta(overrides: &[(&str, &str)]) -> String {
    let mut fields: Vec<(String, String)> = [
        ("span_uuid", "\"c1\""),
        ("clip_location", "\"clips/c1.mp4\""),
        ("width", "1280"),
        ("height", "720"),
        ("framerate", "24.0"),
        ("num_frames", "48"),
        ("num_bytes", "100"),
        (
            "windows",
            "[{\"start_frame\": 0, \"end_frame\": 47, \"qwen_caption\": \" a cat \"}]",
        ),
        ("valid", "true"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in overrides {
        if let Some(f) = fields.iter_mut().find(|f| f.0 == *k) {
            f.1 = v.to_string();
        } else {
            fields.push((k.to_string(), v.to_string()));
        }
    }
    let body: Vec<String> = fields
        .into_iter()
        .filter(|(_, v)| v != "DELETE")
        .map(|(k, v)| format!("\"{k}\": {v}"))
        .collect();
    format!("{{{}}}", body.join(", "))
}

fn reject_kind(o: &MetaOutcome) -> Option<RejectKind> {
    match o {
        MetaOutcome::Reject(r) => Some(r.kind),
        _ => None,
    }
}

#[test]
fn valid_clip_is_read_with_bin_and_relative_location() {
    let f = Fixture::new();
    let MetaOutcome::Clip(c) = f.read_text(&meta(&[])) else {
        panic!("not a clip")
    };
    assert_eq!(c.span_uuid, "c1");
    assert_eq!(c.seq, 3);
    assert_eq!(
        c.bin.as_deref(),
        Some("resolution_720/aspect_ratio_16_9/frames_0_120")
    );
    assert_eq!(c.captions, vec![Some(" a cat ".to_string())]);
    assert_eq!(
        c.clip_path,
        f.dir.path().join("clips/c1.mp4").to_string_lossy()
    );
    assert!(c.warnings.is_empty());
}

#[test]
fn invalid_clip_is_not_checked_further() {
    let f = Fixture::new();
    let o = f.read_text(&meta(&[
        ("valid", "false"),
        ("clip_location", "\"clips/none.mp4\""),
    ]));
    assert_eq!(o, MetaOutcome::Invalid { seq: 3 });
}

#[test]
fn bad_inputs_are_rejected_with_reason_naming_the_key() {
    let f = Fixture::new();
    let cases: Vec<(String, RejectKind, &str)> = vec![
        (
            "{\"span_uuid\": ".to_string(),
            RejectKind::InvalidJson,
            "JSON",
        ),
        ("[1, 2]".to_string(), RejectKind::InvalidJson, "list"),
        (
            meta(&[("span_uuid", "DELETE")]),
            RejectKind::MissingKey,
            "span_uuid",
        ),
        (
            meta(&[("span_uuid", "5")]),
            RejectKind::WrongType,
            "span_uuid",
        ),
        (
            meta(&[("span_uuid", "\"a/b\"")]),
            RejectKind::UnsafeSpanUuid,
            "a/b",
        ),
        (
            meta(&[("span_uuid", "\"..\"")]),
            RejectKind::UnsafeSpanUuid,
            "..",
        ),
        (
            meta(&[("span_uuid", "\"\"")]),
            RejectKind::UnsafeSpanUuid,
            "empty",
        ),
        (
            meta(&[("span_uuid", "\"a\\u0000b\"")]),
            RejectKind::UnsafeSpanUuid,
            "NUL",
        ),
        (
            meta(&[("width", "DELETE")]),
            RejectKind::MissingKey,
            "width",
        ),
        (
            meta(&[("width", "\"1280\"")]),
            RejectKind::WrongType,
            "width",
        ),
        (
            meta(&[("num_frames", "4.5")]),
            RejectKind::WrongType,
            "num_frames",
        ),
        (meta(&[("height", "0")]), RejectKind::WrongType, "height"),
        (
            meta(&[("num_bytes", "-1")]),
            RejectKind::WrongType,
            "num_bytes",
        ),
        (meta(&[("valid", "1")]), RejectKind::WrongType, "valid"),
        (meta(&[("windows", "{}")]), RejectKind::WrongType, "windows"),
        (
            meta(&[("windows", "[3]")]),
            RejectKind::WrongType,
            "windows[0]",
        ),
        (
            meta(&[("clip_location", "DELETE")]),
            RejectKind::MissingKey,
            "clip_location",
        ),
        (
            meta(&[("clip_location", "\"clips/none.mp4\"")]),
            RejectKind::ClipMissing,
            "none.mp4",
        ),
        (
            meta(&[("clip_location", "\"clips\"")]),
            RejectKind::ClipUnreadable,
            "regular file",
        ),
        (
            meta(&[(
                "windows",
                "[{\"qwen_caption\": \"ok\"}, {\"qwen_caption\": 5}]",
            )]),
            RejectKind::CaptionNotString,
            "windows[1].qwen_caption",
        ),
        (
            meta(&[("windows", "[{\"qwen_caption\": null}]")]),
            RejectKind::CaptionNotString,
            "windows[0]",
        ),
    ];
    for (text, kind, needle) in cases {
        let o = f.read_text(&text);
        let MetaOutcome::Reject(r) = &o else {
            panic!("{text}: not rejected: {o:?}")
        };
        assert_eq!(r.kind, kind, "{text}: {r:?}");
        assert!(
            r.message.contains(needle),
            "{text}: message {:?} lacks {needle:?}",
            r.message
        );
        assert_eq!(r.meta, "m.json");
    }
}

#[test]
fn unreadable_or_unlistable_file_is_rejected() {
    let f = Fixture::new();
    let r = f.reader();
    let o = r.read(&ListedFile {
        size: 0,
        seq: 0,
        rel_path: "absent.json".into(),
        error: None,
        failed: false,
    });
    assert_eq!(reject_kind(&o), Some(RejectKind::UnreadableMeta));
    let o = r.read(&ListedFile {
        size: 0,
        seq: 0,
        rel_path: "x".into(),
        error: Some("cannot list directory".into()),
        failed: false,
    });
    assert_eq!(reject_kind(&o), Some(RejectKind::UnreadableMeta));
}

#[test]
fn missing_caption_marks_clip_invalid_and_warns() {
    let f = Fixture::new();
    let text = meta(&[(
        "windows",
        "[{\"qwen_caption\": \"a\"}, {\"start_frame\": 0}, {\"qwen_caption\": \"b\"}]",
    )]);
    let MetaOutcome::Clip(c) = f.read_text(&text) else {
        panic!()
    };
    assert_eq!(c.captions, vec![Some("a".into()), None, Some("b".into())]);
    let json = crate::formats::pyjson::parse(&c.json).unwrap();
    assert_eq!(json.get("valid"), Some(&PyValue::Bool(false)));
    assert_eq!(c.warnings, vec![WarningKind::MissingCaption]);
}

#[test]
fn num_bytes_mismatch_is_a_warning_not_a_reject() {
    let f = Fixture::new();
    let MetaOutcome::Clip(c) = f.read_text(&meta(&[("num_bytes", "5000")])) else {
        panic!()
    };
    assert_eq!(c.num_bytes, 5000);
    assert_eq!(c.warnings, vec![WarningKind::NumBytesMismatch]);
}

#[test]
fn dropped_clip_needs_no_readable_file() {
    let f = Fixture::new();
    let o = f.read_text(&meta(&[
        ("width", "640"),
        ("height", "480"),
        ("clip_location", "\"clips/none.mp4\""),
    ]));
    let MetaOutcome::Clip(c) = o else { panic!() };
    assert_eq!(c.bin, None);
}

#[test]
fn remaps_apply_before_resolution() {
    let f = Fixture::new();
    let mut r = f.reader();
    r.remaps = vec![(
        "/old/root".into(),
        f.dir.path().to_string_lossy().into_owned(),
    )];
    assert_eq!(
        r.resolve_location("/old/root/clips/c1.mp4"),
        f.dir.path().join("clips/c1.mp4").to_string_lossy()
    );
    assert_eq!(r.resolve_location("/else/x.mp4"), "/else/x.mp4");
    assert_eq!(r.resolve_location("s3://b/x.mp4"), "s3://b/x.mp4");
}

#[test]
fn dataflow_reads_every_file_once() {
    use std::sync::{Arc, Mutex};
    use timely::dataflow::operators::{Inspect, ToStream};
    let f = Fixture::new();
    for i in 0..6 {
        std::fs::write(
            f.dir.path().join(format!("metas/v0/{i}.json")),
            meta(&[("span_uuid", &format!("\"u{i}\""))]),
        )
        .unwrap();
    }
    let reader = f.reader();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    timely::execute(timely::Config::process(2), move |worker| {
        let seen = seen2.clone();
        let leader = worker.index() == 0;
        let reader = reader.clone();
        worker.dataflow::<u64, _, _>(|scope| {
            let files: Vec<ListedFile> = if leader {
                (0..6)
                    .map(|i| ListedFile {
                        size: 0,
                        seq: i,
                        rel_path: format!("{i}.json"),
                        error: None,
                        failed: false,
                    })
                    .collect()
            } else {
                vec![]
            };
            files
                .to_stream(scope)
                .read_meta(reader, &JobContext::default())
                .inspect(move |o| {
                    if let MetaOutcome::Clip(c) = o {
                        seen.lock().unwrap().push(c.span_uuid.clone());
                    }
                });
        });
    })
    .unwrap();
    let mut v = seen.lock().unwrap().clone();
    v.sort();
    assert_eq!(v, ["u0", "u1", "u2", "u3", "u4", "u5"]);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn listed() -> ListedFile {
        ListedFile {
            seq: 0,
            rel_path: "m.json".into(),
            size: 0,
            error: None,
            failed: false,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever the bytes, validation returns an outcome (a reject names a kind and has a
        /// message); it never panics.
        #[test]
        fn metadata_validation_never_panics(
            edits in prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 0..8),
            junk in prop::collection::vec(any::<u8>(), 0..200),
        ) {
            let f = Fixture::new();
            let reader = f.reader();
            let mut good = meta(&[]).into_bytes();
            for (op, pos, byte) in edits {
                let len = good.len();
                match op % 3 {
                    0 => good[pos % len] = byte,
                    1 => good.insert(pos % (len + 1), byte),
                    _ => { good.remove(pos % len); }
                }
            }
            for bytes in [good, junk] {
                match reader.parse(&listed(), &bytes) {
                    Stage::Done(MetaOutcome::Reject(r)) => prop_assert!(!r.message.is_empty()),
                    Stage::Done(_) | Stage::Clip(_) => {}
                }
            }
        }
    }
}

#[test]
fn a_clip_the_storage_cannot_reach_fails_the_job_instead_of_a_reject() {
    let f = Fixture::new();
    let reader = f.reader();
    reader.storage.serve_unreachable_bucket("down");
    std::fs::write(
        f.dir.path().join("metas/v0/m.json"),
        meta(&[("clip_location", "\"s3://down/clips/c1.mp4\"")]),
    )
    .unwrap();
    let o = reader.read(&ListedFile {
        size: 0,
        seq: 3,
        rel_path: "m.json".into(),
        error: None,
        failed: false,
    });
    let MetaOutcome::Failed { seq, message } = o else {
        panic!("a storage failure, not {o:?}");
    };
    assert_eq!(seq, 3);
    assert!(
        message.contains("m.json") && message.contains("s3://down/clips/c1.mp4"),
        "{message}"
    );
    assert!(message.contains("--resume"), "{message}");
    // a missing local clip stays the input's fault
    let o = f.read_text(&meta(&[("clip_location", "\"clips/none.mp4\"")]));
    assert_eq!(reject_kind(&o), Some(RejectKind::ClipMissing));
}

#[test]
fn the_predict25_layout_adds_the_trainer_keys_or_rejects_a_window_past_the_clip() {
    let f = Fixture::new();
    let reader = MetaReader {
        layout: crate::layout::OutputLayout::CosmosPredict25,
        ..f.reader()
    };
    std::fs::write(f.dir.path().join("metas/v0/m.json"), meta(&[])).unwrap();
    let file = ListedFile {
        size: 0,
        seq: 3,
        rel_path: "m.json".into(),
        error: None,
        failed: false,
    };
    let MetaOutcome::Clip(c) = reader.read(&file) else {
        panic!("not a clip")
    };
    let json = String::from_utf8(c.json.clone()).unwrap();
    assert!(json.ends_with(", \"valid\": true, \"nb_frames\": 48, \"t2w_windows\": [{\"start_frame\": 0, \"end_frame\": 48, \"qwen2p5_7b_caption\": \" a cat \"}]}"), "{json}");
    let past = "[{\"start_frame\": 0, \"end_frame\": 48, \"qwen_caption\": \"a\"}]";
    std::fs::write(
        f.dir.path().join("metas/v0/m.json"),
        meta(&[("windows", past)]),
    )
    .unwrap();
    let MetaOutcome::Reject(r) = reader.read(&file) else {
        panic!("not rejected")
    };
    assert_eq!(r.kind, RejectKind::WrongType);
    assert!(
        r.message.contains("windows[0]: end_frame 48 is past"),
        "{}",
        r.message
    );
    // the reference layout writes it as it is
    assert!(matches!(f.reader().read(&file), MetaOutcome::Clip(_)));
}
