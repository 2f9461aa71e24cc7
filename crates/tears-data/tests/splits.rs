//! Protocol properties, split persistence and the synthetic dataset.

use std::collections::HashSet;

use proptest::prelude::*;
use tears_data::split::{RandomHoldout, SummaryWindow, UserCount};
use tears_data::synthetic::{SyntheticConfig, generate};
use tears_data::{Dataset, Interactions, Preprocess, Protocol, Split, SplitConfig, Values, make_split};

fn synthetic(users: usize, items: usize, seed: u64) -> Dataset {
    generate(&SyntheticConfig { users, items, seed, ..Default::default() }).expect("synthetic")
}

fn config(protocol: Protocol, seed: u64) -> SplitConfig {
    SplitConfig { dataset: "synthetic".into(), protocol, preprocess: Preprocess::default(), seed, eligible_users: None }
}

fn small_window() -> Protocol {
    Protocol::SummaryWindow(SummaryWindow {
        window: 20,
        min_heldout: 3,
        validation_users: 15,
        test_users: 15,
        fit_to_eligible: false,
    })
}

fn check_invariants(data: &Dataset, split: &Split) {
    let train: HashSet<u64> = split.train.users.iter().copied().collect();
    let val: HashSet<u64> = split.validation.users().iter().copied().collect();
    let test: HashSet<u64> = split.test.users().iter().copied().collect();
    assert!(train.is_disjoint(&val) && train.is_disjoint(&test) && val.is_disjoint(&test));
    let all: HashSet<u64> = data.users.iter().copied().collect();
    assert!(train.iter().chain(&val).chain(&test).all(|u| all.contains(u)));
    let c = &split.meta.counts;
    assert_eq!((c.train_users, c.validation_users, c.test_users), (train.len(), val.len(), test.len()));
    // Held-out and fold-in never share an item; held-out items are positives in the vocabulary.
    for set in [&split.validation, &split.test] {
        for k in 0..set.len() {
            let fold: HashSet<u32> = set.foldin.row(k).iter().map(|r| r.item).collect();
            assert!(!set.heldout.row(k).is_empty());
            for r in set.heldout.row(k) {
                assert!(!fold.contains(&r.item) && r.rating > 3.5 && (r.item as usize) < split.n_items());
            }
            // The summarizer's window never contains a held-out item.
            let window: HashSet<u64> = set.windows[k].iter().map(|w| w.item_id).collect();
            assert!(set.heldout.row(k).iter().all(|r| !window.contains(&split.items[r.item as usize].id)));
        }
    }
    // The vocabulary is exactly the items with a positive among training users.
    let mut vocab = vec![false; split.n_items()];
    for r in split.train.entries().iter().filter(|r| r.rating > 3.5) {
        vocab[r.item as usize] = true;
    }
    assert!(vocab.iter().all(|&v| v));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn random_holdout_is_disjoint_covering_and_seeded(data_seed in 0u64..1000, seed in 0u64..1000) {
        let data = synthetic(120, 150, data_seed);
        let p = Protocol::RandomHoldout(RandomHoldout::default());
        let a = make_split(&data, &config(p.clone(), seed)).expect("split");
        check_invariants(&data, &a);
        // Every user with >= 5 positives lands in exactly one set (or is dropped from evaluation).
        let eligible = data.events_by_user().iter().filter(|ev| ev.iter().filter(|e| e.rating > 3.5).count() >= 5).count();
        let c = &a.meta.counts;
        prop_assert_eq!(c.train_users + c.validation_users + c.test_users + c.dropped_evaluation_users, eligible);
        let b = make_split(&data, &config(p, seed)).expect("split");
        prop_assert_eq!(a, b);
    }

    #[test]
    fn summary_window_is_disjoint_covering_and_seeded(data_seed in 0u64..1000, seed in 0u64..1000) {
        let data = synthetic(150, 150, data_seed);
        let a = make_split(&data, &config(small_window(), seed)).expect("split");
        check_invariants(&data, &a);
        let c = &a.meta.counts;
        prop_assert_eq!(c.validation_users + c.test_users + c.dropped_evaluation_users, 30);
        prop_assert_eq!(c.train_users + 30, data.users.len());
        let b = make_split(&data, &config(small_window(), seed)).expect("split");
        prop_assert_eq!(a, b);
    }
}

#[test]
fn summary_window_holds_out_only_ratings_before_the_window() {
    let data = synthetic(200, 200, 3);
    let split = make_split(&data, &config(small_window(), 9)).expect("split");
    for set in [&split.validation, &split.test] {
        for k in 0..set.len() {
            let window = &set.windows[k];
            assert!(window.len() >= 20, "the window holds at least M ratings");
            let start = window.iter().map(|w| w.timestamp).min().expect("window");
            assert!(set.heldout.row(k).iter().all(|r| r.timestamp < start));
            // The fold-in is the window restricted to the vocabulary.
            let in_vocab = window.iter().filter(|w| w.item.is_some()).count();
            assert_eq!(set.foldin.row(k).len(), in_vocab);
        }
    }
}

#[test]
fn different_seeds_give_different_splits() {
    let data = synthetic(300, 200, 1);
    let p = Protocol::RandomHoldout(RandomHoldout::default());
    let a = make_split(&data, &config(p.clone(), 1)).expect("split");
    let b = make_split(&data, &config(p, 2)).expect("split");
    assert_ne!(a.test.users(), b.test.users());
}

#[test]
fn impossible_requests_are_clear_errors() {
    let data = synthetic(40, 100, 1);
    let p = Protocol::SummaryWindow(SummaryWindow::default());
    let err = make_split(&data, &config(p, 0)).expect_err("250 + 250 users from 40").to_string();
    assert!(err.contains("250 validation + 250 test"), "{err}");
    let p = Protocol::RandomHoldout(RandomHoldout {
        validation_users: UserCount::Count(30),
        test_users: UserCount::Count(30),
        ..Default::default()
    });
    assert!(make_split(&data, &config(p, 0)).is_err());
}

#[test]
fn split_round_trips_through_its_directory() {
    let data = synthetic(150, 150, 5);
    for p in [Protocol::RandomHoldout(RandomHoldout::default()), small_window()] {
        let split = make_split(&data, &config(p, 11)).expect("split");
        let dir = tempfile::tempdir().expect("tmp");
        split.save(dir.path()).expect("save");
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("split.json")).expect("read")).expect("json");
        for key in ["train_users", "validation_users", "test_users", "items", "train_interactions"] {
            assert!(json["counts"][key].as_u64().is_some(), "split.json counts.{key}");
        }
        assert_eq!(json["dataset"], "synthetic");
        assert_eq!(json["seed"], 11);
        let back = Split::load(dir.path()).expect("load");
        assert_eq!(back, split);
        assert_eq!(back.vocabulary_hash(), split.vocabulary_hash());
    }
}

#[test]
fn corrupt_split_file_names_file_and_line() {
    let data = synthetic(100, 120, 5);
    let split = make_split(&data, &config(Protocol::RandomHoldout(RandomHoldout::default()), 1)).expect("split");
    let dir = tempfile::tempdir().expect("tmp");
    split.save(dir.path()).expect("save");
    let path = dir.path().join("test_heldout.csv");
    let mut text = std::fs::read_to_string(&path).expect("read");
    text.push_str("999999,1,5,0\n");
    let line = text.lines().count() as u64;
    std::fs::write(&path, text).expect("write");
    match Split::load(dir.path()).expect_err("unknown user") {
        tears_data::DataError::Parse { path: p, line: l, .. } => {
            assert!(p.ends_with("test_heldout.csv"));
            assert_eq!(l, line);
        }
        other => panic!("expected a parse error, got {other}"),
    }
}

/// Recall@20 of a score matrix against held-out items, seen items masked (test helper).
fn recall_at_20(split: &Split, scores: impl Fn(&[u32]) -> Vec<f32>) -> f64 {
    let mut total = 0.0;
    for k in 0..split.test.len() {
        let seen: Vec<u32> = split.test.foldin.row(k).iter().map(|r| r.item).collect();
        let mut s = scores(&seen);
        for &i in &seen {
            s[i as usize] = f32::NEG_INFINITY;
        }
        let mut idx: Vec<usize> = (0..s.len()).collect();
        idx.sort_by(|&a, &b| s[b].total_cmp(&s[a]).then(a.cmp(&b)));
        let held: HashSet<u32> = split.test.heldout.row(k).iter().map(|r| r.item).collect();
        let hits = idx[..20].iter().filter(|&&i| held.contains(&(i as u32))).count();
        total += hits as f64 / held.len().min(20) as f64;
    }
    total / split.test.len() as f64
}

#[test]
fn synthetic_rewards_collaborative_models_over_popularity() {
    let started = std::time::Instant::now();
    let data = synthetic(2000, 1500, 0);
    let generated_in = started.elapsed();
    eprintln!("synthetic 2000 x 1500: {} ratings in {generated_in:?}", data.events.len());
    assert!(data.users.len() == 2000 && data.items.len() == 1500);
    assert!(data.items.iter().all(|i| !i.genres.is_empty() && !i.title.is_empty() && !i.tags.is_empty()));
    let split = make_split(&data, &config(Protocol::RandomHoldout(RandomHoldout::default()), 0)).expect("split");
    let n = split.n_items();
    let train = Interactions::from_rows(&split.train, n, Values::Binary { positive_above: 3.5 }).expect("csr");
    let pop: Vec<f32> = train.item_counts().iter().map(|&c| c as f32).collect();
    // Item-item cosine neighbourhood model.
    let mut co = vec![0.0f32; n * n];
    for u in 0..train.n_rows() {
        let items = train.row_items(u);
        for &a in items {
            for &b in items {
                co[a * n + b] += 1.0;
            }
        }
    }
    let norm: Vec<f32> = (0..n).map(|i| co[i * n + i].sqrt().max(1.0)).collect();
    let knn = |seen: &[u32]| -> Vec<f32> {
        let mut s = vec![0.0f32; n];
        for &i in seen {
            let i = i as usize;
            for j in 0..n {
                s[j] += co[i * n + j] / (norm[i] * norm[j]);
            }
        }
        s
    };
    // Only the positive fold-in items carry taste; use them as the kNN query.
    let r_pop = recall_at_20(&split, |_| pop.clone());
    let r_knn = recall_at_20(&split, |seen| knn(seen));
    eprintln!("synthetic recall@20: popularity {r_pop:.3}, item-kNN {r_knn:.3}");
    assert!(r_knn > 1.5 * r_pop, "kNN {r_knn:.3} should clearly beat popularity {r_pop:.3}");
}
