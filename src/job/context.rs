//! What every operator of a job shares: its stage timings, the job's milestones, the
//! progress counters and the job's failure.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::error::JobFailure;
use crate::report::Progress;

/// One worker's share of a job, handed to each of its operators.
#[derive(Clone, Default)]
pub struct JobContext {
    /// This worker's time per stage.
    pub clock: StageClock,
    /// When the job first got past each milestone (shared by the process).
    pub milestones: Arc<Milestones>,
    /// Clips planned and written, for the progress display (shared by the process).
    pub progress: Arc<Progress>,
    /// The job's first failure (shared by the process).
    pub failure: FailureSignal,
}

impl JobContext {
    /// A worker's context: a fresh clock, the process's progress and failure, and
    /// milestones timed from now.
    pub fn new(progress: Arc<Progress>, failure: FailureSignal) -> Self {
        JobContext {
            clock: StageClock::publishing(progress.clone()),
            milestones: Arc::default(),
            progress,
            failure,
        }
    }

    /// The same context with the process's `milestones` (timed from the job's start).
    pub fn with_milestones(self, milestones: Arc<Milestones>) -> Self {
        JobContext { milestones, ..self }
    }
}

/// A point the job gets past once: how soon it does is what a streaming job improves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Milestone {
    /// The plan is complete (every clip has its tar).
    Planned,
    /// The first encoder batch with captions to embed has been encoded.
    FirstCaptionEncoded,
    /// The first tar triple has been completed by a writer (renamed or uploaded).
    FirstTarCompleted,
}

/// When a process's workers first got past each [`Milestone`], as time since the job's
/// start; the first worker to get there sets it.
#[derive(Debug)]
pub struct Milestones {
    started: Instant,
    reached: [OnceLock<Duration>; 3],
}

impl Default for Milestones {
    /// Milestones timed from now.
    fn default() -> Self {
        Milestones::new(Instant::now())
    }
}

impl Milestones {
    /// Milestones timed from `started`.
    pub fn new(started: Instant) -> Self {
        Milestones {
            started,
            reached: Default::default(),
        }
    }

    /// Records that `m` is reached now, unless it was before.
    pub fn reach(&self, m: Milestone) {
        let slot = &self.reached[m as usize];
        // the elapsed time is only taken the first time: later calls are cheap
        if slot.get().is_none() {
            let _ = slot.set(self.started.elapsed());
        }
    }

    /// Seconds from the start to `m`, if it was reached.
    pub fn seconds(&self, m: Milestone) -> Option<f64> {
        self.reached[m as usize].get().map(Duration::as_secs_f64)
    }
}

/// The job's first failure, shared by the worker threads of a process and the signal
/// watcher: once one is recorded the encoder and writers stop, and the report carries it.
/// A refusal is also kept apart: the job then writes nothing, not even a report.
#[derive(Clone, Debug, Default)]
pub struct FailureSignal(Arc<Mutex<Failures>>);

#[derive(Debug, Default)]
struct Failures {
    first: Option<JobFailure>,
    refusal: Option<String>,
}

impl FailureSignal {
    /// Records `failure` unless another came first (a refusal is kept in any case).
    pub fn fail(&self, failure: JobFailure) {
        let mut f = self.lock();
        if let JobFailure::Refused(r) = &failure {
            f.refusal = Some(r.clone());
        }
        f.first.get_or_insert(failure);
    }

    /// True once the job has failed.
    pub fn is_set(&self) -> bool {
        self.lock().first.is_some()
    }

    /// The first failure, if any.
    pub fn get(&self) -> Option<JobFailure> {
        self.lock().first.clone()
    }

    /// Takes the first failure out.
    pub fn take(&self) -> Option<JobFailure> {
        self.lock().first.take()
    }

    /// Takes the refusal out: why the job refused to run at all.
    pub fn take_refusal(&self) -> Option<String> {
        self.lock().refusal.take()
    }

    fn lock(&self) -> MutexGuard<'_, Failures> {
        self.0.lock().expect("not poisoned")
    }
}

/// Time spent in each operator's logic on one worker, also added to the process's live
/// metrics when it has them (a relaxed atomic add per timed activation).
#[derive(Clone, Default)]
pub struct StageClock {
    times: Rc<RefCell<BTreeMap<&'static str, Duration>>>,
    shared: Option<Arc<Progress>>,
}

impl StageClock {
    /// A clock that also adds its times to `progress`'s metrics.
    pub fn publishing(progress: Arc<Progress>) -> Self {
        StageClock {
            times: Rc::default(),
            shared: Some(progress),
        }
    }

    /// Starts timing `stage`; the time is added when the guard drops.
    pub fn time(&self, stage: &'static str) -> StageTimer {
        StageTimer {
            clock: self.clone(),
            stage,
            start: Instant::now(),
        }
    }

    /// Seconds per stage so far.
    pub fn seconds(&self) -> BTreeMap<String, f64> {
        self.times
            .borrow()
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_secs_f64()))
            .collect()
    }
}

/// Adds the time since its creation to a stage when dropped.
pub struct StageTimer {
    clock: StageClock,
    stage: &'static str,
    start: Instant,
}

impl Drop for StageTimer {
    fn drop(&mut self) {
        let spent = self.start.elapsed();
        *self.clock.times.borrow_mut().entry(self.stage).or_default() += spent;
        if let Some(p) = &self.clock.shared {
            p.metrics.add_stage(self.stage, spent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_wins_and_a_refusal_is_kept_apart() {
        let f = FailureSignal::default();
        assert!(!f.is_set());
        f.fail(JobFailure::Interrupted);
        f.fail(JobFailure::Refused("no".into()));
        assert!(f.is_set());
        assert_eq!(f.get(), Some(JobFailure::Interrupted));
        assert_eq!(f.take_refusal().as_deref(), Some("no"));
        assert_eq!(f.take(), Some(JobFailure::Interrupted));
        assert!(!f.is_set() && f.take_refusal().is_none());
    }

    #[test]
    fn a_milestone_keeps_the_first_time_it_is_reached() {
        let m = Milestones::new(Instant::now() - Duration::from_secs(2));
        assert_eq!(m.seconds(Milestone::Planned), None);
        m.reach(Milestone::Planned);
        let first = m.seconds(Milestone::Planned).unwrap();
        assert!(first >= 2.0, "{first}");
        std::thread::sleep(Duration::from_millis(5));
        m.reach(Milestone::Planned);
        assert_eq!(m.seconds(Milestone::Planned), Some(first));
        assert_eq!(m.seconds(Milestone::FirstCaptionEncoded), None);
        assert_eq!(m.seconds(Milestone::FirstTarCompleted), None);
    }
}
