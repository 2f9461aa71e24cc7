//! Benchmarks of the summarizers crate (`tears-summarize`).
//!
//! Run: `cargo bench --bench summarize`. `client_roundtrip` is one chat-completions request to the
//! in-process mock server on 127.0.0.1 that answers at once: the client's own overhead per
//! request (JSON encoding, HTTP over loopback with a new connection, parsing), an upper bound on
//! what the client adds to a real server's latency. `render_prompt` renders the TEARS movie
//! prompt for 50 items; `template_summary` writes one template summary from 50 items. Results
//! are in `docs/summaries.md`.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tears::data::WindowEntry;
use tears::summarize::mock::MockServer;
use tears::summarize::{History, LlmClient, LlmConfig, PromptTemplate, Summarizer, TemplateSummarizer};

fn history() -> History {
    let genres = ["Drama", "Comedy", "Action", "Thriller", "Romance", "Sci-Fi", "Horror", "War"];
    let window: Vec<WindowEntry> = (0..60)
        .map(|t| WindowEntry {
            item_id: t,
            item: None,
            title: format!("A Movie With A Title Of Average Length {t} (1995)"),
            year: Some(1995),
            genres: vec![genres[t as usize % 8].to_string(), genres[(t as usize * 3 + 1) % 8].to_string()],
            rating: (1 + t % 5) as f32,
            timestamp: t as i64,
        })
        .collect();
    History::from_window(&window)
}

fn bench(c: &mut Criterion) {
    let h = history();
    let template = PromptTemplate::movies();
    let messages = template.render(&h);
    let chars: usize = messages.iter().map(|m| m.content.chars().count()).sum();
    eprintln!("[summarize] rendered prompt for 50 items: {chars} characters (~{} tokens)", chars / 4);

    let server = MockServer::summaries().expect("mock server");
    let client = LlmClient::new(LlmConfig::new(&server.url(), "mock")).expect("client");
    let mut g = c.benchmark_group("summarize");
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("client_roundtrip", |b| b.iter(|| client.chat(&messages).expect("answer")));
    g.bench_function("render_prompt", |b| b.iter(|| template.render(&h)));
    let t = TemplateSummarizer::new();
    g.bench_function("template_summary", |b| b.iter(|| t.summarize(&h).expect("summary")));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
