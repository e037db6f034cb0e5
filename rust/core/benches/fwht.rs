//! Criterion benchmark of the Rust FWHT kernel alone (no Python), per
//! instruction set, single thread.
use analogkernels_core::hadamard::{fwht, FwhtParams, Isa};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn bench(c: &mut Criterion) {
    analogkernels_core::parallel::set_num_threads(1);
    let mut group = c.benchmark_group("fwht_f32_one_row");
    for log_n in [8u32, 12, 16, 20] {
        let n = 1usize << log_n;
        let mut x: Vec<f32> = (0..n).map(|i| (i % 7) as f32 - 3.0).collect();
        group.throughput(Throughput::Elements(n as u64));
        for isa in Isa::available() {
            let p = FwhtParams {
                normalize: true,
                isa: Some(isa),
            };
            group.bench_with_input(BenchmarkId::new(isa.name(), n), &n, |b, &n| {
                b.iter(|| fwht(&mut x, n, &p).unwrap());
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
