//! T5 encoder (Hugging Face `T5EncoderModel`) in Burn: config, modules, checkpoint loader and
//! tokenizer.

pub mod attention;
pub mod config;
pub mod encoder;
pub mod loader;
pub mod tokenizer;
pub mod weights;

pub use attention::{relative_position_bucket, T5Attention};
pub use config::{FeedForwardProj, T5Config};
pub use encoder::{SequenceRun, T5Block, T5Encoder, T5FeedForward, T5LayerNorm};
pub use loader::load_encoder;
pub use tokenizer::{T5Tokenizer, MAX_TOKENS};
pub use weights::{Weights, WEIGHT_FILES};
