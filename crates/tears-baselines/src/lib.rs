//! # tears-baselines
//!
//! Two baselines behind the [`Recommender`] seam of `tears-core` (re-exported here with model
//! directories and evaluation, so `tears_baselines::Recommender` keeps working):
//!
//! - [`Ease`] (Steck 2019): `G = XᵀX + λI` in f64, `P = G⁻¹` by Cholesky with `faer`,
//!   `B = −P / diag(P)` with a zero diagonal; λ chosen on validation NDCG@20; a memory guard
//!   refuses catalogues whose `items² × 8` bytes exceed a limit;
//! - [`Popularity`]: the number of training positives of each item.
//!
//! ```
//! use tears_baselines::{evaluate_split, Ease, EaseConfig, EvalOptions, Fit, Popularity};
//! use tears_data::{prepare, DatasetName, EvalSet, PrepareOptions};
//!
//! let split = prepare(DatasetName::Synthetic, &PrepareOptions::default())?.split;
//! let ease = Ease::fit(&split, &EaseConfig::default(), 0)?;
//! let pop = Popularity::fit(&split, &(), 0)?;
//! let options = EvalOptions::default();
//! let ndcg = |m: &dyn tears_baselines::Recommender| -> Result<f64, tears_baselines::BaselineError> {
//!     Ok(evaluate_split(m, &split, EvalSet::Test, &options)?.at(20).map_or(0.0, |a| a.ndcg.mean))
//! };
//! assert!(ndcg(&ease)? > ndcg(&pop)?);
//! # Ok::<(), tears_baselines::BaselineError>(())
//! ```

pub mod ease;
pub mod popularity;

use std::path::Path;

pub use ease::{Ease, EaseConfig, LambdaTrial};
pub use popularity::Popularity;
/// The seam, re-exported: [`tears_core::evaluate`], [`tears_core::recommender`] and the error.
pub use tears_core::{
    EvalOptions, EvalSummary, Fit, Manifest, MeanStderr, ModelError as BaselineError, Recommender, Result, evaluate,
    evaluate_model, evaluate_split, recommender, save_model,
};
use tears_core::{Family, ModelKind};

/// Loads a baseline model saved with [`save_model`] from `dir`, after checking that it was trained
/// on `split`'s item vocabulary. Crates with other models read the [`Manifest`] themselves and
/// dispatch on [`Manifest::kind`].
///
/// ```
/// use tears_baselines::{load_model, save_model, Popularity};
/// use tears_data::{prepare, DatasetName, PrepareOptions};
///
/// let split = prepare(DatasetName::Synthetic, &PrepareOptions::default())?.split;
/// let dir = std::env::temp_dir().join(format!("tears-doc-load-{}", std::process::id()));
/// save_model(&Popularity::fit_split(&split)?, &split, 0, None, &dir)?;
/// assert_eq!(load_model(&dir, &split)?.kind(), "pop");
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), tears_baselines::BaselineError>(())
/// ```
///
/// # Errors
/// [`BaselineError::VocabularyMismatch`], [`BaselineError::UnknownKind`], missing or malformed
/// files.
pub fn load_model(dir: &Path, split: &tears_data::Split) -> Result<Box<dyn Recommender>> {
    let manifest = Manifest::read(dir)?;
    manifest.check_split(dir, split)?;
    match manifest.kind.parse::<ModelKind>() {
        Ok(ModelKind::Ease) => Ok(Box::new(Ease::load_weights(dir, &manifest)?)),
        Ok(ModelKind::Pop) => Ok(Box::new(Popularity::load_weights(dir, &manifest)?)),
        _ => Err(BaselineError::UnknownKind {
            path: Manifest::path(dir),
            kind: manifest.kind.clone(),
            known: ModelKind::names(&ModelKind::of_family(Family::Baseline)),
        }),
    }
}
