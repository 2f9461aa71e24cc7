//! Most-popular: every user gets the same scores, the number of training users with a positive
//! rating on each item.

use std::path::Path;

use ndarray::Array2;
use serde::{Deserialize, Serialize};
use tears_data::{Interactions, Split, UserRows, Values};

use crate::recommender::{Fit, Manifest, Recommender, scores_from_vec};
use crate::{BaselineError, Result};

/// Name of the counts file in a model directory.
pub const POPULARITY_FILE: &str = "popularity.json";

#[derive(Serialize, Deserialize)]
struct CountsFile {
    counts: Vec<f32>,
}

/// The most-popular baseline.
///
/// ```
/// use tears_baselines::{Popularity, Recommender};
/// use tears_data::{prepare, DatasetName, PrepareOptions};
///
/// let split = prepare(DatasetName::Synthetic, &PrepareOptions::default())?.split;
/// let model = Popularity::fit_split(&split)?;
/// let total: f32 = model.counts().iter().sum();
/// assert_eq!(total as usize, split.meta.counts.train_interactions);
/// # Ok::<(), tears_baselines::BaselineError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Popularity {
    counts: Vec<f32>,
}

impl Popularity {
    /// Counts the positives of each item among `split`'s training users.
    ///
    /// # Errors
    /// An item index out of range in the training rows.
    pub fn fit_split(split: &Split) -> Result<Self> {
        let x = Interactions::from_rows(
            &split.train,
            split.n_items(),
            Values::Binary { positive_above: split.meta.positive_above },
        )?;
        Ok(Popularity { counts: x.item_counts().into_iter().map(|c| c as f32).collect() })
    }

    /// A model from item counts (the scores of every user).
    pub fn from_counts(counts: Vec<f32>) -> Self {
        Popularity { counts }
    }

    /// The item counts.
    pub fn counts(&self) -> &[f32] {
        &self.counts
    }
}

impl Recommender for Popularity {
    fn kind(&self) -> &str {
        "pop"
    }

    fn n_items(&self) -> usize {
        self.counts.len()
    }

    fn hyper_parameters(&self) -> serde_json::Value {
        serde_json::json!({ "counts_file": POPULARITY_FILE })
    }

    fn score(&self, foldin: &UserRows) -> Result<Array2<f32>> {
        let n = self.counts.len();
        if let Some(r) = foldin.entries().iter().find(|r| r.item as usize >= n) {
            return Err(BaselineError::Config(format!("fold-in item index {} out of range for {n} items", r.item)));
        }
        let mut out = Vec::with_capacity(foldin.len() * n);
        for _ in 0..foldin.len() {
            out.extend_from_slice(&self.counts);
        }
        scores_from_vec(out, foldin.len(), n)
    }

    fn save_weights(&self, dir: &Path) -> Result<()> {
        let path = dir.join(POPULARITY_FILE);
        let json = serde_json::to_vec(&CountsFile { counts: self.counts.clone() })
            .map_err(|source| BaselineError::Json { path: path.clone(), source })?;
        tears_data::io::write_atomic(&path, |w| w.write_all(&json))?;
        Ok(())
    }
}

impl Fit for Popularity {
    type Config = ();

    /// Counts positives; deterministic, `seed` is recorded only.
    fn fit(split: &Split, _config: &(), _seed: u64) -> Result<Self> {
        Popularity::fit_split(split)
    }

    fn load_weights(dir: &Path, manifest: &Manifest) -> Result<Self> {
        let path = dir.join(POPULARITY_FILE);
        let bytes = std::fs::read(&path).map_err(|e| tears_data::DataError::io(&path, e))?;
        let file: CountsFile =
            serde_json::from_slice(&bytes).map_err(|source| BaselineError::Json { path: path.clone(), source })?;
        if file.counts.len() != manifest.n_items {
            return Err(BaselineError::Malformed {
                path,
                message: format!("{} counts for {} items", file.counts.len(), manifest.n_items),
            });
        }
        Ok(Popularity { counts: file.counts })
    }
}
