//! A trained TEARS or GERS network as a [`Recommender`]: fold-in rows and profiles in, item
//! scores out, at an alpha the caller sets.

use std::path::Path;
use std::sync::Arc;

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use ndarray::Array2;
use tears_core::{ModelError, ModelKind, Profile, ProfileKind, Recommender};
use tears_data::{Interactions, UserRows, Values};
use tears_vae::model::save_record;

use crate::config::BackboneChoice;
use crate::encoder::ProfileEncoder;
use crate::error::{Result, TearsError};
use crate::nets::Scrutable;

/// The weights file of a TEARS/GERS model directory.
pub const WEIGHTS_FILE: &str = "weights.mpk";

/// A scrutable recommender whose mixing weight alpha can be changed (alpha = 1: the profile
/// alone; alpha = 0: the backbone alone). What `tears evaluate` and applications hold.
///
/// It is `Send + Sync`: one trained model can answer requests from several threads at once
/// through [`ScrutableRecommender::score_at_alpha`], which takes alpha as an argument instead of
/// reading the one [`ScrutableRecommender::set_alpha`] stored.
pub trait ScrutableRecommender: Recommender + Send + Sync {
    /// The current alpha.
    fn alpha(&self) -> f32;
    /// Sets alpha (clamped to [0, 1]; a Base model ignores it and stays at 1).
    fn set_alpha(&mut self, alpha: f32);
    /// The alpha chosen on validation users after training, when recorded.
    fn alpha_star(&self) -> Option<f32>;
    /// The backbone fused with.
    fn backbone(&self) -> BackboneChoice;
    /// Item scores `[foldin.len(), items]` at `alpha` (clamped to [0, 1]; a Base model scores
    /// at 1) whatever alpha is set, with the profiles of
    /// [`Recommender::score_with_profiles`]; takes `&self`, so a shared model serves requests
    /// at different alphas concurrently.
    ///
    /// # Errors
    /// As [`Recommender::score_with_profiles`].
    fn score_at_alpha(
        &self,
        foldin: &UserRows,
        profiles: &[Option<&Profile>],
        alpha: f32,
    ) -> tears_core::Result<Array2<f32>>;
}

/// A trained network `S` on backend `B` with its profile encoder.
#[derive(Debug)]
pub struct Scorer<B: Backend, S: Scrutable<B>> {
    model: S,
    encoder: Arc<ProfileEncoder<B>>,
    device: B::Device,
    alpha: f32,
    positive_above: f32,
    kind: ModelKind,
    hyper_parameters: serde_json::Value,
    alpha_star: Option<f32>,
}

impl<B: Backend, S: Scrutable<B>> Scorer<B, S> {
    /// Wraps `model`; fold-in ratings above `positive_above` are clicks.
    pub fn new(model: S, encoder: Arc<ProfileEncoder<B>>, device: B::Device, positive_above: f32, alpha: f32) -> Self {
        let kind = match encoder.as_ref() {
            ProfileEncoder::Genres(_) => ModelKind::Gers,
            ProfileEncoder::Text(_) => ModelKind::Tears,
        };
        let mut s = Scorer {
            model,
            encoder,
            device,
            alpha: 0.5,
            positive_above,
            kind,
            hyper_parameters: serde_json::Value::Null,
            alpha_star: None,
        };
        s.set_alpha(alpha);
        s
    }

    /// Sets what [`Recommender::hyper_parameters`] returns (the model directory's record) and
    /// the recorded alpha*.
    pub fn with_record(mut self, hyper_parameters: serde_json::Value, alpha_star: Option<f32>) -> Self {
        self.hyper_parameters = hyper_parameters;
        self.alpha_star = alpha_star;
        self
    }

    /// Sets alpha (clamped to [0, 1]; a Base model ignores it and stays at 1).
    pub fn set_alpha(&mut self, alpha: f32) {
        self.alpha = if self.model.choice() == BackboneChoice::None { 1.0 } else { alpha.clamp(0.0, 1.0) };
    }

    /// The network.
    pub fn model(&self) -> &S {
        &self.model
    }

    /// The profile encoder.
    pub fn encoder(&self) -> &ProfileEncoder<B> {
        &self.encoder
    }

    /// The profile vectors `[rows, D]` of `foldin`'s users: the given profiles, or (GERS) the
    /// genre vectors of their fold-in ratings.
    ///
    /// # Errors
    /// A missing summary, a vector of the wrong width, a failed encoding.
    pub fn profile_tensor(&self, foldin: &UserRows, profiles: &[Option<&Profile>]) -> Result<Tensor<B, 2>> {
        let dim = self.model.profile_dim();
        let n = foldin.len();
        let mut flat = vec![0.0f32; n * dim];
        let mut texts: Vec<(usize, &str)> = Vec::new();
        for r in 0..n {
            let user = foldin.users[r];
            let row = &mut flat[r * dim..(r + 1) * dim];
            match (profiles.get(r).copied().flatten(), self.encoder.as_ref()) {
                (Some(Profile::Vector(v)), _) => {
                    if v.len() != dim {
                        return Err(TearsError::BadProfile {
                            user,
                            message: format!("a vector of {} values, the model reads {dim}", v.len()),
                        });
                    }
                    row.copy_from_slice(v);
                }
                (Some(Profile::Text(t)), ProfileEncoder::Text(_)) => texts.push((r, t)),
                (Some(Profile::Text(_)), ProfileEncoder::Genres(_)) => {
                    return Err(TearsError::BadProfile {
                        user,
                        message: "a summary text, but this GERS model reads genre vectors".into(),
                    });
                }
                (None, ProfileEncoder::Genres(g)) => row.copy_from_slice(&g.profile(foldin.row(r))),
                (None, ProfileEncoder::Text(_)) => {
                    return Err(TearsError::Model(ModelError::MissingProfiles {
                        what: "summary",
                        missing: 1,
                        users: n,
                        examples: user.to_string(),
                        source_name: None,
                    }));
                }
            }
        }
        if !texts.is_empty() {
            let strs: Vec<&str> = texts.iter().map(|(_, t)| *t).collect();
            let vectors = self.encoder.embed_texts(&strs, &mut |_| {})?;
            for ((r, _), v) in texts.iter().zip(vectors) {
                if v.len() != dim {
                    return Err(TearsError::BadProfile {
                        user: foldin.users[*r],
                        message: format!("the encoder gave {} values, the model reads {dim}", v.len()),
                    });
                }
                flat[r * dim..(r + 1) * dim].copy_from_slice(&v);
            }
        }
        Ok(Tensor::from_data(TensorData::new(flat, [n, dim]), &self.device))
    }

    /// Item scores `[foldin.len(), items]` at the current alpha, in standard (row-major,
    /// contiguous) layout as [`Recommender::score`] promises.
    ///
    /// # Errors
    /// As [`Scorer::profile_tensor`]; an item out of range.
    pub fn scores(&self, foldin: &UserRows, profiles: &[Option<&Profile>]) -> Result<Array2<f32>> {
        self.scores_at(foldin, profiles, self.alpha)
    }

    /// [`Scorer::scores`] at `alpha` instead of the alpha set (clamped to [0, 1]; a Base model
    /// scores at 1).
    ///
    /// # Errors
    /// As [`Scorer::scores`].
    pub fn scores_at(&self, foldin: &UserRows, profiles: &[Option<&Profile>], alpha: f32) -> Result<Array2<f32>> {
        let n_items = self.model.n_items();
        if foldin.is_empty() {
            return Ok(Array2::zeros((0, n_items)));
        }
        let base = self.model.choice() == BackboneChoice::None;
        let alpha = if base { 1.0 } else { alpha.clamp(0.0, 1.0) };
        let x = if !base && alpha < 1.0 {
            let n = self.model.n_items();
            let x = Interactions::from_rows(foldin, n, Values::Binary { positive_above: self.positive_above })?;
            let all: Vec<usize> = (0..x.n_rows()).collect();
            Some(x.to_tensor::<B>(&all, &self.device))
        } else {
            None
        };
        let e = if base || alpha > 0.0 { Some(self.profile_tensor(foldin, profiles)?) } else { None };
        let scores = self.model.scores(x, e, alpha)?;
        let flat = scores.into_data().to_vec::<f32>().map_err(|e| {
            TearsError::Model(ModelError::Numerical(format!("reading scores back from the device: {e:?}")))
        })?;
        Ok(tears_core::scores_from_vec(flat, foldin.len(), n_items)?)
    }
}

impl<B: Backend, S: Scrutable<B>> Recommender for Scorer<B, S> {
    fn kind(&self) -> &str {
        self.kind.name()
    }

    fn n_items(&self) -> usize {
        self.model.n_items()
    }

    fn hyper_parameters(&self) -> serde_json::Value {
        self.hyper_parameters.clone()
    }

    fn profile_kind(&self) -> ProfileKind {
        match self.kind {
            ModelKind::Gers => ProfileKind::Genres,
            _ if self.alpha <= 0.0 && self.model.choice() != BackboneChoice::None => ProfileKind::None,
            _ => ProfileKind::Text,
        }
    }

    fn score(&self, foldin: &UserRows) -> tears_core::Result<Array2<f32>> {
        let none = vec![None; foldin.len()];
        Ok(self.scores(foldin, &none)?)
    }

    fn score_with_profiles(&self, foldin: &UserRows, profiles: &[Option<&Profile>]) -> tears_core::Result<Array2<f32>> {
        tears_core::recommender::check_profiles(foldin, profiles)?;
        Ok(self.scores(foldin, profiles)?)
    }

    fn save_weights(&self, dir: &Path) -> tears_core::Result<()> {
        save_record::<B, S>(&self.model, &dir.join(WEIGHTS_FILE)).map_err(TearsError::from)?;
        if let (ProfileEncoder::Text(t), Some(e)) = (self.encoder.as_ref(), self.encoder.sentence_encoder())
            && let Some(tuned) = &t.tuned
        {
            save_record::<B, _>(&e.model, &dir.join(&tuned.file)).map_err(TearsError::from)?;
        }
        Ok(())
    }
}

impl<B: Backend, S: Scrutable<B> + Sync> ScrutableRecommender for Scorer<B, S> {
    fn alpha(&self) -> f32 {
        self.alpha
    }

    fn set_alpha(&mut self, alpha: f32) {
        Scorer::set_alpha(self, alpha);
    }

    fn alpha_star(&self) -> Option<f32> {
        self.alpha_star
    }

    fn backbone(&self) -> BackboneChoice {
        self.model.choice()
    }

    fn score_at_alpha(
        &self,
        foldin: &UserRows,
        profiles: &[Option<&Profile>],
        alpha: f32,
    ) -> tears_core::Result<Array2<f32>> {
        tears_core::recommender::check_profiles(foldin, profiles)?;
        Ok(self.scores_at(foldin, profiles, alpha)?)
    }
}
