//! [`Storage::list_sorted`]: a directory's files in listing order (relative paths in byte
//! order, SPEC §2.1), read page by page instead of collected, so that the files listed first
//! can be worked on while the rest is listed.
//!
//! Which listings are streamed: local directories (an ordered walk, `walk.rs`) and S3 (and
//! S3-compatible stores), whose `ListObjectsV2` returns keys in UTF-8 byte order; the keys
//! are checked as they come, and one out of order stops the listing with an error instead of
//! giving a wrong order. GCS and Azure do not document their listing order the same way
//! (and are untested here): they are collected and sorted, then handed out page by page.

use futures::stream::{BoxStream, StreamExt, TryStreamExt};

use super::walk::OrderedWalk;
use super::{ErrorKind, Listed, Location, Scheme, Storage, StorageError};

/// A listing in progress; see [`Storage::list_sorted`].
pub struct SortedListing {
    inner: Inner,
}

enum Inner {
    Local(Box<OrderedWalk>),
    Stream(Box<Streamed>),
    Sorted(std::vec::IntoIter<Listed>),
}

/// An object store listing read as it comes.
struct Streamed {
    rt: tokio::runtime::Handle,
    stream: BoxStream<'static, object_store::Result<object_store::ObjectMeta>>,
    /// The listed prefix with its `/`, cut from every key.
    strip: String,
    /// The listed location, for errors.
    dir: String,
    /// The first entry, read when the listing started (to tell an empty prefix).
    first: Option<Listed>,
    /// The last relative path handed out, to check the order.
    last: Option<String>,
    done: bool,
}

impl Streamed {
    fn listed(&self, m: object_store::ObjectMeta) -> Listed {
        let k = m.location.as_ref();
        Listed {
            rel: k.strip_prefix(&self.strip).unwrap_or(k).to_string(),
            size: m.size,
            error: None,
        }
    }

    /// Up to `n` more entries.
    fn next_page(&mut self, n: usize) -> Result<Vec<Listed>, StorageError> {
        let mut page: Vec<Listed> = self.first.take().into_iter().collect();
        if self.done {
            return Ok(page);
        }
        let want = n.saturating_sub(page.len());
        let got: Vec<object_store::ObjectMeta> = self
            .rt
            .block_on((&mut self.stream).take(want).try_collect())
            .map_err(|e| StorageError::obj("list", &self.dir, &e))?;
        if got.len() < want {
            self.done = true;
        }
        for m in got {
            page.push(self.listed(m));
        }
        for l in &page {
            if let Some(last) = &self.last {
                if l.rel.as_bytes() <= last.as_bytes() {
                    self.done = true;
                    return Err(StorageError::other(
                        "list",
                        &self.dir,
                        format!(
                            "the store listed {:?} after {last:?}, not in byte order: the listing cannot be streamed",
                            l.rel
                        ),
                    ));
                }
            }
            self.last = Some(l.rel.clone());
        }
        Ok(page)
    }
}

impl SortedListing {
    /// Up to `n` (at least 1) more entries in listing order; empty once the listing is done.
    /// An error (the store failed in the middle of the listing) ends the listing.
    pub fn next_page(&mut self, n: usize) -> Result<Vec<Listed>, StorageError> {
        let n = n.max(1);
        match &mut self.inner {
            Inner::Local(walk) => Ok(walk.by_ref().take(n).collect()),
            Inner::Sorted(it) => Ok(it.by_ref().take(n).collect()),
            Inner::Stream(s) => {
                let page = s.next_page(n);
                if page.is_err() {
                    s.done = true;
                }
                page
            }
        }
    }
}

impl Storage {
    /// Starts listing every file below directory `dir` in listing order (relative paths in
    /// byte order); the entries are then read with [`SortedListing::next_page`]. Entries that
    /// could not be listed carry their error, as in [`Storage::list`]. A missing directory
    /// (for an object store: no object under the prefix) is a `not_found` error, here.
    pub fn list_sorted(&self, dir: &Location) -> Result<SortedListing, StorageError> {
        let inner = match dir {
            Location::Local(p) => Inner::Local(Box::new(OrderedWalk::new(p)?)),
            Location::Remote {
                scheme: Scheme::S3, ..
            } => {
                let (store, rt, path) = self.remote("list", dir)?;
                let prefix = (!path.as_ref().is_empty()).then_some(&path);
                let strip = if path.as_ref().is_empty() {
                    String::new()
                } else {
                    format!("{}/", path.as_ref())
                };
                let mut s = Streamed {
                    rt: rt.handle().clone(),
                    stream: store.list(prefix),
                    strip,
                    dir: dir.to_string(),
                    first: None,
                    last: None,
                    done: false,
                };
                let first = rt
                    .block_on(s.stream.next())
                    .transpose()
                    .map_err(|e| StorageError::obj("list", dir, &e))?;
                match first {
                    Some(m) => s.first = Some(s.listed(m)),
                    None => return Err(empty(dir)),
                }
                Inner::Stream(Box::new(s))
            }
            Location::Remote { .. } => {
                let mut all = self.list(dir)?;
                all.sort_by(|a, b| a.rel.as_bytes().cmp(b.rel.as_bytes()));
                Inner::Sorted(all.into_iter())
            }
        };
        Ok(SortedListing { inner })
    }
}

/// The error of a prefix with no object under it.
pub(super) fn empty(dir: &Location) -> StorageError {
    StorageError::of_kind(
        "list",
        dir,
        "no objects under this prefix".into(),
        ErrorKind::NotFound,
    )
}

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;
