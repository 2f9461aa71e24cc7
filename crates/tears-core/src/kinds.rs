//! The one registry of model kinds: every kind a model directory's manifest may name.
//!
//! Each model crate loads its own kinds; binaries dispatch on [`ModelKind::family`] and list
//! [`ModelKind::ALL`] in messages, so a new kind is added here once.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ModelError;

/// Which crate builds and loads a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// Non-neural baselines (`tears-baselines`).
    Baseline,
    /// VAE-family backbones (`tears-vae`).
    Backbone,
    /// Scrutable models with an editable profile (`tears-model`).
    Scrutable,
}

/// Every model kind of tears-rs.
///
/// ```
/// use tears_core::{Family, ModelKind};
/// let kind: ModelKind = "recvae".parse()?;
/// assert_eq!(kind.family(), Family::Backbone);
/// assert_eq!(ModelKind::Tears.name(), "tears");
/// assert!("popularity".parse::<ModelKind>().is_ok());
/// # Ok::<(), tears_core::ModelError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// EASE (Steck 2019).
    Ease,
    /// Most-popular.
    Pop,
    /// Mult-DAE.
    MultDae,
    /// Mult-VAE.
    MultVae,
    /// RecVAE.
    RecVae,
    /// MacridVAE.
    MacridVae,
    /// TEARS: a summary text, alone (TEARS Base) or fused with a backbone.
    Tears,
    /// GERS: a genre vector, alone (GERS Base) or fused with a backbone.
    Gers,
}

impl ModelKind {
    /// Every kind, baselines first.
    pub const ALL: [ModelKind; 8] = [
        ModelKind::Ease,
        ModelKind::Pop,
        ModelKind::MultDae,
        ModelKind::MultVae,
        ModelKind::RecVae,
        ModelKind::MacridVae,
        ModelKind::Tears,
        ModelKind::Gers,
    ];

    /// The name used on the command line and in manifests.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Ease => "ease",
            ModelKind::Pop => "pop",
            ModelKind::MultDae => "multdae",
            ModelKind::MultVae => "multvae",
            ModelKind::RecVae => "recvae",
            ModelKind::MacridVae => "macridvae",
            ModelKind::Tears => "tears",
            ModelKind::Gers => "gers",
        }
    }

    /// The crate family that builds this kind.
    pub fn family(self) -> Family {
        match self {
            ModelKind::Ease | ModelKind::Pop => Family::Baseline,
            ModelKind::MultDae | ModelKind::MultVae | ModelKind::RecVae | ModelKind::MacridVae => Family::Backbone,
            ModelKind::Tears | ModelKind::Gers => Family::Scrutable,
        }
    }

    /// The kinds of one family.
    pub fn of_family(family: Family) -> Vec<ModelKind> {
        ModelKind::ALL.into_iter().filter(|k| k.family() == family).collect()
    }

    /// The names of `kinds`, comma-separated (for messages).
    pub fn names(kinds: &[ModelKind]) -> String {
        kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModelKind {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase().replace(['-', '_'], "");
        if lower == "popularity" {
            return Ok(ModelKind::Pop);
        }
        ModelKind::ALL.into_iter().find(|k| k.name() == lower).ok_or_else(|| {
            ModelError::Config(format!(
                "unknown model kind {s:?} (expected one of {})",
                ModelKind::names(&ModelKind::ALL)
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_families_partition_the_kinds() {
        for k in ModelKind::ALL {
            assert_eq!(k.name().parse::<ModelKind>().ok(), Some(k));
            assert_eq!(serde_json::to_string(&k).ok(), Some(format!("\"{}\"", k.name())));
        }
        let total: usize = [Family::Baseline, Family::Backbone, Family::Scrutable]
            .iter()
            .map(|f| ModelKind::of_family(*f).len())
            .sum();
        assert_eq!(total, ModelKind::ALL.len());
        assert!("lightgcn".parse::<ModelKind>().is_err());
    }
}
