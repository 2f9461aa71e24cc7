//! Error type of the metrics crate.

/// Everything that can be wrong with the input of a metric.
///
/// Metrics never panic on bad input: mismatched lengths, item indices out of range, `k = 0`
/// and the like are reported through this type.
///
/// ```
/// use tears_metrics::{MetricsError, ndcg_at_k};
/// let err = ndcg_at_k(&[0, 1], &[1], 0).unwrap_err();
/// assert!(matches!(err, MetricsError::ZeroK));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricsError {
    /// A cut-off `k` of zero was asked for.
    #[error("k must be at least 1")]
    ZeroK,
    /// A metric at `k` was asked of ranked lists that hold only the top `available`.
    #[error("metric at k = {k} asked of ranked lists computed for k = {available}")]
    KTooLarge {
        /// The cut-off asked for.
        k: usize,
        /// The cut-off the lists were computed for.
        available: usize,
    },
    /// Two inputs that must agree in size do not.
    #[error("{what}: expected {expected}, found {found}")]
    SizeMismatch {
        /// Which quantity disagrees (for example "scores buffer length").
        what: &'static str,
        /// The size implied by the other inputs.
        expected: usize,
        /// The size given.
        found: usize,
    },
    /// An item index is not below the number of items.
    #[error("{what}: item {item} of list {list} is out of range for {n_items} items")]
    ItemOutOfRange {
        /// Which input holds the bad index (for example "held-out items").
        what: &'static str,
        /// The list (user, or item for genre lists) that holds it.
        list: usize,
        /// The offending index.
        item: usize,
        /// The number of items (or genres).
        n_items: usize,
    },
    /// A ranked list names the same item twice.
    #[error("ranked list names item {item} more than once")]
    DuplicateItem {
        /// The repeated item.
        item: usize,
    },
    /// A target item whose rank is asked for is masked as seen.
    #[error("target item {item} of user {user} is among the user's seen (masked) items")]
    TargetMasked {
        /// The user (row).
        user: usize,
        /// The target item.
        item: usize,
    },
    /// A CSR offsets array that is empty, decreasing or points past the indices.
    #[error("invalid CSR lists: {0}")]
    InvalidCsr(String),
    /// Reading a tensor's data failed or its element type cannot be read as `f32`.
    #[error("cannot read the score tensor: {0}")]
    TensorRead(String),
    /// Other invalid parameters (an empty list of cut-offs, ...).
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// Result alias of this crate.
pub type Result<T, E = MetricsError> = std::result::Result<T, E>;
