//! The `shard` job (also `reshard` and `shard --append`): `list → read_meta → plan_stream (a
//! plain shard) or assign_tars (reshard, append) →
//! batch → encode → exchange_by_bin → write_tar → finalize`, on `workers` threads.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use timely::dataflow::operators::Probe;
use timely::dataflow::ProbeHandle;

use crate::config::{Listing, ShardConfig};
use crate::error::ShardError;
use crate::incremental::plan::Mode;
use crate::incremental::reuse::EmbeddingSource;
use crate::incremental::Grouping;
use crate::input::Lister;
use crate::job::{self, Runner};
use crate::journal::{JobFingerprint, Journal};
use crate::layout;
use crate::model::TextEncoder;
use crate::ops::assign_tars::{triple_unchanged, AssignTars, PlanGate, Planner};
use crate::ops::batch::Batch;
use crate::ops::encode::{Encode, SampleEncoder};
use crate::ops::exchange_by_bin::ExchangeByBin;
use crate::ops::finalize::{CollectDone, Finalizer};
use crate::ops::list::{list_metas, BackPressure};
use crate::ops::plan_stream::{self, PlanStream, Start, StreamPlan, TarPath};
use crate::ops::read_meta::{MetaReader, ReadMeta};
use crate::ops::reload::Reloader;
use crate::ops::write_tar::{TarWriters, WriteTar};
use crate::record::{TarDone, TarId};
use crate::report::{JobReport, Progress};
use crate::storage::{Role, Storage};

use crate::prepare::{drop_below, fingerprint};

/// Runs this process's share of the job with a loaded encoder; call [`preflight`](crate::prepare::preflight) first
/// (before loading the model, so that its errors come first). Process 0 plans, writes the
/// summaries, `report.json` and `rejects.jsonl` once every tar is complete, and returns the
/// report (also when a fatal error stopped the job: then `ok` is false); other processes
/// return `None` when the dataflow is complete.
#[allow(clippy::too_many_arguments)]
pub fn run(
    cfg: &ShardConfig,
    storage: &Storage,
    resume: Option<JobFingerprint>,
    incremental: Option<Mode>,
    dedup: Option<Arc<HashSet<String>>>,
    encoder: Arc<dyn TextEncoder>,
    progress: Arc<Progress>,
    interrupted: Arc<AtomicBool>,
    started: Instant,
) -> Result<Option<JobReport>, ShardError> {
    let (input, output) = (
        storage.with_role(Role::Input),
        storage.with_role(Role::Output),
    );
    let name = job::job_name(incremental.as_ref());
    let runner = Runner::new(name, cfg, output.clone(), progress, interrupted, started)?;
    let mtime = job::tar_mtime(incremental.as_ref());
    let lister = lister(cfg, &input);
    let reader = meta_reader(cfg, &input);
    // after planning, each planned clip's metadata is read again in full
    let reloader = Reloader {
        reader: MetaReader {
            slim: false,
            check_clips: false,
            ..reader.clone()
        },
    };
    let planner = Planner {
        target_tar_bytes: cfg.target_tar_bytes(),
        max_tars_per_part: cfg.max_tars_per_part,
        mtime,
        drop_below: drop_below(cfg),
        dedup,
    };
    let grouping = Grouping {
        target_tar_bytes: cfg.target_tar_bytes(),
        max_tars_per_part: cfg.max_tars_per_part,
        drop_below: drop_below(cfg),
    };
    let version_dir = cfg.version_dir();
    let journal = Journal::new(output.clone(), version_dir.clone()).with_names(cfg.names);
    let job = fingerprint(cfg, mtime)?;
    let finalizer = finalizer(cfg, &output);
    let (dali_index, batch_size, max_batch_tokens, layout) = (
        cfg.index.dali,
        cfg.batch_size,
        cfg.max_batch_tokens,
        cfg.layout,
    );
    let require_captions =
        (!cfg.allow_no_captions).then(|| format!("{}_caption", cfg.captioning_algorithm));
    // a re-shard or an append compares the whole plan with its base: it plans in one step
    // (the same choice on every process: only process 0 knows the base)
    let stream_plan =
        (!cfg.gathered_plan).then(|| stream_plan(cfg, &planner, &journal, &job, resume.as_ref()));
    let incremental = incremental.map(|m| (m, grouping));

    // a --resume whose inputs changed: the triples today's plan no longer has go
    let earlier = stream_plan
        .as_ref()
        .filter(|_| resume.is_some())
        .map(|p| (journal.clone(), p.completed.clone()));
    let finish = move |bins: &[(String, Vec<TarId>)], done: &[TarDone]| {
        if let Some((journal, records)) = &earlier {
            if let Some(records) = records.get() {
                remove_stale(journal, records, bins)?;
            }
        }
        finalizer.finish(bins, done)
    };
    runner.run(finish, move |scope, ctx, gathered| {
        let gate = PlanGate {
            journal: journal.clone(),
            job: job.clone(),
            resume: resume.clone(),
            done: gathered.done.clone(),
            require_captions: require_captions.clone(),
            incremental: incremental.clone(),
            changes: crate::dataflows::changes::run,
            dali_index,
        };
        let encoder = encoder.clone();
        let tokenizer = encoder.clone();
        let writers = TarWriters::new(output.clone(), input.clone(), version_dir.clone())
            .with_journal(journal.clone())
            .with_dali_index(dali_index)
            .with_layout(layout)
            .with_names(journal.names())
            .with_reuse(EmbeddingSource::new(output.clone()));
        // the streaming plan lets the listing run only a bounded distance ahead of the writers
        let probe = ProbeHandle::new();
        let pressure = stream_plan
            .is_some()
            .then(|| BackPressure::new(probe.clone()));
        let outcomes =
            list_metas(scope, lister.clone(), pressure, ctx).read_meta(reader.clone(), ctx);
        let planned = match &stream_plan {
            Some(plan) => outcomes.plan_stream(
                plan.clone(),
                gathered.plan.clone(),
                gathered.done.clone(),
                ctx,
            ),
            None => outcomes.assign_tars(planner.clone(), Some(gate), gathered.plan.clone(), ctx),
        };
        planned
            .batch(
                batch_size,
                max_batch_tokens,
                move |c| tokenizer.tokenize(c),
                Some(reloader.clone()),
                ctx,
            )
            .encode(SampleEncoder::new(encoder).with_layout(layout), ctx)
            .exchange_by_bin()
            .write_tar(writers, ctx)
            .probe_with(&probe)
            .collect_done(gathered.done.clone());
    })
}

/// Removes the recorded triples of an interrupted run that the plan no longer has, so that
/// the version holds exactly what a fresh run over today's inputs writes.
fn remove_stale(
    journal: &Journal,
    records: &HashMap<TarPath, TarDone>,
    bins: &[(String, Vec<TarId>)],
) -> Result<(), ShardError> {
    let planned: HashSet<TarPath> = bins
        .iter()
        .flat_map(|(_, tars)| tars.iter().map(|t| (t.bin.clone(), t.part, t.tar)))
        .collect();
    let mut stale: Vec<&TarDone> = records
        .iter()
        .filter(|(k, _)| !planned.contains(*k))
        .map(|(_, d)| d)
        .collect();
    stale.sort_by(|a, b| a.tar.cmp(&b.tar));
    for d in &stale {
        tracing::warn!(
            "{}/{}: the inputs changed since the interrupted run and today's plan has no such tar; removing it",
            d.tar.bin,
            d.tar.rel_path()
        );
        journal.remove_triple(&d.tar)?;
    }
    // a bin left without tars: its summaries from the earlier run go too
    let kept: HashSet<&str> = bins.iter().map(|(b, _)| b.as_str()).collect();
    let gone: std::collections::BTreeSet<&str> = stale
        .iter()
        .map(|d| d.tar.bin.as_str())
        .filter(|b| !kept.contains(b))
        .collect();
    let (storage, version_dir) = (journal.storage(), journal.version_dir());
    for bin in gone {
        storage.delete(&version_dir.join(&layout::wdinfo_rel(bin)))?;
        for stream in layout::Stream::ALL {
            let index = journal.names().shardindex_rel(bin, stream);
            storage.delete(&version_dir.join(&index))?;
        }
    }
    Ok(())
}

/// The streaming plan's options. Process 0 knows whether the job resumes (and with which
/// mtime) and tells the others when the plan starts.
fn stream_plan(
    cfg: &ShardConfig,
    planner: &Planner,
    journal: &Journal,
    job: &JobFingerprint,
    resume: Option<&JobFingerprint>,
) -> StreamPlan {
    let start = (cfg.cluster.process == 0).then(|| match resume {
        Some(_) => Start::Resume,
        None => Start::Record(job.clone()),
    });
    StreamPlan {
        grouping: plan_stream::Grouping {
            target_tar_bytes: planner.target_tar_bytes,
            max_tars_per_part: planner.max_tars_per_part,
            drop_below: planner.drop_below,
            // a resumed job keeps the interrupted run's mtime
            mtime: resume.map_or(planner.mtime, |o| o.mtime),
        },
        dedup: planner.dedup.clone(),
        require_captions: (!cfg.allow_no_captions)
            .then(|| format!("{}_caption", cfg.captioning_algorithm)),
        journal: journal.clone(),
        start,
        completed: Arc::default(),
        unchanged: triple_unchanged,
    }
}

/// Lists `metas/<version>` (or the input's `summary.json`).
fn lister(cfg: &ShardConfig, input: &Storage) -> Lister {
    let lister = Lister::new(input.clone(), cfg.meta_dir());
    match cfg.listing {
        Listing::Summary => lister.with_summary(cfg.input_location().join("summary.json")),
        _ => lister,
    }
}

/// Reads the metadata slim (what planning needs) and checks each clip.
fn meta_reader(cfg: &ShardConfig, input: &Storage) -> MetaReader {
    MetaReader {
        storage: input.clone(),
        meta_dir: cfg.meta_dir(),
        input_root: cfg.input_location(),
        remaps: cfg.remaps.clone(),
        caption_field: format!("{}_caption", cfg.captioning_algorithm),
        bins: cfg.bins.clone(),
        layout: cfg.layout,
        allowed_roots: cfg.allowed_clip_roots.clone(),
        slim: true,
        check_clips: true,
    }
}

/// Writes the version's summaries.
fn finalizer(cfg: &ShardConfig, output: &Storage) -> Finalizer {
    Finalizer {
        storage: output.clone(),
        version_dir: cfg.version_dir(),
        root_version_dir: cfg.root_version_dir(),
        display_version_dir: cfg.display_version_dir(),
        max_tars_per_part: cfg.max_tars_per_part,
        wids_index: cfg.index.wids,
        names: cfg.names,
    }
}
