//! `finalize`: gathers every finished tar triple on worker 0, then writes the per-bin
//! `wdinfo.json` and the version's `wdinfo_list.csv` (SPEC §7), and the version's
//! `SHA256SUMS` when every tar's checksum is known.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::Stream;

use crate::dataset::index::{wids_index_json, WidsShard};
use crate::error::ShardError;
use crate::formats::sha256sums::{render, Entry, SHA256SUMS};
use crate::formats::wdinfo::{wdinfo_list_csv, WdInfo};
use crate::layout;
use crate::record::{BinWritten, TarDone, TarId};
use crate::storage::{Location, Storage};

/// Writes the dataset summaries.
#[derive(Clone, Debug)]
pub struct Finalizer {
    /// Writes the files (output credentials).
    pub storage: Storage,
    /// `<output>/<version>`.
    pub version_dir: Location,
    /// The same directory as `wdinfo.json`'s `root` names it: the path as the user wrote it,
    /// or the key prefix without bucket.
    pub root_version_dir: String,
    /// The same directory as the user wrote it (with scheme and bucket): `wdinfo_list.csv`
    /// rows start with it.
    pub display_version_dir: String,
    /// `chunk_size` in `wdinfo.json`: tars per part.
    pub max_tars_per_part: u32,
    /// Write a wids `shardindex.json` per bin and stream (`--index wids`).
    pub wids_index: bool,
    /// The dataset's stream names.
    pub names: layout::StreamNames,
}

impl Finalizer {
    /// Writes `wdinfo.json` for every bin of `plan` (in plan order), then `wdinfo_list.csv`;
    /// refuses when a planned tar is not among `done`. Each file appears whole or not at all (temporary name and
    /// rename, or one PUT).
    pub fn finish(
        &self,
        plan: &[(String, Vec<TarId>)],
        done: &[TarDone],
    ) -> Result<Vec<BinWritten>, ShardError> {
        let by_tar: HashMap<&TarId, &TarDone> = done.iter().map(|d| (&d.tar, d)).collect();
        // a tar that never reported (its samples were lost to a failure in another process)
        // must not be left out of a summary that claims the dataset is complete
        let missing: Vec<&TarId> = plan
            .iter()
            .flat_map(|(_, tars)| tars)
            .filter(|t| !by_tar.contains_key(t))
            .collect();
        if let Some(first) = missing.first() {
            return Err(ShardError::TarsIncomplete {
                missing: missing.len(),
                first: format!("{}/{}", first.bin, first.rel_path()),
            });
        }
        self.write_sha256sums(plan, &by_tar)?;
        let mut written = Vec::new();
        let mut rows = Vec::new();
        for (bin, tars) in plan {
            let finished: Vec<&TarDone> =
                tars.iter().filter_map(|t| by_tar.get(t).copied()).collect();
            if finished.is_empty() {
                continue;
            }
            let mut data_list: Vec<String> = finished.iter().map(|d| d.tar.rel_path()).collect();
            data_list.sort();
            let samples = finished.iter().map(|d| d.samples).sum();
            let info = WdInfo {
                names: self.names,
                chunk_size: self.max_tars_per_part as usize,
                data_list: data_list.clone(),
                root: format!("{}/{bin}", self.root_version_dir),
                total_key_count: samples,
            };
            if self.wids_index {
                self.write_wids(bin, &finished)?;
            }
            self.storage.put(
                &self.version_dir.join(&layout::wdinfo_rel(bin)),
                info.to_json().as_bytes(),
            )?;
            rows.push(format!(
                "{}/{}",
                self.display_version_dir,
                layout::wdinfo_rel(bin)
            ));
            written.push(BinWritten {
                bin: bin.clone(),
                tars: data_list,
                samples,
            });
        }
        self.storage.put(
            &self.version_dir.join(layout::WDINFO_LIST),
            wdinfo_list_csv(&rows).as_bytes(),
        )?;
        Ok(written)
    }
}

impl Finalizer {
    /// `<version>/SHA256SUMS` for every tar of `plan`, before `wdinfo_list.csv`, so a dataset
    /// whose summaries are complete has its manifest. When a tar's checksum is unknown (a
    /// triple kept or copied from a version written before checksums were kept) no manifest
    /// is written and an earlier one is removed, since it would not describe this version:
    /// `shardflow index` writes it then.
    fn write_sha256sums(
        &self,
        plan: &[(String, Vec<TarId>)],
        by_tar: &HashMap<&TarId, &TarDone>,
    ) -> Result<(), ShardError> {
        let mut entries = Vec::new();
        for d in plan.iter().flat_map(|(_, tars)| tars).map(|t| by_tar[t]) {
            for (stream, sha) in d.sha256.iter() {
                let Some(sha) = sha else {
                    tracing::warn!(
                        "{}: no checksum recorded for {}/{} ({}): {} not written; `shardflow index` writes it",
                        self.version_dir,
                        d.tar.bin,
                        d.tar.rel_path(),
                        self.names.name(stream),
                        SHA256SUMS
                    );
                    self.storage.delete(&self.version_dir.join(SHA256SUMS))?;
                    return Ok(());
                };
                entries.push(Entry {
                    path: self.names.tar_rel(&d.tar.bin, stream, &d.tar.rel_path()),
                    sha256: sha.clone(),
                });
            }
        }
        self.storage.put(
            &self.version_dir.join(SHA256SUMS),
            render(&entries).as_bytes(),
        )?;
        Ok(())
    }

    /// `<bin>/<stream>/shardindex.json` for each stream, from the completion records.
    fn write_wids(&self, bin: &str, finished: &[&TarDone]) -> Result<(), ShardError> {
        for stream in crate::layout::Stream::ALL {
            let shards = finished
                .iter()
                .map(|d| WidsShard {
                    url: d.tar.rel_path(),
                    nsamples: d.samples,
                    filesize: d.contents.as_ref().map_or(0, |c| c.sizes[stream]),
                })
                .collect();
            self.storage.put(
                &self
                    .version_dir
                    .join(&self.names.shardindex_rel(bin, stream)),
                wids_index_json(shards).as_bytes(),
            )?;
        }
        Ok(())
    }
}

/// The collecting half of `finalize`.
pub trait CollectDone {
    /// Sends every [`TarDone`] to worker 0 and appends it to `sink` there.
    fn collect_done(self, sink: Rc<RefCell<Vec<TarDone>>>);
}

impl CollectDone for Stream<'_, u64, Vec<TarDone>> {
    fn collect_done(self, sink: Rc<RefCell<Vec<TarDone>>>) {
        self.sink(
            Exchange::new(|_: &TarDone| 0),
            "CollectDone",
            move |(input, _frontier)| {
                input.for_each(|_cap, data| sink.borrow_mut().append(data));
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar(bin: &str, order: u32, part: u32, t: u32) -> TarId {
        TarId {
            bin_order: order,
            bin: bin.into(),
            part,
            tar: t,
        }
    }

    fn done(t: TarId, samples: u64) -> TarDone {
        TarDone {
            tar: t,
            samples,
            bytes: 10,
            windows_embedded: 0,
            tokens_embedded: 0,
            rejects: vec![],
            error: None,
            resumed: false,
            ..Default::default()
        }
    }

    #[test]
    fn writes_wdinfo_per_bin_in_plan_order_and_csv() {
        let dir = tempfile::tempdir().unwrap();
        let f = Finalizer {
            storage: Storage::new(crate::storage::StorageOptions::default()),
            version_dir: Location::Local(dir.path().join("v0")),
            root_version_dir: "out/v0".into(),
            display_version_dir: "out/v0".into(),
            max_tars_per_part: 2,
            wids_index: false,
            names: Default::default(),
        };
        let plan = vec![
            (
                "B/x".to_string(),
                vec![
                    tar("B/x", 0, 0, 0),
                    tar("B/x", 0, 0, 1),
                    tar("B/x", 0, 1, 0),
                ],
            ),
            ("A/y".to_string(), vec![tar("A/y", 1, 0, 0)]),
            ("C/z".to_string(), vec![tar("C/z", 2, 0, 0)]),
        ];
        // given in any order; C/z never reported (lost with another process): no summary at all
        let mut finished = vec![
            done(tar("B/x", 0, 1, 0), 1),
            done(tar("A/y", 1, 0, 0), 4),
            done(tar("B/x", 0, 0, 0), 2),
            done(tar("B/x", 0, 0, 1), 3),
        ];
        let err = f.finish(&plan, &finished).unwrap_err().to_string();
        assert!(
            err.contains("1 planned tar triples did not complete")
                && err.contains("C/z/part_000000/000000.tar"),
            "{err}"
        );
        assert!(!dir.path().join("v0/wdinfo_list.csv").exists());
        assert!(!dir.path().join("v0/B/x/wdinfo.json").exists());
        // C/z completed, with no sample left (every clip rejected while writing)
        finished.push(done(tar("C/z", 2, 0, 0), 0));
        let bins = f.finish(&plan, &finished).unwrap();
        assert_eq!(
            bins.iter()
                .map(|b| (b.bin.as_str(), b.samples))
                .collect::<Vec<_>>(),
            [("B/x", 6), ("A/y", 4), ("C/z", 0)]
        );
        let wd = std::fs::read_to_string(dir.path().join("v0/B/x/wdinfo.json")).unwrap();
        let expect = WdInfo {
            names: Default::default(),
            chunk_size: 2,
            data_list: vec![
                "part_000000/000000.tar".into(),
                "part_000000/000001.tar".into(),
                "part_000001/000000.tar".into(),
            ],
            root: "out/v0/B/x".into(),
            total_key_count: 6,
        };
        assert_eq!(wd, expect.to_json());
        let csv = std::fs::read_to_string(dir.path().join("v0/wdinfo_list.csv")).unwrap();
        assert_eq!(
            csv,
            "out/v0/B/x/wdinfo.json\r\nout/v0/A/y/wdinfo.json\r\nout/v0/C/z/wdinfo.json\r\n"
        );
    }

    #[test]
    fn writes_sha256sums_only_when_every_tar_has_a_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let f = Finalizer {
            storage: Storage::new(crate::storage::StorageOptions::default()),
            version_dir: Location::Local(dir.path().join("v0")),
            root_version_dir: "out/v0".into(),
            display_version_dir: "out/v0".into(),
            max_tars_per_part: 2,
            wids_index: false,
            names: Default::default(),
        };
        let plan = vec![("b".to_string(), vec![tar("b", 0, 0, 1), tar("b", 0, 0, 0)])];
        let with_sums = |t: TarId, c: char| TarDone {
            sha256: crate::layout::PerStream::from_fn(|s| {
                Some(format!("{c}{}", s.name().len()).repeat(32))
            }),
            ..done(t, 1)
        };
        let finished = vec![
            with_sums(tar("b", 0, 0, 1), 'a'),
            with_sums(tar("b", 0, 0, 0), 'b'),
        ];
        f.finish(&plan, &finished).unwrap();
        let sums = dir.path().join("v0").join(SHA256SUMS);
        let text = std::fs::read_to_string(&sums).unwrap();
        let parsed = crate::formats::sha256sums::parse(&text).unwrap();
        let paths: Vec<&str> = parsed.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "b/metas/part_000000/000000.tar",
                "b/metas/part_000000/000001.tar",
                "b/t5_xxl/part_000000/000000.tar",
                "b/t5_xxl/part_000000/000001.tar",
                "b/video/part_000000/000000.tar",
                "b/video/part_000000/000001.tar",
            ]
        );
        assert_eq!(parsed[0].sha256, "b5".repeat(32));
        assert_eq!(parsed[3].sha256, "a6".repeat(32));
        // one tar without a checksum: no manifest, and the earlier one is gone
        let mut partly = finished.clone();
        partly[1].sha256[crate::layout::Stream::Metas] = None;
        f.finish(&plan, &partly).unwrap();
        assert!(!sums.exists());
        assert!(dir.path().join("v0/wdinfo_list.csv").exists());
    }

    #[test]
    fn dataflow_collects_on_worker_zero() {
        use std::sync::{Arc, Mutex};
        use timely::dataflow::operators::ToStream;
        let counts = Arc::new(Mutex::new(Vec::new()));
        let counts2 = counts.clone();
        timely::execute(timely::Config::process(3), move |worker| {
            let sink: Rc<RefCell<Vec<TarDone>>> = Rc::default();
            let me = worker.index() as u32;
            worker.dataflow::<u64, _, _>(|scope| {
                vec![done(tar("b", 0, 0, me), 1)]
                    .to_stream(scope)
                    .collect_done(sink.clone());
            });
            while worker.step_or_park(None) {}
            counts2.lock().unwrap().push((me, sink.borrow().len()));
        })
        .unwrap();
        let mut c = counts.lock().unwrap().clone();
        c.sort();
        assert_eq!(c, [(0, 3), (1, 0), (2, 0)]);
    }
}
