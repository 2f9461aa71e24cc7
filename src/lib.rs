//! tmp

/// Optimal-transport kernels (closed-form Gaussian W2, batched log-domain Sinkhorn).
pub use tears_ot as ot;
