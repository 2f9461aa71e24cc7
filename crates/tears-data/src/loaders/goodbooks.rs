//! Goodbooks-10k.

use std::collections::HashMap;
use std::path::Path;

use super::{CsvFile, join_fields, parse_field, parse_rating};
use crate::dataset::{Dataset, DatasetBuilder, Item, LoadOptions};
use crate::error::{DataError, Result};
use crate::io::require_file;

/// Goodreads shelves treated as genres (after normalisation), in the vocabulary of the
/// Goodbooks "enriched" genre lists.
pub const GOODBOOKS_GENRES: [&str; 40] = [
    "art",
    "biography",
    "business",
    "chick-lit",
    "children",
    "christian",
    "classics",
    "comics",
    "contemporary",
    "cookbooks",
    "crime",
    "fantasy",
    "fiction",
    "graphic-novels",
    "historical-fiction",
    "history",
    "horror",
    "humor",
    "lgbt",
    "manga",
    "memoir",
    "music",
    "mystery",
    "nonfiction",
    "paranormal",
    "philosophy",
    "poetry",
    "psychology",
    "religion",
    "romance",
    "science",
    "science-fiction",
    "self-help",
    "spirituality",
    "sports",
    "suspense",
    "thriller",
    "travel",
    "young-adult",
    "dystopia",
];

/// Shelves that say nothing about a book's content.
const SHELF_NOISE: [&str; 16] = [
    "to-read",
    "currently-reading",
    "favorites",
    "favourites",
    "owned",
    "books-i-own",
    "owned-books",
    "default",
    "my-books",
    "library",
    "kindle",
    "ebook",
    "ebooks",
    "audiobook",
    "audiobooks",
    "wish-list",
];

/// Maps a Goodreads shelf name to a genre of [`GOODBOOKS_GENRES`], if it is one.
fn shelf_genre(tag: &str) -> Option<&'static str> {
    let t = tag.trim().to_lowercase();
    let canonical = match t.as_str() {
        "sci-fi" | "scifi" | "sf" | "science-fiction-fantasy" => "science-fiction",
        "ya" | "young-adult-fiction" | "teen" => "young-adult",
        "non-fiction" => "nonfiction",
        "historical" => "historical-fiction",
        "graphic-novel" => "graphic-novels",
        "comic" | "comic-books" => "comics",
        "memoirs" | "autobiography" => "memoir",
        "childrens" | "children-s" | "kids" => "children",
        "humour" | "comedy" | "funny" => "humor",
        "classic" => "classics",
        "thrillers" => "thriller",
        "mysteries" => "mystery",
        "biographies" => "biography",
        "cookbook" | "cooking" => "cookbooks",
        "dystopian" => "dystopia",
        other => other,
    };
    GOODBOOKS_GENRES.iter().copied().find(|g| *g == canonical)
}

/// Loads Goodbooks-10k from `dir`: `ratings.csv` (`user_id,book_id,rating`; no timestamps, so an
/// event's timestamp is its position in the file), `books.csv`, and for genres and tags either
/// `books_enriched.csv` (a `genres` list column) or `book_tags.csv` + `tags.csv`.
pub fn load_goodbooks(dir: &Path, options: &LoadOptions) -> Result<Dataset> {
    const NAME: &str = "Goodbooks-10k";
    let ratings = require_file(&dir.join("ratings.csv"), NAME)?;
    let books = require_file(&dir.join("books.csv"), NAME)?;
    let mut b = DatasetBuilder::new("goodbooks");

    // books.csv
    let mut csv = CsvFile::open(&books, NAME)?;
    let c_id = csv.column("book_id")?;
    let c_gr = csv.column("goodreads_book_id")?;
    let c_title = csv.column("title")?;
    let c_year = csv.optional_column("original_publication_year");
    let c_authors = csv.optional_column("authors");
    let path = csv.path().to_path_buf();
    let mut goodreads_to_book: HashMap<u64, u64> = HashMap::new();
    let mut items = Vec::new();
    csv.for_each(
        |e| b.on_error(options, e),
        |n, f| {
            let ctx = || join_fields(f);
            let (Some(id), Some(gr), Some(title)) = (f.get(c_id), f.get(c_gr), f.get(c_title)) else {
                return Err(DataError::parse(&path, n, "book_id,goodreads_book_id,...,title,...", &ctx()));
            };
            let id: u64 = parse_field(id, &path, n, "a numeric book_id", &ctx())?;
            let gr: u64 = parse_field(gr, &path, n, "a numeric goodreads_book_id", &ctx())?;
            let year = match c_year.and_then(|c| f.get(c)).map(|s| s.trim()) {
                None | Some("") => None,
                Some(y) => {
                    let y: f64 = parse_field(y, &path, n, "a publication year", &ctx())?;
                    y.is_finite().then_some(y as i32)
                }
            };
            let mut tags = Vec::new();
            if let Some(a) = c_authors.and_then(|c| f.get(c)) {
                tags.extend(a.split(',').map(|s| format!("author:{}", s.trim())).filter(|s| s.len() > 7));
            }
            goodreads_to_book.insert(gr, id);
            items.push(Item { id, title: title.trim().to_string(), year, genres: Vec::new(), tags });
            Ok(())
        },
    )?;
    for item in items {
        b.add_item(item);
    }

    // Genres and tags.
    let enriched = dir.join("books_enriched.csv");
    let book_tags = dir.join("book_tags.csv");
    let tags_file = dir.join("tags.csv");
    if enriched.is_file() {
        let mut csv = CsvFile::open(&enriched, NAME)?;
        let (c_id, c_genres) = (csv.column("book_id")?, csv.column("genres")?);
        let path = csv.path().to_path_buf();
        let mut genres: Vec<(u64, Vec<String>)> = Vec::new();
        csv.for_each(
            |e| b.on_error(options, e),
            |n, f| {
                let (Some(id), Some(g)) = (f.get(c_id), f.get(c_genres)) else {
                    return Err(DataError::parse(&path, n, "book_id,...,genres", &join_fields(f)));
                };
                let id: u64 = parse_field(id, &path, n, "a numeric book_id", &join_fields(f))?;
                let list = g
                    .trim_matches(|c| c == '[' || c == ']')
                    .split(',')
                    .map(|s| s.trim().trim_matches(|c| c == '\'' || c == '"').to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                genres.push((id, list));
                Ok(())
            },
        )?;
        for (id, g) in genres {
            if let Some(item) = b.item_mut(id) {
                item.genres = g;
            }
        }
    } else if book_tags.is_file() && tags_file.is_file() {
        let mut names: HashMap<u64, String> = HashMap::new();
        let mut csv = CsvFile::open(&tags_file, NAME)?;
        let (c_tid, c_name) = (csv.column("tag_id")?, csv.column("tag_name")?);
        let path = csv.path().to_path_buf();
        csv.for_each(
            |e| b.on_error(options, e),
            |n, f| {
                let (Some(id), Some(name)) = (f.get(c_tid), f.get(c_name)) else {
                    return Err(DataError::parse(&path, n, "tag_id,tag_name", &join_fields(f)));
                };
                names.insert(parse_field(id, &path, n, "a numeric tag_id", &join_fields(f))?, name.to_string());
                Ok(())
            },
        )?;
        let mut csv = CsvFile::open(&book_tags, NAME)?;
        let cols = (csv.column("goodreads_book_id")?, csv.column("tag_id")?, csv.column("count")?);
        let path = csv.path().to_path_buf();
        let mut per_book: HashMap<u64, Vec<(i64, u64)>> = HashMap::new();
        csv.for_each(
            |e| b.on_error(options, e),
            |n, f| {
                let (Some(gr), Some(t), Some(c)) = (f.get(cols.0), f.get(cols.1), f.get(cols.2)) else {
                    return Err(DataError::parse(&path, n, "goodreads_book_id,tag_id,count", &join_fields(f)));
                };
                let ctx = join_fields(f);
                let gr: u64 = parse_field(gr, &path, n, "a numeric goodreads_book_id", &ctx)?;
                let t: u64 = parse_field(t, &path, n, "a numeric tag_id", &ctx)?;
                let c: i64 = parse_field(c, &path, n, "a numeric count", &ctx)?;
                per_book.entry(gr).or_default().push((c, t));
                Ok(())
            },
        )?;
        for (gr, mut tags) in per_book {
            let Some(&book) = goodreads_to_book.get(&gr) else { continue };
            tags.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            let Some(item) = b.item_mut(book) else { continue };
            for (_, t) in tags {
                let Some(name) = names.get(&t) else { continue };
                if let Some(g) = shelf_genre(name) {
                    if !item.genres.iter().any(|x| x == g) && item.genres.len() < 5 {
                        item.genres.push(g.to_string());
                    }
                } else if !SHELF_NOISE.contains(&name.as_str()) && item.tags.len() < 20 {
                    item.tags.push(name.clone());
                }
            }
        }
    }

    // ratings.csv: file order is time.
    let mut csv = CsvFile::open(&ratings, NAME)?;
    let (c_user, c_book, c_rating) = (csv.column("user_id")?, csv.column("book_id")?, csv.column("rating")?);
    let path = csv.path().to_path_buf();
    let mut events = Vec::new();
    csv.for_each(
        |e| b.on_error(options, e),
        |n, f| {
            let (Some(u), Some(i), Some(r)) = (f.get(c_user), f.get(c_book), f.get(c_rating)) else {
                return Err(DataError::parse(&path, n, "user_id,book_id,rating", &join_fields(f)));
            };
            let ctx = join_fields(f);
            let u: u64 = parse_field(u, &path, n, "a numeric user_id", &ctx)?;
            let i: u64 = parse_field(i, &path, n, "a numeric book_id", &ctx)?;
            let r = parse_rating(r, &path, n, &ctx)?;
            events.push((u, i, r));
            Ok(())
        },
    )?;
    for (pos, (u, i, r)) in events.into_iter().enumerate() {
        b.rate(u, i, r, pos as i64);
    }
    Ok(b.finish())
}
