//! All integration tests, as one test binary (`cargo test --test integration`), so that the
//! heavy dependencies (burn, object_store, parquet) are linked once. Each module was its own
//! binary before; a test keeps its name as `<module>::<test>`, so one file's tests run with
//! e.g. `cargo test --test integration s3::`.

mod common;

mod architecture;
mod azure;
mod bench;
mod checksums;
mod cli;
mod cluster;
mod dataset_tools;
mod demo;
mod export;
mod gcs;
mod hosts;
mod layout;
mod memory;
mod metrics;
mod options;
mod oracle;
mod outage;
mod reshard;
mod resume;
mod s3;
mod t5_parity;
mod umt5;
