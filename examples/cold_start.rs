//! Cold start: a brand-new user with no ratings types one sentence about what they like, and
//! gets recommendations from it. With no history TEARS reads the text alone (alpha = 1).
//!
//! Reuses the quick start's trained model (trains it first when missing: see `quickstart`);
//! after that it takes a few seconds. Give your own sentences as arguments, or see three.
//!
//! ```text
//! cargo run --release --example cold_start [-- "I love animated musicals and hate gore." ...]
//! ```

mod common;

use std::collections::HashMap;

use anyhow::Result;
use tears::model::recommend::{Request, ScrutableModel};

fn main() -> Result<()> {
    let (options, args) = common::Options::from_args(&[])?;
    let setup = common::setup(&options)?;
    let sentences: Vec<String> = if args.positional.is_empty() {
        [
            "I love animated musicals and hate gore.",
            "Tense political thrillers and spy films, nothing romantic.",
            "Old black-and-white film noir and hard-boiled detectives.",
        ]
        .map(String::from)
        .to_vec()
    } else {
        args.positional.clone()
    };
    let items = setup.items();
    let model = ScrutableModel::new(setup.tears, items);
    for sentence in &sentences {
        let started = std::time::Instant::now();
        let answer = model.recommend(&Request::summary(sentence.as_str(), 10))?;
        println!("\n\"{sentence}\" (alpha {}, no history; {:.0?}):", answer.alpha, started.elapsed());
        let mut genres: HashMap<&str, usize> = HashMap::new();
        for item in &answer.items {
            println!("{:>4}. {} [{}]", item.rank, item.title, item.genres.join(", "));
            for g in &item.genres {
                *genres.entry(g.as_str()).or_default() += 1;
            }
        }
        let mut genres: Vec<(&str, usize)> = genres.into_iter().collect();
        genres.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let top: Vec<String> = genres.iter().take(4).map(|(g, n)| format!("{g} {n}")).collect();
        println!("      most frequent genres in the list: {}", top.join(", "));
    }
    Ok(())
}
