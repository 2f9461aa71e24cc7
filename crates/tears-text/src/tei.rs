//! Sentence embeddings from a Hugging Face [text-embeddings-inference] (TEI) server.
//!
//! [`TeiClient`] asks the server's `GET /info` once when it connects (which model, its revision,
//! its pooling, how many inputs a request may hold, where it truncates) and then sends texts to
//! `POST /embed` in batches of at most the server's `max_client_batch_size`, several requests in
//! flight at once, putting the vectors back in input order. 429, 5xx, timeouts and connection
//! errors are retried with exponential backoff and jitter; other 4xx (413 payload too large, 422
//! validation) fail at once with the server's `error` and `error_type`.
//!
//! [`TeiEncoder`] wraps a client as a [`TextEncoder`] that builds its tensors on a given device,
//! so a TEI server can stand wherever a local [`SentenceEncoder`](crate::SentenceEncoder) does.
//!
//! The vectors of a TEI server are never mixed with those of a local model: the cache key
//! ([`TeiClient::model_key`], `tei-<model id>-<revision>-<norm|raw>-<max input length>-<hash>`)
//! is built from the server's `/info` and cannot equal a local key (64 hex digits), and the
//! [`EncoderIdentity`] has kind `"tei"`.
//!
//! ```no_run
//! use tears_text::tei::{TeiClient, TeiConfig};
//! let client = TeiClient::connect(TeiConfig::new("http://127.0.0.1:8080"))?;
//! let vectors = client.encode_vecs(&["enjoys quiet dramas"], &mut |_| {})?;
//! assert_eq!(vectors[0].len(), client.dim());
//! # Ok::<(), tears_text::TextError>(())
//! ```
//!
//! [text-embeddings-inference]: https://github.com/huggingface/text-embeddings-inference

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::cache::{EmbeddingCache, sha256_hex};
use crate::encoder::{EncoderIdentity, EncoderOptions, TextEncoder};
use crate::error::{Result, TextError};

/// Settings of a [`TeiClient`].
#[derive(Debug, Clone, PartialEq)]
pub struct TeiConfig {
    /// The server's base URL, `http://HOST:PORT` (a trailing `/` is ignored).
    pub url: String,
    /// Most texts per request; the server's `max_client_batch_size` caps it further.
    pub batch_size: usize,
    /// Ask the server for L2-normalised vectors (`"normalize"` of `/embed`).
    pub normalize: bool,
    /// Requests in flight at once (each batch is one request).
    pub concurrent_requests: usize,
    /// The truncation length the vectors should have, in tokens (the local encoder's
    /// [`EncoderOptions::max_tokens`]); a server whose `max_input_length` differs is used but
    /// warned about, since texts longer than the shorter limit then get other vectors. `None`
    /// checks nothing.
    pub expected_max_tokens: Option<usize>,
    /// Accept a server whose pooling is not mean pooling (the pooling of the local
    /// all-MiniLM-L6-v2 encoder). Off by default: such a server's vectors are not comparable.
    pub allow_any_pooling: bool,
    /// Connection timeout.
    pub connect_timeout: Duration,
    /// Timeout of a whole request (sending, the server's work, reading the answer).
    pub request_timeout: Duration,
    /// Attempts per request, the first included (429, 5xx, timeouts and connection errors are
    /// retried).
    pub max_attempts: u32,
    /// Backoff before retry `n` (0-based) is drawn uniformly from `[d/2, d]`,
    /// `d = min(backoff_max, backoff_base * 2^n)`.
    pub backoff_base: Duration,
    /// Cap of the exponential backoff.
    pub backoff_max: Duration,
}

impl TeiConfig {
    /// Defaults for the server at `url`: 32 texts per request, normalised vectors, 4 requests in
    /// flight, 256-token truncation expected, mean pooling required, 10 s to connect, 120 s per
    /// request, 6 attempts with backoff from 0.5 s doubling up to 30 s.
    pub fn new(url: impl Into<String>) -> Self {
        let defaults = EncoderOptions::default();
        TeiConfig {
            url: url.into(),
            batch_size: defaults.batch_size,
            normalize: defaults.normalize,
            concurrent_requests: 4,
            expected_max_tokens: Some(defaults.max_tokens),
            allow_any_pooling: false,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
            max_attempts: 6,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
        }
    }

    /// Defaults for `url` with the batch size, normalisation and truncation length of `options`
    /// (the settings of the local encoder the server stands in for).
    pub fn from_options(url: impl Into<String>, options: &EncoderOptions) -> Self {
        TeiConfig {
            batch_size: options.batch_size,
            normalize: options.normalize,
            expected_max_tokens: Some(options.max_tokens),
            ..TeiConfig::new(url)
        }
    }

    /// The upper bound of the backoff before retry `retry` (0-based), before jitter.
    pub fn backoff_cap(&self, retry: u32) -> Duration {
        self.backoff_base.saturating_mul(2u32.saturating_pow(retry.min(30))).min(self.backoff_max)
    }
}

/// What a TEI server says about itself (`GET /info`); fields this crate does not use are kept
/// out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeiInfo {
    /// The model, as a Hugging Face id (`sentence-transformers/all-MiniLM-L6-v2`) or a path.
    pub model_id: String,
    /// The model's revision (a commit), `None` where the server does not know it.
    #[serde(default)]
    pub model_sha: Option<String>,
    /// The weights' type on the server (`float32`, `float16`), if reported.
    #[serde(default)]
    pub model_dtype: Option<String>,
    /// What the model does: `{"embedding": {"pooling": "mean"}}` for a sentence embedder
    /// (`{"classifier": ...}` and `{"reranker": ...}` models cannot embed).
    pub model_type: Value,
    /// Most inputs one request may hold.
    pub max_client_batch_size: usize,
    /// Truncation length in tokens.
    pub max_input_length: usize,
    /// The server's version, if reported.
    #[serde(default)]
    pub version: Option<String>,
}

impl TeiInfo {
    /// The pooling of an embedding model (`"mean"`, `"cls"`, `"splade"`, `"last_token"`), `None`
    /// for a model that does not embed.
    pub fn pooling(&self) -> Option<&str> {
        self.model_type.pointer("/embedding/pooling").and_then(Value::as_str)
    }
}

/// Keeps ASCII letters, digits, `.`, `_` and `-` of `s` (others become `_`), at most `max`
/// characters: a readable part of a folder name.
fn sanitise(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .take(max)
        .collect()
}

/// The cache key of the vectors a server described by `info` makes with `normalize`:
/// `tei-<model id>-<revision or nosha>-<norm|raw>-<max input length>-<hash>`, the readable parts
/// sanitised for a folder name, the hash (12 hex digits of SHA-256) over the unsanitised model
/// id, revision, weight type, pooling, normalisation and truncation length, so that two servers
/// whose names sanitise alike still get different keys.
///
/// It always starts with `tei-`, so it never equals a local
/// [`SentenceEncoder::model_key`](crate::SentenceEncoder::model_key) (64 hex digits).
pub fn model_key(info: &TeiInfo, normalize: bool) -> String {
    let raw = format!(
        "tei\nmodel_id={}\nmodel_sha={}\nmodel_dtype={}\npooling={}\nnormalize={normalize}\nmax_input_length={}",
        info.model_id,
        info.model_sha.as_deref().unwrap_or(""),
        info.model_dtype.as_deref().unwrap_or(""),
        info.pooling().unwrap_or(""),
        info.max_input_length
    );
    let hash = sha256_hex(raw.as_bytes());
    let sha =
        info.model_sha.as_deref().filter(|s| !s.is_empty()).map_or_else(|| "nosha".to_string(), |s| sanitise(s, 40));
    format!(
        "tei-{}-{sha}-{}-{}-{}",
        sanitise(&info.model_id, 80),
        if normalize { "norm" } else { "raw" },
        info.max_input_length,
        &hash[..12]
    )
}

/// One failed attempt: worth another try, or final.
enum Attempt {
    Retry(String),
    Fail(TextError),
}

/// `s` cut to `max` characters (an ellipsis marks the cut).
fn shorten(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= max { s.to_string() } else { s.chars().take(max).collect::<String>() + "…" }
}

/// A client of one TEI server, connected (its `/info` read and its vector dimension known).
#[derive(Debug)]
pub struct TeiClient {
    config: TeiConfig,
    base: String,
    agent: ureq::Agent,
    info: TeiInfo,
    dim: usize,
    key: String,
    requests: AtomicU64,
}

const INFO: &str = "GET /info";
const EMBED: &str = "POST /embed";

impl TeiClient {
    /// Connects to the server of `config`: reads `GET /info`, checks that it serves an embedding
    /// model with mean pooling (unless [`TeiConfig::allow_any_pooling`]), and embeds one short
    /// probe text to learn the vector dimension.
    ///
    /// Errors name the server: an URL that is not `http://` or `https://`, settings out of range,
    /// a server that cannot be reached after [`TeiConfig::max_attempts`] attempts, an `/info`
    /// that is not TEI's, a model that does not embed or pools otherwise.
    pub fn connect(config: TeiConfig) -> Result<Self> {
        let base = config.url.trim().trim_end_matches('/').to_string();
        let url = base.clone();
        let fail = move |reason: String| -> Result<TeiClient> { Err(TextError::Tei { url: url.clone(), reason }) };
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return fail("the URL must start with http:// or https://".into());
        }
        if config.batch_size == 0 || config.concurrent_requests == 0 || config.max_attempts == 0 {
            return fail("batch_size, concurrent_requests and max_attempts must be at least 1".into());
        }
        if config.connect_timeout.is_zero() || config.request_timeout.is_zero() {
            return fail("the connect and request timeouts must be positive".into());
        }
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(concat!("tears-rs/", env!("CARGO_PKG_VERSION")))
            .build();
        let mut client = TeiClient {
            config,
            base,
            agent,
            info: TeiInfo {
                model_id: String::new(),
                model_sha: None,
                model_dtype: None,
                model_type: Value::Null,
                max_client_batch_size: 1,
                max_input_length: 0,
                version: None,
            },
            dim: 0,
            key: String::new(),
            requests: AtomicU64::new(0),
        };
        client.info = client.fetch_info()?;
        let info = &client.info;
        match info.pooling() {
            None => {
                return fail(format!(
                    "{} is not an embedding model (model_type {}); start TEI with a sentence-embedding model",
                    info.model_id, info.model_type
                ));
            }
            Some("mean") => {}
            Some(other) if client.config.allow_any_pooling => {
                tracing::warn!(
                    "TEI server {}: {} uses {other} pooling, not mean pooling: its vectors differ from a mean-pooled local encoder's",
                    client.base,
                    info.model_id
                );
            }
            Some(other) => {
                return fail(format!(
                    "{} uses {other} pooling, but the local sentence encoder (all-MiniLM-L6-v2) pools by the mean: \
                     restart TEI with --pooling mean, or opt out of this check to use its vectors anyway",
                    info.model_id
                ));
            }
        }
        if info.max_client_batch_size == 0 {
            return fail("/info gives max_client_batch_size 0".into());
        }
        if let Some(expected) = client.config.expected_max_tokens
            && expected != info.max_input_length
        {
            tracing::warn!(
                "TEI server {}: truncates at {} tokens, the local encoder at {expected}: texts longer than {} tokens get other vectors",
                client.base,
                info.max_input_length,
                expected.min(info.max_input_length)
            );
        }
        let probe = client.embed_batch(&["dimension probe"], None)?;
        client.dim = probe.first().map_or(0, Vec::len);
        if client.dim == 0 {
            return fail("the probe text's vector is empty".into());
        }
        client.key = model_key(&client.info, client.config.normalize);
        tracing::info!(
            "TEI server {}: {} (revision {}, {} pooling, dimension {}, at most {} inputs per request, truncation at {} tokens)",
            client.base,
            client.info.model_id,
            client.info.model_sha.as_deref().unwrap_or("unknown"),
            client.info.pooling().unwrap_or("?"),
            client.dim,
            client.info.max_client_batch_size,
            client.info.max_input_length
        );
        Ok(client)
    }

    /// The server's base URL (without a trailing `/`).
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The settings.
    pub fn config(&self) -> &TeiConfig {
        &self.config
    }

    /// What the server said about itself at connection.
    pub fn info(&self) -> &TeiInfo {
        &self.info
    }

    /// The vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Texts per request: the configured batch size capped by the server's
    /// `max_client_batch_size`.
    pub fn batch_limit(&self) -> usize {
        self.config.batch_size.min(self.info.max_client_batch_size).max(1)
    }

    /// The cache key of this server's vectors (see [`model_key`]).
    pub fn model_key(&self) -> &str {
        &self.key
    }

    /// HTTP requests sent so far, retries and the connection's `/info` and probe included.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// What this encoder is: kind `"tei"`, the [`model_key`](Self::model_key), the server's
    /// pooling and truncation length, the URL as source.
    pub fn identity(&self) -> EncoderIdentity {
        EncoderIdentity {
            kind: "tei".into(),
            key: self.key.clone(),
            dim: self.dim,
            pooling: self.info.pooling().map(str::to_string),
            max_tokens: Some(self.info.max_input_length),
            normalize: self.config.normalize,
            source: self.base.clone(),
        }
    }

    /// Encodes `texts` (row `i` for `texts[i]`), [`batch_limit`](Self::batch_limit) texts per
    /// request and [`TeiConfig::concurrent_requests`] requests at once, calling `progress(n)` as
    /// each batch of `n` texts comes back. The first failing batch stops the rest and is the
    /// error.
    pub fn encode_vecs(&self, texts: &[&str], progress: &mut dyn FnMut(usize)) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let batches: Vec<&[&str]> = texts.chunks(self.batch_limit()).collect();
        let mut outputs: Vec<Option<Vec<Vec<f32>>>> = vec![None; batches.len()];
        let workers = self.config.concurrent_requests.clamp(1, batches.len());
        if workers == 1 {
            for (slot, batch) in outputs.iter_mut().zip(&batches) {
                *slot = Some(self.embed_batch(batch, None)?);
                progress(batch.len());
            }
        } else {
            let next = AtomicUsize::new(0);
            let stop = AtomicBool::new(false);
            let (sender, receiver) = std::sync::mpsc::channel::<(usize, Result<Vec<Vec<f32>>>)>();
            let mut first_error = None;
            std::thread::scope(|scope| {
                for _ in 0..workers {
                    let sender = sender.clone();
                    let (next, stop, batches) = (&next, &stop, &batches);
                    scope.spawn(move || {
                        while !stop.load(Ordering::Relaxed) {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(batch) = batches.get(i) else { break };
                            if sender.send((i, self.embed_batch(batch, Some(stop)))).is_err() {
                                break;
                            }
                        }
                    });
                }
                drop(sender);
                for (i, out) in receiver {
                    match out {
                        Ok(vectors) => {
                            progress(batches[i].len());
                            outputs[i] = Some(vectors);
                        }
                        Err(e) => {
                            stop.store(true, Ordering::Relaxed);
                            first_error.get_or_insert(e);
                        }
                    }
                }
            });
            if let Some(e) = first_error {
                return Err(e);
            }
        }
        let mut vectors = Vec::with_capacity(texts.len());
        for out in outputs {
            let Some(out) = out else {
                return Err(TextError::Tei { url: self.base.clone(), reason: "a request worker stopped early".into() });
            };
            vectors.extend(out);
        }
        Ok(vectors)
    }

    /// Like [`encode_vecs`](Self::encode_vecs), reading and filling `cache` under
    /// [`model_key`](Self::model_key): only texts missing from it are sent. `progress` counts
    /// cached texts too.
    pub fn encode_cached(
        &self,
        texts: &[&str],
        cache: &EmbeddingCache,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<Vec<f32>>> {
        // A cached vector of another length (a corrupt or foreign entry) is a miss.
        cache.get_or_encode(&self.key, texts, Some(self.dim), progress, |todo, progress| {
            self.encode_vecs(todo, progress)
        })
    }

    /// The request body of `/embed` for `texts`.
    pub fn request_body(&self, texts: &[&str]) -> Value {
        json!({
            "inputs": texts,
            "normalize": self.config.normalize,
            "truncate": true,
            "truncation_direction": "Right",
        })
    }

    fn fetch_info(&self) -> Result<TeiInfo> {
        let url = format!("{}/info", self.base);
        self.with_retries(INFO, None, || {
            let response = self.send(INFO, self.agent.get(&url), None)?;
            let body = read_body(response)?;
            serde_json::from_str::<TeiInfo>(&body).map_err(|e| {
                Attempt::Fail(TextError::Tei {
                    url: self.base.clone(),
                    reason: format!("/info is not TEI's ({e}); it starts {:?}", shorten(&body, 200)),
                })
            })
        })
    }

    /// One `/embed` request for `texts` (at most [`batch_limit`](Self::batch_limit)), retried;
    /// checks that one vector of the known dimension comes back per text. `stop`: give up
    /// between attempts once set (another batch failed).
    fn embed_batch(&self, texts: &[&str], stop: Option<&AtomicBool>) -> Result<Vec<Vec<f32>>> {
        let url = format!("{}/embed", self.base);
        let body = self.request_body(texts).to_string();
        let vectors = self.with_retries(EMBED, stop, || {
            let response =
                self.send(EMBED, self.agent.post(&url).set("Content-Type", "application/json"), Some(&body))?;
            let text = read_body(response)?;
            serde_json::from_str::<Vec<Vec<f32>>>(&text).map_err(|e| {
                // A cut or garbled answer (a proxy's page, a dropped connection) may not repeat.
                Attempt::Retry(format!(
                    "the answer is not a list of vectors ({e}); it starts {:?}",
                    shorten(&text, 120)
                ))
            })
        })?;
        let bad = |reason: String| Err(TextError::Tei { url: self.base.clone(), reason });
        if vectors.len() != texts.len() {
            return bad(format!("{} vectors came back for {} texts", vectors.len(), texts.len()));
        }
        let want = if self.dim == 0 { vectors.first().map_or(0, Vec::len) } else { self.dim };
        if let Some((i, v)) = vectors.iter().enumerate().find(|(_, v)| v.len() != want) {
            return bad(format!("vector {i} of a batch has {} values, expected {want}", v.len()));
        }
        if let Some(i) = vectors.iter().position(|v| v.iter().any(|x| !x.is_finite())) {
            return bad(format!("vector {i} of a batch holds a non-finite value (text {:?})", shorten(texts[i], 60)));
        }
        Ok(vectors)
    }

    fn with_retries<T>(
        &self,
        endpoint: &'static str,
        stop: Option<&AtomicBool>,
        attempt: impl Fn() -> std::result::Result<T, Attempt>,
    ) -> Result<T> {
        let mut last = String::new();
        let mut made = 0;
        for n in 0..self.config.max_attempts {
            if n > 0 && stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                break;
            }
            made += 1;
            match attempt() {
                Ok(v) => return Ok(v),
                Err(Attempt::Fail(e)) => return Err(e),
                Err(Attempt::Retry(error)) => {
                    last = error;
                    if n + 1 < self.config.max_attempts {
                        let wait = self.config.backoff_cap(n).mul_f64(rand::rng().random_range(0.5..=1.0));
                        tracing::warn!("TEI server {}: {endpoint} failed ({last}); retrying in {wait:.1?}", self.base);
                        std::thread::sleep(wait);
                    }
                }
            }
        }
        Err(TextError::TeiRetriesExhausted { url: self.base.clone(), endpoint, attempts: made, last })
    }

    /// Sends one request; sorts its failure into retry (429, 5xx, transport) or fail (other 4xx,
    /// a bad URL).
    fn send(
        &self,
        endpoint: &'static str,
        request: ureq::Request,
        body: Option<&str>,
    ) -> std::result::Result<ureq::Response, Attempt> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let sent = match body {
            Some(b) => request.send_string(b),
            None => request.call(),
        };
        match sent {
            Ok(response) => Ok(response),
            Err(ureq::Error::Status(status, response)) => {
                let text = response.into_string().unwrap_or_default();
                let parsed: Option<Value> = serde_json::from_str(&text).ok();
                let field =
                    |name: &str| parsed.as_ref().and_then(|v| v.get(name)).and_then(Value::as_str).map(str::to_string);
                let message = field("error").unwrap_or_else(|| shorten(&text, 300));
                if status == 429 || status >= 500 {
                    Err(Attempt::Retry(format!("HTTP {status}: {message}")))
                } else {
                    Err(Attempt::Fail(TextError::TeiHttp {
                        url: self.base.clone(),
                        endpoint,
                        status,
                        message,
                        error_type: field("error_type"),
                    }))
                }
            }
            Err(ureq::Error::Transport(t)) => match t.kind() {
                ureq::ErrorKind::InvalidUrl | ureq::ErrorKind::UnknownScheme => {
                    Err(Attempt::Fail(TextError::Tei { url: self.base.clone(), reason: t.to_string() }))
                }
                _ => Err(Attempt::Retry(t.to_string())),
            },
        }
    }
}

/// The whole body of a successful answer (no size cap: a batch of long vectors can exceed
/// `ureq`'s 10 MB limit of `into_string`); a read that breaks off is retried.
fn read_body(response: ureq::Response) -> std::result::Result<String, Attempt> {
    let mut text = String::new();
    response.into_reader().read_to_string(&mut text).map_err(|e| Attempt::Retry(format!("reading the answer: {e}")))?;
    Ok(text)
}

/// A [`TeiClient`] as a [`TextEncoder`]: vectors come from the server and become tensors on the
/// device given at construction.
///
/// ```no_run
/// use burn::backend::Flex;
/// use tears_text::TextEncoder;
/// use tears_text::tei::{TeiConfig, TeiEncoder};
/// let encoder = TeiEncoder::<Flex>::connect(TeiConfig::new("http://127.0.0.1:8080"), &Default::default())?;
/// let vectors = encoder.encode(&["enjoys quiet dramas", "likes loud action films"])?;
/// assert_eq!(vectors.dims(), [2, encoder.dim()]);
/// # Ok::<(), tears_text::TextError>(())
/// ```
#[derive(Debug)]
pub struct TeiEncoder<B: Backend> {
    client: TeiClient,
    device: B::Device,
}

impl<B: Backend> TeiEncoder<B> {
    /// Connects to the server of `config` (see [`TeiClient::connect`]); tensors go to `device`.
    pub fn connect(config: TeiConfig, device: &B::Device) -> Result<Self> {
        Ok(Self::new(TeiClient::connect(config)?, device))
    }

    /// Wraps a connected client.
    pub fn new(client: TeiClient, device: &B::Device) -> Self {
        TeiEncoder { client, device: device.clone() }
    }

    /// The client (host-side vectors, the cache, the server's `/info`).
    pub fn client(&self) -> &TeiClient {
        &self.client
    }

    /// The device the tensors are built on.
    pub fn device(&self) -> &B::Device {
        &self.device
    }
}

impl<B: Backend> TextEncoder<B> for TeiEncoder<B> {
    fn dim(&self) -> usize {
        self.client.dim()
    }

    fn encode(&self, texts: &[&str]) -> Result<Tensor<B, 2>> {
        let dim = self.client.dim();
        let vectors = self.client.encode_vecs(texts, &mut |_| {})?;
        let flat: Vec<f32> = vectors.into_iter().flatten().collect();
        Ok(Tensor::from_data(TensorData::new(flat, [texts.len(), dim]), &self.device))
    }

    fn identity(&self) -> Result<EncoderIdentity> {
        Ok(self.client.identity())
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A request the stub received.
    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        path: String,
        body: Value,
    }

    /// Answers one `/embed` request: its number (0-based, the probe of `connect` is 0) and its
    /// JSON body → status and body.
    type Embed = dyn Fn(usize, &Value) -> (u16, String) + Send + Sync;

    /// A loopback server speaking TEI's `/info` and `/embed` (one request per connection).
    struct Stub {
        addr: std::net::SocketAddr,
        seen: Arc<Mutex<Vec<Seen>>>,
        stop: Arc<AtomicBool>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl Stub {
        fn start(info: Value, embed: impl Fn(usize, &Value) -> (u16, String) + Send + Sync + 'static) -> Stub {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
            let addr = listener.local_addr().expect("local address");
            let seen = Arc::new(Mutex::new(Vec::new()));
            let stop = Arc::new(AtomicBool::new(false));
            let embed: Arc<Embed> = Arc::new(embed);
            let embeds = Arc::new(AtomicUsize::new(0));
            let info = info.to_string();
            let thread = {
                let (seen, stop) = (seen.clone(), stop.clone());
                std::thread::spawn(move || {
                    for stream in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(stream) = stream else { continue };
                        let (seen, embed, embeds, info) = (seen.clone(), embed.clone(), embeds.clone(), info.clone());
                        std::thread::spawn(move || {
                            let _ = answer(stream, &seen, &info, embed.as_ref(), &embeds);
                        });
                    }
                })
            };
            Stub { addr, seen, stop, thread: Some(thread) }
        }

        fn url(&self) -> String {
            format!("http://{}", self.addr)
        }

        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().expect("stub log").clone()
        }

        fn embeds(&self) -> Vec<Seen> {
            self.seen().into_iter().filter(|s| s.path == "/embed").collect()
        }
    }

    impl Drop for Stub {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect(self.addr);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    fn answer(
        stream: TcpStream,
        seen: &Mutex<Vec<Seen>>,
        info: &str,
        embed: &Embed,
        embeds: &AtomicUsize,
    ) -> std::io::Result<()> {
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let mut words = line.split_whitespace();
        let method = words.next().unwrap_or_default().to_string();
        let path = words.next().unwrap_or_default().to_string();
        let mut length = 0;
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            if line.trim_end().is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.trim().eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body)?;
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        seen.lock().expect("stub log").push(Seen { method: method.clone(), path: path.clone(), body: body.clone() });
        let (status, reply) = match (method.as_str(), path.as_str()) {
            ("GET", "/info") => (200, info.to_string()),
            ("POST", "/embed") => embed(embeds.fetch_add(1, Ordering::SeqCst), &body),
            _ => (404, r#"{"error":"not found","error_type":"not_found"}"#.to_string()),
        };
        let mut stream = stream;
        write!(
            stream,
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
            reply.len()
        )?;
        stream.flush()
    }

    /// `/info` of all-MiniLM-L6-v2 with `batch` inputs per request and `pooling`.
    fn info(batch: usize, pooling: &str) -> Value {
        json!({
            "model_id": "sentence-transformers/all-MiniLM-L6-v2",
            "model_sha": null,
            "model_dtype": "float32",
            "model_type": {"embedding": {"pooling": pooling}},
            "max_concurrent_requests": 512,
            "max_input_length": 256,
            "max_batch_tokens": 16384,
            "max_client_batch_size": batch,
            "auto_truncate": false,
            "version": "1.7.0",
        })
    }

    /// The stub's vector of a text: position-weighted byte sums, distinct for distinct test texts.
    fn fake_vector(text: &str) -> Vec<f32> {
        let weighted: usize = text.bytes().enumerate().map(|(i, b)| (i + 1) * b as usize).sum();
        vec![text.len() as f32, weighted as f32, 1.0]
    }

    /// An `/embed` answer of fake vectors for the request's inputs.
    fn vectors_of(body: &Value) -> (u16, String) {
        let inputs = body["inputs"].as_array().cloned().unwrap_or_default();
        let rows: Vec<Vec<f32>> = inputs.iter().map(|t| fake_vector(t.as_str().unwrap_or_default())).collect();
        (200, serde_json::to_string(&rows).expect("vectors to JSON"))
    }

    /// Fast settings for tests: millisecond backoff, short timeouts.
    fn config(url: &str) -> TeiConfig {
        TeiConfig {
            backoff_base: Duration::from_millis(1),
            backoff_max: Duration::from_millis(4),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            max_attempts: 3,
            ..TeiConfig::new(url)
        }
    }

    #[test]
    fn connects_and_sends_tei_request_bodies() {
        let stub = Stub::start(info(32, "mean"), |_, body| vectors_of(body));
        let mut cfg = config(&format!("{}/", stub.url()));
        cfg.normalize = false;
        let client = TeiClient::connect(cfg).expect("connect");
        assert_eq!(client.url(), stub.url());
        assert_eq!(client.dim(), 3);
        assert_eq!(client.info().model_id, "sentence-transformers/all-MiniLM-L6-v2");
        assert_eq!(client.info().pooling(), Some("mean"));
        let texts = ["likes dramas", "hates horror"];
        let got = client.encode_vecs(&texts, &mut |_| {}).expect("encode");
        assert_eq!(got, texts.iter().map(|t| fake_vector(t)).collect::<Vec<_>>());
        let seen = stub.seen();
        assert_eq!((seen[0].method.as_str(), seen[0].path.as_str()), ("GET", "/info"));
        let last = &stub.embeds()[1];
        assert_eq!(last.method, "POST");
        assert_eq!(last.body["inputs"], json!(texts));
        assert_eq!(last.body["normalize"], json!(false));
        assert_eq!(last.body["truncate"], json!(true));
        assert_eq!(last.body["truncation_direction"], json!("Right"));
        // /info, the probe, one batch.
        assert_eq!(client.requests(), 3);
    }

    #[test]
    fn batches_respect_the_server_limit_and_keep_order() {
        let stub = Stub::start(info(7, "mean"), |_, body| vectors_of(body));
        let mut cfg = config(&stub.url());
        cfg.batch_size = 32;
        cfg.concurrent_requests = 3;
        let client = TeiClient::connect(cfg).expect("connect");
        assert_eq!(client.batch_limit(), 7);
        let texts: Vec<String> = (0..50).map(|i| format!("summary number {i}")).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let mut counted = 0;
        let got = client.encode_vecs(&refs, &mut |n| counted += n).expect("encode");
        assert_eq!(counted, 50);
        assert_eq!(got, refs.iter().map(|t| fake_vector(t)).collect::<Vec<_>>());
        let sizes: Vec<usize> =
            stub.embeds().iter().skip(1).map(|s| s.body["inputs"].as_array().map_or(0, Vec::len)).collect();
        assert_eq!(sizes.len(), 8, "50 texts in batches of 7: {sizes:?}");
        assert!(sizes.iter().all(|&n| (1..=7).contains(&n)), "{sizes:?}");
        assert_eq!(sizes.iter().sum::<usize>(), 50);

        // Our own batch size caps below the server's.
        let mut cfg = config(&stub.url());
        cfg.batch_size = 4;
        let client = TeiClient::connect(cfg).expect("connect");
        assert_eq!(client.batch_limit(), 4);
    }

    #[test]
    fn retries_429_then_succeeds() {
        // Request 0 is the probe; the first real batch is refused once with 429.
        let stub = Stub::start(info(32, "mean"), |n, body| {
            if n == 1 {
                (429, r#"{"error":"Model is overloaded","error_type":"overloaded"}"#.into())
            } else {
                vectors_of(body)
            }
        });
        let client = TeiClient::connect(config(&stub.url())).expect("connect");
        let got = client.encode_vecs(&["a b c"], &mut |_| {}).expect("the retry succeeds");
        assert_eq!(got, vec![fake_vector("a b c")]);
        assert_eq!(stub.embeds().len(), 3);
    }

    #[test]
    fn server_errors_exhaust_the_attempts() {
        let stub = Stub::start(info(32, "mean"), |n, body| {
            if n == 0 { vectors_of(body) } else { (503, r#"{"error":"backend down","error_type":"backend"}"#.into()) }
        });
        let client = TeiClient::connect(config(&stub.url())).expect("connect");
        let err = client.encode_vecs(&["a", "b"], &mut |_| {}).expect_err("503 every time");
        match &err {
            TextError::TeiRetriesExhausted { url, attempts, last, .. } => {
                assert_eq!(url, &stub.url());
                assert_eq!(*attempts, 3);
                assert!(last.contains("503") && last.contains("backend down"), "{last}");
            }
            other => panic!("expected exhausted retries, got {other}"),
        }
        assert_eq!(stub.embeds().len(), 1 + 3);
    }

    #[test]
    fn client_errors_fail_at_once_naming_server_and_status() {
        for (status, error_type) in [(413, "validation"), (422, "tokenizer")] {
            let stub = Stub::start(info(32, "mean"), move |n, body| {
                if n == 0 {
                    vectors_of(body)
                } else {
                    (status, format!(r#"{{"error":"refused with {status}","error_type":"{error_type}"}}"#))
                }
            });
            let client = TeiClient::connect(config(&stub.url())).expect("connect");
            let err = client.encode_vecs(&["a"], &mut |_| {}).expect_err("a client error");
            let message = err.to_string();
            assert!(message.contains(&stub.url()), "{message}");
            assert!(message.contains(&format!("HTTP {status}")), "{message}");
            assert!(message.contains(&format!("refused with {status}")), "{message}");
            assert!(message.contains(error_type), "{message}");
            // Not retried.
            assert_eq!(stub.embeds().len(), 2);
        }
    }

    #[test]
    fn refuses_other_pooling_unless_allowed_and_non_embedding_models() {
        let stub = Stub::start(info(32, "cls"), |_, body| vectors_of(body));
        let err = TeiClient::connect(config(&stub.url())).expect_err("cls pooling");
        assert!(err.to_string().contains("cls pooling"), "{err}");
        let mut cfg = config(&stub.url());
        cfg.allow_any_pooling = true;
        let client = TeiClient::connect(cfg).expect("allowed");
        assert_eq!(client.identity().pooling.as_deref(), Some("cls"));

        let mut reranker = info(32, "mean");
        reranker["model_type"] = json!({"reranker": {"id2label": {"0": "LABEL_0"}}});
        let stub = Stub::start(reranker, |_, body| vectors_of(body));
        let err = TeiClient::connect(config(&stub.url())).expect_err("a reranker");
        assert!(err.to_string().contains("not an embedding model"), "{err}");
    }

    #[test]
    fn unreachable_server_and_bad_url_are_named() {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let url = format!("http://127.0.0.1:{port}");
        let err = TeiClient::connect(config(&url)).expect_err("nobody listens");
        assert!(matches!(err, TextError::TeiRetriesExhausted { attempts: 3, .. }), "{err}");
        assert!(err.to_string().contains(&url), "{err}");
        let err = TeiClient::connect(config("127.0.0.1:8080")).expect_err("no scheme");
        assert!(err.to_string().contains("http://"), "{err}");
    }

    #[test]
    fn cache_keys_follow_info_and_never_meet_local_keys() {
        let base: TeiInfo = serde_json::from_value(info(32, "mean")).expect("info");
        let key = model_key(&base, true);
        assert!(key.starts_with("tei-sentence-transformers_all-MiniLM-L6-v2-nosha-norm-256-"), "{key}");
        assert!(key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')), "{key}");
        let mut variants = vec![model_key(&base, false)];
        for change in [
            |i: &mut TeiInfo| i.model_sha = Some("abc123".into()),
            |i: &mut TeiInfo| i.max_input_length = 512,
            |i: &mut TeiInfo| i.model_dtype = Some("float16".into()),
            |i: &mut TeiInfo| i.model_id = "sentence-transformers:all-MiniLM-L6-v2".into(),
        ] {
            let mut other = base.clone();
            change(&mut other);
            variants.push(model_key(&other, true));
        }
        for v in &variants {
            assert_ne!(v, &key);
        }

        // A local encoder's key and identity never match a TEI server's.
        let dir = tempfile::tempdir().expect("tmp");
        crate::testing::write_tiny_model(dir.path(), 3).expect("tiny model");
        let local = crate::SentenceEncoder::<burn::backend::Flex>::load(
            dir.path(),
            &EncoderOptions::default(),
            &Default::default(),
        )
        .expect("load");
        let local_key = local.model_key().expect("local key").to_string();
        assert_eq!(local_key.len(), 64);
        assert!(!local_key.starts_with("tei-"));
        let stub = Stub::start(info(32, "mean"), |_, body| vectors_of(body));
        let tei =
            TeiEncoder::<burn::backend::Flex>::connect(config(&stub.url()), &Default::default()).expect("connect");
        assert_eq!(tei.client().model_key(), key);
        let cache_dir = tempfile::tempdir().expect("tmp");
        let cache = EmbeddingCache::open(cache_dir.path()).expect("cache");
        cache.put(&local_key, "shared text", &[9.0; 3]).expect("put");
        let got = tei.client().encode_cached(&["shared text"], &cache, &mut |_| {}).expect("cached");
        assert_eq!(got, vec![fake_vector("shared text")], "the local entry must not be used");
        let local_id = local.identity().expect("identity");
        let tei_id = tei.identity().expect("identity");
        let err = tei_id.check_matches(&local_id, std::path::Path::new("emb.json")).expect_err("differ");
        assert!(err.to_string().contains("kind"), "{err}");
    }

    #[test]
    fn cache_is_filled_and_read() {
        let stub = Stub::start(info(32, "mean"), |_, body| vectors_of(body));
        let client = TeiClient::connect(config(&stub.url())).expect("connect");
        let dir = tempfile::tempdir().expect("tmp");
        let cache = EmbeddingCache::open(dir.path()).expect("cache");
        let first = client.encode_cached(&["one", "two"], &cache, &mut |_| {}).expect("first");
        assert_eq!(cache.len(client.model_key()), 2);
        let mut counted = 0;
        let second = client.encode_cached(&["two", "three", "one"], &cache, &mut |n| counted += n).expect("second");
        assert_eq!(counted, 3);
        assert_eq!(second, vec![first[1].clone(), fake_vector("three"), first[0].clone()]);
        // The probe, the first call's batch, then only "three".
        let embeds = stub.embeds();
        assert_eq!(embeds.len(), 3);
        assert_eq!(embeds[2].body["inputs"], json!(["three"]));
    }

    #[test]
    fn encoder_builds_tensors_in_input_order() {
        let stub = Stub::start(info(2, "mean"), |_, body| vectors_of(body));
        let encoder =
            TeiEncoder::<burn::backend::Flex>::connect(config(&stub.url()), &Default::default()).expect("connect");
        let texts = ["x", "yy", "zzz", "a longer text"];
        let host = encoder.encode_host(&texts).expect("encode");
        assert_eq!(host.dim(), (4, 3));
        for (row, text) in host.rows().into_iter().zip(texts) {
            assert_eq!(row.to_vec(), fake_vector(text));
        }
        let empty = encoder.encode(&[]).expect("no texts");
        assert_eq!(empty.dims(), [0, 3]);
        let id = encoder.identity().expect("identity");
        assert_eq!((id.kind.as_str(), id.dim, id.max_tokens), ("tei", 3, Some(256)));
    }

    #[test]
    fn wrong_answers_are_errors() {
        // One vector too few for the batch.
        let stub =
            Stub::start(
                info(32, "mean"),
                |n, body| {
                    if n == 0 { vectors_of(body) } else { (200, "[[1.0, 2.0, 3.0]]".into()) }
                },
            );
        let client = TeiClient::connect(config(&stub.url())).expect("connect");
        let err = client.encode_vecs(&["a", "b"], &mut |_| {}).expect_err("short answer");
        assert!(err.to_string().contains("1 vectors came back for 2 texts"), "{err}");
    }
}
