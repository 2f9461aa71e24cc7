//! EASE against a direct dense computation, the baselines on synthetic data, model directories.
#![allow(clippy::needless_range_loop)] // matrix formulas read best with explicit indices

use tears_baselines::ease::{check_memory, ease_weights, gram_matrix};
use tears_baselines::{
    BaselineError, Ease, EaseConfig, EvalOptions, Fit, Popularity, Recommender, evaluate_model, evaluate_split,
    load_model, save_model,
};
use tears_data::split::{Rating, UserRows};
use tears_data::{DatasetName, EvalSet, Interactions, PrepareOptions, Split, Values, prepare};

fn rating(item: u32, rating: f32) -> Rating {
    Rating { item, rating, timestamp: 0 }
}

/// 5 users × 4 items, ratings above and below the 3.5 threshold.
fn tiny_rows() -> UserRows {
    let mut rows = UserRows::new();
    rows.push(1, [rating(0, 5.0), rating(1, 4.0), rating(3, 2.0)]);
    rows.push(2, [rating(1, 5.0), rating(2, 4.0)]);
    rows.push(3, [rating(0, 4.0), rating(2, 5.0), rating(3, 5.0)]);
    rows.push(4, [rating(3, 4.0), rating(1, 1.0)]);
    rows.push(5, [rating(0, 5.0), rating(1, 5.0), rating(2, 5.0), rating(3, 5.0)]);
    rows
}

/// The dense binary matrix of `tiny_rows`, written out by hand.
const TINY_X: [[f64; 4]; 5] =
    [[1., 1., 0., 0.], [0., 1., 1., 0.], [1., 0., 1., 1.], [0., 0., 0., 1.], [1., 1., 1., 1.]];

/// Gauss–Jordan inverse with partial pivoting: independent of faer.
fn dense_inverse(a: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let n = a.len();
    let mut m: Vec<Vec<f64>> = a
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut r = row.clone();
            r.extend((0..n).map(|j| if i == j { 1.0 } else { 0.0 }));
            r
        })
        .collect();
    for c in 0..n {
        let p = (c..n).max_by(|&x, &y| m[x][c].abs().total_cmp(&m[y][c].abs())).expect("rows");
        m.swap(c, p);
        let d = m[c][c];
        m[c].iter_mut().for_each(|v| *v /= d);
        for r in 0..n {
            if r != c {
                let f = m[r][c];
                let pivot = m[c].clone();
                m[r].iter_mut().zip(&pivot).for_each(|(v, pv)| *v -= f * pv);
            }
        }
    }
    m.into_iter().map(|r| r[n..].to_vec()).collect()
}

#[test]
fn gram_matrix_is_xtx() {
    let x = Interactions::from_rows(&tiny_rows(), 4, Values::Binary { positive_above: 3.5 }).expect("matrix");
    let g = gram_matrix(&x);
    for i in 0..4 {
        for j in 0..4 {
            let direct: f64 = TINY_X.iter().map(|row| row[i] * row[j]).sum();
            assert_eq!(g[i * 4 + j], direct, "G[{i},{j}]");
        }
    }
}

#[test]
fn ease_weights_match_a_direct_dense_inverse() {
    let x = Interactions::from_rows(&tiny_rows(), 4, Values::Binary { positive_above: 3.5 }).expect("matrix");
    let g = gram_matrix(&x);
    for lambda in [0.5, 1.0, 10.0] {
        let b = ease_weights(&g, 4, lambda).expect("weights");
        let a: Vec<Vec<f64>> =
            (0..4).map(|i| (0..4).map(|j| g[i * 4 + j] + if i == j { lambda } else { 0.0 }).collect()).collect();
        let p = dense_inverse(&a);
        for i in 0..4 {
            assert_eq!(b[i * 4 + i], 0.0, "diagonal must be exactly zero");
            for j in 0..4 {
                let expected = if i == j { 0.0 } else { -p[i][j] / p[j][j] };
                assert!((b[i * 4 + j] - expected).abs() < 1e-9, "B[{i},{j}] = {} vs {expected}", b[i * 4 + j]);
            }
        }
        // The EASE optimality condition: (G + λI)(I − B) is diagonal (= diag(1 / P_jj)).
        for i in 0..4 {
            for j in 0..4 {
                let v: f64 = (0..4).map(|k| a[i][k] * (if k == j { 1.0 } else { 0.0 } - b[k * 4 + j])).sum();
                let expected = if i == j { 1.0 / p[j][j] } else { 0.0 };
                assert!((v - expected).abs() < 1e-9, "(G+λI)(I−B)[{i},{j}] = {v}");
            }
        }
        // Negative weights are kept, not clipped: with λ = 0.5 some item pair is anti-correlated.
        if lambda == 0.5 {
            assert!(b.iter().any(|&w| w < 0.0), "{b:?}");
        }
    }
}

#[test]
fn ease_scores_are_x_times_b() {
    let rows = tiny_rows();
    let x = Interactions::from_rows(&rows, 4, Values::Binary { positive_above: 3.5 }).expect("matrix");
    let b = ease_weights(&gram_matrix(&x), 4, 2.0).expect("weights");
    let model = Ease::from_weights(&b, 4, 2.0, 3.5).expect("model");
    let scores = model.score(&rows).expect("scores");
    assert_eq!(scores.dim(), (TINY_X.len(), 4));
    for (u, xrow) in TINY_X.iter().enumerate() {
        for j in 0..4 {
            let direct: f64 = (0..4).map(|i| xrow[i] * b[i * 4 + j]).sum();
            assert!((scores[[u, j]] as f64 - direct).abs() < 1e-5, "user {u} item {j}");
        }
    }
}

#[test]
fn singular_gram_without_ridge_is_a_numerical_error_and_bad_lambdas_are_refused() {
    // A symmetric matrix with a negative eigenvalue (−1) cannot be factored by Cholesky.
    let indefinite = [1.0, 2.0, 2.0, 1.0];
    let err = ease_weights(&indefinite, 2, 0.0).expect_err("indefinite");
    assert!(matches!(err, BaselineError::Numerical(_)) && err.to_string().contains("larger lambda"), "{err}");
    // A large enough ridge makes it positive definite.
    assert!(ease_weights(&indefinite, 2, 2.0).is_ok());
    let g = [2.0, 2.0, 2.0, 2.0];
    assert!(matches!(ease_weights(&g, 2, -1.0), Err(BaselineError::Config(_))));
    assert!(matches!(ease_weights(&g, 2, f64::NAN), Err(BaselineError::Config(_))));
    assert!(matches!(ease_weights(&g, 3, 1.0), Err(BaselineError::Config(_))));
}

fn synthetic(seed: u64) -> Split {
    prepare(DatasetName::Synthetic, &PrepareOptions { seed, ..PrepareOptions::default() }).expect("synthetic").split
}

#[test]
fn ease_beats_popularity_by_a_wide_margin_on_synthetic_data() {
    let split = synthetic(0);
    let ease = Ease::fit(&split, &EaseConfig::default(), 0).expect("ease");
    let pop = Popularity::fit(&split, &(), 0).expect("pop");
    let options = EvalOptions::default();
    let e = evaluate_split(&ease, &split, EvalSet::Test, &options).expect("eval ease");
    let p = evaluate_split(&pop, &split, EvalSet::Test, &options).expect("eval pop");
    for k in [20, 50] {
        let (e, p) = (e.at(k).expect("k"), p.at(k).expect("k"));
        assert!(e.ndcg.mean > 1.3 * p.ndcg.mean, "ndcg@{k}: ease {} vs pop {}", e.ndcg.mean, p.ndcg.mean);
        assert!(e.recall.mean > 1.3 * p.recall.mean, "recall@{k}: ease {} vs pop {}", e.recall.mean, p.recall.mean);
        assert!(e.ndcg.mean - p.ndcg.mean > 3.0 * (e.ndcg.std_err + p.ndcg.std_err));
    }
    // The chosen λ is the best of the trials on validation NDCG@20.
    let best = ease.trials().iter().map(|t| t.validation_ndcg.expect("validated")).fold(f64::NEG_INFINITY, f64::max);
    let chosen = ease.trials().iter().find(|t| t.lambda == ease.lambda()).expect("chosen λ was tried");
    assert_eq!(chosen.validation_ndcg, Some(best));
    assert_eq!(ease.trials().len(), EaseConfig::default().lambdas.len());
}

#[test]
fn memory_guard_refuses_large_catalogues() {
    let split = synthetic(0);
    let n = split.n_items();
    let limit = (n * n * 8 - 1) as u64;
    let err = Ease::fit(&split, &EaseConfig { memory_limit_bytes: limit, ..EaseConfig::default() }, 0)
        .expect_err("over the limit");
    match &err {
        BaselineError::TooLarge { items, bytes, limit: l } => {
            assert_eq!((*items, *bytes, *l), (n, (n * n * 8) as u128, limit));
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(err.to_string().contains("memory limit"), "{err}");
    assert!(check_memory(n, (n * n * 8) as u64).is_ok());
    assert!(check_memory(1 << 20, 8 << 30).is_err()); // 8 TiB for a million items
}

#[test]
fn empty_grid_and_zero_batch_are_config_errors() {
    let split = synthetic(0);
    let err = Ease::fit(&split, &EaseConfig { lambdas: vec![], ..EaseConfig::default() }, 0).expect_err("empty");
    assert!(matches!(err, BaselineError::Config(_)));
    let pop = Popularity::fit_split(&split).expect("pop");
    let err = evaluate_model(&pop, &split.test, &EvalOptions { ks: vec![20], batch_size: 0 }).expect_err("zero");
    assert!(matches!(err, BaselineError::Config(_)));
}

#[test]
fn evaluation_masks_seen_items_and_does_not_depend_on_the_batch_size() {
    let split = synthetic(1);
    let ease = Ease::fit(&split, &EaseConfig { lambdas: vec![200.0], ..EaseConfig::default() }, 0).expect("ease");
    let whole =
        evaluate_model(&ease, &split.test, &EvalOptions { ks: vec![10, 20], batch_size: 100_000 }).expect("one batch");
    let small = evaluate_model(&ease, &split.test, &EvalOptions { ks: vec![10, 20], batch_size: 7 }).expect("batches");
    assert_eq!(whole, small);
    // Direct computation: full score matrix, seen = every fold-in item.
    let scores = ease.score(&split.test.foldin).expect("scores");
    let n = split.n_items();
    let flat = scores.as_slice().expect("scores in standard layout");
    let matrix = tears_metrics::ScoreMatrix::new(flat, split.test.len(), n).expect("matrix");
    let seen: Vec<Vec<usize>> =
        (0..split.test.len()).map(|r| split.test.foldin.row(r).iter().map(|x| x.item as usize).collect()).collect();
    let heldout: Vec<Vec<usize>> =
        (0..split.test.len()).map(|r| split.test.heldout.row(r).iter().map(|x| x.item as usize).collect()).collect();
    let direct = tears_metrics::evaluate(&matrix, &seen, &heldout, &[10, 20]).expect("direct");
    assert_eq!(whole, direct);
    // Masking matters: unmasked, EASE's top items would include fold-in items and the numbers differ.
    let unmasked = tears_metrics::evaluate(&matrix, &tears_metrics::NoItems(split.test.len()), &heldout, &[10, 20])
        .expect("unmasked");
    assert_ne!(whole, unmasked);
}

#[test]
fn save_and_load_round_trip_gives_identical_scores() {
    let split = synthetic(0);
    let dir = tempfile::tempdir().expect("tmp");
    let ease =
        Ease::fit(&split, &EaseConfig { lambdas: vec![100.0, 300.0], ..EaseConfig::default() }, 5).expect("ease");
    let manifest = save_model(&ease, &split, 5, Some(1.5), &dir.path().join("ease")).expect("save ease");
    assert_eq!((manifest.kind.as_str(), manifest.seed, manifest.n_items), ("ease", 5, split.n_items()));
    assert_eq!(manifest.dataset, "synthetic");
    assert_eq!(manifest.hyper_parameters["lambda"].as_f64(), Some(ease.lambda()));
    let loaded = load_model(&dir.path().join("ease"), &split).expect("load ease");
    assert_eq!(loaded.kind(), "ease");
    assert_eq!(loaded.hyper_parameters(), ease.hyper_parameters());
    let (a, b) = (ease.score(&split.test.foldin).expect("a"), loaded.score(&split.test.foldin).expect("b"));
    assert_eq!(a.dim(), b.dim());
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
    assert!(a.iter().any(|&x| x != 0.0));

    let pop = Popularity::fit_split(&split).expect("pop");
    save_model(&pop, &split, 0, None, &dir.path().join("pop")).expect("save pop");
    let loaded = load_model(&dir.path().join("pop"), &split).expect("load pop");
    assert_eq!(loaded.score(&split.validation.foldin).expect("a"), pop.score(&split.validation.foldin).expect("b"));
    assert!(
        !dir.path()
            .join("pop")
            .read_dir()
            .expect("dir")
            .any(|e| { e.expect("entry").file_name().to_string_lossy().contains(".tmp") })
    );
}

#[test]
fn loading_against_another_vocabulary_is_a_clear_error() {
    let split = synthetic(0);
    let dir = tempfile::tempdir().expect("tmp");
    save_model(&Popularity::fit_split(&split).expect("pop"), &split, 0, None, dir.path()).expect("save");
    let mut other = split.clone();
    other.meta.dataset = "other".to_string();
    if let Some(item) = other.items.last_mut() {
        item.id += 1_000_000;
    }
    let err = load_model(dir.path(), &other).err().expect("mismatch");
    assert!(matches!(err, BaselineError::VocabularyMismatch(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("synthetic") && msg.contains("other") && msg.contains("vocabulary"), "{msg}");

    // A folder without a manifest, an unknown kind and a truncated weights file are errors too.
    let empty = tempfile::tempdir().expect("tmp");
    let err = load_model(empty.path(), &split).err().expect("no manifest");
    assert!(err.to_string().contains("manifest.json") && err.to_string().contains("not a model directory"), "{err}");
    let mut manifest = tears_baselines::Manifest::read(dir.path()).expect("manifest");
    manifest.kind = "gru4rec".into();
    manifest.write(dir.path()).expect("write");
    assert!(matches!(load_model(dir.path(), &split), Err(BaselineError::UnknownKind { .. })));
    let ease = Ease::fit(&split, &EaseConfig { lambdas: vec![100.0], ..EaseConfig::default() }, 0).expect("ease");
    let edir = dir.path().join("ease");
    save_model(&ease, &split, 0, None, &edir).expect("save");
    let weights = edir.join(tears_baselines::ease::EASE_WEIGHTS_FILE);
    let bytes = std::fs::read(&weights).expect("read");
    std::fs::write(&weights, &bytes[..bytes.len() - 4]).expect("truncate");
    let err = load_model(&edir, &split).err().expect("truncated");
    assert!(matches!(err, BaselineError::Malformed { .. }) && err.to_string().contains("ease.weights.f32"), "{err}");
}
