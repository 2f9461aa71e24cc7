//! Training a TEARS or GERS network in the shared loop of `tears-vae` ([`tears_vae::run_epochs`]):
//! AdamW over the heads and the backbone's decoder (the backbone encoder is frozen), seeded
//! batches and noise, validation NDCG@50 at alpha = 0.5, per-epoch checkpoints that resume.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor, TensorData};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tears_core::evaluate::select_rows;
use tears_core::{EvalOptions, MissingProfile, Profile, ProfileKind, Profiles, evaluate_with_profiles};
use tears_data::{Interactions, Split, Values};
use tears_vae::checkpoint::{Counters, Fingerprint, load_optimizer, save_optimizer};
use tears_vae::model::{load_record, save_record};
use tears_vae::{
    EpochLoss, EpochTask, GradientSync, HostWeight, Mode, NoiseSource, SparseRows, VaeError, WorkerShare, Workers,
};

use crate::config::{Alignment, CheckedConfig, TearsTrainConfig, TrainAlpha};
use crate::encoder::ProfileEncoder;
use crate::error::{Result, TearsError};
use crate::nets::{Scrutable, Weights};
use crate::scorer::Scorer;
use crate::tuning::{EncoderTuner, beside};

/// A trained state of a run: the network and, when the text encoder trains, its weights.
#[derive(Debug, Clone)]
pub struct Snapshot<B: burn::tensor::backend::Backend, M> {
    /// The network.
    pub net: M,
    /// The fine-tuned text encoder (`None` when it is frozen).
    pub encoder: Option<tears_text::BertModel<B>>,
}

/// The training users of a split with their profile vectors.
#[derive(Debug, Clone)]
pub struct TrainingData {
    /// Binary positives of the users kept (targets, and the backbone's input).
    pub x: Interactions,
    /// Their profile vectors `[users, D]` (text embeddings or genre vectors).
    pub profiles: Array2<f32>,
    /// Their ids.
    pub users: Vec<u64>,
    /// Training users left out for lack of a summary ([`MissingProfile::Skip`]).
    pub skipped: usize,
}

impl TrainingData {
    /// The training users of `split` with their profiles: summaries from `profiles` through
    /// `encoder` (users without one handled by `missing`), or genre vectors of all their ratings.
    /// `progress` counts encoded summaries.
    ///
    /// # Errors
    /// Missing summaries under [`MissingProfile::Error`]; a failed encoding.
    pub fn build<B: burn::tensor::backend::Backend>(
        split: &Split,
        encoder: &ProfileEncoder<B>,
        profiles: Option<&Profiles>,
        missing: MissingProfile,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Self> {
        let users = &split.train.users;
        let kind = if encoder.genres().is_some() { ProfileKind::Genres } else { ProfileKind::Text };
        let picked = tears_core::profile::resolve(profiles, users, kind, missing)?;
        let rows = select_rows(&split.train, &picked.rows);
        let dim = encoder.dim();
        let mut flat = vec![0.0f32; rows.len() * dim];
        match encoder.genres() {
            Some(space) => {
                for r in 0..rows.len() {
                    flat[r * dim..(r + 1) * dim].copy_from_slice(&space.profile(rows.row(r)));
                }
            }
            None => {
                let texts: Vec<&str> = picked
                    .profiles
                    .iter()
                    .map(|p| match p {
                        Some(Profile::Text(t)) => t.as_str(),
                        _ => "",
                    })
                    .collect();
                let vectors = encoder.embed_texts(&texts, progress)?;
                for (r, v) in vectors.iter().enumerate() {
                    if v.len() != dim {
                        return Err(TearsError::BadProfile {
                            user: rows.users[r],
                            message: format!("the encoder gave {} values, expected {dim}", v.len()),
                        });
                    }
                    flat[r * dim..(r + 1) * dim].copy_from_slice(v);
                }
            }
        }
        let x = Interactions::from_rows(
            &rows,
            split.n_items(),
            Values::Binary { positive_above: split.meta.positive_above },
        )?;
        let profiles = Array2::from_shape_vec((rows.len(), dim), flat)
            .map_err(|e| TearsError::Model(tears_core::ModelError::Numerical(e.to_string())))?;
        Ok(TrainingData { x, profiles, users: rows.users.clone(), skipped: picked.skipped })
    }

    /// The profile rows `rows` as a tensor.
    pub fn profile_rows<B: burn::tensor::backend::Backend>(&self, rows: &[usize], device: &B::Device) -> Tensor<B, 2> {
        let dim = self.profiles.ncols();
        let mut flat = Vec::with_capacity(rows.len() * dim);
        for &r in rows {
            flat.extend(self.profiles.row(r).iter().copied());
        }
        Tensor::from_data(TensorData::new(flat, [rows.len(), dim]), device)
    }
}

type Optim<B, S> = OptimizerAdaptor<AdamW, S, B>;

fn adamw<B: AutodiffBackend, S: AutodiffModule<B>>(weight_decay: f32) -> Optim<B, S> {
    AdamWConfig::new().with_epsilon(1e-8).with_weight_decay(weight_decay).init::<B, S>()
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Validation of a training run: the split's validation users with their profiles.
#[derive(Debug, Clone, Copy)]
pub struct Validation<'a> {
    /// The split.
    pub split: &'a Split,
    /// Their summaries (none for GERS).
    pub profiles: Option<&'a Profiles>,
    /// Users without a summary.
    pub missing: MissingProfile,
}

/// A TEARS/GERS network's training as an [`EpochTask`].
pub struct TearsTask<'a, B: AutodiffBackend, S: Scrutable<B> + AutodiffModule<B>>
where
    S::InnerModule: Scrutable<B::InnerBackend>,
{
    model: Option<S>,
    optim: Optim<B, S>,
    data: &'a TrainingData,
    config: &'a CheckedConfig,
    train: &'a TearsTrainConfig,
    encoder: Arc<ProfileEncoder<B::InnerBackend>>,
    tuner: Option<EncoderTuner<B>>,
    validation: Validation<'a>,
    device: B::Device,
    noise: NoiseSource,
    updates: u64,
    fingerprint: Fingerprint,
    workers: Workers,
    /// The frozen backbone's first-layer weight on the host, when that layer is computed from
    /// the clicks' non-zeros ([`tears_vae::input`]); read at the first epoch.
    host_input: Option<HostWeight>,
    sparse_input: bool,
}

impl<'a, B, S> TearsTask<'a, B, S>
where
    B: AutodiffBackend,
    S: Scrutable<B> + AutodiffModule<B>,
    S::InnerModule: Scrutable<B::InnerBackend>,
{
    /// A task training `model` on `data`. `fingerprint` names what a resumed run must match
    /// beyond the schedule (encoder, summaries, backbone).
    ///
    /// # Errors
    /// An invalid schedule; no training users.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        model: S,
        data: &'a TrainingData,
        config: &'a CheckedConfig,
        train: &'a TearsTrainConfig,
        encoder: Arc<ProfileEncoder<B::InnerBackend>>,
        validation: Validation<'a>,
        device: B::Device,
        mut fingerprint: Fingerprint,
    ) -> Result<Self> {
        train.check()?;
        if data.x.n_rows() == 0 {
            return Err(TearsError::Model(tears_core::ModelError::Config("there are no training users".into())));
        }
        fingerprint.insert("model configuration".into(), serde_json::to_value(config.get()).unwrap_or_default());
        fingerprint.insert(
            "training configuration (batch size, learning rate, weight decay, seed, select_k or select_alpha)".into(),
            serde_json::json!({
                "batch_size": train.batch_size, "lr": train.lr, "weight_decay": train.weight_decay,
                "seed": train.seed, "select_k": train.select_k, "select_alpha": train.select_alpha,
            }),
        );
        if config.get().encoder_mode.trains() {
            fingerprint.insert("encoder learning rate".into(), serde_json::json!(train.encoder_lr));
        }
        fingerprint.insert(
            "split".into(),
            serde_json::json!({"vocabulary_hash": validation.split.vocabulary_hash(), "train_users": data.x.n_rows()}),
        );
        let sparse_input = tears_vae::sparse_input_enabled::<B>(&device);
        Ok(TearsTask {
            model: Some(model),
            optim: adamw::<B, S>(train.weight_decay),
            data,
            config,
            train,
            encoder,
            tuner: None,
            validation,
            device,
            noise: NoiseSource::new(train.seed, 0),
            updates: 0,
            fingerprint,
            workers: Workers::Solo,
            host_input: None,
            sparse_input,
        })
    }

    /// Trains as one of several data-parallel `workers` (see [`tears_vae::parallel`]): each
    /// update uses this worker's slice of the batch and the gradients summed over all workers.
    ///
    /// # Errors
    /// The Sinkhorn alignment (one divergence between the whole batch's two clouds, which a
    /// split batch would change) and a fine-tuned text encoder (its gradients are not summed) are
    /// refused with more than one worker.
    pub fn with_workers(mut self, workers: Workers) -> Result<Self> {
        if workers.is_parallel() {
            let refuse = |why: &str| {
                Err(TearsError::Model(tears_core::ModelError::Config(format!(
                    "data-parallel training ({} workers) {why}",
                    workers.workers()
                ))))
            };
            if matches!(self.config.get().alignment, Alignment::Sinkhorn { .. }) {
                return refuse(
                    "needs an alignment that is a mean over users: the Sinkhorn divergence couples the users of a batch; use --alignment gaussian-w2",
                );
            }
            if self.tuner.is_some() {
                return refuse("trains the fusion network only: use --encoder-mode frozen");
            }
        }
        self.workers = workers;
        Ok(self)
    }

    /// Trains the text encoder too, through `tuner` (its training texts in the order of the
    /// training rows).
    ///
    /// # Errors
    /// A tuner whose training texts are not one per training row.
    pub fn with_tuner(mut self, tuner: EncoderTuner<B>) -> Result<Self> {
        if tuner.train_len() != self.data.x.n_rows() {
            return Err(TearsError::Model(tears_core::ModelError::Config(format!(
                "the encoder tuner holds {} training summaries for {} training users",
                tuner.train_len(),
                self.data.x.n_rows()
            ))));
        }
        self.tuner = Some(tuner);
        Ok(self)
    }

    fn model_ref(&self) -> &S {
        match &self.model {
            Some(m) => m,
            None => unreachable!("the model is only taken out during an epoch"),
        }
    }

    fn take_model(&mut self) -> S {
        match self.model.take() {
            Some(m) => m,
            None => unreachable!("the model is only taken out during an epoch"),
        }
    }

    fn batch_alpha(&self) -> f32 {
        match self.config.get().train_alpha {
            TrainAlpha::Fixed(a) => a,
            TrainAlpha::Uniform => {
                ChaCha8Rng::seed_from_u64(mix(self.train.seed ^ mix(self.updates ^ 0xA1FA))).random::<f32>()
            }
        }
    }

    fn scorer(&self, model: S::InnerModule, alpha: f32) -> Scorer<B::InnerBackend, S::InnerModule> {
        let positive_above = self.validation.split.meta.positive_above;
        Scorer::new(model, self.encoder.clone(), self.device.clone(), positive_above, alpha)
    }
}

const PARTS: [&str; 5] = ["nll_fused", "nll_profile", "nll_backbone", "alignment", "kl"];

impl<B, S> EpochTask for TearsTask<'_, B, S>
where
    B: AutodiffBackend,
    S: Scrutable<B> + AutodiffModule<B>,
    S::InnerModule: Scrutable<B::InnerBackend>,
{
    type Snapshot = Snapshot<B::InnerBackend, S::InnerModule>;
    type Error = TearsError;

    fn label(&self) -> String {
        let c = self.config.get();
        let profile = if self.encoder.genres().is_some() { "gers" } else { "tears" };
        format!("{profile}-{}", c.backbone.name())
    }

    fn fingerprint(&self) -> Fingerprint {
        self.fingerprint.clone()
    }

    fn epoch(&mut self, epoch: usize) -> Result<EpochLoss> {
        let order = mix(self.train.seed ^ mix(epoch as u64 ^ 0x7EA5_0000));
        let batches = self.data.x.batches(self.train.batch_size, Some(order));
        let mut model = self.take_model();
        if self.sparse_input && self.host_input.is_none() {
            // The backbone encoder is frozen: its first layer's weight never changes.
            self.host_input = model.backbone_input_layer().map(|layer| HostWeight::read(layer.linear));
        }
        let mut optim = std::mem::replace(&mut self.optim, adamw::<B, S>(self.train.weight_decay));
        let mut tuner = self.tuner.take();
        let mut sums: Option<Vec<Tensor<B, 1>>> = None;
        let n_batches = batches.len();
        let mut failure = None;
        for all_rows in batches {
            let share = WorkerShare::of(&self.workers, &all_rows);
            self.noise.set_row_offset(share.offset);
            let rows = share.rows(&all_rows);
            let x = self.data.x.to_tensor::<B>(rows, &self.device);
            let e = match &tuner {
                Some(t) => t.embed(rows),
                None => self.data.profile_rows::<B>(rows, &self.device),
            };
            let alpha = self.batch_alpha();
            let weights = Weights::at(self.config.get(), self.updates);
            let mode = Mode::train(&self.noise);
            let first_layer = match (&self.host_input, model.backbone_input_layer()) {
                (Some(host), Some(layer)) => {
                    let input = SparseRows::encoder_input(&self.data.x, rows, layer.dropout, mode);
                    Some(host.forward::<B>(&input, layer.linear, &self.device))
                }
                _ => None,
            };
            let mut loss = match model.loss(x, e, alpha, &weights, mode, first_layer) {
                Ok(l) => l,
                Err(err) => {
                    failure = Some(err);
                    break;
                }
            };
            if let Some(w) = share.weight {
                loss.total = loss.total.mul_scalar(w);
            }
            let weigh = |t: &Tensor<B, 1>| match share.weight {
                Some(w) => t.clone().detach().mul_scalar(w),
                None => t.clone().detach(),
            };
            let parts = vec![
                loss.total.clone().detach(),
                weigh(&loss.nll_fused),
                weigh(&loss.nll_profile),
                weigh(&loss.nll_backbone),
                weigh(&loss.alignment),
                weigh(&loss.kl),
            ];
            sums = Some(match sums {
                None => parts,
                Some(s) => s.into_iter().zip(parts).map(|(a, b)| a.add(b)).collect(),
            });
            let mut grads = loss.total.backward();
            let params = GradientsParams::from_module(&mut grads, &model);
            let params = match self.workers.sum_gradients::<B, S>(params, &model, &self.device) {
                Ok(p) => p,
                Err(err) => {
                    failure = Some(err.into());
                    break;
                }
            };
            model = optim.step(self.train.lr, model, params);
            if let Some(t) = tuner.as_mut() {
                t.step(&mut grads);
            }
            self.updates += 1;
        }
        self.model = Some(model);
        self.optim = optim;
        self.tuner = tuner;
        if let Some(err) = failure {
            return Err(err);
        }
        let n = n_batches.max(1) as f64;
        let sums: Vec<f64> = sums.unwrap_or_default().into_iter().map(|t| t.into_scalar().elem::<f64>()).collect();
        let sums = if self.workers.is_parallel() { self.workers.sum_values(&sums)? } else { sums };
        let means: Vec<f64> = sums.into_iter().map(|s| s / n).collect();
        let get = |i: usize| means.get(i).copied().unwrap_or(0.0);
        let loss = get(0);
        if !loss.is_finite() {
            return Err(VaeError::Diverged { epoch, loss: loss as f32 }.into());
        }
        let parts: BTreeMap<String, f64> = PARTS.iter().enumerate().map(|(i, p)| (p.to_string(), get(i + 1))).collect();
        let nll =
            if self.config.get().backbone.backbone().is_some() { (get(1) + get(2) + get(3)) / 3.0 } else { get(1) };
        let regularizer = loss - nll;
        Ok(EpochLoss { loss, nll, regularizer, parts })
    }

    fn snapshot(&self) -> Self::Snapshot {
        Snapshot { net: self.model_ref().valid(), encoder: self.tuner.as_ref().map(EncoderTuner::snapshot) }
    }

    fn validate(&self, snapshot: &Self::Snapshot) -> Result<Option<f64>> {
        let users = &self.validation.split.validation;
        if users.is_empty() {
            return Ok(None);
        }
        let scorer = self.scorer(snapshot.net.clone(), self.train.select_alpha);
        let options = EvalOptions { ks: vec![self.train.select_k], batch_size: self.train.eval_batch_size };
        // A fine-tuned encoder's vectors come from the snapshot's weights, not the frozen model.
        let tuned = match (&self.tuner, &snapshot.encoder) {
            (Some(t), Some(e)) => Some(t.validation_profiles(e)?),
            _ => None,
        };
        let profiles = tuned.as_ref().or(self.validation.profiles);
        let report = evaluate_with_profiles(&scorer, users, profiles, self.validation.missing, &options)?;
        Ok(report.at(self.train.select_k).map(|a| a.ndcg.mean))
    }

    fn save_snapshot(&self, snapshot: &Self::Snapshot, path: &Path) -> Result<()> {
        if let Some(e) = &snapshot.encoder {
            save_record::<B::InnerBackend, _>(e, &beside(path))?;
        }
        Ok(save_record::<B::InnerBackend, _>(&snapshot.net, path)?)
    }

    fn load_snapshot(&self, path: &Path) -> Result<Self::Snapshot> {
        let encoder = match &self.tuner {
            Some(t) => Some(t.load_snapshot(path)?),
            None => None,
        };
        Ok(Snapshot { net: load_record(self.model_ref().valid(), path, &self.device)?, encoder })
    }

    fn save_checkpoint(&self, dir: &Path) -> Result<()> {
        if let Some(t) = &self.tuner {
            t.save_checkpoint(dir)?;
        }
        save_record::<B, S>(self.model_ref(), &dir.join("model.mpk"))?;
        Ok(save_optimizer::<B, S, _>(&self.optim, &dir.join("optim.mpk"))?)
    }

    fn load_checkpoint(&mut self, dir: &Path, counters: Counters) -> Result<()> {
        let model = self.take_model();
        self.model = Some(load_record(model, &dir.join("model.mpk"), &self.device)?);
        self.optim =
            load_optimizer::<B, S, _>(adamw::<B, S>(self.train.weight_decay), &dir.join("optim.mpk"), &self.device)?;
        if let Some(t) = self.tuner.as_mut() {
            t.load_checkpoint(dir)?;
        }
        self.updates = counters.updates;
        self.noise = NoiseSource::new(self.train.seed, counters.noise_draws);
        Ok(())
    }

    fn counters(&self) -> Counters {
        Counters { updates: self.updates, noise_draws: self.noise.draws() }
    }

    fn beta(&self) -> f32 {
        self.config.get().kl_weight(self.updates)
    }
}
