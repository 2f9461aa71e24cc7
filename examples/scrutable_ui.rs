//! The interactive scrutable page on the quick start's model: pick a test user (or start as a new
//! one), read their history, edit their summary, move alpha, and watch the top 10 re-rank with
//! arrows and explanations; a cold-start box takes one sentence.
//!
//! It trains or reuses the quick start's models (in `target/tears-quickstart`, or
//! `$TEARS_CACHE_DIR`; see `quickstart.rs`), then serves `http://127.0.0.1:8080/` until Ctrl-C.
//! A non-loopback `--addr` needs `--allow-remote` (anyone who can reach it can then use the page
//! and read the split users' histories and summaries). With `--load-test CLIENTSxREQUESTS` it
//! instead runs the bounded load test of `tears_serve::load` against itself on loopback (three
//! valid `/api/recommend` calls in four, one malformed) and prints the latency percentiles.
//!
//! ```text
//! cargo run --release --example scrutable_ui [-- --addr 127.0.0.1:8080 --allow-remote --workers N
//!                                               --load-test 8x50 --dataset ... --backbone ... --seed N --backend ...]
//! ```

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use tears::backend::BackendJob;
use tears::model::recommend::ScrutableModel;
use tears::model::{LoadOptions, TextEncoderChoice};
use tears_serve::{Limits, ServeError, Server, load, users_from_split};

/// Opens the TEARS directory again without the embedding cache: the page embeds every text a
/// person types, and those should not pile up on disk.
struct Open<'a>(&'a Path);

impl BackendJob for Open<'_> {
    type Output = tears::model::Result<ScrutableModel>;
    fn run<B: burn::tensor::backend::AutodiffBackend>(self, device: B::Device) -> Self::Output {
        ScrutableModel::open::<B::InnerBackend>(self.0, &LoadOptions::default(), &device)
    }
}

fn main() -> Result<()> {
    let (options, args) = common::Options::from_args(&["--addr", "--load-test", "--workers"])?;
    let addr: SocketAddr =
        args.value("--addr").unwrap_or("127.0.0.1:8080").parse().context("--addr takes HOST:PORT")?;
    tears_serve::check_address(addr, args.flag("--allow-remote"))?;
    let load_test = match args.value("--load-test") {
        None => None,
        Some(spec) => {
            let (c, n) = spec.split_once('x').context("--load-test takes CLIENTSxREQUESTS, e.g. 8x50")?;
            Some((
                c.parse::<usize>().context("--load-test clients")?,
                n.parse::<usize>().context("--load-test requests")?,
            ))
        }
    };
    let setup = common::setup(&options)?;
    let model = tears::backend::run(options.backend, Open(&setup.tears_dir()))?
        .with_context(|| format!("opening {}", setup.tears_dir().display()))?;
    let users = users_from_split(&setup.split, Some(&setup.summaries.profiles));
    let mut limits = Limits::default();
    if let Some(w) = args.value("--workers") {
        limits.workers = w.parse().context("--workers takes a number")?;
    }
    let server = Server::new(model, users, limits)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let bind = if load_test.is_some() { SocketAddr::from(([127, 0, 0, 1], 0)) } else { addr };
        let listener = tokio::net::TcpListener::bind(bind).await.map_err(|source| ServeError::Bind { addr: bind, source })?;
        let bound = listener.local_addr()?;
        let router = server.router();
        let Some((clients, per_client)) = load_test else {
            println!("\n== the scrutable page: http://{bound}/ ({} users of {}; Ctrl-C stops)", server.users().len(), setup.split.meta.dataset);
            let stop = async {
                if tokio::signal::ctrl_c().await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            tears_serve::serve(listener, router, stop).await?;
            return Ok(());
        };
        let serving = tokio::spawn(tears_serve::serve(listener, router, std::future::pending()));
        let ids: Vec<u64> =
            server.users().iter().filter(|u| u.set == "test" && u.summary.is_some()).take(200).map(|u| u.id).collect();
        let encoder = match &setup.encoder {
            TextEncoderChoice::Bert { dir, .. } => {
                dir.file_name().map_or_else(|| "a BERT encoder".to_string(), |n| n.to_string_lossy().into_owned())
            }
            TextEncoderChoice::Hashing(_) => "the hashing encoder".to_string(),
        };
        println!(
            "\n== load test on {} ({encoder}): {clients} clients x {per_client} requests, {} workers",
            setup.split.meta.dataset,
            server.limits().workers
        );
        // The same plan twice: first every summary is new to the encoder (as when a person
        // types), then every one is in its in-memory memo.
        for pass in ["first pass, each summary new to the encoder when first sent", "second pass, the same requests (summaries memoised)"] {
            let plan = load::mixed_plan(&ids, clients, per_client);
            let report = load::run(bound, plan, Duration::from_secs(60)).await;
            let valid = report.latencies(|o| o.call.valid);
            let invalid = report.latencies(|o| !o.call.valid);
            let ms = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
            println!("{pass}: {:.2?}", report.wall);
            println!(
                "  valid /api/recommend: {} calls, {} not answered 200; p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                valid.len(),
                report.failed_valid().len(),
                ms(load::percentile(&valid, 0.5)),
                ms(load::percentile(&valid, 0.9)),
                ms(load::percentile(&valid, 0.99)),
                ms(valid.last().copied())
            );
            println!(
                "  malformed: {} calls, {} not answered 4xx; p50 {:.1} ms",
                invalid.len(),
                report.misanswered_invalid().len(),
                ms(load::percentile(&invalid, 0.5))
            );
        }
        serving.abort();
        anyhow::Ok(())
    })
}
