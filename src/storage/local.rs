//! Local directories: listing and file checks.

use std::path::Path;

use super::{FileStat, Listed, StorageError};

pub(super) fn local_size(p: &Path) -> Result<u64, StorageError> {
    local_stat(p).map(|s| s.size)
}

/// Size and change stamp from one `stat` of an open file. The stamp is the modification time
/// alone: inode numbers change with FUSE mounts, overlay file systems and restored copies,
/// where the file did not.
pub(super) fn local_stat(p: &Path) -> Result<FileStat, StorageError> {
    let shown = p.display();
    let f = std::fs::File::open(p).map_err(|e| StorageError::io("read", &shown, &e))?;
    let meta = f
        .metadata()
        .map_err(|e| StorageError::io("stat", &shown, &e))?;
    if !meta.is_file() {
        return Err(StorageError::other(
            "read",
            &shown,
            "not a regular file".into(),
        ));
    }
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Ok(FileStat {
        size: meta.len(),
        stamp: crate::ops::stable_hash(&mtime_ns.to_le_bytes()),
    })
}

pub(super) fn list_local(root: &Path) -> Result<Vec<Listed>, StorageError> {
    let not_dir = || StorageError {
        op: "list",
        location: root.display().to_string(),
        message: "no such directory".into(),
        not_found: true,
    };
    let meta = std::fs::metadata(root).map_err(|_| not_dir())?;
    if !meta.is_dir() {
        return Err(not_dir());
    }
    let mut found = Vec::new();
    let mut stack = vec![std::path::PathBuf::new()];
    while let Some(rel_dir) = stack.pop() {
        let shown = rel_dir.to_string_lossy().into_owned();
        let entries = match std::fs::read_dir(root.join(&rel_dir)) {
            Ok(e) => e,
            Err(e) => {
                found.push(Listed {
                    rel: shown,
                    size: 0,
                    error: Some(format!("cannot list directory: {e}")),
                });
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    found.push(Listed {
                        rel: shown.clone(),
                        size: 0,
                        error: Some(format!("cannot list directory: {e}")),
                    });
                    continue;
                }
            };
            let rel = rel_dir.join(entry.file_name());
            // follow symlinks, as Python's reading of files does
            let meta = std::fs::metadata(entry.path()).ok();
            if meta.as_ref().is_some_and(|m| m.is_dir()) {
                stack.push(rel);
            } else {
                let size = meta.map(|m| m.len()).unwrap_or(0);
                found.push(match rel.to_str() {
                    Some(s) => Listed {
                        rel: s.to_string(),
                        size,
                        error: None,
                    },
                    None => Listed {
                        rel: rel.to_string_lossy().into_owned(),
                        size,
                        error: Some("file name is not valid UTF-8".to_string()),
                    },
                });
            }
        }
    }
    Ok(found)
}
