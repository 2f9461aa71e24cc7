//! The interactive scrutable page: an [axum](https://docs.rs/axum) server over a trained TEARS
//! model. A person picks a test user (or starts as a new one), reads and edits their summary,
//! moves alpha, and watches the top-k list re-rank, with each item's explanation; applications
//! call the same JSON API.
//!
//! [`Server::new`] takes a loaded [`ScrutableModel`] and the split users the page offers
//! ([`users_from_split`]); [`Server::router`] is an axum [`Router`] that an application can
//! nest in its own; [`serve`] binds and runs it (loopback only unless asked,
//! [`check_address`]). The page itself is plain HTML, CSS and JavaScript compiled into the
//! binary (no CDN, no build step). The API is documented in `docs/serve.md`:
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the page (`/app.js`, `/style.css`) |
//! | `GET /api/info` | the model (kind, backbone, alpha*), its genres, the limits |
//! | `GET /api/users` | the split users the page offers |
//! | `GET /api/users/{id}` | one user: history (titles, stars, genres), stored summary, favourite and least favourite genre |
//! | `POST /api/recommend` | `{"summary", "alpha", "k", "user" or "history"}` → the top k |
//! | `POST /api/explain` | the same, each item explained (or only `"item"`) |
//! | `POST /api/edit` | `{"summary", "edit"}` → the edited summary ([`tears_model::recommend::Edit`]) |
//!
//! The model is shared read-only between requests ([`ScrutableModel`] is `Send + Sync`); model
//! work runs on tokio's blocking pool, at most [`Limits::workers`] requests at once, so the
//! executor stays free to answer. Every error is a JSON `{"error": message}` with a 4xx status
//! (5xx only when the model itself fails), never a panic; no route reads or writes a file a
//! request names.
//!
//! ```no_run
//! # async fn run(model: tears_model::recommend::ScrutableModel) -> Result<(), tears_serve::ServeError> {
//! let server = tears_serve::Server::new(model, Vec::new(), tears_serve::Limits::default())?;
//! let addr = "127.0.0.1:8080".parse().expect("an address");
//! tears_serve::check_address(addr, false)?;
//! let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| tears_serve::ServeError::Bind { addr, source: e })?;
//! tears_serve::serve(listener, server.router(), std::future::pending()).await?;
//! # Ok(()) }
//! ```

mod api;
mod error;
pub mod load;
mod users;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tears_model::recommend::ScrutableModel;
use tokio::sync::Semaphore;

pub use api::{
    EditBody, EditResponse, ExplainedResponse, HistoryInput, InfoResponse, RecommendBody, RecommendResponse,
    UserDetail, UserSummary, UsersResponse,
};
pub use error::{ApiError, ServeError};
pub use users::{HistoryEntry, SplitUser, users_from_split};

/// What a request may ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest request body, in bytes (413 past it).
    pub max_body_bytes: usize,
    /// Longest summary, in characters.
    pub max_summary_chars: usize,
    /// Largest k.
    pub max_k: usize,
    /// Longest history a request may send, in items.
    pub max_history: usize,
    /// Most sentences an explanation reads (each one is a leave-one-out variant to encode).
    pub max_explain_sentences: usize,
    /// Most model requests computed at once (the rest wait for a turn).
    pub workers: usize,
    /// How long a request waits for a turn before a 503.
    pub queue_timeout: Duration,
}

impl Default for Limits {
    /// 16 KiB bodies, 4,000-character summaries, k ≤ 100, 1,000 history items, 40 sentences
    /// explained, one worker per core (at most 8), 30 s in the queue.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        Limits {
            max_body_bytes: 16 * 1024,
            max_summary_chars: 4000,
            max_k: 100,
            max_history: 1000,
            max_explain_sentences: 40,
            workers: cores.clamp(1, 8),
            queue_timeout: Duration::from_secs(30),
        }
    }
}

/// What the handlers share.
pub(crate) struct Shared {
    pub(crate) model: ScrutableModel,
    pub(crate) users: Vec<SplitUser>,
    pub(crate) by_id: HashMap<u64, usize>,
    /// Genre names, most frequent among the items first.
    pub(crate) genres: Vec<String>,
    pub(crate) limits: Limits,
    pub(crate) turns: Arc<Semaphore>,
}

/// A trained model and the users the page offers, ready to serve.
#[derive(Clone)]
pub struct Server {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("model", &self.shared.model)
            .field("users", &self.shared.users.len())
            .field("limits", &self.shared.limits)
            .finish()
    }
}

impl Server {
    /// A server for `model` (a TEARS model: the page edits summaries) offering `users`.
    ///
    /// # Errors
    /// [`ServeError::NotText`] for a GERS model; [`ServeError::DuplicateUser`];
    /// [`ServeError::Limits`] for a zero limit.
    pub fn new(model: ScrutableModel, users: Vec<SplitUser>, limits: Limits) -> Result<Self, ServeError> {
        if model.genres().is_some() {
            return Err(ServeError::NotText { kind: model.model().kind().to_string() });
        }
        for (name, value) in [
            ("max_body_bytes", limits.max_body_bytes),
            ("max_summary_chars", limits.max_summary_chars),
            ("max_k", limits.max_k),
            ("workers", limits.workers),
        ] {
            if value == 0 {
                return Err(ServeError::Limits(format!("{name} must be at least 1")));
            }
        }
        let mut by_id = HashMap::with_capacity(users.len());
        for (i, u) in users.iter().enumerate() {
            if by_id.insert(u.id, i).is_some() {
                return Err(ServeError::DuplicateUser(u.id));
            }
        }
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for item in model.items().items() {
            for g in &item.genres {
                *counts.entry(g.as_str()).or_default() += 1;
            }
        }
        let mut genres: Vec<(&str, usize)> = counts.into_iter().collect();
        genres.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let genres = genres.into_iter().map(|(g, _)| g.to_string()).collect();
        let turns = Arc::new(Semaphore::new(limits.workers));
        Ok(Server { shared: Arc::new(Shared { model, users, by_id, genres, limits, turns }) })
    }

    /// The model.
    pub fn model(&self) -> &ScrutableModel {
        &self.shared.model
    }

    /// The users the page offers.
    pub fn users(&self) -> &[SplitUser] {
        &self.shared.users
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    /// The page and the API as an axum router (its state is attached: nest or merge it into an
    /// application's router as is).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", get(api::index))
            .route("/app.js", get(api::script))
            .route("/style.css", get(api::style))
            .route("/api/info", get(api::info))
            .route("/api/users", get(api::list_users))
            .route("/api/users/{id}", get(api::user))
            .route("/api/recommend", post(api::recommend))
            .route("/api/explain", post(api::explain))
            .route("/api/edit", post(api::edit))
            .fallback(api::not_found)
            .method_not_allowed_fallback(api::method_not_allowed)
            .layer(DefaultBodyLimit::max(self.shared.limits.max_body_bytes))
            .with_state(self.shared.clone())
    }
}

/// Refuses a non-loopback `addr` unless `allow_remote`: the page and its API then answer anyone
/// who can reach the address.
///
/// # Errors
/// [`ServeError::Remote`].
pub fn check_address(addr: SocketAddr, allow_remote: bool) -> Result<(), ServeError> {
    if addr.ip().is_loopback() || allow_remote { Ok(()) } else { Err(ServeError::Remote(addr)) }
}

/// Serves `router` on `listener` until `shutdown` completes (then finishes the requests in
/// flight).
///
/// # Errors
/// [`ServeError::Io`] when the listener fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving the scrutable page");
    }
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await.map_err(ServeError::Io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_are_served_without_the_flag() {
        let ok = |a: &str, allow| a.parse().map_err(|_| ()).and_then(|a| check_address(a, allow).map_err(|_| ()));
        assert!(ok("127.0.0.1:8080", false).is_ok());
        assert!(ok("[::1]:8080", false).is_ok());
        assert!(ok("0.0.0.0:8080", false).is_err());
        assert!(ok("192.168.1.10:80", false).is_err());
        assert!(ok("0.0.0.0:8080", true).is_ok());
    }

    #[test]
    fn default_limits_are_the_documented_ones() {
        let l = Limits::default();
        assert_eq!((l.max_body_bytes, l.max_k, l.max_summary_chars), (16 * 1024, 100, 4000));
        assert!((1..=8).contains(&l.workers));
    }
}
