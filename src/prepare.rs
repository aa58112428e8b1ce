//! Getting a job ready before its dataflow runs, on process 0: the output is usable (or
//! resumable), the earlier output an incremental run starts from is loaded and checked, the
//! semantic-dedup tables are read. Everything here fails before the model is loaded.

use std::sync::Arc;

use crate::config::ShardConfig;
use crate::error::{ResumeRefusal, ShardError};
use crate::incremental::base::Base;
use crate::incremental::plan::Mode;
use crate::input::Lister;
use crate::journal::{
    differences, model_fingerprint, options_of, JobFingerprint, Journal, LOCK_FILE,
};
use crate::storage::{Location, Role, Storage};

pub use crate::journal::JOB_DIR;

/// Checks that the job can start: metadata directory present, output version empty — or,
/// with `resume`, holding the journal of the same job (same options and model). Checked by
/// process 0 only: the others may already see its job folder. Returns the journal's
/// fingerprint when resuming.
pub fn preflight(
    cfg: &ShardConfig,
    storage: &Storage,
    resume: bool,
    append: bool,
) -> Result<Option<JobFingerprint>, ShardError> {
    let meta_dir = cfg.meta_dir();
    match &meta_dir {
        Location::Local(p) if !p.is_dir() => {
            return Err(ShardError::NoMetaDir(meta_dir.to_string()))
        }
        Location::Local(_) => {}
        // an object store has no directories: look for one object under the prefix
        remote => {
            if storage.is_empty_dir(remote)? {
                return Err(ShardError::NoMetaDir(meta_dir.to_string()));
            }
        }
    }
    if cfg.listing == crate::config::Listing::Summary && cfg.cluster.process == 0 {
        // a missing or malformed summary.json stops the job before it starts
        Lister::new(storage.with_role(Role::Input), meta_dir.clone())
            .with_summary(cfg.input_location().join("summary.json"))
            .list()?;
    }
    let output = storage.with_role(Role::Output);
    let version_dir = cfg.version_dir();
    output.check(&version_dir)?;
    if cfg.cluster.process != 0 || unused(&output, &version_dir)? {
        if resume && cfg.cluster.process == 0 {
            tracing::info!("{version_dir} is empty: nothing to resume, starting the job");
        }
        return Ok(None);
    }
    if append {
        // checked by `prepare_incremental`
        return Ok(None);
    }
    if !resume {
        return Err(ShardError::OutputNotEmpty(version_dir.to_string()));
    }
    let journal = Journal::new(output, version_dir.clone()).with_names(cfg.names);
    let Some(old) = journal.read_job()? else {
        return Err(ShardError::ResumeRefused {
            dir: version_dir.to_string(),
            reason: ResumeRefusal::NoJournal {
                journal_dir: journal.dir().to_string(),
            },
        });
    };
    let now = fingerprint(cfg, old.mtime)?;
    let diffs = differences(&old, &now);
    if !diffs.is_empty() {
        return Err(ShardError::ResumeRefused {
            dir: version_dir.to_string(),
            reason: ResumeRefusal::Differs(diffs),
        });
    }
    Ok(Some(old))
}

/// What the user asked of an incremental run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IncrementalRequest {
    /// A plain `shard`.
    None,
    /// `reshard --from-version V`; with `full`, a from-version that cannot be used makes a
    /// full run instead of an error.
    Reshard {
        /// The earlier annotation version.
        from_version: String,
        /// Fall back to a full run.
        full: bool,
    },
    /// `shard --append`.
    Append,
}

/// Loads and checks the earlier output an incremental run starts from (process 0 only;
/// after [`preflight`]). `None`: a plain run (nothing to append to, or `--full`).
pub fn prepare_incremental(
    cfg: &ShardConfig,
    storage: &Storage,
    request: &IncrementalRequest,
) -> Result<Option<Mode>, ShardError> {
    if let IncrementalRequest::Reshard { from_version, .. } = request {
        // the rule of --annotation-version: one directory name beside it, never `../x`
        crate::config::check_version(from_version).map_err(|e| ShardError::InvalidOption {
            option: "--from-version",
            message: format!("--from-version: {e}"),
        })?;
    }
    if cfg.cluster.process != 0 {
        return Ok(None);
    }
    let output = storage.with_role(Role::Output);
    let now = fingerprint(cfg, 0)?;
    match request {
        IncrementalRequest::None => Ok(None),
        IncrementalRequest::Append => {
            if cfg.drop_small_shards {
                return Err(ShardError::InvalidOption {
                    option: "--append",
                    message: "--append cannot be combined with --drop-small-shards: appended clips would be dropped differently from a full run".into(),
                });
            }
            if unused(&output, &cfg.version_dir())? {
                tracing::info!(
                    "{}: empty, nothing to append to: sharding it whole",
                    cfg.version_dir()
                );
                return Ok(None);
            }
            let base = Base::load(&output, cfg.version_dir(), &now, false)
                .map_err(|e| ShardError::CannotAppend(Box::new(e)))?;
            Ok(Some(Mode::Append {
                base: Arc::new(base),
            }))
        }
        IncrementalRequest::Reshard { from_version, full } => {
            if *from_version == cfg.version {
                return Err(ShardError::InvalidOption {
                    option: "--from-version",
                    message: format!(
                        "--from-version {from_version} is the version being written; name the earlier version"
                    ),
                });
            }
            let dir = Location::parse(&cfg.output)
                .map_err(|message| ShardError::InvalidOption {
                    option: "--output-dataset-path",
                    message,
                })?
                .join(from_version);
            match Base::load(&output, dir, &now, true) {
                Ok(base) => Ok(Some(Mode::Reshard {
                    base: Arc::new(base),
                    workers: cfg.workers,
                })),
                Err(e) if *full => {
                    tracing::warn!("{e}; --full: sharding {} from scratch", cfg.version);
                    Ok(None)
                }
                Err(e) => Err(ShardError::CannotReshard {
                    from_version: from_version.clone(),
                    version: cfg.version.clone(),
                    cause: Box::new(e),
                }),
            }
        }
    }
}

/// Reads the semantic-dedup tables (process 0 only: the planner runs there), before the model
/// is loaded so that a bad path fails fast.
pub fn load_dedup(
    cfg: &ShardConfig,
    storage: &Storage,
) -> Result<Option<Arc<std::collections::HashSet<String>>>, ShardError> {
    let (Some(d), 0) = (&cfg.semantic_dedup, cfg.cluster.process) else {
        return Ok(None);
    };
    let mut opts = storage.options().clone();
    if let Some(p) = &d.s3_profile {
        opts.input_profile = Some(p.clone());
    }
    let reader = Storage::new(opts).with_role(Role::Input);
    let dup = crate::dedup::load_duplicates(&reader, d)?;
    tracing::info!(
        "semantic dedup: {} of {} rows in {} tables at cosine_sim_score >= {}",
        dup.ids.len(),
        dup.rows,
        dup.files,
        1.0 - d.epsilon
    );
    Ok(Some(Arc::new(dup.ids)))
}

/// The smallest clip count of a bin's last tar (0: no limit).
pub(crate) fn drop_below(cfg: &ShardConfig) -> u32 {
    if cfg.drop_small_shards {
        cfg.min_clips_per_tar
    } else {
        0
    }
}

/// Takes the exclusive lock of the output version directory (process 0 of a job, before it
/// checks or writes anything there): a second job on the same output stops here with exit
/// code 2 and writes nothing. Held until the returned lock is dropped; see
/// [`crate::storage::OutputLock`] for what it guarantees on each kind of storage.
pub fn lock_output(
    cfg: &ShardConfig,
    storage: &Storage,
) -> Result<crate::storage::OutputLock, ShardError> {
    let output = storage.with_role(Role::Output);
    let lock = cfg.version_dir().join(JOB_DIR).join(LOCK_FILE);
    output.lock(&lock).map_err(|e| match e {
        crate::storage::LockError::Storage(s) => ShardError::Storage(s),
        held => ShardError::Locked(held.to_string()),
    })
}

/// Removes the temporary files a killed run left in the output version (`--resume`,
/// `--append`; after [`lock_output`], so that none belongs to a live writer).
pub fn clear_leftovers(cfg: &ShardConfig, storage: &Storage) -> Result<(), ShardError> {
    let n = storage
        .with_role(Role::Output)
        .clear_partials(&cfg.version_dir())?;
    if n > 0 {
        tracing::info!(
            "removed {n} temporary files left by an interrupted run in {}",
            cfg.version_dir()
        );
    }
    Ok(())
}

/// True when `dir` holds nothing but the lock this job took (the job folder an interrupted
/// run made before it planned holds nothing else: no tar is written before `job.json`).
fn unused(output: &Storage, dir: &Location) -> Result<bool, ShardError> {
    Ok(output.is_empty_dir_except(dir, &format!("{JOB_DIR}/{LOCK_FILE}"))?)
}

/// This run's fingerprint, without the plan's part.
pub(crate) fn fingerprint(cfg: &ShardConfig, mtime: u64) -> Result<JobFingerprint, ShardError> {
    Ok(JobFingerprint {
        format: crate::journal::FORMAT,
        mtime,
        options: options_of(cfg),
        model: model_fingerprint(&cfg.model_dir)?,
        inputs: None,
    })
}

#[cfg(test)]
mod from_version_tests {
    use super::*;
    use crate::config::ShardOptions;
    use crate::storage::StorageOptions;

    #[test]
    fn from_version_follows_the_annotation_version_rule() {
        let dir = tempfile::tempdir().unwrap();
        let path = |p: &std::path::Path| p.to_string_lossy().into_owned();
        let f = ShardOptions {
            input_clip_path: Some(path(dir.path())),
            output_dataset_path: Some(path(&dir.path().join("out"))),
            t5_model: Some(dir.path().to_owned()),
            annotation_version: Some("v1".into()),
            ..ShardOptions::default()
        };
        let cfg = ShardConfig::resolve(f, &|_| None).unwrap();
        let storage = Storage::new(StorageOptions::default());
        for bad in ["../x", "..", ".", "", "a/b", "/abs"] {
            for full in [false, true] {
                let request = IncrementalRequest::Reshard {
                    from_version: bad.into(),
                    full,
                };
                let err = prepare_incremental(&cfg, &storage, &request)
                    .expect_err("refused, also with --full");
                let msg = err.to_string();
                assert!(
                    matches!(
                        err,
                        ShardError::InvalidOption {
                            option: "--from-version",
                            ..
                        }
                    ),
                    "{msg}"
                );
                assert!(
                    msg.starts_with("--from-version: ") && msg.contains("not a directory name"),
                    "{msg}"
                );
            }
        }
        // the check is the annotation version's
        assert!(crate::config::check_version("../x").is_err());
        assert!(crate::config::check_version("v0").is_ok());
    }
}
