//! MacridVAE (Ma, Zhou, Cui, Yang, Zhu, NeurIPS 2019): disentangled concept latents.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};

use crate::backbone::{Backbone, LatentShape, Loss, Mode, Posterior, Trainable, reparameterize};
use crate::config::{BackboneKind, MacridConfig, ModelConfig};
use crate::ops::{Init, l2_normalize_rows, multinomial_nll, param_copy, tanh, with_require_grad};

/// MacridVAE's encoder side: the item embeddings and concept prototypes (which also drive the
/// decoder until [`Backbone::freeze_encoder`] gives the decoder its own copy) and the shared
/// per-concept network `items → d (tanh) → 2d`.
#[derive(Module, Debug)]
pub struct MacridEncoder<B: Backend> {
    /// Item embeddings `[items, d]`.
    pub items: Param<Tensor<B, 2>>,
    /// Concept prototypes `[K, d]`.
    pub prototypes: Param<Tensor<B, 2>>,
    /// `items → d`, tanh.
    pub hidden: Linear<B>,
    /// `d → 2d`: the mean direction and the negated log-variance.
    pub out: Linear<B>,
}

/// The decoder's own item embeddings and prototypes, created by [`Backbone::freeze_encoder`].
#[derive(Module, Debug)]
pub struct MacridDecoder<B: Backend> {
    /// Item embeddings `[items, d]` (a trainable copy).
    pub items: Param<Tensor<B, 2>>,
    /// Concept prototypes `[K, d]` (a trainable copy).
    pub prototypes: Param<Tensor<B, 2>>,
}

/// MacridVAE: `p(i | z) ∝ Σ_k c_ik exp(cos(z_k, item_i) / tau)`, with concept assignments `c`
/// from item–prototype cosines.
#[derive(Module, Debug)]
pub struct MacridVae<B: Backend> {
    /// Embeddings, prototypes and the per-concept encoder network.
    pub encoder: MacridEncoder<B>,
    /// The decoder's own embeddings once the encoder is frozen (`None` while the backbone trains:
    /// encoder and decoder share the embeddings, as in the original model).
    pub decoder: Option<MacridDecoder<B>>,
    #[module(skip)]
    config: MacridConfig,
    #[module(skip)]
    n_items: usize,
}

impl<B: Backend> MacridVae<B> {
    /// A freshly initialised model over `n_items` items.
    pub fn new(config: &MacridConfig, n_items: usize, seed: u64, device: &B::Device) -> Self {
        let mut init = Init::<B>::new(seed, device);
        let d = config.dim;
        let encoder = MacridEncoder {
            items: Param::from_tensor(init.glorot(n_items, d)),
            prototypes: Param::from_tensor(init.glorot(config.concepts, d)),
            hidden: init.linear(n_items, d),
            out: init.linear(d, 2 * d),
        };
        MacridVae { encoder, decoder: None, config: *config, n_items }
    }

    fn decoder_embeddings(&self) -> (Tensor<B, 2>, Tensor<B, 2>) {
        match &self.decoder {
            Some(d) => (d.items.val(), d.prototypes.val()),
            None => (self.encoder.items.val(), self.encoder.prototypes.val()),
        }
    }

    /// Log concept assignments, K-major `[K, items]`: `log_softmax` over the concepts of
    /// `cos(item, prototype) / tau`, with Gumbel noise and temperature while training.
    ///
    /// The Gumbel noise is drawn item-major (`[items, K]`, one row per item) and transposed, so a
    /// seed gives the same draws as in the item-major formulation.
    pub fn log_concepts(&self, items: Tensor<B, 2>, prototypes: Tensor<B, 2>, mode: Mode<'_>) -> Tensor<B, 2> {
        let cos = l2_normalize_rows(prototypes).matmul(l2_normalize_rows(items).transpose());
        let logits = cos.div_scalar(self.config.tau);
        match mode.noise() {
            Some(noise) => {
                let [k, n] = logits.dims();
                let g = noise.gumbel::<B>([n, k], &logits.device()).transpose();
                log_softmax(logits.add(g).div_scalar(self.config.gumbel_temperature), 0)
            }
            None => log_softmax(logits, 0),
        }
    }

    /// The per-concept encoder: `dropout(normalize(x ⊙ c_k))` through `items → d (tanh) → 2d`.
    ///
    /// Row `b · K + k` of the `[batch · K, items]` input is user `b` in concept `k`, built as the
    /// clicks repeated K times along the items (dropped out while still data, with no gradient)
    /// times the concept row, so every element-wise step on it is contiguous or a shared-row
    /// broadcast. The norms come from one small product, `‖x ⊙ c_k‖² = (x ⊙ x) · (c_k ⊙ c_k)`,
    /// and divide the `[batch · K, d]` hidden pre-activations instead of the input (a row scale
    /// commutes with the product).
    fn encode_with(&self, x: Tensor<B, 2>, log_c: Tensor<B, 2>, mode: Mode<'_>) -> Posterior<B> {
        let (k, d) = (self.config.concepts, self.config.dim);
        let [b, n] = x.dims();
        let c = log_c.exp(); // [K, items]
        let sq_norms = x.clone().powi_scalar(2).matmul(c.clone().powi_scalar(2).transpose());
        let norms = sq_norms.clamp_min(1e-20).sqrt().add_scalar(1e-10).reshape([b * k, 1]);
        let kept = mode.dropout(x.repeat_dim(1, k).reshape([b * k, n]), self.config.dropout);
        let xk = kept.reshape([b, k * n]).mul(c.reshape([1, k * n])).reshape([b * k, n]);
        let hidden = &self.encoder.hidden;
        let mut pre = xk.matmul(hidden.weight.val()).div(norms);
        if let Some(bias) = &hidden.bias {
            pre = pre.add(bias.val().unsqueeze_dim(0));
        }
        let h = self.encoder.out.forward(tanh(pre));
        let mu = l2_normalize_rows(h.clone().narrow(1, 0, d)).reshape([b, k * d]);
        let logvar = h.narrow(1, d, d).neg().reshape([b, k * d]);
        Posterior { mu, logvar: Some(logvar) }
    }

    /// `log Σ_k c_ik exp(cos(z_k, item_i) / tau)`, shape `[batch, items]`.
    ///
    /// One matrix product gives every exponent `cos(z_k, item_i) / tau + log c_ik` at once: the
    /// item side is `[unit item | log c_i·]` (`[items, d + K]`), the latent side
    /// `[unit z_k / tau | one-hot k]` (`[batch · K, d + K]`). The product is laid out
    /// `[items, batch, K]`, so the sum over concepts runs over the innermost dimension, forward and
    /// backward. Both factors of each term are bounded (`Σ_k c_ik = 1`, cosines in `[−1, 1]`), so
    /// the sum lies in `[e^(−1/tau), e^(1/tau)]` and needs no max shift for `tau ≥` [`MIN_TAU`].
    fn decode_with(&self, z: Tensor<B, 2>, items: Tensor<B, 2>, log_c: Tensor<B, 2>) -> Tensor<B, 2> {
        let (k, d) = (self.config.concepts, self.config.dim);
        let [b, _] = z.dims();
        let n = items.dims()[0];
        let device = z.device();
        let zk = l2_normalize_rows(z.reshape([b * k, d])).div_scalar(self.config.tau);
        let one_hot = Tensor::<B, 2>::eye(k, &device).repeat_dim(0, b);
        let latent_side = Tensor::cat(vec![zk, one_hot], 1);
        let item_side = Tensor::cat(vec![l2_normalize_rows(items), log_c.transpose()], 1);
        let exponents = item_side.matmul(latent_side.transpose()); // [items, batch · K]
        let mixture = exponents.exp().reshape([n, b, k]).sum_dim(2).reshape([n, b]);
        mixture.log().transpose()
    }
}

/// The smallest cosine temperature MacridVAE accepts: its decoder's `Σ_k c_ik exp(cos / tau)`
/// stays within f32's normal range for `1 / tau ≤ 50`.
pub const MIN_TAU: f32 = 0.02;

impl<B: Backend> Backbone<B> for MacridVae<B> {
    fn kind(&self) -> BackboneKind {
        BackboneKind::MacridVae
    }

    fn model_config(&self) -> ModelConfig {
        ModelConfig::MacridVae(self.config)
    }

    fn n_items(&self) -> usize {
        self.n_items
    }

    fn latent(&self) -> LatentShape {
        LatentShape { concepts: self.config.concepts, dim: self.config.dim }
    }

    fn encode(&self, x: Tensor<B, 2>, mode: Mode<'_>) -> Posterior<B> {
        let log_c = self.log_concepts(self.encoder.items.val(), self.encoder.prototypes.val(), mode);
        self.encode_with(x, log_c, mode)
    }

    /// `mu + sigma0 · exp(logvar / 2) · eps` while training.
    fn sample(&self, posterior: &Posterior<B>, mode: Mode<'_>) -> Tensor<B, 2> {
        reparameterize(posterior, mode, self.config.sigma0)
    }

    fn normalize_latent(&self, z: Tensor<B, 2>) -> Tensor<B, 2> {
        let [b, l] = z.dims();
        l2_normalize_rows(z.reshape([b * self.config.concepts, self.config.dim])).reshape([b, l])
    }

    fn decode(&self, z: Tensor<B, 2>, mode: Mode<'_>) -> Tensor<B, 2> {
        let (items, prototypes) = self.decoder_embeddings();
        let log_c = self.log_concepts(items.clone(), prototypes, mode);
        self.decode_with(z, items, log_c)
    }

    /// `NLL + beta · Σ_k KL_k`, `KL_k = ½ Σ (−logvar + e^logvar − 1)` (the mean is unit-norm, so
    /// the `mu²` term is constant and left out); one concept assignment per batch serves the
    /// encoder and the decoder.
    fn loss(&self, x: Tensor<B, 2>, beta: f32, mode: Mode<'_>) -> Loss<B> {
        let log_c = self.log_concepts(self.encoder.items.val(), self.encoder.prototypes.val(), mode);
        let posterior = self.encode_with(x.clone(), log_c.clone(), mode);
        let z = self.sample(&posterior, mode);
        let logits = match &self.decoder {
            None => self.decode_with(z, self.encoder.items.val(), log_c),
            Some(_) => self.decode(z, mode),
        };
        let nll = multinomial_nll(logits, x).mean();
        let kl = match posterior.logvar {
            Some(lv) => lv.clone().exp().sub(lv).sub_scalar(1.0).sum_dim(1).mul_scalar(0.5).mean(),
            None => nll.zeros_like(),
        };
        let regularizer = kl.mul_scalar(beta);
        Loss { total: nll.clone().add(regularizer.clone()), nll, regularizer }
    }

    fn freeze_encoder(mut self) -> Self {
        if self.decoder.is_none() {
            self.decoder = Some(MacridDecoder {
                items: param_copy(&self.encoder.items),
                prototypes: param_copy(&self.encoder.prototypes),
            });
        }
        self.encoder = self.encoder.no_grad();
        self
    }
}

impl<B: AutodiffBackend> Trainable<B> for MacridVae<B> {
    /// Everything the encoder owns, including the item embeddings and prototypes while they are
    /// shared with the decoder.
    fn encoder_grads(&self, grads: &mut B::Gradients) -> GradientsParams {
        GradientsParams::from_module(grads, &self.encoder)
    }

    /// The decoder's own embeddings (empty before [`Backbone::freeze_encoder`]).
    fn decoder_grads(&self, grads: &mut B::Gradients) -> GradientsParams {
        match &self.decoder {
            Some(d) => GradientsParams::from_module(grads, d),
            None => GradientsParams::new(),
        }
    }

    /// The shared embeddings follow `encoder` until the decoder has its own copy.
    fn with_trainable(mut self, encoder: bool, decoder: bool) -> Self {
        self.encoder = with_require_grad(self.encoder, encoder);
        self.decoder = self.decoder.map(|d| with_require_grad(d, decoder));
        self
    }
}

#[cfg(test)]
mod tests {
    use approx::assert_relative_eq;
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::TensorData;

    use super::*;
    use crate::NoiseSource;
    use crate::ops::logsumexp;

    type A = Autodiff<Flex>;

    /// The model written the direct way (Ma et al.'s broadcasts over `[batch, K, items]` and an
    /// item-major `[items, K]` assignment, max-shifted log-sum-exp), with the same random draws
    /// in the same order: concept noise, dropout mask, reparameterisation noise.
    fn reference_loss(model: &MacridVae<A>, x: Tensor<A, 2>, beta: f32, noise: &NoiseSource) -> Tensor<A, 1> {
        let c = model.config;
        let (k, d) = (c.concepts, c.dim);
        let [b, n] = x.dims();
        let mode = Mode::train(noise);
        let items = model.encoder.items.val();
        let cos =
            l2_normalize_rows(items.clone()).matmul(l2_normalize_rows(model.encoder.prototypes.val()).transpose());
        let g = noise.gumbel::<A>([n, k], &cos.device());
        let log_c = log_softmax(cos.div_scalar(c.tau).add(g).div_scalar(c.gumbel_temperature), 1);
        let cw = log_c.clone().exp().transpose();
        let xk = x.clone().unsqueeze_dim::<3>(1).mul(cw.unsqueeze_dim::<3>(0)).reshape([b * k, n]);
        let h = mode.dropout(l2_normalize_rows(xk), c.dropout);
        let h = model.encoder.out.forward(tanh(model.encoder.hidden.forward(h)));
        let mu = l2_normalize_rows(h.clone().narrow(1, 0, d)).reshape([b, k * d]);
        let logvar = h.narrow(1, d, d).neg().reshape([b, k * d]);
        let posterior = Posterior { mu, logvar: Some(logvar.clone()) };
        let z = reparameterize(&posterior, mode, c.sigma0);
        let zk = l2_normalize_rows(z.reshape([b * k, d]));
        let scores = zk.matmul(l2_normalize_rows(items).transpose()).div_scalar(c.tau);
        let scores = scores.reshape([b, k, n]).add(log_c.transpose().unsqueeze_dim::<3>(0));
        let logits = logsumexp(scores, 1).reshape([b, n]);
        let nll = multinomial_nll(logits, x).mean();
        let kl = logvar.clone().exp().sub(logvar).sub_scalar(1.0).sum_dim(1).mul_scalar(0.5).mean();
        nll.add(kl.mul_scalar(beta))
    }

    fn clicks(users: usize, items: usize) -> Tensor<A, 2> {
        let data: Vec<f32> =
            (0..users * items).map(|v| f32::from(u8::from((v * 7 + v / items).is_multiple_of(5)))).collect();
        Tensor::from_data(TensorData::new(data, [users, items]), &Default::default())
    }

    fn flat(t: Tensor<Flex, 2>) -> Vec<f32> {
        t.into_data().to_vec::<f32>().expect("f32")
    }

    #[test]
    fn the_fused_layout_computes_the_direct_formulas_loss_and_gradients() {
        let config = MacridConfig { dim: 6, concepts: 3, tau: 0.1, ..MacridConfig::default() };
        let model = MacridVae::<A>::new(&config, 40, 3, &Default::default());
        let x = clicks(5, 40);
        let fast = model.loss(x.clone(), 0.2, Mode::train(&NoiseSource::new(9, 0))).total;
        let direct = reference_loss(&model, x, 0.2, &NoiseSource::new(9, 0));
        let (fast_v, direct_v) = (fast.clone().into_scalar(), direct.clone().into_scalar());
        assert_relative_eq!(fast_v, direct_v, max_relative = 1e-5);
        let (fast_g, direct_g) = (fast.backward(), direct.backward());
        for (name, param) in [("items", &model.encoder.items), ("prototypes", &model.encoder.prototypes)] {
            let a = flat(param.grad(&fast_g).expect("gradient"));
            let b = flat(param.grad(&direct_g).expect("gradient"));
            let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!(scale > 0.0, "{name}: the reference gradient is zero");
            for (u, v) in a.iter().zip(&b) {
                assert!((u - v).abs() <= 1e-4 * scale, "{name}: gradient {u} against {v}");
            }
        }
    }

    #[test]
    fn scores_stay_finite_at_the_smallest_temperature() {
        let config = MacridConfig { dim: 4, concepts: 2, tau: MIN_TAU, ..MacridConfig::default() };
        let model = MacridVae::<Flex>::new(&config, 30, 1, &Default::default());
        let x = clicks(4, 30).inner();
        let scores = flat(model.score(x));
        assert!(scores.iter().all(|v| v.is_finite()), "non-finite score at tau = {MIN_TAU}");
        let too_small = ModelConfig::MacridVae(MacridConfig { tau: MIN_TAU / 2.0, ..config });
        assert!(too_small.validate().is_err());
    }
}
