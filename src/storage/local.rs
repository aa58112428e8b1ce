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
    let (_, meta) = open_regular(p).map_err(|e| StorageError::io("read", &shown, &e))?;
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Ok(FileStat {
        size: meta.len(),
        stamp: crate::hash::stable_hash(&mtime_ns.to_le_bytes()),
    })
}

/// A directory's identity, whatever path leads to it.
pub(super) fn dir_id(m: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}

/// Opens a file for reading only if it is a regular file (following links): opening a FIFO
/// blocks until a writer appears, and a device may never end. Returns the open file's
/// metadata too, so that callers need no second `fstat`.
pub(super) fn open_regular(p: &Path) -> std::io::Result<(std::fs::File, std::fs::Metadata)> {
    use std::os::unix::fs::OpenOptionsExt;
    // checked before opening too: opening a socket or a device fails (ENXIO, ENODEV) or has
    // effects, where "not a regular file" is what is wrong
    if !std::fs::metadata(p)?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a FIFO, socket or device)",
        ));
    }
    // O_NONBLOCK: should the path become a FIFO between the check and the open, the open
    // returns instead of waiting; for a regular file it changes nothing
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(p)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a FIFO, socket or device)",
        ));
    }
    Ok((f, meta))
}

/// The metadata of a directory to list; a missing root, or one that is not a directory, is a
/// `not_found` error.
pub(super) fn listed_root(root: &Path) -> Result<std::fs::Metadata, StorageError> {
    let not_dir = || {
        StorageError::of_kind(
            "list",
            &root.display(),
            "no such directory".into(),
            super::ErrorKind::NotFound,
        )
    };
    let meta = std::fs::metadata(root).map_err(|_| not_dir())?;
    if !meta.is_dir() {
        return Err(not_dir());
    }
    Ok(meta)
}

pub(super) fn list_local(root: &Path) -> Result<Vec<Listed>, StorageError> {
    let meta = listed_root(root)?;
    let mut found = Vec::new();
    // directories listed so far, by (device, inode): a symlink back to one of them (a cycle,
    // or a second way into the same tree) is reported once instead of listed again
    let mut seen = std::collections::HashSet::new();
    seen.insert(dir_id(&meta));
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
            if let Some(m) = meta.as_ref().filter(|m| m.is_dir()) {
                if seen.insert(dir_id(m)) {
                    stack.push(rel);
                } else {
                    found.push(Listed {
                        rel: rel.to_string_lossy().into_owned(),
                        size: 0,
                        error: Some(
                            "a link to a directory already listed (a symlink loop, or a second path to the same files): not listed again".into(),
                        ),
                    });
                }
            } else {
                let size = meta.as_ref().map(|m| m.len()).unwrap_or(0);
                // a FIFO, socket or device would block or never end when read
                let special = meta
                    .as_ref()
                    .is_some_and(|m| !m.is_file())
                    .then(|| "not a regular file (a FIFO, socket or device)".to_string());
                found.push(match rel.to_str() {
                    Some(s) => Listed {
                        rel: s.to_string(),
                        size,
                        error: special,
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
