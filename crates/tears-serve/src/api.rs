//! The routes: the embedded page and the JSON API.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tears_model::recommend::{Edit, ProfileInput, Recommendation, Request as ModelRequest, split_sentences};

use crate::error::ApiError;
use crate::users::HistoryEntry;
use crate::{Limits, Shared};

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const STYLE_CSS: &str = include_str!("../assets/style.css");

type AppState = State<Arc<Shared>>;

/// A JSON body whose every failure is a JSON error: 400 for malformed JSON or a wrong field,
/// 413 past the body limit.
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            let status = e.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(status, "the request body is larger than the server's limit")
            } else {
                ApiError::new(status, e.body_text())
            }
        })?;
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))
    }
}

fn page(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

pub(crate) async fn index() -> Response {
    page("text/html; charset=utf-8", INDEX_HTML)
}

pub(crate) async fn script() -> Response {
    page("text/javascript; charset=utf-8", APP_JS)
}

pub(crate) async fn style() -> Response {
    page("text/css; charset=utf-8", STYLE_CSS)
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found("no such route (the API is under /api: info, users, recommend, explain, edit)")
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this route")
}

/// `GET /api/info`: the model, its genres and the limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InfoResponse {
    /// Model kind (`tears`).
    pub kind: String,
    /// The backbone (`multvae`, ..., `none` for TEARS Base).
    pub backbone: String,
    /// alpha chosen on validation users, when recorded.
    pub alpha_star: Option<f32>,
    /// The alpha a request without one gets.
    pub default_alpha: f32,
    /// Whether alpha matters (false for TEARS Base: the text alone).
    pub has_backbone: bool,
    /// Number of items.
    pub items: usize,
    /// Number of users offered.
    pub users: usize,
    /// Genre names, most frequent first.
    pub genres: Vec<String>,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Longest summary, in characters.
    pub max_summary_chars: usize,
    /// Largest k.
    pub max_k: usize,
    /// Most sentences an explanation reads.
    pub max_explain_sentences: usize,
}

pub(crate) async fn info(State(s): AppState) -> Json<InfoResponse> {
    let m = s.model.model();
    let backbone = m.backbone();
    Json(InfoResponse {
        kind: m.kind().to_string(),
        backbone: format!("{backbone:?}").to_lowercase(),
        alpha_star: m.alpha_star(),
        default_alpha: m.alpha_star().unwrap_or(m.alpha()),
        has_backbone: backbone != tears_model::BackboneChoice::None,
        items: s.model.items().len(),
        users: s.users.len(),
        genres: s.genres.clone(),
        max_body_bytes: s.limits.max_body_bytes,
        max_summary_chars: s.limits.max_summary_chars,
        max_k: s.limits.max_k,
        max_explain_sentences: s.limits.max_explain_sentences,
    })
}

/// One user in `GET /api/users`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserSummary {
    /// Source user id.
    pub id: u64,
    /// `test` or `validation`.
    pub set: String,
    /// How many items they rated (fold-in).
    pub ratings: usize,
    /// Whether a summary is stored for them.
    pub has_summary: bool,
}

/// `GET /api/users`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UsersResponse {
    /// The users, test users first.
    pub users: Vec<UserSummary>,
}

pub(crate) async fn list_users(State(s): AppState) -> Json<UsersResponse> {
    let users = s
        .users
        .iter()
        .map(|u| UserSummary {
            id: u.id,
            set: u.set.to_string(),
            ratings: u.history.len(),
            has_summary: u.summary.is_some(),
        })
        .collect();
    Json(UsersResponse { users })
}

/// `GET /api/users/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserDetail {
    /// Source user id.
    pub id: u64,
    /// `test` or `validation`.
    pub set: String,
    /// The stored summary.
    pub summary: Option<String>,
    /// Its sentences (what a click removes).
    pub sentences: Vec<String>,
    /// The fold-in history, most recent first.
    pub history: Vec<HistoryEntry>,
    /// Favourite genre (highest mean rating, three items or more).
    pub favourite_genre: Option<String>,
    /// Least favourite genre.
    pub least_favourite_genre: Option<String>,
}

fn user_index(s: &Shared, id: u64) -> Result<usize, ApiError> {
    s.by_id.get(&id).copied().ok_or_else(|| {
        ApiError::not_found(format!("user {id} is not one of the {} users this server offers", s.users.len()))
    })
}

pub(crate) async fn user(State(s): AppState, Path(id): Path<String>) -> Result<Json<UserDetail>, ApiError> {
    let id: u64 = id.parse().map_err(|_| ApiError::bad_request(format!("a user id is a number, not {id:?}")))?;
    let u = &s.users[user_index(&s, id)?];
    Ok(Json(UserDetail {
        id: u.id,
        set: u.set.to_string(),
        sentences: u.summary.as_deref().map(split_sentences).unwrap_or_default(),
        summary: u.summary.clone(),
        history: u.history.iter().rev().cloned().collect(),
        favourite_genre: u.favourite.as_ref().map(|f| f.0.clone()),
        least_favourite_genre: u.favourite.as_ref().map(|f| f.1.clone()),
    }))
}

/// One rated item of a history a request sends.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryInput {
    /// Source item id.
    pub item: u64,
    /// Rating.
    pub rating: f32,
}

fn default_k() -> usize {
    10
}

/// `POST /api/recommend` and `POST /api/explain`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecommendBody {
    /// The summary (possibly edited); may be left out with `user`, whose stored one is used.
    #[serde(default)]
    pub summary: Option<String>,
    /// alpha in [0, 1] (left out: the model's alpha*); 1 without a history.
    #[serde(default)]
    pub alpha: Option<f32>,
    /// How many items (1 to the server's limit, 100 by default; 10 when left out).
    #[serde(default = "default_k")]
    pub k: usize,
    /// A user of the server's split: their history (and, without `summary`, their summary).
    #[serde(default)]
    pub user: Option<u64>,
    /// A history, oldest first (instead of `user`).
    #[serde(default)]
    pub history: Option<Vec<HistoryInput>>,
    /// `/api/explain` only: answer only this item (it must be in the top k).
    #[serde(default)]
    pub item: Option<u64>,
}

/// The answer of `POST /api/recommend`: the [`Recommendation`] (`alpha`, `profile`,
/// `cold_start`, `notes`, `items`) plus the summary's sentences and the time taken.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecommendResponse {
    /// The recommendation.
    #[serde(flatten)]
    pub recommendation: Recommendation,
    /// The user asked for, if any.
    pub user: Option<u64>,
    /// The summary's sentences, numbered as `remove_sentence` edits number them.
    pub sentences: Vec<String>,
    /// Time spent computing, in milliseconds.
    pub took_ms: f64,
}

/// The answer of `POST /api/explain`: the same, with every item's `explanation`.
pub type ExplainedResponse = RecommendResponse;

/// A request checked against the limits and resolved against the users.
fn model_request(s: &Shared, body: &RecommendBody, explain: bool) -> Result<ModelRequest, ApiError> {
    let Limits { max_k, max_summary_chars, max_history, max_explain_sentences, .. } = s.limits;
    if body.k == 0 || body.k > max_k {
        return Err(ApiError::bad_request(format!("k must be in 1..={max_k}, got {}", body.k)));
    }
    if let Some(a) = body.alpha
        && !(a.is_finite() && (0.0..=1.0).contains(&a))
    {
        return Err(ApiError::bad_request(format!("alpha must be in [0, 1], got {a}")));
    }
    if body.user.is_some() && body.history.is_some() {
        return Err(ApiError::bad_request("give a user or a history, not both"));
    }
    let user = body.user.map(|id| user_index(s, id).map(|i| &s.users[i])).transpose()?;
    let summary = match (&body.summary, user) {
        (Some(t), _) => t.clone(),
        (None, Some(u)) => u
            .summary
            .clone()
            .ok_or_else(|| ApiError::bad_request(format!("user {} has no stored summary: send one", u.id)))?,
        (None, None) => return Err(ApiError::bad_request("a summary is needed (or a user with a stored one)")),
    };
    let chars = summary.chars().count();
    if chars > max_summary_chars {
        return Err(ApiError::bad_request(format!(
            "the summary has {chars} characters, the limit is {max_summary_chars}"
        )));
    }
    if explain {
        let n = split_sentences(&summary).len();
        if n > max_explain_sentences {
            return Err(ApiError::bad_request(format!(
                "the summary has {n} sentences; explanations read at most {max_explain_sentences}"
            )));
        }
    }
    let history = match (&body.history, user) {
        (Some(h), _) => {
            if h.len() > max_history {
                return Err(ApiError::bad_request(format!(
                    "a history of {} items, the limit is {max_history}",
                    h.len()
                )));
            }
            h.iter().map(|x| (x.item, x.rating)).collect()
        }
        (None, Some(u)) => u.ratings(),
        (None, None) => Vec::new(),
    };
    Ok(ModelRequest { profile: ProfileInput::Summary(summary), history, alpha: body.alpha, k: body.k, explain })
}

/// Runs `request` on the blocking pool once a worker is free.
async fn run_model(s: &Arc<Shared>, request: ModelRequest) -> Result<(Recommendation, f64), ApiError> {
    // The turn moves into the job: a client that hangs up does not free it before the model
    // has finished.
    let turn = tokio::time::timeout(s.limits.queue_timeout, s.turns.clone().acquire_owned())
        .await
        .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the server is busy: try again"))?
        .map_err(|e| ApiError::internal("the worker queue closed", e))?;
    let shared = s.clone();
    let job = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let answer = shared.model.recommend(&request);
        drop(turn);
        (answer, started.elapsed().as_secs_f64() * 1e3)
    });
    let (answer, ms) = job.await.map_err(|e| ApiError::internal("the model task failed", e))?;
    Ok((answer?, ms))
}

fn response(recommendation: Recommendation, user: Option<u64>, took_ms: f64) -> RecommendResponse {
    let sentences = recommendation.profile.as_deref().map(split_sentences).unwrap_or_default();
    RecommendResponse { recommendation, user, sentences, took_ms }
}

pub(crate) async fn recommend(
    State(s): AppState,
    ApiJson(body): ApiJson<RecommendBody>,
) -> Result<Json<RecommendResponse>, ApiError> {
    if body.item.is_some() {
        return Err(ApiError::bad_request("\"item\" belongs to /api/explain"));
    }
    let request = model_request(&s, &body, false)?;
    let (r, ms) = run_model(&s, request).await?;
    tracing::debug!(user = ?body.user, k = body.k, took_ms = ms, "recommend");
    Ok(Json(response(r, body.user, ms)))
}

pub(crate) async fn explain(
    State(s): AppState,
    ApiJson(body): ApiJson<RecommendBody>,
) -> Result<Json<ExplainedResponse>, ApiError> {
    if let Some(item) = body.item
        && s.model.items().column(item).is_none()
    {
        return Err(ApiError::not_found(format!(
            "item {item} is not one of the model's {} items",
            s.model.items().len()
        )));
    }
    let request = model_request(&s, &body, true)?;
    let (mut r, ms) = run_model(&s, request).await?;
    if let Some(item) = body.item {
        r.items.retain(|i| i.item == item);
        if r.items.is_empty() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("item {item} is not in this top {} (seen, or ranked lower): raise k", body.k),
            ));
        }
    }
    tracing::debug!(user = ?body.user, k = body.k, took_ms = ms, "explain");
    Ok(Json(response(r, body.user, ms)))
}

/// `POST /api/edit`: a summary and an [`Edit`] (`{"edit": "swap_genres", "args": ["War",
/// "Comedy"]}`, `{"edit": "remove_sentence", "args": 2}`, `{"edit": "append", "args": "More
/// Comedy."}`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditBody {
    /// The summary to edit.
    pub summary: String,
    /// The edit.
    pub edit: Edit,
}

/// The answer of `POST /api/edit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EditResponse {
    /// The edited summary.
    pub summary: String,
    /// Its sentences.
    pub sentences: Vec<String>,
    /// Whether the edit changed the text (a swap of genres the text does not name does not).
    pub changed: bool,
}

pub(crate) async fn edit(State(s): AppState, ApiJson(body): ApiJson<EditBody>) -> Result<Json<EditResponse>, ApiError> {
    let limit = s.limits.max_summary_chars;
    if body.summary.chars().count() > limit {
        return Err(ApiError::bad_request(format!("the summary is longer than {limit} characters")));
    }
    let edited = body.edit.apply_to_text(&body.summary)?;
    if edited.chars().count() > limit {
        return Err(ApiError::bad_request(format!("the edited summary would be longer than {limit} characters")));
    }
    Ok(Json(EditResponse { sentences: split_sentences(&edited), changed: edited != body.summary, summary: edited }))
}
