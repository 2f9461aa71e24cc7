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
//! Rows of at least 32 k items first estimate the threshold from every 16th score (about 2k
//! items above it), falling back to a full pass when fewer than k unmasked items beat it.
//! Candidates are packed into `u64` keys (score order in the high half, item index in the low
//! half) so that selection and the final sort compare integers.
//! Users are processed in parallel with rayon; results do not depend on the thread count.

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

/// The score's position in ascending order as an unsigned integer: `NaN` as negative infinity,
/// `-0.0` equal to `+0.0`.
#[inline]
fn ord_bits(x: f32) -> u32 {
    let b = (key(x) + 0.0).to_bits();
    if b >> 31 == 1 { !b } else { b | 0x8000_0000 }
}

/// The inverse of [`ord_bits`] (up to the `NaN` and `-0.0` normalisation).
#[inline]
fn from_ord_bits(o: u32) -> f32 {
    f32::from_bits(if o >> 31 == 1 { o & 0x7FFF_FFFF } else { !o })
}

/// A candidate packed so that ascending `u64` order is the ranking order: score descending in
/// the high half, item index ascending in the low half (items fit in 32 bits).
#[inline]
fn pack(x: f32, item: usize) -> u64 {
    (u64::from(!ord_bits(x)) << 32) | item as u64
}

#[inline]
fn packed_item(p: u64) -> usize {
    (p & 0xFFFF_FFFF) as usize
}

#[inline]
fn packed_score(p: u64) -> f32 {
    from_ord_bits(!((p >> 32) as u32))
}

/// Per-thread buffers of the selection.
pub(crate) struct Scratch {
    buf: Vec<u64>,
    mask: Vec<bool>,
    samples: Vec<u32>,
}

impl Scratch {
    pub(crate) fn new(n_items: usize) -> Self {
        Scratch { buf: Vec::new(), mask: vec![false; n_items], samples: Vec::new() }
    }
}

const BLOCK: usize = 16;
/// One score in this many is sampled to estimate a starting threshold.
const SAMPLE_STRIDE: usize = 16;
/// Sampling is used when the row holds at least this many times `k` items.
const SAMPLE_MIN_RATIO: usize = 32;
/// The most items a catalogue may have (item indices are packed into 32 bits).
pub const MAX_ITEMS: usize = u32::MAX as usize;

/// Keeps the best `k` of `buf` and returns the k-th best score (the new threshold).
#[inline]
fn compact(buf: &mut Vec<u64>, k: usize) -> f32 {
    buf.select_nth_unstable(k - 1);
    buf.truncate(k);
    packed_score(buf[k - 1])
}

/// Offers `block[o]` for every set bit `o` of `bits` (the items that beat the threshold when the
/// block was tested; the threshold may rise meanwhile, so each is tested again).
#[inline]
#[allow(clippy::too_many_arguments)]
fn scan_bits(
    block: &[f32],
    mut bits: u32,
    base: usize,
    mask: &[bool],
    buf: &mut Vec<u64>,
    thr: &mut f32,
    k: usize,
    cap: usize,
) {
    while bits != 0 {
        let o = bits.trailing_zeros() as usize;
        bits &= bits - 1;
        let x = block[o];
        // Later items equal to the threshold rank below every kept item (higher index), so
        // the strict comparison is exact; it is false for NaN.
        if x > *thr && !mask[base + o] {
            buf.push(pack(x, base + o));
            if buf.len() >= cap {
                *thr = compact(buf, k);
            }
        }
    }
}

/// Collects into `buf` the best `k` unmasked items among those scoring strictly above `floor`
/// (fewer when fewer than `k` score above it), unsorted.
fn collect_above(row: &[f32], mask: &[bool], buf: &mut Vec<u64>, k: usize, floor: f32) {
    buf.clear();
    let cap = k + k.max(64);
    let mut thr = floor;
    let (blocks, rest) = row.as_chunks::<BLOCK>();
    let mut base = 0;
    for block in blocks {
        let t = thr;
        let bits = block.iter().enumerate().fold(0u32, |m, (i, &x)| m | (u32::from(x > t) << i));
        if bits != 0 {
            scan_bits(block, bits, base, mask, buf, &mut thr, k, cap);
        }
        base += BLOCK;
    }
    let all = if rest.is_empty() { 0 } else { u32::MAX >> (32 - rest.len()) };
    scan_bits(rest, all, base, mask, buf, &mut thr, k, cap);
    if buf.len() > k {
        compact(buf, k);
    }
}

/// A score that, in a typical row, about `2k` items exceed: the `(2k / SAMPLE_STRIDE + 4)`-th
/// best of every `SAMPLE_STRIDE`-th score. `None` when the row is too short for sampling to pay.
fn sampled_floor(row: &[f32], k: usize, samples: &mut Vec<u32>) -> Option<f32> {
    if row.len() < SAMPLE_MIN_RATIO * k {
        return None;
    }
    samples.clear();
    samples.extend(row.iter().step_by(SAMPLE_STRIDE).map(|&x| ord_bits(x)));
    let r = (2 * k).div_ceil(SAMPLE_STRIDE) + 4;
    if r > samples.len() {
        return None;
    }
    let at = samples.len() - r;
    let (_, &mut nth, _) = samples.select_nth_unstable(at);
    let floor = from_ord_bits(nth);
    (floor > f32::NEG_INFINITY).then_some(floor)
}

/// Writes the top `k` unmasked items of `row` into `out_items`/`out_scores` and returns how many
/// were written. Requires `1 <= k <= row.len() <= MAX_ITEMS`, `out_*.len() >= k`, every seen
/// item below `row.len()` and `scratch` made for `row.len()` items.
pub(crate) fn select_into(
    row: &[f32],
    seen: &[usize],
    k: usize,
    scratch: &mut Scratch,
    out_items: &mut [usize],
    out_scores: &mut [f32],
) -> usize {
    let Scratch { buf, mask, samples } = scratch;
    for &i in seen {
        mask[i] = true;
    }
    // First try with a floor estimated from a strided sample: only the items above it are
    // candidates. Exact whenever at least k unmasked items score above the floor (every item at
    // or below it ranks after them); otherwise start again from -inf.
    let floor = sampled_floor(row, k, samples);
    if let Some(f) = floor {
        collect_above(row, mask, buf, k, f);
    }
    if floor.is_none() || buf.len() < k {
        collect_above(row, mask, buf, k, f32::NEG_INFINITY);
    }
    if buf.len() < k {
        // Fewer than k unmasked items score above -inf: the rest are the unmasked -inf / NaN
        // items, all tied, hence in index order.
        for (j, &x) in row.iter().enumerate() {
            if buf.len() == k {
                break;
            }
            if key(x) == f32::NEG_INFINITY && !mask[j] {
                buf.push(pack(f32::NEG_INFINITY, j));
            }
        }
    }
    buf.sort_unstable();
    for &i in seen {
        mask[i] = false;
    }
    for ((slot_i, slot_s), &p) in out_items.iter_mut().zip(out_scores.iter_mut()).zip(buf.iter()) {
        let j = packed_item(p);
        *slot_i = j;
        *slot_s = row[j];
    }
    buf.len()
}

fn check_catalogue(n_items: usize) -> Result<()> {
    if n_items > MAX_ITEMS {
        return Err(MetricsError::Config(format!("{n_items} items: top-k supports at most {MAX_ITEMS}")));
    }
    Ok(())
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
/// one list per user; [`MetricsError::ItemOutOfRange`] for a seen item `>= n_items`;
/// [`MetricsError::Config`] for a catalogue of more than [`MAX_ITEMS`] items.
pub fn top_k<S: ItemLists + ?Sized>(scores: &ScoreMatrix<'_>, seen: &S, k: usize) -> Result<TopKLists> {
    if k == 0 {
        return Err(MetricsError::ZeroK);
    }
    let (n_users, n_items) = (scores.n_users(), scores.n_items());
    check_catalogue(n_items)?;
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
    Ok(TopKLists { k, n_items, stride, lens, items, scores: out_scores })
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
    check_catalogue(row.len())?;
    validate(&[seen][..], "seen items", 1, row.len())?;
    let k = k.min(row.len());
    let mut items = vec![0usize; k];
    let mut scores = vec![0f32; k];
    if k > 0 {
        let len = select_into(row, seen, k, &mut Scratch::new(row.len()), &mut items, &mut scores);
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

fn check_target(row_len: usize, seen: &[usize], target: usize, user: usize, sorted: &mut Vec<usize>) -> Result<()> {
    if target >= row_len {
        return Err(MetricsError::ItemOutOfRange { what: "target item", list: user, item: target, n_items: row_len });
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
