//! The T5 encoder stack: embedding, N pre-norm blocks (self-attention, feed-forward), final
//! RMS norm. Mirrors Hugging Face `T5EncoderModel` and `UMT5EncoderModel` in inference mode
//! (dropout is identity); the two differ only in which blocks own a position bias table.

use burn::module::Param;
use burn::nn::{Embedding, Linear};
use burn::prelude::*;
use burn::tensor::activation::{gelu_approximate, relu};
use burn::tensor::DType;

use super::attention::T5Attention;
use crate::model::linear;

/// Builds a [`T5LayerNorm`].
#[derive(Debug, Clone)]
pub struct T5LayerNormConfig {
    /// Width of the normalised dimension.
    pub d_model: usize,
    /// Added to the mean square before the square root.
    pub epsilon: f64,
}

impl T5LayerNormConfig {
    /// A norm over `d_model` features.
    pub fn new(d_model: usize, epsilon: f64) -> Self {
        Self { d_model, epsilon }
    }

    /// A norm with unit weights.
    pub fn init<B: Backend>(&self, device: &B::Device) -> T5LayerNorm<B> {
        T5LayerNorm {
            weight: Param::from_tensor(Tensor::ones([self.d_model], device)),
            epsilon: self.epsilon,
        }
    }
}

/// T5's RMS layer norm: `weight * x / sqrt(mean(x²) + ε)`, no mean subtraction, no bias.
#[derive(Module, Debug)]
pub struct T5LayerNorm<B: Backend> {
    /// Per-feature scale, `[d_model]`.
    pub weight: Param<Tensor<B, 1>>,
    /// Added to the mean square.
    pub epsilon: f64,
}

impl<B: Backend> T5LayerNorm<B> {
    /// Normalises the last dimension of `x` (`[batch, len, d_model]`).
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let dtype = x.dtype();
        if is_half(dtype) {
            // As Hugging Face does: the mean square and the scaling in fp32 (x² overflows
            // fp16 from |x| > 256), back to half precision before the weight.
            let xf = x.cast(DType::F32);
            let variance = xf.clone().square().mean_dim(2);
            let normed = (xf / (variance + self.epsilon).sqrt()).cast(dtype);
            return normed * self.weight.val().unsqueeze::<3>();
        }
        // A division rather than `recip()`: Burn's SIMD reciprocal may be approximate.
        let variance = x.clone().square().mean_dim(2);
        x / (variance + self.epsilon).sqrt() * self.weight.val().unsqueeze::<3>()
    }
}

/// Whether a float dtype is fp16 or bf16.
pub fn is_half(dtype: DType) -> bool {
    matches!(dtype, DType::F16 | DType::BF16)
}

/// Hugging Face's fp16 guard after each residual add: clamp to the largest finite value, or
/// 1000 below it once an infinity has appeared. A no-op for other dtypes.
pub fn clamp_fp16<B: Backend>(x: Tensor<B, 3>) -> Tensor<B, 3> {
    if x.dtype() != DType::F16 {
        return x;
    }
    let max = f64::from(half::f16::MAX.to_f32());
    // The limit is chosen on the device: reading the flag back would stall the host on every
    // residual of every layer, and no group could be queued behind another.
    let has_inf = x
        .clone()
        .is_inf()
        .any()
        .float()
        .cast(DType::F16)
        .reshape([1, 1, 1]);
    let limit = (has_inf * -1000.0 + max).expand(x.shape());
    x.max_pair(limit.clone().neg()).min_pair(limit)
}

/// Original T5 feed-forward (`DenseReluDense`): `wo(relu(wi(x)))`.
#[derive(Module, Debug)]
pub struct T5DenseActDense<B: Backend> {
    /// `d_model → d_ff`.
    pub wi: Linear<B>,
    /// `d_ff → d_model`.
    pub wo: Linear<B>,
}

/// T5 v1.1 feed-forward (`DenseReluDense` with `wi_0`/`wi_1`): `wo(gelu_new(wi_0(x)) * wi_1(x))`.
#[derive(Module, Debug)]
pub struct T5DenseGatedActDense<B: Backend> {
    /// Gate and linear projections side by side, `d_model → 2*d_ff` (HF `wi_0` then `wi_1`):
    /// one GEMM over the activations instead of two.
    pub wi: Linear<B>,
    /// `d_ff → d_model`.
    pub wo: Linear<B>,
}

/// The feed-forward half of a T5 block, by `feed_forward_proj`.
// One per block, and the weights live behind shared handles: the variant size is irrelevant.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum T5FeedForward<B: Backend> {
    /// `"relu"`.
    Relu(T5DenseActDense<B>),
    /// `"gated-gelu"` (`gelu_new`, the tanh approximation).
    GatedGelu(T5DenseGatedActDense<B>),
}

impl<B: Backend> T5FeedForward<B> {
    /// Applies the feed-forward network to `x` (`[batch, len, d_model]`).
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        match self {
            Self::Relu(ff) => linear(&ff.wo, relu(linear(&ff.wi, x))),
            Self::GatedGelu(ff) => {
                let both = linear(&ff.wi, x);
                let d_ff = both.dims()[2] / 2;
                let gate = gelu_approximate(both.clone().narrow(2, 0, d_ff));
                linear(&ff.wo, gate * both.narrow(2, d_ff, d_ff))
            }
        }
    }
}

/// One encoder block: `x + attn(norm(x))`, then `x + ff(norm(x))`.
#[derive(Module, Debug)]
pub struct T5Block<B: Backend> {
    /// Norm before attention (HF `layer.0.layer_norm`).
    pub attention_norm: T5LayerNorm<B>,
    /// Self-attention (HF `layer.0.SelfAttention`).
    pub attention: T5Attention<B>,
    /// Norm before the feed-forward (HF `layer.1.layer_norm`).
    pub feed_forward_norm: T5LayerNorm<B>,
    /// Feed-forward (HF `layer.1.DenseReluDense`).
    pub feed_forward: T5FeedForward<B>,
}

impl<B: Backend> T5Block<B> {
    /// Applies the block to a padded batch whose rows are `x`, `[1, batch*len, d_model]`
    /// (see [`T5Attention::forward_padded`] for `bias` and `mask`).
    pub fn forward_padded(
        &self,
        x: Tensor<B, 3>,
        batch: usize,
        len: usize,
        bias: Tensor<B, 4>,
        mask: Option<Tensor<B, 4>>,
    ) -> Tensor<B, 3> {
        let attention = self.attention.forward_padded(
            self.attention_norm.forward(x.clone()),
            batch,
            len,
            bias,
            mask,
        );
        let x = clamp_fp16(x + attention);
        clamp_fp16(x.clone() + self.feed_forward.forward(self.feed_forward_norm.forward(x)))
    }

    /// Applies the block to packed sequences (see [`T5Encoder::forward_packed`]).
    pub fn forward_packed(
        &self,
        x: Tensor<B, 3>,
        runs: &[SequenceRun],
        biases: &[Tensor<B, 4>],
    ) -> Tensor<B, 3> {
        let attention =
            self.attention
                .forward_packed(self.attention_norm.forward(x.clone()), runs, biases);
        let x = clamp_fp16(x + attention);
        clamp_fp16(x.clone() + self.feed_forward.forward(self.feed_forward_norm.forward(x)))
    }
}

/// `count` consecutive sequences of `len` tokens each, in a packed batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SequenceRun {
    /// Tokens per sequence.
    pub len: usize,
    /// Number of sequences.
    pub count: usize,
}

impl SequenceRun {
    /// Groups sequence lengths, already sorted so that equal lengths are adjacent, into runs.
    /// Zero lengths are skipped.
    pub fn from_lengths(lengths: impl IntoIterator<Item = usize>) -> Vec<SequenceRun> {
        let mut runs: Vec<SequenceRun> = Vec::new();
        for len in lengths.into_iter().filter(|&len| len > 0) {
            match runs.last_mut() {
                Some(run) if run.len == len => run.count += 1,
                _ => runs.push(SequenceRun { len, count: 1 }),
            }
        }
        runs
    }
}

/// The T5 encoder stack.
#[derive(Module, Debug)]
pub struct T5Encoder<B: Backend> {
    /// Token embedding, `[vocab_size, d_model]` (HF `shared` / `encoder.embed_tokens`).
    pub embed_tokens: Embedding<B>,
    /// The blocks. The first one owns a relative position bias table; in UMT5 every one does.
    /// A block without a table uses the bias of the last block before it that has one.
    pub blocks: Vec<T5Block<B>>,
    /// Norm after the last block.
    pub final_layer_norm: T5LayerNorm<B>,
}

impl<B: Backend> T5Encoder<B> {
    /// Encodes `input_ids` (`[batch, len]`) into hidden states `[batch, len, d_model]`.
    ///
    /// `padding` (`[batch, len]`, `true` at padded positions) keeps padded keys out of every
    /// query's attention by adding the most negative `f32`, as Hugging Face does with
    /// `torch.finfo(float32).min`. Rows at padded positions are computed but meaningless.
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        padding: Option<Tensor<B, 2, Bool>>,
    ) -> Tensor<B, 3> {
        let [batch, len] = input_ids.dims();
        let device = input_ids.device();
        let mask = padding.map(|padding| {
            Tensor::<B, 2>::zeros([batch, len], &device)
                .mask_fill(padding, f32::MIN)
                .reshape([batch, 1, 1, len])
        });
        let buckets = self.blocks[0].attention.bucket_indices(len, &device);
        let mut bias: Option<Tensor<B, 4>> = None;
        let x = self.embed_tokens.forward(input_ids);
        let d_model = x.dims()[2];
        // every row-wise step runs on all batch*len rows as one matrix
        let mut x = x.reshape([1, batch * len, d_model]);
        for block in &self.blocks {
            if block.attention.relative_attention_bias.is_some() {
                bias = Some(block.attention.gather_bias(buckets.clone(), len));
            }
            let bias = bias.clone().expect("the first block has a bias table");
            x = block.forward_padded(x, batch, len, bias, mask.clone());
        }
        self.final_layer_norm
            .forward(x)
            .reshape([batch, len, d_model])
    }

    /// Encodes sequences packed without padding: `input_ids` is `[1, total]`, the tokens of
    /// the sequences of `runs` one after another; returns `[1, total, d_model]`.
    ///
    /// Every row-wise step (embedding, norms, projections, feed-forward) runs on all tokens at
    /// once; attention runs per run of equal-length sequences. Nothing is spent on padding,
    /// and on the CPU backend each sequence's result is bit-identical to encoding it alone,
    /// whatever else is in the batch.
    ///
    /// # Panics
    /// If there are no tokens, or the lengths of `runs` do not add up to `total`.
    pub fn forward_packed(
        &self,
        input_ids: Tensor<B, 2, Int>,
        runs: &[SequenceRun],
    ) -> Tensor<B, 3> {
        let [_, total] = input_ids.dims();
        let covered: usize = runs.iter().map(|run| run.len * run.count).sum();
        assert_eq!(
            covered, total,
            "runs cover {covered} tokens, the input has {total}"
        );
        assert!(total > 0, "nothing to encode");
        let device = input_ids.device();
        let lens: Vec<usize> = runs.iter().map(|run| run.len).collect();
        let mut biases: Vec<Tensor<B, 4>> = Vec::new();
        let mut x = self.embed_tokens.forward(input_ids);
        for block in &self.blocks {
            if block.attention.relative_attention_bias.is_some() {
                biases = block.attention.compute_biases(&lens, &device);
            }
            assert!(!biases.is_empty(), "the first block has a bias table");
            x = block.forward_packed(x, runs, &biases);
        }
        self.final_layer_norm.forward(x)
    }
}

#[cfg(test)]
mod tests {
    use super::{clamp_fp16, SequenceRun};
    use crate::model::CpuBackend;
    use burn::prelude::*;
    use burn::tensor::DType;

    fn clamped(values: [f32; 4]) -> Vec<f32> {
        let x = Tensor::<CpuBackend, 1>::from_floats(values, &Default::default())
            .reshape([1, 2, 2])
            .cast(DType::F16);
        clamp_fp16(x)
            .cast(DType::F32)
            .into_data()
            .to_vec::<f32>()
            .unwrap()
    }

    /// Hugging Face's guard: values are clamped to ±65504, or to ±(65504 - 1000) — 64512 in
    /// fp16 — once any of them is infinite.
    #[test]
    fn fp16_clamp_follows_hugging_face() {
        assert_eq!(
            clamped([1.5, -2.0, 60000.0, -65504.0]),
            [1.5, -2.0, 60000.0, -65504.0]
        );
        assert_eq!(
            clamped([1.5, f32::INFINITY, 65504.0, f32::NEG_INFINITY]),
            [1.5, 64512.0, 64512.0, -64512.0]
        );
        // other dtypes pass through untouched
        let x = Tensor::<CpuBackend, 3>::from_floats([[[1e30f32]]], &Default::default());
        assert_eq!(clamp_fp16(x).into_data().to_vec::<f32>().unwrap(), [1e30]);
    }

    #[test]
    fn runs_group_adjacent_equal_lengths() {
        let run = |len, count| SequenceRun { len, count };
        assert_eq!(
            SequenceRun::from_lengths([0, 3, 3, 5, 7, 7, 7]),
            vec![run(3, 2), run(5, 1), run(7, 3)]
        );
        assert!(SequenceRun::from_lengths([0, 0]).is_empty());
    }
}
