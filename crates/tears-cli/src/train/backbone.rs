//! `tears train multdae|multvae|recvae|macridvae`: a VAE backbone, trained on the chosen backend,
//! checkpointed every epoch and resumed.

use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use tears::backend::BackendJob;
use tears::baselines::Recommender;
use tears::data::Split;
use tears::vae::{BackboneKind, MacridConfig, ModelConfig, RunOptions, TrainConfig, TrainReport};

use super::{ScheduleArgs, TrainTarget, WorkerArgs};
use crate::common::{BackendFlag, load_split};

/// The flags every backbone takes.
#[derive(Debug, Args)]
pub struct BackboneArgs {
    #[command(flatten)]
    pub(super) target: TrainTarget,
    #[command(flatten)]
    pub(super) schedule: ScheduleArgs,
    #[command(flatten)]
    pub(super) workers: WorkerArgs,
    #[command(flatten)]
    backend: BackendFlag,
    /// Ignore a checkpoint in --out and start over.
    #[arg(long)]
    restart: bool,
}

/// `tears train macridvae`: the common flags and MacridVAE's hyper-parameters. A flag left out
/// takes the benchmark's setting ([`BackboneKind::model_for`]: the one chosen on `ml1m-gpt4`'s
/// validation users there, Ma et al.'s reference values elsewhere).
#[derive(Debug, Args)]
pub struct MacridArgs {
    #[command(flatten)]
    common: BackboneArgs,
    #[command(flatten)]
    macrid: MacridFlags,
}

impl MacridArgs {
    /// The common flags and the MacridVAE ones.
    pub fn split(self) -> (BackboneArgs, MacridFlags) {
        (self.common, self.macrid)
    }
}

/// MacridVAE's hyper-parameters on the command line.
#[derive(Debug, Args)]
pub struct MacridFlags {
    /// Number of concepts K.
    #[arg(long)]
    concepts: Option<usize>,
    /// Item-embedding and per-concept latent size d.
    #[arg(long)]
    dim: Option<usize>,
    /// Cosine temperature tau (at least 0.02).
    #[arg(long)]
    tau: Option<f32>,
    /// Largest KL weight beta.
    #[arg(long)]
    beta_cap: Option<f32>,
}

impl MacridFlags {
    /// `model` with the flags that were given.
    pub fn apply(&self, model: ModelConfig) -> ModelConfig {
        match model {
            ModelConfig::MacridVae(c) => ModelConfig::MacridVae(MacridConfig {
                concepts: self.concepts.unwrap_or(c.concepts),
                dim: self.dim.unwrap_or(c.dim),
                tau: self.tau.unwrap_or(c.tau),
                beta_cap: self.beta_cap.unwrap_or(c.beta_cap),
                ..c
            }),
            other => other,
        }
    }
}

/// Trains a VAE backbone on the chosen backend.
struct BackboneTrainJob {
    model: ModelConfig,
    split: Split,
    train: TrainConfig,
    run: RunOptions,
}

impl BackendJob for BackboneTrainJob {
    type Output = tears::vae::Result<(Box<dyn Recommender>, TrainReport)>;
    fn run<B: burn::tensor::backend::AutodiffBackend>(self, device: B::Device) -> Self::Output {
        tears::vae::fit_config::<B>(&self.model, &self.split, &self.train, &self.run, &device)
    }
}

pub fn run(kind: BackboneKind, a: BackboneArgs, tweak: impl FnOnce(ModelConfig) -> ModelConfig) -> Result<()> {
    let backend = a.backend.kind_announced();
    let split = load_split(&a.target.split)?;
    let train = a.schedule.apply(kind.default_train(), a.target.seed);
    let model = tweak(kind.model_for(&split.meta.dataset));
    model.validate().context("the model's hyper-parameters")?;
    let select_k = train.select_k;
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
    println!("hyper-parameters: {}", serde_json::to_string(&model).unwrap_or_default());
    let run = a.target.run_options(a.restart, &a.workers)?;
    let workers = run.workers.clone();
    let started = Instant::now();
    let job = BackboneTrainJob { model, split, train, run };
    let (_, report) = tears::backend::run(backend, job)?
        .with_context(|| format!("training {kind} on {}", a.target.split.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    super::print_epochs(&report, seconds, select_k, "", "");
    if super::report_secondary_worker(&workers, &a.target.out) {
        return Ok(());
    }
    println!("wrote {} (weights.mpk, manifest.json, train_log.json, checkpoint/)", a.target.out.display());
    Ok(())
}
