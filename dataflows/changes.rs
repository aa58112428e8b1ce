//! The `changes` job of `reshard`: what changed from the earlier version to the new one, by
//! differential dataflow on local threads. The new version's clips are a collection; each
//! bin's triples are derived from its clips ([`group_bin`], a `reduce` per bin); the member
//! tars in one version only are to be written (or are gone), the captions no earlier version
//! embedded are to be encoded. The plan gate runs it through a
//! [`ChangeComputation`](crate::incremental::ChangeComputation).

use std::sync::{Arc, Mutex};

use differential_dataflow::input::Input;
use timely::dataflow::operators::probe::Handle;

use crate::error::JobError;
use crate::incremental::TarFile;
use crate::incremental::{group_bin, Changes, ClipFacts, DerivedTriple, Grouping, OldVersion};
use crate::job::execute;
use crate::layout::Stream;

/// Records with their multiplicities, as the dataflow reports them.
type Updates<D> = Arc<Mutex<Vec<(D, isize)>>>;

/// The differences from `old` to the new version's clips (`(bin, clip)`, any order),
/// computed on `workers` threads.
pub fn run(
    old: &OldVersion,
    new: &[(String, ClipFacts)],
    grouping: Grouping,
    workers: usize,
) -> Result<Changes, JobError> {
    let triple_updates: Updates<DerivedTriple> = Arc::default();
    let file_updates: Updates<(TarFile, u64)> = Arc::default();
    let caption_updates: Updates<u64> = Arc::default();
    let (old, new) = (Arc::new(old.clone()), Arc::new(new.to_vec()));
    let (tu, fu, cu) = (
        triple_updates.clone(),
        file_updates.clone(),
        caption_updates.clone(),
    );
    execute(
        timely::Config::process(workers.max(1)),
        None,
        move |worker| {
            let (index, peers) = (worker.index(), worker.peers());
            let (tu, fu, cu) = (tu.clone(), fu.clone(), cu.clone());
            let probe = Handle::new();
            let (mut clips_in, mut files_in, mut captions_in) =
                worker.dataflow::<u64, _, _>(|scope| {
                    let (clips_in, clips) = scope.new_collection::<(String, ClipFacts), isize>();
                    let (files_in, old_files) = scope.new_collection::<(TarFile, u64), isize>();
                    let (captions_in, old_captions) = scope.new_collection::<u64, isize>();
                    // the bin and tar assignment, derived per bin from its clips (values arrive
                    // sorted, i.e. by listing position)
                    let triples = clips.clone().reduce(move |bin, input, output| {
                        let mut members: Vec<&ClipFacts> = input.iter().map(|(c, _)| *c).collect();
                        for t in group_bin(bin, &mut members, grouping) {
                            output.push((t, 1isize));
                        }
                    });
                    triples
                        .clone()
                        .inspect(move |((_, t), _, diff)| {
                            tu.lock().unwrap().push((t.clone(), *diff))
                        })
                        .probe_with(&probe);
                    let new_files = triples.flat_map(|(_, ((bin, part, tar), (_, hashes)))| {
                        Stream::ALL.map(move |s| ((bin.clone(), s, part, tar), hashes[s]))
                    });
                    // what is in one version only: +1 to write, -1 no longer there
                    new_files
                        .concat(old_files.negate())
                        .consolidate()
                        .inspect(move |(rec, _, diff)| {
                            fu.lock().unwrap().push((rec.clone(), *diff))
                        })
                        .probe_with(&probe);
                    clips
                        .flat_map(|(_, c)| c.caption_hashes.into_iter())
                        .distinct()
                        .concat(old_captions.distinct().negate())
                        .consolidate()
                        .inspect(move |(c, _, diff)| cu.lock().unwrap().push((*c, *diff)))
                        .probe_with(&probe);
                    (clips_in, files_in, captions_in)
                });
            // each worker loads its share; the exchanges inside the operators bring records with
            // equal keys together
            let mine = |i: usize| i % peers == index;
            for (i, c) in new.iter().enumerate() {
                if mine(i) {
                    clips_in.insert(c.clone());
                }
            }
            for (i, (f, h)) in old.files.iter().enumerate() {
                if mine(i) {
                    files_in.insert((f.clone(), *h));
                }
            }
            for (i, c) in old.captions.iter().enumerate() {
                if mine(i) {
                    captions_in.insert(*c);
                }
            }
            clips_in.advance_to(1);
            files_in.advance_to(1);
            captions_in.advance_to(1);
            clips_in.flush();
            files_in.flush();
            captions_in.flush();
            while probe.less_than(&1) {
                worker.step();
            }
        },
    )?;
    fn take<D>(u: &Updates<D>) -> Vec<(D, isize)> {
        std::mem::take(&mut *u.lock().expect("not poisoned"))
    }
    Ok(Changes::from_updates(
        take(&triple_updates),
        take(&file_updates),
        take(&caption_updates),
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::formats::test_python::XorShift;
    use crate::incremental::changes_oracle;
    use crate::incremental::test_support::{edit, old_of, random_clip, GROUPING};

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
            let got = run(&old, &v1, GROUPING, workers).unwrap();
            assert_eq!(got, want, "seed {seed} ({workers} workers)");
        }
    }

    #[test]
    fn identical_versions_change_nothing() {
        let mut rng = XorShift::new(7);
        let v: Vec<_> = (0..30).map(|i| random_clip(&mut rng, i)).collect();
        let c = run(&old_of(&v), &v, GROUPING, 2).unwrap();
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
        let c = run(&old_of(&v0), &v1, GROUPING, 2).unwrap();
        assert_eq!(c.new_captions, BTreeSet::from([999]));
        assert_eq!(c.write.len(), 1);
        let (bin, kind, _, _) = c.write.first().unwrap();
        assert_eq!((bin.as_str(), *kind), (v1[5].0.as_str(), Stream::T5Xxl));
    }
}
