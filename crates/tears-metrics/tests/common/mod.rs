//! Straightforward reference implementations (full sort) the fast code is checked against.

#![allow(dead_code)]

use std::cmp::Ordering;
use std::collections::HashSet;

/// The full ranking of the unmasked items of `row`: score descending (NaN as -inf), ties by index.
pub fn ref_ranking(row: &[f32], seen: &[usize]) -> Vec<usize> {
    let seen: HashSet<usize> = seen.iter().copied().collect();
    let key = |x: f32| {
        if x.is_nan() { f64::NEG_INFINITY } else { f64::from(x) }
    };
    let mut idx: Vec<usize> = (0..row.len()).filter(|j| !seen.contains(j)).collect();
    // stable sort on the score alone keeps index order among ties
    idx.sort_by(|&a, &b| key(row[b]).partial_cmp(&key(row[a])).unwrap_or(Ordering::Equal));
    idx
}

pub fn ref_top_k(row: &[f32], seen: &[usize], k: usize) -> Vec<usize> {
    let mut r = ref_ranking(row, seen);
    r.truncate(k);
    r
}

/// (recall, plain recall, ndcg) of the first k of `ranked`, `None` for an empty held-out set.
pub fn ref_metrics(ranked: &[usize], heldout: &[usize], k: usize) -> Option<(f64, f64, f64)> {
    let h: HashSet<usize> = heldout.iter().copied().collect();
    if h.is_empty() {
        return None;
    }
    let top: Vec<usize> = ranked.iter().take(k).copied().collect();
    let hits = top.iter().filter(|i| h.contains(i)).count() as f64;
    let mut dcg = 0.0;
    for (r, i) in top.iter().enumerate() {
        if h.contains(i) {
            dcg += 1.0 / ((r + 2) as f64).log2();
        }
    }
    let idcg: f64 = (0..k.min(h.len())).map(|r| 1.0 / ((r + 2) as f64).log2()).sum();
    Some((hits / k.min(h.len()) as f64, hits / h.len() as f64, dcg / idcg))
}

pub fn ref_genre_ndcg(ranked: &[usize], item_genres: &[Vec<usize>], genre: usize, k: usize) -> f64 {
    let mut dcg = 0.0;
    for (r, &i) in ranked.iter().take(k).enumerate() {
        if item_genres[i].contains(&genre) {
            dcg += 1.0 / ((r + 2) as f64).log2();
        }
    }
    let idcg: f64 = (0..k).map(|r| 1.0 / ((r + 2) as f64).log2()).sum();
    dcg / idcg
}

pub fn mean_se(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, var.sqrt() / n.sqrt())
}
