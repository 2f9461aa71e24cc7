//! The error type shared by every model crate: fitting, scoring, saving, loading, evaluating.

use std::path::PathBuf;

/// Everything that can go wrong while fitting, scoring, saving, loading or evaluating a model.
///
/// Errors that come from a file name the file; nothing in this crate panics on user data.
///
/// ```
/// use tears_core::ModelError;
/// let err = ModelError::TooLarge { items: 100_000, bytes: 80_000_000_000, limit: 8 << 30 };
/// assert!(err.to_string().contains("100000 items"));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A data error (reading a split, building a matrix, writing a file).
    #[error(transparent)]
    Data(#[from] tears_data::DataError),
    /// A metrics error (bad sizes or item indices given to the evaluator).
    #[error(transparent)]
    Metrics(#[from] tears_metrics::MetricsError),
    /// The dense item × item matrices of EASE would not fit in the memory limit.
    #[error(
        "EASE needs an item × item matrix of {items} items: {bytes} bytes (items² × 8) exceed the memory limit of {limit} bytes; raise the limit or reduce the catalogue"
    )]
    TooLarge {
        /// Number of items.
        items: usize,
        /// items² × 8.
        bytes: u128,
        /// The configured limit in bytes.
        limit: u64,
    },
    /// A numerical failure (a Gram matrix that is not positive definite, a non-finite weight).
    #[error("numerical failure: {0}")]
    Numerical(String),
    /// Invalid parameters (an empty lambda grid, a negative lambda, a zero batch size, ...).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A model directory's manifest or weights are malformed.
    #[error("{}: {message}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// Malformed JSON in a model file.
    #[error("{}: invalid JSON: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// A model trained on one item vocabulary was loaded against a split with another.
    #[error("{0}")]
    VocabularyMismatch(Box<VocabularyMismatch>),
    /// Evaluated users without the profile (summary, genre vector) the model reads.
    #[error(
        "{missing} of {users} users have no {what}{}: e.g. user(s) {examples}; supply them, or choose `--missing-summary empty` or `--missing-summary skip`",
        source_name.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default()
    )]
    MissingProfiles {
        /// What is missing (`summary`, `genre vector`).
        what: &'static str,
        /// How many users lack one.
        missing: usize,
        /// Users asked for.
        users: usize,
        /// Up to five of the users, comma-separated.
        examples: String,
        /// The file the profiles came from, when known.
        source_name: Option<PathBuf>,
    },
    /// A model kind that this loader does not know.
    #[error("{}: unknown model kind {kind:?} (known here: {known})", path.display())]
    UnknownKind {
        /// The manifest.
        path: PathBuf,
        /// The kind it names.
        kind: String,
        /// The kinds this loader can load.
        known: String,
    },
}

/// The details of [`ModelError::VocabularyMismatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VocabularyMismatch {
    /// The model directory.
    pub dir: PathBuf,
    /// Dataset name recorded in the model.
    pub model_dataset: String,
    /// Vocabulary hash recorded in the model (hex).
    pub model_hash: String,
    /// Number of items recorded in the model.
    pub model_items: usize,
    /// Dataset name of the split.
    pub split_dataset: String,
    /// Vocabulary hash of the split (hex).
    pub split_hash: String,
    /// Number of items of the split.
    pub split_items: usize,
}

impl std::fmt::Display for VocabularyMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "model in {} was trained on dataset {:?} with item vocabulary {} ({} items), but the split {:?} has vocabulary {} ({} items); evaluate it on the split it was trained on",
            self.dir.display(),
            self.model_dataset,
            self.model_hash,
            self.model_items,
            self.split_dataset,
            self.split_hash,
            self.split_items
        )
    }
}

/// Result alias of this crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
