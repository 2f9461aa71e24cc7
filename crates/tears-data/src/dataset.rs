//! The in-memory dataset every loader produces.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};

/// Metadata of one item (a movie, a book).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Item {
    /// The item's id in the source dataset.
    pub id: u64,
    /// Human-readable title (without the year suffix where the source appends one).
    pub title: String,
    /// Release or publication year, when known.
    pub year: Option<i32>,
    /// Genres, in the source's order.
    pub genres: Vec<String>,
    /// Free-form tags (user tags, shelves), most relevant first.
    pub tags: Vec<String>,
}

/// One rating event, with dense user and item indices into [`Dataset::users`] / [`Dataset::items`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Dense user index.
    pub user: u32,
    /// Dense item index.
    pub item: u32,
    /// Raw rating (1..5, possibly with half stars).
    pub rating: f32,
    /// Unix time in seconds (or, where the source has no time, the event's position in the file).
    pub timestamp: i64,
}

/// A loaded dataset: users, items with metadata, and rating events.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// Short name (`ml-1m`, `netflix`, ...).
    pub name: String,
    /// Source ids of the users; the position is the dense user index.
    pub users: Vec<u64>,
    /// Items with metadata; the position is the dense item index.
    pub items: Vec<Item>,
    /// Rating events in file order.
    pub events: Vec<Event>,
    /// Records skipped by a lenient load (0 for a strict load).
    pub skipped_records: usize,
}

/// Options shared by every loader.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Skip malformed records (counting them in [`Dataset::skipped_records`]) instead of failing.
    pub lenient: bool,
}

/// Summary statistics of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetStats {
    /// Number of distinct users with at least one event.
    pub users: usize,
    /// Number of items in the catalogue (with or without events).
    pub items: usize,
    /// Number of distinct items with at least one event.
    pub rated_items: usize,
    /// Number of events.
    pub events: usize,
    /// Events with a positive rating (see [`crate::POSITIVE_ABOVE`]).
    pub positives: usize,
    /// events / (users × rated items).
    pub density: f64,
    /// Earliest and latest timestamp.
    pub time_range: Option<(i64, i64)>,
}

impl Dataset {
    /// Statistics: counts, density, positives (rating above `positive_above`).
    pub fn stats(&self, positive_above: f32) -> DatasetStats {
        let mut user_seen = vec![false; self.users.len()];
        let mut item_seen = vec![false; self.items.len()];
        let mut positives = 0;
        let mut range: Option<(i64, i64)> = None;
        for e in &self.events {
            user_seen[e.user as usize] = true;
            item_seen[e.item as usize] = true;
            if e.rating > positive_above {
                positives += 1;
            }
            range = Some(match range {
                None => (e.timestamp, e.timestamp),
                Some((lo, hi)) => (lo.min(e.timestamp), hi.max(e.timestamp)),
            });
        }
        let users = user_seen.iter().filter(|&&b| b).count();
        let rated_items = item_seen.iter().filter(|&&b| b).count();
        let density = if users == 0 || rated_items == 0 {
            0.0
        } else {
            self.events.len() as f64 / (users as f64 * rated_items as f64)
        };
        DatasetStats {
            users,
            items: self.items.len(),
            rated_items,
            events: self.events.len(),
            positives,
            density,
            time_range: range,
        }
    }

    /// The events of every user, grouped by dense user index (each group in file order).
    pub fn events_by_user(&self) -> Vec<Vec<Event>> {
        let mut groups = vec![Vec::new(); self.users.len()];
        for e in &self.events {
            groups[e.user as usize].push(*e);
        }
        groups
    }

    /// The dense index of the user whose source id is `id`.
    pub fn user_index(&self, id: u64) -> Option<usize> {
        self.users.iter().position(|&u| u == id)
    }

    /// Keeps only the events for which `keep` is true, then drops users left without events.
    /// Items are kept (the catalogue does not shrink).
    pub fn retain_events(&mut self, mut keep: impl FnMut(&Event) -> bool) {
        self.events.retain(|e| keep(e));
        let mut remap = vec![u32::MAX; self.users.len()];
        let mut users = Vec::new();
        for e in &mut self.events {
            let u = e.user as usize;
            if remap[u] == u32::MAX {
                remap[u] = users.len() as u32;
                users.push(self.users[u]);
            }
            e.user = remap[u];
        }
        self.users = users;
    }
}

/// Builds a [`Dataset`] while reading files: interns source ids into dense indices.
#[derive(Debug, Default)]
pub struct DatasetBuilder {
    dataset: Dataset,
    user_index: HashMap<u64, u32>,
    item_index: HashMap<u64, u32>,
}

impl DatasetBuilder {
    /// An empty builder for the dataset called `name`.
    pub fn new(name: &str) -> Self {
        DatasetBuilder { dataset: Dataset { name: name.to_string(), ..Dataset::default() }, ..Default::default() }
    }

    /// Adds (or replaces the metadata of) an item.
    pub fn add_item(&mut self, item: Item) -> u32 {
        match self.item_index.get(&item.id) {
            Some(&idx) => {
                self.dataset.items[idx as usize] = item;
                idx
            }
            None => {
                let idx = self.dataset.items.len() as u32;
                self.item_index.insert(item.id, idx);
                self.dataset.items.push(item);
                idx
            }
        }
    }

    /// Mutable access to the metadata of the item with source id `id`, if known.
    pub fn item_mut(&mut self, id: u64) -> Option<&mut Item> {
        let idx = *self.item_index.get(&id)?;
        self.dataset.items.get_mut(idx as usize)
    }

    /// The dense index of item `id`, creating an item without metadata when it is unknown.
    pub fn item(&mut self, id: u64) -> u32 {
        if let Some(&idx) = self.item_index.get(&id) {
            return idx;
        }
        self.add_item(Item { id, title: format!("item {id}"), ..Item::default() })
    }

    /// The dense index of user `id`, creating it when new.
    pub fn user(&mut self, id: u64) -> u32 {
        if let Some(&idx) = self.user_index.get(&id) {
            return idx;
        }
        let idx = self.dataset.users.len() as u32;
        self.user_index.insert(id, idx);
        self.dataset.users.push(id);
        idx
    }

    /// Adds a rating event by source ids.
    pub fn rate(&mut self, user: u64, item: u64, rating: f32, timestamp: i64) {
        let user = self.user(user);
        let item = self.item(item);
        self.dataset.events.push(Event { user, item, rating, timestamp });
    }

    /// Number of events so far.
    pub fn len_events(&self) -> usize {
        self.dataset.events.len()
    }

    /// Counts one skipped record.
    pub fn skip(&mut self) {
        self.dataset.skipped_records += 1;
    }

    /// Handles a record error according to `options`: counts it when lenient, returns it otherwise.
    pub fn on_error(&mut self, options: &LoadOptions, err: DataError) -> Result<()> {
        if options.lenient && err.is_record_error() {
            if self.dataset.skipped_records < 5 {
                tracing::warn!("skipping malformed record: {err}");
            }
            self.dataset.skipped_records += 1;
            Ok(())
        } else {
            Err(err)
        }
    }

    /// Finishes the dataset.
    pub fn finish(self) -> Dataset {
        if self.dataset.skipped_records > 0 {
            tracing::warn!("{}: skipped {} malformed records", self.dataset.name, self.dataset.skipped_records);
        }
        self.dataset
    }
}
