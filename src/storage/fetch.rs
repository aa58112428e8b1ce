//! Clip reads: started early, then opened and streamed into a tar.

use std::sync::Arc;

use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt};

use super::StorageError;

/// Objects up to this size are read whole by a prefetch; larger ones stream through in
/// ranged reads of [`STREAM_CHUNK`] bytes, so no clip is ever held whole in memory when it is
/// big.
pub const PREFETCH_MAX: u64 = 64 << 20;
/// Size of one ranged read when streaming a large object.
pub const STREAM_CHUNK: u64 = 8 << 20;

/// A clip read started by [`Storage::fetch`]: a local file (opened when waited for, then
/// streamed), an object prefetched whole, or a large object to stream in ranges.
pub struct Fetch {
    pub(super) inner: FetchInner,
}

pub(super) enum FetchInner {
    Local(std::path::PathBuf),
    Remote(
        tokio::runtime::Handle,
        tokio::task::JoinHandle<Result<Prefetched, StorageError>>,
        String,
        Option<(Arc<dyn ObjectStore>, ObjPath)>,
    ),
    Failed(StorageError),
}

pub(super) enum Prefetched {
    Whole(bytes::Bytes),
    Large(u64),
}

/// The bytes of a clip, ready to be copied: `len` bytes from `reader`.
pub struct ClipReader {
    /// Exact size; reading yields exactly this many bytes or fails.
    pub len: u64,
    /// The bytes.
    pub reader: Box<dyn std::io::Read + Send>,
}

impl Fetch {
    /// A read that failed before it started (e.g. an unparsable location).
    pub fn failed(op: &'static str, location: &str, message: String) -> Fetch {
        Fetch {
            inner: FetchInner::Failed(StorageError::other(op, &location, message)),
        }
    }

    /// Waits until the clip can be read: the file is open (or the object fetched, or its size
    /// known). An error here means the clip is missing or unreadable.
    pub fn open(self) -> Result<ClipReader, StorageError> {
        match self.inner {
            FetchInner::Local(p) => {
                let shown = p.display();
                let (f, meta) = super::local::open_regular(&p)
                    .map_err(|e| StorageError::io("read", &shown, &e))?;
                let len = meta.len();
                Ok(ClipReader {
                    len,
                    reader: Box::new(Exact::new(f, len, shown.to_string())),
                })
            }
            FetchInner::Remote(rt, handle, loc, target) => {
                let got = match rt.block_on(handle) {
                    Ok(r) => r?,
                    // the read task died: nothing the clip did
                    Err(e) => {
                        return Err(StorageError::of_kind(
                            "read",
                            &loc,
                            e.to_string(),
                            super::ErrorKind::Transient,
                        ))
                    }
                };
                match got {
                    Prefetched::Whole(b) => Ok(ClipReader {
                        len: b.len() as u64,
                        reader: Box::new(std::io::Cursor::new(b)),
                    }),
                    Prefetched::Large(len) => {
                        let (store, path) = target.expect("remote target");
                        let ranges = Ranged {
                            rt,
                            store,
                            path,
                            shown: loc.clone(),
                            len,
                            pos: 0,
                            chunk: std::io::Cursor::new(bytes::Bytes::new()),
                        };
                        Ok(ClipReader {
                            len,
                            reader: Box::new(Exact::new(ranges, len, loc)),
                        })
                    }
                }
            }
            FetchInner::Failed(e) => Err(e),
        }
    }
}

/// Yields exactly `left` bytes of `inner`, failing if it ends early (the file shrank) and
/// never reading past them (it grew): a tar header announced this size.
struct Exact<R> {
    inner: R,
    left: u64,
    shown: String,
}

impl<R> Exact<R> {
    fn new(inner: R, left: u64, shown: String) -> Self {
        Exact { inner, left, shown }
    }
}

impl<R: std::io::Read> std::io::Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "{} ended {} bytes early (changed while being read)",
                    self.shown, self.left
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Sequential ranged reads of a large object.
struct Ranged {
    rt: tokio::runtime::Handle,
    store: Arc<dyn ObjectStore>,
    path: ObjPath,
    shown: String,
    len: u64,
    pos: u64,
    chunk: std::io::Cursor<bytes::Bytes>,
}

impl std::io::Read for Ranged {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = std::io::Read::read(&mut self.chunk, buf)?;
        if n > 0 || self.pos >= self.len {
            return Ok(n);
        }
        let end = (self.pos + STREAM_CHUNK).min(self.len);
        let got = self
            .rt
            .block_on(self.store.get_range(&self.path, self.pos..end))
            .map_err(|e| std::io::Error::other(format!("{}: {e}", self.shown)))?;
        if got.is_empty() {
            return Ok(0);
        }
        self.pos += got.len() as u64;
        self.chunk = std::io::Cursor::new(got);
        std::io::Read::read(&mut self.chunk, buf)
    }
}
