//! Summarizing many users: bounded concurrency, the JSONL cache, a progress bar.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::Summarizer;
use crate::cache::{CacheRecord, SummaryCache, now_rfc3339};
use crate::error::{Result, SummarizeError};
use crate::history::History;

/// Settings of a batch run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOptions {
    /// Worker threads (requests in flight at once).
    pub concurrency: usize,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Stop after this many failed users (0: never stop for per-user failures).
    pub max_failures: usize,
    /// Stop ([`SummarizeError::Refused`]) when this many users in a row were refused with an HTTP
    /// 4xx before any user of the run succeeded: a request refused for everyone (an unsupported
    /// parameter answered 400) is found out without asking every user; 0: never.
    pub stop_after_refused: usize,
}

impl Default for BatchOptions {
    /// 4 workers, no progress bar, no failure limit, stop after 8 refusals before any success.
    fn default() -> Self {
        BatchOptions { concurrency: 4, progress: false, max_failures: 0, stop_after_refused: 8 }
    }
}

/// What a batch run did.
#[derive(Debug, Default)]
pub struct BatchReport {
    /// Users asked for.
    pub total: usize,
    /// Users already in the cache with the same model and prompt hash (not asked again).
    pub cached: usize,
    /// Users summarized (and appended to the cache) by this run.
    pub summarized: usize,
    /// Users whose summary failed, with the error.
    pub failed: Vec<(u64, SummarizeError)>,
    /// A fatal error that stopped the run early (a 401, a bad model name, a server that is down,
    /// a write error).
    pub stopped: Option<SummarizeError>,
    /// The failures file written by this run ([`SummaryCache::failures_path`]; `None` when no
    /// user failed, and then a failures file of an earlier run is removed).
    pub failures_file: Option<PathBuf>,
    /// Wall time of the run.
    pub elapsed: Duration,
}

/// Summarizes every `(user, history)` not already in `cache` (same model, same prompt hash),
/// appending each summary to the cache as soon as it is answered.
///
/// Per-user failures (a 400 for one long history, answers that failed validation, retries
/// exhausted) are collected in the report and written, one JSON line per user, to the failures
/// file beside the cache ([`SummaryCache::failures_path`]), and the run goes on; a fatal error
/// ([`SummarizeError::is_fatal`]) stops it (summaries already answered stay in the cache). A rerun
/// asks the failed users again.
///
/// ```
/// use tears_data::{prepare, DatasetName, PrepareOptions};
/// use tears_summarize::{summarize_all, user_histories, BatchOptions, SummaryCache, TemplateSummarizer, UserSet};
/// let split = prepare(DatasetName::Synthetic, &PrepareOptions::default())?.split;
/// let jobs = user_histories(&split, UserSet::Test);
/// let dir = tempfile::tempdir()?;
/// let mut cache = SummaryCache::open(&dir.path().join("s.jsonl"))?;
/// let s = TemplateSummarizer::from_split(&split);
/// let report = summarize_all(&s, &jobs, &mut cache, &BatchOptions::default());
/// assert_eq!(report.summarized, jobs.len());
/// let again = summarize_all(&s, &jobs, &mut cache, &BatchOptions::default());
/// assert_eq!((again.cached, again.summarized), (jobs.len(), 0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn summarize_all(
    summarizer: &dyn Summarizer,
    jobs: &[(u64, History)],
    cache: &mut SummaryCache,
    options: &BatchOptions,
) -> BatchReport {
    let started = Instant::now();
    let model = summarizer.model();
    let mut report = BatchReport { total: jobs.len(), ..BatchReport::default() };
    let todo: Vec<(u64, &History, String)> = jobs
        .iter()
        .filter_map(|(u, h)| {
            let hash = summarizer.prompt_hash(h);
            if cache.is_done(*u, &model, &hash) { None } else { Some((*u, h, hash)) }
        })
        .collect();
    report.cached = jobs.len() - todo.len();
    let bar = if options.progress {
        let bar = indicatif::ProgressBar::new(jobs.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} users  {per_sec}  ETA {eta}  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_position(report.cached as u64);
        bar.reset_eta();
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let workers = options.concurrency.clamp(1, todo.len().max(1));
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<(usize, Result<String>)>();
        for _ in 0..workers {
            let tx = tx.clone();
            let (next, stop, todo) = (&next, &stop, &todo);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((_, history, _)) = todo.get(i) else { break };
                    let result = summarizer.summarize(history);
                    if result.as_ref().is_err_and(SummarizeError::is_fatal) {
                        // Stop here rather than when the collector gets to it: no new user is
                        // started after a fatal error.
                        stop.store(true, Ordering::Relaxed);
                    }
                    if tx.send((i, result)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut refused_in_a_row = 0usize;
        for (i, result) in rx {
            let (user, _, hash) = &todo[i];
            match result {
                Ok(text) => {
                    let record = CacheRecord {
                        user: *user,
                        text,
                        model: model.clone(),
                        prompt_hash: hash.clone(),
                        created_at: now_rfc3339(),
                    };
                    if let Err(e) = cache.append(record) {
                        stop.store(true, Ordering::Relaxed);
                        report.stopped.get_or_insert(e);
                        continue;
                    }
                    report.summarized += 1;
                }
                Err(e) if e.is_fatal() => {
                    stop.store(true, Ordering::Relaxed);
                    tracing::error!("user {user}: {e}; stopping");
                    report.stopped.get_or_insert(e);
                }
                Err(e) => {
                    tracing::warn!("user {user}: {e}");
                    let refused = match &e {
                        SummarizeError::Http { status, message } => {
                            Some(SummarizeError::Http { status: *status, message: message.clone() })
                        }
                        _ => None,
                    };
                    report.failed.push((*user, e));
                    if options.max_failures > 0 && report.failed.len() >= options.max_failures {
                        stop.store(true, Ordering::Relaxed);
                    }
                    refused_in_a_row = if refused.is_some() { refused_in_a_row + 1 } else { 0 };
                    if report.summarized == 0
                        && options.stop_after_refused > 0
                        && refused_in_a_row >= options.stop_after_refused
                        && report.stopped.is_none()
                        && let Some(last) = refused
                    {
                        stop.store(true, Ordering::Relaxed);
                        tracing::error!("the first {refused_in_a_row} users were all refused; stopping");
                        report.stopped =
                            Some(SummarizeError::Refused { users: refused_in_a_row, last: Box::new(last) });
                    }
                }
            }
            bar.inc(1);
            if !report.failed.is_empty() {
                bar.set_message(format!("{} failed", report.failed.len()));
            }
        }
    });
    if let Err(e) = cache.sync() {
        report.stopped.get_or_insert(e);
    }
    let failed: Vec<(u64, &SummarizeError)> = report.failed.iter().map(|(u, e)| (*u, e)).collect();
    match write_failures(&cache.failures_path(), &failed) {
        Ok(written) => report.failures_file = written,
        Err(e) => {
            report.stopped.get_or_insert(e);
        }
    }
    bar.finish_and_clear();
    report.elapsed = started.elapsed();
    report
}

/// Writes `failed` to `path` (JSON lines: user, kind, status, error, at) atomically
/// ([`tears_data::io::write_atomic`]); with no failures, removes an earlier run's file. Returns the path when written.
/// A batch import ([`crate::batch_file`]) writes its failures through it too.
pub(crate) fn write_failures(path: &Path, failed: &[(u64, &SummarizeError)]) -> Result<Option<PathBuf>> {
    if failed.is_empty() {
        return match std::fs::remove_file(path) {
            Ok(()) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SummarizeError::io(path, e)),
        };
    }
    let at = now_rfc3339();
    let mut text = String::new();
    for (user, e) in failed {
        let line = serde_json::json!({
            "user": user,
            "kind": e.kind(),
            "status": e.status(),
            "error": e.to_string(),
            "at": at,
        });
        text.push_str(&line.to_string());
        text.push('\n');
    }
    tears_data::io::write_atomic(path, |w| w.write_all(text.as_bytes()))?;
    Ok(Some(path.to_path_buf()))
}
