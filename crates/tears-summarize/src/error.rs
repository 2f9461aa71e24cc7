//! Error type of the summarizers crate.

use std::path::PathBuf;

/// Everything that can go wrong while rendering prompts, calling an LLM, caching or editing summaries.
///
/// No variant ever carries the API key: response bodies quoted in errors are scrubbed of it.
#[derive(Debug, thiserror::Error)]
pub enum SummarizeError {
    /// An I/O error on a file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An error from the datasets crate (loading a split).
    #[error(transparent)]
    Data(#[from] tears_data::DataError),
    /// Invalid settings (a zero concurrency, a missing API key, a bad URL, ...).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A prompt template that cannot be used.
    #[error("prompt template {origin}: {message}")]
    Template {
        /// Where the template came from (a file path or `built-in movies`).
        origin: String,
        /// What is wrong with it.
        message: String,
    },
    /// The server answered with an HTTP status that retrying cannot fix (4xx other than 408 and
    /// 429). Statuses that say the request is wrong for every user (401, 402, 403, 404, 405, 407)
    /// are fatal; the others (400 "context length exceeded", 413, 422, ...) fail only that user.
    /// A batch import reports any status other than 200 of an output line with it.
    #[error("the LLM server answered HTTP {status}: {message}")]
    Http {
        /// The HTTP status.
        status: u16,
        /// The server's message (shortened, scrubbed of the API key).
        message: String,
    },
    /// Every attempt failed with a retryable error (timeout, 429, 5xx, connection error).
    #[error("the LLM request failed after {attempts} attempts; last error: {last}")]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: String,
    },
    /// The server answered 200 with something that is not a chat-completions JSON object (truncated
    /// JSON, a proxy's HTML page, no `choices[0].message.content`) on every attempt.
    #[error("malformed answer from the LLM server after {attempts} {}: {message}", plural(*attempts, "attempt", "attempts"))]
    MalformedResponse {
        /// Attempts made.
        attempts: u32,
        /// What was wrong with the last answer (its start quoted, scrubbed of the API key).
        message: String,
    },
    /// No connection to the server could be made [`crate::LlmConfig::down_after`] times in a row
    /// (refused, DNS failure, connect timeout), across all users.
    #[error("the LLM server at {url} is not answering ({attempts} connection attempts in a row failed; last: {last})")]
    ServerDown {
        /// The chat-completions URL.
        url: String,
        /// Failed connection attempts in a row.
        attempts: u32,
        /// The last connection error.
        last: String,
    },
    /// The first users of a batch were all refused with a 4xx and none succeeded: the request is
    /// most likely wrong for every user (an unsupported parameter), so the batch stops.
    #[error(
        "the first {users} users were all refused and none succeeded, so the request is probably wrong for every user; last: {last}"
    )]
    Refused {
        /// Users refused in a row.
        users: usize,
        /// The last refusal.
        last: Box<SummarizeError>,
    },
    /// Another writer holds the summary cache (a second `tears summarize` on the same `--out`).
    #[error("{} is being written by another run (it is locked); wait for that run to finish or choose another output file", path.display())]
    Locked {
        /// The cache file.
        path: PathBuf,
    },
    /// The model's answers failed validation on every try (empty, too short, too long, wrong prefix,
    /// naming an item title, an unparseable or unknown-genre answer to an edit request).
    #[error("invalid answer after {attempts} {}: {reason}", plural(*attempts, "try", "tries"))]
    InvalidAnswer {
        /// Tries (first ask + re-asks).
        attempts: u32,
        /// Why the last answer was rejected.
        reason: String,
    },
    /// A batch engine's output line reported that the request failed, without an HTTP status
    /// (an OpenAI Batch `error` object such as `batch_expired`; vLLM's `error` string).
    #[error("the batch engine reported an error{}: {message}", code.as_deref().map(|c| format!(" {c}")).unwrap_or_default())]
    BatchRequest {
        /// The error's `code`, when it has one.
        code: Option<String>,
        /// The error's message (shortened).
        message: String,
    },
    /// A batch file line that cannot be used: not JSON, not the expected shape, an unknown
    /// `custom_id`, a user outside the users asked for, a user answered twice, a prompt other
    /// than the one the current settings render.
    #[error("{}:{line}: {message}", path.display())]
    BatchFile {
        /// The batch file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// A corrupt line in the middle of a summary cache.
    #[error("{}:{line}: {message}", path.display())]
    Cache {
        /// The cache file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        message: String,
    },
}

/// Result alias of this crate.
pub type Result<T, E = SummarizeError> = std::result::Result<T, E>;

impl SummarizeError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SummarizeError::Io { path: path.into(), source }
    }

    /// Whether this error makes every further request pointless (bad key, bad model name, bad
    /// URL, I/O failure), so a batch should stop instead of moving on to the next user.
    ///
    /// ```
    /// use tears_summarize::SummarizeError;
    /// assert!(SummarizeError::Http { status: 401, message: "no".into() }.is_fatal());
    /// assert!(!SummarizeError::InvalidAnswer { attempts: 3, reason: "empty".into() }.is_fatal());
    /// ```
    ///
    /// A 400 (for example "context length exceeded" for one long history), 413 or 422 fails only
    /// that user; 401, 402, 403, 404, 405 and 407 stop the batch.
    ///
    /// ```
    /// use tears_summarize::SummarizeError;
    /// assert!(!SummarizeError::Http { status: 400, message: "context length exceeded".into() }.is_fatal());
    /// ```
    pub fn is_fatal(&self) -> bool {
        match self {
            SummarizeError::Http { status, .. } => matches!(status, 401..=405 | 407),
            SummarizeError::Config(_)
            | SummarizeError::Io { .. }
            | SummarizeError::Template { .. }
            | SummarizeError::Cache { .. }
            | SummarizeError::BatchFile { .. }
            | SummarizeError::ServerDown { .. }
            | SummarizeError::Refused { .. }
            | SummarizeError::Locked { .. } => true,
            SummarizeError::Data(_)
            | SummarizeError::RetriesExhausted { .. }
            | SummarizeError::MalformedResponse { .. }
            | SummarizeError::InvalidAnswer { .. }
            | SummarizeError::BatchRequest { .. } => false,
        }
    }

    /// A short name of the kind of error (`http`, `retries-exhausted`, `malformed-answer`,
    /// `invalid-answer`, ...), as written in the failures file of a batch.
    ///
    /// ```
    /// use tears_summarize::SummarizeError;
    /// assert_eq!(SummarizeError::Http { status: 400, message: String::new() }.kind(), "http");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            SummarizeError::Io { .. } => "io",
            SummarizeError::Data(_) => "data",
            SummarizeError::Config(_) => "config",
            SummarizeError::Template { .. } => "template",
            SummarizeError::Http { .. } => "http",
            SummarizeError::RetriesExhausted { .. } => "retries-exhausted",
            SummarizeError::MalformedResponse { .. } => "malformed-answer",
            SummarizeError::ServerDown { .. } => "server-down",
            SummarizeError::Refused { .. } => "refused",
            SummarizeError::Locked { .. } => "locked",
            SummarizeError::InvalidAnswer { .. } => "invalid-answer",
            SummarizeError::Cache { .. } => "cache",
            SummarizeError::BatchRequest { .. } => "batch-error",
            SummarizeError::BatchFile { .. } => "batch-file",
        }
    }

    /// The HTTP status of an [`SummarizeError::Http`] error.
    pub fn status(&self) -> Option<u16> {
        match self {
            SummarizeError::Http { status, .. } => Some(*status),
            SummarizeError::Refused { last, .. } => last.status(),
            _ => None,
        }
    }
}

/// `one` when `n` is 1, else `many`.
fn plural(n: u32, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

/// Shortens `s` to at most `max` characters, marking the cut.
pub(crate) fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(3)).collect();
    out.push_str("...");
    out
}
