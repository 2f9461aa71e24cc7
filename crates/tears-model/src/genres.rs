//! GERS profiles: a user's normalised, rating-weighted genre vector.
//!
//! `g_u = Σ_{i ∈ fold-in} rating(i) · multi_hot(genres(i))`, divided by its sum so that the
//! entries are the user's genre proportions. Edits are plain vector operations
//! ([`GenreSpace::swap`], [`GenreSpace::one_hot`]), given to a model as a
//! [`tears_core::Profile::Vector`] exactly like an edited summary is given as text.

use serde::{Deserialize, Serialize};
use tears_data::split::Rating;
use tears_data::{Item, Split};

/// The genre vocabulary of a split and each item's genres.
///
/// ```
/// use tears_data::{prepare, DatasetName, PrepareOptions};
/// use tears_model::GenreSpace;
/// let split = prepare(DatasetName::Synthetic, &PrepareOptions::default())?.split;
/// let genres = GenreSpace::from_split(&split);
/// let g = genres.profile(split.test.foldin.row(0));
/// assert!((g.iter().sum::<f32>() - 1.0).abs() < 1e-5);
/// let swapped = genres.swap(&g, 0, 1);
/// assert_eq!((swapped[0], swapped[1]), (g[1], g[0]));
/// # Ok::<(), tears_data::DataError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenreSpace {
    /// Genre names, sorted.
    pub names: Vec<String>,
    /// Indices into `names` of each item's genres (item = vocabulary column).
    pub item_genres: Vec<Vec<u16>>,
}

impl GenreSpace {
    /// The genres of `split`'s items.
    pub fn from_split(split: &Split) -> Self {
        Self::from_items(&split.items)
    }

    /// The genres of `items` (in column order).
    pub fn from_items(items: &[Item]) -> Self {
        let mut names: Vec<String> = items.iter().flat_map(|i| i.genres.iter().cloned()).collect();
        names.sort();
        names.dedup();
        let item_genres = items
            .iter()
            .map(|i| {
                i.genres.iter().filter_map(|g| names.binary_search(g).ok()).map(|k| k as u16).collect::<Vec<u16>>()
            })
            .collect();
        GenreSpace { names, item_genres }
    }

    /// Number of genres (the profile's dimension).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the items have no genres at all.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The index of a genre by name (case-insensitive).
    pub fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|g| g.eq_ignore_ascii_case(name))
    }

    /// The normalised rating-weighted genre vector of `ratings` (zeros when none of the items
    /// has a genre).
    pub fn profile(&self, ratings: &[Rating]) -> Vec<f32> {
        let mut g = vec![0.0f64; self.len()];
        for r in ratings {
            if let Some(genres) = self.item_genres.get(r.item as usize) {
                for &k in genres {
                    g[k as usize] += f64::from(r.rating);
                }
            }
        }
        let total: f64 = g.iter().sum();
        if total > 0.0 {
            g.iter_mut().for_each(|v| *v /= total);
        }
        g.into_iter().map(|v| v as f32).collect()
    }

    /// The large-scope edit: genres `a` and `b` exchange their proportions.
    pub fn swap(&self, profile: &[f32], a: usize, b: usize) -> Vec<f32> {
        let mut out = profile.to_vec();
        if a < out.len() && b < out.len() {
            out.swap(a, b);
        }
        out
    }

    /// The guided edit: genre `k` gets everything, the others nothing.
    pub fn one_hot(&self, k: usize) -> Vec<f32> {
        let mut out = vec![0.0; self.len()];
        if let Some(v) = out.get_mut(k) {
            *v = 1.0;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: u64, genres: &[&str]) -> Item {
        Item { id, genres: genres.iter().map(|g| g.to_string()).collect(), ..Item::default() }
    }

    #[test]
    fn the_profile_is_the_normalised_rating_weighted_genre_sum() {
        let space = GenreSpace::from_items(&[item(1, &["Drama", "War"]), item(2, &["Comedy"]), item(3, &[])]);
        assert_eq!(space.names, vec!["Comedy", "Drama", "War"]);
        let ratings = [
            Rating { item: 0, rating: 4.0, timestamp: 0 },
            Rating { item: 1, rating: 2.0, timestamp: 1 },
            Rating { item: 2, rating: 5.0, timestamp: 2 },
        ];
        // Drama 4, War 4, Comedy 2: total 10.
        let g = space.profile(&ratings);
        for (got, want) in g.iter().zip([0.2f32, 0.4, 0.4]) {
            approx::assert_abs_diff_eq!(*got, want, epsilon = 1e-6);
        }
        assert_eq!(space.profile(&[Rating { item: 2, rating: 5.0, timestamp: 0 }]), vec![0.0; 3]);
        assert_eq!(space.one_hot(1), vec![0.0, 1.0, 0.0]);
        assert_eq!(space.index("war"), Some(2));
    }
}
