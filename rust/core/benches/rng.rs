//! Criterion benchmark of the counter-based normal sampler (one thread).
use analogkernels_core::rng::{fill_normals, fill_normals16};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("normals");
    let mut out = vec![0f32; 1 << 16];
    group.throughput(Throughput::Elements(out.len() as u64));
    group.bench_function("fill_normals_f32_65536", |b| {
        b.iter(|| fill_normals(1, 2, 0, &mut out));
    });
    group.bench_function("fill_normals16_f32_65536", |b| {
        b.iter(|| fill_normals16(1, 2, 0, &mut out));
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
