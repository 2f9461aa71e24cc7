//! RecVAE (Shenbin, Alekseev, Tutubalina, Malykh, Nikolenko, WSDM 2020).

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use crate::backbone::{Backbone, Given, LatentShape, Loss, Mode, Phase, Posterior, Schedule, trainable_halves};
use crate::config::{BackboneKind, ModelConfig, RecVaeConfig};
use crate::input::InputLayer;
use crate::ops::{
    Init, frozen_copy, l2_normalize_rows, log_normal, log_normal_const, multinomial_nll, silu, silu_detached,
};

/// RecVAE's encoder: densely connected swish layers, each followed by LayerNorm,
/// `h_k = LN(swish(W_k h_{k−1} + h_1 + … + h_{k−1}))`, then linear maps to `mu` and `logvar`.
#[derive(Module, Debug)]
pub struct RecVaeEncoder<B: Backend> {
    /// The dense layers (`items → hidden`, then `hidden → hidden`).
    pub layers: Vec<Linear<B>>,
    /// One LayerNorm (epsilon 0.1) after each dense layer.
    pub norms: Vec<LayerNorm<B>>,
    /// `hidden → latent` mean.
    pub mu: Linear<B>,
    /// `hidden → latent` log-variance.
    pub logvar: Linear<B>,
}

impl<B: Backend> RecVaeEncoder<B> {
    /// The posterior of already normalised (and possibly dropped-out) input rows.
    pub fn forward(&self, x: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        match self.layers.first() {
            Some(first) => self.after_input(first.forward(x)),
            None => (self.mu.forward(x.clone()), self.logvar.forward(x)),
        }
    }

    /// Whether no parameter of the encoder takes a gradient (frozen by `no_grad`, a frozen
    /// copy, or a backend without autodiff).
    pub fn is_frozen(&self) -> bool {
        let free = |l: &Linear<B>| {
            !l.weight.val().is_require_grad() && l.bias.as_ref().is_none_or(|b| !b.val().is_require_grad())
        };
        self.layers.iter().chain([&self.mu, &self.logvar]).all(free)
            && self.norms.iter().all(|n| !n.gamma.val().is_require_grad())
    }

    /// The posterior given the first dense layer's output `W₁ x + b₁` (before its swish).
    ///
    /// A frozen encoder ([`RecVaeEncoder::is_frozen`]) is a constant function of its input,
    /// which is data (click rows, or the first layer of a frozen weight over them): its
    /// posterior is computed detached, with the host's SiLU ([`crate::ops::silu_detached`]).
    pub fn after_input(&self, first: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let frozen = self.is_frozen();
        let swish = |t: Tensor<B, 2>| if frozen { silu_detached(t) } else { silu(t) };
        let first = if frozen { first.detach() } else { first };
        let mut sum: Option<Tensor<B, 2>> = None;
        let mut h = first.clone();
        for (k, (layer, norm)) in self.layers.iter().zip(&self.norms).enumerate() {
            let pre = if k == 0 { first.clone() } else { layer.forward(h) };
            let pre = match &sum {
                Some(s) => pre.add(s.clone()),
                None => pre,
            };
            h = norm.forward(swish(pre));
            sum = Some(match sum {
                Some(s) => s.add(h.clone()),
                None => h.clone(),
            });
        }
        (self.mu.forward(h.clone()), self.logvar.forward(h))
    }
}

/// RecVAE: the encoder above, a linear decoder `latent → items`, and a composite prior built from
/// a frozen copy of the encoder.
#[derive(Module, Debug)]
pub struct RecVae<B: Backend> {
    /// The trained encoder.
    pub encoder: RecVaeEncoder<B>,
    /// The frozen encoder copy of the composite prior, refreshed after every encoder phase.
    pub prior_encoder: RecVaeEncoder<B>,
    /// `latent → items`.
    pub decoder: Linear<B>,
    #[module(skip)]
    config: RecVaeConfig,
    #[module(skip)]
    n_items: usize,
}

impl<B: Backend> RecVae<B> {
    /// A freshly initialised model over `n_items` items.
    pub fn new(config: &RecVaeConfig, n_items: usize, seed: u64, device: &B::Device) -> Self {
        let mut init = Init::<B>::new(seed, device);
        let layers = (0..config.layers)
            .map(|k| init.linear(if k == 0 { n_items } else { config.hidden }, config.hidden))
            .collect();
        let norms = (0..config.layers)
            .map(|_| LayerNormConfig::new(config.hidden).with_epsilon(config.layer_norm_eps).init(device))
            .collect();
        let encoder = RecVaeEncoder {
            layers,
            norms,
            mu: init.linear(config.hidden, config.latent),
            logvar: init.linear(config.hidden, config.latent),
        };
        let decoder = init.linear(config.latent, n_items);
        RecVae { prior_encoder: frozen_copy(&encoder), encoder, decoder, config: *config, n_items }
    }

    /// Per-coordinate `log p(z)` of the composite prior
    /// `w₀ N(0, 1) + w₁ N(mu_old, σ_old²) + w₂ N(0, e^wide_logvar)`.
    pub fn log_prior(&self, z: Tensor<B, 2>, mu_old: Tensor<B, 2>, logvar_old: Tensor<B, 2>) -> Tensor<B, 2> {
        let [w0, w1, w2] = self.config.mixture;
        let standard = log_normal_const(z.clone(), 0.0).add_scalar(w0.ln());
        let posterior = log_normal(z.clone(), mu_old, logvar_old).add_scalar(w1.ln());
        let wide = log_normal_const(z, self.config.wide_logvar).add_scalar(w2.ln());
        let max = standard.clone().max_pair(posterior.clone()).max_pair(wide.clone()).detach();
        let sum =
            standard.sub(max.clone()).exp().add(posterior.sub(max.clone()).exp()).add(wide.sub(max.clone()).exp());
        sum.log().add(max)
    }
}

impl<B: Backend> Backbone<B> for RecVae<B> {
    fn kind(&self) -> BackboneKind {
        BackboneKind::RecVae
    }

    fn model_config(&self) -> ModelConfig {
        ModelConfig::RecVae(self.config)
    }

    fn n_items(&self) -> usize {
        self.n_items
    }

    fn latent(&self) -> LatentShape {
        LatentShape { concepts: 1, dim: self.config.latent }
    }

    fn encode(&self, x: Tensor<B, 2>, mode: Mode<'_>) -> Posterior<B> {
        let (mu, logvar) = self.encoder.forward(mode.dropout(l2_normalize_rows(x), self.config.dropout));
        Posterior { mu, logvar: Some(logvar) }
    }

    fn decode(&self, z: Tensor<B, 2>, _mode: Mode<'_>) -> Tensor<B, 2> {
        self.decoder.forward(z)
    }

    fn affine_decoder(&self) -> bool {
        true
    }

    /// `mean_u [NLL_u + gamma |x_u| (log q(z_u|x_u) − log p(z_u))]` with one Monte-Carlo sample
    /// (`beta` is not used: the KL weight is per user); the NLL alone in [`Phase::Decoder`].
    fn loss(&self, x: Tensor<B, 2>, beta: f32, mode: Mode<'_>) -> Loss<B> {
        self.loss_with(x, beta, mode, Given::default())
    }

    /// The composite prior's `N(mu_old, σ_old²)` component: the frozen encoder copy's posterior
    /// of the normalised rows (no dropout).
    fn prior_posterior(&self, x: Tensor<B, 2>) -> Option<Posterior<B>> {
        let (mu, logvar) = self.prior_encoder.forward(l2_normalize_rows(x));
        Some(Posterior { mu: mu.detach(), logvar: Some(logvar.detach()) })
    }

    fn input_layer(&self) -> Option<InputLayer<'_, B>> {
        self.encoder.layers.first().map(|linear| InputLayer { linear, dropout: self.config.dropout })
    }

    fn encode_after_input(&self, first: Tensor<B, 2>, _mode: Mode<'_>) -> Option<Posterior<B>> {
        let (mu, logvar) = self.encoder.after_input(first);
        Some(Posterior { mu, logvar: Some(logvar) })
    }

    fn loss_with(&self, x: Tensor<B, 2>, _beta: f32, mode: Mode<'_>, given: Given<B>) -> Loss<B> {
        let Given { prior, first_layer } = given;
        let posterior = self.encode_given(x.clone(), first_layer, mode);
        let z = self.sample(&posterior, mode);
        let nll = multinomial_nll(self.decode(z.clone(), mode), x.clone());
        if mode.phase() == Some(Phase::Decoder) {
            // The KL term does not depend on the decoder: a decoder step does not need it.
            let nll = nll.mean();
            return Loss { total: nll.clone(), regularizer: nll.zeros_like(), nll };
        }
        let (mu_old, logvar_old) = match prior {
            Some(Posterior { mu, logvar: Some(logvar) }) => (mu, logvar),
            _ => self.prior_encoder.forward(l2_normalize_rows(x.clone())),
        };
        let (mu, logvar) = (posterior.mu, posterior.logvar.unwrap_or_else(|| z.zeros_like()));
        let log_q = log_normal(z.clone(), mu, logvar);
        let log_p = self.log_prior(z, mu_old.detach(), logvar_old.detach());
        let weight = x.sum_dim(1).mul_scalar(self.config.gamma);
        let kl = log_q.sub(log_p).sum_dim(1).mul(weight).squeeze_dim::<1>(1).mean();
        let nll = nll.mean();
        Loss { total: nll.clone().add(kl.clone()), nll, regularizer: kl }
    }

    fn freeze_encoder(mut self) -> Self {
        self.encoder = self.encoder.no_grad();
        self
    }

    fn schedule(&self) -> Schedule {
        Schedule::Alternating { encoder_passes: self.config.encoder_passes, decoder_passes: self.config.decoder_passes }
    }

    fn refresh_prior(mut self) -> Self {
        self.prior_encoder = frozen_copy(&self.encoder);
        self
    }
}

trainable_halves!(RecVae);
