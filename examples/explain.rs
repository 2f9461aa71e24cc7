//! Why is an item recommended? Every item of a test user's top 10 with its full explanation: its
//! rank from the history alone (alpha = 0) and from the summary alone (alpha = 1), and every
//! sentence of the summary that moves it, ranked and signed ("without 'The user enjoys war
//! films', this drops from 3 to 41"), from leaving each sentence out in turn (one encoder batch
//! for all the variants).
//!
//! Reuses the quick start's trained model (trains it first when missing: see `quickstart`);
//! after that it takes a few seconds. `--user ID` picks a test user (default: the first), `--alpha A`
//! the mix (default: the model's alpha*).
//!
//! ```text
//! cargo run --release --example explain [-- --user ID --alpha A --dataset synthetic|ml1m-gpt4]
//! ```

mod common;

use std::time::Instant;

use anyhow::{Context, Result};
use tears::model::recommend::{Request, ScrutableModel, split_sentences};

fn main() -> Result<()> {
    let (options, args) = common::Options::from_args(&["--user", "--alpha"])?;
    let setup = common::setup(&options)?;
    let users = setup.split.test.users();
    let k = match args.value("--user") {
        None => 0,
        Some(u) => {
            let id: u64 = u.parse().context("--user takes a user id")?;
            users
                .iter()
                .position(|&x| x == id)
                .with_context(|| format!("user {id} is not a test user of {}", setup.split.meta.dataset))?
        }
    };
    let alpha: Option<f32> = args.value("--alpha").map(str::parse).transpose().context("--alpha takes a number")?;
    let text = setup.test_summary(k).with_context(|| format!("test user {} has no summary", users[k]))?.to_string();
    let history = setup.test_history(k);
    println!("test user {} ({} rated items); their summary, sentence by sentence:", users[k], history.len());
    for (i, s) in split_sentences(&text).iter().enumerate() {
        println!("  [{i}] {s}");
    }
    let items = setup.items();
    let model = ScrutableModel::new(setup.tears, items);
    let request = Request { history, alpha, explain: true, ..Request::summary(&text, 10) };
    let started = Instant::now();
    let answer = model.recommend(&request)?;
    let took = started.elapsed();
    println!("\ntop 10 at alpha {} (seen items excluded):", answer.alpha);
    for item in &answer.items {
        println!("\n{:>3}. {} [{}]  score {:.3}", item.rank, item.title, item.genres.join(", "), item.score);
        let Some(e) = &item.explanation else { continue };
        let a0 = e.rank_alpha0.map_or_else(|| "-".to_string(), |r| r.to_string());
        println!(
            "     rank from the history alone (alpha 0): {a0}; from the summary alone (alpha 1): {}",
            e.rank_alpha1
        );
        for s in &e.sentences {
            println!("     [{}] {:+.3}  {}", s.index, s.score_change, s.text);
        }
    }
    println!("\n{:.0?} for the list and all its explanations (one encoder batch of every leave-one-out summary)", took);
    Ok(())
}
