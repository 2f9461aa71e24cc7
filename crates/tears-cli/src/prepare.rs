//! `tears prepare`: load a dataset, split it with an evaluation protocol, write the split.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use tears::data::split::{RandomHoldout, SummaryWindow, UserCount};
use tears::data::{DatasetName, PrepareOptions, Preprocess, Protocol, default_data_dir, prepare};

use crate::common::spinner;

/// The values of `--dataset`: the command-line face of [`DatasetName`], with the same aliases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DatasetArg {
    // MovieLens 100K.
    #[value(name = "ml100k", alias = "ml-100k")]
    Ml100k,
    // MovieLens 1M.
    #[value(name = "ml1m", alias = "ml-1m")]
    Ml1m,
    // ML-1M users with a shipped GPT-4 summary (summary-window protocol).
    #[value(name = "ml1m-gpt4")]
    Ml1mGpt4,
    // MovieLens latest / 20M / 25M.
    #[value(name = "ml-latest", aliases = ["ml-latest-small", "ml-20m", "ml-25m"])]
    MlLatest,
    // Netflix Prize.
    #[value(name = "netflix")]
    Netflix,
    // Goodbooks-10k.
    #[value(name = "goodbooks", alias = "goodbooks-10k")]
    Goodbooks,
    // The seeded synthetic dataset (no files needed).
    #[value(name = "synthetic")]
    Synthetic,
}

impl From<DatasetArg> for DatasetName {
    fn from(d: DatasetArg) -> Self {
        match d {
            DatasetArg::Ml100k => DatasetName::Ml100k,
            DatasetArg::Ml1m => DatasetName::Ml1m,
            DatasetArg::Ml1mGpt4 => DatasetName::Ml1mGpt4,
            DatasetArg::MlLatest => DatasetName::MlLatest,
            DatasetArg::Netflix => DatasetName::Netflix,
            DatasetArg::Goodbooks => DatasetName::Goodbooks,
            DatasetArg::Synthetic => DatasetName::Synthetic,
        }
    }
}

/// The values of `--protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProtocolArg {
    // Random evaluation users, a random fraction of their positives held out.
    RandomHoldout,
    // The TEARS protocol: evaluation users' ratings after their M most recent are held out.
    SummaryWindow,
}

impl From<ProtocolArg> for Protocol {
    /// The protocol with the library's default parameters.
    fn from(p: ProtocolArg) -> Self {
        match p {
            ProtocolArg::RandomHoldout => Protocol::RandomHoldout(RandomHoldout::default()),
            ProtocolArg::SummaryWindow => Protocol::SummaryWindow(SummaryWindow::default()),
        }
    }
}

#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// The dataset.
    #[arg(long, value_enum)]
    dataset: DatasetArg,
    /// Data root laid out like `shared/data` (ml-100k/, ml-1m/, summaries/, ...).
    /// Defaults to $TEARS_DATA_DIR, else ../shared/data.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Read the dataset's files from this folder instead of its standard place under --data-dir.
    #[arg(long)]
    path: Option<PathBuf>,
    /// Where to write the split (created if needed).
    #[arg(long)]
    out: PathBuf,
    /// The evaluation protocol (default: the dataset's benchmark protocol).
    #[arg(long, value_enum)]
    protocol: Option<ProtocolArg>,
    /// Seed of every random draw.
    #[arg(long, default_value_t = PrepareOptions::default().seed)]
    seed: u64,
    /// Skip malformed lines (and report how many) instead of failing on the first one.
    #[arg(long)]
    lenient: bool,
    /// Validation users: a count, or a fraction like 0.1 (random-holdout), a count (summary-window).
    #[arg(long)]
    validation_users: Option<f64>,
    /// Test users: as --validation-users.
    #[arg(long)]
    test_users: Option<f64>,
    /// summary-window: M, the number of most recent ratings that open the window.
    #[arg(long)]
    window: Option<usize>,
    /// summary-window: minimum held-out positives of an evaluation user.
    #[arg(long)]
    min_heldout: Option<usize>,
    /// Drop users with fewer ratings.
    #[arg(long, default_value_t = Preprocess::default().min_ratings_per_user)]
    min_ratings_per_user: usize,
    /// Drop items with fewer positives.
    #[arg(long, default_value_t = Preprocess::default().min_positives_per_item)]
    min_positives_per_item: usize,
    /// Iterate to a k-core of the positive interactions.
    #[arg(long)]
    k_core: Option<usize>,
}

fn user_count(v: f64) -> UserCount {
    if v.fract() == 0.0 && v >= 1.0 { UserCount::Count(v as usize) } else { UserCount::Fraction(v) }
}

/// The protocol to split with: `--protocol` (or the dataset's own) with the overrides applied.
fn protocol(name: DatasetName, a: &PrepareArgs) -> Protocol {
    let mut protocol = a.protocol.map_or_else(|| name.default_protocol(), Protocol::from);
    match &mut protocol {
        Protocol::RandomHoldout(RandomHoldout { validation_users, test_users, .. }) => {
            if let Some(v) = a.validation_users {
                *validation_users = user_count(v);
            }
            if let Some(v) = a.test_users {
                *test_users = user_count(v);
            }
        }
        Protocol::SummaryWindow(SummaryWindow {
            window,
            min_heldout,
            validation_users,
            test_users,
            fit_to_eligible,
        }) => {
            // Counts asked for explicitly are met or refused, never shrunk.
            if let Some(v) = a.validation_users {
                *validation_users = v as usize;
                *fit_to_eligible = false;
            }
            if let Some(v) = a.test_users {
                *test_users = v as usize;
                *fit_to_eligible = false;
            }
            if let Some(m) = a.window {
                *window = m;
            }
            if let Some(m) = a.min_heldout {
                *min_heldout = m;
            }
        }
    }
    protocol
}

pub fn run(a: PrepareArgs) -> Result<()> {
    let name = DatasetName::from(a.dataset);
    let protocol = protocol(name, &a);
    let options = PrepareOptions {
        protocol: Some(protocol.clone()),
        data_dir: a.data_dir.unwrap_or_else(default_data_dir),
        path: a.path,
        preprocess: Preprocess {
            min_ratings_per_user: a.min_ratings_per_user,
            min_positives_per_item: a.min_positives_per_item,
            k_core: a.k_core,
            ..Preprocess::default()
        },
        seed: a.seed,
        lenient: a.lenient,
        ..Default::default()
    };
    let started = Instant::now();
    let bar = spinner(format!("preparing {}", name.as_str()), true);
    let prepared = prepare(name, &options);
    bar.finish_and_clear();
    let prepared = prepared.with_context(|| format!("preparing {}", name.as_str()))?;
    let prepared_in = started.elapsed();
    prepared.split.save(&a.out).with_context(|| format!("writing the split to {}", a.out.display()))?;
    let stats = prepared.dataset.stats(prepared.split.meta.positive_above);
    let c = &prepared.split.meta.counts;
    println!(
        "{} ({}, seed {}): {} ratings from {} users on {} items{}",
        prepared.split.meta.dataset,
        prepared.split.meta.protocol,
        prepared.split.meta.seed,
        stats.events,
        stats.users,
        stats.rated_items,
        if prepared.dataset.skipped_records > 0 {
            format!(" ({} malformed records skipped)", prepared.dataset.skipped_records)
        } else {
            String::new()
        }
    );
    println!("  train_users         {:>9}", c.train_users);
    println!("  validation_users    {:>9}", c.validation_users);
    println!("  test_users          {:>9}", c.test_users);
    println!("  items               {:>9}", c.items);
    println!("  train_interactions  {:>9}  (positives; {} ratings in all)", c.train_interactions, c.train_ratings);
    println!("  validation_heldout  {:>9}", c.validation_heldout);
    println!("  test_heldout        {:>9}", c.test_heldout);
    if c.dropped_evaluation_users > 0 {
        println!("  dropped evaluation users (nothing to hold out): {}", c.dropped_evaluation_users);
    }
    if let Protocol::SummaryWindow(p) = &protocol
        && (c.validation_users + c.test_users + c.dropped_evaluation_users) < p.validation_users + p.test_users
    {
        println!(
            "  note: only {} users have at least {} positives before their window, fewer than the {} + {} asked; \
             a quarter of them went to each evaluation set (--validation-users / --test-users to choose)",
            c.eligible_evaluation_users, p.min_heldout, p.validation_users, p.test_users
        );
    }
    println!("wrote {} in {:.2?} (load + split {:.2?})", a.out.display(), started.elapsed(), prepared_in);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dataset_name_and_alias_means_what_the_library_says() {
        let mut names = Vec::new();
        for v in DatasetArg::value_variants() {
            let pv = v.to_possible_value().expect("visible");
            names.push(pv.get_name().to_string());
            for n in pv.get_name_and_aliases() {
                assert_eq!(n.parse::<DatasetName>().expect("library name"), DatasetName::from(*v), "{n}");
            }
            assert_eq!(DatasetName::from(*v).as_str(), pv.get_name());
        }
        assert_eq!(names, tears::data::named::DATASET_NAMES);
    }

    #[test]
    fn protocol_names_are_the_library_names() {
        for v in ProtocolArg::value_variants() {
            let name = v.to_possible_value().expect("visible").get_name().to_string();
            assert_eq!(Protocol::from_name(&name).expect("library name"), Protocol::from(*v));
        }
    }
}
