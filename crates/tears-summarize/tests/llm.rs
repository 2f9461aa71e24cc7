//! The chat-completions client against the in-process mock server (127.0.0.1 only): retries,
//! backoff bounds, final errors, the resumable cache, and that the API key never leaks.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tears_data::WindowEntry;
use tears_summarize::mock::{MockReply, MockServer};
use tears_summarize::{
    ApiKey, BatchOptions, History, LlmClient, LlmConfig, LlmSummarizer, Message, PromptTemplate, SummarizeError,
    SummaryCache, summarize_all,
};

const KEY: &str = "sk-test-SECRET-0123456789";

fn config(server: &MockServer) -> LlmConfig {
    let mut c = LlmConfig::new(&server.url(), "mock-model");
    c.api_key = Some(ApiKey::new(KEY));
    c.request_timeout = Duration::from_millis(300);
    c.connect_timeout = Duration::from_millis(300);
    c.max_attempts = 4;
    c.backoff_base = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(200);
    c.retry_after_max = Duration::from_secs(2);
    c
}

fn ask(client: &LlmClient) -> Result<String, SummarizeError> {
    client.chat(&[Message::new("user", "hello")])
}

fn err_status(status: u16) -> MockReply {
    MockReply::Status { status, retry_after: None, body: format!("{{\"error\": \"status {status}\"}}") }
}

fn history(user: u64) -> History {
    History::from_window(&[WindowEntry {
        item_id: user,
        item: None,
        title: format!("Film number {user}"),
        year: None,
        genres: vec!["Drama".into()],
        rating: 4.0,
        timestamp: 0,
    }])
}

#[test]
fn request_has_the_protocol_fields_and_the_key_only_in_the_header() {
    let server = MockServer::summaries().expect("server");
    let client = LlmClient::new(config(&server)).expect("client");
    let answer = ask(&client).expect("answer");
    assert!(answer.starts_with("Summary:"));
    let r = &server.received()[0];
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    let v = r.json();
    assert_eq!(v["model"], "mock-model");
    assert_eq!(v["temperature"], 0.0);
    assert_eq!(v["max_tokens"], 300);
    assert_eq!(v["seed"], 0);
    assert_eq!(v["messages"][0]["role"], "user");
    assert!(!r.body.contains(KEY));
    assert!(!format!("{client:?}").contains(KEY));
    assert_eq!(client.usage().completions, 1);
}

#[test]
fn retry_after_on_429_is_honoured() {
    let server = MockServer::start(|n, _| {
        if n == 0 {
            MockReply::Status { status: 429, retry_after: Some("1".into()), body: "slow down".into() }
        } else {
            MockReply::Completion("Summary: ok".into())
        }
    })
    .expect("server");
    let client = LlmClient::new(config(&server)).expect("client");
    let t = Instant::now();
    assert_eq!(ask(&client).expect("answer"), "Summary: ok");
    let waited = t.elapsed();
    assert!(waited >= Duration::from_millis(950), "Retry-After 1 s not honoured: {waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    assert_eq!(server.requests(), 2);
}

#[test]
fn five_hundreds_are_retried_with_bounded_exponential_backoff() {
    let server = MockServer::start(|_, _| err_status(500)).expect("server");
    let client = LlmClient::new(config(&server)).expect("client");
    let t = Instant::now();
    let err = ask(&client).expect_err("must fail");
    let waited = t.elapsed();
    // 3 backoffs, each in [cap/2, cap] with caps 20, 40, 80 ms: 70..140 ms of sleeping.
    assert!(waited >= Duration::from_millis(70), "{waited:?}");
    assert!(waited < Duration::from_millis(140 + 500), "{waited:?}");
    assert_eq!(server.requests(), 4);
    match &err {
        SummarizeError::RetriesExhausted { attempts: 4, last } => assert!(last.contains("500"), "{last}"),
        other => panic!("unexpected {other:?}"),
    }
    let c = config(&server);
    for retry in 0..10 {
        assert!(c.backoff_cap(retry) <= c.backoff_max);
    }
}

#[test]
fn timeouts_are_retried_then_succeed() {
    let server = MockServer::start(|n, _| {
        if n < 2 {
            MockReply::Delay(Duration::from_millis(800), Box::new(MockReply::Completion("Summary: late".into())))
        } else {
            MockReply::Completion("Summary: fast".into())
        }
    })
    .expect("server");
    let client = LlmClient::new(config(&server)).expect("client");
    let t = Instant::now();
    assert_eq!(ask(&client).expect("answer"), "Summary: fast");
    assert_eq!(server.requests(), 3);
    assert!(t.elapsed() < Duration::from_millis(1500), "{:?}", t.elapsed());
}

#[test]
fn dropped_connections_are_retried() {
    let server =
        MockServer::start(|n, _| if n == 0 { MockReply::Close } else { MockReply::Completion("Summary: ok".into()) })
            .expect("server");
    let client = LlmClient::new(config(&server)).expect("client");
    assert_eq!(ask(&client).expect("answer"), "Summary: ok");
    assert_eq!(server.requests(), 2);
}

#[test]
fn other_4xx_fail_at_once_without_the_key() {
    let server = MockServer::start(|_, _| MockReply::Status {
        status: 401,
        retry_after: None,
        body: format!("{{\"error\": {{\"message\": \"Incorrect API key provided: {KEY}\"}}}}"),
    })
    .expect("server");
    let client = LlmClient::new(config(&server)).expect("client");
    let err = ask(&client).expect_err("401");
    assert_eq!(server.requests(), 1);
    assert!(matches!(err, SummarizeError::Http { status: 401, .. }));
    assert!(err.is_fatal());
    let msg = format!("{err} {err:?}");
    assert!(!msg.contains(KEY) && msg.contains("[redacted]"), "{msg}");
}

#[test]
fn malformed_answers_are_retried_then_a_clear_error() {
    // A proxy's HTML page or truncated JSON once: retried like a 5xx, and the next answer is used.
    let server = MockServer::start(|n, _| match n {
        0 => MockReply::Raw("<html>gateway</html>".into()),
        1 => MockReply::Raw("{\"choices\": [{\"message\": {\"content\": \"Summ".into()),
        _ => MockReply::Completion("Summary: ok".into()),
    })
    .expect("server");
    let client = LlmClient::new(config(&server)).expect("client");
    assert_eq!(ask(&client).expect("answer after two malformed ones"), "Summary: ok");
    assert_eq!(server.requests(), 3);
    // Malformed on every attempt: the error says so and quotes the body.
    let server = MockServer::start(|_, _| MockReply::Raw("<html>gateway</html>".into())).expect("server");
    let client = LlmClient::new(config(&server)).expect("client");
    let err = ask(&client).expect_err("malformed");
    assert!(matches!(err, SummarizeError::MalformedResponse { attempts: 4, .. }), "{err:?}");
    assert!(err.to_string().contains("gateway") && !err.is_fatal(), "{err}");
    assert_eq!(server.requests(), 4);
    let server = MockServer::start(|_, _| MockReply::Raw("{\"choices\": []}".into())).expect("server");
    let client = LlmClient::new(config(&server)).expect("client");
    let err = ask(&client).expect_err("no choices");
    assert!(err.to_string().contains("choices[0].message.content"), "{err}");
}

/// Every window of `len` characters of the key.
fn key_pieces(len: usize) -> Vec<&'static str> {
    (0..=KEY.len() - len).map(|i| &KEY[i..i + len]).collect()
}

#[test]
fn no_piece_of_the_key_survives_shortening_at_any_offset() {
    // The server echoes the key after `pad` characters; the request says how many. Error bodies
    // are cut at 300 characters and malformed bodies quoted at 120: put the key across each cut.
    let server = MockServer::start(|_, r| {
        let (kind, pad) =
            r.last_message().split_once(' ').map(|(k, p)| (k.to_string(), p.to_string())).unwrap_or_default();
        let pad: usize = pad.parse().unwrap_or(0);
        let body = format!("{}{KEY} and more text after the key", "x".repeat(pad));
        match kind.as_str() {
            "401" => MockReply::Status { status: 401, retry_after: None, body },
            "400" => MockReply::Status { status: 400, retry_after: None, body },
            "503" => MockReply::Status { status: 503, retry_after: Some("0".into()), body },
            _ => MockReply::Raw(body),
        }
    })
    .expect("server");
    let mut c = config(&server);
    c.max_attempts = 1;
    let client = LlmClient::new(c).expect("client");
    let pieces = key_pieces(6);
    let mut checked = 0;
    for (kind, cut) in [("401", 300usize), ("400", 300), ("503", 300), ("raw", 120)] {
        for pad in cut.saturating_sub(KEY.len() + 5)..=cut + 2 {
            let err = client.chat(&[Message::new("user", format!("{kind} {pad}"))]).expect_err("an error");
            let shown = format!("{err} | {err:?}");
            assert!(!pieces.iter().any(|p| shown.contains(p)), "{kind} pad {pad}: a piece of the key in {shown}");
            checked += 1;
        }
    }
    assert!(checked > 100);
}

#[test]
fn a_huge_retry_after_is_capped_not_a_panic() {
    let server = MockServer::start(|n, _| {
        if n == 0 {
            MockReply::Status { status: 429, retry_after: Some("1e300".into()), body: "slow down".into() }
        } else {
            MockReply::Completion("Summary: ok".into())
        }
    })
    .expect("server");
    let mut c = config(&server);
    c.retry_after_max = Duration::from_millis(30);
    let client = LlmClient::new(c).expect("client");
    assert_eq!(ask(&client).expect("answer"), "Summary: ok");
}

#[test]
fn per_user_refusals_fail_only_those_users_and_are_written_beside_the_cache() {
    let refuse = Arc::new(AtomicUsize::new(1));
    let server = {
        let refuse = refuse.clone();
        MockServer::start(move |_, r| {
            let m = r.last_message();
            if refuse.load(Ordering::SeqCst) == 1 && (m.contains("Film number 3\n") || m.contains("Film number 5\n")) {
                MockReply::Status {
                    status: 400,
                    retry_after: None,
                    body: "{\"error\": \"context length exceeded\"}".into(),
                }
            } else {
                MockReply::Completion("Summary: The user enjoys quiet dramas about families and friendship.".into())
            }
        })
        .expect("server")
    };
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("s.jsonl");
    let jobs: Vec<(u64, History)> = (1..=8).map(|u| (u, history(u))).collect();
    let s = LlmSummarizer::new(LlmClient::new(config(&server)).expect("client"), PromptTemplate::movies());
    let options = BatchOptions { concurrency: 2, ..BatchOptions::default() };
    let mut cache = SummaryCache::open(&path).expect("cache");
    let report = summarize_all(&s, &jobs, &mut cache, &options);
    assert!(report.stopped.is_none(), "{report:?}");
    assert_eq!(report.summarized, 6);
    let mut failed: Vec<u64> = report.failed.iter().map(|(u, _)| *u).collect();
    failed.sort_unstable();
    assert_eq!(failed, [3, 5]);
    assert!(report.failed.iter().all(|(_, e)| matches!(e, SummarizeError::Http { status: 400, .. })));
    let file = report.failures_file.clone().expect("a failures file");
    assert_eq!(file, cache.failures_path());
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&file)
        .expect("failures")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|v| v["status"] == 400 && v["kind"] == "http"));
    assert!(lines.iter().all(|v| v["error"].as_str().is_some_and(|e| e.contains("context length"))));
    // Fixed on the server's side: the rerun asks only the two, and the failures file goes away.
    refuse.store(0, Ordering::SeqCst);
    let before = server.requests();
    let report = summarize_all(&s, &jobs, &mut cache, &options);
    assert_eq!((report.cached, report.summarized, report.failed.len()), (6, 2, 0));
    assert_eq!(server.requests() - before, 2);
    assert!(report.failures_file.is_none() && !file.exists());
}

#[test]
fn a_request_refused_for_everyone_stops_the_batch_early() {
    let server = MockServer::start(|_, _| MockReply::Status {
        status: 400,
        retry_after: None,
        body: "{\"error\": \"unknown parameter: seed\"}".into(),
    })
    .expect("server");
    let dir = tempfile::tempdir().expect("tmp");
    let mut cache = SummaryCache::open(&dir.path().join("s.jsonl")).expect("cache");
    let jobs: Vec<(u64, History)> = (1..=60).map(|u| (u, history(u))).collect();
    let s = LlmSummarizer::new(LlmClient::new(config(&server)).expect("client"), PromptTemplate::movies());
    let options = BatchOptions { concurrency: 2, ..BatchOptions::default() };
    let report = summarize_all(&s, &jobs, &mut cache, &options);
    match &report.stopped {
        Some(e @ SummarizeError::Refused { users: 8, .. }) => {
            assert!(e.is_fatal() && e.to_string().contains("unknown parameter"), "{e}")
        }
        other => panic!("expected a stop after 8 refusals, got {other:?}"),
    }
    // Workers may have a few more requests in flight when the eighth refusal arrives.
    assert!(server.requests() < 20, "{} requests for 60 users", server.requests());
}

#[test]
fn a_server_that_is_down_is_found_out_after_a_few_attempts() {
    // A port nobody listens on: every connection is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    for concurrency in [1, 3] {
        let mut c = LlmConfig::new(&format!("http://127.0.0.1:{port}"), "mock-model");
        c.backoff_base = Duration::from_millis(10);
        let s = LlmSummarizer::new(LlmClient::new(c).expect("client"), PromptTemplate::movies());
        let dir = tempfile::tempdir().expect("tmp");
        let mut cache = SummaryCache::open(&dir.path().join("s.jsonl")).expect("cache");
        let jobs: Vec<(u64, History)> = (1..=40).map(|u| (u, history(u))).collect();
        let options = BatchOptions { concurrency, ..BatchOptions::default() };
        let report = summarize_all(&s, &jobs, &mut cache, &options);
        match &report.stopped {
            Some(e @ SummarizeError::ServerDown { attempts, .. }) => {
                assert!(*attempts >= 4 && e.to_string().contains("is not answering"), "{e}");
                assert!(e.to_string().contains(&port.to_string()), "{e}");
            }
            other => panic!("concurrency {concurrency}: expected ServerDown, got {other:?}"),
        }
        // Four refused connections in a row, plus at most one more per other worker.
        let attempts = s.client.usage().attempts;
        assert!((4..=3 + concurrency as u64).contains(&attempts), "{attempts} attempts");
        assert!(report.summarized == 0 && report.failed.is_empty(), "{report:?}");
    }
}

#[test]
fn the_cache_is_locked_while_a_run_writes_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("s.jsonl");
    let cache = SummaryCache::open(&path).expect("first writer");
    let err = SummaryCache::open(&path).expect_err("second writer");
    assert!(matches!(err, SummarizeError::Locked { .. }) && err.is_fatal(), "{err:?}");
    assert!(err.to_string().contains("s.jsonl") && err.to_string().contains("another run"), "{err}");
    drop(cache);
    SummaryCache::open(&path).expect("free again once the first is closed");
}

#[test]
fn only_a_last_line_without_its_newline_counts_as_torn() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("s.jsonl");
    let record = |u: u64| {
        format!(
            r#"{{"user":{u},"text":"Summary: x","model":"m","prompt_hash":"h","created_at":"2026-01-01T00:00:00Z"}}"#
        )
    };
    // A complete but invalid last line is an error, and the file is left as it was.
    let text = format!("{}\n{{\"user\": 2, \"text\": \"Summ\n", record(1));
    std::fs::write(&path, &text).expect("write");
    match SummaryCache::open(&path) {
        Err(SummarizeError::Cache { line: 2, .. }) => {}
        other => panic!("expected an error on line 2, got {other:?}"),
    }
    assert_eq!(std::fs::read_to_string(&path).expect("read"), text);
    // A whole record without its newline is kept, and the next append starts a new line.
    std::fs::write(&path, format!("{}\n{}", record(1), record(2))).expect("write");
    let mut cache = SummaryCache::open(&path).expect("open");
    assert_eq!(cache.len(), 2);
    cache
        .append(tears_summarize::CacheRecord {
            user: 3,
            text: "Summary: y".into(),
            model: "m".into(),
            prompt_hash: "h".into(),
            created_at: tears_summarize::now_rfc3339(),
        })
        .expect("append");
    drop(cache);
    let text = std::fs::read_to_string(&path).expect("read");
    assert_eq!(text.lines().count(), 3, "{text}");
    assert_eq!(SummaryCache::open(&path).expect("reopen").len(), 3);
    // A torn last line (no newline, not a record) is cut.
    std::fs::write(&path, format!("{}\n{{\"user\": 2, \"te", record(1))).expect("write");
    assert_eq!(SummaryCache::open(&path).expect("open").len(), 1);
    assert_eq!(std::fs::read_to_string(&path).expect("read"), format!("{}\n", record(1)));
}

#[test]
fn empty_and_invalid_answers_are_re_asked_a_bounded_number_of_times() {
    let server = MockServer::start(|_, _| MockReply::Completion("   ".into())).expect("server");
    let s = LlmSummarizer::new(LlmClient::new(config(&server)).expect("client"), PromptTemplate::movies());
    let err = tears_summarize::Summarizer::summarize(&s, &history(1)).expect_err("empty");
    assert_eq!(server.requests(), 3, "first ask + 2 re-asks");
    match err {
        SummarizeError::InvalidAnswer { attempts: 3, reason } => assert!(reason.contains("empty"), "{reason}"),
        other => panic!("unexpected {other:?}"),
    }
    // A title in the answer is rejected, and the re-ask carries the reason in the same chat.
    let server = MockServer::start(|n, _| {
        MockReply::Completion(if n == 0 {
            "Summary: The user loved Film number 5 and other quiet dramas about family.".into()
        } else {
            "Summary: The user loves quiet dramas about family and growing up.".into()
        })
    })
    .expect("server");
    let mut s = LlmSummarizer::new(LlmClient::new(config(&server)).expect("client"), PromptTemplate::movies());
    s.rules.reject_titles = true;
    let text = tears_summarize::Summarizer::summarize(&s, &history(5)).expect("second answer");
    assert!(text.starts_with("Summary: The user loves quiet"));
    let reask = &server.received()[1];
    assert!(reask.last_message().contains("names the title"), "{}", reask.last_message());
    assert_eq!(reask.json()["messages"].as_array().map(Vec::len), Some(4));
}

#[test]
fn interrupted_run_resumes_without_repeating_finished_users() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("summaries.jsonl");
    let per_user: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>> = Arc::default();
    let failing = Arc::new(AtomicUsize::new(1));
    let server = {
        let (per_user, failing) = (per_user.clone(), failing.clone());
        MockServer::start(move |_, r| {
            let last = r.last_message();
            let title = last.lines().find(|l| l.starts_with("Movie Title:")).unwrap_or_default().to_string();
            if let Ok(mut m) = per_user.lock() {
                *m.entry(title.clone()).or_default() += 1;
            }
            // While `failing` is set, users 7.. fail with 401 (a fatal error, as after a revoked key).
            let n: u64 = title.rsplit(' ').next().and_then(|x| x.parse().ok()).unwrap_or(0);
            if failing.load(Ordering::SeqCst) == 1 && n >= 7 {
                err_status(401)
            } else {
                MockReply::Completion(format!("Summary: The user enjoys quiet dramas; this is user {n}."))
            }
        })
        .expect("server")
    };
    let jobs: Vec<(u64, History)> = (1..=12).map(|u| (u, history(u))).collect();
    let summarizer = LlmSummarizer::new(LlmClient::new(config(&server)).expect("client"), PromptTemplate::movies());
    let options = BatchOptions { concurrency: 1, ..BatchOptions::default() };
    {
        let mut cache = SummaryCache::open(&path).expect("cache");
        let report = summarize_all(&summarizer, &jobs, &mut cache, &options);
        assert!(matches!(report.stopped, Some(SummarizeError::Http { status: 401, .. })), "{report:?}");
        assert_eq!(report.summarized, 6);
    }
    // Simulate a crash in the middle of a write: a torn last line.
    let mut bytes = std::fs::read(&path).expect("read");
    bytes.extend_from_slice(b"{\"user\": 99, \"text\": \"Summ");
    std::fs::write(&path, &bytes).expect("write");
    let before = server.requests();
    failing.store(0, Ordering::SeqCst);
    let mut cache = SummaryCache::open(&path).expect("reopen ignores the torn line");
    assert_eq!(cache.len(), 6);
    let report = summarize_all(&summarizer, &jobs, &mut cache, &BatchOptions { concurrency: 3, ..options });
    assert!(report.stopped.is_none() && report.failed.is_empty(), "{report:?}");
    assert_eq!((report.cached, report.summarized), (6, 6));
    assert_eq!(server.requests() - before, 6, "only the unfinished users are asked");
    let counts = per_user.lock().expect("lock").clone();
    for u in 1..=6 {
        assert_eq!(counts.get(&format!("Movie Title: Film number {u}")), Some(&1), "user {u} asked once");
    }
    let stored = tears_data::StoredSummaries::load(&path).expect("the cache is valid JSONL");
    assert_eq!(stored.len(), 12);
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(!text.contains(KEY));
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("json line");
        for field in ["user", "text", "model", "prompt_hash", "created_at"] {
            assert!(v.get(field).is_some(), "{field} missing in {line}");
        }
    }
}

#[test]
fn bounded_concurrency() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let server = {
        let (in_flight, peak) = (in_flight.clone(), peak.clone());
        MockServer::start(move |_, _| {
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(30));
            in_flight.fetch_sub(1, Ordering::SeqCst);
            MockReply::Completion("Summary: The user enjoys quiet dramas about families.".into())
        })
        .expect("server")
    };
    let dir = tempfile::tempdir().expect("tmp");
    let mut cache = SummaryCache::open(&dir.path().join("s.jsonl")).expect("cache");
    let jobs: Vec<(u64, History)> = (1..=20).map(|u| (u, history(u))).collect();
    let s = LlmSummarizer::new(LlmClient::new(config(&server)).expect("client"), PromptTemplate::movies());
    let report = summarize_all(&s, &jobs, &mut cache, &BatchOptions { concurrency: 3, ..Default::default() });
    assert_eq!(report.summarized, 20);
    let p = peak.load(Ordering::SeqCst);
    assert!((2..=3).contains(&p), "peak in flight {p}");
}

/// Runs against a real server: `TEARS_LLM_BASE_URL`, `TEARS_LLM_MODEL` (default `gpt-4o-mini`),
/// key in `OPENAI_API_KEY` when needed.
#[test]
#[ignore = "needs a real server: set TEARS_LLM_BASE_URL"]
fn real_server() {
    let Ok(url) = std::env::var("TEARS_LLM_BASE_URL") else {
        eprintln!("skipping: TEARS_LLM_BASE_URL is not set");
        return;
    };
    let model = std::env::var("TEARS_LLM_MODEL").unwrap_or_else(|_| "gpt-4o-mini".into());
    let mut c = LlmConfig::new(&url, &model);
    c.api_key = ApiKey::from_env("OPENAI_API_KEY");
    let s = LlmSummarizer::new(LlmClient::new(c).expect("client"), PromptTemplate::movies());
    let text = tears_summarize::Summarizer::summarize(&s, &history(1)).expect("summary");
    assert!(text.starts_with("Summary:"), "{text}");
}

#[test]
fn llm_edits_parse_strictly_and_rewrite_in_the_same_chat() {
    let server = MockServer::start(|n, _| {
        MockReply::Completion(match n {
            0 => "Favorite: Jazz\nLeast Favorite: Horror".into(),
            1 => "Favorite: [Comedy]\nLeast Favorite: [Horror]".into(),
            _ => "Summary: The user enjoys horror and its dread; they do not enjoy comedy or light banter.".into(),
        })
    })
    .expect("server");
    let client = LlmClient::new(config(&server)).expect("client");
    let genres: Vec<String> = ["Comedy", "Horror", "Drama"].iter().map(|s| s.to_string()).collect();
    let summary = "Summary: The user enjoys comedy and light banter; they do not enjoy horror or its dread.";
    let swap = tears_summarize::edit::llm_swap_rewrite(&client, summary, &genres, 2).expect("swap");
    assert_eq!((swap.favourite.as_str(), swap.least_favourite.as_str()), ("Comedy", "Horror"));
    assert!(swap.edit.text.starts_with("Summary: The user enjoys horror"));
    assert_eq!(swap.edit.record.kind, "llm_swap_rewrite");
    let received = server.received();
    assert_eq!(received.len(), 3);
    assert!(received[1].last_message().contains("not one of the genres"), "{}", received[1].last_message());
    // The rewrite request continues the chat: question, accepted answer, rewrite request.
    let rewrite = received[2].json();
    assert_eq!(rewrite["messages"].as_array().map(Vec::len), Some(3));
    assert_eq!(rewrite["messages"][1]["content"], "Favorite: [Comedy]\nLeast Favorite: [Horror]");

    // Unknown genres on every try: an error, so the caller discards the user.
    let server = MockServer::start(|_, _| MockReply::Completion("Favorite: Polka\nLeast Favorite: Jazz".into()))
        .expect("server");
    let client = LlmClient::new(config(&server)).expect("client");
    let err = tears_summarize::edit::llm_swap_rewrite(&client, summary, &genres, 1).expect_err("unknown");
    assert!(matches!(err, SummarizeError::InvalidAnswer { attempts: 2, .. }), "{err:?}");

    let server = MockServer::start(|n, _| {
        MockReply::Completion(if n == 0 { "Heat".into() } else { "A meticulous heist goes wrong.".into() })
    })
    .expect("server");
    let client = LlmClient::new(config(&server)).expect("client");
    let d = tears_summarize::edit::llm_describe_item(&client, "Heat", &genres, 2).expect("description");
    assert_eq!(d, "A meticulous heist goes wrong");
}
