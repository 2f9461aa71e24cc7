//! What the examples share: the quick start's trained models, trained once and reused.
//!
//! [`setup`] prepares the benchmark (`ml1m-gpt4` with the GPT-4 summaries and MiniLM when the
//! shared data and model are present, else `synthetic` with template summaries and the hashing
//! encoder), then trains a backbone and TEARS on it, or reuses the model directories from an
//! earlier run. Everything lives in one cache folder (`$TEARS_CACHE_DIR`, else
//! `target/tears-quickstart` in the repository), so that the second run of any example only loads.

#![allow(dead_code)] // each example uses part of this module

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use burn::tensor::backend::AutodiffBackend;
use indicatif::{ProgressBar, ProgressStyle};
use tears::backend::{BackendJob, BackendKind};
use tears::data::{DatasetName, PrepareOptions, Split, default_data_dir, named::gpt4_summaries_path, prepare};
use tears::model::recommend::{ItemTable, Recommendation};
use tears::model::{
    AnyTextEncoder, BackboneChoice, LoadOptions, ScrutableRecommender, SummariesFile, TearsConfig, TearsTrainConfig,
    TextEncoderChoice, TrainInputs,
};
use tears::recommender::{Manifest, MissingProfile, Profile, Recommender, save_model};
use tears::summarize::{BatchOptions, SummaryCache, TemplateSummarizer, UserSet, user_histories};
use tears::vae::{BackboneKind, RunOptions};

/// What [`setup`] is asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// The benchmark (`None`: `ml1m-gpt4` when its data and MiniLM are present, else `synthetic`).
    pub dataset: Option<DatasetName>,
    /// The backbone TEARS is fused with.
    pub backbone: BackboneKind,
    /// The split's and the models' seed.
    pub seed: u64,
    /// Retrain even when the cache folder holds finished models.
    pub fresh: bool,
    /// The backend that trains and scores.
    pub backend: BackendKind,
}

impl Options {
    /// Reads `--dataset NAME`, `--backbone NAME`, `--seed N`, `--backend NAME` and `--fresh` from
    /// the command line; `extra` names further flags that take a value, which the caller reads.
    pub fn from_args(extra: &[&str]) -> Result<(Self, Args)> {
        let args = Args::parse(extra)?;
        let options = Options {
            dataset: args.value("--dataset").map(str::parse).transpose()?,
            backbone: match args.value("--backbone") {
                None => BackboneKind::MultVae,
                Some(b) => b.parse().map_err(|e| anyhow::anyhow!("--backbone: {e}"))?,
            },
            seed: args.value("--seed").map(str::parse).transpose().context("--seed takes a number")?.unwrap_or(0),
            fresh: args.flag("--fresh"),
            backend: args.value("--backend").map(str::parse).transpose()?.unwrap_or_default(),
        };
        Ok((options, args))
    }
}

/// The command line: `--flag value` pairs, bare flags and positional words.
#[derive(Debug, Clone, Default)]
pub struct Args {
    values: Vec<(String, String)>,
    flags: Vec<String>,
    /// Words that are not flags, in order.
    pub positional: Vec<String>,
}

const VALUE_FLAGS: [&str; 4] = ["--dataset", "--backbone", "--seed", "--backend"];

impl Args {
    fn parse(extra: &[&str]) -> Result<Self> {
        let mut out = Args::default();
        let mut it = std::env::args().skip(1);
        while let Some(a) = it.next() {
            if VALUE_FLAGS.contains(&a.as_str()) || extra.contains(&a.as_str()) {
                let v = it.next().with_context(|| format!("{a} takes a value"))?;
                out.values.push((a, v));
            } else if a.starts_with("--") {
                out.flags.push(a);
            } else {
                out.positional.push(a);
            }
        }
        Ok(out)
    }

    /// The value of `--flag`, when given.
    pub fn value(&self, flag: &str) -> Option<&str> {
        self.values.iter().rev().find(|(f, _)| f == flag).map(|(_, v)| v.as_str())
    }

    /// Whether the bare `--flag` was given.
    pub fn flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
}

/// One step of [`setup`] and what it cost.
#[derive(Debug, Clone)]
pub struct Step {
    /// What was done.
    pub what: String,
    /// Wall time.
    pub took: Duration,
    /// Whether it was loaded from the cache folder rather than computed.
    pub reused: bool,
}

/// The quick start's data and trained models.
pub struct Setup {
    /// The benchmark.
    pub dataset: DatasetName,
    /// Its split.
    pub split: Split,
    /// Every user's summary (the GPT-4 ones, or template summaries for `synthetic`).
    pub summaries: SummariesFile,
    /// The text encoder TEARS reads summaries with.
    pub encoder: TextEncoderChoice,
    /// The cache folder of this dataset and seed.
    pub dir: PathBuf,
    /// The backbone's kind.
    pub backbone_kind: BackboneKind,
    /// The backbone.
    pub backbone: Box<dyn Recommender>,
    /// TEARS on the backbone, at its alpha* (chosen on validation users).
    pub tears: Box<dyn ScrutableRecommender>,
    /// What each step cost.
    pub steps: Vec<Step>,
}

impl Setup {
    /// The TEARS model directory.
    pub fn tears_dir(&self) -> PathBuf {
        self.dir.join(format!("tears-{}", self.backbone_kind.name()))
    }

    /// The embedding cache folder (BERT vectors of the summaries).
    pub fn embedding_cache(&self) -> PathBuf {
        self.dir.join("embedding-cache")
    }

    /// The item table of the split.
    pub fn items(&self) -> ItemTable {
        ItemTable::new(self.split.items.clone())
    }

    /// Test user `k`'s summary.
    pub fn test_summary(&self, k: usize) -> Option<&str> {
        self.summaries.profiles.get(self.split.test.users()[k]).and_then(Profile::as_text)
    }

    /// Test user `k`'s fold-in history as (source item id, rating), oldest first.
    pub fn test_history(&self, k: usize) -> Vec<(u64, f32)> {
        self.split.test.foldin.row(k).iter().map(|r| (self.split.items[r.item as usize].id, r.rating)).collect()
    }
}

/// The cache folder root: `$TEARS_CACHE_DIR`, else `target/tears-quickstart` in the repository.
pub fn cache_root() -> PathBuf {
    std::env::var_os("TEARS_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("tears-quickstart"))
}

/// The MiniLM folder: `$TEARS_ENCODER_DIR`, else `../shared/models/all-MiniLM-L6-v2`.
pub fn minilm_dir() -> PathBuf {
    std::env::var_os("TEARS_ENCODER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(tears::text::DEFAULT_MODEL_DIR))
}

/// A model directory is finished when its manifest is there (it is written last).
pub fn finished(dir: &Path) -> bool {
    Manifest::path(dir).is_file()
}

/// Prepares the data and trains (or reuses) the backbone and TEARS.
///
/// # Errors
/// Missing data, a failed training run, unreadable model directories.
pub fn setup(options: &Options) -> Result<Setup> {
    let data_dir = default_data_dir();
    let real = data_dir.join("ml-1m/movies.dat").is_file()
        && gpt4_summaries_path(&data_dir).is_ok()
        && minilm_dir().join("config.json").is_file();
    let dataset = match options.dataset {
        Some(d) => d,
        None if real => DatasetName::Ml1mGpt4,
        None => {
            println!(
                "(the ml1m-gpt4 data under {} or MiniLM in {} is missing: using the synthetic dataset, template summaries and the hashing encoder)",
                data_dir.display(),
                minilm_dir().display()
            );
            DatasetName::Synthetic
        }
    };
    let dir = cache_root().join(format!("{}-seed{}", dataset.as_str(), options.seed));
    if options.fresh && dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut steps = Vec::new();

    let started = Instant::now();
    let prepared =
        prepare(dataset, &PrepareOptions { data_dir: data_dir.clone(), seed: options.seed, ..Default::default() })
            .with_context(|| format!("preparing {}", dataset.as_str()))?;
    let split = prepared.split;
    steps.push(Step { what: format!("prepare {}", dataset.as_str()), took: started.elapsed(), reused: false });

    let started = Instant::now();
    let (summaries, encoder) = if dataset == DatasetName::Ml1mGpt4 {
        let path = gpt4_summaries_path(&data_dir)?;
        let file = SummariesFile::load(&path).with_context(|| format!("reading {}", path.display()))?;
        (file, TextEncoderChoice::parse(&minilm_dir().to_string_lossy()))
    } else {
        (template_summaries(&split, &dir.join("template-summaries.jsonl"))?, TextEncoderChoice::parse("hashing"))
    };
    steps.push(Step { what: "read the summaries".into(), took: started.elapsed(), reused: false });

    let job = TrainOrLoad {
        split: &split,
        summaries: &summaries,
        encoder: &encoder,
        dir: &dir,
        backbone: options.backbone,
        seed: options.seed,
    };
    let (backbone, tears, more) = tears::backend::run(options.backend, job)??;
    steps.extend(more);
    Ok(Setup { dataset, split, summaries, encoder, dir, backbone_kind: options.backbone, backbone, tears, steps })
}

/// Template summaries of every user of `split`, written once to `path` (a summary cache) and read
/// back as a summaries file.
pub fn template_summaries(split: &Split, path: &Path) -> Result<SummariesFile> {
    let summarizer = TemplateSummarizer::from_split(split);
    let jobs = user_histories(split, UserSet::All);
    let mut cache = SummaryCache::open(path)?;
    let report = tears::summarize::summarize_all(
        &summarizer,
        &jobs,
        &mut cache,
        &BatchOptions { concurrency: 1, progress: true, ..BatchOptions::default() },
    );
    if let Some(e) = report.stopped {
        return Err(anyhow::Error::new(e).context("writing template summaries"));
    }
    anyhow::ensure!(report.failed.is_empty(), "{} template summaries failed", report.failed.len());
    drop(cache);
    Ok(SummariesFile::load(path)?)
}

/// The move of `item`, now at `rank`, since `before`: an arrow and the number of places, `new`,
/// or `=`.
pub fn arrow(item: u64, rank: usize, before: &Recommendation) -> String {
    match before.items.iter().find(|i| i.item == item).map(|i| i.rank) {
        None => "new".to_string(),
        Some(was) if was > rank => format!("↑{}", was - rank),
        Some(was) if was < rank => format!("↓{}", rank - was),
        Some(_) => "=".to_string(),
    }
}

/// A progress bar for `n` steps of `what` (hidden when stderr is not a terminal).
pub fn progress(n: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(n as u64);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({per_sec}, {eta} left)") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

/// A baseline model directory: loaded when finished, else fitted and saved.
pub fn baseline(
    dir: &std::path::Path,
    split: &Split,
    seed: u64,
    fit: impl FnOnce(&Split, u64) -> Result<Box<dyn Recommender>>,
) -> Result<(Box<dyn Recommender>, Step)> {
    let started = Instant::now();
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if finished(dir) {
        let model = tears::baselines::load_model(dir, split).with_context(|| format!("loading {}", dir.display()))?;
        return Ok((model, Step { what: name, took: started.elapsed(), reused: true }));
    }
    let model = fit(split, seed).with_context(|| format!("fitting {name}"))?;
    save_model(model.as_ref(), split, seed, Some(started.elapsed().as_secs_f64()), dir)?;
    Ok((model, Step { what: name, took: started.elapsed(), reused: false }))
}

struct TrainOrLoad<'a> {
    split: &'a Split,
    summaries: &'a SummariesFile,
    encoder: &'a TextEncoderChoice,
    dir: &'a Path,
    backbone: BackboneKind,
    seed: u64,
}

type Trained = (Box<dyn Recommender>, Box<dyn ScrutableRecommender>, Vec<Step>);

impl BackendJob for TrainOrLoad<'_> {
    type Output = Result<Trained>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let mut steps = Vec::new();
        let split = self.split;
        let kind = self.backbone;
        let backbone_dir = self.dir.join(kind.name());
        let started = Instant::now();
        let reused = finished(&backbone_dir);
        let backbone = if reused {
            tears::vae::load::<B::InnerBackend>(&backbone_dir, split, &device)
                .with_context(|| format!("loading {}", backbone_dir.display()))?
        } else {
            println!(
                "training {} on {} (patience 10; checkpoints in {})",
                kind.name(),
                split.meta.dataset,
                backbone_dir.display()
            );
            let train = tears::vae::TrainConfig { patience: Some(10), seed: self.seed, ..kind.default_train() };
            let run = RunOptions {
                out_dir: Some(backbone_dir.clone()),
                resume: true,
                progress: true,
                ..RunOptions::default()
            };
            tears::vae::fit_config::<B>(&kind.model_for(&split.meta.dataset), split, &train, &run, &device)
                .with_context(|| format!("training {}", kind.name()))?
                .0
        };
        steps.push(Step { what: format!("{} backbone", kind.name()), took: started.elapsed(), reused });

        let cache = self.dir.join("embedding-cache");
        let tears_dir = self.dir.join(format!("tears-{}", kind.name()));
        if !finished(&tears_dir)
            && let TextEncoderChoice::Bert { .. } = self.encoder
        {
            let started = Instant::now();
            let n = embed_summaries::<B::InnerBackend>(split, self.summaries, self.encoder, &cache, &device)?;
            steps.push(Step {
                what: format!("embed {n} summaries with MiniLM"),
                took: started.elapsed(),
                reused: false,
            });
        }

        let started = Instant::now();
        let reused = finished(&tears_dir);
        let tears = if reused {
            let options = LoadOptions { encoder_dir: None, embedding_cache: Some(cache) };
            tears::model::load::<B::InnerBackend>(&tears_dir, split, &options, &device)
                .with_context(|| format!("loading {}", tears_dir.display()))?
        } else {
            println!(
                "training TEARS-{} (alpha* chosen on validation users; checkpoints in {})",
                kind.name(),
                tears_dir.display()
            );
            let config = TearsConfig { backbone: BackboneChoice::of(kind), ..TearsConfig::default() };
            let train = TearsTrainConfig { patience: Some(10), seed: self.seed, ..TearsTrainConfig::default() };
            let inputs = TrainInputs {
                split,
                backbone_dir: Some(&backbone_dir),
                encoder: Some(self.encoder.clone()),
                summaries: Some(self.summaries),
                missing: MissingProfile::Error,
                embedding_cache: Some(cache),
            };
            let run =
                RunOptions { out_dir: Some(tears_dir.clone()), resume: true, progress: true, ..RunOptions::default() };
            let (model, report) = tears::model::fit::<B>(config, &train, &inputs, &run, &device)
                .with_context(|| format!("training TEARS-{}", kind.name()))?;
            println!(
                "TEARS-{}: best epoch {}, alpha* = {} (validation NDCG@20)",
                kind.name(),
                report.train.summary.best_epoch,
                report.alpha_star
            );
            model
        };
        steps.push(Step { what: format!("TEARS-{}", kind.name()), took: started.elapsed(), reused });
        Ok((backbone, tears, steps))
    }
}

/// Embeds every summary the split's users need into `cache` (a progress bar; texts already in
/// the cache cost nothing). Returns how many summaries there are.
pub fn embed_summaries<B: burn::tensor::backend::Backend>(
    split: &Split,
    summaries: &SummariesFile,
    choice: &TextEncoderChoice,
    cache: &Path,
    device: &B::Device,
) -> Result<usize> {
    let users = split
        .train
        .iter()
        .map(|(u, _)| u)
        .chain(split.validation.users().iter().copied())
        .chain(split.test.users().iter().copied());
    let texts: Vec<&str> = users.filter_map(|u| summaries.profiles.get(u).and_then(Profile::as_text)).collect();
    let AnyTextEncoder::Bert(encoder) = AnyTextEncoder::<B>::open(choice, device)? else {
        return Ok(0);
    };
    let store = tears::text::EmbeddingCache::open(cache)?;
    let bar = progress(texts.len(), "embedding summaries");
    encoder.encode_cached(&texts, &store, &mut |n| bar.inc(n as u64))?;
    bar.finish_and_clear();
    Ok(texts.len())
}

/// The examples run on the allocator of the `tears` binary (docs/benchmarks.md, "The allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
