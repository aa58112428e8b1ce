//! What the plan admits to the rest of the dataflow: the job journal's side of planning.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use crate::error::JobFailure;
use crate::incremental::plan::{self, Mode, ReshardTarget};
use crate::incremental::{ChangeComputation, ContentHasher, Grouping, SampleFacts};
use crate::job::FailureSignal;
use crate::journal::{inputs_fingerprint, JobFingerprint, Journal};
use crate::layout::PerStream;
use crate::record::PlanSummary;
use crate::record::{ClipMeta, PlannedClip, TarContents, TarDone, TarId, WarningKind};

/// Runs on worker 0 once the plan is made, before any clip is emitted (so before any tar is
/// written): on a fresh run it writes `job.json` with the plan's fingerprint; on `--resume`
/// it checks the plan against the journal and drops the clips of completed triples, handing
/// their completion records to the report and summaries instead.
pub struct PlanGate {
    /// The output's journal.
    pub journal: Journal,
    /// This run's fingerprint (options, model, mtime; no inputs yet).
    pub job: JobFingerprint,
    /// The journal's fingerprint when resuming.
    pub resume: Option<JobFingerprint>,
    /// Where completed triples go (worker 0's collected [`TarDone`]s).
    pub done: Rc<RefCell<Vec<TarDone>>>,
    /// An incremental run (`reshard`, `--append`) and its grouping options.
    pub incremental: Option<(Mode, Grouping)>,
    /// What a `reshard` runs to find what changed (the `changes` dataflow).
    pub changes: ChangeComputation,
    /// Tars carry DALI indexes (copied along with them by a re-shard).
    pub dali_index: bool,
    /// The caption field (`<algorithm>_caption`) when a plan in which no window has one must
    /// be refused (a misspelt `--captioning-algorithm`); `None` when such a run is wanted.
    pub require_captions: Option<String>,
}

impl PlanGate {
    /// The clips still to write; none when the job cannot go on: the plan must not be
    /// written (the job fails), or the job refuses to run at all (a `--resume` whose inputs
    /// changed: nothing may be written then, not even a report); see `failure`.
    pub fn admit(
        &self,
        planned: Vec<PlannedClip>,
        summary: &mut PlanSummary,
        failure: &FailureSignal,
    ) -> Vec<PlannedClip> {
        match self.try_admit(planned, summary) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("{e}");
                failure.fail(e);
                vec![]
            }
        }
    }

    fn try_admit(
        &self,
        planned: Vec<PlannedClip>,
        summary: &mut PlanSummary,
    ) -> Result<Vec<PlannedClip>, JobFailure> {
        let appending = matches!(self.incremental, Some((Mode::Append { .. }, _)));
        if let Some(failed) = summary.failed.clone() {
            // the storage failed while the input was read: the plan is incomplete and must
            // not be recorded. A fresh run records its job without a plan, so that --resume
            // plans again
            if self.resume.is_none() && !appending {
                self.journal.write_job(&self.job).map_err(|e| {
                    JobFailure::Plan(format!(
                        "{failed}; the job journal could not be written: {e}"
                    ))
                })?;
            }
            return Err(JobFailure::Plan(failed));
        }
        if let Some(refusal) = self.captions_missing(&planned) {
            return Err(JobFailure::Refused(refusal));
        }
        let inputs = inputs_fingerprint(&planned, summary);
        let old_inputs = self.resume.as_ref().and_then(|o| o.inputs.as_ref());
        let mut completed = Vec::new();
        match old_inputs {
            Some(old) if *old != inputs => {
                let refusal = format!(
                    "cannot resume {}: the inputs changed since the interrupted run ({} metadata files listed and {} clips planned then, {} and {} now; plan sha256 {} then, {} now); write to a new output instead",
                    self.journal.dir(),
                    old.listed,
                    old.planned,
                    inputs.listed,
                    inputs.planned,
                    &old.sha256[..12],
                    &inputs.sha256[..12],
                );
                return Err(JobFailure::Refused(refusal));
            }
            Some(_) => {
                completed = self
                    .journal
                    .load_done()
                    .map_err(|e| JobFailure::Plan(e.to_string()))?;
            }
            // an append keeps the output's job record: its tars keep that job's mtime
            None if appending => {}
            None => {
                // a fresh run, or one whose journal holds no plan (interrupted before it had
                // planned, or started by the streaming plan): a resumed job keeps its mtime
                let job = JobFingerprint {
                    inputs: Some(inputs),
                    mtime: self.resume.as_ref().map_or(self.job.mtime, |o| o.mtime),
                    ..self.job.clone()
                };
                self.journal
                    .write_job(&job)
                    .map_err(|e| JobFailure::Plan(e.to_string()))?;
            }
        }
        if self.resume.is_some() {
            // before anything is written (see `Journal::retract_report`)
            self.journal.retract_report().map_err(|e| {
                JobFailure::Plan(format!("the job journal could not be written: {e}"))
            })?;
        }
        let planned_tars: HashSet<&TarId> = planned.iter().map(|c| &c.tar).collect();
        completed.retain(|d| planned_tars.contains(&d.tar));
        {
            // the fingerprint covers the metadata, not the clips: a clip replaced since its
            // triple was written shows in the triple's `video` hash
            let mut by_tar: HashMap<&TarId, Vec<&PlannedClip>> = HashMap::new();
            for c in &planned {
                by_tar.entry(&c.tar).or_default().push(c);
            }
            completed.retain(|d| {
                let clips: Vec<&ClipMeta> = by_tar
                    .get(&d.tar)
                    .map_or(vec![], |v| v.iter().map(|c| &*c.meta).collect());
                let same = clips_unchanged(d, &clips);
                if !same {
                    tracing::warn!(
                        "{}: a clip changed since this tar triple was written; writing it again",
                        self.journal.names().tar_path(
                            self.journal.version_dir(),
                            &d.tar,
                            crate::layout::Stream::Video
                        )
                    );
                }
                same
            });
        }
        let skip: HashSet<TarId> = completed.iter().map(|d| d.tar.clone()).collect();
        if !completed.is_empty() {
            tracing::info!(
                "resuming: {} of {} tar triples already complete",
                completed.len(),
                planned_tars.len()
            );
        }
        let mut done = self.done.borrow_mut();
        for mut d in completed {
            d.resumed = true;
            done.push(d);
        }
        let planned = match &self.incremental {
            None => planned,
            Some((Mode::Reshard { base, workers }, grouping)) => {
                let target = ReshardTarget {
                    output: self.journal.storage(),
                    version_dir: self.journal.version_dir(),
                    journal: &self.journal,
                    grouping: *grouping,
                    dali_index: self.dali_index,
                    changes: self.changes,
                };
                plan::reshard(planned, base, *workers, &target, &skip, &mut done)
                    .map_err(JobFailure::Plan)?
            }
            Some((Mode::Append { base }, grouping)) => {
                plan::append(planned, summary, base, *grouping, &mut done)
            }
        };
        let mtime = self.resume.as_ref().map_or(self.job.mtime, |o| o.mtime);
        Ok(planned
            .into_iter()
            .filter(|c| !skip.contains(&c.tar))
            .map(|mut c| {
                c.mtime = mtime;
                c
            })
            .collect())
    }

    /// A refusal when windows lack captions and not one window has a caption: the caption
    /// field is most likely misspelt. Some windows without one only warn, loudly.
    fn captions_missing(&self, planned: &[PlannedClip]) -> Option<String> {
        let missing = planned
            .iter()
            .filter(|c| c.meta.warnings.contains(&WarningKind::MissingCaption))
            .count();
        if missing == 0 {
            return None;
        }
        let captioned: usize = planned.iter().map(|c| c.meta.caption_hashes.len()).sum();
        let field = self.require_captions.as_deref();
        if captioned == 0 {
            if let Some(field) = field {
                return Some(format!(
                    "no window of the {} planned clips has a \"{field}\" caption: check --captioning-algorithm; to write every clip without embeddings (valid: false), pass --allow-no-captions",
                    planned.len()
                ));
            }
        }
        tracing::warn!(
            "{missing} of {} planned clips have windows without a caption{}: they are written with valid: false and those windows get no embedding",
            planned.len(),
            field.map(|f| format!(" (\"{f}\")")).unwrap_or_default()
        );
        None
    }
}

/// Whether the clips of a completed triple are still the ones it was written from: the
/// `video` hash over its recorded keys, from this plan's clip facts, equals the recorded one.
/// Records without contents (older journals) are taken as they are.
pub fn clips_unchanged(d: &TarDone, clips: &[&ClipMeta]) -> bool {
    let video = crate::layout::Stream::Video;
    match &d.contents {
        None => true,
        Some(contents) => {
            hashes(contents, clips).is_some_and(|h| h[video] == contents.hashes[video])
        }
    }
}

/// Whether a completed triple holds exactly these clips (in this order), each with the same
/// clip, metadata and captions it was written from: every stream's hash is the recorded one.
/// A record without contents cannot show it.
pub fn triple_unchanged(d: &TarDone, clips: &[&ClipMeta]) -> bool {
    d.contents
        .as_ref()
        .is_some_and(|contents| hashes(contents, clips).is_some_and(|h| h == contents.hashes))
}

/// Each stream's content hash over the recorded keys, from these clips' facts; none when the
/// clips are not the recorded keys in their order.
fn hashes(contents: &TarContents, clips: &[&ClipMeta]) -> Option<PerStream<u64>> {
    // the same clips in the same order: a tar that gained or lost a clip is written again
    if !contents.keys.iter().eq(clips.iter().map(|c| &c.span_uuid)) {
        return None;
    }
    let mut h = ContentHasher::default();
    for (key, c) in contents.keys.iter().zip(clips) {
        h.add(&SampleFacts {
            key,
            clip_path: &c.clip_path,
            clip_size: c.clip_size.unwrap_or(0),
            clip_stamp: c.clip_stamp,
            meta_hash: c.meta_hash,
            caption_hashes: &c.caption_hashes,
        });
    }
    Some(h.finish())
}
