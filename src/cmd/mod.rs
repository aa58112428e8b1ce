//! The binary's subcommands, one file each (`tools` holds the dataset tools `verify`,
//! `inspect` and `index`; `export` writes a dataset in another trainer's format; `bench` times a shard job on a
//! synthetic input; `demo` shards the sample built into the binary); `main.rs` parses the command line and dispatches here.

pub(crate) mod bench;
#[cfg(feature = "cuda")]
pub(crate) mod cuda_wheels;
pub(crate) mod demo;
pub(crate) mod encode;
pub(crate) mod export;
pub(crate) mod launch;
pub(crate) mod peer;
pub(crate) mod shard;
pub(crate) mod tools;
