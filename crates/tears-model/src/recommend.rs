//! Scrutable recommendation for an application: a trained TEARS or GERS model directory, loaded
//! once ([`ScrutableModel::open`]), answers requests ([`Request`]): a profile (a summary, possibly
//! edited, or a GERS genre vector), an optional history, alpha and k, and returns the top-k
//! items with titles, genres and scores, seen items excluded ([`Recommendation`]). With
//! `explain`, every item says how the text moved it (its rank at alpha = 0 and alpha = 1) and
//! which summary sentences move it most (leave one sentence out; all the variants of a summary go
//! through the encoder as one batch).
//!
//! Profile edits are data ([`Edit`]), so that a caller can show, undo and log them; each
//! response carries the profile text that produced it.
//!
//! ```
//! use tears_model::recommend::{Edit, split_sentences};
//! let text = "Summary: The user enjoys war films, e.g. Platoon. They dislike horror! Lately, comedies.";
//! assert_eq!(split_sentences(text), vec!["The user enjoys war films, e.g. Platoon.", "They dislike horror!", "Lately, comedies."]);
//! let edited = Edit::RemoveSentence(1).apply_to_text(text)?;
//! assert_eq!(edited, "Summary: The user enjoys war films, e.g. Platoon. Lately, comedies.");
//! let swapped = Edit::SwapGenres("war".into(), "comedy".into()).apply_to_text("Loves war films, hates comedy.")?;
//! assert_eq!(swapped, "Loves comedy films, hates war.");
//! # Ok::<(), tears_model::TearsError>(())
//! ```

use std::collections::HashMap;
use std::path::Path;

use ndarray::Array2;
use serde::{Deserialize, Serialize};
use tears_core::{ITEMS_FILE, Profile};
use tears_data::split::UserRows;
use tears_data::{Item, Rating};

use crate::dir::{LoadOptions, load_with_items};
use crate::error::{Result, TearsError};
use crate::genres::GenreSpace;
use crate::scorer::ScrutableRecommender;

/// Abbreviations whose period does not end a sentence (lower case, without the final period).
const ABBREVIATIONS: [&str; 16] =
    ["e.g", "i.e", "etc", "vs", "mr", "mrs", "ms", "dr", "st", "jr", "sr", "no", "approx", "incl", "esp", "cf"];

/// The sentences of a summary: split after `.`, `!` or `?` followed by whitespace (or the end),
/// except after an abbreviation (`e.g.`, `Dr.`, ...) or a single capital initial (`J. R. R.`);
/// a leading `Summary:` is not a sentence and is dropped. Sentences are trimmed; empty ones
/// are left out.
pub fn split_sentences(text: &str) -> Vec<String> {
    sentence_spans(text).into_iter().map(|(a, b)| text[a..b].to_string()).collect()
}

/// The byte ranges of [`split_sentences`]' sentences in `text` (trimmed, in order).
pub fn sentence_spans(text: &str) -> Vec<(usize, usize)> {
    let lead = text.len() - text.trim_start().len();
    let offset = match text.get(lead..lead + 8) {
        Some(head) if head.eq_ignore_ascii_case("summary:") => lead + 8,
        _ => lead,
    };
    let body = &text[offset..];
    let chars: Vec<(usize, char)> = body.char_indices().collect();
    let mut out = Vec::new();
    let mut start = 0;
    for (k, &(pos, c)) in chars.iter().enumerate() {
        if !matches!(c, '.' | '!' | '?') {
            continue;
        }
        let next = chars.get(k + 1).map(|&(_, n)| n);
        if next.is_some_and(|n| !n.is_whitespace()) {
            continue;
        }
        if c == '.' && ends_with_abbreviation(&body[start..pos]) {
            continue;
        }
        let end = pos + c.len_utf8();
        push_span(&mut out, body, start, end, offset);
        start = end;
    }
    push_span(&mut out, body, start, body.len(), offset);
    out
}

fn push_span(out: &mut Vec<(usize, usize)>, body: &str, start: usize, end: usize, offset: usize) {
    let s = &body[start..end];
    let trimmed = s.trim();
    if !trimmed.is_empty() {
        let a = start + (s.len() - s.trim_start().len());
        out.push((offset + a, offset + a + trimmed.len()));
    }
}

/// `text` with sentence `span` removed, and the whitespace after it (before it, for the last
/// sentence), so that the rest of the text (a `Summary:` label, paragraph breaks) is unchanged.
fn remove_span(text: &str, (a, b): (usize, usize)) -> String {
    let after = text[b..].len() - text[b..].trim_start().len();
    if b + after < text.len() {
        format!("{}{}", &text[..a], &text[b + after..])
    } else {
        text[..a].trim_end().to_string()
    }
}

/// Whether the text before a period ends in an abbreviation or a capital initial.
fn ends_with_abbreviation(before: &str) -> bool {
    let word = before.rsplit(char::is_whitespace).next().unwrap_or("");
    let word = word.trim_start_matches(|c: char| !c.is_alphanumeric());
    if word.chars().count() == 1 && word.chars().all(char::is_uppercase) {
        return true;
    }
    let lower = word.to_lowercase();
    ABBREVIATIONS.contains(&lower.as_str())
}

/// A profile edit, as data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "edit", content = "args")]
pub enum Edit {
    /// Replace the whole summary.
    Replace(String),
    /// Append a sentence.
    Append(String),
    /// Remove sentence `i` (0-based, as [`split_sentences`] numbers them).
    RemoveSentence(usize),
    /// Replace sentence `i` with a text.
    ReplaceSentence(usize, String),
    /// Swap two genres: in a summary every whole-word occurrence of either, in all its common
    /// forms (`sci-fi` / `science fiction`, `comedy` / `comedies` / `comedic`, ...; see
    /// [`tears_summarize::edit::swap_genres`]), each taking the other's place; in a GERS genre
    /// vector their two proportions (the paper's large-scope edit).
    SwapGenres(String, String),
}

fn bad_request(message: impl Into<String>) -> TearsError {
    TearsError::BadRequest(message.into())
}

impl Edit {
    /// The summary after this edit.
    ///
    /// # Errors
    /// A sentence index past the end; an edit that leaves no text.
    pub fn apply_to_text(&self, text: &str) -> Result<String> {
        let spans = sentence_spans(text);
        let span = |i: usize| {
            spans
                .get(i)
                .copied()
                .ok_or_else(|| bad_request(format!("sentence {i} asked of a summary of {} sentences", spans.len())))
        };
        let out = match self {
            Edit::Replace(t) => t.trim().to_string(),
            Edit::Append(t) => {
                let base = text.trim_end();
                if base.is_empty() { t.trim().to_string() } else { format!("{base} {}", t.trim()) }
            }
            Edit::RemoveSentence(i) => remove_span(text, span(*i)?),
            Edit::ReplaceSentence(i, t) => {
                let (a, b) = span(*i)?;
                format!("{}{}{}", &text[..a], t.trim(), &text[b..])
            }
            Edit::SwapGenres(a, b) => tears_summarize::edit::swap_genres(text, a, b).text,
        };
        if sentence_spans(&out).is_empty() {
            return Err(bad_request("the edit leaves an empty summary"));
        }
        Ok(out)
    }

    /// The GERS genre vector after this edit (only [`Edit::SwapGenres`] applies to a vector).
    ///
    /// # Errors
    /// A text edit, or a genre the model does not know.
    pub fn apply_to_genres(&self, vector: &[f32], space: &GenreSpace) -> Result<Vec<f32>> {
        let Edit::SwapGenres(a, b) = self else {
            return Err(bad_request("a GERS profile is a genre vector: only swap_genres edits it"));
        };
        let index = |g: &str| {
            space
                .index(g)
                .ok_or_else(|| bad_request(format!("unknown genre {g:?} (known: {})", space.names.join(", "))))
        };
        Ok(space.swap(vector, index(a)?, index(b)?))
    }
}

/// The items a model scores, in column order, with a lookup by source id.
#[derive(Debug, Clone)]
pub struct ItemTable {
    items: Vec<Item>,
    by_id: HashMap<u64, usize>,
}

impl ItemTable {
    /// A table of `items` (column `j` is `items[j]`).
    pub fn new(items: Vec<Item>) -> Self {
        let by_id = items.iter().enumerate().map(|(j, i)| (i.id, j)).collect();
        ItemTable { items, by_id }
    }

    /// Reads `items.json` from a model directory.
    ///
    /// # Errors
    /// A missing or malformed file, naming it.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(ITEMS_FILE);
        let bytes = std::fs::read(&path).map_err(|e| tears_data::DataError::io(&path, e))?;
        let items: Vec<Item> = serde_json::from_slice(&bytes)
            .map_err(|e| TearsError::Mismatch { path: path.clone(), message: format!("not an item table: {e}") })?;
        Ok(ItemTable::new(items))
    }

    /// The items, in column order.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// The column of the item with source id `id`.
    pub fn column(&self, id: u64) -> Option<usize> {
        self.by_id.get(&id).copied()
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// What a request gives as the user's profile.
#[derive(Debug, Clone, PartialEq)]
pub enum ProfileInput {
    /// A summary text (TEARS).
    Summary(String),
    /// A genre vector, in the model's genre order (GERS).
    Genres(Vec<f32>),
    /// GERS: the genre vector of the history.
    FromHistory,
}

/// One recommendation request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The profile.
    pub profile: ProfileInput,
    /// Rated items (source item ids and ratings), oldest first; empty for a cold-start user.
    pub history: Vec<(u64, f32)>,
    /// alpha in [0, 1] (`None`: the model's alpha*); forced to 1 without a history.
    pub alpha: Option<f32>,
    /// How many items.
    pub k: usize,
    /// Explain every item (rank at alpha 0 and 1, leave-one-sentence-out effects).
    pub explain: bool,
}

impl Request {
    /// A request for the top `k` items of summary `text`, with no history, at alpha*.
    pub fn summary(text: impl Into<String>, k: usize) -> Self {
        Request { profile: ProfileInput::Summary(text.into()), history: Vec::new(), alpha: None, k, explain: false }
    }
}

/// How removing one sentence of the summary changes an item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentenceEffect {
    /// The sentence's index.
    pub index: usize,
    /// The sentence.
    pub sentence: String,
    /// The item's score with the full summary minus its score without the sentence (positive:
    /// the sentence pushes the item up).
    pub score_change: f32,
    /// The item's rank without the sentence (1 = first).
    pub rank_without: usize,
    /// The effect in words.
    pub text: String,
}

/// Why an item is where it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// Its rank at alpha = 0 (the history alone; `None` without a history or for a Base model).
    pub rank_alpha0: Option<usize>,
    /// Its rank at alpha = 1 (the profile alone).
    pub rank_alpha1: usize,
    /// The sentences that move it, most first (by the size of the rank change, then of the
    /// score change).
    pub sentences: Vec<SentenceEffect>,
}

/// One recommended item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecommendedItem {
    /// Source item id.
    pub item: u64,
    /// Title.
    pub title: String,
    /// Genres.
    pub genres: Vec<String>,
    /// The model's score (a logit).
    pub score: f32,
    /// Rank (1 = first).
    pub rank: usize,
    /// With `explain`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Explanation>,
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// The alpha used.
    pub alpha: f32,
    /// The summary that produced it (`None` for a genre vector).
    pub profile: Option<String>,
    /// The genre vector that produced it (GERS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub genres: Option<Vec<f32>>,
    /// Whether the request had no history (alpha is then 1).
    pub cold_start: bool,
    /// What the model did that the request did not ask for (alpha forced to 1, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The items, best first.
    pub items: Vec<RecommendedItem>,
}

/// A trained scrutable model ready to answer requests: the network with its encoder, and its
/// item table.
pub struct ScrutableModel {
    model: Box<dyn ScrutableRecommender>,
    items: ItemTable,
    genres: Option<GenreSpace>,
}

impl std::fmt::Debug for ScrutableModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrutableModel")
            .field("kind", &self.model.kind())
            .field("backbone", &self.model.backbone())
            .field("items", &self.items.len())
            .finish_non_exhaustive()
    }
}

fn kth_rank(scores: &[f32], item: usize, seen: &[bool]) -> usize {
    let s = scores[item];
    1 + scores.iter().enumerate().filter(|&(j, &v)| !seen[j] && j != item && (v > s || (v == s && j < item))).count()
}

/// Wording of a sentence's effect on an item's rank.
fn effect_text(sentence: &str, rank: usize, without: usize) -> String {
    let quoted = if sentence.chars().count() > 60 {
        format!("{}…", sentence.chars().take(59).collect::<String>())
    } else {
        sentence.to_string()
    };
    match without.cmp(&rank) {
        std::cmp::Ordering::Greater => format!("without '{quoted}', this drops from {rank} to {without}"),
        std::cmp::Ordering::Less => format!("without '{quoted}', this rises from {rank} to {without}"),
        std::cmp::Ordering::Equal => format!("without '{quoted}', this stays at {rank}"),
    }
}

impl ScrutableModel {
    /// Opens a TEARS or GERS model directory on backend `B` (its item table, `items.json`, is
    /// read from the directory; no split is needed).
    ///
    /// # Errors
    /// Not a TEARS/GERS directory, a missing item table, a mismatched encoder or weights.
    pub fn open<B: burn::tensor::backend::Backend + 'static>(
        dir: &Path,
        options: &LoadOptions,
        device: &B::Device,
    ) -> Result<Self> {
        let items = ItemTable::read(dir)?;
        let model = load_with_items::<B>(dir, items.items(), options, device)?;
        Ok(Self::new(model, items))
    }

    /// Wraps a trained model and the items it scores (column order).
    pub fn new(model: Box<dyn ScrutableRecommender>, items: ItemTable) -> Self {
        let genres =
            (model.kind() == tears_core::ModelKind::Gers.name()).then(|| GenreSpace::from_items(items.items()));
        ScrutableModel { model, items, genres }
    }

    /// The model.
    pub fn model(&self) -> &dyn ScrutableRecommender {
        self.model.as_ref()
    }

    /// The item table.
    pub fn items(&self) -> &ItemTable {
        &self.items
    }

    /// The genre space of a GERS model (`None` for TEARS).
    pub fn genres(&self) -> Option<&GenreSpace> {
        self.genres.as_ref()
    }

    /// The fold-in row of a history, checking every item id.
    fn history_row(&self, history: &[(u64, f32)]) -> Result<UserRows> {
        let mut ratings = Vec::with_capacity(history.len());
        for (t, &(id, rating)) in history.iter().enumerate() {
            let item = self.items.column(id).ok_or_else(|| {
                bad_request(format!("item {id} of the history is not one of the model's {} items", self.items.len()))
            })?;
            if !rating.is_finite() {
                return Err(bad_request(format!("item {id} of the history has rating {rating}")));
            }
            ratings.push(Rating { item: item as u32, rating, timestamp: t as i64 });
        }
        let mut rows = UserRows::new();
        rows.push(0, ratings);
        Ok(rows)
    }

    /// Scores `[profiles.len(), items]` of one history under several profiles at `alpha`,
    /// through a shared reference (the model's stored alpha is neither read nor changed).
    ///
    /// # Errors
    /// A failed encoding or scoring.
    pub fn score_matrix(&self, history: &[(u64, f32)], profiles: &[Profile], alpha: f32) -> Result<Array2<f32>> {
        let one = self.history_row(history)?;
        let mut rows = UserRows::new();
        for _ in profiles {
            rows.push(0, one.row(0).iter().copied());
        }
        let refs: Vec<Option<&Profile>> = profiles.iter().map(Some).collect();
        let scores = self.model.score_at_alpha(&rows, &refs, alpha)?;
        let expected = (profiles.len(), self.items.len());
        if scores.dim() != expected {
            return Err(TearsError::Model(tears_core::ModelError::Numerical(format!(
                "the model scored a {:?} matrix, expected {expected:?} (profiles, items)",
                scores.dim()
            ))));
        }
        Ok(scores)
    }

    /// Answers `request` through a shared reference: a `ScrutableModel` is `Send + Sync`, so
    /// one loaded model (in an `Arc`) answers requests from several threads at once, each at
    /// its own alpha.
    ///
    /// # Errors
    /// [`TearsError::BadRequest`] for an empty summary, alpha outside [0, 1], k = 0, an item id
    /// the model does not know, a summary given to GERS or a genre vector given to TEARS.
    pub fn recommend(&self, request: &Request) -> Result<Recommendation> {
        let prepared = self.prepare(request)?;
        let scores = self.score_matrix(&request.history, std::slice::from_ref(&prepared.profile), prepared.alpha)?;
        self.answer(request, prepared, scores.row(0).to_vec())
    }

    /// Answers many requests at once: the same answers as [`recommend`](Self::recommend) for
    /// each, in order, but requests at the same alpha are scored as one batch (one encoder
    /// call for their summaries, one pass of the network), which is what a batch job over
    /// thousands of users needs. Pass a few hundred to a few thousand requests per call; the
    /// score matrix of a call is `[requests, items]` floats.
    ///
    /// # Errors
    /// The first request that [`recommend`](Self::recommend) would refuse, named by its index.
    pub fn recommend_batch(&self, requests: &[Request]) -> Result<Vec<Recommendation>> {
        let mut prepared = Vec::with_capacity(requests.len());
        for (i, request) in requests.iter().enumerate() {
            prepared.push(self.prepare(request).map_err(|e| match e {
                TearsError::BadRequest(m) => bad_request(format!("request {i}: {m}")),
                other => other,
            })?);
        }
        // Requests grouped by alpha (by its bits: alphas are compared exactly), first-seen order.
        let mut groups: Vec<(u32, Vec<usize>)> = Vec::new();
        for (i, p) in prepared.iter().enumerate() {
            match groups.iter_mut().find(|(bits, _)| *bits == p.alpha.to_bits()) {
                Some((_, members)) => members.push(i),
                None => groups.push((p.alpha.to_bits(), vec![i])),
            }
        }
        let mut rows_of: Vec<Option<Vec<f32>>> = vec![None; requests.len()];
        for (bits, members) in &groups {
            let mut rows = UserRows::new();
            for &i in members {
                let one = self.history_row(&requests[i].history)?;
                rows.push(i as u64, one.row(0).iter().copied());
            }
            let refs: Vec<Option<&Profile>> = members.iter().map(|&i| Some(&prepared[i].profile)).collect();
            let scores = self.model.score_at_alpha(&rows, &refs, f32::from_bits(*bits))?;
            let expected = (members.len(), self.items.len());
            if scores.dim() != expected {
                return Err(TearsError::Model(tears_core::ModelError::Numerical(format!(
                    "the model scored a {:?} matrix, expected {expected:?} (requests, items)",
                    scores.dim()
                ))));
            }
            for (r, &i) in members.iter().enumerate() {
                rows_of[i] = Some(scores.row(r).to_vec());
            }
        }
        requests
            .iter()
            .zip(prepared)
            .zip(rows_of)
            .map(|((request, p), row)| self.answer(request, p, row.unwrap_or_default()))
            .collect()
    }

    /// Checks a request and settles its profile and alpha.
    fn prepare(&self, request: &Request) -> Result<Prepared> {
        if request.k == 0 {
            return Err(bad_request("k must be at least 1"));
        }
        if let Some(a) = request.alpha
            && !(0.0..=1.0).contains(&a)
        {
            return Err(bad_request(format!("alpha must be in [0, 1], got {a}")));
        }
        let mut notes = Vec::new();
        let (profile, text) = self.profile_of(&request.profile, &request.history)?;
        let cold_start = request.history.is_empty();
        let base = self.model.backbone() == crate::config::BackboneChoice::None;
        let asked = request.alpha.or(self.model.alpha_star()).unwrap_or(self.model.alpha());
        let alpha = if base {
            1.0
        } else if cold_start && asked < 1.0 {
            notes.push(format!("no history: alpha is 1 (the profile alone), not {asked}"));
            1.0
        } else {
            asked
        };
        Ok(Prepared { profile, text, alpha, cold_start, notes })
    }

    /// The answer to `request` from its scores over every item.
    fn answer(&self, request: &Request, prepared: Prepared, scores: Vec<f32>) -> Result<Recommendation> {
        let Prepared { profile, text, alpha, cold_start, notes } = prepared;
        if scores.len() != self.items.len() {
            return Err(TearsError::Model(tears_core::ModelError::Numerical(format!(
                "{} scores for {} items",
                scores.len(),
                self.items.len()
            ))));
        }
        let seen = self.seen(&request.history);
        let top = top_k(&scores, &seen, request.k);
        let mut items: Vec<RecommendedItem> = top
            .iter()
            .enumerate()
            .map(|(r, &j)| {
                let item = &self.items.items()[j];
                RecommendedItem {
                    item: item.id,
                    title: item.title.clone(),
                    genres: item.genres.clone(),
                    score: scores[j],
                    rank: r + 1,
                    explanation: None,
                }
            })
            .collect();
        if request.explain {
            self.explain(&request.history, &profile, text.as_deref(), (alpha, &scores), &seen, &top, &mut items)?;
        }
        let genres = match &profile {
            Profile::Vector(v) => Some(v.clone()),
            Profile::Text(_) => None,
        };
        Ok(Recommendation { alpha, profile: text, genres, cold_start, notes, items })
    }

    fn profile_of(&self, input: &ProfileInput, history: &[(u64, f32)]) -> Result<(Profile, Option<String>)> {
        match (input, &self.genres) {
            (ProfileInput::Summary(t), None) => {
                let t = t.trim();
                if t.is_empty() {
                    return Err(bad_request("the summary is empty"));
                }
                Ok((Profile::Text(t.to_string()), Some(t.to_string())))
            }
            (ProfileInput::Genres(v), Some(space)) => {
                if v.len() != space.len() {
                    return Err(bad_request(format!(
                        "a genre vector of {} values, the model has {} genres",
                        v.len(),
                        space.len()
                    )));
                }
                Ok((Profile::Vector(v.clone()), None))
            }
            (ProfileInput::FromHistory, Some(space)) => {
                let row = self.history_row(history)?;
                Ok((Profile::Vector(space.profile(row.row(0))), None))
            }
            (ProfileInput::Summary(_), Some(_)) => {
                Err(bad_request("this GERS model reads genre vectors, not summaries"))
            }
            (_, None) => Err(bad_request("this TEARS model reads summaries, not genre vectors")),
        }
    }

    fn seen(&self, history: &[(u64, f32)]) -> Vec<bool> {
        let mut seen = vec![false; self.items.len()];
        for (id, _) in history {
            if let Some(j) = self.items.column(*id) {
                seen[j] = true;
            }
        }
        seen
    }

    #[allow(clippy::too_many_arguments)]
    fn explain(
        &self,
        history: &[(u64, f32)],
        profile: &Profile,
        text: Option<&str>,
        (alpha, full): (f32, &[f32]),
        seen: &[bool],
        top: &[usize],
        items: &mut [RecommendedItem],
    ) -> Result<()> {
        let base = self.model.backbone() == crate::config::BackboneChoice::None;
        let at1 = self.score_matrix(history, std::slice::from_ref(profile), 1.0)?;
        let at0 = if history.is_empty() || base {
            None
        } else {
            Some(self.score_matrix(history, std::slice::from_ref(profile), 0.0)?)
        };
        // Leave one sentence out: all variants in one batch (one encoder call).
        let summary = text.unwrap_or_default();
        let spans = sentence_spans(summary);
        let sentences: Vec<&str> = spans.iter().map(|&(a, b)| &summary[a..b]).collect();
        let variants: Vec<Profile> = if sentences.len() > 1 {
            spans.iter().map(|&span| Profile::Text(remove_span(summary, span))).collect()
        } else {
            Vec::new()
        };
        let without = if variants.is_empty() { None } else { Some(self.score_matrix(history, &variants, alpha)?) };
        for (item, &j) in items.iter_mut().zip(top) {
            let mut effects: Vec<SentenceEffect> = match &without {
                None => Vec::new(),
                Some(w) => sentences
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let row = w.row(i).to_vec();
                        let rank_without = kth_rank(&row, j, seen);
                        SentenceEffect {
                            index: i,
                            sentence: s.to_string(),
                            score_change: full[j] - row[j],
                            rank_without,
                            text: effect_text(s, item.rank, rank_without),
                        }
                    })
                    .collect(),
            };
            effects.sort_by(|a, b| {
                let da = (a.rank_without as i64 - item.rank as i64).abs();
                let db = (b.rank_without as i64 - item.rank as i64).abs();
                db.cmp(&da).then(b.score_change.abs().total_cmp(&a.score_change.abs()))
            });
            item.explanation = Some(Explanation {
                rank_alpha0: at0.as_ref().map(|s| kth_rank(&s.row(0).to_vec(), j, seen)),
                rank_alpha1: kth_rank(&at1.row(0).to_vec(), j, seen),
                sentences: effects,
            });
        }
        Ok(())
    }
}

/// The `k` best unseen columns of `scores`, best first (ties to the lower column).
/// A request checked, with its profile and alpha settled.
struct Prepared {
    profile: Profile,
    text: Option<String>,
    alpha: f32,
    cold_start: bool,
    notes: Vec<String>,
}

fn top_k(scores: &[f32], seen: &[bool], k: usize) -> Vec<usize> {
    let mut cols: Vec<usize> = (0..scores.len()).filter(|&j| !seen[j] && scores[j].is_finite()).collect();
    cols.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    cols.truncate(k);
    cols
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_split_on_ends_outside_abbreviations_and_initials() {
        assert_eq!(split_sentences("Summary:  One. Two!  Three?"), vec!["One.", "Two!", "Three?"]);
        assert_eq!(
            split_sentences("Likes films by J. R. R. Tolkien fans, Dr. Who, etc. and more. Next one"),
            vec!["Likes films by J. R. R. Tolkien fans, Dr. Who, etc. and more.", "Next one"]
        );
        assert_eq!(
            split_sentences("Version 2.0 is fine... really. Yes"),
            vec!["Version 2.0 is fine...", "really.", "Yes"]
        );
        assert!(split_sentences("Summary:").is_empty());
    }

    #[test]
    fn edits_change_exactly_what_they_name() {
        let text = "A likes war. B hates horror. C wants comedy.";
        assert_eq!(
            Edit::Append("D too.".into()).apply_to_text(text).ok().as_deref(),
            Some("A likes war. B hates horror. C wants comedy. D too.")
        );
        assert_eq!(
            Edit::ReplaceSentence(2, "C wants drama.".into()).apply_to_text(text).ok().as_deref(),
            Some("A likes war. B hates horror. C wants drama.")
        );
        assert!(Edit::RemoveSentence(3).apply_to_text(text).is_err());
        assert!(Edit::Replace("  ".into()).apply_to_text(text).is_err());
        assert_eq!(
            Edit::SwapGenres("War".into(), "Horror".into()).apply_to_text(text).ok().as_deref(),
            Some("A likes horror. B hates war. C wants comedy.")
        );
        // Whole words only, every common form, each occurrence keeping its capitals.
        let swap = |t: &str, a: &str, b: &str| Edit::SwapGenres(a.into(), b.into()).apply_to_text(t).ok();
        assert_eq!(swap("warfare and war", "war", "x").as_deref(), Some("warfare and x"));
        assert_eq!(
            swap("Science fiction fan; no comedies.", "Sci-Fi", "Comedy").as_deref(),
            Some("Comedy fan; no sci-fi.")
        );
        let space = GenreSpace { names: vec!["Comedy".into(), "War".into()], item_genres: Vec::new() };
        assert_eq!(
            Edit::SwapGenres("war".into(), "comedy".into()).apply_to_genres(&[0.25, 0.75], &space).ok(),
            Some(vec![0.75, 0.25])
        );
        assert!(Edit::SwapGenres("war".into(), "noir".into()).apply_to_genres(&[0.25, 0.75], &space).is_err());
        assert!(Edit::Append("x".into()).apply_to_genres(&[0.25, 0.75], &space).is_err());
    }

    #[test]
    fn sentence_edits_leave_the_rest_of_the_text_as_it_was() {
        let text = "Summary: Likes war. Hates gore.\n\nLately, comedies.";
        let edit = |e: Edit| e.apply_to_text(text).ok();
        assert_eq!(edit(Edit::RemoveSentence(0)).as_deref(), Some("Summary: Hates gore.\n\nLately, comedies."));
        assert_eq!(edit(Edit::RemoveSentence(1)).as_deref(), Some("Summary: Likes war. Lately, comedies."));
        assert_eq!(edit(Edit::RemoveSentence(2)).as_deref(), Some("Summary: Likes war. Hates gore."));
        assert_eq!(
            edit(Edit::ReplaceSentence(1, " Loves noir. ".into())).as_deref(),
            Some("Summary: Likes war. Loves noir.\n\nLately, comedies.")
        );
        assert_eq!(
            edit(Edit::Append("More.".into())).as_deref(),
            Some("Summary: Likes war. Hates gore.\n\nLately, comedies. More.")
        );
        let spans = sentence_spans(text);
        let sentences: Vec<&str> = spans.iter().map(|&(a, b)| &text[a..b]).collect();
        assert_eq!(sentences, split_sentences(text));
        assert_eq!(sentences, vec!["Likes war.", "Hates gore.", "Lately, comedies."]);
        assert!(Edit::RemoveSentence(0).apply_to_text("Summary: Only one.").is_err());
    }

    #[test]
    fn a_scrutable_model_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<ScrutableModel>();
        shared::<Box<dyn ScrutableRecommender>>();
    }

    #[test]
    fn ranks_skip_seen_items_and_words_say_the_direction() {
        let scores = [0.9, 0.5, 0.7, 0.1];
        let seen = [true, false, false, false];
        assert_eq!(top_k(&scores, &seen, 2), vec![2, 1]);
        assert_eq!(kth_rank(&scores, 1, &seen), 2);
        assert_eq!(kth_rank(&scores, 3, &seen), 3);
        assert_eq!(effect_text("War films.", 3, 41), "without 'War films.', this drops from 3 to 41");
        assert_eq!(effect_text("War films.", 3, 1), "without 'War films.', this rises from 3 to 1");
    }
}
