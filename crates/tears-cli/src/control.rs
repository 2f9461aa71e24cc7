//! `tears control`: the controllability experiments (large-scope, small-scope, guided) on a
//! trained TEARS or GERS model, through the same recommendation API applications call.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use tears::backend::BackendJob;
use tears::data::{EvalSet, Split};
use tears::model::control::{
    self, ControlOptions, EditLog, EditSource, GuidedResult, LargeScopeResult, LlmEdits, OfflineEdits,
    SmallScopeResult, plot,
};
use tears::model::recommend::{ItemTable, ScrutableModel};
use tears::model::{LoadOptions, SummariesFile};

use crate::common::{BackendFlag, load_split, progress_bar, write_json};

/// The values of the experiment argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Experiment {
    // Swap the favourite and least favourite genre in the summary.
    Large,
    // Append a sentence describing a held-out item ranked 100..=499.
    Small,
    // Replace the summary by "More {genre} movies" / "Less ...".
    Guided,
}

/// The values of `--edits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EditsArg {
    // Deterministic: genres from the fold-in ratings, swapped by name; targets described by
    // their genres and tags.
    Offline,
    // The authors' protocol through an OpenAI-compatible server (--llm-url, --llm-model).
    Llm,
}

/// The values of `--set`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SetArg {
    Test,
    Validation,
}

#[derive(Debug, Args)]
pub struct ControlArgs {
    /// The experiment.
    #[arg(value_enum)]
    experiment: Experiment,
    /// A TEARS or GERS model directory (`tears train tears|gers`).
    #[arg(long)]
    model: PathBuf,
    /// The split the model was trained on.
    #[arg(long)]
    split: PathBuf,
    /// The output directory: results.json, table.md, figure.svg and edits.jsonl (created if
    /// needed).
    #[arg(long)]
    out: PathBuf,
    /// The summaries (default: the file recorded in the model directory).
    #[arg(long)]
    summaries: Option<PathBuf>,
    /// The users to edit.
    #[arg(long, value_enum, default_value_t = SetArg::Test)]
    set: SetArg,
    /// Only the first N users of the set.
    #[arg(long)]
    limit: Option<usize>,
    /// Genre-NDCG cut-off.
    #[arg(short, long, default_value_t = 20)]
    k: usize,
    /// A BERT encoder folder replacing the recorded one (its identity is checked).
    #[arg(long)]
    encoder_dir: Option<PathBuf>,
    /// Where the text edits of `large` and `small` come from (`guided` has fixed texts).
    #[arg(long, value_enum, default_value_t = EditsArg::Offline)]
    edits: EditsArg,
    /// Base URL of an OpenAI-compatible server, for `--edits llm`.
    #[arg(long, requires = "llm_model")]
    llm_url: Option<String>,
    /// Model name sent to the server, for `--edits llm`.
    #[arg(long, requires = "llm_url")]
    llm_model: Option<String>,
    /// Environment variable holding the API key (unset: no key is sent).
    #[arg(long, default_value = "OPENAI_API_KEY")]
    api_key_env: String,
    /// Sampling temperature of the LLM edits, 0 to 2.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.0)]
    temperature: f32,
    /// LLM descriptions per small-scope target, 1 to 9 (the median rank change is reported).
    #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(1..=9), default_value_t = 3)]
    attempts: u32,
    /// The LLM answer cache (default: llm_answers.jsonl in --out); a rerun asks only what it lacks.
    #[arg(long)]
    cache: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
    #[command(flatten)]
    backend: BackendFlag,
}

/// The LLM edit source of `--edits llm`, its flags checked.
fn llm_edits(a: &ControlArgs) -> Result<LlmEdits> {
    let (Some(url), Some(name)) = (&a.llm_url, &a.llm_model) else {
        anyhow::bail!("--edits llm needs --llm-url URL and --llm-model NAME");
    };
    if !(a.temperature.is_finite() && (0.0..=2.0).contains(&a.temperature)) {
        anyhow::bail!("--temperature must be in [0, 2], got {}", a.temperature);
    }
    let mut config = crate::summarize::llm_config(url, name, &a.api_key_env);
    config.temperature = a.temperature;
    let cache = a.cache.clone().unwrap_or_else(|| a.out.join("llm_answers.jsonl"));
    let mut edits = LlmEdits::new(tears::summarize::LlmClient::new(config)?, &cache)?;
    edits.attempts = a.attempts as usize;
    Ok(edits)
}

enum Output {
    Large(LargeScopeResult),
    Small(SmallScopeResult),
    Guided(GuidedResult),
}

struct Job<'a> {
    args: &'a ControlArgs,
    split: &'a Split,
    summaries: Option<SummariesFile>,
}

impl BackendJob for Job<'_> {
    type Output = Result<Output>;
    fn run<B: burn::tensor::backend::AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let a = self.args;
        let options = LoadOptions { encoder_dir: a.encoder_dir.clone(), embedding_cache: None };
        let loaded = tears::model::load::<B::InnerBackend>(&a.model, self.split, &options, &device)?;
        let model = ScrutableModel::new(loaded, ItemTable::new(self.split.items.clone()));
        let set = match a.set {
            SetArg::Test => EvalSet::Test,
            SetArg::Validation => EvalSet::Validation,
        };
        let mut users = control::control_users(&model, self.split, set, self.summaries.as_ref().map(|s| &s.profiles))?;
        if let Some(n) = a.limit {
            users.truncate(n);
        }
        let options = ControlOptions { k: a.k, ..ControlOptions::for_split(self.split) };
        let bar = progress_bar(
            users.len() as u64,
            "{bar:30} {pos}/{len} users  {elapsed_precise}  ETA {eta}",
            !a.no_progress,
        );
        let mut tick = |done: usize| bar.set_position(done as u64);
        let mut llm = match (a.edits, a.experiment) {
            (EditsArg::Llm, Experiment::Large | Experiment::Small) => Some(llm_edits(a)?),
            _ => None,
        };
        let mut offline = OfflineEdits;
        let source: &mut dyn EditSource = match &mut llm {
            Some(l) => l,
            None => &mut offline,
        };
        let out = match a.experiment {
            Experiment::Large => Output::Large(control::large_scope(&model, &users, &options, source, &mut tick)?),
            Experiment::Small => Output::Small(control::small_scope(&model, &users, &options, source, &mut tick)?),
            Experiment::Guided => Output::Guided(control::guided(&model, &users, &options, &mut tick)?),
        };
        bar.finish_and_clear();
        if let Some(l) = &llm {
            let (hits, asked) = l.cache_counts();
            let u = l.client().usage();
            println!(
                "LLM edits: {asked} answers asked ({} requests, {} HTTP attempts; tokens {} prompt, {} completion), {hits} taken from the cache",
                u.completions, u.attempts, u.prompt_tokens, u.completion_tokens
            );
        }
        Ok(out)
    }
}

fn write_edits(path: &Path, edits: &[EditLog]) -> Result<()> {
    tears::data::io::write_atomic(path, |w| {
        for e in edits {
            serde_json::to_writer(&mut *w, e).map_err(std::io::Error::other)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })
    .with_context(|| format!("writing {}", path.display()))
}

fn cell(a: &tears::metrics::Aggregate) -> String {
    format!("{:+.3} ± {:.3}", a.mean, a.std_err)
}

/// The large-scope table: one row per alpha.
pub fn large_table(r: &LargeScopeResult, model: &str) -> String {
    let mut s = format!(
        "Large-scope edit (swap favourite and least favourite genre), {model}: {} of {} users counted, genre-NDCG@{}\n\n",
        r.counted, r.users, r.k
    );
    for (reason, n) in &r.discarded.0 {
        s.push_str(&format!("- discarded {n}: {reason}\n"));
    }
    s.push_str("\n| alpha | Δ_up | Δ_down |\n|---|---|---|\n");
    for row in &r.rows {
        s.push_str(&format!("| {:.1} | {} | {} |\n", row.alpha, cell(&row.delta_up), cell(&row.delta_down)));
    }
    s
}

/// The small-scope table: one row per alpha.
pub fn small_table(r: &SmallScopeResult, model: &str) -> String {
    let mut s = format!(
        "Small-scope edit (append a description of a held-out item ranked {}..={}), {model}: {} of {} users counted\n\n",
        r.rank_range.0, r.rank_range.1, r.counted, r.users
    );
    for (reason, n) in &r.discarded.0 {
        s.push_str(&format!("- discarded {n}: {reason}\n"));
    }
    s.push_str("\n| alpha | rank change (positive = moved up) |\n|---|---|\n");
    for row in &r.rows {
        s.push_str(&format!("| {:.1} | {:+.1} ± {:.1} |\n", row.alpha, row.rank_change.mean, row.rank_change.std_err));
    }
    s
}

/// The guided tables: one row per genre, a column per alpha, "More" then "Less".
pub fn guided_table(r: &GuidedResult, model: &str) -> String {
    let mut s = format!(
        "Guided edits, {model}: change of genre-NDCG@{} against {}, mean over {} users\n",
        r.k, r.baseline, r.users
    );
    let alphas: Vec<f32> = r.genres.first().map(|g| g.more.iter().map(|c| c.alpha).collect()).unwrap_or_default();
    for (label, less) in [("More {genre}", false), ("Less {genre}", true)] {
        if less && r.genres.iter().all(|g| g.less.is_empty()) {
            continue;
        }
        s.push_str(&format!("\n{label}\n\n| genre (items) |"));
        for a in &alphas {
            s.push_str(&format!(" {a:.1} |"));
        }
        s.push_str(&format!("\n|---|{}\n", "---|".repeat(alphas.len())));
        for g in &r.genres {
            s.push_str(&format!("| {} ({}) |", g.genre, g.items));
            for c in if less { &g.less } else { &g.more } {
                s.push_str(&format!(" {:+.3} |", c.change.mean));
            }
            s.push('\n');
        }
    }
    s
}

pub fn run(a: ControlArgs) -> Result<()> {
    let split = load_split(&a.split)?;
    let (_, record) = tears::model::read_record(&a.model, &split)
        .with_context(|| format!("reading the model in {}", a.model.display()))?;
    let summaries = tears::model::summaries_for(&record, a.summaries.as_deref())?;
    let name = a.model.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let started = std::time::Instant::now();
    let job = Job { args: &a, split: &split, summaries };
    let output = tears::backend::run(a.backend.kind(), job)??;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let (table, edits) = match &output {
        Output::Large(r) => {
            write_json(&a.out.join("results.json"), r)?;
            (large_table(r, &name), &r.edits)
        }
        Output::Small(r) => {
            write_json(&a.out.join("results.json"), r)?;
            (small_table(r, &name), &r.edits)
        }
        Output::Guided(r) => {
            write_json(&a.out.join("results.json"), r)?;
            (guided_table(r, &name), &r.edits)
        }
    };
    write_edits(&a.out.join("edits.jsonl"), edits)?;
    write_text(&a.out.join("table.md"), &table)?;
    let svg = match &output {
        Output::Large(r) => plot::large_scope_svg(&[(&name, r)])?,
        Output::Small(r) => plot::small_scope_svg(&[(&name, r)])?,
        Output::Guided(r) => plot::guided_svg(&name, r)?,
    };
    write_text(&a.out.join("figure.svg"), &svg)?;
    println!("{table}");
    println!("({:.1?}; results.json, table.md, figure.svg and edits.jsonl in {})", started.elapsed(), a.out.display());
    Ok(())
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    tears::data::io::write_atomic(path, |w| w.write_all(text.as_bytes()))
        .with_context(|| format!("writing {}", path.display()))
}

#[derive(Debug, Args)]
pub struct ControlFigureArgs {
    /// Output directories of `tears control` runs of one experiment (`large` or `small`: one
    /// line per directory; `guided`: exactly one). A run is labelled by its `--label`, else by
    /// its directory's name.
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// Labels of the runs, in order (default: the directory names).
    #[arg(long, num_args = 1..)]
    label: Vec<String>,
    /// The SVG file to write.
    #[arg(long)]
    out: PathBuf,
}

/// A `results.json` of any of the three experiments.
enum AnyResult {
    Large(LargeScopeResult),
    Small(SmallScopeResult),
    Guided(GuidedResult),
}

impl AnyResult {
    /// Reads `text`, telling the experiment by its fields (guided: `genres`; small-scope:
    /// `rank_range`; large-scope: the rest).
    fn parse(text: &str) -> serde_json::Result<Self> {
        let value: serde_json::Value = serde_json::from_str(text)?;
        Ok(if value.get("genres").is_some() {
            AnyResult::Guided(serde_json::from_value(value)?)
        } else if value.get("rank_range").is_some() {
            AnyResult::Small(serde_json::from_value(value)?)
        } else {
            AnyResult::Large(serde_json::from_value(value)?)
        })
    }

    fn kind(&self) -> &'static str {
        match self {
            AnyResult::Large(_) => "large",
            AnyResult::Small(_) => "small",
            AnyResult::Guided(_) => "guided",
        }
    }
}

/// `tears control-figure`: one figure over several runs of an experiment.
pub fn figure(a: ControlFigureArgs) -> Result<()> {
    if !a.label.is_empty() && a.label.len() != a.runs.len() {
        anyhow::bail!("{} labels for {} runs: give one --label per run or none", a.label.len(), a.runs.len());
    }
    let mut runs = Vec::with_capacity(a.runs.len());
    for (i, dir) in a.runs.iter().enumerate() {
        let path = dir.join("results.json");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let result = AnyResult::parse(&text).with_context(|| {
            format!("{}: not the results.json of a tears control run (large, small or guided)", path.display())
        })?;
        let label = match a.label.get(i) {
            Some(l) => l.clone(),
            None => {
                dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| dir.display().to_string())
            }
        };
        runs.push((label, result));
    }
    let kind = runs[0].1.kind();
    if let Some((label, other)) = runs.iter().find(|(_, r)| r.kind() != kind) {
        anyhow::bail!(
            "run {label} is a {} experiment, the first is {kind}: a figure draws one experiment",
            other.kind()
        );
    }
    let svg = match kind {
        "large" => {
            let rs: Vec<(&str, &LargeScopeResult)> = runs
                .iter()
                .filter_map(|(l, r)| if let AnyResult::Large(r) = r { Some((l.as_str(), r)) } else { None })
                .collect();
            plot::large_scope_svg(&rs)?
        }
        "small" => {
            let rs: Vec<(&str, &SmallScopeResult)> = runs
                .iter()
                .filter_map(|(l, r)| if let AnyResult::Small(r) = r { Some((l.as_str(), r)) } else { None })
                .collect();
            plot::small_scope_svg(&rs)?
        }
        _ => match runs.as_slice() {
            [(label, AnyResult::Guided(r))] => plot::guided_svg(label, r)?,
            _ => anyhow::bail!("a guided figure shows one model: give one run ({} given)", runs.len()),
        },
    };
    write_text(&a.out, &svg)?;
    println!("wrote {} ({kind}-scope figure of {} run(s))", a.out.display(), runs.len());
    Ok(())
}
