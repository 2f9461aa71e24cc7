//! Ground costs between point clouds.

use burn::tensor::{Tensor, backend::Backend};

use crate::error::{OtError, Result};

/// The ground cost between two points.
///
/// ```
/// use tears_ot::CostKind;
///
/// assert_eq!(CostKind::default(), CostKind::SquaredEuclidean);
/// assert_eq!(CostKind::HalfSquaredEuclidean.scale(), 0.5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CostKind {
    /// `c(x, y) = ||x − y||²` (POT's `ot.dist` default).
    #[default]
    SquaredEuclidean,
    /// `c(x, y) = ½ ||x − y||²` (the convention of GeomLoss).
    HalfSquaredEuclidean,
}

impl CostKind {
    /// The factor applied to `||x − y||²`.
    ///
    /// ```
    /// assert_eq!(tears_ot::CostKind::SquaredEuclidean.scale(), 1.0);
    /// ```
    pub fn scale(self) -> f64 {
        match self {
            CostKind::SquaredEuclidean => 1.0,
            CostKind::HalfSquaredEuclidean => 0.5,
        }
    }
}

/// Pairwise cost matrices of a batch of point clouds: `x` is `[batch, n, d]`, `y` is
/// `[batch, m, d]`, the result is `[batch, n, m]`.
///
/// Computed as `|x|² + |y|² − 2 x yᵀ` with one batched matrix product, clamped at 0 against
/// rounding; differentiable in `x` and `y`.
///
/// # Errors
/// [`OtError::Shape`] when the batch sizes or dimensions differ, or a size is zero.
///
/// ```
/// use burn::backend::Flex;
/// use burn::tensor::Tensor;
/// use tears_ot::{CostKind, pairwise_cost};
///
/// let device = Default::default();
/// let x = Tensor::<Flex, 3>::from_floats([[[0.0, 0.0], [1.0, 1.0]]], &device);
/// let y = Tensor::<Flex, 3>::from_floats([[[0.0, 2.0]]], &device);
/// let c = pairwise_cost(x, y, CostKind::SquaredEuclidean)?;
/// assert_eq!(c.dims(), [1, 2, 1]);
/// let c: Vec<f32> = c.into_data().to_vec().unwrap();
/// assert_eq!(c, vec![4.0, 2.0]);
/// # Ok::<(), tears_ot::OtError>(())
/// ```
pub fn pairwise_cost<B: Backend>(x: Tensor<B, 3>, y: Tensor<B, 3>, kind: CostKind) -> Result<Tensor<B, 3>> {
    check_clouds(&x, &y)?;
    Ok(pairwise_cost_unchecked(x, y, kind))
}

pub(crate) fn check_clouds<B: Backend>(x: &Tensor<B, 3>, y: &Tensor<B, 3>) -> Result<()> {
    let [bx, n, dx] = x.dims();
    let [by, m, dy] = y.dims();
    if bx == 0 || n == 0 || dx == 0 {
        return Err(OtError::Shape {
            what: "x",
            expected: "a non-empty [batch, n, d] tensor".into(),
            found: vec![bx, n, dx],
        });
    }
    if by != bx || dy != dx || m == 0 {
        return Err(OtError::Shape {
            what: "y",
            expected: format!("[{bx}, m >= 1, {dx}] to match x"),
            found: vec![by, m, dy],
        });
    }
    Ok(())
}

pub(crate) fn pairwise_cost_unchecked<B: Backend>(x: Tensor<B, 3>, y: Tensor<B, 3>, kind: CostKind) -> Tensor<B, 3> {
    // One batched product of augmented matrices: [−2x, |x|², 1] · [y, 1, |y|²]ᵀ
    // = |x_i|² + |y_j|² − 2 x_i·y_j, without any broadcasting op on the [B, n, m] result.
    let x2 = x.clone().square().sum_dim(2); // [B, n, 1]
    let y2 = y.clone().square().sum_dim(2); // [B, m, 1]
    let lhs = Tensor::cat(vec![x.mul_scalar(-2.0), x2.clone(), x2.ones_like()], 2);
    let rhs = Tensor::cat(vec![y, y2.ones_like(), y2], 2);
    let c = lhs.matmul(rhs.swap_dims(1, 2)).clamp_min(0.0);
    match kind {
        CostKind::SquaredEuclidean => c,
        CostKind::HalfSquaredEuclidean => c.mul_scalar(0.5),
    }
}
