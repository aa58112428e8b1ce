use super::*;

#[test]
fn streams_in_reference_order() {
    assert_eq!(
        StreamNames::REFERENCE.data_keys(),
        ["video", "t5_xxl", "metas"]
    );
    assert_eq!(Stream::ALL.map(Stream::ext), ["mp4", "pickle", "json"]);
    for (i, s) in Stream::ALL.into_iter().enumerate() {
        assert_eq!(s.index(), i);
        assert_eq!(Stream::from_index(i), Some(s));
    }
    assert_eq!(Stream::from_index(STREAM_COUNT), None);
    for s in Stream::ALL {
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, format!("\"{}\"", s.name()));
        assert_eq!(serde_json::from_str::<Stream>(&json).unwrap(), s);
    }
    assert!(Stream::ALL.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn per_stream_is_a_plain_array_on_the_wire() {
    let p = PerStream([1u64, 2, 3]);
    assert_eq!(serde_json::to_string(&p).unwrap(), "[1,2,3]");
    let back: PerStream<u64> = serde_json::from_str("[1,2,3]").unwrap();
    assert_eq!(back, p);
    let o: PerStream<Option<u64>> = Default::default();
    assert_eq!(serde_json::to_string(&o).unwrap(), "[null,null,null]");
    assert_eq!(p[Stream::T5Xxl], 2);
    assert_eq!(p.map(|x| x * 2).0, [2, 4, 6]);
    let pairs: Vec<(Stream, u64)> = p.iter().map(|(s, v)| (s, *v)).collect();
    assert_eq!(pairs[2], (Stream::Metas, 3));
}

#[test]
fn layouts_by_name() {
    for l in OutputLayout::ALL {
        assert_eq!(OutputLayout::parse(l.name()), Ok(l));
        assert_eq!(l.to_string(), l.name());
    }
    assert_eq!(OutputLayout::default(), OutputLayout::Reference);
    let e = OutputLayout::parse("predict2").unwrap_err();
    assert!(e.contains("reference or cosmos-predict2.5"), "{e}");
    for e in EmbeddingName::ALL {
        // the reference's trainer reads t5_xxl whatever the encoder
        assert_eq!(
            OutputLayout::Reference.stream_names(e),
            StreamNames::REFERENCE
        );
        assert_eq!(
            OutputLayout::CosmosPredict25.stream_names(e),
            StreamNames { embedding: e }
        );
    }
}

#[test]
fn tar_paths() {
    let id = TarId {
        bin_order: 0,
        bin: "r/a".into(),
        part: 1,
        tar: 2,
    };
    let root = Location::Local("/o/v".into());
    assert_eq!(
        StreamNames::REFERENCE.tar_path(&root, &id, Stream::T5Xxl),
        root.join("r/a/t5_xxl/part_000001/000002.tar")
    );
}

#[test]
fn member_names() {
    assert_eq!(member_name("k0_0", Stream::T5Xxl), "k0_0.pickle");
    assert_eq!(member_name("k", Stream::Video), "k.mp4");
    assert_eq!(member_key("k0_0.pickle", Stream::T5Xxl), Some("k0_0"));
    assert_eq!(member_key("a.b.json", Stream::Metas), Some("a.b"));
    assert_eq!(member_key("k.json", Stream::T5Xxl), None);
    assert_eq!(member_key("kpickle", Stream::T5Xxl), None);
    assert_eq!(member_key(".pickle", Stream::T5Xxl), Some(""));
}

#[test]
fn files_beside_the_tars() {
    assert_eq!(
        idx_path("r/a/video/part_000000/000001.tar"),
        "r/a/video/part_000000/000001.idx"
    );
    assert_eq!(idx_path("x"), "x.idx");
    let tar = Location::Local("/o/v/r/a/video/part_000000/000001.tar".into());
    assert_eq!(
        idx_location(&tar).unwrap(),
        Location::Local("/o/v/r/a/video/part_000000/000001.idx".into())
    );
    assert_eq!(wdinfo_rel("r/a"), "r/a/wdinfo.json");
    assert_eq!(WDINFO_LIST, "wdinfo_list.csv");
    assert_eq!(wdinfo_dir("out/v0/r/a/wdinfo.json"), Some("out/v0/r/a"));
    assert_eq!(wdinfo_dir("wdinfo.json"), None);
    assert_eq!(wdinfo_dir("r/a/xwdinfo.json"), None);
    assert_eq!(wdinfo_dir("r/a"), None);
    assert_eq!(
        StreamNames::REFERENCE.shardindex_rel("r/a", Stream::Metas),
        "r/a/metas/shardindex.json"
    );
    assert_eq!(shardindex_in("r/a/t5_xxl"), "r/a/t5_xxl/shardindex.json");
}
