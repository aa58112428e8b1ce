//! Jobs, each a wiring of [`crate::ops`]; no logic of their own.

pub mod shard;
