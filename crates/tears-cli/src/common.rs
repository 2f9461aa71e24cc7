//! Helpers shared by the subcommands: loading a split, the `--backend` flag, progress display and
//! atomic JSON output.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use tears::backend::BackendKind;
use tears::data::Split;
use tears::data::shard::{Shard, ShardKind, ShardSpec, ShardStamp};

/// Loads the split directory `dir` (written by `tears prepare`), naming it in the error.
pub fn load_split(dir: &Path) -> Result<Split> {
    Split::load(dir).with_context(|| format!("loading the split in {}", dir.display()))
}

/// The values of `--backend`: the command-line face of [`BackendKind`] (the library type stays
/// free of clap).
///
/// The value enums of this crate document their variants with plain comments: doc comments would
/// become per-value help and switch `--help` to its long layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    // burn-flex, the portable CPU backend.
    #[value(alias = "cpu")]
    Flex,
    // burn-ndarray, the reference CPU backend.
    Ndarray,
    // CUDA on an NVIDIA GPU.
    #[value(alias = "gpu")]
    Cuda,
}

impl From<BackendArg> for BackendKind {
    fn from(b: BackendArg) -> Self {
        match b {
            BackendArg::Flex => BackendKind::Flex,
            BackendArg::Ndarray => BackendKind::Ndarray,
            BackendArg::Cuda => BackendKind::Cuda,
        }
    }
}

impl From<BackendKind> for BackendArg {
    fn from(k: BackendKind) -> Self {
        match k {
            BackendKind::Flex => BackendArg::Flex,
            BackendKind::Ndarray => BackendArg::Ndarray,
            BackendKind::Cuda => BackendArg::Cuda,
        }
    }
}

impl Default for BackendArg {
    /// The library's default backend ([`BackendKind::default`]).
    fn default() -> Self {
        BackendKind::default().into()
    }
}

/// `--backend`, flattened into every subcommand that runs a burn model.
#[derive(Debug, Clone, Args)]
pub struct BackendFlag {
    /// The burn backend that runs neural networks (baselines need none).
    #[arg(long, value_enum, ignore_case = true, default_value_t = BackendArg::default())]
    pub backend: BackendArg,
}

impl BackendFlag {
    /// The chosen backend.
    pub fn kind(&self) -> BackendKind {
        self.backend.into()
    }

    /// The chosen backend, after telling the user on stderr what a first run on it costs that
    /// later runs do not (`BackendKind::first_run_note`): for the long jobs, training and
    /// encoding, so that a minute of CUDA autotune is not taken for a hang.
    pub fn kind_announced(&self) -> BackendKind {
        let kind = self.kind();
        if let Some(note) = kind.first_run_note() {
            eprintln!("note: {note}");
        }
        kind
    }
}

/// `--shard` and `--shards`, flattened into every command that can run one shard of a batch job.
#[derive(Debug, Clone, Args)]
pub struct ShardArgs {
    /// Run one shard of N: `I/N` (users whose id hashes to I of N; 0 <= I < N), or `auto` to
    /// read a Slurm job array's or a Kubernetes Indexed Job's variables. Shards are disjoint and
    /// cover everyone; `tears merge` joins their outputs.
    #[arg(long, value_name = "I/N|auto", value_parser = parse_shard)]
    pub shard: Option<ShardSpec>,
    /// The number of shards, for `--shard auto` under Kubernetes (which does not tell a pod how
    /// many completions its Job has); checked against Slurm's count.
    #[arg(long, requires = "shard", value_parser = clap::value_parser!(u32).range(1..))]
    pub shards: Option<u32>,
}

fn parse_shard(s: &str) -> Result<ShardSpec, String> {
    s.parse().map_err(|e: tears::data::shard::ShardError| e.to_string())
}

impl ShardArgs {
    /// The shard this process runs (the whole when `--shard` is absent).
    pub fn resolve(&self) -> Result<Shard> {
        match self.shard {
            None => Ok(Shard::WHOLE),
            Some(spec) => Ok(spec.resolve(self.shards)?),
        }
    }
}

/// Writes the shard stamp of `kind` drawn from `source` beside `out`, unless `shard` is the whole.
pub fn write_stamp(out: &Path, shard: Shard, kind: ShardKind, source: String) -> Result<()> {
    if !shard.is_whole() {
        ShardStamp::new(kind, shard, source).write_beside(out)?;
    }
    Ok(())
}

/// A spinner showing `message` while something without a known length runs; hidden when
/// `visible` is false (indicatif also hides it when stderr is not a terminal).
pub fn spinner(message: impl Into<String>, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_message(message.into());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// A progress bar of `len` steps drawn with the indicatif `template`; hidden when `visible` is
/// false or stderr is not a terminal.
pub fn progress_bar(len: u64, template: &str, visible: bool) -> ProgressBar {
    use std::io::IsTerminal;
    if !visible || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

/// Writes `value` as pretty JSON (and a final newline) to `path` atomically: readers see the old
/// file or the whole new one.
pub fn write_json<T: burn::serde::Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    let json = serde_json::to_vec_pretty(value)?;
    tears::data::io::write_atomic(path, |w| {
        w.write_all(&json)?;
        w.write_all(b"\n")
    })
    .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_backend_name_and_alias_means_what_the_library_says() {
        let mut names = Vec::new();
        for v in BackendArg::value_variants() {
            let pv = v.to_possible_value().expect("visible");
            names.push(pv.get_name().to_string());
            for n in pv.get_name_and_aliases() {
                assert_eq!(n.parse::<BackendKind>().expect("library name"), BackendKind::from(*v), "{n}");
            }
        }
        assert_eq!(names, BackendKind::ALL.map(|k| k.name()));
        for k in BackendKind::ALL {
            assert_eq!(BackendKind::from(BackendArg::from(k)), k);
        }
    }
}
