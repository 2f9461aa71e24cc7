//! tmp

/// Top-k selection and ranking metrics (re-export of `tears-metrics`).
pub use tears_metrics as metrics;
