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
    /// The server answered with an HTTP status that retrying cannot fix (4xx other than 408 and 429).
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
    /// The server's answer is not a chat-completions JSON object.
    #[error("malformed answer from the LLM server: {0}")]
    MalformedResponse(String),
    /// The model's answers failed validation on every try (empty, too short, too long, wrong prefix,
    /// naming an item title, an unparseable or unknown-genre answer to an edit request).
    #[error("invalid answer after {attempts} tries: {reason}")]
    InvalidAnswer {
        /// Tries (first ask + re-asks).
        attempts: u32,
        /// Why the last answer was rejected.
        reason: String,
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
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            SummarizeError::Http { .. }
                | SummarizeError::Config(_)
                | SummarizeError::Io { .. }
                | SummarizeError::Template { .. }
                | SummarizeError::Cache { .. }
        )
    }
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
