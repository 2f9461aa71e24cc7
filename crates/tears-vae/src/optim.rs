//! Adam whose update runs as one fused host pass on host-memory backends.
//!
//! burn's [`Adam`] updates a parameter through about a dozen element-wise tensor operations (the
//! two moments, their bias corrections, the square root, the division, the step), each a separate
//! pass over the parameter with its own allocation. On flex and ndarray that is most of the cost
//! of a step on the 2-million-weight decoder layers. [`HostAdam`] computes the same arithmetic,
//! operation for operation in the same order, in one vectorised pass per parameter over rayon
//! chunks, so its numbers are burn's [`Adam`]'s bit for bit (tested), and its state is burn's
//! [`AdamState`], so checkpoints written with either load with the other. Other backends (and
//! non-f32 tensors) take burn's [`Adam`].
//!
//! ```
//! use burn::backend::{Autodiff, Flex};
//! use burn::nn::{Linear, LinearConfig};
//! use tears_vae::optim::HostAdam;
//!
//! type B = Autodiff<Flex>;
//! let mut optim = HostAdam::new(0.9, 0.999, 1e-8).init::<B, Linear<B>>();
//! # let _ = &mut optim;
//! ```

use crate::ops::host_memory;
use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig, AdamState, AdaptiveMomentumState, LearningRate, SimpleOptimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{DType, Tensor, TensorData};
use rayon::prelude::*;

/// Adam (no weight decay, no AMSGrad) with a fused host update; see the [module docs](self).
#[derive(Clone)]
pub struct HostAdam {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    fallback: Adam,
}

impl std::fmt::Debug for HostAdam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostAdam")
            .field("beta_1", &self.beta_1)
            .field("beta_2", &self.beta_2)
            .field("epsilon", &self.epsilon)
            .finish()
    }
}

impl HostAdam {
    /// Adam with moment decays `beta_1`, `beta_2` and `epsilon` added to the root of the second
    /// moment (burn's convention: scaled by the bias correction, as PyTorch's).
    pub fn new(beta_1: f32, beta_2: f32, epsilon: f32) -> Self {
        let fallback = AdamConfig::new().with_beta_1(beta_1).with_beta_2(beta_2).with_epsilon(epsilon).build();
        Self { beta_1, beta_2, epsilon, fallback }
    }

    /// The optimizer for module `M`, as [`AdamConfig::init`] gives burn's.
    pub fn init<B: AutodiffBackend, M: AutodiffModule<B>>(self) -> OptimizerAdaptor<Self, M, B> {
        OptimizerAdaptor::from(self)
    }
}

/// A tensor's f32 values on the host, or the tensor back when they cannot be read as f32. On
/// flex a tensor nothing else holds moves out without a copy (and `from_data` moves back in).
fn host_values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Result<Vec<f32>, Tensor<B, D>> {
    let device = t.device();
    let data = t.into_data();
    if data.as_slice::<f32>().is_err() {
        return Err(Tensor::from_data(data, &device));
    }
    // `as_slice` read the bytes as f32, so `into_vec` succeeds (moving them, or copying when
    // their allocation is aligned for bytes only).
    Ok(data.into_vec::<f32>().unwrap_or_default())
}

impl<B: Backend> SimpleOptimizer<B> for HostAdam {
    type State<const D: usize> = AdamState<B, D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        let device = tensor.device();
        let host = host_memory::<B>(&device)
            && tensor.dtype() == DType::F32
            && grad.dtype() == DType::F32
            && state.as_ref().is_none_or(|s| {
                s.momentum.moment_1.dtype() == DType::F32
                    && s.momentum.moment_2.dtype() == DType::F32
                    && s.momentum.max_moment_2.is_none()
            });
        if !host {
            return self.fallback.step(lr, tensor, grad, state);
        }
        let shape = tensor.shape();
        let back = |values: Vec<f32>| Tensor::<B, D>::from_data(TensorData::new(values, shape.clone()), &device);
        // The dtypes were checked, so each read succeeds; a failed one hands everything to burn's Adam.
        let mut param = match host_values(tensor) {
            Ok(v) => v,
            Err(tensor) => return self.fallback.step(lr, tensor, grad, state),
        };
        let grad = match host_values(grad) {
            Ok(v) => v,
            Err(grad) => return self.fallback.step(lr, back(param), grad, state),
        };
        let n = param.len();
        let (time, mut m, mut v) = match state {
            None => (1, vec![0.0; n], vec![0.0; n]),
            Some(s) => {
                let AdaptiveMomentumState { time, moment_1, moment_2, .. } = s.momentum;
                let state = |m, v| Some(AdamState::new(AdaptiveMomentumState::new(time, m, v)));
                let m = match host_values(moment_1) {
                    Ok(m) => m,
                    Err(m) => return self.fallback.step(lr, back(param), back(grad), state(m, moment_2)),
                };
                let v = match host_values(moment_2) {
                    Ok(v) => v,
                    Err(v) => return self.fallback.step(lr, back(param), back(grad), state(back(m), v)),
                };
                (time + 1, m, v)
            }
        };
        // The scalars exactly as burn's `AdaptiveMomentum::transform` forms them, in f32.
        let t = time as i32;
        let bias_correction2_sqrt = (1.0 - self.beta_2.powi(t)).sqrt();
        let k = Step {
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            factor_1: 1.0 - self.beta_1,
            factor_2: 1.0 - self.beta_2,
            combined: bias_correction2_sqrt / (1.0 - self.beta_1.powi(t)),
            epsilon: self.epsilon * bias_correction2_sqrt,
            lr: lr as f32,
            first: time == 1,
        };
        param
            .par_chunks_mut(CHUNK)
            .zip(grad.par_chunks(CHUNK))
            .zip(m.par_chunks_mut(CHUNK))
            .zip(v.par_chunks_mut(CHUNK))
            .for_each(|(((p, g), m), v)| pulp::Arch::new().dispatch(Chunk { k, p, g, m, v }));
        let momentum = AdaptiveMomentumState::new(time, back(m), back(v));
        (back(param), Some(AdamState::new(momentum)))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        <Adam as SimpleOptimizer<B>>::to_device(state, device)
    }
}

/// Elements per rayon task.
const CHUNK: usize = 1 << 14;

/// The per-step scalars of one parameter's update.
#[derive(Clone, Copy)]
struct Step {
    beta_1: f32,
    beta_2: f32,
    factor_1: f32,
    factor_2: f32,
    combined: f32,
    epsilon: f32,
    lr: f32,
    first: bool,
}

/// One chunk of the update, in place: each line is one of burn's tensor operations, in its order.
struct Chunk<'a> {
    k: Step,
    p: &'a mut [f32],
    g: &'a [f32],
    m: &'a mut [f32],
    v: &'a mut [f32],
}

impl pulp::WithSimd for Chunk<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let Step { beta_1, beta_2, factor_1, factor_2, combined, epsilon, lr, first } = self.k;
        let rows = self.p.iter_mut().zip(self.g).zip(self.m.iter_mut()).zip(self.v.iter_mut());
        if first {
            for (((p, &g), m), v) in rows {
                *m = g * factor_1;
                *v = (g * g) * factor_2;
                *p -= ((*m * combined) / (v.sqrt() + epsilon)) * lr;
            }
        } else {
            for (((p, &g), m), v) in rows {
                *m = *m * beta_1 + g * factor_1;
                *v = *v * beta_2 + (g * g) * factor_2;
                *p -= ((*m * combined) / (v.sqrt() + epsilon)) * lr;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::{GradientsParams, Optimizer};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    type A = Autodiff<Flex>;

    /// Five steps of both optimizers from the same weights on the same batches.
    fn run<O: Optimizer<Linear<A>, A>>(mut optim: O) -> Vec<f32> {
        let device = Default::default();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        <A as Backend>::seed(&device, 3);
        // More weights than one rayon chunk, so the chunking is exercised.
        let mut model: Linear<A> = LinearConfig::new(130, 140).init(&device);
        let first = model.weight.val().into_data();
        for step in 0..5 {
            let x: Vec<f32> = (0..4 * 130).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            let x = Tensor::<A, 2>::from_data(TensorData::new(x, [4, 130]), &device);
            let loss = model.forward(x).powf_scalar(2.0).sum();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(1e-2 / (step + 1) as f64, model, grads);
        }
        assert_ne!(model.weight.val().into_data(), first, "the steps moved the weights");
        let mut out = model.weight.val().into_data().to_vec::<f32>().unwrap_or_default();
        out.extend(model.bias.map(|b| b.val().into_data().to_vec::<f32>().unwrap_or_default()).unwrap_or_default());
        out
    }

    #[test]
    fn host_adam_matches_burns_adam_bit_for_bit() {
        // Flex takes the fused host path, so this compares the two implementations.
        assert!(host_memory::<Flex>(&Default::default()));
        let ours = run(HostAdam::new(0.9, 0.999, 1e-8).init::<A, Linear<A>>());
        let burns = run(AdamConfig::new().with_epsilon(1e-8).init::<A, Linear<A>>());
        assert_eq!(ours.len(), 130 * 140 + 140);
        assert_eq!(burns.len(), ours.len());
        let differ = ours.iter().zip(&burns).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
        assert_eq!(differ, 0, "{differ} of {} weights differ from burn's Adam", ours.len());
    }
}
