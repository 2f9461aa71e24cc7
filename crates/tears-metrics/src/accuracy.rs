//! Recall@k (normalised and plain) and NDCG@k, per list, per user and aggregated.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::aggregate::{Accumulator, Aggregate};
use crate::error::{MetricsError, Result};
use crate::lists::{ItemLists, validate};
use crate::scores::ScoreMatrix;
use crate::topk::{TopKLists, top_k};

/// The default cut-offs: 10, 20, 50 and 100 (the paper reports 20 and 50).
pub const DEFAULT_KS: [usize; 4] = [10, 20, 50, 100];

/// The rank discount `1 / log2(r + 1)` of the 1-based rank `r`.
///
/// ```
/// assert_eq!(tears_metrics::discount(1), 1.0);
/// assert!((tears_metrics::discount(3) - 0.5).abs() < 1e-15);
/// ```
pub fn discount(rank: usize) -> f64 {
    1.0 / ((rank + 1) as f64).log2()
}

/// `sum_{r=1..n} 1/log2(r + 1)`: the DCG of `n` relevant items at the top.
///
/// ```
/// assert!((tears_metrics::ideal_dcg(2) - (1.0 + 1.0 / 3f64.log2())).abs() < 1e-15);
/// ```
pub fn ideal_dcg(n: usize) -> f64 {
    (1..=n).map(discount).sum()
}

/// One user's accuracy at one cut-off.
///
/// ```
/// use tears_metrics::user_accuracy;
/// let acc = user_accuracy(&[5, 2, 9], &[2, 7], 3)?.expect("held-out items present");
/// assert_eq!((acc.hits, acc.n_heldout), (1, 2));
/// assert_eq!(acc.recall, 0.5);
/// # Ok::<(), tears_metrics::MetricsError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UserAccuracy {
    /// Held-out items among the top k.
    pub hits: usize,
    /// Distinct held-out items.
    pub n_heldout: usize,
    /// `hits / min(k, n_heldout)` (the VAE literature's Recall@k).
    pub recall: f64,
    /// `hits / n_heldout`.
    pub plain_recall: f64,
    /// DCG@k over the ideal DCG of `min(k, n_heldout)` hits.
    pub ndcg: f64,
}

/// Precomputed discounts and ideal DCGs up to a maximum cut-off.
struct Tables {
    /// `disc[r]` = discount of the 0-based rank `r`.
    disc: Vec<f64>,
    /// `ideal[n]` = ideal DCG of `n` hits.
    ideal: Vec<f64>,
}

impl Tables {
    fn new(kmax: usize) -> Self {
        let disc: Vec<f64> = (1..=kmax).map(discount).collect();
        let mut ideal = Vec::with_capacity(kmax + 1);
        ideal.push(0.0);
        let mut acc = 0.0;
        for d in &disc {
            acc += d;
            ideal.push(acc);
        }
        Tables { disc, ideal }
    }
}

/// Sorts and deduplicates `items` into `out`.
fn sorted_set(items: &[usize], out: &mut Vec<usize>) {
    out.clear();
    out.extend_from_slice(items);
    out.sort_unstable();
    out.dedup();
}

/// Accuracy at each of `ks` (ascending, `ks.last() <= tables` size) of `ranked` against the
/// sorted held-out set; `None` entries for an empty held-out set.
fn curves(
    ranked: &[usize],
    heldout_sorted: &[usize],
    ks: &[usize],
    tables: &Tables,
    out: &mut Vec<Option<UserAccuracy>>,
) {
    out.clear();
    let n_heldout = heldout_sorted.len();
    if n_heldout == 0 {
        out.extend(ks.iter().map(|_| None));
        return;
    }
    let finish = |k: usize, hits: usize, dcg: f64| {
        let m = k.min(n_heldout);
        Some(UserAccuracy {
            hits,
            n_heldout,
            recall: hits as f64 / m as f64,
            plain_recall: hits as f64 / n_heldout as f64,
            ndcg: dcg / tables.ideal[m],
        })
    };
    let (mut hits, mut dcg) = (0usize, 0.0f64);
    let mut next = 0;
    for (r, item) in ranked.iter().enumerate() {
        if next == ks.len() {
            break;
        }
        if heldout_sorted.binary_search(item).is_ok() {
            hits += 1;
            dcg += tables.disc[r];
        }
        while next < ks.len() && ks[next] == r + 1 {
            out.push(finish(ks[next], hits, dcg));
            next += 1;
        }
    }
    // Lists shorter than a cut-off: the remaining cut-offs see the whole list.
    while next < ks.len() {
        out.push(finish(ks[next], hits, dcg));
        next += 1;
    }
}

fn check_ranked(ranked: &[usize]) -> Result<()> {
    let mut sorted = ranked.to_vec();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(MetricsError::DuplicateItem { item: w[0] });
    }
    Ok(())
}

/// One user's accuracy at cut-off `k` of a ranked list (best first) against the held-out items;
/// `None` when there are no held-out items (the user is excluded, never a NaN).
///
/// Only the first `k` entries of `ranked` are read; a shorter list counts as is (the
/// denominators still use `k`). Repeated held-out items count once.
///
/// # Errors
/// [`MetricsError::ZeroK`] for `k = 0`; [`MetricsError::DuplicateItem`] when the first `k`
/// entries of `ranked` repeat an item.
pub fn user_accuracy(ranked: &[usize], heldout: &[usize], k: usize) -> Result<Option<UserAccuracy>> {
    if k == 0 {
        return Err(MetricsError::ZeroK);
    }
    let ranked = &ranked[..k.min(ranked.len())];
    check_ranked(ranked)?;
    let mut h = Vec::new();
    sorted_set(heldout, &mut h);
    let tables = Tables::new(k);
    let mut out = Vec::with_capacity(1);
    curves(ranked, &h, &[k], &tables, &mut out);
    Ok(out.pop().flatten())
}

/// Recall@k = |top-k ∩ held-out| / min(k, |held-out|) (the VAE literature's normalised recall);
/// `None` for an empty held-out set.
///
/// ```
/// use tears_metrics::recall_at_k;
/// // 2 of the 3 held-out items are in the top 2: 2 / min(2, 3) = 1.
/// assert_eq!(recall_at_k(&[4, 1, 0], &[1, 4, 7], 2)?, Some(1.0));
/// assert_eq!(recall_at_k(&[4, 1, 0], &[], 2)?, None);
/// # Ok::<(), tears_metrics::MetricsError>(())
/// ```
///
/// # Errors
/// As [`user_accuracy`].
pub fn recall_at_k(ranked: &[usize], heldout: &[usize], k: usize) -> Result<Option<f64>> {
    Ok(user_accuracy(ranked, heldout, k)?.map(|a| a.recall))
}

/// Plain recall@k = |top-k ∩ held-out| / |held-out| (as in libraries that do not normalise);
/// `None` for an empty held-out set.
///
/// ```
/// use tears_metrics::plain_recall_at_k;
/// assert_eq!(plain_recall_at_k(&[4, 1, 0], &[1, 4, 7, 8], 2)?, Some(0.5));
/// # Ok::<(), tears_metrics::MetricsError>(())
/// ```
///
/// # Errors
/// As [`user_accuracy`].
pub fn plain_recall_at_k(ranked: &[usize], heldout: &[usize], k: usize) -> Result<Option<f64>> {
    Ok(user_accuracy(ranked, heldout, k)?.map(|a| a.plain_recall))
}

/// NDCG@k with binary relevance: DCG = sum over ranks r = 1..k of 1[item_r held out] /
/// log2(r + 1), over the ideal DCG of min(k, |held-out|) hits; `None` for an empty held-out set.
///
/// ```
/// use tears_metrics::ndcg_at_k;
/// // one held-out item, found at rank 2: (1 / log2 3) / 1
/// let v = ndcg_at_k(&[0, 3, 5], &[3], 3)?.expect("non-empty");
/// assert!((v - 1.0 / 3f64.log2()).abs() < 1e-12);
/// # Ok::<(), tears_metrics::MetricsError>(())
/// ```
///
/// # Errors
/// As [`user_accuracy`].
pub fn ndcg_at_k(ranked: &[usize], heldout: &[usize], k: usize) -> Result<Option<f64>> {
    Ok(user_accuracy(ranked, heldout, k)?.map(|a| a.ndcg))
}

fn check_ks(ks: &[usize]) -> Result<Vec<usize>> {
    if ks.is_empty() {
        return Err(MetricsError::Config("no cut-off k given".to_string()));
    }
    if ks.contains(&0) {
        return Err(MetricsError::ZeroK);
    }
    let mut ks = ks.to_vec();
    ks.sort_unstable();
    ks.dedup();
    Ok(ks)
}

/// Per-user accuracy at each of `ks` (ascending, deduplicated) for ranked lists; one inner vector
/// per user with one entry per k, `None` for users without held-out items.
///
/// ```
/// use tears_metrics::{NoItems, ScoreMatrix, per_user_accuracy, top_k};
/// let scores = ScoreMatrix::new(&[0.9, 0.1, 0.5, /* user 1 */ 0.3, 0.2, 0.1], 2, 3)?;
/// let top = top_k(&scores, &NoItems(2), 2)?;
/// let heldout = vec![vec![2], vec![]];
/// let per_user = per_user_accuracy(&top, &heldout, &[1, 2])?;
/// assert_eq!(per_user[0][0].map(|a| a.recall), Some(0.0)); // top 1 is item 0
/// assert_eq!(per_user[0][1].map(|a| a.recall), Some(1.0)); // top 2 finds item 2
/// assert_eq!(per_user[1], vec![None, None]); // no held-out items: excluded
/// # Ok::<(), tears_metrics::MetricsError>(())
/// ```
///
/// # Errors
/// [`MetricsError::ZeroK`] / [`MetricsError::Config`] for bad cut-offs,
/// [`MetricsError::KTooLarge`] for a cut-off above the lists' `k`, and the size and range errors
/// of the held-out lists.
pub fn per_user_accuracy<H: ItemLists + ?Sized>(
    top: &TopKLists,
    heldout: &H,
    ks: &[usize],
) -> Result<Vec<Vec<Option<UserAccuracy>>>> {
    let ks = check_ks(ks)?;
    let kmax = ks.last().copied().unwrap_or(1);
    if kmax > top.k() {
        return Err(MetricsError::KTooLarge { k: kmax, available: top.k() });
    }
    validate(heldout, "held-out items", top.n_users(), top.n_items())?;
    let tables = Tables::new(kmax);
    Ok((0..top.n_users())
        .into_par_iter()
        .with_min_len(64)
        .map_init(Vec::new, |h, u| {
            sorted_set(heldout.list(u), h);
            let mut out = Vec::with_capacity(ks.len());
            curves(top.items(u), h, &ks, &tables, &mut out);
            out
        })
        .collect())
}

/// Aggregated accuracy at one cut-off.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AccuracyAtK {
    /// The cut-off.
    pub k: usize,
    /// Recall@k, normalised by min(k, |held-out|).
    pub recall: Aggregate,
    /// Plain recall@k, normalised by |held-out|. Never put in the same table as `recall`.
    pub plain_recall: Aggregate,
    /// NDCG@k.
    pub ndcg: Aggregate,
}

/// Accuracy at every cut-off, in ascending order of k.
///
/// ```
/// use tears_metrics::{NoItems, ScoreMatrix, evaluate};
/// let scores = ScoreMatrix::new(&[0.9, 0.1, 0.5], 1, 3)?;
/// let report = evaluate(&scores, &NoItems(1), &vec![vec![0]], &[1, 2])?;
/// let at1 = report.at(1).expect("k = 1 evaluated");
/// assert_eq!((at1.ndcg.mean, at1.ndcg.counted), (1.0, 1));
/// # Ok::<(), tears_metrics::MetricsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccuracyReport {
    /// One entry per cut-off, ascending.
    pub results: Vec<AccuracyAtK>,
}

impl AccuracyReport {
    /// The results at cut-off `k`, if it was evaluated.
    pub fn at(&self, k: usize) -> Option<&AccuracyAtK> {
        self.results.iter().find(|r| r.k == k)
    }
}

/// Accumulates accuracy over batches of users (rows of a score matrix), then reports.
///
/// An evaluator that scores users in batches calls [`Evaluator::add`] once per batch with the
/// batch's `[batch × items]` scores and the batch's seen and held-out lists.
///
/// ```
/// use tears_metrics::{Evaluator, ScoreMatrix};
/// let mut ev = Evaluator::new(&[1, 2])?;
/// // batch 1: one user; item 1 seen (masked), item 2 held out
/// ev.add(&ScoreMatrix::new(&[0.1, 0.9, 0.5], 1, 3)?, &vec![vec![1]], &vec![vec![2]])?;
/// // batch 2: two users, the second without held-out items
/// ev.add(&ScoreMatrix::new(&[0.9, 0.1, 0.5, 0.0, 0.0, 0.0], 2, 3)?, &vec![vec![], vec![]], &vec![vec![1], vec![]])?;
/// let report = ev.report();
/// let at1 = report.at(1).expect("k = 1");
/// assert_eq!((at1.recall.mean, at1.recall.counted, at1.recall.excluded), (0.5, 2, 1));
/// # Ok::<(), tears_metrics::MetricsError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Evaluator {
    ks: Vec<usize>,
    acc: Vec<[Accumulator; 3]>,
}

impl Evaluator {
    /// An evaluator for the cut-offs `ks` (any order; duplicates ignored).
    ///
    /// # Errors
    /// [`MetricsError::Config`] for an empty `ks`, [`MetricsError::ZeroK`] for a zero cut-off.
    pub fn new(ks: &[usize]) -> Result<Self> {
        let ks = check_ks(ks)?;
        let acc = vec![[Accumulator::new(); 3]; ks.len()];
        Ok(Evaluator { ks, acc })
    }

    /// The cut-offs, ascending.
    pub fn ks(&self) -> &[usize] {
        &self.ks
    }

    /// Ranks one batch of users (seen items masked) and adds their metrics.
    ///
    /// # Errors
    /// The size and range errors of [`top_k`] and of the held-out lists; nothing is added then.
    pub fn add<S, H>(&mut self, scores: &ScoreMatrix<'_>, seen: &S, heldout: &H) -> Result<()>
    where
        S: ItemLists + ?Sized,
        H: ItemLists + ?Sized,
    {
        self.add_users(scores, seen, heldout).map(drop)
    }

    /// [`Evaluator::add`] that also returns the batch's per-user accuracy: one row per user (in
    /// the batch's order) with one entry per cut-off of [`Evaluator::ks`], `None` for a user
    /// without held-out items. These are the values a paired comparison of two models needs.
    ///
    /// ```
    /// use tears_metrics::{Evaluator, ScoreMatrix};
    /// let mut ev = Evaluator::new(&[1])?;
    /// let scores = ScoreMatrix::new(&[0.9, 0.1, /* user 1 */ 0.2, 0.8], 2, 2)?;
    /// let rows = ev.add_users(&scores, &vec![vec![], vec![]], &vec![vec![0], vec![0]])?;
    /// assert_eq!(rows[0][0].map(|a| a.ndcg), Some(1.0));
    /// assert_eq!(rows[1][0].map(|a| a.ndcg), Some(0.0));
    /// assert_eq!(ev.report().at(1).map(|a| a.ndcg.mean), Some(0.5));
    /// # Ok::<(), tears_metrics::MetricsError>(())
    /// ```
    ///
    /// # Errors
    /// As [`Evaluator::add`]; nothing is added then.
    pub fn add_users<S, H>(
        &mut self,
        scores: &ScoreMatrix<'_>,
        seen: &S,
        heldout: &H,
    ) -> Result<Vec<Vec<Option<UserAccuracy>>>>
    where
        S: ItemLists + ?Sized,
        H: ItemLists + ?Sized,
    {
        let kmax = self.ks.last().copied().unwrap_or(1);
        validate(heldout, "held-out items", scores.n_users(), scores.n_items())?;
        let top = top_k(scores, seen, kmax)?;
        self.add_ranked_users(&top, heldout)
    }

    /// Adds the metrics of already ranked lists (computed for a `k` at least the largest cut-off).
    ///
    /// # Errors
    /// As [`per_user_accuracy`]; nothing is added then.
    pub fn add_ranked<H: ItemLists + ?Sized>(&mut self, top: &TopKLists, heldout: &H) -> Result<()> {
        self.add_ranked_users(top, heldout).map(drop)
    }

    /// [`Evaluator::add_ranked`] that also returns the per-user accuracy, as
    /// [`Evaluator::add_users`] does.
    ///
    /// # Errors
    /// As [`per_user_accuracy`]; nothing is added then.
    pub fn add_ranked_users<H: ItemLists + ?Sized>(
        &mut self,
        top: &TopKLists,
        heldout: &H,
    ) -> Result<Vec<Vec<Option<UserAccuracy>>>> {
        let per_user = per_user_accuracy(top, heldout, &self.ks)?;
        for user in &per_user {
            for (acc, value) in self.acc.iter_mut().zip(user) {
                acc[0].push(value.map(|a| a.recall));
                acc[1].push(value.map(|a| a.plain_recall));
                acc[2].push(value.map(|a| a.ndcg));
            }
        }
        Ok(per_user)
    }

    /// The aggregates of every user added so far.
    pub fn report(&self) -> AccuracyReport {
        AccuracyReport {
            results: self
                .ks
                .iter()
                .zip(&self.acc)
                .map(|(&k, acc)| AccuracyAtK {
                    k,
                    recall: acc[0].finish(),
                    plain_recall: acc[1].finish(),
                    ndcg: acc[2].finish(),
                })
                .collect(),
        }
    }
}

/// Ranks every user of `scores` (seen items masked), then reports Recall@k, plain recall@k and
/// NDCG@k at each cut-off in `ks` (top-k is computed once, for the largest k).
///
/// ```
/// use tears_metrics::{DEFAULT_KS, ScoreMatrix, evaluate};
/// let scores = ScoreMatrix::new(&[0.9, 0.1, 0.5, 0.3], 2, 2)?;
/// let report = evaluate(&scores, &vec![vec![0], vec![]], &vec![vec![1], vec![0]], &DEFAULT_KS)?;
/// assert_eq!(report.results.len(), 4);
/// assert_eq!(report.at(10).map(|r| r.recall.mean), Some(1.0));
/// # Ok::<(), tears_metrics::MetricsError>(())
/// ```
///
/// # Errors
/// As [`Evaluator::new`] and [`Evaluator::add`].
pub fn evaluate<S, H>(scores: &ScoreMatrix<'_>, seen: &S, heldout: &H, ks: &[usize]) -> Result<AccuracyReport>
where
    S: ItemLists + ?Sized,
    H: ItemLists + ?Sized,
{
    let mut ev = Evaluator::new(ks)?;
    ev.add(scores, seen, heldout)?;
    Ok(ev.report())
}
