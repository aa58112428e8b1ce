//! What changed between two annotation versions, computed by differential dataflow: the
//! groundwork of incremental re-sharding (`reshard`, not yet wired to a command).
//!
//! A version is a [`Snapshot`]: each planned tar triple with a hash of its contents (its
//! samples' keys and metadata hashes, in order), and the hashes of the captions it embeds.
//! The old version is loaded at time 0; at time 1 it is retracted and the new one inserted.
//! Differential dataflow cancels every record that is the same in both, so the updates at
//! time 1 are exactly the difference: triples to write (new or changed contents), triples
//! gone, and captions that no earlier version embedded.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use differential_dataflow::input::Input;
use timely::dataflow::operators::probe::Handle;

/// A tar triple: `(bin, part, tar)`.
pub type TarKey = (String, u32, u32);

/// One annotation version, as far as re-sharding cares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Every planned triple and the hash of its ordered contents.
    pub tars: BTreeMap<TarKey, u64>,
    /// Hashes of the (stripped) captions the version embeds.
    pub captions: BTreeSet<u64>,
}

/// The difference between two versions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Triples of the new version whose contents are new or changed: they must be written.
    pub write: BTreeSet<TarKey>,
    /// Triples of the new version that are unchanged: they can be copied.
    pub copy: BTreeSet<TarKey>,
    /// Triples of the old version that the new one no longer has.
    pub removed: BTreeSet<TarKey>,
    /// Captions of the new version that the old one did not embed: they must be encoded.
    pub new_captions: BTreeSet<u64>,
}

/// The differences from `old` to `new`, computed by a differential dataflow on `workers`
/// threads.
pub fn changes(old: &Snapshot, new: &Snapshot, workers: usize) -> Changes {
    type Updates<D> = Arc<Mutex<Vec<(D, isize)>>>;
    let tar_updates: Updates<(TarKey, u64)> = Arc::default();
    let caption_updates: Updates<u64> = Arc::default();
    let (old_arc, new_arc) = (Arc::new(old.clone()), Arc::new(new.clone()));
    let (tu, cu) = (tar_updates.clone(), caption_updates.clone());
    timely::execute(timely::Config::process(workers.max(1)), move |worker| {
        let (index, peers) = (worker.index(), worker.peers());
        let (tu, cu) = (tu.clone(), cu.clone());
        let probe = Handle::new();
        let (mut tars_in, mut captions_in) = worker.dataflow::<u64, _, _>(|scope| {
            let (tars_in, tars) = scope.new_collection::<(TarKey, u64), isize>();
            let (captions_in, captions) = scope.new_collection::<u64, isize>();
            tars.consolidate()
                .inspect(move |(rec, time, diff)| {
                    if *time == 1 {
                        tu.lock().unwrap().push((rec.clone(), *diff));
                    }
                })
                .probe_with(&probe);
            captions
                .distinct()
                .inspect(move |(rec, time, diff)| {
                    if *time == 1 {
                        cu.lock().unwrap().push((*rec, *diff));
                    }
                })
                .probe_with(&probe);
            (tars_in, captions_in)
        });
        // each worker loads its share; the exchange inside the operators brings equal
        // records together
        let mine = |i: usize| i % peers == index;
        let load = |tars_in: &mut differential_dataflow::input::InputSession<_, _, _>,
                    captions_in: &mut differential_dataflow::input::InputSession<_, _, _>,
                    s: &Snapshot,
                    diff: isize| {
            for (i, (k, h)) in s.tars.iter().enumerate() {
                if mine(i) {
                    tars_in.update((k.clone(), *h), diff);
                }
            }
            for (i, c) in s.captions.iter().enumerate() {
                if mine(i) {
                    captions_in.update(*c, diff);
                }
            }
        };
        load(&mut tars_in, &mut captions_in, &old_arc, 1);
        tars_in.advance_to(1);
        captions_in.advance_to(1);
        load(&mut tars_in, &mut captions_in, &old_arc, -1);
        load(&mut tars_in, &mut captions_in, &new_arc, 1);
        tars_in.advance_to(2);
        captions_in.advance_to(2);
        tars_in.flush();
        captions_in.flush();
        while probe.less_than(&2) {
            worker.step();
        }
    })
    .expect("the change computation runs");

    let mut out = Changes::default();
    let mut gone = BTreeSet::new();
    for ((key, _), diff) in tar_updates.lock().unwrap().iter() {
        if *diff > 0 {
            out.write.insert(key.clone());
        } else if *diff < 0 {
            gone.insert(key.clone());
        }
    }
    out.removed = gone
        .into_iter()
        .filter(|k| !new.tars.contains_key(k))
        .collect();
    out.copy = new
        .tars
        .keys()
        .filter(|k| !out.write.contains(*k))
        .cloned()
        .collect();
    for (c, diff) in caption_updates.lock().unwrap().iter() {
        if *diff > 0 {
            out.new_captions.insert(*c);
        }
    }
    out
}

/// The same differences by plain set arithmetic: the oracle of the tests.
pub fn changes_oracle(old: &Snapshot, new: &Snapshot) -> Changes {
    let mut out = Changes::default();
    for (k, h) in &new.tars {
        if old.tars.get(k) == Some(h) {
            out.copy.insert(k.clone());
        } else {
            out.write.insert(k.clone());
        }
    }
    out.removed = old
        .tars
        .keys()
        .filter(|k| !new.tars.contains_key(*k))
        .cloned()
        .collect();
    out.new_captions = new.captions.difference(&old.captions).copied().collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::test_python::XorShift;

    fn random_snapshot(rng: &mut XorShift) -> Snapshot {
        let mut s = Snapshot::default();
        for _ in 0..rng.below(60) {
            let key = (
                format!("bin{}", rng.below(4)),
                rng.below(3) as u32,
                rng.below(5) as u32,
            );
            s.tars.insert(key, rng.below(6));
        }
        for _ in 0..rng.below(80) {
            s.captions.insert(rng.below(120));
        }
        s
    }

    /// v1 as an edit of v0: changed contents, removed and added triples, captions changed.
    fn edit(v0: &Snapshot, rng: &mut XorShift) -> Snapshot {
        let mut v1 = v0.clone();
        let keys: Vec<TarKey> = v1.tars.keys().cloned().collect();
        for k in keys {
            match rng.below(10) {
                0 => {
                    v1.tars.remove(&k);
                }
                1 | 2 => {
                    *v1.tars.get_mut(&k).unwrap() += 1 + rng.below(3);
                }
                _ => {}
            }
        }
        for _ in 0..rng.below(8) {
            v1.tars.insert(
                (format!("bin{}", 4 + rng.below(2)), 0, rng.below(4) as u32),
                rng.below(6),
            );
        }
        let caps: Vec<u64> = v1.captions.iter().copied().collect();
        for c in caps {
            if rng.below(5) == 0 {
                v1.captions.remove(&c);
            }
        }
        for _ in 0..rng.below(20) {
            v1.captions.insert(100 + rng.below(100));
        }
        v1
    }

    #[test]
    fn differential_changes_equal_the_oracle_over_many_seeds() {
        for seed in 0..60u64 {
            let mut rng = XorShift::new(seed);
            let v0 = random_snapshot(&mut rng);
            let v1 = edit(&v0, &mut rng);
            let want = changes_oracle(&v0, &v1);
            let workers = 1 + (seed % 3) as usize;
            let got = changes(&v0, &v1, workers);
            assert_eq!(got, want, "seed {seed} ({workers} workers)");
        }
    }

    #[test]
    fn identical_versions_change_nothing() {
        let mut rng = XorShift::new(7);
        let v = random_snapshot(&mut rng);
        let c = changes(&v, &v, 2);
        assert!(c.write.is_empty() && c.removed.is_empty() && c.new_captions.is_empty());
        assert_eq!(c.copy.len(), v.tars.len());
    }
}
