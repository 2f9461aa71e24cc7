//! Properties (proptest) and agreement with the full-sort reference on random data.

mod common;

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tears_metrics::*;

/// Scores drawn from a small set so that ties are frequent, with some NaN and -inf.
fn score() -> impl Strategy<Value = f32> {
    prop_oneof![
        8 => (0u8..6).prop_map(|v| f32::from(v) / 4.0),
        4 => -10.0f32..10.0,
        1 => Just(f32::NEG_INFINITY),
        1 => Just(f32::NAN),
        1 => Just(f32::INFINITY),
    ]
}

/// `(n_users, n_items, row-major scores, seen lists, held-out lists)`.
type Problem = (usize, usize, Vec<f32>, Vec<Vec<usize>>, Vec<Vec<usize>>);

/// A random problem: scores of `n_users × n_items`, seen and held-out lists.
fn problem() -> impl Strategy<Value = Problem> {
    (1usize..6, 1usize..120).prop_flat_map(|(n_users, n_items)| {
        (
            Just(n_users),
            Just(n_items),
            prop::collection::vec(score(), n_users * n_items),
            prop::collection::vec(prop::collection::vec(0..n_items, 0..20), n_users),
            prop::collection::vec(prop::collection::vec(0..n_items, 0..15), n_users),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn top_k_equals_full_sort_prefix((n_users, n_items, data, seen, _h) in problem(), k in 1usize..150) {
        let scores = ScoreMatrix::new(&data, n_users, n_items).expect("shape");
        let top = top_k(&scores, &seen, k).expect("valid");
        for u in 0..n_users {
            let row = &data[u * n_items..(u + 1) * n_items];
            let expected = common::ref_top_k(row, &seen[u], k);
            prop_assert_eq!(top.items(u), expected.as_slice());
            prop_assert_eq!(top_k_row(row, &seen[u], k).expect("valid"), expected);
            for (s, &i) in top.scores(u).iter().zip(top.items(u)) {
                prop_assert_eq!(s.to_bits(), row[i].to_bits());
            }
        }
    }

    #[test]
    fn rank_of_is_the_position_in_the_full_ranking((n_users, n_items, data, seen, _h) in problem()) {
        let scores = ScoreMatrix::new(&data, n_users, n_items).expect("shape");
        let mut targets = Vec::new();
        for u in 0..n_users {
            let row = &data[u * n_items..(u + 1) * n_items];
            let ranking = common::ref_ranking(row, &seen[u]);
            for (pos, &item) in ranking.iter().enumerate() {
                prop_assert_eq!(rank_of(row, &seen[u], item).expect("valid"), pos);
            }
            for &s in &seen[u] {
                prop_assert!(
                    matches!(rank_of(row, &seen[u], s), Err(MetricsError::TargetMasked { .. })),
                    "a masked target must be refused"
                );
            }
            targets.push(ranking.last().copied());
        }
        let r = ranks(&scores, &seen, &targets).expect("valid");
        for (u, t) in targets.iter().enumerate() {
            let len = common::ref_ranking(&data[u * n_items..(u + 1) * n_items], &seen[u]).len();
            prop_assert_eq!(r[u], t.map(|_| len - 1));
        }
    }

    #[test]
    fn metrics_agree_with_reference_and_lie_in_unit_interval(
        (n_users, n_items, data, seen, heldout) in problem(),
        ks in prop::collection::vec(1usize..130, 1..4),
    ) {
        let scores = ScoreMatrix::new(&data, n_users, n_items).expect("shape");
        let report = evaluate(&scores, &seen, &heldout, &ks).expect("valid");
        for at in &report.results {
            let mut vals = (Vec::new(), Vec::new(), Vec::new());
            for u in 0..n_users {
                let ranked = common::ref_ranking(&data[u * n_items..(u + 1) * n_items], &seen[u]);
                if let Some((r, p, n)) = common::ref_metrics(&ranked, &heldout[u], at.k) {
                    for v in [r, p, n] {
                        prop_assert!((0.0..=1.0).contains(&v));
                    }
                    vals.0.push(r);
                    vals.1.push(p);
                    vals.2.push(n);
                }
            }
            for (agg, v) in [(at.recall, &vals.0), (at.plain_recall, &vals.1), (at.ndcg, &vals.2)] {
                prop_assert_eq!(agg.counted, v.len());
                prop_assert_eq!(agg.counted + agg.excluded, n_users);
                prop_assert!((0.0..=1.0).contains(&agg.mean));
                prop_assert!(agg.std_err.is_finite() && agg.std_err >= 0.0);
                if !v.is_empty() {
                    let (mean, se) = common::mean_se(v);
                    prop_assert!((agg.mean - mean).abs() < 1e-9, "mean {} vs {}", agg.mean, mean);
                    prop_assert!((agg.std_err - se).abs() < 1e-9);
                }
            }
        }
    }

    #[test]
    fn perfect_ranking_scores_one(
        heldout in prop::collection::btree_set(0usize..200, 1..40),
        k in 1usize..60,
    ) {
        let heldout: Vec<usize> = heldout.into_iter().collect();
        // held-out items first (in reverse, order among them does not matter), then the rest
        let mut ranked: Vec<usize> = heldout.iter().rev().copied().collect();
        ranked.extend((0..200).filter(|i| !heldout.contains(i)));
        let a = user_accuracy(&ranked, &heldout, k).expect("valid").expect("non-empty");
        prop_assert!((a.recall - 1.0).abs() < 1e-12);
        prop_assert!((a.ndcg - 1.0).abs() < 1e-12);
        let expected_plain = k.min(heldout.len()) as f64 / heldout.len() as f64;
        prop_assert!((a.plain_recall - expected_plain).abs() < 1e-12);
        // and through scores: held-out items scored highest
        let mut row = vec![0.0f32; 200];
        for &h in &heldout {
            row[h] = 1.0;
        }
        let scores = ScoreMatrix::new(&row, 1, 200).expect("shape");
        let report = evaluate(&scores, &NoItems(1), &vec![heldout.clone()], &[k]).expect("valid");
        prop_assert!((report.results[0].ndcg.mean - 1.0).abs() < 1e-12);
        prop_assert!((report.results[0].recall.mean - 1.0).abs() < 1e-12);
    }

    #[test]
    fn moving_a_hit_up_never_lowers_ndcg(
        perm in Just((0usize..60).collect::<Vec<_>>()).prop_shuffle(),
        heldout in prop::collection::btree_set(0usize..60, 1..30),
        k in 1usize..70,
        i in 0usize..60,
        j in 0usize..60,
    ) {
        let heldout: Vec<usize> = heldout.into_iter().collect();
        let mut ranked = perm;
        // a held-out item at `hi` moves up to `lo`, swapping with a non-held-out item
        let hit_pos: Vec<usize> = (0..60).filter(|&p| heldout.contains(&ranked[p])).collect();
        let miss_before = |h: usize| -> Vec<usize> { (0..h).filter(|&p| !heldout.contains(&ranked[p])).collect() };
        let mut hi = hit_pos[i % hit_pos.len()];
        if miss_before(hi).is_empty() {
            hi = hit_pos[hit_pos.len() - 1];
        }
        let misses = miss_before(hi);
        prop_assume!(!misses.is_empty());
        let lo = misses[j % misses.len()];
        let before = ndcg_at_k(&ranked, &heldout, k).expect("valid").expect("non-empty");
        let recall_before = recall_at_k(&ranked, &heldout, k).expect("valid").expect("non-empty");
        ranked.swap(lo, hi);
        let after = ndcg_at_k(&ranked, &heldout, k).expect("valid").expect("non-empty");
        let recall_after = recall_at_k(&ranked, &heldout, k).expect("valid").expect("non-empty");
        prop_assert!(after >= before - 1e-15, "ndcg fell from {} to {}", before, after);
        prop_assert!(recall_after >= recall_before);
        if lo < k {
            // the hit moved to a rank inside the cut-off: strictly better
            prop_assert!(after > before);
        }
    }

    #[test]
    fn genre_ndcg_agrees_with_reference_and_lies_in_unit_interval(
        perm in Just((0usize..50).collect::<Vec<_>>()).prop_shuffle(),
        item_genres in prop::collection::vec(prop::collection::vec(0usize..4, 0..3), 50),
        genre in 0usize..4,
        k in 1usize..60,
    ) {
        let v = genre_ndcg_at_k(&perm, &item_genres, genre, k).expect("valid");
        prop_assert!((0.0..=1.0).contains(&v));
        let r = common::ref_genre_ndcg(&perm, &item_genres, genre, k);
        prop_assert!((v - r).abs() < 1e-12);
        // all items of the genre first gives the best value reachable
        let mut best: Vec<usize> = perm.iter().copied().filter(|&i| item_genres[i].contains(&genre)).collect();
        best.extend(perm.iter().copied().filter(|&i| !item_genres[i].contains(&genre)));
        let b = genre_ndcg_at_k(&best, &item_genres, genre, k).expect("valid");
        prop_assert!(b >= v - 1e-12);
        let n_genre = best.iter().filter(|&&i| item_genres[i].contains(&genre)).count();
        prop_assert_eq!(b == 1.0, n_genre >= k);
    }
}

/// Random data at a realistic scale: top-k, Recall@k, plain recall and NDCG@k agree to 1e-6
/// with the full-sort reference, and results do not depend on the number of threads.
#[test]
fn agrees_with_reference_on_random_data() {
    let (n_users, n_items) = (300, 5000);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut data: Vec<f32> = (0..n_users * n_items).map(|_| rng.random::<f32>()).collect();
    // a tenth of the users get heavily tied, quantised scores
    for u in (0..n_users).step_by(10) {
        for x in &mut data[u * n_items..(u + 1) * n_items] {
            *x = (*x * 8.0).floor();
        }
    }
    let seen: Vec<Vec<usize>> =
        (0..n_users).map(|_| (0..rng.random_range(0..80)).map(|_| rng.random_range(0..n_items)).collect()).collect();
    let heldout: Vec<Vec<usize>> = (0..n_users)
        .map(|u| {
            if u % 17 == 0 {
                vec![]
            } else {
                (0..rng.random_range(1..60)).map(|_| rng.random_range(0..n_items)).collect()
            }
        })
        .collect();
    let scores = ScoreMatrix::new(&data, n_users, n_items).expect("shape");
    let ks = DEFAULT_KS;
    let report = evaluate(&scores, &seen, &heldout, &ks).expect("valid");
    let top = top_k(&scores, &seen, 100).expect("valid");
    let mut per_k: Vec<[Vec<f64>; 3]> = vec![[Vec::new(), Vec::new(), Vec::new()]; ks.len()];
    for u in 0..n_users {
        let ranked = common::ref_ranking(&data[u * n_items..(u + 1) * n_items], &seen[u]);
        assert_eq!(top.items(u), &ranked[..100], "user {u}");
        for (ki, &k) in ks.iter().enumerate() {
            if let Some((r, p, n)) = common::ref_metrics(&ranked, &heldout[u], k) {
                per_k[ki][0].push(r);
                per_k[ki][1].push(p);
                per_k[ki][2].push(n);
            }
        }
    }
    for (at, vals) in report.results.iter().zip(&per_k) {
        for (agg, v) in [(at.recall, &vals[0]), (at.plain_recall, &vals[1]), (at.ndcg, &vals[2])] {
            let (mean, se) = common::mean_se(v);
            assert_eq!(agg.counted, v.len());
            assert_eq!(agg.excluded, (0..n_users).filter(|u| u % 17 == 0).count());
            assert!((agg.mean - mean).abs() < 1e-6, "k={} {} vs {}", at.k, agg.mean, mean);
            assert!((agg.std_err - se).abs() < 1e-6);
        }
        assert!(at.ndcg.mean > 0.0, "random scores still hit some held-out items");
    }
    // one thread gives the very same lists and numbers
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("pool");
    let (top1, report1) = pool.install(|| {
        (top_k(&scores, &seen, 100).expect("valid"), evaluate(&scores, &seen, &heldout, &ks).expect("valid"))
    });
    assert_eq!(top1, top);
    assert_eq!(report1, report);
}
