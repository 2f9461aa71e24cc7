//! Saving and loading a [`Split`] as a directory of plain CSV and JSON files.
//!
//! Layout (every id is the source dataset's id, so other tools can use the split directly):
//!
//! | file | columns |
//! |---|---|
//! | `split.json` | dataset, protocol, seed, parameters, preprocessing and counts |
//! | `items.csv` | `index,item_id,title,year,genres,tags` (genres and tags `|`-separated) |
//! | `users.csv` | `user_id,set` (`train`, `validation` or `test`), in row order |
//! | `train.csv` | `user_id,item_id,rating,timestamp` |
//! | `{validation,test}_foldin.csv` | `user_id,item_id,rating,timestamp` |
//! | `{validation,test}_heldout.csv` | `user_id,item_id,rating,timestamp` |
//! | `{validation,test}_window.csv` | `user_id,item_id,rating,timestamp,in_vocabulary,title,year,genres` |
//!
//! Every file is written to a temporary name and renamed, so a crash never leaves half a file.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use crate::dataset::Item;
use crate::error::{DataError, Result};
use crate::io::write_atomic;
use crate::loaders::CsvFile;
use crate::split::{EvalUsers, Rating, Split, SplitMeta, UserRows, WindowEntry};

fn csv_writer(w: &mut dyn Write) -> csv::Writer<&mut dyn Write> {
    csv::WriterBuilder::new().from_writer(w)
}

fn csv_io(e: csv::Error) -> std::io::Error {
    std::io::Error::other(e)
}

fn opt_year(y: Option<i32>) -> String {
    y.map(|y| y.to_string()).unwrap_or_default()
}

impl Split {
    /// Writes the split to the directory `dir` (created if needed).
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
        let json = serde_json::to_vec_pretty(&self.meta)
            .map_err(|e| DataError::Json { path: dir.join("split.json"), source: e })?;
        write_atomic(&dir.join("items.csv"), |w| {
            let mut c = csv_writer(w);
            c.write_record(["index", "item_id", "title", "year", "genres", "tags"]).map_err(csv_io)?;
            for (i, it) in self.items.iter().enumerate() {
                c.write_record([
                    i.to_string(),
                    it.id.to_string(),
                    it.title.clone(),
                    opt_year(it.year),
                    it.genres.join("|"),
                    it.tags.join("|"),
                ])
                .map_err(csv_io)?;
            }
            c.flush()
        })?;
        write_atomic(&dir.join("users.csv"), |w| {
            let mut c = csv_writer(w);
            c.write_record(["user_id", "set"]).map_err(csv_io)?;
            for (set, users) in
                [("train", &self.train.users[..]), ("validation", self.validation.users()), ("test", self.test.users())]
            {
                for u in users {
                    c.write_record([u.to_string().as_str(), set]).map_err(csv_io)?;
                }
            }
            c.flush()
        })?;
        self.save_rows(&dir.join("train.csv"), &self.train)?;
        for (name, set) in [("validation", &self.validation), ("test", &self.test)] {
            self.save_rows(&dir.join(format!("{name}_foldin.csv")), &set.foldin)?;
            self.save_rows(&dir.join(format!("{name}_heldout.csv")), &set.heldout)?;
            write_atomic(&dir.join(format!("{name}_window.csv")), |w| {
                let mut c = csv_writer(w);
                c.write_record([
                    "user_id",
                    "item_id",
                    "rating",
                    "timestamp",
                    "in_vocabulary",
                    "title",
                    "year",
                    "genres",
                ])
                .map_err(csv_io)?;
                for (u, window) in set.users().iter().zip(&set.windows) {
                    for e in window {
                        c.write_record([
                            u.to_string(),
                            e.item_id.to_string(),
                            e.rating.to_string(),
                            e.timestamp.to_string(),
                            (if e.item.is_some() { "1" } else { "0" }).to_string(),
                            e.title.clone(),
                            opt_year(e.year),
                            e.genres.join("|"),
                        ])
                        .map_err(csv_io)?;
                    }
                }
                c.flush()
            })?;
        }
        // split.json last: its presence marks a complete split.
        write_atomic(&dir.join("split.json"), |w| w.write_all(&json))
    }

    fn save_rows(&self, path: &Path, rows: &UserRows) -> Result<()> {
        write_atomic(path, |w| {
            let mut c = csv_writer(w);
            c.write_record(["user_id", "item_id", "rating", "timestamp"]).map_err(csv_io)?;
            for (u, row) in rows.iter() {
                for r in row {
                    c.write_record([
                        u.to_string(),
                        self.items[r.item as usize].id.to_string(),
                        r.rating.to_string(),
                        r.timestamp.to_string(),
                    ])
                    .map_err(csv_io)?;
                }
            }
            c.flush()
        })
    }

    /// Reads a split written by [`Split::save`] (or by another tool in the same layout).
    pub fn load(dir: &Path) -> Result<Split> {
        const WHAT: &str = "split directory";
        let meta_path = crate::io::require_file(&dir.join("split.json"), WHAT)?;
        let bytes = std::fs::read(&meta_path).map_err(|e| DataError::io(&meta_path, e))?;
        let meta: SplitMeta =
            serde_json::from_slice(&bytes).map_err(|e| DataError::Json { path: meta_path.clone(), source: e })?;

        let mut items = Vec::new();
        let mut csv = CsvFile::open(&dir.join("items.csv"), WHAT)?;
        let (c_index, c_id, c_title) = (csv.column("index")?, csv.column("item_id")?, csv.column("title")?);
        let (c_year, c_genres, c_tags) = (csv.column("year")?, csv.column("genres")?, csv.column("tags")?);
        let path = csv.path().to_path_buf();
        csv.for_each(Err, |n, f| {
            let get = |c: usize| f.get(c).map(|s| s.as_ref()).unwrap_or("");
            let ctx = || crate::loaders::join_fields(f);
            let index: usize = crate::loaders::parse_field(get(c_index), &path, n, "a column index", &ctx())?;
            if index != items.len() {
                return Err(DataError::parse(&path, n, format!("index {}", items.len()), &ctx()));
            }
            let year = match get(c_year) {
                "" => None,
                y => Some(crate::loaders::parse_field(y, &path, n, "a year", &ctx())?),
            };
            let split_list =
                |s: &str| -> Vec<String> { s.split('|').filter(|x| !x.is_empty()).map(str::to_string).collect() };
            items.push(Item {
                id: crate::loaders::parse_field(get(c_id), &path, n, "a numeric item_id", &ctx())?,
                title: get(c_title).to_string(),
                year,
                genres: split_list(get(c_genres)),
                tags: split_list(get(c_tags)),
            });
            Ok(())
        })?;
        let column: HashMap<u64, u32> = items.iter().enumerate().map(|(i, it)| (it.id, i as u32)).collect();

        let mut sets: HashMap<String, Vec<u64>> = HashMap::new();
        let mut csv = CsvFile::open(&dir.join("users.csv"), WHAT)?;
        let (c_user, c_set) = (csv.column("user_id")?, csv.column("set")?);
        let path = csv.path().to_path_buf();
        csv.for_each(Err, |n, f| {
            let ctx = crate::loaders::join_fields(f);
            let u = crate::loaders::parse_field(
                f.get(c_user).map(|s| s.as_ref()).unwrap_or(""),
                &path,
                n,
                "a numeric user_id",
                &ctx,
            )?;
            let set = f.get(c_set).map(|s| s.as_ref()).unwrap_or("");
            if !matches!(set, "train" | "validation" | "test") {
                return Err(DataError::parse(&path, n, "set train, validation or test", &ctx));
            }
            sets.entry(set.to_string()).or_default().push(u);
            Ok(())
        })?;
        let users_of = |s: &str| sets.get(s).cloned().unwrap_or_default();

        let train = load_rows(&dir.join("train.csv"), &users_of("train"), &column)?;
        let mut eval = Vec::new();
        for name in ["validation", "test"] {
            let users = users_of(name);
            let foldin = load_rows(&dir.join(format!("{name}_foldin.csv")), &users, &column)?;
            let heldout = load_rows(&dir.join(format!("{name}_heldout.csv")), &users, &column)?;
            let windows = load_windows(&dir.join(format!("{name}_window.csv")), &users, &column)?;
            eval.push(EvalUsers { foldin, heldout, windows });
        }
        let test = eval.pop().unwrap_or_default();
        let validation = eval.pop().unwrap_or_default();
        Ok(Split { meta, items, train, validation, test })
    }
}

fn user_slots(users: &[u64]) -> HashMap<u64, usize> {
    users.iter().enumerate().map(|(i, &u)| (u, i)).collect()
}

fn load_rows(path: &Path, users: &[u64], column: &HashMap<u64, u32>) -> Result<UserRows> {
    let slots = user_slots(users);
    let mut per_user: Vec<Vec<Rating>> = vec![Vec::new(); users.len()];
    let mut csv = CsvFile::open(path, "split directory")?;
    let cols = [csv.column("user_id")?, csv.column("item_id")?, csv.column("rating")?, csv.column("timestamp")?];
    csv.for_each(Err, |n, f| {
        let ctx = crate::loaders::join_fields(f);
        let get = |c: usize| f.get(c).map(|s| s.as_ref()).unwrap_or("");
        let u: u64 = crate::loaders::parse_field(get(cols[0]), path, n, "a numeric user_id", &ctx)?;
        let i: u64 = crate::loaders::parse_field(get(cols[1]), path, n, "a numeric item_id", &ctx)?;
        let slot =
            *slots.get(&u).ok_or_else(|| DataError::parse(path, n, "a user listed in users.csv for this set", &ctx))?;
        let item = *column.get(&i).ok_or_else(|| DataError::parse(path, n, "an item listed in items.csv", &ctx))?;
        per_user[slot].push(Rating {
            item,
            rating: crate::loaders::parse_rating(get(cols[2]), path, n, &ctx)?,
            timestamp: crate::loaders::parse_field(get(cols[3]), path, n, "a timestamp", &ctx)?,
        });
        Ok(())
    })?;
    let mut rows = UserRows::new();
    for (u, row) in users.iter().zip(per_user) {
        rows.push(*u, row);
    }
    Ok(rows)
}

fn load_windows(path: &Path, users: &[u64], column: &HashMap<u64, u32>) -> Result<Vec<Vec<WindowEntry>>> {
    let slots = user_slots(users);
    let mut out: Vec<Vec<WindowEntry>> = vec![Vec::new(); users.len()];
    let mut csv = CsvFile::open(path, "split directory")?;
    let mut cols = [0usize; 7];
    for (slot, name) in cols.iter_mut().zip(["user_id", "item_id", "rating", "timestamp", "title", "year", "genres"]) {
        *slot = csv.column(name)?;
    }
    csv.for_each(Err, |n, f| {
        let ctx = crate::loaders::join_fields(f);
        let get = |c: usize| f.get(c).map(|s| s.as_ref()).unwrap_or("");
        let u: u64 = crate::loaders::parse_field(get(cols[0]), path, n, "a numeric user_id", &ctx)?;
        let slot =
            *slots.get(&u).ok_or_else(|| DataError::parse(path, n, "a user listed in users.csv for this set", &ctx))?;
        let item_id: u64 = crate::loaders::parse_field(get(cols[1]), path, n, "a numeric item_id", &ctx)?;
        let year = match get(cols[5]) {
            "" => None,
            y => Some(crate::loaders::parse_field(y, path, n, "a year", &ctx)?),
        };
        out[slot].push(WindowEntry {
            item_id,
            item: column.get(&item_id).copied(),
            title: get(cols[4]).to_string(),
            year,
            genres: get(cols[6]).split('|').filter(|g| !g.is_empty()).map(str::to_string).collect(),
            rating: crate::loaders::parse_rating(get(cols[2]), path, n, &ctx)?,
            timestamp: crate::loaders::parse_field(get(cols[3]), path, n, "a timestamp", &ctx)?,
        });
        Ok(())
    })?;
    Ok(out)
}
