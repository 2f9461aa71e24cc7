//! `tears train <model>`: fit a baseline or train a VAE backbone on a split and save it to a model
//! directory.
//!
//! One subcommand per model kind. Adding a kind takes a module with its `Args` struct (flattening
//! [`TrainTarget`], and [`ScheduleArgs`] for models trained by epochs) and its `run`, plus one
//! variant of [`TrainModel`] and its arm in [`run`].

mod backbone;
mod ease;
mod pop;
pub mod scrutable;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Arg, Args, Subcommand};
use indicatif::ProgressBar;
use tears::baselines::{Recommender, save_model};
use tears::data::Split;
use tears::vae::{BackboneKind, CollectiveOptions, CollectivePeer, TrainConfig, Workers};

use crate::common::{load_split, spinner};

#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(subcommand)]
    model: TrainModel,
}

/// The model kinds `tears train` knows, one subcommand each.
#[derive(Debug, Subcommand)]
enum TrainModel {
    /// EASE (Steck 2019): the closed-form item-item linear autoencoder, lambda chosen on validation
    /// NDCG.
    Ease(ease::EaseArgs),
    /// Popularity: every user gets the items with the most training positives.
    #[command(alias = "popularity")]
    Pop(pop::PopArgs),
    /// Mult-DAE (Liang et al. 2018): a denoising autoencoder with a multinomial likelihood.
    #[command(
        name = BackboneKind::MultDae.name(),
        mut_args(ScheduleArgs::defaults_in_help(BackboneKind::MultDae.default_train()))
    )]
    MultDae(backbone::BackboneArgs),
    /// Mult-VAE (Liang et al. 2018): a variational autoencoder with a multinomial likelihood.
    #[command(
        name = BackboneKind::MultVae.name(),
        mut_args(ScheduleArgs::defaults_in_help(BackboneKind::MultVae.default_train()))
    )]
    MultVae(backbone::BackboneArgs),
    /// RecVAE (Shenbin et al. 2020): composite prior, alternating encoder and decoder updates.
    #[command(
        name = BackboneKind::RecVae.name(),
        mut_args(ScheduleArgs::defaults_in_help(BackboneKind::RecVae.default_train()))
    )]
    RecVae(backbone::BackboneArgs),
    /// MacridVAE (Ma et al. 2019): disentangled concept latents.
    #[command(
        name = BackboneKind::MacridVae.name(),
        mut_args(ScheduleArgs::defaults_in_help(BackboneKind::MacridVae.default_train()))
    )]
    MacridVae(backbone::MacridArgs),
    /// TEARS: an editable summary text through a sentence encoder, alone (`--backbone none`,
    /// TEARS Base) or fused with a trained backbone (alpha = 1: text only).
    Tears(scrutable::ScrutableArgs),
    /// GERS: the user's genre vector, alone (`--backbone none`) or fused with a trained backbone.
    Gers(scrutable::ScrutableArgs),
}

pub fn run(a: TrainArgs) -> Result<()> {
    match a.model {
        TrainModel::Ease(a) => ease::run(a),
        TrainModel::Pop(a) => pop::run(a),
        TrainModel::MultDae(a) => backbone::run(BackboneKind::MultDae, a, |m| m),
        TrainModel::MultVae(a) => backbone::run(BackboneKind::MultVae, a, |m| m),
        TrainModel::RecVae(a) => backbone::run(BackboneKind::RecVae, a, |m| m),
        TrainModel::MacridVae(a) => {
            let (common, macrid) = a.split();
            backbone::run(BackboneKind::MacridVae, common, |m| macrid.apply(m))
        }
        TrainModel::Tears(a) => scrutable::run(tears::model::ProfileSource::Text, a),
        TrainModel::Gers(a) => scrutable::run(tears::model::ProfileSource::Genres, a),
    }
}

/// What every model kind trains on and where it goes.
#[derive(Debug, Args)]
struct TrainTarget {
    /// Split directory written by `tears prepare`.
    #[arg(long)]
    split: PathBuf,
    /// Model directory to write (created if needed).
    #[arg(long)]
    out: PathBuf,
    /// Seed of every random draw (recorded in the manifest).
    #[arg(long, default_value_t = TrainConfig::default().seed)]
    seed: u64,
    /// Hide the progress bar.
    #[arg(long)]
    no_progress: bool,
}

/// Data-parallel training: this process as one of `--workers N` (burn-collective over WebSocket).
#[derive(Debug, Args)]
struct WorkerArgs {
    /// Train as one of N data-parallel worker processes, each taking 1/N of every batch; start
    /// all N with the same flags and a different --rank.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// This worker's index in 0..N, or `auto`: Slurm's SLURM_PROCID, else RANK (as torchrun sets it).
    #[arg(long, default_value = "auto")]
    rank: String,
    /// HOST:PORT of worker 0, which listens there for the others. Default: MASTER_ADDR:MASTER_PORT
    /// when set, else 127.0.0.1:29500.
    #[arg(long)]
    coordinator: Option<String>,
}

impl WorkerArgs {
    /// The workers these flags describe ([`Workers::Solo`] for `--workers 1`).
    fn workers(&self) -> Result<Workers> {
        self.resolve(&|name| std::env::var(name).ok())
    }

    fn resolve(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Workers> {
        if self.workers <= 1 {
            return Ok(Workers::Solo);
        }
        let rank = match self.rank.as_str() {
            "auto" => {
                let (name, value) = ["SLURM_PROCID", "RANK"]
                    .iter()
                    .find_map(|n| env(n).map(|v| (*n, v)))
                    .context("--rank auto: neither SLURM_PROCID nor RANK is set; give --rank R")?;
                value
                    .trim()
                    .parse::<usize>()
                    .with_context(|| format!("--rank auto: {name}={value} is not a worker index"))?
            }
            r => r.parse::<usize>().with_context(|| format!("--rank {r}: give a worker index or `auto`"))?,
        };
        let coordinator = match (&self.coordinator, env("MASTER_ADDR"), env("MASTER_PORT")) {
            (Some(c), _, _) => c.clone(),
            (None, Some(addr), Some(port)) => format!("{addr}:{port}"),
            _ => "127.0.0.1:29500".to_string(),
        };
        let address = std::net::ToSocketAddrs::to_socket_addrs(&coordinator)
            .with_context(|| format!("--coordinator {coordinator}: not a HOST:PORT"))?
            .find(std::net::SocketAddr::is_ipv4)
            .with_context(|| format!("--coordinator {coordinator}: no IPv4 address"))?;
        Ok(Workers::Collective(CollectivePeer::new(CollectiveOptions::new(rank, self.workers, address)?)))
    }
}

impl TrainTarget {
    /// The run options of a model trained by epochs into `--out`: resumed unless `restart`, on
    /// the workers `workers` describes.
    fn run_options(&self, restart: bool, workers: &WorkerArgs) -> Result<tears::vae::RunOptions> {
        Ok(tears::vae::RunOptions {
            out_dir: Some(self.out.clone()),
            resume: !restart,
            progress: !self.no_progress,
            workers: workers.workers()?,
        })
    }
}

/// What a worker other than 0 prints instead of "wrote OUT": worker 0 wrote the model directory.
/// Returns whether this process is such a worker.
fn report_secondary_worker(workers: &Workers, out: &std::path::Path) -> bool {
    use tears::vae::GradientSync;
    let rank = workers.rank();
    if rank > 0 {
        println!(
            "worker {rank} of {}: worker 0 wrote {} (this worker's checkpoints: {})",
            workers.workers(),
            out.display(),
            out.join("workers").join(rank.to_string()).display()
        );
    }
    rank > 0
}

/// The schedule of a model trained by epochs. A flag left out takes the model's reference value,
/// which `--help` shows (see [`ScheduleArgs::defaults_in_help`]).
#[derive(Debug, Args)]
struct ScheduleArgs {
    /// Epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// Stop after this many epochs without a better validation NDCG (0: never).
    #[arg(long)]
    patience: Option<usize>,
    /// Users per mini-batch.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Adam learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// The cut-off of the validation NDCG that selects the best epoch.
    #[arg(long)]
    select_k: Option<usize>,
}

impl ScheduleArgs {
    /// `defaults` with the flags that were given, and `seed`.
    fn apply(&self, defaults: TrainConfig, seed: u64) -> TrainConfig {
        TrainConfig {
            epochs: self.epochs.unwrap_or(defaults.epochs),
            batch_size: self.batch_size.unwrap_or(defaults.batch_size),
            lr: self.lr.unwrap_or(defaults.lr),
            patience: self.patience.map_or(defaults.patience, |p| (p > 0).then_some(p)),
            select_k: self.select_k.unwrap_or(defaults.select_k),
            seed,
            ..defaults
        }
    }

    /// For `#[command(mut_args(..))]` on a model's subcommand: appends `defaults`' values to the
    /// help of the schedule flags, as clap shows a `default_value`.
    fn defaults_in_help(defaults: TrainConfig) -> impl FnMut(Arg) -> Arg {
        move |arg| {
            let value = match arg.get_id().as_str() {
                "epochs" => defaults.epochs.to_string(),
                "patience" => defaults.patience.unwrap_or(0).to_string(),
                "batch_size" => defaults.batch_size.to_string(),
                "lr" => defaults.lr.to_string(),
                "select_k" => defaults.select_k.to_string(),
                _ => return arg,
            };
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            arg.help(format!("{help} [default: {value}]"))
        }
    }
}

/// Prints what a run of the training loop did: the resume point, the epochs with their mean
/// training and validation times (after `prefix`), and the best epoch (its line ending in
/// `best_suffix`).
fn print_epochs(report: &tears::vae::TrainReport, seconds: f64, select_k: usize, prefix: &str, best_suffix: &str) {
    if report.resumed_after > 0 {
        println!("resumed after epoch {}", report.resumed_after);
    }
    let new: Vec<_> = report.history.iter().filter(|e| e.epoch > report.resumed_after).collect();
    let n = new.len().max(1) as f64;
    println!(
        "{prefix}{} epochs{} in {seconds:.1}s ({:.3}s training + {:.3}s validation per epoch)",
        report.history.len(),
        if report.summary.stopped_early { " (stopped early)" } else { "" },
        new.iter().map(|e| e.train_seconds).sum::<f64>() / n,
        new.iter().map(|e| e.eval_seconds).sum::<f64>() / n
    );
    match report.summary.best_validation_ndcg {
        Some(v) => println!("best epoch {}: validation ndcg@{select_k} {v:.4}{best_suffix}", report.summary.best_epoch),
        None => println!("no validation users: kept the last epoch"),
    }
}

/// Fits a closed-form model behind a spinner (`fit` prints through the bar it is given), then
/// saves it to `--out` and reports.
fn fit_and_save(
    t: &TrainTarget,
    name: &str,
    fit: impl FnOnce(&Split, &ProgressBar) -> Result<Box<dyn Recommender>>,
) -> Result<()> {
    let split = load_split(&t.split)?;
    let bar = spinner(format!("fitting {name} on {} ({} items)", split.meta.dataset, split.n_items()), !t.no_progress);
    let started = Instant::now();
    let fitted = fit(&split, &bar);
    bar.finish_and_clear();
    let model = fitted.with_context(|| format!("fitting {name} on {}", t.split.display()))?;
    let fit_seconds = started.elapsed().as_secs_f64();
    println!("fitted {} on {} in {:.2}s", model.kind(), split.meta.dataset, fit_seconds);
    println!("  hyper-parameters: {}", model.hyper_parameters());
    let manifest = save_model(model.as_ref(), &split, t.seed, Some(fit_seconds), &t.out)
        .with_context(|| format!("saving the model to {}", t.out.display()))?;
    println!("wrote {} (vocabulary {}, {} items)", t.out.display(), manifest.vocabulary_hash, manifest.n_items);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::FromArgMatches;

    fn parse(args: &[&str]) -> TrainArgs {
        let cmd = TrainArgs::augment_args(clap::Command::new("train"));
        let matches = cmd.try_get_matches_from(args).expect("parse");
        TrainArgs::from_arg_matches(&matches).expect("args")
    }

    #[test]
    fn every_backbone_has_its_subcommand_and_reference_schedule() {
        let cmd = TrainArgs::augment_args(clap::Command::new("train"));
        for kind in BackboneKind::ALL {
            let sub = cmd.find_subcommand(kind.name()).expect("subcommand");
            let help = |id: &str| {
                sub.get_arguments().find(|a| a.get_id() == id).and_then(|a| a.get_help()).expect("help").to_string()
            };
            let d = kind.default_train();
            assert!(help("epochs").ends_with(&format!("[default: {}]", d.epochs)), "{kind}");
            assert!(help("lr").ends_with(&format!("[default: {}]", d.lr)), "{kind}");
        }
    }

    #[test]
    fn worker_flags_read_the_rank_and_coordinator_from_the_scheduler() {
        let TrainModel::MultVae(a) = parse(&["train", "multvae", "--split", "s", "--out", "o", "--workers", "2"]).model
        else {
            panic!("not multvae")
        };
        let options = |env: &[(&str, &str)]| {
            let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            a.workers.resolve(&|name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())).map(|w| match w {
                Workers::Collective(p) => p.options().clone(),
                Workers::Solo => panic!("two workers resolved to one"),
            })
        };
        let slurm = options(&[("SLURM_PROCID", "1"), ("RANK", "0")]).expect("slurm");
        assert_eq!((slurm.rank, slurm.workers, slurm.coordinator.port()), (1, 2, 29500));
        let torchrun = options(&[("RANK", "0"), ("MASTER_ADDR", "10.1.2.3"), ("MASTER_PORT", "4000")]).expect("rank");
        assert_eq!((torchrun.rank, torchrun.coordinator.to_string()), (0, "10.1.2.3:4000".to_string()));
        let none = options(&[]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(none.contains("neither SLURM_PROCID nor RANK"), "{none}");
        assert!(options(&[("RANK", "2")]).is_err(), "rank 2 of 2");
    }

    #[test]
    fn the_schedule_falls_back_to_the_reference_one() {
        let TrainModel::RecVae(a) = parse(&["train", "recvae", "--split", "s", "--out", "o", "--epochs", "3"]).model
        else {
            panic!("not recvae")
        };
        let d = BackboneKind::RecVae.default_train();
        let t = a.schedule.apply(d.clone(), a.target.seed);
        assert_eq!(t, TrainConfig { epochs: 3, ..d.clone() });
        let TrainModel::MultVae(a) =
            parse(&["train", "multvae", "--split", "s", "--out", "o", "--patience", "0"]).model
        else {
            panic!("not multvae")
        };
        assert_eq!(a.schedule.apply(d.clone(), 7), TrainConfig { patience: None, seed: 7, ..d });
    }
}
