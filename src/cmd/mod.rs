//! The binary's subcommands, one file each (`tools` holds the dataset tools `verify`,
//! `inspect` and `index`); `main.rs` parses the command line and dispatches here.

pub(crate) mod encode;
pub(crate) mod launch;
pub(crate) mod peer;
pub(crate) mod shard;
pub(crate) mod tools;
