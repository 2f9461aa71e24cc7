//! `tears summarize`: a summary of every user of a split (LLM or template), resumable; or the
//! prompts written for a batch engine and its answers read back; one shard of the users or all.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use clap::{Args, ValueEnum};
use tears::data::shard::{ShardKind, ShardStamp, stamp_path};
use tears::summarize::{
    ApiKey, BatchOptions, BatchPrompts, DEFAULT_MAX_ITEMS, History, LlmClient, LlmConfig, LlmSummarizer,
    PromptTemplate, Summarizer, SummaryCache, TemplateSummarizer, UserSet, user_histories,
};

use crate::common::{ShardArgs, load_split};

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
    /// Model name sent to the server (with --export-batch: written in every request; with
    /// --import-batch: the one the export named).
    #[arg(long)]
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
    /// Write the prompts of the users not yet in --out to FILE as an OpenAI Batch-format request
    /// file (for `vllm run-batch` or the OpenAI Batch API) instead of asking a server; needs
    /// --model.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["template", "llm_url", "dry_run", "import_batch"])]
    export_batch: Option<PathBuf>,
    /// Read a batch engine's output file (OpenAI Batch format) into --out, each answer checked as
    /// a live run checks it; repeat for several files. Give the --model, --set, --shard, --prompt
    /// and --max-items of the export.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["template", "llm_url", "dry_run"])]
    import_batch: Vec<PathBuf>,
    #[command(flatten)]
    shard: ShardArgs,
}

pub fn run(a: SummarizeArgs) -> Result<()> {
    let set = UserSet::from(a.set);
    if a.concurrency == 0 {
        anyhow::bail!("--concurrency must be at least 1");
    }
    let batch_file = a.export_batch.is_some() || !a.import_batch.is_empty();
    if batch_file && a.model.is_none() {
        anyhow::bail!("--export-batch and --import-batch need --model NAME (the model the batch engine runs)");
    }
    if a.model.is_some() && a.llm_url.is_none() && !batch_file {
        anyhow::bail!("--model needs --llm-url URL (a live server), --export-batch FILE or --import-batch FILE");
    }
    let shard = a.shard.resolve()?;
    let split = load_split(&a.split)?;
    let books = split.meta.dataset.contains("book");
    let mut template = match &a.prompt {
        Some(p) => PromptTemplate::load(p)?,
        None if books => PromptTemplate::books(),
        None => PromptTemplate::movies(),
    };
    template.max_items = a.max_items.max(1);
    let all = user_histories(&split, set);
    let in_set = all.len();
    let mut jobs = shard.select(all, |(u, _)| *u);
    if !shard.is_whole() {
        println!("shard {shard}: {} of the {in_set} {} users", jobs.len(), set.name());
    }
    if let Some(n) = a.limit {
        jobs.truncate(n);
    }
    let stamp = ShardStamp::new(ShardKind::Summaries, shard, format!("{} {}", split.meta.dataset, set.name()));
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
    if let (Some(model), true) = (&a.model, batch_file) {
        let mut prompts = BatchPrompts::new(LlmConfig::new("", model), template);
        prompts.rules.reject_titles = a.reject_titles;
        return match &a.export_batch {
            Some(file) => export_batch(&a, &prompts, &jobs, &stamp, file),
            None => import_batch(&a, &prompts, &jobs, &stamp),
        };
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
        (None, None) => anyhow::bail!(
            "choose a summarizer: --template, or --llm-url URL --model NAME (or --model NAME with --export-batch \
             FILE, then --import-batch FILE)"
        ),
    };
    let mut cache = SummaryCache::open(&a.out)?;
    claim_out(&a.out, &stamp, &cache)?;
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

/// `--export-batch FILE`: the request lines of the users of `jobs` that `--out` does not have yet,
/// and the shard stamp beside FILE.
fn export_batch(
    a: &SummarizeArgs,
    prompts: &BatchPrompts,
    jobs: &[(u64, History)],
    stamp: &ShardStamp,
    file: &Path,
) -> Result<()> {
    // Read --out when it exists (and check it is this shard's), without creating it.
    let cache = if a.out.exists() { Some(SummaryCache::open(&a.out)?) } else { None };
    if let Some(c) = &cache {
        check_out(&a.out, stamp, c)?;
    }
    let report = prompts.export(jobs, cache.as_ref(), file)?;
    if stamp.shards > 1 {
        stamp.write_beside(file)?;
    } else {
        // A whole export replaces any earlier sharded one at this path: its stamp goes too.
        match std::fs::remove_file(stamp_path(file)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(anyhow::Error::new(e).context(format!("removing {}", stamp_path(file).display())));
            }
            _ => {}
        }
    }
    println!(
        "{} users: {} requests written to {}, {} already in {}",
        report.total,
        report.exported,
        file.display(),
        report.cached,
        a.out.display()
    );
    if report.exported > 0 {
        println!(
            "run them with `vllm run-batch -i {} -o answers.jsonl --model {}` or the OpenAI Batch API (endpoint {}), \
             then `tears summarize --import-batch answers.jsonl` with the same --split, --out, --set, --shard, \
             --limit, --model, --prompt and --max-items",
            file.display(),
            prompts.config.model,
            tears::summarize::batch_file::BATCH_ENDPOINT
        );
    }
    Ok(())
}

/// `--import-batch FILE...`: the engine's answers checked and appended to `--out`.
fn import_batch(a: &SummarizeArgs, prompts: &BatchPrompts, jobs: &[(u64, History)], stamp: &ShardStamp) -> Result<()> {
    let mut cache = SummaryCache::open(&a.out)?;
    claim_out(&a.out, stamp, &cache)?;
    let report = prompts.import(&a.import_batch, jobs, &mut cache)?;
    let files: Vec<String> = a.import_batch.iter().map(|p| p.display().to_string()).collect();
    println!(
        "{} answers in {}: {} imported into {}, {} already there, {} failed; {} of the {} users asked for have no \
         summary yet",
        report.answers,
        files.join(", "),
        report.imported,
        a.out.display(),
        report.already,
        report.failed.len(),
        report.missing,
        jobs.len()
    );
    let u = report.usage;
    println!(
        "answers: {} chat completions in {} lines; tokens: {} prompt, {} completion (as the engine reported them)",
        u.completions, u.attempts, u.prompt_tokens, u.completion_tokens
    );
    if !report.failed.is_empty() {
        println!("{} answers failed (custom_id, file:line, reason):", report.failed.len());
        for f in &report.failed {
            println!("  {} {}:{}: {}", f.custom_id, f.path.display(), f.line, f.error);
        }
    }
    if let Some(path) = &report.failures_file {
        println!("the failed users and their errors are in {}", path.display());
    }
    if report.missing > 0 {
        println!(
            "the {} users without a summary (the failed ones included) are not in {}: --export-batch with the same \
             flags writes their prompts again (a batch cannot re-ask a rejected answer in its chat; a live run with \
             --llm-url does)",
            report.missing,
            a.out.display()
        );
    }
    if !report.failed.is_empty() {
        anyhow::bail!("{} answers failed; export the missing users again to retry them", report.failed.len());
    }
    Ok(())
}

/// How a stamp reads in messages: `summaries shard 1/4 of "ml-1m test"`.
fn describe(stamp: &ShardStamp) -> String {
    let whole = if stamp.shards == 1 { " (all users)" } else { "" };
    format!("{} shard {}/{}{whole} of {:?}", stamp.kind.name(), stamp.shard, stamp.shards, stamp.source)
}

/// Refuses an `--out` written for another shard or source than `stamp` names (its stamp says
/// so; or, unstamped, it holds users outside this shard).
fn check_out(out: &Path, stamp: &ShardStamp, cache: &SummaryCache) -> Result<()> {
    let shard = stamp.shard()?;
    match ShardStamp::read_beside(out)? {
        Some(old) if old != *stamp => anyhow::bail!(
            "{} holds {} (says {}), but this run is {}; give another --out, or the --shard, --shards and --set \
             that wrote it",
            out.display(),
            describe(&old),
            stamp_path(out).display(),
            describe(stamp)
        ),
        Some(_) => Ok(()),
        None => match cache.records().keys().find(|u| !shard.contains(**u)) {
            Some(user) if !shard.is_whole() => anyhow::bail!(
                "{} has no shard stamp but holds users outside shard {shard} (user {user}): it was written by an \
                 unsharded run or another shard; give another --out",
                out.display()
            ),
            _ => Ok(()),
        },
    }
}

/// [`check_out`], then the stamp written beside `out` when the shard is not the whole (before
/// anything is summarized, so that an interrupted shard is stamped too).
fn claim_out(out: &Path, stamp: &ShardStamp, cache: &SummaryCache) -> Result<()> {
    check_out(out, stamp, cache)?;
    if stamp.shards > 1 {
        stamp.write_beside(out)?;
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
