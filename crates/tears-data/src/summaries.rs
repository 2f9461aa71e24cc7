//! Stored user summaries: a user id → text mapping read from JSON or JSONL, plain or `.xz`/`.gz`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::error::{DataError, Result};

/// User summaries keyed by source user id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredSummaries {
    /// Summary text of each user.
    pub texts: BTreeMap<u64, String>,
    /// The users in the order they first appear in the file (what exports follow).
    pub order: Vec<u64>,
}

/// A JSON object's entries in file order (`serde_json::Map` sorts its keys).
struct OrderedObject(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for OrderedObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = OrderedObject;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<OrderedObject, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    entries.push(entry);
                }
                Ok(OrderedObject(entries))
            }
        }
        d.deserialize_map(Visit)
    }
}

impl StoredSummaries {
    fn insert(&mut self, user: u64, text: String) {
        if self.texts.insert(user, text).is_none() {
            self.order.push(user);
        }
    }

    /// `(user, text)` in file order.
    pub fn in_file_order(&self) -> impl Iterator<Item = (u64, &str)> + '_ {
        self.order.iter().filter_map(|u| self.texts.get(u).map(|t| (*u, t.as_str())))
    }
}

/// Parses a user key: `"123"`, `"123.0"` (the shipped GPT-4 file) or a JSON number.
fn parse_user_key(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().and_then(integral)),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<u64>().ok().or_else(|| s.parse::<f64>().ok().and_then(integral))
        }
        _ => None,
    }
}

fn integral(f: f64) -> Option<u64> {
    (f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f < 1.8e19).then_some(f as u64)
}

/// A summary value: a string, or an object of per-aspect strings (the ML-100K prototype file has
/// `{"<genre>": "summary: ..."}`), which is joined as `aspect: text` lines in key order.
fn summary_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(map) => {
            let mut parts = Vec::with_capacity(map.len());
            for (k, v) in map {
                parts.push(format!("{k}: {}", v.as_str()?));
            }
            Some(parts.join("\n"))
        }
        _ => None,
    }
}

impl StoredSummaries {
    /// Loads summaries from `path`.
    ///
    /// Accepted forms (plain, gzip or xz, detected by content):
    /// - a JSON object `{"<user>": "text", ...}`, keys like `"123"` or `"123.0"`;
    /// - JSON lines, one object per line with `user` and `text` fields (what `tears summarize`
    ///   writes); a later line for the same user replaces an earlier one.
    ///
    /// ```no_run
    /// let s = tears_data::StoredSummaries::load(std::path::Path::new(
    ///     "../shared/data/summaries/ml-1m/user_summary_gpt4_all6016users_2023-12-12.json.xz",
    /// ))?;
    /// assert!(s.get(1).is_some_and(|t| t.starts_with("Summary:")));
    /// # Ok::<(), tears_data::DataError>(())
    /// ```
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = crate::io::read_all(path, "summaries")?;
        let text = crate::io::decode(&bytes);
        let first = text.trim_start().chars().next();
        let looks_like_lines = text.trim().lines().nth(1).is_some_and(|l| l.trim_start().starts_with('{'));
        let single_record = |m: &serde_json::Map<String, Value>| m.contains_key("user") && m.contains_key("text");
        if first == Some('{') && !looks_like_lines {
            let value: Value =
                serde_json::from_str(&text).map_err(|e| DataError::Json { path: path.to_path_buf(), source: e })?;
            let is_map = match &value {
                Value::Object(map) => !single_record(map),
                _ => return Err(DataError::parse(path, 1, "a JSON object mapping user ids to summaries", "")),
            };
            if is_map {
                let OrderedObject(entries) =
                    serde_json::from_str(&text).map_err(|e| DataError::Json { path: path.to_path_buf(), source: e })?;
                let mut out = StoredSummaries::default();
                for (k, v) in entries {
                    let user = parse_user_key(&Value::String(k.clone()))
                        .ok_or_else(|| DataError::parse(path, 1, "user ids like \"123\" or \"123.0\" as keys", &k))?;
                    let t = summary_text(&v).ok_or_else(|| {
                        DataError::parse(path, 1, "a string (or an object of strings) as summary", &k)
                    })?;
                    out.insert(user, t);
                }
                return Ok(out);
            }
        }
        let mut out = StoredSummaries::default();
        for (n, line) in text.lines().enumerate() {
            let line_no = n as u64 + 1;
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(line)
                .map_err(|_| DataError::parse(path, line_no, "a JSON object with `user` and `text`", line))?;
            let user = v
                .get("user")
                .and_then(parse_user_key)
                .ok_or_else(|| DataError::parse(path, line_no, "a numeric `user` field", line))?;
            let t = v
                .get("text")
                .and_then(summary_text)
                .ok_or_else(|| DataError::parse(path, line_no, "a string `text` field", line))?;
            out.insert(user, t);
        }
        Ok(out)
    }

    /// The summary of `user`.
    pub fn get(&self, user: u64) -> Option<&str> {
        self.texts.get(&user).map(String::as_str)
    }

    /// Number of users with a summary.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// Whether there is no summary.
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// The set of users with a summary.
    pub fn users(&self) -> std::collections::HashSet<u64> {
        self.texts.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_order_is_kept_for_objects_and_lines() {
        let dir = tempfile::tempdir().expect("tmp");
        let json = dir.path().join("s.json");
        std::fs::write(&json, r#"{"12.0": "b", "3.0": "a", "7": "c"}"#).expect("write");
        let s = StoredSummaries::load(&json).expect("load");
        assert_eq!(s.order, vec![12, 3, 7]);
        assert_eq!(s.in_file_order().map(|(_, t)| t).collect::<Vec<_>>(), ["b", "a", "c"]);
        let lines = dir.path().join("s.jsonl");
        let body = "{\"user\": 9, \"text\": \"x\"}\n{\"user\": 2, \"text\": \"y\"}\n{\"user\": 9, \"text\": \"z\"}\n";
        std::fs::write(&lines, body).expect("write");
        let s = StoredSummaries::load(&lines).expect("load");
        assert_eq!(s.in_file_order().collect::<Vec<_>>(), [(9, "z"), (2, "y")]);
    }

    #[test]
    fn json_object_with_float_keys() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("s.json");
        std::fs::write(&p, r#"{"12.0": "Summary: likes drama.", "7": "Summary: x"}"#).expect("w");
        let s = StoredSummaries::load(&p).expect("load");
        assert_eq!(s.get(12), Some("Summary: likes drama."));
        assert_eq!(s.get(7), Some("Summary: x"));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn jsonl_later_line_wins_and_bad_line_is_named() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("s.jsonl");
        std::fs::write(
            &p,
            "{\"user\": 1, \"text\": \"a\"}\n{\"user\": \"2\", \"text\": \"b\"}\n{\"user\": 1, \"text\": \"c\"}\n",
        )
        .expect("w");
        let s = StoredSummaries::load(&p).expect("load");
        assert_eq!((s.get(1), s.get(2)), (Some("c"), Some("b")));
        std::fs::write(&p, "{\"user\": 1, \"text\": \"a\"}\n{\"user\": 1}\n").expect("w");
        let err = StoredSummaries::load(&p).expect_err("bad").to_string();
        assert!(err.contains("s.jsonl:2") && err.contains("text"), "{err}");
    }

    #[test]
    fn nested_per_genre_summaries_are_joined() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("s.json");
        std::fs::write(&p, r#"{"3": {"action": "summary: a", "drama": "summary: d"}}"#).expect("w");
        let s = StoredSummaries::load(&p).expect("load");
        assert_eq!(s.get(3), Some("action: summary: a\ndrama: summary: d"));
    }

    #[test]
    fn shipped_gpt4_summaries_when_present() {
        let p = crate::shared_data_dir().join("summaries/ml-1m/user_summary_gpt4_all6016users_2023-12-12.json.xz");
        if !p.is_file() {
            eprintln!("skipping: {} not found (set TEARS_DATA_DIR)", p.display());
            return;
        }
        let s = StoredSummaries::load(&p).expect("load");
        assert_eq!(s.len(), 6016);
        assert!(s.texts.values().all(|t| !t.trim().is_empty()));
        assert_eq!(s.texts.keys().filter(|&&u| u <= 2999).count(), 2987);
    }
}
