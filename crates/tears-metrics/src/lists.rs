//! Per-user (or per-item) lists of indices: held-out items, seen items, item genres.

use crate::error::{MetricsError, Result};

/// A sequence of lists of indices, one list per user (held-out or seen items) or per item (genre
/// ids).
///
/// Implemented for `Vec<Vec<usize>>`, `[Vec<usize>]`, `Vec<&[usize]>`, `[&[usize]]`, for
/// [`CsrLists`] (an `(offsets, indices)` pair, such as a `sprs` CSR matrix's `indptr` and
/// `indices`), for [`NoItems`] and for references to any of these. Order within a list does not
/// matter and repeated indices count once.
///
/// ```
/// use tears_metrics::ItemLists;
/// let heldout = vec![vec![3, 1], vec![]];
/// assert_eq!(heldout.n_lists(), 2);
/// assert_eq!(heldout.list(0), &[3, 1]);
/// assert!(heldout.list(7).is_empty()); // out of range reads as an empty list
/// ```
pub trait ItemLists: Sync {
    /// Number of lists.
    fn n_lists(&self) -> usize;
    /// List `i`; an empty list when `i >= self.n_lists()`.
    fn list(&self, i: usize) -> &[usize];
}

impl<T: ItemLists + ?Sized> ItemLists for &T {
    fn n_lists(&self) -> usize {
        (**self).n_lists()
    }
    fn list(&self, i: usize) -> &[usize] {
        (**self).list(i)
    }
}

impl ItemLists for [Vec<usize>] {
    fn n_lists(&self) -> usize {
        self.len()
    }
    fn list(&self, i: usize) -> &[usize] {
        self.get(i).map_or(&[], Vec::as_slice)
    }
}

impl ItemLists for Vec<Vec<usize>> {
    fn n_lists(&self) -> usize {
        self.len()
    }
    fn list(&self, i: usize) -> &[usize] {
        self.as_slice().list(i)
    }
}

impl ItemLists for [&[usize]] {
    fn n_lists(&self) -> usize {
        self.len()
    }
    fn list(&self, i: usize) -> &[usize] {
        self.get(i).copied().unwrap_or(&[])
    }
}

impl ItemLists for Vec<&[usize]> {
    fn n_lists(&self) -> usize {
        self.len()
    }
    fn list(&self, i: usize) -> &[usize] {
        self.as_slice().list(i)
    }
}

/// `n` empty lists: "no seen items to mask".
///
/// ```
/// use tears_metrics::{ItemLists, NoItems};
/// let none = NoItems(3);
/// assert_eq!(none.n_lists(), 3);
/// assert!(none.list(1).is_empty());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoItems(pub usize);

impl ItemLists for NoItems {
    fn n_lists(&self) -> usize {
        self.0
    }
    fn list(&self, _i: usize) -> &[usize] {
        &[]
    }
}

/// Lists stored in compressed-sparse-row form: list `i` is `indices[offsets[i]..offsets[i + 1]]`.
///
/// `offsets` need not start at 0, so a contiguous batch of rows of a CSR matrix is
/// `CsrLists::new(&indptr[a..=b], indices)`.
///
/// ```
/// use tears_metrics::{CsrLists, ItemLists};
/// let offsets = [0, 2, 2, 3];
/// let indices = [4, 1, 7];
/// let lists = CsrLists::new(&offsets, &indices)?;
/// assert_eq!(lists.n_lists(), 3);
/// assert_eq!(lists.list(0), &[4, 1]);
/// assert!(lists.list(1).is_empty());
/// assert_eq!(lists.list(2), &[7]);
/// # Ok::<(), tears_metrics::MetricsError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsrLists<'a> {
    offsets: &'a [usize],
    indices: &'a [usize],
}

impl<'a> CsrLists<'a> {
    /// Wraps an `(offsets, indices)` pair. `offsets` must be non-empty and non-decreasing, and
    /// its last entry must not exceed `indices.len()`.
    pub fn new(offsets: &'a [usize], indices: &'a [usize]) -> Result<Self> {
        let Some(&last) = offsets.last() else {
            return Err(MetricsError::InvalidCsr("offsets must hold at least one entry".to_string()));
        };
        if let Some(w) = offsets.windows(2).position(|w| w[0] > w[1]) {
            return Err(MetricsError::InvalidCsr(format!("offsets decrease at position {}", w + 1)));
        }
        if last > indices.len() {
            return Err(MetricsError::InvalidCsr(format!("last offset {last} exceeds the {} indices", indices.len())));
        }
        Ok(CsrLists { offsets, indices })
    }
}

impl ItemLists for CsrLists<'_> {
    fn n_lists(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }
    fn list(&self, i: usize) -> &[usize] {
        match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&a), Some(&b)) => self.indices.get(a..b).unwrap_or(&[]),
            _ => &[],
        }
    }
}

/// Checks that `lists` has `n_lists` lists whose indices are all below `n_items`.
pub(crate) fn validate<L: ItemLists + ?Sized>(
    lists: &L,
    what: &'static str,
    n_lists: usize,
    n_items: usize,
) -> Result<()> {
    if lists.n_lists() != n_lists {
        return Err(MetricsError::SizeMismatch { what, expected: n_lists, found: lists.n_lists() });
    }
    for l in 0..n_lists {
        if let Some(&item) = lists.list(l).iter().find(|&&i| i >= n_items) {
            return Err(MetricsError::ItemOutOfRange { what, list: l, item, n_items });
        }
    }
    Ok(())
}
