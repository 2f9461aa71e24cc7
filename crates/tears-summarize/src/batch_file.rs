//! Summaries through batch engines: the prompts of many users written as one OpenAI
//! Batch-format request file (for the OpenAI Batch API or `vllm run-batch`), and the engine's
//! output file read back into the summary cache with the live client's checks.
//!
//! A request line, one per user ([`BatchPrompts::export`]):
//!
//! ```text
//! {"body":{"max_tokens":300,"messages":[...],"model":"M","seed":0,"temperature":0.0},"custom_id":"user-42-3fa9c0d1e2b4a5c6","method":"POST","url":"/v1/chat/completions"}
//! ```
//!
//! The body is [`LlmConfig::request_body`], exactly what the live client POSTs. The `custom_id`
//! is `user-<id>-<prompt hash>` ([`custom_id`]): the user, and the hash of the prompt and
//! settings sent ([`crate::Summarizer::prompt_hash`]), so that an answer to another prompt (the
//! export made with another `--prompt`, `--max-items` or model) is refused on import instead of
//! being cached under the wrong hash.
//!
//! An output line, OpenAI Batch and `vllm run-batch` alike ([`BatchPrompts::import`]):
//!
//! ```text
//! {"id":"batch_req_1","custom_id":"user-42-3fa9c0d1e2b4a5c6","response":{"status_code":200,"request_id":"req_1","body":{chat completion}},"error":null}
//! ```
//!
//! A failed request has `"response": null` and an `"error": {"code", "message"}` object
//! (OpenAI), or a `status_code` other than 200 (vLLM then gives the message as an `"error"`
//! string and no body; OpenAI the server's error body).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::batch::write_failures;
use crate::cache::{CacheRecord, SummaryCache, now_rfc3339};
use crate::error::{Result, SummarizeError, shorten};
use crate::history::History;
use crate::llm::{AnswerRules, Completion, LlmConfig, Usage, no_content, prompt_titles};
use crate::prompt::PromptTemplate;

/// The endpoint every request line names (`url`), and the one to create a batch for.
pub const BATCH_ENDPOINT: &str = "/v1/chat/completions";

/// The `custom_id` of `user`'s request for a prompt with `prompt_hash`: `user-<id>-<hash>`.
///
/// ```
/// use tears_summarize::batch_file::{custom_id, parse_custom_id};
/// let id = custom_id(42, "3fa9c0d1e2b4a5c6");
/// assert_eq!(id, "user-42-3fa9c0d1e2b4a5c6");
/// assert_eq!(parse_custom_id(&id), Some((42, "3fa9c0d1e2b4a5c6")));
/// ```
pub fn custom_id(user: u64, prompt_hash: &str) -> String {
    format!("user-{user}-{prompt_hash}")
}

/// The user and prompt hash of a [`custom_id`]; `None` for anything else (another prefix, a
/// user id with a sign or leading zeros, a hash that is not 16 lowercase hex digits), so that
/// each user has one spelling.
///
/// ```
/// use tears_summarize::batch_file::parse_custom_id;
/// for bad in ["request-1", "user-42", "user-042-3fa9c0d1e2b4a5c6", "user-+42-3fa9c0d1e2b4a5c6", "user-42-3FA9C0D1E2B4A5C6"] {
///     assert_eq!(parse_custom_id(bad), None, "{bad}");
/// }
/// ```
pub fn parse_custom_id(id: &str) -> Option<(u64, &str)> {
    let (user, hash) = id.strip_prefix("user-")?.split_once('-')?;
    let n: u64 = user.parse().ok()?;
    let hex = hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (hex && n.to_string() == user).then_some((n, hash))
}

/// What [`BatchPrompts::export`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Users asked for.
    pub total: usize,
    /// Users written to the request file.
    pub exported: usize,
    /// Users skipped because the cache already has their summary (same model, same prompt hash).
    pub cached: usize,
}

/// An output line whose user got no summary: the engine's error, or an answer the checks
/// rejected. The user stays out of the cache, so the next export asks again.
#[derive(Debug)]
pub struct BatchFailure {
    /// The output file.
    pub path: PathBuf,
    /// 1-based line number.
    pub line: u64,
    /// The line's `custom_id`.
    pub custom_id: String,
    /// The user.
    pub user: u64,
    /// Why: [`SummarizeError::Http`] (a status other than 200),
    /// [`SummarizeError::BatchRequest`] (an `error` without a status),
    /// [`SummarizeError::MalformedResponse`] (a 200 that is not a chat completion) or
    /// [`SummarizeError::InvalidAnswer`] (the answer checks, as in a live run).
    pub error: SummarizeError,
}

/// What [`BatchPrompts::import`] did.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// Answer lines read (blank lines aside), over all files.
    pub answers: usize,
    /// Summaries appended to the cache.
    pub imported: usize,
    /// Answers of users the cache already had (same model, same prompt hash): not written again.
    pub already: usize,
    /// Answers that gave no summary, in file order.
    pub failed: Vec<BatchFailure>,
    /// Users asked for that still have no summary in the cache after the import (the failed ones,
    /// and those the files do not answer).
    pub missing: usize,
    /// Token counts from the answers' `usage`; `attempts` counts answer lines.
    pub usage: Usage,
    /// The failures file written ([`SummaryCache::failures_path`]; `None` when nothing failed,
    /// and then an earlier run's file is removed).
    pub failures_file: Option<PathBuf>,
}

/// What a batch file is made from and checked against: the request settings, the prompt and the
/// answer checks, the three a live [`crate::LlmSummarizer`] uses, without a server.
///
/// ```
/// use tears_data::WindowEntry;
/// use tears_summarize::batch_file::BatchPrompts;
/// use tears_summarize::{History, LlmConfig, PromptTemplate};
/// let entry = WindowEntry { item_id: 1, item: None, title: "Heat".into(), year: Some(1995),
///     genres: vec!["Crime".into()], rating: 4.0, timestamp: 0 };
/// let prompts = BatchPrompts::new(LlmConfig::new("", "my-model"), PromptTemplate::movies());
/// let line = prompts.request(7, &History::from_window(&[entry]));
/// assert_eq!(line["method"], "POST");
/// assert_eq!(line["url"], "/v1/chat/completions");
/// assert_eq!(line["body"]["model"], "my-model");
/// assert!(line["custom_id"].as_str().is_some_and(|id| id.starts_with("user-7-")));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BatchPrompts {
    /// The request settings (model, temperature, `max_tokens`, seed; the URL, key and timeouts
    /// are not used).
    pub config: LlmConfig,
    /// The prompt.
    pub template: PromptTemplate,
    /// The checks answers must pass on import.
    pub rules: AnswerRules,
}

/// A line's outcome before the answer checks: a completion, or why there is none.
type Outcome = std::result::Result<Completion, SummarizeError>;

/// A usable output line, held until every line of every file has been read.
struct Answer<'j> {
    file: usize,
    line: u64,
    custom_id: String,
    user: u64,
    history: &'j History,
    hash: String,
    outcome: Outcome,
}

impl BatchPrompts {
    /// Prompts rendered with `template`, sent with `config`, checked with the default rules.
    pub fn new(config: LlmConfig, template: PromptTemplate) -> Self {
        BatchPrompts { config, template, rules: AnswerRules::default() }
    }

    /// The hash a live [`crate::LlmSummarizer`] with the same settings gives `history`
    /// ([`crate::Summarizer::prompt_hash`]): the cache key of the summary.
    pub fn prompt_hash(&self, history: &History) -> String {
        self.config.chat_hash(&self.template.render(history))
    }

    /// The request line of `user`: `custom_id`, `method`, `url` and the body the live client sends.
    pub fn request(&self, user: u64, history: &History) -> Value {
        let messages = self.template.render(history);
        json!({
            "custom_id": custom_id(user, &self.config.chat_hash(&messages)),
            "method": "POST",
            "url": BATCH_ENDPOINT,
            "body": self.config.request_body(&messages),
        })
    }

    /// Writes the request line of every user of `jobs` that `cache` does not already have (same
    /// model, same prompt hash; no cache: every user) to `path`, one JSON object a line, in the
    /// order of `jobs`, atomically ([`tears_data::io::write_atomic`]). With nothing to ask, the
    /// file is written empty.
    pub fn export(&self, jobs: &[(u64, History)], cache: Option<&SummaryCache>, path: &Path) -> Result<ExportReport> {
        let model = &self.config.model;
        let mut report = ExportReport { total: jobs.len(), ..ExportReport::default() };
        tears_data::io::write_atomic(path, |w| {
            for (user, history) in jobs {
                let messages = self.template.render(history);
                let hash = self.config.chat_hash(&messages);
                if cache.is_some_and(|c| c.is_done(*user, model, &hash)) {
                    report.cached += 1;
                    continue;
                }
                let line = json!({
                    "custom_id": custom_id(*user, &hash),
                    "method": "POST",
                    "url": BATCH_ENDPOINT,
                    "body": self.config.request_body(&messages),
                });
                serde_json::to_writer(&mut *w, &line).map_err(std::io::Error::other)?;
                w.write_all(b"\n")?;
                report.exported += 1;
            }
            Ok(())
        })?;
        Ok(report)
    }

    /// Reads batch output `files` (answers to requests [`BatchPrompts::export`] wrote for users of
    /// `jobs`) and appends every answer that passes the live client's checks ([`AnswerRules`],
    /// `--reject-titles` included) to `cache`, with the record a live run writes (model, prompt
    /// hash). Answers of users the cache already has are skipped, so importing a file twice adds
    /// nothing. Failed answers are reported, and written to the cache's failures file as a live
    /// run writes its own; their users stay out of the cache, so a new export asks them again.
    ///
    /// Every line of every file is read before anything is written: a line that is not JSON or
    /// not an output line, an unknown `custom_id`, a user not in `jobs`, a user answered twice
    /// (in one file or across files) or an answer to another prompt than `jobs` renders now is
    /// an error ([`SummarizeError::BatchFile`], naming the file and line) and the cache is left
    /// as it was. A rejected answer is not re-asked (a batch has no chat to continue).
    pub fn import(&self, files: &[PathBuf], jobs: &[(u64, History)], cache: &mut SummaryCache) -> Result<ImportReport> {
        let by_user: HashMap<u64, &History> = jobs.iter().map(|(u, h)| (*u, h)).collect();
        let mut seen: HashMap<u64, (usize, u64)> = HashMap::new();
        let mut answers = Vec::new();
        for (file, path) in files.iter().enumerate() {
            let bytes = std::fs::read(path).map_err(|e| SummarizeError::io(path, e))?;
            for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
                if raw.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let line = i as u64 + 1;
                let err = |message: String| SummarizeError::BatchFile { path: path.clone(), line, message };
                let text = std::str::from_utf8(raw).map_err(|e| err(format!("not UTF-8 text ({e})")))?;
                let answer = self.read_line(text, &by_user, &mut seen, files, file, line).map_err(err)?;
                answers.push(answer);
            }
        }
        let model = self.config.model.clone();
        let mut report = ImportReport { answers: answers.len(), ..ImportReport::default() };
        for a in answers {
            report.usage.attempts += 1;
            if let Ok(c) = &a.outcome {
                report.usage.completions += 1;
                report.usage.prompt_tokens += c.prompt_tokens;
                report.usage.completion_tokens += c.completion_tokens;
            }
            if cache.is_done(a.user, &model, &a.hash) {
                report.already += 1;
                continue;
            }
            let titles = prompt_titles(&self.template, a.history);
            let checked = a.outcome.and_then(|c| {
                self.rules
                    .check(&c.content, &titles)
                    .map_err(|reason| SummarizeError::InvalidAnswer { attempts: 1, reason })
            });
            match checked {
                Ok(text) => {
                    let record = CacheRecord {
                        user: a.user,
                        text,
                        model: model.clone(),
                        prompt_hash: a.hash,
                        created_at: now_rfc3339(),
                    };
                    cache.append(record)?;
                    report.imported += 1;
                }
                Err(error) => report.failed.push(BatchFailure {
                    path: files[a.file].clone(),
                    line: a.line,
                    custom_id: a.custom_id,
                    user: a.user,
                    error,
                }),
            }
        }
        cache.sync()?;
        let failed: Vec<(u64, &SummarizeError)> = report.failed.iter().map(|f| (f.user, &f.error)).collect();
        report.failures_file = write_failures(&cache.failures_path(), &failed)?;
        report.missing = jobs.iter().filter(|(u, h)| !cache.is_done(*u, &model, &self.prompt_hash(h))).count();
        Ok(report)
    }

    /// One non-blank output line: its user (checked against `by_user` and `seen`) and outcome, or
    /// what is wrong with it.
    fn read_line<'j>(
        &self,
        text: &str,
        by_user: &HashMap<u64, &'j History>,
        seen: &mut HashMap<u64, (usize, u64)>,
        files: &[PathBuf],
        file: usize,
        line: u64,
    ) -> std::result::Result<Answer<'j>, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
        let obj = v.as_object().ok_or("not a JSON object")?;
        let id =
            obj.get("custom_id").and_then(Value::as_str).ok_or("no custom_id: not a line of a batch output file")?;
        let (user, hash) = parse_custom_id(id)
            .ok_or_else(|| format!("unknown custom_id {id:?} (--export-batch writes user-<id>-<16 hex digits>)"))?;
        let history = *by_user.get(&user).ok_or_else(|| {
            format!("{id}: user {user} is not among the users asked for (--split, --set, --shard and --limit)")
        })?;
        if let Some(&(f, l)) = seen.get(&user) {
            let where_ = if f == file { format!("line {l}") } else { format!("{}:{l}", files[f].display()) };
            return Err(format!("{id}: user {user} is answered twice (also on {where_})"));
        }
        seen.insert(user, (file, line));
        let expected = self.prompt_hash(history);
        if hash != expected {
            return Err(format!(
                "{id}: this answers a prompt with hash {hash}, but the current settings give user {user} the prompt \
                 hash {expected}; import with the --model, --prompt and --max-items of the export"
            ));
        }
        let outcome = outcome(obj)?;
        Ok(Answer { file, line, custom_id: id.to_string(), user, history, hash: expected, outcome })
    }
}

/// The completion of an output line, or the engine's reason for having none; `Err` when the
/// line is not an output line.
fn outcome(line: &serde_json::Map<String, Value>) -> std::result::Result<Outcome, String> {
    let error = match line.get("error").unwrap_or(&Value::Null) {
        Value::Null => None,
        Value::String(s) => Some((None, s.clone())),
        Value::Object(o) => {
            let code = o
                .get("code")
                .filter(|c| !c.is_null())
                .map(|c| c.as_str().map_or_else(|| c.to_string(), str::to_string));
            let message = o
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| Value::Object(o.clone()).to_string(), str::to_string);
            Some((code, message))
        }
        other => return Err(format!("\"error\" is {other}, not null, a string or an object")),
    };
    let batch_error = |(code, message): (Option<String>, String)| SummarizeError::BatchRequest {
        code,
        message: shorten(&message, 300),
    };
    let response = match line.get("response").unwrap_or(&Value::Null) {
        Value::Null => {
            return error.map(|e| Err(batch_error(e))).ok_or_else(|| "neither a response nor an error".to_string());
        }
        Value::Object(r) => r,
        other => return Err(format!("\"response\" is {}, not null or an object", shorten(&other.to_string(), 60))),
    };
    let status = match response.get("status_code") {
        None => 200,
        Some(s) => s
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .ok_or_else(|| format!("status_code {s} is not an HTTP status"))?,
    };
    let body = response.get("body").unwrap_or(&Value::Null);
    if status != 200 {
        let message = error
            .map(|(_, m)| m)
            .or_else(|| body.pointer("/error/message").and_then(Value::as_str).map(str::to_string))
            .or_else(|| body.get("message").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| body.to_string());
        return Ok(Err(SummarizeError::Http { status, message: shorten(&message, 300) }));
    }
    if let Some(e) = error {
        return Ok(Err(batch_error(e)));
    }
    Ok(Completion::read(body).ok_or_else(|| SummarizeError::MalformedResponse {
        attempts: 1,
        message: no_content(&shorten(&body.to_string(), 120)),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LlmClient, LlmSummarizer, Summarizer};
    use tears_data::WindowEntry;

    const MODEL: &str = "qwen-test";

    /// Users 1 to 11, each with two rated films; user 8's include "Casablanca".
    fn jobs() -> Vec<(u64, History)> {
        (1..=11u64)
            .map(|u| {
                let entry = |title: String, t: i64| WindowEntry {
                    item_id: u * 10 + t as u64,
                    item: None,
                    title,
                    year: Some(1990),
                    genres: vec!["Drama".into()],
                    rating: 4.0,
                    timestamp: t,
                };
                let second = if u == 8 { "Casablanca".to_string() } else { format!("Harbour Lights {u}") };
                (u, History::from_window(&[entry(format!("Quiet Fields {u}"), 1), entry(second, 2)]))
            })
            .collect()
    }

    fn prompts() -> BatchPrompts {
        let mut p = BatchPrompts::new(LlmConfig::new("", MODEL), PromptTemplate::movies());
        p.rules.reject_titles = true;
        p
    }

    /// The live summarizer with the same settings (a URL it never calls).
    fn live() -> LlmSummarizer {
        let client = LlmClient::new(LlmConfig::new("http://127.0.0.1:9", MODEL)).expect("client");
        LlmSummarizer::new(client, PromptTemplate::movies())
    }

    fn id_of(user: u64) -> String {
        let jobs = jobs();
        let (_, h) = jobs.iter().find(|(u, _)| *u == user).expect("a fixture user");
        custom_id(user, &prompts().prompt_hash(h))
    }

    /// Output lines in the exact OpenAI Batch and vLLM run-batch formats, one per outcome; `{uN}`
    /// stands for user N's custom_id. Users 1, 2 and 11 are answered well; 3 to 9 fail (HTTP 500,
    /// an OpenAI error object, a vLLM error, a refusal, a flagged empty answer, a title named, a
    /// 200 that is no chat completion); 10 is not answered.
    const OUTPUT: &str = r#"{"id": "batch_req_1", "custom_id": "{u1}", "response": {"status_code": 200, "request_id": "req_1", "body": {"id": "chatcmpl-1", "object": "chat.completion", "created": 1733234400, "model": "qwen-test-0125", "choices": [{"index": 0, "message": {"role": "assistant", "content": "  Summary: The user enjoys quiet dramas about families and gentle comedies.\n", "refusal": null}, "logprobs": null, "finish_reason": "stop"}], "usage": {"prompt_tokens": 1100, "completion_tokens": 250, "total_tokens": 1350}, "system_fingerprint": "fp_1"}}, "error": null}
{"id": "vllm-8f1c", "custom_id": "{u2}", "response": {"status_code": 200, "request_id": "vllm-batch-77aa", "body": {"id": "chatcmpl-9", "object": "chat.completion", "created": 1733234401, "model": "qwen-test", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Summary: Fast thrillers, heists and clever crime stories; no musicals.", "tool_calls": []}, "logprobs": null, "finish_reason": "stop", "stop_reason": null}], "usage": {"prompt_tokens": 1000, "total_tokens": 1200, "completion_tokens": 200, "prompt_tokens_details": null}, "prompt_logprobs": null}}, "error": null}
{"id": "batch_req_3", "custom_id": "{u3}", "response": {"status_code": 500, "request_id": "req_3", "body": {"error": {"message": "The server had an error while processing your request.", "type": "server_error", "param": null, "code": null}}}, "error": null}
{"id": "batch_req_4", "custom_id": "{u4}", "response": null, "error": {"code": "batch_expired", "message": "This request could not be executed before the completion window expired."}}

{"id": "vllm-0d2e", "custom_id": "{u5}", "response": {"status_code": 400, "request_id": "vllm-batch-51c0", "body": null}, "error": "This model's maximum context length is 4096 tokens. However, you requested 5210 tokens."}
{"id": "batch_req_6", "custom_id": "{u6}", "response": {"status_code": 200, "request_id": "req_6", "body": {"id": "chatcmpl-6", "object": "chat.completion", "created": 1733234402, "model": "qwen-test-0125", "choices": [{"index": 0, "message": {"role": "assistant", "content": "I'm sorry, but I can't help with that request about this user."}, "logprobs": null, "finish_reason": "stop"}]}}, "error": null}
{"id": "batch_req_7", "custom_id": "{u7}", "response": {"status_code": 200, "request_id": "req_7", "body": {"id": "chatcmpl-7", "object": "chat.completion", "created": 1733234403, "model": "qwen-test-0125", "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "refusal": "I can't help with that."}, "logprobs": null, "finish_reason": "content_filter"}]}}, "error": null}
{"id": "batch_req_8", "custom_id": "{u8}", "response": {"status_code": 200, "request_id": "req_8", "body": {"id": "chatcmpl-8", "object": "chat.completion", "created": 1733234404, "model": "qwen-test-0125", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Summary: The user loves wartime romances such as Casablanca and old dramas."}, "logprobs": null, "finish_reason": "stop"}]}}, "error": null}
{"id": "batch_req_9", "custom_id": "{u9}", "response": {"status_code": 200, "request_id": "req_9", "body": {"object": "error", "message": "internal"}}, "error": null}
{"id": "batch_req_11", "custom_id": "{u11}", "response": {"status_code": 200, "request_id": "req_11", "body": {"id": "chatcmpl-11", "object": "chat.completion", "created": 1733234405, "model": "qwen-test-0125", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Summary: An answer to a user the cache already has, which is not written again."}, "logprobs": null, "finish_reason": "stop"}]}}, "error": null}
"#;

    /// `text` with every `{uN}` replaced by user N's custom_id.
    fn fill(text: &str) -> String {
        (1..=11u64).rev().fold(text.to_string(), |t, u| t.replace(&format!("{{u{u}}}"), &id_of(u)))
    }

    fn record(user: u64, text: &str, hash: String) -> CacheRecord {
        CacheRecord { user, text: text.into(), model: MODEL.into(), prompt_hash: hash, created_at: now_rfc3339() }
    }

    /// A cache holding user 11, summarized live with the same settings.
    fn cache_with_user_11(path: &Path) -> SummaryCache {
        let mut cache = SummaryCache::open(path).expect("cache");
        let jobs = jobs();
        cache.append(record(11, "Summary: live.", live().prompt_hash(&jobs[10].1))).expect("append");
        cache
    }

    fn exported_lines(path: &Path) -> Vec<Value> {
        let text = std::fs::read_to_string(path).expect("export");
        assert!(text.is_empty() || text.ends_with('\n'));
        text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
    }

    #[test]
    fn export_writes_the_live_request_of_every_user_not_cached() {
        let dir = tempfile::tempdir().expect("tmp");
        let cache = cache_with_user_11(&dir.path().join("s.jsonl"));
        let (jobs, live) = (jobs(), live());
        let path = dir.path().join("prompts.jsonl");
        let report = prompts().export(&jobs, Some(&cache), &path).expect("export");
        assert_eq!(report, ExportReport { total: 11, exported: 10, cached: 1 });
        let lines = exported_lines(&path);
        assert_eq!(lines.len(), 10);
        for (line, (user, history)) in lines.iter().zip(&jobs) {
            let keys: Vec<&str> = line.as_object().expect("an object").keys().map(String::as_str).collect();
            assert_eq!(keys, ["body", "custom_id", "method", "url"]);
            assert_eq!(line["method"], "POST");
            assert_eq!(line["url"], "/v1/chat/completions");
            // The body the live client POSTs, and the cache key a live run writes.
            assert_eq!(line["body"], live.client.request_body(&live.template.render(history)));
            let (u, hash) = parse_custom_id(line["custom_id"].as_str().expect("a string")).expect("ours");
            assert_eq!((u, hash), (*user, live.prompt_hash(history).as_str()));
            assert_eq!(line, &prompts().request(*user, history));
        }
        let body = &lines[0]["body"];
        assert_eq!(
            (body["model"].as_str(), body["max_tokens"].as_u64(), body["seed"].as_u64()),
            (Some(MODEL), Some(300), Some(0))
        );
        assert_eq!(body["temperature"].as_f64(), Some(0.0));
        assert_eq!(prompts().export(&jobs, None, &path).expect("export").exported, 11);
    }

    #[test]
    fn import_caches_good_answers_lists_failures_and_a_new_export_asks_the_rest() {
        let dir = tempfile::tempdir().expect("tmp");
        let cache_path = dir.path().join("s.jsonl");
        let mut cache = cache_with_user_11(&cache_path);
        let output = dir.path().join("answers.jsonl");
        std::fs::write(&output, fill(OUTPUT)).expect("write");
        let (jobs, live) = (jobs(), live());
        let report = prompts().import(std::slice::from_ref(&output), &jobs, &mut cache).expect("import");
        assert_eq!((report.answers, report.imported, report.already, report.missing), (10, 2, 1, 8));
        assert_eq!(report.usage, Usage { completions: 6, attempts: 10, prompt_tokens: 2100, completion_tokens: 450 });
        let failures: Vec<(u64, u64, String, String)> =
            report.failed.iter().map(|f| (f.user, f.line, f.custom_id.clone(), f.error.to_string())).collect();
        let expected = [
            (3, 3, "the LLM server answered HTTP 500: The server had an error while processing your request."),
            (
                4,
                4,
                "the batch engine reported an error batch_expired: This request could not be executed before the \
                 completion window expired.",
            ),
            (
                5,
                6,
                "the LLM server answered HTTP 400: This model's maximum context length is 4096 tokens. However, you \
                 requested 5210 tokens.",
            ),
            (6, 7, "invalid answer after 1 try: the answer must start with \"Summary:\""),
            (7, 8, "invalid answer after 1 try: the answer is empty"),
            (8, 9, "invalid answer after 1 try: the answer names the title \"Casablanca\"; do not mention any titles"),
            (
                9,
                10,
                "malformed answer from the LLM server after 1 attempt: no choices[0].message.content in \
                 \"{\\\"message\\\":\\\"internal\\\",\\\"object\\\":\\\"error\\\"}\"",
            ),
        ];
        let expected: Vec<(u64, u64, String, String)> =
            expected.iter().map(|(u, l, e)| (*u, *l, id_of(*u), e.to_string())).collect();
        assert_eq!(failures, expected);
        assert!(report.failed.iter().all(|f| f.path == output));
        // The records a live run writes: trimmed text, the model, the live prompt hash.
        for (user, text) in [
            (1, "Summary: The user enjoys quiet dramas about families and gentle comedies."),
            (2, "Summary: Fast thrillers, heists and clever crime stories; no musicals."),
        ] {
            let r = cache.get(user).expect("imported");
            assert_eq!((r.text.as_str(), r.model.as_str()), (text, MODEL));
            assert_eq!(r.prompt_hash, live.prompt_hash(&jobs[user as usize - 1].1));
        }
        assert_eq!(cache.get(11).map(|r| r.text.as_str()), Some("Summary: live."));
        // The failures file, as a live run writes it.
        let file = report.failures_file.clone().expect("a failures file");
        let kinds: Vec<(u64, String)> = std::fs::read_to_string(&file)
            .expect("failures")
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("json"))
            .map(|v| (v["user"].as_u64().unwrap_or(0), v["kind"].as_str().unwrap_or("").to_string()))
            .collect();
        let want: Vec<(u64, String)> = [
            (3, "http"),
            (4, "batch-error"),
            (5, "http"),
            (6, "invalid-answer"),
            (7, "invalid-answer"),
            (8, "invalid-answer"),
            (9, "malformed-answer"),
        ]
        .iter()
        .map(|(u, k)| (*u, k.to_string()))
        .collect();
        assert_eq!(kinds, want);
        // A reopened cache has the imported users; a new export asks exactly the others.
        drop(cache);
        let mut cache = SummaryCache::open(&cache_path).expect("reopen");
        assert_eq!(cache.len(), 3);
        let again = dir.path().join("again.jsonl");
        let export = prompts().export(&jobs, Some(&cache), &again).expect("export");
        assert_eq!((export.exported, export.cached), (8, 3));
        let users: Vec<u64> = exported_lines(&again)
            .iter()
            .filter_map(|l| l["custom_id"].as_str().and_then(parse_custom_id).map(|(u, _)| u))
            .collect();
        assert_eq!(users, (3..=10).collect::<Vec<u64>>());
        // Importing the same file again writes nothing new.
        let twice = prompts().import(std::slice::from_ref(&output), &jobs, &mut cache).expect("import");
        assert_eq!((twice.imported, twice.already, twice.failed.len(), twice.missing), (0, 3, 7, 8));
        assert_eq!(std::fs::read_to_string(&cache_path).expect("cache").lines().count(), 3);
    }

    #[test]
    fn bad_lines_are_errors_naming_file_and_line_and_nothing_is_written() {
        let dir = tempfile::tempdir().expect("tmp");
        let cache_path = dir.path().join("s.jsonl");
        let mut cache = SummaryCache::open(&cache_path).expect("cache");
        let good = fill(OUTPUT.lines().next().expect("a line"));
        let other_hash =
            r#"{"custom_id": "user-2-0000000000000000", "response": null, "error": {"code": "x", "message": "y"}}"#;
        let cases = [
            (
                r#"{"id": "batch_req_2", "custom_id": "#.to_string(),
                "not JSON (EOF while parsing a value at line 1 column 35)".to_string(),
            ),
            ("[1, 2]".into(), "not a JSON object".into()),
            (
                r#"{"id": "batch_req_2", "response": null}"#.into(),
                "no custom_id: not a line of a batch output file".into(),
            ),
            (
                r#"{"custom_id": "request-2", "response": null, "error": null}"#.into(),
                "unknown custom_id \"request-2\" (--export-batch writes user-<id>-<16 hex digits>)".into(),
            ),
            (
                format!(r#"{{"custom_id": "{}", "response": null, "error": null}}"#, custom_id(99, "0123456789abcdef")),
                "user-99-0123456789abcdef: user 99 is not among the users asked for (--split, --set, --shard and \
                 --limit)"
                    .into(),
            ),
            (good.clone(), format!("{}: user 1 is answered twice (also on line 1)", id_of(1))),
            (
                other_hash.into(),
                format!(
                    "user-2-0000000000000000: this answers a prompt with hash 0000000000000000, but the current \
                     settings give user 2 the prompt hash {}; import with the --model, --prompt and --max-items of \
                     the export",
                    prompts().prompt_hash(&jobs()[1].1)
                ),
            ),
            (
                fill(r#"{"custom_id": "{u2}", "response": null, "error": null}"#),
                "neither a response nor an error".into(),
            ),
            (
                fill(r#"{"custom_id": "{u2}", "response": 5, "error": null}"#),
                "\"response\" is 5, not null or an object".into(),
            ),
            (
                fill(r#"{"custom_id": "{u2}", "response": {"status_code": "ok", "body": null}, "error": null}"#),
                "status_code \"ok\" is not an HTTP status".into(),
            ),
        ];
        let path = dir.path().join("answers.jsonl");
        for (bad, message) in cases {
            // A good line, a blank line, then the bad one: line 3.
            std::fs::write(&path, format!("{good}\n\n{bad}\n")).expect("write");
            let e = prompts().import(std::slice::from_ref(&path), &jobs(), &mut cache).expect_err("an error");
            assert_eq!(e.to_string(), format!("{}:3: {message}", path.display()));
            assert!(matches!(e, SummarizeError::BatchFile { line: 3, .. }));
            assert!(cache.is_empty());
            assert_eq!(std::fs::read_to_string(&cache_path).expect("cache"), "");
        }
        // A user answered in two files.
        let second = dir.path().join("errors.jsonl");
        std::fs::write(&path, format!("{good}\n")).expect("write");
        std::fs::write(&second, format!("{good}\n")).expect("write");
        let e = prompts().import(&[path.clone(), second.clone()], &jobs(), &mut cache).expect_err("an error");
        assert_eq!(
            e.to_string(),
            format!("{}:1: {}: user 1 is answered twice (also on {}:1)", second.display(), id_of(1), path.display())
        );
        assert!(cache.is_empty());
    }

    #[test]
    fn custom_ids_name_one_user_each() {
        for user in [0u64, 7, 42, u64::MAX] {
            let id = custom_id(user, "00ff00ff00ff00ff");
            assert_eq!(parse_custom_id(&id), Some((user, "00ff00ff00ff00ff")));
        }
        for bad in [
            "user-",
            "user--00ff00ff00ff00ff",
            "user-1-00ff00ff00ff00f",
            "user-1-00ff00ff00ff00ffa",
            "user-1-00ff00ff00ff00fg",
            "User-1-00ff00ff00ff00ff",
            "user-18446744073709551616-00ff00ff00ff00ff",
        ] {
            assert_eq!(parse_custom_id(bad), None, "{bad}");
        }
    }
}
