//! The `tears` command line.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use tears::data::split::{RandomHoldout, SummaryWindow, UserCount};
use tears::data::{DatasetName, PrepareOptions, Preprocess, Protocol, default_data_dir, prepare};

/// Scrutable recommendation with editable natural-language user profiles (TEARS).
#[derive(Debug, Parser)]
#[command(name = "tears", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load a dataset, split it with an evaluation protocol and write the split directory.
    Prepare(Box<PrepareArgs>),
    /// List the backends compiled into this build and check that each can run a small kernel.
    Backends,
    /// Write a summary of every user of a split (LLM or template), from the ratings a summarizer
    /// may see; resumable: finished users in --out are skipped.
    Summarize(Box<SummarizeArgs>),
    /// Fit a baseline (ease, pop) or train a VAE backbone (multdae, multvae, recvae, macridvae)
    /// on a split's training users and save it to a model directory (backbones checkpoint every
    /// epoch and resume).
    Train(Box<TrainArgs>),
    /// Evaluate a saved model on a split's test or validation users.
    Evaluate(EvaluateArgs),
    /// Encode user summaries into sentence embeddings with a BERT-family model folder
    /// (.npy with the user ids in OUT.users.txt, or .safetensors).
    Embed(Box<EmbedArgs>),
}

#[derive(Debug, Args)]
struct EmbedArgs {
    /// Model folder in the Hugging Face layout (config.json, tokenizer.json, model.safetensors).
    #[arg(long, default_value = tears::text::DEFAULT_MODEL_DIR)]
    model_dir: PathBuf,
    /// Summaries: the JSONL written by `tears summarize` (`user` and `text` fields), or a JSON
    /// object mapping user ids to texts (the shipped summaries); plain, .gz or .xz.
    #[arg(long)]
    summaries: PathBuf,
    /// Output file: .npy (float32 [users, dim], rows in ascending user id, the ids in
    /// OUT.users.txt) or .safetensors (tensors `embeddings` and `users`).
    #[arg(long)]
    out: PathBuf,
    /// Texts per forward pass.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Truncation length in tokens.
    #[arg(long, default_value_t = tears::text::DEFAULT_MAX_TOKENS)]
    max_tokens: usize,
    /// Keep the pooled vectors as they are (no L2 normalisation).
    #[arg(long)]
    no_normalize: bool,
    /// Embedding cache folder, keyed by (model hash, text hash): texts already there are not
    /// encoded again. Safe to share between runs.
    #[arg(long)]
    cache: Option<PathBuf>,
    /// flex, ndarray or cuda.
    #[arg(long, default_value_t = tears::backend::BackendKind::default().name().to_string())]
    backend: String,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
}

#[derive(Debug, Args)]
struct SummarizeArgs {
    /// The split directory (written by `tears prepare`).
    #[arg(long)]
    split: PathBuf,
    /// The JSONL summary cache to append to (created if needed).
    #[arg(long)]
    out: PathBuf,
    /// Use the offline template summarizer.
    #[arg(long, conflicts_with_all = ["llm_url", "model"])]
    template: bool,
    /// Base URL of an OpenAI-compatible server (https://api.openai.com, http://localhost:8080).
    #[arg(long, requires = "model")]
    llm_url: Option<String>,
    /// Model name sent to the server.
    #[arg(long, requires = "llm_url")]
    model: Option<String>,
    /// Environment variable holding the API key (unset: no key is sent).
    #[arg(long, default_value = "OPENAI_API_KEY")]
    api_key_env: String,
    /// A prompt template file (default: the built-in TEARS movie prompt, books for book datasets).
    #[arg(long)]
    prompt: Option<PathBuf>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// train, validation, test or all.
    #[arg(long, default_value = "all")]
    set: String,
    /// Only the first N users of the set (in split order).
    #[arg(long)]
    limit: Option<usize>,
    /// At most this many recent items per prompt.
    #[arg(long, default_value_t = 50)]
    max_items: usize,
    /// Reject (and re-ask) answers that name one of the user's titles.
    #[arg(long)]
    reject_titles: bool,
    /// Timeout of one request, in seconds.
    #[arg(long, default_value_t = 120.0)]
    timeout_s: f64,
    /// Attempts per request (timeouts, 429 and 5xx are retried with backoff).
    #[arg(long, default_value_t = 6)]
    max_attempts: u32,
    /// Base backoff in seconds (doubles per retry, capped at 60 s, jittered).
    #[arg(long, default_value_t = 1.0)]
    backoff_s: f64,
    /// Render the prompts and print their sizes; send nothing, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
}

#[derive(Debug, Args)]
struct TrainArgs {
    /// ease, pop, multdae, multvae, recvae or macridvae.
    model: String,
    /// Split directory written by `tears prepare`.
    #[arg(long)]
    split: PathBuf,
    /// Model directory to write (created if needed).
    #[arg(long)]
    out: PathBuf,
    /// Seed of every random draw (recorded in the manifest; EASE and pop are deterministic).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// EASE: use this lambda instead of choosing one on validation NDCG@20.
    #[arg(long)]
    lambda: Option<f64>,
    /// EASE: the lambda grid searched on validation NDCG@20, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = tears::baselines::ease::DEFAULT_LAMBDAS)]
    lambdas: Vec<f64>,
    /// EASE: refuse catalogues whose items² × 8 bytes exceed this many GiB.
    #[arg(long, default_value_t = 8.0)]
    memory_limit_gib: f64,
    /// Backbones: epochs (default: the reference schedule, 200 for multdae and multvae, 50 for
    /// recvae, 100 for macridvae).
    #[arg(long)]
    epochs: Option<usize>,
    /// Backbones: stop after this many epochs without a better validation NDCG (0: never).
    #[arg(long, default_value_t = 20)]
    patience: usize,
    /// Backbones: users per mini-batch.
    #[arg(long, default_value_t = 500)]
    batch_size: usize,
    /// Backbones: Adam learning rate (default: the backbone's reference value).
    #[arg(long)]
    lr: Option<f64>,
    /// Backbones: the cut-off of the validation NDCG that selects the best epoch.
    #[arg(long, default_value_t = 100)]
    select_k: usize,
    /// Backbones: flex, ndarray or cuda.
    #[arg(long, default_value = "flex")]
    backend: String,
    /// Backbones: ignore a checkpoint in --out and start over.
    #[arg(long)]
    restart: bool,
    /// Hide the progress bar.
    #[arg(long)]
    no_progress: bool,
}

#[derive(Debug, Args)]
struct EvaluateArgs {
    /// Model directory written by `tears train`.
    #[arg(long)]
    model: PathBuf,
    /// Split directory the model was trained on.
    #[arg(long)]
    split: PathBuf,
    /// test or validation.
    #[arg(long, default_value = "test")]
    set: String,
    /// Cut-offs, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [10usize, 20, 50, 100])]
    k: Vec<usize>,
    /// Users scored at once.
    #[arg(long, default_value_t = 1024)]
    batch_size: usize,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Backend that scores backbones: flex, ndarray or cuda.
    #[arg(long, default_value = "flex")]
    backend: String,
}

#[derive(Debug, Args)]
struct PrepareArgs {
    /// ml100k, ml1m, ml1m-gpt4, ml-latest, netflix, goodbooks or synthetic.
    #[arg(long)]
    dataset: String,
    /// Data root laid out like `shared/data` (ml-100k/, ml-1m/, summaries/, ...).
    /// Defaults to $TEARS_DATA_DIR, else ../shared/data.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Read the dataset's files from this folder instead of its standard place under --data-dir.
    #[arg(long)]
    path: Option<PathBuf>,
    /// Where to write the split (created if needed).
    #[arg(long)]
    out: PathBuf,
    /// random-holdout or summary-window (default: the dataset's benchmark protocol).
    #[arg(long)]
    protocol: Option<String>,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Skip malformed lines (and report how many) instead of failing on the first one.
    #[arg(long)]
    lenient: bool,
    /// Validation users: a count, or a fraction like 0.1 (random-holdout), a count (summary-window).
    #[arg(long)]
    validation_users: Option<f64>,
    /// Test users: as --validation-users.
    #[arg(long)]
    test_users: Option<f64>,
    /// summary-window: M, the number of most recent ratings that open the window.
    #[arg(long)]
    window: Option<usize>,
    /// summary-window: minimum held-out positives of an evaluation user.
    #[arg(long)]
    min_heldout: Option<usize>,
    /// Drop users with fewer ratings.
    #[arg(long, default_value_t = 0)]
    min_ratings_per_user: usize,
    /// Drop items with fewer positives.
    #[arg(long, default_value_t = 0)]
    min_positives_per_item: usize,
    /// Iterate to a k-core of the positive interactions.
    #[arg(long)]
    k_core: Option<usize>,
}

fn user_count(v: f64) -> UserCount {
    if v.fract() == 0.0 && v >= 1.0 { UserCount::Count(v as usize) } else { UserCount::Fraction(v) }
}

fn spinner(message: String) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn cmd_prepare(a: PrepareArgs) -> Result<()> {
    let name: DatasetName = a.dataset.parse()?;
    let mut protocol = match &a.protocol {
        Some(p) => Protocol::from_name(p)?,
        None => name.default_protocol(),
    };
    match &mut protocol {
        Protocol::RandomHoldout(RandomHoldout { validation_users, test_users, .. }) => {
            if let Some(v) = a.validation_users {
                *validation_users = user_count(v);
            }
            if let Some(v) = a.test_users {
                *test_users = user_count(v);
            }
        }
        Protocol::SummaryWindow(SummaryWindow { window, min_heldout, validation_users, test_users }) => {
            if let Some(v) = a.validation_users {
                *validation_users = v as usize;
            }
            if let Some(v) = a.test_users {
                *test_users = v as usize;
            }
            if let Some(m) = a.window {
                *window = m;
            }
            if let Some(m) = a.min_heldout {
                *min_heldout = m;
            }
        }
    }
    let options = PrepareOptions {
        data_dir: a.data_dir.unwrap_or_else(default_data_dir),
        path: a.path,
        protocol: Some(protocol),
        preprocess: Preprocess {
            min_ratings_per_user: a.min_ratings_per_user,
            min_positives_per_item: a.min_positives_per_item,
            k_core: a.k_core,
            ..Preprocess::default()
        },
        seed: a.seed,
        lenient: a.lenient,
        ..Default::default()
    };
    let started = Instant::now();
    let bar = spinner(format!("preparing {}", name.as_str()));
    let prepared = prepare(name, &options);
    bar.finish_and_clear();
    let prepared = prepared.with_context(|| format!("preparing {}", name.as_str()))?;
    let prepared_in = started.elapsed();
    prepared.split.save(&a.out).with_context(|| format!("writing the split to {}", a.out.display()))?;
    let stats = prepared.dataset.stats(prepared.split.meta.positive_above);
    let c = &prepared.split.meta.counts;
    println!(
        "{} ({}, seed {}): {} ratings from {} users on {} items{}",
        prepared.split.meta.dataset,
        prepared.split.meta.protocol,
        prepared.split.meta.seed,
        stats.events,
        stats.users,
        stats.rated_items,
        if prepared.dataset.skipped_records > 0 {
            format!(" ({} malformed records skipped)", prepared.dataset.skipped_records)
        } else {
            String::new()
        }
    );
    println!("  train_users         {:>9}", c.train_users);
    println!("  validation_users    {:>9}", c.validation_users);
    println!("  test_users          {:>9}", c.test_users);
    println!("  items               {:>9}", c.items);
    println!("  train_interactions  {:>9}  (positives; {} ratings in all)", c.train_interactions, c.train_ratings);
    println!("  validation_heldout  {:>9}", c.validation_heldout);
    println!("  test_heldout        {:>9}", c.test_heldout);
    if c.dropped_evaluation_users > 0 {
        println!("  dropped evaluation users (nothing to hold out): {}", c.dropped_evaluation_users);
    }
    println!("wrote {} in {:.2?} (load + split {:.2?})", a.out.display(), started.elapsed(), prepared_in);
    Ok(())
}

fn cmd_summarize(a: SummarizeArgs) -> Result<()> {
    use tears::summarize::{
        ApiKey, BatchOptions, LlmClient, LlmConfig, LlmSummarizer, PromptTemplate, Summarizer, SummaryCache,
        TemplateSummarizer, UserSet, user_histories,
    };
    let set: UserSet = a.set.parse()?;
    if a.concurrency == 0 {
        anyhow::bail!("--concurrency must be at least 1");
    }
    let split =
        tears::data::Split::load(&a.split).with_context(|| format!("loading the split {}", a.split.display()))?;
    let books = split.meta.dataset.contains("book");
    let mut template = match &a.prompt {
        Some(p) => PromptTemplate::load(p)?,
        None if books => PromptTemplate::books(),
        None => PromptTemplate::movies(),
    };
    template.max_items = a.max_items.max(1);
    let mut jobs = user_histories(&split, set);
    if let Some(n) = a.limit {
        jobs.truncate(n);
    }
    if a.dry_run {
        let mut chars: Vec<usize> =
            jobs.iter().map(|(_, h)| template.render(h).iter().map(|m| m.content.chars().count()).sum()).collect();
        chars.sort_unstable();
        let n = chars.len().max(1);
        let mean = chars.iter().sum::<usize>() as f64 / n as f64;
        let pct = |q: f64| chars.get(((chars.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0);
        println!(
            "{} users; prompt characters: mean {mean:.0}, median {}, p95 {}, max {}",
            jobs.len(),
            pct(0.5),
            pct(0.95),
            pct(1.0)
        );
        println!("approx. prompt tokens (characters / 4): mean {:.0}, max {}", mean / 4.0, pct(1.0) / 4);
        return Ok(());
    }
    let mut llm = None;
    let mut offline = None;
    if a.template {
        let mut t = TemplateSummarizer::from_split(&split);
        t.max_items = a.max_items.max(1);
        offline = Some(t);
    } else if let (Some(url), Some(model)) = (&a.llm_url, &a.model) {
        let mut config = LlmConfig::new(url, model);
        config.api_key = ApiKey::from_env(&a.api_key_env);
        if !a.timeout_s.is_finite() || a.timeout_s <= 0.0 || !a.backoff_s.is_finite() || a.backoff_s < 0.0 {
            anyhow::bail!("--timeout-s must be positive and --backoff-s not negative");
        }
        config.request_timeout = Duration::from_secs_f64(a.timeout_s);
        config.backoff_base = Duration::from_secs_f64(a.backoff_s);
        config.max_attempts = a.max_attempts.max(1);
        if config.api_key.is_none() {
            tracing::info!("${} is not set: sending no API key", a.api_key_env);
        }
        let mut s = LlmSummarizer::new(LlmClient::new(config)?, template);
        s.rules.reject_titles = a.reject_titles;
        llm = Some(s);
    }
    let summarizer: &dyn Summarizer = match (&llm, &offline) {
        (Some(s), _) => s,
        (None, Some(t)) => t,
        (None, None) => anyhow::bail!("choose a summarizer: --template, or --llm-url URL --model NAME"),
    };
    let mut cache = SummaryCache::open(&a.out)?;
    let options = BatchOptions { concurrency: a.concurrency, progress: !a.no_progress, max_failures: 0 };
    let report = tears::summarize::summarize_all(summarizer, &jobs, &mut cache, &options);
    println!(
        "{} users: {} summarized, {} already in {}, {} failed ({:.2?}, {:.1} users/s)",
        report.total,
        report.summarized,
        report.cached,
        a.out.display(),
        report.failed.len(),
        report.elapsed,
        report.summarized as f64 / report.elapsed.as_secs_f64().max(1e-9),
    );
    if let Some(s) = &llm {
        let u = s.client.usage();
        println!(
            "requests: {} answered, {} HTTP attempts; tokens: {} prompt, {} completion (as the server reported them)",
            u.completions, u.attempts, u.prompt_tokens, u.completion_tokens
        );
        if report.summarized > 0 {
            println!(
                "mean wall time per summarized user: {:.2?} at concurrency {}",
                report.elapsed / report.summarized as u32,
                a.concurrency
            );
        }
    }
    for (user, e) in report.failed.iter().take(10) {
        println!("  user {user}: {e}");
    }
    if let Some(e) = report.stopped {
        return Err(anyhow::Error::new(e).context("summarizing stopped"));
    }
    if !report.failed.is_empty() {
        anyhow::bail!("{} users failed; rerun the same command to retry them", report.failed.len());
    }
    Ok(())
}

fn load_split(dir: &std::path::Path) -> Result<tears::data::Split> {
    tears::data::Split::load(dir).with_context(|| format!("loading the split in {}", dir.display()))
}

fn cmd_train(a: TrainArgs) -> Result<()> {
    use tears::baselines::{Ease, EaseConfig, Fit, Popularity, Recommender, save_model};
    if let Ok(kind) = a.model.parse::<tears::vae::BackboneKind>() {
        return cmd_train_backbone(kind, &a);
    }
    let split = load_split(&a.split)?;
    let bar = spinner(format!("fitting {} on {} ({} items)", a.model, split.meta.dataset, split.n_items()));
    let started = Instant::now();
    let fitted: Result<Box<dyn Recommender>> = match a.model.as_str() {
        "ease" => {
            if !(a.memory_limit_gib.is_finite() && a.memory_limit_gib > 0.0) {
                anyhow::bail!("--memory-limit-gib must be positive, got {}", a.memory_limit_gib);
            }
            let config = EaseConfig {
                lambdas: a.lambda.map(|l| vec![l]).unwrap_or_else(|| a.lambdas.clone()),
                memory_limit_bytes: (a.memory_limit_gib * (1u64 << 30) as f64) as u64,
                ..EaseConfig::default()
            };
            Ease::fit(&split, &config, a.seed).map(|m| {
                for t in m.trials() {
                    match t.validation_ndcg {
                        Some(ndcg) => bar.println(format!(
                            "  lambda {:>8}  validation ndcg@{} {:.4}  ({:.2}s)",
                            t.lambda, config.select_k, ndcg, t.seconds
                        )),
                        None => bar.println(format!("  lambda {:>8}  ({:.2}s)", t.lambda, t.seconds)),
                    }
                }
                Box::new(m) as Box<dyn Recommender>
            })
        }
        "pop" | "popularity" => Popularity::fit(&split, &(), a.seed).map(|m| Box::new(m) as Box<dyn Recommender>),
        other => anyhow::bail!("unknown model {other:?} (expected ease, pop, multdae, multvae, recvae or macridvae)"),
    }
    .map_err(anyhow::Error::from);
    bar.finish_and_clear();
    let model = fitted.with_context(|| format!("fitting {} on {}", a.model, a.split.display()))?;
    let fit_seconds = started.elapsed().as_secs_f64();
    println!("fitted {} on {} in {:.2}s", model.kind(), split.meta.dataset, fit_seconds);
    println!("  hyper-parameters: {}", model.hyper_parameters());
    let manifest = save_model(model.as_ref(), &split, a.seed, Some(fit_seconds), &a.out)
        .with_context(|| format!("saving the model to {}", a.out.display()))?;
    println!("wrote {} (vocabulary {}, {} items)", a.out.display(), manifest.vocabulary_hash, manifest.n_items);
    Ok(())
}

/// Trains a VAE backbone on the chosen backend.
struct BackboneTrainJob {
    model: tears::vae::ModelConfig,
    split: tears::data::Split,
    train: tears::vae::TrainConfig,
    run: tears::vae::RunOptions,
}

impl tears::backend::BackendJob for BackboneTrainJob {
    type Output = tears::vae::Result<(Box<dyn tears::baselines::Recommender>, tears::vae::TrainReport)>;
    fn run<B: burn::tensor::backend::AutodiffBackend>(self, device: B::Device) -> Self::Output {
        tears::vae::fit_config::<B>(&self.model, &self.split, &self.train, &self.run, &device)
    }
}

fn cmd_train_backbone(kind: tears::vae::BackboneKind, a: &TrainArgs) -> Result<()> {
    let backend: tears::backend::BackendKind = a.backend.parse()?;
    let split = load_split(&a.split)?;
    let defaults = kind.default_train();
    let train = tears::vae::TrainConfig {
        epochs: a.epochs.unwrap_or(defaults.epochs),
        batch_size: a.batch_size,
        lr: a.lr.unwrap_or(defaults.lr),
        patience: (a.patience > 0).then_some(a.patience),
        select_k: a.select_k,
        seed: a.seed,
        ..defaults
    };
    let model = kind.default_model();
    println!(
        "training {kind} on {} ({} training users, {} items) with {}: {} epochs, batch {}, lr {}",
        split.meta.dataset,
        split.train.len(),
        split.n_items(),
        backend.describe(),
        train.epochs,
        train.batch_size,
        train.lr
    );
    let run = tears::vae::RunOptions { out_dir: Some(a.out.clone()), resume: !a.restart, progress: !a.no_progress };
    let started = Instant::now();
    let job = BackboneTrainJob { model, split, train, run };
    let (_, report) =
        tears::backend::run(backend, job)?.with_context(|| format!("training {kind} on {}", a.split.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    if report.resumed_after > 0 {
        println!("resumed after epoch {}", report.resumed_after);
    }
    let new_epochs = report.history.iter().filter(|e| e.epoch > report.resumed_after).collect::<Vec<_>>();
    let train_s: f64 = new_epochs.iter().map(|e| e.train_seconds).sum();
    let eval_s: f64 = new_epochs.iter().map(|e| e.eval_seconds).sum();
    println!(
        "{} epochs{} in {seconds:.1}s ({:.3}s training + {:.3}s validation per epoch)",
        report.history.len(),
        if report.summary.stopped_early { " (stopped early)" } else { "" },
        train_s / new_epochs.len().max(1) as f64,
        eval_s / new_epochs.len().max(1) as f64
    );
    match report.summary.best_validation_ndcg {
        Some(v) => println!("best epoch {}: validation ndcg@{} {v:.4}", report.summary.best_epoch, a.select_k),
        None => println!("no validation users: kept the last epoch"),
    }
    println!("wrote {} (weights.mpk, manifest.json, train_log.json, checkpoint/)", a.out.display());
    Ok(())
}

/// Loads a VAE backbone's model directory on the chosen backend.
struct BackboneLoadJob<'a> {
    dir: &'a std::path::Path,
    split: &'a tears::data::Split,
}

impl tears::backend::BackendJob for BackboneLoadJob<'_> {
    type Output = tears::vae::Result<Box<dyn tears::baselines::Recommender>>;
    fn run<B: burn::tensor::backend::AutodiffBackend>(self, device: B::Device) -> Self::Output {
        tears::vae::load::<B::InnerBackend>(self.dir, self.split, &device)
    }
}

/// Loads any saved model: a baseline, or a backbone on `backend`.
fn load_any_model(
    dir: &std::path::Path,
    split: &tears::data::Split,
    backend: &str,
) -> Result<Box<dyn tears::baselines::Recommender>> {
    let manifest = tears::baselines::Manifest::read(dir)?;
    if manifest.kind.parse::<tears::vae::BackboneKind>().is_ok() {
        let backend: tears::backend::BackendKind = backend.parse()?;
        return Ok(tears::backend::run(backend, BackboneLoadJob { dir, split })??);
    }
    Ok(tears::baselines::load_model(dir, split)?)
}

fn cmd_evaluate(a: EvaluateArgs) -> Result<()> {
    use tears::baselines::{EvalOptions, EvalSummary, evaluate_split};
    let set: tears::data::EvalSet = a.set.parse()?;
    let split = load_split(&a.split)?;
    let model = load_any_model(&a.model, &split, &a.backend)
        .with_context(|| format!("loading the model in {}", a.model.display()))?;
    let options = EvalOptions { ks: a.k.clone(), batch_size: a.batch_size };
    let started = Instant::now();
    let report = evaluate_split(model.as_ref(), &split, set, &options)
        .with_context(|| format!("evaluating {} on {} {}", model.kind(), split.meta.dataset, set.name()))?;
    let summary = EvalSummary::new(model.kind(), &split.meta.dataset, set, &report);
    println!(
        "{} on {} ({}): {} users counted, {} excluded, in {:.2?}",
        summary.model,
        summary.dataset,
        summary.set,
        summary.users,
        summary.excluded,
        started.elapsed()
    );
    println!("{:>6}  {:>17}  {:>17}  {:>17}", "k", "recall", "plain_recall", "ndcg");
    for r in &report.results {
        println!(
            "{:>6}  {:.4} ± {:.4}  {:.4} ± {:.4}  {:.4} ± {:.4}",
            r.k,
            r.recall.mean,
            r.recall.std_err,
            r.plain_recall.mean,
            r.plain_recall.std_err,
            r.ndcg.mean,
            r.ndcg.std_err
        );
    }
    if let Some(path) = &a.json {
        let json = serde_json::to_vec_pretty(&summary)?;
        tears::data::io::write_atomic(path, |w| {
            w.write_all(&json)?;
            w.write_all(b"\n")
        })
        .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Encodes texts on the backend chosen at run time.
struct EmbedJob<'a> {
    args: &'a EmbedArgs,
    texts: Vec<&'a str>,
    bar: indicatif::ProgressBar,
}

impl tears::backend::BackendJob for EmbedJob<'_> {
    type Output = Result<Vec<Vec<f32>>>;
    fn run<B: burn::tensor::backend::AutodiffBackend>(self, device: B::Device) -> Self::Output {
        use tears::text::{EmbeddingCache, EncoderOptions, SentenceEncoder};
        let a = self.args;
        let options = EncoderOptions {
            batch_size: a.batch_size,
            max_tokens: a.max_tokens,
            normalize: !a.no_normalize,
            ..EncoderOptions::default()
        };
        // Inference only: the inner (non-autodiff) backend.
        let encoder = SentenceEncoder::<B::InnerBackend>::load(&a.model_dir, &options, &device)
            .with_context(|| format!("loading the model in {}", a.model_dir.display()))?;
        let bar = self.bar;
        let mut progress = |n: usize| bar.inc(n as u64);
        let vectors = match &a.cache {
            Some(dir) => {
                let cache = EmbeddingCache::open(dir)?;
                encoder.encode_cached(&self.texts, &cache, &mut progress)?
            }
            None => encoder.encode_vecs(&self.texts, &mut progress)?,
        };
        bar.finish_and_clear();
        Ok(vectors)
    }
}

fn cmd_embed(a: EmbedArgs) -> Result<()> {
    use std::io::IsTerminal;
    use tears::text::export;
    let backend: tears::backend::BackendKind = a.backend.parse()?;
    let ext = a.out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    if !matches!(ext.as_deref(), Some("npy" | "safetensors")) {
        anyhow::bail!("--out {}: the extension must be .npy or .safetensors", a.out.display());
    }
    let stored = tears::data::StoredSummaries::load(&a.summaries)
        .with_context(|| format!("reading the summaries {}", a.summaries.display()))?;
    // Rows follow the input file's order (first appearance of each user).
    let (users, texts): (Vec<u64>, Vec<&str>) = stored.in_file_order().unzip();
    let bar = if a.no_progress || !std::io::stderr().is_terminal() {
        indicatif::ProgressBar::hidden()
    } else {
        let bar = indicatif::ProgressBar::new(texts.len() as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} summaries [{elapsed_precise}, {per_sec}, eta {eta}]",
        ) {
            bar.set_style(style);
        }
        bar
    };
    let started = Instant::now();
    let vectors = tears::backend::run(backend, EmbedJob { args: &a, texts, bar })??;
    let seconds = started.elapsed().as_secs_f64();
    let dim = vectors.first().map_or(0, Vec::len);
    match ext.as_deref() {
        Some("npy") => {
            export::write_npy(&a.out, &vectors)?;
            let sidecar = export::users_sidecar(&a.out);
            export::write_ids(&sidecar, &users)?;
            println!("wrote {} ({} x {dim} float32) and {}", a.out.display(), vectors.len(), sidecar.display());
        }
        _ => {
            export::write_embeddings_safetensors(&a.out, &vectors, &users)?;
            println!("wrote {} (embeddings {} x {dim}, users)", a.out.display(), vectors.len());
        }
    }
    println!(
        "{} summaries in {seconds:.2} s ({:.1} summaries/s) on {}",
        vectors.len(),
        vectors.len() as f64 / seconds.max(1e-9),
        backend.name()
    );
    Ok(())
}

/// A tiny matrix product: proves a backend can allocate and run kernels.
struct Probe;

impl tears::backend::BackendJob for Probe {
    type Output = f32;
    fn run<B: burn::tensor::backend::AutodiffBackend>(self, device: B::Device) -> f32 {
        use burn::tensor::{ElementConversion, Tensor};
        let a = Tensor::<B, 2>::ones([8, 8], &device);
        a.clone().matmul(a).sum().into_scalar().elem::<f32>()
    }
}

fn cmd_backends() -> Result<()> {
    use tears::backend::{BackendKind, run};
    let mut failures = 0;
    for kind in BackendKind::ALL {
        if !kind.is_compiled() {
            println!("{:<8} not compiled (rebuild with --features {})", kind.name(), kind.feature());
            continue;
        }
        let started = Instant::now();
        match run(kind, Probe) {
            Ok(512.0) => println!("{:<8} ok  {} ({:.1?})", kind.name(), kind.describe(), started.elapsed()),
            Ok(v) => {
                failures += 1;
                println!("{:<8} WRONG: an 8x8 ones product summed to {v}, expected 512", kind.name());
            }
            Err(e) => {
                failures += 1;
                println!("{:<8} unavailable: {e}", kind.name());
            }
        }
    }
    if failures > 0 {
        anyhow::bail!("{failures} compiled backend(s) cannot run here");
    }
    Ok(())
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Prepare(a) => cmd_prepare(*a),
        Command::Backends => cmd_backends(),
        Command::Summarize(a) => cmd_summarize(*a),
        Command::Train(a) => cmd_train(*a),
        Command::Evaluate(a) => cmd_evaluate(a),
        Command::Embed(a) => cmd_embed(*a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
