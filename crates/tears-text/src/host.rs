//! Host kernels for the encoder's inference forward on backends that keep tensors in host memory.
//!
//! burn-flex runs element-wise work on one thread with scalar libm calls: the exact GELU
//! (`erff`, on every feed-forward activation) and its fused attention (serial over batch and
//! heads, scalar `exp`) took about a third of a MiniLM pass in a `perf` profile. On flex a
//! contiguous tensor that nothing else holds converts to and from [`TensorData`] without a copy,
//! so the forward can run these two steps here instead: over rayon's threads, with a `exp` and
//! `erf` written so that the compiler vectorises them (runtime SIMD dispatch through `pulp`).
//!
//! They apply only where no gradient is needed and the buffer is already on the host: the
//! backend must be flex itself (its name is `"flex"`; an autodiff backend over flex reports
//! `"autodiff<flex>"` and keeps burn's differentiable operations). Every other backend, CUDA
//! included, runs burn's operations unchanged.
//!
//! Accuracy: `exp` is within 2 ulps of `f32::exp` over the range softmax uses, and the GELU's
//! error function is Abramowitz and Stegun's 7.1.26 (absolute error below 1.5e-7), so a MiniLM
//! sentence vector moves by about 1e-6 (tests compare both paths).

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorData};
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;
use tears_core::fastmath::exp;

/// Whether the host kernels may run on backend `B`: flex without autodiff.
pub(crate) fn available<B: Backend>(device: &B::Device) -> bool {
    B::name(device) == "flex"
}

/// Elements per parallel task of the element-wise kernels (64 KiB of f32).
const CHUNK: usize = 16 * 1024;

/// The exact GELU `x · Φ(x) = x/2 · (1 + erf(x/√2))`, with `erfc(|z|) = t·P(t)·e^{-z²}`,
/// `t = 1/(1 + p|z|)` (Abramowitz and Stegun 7.1.26), so that `1 + erf(z)` is `2 - erfc(|z|)`
/// for positive `x` and `erfc(|z|)` for negative `x`, with no cancellation on either side.
#[inline(always)]
fn gelu(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A1: f32 = 0.254_829_6;
    const A2: f32 = -0.284_496_74;
    const A3: f32 = 1.421_413_7;
    const A4: f32 = -1.453_152;
    const A5: f32 = 1.061_405_4;
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + P * z);
    let erfc = t * (A1 + t * (A2 + t * (A3 + t * (A4 + t * A5)))) * exp(-z * z);
    let one_plus_erf = if x >= 0.0 { 2.0 - erfc } else { erfc };
    0.5 * x * one_plus_erf
}

/// Lanes of the manual reductions: floating-point sums and maxima only vectorise when written
/// as this many independent accumulators (the compiler keeps the order of a plain fold).
const LANES: usize = 16;

/// The GELU of every element, in place. A [`pulp::WithSimd`] operation so that the loop, with
/// [`gelu`] and [`exp`] inlined into it, is compiled for the SIMD level found at run time.
struct GeluInPlace<'a>(&'a mut [f32]);

impl pulp::WithSimd for GeluInPlace<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        for v in self.0.iter_mut() {
            *v = gelu(*v);
        }
    }
}

/// A row-wise softmax of `scale · scores + bias` in place, `bias` one value per column.
struct SoftmaxRows<'a> {
    scores: &'a mut [f32],
    cols: usize,
    scale: f32,
    bias: &'a [f32],
}

impl pulp::WithSimd for SoftmaxRows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let SoftmaxRows { scores, cols, scale, bias } = self;
        for row in scores.chunks_exact_mut(cols) {
            for (s, &b) in row.iter_mut().zip(bias) {
                *s = *s * scale + b;
            }
            let mut lanes = [f32::NEG_INFINITY; LANES];
            let mut blocks = row.chunks_exact(LANES);
            for block in blocks.by_ref() {
                for (m, &x) in lanes.iter_mut().zip(block) {
                    *m = m.max(x);
                }
            }
            let max = blocks.remainder().iter().chain(&lanes).fold(f32::NEG_INFINITY, |m, &x| m.max(x));
            for s in row.iter_mut() {
                *s = exp(*s - max);
            }
            let mut lanes = [0.0f32; LANES];
            let mut blocks = row.chunks_exact(LANES);
            for block in blocks.by_ref() {
                for (t, &x) in lanes.iter_mut().zip(block) {
                    *t += x;
                }
            }
            let sum: f32 = blocks.remainder().iter().chain(&lanes).sum();
            let inv = 1.0 / sum;
            for s in row.iter_mut() {
                *s *= inv;
            }
        }
    }
}

/// The exact GELU of `x`, element-wise, over rayon's threads, in the tensor's own buffer where
/// nothing else holds it. Same values as [`burn::tensor::activation::gelu`] to about 1e-7
/// relative; burn's operation for non-f32 tensors.
pub(crate) fn gelu_tensor<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    if x.dtype() != DType::F32 {
        return burn::tensor::activation::gelu(x);
    }
    let device = x.device();
    let mut data = x.into_data();
    if let Ok(values) = data.as_mut_slice::<f32>() {
        values.par_chunks_mut(CHUNK).for_each(|chunk| pulp::Arch::new().dispatch(GeluInPlace(chunk)));
        Tensor::from_data(data, &device)
    } else {
        burn::tensor::activation::gelu(Tensor::from_data(data, &device))
    }
}

/// Multi-head attention `softmax(q kᵀ / √d + key_bias) v` for `q`, `k`, `v`
/// `[batch, heads, len, head_dim]` and an additive bias per key `key_bias` (`batch · len`
/// values), returned as `[batch · len, heads · head_dim]` (token-major, heads side by side: the
/// layout the output projection reads). One (batch, head) pair per rayon task, its score matrix
/// in a per-thread buffer. Non-f32 tensors take burn's fused attention.
pub(crate) fn attention<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    key_bias: &[f32],
) -> Tensor<B, 2> {
    let device = q.device();
    let [batch, heads, len, d] = q.dims();
    assert_eq!(key_bias.len(), batch * len, "one bias per key of each batch row");
    let (qd, kd, vd) = (q.into_data(), k.into_data(), v.into_data());
    let (Ok(q), Ok(k), Ok(v)) = (qd.as_slice::<f32>(), kd.as_slice::<f32>(), vd.as_slice::<f32>()) else {
        let tensor = |data: TensorData| Tensor::<B, 4>::from_data(data, &device);
        let bias = Tensor::<B, 1>::from_data(TensorData::new(key_bias.to_vec(), [batch * len]), &device)
            .reshape([batch, 1, 1, len])
            .repeat_dim(2, len);
        let context = burn::tensor::module::attention(
            tensor(qd),
            tensor(kd),
            tensor(vd),
            None,
            Some(bias),
            burn::tensor::ops::AttentionModuleOptions::default(),
        );
        return context.swap_dims(1, 2).reshape([batch * len, heads * d]);
    };
    let scale = 1.0 / (d as f32).sqrt();
    let tile = len * d;
    let mut context = vec![0.0f32; batch * heads * tile];
    context.par_chunks_mut(tile).enumerate().for_each_init(
        || vec![0.0f32; len * len],
        |scores, (pair, out)| {
            let b = pair / heads;
            let span = pair * tile..(pair + 1) * tile;
            let qm = MatRef::from_row_major_slice(&q[span.clone()], len, d);
            let km = MatRef::from_row_major_slice(&k[span.clone()], len, d);
            let vm = MatRef::from_row_major_slice(&v[span], len, d);
            matmul(
                MatMut::from_row_major_slice_mut(scores.as_mut_slice(), len, len),
                Accum::Replace,
                qm,
                km.transpose(),
                1.0,
                Par::Seq,
            );
            pulp::Arch::new().dispatch(SoftmaxRows {
                scores: scores.as_mut_slice(),
                cols: len,
                scale,
                bias: &key_bias[b * len..(b + 1) * len],
            });
            let p = MatRef::from_row_major_slice(scores.as_slice(), len, len);
            matmul(MatMut::from_row_major_slice_mut(out, len, d), Accum::Replace, p, vm, 1.0, Par::Seq);
        },
    );
    // [batch, heads, len, d] → [batch, len, heads, d], one batch row per task.
    let hidden = heads * d;
    let mut tokens = vec![0.0f32; batch * len * hidden];
    tokens.par_chunks_mut(len * hidden).enumerate().for_each(|(b, rows)| {
        for (t, row) in rows.chunks_exact_mut(hidden).enumerate() {
            for (h, dst) in row.chunks_exact_mut(d).enumerate() {
                let src = ((b * heads + h) * len + t) * d;
                dst.copy_from_slice(&context[src..src + d]);
            }
        }
    });
    Tensor::from_data(TensorData::new(tokens, [batch * len, hidden]), &device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use burn::backend::Flex;
    use burn::tensor::module;
    use burn::tensor::ops::AttentionModuleOptions;

    /// The exact GELU in f64.
    fn gelu_reference(x: f64) -> f64 {
        0.5 * x * (1.0 + erf_reference(x / std::f64::consts::SQRT_2))
    }

    /// erf in f64 from its Taylor series (|x| < 3) or its asymptotic continued fraction, accurate to
    /// 1e-12 here; enough to judge an f32 kernel.
    fn erf_reference(x: f64) -> f64 {
        let a = x.abs();
        let value = if a < 3.0 {
            // erf(x) = 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1))
            let mut term = a;
            let mut sum = a;
            for n in 1..200 {
                term *= -a * a / n as f64;
                let add = term / (2 * n + 1) as f64;
                sum += add;
                if add.abs() < 1e-18 {
                    break;
                }
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            // erfc(x) = e^{-x²}/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...))))
            let mut fraction = a;
            for n in (1..60).rev() {
                fraction = a + (n as f64 / 2.0) / fraction;
            }
            1.0 - (-a * a).exp() / (std::f64::consts::PI.sqrt() * fraction)
        };
        value.copysign(x)
    }

    #[test]
    fn gelu_matches_the_exact_gelu_within_the_error_functions_bound() {
        let mut x = -12.0f32;
        let mut worst = 0.0f64;
        while x < 12.0 {
            let want = gelu_reference(x as f64);
            let got = gelu(x) as f64;
            worst = worst.max((got - want).abs() / (x.abs() as f64).max(1.0));
            x += 0.0037;
        }
        // erf's 1.5e-7 absolute error, scaled by x/2, plus f32 rounding.
        assert!(worst <= 2.0e-7, "worst error {worst:e} · max(|x|, 1)");
        assert_eq!(gelu(0.0), 0.0);
        eprintln!("worst GELU error: {worst:e} · max(|x|, 1)");
        // Far left the GELU is a tiny negative number (about -1.4e-6 at -5), not 0 or a
        // cancellation artefact; 7.1.26's bound is absolute, so its relative error there is 2e-3.
        assert!(gelu(-5.0) < 0.0);
        assert_relative_eq!(gelu(-5.0) as f64, gelu_reference(-5.0), max_relative = 2e-3);
    }

    #[test]
    fn gelu_tensor_equals_burns_gelu() {
        let device = Default::default();
        let values: Vec<f32> = (0..40_000).map(|i| (i as f32 * 0.7919).sin() * 6.0).collect();
        let x = Tensor::<Flex, 2>::from_data(TensorData::new(values, [200, 200]), &device);
        let ours = gelu_tensor(x.clone()).into_data().into_vec::<f32>().expect("f32 values");
        let burns = burn::tensor::activation::gelu(x).into_data().into_vec::<f32>().expect("f32 values");
        for (a, b) in ours.iter().zip(&burns) {
            assert!((a - b).abs() <= 1e-6, "{a} against burn's {b}");
        }
    }

    #[test]
    fn attention_equals_burns_attention_with_a_key_mask() {
        let device = Default::default();
        let (batch, heads, len, d) = (3, 4, 9, 8);
        let filled = |seed: f32| {
            let values: Vec<f32> = (0..batch * heads * len * d).map(|i| (i as f32 * seed).sin() * 2.0).collect();
            Tensor::<Flex, 4>::from_data(TensorData::new(values, [batch, heads, len, d]), &device)
        };
        let (q, k, v) = (filled(0.37), filled(0.61), filled(0.83));
        // Row b keeps its first len - 2b keys; the rest are padding.
        let key_bias: Vec<f32> =
            (0..batch * len).map(|i| if i % len < len - 2 * (i / len) { 0.0 } else { -1.0e9 }).collect();
        let bias = Tensor::<Flex, 1>::from_data(TensorData::new(key_bias.clone(), [batch * len]), &device)
            .reshape([batch, 1, 1, len])
            .repeat_dim(2, len);
        let ours =
            attention(q.clone(), k.clone(), v.clone(), &key_bias).into_data().into_vec::<f32>().expect("f32 values");
        let burns = module::attention(q, k, v, None, Some(bias), AttentionModuleOptions::default())
            .swap_dims(1, 2)
            .reshape([batch * len, heads * d])
            .into_data()
            .into_vec::<f32>()
            .expect("f32 values");
        for (a, b) in ours.iter().zip(&burns) {
            assert!((a - b).abs() <= 1e-5, "{a} against burn's {b}");
        }
    }

    #[test]
    fn a_bert_forward_with_the_host_kernels_equals_burns_operations() {
        let device = Default::default();
        let config = crate::BertConfig::tiny(50, 32, 2, 4);
        let mut model =
            crate::BertModel::<Flex>::random(&config, crate::Pooling::Mean, true, 3, &device).expect("a valid config");
        let ids: Vec<i64> = (0..3 * 7).map(|i| (i * 7 % 50) as i64).collect();
        let ids = Tensor::<Flex, 2, burn::tensor::Int>::from_data(TensorData::new(ids, [3, 7]), &device);
        let mask: Vec<f32> = (0..3 * 7).map(|i| if i % 7 < 7 - 2 * (i / 7) { 1.0 } else { 0.0 }).collect();
        let mask = Tensor::<Flex, 2>::from_data(TensorData::new(mask, [3, 7]), &device);
        let host = model.forward(ids.clone(), mask.clone()).into_data().into_vec::<f32>().expect("f32 values");
        model.set_host_kernels(false);
        let burns = model.forward(ids, mask).into_data().into_vec::<f32>().expect("f32 values");
        for (a, b) in host.iter().zip(&burns) {
            assert!((a - b).abs() <= 2e-6, "{a} against burn's {b}");
        }
    }

    #[test]
    fn only_flex_itself_gets_the_host_kernels() {
        assert!(available::<Flex>(&Default::default()));
        assert!(!available::<burn::backend::Autodiff<Flex>>(&Default::default()));
    }
}
