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
    /// Timeout of one request, in seconds.
    #[arg(long, default_value_t = llm_defaults().request_timeout.as_secs_f64())]
    timeout_s: f64,
    /// Attempts per request (timeouts, 429 and 5xx are retried with backoff).
    #[arg(long, default_value_t = llm_defaults().max_attempts)]
    max_attempts: u32,
    /// Base backoff in seconds (doubles per retry, capped, jittered).
    #[arg(long, default_value_t = llm_defaults().backoff_base.as_secs_f64())]
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
        let mut config = LlmConfig::new(url, model);
        config.api_key = ApiKey::from_env(&a.api_key_env);
        if !a.timeout_s.is_finite() || a.timeout_s <= 0.0 || !a.backoff_s.is_finite() || a.backoff_s < 0.0 {
            anyhow::bail!("--timeout-s must be positive and --backoff-s not negative");
        }
        config.request_timeout = Duration::from_secs_f64(a.timeout_s);
        config.backoff_base = Duration::from_secs_f64(a.backoff_s);
        config.max_attempts = a.max_attempts.max(1);
        if config.api_key.is_none() {
            tracing::info!("${} is not set: sending no API key", a.api_key_env);
        }
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
    let options = BatchOptions { concurrency: a.concurrency, progress: !a.no_progress, max_failures: 0 };
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
    for (user, e) in report.failed.iter().take(10) {
        println!("  user {user}: {e}");
    }
    if let Some(e) = report.stopped {
        return Err(anyhow::Error::new(e).context("summarizing stopped"));
    }
    if !report.failed.is_empty() {
        anyhow::bail!("{} users failed; rerun the same command to retry them", report.failed.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_names_are_the_library_names() {
        for v in UserSetArg::value_variants() {
            let name = v.to_possible_value().expect("visible").get_name().to_string();
            assert_eq!(name.parse::<UserSet>().expect("library name"), UserSet::from(*v));
        }
    }
}
