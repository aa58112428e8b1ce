//! Which version directories a dataset tool reads, given what the user named: the output path
//! of a shard job (`--output-dataset-path`, holding one directory per annotation version) or
//! one version directory, local or on an object store.

use crate::error::ShardError;
use crate::storage::{Location, Storage};

use super::complete::{check, not_a_dataset, Completeness};

/// The version directories at `path`:
///
/// - with `version`, `path/<version>`, or `path` itself when it is that version's directory
///   (its last component is `version`);
/// - otherwise `path` when it is a dataset (or one being written), else every directory
///   directly below it that is one, in name order.
///
/// Fails, naming `path`, when neither holds a dataset.
pub fn resolve(
    storage: &Storage,
    path: &Location,
    version: Option<&str>,
) -> Result<Vec<Location>, ShardError> {
    let is_dataset = |loc: &Location| -> Result<bool, ShardError> {
        Ok(check(storage, loc)? != Completeness::NotADataset)
    };
    if let Some(v) = version {
        let named = path.to_string();
        let own = named.trim_end_matches('/').rsplit('/').next() == Some(v);
        if own && is_dataset(path)? {
            return Ok(vec![path.clone()]);
        }
        return Ok(vec![path.join(v)]);
    }
    if is_dataset(path)? {
        return Ok(vec![path.clone()]);
    }
    let subdirs = match storage.subdirs(path) {
        Ok(s) => s,
        // a path that does not exist is "not a dataset", as before
        Err(e) if e.not_found => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let mut versions = Vec::new();
    for name in subdirs {
        let loc = path.join(&name);
        if is_dataset(&loc)? {
            versions.push(loc);
        }
    }
    if versions.is_empty() {
        return Err(ShardError::BadFile {
            location: path.to_string(),
            message: format!(
                "{}, nor is any directory below it (name a shard job's output path or one of its version directories)",
                not_a_dataset(path).trim_start_matches(&format!("{path}: "))
            ),
        });
    }
    Ok(versions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StorageOptions;

    fn dataset(dir: &std::path::Path) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(crate::layout::WDINFO_LIST), b"").unwrap();
    }

    #[test]
    fn output_path_version_dir_and_named_version() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        dataset(&out.join("v1"));
        dataset(&out.join("v0"));
        std::fs::create_dir_all(out.join("logs")).unwrap();
        let storage = Storage::new(StorageOptions::default());
        let loc = |p: &std::path::Path| Location::Local(p.to_path_buf());
        // the output path: every version below it, in name order
        assert_eq!(
            resolve(&storage, &loc(&out), None).unwrap(),
            vec![loc(&out.join("v0")), loc(&out.join("v1"))]
        );
        // a version directory: itself
        assert_eq!(
            resolve(&storage, &loc(&out.join("v1")), None).unwrap(),
            vec![loc(&out.join("v1"))]
        );
        // --annotation-version from the output path, or from the version directory itself
        assert_eq!(
            resolve(&storage, &loc(&out), Some("v1")).unwrap(),
            vec![loc(&out.join("v1"))]
        );
        assert_eq!(
            resolve(&storage, &loc(&out.join("v1")), Some("v1")).unwrap(),
            vec![loc(&out.join("v1"))]
        );
        // nothing there: an error naming the path
        let e = resolve(&storage, &loc(&out.join("logs")), None).unwrap_err();
        assert!(e.to_string().contains("logs"), "{e}");
        assert!(e.to_string().contains("not a dataset"), "{e}");
        let e = resolve(&storage, &loc(&tmp.path().join("missing")), None).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }
}
