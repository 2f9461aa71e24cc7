//! Backbone kinds and their hyper-parameters, with the reference defaults of the spec.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::VaeError;

/// The four VAE-family backbones.
///
/// ```
/// use tears_vae::BackboneKind;
/// let kind: BackboneKind = "recvae".parse()?;
/// assert_eq!(kind, BackboneKind::RecVae);
/// assert_eq!(kind.default_train().epochs, 50);
/// # Ok::<(), tears_vae::VaeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackboneKind {
    /// Mult-DAE (Liang et al. 2018): a denoising autoencoder with a multinomial likelihood.
    MultDae,
    /// Mult-VAE (Liang et al. 2018).
    MultVae,
    /// RecVAE (Shenbin et al. 2020): composite prior, alternating encoder/decoder updates.
    RecVae,
    /// MacridVAE (Ma et al. 2019): K disentangled concept latents.
    MacridVae,
}

impl BackboneKind {
    /// Every kind, in the order of the papers' tables.
    pub const ALL: [BackboneKind; 4] =
        [BackboneKind::MultDae, BackboneKind::MultVae, BackboneKind::RecVae, BackboneKind::MacridVae];

    /// The name used on the command line and in manifests.
    pub fn name(self) -> &'static str {
        match self {
            BackboneKind::MultDae => "multdae",
            BackboneKind::MultVae => "multvae",
            BackboneKind::RecVae => "recvae",
            BackboneKind::MacridVae => "macridvae",
        }
    }

    /// The reference training schedule of this backbone (backbones.md).
    pub fn default_train(self) -> TrainConfig {
        let base = TrainConfig::default();
        match self {
            BackboneKind::MultDae | BackboneKind::MultVae => TrainConfig { epochs: 200, lr: 1e-3, ..base },
            BackboneKind::RecVae => TrainConfig { epochs: 50, lr: 5e-4, ..base },
            BackboneKind::MacridVae => TrainConfig { epochs: 100, lr: 1e-3, ..base },
        }
    }

    /// The hyper-parameters this backbone uses on benchmark `dataset` (a split's
    /// `meta.dataset`): the setting chosen on that benchmark's validation users where a grid was
    /// run ([`MacridConfig::ML1M_GPT4`]), the reference values ([`BackboneKind::default_model`])
    /// everywhere else.
    ///
    /// ```
    /// use tears_vae::{BackboneKind, MacridConfig, ModelConfig};
    /// let chosen = BackboneKind::MacridVae.model_for("ml1m-gpt4");
    /// assert_eq!(chosen, ModelConfig::MacridVae(MacridConfig::ML1M_GPT4));
    /// assert_eq!(BackboneKind::MacridVae.model_for("ml100k"), BackboneKind::MacridVae.default_model());
    /// ```
    pub fn model_for(self, dataset: &str) -> ModelConfig {
        match (self, dataset) {
            (BackboneKind::MacridVae, "ml1m-gpt4") => ModelConfig::MacridVae(MacridConfig::ML1M_GPT4),
            _ => self.default_model(),
        }
    }

    /// The reference hyper-parameters of this backbone.
    pub fn default_model(self) -> ModelConfig {
        match self {
            BackboneKind::MultDae => ModelConfig::MultDae(MultDaeConfig::default()),
            BackboneKind::MultVae => ModelConfig::MultVae(MultVaeConfig::default()),
            BackboneKind::RecVae => ModelConfig::RecVae(RecVaeConfig::default()),
            BackboneKind::MacridVae => ModelConfig::MacridVae(MacridConfig::default()),
        }
    }
}

impl From<BackboneKind> for tears_core::ModelKind {
    fn from(kind: BackboneKind) -> Self {
        match kind {
            BackboneKind::MultDae => tears_core::ModelKind::MultDae,
            BackboneKind::MultVae => tears_core::ModelKind::MultVae,
            BackboneKind::RecVae => tears_core::ModelKind::RecVae,
            BackboneKind::MacridVae => tears_core::ModelKind::MacridVae,
        }
    }
}

impl TryFrom<tears_core::ModelKind> for BackboneKind {
    type Error = VaeError;

    fn try_from(kind: tears_core::ModelKind) -> Result<Self, VaeError> {
        BackboneKind::ALL
            .into_iter()
            .find(|b| tears_core::ModelKind::from(*b) == kind)
            .ok_or_else(|| VaeError::Config(format!("{kind} is not a VAE backbone")))
    }
}

impl fmt::Display for BackboneKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackboneKind {
    type Err = VaeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase().replace(['-', '_'], "");
        BackboneKind::ALL.into_iter().find(|k| k.name() == lower).ok_or_else(|| {
            VaeError::Config(format!("unknown backbone {s:?} (expected multdae, multvae, recvae or macridvae)"))
        })
    }
}

/// Mult-DAE: `I → hidden → I`, tanh hidden layer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultDaeConfig {
    /// Width of the hidden (latent) layer (200).
    pub hidden: usize,
    /// Input dropout while training (0.5).
    pub dropout: f32,
    /// L2 penalty on the weight matrices, `λ Σ ||W||²` (2e-5).
    pub weight_decay: f32,
}

impl Default for MultDaeConfig {
    fn default() -> Self {
        MultDaeConfig { hidden: 200, dropout: 0.5, weight_decay: 2e-5 }
    }
}

/// Mult-VAE: `I → hidden → 2·latent`, `latent → hidden → I`, tanh hidden layers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultVaeConfig {
    /// Hidden width (600).
    pub hidden: usize,
    /// Latent size (200).
    pub latent: usize,
    /// Input dropout while training (0.5).
    pub dropout: f32,
    /// Largest KL weight (0.2).
    pub beta_cap: f32,
    /// Updates over which beta grows linearly from 0 to 1 before the cap (200,000).
    pub anneal_steps: u64,
}

impl Default for MultVaeConfig {
    fn default() -> Self {
        MultVaeConfig { hidden: 600, latent: 200, dropout: 0.5, beta_cap: 0.2, anneal_steps: 200_000 }
    }
}

/// RecVAE: a densely connected 5-layer swish + LayerNorm encoder, a linear decoder, a composite
/// prior and alternating encoder / decoder passes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecVaeConfig {
    /// Width of the encoder layers (600).
    pub hidden: usize,
    /// Latent size (200).
    pub latent: usize,
    /// Number of densely connected encoder layers (5).
    pub layers: usize,
    /// Input dropout in encoder passes (0.5).
    pub dropout: f32,
    /// KL weight per user is `gamma · |x_u|` (0.005).
    pub gamma: f32,
    /// LayerNorm epsilon (0.1).
    pub layer_norm_eps: f64,
    /// Mixture weights of the prior: standard normal, old posterior, wide normal (0.15, 0.75, 0.10).
    pub mixture: [f32; 3],
    /// Log-variance of the wide component (10).
    pub wide_logvar: f32,
    /// Encoder passes per epoch (3).
    pub encoder_passes: usize,
    /// Decoder passes per epoch (1).
    pub decoder_passes: usize,
}

impl Default for RecVaeConfig {
    fn default() -> Self {
        RecVaeConfig {
            hidden: 600,
            latent: 200,
            layers: 5,
            dropout: 0.5,
            gamma: 0.005,
            layer_norm_eps: 0.1,
            mixture: [0.15, 0.75, 0.10],
            wide_logvar: 10.0,
            encoder_passes: 3,
            decoder_passes: 1,
        }
    }
}

/// MacridVAE: item embeddings and K prototypes, Gumbel-softmax concept assignment, one unit-norm
/// latent of size `dim` per concept.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MacridConfig {
    /// Embedding and per-concept latent size d (100).
    pub dim: usize,
    /// Number of concepts K (7).
    pub concepts: usize,
    /// Cosine temperature tau (0.1).
    pub tau: f32,
    /// Gumbel-softmax temperature of the concept assignment while training (1).
    pub gumbel_temperature: f32,
    /// Input dropout while training (0.5).
    pub dropout: f32,
    /// Prior standard deviation sigma0 scaling the posterior's (0.075).
    pub sigma0: f32,
    /// Largest KL weight (0.2).
    pub beta_cap: f32,
    /// beta = min(cap, updates / (anneal_epochs · batches per epoch)) (5).
    pub anneal_epochs: f32,
}

impl MacridConfig {
    /// The setting chosen for `ml1m-gpt4` on its validation users (`examples/macrid_grid`, the
    /// grid in docs/results.md): K = 2 concepts of d = 600, tau = 0.2, the reference KL cap.
    pub const ML1M_GPT4: MacridConfig = MacridConfig {
        dim: 600,
        concepts: 2,
        tau: 0.2,
        gumbel_temperature: 1.0,
        dropout: 0.5,
        sigma0: 0.075,
        beta_cap: 0.2,
        anneal_epochs: 5.0,
    };
}

impl Default for MacridConfig {
    fn default() -> Self {
        MacridConfig {
            dim: 100,
            concepts: 7,
            tau: 0.1,
            gumbel_temperature: 1.0,
            dropout: 0.5,
            sigma0: 0.075,
            beta_cap: 0.2,
            anneal_epochs: 5.0,
        }
    }
}

/// The hyper-parameters of one backbone, tagged by kind (what a manifest records).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ModelConfig {
    /// Mult-DAE.
    MultDae(MultDaeConfig),
    /// Mult-VAE.
    MultVae(MultVaeConfig),
    /// RecVAE.
    RecVae(RecVaeConfig),
    /// MacridVAE.
    MacridVae(MacridConfig),
}

impl ModelConfig {
    /// The backbone kind.
    pub fn kind(&self) -> BackboneKind {
        match self {
            ModelConfig::MultDae(_) => BackboneKind::MultDae,
            ModelConfig::MultVae(_) => BackboneKind::MultVae,
            ModelConfig::RecVae(_) => BackboneKind::RecVae,
            ModelConfig::MacridVae(_) => BackboneKind::MacridVae,
        }
    }

    /// Checks the values a model cannot be built or trained with.
    ///
    /// # Errors
    /// [`VaeError::Config`] naming the field.
    pub fn validate(&self) -> Result<(), VaeError> {
        let dropout = |p: f32| {
            if (0.0..1.0).contains(&p) {
                Ok(())
            } else {
                Err(VaeError::Config(format!("dropout {p} is not in [0, 1)")))
            }
        };
        let positive = |name: &str, v: usize| {
            if v > 0 { Ok(()) } else { Err(VaeError::Config(format!("{name} must be at least 1"))) }
        };
        match self {
            ModelConfig::MultDae(c) => {
                positive("hidden", c.hidden)?;
                dropout(c.dropout)
            }
            ModelConfig::MultVae(c) => {
                positive("hidden", c.hidden)?;
                positive("latent", c.latent)?;
                dropout(c.dropout)
            }
            ModelConfig::RecVae(c) => {
                positive("hidden", c.hidden)?;
                positive("latent", c.latent)?;
                positive("layers", c.layers)?;
                if c.mixture.iter().any(|&w| w <= 0.0) {
                    return Err(VaeError::Config(format!("mixture weights {:?} must be positive", c.mixture)));
                }
                dropout(c.dropout)
            }
            ModelConfig::MacridVae(c) => {
                positive("dim", c.dim)?;
                positive("concepts", c.concepts)?;
                if c.gumbel_temperature.is_nan() || c.gumbel_temperature <= 0.0 {
                    return Err(VaeError::Config("the Gumbel temperature must be positive".into()));
                }
                if c.tau.is_nan() || c.tau < crate::macrid::MIN_TAU {
                    return Err(VaeError::Config(format!(
                        "tau {} is below MacridVAE's smallest cosine temperature {}",
                        c.tau,
                        crate::macrid::MIN_TAU
                    )));
                }
                dropout(c.dropout)
            }
        }
    }

    /// The KL weight after `updates` mini-batch updates (RecVAE weighs its KL per user instead
    /// and returns 1).
    ///
    /// ```
    /// use tears_vae::{BackboneKind, ModelConfig};
    /// let vae = BackboneKind::MultVae.default_model();
    /// assert_eq!(vae.beta(20_000, 5), 0.1);
    /// assert_eq!(vae.beta(1_000_000, 5), 0.2);
    /// let macrid = BackboneKind::MacridVae.default_model();
    /// assert_eq!(macrid.beta(1, 5), 1.0 / 25.0);
    /// ```
    pub fn beta(&self, updates: u64, batches_per_epoch: usize) -> f32 {
        match self {
            ModelConfig::MultDae(_) => 0.0,
            ModelConfig::MultVae(c) => c.beta_cap.min(updates as f32 / c.anneal_steps.max(1) as f32),
            ModelConfig::RecVae(_) => 1.0,
            ModelConfig::MacridVae(c) => {
                let span = (c.anneal_epochs * batches_per_epoch.max(1) as f32).max(1.0);
                c.beta_cap.min(updates as f32 / span)
            }
        }
    }
}

/// The training schedule, common to all backbones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Epochs (outer epochs for RecVAE).
    pub epochs: usize,
    /// Users per mini-batch (500).
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Stop after this many epochs without a better validation metric (`None`: never).
    pub patience: Option<usize>,
    /// The cut-off of the validation NDCG that selects the best epoch (100).
    pub select_k: usize,
    /// Users scored at once during validation.
    pub eval_batch_size: usize,
    /// Seed of the initialisation, the batch order and every noise draw.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 200,
            batch_size: 500,
            lr: 1e-3,
            patience: Some(20),
            select_k: 100,
            eval_batch_size: 1024,
            seed: 0,
        }
    }
}

impl TrainConfig {
    /// Checks the schedule.
    ///
    /// # Errors
    /// [`VaeError::Config`] naming the field.
    pub fn validate(&self) -> Result<(), VaeError> {
        if self.batch_size == 0 || self.eval_batch_size == 0 || self.select_k == 0 {
            return Err(VaeError::Config("batch sizes and select_k must be at least 1".into()));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(VaeError::Config(format!("learning rate {} must be positive", self.lr)));
        }
        Ok(())
    }
}
