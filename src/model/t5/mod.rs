//! T5 encoder (Hugging Face `T5EncoderModel`) in Burn: config, modules, checkpoint loader
//! (the mapping of Hugging Face tensor names), tokenizer, and [`T5TextEncoder`], which puts
//! them behind the [`crate::model::TextEncoder`] trait.
//!
//! The same code runs UMT5 (`UMT5EncoderModel`, `model_type: "umt5"` in `config.json`, e.g.
//! google/umt5-xxl): its math is T5 v1.1's except that every layer owns a relative position
//! bias table and computes its own bias ([`ModelType`]); tensor names, norms, the unscaled
//! attention, fp16 handling and the tokenizer rules are T5's.

pub mod attention;
pub mod config;
pub mod encoder;
pub mod loader;
pub mod text_encoder;
pub mod tokenizer;

pub use attention::{relative_position_bucket, T5Attention};
pub use config::{FeedForwardProj, ModelType, T5Config};
pub use encoder::{SequenceRun, T5Block, T5Encoder, T5FeedForward, T5LayerNorm};
pub use loader::load_encoder;
pub use text_encoder::{load, BatchLayout, T5TextEncoder, PADDED_GROUP_TOKENS, PAD_MULTIPLE};
pub use tokenizer::{T5Tokenizer, MAX_TOKENS};
