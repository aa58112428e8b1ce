//! Records flowing on the dataflow streams.
