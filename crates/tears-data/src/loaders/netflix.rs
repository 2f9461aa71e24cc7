//! Netflix Prize.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{CsvFile, files_matching, first_existing, for_each_line, join_fields, parse_field, parse_rating};
use crate::dataset::{Dataset, DatasetBuilder, Item, LoadOptions};
use crate::error::{DataError, Result};

/// Days since 1970-01-01 of a proleptic Gregorian date (exact for years within ±10¹²).
///
/// ```
/// assert_eq!(tears_data::loaders::days_from_civil(1970, 1, 1), 0);
/// assert_eq!(tears_data::loaders::days_from_civil(2005, 12, 31), 13148);
/// ```
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date `(year, month, day)` of a day count since 1970-01-01 (the inverse
/// of [`days_from_civil`]).
///
/// ```
/// assert_eq!(tears_data::loaders::civil_from_days(13148), (2005, 12, 31));
/// ```
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Formats Unix seconds as `YYYY-MM-DD` (UTC).
///
/// ```
/// assert_eq!(tears_data::loaders::format_date(978_300_760), "2000-12-31");
/// ```
pub fn format_date(timestamp: i64) -> String {
    let (y, m, d) = civil_from_days(timestamp.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Parses a Netflix `YYYY-MM-DD` date into Unix seconds at midnight UTC; years outside 1..=9999,
/// months outside 1..=12 and days past the month's end are rejected.
pub fn parse_netflix_date(s: &str) -> Option<i64> {
    let mut it = s.trim().splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    if !(1..=9999).contains(&y) {
        return None;
    }
    let m: u32 = it.next()?.parse().ok()?;
    let d: u32 = it.next()?.parse().ok()?;
    let days_in_month = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=days_in_month).contains(&d) {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400)
}

/// Parses one `movie_titles.txt` line: `MovieID,YearOfRelease,Title`, the year possibly `NULL`,
/// the title possibly containing commas (only the first two commas split).
pub fn parse_netflix_title_line(path: &Path, line: u64, text: &str) -> Result<Item> {
    let mut it = text.splitn(3, ',');
    let (Some(id), Some(year), Some(title)) = (it.next(), it.next(), it.next()) else {
        return Err(DataError::parse(path, line, "MovieID,YearOfRelease,Title", text));
    };
    let id = parse_field(id, path, line, "a numeric MovieID", text)?;
    let year = match year.trim() {
        "NULL" | "" => None,
        y => Some(parse_field(y, path, line, "a year or NULL", text)?),
    };
    Ok(Item { id, title: title.trim().to_string(), year, genres: Vec::new(), tags: Vec::new() })
}

/// Loads the Netflix Prize data from `dir`.
///
/// Ratings come from `combined_data_*.txt` when present, otherwise from `training_set/mv_*.txt`:
/// blocks of a `MovieID:` line followed by `CustomerID,Rating,YYYY-MM-DD` lines. Titles come from
/// `movie_titles.txt` (or `.csv`); genres, when a `genres.csv` / `movie_genres.csv` /
/// `netflix_genres.csv` with `movieId,genres` (pipe-separated) is present, from that file.
pub fn load_netflix(dir: &Path, options: &LoadOptions) -> Result<Dataset> {
    const NAME: &str = "Netflix Prize";
    let titles = first_existing(dir, &["movie_titles.txt", "movie_titles.csv"])
        .ok_or_else(|| DataError::MissingFile { path: dir.join("movie_titles.txt"), dataset: NAME.to_string() })?;
    let mut rating_files: Vec<PathBuf> = files_matching(dir, "combined_data_", &[".txt", ".txt.gz"])?;
    if rating_files.is_empty() {
        rating_files = files_matching(&dir.join("training_set"), "mv_", &[".txt", ".txt.gz"])?;
    }
    if rating_files.is_empty() {
        return Err(DataError::MissingFile {
            path: dir.join("combined_data_1.txt"),
            dataset: format!("{NAME} (or training_set/mv_*.txt)"),
        });
    }
    let mut b = DatasetBuilder::new("netflix");
    for_each_line(&titles, NAME, &mut b, options, |b, n, text| {
        let item = parse_netflix_title_line(&titles, n, text)?;
        b.add_item(item);
        Ok(())
    })?;

    if let Some(genres) = first_existing(dir, &["genres.csv", "movie_genres.csv", "netflix_genres.csv"]) {
        let mut csv = CsvFile::open(&genres, NAME)?;
        let c_id = csv
            .optional_column("movieId")
            .or_else(|| csv.optional_column("MovieID"))
            .map_or_else(|| csv.column("movieId"), Ok)?;
        let c_genres = csv.column("genres")?;
        let path = csv.path().to_path_buf();
        let mut map: HashMap<u64, Vec<String>> = HashMap::new();
        csv.for_each(
            |e| b.on_error(options, e),
            |n, f| {
                let (Some(id), Some(g)) = (f.get(c_id), f.get(c_genres)) else {
                    return Err(DataError::parse(&path, n, "movieId,genres", &join_fields(f)));
                };
                let id: u64 = parse_field(id, &path, n, "a numeric movieId", &join_fields(f))?;
                let list = g
                    .split('|')
                    .map(str::trim)
                    .filter(|g| !g.is_empty() && *g != "(no genres listed)")
                    .map(str::to_string)
                    .collect();
                map.insert(id, list);
                Ok(())
            },
        )?;
        for (id, g) in map {
            if let Some(item) = b.item_mut(id) {
                item.genres = g;
            }
        }
    }

    for file in &rating_files {
        let mut movie: Option<u64> = None;
        for_each_line(file, NAME, &mut b, options, |b, n, text| {
            let text = text.trim();
            if let Some(id) = text.strip_suffix(':') {
                movie = Some(parse_field(id, file, n, "a `MovieID:` header", text)?);
                return Ok(());
            }
            let Some(m) = movie else {
                return Err(DataError::parse(file, n, "a `MovieID:` header before the first rating", text));
            };
            let mut it = text.splitn(3, ',');
            let (Some(c), Some(r), Some(d)) = (it.next(), it.next(), it.next()) else {
                return Err(DataError::parse(file, n, "CustomerID,Rating,YYYY-MM-DD", text));
            };
            let c: u64 = parse_field(c, file, n, "a numeric CustomerID", text)?;
            let r = parse_rating(r, file, n, text)?;
            let t = parse_netflix_date(d).ok_or_else(|| DataError::parse(file, n, "a date YYYY-MM-DD", text))?;
            b.rate(c, m, r, t);
            Ok(())
        })?;
    }
    Ok(b.finish())
}
