//! Profile edits as data: every kind of `tears::model::recommend::Edit` applied to one test
//! user's summary, each followed by the re-ranked top 10 with arrows for the rank moves and the
//! profile text that produced it. An application shows, undoes and logs edits this way.
//!
//! Reuses the quick start's trained model (trains it first when missing: see `quickstart`);
//! after that it takes a few seconds. `--alpha A` re-ranks at another mix (default: the
//! model's alpha*; 1 shows the summary alone).
//!
//! ```text
//! cargo run --release --example edit_summary [-- --alpha A --dataset synthetic|ml1m-gpt4]
//! ```

mod common;

use anyhow::{Context, Result};
use tears::model::recommend::{Edit, Recommendation, Request, ScrutableModel, split_sentences};
use tears::summarize::History;
use tears::summarize::edit::favourite_from_history;

fn print_moves(edit: &Edit, r: &Recommendation, before: &Recommendation) {
    println!("\n== {edit:?}");
    println!("   profile: {}", r.profile.as_deref().unwrap_or("(a genre vector)"));
    for item in &r.items {
        let moved = common::arrow(item.item, item.rank, before);
        println!("{:>4}. {:<60} {moved}", item.rank, format!("{} [{}]", item.title, item.genres.join(", ")));
    }
}

fn main() -> Result<()> {
    let (options, args) = common::Options::from_args(&["--alpha"])?;
    let setup = common::setup(&options)?;
    let alpha: Option<f32> = args.value("--alpha").map(str::parse).transpose().context("--alpha takes a number")?;
    let k = 0;
    let text = setup.test_summary(k).context("a summary")?.to_string();
    let history = setup.test_history(k);
    let (favourite, least) = favourite_from_history(&History::from_window(&setup.split.test.windows[k]), 3)
        .context("a favourite and a least favourite genre")?;
    let sentences = split_sentences(&text);
    let items = setup.items();
    let model = ScrutableModel::new(setup.tears, items);
    let ask = |summary: &str| Request { history: history.clone(), alpha, ..Request::summary(summary, 10) };
    let original = model.recommend(&ask(&text))?;
    println!(
        "test user {} at alpha {}; the summary has {} sentences",
        setup.split.test.users()[k],
        original.alpha,
        sentences.len()
    );
    let edits = [
        Edit::SwapGenres(favourite, least),
        Edit::Append("Lately I want light comedies.".into()),
        Edit::RemoveSentence(0),
        Edit::ReplaceSentence(sentences.len().saturating_sub(1), "They want nothing but war films.".into()),
        Edit::Replace("Summary: More Horror movies".into()),
    ];
    for edit in &edits {
        let edited = edit.apply_to_text(&text)?;
        let answer = model.recommend(&ask(&edited))?;
        print_moves(edit, &answer, &original);
    }
    // A bad edit is a clear error, not a panic.
    if let Err(e) = Edit::RemoveSentence(sentences.len()).apply_to_text(&text) {
        println!("\nan edit past the last sentence: {e}");
    }
    Ok(())
}
