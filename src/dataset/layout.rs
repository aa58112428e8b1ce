//! The tars of a written dataset (`<output>/<version>`), found by listing it: every
//! `<bin>/<video|t5_xxl|metas>/part_NNNNNN/NNNNNN.tar`, local or on an object store.

use std::collections::BTreeMap;

use crate::error::ShardError;
use crate::layout::{PerStream, Stream};
use crate::storage::{Location, Storage};

/// A dataset's files as listed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Layout {
    /// Per bin path, per tar (`part_NNNNNN/NNNNNN.tar`), the size of each stream's tar
    /// (`None`: missing).
    pub bins: BTreeMap<String, BTreeMap<String, PerStream<Option<u64>>>>,
    /// Every other file, with its size, by path relative to the dataset.
    pub others: BTreeMap<String, u64>,
}

fn is_tar_path(part: &str, tar: &str) -> bool {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    part.strip_prefix("part_").is_some_and(|p| digits(p, 6))
        && tar.strip_suffix(".tar").is_some_and(|t| digits(t, 6))
}

impl Layout {
    /// Lists `root`.
    pub fn discover(storage: &Storage, root: &Location) -> Result<Layout, ShardError> {
        let listed = storage.list(root)?;
        let mut out = Layout::default();
        for l in listed {
            if let Some(e) = l.error {
                return Err(ShardError::BadFile {
                    location: root.join(&l.rel).to_string(),
                    message: e,
                });
            }
            let parts: Vec<&str> = l.rel.split('/').collect();
            let n = parts.len();
            let stream = (n >= 4).then(|| Stream::from_name(parts[n - 3])).flatten();
            match stream {
                Some(k) if is_tar_path(parts[n - 2], parts[n - 1]) => {
                    let bin = parts[..n - 3].join("/");
                    let tar = format!("{}/{}", parts[n - 2], parts[n - 1]);
                    out.bins.entry(bin).or_default().entry(tar).or_default()[k] = Some(l.size);
                }
                _ => {
                    out.others.insert(l.rel, l.size);
                }
            }
        }
        Ok(out)
    }

    /// The location of one stream's tar.
    pub fn tar(root: &Location, bin: &str, stream: Stream, tar: &str) -> Location {
        root.join(&crate::layout::tar_rel(bin, stream, tar))
    }

    /// Bytes of all tars.
    pub fn tar_bytes(&self) -> u64 {
        self.bins
            .values()
            .flat_map(|t| t.values())
            .flat_map(|s| s.values().flatten())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StorageOptions;

    #[test]
    fn finds_tars_by_stream_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        for (f, n) in [
            ("r/a/video/part_000000/000000.tar", 3),
            ("r/a/metas/part_000000/000000.tar", 2),
            ("r/a/video/part_000000/000000.idx", 1),
            ("r/a/wdinfo.json", 1),
            ("wdinfo_list.csv", 1),
            ("x/video/part_1/000000.tar", 1),
        ] {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, vec![0u8; n]).unwrap();
        }
        let st = Storage::new(StorageOptions::default());
        let l = Layout::discover(&st, &Location::Local(dir.path().to_path_buf())).unwrap();
        assert_eq!(
            l.bins["r/a"]["part_000000/000000.tar"],
            PerStream([Some(3), None, Some(2)])
        );
        assert_eq!(l.bins.len(), 1);
        assert_eq!(l.tar_bytes(), 5);
        assert!(l.others.contains_key("x/video/part_1/000000.tar"));
        assert!(l.others.contains_key("r/a/video/part_000000/000000.idx"));
    }
}
