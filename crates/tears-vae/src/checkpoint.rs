//! Checkpoints of a training run: `checkpoint/state.json` (what the loop needs to continue:
//! epochs done, counters, the selection state, the history, and a fingerprint of the run) next
//! to the model's and optimisers' records, every file written atomically and the state last.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::AutodiffModule;
use burn::optim::Optimizer;
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use crate::early_stopping::EarlyStopping;
use crate::error::{Result, VaeError};
use crate::trainer::EpochLog;

/// Version of the `state.json` layout.
pub const STATE_FORMAT: u32 = 2;

/// The checkpoint folder of a model directory.
pub fn checkpoint_dir(out: &Path) -> PathBuf {
    out.join("checkpoint")
}

/// What must be equal for a checkpoint to be resumed, by name (`"model configuration"`,
/// `"split"`, ...): a resumed run with another value is refused, naming it.
pub type Fingerprint = BTreeMap<String, serde_json::Value>;

/// Counters that make a resumed run draw the same numbers as an uninterrupted one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Mini-batch updates made.
    pub updates: u64,
    /// Noise draws made ([`crate::NoiseSource::draws`]).
    pub noise_draws: u64,
}

/// The contents of `checkpoint/state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// [`STATE_FORMAT`].
    pub format: u32,
    /// The run's fingerprint.
    pub fingerprint: Fingerprint,
    /// Epochs finished.
    pub epochs_done: usize,
    /// Counters after the last finished epoch.
    pub counters: Counters,
    /// Best-epoch selection.
    pub stopping: EarlyStopping,
    /// Every finished epoch.
    pub history: Vec<EpochLog>,
}

impl RunState {
    /// A fresh run.
    pub fn new(fingerprint: Fingerprint, patience: Option<usize>) -> Self {
        RunState {
            format: STATE_FORMAT,
            fingerprint,
            epochs_done: 0,
            counters: Counters::default(),
            stopping: EarlyStopping::new(patience),
            history: Vec::new(),
        }
    }

    /// The state file in checkpoint folder `dir`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("state.json")
    }

    /// Reads `dir/state.json`.
    ///
    /// # Errors
    /// An I/O error or [`VaeError::Checkpoint`] naming the file.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = Self::path(dir);
        let bytes = std::fs::read(&path).map_err(|e| tears_data::DataError::io(&path, e))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| VaeError::Checkpoint { path: path.clone(), message: format!("unreadable state: {e}") })
    }

    /// Writes `dir/state.json` atomically.
    ///
    /// # Errors
    /// An I/O error naming the file.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let path = Self::path(dir);
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| VaeError::Record { path: path.clone(), message: e.to_string() })?;
        tears_data::io::write_atomic(&path, |w| w.write_all(&json))?;
        Ok(())
    }

    /// Checks that this saved state belongs to a run with `fingerprint`.
    ///
    /// # Errors
    /// [`VaeError::Checkpoint`] naming the state file and the first entry that differs.
    pub fn check_resumable(&self, fingerprint: &Fingerprint, dir: &Path) -> Result<()> {
        let path = Self::path(dir);
        let refuse = |what: &str| {
            Err(VaeError::Checkpoint {
                path: path.clone(),
                message: format!(
                    "the checkpoint was made with another {what}; remove the directory or train without resuming"
                ),
            })
        };
        if self.format != STATE_FORMAT {
            return refuse("checkpoint format");
        }
        for (name, value) in fingerprint {
            if self.fingerprint.get(name) != Some(value) {
                return refuse(name);
            }
        }
        if let Some(extra) = self.fingerprint.keys().find(|k| !fingerprint.contains_key(*k)) {
            return refuse(extra);
        }
        Ok(())
    }
}

type Rec = NamedMpkBytesRecorder<FullPrecisionSettings>;

/// Writes an optimiser's state to `path` atomically.
///
/// # Errors
/// [`VaeError::Record`] or an I/O error naming the file.
pub fn save_optimizer<B, M, O>(optim: &O, path: &Path) -> Result<()>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
{
    let bytes = Recorder::<B>::record(&Rec::default(), optim.to_record(), ())
        .map_err(|e| VaeError::Record { path: path.to_path_buf(), message: e.to_string() })?;
    tears_data::io::write_atomic(path, |w| w.write_all(&bytes))?;
    Ok(())
}

/// Loads an optimiser's state saved with [`save_optimizer`].
///
/// # Errors
/// [`VaeError::Record`] naming the file when it is missing or does not decode.
pub fn load_optimizer<B, M, O>(optim: O, path: &Path, device: &B::Device) -> Result<O>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
{
    let bytes = std::fs::read(path)
        .map_err(|e| VaeError::Record { path: path.to_path_buf(), message: format!("cannot read: {e}") })?;
    let record = Recorder::<B>::load(&Rec::default(), bytes, device)
        .map_err(|e| VaeError::Record { path: path.to_path_buf(), message: format!("not an optimiser record: {e}") })?;
    Ok(optim.load_record(record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_fingerprint_is_refused_by_name() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("tears-vae-ck-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| tears_data::DataError::io(&dir, e))?;
        let mut fp = Fingerprint::new();
        fp.insert("model configuration".into(), serde_json::json!({"hidden": 600}));
        fp.insert("split".into(), serde_json::json!(42));
        let state = RunState::new(fp.clone(), Some(3));
        state.write(&dir)?;
        let back = RunState::read(&dir)?;
        assert_eq!(back, state);
        assert!(back.check_resumable(&fp, &dir).is_ok());
        let mut other = fp.clone();
        other.insert("split".into(), serde_json::json!(43));
        let msg = back.check_resumable(&other, &dir).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("state.json") && msg.contains("another split"), "{msg}");
        let mut more = fp;
        more.insert("summaries".into(), serde_json::json!("abc"));
        let msg = back.check_resumable(&more, &dir).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("another summaries"), "{msg}");
        std::fs::remove_dir_all(&dir).ok();
        Ok(())
    }
}
