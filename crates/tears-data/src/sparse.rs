//! Sparse interaction matrices (CSR, via `sprs`) and dense mini-batches as burn tensors.

use burn::tensor::{Tensor, TensorData, backend::Backend};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use sprs::CsMat;

use crate::error::{DataError, Result};
use crate::split::UserRows;

/// Which value a rating becomes in the matrix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Values {
    /// 1 for ratings strictly above `positive_above`; other ratings are left out of the matrix.
    Binary {
        /// The positivity threshold (see [`crate::POSITIVE_ABOVE`]).
        positive_above: f32,
    },
    /// The raw rating.
    Ratings,
    /// 1 for every rated item, whatever the rating (the "seen" mask).
    Seen,
}

/// A users × items sparse matrix in CSR form.
///
/// ```
/// use tears_data::{Interactions, Values, split::{Rating, UserRows}};
/// let mut rows = UserRows::new();
/// rows.push(7, [Rating { item: 2, rating: 5.0, timestamp: 0 }, Rating { item: 0, rating: 2.0, timestamp: 1 }]);
/// let m = Interactions::from_rows(&rows, 3, Values::Binary { positive_above: 3.5 })?;
/// assert_eq!(m.row_items(0), &[2]);
/// let mut dense = vec![0.0; 3];
/// m.dense_rows_into(&[0], &mut dense);
/// assert_eq!(dense, vec![0.0, 0.0, 1.0]);
/// # Ok::<(), tears_data::DataError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Interactions {
    matrix: CsMat<f32>,
}

impl Interactions {
    /// Builds the matrix of `rows` over `n_items` columns. Duplicate (user, item) pairs keep the
    /// latest rating. An item index `>= n_items` is an error (rows from a [`crate::Split`] never
    /// have one).
    pub fn from_rows(rows: &UserRows, n_items: usize, values: Values) -> Result<Self> {
        let mut indptr = Vec::with_capacity(rows.len() + 1);
        let mut indices = Vec::with_capacity(rows.nnz());
        let mut data = Vec::with_capacity(rows.nnz());
        indptr.push(0);
        let mut scratch: Vec<(u32, i64, f32)> = Vec::new();
        for (_, row) in rows.iter() {
            scratch.clear();
            scratch.extend(row.iter().map(|r| (r.item, r.timestamp, r.rating)));
            scratch.sort_by_key(|&(i, t, _)| (i, t));
            for (k, &(item, _, rating)) in scratch.iter().enumerate() {
                if scratch.get(k + 1).is_some_and(|next| next.0 == item) {
                    continue; // a later rating of the same item follows
                }
                let v = match values {
                    Values::Binary { positive_above } if rating > positive_above => 1.0,
                    Values::Binary { .. } => continue,
                    Values::Ratings => rating,
                    Values::Seen => 1.0,
                };
                if item as usize >= n_items {
                    return Err(DataError::Config(format!(
                        "item index {item} out of range for a matrix of {n_items} items"
                    )));
                }
                indices.push(item as usize);
                data.push(v);
            }
            indptr.push(indices.len());
        }
        Ok(Interactions { matrix: CsMat::new((rows.len(), n_items), indptr, indices, data) })
    }

    /// Number of rows (users).
    pub fn n_rows(&self) -> usize {
        self.matrix.rows()
    }

    /// Number of columns (items).
    pub fn n_items(&self) -> usize {
        self.matrix.cols()
    }

    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.matrix.nnz()
    }

    /// The underlying `sprs` CSR matrix.
    pub fn csr(&self) -> &CsMat<f32> {
        &self.matrix
    }

    /// Column indices of row `r`, ascending.
    pub fn row_items(&self, r: usize) -> &[usize] {
        let range = self.matrix.indptr().outer_inds_sz(r);
        &self.matrix.indices()[range]
    }

    /// Values of row `r`, aligned with [`Interactions::row_items`].
    pub fn row_values(&self, r: usize) -> &[f32] {
        let range = self.matrix.indptr().outer_inds_sz(r);
        &self.matrix.data()[range]
    }

    /// Number of rows that contain each item.
    pub fn item_counts(&self) -> Vec<usize> {
        let mut counts = vec![0usize; self.n_items()];
        for &i in self.matrix.indices() {
            counts[i] += 1;
        }
        counts
    }

    /// Writes the dense rows `rows` into `out` (row-major, `rows.len() × n_items`), overwriting it.
    ///
    /// # Panics
    /// If `out.len() != rows.len() * n_items` or a row index is out of range.
    pub fn dense_rows_into(&self, rows: &[usize], out: &mut [f32]) {
        let n = self.n_items();
        assert_eq!(out.len(), rows.len() * n, "output buffer has the wrong size");
        out.fill(0.0);
        for (b, &r) in rows.iter().enumerate() {
            let dst = &mut out[b * n..(b + 1) * n];
            for (&i, &v) in self.row_items(r).iter().zip(self.row_values(r)) {
                dst[i] = v;
            }
        }
    }

    /// The dense rows `rows` as a `[rows.len(), n_items]` tensor on `device`.
    pub fn to_tensor<B: Backend>(&self, rows: &[usize], device: &B::Device) -> Tensor<B, 2> {
        let mut buf = vec![0.0f32; rows.len() * self.n_items()];
        self.dense_rows_into(rows, &mut buf);
        Tensor::from_data(TensorData::new(buf, [rows.len(), self.n_items()]), device)
    }

    /// Row indices split into mini-batches of at most `batch_size`, shuffled with `seed` when given.
    ///
    /// ```
    /// # use tears_data::{Interactions, Values, split::UserRows};
    /// # let mut rows = UserRows::new();
    /// # for u in 0..5 { rows.push(u, []); }
    /// # let m = Interactions::from_rows(&rows, 1, Values::Seen).unwrap();
    /// let batches = m.batches(2, Some(42));
    /// assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2, 1]);
    /// ```
    pub fn batches(&self, batch_size: usize, seed: Option<u64>) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..self.n_rows()).collect();
        if let Some(seed) = seed {
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        }
        order.chunks(batch_size.max(1)).map(<[usize]>::to_vec).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::split::Rating;

    fn rows() -> UserRows {
        let mut rows = UserRows::new();
        let r = |item, rating, timestamp| Rating { item, rating, timestamp };
        rows.push(1, [r(3, 5.0, 10), r(1, 2.0, 11), r(3, 3.0, 12)]);
        rows.push(2, []);
        rows.push(3, [r(0, 4.5, 1), r(4, 4.0, 2)]);
        rows
    }

    #[test]
    fn duplicates_keep_the_latest_rating() {
        let m = Interactions::from_rows(&rows(), 5, Values::Ratings).expect("valid");
        assert_eq!(m.row_items(0), &[1, 3]);
        assert_eq!(m.row_values(0), &[2.0, 3.0]);
        let b = Interactions::from_rows(&rows(), 5, Values::Binary { positive_above: 3.5 }).expect("valid");
        assert_eq!(b.row_items(0), &[] as &[usize], "item 3's latest rating is 3: not positive");
        assert_eq!(b.row_items(2), &[0, 4]);
        assert_eq!(b.item_counts(), vec![1, 0, 0, 0, 1]);
    }

    #[test]
    fn dense_batch_matches_rows() {
        let m = Interactions::from_rows(&rows(), 5, Values::Seen).expect("valid");
        let mut out = vec![9.0; 10];
        m.dense_rows_into(&[2, 1], &mut out);
        assert_eq!(out, vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn tensor_batch_round_trips() {
        type B = burn::backend::Flex;
        let m = Interactions::from_rows(&rows(), 5, Values::Ratings).expect("valid");
        let t = m.to_tensor::<B>(&[0, 2], &Default::default());
        assert_eq!(t.dims(), [2, 5]);
        let v: Vec<f32> = t.into_data().to_vec().expect("f32");
        assert_eq!(v, vec![0.0, 2.0, 0.0, 3.0, 0.0, 4.5, 0.0, 0.0, 0.0, 4.0]);
    }

    #[test]
    fn batches_cover_every_row_once_and_are_seeded() {
        let m = Interactions::from_rows(&rows(), 5, Values::Seen).expect("valid");
        let a = m.batches(2, Some(1));
        let mut all: Vec<usize> = a.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, vec![0, 1, 2]);
        assert!(Interactions::from_rows(&rows(), 4, Values::Seen).is_err(), "item 4 is out of range");
        assert_eq!(a, m.batches(2, Some(1)));
    }
}
