//! Hand-computed cases: ties, |held-out| below and above k, empty held-out sets, masking,
//! controllability metrics, errors, and tensor input.

mod common;

use burn::tensor::Tensor;
use tears_metrics::*;

const EPS: f64 = 1e-12;

fn d(rank: usize) -> f64 {
    1.0 / ((rank + 1) as f64).log2()
}

#[test]
fn ties_break_by_lower_index_and_masked_items_vanish() {
    let row = [0.5, 0.7, 0.5, 0.7, 0.1];
    assert_eq!(top_k_row(&row, &[], 3).expect("valid"), vec![1, 3, 0]);
    assert_eq!(top_k_row(&row, &[1], 3).expect("valid"), vec![3, 0, 2]);
    // all tied: plain index order, seen items skipped
    let flat = [2.0f32; 40];
    assert_eq!(top_k_row(&flat, &[0, 2, 33], 5).expect("valid"), vec![1, 3, 4, 5, 6]);
    // +0.0 and -0.0 are equal scores: index order
    assert_eq!(top_k_row(&[-0.0, 0.0], &[], 2).expect("valid"), vec![0, 1]);
    assert_eq!(top_k_row(&[0.0, -0.0], &[], 2).expect("valid"), vec![0, 1]);
}

#[test]
fn ties_across_the_threshold_in_a_long_row() {
    // 1000 items, every 7th scores 1.0, the rest 0.5: k = 100 crosses into the 0.5 block and
    // many compactions happen with thresholds equal to later scores.
    let row: Vec<f32> = (0..1000).map(|i| if i % 7 == 0 { 1.0 } else { 0.5 }).collect();
    let top = top_k_row(&row, &[7, 8], 200).expect("valid");
    let mut expected: Vec<usize> = (0..1000).filter(|i| i % 7 == 0 && *i != 7).collect();
    expected.extend((0..1000).filter(|i| i % 7 != 0 && *i != 8));
    expected.truncate(200);
    assert_eq!(top, expected);
}

#[test]
fn sampled_threshold_and_its_fallbacks_are_exact() {
    // Long rows (n >= 32 k) start from a threshold estimated on every 16th score.
    let n = 20_000;
    // 1. every sampled position holds the maximum, all tied: nothing lies strictly above the
    //    estimate, so the selection starts again; ties go by index.
    let row: Vec<f32> = (0..n).map(|i| if i % 16 == 0 { 1.0 } else { 0.0 }).collect();
    let expected: Vec<usize> = (0..100).map(|i| i * 16).collect();
    assert_eq!(top_k_row(&row, &[], 100).expect("valid"), expected);
    // 2. pseudo-random scores whose best 150 items are masked: fewer than k unmasked items lie
    //    above the estimate.
    let row: Vec<f32> = (0..n).map(|i| ((i * 7_919 + 13) % 10_007) as f32).collect();
    let best150 = common::ref_top_k(&row, &[], 150);
    assert_eq!(top_k_row(&row, &best150, 100).expect("valid"), common::ref_top_k(&row, &best150, 100));
    // 3. ascending scores (the worst order for a running threshold) and descending ones
    let up: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let expected: Vec<usize> = (n - 100..n).rev().collect();
    assert_eq!(top_k_row(&up, &[], 100).expect("valid"), expected);
    let down: Vec<f32> = (0..n).map(|i| -(i as f32)).collect();
    assert_eq!(top_k_row(&down, &[3], 100).expect("valid"), common::ref_top_k(&down, &[3], 100));
    // 4. mostly NaN / -inf with a few finite scores
    let sparse: Vec<f32> = (0..n)
        .map(|i| match i % 1000 {
            0 => i as f32,
            1..=500 => f32::NAN,
            _ => f32::NEG_INFINITY,
        })
        .collect();
    assert_eq!(top_k_row(&sparse, &[0], 100).expect("valid"), common::ref_top_k(&sparse, &[0], 100));
}

#[test]
fn nan_and_negative_infinity_rank_last_by_index() {
    let row = [f32::NAN, f32::NEG_INFINITY, 1.0, f32::NAN, -5.0];
    assert_eq!(top_k_row(&row, &[], 5).expect("valid"), vec![2, 4, 0, 1, 3]);
    assert_eq!(top_k_row(&row, &[0], 3).expect("valid"), vec![2, 4, 1]);
    assert_eq!(rank_of(&row, &[], 3).expect("valid"), 4);
    assert_eq!(rank_of(&row, &[0], 3).expect("valid"), 3);
}

#[test]
fn k_above_catalogue_and_fully_masked_users() {
    let scores = ScoreMatrix::new(&[0.1, 0.3, 0.2, /* */ 0.5, 0.4, 0.6], 2, 3).expect("shape");
    let top = top_k(&scores, &vec![vec![], vec![0, 1, 2]], 10).expect("valid");
    assert_eq!(top.k(), 10);
    assert_eq!(top.items(0), &[1, 2, 0]);
    assert_eq!(top.scores(0), &[0.3, 0.2, 0.1]);
    assert!(top.items(1).is_empty());
    assert!(top.items(2).is_empty());
    // the fully masked user with a held-out item counts with zero hits
    let report = evaluate(&scores, &vec![vec![], vec![0, 1, 2]], &vec![vec![0], vec![1]], &[10]).expect("valid");
    let at = report.at(10).expect("k = 10");
    assert_eq!((at.recall.counted, at.recall.excluded), (2, 0));
    assert!((at.recall.mean - 0.5).abs() < EPS);
}

#[test]
fn heldout_smaller_than_k() {
    let ranked: Vec<usize> = (0..10).collect();
    let heldout = [2, 50];
    let a = user_accuracy(&ranked, &heldout, 5).expect("valid").expect("non-empty");
    assert_eq!((a.hits, a.n_heldout), (1, 2));
    assert!((a.recall - 0.5).abs() < EPS);
    assert!((a.plain_recall - 0.5).abs() < EPS);
    let expected = d(3) / (d(1) + d(2));
    assert!((a.ndcg - expected).abs() < EPS);
    assert!((a.ndcg - 0.306_573_6).abs() < 1e-6);
    // duplicates in the held-out list count once
    let b = user_accuracy(&ranked, &[2, 50, 2], 5).expect("valid").expect("non-empty");
    assert_eq!(a, b);
}

#[test]
fn heldout_larger_than_k() {
    let heldout: Vec<usize> = (0..8).collect();
    let a = user_accuracy(&[0, 9, 1], &heldout, 3).expect("valid").expect("non-empty");
    assert_eq!(a.hits, 2);
    assert!((a.recall - 2.0 / 3.0).abs() < EPS);
    assert!((a.plain_recall - 0.25).abs() < EPS);
    let expected = (d(1) + d(3)) / (d(1) + d(2) + d(3));
    assert!((a.ndcg - expected).abs() < EPS);
    assert!((a.ndcg - 0.703_918_9).abs() < 1e-6);
    // the ideal comes from the held-out set, not from the hits found: 1 hit at rank 1 of 3
    // possible is not a perfect score
    let one = ndcg_at_k(&[0, 20, 21], &heldout, 3).expect("valid").expect("non-empty");
    assert!((one - 1.0 / (d(1) + d(2) + d(3))).abs() < EPS);
}

#[test]
fn empty_heldout_is_excluded_not_nan() {
    assert_eq!(recall_at_k(&[1, 2], &[], 2).expect("valid"), None);
    assert_eq!(ndcg_at_k(&[1, 2], &[], 2).expect("valid"), None);
    let scores = ScoreMatrix::new(&[0.9, 0.1, /* */ 0.2, 0.8, /* */ 0.5, 0.5], 3, 2).expect("shape");
    let report = evaluate(&scores, &NoItems(3), &vec![vec![0], vec![], vec![0]], &[1]).expect("valid");
    let at1 = report.at(1).expect("k = 1");
    for agg in [at1.recall, at1.plain_recall, at1.ndcg] {
        assert_eq!((agg.counted, agg.excluded), (2, 1));
        assert!((agg.mean - 1.0).abs() < EPS);
        assert_eq!(agg.std_err, 0.0);
    }
    // nobody counted: zeros, not NaN
    let none = evaluate(&scores, &NoItems(3), &NoItems(3), &[1]).expect("valid");
    let at = none.at(1).expect("k = 1");
    assert_eq!((at.ndcg.counted, at.ndcg.excluded), (0, 3));
    assert!(!at.ndcg.mean.is_nan() && !at.ndcg.std_err.is_nan());
}

#[test]
fn aggregate_standard_error_is_population_std_over_sqrt_n() {
    let a = Aggregate::from_values([Some(1.0), Some(0.0), Some(1.0), Some(0.0), None]);
    assert!((a.mean - 0.5).abs() < EPS);
    assert!((a.std_err - 0.25).abs() < EPS);
    assert_eq!((a.counted, a.excluded), (4, 1));
    // merging batch accumulators equals one pass
    let values = [0.3, 0.9, 0.1, 0.4, 0.4, 0.8, 0.05];
    let mut whole = Accumulator::new();
    let (mut left, mut right) = (Accumulator::new(), Accumulator::new());
    for (i, &v) in values.iter().enumerate() {
        whole.push(Some(v));
        if i < 3 { left.push(Some(v)) } else { right.push(Some(v)) }
    }
    left.merge(&right);
    let (w, m) = (whole.finish(), left.finish());
    let (mean, se) = common::mean_se(&values);
    assert!((w.mean - mean).abs() < EPS && (w.std_err - se).abs() < EPS);
    assert!((m.mean - mean).abs() < EPS && (m.std_err - se).abs() < EPS);
}

#[test]
fn evaluator_over_batches_equals_one_pass() {
    let n_users = 9;
    let n_items = 30;
    let data: Vec<f32> = (0..n_users * n_items).map(|i| ((i * 7919) % 101) as f32 / 101.0).collect();
    let seen: Vec<Vec<usize>> = (0..n_users).map(|u| vec![u, u + 3]).collect();
    let heldout: Vec<Vec<usize>> = (0..n_users)
        .map(|u| if u == 4 { vec![] } else { (0..(u % 5 + 1)).map(|j| (u * 3 + j * 5) % n_items).collect() })
        .collect();
    let whole =
        evaluate(&ScoreMatrix::new(&data, n_users, n_items).expect("shape"), &seen, &heldout, &[3, 10]).expect("valid");
    let mut ev = Evaluator::new(&[10, 3, 10]).expect("ks");
    assert_eq!(ev.ks(), &[3, 10]);
    for (start, end) in [(0, 4), (4, 5), (5, 9)] {
        let batch = ScoreMatrix::new(&data[start * n_items..end * n_items], end - start, n_items).expect("shape");
        ev.add(&batch, &seen[start..end], &heldout[start..end]).expect("valid");
    }
    let batched = ev.report();
    for (a, b) in whole.results.iter().zip(&batched.results) {
        assert_eq!(a.k, b.k);
        for (x, y) in [(a.recall, b.recall), (a.plain_recall, b.plain_recall), (a.ndcg, b.ndcg)] {
            assert_eq!((x.counted, x.excluded), (8, 1));
            assert_eq!((x.counted, x.excluded), (y.counted, y.excluded));
            assert!((x.mean - y.mean).abs() < 1e-12 && (x.std_err - y.std_err).abs() < 1e-12);
        }
    }
    // and agrees with the reference
    let ndcgs: Vec<f64> = (0..n_users)
        .filter_map(|u| {
            let ranked = common::ref_ranking(&data[u * n_items..(u + 1) * n_items], &seen[u]);
            common::ref_metrics(&ranked, &heldout[u], 10).map(|m| m.2)
        })
        .collect();
    let (mean, se) = common::mean_se(&ndcgs);
    let at10 = whole.at(10).expect("k = 10");
    assert!((at10.ndcg.mean - mean).abs() < 1e-12 && (at10.ndcg.std_err - se).abs() < 1e-12);
}

#[test]
fn csr_lists_give_the_same_results_as_vectors() {
    let data: Vec<f32> = (0..3 * 6).map(|i| ((i * 37) % 11) as f32).collect();
    let scores = ScoreMatrix::new(&data, 3, 6).expect("shape");
    let seen_v = vec![vec![1, 2], vec![], vec![5]];
    // a CSR batch with offsets that do not start at 0
    let offsets = [4, 6, 6, 7];
    let indices = [9, 9, 9, 9, 1, 2, 5];
    let seen_c = CsrLists::new(&offsets, &indices).expect("valid CSR");
    assert_eq!(top_k(&scores, &seen_v, 4).expect("valid"), top_k(&scores, &seen_c, 4).expect("valid"));
    assert!(matches!(CsrLists::new(&[], &indices), Err(MetricsError::InvalidCsr(_))));
    assert!(matches!(CsrLists::new(&[0, 3, 2], &indices), Err(MetricsError::InvalidCsr(_))));
    assert!(matches!(CsrLists::new(&[0, 8], &indices), Err(MetricsError::InvalidCsr(_))));
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let scores = ScoreMatrix::new(&[0.0; 6], 2, 3).expect("shape");
    assert!(matches!(ScoreMatrix::new(&[0.0; 5], 2, 3), Err(MetricsError::SizeMismatch { .. })));
    assert!(matches!(ScoreMatrix::new(&[], usize::MAX, 2), Err(MetricsError::Config(_))));
    assert_eq!(top_k(&scores, &NoItems(2), 0), Err(MetricsError::ZeroK));
    assert!(matches!(top_k(&scores, &NoItems(3), 1), Err(MetricsError::SizeMismatch { .. })));
    assert_eq!(
        top_k(&scores, &vec![vec![], vec![3]], 1),
        Err(MetricsError::ItemOutOfRange { what: "seen items", list: 1, item: 3, n_items: 3 })
    );
    assert!(matches!(
        evaluate(&scores, &NoItems(2), &vec![vec![0], vec![7]], &[1]),
        Err(MetricsError::ItemOutOfRange { list: 1, item: 7, .. })
    ));
    assert!(matches!(evaluate(&scores, &NoItems(2), &NoItems(2), &[]), Err(MetricsError::Config(_))));
    assert_eq!(evaluate(&scores, &NoItems(2), &NoItems(2), &[5, 0]), Err(MetricsError::ZeroK));
    let top = top_k(&scores, &NoItems(2), 2).expect("valid");
    assert_eq!(per_user_accuracy(&top, &NoItems(2), &[3]), Err(MetricsError::KTooLarge { k: 3, available: 2 }));
    assert_eq!(ndcg_at_k(&[1, 2, 1], &[1], 3), Err(MetricsError::DuplicateItem { item: 1 }));
    assert_eq!(rank_of(&[0.1, 0.2], &[1], 1), Err(MetricsError::TargetMasked { user: 0, item: 1 }));
    assert!(matches!(rank_of(&[0.1, 0.2], &[], 2), Err(MetricsError::ItemOutOfRange { .. })));
    assert!(matches!(ranks(&scores, &NoItems(2), &[None]), Err(MetricsError::SizeMismatch { .. })));
    assert!(matches!(rank_change(&[0.1, 0.2], &[0.1], &[], 0), Err(MetricsError::SizeMismatch { .. })));
    let genres = vec![vec![0]; 2];
    assert!(matches!(genre_ndcg_per_user(&top, &genres, 0, 1), Err(MetricsError::SizeMismatch { .. })));
    assert!(matches!(genre_ndcg_at_k(&[5], &genres, 0, 1), Err(MetricsError::ItemOutOfRange { .. })));
    // an empty catalogue is not an error: every list is empty
    let empty = ScoreMatrix::new(&[], 2, 0).expect("shape");
    let top0 = top_k(&empty, &NoItems(2), 5).expect("valid");
    assert!(top0.items(0).is_empty() && top0.items(1).is_empty());
}

#[test]
fn genre_index_and_genre_ndcg() {
    let names = vec![vec!["Sci-Fi", "Drama"], vec!["drama"], vec!["Horror", "sci fi"], vec!["Drama", "DRAMA"], vec![]];
    let genres = GenreIndex::from_item_genres(&names, 1);
    assert_eq!(genres.names(), &["drama".to_string(), "sci fi".to_string()]);
    assert_eq!(genres.item_count(0), Some(3));
    assert_eq!(genres.id("Sci-Fi"), Some(1));
    assert_eq!(genres.id("horror"), None); // attached to one item only
    assert_eq!(genres.most_frequent(10), vec![0, 1]);
    assert!(genres.has_genre(2, 1) && !genres.has_genre(1, 1));
    // ranked [4, 0, 2]: sci fi at ranks 2 and 3, normalised by the 3-item ideal
    let v = genre_ndcg_at_k(&[4, 0, 2], &genres, 1, 3).expect("valid");
    assert!((v - (d(2) + d(3)) / (d(1) + d(2) + d(3))).abs() < EPS);
    // a list shorter than k still uses the k-item ideal
    let short = genre_ndcg_at_k(&[1], &genres, 0, 2).expect("valid");
    assert!((short - 1.0 / (d(1) + d(2))).abs() < EPS);
    assert_eq!(genre_ndcg_at_k(&[0, 1, 3], &genres, 0, 3).expect("valid"), 1.0);
    assert_eq!(genre_ndcg_at_k(&[4, 1], &genres, 1, 2).expect("valid"), 0.0);
}

#[test]
fn large_scope_deltas_by_hand() {
    // items: 0,1 genre A (0); 2,3 genre B (1); 4 both
    let item_genres = vec![vec![0], vec![0], vec![1], vec![1], vec![0, 1]];
    let pair = GenrePair { favourite: 0, least_favourite: 1 };
    // original [0, 4, 2], edited [2, 4, 0]
    let dl = large_scope_deltas(&[0, 4, 2], &[2, 4, 0], pair, &item_genres, 3).expect("valid");
    let ideal = d(1) + d(2) + d(3);
    let a_orig = (d(1) + d(2)) / ideal;
    let a_edit = (d(2) + d(3)) / ideal;
    let b_orig = (d(2) + d(3)) / ideal;
    let b_edit = (d(1) + d(2)) / ideal;
    assert!((dl.delta_down - (a_orig - a_edit)).abs() < EPS);
    assert!((dl.delta_up - (b_edit - b_orig)).abs() < EPS);
    assert!(dl.delta_down > 0.0 && dl.delta_up > 0.0);
    // an edit that made things worse gives negative deltas
    let worse = large_scope_deltas(&[2, 4, 0], &[0, 4, 2], pair, &item_genres, 3).expect("valid");
    assert!((worse.delta_up + dl.delta_up).abs() < EPS && worse.delta_up < 0.0);

    let orig = ScoreMatrix::new(&[0.9, 0.1, 0.5, 0.2, 0.8], 1, 5).expect("shape");
    let edit = ScoreMatrix::new(&[0.2, 0.1, 0.9, 0.5, 0.8], 1, 5).expect("shape");
    let (to, te) = (top_k(&orig, &NoItems(1), 3).expect("valid"), top_k(&edit, &NoItems(1), 3).expect("valid"));
    assert_eq!(to.items(0), &[0, 4, 2]);
    assert_eq!(te.items(0), &[2, 4, 3]);
    let report = large_scope(&to, &te, &[Some(pair)], &item_genres, 3).expect("valid");
    let b_edit2 = (d(1) + d(2) + d(3)) / ideal;
    assert!((report.delta_up.mean - (b_edit2 - b_orig)).abs() < EPS);
    assert_eq!(report.per_user.len(), 1);
    assert!(matches!(large_scope(&to, &te, &[Some(pair)], &item_genres, 4), Err(MetricsError::KTooLarge { .. })));
}

#[test]
fn rank_change_and_guided_change_by_hand() {
    // target 3: before, items 0, 1, 2 beat it (item 2 ties it with a lower index); item 1 masked
    let before = [0.9, 0.8, 0.4, 0.4, 0.1];
    let after = [0.9, 0.8, 0.4, 0.85, 0.1];
    let rc = rank_change(&before, &after, &[1], 3).expect("valid");
    assert_eq!((rc.before, rc.after, rc.change), (2, 1, 1));
    let down = rank_change(&after, &before, &[1], 3).expect("valid");
    assert_eq!(down.change, -1);

    let b = ScoreMatrix::from_vec([before, after, before].concat(), 3, 5).expect("shape");
    let a = ScoreMatrix::from_vec([after, before, after].concat(), 3, 5).expect("shape");
    let report = rank_changes(&b, &a, &vec![vec![1], vec![], vec![]], &[Some(3), Some(3), None]).expect("valid");
    // user 0: 2 -> 1 (+1); user 1 (nothing masked): 1 -> 3 (-2)
    assert_eq!(report.per_user[1].map(|r| (r.before, r.after, r.change)), Some((1, 3, -2)));
    assert_eq!(report.per_user[2], None);
    assert!((report.change.mean + 0.5).abs() < EPS);
    assert!((report.change.std_err - 1.5 / 2f64.sqrt()).abs() < EPS);
    assert_eq!((report.change.counted, report.change.excluded), (2, 1));

    // guided: baseline lists have no genre-0 item, guided have two of two
    let item_genres = vec![vec![0], vec![1], vec![0], vec![1]];
    let base = top_k(&ScoreMatrix::new(&[0.1, 0.9, 0.2, 0.8], 1, 4).expect("shape"), &NoItems(1), 2).expect("valid");
    let guided = top_k(&ScoreMatrix::new(&[0.9, 0.1, 0.8, 0.2], 1, 4).expect("shape"), &NoItems(1), 2).expect("valid");
    let g = guided_changes(&base, &guided, &item_genres, 0, 2).expect("valid");
    assert_eq!(g.per_user, vec![1.0]);
    let less = guided_changes(&base, &guided, &item_genres, 1, 2).expect("valid");
    assert_eq!(less.change.mean, -1.0);
    assert_eq!(guided_change(&[1, 3], &[0, 2], &item_genres, 0, 2).expect("valid"), 1.0);
}

#[test]
fn tensor_input_matches_slice_input() {
    type B = burn::backend::Flex;
    let device = Default::default();
    let rows = [[0.3f32, 0.1, 0.9, 0.9, 0.2], [0.0, 0.5, 0.5, 0.4, 0.6]];
    let t = Tensor::<B, 2>::from_floats(rows, &device);
    let from_tensor = ScoreMatrix::from_tensor(t).expect("readable");
    let flat: Vec<f32> = rows.concat();
    let from_slice = ScoreMatrix::new(&flat, 2, 5).expect("shape");
    assert_eq!(from_tensor.as_slice(), from_slice.as_slice());
    let seen = vec![vec![2], vec![4]];
    let heldout = vec![vec![3, 0], vec![2]];
    let a = evaluate(&from_tensor, &seen, &heldout, &[1, 3]).expect("valid");
    let b = evaluate(&from_slice, &seen, &heldout, &[1, 3]).expect("valid");
    assert_eq!(a, b);
    let top = top_k(&from_tensor, &seen, 2).expect("valid");
    assert_eq!(top.items(0), &[3, 0]);
    assert_eq!(top.items(1), &[1, 2]);
    let at1 = a.at(1).expect("k = 1");
    assert!((at1.recall.mean - 0.5).abs() < EPS);
}

#[test]
fn reports_serialize() {
    let scores = ScoreMatrix::new(&[0.9, 0.1], 1, 2).expect("shape");
    let report = evaluate(&scores, &NoItems(1), &vec![vec![0]], &[1]).expect("valid");
    let json = serde_json::to_string(&report).expect("serializable");
    let back: AccuracyReport = serde_json::from_str(&json).expect("deserializable");
    assert_eq!(report, back);
    assert!(json.contains("\"counted\":1"));
}
