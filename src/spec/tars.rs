//! Greedy tar grouping and part naming (SPEC §4).

use std::ops::Range;

/// One tar of a bin: where it goes and which clips (indices into the bin's clip list) it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TarGroup {
    /// Part index: the `p` in `part_{p:06}`.
    pub part: u32,
    /// Tar index within its part, restarting at 0 in every part.
    pub tar: u32,
    /// The clips of this tar, in bin order.
    pub members: Range<usize>,
}

/// Groups a bin's clips (their metadata `num_bytes`, in clip order) into tars: start a tar
/// with the first clip, add the next clip unless the tar would exceed `target_bytes`, in
/// which case start a new tar with it. A clip larger than the target gets a tar of its own.
/// Tars are then split into parts of `max_tars_per_part`.
pub fn group_tars(sizes: &[u64], target_bytes: u64, max_tars_per_part: u32) -> Vec<TarGroup> {
    group_tars_dropping(sizes, target_bytes, max_tars_per_part, 0)
}

/// [`group_tars`] with the reference's `--drop-small-shards`: the last (remainder) tar is
/// dropped when it has fewer than `drop_below` clips (0: never). Only the last tar can be
/// dropped, and nothing is renumbered.
pub fn group_tars_dropping(
    sizes: &[u64],
    target_bytes: u64,
    max_tars_per_part: u32,
    drop_below: u32,
) -> Vec<TarGroup> {
    let mut grouper = TarGrouper::new(target_bytes, max_tars_per_part, drop_below);
    let mut groups: Vec<TarGroup> = sizes.iter().filter_map(|&s| grouper.push(s)).collect();
    groups.extend(grouper.finish());
    groups
}

/// [`group_tars_dropping`] one clip at a time, for a planner that sees a bin's clips as they
/// are listed: a tar is closed, and known for good, as soon as the next clip does not fit;
/// only the bin's last tar waits for the end of its clips (`--drop-small-shards` may drop it).
#[derive(Clone, Debug)]
pub struct TarGrouper {
    target_bytes: u64,
    max_tars_per_part: u32,
    drop_below: u32,
    /// Clips pushed so far.
    clips: usize,
    /// First clip of the open tar.
    start: usize,
    /// Bytes in the open tar.
    current: u64,
    /// Tars closed so far.
    closed: usize,
}

impl TarGrouper {
    /// A grouper for one bin; see [`group_tars_dropping`] for the parameters.
    ///
    /// # Panics
    /// If `max_tars_per_part` is 0.
    pub fn new(target_bytes: u64, max_tars_per_part: u32, drop_below: u32) -> Self {
        assert!(max_tars_per_part > 0, "max_tars_per_part must be positive");
        Self {
            target_bytes,
            max_tars_per_part,
            drop_below,
            clips: 0,
            start: 0,
            current: 0,
            closed: 0,
        }
    }

    /// Adds the bin's next clip (its `num_bytes`); returns the tar this closed, if any.
    pub fn push(&mut self, size: u64) -> Option<TarGroup> {
        let i = self.clips;
        self.clips += 1;
        let closed = (i > self.start && self.current.saturating_add(size) > self.target_bytes)
            .then(|| {
                let group = self.group(self.start..i);
                self.start = i;
                self.current = 0;
                group
            });
        self.current = self.current.saturating_add(size);
        closed
    }

    /// Ends the bin: its last tar, unless it is empty or dropped for having fewer than
    /// `drop_below` clips.
    pub fn finish(mut self) -> Option<TarGroup> {
        let (start, clips) = (self.start, self.clips);
        (start < clips && clips - start >= self.drop_below as usize)
            .then(|| self.group(start..clips))
    }

    /// Clips pushed so far.
    pub fn clips(&self) -> usize {
        self.clips
    }

    fn group(&mut self, members: Range<usize>) -> TarGroup {
        let i = self.closed;
        self.closed += 1;
        let per_part = self.max_tars_per_part as usize;
        TarGroup {
            part: (i / per_part) as u32,
            tar: (i % per_part) as u32,
            members,
        }
    }
}

/// The path of a tar relative to `<bin>/<video|t5_xxl|metas>`: `part_000001/000000.tar`.
pub fn tar_rel_path(part: u32, tar: u32) -> String {
    format!("part_{part:06}/{tar:06}.tar")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(sizes: &[u64], target: u64) -> Vec<Range<usize>> {
        group_tars(sizes, target, 100)
            .into_iter()
            .map(|g| g.members)
            .collect()
    }

    #[test]
    fn greedy_boundaries() {
        assert_eq!(ranges(&[], 10), Vec::<Range<usize>>::new());
        assert_eq!(ranges(&[5], 10), vec![0..1]);
        // exactly reaching the target stays in the tar
        assert_eq!(ranges(&[5, 5, 1], 10), vec![0..2, 2..3]);
        // a clip larger than the target gets its own tar, also as the first
        assert_eq!(ranges(&[20, 1, 30, 2], 10), vec![0..1, 1..2, 2..3, 3..4]);
        assert_eq!(ranges(&[0, 0, 0], 0), vec![0..3]);
        assert_eq!(ranges(&[3, 3, 3, 3], 6), vec![0..2, 2..4]);
    }

    #[test]
    fn sample_dataset_default_target() {
        // 300 MiB inflated clips at the default 500 MiB target: a new tar for the second one
        let mib = 1024 * 1024;
        let sizes = [8452, 9220, 300 * mib, 300 * mib, 8164];
        assert_eq!(ranges(&sizes, 500 * mib), vec![0..3, 3..5]);
    }

    #[test]
    fn parts_restart_tar_index() {
        let g = group_tars(&[1; 7], 1, 3);
        let names: Vec<String> = g.iter().map(|g| tar_rel_path(g.part, g.tar)).collect();
        assert_eq!(
            names,
            [
                "part_000000/000000.tar",
                "part_000000/000001.tar",
                "part_000000/000002.tar",
                "part_000001/000000.tar",
                "part_000001/000001.tar",
                "part_000001/000002.tar",
                "part_000002/000000.tar"
            ]
        );
    }

    /// Against a literal transcription of the reference loop, over many random inputs.
    #[test]
    fn matches_reference_loop() {
        let mut state: u64 = 0x9E3779B97F4A7C15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for seed in 0..500 {
            let n = (next() % 40) as usize;
            let target = next() % 100;
            let sizes: Vec<u64> = (0..n).map(|_| next() % 60).collect();
            // reference: tars = [[first]]; for clip: if cur + size > target: new tar
            let mut expect: Vec<Vec<usize>> = Vec::new();
            let mut cur = 0u64;
            for (i, &s) in sizes.iter().enumerate() {
                if expect.is_empty() || cur + s > target {
                    expect.push(vec![i]);
                    cur = s;
                } else {
                    expect.last_mut().unwrap().push(i);
                    cur += s;
                }
            }
            let got: Vec<Vec<usize>> = ranges(&sizes, target)
                .into_iter()
                .map(|r| r.collect())
                .collect();
            assert_eq!(got, expect, "seed {seed}: sizes {sizes:?} target {target}");
        }
    }

    /// The streaming grouper gives the whole-list grouping (the reference loop, then the
    /// `--drop-small-shards` rule on the last tar, then parts), and gives each tar but the
    /// last as soon as the clip after it is pushed.
    #[test]
    fn streaming_grouper_matches_whole_list_and_closes_early() {
        for seed in 0..300u64 {
            let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut next = || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            };
            let n = (next() % 40) as usize;
            let target = 1 + next() % 100;
            let sizes: Vec<u64> = (0..n).map(|_| next() % 120).collect();
            let drop_below = (next() % 4) as u32;
            let per_part = 1 + (next() % 3) as u32;
            let mut tars: Vec<Range<usize>> = Vec::new();
            let mut cur = 0u64;
            for (i, &s) in sizes.iter().enumerate() {
                match tars.last_mut() {
                    Some(t) if cur + s <= target => {
                        t.end = i + 1;
                        cur += s;
                    }
                    _ => {
                        tars.push(i..i + 1);
                        cur = s;
                    }
                }
            }
            if tars.last().is_some_and(|t| t.len() < drop_below as usize) {
                tars.pop();
            }
            let expect: Vec<TarGroup> = tars
                .into_iter()
                .enumerate()
                .map(|(i, members)| TarGroup {
                    part: i as u32 / per_part,
                    tar: i as u32 % per_part,
                    members,
                })
                .collect();
            let mut grouper = TarGrouper::new(target, per_part, drop_below);
            let mut got = Vec::new();
            for (i, &size) in sizes.iter().enumerate() {
                if let Some(g) = grouper.push(size) {
                    assert_eq!(g.members.end, i, "seed {seed}: closed by the next clip");
                    got.push(g);
                }
            }
            assert_eq!(grouper.clips(), n, "seed {seed}");
            let streamed = got.len();
            got.extend(grouper.finish());
            assert!(
                got.len() - streamed <= 1,
                "seed {seed}: only the last tar waits"
            );
            assert_eq!(got, expect, "seed {seed}: sizes {sizes:?} target {target}");
            assert_eq!(
                group_tars_dropping(&sizes, target, per_part, drop_below),
                expect,
                "seed {seed}"
            );
        }
    }
}
