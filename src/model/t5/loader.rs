//! Loads a Hugging Face T5 checkpoint into a [`T5Encoder`].
//!
//! Accepted: `T5ForConditionalGeneration` checkpoints (the `decoder.*` and `lm_head.*` tensors
//! are ignored; with tied embeddings the encoder embedding is stored only as `shared.weight`)
//! and `T5EncoderModel` checkpoints, including cosmos-curate's encoder-only
//! `pytorch_model.bin.reduced`. Files: see [`super::weights::WEIGHT_FILES`]. Tensors may be
//! F32, F16, BF16 or F64 and are converted to `f32`.
//!
//! Key mapping (`i` = layer; `L(a→b)` = Burn `Linear` weight `[a, b]`, the transpose of the
//! Hugging Face `[b, a]` tensor; `inner` = `num_heads * d_kv`):
//!
//! | Hugging Face tensor | HF shape | Burn parameter |
//! |---|---|---|
//! | `encoder.embed_tokens.weight`, else `shared.weight` | `[vocab_size, d_model]` | `embed_tokens.weight` |
//! | `encoder.block.{i}.layer.0.layer_norm.weight` | `[d_model]` | `blocks[i].attention_norm.weight` |
//! | `encoder.block.{i}.layer.0.SelfAttention.q.weight` | `[inner, d_model]` | `blocks[i].attention.q` L(d_model→inner) |
//! | `encoder.block.{i}.layer.0.SelfAttention.k.weight` | `[inner, d_model]` | `blocks[i].attention.k` L(d_model→inner) |
//! | `encoder.block.{i}.layer.0.SelfAttention.v.weight` | `[inner, d_model]` | `blocks[i].attention.v` L(d_model→inner) |
//! | `encoder.block.{i}.layer.0.SelfAttention.o.weight` | `[d_model, inner]` | `blocks[i].attention.o` L(inner→d_model) |
//! | `encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight` | `[num_buckets, num_heads]` | `blocks[0].attention.relative_attention_bias.weight` (as is) |
//! | `encoder.block.{i}.layer.1.layer_norm.weight` | `[d_model]` | `blocks[i].feed_forward_norm.weight` |
//! | `encoder.block.{i}.layer.1.DenseReluDense.wi.weight` (relu) | `[d_ff, d_model]` | `Relu.wi` L(d_model→d_ff) |
//! | `encoder.block.{i}.layer.1.DenseReluDense.wi_0.weight` (gated-gelu) | `[d_ff, d_model]` | `GatedGelu.wi_0` L(d_model→d_ff) |
//! | `encoder.block.{i}.layer.1.DenseReluDense.wi_1.weight` (gated-gelu) | `[d_ff, d_model]` | `GatedGelu.wi_1` L(d_model→d_ff) |
//! | `encoder.block.{i}.layer.1.DenseReluDense.wo.weight` | `[d_model, d_ff]` | `…wo` L(d_ff→d_model) |
//! | `encoder.final_layer_norm.weight` | `[d_model]` | `final_layer_norm.weight` |
//!
//! Every tensor is checked (present, shape, element type) before any data is read.

use burn::module::Param;
use burn::nn::{Embedding, Linear};
use burn::prelude::*;

use super::config::{FeedForwardProj, T5Config};
use super::encoder::{T5Encoder, T5FeedForward, T5LayerNorm};
use super::weights::Weights;
use crate::model::ModelError;

/// Hugging Face names of the encoder embedding, in order of preference.
const EMBEDDING_NAMES: [&str; 2] = ["encoder.embed_tokens.weight", "shared.weight"];

/// How a checkpoint tensor becomes a Burn parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Copied as is (embeddings, norms).
    AsIs,
    /// A `Linear` weight: HF `[out, in]` is transposed to Burn's `[in, out]`.
    Transposed,
}

/// One tensor the encoder needs: its HF name, HF shape and layout.
struct Spec {
    name: String,
    shape: Vec<usize>,
    layout: Layout,
}

/// Every tensor `config` requires, in module order.
fn required_tensors(config: &T5Config, embedding: &str) -> Vec<Spec> {
    let (d, inner, ff) = (config.d_model, config.inner_dim(), config.d_ff);
    let spec = |name: String, shape: &[usize], layout| Spec {
        name,
        shape: shape.to_vec(),
        layout,
    };
    let mut specs = vec![spec(
        embedding.to_owned(),
        &[config.vocab_size, d],
        Layout::AsIs,
    )];
    for i in 0..config.num_layers {
        let attn = format!("encoder.block.{i}.layer.0.SelfAttention");
        let dense = format!("encoder.block.{i}.layer.1.DenseReluDense");
        let t = Layout::Transposed;
        specs.push(spec(
            format!("encoder.block.{i}.layer.0.layer_norm.weight"),
            &[d],
            Layout::AsIs,
        ));
        for proj in ["q", "k", "v"] {
            specs.push(spec(format!("{attn}.{proj}.weight"), &[inner, d], t));
        }
        specs.push(spec(format!("{attn}.o.weight"), &[d, inner], t));
        if i == 0 {
            let shape = [config.relative_attention_num_buckets, config.num_heads];
            specs.push(spec(
                format!("{attn}.relative_attention_bias.weight"),
                &shape,
                Layout::AsIs,
            ));
        }
        specs.push(spec(
            format!("encoder.block.{i}.layer.1.layer_norm.weight"),
            &[d],
            Layout::AsIs,
        ));
        match config.feed_forward_proj {
            FeedForwardProj::Relu => specs.push(spec(format!("{dense}.wi.weight"), &[ff, d], t)),
            FeedForwardProj::GatedGelu => {
                specs.push(spec(format!("{dense}.wi_0.weight"), &[ff, d], t));
                specs.push(spec(format!("{dense}.wi_1.weight"), &[ff, d], t));
            }
        }
        specs.push(spec(format!("{dense}.wo.weight"), &[d, ff], t));
    }
    specs.push(spec(
        "encoder.final_layer_norm.weight".to_owned(),
        &[d],
        Layout::AsIs,
    ));
    specs
}

/// Reads one checked tensor into a Burn tensor of rank `D` on `device`.
fn read<B: Backend, const D: usize>(
    weights: &Weights,
    spec: &Spec,
    device: &B::Device,
) -> Result<Tensor<B, D>, ModelError> {
    let values = weights.read_f32(&spec.name)?;
    let data = match spec.layout {
        Layout::AsIs => TensorData::new(values, spec.shape.clone()),
        Layout::Transposed => {
            let (rows, cols) = (spec.shape[0], spec.shape[1]);
            let mut out = vec![0f32; values.len()];
            for (r, row) in values.chunks_exact(cols).enumerate() {
                for (c, &v) in row.iter().enumerate() {
                    out[c * rows + r] = v;
                }
            }
            TensorData::new(out, [cols, rows])
        }
    };
    Ok(Tensor::from_data(data, device))
}

/// Consumes the specs in module order while filling the parameters.
struct Filler<'a, B: Backend> {
    weights: &'a Weights,
    specs: std::vec::IntoIter<Spec>,
    device: &'a B::Device,
}

impl<B: Backend> Filler<'_, B> {
    /// Replaces `param` by the next checkpoint tensor, which must have the same shape.
    fn fill<const D: usize>(&mut self, param: &mut Param<Tensor<B, D>>) -> Result<(), ModelError> {
        let spec = self.specs.next().expect("one spec per parameter");
        let tensor: Tensor<B, D> = read(self.weights, &spec, self.device)?;
        assert_eq!(
            tensor.dims().to_vec(),
            param.lazy_shape().to_vec(),
            "loader and module disagree on {}",
            spec.name
        );
        *param = Param::from_tensor(tensor);
        Ok(())
    }

    fn linear(&mut self, linear: &mut Linear<B>) -> Result<(), ModelError> {
        self.fill(&mut linear.weight)
    }

    fn embedding(&mut self, embedding: &mut Embedding<B>) -> Result<(), ModelError> {
        self.fill(&mut embedding.weight)
    }

    fn norm(&mut self, norm: &mut T5LayerNorm<B>) -> Result<(), ModelError> {
        self.fill(&mut norm.weight)
    }
}

/// Builds the encoder described by `config` from the tensors in `weights`.
///
/// First checks that every required tensor exists with the expected shape and a float type,
/// naming the first one that does not; then reads them.
pub fn load_encoder<B: Backend>(
    config: &T5Config,
    weights: &Weights,
    device: &B::Device,
) -> Result<T5Encoder<B>, ModelError> {
    let embedding = EMBEDDING_NAMES
        .into_iter()
        .find(|name| weights.contains(name))
        .ok_or_else(|| ModelError::MissingTensor {
            path: weights.origin().to_owned(),
            name: EMBEDDING_NAMES.join(" | "),
        })?;
    let specs = required_tensors(config, embedding);
    for spec in &specs {
        weights.check(&spec.name, &spec.shape)?;
    }

    let mut encoder = config.init::<B>(device);
    let mut fill = Filler {
        weights,
        specs: specs.into_iter(),
        device,
    };
    fill.embedding(&mut encoder.embed_tokens)?;
    for block in &mut encoder.blocks {
        fill.norm(&mut block.attention_norm)?;
        let attention = &mut block.attention;
        for linear in [
            &mut attention.q,
            &mut attention.k,
            &mut attention.v,
            &mut attention.o,
        ] {
            fill.linear(linear)?;
        }
        if let Some(table) = &mut attention.relative_attention_bias {
            fill.embedding(table)?;
        }
        fill.norm(&mut block.feed_forward_norm)?;
        match &mut block.feed_forward {
            T5FeedForward::Relu(ff) => {
                fill.linear(&mut ff.wi)?;
                fill.linear(&mut ff.wo)?;
            }
            T5FeedForward::GatedGelu(ff) => {
                fill.linear(&mut ff.wi_0)?;
                fill.linear(&mut ff.wi_1)?;
                fill.linear(&mut ff.wo)?;
            }
        }
    }
    fill.norm(&mut encoder.final_layer_norm)?;
    debug_assert!(fill.specs.next().is_none(), "every spec is used");
    Ok(encoder)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::t5::config::FeedForwardProj;

    fn config(ff: FeedForwardProj, layers: usize) -> T5Config {
        T5Config {
            d_model: 4,
            d_kv: 3,
            d_ff: 8,
            num_heads: 2,
            num_layers: layers,
            relative_attention_num_buckets: 32,
            relative_attention_max_distance: 128,
            layer_norm_epsilon: 1e-6,
            feed_forward_proj: ff,
            vocab_size: 10,
        }
    }

    #[test]
    fn required_tensor_names_follow_hf() {
        let specs = required_tensors(&config(FeedForwardProj::Relu, 2), "shared.weight");
        // embedding + 2 * (norm, q, k, v, o, norm, wi, wo) + bias + final norm
        assert_eq!(specs.len(), 1 + 2 * 8 + 1 + 1);
        assert_eq!(specs[0].shape, vec![10, 4]);
        let q = &specs[2];
        assert_eq!(q.name, "encoder.block.0.layer.0.SelfAttention.q.weight");
        assert_eq!(
            (q.shape.as_slice(), q.layout),
            (&[6, 4][..], Layout::Transposed)
        );
        assert_eq!(specs[5].shape, vec![4, 6]);
        assert_eq!(
            specs[6].name,
            "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"
        );
        assert_eq!(specs[6].shape, vec![32, 2]);
        assert!(!specs.iter().skip(7).any(|s| s.name.contains("relative")));

        let gated = required_tensors(&config(FeedForwardProj::GatedGelu, 1), "shared.weight");
        let names: Vec<&str> = gated.iter().map(|s| s.name.as_str()).collect();
        assert!(names.contains(&"encoder.block.0.layer.1.DenseReluDense.wi_0.weight"));
        assert!(names.contains(&"encoder.block.0.layer.1.DenseReluDense.wi_1.weight"));
        assert!(!names.contains(&"encoder.block.0.layer.1.DenseReluDense.wi.weight"));
    }
}
