//! Checks on the real datasets in `../shared/data` (or `$TEARS_DATA_DIR`); each test skips with a
//! message when its files are absent.

use std::collections::HashMap;

use tears_data::{DatasetName, LoadOptions, PrepareOptions, StoredSummaries, loaders, prepare, shared_data_dir};

fn root_or_skip(sub: &str) -> Option<std::path::PathBuf> {
    let dir = shared_data_dir().join(sub);
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: {} not found (set TEARS_DATA_DIR to the shared data root)", dir.display());
        None
    }
}

#[test]
fn ml100k_counts() {
    let Some(dir) = root_or_skip("ml-100k") else { return };
    let d = loaders::load_ml100k(&dir, &LoadOptions::default()).expect("load ML-100K");
    let s = d.stats(3.5);
    assert_eq!((s.events, s.users, s.items), (100_000, 943, 1682));
    assert_eq!(d.skipped_records, 0);
    let toy = d.items.iter().find(|i| i.id == 1).expect("item 1");
    assert_eq!(toy.title, "Toy Story");
    assert_eq!(toy.year, Some(1995));
    assert_eq!(toy.genres, vec!["Animation", "Children's", "Comedy"]);
}

#[test]
fn ml1m_partial_counts_and_latin1_titles() {
    let Some(dir) = root_or_skip("ml-1m") else { return };
    let d = loaders::load_ml1m(&dir, &LoadOptions::default()).expect("load ML-1M");
    assert_eq!(d.events.len(), 487_650);
    assert_eq!(d.items.len(), 3883, "movies.dat has 3,883 movies and every rated movie is in it");
    assert_eq!(d.users.iter().min(), Some(&1));
    assert_eq!(d.users.iter().max(), Some(&2999));
    // A latin-1 title decodes to the right characters.
    assert!(d.items.iter().any(|i| i.title.contains('é')), "latin-1 accents decoded");
    assert!(d.items.iter().all(|i| !i.title.contains('\u{fffd}')));
}

#[test]
fn ml1m_gpt4_benchmark_is_leak_free() {
    let Some(root) = root_or_skip("") else { return };
    if !root.join("ml-1m").is_dir() || !root.join("summaries/ml-1m").is_dir() {
        eprintln!("skipping: ML-1M or its summaries are absent under {}", root.display());
        return;
    }
    let p = prepare(DatasetName::Ml1mGpt4, &PrepareOptions { data_dir: root.clone(), ..Default::default() })
        .expect("prepare ml1m-gpt4");
    let split = &p.split;
    let c = &split.meta.counts;
    assert_eq!((c.validation_users, c.test_users), (250, 250));
    assert_eq!(c.dropped_evaluation_users, 0);
    let summaries: &StoredSummaries = p.summaries.as_ref().expect("summaries");
    // Every user of the benchmark has a summary, and the sets are disjoint.
    let mut seen = std::collections::HashSet::new();
    for &u in split.train.users.iter().chain(split.validation.users()).chain(split.test.users()) {
        assert!(summaries.get(u).is_some(), "user {u} has no summary");
        assert!(seen.insert(u), "user {u} in two sets");
        assert!(u <= 2999);
    }
    assert_eq!(c.train_users + 500, seen.len());
    // No held-out item at or after the user's window start; each user has >= 10 held-out positives.
    for set in [&split.validation, &split.test] {
        for (k, (_, held)) in set.heldout.iter().enumerate() {
            let window = &set.windows[k];
            let start = window.iter().map(|w| w.timestamp).min().expect("non-empty window");
            assert!(window.len() >= 64, "window holds at least M = 64 ratings");
            assert!(held.iter().all(|r| r.timestamp < start && r.rating > 3.5));
            assert!(held.len() >= 9, "at least 10 held-out positives before vocabulary filtering");
            let window_items: std::collections::HashSet<u64> = window.iter().map(|w| w.item_id).collect();
            assert!(held.iter().all(|r| !window_items.contains(&split.items[r.item as usize].id)));
        }
    }
    eprintln!("ml1m-gpt4 counts: {c:?}");
}

#[test]
fn shipped_summaries_cover_ml1m_users() {
    let Some(root) = root_or_skip("summaries/ml-1m") else { return };
    let path = tears_data::named::gpt4_summaries_path(root.parent().and_then(|p| p.parent()).expect("root"))
        .expect("summaries file");
    let s = StoredSummaries::load(&path).expect("load");
    assert_eq!(s.len(), 6016);
    let starts: HashMap<bool, usize> = s.texts.values().fold(HashMap::new(), |mut m, t| {
        *m.entry(t.trim_start().starts_with("Summary:")).or_default() += 1;
        m
    });
    assert!(starts.get(&true).copied().unwrap_or(0) > 6000, "{starts:?}");
}

#[test]
fn goodbooks_metadata_without_ratings_is_a_clear_error() {
    let Some(dir) = root_or_skip("goodbooks-10k") else { return };
    let err = loaders::load_goodbooks(&dir, &LoadOptions::default()).expect_err("no ratings.csv here");
    let msg = err.to_string();
    assert!(msg.contains("ratings.csv") && msg.contains("Goodbooks"), "{msg}");
    // The samples folder holds the exact formats: point ratings there and books next to them.
    let tmp = tempfile::tempdir().expect("tmp");
    for f in ["books.csv", "tags.csv"] {
        std::fs::copy(dir.join(f), tmp.path().join(f)).expect("copy");
    }
    for f in ["ratings.csv", "book_tags.csv"] {
        std::fs::copy(dir.join("samples").join(f), tmp.path().join(f)).expect("copy");
    }
    let d = loaders::load_goodbooks(tmp.path(), &LoadOptions::default()).expect("load samples");
    assert_eq!(d.items.len(), 10_000);
    assert!(!d.events.is_empty());
    let hunger = d.items.iter().find(|i| i.id == 1).expect("book 1");
    assert_eq!(hunger.title, "The Hunger Games (The Hunger Games, #1)");
    assert_eq!(hunger.year, Some(2008));
}
