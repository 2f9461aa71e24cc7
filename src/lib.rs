//! # tears
//!
//! Scrutable recommendation after TEARS (Penaloza, Gouvert, Wu, Charlin, WWW 2025): a user's
//! profile is a short natural-language summary that a person can read and edit.
//!
//! This facade re-exports the member crates and owns the run-time [`backend`] choice; library
//! code in the member crates is generic over burn's `Backend`.
//!
//! ```
//! use tears::data::{prepare, DatasetName, PrepareOptions};
//! let prepared = prepare(DatasetName::Synthetic, &PrepareOptions::default())?;
//! println!("{} training users", prepared.split.meta.counts.train_users);
//! # Ok::<(), tears::data::DataError>(())
//! ```

pub mod backend;

/// EASE and most-popular baselines, with the seam re-exported (re-export of `tears-baselines`).
pub use tears_baselines as baselines;
/// The model seam: the `Recommender` trait, user profiles, the registry of model kinds, model
/// directories and evaluation (re-export of `tears-core`).
pub use tears_core as recommender;
pub use tears_data as data;
/// Top-k selection and ranking metrics (re-export of `tears-metrics`).
pub use tears_metrics as metrics;
/// The TEARS models: TEARS Base, TEARS on a backbone, GERS, alpha (re-export of `tears-model`).
pub use tears_model as model;
/// Optimal-transport kernels (closed-form Gaussian W2, batched log-domain Sinkhorn).
pub use tears_ot as ot;
/// Summarizers (LLM and template), prompts, the summary cache and summary edits (re-export of `tears-summarize`).
pub use tears_summarize as summarize;
/// Text encoders: BERT-family sentence encoders on burn, tokenizer, embedding cache, LoRA and
/// top-n fine-tuning (re-export of `tears-text`).
pub use tears_text as text;
/// VAE backbones (Mult-DAE, Mult-VAE, RecVAE, MacridVAE), their trainer and model directories
/// (re-export of `tears-vae`).
pub use tears_vae as vae;
