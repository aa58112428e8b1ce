//! Pure rules of the shard job (SPEC §2–§4): listing order, bins, greedy tar grouping and the
//! names of parts and tars. No I/O and no timely types, so everything here is unit-tested
//! exhaustively.

pub mod bins;
pub mod key;
pub mod listing;
pub mod tars;

pub use bins::{BinSpec, ClipDims};
pub use key::check_key;
pub use listing::listing_order;
pub use tars::{group_tars, group_tars_dropping, tar_rel_path, TarGroup, TarGrouper};
