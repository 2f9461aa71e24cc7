//! # tears-model
//!
//! The TEARS models (Penaloza, Gouvert, Wu, Charlin, WWW 2025) on burn, generic over
//! `B: Backend`:
//!
//! - **TEARS Base** ([`nets::Base`]): summary embedding → L2-normalise → dropout 0.4 →
//!   Linear(D → 800) → tanh → Linear(800 → 2L') → (mu, logvar), L' = 400 → Linear(L' → I). A new
//!   user who writes one sentence gets recommendations.
//! - **TEARS on a backbone** ([`nets::Fused`]): a trained Mult-DAE, Mult-VAE, RecVAE or MacridVAE
//!   (`tears train <backbone>`) with its encoder frozen and its decoder fine-tuned, a bias-free
//!   `Linear(D → 2L)` head (or an MLP), and the fusion `z_c = alpha · z_s + (1 − alpha) · z_r`
//!   (alpha = 1: text only). MacridVAE's latents are normalised per concept before and after
//!   mixing. Mult-DAE's encoder has no variance: its profile head predicts a point latent, the
//!   alignment is the squared distance of the two points and there is no KL term.
//! - The objective: the mean of the three NLLs (fused, profile, backbone) + λ1 · alignment
//!   ([`Alignment`]: closed-form Gaussian W2 with the backbone's real variance, the debiased
//!   Sinkhorn divergence between the batch's two clouds, or none) + λ2 · KL(q_s || N(0, I)).
//! - **GERS**: the same networks on the user's normalised rating-weighted genre vector
//!   ([`GenreSpace`]); its edits are vectors given through the same [`tears_core::Profile`]
//!   seam as an edited summary.
//! - alpha*: after training, alpha is swept over {0, 0.1, …, 1} on validation users and the best
//!   NDCG@20 is recorded ([`sweep_alpha`]); the epoch is the best validation NDCG@50 at 0.5.
//! - Encoders: a BERT-family [`tears_text::SentenceEncoder`], frozen (vectors cached) or
//!   fine-tuned with the model ([`EncoderMode`]: the top n layers over cached lower-layer
//!   states, or LoRA adapters; see [`tuning`]), or the weight-free
//!   [`tears_text::HashingEncoder`].
//!
//! Training runs in the shared loop of `tears-vae` (seeded noise, validation, patience,
//! checkpoints that resume bit for bit); a trained model is a [`tears_core::Recommender`] that
//! reads profiles, so `tears evaluate` and the metrics serve it as they serve the baselines.
//!
//! ```
//! use burn::backend::{Autodiff, Flex};
//! use tears_core::{EvalOptions, MissingProfile, Profiles, evaluate_with_profiles};
//! use tears_data::{prepare, DatasetName, EvalSet, PrepareOptions};
//! use tears_model::{BackboneChoice, TearsConfig, TearsTrainConfig, TextEncoderChoice, TrainInputs};
//! use tears_summarize::{user_histories, Summarizer, TemplateSummarizer, UserSet};
//!
//! let split = prepare(DatasetName::Synthetic, &PrepareOptions::default())?.split;
//! // Template summaries of every user, from what a summarizer may see.
//! let summarizer = TemplateSummarizer::from_split(&split);
//! let mut profiles = Profiles::new(None);
//! for (user, history) in user_histories(&split, UserSet::All) {
//!     profiles.insert(user, tears_core::Profile::Text(summarizer.summarize(&history)?));
//! }
//! let summaries = tears_model::SummariesFile { profiles, record: Default::default() };
//! let inputs = TrainInputs {
//!     split: &split,
//!     backbone_dir: None,
//!     encoder: Some(TextEncoderChoice::parse("hashing")),
//!     summaries: Some(&summaries),
//!     missing: MissingProfile::Error,
//!     embedding_cache: None,
//! };
//! let config = TearsConfig { backbone: BackboneChoice::None, ..TearsConfig::default() };
//! let train = TearsTrainConfig { epochs: 2, ..TearsTrainConfig::default() };
//! let (model, report) = tears_model::fit::<Autodiff<Flex>>(config, &train, &inputs, &Default::default(), &Default::default())?;
//! assert_eq!(report.train.history.len(), 2);
//! let test = evaluate_with_profiles(model.as_ref(), &split.test, Some(&summaries.profiles), MissingProfile::Error, &EvalOptions::default())?;
//! assert!(test.at(20).map_or(0.0, |a| a.ndcg.mean) > 0.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod config;
pub mod control;
pub mod dir;
pub mod encoder;
pub mod error;
pub mod genres;
pub mod nets;
pub mod recommend;
pub mod scorer;
pub mod train;
pub mod tuning;

pub use config::{
    ALPHA_GRID, Alignment, BackboneChoice, CheckedConfig, ConfigError, EncoderMode, Head, ProfileSource, TearsConfig,
    TearsTrainConfig, TrainAlpha,
};
pub use dir::{
    AlphaPoint, BackboneRecord, LoadOptions, SummariesFile, SummariesRecord, TearsRecord, TearsReport, TrainInputs,
    best_alpha, fit, load, load_with_items, read_record, read_record_for_items, summaries_for, sweep_alpha,
};
pub use encoder::{AnyTextEncoder, EncoderSpec, ProfileEncoder, TextEncoderChoice, TextProfiles, TunedEncoder};
pub use error::{Result, TearsError};
pub use genres::GenreSpace;
pub use nets::{Base, Fused, Latents, Scrutable, TearsLoss, Weights};
pub use recommend::{Edit, ItemTable, ProfileInput, Recommendation, RecommendedItem, Request, ScrutableModel};
pub use scorer::{Scorer, ScrutableRecommender, WEIGHTS_FILE};
pub use train::{Snapshot, TearsTask, TrainingData, Validation};
pub use tuning::{ENCODER_FILE, EncoderTuner, TunerInputs, weights_digest};
