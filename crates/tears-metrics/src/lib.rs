//! # tears-metrics
//!
//! Ranking metrics of the TEARS benchmarks over a `[users × items]` score matrix, with each
//! user's seen (fold-in) items masked:
//!
//! - top-k selection by partial selection, parallel over users, ties broken by the lower item
//!   index ([`top_k`], [`top_k_row`], [`rank_of`], [`ranks`]);
//! - accuracy: Recall@k normalised by min(k, |held-out|), plain recall@k (|held-out|), NDCG@k
//!   ([`evaluate`], [`Evaluator`] for batches of users, [`per_user_accuracy`], and single-list
//!   [`recall_at_k`], [`plain_recall_at_k`], [`ndcg_at_k`]);
//! - controllability: genre-NDCG@k ([`genre_ndcg_at_k`], [`GenreIndex`]), large-scope Δ_up /
//!   Δ_down ([`large_scope`]), small-scope rank change ([`rank_changes`]) and guided change
//!   ([`guided_changes`]);
//! - paired comparison of two models on the same users: the per-user difference, the paired
//!   t-test and the Wilcoxon signed-rank test ([`paired`]).
//!
//! Every aggregate is an [`Aggregate`]: mean, standard error (population std / sqrt(n)), the
//! number of users counted and the number excluded (users with no held-out items, never a NaN).
//!
//! Scores come from a row-major `&[f32]` / `Vec<f32>` ([`ScoreMatrix::new`],
//! [`ScoreMatrix::from_vec`]) or from a burn tensor of any backend
//! ([`ScoreMatrix::from_tensor`]). Held-out and seen items are per-user lists of item indices:
//! anything implementing [`ItemLists`] (`Vec<Vec<usize>>`, `&[Vec<usize>]`, a CSR
//! `(offsets, indices)` pair as [`CsrLists`], [`NoItems`]).
//!
//! ```
//! use tears_metrics::{ScoreMatrix, evaluate};
//!
//! // 2 users × 4 items
//! let scores = ScoreMatrix::new(&[0.9, 0.8, 0.1, 0.4, /* user 1 */ 0.2, 0.3, 0.5, 0.1], 2, 4)?;
//! let seen = vec![vec![0], vec![]]; // user 0 has seen item 0: masked
//! let heldout = vec![vec![1, 2], vec![]]; // user 1 has no held-out items: excluded
//! let report = evaluate(&scores, &seen, &heldout, &[1, 2])?;
//! let at2 = report.at(2).expect("k = 2 was evaluated");
//! assert_eq!(at2.recall.mean, 0.5); // top 2 of user 0 = [1, 3]: one hit of min(2, 2)
//! assert_eq!((at2.recall.counted, at2.recall.excluded), (1, 1));
//! # Ok::<(), tears_metrics::MetricsError>(())
//! ```

pub mod accuracy;
pub mod aggregate;
pub mod control;
pub mod error;
pub mod genre;
pub mod lists;
pub mod paired;
pub mod scores;
pub mod topk;

pub use accuracy::{
    AccuracyAtK, AccuracyReport, DEFAULT_KS, Evaluator, UserAccuracy, discount, evaluate, ideal_dcg, ndcg_at_k,
    per_user_accuracy, plain_recall_at_k, recall_at_k, user_accuracy,
};
pub use aggregate::{Accumulator, Aggregate};
pub use control::{
    GenrePair, GuidedReport, LargeScopeDeltas, LargeScopeReport, RankChange, RankChangeReport, guided_change,
    guided_changes, large_scope, large_scope_deltas, rank_change, rank_changes,
};
pub use error::{MetricsError, Result};
pub use genre::{
    DEFAULT_GENRE_K, DEFAULT_MIN_GENRE_ITEMS, GenreIndex, genre_ndcg_at_k, genre_ndcg_per_user, normalize_genre,
};
pub use lists::{CsrLists, ItemLists, NoItems};
pub use paired::{PairedComparison, compare as compare_paired};
pub use scores::ScoreMatrix;
pub use topk::{MAX_ITEMS, TopKLists, rank_of, ranks, top_k, top_k_row};
