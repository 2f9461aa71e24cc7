//! One training epoch of TEARS-RecVAE (`tears_model::train::TearsTask::epoch`, the loop
//! `tears train tears` runs) on the `ml1m-gpt4` training users (the synthetic dataset when the
//! shared data is absent), with frozen, cached profile vectors.
//!
//! Per mini-batch of 500 users: the dense click rows and the profile rows, the frozen RecVAE
//! encoder's forward pass (input dropout 0.5; on CPU backends its first layer from the clicks'
//! non-zeros, or the dense product with `TEARS_DENSE_INPUT=1`), the linear head `384 → 2 · 200`, the samples, the
//! three logits `200 → items` (two decodes and their mix) with their multinomial NLLs, the Gaussian W2 and KL terms, the backward
//! pass through the head and the decoder, and AdamW. No validation, no checkpoint (those are in
//! `tears train`'s own timing).
//!
//! The profile vectors are seeded unit vectors of all-MiniLM-L6-v2's width (384): with the encoder
//! frozen, a real summary's vector costs the epoch exactly what a random one does, and the bench
//! needs neither the encoder nor the summaries. The backbone is a freshly initialised RecVAE of the
//! reference size (the weights' values do not change the work either).
//!
//! Run: `cargo bench --bench tears`; the PyTorch peer of the same step is
//! `benches/peers/tears_torch.py --split DIR` (same shapes, batch, threads). Throughput is counted
//! in dense matmul FLOPs (see [`flops_per_user`]).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tears::data::{Interactions, Split, Values};
use tears::model::encoder::{ProfileEncoder, TextEncoderChoice};
use tears::model::nets::Fused;
use tears::model::train::{TearsTask, TrainingData, Validation};
use tears::model::{TearsConfig, TearsTrainConfig};
use tears::recommender::MissingProfile;
use tears::vae::{EpochTask, Fingerprint, RecVae, RecVaeConfig};

/// all-MiniLM-L6-v2's embedding width.
const PROFILE_DIM: usize = 384;

/// Seeded unit vectors, one per training user.
fn profiles(users: usize) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut m = Array2::from_shape_fn((users, PROFILE_DIM), |_| rng.random::<f32>() - 0.5);
    for mut row in m.rows_mut() {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        row.mapv_inplace(|v| v / norm);
    }
    m
}

/// Dense-matmul FLOPs of one user's step: the frozen encoder forward only (`items → 600`, four
/// `600 → 600`, two `600 → 200`); the head forward and weight gradient (`384 → 400`; its input is
/// data); two decodes forward (RecVAE's decoder is affine, so the mixed latent's logits are the
/// mix of the text and backbone logits) and their weight gradients, and the input gradient of the
/// text decode (the backbone's latent has no trainable parents).
fn flops_per_user(n_items: usize, c: &RecVaeConfig) -> f64 {
    let (h, l, n, d) = (c.hidden as f64, c.latent as f64, n_items as f64, PROFILE_DIM as f64);
    let encoder = 2.0 * (n * h + (c.layers as f64 - 1.0) * h * h + 2.0 * h * l);
    let head = 2.0 * 2.0 * d * 2.0 * l;
    let decoder = 2.0 * l * n * (2.0 + 2.0 + 1.0);
    encoder + head + decoder
}

fn bench_backend<B: Backend>(c: &mut Criterion, backend: &str, split: &Split) {
    let device = B::Device::default();
    let x = Interactions::from_rows(
        &split.train,
        split.n_items(),
        Values::Binary { positive_above: split.meta.positive_above },
    )
    .expect("training interactions");
    let users = split.train.users.clone();
    let data = TrainingData { profiles: profiles(users.len()), x, users, skipped: 0 };
    let config = TearsConfig::default().check().expect("the reference configuration");
    let train = TearsTrainConfig::default();
    let recvae = RecVaeConfig::default();
    let backbone = RecVae::<Autodiff<B>>::new(&recvae, split.n_items(), 0, &device);
    let net = Fused::new(backbone, config.get(), PROFILE_DIM, 0, &device);
    // The encoder only serves validation, which the bench does not run.
    let encoder = ProfileEncoder::text(&TextEncoderChoice::parse("hashing"), None, &device).expect("hashing encoder");
    let validation = Validation { split, profiles: None, missing: MissingProfile::Skip };
    let mut task = TearsTask::<Autodiff<B>, _>::new(
        net,
        &data,
        &config,
        &train,
        Arc::new(encoder),
        validation,
        device.clone(),
        Fingerprint::new(),
    )
    .expect("the TEARS task");
    let flops = flops_per_user(split.n_items(), &recvae) * data.x.n_rows() as f64;
    let mut group = c.benchmark_group(format!("tears-epoch/{backend}"));
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(1));
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(flops as u64));
    let mut epoch = 1;
    task.epoch(epoch).expect("warm-up epoch");
    group.bench_function(BenchmarkId::from_parameter("tears-recvae"), |bench| {
        bench.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                epoch += 1;
                task.epoch(epoch).expect("epoch");
            }
            B::sync(&device).ok();
            started.elapsed()
        })
    });
    group.finish();
}

fn bench(c: &mut Criterion) {
    let split = common::split();
    common::each_backend!(bench_backend, c, &split);
}

criterion_group!(benches, bench);
criterion_main!(benches);
