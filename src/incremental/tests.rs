use super::*;

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
