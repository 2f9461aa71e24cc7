//! Error types of the datasets crate.

use std::path::{Path, PathBuf};

/// Everything that can go wrong while reading, preparing or saving data.
///
/// Every variant that comes from a file names the file; parse errors also name the
/// 1-based line number and what was expected there.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file the dataset needs does not exist.
    #[error("{dataset}: required file {} not found", path.display())]
    MissingFile {
        /// The path that was looked for.
        path: PathBuf,
        /// The dataset (or component) that needs it.
        dataset: String,
    },
    /// An I/O error while reading or writing a file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A malformed line or record.
    #[error("{}:{line}: expected {expected}, found {found:?}{}", path.display(), in_record(record.as_deref()))]
    Parse {
        /// The file being parsed.
        path: PathBuf,
        /// The 1-based line number of the bad record.
        line: u64,
        /// What the parser expected.
        expected: String,
        /// What it found (shortened when long): the offending field, or the whole line.
        found: String,
        /// The whole record, when `found` is one field of it (shortened when long).
        record: Option<String>,
    },
    /// Malformed JSON.
    #[error("{}: invalid JSON: {source}", path.display())]
    Json {
        /// The file being parsed.
        path: PathBuf,
        /// The underlying error (it carries line and column).
        #[source]
        source: serde_json::Error,
    },
    /// A compressed file that could not be decompressed.
    #[error("{}: cannot decompress: {message}", path.display())]
    Decompress {
        /// The compressed file.
        path: PathBuf,
        /// What the decompressor reported.
        message: String,
    },
    /// Invalid parameters (a protocol asking for more users than exist, a zero threshold, ...).
    #[error("invalid configuration: {0}")]
    Config(String),
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 120 {
        let mut out: String = s.chars().take(117).collect();
        out.push_str("...");
        out
    } else {
        s.to_string()
    }
}

fn in_record(record: Option<&str>) -> String {
    record.map(|r| format!(" in {r:?}")).unwrap_or_default()
}

/// Result alias of this crate.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

impl DataError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::NotFound {
            return DataError::MissingFile { path: path.to_path_buf(), dataset: "file".to_string() };
        }
        DataError::Io { path: path.to_path_buf(), source }
    }

    /// A parse error at `line` of `path`; `found` is shortened to 120 characters.
    pub fn parse(path: &Path, line: u64, expected: impl Into<String>, found: &str) -> Self {
        DataError::Parse {
            path: path.to_path_buf(),
            line,
            expected: expected.into(),
            found: shorten(found),
            record: None,
        }
    }

    /// A parse error of one field: `field` is what was found, `record` the whole line it is in.
    ///
    /// ```
    /// let e = tears_data::DataError::parse_field(
    ///     std::path::Path::new("ratings.csv"), 3, "a numeric rating", "abc", "1,3,abc,964981247",
    /// );
    /// assert_eq!(e.to_string(), "ratings.csv:3: expected a numeric rating, found \"abc\" in \"1,3,abc,964981247\"");
    /// ```
    pub fn parse_field(path: &Path, line: u64, expected: impl Into<String>, field: &str, record: &str) -> Self {
        DataError::Parse {
            path: path.to_path_buf(),
            line,
            expected: expected.into(),
            found: shorten(field),
            record: (record != field).then(|| shorten(record)),
        }
    }

    /// Whether this error describes one bad record (which lenient loading may skip).
    pub fn is_record_error(&self) -> bool {
        matches!(self, DataError::Parse { .. })
    }
}
