//! Loaders for the supported datasets. Each reads the files of one dataset in their exact
//! published format (latin-1 or UTF-8, LF or CRLF, plain or gzip) into a [`Dataset`].
//!
//! Malformed records are errors naming the file, the 1-based line and what was expected; with
//! [`LoadOptions::lenient`] they are skipped and counted in [`Dataset::skipped_records`].

mod goodbooks;
mod movielens;
mod netflix;

use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use goodbooks::{GOODBOOKS_GENRES, load_goodbooks};
pub use movielens::{
    ML100K_GENRES, load_ml_latest, load_ml1m, load_ml100k, parse_ml1m_movie_line, parse_ml1m_rating_line,
    parse_ml100k_rating_line, split_title_year,
};
pub use netflix::{
    civil_from_days, days_from_civil, format_date, load_netflix, parse_netflix_date, parse_netflix_title_line,
};

use crate::dataset::{Dataset, DatasetBuilder, LoadOptions};
use crate::error::{DataError, Result};

/// Parses `s` as a `T`, or returns a parse error for `line` of `path` describing `what`.
pub(crate) fn parse_field<T: FromStr>(s: &str, path: &Path, line: u64, what: &str, context: &str) -> Result<T> {
    s.trim().parse::<T>().map_err(|_| DataError::parse_field(path, line, what, s.trim(), context))
}

/// Parses a rating and checks that it is finite and within 0..=10 (every supported scale).
pub(crate) fn parse_rating(s: &str, path: &Path, line: u64, context: &str) -> Result<f32> {
    let r: f32 = parse_field(s, path, line, "a numeric rating", context)?;
    if r.is_finite() && (0.0..=10.0).contains(&r) {
        Ok(r)
    } else {
        Err(DataError::parse_field(path, line, "a rating between 0 and 10", s.trim(), context))
    }
}

/// The first existing file among `candidates` inside `dir`.
pub(crate) fn first_existing(dir: &Path, candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(|c| dir.join(c)).find(|p| p.is_file())
}

/// Files in `dir` whose name starts with `prefix` and ends with one of `suffixes`, sorted by name.
pub(crate) fn files_matching(dir: &Path, prefix: &str, suffixes: &[&str]) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(prefix) && suffixes.iter().any(|s| name.ends_with(s)) {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// A CSV file with a header row, read as byte records (so latin-1 files work) with 1-based line
/// numbers in errors.
pub(crate) struct CsvFile {
    reader: csv::Reader<Box<dyn std::io::BufRead>>,
    path: PathBuf,
    header: Vec<String>,
}

impl CsvFile {
    /// Opens `path` (plain or gzip) and reads its header.
    pub(crate) fn open(path: &Path, dataset: &str) -> Result<Self> {
        let input = crate::io::open(path, dataset)?;
        // Records end at '\n' only, so that the reader's line count is the file's for LF, CRLF
        // and mixed endings alike; a '\r' before it is stripped from the record's last field.
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_reader(input);
        let header = reader
            .byte_headers()
            .map_err(|e| csv_error(path, e))?
            .iter()
            .map(|f| crate::io::decode(f).trim().trim_start_matches('\u{feff}').to_string())
            .collect();
        Ok(CsvFile { reader, path: path.to_path_buf(), header })
    }

    /// The index of the column named `name`, or a parse error naming the header line.
    pub(crate) fn column(&self, name: &str) -> Result<usize> {
        self.header.iter().position(|h| h == name).ok_or_else(|| {
            DataError::parse(&self.path, 1, format!("a header with a `{name}` column"), &self.header.join(","))
        })
    }

    /// The index of the column named `name`, if present.
    pub(crate) fn optional_column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Calls `f(line, fields)` for each record; record errors go through `on_error`.
    pub(crate) fn for_each(
        &mut self,
        mut on_error: impl FnMut(DataError) -> Result<()>,
        mut f: impl FnMut(u64, &[std::borrow::Cow<'_, str>]) -> Result<()>,
    ) -> Result<()> {
        let mut record = csv::ByteRecord::new();
        loop {
            match self.reader.read_byte_record(&mut record) {
                Ok(false) => return Ok(()),
                Ok(true) => {
                    let line = record.position().map(|p| p.line()).unwrap_or(0);
                    if record.len() == 1 && record.get(0).is_some_and(|f| f.is_empty() || f == b"\r") {
                        continue; // blank line
                    }
                    let last = record.len().saturating_sub(1);
                    let fields: Vec<std::borrow::Cow<'_, str>> = record
                        .iter()
                        .enumerate()
                        .map(|(i, f)| crate::io::decode(if i == last { f.strip_suffix(b"\r").unwrap_or(f) } else { f }))
                        .collect();
                    if let Err(e) = f(line, &fields) {
                        on_error(e)?;
                    }
                }
                Err(e) => {
                    let err = csv_error(&self.path, e);
                    on_error(err)?;
                }
            }
        }
    }
}

fn csv_error(path: &Path, e: csv::Error) -> DataError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    match e.into_kind() {
        csv::ErrorKind::Io(io) => DataError::io(path, io),
        other => DataError::parse(path, line, "a well-formed CSV record", &format!("{other:?}")),
    }
}

/// Joins the fields of a record for error messages.
pub(crate) fn join_fields(fields: &[std::borrow::Cow<'_, str>]) -> String {
    fields.iter().map(|f| f.as_ref()).collect::<Vec<_>>().join(",")
}

/// Reads a line-oriented file and calls `f(line, text)` for each non-empty line; record errors go
/// through the builder's lenient handling.
pub(crate) fn for_each_line(
    path: &Path,
    dataset: &str,
    builder: &mut DatasetBuilder,
    options: &LoadOptions,
    mut f: impl FnMut(&mut DatasetBuilder, u64, &str) -> Result<()>,
) -> Result<()> {
    let reader = crate::io::open(path, dataset)?;
    let mut lines = crate::io::Lines::new(reader, path);
    while let Some(item) = lines.next() {
        let (n, text) = item?;
        if text.trim().is_empty() {
            continue;
        }
        if let Err(e) = f(builder, n, &text) {
            builder.on_error(options, e)?;
        }
    }
    Ok(())
}

/// The datasets this crate can load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// MovieLens 100K (`u.data`, `u.item`, `u.genre`).
    Ml100k,
    /// MovieLens 1M (`ratings.dat` plain or gzip, `movies.dat`).
    Ml1m,
    /// MovieLens latest / 20M / 25M (`ratings.csv`, `movies.csv`, optional `tags.csv`).
    MlLatest,
    /// Netflix Prize (`combined_data_*.txt` or `training_set/mv_*.txt`, `movie_titles.txt`).
    Netflix,
    /// Goodbooks-10k (`ratings.csv`, `books.csv`, `book_tags.csv` + `tags.csv`).
    Goodbooks,
}

impl Source {
    /// Loads the dataset from the folder `dir`.
    pub fn load(self, dir: &Path, options: &LoadOptions) -> Result<Dataset> {
        match self {
            Source::Ml100k => load_ml100k(dir, options),
            Source::Ml1m => load_ml1m(dir, options),
            Source::MlLatest => load_ml_latest(dir, options),
            Source::Netflix => load_netflix(dir, options),
            Source::Goodbooks => load_goodbooks(dir, options),
        }
    }
}
