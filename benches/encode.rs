//! Text-encoder micro-benchmarks: tokenization of realistic captions, `TextEncoder::encode_batch`
//! on the tiny fixture model (`tests/data/t5-tiny`) and, when `SHARDFLOW_BENCH_T5_SMALL` names a
//! model directory (e.g. one made by `benches/make_random_t5.py DIR --shape small`), on that model.
//! The `.pickle` / `.json` writers are in `benches/formats.rs`.
//!
//! ```text
//! cargo bench --bench encode                 # full
//! cargo bench --bench encode -- --quick      # criterion's quick mode
//! SHARDFLOW_BENCH_T5_SMALL=target/bench-models/t5-small cargo bench --bench encode
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use shardflow::model::t5::T5TextEncoder;
use shardflow::model::{CpuBackend, TextEncoder};

const WORDS: &[&str] = &[
    "camera",
    "slowly",
    "pans",
    "across",
    "a",
    "busy",
    "street",
    "with",
    "people",
    "walking",
    "the",
    "red",
    "car",
    "drives",
    "down",
    "wet",
    "city",
    "at",
    "night",
    "while",
    "neon",
    "signs",
    "reflect",
    "on",
    "pavement",
    "woman",
    "in",
    "blue",
    "jacket",
    "holds",
    "an",
    "umbrella",
    "and",
    "looks",
    "toward",
    "bright",
    "shop",
    "window",
    "where",
    "mannequins",
    "display",
    "winter",
    "coats",
    "dog",
    "runs",
    "through",
    "green",
    "park",
    "chasing",
    "yellow",
    "ball",
    "thrown",
    "by",
    "young",
    "boy",
    "sunlight",
    "filters",
    "tall",
    "trees",
    "casting",
    "long",
    "shadows",
    "over",
    "grass",
    "scene",
    "transitions",
    "to",
    "close-up",
    "of",
    "hands",
    "kneading",
    "dough",
    "on",
    "wooden",
    "table",
    "flour",
    "dust",
    "rises",
    "background",
    "is",
    "blurred",
    "shallow",
    "depth",
    "field",
    "gives",
    "cinematic",
    "look",
    "drone",
    "shot",
    "reveals",
    "coastline",
    "waves",
    "crashing",
    "against",
    "rocks",
    "seagulls",
    "circle",
    "above",
    "lighthouse",
    "stands",
    "cliff",
    "its",
    "beam",
    "sweeping",
    "fog",
    "rolls",
    "in",
    "from",
    "sea",
    "12",
    "3.5",
    "o'clock",
    "(slow",
    "motion)",
    "café",
    "über",
];

/// A deterministic xorshift generator (no external crates in benches).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
}

fn caption(rng: &mut Rng, nwords: usize) -> String {
    let mut words: Vec<String> = vec!["The".into(), "video".into(), "shows".into()];
    while words.len() < nwords {
        let n = rng.range(8, 25).min(nwords - words.len());
        for k in 0..n {
            let mut w = WORDS[rng.range(0, WORDS.len() - 1)].to_string();
            if k == 0 {
                let mut c = w.chars();
                w = c
                    .next()
                    .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                    .unwrap_or_default();
            }
            if k + 1 == n {
                w.push('.');
            }
            words.push(w);
        }
    }
    words.join(" ")
}

/// `n` captions of 20-300 words, about 5% of 450-1500 words (over 512 tokens, truncated).
fn realistic_captions(n: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    (0..n)
        .map(|_| {
            if rng.range(0, 99) < 5 {
                let w = rng.range(450, 1500);
                caption(&mut rng, w)
            } else {
                let w = rng.range(20, 300);
                caption(&mut rng, w)
            }
        })
        .collect()
}

fn tiny_model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/t5-tiny")
}

fn load(dir: &Path) -> T5TextEncoder<CpuBackend> {
    T5TextEncoder::<CpuBackend>::load(dir, &Default::default())
        .unwrap_or_else(|e| panic!("loading {}: {e}", dir.display()))
}

fn bench_tokenize(c: &mut Criterion) {
    let enc = load(&tiny_model_dir());
    let caps = realistic_captions(64, 1);
    let bytes: usize = caps.iter().map(String::len).sum();
    let tokens: usize = caps.iter().map(|s| enc.tokenize(s).len()).sum();
    let mut g = c.benchmark_group("tokenize");
    g.throughput(Throughput::Elements(caps.len() as u64));
    g.bench_function(BenchmarkId::new("captions", caps.len()), |b| {
        b.iter(|| {
            caps.iter()
                .map(|s| enc.tokenize(std::hint::black_box(s)).len())
                .sum::<usize>()
        })
    });
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function(BenchmarkId::new("bytes", bytes), |b| {
        b.iter(|| {
            caps.iter()
                .map(|s| enc.tokenize(std::hint::black_box(s)).len())
                .sum::<usize>()
        })
    });
    g.finish();
    eprintln!(
        "tokenize: 64 captions, {bytes} bytes, {tokens} tokens (mean {:.0})",
        tokens as f64 / 64.0
    );
}

/// encode_batch on one model: one caption alone, a batch of 16 mixed captions, one 512-token one.
fn bench_encode_model(c: &mut Criterion, name: &str, dir: &Path, slow: bool) {
    let enc = load(dir);
    let caps = realistic_captions(16, 2);
    let ids: Vec<Vec<u32>> = caps.iter().map(|s| enc.tokenize(s)).collect();
    let long = enc.tokenize(&caption(&mut Rng(7), 1500));
    assert_eq!(
        long.len(),
        512,
        "a 1500-word caption truncates to 512 tokens"
    );
    // a caption near the mean length
    let mean = ids.iter().map(Vec::len).sum::<usize>() / ids.len();
    let single = ids
        .iter()
        .min_by_key(|s| s.len().abs_diff(mean))
        .expect("captions")
        .clone();

    let mut g = c.benchmark_group(format!("encode_batch/{name}"));
    if slow {
        g.sample_size(10);
        g.measurement_time(Duration::from_secs(20));
    }
    let cases: Vec<(String, Vec<&[u32]>)> = vec![
        (format!("1x{}", single.len()), vec![single.as_slice()]),
        (
            format!("16x{mean}"),
            ids.iter().map(Vec::as_slice).collect::<Vec<_>>(),
        ),
        ("1x512".to_string(), vec![long.as_slice()]),
    ];
    for (label, batch) in &cases {
        let tokens: usize = batch.iter().map(|s| s.len()).sum();
        g.throughput(Throughput::Elements(tokens as u64));
        g.bench_with_input(BenchmarkId::new("tokens", label), batch, |b, batch| {
            b.iter(|| enc.encode_batch(std::hint::black_box(batch)))
        });
    }
    g.finish();
}

fn bench_encode(c: &mut Criterion) {
    bench_encode_model(c, "t5-tiny", &tiny_model_dir(), false);
    match std::env::var_os("SHARDFLOW_BENCH_T5_SMALL") {
        Some(dir) if Path::new(&dir).join("config.json").exists() => {
            bench_encode_model(c, "t5-small", Path::new(&dir), true)
        }
        Some(dir) => eprintln!(
            "encode_batch/t5-small: skipped, SHARDFLOW_BENCH_T5_SMALL={} has no config.json",
            Path::new(&dir).display()
        ),
        None => eprintln!(
            "encode_batch/t5-small: skipped (set SHARDFLOW_BENCH_T5_SMALL to a T5 model directory, \
             e.g. one made by `benches/make_random_t5.py target/bench-models/t5-small --shape small`)"
        ),
    }
}

fn bench_to_f16(c: &mut Criterion) {
    // one t5-11b window: 124 tokens × 1024, rounded to fp16 as the pickles store it
    let rows: Vec<f32> = (0..124 * 1024)
        .map(|i| (i % 97) as f32 * 0.013 - 0.6)
        .collect();
    let mut g = c.benchmark_group("to_f16");
    g.throughput(Throughput::Elements(rows.len() as u64));
    g.bench_function("124x1024", |b| {
        b.iter(|| shardflow::model::to_f16(std::hint::black_box(&rows)))
    });
    g.finish();
}

criterion_group!(benches, bench_tokenize, bench_encode, bench_to_f16);
criterion_main!(benches);
