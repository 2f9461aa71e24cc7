//! The split users the page offers: their history (what the model folds in) and stored summary.

use serde::{Deserialize, Serialize};
use tears_core::Profiles;
use tears_data::split::EvalUsers;
use tears_data::{Item, Split};
use tears_summarize::History;
use tears_summarize::edit::favourite_from_history;

/// One rated item of a user's history, as the page shows it (and `GET /api/users/{id}` answers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Source item id.
    pub item: u64,
    /// Title.
    pub title: String,
    /// Release year, when known.
    pub year: Option<i32>,
    /// Genres.
    pub genres: Vec<String>,
    /// The rating (stars).
    pub rating: f32,
    /// When (Unix seconds, or the position in the file for sources without time).
    pub timestamp: i64,
}

/// A validation or test user of a split.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitUser {
    /// Source user id.
    pub id: u64,
    /// `test` or `validation`.
    pub set: &'static str,
    /// Their fold-in history (the items the model sees and never recommends), oldest first.
    pub history: Vec<HistoryEntry>,
    /// Their stored summary, when there is one.
    pub summary: Option<String>,
    /// Their favourite and least favourite genre (highest and lowest mean rating over three
    /// rated items or more), for the one-click swap.
    pub favourite: Option<(String, String)>,
}

impl SplitUser {
    /// The history as the model reads it: (source item id, rating), oldest first.
    pub fn ratings(&self) -> Vec<(u64, f32)> {
        self.history.iter().map(|h| (h.item, h.rating)).collect()
    }
}

fn users_of(set: &'static str, users: &EvalUsers, items: &[Item], summaries: Option<&Profiles>) -> Vec<SplitUser> {
    (0..users.len())
        .map(|r| {
            let id = users.users()[r];
            let mut history: Vec<HistoryEntry> = users
                .foldin
                .row(r)
                .iter()
                .filter_map(|rating| {
                    let item = items.get(rating.item as usize)?;
                    Some(HistoryEntry {
                        item: item.id,
                        title: item.title.clone(),
                        year: item.year,
                        genres: item.genres.clone(),
                        rating: rating.rating,
                        timestamp: rating.timestamp,
                    })
                })
                .collect();
            history.sort_by_key(|h| h.timestamp);
            let summary = summaries.and_then(|p| p.get(id)).and_then(|p| p.as_text()).map(str::to_string);
            let favourite = users.windows.get(r).and_then(|w| favourite_from_history(&History::from_window(w), 3));
            SplitUser { id, set, history, summary, favourite }
        })
        .collect()
}

/// The test users of `split`, then its validation users, each with their fold-in history and
/// (from `summaries`) their stored summary.
pub fn users_from_split(split: &Split, summaries: Option<&Profiles>) -> Vec<SplitUser> {
    let mut out = users_of("test", &split.test, &split.items, summaries);
    out.extend(users_of("validation", &split.validation, &split.items, summaries));
    out
}
