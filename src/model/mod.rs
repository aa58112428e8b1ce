//! Text encoders.
