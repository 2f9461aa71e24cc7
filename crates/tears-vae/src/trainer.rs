//! The trainer: seeded mini-batches from the sparse training matrix, the KL schedules, Adam,
//! per-epoch validation NDCG with best-epoch selection and early stopping, a progress bar, and
//! checkpoints that resume.
//!
//! With an output directory, every epoch ends by writing `checkpoint/` (the model, the
//! optimiser states and `state.json`, each atomically, the state last) and, when the epoch is the
//! best so far, `weights.mpk`. A later run with the same configuration and split continues from
//! the last finished epoch and reaches the same numbers as an uninterrupted run.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::{Adam, AdamConfig, GradientsParams, Optimizer, adaptor::OptimizerAdaptor};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};
use tears_baselines::{EvalOptions, evaluate_model, save_model};
use tears_data::{Interactions, Split, Values};

use crate::backbone::{Backbone, Mode, Phase, Schedule, Trainable};
use crate::config::{ModelConfig, TrainConfig};
use crate::error::{Result, VaeError};
use crate::model::{TrainSummary, Trained, WEIGHTS_FILE, load_record, save_record};
use crate::noise::NoiseSource;

/// Where and how a training run keeps its files.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The model directory (checkpoints, best weights, manifest); `None` keeps everything in memory.
    pub out_dir: Option<PathBuf>,
    /// Continue from `out_dir/checkpoint` when it exists (otherwise start over and overwrite it).
    pub resume: bool,
    /// Show a progress bar (only drawn when stderr is a terminal).
    pub progress: bool,
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

const STATE_FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    format: u32,
    model: ModelConfig,
    train: TrainConfig,
    vocabulary_hash: u64,
    n_train_users: usize,
    epochs_done: usize,
    updates: u64,
    noise_draws: u64,
    best_epoch: usize,
    best_value: Option<f64>,
    epochs_since_best: usize,
    history: Vec<EpochLog>,
}

type Adaptor<B, M> = OptimizerAdaptor<Adam, M, B>;

fn adam<B: AutodiffBackend, M: AutodiffModule<B>>() -> Adaptor<B, M> {
    // PyTorch's Adam epsilon (burn defaults to 1e-5).
    AdamConfig::new().with_epsilon(1e-8).init::<B, M>()
}

fn checkpoint_dir(out: &Path) -> PathBuf {
    out.join("checkpoint")
}

/// Mean losses of one epoch (over every mini-batch of every pass).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochLoss {
    /// Mean total loss.
    pub loss: f64,
    /// Mean multinomial NLL.
    pub nll: f64,
    /// Mean weighted regulariser.
    pub regularizer: f64,
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
}

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
        })
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
                model = self.pass(model, &mut optim_all, Phase::Joint, order_seed(seed, epoch, 0));
            }
            Schedule::Alternating { encoder_passes, decoder_passes } => {
                // Each phase tracks gradients of the half it updates only.
                model = model.with_trainable(true, false);
                for p in 0..encoder_passes {
                    model = self.pass(model, &mut optim_enc, Phase::Encoder, order_seed(seed, epoch, p));
                }
                model = model.refresh_prior().with_trainable(false, true);
                for p in 0..decoder_passes {
                    let s = order_seed(seed, epoch, encoder_passes + p);
                    model = self.pass(model, &mut optim_dec, Phase::Decoder, s);
                }
                model = model.with_trainable(true, true);
            }
        }
        self.model = Some(model);
        (self.optim_all, self.optim_enc, self.optim_dec) = (optim_all, optim_enc, optim_dec);
        let n = self.batches_seen.max(1) as f64;
        let [loss, nll, regularizer] = self.sums.map(|s| s / n);
        if !loss.is_finite() {
            return Err(VaeError::Diverged { epoch, loss: loss as f32 });
        }
        Ok(EpochLoss { loss, nll, regularizer })
    }

    fn take_model(&mut self) -> M {
        match self.model.take() {
            Some(m) => m,
            None => unreachable!("the model is only taken out during a pass"),
        }
    }

    /// One pass over the training users in a seeded order, updating `part` with `optim`.
    fn pass(&mut self, mut model: M, optim: &mut Adaptor<B, M>, phase: Phase, order_seed: u64) -> M {
        let mut totals: Option<[Tensor<B, 1>; 3]> = None;
        let batches = self.x.batches(self.config.batch_size, Some(order_seed));
        let n_batches = batches.len();
        for rows in batches {
            let xb = self.x.to_tensor::<B>(&rows, self.device);
            let beta = self.model_config.beta(self.updates, self.batches_per_epoch);
            let loss = model.loss(xb, beta, Mode::Train { noise: &self.noise, phase });
            let parts = [loss.total.clone().detach(), loss.nll.detach(), loss.regularizer.detach()];
            totals = Some(match totals {
                None => parts,
                Some([a, b, c]) => {
                    let [p, q, r] = parts;
                    [a.add(p), b.add(q), c.add(r)]
                }
            });
            let mut grads = loss.total.backward();
            let params = match phase {
                Phase::Joint => GradientsParams::from_grads(grads, &model),
                Phase::Encoder => model.encoder_grads(&mut grads),
                Phase::Decoder => model.decoder_grads(&mut grads),
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

/// SplitMix-style mixing of the seed, epoch and pass into a batch-order seed.
fn order_seed(seed: u64, epoch: usize, pass: usize) -> u64 {
    let mut z = seed ^ ((epoch as u64) << 20) ^ (pass as u64) ^ 0x0BA7_C4E5_0000;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn progress_bar(epochs: usize, start: usize, show: bool, what: &str) -> ProgressBar {
    if !(show && std::io::stderr().is_terminal()) {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(epochs as u64), ProgressDrawTarget::stderr());
    let style =
        ProgressStyle::with_template("{prefix} [{bar:30}] epoch {pos}/{len} {elapsed_precise} (eta {eta}) {msg}")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(what.to_string());
    bar.set_position(start as u64);
    bar
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
    let mut trainer = Trainer::new(model, split, config, device)?;
    let model_config = trainer.model_config;
    let mut state = State {
        format: STATE_FORMAT,
        model: model_config,
        train: config.clone(),
        vocabulary_hash: split.vocabulary_hash(),
        n_train_users: trainer.x.n_rows(),
        epochs_done: 0,
        updates: 0,
        noise_draws: 0,
        best_epoch: 0,
        best_value: None,
        epochs_since_best: 0,
        history: Vec::new(),
    };
    let mut best: Option<M::InnerModule> = None;

    if let (Some(out), true) = (&run.out_dir, run.resume) {
        let state_path = checkpoint_dir(out).join("state.json");
        if state_path.exists() {
            let saved = read_state(&state_path)?;
            check_resumable(&saved, &state, &state_path)?;
            let ck = checkpoint_dir(out);
            let model = load_record(trainer.take_model(), &ck.join("model.mpk"), device)?;
            trainer.optim_all = load_optimizer(adam::<B, M>(), &ck.join("optim.mpk"), device)?;
            trainer.optim_enc = load_optimizer(adam::<B, M>(), &ck.join("optim_encoder.mpk"), device)?;
            trainer.optim_dec = load_optimizer(adam::<B, M>(), &ck.join("optim_decoder.mpk"), device)?;
            if saved.best_epoch > 0 {
                best = Some(load_record(model.valid(), &out.join(WEIGHTS_FILE), device)?);
            }
            trainer.model = Some(model);
            trainer.updates = saved.updates;
            trainer.noise = NoiseSource::new(config.seed, saved.noise_draws);
            tracing::info!(epochs_done = saved.epochs_done, "resuming from {}", ck.display());
            state = State { train: config.clone(), ..saved };
        }
    }
    let resumed_after = state.epochs_done;
    let what = model_config.kind().name();
    let bar = progress_bar(config.epochs, state.epochs_done, run.progress, what);
    let eval_options = EvalOptions { ks: vec![config.select_k], batch_size: config.eval_batch_size };
    let positive_above = split.meta.positive_above;
    let mut stopped_early = false;

    for epoch in state.epochs_done + 1..=config.epochs {
        if let Some(patience) = config.patience
            && state.best_epoch > 0
            && state.epochs_since_best >= patience
        {
            stopped_early = true;
            break;
        }
        let started = Instant::now();
        let EpochLoss { loss, nll, regularizer } = trainer.epoch(epoch)?;
        let train_seconds = started.elapsed().as_secs_f64();
        let eval_started = Instant::now();
        let inner = trainer.model().valid();
        let validation_ndcg = if split.validation.is_empty() {
            None
        } else {
            let scorer = Trained::new(inner.clone(), device.clone(), positive_above, config.clone(), None);
            let report = evaluate_model(&scorer, &split.validation, &eval_options)?;
            report.at(config.select_k).map(|a| a.ndcg.mean)
        };
        let eval_seconds = eval_started.elapsed().as_secs_f64();
        let improved = match (validation_ndcg, state.best_value) {
            (Some(v), Some(b)) => v > b,
            (Some(_), None) => true,
            (None, _) => true,
        };
        if improved {
            state.best_epoch = epoch;
            state.best_value = validation_ndcg;
            state.epochs_since_best = 0;
            if let Some(out) = &run.out_dir {
                std::fs::create_dir_all(out).map_err(|e| tears_data::DataError::io(out, e))?;
                save_record::<B::InnerBackend, _>(&inner, &out.join(WEIGHTS_FILE))?;
            }
            best = Some(inner);
        } else {
            state.epochs_since_best += 1;
        }
        let log = EpochLog {
            epoch,
            loss,
            nll,
            regularizer,
            beta: trainer.beta(),
            validation_ndcg,
            train_seconds,
            eval_seconds,
        };
        tracing::info!(
            model = what,
            epoch,
            loss,
            validation_ndcg = validation_ndcg.unwrap_or(f64::NAN),
            train_seconds,
            "epoch finished"
        );
        let msg = match validation_ndcg {
            Some(v) => format!(
                "loss {loss:.3}  val ndcg@{} {v:.4}  best {:.4} @{}",
                config.select_k,
                state.best_value.unwrap_or(0.0),
                state.best_epoch
            ),
            None => format!("loss {loss:.3}"),
        };
        bar.set_message(msg);
        bar.inc(1);
        state.history.push(log);
        state.epochs_done = epoch;
        state.updates = trainer.updates;
        state.noise_draws = trainer.noise.draws();
        if let Some(out) = &run.out_dir {
            write_checkpoint(out, &trainer, &state)?;
        }
    }
    bar.finish_and_clear();
    let best = match best {
        Some(b) => b,
        None => trainer.model().valid(),
    };
    let summary = TrainSummary {
        epochs_run: state.epochs_done,
        best_epoch: state.best_epoch,
        best_validation_ndcg: state.best_value,
        stopped_early,
    };
    Ok((best, TrainReport { history: state.history, summary, resumed_after }))
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
    if let Some(out) = &run.out_dir {
        let log = out.join("train_log.json");
        let json = serde_json::to_vec_pretty(&report.history)
            .map_err(|e| VaeError::Record { path: log.clone(), message: e.to_string() })?;
        tears_data::io::write_atomic(&log, |w| w.write_all(&json))?;
        save_model(&trained, split, config.seed, Some(started.elapsed().as_secs_f64()), out)?;
    }
    Ok((trained, report))
}

fn read_state(path: &Path) -> Result<State> {
    let bytes = std::fs::read(path).map_err(|e| tears_data::DataError::io(path, e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| VaeError::Checkpoint { path: path.to_path_buf(), message: format!("unreadable state: {e}") })
}

fn check_resumable(saved: &State, fresh: &State, path: &Path) -> Result<()> {
    let mismatch = |what: &str| {
        Err(VaeError::Checkpoint {
            path: path.to_path_buf(),
            message: format!(
                "the checkpoint was made with another {what}; remove the directory or train without resuming"
            ),
        })
    };
    if saved.format != STATE_FORMAT {
        return mismatch("checkpoint format");
    }
    if saved.model != fresh.model {
        return mismatch("model configuration");
    }
    if saved.vocabulary_hash != fresh.vocabulary_hash || saved.n_train_users != fresh.n_train_users {
        return mismatch("split");
    }
    let (a, b) = (&saved.train, &fresh.train);
    if a.batch_size != b.batch_size || a.lr != b.lr || a.seed != b.seed || a.select_k != b.select_k {
        return mismatch("training configuration (batch size, learning rate, seed or select_k)");
    }
    Ok(())
}

fn write_checkpoint<B, M>(out: &Path, trainer: &Trainer<'_, B, M>, state: &State) -> Result<()>
where
    B: AutodiffBackend,
    M: Trainable<B>,
{
    let ck = checkpoint_dir(out);
    std::fs::create_dir_all(&ck).map_err(|e| tears_data::DataError::io(&ck, e))?;
    save_record::<B, M>(trainer.model(), &ck.join("model.mpk"))?;
    save_optimizer(&trainer.optim_all, &ck.join("optim.mpk"))?;
    save_optimizer(&trainer.optim_enc, &ck.join("optim_encoder.mpk"))?;
    save_optimizer(&trainer.optim_dec, &ck.join("optim_decoder.mpk"))?;
    let path = ck.join("state.json");
    let json = serde_json::to_vec_pretty(state)
        .map_err(|e| VaeError::Record { path: path.clone(), message: e.to_string() })?;
    tears_data::io::write_atomic(&path, |w| w.write_all(&json))?;
    Ok(())
}

fn save_optimizer<B: AutodiffBackend, M: AutodiffModule<B>>(optim: &Adaptor<B, M>, path: &Path) -> Result<()> {
    use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
    let bytes =
        Recorder::<B>::record(&NamedMpkBytesRecorder::<FullPrecisionSettings>::default(), optim.to_record(), ())
            .map_err(|e| VaeError::Record { path: path.to_path_buf(), message: e.to_string() })?;
    tears_data::io::write_atomic(path, |w| w.write_all(&bytes))?;
    Ok(())
}

fn load_optimizer<B: AutodiffBackend, M: AutodiffModule<B>>(
    optim: Adaptor<B, M>,
    path: &Path,
    device: &B::Device,
) -> Result<Adaptor<B, M>> {
    use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
    let bytes = std::fs::read(path)
        .map_err(|e| VaeError::Record { path: path.to_path_buf(), message: format!("cannot read: {e}") })?;
    let record = Recorder::<B>::load(&NamedMpkBytesRecorder::<FullPrecisionSettings>::default(), bytes, device)
        .map_err(|e| VaeError::Record { path: path.to_path_buf(), message: format!("not an optimiser record: {e}") })?;
    Ok(optim.load_record(record))
}
