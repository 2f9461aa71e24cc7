//! `tears recommend`: the top-k items of one profile (a typed or edited summary, a file, or a
//! split user's summary and history) from a trained TEARS or GERS model, with explanations.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use tears::backend::BackendJob;
use tears::data::shard::{Shard, ShardKind};
use tears::data::{Split, UserRows};
use tears::model::recommend::{ItemTable, ProfileInput, Recommendation, Request, ScrutableModel};
use tears::model::{LoadOptions, SummariesFile};

use crate::common::{BackendFlag, ShardArgs, load_split, progress_bar, write_json};
use crate::train::scrutable::MissingArg;

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
    /// --user and --batch: the summaries file to read summaries from (default: the model's
    /// recorded file).
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
    /// Also write the JSON to this file; with --batch, the JSONL of top-k lists.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Batch form: the top-k of every user of --set of --split (or of --users), one JSON line
    /// per user in --out: `{"user", "alpha", "items", "scores"}`. Each user's profile is their
    /// summary (GERS: their history's genres) and their history is their fold-in (training)
    /// rows, which are never recommended.
    #[arg(long, requires_all = ["split", "out"], conflicts_with_all = ["summary", "summary_file", "user", "history", "explain", "json"])]
    batch: bool,
    /// --batch: the users.
    #[arg(long, value_enum, default_value_t = BatchSet::Test, requires = "batch")]
    set: BatchSet,
    /// --batch: only the users listed in this file (one id per line), which must be users of --set.
    #[arg(long, requires = "batch")]
    users: Option<PathBuf>,
    /// --batch: requests scored at once.
    #[arg(long, default_value_t = 512, requires = "batch", value_parser = clap::value_parser!(u32).range(1..))]
    batch_size: u32,
    /// --batch: cache folder of sentence vectors (default: SPLIT/embedding-cache, shared with
    /// `tears train` and `tears evaluate`; `none`: off).
    #[arg(long, requires = "batch")]
    embedding_cache: Option<PathBuf>,
    /// --batch: what to do with users that have no summary (error or skip; skipped users are counted).
    #[arg(long, value_enum, default_value_t = MissingArg::default(), requires = "batch")]
    missing_summary: MissingArg,
    #[command(flatten)]
    shard: ShardArgs,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
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

/// The values of `--set` for `--batch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BatchSet {
    Test,
    #[value(aliases = ["valid", "val"])]
    Validation,
    Train,
    All,
}

impl BatchSet {
    fn name(self) -> &'static str {
        match self {
            BatchSet::Test => "test",
            BatchSet::Validation => "validation",
            BatchSet::Train => "train",
            BatchSet::All => "all",
        }
    }

    /// The users of this set with their history rows, in split order (train, validation, test).
    fn rows(self, split: &Split) -> Vec<(&UserRows, usize)> {
        let mut out = Vec::new();
        for rows in match self {
            BatchSet::Test => vec![&split.test.foldin],
            BatchSet::Validation => vec![&split.validation.foldin],
            BatchSet::Train => vec![&split.train],
            BatchSet::All => vec![&split.train, &split.validation.foldin, &split.test.foldin],
        } {
            out.extend((0..rows.len()).map(|r| (rows, r)));
        }
        out
    }
}

/// One line of the `--batch` output.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TopKLine {
    /// Source user id.
    pub user: u64,
    /// The alpha used.
    pub alpha: f32,
    /// Source item ids, best first.
    pub items: Vec<u64>,
    /// Their scores.
    pub scores: Vec<f32>,
}

/// Reads `--users`: one id per line.
fn read_user_list(path: &Path) -> Result<Vec<u64>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the user list {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        out.push(
            line.parse::<u64>()
                .with_context(|| format!("{}:{}: expected a user id, found {line:?}", path.display(), n + 1))?,
        );
    }
    Ok(out)
}

/// `--batch`: scores every chosen user, batch by batch, on one loaded model.
struct BatchJob<'a> {
    args: &'a RecommendArgs,
    split: &'a Split,
    requests: Vec<(u64, Request)>,
}

impl BackendJob for BatchJob<'_> {
    type Output = Result<Vec<TopKLine>>;
    fn run<B: burn::tensor::backend::AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let a = self.args;
        let split_dir = a.split.as_deref().context("--batch needs --split")?;
        let options = LoadOptions {
            encoder_dir: a.encoder_dir.clone(),
            embedding_cache: crate::train::scrutable::embedding_cache(a.embedding_cache.as_ref(), split_dir),
        };
        let loaded = tears::model::load::<B::InnerBackend>(&a.model, self.split, &options, &device)?;
        let model = ScrutableModel::new(loaded, ItemTable::new(self.split.items.clone()));
        let bar = progress_bar(
            self.requests.len() as u64,
            "{bar:40} {pos}/{len} users [{elapsed_precise}, {per_sec}, eta {eta}]",
            !a.no_progress,
        );
        let mut out = Vec::with_capacity(self.requests.len());
        for chunk in self.requests.chunks(a.batch_size as usize) {
            let requests: Vec<Request> = chunk.iter().map(|(_, r)| r.clone()).collect();
            let answers = model
                .recommend_batch(&requests)
                .with_context(|| format!("recommending for users {}..={}", chunk[0].0, chunk[chunk.len() - 1].0))?;
            for ((user, _), r) in chunk.iter().zip(answers) {
                out.push(TopKLine {
                    user: *user,
                    alpha: r.alpha,
                    items: r.items.iter().map(|i| i.item).collect(),
                    scores: r.items.iter().map(|i| i.score).collect(),
                });
            }
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        Ok(out)
    }
}

/// Writes top-k lines as JSONL, atomically.
pub fn write_topk(path: &Path, lines: &[TopKLine]) -> Result<()> {
    tears::data::io::write_atomic(path, |w| {
        for line in lines {
            serde_json::to_writer(&mut *w, line)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })
    .with_context(|| format!("writing {}", path.display()))
}

fn run_batch(a: &RecommendArgs, split: &Split, shard: Shard) -> Result<()> {
    let out = a.out.as_ref().context("--batch needs --out")?;
    let (manifest, record) = tears::model::read_record(&a.model, split)?;
    let gers = manifest.kind == tears::recommender::ModelKind::Gers.name();
    let summaries = if gers { None } else { tears::model::summaries_for(&record, a.summaries.as_deref())? };
    let mut chosen = a.set.rows(split);
    if let Some(list) = &a.users {
        let wanted = read_user_list(list)?;
        let known: std::collections::HashSet<u64> = chosen.iter().map(|(rows, r)| rows.users[*r]).collect();
        if let Some(u) = wanted.iter().find(|u| !known.contains(u)) {
            bail!("{}: user {u} is not a {} user of the split", list.display(), a.set.name());
        }
        let wanted: std::collections::HashSet<u64> = wanted.into_iter().collect();
        chosen.retain(|(rows, r)| wanted.contains(&rows.users[*r]));
    }
    let total = chosen.len();
    chosen.retain(|(rows, r)| shard.contains(rows.users[*r]));
    let mut requests = Vec::with_capacity(chosen.len());
    let mut skipped = 0usize;
    for (rows, r) in chosen {
        let user = rows.users[r];
        let history: Vec<(u64, f32)> =
            rows.row(r).iter().map(|x| (split.items[x.item as usize].id, x.rating)).collect();
        let profile = match &summaries {
            None => ProfileInput::FromHistory,
            Some(SummariesFile { profiles, record }) => match profiles.get(user).and_then(|p| p.as_text()) {
                Some(text) if !text.trim().is_empty() => ProfileInput::Summary(text.to_string()),
                _ => match a.missing_summary {
                    MissingArg::Skip => {
                        skipped += 1;
                        continue;
                    }
                    _ => bail!(
                        "user {user} has no summary in {} (--missing-summary skip leaves such users out)",
                        record.path.display()
                    ),
                },
            },
        };
        requests.push((user, Request { profile, history, alpha: a.alpha, k: a.k, explain: false }));
    }
    if !shard.is_whole() {
        println!("shard {shard}: {} of the {total} {} users", requests.len(), a.set.name());
    }
    let n = requests.len();
    let started = Instant::now();
    let lines = tears::backend::run(a.backend.kind(), BatchJob { args: a, split, requests })?
        .with_context(|| format!("recommending with {}", a.model.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    write_topk(out, &lines)?;
    crate::common::write_stamp(
        out,
        shard,
        ShardKind::TopK,
        format!("top-{} of {} {} users", a.k, split.meta.dataset, a.set.name()),
    )?;
    println!(
        "wrote {} ({n} users{}) in {seconds:.2} s ({:.1} users/s)",
        out.display(),
        if skipped > 0 { format!(", {skipped} without a summary skipped") } else { String::new() },
        n as f64 / seconds.max(1e-9)
    );
    Ok(())
}

pub fn run(a: RecommendArgs) -> Result<()> {
    let shard = a.shard.resolve()?;
    if a.batch {
        let split_dir = a.split.as_ref().context("--batch needs --split")?;
        let split = load_split(split_dir)?;
        return run_batch(&a, &split, shard);
    }
    if !shard.is_whole() {
        bail!("--shard applies to --batch only");
    }
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
