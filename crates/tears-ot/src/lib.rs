//! # tears-ot
//!
//! Optimal-transport kernels for the TEARS alignment loss, generic over burn backends:
//!
//! - [`gaussian_w2_squared`]: the closed-form squared 2-Wasserstein distance between diagonal
//!   Gaussians given as `(mu, logvar)`, row-wise over a batch;
//! - [`sinkhorn()`] / [`sinkhorn_cost`]: batched entropic OT in the log domain (point clouds or
//!   cost matrices, weights, eps absolute or relative to the median / max cost, eps-scaling,
//!   marginal-error stopping), returning the transport cost, the entropic value, the dual
//!   potentials and optionally the plan;
//! - [`sinkhorn_divergence`]: the debiased Sinkhorn divergence
//!   `OT(a, b) − ½ OT(a, a) − ½ OT(b, b)`.
//!
//! Gradients follow the envelope theorem: the Sinkhorn loop runs on detached tensors and one
//! differentiable update from the converged potentials gives the value and its gradient, so
//! memory does not grow with the number of iterations (see the [`sinkhorn`](mod@sinkhorn) module docs and the `memory` test).
//!
//! ```
//! use burn::backend::{Autodiff, Flex};
//! use burn::tensor::{Distribution, Tensor};
//! use tears_ot::{SinkhornConfig, gaussian_w2_squared, sinkhorn_divergence};
//!
//! type B = Autodiff<Flex>;
//! let device = Default::default();
//! let mu_s = Tensor::<B, 2>::random([16, 4], Distribution::Normal(0.0, 1.0), &device).require_grad();
//! let lv_s = Tensor::<B, 2>::zeros([16, 4], &device);
//! let mu_r = Tensor::<B, 2>::random([16, 4], Distribution::Normal(0.0, 1.0), &device);
//! let lv_r = Tensor::<B, 2>::zeros([16, 4], &device);
//!
//! // `gaussian-w2` alignment: mean over users of the closed-form W2².
//! let w2 = gaussian_w2_squared(mu_s.clone(), lv_s, mu_r.clone(), lv_r)?.mean();
//! // `sinkhorn` alignment: the debiased divergence between the two clouds of latents.
//! let config = SinkhornConfig::default().with_tol(1e-4);
//! let s = sinkhorn_divergence(mu_s.clone().unsqueeze(), mu_r.unsqueeze(), None, None, &config)?;
//! let loss = w2 + s.divergence.mean();
//! let grads = loss.backward();
//! assert!(mu_s.grad(&grads).is_some());
//! # Ok::<(), tears_ot::OtError>(())
//! ```

pub mod cost;
pub mod error;
pub mod gaussian;
pub mod sinkhorn;

pub use cost::{CostKind, pairwise_cost};
pub use error::{OtError, Result};
pub use gaussian::gaussian_w2_squared;
pub use sinkhorn::{
    Epsilon, SinkhornConfig, SinkhornDivergence, SinkhornMode, SinkhornOutput, SinkhornReport, WeightPolicy, sinkhorn,
    sinkhorn_cost, sinkhorn_divergence,
};
