//! Reproduces the TEARS accuracy table (the paper's Table 2 layout) on one benchmark, over
//! several training seeds, with paired significance tests, in one command.
//!
//! ```text
//! cargo run --release --example reproduce -- --benchmark ml1m-gpt4 --seeds 3 --out results/ml1m-gpt4
//!     [--split-seed 0] [--backend flex|ndarray|cuda] [--max-epochs N] [--ablations] [--ablations-finetune]
//!     [--llm-url URL --llm-model NAME [--api-key-env OPENAI_API_KEY]]
//! ```
//!
//! It prepares the split once (`--split-seed`, 0 by default, so that every training seed is
//! scored on the same test users), then for every seed trains or reuses each model below in
//! `OUT/seed-S/NAME` (a model directory is finished when its manifest exists; an interrupted
//! training run resumes from its checkpoint, so a crash or Ctrl-C loses at most one epoch):
//! most-popular and EASE (deterministic: fitted once, in `OUT/pop` and `OUT/ease`), Mult-DAE,
//! Mult-VAE, RecVAE, MacridVAE, GERS Base, GERS-RecVAE, TEARS Base, TEARS-MultVAE,
//! TEARS-MacridVAE and TEARS-RecVAE. Every alpha* was chosen on the validation users when the
//! model was trained (recorded in its manifest); the test users are evaluated once per row.
//!
//! `OUT/results.json` holds every row's metrics per seed, the per-user test N@20 and R@20 of
//! every row and seed (so anyone can redo a test), each model's validation alpha sweep and
//! training time, and the paired comparisons: the per-user difference averaged over seeds,
//! its mean and standard error, the paired t-test and the Wilcoxon signed-rank test. `OUT/table.md`
//! is the markdown table (mean ± std over seeds; a star where the Wilcoxon p < 0.05).
//!
//! The "LLM asked directly" row needs an OpenAI-compatible server (`--llm-url`, `--llm-model`;
//! the key from `$OPENAI_API_KEY` or `--api-key-env`): each test user's window goes to the model,
//! which names 50 movies (`tears_summarize::direct`); the titles are matched to the catalogue, seen
//! and unmatched ones dropped, and the first 20 and 50 scored. Answers are cached in
//! `OUT/llm-direct.jsonl` (reruns ask only the missing users); a user whose request failed
//! counts with an empty list. Without a server the row says "not run".
//!
//! `--ablations` adds the TEARS-RecVAE ablation table (seed 0, in `OUT/ablations/N`): OT kind
//! (gaussian-w2 / sinkhorn / none), λ2 (annealed vs 0), training alpha (0.5 vs U(0, 1)), head
//! (linear vs MLP), encoder (MiniLM frozen vs the hashing encoder; with `--ablations-finetune`
//! also MiniLM's top layer fine-tuned, which costs minutes an epoch on a CPU), each with
//! validation and test N@20 at its alpha* and its training time.
//!
//! Benchmarks: `ml1m-gpt4` (the TEARS authors' GPT-4 summaries, all-MiniLM-L6-v2 frozen),
//! `ml100k` (summary-window protocol, template summaries, MiniLM when present else the hashing
//! encoder) and `synthetic` (template summaries, the hashing encoder; for trying the command).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::backend::AutodiffBackend;
use serde::Serialize;
use tears::baselines::{Ease, EaseConfig, Fit, Popularity};
use tears::data::split::{Protocol, SummaryWindow};
use tears::data::{DatasetName, EvalSet, PrepareOptions, Split, default_data_dir, named::gpt4_summaries_path, prepare};
use tears::metrics::paired::{self, PairedComparison};
use tears::metrics::{AccuracyAtK, AccuracyReport, Aggregate, UserAccuracy, user_accuracy};
use tears::model::{
    Alignment, BackboneChoice, Head, LoadOptions, ProfileSource, SummariesFile, TearsConfig, TearsRecord,
    TearsTrainConfig, TextEncoderChoice, TrainAlpha, TrainInputs,
};
use tears::recommender::{
    EvalOptions, Manifest, MissingProfile, Profiles, Recommender, UserEvaluation, UserMetric,
    evaluate_users_with_profiles,
};
use tears::summarize::direct::{self, DIRECT_MAX_TOKENS, DirectRecommender};
use tears::summarize::{ApiKey, BatchOptions, LlmClient, LlmConfig, SummaryCache, summarize_all};
use tears::vae::{BackboneKind, RunOptions};

/// The flags that take a value (besides the shared `--backend`).
const FLAGS: [&str; 8] =
    ["--benchmark", "--seeds", "--out", "--split-seed", "--max-epochs", "--llm-url", "--llm-model", "--api-key-env"];

fn main() -> Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let (options, args) = common::Options::from_args(&FLAGS)?;
    let benchmark: DatasetName = args.value("--benchmark").unwrap_or("ml1m-gpt4").parse()?;
    let seeds: u64 = args.value("--seeds").map(str::parse).transpose().context("--seeds takes a number")?.unwrap_or(3);
    let split_seed: u64 =
        args.value("--split-seed").map(str::parse).transpose().context("--split-seed takes a number")?.unwrap_or(0);
    let max_epochs: Option<usize> =
        args.value("--max-epochs").map(str::parse).transpose().context("--max-epochs takes a number")?;
    let out = PathBuf::from(args.value("--out").map(str::to_string).unwrap_or_else(|| {
        common::cache_root().join(format!("reproduce-{}", benchmark.as_str())).to_string_lossy().into_owned()
    }));
    if seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let started = Instant::now();

    let data_dir = default_data_dir();
    let protocol = match benchmark {
        DatasetName::Ml100k => Some(Protocol::SummaryWindow(SummaryWindow::default())),
        _ => None,
    };
    let split = prepare(
        benchmark,
        &PrepareOptions { data_dir: data_dir.clone(), seed: split_seed, protocol, ..Default::default() },
    )
    .with_context(|| format!("preparing {}", benchmark.as_str()))?
    .split;
    let c = &split.meta.counts;
    println!(
        "== {} ({} protocol, split seed {split_seed}): {} training, {} validation, {} test users, {} items; seeds 0..{seeds}; out {}",
        split.meta.dataset,
        split.meta.protocol,
        c.train_users,
        c.validation_users,
        c.test_users,
        c.items,
        out.display()
    );
    let (summaries, encoder) = summaries_and_encoder(benchmark, &split, &data_dir, &out)?;
    let finetune = args.flag("--ablations-finetune");
    let ablations = args.flag("--ablations") || finetune;
    let llm = match (args.value("--llm-url"), args.value("--llm-model")) {
        (Some(url), Some(model)) => {
            let mut config = LlmConfig::new(url, model);
            config.api_key = ApiKey::from_env(args.value("--api-key-env").unwrap_or("OPENAI_API_KEY"));
            config.max_tokens = DIRECT_MAX_TOKENS;
            Some(config)
        }
        (None, None) => None,
        _ => bail!("the LLM row needs both --llm-url and --llm-model"),
    };
    let job = Job {
        split: &split,
        summaries: &summaries,
        encoder: &encoder,
        out: &out,
        seeds,
        max_epochs,
        ablations,
        finetune,
    };
    let mut results = tears::backend::run(options.backend, job)??;
    match llm {
        Some(config) => {
            let e = llm_direct(&split, config, &out.join("llm-direct.jsonl"))?;
            let runs: Vec<(Option<f32>, UserEvaluation)> = (0..seeds).map(|_| (None, e.clone())).collect();
            results.rows.insert(0, row_result("LLM asked directly", "llm-direct", &runs)?);
        }
        None => results.not_run.push(NotRun {
            name: "LLM asked directly".into(),
            why: "not run (no endpoint: give --llm-url and --llm-model)".into(),
        }),
    }
    results.benchmark = benchmark.as_str().to_string();
    results.split_seed = split_seed;
    results.backend = format!("{:?}", options.backend).to_lowercase();
    results.encoder = encoder_name(&encoder);
    results.machine = machine();
    results.wall_seconds = started.elapsed().as_secs_f64();
    let table = results.table();
    println!("\n{table}");
    let json = serde_json::to_vec_pretty(&results)?;
    tears::data::io::write_atomic(&out.join("results.json"), |w| w.write_all(&json))?;
    tears::data::io::write_atomic(&out.join("table.md"), |w| w.write_all(table.as_bytes()))?;
    println!(
        "wrote {} and {} ({:.0} s)",
        out.join("results.json").display(),
        out.join("table.md").display(),
        results.wall_seconds
    );
    Ok(())
}

/// The summaries and the text encoder of `benchmark`.
fn summaries_and_encoder(
    benchmark: DatasetName,
    split: &Split,
    data_dir: &Path,
    out: &Path,
) -> Result<(SummariesFile, TextEncoderChoice)> {
    let minilm = common::minilm_dir();
    let have_minilm = minilm.join("config.json").is_file();
    Ok(match benchmark {
        DatasetName::Ml1mGpt4 => {
            if !have_minilm {
                bail!(
                    "ml1m-gpt4 reads the summaries with all-MiniLM-L6-v2, not found in {} (set TEARS_ENCODER_DIR)",
                    minilm.display()
                );
            }
            let path = gpt4_summaries_path(data_dir)?;
            let file = SummariesFile::load(&path).with_context(|| format!("reading {}", path.display()))?;
            (file, TextEncoderChoice::parse(&minilm.to_string_lossy()))
        }
        _ => {
            let file = common::template_summaries(split, &out.join("template-summaries.jsonl"))?;
            let encoder = if have_minilm && benchmark != DatasetName::Synthetic {
                TextEncoderChoice::parse(&minilm.to_string_lossy())
            } else {
                TextEncoderChoice::parse("hashing")
            };
            (file, encoder)
        }
    })
}

fn encoder_name(encoder: &TextEncoderChoice) -> String {
    match encoder {
        TextEncoderChoice::Bert { .. } => "all-MiniLM-L6-v2 (frozen)".into(),
        _ => "hashing bag-of-words".into(),
    }
}

/// The CPU model and core count of this machine.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores")
}

/// A model to train (or load) once per seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Model {
    Pop,
    Ease,
    Backbone(BackboneKind),
    /// TEARS (text) or GERS (genres), on a backbone or Base (`None`).
    Scrutable(ProfileSource, Option<BackboneKind>),
}

impl Model {
    /// The model directory's name.
    fn dir_name(self) -> String {
        match self {
            Model::Pop => "pop".into(),
            Model::Ease => "ease".into(),
            Model::Backbone(k) => k.name().into(),
            Model::Scrutable(p, b) => {
                let family = if p == ProfileSource::Text { "tears" } else { "gers" };
                format!("{family}-{}", b.map_or("base", |k| k.name()))
            }
        }
    }

    /// Deterministic models are fitted once, outside the seed folders.
    fn seeded(self) -> bool {
        !matches!(self, Model::Pop | Model::Ease)
    }
}

/// Where a row's model is scored.
#[derive(Debug, Clone, Copy, PartialEq)]
enum At {
    /// The model has no alpha.
    Plain,
    /// alpha*, chosen on validation users.
    Star,
    /// A fixed alpha.
    Alpha(f32),
}

struct RowSpec {
    name: &'static str,
    model: Model,
    at: At,
}

const fn row(name: &'static str, model: Model, at: At) -> RowSpec {
    RowSpec { name, model, at }
}

use BackboneKind::{MacridVae, MultDae, MultVae, RecVae};
use ProfileSource::{Genres, Text};

/// The rows, in the paper's order.
const ROWS: [RowSpec; 13] = [
    row("most-popular", Model::Pop, At::Plain),
    row("EASE", Model::Ease, At::Plain),
    row("Mult-DAE", Model::Backbone(MultDae), At::Plain),
    row("GERS Base", Model::Scrutable(Genres, None), At::Plain),
    row("TEARS Base", Model::Scrutable(Text, None), At::Plain),
    row("Mult-VAE", Model::Backbone(MultVae), At::Plain),
    row("TEARS-MultVAE α*", Model::Scrutable(Text, Some(MultVae)), At::Star),
    row("MacridVAE", Model::Backbone(MacridVae), At::Plain),
    row("TEARS-MacridVAE α*", Model::Scrutable(Text, Some(MacridVae)), At::Star),
    row("RecVAE", Model::Backbone(RecVae), At::Plain),
    row("GERS-RecVAE α*", Model::Scrutable(Genres, Some(RecVae)), At::Star),
    row("TEARS-RecVAE α = 1", Model::Scrutable(Text, Some(RecVae)), At::Alpha(1.0)),
    row("TEARS-RecVAE α*", Model::Scrutable(Text, Some(RecVae)), At::Star),
];

/// The paired comparisons (A, B): every TEARS and GERS model against its own backbone, the Base
/// models against Mult-VAE (the paper's "within about 10 %"), GERS against TEARS, and EASE
/// against most-popular and Mult-VAE.
const COMPARISONS: [(&str, &str); 11] = [
    ("TEARS-MultVAE α*", "Mult-VAE"),
    ("TEARS-MacridVAE α*", "MacridVAE"),
    ("TEARS-RecVAE α*", "RecVAE"),
    ("TEARS-RecVAE α = 1", "RecVAE"),
    ("GERS-RecVAE α*", "RecVAE"),
    ("TEARS Base", "Mult-VAE"),
    ("GERS Base", "Mult-VAE"),
    ("TEARS-RecVAE α*", "GERS-RecVAE α*"),
    ("TEARS Base", "GERS Base"),
    ("EASE", "most-popular"),
    ("EASE", "Mult-VAE"),
];

/// The metrics of the table, as (key, metric, k).
const TABLE_METRICS: [(&str, UserMetric, usize); 4] = [
    ("R@20", UserMetric::Recall, 20),
    ("N@20", UserMetric::Ndcg, 20),
    ("R@50", UserMetric::Recall, 50),
    ("N@50", UserMetric::Ndcg, 50),
];

/// The metrics compared per user.
const PAIRED_METRICS: [(&str, UserMetric, usize); 2] =
    [("N@20", UserMetric::Ndcg, 20), ("R@20", UserMetric::Recall, 20)];

/// What `results.json` holds.
#[derive(Debug, Default, Serialize)]
struct Results {
    benchmark: String,
    split_seed: u64,
    seeds: Vec<u64>,
    backend: String,
    encoder: String,
    machine: String,
    /// Wall time of this invocation (models reused from an earlier one cost only their loading).
    wall_seconds: f64,
    /// Test users in row order of every per-user vector.
    test_users: Vec<u64>,
    rows: Vec<RowResult>,
    /// Every trained model per seed: epochs, alpha*, validation sweep, training time.
    models: Vec<ModelRecord>,
    comparisons: Vec<Comparison>,
    not_run: Vec<NotRun>,
    /// TEARS-RecVAE ablations (with `--ablations`).
    ablations: Vec<Ablation>,
}

#[derive(Debug, Serialize)]
struct RowResult {
    name: String,
    model: String,
    per_seed: Vec<SeedResult>,
    /// Mean and sample std over seeds of each metric's mean over users.
    mean: BTreeMap<String, f64>,
    std: BTreeMap<String, f64>,
}

#[derive(Debug, Serialize)]
struct SeedResult {
    seed: u64,
    /// The alpha scored (`None` for models without one).
    alpha: Option<f32>,
    /// Mean over test users.
    metrics: BTreeMap<String, f64>,
    /// Per-user test values (`None`: no held-out item), keyed `N@20` / `R@20`.
    per_user: BTreeMap<String, Vec<Option<f64>>>,
}

#[derive(Debug, Serialize)]
struct ModelRecord {
    model: String,
    seed: u64,
    dir: PathBuf,
    fit_seconds: Option<f64>,
    epochs_run: Option<usize>,
    best_epoch: Option<usize>,
    alpha_star: Option<f32>,
    /// Validation NDCG@20 per alpha (TEARS and GERS on a backbone).
    validation_sweep: Vec<(f32, f64)>,
}

#[derive(Debug, Serialize)]
struct Comparison {
    a: String,
    b: String,
    metric: String,
    /// Whether this is A's main comparison (the first listed for A), the one its stars show.
    primary: bool,
    /// Users whose value exists under both models in every seed.
    #[serde(flatten)]
    test: PairedComparison,
    significant: bool,
}

#[derive(Debug, Serialize)]
struct NotRun {
    name: String,
    why: String,
}

struct Job<'a> {
    split: &'a Split,
    summaries: &'a SummariesFile,
    encoder: &'a TextEncoderChoice,
    out: &'a Path,
    seeds: u64,
    max_epochs: Option<usize>,
    ablations: bool,
    finetune: bool,
}

impl tears::backend::BackendJob for Job<'_> {
    type Output = Result<Results>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let split = self.split;
        let cache = self.out.join("embedding-cache");
        if let TextEncoderChoice::Bert { .. } = self.encoder {
            let t = Instant::now();
            let n = common::embed_summaries::<B::InnerBackend>(split, self.summaries, self.encoder, &cache, &device)?;
            println!("{n} summaries embedded or found in {} ({:.0} s)", cache.display(), t.elapsed().as_secs_f64());
        }
        let eval = EvalOptions { ks: vec![20, 50], ..Default::default() };
        let test = split.eval(EvalSet::Test);
        let mut results =
            Results { seeds: (0..self.seeds).collect(), test_users: test.users().to_vec(), ..Default::default() };
        // evals[row][seed]
        let mut evals: Vec<Vec<(Option<f32>, UserEvaluation)>> = ROWS.iter().map(|_| Vec::new()).collect();
        let mut models: Vec<Model> = Vec::new();
        for r in &ROWS {
            if !models.contains(&r.model) {
                models.push(r.model);
            }
        }
        for seed in 0..self.seeds {
            for &m in &models {
                let dir = if m.seeded() {
                    self.out.join(format!("seed-{seed}")).join(m.dir_name())
                } else {
                    self.out.join(m.dir_name())
                };
                let t = Instant::now();
                let reused = common::finished(&dir);
                let mut model = self
                    .train_or_load::<B>(m, seed, &dir, &cache, &device)
                    .with_context(|| format!("{} of seed {seed} in {}", m.dir_name(), dir.display()))?;
                println!(
                    "seed {seed} {:<18} {} in {:.1} s",
                    m.dir_name(),
                    if reused { "loaded" } else { "trained" },
                    t.elapsed().as_secs_f64()
                );
                if m.seeded() || seed == 0 {
                    results.models.push(model_record(m, seed, &dir)?);
                }
                let profiles: Option<&Profiles> = match m {
                    Model::Scrutable(Text, _) => Some(&self.summaries.profiles),
                    _ => None,
                };
                for (i, r) in ROWS.iter().enumerate().filter(|(_, r)| r.model == m) {
                    let alpha = match (&mut model, r.at) {
                        (Loaded::Scrutable(s), At::Star) => {
                            let a = s.alpha_star().context("a fused model without alpha*")?;
                            s.set_alpha(a);
                            Some(a)
                        }
                        (Loaded::Scrutable(s), At::Alpha(a)) => {
                            s.set_alpha(a);
                            Some(a)
                        }
                        (Loaded::Scrutable(s), At::Plain) => Some(s.alpha()),
                        (Loaded::Plain(_), _) => None,
                    };
                    let scorer: &dyn Recommender = match &model {
                        Loaded::Scrutable(s) => s.as_ref(),
                        Loaded::Plain(p) => p.as_ref(),
                    };
                    let e = evaluate_users_with_profiles(scorer, test, profiles, MissingProfile::Error, &eval)
                        .with_context(|| format!("evaluating {} (seed {seed})", r.name))?;
                    anyhow::ensure!(e.users == results.test_users, "{}: the test users differ between rows", r.name);
                    evals[i].push((alpha, e));
                }
            }
        }
        for (r, runs) in ROWS.iter().zip(&evals) {
            results.rows.push(row_result(r.name, &r.model.dir_name(), runs)?);
        }
        for (j, (a, b)) in COMPARISONS.iter().copied().enumerate() {
            let primary = COMPARISONS[..j].iter().all(|(earlier, _)| *earlier != a);
            for (key, metric, k) in PAIRED_METRICS {
                let ia = row_index(a)?;
                let ib = row_index(b)?;
                let test = paired_test(&evals[ia], &evals[ib], metric, k)?;
                results.comparisons.push(Comparison {
                    a: a.into(),
                    b: b.into(),
                    metric: key.into(),
                    primary,
                    significant: test.significant(),
                    test,
                });
            }
        }
        if self.ablations {
            results.ablations = self.ablations::<B>(&cache, &device)?;
        }
        Ok(results)
    }
}

/// A loaded model: plain (baselines, backbones) or scrutable (alpha can change).
enum Loaded {
    Plain(Box<dyn Recommender>),
    Scrutable(Box<dyn tears::model::ScrutableRecommender>),
}

impl Job<'_> {
    fn train_or_load<B: AutodiffBackend>(
        &self,
        m: Model,
        seed: u64,
        dir: &Path,
        cache: &Path,
        device: &B::Device,
    ) -> Result<Loaded> {
        let split = self.split;
        let run =
            RunOptions { out_dir: Some(dir.to_path_buf()), resume: true, progress: true, ..RunOptions::default() };
        let cap = |epochs: usize| self.max_epochs.map_or(epochs, |m| m.min(epochs));
        Ok(match m {
            Model::Pop => Loaded::Plain(
                common::baseline(dir, split, 0, |s, seed| Ok(Box::new(Popularity::fit(s, &(), seed)?)))?.0,
            ),
            Model::Ease => Loaded::Plain(
                common::baseline(dir, split, 0, |s, seed| Ok(Box::new(Ease::fit(s, &EaseConfig::default(), seed)?)))?.0,
            ),
            Model::Backbone(kind) => {
                let model = kind.model_for(&split.meta.dataset);
                if common::finished(dir) {
                    let saved = tears::vae::SavedBackbone::read(dir, split)?;
                    if saved.model != model {
                        bail!(
                            "{} holds {kind} trained with {}, but {}'s setting is now {}: remove that folder and \
                             the TEARS folders built on it (tears-{kind}) to retrain them",
                            dir.display(),
                            serde_json::to_string(&saved.model)?,
                            split.meta.dataset,
                            serde_json::to_string(&model)?
                        );
                    }
                    Loaded::Plain(tears::vae::load::<B::InnerBackend>(dir, split, device)?)
                } else {
                    let base = kind.default_train();
                    let train = tears::vae::TrainConfig { seed, epochs: cap(base.epochs), ..base };
                    Loaded::Plain(tears::vae::fit_config::<B>(&model, split, &train, &run, device)?.0)
                }
            }
            Model::Scrutable(profile, backbone) => {
                let config = TearsConfig {
                    profile,
                    backbone: backbone.map_or(BackboneChoice::None, BackboneChoice::of),
                    ..TearsConfig::default()
                };
                let backbone_dir = backbone.map(|k| dir.with_file_name(k.name()));
                let variant = Variant { config, encoder: self.encoder.clone(), backbone_dir };
                Loaded::Scrutable(self.scrutable::<B>(&variant, seed, dir, cache, device)?)
            }
        })
    }

    /// Trains (or loads) a TEARS/GERS model of `variant` in `dir`.
    fn scrutable<B: AutodiffBackend>(
        &self,
        variant: &Variant,
        seed: u64,
        dir: &Path,
        cache: &Path,
        device: &B::Device,
    ) -> Result<Box<dyn tears::model::ScrutableRecommender>> {
        if common::finished(dir) {
            let options = LoadOptions { encoder_dir: None, embedding_cache: Some(cache.to_path_buf()) };
            return Ok(tears::model::load::<B::InnerBackend>(dir, self.split, &options, device)?);
        }
        let base = TearsTrainConfig::default();
        let epochs = self.max_epochs.map_or(base.epochs, |m| m.min(base.epochs));
        let train = TearsTrainConfig { seed, epochs, ..base };
        let text = variant.config.profile == Text;
        let inputs = TrainInputs {
            split: self.split,
            backbone_dir: variant.backbone_dir.as_deref(),
            encoder: text.then(|| variant.encoder.clone()),
            summaries: text.then_some(self.summaries),
            missing: MissingProfile::Error,
            embedding_cache: Some(cache.to_path_buf()),
        };
        let run =
            RunOptions { out_dir: Some(dir.to_path_buf()), resume: true, progress: true, ..RunOptions::default() };
        Ok(tears::model::fit::<B>(variant.config.clone(), &train, &inputs, &run, device)?.0)
    }

    /// The ablations of TEARS-RecVAE (seed 0, on seed 0's RecVAE): each changes one choice of
    /// the default model, trains in `OUT/ablations/NAME`, and reports validation N@20 at its
    /// alpha* (the best of its sweep), test N@20 at alpha* and its training time.
    fn ablations<B: AutodiffBackend>(&self, cache: &Path, device: &B::Device) -> Result<Vec<Ablation>> {
        let default = TearsConfig { backbone: BackboneChoice::RecVae, ..TearsConfig::default() };
        let hashing = TextEncoderChoice::parse("hashing");
        let label = format!(
            "default: gaussian-w2, λ2 annealed to 0.2, train α 0.5, linear head, {}",
            encoder_name(self.encoder)
        );
        let variants: [(&str, TearsConfig, &TextEncoderChoice); 8] = [
            (label.as_str(), default.clone(), self.encoder),
            ("alignment sinkhorn", TearsConfig { alignment: "sinkhorn".parse()?, ..default.clone() }, self.encoder),
            ("alignment none", TearsConfig { alignment: Alignment::None, ..default.clone() }, self.encoder),
            ("λ2 = 0", TearsConfig { lambda_kl: 0.0, ..default.clone() }, self.encoder),
            ("train α ~ U(0, 1)", TearsConfig { train_alpha: TrainAlpha::Uniform, ..default.clone() }, self.encoder),
            ("MLP head (hidden 400)", TearsConfig { head: Head::Mlp { hidden: 400 }, ..default.clone() }, self.encoder),
            (
                "MiniLM top-1 layer fine-tuned",
                TearsConfig { encoder_mode: "top-n:1".parse()?, ..default.clone() },
                self.encoder,
            ),
            ("hashing encoder", default.clone(), &hashing),
        ];
        let seed_dir = self.out.join("seed-0");
        let test = self.split.eval(EvalSet::Test);
        let eval = EvalOptions { ks: vec![20], ..Default::default() };
        let mut out = Vec::new();
        for (i, (name, config, encoder)) in variants.into_iter().enumerate() {
            // Fine-tuning runs only with --ablations-finetune and a BERT-family encoder (one epoch
            // with MiniLM's top layer training takes minutes); a variant equal to the default (the
            // hashing encoder on a benchmark read with it) is the default's row.
            let bert = matches!(encoder, TextEncoderChoice::Bert { .. });
            if (config.encoder_mode.trains() && !(bert && self.finetune))
                || (i > 0 && config == default && encoder == self.encoder)
            {
                continue;
            }
            // The default is the table's TEARS-RecVAE of seed 0.
            let dir =
                if i == 0 { seed_dir.join("tears-recvae") } else { self.out.join("ablations").join(format!("{i}")) };
            let variant = Variant { config, encoder: encoder.clone(), backbone_dir: Some(seed_dir.join("recvae")) };
            let t = Instant::now();
            let mut model = self.scrutable::<B>(&variant, 0, &dir, cache, device)?;
            println!("ablation {name}: {:.0} s", t.elapsed().as_secs_f64());
            let record = model_record(Model::Scrutable(Text, Some(RecVae)), 0, &dir)?;
            let alpha = model.alpha_star().context("a fused model without alpha*")?;
            model.set_alpha(alpha);
            let e = evaluate_users_with_profiles(
                model.as_ref(),
                test,
                Some(&self.summaries.profiles),
                MissingProfile::Error,
                &eval,
            )?;
            let validation = record.validation_sweep.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
            out.push(Ablation {
                name: name.into(),
                alpha_star: alpha,
                validation_ndcg20: validation,
                test_ndcg20: mean_counted(&e.values(UserMetric::Ndcg, 20).context("N@20 not evaluated")?),
                fit_seconds: record.fit_seconds,
                epochs_run: record.epochs_run,
                best_epoch: record.best_epoch,
            });
        }
        Ok(out)
    }
}

/// One TEARS/GERS configuration to train.
struct Variant {
    config: TearsConfig,
    encoder: TextEncoderChoice,
    backbone_dir: Option<PathBuf>,
}

/// One row of the ablation table.
#[derive(Debug, Serialize)]
struct Ablation {
    name: String,
    alpha_star: f32,
    validation_ndcg20: f64,
    test_ndcg20: f64,
    fit_seconds: Option<f64>,
    epochs_run: Option<usize>,
    best_epoch: Option<usize>,
}

/// The "LLM asked directly" row: every test user's window to the LLM (answers cached in `cache`),
/// the answers matched to the catalogue and scored at 20 and 50. The answers do not depend on the
/// training seed (temperature 0), so one evaluation serves every seed.
fn llm_direct(split: &Split, config: LlmConfig, cache: &Path) -> Result<UserEvaluation> {
    let client = LlmClient::new(config)?;
    let direct = DirectRecommender::movies(client)?;
    let jobs = direct::jobs(split, EvalSet::Test);
    let mut answers = SummaryCache::open(cache)?;
    let report =
        summarize_all(&direct, &jobs, &mut answers, &BatchOptions { progress: true, ..BatchOptions::default() });
    if let Some(e) = report.stopped {
        return Err(anyhow::Error::new(e).context("asking the LLM directly"));
    }
    println!(
        "LLM asked directly: {} answers ({} failed: counted with an empty list; see {})",
        jobs.len() - report.failed.len(),
        report.failed.len(),
        answers.failures_path().display()
    );
    let test = split.eval(EvalSet::Test);
    let lists = direct::ranked_lists(split, EvalSet::Test, &answers);
    let ks = [20, 50];
    let mut per_user = Vec::with_capacity(test.len());
    for (k, ranked) in lists.iter().enumerate() {
        let heldout: Vec<usize> = test.heldout.row(k).iter().map(|r| r.item as usize).collect();
        let ranked = ranked.as_deref().unwrap_or_default();
        let row: Vec<Option<UserAccuracy>> =
            ks.iter().map(|&cut| user_accuracy(ranked, &heldout, cut)).collect::<Result<_, _>>()?;
        per_user.push(row);
    }
    let results = ks
        .iter()
        .enumerate()
        .map(|(j, &k)| {
            let agg =
                |f: fn(&UserAccuracy) -> f64| Aggregate::from_values(per_user.iter().map(|r| r[j].as_ref().map(f)));
            AccuracyAtK { k, recall: agg(|a| a.recall), plain_recall: agg(|a| a.plain_recall), ndcg: agg(|a| a.ndcg) }
        })
        .collect();
    Ok(UserEvaluation { report: AccuracyReport { results }, ks: ks.to_vec(), users: test.users().to_vec(), per_user })
}

/// What the model directory records about its training.
fn model_record(m: Model, seed: u64, dir: &Path) -> Result<ModelRecord> {
    let manifest = Manifest::read(dir)?;
    let summary = manifest.hyper_parameters.get("summary").cloned().unwrap_or_default();
    let number = |key: &str| summary.get(key).and_then(serde_json::Value::as_u64).map(|v| v as usize);
    let (alpha_star, validation_sweep) = match m {
        Model::Scrutable(..) => {
            let record: TearsRecord = serde_json::from_value(manifest.hyper_parameters.clone())
                .with_context(|| format!("reading the TEARS record of {}", dir.display()))?;
            (record.alpha_star, record.validation_sweep.iter().map(|p| (p.alpha, p.ndcg20)).collect())
        }
        _ => (None, Vec::new()),
    };
    Ok(ModelRecord {
        model: m.dir_name(),
        seed: if m.seeded() { seed } else { 0 },
        dir: dir.to_path_buf(),
        fit_seconds: manifest.fit_seconds,
        epochs_run: number("epochs_run"),
        best_epoch: number("best_epoch"),
        alpha_star,
        validation_sweep,
    })
}

fn row_index(name: &str) -> Result<usize> {
    ROWS.iter().position(|r| r.name == name).with_context(|| format!("no row named {name}"))
}

/// Mean over the users counted.
fn mean_counted(values: &[Option<f64>]) -> f64 {
    let counted: Vec<f64> = values.iter().flatten().copied().collect();
    if counted.is_empty() { 0.0 } else { counted.iter().sum::<f64>() / counted.len() as f64 }
}

fn row_result(name: &str, model: &str, runs: &[(Option<f32>, UserEvaluation)]) -> Result<RowResult> {
    let mut per_seed = Vec::with_capacity(runs.len());
    for (seed, (alpha, e)) in runs.iter().enumerate() {
        let mut metrics = BTreeMap::new();
        for (key, metric, k) in TABLE_METRICS {
            let values = e.values(metric, k).with_context(|| format!("{key} not evaluated"))?;
            metrics.insert(key.to_string(), mean_counted(&values));
        }
        let mut per_user = BTreeMap::new();
        for (key, metric, k) in PAIRED_METRICS {
            per_user.insert(key.to_string(), e.values(metric, k).with_context(|| format!("{key} not evaluated"))?);
        }
        per_seed.push(SeedResult { seed: seed as u64, alpha: *alpha, metrics, per_user });
    }
    let (mut mean, mut std) = (BTreeMap::new(), BTreeMap::new());
    for (key, _, _) in TABLE_METRICS {
        let xs: Vec<f64> = per_seed.iter().map(|s| s.metrics[key]).collect();
        let m = xs.iter().sum::<f64>() / xs.len() as f64;
        let s = if xs.len() > 1 {
            (xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
        } else {
            0.0
        };
        mean.insert(key.to_string(), m);
        std.insert(key.to_string(), s);
    }
    Ok(RowResult { name: name.into(), model: model.into(), per_seed, mean, std })
}

/// The paired test of A against B on `metric`@`k`: each user's value averaged over seeds, the
/// users without a value under either model in some seed left out.
fn paired_test(
    a: &[(Option<f32>, UserEvaluation)],
    b: &[(Option<f32>, UserEvaluation)],
    metric: UserMetric,
    k: usize,
) -> Result<PairedComparison> {
    let values = |runs: &[(Option<f32>, UserEvaluation)]| -> Result<Vec<Vec<Option<f64>>>> {
        runs.iter().map(|(_, e)| e.values(metric, k).context("cut-off not evaluated")).collect()
    };
    let (va, vb) = (values(a)?, values(b)?);
    let n_users = va.first().map_or(0, Vec::len);
    let keep: Vec<usize> =
        (0..n_users).filter(|&u| va.iter().chain(&vb).all(|run| run.get(u).is_some_and(Option::is_some))).collect();
    let pooled = |runs: &[Vec<Option<f64>>]| -> Result<Vec<f64>> {
        let dense: Vec<Vec<f64>> =
            runs.iter().map(|run| keep.iter().map(|&u| run[u].unwrap_or(0.0)).collect()).collect();
        Ok(paired::mean_over_seeds(&dense)?)
    };
    Ok(paired::compare(&pooled(&va)?, &pooled(&vb)?)?)
}

impl Results {
    /// The markdown table: rows in the paper's order, mean ± std over seeds; then the paired
    /// comparisons.
    fn table(&self) -> String {
        let mut s = format!(
            "### {} test users, {} seed(s) ({}), split seed {}, {}; {}\n\n",
            self.test_users.len(),
            self.seeds.len(),
            self.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
            self.split_seed,
            self.encoder,
            self.machine
        );
        s.push_str("| model | alpha | R@20 | N@20 | R@50 | N@50 |\n|---|---|---|---|---|---|\n");
        for n in &self.not_run {
            s.push_str(&format!("| {} | – | {} | | | |\n", n.name, n.why));
        }
        for r in &self.rows {
            let star = |metric: &str| {
                self.comparisons.iter().any(|c| {
                    c.primary && c.a == r.name && c.metric == metric && c.significant && c.test.mean_diff > 0.0
                })
            };
            let alphas: Vec<String> =
                r.per_seed.iter().map(|s| s.alpha.map_or("–".to_string(), |a| format!("{a:.1}"))).collect();
            let mut cells = Vec::new();
            for (key, _, _) in TABLE_METRICS {
                let star = (key == "N@20" || key == "R@20") && star(key);
                cells.push(format!("{:.4} ± {:.4}{}", r.mean[key], r.std[key], if star { "*" } else { "" }));
            }
            s.push_str(&format!("| {} | {} | {} |\n", r.name, alphas.join(", "), cells.join(" | ")));
        }
        s.push_str(
            "\nMean ± sample std over seeds of the mean over test users. A star: better than the row it is \
             compared with below (its own backbone for TEARS/GERS on a backbone, Mult-VAE for the Base models, \
             most-popular for EASE) with Wilcoxon signed-rank p < 0.05.\n\n",
        );
        s.push_str("| A | B | metric | users | mean A − B | std err | paired t p | Wilcoxon p |\n|---|---|---|---|---|---|---|---|\n");
        for c in &self.comparisons {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {:+.4} | {:.4} | {:.2e} | {:.2e}{} |\n",
                c.a,
                c.b,
                c.metric,
                c.test.n,
                c.test.mean_diff,
                c.test.std_err,
                c.test.t_test.p_value,
                c.test.wilcoxon.p_value,
                if c.significant { " *" } else { "" }
            ));
        }
        s.push_str("\nPer-user values averaged over seeds, then paired over users (two-sided tests).\n\n");
        s.push_str(
            "| model | seed | epochs run (best) | alpha* | validation N@20 by alpha | fit s |\n|---|---|---|---|---|---|\n",
        );
        for m in &self.models {
            let sweep: Vec<String> = m.validation_sweep.iter().map(|(a, v)| format!("{a:.1}: {v:.3}")).collect();
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                m.model,
                m.seed,
                epochs_cell(m.epochs_run, m.best_epoch),
                m.alpha_star.map_or("–".into(), |a| format!("{a:.1}")),
                if sweep.is_empty() { "–".to_string() } else { sweep.join(", ") },
                seconds_cell(m.fit_seconds)
            ));
        }
        if !self.ablations.is_empty() {
            s.push_str("\n#### Ablations of TEARS-RecVAE (seed 0; alpha* on validation users)\n\n");
            s.push_str("| variant | alpha* | validation N@20 | test N@20 | epochs run (best) | fit s |\n|---|---|---|---|---|---|\n");
            for a in &self.ablations {
                s.push_str(&format!(
                    "| {} | {:.1} | {:.4} | {:.4} | {} | {} |\n",
                    a.name,
                    a.alpha_star,
                    a.validation_ndcg20,
                    a.test_ndcg20,
                    epochs_cell(a.epochs_run, a.best_epoch),
                    seconds_cell(a.fit_seconds)
                ));
            }
        }
        s
    }
}

/// "run (best)" epochs, or a dash for models without epochs.
fn epochs_cell(run: Option<usize>, best: Option<usize>) -> String {
    run.map_or("–".into(), |e| format!("{e} ({})", best.unwrap_or(0)))
}

/// Whole seconds, or a dash when unknown.
fn seconds_cell(seconds: Option<f64>) -> String {
    seconds.map_or("–".into(), |f| format!("{f:.0}"))
}
