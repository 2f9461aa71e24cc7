//! Genres of items and genre-NDCG@k.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::accuracy::{discount, ideal_dcg};
use crate::error::{MetricsError, Result};
use crate::lists::ItemLists;
use crate::topk::TopKLists;

/// Genres attached to at most this many items are left out of experiments by default
/// (the spec keeps genres attached to *more than* 100 items).
pub const DEFAULT_MIN_GENRE_ITEMS: usize = 100;

/// The default cut-off of genre-NDCG.
pub const DEFAULT_GENRE_K: usize = 20;

/// Normalises a genre name: trimmed, lower case, `-` replaced by a space.
///
/// ```
/// assert_eq!(tears_metrics::normalize_genre(" Sci-Fi "), "sci fi");
/// ```
pub fn normalize_genre(name: &str) -> String {
    name.trim().to_lowercase().replace('-', " ")
}

/// The genres of a catalogue: normalised names, the kept genres' ids and each item's genre ids.
///
/// Genre ids are ordered by the number of items attached (descending), then by name, so the `n`
/// most frequent genres are ids `0..n`. As [`ItemLists`], list `i` is item `i`'s genre ids.
///
/// ```
/// use tears_metrics::{GenreIndex, ItemLists};
/// let items = vec![vec!["Drama", "Sci-Fi"], vec!["drama"], vec!["Horror"], vec!["sci fi"]];
/// let genres = GenreIndex::from_item_genres(&items, 0);
/// assert_eq!(genres.names(), &["drama".to_string(), "sci fi".to_string(), "horror".to_string()]);
/// assert_eq!(genres.id("SCI-FI"), Some(1));
/// assert_eq!(genres.list(0), &[0, 1]);
/// assert_eq!(genres.item_count(0), Some(2));
/// // keep only genres attached to more than one item
/// let frequent = GenreIndex::from_item_genres(&items, 1);
/// assert_eq!(frequent.n_genres(), 2);
/// assert!(frequent.list(2).is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenreIndex {
    names: Vec<String>,
    counts: Vec<usize>,
    offsets: Vec<usize>,
    genres: Vec<usize>,
}

impl GenreIndex {
    /// Builds the index from each item's genre names (normalised with [`normalize_genre`];
    /// empty names skipped, repeats within an item count once), keeping the genres attached to
    /// more than `more_than` items (the spec's default is [`DEFAULT_MIN_GENRE_ITEMS`]).
    pub fn from_item_genres<S: AsRef<str>>(item_genres: &[Vec<S>], more_than: usize) -> Self {
        let normalised: Vec<Vec<String>> = item_genres
            .iter()
            .map(|names| {
                let mut v: Vec<String> =
                    names.iter().map(|n| normalize_genre(n.as_ref())).filter(|n| !n.is_empty()).collect();
                v.sort_unstable();
                v.dedup();
                v
            })
            .collect();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for names in &normalised {
            for n in names {
                *counts.entry(n.as_str()).or_default() += 1;
            }
        }
        let mut kept: Vec<(&str, usize)> = counts.into_iter().filter(|&(_, c)| c > more_than).collect();
        kept.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let ids: HashMap<&str, usize> = kept.iter().enumerate().map(|(id, &(n, _))| (n, id)).collect();
        let mut offsets = Vec::with_capacity(normalised.len() + 1);
        let mut genres = Vec::new();
        offsets.push(0);
        for names in &normalised {
            let start = genres.len();
            genres.extend(names.iter().filter_map(|n| ids.get(n.as_str()).copied()));
            genres[start..].sort_unstable();
            offsets.push(genres.len());
        }
        GenreIndex {
            names: kept.iter().map(|&(n, _)| n.to_string()).collect(),
            counts: kept.iter().map(|&(_, c)| c).collect(),
            offsets,
            genres,
        }
    }

    /// Number of kept genres.
    pub fn n_genres(&self) -> usize {
        self.names.len()
    }

    /// Number of items.
    pub fn n_items(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Normalised genre names, by id.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The name of genre `id`.
    pub fn name(&self, id: usize) -> Option<&str> {
        self.names.get(id).map(String::as_str)
    }

    /// The id of a genre name (normalised first), if kept.
    pub fn id(&self, name: &str) -> Option<usize> {
        let n = normalize_genre(name);
        self.names.iter().position(|x| *x == n)
    }

    /// Number of items attached to genre `id`.
    pub fn item_count(&self, id: usize) -> Option<usize> {
        self.counts.get(id).copied()
    }

    /// The ids of the `n` most frequent genres (`0..min(n, n_genres)`).
    pub fn most_frequent(&self, n: usize) -> Vec<usize> {
        (0..n.min(self.n_genres())).collect()
    }

    /// Whether `item` has genre `id`.
    pub fn has_genre(&self, item: usize, id: usize) -> bool {
        self.list(item).binary_search(&id).is_ok()
    }
}

impl ItemLists for GenreIndex {
    fn n_lists(&self) -> usize {
        self.n_items()
    }
    fn list(&self, i: usize) -> &[usize] {
        match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&a), Some(&b)) => &self.genres[a..b],
            _ => &[],
        }
    }
}

/// Genre-NDCG@k without argument checks (`ranked` already cut to at most k, items in range).
pub(crate) fn genre_ndcg_unchecked<G: ItemLists + ?Sized>(
    ranked: &[usize],
    item_genres: &G,
    genre: usize,
    ideal: f64,
) -> f64 {
    let dcg: f64 = ranked
        .iter()
        .enumerate()
        .filter(|&(_, &item)| item_genres.list(item).contains(&genre))
        .map(|(r, _)| discount(r + 1))
        .sum();
    dcg / ideal
}

pub(crate) fn check_items<G: ItemLists + ?Sized>(ranked: &[usize], item_genres: &G, list: usize) -> Result<()> {
    let n_items = item_genres.n_lists();
    if let Some(&item) = ranked.iter().find(|&&i| i >= n_items) {
        return Err(MetricsError::ItemOutOfRange {
            what: "ranked items (against the item-genre lists)",
            list,
            item,
            n_items,
        });
    }
    Ok(())
}

/// Genre-NDCG@k of a ranked list (best first) for genre `genre`: rel_r = 1 when the item at rank
/// r has the genre, normalised by the ideal where all k items have it, so the value is in
/// [0, 1]. A list shorter than `k` is still normalised by the k-item ideal.
///
/// `item_genres` lists each item's genre ids (a [`GenreIndex`], or any [`ItemLists`]).
///
/// ```
/// use tears_metrics::genre_ndcg_at_k;
/// let item_genres = vec![vec![0], vec![1], vec![0, 1]];
/// assert_eq!(genre_ndcg_at_k(&[0, 2], &item_genres, 0, 2)?, 1.0);
/// let v = genre_ndcg_at_k(&[1, 0], &item_genres, 0, 2)?;
/// assert!((v - (1.0 / 3f64.log2()) / (1.0 + 1.0 / 3f64.log2())).abs() < 1e-12);
/// # Ok::<(), tears_metrics::MetricsError>(())
/// ```
///
/// # Errors
/// [`MetricsError::ZeroK`] for `k = 0`, [`MetricsError::ItemOutOfRange`] for a ranked item
/// without a genre list, [`MetricsError::DuplicateItem`] for a repeated item among the first k.
pub fn genre_ndcg_at_k<G: ItemLists + ?Sized>(
    ranked: &[usize],
    item_genres: &G,
    genre: usize,
    k: usize,
) -> Result<f64> {
    if k == 0 {
        return Err(MetricsError::ZeroK);
    }
    let ranked = &ranked[..k.min(ranked.len())];
    check_items(ranked, item_genres, 0)?;
    let mut sorted = ranked.to_vec();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(MetricsError::DuplicateItem { item: w[0] });
    }
    Ok(genre_ndcg_unchecked(ranked, item_genres, genre, ideal_dcg(k)))
}

/// Checks that `item_genres` covers the lists' catalogue and `k` fits the lists.
pub(crate) fn check_lists<G: ItemLists + ?Sized>(top: &TopKLists, item_genres: &G, k: usize) -> Result<()> {
    if k == 0 {
        return Err(MetricsError::ZeroK);
    }
    if k > top.k() {
        return Err(MetricsError::KTooLarge { k, available: top.k() });
    }
    if item_genres.n_lists() != top.n_items() {
        return Err(MetricsError::SizeMismatch {
            what: "item-genre lists (one per item)",
            expected: top.n_items(),
            found: item_genres.n_lists(),
        });
    }
    Ok(())
}

/// Genre-NDCG@k of every user's ranked list for one genre, in user order.
///
/// ```
/// use tears_metrics::{NoItems, ScoreMatrix, genre_ndcg_per_user, top_k};
/// let scores = ScoreMatrix::new(&[0.9, 0.1, 0.5, /* user 1 */ 0.1, 0.9, 0.5], 2, 3)?;
/// let top = top_k(&scores, &NoItems(2), 1)?;
/// let item_genres = vec![vec![0], vec![1], vec![]];
/// assert_eq!(genre_ndcg_per_user(&top, &item_genres, 0, 1)?, vec![1.0, 0.0]);
/// # Ok::<(), tears_metrics::MetricsError>(())
/// ```
///
/// # Errors
/// [`MetricsError::ZeroK`], [`MetricsError::KTooLarge`] for `k` above the lists' `k`, and
/// [`MetricsError::SizeMismatch`] when `item_genres` does not have one list per item.
pub fn genre_ndcg_per_user<G: ItemLists + ?Sized>(
    top: &TopKLists,
    item_genres: &G,
    genre: usize,
    k: usize,
) -> Result<Vec<f64>> {
    check_lists(top, item_genres, k)?;
    let ideal = ideal_dcg(k);
    Ok((0..top.n_users())
        .into_par_iter()
        .with_min_len(64)
        .map(|u| {
            let items = top.items(u);
            genre_ndcg_unchecked(&items[..k.min(items.len())], item_genres, genre, ideal)
        })
        .collect())
}
