//! `tears train multdae|multvae|recvae|macridvae`: a VAE backbone, trained on the chosen backend,
//! checkpointed every epoch and resumed.

use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use tears::backend::BackendJob;
use tears::baselines::Recommender;
use tears::data::Split;
use tears::vae::{BackboneKind, ModelConfig, RunOptions, TrainConfig, TrainReport};

use super::{ScheduleArgs, TrainTarget};
use crate::common::{BackendFlag, load_split};

/// The flags every backbone takes.
#[derive(Debug, Args)]
pub struct BackboneArgs {
    #[command(flatten)]
    pub(super) target: TrainTarget,
    #[command(flatten)]
    pub(super) schedule: ScheduleArgs,
    #[command(flatten)]
    backend: BackendFlag,
    /// Ignore a checkpoint in --out and start over.
    #[arg(long)]
    restart: bool,
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

pub fn run(kind: BackboneKind, a: BackboneArgs) -> Result<()> {
    let backend = a.backend.kind();
    let split = load_split(&a.target.split)?;
    let train = a.schedule.apply(kind.default_train(), a.target.seed);
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
    let run = RunOptions { out_dir: Some(a.target.out.clone()), resume: !a.restart, progress: !a.target.no_progress };
    let started = Instant::now();
    let job = BackboneTrainJob { model: kind.default_model(), split, train, run };
    let (_, report) = tears::backend::run(backend, job)?
        .with_context(|| format!("training {kind} on {}", a.target.split.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    super::print_epochs(&report, seconds, select_k, "", "");
    println!("wrote {} (weights.mpk, manifest.json, train_log.json, checkpoint/)", a.target.out.display());
    Ok(())
}
