//! The error type of `tears-model`.

use std::path::PathBuf;

use crate::config::ConfigError;

/// Everything that can go wrong building, training, saving, loading or scoring a TEARS or GERS
/// model. Errors that come from a file name it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TearsError {
    /// A configuration that breaks one of the rules of [`crate::TearsConfig::check`].
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// Reading the split or writing a file failed.
    #[error(transparent)]
    Data(#[from] tears_data::DataError),
    /// Manifests, evaluation and vocabulary checks.
    #[error(transparent)]
    Model(#[from] tears_core::ModelError),
    /// The backbone: loading, records, checkpoints, the training loop.
    #[error(transparent)]
    Vae(#[from] tears_vae::VaeError),
    /// The text encoder.
    #[error(transparent)]
    Text(#[from] tears_text::TextError),
    /// The optimal-transport alignment.
    #[error(transparent)]
    Ot(#[from] tears_ot::OtError),
    /// The LLM edits of the controllability experiments: a server error that stops every
    /// request, or their answer cache.
    #[error(transparent)]
    Summarize(#[from] tears_summarize::SummarizeError),
    /// A model directory, summaries file or encoder that does not match what the model was
    /// trained with.
    #[error("{}: {message}", path.display())]
    Mismatch {
        /// The file that does not match (a manifest, a summaries file, an encoder folder).
        path: PathBuf,
        /// What differs, and what to do.
        message: String,
    },
    /// A recommendation request that cannot be served (an empty summary, alpha outside [0, 1],
    /// an unknown item id, ...).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A figure that could not be drawn (no results, a drawing failure).
    #[error("drawing a figure: {0}")]
    Plot(String),
    /// A profile of the wrong kind or size was given to a model.
    #[error("profile of user {user}: {message}")]
    BadProfile {
        /// The user.
        user: u64,
        /// What is wrong.
        message: String,
    },
}

/// `Result` with [`TearsError`].
pub type Result<T, E = TearsError> = std::result::Result<T, E>;

impl From<TearsError> for tears_core::ModelError {
    fn from(e: TearsError) -> Self {
        match e {
            TearsError::Model(m) => m,
            TearsError::Data(d) => tears_core::ModelError::Data(d),
            TearsError::Config(c) => tears_core::ModelError::Config(c.to_string()),
            TearsError::Vae(v) => v.into(),
            TearsError::Mismatch { path, message } => tears_core::ModelError::Malformed { path, message },
            other => tears_core::ModelError::Numerical(other.to_string()),
        }
    }
}
