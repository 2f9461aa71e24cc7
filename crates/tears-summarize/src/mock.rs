//! An in-process chat-completions server on 127.0.0.1 for tests, benchmarks and offline demos.
//!
//! Each connection is answered by a handler that sees the request number (0-based, in arrival
//! order) and the request, and returns a [`MockReply`]: a completion, an HTTP error (with an
//! optional `Retry-After`), a raw body (malformed JSON), a delay, or a dropped connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request as the mock server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockRequest {
    /// Request path (`/v1/chat/completions`).
    pub path: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

impl MockRequest {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The content of the last message of the request.
    pub fn last_message(&self) -> String {
        let v = self.json();
        v.get("messages")
            .and_then(|m| m.as_array())
            .and_then(|m| m.last())
            .and_then(|m| m.get("content"))
            .and_then(|c| c.as_str())
            .unwrap_or_default()
            .to_string()
    }

    /// A header value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// How the mock server answers one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MockReply {
    /// HTTP 200 with a chat completion whose content is this text.
    Completion(String),
    /// An HTTP error status with an optional `Retry-After` value and a body.
    Status {
        /// The status.
        status: u16,
        /// The `Retry-After` header value.
        retry_after: Option<String>,
        /// The body.
        body: String,
    },
    /// HTTP 200 with this raw body (for malformed answers).
    Raw(String),
    /// Wait, then answer.
    Delay(Duration, Box<MockReply>),
    /// Close the connection without answering.
    Close,
}

type Handler = dyn Fn(usize, &MockRequest) -> MockReply + Send + Sync;

/// The server; it stops when dropped.
///
/// ```
/// use tears_summarize::mock::{MockReply, MockServer};
/// use tears_summarize::{LlmClient, LlmConfig, Message};
/// let server = MockServer::start(|_, _| MockReply::Completion("Summary: hi".into()))?;
/// let client = LlmClient::new(LlmConfig::new(&server.url(), "mock"))?;
/// assert_eq!(client.chat(&[Message::new("user", "x")])?, "Summary: hi");
/// assert_eq!(server.requests(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct MockServer {
    addr: std::net::SocketAddr,
    count: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<MockRequest>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for MockServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockServer").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl MockServer {
    /// Starts a server on `127.0.0.1` (a free port) answering with `handler`.
    pub fn start(handler: impl Fn(usize, &MockRequest) -> MockReply + Send + Sync + 'static) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let count = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let thread = {
            let (count, received, stop) = (count.clone(), received.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (count, received, handler) = (count.clone(), received.clone(), handler.clone());
                    std::thread::spawn(move || {
                        let _ = serve(stream, &count, &received, handler.as_ref());
                    });
                }
            })
        };
        Ok(MockServer { addr, count, received, stop, thread: Some(thread) })
    }

    /// A server that answers every request with a valid summary naming the request number.
    pub fn summaries() -> std::io::Result<Self> {
        Self::start(|n, _| {
            MockReply::Completion(format!(
                "Summary: The user enjoys thoughtful dramas and clever comedies (answer {n}). They do not enjoy horror."
            ))
        })
    }

    /// Base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Copies of the requests received so far.
    pub fn received(&self) -> Vec<MockRequest> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    stream: TcpStream,
    count: &AtomicUsize,
    received: &Mutex<Vec<MockRequest>>,
    handler: &Handler,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(());
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_lowercase(), v.trim().to_string());
            if k == "content-length" {
                length = v.parse().unwrap_or(0);
            }
            headers.push((k, v));
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let request = MockRequest { path, headers, body: String::from_utf8_lossy(&body).into_owned() };
    let n = count.fetch_add(1, Ordering::SeqCst);
    if let Ok(mut r) = received.lock() {
        r.push(request.clone());
    }
    let mut reply = handler(n, &request);
    let mut stream = stream;
    loop {
        match reply {
            MockReply::Delay(d, next) => {
                std::thread::sleep(d);
                reply = *next;
            }
            MockReply::Close => return Ok(()),
            MockReply::Completion(text) => {
                let body = serde_json::json!({
                    "id": format!("mock-{n}"),
                    "object": "chat.completion",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": request.body.len() / 4, "completion_tokens": text.len() / 4},
                })
                .to_string();
                return respond(&mut stream, 200, None, &body);
            }
            MockReply::Raw(body) => return respond(&mut stream, 200, None, &body),
            MockReply::Status { status, retry_after, body } => {
                return respond(&mut stream, status, retry_after.as_deref(), &body);
            }
        }
    }
}

fn respond(stream: &mut TcpStream, status: u16, retry_after: Option<&str>, body: &str) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} Mock\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(r) = retry_after {
        head.push_str(&format!("Retry-After: {r}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

/// Seeded fault rates of [`MockServer::faulty`]: each request draws at most one fault, with these
/// probabilities, from a generator seeded by `seed` and the request number.
///
/// ```
/// use tears_summarize::mock::{FaultPlan, MockServer};
/// use tears_summarize::{LlmClient, LlmConfig, Message};
/// let plan = FaultPlan { too_many: 0.5, ..FaultPlan::none(7) };
/// let (server, tally) = MockServer::faulty(plan)?;
/// let mut config = LlmConfig::new(&server.url(), "mock");
/// config.max_attempts = 20;
/// config.retry_after_max = std::time::Duration::ZERO;
/// let client = LlmClient::new(config)?;
/// assert!(client.chat(&[Message::new("user", "x")])?.starts_with("Summary:"));
/// assert_eq!(tally.faults() + 1, server.requests());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct FaultPlan {
    /// Seed of the fault draws.
    pub seed: u64,
    /// 429 with `Retry-After: 0`.
    pub too_many: f64,
    /// 500 or 503.
    pub server_error: f64,
    /// A delay of `slow_by` before a valid answer (past a client's timeout when it is shorter).
    pub slow: f64,
    /// How long a slow answer waits.
    pub slow_by: Duration,
    /// A 200 whose body is truncated JSON or an HTML page.
    pub malformed: f64,
    /// A completion that is empty or too short to be a summary.
    pub bad_answer: f64,
    /// The connection closed without an answer.
    pub close: f64,
    /// The share of *users* (decided by a hash of the prompt, so always the same users) whose
    /// every request is answered 400 "context length exceeded".
    pub refuse_users: f64,
}

impl FaultPlan {
    /// No faults.
    pub fn none(seed: u64) -> Self {
        FaultPlan {
            seed,
            too_many: 0.0,
            server_error: 0.0,
            slow: 0.0,
            slow_by: Duration::ZERO,
            malformed: 0.0,
            bad_answer: 0.0,
            close: 0.0,
            refuse_users: 0.0,
        }
    }

    /// Whether `request` is from a user this plan refuses (400 on every request).
    pub fn refuses(&self, request: &MockRequest) -> bool {
        let last = request.json()["messages"].as_array().and_then(|m| m.last()).cloned().unwrap_or_default();
        let text = last.get("content").and_then(|c| c.as_str()).unwrap_or_default().to_string();
        let h = crate::prompt::stable_hash(&[text.as_str()]);
        let x = u64::from_str_radix(&h, 16).unwrap_or(0);
        (x % 1_000_000) as f64 / 1_000_000.0 < self.refuse_users
    }
}

/// What a [`MockServer::faulty`] server did, by kind.
#[derive(Debug, Default)]
pub struct FaultTally {
    /// Valid summaries sent.
    pub answered: AtomicUsize,
    /// 429s.
    pub too_many: AtomicUsize,
    /// 500s and 503s.
    pub server_error: AtomicUsize,
    /// Slow answers.
    pub slow: AtomicUsize,
    /// Malformed 200s.
    pub malformed: AtomicUsize,
    /// Empty or too-short answers.
    pub bad_answer: AtomicUsize,
    /// Closed connections.
    pub close: AtomicUsize,
    /// 400s for refused users.
    pub refused: AtomicUsize,
}

impl FaultTally {
    /// Requests that drew a fault (slow answers excluded: they are answered).
    pub fn faults(&self) -> usize {
        [&self.too_many, &self.server_error, &self.malformed, &self.bad_answer, &self.close, &self.refused]
            .iter()
            .map(|c| c.load(Ordering::SeqCst))
            .sum()
    }
}

impl MockServer {
    /// A server answering valid summaries except for the seeded faults of `plan`; the tally
    /// counts what it sent.
    pub fn faulty(plan: FaultPlan) -> std::io::Result<(Self, Arc<FaultTally>)> {
        use rand::{Rng, SeedableRng};
        let tally = Arc::new(FaultTally::default());
        let t = tally.clone();
        let server = Self::start(move |n, request| {
            let bump = |c: &AtomicUsize| c.fetch_add(1, Ordering::SeqCst);
            if plan.refuses(request) {
                bump(&t.refused);
                return MockReply::Status {
                    status: 400,
                    retry_after: None,
                    body: r#"{"error": {"message": "This model's maximum context length is 8192 tokens", "code": "context_length_exceeded"}}"#.into(),
                };
            }
            let mut rng = rand::rngs::StdRng::seed_from_u64(plan.seed ^ (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut x: f64 = rng.random();
            let mut hit = |p: f64| {
                let h = x < p;
                x -= p;
                h
            };
            let summary = || {
                MockReply::Completion(format!(
                    "Summary: The user enjoys thoughtful dramas and clever comedies (answer {n}). They do not enjoy horror."
                ))
            };
            if hit(plan.too_many) {
                bump(&t.too_many);
                MockReply::Status {
                    status: 429,
                    retry_after: Some("0".into()),
                    body: r#"{"error": "slow down"}"#.into(),
                }
            } else if hit(plan.server_error) {
                bump(&t.server_error);
                let status = if n % 2 == 0 { 500 } else { 503 };
                MockReply::Status { status, retry_after: None, body: r#"{"error": "upstream failed"}"#.into() }
            } else if hit(plan.slow) {
                bump(&t.slow);
                MockReply::Delay(plan.slow_by, Box::new(summary()))
            } else if hit(plan.malformed) {
                bump(&t.malformed);
                MockReply::Raw(if n % 2 == 0 {
                    r#"{"id": "x", "choices": [{"message": {"content": "Summary: cut"#.into()
                } else {
                    "<html><body>502 Bad Gateway</body></html>".into()
                })
            } else if hit(plan.bad_answer) {
                bump(&t.bad_answer);
                MockReply::Completion(if n % 2 == 0 { String::new() } else { "Summary: ok.".into() })
            } else if hit(plan.close) {
                bump(&t.close);
                MockReply::Close
            } else {
                bump(&t.answered);
                summary()
            }
        })?;
        Ok((server, tally))
    }
}
