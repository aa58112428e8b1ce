//! Embeddings computed by an earlier version, served from its `t5_xxl` tars to the tar
//! writers. A tar is read whole when one of its arrays is first needed and kept among the few
//! most recently used: clips seldom move far between versions, so a new tar mostly draws from
//! the old tar at the same place — whose new tar at that place one writer owns, the exchange
//! being keyed on the tar — and memory stays bounded.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::rc::Rc;

use crate::formats::npy_pickle::{read_window_arrays, F16Array};
use crate::layout::Stream;
use crate::record::EmbeddingRef;
use crate::storage::{Location, Storage};

/// A tar's `.pickle` members by sample key.
type Members = HashMap<String, Vec<u8>>;

/// Cached tars, most recently used last.
type Lru = VecDeque<(String, Rc<Members>, usize)>;

/// Bytes of old `t5_xxl` tars a worker keeps in memory (at least the last one read).
pub const CACHE_BYTES: usize = 256 << 20;

/// Reads earlier embeddings; one per worker.
#[derive(Clone)]
pub struct EmbeddingSource {
    storage: Storage,
    /// Most recently used last: tar location → sample key → `.pickle` bytes.
    cache: Rc<RefCell<Lru>>,
}

impl EmbeddingSource {
    /// Reads through `storage` (the output's).
    pub fn new(storage: Storage) -> Self {
        EmbeddingSource {
            storage,
            cache: Rc::default(),
        }
    }

    /// The array `r` points at; an error names the tar and key.
    pub fn get(&self, r: &EmbeddingRef) -> Result<F16Array, String> {
        let tar = self.tar(&r.tar)?;
        let pickle = tar.get(&r.key).ok_or_else(|| {
            format!(
                "{}: no {}.pickle in it; it changed since it was recorded",
                r.tar, r.key
            )
        })?;
        let mut arrays =
            read_window_arrays(pickle).map_err(|e| format!("{}: {}.pickle: {e}", r.tar, r.key))?;
        if (r.window as usize) >= arrays.len() {
            return Err(format!(
                "{}: {}.pickle has {} arrays, not {}",
                r.tar,
                r.key,
                arrays.len(),
                r.window + 1
            ));
        }
        Ok(arrays.swap_remove(r.window as usize))
    }

    fn tar(&self, at: &str) -> Result<Rc<Members>, String> {
        let mut cache = self.cache.borrow_mut();
        if let Some(i) = cache.iter().position(|(l, _, _)| l == at) {
            let entry = cache.remove(i).expect("present");
            let members = entry.1.clone();
            cache.push_back(entry);
            return Ok(members);
        }
        let loc = Location::parse(at)?;
        let bytes = self.storage.read(&loc).map_err(|e| e.to_string())?;
        tracing::debug!(
            "reading earlier embeddings from {at} ({} bytes)",
            bytes.len()
        );
        let members = Rc::new(read_members(&bytes).map_err(|e| format!("{at}: {e}"))?);
        let mut total: usize = bytes.len() + cache.iter().map(|(_, _, n)| n).sum::<usize>();
        while total > CACHE_BYTES && !cache.is_empty() {
            total -= cache.pop_front().expect("not empty").2;
        }
        cache.push_back((at.to_string(), members.clone(), bytes.len()));
        Ok(members)
    }
}

/// The `.pickle` members of a tar, by key.
fn read_members(bytes: &[u8]) -> std::io::Result<Members> {
    let mut out = HashMap::new();
    let mut archive = tar::Archive::new(bytes);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        if let Some(key) = crate::layout::member_key(&name, Stream::T5Xxl) {
            let mut data = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut data)?;
            out.insert(key.to_string(), data);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::npy_pickle::write_array_list;
    use crate::storage::StorageOptions;
    use half::f16;

    fn tar_with(path: &std::path::Path, members: &[(&str, Vec<u8>)]) {
        let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
        for (name, data) in members {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o444);
            b.append_data(&mut h, name, data.as_slice()).unwrap();
        }
        b.finish().unwrap();
    }

    #[test]
    fn serves_arrays_by_key_and_window_and_names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let a = F16Array::new((1, 2), vec![f16::from_f32(1.0), f16::from_f32(2.0)]).unwrap();
        let b = F16Array::new((2, 2), vec![f16::from_f32(3.0); 4]).unwrap();
        let pickle = write_array_list(&[a.view(), b.view()]);
        let path = dir.path().join("t.tar");
        tar_with(&path, &[("k1.pickle", pickle)]);
        let src = EmbeddingSource::new(Storage::new(StorageOptions::default()));
        let at = path.to_string_lossy().into_owned();
        let r = |key: &str, window| EmbeddingRef {
            tar: at.clone(),
            key: key.into(),
            window,
        };
        assert_eq!(src.get(&r("k1", 1)).unwrap(), b);
        assert_eq!(src.get(&r("k1", 0)).unwrap(), a);
        assert!(src.get(&r("k2", 0)).unwrap_err().contains("no k2.pickle"));
        assert!(src.get(&r("k1", 2)).unwrap_err().contains("2 arrays"));
        // served from the cache once read: removing the file does not matter
        std::fs::remove_file(&path).unwrap();
        assert_eq!(src.get(&r("k1", 0)).unwrap(), a);
    }
}
