//! The networks: TEARS Base ([`Base`]) and a profile branch fused with a backbone ([`Fused`]),
//! both behind [`Scrutable`], the interface the trainer and the scorer use.
//!
//! A *profile* is a vector per user: a text embedding (TEARS) or a genre vector (GERS).

use burn::module::{Module, ModuleDisplay, Param};
use burn::nn::Linear;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use tears_ot::{Epsilon, SinkhornConfig, gaussian_w2_squared, sinkhorn_divergence};
use tears_vae::backbone::reparameterize;
use tears_vae::ops::{Init, kl_standard_normal, l2_normalize_rows, mixed_multinomial_nll, multinomial_nll, tanh};
use tears_vae::{Backbone, BackboneKind, InputLayer, LatentShape, Mode, Posterior};

use crate::config::{Alignment, BackboneChoice, Head, TearsConfig};
use crate::error::{Result, TearsError};

/// The weights of the objective at one update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    /// The alignment term and its weight λ1.
    pub alignment: Alignment,
    /// λ1.
    pub lambda_ot: f32,
    /// λ2 at this update.
    pub lambda_kl: f32,
}

impl Weights {
    /// The weights of `config` after `updates` updates.
    pub fn at(config: &TearsConfig, updates: u64) -> Self {
        Weights { alignment: config.alignment, lambda_ot: config.lambda_ot, lambda_kl: config.kl_weight(updates) }
    }
}

/// The loss of a batch and its parts, each a one-element tensor (means over the batch). Only
/// `total` is sure to carry a gradient: the parts are for reporting (the NLLs of a backbone with an
/// affine decoder come detached, [`tears_vae::ops::mixed_multinomial_nll`]).
#[derive(Debug, Clone)]
pub struct TearsLoss<B: Backend> {
    /// What is minimised: the mean of the NLLs + λ1 · alignment + λ2 · KL.
    pub total: Tensor<B, 1>,
    /// NLL of the fused latent (the profile latent's for a Base model).
    pub nll_fused: Tensor<B, 1>,
    /// NLL of the profile latent alone.
    pub nll_profile: Tensor<B, 1>,
    /// NLL of the backbone latent alone (zero for a Base model).
    pub nll_backbone: Tensor<B, 1>,
    /// The alignment distance (unweighted).
    pub alignment: Tensor<B, 1>,
    /// KL(q_s || N(0, I)) (unweighted).
    pub kl: Tensor<B, 1>,
}

/// The three latents of a batch at evaluation (means), for inspection and tests.
#[derive(Debug, Clone)]
pub struct Latents<B: Backend> {
    /// The profile posterior.
    pub profile: Posterior<B>,
    /// The backbone posterior (`None` for a Base model).
    pub backbone: Option<Posterior<B>>,
    /// The fused latent at the alpha asked for.
    pub fused: Tensor<B, 2>,
}

/// What the trainer and the scorer need from a TEARS/GERS network.
pub trait Scrutable<B: Backend>: Module<B> + Clone + core::fmt::Debug {
    /// The backbone it is fused with.
    fn choice(&self) -> BackboneChoice;
    /// Items scored.
    fn n_items(&self) -> usize;
    /// Width of the profile vector.
    fn profile_dim(&self) -> usize;
    /// Item logits at evaluation for binary click rows `x` and profiles `profile`, mixed with
    /// `alpha` (1 = profile only: `x` is not read and may be `None`; 0 = backbone only:
    /// `profile` is not read).
    ///
    /// # Errors
    /// An input needed at this alpha is missing.
    fn scores(&self, x: Option<Tensor<B, 2>>, profile: Option<Tensor<B, 2>>, alpha: f32) -> Result<Tensor<B, 2>>;
    /// The training loss. `first_layer`, when given, is the output of
    /// [`Scrutable::backbone_input_layer`] for these rows under `mode` (computed from their
    /// non-zeros, [`tears_vae::input`]); the frozen backbone encoder then starts from it
    /// instead of `x`.
    ///
    /// # Errors
    /// A failed alignment solve.
    fn loss(
        &self,
        x: Tensor<B, 2>,
        profile: Tensor<B, 2>,
        alpha: f32,
        weights: &Weights,
        mode: Mode<'_>,
        first_layer: Option<Tensor<B, 2>>,
    ) -> Result<TearsLoss<B>>;
    /// The frozen backbone encoder's first layer (`None` without a backbone, or when the
    /// backbone has none, as MacridVAE).
    fn backbone_input_layer(&self) -> Option<InputLayer<'_, B>> {
        None
    }
    /// The latents at evaluation.
    fn latents(&self, x: Option<Tensor<B, 2>>, profile: Tensor<B, 2>, alpha: f32) -> Latents<B>;
}

/// `KL(q_s || N(0, I))` averaged over the batch; zero (shaped like `like`) for a point latent.
fn profile_kl<B: Backend>(post: &Posterior<B>, like: &Tensor<B, 1>) -> Tensor<B, 1> {
    match &post.logvar {
        Some(lv) => kl_standard_normal(post.mu.clone(), lv.clone()).mean(),
        None => like.zeros_like(),
    }
}

/// Bound of the profile branch's log-variance.
pub const LOGVAR_BOUND: f32 = 10.0;

fn missing(what: &str) -> TearsError {
    TearsError::Model(tears_core::ModelError::Config(format!("scoring at this alpha needs {what}")))
}

/// The profile branch's head: `Linear(D → out)` without bias, or an MLP.
#[derive(Module, Debug)]
pub struct ProfileHead<B: Backend> {
    /// The MLP's hidden layer (`None` for the linear head).
    pub hidden: Option<Linear<B>>,
    /// The output layer (bias-free for the linear head).
    pub out: Linear<B>,
}

impl<B: Backend> ProfileHead<B> {
    /// A seeded head `dim → out` of shape `head`.
    pub fn new(head: Head, dim: usize, out: usize, init: &mut Init<'_, B>) -> Self {
        match head {
            Head::Linear => ProfileHead {
                hidden: None,
                out: Linear { weight: Param::from_tensor(init.glorot(dim, out)), bias: None },
            },
            Head::Mlp { hidden } => {
                ProfileHead { hidden: Some(init.linear(dim, hidden)), out: init.linear(hidden, out) }
            }
        }
    }

    /// `[batch, dim] → [batch, out]`.
    pub fn forward(&self, e: Tensor<B, 2>) -> Tensor<B, 2> {
        match &self.hidden {
            Some(h) => self.out.forward(tanh(h.forward(e))),
            None => self.out.forward(e),
        }
    }
}

/// The shape of a [`Base`] model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BaseShape {
    /// Profile width D.
    pub dim: usize,
    /// Latent size L'.
    pub latent: usize,
    /// Dropout on the normalised profile.
    pub dropout: f32,
    /// Items.
    pub n_items: usize,
}

/// TEARS Base / GERS Base: profile → L2-normalise → dropout → Linear(D → 800) → tanh →
/// Linear(800 → 2L') → (mu, logvar); z → Linear(L' → I). Needs no interaction history.
#[derive(Module, Debug)]
pub struct Base<B: Backend> {
    /// `D → hidden`.
    pub hidden: Linear<B>,
    /// `hidden → 2L'`.
    pub out: Linear<B>,
    /// `L' → items`.
    pub decoder: Linear<B>,
    #[module(skip)]
    shape: BaseShape,
}

impl<B: Backend> Base<B> {
    /// A seeded Base model for profiles of width `dim` over `n_items` items.
    pub fn new(config: &TearsConfig, dim: usize, n_items: usize, seed: u64, device: &B::Device) -> Self {
        let mut init = Init::<B>::new(seed ^ 0xBA5E, device);
        Base {
            hidden: init.linear(dim, config.base_hidden),
            out: init.linear(config.base_hidden, 2 * config.base_latent),
            decoder: init.linear(config.base_latent, n_items),
            shape: BaseShape { dim, latent: config.base_latent, dropout: config.base_dropout, n_items },
        }
    }

    fn posterior(&self, e: Tensor<B, 2>, mode: Mode<'_>) -> Posterior<B> {
        let h = mode.dropout(l2_normalize_rows(e), self.shape.dropout);
        let out = self.out.forward(tanh(self.hidden.forward(h)));
        let l = self.shape.latent;
        Posterior { mu: out.clone().narrow(1, 0, l), logvar: Some(out.narrow(1, l, l)) }
    }
}

impl<B: Backend> Scrutable<B> for Base<B> {
    fn choice(&self) -> BackboneChoice {
        BackboneChoice::None
    }

    fn n_items(&self) -> usize {
        self.shape.n_items
    }

    fn profile_dim(&self) -> usize {
        self.shape.dim
    }

    fn scores(&self, _x: Option<Tensor<B, 2>>, profile: Option<Tensor<B, 2>>, _alpha: f32) -> Result<Tensor<B, 2>> {
        let e = profile.ok_or_else(|| missing("profiles (a Base model reads nothing else)"))?;
        Ok(self.decoder.forward(self.posterior(e, Mode::Eval).mu))
    }

    fn loss(
        &self,
        x: Tensor<B, 2>,
        profile: Tensor<B, 2>,
        _alpha: f32,
        weights: &Weights,
        mode: Mode<'_>,
        _first_layer: Option<Tensor<B, 2>>,
    ) -> Result<TearsLoss<B>> {
        let post = self.posterior(profile, mode);
        let z = reparameterize(&post, mode, 1.0);
        let nll = multinomial_nll(self.decoder.forward(z), x).mean();
        let kl = profile_kl(&post, &nll);
        let total = nll.clone().add(kl.clone().mul_scalar(weights.lambda_kl));
        Ok(TearsLoss {
            total,
            nll_fused: nll.clone(),
            nll_profile: nll.clone(),
            nll_backbone: nll.zeros_like(),
            alignment: nll.zeros_like(),
            kl,
        })
    }

    fn latents(&self, _x: Option<Tensor<B, 2>>, profile: Tensor<B, 2>, _alpha: f32) -> Latents<B> {
        let post = self.posterior(profile, Mode::Eval);
        Latents { fused: post.mu.clone(), profile: post, backbone: None }
    }
}

/// A profile branch fused with a trained backbone whose encoder is frozen and whose decoder is
/// fine-tuned: `z_c = alpha · z_s + (1 − alpha) · z_r`, decoded by the backbone's decoder, as are
/// `z_s` and `z_r`. For MacridVAE the profile latent is normalised per concept, and so is the mix.
#[derive(Module, Debug)]
pub struct Fused<B: Backend, M: Module<B>> {
    /// The backbone (its encoder frozen by [`Backbone::freeze_encoder`]).
    pub backbone: M,
    /// The profile head, `D → 2L` (`D → L` for Mult-DAE, whose encoder has no variance).
    pub head: ProfileHead<B>,
    #[module(skip)]
    dim: usize,
}

impl<B: Backend, M: Backbone<B> + ModuleDisplay> Fused<B, M> {
    /// Fuses `backbone` (its encoder is frozen here) with a seeded head for profiles of width
    /// `dim`.
    pub fn new(backbone: M, config: &TearsConfig, dim: usize, seed: u64, device: &B::Device) -> Self {
        let backbone = backbone.freeze_encoder();
        let l = backbone.latent().size();
        let out = if Self::variational(&backbone) { 2 * l } else { l };
        let mut init = Init::<B>::new(seed ^ 0xF05E, device);
        Fused { head: ProfileHead::new(config.head, dim, out, &mut init), backbone, dim }
    }

    fn variational(backbone: &M) -> bool {
        backbone.kind() != BackboneKind::MultDae
    }

    /// The latent layout of the backbone.
    pub fn latent(&self) -> LatentShape {
        self.backbone.latent()
    }

    fn profile_posterior(&self, e: Tensor<B, 2>) -> Posterior<B> {
        let out = self.head.forward(e);
        if !Self::variational(&self.backbone) {
            return Posterior { mu: out, logvar: None };
        }
        let l = self.backbone.latent().size();
        let mu = self.normalize(out.clone().narrow(1, 0, l));
        // A bounded log-variance keeps exp(logvar / 2) finite while λ2 is still annealing.
        let logvar = out.narrow(1, l, l).clamp(-LOGVAR_BOUND, LOGVAR_BOUND);
        Posterior { mu, logvar: Some(logvar) }
    }

    /// The backbone's latent normalisation (per concept for MacridVAE, else the identity), with
    /// the epsilon inside the square root so that its gradient stays finite at zero.
    fn normalize(&self, z: Tensor<B, 2>) -> Tensor<B, 2> {
        let shape = self.backbone.latent();
        if shape.concepts <= 1 {
            return z;
        }
        let [b, l] = z.dims();
        let blocks = z.reshape([b * shape.concepts, shape.dim]);
        let norm = blocks.clone().powi_scalar(2).sum_dim(1).add_scalar(1e-12).sqrt();
        blocks.div(norm).reshape([b, l])
    }

    fn mix(&self, z_s: Tensor<B, 2>, z_r: Tensor<B, 2>, alpha: f32) -> Tensor<B, 2> {
        self.normalize(z_s.mul_scalar(alpha).add(z_r.mul_scalar(1.0 - alpha)))
    }
}

impl<B: Backend, M: Backbone<B> + ModuleDisplay> Scrutable<B> for Fused<B, M> {
    fn choice(&self) -> BackboneChoice {
        BackboneChoice::of(self.backbone.kind())
    }

    fn n_items(&self) -> usize {
        self.backbone.n_items()
    }

    fn profile_dim(&self) -> usize {
        self.dim
    }

    fn scores(&self, x: Option<Tensor<B, 2>>, profile: Option<Tensor<B, 2>>, alpha: f32) -> Result<Tensor<B, 2>> {
        let z = if alpha >= 1.0 {
            let e = profile.ok_or_else(|| missing("profiles"))?;
            self.profile_posterior(e).mu
        } else if alpha <= 0.0 {
            let x = x.ok_or_else(|| missing("fold-in rows"))?;
            self.normalize(self.backbone.encode(x, Mode::Eval).mu)
        } else {
            let e = profile.ok_or_else(|| missing("profiles"))?;
            let x = x.ok_or_else(|| missing("fold-in rows"))?;
            let z_r = self.normalize(self.backbone.encode(x, Mode::Eval).mu);
            self.mix(self.profile_posterior(e).mu, z_r, alpha)
        };
        Ok(self.backbone.decode(z, Mode::Eval))
    }

    fn loss(
        &self,
        x: Tensor<B, 2>,
        profile: Tensor<B, 2>,
        alpha: f32,
        weights: &Weights,
        mode: Mode<'_>,
        first_layer: Option<Tensor<B, 2>>,
    ) -> Result<TearsLoss<B>> {
        let bb = &self.backbone;
        let post_s = self.profile_posterior(profile);
        let post_r = bb.encode_given(x.clone(), first_layer, mode);
        let z_s = self.normalize(bb.sample(&post_s, mode));
        let z_r = self.normalize(bb.sample(&post_r, mode));
        let (nll_sum, nll_fused, nll_profile, nll_backbone) = if bb.affine_decoder() && self.latent().concepts <= 1 {
            // The mix is not renormalised and the decoder is affine, so the mixed latent's
            // logits are the mix of the other two: one product less forward, and the mix's
            // gradient folded into the other two (its parts are reported detached).
            let nll = mixed_multinomial_nll(bb.decode(z_s, mode), bb.decode(z_r, mode), alpha, x);
            (nll.sum.mean(), nll.mixed.mean(), nll.first.mean(), nll.second.mean())
        } else {
            let c = bb.decode(self.mix(z_s.clone(), z_r.clone(), alpha), mode);
            let nll_fused = multinomial_nll(c, x.clone()).mean();
            let nll_profile = multinomial_nll(bb.decode(z_s, mode), x.clone()).mean();
            let nll_backbone = multinomial_nll(bb.decode(z_r, mode), x).mean();
            let sum = nll_fused.clone().add(nll_profile.clone()).add(nll_backbone.clone());
            (sum, nll_fused, nll_profile, nll_backbone)
        };
        let alignment = alignment_distance(&post_s, &post_r, weights.alignment)?;
        let kl = profile_kl(&post_s, &nll_fused);
        let total = nll_sum
            .div_scalar(3.0)
            .add(alignment.clone().mul_scalar(weights.lambda_ot))
            .add(kl.clone().mul_scalar(weights.lambda_kl));
        Ok(TearsLoss { total, nll_fused, nll_profile, nll_backbone, alignment, kl })
    }

    fn backbone_input_layer(&self) -> Option<InputLayer<'_, B>> {
        self.backbone.input_layer()
    }

    fn latents(&self, x: Option<Tensor<B, 2>>, profile: Tensor<B, 2>, alpha: f32) -> Latents<B> {
        let post_s = self.profile_posterior(profile);
        let post_r = x.map(|x| {
            let p = self.backbone.encode(x, Mode::Eval);
            Posterior { mu: self.normalize(p.mu), logvar: p.logvar }
        });
        let fused = match &post_r {
            Some(r) => self.mix(post_s.mu.clone(), r.mu.clone(), alpha),
            None => post_s.mu.clone(),
        };
        Latents { profile: post_s, backbone: post_r, fused }
    }
}

/// The alignment distance between the profile and backbone posteriors of a batch (mean over the
/// batch for `gaussian-w2`; one divergence between the two clouds for `sinkhorn`).
///
/// # Errors
/// A failed Sinkhorn solve (non-finite latents).
pub fn alignment_distance<B: Backend>(
    profile: &Posterior<B>,
    backbone: &Posterior<B>,
    alignment: Alignment,
) -> Result<Tensor<B, 1>> {
    let (mu_s, mu_r) = (profile.mu.clone(), backbone.mu.clone());
    Ok(match alignment {
        Alignment::None => Tensor::zeros([1], &mu_s.device()),
        Alignment::GaussianW2 => match (&profile.logvar, &backbone.logvar) {
            (Some(lv_s), Some(lv_r)) => gaussian_w2_squared(mu_s, lv_s.clone(), mu_r, lv_r.clone())?.mean(),
            // Point latents (Mult-DAE): W2 between Dirac masses is the squared distance.
            _ => mu_s.sub(mu_r).powi_scalar(2).sum_dim(1).mean(),
        },
        Alignment::Sinkhorn { eps_rel } => {
            let config = SinkhornConfig::default()
                .with_eps(Epsilon::RelativeToMedian(eps_rel))
                .with_tol(1e-4)
                .with_max_iter(500);
            sinkhorn_divergence(mu_s.unsqueeze::<3>(), mu_r.unsqueeze::<3>(), None, None, &config)?.divergence.mean()
        }
    })
}
