//! Listing the input: every file under `metas/<version>/`, recursively, in listing order
//! (SPEC §2.1); or, in summary mode (the later reference's), `metas/<version>/<uuid>.json`
//! for every clip uuid listed under a video's `clips` in `<input>/summary.json`, sorted the
//! same way. The `list` operator (`ops/list.rs`) emits it into the dataflow.

use crate::error::ShardError;
use crate::record::ListedFile;
use crate::spec::listing_order;
use crate::storage::{Location, SortedListing, Storage};

/// Lists a metadata directory, local or on an object store.
#[derive(Clone, Debug)]
pub struct Lister {
    root: Location,
    storage: Storage,
    summary: Option<Location>,
}

impl Lister {
    /// A lister of `root` (`<input>/metas/<version>`).
    pub fn new(storage: Storage, root: Location) -> Self {
        Lister {
            root,
            storage,
            summary: None,
        }
    }

    /// Lists the clips named by the splitting pipeline's `summary.json` at `summary` instead
    /// of scanning the directory.
    pub fn with_summary(mut self, summary: Location) -> Self {
        self.summary = Some(summary);
        self
    }

    /// The listing of `summary.json`: one entry per listed clip uuid (a uuid listed twice is
    /// listed twice, and becomes a duplicate reject); entries that are not safe file names are
    /// returned with `error` set.
    fn list_summary(&self, loc: &Location) -> Result<Vec<ListedFile>, ShardError> {
        let bytes = self.storage.read(loc).map_err(|e| {
            if e.not_found {
                ShardError::BadFile {
                    location: loc.to_string(),
                    message: "no such file; --listing summary reads the splitting pipeline's summary.json".into(),
                }
            } else {
                e.into()
            }
        })?;
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| ShardError::BadFile {
                location: loc.to_string(),
                message: format!("not valid JSON: {e}"),
            })?;
        let Some(videos) = value.as_object() else {
            return Err(ShardError::BadFile {
                location: loc.to_string(),
                message: "not a JSON object".into(),
            });
        };
        let mut names: Vec<String> = Vec::new();
        let mut errors: std::collections::HashMap<String, String> = Default::default();
        // like the reference: every video entry that is an object with a `clips` list
        for (video, entry) in videos {
            let Some(clips) = entry.get("clips").and_then(|c| c.as_array()) else {
                continue;
            };
            for c in clips {
                let (name, error) = match c.as_str() {
                    Some(uuid) => match crate::spec::check_key(uuid) {
                        Ok(()) => (format!("{uuid}.json"), None),
                        Err(why) => (
                            format!("{uuid}.json"),
                            Some(format!(
                                "summary.json lists clip {uuid:?} (video {video}), which {why}"
                            )),
                        ),
                    },
                    None => (
                        format!("{video}: {c}"),
                        Some(format!(
                            "summary.json lists {c} under video {video}, not a clip uuid"
                        )),
                    ),
                };
                if let Some(e) = error {
                    errors.insert(name.clone(), e);
                }
                names.push(name);
            }
        }
        listing_order(&mut names);
        Ok(names
            .into_iter()
            .enumerate()
            .map(|(seq, rel_path)| ListedFile {
                seq: seq as u64,
                size: 0,
                error: errors.get(&rel_path).cloned(),
                rel_path,
                failed: false,
            })
            .collect())
    }

    /// Every file below the root, sorted by relative path in byte order: the pages of
    /// [`Lister::pages`], gathered. Entries that cannot be listed (an unreadable
    /// subdirectory, a non-UTF-8 name) are returned with `error` set, so they are reported
    /// instead of silently missing.
    pub fn list(&self) -> Result<Vec<ListedFile>, ShardError> {
        let mut files = Vec::new();
        for page in self.pages(PAGE_SIZE) {
            files.extend(page?);
        }
        Ok(files)
    }

    /// The listing as it is read, in pages of up to `page_size` files in listing order, with
    /// their global `seq`. A local directory and an S3 prefix are listed as a stream (see
    /// [`Storage::list_sorted`]), so the first pages come before the whole input is listed;
    /// `summary.json` is one page. A missing root is an error on the first page; an error
    /// after that (the storage failed in the middle of the listing) ends the pages, and the
    /// files listed before it are not the whole input.
    pub fn pages(&self, page_size: usize) -> Pages {
        Pages {
            lister: self.clone(),
            listing: None,
            page_size: page_size.max(1),
            seq: 0,
            started: false,
            done: false,
        }
    }
}

/// Files per page of [`Lister::pages`] where the caller has no reason to choose: the page
/// size of S3's `ListObjectsV2`, so a page of an S3 listing costs about one request.
pub const PAGE_SIZE: usize = 1000;

/// The pages of a listing; see [`Lister::pages`].
pub struct Pages {
    lister: Lister,
    listing: Option<SortedListing>,
    page_size: usize,
    seq: u64,
    started: bool,
    done: bool,
}

impl Pages {
    /// Files handed out so far (the `seq` of the next one).
    pub fn listed(&self) -> u64 {
        self.seq
    }

    /// What is listed.
    pub fn root(&self) -> &Location {
        &self.lister.root
    }

    fn start(&mut self) -> Result<Option<Vec<ListedFile>>, ShardError> {
        if let Some(summary) = &self.lister.summary {
            // one page: sorting needs every uuid
            self.done = true;
            return self.lister.list_summary(summary).map(Some);
        }
        let listing = self
            .lister
            .storage
            .list_sorted(&self.lister.root)
            .map_err(|e| {
                if e.not_found {
                    ShardError::NoMetaDir(self.lister.root.to_string())
                } else {
                    ShardError::Storage(e)
                }
            })?;
        self.listing = Some(listing);
        Ok(None)
    }
}

impl Iterator for Pages {
    type Item = Result<Vec<ListedFile>, ShardError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if !self.started {
            self.started = true;
            match self.start() {
                Ok(None) => {}
                Ok(Some(page)) => {
                    self.seq = page.len() as u64;
                    return (!page.is_empty()).then_some(Ok(page));
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        let listing = self.listing.as_mut()?;
        match listing.next_page(self.page_size) {
            Err(e) => {
                self.done = true;
                Some(Err(ShardError::Storage(e)))
            }
            Ok(page) if page.is_empty() => {
                self.done = true;
                None
            }
            Ok(page) => {
                let first = self.seq;
                self.seq += page.len() as u64;
                Some(Ok(page
                    .into_iter()
                    .zip(first..)
                    .map(|(l, seq)| ListedFile {
                        seq,
                        rel_path: l.rel,
                        size: l.size,
                        error: l.error,
                        failed: false,
                    })
                    .collect()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StorageOptions;

    fn local(p: impl Into<std::path::PathBuf>) -> Lister {
        Lister::new(
            Storage::new(StorageOptions::default()),
            Location::Local(p.into()),
        )
    }

    #[test]
    fn lists_recursively_in_byte_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("ab")).unwrap();
        for f in ["ab/c.json", "ab-c.json", "b.txt", "a.json"] {
            std::fs::write(root.join(f), b"{}").unwrap();
        }
        let got: Vec<String> = local(root)
            .list()
            .unwrap()
            .into_iter()
            .map(|f| f.rel_path)
            .collect();
        assert_eq!(got, ["a.json", "ab-c.json", "ab/c.json", "b.txt"]);
    }

    #[test]
    fn summary_lists_the_clips_of_every_video_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let summary = dir.path().join("summary.json");
        std::fs::write(
            &summary,
            r#"{"num_input_videos": 2,
                "b.mp4": {"source_video": "b.mp4", "clips": ["u2", "u1"], "filtered_clips": ["u9"]},
                "a.mp4": {"source_video": "a.mp4", "processed": false},
                "c.mp4": {"clips": ["u0", "../x", 7, "u1"]}}"#,
        )
        .unwrap();
        let files = local(dir.path().join("metas/v0"))
            .with_summary(Location::Local(summary.clone()))
            .list()
            .unwrap();
        let names: Vec<(&str, bool)> = files
            .iter()
            .map(|f| (f.rel_path.as_str(), f.error.is_some()))
            .collect();
        assert_eq!(
            names,
            [
                ("../x.json", true),
                ("c.mp4: 7", true),
                ("u0.json", false),
                ("u1.json", false),
                ("u1.json", false),
                ("u2.json", false)
            ]
        );
        assert!(files.iter().enumerate().all(|(i, f)| f.seq == i as u64));
        std::fs::write(&summary, b"[1]").unwrap();
        let lister = local(dir.path()).with_summary(Location::Local(summary.clone()));
        assert!(lister
            .list()
            .unwrap_err()
            .to_string()
            .contains("not a JSON object"));
        std::fs::remove_file(&summary).unwrap();
        assert!(lister
            .list()
            .unwrap_err()
            .to_string()
            .contains("no such file"));
    }

    #[test]
    fn pages_are_the_listing_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("ab/x")).unwrap();
        for f in [
            "ab/c.json",
            "ab-c.json",
            "b.txt",
            "a.json",
            "ab/x/y",
            "ab.json",
            "ab0",
        ] {
            std::fs::write(root.join(f), f.as_bytes()).unwrap();
        }
        let lister = local(root);
        let all = lister.list().unwrap();
        assert_eq!(all.len(), 7);
        assert!(all.iter().enumerate().all(|(i, f)| f.seq == i as u64));
        for n in [1, 2, 3, 7, 1000] {
            let pages: Vec<Vec<ListedFile>> = lister.pages(n).map(Result::unwrap).collect();
            assert!(pages.iter().all(|p| !p.is_empty() && p.len() <= n), "{n}");
            assert_eq!(pages.len(), all.len().div_ceil(n), "{n}");
            assert_eq!(pages.concat(), all, "pages of {n}");
        }
        // an empty directory: no page
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(local(empty.path()).pages(2).count(), 0);
    }

    #[test]
    fn a_listing_failing_midway_ends_the_pages_with_an_error() {
        let storage = Storage::new(StorageOptions::default());
        storage.serve_listing_that_fails("flaky", &["m/a.json", "m/b.json"]);
        let lister = Lister::new(storage, Location::parse("s3://flaky/m").unwrap());
        let mut pages = lister.pages(2);
        let first = pages.next().unwrap().unwrap();
        assert_eq!(first.len(), 2);
        let err = pages.next().unwrap().unwrap_err();
        assert!(
            matches!(&err, ShardError::Storage(e) if e.is_transient()),
            "{err}"
        );
        assert_eq!(pages.listed(), 2);
        assert!(pages.next().is_none());
        assert!(lister.list().is_err());
    }

    #[test]
    fn missing_root_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = local(dir.path().join("nope")).list().unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
