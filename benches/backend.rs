//! Matrix-multiply throughput of each compiled CPU backend, in FLOP/s (criterion's "elem/s").
//!
//! `cargo bench --bench backend --features ndarray` compares flex (with the default `x86-v4`
//! AVX-512 kernels) and ndarray; `cargo bench --bench backend --no-default-features --features
//! flex,ndarray` measures flex's portable kernels for the x86-v4 comparison.

use burn::tensor::{Distribution, Tensor, backend::Backend};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// (m, k, n): a square product and the shape of a Mult-VAE decoder step on ML-1M
/// (batch 500 × latent 600 × 3,308 items).
const SHAPES: [(usize, usize, usize); 2] = [(1024, 1024, 1024), (500, 600, 3308)];

fn bench_backend<B: Backend>(c: &mut Criterion, name: &str) {
    let device = B::Device::default();
    let mut group = c.benchmark_group(format!("matmul/{name}"));
    group.sample_size(10);
    for (m, k, n) in SHAPES {
        let a = Tensor::<B, 2>::random([m, k], Distribution::Normal(0.0, 1.0), &device);
        let b = Tensor::<B, 2>::random([k, n], Distribution::Normal(0.0, 1.0), &device);
        group.throughput(Throughput::Elements((2 * m * k * n) as u64));
        group.bench_function(BenchmarkId::from_parameter(format!("{m}x{k}x{n}")), |bench| {
            bench.iter(|| {
                let c = a.clone().matmul(b.clone());
                B::sync(&device).ok();
                c
            })
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    #[cfg(feature = "flex")]
    bench_backend::<burn::backend::Flex>(c, if cfg!(feature = "x86-v4") { "flex-x86v4" } else { "flex-portable" });
    #[cfg(feature = "ndarray")]
    bench_backend::<burn::backend::NdArray>(c, "ndarray");
    let _ = c;
}

criterion_group!(backend, benches);
criterion_main!(backend);
