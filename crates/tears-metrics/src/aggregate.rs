//! Means over users with their standard error and counts.

use serde::{Deserialize, Serialize};

/// The mean of a per-user metric over the users counted, its standard error and the counts.
///
/// `std_err = std / sqrt(counted)` with the population standard deviation (divisor `counted`),
/// as `np.std(x) / np.sqrt(len(x))` in the reference code. Users without a defined value (for
/// accuracy: no held-out items) are `excluded`, never averaged in. When no user is counted,
/// `mean` and `std_err` are 0 and `counted` is 0: check `counted` before reading them.
///
/// ```
/// use tears_metrics::Aggregate;
/// let a = Aggregate::from_values([Some(1.0), None, Some(0.0)]);
/// assert_eq!((a.mean, a.counted, a.excluded), (0.5, 2, 1));
/// assert!((a.std_err - 0.5 / 2f64.sqrt()).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    /// Mean over the counted users.
    pub mean: f64,
    /// Standard error of the mean: population std / sqrt(counted).
    pub std_err: f64,
    /// Users that have a value.
    pub counted: usize,
    /// Users left out (no value).
    pub excluded: usize,
}

impl Aggregate {
    /// Aggregates per-user values; `None` counts as excluded.
    pub fn from_values<I: IntoIterator<Item = Option<f64>>>(values: I) -> Self {
        let mut acc = Accumulator::new();
        for v in values {
            acc.push(v);
        }
        acc.finish()
    }
}

/// Streaming mean and variance (Welford), mergeable across batches of users, deterministic for a
/// fixed order of pushes and merges.
///
/// ```
/// use tears_metrics::Accumulator;
/// let mut a = Accumulator::new();
/// a.push(Some(1.0));
/// let mut b = Accumulator::new();
/// b.push(Some(3.0));
/// b.push(None);
/// a.merge(&b);
/// let agg = a.finish();
/// assert_eq!((agg.mean, agg.counted, agg.excluded), (2.0, 2, 1));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Accumulator {
    n: usize,
    excluded: usize,
    mean: f64,
    m2: f64,
}

impl Accumulator {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one user's value, or one excluded user for `None`.
    pub fn push(&mut self, value: Option<f64>) {
        match value {
            Some(x) => {
                self.n += 1;
                let d = x - self.mean;
                self.mean += d / self.n as f64;
                self.m2 += d * (x - self.mean);
            }
            None => self.excluded += 1,
        }
    }

    /// Adds everything another accumulator has seen (Chan et al.'s parallel update).
    pub fn merge(&mut self, other: &Accumulator) {
        self.excluded += other.excluded;
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            self.n = other.n;
            self.mean = other.mean;
            self.m2 = other.m2;
            return;
        }
        let n = self.n + other.n;
        let d = other.mean - self.mean;
        self.mean += d * other.n as f64 / n as f64;
        self.m2 += other.m2 + d * d * (self.n as f64) * (other.n as f64) / n as f64;
        self.n = n;
    }

    /// The aggregate of everything pushed so far.
    pub fn finish(&self) -> Aggregate {
        if self.n == 0 {
            return Aggregate { mean: 0.0, std_err: 0.0, counted: 0, excluded: self.excluded };
        }
        let n = self.n as f64;
        let var = (self.m2 / n).max(0.0);
        Aggregate { mean: self.mean, std_err: var.sqrt() / n.sqrt(), counted: self.n, excluded: self.excluded }
    }
}
