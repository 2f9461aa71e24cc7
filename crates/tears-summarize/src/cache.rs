//! The JSONL summary cache: one finished summary per line, appended and flushed at once.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, SummarizeError};

/// One cached summary (one JSON line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheRecord {
    /// Source user id.
    pub user: u64,
    /// The summary.
    pub text: String,
    /// The model (`template` for the template summarizer).
    pub model: String,
    /// Hash of what the summarizer saw (rendered prompt and settings); see [`crate::Summarizer::prompt_hash`].
    pub prompt_hash: String,
    /// When the summary was written, RFC 3339 UTC.
    pub created_at: String,
}

/// An append-only JSONL cache of summaries.
///
/// Opening reads every line (a later line for a user replaces an earlier one). Only a last line
/// without its newline can be a torn write (a crash or `kill -9` in the middle of an append): when
/// it is not a whole record it is cut from the file with a warning (its user is summarized again),
/// and when it is one, it is kept and its newline added. Any complete line that is not a record,
/// the last one included, is an error naming the line: nothing in the file is removed silently.
/// Each [`SummaryCache::append`] writes one line and flushes it to the operating system, so a crash
/// or Ctrl-C loses nothing already answered.
///
/// The cache holds an exclusive advisory lock on its file while open, so a second writer (another
/// `tears summarize` on the same file, or a second `open` in this process) gets
/// [`SummarizeError::Locked`] instead of asking every user again.
///
/// ```
/// use tears_summarize::{CacheRecord, SummaryCache};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("s.jsonl");
/// let mut cache = SummaryCache::open(&path)?;
/// cache.append(CacheRecord { user: 7, text: "Summary: x".into(), model: "m".into(),
///     prompt_hash: "h".into(), created_at: tears_summarize::now_rfc3339() })?;
/// drop(cache);
/// let cache = SummaryCache::open(&path)?;
/// assert_eq!(cache.get(7).map(|r| r.text.as_str()), Some("Summary: x"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct SummaryCache {
    path: PathBuf,
    file: File,
    records: HashMap<u64, CacheRecord>,
}

impl SummaryCache {
    /// Opens (or creates) the cache at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| SummarizeError::io(dir, e))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| SummarizeError::io(path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(SummarizeError::Locked { path: path.to_path_buf() }),
            Err(std::fs::TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
                tracing::warn!(
                    "{}: this file system has no file locks; do not run two writers at once",
                    path.display()
                );
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(SummarizeError::io(path, e)),
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| SummarizeError::io(path, e))?;
        let mut records = HashMap::new();
        let mut start = 0usize;
        let mut line_no = 0u64;
        let not_a_record = |line_no| SummarizeError::Cache {
            path: path.to_path_buf(),
            line: line_no,
            message: "not a cache record (user, text, model, prompt_hash, created_at)".into(),
        };
        while start < bytes.len() {
            line_no += 1;
            let newline = bytes[start..].iter().position(|&b| b == b'\n');
            let end = newline.map_or(bytes.len(), |p| start + p);
            let line = &bytes[start..end];
            let blank = line.iter().all(u8::is_ascii_whitespace);
            let parsed = std::str::from_utf8(line).ok().and_then(|l| serde_json::from_str::<CacheRecord>(l).ok());
            match (parsed, newline.is_some()) {
                (Some(r), complete) => {
                    records.insert(r.user, r);
                    if !complete {
                        // A whole record whose newline did not make it: keep it, end its line.
                        file.write_all(b"\n").map_err(|e| SummarizeError::io(path, e))?;
                    }
                }
                (None, true) if blank => {}
                (None, true) => return Err(not_a_record(line_no)),
                (None, false) => {
                    if !blank {
                        tracing::warn!(
                            "{}:{line_no}: cutting a torn last line ({} bytes, no newline, not a whole record); \
                             its user will be summarized again",
                            path.display(),
                            end - start
                        );
                    }
                    file.set_len(start as u64).map_err(|e| SummarizeError::io(path, e))?;
                    file.seek(SeekFrom::End(0)).map_err(|e| SummarizeError::io(path, e))?;
                }
            }
            start = end + 1;
        }
        Ok(SummaryCache { path: path.to_path_buf(), file, records })
    }

    /// Where a batch writes the users that failed (`<cache>.failures.jsonl`, beside the cache).
    ///
    /// ```
    /// let p = tears_summarize::SummaryCache::failures_path_of(std::path::Path::new("runs/s.jsonl"));
    /// assert_eq!(p, std::path::Path::new("runs/s.jsonl.failures.jsonl"));
    /// ```
    pub fn failures_path_of(path: &Path) -> PathBuf {
        let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(".failures.jsonl");
        path.with_file_name(name)
    }

    /// [`SummaryCache::failures_path_of`] this cache.
    pub fn failures_path(&self) -> PathBuf {
        Self::failures_path_of(&self.path)
    }

    /// The cache file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The latest record of `user`.
    pub fn get(&self, user: u64) -> Option<&CacheRecord> {
        self.records.get(&user)
    }

    /// Whether `user` has a record made by `model` from a prompt with `prompt_hash`.
    pub fn is_done(&self, user: u64, model: &str, prompt_hash: &str) -> bool {
        self.records.get(&user).is_some_and(|r| r.model == model && r.prompt_hash == prompt_hash)
    }

    /// Number of users with a record.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// All records, keyed by user.
    pub fn records(&self) -> &HashMap<u64, CacheRecord> {
        &self.records
    }

    /// Appends `record` as one line and flushes it.
    pub fn append(&mut self, record: CacheRecord) -> Result<()> {
        let mut line =
            serde_json::to_string(&record).map_err(|e| SummarizeError::io(&self.path, std::io::Error::other(e)))?;
        line.push('\n');
        self.file.write_all(line.as_bytes()).map_err(|e| SummarizeError::io(&self.path, e))?;
        self.file.flush().map_err(|e| SummarizeError::io(&self.path, e))?;
        self.records.insert(record.user, record);
        Ok(())
    }

    /// Forces the file to disk (at the end of a batch).
    pub fn sync(&self) -> Result<()> {
        self.file.sync_data().map_err(|e| SummarizeError::io(&self.path, e))
    }
}

/// The current time as RFC 3339 UTC (`2024-05-01T12:00:00Z`).
///
/// ```
/// let t = tears_summarize::now_rfc3339();
/// assert!(t.ends_with('Z') && t.len() == 20);
/// ```
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    rfc3339(secs as i64)
}

/// Unix seconds as RFC 3339 UTC (proleptic Gregorian).
pub(crate) fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = tears_data::loaders::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
