//! A bounded load test of a running server: `clients` concurrent clients, each sending a fixed
//! list of requests one after another (valid and malformed, [`mixed_plan`]), every request under
//! a timeout; the answers and latencies come back for checking ([`Report`]). The test suite
//! runs it on loopback; `examples/scrutable_ui.rs --load-test` runs it against a real model.
//!
//! The client is a minimal HTTP/1.1 one (one connection per request, `Connection: close`), so
//! that measuring the server needs no HTTP client library.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The path (`/api/recommend`).
    pub path: String,
    /// The body (JSON, or deliberately not).
    pub body: Option<String>,
    /// Whether the server should accept it (`false`: a 4xx is the right answer).
    pub valid: bool,
}

/// What one request got.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The client that sent it.
    pub client: usize,
    /// Its place in the client's plan.
    pub index: usize,
    /// The request.
    pub call: Call,
    /// The HTTP status (0 when the request failed or timed out).
    pub status: u16,
    /// The response body.
    pub body: Vec<u8>,
    /// Time from connecting to the last byte.
    pub latency: Duration,
    /// Why there is no status, when there is none.
    pub failure: Option<String>,
}

/// Every outcome of a run and its wall time.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The outcomes, by client then plan order.
    pub outcomes: Vec<Outcome>,
    /// Wall time of the whole run.
    pub wall: Duration,
}

impl Report {
    /// The latencies of the outcomes `keep` accepts, sorted.
    pub fn latencies(&self, keep: impl Fn(&Outcome) -> bool) -> Vec<Duration> {
        let mut out: Vec<Duration> = self.outcomes.iter().filter(|o| keep(o)).map(|o| o.latency).collect();
        out.sort_unstable();
        out
    }

    /// Valid requests that did not get a 200.
    pub fn failed_valid(&self) -> Vec<&Outcome> {
        self.outcomes.iter().filter(|o| o.call.valid && o.status != 200).collect()
    }

    /// Malformed requests that did not get a 4xx.
    pub fn misanswered_invalid(&self) -> Vec<&Outcome> {
        self.outcomes.iter().filter(|o| !o.call.valid && !(400..500).contains(&o.status)).collect()
    }
}

/// The `q`-quantile (0 to 1, nearest rank) of sorted `latencies`.
pub fn percentile(latencies: &[Duration], q: f64) -> Option<Duration> {
    if latencies.is_empty() {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * latencies.len() as f64).ceil() as usize;
    latencies.get(rank.saturating_sub(1).min(latencies.len() - 1)).copied()
}

/// A plan of `clients × per_client` calls: three valid `POST /api/recommend` calls out of four
/// (the `users` in turn with their stored summaries, or a typed sentence with no history,
/// alpha cycling over 0, 0.25, ..., 1), and one malformed (bad JSON, k = 1000, alpha = 2, an
/// unknown user, a non-numeric user id).
pub fn mixed_plan(users: &[u64], clients: usize, per_client: usize) -> Vec<Vec<Call>> {
    const SENTENCES: [&str; 3] = [
        "I love animated musicals and hate gore.",
        "Quiet dramas and westerns. No horror, please.",
        "Lately I want light comedies and some science fiction.",
    ];
    let bad: [(&str, &str, &str); 5] = [
        ("POST", "/api/recommend", "{\"summary\": \"Westerns.\", \"k\": "),
        ("POST", "/api/recommend", "{\"summary\": \"Westerns.\", \"k\": 1000}"),
        ("POST", "/api/recommend", "{\"summary\": \"Westerns.\", \"alpha\": 2}"),
        ("POST", "/api/recommend", "{\"user\": 18446744073709551615, \"k\": 5}"),
        ("GET", "/api/users/not-a-number", ""),
    ];
    (0..clients)
        .map(|c| {
            (0..per_client)
                .map(|i| {
                    let n = c * per_client + i;
                    if i % 4 == 3 {
                        let (method, path, body) = bad[n % bad.len()];
                        let body = (!body.is_empty()).then(|| body.to_string());
                        return Call { method, path: path.to_string(), body, valid: false };
                    }
                    let alpha = (n % 5) as f32 / 4.0;
                    let body = match users.get(n % users.len().max(1)) {
                        Some(u) if n % 3 != 2 => serde_json::json!({ "user": u, "alpha": alpha, "k": 10 }),
                        _ => serde_json::json!({ "summary": SENTENCES[n % SENTENCES.len()], "alpha": alpha, "k": 10 }),
                    };
                    Call { method: "POST", path: "/api/recommend".into(), body: Some(body.to_string()), valid: true }
                })
                .collect()
        })
        .collect()
}

/// Sends one request and reads the whole answer: (status, body).
///
/// # Errors
/// A failed connection, a timeout, an answer that is not HTTP/1.1.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    timeout: Duration,
) -> std::io::Result<(u16, Vec<u8>)> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let body = body.unwrap_or("");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        parse_response(&raw)
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{method} {path}: no answer in {timeout:?}"))
    })?
}

fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

/// (status, body) of a raw HTTP/1.1 response (plain or chunked body).
fn parse_response(raw: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| invalid("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| invalid("headers are not UTF-8"))?;
    let status: u16 =
        head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| invalid("no status code"))?;
    let body = &raw[split + 4..];
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if !chunked {
        return Ok((status, body.to_vec()));
    }
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n").ok_or_else(|| invalid("a truncated chunk"))?;
        let size = std::str::from_utf8(&rest[..line_end]).map_err(|_| invalid("a bad chunk size"))?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| invalid("a bad chunk size"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok((status, out));
        }
        let chunk = rest.get(..size).ok_or_else(|| invalid("a truncated chunk"))?;
        out.extend_from_slice(chunk);
        rest = rest.get(size + 2..).ok_or_else(|| invalid("a truncated chunk"))?;
    }
}

/// Runs `plans` (one per client, all clients at once) against `addr`, each request under
/// `timeout`.
pub async fn run(addr: SocketAddr, plans: Vec<Vec<Call>>, timeout: Duration) -> Report {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (client, plan) in plans.into_iter().enumerate() {
        tasks.spawn(async move {
            let mut out = Vec::with_capacity(plan.len());
            for (index, call) in plan.into_iter().enumerate() {
                let t = Instant::now();
                let answer = request(addr, call.method, &call.path, call.body.as_deref(), timeout).await;
                let latency = t.elapsed();
                let (status, body, failure) = match answer {
                    Ok((s, b)) => (s, b, None),
                    Err(e) => (0, Vec::new(), Some(e.to_string())),
                };
                out.push(Outcome { client, index, call, status, body, latency, failure });
            }
            out
        });
    }
    let mut outcomes = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(o) => outcomes.extend(o),
            Err(e) => tracing::error!(%e, "a load-test client failed"),
        }
    }
    outcomes.sort_by_key(|o| (o.client, o.index));
    Report { outcomes, wall: started.elapsed() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_parse_plain_and_chunked() {
        let plain = b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(parse_response(plain).ok(), Some((404, b"{}".to_vec())));
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).ok(), Some((200, b"abcde".to_vec())));
        assert!(parse_response(b"garbage").is_err());
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let l: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&l, 0.5), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&l, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&l, 1.0), Some(Duration::from_millis(100)));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn a_mixed_plan_has_one_malformed_call_in_four() {
        let plan = mixed_plan(&[1, 2], 3, 8);
        assert_eq!(plan.len(), 3);
        assert!(plan.iter().all(|p| p.len() == 8 && p.iter().filter(|c| !c.valid).count() == 2));
    }
}
