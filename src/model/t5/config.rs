//! [`T5Config`]: the encoder hyper-parameters read from a Hugging Face `config.json`, for
//! T5 and UMT5 ([`ModelType`]).

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

/// The architecture named by `model_type` in `config.json`.
///
/// Both run the same modules; they differ only in where the relative position bias tables
/// are (see [`ModelType::bias_in_every_layer`]) and in the default of `feed_forward_proj`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelType {
    /// `"t5"` (Hugging Face `T5EncoderModel` / `T5ForConditionalGeneration`). Also what a
    /// `config.json` without `model_type` is read as, as it always was here:
    /// `save_pretrained` always writes the key, so only hand-written configs lack it.
    T5,
    /// `"umt5"` (Hugging Face `UMT5EncoderModel` / `UMT5ForConditionalGeneration`, e.g.
    /// google/umt5-xxl, the text encoder of Wan and of cosmos-predict2.5).
    Umt5,
}

impl ModelType {
    /// Parses the `config.json` value; `None` for anything but `t5` and `umt5`.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "t5" => Some(Self::T5),
            "umt5" => Some(Self::Umt5),
            _ => None,
        }
    }

    /// The `config.json` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::T5 => "t5",
            Self::Umt5 => "umt5",
        }
    }

    /// Whether every layer has its own relative position bias table (UMT5), rather than the
    /// first layer computing one bias that all layers share (T5).
    pub fn bias_in_every_layer(self) -> bool {
        self == Self::Umt5
    }

    /// `feed_forward_proj` when `config.json` omits it (the Hugging Face config defaults).
    fn default_feed_forward_proj(self) -> &'static str {
        match self {
            Self::T5 => "relu",
            Self::Umt5 => "gated-gelu",
        }
    }
}

/// Hyper-parameters of a T5 or UMT5 encoder, as Hugging Face's `T5Config` names them.
#[derive(Debug, Clone, PartialEq)]
pub struct T5Config {
    /// The architecture (`model_type`).
    pub model_type: ModelType,
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
    #[serde(default)]
    model_type: Option<String>,
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
    #[serde(default)]
    feed_forward_proj: Option<String>,
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
        let model_type = match &raw.model_type {
            None => ModelType::T5,
            Some(value) => ModelType::parse(value).ok_or_else(|| ModelError::UnknownModelType {
                path: path.to_owned(),
                value: value.clone(),
            })?,
        };
        let feed_forward_proj = raw
            .feed_forward_proj
            .as_deref()
            .unwrap_or(model_type.default_feed_forward_proj());
        let feed_forward_proj = FeedForwardProj::parse(feed_forward_proj).ok_or_else(|| {
            ModelError::UnknownFeedForwardProj {
                path: path.to_owned(),
                value: feed_forward_proj.to_owned(),
            }
        })?;
        let config = Self {
            model_type,
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
                let own_table = i == 0 || self.model_type.bias_in_every_layer();
                let relative_attention_bias = own_table.then(|| {
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

#[cfg(test)]
mod tests {
    use super::*;

    const SIZES: &str = r#""d_model": 8, "d_kv": 2, "d_ff": 16, "num_heads": 4, "num_layers": 2,
        "vocab_size": 100"#;

    fn parse(extra: &str) -> Result<T5Config, ModelError> {
        let text = format!("{{{SIZES}{extra}}}");
        T5Config::from_json(&text, Path::new("/models/x/config.json"))
    }

    #[test]
    fn model_type_selects_the_architecture_and_its_defaults() {
        let t5 = parse(r#", "model_type": "t5""#).unwrap();
        assert_eq!(t5.model_type, ModelType::T5);
        assert_eq!(t5.feed_forward_proj, FeedForwardProj::Relu);
        let umt5 = parse(r#", "model_type": "umt5""#).unwrap();
        assert_eq!(umt5.model_type, ModelType::Umt5);
        assert!(umt5.model_type.bias_in_every_layer() && !t5.model_type.bias_in_every_layer());
        // HF UMT5Config defaults to gated-gelu, T5Config to relu
        assert_eq!(umt5.feed_forward_proj, FeedForwardProj::GatedGelu);
        let relu = parse(r#", "model_type": "umt5", "feed_forward_proj": "relu""#).unwrap();
        assert_eq!(relu.feed_forward_proj, FeedForwardProj::Relu);
        // no model_type: T5, as before model types were read
        assert_eq!(parse("").unwrap(), t5);
    }

    #[test]
    fn an_unknown_model_type_is_an_error_naming_the_file() {
        let err = parse(r#", "model_type": "bert""#).unwrap_err();
        assert!(matches!(err, ModelError::UnknownModelType { .. }), "{err}");
        let msg = err.to_string();
        for part in ["\"bert\"", "/models/x/config.json", "\"t5\"", "\"umt5\""] {
            assert!(msg.contains(part), "{part} not in {msg}");
        }
        let config = parse(r#", "model_type": "umt5""#).unwrap();
        let encoder = config.init::<crate::model::CpuBackend>(&Default::default());
        assert!(encoder
            .blocks
            .iter()
            .all(|b| b.attention.relative_attention_bias.is_some()));
    }
}
