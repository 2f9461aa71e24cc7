//! The error type of `tears-vae`.

use std::path::PathBuf;

/// Everything that can go wrong building, training, saving or loading a backbone.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaeError {
    /// Reading the split or writing a file failed.
    #[error(transparent)]
    Data(#[from] tears_data::DataError),
    /// Manifests, evaluation and vocabulary checks (shared with the baselines).
    #[error(transparent)]
    Model(#[from] tears_core::ModelError),
    /// A hyper-parameter or option that cannot work.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A weight, optimizer or checkpoint file that cannot be written or read.
    #[error("{}: {message}", path.display())]
    Record {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A checkpoint that belongs to another run.
    #[error("{}: {message}", path.display())]
    Checkpoint {
        /// The checkpoint's state file.
        path: PathBuf,
        /// Why it cannot be resumed.
        message: String,
    },
    /// The loss became NaN or infinite.
    #[error("training diverged at epoch {epoch}: the loss is {loss}")]
    Diverged {
        /// 1-based epoch.
        epoch: usize,
        /// The non-finite loss.
        loss: f32,
    },
}

/// `Result` with [`VaeError`].
pub type Result<T, E = VaeError> = std::result::Result<T, E>;

impl From<VaeError> for tears_core::ModelError {
    fn from(e: VaeError) -> Self {
        match e {
            VaeError::Model(b) => b,
            VaeError::Data(d) => tears_core::ModelError::Data(d),
            VaeError::Config(c) => tears_core::ModelError::Config(c),
            VaeError::Record { path, message } | VaeError::Checkpoint { path, message } => {
                tears_core::ModelError::Malformed { path, message }
            }
            other => tears_core::ModelError::Numerical(other.to_string()),
        }
    }
}
