//! The [`Recommender`] trait every model implements, its fitting counterpart [`Fit`], and model
//! directories ([`Manifest`], [`save_model`]).
//!
//! A model directory holds `manifest.json` (kind, hyper-parameters, the split's dataset name and
//! item-vocabulary hash, seed, fit time) and the model's own weight files. Every file is written
//! to a temporary name and renamed; the manifest is written last, so a directory with a manifest
//! is complete.

use std::path::{Path, PathBuf};

use ndarray::Array2;
use serde::{Deserialize, Serialize};
use tears_data::{Split, UserRows};

use crate::error::{ModelError, Result};
use crate::profile::{Profile, ProfileKind};

/// Name of the manifest file in a model directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Version of the manifest layout written by this crate.
pub const MANIFEST_FORMAT: u32 = 1;

/// A trained recommender: scores every item for users given their fold-in ratings.
///
/// The trait is object safe (`Box<dyn Recommender>`) and not generic: a burn model generic over
/// `B: Backend` implements it for its concrete backend and carries its device inside. Fitting and
/// loading, which construct a model, live in [`Fit`].
///
/// ```
/// use tears_baselines::Popularity;
/// use tears_core::Recommender;
/// use tears_data::{prepare, DatasetName, PrepareOptions};
///
/// let split = prepare(DatasetName::Synthetic, &PrepareOptions::default())?.split;
/// let model: Box<dyn Recommender> = Box::new(Popularity::fit_split(&split)?);
/// let scores = model.score(&split.test.foldin)?;
/// assert_eq!(scores.dim(), (split.test.len(), model.n_items()));
/// // Row `r` holds the scores of fold-in row `r`; the matrix is in standard layout.
/// assert_eq!(scores.row(0).len(), model.n_items());
/// assert!(scores.as_slice().is_some());
/// # Ok::<(), tears_core::ModelError>(())
/// ```
pub trait Recommender {
    /// Short name of the model kind (`"ease"`, `"pop"`, ...), recorded in the manifest.
    fn kind(&self) -> &str;

    /// Number of items scored (the split's vocabulary size).
    fn n_items(&self) -> usize;

    /// Hyper-parameters (and fit-time choices such as the selected lambda) as JSON.
    fn hyper_parameters(&self) -> serde_json::Value;

    /// Scores every item for every row of `foldin` (ratings on vocabulary items; how they are
    /// binarised is the model's business). Returns a `[foldin.len(), n_items]` matrix: row `r`
    /// scores fold-in row `r`, column `i` item `i`. Seen items are *not* masked here; the
    /// evaluator masks them.
    ///
    /// The matrix is in standard (row-major, contiguous) layout: callers may rely on
    /// [`as_slice`](ndarray::ArrayRef::as_slice) returning `Some` with the row-major scores.
    /// Implementations guarantee it by building the matrix from a row-major buffer, e.g. with
    /// [`scores_from_vec`].
    ///
    /// # Errors
    /// An item index out of range, or a model-specific failure.
    fn score(&self, foldin: &UserRows) -> Result<Array2<f32>>;

    /// What the model reads besides the fold-in rows ([`ProfileKind::None`] unless overridden).
    fn profile_kind(&self) -> ProfileKind {
        ProfileKind::None
    }

    /// Scores every item for every row of `foldin`, row `r` with its user's profile
    /// `profiles[r]` (a summary, a genre vector; `None`: no profile given). Models that read no
    /// profile ignore them (the default calls [`Recommender::score`]). The matrix has the shape
    /// and the standard layout of [`Recommender::score`]'s.
    ///
    /// # Errors
    /// As [`Recommender::score`]; a model that needs profiles refuses a missing or mismatched one.
    fn score_with_profiles(&self, foldin: &UserRows, profiles: &[Option<&Profile>]) -> Result<Array2<f32>> {
        check_profiles(foldin, profiles)?;
        self.score(foldin)
    }

    /// Writes the model's weight files into `dir` (which exists). The manifest is written by
    /// [`save_model`], not here.
    ///
    /// # Errors
    /// An I/O error naming the file.
    fn save_weights(&self, dir: &Path) -> Result<()>;
}

/// Wraps a row-major buffer of `rows × n_items` scores as the `[rows, n_items]` matrix that
/// [`Recommender::score`] returns, in standard layout and without copying.
///
/// ```
/// let scores = tears_core::recommender::scores_from_vec(vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6], 2, 3)?;
/// assert_eq!(scores.dim(), (2, 3));
/// assert_eq!(scores[[1, 0]], 0.4);
/// assert!(tears_core::recommender::scores_from_vec(vec![0.0; 5], 2, 3).is_err());
/// # Ok::<(), tears_core::ModelError>(())
/// ```
///
/// # Errors
/// [`tears_metrics::MetricsError::SizeMismatch`] when `scores.len() != rows * n_items`.
pub fn scores_from_vec(scores: Vec<f32>, rows: usize, n_items: usize) -> Result<Array2<f32>> {
    let found = scores.len();
    let mismatch = |expected: usize| tears_metrics::MetricsError::SizeMismatch { what: "scores", expected, found };
    let expected = rows.checked_mul(n_items).ok_or_else(|| mismatch(usize::MAX))?;
    if found != expected {
        return Err(mismatch(expected).into());
    }
    Ok(Array2::from_shape_vec((rows, n_items), scores).map_err(|_| mismatch(expected))?)
}

/// Checks that there is one profile slot per fold-in row.
///
/// # Errors
/// [`tears_metrics::MetricsError::SizeMismatch`] otherwise.
pub fn check_profiles(foldin: &UserRows, profiles: &[Option<&Profile>]) -> Result<()> {
    if profiles.len() != foldin.len() {
        return Err(tears_metrics::MetricsError::SizeMismatch {
            what: "profiles",
            expected: foldin.len(),
            found: profiles.len(),
        }
        .into());
    }
    Ok(())
}

/// Fitting and loading: the constructors of a [`Recommender`].
pub trait Fit: Recommender + Sized {
    /// The training configuration.
    type Config;

    /// Fits the model on `split.train` (selecting hyper-parameters on `split.validation` where
    /// the model does), with every random draw seeded by `seed`.
    ///
    /// # Errors
    /// Invalid configuration, a numerical failure, a resource limit.
    fn fit(split: &Split, config: &Self::Config, seed: u64) -> Result<Self>;

    /// Loads the weights of a model saved with [`save_model`] from `dir`, given its manifest.
    ///
    /// # Errors
    /// Missing or malformed files.
    fn load_weights(dir: &Path, manifest: &Manifest) -> Result<Self>;
}

/// The description of a saved model (`manifest.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version ([`MANIFEST_FORMAT`]).
    pub format: u32,
    /// The model kind ([`Recommender::kind`]).
    pub kind: String,
    /// Hyper-parameters ([`Recommender::hyper_parameters`]).
    pub hyper_parameters: serde_json::Value,
    /// The dataset name of the training split.
    pub dataset: String,
    /// The training split's protocol.
    pub protocol: String,
    /// [`Split::vocabulary_hash`] of the training split, as 16 hex digits.
    pub vocabulary_hash: String,
    /// Number of items.
    pub n_items: usize,
    /// Positivity threshold of the training split.
    pub positive_above: f32,
    /// The seed given to [`Fit::fit`].
    pub seed: u64,
    /// Wall-clock seconds spent fitting, when known.
    pub fit_seconds: Option<f64>,
}

/// The item table of a model directory: the vocabulary's items (id, title, year, genres, tags)
/// in column order, so that a model directory can serve recommendations without its split.
pub const ITEMS_FILE: &str = "items.json";

/// The hex form of a vocabulary hash used in manifests.
///
/// ```
/// assert_eq!(tears_core::recommender::hash_hex(255), "00000000000000ff");
/// ```
pub fn hash_hex(hash: u64) -> String {
    format!("{hash:016x}")
}

impl Manifest {
    /// A manifest for `model` trained on `split`.
    pub fn new(model: &dyn Recommender, split: &Split, seed: u64, fit_seconds: Option<f64>) -> Self {
        Manifest {
            format: MANIFEST_FORMAT,
            kind: model.kind().to_string(),
            hyper_parameters: model.hyper_parameters(),
            dataset: split.meta.dataset.clone(),
            protocol: split.meta.protocol.clone(),
            vocabulary_hash: hash_hex(split.vocabulary_hash()),
            n_items: model.n_items(),
            positive_above: split.meta.positive_above,
            seed,
            fit_seconds,
        }
    }

    /// The manifest path in `dir`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(MANIFEST_FILE)
    }

    /// Reads `dir/manifest.json`.
    ///
    /// # Errors
    /// A missing file, malformed JSON, or an unsupported format version.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = Self::path(dir);
        let bytes = std::fs::read(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ModelError::Malformed {
                    path: path.clone(),
                    message: "not found: not a model directory (write one with `tears train`)".into(),
                }
            } else {
                tears_data::DataError::io(&path, e).into()
            }
        })?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|source| ModelError::Json { path: path.clone(), source })?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(ModelError::Malformed {
                path,
                message: format!("manifest format {} is not supported (expected {MANIFEST_FORMAT})", manifest.format),
            });
        }
        Ok(manifest)
    }

    /// Writes `dir/manifest.json` atomically (creating `dir`).
    ///
    /// # Errors
    /// An I/O error naming the file.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let path = Self::path(dir);
        let json = serde_json::to_vec_pretty(self).map_err(|source| ModelError::Json { path: path.clone(), source })?;
        tears_data::io::write_atomic(&path, |w| {
            w.write_all(&json)?;
            w.write_all(b"\n")
        })?;
        Ok(())
    }

    /// Checks that the model was trained on `split`'s item vocabulary.
    ///
    /// # Errors
    /// [`ModelError::VocabularyMismatch`] naming both datasets and hashes.
    pub fn check_split(&self, dir: &Path, split: &Split) -> Result<()> {
        self.check_items(dir, &split.items, &split.meta.dataset)
    }

    /// Checks that `items` (named `source` in the error) are the vocabulary this model scores.
    ///
    /// # Errors
    /// [`ModelError::VocabularyMismatch`] when the item ids or their count differ.
    pub fn check_items(&self, dir: &Path, items: &[tears_data::Item], source: &str) -> Result<()> {
        let hash = hash_hex(tears_data::split::vocabulary_hash(items));
        if hash != self.vocabulary_hash || items.len() != self.n_items {
            return Err(ModelError::VocabularyMismatch(Box::new(crate::error::VocabularyMismatch {
                dir: dir.to_path_buf(),
                model_dataset: self.dataset.clone(),
                model_hash: self.vocabulary_hash.clone(),
                model_items: self.n_items,
                split_dataset: source.to_string(),
                split_hash: hash,
                split_items: items.len(),
            })));
        }
        Ok(())
    }
}

/// Saves `model` (trained on `split` with `seed`) into `dir`: its weights first, then the manifest.
///
/// ```
/// use tears_baselines::{load_model, Popularity};
/// use tears_core::{save_model, Recommender};
/// use tears_data::{prepare, DatasetName, PrepareOptions};
///
/// let split = prepare(DatasetName::Synthetic, &PrepareOptions::default())?.split;
/// let model = Popularity::fit_split(&split)?;
/// let dir = std::env::temp_dir().join(format!("tears-doc-pop-{}", std::process::id()));
/// save_model(&model, &split, 0, None, &dir)?;
/// let loaded = load_model(&dir, &split)?;
/// assert_eq!(loaded.score(&split.test.foldin)?, model.score(&split.test.foldin)?);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), tears_core::ModelError>(())
/// ```
///
/// # Errors
/// An I/O error naming the file.
pub fn save_model(
    model: &dyn Recommender,
    split: &Split,
    seed: u64,
    fit_seconds: Option<f64>,
    dir: &Path,
) -> Result<Manifest> {
    std::fs::create_dir_all(dir).map_err(|e| tears_data::DataError::io(dir, e))?;
    model.save_weights(dir)?;
    let items_path = dir.join(ITEMS_FILE);
    let items =
        serde_json::to_vec(&split.items).map_err(|source| ModelError::Json { path: items_path.clone(), source })?;
    tears_data::io::write_atomic(&items_path, |w| w.write_all(&items))?;
    let manifest = Manifest::new(model, split, seed, fit_seconds);
    manifest.write(dir)?;
    Ok(manifest)
}
