//! Random-access indexes of webdataset tars, in the formats their readers load:
//!
//! - DALI's `.idx` (format `v1.2`, as NVIDIA DALI's `tools/wds2idx.py` writes it): a first
//!   line `v1.2 <samples>`, then one line per sample holding, for each of its members,
//!   `<ext> <data offset> <size> <member name>`, space separated. A sample is a run of
//!   consecutive regular members with the same key (the name up to the first dot after the
//!   last `/`; the extension is the rest, without the dot); offsets point at the member's data
//!   (its header + 512), so they are multiples of 512, which DALI checks.
//! - wids' `shardindex.json` (`wids-shard-index-v1`): `{"__kind__", "wids_version": 1,
//!   "shardlist": [{"url", "nsamples", "filesize"}]}`, urls relative to the index file.

use std::io::Read;

use serde::Serialize;

/// One member of a sample: `(ext, data offset, size, name)`.
type Component = (String, u64, u64, String);

/// A DALI index being built, member by member, in tar order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DaliIndex {
    /// Per sample: its key and its members `(ext, offset, size, name)`.
    samples: Vec<(String, Vec<Component>)>,
}

/// `(key, ext)` of a member name, as `wds2idx.py` splits it.
pub fn split_name(name: &str) -> (&str, &str) {
    let start = name.rfind('/').map_or(0, |i| i + 1);
    match name[start..].find('.') {
        Some(i) => (&name[..start + i], &name[start + i + 1..]),
        None => (name, ""),
    }
}

impl DaliIndex {
    /// Adds a regular member whose data starts at `offset` and is `size` bytes long.
    pub fn push(&mut self, name: &str, offset: u64, size: u64) {
        let (key, ext) = split_name(name);
        // wds2idx.py skips hidden files and names without a key
        if key.is_empty() || key.ends_with('/') {
            return;
        }
        let member = (ext.to_string(), offset, size, name.to_string());
        match self.samples.last_mut() {
            Some((k, members)) if k == key => members.push(member),
            _ => self.samples.push((key.to_string(), vec![member])),
        }
    }

    /// Number of samples.
    pub fn samples(&self) -> usize {
        self.samples.len()
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        let mut out = format!("v1.2 {}\n", self.samples.len());
        for (_, members) in &self.samples {
            let line: Vec<String> = members
                .iter()
                .map(|(ext, off, size, name)| format!("{ext} {off} {size} {name}"))
                .collect();
            out.push_str(&line.join(" "));
            out.push('\n');
        }
        out
    }
}

/// A reader or writer that counts the bytes through it.
#[derive(Debug)]
pub struct Counting<T> {
    inner: T,
    /// Bytes so far.
    pub count: u64,
}

impl<T> Counting<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> Self {
        Counting { inner, count: 0 }
    }

    /// The wrapped value.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: Read> Read for Counting<T> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

impl<T: std::io::Write> std::io::Write for Counting<T> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// One shard of a wids index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WidsShard {
    /// The tar, relative to the index file.
    pub url: String,
    /// Samples in it.
    pub nsamples: u64,
    /// Its size in bytes.
    pub filesize: u64,
}

/// A `shardindex.json` (shards sorted by url, as `widsindex` writes them).
pub fn wids_index_json(mut shards: Vec<WidsShard>) -> String {
    #[derive(Serialize)]
    struct Index {
        __kind__: &'static str,
        wids_version: u32,
        shardlist: Vec<WidsShard>,
    }
    shards.sort_by(|a, b| a.url.cmp(&b.url));
    let index = Index {
        __kind__: "wids-shard-index-v1",
        wids_version: 1,
        shardlist: shards,
    };
    serde_json::to_string_pretty(&index).expect("serialises") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_at_the_first_dot_of_the_last_component() {
        assert_eq!(split_name("abc.mp4"), ("abc", "mp4"));
        assert_eq!(split_name("d.x/abc.def.mp4"), ("d.x/abc", "def.mp4"));
        assert_eq!(split_name("noext"), ("noext", ""));
        assert_eq!(split_name("d/.hidden"), ("d/", "hidden"));
    }

    #[test]
    fn an_index_read_from_a_tar_points_at_the_data() {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in [
            ("k1.mp4", &b"0123456789"[..]),
            ("k1.json", b"{}"),
            ("k2.mp4", &[7u8; 700][..]),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o444);
            b.append_data(&mut h, name, data).unwrap();
        }
        let bytes = b.into_inner().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.tar");
        std::fs::write(&path, &bytes).unwrap();
        let storage = crate::storage::Storage::new(Default::default());
        let (index, size, sha256) =
            crate::dataset::reindex::index_tar(&storage, &crate::storage::Location::Local(path))
                .unwrap();
        assert_eq!(size, bytes.len() as u64);
        assert_eq!(sha256, crate::hash::sha256_of(&bytes[..]).unwrap());
        assert_eq!(
            index.to_text(),
            "v1.2 2\nmp4 512 10 k1.mp4 json 1536 2 k1.json\nmp4 2560 700 k2.mp4\n"
        );
        assert_eq!(&bytes[512..522], b"0123456789");
        assert_eq!(&bytes[2560..2567], &[7u8; 7]);
    }

    #[test]
    fn wids_index_is_sorted_and_versioned() {
        let text = wids_index_json(vec![
            WidsShard {
                url: "part_000001/000000.tar".into(),
                nsamples: 2,
                filesize: 10240,
            },
            WidsShard {
                url: "part_000000/000000.tar".into(),
                nsamples: 3,
                filesize: 20480,
            },
        ]);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["__kind__"], "wids-shard-index-v1");
        assert_eq!(v["wids_version"], 1);
        assert_eq!(v["shardlist"][0]["url"], "part_000000/000000.tar");
        assert_eq!(v["shardlist"][1]["nsamples"], 2);
    }
}
