//! Byte-exact output formats: the bytes Python's `json`, `pickle` + numpy < 2 and `csv`
//! modules write for the reference shard job, so that every reader of the reference's
//! output reads ours unchanged.
//!
//! - [`pyjson`]: Python-compatible JSON ([`PyValue`], [`parse`], [`dumps`],
//!   [`dumps_indent4`]), for the metadata members and summaries.
//! - [`npy_pickle`]: `pickle.dumps(list_of_float16_arrays, protocol=4)` as numpy 1.x writes
//!   it, for the `t5_xxl` members ([`write_array_list`], [`read_array_list`]).
//! - [`predict25`]: the `.json` and `.pickle` members of the cosmos-predict2.5 layout.
//! - [`wdinfo`]: the per-bin `wdinfo.json` and the `wdinfo_list.csv` summary.
//! - [`sha256sums`]: the version's `SHA256SUMS` manifest, as `sha256sum` writes and checks it.

pub mod npy_pickle;
pub mod predict25;
#[cfg(test)]
mod proptests;
pub mod pyjson;
pub mod sha256sums;
#[cfg(test)]
pub(crate) mod test_python;
pub mod wdinfo;

pub use npy_pickle::{
    read_array_list, write_array_list, AsF16Array, F16Array, F16ArrayRef, PickleError,
};
pub use pyjson::{dumps, dumps_indent4, parse, PyJsonError, PyValue};
pub use wdinfo::{wdinfo_list_csv, WdInfo};
