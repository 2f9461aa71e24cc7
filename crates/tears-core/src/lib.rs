//! # tears-core
//!
//! The seam every tears-rs model crate builds on, at the bottom of the workspace (above
//! `tears-data` and `tears-metrics` only):
//!
//! - [`Recommender`]: an object-safe trained model that scores every item for users given their
//!   fold-in rows and, for scrutable models, their [`Profile`]s (a summary text, a genre vector);
//!   [`Fit`] constructs one;
//! - [`ModelKind`]: the one registry of model kinds, with the [`Family`] (crate) that loads each;
//! - model directories: [`Manifest`] (kind, hyper-parameters, the item-vocabulary hash) and
//!   [`save_model`];
//! - batched evaluation with seen items masked: [`evaluate_model`], [`evaluate_with_profiles`],
//!   [`evaluate_split`], and the JSON [`EvalSummary`];
//! - [`ModelError`], the error every model crate converts into at this seam.
//!
//! ```
//! use tears_baselines::Popularity;
//! use tears_core::{evaluate_split, EvalOptions, Recommender};
//! use tears_data::{prepare, DatasetName, EvalSet, PrepareOptions};
//!
//! let split = prepare(DatasetName::Synthetic, &PrepareOptions::default())?.split;
//! let model: Box<dyn Recommender> = Box::new(Popularity::fit_split(&split)?);
//! let report = evaluate_split(model.as_ref(), &split, EvalSet::Test, &EvalOptions::default())?;
//! assert!(report.at(20).map_or(0.0, |a| a.ndcg.mean) > 0.0);
//! # Ok::<(), tears_core::ModelError>(())
//! ```

pub mod error;
pub mod evaluate;
pub mod fastmath;
pub mod kinds;
pub mod profile;
pub mod recommender;

pub use error::{ModelError, Result, VocabularyMismatch};
pub use evaluate::{
    EvalOptions, EvalSummary, MeanStderr, UserEvaluation, UserMetric, evaluate_model, evaluate_split,
    evaluate_users_with_profiles, evaluate_with_profiles,
};
pub use kinds::{Family, ModelKind};
pub use profile::{MissingProfile, Profile, ProfileKind, Profiles, Resolved};
pub use recommender::{Fit, ITEMS_FILE, MANIFEST_FILE, Manifest, Recommender, hash_hex, save_model, scores_from_vec};
