//! Where the controllability experiments' text edits come from: [`OfflineEdits`] (deterministic,
//! always available) or [`LlmEdits`] (the authors' protocol through an OpenAI-compatible server,
//! every answer cached so a rerun asks nothing twice).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tears_metrics::normalize_genre;
use tears_summarize::edit::{describe_offline, favourite_among, llm_describe_item, llm_swap_rewrite, swap_genres};
use tears_summarize::{LlmClient, SummarizeError};

use super::ControlUser;
use crate::error::{Result, TearsError};

/// What an [`EditSource`] gives for one user: the edit, or the reason the user is left out.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<T> {
    /// The edit.
    Edit(T),
    /// The user is discarded, for this reason (counted in the results).
    Discard(String),
}

/// A large-scope rewrite of a summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Swap {
    /// The favourite genre as the source named it.
    pub favourite: String,
    /// The least favourite genre.
    pub least_favourite: String,
    /// The rewritten summary.
    pub text: String,
    /// The edit's kind in the edits file (`swap_genres`, `llm_swap_rewrite`).
    pub kind: String,
}

/// The held-out item a small-scope edit describes.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// Item id.
    pub item: u64,
    /// Title.
    pub title: &'a str,
    /// Genres as spelt in the data.
    pub genres: &'a [String],
    /// Tags (may be empty).
    pub tags: &'a [String],
}

/// The source of the text edits of [`super::large_scope`] and [`super::small_scope`].
///
/// A GERS profile is a genre vector: its large-scope edit always swaps the two genres'
/// proportions, with the favourite and least favourite from the fold-in ratings.
pub trait EditSource {
    /// A short name, recorded in the results (`offline`, `llm:gpt-4`).
    fn name(&self) -> String;
    /// The large-scope rewrite of `summary`, exchanging the user's favourite and least favourite
    /// among `genres` (the experiment's genres, as spelt in the data).
    ///
    /// # Errors
    /// Only what must stop the whole experiment (a dead server, a bad key, a cache error); a
    /// per-user failure is an [`Outcome::Discard`].
    fn swap(&mut self, user: &ControlUser, summary: &str, genres: &[String], min_rated: usize)
    -> Result<Outcome<Swap>>;
    /// Sentences describing `target`, to insert into the summary: one per attempt (the
    /// experiment reports the median rank change over them).
    ///
    /// # Errors
    /// As for [`EditSource::swap`].
    fn describe(&mut self, user: &ControlUser, target: &Target<'_>) -> Result<Outcome<Vec<String>>>;
}

/// The deterministic edits: favourite and least favourite from the fold-in ratings (highest and
/// lowest mean rating among genres with enough rated items), swapped by name and common forms
/// ([`swap_genres`]); the target described by its genres and tags ([`describe_offline`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct OfflineEdits;

/// The favourite and least favourite of `user` among `genres`, from the fold-in ratings.
pub(super) fn rated_favourites(user: &ControlUser, genres: &[String], min_rated: usize) -> Option<(String, String)> {
    let kept: Vec<String> = genres.iter().map(|g| normalize_genre(g)).collect();
    favourite_among(&user.window, min_rated, |g| kept.contains(&normalize_genre(g)))
}

impl EditSource for OfflineEdits {
    fn name(&self) -> String {
        "offline".into()
    }

    fn swap(
        &mut self,
        user: &ControlUser,
        summary: &str,
        genres: &[String],
        min_rated: usize,
    ) -> Result<Outcome<Swap>> {
        let Some((favourite, least_favourite)) = rated_favourites(user, genres, min_rated) else {
            return Ok(Outcome::Discard("fewer than two of the experiment's genres with enough rated items".into()));
        };
        let text = swap_genres(summary, &favourite, &least_favourite).text;
        if text == summary {
            return Ok(Outcome::Discard("the summary names neither genre (the swap changes nothing)".into()));
        }
        Ok(Outcome::Edit(Swap { favourite, least_favourite, text, kind: "swap_genres".into() }))
    }

    fn describe(&mut self, _user: &ControlUser, target: &Target<'_>) -> Result<Outcome<Vec<String>>> {
        if target.genres.is_empty() && target.tags.is_empty() {
            return Ok(Outcome::Discard("the target has neither genres nor tags to describe it".into()));
        }
        Ok(Outcome::Edit(vec![describe_offline(target.genres, target.tags)]))
    }
}

/// The authors' protocol through an LLM: `Favorite: [g]` / `Least Favorite: [g]` then, in the
/// same chat, a rewrite with the two exchanged ([`llm_swap_rewrite`]); about five words of plot
/// or theme per small-scope target, [`LlmEdits::attempts`] times ([`llm_describe_item`]).
///
/// Every accepted answer goes to a JSONL cache keyed by the model name, the temperature, the
/// attempt and the prompt's inputs, so a rerun (or another model on the same users) asks only
/// what it has not asked before. Answers that do not parse, name an unknown genre or fail for
/// one user (a 400, retries exhausted) discard that user; what stops every request (a dead
/// server, a bad key) stops the experiment.
#[derive(Debug)]
pub struct LlmEdits {
    client: LlmClient,
    cache: AnswerCache,
    /// Re-asks after an answer that fails its checks (2).
    pub max_reasks: u32,
    /// Descriptions per small-scope target (3, the median is reported).
    pub attempts: usize,
}

impl LlmEdits {
    /// Edits through `client`, with the answer cache at `cache` (created if needed, locked
    /// against a second writer).
    ///
    /// # Errors
    /// The cache cannot be read, is locked, or has a bad line (file and line named).
    pub fn new(client: LlmClient, cache: &Path) -> Result<Self> {
        Ok(LlmEdits { client, cache: AnswerCache::open(cache)?, max_reasks: 2, attempts: 3 })
    }

    /// The client (its usage counters).
    pub fn client(&self) -> &LlmClient {
        &self.client
    }

    /// Answers taken from the cache and answers asked, so far.
    pub fn cache_counts(&self) -> (usize, usize) {
        (self.cache.hits, self.cache.stored)
    }

    fn key(&self, kind: &str, attempt: usize, parts: &[&str]) -> String {
        let c = self.client.config();
        let mut h = Sha256::new();
        for p in
            [kind, &c.model, &c.temperature.to_string(), &attempt.to_string()].into_iter().chain(parts.iter().copied())
        {
            h.update(p.as_bytes());
            h.update([0u8]);
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A per-user failure becomes a discard reason; what stops every request is an error.
fn per_user<T>(r: std::result::Result<T, SummarizeError>, what: &str) -> Result<std::result::Result<T, String>> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(e) if e.is_fatal() => Err(TearsError::Summarize(e)),
        Err(e) => Ok(Err(format!("{what}: {}", e.kind()))),
    }
}

#[derive(Serialize, Deserialize)]
struct CachedSwap {
    favourite: String,
    least_favourite: String,
    text: String,
}

impl EditSource for LlmEdits {
    fn name(&self) -> String {
        format!("llm:{}", self.client.config().model)
    }

    fn swap(
        &mut self,
        user: &ControlUser,
        summary: &str,
        genres: &[String],
        _min_rated: usize,
    ) -> Result<Outcome<Swap>> {
        let key = self.key("swap", 0, &[summary, &genres.join("\u{1}")]);
        let cached: Option<CachedSwap> = self.cache.get(&key)?;
        let swap = match cached {
            Some(s) => s,
            None => {
                let answer = llm_swap_rewrite(&self.client, summary, genres, self.max_reasks);
                match per_user(answer, "the LLM's favourite / least favourite or rewrite failed")? {
                    Ok(s) => {
                        let s = CachedSwap {
                            favourite: s.favourite,
                            least_favourite: s.least_favourite,
                            text: s.edit.text,
                        };
                        self.cache.put(&key, user.user, "swap", &s)?;
                        s
                    }
                    Err(reason) => return Ok(Outcome::Discard(reason)),
                }
            }
        };
        if normalize_genre(&swap.favourite) == normalize_genre(&swap.least_favourite) {
            return Ok(Outcome::Discard("the LLM named the same genre twice".into()));
        }
        Ok(Outcome::Edit(Swap {
            favourite: swap.favourite,
            least_favourite: swap.least_favourite,
            text: swap.text,
            kind: "llm_swap_rewrite".into(),
        }))
    }

    fn describe(&mut self, user: &ControlUser, target: &Target<'_>) -> Result<Outcome<Vec<String>>> {
        let mut out = Vec::with_capacity(self.attempts);
        for attempt in 0..self.attempts.max(1) {
            let key =
                self.key("describe", attempt, &[&target.item.to_string(), target.title, &target.genres.join("|")]);
            if let Some(d) = self.cache.get::<String>(&key)? {
                out.push(d);
                continue;
            }
            let answer = llm_describe_item(&self.client, target.title, target.genres, self.max_reasks);
            match per_user(answer, "the LLM's description of the target failed")? {
                Ok(d) => {
                    self.cache.put(&key, user.user, "describe", &d)?;
                    out.push(d);
                }
                Err(reason) => return Ok(Outcome::Discard(reason)),
            }
        }
        Ok(Outcome::Edit(out))
    }
}

/// A JSONL file of accepted LLM answers: one `{"key", "user", "kind", "answer"}` per line,
/// appended and flushed as each answer arrives, so a killed run loses at most the answer in
/// flight (a torn last line is cut off on the next open, with a warning).
#[derive(Debug)]
struct AnswerCache {
    path: PathBuf,
    file: File,
    answers: HashMap<String, serde_json::Value>,
    hits: usize,
    stored: usize,
}

#[derive(Serialize, Deserialize)]
struct CacheLine {
    key: String,
    user: u64,
    kind: String,
    answer: serde_json::Value,
}

impl AnswerCache {
    fn open(path: &Path) -> Result<Self> {
        let io = |e: std::io::Error| TearsError::Summarize(SummarizeError::Io { path: path.to_path_buf(), source: e });
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = File::options().read(true).append(true).create(true).open(path).map_err(io)?;
        if file.try_lock().is_err() {
            return Err(TearsError::Summarize(SummarizeError::Locked { path: path.to_path_buf() }));
        }
        let mut answers = HashMap::new();
        let mut good_len = 0u64;
        let mut reader = BufReader::new(&file);
        let mut line = String::new();
        let mut number = 0usize;
        loop {
            line.clear();
            let n = reader.read_line(&mut line).map_err(io)?;
            if n == 0 {
                break;
            }
            number += 1;
            if !line.ends_with('\n') {
                tracing::warn!(
                    "{}: line {number} is torn (a run was killed while writing it); cut off",
                    path.display()
                );
                break;
            }
            let parsed: CacheLine = serde_json::from_str(line.trim_end()).map_err(|e| SummarizeError::Cache {
                path: path.to_path_buf(),
                line: number as u64,
                message: format!("not an LLM answer record: {e}"),
            })?;
            answers.insert(parsed.key, parsed.answer);
            good_len += n as u64;
        }
        drop(reader);
        if file.metadata().map_err(io)?.len() != good_len {
            file.set_len(good_len).map_err(io)?;
        }
        file.seek(SeekFrom::End(0)).map_err(io)?;
        Ok(AnswerCache { path: path.to_path_buf(), file, answers, hits: 0, stored: 0 })
    }

    fn get<T: for<'de> Deserialize<'de>>(&mut self, key: &str) -> Result<Option<T>> {
        let Some(v) = self.answers.get(key) else { return Ok(None) };
        let v = T::deserialize(v).map_err(|e| SummarizeError::Cache {
            path: self.path.clone(),
            line: 0,
            message: format!("a cached answer has the wrong shape: {e}"),
        })?;
        self.hits += 1;
        Ok(Some(v))
    }

    fn put<T: Serialize>(&mut self, key: &str, user: u64, kind: &str, answer: &T) -> Result<()> {
        let answer = serde_json::to_value(answer).map_err(|e| TearsError::BadRequest(e.to_string()))?;
        let line = CacheLine { key: key.to_string(), user, kind: kind.to_string(), answer: answer.clone() };
        let mut text = serde_json::to_string(&line).map_err(|e| TearsError::BadRequest(e.to_string()))?;
        text.push('\n');
        let path = &self.path;
        let io = |e: std::io::Error| TearsError::Summarize(SummarizeError::Io { path: path.clone(), source: e });
        self.file.write_all(text.as_bytes()).map_err(io)?;
        self.file.flush().map_err(io)?;
        self.answers.insert(key.to_string(), answer);
        self.stored += 1;
        Ok(())
    }
}
