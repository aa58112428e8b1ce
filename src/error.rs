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
    /// The job journal refuses the run (e.g. `--resume` with other options or model).
    #[error("{0}")]
    Journal(String),
    /// The earlier version a re-shard or append starts from cannot be used.
    #[error("{0}")]
    Base(String),
    /// A worker thread failed.
    #[error("dataflow failed: {0}")]
    Dataflow(String),
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
