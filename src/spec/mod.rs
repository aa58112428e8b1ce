//! Pure rules of the shard job.
