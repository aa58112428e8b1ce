//! shardflow: a timely dataflow engine that turns a video splitting-pipeline output into
//! training-ready webdataset shards with T5 caption embeddings.
//!
//! Module map (data flows one way):
//! - [`layout`]: the dataset's streams ([`layout::Stream`]), values per stream and tar paths.
//! - [`record`]: what flows between operators and stages (clips, tar triples, plan summary).
//! - [`hash`]: the stable hash used for routing and content identity.
//! - [`input`]: listing the input's metadata files.
//! - [`config`]: command-line options → a validated [`config::ShardConfig`].
//! - [`spec`]: pure rules of the shard job (listing order, bins, greedy tar grouping, names).
//! - [`formats`]: byte-exact writers: Python `json.dumps`, numpy pickles, `wdinfo` files.
//! - [`model`]: the text-encoder trait and its T5 implementation in Burn (loader, tokenizer).
//! - [`ops`]: one timely operator per file, each wrapping a plain, unit-tested struct, and
//!   the [`ops::JobContext`] every operator of a job shares.
//! - [`job`]: the job runner: workers, signals, the connect timeout, summaries and report.
//! - [`dataflows`]: wiring of operators into jobs (`shard`, `changes`), run by [`job`]; no
//!   logic of their own.
//! - [`prepare`]: checks and loads before a job runs (output, earlier version, dedup tables).
//! - [`storage`]: local directories and object stores (S3) behind one blocking interface.
//! - [`incremental`]: `reshard` and `--append`: what changed between two versions (by
//!   differential dataflow), what to copy, which embeddings to reuse.
//! - [`dedup`]: the semantic-dedup pruning tables (parquet).
//! - [`dataset`]: tools for written datasets: DALI/wids indexes, `verify`, `inspect`.
//! - [`journal`]: the job's fingerprint and completed tars, for `--resume`.
//! - [`report`]: counts, stage timings and rejects; the JSON job report.

pub mod config;
#[path = "../dataflows/mod.rs"]
pub mod dataflows;
pub mod dataset;
pub mod dedup;
pub mod embed;
pub mod error;
pub mod formats;
pub mod hash;
pub mod incremental;
pub mod input;
pub mod job;
pub mod journal;
pub mod layout;
pub mod model;
pub mod ops;
pub mod prepare;
pub mod record;
pub mod report;
pub mod spec;
pub mod storage;
pub mod text;
