//! Closed-form squared 2-Wasserstein distance between diagonal Gaussians.

use burn::tensor::{Tensor, backend::Backend};

use crate::error::{OtError, Result};

/// Row-wise squared 2-Wasserstein distance between diagonal Gaussians given as `(mu, logvar)`.
///
/// For `N(mu1, diag sigma1²)` and `N(mu2, diag sigma2²)` with `sigma = exp(logvar / 2)`:
/// `W2² = ||mu1 − mu2||² + ||sigma1 − sigma2||²`, computed for every row of a `[batch, dim]`
/// batch. The result has shape `[batch]` and is differentiable in all four arguments (on an
/// autodiff backend); its gradient is `2 (mu1 − mu2)` in `mu1` and
/// `(sigma1 − sigma2) sigma1` in `logvar1`.
///
/// Non-finite inputs propagate to the output (no host synchronisation is made, so the function
/// stays cheap inside a training step).
///
/// # Errors
/// [`OtError::Shape`] when the four tensors do not all have the same shape, or are empty.
///
/// ```
/// use burn::backend::Flex;
/// use burn::tensor::Tensor;
/// use tears_ot::gaussian_w2_squared;
///
/// let device = Default::default();
/// let mu1 = Tensor::<Flex, 2>::from_floats([[0.0, 0.0], [1.0, 2.0]], &device);
/// let mu2 = Tensor::<Flex, 2>::from_floats([[3.0, 4.0], [1.0, 2.0]], &device);
/// let lv1 = Tensor::<Flex, 2>::zeros([2, 2], &device); // sigma = 1
/// let lv2 = Tensor::<Flex, 2>::from_floats([[0.0, 0.0], [2.0f32.ln() * 2.0, 0.0]], &device); // sigma = (2, 1)
/// let w2 = gaussian_w2_squared(mu1, lv1, mu2, lv2)?;
/// let w2: Vec<f32> = w2.into_data().to_vec().unwrap();
/// assert!((w2[0] - 25.0).abs() < 1e-5); // ||(3, 4)||²
/// assert!((w2[1] - 1.0).abs() < 1e-5); // (2 − 1)²
/// # Ok::<(), tears_ot::OtError>(())
/// ```
pub fn gaussian_w2_squared<B: Backend>(
    mu1: Tensor<B, 2>,
    logvar1: Tensor<B, 2>,
    mu2: Tensor<B, 2>,
    logvar2: Tensor<B, 2>,
) -> Result<Tensor<B, 1>> {
    let shape = mu1.dims();
    if shape.contains(&0) {
        return Err(OtError::Shape {
            what: "mu1",
            expected: "a non-empty [batch, dim] tensor".into(),
            found: shape.to_vec(),
        });
    }
    for (what, other) in [("logvar1", logvar1.dims()), ("mu2", mu2.dims()), ("logvar2", logvar2.dims())] {
        if other != shape {
            return Err(OtError::Shape {
                what,
                expected: format!("the shape of mu1, {shape:?}"),
                found: other.to_vec(),
            });
        }
    }
    let sigma1 = logvar1.mul_scalar(0.5).exp();
    let sigma2 = logvar2.mul_scalar(0.5).exp();
    let dmu = (mu1 - mu2).square().sum_dim(1);
    let dsigma = (sigma1 - sigma2).square().sum_dim(1);
    Ok((dmu + dsigma).squeeze_dim(1))
}
