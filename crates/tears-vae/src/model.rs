//! Trained backbones as [`Recommender`]s, and their weight files.
//!
//! A model directory written by [`crate::fit`] (or `tears train <backbone>`) holds
//! `manifest.json` (kind `multdae` / `multvae` / `recvae` / `macridvae`, hyper-parameters with the
//! [`ModelConfig`], the [`TrainConfig`] and the training summary, the item-vocabulary hash) and
//! `weights.mpk`, the best epoch's burn record. [`load`] checks the vocabulary and rebuilds the
//! model on any backend.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::tensor::backend::Backend;
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use tears_core::{Manifest, ModelError, Recommender};
use tears_data::{Interactions, Split, UserRows, Values};

use crate::backbone::Backbone;
use crate::config::{BackboneKind, ModelConfig, TrainConfig};
use crate::error::{Result, VaeError};
use crate::macrid::MacridVae;
use crate::mult::{MultDae, MultVae};
use crate::recvae::RecVae;

/// The weights file of a model directory.
pub const WEIGHTS_FILE: &str = "weights.mpk";

type Rec = NamedMpkBytesRecorder<FullPrecisionSettings>;

/// Serialises `module`'s parameters (burn's named MessagePack record, full precision) and
/// writes them to `path` atomically.
///
/// # Errors
/// [`VaeError::Record`] or an I/O error naming the file.
pub fn save_record<B: Backend, M: Module<B>>(module: &M, path: &Path) -> Result<()> {
    let bytes = Recorder::<B>::record(&Rec::default(), module.clone().into_record(), ())
        .map_err(|e| VaeError::Record { path: path.to_path_buf(), message: e.to_string() })?;
    tears_data::io::write_atomic(path, |w| w.write_all(&bytes))?;
    Ok(())
}

/// Loads the parameters saved with [`save_record`] from `path` into `module` (which has the
/// right shapes).
///
/// # Errors
/// [`VaeError::Record`] naming the file when it is missing or does not decode.
pub fn load_record<B: Backend, M: Module<B>>(module: M, path: &Path, device: &B::Device) -> Result<M> {
    let bytes = std::fs::read(path)
        .map_err(|e| VaeError::Record { path: path.to_path_buf(), message: format!("cannot read the weights: {e}") })?;
    let record = Recorder::<B>::load(&Rec::default(), bytes, device)
        .map_err(|e| VaeError::Record { path: path.to_path_buf(), message: format!("not a weights record: {e}") })?;
    Ok(module.load_record(record))
}

/// What training recorded about the selected epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSummary {
    /// Epochs run (including resumed ones).
    pub epochs_run: usize,
    /// The 1-based epoch whose weights were kept.
    pub best_epoch: usize,
    /// Its validation NDCG@`select_k` (`None` without validation users).
    pub best_validation_ndcg: Option<f64>,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
}

/// A trained backbone on backend `B`, usable wherever a [`Recommender`] is.
///
/// Scores are the decoder's logits for the posterior mean of the user's binarised fold-in
/// ratings.
#[derive(Debug, Clone)]
pub struct Trained<B: Backend, M: Backbone<B>> {
    model: M,
    device: B::Device,
    positive_above: f32,
    train: TrainConfig,
    summary: Option<TrainSummary>,
}

impl<B: Backend, M: Backbone<B>> Trained<B, M> {
    /// Wraps `model`, which binarises fold-in ratings above `positive_above`.
    pub fn new(
        model: M,
        device: B::Device,
        positive_above: f32,
        train: TrainConfig,
        summary: Option<TrainSummary>,
    ) -> Self {
        Trained { model, device, positive_above, train, summary }
    }

    /// The backbone.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The backbone, unwrapped.
    pub fn into_model(self) -> M {
        self.model
    }

    /// The training summary, when known.
    pub fn summary(&self) -> Option<&TrainSummary> {
        self.summary.as_ref()
    }

    /// The binary click rows of `rows` as a tensor on the model's device.
    ///
    /// # Errors
    /// An item index out of range.
    pub fn input(&self, rows: &UserRows) -> Result<burn::tensor::Tensor<B, 2>> {
        let n = self.model.n_items();
        let x = Interactions::from_rows(rows, n, Values::Binary { positive_above: self.positive_above })?;
        let all: Vec<usize> = (0..x.n_rows()).collect();
        Ok(x.to_tensor::<B>(&all, &self.device))
    }
}

impl<B: Backend, M: Backbone<B>> Recommender for Trained<B, M> {
    fn kind(&self) -> &str {
        self.model.kind().name()
    }

    fn n_items(&self) -> usize {
        self.model.n_items()
    }

    fn hyper_parameters(&self) -> serde_json::Value {
        serde_json::json!({
            "model": self.model.model_config(),
            "train": self.train,
            "summary": self.summary,
            "positive_above": self.positive_above,
            "weights_file": WEIGHTS_FILE,
        })
    }

    fn score(&self, foldin: &UserRows) -> tears_core::Result<Array2<f32>> {
        let n = self.model.n_items();
        if foldin.is_empty() {
            return Ok(Array2::zeros((0, n)));
        }
        let x = self.input(foldin)?;
        let flat = self
            .model
            .score(x)
            .into_data()
            .to_vec::<f32>()
            .map_err(|e| ModelError::Numerical(format!("reading scores back from the device: {e:?}")))?;
        tears_core::scores_from_vec(flat, foldin.len(), n)
    }

    fn save_weights(&self, dir: &Path) -> tears_core::Result<()> {
        save_record::<B, M>(&self.model, &dir.join(WEIGHTS_FILE))?;
        Ok(())
    }
}

/// A freshly initialised backbone of `config`'s kind over `n_items` items, seeded.
pub fn init_any<B: Backend>(config: &ModelConfig, n_items: usize, seed: u64, device: &B::Device) -> AnyBackbone<B> {
    match config {
        ModelConfig::MultDae(c) => AnyBackbone::MultDae(MultDae::new(c, n_items, seed, device)),
        ModelConfig::MultVae(c) => AnyBackbone::MultVae(MultVae::new(c, n_items, seed, device)),
        ModelConfig::RecVae(c) => AnyBackbone::RecVae(RecVae::new(c, n_items, seed, device)),
        ModelConfig::MacridVae(c) => AnyBackbone::MacridVae(MacridVae::new(c, n_items, seed, device)),
    }
}

/// One backbone of any kind (what [`load_backbone`] returns when the kind is only known at run time).
// Built once per load and unwrapped at once: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum AnyBackbone<B: Backend> {
    /// Mult-DAE.
    MultDae(MultDae<B>),
    /// Mult-VAE.
    MultVae(MultVae<B>),
    /// RecVAE.
    RecVae(RecVae<B>),
    /// MacridVAE.
    MacridVae(MacridVae<B>),
}

/// The parts of a model directory's manifest that describe a backbone.
#[derive(Debug, Clone)]
pub struct SavedBackbone {
    /// The manifest.
    pub manifest: Manifest,
    /// The model hyper-parameters.
    pub model: ModelConfig,
    /// The training schedule.
    pub train: TrainConfig,
    /// The training summary.
    pub summary: Option<TrainSummary>,
    /// The positivity threshold used to binarise inputs.
    pub positive_above: f32,
}

impl SavedBackbone {
    /// Reads `dir/manifest.json` and checks that it describes a backbone trained on `split`.
    ///
    /// # Errors
    /// A missing or malformed manifest, another model kind, another item vocabulary.
    pub fn read(dir: &Path, split: &Split) -> Result<Self> {
        let manifest = Manifest::read(dir)?;
        let path = Manifest::path(dir);
        let kind: BackboneKind = manifest.kind.parse().map_err(|_| ModelError::UnknownKind {
            path: path.clone(),
            kind: manifest.kind.clone(),
            known: BackboneKind::ALL.map(BackboneKind::name).join(", "),
        })?;
        manifest.check_split(dir, split)?;
        let field = |name: &str| -> Result<serde_json::Value> {
            manifest.hyper_parameters.get(name).cloned().ok_or_else(|| VaeError::Record {
                path: path.clone(),
                message: format!("hyper_parameters.{name} is missing"),
            })
        };
        let malformed = |what: &str, e: serde_json::Error| VaeError::Record {
            path: path.clone(),
            message: format!("hyper_parameters.{what}: {e}"),
        };
        let model: ModelConfig = serde_json::from_value(field("model")?).map_err(|e| malformed("model", e))?;
        if model.kind() != kind {
            return Err(VaeError::Record {
                path,
                message: format!("kind {kind} but hyper-parameters of {}", model.kind()),
            });
        }
        model.validate()?;
        let train: TrainConfig = serde_json::from_value(field("train")?).map_err(|e| malformed("train", e))?;
        let summary = match manifest.hyper_parameters.get("summary") {
            Some(v) if !v.is_null() => Some(serde_json::from_value(v.clone()).map_err(|e| malformed("summary", e))?),
            _ => None,
        };
        let positive_above = manifest.positive_above;
        Ok(SavedBackbone { manifest, model, train, summary, positive_above })
    }

    /// The weights file of `dir`.
    pub fn weights(dir: &Path) -> PathBuf {
        dir.join(WEIGHTS_FILE)
    }
}

/// Loads a backbone saved in `dir` (checked against `split`'s vocabulary) onto `device` of
/// backend `B`, as a boxed [`Recommender`].
///
/// # Errors
/// As [`SavedBackbone::read`]; a missing or undecodable weights file.
pub fn load<B: Backend>(dir: &Path, split: &Split, device: &B::Device) -> Result<Box<dyn Recommender>>
where
    B::Device: 'static,
{
    Ok(match load_backbone::<B>(dir, split, device)? {
        (AnyBackbone::MultDae(m), s) => Box::new(wrap(m, device, s)),
        (AnyBackbone::MultVae(m), s) => Box::new(wrap(m, device, s)),
        (AnyBackbone::RecVae(m), s) => Box::new(wrap(m, device, s)),
        (AnyBackbone::MacridVae(m), s) => Box::new(wrap(m, device, s)),
    })
}

fn wrap<B: Backend, M: Backbone<B>>(model: M, device: &B::Device, saved: SavedBackbone) -> Trained<B, M> {
    Trained::new(model, device.clone(), saved.positive_above, saved.train, saved.summary)
}

/// Loads the backbone saved in `dir` as its concrete type (for the fusion model, which needs the
/// encoder and decoder, not just scores).
///
/// # Errors
/// As [`load`].
pub fn load_backbone<B: Backend>(
    dir: &Path,
    split: &Split,
    device: &B::Device,
) -> Result<(AnyBackbone<B>, SavedBackbone)> {
    let saved = SavedBackbone::read(dir, split)?;
    let path = SavedBackbone::weights(dir);
    let n = saved.manifest.n_items;
    let model = match init_any::<B>(&saved.model, n, 0, device) {
        AnyBackbone::MultDae(m) => AnyBackbone::MultDae(load_record(m, &path, device)?),
        AnyBackbone::MultVae(m) => AnyBackbone::MultVae(load_record(m, &path, device)?),
        AnyBackbone::RecVae(m) => AnyBackbone::RecVae(load_record(m, &path, device)?),
        AnyBackbone::MacridVae(m) => AnyBackbone::MacridVae(load_record(m, &path, device)?),
    };
    Ok((model, saved))
}
