//! Errors: starting the server ([`ServeError`]) and answering a request ([`ApiError`], a status
//! and a JSON body).

use std::net::SocketAddr;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tears_model::TearsError;

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A non-loopback address without the explicit permission.
    #[error(
        "{0} is not a loopback address: the page and its API would answer anyone who can reach it; pass --allow-remote to serve it anyway"
    )]
    Remote(SocketAddr),
    /// The address could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The listener failed while serving.
    #[error("serving: {0}")]
    Io(#[source] std::io::Error),
    /// A GERS model: its profile is a genre vector, and the page edits summaries.
    #[error("the page edits summaries, and this {kind} model reads genre vectors: serve a TEARS model")]
    NotText {
        /// The model's kind.
        kind: String,
    },
    /// Two users with one id.
    #[error("user {0} is listed twice")]
    DuplicateUser(u64),
    /// A limit that admits nothing.
    #[error("bad limits: {0}")]
    Limits(String),
}

/// An answer that is not a success: a status and a message, sent as `{"error": message}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    /// The HTTP status (4xx for the request's fault, 5xx for the server's).
    pub status: StatusCode,
    /// What went wrong, for a person.
    pub message: String,
}

impl ApiError {
    /// An error with `status`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into() }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 500, logged; the client sees only that the model failed.
    pub fn internal(what: &str, cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "{what}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{what}: the server logged the cause"))
    }
}

impl From<TearsError> for ApiError {
    fn from(e: TearsError) -> Self {
        match e {
            TearsError::BadRequest(m) => ApiError::bad_request(m),
            TearsError::BadProfile { message, .. } => ApiError::bad_request(message),
            other => ApiError::internal("the model failed", other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message, "status": self.status.as_u16() });
        (self.status, Json(body)).into_response()
    }
}
