//! An ordered walk of a local directory: every file below it in listing order (relative
//! paths in byte order, SPEC §2.1), produced one entry at a time, so that a large tree is
//! listed as a stream instead of collected and sorted.
//!
//! Each directory's entries are sorted by name bytes, where a directory's key is its name
//! followed by `/`. A depth-first walk in that order yields whole relative paths in byte
//! order. Proof: within one directory with path prefix `P`, take a file `F` and a directory
//! `S` (names hold no `/`). Every path below `S` is `P S / rest`; compare `P F` with it. If
//! `F` and `S/` differ at some byte within `F`, that byte decides `F` against `S/` and
//! against every `P S / rest` alike. Otherwise `F` is a proper prefix of `S/` (it cannot
//! equal it, holding no `/`) and sorts before `S/` and before everything below `S`. Two
//! directories `S1/` and `S2/` are never prefixes of each other, so their first differing
//! byte decides their whole subtrees. By induction on depth, the walk is in byte order.
//!
//! Error entries (a directory that cannot be read, a second path to a directory already
//! listed) are named by the directory's own path `P S`, which sorts before the siblings
//! named `S` followed by a byte below `/` (`S-x`, `S.json`) although the key `S/` sorts
//! after them: a directory is therefore resolved (checked and read) as soon as a sibling
//! that sorts after its own name is reached, and its error entry goes out at its place.
//!
//! The listing is the one collected and sorted before it was streamed, entry for entry, with
//! two differences, both where the old listing depended on the file system's order: of two
//! paths to one directory found in the same directory, the first in listing order is listed
//! (before: the first `read_dir` gave); and a relative path listed twice (two names that
//! differ only in bytes that are not UTF-8, shown alike; a directory that failed more than
//! once while read) keeps each entry's own size and error, where the second copy lost them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::{Listed, StorageError};

/// The error entry of a directory reached a second time (by device and inode).
const ALREADY_LISTED: &str = "a link to a directory already listed (a symlink loop, or a second path to the same files): not listed again";

/// One directory entry, stat'ed (following links) when its directory was read.
struct Entry {
    /// The name as the listing shows it (lossy UTF-8), plus `/` for a directory: the sort key.
    key: String,
    name: OsString,
    kind: Kind,
}

enum Kind {
    /// Its size and whether it is not a regular file; `None`: not stat'ed yet.
    File {
        stat: Option<(u64, bool)>,
    },
    Dir {
        id: (u64, u64),
        state: DirState,
    },
}

enum DirState {
    /// Not looked at yet.
    Pending,
    /// A directory found before by another path: reported, not listed again.
    Duplicate,
    /// Checked and read: its entries, sorted.
    Read(Vec<Entry>),
    /// Reported as an error entry (or already descended into).
    Done,
}

/// A directory being walked.
struct Frame {
    rel: PathBuf,
    entries: Vec<Entry>,
    next: usize,
    /// The index of each subdirectory by name (lossy, without the `/`).
    dirs: HashMap<Box<[u8]>, usize>,
}

impl Frame {
    fn new(rel: PathBuf, entries: Vec<Entry>) -> Frame {
        let dirs = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| matches!(e.kind, Kind::Dir { .. }))
            .map(|(i, e)| (e.key.as_bytes()[..e.key.len() - 1].into(), i))
            .collect();
        Frame {
            rel,
            entries,
            next: 0,
            dirs,
        }
    }
}

/// The ordered walk; see the module documentation.
pub(super) struct OrderedWalk {
    root: PathBuf,
    stack: Vec<Frame>,
    /// Entries ready to go out, before the walk goes on.
    ready: VecDeque<Listed>,
    /// Directories found so far, by (device, inode).
    seen: HashSet<(u64, u64)>,
}

impl OrderedWalk {
    /// Starts walking `root`; a missing root (or one that is not a directory) is a
    /// `not_found` error, as in [`super::Storage::list`].
    pub(super) fn new(root: &Path) -> Result<OrderedWalk, StorageError> {
        let meta = super::local::listed_root(root)?;
        let mut walk = OrderedWalk {
            root: root.to_path_buf(),
            stack: Vec::new(),
            ready: VecDeque::new(),
            seen: HashSet::from([super::local::dir_id(&meta)]),
        };
        if let Some(entries) = walk.read_dir(Path::new("")) {
            walk.stack.push(Frame::new(PathBuf::new(), entries));
        }
        Ok(walk)
    }

    /// Reads directory `rel`'s entries, sorted; queues error entries for what cannot be read.
    fn read_dir(&mut self, rel: &Path) -> Option<Vec<Entry>> {
        let shown = rel.to_string_lossy().into_owned();
        let cannot = |e: std::io::Error| Listed {
            rel: shown.clone(),
            size: 0,
            error: Some(format!("cannot list directory: {e}")),
        };
        let dir = match std::fs::read_dir(self.root.join(rel)) {
            Ok(d) => d,
            Err(e) => {
                self.ready.push_back(cannot(e));
                return None;
            }
        };
        let mut entries = Vec::new();
        for entry in dir {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    self.ready.push_back(cannot(e));
                    continue;
                }
            };
            let name = entry.file_name();
            // a file is stat'ed when it goes out, so that the first page does not wait for
            // every file of a large directory; a directory or a link (which may lead to one)
            // now, to place it. Links are followed, as Python's reading of files does
            let later = entry
                .file_type()
                .is_ok_and(|t| !t.is_dir() && !t.is_symlink());
            let meta = if later {
                None
            } else {
                std::fs::metadata(entry.path()).ok()
            };
            let mut key = name.to_string_lossy().into_owned();
            let kind = match meta.as_ref().filter(|m| m.is_dir()) {
                Some(m) => {
                    key.push('/');
                    Kind::Dir {
                        id: super::local::dir_id(m),
                        state: DirState::Pending,
                    }
                }
                None => Kind::File {
                    stat: (!later).then(|| file_stat(meta.as_ref())),
                },
            };
            entries.push(Entry { key, name, kind });
        }
        entries.sort_by(|a, b| a.key.as_bytes().cmp(b.key.as_bytes()));
        // a directory is claimed when found, as before the listing was streamed: of two
        // paths to one directory, the one whose parent is read first is listed (within one
        // directory, the first in listing order) and the other reported
        for e in &mut entries {
            if let Kind::Dir { id, state } = &mut e.kind {
                if !self.seen.insert(*id) {
                    *state = DirState::Duplicate;
                }
            }
        }
        Some(entries)
    }

    /// Checks and reads the directory at `entries[i]` of the top frame if still pending.
    fn resolve(&mut self, i: usize) {
        let frame = self.stack.last().expect("a frame");
        let Kind::Dir { state, .. } = &frame.entries[i].kind else {
            return;
        };
        let duplicate = match state {
            DirState::Pending => false,
            DirState::Duplicate => true,
            DirState::Read(_) | DirState::Done => return,
        };
        let rel = frame.rel.join(&frame.entries[i].name);
        let state = if duplicate {
            self.ready.push_back(Listed {
                rel: rel.to_string_lossy().into_owned(),
                size: 0,
                error: Some(ALREADY_LISTED.into()),
            });
            DirState::Done
        } else {
            match self.read_dir(&rel) {
                Some(entries) => DirState::Read(entries),
                None => DirState::Done,
            }
        };
        let frame = self.stack.last_mut().expect("a frame");
        if let Kind::Dir { state: s, .. } = &mut frame.entries[i].kind {
            *s = state;
        }
    }
}

/// Size (0 when unknown) and whether the file is not a regular one, from its metadata.
fn file_stat(meta: Option<&std::fs::Metadata>) -> (u64, bool) {
    (
        meta.map_or(0, |m| m.len()),
        meta.is_some_and(|m| !m.is_file()),
    )
}

impl Iterator for OrderedWalk {
    type Item = Listed;

    fn next(&mut self) -> Option<Listed> {
        loop {
            if let Some(l) = self.ready.pop_front() {
                return Some(l);
            }
            let frame = self.stack.last_mut()?;
            if frame.next == frame.entries.len() {
                self.stack.pop();
                continue;
            }
            let i = frame.next;
            frame.next += 1;
            // the directories whose own name sorts before this entry's (`S` before `S-x`
            // before `S/`): prefixes of its name followed by a byte below `/`, in name order
            // (shortest first); their error entries go out first
            let before: Vec<usize> = if frame.dirs.is_empty() {
                Vec::new()
            } else {
                let name = frame.entries[i].key.trim_end_matches('/').as_bytes();
                (1..name.len())
                    .filter(|&k| name[k] < b'/')
                    .filter_map(|k| frame.dirs.get(&name[..k]).copied())
                    .collect()
            };
            for j in before {
                self.resolve(j);
            }
            self.resolve(i);
            let frame = self.stack.last_mut().expect("a frame");
            let rel = frame.rel.join(&frame.entries[i].name);
            match &mut frame.entries[i].kind {
                Kind::File { stat } => {
                    let (size, special) = stat.unwrap_or_else(|| {
                        file_stat(std::fs::metadata(self.root.join(&rel)).ok().as_ref())
                    });
                    // a FIFO, socket or device would block or never end when read
                    let special = special
                        .then(|| "not a regular file (a FIFO, socket or device)".to_string());
                    // after the error entries queued above
                    self.ready.push_back(match rel.to_str() {
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
                Kind::Dir { state, .. } => {
                    if let DirState::Read(entries) = std::mem::replace(state, DirState::Done) {
                        self.stack.push(Frame::new(rel, entries));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
