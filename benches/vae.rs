//! Time per training epoch of each VAE backbone on the `ml1m-gpt4` training users (the embedded
//! synthetic dataset when the shared data is absent), per compiled backend.
//!
//! Criterion's throughput is the epoch's dense-matmul FLOPs (forward and backward, see
//! [`matmul_flops_per_user`]), so its "elem/s" reads as FLOP/s reached in the dominant matmuls.
//! On CPU backends the first layer of Mult-DAE, Mult-VAE and RecVAE runs on the clicks'
//! non-zeros (`tears_vae::input`), so the count overstates the work done; set
//! `TEARS_DENSE_INPUT=1` to time the dense product it replaces.
//!
//! ```text
//! cargo bench --bench vae                       # flex (AVX-512 kernels)
//! cargo bench --bench vae --features ndarray    # flex and ndarray
//! TEARS_BENCH_MODELS=multvae,recvae cargo bench --bench vae
//! ```
//! The PyTorch peer is `benches/peers/vae_torch.py --bench` (docs/benchmarks-vae.md).

mod common;

use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::time::{Duration, Instant};
use tears::data::Split;
use tears::vae::{BackboneKind, MacridVae, ModelConfig, MultDae, MultVae, RecVae, TrainConfig, Trainable, Trainer};

/// Dense-matmul FLOPs of one user's forward and backward pass: a layer `d_in → d_out` costs
/// `2·d_in·d_out` forward, as much again for its weight gradient, and as much again for its input
/// gradient unless its input is the data.
fn layer_flops(layers: &[(usize, usize, bool)]) -> f64 {
    layers.iter().map(|&(i, o, first)| (if first { 4.0 } else { 6.0 }) * (i * o) as f64).sum()
}

/// FLOPs per user per epoch of `config` over `n` items.
fn matmul_flops_per_user(config: &ModelConfig, n: usize) -> f64 {
    match config {
        ModelConfig::MultDae(c) => layer_flops(&[(n, c.hidden, true), (c.hidden, n, false)]),
        ModelConfig::MultVae(c) => layer_flops(&[
            (n, c.hidden, true),
            (c.hidden, 2 * c.latent, false),
            (c.latent, c.hidden, false),
            (c.hidden, n, false),
        ]),
        ModelConfig::RecVae(c) => {
            let mut layers = vec![(n, c.hidden, true)];
            layers.extend(std::iter::repeat_n((c.hidden, c.hidden, false), c.layers - 1));
            layers.extend([(c.hidden, c.latent, false), (c.hidden, c.latent, false), (c.latent, n, false)]);
            let train = layer_flops(&layers);
            // The prior's frozen encoder runs forward only.
            let prior = 2.0 * (n * c.hidden + (c.layers - 1) * c.hidden * c.hidden + 2 * c.hidden * c.latent) as f64;
            (train + prior) * (c.encoder_passes + c.decoder_passes) as f64
        }
        ModelConfig::MacridVae(c) => {
            let k = c.concepts;
            let encoder = layer_flops(&[(n, c.dim, true), (c.dim, 2 * c.dim, false)]) * k as f64;
            // z_k · itemsᵀ for every concept: forward, and gradients for z and the items.
            let decoder = 6.0 * (k * c.dim * n) as f64;
            encoder + decoder
        }
    }
}

fn bench_kind<B: Backend, M: Trainable<Autodiff<B>>>(
    c: &mut Criterion,
    backend: &str,
    split: &Split,
    kind: BackboneKind,
    make: impl Fn(&B::Device) -> M,
) {
    let device = B::Device::default();
    let config = kind.default_model();
    let train = TrainConfig { seed: 0, ..kind.default_train() };
    let model = make(&device);
    let mut trainer = Trainer::<Autodiff<B>, M>::new(model, split, &train, &device).expect("trainer");
    let flops = matmul_flops_per_user(&config, split.n_items()) * split.train.len() as f64;
    let mut group = c.benchmark_group(format!("vae-epoch/{backend}"));
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(1));
    group.measurement_time(Duration::from_secs(if kind == BackboneKind::RecVae { 30 } else { 10 }));
    group.throughput(Throughput::Elements(flops as u64));
    let mut epoch = 0;
    trainer.epoch(0).expect("warm-up epoch");
    group.bench_function(BenchmarkId::from_parameter(kind.name()), |bench| {
        bench.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                epoch += 1;
                trainer.epoch(epoch).expect("epoch");
            }
            B::sync(&device).ok();
            started.elapsed()
        })
    });
    group.finish();
}

fn bench_backend<B: Backend>(c: &mut Criterion, backend: &str, split: &Split) {
    let wanted = std::env::var("TEARS_BENCH_MODELS").unwrap_or_else(|_| "multdae,multvae,recvae,macridvae".into());
    let n = split.n_items();
    for name in wanted.split(',').filter(|s| !s.is_empty()) {
        let kind: BackboneKind = name.parse().expect("a backbone name in TEARS_BENCH_MODELS");
        match kind.default_model() {
            ModelConfig::MultDae(m) => {
                bench_kind(c, backend, split, kind, |d| MultDae::<Autodiff<B>>::new(&m, n, 0, d))
            }
            ModelConfig::MultVae(m) => {
                bench_kind(c, backend, split, kind, |d| MultVae::<Autodiff<B>>::new(&m, n, 0, d))
            }
            ModelConfig::RecVae(m) => bench_kind(c, backend, split, kind, |d| RecVae::<Autodiff<B>>::new(&m, n, 0, d)),
            ModelConfig::MacridVae(m) => {
                bench_kind(c, backend, split, kind, |d| MacridVae::<Autodiff<B>>::new(&m, n, 0, d))
            }
        }
    }
}

fn benches(c: &mut Criterion) {
    let split = common::split();
    common::each_backend!(bench_backend, c, &split);
}

criterion_group!(vae, benches);
criterion_main!(vae);
