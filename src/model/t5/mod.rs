//! T5 encoder (Hugging Face `T5EncoderModel`) in Burn: config, modules, checkpoint loader
//! (the mapping of Hugging Face tensor names), tokenizer, and [`T5TextEncoder`], which puts
//! them behind the [`crate::model::TextEncoder`] trait.

pub mod attention;
pub mod config;
pub mod encoder;
pub mod loader;
pub mod text_encoder;
pub mod tokenizer;

pub use attention::{relative_position_bucket, T5Attention};
pub use config::{FeedForwardProj, T5Config};
pub use encoder::{SequenceRun, T5Block, T5Encoder, T5FeedForward, T5LayerNorm};
pub use loader::load_encoder;
pub use text_encoder::{load, BatchLayout, T5TextEncoder, PADDED_GROUP_TOKENS, PAD_MULTIPLE};
pub use tokenizer::{T5Tokenizer, MAX_TOKENS};
