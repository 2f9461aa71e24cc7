//! The backbone trainer: seeded mini-batches from the sparse training matrix, the KL schedules
//! and Adam ([`Trainer`], one epoch at a time), driven by the shared loop of [`crate::epochs`]
//! (validation, best-epoch selection, early stopping, checkpoints, progress) through
//! [`BackboneTask`].
//!
//! With an output directory, every epoch ends by writing `checkpoint/` (the model, the
//! optimiser states and `state.json`, each atomically, the state last) and, when the epoch is the
//! best so far, `weights.mpk`. A later run with the same configuration and split continues from
//! the last finished epoch and reaches the same numbers as an uninterrupted run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer, adaptor::OptimizerAdaptor};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use tears_core::{EvalOptions, evaluate_model, save_model};
use tears_data::{Interactions, Split, Values};

use crate::backbone::{Backbone, Given, Mode, Phase, Posterior, Schedule, Trainable};
use crate::checkpoint::{Counters, Fingerprint, load_optimizer, save_optimizer};
use crate::config::{ModelConfig, TrainConfig};
use crate::epochs::{self, EpochTask};
use crate::error::{Result, VaeError};
use crate::input::{HostWeight, SparseRows, SparseStep, sparse_input_enabled};
use crate::model::{TrainSummary, Trained, load_record, save_record};
use crate::noise::NoiseSource;
use crate::optim::HostAdam;
use crate::parallel::{GradientSync, Workers};

/// Where and how a training run keeps its files.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The model directory (checkpoints, best weights, manifest); `None` keeps everything in memory.
    pub out_dir: Option<PathBuf>,
    /// Continue from `out_dir/checkpoint` when it exists (otherwise start over and overwrite it).
    pub resume: bool,
    /// Show a progress bar (only drawn when stderr is a terminal).
    pub progress: bool,
    /// The data-parallel workers this process is one of ([`Workers::Solo`] by default). Worker
    /// 0 writes `out_dir`; worker `r > 0` keeps its own checkpoints in `out_dir/workers/r`, so
    /// every worker resumes from the same epoch.
    pub workers: Workers,
}

impl RunOptions {
    /// The options this worker trains with: `out_dir` for worker 0, `out_dir/workers/r` for
    /// worker `r > 0`.
    pub fn for_worker(&self) -> RunOptions {
        match (&self.out_dir, self.workers.rank()) {
            (Some(out), r) if r > 0 => {
                RunOptions { out_dir: Some(out.join("workers").join(r.to_string())), ..self.clone() }
            }
            _ => self.clone(),
        }
    }
}

/// One epoch's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss over the epoch's mini-batches (all passes, each as optimised: RecVAE's
    /// decoder passes leave out the KL term, which is constant in the decoder's parameters).
    pub loss: f64,
    /// Mean multinomial NLL.
    pub nll: f64,
    /// Mean weighted regulariser (KL or weight penalty).
    pub regularizer: f64,
    /// The KL weight at the end of the epoch.
    pub beta: f32,
    /// Validation NDCG@`select_k`, when there are validation users.
    pub validation_ndcg: Option<f64>,
    /// Wall-clock seconds of the training passes.
    pub train_seconds: f64,
    /// Wall-clock seconds of the validation.
    pub eval_seconds: f64,
    /// Further named loss terms (the TEARS models' three NLLs, alignment and KL).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parts: BTreeMap<String, f64>,
}

/// The outcome of [`train`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Every epoch run, including those of a resumed run's earlier part.
    pub history: Vec<EpochLog>,
    /// What was selected.
    pub summary: TrainSummary,
    /// The epoch a resumed run started from (0 for a fresh run).
    pub resumed_after: usize,
}

type Adaptor<B, M> = OptimizerAdaptor<HostAdam, M, B>;

fn adam<B: AutodiffBackend, M: AutodiffModule<B>>() -> Adaptor<B, M> {
    // burn's Adam (PyTorch's epsilon; burn defaults to 1e-5), its update fused on host backends.
    HostAdam::new(0.9, 0.999, 1e-8).init::<B, M>()
}

/// Mean losses of one epoch (over every mini-batch of every pass).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EpochLoss {
    /// Mean total loss.
    pub loss: f64,
    /// Mean multinomial NLL.
    pub nll: f64,
    /// Mean weighted regulariser.
    pub regularizer: f64,
    /// Further named terms, logged in [`EpochLog::parts`].
    pub parts: BTreeMap<String, f64>,
}

/// Runs the training epochs of one backbone: seeded mini-batches from the sparse training
/// matrix (never a dense users × items matrix), the KL schedule, Adam (two optimisers for
/// [`Schedule::Alternating`]). [`train`] adds validation, selection and checkpoints around it;
/// benchmarks and custom loops use it directly.
///
/// ```
/// use burn::backend::{Autodiff, Flex};
/// use tears_data::{prepare, DatasetName, PrepareOptions};
/// use tears_vae::{MultDae, MultDaeConfig, TrainConfig, trainer::Trainer};
///
/// let split = prepare(DatasetName::Synthetic, &PrepareOptions::default())?.split;
/// let device = Default::default();
/// let model = MultDae::<Autodiff<Flex>>::new(&MultDaeConfig::default(), split.n_items(), 0, &device);
/// let config = TrainConfig::default();
/// let mut trainer = Trainer::new(model, &split, &config, &device)?;
/// let first = trainer.epoch(1)?;
/// let second = trainer.epoch(2)?;
/// assert!(first.loss.is_finite() && second.loss.is_finite());
/// # Ok::<(), tears_vae::VaeError>(())
/// ```
pub struct Trainer<'a, B: AutodiffBackend, M: Trainable<B>> {
    model: Option<M>,
    optim_all: Adaptor<B, M>,
    optim_enc: Adaptor<B, M>,
    optim_dec: Adaptor<B, M>,
    x: Interactions,
    config: &'a TrainConfig,
    model_config: ModelConfig,
    device: &'a B::Device,
    noise: NoiseSource,
    updates: u64,
    batches_per_epoch: usize,
    sums: [f64; 3],
    batches_seen: usize,
    workers: Workers,
    failure: Option<VaeError>,
    /// Whether the prior posterior is computed once per phase (off only to test that it
    /// changes nothing).
    cache_prior: bool,
    /// Whether the encoder's first layer is computed from the clicks' non-zeros
    /// ([`crate::input`]; CPU backends).
    sparse_input: bool,
}

/// The largest prior cache the trainer holds (bytes of `f32` means and log-variances of every
/// training user); beyond it the prior is computed per batch as before.
const PRIOR_CACHE_MAX_BYTES: usize = 1 << 30;

impl<'a, B: AutodiffBackend, M: Trainable<B>> Trainer<'a, B, M> {
    /// A trainer of `model` on `split.train` with `config`, on `device`.
    ///
    /// # Errors
    /// An invalid configuration, a model over another number of items, no training users.
    pub fn new(model: M, split: &Split, config: &'a TrainConfig, device: &'a B::Device) -> Result<Self> {
        config.validate()?;
        let model_config = model.model_config();
        model_config.validate()?;
        if model.n_items() != split.n_items() {
            return Err(VaeError::Config(format!(
                "the model scores {} items but the split has {}",
                model.n_items(),
                split.n_items()
            )));
        }
        let x = Interactions::from_rows(
            &split.train,
            split.n_items(),
            Values::Binary { positive_above: split.meta.positive_above },
        )?;
        if x.n_rows() == 0 {
            return Err(VaeError::Config("the split has no training users".into()));
        }
        Ok(Trainer {
            model: Some(model),
            optim_all: adam::<B, M>(),
            optim_enc: adam::<B, M>(),
            optim_dec: adam::<B, M>(),
            batches_per_epoch: x.n_rows().div_ceil(config.batch_size),
            x,
            config,
            model_config,
            device,
            noise: NoiseSource::new(config.seed, 0),
            updates: 0,
            sums: [0.0; 3],
            batches_seen: 0,
            workers: Workers::Solo,
            failure: None,
            cache_prior: true,
            sparse_input: sparse_input_enabled::<B>(device),
        })
    }

    /// Trains as one of several data-parallel `workers`: each update uses this worker's slice of
    /// the batch and the gradients summed over all workers (see [`crate::parallel`]).
    pub fn with_workers(mut self, workers: Workers) -> Self {
        self.workers = workers;
        self
    }

    /// The model being trained.
    pub fn model(&self) -> &M {
        match &self.model {
            Some(m) => m,
            None => unreachable!("the model is only taken out during a pass"),
        }
    }

    /// The model, unwrapped.
    pub fn into_model(mut self) -> M {
        match self.model.take() {
            Some(m) => m,
            None => unreachable!("the model is only taken out during a pass"),
        }
    }

    /// Mini-batch updates made so far.
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// Mini-batches per pass.
    pub fn batches_per_epoch(&self) -> usize {
        self.batches_per_epoch
    }

    /// The KL weight of the next update.
    pub fn beta(&self) -> f32 {
        self.model_config.beta(self.updates, self.batches_per_epoch)
    }

    /// Runs epoch `epoch` (1-based; it seeds the batch order): one pass, or RecVAE's encoder
    /// passes, prior refresh and decoder passes.
    ///
    /// # Errors
    /// [`VaeError::Diverged`] when the mean loss is not finite.
    pub fn epoch(&mut self, epoch: usize) -> Result<EpochLoss> {
        self.sums = [0.0; 3];
        self.batches_seen = 0;
        let seed = self.config.seed;
        let mut model = self.take_model();
        let mut optim_all = std::mem::replace(&mut self.optim_all, adam::<B, M>());
        let mut optim_enc = std::mem::replace(&mut self.optim_enc, adam::<B, M>());
        let mut optim_dec = std::mem::replace(&mut self.optim_dec, adam::<B, M>());
        match model.schedule() {
            Schedule::Joint => {
                model = self.pass(model, &mut optim_all, Phase::Joint, order_seed(seed, epoch, 0), None);
            }
            Schedule::Alternating { encoder_passes, decoder_passes } => {
                // Each phase tracks gradients of the half it updates only.
                model = model.with_trainable(true, false);
                // The prior network is fixed until the refresh: its posterior of every user is
                // computed once for the encoder passes.
                let prior = if self.cache_prior { self.prior_rows(&model) } else { None };
                for p in 0..encoder_passes {
                    let s = order_seed(seed, epoch, p);
                    model = self.pass(model, &mut optim_enc, Phase::Encoder, s, prior.as_ref());
                }
                model = model.refresh_prior().with_trainable(false, true);
                for p in 0..decoder_passes {
                    let s = order_seed(seed, epoch, encoder_passes + p);
                    model = self.pass(model, &mut optim_dec, Phase::Decoder, s, None);
                }
                model = model.with_trainable(true, true);
            }
        }
        // The model and optimisers go back before any error, so the trainer stays usable.
        self.model = Some(model);
        (self.optim_all, self.optim_enc, self.optim_dec) = (optim_all, optim_enc, optim_dec);
        if let Some(err) = self.failure.take() {
            return Err(err);
        }
        if self.workers.is_parallel() {
            let summed = self.workers.sum_values(&self.sums)?;
            for (s, v) in self.sums.iter_mut().zip(summed) {
                *s = v;
            }
        }
        let n = self.batches_seen.max(1) as f64;
        let [loss, nll, regularizer] = self.sums.map(|s| s / n);
        if !loss.is_finite() {
            return Err(VaeError::Diverged { epoch, loss: loss as f32 });
        }
        Ok(EpochLoss { loss, nll, regularizer, parts: BTreeMap::new() })
    }

    /// [`Backbone::prior_posterior`] of every training row, in row order, computed in batches;
    /// `None` for a model without a prior network or when it would exceed
    /// [`PRIOR_CACHE_MAX_BYTES`]. The encoder passes of a RecVAE epoch then run the frozen
    /// prior encoder once per user instead of once per user and pass.
    fn prior_rows(&self, model: &M) -> Option<Posterior<B>> {
        let n = self.x.n_rows();
        if 2 * n * model.latent().size() * std::mem::size_of::<f32>() > PRIOR_CACHE_MAX_BYTES {
            return None;
        }
        let all: Vec<usize> = (0..n).collect();
        let (mut mus, mut logvars) = (Vec::new(), Vec::new());
        for rows in all.chunks(self.config.batch_size.max(1)) {
            let p = model.prior_posterior(self.x.to_tensor::<B>(rows, self.device))?;
            mus.push(p.mu);
            logvars.extend(p.logvar);
        }
        let logvar = (logvars.len() == mus.len()).then(|| Tensor::cat(logvars, 0));
        Some(Posterior { mu: Tensor::cat(mus, 0), logvar })
    }

    fn take_model(&mut self) -> M {
        match self.model.take() {
            Some(m) => m,
            None => unreachable!("the model is only taken out during a pass"),
        }
    }

    /// One pass over the training users in a seeded order, updating `part` with `optim`;
    /// `prior` holds every training row's [`Backbone::prior_posterior`] when it was computed
    /// beforehand ([`Trainer::prior_rows`]). A failed gradient sum is kept in `self.failure`
    /// and ends the pass (and the passes after it) with the model as it was.
    fn pass(
        &mut self,
        mut model: M,
        optim: &mut Adaptor<B, M>,
        phase: Phase,
        order_seed: u64,
        prior: Option<&Posterior<B>>,
    ) -> M {
        if self.failure.is_some() {
            return model;
        }
        let mut totals: Option<[Tensor<B, 1>; 3]> = None;
        let batches = self.x.batches(self.config.batch_size, Some(order_seed));
        let n_batches = batches.len();
        let fixed_weight = match (self.sparse_input, phase, model.input_layer()) {
            (true, Phase::Decoder, Some(layer)) => Some(HostWeight::read(layer.linear)),
            _ => None,
        };
        for rows in batches {
            let share = WorkerShare::of(&self.workers, &rows);
            self.noise.set_row_offset(share.offset);
            let here = share.rows(&rows);
            let xb = self.x.to_tensor::<B>(here, self.device);
            let beta = self.model_config.beta(self.updates, self.batches_per_epoch);
            let mode = Mode::Train { noise: &self.noise, phase };
            // The first layer from the non-zeros; its weight trains outside the decoder phase.
            let sparse = match (self.sparse_input, model.input_layer()) {
                (true, Some(layer)) => {
                    let input = SparseRows::encoder_input(&self.x, here, layer.dropout, mode);
                    // The weight changes every step, except in the decoder phase.
                    let read;
                    let host = match &fixed_weight {
                        Some(w) => w,
                        None => {
                            read = HostWeight::read(layer.linear);
                            &read
                        }
                    };
                    let step = SparseStep::new(layer.linear, host, input, phase != Phase::Decoder, self.device);
                    let first = step.output(layer.linear);
                    Some((step, first))
                }
                _ => None,
            };
            let (step, first_layer) = sparse.unzip();
            let prior = prior.map(|cache| {
                let ids: Vec<i64> = here.iter().map(|&r| r as i64).collect();
                let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(ids, [here.len()]), self.device);
                Posterior {
                    mu: cache.mu.clone().select(0, idx.clone()),
                    logvar: cache.logvar.clone().map(|l| l.select(0, idx)),
                }
            });
            let mut loss = model.loss_with(xb, beta, mode, Given { prior, first_layer });
            if let Some(w) = share.weight {
                loss.total = loss.total.mul_scalar(w);
                loss.nll = loss.nll.mul_scalar(w);
                loss.regularizer = loss.regularizer.mul_scalar(w);
            }
            let parts = [loss.total.clone().detach(), loss.nll.detach(), loss.regularizer.detach()];
            totals = Some(match totals {
                None => parts,
                Some([a, b, c]) => {
                    let [p, q, r] = parts;
                    [a.add(p), b.add(q), c.add(r)]
                }
            });
            let mut grads = loss.total.backward();
            let mut params = match phase {
                Phase::Joint => GradientsParams::from_module(&mut grads, &model),
                Phase::Encoder => model.encoder_grads(&mut grads),
                Phase::Decoder => model.decoder_grads(&mut grads),
            };
            if let Some(step) = &step {
                step.add_weight_grad(&grads, &mut params);
            }
            let params = match self.workers.sum_gradients::<B, M>(params, &model, self.device) {
                Ok(p) => p,
                Err(err) => {
                    self.failure = Some(err);
                    return model;
                }
            };
            model = optim.step(self.config.lr, model, params);
            self.updates += 1;
        }
        if let Some(totals) = totals {
            for (sum, t) in self.sums.iter_mut().zip(totals) {
                *sum += t.into_scalar().elem::<f64>();
            }
            self.batches_seen += n_batches;
        }
        model
    }
}

/// A data-parallel worker's part of one batch: its rows, where they start in the batch and the
/// weight of its loss (`None` for a single worker, which takes the batch whole and unweighted).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerShare {
    /// The first row of the batch this worker holds (it keys the per-user noise).
    pub offset: usize,
    /// The number of rows this worker holds (0 when the batch has fewer rows than workers).
    pub len: usize,
    /// `len / batch rows`, the factor that makes the summed gradients the whole batch's.
    pub weight: Option<f32>,
}

impl WorkerShare {
    /// `workers`' share of the batch `rows`.
    pub fn of(workers: &Workers, rows: &[usize]) -> WorkerShare {
        if !workers.is_parallel() {
            return WorkerShare { offset: 0, len: rows.len(), weight: None };
        }
        let range = workers.slice(rows.len());
        let weight = range.len() as f32 / rows.len().max(1) as f32;
        WorkerShare { offset: range.start, len: range.len(), weight: Some(weight) }
    }

    /// The rows to compute on. A worker with no rows of a batch (a last batch smaller than the
    /// worker count) still takes part in the sum: it computes on the batch's first row with weight
    /// 0, which gives every parameter a zero gradient.
    pub fn rows<'r>(&self, rows: &'r [usize]) -> &'r [usize] {
        if self.len == 0 { &rows[..rows.len().min(1)] } else { &rows[self.offset..self.offset + self.len] }
    }
}

/// SplitMix-style mixing of the seed, epoch and pass into a batch-order seed.
fn order_seed(seed: u64, epoch: usize, pass: usize) -> u64 {
    let mut z = seed ^ ((epoch as u64) << 20) ^ (pass as u64) ^ 0x0BA7_C4E5_0000;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Trains `model` on `split.train` and returns the best epoch's model (on the inner backend,
/// ready to score) and the report.
///
/// Validation NDCG@`select_k` is computed after every epoch on `split.validation`; the best epoch
/// is kept and training stops after `patience` epochs without improvement. Without validation
/// users the last epoch is kept.
///
/// # Errors
/// An invalid configuration, a diverging loss, a checkpoint of another run, an I/O error.
pub fn train<B, M>(
    model: M,
    split: &Split,
    config: &TrainConfig,
    run: &RunOptions,
    device: &B::Device,
) -> Result<(M::InnerModule, TrainReport)>
where
    B: AutodiffBackend,
    M: Trainable<B>,
    M::InnerModule: Backbone<B::InnerBackend>,
{
    let trainer = Trainer::new(model, split, config, device)?.with_workers(run.workers.clone());
    let mut task = BackboneTask { trainer, split };
    let schedule = epochs::Schedule { epochs: config.epochs, patience: config.patience, select_k: config.select_k };
    let out = epochs::run_epochs(&mut task, &schedule, &run.for_worker());
    run.workers.finish()?;
    out
}

/// A backbone's training as an [`EpochTask`] of the shared loop: [`Trainer`] epochs, validation
/// NDCG@`select_k` of the posterior-mean scores on `split.validation`.
pub struct BackboneTask<'a, B: AutodiffBackend, M: Trainable<B>> {
    /// The epoch runner.
    pub trainer: Trainer<'a, B, M>,
    /// The split (its validation users select the epoch).
    pub split: &'a Split,
}

impl<B, M> EpochTask for BackboneTask<'_, B, M>
where
    B: AutodiffBackend,
    M: Trainable<B>,
    M::InnerModule: Backbone<B::InnerBackend>,
{
    type Snapshot = M::InnerModule;
    type Error = VaeError;

    fn label(&self) -> String {
        self.trainer.model_config.kind().name().to_string()
    }

    fn fingerprint(&self) -> Fingerprint {
        let t = self.trainer.config;
        let mut fp = Fingerprint::new();
        fp.insert("model configuration".into(), serde_json::to_value(self.trainer.model_config).unwrap_or_default());
        fp.insert(
            "split".into(),
            serde_json::json!({"vocabulary_hash": self.split.vocabulary_hash(), "train_users": self.trainer.x.n_rows()}),
        );
        fp.insert(
            "training configuration (batch size, learning rate, seed or select_k)".into(),
            serde_json::json!({"batch_size": t.batch_size, "lr": t.lr, "seed": t.seed, "select_k": t.select_k}),
        );
        fp
    }

    fn epoch(&mut self, epoch: usize) -> Result<EpochLoss> {
        self.trainer.epoch(epoch)
    }

    fn snapshot(&self) -> M::InnerModule {
        self.trainer.model().valid()
    }

    fn validate(&self, snapshot: &M::InnerModule) -> Result<Option<f64>> {
        if self.split.validation.is_empty() {
            return Ok(None);
        }
        let config = self.trainer.config;
        let scorer = Trained::new(
            snapshot.clone(),
            self.trainer.device.clone(),
            self.split.meta.positive_above,
            config.clone(),
            None,
        );
        let options = EvalOptions { ks: vec![config.select_k], batch_size: config.eval_batch_size };
        let report = evaluate_model(&scorer, &self.split.validation, &options)?;
        Ok(report.at(config.select_k).map(|a| a.ndcg.mean))
    }

    fn save_snapshot(&self, snapshot: &M::InnerModule, path: &Path) -> Result<()> {
        save_record::<B::InnerBackend, _>(snapshot, path)
    }

    fn load_snapshot(&self, path: &Path) -> Result<M::InnerModule> {
        load_record(self.trainer.model().valid(), path, self.trainer.device)
    }

    fn save_checkpoint(&self, dir: &Path) -> Result<()> {
        let t = &self.trainer;
        save_record::<B, M>(t.model(), &dir.join("model.mpk"))?;
        save_optimizer::<B, M, _>(&t.optim_all, &dir.join("optim.mpk"))?;
        save_optimizer::<B, M, _>(&t.optim_enc, &dir.join("optim_encoder.mpk"))?;
        save_optimizer::<B, M, _>(&t.optim_dec, &dir.join("optim_decoder.mpk"))
    }

    fn load_checkpoint(&mut self, dir: &Path, counters: Counters) -> Result<()> {
        let t = &mut self.trainer;
        let device = t.device;
        let model = load_record(t.take_model(), &dir.join("model.mpk"), device)?;
        t.model = Some(model);
        t.optim_all = load_optimizer::<B, M, _>(adam::<B, M>(), &dir.join("optim.mpk"), device)?;
        t.optim_enc = load_optimizer::<B, M, _>(adam::<B, M>(), &dir.join("optim_encoder.mpk"), device)?;
        t.optim_dec = load_optimizer::<B, M, _>(adam::<B, M>(), &dir.join("optim_decoder.mpk"), device)?;
        t.updates = counters.updates;
        t.noise = NoiseSource::new(t.config.seed, counters.noise_draws);
        Ok(())
    }

    fn counters(&self) -> Counters {
        Counters { updates: self.trainer.updates, noise_draws: self.trainer.noise.draws() }
    }

    fn beta(&self) -> f32 {
        self.trainer.beta()
    }
}

/// Trains and, with an output directory, writes the model directory (weights and manifest, the
/// manifest last); returns the trained model as a [`Trained`] recommender on the inner backend.
///
/// # Errors
/// As [`train`]; writing the directory.
#[allow(clippy::type_complexity)]
pub fn fit<B, M>(
    model: M,
    split: &Split,
    config: &TrainConfig,
    run: &RunOptions,
    device: &B::Device,
) -> Result<(Trained<B::InnerBackend, M::InnerModule>, TrainReport)>
where
    B: AutodiffBackend,
    M: Trainable<B>,
    M::InnerModule: Backbone<B::InnerBackend>,
{
    let started = Instant::now();
    let (best, report) = train(model, split, config, run, device)?;
    let trained =
        Trained::new(best, device.clone(), split.meta.positive_above, config.clone(), Some(report.summary.clone()));
    // Worker 0 writes the model directory (the other workers hold the same model).
    if let (Some(out), 0) = (&run.out_dir, run.workers.rank()) {
        epochs::write_train_log(out, &report.history)?;
        save_model(&trained, split, config.seed, Some(started.elapsed().as_secs_f64()), out)?;
    }
    Ok((trained, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RecVae, RecVaeConfig};
    use burn::backend::{Autodiff, Flex};
    use tears_data::synthetic::SyntheticConfig;
    use tears_data::{DatasetName, PrepareOptions, prepare};

    type A = Autodiff<Flex>;

    /// A synthetic split of 260 users over 90 items.
    fn small_split() -> tears_data::Split {
        let options = PrepareOptions {
            synthetic: SyntheticConfig { users: 260, items: 90, ..SyntheticConfig::default() },
            ..PrepareOptions::default()
        };
        prepare(DatasetName::Synthetic, &options).expect("synthetic split").split
    }

    #[test]
    fn the_prior_computed_once_per_phase_trains_the_same_model() {
        let split = small_split();
        let device = Default::default();
        // Batches of 64 over 200-odd users: the cache is built from other batches than the passes use.
        let config = TrainConfig { batch_size: 64, epochs: 2, ..crate::BackboneKind::RecVae.default_train() };
        let model_config = RecVaeConfig { hidden: 24, latent: 6, ..RecVaeConfig::default() };
        let run = |cache: bool| {
            let model = RecVae::<A>::new(&model_config, split.n_items(), 3, &device);
            let mut trainer = Trainer::new(model, &split, &config, &device).expect("a trainer");
            trainer.cache_prior = cache;
            let losses: Vec<f64> = (1..=2).map(|e| trainer.epoch(e).expect("an epoch").loss).collect();
            let weights: Vec<f32> =
                trainer.into_model().decoder.weight.val().into_data().to_vec().expect("f32 weights");
            (losses, weights)
        };
        let (cached, cached_weights) = run(true);
        let (direct, direct_weights) = run(false);
        for (a, b) in cached.iter().zip(&direct) {
            approx::assert_relative_eq!(*a, *b, max_relative = 1e-5);
        }
        for (a, b) in cached_weights.iter().zip(&direct_weights) {
            approx::assert_abs_diff_eq!(*a, *b, epsilon = 1e-5);
        }
        // The model has a prior network, so the cache was in use.
        let model = RecVae::<A>::new(&model_config, split.n_items(), 3, &device);
        let trainer = Trainer::new(model.clone(), &split, &config, &device).expect("a trainer");
        let cache = trainer.prior_rows(&model).expect("RecVAE has a prior");
        assert_eq!(cache.mu.dims(), [trainer.x.n_rows(), 6]);
    }

    /// Two epochs of `model` with the first layer from sparse rows and from the dense product:
    /// (losses, every weight of the first layer and of the last).
    fn sparse_and_dense<M: Trainable<A>>(
        model: M,
        split: &tears_data::Split,
        config: &TrainConfig,
        weights: impl Fn(&M) -> Vec<Vec<f32>>,
    ) -> [(Vec<f64>, Vec<Vec<f32>>); 2] {
        let device = Default::default();
        [true, false].map(|sparse| {
            let mut trainer = Trainer::new(model.clone(), split, config, &device).expect("a trainer");
            trainer.sparse_input = sparse;
            let losses: Vec<f64> = (1..=2).map(|e| trainer.epoch(e).expect("an epoch").loss).collect();
            (losses, weights(&trainer.into_model()))
        })
    }

    fn values(t: Tensor<A, 2>) -> Vec<f32> {
        t.into_data().to_vec().expect("f32 weights")
    }

    #[test]
    fn the_sparse_first_layer_trains_the_same_model() {
        use crate::{MultDae, MultDaeConfig, MultVae, MultVaeConfig};
        let split = small_split();
        let device = Default::default();
        assert!(sparse_input_enabled::<A>(&device) || std::env::var("TEARS_DENSE_INPUT").is_ok());
        let n = split.n_items();
        let runs = [
            sparse_and_dense(
                MultVae::<A>::new(&MultVaeConfig { hidden: 24, latent: 6, ..Default::default() }, n, 5, &device),
                &split,
                &TrainConfig { batch_size: 64, ..crate::BackboneKind::MultVae.default_train() },
                |m| vec![values(m.encoder.hidden.weight.val()), values(m.decoder.out.weight.val())],
            ),
            sparse_and_dense(
                MultDae::<A>::new(&MultDaeConfig { hidden: 24, ..Default::default() }, n, 5, &device),
                &split,
                &TrainConfig { batch_size: 64, ..crate::BackboneKind::MultDae.default_train() },
                |m| vec![values(m.encoder.weight.val()), values(m.decoder.weight.val())],
            ),
            sparse_and_dense(
                RecVae::<A>::new(&RecVaeConfig { hidden: 24, latent: 6, ..Default::default() }, n, 5, &device),
                &split,
                &TrainConfig { batch_size: 64, ..crate::BackboneKind::RecVae.default_train() },
                |m| vec![values(m.encoder.layers[0].weight.val()), values(m.decoder.weight.val())],
            ),
        ];
        for [(sparse, sparse_w), (dense, dense_w)] in &runs {
            for (a, b) in sparse.iter().zip(dense) {
                approx::assert_relative_eq!(*a, *b, max_relative = 1e-5);
            }
            for (ws, wd) in sparse_w.iter().zip(dense_w) {
                // The first layer's weights moved (so their gradient arrived) and agree.
                for (a, b) in ws.iter().zip(wd) {
                    approx::assert_abs_diff_eq!(*a, *b, epsilon = 1e-4);
                }
            }
        }
        let fresh = MultVae::<A>::new(&MultVaeConfig { hidden: 24, latent: 6, ..Default::default() }, n, 5, &device);
        let (_, trained) = &runs[0][0];
        let start = values(fresh.encoder.hidden.weight.val());
        let moved = start.iter().zip(&trained[0]).filter(|(a, b)| (*a - *b).abs() > 1e-5).count();
        assert!(moved > start.len() / 2, "only {moved} of {} first-layer weights moved", start.len());
    }
}
