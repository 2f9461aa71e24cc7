//! Mult-DAE and Mult-VAE (Liang, Krishnan, Hoffman, Jebara, WWW 2018).

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use crate::backbone::{Backbone, Given, LatentShape, Loss, Mode, Posterior, trainable_halves};
use crate::config::{BackboneKind, ModelConfig, MultDaeConfig, MultVaeConfig};
use crate::input::InputLayer;
use crate::ops::{Init, kl_standard_normal, l2_normalize_rows, multinomial_nll, tanh, weight_sq_norm};

/// Mult-DAE: `x → normalise → dropout → tanh(W₁ x + b₁) → W₂ h + b₂`.
///
/// The "latent" is the tanh hidden layer; the encoder is deterministic (no log-variance).
#[derive(Module, Debug)]
pub struct MultDae<B: Backend> {
    /// `items → hidden`.
    pub encoder: Linear<B>,
    /// `hidden → items`.
    pub decoder: Linear<B>,
    #[module(skip)]
    config: MultDaeConfig,
    #[module(skip)]
    n_items: usize,
}

impl<B: Backend> MultDae<B> {
    /// A freshly initialised model over `n_items` items.
    pub fn new(config: &MultDaeConfig, n_items: usize, seed: u64, device: &B::Device) -> Self {
        let mut init = Init::<B>::new(seed, device);
        MultDae {
            encoder: init.linear(n_items, config.hidden),
            decoder: init.linear(config.hidden, n_items),
            config: *config,
            n_items,
        }
    }
}

impl<B: Backend> Backbone<B> for MultDae<B> {
    fn kind(&self) -> BackboneKind {
        BackboneKind::MultDae
    }

    fn model_config(&self) -> ModelConfig {
        ModelConfig::MultDae(self.config)
    }

    fn n_items(&self) -> usize {
        self.n_items
    }

    fn latent(&self) -> LatentShape {
        LatentShape { concepts: 1, dim: self.config.hidden }
    }

    fn encode(&self, x: Tensor<B, 2>, mode: Mode<'_>) -> Posterior<B> {
        let h = mode.dropout(l2_normalize_rows(x), self.config.dropout);
        Posterior { mu: tanh(self.encoder.forward(h)), logvar: None }
    }

    fn input_layer(&self) -> Option<InputLayer<'_, B>> {
        Some(InputLayer { linear: &self.encoder, dropout: self.config.dropout })
    }

    fn encode_after_input(&self, first: Tensor<B, 2>, _mode: Mode<'_>) -> Option<Posterior<B>> {
        Some(Posterior { mu: tanh(first), logvar: None })
    }

    fn decode(&self, z: Tensor<B, 2>, _mode: Mode<'_>) -> Tensor<B, 2> {
        self.decoder.forward(z)
    }

    fn affine_decoder(&self) -> bool {
        true
    }

    fn loss(&self, x: Tensor<B, 2>, beta: f32, mode: Mode<'_>) -> Loss<B> {
        self.loss_with(x, beta, mode, Given::default())
    }

    fn loss_with(&self, x: Tensor<B, 2>, _beta: f32, mode: Mode<'_>, given: Given<B>) -> Loss<B> {
        let posterior = self.encode_given(x.clone(), given.first_layer, mode);
        let logits = self.decode(posterior.mu, mode);
        let nll = multinomial_nll(logits, x).mean();
        let penalty =
            weight_sq_norm(&self.encoder).add(weight_sq_norm(&self.decoder)).mul_scalar(self.config.weight_decay);
        Loss { total: nll.clone().add(penalty.clone()), nll, regularizer: penalty }
    }

    fn freeze_encoder(mut self) -> Self {
        self.encoder = self.encoder.no_grad();
        self
    }
}

trainable_halves!(MultDae);

/// Mult-VAE's encoder: `items → hidden (tanh) → 2·latent`, split into `(mu, logvar)`.
#[derive(Module, Debug)]
pub struct MultVaeEncoder<B: Backend> {
    /// `items → hidden`.
    pub hidden: Linear<B>,
    /// `hidden → 2·latent`.
    pub out: Linear<B>,
}

/// Mult-VAE's decoder: `latent → hidden (tanh) → items`.
#[derive(Module, Debug)]
pub struct MultVaeDecoder<B: Backend> {
    /// `latent → hidden`.
    pub hidden: Linear<B>,
    /// `hidden → items`.
    pub out: Linear<B>,
}

/// Mult-VAE: a Gaussian encoder, a multinomial decoder and an annealed KL weight.
#[derive(Module, Debug)]
pub struct MultVae<B: Backend> {
    /// The inference network.
    pub encoder: MultVaeEncoder<B>,
    /// The generative network.
    pub decoder: MultVaeDecoder<B>,
    #[module(skip)]
    config: MultVaeConfig,
    #[module(skip)]
    n_items: usize,
}

impl<B: Backend> MultVae<B> {
    /// A freshly initialised model over `n_items` items.
    pub fn new(config: &MultVaeConfig, n_items: usize, seed: u64, device: &B::Device) -> Self {
        let mut init = Init::<B>::new(seed, device);
        let encoder = MultVaeEncoder {
            hidden: init.linear(n_items, config.hidden),
            out: init.linear(config.hidden, 2 * config.latent),
        };
        let decoder = MultVaeDecoder {
            hidden: init.linear(config.latent, config.hidden),
            out: init.linear(config.hidden, n_items),
        };
        MultVae { encoder, decoder, config: *config, n_items }
    }

    /// The posterior from the first layer's output (before its tanh).
    fn after_input(&self, first: Tensor<B, 2>) -> Posterior<B> {
        let out = self.encoder.out.forward(tanh(first));
        let l = self.config.latent;
        Posterior { mu: out.clone().narrow(1, 0, l), logvar: Some(out.narrow(1, l, l)) }
    }
}

impl<B: Backend> Backbone<B> for MultVae<B> {
    fn kind(&self) -> BackboneKind {
        BackboneKind::MultVae
    }

    fn model_config(&self) -> ModelConfig {
        ModelConfig::MultVae(self.config)
    }

    fn n_items(&self) -> usize {
        self.n_items
    }

    fn latent(&self) -> LatentShape {
        LatentShape { concepts: 1, dim: self.config.latent }
    }

    fn encode(&self, x: Tensor<B, 2>, mode: Mode<'_>) -> Posterior<B> {
        let h = mode.dropout(l2_normalize_rows(x), self.config.dropout);
        self.after_input(self.encoder.hidden.forward(h))
    }

    fn input_layer(&self) -> Option<InputLayer<'_, B>> {
        Some(InputLayer { linear: &self.encoder.hidden, dropout: self.config.dropout })
    }

    fn encode_after_input(&self, first: Tensor<B, 2>, _mode: Mode<'_>) -> Option<Posterior<B>> {
        Some(self.after_input(first))
    }

    fn decode(&self, z: Tensor<B, 2>, _mode: Mode<'_>) -> Tensor<B, 2> {
        self.decoder.out.forward(tanh(self.decoder.hidden.forward(z)))
    }

    fn loss(&self, x: Tensor<B, 2>, beta: f32, mode: Mode<'_>) -> Loss<B> {
        self.loss_with(x, beta, mode, Given::default())
    }

    fn loss_with(&self, x: Tensor<B, 2>, beta: f32, mode: Mode<'_>, given: Given<B>) -> Loss<B> {
        let posterior = self.encode_given(x.clone(), given.first_layer, mode);
        let z = self.sample(&posterior, mode);
        let nll = multinomial_nll(self.decode(z, mode), x).mean();
        let kl = match posterior.logvar {
            Some(logvar) => kl_standard_normal(posterior.mu, logvar).mean(),
            None => nll.zeros_like(),
        };
        let regularizer = kl.mul_scalar(beta);
        Loss { total: nll.clone().add(regularizer.clone()), nll, regularizer }
    }

    fn freeze_encoder(mut self) -> Self {
        self.encoder = self.encoder.no_grad();
        self
    }
}

trainable_halves!(MultVae);
