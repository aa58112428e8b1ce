//! Whether a directory (or object-store prefix) holds a finished dataset, before the dataset
//! tools read it:
//!
//! - no `wdinfo_list.csv` (and no shardflow job journal): it is not a dataset at all;
//! - written by shardflow (`_shardflow/job.json` exists) but not finished: no
//!   `_shardflow/report.json` (a job is writing it, or was killed), a report that says the job
//!   failed (`"ok": false`: interrupted, or a storage failure), or a job holding the output's
//!   lock `_shardflow/lock` (a `--resume` or `--append` running over an earlier report, or an
//!   `--append` to a dataset shardflow did not write; on an object store the lock object,
//!   which only a killed job leaves behind once it ends);
//! - otherwise complete, also a dataset written by the reference (no `_shardflow` folder).

use crate::error::ShardError;
use crate::journal::{JOB_DIR, LOCK_FILE};
use crate::storage::{Location, Storage};

/// What a dataset directory is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completeness {
    /// Neither `wdinfo_list.csv` nor a shardflow job journal.
    NotADataset,
    /// Written by shardflow, not finished; why.
    Incomplete(String),
    /// Finished by shardflow, or written by the reference.
    Complete,
}

impl Completeness {
    /// The message for `root` in this state, or `None` when complete.
    pub fn message(&self, root: &Location) -> Option<String> {
        match self {
            Completeness::NotADataset => Some(not_a_dataset(root)),
            Completeness::Incomplete(why) => Some(incomplete(root, why)),
            Completeness::Complete => None,
        }
    }
}

/// "DIR: not a dataset (no wdinfo_list.csv)".
pub fn not_a_dataset(root: &Location) -> String {
    format!("{root}: not a dataset (no wdinfo_list.csv)")
}

/// "DIR is incomplete (...)", with why.
pub fn incomplete(root: &Location, why: &str) -> String {
    format!(
        "{root} is incomplete (being written, or interrupted: finish it with shard --resume): {why}"
    )
}

/// Whether `loc` exists. Errors other than "not found" are errors.
fn exists(storage: &Storage, loc: &Location) -> Result<bool, ShardError> {
    match loc {
        // a directory in the way is "there" as well: not a finished dataset's file, but the
        // caller reads it and reports what it finds
        Location::Local(p) => match std::fs::metadata(p) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Ok(false),
            Err(e) => Err(ShardError::io(p, e)),
        },
        Location::Remote { .. } => match storage.size(loc) {
            Ok(_) => Ok(true),
            Err(e) if e.not_found => Ok(false),
            Err(e) => Err(e.into()),
        },
    }
}

/// Classifies the dataset at `root` (an `<output>/<version>` directory or prefix).
pub fn check(storage: &Storage, root: &Location) -> Result<Completeness, ShardError> {
    let job_dir = root.join(JOB_DIR);
    // a job writing it holds its lock, also an --append to a dataset shardflow did not write
    let lock = job_dir.join(LOCK_FILE);
    let held = match lock.as_local() {
        Some(p) => is_locked(p),
        // the lock object exists while a job runs (or after one was killed)
        None => exists(storage, &lock)?,
    };
    if held {
        return Ok(Completeness::Incomplete(format!(
            "a shardflow job is writing it, or was killed while it did (it holds {lock})"
        )));
    }
    check_contents(storage, root)
}

/// [`check`] for a caller that holds the dataset's lock itself (no job can be writing it):
/// what its files say.
pub fn check_contents(storage: &Storage, root: &Location) -> Result<Completeness, ShardError> {
    let job_dir = root.join(JOB_DIR);
    if exists(storage, &job_dir.join("job.json"))? {
        if let Some(why) = unfinished(storage, &job_dir)? {
            return Ok(Completeness::Incomplete(why));
        }
    }
    if !exists(storage, &root.join(crate::layout::WDINFO_LIST))? {
        return Ok(Completeness::NotADataset);
    }
    Ok(Completeness::Complete)
}

/// Why the job that writes the dataset with job folder `job_dir` has not finished it, if it
/// has not.
fn unfinished(storage: &Storage, job_dir: &Location) -> Result<Option<String>, ShardError> {
    let report = job_dir.join("report.json");
    let bytes = match storage.read(&report) {
        Ok(b) => b,
        Err(e) if e.not_found => {
            return Ok(Some(format!(
                "{report} does not exist: a job is writing it, or was stopped before it finished"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Ok(Some(format!("{report} is not valid JSON")));
    };
    if v["ok"] != serde_json::Value::Bool(true) {
        let error = v["error"].as_str().unwrap_or("no error recorded");
        return Ok(Some(format!("{report} says the job failed: {error}")));
    }
    Ok(None)
}

/// Whether another process holds the (exclusive, advisory) lock of the lock file at `p`: a
/// shared lock cannot be taken. A file that does not exist, or a file system without locks,
/// is not locked. The shared lock, when taken, is released at once.
fn is_locked(p: &std::path::Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    // neither a FIFO nor a link planted as the lock file is opened for a blocking read
    let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(p)
    else {
        return false;
    };
    match f.try_lock_shared() {
        Ok(()) => {
            let _ = f.unlock();
            false
        }
        Err(std::fs::TryLockError::WouldBlock) => true,
        Err(std::fs::TryLockError::Error(e)) => {
            tracing::warn!("{}: cannot check the lock: {e}", p.display());
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StorageOptions;

    fn state(dir: &std::path::Path) -> Completeness {
        let st = Storage::new(StorageOptions::default());
        check(&st, &Location::Local(dir.to_path_buf())).unwrap()
    }

    fn write(dir: &std::path::Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn an_empty_or_random_directory_is_not_a_dataset() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(state(dir.path()), Completeness::NotADataset);
        write(dir.path(), "a/b.tar", "x");
        write(dir.path(), "notes.txt", "y");
        assert_eq!(state(dir.path()), Completeness::NotADataset);
        assert_eq!(
            state(&dir.path().join("missing")),
            Completeness::NotADataset
        );
        let msg = Completeness::NotADataset
            .message(&Location::Local(dir.path().to_path_buf()))
            .unwrap();
        assert!(
            msg.ends_with(": not a dataset (no wdinfo_list.csv)"),
            "{msg}"
        );
    }

    #[test]
    fn a_reference_dataset_is_complete() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "wdinfo_list.csv", "x/wdinfo.json\r\n");
        assert_eq!(state(dir.path()), Completeness::Complete);
    }

    #[test]
    fn a_shardflow_dataset_is_complete_only_when_its_report_says_ok() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "_shardflow/job.json", "{}");
        // being written: not even wdinfo_list.csv yet
        let Completeness::Incomplete(why) = state(dir.path()) else {
            panic!("incomplete expected");
        };
        assert!(why.contains("report.json does not exist"), "{why}");
        write(dir.path(), "wdinfo_list.csv", "");
        assert!(matches!(state(dir.path()), Completeness::Incomplete(_)));
        write(
            dir.path(),
            "_shardflow/report.json",
            r#"{"ok": false, "error": "interrupted by a signal"}"#,
        );
        let Completeness::Incomplete(why) = state(dir.path()) else {
            panic!("incomplete expected");
        };
        assert!(why.contains("interrupted by a signal"), "{why}");
        write(dir.path(), "_shardflow/report.json", "{not json");
        assert!(matches!(state(dir.path()), Completeness::Incomplete(_)));
        write(dir.path(), "_shardflow/report.json", r#"{"ok": true}"#);
        assert_eq!(state(dir.path()), Completeness::Complete);
        let msg = incomplete(&Location::Local(dir.path().to_path_buf()), "why");
        assert!(
            msg.contains(
                " is incomplete (being written, or interrupted: finish it with shard --resume)"
            ),
            "{msg}"
        );
    }

    #[test]
    fn a_held_lock_means_a_job_is_writing() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "_shardflow/job.json", "{}");
        write(dir.path(), "_shardflow/report.json", r#"{"ok": true}"#);
        write(dir.path(), "wdinfo_list.csv", "");
        write(dir.path(), "_shardflow/lock", "");
        // a lock file left by a finished job is not held
        assert_eq!(state(dir.path()), Completeness::Complete);
        let held = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("_shardflow/lock"))
            .unwrap();
        held.try_lock().unwrap();
        let Completeness::Incomplete(why) = state(dir.path()) else {
            panic!("incomplete expected");
        };
        assert!(why.contains("a shardflow job is writing it"), "{why}");
        drop(held);
        assert_eq!(state(dir.path()), Completeness::Complete);
    }
}
