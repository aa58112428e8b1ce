//! Typed errors of the library. Each carries the path (or key) it is about.

use std::path::PathBuf;

/// Errors that stop a job before or while it runs (bad input records do not: they become
/// reject records).
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// An I/O operation on a path failed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The output version directory already has content.
    #[error("{0}: output directory is not empty; continue an interrupted job there with --resume, or choose another --output-dataset-path or --annotation-version, or remove it")]
    OutputNotEmpty(String),
    /// Another job holds the output's lock.
    #[error("{0}")]
    Locked(String),
    /// The input has no `metas/<version>` directory.
    #[error(
        "{0}: no such metadata directory (expected <input-clip-path>/metas/<annotation-version>)"
    )]
    NoMetaDir(String),
    /// A storage operation failed (after its retries, for an object store).
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// The T5 model could not be loaded.
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    /// The job refuses to run once its input is listed (a `--resume` whose inputs changed, a
    /// plan without one caption): the output is left as it was, without a report.
    #[error("{0}")]
    Refused(String),
    /// `--resume` is refused; the output is left as it is.
    #[error("cannot resume {dir}: {reason}")]
    ResumeRefused {
        /// The output version directory.
        dir: String,
        /// Why.
        reason: ResumeRefusal,
    },
    /// An earlier output cannot be the base of `--append` or `reshard`.
    #[error("{dir}: {reason}")]
    BaseRefused {
        /// The earlier version directory.
        dir: String,
        /// Why.
        reason: BaseRefusal,
    },
    /// `--append` cannot continue from the output it appends to. (The cause is part of the
    /// message, not a `source`: `{:#}` would print it twice.)
    #[error("cannot append: {0}")]
    CannotAppend(Box<ShardError>),
    /// `reshard --from-version` cannot start from the earlier version (without `--full`).
    #[error("cannot re-shard from {from_version}: {cause}. Pass --full to shard {version} from scratch instead")]
    CannotReshard {
        /// The earlier version named.
        from_version: String,
        /// The version being written.
        version: String,
        /// Why (in the message, not a `source`, so that it is printed once).
        cause: Box<ShardError>,
    },
    /// An option's value, or a combination of options, that the job refuses before it starts.
    #[error("{message}")]
    InvalidOption {
        /// The option, as on the command line (e.g. `--from-version`).
        option: &'static str,
        /// The whole message, naming the option.
        message: String,
    },
    /// A `job.json` that does not parse.
    #[error("{location}: not a shardflow job journal: {cause}")]
    CorruptJournal {
        /// Where it is.
        location: String,
        /// The parse error (in the message, not a `source`, so that it is printed once).
        cause: serde_json::Error,
    },
    /// A file the job reads (`summary.json`, a tar being indexed, a listed entry) is missing
    /// or not what it must be.
    #[error("{location}: {message}")]
    BadFile {
        /// Where it is.
        location: String,
        /// What is wrong with it.
        message: String,
    },
    /// The semantic-dedup tables cannot be used.
    #[error("semantic dedup: {location}: {message}")]
    SemanticDedup {
        /// The table or folder.
        location: String,
        /// What is wrong with it.
        message: String,
    },
    /// The job's dataflow could not run to its end.
    #[error(transparent)]
    Job(#[from] JobError),
    /// Planned tar triples did not complete (their samples were lost to a failure, maybe in
    /// another process): no summary may claim the dataset is complete.
    #[error("dataflow failed: not writing wdinfo files: {missing} planned tar triples did not complete (the first: {first}); see the log of every process")]
    TarsIncomplete {
        /// How many planned triples did not complete.
        missing: usize,
        /// The first of them, `<bin>/<part>/<tar>`.
        first: String,
    },
    /// The job failed before its summaries could be written.
    #[error("dataflow failed: not writing wdinfo files: a tar could not be written ({0})")]
    NotFinalized(JobFailure),
    /// A tar triple cannot be made consistent with the earlier version it is partly copied
    /// from, or reuses embeddings of: the job must run again.
    #[error("dataflow failed: {0}")]
    Inconsistent(String),
    /// A location derived from a valid one is not valid.
    #[error("dataflow failed: {0}")]
    InvalidLocation(String),
}

/// Why a job's dataflow could not run to its end. The messages of the variants other than
/// [`JobError::ConnectTimeout`] keep the `dataflow failed:` prefix users have always seen.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The processes of a cluster job did not all connect in time (timely would retry
    /// forever).
    #[error("the processes of the job did not all connect within {timeout_s} s; check the hostfile and that every process was started")]
    ConnectTimeout {
        /// The time allowed (`--connect-timeout-s`).
        timeout_s: u64,
    },
    /// timely could not start the workers.
    #[error("dataflow failed: {0}")]
    Start(String),
    /// A worker thread panicked.
    #[error("dataflow failed: {0}")]
    WorkerPanicked(String),
    /// Process 0's worker 0 ended without a plan.
    #[error("dataflow failed: worker 0 returned no plan")]
    NoPlan,
}

/// Why a running job stopped: the first one is reported, and every operator stops its work
/// once one is recorded (see `job::FailureSignal`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JobFailure {
    /// SIGTERM or SIGINT: the completed tars are kept for `--resume`.
    #[error("interrupted by a signal; the completed tars are kept: continue with --resume")]
    Interrupted,
    /// The job refuses to run at all (a `--resume` whose inputs changed, a plan without any
    /// caption): nothing may be written, not even a report.
    #[error("{0}")]
    Refused(String),
    /// The plan could not be made or recorded (the storage failed while the input was read,
    /// the journal could not be written).
    #[error("{0}")]
    Plan(String),
    /// A batch could not be encoded.
    #[error("{0}")]
    Encode(String),
    /// A tar triple could not be written.
    #[error("{message}")]
    Write {
        /// The triple.
        tar: crate::layout::TarId,
        /// What went wrong.
        message: String,
    },
}

/// Why `--resume` is refused.
#[derive(Debug, thiserror::Error)]
pub enum ResumeRefusal {
    /// The output has content but no journal: it is not an interrupted shardflow job.
    #[error("it is not empty and holds no job journal ({journal_dir}/job.json)")]
    NoJournal {
        /// The journal directory looked in.
        journal_dir: String,
    },
    /// Options, model or inputs differ from the interrupted job's (one line per difference).
    #[error("the job differs from the interrupted one: {}", .0.join("; "))]
    Differs(Vec<String>),
}

/// Why an earlier output cannot be the base of an incremental run.
#[derive(Debug, thiserror::Error)]
pub enum BaseRefusal {
    /// It has no journal.
    #[error("no shardflow job journal ({journal_dir}/job.json): it does not exist or was not written by shardflow")]
    NoJournal {
        /// The journal directory looked in.
        journal_dir: String,
    },
    /// Its job did not complete.
    #[error("its job did not complete (no successful report.json); finish it with `shardflow shard --resume` first")]
    Incomplete,
    /// It was made with other options or another model (one line per difference).
    #[error("it was made differently, so its embeddings and tars cannot be reused: {}", .0.join("; "))]
    MadeDifferently(Vec<String>),
    /// A completion record's keys, captions and sample count disagree.
    #[error("the completion record of {0} is inconsistent (keys, captions and samples differ in number)")]
    InconsistentRecord(String),
    /// A completion record from an earlier shardflow, without the content list reuse needs.
    #[error("the completion record of {0} has no content list (written by an earlier shardflow)")]
    NoContentList(String),
}

impl ShardError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ShardError::Io {
            path: path.into(),
            source,
        }
    }
}
