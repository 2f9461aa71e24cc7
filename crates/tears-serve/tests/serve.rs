//! The server on loopback with a tiny TEARS-Mult-VAE trained on the synthetic fixture of the
//! tears-model suites (template summaries, the hashing encoder): the page and its assets, the
//! API against the library's own answers, every limit and error as a JSON 4xx, a bounded load
//! test, and the page driven end to end in Chromium through chromedriver (WebDriver).

#[path = "../../tears-model/tests/common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{TestAutodiff, TestBackend, informative, multvae_dir};
use serde_json::{Value, json};
use tears_model::recommend::{ProfileInput, Request, ScrutableModel};
use tears_model::{BackboneChoice, TearsConfig, TearsTrainConfig};
use tears_serve::load::{self, Call};
use tears_serve::{Limits, Server, users_from_split};
use tears_vae::RunOptions;

const TIMEOUT: Duration = Duration::from_secs(30);

/// A TEARS-Mult-VAE trained for three epochs on the fixture, saved once.
fn model_dir() -> &'static PathBuf {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        let f = informative();
        let out = f.path("serve-tears");
        let config = TearsConfig { backbone: BackboneChoice::MultVae, ..TearsConfig::default() };
        let train = TearsTrainConfig { epochs: 3, patience: None, batch_size: 128, ..TearsTrainConfig::default() };
        let run = RunOptions { out_dir: Some(out.clone()), resume: false, progress: false, ..RunOptions::default() };
        tears_model::fit::<TestAutodiff>(config, &train, &f.inputs(Some(multvae_dir(f))), &run, &Default::default())
            .expect("train TEARS");
        out
    })
}

fn open_model() -> ScrutableModel {
    ScrutableModel::open::<TestBackend>(model_dir(), &Default::default(), &Default::default()).expect("open the model")
}

/// The server, on its own runtime thread for the whole test process.
fn server() -> &'static (SocketAddr, Server) {
    static S: OnceLock<(SocketAddr, Server)> = OnceLock::new();
    S.get_or_init(|| {
        let f = informative();
        let users = users_from_split(&f.split, Some(&f.summaries.profiles));
        let limits = Limits { workers: 2, ..Limits::default() };
        let server = Server::new(open_model(), users, limits).expect("a server");
        let router = server.router();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
                tx.send(listener.local_addr().expect("address")).expect("send the address");
                tears_serve::serve(listener, router, std::future::pending()).await.expect("serve");
            });
        });
        let addr = rx.recv_timeout(Duration::from_secs(30)).expect("the server started");
        (addr, server)
    })
}

async fn call(method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let (addr, _) = server();
    let (status, bytes) = load::request(*addr, method, path, body, TIMEOUT).await.expect("an answer");
    let value =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, value)
}

async fn post(path: &str, body: &Value) -> (u16, Value) {
    call("POST", path, Some(&body.to_string())).await
}

fn ids(answer: &Value) -> Vec<u64> {
    answer["items"].as_array().expect("items").iter().map(|i| i["item"].as_u64().expect("an item id")).collect()
}

/// The library's answer to the request an API body describes.
fn reference(body: &Value) -> Vec<u64> {
    let (_, server) = server();
    let user = body["user"].as_u64().and_then(|id| server.users().iter().find(|u| u.id == id));
    let summary = body["summary"].as_str().map(str::to_string).or_else(|| user.and_then(|u| u.summary.clone()));
    let request = Request {
        profile: ProfileInput::Summary(summary.expect("a summary")),
        history: user.map(|u| u.ratings()).unwrap_or_default(),
        alpha: body["alpha"].as_f64().map(|a| a as f32),
        k: body["k"].as_u64().map_or(10, |k| k as usize),
        explain: false,
    };
    server.model().recommend(&request).expect("recommend").items.iter().map(|i| i.item).collect()
}

fn a_user_with_a_summary() -> (u64, String) {
    let (_, server) = server();
    let u = server.users().iter().find(|u| u.summary.is_some() && u.favourite.is_some()).expect("a user");
    (u.id, u.summary.clone().expect("a summary"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_assets_are_served_from_the_binary() {
    let (addr, _) = server();
    let (status, html) = load::request(*addr, "GET", "/", None, TIMEOUT).await.expect("the page");
    let html = String::from_utf8_lossy(&html);
    assert_eq!(status, 200);
    assert!(html.contains("id=\"summary\"") && html.contains("id=\"alpha\"") && html.contains("/app.js"), "{html}");
    for path in ["/app.js", "/style.css"] {
        let (status, body) = load::request(*addr, "GET", path, None, TIMEOUT).await.expect("an asset");
        assert_eq!(status, 200, "{path}");
        let text = String::from_utf8_lossy(&body);
        // Works offline: nothing is fetched from another host.
        assert!(!text.contains("http://") && !text.contains("https://"), "{path} names another host");
    }
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_and_users_describe_the_model_and_the_split() {
    let f = informative();
    let (status, info) = call("GET", "/api/info", None).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!((info["kind"].as_str(), info["backbone"].as_str()), (Some("tears"), Some("multvae")));
    assert_eq!(info["items"].as_u64(), Some(f.split.items.len() as u64));
    assert_eq!(info["max_k"].as_u64(), Some(100));
    assert!(info["genres"].as_array().is_some_and(|g| !g.is_empty()));
    let (status, users) = call("GET", "/api/users", None).await;
    assert_eq!(status, 200);
    let list = users["users"].as_array().expect("users");
    assert_eq!(list.len(), f.split.test.len() + f.split.validation.len());
    assert_eq!(list[0]["id"].as_u64(), Some(f.split.test.users()[0]));
    let (id, summary) = a_user_with_a_summary();
    let (status, user) = call("GET", &format!("/api/users/{id}"), None).await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["summary"].as_str(), Some(summary.as_str()));
    assert!(user["favourite_genre"].is_string() && user["least_favourite_genre"].is_string(), "{user}");
    let history = user["history"].as_array().expect("history");
    assert!(!history.is_empty());
    let times: Vec<i64> = history.iter().filter_map(|h| h["timestamp"].as_i64()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "most recent first: {times:?}");
    assert!(history.iter().all(|h| h["title"].is_string() && h["rating"].is_number() && h["genres"].is_array()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recommend_answers_as_the_library_does() {
    let (id, summary) = a_user_with_a_summary();
    for body in [
        json!({ "user": id, "alpha": 0.5, "k": 12 }),
        json!({ "user": id, "summary": format!("{summary} More Comedy."), "alpha": 1.0 }),
        json!({ "user": id, "alpha": 0.0, "k": 5 }),
        json!({ "summary": "Loves westerns and quiet dramas.", "k": 7 }),
    ] {
        let (status, answer) = post("/api/recommend", &body).await;
        assert_eq!(status, 200, "{body}: {answer}");
        assert_eq!(ids(&answer), reference(&body), "{body}");
        let items = answer["items"].as_array().expect("items");
        assert!(items.iter().enumerate().all(|(n, i)| i["rank"].as_u64() == Some(n as u64 + 1)
            && i["title"].is_string()
            && i["genres"].is_array()
            && i["score"].is_number()));
        assert!(answer["sentences"].as_array().is_some_and(|s| !s.is_empty()));
    }
    // A history sent instead of a user.
    let (_, server) = server();
    let u = server.users().iter().find(|u| u.id == id).expect("the user");
    let history: Vec<Value> = u.history.iter().map(|h| json!({ "item": h.item, "rating": h.rating })).collect();
    let body = json!({ "summary": summary, "history": history, "alpha": 0.3 });
    let (status, answer) = post("/api/recommend", &body).await;
    assert_eq!(status, 200, "{answer}");
    let with_user = json!({ "user": id, "alpha": 0.3 });
    assert_eq!(ids(&answer), reference(&with_user));
    // No history: alpha 1, and the answer says so.
    let (_, cold) = post("/api/recommend", &json!({ "summary": "Westerns.", "alpha": 0.2 })).await;
    assert_eq!((cold["alpha"].as_f64(), cold["cold_start"].as_bool()), (Some(1.0), Some(true)), "{cold}");
    assert!(cold["notes"][0].as_str().is_some_and(|n| n.contains("no history")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_gives_ranks_at_both_ends_and_the_sentences_that_move_an_item() {
    let (id, _) = a_user_with_a_summary();
    let body = json!({ "user": id, "alpha": 0.5, "k": 5 });
    let (status, all) = post("/api/explain", &body).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(ids(&all), reference(&body));
    let n_sentences = all["sentences"].as_array().map_or(0, Vec::len);
    for item in all["items"].as_array().expect("items") {
        let e = &item["explanation"];
        assert!(e["rank_alpha0"].as_u64().is_some() && e["rank_alpha1"].as_u64().is_some(), "{e}");
        assert_eq!(e["sentences"].as_array().map(Vec::len), Some(if n_sentences > 1 { n_sentences } else { 0 }));
    }
    let third = ids(&all)[2];
    let (status, one) = post("/api/explain", &json!({ "user": id, "alpha": 0.5, "k": 5, "item": third })).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(ids(&one), vec![third]);
    assert_eq!(one["items"][0]["rank"].as_u64(), Some(3));
    // An item the model does not know; one it knows outside the top k.
    let (status, e) = post("/api/explain", &json!({ "user": id, "item": 987_654_321u64 })).await;
    assert_eq!(status, 404, "{e}");
    let outside = informative().split.items.iter().map(|i| i.id).find(|i| !ids(&all).contains(i)).expect("an item");
    let (status, e) = post("/api/explain", &json!({ "user": id, "alpha": 0.5, "k": 5, "item": outside })).await;
    assert!(status == 422 && e["error"].as_str().is_some_and(|m| m.contains("raise k")), "{status} {e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_are_data_applied_by_the_library() {
    let text = "Summary: Loves War films. Hates Horror. Lately, comedies.";
    let (status, e) =
        post("/api/edit", &json!({ "summary": text, "edit": { "edit": "swap_genres", "args": ["War", "Horror"] } }))
            .await;
    assert_eq!(status, 200, "{e}");
    assert_eq!(e["summary"].as_str(), Some("Summary: Loves Horror films. Hates War. Lately, comedies."));
    assert_eq!(e["changed"].as_bool(), Some(true));
    let (_, e) = post("/api/edit", &json!({ "summary": text, "edit": { "edit": "remove_sentence", "args": 1 } })).await;
    assert_eq!(e["summary"].as_str(), Some("Summary: Loves War films. Lately, comedies."));
    assert_eq!(e["sentences"].as_array().map(Vec::len), Some(2));
    let (_, e) =
        post("/api/edit", &json!({ "summary": text, "edit": { "edit": "append", "args": "More Western." } })).await;
    assert!(e["summary"].as_str().is_some_and(|s| s.ends_with("comedies. More Western.")), "{e}");
    let (_, e) =
        post("/api/edit", &json!({ "summary": text, "edit": { "edit": "swap_genres", "args": ["Noir", "Musical"] } }))
            .await;
    assert_eq!(e["changed"].as_bool(), Some(false));
    let (status, e) =
        post("/api/edit", &json!({ "summary": text, "edit": { "edit": "remove_sentence", "args": 7 } })).await;
    assert!(status == 400 && e["error"].as_str().is_some_and(|m| m.contains("sentence 7")), "{e}");
    let (status, _) = post("/api/edit", &json!({ "summary": text, "edit": { "edit": "rewrite_everything" } })).await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_limit_and_every_error_is_a_json_4xx() {
    let (id, _) = a_user_with_a_summary();
    let long = "word ".repeat(900); // 4,500 characters: past the summary limit, under the body limit
    let huge = json!({ "summary": "x".repeat(17 * 1024) }).to_string();
    let cases: Vec<(&str, &str, Option<String>, u16, &str)> = vec![
        ("POST", "/api/recommend", Some(huge), 413, "larger than"),
        ("POST", "/api/recommend", Some(json!({ "summary": long }).to_string()), 400, "characters"),
        ("POST", "/api/recommend", Some(json!({ "summary": "x.", "k": 0 }).to_string()), 400, "k must be"),
        ("POST", "/api/recommend", Some(json!({ "summary": "x.", "k": 101 }).to_string()), 400, "k must be"),
        ("POST", "/api/recommend", Some(json!({ "summary": "x.", "alpha": -0.1 }).to_string()), 400, "alpha"),
        ("POST", "/api/recommend", Some(json!({ "summary": "x.", "alpha": 1.5 }).to_string()), 400, "alpha"),
        ("POST", "/api/recommend", Some("{\"summary\": \"x.\", \"alpha\": NaN}".into()), 400, "malformed JSON"),
        ("POST", "/api/recommend", Some("{\"summary\": ".into()), 400, "malformed JSON"),
        ("POST", "/api/recommend", Some("[1, 2, 3]".into()), 400, "malformed JSON"),
        ("POST", "/api/recommend", None, 400, "malformed JSON"),
        ("POST", "/api/recommend", Some(json!({ "summary": "x.", "colour": "red" }).to_string()), 400, "unknown field"),
        ("POST", "/api/recommend", Some(json!({ "summary": "x.", "k": -3 }).to_string()), 400, "malformed JSON"),
        ("POST", "/api/recommend", Some(json!({ "summary": "   " }).to_string()), 400, "empty"),
        ("POST", "/api/recommend", Some(json!({ "k": 5 }).to_string()), 400, "summary is needed"),
        ("POST", "/api/recommend", Some(json!({ "user": 987_654_321u64 }).to_string()), 404, "user 987654321"),
        (
            "POST",
            "/api/recommend",
            Some(json!({ "user": id, "history": [{ "item": 1, "rating": 5.0 }] }).to_string()),
            400,
            "not both",
        ),
        (
            "POST",
            "/api/recommend",
            Some(json!({ "summary": "x.", "history": [{ "item": 987_654_321u64, "rating": 5.0 }] }).to_string()),
            400,
            "item 987654321",
        ),
        ("POST", "/api/recommend", Some(json!({ "summary": "x.", "item": 1 }).to_string()), 400, "/api/explain"),
        ("POST", "/api/explain", Some(json!({ "summary": "Yes. ".repeat(41) }).to_string()), 400, "sentences"),
        ("GET", "/api/users/987654321", None, 404, "user 987654321"),
        ("GET", "/api/users/..%2F..%2Fetc%2Fpasswd", None, 400, "a number"),
        ("GET", "/../../etc/passwd", None, 404, "no such route"),
        ("GET", "/api/recommend", None, 405, "method not allowed"),
        ("DELETE", "/api/users", None, 405, "method not allowed"),
        (
            "POST",
            "/api/edit",
            Some(json!({ "summary": long, "edit": { "edit": "remove_sentence", "args": 0 } }).to_string()),
            400,
            "longer than",
        ),
    ];
    for (method, path, body, expected, says) in cases {
        let (status, answer) = call(method, path, body.as_deref()).await;
        let shown: String = body.as_deref().unwrap_or("").chars().take(80).collect();
        assert_eq!(status, expected, "{method} {path} {shown}: {answer}");
        let message = answer["error"].as_str().unwrap_or_else(|| panic!("{method} {path}: not a JSON error: {answer}"));
        assert!(message.contains(says), "{method} {path} {shown}: {message:?} should say {says:?}");
        assert!(!message.contains("panicked") && !message.contains("RUST_BACKTRACE"), "{message}");
    }
    // The server still answers after all of that.
    let (status, _) = call("GET", "/api/info", None).await;
    assert_eq!(status, 200);
}

#[test]
fn a_user_listed_twice_and_a_zero_limit_are_refused() {
    let f = informative();
    let mut users = users_from_split(&f.split, Some(&f.summaries.profiles));
    users.truncate(2);
    users.push(users[0].clone());
    let e = Server::new(open_model(), users, Limits::default()).map(|_| ()).expect_err("a duplicate user");
    assert!(e.to_string().contains("listed twice"), "{e}");
    let e = Server::new(open_model(), Vec::new(), Limits { max_k: 0, ..Limits::default() }).map(|_| ());
    assert!(e.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_get_correct_answers_and_the_server_stays_responsive() {
    const CLIENTS: usize = 8;
    const PER_CLIENT: usize = 16;
    let (addr, server) = server();
    let users: Vec<u64> = server.users().iter().filter(|u| u.summary.is_some()).take(20).map(|u| u.id).collect();
    let plan = load::mixed_plan(&users, CLIENTS, PER_CLIENT);
    let bodies: Vec<Call> = plan.iter().flatten().cloned().collect();
    // While the load runs, a cheap request must still be answered promptly (the model work is
    // off the executor).
    let addr = *addr;
    let probe = tokio::spawn(async move {
        let mut worst = Duration::ZERO;
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let t = Instant::now();
            let (status, _) = load::request(addr, "GET", "/api/info", None, TIMEOUT).await.expect("info");
            assert_eq!(status, 200);
            worst = worst.max(t.elapsed());
        }
        worst
    });
    let report = tokio::time::timeout(Duration::from_secs(300), load::run(addr, plan, TIMEOUT))
        .await
        .expect("the load test finished in time");
    let worst_probe = probe.await.expect("the probe");
    assert_eq!(report.outcomes.len(), CLIENTS * PER_CLIENT);
    let failures: Vec<String> = report.failed_valid().iter().map(|o| format!("{} {:?}", o.status, o.failure)).collect();
    assert!(failures.is_empty(), "valid requests failed: {failures:?}");
    let wrong: Vec<String> =
        report.misanswered_invalid().iter().map(|o| format!("{:?}: {}", o.call.body, o.status)).collect();
    assert!(wrong.is_empty(), "malformed requests not answered 4xx: {wrong:?}");
    for (o, call) in report.outcomes.iter().zip(&bodies) {
        assert_eq!(&o.call, call);
        if call.valid {
            let body: Value = serde_json::from_str(call.body.as_deref().unwrap_or("{}")).expect("a JSON body");
            let answer: Value = serde_json::from_slice(&o.body).expect("a JSON answer");
            assert_eq!(ids(&answer), reference(&body), "{body}");
        } else {
            let answer: Value = serde_json::from_slice(&o.body).expect("a JSON error");
            assert!(answer["error"].is_string(), "{answer}");
        }
    }
    let valid = report.latencies(|o| o.call.valid);
    let p50 = load::percentile(&valid, 0.5).expect("latencies");
    let p99 = load::percentile(&valid, 0.99).expect("latencies");
    println!(
        "load test: {CLIENTS} clients x {PER_CLIENT} requests in {:.2?}; /api/recommend p50 {p50:.1?}, p99 {p99:.1?}; /api/info during the load at worst {worst_probe:.1?}",
        report.wall
    );
    assert!(worst_probe < Duration::from_secs(2), "/api/info took {worst_probe:?} under load");
}

// --- the page in a real browser ---------------------------------------------------------------

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver, killed when dropped.
struct Driver(std::process::Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

async fn js(client: &fantoccini::Client, script: &str) -> Value {
    client.execute(script, Vec::new()).await.unwrap_or_else(|e| panic!("{script}: {e}"))
}

/// Waits until `script` returns true (the page works asynchronously).
async fn until(client: &fantoccini::Client, script: &str, what: &str) {
    let started = Instant::now();
    while js(client, script).await != Value::Bool(true) {
        assert!(started.elapsed() < Duration::from_secs(30), "the page never got to: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The list on screen: (item, data-move) of each row, and the request it answers.
async fn shown(client: &fantoccini::Client) -> (Vec<(u64, Option<String>)>, Value) {
    let rows = js(
        client,
        "return Array.from(document.querySelectorAll('#items li.item')).map(li => [Number(li.dataset.item), li.dataset.move === undefined ? null : li.dataset.move]);",
    )
    .await;
    let rows = rows
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| (r[0].as_u64().expect("an item"), r[1].as_str().map(str::to_string)))
        .collect();
    (rows, js(client, "return window.tearsState.request;").await)
}

/// The arrows a list should show against the list before it.
fn expected_moves(before: &[(u64, Option<String>)], now: &[(u64, Option<String>)]) -> Vec<Option<String>> {
    if before.is_empty() {
        return vec![None; now.len()];
    }
    now.iter()
        .enumerate()
        .map(|(r, (item, _))| match before.iter().position(|(b, _)| b == item) {
            None => Some("new".to_string()),
            Some(was) => Some(was.abs_diff(r).to_string()),
        })
        .collect()
}

/// Checks the list on screen against the API's answer to the request on screen, and its arrows
/// against `before`; returns the list.
async fn check_list(client: &fantoccini::Client, before: &[(u64, Option<String>)]) -> Vec<(u64, Option<String>)> {
    until(
        client,
        "return window.tearsState.shown === window.tearsState.issued && window.tearsState.shown > 0;",
        "the latest list",
    )
    .await;
    let (rows, request) = shown(client).await;
    let items: Vec<u64> = rows.iter().map(|r| r.0).collect();
    let (status, answer) = post("/api/recommend", &request).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(items, ids(&answer), "the page shows what the API answers for {request}");
    let moves: Vec<Option<String>> = rows.iter().map(|r| r.1.clone()).collect();
    assert_eq!(moves, expected_moves(before, &rows), "arrows against the previous list");
    rows
}

async fn drive_the_page(driver_port: u16, page: String, profile_dir: PathBuf) {
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-default-apps", "--disable-dev-shm-usage", "--window-size=1200,1000",
                format!("--user-data-dir={}", profile_dir.display()),
            ],
        },
    });
    let caps = caps.as_object().cloned().expect("capabilities");
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = fantoccini::ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .expect("a WebDriver session with Chromium");
    client.goto(&page).await.expect("load the page");
    until(&client, "return document.body.dataset.ready === 'true';", "loaded").await;
    assert!(js(&client, "return document.getElementById('status').classList.contains('error');").await == json!(false));

    // Pick a user: their history and summary appear, and the list.
    let (id, summary) = a_user_with_a_summary();
    let select = client.find(fantoccini::Locator::Css("#user-select")).await.expect("the user picker");
    select.select_by_value(&id.to_string()).await.expect("pick the user");
    until(&client, "return window.tearsState.shown > 0;", "a first list").await;
    let first = check_list(&client, &[]).await;
    assert_eq!(first.len(), 10);
    assert_eq!(js(&client, "return document.getElementById('summary').value;").await, json!(summary));
    let history_rows = js(&client, "return document.querySelectorAll('#history tbody tr').length;").await;
    assert!(history_rows.as_u64().is_some_and(|n| n > 0), "history rows: {history_rows}");

    // Move the slider to its end (a key press on the focused range input): alpha 1.
    let slider = client.find(fantoccini::Locator::Css("#alpha")).await.expect("the slider");
    slider.send_keys("\u{E010}").await.expect("End on the slider");
    until(&client, "return window.tearsState.request && window.tearsState.request.alpha === 1;", "alpha 1").await;
    let at_one = check_list(&client, &first).await;
    assert_ne!(
        at_one.iter().map(|r| r.0).collect::<Vec<_>>(),
        first.iter().map(|r| r.0).collect::<Vec<_>>(),
        "alpha moved nothing"
    );

    // Edit the summary by typing: the list follows the last text typed.
    let area = client.find(fantoccini::Locator::Css("#summary")).await.expect("the text area");
    area.clear().await.expect("clear");
    let typed = "I love westerns and quiet dramas. No horror, please.";
    area.send_keys(typed).await.expect("type");
    until(&client, &format!("return window.tearsState.request.summary === {};", json!(typed)), "the typed summary")
        .await;
    let edited = check_list(&client, &at_one).await;
    assert!(edited.iter().any(|r| r.1.as_deref() != Some("0")), "the edit moved nothing");

    // Hover an item: its explanation (ranks at alpha 0 and 1, the sentences that move it).
    let second = client.find(fantoccini::Locator::Css("#items li.item:nth-child(2)")).await.expect("an item");
    second.click().await.expect("click an item");
    until(
        &client,
        "return document.getElementById('explain-ranks').textContent.includes('alpha 0');",
        "an explanation",
    )
    .await;
    let lines = js(&client, "return document.querySelectorAll('#explain-sentences li').length;").await;
    assert!(lines.as_u64().is_some_and(|n| n >= 1), "{lines}");

    // Remove a sentence by clicking it.
    let chip = client.find(fantoccini::Locator::Css("#sentences .sentence[data-index='1']")).await.expect("a sentence");
    chip.click().await.expect("remove the sentence");
    until(
        &client,
        "return window.tearsState.request.summary === 'I love westerns and quiet dramas.';",
        "the sentence removed",
    )
    .await;
    check_list(&client, &edited).await;
    let first_item = client.find(fantoccini::Locator::Css("#items li.item:nth-child(1)")).await.expect("an item");
    first_item.click().await.expect("click an item");
    until(
        &client,
        "return document.getElementById('explain-ranks').textContent.includes('alpha 0');",
        "an explanation",
    )
    .await;

    let png = client.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let out = std::env::var_os("TEARS_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tears-serve-page.png"));
    std::fs::write(&out, &png).expect("write the screenshot");
    println!("screenshot: {} ({} bytes)", out.display(), png.len());
    client.close().await.expect("close the browser");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_works_in_a_real_browser() {
    let present = std::path::Path::new(CHROMIUM).is_file() && std::path::Path::new(CHROMEDRIVER).is_file();
    if !present {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(!ci, "CI=true but {CHROMIUM} or {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver)");
        eprintln!("skipped: {CHROMIUM} or {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver)");
        return;
    }
    let (addr, _) = server();
    let port = free_port();
    let _driver = Driver(
        std::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start chromedriver"),
    );
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "chromedriver did not listen on {port}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let profile = tempfile::tempdir().expect("a profile folder");
    let page = format!("http://{addr}/");
    tokio::time::timeout(Duration::from_secs(180), drive_the_page(port, page, profile.path().to_path_buf()))
        .await
        .expect("the browser test finished in time");
}
