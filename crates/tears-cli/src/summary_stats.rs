//! `tears summary-stats`: are the summaries user-specific? Length in words, and word-level edit
//! distance and BLEU between pairs of different users' summaries.

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use tears::summarize::stats::{SummaryStats, summary_stats};

use crate::common::{load_split, write_json};

#[derive(Debug, Args)]
pub struct SummaryStatsArgs {
    /// The summaries (JSON object, `tears summarize` JSONL; plain, .gz or .xz).
    #[arg(long)]
    summaries: PathBuf,
    /// Only the users of this split (train, validation and test).
    #[arg(long)]
    split: Option<PathBuf>,
    /// Pairs of different users' summaries to compare (every pair when there are fewer).
    #[arg(long, default_value_t = 2000)]
    pairs: usize,
    /// Seed of the pair sample.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also write the statistics as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// The markdown table of `s` (one row), headed like the talk's table.
pub fn table(s: &SummaryStats, name: &str) -> String {
    let w = &s.words;
    format!(
        "| summaries | n | words mean ± std | min | p10 | median | p90 | max | edit distance (words) | BLEU | pairs |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n\
         | {name} | {} | {:.2} ± {:.2} | {} | {} | {} | {} | {} | {:.2} ± {:.2} | {:.3} ± {:.3} | {} |\n",
        s.summaries,
        w.mean,
        w.std,
        w.min,
        w.p10,
        w.median,
        w.p90,
        w.max,
        s.edit_distance.mean,
        s.edit_distance.std,
        s.bleu.mean,
        s.bleu.std,
        s.bleu.pairs
    )
}

pub fn run(a: SummaryStatsArgs) -> Result<()> {
    if a.pairs == 0 {
        anyhow::bail!("--pairs must be at least 1");
    }
    let stored = tears::data::StoredSummaries::load(&a.summaries)
        .with_context(|| format!("reading the summaries in {}", a.summaries.display()))?;
    let keep: Option<HashSet<u64>> = match &a.split {
        Some(dir) => {
            let split = load_split(dir)?;
            Some(split.train.users.iter().chain(split.validation.users()).chain(split.test.users()).copied().collect())
        }
        None => None,
    };
    let texts: Vec<&str> =
        stored.in_file_order().filter(|(u, _)| keep.as_ref().is_none_or(|k| k.contains(u))).map(|(_, t)| t).collect();
    let Some(stats) = summary_stats(&texts, a.pairs, a.seed) else {
        anyhow::bail!(
            "{} has {} summaries of the users asked for; the statistics need at least 2",
            a.summaries.display(),
            texts.len()
        );
    };
    let name = a.summaries.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    print!("{}", table(&stats, &name));
    if let Some(path) = &a.json {
        write_json(path, &stats)?;
    }
    Ok(())
}
