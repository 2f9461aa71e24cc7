//! Tensor building blocks shared by the backbones: row normalisation, the multinomial
//! log-likelihood, Gaussian log-densities and KL terms, log-sum-exp, and seeded initialisation.

use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::nn::Linear;
use burn::tensor::activation::log_softmax;
use burn::tensor::{DType, Tensor, TensorData, backend::Backend};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use tears_core::fastmath::exp;

/// `ln(2π)`.
pub const LN_2PI: f32 = 1.837_877_1;

/// Divides each row by its L2 norm plus `1e-10` (an all-zero row stays zero).
pub fn l2_normalize_rows<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    // The clamp keeps the backward pass finite on an all-zero row (a user without a click, or
    // without one in a MacridVAE concept): sqrt's derivative at 0 is infinite, and infinity times
    // the zero gradient of the squares is NaN. Rows with any mass are computed exactly as before.
    let norm = x.clone().powi_scalar(2).sum_dim(1).clamp_min(1e-20).sqrt().add_scalar(1e-10);
    x.div(norm)
}

/// Per-user multinomial negative log-likelihood, `−Σ_i x_ui · log_softmax(logits_u)_i`, shape `[batch]`.
///
/// `x` is data (clicks or counts): no gradient flows to it. The gradient with respect to the
/// logits is the closed form `n_u · softmax(logits_u) − x_u` (`n_u = Σ_i x_ui`), attached
/// through a surrogate whose value cancels. The forward pass reads the logits' exponentials
/// once, and the backward pass is one product, instead of the chain through `log_softmax`'s
/// subtraction, log-sum-exp and exponential (whose backward pass recomputes the
/// exponentials). On CPU backends the value and the closed-form gradient are one fused pass per
/// row on the host, rows over rayon's pool (burn-flex runs element-wise kernels such as `exp` on
/// one thread); elsewhere they are backend operations on blocks of rows. Same value and
/// gradient as [`multinomial_nll_reference`] up to rounding, and the same numbers whatever the
/// number of threads (tested).
pub fn multinomial_nll<B: Backend>(logits: Tensor<B, 2>, x: Tensor<B, 2>) -> Tensor<B, 1> {
    let (value, grad) = match nll_on_host(&logits, &x) {
        Some(pair) => pair,
        None => nll_in_blocks(&logits, &x),
    };
    let surrogate = logits.mul(grad).sum_dim(1);
    let zero = surrogate.clone().detach();
    surrogate.sub(zero).add(value).squeeze_dim(1)
}

/// The value and gradient of [`multinomial_nll`] through backend operations, on row blocks in
/// parallel.
fn nll_in_blocks<B: Backend>(logits: &Tensor<B, 2>, x: &Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let [rows, cols] = logits.dims();
    let blocks = nll_blocks(rows, cols);
    let l = logits.clone().detach();
    let x = x.clone().detach();
    if blocks <= 1 {
        return nll_value_and_grad(l, x);
    }
    let size = rows.div_ceil(blocks);
    let parts: Vec<(Tensor<B, 2>, Tensor<B, 2>)> = (0..blocks)
        .into_par_iter()
        .map(|b| {
            let start = b * size;
            let len = size.min(rows - start);
            nll_value_and_grad(l.clone().narrow(0, start, len), x.clone().narrow(0, start, len))
        })
        .collect();
    let (values, grads): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
    (Tensor::cat(values, 0), Tensor::cat(grads, 0))
}

/// Whether tensors of backend `B` live in host memory (flex and ndarray, with or without
/// autodiff), so that reading them costs a copy at most, never a device transfer.
pub fn host_memory<B: Backend>(device: &B::Device) -> bool {
    let name = B::name(device);
    name.contains("flex") || name.contains("ndarray")
}

/// The value and gradient of [`multinomial_nll`] computed on the host, for f32 tensors of a
/// host-memory backend ([`host_memory`]); `None` elsewhere. burn-flex runs `exp` and the other
/// element-wise kernels on one thread with libm's scalar `expf`; here each row is one fused pass
/// (max, the click count and dot product, the exponentials with their sum, the gradient written
/// over the logits' copy) with a vectorised `exp` ([`tears_core::fastmath::exp`], within 2 ulps
/// of `f32::exp`) and runtime SIMD dispatch, rows spread over rayon's pool. Each row is summed in
/// a fixed order, so the numbers do not depend on the thread count.
fn nll_on_host<B: Backend>(logits: &Tensor<B, 2>, x: &Tensor<B, 2>) -> Option<(Tensor<B, 2>, Tensor<B, 2>)> {
    let device = logits.device();
    if !host_memory::<B>(&device) || logits.dtype() != DType::F32 || x.dtype() != DType::F32 {
        return None;
    }
    let [rows, cols] = logits.dims();
    if cols == 0 || x.dims() != [rows, cols] {
        return None;
    }
    let mut grad = logits.clone().detach().into_data().into_vec::<f32>().ok()?;
    let clicks = x.clone().detach().into_data();
    let clicks = clicks.as_slice::<f32>().ok()?;
    let mut value = vec![0.0f32; rows];
    grad.par_chunks_mut(cols)
        .zip(clicks.par_chunks(cols))
        .zip(value.par_iter_mut())
        .with_min_len(NLL_MIN_ROWS)
        .for_each(|((row, x), v)| *v = pulp::Arch::new().dispatch(NllRow { row, x }));
    Some((
        Tensor::from_data(TensorData::new(value, [rows, 1]), &device),
        Tensor::from_data(TensorData::new(grad, [rows, cols]), &device),
    ))
}

/// Rows per rayon task of the host NLL (about 64 K elements of a 3,000-item catalogue).
const NLL_MIN_ROWS: usize = 16;

/// Lanes of the host NLL's reductions: a floating-point sum or maximum only vectorises when
/// written as independent accumulators (the compiler keeps the order of a plain fold).
const LANES: usize = 16;

/// One row of the host NLL: on entry `row` holds the logits `l`, on exit the gradient
/// `n · softmax(l) − x`; returns `n · logsumexp(l) − x · l`.
struct NllRow<'a> {
    row: &'a mut [f32],
    x: &'a [f32],
}

impl pulp::WithSimd for NllRow<'_> {
    type Output = f32;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) -> f32 {
        let NllRow { row, x } = self;
        let mut max = [f32::NEG_INFINITY; LANES];
        let mut count = [0.0f32; LANES];
        let mut dot = [0.0f32; LANES];
        let (blocks, tail) = row.as_chunks::<LANES>();
        let (x_blocks, x_tail) = x.as_chunks::<LANES>();
        for (l, c) in blocks.iter().zip(x_blocks) {
            for k in 0..LANES {
                max[k] = max[k].max(l[k]);
                count[k] += c[k];
                dot[k] += c[k] * l[k];
            }
        }
        let mut m = max.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let (mut n, mut xl) = (count.iter().sum::<f32>(), dot.iter().sum::<f32>());
        for (&l, &c) in tail.iter().zip(x_tail) {
            m = m.max(l);
            n += c;
            xl += c * l;
        }
        let mut sum = [0.0f32; LANES];
        let (blocks, tail) = row.as_chunks_mut::<LANES>();
        for l in blocks.iter_mut() {
            for k in 0..LANES {
                l[k] = exp(l[k] - m);
                sum[k] += l[k];
            }
        }
        let mut total = sum.iter().sum::<f32>();
        for l in tail.iter_mut() {
            *l = exp(*l - m);
            total += *l;
        }
        let scale = n / total;
        for (g, &c) in row.iter_mut().zip(x) {
            *g = *g * scale - c;
        }
        n * (total.ln() + m) - xl
    }
}

/// The three multinomial NLLs of a mix of two logit matrices, as
/// [`mixed_multinomial_nll`] returns them.
#[derive(Debug, Clone)]
pub struct MixedNll<B: Backend> {
    /// `nll(mix) + nll(first) + nll(second)` per user, `[batch]`: the only one of the four
    /// that carries a gradient.
    pub sum: Tensor<B, 1>,
    /// `nll(alpha · first + (1 − alpha) · second)` per user (detached).
    pub mixed: Tensor<B, 1>,
    /// `nll(first)` per user (detached).
    pub first: Tensor<B, 1>,
    /// `nll(second)` per user (detached).
    pub second: Tensor<B, 1>,
}

/// The multinomial NLLs ([`multinomial_nll`]) of `first`, of `second` and of their mix
/// `alpha · first + (1 − alpha) · second`, for logits of an affine decoder, where the mixed
/// latent's logits are that mix.
///
/// The mix is never materialised as a tensor: its gradient is folded into those of the two
/// inputs (`alpha` and `1 − alpha` of it), so the sum's backward pass is two products instead of
/// three and the chain through the mix. On CPU backends one fused pass per row reads `first`,
/// `second` and `x` once and writes both gradients ([`multinomial_nll`]'s host kernel, three
/// logit rows at a time); elsewhere the three NLLs are backend operations. Same values and
/// gradients as three [`multinomial_nll`] calls through the mix, up to rounding (tested).
pub fn mixed_multinomial_nll<B: Backend>(
    first: Tensor<B, 2>,
    second: Tensor<B, 2>,
    alpha: f32,
    x: Tensor<B, 2>,
) -> MixedNll<B> {
    let (values, grad_first, grad_second) = match mixed_nll_on_host(&first, &second, alpha, &x) {
        Some(parts) => parts,
        None => mixed_nll_in_blocks(&first, &second, alpha, &x),
    };
    let surrogate = first.mul(grad_first).add(second.mul(grad_second)).sum_dim(1);
    let zero = surrogate.clone().detach();
    let part = |k: usize| values.clone().narrow(1, k, 1).squeeze_dim(1);
    let total = values.clone().sum_dim(1);
    MixedNll { sum: surrogate.sub(zero).add(total).squeeze_dim(1), mixed: part(0), first: part(1), second: part(2) }
}

/// [`mixed_multinomial_nll`]'s values `[rows, 3]` (mix, first, second) and the two folded
/// gradients, through backend operations.
fn mixed_nll_in_blocks<B: Backend>(
    first: &Tensor<B, 2>,
    second: &Tensor<B, 2>,
    alpha: f32,
    x: &Tensor<B, 2>,
) -> (Tensor<B, 2>, Tensor<B, 2>, Tensor<B, 2>) {
    let (s, r) = (first.clone().detach(), second.clone().detach());
    let mix = s.clone().mul_scalar(alpha).add(r.clone().mul_scalar(1.0 - alpha));
    let (value_c, grad_c) = nll_in_blocks(&mix, x);
    let (value_s, grad_s) = nll_in_blocks(&s, x);
    let (value_r, grad_r) = nll_in_blocks(&r, x);
    let grad_first = grad_s.add(grad_c.clone().mul_scalar(alpha));
    let grad_second = grad_r.add(grad_c.mul_scalar(1.0 - alpha));
    (Tensor::cat(vec![value_c, value_s, value_r], 1), grad_first, grad_second)
}

/// [`mixed_nll_in_blocks`] on the host, for f32 tensors of a host-memory backend; `None`
/// elsewhere (as [`nll_on_host`]).
fn mixed_nll_on_host<B: Backend>(
    first: &Tensor<B, 2>,
    second: &Tensor<B, 2>,
    alpha: f32,
    x: &Tensor<B, 2>,
) -> Option<(Tensor<B, 2>, Tensor<B, 2>, Tensor<B, 2>)> {
    let device = first.device();
    let f32s = [first.dtype(), second.dtype(), x.dtype()].iter().all(|d| *d == DType::F32);
    if !host_memory::<B>(&device) || !f32s {
        return None;
    }
    let [rows, cols] = first.dims();
    if cols == 0 || second.dims() != [rows, cols] || x.dims() != [rows, cols] {
        return None;
    }
    let mut s = first.clone().detach().into_data().into_vec::<f32>().ok()?;
    let mut r = second.clone().detach().into_data().into_vec::<f32>().ok()?;
    let clicks = x.clone().detach().into_data();
    let clicks = clicks.as_slice::<f32>().ok()?;
    let mut values = vec![0.0f32; rows * 3];
    s.par_chunks_mut(cols)
        .zip(r.par_chunks_mut(cols))
        .zip(clicks.par_chunks(cols))
        .zip(values.par_chunks_mut(3))
        .with_min_len(NLL_MIN_ROWS)
        .for_each_init(
            || vec![0.0f32; cols],
            |mix, (((s, r), x), v)| {
                v.copy_from_slice(&pulp::Arch::new().dispatch(MixRow { s, r, x, mix, alpha }));
            },
        );
    Some((
        Tensor::from_data(TensorData::new(values, [rows, 3]), &device),
        Tensor::from_data(TensorData::new(s, [rows, cols]), &device),
        Tensor::from_data(TensorData::new(r, [rows, cols]), &device),
    ))
}

/// The running maximum and click-weighted sum of one logit row, in `LANES`
/// independent accumulators.
struct RowStats {
    max: [f32; LANES],
    dot: [f32; LANES],
}

impl RowStats {
    fn new() -> Self {
        RowStats { max: [f32::NEG_INFINITY; LANES], dot: [0.0; LANES] }
    }

    fn max(&self) -> f32 {
        self.max.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b))
    }

    fn dot(&self) -> f32 {
        self.dot.iter().sum()
    }
}

/// One row of the mixed host NLL: on entry `s` and `r` hold two logit rows, on exit the
/// gradients of `nll(s) + nll(r) + nll(alpha · s + (1 − alpha) · r)` with respect to each; `mix`
/// is scratch. Returns the three NLLs (mix, s, r). The mix is rounded as the backend rounds
/// `s · alpha + r · (1 − alpha)`.
struct MixRow<'a> {
    s: &'a mut [f32],
    r: &'a mut [f32],
    x: &'a [f32],
    mix: &'a mut [f32],
    alpha: f32,
}

impl pulp::WithSimd for MixRow<'_> {
    type Output = [f32; 3];

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) -> [f32; 3] {
        let MixRow { s, r, x, mix, alpha } = self;
        let beta = 1.0 - alpha;
        // The first pass: maxima, click count and click-weighted sums, and the mix kept. Plain
        // loops over fixed lanes, so that they vectorise.
        let (mut st_c, mut st_s, mut st_r) = (RowStats::new(), RowStats::new(), RowStats::new());
        let mut count = [0.0f32; LANES];
        let (s_blocks, s_tail) = s.as_chunks::<LANES>();
        let (r_blocks, r_tail) = r.as_chunks::<LANES>();
        let (x_blocks, x_tail) = x.as_chunks::<LANES>();
        let (m_blocks, m_tail) = mix.as_chunks_mut::<LANES>();
        for (((l_s, l_r), c), m) in s_blocks.iter().zip(r_blocks).zip(x_blocks).zip(m_blocks.iter_mut()) {
            for k in 0..LANES {
                m[k] = l_s[k] * alpha + l_r[k] * beta;
                st_c.max[k] = st_c.max[k].max(m[k]);
                st_s.max[k] = st_s.max[k].max(l_s[k]);
                st_r.max[k] = st_r.max[k].max(l_r[k]);
                count[k] += c[k];
                st_c.dot[k] += c[k] * m[k];
                st_s.dot[k] += c[k] * l_s[k];
                st_r.dot[k] += c[k] * l_r[k];
            }
        }
        let mut n = count.iter().sum::<f32>();
        let (mut maxes, mut dots) = ([st_c.max(), st_s.max(), st_r.max()], [st_c.dot(), st_s.dot(), st_r.dot()]);
        for (((&l_s, &l_r), &c), m) in s_tail.iter().zip(r_tail).zip(x_tail).zip(m_tail.iter_mut()) {
            *m = l_s * alpha + l_r * beta;
            for (k, l) in [*m, l_s, l_r].into_iter().enumerate() {
                maxes[k] = maxes[k].max(l);
                dots[k] += c * l;
            }
            n += c;
        }
        // The second pass: the three rows' exponentials and their sums.
        let mut sums = [[0.0f32; LANES]; 3];
        let (c_blocks, c_tail) = mix.as_chunks_mut::<LANES>();
        let (s_blocks, s_tail) = s.as_chunks_mut::<LANES>();
        let (r_blocks, r_tail) = r.as_chunks_mut::<LANES>();
        for ((l_c, l_s), l_r) in c_blocks.iter_mut().zip(s_blocks.iter_mut()).zip(r_blocks.iter_mut()) {
            for k in 0..LANES {
                l_c[k] = exp(l_c[k] - maxes[0]);
                l_s[k] = exp(l_s[k] - maxes[1]);
                l_r[k] = exp(l_r[k] - maxes[2]);
                sums[0][k] += l_c[k];
                sums[1][k] += l_s[k];
                sums[2][k] += l_r[k];
            }
        }
        let mut totals = sums.map(|lanes| lanes.iter().sum::<f32>());
        for ((l_c, l_s), l_r) in c_tail.iter_mut().zip(s_tail.iter_mut()).zip(r_tail.iter_mut()) {
            for (k, l) in [l_c, l_s, l_r].into_iter().enumerate() {
                *l = exp(*l - maxes[k]);
                totals[k] += *l;
            }
        }
        let [scale_c, scale_s, scale_r] = totals.map(|t| n / t);
        for (((g_s, g_r), &e_c), &c) in s.iter_mut().zip(r.iter_mut()).zip(mix.iter()).zip(x) {
            let g_c = e_c * scale_c - c;
            *g_s = (*g_s * scale_s - c) + alpha * g_c;
            *g_r = (*g_r * scale_r - c) + beta * g_c;
        }
        [0, 1, 2].map(|k| n * (totals[k].ln() + maxes[k]) - dots[k])
    }
}

/// SiLU, `x · σ(x)`, of a tensor through which no gradient is wanted (a frozen encoder's
/// activations), detached. On f32 tensors of a host-memory backend ([`host_memory`]) one
/// vectorised pass ([`tears_core::fastmath::exp`]) over rayon's pool, where burn-flex's sigmoid
/// runs libm's scalar `expf` on one thread; elsewhere burn's `silu`. Within a few ulps of burn's
/// `silu` (tested), and the same numbers whatever the number of threads (each element alone).
///
/// ```
/// use burn::backend::Flex;
/// use burn::tensor::{Tensor, activation::silu};
/// let x = Tensor::<Flex, 1>::from_floats([-3.0, 0.0, 0.5, 4.0], &Default::default());
/// let (fast, slow) = (tears_vae::ops::silu_detached(x.clone()), silu(x));
/// fast.into_data().assert_approx_eq::<f32>(&slow.into_data(), burn::tensor::Tolerance::default());
/// ```
pub fn silu_detached<B: Backend, const D: usize>(t: Tensor<B, D>) -> Tensor<B, D> {
    let t = t.detach();
    let device = t.device();
    if !host_memory::<B>(&device) || t.dtype() != DType::F32 {
        return burn::tensor::activation::silu(t);
    }
    let shape = t.shape();
    let mut values = match t.clone().into_data().into_vec::<f32>() {
        Ok(v) => v,
        Err(_) => return burn::tensor::activation::silu(t),
    };
    values.par_chunks_mut(HOST_CHUNK).for_each(|chunk| pulp::Arch::new().dispatch(SiluChunk(chunk)));
    Tensor::from_data(TensorData::new(values, shape), &device)
}

/// SiLU, `x · σ(x)`, with its gradient. On f32 tensors of a host-memory backend
/// ([`host_memory`]) one vectorised host pass computes the value `y` and the derivative
/// `g = σ(x) (1 + x (1 − σ(x)))`, and the result is `x · g + (y − x · g)`, with `g` and
/// `y − x · g` as constants: the value is `y` up to one rounding and the gradient is `g` times the
/// incoming one (one product), where burn's `silu` runs libm's scalar `expf` on one thread and
/// differentiates through a product and a sigmoid. Elsewhere burn's `silu`. Value and gradient
/// tested against burn's.
pub fn silu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    with_slope(x, burn::tensor::activation::silu, |x| {
        let s = 1.0 / (1.0 + exp(-x));
        (x * s, s * (1.0 + x * (1.0 - s)))
    })
}

/// `tanh`, with its gradient `1 − tanh²`. On f32 tensors of a host-memory backend one
/// vectorised host pass computes the value `y` (a Taylor polynomial below |x| = 1/4, the
/// exponential form above) and the slope `g = 1 − y²`, and the result is `x · g + (y − x · g)`
/// with both factors constant, as in [`silu`]: the backward pass is one product. burn-flex's
/// `tanh` runs libm's scalar `tanhf` on one thread. Elsewhere `Tensor::tanh`. Value and gradient
/// tested against burn's.
pub fn tanh<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    with_slope(x, Tensor::tanh, |x| {
        let y = tanh_f32(x);
        (y, 1.0 - y * y)
    })
}

/// `tanh(x)` in f32, branch-free: `x − x³/3 + 2x⁵/15 − 17x⁷/315 + 62x⁹/2835` for |x| < 1/4
/// (truncation below 1e-8 relative), `sign(x) (1 − e)/(1 + e)` with `e = exp(−2|x|)` above.
#[inline(always)]
fn tanh_f32(x: f32) -> f32 {
    let x2 = x * x;
    let series = x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0 + x2 * (62.0 / 2835.0)))));
    let e = exp(-2.0 * x.abs());
    let far = ((1.0 - e) / (1.0 + e)).copysign(x);
    if x.abs() < 0.25 { series } else { far }
}

/// An element-wise function `f` with derivative `f'`, differentiable, through one host pass:
/// `pair(x) = (f(x), f'(x))` gives the value `y` and slope `g`, and the result is
/// `x · g + (y − x · g)` with both factors constant, so the value is `y` up to one rounding and
/// the backward pass is one product. Tensors that are not f32 on a host-memory backend take
/// `fallback`.
fn with_slope<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    fallback: fn(Tensor<B, D>) -> Tensor<B, D>,
    pair: impl Fn(f32) -> (f32, f32) + Sync + Send + Copy,
) -> Tensor<B, D> {
    let device = x.device();
    if !host_memory::<B>(&device) || x.dtype() != DType::F32 {
        return fallback(x);
    }
    let shape = x.shape();
    let Ok(mut slope) = x.clone().detach().into_data().into_vec::<f32>() else {
        return fallback(x);
    };
    let mut offset = vec![0.0f32; slope.len()];
    slope.par_chunks_mut(HOST_CHUNK).zip(offset.par_chunks_mut(HOST_CHUNK)).for_each(|(slope, offset)| {
        pulp::Arch::new().dispatch(Slope { slope, offset, pair });
    });
    let constant = |v: Vec<f32>| Tensor::<B, D>::from_data(TensorData::new(v, shape.clone()), &device);
    x.mul(constant(slope)).add(constant(offset))
}

/// [`with_slope`] over one chunk: on entry `slope` holds `x`, on exit `f'(x)`; `offset` gets
/// `f(x) − x · f'(x)`.
struct Slope<'a, F> {
    slope: &'a mut [f32],
    offset: &'a mut [f32],
    pair: F,
}

impl<F: Fn(f32) -> (f32, f32)> pulp::WithSimd for Slope<'_, F> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        for (g, c) in self.slope.iter_mut().zip(self.offset.iter_mut()) {
            let x = *g;
            let (y, d) = (self.pair)(x);
            *g = d;
            *c = y - x * d;
        }
    }
}

/// Elements per rayon task of the host element-wise kernels ([`silu_detached`], [`with_slope`]).
const HOST_CHUNK: usize = 1 << 14;

/// [`silu_detached`] over one chunk, in place.
struct SiluChunk<'a>(&'a mut [f32]);

impl pulp::WithSimd for SiluChunk<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        for v in self.0.iter_mut() {
            *v /= 1.0 + exp(-*v);
        }
    }
}

/// Row blocks for the parallel part of [`multinomial_nll`]: one per thread of rayon's pool,
/// each at least `MIN_BLOCK` elements (splitting a small matrix costs more than it saves).
fn nll_blocks(rows: usize, cols: usize) -> usize {
    const MIN_BLOCK: usize = 1 << 16;
    let by_size = (rows * cols / MIN_BLOCK).max(1);
    rayon::current_num_threads().min(by_size).min(rows).max(1)
}

/// `(n · logsumexp(l) − x · l` per row as `[rows, 1]`, `n · softmax(l) − x)` for detached `l`, `x`.
fn nll_value_and_grad<B: Backend>(l: Tensor<B, 2>, x: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let max = l.clone().max_dim(1);
    let e = l.clone().sub(max.clone()).exp();
    let sum = e.clone().sum_dim(1);
    let n = x.clone().sum_dim(1);
    let value = n.clone().mul(sum.clone().log().add(max)).sub(l.mul(x.clone()).sum_dim(1));
    let grad = e.mul(n.div(sum)).sub(x);
    (value, grad)
}

/// [`multinomial_nll`] written through `log_softmax`, differentiated by the autodiff chain: the
/// reference the closed-form gradient is tested against.
pub fn multinomial_nll_reference<B: Backend>(logits: Tensor<B, 2>, x: Tensor<B, 2>) -> Tensor<B, 1> {
    log_softmax(logits, 1).mul(x).sum_dim(1).neg().squeeze_dim(1)
}

/// `log Σ exp(x)` along `dim` (kept as a size-1 dimension), computed stably.
pub fn logsumexp<B: Backend, const D: usize>(x: Tensor<B, D>, dim: usize) -> Tensor<B, D> {
    let max = x.clone().max_dim(dim).detach();
    x.sub(max.clone()).exp().sum_dim(dim).log().add(max)
}

/// Element-wise `log N(z; mu, exp(logvar))`.
pub fn log_normal<B: Backend, const D: usize>(z: Tensor<B, D>, mu: Tensor<B, D>, logvar: Tensor<B, D>) -> Tensor<B, D> {
    let sq = z.sub(mu).powi_scalar(2);
    sq.div(logvar.clone().exp()).add(logvar).add_scalar(LN_2PI).mul_scalar(-0.5)
}

/// Element-wise `log N(z; 0, e^logvar)` for a constant `logvar`.
pub fn log_normal_const<B: Backend, const D: usize>(z: Tensor<B, D>, logvar: f32) -> Tensor<B, D> {
    z.powi_scalar(2).mul_scalar(-0.5 * (-logvar).exp()).add_scalar(-0.5 * (logvar + LN_2PI))
}

/// Per-user `KL(N(mu, e^logvar) || N(0, I))`, summed over latent dimensions, shape `[batch]`.
pub fn kl_standard_normal<B: Backend>(mu: Tensor<B, 2>, logvar: Tensor<B, 2>) -> Tensor<B, 1> {
    let terms = logvar.clone().exp().sub(logvar).add(mu.powi_scalar(2)).sub_scalar(1.0);
    terms.sum_dim(1).mul_scalar(0.5).squeeze_dim(1)
}

/// The seeded initialiser of a model: Glorot-uniform weights and `N(0, 0.001²)` biases, drawn on
/// the host from one ChaCha8 stream so that the same seed gives the same model on every backend.
#[derive(Debug)]
pub struct Init<'d, B: Backend> {
    rng: ChaCha8Rng,
    device: &'d B::Device,
}

impl<'d, B: Backend> Init<'d, B> {
    /// An initialiser for `seed` on `device`.
    pub fn new(seed: u64, device: &'d B::Device) -> Self {
        Init { rng: ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_1A17_0000_0001), device }
    }

    /// The device parameters are created on.
    pub fn device(&self) -> &'d B::Device {
        self.device
    }

    /// A `[rows, cols]` matrix with Glorot-uniform entries, `U(−a, a)`, `a = √(6 / (rows + cols))`.
    pub fn glorot(&mut self, rows: usize, cols: usize) -> Tensor<B, 2> {
        let a = (6.0 / (rows + cols) as f64).sqrt() as f32;
        let data: Vec<f32> = (0..rows * cols).map(|_| self.rng.random_range(-a..a)).collect();
        Tensor::from_data(TensorData::new(data, [rows, cols]), self.device)
    }

    /// A vector of `N(0, std²)` entries.
    pub fn normal(&mut self, len: usize, std: f32) -> Tensor<B, 1> {
        let data: Vec<f32> = (0..len)
            .map(|_| {
                let u1: f32 = 1.0 - self.rng.random::<f32>();
                let u2: f32 = self.rng.random();
                std * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
            })
            .collect();
        Tensor::from_data(TensorData::new(data, [len]), self.device)
    }

    /// A dense layer `[d_in → d_out]` (burn's row layout: `y = x W + b`) with Glorot weights and
    /// `N(0, 0.001²)` biases.
    pub fn linear(&mut self, d_in: usize, d_out: usize) -> Linear<B> {
        let weight = Param::from_tensor(self.glorot(d_in, d_out));
        let bias = Param::from_tensor(self.normal(d_out, 0.001));
        Linear { weight, bias: Some(bias) }
    }
}

/// A copy of `module` whose parameters have new ids and do not require gradients: a frozen
/// snapshot that optimisers never confuse with the original (RecVAE's prior encoder).
pub fn frozen_copy<B: Backend, M: Module<B>>(module: &M) -> M {
    struct Fresh;
    impl<B: Backend> ModuleMapper<B> for Fresh {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let (_, tensor, mapper) = param.consume();
            Param::from_mapped_value(ParamId::new(), tensor.detach(), mapper).set_require_grad(false)
        }
    }
    module.clone().map(&mut Fresh)
}

/// `module` with every parameter's `require_grad` set to `flag` (ids and values unchanged).
/// Turning gradients off for the half of a model an optimiser does not update saves its
/// backward pass.
pub fn with_require_grad<B: Backend, M: Module<B>>(module: M, flag: bool) -> M {
    struct Set(bool);
    impl<B: Backend> ModuleMapper<B> for Set {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            param.set_require_grad(self.0)
        }
    }
    module.map(&mut Set(flag))
}

/// A trainable copy of a parameter under a new id.
pub fn param_copy<B: Backend, const D: usize>(param: &Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
    Param::initialized(ParamId::new(), param.val().detach().require_grad())
}

/// Sum of squared entries of a layer's weight matrix (not its bias).
pub fn weight_sq_norm<B: Backend>(layer: &Linear<B>) -> Tensor<B, 1> {
    layer.weight.val().powi_scalar(2).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    type T = Flex;

    fn t2(rows: &[&[f32]]) -> Tensor<T, 2> {
        let cols = rows[0].len();
        let data: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_data(TensorData::new(data, [rows.len(), cols]), &Default::default())
    }

    #[test]
    fn normalizing_an_all_zero_row_has_a_finite_gradient() {
        type A = burn::backend::Autodiff<Flex>;
        let data = TensorData::new(vec![3.0f32, 4.0, 0.0, 0.0], [2, 2]);
        let x = Tensor::<A, 2>::from_data(data, &Default::default()).require_grad();
        let y = l2_normalize_rows(x.clone());
        let out: Vec<f32> = y.clone().into_data().to_vec().expect("f32");
        assert_eq!(out, vec![0.6, 0.8, 0.0, 0.0]);
        let grads = y.mul_scalar(2.0).sum().backward();
        let g: Vec<f32> = x.grad(&grads).expect("a gradient").into_data().to_vec().expect("f32");
        assert!(g.iter().all(|v| v.is_finite()), "gradient {g:?}");
    }

    fn v(t: Tensor<T, 1>) -> Vec<f32> {
        t.into_data().to_vec::<f32>().unwrap_or_default()
    }

    #[test]
    fn kl_matches_the_closed_form() {
        // KL(N(mu, s²) || N(0,1)) = 0.5 (s² + mu² − 1 − ln s²)
        let mu = t2(&[&[0.5, -1.0], &[0.0, 0.0]]);
        let logvar = t2(&[&[0.2f32.ln(), 0.0], &[0.0, 2.0]]);
        let kl = v(kl_standard_normal(mu, logvar));
        let e0 = 0.5 * (0.2 + 0.25 - 1.0 - 0.2f32.ln()) + 0.5 * (1.0 + 1.0 - 1.0);
        let e1 = 0.5 * (2.0f32.exp() - 1.0 - 2.0);
        assert!((kl[0] - e0).abs() < 1e-5 && (kl[1] - e1).abs() < 1e-5, "{kl:?} vs {e0} {e1}");
    }

    #[test]
    fn log_normal_matches_the_density() {
        let z = t2(&[&[0.3, -2.0]]);
        let mu = t2(&[&[0.1, 1.0]]);
        let logvar = t2(&[&[0.5, -1.0]]);
        let got = v(log_normal(z, mu, logvar).reshape([2]));
        for (k, (z, mu, lv)) in [(0.3f32, 0.1f32, 0.5f32), (-2.0, 1.0, -1.0)].into_iter().enumerate() {
            let var = lv.exp();
            let expected = -0.5 * ((2.0 * std::f32::consts::PI * var).ln() + (z - mu).powi(2) / var);
            assert!((got[k] - expected).abs() < 1e-5);
        }
        let c = v(log_normal_const(t2(&[&[1.5]]), 10.0).reshape([1]));
        let expected = -0.5 * ((2.0 * std::f32::consts::PI).ln() + 10.0 + 2.25 / 10f32.exp());
        assert!((c[0] - expected).abs() < 1e-5);
    }

    #[test]
    fn nll_logsumexp_and_normalisation() {
        let logits = t2(&[&[1.0, 2.0, 3.0]]);
        let x = t2(&[&[1.0, 0.0, 1.0]]);
        let lse = (1f32.exp() + 2f32.exp() + 3f32.exp()).ln();
        let nll = v(multinomial_nll(logits.clone(), x));
        assert!((nll[0] - (2.0 * lse - 4.0)).abs() < 1e-5);
        let l = v(logsumexp(logits, 1).reshape([1]));
        assert!((l[0] - lse).abs() < 1e-5);
        let n = l2_normalize_rows(t2(&[&[3.0, 4.0], &[0.0, 0.0]])).into_data().to_vec::<f32>().unwrap_or_default();
        assert!((n[0] - 0.6).abs() < 1e-6 && (n[1] - 0.8).abs() < 1e-6 && n[2] == 0.0 && n[3] == 0.0);
    }

    #[test]
    fn the_closed_form_nll_gradient_matches_the_autodiff_chain() {
        type A = burn::backend::Autodiff<Flex>;
        let device = Default::default();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (rows, cols) = (4, 37);
        // Large logits too: the closed form must stay as stable as log_softmax.
        let logits: Vec<f32> =
            (0..rows * cols).map(|i| rng.random_range(-3.0f32..3.0) * if i % 5 == 0 { 30.0 } else { 1.0 }).collect();
        // Binary rows and a count row; one row without a click (its NLL and gradient are zero).
        let x: Vec<f32> = (0..rows * cols)
            .map(|i| match i / cols {
                0 | 1 => f32::from(rng.random_bool(0.3)),
                2 => rng.random_range(0..3) as f32,
                _ => 0.0,
            })
            .collect();
        let weights: Vec<f32> = (0..rows).map(|r| 1.0 + r as f32).collect();
        let run = |f: fn(Tensor<A, 2>, Tensor<A, 2>) -> Tensor<A, 1>| {
            let l = Tensor::<A, 2>::from_data(TensorData::new(logits.clone(), [rows, cols]), &device).require_grad();
            let xt = Tensor::<A, 2>::from_data(TensorData::new(x.clone(), [rows, cols]), &device);
            let w = Tensor::<A, 1>::from_data(TensorData::new(weights.clone(), [rows]), &device);
            let nll = f(l.clone(), xt);
            let grads = nll.clone().mul(w).sum().backward();
            let g: Vec<f32> = l.grad(&grads).map(|g| g.into_data().to_vec().unwrap_or_default()).unwrap_or_default();
            (nll.into_data().to_vec::<f32>().unwrap_or_default(), g)
        };
        let (value, grad) = run(multinomial_nll);
        let (value_ref, grad_ref) = run(multinomial_nll_reference);
        assert_eq!(grad.len(), rows * cols);
        for (a, b) in value.iter().zip(&value_ref) {
            approx::assert_relative_eq!(*a, *b, max_relative = 1e-5, epsilon = 1e-4);
        }
        assert_eq!(value[3], 0.0);
        for (a, b) in grad.iter().zip(&grad_ref) {
            approx::assert_abs_diff_eq!(*a, *b, epsilon = 1e-5);
        }
        assert!(grad[3 * cols..].iter().all(|&g| g == 0.0));
    }

    #[test]
    fn the_nll_is_the_same_on_one_thread_and_on_several() {
        type A = burn::backend::Autodiff<Flex>;
        let device = Default::default();
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        // Large enough for four row blocks.
        let (rows, cols) = (67, 4099);
        let logits: Vec<f32> = (0..rows * cols).map(|_| rng.random_range(-4.0f32..4.0)).collect();
        let x: Vec<f32> = (0..rows * cols).map(|_| f32::from(rng.random_bool(0.05))).collect();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a thread pool");
            pool.install(|| {
                assert_eq!(nll_blocks(rows, cols), threads);
                let l =
                    Tensor::<A, 2>::from_data(TensorData::new(logits.clone(), [rows, cols]), &device).require_grad();
                let xt = Tensor::<A, 2>::from_data(TensorData::new(x.clone(), [rows, cols]), &device);
                let nll = multinomial_nll(l.clone(), xt);
                let grads = nll.clone().sum().backward();
                let g: Vec<f32> =
                    l.grad(&grads).map(|g| g.into_data().to_vec().unwrap_or_default()).unwrap_or_default();
                (nll.into_data().to_vec::<f32>().unwrap_or_default(), g)
            })
        };
        let one = run(1);
        assert_eq!(one.0.len(), rows);
        assert_eq!(one.1.len(), rows * cols);
        assert_eq!(one, run(4));
        assert_eq!(one, run(3));
    }

    #[test]
    fn the_host_nll_equals_the_backend_operations() {
        let device = Default::default();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        // 37 columns: two 16-lane blocks and a tail of 5; logits up to ±90 (exp's clamp range).
        let (rows, cols) = (21, 37);
        let logits: Vec<f32> =
            (0..rows * cols).map(|i| rng.random_range(-3.0f32..3.0) * if i % 7 == 0 { 30.0 } else { 1.0 }).collect();
        let x: Vec<f32> = (0..rows * cols)
            .map(|i| match (i / cols) % 3 {
                0 => f32::from(rng.random_bool(0.3)),
                1 => rng.random_range(0..4) as f32,
                _ if i / cols == rows - 1 => 0.0,
                _ => f32::from(rng.random_bool(0.05)),
            })
            .collect();
        let l = Tensor::<T, 2>::from_data(TensorData::new(logits, [rows, cols]), &device);
        let xt = Tensor::<T, 2>::from_data(TensorData::new(x, [rows, cols]), &device);
        let (value, grad) = nll_on_host(&l, &xt).expect("flex tensors take the host path");
        let (value_ops, grad_ops) = nll_in_blocks(&l, &xt);
        let flat = |t: Tensor<T, 2>| t.into_data().to_vec::<f32>().unwrap_or_default();
        let (value, value_ops) = (flat(value), flat(value_ops));
        assert_eq!(value.len(), rows);
        for (a, b) in value.iter().zip(&value_ops) {
            approx::assert_relative_eq!(*a, *b, max_relative = 1e-5, epsilon = 1e-4);
        }
        assert_eq!(value[rows - 1], 0.0, "a row without clicks has no likelihood term");
        let (grad, grad_ops) = (flat(grad), flat(grad_ops));
        assert_eq!(grad.len(), rows * cols);
        for (a, b) in grad.iter().zip(&grad_ops) {
            approx::assert_abs_diff_eq!(*a, *b, epsilon = 1e-5);
        }
        // Each row's gradient sums to zero: n · Σ softmax = n = Σ x.
        for row in grad.chunks(cols) {
            approx::assert_abs_diff_eq!(row.iter().sum::<f32>(), 0.0, epsilon = 1e-4);
        }
    }

    /// The mixed NLL's values and gradients against three [`multinomial_nll`] calls through the
    /// mix, on the host kernel (flex) and on the backend operations.
    #[test]
    fn the_mixed_nll_equals_three_nlls_through_the_mix() {
        type A = burn::backend::Autodiff<Flex>;
        let device = Default::default();
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        // 37 columns: two 16-lane blocks and a tail of 5; large logits in both inputs.
        let (rows, cols) = (19, 37);
        let mut logits = || -> Vec<f32> {
            (0..rows * cols).map(|i| rng.random_range(-3.0f32..3.0) * if i % 7 == 0 { 25.0 } else { 1.0 }).collect()
        };
        let (first, second) = (logits(), logits());
        let x: Vec<f32> = (0..rows * cols)
            .map(|i| match (i / cols) % 3 {
                _ if i / cols == rows - 1 => 0.0,
                1 => rng.random_range(0..3) as f32,
                _ => f32::from(rng.random_bool(0.2)),
            })
            .collect();
        let weights: Vec<f32> = (0..rows).map(|r| 1.0 + r as f32 / 4.0).collect();
        let leaf = |v: &Vec<f32>| Tensor::<A, 2>::from_data(TensorData::new(v.clone(), [rows, cols]), &device);
        for alpha in [0.0f32, 0.3, 1.0] {
            let run = |mixed: bool| {
                let (s, r) = (leaf(&first).require_grad(), leaf(&second).require_grad());
                let xt = leaf(&x);
                let w = Tensor::<A, 1>::from_data(TensorData::new(weights.clone(), [rows]), &device);
                let (sum, parts) = if mixed {
                    let nll = mixed_multinomial_nll(s.clone(), r.clone(), alpha, xt);
                    (nll.sum, [nll.mixed, nll.first, nll.second])
                } else {
                    let c = s.clone().mul_scalar(alpha).add(r.clone().mul_scalar(1.0 - alpha));
                    let parts = [
                        multinomial_nll(c, xt.clone()),
                        multinomial_nll(s.clone(), xt.clone()),
                        multinomial_nll(r.clone(), xt),
                    ];
                    (parts[0].clone().add(parts[1].clone()).add(parts[2].clone()), parts)
                };
                let grads = sum.clone().mul(w).sum().backward();
                let vec1 = |t: Tensor<A, 1>| t.into_data().to_vec::<f32>().unwrap_or_default();
                let grad = |t: &Tensor<A, 2>| {
                    t.grad(&grads).map(|g| g.into_data().to_vec::<f32>().unwrap_or_default()).unwrap_or_default()
                };
                (vec1(sum), parts.map(vec1), grad(&s), grad(&r))
            };
            let (sum, parts, grad_s, grad_r) = run(true);
            let (sum_ref, parts_ref, grad_s_ref, grad_r_ref) = run(false);
            for (a, b) in sum.iter().chain(parts.iter().flatten()).zip(sum_ref.iter().chain(parts_ref.iter().flatten()))
            {
                approx::assert_relative_eq!(*a, *b, max_relative = 1e-5, epsilon = 1e-4);
            }
            assert_eq!(sum[rows - 1], 0.0, "a row without clicks has no likelihood term");
            assert_eq!(grad_s.len(), rows * cols);
            for (a, b) in grad_s.iter().zip(&grad_s_ref).chain(grad_r.iter().zip(&grad_r_ref)) {
                approx::assert_abs_diff_eq!(*a, *b, epsilon = 1e-4);
            }
            // The backend operations (the path of non-host backends) give the same.
            let plain = |v: &Vec<f32>| Tensor::<T, 2>::from_data(TensorData::new(v.clone(), [rows, cols]), &device);
            let (s, r, xt) = (plain(&first), plain(&second), plain(&x));
            let host = mixed_nll_on_host(&s, &r, alpha, &xt).expect("flex tensors take the host path");
            let ops = mixed_nll_in_blocks(&s, &r, alpha, &xt);
            let flat = |t: Tensor<T, 2>| t.into_data().to_vec::<f32>().unwrap_or_default();
            for (a, b) in [(host.0, ops.0), (host.1, ops.1), (host.2, ops.2)] {
                for (a, b) in flat(a).iter().zip(&flat(b)) {
                    approx::assert_relative_eq!(*a, *b, max_relative = 1e-5, epsilon = 1e-4);
                }
            }
        }
    }

    #[test]
    fn the_host_silu_matches_burns_and_carries_no_gradient() {
        type A = burn::backend::Autodiff<Flex>;
        let device = Default::default();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        // More than one rayon chunk, and values out to where exp saturates.
        let n = HOST_CHUNK + 37;
        let values: Vec<f32> =
            (0..n).map(|i| rng.random_range(-6.0f32..6.0) * if i % 11 == 0 { 30.0 } else { 1.0 }).collect();
        let x = Tensor::<T, 1>::from_data(TensorData::new(values.clone(), [n]), &device);
        let fast = silu_detached(x.clone()).into_data().to_vec::<f32>().unwrap_or_default();
        let slow = burn::tensor::activation::silu(x).into_data().to_vec::<f32>().unwrap_or_default();
        assert_eq!(fast.len(), n);
        for ((a, b), v) in fast.iter().zip(&slow).zip(&values) {
            approx::assert_relative_eq!(*a, *b, max_relative = 4.0 * f32::EPSILON, epsilon = 1e-30);
            assert!(a.is_finite(), "silu({v}) = {a}");
        }
        // No gradient flows through it: the sum's gradient is the identity term's alone.
        let tracked = Tensor::<A, 1>::from_data(TensorData::new(values, [n]), &device).require_grad();
        let grads = silu_detached(tracked.clone().mul_scalar(2.0)).add(tracked.clone()).sum().backward();
        let grad = tracked.grad(&grads).map(|g| g.into_data().to_vec::<f32>().unwrap_or_default()).unwrap_or_default();
        assert_eq!(grad, vec![1.0; n]);
    }

    /// `f(scale · x) ⊙ w` on autodiff flex, through an intermediate as inside an encoder: its
    /// values and the gradient of their sum with respect to `x`.
    fn weighted_value_and_grad(
        f: fn(Tensor<burn::backend::Autodiff<Flex>, 1>) -> Tensor<burn::backend::Autodiff<Flex>, 1>,
        values: &[f32],
        weights: &[f32],
        scale: f32,
    ) -> (Vec<f32>, Vec<f32>) {
        type A = burn::backend::Autodiff<Flex>;
        let device = Default::default();
        let n = values.len();
        let x = Tensor::<A, 1>::from_data(TensorData::new(values.to_vec(), [n]), &device).require_grad();
        let w = Tensor::<A, 1>::from_data(TensorData::new(weights.to_vec(), [n]), &device);
        let y = f(x.clone().mul_scalar(scale)).mul(w);
        let grads = y.clone().sum().backward();
        let grad = x.grad(&grads).map(|g| g.into_data().to_vec::<f32>().unwrap_or_default()).unwrap_or_default();
        (y.into_data().to_vec::<f32>().unwrap_or_default(), grad)
    }

    #[test]
    fn the_host_silu_and_its_gradient_match_burns() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let n = HOST_CHUNK + 41;
        let values: Vec<f32> =
            (0..n).map(|i| rng.random_range(-6.0f32..6.0) * if i % 13 == 0 { 30.0 } else { 1.0 }).collect();
        let weights: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let (value, grad) = weighted_value_and_grad(silu, &values, &weights, 0.5);
        let (value_ref, grad_ref) = weighted_value_and_grad(burn::tensor::activation::silu, &values, &weights, 0.5);
        assert_eq!(grad.len(), n);
        for (a, b) in value.iter().zip(&value_ref) {
            approx::assert_relative_eq!(*a, *b, max_relative = 1e-5, epsilon = 1e-6);
        }
        for (a, b) in grad.iter().zip(&grad_ref) {
            approx::assert_relative_eq!(*a, *b, max_relative = 1e-5, epsilon = 1e-6);
        }
    }

    #[test]
    fn the_host_tanh_and_its_gradient_match_burns() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let n = HOST_CHUNK + 43;
        // Both sides of the series' switch at 1/4, tiny values, and saturation.
        let values: Vec<f32> = (0..n)
            .map(|i| match i % 4 {
                0 => rng.random_range(-0.3f32..0.3),
                1 => rng.random_range(-1e-3f32..1e-3),
                2 => rng.random_range(-4.0f32..4.0),
                _ => rng.random_range(-60.0f32..60.0),
            })
            .collect();
        for v in [0.0f32, 0.25, -0.25, 1e-30] {
            approx::assert_relative_eq!(tanh_f32(v), v.tanh(), max_relative = 4.0 * f32::EPSILON);
        }
        let weights: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let (value, grad) = weighted_value_and_grad(tanh, &values, &weights, 2.0);
        let (value_ref, grad_ref) = weighted_value_and_grad(Tensor::tanh, &values, &weights, 2.0);
        assert_eq!(grad.len(), n);
        for (a, b) in value.iter().zip(&value_ref) {
            approx::assert_relative_eq!(*a, *b, max_relative = 1e-5, epsilon = 1e-7);
        }
        // 1 − y² loses digits as y nears ±1: an ulp of y is 1.2e-7 there.
        for (a, b) in grad.iter().zip(&grad_ref) {
            approx::assert_relative_eq!(*a, *b, max_relative = 1e-5, epsilon = 1e-6);
        }
    }

    #[test]
    fn init_is_seeded_and_within_bounds() {
        let device = Default::default();
        let a = Init::<T>::new(5, &device).glorot(30, 20).into_data();
        let b = Init::<T>::new(5, &device).glorot(30, 20).into_data();
        assert_eq!(a, b);
        let bound = (6.0f32 / 50.0).sqrt();
        assert!(a.to_vec::<f32>().unwrap_or_default().iter().all(|x| x.abs() <= bound));
    }
}
