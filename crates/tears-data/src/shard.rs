//! Sharded batch jobs: a deterministic partition of users into `N` disjoint shards, chosen on
//! the command line (`--shard I/N`) or read from a scheduler's environment (`--shard auto`),
//! and the stamp each shard's output carries so that a merge can check that the shards are all
//! there, once each.
//!
//! A user's shard depends only on the user id and `N`: a fixed 64-bit mix of the id (the
//! SplitMix64 finalizer), reduced modulo `N`. It does not depend on which machine runs the
//! shard, on the order the users are listed in, or on the other shards, so shards are disjoint
//! and together cover every user. The mix is part of the file formats: it never changes.
//!
//! ```
//! use tears_data::shard::Shard;
//!
//! let shards: Vec<Shard> = (0..3).map(|i| Shard::new(i, 3).expect("ok")).collect();
//! for user in 0..1000u64 {
//!     // Exactly one shard holds each user.
//!     assert_eq!(shards.iter().filter(|s| s.contains(user)).count(), 1);
//! }
//! assert_eq!("1/3".parse::<Shard>().expect("ok"), shards[1]);
//! assert!("3/3".parse::<Shard>().is_err());
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Everything that can go wrong choosing shards or checking that shard outputs cover everyone.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// A `--shard` value that is not `I/N` with `0 <= I < N`.
    #[error("invalid shard {given:?}: expected I/N with 0 <= I < N (for example 0/4), or auto")]
    Syntax {
        /// What was given.
        given: String,
    },
    /// `--shard auto` without a scheduler's variables, or with inconsistent ones.
    #[error("--shard auto: {0}")]
    Environment(String),
    /// A shard stamp that cannot be read or written.
    #[error("{}: {message}", path.display())]
    Stamp {
        /// The stamp file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Shard outputs that do not form one whole: shards missing, present twice, of different
    /// counts or of different kinds, or a user in the wrong shard.
    #[error("the shards do not form one whole: {0}")]
    Cover(String),
}

/// One shard of `count`: the users whose id mixes to `index` modulo `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shard {
    /// The shard's index, `0..count`.
    pub index: u32,
    /// How many shards there are (at least 1).
    pub count: u32,
}

impl Default for Shard {
    /// The whole: one shard of one.
    fn default() -> Self {
        Shard::WHOLE
    }
}

/// The SplitMix64 finalizer: a fixed bijective mix of the 64 bits of a user id, so that
/// consecutive ids spread over the shards evenly.
fn mix(user: u64) -> u64 {
    let mut z = user.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Shard {
    /// Every user: shard 0 of 1.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`; an error unless `index < count`.
    pub fn new(index: u32, count: u32) -> Result<Self, ShardError> {
        if index >= count {
            return Err(ShardError::Syntax { given: format!("{index}/{count}") });
        }
        Ok(Shard { index, count })
    }

    /// The index of the shard of `count` that holds `user`.
    pub fn index_of(user: u64, count: u32) -> u32 {
        (mix(user) % u64::from(count.max(1))) as u32
    }

    /// Whether this shard holds `user`.
    pub fn contains(&self, user: u64) -> bool {
        Shard::index_of(user, self.count) == self.index
    }

    /// Whether this is the whole (one shard of one).
    pub fn is_whole(&self) -> bool {
        self.count == 1
    }

    /// The items of `items` whose user (`user_of`) this shard holds, in their order.
    pub fn select<T>(&self, items: impl IntoIterator<Item = T>, user_of: impl Fn(&T) -> u64) -> Vec<T> {
        items.into_iter().filter(|t| self.contains(user_of(t))).collect()
    }

    /// The shard a scheduler assigned to this process, read from `env` (a lookup such as
    /// `|k| std::env::var(k).ok()`):
    ///
    /// - Slurm job arrays: `SLURM_ARRAY_TASK_ID`, `SLURM_ARRAY_TASK_MIN` (default 0) and
    ///   `SLURM_ARRAY_TASK_COUNT`: the index is the task id less the array's first id, so
    ///   `--array=0-3` and `--array=1-4` both give shards 0..4 of 4.
    /// - Kubernetes Indexed Jobs: `JOB_COMPLETION_INDEX`, with the shard count from `shards`
    ///   (Kubernetes does not tell a pod how many completions there are).
    ///
    /// `shards`, when given, must agree with Slurm's count.
    pub fn from_env(env: impl Fn(&str) -> Option<String>, shards: Option<u32>) -> Result<Shard, ShardError> {
        let number = |name: &str| -> Result<Option<u32>, ShardError> {
            match env(name) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<u32>()
                    .map(Some)
                    .map_err(|_| ShardError::Environment(format!("{name}={v:?} is not a non-negative integer"))),
            }
        };
        if let Some(task) = number("SLURM_ARRAY_TASK_ID")? {
            let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let count = match (number("SLURM_ARRAY_TASK_COUNT")?, shards) {
                (Some(c), Some(s)) if c != s => {
                    return Err(ShardError::Environment(format!(
                        "SLURM_ARRAY_TASK_COUNT={c} but --shards {s}; drop --shards or make them agree"
                    )));
                }
                (Some(c), _) => c,
                (None, Some(s)) => s,
                (None, None) => {
                    return Err(ShardError::Environment(
                        "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not; give --shards N".into(),
                    ));
                }
            };
            let index = task.checked_sub(min).ok_or_else(|| {
                ShardError::Environment(format!("SLURM_ARRAY_TASK_ID={task} is below SLURM_ARRAY_TASK_MIN={min}"))
            })?;
            return Shard::new(index, count).map_err(|_| {
                ShardError::Environment(format!(
                    "Slurm task {task} (array from {min}) is shard {index}, outside 0..{count}: use a contiguous \
                     array such as --array=0-{}",
                    count.saturating_sub(1)
                ))
            });
        }
        if let Some(index) = number("JOB_COMPLETION_INDEX")? {
            let count = shards.ok_or_else(|| {
                ShardError::Environment(
                    "JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job): give --shards N, the Job's completions"
                        .into(),
                )
            })?;
            return Shard::new(index, count).map_err(|_| {
                ShardError::Environment(format!(
                    "JOB_COMPLETION_INDEX={index} is outside 0..{count} (--shards {count})"
                ))
            });
        }
        Err(ShardError::Environment(
            "neither SLURM_ARRAY_TASK_ID (a Slurm job array) nor JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) \
             is set; give --shard I/N"
                .into(),
        ))
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = ShardError;
    fn from_str(s: &str) -> Result<Self, ShardError> {
        let bad = || ShardError::Syntax { given: s.to_string() };
        let (i, n) = s.trim().split_once('/').ok_or_else(bad)?;
        let index = i.trim().parse::<u32>().map_err(|_| bad())?;
        let count = n.trim().parse::<u32>().map_err(|_| bad())?;
        Shard::new(index, count).map_err(|_| bad())
    }
}

/// A `--shard` value: a fixed shard, or `auto` (ask the scheduler, see [`Shard::from_env`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardSpec {
    /// `I/N`.
    Fixed(Shard),
    /// `auto`.
    Auto,
}

impl ShardSpec {
    /// The shard this process runs: the fixed one, or the scheduler's from the process
    /// environment (`shards`: `--shards N`).
    pub fn resolve(self, shards: Option<u32>) -> Result<Shard, ShardError> {
        match self {
            ShardSpec::Fixed(s) => match shards {
                Some(n) if n != s.count => {
                    Err(ShardError::Environment(format!("--shard {s} names {} shards but --shards says {n}", s.count)))
                }
                _ => Ok(s),
            },
            ShardSpec::Auto => Shard::from_env(|k| std::env::var(k).ok(), shards),
        }
    }
}

impl FromStr for ShardSpec {
    type Err = ShardError;
    fn from_str(s: &str) -> Result<Self, ShardError> {
        if s.trim().eq_ignore_ascii_case("auto") { Ok(ShardSpec::Auto) } else { s.parse().map(ShardSpec::Fixed) }
    }
}

/// What a shard's output is, so that a merge refuses to mix kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShardKind {
    /// A summary cache (JSONL) written by `tears summarize`.
    Summaries,
    /// Sentence embeddings (.npy with a users sidecar, or .safetensors) written by `tears embed`.
    Embeddings,
    /// Top-k lists (JSONL) written by `tears recommend --batch`.
    TopK,
    /// Per-user metrics (JSON) written by `tears evaluate --per-user`.
    Evaluation,
}

impl ShardKind {
    /// The name used in stamps and messages.
    pub fn name(self) -> &'static str {
        match self {
            ShardKind::Summaries => "summaries",
            ShardKind::Embeddings => "embeddings",
            ShardKind::TopK => "top-k",
            ShardKind::Evaluation => "evaluation",
        }
    }
}

/// The sidecar a sharded job writes beside its output (`OUT.shard.json`, see [`stamp_path`]):
/// which shard of how many, of what, and how many users it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardStamp {
    /// What the output is.
    pub kind: ShardKind,
    /// The shard's index.
    pub shard: u32,
    /// The number of shards.
    pub shards: u32,
    /// What the users were drawn from (a split directory's dataset and set, say), so that a merge
    /// refuses shards of different inputs; free text compared for equality.
    pub source: String,
}

impl ShardStamp {
    /// The stamp of `shard`'s output of `kind`, drawn from `source`.
    pub fn new(kind: ShardKind, shard: Shard, source: impl Into<String>) -> Self {
        ShardStamp { kind, shard: shard.index, shards: shard.count, source: source.into() }
    }

    /// The shard this stamp names.
    pub fn shard(&self) -> Result<Shard, ShardError> {
        Shard::new(self.shard, self.shards)
    }

    /// Writes the stamp beside `output` (atomically).
    pub fn write_beside(&self, output: &Path) -> Result<(), ShardError> {
        let path = stamp_path(output);
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| ShardError::Stamp { path: path.clone(), message: e.to_string() })?;
        crate::io::write_atomic(&path, |w| {
            w.write_all(&json)?;
            w.write_all(b"\n")
        })
        .map_err(|e| ShardError::Stamp { path, message: e.to_string() })
    }

    /// Reads the stamp beside `output`; `Ok(None)` when there is none.
    pub fn read_beside(output: &Path) -> Result<Option<ShardStamp>, ShardError> {
        let path = stamp_path(output);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ShardError::Stamp { path, message: e.to_string() }),
        };
        let stamp: ShardStamp = serde_json::from_slice(&bytes)
            .map_err(|e| ShardError::Stamp { path: path.clone(), message: format!("not a shard stamp: {e}") })?;
        stamp.shard().map_err(|_| ShardError::Stamp {
            path,
            message: format!("shard {} of {} is not a shard", stamp.shard, stamp.shards),
        })?;
        Ok(Some(stamp))
    }
}

/// Where the stamp of `output` lives: `output` with `.shard.json` appended to its name.
pub fn stamp_path(output: &Path) -> PathBuf {
    let mut name = output.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".shard.json");
    output.with_file_name(name)
}

/// Checks that `stamps` (one per shard output, named by its path) are one each of shards
/// `0..N` of the same `N`, kind and source, and returns `N`.
///
/// Each error names the files concerned: which shards are missing, which two files claim the
/// same shard, which file disagrees on the count, kind or source.
pub fn check_cover(stamps: &[(PathBuf, ShardStamp)]) -> Result<u32, ShardError> {
    let Some((first_path, first)) = stamps.first() else {
        return Err(ShardError::Cover("no shard outputs given".into()));
    };
    let n = first.shards;
    let mut seen: Vec<Option<&Path>> = vec![None; n as usize];
    for (path, stamp) in stamps {
        if stamp.shards != n {
            return Err(ShardError::Cover(format!(
                "{} is shard {}/{} but {} is shard {}/{}",
                path.display(),
                stamp.shard,
                stamp.shards,
                first_path.display(),
                first.shard,
                n
            )));
        }
        if stamp.kind != first.kind {
            return Err(ShardError::Cover(format!(
                "{} holds {} but {} holds {}",
                path.display(),
                stamp.kind.name(),
                first_path.display(),
                first.kind.name()
            )));
        }
        if stamp.source != first.source {
            return Err(ShardError::Cover(format!(
                "{} was drawn from {:?} but {} from {:?}",
                path.display(),
                stamp.source,
                first_path.display(),
                first.source
            )));
        }
        let slot = seen
            .get_mut(stamp.shard as usize)
            .ok_or_else(|| ShardError::Cover(format!("{}: shard {} is outside 0..{n}", path.display(), stamp.shard)))?;
        if let Some(other) = slot {
            return Err(ShardError::Cover(format!(
                "{} and {} are both shard {}/{n}",
                other.display(),
                path.display(),
                stamp.shard
            )));
        }
        *slot = Some(path);
    }
    let missing: Vec<String> =
        seen.iter().enumerate().filter(|(_, s)| s.is_none()).map(|(i, _)| format!("{i}/{n}")).collect();
    if !missing.is_empty() {
        return Err(ShardError::Cover(format!(
            "missing shard{} {}",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", ")
        )));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn shards_are_disjoint_cover_everyone_and_are_balanced() {
        for n in [1u32, 2, 3, 7] {
            let mut sizes = vec![0usize; n as usize];
            for user in 0..20_000u64 {
                let holders: Vec<u32> = (0..n).filter(|&i| Shard::new(i, n).expect("ok").contains(user)).collect();
                assert_eq!(holders.len(), 1, "user {user} of {n} shards");
                sizes[holders[0] as usize] += 1;
            }
            let expected = 20_000.0 / f64::from(n);
            for s in sizes {
                assert!((s as f64 - expected).abs() < 0.05 * expected, "{s} vs {expected}");
            }
        }
    }

    #[test]
    fn the_partition_is_a_fixed_function_of_the_id() {
        // Pinned values: changing the mix would silently reshuffle existing shard outputs.
        assert_eq!(mix(0), 0xe220_a839_7b1d_cdaf);
        assert_eq!(mix(1), 0x910a_2dec_8902_5cc1);
    }

    #[test]
    fn parsing_accepts_i_of_n_and_auto_only() {
        assert_eq!("0/1".parse::<Shard>().expect("ok"), Shard::WHOLE);
        assert_eq!(" 2 / 5 ".parse::<Shard>().expect("ok"), Shard { index: 2, count: 5 });
        for bad in ["", "1", "1/1", "5/2", "-1/2", "a/2", "1/0", "1/2/3"] {
            let e = bad.parse::<Shard>().expect_err("an error");
            assert!(e.to_string().contains("I/N"), "{bad}: {e}");
        }
        assert_eq!("auto".parse::<ShardSpec>().expect("ok"), ShardSpec::Auto);
        assert_eq!("1/2".parse::<ShardSpec>().expect("ok"), ShardSpec::Fixed(Shard { index: 1, count: 2 }));
    }

    #[test]
    fn slurm_and_kubernetes_variables_name_the_shard() {
        let slurm = [("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_COUNT", "4")];
        assert_eq!(Shard::from_env(env(&slurm), None).expect("ok"), Shard { index: 2, count: 4 });
        assert_eq!(Shard::from_env(env(&slurm), Some(4)).expect("ok"), Shard { index: 2, count: 4 });
        assert!(Shard::from_env(env(&slurm), Some(5)).expect_err("an error").to_string().contains("agree"));
        let gap = [("SLURM_ARRAY_TASK_ID", "9"), ("SLURM_ARRAY_TASK_COUNT", "4")];
        assert!(Shard::from_env(env(&gap), None).expect_err("an error").to_string().contains("contiguous"));
        let k8s = [("JOB_COMPLETION_INDEX", "1")];
        assert_eq!(Shard::from_env(env(&k8s), Some(3)).expect("ok"), Shard { index: 1, count: 3 });
        assert!(Shard::from_env(env(&k8s), None).expect_err("an error").to_string().contains("--shards"));
        assert!(Shard::from_env(env(&[]), None).expect_err("an error").to_string().contains("--shard I/N"));
        let junk = [("JOB_COMPLETION_INDEX", "x")];
        assert!(Shard::from_env(env(&junk), Some(2)).expect_err("an error").to_string().contains("integer"));
    }

    #[test]
    fn a_cover_check_names_missing_duplicate_and_mismatched_shards() {
        let stamp = |i, n| ShardStamp::new(ShardKind::TopK, Shard::new(i, n).expect("ok"), "ml1m test");
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(check_cover(&[(p("a"), stamp(1, 2)), (p("b"), stamp(0, 2))]).expect("ok"), 2);
        let e = check_cover(&[(p("a"), stamp(0, 3))]).expect_err("an error").to_string();
        assert!(e.contains("missing shards 1/3, 2/3"), "{e}");
        let e = check_cover(&[(p("a"), stamp(0, 2)), (p("b"), stamp(0, 2))]).expect_err("an error").to_string();
        assert!(e.contains("a and b are both shard 0/2"), "{e}");
        let e = check_cover(&[(p("a"), stamp(0, 2)), (p("b"), stamp(1, 3))]).expect_err("an error").to_string();
        assert!(e.contains("b is shard 1/3"), "{e}");
        let mut other = stamp(1, 2);
        other.kind = ShardKind::Summaries;
        assert!(
            check_cover(&[(p("a"), stamp(0, 2)), (p("b"), other)]).expect_err("an error").to_string().contains("holds")
        );
        let mut other = stamp(1, 2);
        other.source = "ml1m validation".into();
        assert!(
            check_cover(&[(p("a"), stamp(0, 2)), (p("b"), other)]).expect_err("an error").to_string().contains("drawn")
        );
    }

    #[test]
    fn stamps_round_trip_beside_their_output() {
        let dir = tempfile::tempdir().expect("ok");
        let out = dir.path().join("topk.jsonl");
        assert_eq!(stamp_path(&out), dir.path().join("topk.jsonl.shard.json"));
        assert!(ShardStamp::read_beside(&out).expect("ok").is_none());
        let stamp = ShardStamp::new(ShardKind::Embeddings, Shard::new(1, 2).expect("ok"), "x");
        stamp.write_beside(&out).expect("ok");
        assert_eq!(ShardStamp::read_beside(&out).expect("ok"), Some(stamp));
        std::fs::write(stamp_path(&out), "{").expect("ok");
        assert!(ShardStamp::read_beside(&out).expect_err("an error").to_string().contains("topk.jsonl.shard.json"));
    }
}
