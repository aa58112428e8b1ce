//! Byte-exact output formats.
