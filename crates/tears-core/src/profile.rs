//! User profiles: what a scrutable model reads besides the fold-in rows.
//!
//! A TEARS model reads each user's summary text, a GERS model a genre vector (which it derives
//! from the fold-in unless one is given). Profiles travel next to the fold-in rows through
//! [`crate::Recommender::score_with_profiles`], so evaluation, the command line and applications
//! serve every model through the same seam; models that read no profile ignore them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// One user's editable profile.
///
/// ```
/// use tears_core::Profile;
/// let p = Profile::Text("Summary: enjoys slow dramas.".into());
/// assert_eq!(p.as_text(), Some("Summary: enjoys slow dramas."));
/// assert!(Profile::Vector(vec![0.5, 0.5]).as_text().is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// A natural-language summary (TEARS).
    Text(String),
    /// A vector: a genre vector (GERS) or a precomputed text embedding.
    Vector(Vec<f32>),
}

impl Profile {
    /// The text of a [`Profile::Text`].
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Profile::Text(t) => Some(t),
            Profile::Vector(_) => None,
        }
    }

    /// The values of a [`Profile::Vector`].
    pub fn as_vector(&self) -> Option<&[f32]> {
        match self {
            Profile::Vector(v) => Some(v),
            Profile::Text(_) => None,
        }
    }
}

/// What a model reads besides the fold-in rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProfileKind {
    /// Nothing: the fold-in rows only (baselines, backbones).
    None,
    /// A summary text per user, required.
    Text,
    /// A genre vector per user, derived from the fold-in when none is given.
    Genres,
}

impl ProfileKind {
    /// What the profile is called in messages.
    pub fn noun(self) -> &'static str {
        match self {
            ProfileKind::None => "profile",
            ProfileKind::Text => "summary",
            ProfileKind::Genres => "genre vector",
        }
    }
}

/// What to do with an evaluated user whose required profile is missing.
///
/// ```
/// use tears_core::MissingProfile;
/// assert_eq!("skip".parse::<MissingProfile>()?, MissingProfile::Skip);
/// assert_eq!(MissingProfile::default(), MissingProfile::Error);
/// # Ok::<(), tears_core::ModelError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MissingProfile {
    /// Refuse, naming how many users and which file ([`ModelError::MissingProfiles`]).
    #[default]
    Error,
    /// Use an empty profile (an empty summary text).
    Empty,
    /// Leave the user out (the number left out is logged).
    Skip,
}

impl MissingProfile {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            MissingProfile::Error => "error",
            MissingProfile::Empty => "empty",
            MissingProfile::Skip => "skip",
        }
    }
}

impl FromStr for MissingProfile {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "error" => Ok(MissingProfile::Error),
            "empty" => Ok(MissingProfile::Empty),
            "skip" => Ok(MissingProfile::Skip),
            other => {
                Err(ModelError::Config(format!("unknown missing-profile policy {other:?} (error, empty or skip)")))
            }
        }
    }
}

/// Profiles by user id, with the file they came from (for messages).
///
/// ```
/// use tears_core::{MissingProfile, Profile, ProfileKind, Profiles};
/// let mut p = Profiles::new(None);
/// p.insert(7, Profile::Text("Summary: likes westerns.".into()));
/// let picked = p.resolve(&[7, 8], ProfileKind::Text, MissingProfile::Skip)?;
/// assert_eq!(picked.rows, vec![0]);
/// assert!(p.resolve(&[7, 8], ProfileKind::Text, MissingProfile::Error).is_err());
/// # Ok::<(), tears_core::ModelError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profiles {
    by_user: HashMap<u64, Profile>,
    source: Option<PathBuf>,
}

/// The users kept by [`Profiles::resolve`] and the profile of each (`None`: the model derives
/// its own, for [`ProfileKind::Genres`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// Indices (into the users asked for) of the users kept.
    pub rows: Vec<usize>,
    /// The profile of each kept user.
    pub profiles: Vec<Option<Profile>>,
    /// Users left out ([`MissingProfile::Skip`]).
    pub skipped: usize,
}

impl Profiles {
    /// No profiles yet; `source` names their file in messages.
    pub fn new(source: Option<&Path>) -> Self {
        Profiles { by_user: HashMap::new(), source: source.map(Path::to_path_buf) }
    }

    /// Summary texts by user id.
    pub fn from_texts<'a>(texts: impl IntoIterator<Item = (u64, &'a str)>, source: Option<&Path>) -> Self {
        let mut p = Profiles::new(source);
        for (u, t) in texts {
            p.insert(u, Profile::Text(t.to_string()));
        }
        p
    }

    /// Sets (or replaces) a user's profile.
    pub fn insert(&mut self, user: u64, profile: Profile) {
        self.by_user.insert(user, profile);
    }

    /// A user's profile.
    pub fn get(&self, user: u64) -> Option<&Profile> {
        self.by_user.get(&user)
    }

    /// Number of users with a profile.
    pub fn len(&self) -> usize {
        self.by_user.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_user.is_empty()
    }

    /// The file the profiles came from.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// Picks the profile of each of `users` for a model that reads `kind`, applying `policy` to
    /// users without one (only [`ProfileKind::Text`] requires one).
    ///
    /// # Errors
    /// [`ModelError::MissingProfiles`] under [`MissingProfile::Error`], naming how many users and
    /// the file.
    pub fn resolve(&self, users: &[u64], kind: ProfileKind, policy: MissingProfile) -> Result<Resolved> {
        resolve(Some(self), users, kind, policy)
    }
}

/// [`Profiles::resolve`] with possibly no profiles at all.
///
/// # Errors
/// As [`Profiles::resolve`].
pub fn resolve(
    profiles: Option<&Profiles>,
    users: &[u64],
    kind: ProfileKind,
    policy: MissingProfile,
) -> Result<Resolved> {
    let mut out =
        Resolved { rows: Vec::with_capacity(users.len()), profiles: Vec::with_capacity(users.len()), skipped: 0 };
    let mut missing: Vec<u64> = Vec::new();
    for (r, &u) in users.iter().enumerate() {
        let found = profiles.and_then(|p| p.get(u)).cloned();
        match (kind, found) {
            (ProfileKind::Text, None) => match policy {
                MissingProfile::Error => missing.push(u),
                MissingProfile::Empty => {
                    out.rows.push(r);
                    out.profiles.push(Some(Profile::Text(String::new())));
                }
                MissingProfile::Skip => out.skipped += 1,
            },
            (ProfileKind::None, _) => {
                out.rows.push(r);
                out.profiles.push(None);
            }
            (_, found) => {
                out.rows.push(r);
                out.profiles.push(found);
            }
        }
    }
    if !missing.is_empty() {
        return Err(ModelError::MissingProfiles {
            what: kind.noun(),
            missing: missing.len(),
            users: users.len(),
            examples: missing.iter().take(5).map(u64::to_string).collect::<Vec<_>>().join(", "),
            source_name: profiles.and_then(|p| p.source.clone()),
        });
    }
    if out.skipped > 0 {
        tracing::warn!("{} of {} users have no {} and are left out", out.skipped, users.len(), kind.noun());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_handle_missing_summaries() {
        let p = Profiles::from_texts([(1, "Summary: a."), (3, "Summary: c.")], Some(Path::new("s.jsonl")));
        let users = [1, 2, 3, 4];
        let err = p.resolve(&users, ProfileKind::Text, MissingProfile::Error).err().map(|e| e.to_string());
        let msg = err.unwrap_or_default();
        assert!(msg.contains("2 of 4 users have no summary in s.jsonl") && msg.contains("2, 4"), "{msg}");
        let empty = p.resolve(&users, ProfileKind::Text, MissingProfile::Empty).ok();
        assert_eq!(empty.as_ref().map(|r| r.rows.clone()), Some(vec![0, 1, 2, 3]));
        assert_eq!(empty.and_then(|r| r.profiles[1].clone()), Some(Profile::Text(String::new())));
        let skip = p.resolve(&users, ProfileKind::Text, MissingProfile::Skip).ok();
        assert_eq!(skip.as_ref().map(|r| (r.rows.clone(), r.skipped)), Some((vec![0, 2], 2)));
        // Genre vectors are optional overrides; models without profiles get none.
        let genres = p.resolve(&users, ProfileKind::Genres, MissingProfile::Error).ok();
        assert_eq!(genres.map(|r| r.rows.len()), Some(4));
        let none = resolve(None, &users, ProfileKind::None, MissingProfile::Error).ok();
        assert_eq!(none.map(|r| r.profiles.iter().all(Option::is_none)), Some(true));
    }
}
