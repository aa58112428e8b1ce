//! shardflow: a timely dataflow engine that turns a video splitting-pipeline output into
//! training-ready webdataset shards with T5 caption embeddings.
//!
//! Module map, in layers from the bottom; a module imports only from its own layer or below
//! (`tests/integration/architecture.rs` checks that no two top-level modules import each
//! other and that only `ops` and `dataflows` import operators):
//!
//! 1. Leaves: [`text`] (Python's whitespace, values shown in messages), [`hash`] (the stable
//!    hash for routing and content identity), [`spec`] (pure SPEC rules: listing order, bins,
//!    greedy tar grouping, names), [`storage`] (local directories and object stores behind one
//!    blocking interface, the output lock), [`model`] (the [`model::TextEncoder`] trait, T5 in
//!    Burn as its implementation, checkpoint reading), [`layout`] (the dataset's streams,
//!    [`layout::PerStream`], tar paths), [`formats`] (byte-exact `json.dumps`, numpy pickles,
//!    `wdinfo`), [`error`] (the library's typed errors).
//! 2. Records and settings: [`record`] (what flows between operators and stages),
//!    [`config`] (each option declared once → a validated [`config::ShardConfig`]),
//!    [`input`] (listing the input's metadata), [`report`] (counts, timings, the JSON
//!    report), [`metrics`] (live counters and their Prometheus endpoint), [`journal`] (job
//!    fingerprint and completed tars, for `--resume`).
//! 3. Job-level logic: [`dataset`] (indexes, `verify`, `inspect` of written datasets),
//!    [`incremental`] (`reshard` and `--append`: changes, copies, reuse), [`dedup`] (semantic
//!    dedup tables), [`prepare`] (checks and loads before a job runs), [`embed`], [`bench`]
//!    (`shardflow bench`'s synthetic input and figures).
//! 4. [`job`]: the runner every job shares (workers, the interrupt flag the binary's signal
//!    handlers raise turned into the job's failure, the connect timeout, summaries, report)
//!    and the [`job::JobContext`] operators receive.
//! 5. [`ops`]: one timely operator per file, each wrapping a plain, unit-tested struct.
//! 6. [`dataflows`]: jobs as wiring of operators (`shard`, `changes`), no logic of their own.

pub mod bench;
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
pub mod metrics;
pub mod model;
pub mod ops;
pub mod prepare;
pub mod record;
pub mod report;
pub mod spec;
pub mod storage;
pub mod text;
