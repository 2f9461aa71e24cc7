//! Quick start: prepare a benchmark and look at one user.
//!
//! Uses the real `ml1m-gpt4` benchmark (MovieLens 1M with the TEARS authors' GPT-4 summaries) when
//! its files are under `$TEARS_DATA_DIR` or `../shared/data`, and the embedded synthetic dataset
//! otherwise. Prints the split's statistics, then one test user's most recent ratings (what a
//! summarizer may see), their stored summary when there is one, and what the models will be
//! asked to predict.
//!
//! ```text
//! cargo run --release --example quickstart [-- --dataset synthetic|ml100k|ml1m-gpt4 --seed N]
//! ```

use std::time::Instant;

use anyhow::{Context, Result};
use tears::data::loaders::format_date;
use tears::data::{DatasetName, PrepareOptions, default_data_dir, named::gpt4_summaries_path, prepare};

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
    Ok(())
}
