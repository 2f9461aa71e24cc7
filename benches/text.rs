//! Benchmarks of the sentence encoder (`tears-text`) on the shipped ML-1M GPT-4 summaries.
//!
//! Run: `cargo bench --bench text` (about a minute). It needs the model folder
//! `../shared/models/all-MiniLM-L6-v2` (or `$TEARS_MODEL_DIR`) and the summaries under
//! `$TEARS_DATA_DIR` or `../shared/data`, and skips with a message when either is absent.
//!
//! - `text/encode_64`: the first 64 summaries (users in ascending id order), batch size 32
//!   (`$TEARS_BENCH_BATCH`), two batches in flight (`$TEARS_BENCH_CONCURRENT`),
//!   mean pooling + L2 normalisation, truncation at 256 tokens: tokenisation, length sorting,
//!   padding, the forward pass and restoring input order. Throughput in summaries per second.
//! - `text/tokenize_64`: tokenisation alone.
//! - With `TEARS_BENCH_FULL=1`, one timed pass over all 6,016 summaries (printed, not criterion).
//!
//! Every case prints GFLOP/s: the matrix-product FLOPs of the padded batches actually run
//! (`BertConfig::forward_flops`), divided by the time. The Python peer is
//! `benches/peers/text_st.py`; results are in `docs/benchmarks-text.md`.
//!
//! With `--features cuda` the encoder runs on the CUDA backend instead of Flex.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tears::text::{EncoderOptions, SentenceEncoder, TextEncoder};

#[cfg(feature = "cuda")]
type Bk = burn::backend::Cuda;
#[cfg(not(feature = "cuda"))]
type Bk = burn::backend::Flex;

const SUBSET: usize = 64;

/// Batch size: 32, or `$TEARS_BENCH_BATCH`.
fn batch_size() -> usize {
    std::env::var("TEARS_BENCH_BATCH").ok().and_then(|v| v.parse().ok()).filter(|&b| b > 0).unwrap_or(32)
}

/// Batches in flight: the encoder's default (2), or `$TEARS_BENCH_CONCURRENT`.
fn concurrent_batches() -> usize {
    std::env::var("TEARS_BENCH_CONCURRENT")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&b| b > 0)
        .unwrap_or(EncoderOptions::default().concurrent_batches)
}

fn model_dir() -> PathBuf {
    std::env::var_os("TEARS_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(tears::text::DEFAULT_MODEL_DIR))
}

fn summaries() -> Option<Vec<String>> {
    let path = tears::data::named::gpt4_summaries_path(&tears::data::default_data_dir()).ok()?;
    let stored = tears::data::StoredSummaries::load(&path).ok()?;
    Some(stored.texts.into_values().collect())
}

fn bench(c: &mut Criterion) {
    let dir = model_dir();
    let Some(texts) = summaries() else {
        eprintln!("[text] skipping: the ML-1M GPT-4 summaries are not under $TEARS_DATA_DIR or ../shared/data");
        return;
    };
    if !dir.join("model.safetensors").is_file() {
        eprintln!("[text] skipping: no model folder at {} (set TEARS_MODEL_DIR)", dir.display());
        return;
    }
    let options =
        EncoderOptions { batch_size: batch_size(), concurrent_batches: concurrent_batches(), ..Default::default() };
    let encoder = SentenceEncoder::<Bk>::load(&dir, &options, &Default::default()).expect("load the encoder");
    let all: Vec<&str> = texts.iter().map(String::as_str).collect();
    let subset = &all[..SUBSET.min(all.len())];
    let lengths: Vec<usize> = encoder.tokenize(subset).expect("tokenize").iter().map(Vec::len).collect();
    let flops = encoder.flops(&lengths);
    let words: usize = subset.iter().map(|t| t.split_whitespace().count()).sum();
    eprintln!(
        "[text] {} summaries: {:.0} words, {:.1} tokens on average (max {}); {:.2} GFLOP per pass; {} cores; batch {}, {} in flight",
        subset.len(),
        words as f64 / subset.len() as f64,
        lengths.iter().sum::<usize>() as f64 / lengths.len() as f64,
        lengths.iter().max().copied().unwrap_or(0),
        flops / 1e9,
        rayon_threads(),
        options.batch_size,
        options.concurrent_batches,
    );
    let v = encoder.encode(subset).expect("encode");
    let first: Vec<f32> = v.slice([0..1, 0..6]).into_data().convert::<f32>().into_vec().expect("f32");
    eprintln!("[text] first embedding starts {first:?}");

    let mut group = c.benchmark_group("text");
    group.sample_size(10).warm_up_time(Duration::from_secs(2)).measurement_time(Duration::from_secs(15));
    group.throughput(Throughput::Elements(subset.len() as u64));
    let mut seconds = Vec::new();
    group.bench_function(format!("encode_{}", subset.len()), |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let out = encoder.encode(subset).expect("encode");
                // Wait for the result (asynchronous backends).
                let _ = out.slice([0..1, 0..1]).into_data();
            }
            let elapsed = start.elapsed();
            seconds.push(elapsed.as_secs_f64() / iters as f64);
            elapsed
        })
    });
    group.bench_function(format!("tokenize_{}", subset.len()), |b| {
        b.iter(|| encoder.tokenize(subset).expect("tokenize"))
    });
    group.finish();
    seconds.sort_by(f64::total_cmp);
    if let Some(median) = seconds.get(seconds.len() / 2) {
        eprintln!(
            "[text] encode_{}: median {:.3} s per pass, {:.2} summaries/s, {:.1} GFLOP/s",
            subset.len(),
            median,
            subset.len() as f64 / median,
            flops / median / 1e9
        );
    }

    if std::env::var_os("TEARS_BENCH_FULL").is_some() {
        let lengths: Vec<usize> = encoder.tokenize(&all).expect("tokenize").iter().map(Vec::len).collect();
        let flops = encoder.flops(&lengths);
        let start = Instant::now();
        let out = encoder.encode(&all).expect("encode all");
        let _ = out.slice([0..1, 0..1]).into_data();
        let s = start.elapsed().as_secs_f64();
        eprintln!(
            "[text] all {} summaries ({:.1} tokens on average): {:.1} s, {:.2} summaries/s, {:.1} GFLOP/s ({:.0} GFLOP)",
            all.len(),
            lengths.iter().sum::<usize>() as f64 / lengths.len() as f64,
            s,
            all.len() as f64 / s,
            flops / s / 1e9,
            flops / 1e9
        );
    }
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map(usize::from).unwrap_or(1)
}

criterion_group!(benches, bench);
criterion_main!(benches);
