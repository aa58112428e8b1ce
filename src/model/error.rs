//! Errors raised while loading a text encoder (config, weights, tokenizer).
//!
//! Every variant carries the path it concerns, so a message alone tells which file is wrong.
//! They are raised while loading (e.g. [`crate::model::t5::T5TextEncoder::load`]), before any
//! caption is encoded, or while fingerprinting a model directory.

use std::path::PathBuf;

/// A model directory that cannot be loaded, and why.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The requested device or precision cannot be used.
    #[error("{0}")]
    Unsupported(String),
    /// A required file (or the model directory itself) does not exist.
    #[error("missing {what}: {path}")]
    MissingFile {
        /// What the file is for ("model directory", "config file", "tokenizer file").
        what: &'static str,
        /// The path that was looked for.
        path: PathBuf,
    },

    /// The directory holds none of the supported weight files.
    #[error(
        "no weights in {dir}: expected model.safetensors, model.safetensors.index.json \
         (sharded), pytorch_model.bin, pytorch_model.bin.reduced or pytorch_model.bin.index.json"
    )]
    MissingWeights {
        /// The model directory.
        dir: PathBuf,
    },

    /// Reading a file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file being read.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// `config.json` (or a shard index) is not valid JSON of the expected form.
    #[error("invalid JSON in {path}: {source}")]
    Json {
        /// The file being parsed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },

    /// `config.json` parsed, but a value is out of range.
    #[error("invalid config {path}: {message}")]
    InvalidConfig {
        /// The config file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// `model_type` names an architecture this crate does not implement.
    #[error(
        "unsupported model_type {value:?} in {path}: expected \"t5\" (T5EncoderModel, \
         T5ForConditionalGeneration) or \"umt5\" (UMT5EncoderModel, \
         UMT5ForConditionalGeneration); a config.json without model_type is read as \"t5\""
    )]
    UnknownModelType {
        /// The config file.
        path: PathBuf,
        /// The value found.
        value: String,
    },

    /// `feed_forward_proj` names an activation this encoder does not implement.
    #[error(
        "unsupported feed_forward_proj {value:?} in {path}: expected \"relu\" (original T5) \
         or \"gated-gelu\" (T5 v1.1)"
    )]
    UnknownFeedForwardProj {
        /// The config file.
        path: PathBuf,
        /// The value found.
        value: String,
    },

    /// `tokenizer.json` cannot be loaded or lacks what T5 needs.
    #[error("tokenizer {path}: {message}")]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// A weight file is malformed (bad header, truncated data, unreadable pickle).
    #[error("invalid weight file {path}: {message}")]
    InvalidWeights {
        /// The weight file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// A tensor the encoder needs is not in the checkpoint.
    #[error("missing tensor {name:?} in {path}")]
    MissingTensor {
        /// The weight file, shard index or model directory that was searched.
        path: PathBuf,
        /// The Hugging Face name of the tensor (all accepted aliases, `|`-separated).
        name: String,
    },

    /// The checkpoint holds encoder tensors the configured encoder does not use (say
    /// `encoder.block.1.*` with `num_layers: 1`): `config.json` does not describe these
    /// weights, and encoding with part of them would silently give other embeddings.
    #[error(
        "{count} tensor(s) in {path} are not used by the encoder config.json describes \
         (does config.json match the weights? num_layers, feed_forward_proj), first: {}",
        .first.join(", ")
    )]
    UnusedTensors {
        /// The weight file or shard index.
        path: PathBuf,
        /// How many tensors are not used.
        count: usize,
        /// The first few of them, in name order.
        first: Vec<String>,
    },

    /// A tensor has a shape other than the config implies.
    #[error("tensor {name:?} in {path} has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        /// The weight file holding the tensor.
        path: PathBuf,
        /// The Hugging Face name of the tensor.
        name: String,
        /// The shape implied by `config.json` (Hugging Face layout).
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },

    /// A tensor is stored with an element type that is not F32, F16, BF16 or F64.
    #[error("tensor {name:?} in {path} has unsupported dtype {dtype}")]
    UnsupportedDtype {
        /// The weight file holding the tensor.
        path: PathBuf,
        /// The Hugging Face name of the tensor.
        name: String,
        /// The element type found.
        dtype: String,
    },
}
