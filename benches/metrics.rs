//! Evaluation throughput: top-k with seen items masked + Recall@k + NDCG@k over a
//! 10,000 users × 20,000 items f32 score matrix, k = 100, 50 seen items per user.
//!
//! The data are a deterministic function of (user, item) (splitmix64), generated identically by
//! the numpy peer `benches/peers/metrics_numpy.py`, so both report the same metric means.
//! `TEARS_METRICS_BENCH_USERS` overrides the number of users (default 10,000).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use tears::metrics::{ScoreMatrix, evaluate, top_k};

const N_ITEMS: usize = 20_000;
const K: usize = 100;
const N_SEEN: usize = 50;
const N_HELDOUT: usize = 20;
const CANDIDATES: u64 = 128;
const LIST_STREAM: u64 = 1 << 40;

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Scores in [0, 1) with 24-bit resolution: `(splitmix64(u * I + i) >> 40) / 2^24`.
fn scores(n_users: usize) -> Vec<f32> {
    (0..(n_users * N_ITEMS) as u64).map(|x| (splitmix64(x) >> 40) as f32 / (1u64 << 24) as f32).collect()
}

/// Per user, the first 70 distinct of `splitmix64(2^40 + u * 128 + t) % I`, t = 0..128:
/// the first 50 are seen (masked), the next 20 held out.
fn lists(n_users: usize) -> (Vec<Vec<usize>>, Vec<Vec<usize>>) {
    let mut seen = Vec::with_capacity(n_users);
    let mut heldout = Vec::with_capacity(n_users);
    for u in 0..n_users as u64 {
        let mut distinct: Vec<usize> = Vec::with_capacity(N_SEEN + N_HELDOUT);
        for t in 0..CANDIDATES {
            let item = (splitmix64(LIST_STREAM + u * CANDIDATES + t) % N_ITEMS as u64) as usize;
            if !distinct.contains(&item) {
                distinct.push(item);
                if distinct.len() == N_SEEN + N_HELDOUT {
                    break;
                }
            }
        }
        heldout.push(distinct.split_off(N_SEEN.min(distinct.len())));
        seen.push(distinct);
    }
    (seen, heldout)
}

fn bench(c: &mut Criterion) {
    let n_users: usize = std::env::var("TEARS_METRICS_BENCH_USERS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let data = scores(n_users);
    let (seen, heldout) = lists(n_users);
    let Ok(matrix) = ScoreMatrix::new(&data, n_users, N_ITEMS) else { panic!("bench data has the wrong shape") };
    match evaluate(&matrix, &seen, &heldout, &[K]) {
        Ok(report) => {
            for r in &report.results {
                eprintln!(
                    "k={} recall={:.6} plain_recall={:.6} ndcg={:.6} counted={} excluded={}",
                    r.k, r.recall.mean, r.plain_recall.mean, r.ndcg.mean, r.ndcg.counted, r.ndcg.excluded
                );
            }
        }
        Err(e) => panic!("evaluation failed: {e}"),
    }

    let mut group = c.benchmark_group(format!("metrics_{n_users}x{N_ITEMS}"));
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(n_users as u64));
    group.bench_function("evaluate_topk_recall_ndcg_k100", |b| {
        b.iter(|| black_box(evaluate(&matrix, &seen, &heldout, &[K])))
    });
    group.bench_function("top_k_only_k100", |b| b.iter(|| black_box(top_k(&matrix, &seen, K))));
    group.bench_function("evaluate_k10_20_50_100", |b| {
        b.iter(|| black_box(evaluate(&matrix, &seen, &heldout, &[10, 20, 50, 100])))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
