//! `verify --checksums`: every tar listed in the version's `SHA256SUMS` is hashed, and every
//! mismatch is named (path, expected, actual); a tar of the dataset that the manifest does not
//! list is a problem too, and so is a dataset without a manifest. Tars are hashed on the read
//! that checks their structure ([`super::VerifyOptions::checksums`]); only a listed tar that
//! read did not finish is read again here.

use std::collections::{BTreeMap, BTreeSet};

use crate::dataset::layout::Layout;
use crate::dataset::par_map;
use crate::error::ShardError;
use crate::formats::sha256sums::{parse, SHA256SUMS};
use crate::storage::{Location, Storage};

use super::Problem;

/// What the checksum pass found.
#[derive(Clone, Debug, Default)]
pub struct ChecksumCheck {
    /// Tars hashed.
    pub tars: u64,
    /// Bytes read here (those of tars the structural read could not hash).
    pub bytes: u64,
    /// Every problem found.
    pub problems: Vec<Problem>,
}

/// Compares every tar `root`'s manifest lists with its SHA-256: from `hashed` (path relative
/// to `root` → digest, as [`super::verify`] computed them), else read here, `threads` in
/// parallel.
pub fn check_checksums(
    storage: &Storage,
    root: &Location,
    threads: usize,
    hashed: &BTreeMap<String, String>,
) -> Result<ChecksumCheck, ShardError> {
    let mut out = ChecksumCheck::default();
    let problem = |path: &str, message: String| Problem {
        path: path.to_string(),
        message,
    };
    let text = match storage.read(&root.join(SHA256SUMS)) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) if e.not_found => {
            out.problems.push(problem(
                SHA256SUMS,
                "missing: checksums cannot be verified (the dataset was written without them; `shardflow index` writes the manifest from the tars as they are now)".into(),
            ));
            return Ok(out);
        }
        Err(e) => return Err(e.into()),
    };
    let entries = match parse(&text) {
        Ok(entries) => entries,
        Err(e) => {
            out.problems
                .push(problem(SHA256SUMS, format!("unreadable: {e}")));
            return Ok(out);
        }
    };
    let listed: BTreeSet<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    let layout = Layout::discover(storage, root)?;
    for (bin, tars) in &layout.bins {
        for (tar, sizes) in tars {
            for (stream, size) in sizes.iter() {
                let path = layout.names.tar_rel(bin, stream, tar);
                if size.is_some() && !listed.contains(path.as_str()) {
                    out.problems
                        .push(problem(&path, format!("not listed in {SHA256SUMS}")));
                }
            }
        }
    }
    let results = par_map(&entries, threads, |e| {
        // a manifest is input: it names files below the dataset, nothing else
        if e.path.starts_with('/') || e.path.split('/').any(|c| c == ".." || c.is_empty()) {
            return Err(format!(
                "listed in {SHA256SUMS}, but not a path below the dataset"
            ));
        }
        if let Some(actual) = hashed.get(&e.path) {
            return Ok((actual.clone(), 0));
        }
        let at = root.join(&e.path);
        let r = storage
            .fetch(&at)
            .open()
            .map_err(|e| format!("listed in {SHA256SUMS}, but cannot be read: {}", e.message))?;
        let mut counted = crate::dataset::index::Counting::new(r.reader);
        let actual = crate::hash::sha256_of(&mut counted)
            .map_err(|e| format!("cannot be read to its end: {e}"))?;
        Ok((actual, counted.count))
    });
    for (e, r) in entries.iter().zip(results) {
        match r {
            Ok((actual, bytes)) => {
                out.tars += 1;
                out.bytes += bytes;
                if actual != e.sha256 {
                    out.problems.push(problem(
                        &e.path,
                        format!("checksum mismatch: expected {}, actual {actual}", e.sha256),
                    ));
                }
            }
            Err(message) => out.problems.push(problem(&e.path, message)),
        }
    }
    Ok(out)
}
