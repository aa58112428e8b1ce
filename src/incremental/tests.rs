use super::*;
use crate::formats::test_python::XorShift;

const GROUPING: Grouping = Grouping {
    target_tar_bytes: 300,
    max_tars_per_part: 2,
    drop_below: 0,
};

fn random_clip(rng: &mut XorShift, seq: u64) -> (String, ClipFacts) {
    (
        format!("bin{}", rng.below(3)),
        ClipFacts {
            seq,
            num_bytes: 50 + rng.below(200),
            key: format!("k{seq}"),
            clip_path: format!("clips/k{seq}.mp4"),
            clip_size: 100,
            clip_stamp: 7,
            meta_hash: rng.below(1000),
            caption_hashes: (0..rng.below(3)).map(|_| rng.below(60)).collect(),
        },
    )
}

/// The old version as its writers would have recorded it.
fn old_of(clips: &[(String, ClipFacts)]) -> OldVersion {
    let c = changes_oracle(&OldVersion::default(), clips, GROUPING);
    OldVersion {
        files: files_of(&c.triples).collect(),
        captions: clips
            .iter()
            .flat_map(|(_, c)| c.caption_hashes.iter().copied())
            .collect(),
    }
}

/// v1 as an edit of v0: changed captions and metadata, clips removed, added, moved to
/// another bin.
fn edit(v0: &[(String, ClipFacts)], rng: &mut XorShift) -> Vec<(String, ClipFacts)> {
    let mut v1 = Vec::new();
    for (bin, c) in v0 {
        let (mut bin, mut c) = (bin.clone(), c.clone());
        match rng.below(12) {
            0 => continue,
            1 => c.caption_hashes = vec![100 + rng.below(50)],
            2 => c.meta_hash += 1,
            3 => bin = format!("bin{}", rng.below(4)),
            4 => c.num_bytes += rng.below(100),
            _ => {}
        }
        v1.push((bin, c));
    }
    for i in 0..rng.below(6) {
        v1.push(random_clip(rng, 1000 + i));
    }
    v1
}

#[test]
fn differential_changes_equal_the_oracle_over_many_seeds() {
    for seed in 0..60u64 {
        let mut rng = XorShift::new(seed);
        let v0: Vec<_> = (0..rng.below(40))
            .map(|i| random_clip(&mut rng, i))
            .collect();
        let old = old_of(&v0);
        let v1 = edit(&v0, &mut rng);
        let want = changes_oracle(&old, &v1, GROUPING);
        let workers = 1 + (seed % 3) as usize;
        let got = changes(&old, &v1, GROUPING, workers);
        assert_eq!(got, want, "seed {seed} ({workers} workers)");
    }
}

#[test]
fn identical_versions_change_nothing() {
    let mut rng = XorShift::new(7);
    let v: Vec<_> = (0..30).map(|i| random_clip(&mut rng, i)).collect();
    let c = changes(&old_of(&v), &v, GROUPING, 2);
    assert!(c.write.is_empty() && c.removed.is_empty() && c.new_captions.is_empty());
    assert_eq!(c.copy.len(), 3 * c.triples.len());
    assert!(!c.triples.is_empty());
}

#[test]
fn a_changed_caption_rewrites_only_its_t5_tar() {
    let mut rng = XorShift::new(3);
    let v0: Vec<_> = (0..12).map(|i| random_clip(&mut rng, i)).collect();
    let mut v1 = v0.clone();
    v1[5].1.caption_hashes = vec![999];
    let c = changes(&old_of(&v0), &v1, GROUPING, 2);
    assert_eq!(c.new_captions, BTreeSet::from([999]));
    assert_eq!(c.write.len(), 1);
    let (bin, kind, _, _) = c.write.first().unwrap();
    assert_eq!((bin.as_str(), *kind), (v1[5].0.as_str(), 1));
}

#[test]
fn the_hash_of_a_member_depends_on_its_own_fields_only() {
    let base = SampleFacts {
        key: "k",
        clip_path: "c.mp4",
        clip_size: 10,
        clip_stamp: 3,
        meta_hash: 1,
        caption_hashes: &[1, 2],
    };
    let hash = |s: SampleFacts| {
        let mut h = ContentHasher::default();
        h.add(&s);
        h.finish().0
    };
    let h0 = hash(base);
    let h1 = hash(SampleFacts {
        caption_hashes: &[1],
        ..base
    });
    assert_eq!((h0[0], h0[2]), (h1[0], h1[2]));
    assert_ne!(h0[1], h1[1]);
    let h2 = hash(SampleFacts {
        clip_size: 11,
        ..base
    });
    assert_eq!((h0[1], h0[2]), (h2[1], h2[2]));
    assert_ne!(h0[0], h2[0]);
    // a clip replaced in place by one of the same size
    let h3 = hash(SampleFacts {
        clip_stamp: 4,
        ..base
    });
    assert_eq!((h0[1], h0[2]), (h3[1], h3[2]));
    assert_ne!(h0[0], h3[0]);
}
