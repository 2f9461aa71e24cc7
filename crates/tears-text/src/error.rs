//! The error type of the text encoders.

use std::path::{Path, PathBuf};

/// Why a text encoder could not be loaded, run or cached.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    /// A model file is missing.
    #[error("{path}: missing ({what}); a model folder needs config.json, tokenizer.json and model.safetensors")]
    MissingFile {
        /// The file looked for.
        path: PathBuf,
        /// What the file is.
        what: &'static str,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `config.json` is not valid JSON or lacks a field.
    #[error("{path}: not a valid model configuration: {reason}")]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The model is not an architecture this crate implements.
    #[error("{path}: unsupported model: {reason}")]
    Unsupported {
        /// The configuration file.
        path: PathBuf,
        /// What is not supported.
        reason: String,
    },
    /// `tokenizer.json` could not be read or used.
    #[error("{path}: tokenizer error: {reason}")]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The weights file is not a readable safetensors file.
    #[error("{path}: not a readable safetensors file: {reason}")]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A tensor the configuration needs is absent from the weights file.
    #[error("{path}: tensor {name:?} is missing (the file does not match config.json)")]
    MissingTensor {
        /// The weights file.
        path: PathBuf,
        /// The tensor name.
        name: String,
    },
    /// A tensor's shape or type disagrees with the configuration.
    #[error("{path}: tensor {name:?} has shape {found:?} ({dtype}), config.json implies {expected:?}")]
    TensorShape {
        /// The weights file.
        path: PathBuf,
        /// The tensor name.
        name: String,
        /// Shape stored in the file.
        found: Vec<usize>,
        /// Shape implied by the configuration.
        expected: Vec<usize>,
        /// The stored element type.
        dtype: String,
    },
    /// An option is out of range.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// A cache entry is corrupt.
    #[error("{path}: corrupt embedding-cache entry: {reason}")]
    Cache {
        /// The cache file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file was made by another text encoder than the one in use (another model, another
    /// hashing configuration, another dimension ...): its vectors are not comparable.
    #[error("{path}: made by a different text encoder ({fields} differ): expected {expected}, found {found}")]
    EncoderMismatch {
        /// The file whose recorded encoder differs.
        path: PathBuf,
        /// The names of the fields that differ, comma-separated (`kind, key, dim` ...).
        fields: String,
        /// The differing fields of the encoder in use, as `name=value` pairs.
        expected: String,
        /// The differing fields recorded in the file, as `name=value` pairs.
        found: String,
    },
}

impl TextError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        TextError::Io { path: path.to_path_buf(), source }
    }
}

/// Result alias of this crate.
pub type Result<T, E = TextError> = std::result::Result<T, E>;
