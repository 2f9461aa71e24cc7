//! Gradients: the closed-form W2 against its analytic gradient, and the Sinkhorn value and
//! divergence (envelope-theorem gradients) against central finite differences.

mod common;

use burn::tensor::{DType, Tensor, TensorData};
use common::{AD, randn, values};
use tears_ot::{Epsilon, SinkhornConfig, gaussian_w2_squared, sinkhorn, sinkhorn_divergence};

fn t2(data: Vec<f64>, shape: [usize; 2]) -> Tensor<AD, 2> {
    Tensor::from_data(TensorData::new(data, shape), (&Default::default(), DType::F64))
}

#[test]
fn w2_gradient_matches_closed_form() {
    let mu1 = vec![0.3, -1.2, 2.0, 0.5, 0.0, -0.7];
    let lv1 = vec![0.1, -0.5, 0.8, -1.0, 0.2, 0.0];
    let mu2 = vec![1.0, 0.4, -0.3, 0.5, 2.2, -0.1];
    let lv2 = vec![-0.3, 0.6, 0.0, 0.4, -0.9, 1.1];
    let m1 = t2(mu1.clone(), [2, 3]).require_grad();
    let l1 = t2(lv1.clone(), [2, 3]).require_grad();
    let m2 = t2(mu2.clone(), [2, 3]).require_grad();
    let l2 = t2(lv2.clone(), [2, 3]).require_grad();
    let w2 = gaussian_w2_squared(m1.clone(), l1.clone(), m2.clone(), l2.clone()).expect("w2");
    // Value against the formula.
    let got = values(w2.clone());
    for (row, value) in got.iter().enumerate() {
        let want: f64 = (0..3)
            .map(|k| {
                let i = row * 3 + k;
                let ds = (lv1[i] / 2.0).exp() - (lv2[i] / 2.0).exp();
                (mu1[i] - mu2[i]).powi(2) + ds * ds
            })
            .sum();
        assert!((value - want).abs() < 1e-12, "row {row}: {value} vs {want}");
    }
    let grads = w2.sum().backward();
    let g_m1 = values(m1.grad(&grads).expect("mu1 grad"));
    let g_l1 = values(l1.grad(&grads).expect("logvar1 grad"));
    let g_m2 = values(m2.grad(&grads).expect("mu2 grad"));
    let g_l2 = values(l2.grad(&grads).expect("logvar2 grad"));
    for i in 0..6 {
        let (s1, s2) = ((lv1[i] / 2.0).exp(), (lv2[i] / 2.0).exp());
        assert!((g_m1[i] - 2.0 * (mu1[i] - mu2[i])).abs() < 1e-12);
        assert!((g_m2[i] + 2.0 * (mu1[i] - mu2[i])).abs() < 1e-12);
        assert!((g_l1[i] - (s1 - s2) * s1).abs() < 1e-12, "dlogvar1[{i}]");
        assert!((g_l2[i] + (s1 - s2) * s2).abs() < 1e-12, "dlogvar2[{i}]");
    }
}

fn config() -> SinkhornConfig {
    SinkhornConfig::default().with_eps(Epsilon::Absolute(0.5)).with_tol(1e-12).with_max_iter(20_000)
}

/// Central finite differences of `f` at `data` along every coordinate.
fn finite_differences(data: &[f64], f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let h = 1e-5;
    (0..data.len())
        .map(|i| {
            let mut plus = data.to_vec();
            let mut minus = data.to_vec();
            plus[i] += h;
            minus[i] -= h;
            (f(&plus) - f(&minus)) / (2.0 * h)
        })
        .collect()
}

fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * scale.max(1.0), "{what}[{i}]: autodiff {g} vs finite differences {w}");
    }
}

#[test]
fn sinkhorn_value_gradient_matches_finite_differences() {
    let (n, m, d) = (5, 4, 3);
    let x0 = values(randn::<AD>([1, n, d], 1, 0.0, DType::F64));
    let y0 = values(randn::<AD>([1, m, d], 2, 0.5, DType::F64));
    let value_at = |xs: &[f64], ys: &[f64]| -> Tensor<AD, 1> {
        let x = Tensor::<AD, 3>::from_data(TensorData::new(xs.to_vec(), [1, n, d]), (&Default::default(), DType::F64));
        let y = Tensor::<AD, 3>::from_data(TensorData::new(ys.to_vec(), [1, m, d]), (&Default::default(), DType::F64));
        sinkhorn(x, y, None, None, &config()).expect("solve").value
    };
    let x = Tensor::<AD, 3>::from_data(TensorData::new(x0.clone(), [1, n, d]), (&Default::default(), DType::F64))
        .require_grad();
    let y = Tensor::<AD, 3>::from_data(TensorData::new(y0.clone(), [1, m, d]), (&Default::default(), DType::F64))
        .require_grad();
    let out = sinkhorn(x.clone(), y.clone(), None, None, &config()).expect("solve");
    assert!(out.report.converged);
    let grads = out.value.sum().backward();
    let gx = values(x.grad(&grads).expect("x grad"));
    let gy = values(y.grad(&grads).expect("y grad"));
    let fx = finite_differences(&x0, |xs| values(value_at(xs, &y0))[0]);
    let fy = finite_differences(&y0, |ys| values(value_at(&x0, ys))[0]);
    assert_close(&gx, &fx, 1e-6, "dOT/dx");
    assert_close(&gy, &fy, 1e-6, "dOT/dy");
}

#[test]
fn sinkhorn_weight_gradient_matches_finite_differences() {
    let (n, m, d) = (4, 6, 2);
    let x = randn::<AD>([1, n, d], 3, 0.0, DType::F64);
    let y = randn::<AD>([1, m, d], 4, 1.0, DType::F64);
    let a0 = vec![0.1, 0.4, 0.2, 0.3];
    let value_at = |a: &[f64]| -> f64 {
        let a = t2(a.to_vec(), [1, n]);
        values(sinkhorn(x.clone(), y.clone(), Some(a), None, &config()).expect("solve").value)[0]
    };
    let a = t2(a0.clone(), [1, n]).require_grad();
    let out = sinkhorn(x.clone(), y.clone(), Some(a.clone()), None, &config()).expect("solve");
    let grads = out.value.sum().backward();
    let ga = values(a.grad(&grads).expect("a grad"));
    // Weights are normalised inside, so the gradient is that of the normalised problem.
    let fa = finite_differences(&a0, value_at);
    assert_close(&ga, &fa, 1e-6, "dOT/da");
}

#[test]
fn divergence_gradient_matches_finite_differences() {
    let (n, m, d) = (6, 5, 2);
    let x0 = values(randn::<AD>([1, n, d], 5, 0.0, DType::F64));
    let y0 = values(randn::<AD>([1, m, d], 6, 0.3, DType::F64));
    let div_at = |xs: &[f64], ys: &[f64], track: bool| {
        let mut x =
            Tensor::<AD, 3>::from_data(TensorData::new(xs.to_vec(), [1, n, d]), (&Default::default(), DType::F64));
        let mut y =
            Tensor::<AD, 3>::from_data(TensorData::new(ys.to_vec(), [1, m, d]), (&Default::default(), DType::F64));
        if track {
            x = x.require_grad();
            y = y.require_grad();
        }
        let s = sinkhorn_divergence(x.clone(), y.clone(), None, None, &config()).expect("divergence");
        for report in [&s.xy.report, &s.xx.report, &s.yy.report] {
            assert!(report.converged, "{report:?}");
        }
        (s.divergence, x, y)
    };
    let (s, x, y) = div_at(&x0, &y0, true);
    let grads = s.sum().backward();
    let gx = values(x.grad(&grads).expect("x grad"));
    let gy = values(y.grad(&grads).expect("y grad"));
    let fx = finite_differences(&x0, |xs| values(div_at(xs, &y0, false).0)[0]);
    let fy = finite_differences(&y0, |ys| values(div_at(&x0, ys, false).0)[0]);
    assert_close(&gx, &fx, 1e-6, "dS/dx");
    assert_close(&gy, &fy, 1e-6, "dS/dy");
}

#[test]
fn f32_divergence_gradient_is_close_to_f64() {
    // The f32 path (what training uses) against the f64 gradient on a TEARS-like small batch.
    let (n, d) = (32, 8);
    let grad = |dtype: DType| {
        let x = randn::<AD>([1, n, d], 7, 0.0, dtype).require_grad();
        let y = randn::<AD>([1, n, d], 8, 0.5, dtype);
        let config = SinkhornConfig::default().with_eps(Epsilon::RelativeToMedian(0.05)).with_tol(1e-6);
        let s = sinkhorn_divergence(x.clone(), y, None, None, &config).expect("divergence");
        let grads = s.divergence.sum().backward();
        values(x.grad(&grads).expect("x grad"))
    };
    let g64 = grad(DType::F64);
    let g32 = grad(DType::F32);
    assert_close(&g32, &g64, 1e-3, "f32 vs f64 dS/dx");
}
