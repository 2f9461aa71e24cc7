//! The [`Backbone`] trait every VAE-family model implements, and what flows through it.
//!
//! A backbone is a burn [`Module`] with three operations the TEARS fusion model relies on:
//! [`Backbone::encode`] a batch of click rows into a posterior, [`Backbone::sample`] a latent
//! from it (its mean at evaluation) and [`Backbone::decode`] a latent into item logits; plus its
//! own training [`Backbone::loss`]. Latents are `[batch, L]` tensors; for MacridVAE `L = K · d`,
//! K unit-norm concept vectors laid end to end ([`LatentShape`]).
//!
//! The fusion model freezes the encoder and fine-tunes the decoder:
//! [`Backbone::freeze_encoder`] stops gradients to every encoder parameter, and
//! [`Trainable::encoder_grads`] / [`Trainable::decoder_grads`] split a backward pass's gradients
//! between the two halves (RecVAE's alternating updates use the same split).

use burn::module::{AutodiffModule, Module};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};

use crate::config::{BackboneKind, ModelConfig};
use crate::input::InputLayer;
use crate::noise::NoiseSource;

/// Whether a forward pass trains (with its noise source) or evaluates.
#[derive(Debug, Clone, Copy)]
pub enum Mode<'a> {
    /// Deterministic: no dropout, latents are posterior means, concept assignments are softmaxes.
    Eval,
    /// Training: reparameterised samples and Gumbel noise from `noise`.
    Train {
        /// Where random draws come from.
        noise: &'a NoiseSource,
        /// Which parameters the step updates.
        phase: Phase,
    },
}

/// Which parameters a training step updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// All of them (input dropout on).
    Joint,
    /// The encoder only (input dropout on).
    Encoder,
    /// The decoder only: no input dropout, and a loss may leave out terms that are constant in
    /// the decoder's parameters (RecVAE skips its KL term, which only the encoder can change).
    Decoder,
}

impl<'a> Mode<'a> {
    /// Training every parameter, with input dropout.
    pub fn train(noise: &'a NoiseSource) -> Self {
        Mode::Train { noise, phase: Phase::Joint }
    }

    /// The training phase (`None` at evaluation).
    pub fn phase(&self) -> Option<Phase> {
        match self {
            Mode::Eval => None,
            Mode::Train { phase, .. } => Some(*phase),
        }
    }

    /// The noise source when training.
    pub fn noise(&self) -> Option<&'a NoiseSource> {
        match self {
            Mode::Eval => None,
            Mode::Train { noise, .. } => Some(noise),
        }
    }

    /// Applies inverted dropout with probability `p` to `x` when training, except in the
    /// decoder phase.
    pub fn dropout<B: Backend>(&self, x: Tensor<B, 2>, p: f32) -> Tensor<B, 2> {
        match self {
            Mode::Train { noise, phase } if p > 0.0 && *phase != Phase::Decoder => {
                let [rows, cols] = x.dims();
                let mask = noise.dropout_mask::<B>([rows, cols], p, &x.device());
                x.mul(mask)
            }
            _ => x,
        }
    }
}

/// What a training step computed before the loss of a batch, so that the loss need not.
#[derive(Debug, Clone)]
pub struct Given<B: Backend> {
    /// [`Backbone::prior_posterior`] of these rows, computed for the whole phase.
    pub prior: Option<Posterior<B>>,
    /// The output `x̃ W + b` of [`Backbone::input_layer`] for these rows, computed from their
    /// non-zeros ([`crate::input`]).
    pub first_layer: Option<Tensor<B, 2>>,
}

impl<B: Backend> Default for Given<B> {
    fn default() -> Self {
        Given { prior: None, first_layer: None }
    }
}

/// The encoder's output for a batch: the mean and, for variational encoders, the log-variance.
#[derive(Debug, Clone)]
pub struct Posterior<B: Backend> {
    /// `[batch, L]` means (per-concept unit vectors for MacridVAE).
    pub mu: Tensor<B, 2>,
    /// `[batch, L]` log-variances; `None` for the deterministic Mult-DAE encoder.
    pub logvar: Option<Tensor<B, 2>>,
}

/// The layout of a backbone's latent vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatentShape {
    /// Number of concept blocks (1 except for MacridVAE's K).
    pub concepts: usize,
    /// Size of each block (200 for Mult-VAE and RecVAE, d for MacridVAE).
    pub dim: usize,
}

impl LatentShape {
    /// The flat latent size `concepts · dim`.
    pub fn size(&self) -> usize {
        self.concepts * self.dim
    }
}

/// A training loss and its parts, each a one-element tensor (means over the batch).
#[derive(Debug, Clone)]
pub struct Loss<B: Backend> {
    /// What is minimised.
    pub total: Tensor<B, 1>,
    /// Multinomial negative log-likelihood.
    pub nll: Tensor<B, 1>,
    /// The (weighted) regulariser: KL term, or the weight penalty for Mult-DAE.
    pub regularizer: Tensor<B, 1>,
}

/// How a backbone's parameters are updated within an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// One optimiser over every parameter, one pass per epoch.
    Joint,
    /// RecVAE: `encoder_passes` passes updating only the encoder (with input dropout), then the
    /// prior refresh, then `decoder_passes` passes updating only the decoder (without dropout),
    /// each half with its own optimiser.
    Alternating {
        /// Encoder passes per epoch.
        encoder_passes: usize,
        /// Decoder passes per epoch.
        decoder_passes: usize,
    },
}

/// A VAE-family collaborative-filtering model: binary click rows in, item logits out.
///
/// ```
/// use burn::backend::Flex;
/// use burn::tensor::Tensor;
/// use tears_vae::{Backbone, MultVae, MultVaeConfig, Mode};
///
/// let device = Default::default();
/// let model = MultVae::<Flex>::new(&MultVaeConfig { hidden: 16, latent: 4, ..Default::default() }, 10, 0, &device);
/// let x = Tensor::<Flex, 2>::zeros([3, 10], &device);
/// let posterior = model.encode(x, Mode::Eval);
/// assert_eq!(posterior.mu.dims(), [3, 4]);
/// let logits = model.decode(model.sample(&posterior, Mode::Eval), Mode::Eval);
/// assert_eq!(logits.dims(), [3, 10]);
/// ```
pub trait Backbone<B: Backend>: Module<B> + Clone + core::fmt::Debug {
    /// The backbone kind.
    fn kind(&self) -> BackboneKind;

    /// The hyper-parameters the model was built with.
    fn model_config(&self) -> ModelConfig;

    /// Number of items (input and output width).
    fn n_items(&self) -> usize;

    /// The latent layout.
    fn latent(&self) -> LatentShape;

    /// Encodes binary click rows `[batch, items]` (normalisation and input dropout happen inside).
    fn encode(&self, x: Tensor<B, 2>, mode: Mode<'_>) -> Posterior<B>;

    /// A latent from `posterior`: its mean at evaluation, `mu + sigma · eps` while training.
    fn sample(&self, posterior: &Posterior<B>, mode: Mode<'_>) -> Tensor<B, 2> {
        reparameterize(posterior, mode, 1.0)
    }

    /// Maps a latent (possibly a mixture of two latents) back onto the latent manifold the decoder
    /// expects: the identity, except MacridVAE's per-concept L2 normalisation.
    fn normalize_latent(&self, z: Tensor<B, 2>) -> Tensor<B, 2> {
        z
    }

    /// Decodes latents `[batch, L]` into item logits `[batch, items]` (MacridVAE's concept
    /// assignment is Gumbel-sampled when `mode` trains).
    fn decode(&self, z: Tensor<B, 2>, mode: Mode<'_>) -> Tensor<B, 2>;

    /// Whether [`Backbone::decode`] is one affine layer, in every mode: then
    /// `decode(a·z1 + (1 − a)·z2) = a·decode(z1) + (1 − a)·decode(z2)`, which lets the fusion
    /// model score a mixed latent from the two latents it decodes anyway (Mult-DAE and RecVAE).
    fn affine_decoder(&self) -> bool {
        false
    }

    /// The training loss on binary click rows `x` with KL weight `beta`.
    fn loss(&self, x: Tensor<B, 2>, beta: f32, mode: Mode<'_>) -> Loss<B>;

    /// The posterior of a prior network that stays fixed for a whole training phase (RecVAE's
    /// frozen encoder copy, fed the rows without dropout), detached; `None` for models without
    /// one. The trainer computes it once per phase for every training user instead of once per
    /// batch and passes each batch's rows to [`Backbone::loss_with`].
    fn prior_posterior(&self, x: Tensor<B, 2>) -> Option<Posterior<B>> {
        let _ = x;
        None
    }

    /// [`Backbone::loss`] given what the step computed beforehand ([`Given`]: the prior's
    /// posterior, the first layer's output from sparse rows). The same value as `loss` up to
    /// the rounding of the first layer's sums.
    fn loss_with(&self, x: Tensor<B, 2>, beta: f32, mode: Mode<'_>, given: Given<B>) -> Loss<B> {
        let _ = given;
        self.loss(x, beta, mode)
    }

    /// The encoder's first layer, `items → hidden`, when the rest of the encoder can start from
    /// its output ([`Backbone::encode_after_input`]); `None` (the default) otherwise. The
    /// trainers then compute that layer from the clicks' non-zeros ([`crate::input`]).
    fn input_layer(&self) -> Option<InputLayer<'_, B>> {
        None
    }

    /// The posterior given the output `x̃ W + b` of [`Backbone::input_layer`] (before its
    /// activation) for a batch; `None` for a model without an input layer.
    fn encode_after_input(&self, first: Tensor<B, 2>, mode: Mode<'_>) -> Option<Posterior<B>> {
        let _ = (first, mode);
        None
    }

    /// [`Backbone::encode_after_input`] of `first` when it is given and supported, else
    /// [`Backbone::encode`] of `x`.
    fn encode_given(&self, x: Tensor<B, 2>, first: Option<Tensor<B, 2>>, mode: Mode<'_>) -> Posterior<B> {
        match first.and_then(|h| self.encode_after_input(h, mode)) {
            Some(p) => p,
            None => self.encode(x, mode),
        }
    }

    /// Item logits for evaluation: decode the posterior mean.
    fn score(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let posterior = self.encode(x, Mode::Eval);
        self.decode(self.sample(&posterior, Mode::Eval), Mode::Eval)
    }

    /// Stops gradients to every encoder parameter (the TEARS fusion model fine-tunes the decoder
    /// only). MacridVAE's decoder gets its own trainable copy of the item embeddings.
    fn freeze_encoder(self) -> Self;

    /// How the trainer updates this backbone.
    fn schedule(&self) -> Schedule {
        Schedule::Joint
    }

    /// Called after each encoder phase of an [`Schedule::Alternating`] epoch (RecVAE refreshes
    /// the frozen encoder copy of its composite prior).
    fn refresh_prior(self) -> Self {
        self
    }
}

/// The gradient split of a backbone trained with autodiff.
pub trait Trainable<B: AutodiffBackend>: Backbone<B> + AutodiffModule<B> {
    /// The gradients of the encoder's parameters, removed from `grads`.
    fn encoder_grads(&self, grads: &mut B::Gradients) -> GradientsParams;
    /// The gradients of the decoder's parameters, removed from `grads`.
    fn decoder_grads(&self, grads: &mut B::Gradients) -> GradientsParams;

    /// Turns gradient tracking of the encoder and the decoder on or off (ids and values stay).
    /// The trainer turns off the half an alternating phase does not update, so its backward
    /// pass is skipped; the updates are the same as with full tracking.
    fn with_trainable(self, encoder: bool, decoder: bool) -> Self;
}

/// [`Trainable`] for a backbone whose `encoder` and `decoder` fields are its two halves.
macro_rules! trainable_halves {
    ($model:ident) => {
        impl<B: burn::tensor::backend::AutodiffBackend> $crate::backbone::Trainable<B> for $model<B> {
            fn encoder_grads(&self, grads: &mut B::Gradients) -> burn::optim::GradientsParams {
                burn::optim::GradientsParams::from_module(grads, &self.encoder)
            }

            fn decoder_grads(&self, grads: &mut B::Gradients) -> burn::optim::GradientsParams {
                burn::optim::GradientsParams::from_module(grads, &self.decoder)
            }

            fn with_trainable(mut self, encoder: bool, decoder: bool) -> Self {
                self.encoder = $crate::ops::with_require_grad(self.encoder, encoder);
                self.decoder = $crate::ops::with_require_grad(self.decoder, decoder);
                self
            }
        }
    };
}
pub(crate) use trainable_halves;

/// `mu + scale · exp(logvar / 2) · eps` while training, `mu` otherwise (and for deterministic
/// encoders).
pub fn reparameterize<B: Backend>(posterior: &Posterior<B>, mode: Mode<'_>, scale: f32) -> Tensor<B, 2> {
    match (mode.noise(), &posterior.logvar) {
        (Some(noise), Some(logvar)) => {
            let [rows, cols] = posterior.mu.dims();
            let eps = noise.normal::<B>([rows, cols], &posterior.mu.device());
            let std = logvar.clone().mul_scalar(0.5).exp();
            let std = if scale == 1.0 { std } else { std.mul_scalar(scale) };
            posterior.mu.clone().add(std.mul(eps))
        }
        _ => posterior.mu.clone(),
    }
}
