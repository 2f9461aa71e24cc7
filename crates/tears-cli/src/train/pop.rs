//! `tears train pop`.

use anyhow::Result;
use clap::Args;
use tears::baselines::{Fit, Popularity, Recommender};

use super::{TrainTarget, fit_and_save};

#[derive(Debug, Args)]
pub struct PopArgs {
    #[command(flatten)]
    target: TrainTarget,
}

pub fn run(a: PopArgs) -> Result<()> {
    fit_and_save(&a.target, "pop", |split, _| {
        Ok(Box::new(Popularity::fit(split, &(), a.target.seed)?) as Box<dyn Recommender>)
    })
}
