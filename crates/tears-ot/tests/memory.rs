//! Memory does not grow with the number of Sinkhorn iterations: the loop runs on detached
//! tensors and only the final update is recorded by autodiff.
//!
//! Measured with the resident set size (Linux `/proc/self/status`), in its own test binary so that
//! no other test allocates concurrently. With n = m = 512 in f32, every log-sum-exp iteration
//! makes several 1 MiB `[n, m]` temporaries; an unrolled graph over 400 iterations would hold
//! well over 1 GiB, while the envelope-theorem graph holds a few `[n, m]` tensors whatever the
//! iteration count.

mod common;

use burn::tensor::DType;
use common::{AD, randn, values};
use tears_ot::{Epsilon, SinkhornConfig, SinkhornMode, sinkhorn_divergence};

fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// RSS growth while holding the loss (graph not yet consumed) after `iterations` iterations,
/// and the gradient norm after backward.
fn run(iterations: usize, mode: SinkhornMode) -> (u64, usize, f64) {
    let x = randn::<AD>([1, 512, 16], 1, 0.0, DType::F32).require_grad();
    let y = randn::<AD>([1, 512, 16], 2, 0.5, DType::F32);
    // tol = 0: run exactly `iterations` iterations.
    let config = SinkhornConfig::default()
        .with_eps(Epsilon::RelativeToMedian(0.01))
        .with_tol(0.0)
        .with_max_iter(iterations)
        .with_mode(mode);
    let before = rss_bytes().expect("rss");
    let s = sinkhorn_divergence(x.clone(), y, None, None, &config).expect("divergence");
    let loss = s.divergence.sum();
    let held = rss_bytes().expect("rss").saturating_sub(before);
    let done = s.xy.report.iterations;
    let grads = loss.backward();
    let grad = values(x.grad(&grads).expect("grad"));
    let norm = grad.iter().map(|g| g * g).sum::<f64>().sqrt();
    (held, done, norm)
}

#[test]
fn memory_does_not_grow_with_iterations() {
    if rss_bytes().is_none() {
        eprintln!("/proc/self/status not available: skipping the memory measurement");
        return;
    }
    for mode in [SinkhornMode::LogSumExp, SinkhornMode::Stabilized] {
        let (short, n_short, g_short) = run(20, mode);
        let (long, n_long, g_long) = run(400, mode);
        eprintln!(
            "{mode:?}: RSS growth holding the loss: {:.1} MiB after {n_short} iterations, {:.1} MiB after {n_long}",
            short as f64 / (1 << 20) as f64,
            long as f64 / (1 << 20) as f64
        );
        assert_eq!((n_short, n_long), (20, 400));
        assert!(g_short.is_finite() && g_long.is_finite() && g_long > 0.0);
        // 20× more iterations: the held memory stays within a few [n, m] buffers (1 MiB each),
        // far from the ≥ 380 × 3 MiB an unrolled graph would add.
        assert!(long <= short + (64 << 20), "held {long} bytes after 400 iterations vs {short} after 20");
    }
    // Control: the measurement does see a recorded graph. 100 tracked steps on a [512, 512]
    // tensor keep about 100 MiB of activations alive until backward.
    let x = randn::<AD>([1, 512, 512], 3, 0.0, DType::F32).require_grad();
    let before = rss_bytes().expect("rss");
    let mut t = x.clone();
    for _ in 0..100 {
        t = (t.mul_scalar(0.5).exp() + 1.0).log();
    }
    let loss = t.sum();
    let held = rss_bytes().expect("rss").saturating_sub(before);
    eprintln!("control: an unrolled 100-step graph holds {:.1} MiB", held as f64 / (1 << 20) as f64);
    assert!(held > 64 << 20, "the RSS measurement missed an unrolled graph ({held} bytes)");
    drop(loss.backward());
}
