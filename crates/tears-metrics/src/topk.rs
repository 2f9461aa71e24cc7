//! Top-k selection with seen items masked, and ranks of single items.
//!
//! The order of items is: higher score first, ties broken by the lower item index, `NaN` ranked
//! like negative infinity. Seen items are masked (left out of the ranking altogether, as if
//! their score were negative infinity and they came after every other item).
//!
//! Selection is partial: one pass over the row keeps a candidate buffer of at most
//! `k + max(k, 64)` items above a running threshold (the k-th best score so far, refreshed with
//! `select_nth_unstable_by` whenever the buffer fills), and only the final `k` are sorted. The
//! pass tests blocks of 16 scores against the threshold at once, so it costs about one
//! vectorised comparison per item: O(I + k log k) per user, never a sort of the catalogue.
//! Users are processed in parallel with rayon; results do not depend on the thread count.

use std::cmp::Ordering;

use rayon::prelude::*;

use crate::error::{MetricsError, Result};
use crate::lists::{ItemLists, validate};
use crate::scores::ScoreMatrix;

/// The top-k items of each user, best first, with their scores.
///
/// A user's list holds `min(k, unmasked items)` entries: shorter than `k` only when the user has
/// fewer than `k` items left after masking.
///
/// ```
/// use tears_metrics::{ScoreMatrix, top_k};
/// let data = [0.1, 0.9, 0.5, 0.9, /* user 1 */ 1.0, 0.0, 0.2, 0.3];
/// let scores = ScoreMatrix::new(&data, 2, 4)?;
/// let seen = vec![vec![], vec![0]];
/// let top = top_k(&scores, &seen, 2)?;
/// assert_eq!(top.items(0), &[1, 3]); // tie at 0.9: lower index first
/// assert_eq!(top.items(1), &[3, 2]); // item 0 is seen, so masked
/// assert_eq!(top.scores(1), &[0.3, 0.2]);
/// # Ok::<(), tears_metrics::MetricsError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TopKLists {
    k: usize,
    n_items: usize,
    stride: usize,
    lens: Vec<usize>,
    items: Vec<usize>,
    scores: Vec<f32>,
}

impl TopKLists {
    /// The cut-off the lists were computed for.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Number of users (lists).
    pub fn n_users(&self) -> usize {
        self.lens.len()
    }

    /// Number of items of the catalogue the lists were drawn from.
    pub fn n_items(&self) -> usize {
        self.n_items
    }

    /// User `u`'s items, best first (empty when `u` is out of range).
    pub fn items(&self, u: usize) -> &[usize] {
        match self.lens.get(u) {
            Some(&len) => &self.items[u * self.stride..u * self.stride + len],
            None => &[],
        }
    }

    /// User `u`'s scores, aligned with [`TopKLists::items`].
    pub fn scores(&self, u: usize) -> &[f32] {
        match self.lens.get(u) {
            Some(&len) => &self.scores[u * self.stride..u * self.stride + len],
            None => &[],
        }
    }

    /// Iterates over the users' item lists in user order.
    ///
    /// ```
    /// use tears_metrics::{NoItems, ScoreMatrix, top_k};
    /// let scores = ScoreMatrix::new(&[0.0, 1.0, 2.0, 1.0], 2, 2)?;
    /// let top = top_k(&scores, &NoItems(2), 1)?;
    /// let firsts: Vec<usize> = top.iter().map(|l| l[0]).collect();
    /// assert_eq!(firsts, vec![1, 0]);
    /// # Ok::<(), tears_metrics::MetricsError>(())
    /// ```
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[usize]> + '_ {
        (0..self.n_users()).map(|u| self.items(u))
    }
}

impl ItemLists for TopKLists {
    fn n_lists(&self) -> usize {
        self.n_users()
    }
    fn list(&self, i: usize) -> &[usize] {
        self.items(i)
    }
}

/// The sort key of a score: `NaN` ranks like negative infinity.
#[inline]
pub(crate) fn key(x: f32) -> f32 {
    if x.is_nan() { f32::NEG_INFINITY } else { x }
}

/// Ranking order of `(key, item)` pairs (keys never `NaN`): `Less` means `a` ranks before `b`.
#[inline]
fn rank_cmp(a: &(f32, usize), b: &(f32, usize)) -> Ordering {
    if a.0 > b.0 {
        Ordering::Less
    } else if a.0 < b.0 {
        Ordering::Greater
    } else {
        a.1.cmp(&b.1)
    }
}

/// Per-thread buffers of the selection.
pub(crate) struct Scratch {
    buf: Vec<(f32, usize)>,
    mask: Vec<bool>,
}

impl Scratch {
    pub(crate) fn new(n_items: usize) -> Self {
        Scratch {
            buf: Vec::new(),
            mask: vec![false; n_items],
        }
    }
}

const BLOCK: usize = 16;

/// Keeps the best `k` of `buf` and returns the k-th best key (the new threshold).
#[inline]
fn compact(buf: &mut Vec<(f32, usize)>, k: usize) -> f32 {
    buf.select_nth_unstable_by(k - 1, rank_cmp);
    buf.truncate(k);
    buf[k - 1].0
}

#[inline]
fn scan(
    block: &[f32],
    base: usize,
    mask: &[bool],
    buf: &mut Vec<(f32, usize)>,
    thr: &mut f32,
    k: usize,
    cap: usize,
) {
    for (o, &x) in block.iter().enumerate() {
        // `x > thr` is false for NaN; later items equal to the threshold rank below every kept
        // item (higher index), so strict comparison is exact.
        if x > *thr && !mask[base + o] {
            buf.push((x, base + o));
            if buf.len() >= cap {
                *thr = compact(buf, k);
            }
        }
    }
}

/// Writes the top `k` unmasked items of `row` into `out_items`/`out_scores` and returns how many
/// were written. Requires `1 <= k <= row.len()`, `out_*.len() >= k`, every seen item below
/// `row.len()` and `scratch` made for `row.len()` items.
pub(crate) fn select_into(
    row: &[f32],
    seen: &[usize],
    k: usize,
    scratch: &mut Scratch,
    out_items: &mut [usize],
    out_scores: &mut [f32],
) -> usize {
    let Scratch { buf, mask } = scratch;
    for &i in seen {
        mask[i] = true;
    }
    buf.clear();
    let cap = k + k.max(64);
    let mut thr = f32::NEG_INFINITY;
    let mut blocks = row.chunks_exact(BLOCK);
    let mut base = 0;
    for block in &mut blocks {
        let t = thr;
        if block.iter().fold(false, |any, &x| any | (x > t)) {
            scan(block, base, mask, buf, &mut thr, k, cap);
        }
        base += BLOCK;
    }
    scan(blocks.remainder(), base, mask, buf, &mut thr, k, cap);
    if buf.len() > k {
        compact(buf, k);
    }
    if buf.len() < k {
        // Fewer than k unmasked items score above -inf: the rest are the unmasked -inf / NaN
        // items, all tied, hence in index order.
        for (j, &x) in row.iter().enumerate() {
            if buf.len() == k {
                break;
            }
            if key(x) == f32::NEG_INFINITY && !mask[j] {
                buf.push((f32::NEG_INFINITY, j));
            }
        }
    }
    buf.sort_unstable_by(rank_cmp);
    for &i in seen {
        mask[i] = false;
    }
    for ((slot_i, slot_s), &(_, j)) in out_items
        .iter_mut()
        .zip(out_scores.iter_mut())
        .zip(buf.iter())
    {
        *slot_i = j;
        *slot_s = row[j];
    }
    buf.len()
}

/// The top `k` items of every user, best first, with each user's `seen` items masked.
///
/// `seen` holds one list per user (use [`crate::NoItems`] to mask nothing). Ties are broken by
/// the lower item index; `NaN` scores rank like negative infinity.
///
/// ```
/// use tears_metrics::{ScoreMatrix, top_k};
/// let scores = ScoreMatrix::new(&[3.0, 1.0, 2.0, 0.0], 1, 4)?;
/// let top = top_k(&scores, &vec![vec![0]], 2)?;
/// assert_eq!(top.items(0), &[2, 1]);
/// # Ok::<(), tears_metrics::MetricsError>(())
/// ```
///
/// # Errors
/// [`MetricsError::ZeroK`] for `k = 0`; [`MetricsError::SizeMismatch`] when `seen` does not have
/// one list per user; [`MetricsError::ItemOutOfRange`] for a seen item `>= n_items`.
pub fn top_k<S: ItemLists + ?Sized>(
    scores: &ScoreMatrix<'_>,
    seen: &S,
    k: usize,
) -> Result<TopKLists> {
    if k == 0 {
        return Err(MetricsError::ZeroK);
    }
    let (n_users, n_items) = (scores.n_users(), scores.n_items());
    validate(seen, "seen items", n_users, n_items)?;
    let stride = k.min(n_items);
    let mut lens = vec![0usize; n_users];
    let mut items = vec![0usize; n_users * stride];
    let mut out_scores = vec![0f32; n_users * stride];
    if stride > 0 {
        items
            .par_chunks_mut(stride)
            .zip(out_scores.par_chunks_mut(stride))
            .zip(lens.par_iter_mut())
            .zip(scores.as_slice().par_chunks(n_items))
            .enumerate()
            .with_min_len(8)
            .for_each_init(
                || Scratch::new(n_items),
                |scratch, (u, (((it, sc), len), row))| {
                    *len = select_into(row, seen.list(u), stride, scratch, it, sc);
                },
            );
    }
    Ok(TopKLists {
        k,
        n_items,
        stride,
        lens,
        items,
        scores: out_scores,
    })
}

/// The top `k` unmasked items of one row of scores, best first.
///
/// ```
/// use tears_metrics::top_k_row;
/// assert_eq!(top_k_row(&[0.5, 0.7, 0.5, f32::NAN], &[1], 3)?, vec![0, 2, 3]);
/// # Ok::<(), tears_metrics::MetricsError>(())
/// ```
///
/// # Errors
/// [`MetricsError::ZeroK`] for `k = 0`; [`MetricsError::ItemOutOfRange`] for a seen item
/// `>= row.len()`.
pub fn top_k_row(row: &[f32], seen: &[usize], k: usize) -> Result<Vec<usize>> {
    if k == 0 {
        return Err(MetricsError::ZeroK);
    }
    validate(&[seen][..], "seen items", 1, row.len())?;
    let k = k.min(row.len());
    let mut items = vec![0usize; k];
    let mut scores = vec![0f32; k];
    if k > 0 {
        let len = select_into(
            row,
            seen,
            k,
            &mut Scratch::new(row.len()),
            &mut items,
            &mut scores,
        );
        items.truncate(len);
    }
    Ok(items)
}

/// 0-based rank of `target` among the unmasked items of `row` (sorted seen list, deduplicated,
/// not containing `target`; all indices in range).
fn rank_in_row(row: &[f32], seen_sorted: &[usize], target: usize) -> usize {
    let t = key(row[target]);
    let before = row[..target].iter().filter(|&&x| key(x) >= t).count();
    let after = row[target + 1..].iter().filter(|&&x| key(x) > t).count();
    let masked_ahead = seen_sorted
        .iter()
        .filter(|&&j| {
            let x = key(row[j]);
            x > t || (x == t && j < target)
        })
        .count();
    before + after - masked_ahead
}

fn check_target(
    row_len: usize,
    seen: &[usize],
    target: usize,
    user: usize,
    sorted: &mut Vec<usize>,
) -> Result<()> {
    if target >= row_len {
        return Err(MetricsError::ItemOutOfRange {
            what: "target item",
            list: user,
            item: target,
            n_items: row_len,
        });
    }
    sorted.clear();
    sorted.extend_from_slice(seen);
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.binary_search(&target).is_ok() {
        return Err(MetricsError::TargetMasked { user, item: target });
    }
    Ok(())
}

/// 0-based rank of `target` among the unmasked items of `row` (0 = recommended first), in the
/// same order as [`top_k`]: the number of unmasked items ranked before it.
///
/// ```
/// use tears_metrics::rank_of;
/// let row = [0.9, 0.1, 0.5, 0.5];
/// assert_eq!(rank_of(&row, &[], 3)?, 2); // after 0.9 and the tied item 2 (lower index)
/// assert_eq!(rank_of(&row, &[0], 3)?, 1); // item 0 masked
/// # Ok::<(), tears_metrics::MetricsError>(())
/// ```
///
/// # Errors
/// [`MetricsError::ItemOutOfRange`] for a target or seen item `>= row.len()`;
/// [`MetricsError::TargetMasked`] when the target is among the seen items.
pub fn rank_of(row: &[f32], seen: &[usize], target: usize) -> Result<usize> {
    validate(&[seen][..], "seen items", 1, row.len())?;
    let mut sorted = Vec::new();
    check_target(row.len(), seen, target, 0, &mut sorted)?;
    Ok(rank_in_row(row, &sorted, target))
}

/// 0-based ranks of one target item per user (`None` = no target, gives `None`), computed in
/// parallel over users.
///
/// ```
/// use tears_metrics::{ranks, ScoreMatrix};
/// let scores = ScoreMatrix::new(&[0.2, 0.8, 0.5, /* user 1 */ 0.1, 0.2, 0.3], 2, 3)?;
/// let r = ranks(&scores, &vec![vec![1], vec![]], &[Some(0), None])?;
/// assert_eq!(r, vec![Some(1), None]);
/// # Ok::<(), tears_metrics::MetricsError>(())
/// ```
///
/// # Errors
/// Those of [`top_k`] (bar `k`), a `targets` slice not of one entry per user, and those of
/// [`rank_of`].
pub fn ranks<S: ItemLists + ?Sized>(
    scores: &ScoreMatrix<'_>,
    seen: &S,
    targets: &[Option<usize>],
) -> Result<Vec<Option<usize>>> {
    let (n_users, n_items) = (scores.n_users(), scores.n_items());
    validate(seen, "seen items", n_users, n_items)?;
    if targets.len() != n_users {
        return Err(MetricsError::SizeMismatch {
            what: "targets (one per user)",
            expected: n_users,
            found: targets.len(),
        });
    }
    targets
        .par_iter()
        .enumerate()
        .map_init(Vec::new, |sorted, (u, target)| {
            let Some(t) = *target else { return Ok(None) };
            let row = scores.row(u).unwrap_or(&[]);
            check_target(row.len(), seen.list(u), t, u, sorted)?;
            Ok(Some(rank_in_row(row, sorted, t)))
        })
        .collect()
}
