//! Evaluation protocols (strong generalisation) and the split they produce.
//!
//! Two protocols, as in the spec (`data.md`):
//! - [`Protocol::RandomHoldout`] (P1, Liang et al. 2018): users with enough positives are shuffled
//!   into train / validation / test; each evaluation user's positives are split at random into
//!   fold-in and held-out.
//! - [`Protocol::SummaryWindow`] (P2, TEARS): each user's *window* is the ratings at or after the
//!   timestamp of their M-th most recent rating; the window is the fold-in and the summarizer's
//!   input, and the held-out items are the positives strictly before it, so a summary written from
//!   the window cannot leak them.

use std::collections::{HashMap, HashSet};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::dataset::{Dataset, Event, Item};
use crate::error::{DataError, Result};
use crate::preprocess::{Preprocess, PreprocessReport};

/// One rating of a user row, with the item as an index into the split's item vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rating {
    /// Index into [`Split::items`].
    pub item: u32,
    /// Raw rating.
    pub rating: f32,
    /// Unix seconds (or file position for sources without time).
    pub timestamp: i64,
}

/// Rows of ratings for a list of users, stored compactly (one offsets array, one entries array).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserRows {
    /// Source ids of the users, in row order.
    pub users: Vec<u64>,
    offsets: Vec<usize>,
    entries: Vec<Rating>,
}

impl UserRows {
    /// Empty rows.
    pub fn new() -> Self {
        UserRows { users: Vec::new(), offsets: vec![0], entries: Vec::new() }
    }

    /// Appends a user and their ratings.
    pub fn push(&mut self, user: u64, ratings: impl IntoIterator<Item = Rating>) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        self.users.push(user);
        self.entries.extend(ratings);
        self.offsets.push(self.entries.len());
    }

    /// Number of users (rows).
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The ratings of row `i`.
    pub fn row(&self, i: usize) -> &[Rating] {
        &self.entries[self.offsets[i]..self.offsets[i + 1]]
    }

    /// Iterates over `(user id, ratings)`.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &[Rating])> + '_ {
        (0..self.len()).map(move |i| (self.users[i], self.row(i)))
    }

    /// Total number of ratings.
    pub fn nnz(&self) -> usize {
        self.entries.len()
    }

    /// Number of ratings strictly above `positive_above`.
    pub fn positives(&self, positive_above: f32) -> usize {
        self.entries.iter().filter(|r| r.rating > positive_above).count()
    }

    /// All ratings, row after row.
    pub fn entries(&self) -> &[Rating] {
        &self.entries
    }

    /// Row boundaries: row `i` is `entries()[offsets()[i]..offsets()[i + 1]]`.
    pub fn offsets(&self) -> &[usize] {
        &self.offsets
    }
}

/// One rating of a user's window, with full item metadata: what a summarizer may see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowEntry {
    /// Source item id.
    pub item_id: u64,
    /// Index into the split's item vocabulary, when the item is in it.
    pub item: Option<u32>,
    /// Title.
    pub title: String,
    /// Year, when known.
    pub year: Option<i32>,
    /// Genres.
    pub genres: Vec<String>,
    /// Raw rating.
    pub rating: f32,
    /// Timestamp.
    pub timestamp: i64,
}

/// Validation or test users: fold-in rows, held-out positives and raw windows, in the same user order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvalUsers {
    /// The history a model may see (and the items masked as seen), in vocabulary.
    pub foldin: UserRows,
    /// The held-out positives to be predicted, in vocabulary.
    pub heldout: UserRows,
    /// The raw ratings a summarizer may see (including items outside the vocabulary), oldest first.
    pub windows: Vec<Vec<WindowEntry>>,
}

impl EvalUsers {
    /// Source ids of the users.
    pub fn users(&self) -> &[u64] {
        &self.foldin.users
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.foldin.len()
    }

    /// Whether there are no users.
    pub fn is_empty(&self) -> bool {
        self.foldin.is_empty()
    }

    /// The users `keep` accepts, in the same order, with their fold-in, held-out and window
    /// rows (a shard of a batch job, say: `users.subset(|u| shard.contains(u))`).
    ///
    /// ```
    /// use tears_data::{prepare, DatasetName, PrepareOptions};
    /// let split = prepare(DatasetName::Synthetic, &PrepareOptions::default())?.split;
    /// let even = split.test.subset(|u| u % 2 == 0);
    /// assert!(even.users().iter().all(|u| u % 2 == 0));
    /// assert_eq!(even.heldout.users, even.foldin.users);
    /// # Ok::<(), tears_data::DataError>(())
    /// ```
    pub fn subset(&self, keep: impl Fn(u64) -> bool) -> EvalUsers {
        let mut out = EvalUsers::default();
        for (r, &user) in self.foldin.users.iter().enumerate() {
            if !keep(user) {
                continue;
            }
            out.foldin.push(user, self.foldin.row(r).iter().copied());
            if r < self.heldout.len() {
                out.heldout.push(self.heldout.users[r], self.heldout.row(r).iter().copied());
            }
            if let Some(w) = self.windows.get(r) {
                out.windows.push(w.clone());
            }
        }
        out
    }
}

/// A number of users: an absolute count or a fraction of the eligible users.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserCount {
    /// Exactly this many users.
    Count(usize),
    /// This fraction of the users (rounded to the nearest integer).
    Fraction(f64),
}

impl UserCount {
    fn resolve(self, n: usize) -> Result<usize> {
        match self {
            UserCount::Count(c) => Ok(c),
            UserCount::Fraction(f) if (0.0..1.0).contains(&f) => Ok((f * n as f64).round() as usize),
            UserCount::Fraction(f) => Err(DataError::Config(format!("user fraction {f} is not in [0, 1)"))),
        }
    }
}

/// Parameters of the `random-holdout` protocol (P1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RandomHoldout {
    /// Validation users.
    pub validation_users: UserCount,
    /// Test users.
    pub test_users: UserCount,
    /// Fraction of each evaluation user's positives held out (floored).
    pub heldout_fraction: f64,
    /// Users with fewer positives are dropped.
    pub min_positives: usize,
}

impl Default for RandomHoldout {
    fn default() -> Self {
        RandomHoldout {
            validation_users: UserCount::Fraction(0.1),
            test_users: UserCount::Fraction(0.1),
            heldout_fraction: 0.2,
            min_positives: 5,
        }
    }
}

/// Parameters of the `summary-window` protocol (P2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryWindow {
    /// M: the window starts at the timestamp of the user's M-th most recent rating.
    pub window: usize,
    /// Evaluation users need at least this many held-out positives.
    pub min_heldout: usize,
    /// Validation users drawn from the eligible users.
    pub validation_users: usize,
    /// Test users drawn from the eligible users.
    pub test_users: usize,
    /// When fewer users are eligible than the two counts ask for, take a quarter of the eligible
    /// users for each set instead of failing (the default, so that the default command works on
    /// any dataset; [`SplitCounts`] says what was taken). Off, a shortfall is an error.
    #[serde(default)]
    pub fit_to_eligible: bool,
}

impl Default for SummaryWindow {
    /// M = 64, at least 10 held-out positives, 250 validation and 250 test users (fewer when the
    /// dataset has fewer eligible users).
    fn default() -> Self {
        SummaryWindow { window: 64, min_heldout: 10, validation_users: 250, test_users: 250, fit_to_eligible: true }
    }
}

impl SummaryWindow {
    /// The validation and test counts for `eligible` eligible users.
    ///
    /// # Errors
    /// Too few eligible users for the counts asked, unless [`fit_to_eligible`](Self::fit_to_eligible).
    pub fn counts(&self, eligible: usize) -> Result<(usize, usize)> {
        let need = self.validation_users + self.test_users;
        if eligible >= need {
            return Ok((self.validation_users, self.test_users));
        }
        if self.fit_to_eligible && eligible >= 4 {
            let quarter = eligible / 4;
            return Ok((self.validation_users.min(quarter), self.test_users.min(quarter)));
        }
        Err(DataError::Config(format!(
            "only {eligible} users have at least {} positives before their window; {} validation + {} test users requested",
            self.min_heldout, self.validation_users, self.test_users
        )))
    }
}

/// An evaluation protocol with its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum Protocol {
    /// P1, `random-holdout`.
    RandomHoldout(RandomHoldout),
    /// P2, `summary-window`.
    SummaryWindow(SummaryWindow),
}

impl Protocol {
    /// The protocol's name as used on the command line and in `split.json`.
    pub fn name(&self) -> &'static str {
        match self {
            Protocol::RandomHoldout(_) => "random-holdout",
            Protocol::SummaryWindow(_) => "summary-window",
        }
    }

    /// The protocol called `name` with default parameters.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "random-holdout" => Ok(Protocol::RandomHoldout(RandomHoldout::default())),
            "summary-window" => Ok(Protocol::SummaryWindow(SummaryWindow::default())),
            other => Err(DataError::Config(format!(
                "unknown protocol {other:?} (expected random-holdout or summary-window)"
            ))),
        }
    }
}

/// Counts recorded in `split.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SplitCounts {
    /// Training users.
    pub train_users: usize,
    /// Validation users.
    pub validation_users: usize,
    /// Test users.
    pub test_users: usize,
    /// Items in the vocabulary (columns of every matrix).
    pub items: usize,
    /// Positive training interactions (the entries of the binary training matrix).
    pub train_interactions: usize,
    /// All training ratings on vocabulary items, positive or not.
    pub train_ratings: usize,
    /// Held-out positives of the validation users.
    pub validation_heldout: usize,
    /// Held-out positives of the test users.
    pub test_heldout: usize,
    /// Evaluation users dropped because nothing was left to hold out.
    pub dropped_evaluation_users: usize,
    /// Users that qualified for evaluation (random-holdout: enough positives to take part at all;
    /// summary-window: enough positives before their window).
    #[serde(default)]
    pub eligible_evaluation_users: usize,
}

/// Everything needed to reproduce and describe a split; saved as `split.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitMeta {
    /// Version of the on-disk layout.
    pub format_version: u32,
    /// Dataset name (`ml-1m`, `ml1m-gpt4`, ...).
    pub dataset: String,
    /// Protocol name (duplicated from `params` for readers that only want the name).
    pub protocol: String,
    /// Seed of every random draw.
    pub seed: u64,
    /// Ratings strictly above this are positives.
    pub positive_above: f32,
    /// Protocol parameters.
    pub params: Protocol,
    /// Preprocessing applied before splitting.
    pub preprocess: Preprocess,
    /// What preprocessing removed.
    pub preprocess_report: PreprocessReport,
    /// Counts.
    pub counts: SplitCounts,
}

/// A dataset split into training users and validation / test users.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Description and counts.
    pub meta: SplitMeta,
    /// The item vocabulary (built from training users only); matrix column `j` is `items[j]`.
    pub items: Vec<Item>,
    /// Training users and all their ratings on vocabulary items.
    pub train: UserRows,
    /// Validation users.
    pub validation: EvalUsers,
    /// Test users.
    pub test: EvalUsers,
}

/// Which evaluation set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvalSet {
    /// Validation users.
    Validation,
    /// Test users.
    Test,
}

impl EvalSet {
    /// `"validation"` or `"test"`.
    pub fn name(self) -> &'static str {
        match self {
            EvalSet::Validation => "validation",
            EvalSet::Test => "test",
        }
    }
}

impl std::str::FromStr for EvalSet {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "validation" | "valid" | "val" => Ok(EvalSet::Validation),
            "test" => Ok(EvalSet::Test),
            other => Err(DataError::Config(format!("unknown set {other:?} (expected validation or test)"))),
        }
    }
}

impl Split {
    /// The validation or test users.
    pub fn eval(&self, set: EvalSet) -> &EvalUsers {
        match set {
            EvalSet::Validation => &self.validation,
            EvalSet::Test => &self.test,
        }
    }

    /// Number of items (matrix columns).
    pub fn n_items(&self) -> usize {
        self.items.len()
    }

    /// A stable 64-bit FNV-1a hash of the item vocabulary (source ids in column order), recorded by
    /// models so that loading one against a split with another vocabulary is caught.
    pub fn vocabulary_hash(&self) -> u64 {
        vocabulary_hash(&self.items)
    }
}

/// FNV-1a over the item ids of a vocabulary, in column order ([`Split::vocabulary_hash`]).
pub fn vocabulary_hash(items: &[Item]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for item in items {
        for b in item.id.to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// Configuration of [`make_split`].
#[derive(Debug, Clone)]
pub struct SplitConfig {
    /// Name recorded in `split.json`.
    pub dataset: String,
    /// The protocol.
    pub protocol: Protocol,
    /// Preprocessing applied first.
    pub preprocess: Preprocess,
    /// Seed of every random draw.
    pub seed: u64,
    /// If set, only these users take part (for `summary-window`: the users that have a summary).
    pub eligible_users: Option<HashSet<u64>>,
}

/// Splits `data` with `config`. The input is not modified.
pub fn make_split(data: &Dataset, config: &SplitConfig) -> Result<Split> {
    let mut data = data.clone();
    if let Some(eligible) = &config.eligible_users {
        let keep: Vec<bool> = data.users.iter().map(|u| eligible.contains(u)).collect();
        data.retain_events(|e| keep[e.user as usize]);
    }
    let report = config.preprocess.apply(&mut data)?;
    let pos = config.preprocess.positive_above;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);

    // Users in source-id order, each with their events sorted by (timestamp, item id).
    let mut by_user = data.events_by_user();
    for events in &mut by_user {
        events.sort_by_key(|e| (e.timestamp, data.items[e.item as usize].id));
    }
    let mut order: Vec<usize> = (0..data.users.len()).collect();
    order.sort_by_key(|&u| data.users[u]);

    let eligible_count;
    let (train, val, test, heldout_of): (Vec<usize>, Vec<usize>, Vec<usize>, HeldoutRule) = match &config.protocol {
        Protocol::RandomHoldout(p) => {
            if !(0.0..1.0).contains(&p.heldout_fraction) {
                return Err(DataError::Config(format!("heldout_fraction {} is not in [0, 1)", p.heldout_fraction)));
            }
            let mut users: Vec<usize> = order
                .into_iter()
                .filter(|&u| by_user[u].iter().filter(|e| e.rating > pos).count() >= p.min_positives.max(1))
                .collect();
            users.shuffle(&mut rng);
            let n = users.len();
            eligible_count = n;
            let n_test = p.test_users.resolve(n)?;
            let n_val = p.validation_users.resolve(n)?;
            if n_test + n_val >= n {
                return Err(DataError::Config(format!(
                    "{n} users with at least {} positives cannot give {n_val} validation and {n_test} test users and keep training users",
                    p.min_positives
                )));
            }
            let test = users[n - n_test..].to_vec();
            let val = users[n - n_test - n_val..n - n_test].to_vec();
            users.truncate(n - n_test - n_val);
            (users, val, test, HeldoutRule::Random(p.heldout_fraction))
        }
        Protocol::SummaryWindow(p) => {
            if p.window == 0 {
                return Err(DataError::Config("the summary window M must be at least 1".into()));
            }
            let starts: Vec<i64> = by_user.iter().map(|ev| window_start(ev, p.window)).collect();
            let mut eligible: Vec<usize> = order
                .iter()
                .copied()
                .filter(|&u| {
                    by_user[u].iter().filter(|e| e.rating > pos && e.timestamp < starts[u]).count()
                        >= p.min_heldout.max(1)
                })
                .collect();
            eligible_count = eligible.len();
            let (n_val, n_test) = p.counts(eligible.len())?;
            let need = n_val + n_test;
            eligible.shuffle(&mut rng);
            let val = eligible[..n_val].to_vec();
            let test = eligible[n_val..need].to_vec();
            let chosen: HashSet<usize> = eligible[..need].iter().copied().collect();
            let train: Vec<usize> = order.into_iter().filter(|u| !chosen.contains(u)).collect();
            (train, val, test, HeldoutRule::Before(starts))
        }
    };

    // Item vocabulary: items with a positive among training users, in source-id order.
    let mut in_vocab = vec![false; data.items.len()];
    for &u in &train {
        for e in by_user[u].iter().filter(|e| e.rating > pos) {
            in_vocab[e.item as usize] = true;
        }
    }
    let mut vocab: Vec<usize> = (0..data.items.len()).filter(|&i| in_vocab[i]).collect();
    vocab.sort_by_key(|&i| data.items[i].id);
    let mut column = vec![u32::MAX; data.items.len()];
    for (c, &i) in vocab.iter().enumerate() {
        column[i] = c as u32;
    }
    let items: Vec<Item> = vocab.iter().map(|&i| data.items[i].clone()).collect();
    let to_rating = |e: &Event| Rating { item: column[e.item as usize], rating: e.rating, timestamp: e.timestamp };

    let mut sorted_train = train;
    sorted_train.sort_by_key(|&u| data.users[u]);
    let mut train_rows = UserRows::new();
    for &u in &sorted_train {
        let row: Vec<Rating> =
            by_user[u].iter().filter(|e| column[e.item as usize] != u32::MAX).map(to_rating).collect();
        if !row.is_empty() {
            train_rows.push(data.users[u], row);
        }
    }

    let mut dropped = 0usize;
    let mut build_eval = |mut users: Vec<usize>, rng: &mut ChaCha8Rng| -> EvalUsers {
        users.sort_by_key(|&u| data.users[u]);
        let mut out = EvalUsers { foldin: UserRows::new(), heldout: UserRows::new(), windows: Vec::new() };
        for u in users {
            let events = &by_user[u];
            let heldout: HashSet<usize> = match &heldout_of {
                HeldoutRule::Random(frac) => {
                    let mut positives: Vec<usize> = (0..events.len())
                        .filter(|&k| events[k].rating > pos && column[events[k].item as usize] != u32::MAX)
                        .collect();
                    let n_out = (*frac * positives.len() as f64).floor() as usize;
                    positives.shuffle(rng);
                    positives.truncate(n_out);
                    positives.into_iter().collect()
                }
                HeldoutRule::Before(starts) => (0..events.len())
                    .filter(|&k| {
                        events[k].rating > pos
                            && events[k].timestamp < starts[u]
                            && column[events[k].item as usize] != u32::MAX
                    })
                    .collect(),
            };
            if heldout.is_empty() {
                dropped += 1;
                continue;
            }
            let in_window = |k: usize| match &heldout_of {
                HeldoutRule::Random(_) => !heldout.contains(&k),
                HeldoutRule::Before(starts) => events[k].timestamp >= starts[u],
            };
            let window: Vec<WindowEntry> = (0..events.len())
                .filter(|&k| in_window(k))
                .map(|k| {
                    let e = &events[k];
                    let it = &data.items[e.item as usize];
                    let c = column[e.item as usize];
                    WindowEntry {
                        item_id: it.id,
                        item: (c != u32::MAX).then_some(c),
                        title: it.title.clone(),
                        year: it.year,
                        genres: it.genres.clone(),
                        rating: e.rating,
                        timestamp: e.timestamp,
                    }
                })
                .collect();
            let foldin: Vec<Rating> = (0..events.len())
                .filter(|&k| in_window(k) && column[events[k].item as usize] != u32::MAX)
                .map(|k| to_rating(&events[k]))
                .collect();
            let mut held: Vec<usize> = heldout.into_iter().collect();
            held.sort_unstable();
            out.foldin.push(data.users[u], foldin);
            out.heldout.push(data.users[u], held.into_iter().map(|k| to_rating(&events[k])));
            out.windows.push(window);
        }
        out
    };
    let validation = build_eval(val, &mut rng);
    let test = build_eval(test, &mut rng);
    if dropped > 0 {
        tracing::info!("dropped {dropped} evaluation users with nothing left to hold out");
    }

    let counts = SplitCounts {
        train_users: train_rows.len(),
        validation_users: validation.len(),
        test_users: test.len(),
        items: items.len(),
        train_interactions: train_rows.positives(pos),
        train_ratings: train_rows.nnz(),
        validation_heldout: validation.heldout.nnz(),
        test_heldout: test.heldout.nnz(),
        dropped_evaluation_users: dropped,
        eligible_evaluation_users: eligible_count,
    };
    Ok(Split {
        meta: SplitMeta {
            format_version: 1,
            dataset: config.dataset.clone(),
            protocol: config.protocol.name().to_string(),
            seed: config.seed,
            positive_above: pos,
            params: config.protocol.clone(),
            preprocess: config.preprocess.clone(),
            preprocess_report: report,
            counts,
        },
        items,
        train: train_rows,
        validation,
        test,
    })
}

enum HeldoutRule {
    Random(f64),
    Before(Vec<i64>),
}

/// The timestamp of the `m`-th most recent event (the oldest when there are fewer than `m`).
/// `events` must be sorted by timestamp ascending.
fn window_start(events: &[Event], m: usize) -> i64 {
    if events.is_empty() {
        return i64::MIN;
    }
    let idx = events.len().saturating_sub(m);
    events[idx].timestamp
}

/// Index of each user in `rows`, by source id.
pub fn user_positions(rows: &UserRows) -> HashMap<u64, usize> {
    rows.users.iter().enumerate().map(|(i, &u)| (u, i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_window_counts_fit_the_eligible_users_unless_asked_exactly() {
        let default = SummaryWindow::default();
        assert_eq!(default.counts(2_000).ok(), Some((250, 250)));
        // ml100k's case: 403 eligible users, 500 asked by default.
        assert_eq!(default.counts(403).ok(), Some((100, 100)));
        let exact = SummaryWindow { fit_to_eligible: false, ..SummaryWindow::default() };
        let msg = exact.counts(403).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("only 403 users") && msg.contains("250 validation + 250 test"), "{msg}");
        assert!(default.counts(3).is_err(), "three eligible users cannot make two evaluation sets");
    }
}
