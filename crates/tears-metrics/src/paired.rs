//! Paired comparison of two models on the same users: the per-user difference of a metric, its
//! mean and standard error, and two paired tests with their two-sided p-values, the paired
//! t-test and the Wilcoxon signed-rank test (normal approximation).
//!
//! `metrics.md` asks that "A beats B" be decided this way, never by two means whose standard
//! errors overlap. Over several seeds, average each user's difference over the seeds first
//! ([`mean_over_seeds`]) so that every user is one pair: a user evaluated under three seeds is
//! still one user, and counting them three times would overstate the evidence.
//!
//! ```
//! use tears_metrics::paired::compare;
//! let fused = [0.52, 0.61, 0.40, 0.75, 0.33, 0.58];
//! let backbone = [0.50, 0.55, 0.41, 0.70, 0.30, 0.52];
//! let c = compare(&fused, &backbone)?;
//! assert_eq!(c.n, 6);
//! assert!((c.mean_diff - 0.035).abs() < 1e-12);
//! assert!(c.t_test.p_value < 0.05 && c.significant());
//! # Ok::<(), tears_metrics::MetricsError>(())
//! ```

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

use crate::error::{MetricsError, Result};

/// The significance level of the stars in the tables (p < 0.05).
pub const SIGNIFICANCE: f64 = 0.05;

/// A paired t-test of the mean difference against 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TTest {
    /// `mean / (s / sqrt(n))` with the sample standard deviation `s` (divisor n − 1); ±inf when
    /// every difference is the same non-zero value, 0 when all are zero.
    pub t: f64,
    /// Degrees of freedom, n − 1.
    pub df: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

/// A Wilcoxon signed-rank test of the differences against a distribution symmetric about 0.
///
/// Zero differences are dropped (Wilcoxon's rule, scipy's `zero_method="wilcox"`), the absolute
/// differences get average ranks, and the statistic's variance is corrected for ties; the
/// p-value is the normal approximation without continuity correction (scipy's
/// `wilcoxon(d, method="approx", correction=False)`), accurate for the hundreds of users of a
/// benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Wilcoxon {
    /// Sum of the ranks of the positive differences.
    pub w_plus: f64,
    /// Differences that were not zero (the test's n).
    pub n_nonzero: usize,
    /// `(w_plus − n(n+1)/4) / sd`: positive when the positive differences dominate.
    pub z: f64,
    /// Two-sided p-value (1 when no difference is non-zero).
    pub p_value: f64,
}

/// The comparison of model A with model B on the same users (differences are A − B).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairedComparison {
    /// Users (pairs).
    pub n: usize,
    /// Mean of A − B.
    pub mean_diff: f64,
    /// Standard error of that mean: sample std / sqrt(n).
    pub std_err: f64,
    /// The paired t-test.
    pub t_test: TTest,
    /// The Wilcoxon signed-rank test.
    pub wilcoxon: Wilcoxon,
}

impl PairedComparison {
    /// Whether A differs from B at p < 0.05 by the Wilcoxon signed-rank test, the test the
    /// project's tables star (it does not assume normal differences; per-user NDCG differences
    /// are bounded and often skewed).
    pub fn significant(&self) -> bool {
        self.wilcoxon.p_value < SIGNIFICANCE
    }
}

fn check(diffs: &[f64]) -> Result<()> {
    if diffs.len() < 2 {
        return Err(MetricsError::Config(format!("a paired test needs at least 2 pairs, got {}", diffs.len())));
    }
    if let Some(i) = diffs.iter().position(|d| !d.is_finite()) {
        return Err(MetricsError::Config(format!("difference {i} is not finite ({})", diffs[i])));
    }
    Ok(())
}

fn mean_and_sample_sd(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let ss: f64 = x.iter().map(|v| (v - mean) * (v - mean)).sum();
    (mean, (ss / (n - 1.0)).sqrt())
}

/// The standard normal, whose construction cannot fail.
fn standard_normal() -> Result<Normal> {
    Normal::new(0.0, 1.0).map_err(|e| MetricsError::Config(format!("standard normal: {e}")))
}

/// The paired t-test of `diffs` (per-user A − B) against a zero mean.
///
/// ```
/// use tears_metrics::paired::t_test;
/// // scipy.stats.ttest_rel([1, 2, 3, 4, 5], [0.5, 2.1, 2.4, 3.0, 5.2]): t = 1.6004, p = 0.1848
/// let d = [0.5, -0.1, 0.6, 1.0, -0.2];
/// let t = t_test(&d)?;
/// assert!((t.t - 1.6004).abs() < 1e-4 && (t.p_value - 0.1848).abs() < 1e-4);
/// # Ok::<(), tears_metrics::MetricsError>(())
/// ```
///
/// # Errors
/// [`MetricsError::Config`] for fewer than 2 differences or a non-finite one.
pub fn t_test(diffs: &[f64]) -> Result<TTest> {
    check(diffs)?;
    let n = diffs.len() as f64;
    let df = n - 1.0;
    let (mean, sd) = mean_and_sample_sd(diffs);
    let se = sd / n.sqrt();
    let (t, p_value) = if se > 0.0 {
        let t = mean / se;
        let dist = StudentsT::new(0.0, 1.0, df).map_err(|e| MetricsError::Config(format!("Student's t: {e}")))?;
        (t, (2.0 * dist.sf(t.abs())).min(1.0))
    } else if mean == 0.0 {
        (0.0, 1.0)
    } else {
        (mean.signum() * f64::INFINITY, 0.0)
    };
    Ok(TTest { t, df, p_value })
}

/// The Wilcoxon signed-rank test of `diffs` (per-user A − B), as described on [`Wilcoxon`].
///
/// ```
/// use tears_metrics::paired::wilcoxon;
/// // scipy.stats.wilcoxon(d, method="approx", correction=False): p = 0.0747 (one zero dropped)
/// let d = [0.3, 0.0, 0.5, 0.1, 0.7, -0.2, 0.4];
/// let w = wilcoxon(&d)?;
/// assert_eq!((w.n_nonzero, w.w_plus), (6, 19.0));
/// assert!((w.p_value - 0.0747).abs() < 1e-4);
/// # Ok::<(), tears_metrics::MetricsError>(())
/// ```
///
/// # Errors
/// [`MetricsError::Config`] for fewer than 2 differences or a non-finite one.
pub fn wilcoxon(diffs: &[f64]) -> Result<Wilcoxon> {
    check(diffs)?;
    let mut nonzero: Vec<f64> = diffs.iter().copied().filter(|d| *d != 0.0).collect();
    let n = nonzero.len();
    if n == 0 {
        return Ok(Wilcoxon { w_plus: 0.0, n_nonzero: 0, z: 0.0, p_value: 1.0 });
    }
    nonzero.sort_by(|a, b| a.abs().total_cmp(&b.abs()));
    // Average ranks (1-based) over runs of equal absolute values; the tie term sums t³ − t.
    let (mut w_plus, mut ties) = (0.0f64, 0.0f64);
    let mut start = 0;
    while start < n {
        let mut end = start + 1;
        while end < n && nonzero[end].abs() == nonzero[start].abs() {
            end += 1;
        }
        let rank = (start + 1 + end) as f64 / 2.0;
        let t = (end - start) as f64;
        ties += t * t * t - t;
        w_plus += rank * nonzero[start..end].iter().filter(|d| **d > 0.0).count() as f64;
        start = end;
    }
    let nf = n as f64;
    let mean = nf * (nf + 1.0) / 4.0;
    let var = nf * (nf + 1.0) * (2.0 * nf + 1.0) / 24.0 - ties / 48.0;
    let (z, p_value) = if var > 0.0 {
        let z = (w_plus - mean) / var.sqrt();
        (z, (2.0 * standard_normal()?.sf(z.abs())).min(1.0))
    } else {
        (0.0, 1.0)
    };
    Ok(Wilcoxon { w_plus, n_nonzero: n, z, p_value })
}

/// Compares A with B on the same users: `a[i]` and `b[i]` are user i's metric under each model.
///
/// # Errors
/// [`MetricsError::SizeMismatch`] when the lengths differ; as [`t_test`] and [`wilcoxon`].
pub fn compare(a: &[f64], b: &[f64]) -> Result<PairedComparison> {
    if a.len() != b.len() {
        return Err(MetricsError::SizeMismatch { what: "paired values", expected: a.len(), found: b.len() });
    }
    let diffs: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    compare_diffs(&diffs)
}

/// [`compare`] from the per-user differences A − B.
///
/// # Errors
/// As [`t_test`] and [`wilcoxon`].
pub fn compare_diffs(diffs: &[f64]) -> Result<PairedComparison> {
    let t_test = t_test(diffs)?;
    let wilcoxon = wilcoxon(diffs)?;
    let (mean_diff, sd) = mean_and_sample_sd(diffs);
    Ok(PairedComparison { n: diffs.len(), mean_diff, std_err: sd / (diffs.len() as f64).sqrt(), t_test, wilcoxon })
}

/// Each user's mean over seeds: `runs[s][i]` is user i's value under seed s (every run over the
/// same users in the same order). The pooled per-user values of metrics.md's "pool over
/// seeds", one per user.
///
/// ```
/// use tears_metrics::paired::mean_over_seeds;
/// let pooled = mean_over_seeds(&[vec![1.0, 0.0], vec![0.5, 1.0]])?;
/// assert_eq!(pooled, vec![0.75, 0.5]);
/// # Ok::<(), tears_metrics::MetricsError>(())
/// ```
///
/// # Errors
/// [`MetricsError::Config`] for no run; [`MetricsError::SizeMismatch`] when runs differ in length.
pub fn mean_over_seeds(runs: &[Vec<f64>]) -> Result<Vec<f64>> {
    let first = runs.first().ok_or_else(|| MetricsError::Config("no run to pool".into()))?;
    let mut out = vec![0.0; first.len()];
    for run in runs {
        if run.len() != out.len() {
            return Err(MetricsError::SizeMismatch {
                what: "users in a seed's run",
                expected: out.len(),
                found: run.len(),
            });
        }
        for (o, v) in out.iter_mut().zip(run) {
            *o += v;
        }
    }
    let s = runs.len() as f64;
    out.iter_mut().for_each(|o| *o /= s);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use approx::assert_abs_diff_eq;

    use super::*;

    #[test]
    fn short_or_broken_input_is_an_error() {
        assert!(t_test(&[1.0]).is_err());
        assert!(wilcoxon(&[]).is_err());
        assert!(compare(&[1.0, 2.0], &[1.0]).is_err());
        assert!(compare_diffs(&[0.1, f64::NAN, 0.2]).is_err());
        assert!(mean_over_seeds(&[vec![1.0], vec![1.0, 2.0]]).is_err());
    }

    #[test]
    fn identical_models_are_not_different() {
        let c = compare(&[0.1, 0.5, 0.9], &[0.1, 0.5, 0.9]).expect("valid");
        assert_eq!((c.mean_diff, c.t_test.p_value, c.wilcoxon.p_value), (0.0, 1.0, 1.0));
        assert_eq!(c.wilcoxon.n_nonzero, 0);
        assert!(!c.significant());
    }

    #[test]
    fn a_constant_gain_is_certain_for_the_t_test() {
        let t = t_test(&[0.25, 0.25, 0.25, 0.25]).expect("valid");
        assert_eq!((t.t, t.p_value), (f64::INFINITY, 0.0));
    }

    #[test]
    fn swapping_the_models_flips_the_signs_only() {
        let a = [0.3, 0.9, 0.4, 0.8, 0.55, 0.61, 0.2];
        let b = [0.35, 0.5, 0.1, 0.8, 0.45, 0.6, 0.1];
        let ab = compare(&a, &b).expect("valid");
        let ba = compare(&b, &a).expect("valid");
        assert_abs_diff_eq!(ab.mean_diff, -ba.mean_diff, epsilon = 1e-15);
        assert_abs_diff_eq!(ab.t_test.t, -ba.t_test.t, epsilon = 1e-12);
        assert_abs_diff_eq!(ab.t_test.p_value, ba.t_test.p_value, epsilon = 1e-12);
        assert_abs_diff_eq!(ab.wilcoxon.z, -ba.wilcoxon.z, epsilon = 1e-12);
        assert_abs_diff_eq!(ab.wilcoxon.p_value, ba.wilcoxon.p_value, epsilon = 1e-12);
    }

    /// Reference values from scipy 1.x: `ttest_rel(a, b)` and
    /// `wilcoxon(a - b, method="approx", correction=False)` (zero_method "wilcox").
    #[test]
    fn matches_scipy() {
        for case in SCIPY_CASES {
            let c = compare(case.a, case.b).expect("valid");
            assert_abs_diff_eq!(c.t_test.t, case.t, epsilon = 1e-9);
            assert_abs_diff_eq!(c.t_test.p_value, case.t_p, epsilon = 1e-9);
            assert_abs_diff_eq!(c.wilcoxon.p_value, case.w_p, epsilon = 1e-9);
            assert_abs_diff_eq!(c.wilcoxon.z.abs(), case.abs_z, epsilon = 1e-9);
        }
    }

    struct Case {
        a: &'static [f64],
        b: &'static [f64],
        t: f64,
        t_p: f64,
        abs_z: f64,
        w_p: f64,
    }

    const SCIPY_CASES: &[Case] = &[
        Case {
            a: &[0.5, 0.25, 0.75, 0.5, 1.0, 0.0, 0.25, 0.5, 0.75, 0.5],
            b: &[0.25, 0.5, 0.25, 0.5, 0.5, 0.25, 0.0, 0.5, 0.25, 0.0],
            t: 2.0579830217101063,
            t_p: 0.0697073753695526,
            abs_z: 1.866691212406119,
            w_p: 0.061944721613965525,
        },
        Case {
            a: &[
                0.625, 0.897, 0.776, 0.225, 0.3, 0.874, 0.005, 0.821, 0.797, 0.468, 0.303, 0.278, 0.255, 0.445, 0.505,
                0.553, 0.996, 0.793, 0.622, 0.989, 0.215, 0.16, 0.613, 0.044, 0.036, 0.515, 0.466, 0.917, 0.629, 0.514,
                0.497, 0.248, 0.012, 0.192, 0.692, 0.201, 0.37, 0.004, 0.83, 0.154,
            ],
            b: &[
                0.644, 0.938, 0.812, 0.132, 0.338, 1.0, 0.0, 0.937, 0.839, 0.434, 0.533, 0.384, 0.165, 0.482, 0.593,
                0.564, 1.0, 0.816, 0.719, 1.0, 0.177, 0.21, 0.597, 0.087, 0.0, 0.487, 0.476, 1.0, 0.774, 0.412, 0.448,
                0.343, 0.0, 0.176, 0.712, 0.357, 0.469, 0.001, 0.823, 0.159,
            ],
            t: -2.69379805132275,
            t_p: 0.01036269397833438,
            abs_z: 2.4866680812484003,
            w_p: 0.012894564172803501,
        },
    ];
}
