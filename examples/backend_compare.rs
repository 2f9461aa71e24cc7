//! The same TEARS work on every backend this build has: `flex` (the default), `ndarray`, and
//! `cuda` when built with `--features cuda` and an NVIDIA GPU is present. For each, the median
//! time of a recommendation for an edited summary (encode + fuse + decode + top-20), of one
//! explanation (every leave-one-sentence-out variant), and of one TEARS training epoch on the
//! quick start's data (summary vectors from its embedding cache), then a table.
//!
//! Reuses the quick start's trained models (trains them first when missing: see `quickstart`).
//! On two cores with `ml1m-gpt4`, about a minute per CPU backend.
//!
//! ```text
//! cargo run --release --example backend_compare [--features ndarray,cuda] [-- --requests N]
//! ```

mod common;

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use burn::tensor::backend::AutodiffBackend;
use tears::backend::{BackendJob, BackendKind};
use tears::model::recommend::{Request, ScrutableModel};
use tears::model::{BackboneChoice, LoadOptions, TearsConfig, TearsTrainConfig, TrainInputs};
use tears::recommender::MissingProfile;
use tears::vae::RunOptions;

fn main() -> Result<()> {
    let (options, args) = common::Options::from_args(&["--requests"])?;
    let requests: usize =
        args.value("--requests").map(str::parse).transpose().context("--requests takes a number")?.unwrap_or(10);
    let setup = common::setup(&options)?;
    println!(
        "\n{} on {}: {} requests per backend (median), one TEARS epoch",
        setup.tears_dir().display(),
        setup.split.meta.dataset,
        requests.max(1)
    );
    let mut rows = Vec::new();
    for kind in BackendKind::ALL {
        let job = Measure { setup: &setup, requests: requests.max(1) };
        match tears::backend::run(kind, job) {
            Ok(Ok(m)) => rows.push((kind, Ok(m))),
            Ok(Err(e)) => rows.push((kind, Err(format!("failed: {e:#}")))),
            Err(e) => rows.push((kind, Err(e.to_string()))),
        }
    }
    println!("\n{:<10} {:>16} {:>16} {:>14}  what", "backend", "recommendation", "explanation", "TEARS epoch");
    for (kind, row) in &rows {
        match row {
            Ok(m) => println!(
                "{:<10} {:>16.1?} {:>16.1?} {:>14.2?}  {}",
                kind.name(),
                m.recommend,
                m.explain,
                m.epoch,
                kind.describe()
            ),
            Err(why) => println!("{:<10} {why}", kind.name()),
        }
    }
    Ok(())
}

struct Measured {
    recommend: Duration,
    explain: Duration,
    epoch: Duration,
}

struct Measure<'a> {
    setup: &'a common::Setup,
    requests: usize,
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

impl BackendJob for Measure<'_> {
    type Output = Result<Measured>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let setup = self.setup;
        // Inference: the model directory loaded on this backend, without the embedding cache, so
        // that every request runs the encoder.
        let loaded =
            tears::model::load::<B::InnerBackend>(&setup.tears_dir(), &setup.split, &LoadOptions::default(), &device)?;
        let model = ScrutableModel::new(loaded, setup.items());
        let text = setup.test_summary(0).context("a summary")?.to_string();
        let history = setup.test_history(0);
        let ask = |i: usize, explain: bool| Request {
            history: history.clone(),
            explain,
            ..Request::summary(format!("{text} Lately I want light comedies, take {i}."), 20)
        };
        model.recommend(&ask(0, true))?; // warm-up
        let mut recommend = Vec::new();
        let mut explain = Vec::new();
        for i in 0..self.requests {
            let t = Instant::now();
            model.recommend(&ask(2 * i + 1, false))?;
            recommend.push(t.elapsed());
            let t = Instant::now();
            model.recommend(&ask(2 * i + 2, true))?;
            explain.push(t.elapsed());
        }
        // Training: one epoch of TEARS on the same backbone, from cached summary vectors.
        let backbone = match model.model().backbone() {
            BackboneChoice::None => None,
            _ => Some(setup.dir.join(setup.backbone_kind.name())),
        };
        let inputs = TrainInputs {
            split: &setup.split,
            backbone_dir: backbone.as_deref(),
            encoder: Some(setup.encoder.clone()),
            summaries: Some(&setup.summaries),
            missing: MissingProfile::Error,
            embedding_cache: Some(setup.embedding_cache()),
        };
        let config = TearsConfig { backbone: model.model().backbone(), ..TearsConfig::default() };
        let train = TearsTrainConfig { epochs: 1, patience: None, ..TearsTrainConfig::default() };
        let run = RunOptions { out_dir: None, resume: false, progress: false, ..RunOptions::default() };
        let (_, report) = tears::model::fit::<B>(config, &train, &inputs, &run, &device)?;
        let epoch = report.train.history.first().map_or(0.0, |e| e.train_seconds);
        Ok(Measured { recommend: median(recommend), explain: median(explain), epoch: Duration::from_secs_f64(epoch) })
    }
}
