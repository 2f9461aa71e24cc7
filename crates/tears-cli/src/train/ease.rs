//! `tears train ease`.

use anyhow::Result;
use clap::Args;
use tears::baselines::{Ease, EaseConfig, Fit, Recommender};

use super::{TrainTarget, fit_and_save};

/// Bytes in a GiB.
const GIB: f64 = (1u64 << 30) as f64;

#[derive(Debug, Args)]
pub struct EaseArgs {
    #[command(flatten)]
    target: TrainTarget,
    /// Use this lambda instead of choosing one on validation NDCG.
    #[arg(long)]
    lambda: Option<f64>,
    /// The lambda grid searched on validation NDCG, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = EaseConfig::default().lambdas)]
    lambdas: Vec<f64>,
    /// Refuse catalogues whose items² × 8 bytes exceed this many GiB.
    #[arg(long, default_value_t = EaseConfig::default().memory_limit_bytes as f64 / GIB)]
    memory_limit_gib: f64,
}

pub fn run(a: EaseArgs) -> Result<()> {
    if !(a.memory_limit_gib.is_finite() && a.memory_limit_gib > 0.0) {
        anyhow::bail!("--memory-limit-gib must be positive, got {}", a.memory_limit_gib);
    }
    let config = EaseConfig {
        lambdas: a.lambda.map_or(a.lambdas, |l| vec![l]),
        memory_limit_bytes: (a.memory_limit_gib * GIB) as u64,
        ..EaseConfig::default()
    };
    fit_and_save(&a.target, "ease", |split, bar| {
        let model = Ease::fit(split, &config, a.target.seed)?;
        for t in model.trials() {
            let line = match t.validation_ndcg {
                Some(ndcg) => format!(
                    "  lambda {:>8}  validation ndcg@{} {:.4}  ({:.2}s)",
                    t.lambda, config.select_k, ndcg, t.seconds
                ),
                None => format!("  lambda {:>8}  ({:.2}s)", t.lambda, t.seconds),
            };
            bar.suspend(|| println!("{line}"));
        }
        Ok(Box::new(model) as Box<dyn Recommender>)
    })
}
