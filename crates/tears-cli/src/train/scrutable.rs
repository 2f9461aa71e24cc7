//! `tears train tears|gers`: a scrutable model — a summary text (TEARS) or a genre vector (GERS)
//! alone (`--backbone none`, the Base model) or fused with a trained backbone — trained on the
//! chosen backend, checkpointed every epoch and resumed; alpha* is chosen on validation users.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use tears::backend::BackendJob;
use tears::data::Split;
use tears::model::{
    Alignment, BackboneChoice, EncoderMode, Head, ProfileSource, SummariesFile, TearsConfig, TearsReport,
    TearsTrainConfig, TextEncoderChoice, TrainAlpha, TrainInputs,
};
use tears::recommender::MissingProfile;
use tears::vae::RunOptions;

use super::{TrainTarget, WorkerArgs};
use crate::common::{BackendFlag, load_split};

/// `--backbone`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackboneArg {
    None,
    Multdae,
    Multvae,
    Recvae,
    Macridvae,
}

impl From<BackboneArg> for BackboneChoice {
    fn from(b: BackboneArg) -> Self {
        match b {
            BackboneArg::None => BackboneChoice::None,
            BackboneArg::Multdae => BackboneChoice::MultDae,
            BackboneArg::Multvae => BackboneChoice::MultVae,
            BackboneArg::Recvae => BackboneChoice::RecVae,
            BackboneArg::Macridvae => BackboneChoice::MacridVae,
        }
    }
}

/// `--ot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OtArg {
    GaussianW2,
    Sinkhorn,
    None,
}

/// `--head`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HeadArg {
    Linear,
    Mlp,
}

/// `--missing-summary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum MissingArg {
    #[default]
    Error,
    Empty,
    Skip,
}

impl From<MissingArg> for MissingProfile {
    fn from(m: MissingArg) -> Self {
        match m {
            MissingArg::Error => MissingProfile::Error,
            MissingArg::Empty => MissingProfile::Empty,
            MissingArg::Skip => MissingProfile::Skip,
        }
    }
}

fn parse_train_alpha(s: &str) -> Result<TrainAlpha, String> {
    s.parse::<TrainAlpha>().map_err(|e| e.to_string())
}

fn parse_encoder_mode(s: &str) -> Result<EncoderMode, String> {
    s.parse::<EncoderMode>().map_err(|e| e.to_string())
}

/// The flags of `tears train tears` and `tears train gers`.
#[derive(Debug, Args)]
pub struct ScrutableArgs {
    #[command(flatten)]
    pub(super) target: TrainTarget,
    #[command(flatten)]
    workers: WorkerArgs,
    /// The backbone fused with (none: the Base model, profile only).
    #[arg(long, value_enum)]
    backbone: BackboneArg,
    /// The backbone's model directory (`tears train <backbone> --out DIR`).
    #[arg(long, required_if_eq_any = [("backbone", "multdae"), ("backbone", "multvae"), ("backbone", "recvae"), ("backbone", "macridvae")])]
    backbone_model: Option<PathBuf>,
    /// TEARS: the summaries (the JSONL of `tears summarize`, or a JSON object of user ids to texts).
    #[arg(long)]
    summaries: Option<PathBuf>,
    /// TEARS: a BERT-family model folder, or `hashing` (the weight-free bag-of-words encoder).
    #[arg(long, default_value = tears::text::DEFAULT_MODEL_DIR)]
    encoder: String,
    /// TEARS: cache folder of sentence vectors (default: SPLIT/embedding-cache); `none` turns it off.
    #[arg(long)]
    embedding_cache: Option<PathBuf>,
    /// TEARS with a BERT encoder: `frozen` (vectors computed once), `top-n:N` (the top N layers
    /// train, over cached lower-layer states) or `lora` / `lora:RANK` (adapters on every layer).
    #[arg(long, default_value = "frozen", value_parser = parse_encoder_mode)]
    encoder_mode: EncoderMode,
    /// The text encoder's learning rate when it trains.
    #[arg(long, default_value_t = TearsTrainConfig::default().encoder_lr)]
    encoder_lr: f64,
    /// TEARS: what to do with users that have no summary.
    #[arg(long, value_enum, default_value_t = MissingArg::default())]
    missing_summary: MissingArg,
    /// The alignment term between the profile and backbone posteriors.
    #[arg(long, value_enum, default_value_t = OtArg::GaussianW2)]
    ot: OtArg,
    /// sinkhorn: eps as a fraction of the median cost.
    #[arg(long, default_value_t = 0.05)]
    sinkhorn_eps: f64,
    /// λ1, the weight of the alignment term.
    #[arg(long, default_value_t = TearsConfig::default().lambda_ot)]
    lambda_ot: f32,
    /// λ2, the largest weight of KL(q_s || N(0, I)) (0 turns it off).
    #[arg(long, default_value_t = TearsConfig::default().lambda_kl)]
    lambda_kl: f32,
    /// Updates over which λ2 grows to its cap (0: constant).
    #[arg(long, default_value_t = TearsConfig::default().kl_anneal_steps)]
    kl_anneal_steps: u64,
    /// alpha while training: a number in [0, 1], or `uniform` (U(0, 1) per batch).
    #[arg(long, default_value = "0.5", value_parser = parse_train_alpha)]
    train_alpha: TrainAlpha,
    /// The profile head on a backbone.
    #[arg(long, value_enum, default_value_t = HeadArg::Linear)]
    head: HeadArg,
    /// --head mlp: hidden width.
    #[arg(long, default_value_t = 400)]
    mlp_hidden: usize,
    /// Epochs.
    #[arg(long, default_value_t = TearsTrainConfig::default().epochs)]
    epochs: usize,
    /// Stop after this many epochs without a better validation NDCG (0: never).
    #[arg(long, default_value_t = TearsTrainConfig::default().patience.unwrap_or(0))]
    patience: usize,
    /// Users per mini-batch.
    #[arg(long, default_value_t = TearsTrainConfig::default().batch_size)]
    batch_size: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = TearsTrainConfig::default().lr)]
    lr: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = TearsTrainConfig::default().weight_decay)]
    weight_decay: f32,
    /// The cut-off of the validation NDCG that selects the epoch.
    #[arg(long, default_value_t = TearsTrainConfig::default().select_k)]
    select_k: usize,
    #[command(flatten)]
    backend: BackendFlag,
    /// Ignore a checkpoint in --out and start over.
    #[arg(long)]
    restart: bool,
}

impl ScrutableArgs {
    fn config(&self, profile: ProfileSource) -> TearsConfig {
        TearsConfig {
            profile,
            backbone: self.backbone.into(),
            head: match self.head {
                HeadArg::Linear => Head::Linear,
                HeadArg::Mlp => Head::Mlp { hidden: self.mlp_hidden },
            },
            alignment: match self.ot {
                OtArg::GaussianW2 => Alignment::GaussianW2,
                OtArg::Sinkhorn => Alignment::Sinkhorn { eps_rel: self.sinkhorn_eps },
                OtArg::None => Alignment::None,
            },
            lambda_ot: self.lambda_ot,
            lambda_kl: self.lambda_kl,
            kl_anneal_steps: self.kl_anneal_steps,
            train_alpha: self.train_alpha,
            encoder_mode: self.encoder_mode,
            ..TearsConfig::default()
        }
    }

    fn schedule(&self) -> TearsTrainConfig {
        TearsTrainConfig {
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            encoder_lr: self.encoder_lr,
            weight_decay: self.weight_decay,
            patience: (self.patience > 0).then_some(self.patience),
            select_k: self.select_k,
            seed: self.target.seed,
            ..TearsTrainConfig::default()
        }
    }
}

struct Job<'a> {
    config: TearsConfig,
    train: TearsTrainConfig,
    inputs: TrainInputs<'a>,
    run: RunOptions,
}

impl BackendJob for Job<'_> {
    type Output = tears::model::Result<TearsReport>;
    fn run<B: burn::tensor::backend::AutodiffBackend>(self, device: B::Device) -> Self::Output {
        tears::model::fit::<B>(self.config, &self.train, &self.inputs, &self.run, &device).map(|(_, r)| r)
    }
}

/// The embedding cache folder: `--embedding-cache`, `none` for no cache, else SPLIT/embedding-cache.
pub fn embedding_cache(given: Option<&PathBuf>, split_dir: &std::path::Path) -> Option<PathBuf> {
    match given {
        Some(p) if p.as_os_str() == "none" => None,
        Some(p) => Some(p.clone()),
        None => Some(split_dir.join("embedding-cache")),
    }
}

pub fn run(profile: ProfileSource, a: ScrutableArgs) -> Result<()> {
    let split: Split = load_split(&a.target.split)?;
    let config = a.config(profile);
    let train = a.schedule();
    let summaries = match profile {
        ProfileSource::Genres => None,
        ProfileSource::Text => {
            let path = a.summaries.as_ref().context("TEARS needs --summaries FILE")?;
            Some(SummariesFile::load(path).with_context(|| format!("reading the summaries {}", path.display()))?)
        }
    };
    let encoder = (profile == ProfileSource::Text).then(|| TextEncoderChoice::parse(&a.encoder));
    let inputs = TrainInputs {
        split: &split,
        backbone_dir: a.backbone_model.as_deref(),
        encoder,
        summaries: summaries.as_ref(),
        missing: a.missing_summary.into(),
        embedding_cache: embedding_cache(a.embedding_cache.as_ref(), &a.target.split),
    };
    let name = if profile == ProfileSource::Text { "tears" } else { "gers" };
    let backend = a.backend.kind_announced();
    println!(
        "training {name} (backbone {}, alignment {}, encoder {}) on {} ({} training users, {} items) with {}: {} epochs, batch {}, lr {}",
        config.backbone.name(),
        config.alignment.name(),
        if profile == ProfileSource::Text { config.encoder_mode.name() } else { "none".into() },
        split.meta.dataset,
        split.train.len(),
        split.n_items(),
        backend.describe(),
        train.epochs,
        train.batch_size,
        train.lr
    );
    let tuned = config.encoder_mode.trains();
    let run = a.target.run_options(a.restart, &a.workers)?;
    let workers = run.workers.clone();
    let started = Instant::now();
    let report = tears::backend::run(backend, Job { config, train: train.clone(), inputs, run })?
        .with_context(|| format!("training {name} on {}", a.target.split.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    let prefix = format!("{} training users (profiles ready in {:.1}s); ", report.train_users, report.encode_seconds);
    let at = format!(" at alpha {}", train.select_alpha);
    super::print_epochs(&report.train, seconds, train.select_k, &prefix, &at);
    if !report.sweep.is_empty() {
        let row: Vec<String> = report.sweep.iter().map(|p| format!("{:.1}:{:.4}", p.alpha, p.ndcg20)).collect();
        println!("validation ndcg@20 by alpha: {}", row.join("  "));
        println!("alpha* = {} (validation ndcg@20)", report.alpha_star);
    }
    if super::report_secondary_worker(&workers, &a.target.out) {
        return Ok(());
    }
    let encoder_file = if tuned { format!(", {}", tears::model::ENCODER_FILE) } else { String::new() };
    println!(
        "wrote {} (weights.mpk{encoder_file}, manifest.json, train_log.json, checkpoint/)",
        a.target.out.display()
    );
    Ok(())
}
