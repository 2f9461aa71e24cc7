//! Best-epoch selection with patience: [`EarlyStopping::update`] takes each epoch's validation
//! metric (higher is better) and says whether it improved, whether to wait, or whether to stop.

use serde::{Deserialize, Serialize};

/// What [`EarlyStopping::update`] decided about an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The best epoch so far: keep its weights.
    Improved,
    /// Not better; keep training.
    Wait,
    /// Not better for `patience` epochs in a row: stop.
    Stop,
}

/// The selection state (saved in checkpoints, so a resumed run decides as an uninterrupted one).
///
/// ```
/// use tears_vae::early_stopping::{Decision, EarlyStopping};
/// let mut s = EarlyStopping::new(Some(2));
/// assert_eq!(s.update(1, Some(0.30)), Decision::Improved);
/// assert_eq!(s.update(2, Some(0.29)), Decision::Wait);
/// assert_eq!(s.update(3, Some(0.28)), Decision::Stop);
/// assert_eq!((s.best_epoch, s.best_value), (1, Some(0.30)));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EarlyStopping {
    /// Epochs without improvement before stopping (`None`: never stop early).
    pub patience: Option<usize>,
    /// The 1-based best epoch (0 before the first epoch).
    pub best_epoch: usize,
    /// Its metric (`None` without validation).
    pub best_value: Option<f64>,
    /// Epochs since the best one.
    pub epochs_since_best: usize,
}

impl EarlyStopping {
    /// A fresh state.
    pub fn new(patience: Option<usize>) -> Self {
        EarlyStopping { patience, best_epoch: 0, best_value: None, epochs_since_best: 0 }
    }

    /// Records `epoch`'s metric. Without a metric (no validation users) every epoch counts as
    /// an improvement, so the last one is kept. A NaN metric never improves.
    pub fn update(&mut self, epoch: usize, metric: Option<f64>) -> Decision {
        let improved = match (metric, self.best_value) {
            (Some(v), Some(b)) => v > b,
            (Some(v), None) => !v.is_nan(),
            (None, _) => true,
        };
        if improved {
            self.best_epoch = epoch;
            self.best_value = metric;
            self.epochs_since_best = 0;
            return Decision::Improved;
        }
        self.epochs_since_best += 1;
        if self.should_stop() { Decision::Stop } else { Decision::Wait }
    }

    /// Whether the patience is used up (a resumed run checks this before its first epoch).
    pub fn should_stop(&self) -> bool {
        self.best_epoch > 0 && self.patience.is_some_and(|p| self.epochs_since_best >= p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (patience, metrics, expected decisions, best epoch).
    type Case<'a> = (Option<usize>, &'a [Option<f64>], &'a [Decision], usize);

    #[test]
    fn decisions_follow_the_table() {
        let cases: [Case<'_>; 6] = [
            (Some(1), &[Some(0.1), Some(0.2), Some(0.2)], &[Decision::Improved, Decision::Improved, Decision::Stop], 2),
            (
                Some(3),
                &[Some(0.5), Some(0.4), Some(0.6), Some(0.1)],
                &[Decision::Improved, Decision::Wait, Decision::Improved, Decision::Wait],
                3,
            ),
            (
                None,
                &[Some(0.5), Some(0.1), Some(0.1), Some(0.1)],
                &[Decision::Improved, Decision::Wait, Decision::Wait, Decision::Wait],
                1,
            ),
            (Some(2), &[None, None], &[Decision::Improved, Decision::Improved], 2),
            (Some(2), &[Some(f64::NAN), Some(0.1)], &[Decision::Wait, Decision::Improved], 2),
            (Some(2), &[Some(0.3), Some(0.3), Some(0.29)], &[Decision::Improved, Decision::Wait, Decision::Stop], 1),
        ];
        for (patience, metrics, expected, best) in cases {
            let mut s = EarlyStopping::new(patience);
            let got: Vec<Decision> = metrics.iter().enumerate().map(|(e, m)| s.update(e + 1, *m)).collect();
            assert_eq!(got, expected, "patience {patience:?}, metrics {metrics:?}");
            assert_eq!(s.best_epoch, best);
        }
    }

    #[test]
    fn a_used_up_patience_is_seen_after_a_restore() {
        let mut s = EarlyStopping::new(Some(1));
        s.update(1, Some(0.2));
        s.update(2, Some(0.1));
        let restored: EarlyStopping = serde_json::from_value(serde_json::to_value(&s).unwrap_or_default())
            .unwrap_or_else(|_| EarlyStopping::new(None));
        assert!(restored.should_stop());
        assert!(!EarlyStopping::new(Some(1)).should_stop());
    }
}
