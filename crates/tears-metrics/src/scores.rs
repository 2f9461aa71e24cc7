//! A users × items matrix of scores, borrowed from a row-major buffer or read from a burn tensor.

use std::borrow::Cow;

use burn::tensor::{Tensor, backend::Backend};

use crate::error::{MetricsError, Result};

/// A dense `[n_users × n_items]` matrix of `f32` scores in row-major order (row = user).
///
/// Higher is better. `NaN` ranks like negative infinity (last, ties broken by item index).
///
/// ```
/// use tears_metrics::ScoreMatrix;
/// let data = [0.1, 0.9, 0.5, /* user 1 */ 1.0, 0.0, 0.2];
/// let scores = ScoreMatrix::new(&data, 2, 3)?;
/// assert_eq!(scores.n_users(), 2);
/// assert_eq!(scores.row(1), Some(&[1.0, 0.0, 0.2][..]));
/// # Ok::<(), tears_metrics::MetricsError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreMatrix<'a> {
    data: Cow<'a, [f32]>,
    n_users: usize,
    n_items: usize,
}

fn check_len(len: usize, n_users: usize, n_items: usize) -> Result<()> {
    let expected = n_users
        .checked_mul(n_items)
        .ok_or_else(|| MetricsError::Config(format!("{n_users} × {n_items} overflows usize")))?;
    if len != expected {
        return Err(MetricsError::SizeMismatch { what: "scores buffer length (users × items)", expected, found: len });
    }
    Ok(())
}

impl<'a> ScoreMatrix<'a> {
    /// Borrows a row-major buffer of `n_users * n_items` scores.
    pub fn new(data: &'a [f32], n_users: usize, n_items: usize) -> Result<Self> {
        check_len(data.len(), n_users, n_items)?;
        Ok(ScoreMatrix { data: Cow::Borrowed(data), n_users, n_items })
    }

    /// Takes ownership of a row-major buffer of `n_users * n_items` scores.
    ///
    /// ```
    /// use tears_metrics::ScoreMatrix;
    /// let scores = ScoreMatrix::from_vec(vec![0.0; 6], 3, 2)?;
    /// assert_eq!(scores.n_items(), 2);
    /// # Ok::<(), tears_metrics::MetricsError>(())
    /// ```
    pub fn from_vec(data: Vec<f32>, n_users: usize, n_items: usize) -> Result<ScoreMatrix<'static>> {
        check_len(data.len(), n_users, n_items)?;
        Ok(ScoreMatrix { data: Cow::Owned(data), n_users, n_items })
    }

    /// Reads a `[users, items]` score tensor of any backend and float type (converted to `f32`).
    ///
    /// ```
    /// use burn::tensor::Tensor;
    /// use tears_metrics::ScoreMatrix;
    /// type B = burn::backend::Flex;
    /// let device = Default::default();
    /// let t = Tensor::<B, 2>::from_floats([[0.1, 0.9, 0.5], [1.0, 0.0, 0.2]], &device);
    /// let scores = ScoreMatrix::from_tensor(t)?;
    /// assert_eq!((scores.n_users(), scores.n_items()), (2, 3));
    /// assert_eq!(scores.row(0), Some(&[0.1, 0.9, 0.5][..]));
    /// # Ok::<(), tears_metrics::MetricsError>(())
    /// ```
    pub fn from_tensor<B: Backend>(scores: Tensor<B, 2>) -> Result<ScoreMatrix<'static>> {
        let [n_users, n_items] = scores.dims();
        let data = scores
            .try_into_data()
            .map_err(|e| MetricsError::TensorRead(format!("{e:?}")))?
            .convert::<f32>()
            .into_vec::<f32>()
            .map_err(|e| MetricsError::TensorRead(format!("{e:?}")))?;
        ScoreMatrix::from_vec(data, n_users, n_items)
    }

    /// Number of users (rows).
    pub fn n_users(&self) -> usize {
        self.n_users
    }

    /// Number of items (columns).
    pub fn n_items(&self) -> usize {
        self.n_items
    }

    /// The scores of user `u`, or `None` when `u >= n_users`.
    pub fn row(&self, u: usize) -> Option<&[f32]> {
        let start = u.checked_mul(self.n_items)?;
        if u >= self.n_users {
            return None;
        }
        self.data.get(start..start + self.n_items)
    }

    /// The whole row-major buffer.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }
}
