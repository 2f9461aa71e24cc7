//! Edit a summary, watch the recommendations move: the scrutable story on the synthetic dataset.
//!
//! Trains a small Mult-VAE and TEARS on it (template summaries, the weight-free hashing encoder;
//! about 30 s on two cores after the build), then for one test user prints the summary, the top
//! 10 with explanations (rank at alpha 0 and 1, the sentence that moves the item most), the top
//! 10 after two edits (swap their favourite and least favourite genre; append "Lately I want
//! light comedies."), with arrows for rank moves, and a cold-start user who typed one sentence.
//! Everything goes through `tears::model::recommend`, the API an application embeds.
//!
//! ```text
//! cargo run --release --example edit_summary
//! ```

use std::collections::HashMap;

use anyhow::{Context, Result};
use burn::backend::{Autodiff, Flex};
use tears::data::{DatasetName, PrepareOptions, prepare};
use tears::model::recommend::{Edit, ItemTable, Recommendation, Request, ScrutableModel};
use tears::model::{BackboneChoice, SummariesFile, TearsConfig, TearsTrainConfig, TextEncoderChoice, TrainInputs};
use tears::recommender::{MissingProfile, Profile, Profiles};
use tears::summarize::{Summarizer, TemplateSummarizer, UserSet, user_histories};
use tears::vae::{BackboneKind, ModelConfig, MultVaeConfig, RunOptions, TrainConfig};

type Train = Autodiff<Flex>;

fn print_top(title: &str, r: &Recommendation, before: Option<&Recommendation>) {
    println!("\n== {title} (alpha {}{})", r.alpha, if r.cold_start { ", no history" } else { "" });
    for note in &r.notes {
        println!("   note: {note}");
    }
    let old: HashMap<u64, usize> =
        before.map(|b| b.items.iter().map(|i| (i.item, i.rank)).collect()).unwrap_or_default();
    for item in &r.items {
        let moved = match (before, old.get(&item.item)) {
            (None, _) => String::new(),
            (Some(_), None) => "  new".to_string(),
            (Some(_), Some(&was)) if was > item.rank => format!("  ↑ from {was}"),
            (Some(_), Some(&was)) if was < item.rank => format!("  ↓ from {was}"),
            (Some(_), Some(_)) => "  =".to_string(),
        };
        let why = item.explanation.as_ref().map_or_else(String::new, |e| {
            let a0 = e.rank_alpha0.map_or_else(|| "-".into(), |r| r.to_string());
            let top = e.sentences.first().map_or_else(String::new, |s| format!("; {}", s.text));
            format!("  [alpha 0: #{a0}, alpha 1: #{}{top}]", e.rank_alpha1)
        });
        println!("{:>3}. {} ({}){moved}{why}", item.rank, item.title, item.genres.join(", "));
    }
}

fn main() -> Result<()> {
    let started = std::time::Instant::now();
    let split = prepare(DatasetName::Synthetic, &PrepareOptions::default())?.split;
    let summarizer = TemplateSummarizer::from_split(&split);
    let mut profiles = Profiles::new(None);
    for (user, history) in user_histories(&split, UserSet::All) {
        profiles.insert(user, Profile::Text(summarizer.summarize(&history)?));
    }
    let summaries = SummariesFile { profiles, record: Default::default() };

    let dir = std::env::temp_dir().join(format!("tears-edit-summary-{}", std::process::id()));
    let backbone_dir = dir.join("multvae");
    let backbone = ModelConfig::MultVae(MultVaeConfig::default());
    let schedule = TrainConfig { epochs: 30, ..BackboneKind::MultVae.default_train() };
    let run = RunOptions { out_dir: Some(backbone_dir.clone()), resume: false, progress: true };
    tears::vae::fit_config::<Train>(&backbone, &split, &schedule, &run, &Default::default())
        .context("training Mult-VAE")?;
    let inputs = TrainInputs {
        split: &split,
        backbone_dir: Some(&backbone_dir),
        encoder: Some(TextEncoderChoice::parse("hashing")),
        summaries: Some(&summaries),
        missing: MissingProfile::Error,
        embedding_cache: None,
    };
    let config = TearsConfig { backbone: BackboneChoice::MultVae, ..TearsConfig::default() };
    let train = TearsTrainConfig { epochs: 30, ..TearsTrainConfig::default() };
    let run = RunOptions { out_dir: None, resume: false, progress: true };
    let (trained, report) =
        tears::model::fit::<Train>(config, &train, &inputs, &run, &Default::default()).context("training TEARS")?;
    println!("trained Mult-VAE and TEARS-Mult-VAE in {:.0?}; alpha* = {}", started.elapsed(), report.alpha_star);
    let mut model = ScrutableModel::new(trained, ItemTable::new(split.items.clone()));

    // One test user: their summary, history and top 10, explained.
    let user = split.test.users()[0];
    let text = summaries.profiles.get(user).and_then(Profile::as_text).context("a summary")?.to_string();
    let history: Vec<(u64, f32)> =
        split.test.foldin.row(0).iter().map(|r| (split.items[r.item as usize].id, r.rating)).collect();
    println!("\nuser {user} ({} rated items). Their summary:\n{text}", history.len());
    let request = Request { history: history.clone(), explain: true, ..Request::summary(&text, 10) };
    let first = model.recommend(&request)?;
    print_top("top 10", &first, None);

    // Edit 1: swap their favourite and least favourite genre: of the genres the summary names,
    // the ones they rated most and least often.
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (id, _) in &history {
        let col = model.items().column(*id).context("a known item")?;
        for g in &model.items().items()[col].genres {
            *counts.entry(g.as_str()).or_default() += 1;
        }
    }
    let lower = text.to_lowercase();
    let named = |g: &str| lower.contains(&g.to_lowercase());
    let mut ranked: Vec<(&str, usize)> = counts.into_iter().filter(|(g, _)| named(g)).collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let favourite = ranked.first().map(|g| g.0.to_string()).context("a genre")?;
    let least = ranked.last().map(|g| g.0.to_string()).context("a genre")?;
    let swapped = Edit::SwapGenres(favourite.clone(), least.clone()).apply_to_text(&text)?;
    let second = model.recommend(&Request { history: history.clone(), ..Request::summary(&swapped, 10) })?;
    print_top(&format!("after swapping {favourite} and {least}"), &second, Some(&first));

    // Edit 2: append a sentence.
    let appended = Edit::Append("Lately I want light comedies.".into()).apply_to_text(&swapped)?;
    let third = model.recommend(&Request { history, ..Request::summary(&appended, 10) })?;
    print_top("after appending \"Lately I want light comedies.\"", &third, Some(&second));

    // A brand-new user who typed one sentence: no history, so alpha is 1.
    let cold = model.recommend(&Request::summary("I love animated musicals and hate gore.", 10))?;
    print_top("cold start: \"I love animated musicals and hate gore.\"", &cold, None);
    println!(
        "   (the hashing encoder reads words, not negation: \"hate gore\" counts as gore; MiniLM is the encoder for that)"
    );
    std::fs::remove_dir_all(&dir).ok();
    println!("\ndone in {:.0?}", started.elapsed());
    Ok(())
}
