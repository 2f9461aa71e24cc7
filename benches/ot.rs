//! Benchmarks of the optimal-transport kernels (`tears-ot`) on burn's Flex CPU backend.
//!
//! Run: `cargo bench --bench ot` (whole file: a few minutes on 2 cores). Each case first prints
//! the iteration count to tolerance, then criterion times one full solve (cost matrix, eps from
//! the median cost, iterations, final differentiable update). Problems: x ~ N(0, I),
//! y ~ N(0.5, I), uniform weights, squared-Euclidean cost, f32 unless named, tol = 1e-5 (L1
//! marginal error), at most 1000 iterations. The Python peer (POT) is `benches/peers/ot_pot.py`;
//! results and commands are in `docs/benchmarks-ot.md`.

use std::time::Duration;

use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Distribution, Tensor};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tears::ot::{Epsilon, SinkhornConfig, SinkhornMode, sinkhorn, sinkhorn_divergence};

fn clouds<Bk: Backend>(batch: usize, n: usize, d: usize, dtype: DType) -> (Tensor<Bk, 3>, Tensor<Bk, 3>) {
    let device = Default::default();
    Bk::seed(&device, 0);
    let x = Tensor::<Bk, 3>::random([batch, n, d], Distribution::Normal(0.0, 1.0), &device).cast(dtype);
    let y = Tensor::<Bk, 3>::random([batch, n, d], Distribution::Normal(0.5, 1.0), &device).cast(dtype);
    (x, y)
}

fn config(eps_rel: f64) -> SinkhornConfig {
    SinkhornConfig::default().with_eps(Epsilon::RelativeToMedian(eps_rel)).with_tol(1e-5).with_max_iter(1000)
}

fn report(label: &str, x: &Tensor<Flex, 3>, y: &Tensor<Flex, 3>, config: &SinkhornConfig) {
    let out = sinkhorn(x.clone(), y.clone(), None, None, config).expect("solve");
    let r = &out.report;
    eprintln!(
        "[ot] {label}: iterations {} converged {} max marginal error {:.2e} absorptions {}",
        r.iterations,
        r.converged,
        r.marginal_error.iter().fold(0.0f64, |m, e| m.max(*e)),
        r.absorptions
    );
}

fn solve_sizes(c: &mut Criterion) {
    let mut group = c.benchmark_group("ot/solve");
    group.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
    for d in [64usize, 400] {
        for n in [256usize, 1024, 4096] {
            let (x, y) = clouds::<Flex>(1, n, d, DType::F32);
            let cfg = config(0.05);
            let label = format!("n{n}_d{d}_eps0.05");
            report(&label, &x, &y, &cfg);
            group.bench_function(BenchmarkId::from_parameter(&label), |b| {
                b.iter(|| sinkhorn(x.clone(), y.clone(), None, None, &cfg).expect("solve").value.into_data())
            });
        }
    }
    // A harder eps at n = 1024, d = 64 (hundreds of iterations), both iteration schemes, and f64.
    let (x, y) = clouds::<Flex>(1, 1024, 64, DType::F32);
    for (label, cfg) in [
        ("n1024_d64_eps0.01", config(0.01)),
        ("n1024_d64_eps0.01_logsumexp", config(0.01).with_mode(SinkhornMode::LogSumExp)),
        ("n1024_d64_eps0.01_scaling0.5", config(0.01).with_eps_scaling(Some(0.5))),
    ] {
        report(label, &x, &y, &cfg);
        group.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter(|| sinkhorn(x.clone(), y.clone(), None, None, &cfg).expect("solve").value.into_data())
        });
    }
    let (x64, y64) = (x.clone().cast(DType::F64), y.clone().cast(DType::F64));
    for (label, eps) in [("n1024_d64_eps0.05_f64", 0.05), ("n1024_d64_eps0.01_f64", 0.01)] {
        let cfg = config(eps);
        report(label, &x64, &y64, &cfg);
        group.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter(|| sinkhorn(x64.clone(), y64.clone(), None, None, &cfg).expect("solve").value.into_data())
        });
    }
    group.finish();
}

fn solve_batched(c: &mut Criterion) {
    let mut group = c.benchmark_group("ot/batched");
    group.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
    for batch in [1usize, 32] {
        let (x, y) = clouds::<Flex>(batch, 256, 64, DType::F32);
        let cfg = config(0.05);
        let label = format!("b{batch}_n256_d64");
        report(&label, &x, &y, &cfg);
        group.bench_function(BenchmarkId::from_parameter(&label), |b| {
            b.iter(|| sinkhorn(x.clone(), y.clone(), None, None, &cfg).expect("solve").value.into_data())
        });
    }
    group.finish();
}

fn tears_loss(c: &mut Criterion) {
    // The TEARS alignment loss: a batch of 500 text latents against 500 backbone latents of
    // dimension 200; forward + backward of the debiased divergence on Autodiff<Flex>.
    type AD = Autodiff<Flex>;
    let mut group = c.benchmark_group("ot/tears_loss");
    group.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(3));
    let (x, y) = clouds::<AD>(1, 500, 200, DType::F32);
    for (label, cfg) in [("b500_d200_eps0.05", config(0.05)), ("b500_d200_eps0.01", config(0.01))] {
        let s = sinkhorn_divergence(x.clone(), y.clone(), None, None, &cfg).expect("divergence");
        eprintln!(
            "[ot] tears_loss {label}: iterations xy {} xx {} yy {}",
            s.xy.report.iterations, s.xx.report.iterations, s.yy.report.iterations
        );
        group.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter(|| {
                let z_text = x.clone().require_grad();
                let s = sinkhorn_divergence(z_text.clone(), y.clone(), None, None, &cfg).expect("divergence");
                let grads = s.divergence.mean().backward();
                z_text.grad(&grads).expect("grad").into_data()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, solve_sizes, solve_batched, tears_loss);
criterion_main!(benches);
