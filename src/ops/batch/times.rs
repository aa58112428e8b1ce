//! The input times of the clips the `batch` operator holds, so that it keeps a capability
//! only for the times some queued clip came in at: its output frontier then follows its
//! queue instead of staying at the first time it saw.

use std::collections::{BTreeMap, VecDeque};

/// The times of queued clips, in the order they were queued (the [`super::Batcher`]'s FIFO
/// order), run-length encoded, and how many queued clips each time has.
#[derive(Debug, Default)]
pub(super) struct QueuedTimes {
    /// `(time, clips)` in push order; `None` for clips that came in a message with no time.
    runs: VecDeque<(Option<u64>, usize)>,
    /// Per time, its clips still queued (never 0).
    counts: BTreeMap<u64, usize>,
}

/// What taking clips off the front of the queue did.
#[derive(Debug, PartialEq)]
pub(super) struct Taken {
    /// The least time among the clips taken (`None` when none of them had a time).
    pub least: Option<u64>,
    /// The times that no queued clip has any more, to release.
    pub released: Vec<u64>,
}

impl QueuedTimes {
    /// Records `n` clips queued at `time`. Returns whether `time` is new (no queued clip had it).
    pub fn push(&mut self, time: Option<u64>, n: usize) -> bool {
        if n == 0 {
            return false;
        }
        match self.runs.back_mut() {
            Some((t, c)) if *t == time => *c += n,
            _ => self.runs.push_back((time, n)),
        }
        let Some(time) = time else {
            return false;
        };
        let count = self.counts.entry(time).or_insert(0);
        *count += n;
        *count == n
    }

    /// Takes the `n` front clips' times.
    ///
    /// # Panics
    /// If fewer than `n` clips are queued: the batcher emitted clips it was never given.
    pub fn take(&mut self, mut n: usize) -> Taken {
        let mut taken = Taken {
            least: None,
            released: Vec::new(),
        };
        while n > 0 {
            let (time, run) = self.runs.front_mut().expect("clips taken were queued");
            let k = (*run).min(n);
            *run -= k;
            n -= k;
            let time = *time;
            if *run == 0 {
                self.runs.pop_front();
            }
            let Some(time) = time else { continue };
            taken.least = Some(taken.least.map_or(time, |l: u64| l.min(time)));
            let count = self
                .counts
                .get_mut(&time)
                .expect("a queued time is counted");
            *count -= k;
            if *count == 0 {
                self.counts.remove(&time);
                taken.released.push(time);
            }
        }
        taken
    }

    /// Whether no clip is queued.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_is_released_when_its_last_clip_leaves() {
        let mut q = QueuedTimes::default();
        assert!(q.push(Some(0), 2));
        assert!(q.push(Some(1), 3));
        assert!(!q.push(Some(0), 1)); // time 0 again, after time 1
        assert!(!q.push(Some(1), 0));
        let t = q.take(3);
        assert_eq!(
            t,
            Taken {
                least: Some(0),
                released: vec![]
            }
        );
        let t = q.take(2);
        assert_eq!(
            t,
            Taken {
                least: Some(1),
                released: vec![1]
            }
        );
        assert!(!q.is_empty());
        let t = q.take(1);
        assert_eq!(
            t,
            Taken {
                least: Some(0),
                released: vec![0]
            }
        );
        assert!(q.is_empty());
    }

    #[test]
    fn a_batch_goes_out_at_its_least_time() {
        let mut q = QueuedTimes::default();
        q.push(Some(5), 1);
        q.push(Some(2), 1);
        q.push(None, 1);
        q.push(Some(7), 1);
        let t = q.take(4);
        assert_eq!(t.least, Some(2));
        assert_eq!(t.released, vec![5, 2, 7]);
        assert!(q.is_empty());
    }

    #[test]
    fn untimed_clips_release_nothing() {
        let mut q = QueuedTimes::default();
        assert!(!q.push(None, 2));
        assert_eq!(
            q.take(2),
            Taken {
                least: None,
                released: vec![]
            }
        );
        assert!(q.is_empty());
    }

    #[test]
    #[should_panic(expected = "clips taken were queued")]
    fn taking_more_than_queued_panics() {
        let mut q = QueuedTimes::default();
        q.push(Some(0), 1);
        q.take(2);
    }
}
