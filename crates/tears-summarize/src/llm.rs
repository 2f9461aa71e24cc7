//! The LLM client (OpenAI-compatible chat completions over blocking HTTP) and the LLM summarizer.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng;
use serde_json::{Value, json};

use crate::Summarizer;
use crate::error::{Result, SummarizeError, shorten};
use crate::history::History;
use crate::prompt::{Message, PromptTemplate, stable_hash};

/// An API key. Its `Debug` and `Display` print `[redacted]`; the key is only ever written into the
/// `Authorization` header.
///
/// ```
/// let k = tears_summarize::ApiKey::new("sk-secret");
/// assert_eq!(format!("{k:?} {k}"), "ApiKey([redacted]) [redacted]");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }

    /// Reads the key from the environment variable `var`; `None` when unset or empty.
    pub fn from_env(var: &str) -> Option<Self> {
        std::env::var(var).ok().filter(|k| !k.trim().is_empty()).map(|k| ApiKey(k.trim().to_string()))
    }

    /// Replaces every occurrence of the key in `text` by `[redacted]`.
    ///
    /// ```
    /// let k = tears_summarize::ApiKey::new("sk-secret");
    /// assert_eq!(k.scrub("bad key sk-secret"), "bad key [redacted]");
    /// ```
    pub fn scrub(&self, text: &str) -> String {
        if self.0.is_empty() { text.to_string() } else { text.replace(&self.0, "[redacted]") }
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

impl std::fmt::Display for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Settings of the chat-completions client.
///
/// ```
/// let c = tears_summarize::LlmConfig::new("http://127.0.0.1:8080", "llama-3.1-8b");
/// assert_eq!(c.endpoint(), "http://127.0.0.1:8080/v1/chat/completions");
/// assert_eq!((c.temperature, c.max_tokens, c.seed), (0.0, 300, 0));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LlmConfig {
    /// Base URL (`https://api.openai.com`, `http://localhost:8080`); a trailing `/v1` is accepted.
    pub base_url: String,
    /// Model name.
    pub model: String,
    /// API key (none for local servers that need none).
    pub api_key: Option<ApiKey>,
    /// Sampling temperature (0: as deterministic as the server allows).
    pub temperature: f32,
    /// Answer length limit in tokens.
    pub max_tokens: u32,
    /// Sampling seed sent to servers that honour it.
    pub seed: u64,
    /// Connection timeout.
    pub connect_timeout: Duration,
    /// Timeout of one whole request (connect, send, wait, read).
    pub request_timeout: Duration,
    /// Attempts per request, first included (timeouts, 429, 5xx and connection errors are retried).
    pub max_attempts: u32,
    /// Backoff before retry `n` (0-based) is drawn uniformly from `[d/2, d]`, `d = min(backoff_max, backoff_base * 2^n)`.
    pub backoff_base: Duration,
    /// Cap of the exponential backoff.
    pub backoff_max: Duration,
    /// Cap of a server's `Retry-After` wait.
    pub retry_after_max: Duration,
    /// Connection attempts in a row, across every request of the client, that reach no server
    /// (connection refused, DNS failure, connect timeout) after which the server is declared down
    /// ([`SummarizeError::ServerDown`], which stops a batch) instead of retrying every user in
    /// full; 0: never. Any HTTP answer, even an error status, resets the count; a connection
    /// dropped in the middle of an answer does not count (the server is there).
    pub down_after: u32,
}

impl LlmConfig {
    /// Defaults for `base_url` and `model`: temperature 0, 300 tokens, seed 0, 120 s per request,
    /// 6 attempts, backoff 1 s doubling up to 60 s, `Retry-After` honoured up to 120 s, the server
    /// declared down after 4 unanswered connection attempts in a row, no key.
    pub fn new(base_url: &str, model: &str) -> Self {
        LlmConfig {
            base_url: base_url.to_string(),
            model: model.to_string(),
            api_key: None,
            temperature: 0.0,
            max_tokens: 300,
            seed: 0,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
            max_attempts: 6,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            retry_after_max: Duration::from_secs(120),
            down_after: 4,
        }
    }

    /// Sets the API key from the environment variable `var` (`OPENAI_API_KEY` by convention);
    /// no key when it is unset or empty.
    ///
    /// ```
    /// let c = tears_summarize::LlmConfig::new("http://x", "m").with_api_key_env("TEARS_DOC_UNSET_KEY");
    /// assert!(c.api_key.is_none());
    /// ```
    pub fn with_api_key_env(mut self, var: &str) -> Self {
        self.api_key = ApiKey::from_env(var);
        self
    }

    /// The chat-completions URL. The base URL may be given with or without `/v1` or the whole
    /// `/v1/chat/completions` path.
    ///
    /// ```
    /// use tears_summarize::LlmConfig;
    /// for url in ["http://h:1", "http://h:1/", "http://h:1/v1", "http://h:1/v1/chat/completions/"] {
    ///     assert_eq!(LlmConfig::new(url, "m").endpoint(), "http://h:1/v1/chat/completions");
    /// }
    /// ```
    pub fn endpoint(&self) -> String {
        let base = self.base_url.trim().trim_end_matches('/');
        let base = base.strip_suffix("/chat/completions").unwrap_or(base);
        let base = base.strip_suffix("/v1").unwrap_or(base);
        format!("{base}/v1/chat/completions")
    }

    /// The (upper bound of the) backoff before retry `retry` (0-based), before jitter.
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = tears_summarize::LlmConfig::new("http://x", "m");
    /// assert_eq!(c.backoff_cap(0), Duration::from_secs(1));
    /// assert_eq!(c.backoff_cap(3), Duration::from_secs(8));
    /// assert_eq!(c.backoff_cap(30), Duration::from_secs(60));
    /// ```
    pub fn backoff_cap(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(30));
        self.backoff_base.saturating_mul(factor).min(self.backoff_max)
    }

    /// The chat-completions request body for `messages`: the model, the messages, `temperature`,
    /// `max_tokens` and `seed`. The live client POSTs exactly this, and a batch file
    /// ([`crate::batch_file`]) carries it as each line's `body`.
    ///
    /// ```
    /// use tears_summarize::{LlmConfig, Message};
    /// let body = LlmConfig::new("http://x", "m").request_body(&[Message::new("user", "hi")]);
    /// assert_eq!(body["model"], "m");
    /// assert_eq!(body["messages"][0]["content"], "hi");
    /// assert_eq!((body["temperature"].as_f64(), body["max_tokens"].as_u64()), (Some(0.0), Some(300)));
    /// ```
    pub fn request_body(&self, messages: &[Message]) -> Value {
        json!({
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
        })
    }

    /// A stable hash of what asking `messages` sends: the model, its sampling settings and every
    /// message (not the URL or the key). Cache keys of answers use it, so a changed prompt or
    /// setting is asked again.
    pub fn chat_hash(&self, messages: &[Message]) -> String {
        let settings = format!("{}|{}|{}|{}", self.model, self.temperature, self.max_tokens, self.seed);
        let mut parts = vec![settings.as_str()];
        for m in messages {
            parts.push(&m.role);
            parts.push(&m.content);
        }
        stable_hash(&parts)
    }
}

/// Token counts reported by the server (`usage`), summed over all answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Requests answered with a well-formed completion.
    pub completions: u64,
    /// HTTP attempts (including retried ones).
    pub attempts: u64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
}

/// A blocking chat-completions client with retries; cheap to share between threads.
///
/// ```no_run
/// use tears_summarize::{LlmClient, LlmConfig, Message};
/// let client = LlmClient::new(LlmConfig::new("http://127.0.0.1:8080", "local"))?;
/// let answer = client.chat(&[Message::new("user", "Say hi")])?;
/// # Ok::<(), tears_summarize::SummarizeError>(())
/// ```
#[derive(Debug)]
pub struct LlmClient {
    config: LlmConfig,
    agent: ureq::Agent,
    completions: AtomicU64,
    attempts: AtomicU64,
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
    /// Connection attempts in a row that reached no server (see [`LlmConfig::down_after`]).
    unreachable_streak: AtomicU32,
}

enum Attempt {
    /// A failure that another attempt may not repeat; `malformed`: the server answered 200 with a
    /// body that is not a chat completion.
    Retry {
        error: String,
        retry_after: Option<Duration>,
        malformed: bool,
    },
    Fail(SummarizeError),
}

impl LlmClient {
    /// A client for `config`.
    pub fn new(config: LlmConfig) -> Result<Self> {
        let endpoint = config.endpoint();
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(SummarizeError::Config(format!("the LLM URL {endpoint:?} is not http:// or https://")));
        }
        if config.model.trim().is_empty() {
            return Err(SummarizeError::Config("no model name".into()));
        }
        if config.max_attempts == 0 {
            return Err(SummarizeError::Config("max_attempts must be at least 1".into()));
        }
        if config.request_timeout.is_zero() || config.connect_timeout.is_zero() {
            return Err(SummarizeError::Config("the request and connect timeouts must be positive".into()));
        }
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(concat!("tears-rs/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(LlmClient {
            config,
            agent,
            completions: AtomicU64::new(0),
            attempts: AtomicU64::new(0),
            prompt_tokens: AtomicU64::new(0),
            completion_tokens: AtomicU64::new(0),
            unreachable_streak: AtomicU32::new(0),
        })
    }

    /// The settings.
    pub fn config(&self) -> &LlmConfig {
        &self.config
    }

    /// Token usage so far.
    pub fn usage(&self) -> Usage {
        Usage {
            completions: self.completions.load(Ordering::Relaxed),
            attempts: self.attempts.load(Ordering::Relaxed),
            prompt_tokens: self.prompt_tokens.load(Ordering::Relaxed),
            completion_tokens: self.completion_tokens.load(Ordering::Relaxed),
        }
    }

    fn scrub(&self, s: &str) -> String {
        match &self.config.api_key {
            Some(k) => k.scrub(s),
            None => s.to_string(),
        }
    }

    /// A server's text as it may appear in a message: scrubbed of the key first, then shortened
    /// to `max` characters (shortening first could cut the key and leave a prefix of it behind).
    fn quote(&self, s: &str, max: usize) -> String {
        shorten(&self.scrub(s), max)
    }

    /// The request body for `messages` ([`LlmConfig::request_body`]).
    pub fn request_body(&self, messages: &[Message]) -> Value {
        self.config.request_body(messages)
    }

    /// Sends `messages` and returns the answer text (possibly empty: validation is the caller's),
    /// retrying timeouts, connection errors, 408, 429, 5xx and malformed answers (a 200 whose body
    /// is not a chat completion, such as a proxy's HTML page or truncated JSON) with exponential
    /// backoff and jitter (a `Retry-After` in seconds replaces the backoff, capped at
    /// `retry_after_max`). Other 4xx fail at once ([`SummarizeError::Http`]); a server that
    /// cannot be reached [`LlmConfig::down_after`] times in a row gives
    /// [`SummarizeError::ServerDown`].
    pub fn chat(&self, messages: &[Message]) -> Result<String> {
        let body = self.request_body(messages).to_string();
        let endpoint = self.config.endpoint();
        let mut last = String::new();
        let mut last_malformed = false;
        for attempt in 0..self.config.max_attempts {
            if attempt > 0 {
                tracing::debug!(attempt, "retrying LLM request: {last}");
            }
            match self.attempt(&endpoint, &body) {
                Ok(text) => return Ok(text),
                Err(Attempt::Fail(e)) => return Err(e),
                Err(Attempt::Retry { error, retry_after, malformed }) => {
                    last = error;
                    last_malformed = malformed;
                    if attempt + 1 < self.config.max_attempts {
                        let wait = match retry_after {
                            Some(d) => d.min(self.config.retry_after_max),
                            None => {
                                let cap = self.config.backoff_cap(attempt);
                                cap.mul_f64(rand::rng().random_range(0.5..=1.0))
                            }
                        };
                        tracing::warn!("LLM request failed ({last}); retrying in {wait:.1?}");
                        std::thread::sleep(wait);
                    }
                }
            }
        }
        let attempts = self.config.max_attempts;
        Err(if last_malformed {
            SummarizeError::MalformedResponse { attempts, message: last }
        } else {
            SummarizeError::RetriesExhausted { attempts, last }
        })
    }

    fn attempt(&self, endpoint: &str, body: &str) -> std::result::Result<String, Attempt> {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        let mut req = self.agent.post(endpoint).set("Content-Type", "application/json");
        if let Some(k) = &self.config.api_key {
            req = req.set("Authorization", &format!("Bearer {}", k.0));
        }
        let sent = req.send_string(body);
        if !matches!(&sent, Err(ureq::Error::Transport(_))) {
            self.unreachable_streak.store(0, Ordering::Relaxed);
        }
        let text = match sent {
            Ok(resp) => resp.into_string().map_err(|e| Attempt::Retry {
                error: self.quote(&format!("reading the answer: {e}"), 300),
                retry_after: None,
                malformed: false,
            })?,
            Err(ureq::Error::Status(status, resp)) => {
                let retry_after = resp.header("retry-after").and_then(parse_retry_after);
                let message = self.quote(&resp.into_string().unwrap_or_default(), 300);
                return Err(if status == 408 || status == 429 || status >= 500 {
                    Attempt::Retry { error: format!("HTTP {status}: {message}"), retry_after, malformed: false }
                } else {
                    Attempt::Fail(SummarizeError::Http { status, message })
                });
            }
            Err(ureq::Error::Transport(t)) => {
                let error = self.quote(&t.to_string(), 300);
                return Err(match t.kind() {
                    ureq::ErrorKind::InvalidUrl | ureq::ErrorKind::UnknownScheme => {
                        Attempt::Fail(SummarizeError::Config(error))
                    }
                    ureq::ErrorKind::ConnectionFailed | ureq::ErrorKind::Dns | ureq::ErrorKind::ProxyConnect => {
                        let streak = self.unreachable_streak.fetch_add(1, Ordering::Relaxed).saturating_add(1);
                        if self.config.down_after > 0 && streak >= self.config.down_after {
                            Attempt::Fail(SummarizeError::ServerDown {
                                url: endpoint.to_string(),
                                attempts: streak,
                                last: error,
                            })
                        } else {
                            Attempt::Retry { error, retry_after: None, malformed: false }
                        }
                    }
                    _ => Attempt::Retry { error, retry_after: None, malformed: false },
                });
            }
        };
        let malformed = |error: String| Attempt::Retry { error, retry_after: None, malformed: true };
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| malformed(format!("{e}; body starts {:?}", self.quote(&text, 120))))?;
        let answer = Completion::read(&v).ok_or_else(|| malformed(no_content(&self.quote(&text, 120))))?;
        self.completions.fetch_add(1, Ordering::Relaxed);
        self.prompt_tokens.fetch_add(answer.prompt_tokens, Ordering::Relaxed);
        self.completion_tokens.fetch_add(answer.completion_tokens, Ordering::Relaxed);
        Ok(answer.content)
    }

    /// A stable hash of what asking `messages` sends ([`LlmConfig::chat_hash`]).
    pub fn chat_hash(&self, messages: &[Message]) -> String {
        self.config.chat_hash(messages)
    }

    /// Asks `messages` and validates the answer with `check`; a rejected answer is re-asked in the
    /// same chat (the answer and the reason appended) up to `max_reasks` times.
    ///
    /// ```no_run
    /// use tears_summarize::{LlmClient, LlmConfig, Message};
    /// let client = LlmClient::new(LlmConfig::new("http://127.0.0.1:8080", "local"))?;
    /// let word = client.ask_validated(vec![Message::new("user", "One word?")], 2, |a| {
    ///     if a.split_whitespace().count() == 1 { Ok(a.trim().to_string()) } else { Err("not one word".into()) }
    /// })?;
    /// # Ok::<(), tears_summarize::SummarizeError>(())
    /// ```
    pub fn ask_validated<T>(
        &self,
        mut messages: Vec<Message>,
        max_reasks: u32,
        mut check: impl FnMut(&str) -> std::result::Result<T, String>,
    ) -> Result<T> {
        let mut tries = 0;
        loop {
            tries += 1;
            let answer = self.chat(&messages)?;
            match check(&answer) {
                Ok(v) => return Ok(v),
                Err(reason) if tries > max_reasks => {
                    return Err(SummarizeError::InvalidAnswer { attempts: tries, reason });
                }
                Err(reason) => {
                    tracing::debug!("re-asking: {reason}");
                    messages.push(Message::new("assistant", answer));
                    messages.push(Message::new(
                        "user",
                        format!("Your answer did not follow the instructions: {reason}. Answer again, following them exactly."),
                    ));
                }
            }
        }
    }
}

/// The answer of a chat-completions response body, as the live client and a batch import
/// ([`crate::batch_file`]) both read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Completion {
    /// `choices[0].message.content`; a `null` content (as a refusal may have) reads as empty, which
    /// the answer checks then reject.
    pub content: String,
    /// `usage.prompt_tokens` (0 when absent).
    pub prompt_tokens: u64,
    /// `usage.completion_tokens` (0 when absent).
    pub completion_tokens: u64,
}

impl Completion {
    /// The completion in `body`; `None` when it has no `choices[0].message.content` (not a chat
    /// completion: a proxy's page, an error object).
    pub(crate) fn read(body: &Value) -> Option<Completion> {
        let content = body.pointer("/choices/0/message/content")?.as_str().unwrap_or_default().to_string();
        let tokens = |p: &str| body.pointer(p).and_then(Value::as_u64).unwrap_or(0);
        Some(Completion {
            content,
            prompt_tokens: tokens("/usage/prompt_tokens"),
            completion_tokens: tokens("/usage/completion_tokens"),
        })
    }
}

/// Why a body is not a chat completion (`quoted`: its start, shortened and scrubbed).
pub(crate) fn no_content(quoted: &str) -> String {
    format!("no choices[0].message.content in {quoted:?}")
}

/// The titles a summary must not name (with `--reject-titles`): those of the items the prompt
/// of `history` shows.
pub(crate) fn prompt_titles<'h>(template: &PromptTemplate, history: &'h History) -> Vec<&'h str> {
    history.recent(template.max_items).iter().map(|i| i.title.as_str()).collect()
}

/// A `Retry-After` value in seconds (HTTP dates are ignored: the backoff applies); huge values
/// saturate instead of overflowing (the caller caps them at [`LlmConfig::retry_after_max`]).
fn parse_retry_after(value: &str) -> Option<Duration> {
    let s = value.trim().parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0)?;
    Some(Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX))
}

/// Checks on a summary answer.
///
/// ```
/// let rules = tears_summarize::AnswerRules::default();
/// assert!(rules.check("  Summary: The user enjoys quiet dramas about families and friendship.", &[]).is_ok());
/// assert_eq!(rules.check("", &[]).unwrap_err(), "the answer is empty");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerRules {
    /// The trimmed answer must start with this (`Summary:`); empty: no check.
    pub prefix: String,
    /// Minimum length in characters (after trimming).
    pub min_chars: usize,
    /// Maximum length in characters.
    pub max_chars: usize,
    /// Reject answers that name one of the user's item titles.
    pub reject_titles: bool,
    /// Re-asks after a rejected answer.
    pub max_reasks: u32,
}

impl Default for AnswerRules {
    fn default() -> Self {
        AnswerRules {
            prefix: "Summary:".to_string(),
            min_chars: 40,
            max_chars: 4000,
            reject_titles: false,
            max_reasks: 2,
        }
    }
}

impl AnswerRules {
    /// The trimmed answer when it passes, else why not. `titles` are the user's item titles.
    pub fn check(&self, answer: &str, titles: &[&str]) -> std::result::Result<String, String> {
        let a = answer.trim();
        if a.is_empty() {
            return Err("the answer is empty".into());
        }
        if !self.prefix.is_empty() && !a.starts_with(&self.prefix) {
            return Err(format!("the answer must start with {:?}", self.prefix));
        }
        let n = a.chars().count();
        if n < self.min_chars {
            return Err(format!("the answer is too short ({n} characters, at least {})", self.min_chars));
        }
        if n > self.max_chars {
            return Err(format!("the answer is too long ({n} characters, at most {})", self.max_chars));
        }
        if self.reject_titles
            && let Some(t) = titles.iter().find(|t| mentions_title(a, t))
        {
            return Err(format!("the answer names the title {t:?}; do not mention any titles"));
        }
        Ok(a.to_string())
    }
}

/// Whether `text` names `title` (case-insensitive, on word boundaries; `Matrix, The` also matches
/// `The Matrix`; titles shorter than 4 characters are ignored).
fn mentions_title(text: &str, title: &str) -> bool {
    let text = text.to_lowercase();
    let base = title.split(" (").next().unwrap_or(title).trim().to_lowercase();
    let mut forms = vec![base.clone()];
    for article in [", the", ", a", ", an", ", les", ", la", ", le", ", il", ", el"] {
        if let Some(stem) = base.strip_suffix(article) {
            forms.push(format!("{} {stem}", &article[2..]));
            forms.push(stem.to_string());
        }
    }
    forms.iter().filter(|f| f.chars().filter(|c| c.is_alphanumeric()).count() >= 4).any(|f| {
        text.match_indices(f.as_str()).any(|(i, m)| {
            let before = text[..i].chars().next_back().is_none_or(|c| !c.is_alphanumeric());
            let after = text[i + m.len()..].chars().next().is_none_or(|c| !c.is_alphanumeric());
            before && after
        })
    })
}

/// The LLM summarizer: renders the prompt template, asks the model, validates the answer.
#[derive(Debug)]
pub struct LlmSummarizer {
    /// The client.
    pub client: LlmClient,
    /// The prompt.
    pub template: PromptTemplate,
    /// Answer checks.
    pub rules: AnswerRules,
}

impl LlmSummarizer {
    /// A summarizer with the default rules.
    pub fn new(client: LlmClient, template: PromptTemplate) -> Self {
        LlmSummarizer { client, template, rules: AnswerRules::default() }
    }
}

impl Summarizer for LlmSummarizer {
    fn model(&self) -> String {
        self.client.config.model.clone()
    }

    fn prompt_hash(&self, history: &History) -> String {
        self.client.chat_hash(&self.template.render(history))
    }

    fn summarize(&self, history: &History) -> Result<String> {
        let titles = prompt_titles(&self.template, history);
        self.client
            .ask_validated(self.template.render(history), self.rules.max_reasks, |a| self.rules.check(a, &titles))
    }
}
