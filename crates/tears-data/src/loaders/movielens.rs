//! MovieLens 100K, 1M and latest/20M/25M.

use std::path::Path;

use super::{CsvFile, files_matching, first_existing, for_each_line, join_fields, parse_field, parse_rating};
use crate::dataset::{Dataset, DatasetBuilder, Item, LoadOptions};
use crate::error::{DataError, Result};
use crate::io::require_file;

/// The 19 genres of ML-100K's `u.item` flag columns, in `u.genre` order.
pub const ML100K_GENRES: [&str; 19] = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
];

/// Splits a MovieLens title `"Toy Story (1995)"` into `("Toy Story", Some(1995))`.
///
/// Only a trailing four-digit year in parentheses is taken (`"Seven (Se7en) (1995)"` keeps its
/// alternative title); a title without one is returned unchanged with `None`.
///
/// ```
/// use tears_data::loaders::split_title_year;
/// assert_eq!(split_title_year("Toy Story (1995)"), ("Toy Story".to_string(), Some(1995)));
/// assert_eq!(split_title_year("Babylon 5"), ("Babylon 5".to_string(), None));
/// ```
pub fn split_title_year(raw: &str) -> (String, Option<i32>) {
    let t = raw.trim();
    // Some ML-latest titles end in "(2006-2007)" or have a trailing space before ")".
    if let Some(open) = t.rfind('(')
        && t.ends_with(')')
    {
        let inner = t[open + 1..t.len() - 1].trim();
        let year_part = inner.split('-').next().unwrap_or("");
        if year_part.len() == 4
            && year_part.bytes().all(|b| b.is_ascii_digit())
            && let Ok(y) = year_part.parse::<i32>()
        {
            return (t[..open].trim_end().to_string(), Some(y));
        }
    }
    (t.to_string(), None)
}

/// Parses one ML-100K `u.data` line (`user<TAB>item<TAB>rating<TAB>timestamp`).
pub fn parse_ml100k_rating_line(path: &Path, line: u64, text: &str) -> Result<(u64, u64, f32, i64)> {
    let mut it = text.split('\t');
    let expected = "user<TAB>item<TAB>rating<TAB>timestamp";
    let (Some(u), Some(i), Some(r), Some(t), None) = (it.next(), it.next(), it.next(), it.next(), it.next()) else {
        return Err(DataError::parse(path, line, expected, text));
    };
    Ok((
        parse_field(u, path, line, "a numeric user id", text)?,
        parse_field(i, path, line, "a numeric item id", text)?,
        parse_rating(r, path, line, text)?,
        parse_field(t, path, line, "a Unix timestamp", text)?,
    ))
}

/// Parses one ML-1M `ratings.dat` line (`UserID::MovieID::Rating::Timestamp`).
pub fn parse_ml1m_rating_line(path: &Path, line: u64, text: &str) -> Result<(u64, u64, f32, i64)> {
    let mut it = text.split("::");
    let (Some(u), Some(i), Some(r), Some(t), None) = (it.next(), it.next(), it.next(), it.next(), it.next()) else {
        return Err(DataError::parse(path, line, "UserID::MovieID::Rating::Timestamp", text));
    };
    Ok((
        parse_field(u, path, line, "a numeric UserID", text)?,
        parse_field(i, path, line, "a numeric MovieID", text)?,
        parse_rating(r, path, line, text)?,
        parse_field(t, path, line, "a Unix timestamp", text)?,
    ))
}

/// Parses one ML-1M `movies.dat` line (`MovieID::Title (Year)::Genre|Genre`).
pub fn parse_ml1m_movie_line(path: &Path, line: u64, text: &str) -> Result<Item> {
    let mut it = text.splitn(3, "::");
    let (Some(id), Some(title), Some(genres)) = (it.next(), it.next(), it.next()) else {
        return Err(DataError::parse(path, line, "MovieID::Title (Year)::Genre|Genre", text));
    };
    let id = parse_field(id, path, line, "a numeric MovieID", text)?;
    let (title, year) = split_title_year(title);
    Ok(Item { id, title, year, genres: split_genres(genres), tags: Vec::new() })
}

fn split_genres(s: &str) -> Vec<String> {
    s.split('|').map(str::trim).filter(|g| !g.is_empty() && *g != "(no genres listed)").map(str::to_string).collect()
}

/// Loads MovieLens 100K from `dir` (`u.data`, `u.item`, and `u.genre` when present).
pub fn load_ml100k(dir: &Path, options: &LoadOptions) -> Result<Dataset> {
    const NAME: &str = "MovieLens 100K";
    let data = require_file(&dir.join("u.data"), NAME)?;
    let item_path = require_file(&dir.join("u.item"), NAME)?;
    let mut b = DatasetBuilder::new("ml-100k");

    let mut genres: Vec<String> = ML100K_GENRES.iter().map(|s| s.to_string()).collect();
    let genre_path = dir.join("u.genre");
    if genre_path.is_file() {
        let mut listed: Vec<(usize, String)> = Vec::new();
        for_each_line(&genre_path, NAME, &mut b, options, |_, n, text| {
            let (name, idx) =
                text.rsplit_once('|').ok_or_else(|| DataError::parse(&genre_path, n, "genre|index", text))?;
            let idx: usize = parse_field(idx, &genre_path, n, "a genre index", text)?;
            listed.push((idx, name.to_string()));
            Ok(())
        })?;
        if !listed.is_empty() {
            listed.sort();
            genres = listed.into_iter().map(|(_, g)| g).collect();
        }
    }

    for_each_line(&item_path, NAME, &mut b, options, |b, n, text| {
        let fields: Vec<&str> = text.split('|').collect();
        if fields.len() != 5 + genres.len() {
            return Err(DataError::parse(
                &item_path,
                n,
                format!(
                    "{} '|'-separated fields (id|title|release|video|url|{} genre flags)",
                    5 + genres.len(),
                    genres.len()
                ),
                text,
            ));
        }
        let id = parse_field(fields[0], &item_path, n, "a numeric item id", text)?;
        let (title, mut year) = split_title_year(fields[1]);
        if year.is_none() {
            // release date like 01-Jan-1995
            year = fields[2].rsplit('-').next().and_then(|y| y.parse().ok());
        }
        let mut item_genres = Vec::new();
        for (g, flag) in genres.iter().zip(&fields[5..]) {
            match flag.trim() {
                "1" => item_genres.push(g.clone()),
                "0" => {}
                _ => return Err(DataError::parse(&item_path, n, "genre flags 0 or 1", text)),
            }
        }
        b.add_item(Item { id, title, year, genres: item_genres, tags: Vec::new() });
        Ok(())
    })?;

    for_each_line(&data, NAME, &mut b, options, |b, n, text| {
        let (u, i, r, t) = parse_ml100k_rating_line(&data, n, text)?;
        b.rate(u, i, r, t);
        Ok(())
    })?;
    Ok(b.finish())
}

/// Loads MovieLens 1M from `dir`: `movies.dat` and the first of `ratings.dat`, `ratings.dat.gz`
/// or any `ratings*.dat[.gz]` (such as `ratings_partial_users1-2999.dat.gz`).
pub fn load_ml1m(dir: &Path, options: &LoadOptions) -> Result<Dataset> {
    const NAME: &str = "MovieLens 1M";
    let movies = require_file(&dir.join("movies.dat"), NAME)?;
    let ratings = match first_existing(dir, &["ratings.dat", "ratings.dat.gz"]) {
        Some(p) => p,
        None => files_matching(dir, "ratings", &[".dat", ".dat.gz"])?
            .into_iter()
            .next()
            .ok_or_else(|| DataError::MissingFile { path: dir.join("ratings.dat"), dataset: NAME.to_string() })?,
    };
    let mut b = DatasetBuilder::new("ml-1m");
    for_each_line(&movies, NAME, &mut b, options, |b, n, text| {
        let item = parse_ml1m_movie_line(&movies, n, text)?;
        b.add_item(item);
        Ok(())
    })?;
    for_each_line(&ratings, NAME, &mut b, options, |b, n, text| {
        let (u, i, r, t) = parse_ml1m_rating_line(&ratings, n, text)?;
        b.rate(u, i, r, t);
        Ok(())
    })?;
    Ok(b.finish())
}

/// Loads MovieLens latest / 20M / 25M from `dir`: `ratings.csv` (`userId,movieId,rating,timestamp`),
/// `movies.csv` (`movieId,title,genres`, quoted titles) and, when present, `tags.csv`
/// (`userId,movieId,tag,timestamp`; an item's tags are ordered by how often they were applied).
pub fn load_ml_latest(dir: &Path, options: &LoadOptions) -> Result<Dataset> {
    const NAME: &str = "MovieLens latest";
    let ratings = require_file(&dir.join("ratings.csv"), NAME)?;
    let movies = require_file(&dir.join("movies.csv"), NAME)?;
    let mut b = DatasetBuilder::new("ml-latest");

    let mut csv = CsvFile::open(&movies, NAME)?;
    let (c_id, c_title, c_genres) = (csv.column("movieId")?, csv.column("title")?, csv.column("genres")?);
    let path = csv.path().to_path_buf();
    let mut items = Vec::new();
    csv.for_each(
        |e| b.on_error(options, e),
        |n, f| {
            let (Some(id), Some(title), Some(genres)) = (f.get(c_id), f.get(c_title), f.get(c_genres)) else {
                return Err(DataError::parse(&path, n, "movieId,title,genres", &join_fields(f)));
            };
            let id = parse_field(id, &path, n, "a numeric movieId", &join_fields(f))?;
            let (title, year) = split_title_year(title);
            items.push(Item { id, title, year, genres: split_genres(genres), tags: Vec::new() });
            Ok(())
        },
    )?;
    for item in items {
        b.add_item(item);
    }

    let mut csv = CsvFile::open(&ratings, NAME)?;
    let cols = [csv.column("userId")?, csv.column("movieId")?, csv.column("rating")?, csv.column("timestamp")?];
    let path = csv.path().to_path_buf();
    let mut events = Vec::new();
    csv.for_each(
        |e| b.on_error(options, e),
        |n, f| {
            let get = |c: usize| f.get(c).map(|s| s.as_ref());
            let (Some(u), Some(i), Some(r), Some(t)) = (get(cols[0]), get(cols[1]), get(cols[2]), get(cols[3])) else {
                return Err(DataError::parse(&path, n, "userId,movieId,rating,timestamp", &join_fields(f)));
            };
            let ctx = || join_fields(f);
            events.push((
                parse_field::<u64>(u, &path, n, "a numeric userId", &ctx())?,
                parse_field::<u64>(i, &path, n, "a numeric movieId", &ctx())?,
                parse_rating(r, &path, n, &ctx())?,
                parse_field::<i64>(t, &path, n, "a Unix timestamp", &ctx())?,
            ));
            Ok(())
        },
    )?;
    for (u, i, r, t) in events {
        b.rate(u, i, r, t);
    }

    let tags_path = dir.join("tags.csv");
    if tags_path.is_file() {
        let mut csv = CsvFile::open(&tags_path, NAME)?;
        let (c_movie, c_tag) = (csv.column("movieId")?, csv.column("tag")?);
        let path = csv.path().to_path_buf();
        let mut counts: std::collections::HashMap<u64, Vec<(String, usize)>> = Default::default();
        csv.for_each(
            |e| b.on_error(options, e),
            |n, f| {
                let (Some(m), Some(tag)) = (f.get(c_movie), f.get(c_tag)) else {
                    return Err(DataError::parse(&path, n, "userId,movieId,tag,timestamp", &join_fields(f)));
                };
                let m: u64 = parse_field(m, &path, n, "a numeric movieId", &join_fields(f))?;
                let tag = tag.trim().to_lowercase();
                if tag.is_empty() {
                    return Ok(());
                }
                let entry = counts.entry(m).or_default();
                match entry.iter_mut().find(|(t, _)| *t == tag) {
                    Some((_, c)) => *c += 1,
                    None => entry.push((tag, 1)),
                }
                Ok(())
            },
        )?;
        for (m, mut tags) in counts {
            // Most frequent first; ties keep first-applied order (stable sort).
            tags.sort_by_key(|t| std::cmp::Reverse(t.1));
            if let Some(item) = b.item_mut(m) {
                item.tags = tags.into_iter().map(|(t, _)| t).collect();
            }
        }
    }
    Ok(b.finish())
}
