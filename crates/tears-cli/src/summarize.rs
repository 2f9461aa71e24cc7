//! `tears summarize`: a summary of every user of a split (LLM or template), resumable.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, ValueEnum};
use tears::summarize::{
    ApiKey, BatchOptions, DEFAULT_MAX_ITEMS, LlmClient, LlmConfig, LlmSummarizer, PromptTemplate, Summarizer,
    SummaryCache, TemplateSummarizer, UserSet, user_histories,
};

use crate::common::load_split;

/// The values of `--set`: the command-line face of [`UserSet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UserSetArg {
    Train,
    Validation,
    Test,
    All,
}

impl From<UserSetArg> for UserSet {
    fn from(s: UserSetArg) -> Self {
        match s {
            UserSetArg::Train => UserSet::Train,
            UserSetArg::Validation => UserSet::Validation,
            UserSetArg::Test => UserSet::Test,
            UserSetArg::All => UserSet::All,
        }
    }
}

/// The LLM client's defaults (timeouts, retries), which no URL or model name changes.
fn llm_defaults() -> LlmConfig {
    LlmConfig::new("", "")
}

#[derive(Debug, Args)]
pub struct SummarizeArgs {
    /// The split directory (written by `tears prepare`).
    #[arg(long)]
    split: PathBuf,
    /// The JSONL summary cache to append to (created if needed).
    #[arg(long)]
    out: PathBuf,
    /// Use the offline template summarizer.
    #[arg(long, conflicts_with_all = ["llm_url", "model"])]
    template: bool,
    /// Base URL of an OpenAI-compatible server (https://api.openai.com, http://localhost:8080).
    #[arg(long, requires = "model")]
    llm_url: Option<String>,
    /// Model name sent to the server.
    #[arg(long, requires = "llm_url")]
    model: Option<String>,
    /// Environment variable holding the API key (unset: no key is sent).
    #[arg(long, default_value = "OPENAI_API_KEY")]
    api_key_env: String,
    /// A prompt template file (default: the built-in TEARS movie prompt, books for book datasets).
    #[arg(long)]
    prompt: Option<PathBuf>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = BatchOptions::default().concurrency)]
    concurrency: usize,
    /// The users to summarize.
    #[arg(long, value_enum, default_value_t = UserSetArg::All)]
    set: UserSetArg,
    /// Only the first N users of the set (in split order).
    #[arg(long)]
    limit: Option<usize>,
    /// At most this many recent items per prompt.
    #[arg(long, default_value_t = DEFAULT_MAX_ITEMS)]
    max_items: usize,
    /// Reject (and re-ask) answers that name one of the user's titles.
    #[arg(long)]
    reject_titles: bool,
    /// Timeout of one request, in seconds (above 0, at most 86400).
    #[arg(long, allow_negative_numbers = true, default_value_t = llm_defaults().request_timeout.as_secs_f64())]
    timeout_s: f64,
    /// Attempts per request, 1 to 100 (timeouts, 429, 5xx and malformed answers are retried with
    /// backoff).
    #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(1..=100),
          default_value_t = llm_defaults().max_attempts)]
    max_attempts: u32,
    /// Base backoff in seconds, 0 to 3600 (doubles per retry, capped, jittered).
    #[arg(long, allow_negative_numbers = true, default_value_t = llm_defaults().backoff_base.as_secs_f64())]
    backoff_s: f64,
    /// Render the prompts and print their sizes; send nothing, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
}

pub fn run(a: SummarizeArgs) -> Result<()> {
    let set = UserSet::from(a.set);
    if a.concurrency == 0 {
        anyhow::bail!("--concurrency must be at least 1");
    }
    let split = load_split(&a.split)?;
    let books = split.meta.dataset.contains("book");
    let mut template = match &a.prompt {
        Some(p) => PromptTemplate::load(p)?,
        None if books => PromptTemplate::books(),
        None => PromptTemplate::movies(),
    };
    template.max_items = a.max_items.max(1);
    let mut jobs = user_histories(&split, set);
    if let Some(n) = a.limit {
        jobs.truncate(n);
    }
    if a.dry_run {
        let mut chars: Vec<usize> =
            jobs.iter().map(|(_, h)| template.render(h).iter().map(|m| m.content.chars().count()).sum()).collect();
        chars.sort_unstable();
        let n = chars.len().max(1);
        let mean = chars.iter().sum::<usize>() as f64 / n as f64;
        let pct = |q: f64| chars.get(((chars.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0);
        println!(
            "{} users; prompt characters: mean {mean:.0}, median {}, p95 {}, max {}",
            jobs.len(),
            pct(0.5),
            pct(0.95),
            pct(1.0)
        );
        println!("approx. prompt tokens (characters / 4): mean {:.0}, max {}", mean / 4.0, pct(1.0) / 4);
        return Ok(());
    }
    let mut llm = None;
    let mut offline = None;
    if a.template {
        let mut t = TemplateSummarizer::from_split(&split);
        t.max_items = a.max_items.max(1);
        offline = Some(t);
    } else if let (Some(url), Some(model)) = (&a.llm_url, &a.model) {
        let mut config = llm_config(url, model, &a.api_key_env);
        config.request_timeout = seconds("--timeout-s", a.timeout_s, false, 86_400.0)?;
        config.backoff_base = seconds("--backoff-s", a.backoff_s, true, 3_600.0)?;
        config.backoff_max = config.backoff_max.max(config.backoff_base);
        config.max_attempts = a.max_attempts;
        let mut s = LlmSummarizer::new(LlmClient::new(config)?, template);
        s.rules.reject_titles = a.reject_titles;
        llm = Some(s);
    }
    let summarizer: &dyn Summarizer = match (&llm, &offline) {
        (Some(s), _) => s,
        (None, Some(t)) => t,
        (None, None) => anyhow::bail!("choose a summarizer: --template, or --llm-url URL --model NAME"),
    };
    let mut cache = SummaryCache::open(&a.out)?;
    let options = BatchOptions { concurrency: a.concurrency, progress: !a.no_progress, ..BatchOptions::default() };
    let report = tears::summarize::summarize_all(summarizer, &jobs, &mut cache, &options);
    println!(
        "{} users: {} summarized, {} already in {}, {} failed ({:.2?}, {:.1} users/s)",
        report.total,
        report.summarized,
        report.cached,
        a.out.display(),
        report.failed.len(),
        report.elapsed,
        report.summarized as f64 / report.elapsed.as_secs_f64().max(1e-9),
    );
    if let Some(s) = &llm {
        let u = s.client.usage();
        println!(
            "requests: {} answered, {} HTTP attempts; tokens: {} prompt, {} completion (as the server reported them)",
            u.completions, u.attempts, u.prompt_tokens, u.completion_tokens
        );
        if report.summarized > 0 {
            println!(
                "mean wall time per summarized user: {:.2?} at concurrency {}",
                report.elapsed / report.summarized as u32,
                a.concurrency
            );
        }
    }
    print_failures(&report.failed);
    if let Some(path) = &report.failures_file {
        println!("the failed users and their errors are in {}", path.display());
    }
    if let Some(e) = report.stopped {
        return Err(anyhow::Error::new(e).context("summarizing stopped"));
    }
    if !report.failed.is_empty() {
        anyhow::bail!("{} users failed; rerun the same command to retry them", report.failed.len());
    }
    Ok(())
}

/// The client settings for `url` and `model`, the key read from `api_key_env` (a warning when
/// it is unset).
pub(crate) fn llm_config(url: &str, model: &str, api_key_env: &str) -> LlmConfig {
    let mut config = LlmConfig::new(url, model);
    config.api_key = ApiKey::from_env(api_key_env);
    if config.api_key.is_none() {
        tracing::warn!("${api_key_env} is not set: sending no API key (fine for a local server)");
    }
    config
}

/// `value` seconds as a duration, checked: finite, at most `max`, above 0 (or 0 too when
/// `zero_ok`), with the flag named in the error.
fn seconds(flag: &str, value: f64, zero_ok: bool, max: f64) -> Result<Duration> {
    let low_ok = if zero_ok { value >= 0.0 } else { value > 0.0 };
    if !value.is_finite() || !low_ok || value > max {
        let low = if zero_ok { "from 0" } else { "above 0" };
        anyhow::bail!("{flag} must be a number of seconds {low} up to {max}, not {value}");
    }
    Ok(Duration::from_secs_f64(value))
}

/// The failures grouped by what went wrong (most frequent first), with a few users of each.
fn print_failures(failed: &[(u64, tears::summarize::SummarizeError)]) {
    if failed.is_empty() {
        return;
    }
    let mut groups: Vec<(String, Vec<u64>)> = Vec::new();
    for (user, e) in failed {
        let what = match e.status() {
            Some(status) => format!("{} {status}", e.kind()),
            None => e.kind().to_string(),
        };
        match groups.iter_mut().find(|(w, _)| *w == what) {
            Some((_, users)) => users.push(*user),
            None => groups.push((what, vec![*user])),
        }
    }
    groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
    println!("{} users failed:", failed.len());
    for (what, users) in &groups {
        let first = failed.iter().find(|(u, _)| *u == users[0]).map(|(_, e)| e.to_string()).unwrap_or_default();
        let some: Vec<String> = users.iter().take(5).map(u64::to_string).collect();
        let more = if users.len() > 5 { ", ..." } else { "" };
        println!("  {} x {what} (users {}{more}), e.g. {first}", users.len(), some.join(", "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_bounded_and_named() {
        assert_eq!(seconds("--timeout-s", 1.5, false, 86_400.0).expect("ok"), Duration::from_millis(1500));
        assert_eq!(seconds("--backoff-s", 0.0, true, 3_600.0).expect("ok"), Duration::ZERO);
        for bad in [0.0, -1.0, 1e300, f64::INFINITY, f64::NAN] {
            let e = seconds("--timeout-s", bad, false, 86_400.0).expect_err("rejected").to_string();
            assert!(e.contains("--timeout-s"), "{e}");
        }
        assert!(seconds("--backoff-s", -0.5, true, 3_600.0).is_err());
    }

    #[test]
    fn set_names_are_the_library_names() {
        for v in UserSetArg::value_variants() {
            let name = v.to_possible_value().expect("visible").get_name().to_string();
            assert_eq!(name.parse::<UserSet>().expect("library name"), UserSet::from(*v));
        }
    }
}
