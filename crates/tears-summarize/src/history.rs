//! What a summarizer may see: a user's rated items, most recent first.
//!
//! A [`History`] can only be built from a split's *window* of an evaluation user (the ratings the
//! protocol lets a summarizer read) or from a training user's rows, so held-out items of an
//! evaluation user cannot reach a prompt by mistake.

use serde::{Deserialize, Serialize};
use tears_data::split::EvalSet;
use tears_data::{Split, WindowEntry};

/// One rated item as a summarizer sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryItem {
    /// Title.
    pub title: String,
    /// Year, when known (prompts do not show it by default).
    pub year: Option<i32>,
    /// Genres.
    pub genres: Vec<String>,
    /// Tags of the item, when the dataset has them (most relevant first).
    pub tags: Vec<String>,
    /// Raw rating.
    pub rating: f32,
    /// Timestamp (Unix seconds or file position).
    pub timestamp: i64,
}

/// A user's rated items, most recent first (ties keep the later-listed item first).
///
/// ```
/// use tears_data::WindowEntry;
/// use tears_summarize::History;
/// let entry = |title: &str, t| WindowEntry {
///     item_id: t as u64, item: None, title: title.into(), year: None,
///     genres: vec!["Drama".into()], rating: 4.0, timestamp: t,
/// };
/// let h = History::from_window(&[entry("Old", 1), entry("New", 2)]);
/// assert_eq!(h.items()[0].title, "New");
/// assert_eq!(h.recent(1).len(), 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    items: Vec<HistoryItem>,
}

impl History {
    fn from_items(mut items: Vec<HistoryItem>) -> Self {
        // Inputs are oldest first; reverse, then a stable sort keeps later-listed ties first.
        items.reverse();
        items.sort_by_key(|i| std::cmp::Reverse(i.timestamp));
        History { items }
    }

    /// The history of an evaluation user's window (`EvalUsers::windows[i]`), without tags.
    pub fn from_window(window: &[WindowEntry]) -> Self {
        Self::from_items(window.iter().map(|w| window_item(w, Vec::new())).collect())
    }

    /// The window of the `index`-th user of `set`, with the tags of in-vocabulary items taken
    /// from `split.items`. `None` when `index` is out of range.
    ///
    /// ```
    /// use tears_data::{prepare, DatasetName, PrepareOptions, split::EvalSet};
    /// use tears_summarize::History;
    /// let split = prepare(DatasetName::Synthetic, &PrepareOptions::default())?.split;
    /// let h = History::from_eval_user(&split, EvalSet::Test, 0).expect("a test user");
    /// assert_eq!(h.len(), split.test.windows[0].len());
    /// # Ok::<(), tears_data::DataError>(())
    /// ```
    pub fn from_eval_user(split: &Split, set: EvalSet, index: usize) -> Option<Self> {
        let window = split.eval(set).windows.get(index)?;
        let tags = |w: &WindowEntry| w.item.and_then(|j| split.items.get(j as usize)).map(|it| it.tags.clone());
        Some(Self::from_items(window.iter().map(|w| window_item(w, tags(w).unwrap_or_default())).collect()))
    }

    /// All training ratings of the `index`-th training user (`split.train`), with item metadata
    /// from `split.items`. `None` when `index` is out of range.
    ///
    /// ```
    /// use tears_data::{prepare, DatasetName, PrepareOptions};
    /// use tears_summarize::History;
    /// let split = prepare(DatasetName::Synthetic, &PrepareOptions::default())?.split;
    /// let h = History::from_train_user(&split, 0).expect("a training user");
    /// assert_eq!(h.len(), split.train.row(0).len());
    /// # Ok::<(), tears_data::DataError>(())
    /// ```
    pub fn from_train_user(split: &Split, index: usize) -> Option<Self> {
        if index >= split.train.len() {
            return None;
        }
        let items = split
            .train
            .row(index)
            .iter()
            .filter_map(|r| {
                let it = split.items.get(r.item as usize)?;
                Some(HistoryItem {
                    title: it.title.clone(),
                    year: it.year,
                    genres: it.genres.clone(),
                    tags: it.tags.clone(),
                    rating: r.rating,
                    timestamp: r.timestamp,
                })
            })
            .collect();
        Some(Self::from_items(items))
    }

    /// All items, most recent first.
    pub fn items(&self) -> &[HistoryItem] {
        &self.items
    }

    /// The `n` most recent items.
    pub fn recent(&self, n: usize) -> &[HistoryItem] {
        &self.items[..n.min(self.items.len())]
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the history is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// Which users of a split to summarize.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserSet {
    /// Training users (their training ratings).
    Train,
    /// Validation users (their windows).
    Validation,
    /// Test users (their windows).
    Test,
    /// Everyone: training, then validation, then test users.
    All,
}

impl UserSet {
    /// The set's name (`train`, `validation`, `test`, `all`), as [`std::str::FromStr`] reads it.
    ///
    /// ```
    /// use tears_summarize::UserSet;
    /// assert_eq!(UserSet::Test.name().parse::<UserSet>().expect("a set"), UserSet::Test);
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            UserSet::Train => "train",
            UserSet::Validation => "validation",
            UserSet::Test => "test",
            UserSet::All => "all",
        }
    }
}

impl std::str::FromStr for UserSet {
    type Err = crate::SummarizeError;

    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "train" => Ok(UserSet::Train),
            "validation" => Ok(UserSet::Validation),
            "test" => Ok(UserSet::Test),
            "all" => Ok(UserSet::All),
            other => Err(crate::SummarizeError::Config(format!(
                "unknown user set {other:?} (train, validation, test or all)"
            ))),
        }
    }
}

/// Every user of `set` with the history a summarizer may see, in split order.
///
/// ```
/// use tears_data::{prepare, DatasetName, PrepareOptions};
/// use tears_summarize::{user_histories, UserSet};
/// let split = prepare(DatasetName::Synthetic, &PrepareOptions::default())?.split;
/// let all = user_histories(&split, UserSet::All);
/// let c = &split.meta.counts;
/// assert_eq!(all.len(), c.train_users + c.validation_users + c.test_users);
/// # Ok::<(), tears_data::DataError>(())
/// ```
pub fn user_histories(split: &Split, set: UserSet) -> Vec<(u64, History)> {
    let mut out = Vec::new();
    if matches!(set, UserSet::Train | UserSet::All) {
        for (i, &u) in split.train.users.iter().enumerate() {
            out.extend(History::from_train_user(split, i).map(|h| (u, h)));
        }
    }
    for (s, eval) in [(UserSet::Validation, EvalSet::Validation), (UserSet::Test, EvalSet::Test)] {
        if set == s || set == UserSet::All {
            let users = match eval {
                EvalSet::Validation => &split.validation,
                EvalSet::Test => &split.test,
            };
            for (i, &u) in users.users().iter().enumerate() {
                out.extend(History::from_eval_user(split, eval, i).map(|h| (u, h)));
            }
        }
    }
    out
}

/// A window entry as a history item with the given tags.
fn window_item(w: &WindowEntry, tags: Vec<String>) -> HistoryItem {
    HistoryItem {
        title: w.title.clone(),
        year: w.year,
        genres: w.genres.clone(),
        tags,
        rating: w.rating,
        timestamp: w.timestamp,
    }
}
