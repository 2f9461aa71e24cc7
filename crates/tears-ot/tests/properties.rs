//! Properties of the Sinkhorn kernels: divergence sign and symmetry, tiny eps, degenerate sizes,
//! batching, cost scaling, weights and input validation.

mod common;

use burn::tensor::{DType, Tensor, TensorData};
use common::{B, randn, rel, values};
use tears_ot::{
    CostKind, Epsilon, OtError, SinkhornConfig, SinkhornMode, WeightPolicy, pairwise_cost, sinkhorn, sinkhorn_cost,
    sinkhorn_divergence,
};

fn f64_config(eps: Epsilon) -> SinkhornConfig {
    SinkhornConfig::default().with_eps(eps).with_tol(1e-10).with_max_iter(50_000)
}

fn t2(data: Vec<f64>, shape: [usize; 2]) -> Tensor<B, 2> {
    Tensor::from_data(TensorData::new(data, shape), (&Default::default(), DType::F64))
}

#[test]
fn divergence_is_nonnegative_and_symmetric() {
    for seed in 0..4u64 {
        for dtype in [DType::F64, DType::F32] {
            let x = randn::<B>([2, 20, 3], 10 + seed, 0.0, dtype);
            let y = randn::<B>([2, 15, 3], 20 + seed, 0.2 * seed as f64, dtype);
            let config = SinkhornConfig::default()
                .with_eps(Epsilon::RelativeToMedian(0.1))
                .with_tol(if dtype == DType::F64 { 1e-10 } else { 1e-5 });
            let sxy =
                values(sinkhorn_divergence(x.clone(), y.clone(), None, None, &config).expect("S(x, y)").divergence);
            let syx = values(sinkhorn_divergence(y, x, None, None, &config).expect("S(y, x)").divergence);
            for (a, b) in sxy.iter().zip(&syx) {
                let scale = a.abs().max(1e-3);
                assert!(*a >= -1e-6 * scale.max(1.0), "seed {seed} {dtype:?}: S = {a} < 0");
                let tol = if dtype == DType::F64 { 1e-8 } else { 1e-3 };
                assert!((a - b).abs() <= tol * scale.max(1.0), "seed {seed} {dtype:?}: S(x,y) = {a} != S(y,x) = {b}");
            }
        }
    }
}

#[test]
fn divergence_vanishes_for_identical_and_permuted_clouds() {
    let x = randn::<B>([1, 25, 4], 3, 0.0, DType::F64);
    let config = f64_config(Epsilon::RelativeToMedian(0.05));
    let same = values(sinkhorn_divergence(x.clone(), x.clone(), None, None, &config).expect("S(x, x)").divergence)[0];
    assert!(same.abs() < 1e-9, "S(x, x) = {same}");
    // The same set of points in another order (a different computation path).
    let data = values(x.clone());
    let perm: Vec<usize> = (0..25).map(|i| (i * 7) % 25).collect();
    let permuted: Vec<f64> = perm.iter().flat_map(|&i| data[i * 4..i * 4 + 4].to_vec()).collect();
    let y = Tensor::<B, 3>::from_data(TensorData::new(permuted, [1, 25, 4]), (&Default::default(), DType::F64));
    let s = values(sinkhorn_divergence(x.clone(), y, None, None, &config).expect("S(x, σx)").divergence)[0];
    let ot = values(sinkhorn(x.clone(), x.clone().add_scalar(1.0), None, None, &config).expect("OT").value)[0];
    assert!(s.abs() < 1e-8 * ot, "S(x, permuted x) = {s} (OT(x, x + 1) = {ot})");
    // A shifted cloud is at positive divergence: about the squared shift ||1||² = 4.
    let shifted =
        values(sinkhorn_divergence(x.clone(), x.add_scalar(1.0), None, None, &config).expect("S").divergence)[0];
    assert!(rel(shifted, 4.0) < 0.05, "S(x, x + 1) = {shifted}, expected ≈ 4");
}

#[test]
fn tiny_eps_where_the_naive_kernel_underflows() {
    let x = randn::<B>([1, 40, 5], 31, 0.0, DType::F64);
    let y = randn::<B>([1, 30, 5], 32, 0.5, DType::F64);
    let cost = values(pairwise_cost(x.clone(), y.clone(), CostKind::SquaredEuclidean).expect("cost"));
    let mut sorted = cost.clone();
    sorted.sort_by(f64::total_cmp);
    let median = 0.5 * (sorted[sorted.len() / 2 - 1] + sorted[sorted.len() / 2]);
    let eps = 1e-3 * median;
    // The naive kernel exp(−C/eps) underflows to exactly zero in f64, for whole rows.
    let underflow = cost.iter().filter(|c| (-*c / eps).exp() == 0.0).count();
    let zero_rows = cost.chunks(30).filter(|row| row.iter().all(|c| (-*c / eps).exp() == 0.0)).count();
    assert!(underflow > cost.len() / 2 && zero_rows > 0, "naive kernel: {underflow} zeros, {zero_rows} zero rows");

    let config = SinkhornConfig::default()
        .with_eps(Epsilon::RelativeToMedian(1e-3))
        .with_tol(1e-5)
        .with_max_iter(100_000)
        .with_eps_scaling(Some(0.5));
    let stab = sinkhorn(x.clone(), y.clone(), None, None, &config).expect("stabilised");
    let lse = sinkhorn(x.clone(), y.clone(), None, None, &config.clone().with_mode(SinkhornMode::LogSumExp))
        .expect("log-sum-exp");
    assert!(rel(stab.report.eps[0], eps) < 1e-12);
    assert!(stab.report.converged && lse.report.converged, "{:?} {:?}", stab.report, lse.report);
    let (v1, v2) = (values(stab.value)[0], values(lse.value)[0]);
    let (c1, c2) = (values(stab.transport_cost)[0], values(lse.transport_cost)[0]);
    assert!(v1.is_finite() && c1.is_finite());
    assert!(rel(v1, v2) < 1e-7 && rel(c1, c2) < 1e-6, "modes disagree: {v1} {v2} / {c1} {c2}");
    // At this eps the entropic value is close to the transport cost and above it
    // (eps KL >= 0), within eps log(n m) of it.
    assert!(v1 >= c1 - 1e-9 && v1 - c1 <= eps * (40.0f64 * 30.0).ln(), "value {v1}, cost {c1}, eps {eps}");
    // The f32 path gives the same numbers to 1e-3.
    let x32 = randn::<B>([1, 40, 5], 31, 0.0, DType::F32);
    let y32 = randn::<B>([1, 30, 5], 32, 0.5, DType::F32);
    let out32 = sinkhorn(x32, y32, None, None, &config.with_tol(1e-5)).expect("f32");
    assert!(rel(values(out32.value)[0], v1) < 1e-3);
    assert!(rel(values(out32.transport_cost)[0], c1) < 1e-3);
}

#[test]
fn single_point_sides() {
    // m = 1: all mass goes to the single point, P = a ⊗ b, KL = 0: value = cost = Σ a_i C_i1.
    let x = randn::<B>([1, 6, 3], 41, 0.0, DType::F64);
    let y = randn::<B>([1, 1, 3], 42, 0.0, DType::F64);
    let a = t2(vec![0.1, 0.2, 0.3, 0.1, 0.2, 0.1], [1, 6]);
    let cost = values(pairwise_cost(x.clone(), y.clone(), CostKind::SquaredEuclidean).expect("cost"));
    let want: f64 = cost.iter().zip(values(a.clone())).map(|(c, w)| c * w).sum();
    let config = f64_config(Epsilon::Absolute(0.3)).with_plan(true);
    let out = sinkhorn(x.clone(), y.clone(), Some(a.clone()), None, &config).expect("m = 1");
    assert!(rel(values(out.value)[0], want) < 1e-12);
    assert!(rel(values(out.transport_cost)[0], want) < 1e-12);
    let plan = values(out.plan.expect("plan"));
    for (p, w) in plan.iter().zip(values(a.clone())) {
        assert!((p - w).abs() < 1e-12);
    }
    // n = 1 (swap the sides) and n = m = 1.
    let out = sinkhorn(y.clone(), x.clone(), None, Some(a), &config).expect("n = 1");
    assert!(rel(values(out.value)[0], want) < 1e-12);
    let out = sinkhorn(y.clone(), x.narrow(1, 2, 1), None, None, &config).expect("n = m = 1");
    assert!(rel(values(out.value)[0], cost[2]) < 1e-12);
    // The divergence of a point against itself is 0.
    let s = sinkhorn_divergence(y.clone(), y, None, None, &config).expect("S");
    assert!(values(s.divergence)[0].abs() < 1e-12);
}

#[test]
fn batch_matches_individual_solves_with_per_problem_eps() {
    let x = randn::<B>([3, 12, 2], 51, 0.0, DType::F64);
    let y = randn::<B>([3, 9, 2], 52, 1.0, DType::F64);
    let config = f64_config(Epsilon::RelativeToMedian(0.05));
    let batched = sinkhorn(x.clone(), y.clone(), None, None, &config).expect("batch");
    let values_b = values(batched.value);
    for (i, want) in values_b.iter().enumerate() {
        let single = sinkhorn(x.clone().narrow(0, i, 1), y.clone().narrow(0, i, 1), None, None, &config).expect("one");
        assert!(rel(single.report.eps[0], batched.report.eps[i]) < 1e-12);
        assert!(rel(values(single.value)[0], *want) < 1e-9, "problem {i}");
    }
    // The problems have different medians, hence different eps.
    assert!(batched.report.eps[0] != batched.report.eps[1]);
}

#[test]
fn half_cost_is_half_value_at_half_eps() {
    // OT_{eps/2}(C/2) = ½ OT_eps(C).
    let x = randn::<B>([1, 10, 3], 61, 0.0, DType::F64);
    let y = randn::<B>([1, 8, 3], 62, 0.5, DType::F64);
    let full = sinkhorn(x.clone(), y.clone(), None, None, &f64_config(Epsilon::Absolute(0.4))).expect("full");
    let half_config = f64_config(Epsilon::Absolute(0.2)).with_cost(CostKind::HalfSquaredEuclidean);
    let half = sinkhorn(x, y, None, None, &half_config).expect("half");
    assert!(rel(2.0 * values(half.value)[0], values(full.value)[0]) < 1e-9);
    assert!(rel(2.0 * values(half.transport_cost)[0], values(full.transport_cost)[0]) < 1e-8);
}

#[test]
fn eps_scaling_and_modes_agree() {
    let x = randn::<B>([2, 30, 4], 71, 0.0, DType::F64);
    let y = randn::<B>([2, 25, 4], 72, 0.3, DType::F64);
    let base = f64_config(Epsilon::RelativeToMedian(0.02));
    let reference = values(sinkhorn(x.clone(), y.clone(), None, None, &base).expect("plain").value);
    for config in [
        base.clone().with_eps_scaling(Some(0.5)),
        base.clone().with_mode(SinkhornMode::LogSumExp),
        base.clone().with_eps_scaling(Some(0.7)).with_mode(SinkhornMode::LogSumExp),
    ] {
        let out = sinkhorn(x.clone(), y.clone(), None, None, &config).expect("solve");
        assert!(out.report.converged);
        for (a, b) in values(out.value).iter().zip(&reference) {
            assert!(rel(*a, *b) < 1e-8, "{config:?}: {a} vs {b}");
        }
    }
}

#[test]
fn cost_matrix_input_matches_point_clouds() {
    let x = randn::<B>([1, 7, 3], 81, 0.0, DType::F64);
    let y = randn::<B>([1, 5, 3], 82, 0.0, DType::F64);
    let config = f64_config(Epsilon::Absolute(0.5));
    let from_points = sinkhorn(x.clone(), y.clone(), None, None, &config).expect("points");
    let cost = pairwise_cost(x, y, CostKind::SquaredEuclidean).expect("cost");
    let from_cost = sinkhorn_cost(cost, None, None, &config).expect("cost matrix");
    assert!(rel(values(from_points.value)[0], values(from_cost.value)[0]) < 1e-12);
}

#[test]
fn weights_are_normalised_or_refused() {
    let x = randn::<B>([1, 4, 2], 91, 0.0, DType::F64);
    let y = randn::<B>([1, 3, 2], 92, 0.0, DType::F64);
    let config = f64_config(Epsilon::Absolute(0.5));
    let unnormalised = t2(vec![1.0, 2.0, 3.0, 4.0], [1, 4]);
    let normalised = t2(vec![0.1, 0.2, 0.3, 0.4], [1, 4]);
    let v1 = values(sinkhorn(x.clone(), y.clone(), Some(unnormalised.clone()), None, &config).expect("n").value)[0];
    let v2 = values(sinkhorn(x.clone(), y.clone(), Some(normalised), None, &config).expect("n").value)[0];
    assert!(rel(v1, v2) < 1e-12);
    let strict = config.clone().with_weights(WeightPolicy::Strict);
    let err = sinkhorn(x.clone(), y.clone(), Some(unnormalised), None, &strict).expect_err("strict");
    assert!(matches!(err, OtError::Weights { what: "a", .. }), "{err}");
    let negative = t2(vec![0.5, 0.6, -0.1], [1, 3]);
    let err = sinkhorn(x.clone(), y.clone(), None, Some(negative), &config).expect_err("negative");
    assert!(matches!(err, OtError::Weights { what: "b", .. }), "{err}");
    let zero = t2(vec![0.0; 3], [1, 3]);
    assert!(matches!(sinkhorn(x.clone(), y.clone(), None, Some(zero), &config), Err(OtError::Weights { .. })));
    let wrong_len = t2(vec![0.5, 0.5], [1, 2]);
    assert!(matches!(sinkhorn(x, y, None, Some(wrong_len), &config), Err(OtError::Shape { what: "b", .. })));
}

#[test]
fn zero_weights_are_allowed() {
    // A zero-weight point carries no mass and does not change the value.
    let x = randn::<B>([1, 4, 2], 95, 0.0, DType::F64);
    let y = randn::<B>([1, 3, 2], 96, 0.0, DType::F64);
    let config = f64_config(Epsilon::Absolute(0.5));
    let a = t2(vec![0.5, 0.0, 0.25, 0.25], [1, 4]);
    let full = values(sinkhorn(x.clone(), y.clone(), Some(a), None, &config).expect("zero weight").value)[0];
    let keep: Vec<f64> = values(x).iter().enumerate().filter(|(i, _)| i / 2 != 1).map(|(_, v)| *v).collect();
    let x3 = Tensor::<B, 3>::from_data(TensorData::new(keep, [1, 3, 2]), (&Default::default(), DType::F64));
    let a3 = t2(vec![0.5, 0.25, 0.25], [1, 3]);
    let reduced = values(sinkhorn(x3, y, Some(a3), None, &config).expect("reduced").value)[0];
    assert!(rel(full, reduced) < 1e-10, "{full} vs {reduced}");
}

#[test]
fn non_finite_inputs_are_clear_errors() {
    let x = randn::<B>([1, 4, 2], 101, 0.0, DType::F32);
    let y = randn::<B>([1, 3, 2], 102, 0.0, DType::F32);
    let config = SinkhornConfig::default();
    let mut bad = values(x.clone());
    bad[3] = f64::NAN;
    let x_nan = Tensor::<B, 3>::from_data(TensorData::new(bad.clone(), [1, 4, 2]), &Default::default());
    let err = sinkhorn(x_nan.clone(), y.clone(), None, None, &config).expect_err("NaN x");
    assert_eq!(err, OtError::NonFinite { what: "x" });
    assert_eq!(err.to_string(), "x contains NaN or infinite values");
    bad[3] = f64::INFINITY;
    let x_inf = Tensor::<B, 3>::from_data(TensorData::new(bad, [1, 4, 2]), &Default::default());
    assert_eq!(
        sinkhorn_divergence(y.clone(), x_inf, None, None, &config).expect_err("inf y").to_string(),
        "y contains NaN or infinite values"
    );
    let cost =
        Tensor::<B, 3>::from_data(TensorData::new(vec![0.0, f64::NAN, 1.0, 0.0], [1, 2, 2]), &Default::default());
    assert_eq!(sinkhorn_cost(cost, None, None, &config).expect_err("NaN cost"), OtError::NonFinite { what: "cost" });
    let a = Tensor::<B, 2>::from_data(TensorData::new(vec![0.5, f64::NAN, 0.2, 0.3], [1, 4]), &Default::default());
    assert_eq!(sinkhorn(x, y, Some(a), None, &config).expect_err("NaN a"), OtError::NonFinite { what: "a" });
}

#[test]
fn shapes_config_and_plan_limit_are_checked() {
    let x = randn::<B>([2, 4, 3], 111, 0.0, DType::F32);
    let y = randn::<B>([2, 5, 3], 112, 0.0, DType::F32);
    let config = SinkhornConfig::default();
    let y_bad = randn::<B>([1, 5, 3], 113, 0.0, DType::F32);
    assert!(matches!(sinkhorn(x.clone(), y_bad, None, None, &config), Err(OtError::Shape { what: "y", .. })));
    let y_dim = randn::<B>([2, 5, 2], 114, 0.0, DType::F32);
    assert!(matches!(sinkhorn(x.clone(), y_dim, None, None, &config), Err(OtError::Shape { .. })));
    let bad_eps = config.clone().with_eps(Epsilon::Absolute(-1.0));
    assert!(matches!(sinkhorn(x.clone(), y.clone(), None, None, &bad_eps), Err(OtError::Config(_))));
    let bad_scaling = config.clone().with_eps_scaling(Some(1.5));
    assert!(matches!(sinkhorn(x.clone(), y.clone(), None, None, &bad_scaling), Err(OtError::Config(_))));
    // 2 × 4 × 5 f32 entries = 160 bytes.
    let small_limit = config.clone().with_plan(true).with_max_plan_bytes(100);
    let err = sinkhorn(x.clone(), y.clone(), None, None, &small_limit).expect_err("plan too large");
    assert_eq!(err, OtError::PlanTooLarge { elements: 40, bytes: 160, limit: 100 });
    let ok = sinkhorn(x, y, None, None, &config.with_plan(true).with_max_plan_bytes(160)).expect("plan fits");
    assert_eq!(ok.plan.map(|p| p.dims()), Some([2, 4, 5]));
}

#[test]
fn running_out_of_iterations_is_reported_not_an_error() {
    let x = randn::<B>([1, 30, 3], 121, 0.0, DType::F64);
    let y = randn::<B>([1, 30, 3], 122, 0.5, DType::F64);
    let config = f64_config(Epsilon::RelativeToMedian(0.001)).with_max_iter(20);
    let out = sinkhorn(x, y, None, None, &config).expect("solve");
    assert!(!out.report.converged);
    assert_eq!(out.report.iterations, 20);
    assert!(out.report.marginal_error[0] > 1e-10);
    assert!(values(out.value)[0].is_finite());
}
