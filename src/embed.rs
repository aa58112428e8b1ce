//! The `encode` command: embed a list of captions with the same tokenizer, batching and
//! encoder as `shard`, timed. Used by the benchmarks and to check a model on a new device.

use std::time::Instant;

use serde::Serialize;

use crate::model::TextEncoder;

/// What an encode run measured.
#[derive(Clone, Debug, Serialize)]
pub struct EncodeStats {
    /// Captions embedded.
    pub captions: usize,
    /// Tokens embedded (`</s>` included).
    pub tokens: usize,
    /// Seconds spent tokenizing.
    pub tokenize_seconds: f64,
    /// Seconds spent in the encoder (wall clock over all threads).
    pub encode_seconds: f64,
    /// Captions per second of encoder time.
    pub captions_per_s: f64,
    /// Tokens per second of encoder time.
    pub tokens_per_s: f64,
    /// Encoder threads.
    pub threads: usize,
}

/// Embeds `captions` (raw, as in metadata) with batches of at most `batch_size` captions and
/// `max_batch_tokens` tokens, in input order, spread over `threads` threads (sharing the
/// encoder). Returns each caption's `len × d_model` fp32 rows.
pub fn embed_captions(
    encoder: &dyn TextEncoder,
    captions: &[String],
    batch_size: usize,
    max_batch_tokens: usize,
    threads: usize,
) -> (Vec<Vec<f32>>, EncodeStats) {
    let t0 = Instant::now();
    let ids: Vec<Vec<u32>> = captions.iter().map(|c| encoder.tokenize(c)).collect();
    let tokenize_seconds = t0.elapsed().as_secs_f64();
    // cut batches in input order
    let mut batches: Vec<std::ops::Range<usize>> = Vec::new();
    let (mut start, mut tokens) = (0, 0);
    for (i, seq) in ids.iter().enumerate() {
        if i > start && (i - start >= batch_size.max(1) || tokens + seq.len() > max_batch_tokens) {
            batches.push(start..i);
            start = i;
            tokens = 0;
        }
        tokens += seq.len();
    }
    if start < ids.len() {
        batches.push(start..ids.len());
    }
    let threads = threads.max(1);
    let t1 = Instant::now();
    let mut out: Vec<Vec<f32>> = vec![Vec::new(); ids.len()];
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (ids, batches) = (&ids, &batches);
                scope.spawn(move || {
                    let mut results = Vec::new();
                    for range in batches.iter().skip(t).step_by(threads) {
                        let seqs: Vec<&[u32]> =
                            ids[range.clone()].iter().map(Vec::as_slice).collect();
                        results.push((range.start, encoder.encode_batch(&seqs)));
                    }
                    results
                })
            })
            .collect();
        for h in handles {
            for (start, rows) in h.join().expect("encoder thread panicked") {
                for (i, r) in rows.into_iter().enumerate() {
                    out[start + i] = r;
                }
            }
        }
    });
    let encode_seconds = t1.elapsed().as_secs_f64();
    let tokens: usize = ids.iter().map(Vec::len).sum();
    let stats = EncodeStats {
        captions: captions.len(),
        tokens,
        tokenize_seconds,
        encode_seconds,
        captions_per_s: captions.len() as f64 / encode_seconds.max(1e-9),
        tokens_per_s: tokens as f64 / encode_seconds.max(1e-9),
        threads,
    };
    (out, stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::t5::T5TextEncoder;
    use crate::model::CpuBackend;

    #[test]
    fn threads_and_batching_do_not_change_results() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/t5-tiny");
        let enc = T5TextEncoder::<CpuBackend>::load(&dir, &Default::default()).unwrap();
        let captions: Vec<String> = (0..9)
            .map(|i| format!("caption number {i} {}", "word ".repeat(i * 7)))
            .collect();
        let (one, s1) = embed_captions(&enc, &captions, 1, 512, 1);
        let (many, s3) = embed_captions(&enc, &captions, 4, 600, 3);
        assert_eq!(one, many);
        assert_eq!(s1.tokens, s3.tokens);
        assert_eq!(s1.captions, 9);
        for (c, rows) in captions.iter().zip(&one) {
            assert_eq!(rows.len(), enc.tokenize(c).len() * 16);
        }
    }
}
