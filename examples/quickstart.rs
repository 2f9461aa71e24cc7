//! Quick start: what TEARS is for. A user's profile is a short text they can read and edit, and
//! editing it moves their recommendations.
//!
//! On `ml1m-gpt4` (MovieLens 1M with the TEARS authors' GPT-4 summaries, read with MiniLM) when
//! the shared data and model are present, else on `synthetic` (template summaries, the hashing
//! encoder), it
//! 1. prepares the data, trains Mult-VAE and TEARS-Mult-VAE on it and prints a small accuracy
//!    table on the test users (most-popular, EASE, the backbone, TEARS at its alpha* and at
//!    alpha = 1);
//! 2. picks a test user and prints their summary and top 10, each with its explanation (its rank
//!    at alpha = 0 and 1, the sentence that moves it most);
//! 3. edits the summary (swaps their favourite and least favourite genre; then appends "Lately I
//!    want light comedies.") and prints the new top 10 with arrows for the rank moves;
//! 4. recommends for a brand-new user who typed one sentence.
//!
//! Everything is trained once and kept in `target/tears-quickstart` (or `$TEARS_CACHE_DIR`); the
//! `cold_start`, `explain` and `backend_compare` examples reuse it. On two cores the first
//! `ml1m-gpt4` run takes about 12 minutes, most of it embedding the 2,987 summaries with MiniLM
//! (about 6 summaries a second; `docs/benchmarks.md`); a second run loads everything in well under
//! a minute. On `synthetic` the first run takes about a minute.
//!
//! ```text
//! cargo run --release --example quickstart [-- --dataset synthetic|ml1m-gpt4 --backbone multvae|recvae|macridvae
//!                                             --seed N --backend flex|ndarray|cuda --fresh]
//! ```

mod common;

use std::time::Instant;

use anyhow::{Context, Result};
use tears::baselines::{Ease, EaseConfig, EvalOptions, Fit, Popularity};
use tears::data::loaders::format_date;
use tears::data::{EvalSet, Split};
use tears::model::recommend::{Recommendation, Request, ScrutableModel};
use tears::recommender::{MissingProfile, Recommender, evaluate_with_profiles};
use tears::summarize::History;
use tears::summarize::edit::{favourite_from_history, insert_sentence, swap_genres};

fn main() -> Result<()> {
    let started = Instant::now();
    let (options, _) = common::Options::from_args(&[])?;
    let mut setup = common::setup(&options)?;
    let split = &setup.split;
    let c = &split.meta.counts;
    println!(
        "\n== {} ({} protocol, seed {}): {} training, {} validation and {} test users, {} items",
        split.meta.dataset, split.meta.protocol, options.seed, c.train_users, c.validation_users, c.test_users, c.items
    );

    // 1. Accuracy on the test users.
    let (pop, pop_step) = common::baseline(&setup.dir.join("pop"), split, options.seed, |s, seed| {
        Ok(Box::new(Popularity::fit(s, &(), seed)?))
    })?;
    let (ease, ease_step) = common::baseline(&setup.dir.join("ease"), split, options.seed, |s, seed| {
        Ok(Box::new(Ease::fit(s, &EaseConfig::default(), seed)?))
    })?;
    setup.steps.extend([pop_step, ease_step]);
    let backbone_name = setup.backbone.kind().to_string();
    let alpha_star = setup.tears.alpha_star().unwrap_or(setup.tears.alpha());
    let eval = EvalOptions { ks: vec![20, 50], ..Default::default() };
    let eval_started = Instant::now();
    let profiles = Some(&setup.summaries.profiles);
    let users = split.eval(EvalSet::Test);
    let mut rows: Vec<(String, tears::metrics::AccuracyReport)> = Vec::new();
    for (name, model) in
        [("most-popular", pop.as_ref()), ("EASE", ease.as_ref()), (backbone_name.as_str(), setup.backbone.as_ref())]
    {
        rows.push((name.to_string(), evaluate_with_profiles(model, users, None, MissingProfile::Error, &eval)?));
    }
    for alpha in [alpha_star, 1.0] {
        setup.tears.set_alpha(alpha);
        let label = if alpha == alpha_star {
            format!("TEARS-{backbone_name}, alpha* {alpha}")
        } else {
            format!("TEARS-{backbone_name}, alpha {alpha}")
        };
        let model: &dyn Recommender = setup.tears.as_ref();
        rows.push((label, evaluate_with_profiles(model, users, profiles, MissingProfile::Error, &eval)?));
    }
    setup.tears.set_alpha(alpha_star);
    setup.steps.push(common::Step {
        what: "evaluate on the test users".into(),
        took: eval_started.elapsed(),
        reused: false,
    });
    println!(
        "\n== accuracy on the {} test users (mean ± standard error; alpha* chosen on validation users)",
        users.len()
    );
    println!("{:<28} {:>17} {:>17} {:>9}", "model", "NDCG@20", "Recall@20", "NDCG@50");
    for (name, report) in &rows {
        if let (Some(a), Some(b)) = (report.at(20), report.at(50)) {
            println!(
                "{name:<28} {:>8.4} ± {:.4} {:>8.4} ± {:.4} {:>9.4}",
                a.ndcg.mean, a.ndcg.std_err, a.recall.mean, a.recall.std_err, b.ndcg.mean
            );
        }
    }
    println!("(alpha = 0 is the backbone's view through TEARS's decoder, alpha = 1 the summary alone)");

    // 2. One test user, their summary and their top 10, explained.
    let (k, favourite, least) =
        pick_user(&setup).context("no test user with a summary and two genres rated three times or more")?;
    let text = setup.test_summary(k).context("a summary")?.to_string();
    let history = setup.test_history(k);
    let window = &split.test.windows[k];
    let user = split.test.users()[k];
    println!("\n== test user {user}: {} rated items; the most recent:", history.len());
    for w in window.iter().rev().take(5) {
        println!(
            "  {}  {:<5}  {}{}  [{}]",
            format_date(w.timestamp),
            "*".repeat(w.rating.round() as usize),
            w.title,
            w.year.map(|y| format!(" ({y})")).unwrap_or_default(),
            w.genres.join(", ")
        );
    }
    println!("their summary (what they can read and edit):");
    print_wrapped(&text);
    let items = setup.items();
    let mut model = ScrutableModel::new(setup.tears, items);
    let request =
        |summary: &str, explain: bool| Request { history: history.clone(), explain, ..Request::summary(summary, 10) };
    let t = Instant::now();
    let first = model.recommend(&request(&text, true))?;
    let explain_time = t.elapsed();
    print_top("top 10, explained", &first, &[&favourite, &least]);
    println!(
        "   ({:.0?} for the list and its explanations; summaries embedded before are read from the cache folder)",
        explain_time
    );

    // 3. Edits: swap the favourite and least favourite genre, then ask for light comedies.
    let swapped = swap_genres(&text, &favourite, &least);
    println!(
        "\n== edit 1: swap their favourite genre ({favourite}, highest mean rating) and least favourite ({least}): {} words changed",
        swapped.record.changes.len()
    );
    for ch in swapped.record.changes.iter().take(6) {
        println!("   '{}' -> '{}'", ch.from, ch.to);
    }
    let at = |model: &ScrutableModel, summary: &str, alpha: f32| -> Result<Recommendation> {
        Ok(model.recommend(&Request {
            history: history.clone(),
            alpha: Some(alpha),
            ..Request::summary(summary, 10)
        })?)
    };
    let one_before = at(&mut model, &text, 1.0)?;
    let t = Instant::now();
    let star_swapped = at(&mut model, &swapped.text, alpha_star)?;
    let edit_time = t.elapsed();
    let one_swapped = at(&mut model, &swapped.text, 1.0)?;
    print_pair("after the swap", [&star_swapped, &one_swapped], [&first, &one_before], &[&favourite, &least]);
    println!("   ({:.0?} to re-rank after an edit)", edit_time);
    let appended = insert_sentence(&swapped.text, "Lately I want light comedies");
    println!("\n== edit 2: append \"Lately I want light comedies.\"");
    let star_appended = at(&mut model, &appended.text, alpha_star)?;
    let one_appended = at(&mut model, &appended.text, 1.0)?;
    print_pair("after appending", [&star_appended, &one_appended], [&star_swapped, &one_swapped], &["Comedy"]);

    // 4. A cold-start user.
    let sentence = "I love animated musicals and hate gore.";
    let cold = model.recommend(&Request::summary(sentence, 10))?;
    print_top(&format!("cold start: a new user typed \"{sentence}\""), &cold, &["Animation", "Musical", "Horror"]);
    let popular = top_popular(pop.as_ref(), split, 10)?;
    let shared = cold.items.iter().filter(|i| popular.contains(&i.item)).count();
    println!("   {shared} of these 10 are in the most-popular top 10 (how far one sentence alone personalises)");

    println!("\n== where the time went (cache folder {})", setup.dir.display());
    for s in &setup.steps {
        println!("  {:<36} {:>8.1?}{}", s.what, s.took, if s.reused { "  (reused)" } else { "" });
    }
    println!("  {:<36} {:>8.1?}", "total", started.elapsed());
    println!(
        "next: `cargo run --release --example explain`, `--example cold_start`, `--example backend_compare`; \
         `tears recommend --model {} --summary \"...\"`",
        setup.dir.join(format!("tears-{backbone_name}")).display()
    );
    Ok(())
}

/// The first test user with a summary and a favourite and least favourite genre (three rated
/// items or more each) that the summary names, so that swapping them changes the text; with the
/// two genres.
fn pick_user(setup: &common::Setup) -> Option<(usize, String, String)> {
    (0..setup.split.test.len()).find_map(|k| {
        let text = setup.test_summary(k)?;
        let (a, b) = favourite_from_history(&History::from_window(&setup.split.test.windows[k]), 3)?;
        (!swap_genres(text, &a, &b).record.changes.is_empty()).then_some((k, a, b))
    })
}

/// Prints a top list, each item with its explanation when it has one, and how many items carry
/// each genre of `count`.
fn print_top(title: &str, r: &Recommendation, count: &[&str]) {
    println!("\n{title} (alpha {}{}):", r.alpha, if r.cold_start { ", no history" } else { "" });
    for note in &r.notes {
        println!("   note: {note}");
    }
    for item in &r.items {
        println!("{:>4}. {} [{}]", item.rank, item.title, item.genres.join(", "));
        if let Some(e) = &item.explanation {
            let a0 = e.rank_alpha0.map_or_else(|| "-".into(), |r| format!("#{r}"));
            println!("        alpha 0: {a0}, alpha 1: #{}", e.rank_alpha1);
            if let Some(s) = e.sentences.first() {
                println!("        {}", s.text);
            }
        }
    }
    let counts: Vec<String> = count
        .iter()
        .map(|g| format!("{g} {}", r.items.iter().filter(|i| i.genres.iter().any(|x| x == g)).count()))
        .collect();
    println!("   items by genre: {}", counts.join(", "));
}

/// The source ids of the `n` most popular items.
fn top_popular(pop: &dyn Recommender, split: &Split, n: usize) -> Result<Vec<u64>> {
    let mut empty = tears::data::split::UserRows::new();
    empty.push(0, []);
    let scores = pop.score(&empty)?;
    let mut order: Vec<usize> = (0..split.items.len()).collect();
    order.sort_by(|&a, &b| scores[[0, b]].total_cmp(&scores[[0, a]]));
    Ok(order.iter().take(n).map(|&j| split.items[j].id).collect())
}

/// Prints two top lists side by side (at alpha* and at alpha 1), each with its moves against
/// `before`, and how many items carry each genre of `count` before and after.
fn print_pair(title: &str, now: [&Recommendation; 2], before: [&Recommendation; 2], count: &[&str]) {
    let short = |t: &str| {
        if t.chars().count() > 40 { format!("{}…", t.chars().take(39).collect::<String>()) } else { t.to_string() }
    };
    println!("\n{title}: {:<46} alpha = 1 (the summary alone)", format!("alpha* = {}", now[0].alpha));
    for r in 0..now[0].items.len().max(now[1].items.len()) {
        let cell = |side: usize| {
            now[side].items.get(r).map_or_else(String::new, |i| {
                format!("{:<40} {:>4}", short(&i.title), common::arrow(i.item, i.rank, before[side]))
            })
        };
        println!("{:>4}. {:<50} {}", r + 1, cell(0), cell(1));
    }
    let tally = |r: &Recommendation, g: &str| r.items.iter().filter(|i| i.genres.iter().any(|x| x == g)).count();
    for g in count {
        println!(
            "      {g} items in the top 10: {} -> {} at alpha*, {} -> {} at alpha 1",
            tally(before[0], g),
            tally(now[0], g),
            tally(before[1], g),
            tally(now[1], g)
        );
    }
}

/// Prints `text` wrapped at 100 columns, indented.
fn print_wrapped(text: &str) {
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + word.len() + 1 > 96 {
            println!("  {line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        println!("  {line}");
    }
}
