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
