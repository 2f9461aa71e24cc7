//! The seeded `synthetic` dataset: items with titles, genres and tags; users with latent genre
//! tastes; 1–5 ratings with timestamps. Users pick and rate items according to their tastes, so a
//! collaborative model beats popularity on it by a wide margin; no download is needed.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr_lite::{gumbel, normal};

use crate::dataset::{Dataset, DatasetBuilder, Item};
use crate::error::{DataError, Result};

/// Genres beyond MovieLens' 18 that the synthetic catalogue may use (with more than 18 genres).
const EXTRA_GENRES: [&str; 2] = ["Biography", "Sport"];

/// The name of synthetic genre `i` (0..20): MovieLens 1M's 18 genres, then a few extra genre names.
pub fn synthetic_genre(i: usize) -> &'static str {
    let movielens = &crate::loaders::ML100K_GENRES[1..];
    movielens.get(i).copied().unwrap_or_else(|| EXTRA_GENRES[(i - movielens.len()) % EXTRA_GENRES.len()])
}

const ADJECTIVES: [&str; 24] = [
    "Silent",
    "Crimson",
    "Last",
    "Hidden",
    "Broken",
    "Golden",
    "Midnight",
    "Lost",
    "Burning",
    "Frozen",
    "Secret",
    "Wild",
    "Distant",
    "Shattered",
    "Electric",
    "Quiet",
    "Restless",
    "Hollow",
    "Iron",
    "Velvet",
    "Savage",
    "Gentle",
    "Endless",
    "Forgotten",
];
const NOUNS: [&str; 24] = [
    "Harbor",
    "Empire",
    "Garden",
    "Frontier",
    "Mirror",
    "Kingdom",
    "Signal",
    "River",
    "Station",
    "Promise",
    "Machine",
    "Orchard",
    "Carnival",
    "Horizon",
    "Labyrinth",
    "Lantern",
    "Voyage",
    "Republic",
    "Tide",
    "Citadel",
    "Ballad",
    "Heist",
    "Compass",
    "Season",
];
const TAG_WORDS: [[&str; 3]; 20] = [
    ["explosions", "car chase", "martial arts"],
    ["quest", "treasure", "exotic locations"],
    ["hand-drawn", "pixar-like", "talking animals"],
    ["family", "coming of age", "school"],
    ["witty", "slapstick", "satire"],
    ["heist", "mafia", "detective"],
    ["true story", "nature", "interviews"],
    ["character study", "melancholic", "family drama"],
    ["magic", "dragons", "fairy tale"],
    ["femme fatale", "noir", "black and white"],
    ["gore", "haunted house", "slasher"],
    ["songs", "dance", "broadway"],
    ["whodunit", "twist ending", "puzzle"],
    ["love triangle", "wedding", "romcom"],
    ["space", "time travel", "dystopia"],
    ["suspense", "conspiracy", "psychological"],
    ["world war ii", "soldiers", "battle"],
    ["cowboys", "frontier", "gunfight"],
    ["biopic", "historical figure", "inspiring"],
    ["underdog", "team", "championship"],
];

/// Small, exact samplers on top of `rand` (normal by Box–Muller, Gumbel by inversion).
mod rand_distr_lite {
    use rand::Rng;

    /// A standard normal draw.
    pub fn normal(rng: &mut impl Rng) -> f64 {
        let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
        let u2: f64 = rng.random::<f64>();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// A standard Gumbel draw.
    pub fn gumbel(rng: &mut impl Rng) -> f64 {
        let u: f64 = rng.random::<f64>().clamp(1e-300, 1.0 - 1e-16);
        -(-u.ln()).ln()
    }
}

/// Parameters of the synthetic generator.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SyntheticConfig {
    /// Number of users.
    pub users: usize,
    /// Number of items.
    pub items: usize,
    /// Number of genres (10..=20).
    pub genres: usize,
    /// Dimension of the hidden taste factors beyond genres.
    pub latent_dim: usize,
    /// Median number of ratings per user.
    pub median_ratings: usize,
    /// Seed of every draw.
    pub seed: u64,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        SyntheticConfig { users: 2000, items: 1500, genres: 16, latent_dim: 8, median_ratings: 60, seed: 0 }
    }
}

/// Generates the synthetic dataset. Same config, same dataset.
///
/// ```
/// use tears_data::synthetic::{generate, SyntheticConfig};
/// let d = generate(&SyntheticConfig { users: 50, items: 80, ..Default::default() })?;
/// assert_eq!(d.users.len(), 50);
/// assert!(d.events.iter().all(|e| (1.0..=5.0).contains(&e.rating)));
/// # Ok::<(), tears_data::DataError>(())
/// ```
pub fn generate(config: &SyntheticConfig) -> Result<Dataset> {
    if !(10..=20).contains(&config.genres) {
        return Err(DataError::Config(format!("synthetic genres must be 10..=20, got {}", config.genres)));
    }
    if config.users == 0 || config.items < 20 || config.median_ratings == 0 {
        return Err(DataError::Config(
            "synthetic data needs at least 1 user, 20 items and a positive median_ratings".into(),
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let g = config.genres;
    let d = config.latent_dim.max(1);
    let mut b = DatasetBuilder::new("synthetic");

    // Items: genres, latent factors, popularity.
    let mut item_genres: Vec<Vec<usize>> = Vec::with_capacity(config.items);
    let mut item_factors: Vec<f64> = Vec::with_capacity(config.items * d);
    let mut item_bias: Vec<f64> = Vec::with_capacity(config.items);
    let mut seen_titles = std::collections::HashSet::new();
    for i in 0..config.items {
        let primary = rng.random_range(0..g);
        let mut genres = vec![primary];
        for p in [0.6, 0.25] {
            if rng.random::<f64>() < p {
                let extra = rng.random_range(0..g);
                if !genres.contains(&extra) {
                    genres.push(extra);
                }
            }
        }
        item_factors.extend((0..d).map(|_| normal(&mut rng)));
        // Zipf-like popularity over a random permutation of items.
        let rank = rng.random_range(1..=config.items) as f64;
        item_bias.push(-0.5 * rank.ln());
        let mut title = format!(
            "The {} {}",
            ADJECTIVES[rng.random_range(0..ADJECTIVES.len())],
            NOUNS[rng.random_range(0..NOUNS.len())]
        );
        let mut part = 2;
        while !seen_titles.insert(title.clone()) {
            title = format!("{} {}", title.trim_end_matches(char::is_numeric).trim_end(), part);
            part += 1;
        }
        let mut tags: Vec<String> = Vec::new();
        for &gi in &genres {
            let t = TAG_WORDS[gi][rng.random_range(0..3)];
            if !tags.iter().any(|x| x == t) {
                tags.push(t.to_string());
            }
        }
        b.add_item(Item {
            id: i as u64 + 1,
            title,
            year: Some(rng.random_range(1960..=2020)),
            genres: genres.iter().map(|&x| synthetic_genre(x).to_string()).collect(),
            tags,
        });
        item_genres.push(genres);
    }

    // Users: genre affinities (a few loved, a few disliked) and latent tastes.
    let start_2015 = 1_420_070_400i64;
    let span = 4 * 365 * 86_400i64;
    let mut logits = vec![0.0f64; config.items];
    let mut keys: Vec<(f64, usize)> = Vec::with_capacity(config.items);
    for u in 0..config.users {
        let mut affinity: Vec<f64> = (0..g).map(|_| 0.3 * normal(&mut rng)).collect();
        for _ in 0..rng.random_range(2..=3) {
            affinity[rng.random_range(0..g)] = 1.5 + 0.3 * normal(&mut rng);
        }
        for _ in 0..rng.random_range(1..=2) {
            affinity[rng.random_range(0..g)] = -1.5 + 0.3 * normal(&mut rng);
        }
        let taste: Vec<f64> = (0..d).map(|_| normal(&mut rng)).collect();
        let scale = 1.0 / (d as f64).sqrt();
        for i in 0..config.items {
            let genre_aff: f64 = item_genres[i].iter().map(|&x| affinity[x]).sum::<f64>() / item_genres[i].len() as f64;
            let latent: f64 =
                item_factors[i * d..(i + 1) * d].iter().zip(&taste).map(|(a, b)| a * b).sum::<f64>() * scale;
            logits[i] = genre_aff + 0.8 * latent;
        }
        let n = ((config.median_ratings as f64) * (0.6 * normal(&mut rng)).exp()).round() as usize;
        let n = n.clamp(20.min(config.items / 2), config.items / 2);
        // Gumbel top-n: a draw without replacement from softmax(bias + 2.5 * affinity).
        keys.clear();
        keys.extend((0..config.items).map(|i| (item_bias[i] + 2.5 * logits[i] + gumbel(&mut rng), i)));
        keys.select_nth_unstable_by(n - 1, |a, b| b.0.total_cmp(&a.0));
        keys.truncate(n);
        keys.sort_by_key(|&(_, i)| i);
        let mut t = start_2015 + rng.random_range(0..span);
        let order: Vec<usize> = {
            let mut o: Vec<usize> = keys.iter().map(|&(_, i)| i).collect();
            rand::seq::SliceRandom::shuffle(&mut o[..], &mut rng);
            o
        };
        for i in order {
            let r = (1.6 + 1.5 * logits[i] + 0.9 * normal(&mut rng)).round().clamp(1.0, 5.0);
            t += 60 + (-(rng.random::<f64>().max(1e-12)).ln() * 86_400.0) as i64;
            b.rate(u as u64 + 1, i as u64 + 1, r as f32, t);
        }
    }
    Ok(b.finish())
}
