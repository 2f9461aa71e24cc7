//! EASE (Steck, WWW 2019): a closed-form item × item linear autoencoder.
//!
//! `G = XᵀX + λI` in f64 from the binary training matrix, `P = G⁻¹` by Cholesky (`faer`),
//! `B_ij = −P_ij / P_jj` for `i ≠ j` and `B_jj = 0` (negative weights are kept), and a user's
//! scores are `x_u B`. λ is chosen on validation NDCG@k (k = 20) from a small grid. The dense
//! matrices need `items² × 8` bytes each; above [`EaseConfig::memory_limit_bytes`] fitting is
//! refused with [`BaselineError::TooLarge`].

use std::path::Path;
use std::time::Instant;

use faer::{Mat, Side, linalg::solvers::DenseSolveCore};
use ndarray::Array2;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tears_data::{Interactions, Split, UserRows, Values};

use crate::evaluate::{EvalOptions, evaluate_model};
use crate::recommender::{Fit, Manifest, Recommender, scores_from_vec};
use crate::{BaselineError, Result};

/// Name of the weights file in a model directory: `items × items` little-endian f32, row-major
/// (row `i` holds the weights from item `i` to every item).
pub const EASE_WEIGHTS_FILE: &str = "ease.weights.f32";

/// The default λ grid searched on validation NDCG.
pub const DEFAULT_LAMBDAS: [f64; 10] =
    [50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10_000.0, 20_000.0, 50_000.0];

/// The default memory limit for the dense `items × items` matrices: 8 GiB.
pub const DEFAULT_MEMORY_LIMIT: u64 = 8 << 30;

/// Configuration of [`Ease::fit`].
///
/// ```
/// use tears_baselines::EaseConfig;
/// let config = EaseConfig { lambdas: vec![300.0], ..EaseConfig::default() };
/// assert_eq!(config.select_k, 20);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EaseConfig {
    /// λ values to try; with one value it is used without looking at validation users.
    pub lambdas: Vec<f64>,
    /// Refuse to fit when `items² × 8` bytes exceed this.
    pub memory_limit_bytes: u64,
    /// λ is chosen on validation NDCG at this cut-off.
    pub select_k: usize,
    /// Users scored at once during λ selection.
    pub batch_size: usize,
}

impl Default for EaseConfig {
    fn default() -> Self {
        EaseConfig {
            lambdas: DEFAULT_LAMBDAS.to_vec(),
            memory_limit_bytes: DEFAULT_MEMORY_LIMIT,
            select_k: 20,
            batch_size: 1024,
        }
    }
}

/// Checks that the dense `n_items × n_items` f64 matrix (`n_items² × 8` bytes) fits in `limit`.
///
/// ```
/// use tears_baselines::ease::check_memory;
/// assert!(check_memory(1000, 8 << 30).is_ok());
/// assert!(check_memory(1000, 1 << 20).is_err()); // 8 MB > 1 MiB
/// ```
///
/// # Errors
/// [`BaselineError::TooLarge`].
pub fn check_memory(n_items: usize, limit: u64) -> Result<()> {
    let bytes = (n_items as u128) * (n_items as u128) * 8;
    if bytes > limit as u128 {
        return Err(BaselineError::TooLarge { items: n_items, bytes, limit });
    }
    Ok(())
}

/// The Gram matrix `XᵀX` of `x` in f64, dense row-major `n_items × n_items` (symmetric).
/// Computed from the sparse rows, in parallel over blocks of matrix rows.
///
/// ```
/// use tears_baselines::ease::gram_matrix;
/// use tears_data::{Interactions, Values, split::{Rating, UserRows}};
/// let r = |item| Rating { item, rating: 5.0, timestamp: 0 };
/// let mut rows = UserRows::new();
/// rows.push(1, [r(0), r(1)]);
/// rows.push(2, [r(1)]);
/// let x = Interactions::from_rows(&rows, 2, Values::Binary { positive_above: 3.5 })?;
/// assert_eq!(gram_matrix(&x), vec![1.0, 1.0, 1.0, 2.0]);
/// # Ok::<(), tears_data::DataError>(())
/// ```
pub fn gram_matrix(x: &Interactions) -> Vec<f64> {
    let n = x.n_items();
    let mut g = vec![0.0f64; n * n];
    if n == 0 {
        return g;
    }
    let block = n.div_ceil(64).max(1);
    g.par_chunks_mut(block * n).enumerate().for_each(|(b, chunk)| {
        let lo = b * block;
        let hi = lo + chunk.len() / n;
        for r in 0..x.n_rows() {
            let items = x.row_items(r);
            let values = x.row_values(r);
            let start = items.partition_point(|&i| i < lo);
            let end = items.partition_point(|&i| i < hi);
            for p in start..end {
                let (i, vi) = (items[p], values[p] as f64);
                let row = &mut chunk[(i - lo) * n..(i - lo + 1) * n];
                for (&j, &vj) in items.iter().zip(values) {
                    row[j] += vi * vj as f64;
                }
            }
        }
    });
    g
}

/// EASE weights from a Gram matrix: `P = (G + λI)⁻¹` by Cholesky, `B_ij = −P_ij / P_jj`,
/// `B_jj = 0`. `gram` is dense row-major `n × n`; the result is row-major `n × n` in f64.
///
/// ```
/// use tears_baselines::ease::ease_weights;
/// // G = [[2, 1], [1, 2]], λ = 1: P = [[3, -1], [-1, 3]] / 8, B_01 = -P_01 / P_11 = 1/3
/// let b = ease_weights(&[2.0, 1.0, 1.0, 2.0], 2, 1.0)?;
/// assert_eq!(b[0], 0.0);
/// assert!((b[1] - 1.0 / 3.0).abs() < 1e-12);
/// # Ok::<(), tears_baselines::BaselineError>(())
/// ```
///
/// # Errors
/// [`BaselineError::Config`] for a wrong size or a negative or non-finite λ,
/// [`BaselineError::Numerical`] when `G + λI` is not positive definite.
pub fn ease_weights(gram: &[f64], n: usize, lambda: f64) -> Result<Vec<f64>> {
    if gram.len() != n * n {
        return Err(BaselineError::Config(format!("Gram matrix has {} entries, expected {n}²", gram.len())));
    }
    if !(lambda.is_finite() && lambda >= 0.0) {
        return Err(BaselineError::Config(format!("lambda must be finite and non-negative, got {lambda}")));
    }
    // Llt::new copies the lower triangle, so this matrix is read once.
    let started = Instant::now();
    let g = Mat::<f64>::from_fn(n, n, |i, j| gram[i * n + j] + if i == j { lambda } else { 0.0 });
    let llt = g.llt(Side::Lower).map_err(|e| {
        BaselineError::Numerical(format!(
            "G + {lambda}·I is not positive definite (Cholesky: {e}); use a larger lambda"
        ))
    })?;
    drop(g);
    let factored = started.elapsed().as_secs_f64();
    let p = llt.inverse();
    drop(llt);
    let inverted = started.elapsed().as_secs_f64();
    let diag: Vec<f64> = (0..n).map(|j| p[(j, j)]).collect();
    let mut b = vec![0.0f64; n * n];
    // P is symmetric: row i of B is −P[:, i] / diag, a contiguous column of faer's column-major P.
    b.par_chunks_mut(n.max(1)).enumerate().try_for_each(|(i, row)| {
        let col = p.col(i);
        for (j, out) in row.iter_mut().enumerate() {
            let v = if i == j { 0.0 } else { -col[j] / diag[j] };
            if !v.is_finite() {
                return Err(BaselineError::Numerical(format!("non-finite EASE weight B[{i}, {j}] at lambda {lambda}")));
            }
            *out = v;
        }
        Ok(())
    })?;
    tracing::debug!(
        n,
        lambda,
        cholesky = factored,
        inverse = inverted - factored,
        weights = started.elapsed().as_secs_f64() - inverted,
        "EASE weights (seconds)"
    );
    Ok(b)
}

/// One λ tried during selection and its validation NDCG.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LambdaTrial {
    /// The λ.
    pub lambda: f64,
    /// Validation NDCG@`select_k` (absent when only one λ was given).
    pub validation_ndcg: Option<f64>,
    /// Seconds to invert and build the weights at this λ.
    pub seconds: f64,
}

/// A fitted EASE model.
///
/// ```
/// use tears_baselines::{Ease, EaseConfig, Fit, Recommender};
/// use tears_data::{prepare, DatasetName, PrepareOptions};
///
/// let split = prepare(DatasetName::Synthetic, &PrepareOptions::default())?.split;
/// let model = Ease::fit(&split, &EaseConfig { lambdas: vec![100.0, 500.0], ..EaseConfig::default() }, 0)?;
/// assert!([100.0, 500.0].contains(&model.lambda()));
/// assert_eq!(model.weight(3, 3), 0.0);
/// let scores = model.score(&split.test.foldin)?;
/// assert_eq!(scores.dim(), (split.test.len(), split.n_items()));
/// # Ok::<(), tears_baselines::BaselineError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Ease {
    n_items: usize,
    lambda: f64,
    positive_above: f32,
    weights: Vec<f32>,
    trials: Vec<LambdaTrial>,
    select_k: usize,
}

impl Ease {
    /// A model from f64 weights (row-major `n_items × n_items`, as [`ease_weights`] returns).
    ///
    /// # Errors
    /// [`BaselineError::Config`] when `weights.len() != n_items²`.
    pub fn from_weights(weights: &[f64], n_items: usize, lambda: f64, positive_above: f32) -> Result<Self> {
        if weights.len() != n_items * n_items {
            return Err(BaselineError::Config(format!(
                "{} weights given for {n_items} items (expected {})",
                weights.len(),
                n_items * n_items
            )));
        }
        Ok(Ease {
            n_items,
            lambda,
            positive_above,
            weights: weights.iter().map(|&w| w as f32).collect(),
            trials: Vec::new(),
            select_k: 20,
        })
    }

    /// The λ in use.
    pub fn lambda(&self) -> f64 {
        self.lambda
    }

    /// The λ values tried during fitting and their validation NDCG.
    pub fn trials(&self) -> &[LambdaTrial] {
        &self.trials
    }

    /// The weight `B[i, j]` from item `i` to item `j` (0 out of range).
    pub fn weight(&self, i: usize, j: usize) -> f32 {
        if i >= self.n_items || j >= self.n_items {
            return 0.0;
        }
        self.weights[i * self.n_items + j]
    }

    /// All weights, row-major `n_items × n_items`.
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }
}

impl Recommender for Ease {
    fn kind(&self) -> &str {
        "ease"
    }

    fn n_items(&self) -> usize {
        self.n_items
    }

    fn hyper_parameters(&self) -> serde_json::Value {
        serde_json::json!({
            "lambda": self.lambda,
            "select_k": self.select_k,
            "trials": self.trials,
            "weights_file": EASE_WEIGHTS_FILE,
            "weights_dtype": "f32-le",
            "weights_shape": [self.n_items, self.n_items],
        })
    }

    fn score(&self, foldin: &UserRows) -> Result<Array2<f32>> {
        let n = self.n_items;
        let x = Interactions::from_rows(foldin, n, Values::Binary { positive_above: self.positive_above })?;
        let mut out = vec![0.0f32; foldin.len() * n];
        if n == 0 {
            return scores_from_vec(out, foldin.len(), n);
        }
        out.par_chunks_mut(n).enumerate().for_each(|(r, row)| {
            for (&i, &v) in x.row_items(r).iter().zip(x.row_values(r)) {
                let w = &self.weights[i * n..(i + 1) * n];
                for (o, &b) in row.iter_mut().zip(w) {
                    *o += v * b;
                }
            }
        });
        scores_from_vec(out, foldin.len(), n)
    }

    fn save_weights(&self, dir: &Path) -> Result<()> {
        tears_data::io::write_atomic(&dir.join(EASE_WEIGHTS_FILE), |w| {
            let mut buf = Vec::with_capacity(self.n_items * 4);
            for row in self.weights.chunks(self.n_items.max(1)) {
                buf.clear();
                for &x in row {
                    buf.extend_from_slice(&x.to_le_bytes());
                }
                w.write_all(&buf)?;
            }
            Ok(())
        })?;
        Ok(())
    }
}

impl Fit for Ease {
    type Config = EaseConfig;

    /// Fits on the binary training matrix; with several λ, keeps the one with the best
    /// validation NDCG@`select_k` (the first on ties). EASE is deterministic: `seed` is recorded
    /// only.
    fn fit(split: &Split, config: &EaseConfig, _seed: u64) -> Result<Self> {
        let n = split.n_items();
        check_memory(n, config.memory_limit_bytes)?;
        if config.lambdas.is_empty() {
            return Err(BaselineError::Config("the lambda grid is empty".into()));
        }
        if config.lambdas.len() > 1 && split.validation.is_empty() {
            return Err(BaselineError::Config("choosing lambda needs validation users, and the split has none".into()));
        }
        let positive_above = split.meta.positive_above;
        let x = Interactions::from_rows(&split.train, n, Values::Binary { positive_above })?;
        let started = Instant::now();
        let gram = gram_matrix(&x);
        tracing::info!(items = n, seconds = started.elapsed().as_secs_f64(), "EASE Gram matrix");
        let options = EvalOptions { ks: vec![config.select_k], batch_size: config.batch_size };
        let mut best: Option<(f64, Ease)> = None;
        let mut trials = Vec::with_capacity(config.lambdas.len());
        for &lambda in &config.lambdas {
            let started = Instant::now();
            let b = ease_weights(&gram, n, lambda)?;
            let model = Ease::from_weights(&b, n, lambda, positive_above)?;
            drop(b);
            let seconds = started.elapsed().as_secs_f64();
            if config.lambdas.len() == 1 {
                trials.push(LambdaTrial { lambda, validation_ndcg: None, seconds });
                best = Some((0.0, model));
                break;
            }
            let report = evaluate_model(&model, &split.validation, &options)?;
            let ndcg = report.at(config.select_k).map(|a| a.ndcg.mean).unwrap_or(0.0);
            tracing::info!(lambda, ndcg, seconds, "EASE lambda trial");
            trials.push(LambdaTrial { lambda, validation_ndcg: Some(ndcg), seconds });
            if best.as_ref().is_none_or(|(score, _)| ndcg > *score) {
                best = Some((ndcg, model));
            }
        }
        let (_, mut model) = best.ok_or_else(|| BaselineError::Config("the lambda grid is empty".into()))?;
        model.trials = trials;
        model.select_k = config.select_k;
        Ok(model)
    }

    fn load_weights(dir: &Path, manifest: &Manifest) -> Result<Self> {
        let n = manifest.n_items;
        let path = dir.join(EASE_WEIGHTS_FILE);
        let bytes = std::fs::read(&path).map_err(|e| tears_data::DataError::io(&path, e))?;
        let expected = n * n * 4;
        if bytes.len() != expected {
            return Err(BaselineError::Malformed {
                path,
                message: format!("{} bytes, expected {expected} ({n} × {n} f32)", bytes.len()),
            });
        }
        let weights: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let hp = &manifest.hyper_parameters;
        let malformed = |what: &str| BaselineError::Malformed {
            path: Manifest::path(dir),
            message: format!("hyper_parameters.{what} is missing or malformed"),
        };
        let lambda = hp.get("lambda").and_then(|v| v.as_f64()).ok_or_else(|| malformed("lambda"))?;
        let select_k = hp.get("select_k").and_then(|v| v.as_u64()).ok_or_else(|| malformed("select_k"))? as usize;
        let trials: Vec<LambdaTrial> = match hp.get("trials") {
            Some(t) => serde_json::from_value(t.clone()).map_err(|_| malformed("trials"))?,
            None => Vec::new(),
        };
        Ok(Ease { n_items: n, lambda, positive_above: manifest.positive_above, weights, trials, select_k })
    }
}
