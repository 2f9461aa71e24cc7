//! Loading and splitting times of the real datasets (skipped when `../shared/data` is absent) and
//! of the synthetic generator.

use criterion::{Criterion, criterion_group, criterion_main};
use tears::data::{
    DatasetName, LoadOptions, PrepareOptions, default_data_dir, loaders, prepare,
    synthetic::{SyntheticConfig, generate},
};

fn benches(c: &mut Criterion) {
    let root = default_data_dir();
    let mut group = c.benchmark_group("data");
    group.sample_size(10);
    group.bench_function("synthetic/generate 2000x1500", |b| {
        b.iter(|| generate(&SyntheticConfig::default()).expect("synthetic"))
    });
    group.bench_function("synthetic/prepare", |b| {
        b.iter(|| prepare(DatasetName::Synthetic, &PrepareOptions::default()).expect("prepare"))
    });
    if root.join("ml-100k/u.data").is_file() {
        group.bench_function("ml100k/load", |b| {
            b.iter(|| loaders::load_ml100k(&root.join("ml-100k"), &LoadOptions::default()).expect("load"))
        });
        let opts = PrepareOptions { data_dir: root.clone(), ..Default::default() };
        group.bench_function("ml100k/load+split", |b| b.iter(|| prepare(DatasetName::Ml100k, &opts).expect("prepare")));
    } else {
        eprintln!("skipping ML-100K: {} not found", root.join("ml-100k").display());
    }
    if root.join("ml-1m/movies.dat").is_file() {
        group.bench_function("ml1m-partial/load", |b| {
            b.iter(|| loaders::load_ml1m(&root.join("ml-1m"), &LoadOptions::default()).expect("load"))
        });
        let opts = PrepareOptions { data_dir: root.clone(), ..Default::default() };
        group.bench_function("ml1m-partial/load+split random-holdout", |b| {
            b.iter(|| prepare(DatasetName::Ml1m, &opts).expect("prepare"))
        });
        group.bench_function("ml1m-gpt4/load+summaries+split", |b| {
            b.iter(|| prepare(DatasetName::Ml1mGpt4, &opts).expect("prepare"))
        });
        // The full ML-1M size (1,000,209 ratings): the partial file's lines repeated with shifted
        // user ids, written as a plain ratings.dat beside a copy of movies.dat.
        let tmp = tempfile::tempdir().expect("tmp");
        let full = tmp.path().join("ml-1m");
        std::fs::create_dir_all(&full).expect("mkdir");
        std::fs::copy(root.join("ml-1m/movies.dat"), full.join("movies.dat")).expect("copy movies");
        let partial = tears::data::io::read_all(&root.join("ml-1m/ratings_partial_users1-2999.dat.gz"), "bench")
            .expect("read partial ratings");
        let lines: Vec<&[u8]> = partial.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
        let mut out = Vec::with_capacity(partial.len() * 21 / 10);
        for k in 0..1_000_209usize {
            let line = lines[k % lines.len()];
            let shift = (k / lines.len()) as u64 * 3000;
            let text = std::str::from_utf8(line).expect("ascii ratings");
            let (user, rest) = text.split_once("::").expect("ML-1M line");
            let user: u64 = user.parse().expect("user id");
            out.extend_from_slice(format!("{}::{rest}\n", user + shift).as_bytes());
        }
        std::fs::write(full.join("ratings.dat"), out).expect("write ratings");
        let full_opts = PrepareOptions { data_dir: tmp.path().to_path_buf(), ..Default::default() };
        group.bench_function("ml1m-1M-ratings/load", |b| {
            b.iter(|| loaders::load_ml1m(&full, &LoadOptions::default()).expect("load"))
        });
        group.bench_function("ml1m-1M-ratings/load+split random-holdout", |b| {
            b.iter(|| prepare(DatasetName::Ml1m, &full_opts).expect("prepare"))
        });
    } else {
        eprintln!("skipping ML-1M: {} not found", root.join("ml-1m").display());
    }
    group.finish();
}

criterion_group!(data, benches);
criterion_main!(data);
