//! Writer micro-benchmarks: the `.pickle` and `.json` members of one sample.

use criterion::{criterion_group, criterion_main, Criterion};
use half::f16;
use shardflow::formats::npy_pickle::{write_array_list, F16Array, F16ArrayRef};
use shardflow::formats::pyjson;

fn bench_pickle(c: &mut Criterion) {
    // one window of a t5-11b embedding: 124 tokens × 1024
    let a = F16Array::new(
        (124, 1024),
        (0..124 * 1024)
            .map(|i| f16::from_f32((i % 97) as f32 * 0.01))
            .collect(),
    )
    .unwrap();
    let views: Vec<F16ArrayRef> = vec![a.view()];
    c.bench_function("pickle_124x1024_f16", |b| {
        b.iter(|| write_array_list(std::hint::black_box(&views)))
    });
}

fn bench_json(c: &mut Criterion) {
    let text = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/sample-dataset/metas/v0/63f76768-df2d-587a-ab69-56fd52ae8823.json"
    ))
    .unwrap();
    let v = pyjson::parse(&text).unwrap();
    c.bench_function("pyjson_parse_meta", |b| {
        b.iter(|| pyjson::parse(std::hint::black_box(&text)).unwrap())
    });
    c.bench_function("pyjson_dumps_meta", |b| {
        b.iter(|| pyjson::dumps(std::hint::black_box(&v)))
    });
}

criterion_group!(benches, bench_pickle, bench_json);
criterion_main!(benches);
