//! Controllability experiments (the paper's large-scope and guided edits), run through the public
//! recommendation API ([`ScrutableModel::score_matrix`]), so what they measure is what an
//! application gets: every experiment edits a user's profile, re-ranks with the same fold-in
//! history at each alpha, masks the seen items, and reports genre-NDCG changes per alpha with
//! their standard errors and the users counted and discarded (with the reason).
//!
//! - **Large-scope** ([`large_scope`]): the user's favourite and least favourite genre (highest
//!   and lowest mean fold-in rating among the experiment's genres with at least 3 rated items)
//!   are swapped in the summary (every common form of the two names; or, with [`LlmEdits`], the
//!   LLM names them and rewrites the summary), or their proportions swapped in a GERS genre
//!   vector. Δ_up = genre-NDCG@k of the least
//!   favourite genre after − before; Δ_down = that of the favourite before − after; positive
//!   means the edit worked.
//! - **Guided** ([`guided`]): the summary is replaced by "Summary: More {genre} movies" or "Less
//!   ..." for each of the most frequent genres (GERS: the genre's one-hot vector, "More" only);
//!   the change is genre-NDCG@k of the guided list − that of the user's list at alpha = 0 (the
//!   backbone alone; TEARS Base, which has no backbone, is compared with its list for the user's
//!   own summary).
//! - **Small-scope** ([`small_scope`]): a held-out positive ranked 100..=499 (0-based) by the
//!   original summary at every alpha is described by its genres and tags
//!   ([`tears_summarize::edit::describe_offline`]; with [`LlmEdits`], in about five words by the
//!   LLM, three times, the median reported) and that sentence appended to the summary; the rank
//!   change (before − after, positive = moved up) is reported per alpha.
//!
//! The text edits of the large- and small-scope experiments come from an [`EditSource`]:
//! [`OfflineEdits`] (deterministic, always available) or [`LlmEdits`] (the authors' protocol
//! through an OpenAI-compatible server, its answers cached).
//!
//! Genres are those attached to more than [`ControlOptions::min_genre_items`] items (100, as the
//! spec says), with names normalised as in [`tears_metrics::normalize_genre`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tears_core::{Profile, Profiles};
use tears_data::{EvalSet, Split};
use tears_metrics::{
    Aggregate, GenreIndex, GenrePair, genre_ndcg_at_k, large_scope_deltas, rank_change, rank_of, top_k_row,
};
use tears_summarize::History;
use tears_summarize::edit::insert_sentence;

use crate::error::{Result, TearsError};
use crate::recommend::{Edit, ScrutableModel};

mod edits;
pub mod plot;
pub use edits::{EditSource, LlmEdits, OfflineEdits, Outcome, Swap, Target};

/// Settings shared by the experiments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlOptions {
    /// The alphas to report (default 0, 0.1, ..., 1).
    pub alphas: Vec<f32>,
    /// Cut-off of genre-NDCG (20).
    pub k: usize,
    /// Genres attached to at most this many items are left out (100).
    pub min_genre_items: usize,
    /// A genre counts for a user's favourite / least favourite with at least this many rated
    /// items in the fold-in (3).
    pub min_rated: usize,
    /// Guided edits for this many most frequent genres (10).
    pub guided_genres: usize,
    /// The noun of guided edits: "movies", or "books" for book datasets.
    pub noun: String,
}

impl Default for ControlOptions {
    fn default() -> Self {
        ControlOptions {
            alphas: (0..=10).map(|i| i as f32 / 10.0).collect(),
            k: 20,
            min_genre_items: tears_metrics::DEFAULT_MIN_GENRE_ITEMS,
            min_rated: 3,
            guided_genres: 10,
            noun: "movies".into(),
        }
    }
}

impl ControlOptions {
    /// The defaults with the noun of `split`'s dataset ("books" for book datasets).
    pub fn for_split(split: &Split) -> Self {
        let noun = if split.meta.dataset.contains("book") { "books" } else { "movies" };
        ControlOptions { noun: noun.into(), ..Self::default() }
    }

    fn check(&self) -> Result<()> {
        if self.k == 0 {
            return Err(TearsError::BadRequest("k must be at least 1".into()));
        }
        if self.alphas.is_empty() || self.alphas.iter().any(|a| !(0.0..=1.0).contains(a)) {
            return Err(TearsError::BadRequest(format!("alphas must be in [0, 1], got {:?}", self.alphas)));
        }
        Ok(())
    }
}

/// One user of an experiment: the fold-in history (item ids and ratings, in time order), what a
/// summarizer saw, and the profile the model reads (a summary, or a GERS genre vector).
#[derive(Debug, Clone)]
pub struct ControlUser {
    /// Source user id.
    pub user: u64,
    /// Fold-in history as (item id, rating).
    pub history: Vec<(u64, f32)>,
    /// The ratings with titles and genres (as a summarizer saw them).
    pub window: History,
    /// The user's profile.
    pub profile: Profile,
    /// The held-out positives' item ids (the small-scope targets are drawn from them).
    pub heldout: Vec<u64>,
}

/// The users of `which` (the test or validation users of `split`) with their profiles: the
/// summary in `summaries` for a TEARS model, or the genre vector of the fold-in ratings for GERS
/// (`summaries` unused).
///
/// # Errors
/// A user without a summary in `summaries` (or no summaries) for a TEARS model.
pub fn control_users(
    model: &ScrutableModel,
    split: &Split,
    which: EvalSet,
    summaries: Option<&Profiles>,
) -> Result<Vec<ControlUser>> {
    let set = match which {
        EvalSet::Validation => &split.validation,
        EvalSet::Test => &split.test,
    };
    let mut users = Vec::with_capacity(set.len());
    for (row, &user) in set.users().iter().enumerate() {
        let ratings = set.foldin.row(row);
        let history: Vec<(u64, f32)> = ratings.iter().map(|r| (split.items[r.item as usize].id, r.rating)).collect();
        let profile = match model.genres() {
            Some(space) => Profile::Vector(space.profile(ratings)),
            None => summaries.and_then(|s| s.get(user)).cloned().ok_or_else(|| {
                TearsError::BadRequest(format!(
                    "user {user} has no summary: give the summaries the model was trained on"
                ))
            })?,
        };
        let window = History::from_eval_user(split, which, row).unwrap_or_else(|| History::from_window(&[]));
        let heldout = set.heldout.row(row).iter().map(|r| split.items[r.item as usize].id).collect();
        users.push(ControlUser { user, history, window, profile, heldout });
    }
    Ok(users)
}

/// An edited profile, written beside the results so every number traces to its text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EditLog {
    /// Source user id.
    pub user: u64,
    /// The edit (`swap_genres`, `guided_more`, `guided_less`).
    pub edit: String,
    /// Its parameters (genres).
    pub params: serde_json::Value,
    /// The profile before (a summary, or a genre vector as JSON).
    pub original: String,
    /// The profile after.
    pub edited: String,
}

/// Users left out of an experiment, by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discarded(pub BTreeMap<String, usize>);

impl Discarded {
    fn add(&mut self, reason: &str) {
        *self.0.entry(reason.to_string()).or_default() += 1;
    }

    /// Users discarded in all.
    pub fn total(&self) -> usize {
        self.0.values().sum()
    }
}

/// Δ_up and Δ_down at one alpha.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LargeScopeRow {
    /// The alpha.
    pub alpha: f32,
    /// Δ_up: genre-NDCG@k of the least favourite genre, edited − original.
    pub delta_up: Aggregate,
    /// Δ_down: genre-NDCG@k of the favourite genre, original − edited.
    pub delta_down: Aggregate,
}

/// The large-scope experiment's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LargeScopeResult {
    /// Genre-NDCG cut-off.
    pub k: usize,
    /// Users given.
    pub users: usize,
    /// Users counted.
    pub counted: usize,
    /// Where the edits came from ([`EditSource::name`]: `offline`, `llm:MODEL`).
    pub source: String,
    /// Users left out, by reason.
    pub discarded: Discarded,
    /// One row per alpha.
    pub rows: Vec<LargeScopeRow>,
    /// Per user counted: (user, favourite, least favourite, Δ_up per alpha, Δ_down per alpha).
    pub per_user: Vec<LargeScopeUser>,
    /// The edited profiles.
    #[serde(skip)]
    pub edits: Vec<EditLog>,
}

/// One counted user of the large-scope experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LargeScopeUser {
    /// Source user id.
    pub user: u64,
    /// Favourite genre (normalised name).
    pub favourite: String,
    /// Least favourite genre.
    pub least_favourite: String,
    /// Δ_up per alpha (in the order of the rows).
    pub delta_up: Vec<f64>,
    /// Δ_down per alpha.
    pub delta_down: Vec<f64>,
}

/// The experiment's genres over the model's items, and the item genres as spelt in the data.
struct Genres {
    index: GenreIndex,
    /// A display spelling per kept genre (the first seen in the items, `Sci-Fi`).
    display: Vec<String>,
}

impl Genres {
    fn new(model: &ScrutableModel, min_items: usize) -> Self {
        let item_genres: Vec<Vec<String>> = model.items().items().iter().map(|i| i.genres.clone()).collect();
        let index = GenreIndex::from_item_genres(&item_genres, min_items);
        let mut display: Vec<Option<String>> = vec![None; index.n_genres()];
        for g in item_genres.iter().flatten() {
            if let Some(id) = index.id(g) {
                display[id].get_or_insert_with(|| g.clone());
            }
        }
        let display =
            display.into_iter().enumerate().map(|(id, d)| d.unwrap_or_else(|| index.names()[id].clone())).collect();
        Genres { index, display }
    }
}

fn seen_columns(model: &ScrutableModel, history: &[(u64, f32)]) -> Vec<usize> {
    history.iter().filter_map(|(id, _)| model.items().column(*id)).collect()
}

fn profile_text(p: &Profile) -> String {
    match p {
        Profile::Text(t) => t.clone(),
        Profile::Vector(v) => serde_json::to_string(v).unwrap_or_default(),
    }
}

/// The large-scope experiment over `users` (see the module documentation). `progress` is called
/// with the number of users done.
///
/// # Errors
/// Bad options; a failed encoding or scoring.
pub fn large_scope(
    model: &ScrutableModel,
    users: &[ControlUser],
    options: &ControlOptions,
    source: &mut dyn EditSource,
    progress: &mut dyn FnMut(usize),
) -> Result<LargeScopeResult> {
    options.check()?;
    let genres = Genres::new(model, options.min_genre_items);
    let mut discarded = Discarded::default();
    let mut per_user = Vec::new();
    let mut edits = Vec::new();
    for (done, u) in users.iter().enumerate() {
        progress(done);
        let (fav, least, edited, kind) = match &u.profile {
            Profile::Text(t) => match source.swap(u, t, &genres.display, options.min_rated)? {
                Outcome::Edit(s) => (s.favourite, s.least_favourite, Profile::Text(s.text), s.kind),
                Outcome::Discard(reason) => {
                    discarded.add(&reason);
                    continue;
                }
            },
            Profile::Vector(v) => {
                let Some((fav, least)) = edits::rated_favourites(u, &genres.display, options.min_rated) else {
                    discarded.add("fewer than two of the experiment's genres with enough rated items");
                    continue;
                };
                let space = model
                    .genres()
                    .ok_or_else(|| TearsError::BadRequest("a genre vector given to a TEARS model".into()))?;
                let edited = Edit::SwapGenres(fav.clone(), least.clone()).apply_to_genres(v, space)?;
                (fav, least, Profile::Vector(edited), "swap_genres".to_string())
            }
        };
        let (Some(favourite), Some(least_favourite)) = (genres.index.id(&fav), genres.index.id(&least)) else {
            discarded.add("the edit names a genre outside the experiment's");
            continue;
        };
        let pair = GenrePair { favourite, least_favourite };
        let seen = seen_columns(model, &u.history);
        let profiles = [u.profile.clone(), edited.clone()];
        let (mut up, mut down) = (Vec::new(), Vec::new());
        for &alpha in &options.alphas {
            let scores = model.score_matrix(&u.history, &profiles, alpha)?;
            let lists = [0, 1].map(|r| top_k_row(&scores.row(r).to_vec(), &seen, options.k));
            let [before, after] = lists;
            let d =
                large_scope_deltas(&before.map_err(metrics)?, &after.map_err(metrics)?, pair, &genres.index, options.k)
                    .map_err(metrics)?;
            up.push(d.delta_up);
            down.push(d.delta_down);
        }
        edits.push(EditLog {
            user: u.user,
            edit: kind,
            params: serde_json::json!({ "favourite": fav, "least_favourite": least }),
            original: profile_text(&u.profile),
            edited: profile_text(&edited),
        });
        per_user.push(LargeScopeUser {
            user: u.user,
            favourite: genres.index.names()[pair.favourite].clone(),
            least_favourite: genres.index.names()[pair.least_favourite].clone(),
            delta_up: up,
            delta_down: down,
        });
    }
    progress(users.len());
    let rows = options
        .alphas
        .iter()
        .enumerate()
        .map(|(a, &alpha)| LargeScopeRow {
            alpha,
            delta_up: Aggregate::from_values(per_user.iter().map(|p| Some(p.delta_up[a]))),
            delta_down: Aggregate::from_values(per_user.iter().map(|p| Some(p.delta_down[a]))),
        })
        .collect();
    Ok(LargeScopeResult {
        k: options.k,
        users: users.len(),
        counted: per_user.len(),
        source: source.name(),
        discarded,
        rows,
        per_user,
        edits,
    })
}

fn metrics(e: tears_metrics::MetricsError) -> TearsError {
    TearsError::Model(tears_core::ModelError::Numerical(e.to_string()))
}

/// One guided edit's change at one alpha.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuidedCell {
    /// The alpha.
    pub alpha: f32,
    /// genre-NDCG@k of the guided list − that of the baseline list, over users.
    pub change: Aggregate,
}

/// One genre's guided results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuidedGenre {
    /// The genre as the edit names it (`Sci-Fi`).
    pub genre: String,
    /// Items attached to it.
    pub items: usize,
    /// "More {genre}" per alpha (positive = it worked).
    pub more: Vec<GuidedCell>,
    /// "Less {genre}" per alpha (negative = it worked); empty for GERS, whose guided profile is
    /// the genre's one-hot vector.
    pub less: Vec<GuidedCell>,
}

/// The guided experiment's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuidedResult {
    /// Genre-NDCG cut-off.
    pub k: usize,
    /// Users counted (every user given).
    pub users: usize,
    /// What the changes are measured against.
    pub baseline: String,
    /// One entry per genre, most frequent first.
    pub genres: Vec<GuidedGenre>,
    /// The guided profiles (the same for every user).
    #[serde(skip)]
    pub edits: Vec<EditLog>,
}

/// The guided experiment over `users` (see the module documentation).
///
/// # Errors
/// Bad options; a failed encoding or scoring.
pub fn guided(
    model: &ScrutableModel,
    users: &[ControlUser],
    options: &ControlOptions,
    progress: &mut dyn FnMut(usize),
) -> Result<GuidedResult> {
    options.check()?;
    let genres = Genres::new(model, options.min_genre_items);
    let chosen = genres.index.most_frequent(options.guided_genres);
    let gers = model.genres().cloned();
    // The guided profiles: More for every genre, then Less (TEARS only).
    let mut guided: Vec<(usize, bool, Profile)> = Vec::new();
    for &g in &chosen {
        let name = &genres.display[g];
        match &gers {
            Some(space) => {
                let k = space
                    .index(name)
                    .ok_or_else(|| TearsError::BadRequest(format!("GERS does not know genre {name:?}")))?;
                guided.push((g, true, Profile::Vector(space.one_hot(k))));
            }
            None => {
                for more in [true, false] {
                    let text = tears_summarize::edit::guided("", name, more, &options.noun).text;
                    guided.push((g, more, Profile::Text(text)));
                }
            }
        }
    }
    let base = model.model().backbone() == crate::config::BackboneChoice::None;
    let n_alpha = options.alphas.len();
    // acc[profile][alpha]
    let mut acc = vec![vec![tears_metrics::Accumulator::new(); n_alpha]; guided.len()];
    let profiles: Vec<Profile> = guided.iter().map(|(_, _, p)| p.clone()).collect();
    for (done, u) in users.iter().enumerate() {
        progress(done);
        let seen = seen_columns(model, &u.history);
        let reference = model.score_matrix(&u.history, std::slice::from_ref(&u.profile), 0.0)?;
        let reference = top_k_row(&reference.row(0).to_vec(), &seen, options.k).map_err(metrics)?;
        for (a, &alpha) in options.alphas.iter().enumerate() {
            let scores = model.score_matrix(&u.history, &profiles, alpha)?;
            for (p, (g, _, _)) in guided.iter().enumerate() {
                let list = top_k_row(&scores.row(p).to_vec(), &seen, options.k).map_err(metrics)?;
                let change = genre_ndcg_at_k(&list, &genres.index, *g, options.k).map_err(metrics)?
                    - genre_ndcg_at_k(&reference, &genres.index, *g, options.k).map_err(metrics)?;
                acc[p][a].push(Some(change));
            }
        }
    }
    progress(users.len());
    let cells = |p: usize| -> Vec<GuidedCell> {
        options.alphas.iter().enumerate().map(|(a, &alpha)| GuidedCell { alpha, change: acc[p][a].finish() }).collect()
    };
    let mut out = Vec::new();
    for &g in &chosen {
        let find = |more: bool| guided.iter().position(|(x, m, _)| *x == g && *m == more);
        out.push(GuidedGenre {
            genre: genres.display[g].clone(),
            items: genres.index.item_count(g).unwrap_or(0),
            more: find(true).map(cells).unwrap_or_default(),
            less: find(false).map(cells).unwrap_or_default(),
        });
    }
    let edits = guided
        .iter()
        .map(|(g, more, p)| EditLog {
            user: 0,
            edit: if *more { "guided_more" } else { "guided_less" }.into(),
            params: serde_json::json!({ "genre": genres.display[*g] }),
            original: String::new(),
            edited: profile_text(p),
        })
        .collect();
    let baseline = if base {
        "the user's own summary (TEARS Base has no backbone, so no alpha = 0 list)".to_string()
    } else {
        "the user's list at alpha = 0 (the backbone alone)".to_string()
    };
    Ok(GuidedResult { k: options.k, users: users.len(), baseline, genres: out, edits })
}

/// The small-scope rank change at one alpha.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmallScopeRow {
    /// The alpha.
    pub alpha: f32,
    /// rank before − rank after of the target (0-based ranks over the unseen items; positive =
    /// moved up).
    pub rank_change: Aggregate,
}

/// One counted user of the small-scope experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmallScopeUser {
    /// Source user id.
    pub user: u64,
    /// The target item's id.
    pub item: u64,
    /// The sentences inserted, one per attempt (one offline; [`LlmEdits::attempts`] with an LLM).
    pub sentences: Vec<String>,
    /// Rank before the edit, per alpha.
    pub before: Vec<usize>,
    /// Rank after the edit, per alpha: the median over the attempts (the lower middle one for
    /// an even count).
    pub after: Vec<usize>,
}

/// The small-scope experiment's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmallScopeResult {
    /// Target ranks (0-based) must lie in this range at every alpha before the edit.
    pub rank_range: (usize, usize),
    /// Users given.
    pub users: usize,
    /// Users counted.
    pub counted: usize,
    /// Where the descriptions came from ([`EditSource::name`]).
    pub source: String,
    /// Users left out, by reason.
    pub discarded: Discarded,
    /// One row per alpha.
    pub rows: Vec<SmallScopeRow>,
    /// Per user counted.
    pub per_user: Vec<SmallScopeUser>,
    /// The edited profiles.
    #[serde(skip)]
    pub edits: Vec<EditLog>,
}

/// The small-scope experiment over `users` (see the module documentation); TEARS models only
/// (a GERS profile has no sentences). The target is the first held-out positive, in the split's
/// order, whose rank lies in 100..=499 at every alpha.
///
/// # Errors
/// Bad options, a GERS model; a failed encoding or scoring.
pub fn small_scope(
    model: &ScrutableModel,
    users: &[ControlUser],
    options: &ControlOptions,
    source: &mut dyn EditSource,
    progress: &mut dyn FnMut(usize),
) -> Result<SmallScopeResult> {
    options.check()?;
    if model.genres().is_some() {
        return Err(TearsError::BadRequest("the small-scope edit inserts a sentence: it needs a TEARS model".into()));
    }
    let range = (100usize, 499usize);
    let mut discarded = Discarded::default();
    let mut per_user = Vec::new();
    let mut edits = Vec::new();
    for (done, u) in users.iter().enumerate() {
        progress(done);
        let Profile::Text(text) = &u.profile else {
            return Err(TearsError::BadRequest(format!("user {} has no summary", u.user)));
        };
        let seen = seen_columns(model, &u.history);
        let mut before_rows = Vec::with_capacity(options.alphas.len());
        for &alpha in &options.alphas {
            before_rows.push(model.score_matrix(&u.history, std::slice::from_ref(&u.profile), alpha)?.row(0).to_vec());
        }
        let mut target = None;
        for &id in &u.heldout {
            let Some(col) = model.items().column(id) else { continue };
            let mut ok = true;
            for row in &before_rows {
                let r = rank_of(row, &seen, col).map_err(metrics)?;
                if !(range.0..=range.1).contains(&r) {
                    ok = false;
                    break;
                }
            }
            if ok {
                target = Some((id, col));
                break;
            }
        }
        let Some((id, col)) = target else {
            discarded.add("no held-out positive ranked 100..=499 at every alpha");
            continue;
        };
        let item = &model.items().items()[col];
        let target = Target { item: id, title: &item.title, genres: &item.genres, tags: &item.tags };
        let sentences = match source.describe(u, &target)? {
            Outcome::Edit(s) if !s.is_empty() => s,
            Outcome::Edit(_) => {
                discarded.add("no description of the target");
                continue;
            }
            Outcome::Discard(reason) => {
                discarded.add(&reason);
                continue;
            }
        };
        let edited: Vec<Profile> = sentences.iter().map(|s| Profile::Text(insert_sentence(text, s).text)).collect();
        let (mut before, mut after) = (Vec::new(), Vec::new());
        for (a, &alpha) in options.alphas.iter().enumerate() {
            let scores = model.score_matrix(&u.history, &edited, alpha)?;
            let mut ranks = Vec::with_capacity(edited.len());
            for r in 0..edited.len() {
                let rc = rank_change(&before_rows[a], &scores.row(r).to_vec(), &seen, col).map_err(metrics)?;
                if ranks.is_empty() {
                    before.push(rc.before);
                }
                ranks.push(rc.after);
            }
            ranks.sort_unstable();
            after.push(ranks[(ranks.len() - 1) / 2]);
        }
        for (attempt, (sentence, e)) in sentences.iter().zip(&edited).enumerate() {
            edits.push(EditLog {
                user: u.user,
                edit: "insert_sentence".into(),
                params: serde_json::json!({ "item": id, "sentence": sentence, "attempt": attempt }),
                original: text.clone(),
                edited: profile_text(e),
            });
        }
        per_user.push(SmallScopeUser { user: u.user, item: id, sentences, before, after });
    }
    progress(users.len());
    let rows = options
        .alphas
        .iter()
        .enumerate()
        .map(|(a, &alpha)| SmallScopeRow {
            alpha,
            rank_change: Aggregate::from_values(per_user.iter().map(|p| Some(p.before[a] as f64 - p.after[a] as f64))),
        })
        .collect();
    Ok(SmallScopeResult {
        rank_range: range,
        users: users.len(),
        counted: per_user.len(),
        source: source.name(),
        discarded,
        rows,
        per_user,
        edits,
    })
}
