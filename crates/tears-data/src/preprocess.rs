//! Preprocessing: binarisation threshold, user and item filters, k-core.

use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::{DataError, Result};

/// A rating strictly above this value is positive feedback: `>= 4` on a 1..5 integer scale and
/// `> 3.5` with half stars (the project-wide convention).
pub const POSITIVE_ABOVE: f32 = 3.5;

/// Filters applied to a dataset before a protocol splits it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocess {
    /// Ratings strictly above this are positive.
    pub positive_above: f32,
    /// Users with fewer ratings (of any value) are dropped.
    pub min_ratings_per_user: usize,
    /// Items with fewer positive ratings are dropped (all their ratings).
    pub min_positives_per_item: usize,
    /// If set, iterate until every user and every item has at least this many positives.
    pub k_core: Option<usize>,
}

impl Default for Preprocess {
    fn default() -> Self {
        Preprocess { positive_above: POSITIVE_ABOVE, min_ratings_per_user: 0, min_positives_per_item: 0, k_core: None }
    }
}

/// What preprocessing removed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PreprocessReport {
    /// Events before.
    pub events_before: usize,
    /// Events after.
    pub events_after: usize,
    /// Users with events before.
    pub users_before: usize,
    /// Users with events after.
    pub users_after: usize,
    /// k-core iterations run (0 without k-core).
    pub k_core_rounds: usize,
}

impl Preprocess {
    /// Checks the parameters.
    pub fn validate(&self) -> Result<()> {
        if !self.positive_above.is_finite() {
            return Err(DataError::Config("positive_above must be finite".into()));
        }
        if self.k_core == Some(0) {
            return Err(DataError::Config("k_core must be at least 1".into()));
        }
        Ok(())
    }

    /// Applies the filters in place and reports what they removed.
    pub fn apply(&self, data: &mut Dataset) -> Result<PreprocessReport> {
        self.validate()?;
        let mut report =
            PreprocessReport { events_before: data.events.len(), users_before: data.users.len(), ..Default::default() };
        let pos = self.positive_above;
        let n_items = data.items.len();
        if self.min_ratings_per_user > 0 {
            let mut counts = vec![0usize; data.users.len()];
            for e in &data.events {
                counts[e.user as usize] += 1;
            }
            let min = self.min_ratings_per_user;
            data.retain_events(|e| counts[e.user as usize] >= min);
        }
        if self.min_positives_per_item > 0 {
            let mut counts = vec![0usize; n_items];
            for e in data.events.iter().filter(|e| e.rating > pos) {
                counts[e.item as usize] += 1;
            }
            let min = self.min_positives_per_item;
            data.retain_events(|e| counts[e.item as usize] >= min);
        }
        if let Some(k) = self.k_core {
            loop {
                report.k_core_rounds += 1;
                let mut user_pos = vec![0usize; data.users.len()];
                let mut item_pos = vec![0usize; n_items];
                for e in data.events.iter().filter(|e| e.rating > pos) {
                    user_pos[e.user as usize] += 1;
                    item_pos[e.item as usize] += 1;
                }
                let before = data.events.len();
                data.retain_events(|e| user_pos[e.user as usize] >= k && item_pos[e.item as usize] >= k);
                if data.events.len() == before {
                    break;
                }
            }
        }
        report.events_after = data.events.len();
        report.users_after = data.users.len();
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::DatasetBuilder;

    fn toy() -> Dataset {
        let mut b = DatasetBuilder::new("toy");
        // user 1: 3 positives; user 2: 1 positive, 1 negative; user 3: 2 positives
        for (u, i, r) in
            [(1, 10, 5.0), (1, 11, 4.0), (1, 12, 5.0), (2, 10, 5.0), (2, 13, 1.0), (3, 10, 4.0), (3, 11, 5.0)]
        {
            b.rate(u, i, r, 0);
        }
        b.finish()
    }

    #[test]
    fn min_ratings_per_user_drops_users() {
        let mut d = toy();
        Preprocess { min_ratings_per_user: 3, ..Default::default() }.apply(&mut d).expect("ok");
        assert_eq!(d.users, vec![1]);
        assert_eq!(d.events.len(), 3);
    }

    #[test]
    fn k_core_converges_to_a_fixed_point() {
        let mut d = toy();
        let report = Preprocess { k_core: Some(2), ..Default::default() }.apply(&mut d).expect("ok");
        // Items 12, 13 have < 2 positives; user 2 then has 1 positive and drops; item 10 keeps 2.
        let mut pos_u = std::collections::HashMap::new();
        let mut pos_i = std::collections::HashMap::new();
        for e in &d.events {
            if e.rating > POSITIVE_ABOVE {
                *pos_u.entry(e.user).or_insert(0) += 1;
                *pos_i.entry(e.item).or_insert(0) += 1;
            }
        }
        assert!(pos_u.values().all(|&c| c >= 2) && pos_i.values().all(|&c| c >= 2));
        assert_eq!(d.users, vec![1, 3]);
        assert!(report.k_core_rounds >= 2);
    }
}
