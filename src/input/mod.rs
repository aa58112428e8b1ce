//! The job's input, below the operators: what to read.

pub mod list;

pub use list::{Lister, Pages, PAGE_SIZE};
