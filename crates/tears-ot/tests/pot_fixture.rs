//! Agreement with POT (`ot.bregman.sinkhorn_log`) on the shared fixture
//! `ot/sinkhorn_pot.json`: transport cost, entropic value, debiased divergence and marginals.

mod common;

use burn::tensor::DType;
use common::{B, cloud, load_fixture, rel, values, weights};
use tears_ot::{Epsilon, SinkhornConfig, SinkhornMode, sinkhorn, sinkhorn_divergence};

/// Solves every fixture case and compares with POT. `tol` is the stopping tolerance (L1 marginal
/// error); a case where POT itself stopped at a larger marginal error (`small_eps`: POT ran out of
/// iterations at eps = 1.2e-3 × the median cost) is solved to twice POT's error instead. The
/// reported marginal error may exceed the stopping tolerance by rounding, by at most `slack`.
fn check_dtype(dtype: DType, rtol: f64, tol: f64, slack: f64, mode: SinkhornMode, scaling: Option<f64>) {
    let Some(fixture) = load_fixture("ot/sinkhorn_pot.json") else {
        return;
    };
    let cases = fixture["cases"].as_array().expect("cases");
    assert!(!cases.is_empty());
    for case in cases {
        let name = case["name"].as_str().expect("name");
        assert_eq!(case["cost"].as_str(), Some("squared_euclidean"));
        let eps = case["eps"].as_f64().expect("eps");
        let x = cloud::<B>(&case["x"], dtype);
        let y = cloud::<B>(&case["y"], dtype);
        let a = weights::<B>(&case["a"], dtype);
        let b = weights::<B>(&case["b"], dtype);
        let pot_err = case["col_marginal_error"].as_f64().expect("col_marginal_error");
        let tol = tol.max(2.0 * pot_err);
        let config = SinkhornConfig::default()
            .with_eps(Epsilon::Absolute(eps))
            .with_tol(tol)
            .with_max_iter(200_000)
            .with_mode(mode)
            .with_eps_scaling(scaling)
            .with_plan(true);
        let out = sinkhorn(x.clone(), y.clone(), Some(a.clone()), Some(b.clone()), &config).expect("solve");
        let report = &out.report;
        let cost = values(out.transport_cost)[0];
        let value = values(out.value)[0];
        let want_cost = case["transport_cost"].as_f64().expect("transport_cost");
        let want_value = case["entropic_value"].as_f64().expect("entropic_value");
        eprintln!(
            "{name} {dtype:?} {mode:?} scaling={scaling:?}: iters {} converged {} err {:e} cost rel {:e} value rel {:e}",
            report.iterations,
            report.converged,
            report.marginal_error[0],
            rel(cost, want_cost),
            rel(value, want_value)
        );
        assert!(report.converged, "{name}: not converged: {report:?}");
        assert!(report.marginal_error[0] <= tol + slack, "{name}: marginal error {}", report.marginal_error[0]);
        // The returned plan has the right marginals.
        let plan = out.plan.expect("plan requested");
        let rows = values(plan.clone().sum_dim(2));
        let cols = values(plan.sum_dim(1));
        let (wa, wb) = (values(a), values(b));
        let row_err: f64 = rows.iter().zip(&wa).map(|(r, w)| (r - w).abs()).sum();
        let col_err: f64 = cols.iter().zip(&wb).map(|(c, w)| (c - w).abs()).sum();
        assert!(row_err <= tol + slack, "{name}: row marginal error {row_err}");
        assert!(col_err <= tol + slack, "{name}: column marginal error {col_err}");
        assert!(rel(cost, want_cost) <= rtol, "{name}: transport cost {cost} vs POT {want_cost}");
        assert!(rel(value, want_value) <= rtol, "{name}: entropic value {value} vs POT {want_value}");

        let div = sinkhorn_divergence(
            x,
            y,
            Some(weights::<B>(&case["a"], dtype)),
            Some(weights::<B>(&case["b"], dtype)),
            &config,
        )
        .expect("divergence");
        let s = values(div.divergence)[0];
        let want_s = case["debiased_divergence"].as_f64().expect("debiased_divergence");
        assert!(rel(s, want_s) <= rtol, "{name}: divergence {s} vs POT {want_s}");
    }
}

#[test]
fn pot_agreement_f64_stabilized() {
    check_dtype(DType::F64, 1e-4, 1e-7, 1e-12, SinkhornMode::Stabilized, None);
}

#[test]
fn pot_agreement_f64_logsumexp() {
    check_dtype(DType::F64, 1e-4, 1e-7, 1e-12, SinkhornMode::LogSumExp, Some(0.5));
}

#[test]
fn pot_agreement_f64_eps_scaling() {
    check_dtype(DType::F64, 1e-4, 1e-7, 1e-12, SinkhornMode::Stabilized, Some(0.5));
}

#[test]
fn pot_agreement_f32_stabilized() {
    check_dtype(DType::F32, 1e-3, 1e-5, 1e-5, SinkhornMode::Stabilized, Some(0.5));
}

#[test]
fn pot_agreement_f32_logsumexp() {
    check_dtype(DType::F32, 1e-3, 1e-5, 1e-5, SinkhornMode::LogSumExp, Some(0.5));
}
