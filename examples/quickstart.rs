//! Quick start: prepare a benchmark, look at one user, train a Mult-VAE backbone and compare it
//! with the baselines.
//!
//! Uses the real `ml1m-gpt4` benchmark (MovieLens 1M with the TEARS authors' GPT-4 summaries) when
//! its files are under `$TEARS_DATA_DIR` or `../shared/data`, and the embedded synthetic dataset
//! otherwise. Prints the split's statistics, then one test user's most recent ratings (what a
//! summarizer may see), their stored summary when there is one, and what the models will be
//! asked to predict; then trains Mult-VAE on the default backend (validation NDCG@100 picks the
//! epoch), evaluates it beside most-popular and EASE on the test users, and shows the user's
//! top recommendations.
//!
//! ```text
//! cargo run --release --example quickstart [-- --dataset synthetic|ml100k|ml1m-gpt4 --seed N]
//! ```

use std::time::Instant;

use anyhow::{Context, Result};
use tears::baselines::{Ease, EaseConfig, EvalOptions, Fit, Popularity, Recommender, evaluate_split};
use tears::data::loaders::format_date;
use tears::data::{DatasetName, PrepareOptions, default_data_dir, named::gpt4_summaries_path, prepare};
use tears::data::{EvalSet, Split};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let data_dir = default_data_dir();
    let name: DatasetName = match arg("--dataset") {
        Some(n) => n.parse()?,
        None if data_dir.join("ml-1m/movies.dat").is_file() && gpt4_summaries_path(&data_dir).is_ok() => {
            DatasetName::Ml1mGpt4
        }
        None => {
            println!("(no real data under {}: using the synthetic dataset)", data_dir.display());
            DatasetName::Synthetic
        }
    };
    let seed: u64 = arg("--seed").map(|s| s.parse()).transpose()?.unwrap_or(0);

    let started = Instant::now();
    let prepared = prepare(name, &PrepareOptions { data_dir: data_dir.clone(), seed, ..Default::default() })
        .with_context(|| format!("preparing {}", name.as_str()))?;
    let split = &prepared.split;
    let stats = prepared.dataset.stats(split.meta.positive_above);
    let c = &split.meta.counts;
    println!(
        "== {} ({} protocol, seed {}), prepared in {:.0?}",
        split.meta.dataset,
        split.meta.protocol,
        seed,
        started.elapsed()
    );
    println!(
        "dataset: {} ratings ({} positive) from {} users on {} items, density {:.2}%",
        stats.events,
        stats.positives,
        stats.users,
        stats.rated_items,
        100.0 * stats.density
    );
    println!(
        "split:   {} train users ({} positive interactions), {} validation and {} test users, {} items",
        c.train_users, c.train_interactions, c.validation_users, c.test_users, c.items
    );

    let test = &split.test;
    let k = 0;
    let user = test.users()[k];
    let window = &test.windows[k];
    println!();
    println!(
        "== test user {user}: {} ratings in the window a summarizer sees, {} held-out positives to predict",
        window.len(),
        test.heldout.row(k).len()
    );
    println!("most recent ratings:");
    for w in window.iter().rev().take(10) {
        println!(
            "  {}  {}  {}{}  [{}]",
            format_date(w.timestamp),
            "*".repeat(w.rating.round() as usize),
            w.title,
            w.year.map(|y| format!(" ({y})")).unwrap_or_default(),
            w.genres.join(", ")
        );
    }
    if let Some(summary) = prepared.summaries.as_ref().and_then(|s| s.get(user)) {
        println!();
        println!("stored summary (GPT-4, written from the window):");
        println!("  {summary}");
    }
    let held: Vec<String> =
        test.heldout.row(k).iter().take(5).map(|r| split.items[r.item as usize].title.clone()).collect();
    println!();
    println!("a few of the held-out positives (earlier than the window): {}", held.join("; "));

    println!();
    let backend = tears::backend::BackendKind::default();
    println!("== training Mult-VAE on {} ({})", split.meta.dataset, backend.describe());
    let started = Instant::now();
    let (vae, report) = tears::backend::run(backend, TrainMultVae { split, seed })??;
    let s = &report.summary;
    println!(
        "{} epochs in {:.1?}; best epoch {} (validation NDCG@100 {:.4})",
        s.epochs_run,
        started.elapsed(),
        s.best_epoch,
        s.best_validation_ndcg.unwrap_or(0.0)
    );
    let pop = Popularity::fit_split(split)?;
    let ease = Ease::fit(split, &EaseConfig::default(), seed)?;
    println!();
    println!("== test users ({}): mean ± standard error", test.len());
    println!("{:<14} {:>17} {:>17}", "model", "Recall@20", "NDCG@20");
    for (name, model) in [("most-popular", &pop as &dyn Recommender), ("EASE", &ease), ("Mult-VAE", vae.as_ref())] {
        let report = evaluate_split(model, split, EvalSet::Test, &EvalOptions { ks: vec![20], ..Default::default() })?;
        if let Some(a) = report.at(20) {
            println!(
                "{name:<14} {:>8.4} ± {:.4} {:>8.4} ± {:.4}",
                a.recall.mean, a.recall.std_err, a.ndcg.mean, a.ndcg.std_err
            );
        }
    }
    println!();
    println!("Mult-VAE's top 5 for test user {user} (seen items excluded):");
    for (item, score) in top_unseen(vae.as_ref(), split, k, 5)? {
        let it = &split.items[item];
        println!("  {score:>7.3}  {}{}", it.title, it.year.map(|y| format!(" ({y})")).unwrap_or_default());
    }
    Ok(())
}

/// Trains Mult-VAE with its reference hyper-parameters (at most 60 epochs, patience 10).
struct TrainMultVae<'a> {
    split: &'a Split,
    seed: u64,
}

impl tears::backend::BackendJob for TrainMultVae<'_> {
    type Output = tears::vae::Result<(Box<dyn Recommender>, tears::vae::TrainReport)>;
    fn run<B: burn::tensor::backend::AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let kind = tears::vae::BackboneKind::MultVae;
        let train = tears::vae::TrainConfig { epochs: 60, patience: Some(10), seed: self.seed, ..kind.default_train() };
        let run = tears::vae::RunOptions { progress: true, ..Default::default() };
        tears::vae::fit_config::<B>(&kind.default_model(), self.split, &train, &run, &device)
    }
}

/// The `n` best-scored items of test user `k` that are not in their fold-in.
fn top_unseen(model: &dyn Recommender, split: &Split, k: usize, n: usize) -> Result<Vec<(usize, f32)>> {
    let foldin = tears::baselines::evaluate::slice_rows(&split.test.foldin, k..k + 1);
    let scores = model.score(&foldin)?;
    let seen: std::collections::HashSet<usize> = foldin.row(0).iter().map(|r| r.item as usize).collect();
    let mut ranked: Vec<(usize, f32)> = scores.iter().copied().enumerate().filter(|(i, _)| !seen.contains(i)).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    ranked.truncate(n);
    Ok(ranked)
}
