//! T5 self-attention with relative position bias (Hugging Face `T5Attention` and
//! `UMT5Attention`, encoder side).
//!
//! Differences from textbook attention, all as in T5: no `1/sqrt(d_kv)` scaling, no biases in
//! the projections, and a learned per-head bias indexed by a bucketed relative distance. In T5
//! the bias is computed once by the first layer and shared by all layers; in UMT5 every layer
//! has its own table and computes its own bias (same bucketing, same math otherwise).
//!
//! The q, k and v projections are one `Linear` (their weights side by side), so each layer
//! reads its activations once for one GEMM instead of three. Heads are strided views of that
//! projection, never copied: the matrix products take strided operands, the context is
//! computed transposed (`vᵀ·wᵀ`, `[batch, heads, d_kv, len]`) so that `[batch, len, inner]` is
//! a plain 2-D transpose view of it, which the output projection reads in place. The position
//! bias stays a `[1, heads, len, len]` broadcast. (Burn's fused `attention` was measured
//! slower on the CPU backend: its per-row softmax loop is scalar.)

use burn::nn::{Embedding, Linear};
use burn::prelude::*;
use burn::tensor::activation::softmax;
use burn::tensor::DType;

use super::encoder::SequenceRun;
use crate::model::linear;

/// Multi-head self-attention of one T5 layer.
#[derive(Module, Debug)]
pub struct T5Attention<B: Backend> {
    /// Query, key and value projections side by side, `d_model → 3*num_heads*d_kv` (HF
    /// `q`, `k`, `v` in that order).
    pub qkv: Linear<B>,
    /// Output projection, `num_heads*d_kv → d_model`.
    pub o: Linear<B>,
    /// `[num_buckets, num_heads]` bias table: T5's first layer and every UMT5 layer have one;
    /// a layer without one uses the bias of the last layer before it that has one.
    pub relative_attention_bias: Option<Embedding<B>>,
    /// Number of heads.
    pub num_heads: usize,
    /// Width of one head.
    pub d_kv: usize,
    /// Relative-position buckets (both directions).
    pub num_buckets: usize,
    /// Distance from which on relative positions share the outermost bucket.
    pub max_distance: usize,
}

/// Hugging Face `T5Attention._relative_position_bucket` for the bidirectional (encoder) case.
///
/// `relative_position` is `key_position - query_position`. Half of the buckets are for
/// positive distances; within each half, distances below `num_buckets/4` get a bucket each,
/// larger ones share logarithmically wider buckets up to `max_distance`, and everything beyond
/// falls into the last one. The logarithm is taken in `f32` and truncated, like PyTorch does.
pub fn relative_position_bucket(
    relative_position: i64,
    num_buckets: usize,
    max_distance: usize,
) -> usize {
    let half = num_buckets / 2;
    let mut bucket = if relative_position > 0 { half } else { 0 };
    let distance = relative_position.unsigned_abs() as usize;
    let max_exact = half / 2;
    if distance < max_exact {
        bucket += distance;
    } else {
        // torch: max_exact + (log(d.float() / max_exact) / math.log(max_distance / max_exact)
        //        * (num_buckets - max_exact)).to(long), with float32 tensor arithmetic.
        let ratio = distance as f32 / max_exact as f32;
        let denominator = (max_distance as f64 / max_exact as f64).ln() as f32;
        let scaled = ratio.ln() / denominator * (half - max_exact) as f32;
        let large = max_exact + scaled as usize;
        bucket += large.min(half - 1);
    }
    bucket
}

/// Bucket of each relative position `key - query` of a sequence of `len` tokens, indexed by
/// `key - query + len - 1` (so `2*len - 1` entries, from `-(len-1)` to `len-1`).
pub fn buckets_by_distance(len: usize, num_buckets: usize, max_distance: usize) -> Vec<usize> {
    (0..(2 * len).saturating_sub(1))
        .map(|i| relative_position_bucket(i as i64 - (len as i64 - 1), num_buckets, max_distance))
        .collect()
}

impl<B: Backend> T5Attention<B> {
    /// Relative position bias `[1, num_heads, len, len]` for a sequence of `len` tokens:
    /// `bias[h, q, k] = table[bucket(k - q), h]`.
    ///
    /// Built on the host from the (small) bias table: each row is a slice of one vector over
    /// the `2*len - 1` distances, which is much cheaper than a gather of `len²` indices.
    ///
    /// # Panics
    /// If this layer has no bias table (in a T5 stack only the first layer has one).
    pub fn compute_bias(&self, len: usize, device: &B::Device) -> Tensor<B, 4> {
        self.compute_biases(&[len], device)
            .pop()
            .expect("one length, one bias")
    }

    /// [`T5Attention::compute_bias`] for each of `lens`, reading the table once.
    ///
    /// # Panics
    /// If this layer has no bias table.
    pub fn compute_biases(&self, lens: &[usize], device: &B::Device) -> Vec<Tensor<B, 4>> {
        let table = self
            .relative_attention_bias
            .as_ref()
            .expect("compute_bias is called on layers that have a bias table");
        let table = table
            .weight
            .val()
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .expect("converted to f32");
        let heads = self.num_heads;
        lens.iter()
            .map(|&len| {
                let buckets = buckets_by_distance(len, self.num_buckets, self.max_distance);
                let mut bias = Vec::with_capacity(heads * len * len);
                for head in 0..heads {
                    let by_distance: Vec<f32> =
                        buckets.iter().map(|&b| table[b * heads + head]).collect();
                    for query in 0..len {
                        // key - query + len - 1 runs from len-1-query to 2*len-2-query.
                        bias.extend_from_slice(&by_distance[len - 1 - query..][..len]);
                    }
                }
                Tensor::from_data(TensorData::new(bias, [1, heads, len, len]), device)
            })
            .collect()
    }

    /// The bucket of every `(query, key)` pair of a `len`-token sequence, row-major
    /// (`[len * len]`), on `device`: the indices [`T5Attention::gather_bias`] reads.
    pub fn bucket_indices(&self, len: usize, device: &B::Device) -> Tensor<B, 1, Int> {
        let by_distance = buckets_by_distance(len, self.num_buckets, self.max_distance);
        let mut indices = Vec::with_capacity(len * len);
        for query in 0..len {
            // key - query + len - 1 runs from len-1-query to 2*len-2-query.
            indices.extend(
                by_distance[len - 1 - query..][..len]
                    .iter()
                    .map(|&b| b as i64),
            );
        }
        Tensor::from_data(TensorData::new(indices, [len * len]), device)
    }

    /// [`T5Attention::compute_bias`] gathered on the device from `buckets`
    /// ([`T5Attention::bucket_indices`] of `len`). The padded path uses it: with a table in
    /// every layer (UMT5), uploading a host-built `[heads, len, len]` bias per layer would
    /// cost far more than uploading the indices once and gathering per layer.
    ///
    /// # Panics
    /// If this layer has no bias table.
    pub fn gather_bias(&self, buckets: Tensor<B, 1, Int>, len: usize) -> Tensor<B, 4> {
        let table = self
            .relative_attention_bias
            .as_ref()
            .expect("gather_bias is called on layers that have a bias table");
        // [len*len, heads] → [heads, len*len] → [1, heads, len, len]
        table
            .weight
            .val()
            .select(0, buckets)
            .swap_dims(0, 1)
            .reshape([1, self.num_heads, len, len])
    }

    /// Attends each sequence of a padded batch to itself. `hidden` holds the batch's rows one
    /// after another, `[1, batch*len, d_model]`, so both projections are one GEMM over every
    /// row rather than `batch` small ones; returns the same shape.
    ///
    /// `bias` is the position bias, `[1, num_heads, len, len]`, and `mask` the additive key
    /// mask, `[batch, 1, 1, len]`: both stay broadcasts, never a `[batch, heads, len, len]`
    /// tensor of their own (for t5-11b's 128 heads at 64 × 512 tokens that would be 4.3 GB
    /// in bf16 before the scores).
    pub fn forward_padded(
        &self,
        hidden: Tensor<B, 3>,
        batch: usize,
        len: usize,
        bias: Tensor<B, 4>,
        mask: Option<Tensor<B, 4>>,
    ) -> Tensor<B, 3> {
        let inner = self.num_heads * self.d_kv;
        let qkv = linear(&self.qkv, hidden).reshape([batch, len, 3 * inner]);
        let context = self
            .attend(qkv, bias, mask)
            .reshape([1, batch * len, inner]);
        linear(&self.o, context)
    }

    /// Attends packed sequences to themselves: `hidden` is `[1, total, d_model]`, the rows of
    /// `runs` one after another; `biases[i]` is the position bias of `runs[i]`'s length.
    ///
    /// The projections run on all rows at once; the attention itself runs per run, so no
    /// sequence ever sees another, and there is no padding to mask.
    pub fn forward_packed(
        &self,
        hidden: Tensor<B, 3>,
        runs: &[SequenceRun],
        biases: &[Tensor<B, 4>],
    ) -> Tensor<B, 3> {
        let inner = self.num_heads * self.d_kv;
        let qkv = linear(&self.qkv, hidden);
        let mut outputs = Vec::with_capacity(runs.len());
        let mut start = 0;
        for (run, bias) in runs.iter().zip(biases) {
            let end = start + run.len * run.count;
            let rows = qkv
                .clone()
                .slice([0..1, start..end, 0..3 * inner])
                .reshape([run.count, run.len, 3 * inner]);
            // the output projection per run reads the context view in place; its result is
            // contiguous, so joining the runs is a plain copy
            let output = self.o.forward(self.attend(rows, bias.clone(), None));
            let d_model = output.dims()[2];
            outputs.push(output.reshape([1, run.len * run.count, d_model]));
            start = end;
        }
        if outputs.len() == 1 {
            outputs.pop().expect("one run")
        } else {
            Tensor::cat(outputs, 1)
        }
    }

    /// `softmax(q·kᵀ + bias + mask)·v` per head, for the projections `qkv` of shape
    /// `[batch, len, 3*inner]`; returns `[batch, len, inner]` as a strided view. `mask`, when
    /// given, is `[batch, 1, 1, len]`.
    fn attend(
        &self,
        qkv: Tensor<B, 3>,
        bias: Tensor<B, 4>,
        mask: Option<Tensor<B, 4>>,
    ) -> Tensor<B, 3> {
        let [batch, len, _] = qkv.dims();
        let (heads, d_kv) = (self.num_heads, self.d_kv);
        // [batch, 3*heads, len, d_kv]: q's heads, then k's, then v's (views, no copy)
        let all = qkv.reshape([batch, len, 3 * heads, d_kv]).swap_dims(1, 2);
        let part = |i: usize| all.clone().narrow(1, i * heads, heads);
        let (q, k, v) = (part(0), part(1), part(2));
        // bias is [1 or batch, heads, len, len]: flattened past the first dimension, adding
        // it is one SIMD pass in place (a 4-D broadcast add walks both tensors elementwise)
        let bias_rows = bias.dims()[0];
        let flat = heads * len * len;
        let scores = (q.matmul(k.swap_dims(2, 3)).reshape([batch, flat])
            + bias.reshape([bias_rows, flat]))
        .reshape([batch, heads, len, len]);
        // the mask is 0 at every real key, so adding it after the bias changes no score there
        let scores = match mask {
            Some(mask) => scores + mask,
            None => scores,
        };
        // softmax in fp32 under half precision, as Hugging Face does (`scores.float()`)
        let dtype = scores.dtype();
        let weights = if super::encoder::is_half(dtype) {
            softmax(scores.cast(DType::F32), 3).cast(dtype)
        } else {
            softmax(scores, 3)
        };
        // (w·v)ᵀ = vᵀ·wᵀ: [batch, heads, d_kv, len], whose [batch, inner, len] view transposes
        // to the context in two dimensions
        v.swap_dims(2, 3)
            .matmul(weights.swap_dims(2, 3))
            .reshape([batch, heads * d_kv, len])
            .swap_dims(1, 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Buckets for the t5-11b setting (32 buckets, max distance 128), worked out by hand from
    /// HF's formula: half = 16, max_exact = 8, large = 8 + trunc(ln(d/8)/ln(16) * 8), ≤ 15.
    #[test]
    fn buckets_match_hf_formula() {
        let cases: &[(i64, usize)] = &[
            (0, 0),
            (-1, 1),
            (1, 17),
            (-7, 7),
            (7, 23),
            (-8, 8), // ln(1) = 0
            (8, 24),
            (-11, 8),  // ln(11/8)/ln16*8 = 0.918
            (-12, 9),  // 1.170
            (-15, 9),  // 1.814
            (-16, 10), // exactly 2
            (16, 26),
            (-22, 10), // 2.919
            (-23, 11), // 3.047
            (-32, 12), // exactly 4
            (-45, 12), // 4.984
            (-46, 13), // 5.047
            (-64, 14), // exactly 6
            (64, 30),
            (-90, 14),  // 6.984
            (-91, 15),  // 7.016
            (-127, 15), // 7.977
            (-128, 15), // 8 → clamped to 15
            (128, 31),
            (-129, 15), // beyond max_distance
            (-511, 15),
            (511, 31),
            (100_000, 31),
            (-100_000, 15),
        ];
        for &(rp, want) in cases {
            assert_eq!(
                relative_position_bucket(rp, 32, 128),
                want,
                "relative position {rp}"
            );
        }
    }

    /// Another configuration: 16 buckets, max distance 20 (half 8, max_exact 4).
    #[test]
    fn buckets_small_config() {
        // large = 4 + trunc(ln(d/4)/ln(5) * 4), capped at 7.
        let cases: &[(i64, usize)] = &[
            (3, 11),
            (-3, 3),
            (4, 12),  // 0
            (-7, 5),  // ln(1.75)/ln5*4 = 1.391
            (-9, 6),  // 2.016
            (-14, 7), // 3.114
            (-19, 7), // 3.873
            (-20, 7), // 4 → 8 → capped 7
            (25, 15),
        ];
        for &(rp, want) in cases {
            assert_eq!(
                relative_position_bucket(rp, 16, 20),
                want,
                "relative position {rp}"
            );
        }
    }

    #[test]
    fn buckets_by_distance_are_indexed_from_most_negative() {
        let len = 5;
        let by_distance = buckets_by_distance(len, 32, 128);
        assert_eq!(by_distance.len(), 2 * len - 1);
        for (i, &bucket) in by_distance.iter().enumerate() {
            let distance = i as i64 - (len as i64 - 1);
            assert_eq!(bucket, relative_position_bucket(distance, 32, 128));
        }
        assert!(buckets_by_distance(0, 32, 128).is_empty());
        assert_eq!(buckets_by_distance(1, 32, 128), vec![0]);
    }

    #[test]
    fn bias_is_table_at_bucket_of_key_minus_query() {
        use crate::model::t5::{FeedForwardProj, T5Config};
        use crate::model::CpuBackend;
        let config = T5Config {
            model_type: crate::model::t5::ModelType::T5,
            d_model: 4,
            d_kv: 2,
            d_ff: 4,
            num_heads: 2,
            num_layers: 1,
            relative_attention_num_buckets: 8,
            relative_attention_max_distance: 6,
            layer_norm_epsilon: 1e-6,
            feed_forward_proj: FeedForwardProj::Relu,
            vocab_size: 4,
        };
        let device = Default::default();
        let encoder = config.init::<CpuBackend>(&device);
        let attention = &encoder.blocks[0].attention;
        let table = attention
            .relative_attention_bias
            .as_ref()
            .unwrap()
            .weight
            .val();
        let table = table.into_data().to_vec::<f32>().unwrap(); // [8 buckets, 2 heads]
        let len = 9;
        let bias = attention.compute_bias(len, &device);
        assert_eq!(bias.dims(), [1, 2, len, len]);
        let gathered = attention.gather_bias(attention.bucket_indices(len, &device), len);
        assert_eq!(
            gathered.into_data().to_vec::<f32>().unwrap(),
            bias.clone().into_data().to_vec::<f32>().unwrap()
        );
        let bias = bias.into_data().to_vec::<f32>().unwrap();
        for head in 0..2 {
            for q in 0..len {
                for k in 0..len {
                    let bucket = relative_position_bucket(k as i64 - q as i64, 8, 6);
                    let got = bias[(head * len + q) * len + k];
                    assert_eq!(got, table[bucket * 2 + head], "head {head} q {q} k {k}");
                }
            }
        }
    }
}
