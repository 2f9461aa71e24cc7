//! # tears-vae
//!
//! VAE-family collaborative-filtering backbones on burn, generic over `B: Backend`, and their
//! trainer:
//!
//! - [`MultDae`] and [`MultVae`] (Liang et al. 2018): multinomial likelihood, tanh MLPs, the
//!   annealed KL weight `beta = min(0.2, updates / 200,000)`;
//! - [`RecVae`] (Shenbin et al. 2020): a densely connected swish + LayerNorm encoder, a composite
//!   prior with a frozen encoder copy refreshed after each encoder phase, a per-user KL weight
//!   `gamma · |x_u|`, and alternating encoder / decoder passes with two optimisers;
//! - [`MacridVae`] (Ma et al. 2019): K concept prototypes, Gumbel-softmax concept assignment,
//!   per-concept unit-norm latents with `sigma0 = 0.075`.
//!
//! Every backbone implements [`Backbone`] (`encode`, `sample`, `decode`, its loss; what the TEARS
//! fusion model needs: a frozen encoder, a fine-tuned decoder fed mixed latents) and, once trained,
//! `tears_core::Recommender` through [`Trained`]. [`train`] / [`fit`] run the seeded
//! training loop ([`epochs::run_epochs`], shared with the TEARS models) with validation NDCG@100, best-epoch selection, early stopping and resumable
//! checkpoints; [`load`] reads a model directory back on any backend.
//!
//! ```
//! use burn::backend::{Autodiff, Flex};
//! use tears_core::{evaluate_split, EvalOptions};
//! use tears_data::{prepare, DatasetName, EvalSet, PrepareOptions};
//! use tears_vae::{fit, MultVae, MultVaeConfig, RunOptions, TrainConfig};
//!
//! let split = prepare(DatasetName::Synthetic, &PrepareOptions::default())?.split;
//! let device = Default::default();
//! let model = MultVae::<Autodiff<Flex>>::new(&MultVaeConfig::default(), split.n_items(), 0, &device);
//! let config = TrainConfig { epochs: 2, ..TrainConfig::default() };
//! let (trained, report) = fit(model, &split, &config, &RunOptions::default(), &device)?;
//! assert_eq!(report.history.len(), 2);
//! let ndcg = evaluate_split(&trained, &split, EvalSet::Test, &EvalOptions::default())?;
//! assert!(ndcg.at(20).map_or(0.0, |a| a.ndcg.mean) > 0.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod backbone;
pub mod checkpoint;
pub mod config;
pub mod early_stopping;
pub mod epochs;
pub mod error;
pub mod input;
pub mod macrid;
pub mod model;
pub mod mult;
pub mod noise;
pub mod ops;
pub mod optim;
pub mod parallel;
pub mod recvae;
pub mod trainer;

use burn::tensor::backend::AutodiffBackend;
use tears_core::Recommender;
use tears_data::Split;

pub use backbone::{Backbone, Given, LatentShape, Loss, Mode, Phase, Posterior, Schedule, Trainable};
pub use checkpoint::{Counters, Fingerprint, RunState};
pub use config::{BackboneKind, MacridConfig, ModelConfig, MultDaeConfig, MultVaeConfig, RecVaeConfig, TrainConfig};
pub use early_stopping::{Decision, EarlyStopping};
pub use epochs::{EpochTask, run_epochs, write_train_log};
pub use error::{Result, VaeError};
pub use input::{HostWeight, InputLayer, SparseRows, SparseStep, sparse_input_enabled};
pub use macrid::{MIN_TAU, MacridVae};
pub use model::{AnyBackbone, SavedBackbone, TrainSummary, Trained, load, load_backbone};
pub use mult::{MultDae, MultVae};
pub use noise::NoiseSource;
pub use parallel::{CollectiveOptions, CollectivePeer, GradientSync, Workers};
pub use recvae::RecVae;
pub use trainer::{BackboneTask, EpochLog, EpochLoss, RunOptions, TrainReport, Trainer, WorkerShare, fit, train};

/// Builds the backbone `model` describes (seeded with `train.seed`), trains it on `split` and
/// returns it as a boxed [`Recommender`] on `B`'s inner backend, with the report. With
/// `run.out_dir`, the model directory is written (see [`fit`]).
///
/// # Errors
/// As [`fit`].
pub fn fit_config<B: AutodiffBackend>(
    model: &ModelConfig,
    split: &Split,
    train: &TrainConfig,
    run: &RunOptions,
    device: &B::Device,
) -> Result<(Box<dyn Recommender>, TrainReport)> {
    model.validate()?;
    let n = split.n_items();
    let seed = train.seed;
    Ok(match model {
        ModelConfig::MultDae(c) => boxed(fit(MultDae::<B>::new(c, n, seed, device), split, train, run, device)?),
        ModelConfig::MultVae(c) => boxed(fit(MultVae::<B>::new(c, n, seed, device), split, train, run, device)?),
        ModelConfig::RecVae(c) => boxed(fit(RecVae::<B>::new(c, n, seed, device), split, train, run, device)?),
        ModelConfig::MacridVae(c) => boxed(fit(MacridVae::<B>::new(c, n, seed, device), split, train, run, device)?),
    })
}

fn boxed<R: Recommender + 'static>((model, report): (R, TrainReport)) -> (Box<dyn Recommender>, TrainReport) {
    (Box::new(model), report)
}
