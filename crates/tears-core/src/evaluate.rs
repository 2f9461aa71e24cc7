//! Batched evaluation of a [`Recommender`] on validation or test users: score the fold-in rows in
//! batches, mask every fold-in item as seen, rank, and aggregate Recall@k, plain recall@k and
//! NDCG@k with `tears-metrics`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tears_data::{EvalSet, EvalUsers, Interactions, Split, UserRows, Values};
use tears_metrics::{AccuracyAtK, AccuracyReport, Aggregate, DEFAULT_KS, Evaluator, MetricsError, UserAccuracy};

use crate::error::{ModelError, Result};
use crate::profile::{MissingProfile, Profiles, resolve};
use crate::recommender::Recommender;

/// Options of [`evaluate_model`].
///
/// ```
/// let options = tears_core::EvalOptions::default();
/// assert_eq!(options.ks, vec![10, 20, 50, 100]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalOptions {
    /// Cut-offs.
    pub ks: Vec<usize>,
    /// Users scored at once.
    pub batch_size: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions { ks: DEFAULT_KS.to_vec(), batch_size: 1024 }
    }
}

/// Rows `start..end` of `rows` as their own [`UserRows`].
///
/// ```
/// use tears_core::evaluate::slice_rows;
/// use tears_data::split::{Rating, UserRows};
/// let mut rows = UserRows::new();
/// for u in 0..3 { rows.push(u, [Rating { item: u as u32, rating: 5.0, timestamp: 0 }]); }
/// let s = slice_rows(&rows, 1..3);
/// assert_eq!(s.users, vec![1, 2]);
/// assert_eq!(s.row(0)[0].item, 1);
/// ```
pub fn slice_rows(rows: &UserRows, range: std::ops::Range<usize>) -> UserRows {
    let mut out = UserRows::new();
    for r in range.start.min(rows.len())..range.end.min(rows.len()) {
        out.push(rows.users[r], rows.row(r).iter().copied());
    }
    out
}

/// Scores `users` with `model` in batches, masks each user's fold-in items (every fold-in rating,
/// positive or not, is a seen item) and reports accuracy at `options.ks`. Users without
/// held-out items are excluded (counted in `excluded`).
///
/// ```
/// use tears_baselines::Popularity;
/// use tears_core::{evaluate_model, EvalOptions};
/// use tears_data::{prepare, DatasetName, PrepareOptions};
///
/// let split = prepare(DatasetName::Synthetic, &PrepareOptions::default())?.split;
/// let model = Popularity::fit_split(&split)?;
/// let report = evaluate_model(&model, &split.test, &EvalOptions::default())?;
/// let at20 = report.at(20).expect("k = 20");
/// assert!(at20.ndcg.mean > 0.0 && at20.ndcg.counted > 0);
/// # Ok::<(), tears_core::ModelError>(())
/// ```
///
/// # Errors
/// A zero batch size or cut-off, a score matrix of the wrong shape, an item out of range.
pub fn evaluate_model(model: &dyn Recommender, users: &EvalUsers, options: &EvalOptions) -> Result<AccuracyReport> {
    evaluate_with_profiles(model, users, None, MissingProfile::Error, options)
}

/// Rows `indices` of `rows` as their own [`UserRows`], in that order.
pub fn select_rows(rows: &UserRows, indices: &[usize]) -> UserRows {
    let mut out = UserRows::new();
    for &r in indices {
        if r < rows.len() {
            out.push(rows.users[r], rows.row(r).iter().copied());
        }
    }
    out
}

/// [`evaluate_model`] for models that read profiles (summaries, genre vectors): each user's
/// profile comes from `profiles`, and users without a required one are handled by `missing`.
///
/// # Errors
/// As [`evaluate_model`]; [`ModelError::MissingProfiles`] when a required profile is missing
/// under [`MissingProfile::Error`].
pub fn evaluate_with_profiles(
    model: &dyn Recommender,
    users: &EvalUsers,
    profiles: Option<&Profiles>,
    missing: MissingProfile,
    options: &EvalOptions,
) -> Result<AccuracyReport> {
    evaluate_users_with_profiles(model, users, profiles, missing, options).map(|e| e.report)
}

/// Each evaluated user's accuracy beside the aggregate report: what a paired comparison of two
/// models (`tears_metrics::paired`) and anyone redoing it need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserEvaluation {
    /// The aggregates, as [`evaluate_with_profiles`] returns them.
    pub report: AccuracyReport,
    /// The cut-offs of `per_user`'s entries, ascending.
    pub ks: Vec<usize>,
    /// Source ids of the users scored, in row order (users without a required profile left out
    /// under [`MissingProfile::Skip`]).
    pub users: Vec<u64>,
    /// `per_user[u][j]`: user `users[u]`'s accuracy at `ks[j]`; `None` without held-out items.
    pub per_user: Vec<Vec<Option<UserAccuracy>>>,
}

/// A per-user metric of [`UserEvaluation::values`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserMetric {
    /// Recall@k normalised by min(k, |held-out|).
    Recall,
    /// NDCG@k.
    Ndcg,
}

impl UserEvaluation {
    /// The same evaluation with its users in ascending id order and the report recomputed
    /// from the per-user values in that order: the form that does not depend on how users
    /// were listed or sharded, so that [`UserEvaluation::merge`] of shards equals the whole
    /// run's canonical form exactly.
    pub fn canonical(self) -> Self {
        let mut order: Vec<usize> = (0..self.users.len()).collect();
        order.sort_by_key(|&u| self.users[u]);
        let users: Vec<u64> = order.iter().map(|&u| self.users[u]).collect();
        let per_user: Vec<Vec<Option<UserAccuracy>>> =
            order.iter().map(|&u| self.per_user.get(u).cloned().unwrap_or_default()).collect();
        let report = report_of(&self.ks, &per_user);
        UserEvaluation { report, ks: self.ks, users, per_user }
    }

    /// Joins evaluations of disjoint sets of users (the shards of one batch job) into the
    /// [`canonical`](UserEvaluation::canonical) evaluation of all of them.
    ///
    /// ```
    /// use tears_baselines::Popularity;
    /// use tears_core::{evaluate_users_with_profiles, EvalOptions, MissingProfile, UserEvaluation};
    /// use tears_data::{prepare, DatasetName, PrepareOptions};
    ///
    /// let split = prepare(DatasetName::Synthetic, &PrepareOptions::default())?.split;
    /// let model = Popularity::fit_split(&split)?;
    /// let eval = |users: &tears_data::EvalUsers| {
    ///     evaluate_users_with_profiles(&model, users, None, MissingProfile::Error, &EvalOptions::default())
    /// };
    /// let whole = eval(&split.test)?.canonical();
    /// let odd = eval(&split.test.subset(|u| u % 2 == 1))?;
    /// let even = eval(&split.test.subset(|u| u % 2 == 0))?;
    /// assert_eq!(UserEvaluation::merge(vec![odd, even])?, whole);
    /// # Ok::<(), tears_core::ModelError>(())
    /// ```
    ///
    /// # Errors
    /// [`ModelError::Config`] when the parts were evaluated at different cut-offs or share a user.
    pub fn merge(parts: Vec<UserEvaluation>) -> Result<UserEvaluation> {
        let Some(ks) = parts.first().map(|p| p.ks.clone()) else {
            return Err(ModelError::Config("no evaluations to merge".into()));
        };
        let mut users = Vec::new();
        let mut per_user = Vec::new();
        for (i, part) in parts.into_iter().enumerate() {
            if part.ks != ks {
                return Err(ModelError::Config(format!(
                    "part {i} was evaluated at cut-offs {:?}, part 0 at {ks:?}",
                    part.ks
                )));
            }
            users.extend(part.users);
            per_user.extend(part.per_user);
        }
        let mut sorted = users.clone();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(ModelError::Config(format!("user {} is in more than one part", w[0])));
        }
        let report = report_of(&ks, &per_user);
        Ok(UserEvaluation { report, ks, users, per_user }.canonical())
    }

    /// Every user's `metric` at cut-off `k` (`None` for users without held-out items); `None`
    /// when `k` was not evaluated.
    ///
    /// ```
    /// use tears_baselines::Popularity;
    /// use tears_core::{evaluate_users_with_profiles, EvalOptions, MissingProfile, UserMetric};
    /// use tears_data::{prepare, DatasetName, PrepareOptions};
    ///
    /// let split = prepare(DatasetName::Synthetic, &PrepareOptions::default())?.split;
    /// let model = Popularity::fit_split(&split)?;
    /// let options = EvalOptions { ks: vec![20], ..EvalOptions::default() };
    /// let eval = evaluate_users_with_profiles(&model, &split.test, None, MissingProfile::Error, &options)?;
    /// let ndcg = eval.values(UserMetric::Ndcg, 20).expect("k = 20 evaluated");
    /// assert_eq!(ndcg.len(), split.test.users().len());
    /// let counted: Vec<f64> = ndcg.iter().flatten().copied().collect();
    /// let mean = counted.iter().sum::<f64>() / counted.len() as f64;
    /// assert!((mean - eval.report.at(20).expect("k = 20").ndcg.mean).abs() < 1e-12);
    /// # Ok::<(), tears_core::ModelError>(())
    /// ```
    pub fn values(&self, metric: UserMetric, k: usize) -> Option<Vec<Option<f64>>> {
        let j = self.ks.iter().position(|&x| x == k)?;
        Some(
            self.per_user
                .iter()
                .map(|row| {
                    row[j].map(|a| match metric {
                        UserMetric::Recall => a.recall,
                        UserMetric::Ndcg => a.ndcg,
                    })
                })
                .collect(),
        )
    }
}

/// [`evaluate_with_profiles`] that keeps each user's accuracy ([`UserEvaluation`]).
///
/// # Errors
/// As [`evaluate_with_profiles`].
pub fn evaluate_users_with_profiles(
    model: &dyn Recommender,
    users: &EvalUsers,
    profiles: Option<&Profiles>,
    missing: MissingProfile,
    options: &EvalOptions,
) -> Result<UserEvaluation> {
    if options.batch_size == 0 {
        return Err(ModelError::Config("batch size must be at least 1".into()));
    }
    if users.heldout.len() != users.foldin.len() {
        return Err(MetricsError::SizeMismatch {
            what: "held-out rows",
            expected: users.foldin.len(),
            found: users.heldout.len(),
        }
        .into());
    }
    let n = model.n_items();
    let picked = resolve(profiles, users.users(), model.profile_kind(), missing)?;
    let foldin = select_rows(&users.foldin, &picked.rows);
    let heldout = select_rows(&users.heldout, &picked.rows);
    let seen = Interactions::from_rows(&foldin, n, Values::Seen)?;
    let heldout = Interactions::from_rows(&heldout, n, Values::Seen)?;
    let mut ev = Evaluator::new(&options.ks)?;
    let mut per_user = Vec::with_capacity(foldin.len());
    let mut start = 0;
    while start < foldin.len() {
        let end = (start + options.batch_size).min(foldin.len());
        let batch = slice_rows(&foldin, start..end);
        let batch_profiles: Vec<_> = picked.profiles[start..end].iter().map(Option::as_ref).collect();
        let scores = model.score_with_profiles(&batch, &batch_profiles)?;
        check_shape(&scores, end - start, n)?;
        // The trait promises standard layout; a model that breaks the promise costs a copy (in
        // logical, row-major order), not an error.
        let flat: std::borrow::Cow<'_, [f32]> = match scores.as_slice() {
            Some(flat) => flat.into(),
            None => scores.iter().copied().collect::<Vec<f32>>().into(),
        };
        let matrix = tears_metrics::ScoreMatrix::new(&flat, end - start, n)?;
        let seen_lists: Vec<&[usize]> = (start..end).map(|r| seen.row_items(r)).collect();
        let heldout_lists: Vec<&[usize]> = (start..end).map(|r| heldout.row_items(r)).collect();
        per_user.extend(ev.add_users(&matrix, &seen_lists, &heldout_lists)?);
        start = end;
    }
    Ok(UserEvaluation { report: ev.report(), ks: ev.ks().to_vec(), users: foldin.users.clone(), per_user })
}

/// The aggregate report of per-user accuracies (`per_user[u][j]` at `ks[j]`), in row order.
fn report_of(ks: &[usize], per_user: &[Vec<Option<UserAccuracy>>]) -> AccuracyReport {
    let column = |j: usize, f: fn(&UserAccuracy) -> f64| {
        Aggregate::from_values(per_user.iter().map(|row| row.get(j).copied().flatten().as_ref().map(f)))
    };
    AccuracyReport {
        results: ks
            .iter()
            .enumerate()
            .map(|(j, &k)| AccuracyAtK {
                k,
                recall: column(j, |a| a.recall),
                plain_recall: column(j, |a| a.plain_recall),
                ndcg: column(j, |a| a.ndcg),
            })
            .collect(),
    }
}

/// Checks that a score matrix is `[rows, n_items]`.
fn check_shape(scores: &ndarray::Array2<f32>, rows: usize, n_items: usize) -> Result<()> {
    let (found_rows, found_items) = scores.dim();
    if found_rows != rows {
        return Err(MetricsError::SizeMismatch { what: "score rows", expected: rows, found: found_rows }.into());
    }
    if found_items != n_items {
        return Err(MetricsError::SizeMismatch { what: "score columns", expected: n_items, found: found_items }.into());
    }
    Ok(())
}

/// A mean and its standard error, as written in evaluation JSON.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanStderr {
    /// Mean over counted users.
    pub mean: f64,
    /// Standard error (population std / sqrt(n)).
    pub stderr: f64,
}

/// The evaluation JSON written by `tears evaluate --json`:
/// `{"model", "dataset", "set", "users", "excluded", "metrics": {"recall@K": {"mean", "stderr"}, ...}}`
/// with keys `recall@K`, `plain_recall@K` and `ndcg@K` for every cut-off.
///
/// ```
/// use tears_baselines::Popularity;
/// use tears_core::{evaluate_split, EvalOptions, EvalSummary};
/// use tears_data::{prepare, DatasetName, EvalSet, PrepareOptions};
///
/// let split = prepare(DatasetName::Synthetic, &PrepareOptions::default())?.split;
/// let model = Popularity::fit_split(&split)?;
/// let options = EvalOptions { ks: vec![20], ..EvalOptions::default() };
/// let report = evaluate_split(&model, &split, EvalSet::Test, &options)?;
/// let summary = EvalSummary::new("pop", &split.meta.dataset, EvalSet::Test, &report);
/// assert!(summary.metrics.contains_key("plain_recall@20"));
/// # Ok::<(), tears_core::ModelError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalSummary {
    /// Model kind.
    pub model: String,
    /// Dataset name of the split.
    pub dataset: String,
    /// `"test"` or `"validation"`.
    pub set: String,
    /// Users counted (with held-out items).
    pub users: usize,
    /// Users excluded (no held-out items).
    pub excluded: usize,
    /// `recall@K`, `plain_recall@K`, `ndcg@K`.
    pub metrics: BTreeMap<String, MeanStderr>,
    /// The mixing weight of a fused model (1 = profile only), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
}

impl EvalSummary {
    /// The summary of `report`.
    pub fn new(model: &str, dataset: &str, set: EvalSet, report: &AccuracyReport) -> Self {
        let mut metrics = BTreeMap::new();
        let (mut users, mut excluded) = (0, 0);
        for r in &report.results {
            users = r.ndcg.counted;
            excluded = r.ndcg.excluded;
            for (name, a) in [("recall", r.recall), ("plain_recall", r.plain_recall), ("ndcg", r.ndcg)] {
                metrics.insert(format!("{name}@{}", r.k), MeanStderr { mean: a.mean, stderr: a.std_err });
            }
        }
        EvalSummary {
            model: model.to_string(),
            dataset: dataset.to_string(),
            set: set.name().to_string(),
            users,
            excluded,
            metrics,
            alpha: None,
        }
    }
}

/// [`evaluate_model`] on `split`'s validation or test users, checking that the model scores the
/// split's items.
///
/// # Errors
/// [`MetricsError::SizeMismatch`] when the model's item count differs from the split's; as
/// [`evaluate_model`].
pub fn evaluate_split(
    model: &dyn Recommender,
    split: &Split,
    set: EvalSet,
    options: &EvalOptions,
) -> Result<AccuracyReport> {
    if model.n_items() != split.n_items() {
        return Err(MetricsError::SizeMismatch {
            what: "model items",
            expected: split.n_items(),
            found: model.n_items(),
        }
        .into());
    }
    evaluate_model(model, split.eval(set), options)
}
