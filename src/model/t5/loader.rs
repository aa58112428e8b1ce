//! Loads a Hugging Face T5 or UMT5 checkpoint into a [`T5Encoder`].
//!
//! Accepted: `T5ForConditionalGeneration` and `UMT5ForConditionalGeneration` checkpoints (the
//! `decoder.*` and `lm_head.*` tensors are ignored; with tied embeddings the encoder embedding
//! is stored only as `shared.weight`) and `T5EncoderModel` and `UMT5EncoderModel` checkpoints,
//! including cosmos-curate's encoder-only `pytorch_model.bin.reduced`. UMT5 names its tensors
//! exactly as T5 does; the one difference is that every layer has a bias table. Files: see [`crate::model::weights::WEIGHT_FILES`]. Tensors may be
//! F32, F16, BF16 or F64 and are converted to `f32`.
//!
//! Key mapping (`i` = layer; `L(a→b)` = Burn `Linear` weight `[a, b]`, the transpose of the
//! Hugging Face `[b, a]` tensor; `inner` = `num_heads * d_kv`):
//!
//! | Hugging Face tensor | HF shape | Burn parameter |
//! |---|---|---|
//! | `encoder.embed_tokens.weight`, else `shared.weight` | `[vocab_size, d_model]` | `embed_tokens.weight` |
//! | `encoder.block.{i}.layer.0.layer_norm.weight` | `[d_model]` | `blocks[i].attention_norm.weight` |
//! | `encoder.block.{i}.layer.0.SelfAttention.q.weight` | `[inner, d_model]` | `blocks[i].attention.qkv` columns `0..inner` |
//! | `encoder.block.{i}.layer.0.SelfAttention.k.weight` | `[inner, d_model]` | `blocks[i].attention.qkv` columns `inner..2*inner` |
//! | `encoder.block.{i}.layer.0.SelfAttention.v.weight` | `[inner, d_model]` | `blocks[i].attention.qkv` columns `2*inner..3*inner` (`qkv` is L(d_model→3*inner)) |
//! | `encoder.block.{i}.layer.0.SelfAttention.o.weight` | `[d_model, inner]` | `blocks[i].attention.o` L(inner→d_model) |
//! | `encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight` (T5: layer 0 only) | `[num_buckets, num_heads]` | `blocks[0].attention.relative_attention_bias.weight` (as is) |
//! | `encoder.block.{i}.layer.0.SelfAttention.relative_attention_bias.weight` (UMT5: every layer) | `[num_buckets, num_heads]` | `blocks[i].attention.relative_attention_bias.weight` (as is) |
//! | `encoder.block.{i}.layer.1.layer_norm.weight` | `[d_model]` | `blocks[i].feed_forward_norm.weight` |
//! | `encoder.block.{i}.layer.1.DenseReluDense.wi.weight` (relu) | `[d_ff, d_model]` | `Relu.wi` L(d_model→d_ff) |
//! | `encoder.block.{i}.layer.1.DenseReluDense.wi_0.weight` (gated-gelu) | `[d_ff, d_model]` | `GatedGelu.wi` columns `0..d_ff` |
//! | `encoder.block.{i}.layer.1.DenseReluDense.wi_1.weight` (gated-gelu) | `[d_ff, d_model]` | `GatedGelu.wi` columns `d_ff..2*d_ff` (`wi` is L(d_model→2*d_ff)) |
//! | `encoder.block.{i}.layer.1.DenseReluDense.wo.weight` | `[d_model, d_ff]` | `…wo` L(d_ff→d_model) |
//! | `encoder.final_layer_norm.weight` | `[d_model]` | `final_layer_norm.weight` |
//!
//! Projections that read the same activations are fused (q/k/v, and `wi_0`/`wi_1`): their
//! transposed weights are written side by side into one `[d_model, n*out]` matrix while
//! reading, so the fused parameter is never held twice.
//!
//! Every tensor is checked (present, shape, element type) before any data is read. A tensor
//! of the checkpoint that the configured encoder does not use is an error (a `config.json`
//! with fewer layers than the weights, or the other feed-forward variant), except what a full
//! T5 checkpoint normally holds beside the encoder: `decoder.*`, `lm_head.*`, and the embedding
//! alias not chosen above (`shared.weight` / `encoder.embed_tokens.weight`).

use std::collections::HashSet;

use burn::module::Param;
use burn::nn::{Embedding, Linear};
use burn::prelude::*;

use super::config::{FeedForwardProj, T5Config};
use super::encoder::{T5Encoder, T5FeedForward, T5LayerNorm};
use crate::model::weights::Weights;
use crate::model::ModelError;

/// Hugging Face names of the encoder embedding, in order of preference.
const EMBEDDING_NAMES: [&str; 2] = ["encoder.embed_tokens.weight", "shared.weight"];

/// Unused tensors named in the error, at most.
const UNUSED_SHOWN: usize = 5;

/// Whether a checkpoint tensor the encoder does not read is expected there anyway: the
/// decoder and LM head of a `T5ForConditionalGeneration`, and the embedding alias not used.
fn expected_extra(name: &str) -> bool {
    name.starts_with("decoder.") || name.starts_with("lm_head.") || EMBEDDING_NAMES.contains(&name)
}

/// Fails when `weights` holds a tensor outside `specs` that a (U)T5 checkpoint does not
/// normally hold, naming the first few in name order and the count.
fn check_all_used(weights: &Weights, specs: &[Spec]) -> Result<(), ModelError> {
    let used: HashSet<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    let mut unused: Vec<&str> = weights
        .names()
        .filter(|n| !used.contains(n) && !expected_extra(n))
        .collect();
    if unused.is_empty() {
        return Ok(());
    }
    unused.sort_unstable();
    Err(ModelError::UnusedTensors {
        path: weights.origin().to_owned(),
        count: unused.len(),
        first: unused
            .iter()
            .take(UNUSED_SHOWN)
            .map(|n| crate::text::shown(n))
            .collect(),
    })
}

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
        if i == 0 || config.model_type.bias_in_every_layer() {
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
    let data = match spec.layout {
        Layout::AsIs => TensorData::new(weights.read_f32(&spec.name)?, spec.shape.clone()),
        Layout::Transposed => read_side_by_side(weights, std::slice::from_ref(spec))?,
    };
    Ok(Tensor::from_data(data, device))
}

/// Reads `Linear` weights of the same HF shape `[out, in]` into one Burn weight
/// `[in, n*out]`: each transposed, the `j`-th in columns `j*out..(j+1)*out`.
fn read_side_by_side(weights: &Weights, specs: &[Spec]) -> Result<TensorData, ModelError> {
    let (rows, cols) = (specs[0].shape[0], specs[0].shape[1]);
    let width = rows * specs.len();
    let mut out = vec![0f32; cols * width];
    for (j, spec) in specs.iter().enumerate() {
        debug_assert_eq!(spec.layout, Layout::Transposed);
        debug_assert_eq!(spec.shape, specs[0].shape);
        let values = weights.read_f32(&spec.name)?;
        for (r, row) in values.chunks_exact(cols).enumerate() {
            for (c, &v) in row.iter().enumerate() {
                out[c * width + j * rows + r] = v;
            }
        }
    }
    Ok(TensorData::new(out, [cols, width]))
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

    /// Fills a fused `Linear` from the next `n` checkpoint tensors, side by side.
    fn fused(&mut self, linear: &mut Linear<B>, n: usize) -> Result<(), ModelError> {
        let specs: Vec<Spec> = self.specs.by_ref().take(n).collect();
        assert_eq!(specs.len(), n, "one spec per fused part");
        let data = read_side_by_side(self.weights, &specs)?;
        let tensor: Tensor<B, 2> = Tensor::from_data(data, self.device);
        assert_eq!(
            tensor.dims().to_vec(),
            linear.weight.lazy_shape().to_vec(),
            "loader and module disagree on {}",
            specs[0].name
        );
        linear.weight = Param::from_tensor(tensor);
        Ok(())
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
/// naming the first one that does not, and that the checkpoint holds no encoder tensor the
/// config leaves unused; then reads them.
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
    check_all_used(weights, &specs)?;

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
        fill.fused(&mut attention.qkv, 3)?;
        fill.linear(&mut attention.o)?;
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
                fill.fused(&mut ff.wi, 2)?;
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
    use crate::model::t5::config::{FeedForwardProj, ModelType};

    fn config(ff: FeedForwardProj, layers: usize) -> T5Config {
        T5Config {
            model_type: ModelType::T5,
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

    fn fixture() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/t5-tiny")
    }

    /// A copy of the tiny fixture with `config.json` edited by `edit` and the weights in
    /// `weights` (a file name of the fixture).
    fn fixture_copy(edit: impl Fn(&str) -> String, weights: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let config = std::fs::read_to_string(fixture().join("config.json")).unwrap();
        std::fs::write(dir.path().join("config.json"), edit(&config)).unwrap();
        for name in ["tokenizer.json", weights] {
            std::fs::copy(fixture().join(name), dir.path().join(name)).unwrap();
        }
        dir
    }

    fn load(
        dir: &std::path::Path,
    ) -> Result<crate::model::t5::T5TextEncoder<crate::model::CpuBackend>, ModelError> {
        crate::model::t5::T5TextEncoder::load(dir, &Default::default())
    }

    #[test]
    fn fewer_layers_than_the_weights_is_an_error() {
        for weights in ["model.safetensors", "pytorch_model.bin.reduced"] {
            // as saved, the full and the encoder-only checkpoints load
            let dir = fixture_copy(str::to_owned, weights);
            load(dir.path()).unwrap_or_else(|e| panic!("{weights}: {e}"));

            let dir = fixture_copy(
                |c| c.replace("\"num_layers\": 2", "\"num_layers\": 1"),
                weights,
            );
            let err = load(dir.path()).expect_err("a 1-layer config on 2-layer weights");
            let msg = err.to_string();
            match &err {
                ModelError::UnusedTensors { count, first, path } => {
                    // block 1: two norms, q, k, v, o, wi, wo
                    assert_eq!(*count, 8, "{msg}");
                    assert_eq!(first.len(), UNUSED_SHOWN);
                    assert!(path.ends_with(weights), "{msg}");
                }
                other => panic!("{weights}: expected unused tensors, got {other}"),
            }
            assert!(
                msg.contains("encoder.block.1.") && msg.contains('8'),
                "{msg}"
            );
            assert!(!msg.contains("decoder."), "{msg}");
        }
    }

    #[test]
    fn decoder_lm_head_and_embedding_aliases_are_accepted_other_extras_are_not() {
        use safetensors::tensor::TensorView;
        use safetensors::SafeTensors;
        let bytes = std::fs::read(fixture().join("model.safetensors")).unwrap();
        let file = SafeTensors::deserialize(&bytes).unwrap();
        let mut tensors: Vec<(String, TensorView<'_>)> = file.tensors();
        assert!(tensors.iter().any(|(n, _)| n.starts_with("decoder.")));
        let shared = file.tensor("shared.weight").unwrap();
        let write = |tensors: &[(String, TensorView<'_>)]| {
            let dir = fixture_copy(str::to_owned, "tokenizer.json");
            let views = tensors.iter().map(|(n, v)| (n.clone(), v.clone()));
            safetensors::serialize_to_file(views, None, &dir.path().join("model.safetensors"))
                .unwrap();
            dir
        };
        for alias in [
            "encoder.embed_tokens.weight",
            "lm_head.weight",
            "decoder.embed_tokens.weight",
        ] {
            tensors.push((alias.to_owned(), shared.clone()));
        }
        load(write(&tensors).path()).unwrap();

        // a gated-gelu tensor in a relu model
        tensors.push((
            "encoder.block.0.layer.1.DenseReluDense.wi_0.weight".to_owned(),
            file.tensor("encoder.block.0.layer.1.DenseReluDense.wi.weight")
                .unwrap(),
        ));
        let msg = load(write(&tensors).path()).unwrap_err().to_string();
        assert!(
            msg.starts_with("1 tensor(s)") && msg.contains("DenseReluDense.wi_0.weight"),
            "{msg}"
        );
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

        // UMT5: a bias table after each layer's o, in every layer
        let mut umt5 = config(FeedForwardProj::GatedGelu, 3);
        umt5.model_type = ModelType::Umt5;
        let specs = required_tensors(&umt5, "shared.weight");
        let tables: Vec<&str> = specs
            .iter()
            .filter(|s| s.name.contains("relative_attention_bias"))
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(
            tables,
            (0..3)
                .map(|i| format!(
                    "encoder.block.{i}.layer.0.SelfAttention.relative_attention_bias.weight"
                ))
                .collect::<Vec<_>>()
        );
        assert_eq!(specs.len(), 1 + 3 * (9 + 1) + 1);

        let gated = required_tensors(&config(FeedForwardProj::GatedGelu, 1), "shared.weight");
        let names: Vec<&str> = gated.iter().map(|s| s.name.as_str()).collect();
        assert!(names.contains(&"encoder.block.0.layer.1.DenseReluDense.wi_0.weight"));
        assert!(names.contains(&"encoder.block.0.layer.1.DenseReluDense.wi_1.weight"));
        assert!(!names.contains(&"encoder.block.0.layer.1.DenseReluDense.wi.weight"));
    }
}
