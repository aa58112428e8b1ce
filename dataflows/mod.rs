//! Jobs, each a wiring of [`crate::ops`] run by the [`crate::job`] runner; no logic of their
//! own.

pub mod changes;
pub mod shard;
