//! The one training loop of tears-rs: epochs, validation after each, best-epoch selection with
//! patience, per-epoch atomic checkpoints that resume bit for bit, a progress bar and
//! `tracing` logs. A model plugs in through [`EpochTask`]; the backbones ([`crate::train`]) and
//! the TEARS models (`tears-model`) both run here.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::checkpoint::{Counters, Fingerprint, RunState, checkpoint_dir};
use crate::early_stopping::Decision;
use crate::error::VaeError;
use crate::model::TrainSummary;
use crate::trainer::{EpochLog, EpochLoss, RunOptions, TrainReport};

/// One model's training as the loop drives it: run an epoch, take a snapshot of the model for
/// scoring, validate it, and save or restore everything a checkpoint holds.
pub trait EpochTask {
    /// The scoring model the loop keeps for the best epoch (on the inner backend).
    type Snapshot;
    /// The error of the task (I/O errors of the loop convert from [`VaeError`]).
    type Error: From<VaeError>;

    /// A short name for logs and the progress bar.
    fn label(&self) -> String;
    /// What a checkpoint must match to be resumed.
    fn fingerprint(&self) -> Fingerprint;
    /// Runs epoch `epoch` (1-based).
    ///
    /// # Errors
    /// A diverging loss, a failed step.
    fn epoch(&mut self, epoch: usize) -> Result<EpochLoss, Self::Error>;
    /// The model as it is now, ready to score.
    fn snapshot(&self) -> Self::Snapshot;
    /// The validation metric of `snapshot` (higher is better); `None` without validation users.
    ///
    /// # Errors
    /// A failed evaluation.
    fn validate(&self, snapshot: &Self::Snapshot) -> Result<Option<f64>, Self::Error>;
    /// Writes `snapshot`'s weights to `path`.
    ///
    /// # Errors
    /// An I/O or record error naming the file.
    fn save_snapshot(&self, snapshot: &Self::Snapshot, path: &Path) -> Result<(), Self::Error>;
    /// Reads weights written by [`EpochTask::save_snapshot`].
    ///
    /// # Errors
    /// A missing or undecodable file.
    fn load_snapshot(&self, path: &Path) -> Result<Self::Snapshot, Self::Error>;
    /// Writes the trained model and the optimiser states into the checkpoint folder `dir`.
    ///
    /// # Errors
    /// An I/O or record error naming the file.
    fn save_checkpoint(&self, dir: &Path) -> Result<(), Self::Error>;
    /// Restores what [`EpochTask::save_checkpoint`] wrote, and the counters.
    ///
    /// # Errors
    /// A missing or undecodable file.
    fn load_checkpoint(&mut self, dir: &Path, counters: Counters) -> Result<(), Self::Error>;
    /// The counters to checkpoint.
    fn counters(&self) -> Counters;
    /// The KL weight after the last update, for the log.
    fn beta(&self) -> f32 {
        0.0
    }
}

/// How many epochs the loop runs and when it stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// The last epoch (a resumed run may raise it).
    pub epochs: usize,
    /// Epochs without a better validation metric before stopping (`None`: never).
    pub patience: Option<usize>,
    /// The metric's cut-off, for messages (`ndcg@K`).
    pub select_k: usize,
}

/// The weights file of the best epoch inside a model directory.
pub const BEST_FILE: &str = "weights.mpk";

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

/// Runs `task` for `schedule.epochs` epochs (or until patience runs out) and returns the best
/// epoch's snapshot and the report. With `run.out_dir`, the best epoch's weights go to
/// `out/weights.mpk` and every epoch ends with a checkpoint in `out/checkpoint/`; with
/// `run.resume` a matching checkpoint is continued (another fingerprint is refused).
///
/// # Errors
/// The task's errors; a checkpoint of another run; I/O errors naming the file.
pub fn run_epochs<T: EpochTask>(
    task: &mut T,
    schedule: &Schedule,
    run: &RunOptions,
) -> Result<(T::Snapshot, TrainReport), T::Error> {
    let fingerprint = task.fingerprint();
    let mut state = RunState::new(fingerprint.clone(), schedule.patience);
    let mut best: Option<T::Snapshot> = None;
    if let (Some(out), true) = (&run.out_dir, run.resume) {
        let ck = checkpoint_dir(out);
        if RunState::path(&ck).exists() {
            let saved = RunState::read(&ck)?;
            saved.check_resumable(&fingerprint, &ck)?;
            task.load_checkpoint(&ck, saved.counters)?;
            if saved.stopping.best_epoch > 0 {
                best = Some(task.load_snapshot(&out.join(BEST_FILE))?);
            }
            tracing::info!(epochs_done = saved.epochs_done, "resuming from {}", ck.display());
            state = saved;
            // The patience may be changed on resume.
            state.stopping.patience = schedule.patience;
        }
    }
    let resumed_after = state.epochs_done;
    let what = task.label();
    let bar = progress_bar(schedule.epochs, state.epochs_done, run.progress, &what);
    let mut stopped_early = state.stopping.should_stop() && state.epochs_done < schedule.epochs;
    let first = state.epochs_done + 1;
    for epoch in first..=schedule.epochs {
        if stopped_early {
            break;
        }
        let started = Instant::now();
        let loss = task.epoch(epoch)?;
        let train_seconds = started.elapsed().as_secs_f64();
        let eval_started = Instant::now();
        let snapshot = task.snapshot();
        let validation_ndcg = task.validate(&snapshot)?;
        let eval_seconds = eval_started.elapsed().as_secs_f64();
        let decision = state.stopping.update(epoch, validation_ndcg);
        if decision == Decision::Improved {
            if let Some(out) = &run.out_dir {
                std::fs::create_dir_all(out).map_err(|e| VaeError::from(tears_data::DataError::io(out, e)))?;
                task.save_snapshot(&snapshot, &out.join(BEST_FILE))?;
            }
            best = Some(snapshot);
        }
        let log = EpochLog {
            epoch,
            loss: loss.loss,
            nll: loss.nll,
            regularizer: loss.regularizer,
            beta: task.beta(),
            validation_ndcg,
            train_seconds,
            eval_seconds,
            parts: loss.parts.clone(),
        };
        tracing::info!(
            model = what.as_str(),
            epoch,
            loss = loss.loss,
            validation_ndcg = validation_ndcg.unwrap_or(f64::NAN),
            train_seconds,
            "epoch finished"
        );
        let msg = match validation_ndcg {
            Some(v) => format!(
                "loss {:.3}  val ndcg@{} {v:.4}  best {:.4} @{}",
                loss.loss,
                schedule.select_k,
                state.stopping.best_value.unwrap_or(0.0),
                state.stopping.best_epoch
            ),
            None => format!("loss {:.3}", loss.loss),
        };
        bar.set_message(msg);
        bar.inc(1);
        state.history.push(log);
        state.epochs_done = epoch;
        state.counters = task.counters();
        if let Some(out) = &run.out_dir {
            let ck = checkpoint_dir(out);
            std::fs::create_dir_all(&ck).map_err(|e| VaeError::from(tears_data::DataError::io(&ck, e)))?;
            task.save_checkpoint(&ck)?;
            state.write(&ck)?;
        }
        if decision == Decision::Stop && epoch < schedule.epochs {
            stopped_early = true;
        }
    }
    bar.finish_and_clear();
    let best = match best {
        Some(b) => b,
        None => task.snapshot(),
    };
    let summary = TrainSummary {
        epochs_run: state.epochs_done,
        best_epoch: state.stopping.best_epoch,
        best_validation_ndcg: state.stopping.best_value,
        stopped_early,
    };
    Ok((best, TrainReport { history: state.history, summary, resumed_after }))
}

/// Writes every epoch's numbers to `out/train_log.json` atomically.
///
/// # Errors
/// An I/O error naming the file.
pub fn write_train_log(out: &Path, history: &[EpochLog]) -> Result<(), VaeError> {
    let log = out.join("train_log.json");
    let json = serde_json::to_vec_pretty(history)
        .map_err(|e| VaeError::Record { path: log.clone(), message: e.to_string() })?;
    tears_data::io::write_atomic(&log, |w| w.write_all(&json))?;
    Ok(())
}
