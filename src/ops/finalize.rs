//! `finalize`: gathers every finished tar triple on worker 0, then writes the per-bin
//! `wdinfo.json` and the version's `wdinfo_list.csv` (SPEC §7).

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::Stream;

use crate::error::ShardError;
use crate::formats::wdinfo::{wdinfo_list_csv, WdInfo};
use crate::record::{TarDone, TarId};

/// Writes the dataset summaries.
#[derive(Clone, Debug)]
pub struct Finalizer {
    /// `<output>/<version>` on disk.
    pub version_dir: PathBuf,
    /// The same directory as the user named it (`root` and csv rows are written with it).
    pub display_version_dir: String,
    /// `chunk_size` in `wdinfo.json`: tars per part.
    pub max_tars_per_part: u32,
}

/// One bin as written.
#[derive(Clone, Debug, PartialEq)]
pub struct BinWritten {
    /// Bin path.
    pub bin: String,
    /// Tars, relative to `<bin>/video`, sorted.
    pub tars: Vec<String>,
    /// Samples written in the bin.
    pub samples: u64,
}

impl Finalizer {
    /// Writes `wdinfo.json` for every bin of `plan` (in plan order) that has a finished tar,
    /// then `wdinfo_list.csv`. Each file is written to a temporary name and renamed.
    pub fn finish(&self, plan: &[(String, Vec<TarId>)], done: &[TarDone]) -> Result<Vec<BinWritten>, ShardError> {
        let by_tar: HashMap<&TarId, &TarDone> = done.iter().map(|d| (&d.tar, d)).collect();
        let mut written = Vec::new();
        let mut rows = Vec::new();
        for (bin, tars) in plan {
            let finished: Vec<&TarDone> = tars.iter().filter_map(|t| by_tar.get(t).copied()).collect();
            if finished.is_empty() {
                continue;
            }
            let mut data_list: Vec<String> = finished.iter().map(|d| d.tar.rel_path()).collect();
            data_list.sort();
            let samples = finished.iter().map(|d| d.samples).sum();
            let root = format!("{}/{bin}", self.display_version_dir);
            let info = WdInfo {
                chunk_size: self.max_tars_per_part as usize,
                data_list: data_list.clone(),
                root: root.clone(),
                total_key_count: samples,
            };
            write_atomic(&self.version_dir.join(bin).join("wdinfo.json"), info.to_json().as_bytes())?;
            rows.push(format!("{root}/wdinfo.json"));
            written.push(BinWritten {
                bin: bin.clone(),
                tars: data_list,
                samples,
            });
        }
        write_atomic(&self.version_dir.join("wdinfo_list.csv"), wdinfo_list_csv(&rows).as_bytes())?;
        Ok(written)
    }
}

/// Writes a file completely under a temporary name, syncs it, then renames it into place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ShardError> {
    use std::io::Write;
    let dir = path.parent().expect("path has a parent");
    std::fs::create_dir_all(dir).map_err(|e| ShardError::io(dir, e))?;
    let name = path.file_name().expect("file name").to_string_lossy();
    let tmp = dir.join(format!(".{name}.partial"));
    let mut f = std::fs::File::create(&tmp).map_err(|e| ShardError::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| ShardError::io(&tmp, e))?;
    f.sync_all().map_err(|e| ShardError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| ShardError::io(path, e))
}

/// The collecting half of `finalize`.
pub trait CollectDone {
    /// Sends every [`TarDone`] to worker 0 and appends it to `sink` there.
    fn collect_done(self, sink: Rc<RefCell<Vec<TarDone>>>);
}

impl CollectDone for Stream<'_, u64, Vec<TarDone>> {
    fn collect_done(self, sink: Rc<RefCell<Vec<TarDone>>>) {
        self.sink(Exchange::new(|_: &TarDone| 0), "CollectDone", move |(input, _frontier)| {
            input.for_each(|_cap, data| sink.borrow_mut().append(data));
        });
    }
}
