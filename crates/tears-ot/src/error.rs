//! Error type of the optimal-transport crate.

/// Everything that can go wrong when calling the optimal-transport kernels.
///
/// The kernels never panic on user input: shapes, weights, non-finite values and configuration
/// are validated first and reported through this type.
///
/// ```
/// use tears_ot::OtError;
///
/// let err = OtError::NonFinite { what: "x" };
/// assert_eq!(err.to_string(), "x contains NaN or infinite values");
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OtError {
    /// Two inputs whose shapes do not fit together, or an empty input.
    #[error("shape mismatch: {what}: expected {expected}, found {found:?}")]
    Shape {
        /// Which input (or pair of inputs) is wrong.
        what: &'static str,
        /// What was expected, in words.
        expected: String,
        /// The shape that was found.
        found: Vec<usize>,
    },
    /// An input holds NaN or an infinite value.
    #[error("{what} contains NaN or infinite values")]
    NonFinite {
        /// Which input.
        what: &'static str,
    },
    /// Negative weights, weights summing to zero, or (with strict weights) weights not summing to 1.
    #[error("invalid weights {what}: {message}")]
    Weights {
        /// Which weight vector (`a` or `b`).
        what: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// An invalid solver setting (a non-positive eps, a zero iteration budget, ...).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The dense transport plan was requested but exceeds the configured memory limit.
    #[error(
        "transport plan of {elements} elements ({bytes} bytes) exceeds the limit of {limit} bytes; \
         raise `max_plan_bytes` or do not request the plan"
    )]
    PlanTooLarge {
        /// Number of plan entries (batch × n × m).
        elements: usize,
        /// Bytes the plan would need.
        bytes: usize,
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The iterations produced non-finite potentials even in the pure log-domain fallback
    /// (typically an eps so small that the costs divided by eps overflow the float type).
    #[error("numerical failure: {0}")]
    Numerical(String),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, OtError>;
