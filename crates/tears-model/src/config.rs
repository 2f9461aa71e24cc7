//! The TEARS and GERS configurations, checked once when a model is built ([`TearsConfig::check`],
//! after linfa's `ParamGuard`): every broken rule is its own [`ConfigError`] variant.

use serde::{Deserialize, Serialize};

/// Which backbone the profile branch is fused with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackboneChoice {
    /// None: TEARS Base / GERS Base (profile only).
    None,
    /// Mult-DAE (deterministic encoder: its text branch predicts a point latent).
    MultDae,
    /// Mult-VAE.
    MultVae,
    /// RecVAE.
    RecVae,
    /// MacridVAE (K × d concept latents, unit norm per concept).
    MacridVae,
}

impl BackboneChoice {
    /// Every choice.
    pub const ALL: [BackboneChoice; 5] = [
        BackboneChoice::None,
        BackboneChoice::MultDae,
        BackboneChoice::MultVae,
        BackboneChoice::RecVae,
        BackboneChoice::MacridVae,
    ];

    /// The name on the command line and in manifests.
    pub fn name(self) -> &'static str {
        match self {
            BackboneChoice::None => "none",
            BackboneChoice::MultDae => "multdae",
            BackboneChoice::MultVae => "multvae",
            BackboneChoice::RecVae => "recvae",
            BackboneChoice::MacridVae => "macridvae",
        }
    }

    /// The VAE backbone kind, if any.
    pub fn backbone(self) -> Option<tears_vae::BackboneKind> {
        match self {
            BackboneChoice::None => None,
            BackboneChoice::MultDae => Some(tears_vae::BackboneKind::MultDae),
            BackboneChoice::MultVae => Some(tears_vae::BackboneKind::MultVae),
            BackboneChoice::RecVae => Some(tears_vae::BackboneKind::RecVae),
            BackboneChoice::MacridVae => Some(tears_vae::BackboneKind::MacridVae),
        }
    }

    /// The choice of a backbone kind.
    pub fn of(kind: tears_vae::BackboneKind) -> Self {
        match kind {
            tears_vae::BackboneKind::MultDae => BackboneChoice::MultDae,
            tears_vae::BackboneKind::MultVae => BackboneChoice::MultVae,
            tears_vae::BackboneKind::RecVae => BackboneChoice::RecVae,
            tears_vae::BackboneKind::MacridVae => BackboneChoice::MacridVae,
        }
    }
}

impl std::str::FromStr for BackboneChoice {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        let lower = s.to_ascii_lowercase().replace(['-', '_'], "");
        BackboneChoice::ALL
            .into_iter()
            .find(|c| c.name() == lower)
            .ok_or_else(|| ConfigError::UnknownName { what: "backbone", name: s.to_string() })
    }
}

/// What the scrutable profile is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProfileSource {
    /// A natural-language summary through a text encoder (TEARS).
    Text,
    /// The user's normalised rating-weighted genre vector (GERS).
    Genres,
}

/// The text branch's head on a backbone (TEARS Base always uses its own MLP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Head {
    /// A bias-free `Linear(D → 2L)` (the paper's).
    Linear,
    /// `Linear(D → hidden) → tanh → Linear(hidden → 2L)`.
    Mlp {
        /// Hidden width.
        hidden: usize,
    },
}

/// The alignment term `L_OT` between the profile posterior and the backbone posterior.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Alignment {
    /// Per user, the closed-form squared W2 between the two diagonal Gaussians (with the
    /// backbone's real log-variance), averaged over the batch.
    GaussianW2,
    /// The debiased Sinkhorn divergence between the batch's cloud of profile means and the
    /// batch's cloud of backbone means (squared Euclidean cost, eps relative to the median cost).
    Sinkhorn {
        /// eps as a fraction of the median cost (0.05).
        eps_rel: f64,
    },
    /// No alignment term.
    None,
}

impl Alignment {
    /// The name on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Alignment::GaussianW2 => "gaussian-w2",
            Alignment::Sinkhorn { .. } => "sinkhorn",
            Alignment::None => "none",
        }
    }
}

impl std::str::FromStr for Alignment {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s {
            "gaussian-w2" | "w2" => Ok(Alignment::GaussianW2),
            "sinkhorn" => Ok(Alignment::Sinkhorn { eps_rel: 0.05 }),
            "none" => Ok(Alignment::None),
            other => Err(ConfigError::UnknownName { what: "alignment", name: other.to_string() }),
        }
    }
}

/// alpha while training.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "value")]
pub enum TrainAlpha {
    /// The same alpha for every batch (0.5, the paper's).
    Fixed(f32),
    /// alpha ~ U(0, 1), drawn per batch from the run's seed.
    Uniform,
}

impl std::str::FromStr for TrainAlpha {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        if s == "uniform" {
            return Ok(TrainAlpha::Uniform);
        }
        s.parse::<f32>()
            .map(TrainAlpha::Fixed)
            .map_err(|_| ConfigError::UnknownName { what: "training alpha (a number or uniform)", name: s.into() })
    }
}

/// What trains in the text encoder (TEARS with a BERT-family encoder).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum EncoderMode {
    /// Nothing: the summaries are embedded once (through the embedding cache) and held in memory.
    #[default]
    Frozen,
    /// The top `layers` transformer layers train; the token states below them are computed once
    /// per summary and cached on the host, so a step runs only the top layers.
    TopLayers {
        /// Layers that train (at least 1, at most the encoder's).
        layers: usize,
    },
    /// LoRA adapters on query, key and value of every layer train; the pretrained weights stay
    /// frozen (the embeddings' output is cached).
    Lora {
        /// Rank of the adapters (8).
        rank: usize,
        /// Multiplier of the update (2, i.e. LoRA alpha 16 at rank 8).
        scale: f64,
    },
}

impl EncoderMode {
    /// Whether the encoder's weights change in training.
    pub fn trains(&self) -> bool {
        *self != EncoderMode::Frozen
    }

    /// The name on the command line: `frozen`, `top-n:N`, `lora` or `lora:R`.
    pub fn name(&self) -> String {
        match self {
            EncoderMode::Frozen => "frozen".into(),
            EncoderMode::TopLayers { layers } => format!("top-n:{layers}"),
            EncoderMode::Lora { rank, .. } => format!("lora:{rank}"),
        }
    }

    /// The tears-text fine-tuning mode (`seed` initialises LoRA's down projections).
    pub fn fine_tuning(&self, seed: u64) -> tears_text::FineTuning {
        match *self {
            EncoderMode::Frozen => tears_text::FineTuning::Frozen,
            EncoderMode::TopLayers { layers } => tears_text::FineTuning::TopLayers(layers),
            EncoderMode::Lora { rank, scale } => {
                tears_text::FineTuning::Lora(tears_text::LoraConfig { rank, scale, dropout: 0.0, seed: seed ^ 0x10AA })
            }
        }
    }
}

impl std::str::FromStr for EncoderMode {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        let bad = || ConfigError::UnknownName { what: "encoder mode (frozen, top-n:N, lora, lora:R)", name: s.into() };
        let (head, n) = match s.split_once(':') {
            Some((h, n)) => (h, Some(n.parse::<usize>().map_err(|_| bad())?)),
            None => (s, None),
        };
        match (head, n) {
            ("frozen", None) => Ok(EncoderMode::Frozen),
            ("top-n" | "top", Some(layers)) => Ok(EncoderMode::TopLayers { layers }),
            ("lora", rank) => Ok(EncoderMode::Lora { rank: rank.unwrap_or(8), scale: 2.0 }),
            _ => Err(bad()),
        }
    }
}

/// The hyper-parameters of a TEARS or GERS model.
///
/// ```
/// use tears_model::{BackboneChoice, TearsConfig};
/// let config = TearsConfig::default();
/// assert_eq!(config.lambda_ot, 0.5);
/// assert_eq!(config.backbone, BackboneChoice::RecVae);
/// let checked = config.check()?;
/// assert_eq!(checked.get().base_latent, 400);
/// let broken = TearsConfig { lambda_ot: -1.0, ..TearsConfig::default() };
/// assert!(broken.check().is_err());
/// # Ok::<(), tears_model::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TearsConfig {
    /// Summary text (TEARS) or genre vector (GERS).
    pub profile: ProfileSource,
    /// The backbone fused with (`None`: the Base model).
    pub backbone: BackboneChoice,
    /// The head on a backbone.
    pub head: Head,
    /// The alignment term.
    pub alignment: Alignment,
    /// λ1, the weight of the alignment term (0.5).
    pub lambda_ot: f32,
    /// λ2, the largest weight of KL(q_s || N(0, I)) (0.2; 0 turns it off).
    pub lambda_kl: f32,
    /// Updates over which λ2 grows linearly to its cap, like Mult-VAE's beta (200,000; 0: constant).
    pub kl_anneal_steps: u64,
    /// alpha while training.
    pub train_alpha: TrainAlpha,
    /// TEARS Base: hidden width (800).
    pub base_hidden: usize,
    /// TEARS Base: latent size L' (400).
    pub base_latent: usize,
    /// TEARS Base: dropout on the normalised profile (0.4).
    pub base_dropout: f32,
    /// What trains in the text encoder (frozen by default).
    #[serde(default)]
    pub encoder_mode: EncoderMode,
}

impl Default for TearsConfig {
    fn default() -> Self {
        TearsConfig {
            profile: ProfileSource::Text,
            backbone: BackboneChoice::RecVae,
            head: Head::Linear,
            alignment: Alignment::GaussianW2,
            lambda_ot: 0.5,
            lambda_kl: 0.2,
            kl_anneal_steps: 200_000,
            train_alpha: TrainAlpha::Fixed(0.5),
            base_hidden: 800,
            base_latent: 400,
            base_dropout: 0.4,
            encoder_mode: EncoderMode::Frozen,
        }
    }
}

/// A broken configuration rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A weight of the objective is negative or not finite.
    #[error("{name} must be finite and non-negative, got {value}")]
    NegativeWeight {
        /// `lambda_ot` or `lambda_kl`.
        name: &'static str,
        /// The value.
        value: f32,
    },
    /// A training alpha outside [0, 1].
    #[error("the training alpha must be in [0, 1], got {0}")]
    AlphaOutOfRange(f32),
    /// A dropout probability outside [0, 1).
    #[error("dropout {0} is not in [0, 1)")]
    Dropout(f32),
    /// A layer width of zero.
    #[error("{0} must be at least 1")]
    ZeroWidth(&'static str),
    /// A Sinkhorn eps that is not positive.
    #[error("the Sinkhorn eps must be positive, got {0}")]
    SinkhornEps(f64),
    /// An option that only applies with a backbone, given to a Base model.
    #[error("{0} needs a backbone (--backbone multvae, recvae, ...)")]
    NeedsBackbone(&'static str),
    /// A name that is not one of the choices.
    #[error("unknown {what} {name:?}")]
    UnknownName {
        /// What was named.
        what: &'static str,
        /// The name given.
        name: String,
    },
    /// An option that only applies to text profiles, given to GERS.
    #[error("{0} needs text profiles (TEARS), not genre vectors")]
    NeedsText(&'static str),
    /// A training schedule value that cannot work.
    #[error("{0}")]
    Schedule(&'static str),
}

/// A [`TearsConfig`] that passed [`TearsConfig::check`].
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedConfig(TearsConfig);

impl CheckedConfig {
    /// The configuration.
    pub fn get(&self) -> &TearsConfig {
        &self.0
    }
}

impl TearsConfig {
    /// Checks every rule and returns the configuration a model can be built from.
    ///
    /// # Errors
    /// The first broken rule, as its own [`ConfigError`] variant.
    pub fn check(self) -> Result<CheckedConfig, ConfigError> {
        for (name, value) in [("lambda_ot", self.lambda_ot), ("lambda_kl", self.lambda_kl)] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(ConfigError::NegativeWeight { name, value });
            }
        }
        if let TrainAlpha::Fixed(a) = self.train_alpha
            && !(0.0..=1.0).contains(&a)
        {
            return Err(ConfigError::AlphaOutOfRange(a));
        }
        if !(0.0..1.0).contains(&self.base_dropout) {
            return Err(ConfigError::Dropout(self.base_dropout));
        }
        if self.base_hidden == 0 {
            return Err(ConfigError::ZeroWidth("base_hidden"));
        }
        if self.base_latent == 0 {
            return Err(ConfigError::ZeroWidth("base_latent"));
        }
        if let Head::Mlp { hidden: 0 } = self.head {
            return Err(ConfigError::ZeroWidth("the MLP head's hidden width"));
        }
        if let Alignment::Sinkhorn { eps_rel } = self.alignment
            && !(eps_rel.is_finite() && eps_rel > 0.0)
        {
            return Err(ConfigError::SinkhornEps(eps_rel));
        }
        match self.encoder_mode {
            EncoderMode::TopLayers { layers: 0 } => return Err(ConfigError::ZeroWidth("the top-n layers")),
            EncoderMode::Lora { rank: 0, .. } => return Err(ConfigError::ZeroWidth("the LoRA rank")),
            EncoderMode::Lora { scale, .. } if !scale.is_finite() => {
                return Err(ConfigError::UnknownName { what: "LoRA scale", name: scale.to_string() });
            }
            _ => {}
        }
        if self.encoder_mode.trains() && self.profile == ProfileSource::Genres {
            return Err(ConfigError::NeedsText("fine-tuning the text encoder"));
        }
        if self.backbone == BackboneChoice::None {
            if self.head != Head::Linear {
                return Err(ConfigError::NeedsBackbone("an MLP head"));
            }
            if self.train_alpha == TrainAlpha::Uniform {
                return Err(ConfigError::NeedsBackbone("a uniform training alpha"));
            }
        }
        Ok(CheckedConfig(self))
    }

    /// The KL weight λ2 after `updates` mini-batch updates.
    ///
    /// ```
    /// let c = tears_model::TearsConfig::default();
    /// assert_eq!(c.kl_weight(100_000), 0.2f32.min(0.5));
    /// assert_eq!(tears_model::TearsConfig { kl_anneal_steps: 0, ..c }.kl_weight(0), 0.2);
    /// ```
    pub fn kl_weight(&self, updates: u64) -> f32 {
        if self.kl_anneal_steps == 0 {
            self.lambda_kl
        } else {
            self.lambda_kl.min(updates as f32 / self.kl_anneal_steps as f32)
        }
    }
}

/// The training schedule of a TEARS or GERS model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TearsTrainConfig {
    /// Epochs (200).
    pub epochs: usize,
    /// Users per mini-batch (500 with a frozen encoder).
    pub batch_size: usize,
    /// AdamW learning rate (1e-3 for the heads alone).
    pub lr: f64,
    /// AdamW weight decay (0.01).
    pub weight_decay: f32,
    /// Learning rate of the text encoder's trainable weights (1e-4; read only when the encoder
    /// trains).
    #[serde(default = "default_encoder_lr")]
    pub encoder_lr: f64,
    /// Stop after this many epochs without a better validation NDCG (`None`: never).
    pub patience: Option<usize>,
    /// The cut-off of the validation NDCG that selects the epoch (50).
    pub select_k: usize,
    /// The alpha at which the epoch is selected (0.5).
    pub select_alpha: f32,
    /// Users scored at once during validation.
    pub eval_batch_size: usize,
    /// Seed of the initialisation, the batch order and every noise draw.
    pub seed: u64,
}

impl Default for TearsTrainConfig {
    fn default() -> Self {
        TearsTrainConfig {
            epochs: 200,
            batch_size: 500,
            lr: 1e-3,
            weight_decay: 0.01,
            encoder_lr: default_encoder_lr(),
            patience: Some(20),
            select_k: 50,
            select_alpha: 0.5,
            eval_batch_size: 1024,
            seed: 0,
        }
    }
}

fn default_encoder_lr() -> f64 {
    1e-4
}

impl TearsTrainConfig {
    /// Checks the schedule.
    ///
    /// # Errors
    /// [`ConfigError::Schedule`] naming the rule.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.epochs == 0 {
            return Err(ConfigError::Schedule("epochs must be at least 1"));
        }
        if self.batch_size == 0 || self.eval_batch_size == 0 || self.select_k == 0 {
            return Err(ConfigError::Schedule("batch sizes and select_k must be at least 1"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(ConfigError::Schedule("the learning rate must be positive"));
        }
        if !(self.encoder_lr.is_finite() && self.encoder_lr > 0.0) {
            return Err(ConfigError::Schedule("the encoder's learning rate must be positive"));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(ConfigError::Schedule("the weight decay must be non-negative"));
        }
        if !(0.0..=1.0).contains(&self.select_alpha) {
            return Err(ConfigError::Schedule("the selection alpha must be in [0, 1]"));
        }
        Ok(())
    }
}

/// The alphas of the sweep, {0, 0.1, ..., 1}.
pub const ALPHA_GRID: [f32; 11] = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_its_own_error() {
        let base = TearsConfig::default;
        let cases: Vec<(TearsConfig, ConfigError)> = vec![
            (
                TearsConfig { lambda_ot: f32::NAN, ..base() },
                ConfigError::NegativeWeight { name: "lambda_ot", value: f32::NAN },
            ),
            (TearsConfig { lambda_kl: -0.1, ..base() }, ConfigError::NegativeWeight { name: "lambda_kl", value: -0.1 }),
            (TearsConfig { train_alpha: TrainAlpha::Fixed(1.5), ..base() }, ConfigError::AlphaOutOfRange(1.5)),
            (TearsConfig { base_dropout: 1.0, ..base() }, ConfigError::Dropout(1.0)),
            (TearsConfig { base_latent: 0, ..base() }, ConfigError::ZeroWidth("base_latent")),
            (
                TearsConfig { head: Head::Mlp { hidden: 0 }, ..base() },
                ConfigError::ZeroWidth("the MLP head's hidden width"),
            ),
            (TearsConfig { alignment: Alignment::Sinkhorn { eps_rel: 0.0 }, ..base() }, ConfigError::SinkhornEps(0.0)),
            (
                TearsConfig { backbone: BackboneChoice::None, head: Head::Mlp { hidden: 8 }, ..base() },
                ConfigError::NeedsBackbone("an MLP head"),
            ),
            (
                TearsConfig { encoder_mode: EncoderMode::TopLayers { layers: 0 }, ..base() },
                ConfigError::ZeroWidth("the top-n layers"),
            ),
            (
                TearsConfig { encoder_mode: EncoderMode::Lora { rank: 0, scale: 2.0 }, ..base() },
                ConfigError::ZeroWidth("the LoRA rank"),
            ),
            (
                TearsConfig {
                    profile: ProfileSource::Genres,
                    encoder_mode: EncoderMode::TopLayers { layers: 1 },
                    ..base()
                },
                ConfigError::NeedsText("fine-tuning the text encoder"),
            ),
        ];
        for (config, expected) in cases {
            match config.check() {
                // NaN != NaN: compare the variant and name for that case.
                Err(ConfigError::NegativeWeight { name, value }) if value.is_nan() => {
                    assert!(matches!(expected, ConfigError::NegativeWeight { name: n, .. } if n == name));
                }
                Err(e) => assert_eq!(e, expected),
                Ok(_) => panic!("{expected} was accepted"),
            }
        }
        assert!(TearsConfig { lambda_kl: 0.0, lambda_ot: 0.0, ..base() }.check().is_ok());
        assert!("gaussian-w2".parse::<Alignment>().is_ok() && "wasserstein".parse::<Alignment>().is_err());
        assert_eq!("uniform".parse::<TrainAlpha>().ok(), Some(TrainAlpha::Uniform));
        assert_eq!("0.3".parse::<TrainAlpha>().ok(), Some(TrainAlpha::Fixed(0.3)));
        assert_eq!("recvae".parse::<BackboneChoice>().ok(), Some(BackboneChoice::RecVae));
    }

    #[test]
    fn encoder_modes_parse_and_name_themselves() {
        for (text, mode) in [
            ("frozen", EncoderMode::Frozen),
            ("top-n:2", EncoderMode::TopLayers { layers: 2 }),
            ("lora", EncoderMode::Lora { rank: 8, scale: 2.0 }),
            ("lora:4", EncoderMode::Lora { rank: 4, scale: 2.0 }),
        ] {
            assert_eq!(text.parse::<EncoderMode>().ok(), Some(mode), "{text}");
            assert_eq!(mode.name().parse::<EncoderMode>().ok(), Some(mode));
        }
        for bad in ["top-n", "top-n:x", "frozen:1", "full"] {
            assert!(bad.parse::<EncoderMode>().is_err(), "{bad} was accepted");
        }
        // A record written before the mode existed reads as frozen.
        let mut old = serde_json::to_value(TearsConfig::default()).unwrap_or_default();
        if let Some(map) = old.as_object_mut() {
            map.remove("encoder_mode");
        }
        let read: TearsConfig = serde_json::from_value(old).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read.encoder_mode, EncoderMode::Frozen);
    }

    #[test]
    fn schedules_are_checked() {
        assert!(TearsTrainConfig::default().check().is_ok());
        assert!(TearsTrainConfig { lr: 0.0, ..TearsTrainConfig::default() }.check().is_err());
        assert!(TearsTrainConfig { select_alpha: 2.0, ..TearsTrainConfig::default() }.check().is_err());
    }
}
