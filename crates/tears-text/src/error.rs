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
    /// A text-embeddings-inference server could not be used: an invalid URL or setting, an
    /// `/info` that does not describe a mean-pooled embedding model, or an answer of the wrong
    /// shape.
    #[error("TEI server {url}: {reason}")]
    Tei {
        /// The server's base URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A text-embeddings-inference server refused a request with a client error (4xx other than
    /// 429: 413 payload too large, 422 validation ...); retrying would not help.
    #[error(
        "TEI server {url}: {endpoint} answered HTTP {status}: {message}{}",
        error_type.as_deref().map(|t| format!(" (error_type {t})")).unwrap_or_default()
    )]
    TeiHttp {
        /// The server's base URL.
        url: String,
        /// The request (`GET /info`, `POST /embed`).
        endpoint: &'static str,
        /// The HTTP status.
        status: u16,
        /// The server's `error` field, or the start of its body when it is not TEI's error JSON.
        message: String,
        /// The server's `error_type` field, if any.
        error_type: Option<String>,
    },
    /// A text-embeddings-inference server kept failing (429, 5xx, timeouts, connection errors)
    /// until the attempts ran out.
    #[error("TEI server {url}: {endpoint} failed {attempts} times; last error: {last}")]
    TeiRetriesExhausted {
        /// The server's base URL.
        url: String,
        /// The request (`GET /info`, `POST /embed`).
        endpoint: &'static str,
        /// Attempts made, the first included.
        attempts: u32,
        /// The last failure.
        last: String,
    },
}

impl TextError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        TextError::Io { path: path.to_path_buf(), source }
    }
}

/// Result alias of this crate.
pub type Result<T, E = TextError> = std::result::Result<T, E>;
