//! Random versions for the tests of the change computation.

use super::*;
use crate::formats::test_python::XorShift;

/// Small tars, two per part.
pub const GROUPING: Grouping = Grouping {
    target_tar_bytes: 300,
    max_tars_per_part: 2,
    drop_below: 0,
};

/// A clip in one of three bins.
pub fn random_clip(rng: &mut XorShift, seq: u64) -> (String, ClipFacts) {
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
pub fn old_of(clips: &[(String, ClipFacts)]) -> OldVersion {
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
pub fn edit(v0: &[(String, ClipFacts)], rng: &mut XorShift) -> Vec<(String, ClipFacts)> {
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
