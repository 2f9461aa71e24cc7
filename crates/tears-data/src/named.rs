//! The named datasets and benchmarks (`ml100k`, `ml1m-gpt4`, `synthetic`, ...): where their files
//! live under a data root, and which protocol prepares them.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::dataset::{Dataset, LoadOptions};
use crate::error::{DataError, Result};
use crate::loaders::Source;
use crate::preprocess::Preprocess;
use crate::split::{Protocol, Split, SplitConfig, make_split};
use crate::summaries::StoredSummaries;
use crate::synthetic::{SyntheticConfig, generate};

/// A dataset known by name to `tears prepare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetName {
    /// MovieLens 100K, `random-holdout`.
    Ml100k,
    /// MovieLens 1M (full or partial ratings), `random-holdout`.
    Ml1m,
    /// ML-1M users 1..2999 with a shipped GPT-4 summary, `summary-window` (M = 64, >= 10 held-out
    /// positives, 250 validation + 250 test users). The headline real benchmark.
    Ml1mGpt4,
    /// MovieLens latest / 20M / 25M, `random-holdout`.
    MlLatest,
    /// Netflix Prize, `random-holdout`.
    Netflix,
    /// Goodbooks-10k, `random-holdout`.
    Goodbooks,
    /// The seeded synthetic dataset, `random-holdout`.
    Synthetic,
}

/// All names, in the order the CLI lists them.
pub const DATASET_NAMES: [&str; 7] = ["ml100k", "ml1m", "ml1m-gpt4", "ml-latest", "netflix", "goodbooks", "synthetic"];

impl FromStr for DatasetName {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "ml100k" | "ml-100k" => DatasetName::Ml100k,
            "ml1m" | "ml-1m" => DatasetName::Ml1m,
            "ml1m-gpt4" => DatasetName::Ml1mGpt4,
            "ml-latest" | "ml-latest-small" | "ml-20m" | "ml-25m" => DatasetName::MlLatest,
            "netflix" => DatasetName::Netflix,
            "goodbooks" | "goodbooks-10k" => DatasetName::Goodbooks,
            "synthetic" => DatasetName::Synthetic,
            other => {
                return Err(DataError::Config(format!(
                    "unknown dataset {other:?}; expected one of {}",
                    DATASET_NAMES.join(", ")
                )));
            }
        })
    }
}

impl DatasetName {
    /// The canonical name.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetName::Ml100k => "ml100k",
            DatasetName::Ml1m => "ml1m",
            DatasetName::Ml1mGpt4 => "ml1m-gpt4",
            DatasetName::MlLatest => "ml-latest",
            DatasetName::Netflix => "netflix",
            DatasetName::Goodbooks => "goodbooks",
            DatasetName::Synthetic => "synthetic",
        }
    }

    /// The protocol this benchmark uses by default.
    pub fn default_protocol(self) -> Protocol {
        match self {
            DatasetName::Ml1mGpt4 => Protocol::from_name("summary-window"),
            _ => Protocol::from_name("random-holdout"),
        }
        .unwrap_or_else(|_| unreachable!("built-in protocol names"))
    }

    /// The loader and the folder (under a data root) of a real dataset; `None` for synthetic.
    pub fn source(self, root: &Path) -> Option<(Source, PathBuf)> {
        let pick = |names: &[&str]| {
            names.iter().map(|n| root.join(n)).find(|p| p.is_dir()).unwrap_or_else(|| root.join(names[0]))
        };
        Some(match self {
            DatasetName::Ml100k => (Source::Ml100k, pick(&["ml-100k"])),
            DatasetName::Ml1m | DatasetName::Ml1mGpt4 => (Source::Ml1m, pick(&["ml-1m"])),
            DatasetName::MlLatest => (Source::MlLatest, pick(&["ml-latest-small", "ml-latest", "ml-25m", "ml-20m"])),
            DatasetName::Netflix => (Source::Netflix, pick(&["netflix"])),
            DatasetName::Goodbooks => (Source::Goodbooks, pick(&["goodbooks-10k"])),
            DatasetName::Synthetic => return None,
        })
    }
}

/// The data root: `$TEARS_DATA_DIR` if set, else `../shared/data` from the current folder, else the
/// `shared/data` folder beside this workspace.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TEARS_DATA_DIR") {
        return PathBuf::from(dir);
    }
    let relative = PathBuf::from("../shared/data");
    if relative.is_dir() {
        return relative;
    }
    shared_data_dir()
}

/// The `shared/data` folder beside the workspace this crate was built in (or `$TEARS_DATA_DIR`).
/// Tests use it to find the real data and skip when it is absent.
pub fn shared_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TEARS_DATA_DIR") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

/// Options of [`prepare`].
#[derive(Debug, Clone)]
pub struct PrepareOptions {
    /// Root folder laid out like `shared/data` (`ml-100k/`, `ml-1m/`, `summaries/`, ...).
    pub data_dir: PathBuf,
    /// Read the dataset from this folder instead of its standard place under `data_dir`.
    pub path: Option<PathBuf>,
    /// Override the dataset's default protocol.
    pub protocol: Option<Protocol>,
    /// Preprocessing before the split.
    pub preprocess: Preprocess,
    /// Seed of the split (and of the synthetic generator).
    pub seed: u64,
    /// Skip malformed lines instead of failing.
    pub lenient: bool,
    /// Generator settings for `synthetic` (its seed is replaced by `seed`).
    pub synthetic: SyntheticConfig,
}

impl Default for PrepareOptions {
    fn default() -> Self {
        PrepareOptions {
            data_dir: default_data_dir(),
            path: None,
            protocol: None,
            preprocess: Preprocess::default(),
            seed: 0,
            lenient: false,
            synthetic: SyntheticConfig::default(),
        }
    }
}

/// A prepared benchmark: the loaded dataset, its split and (for `ml1m-gpt4`) the stored summaries.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The dataset as loaded (before preprocessing).
    pub dataset: Dataset,
    /// The split.
    pub split: Split,
    /// Stored summaries, when the benchmark ships them.
    pub summaries: Option<StoredSummaries>,
}

/// The shipped GPT-4 summaries file under `data_dir`.
pub fn gpt4_summaries_path(data_dir: &Path) -> Result<PathBuf> {
    let dir = data_dir.join("summaries/ml-1m");
    let found = crate::loaders::files_matching(&dir, "user_summary_gpt4", &[".json", ".json.xz", ".jsonl"])?;
    found.into_iter().next().ok_or_else(|| DataError::MissingFile {
        path: dir.join("user_summary_gpt4_all6016users_2023-12-12.json.xz"),
        dataset: "ml1m-gpt4 summaries".to_string(),
    })
}

/// Loads the dataset `name` (generating it for `synthetic`).
pub fn load(name: DatasetName, options: &PrepareOptions) -> Result<Dataset> {
    let load_options = LoadOptions { lenient: options.lenient };
    match name.source(&options.data_dir) {
        None => generate(&SyntheticConfig { seed: options.seed, ..options.synthetic.clone() }),
        Some((source, dir)) => source.load(options.path.as_deref().unwrap_or(&dir), &load_options),
    }
}

/// Loads and splits the dataset `name`.
///
/// ```
/// use tears_data::{prepare, DatasetName, PrepareOptions};
/// let p = prepare(DatasetName::Synthetic, &PrepareOptions::default())?;
/// assert!(p.split.meta.counts.test_users > 0);
/// # Ok::<(), tears_data::DataError>(())
/// ```
pub fn prepare(name: DatasetName, options: &PrepareOptions) -> Result<Prepared> {
    let mut dataset = load(name, options)?;
    let mut summaries = None;
    let mut eligible = None;
    if name == DatasetName::Ml1mGpt4 {
        let s = StoredSummaries::load(&gpt4_summaries_path(&options.data_dir)?)?;
        // The benchmark is users 1..2999 (the partial ratings file), also when the full file is used.
        let keep: Vec<bool> = dataset.users.iter().map(|&u| u <= 2999).collect();
        dataset.retain_events(|e| keep[e.user as usize]);
        eligible = Some(s.users());
        summaries = Some(s);
    }
    let split = make_split(
        &dataset,
        &SplitConfig {
            dataset: name.as_str().to_string(),
            protocol: options.protocol.clone().unwrap_or_else(|| name.default_protocol()),
            preprocess: options.preprocess.clone(),
            seed: options.seed,
            eligible_users: eligible,
        },
    )?;
    Ok(Prepared { dataset, split, summaries })
}
