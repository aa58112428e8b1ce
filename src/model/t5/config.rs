//! [`T5Config`]: the encoder hyper-parameters read from a Hugging Face `config.json`.

use std::path::Path;

use burn::nn::{EmbeddingConfig, Initializer, LinearConfig};
use burn::prelude::*;
use serde::Deserialize;

use super::attention::T5Attention;
use super::encoder::T5LayerNormConfig;
use super::encoder::{T5Block, T5DenseActDense, T5DenseGatedActDense, T5Encoder, T5FeedForward};
use crate::model::ModelError;

/// The feed-forward variant of a T5 layer (`feed_forward_proj` in `config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedForwardProj {
    /// `"relu"`: original T5 (t5-small … t5-11b): `wo(relu(wi(x)))`.
    Relu,
    /// `"gated-gelu"`: T5 v1.1: `wo(gelu_new(wi_0(x)) * wi_1(x))`, tanh-approximated GELU.
    GatedGelu,
}

impl FeedForwardProj {
    /// Parses the `config.json` value; `None` for anything but `relu` and `gated-gelu`.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "relu" => Some(Self::Relu),
            "gated-gelu" => Some(Self::GatedGelu),
            _ => None,
        }
    }
}

/// Hyper-parameters of a T5 encoder, as Hugging Face's `T5Config` names them.
#[derive(Debug, Clone, PartialEq)]
pub struct T5Config {
    /// Width of the residual stream.
    pub d_model: usize,
    /// Width of one attention head (`num_heads * d_kv` need not equal `d_model`).
    pub d_kv: usize,
    /// Inner width of the feed-forward layer.
    pub d_ff: usize,
    /// Attention heads per layer.
    pub num_heads: usize,
    /// Encoder layers.
    pub num_layers: usize,
    /// Relative-position buckets (both directions together).
    pub relative_attention_num_buckets: usize,
    /// Distance beyond which all relative positions share the last bucket.
    pub relative_attention_max_distance: usize,
    /// Epsilon of the RMS layer norms.
    pub layer_norm_epsilon: f64,
    /// Feed-forward variant.
    pub feed_forward_proj: FeedForwardProj,
    /// Rows of the token embedding.
    pub vocab_size: usize,
}

/// `config.json` as written by `save_pretrained`; unknown keys are ignored.
#[derive(Debug, Deserialize)]
struct RawConfig {
    d_model: usize,
    d_kv: usize,
    d_ff: usize,
    num_heads: usize,
    num_layers: usize,
    #[serde(default = "default_num_buckets")]
    relative_attention_num_buckets: usize,
    #[serde(default = "default_max_distance")]
    relative_attention_max_distance: usize,
    #[serde(default = "default_epsilon")]
    layer_norm_epsilon: f64,
    #[serde(default = "default_feed_forward_proj")]
    feed_forward_proj: String,
    vocab_size: usize,
}

fn default_num_buckets() -> usize {
    32
}
fn default_max_distance() -> usize {
    128
}
fn default_epsilon() -> f64 {
    1e-6
}
fn default_feed_forward_proj() -> String {
    "relu".to_owned()
}

impl T5Config {
    /// Reads and validates `config.json` at `path`.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        if !path.is_file() {
            return Err(ModelError::MissingFile {
                what: "config file",
                path: path.to_owned(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_json(&text, path)
    }

    /// Parses and validates the text of a `config.json`; `path` is only used in errors.
    pub fn from_json(text: &str, path: &Path) -> Result<Self, ModelError> {
        let raw: RawConfig = serde_json::from_str(text).map_err(|source| ModelError::Json {
            path: path.to_owned(),
            source,
        })?;
        let feed_forward_proj =
            FeedForwardProj::parse(&raw.feed_forward_proj).ok_or_else(|| {
                ModelError::UnknownFeedForwardProj {
                    path: path.to_owned(),
                    value: raw.feed_forward_proj.clone(),
                }
            })?;
        let config = Self {
            d_model: raw.d_model,
            d_kv: raw.d_kv,
            d_ff: raw.d_ff,
            num_heads: raw.num_heads,
            num_layers: raw.num_layers,
            relative_attention_num_buckets: raw.relative_attention_num_buckets,
            relative_attention_max_distance: raw.relative_attention_max_distance,
            layer_norm_epsilon: raw.layer_norm_epsilon,
            feed_forward_proj,
            vocab_size: raw.vocab_size,
        };
        config
            .validate()
            .map_err(|message| ModelError::InvalidConfig {
                path: path.to_owned(),
                message,
            })?;
        Ok(config)
    }

    /// Checks the values the encoder relies on.
    fn validate(&self) -> Result<(), String> {
        let sizes = [
            ("d_model", self.d_model),
            ("d_kv", self.d_kv),
            ("d_ff", self.d_ff),
            ("num_heads", self.num_heads),
            ("num_layers", self.num_layers),
            ("vocab_size", self.vocab_size),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} must be positive"));
        }
        // Bidirectional bucketing halves the buckets, and half of those are exact.
        let max_exact = self.relative_attention_num_buckets / 4;
        if max_exact == 0 {
            return Err(format!(
                "relative_attention_num_buckets must be at least 4, got {}",
                self.relative_attention_num_buckets
            ));
        }
        if self.relative_attention_max_distance <= max_exact {
            return Err(format!(
                "relative_attention_max_distance ({}) must exceed relative_attention_num_buckets/4 ({max_exact})",
                self.relative_attention_max_distance
            ));
        }
        if !(self.layer_norm_epsilon.is_finite() && self.layer_norm_epsilon >= 0.0) {
            return Err(format!(
                "layer_norm_epsilon must be finite and non-negative, got {}",
                self.layer_norm_epsilon
            ));
        }
        Ok(())
    }

    /// Attention inner width, `num_heads * d_kv`.
    pub fn inner_dim(&self) -> usize {
        self.num_heads * self.d_kv
    }

    /// Builds an encoder with lazily initialised random weights (use
    /// [`super::load_encoder`] for a checkpoint). Layer norms start at one.
    pub fn init<B: Backend>(&self, device: &B::Device) -> T5Encoder<B> {
        let linear = |d_input: usize, d_output: usize| {
            LinearConfig::new(d_input, d_output)
                .with_bias(false)
                .init(device)
        };
        let norm = || T5LayerNormConfig::new(self.d_model, self.layer_norm_epsilon).init(device);
        let inner = self.inner_dim();
        let blocks = (0..self.num_layers)
            .map(|i| {
                let relative_attention_bias = (i == 0).then(|| {
                    EmbeddingConfig::new(self.relative_attention_num_buckets, self.num_heads)
                        .init(device)
                });
                let attention = T5Attention {
                    qkv: linear(self.d_model, 3 * inner),
                    o: linear(inner, self.d_model),
                    relative_attention_bias,
                    num_heads: self.num_heads,
                    d_kv: self.d_kv,
                    num_buckets: self.relative_attention_num_buckets,
                    max_distance: self.relative_attention_max_distance,
                };
                let feed_forward = match self.feed_forward_proj {
                    FeedForwardProj::Relu => T5FeedForward::Relu(T5DenseActDense {
                        wi: linear(self.d_model, self.d_ff),
                        wo: linear(self.d_ff, self.d_model),
                    }),
                    FeedForwardProj::GatedGelu => T5FeedForward::GatedGelu(T5DenseGatedActDense {
                        wi: linear(self.d_model, 2 * self.d_ff),
                        wo: linear(self.d_ff, self.d_model),
                    }),
                };
                T5Block {
                    attention_norm: norm(),
                    attention,
                    feed_forward_norm: norm(),
                    feed_forward,
                }
            })
            .collect();
        T5Encoder {
            embed_tokens: EmbeddingConfig::new(self.vocab_size, self.d_model)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: 1.0,
                })
                .init(device),
            blocks,
            final_layer_norm: norm(),
        }
    }
}
