//! Batched entropic optimal transport (Sinkhorn) in the log domain, and the debiased Sinkhorn
//! divergence.
//!
//! # Problem
//! For every problem of a batch, with cost `C` (`n × m`) and weights `a`, `b`:
//! `OT_eps(a, b) = min_{P ≥ 0, P1 = a, Pᵀ1 = b} <P, C> + eps KL(P | a ⊗ b)`, solved through its
//! dual potentials `(f, g)`:
//! `g_j = −eps LSE_i(log a_i + (f_i − C_ij)/eps)`, `f_i = −eps LSE_j(log b_j + (g_j − C_ij)/eps)`,
//! `P_ij = a_i b_j exp((f_i + g_j − C_ij)/eps)`, and the entropic value `<a, f> + <b, g>`.
//!
//! # Iterations
//! Potentials are always kept in the log domain. Two ways to run the updates:
//! - [`SinkhornMode::LogSumExp`]: every half-update is a stable log-sum-exp over the cost matrix
//!   (max-shifted), the textbook log-domain Sinkhorn (POT's `sinkhorn_log`).
//! - [`SinkhornMode::Stabilized`] (default): log-domain stabilisation by absorption (Schmitzer
//!   2019). The converged-so-far potentials are absorbed into a kernel
//!   `K̃_ij = exp((f_i + g_j − C_ij)/eps)` whose entries are bounded (each row sums to one
//!   against `b` right after an exact log-sum-exp update), and the iterations between absorptions
//!   are two batched matrix–vector products on `K̃` with bounded scalings. Whenever the scalings
//!   drift beyond `exp(±20)` they are absorbed back into the potentials; if a block of iterations
//!   ever produces a non-finite value it is rolled back and redone with exact log-sum-exp
//!   updates. The naive kernel `exp(−C/eps)` is never formed, so a tiny eps does not underflow.
//!
//! A fresh solve starts with one exact log-sum-exp `f` update from `g = 0` before the first
//! absorption; later eps stages (eps-scaling) absorb the warm-started potentials directly. The
//! marginal error (L1 norm of `Pᵀ1 − b`, rows being exact after each `f` update) is checked
//! every `check_every` iterations; convergence is accepted only while the scalings are bounded.
//!
//! The `OT(a, a)` and `OT(b, b)` terms of [`sinkhorn_divergence`] are symmetric problems, solved
//! with the averaged update `f ← ½ (f + T(f))`, which converges in a few iterations.
//!
//! # Gradients
//! The iterations run on detached tensors, so no autodiff graph is recorded however many
//! iterations are needed. The outputs are then computed by one differentiable update from the
//! detached converged potential `g` (envelope theorem): `f̃ = T(g; C)` and
//! `value = <a, f̃> + <b, g>`, whose gradient is `P` in `C`, `f` in `a` and `g` in `b`. Memory
//! therefore does not grow with the iteration count.

use burn::tensor::{DType, Tensor, TensorData, backend::Backend};

use crate::cost::{CostKind, check_clouds, pairwise_cost_unchecked};
use crate::error::{OtError, Result};

/// Exponents below this are clamped when the stabilised kernel is formed: `exp(−80)` is still a
/// normal `f32`, so matrix products never meet subnormal numbers, and the entries it affects are
/// negligible next to a row that sums to one.
const KERNEL_FLOOR: f64 = -80.0;
/// Scalings beyond `exp(±ABSORB_DRIFT)` are absorbed into the potentials.
const ABSORB_DRIFT: f64 = 20.0;

/// How the entropic regularisation `eps` is given.
///
/// Relative choices are resolved per problem of the batch from its (detached) cost matrix. When
/// the reference cost is zero (all costs zero) the relative factor is used as an absolute eps.
///
/// ```
/// use tears_ot::Epsilon;
///
/// assert_eq!(Epsilon::RelativeToMedian(0.1).resolve(2.0, 10.0), 0.2);
/// assert_eq!(Epsilon::RelativeToMax(0.1).resolve(2.0, 10.0), 1.0);
/// assert_eq!(Epsilon::Absolute(0.5).resolve(2.0, 10.0), 0.5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Epsilon {
    /// An absolute value, in cost units.
    Absolute(f64),
    /// A factor times the median of the cost matrix.
    RelativeToMedian(f64),
    /// A factor times the largest cost.
    RelativeToMax(f64),
}

impl Default for Epsilon {
    fn default() -> Self {
        Epsilon::RelativeToMedian(0.05)
    }
}

impl Epsilon {
    /// The absolute eps for a problem whose cost matrix has the given median and maximum.
    ///
    /// ```
    /// assert_eq!(tears_ot::Epsilon::RelativeToMedian(0.5).resolve(0.0, 0.0), 0.5);
    /// ```
    pub fn resolve(self, median: f64, max: f64) -> f64 {
        let (factor, reference) = match self {
            Epsilon::Absolute(e) => return e,
            Epsilon::RelativeToMedian(r) => (r, if median > 0.0 { median } else { max }),
            Epsilon::RelativeToMax(r) => (r, max),
        };
        if reference > 0.0 { factor * reference } else { factor }
    }

    fn factor(self) -> f64 {
        match self {
            Epsilon::Absolute(e) | Epsilon::RelativeToMedian(e) | Epsilon::RelativeToMax(e) => e,
        }
    }
}

/// Which iteration scheme runs between the exact log-sum-exp updates (see the module docs).
///
/// ```
/// assert_eq!(tears_ot::SinkhornMode::default(), tears_ot::SinkhornMode::Stabilized);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SinkhornMode {
    /// Log-domain stabilisation by absorption: matrix–vector products on a bounded kernel.
    #[default]
    Stabilized,
    /// Every update is an explicit stable log-sum-exp over the cost matrix.
    LogSumExp,
}

/// What to do with weights that do not sum to one.
///
/// ```
/// assert_eq!(tears_ot::WeightPolicy::default(), tears_ot::WeightPolicy::Normalize);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightPolicy {
    /// Divide each weight vector by its sum.
    #[default]
    Normalize,
    /// Refuse weights whose sum differs from one by more than `1e-6` ([`OtError::Weights`]).
    Strict,
}

/// Settings of the Sinkhorn solver.
///
/// ```
/// use tears_ot::{CostKind, Epsilon, SinkhornConfig};
///
/// let config = SinkhornConfig::default()
///     .with_eps(Epsilon::Absolute(0.1))
///     .with_cost(CostKind::HalfSquaredEuclidean)
///     .with_tol(1e-5)
///     .with_max_iter(500)
///     .with_eps_scaling(Some(0.5));
/// assert!(config.validate().is_ok());
/// assert!(config.clone().with_tol(-1.0).validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SinkhornConfig {
    /// Entropic regularisation (default: 0.05 × the median cost).
    pub eps: Epsilon,
    /// Ground cost for point clouds (default: squared Euclidean).
    pub cost: CostKind,
    /// Stop when the L1 marginal error, relative to the total mass, is at most this (default
    /// `1e-6`). In `f32` the attainable error is about `1e-7 · log n`; use `1e-5` or looser there.
    pub tol: f64,
    /// Maximum number of iterations over all eps stages (default 1000). Running out is not an
    /// error: the report says `converged: false`.
    pub max_iter: usize,
    /// Check the marginal error every this many iterations (default 10).
    pub check_every: usize,
    /// eps-scaling: start at the largest cost and multiply eps by this factor (in `(0, 1)`)
    /// until the target eps, warm-starting the potentials; each intermediate stage runs
    /// `check_every` iterations. `None` (default) solves at the target eps directly.
    pub eps_scaling: Option<f64>,
    /// Iteration scheme (default [`SinkhornMode::Stabilized`]).
    pub mode: SinkhornMode,
    /// Weights that do not sum to one (default: normalise).
    pub weights: WeightPolicy,
    /// Return the dense plan `P` (default false).
    pub return_plan: bool,
    /// Refuse to return a plan larger than this many bytes (default 1 GiB).
    pub max_plan_bytes: usize,
}

impl Default for SinkhornConfig {
    fn default() -> Self {
        Self {
            eps: Epsilon::default(),
            cost: CostKind::default(),
            tol: 1e-6,
            max_iter: 1000,
            check_every: 10,
            eps_scaling: None,
            mode: SinkhornMode::default(),
            weights: WeightPolicy::default(),
            return_plan: false,
            max_plan_bytes: 1 << 30,
        }
    }
}

impl SinkhornConfig {
    /// Sets [`Self::eps`].
    pub fn with_eps(mut self, eps: Epsilon) -> Self {
        self.eps = eps;
        self
    }
    /// Sets [`Self::cost`].
    pub fn with_cost(mut self, cost: CostKind) -> Self {
        self.cost = cost;
        self
    }
    /// Sets [`Self::tol`].
    pub fn with_tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }
    /// Sets [`Self::max_iter`].
    pub fn with_max_iter(mut self, max_iter: usize) -> Self {
        self.max_iter = max_iter;
        self
    }
    /// Sets [`Self::check_every`].
    pub fn with_check_every(mut self, check_every: usize) -> Self {
        self.check_every = check_every;
        self
    }
    /// Sets [`Self::eps_scaling`].
    pub fn with_eps_scaling(mut self, factor: Option<f64>) -> Self {
        self.eps_scaling = factor;
        self
    }
    /// Sets [`Self::mode`].
    pub fn with_mode(mut self, mode: SinkhornMode) -> Self {
        self.mode = mode;
        self
    }
    /// Sets [`Self::weights`].
    pub fn with_weights(mut self, weights: WeightPolicy) -> Self {
        self.weights = weights;
        self
    }
    /// Sets [`Self::return_plan`].
    pub fn with_plan(mut self, return_plan: bool) -> Self {
        self.return_plan = return_plan;
        self
    }
    /// Sets [`Self::max_plan_bytes`].
    pub fn with_max_plan_bytes(mut self, bytes: usize) -> Self {
        self.max_plan_bytes = bytes;
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`OtError::Config`] for a non-positive or non-finite eps, a negative or NaN tolerance, a
    /// zero `max_iter` or `check_every`, or a scaling factor outside `(0, 1)`.
    ///
    /// ```
    /// use tears_ot::{Epsilon, SinkhornConfig};
    /// assert!(SinkhornConfig::default().with_eps(Epsilon::Absolute(0.0)).validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        let e = self.eps.factor();
        if !(e.is_finite() && e > 0.0) {
            return Err(OtError::Config(format!("eps must be positive and finite, got {:?}", self.eps)));
        }
        if self.tol.is_nan() || self.tol < 0.0 {
            return Err(OtError::Config(format!("tol must be >= 0, got {}", self.tol)));
        }
        if self.max_iter == 0 || self.check_every == 0 {
            return Err(OtError::Config("max_iter and check_every must be at least 1".into()));
        }
        if let Some(s) = self.eps_scaling
            && !(s > 0.0 && s < 1.0)
        {
            return Err(OtError::Config(format!("eps_scaling factor must lie in (0, 1), got {s}")));
        }
        Ok(())
    }
}

/// How a solve went.
///
/// ```
/// use tears_ot::SinkhornReport;
/// let report = SinkhornReport::default();
/// assert!(!report.converged);
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SinkhornReport {
    /// Sinkhorn iterations run (one `g` and one `f` update each), over all eps stages.
    pub iterations: usize,
    /// Whether every problem of the batch reached the tolerance at the target eps.
    pub converged: bool,
    /// Per problem: L1 norm of `Pᵀ1 − b` of the returned plan (its rows are exact).
    pub marginal_error: Vec<f64>,
    /// Per problem: the target eps used.
    pub eps: Vec<f64>,
    /// Number of eps stages (1 without eps-scaling).
    pub stages: usize,
    /// Number of kernel absorptions ([`SinkhornMode::Stabilized`]).
    pub absorptions: usize,
    /// Blocks of iterations redone with exact log-sum-exp updates after a non-finite value.
    pub fallback_blocks: usize,
}

/// The result of [`sinkhorn()`] / [`sinkhorn_cost`].
#[derive(Debug, Clone)]
pub struct SinkhornOutput<B: Backend> {
    /// Per problem `[batch]`: the entropic value `<a, f> + <b, g>`
    /// (= `<P, C> + eps KL(P | a ⊗ b)` at convergence). Differentiable by the envelope theorem.
    pub value: Tensor<B, 1>,
    /// Per problem `[batch]`: the transport cost `<P, C>`. Its gradient treats the plan as
    /// constant (`P` with respect to `C`).
    pub transport_cost: Tensor<B, 1>,
    /// Dual potential on the `x` side, `[batch, n]`, detached.
    pub f: Tensor<B, 2>,
    /// Dual potential on the `y` side, `[batch, m]`, detached.
    pub g: Tensor<B, 2>,
    /// The plan `[batch, n, m]` (detached) when [`SinkhornConfig::return_plan`] is set.
    pub plan: Option<Tensor<B, 3>>,
    /// Iterations, convergence and marginal errors.
    pub report: SinkhornReport,
}

/// The result of [`sinkhorn_divergence`].
#[derive(Debug, Clone)]
pub struct SinkhornDivergence<B: Backend> {
    /// Per problem `[batch]`: `OT(a, b) − ½ OT(a, a) − ½ OT(b, b)`; differentiable.
    pub divergence: Tensor<B, 1>,
    /// The solve of `OT(a, b)`.
    pub xy: SinkhornOutput<B>,
    /// The solve of `OT(a, a)`.
    pub xx: SinkhornOutput<B>,
    /// The solve of `OT(b, b)`.
    pub yy: SinkhornOutput<B>,
}

/// Entropic OT between batches of point clouds `x` `[batch, n, d]` and `y` `[batch, m, d]`, with
/// optional weights `a` `[batch, n]` and `b` `[batch, m]` (uniform when `None`).
///
/// # Errors
/// [`OtError::Shape`] for mismatched shapes, [`OtError::NonFinite`] for NaN/inf inputs,
/// [`OtError::Weights`] for invalid weights, [`OtError::Config`] for invalid settings,
/// [`OtError::PlanTooLarge`] when the requested plan exceeds the limit,
/// [`OtError::Numerical`] if even exact log-sum-exp updates overflow.
///
/// ```
/// use burn::backend::Flex;
/// use burn::tensor::{Distribution, Tensor};
/// use tears_ot::{Epsilon, SinkhornConfig, sinkhorn};
///
/// let device = Default::default();
/// let x = Tensor::<Flex, 3>::random([2, 30, 4], Distribution::Normal(0.0, 1.0), &device);
/// let y = Tensor::<Flex, 3>::random([2, 20, 4], Distribution::Normal(1.0, 1.0), &device);
/// let config = SinkhornConfig::default().with_eps(Epsilon::RelativeToMedian(0.1)).with_tol(1e-5);
/// let out = sinkhorn(x, y, None, None, &config)?;
/// assert_eq!(out.value.dims(), [2]);
/// assert!(out.report.converged);
/// assert!(out.report.marginal_error.iter().all(|e| *e <= 1e-5));
/// # Ok::<(), tears_ot::OtError>(())
/// ```
pub fn sinkhorn<B: Backend>(
    x: Tensor<B, 3>,
    y: Tensor<B, 3>,
    a: Option<Tensor<B, 2>>,
    b: Option<Tensor<B, 2>>,
    config: &SinkhornConfig,
) -> Result<SinkhornOutput<B>> {
    config.validate()?;
    check_clouds(&x, &y)?;
    check_finite(&x, "x")?;
    check_finite(&y, "y")?;
    let cost = pairwise_cost_unchecked(x, y, config.cost);
    let eps = resolve_eps(&cost.clone().detach(), config.eps)?;
    solve(cost, a, b, &eps, config, false)
}

/// Entropic OT for a batch of cost matrices `[batch, n, m]` with optional weights (uniform when
/// `None`). Same outputs and errors as [`sinkhorn()`].
///
/// ```
/// use burn::backend::Flex;
/// use burn::tensor::Tensor;
/// use tears_ot::{Epsilon, SinkhornConfig, sinkhorn_cost};
///
/// let device = Default::default();
/// // Two points each, the identity matching is free: the cost is ~0.
/// let c = Tensor::<Flex, 3>::from_floats([[[0.0, 1.0], [1.0, 0.0]]], &device);
/// let config = SinkhornConfig::default().with_eps(Epsilon::Absolute(0.01)).with_plan(true);
/// let out = sinkhorn_cost(c, None, None, &config)?;
/// let cost: Vec<f32> = out.transport_cost.into_data().to_vec().unwrap();
/// assert!(cost[0] < 1e-6);
/// assert_eq!(out.plan.map(|p| p.dims()), Some([1, 2, 2]));
/// # Ok::<(), tears_ot::OtError>(())
/// ```
pub fn sinkhorn_cost<B: Backend>(
    cost: Tensor<B, 3>,
    a: Option<Tensor<B, 2>>,
    b: Option<Tensor<B, 2>>,
    config: &SinkhornConfig,
) -> Result<SinkhornOutput<B>> {
    config.validate()?;
    let dims = cost.dims();
    if dims.contains(&0) {
        return Err(OtError::Shape {
            what: "cost",
            expected: "a non-empty [batch, n, m] tensor".into(),
            found: dims.to_vec(),
        });
    }
    check_finite(&cost, "cost")?;
    let eps = resolve_eps(&cost.clone().detach(), config.eps)?;
    solve(cost, a, b, &eps, config, false)
}

/// Debiased Sinkhorn divergence `S = OT(a, b) − ½ OT(a, a) − ½ OT(b, b)` between batches of point
/// clouds, using the entropic values. It is non-negative, symmetric, and zero when the two
/// clouds coincide. A relative eps is resolved from the cross cost `C(x, y)` and used for all
/// three terms. Differentiable in `x`, `y`, `a` and `b`; the autodiff graph holds only the three
/// final updates.
///
/// # Errors
/// As [`sinkhorn()`].
///
/// ```
/// use burn::backend::{Autodiff, Flex};
/// use burn::tensor::{Distribution, Tensor};
/// use tears_ot::{Epsilon, SinkhornConfig, sinkhorn_divergence};
///
/// type B = Autodiff<Flex>;
/// let device = Default::default();
/// // A TEARS-like loss: a batch of 64 text latents against 64 backbone latents of dimension 8.
/// let z_text = Tensor::<B, 2>::random([64, 8], Distribution::Normal(0.0, 1.0), &device).require_grad();
/// let z_rec = Tensor::<B, 2>::random([64, 8], Distribution::Normal(0.5, 1.0), &device);
/// let config = SinkhornConfig::default().with_eps(Epsilon::RelativeToMedian(0.05)).with_tol(1e-4);
/// let s = sinkhorn_divergence(z_text.clone().unsqueeze(), z_rec.unsqueeze(), None, None, &config)?;
/// let loss = s.divergence.mean();
/// let grads = loss.backward();
/// let grad = z_text.grad(&grads).expect("z_text is tracked");
/// assert_eq!(grad.dims(), [64, 8]);
/// # Ok::<(), tears_ot::OtError>(())
/// ```
pub fn sinkhorn_divergence<B: Backend>(
    x: Tensor<B, 3>,
    y: Tensor<B, 3>,
    a: Option<Tensor<B, 2>>,
    b: Option<Tensor<B, 2>>,
    config: &SinkhornConfig,
) -> Result<SinkhornDivergence<B>> {
    config.validate()?;
    check_clouds(&x, &y)?;
    check_finite(&x, "x")?;
    check_finite(&y, "y")?;
    let cxy = pairwise_cost_unchecked(x.clone(), y.clone(), config.cost);
    let eps = resolve_eps(&cxy.clone().detach(), config.eps)?;
    let cxx = pairwise_cost_unchecked(x.clone(), x, config.cost);
    let cyy = pairwise_cost_unchecked(y.clone(), y, config.cost);
    let xy = solve(cxy, a.clone(), b.clone(), &eps, config, false)?;
    let xx = solve(cxx, a.clone(), a, &eps, config, true)?;
    let yy = solve(cyy, b.clone(), b, &eps, config, true)?;
    let divergence = xy.value.clone() - (xx.value.clone() + yy.value.clone()).mul_scalar(0.5);
    Ok(SinkhornDivergence { divergence, xy, xx, yy })
}

// ---------------------------------------------------------------------------------------------
// Internals.

/// Reads a small tensor back to the host as `f64`.
fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

fn check_finite<B: Backend, const D: usize>(t: &Tensor<B, D>, what: &'static str) -> Result<()> {
    let ok = host(t.clone().detach().is_finite().all().float());
    if ok.first().is_some_and(|v| *v > 0.5) { Ok(()) } else { Err(OtError::NonFinite { what }) }
}

/// Per-problem eps from a detached cost `[batch, n, m]`.
fn resolve_eps<B: Backend>(cost: &Tensor<B, 3>, eps: Epsilon) -> Result<Vec<f64>> {
    let [batch, n, m] = cost.dims();
    let values: Vec<f64> = match eps {
        Epsilon::Absolute(e) => vec![e; batch],
        Epsilon::RelativeToMax(_) => host(cost.clone().reshape([batch, n * m]).max_dim(1).reshape([batch]))
            .into_iter()
            .map(|mx| eps.resolve(0.0, mx))
            .collect(),
        Epsilon::RelativeToMedian(_) => {
            let data = cost.clone().into_data();
            let all: Vec<f64> = data.iter::<f64>().collect();
            all.chunks(n * m)
                .map(|chunk| {
                    let mut v = chunk.to_vec();
                    let max = v.iter().copied().fold(0.0f64, f64::max);
                    eps.resolve(median(&mut v), max)
                })
                .collect()
        }
    };
    if let Some(bad) = values.iter().find(|e| !(e.is_finite() && **e > 0.0)) {
        return Err(OtError::Config(format!("resolved eps must be positive and finite, got {bad}")));
    }
    Ok(values)
}

/// Median as numpy defines it (mean of the two middle values for an even count).
fn median(v: &mut [f64]) -> f64 {
    let len = v.len();
    if len == 0 {
        return 0.0;
    }
    let mid = len / 2;
    let (lower, upper, _) = v.select_nth_unstable_by(mid, f64::total_cmp);
    let upper = *upper;
    if len % 2 == 1 {
        upper
    } else {
        let lower_max = lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        0.5 * (lower_max + upper)
    }
}

/// Checks and normalises one weight vector; `None` gives uniform weights.
fn prepare_weights<B: Backend>(
    w: Option<Tensor<B, 2>>,
    batch: usize,
    len: usize,
    what: &'static str,
    policy: WeightPolicy,
    device: &B::Device,
    dtype: DType,
) -> Result<Tensor<B, 2>> {
    let Some(w) = w else {
        return Ok(Tensor::full([batch, len], 1.0 / len as f64, (device, dtype)));
    };
    if w.dims() != [batch, len] {
        return Err(OtError::Shape { what, expected: format!("[{batch}, {len}]"), found: w.dims().to_vec() });
    }
    check_finite(&w, what)?;
    let wd = w.clone().detach();
    let mins = host(wd.clone().min_dim(1));
    let sums = host(wd.sum_dim(1));
    if let Some(m) = mins.iter().find(|m| **m < 0.0) {
        return Err(OtError::Weights { what, message: format!("negative weight {m}") });
    }
    if let Some(s) = sums.iter().find(|s| s.is_nan() || **s <= 0.0) {
        return Err(OtError::Weights { what, message: format!("weights sum to {s}") });
    }
    match policy {
        WeightPolicy::Normalize => {
            let total = w.clone().sum_dim(1);
            Ok(w / total)
        }
        WeightPolicy::Strict => {
            if let Some(s) = sums.iter().find(|s| (**s - 1.0).abs() > 1e-6) {
                return Err(OtError::Weights { what, message: format!("weights sum to {s}, not 1") });
            }
            Ok(w)
        }
    }
}

/// A per-problem scalar as a `[batch, 1]` tensor.
fn column<B: Backend>(values: &[f64], device: &B::Device, dtype: DType) -> Tensor<B, 2> {
    Tensor::from_data(TensorData::new(values.to_vec(), [values.len(), 1]), (device, dtype))
}

/// The outer sum `p_i + q_j` of `p` `[B, R]` and `q` `[B, L]` as `[B, R, L]`, computed as one
/// batched rank-2 matrix product `[p, 1] · [1, q]ᵀ` (exact: each entry is one rounded addition).
/// Broadcasting binary ops go through a slow strided path on some CPU backends; a matrix product
/// writes the result contiguously at memory speed.
pub(crate) fn outer_sum<B: Backend>(p: Tensor<B, 2>, q: Tensor<B, 2>) -> Tensor<B, 3> {
    let lhs = Tensor::cat(vec![p.clone().unsqueeze_dim::<3>(2), p.ones_like().unsqueeze_dim::<3>(2)], 2);
    let rhs = Tensor::cat(vec![q.ones_like().unsqueeze_dim::<3>(1), q.unsqueeze_dim::<3>(1)], 1);
    lhs.matmul(rhs)
}

/// `K / eps` for a per-problem eps, without a broadcast when all problems share one eps.
fn scale_cost<B: Backend>(cost: &Tensor<B, 3>, eps: &[f64]) -> Tensor<B, 3> {
    match eps.first() {
        Some(e0) if eps.iter().all(|e| e == e0) => cost.clone().div_scalar(*e0),
        _ => Tensor::cat(eps.iter().enumerate().map(|(i, e)| cost.clone().narrow(0, i, 1).div_scalar(*e)).collect(), 0),
    }
}

/// Row-wise stable log-sum-exp of `h_j − k_ij` over the last axis: returns
/// `LSE_j(h_j − k_ij)` as `[B, R]`.
fn lse_rows<B: Backend>(k: &Tensor<B, 3>, h: Tensor<B, 2>) -> Tensor<B, 2> {
    let [batch, rows, _] = k.dims();
    let zeros = Tensor::<B, 2>::zeros([batch, rows], (&k.device(), k.dtype()));
    let x = outer_sum(zeros, h.clone()) - k.clone();
    let mx = x.max_dim(2).squeeze_dim::<2>(2);
    let shifted = outer_sum(mx.clone().neg(), h) - k.clone();
    shifted.exp().sum_dim(2).squeeze_dim::<2>(2).log() + mx
}

/// `−eps LSE_j(h_j − k_ij)`: one Sinkhorn half-update.
fn softmin<B: Backend>(k: &Tensor<B, 3>, h: Tensor<B, 2>, eps2: &Tensor<B, 2>) -> Tensor<B, 2> {
    lse_rows(k, h).neg() * eps2.clone()
}

/// The stabilised kernel `exp(max(F_i + G_j − K_ij, floor))` for scaled potentials `F = f/eps`,
/// `G = g/eps`.
fn absorbed_kernel<B: Backend>(fs: &Tensor<B, 2>, gs: &Tensor<B, 2>, k: &Tensor<B, 3>) -> Tensor<B, 3> {
    (outer_sum(fs.clone(), gs.clone()) - k.clone()).clamp_min(KERNEL_FLOOR).exp()
}

/// Detached data of one batch of problems.
struct Problem<B: Backend> {
    /// `[B, n, m]`.
    cost: Tensor<B, 3>,
    /// `[B, m, n]`, contiguous; made on first use (one strided copy), so that the `g` half-update
    /// of the log-sum-exp iterations also reduces over a contiguous axis.
    cost_t: std::cell::OnceCell<Tensor<B, 3>>,
    a: Tensor<B, 2>,
    b: Tensor<B, 2>,
    loga: Tensor<B, 2>,
    logb: Tensor<B, 2>,
}

impl<B: Backend> Problem<B> {
    fn cost_t(&self) -> &Tensor<B, 3> {
        self.cost_t.get_or_init(|| self.cost.clone().swap_dims(1, 2).mul_scalar(1.0))
    }
}

/// Per-stage constants.
struct Stage<B: Backend> {
    eps: Vec<f64>,
    eps2: Tensor<B, 2>,
    /// `C / eps`, `[B, n, m]`.
    k: Tensor<B, 3>,
    /// `Cᵀ / eps`, `[B, m, n]`, made on first use.
    kt: std::cell::OnceCell<Tensor<B, 3>>,
}

impl<B: Backend> Stage<B> {
    fn kt(&self, p: &Problem<B>) -> &Tensor<B, 3> {
        self.kt.get_or_init(|| scale_cost(p.cost_t(), &self.eps))
    }
}

struct Counters {
    iterations: usize,
    absorptions: usize,
    fallback_blocks: usize,
}

/// `g ← T(f)`: the exact log-domain `g` half-update.
fn update_g<B: Backend>(p: &Problem<B>, s: &Stage<B>, f: &Tensor<B, 2>) -> Tensor<B, 2> {
    softmin(s.kt(p), f.clone() / s.eps2.clone() + p.loga.clone(), &s.eps2)
}

/// `f ← T(g)`: the exact log-domain `f` half-update.
fn update_f<B: Backend>(p: &Problem<B>, s: &Stage<B>, g: &Tensor<B, 2>) -> Tensor<B, 2> {
    softmin(&s.k, g.clone() / s.eps2.clone() + p.logb.clone(), &s.eps2)
}

fn all_below(errors: &[f64], tol: Option<f64>) -> bool {
    tol.is_some_and(|t| !errors.is_empty() && errors.iter().all(|e| *e <= t))
}

/// Runs up to `budget` exact log-domain iterations (`g` then `f` update) from `f`, checking every
/// `check_every`; returns `(f, g, errors of the last check)`.
fn lse_block<B: Backend>(
    p: &Problem<B>,
    s: &Stage<B>,
    f: Tensor<B, 2>,
    budget: usize,
    check_every: usize,
    tol: Option<f64>,
    counters: &mut Counters,
) -> (Tensor<B, 2>, Tensor<B, 2>, Vec<f64>) {
    let mut g = update_g(p, s, &f);
    let mut f = update_f(p, s, &g);
    counters.iterations += 1;
    let mut done = 1;
    loop {
        if done % check_every == 0 || done >= budget {
            // Column marginals of P(f, g) are b ⊙ exp((g − T(f))/eps); T(f) is the next g anyway.
            let g_next = update_g(p, s, &f);
            let ratio = ((g.clone() - g_next.clone()) / s.eps2.clone()).exp();
            let errors = host((p.b.clone() * ratio.sub_scalar(1.0).abs()).sum_dim(1).squeeze_dim::<1>(1));
            if all_below(&errors, tol) || done >= budget || errors.iter().any(|e| !e.is_finite()) {
                return (f, g, errors);
            }
            g = g_next;
        } else {
            g = update_g(p, s, &f);
        }
        f = update_f(p, s, &g);
        counters.iterations += 1;
        done += 1;
    }
}

/// Scalings and kernel of the absorption-stabilised iterations.
struct Absorbed<B: Backend> {
    /// Absorbed scaled potentials `f/eps`, `g/eps`.
    fs: Tensor<B, 2>,
    gs: Tensor<B, 2>,
    kernel: Tensor<B, 3>,
    /// Current scalings: the potentials are `eps (fs + log u)`, `eps (gs + log v)`.
    u: Tensor<B, 2>,
    v: Tensor<B, 2>,
    /// `kernelᵀ (a ⊙ u)`, the input of the next `v` update.
    col: Tensor<B, 2>,
}

impl<B: Backend> Absorbed<B> {
    fn new(p: &Problem<B>, s: &Stage<B>, f: Tensor<B, 2>, g: Tensor<B, 2>, counters: &mut Counters) -> Self {
        let fs = f / s.eps2.clone();
        let gs = g / s.eps2.clone();
        let kernel = absorbed_kernel(&fs, &gs, &s.k);
        counters.absorptions += 1;
        let col = p.a.clone().unsqueeze_dim::<3>(1).matmul(kernel.clone()).squeeze_dim::<2>(1);
        Self { u: fs.ones_like(), v: gs.ones_like(), fs, gs, kernel, col }
    }

    fn potentials(&self, s: &Stage<B>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        (
            (self.fs.clone() + self.u.clone().log()) * s.eps2.clone(),
            (self.gs.clone() + self.v.clone().log()) * s.eps2.clone(),
        )
    }
}

/// Runs one eps stage with absorption-stabilised iterations from the potentials `(f, g)`.
/// A fresh start (`f = g = 0`) first makes one exact log-domain `f` update, so that the naive
/// kernel `exp(−C/eps)` is never formed. Returns `(f, g, errors of the last check)`.
#[allow(clippy::too_many_arguments)]
fn stabilized_stage<B: Backend>(
    p: &Problem<B>,
    s: &Stage<B>,
    f: Tensor<B, 2>,
    g: Tensor<B, 2>,
    fresh: bool,
    budget: usize,
    check_every: usize,
    tol: Option<f64>,
    counters: &mut Counters,
) -> Result<(Tensor<B, 2>, Tensor<B, 2>, Vec<f64>)> {
    let mut done = 0;
    let f = if fresh {
        done += 1;
        counters.iterations += 1;
        update_f(p, s, &g)
    } else {
        f
    };
    let mut st = Absorbed::new(p, s, f, g, counters);
    let mut errors = Vec::new();
    while done < budget {
        let block = check_every.min(budget - done);
        let saved = (st.fs.clone(), st.u.clone());
        let mut q = p.b.clone();
        for _ in 0..block {
            st.v = st.col.clone().recip();
            q = p.b.clone() * st.v.clone();
            st.u = st.kernel.clone().matmul(q.clone().unsqueeze_dim::<3>(2)).squeeze_dim::<2>(2).recip();
            let pa = (p.a.clone() * st.u.clone()).unsqueeze_dim::<3>(1);
            st.col = pa.matmul(st.kernel.clone()).squeeze_dim::<2>(1);
        }
        done += block;
        counters.iterations += block;
        // Column error of P = diag(a u) K diag(b v) (its rows are exact), and the scalings' drift.
        let err = (q * st.col.clone() - p.b.clone()).abs().sum_dim(1).squeeze_dim::<1>(1);
        let drift_u = st.u.clone().log().abs().max().reshape([1]);
        let drift_v = st.v.clone().log().abs().max().reshape([1]);
        let checks = host(Tensor::cat(vec![err, drift_u, drift_v], 0));
        let (errs, drift) = checks.split_at(checks.len() - 2);
        if !checks.iter().all(|c| c.is_finite()) {
            // Roll back to the start of the block and redo it with exact log-domain updates.
            let (fs0, u0) = saved;
            counters.iterations -= block;
            counters.fallback_blocks += 1;
            let f0 = (fs0 + u0.log()) * s.eps2.clone();
            let (f1, g1, e1) = lse_block(p, s, f0, block, check_every, tol, counters);
            if e1.iter().any(|e| !e.is_finite()) {
                return Err(OtError::Numerical(
                    "non-finite potentials in exact log-domain iterations (eps too small for this float type?)".into(),
                ));
            }
            if all_below(&e1, tol) {
                return Ok((f1, g1, e1));
            }
            errors = e1;
            st = Absorbed::new(p, s, f1, g1, counters);
            continue;
        }
        errors = errs.to_vec();
        let drifted = drift.iter().any(|d| *d > ABSORB_DRIFT);
        // Entries clamped in the kernel are negligible only while the scalings are bounded, so
        // convergence is accepted with bounded scalings only.
        if all_below(&errors, tol) && !drifted {
            break;
        }
        if drifted && done < budget {
            let (f1, g1) = st.potentials(s);
            st = Absorbed::new(p, s, f1, g1, counters);
        }
    }
    let (f, g) = st.potentials(s);
    Ok((f, g, errors))
}

/// Runs one eps stage of a symmetric problem (`C = Cᵀ`, `a = b`, so `f = g`) with the averaged
/// update `f ← ½ (f + T(f))` (Feydy et al. 2019), which converges in a few iterations where the
/// plain alternating update oscillates. In absorbed form: `u ← sqrt(u / (K (a ⊙ u)))`, one
/// matrix–vector product per iteration. Returns `(f, errors of the last check)`.
#[allow(clippy::too_many_arguments)]
fn symmetric_stage<B: Backend>(
    p: &Problem<B>,
    s: &Stage<B>,
    f: Tensor<B, 2>,
    fresh: bool,
    budget: usize,
    check_every: usize,
    tol: Option<f64>,
    counters: &mut Counters,
) -> Result<(Tensor<B, 2>, Vec<f64>)> {
    let mut done = 0;
    let f = if fresh {
        done += 1;
        counters.iterations += 1;
        update_f(p, s, &f)
    } else {
        f
    };
    let absorb = |f: Tensor<B, 2>, counters: &mut Counters| {
        let fs = f / s.eps2.clone();
        counters.absorptions += 1;
        (absorbed_kernel(&fs, &fs, &s.k), fs)
    };
    let (mut kernel, mut fs) = absorb(f, counters);
    let mut u = fs.ones_like();
    let mut errors = Vec::new();
    while done < budget {
        let block = check_every.min(budget - done);
        let saved = (fs.clone(), u.clone());
        let mut ku = u.clone();
        for _ in 0..block {
            ku = kernel.clone().matmul((p.a.clone() * u.clone()).unsqueeze_dim::<3>(2)).squeeze_dim::<2>(2);
            u = (u / ku.clone()).sqrt();
        }
        done += block;
        counters.iterations += block;
        // Marginal error of P = diag(a u) K diag(a u) (rows = columns by symmetry).
        let ku_new = kernel.clone().matmul((p.a.clone() * u.clone()).unsqueeze_dim::<3>(2)).squeeze_dim::<2>(2);
        drop(ku);
        let err = (p.a.clone() * u.clone() * ku_new - p.a.clone()).abs().sum_dim(1).squeeze_dim::<1>(1);
        let drift = u.clone().log().abs().max().reshape([1]);
        let checks = host(Tensor::cat(vec![err, drift], 0));
        let (errs, drift) = checks.split_at(checks.len() - 1);
        if !checks.iter().all(|c| c.is_finite()) {
            let (fs0, u0) = saved;
            counters.iterations -= block;
            counters.fallback_blocks += 1;
            let f0 = (fs0 + u0.log()) * s.eps2.clone();
            let (f1, _g1, e1) = lse_block(p, s, f0, block, check_every, tol, counters);
            if e1.iter().any(|e| !e.is_finite()) {
                return Err(OtError::Numerical(
                    "non-finite potentials in exact log-domain iterations (eps too small for this float type?)".into(),
                ));
            }
            errors = e1;
            (kernel, fs) = absorb(f1, counters);
            u = fs.ones_like();
            continue;
        }
        errors = errs.to_vec();
        let drifted = drift[0] > ABSORB_DRIFT;
        if all_below(&errors, tol) && !drifted {
            break;
        }
        if drifted && done < budget {
            let f1 = (fs.clone() + u.clone().log()) * s.eps2.clone();
            (kernel, fs) = absorb(f1, counters);
            u = fs.ones_like();
        }
    }
    Ok(((fs + u.log()) * s.eps2.clone(), errors))
}

/// Solves a batch given the (possibly tracked) cost and weights, and the per-problem eps.
/// `symmetric` promises `C = Cᵀ` and `a = b` (the `OT(a, a)` terms of the divergence).
fn solve<B: Backend>(
    cost: Tensor<B, 3>,
    a: Option<Tensor<B, 2>>,
    b: Option<Tensor<B, 2>>,
    eps: &[f64],
    config: &SinkhornConfig,
    symmetric: bool,
) -> Result<SinkhornOutput<B>> {
    let [batch, n, m] = cost.dims();
    let device = cost.device();
    let dtype = cost.dtype();
    let a = prepare_weights(a, batch, n, "a", config.weights, &device, dtype)?;
    let b = prepare_weights(b, batch, m, "b", config.weights, &device, dtype)?;
    if config.return_plan {
        let elements = batch * n * m;
        let bytes = elements.saturating_mul(dtype.size());
        if bytes > config.max_plan_bytes {
            return Err(OtError::PlanTooLarge { elements, bytes, limit: config.max_plan_bytes });
        }
    }

    let a_d = a.clone().detach();
    let b_d = b.clone().detach();
    let problem = Problem {
        cost: cost.clone().detach(),
        cost_t: std::cell::OnceCell::new(),
        loga: a_d.clone().log(),
        logb: b_d.clone().log(),
        a: a_d,
        b: b_d,
    };

    // eps schedule: per problem, from the largest cost down to the target.
    let schedule: Vec<Vec<f64>> = match config.eps_scaling {
        None => vec![eps.to_vec()],
        Some(factor) => {
            let diam = host(problem.cost.clone().reshape([batch, n * m]).max_dim(1).reshape([batch]));
            let stages = eps
                .iter()
                .zip(&diam)
                .map(|(e, d)| if *d > *e { ((e / d).ln() / factor.ln()).ceil() as usize } else { 0 })
                .max()
                .unwrap_or(0);
            (0..=stages)
                .map(|k| eps.iter().zip(&diam).map(|(e, d)| (d * factor.powi(k as i32)).max(*e)).collect())
                .collect()
        }
    };

    let mut counters = Counters { iterations: 0, absorptions: 0, fallback_blocks: 0 };
    let mut f = Tensor::<B, 2>::zeros([batch, n], (&device, dtype));
    let mut g = Tensor::<B, 2>::zeros([batch, m], (&device, dtype));
    let mut errors = Vec::new();
    let n_stages = schedule.len();
    for (si, stage_eps) in schedule.iter().enumerate() {
        let last = si + 1 == n_stages;
        let remaining = config.max_iter.saturating_sub(counters.iterations);
        if remaining == 0 {
            break;
        }
        let budget = if last { remaining } else { config.check_every.min(remaining) };
        let tol = if last { Some(config.tol) } else { None };
        let stage = Stage {
            k: scale_cost(&problem.cost, stage_eps),
            kt: std::cell::OnceCell::new(),
            eps2: column::<B>(stage_eps, &device, dtype),
            eps: stage_eps.clone(),
        };
        let (f1, g1, e1) = match config.mode {
            SinkhornMode::LogSumExp => {
                let out = lse_block(&problem, &stage, f, budget, config.check_every, tol, &mut counters);
                if out.2.iter().any(|e| !e.is_finite()) {
                    return Err(OtError::Numerical(
                        "non-finite potentials in log-domain iterations (eps too small for this float type?)".into(),
                    ));
                }
                out
            }
            SinkhornMode::Stabilized if symmetric => {
                let (f1, e1) =
                    symmetric_stage(&problem, &stage, f, si == 0, budget, config.check_every, tol, &mut counters)?;
                (f1.clone(), f1, e1)
            }
            SinkhornMode::Stabilized => {
                stabilized_stage(&problem, &stage, f, g, si == 0, budget, config.check_every, tol, &mut counters)?
            }
        };
        f = f1;
        g = g1;
        errors = e1;
    }
    drop(f);
    let converged = all_below(&errors, Some(config.tol));

    // One differentiable update from the detached converged g (envelope theorem):
    // f̃_i = −eps LSE_j(log b_j + (g_j − C_ij)/eps), value = <a, f̃> + <b, g>.
    let eps2 = column::<B>(eps, &device, dtype);
    let k = scale_cost(&cost, eps);
    let hg = g.clone() / eps2.clone() + problem.logb.clone();
    let zeros = Tensor::<B, 2>::zeros([batch, n], (&device, dtype));
    let mx = (outer_sum(zeros, hg.clone()) - k.clone().detach()).max_dim(2).squeeze_dim::<2>(2);
    let z = (outer_sum(mx.clone().neg(), hg.clone()) - k.clone()).exp(); // [B, n, m]
    let zsum = z.clone().sum_dim(2).squeeze_dim::<2>(2); // [B, n]
    let f_t = (zsum.clone().log() + mx).neg() * eps2.clone();
    let value = (a.clone() * f_t.clone()).sum_dim(1).squeeze_dim::<1>(1)
        + (b.clone() * g.clone()).sum_dim(1).squeeze_dim::<1>(1);
    // P_ij = (a_i / zsum_i) z_ij: rows sum to a exactly. Transport cost and column sums without
    // forming P: <P, C> = Σ_i (a_i / zsum_i) Σ_j z_ij C_ij, Pᵀ1 = zᵀ (a / zsum).
    let z_d = z.detach();
    let row_scale = problem.a.clone() / zsum.detach(); // [B, n]
    let zc = (z_d.clone() * cost).sum_dim(2).squeeze_dim::<2>(2); // [B, n]
    let transport_cost = (zc * row_scale.clone()).sum_dim(1).squeeze_dim::<1>(1);
    let col = row_scale.clone().unsqueeze_dim::<3>(1).matmul(z_d.clone()).squeeze_dim::<2>(1);
    let z_plan = z_d;
    let marginal_error = host((col - problem.b.clone()).abs().sum_dim(1).squeeze_dim::<1>(1));
    if marginal_error.iter().any(|e| !e.is_finite()) || host(value.clone().detach()).iter().any(|v| !v.is_finite()) {
        return Err(OtError::Numerical("non-finite transport plan or value".into()));
    }
    let f_d = f_t.detach();
    // The plan is scaled from z itself (a broadcast, only on request) so that its rows sum to a
    // to rounding even where C/eps is large in f32.
    let plan = config.return_plan.then(|| z_plan * row_scale.unsqueeze_dim::<3>(2));
    let report = SinkhornReport {
        iterations: counters.iterations,
        converged,
        marginal_error,
        eps: eps.to_vec(),
        stages: n_stages,
        absorptions: counters.absorptions,
        fallback_blocks: counters.fallback_blocks,
    };
    Ok(SinkhornOutput { value, transport_cost, f: f_d, g: g.detach(), plan, report })
}
