//! MacridVAE (Ma, Zhou, Cui, Yang, Zhu, NeurIPS 2019): disentangled concept latents.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};

use crate::backbone::{Backbone, LatentShape, Loss, Mode, Posterior, Trainable, reparameterize};
use crate::config::{BackboneKind, MacridConfig, ModelConfig};
use crate::ops::{Init, l2_normalize_rows, logsumexp, multinomial_nll, param_copy, with_require_grad};

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

    /// Log concept assignments `[items, K]`: `log_softmax(cos(item, prototype) / tau)`, with Gumbel
    /// noise and temperature while training.
    pub fn log_concepts(&self, items: Tensor<B, 2>, prototypes: Tensor<B, 2>, mode: Mode<'_>) -> Tensor<B, 2> {
        let cos = l2_normalize_rows(items).matmul(l2_normalize_rows(prototypes).transpose());
        let logits = cos.div_scalar(self.config.tau);
        match mode.noise() {
            Some(noise) => {
                let [n, k] = logits.dims();
                let g = noise.gumbel::<B>([n, k], &logits.device());
                log_softmax(logits.add(g).div_scalar(self.config.gumbel_temperature), 1)
            }
            None => log_softmax(logits, 1),
        }
    }

    fn encode_with(&self, x: Tensor<B, 2>, log_c: Tensor<B, 2>, mode: Mode<'_>) -> Posterior<B> {
        let (k, d) = (self.config.concepts, self.config.dim);
        let [b, n] = x.dims();
        let c = log_c.exp().transpose(); // [K, I]
        let xk = x.unsqueeze_dim::<3>(1).mul(c.unsqueeze_dim::<3>(0)).reshape([b * k, n]);
        let h = mode.dropout(l2_normalize_rows(xk), self.config.dropout);
        let h = self.encoder.out.forward(self.encoder.hidden.forward(h).tanh());
        let mu = l2_normalize_rows(h.clone().narrow(1, 0, d)).reshape([b, k * d]);
        let logvar = h.narrow(1, d, d).neg().reshape([b, k * d]);
        Posterior { mu, logvar: Some(logvar) }
    }

    fn decode_with(&self, z: Tensor<B, 2>, items: Tensor<B, 2>, log_c: Tensor<B, 2>) -> Tensor<B, 2> {
        let (k, d) = (self.config.concepts, self.config.dim);
        let [b, _] = z.dims();
        let n = items.dims()[0];
        let zk = l2_normalize_rows(z.reshape([b * k, d]));
        let cos = zk.matmul(l2_normalize_rows(items).transpose()).div_scalar(self.config.tau);
        let scores = cos.reshape([b, k, n]).add(log_c.transpose().unsqueeze_dim::<3>(0));
        logsumexp(scores, 1).reshape([b, n])
    }
}

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
