//! Controllability metrics: large-scope Δ_up / Δ_down, small-scope rank change, guided change.
//!
//! Every value is oriented so that its name says what positive means (the original code's raw
//! signs differ and do not leak here):
//! - `delta_down` > 0: the former favourite genre dropped in the edited list;
//! - `delta_up` > 0: the former least-favourite genre rose in the edited list;
//! - rank `change` > 0: the target item moved up (towards rank 0);
//! - guided `change` > 0: more of the genre after guidance ("More {genre}" worked; for
//!   "Less {genre}", a negative change means it worked).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::accuracy::ideal_dcg;
use crate::aggregate::Aggregate;
use crate::error::{MetricsError, Result};
use crate::genre::{check_lists, genre_ndcg_at_k, genre_ndcg_unchecked};
use crate::lists::ItemLists;
use crate::scores::ScoreMatrix;
use crate::topk::{TopKLists, rank_of, ranks};

/// A user's favourite and least-favourite genre ids (those the large-scope edit swaps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenrePair {
    /// The favourite genre before the edit.
    pub favourite: usize,
    /// The least-favourite genre before the edit.
    pub least_favourite: usize,
}

/// One user's large-scope deltas.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LargeScopeDeltas {
    /// NDCG_gleast@k(edited) − NDCG_gleast@k(original).
    pub delta_up: f64,
    /// NDCG_gfav@k(original) − NDCG_gfav@k(edited).
    pub delta_down: f64,
}

/// Δ_up and Δ_down of one user from the ranked lists before (`original`) and after (`edited`)
/// swapping the favourite and least-favourite genres in the profile.
///
/// ```
/// use tears_metrics::{GenrePair, large_scope_deltas};
/// let item_genres = vec![vec![0], vec![0], vec![1], vec![1]];
/// let pair = GenrePair { favourite: 0, least_favourite: 1 };
/// let d = large_scope_deltas(&[0, 1], &[2, 3], pair, &item_genres, 2)?;
/// assert_eq!((d.delta_up, d.delta_down), (1.0, 1.0)); // a complete swap
/// # Ok::<(), tears_metrics::MetricsError>(())
/// ```
///
/// # Errors
/// As [`genre_ndcg_at_k`].
pub fn large_scope_deltas<G: ItemLists + ?Sized>(
    original: &[usize],
    edited: &[usize],
    pair: GenrePair,
    item_genres: &G,
    k: usize,
) -> Result<LargeScopeDeltas> {
    Ok(LargeScopeDeltas {
        delta_up: genre_ndcg_at_k(edited, item_genres, pair.least_favourite, k)?
            - genre_ndcg_at_k(original, item_genres, pair.least_favourite, k)?,
        delta_down: genre_ndcg_at_k(original, item_genres, pair.favourite, k)?
            - genre_ndcg_at_k(edited, item_genres, pair.favourite, k)?,
    })
}

/// Large-scope results over users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LargeScopeReport {
    /// Δ_up over the users with a genre pair.
    pub delta_up: Aggregate,
    /// Δ_down over the users with a genre pair.
    pub delta_down: Aggregate,
    /// Per user, `None` for users without a genre pair (excluded).
    pub per_user: Vec<Option<LargeScopeDeltas>>,
}

fn same_users(a: &TopKLists, b: &TopKLists) -> Result<()> {
    if a.n_users() != b.n_users() {
        return Err(MetricsError::SizeMismatch {
            what: "users of the second ranked lists",
            expected: a.n_users(),
            found: b.n_users(),
        });
    }
    if a.n_items() != b.n_items() {
        return Err(MetricsError::SizeMismatch {
            what: "items of the second ranked lists",
            expected: a.n_items(),
            found: b.n_items(),
        });
    }
    Ok(())
}

fn prefix(items: &[usize], k: usize) -> &[usize] {
    &items[..k.min(items.len())]
}

/// Δ_up / Δ_down over users: `pairs[u]` is user u's (favourite, least favourite) genres, `None`
/// when unknown (for example an LLM answer that did not parse); such users are excluded.
///
/// ```
/// use tears_metrics::{GenrePair, NoItems, ScoreMatrix, large_scope, top_k};
/// let item_genres = vec![vec![0], vec![1]];
/// let before = top_k(&ScoreMatrix::new(&[0.9, 0.1, 0.9, 0.1], 2, 2)?, &NoItems(2), 1)?;
/// let after = top_k(&ScoreMatrix::new(&[0.1, 0.9, 0.9, 0.1], 2, 2)?, &NoItems(2), 1)?;
/// let pairs = [Some(GenrePair { favourite: 0, least_favourite: 1 }), None];
/// let report = large_scope(&before, &after, &pairs, &item_genres, 1)?;
/// assert_eq!((report.delta_up.mean, report.delta_up.counted, report.delta_up.excluded), (1.0, 1, 1));
/// # Ok::<(), tears_metrics::MetricsError>(())
/// ```
///
/// # Errors
/// [`MetricsError::SizeMismatch`] when the two lists or `pairs` disagree on the users, and those
/// of [`crate::genre_ndcg_per_user`].
pub fn large_scope<G: ItemLists + ?Sized>(
    original: &TopKLists,
    edited: &TopKLists,
    pairs: &[Option<GenrePair>],
    item_genres: &G,
    k: usize,
) -> Result<LargeScopeReport> {
    same_users(original, edited)?;
    check_lists(original, item_genres, k)?;
    check_lists(edited, item_genres, k)?;
    if pairs.len() != original.n_users() {
        return Err(MetricsError::SizeMismatch {
            what: "genre pairs (one per user)",
            expected: original.n_users(),
            found: pairs.len(),
        });
    }
    let ideal = ideal_dcg(k);
    let per_user: Vec<Option<LargeScopeDeltas>> = pairs
        .par_iter()
        .enumerate()
        .map(|(u, pair)| {
            pair.map(|p| {
                let (o, e) = (prefix(original.items(u), k), prefix(edited.items(u), k));
                let g = |list: &[usize], genre| genre_ndcg_unchecked(list, item_genres, genre, ideal);
                LargeScopeDeltas {
                    delta_up: g(e, p.least_favourite) - g(o, p.least_favourite),
                    delta_down: g(o, p.favourite) - g(e, p.favourite),
                }
            })
        })
        .collect();
    Ok(LargeScopeReport {
        delta_up: Aggregate::from_values(per_user.iter().map(|d| d.map(|d| d.delta_up))),
        delta_down: Aggregate::from_values(per_user.iter().map(|d| d.map(|d| d.delta_down))),
        per_user,
    })
}

/// A target item's rank before and after an edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RankChange {
    /// 0-based rank before the edit.
    pub before: usize,
    /// 0-based rank after the edit.
    pub after: usize,
    /// `before − after`: positive = moved up.
    pub change: i64,
}

impl RankChange {
    fn new(before: usize, after: usize) -> Self {
        RankChange { before, after, change: before as i64 - after as i64 }
    }
}

/// The rank change of `target` between two score rows of one user (same seen items masked):
/// `rank_before − rank_after`, 0-based ranks over the unmasked items.
///
/// ```
/// use tears_metrics::rank_change;
/// let rc = rank_change(&[0.9, 0.5, 0.1], &[0.9, 0.5, 0.7], &[], 2)?;
/// assert_eq!((rc.before, rc.after, rc.change), (2, 1, 1));
/// # Ok::<(), tears_metrics::MetricsError>(())
/// ```
///
/// # Errors
/// [`MetricsError::SizeMismatch`] for rows of different lengths, and those of
/// [`crate::rank_of`].
pub fn rank_change(before: &[f32], after: &[f32], seen: &[usize], target: usize) -> Result<RankChange> {
    if before.len() != after.len() {
        return Err(MetricsError::SizeMismatch {
            what: "items of the edited score row",
            expected: before.len(),
            found: after.len(),
        });
    }
    Ok(RankChange::new(rank_of(before, seen, target)?, rank_of(after, seen, target)?))
}

/// Small-scope results over users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankChangeReport {
    /// Mean rank change (positive = moved up), its standard error and counts.
    pub change: Aggregate,
    /// Per user, `None` for users without a target (excluded).
    pub per_user: Vec<Option<RankChange>>,
}

/// Rank changes over users: `targets[u]` is user u's target item, `None` when the user has none
/// (excluded). Both score matrices cover the same users and items; `seen` is masked in both.
///
/// ```
/// use tears_metrics::{ScoreMatrix, rank_changes};
/// let before = ScoreMatrix::new(&[0.9, 0.5, 0.1, /* user 1 */ 0.1, 0.2, 0.3], 2, 3)?;
/// let after = ScoreMatrix::new(&[0.0, 0.5, 0.1, /* user 1 */ 0.1, 0.2, 0.3], 2, 3)?;
/// let report = rank_changes(&before, &after, &vec![vec![], vec![]], &[Some(2), None])?;
/// assert_eq!(report.per_user[0].map(|r| r.change), Some(1));
/// assert_eq!((report.change.mean, report.change.counted), (1.0, 1));
/// # Ok::<(), tears_metrics::MetricsError>(())
/// ```
///
/// # Errors
/// [`MetricsError::SizeMismatch`] for matrices of different shapes, and those of
/// [`crate::ranks`].
pub fn rank_changes<S: ItemLists + ?Sized>(
    before: &ScoreMatrix<'_>,
    after: &ScoreMatrix<'_>,
    seen: &S,
    targets: &[Option<usize>],
) -> Result<RankChangeReport> {
    if (before.n_users(), before.n_items()) != (after.n_users(), after.n_items()) {
        return Err(MetricsError::SizeMismatch {
            what: "elements of the edited score matrix",
            expected: before.as_slice().len(),
            found: after.as_slice().len(),
        });
    }
    let rb = ranks(before, seen, targets)?;
    let ra = ranks(after, seen, targets)?;
    let per_user: Vec<Option<RankChange>> = rb
        .iter()
        .zip(&ra)
        .map(|(b, a)| match (b, a) {
            (Some(b), Some(a)) => Some(RankChange::new(*b, *a)),
            _ => None,
        })
        .collect();
    Ok(RankChangeReport {
        change: Aggregate::from_values(per_user.iter().map(|r| r.map(|r| r.change as f64))),
        per_user,
    })
}

/// Guided change of one user: NDCG_g@k(guided) − NDCG_g@k(baseline), the baseline being the
/// ranked list at alpha = 0 (backbone only). Positive = more of genre g.
///
/// ```
/// use tears_metrics::guided_change;
/// let item_genres = vec![vec![0], vec![1], vec![0]];
/// let c = guided_change(&[1, 0], &[0, 2], &item_genres, 0, 2)?;
/// assert!((c - (1.0 - (1.0 / 3f64.log2()) / (1.0 + 1.0 / 3f64.log2()))).abs() < 1e-12);
/// # Ok::<(), tears_metrics::MetricsError>(())
/// ```
///
/// # Errors
/// As [`genre_ndcg_at_k`].
pub fn guided_change<G: ItemLists + ?Sized>(
    baseline: &[usize],
    guided: &[usize],
    item_genres: &G,
    genre: usize,
    k: usize,
) -> Result<f64> {
    Ok(genre_ndcg_at_k(guided, item_genres, genre, k)? - genre_ndcg_at_k(baseline, item_genres, genre, k)?)
}

/// Guided-recommendation results over users for one genre.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuidedReport {
    /// The genre id.
    pub genre: usize,
    /// Mean change (positive = more of the genre), its standard error and counts.
    pub change: Aggregate,
    /// Per user, in user order.
    pub per_user: Vec<f64>,
}

/// Guided change over users for genre `genre`: `baseline` holds the alpha = 0 lists, `guided`
/// the lists after replacing the summary by "More {genre}" (or "Less {genre}") at some alpha.
///
/// ```
/// use tears_metrics::{NoItems, ScoreMatrix, guided_changes, top_k};
/// let item_genres = vec![vec![0], vec![1]];
/// let base = top_k(&ScoreMatrix::new(&[0.1, 0.9], 1, 2)?, &NoItems(1), 1)?;
/// let guided = top_k(&ScoreMatrix::new(&[0.9, 0.1], 1, 2)?, &NoItems(1), 1)?;
/// let report = guided_changes(&base, &guided, &item_genres, 0, 1)?;
/// assert_eq!(report.change.mean, 1.0);
/// # Ok::<(), tears_metrics::MetricsError>(())
/// ```
///
/// # Errors
/// [`MetricsError::SizeMismatch`] when the two lists disagree on users or items, and those of
/// [`crate::genre_ndcg_per_user`].
pub fn guided_changes<G: ItemLists + ?Sized>(
    baseline: &TopKLists,
    guided: &TopKLists,
    item_genres: &G,
    genre: usize,
    k: usize,
) -> Result<GuidedReport> {
    same_users(baseline, guided)?;
    check_lists(baseline, item_genres, k)?;
    check_lists(guided, item_genres, k)?;
    let ideal = ideal_dcg(k);
    let per_user: Vec<f64> = (0..baseline.n_users())
        .into_par_iter()
        .with_min_len(64)
        .map(|u| {
            genre_ndcg_unchecked(prefix(guided.items(u), k), item_genres, genre, ideal)
                - genre_ndcg_unchecked(prefix(baseline.items(u), k), item_genres, genre, ideal)
        })
        .collect();
    Ok(GuidedReport { genre, change: Aggregate::from_values(per_user.iter().map(|&c| Some(c))), per_user })
}
