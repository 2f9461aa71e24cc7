//! `tears recommend`: the top-k items of one profile (a typed or edited summary, a file, or a
//! split user's summary and history) from a trained TEARS or GERS model, with explanations.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use tears::backend::BackendJob;
use tears::data::Split;
use tears::model::recommend::{ItemTable, ProfileInput, Recommendation, Request, ScrutableModel};
use tears::model::{LoadOptions, SummariesFile};

use crate::common::{BackendFlag, load_split, write_json};

#[derive(Debug, Args)]
pub struct RecommendArgs {
    /// Model directory written by `tears train tears` or `tears train gers`.
    #[arg(long)]
    model: PathBuf,
    /// The summary, as text.
    #[arg(long, conflicts_with_all = ["summary_file", "user"])]
    summary: Option<String>,
    /// The summary, read from a file.
    #[arg(long, conflicts_with = "user")]
    summary_file: Option<PathBuf>,
    /// A user of --split: their summary (from --summaries, else the model's recorded file) and
    /// their fold-in history.
    #[arg(long, requires = "split")]
    user: Option<u64>,
    /// The split --user belongs to; also where the item table comes from for a model directory
    /// written before `items.json` was.
    #[arg(long)]
    split: Option<PathBuf>,
    /// --user: the summaries file to read their summary from.
    #[arg(long)]
    summaries: Option<PathBuf>,
    /// A history: a CSV of `item,rating` lines (source item ids; a header line is allowed).
    #[arg(long)]
    history: Option<PathBuf>,
    /// alpha in [0, 1] (1 = the summary alone; default: the model's alpha*). Forced to 1 when
    /// there is no history.
    #[arg(long)]
    alpha: Option<f32>,
    /// How many items.
    #[arg(short, long, default_value_t = 20)]
    k: usize,
    /// Explain every item: its rank at alpha 0 and 1 and the sentences that move it most.
    #[arg(long)]
    explain: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Also write the JSON to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    backend: BackendFlag,
    /// TEARS: read the sentence encoder from this folder instead of the recorded one (it must be
    /// the same model).
    #[arg(long)]
    encoder_dir: Option<PathBuf>,
}

/// Reads `item,rating` lines.
fn read_history(path: &std::path::Path) -> Result<Vec<(u64, f32)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the history {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || (n == 0 && line.chars().next().is_some_and(|c| c.is_alphabetic())) {
            continue;
        }
        let mut fields = line.split(',').map(str::trim);
        let (Some(item), Some(rating)) = (fields.next(), fields.next()) else {
            bail!("{}:{}: expected `item,rating`, found {line:?}", path.display(), n + 1);
        };
        let item: u64 = item
            .parse()
            .with_context(|| format!("{}:{}: expected an item id, found {item:?}", path.display(), n + 1))?;
        let rating: f32 = rating
            .parse()
            .with_context(|| format!("{}:{}: expected a numeric rating, found {rating:?}", path.display(), n + 1))?;
        out.push((item, rating));
    }
    Ok(out)
}

struct Job<'a> {
    dir: &'a std::path::Path,
    options: LoadOptions,
    request: &'a Request,
    split: Option<&'a Split>,
}

impl BackendJob for Job<'_> {
    type Output = tears::model::Result<Recommendation>;
    fn run<B: burn::tensor::backend::AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let model = match self.split {
            Some(split) if !self.dir.join(tears::recommender::ITEMS_FILE).is_file() => {
                let loaded = tears::model::load::<B::InnerBackend>(self.dir, split, &self.options, &device)?;
                ScrutableModel::new(loaded, ItemTable::new(split.items.clone()))
            }
            _ => ScrutableModel::open::<B::InnerBackend>(self.dir, &self.options, &device)?,
        };
        model.recommend(self.request)
    }
}

/// The request the flags describe (`split`: the loaded --split).
fn request(a: &RecommendArgs, split: Option<&Split>) -> Result<Request> {
    let mut history = match &a.history {
        Some(p) => read_history(p)?,
        None => Vec::new(),
    };
    let profile = if let Some(text) = &a.summary {
        ProfileInput::Summary(text.clone())
    } else if let Some(path) = &a.summary_file {
        ProfileInput::Summary(
            std::fs::read_to_string(path).with_context(|| format!("reading the summary {}", path.display()))?,
        )
    } else if let Some(user) = a.user {
        let split_dir = a.split.as_ref().context("--user needs --split")?;
        let split = split.context("--user needs --split")?;
        let (set, row) = [&split.test, &split.validation]
            .into_iter()
            .find_map(|s| s.users().iter().position(|u| *u == user).map(|r| (s, r)))
            .with_context(|| format!("user {user} is not a validation or test user of {}", split_dir.display()))?;
        if a.history.is_none() {
            history = set.foldin.row(row).iter().map(|r| (split.items[r.item as usize].id, r.rating)).collect();
        }
        let (_, record) = tears::model::read_record(&a.model, split)?;
        match tears::model::summaries_for(&record, a.summaries.as_deref())? {
            None => ProfileInput::FromHistory,
            Some(SummariesFile { profiles, record }) => {
                let text = profiles
                    .get(user)
                    .and_then(|p| p.as_text())
                    .with_context(|| format!("user {user} has no summary in {}", record.path.display()))?;
                ProfileInput::Summary(text.to_string())
            }
        }
    } else {
        bail!("give the profile: --summary TEXT, --summary-file FILE, or --user ID --split DIR");
    };
    Ok(Request { profile, history, alpha: a.alpha, k: a.k, explain: a.explain })
}

fn print_table(r: &Recommendation) {
    if let Some(p) = &r.profile {
        println!("profile: {p}");
    }
    println!("alpha {}{}", r.alpha, if r.cold_start { " (no history)" } else { "" });
    for note in &r.notes {
        println!("note: {note}");
    }
    let explained = r.items.iter().any(|i| i.explanation.is_some());
    if explained {
        println!(
            "{:>4}  {:<44} {:<28} {:>8}  {:>5} {:>5}  top sentence",
            "rank", "title", "genres", "score", "a=0", "a=1"
        );
    } else {
        println!("{:>4}  {:<44} {:<28} {:>8}", "rank", "title", "genres", "score");
    }
    for item in &r.items {
        let title: String = item.title.chars().take(44).collect();
        let genres: String = item.genres.join("|").chars().take(28).collect();
        match &item.explanation {
            Some(e) => {
                let a0 = e.rank_alpha0.map_or_else(|| "-".to_string(), |r| r.to_string());
                let top = e.sentences.first().map_or_else(String::new, |s| s.text.clone());
                println!(
                    "{:>4}  {title:<44} {genres:<28} {:>8.3}  {a0:>5} {:>5}  {top}",
                    item.rank, item.score, e.rank_alpha1
                );
            }
            None => println!("{:>4}  {title:<44} {genres:<28} {:>8.3}", item.rank, item.score),
        }
    }
}

pub fn run(a: RecommendArgs) -> Result<()> {
    let split = a.split.as_deref().map(load_split).transpose()?;
    let request = request(&a, split.as_ref())?;
    let options = LoadOptions { encoder_dir: a.encoder_dir.clone(), embedding_cache: None };
    let job = Job { dir: &a.model, options, request: &request, split: split.as_ref() };
    let response = tears::backend::run(a.backend.kind(), job)?
        .with_context(|| format!("recommending with {}", a.model.display()))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&response)?);
    } else {
        print_table(&response);
    }
    if let Some(out) = &a.out {
        write_json(out, &response)?;
    }
    Ok(())
}
