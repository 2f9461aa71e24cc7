//! Summary edits for the controllability experiments; each returns the new text and a record of
//! what changed.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::history::History;
use crate::llm::LlmClient;
use crate::prompt::Message;

/// One change made by an edit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Byte offset of the change in the original text.
    pub at: usize,
    /// The original text there.
    pub from: String,
    /// The replacement.
    pub to: String,
}

/// What an edit did: its kind, its parameters and the changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EditRecord {
    /// `replace`, `swap_genres`, `insert_sentence`, `guided`, `llm_swap_rewrite`.
    pub kind: String,
    /// Parameters (genres swapped, the sentence inserted, ...).
    pub params: serde_json::Value,
    /// The changes, in text order.
    pub changes: Vec<Change>,
}

/// An edited summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Edit {
    /// The new summary.
    pub text: String,
    /// What changed.
    pub record: EditRecord,
}

/// Replaces the whole summary.
///
/// ```
/// let e = tears_summarize::edit::replace("Summary: old", "Summary: More Horror movies");
/// assert_eq!(e.text, "Summary: More Horror movies");
/// assert_eq!(e.record.changes[0].from, "Summary: old");
/// ```
pub fn replace(original: &str, new_text: &str) -> Edit {
    Edit {
        text: new_text.to_string(),
        record: EditRecord {
            kind: "replace".into(),
            params: serde_json::Value::Null,
            changes: vec![Change { at: 0, from: original.to_string(), to: new_text.to_string() }],
        },
    }
}

/// The guided-edit text: `Summary: More {genre} {noun}` or `Summary: Less {genre} {noun}`.
///
/// ```
/// let e = tears_summarize::edit::guided("Summary: x", "Comedy", true, "movies");
/// assert_eq!(e.text, "Summary: More Comedy movies");
/// ```
pub fn guided(original: &str, genre: &str, more: bool, noun: &str) -> Edit {
    let text = format!("Summary: {} {genre} {noun}", if more { "More" } else { "Less" });
    let mut e = replace(original, &text);
    e.record.kind = "guided".into();
    e.record.params = serde_json::json!({ "genre": genre, "direction": if more { "more" } else { "less" } });
    e
}

/// Surface forms of a genre: `(form, is_plural)`, the canonical singular first.
fn forms(genre: &str) -> Vec<(String, bool)> {
    let g = genre.trim().to_lowercase();
    let list: &[(&str, bool)] = match g.as_str() {
        "sci-fi" | "science fiction" | "science-fiction" | "scifi" => {
            &[("sci-fi", false), ("science fiction", false), ("science-fiction", false), ("scifi", false)]
        }
        "children's" | "children" | "kids" | "childrens" => {
            &[("children's", false), ("childrens", false), ("children", false), ("kids", false), ("kid's", false)]
        }
        "film-noir" | "film noir" | "noir" => &[("film-noir", false), ("film noir", false), ("noir", false)],
        "comedy" => &[("comedy", false), ("comedies", true), ("comedic", false)],
        "romance" => &[("romance", false), ("romances", true), ("romantic", false)],
        "documentary" => &[("documentary", false), ("documentaries", true)],
        "mystery" => &[("mystery", false), ("mysteries", true)],
        "animation" => &[("animation", false), ("animated", false)],
        "drama" => &[("drama", false), ("dramas", true), ("dramatic", false)],
        "musical" => &[("musical", false), ("musicals", true)],
        "thriller" => &[("thriller", false), ("thrillers", true)],
        "western" => &[("western", false), ("westerns", true)],
        "adventure" => &[("adventure", false), ("adventures", true)],
        _ => &[],
    };
    if list.is_empty() {
        vec![(g.clone(), false), (format!("{g}s"), true)]
    } else {
        list.iter().map(|(f, p)| (f.to_string(), *p)).collect()
    }
}

fn plural_of(genre: &str) -> String {
    let f = forms(genre);
    f.iter().find(|x| x.1).map(|x| x.0.clone()).unwrap_or_else(|| f[0].0.clone())
}

fn match_case(template: &str, word: &str) -> String {
    let mut chars = template.chars();
    let first_upper = chars.next().is_some_and(char::is_uppercase);
    let all_upper = template.chars().filter(|c| c.is_alphabetic()).all(char::is_uppercase) && template.len() > 1;
    if all_upper {
        word.to_uppercase()
    } else if first_upper {
        let mut c = word.chars();
        c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
    } else {
        word.to_string()
    }
}

/// Swaps two genres in the text, all their common forms at once (`sci-fi` / `science fiction`,
/// `children's` / `kids`, `comedy` / `comedies`), case-insensitively on word boundaries, keeping
/// the capitalisation of each occurrence.
///
/// ```
/// let e = tears_summarize::edit::swap_genres(
///     "Summary: The user loves science fiction and dislikes comedies.", "Sci-Fi", "Comedy");
/// assert_eq!(e.text, "Summary: The user loves comedy and dislikes sci-fi.");
/// assert_eq!(e.record.changes.len(), 2);
/// ```
pub fn swap_genres(text: &str, a: &str, b: &str) -> Edit {
    let fa = forms(a);
    let fb = forms(b);
    let lower = text.to_lowercase();
    // Candidate matches: (start, end, replacement); longest form first at each position.
    let mut cands: Vec<(String, bool, &str)> = Vec::new();
    for (f, plural) in &fa {
        cands.push((f.clone(), *plural, b));
    }
    for (f, plural) in &fb {
        cands.push((f.clone(), *plural, a));
    }
    cands.sort_by_key(|c| std::cmp::Reverse(c.0.len()));
    let mut out = String::with_capacity(text.len());
    let mut changes = Vec::new();
    let mut i = 0;
    // `to_lowercase` can change byte lengths for some scripts; fall back to no edit there.
    let same_len = lower.len() == text.len();
    while i < text.len() {
        let boundary_before = text[..i].chars().next_back().is_none_or(|c| !c.is_alphanumeric());
        let hit = if same_len && boundary_before && text.is_char_boundary(i) {
            cands.iter().find(|(f, _, _)| {
                lower[i..].starts_with(f.as_str())
                    && text.is_char_boundary(i + f.len())
                    && text[i + f.len()..].chars().next().is_none_or(|c| !c.is_alphanumeric())
            })
        } else {
            None
        };
        if let Some((f, plural, target)) = hit {
            let orig = &text[i..i + f.len()];
            let word = if *plural { plural_of(target) } else { forms(target)[0].0.clone() };
            let to = match_case(orig, &word);
            changes.push(Change { at: i, from: orig.to_string(), to: to.clone() });
            out.push_str(&to);
            i += f.len();
        } else {
            let c = text[i..].chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    Edit {
        text: out,
        record: EditRecord { kind: "swap_genres".into(), params: serde_json::json!({ "a": a, "b": b }), changes },
    }
}

/// Inserts `sentence` at the end of the summary (capitalised, ending with a full stop).
///
/// ```
/// let e = tears_summarize::edit::insert_sentence("Summary: Likes drama.", "they also like heist plots");
/// assert_eq!(e.text, "Summary: Likes drama. They also like heist plots.");
/// ```
pub fn insert_sentence(text: &str, sentence: &str) -> Edit {
    let mut s = match_case("X", sentence.trim());
    if !s.ends_with(['.', '!', '?']) {
        s.push('.');
    }
    let base = text.trim_end();
    let sep = if base.is_empty() { "" } else { " " };
    let new_text = format!("{base}{sep}{s}");
    Edit {
        record: EditRecord {
            kind: "insert_sentence".into(),
            params: serde_json::json!({ "sentence": s }),
            changes: vec![Change { at: base.len(), from: String::new(), to: format!("{sep}{s}") }],
        },
        text: new_text,
    }
}

/// Favourite and least-favourite genre from ratings: highest and lowest mean rating among genres
/// with at least `min_items` rated items (ties broken by name). `None` with fewer than two such genres.
///
/// ```
/// use tears_data::WindowEntry;
/// let e = |t: i64, g: &str, r: f32| WindowEntry { item_id: t as u64, item: None, title: String::new(),
///     year: None, genres: vec![g.into()], rating: r, timestamp: t };
/// let h = tears_summarize::History::from_window(&(0..3).flat_map(|t| [e(t, "War", 5.0), e(t, "Horror", 1.0)]).collect::<Vec<_>>());
/// assert_eq!(tears_summarize::edit::favourite_from_history(&h, 3), Some(("War".into(), "Horror".into())));
/// ```
pub fn favourite_from_history(history: &History, min_items: usize) -> Option<(String, String)> {
    favourite_among(history, min_items, |_| true)
}

/// [`favourite_from_history`] among the genres `keep` accepts (an experiment's genres, those
/// attached to enough items), so the pair is always one the experiment can measure.
///
/// ```
/// use tears_data::WindowEntry;
/// let e = |t: i64, g: &str, r: f32| WindowEntry { item_id: t as u64, item: None, title: String::new(),
///     year: None, genres: vec![g.into()], rating: r, timestamp: t };
/// let h = tears_summarize::History::from_window(
///     &(0..3).flat_map(|t| [e(t, "War", 5.0), e(t, "Horror", 1.0), e(t, "Drama", 3.0)]).collect::<Vec<_>>());
/// let pair = tears_summarize::edit::favourite_among(&h, 3, |g| g != "Horror");
/// assert_eq!(pair, Some(("War".into(), "Drama".into())));
/// ```
pub fn favourite_among(history: &History, min_items: usize, keep: impl Fn(&str) -> bool) -> Option<(String, String)> {
    let mut stats: std::collections::BTreeMap<String, (f64, usize)> = std::collections::BTreeMap::new();
    for it in history.items() {
        for g in it.genres.iter().filter(|g| keep(g)) {
            let s = stats.entry(g.clone()).or_default();
            s.0 += f64::from(it.rating);
            s.1 += 1;
        }
    }
    let mut means: Vec<(f64, String)> =
        stats.into_iter().filter(|(_, s)| s.1 >= min_items.max(1)).map(|(g, s)| (s.0 / s.1 as f64, g)).collect();
    if means.len() < 2 {
        return None;
    }
    means.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let fav = means.first()?.1.clone();
    let least = means.iter().rev().find(|m| m.1 != fav)?.1.clone();
    Some((fav, least))
}

/// Matches an answer's genre against the known genres (case-insensitive, synonyms allowed).
fn known_genre(answer: &str, genres: &[String]) -> Option<String> {
    let a = answer.trim().trim_matches(|c: char| c == '[' || c == ']' || c == '"' || c == '*' || c == '.').trim();
    let first = forms(a).first().map(|f| f.0.clone()).unwrap_or_default();
    genres.iter().find(|g| g.eq_ignore_ascii_case(a) || forms(g).first().is_some_and(|f| f.0 == first)).cloned()
}

/// Strictly parses `Favorite: [g]` and `Least Favorite: [g]` lines (British spelling accepted),
/// each naming one of `genres`.
///
/// ```
/// let g = vec!["Comedy".to_string(), "Horror".to_string()];
/// let p = tears_summarize::edit::parse_favourites("Favorite: [comedy]\nLeast Favorite: Horror", &g);
/// assert_eq!(p, Ok(("Comedy".into(), "Horror".into())));
/// assert!(tears_summarize::edit::parse_favourites("Favorite: Jazz\nLeast Favorite: Horror", &g).is_err());
/// ```
pub fn parse_favourites(answer: &str, genres: &[String]) -> std::result::Result<(String, String), String> {
    let mut fav = None;
    let mut least = None;
    for line in answer.lines() {
        let l = line.trim().trim_start_matches(['-', '*', ' ']);
        let lower = l.to_lowercase();
        let value = |prefix_len: usize| l[prefix_len..].trim_start_matches([':', ' ']).to_string();
        if lower.starts_with("least favorite") || lower.starts_with("least favourite") {
            least = Some(value(if lower.starts_with("least favorite") { 14 } else { 15 }));
        } else if lower.starts_with("favorite") || lower.starts_with("favourite") {
            fav = Some(value(if lower.starts_with("favorite") { 8 } else { 9 }));
        }
    }
    let (Some(f), Some(l)) = (fav, least) else {
        return Err("answer with exactly two lines, `Favorite: [genre]` and `Least Favorite: [genre]`".into());
    };
    let f2 = known_genre(&f, genres).ok_or_else(|| format!("{f:?} is not one of the genres listed"))?;
    let l2 = known_genre(&l, genres).ok_or_else(|| format!("{l:?} is not one of the genres listed"))?;
    if f2 == l2 {
        return Err("the favourite and least favourite genres must differ".into());
    }
    Ok((f2, l2))
}

/// The outcome of the LLM large-scope edit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmSwap {
    /// Favourite genre as the model read it from the summary.
    pub favourite: String,
    /// Least favourite genre.
    pub least_favourite: String,
    /// The rewritten summary and its record.
    pub edit: Edit,
}

/// The large-scope edit with an LLM (the authors' protocol): ask for the favourite and least
/// favourite genre among `genres` (strict parsing; unknown genres rejected and re-asked up to
/// `max_reasks` times, then an [`crate::SummarizeError::InvalidAnswer`] so the caller discards the user),
/// then, in the same chat (the question and the accepted answer; rejected answers are left out),
/// a rewrite in the same style and length with the two exchanged.
pub fn llm_swap_rewrite(client: &LlmClient, summary: &str, genres: &[String], max_reasks: u32) -> Result<LlmSwap> {
    let ask = format!(
        "Here is a summary of a user's preferences:\n\n{summary}\n\nFrom this list of genres: {}.\n\
         Which genre is the user's favourite, and which is their least favourite? Answer with exactly two lines:\n\
         Favorite: [genre]\nLeast Favorite: [genre]",
        genres.join(", ")
    );
    let mut messages = vec![Message::new("user", ask)];
    let mut answer_text = String::new();
    let (fav, least) = client.ask_validated(messages.clone(), max_reasks, |a| {
        answer_text = a.to_string();
        parse_favourites(a, genres)
    })?;
    messages.push(Message::new("assistant", answer_text));
    messages.push(Message::new(
        "user",
        format!(
            "Rewrite the summary in the same style and about the same length so that the user's preferences for \
             {fav} and {least} are exchanged: the user now enjoys {least} as much as they enjoyed {fav}, and \
             dislikes {fav} as much as they disliked {least}. Begin with \"Summary:\" and answer with the summary only."
        ),
    ));
    let len = summary.chars().count();
    let text = client.ask_validated(messages, max_reasks, |a| {
        let a = a.trim();
        if !a.starts_with("Summary:") {
            return Err("the rewrite must start with \"Summary:\"".into());
        }
        let n = a.chars().count();
        if n < len / 3 || n > len * 3 + 200 {
            return Err(format!("the rewrite has {n} characters; keep about {len}"));
        }
        Ok(a.to_string())
    })?;
    let mut edit = replace(summary, &text);
    edit.record.kind = "llm_swap_rewrite".into();
    edit.record.params = serde_json::json!({ "favourite": fav, "least_favourite": least });
    Ok(LlmSwap { favourite: fav, least_favourite: least, edit })
}

/// A description of an item in about five words of plot or theme (no title), from the LLM;
/// answers of 2..=10 words are accepted.
pub fn llm_describe_item(client: &LlmClient, title: &str, genres: &[String], max_reasks: u32) -> Result<String> {
    let ask = format!(
        "Describe the movie \"{title}\" (genres: {}) in about five words about its plot or themes. \
         Do not mention its title. Answer with the five words only.",
        genres.join(", ")
    );
    client.ask_validated(vec![Message::new("user", ask)], max_reasks, |a| {
        let a = a.trim().trim_matches('"').trim();
        let n = a.split_whitespace().count();
        if !(2..=10).contains(&n) {
            return Err(format!("answer with about five words, not {n}"));
        }
        if a.to_lowercase().contains(&title.to_lowercase()) {
            return Err("do not mention the title".into());
        }
        Ok(a.trim_end_matches('.').to_string())
    })
}

/// The offline small-scope description: the item's genres and first tags (`a heist thriller ...`).
///
/// ```
/// let d = tears_summarize::edit::describe_offline(&["Crime".into(), "Thriller".into()], &["heist".into()]);
/// assert_eq!(d, "The user would enjoy crime and thriller stories about heist");
/// ```
pub fn describe_offline(genres: &[String], tags: &[String]) -> String {
    let g: Vec<String> = genres.iter().map(|g| g.to_lowercase()).collect();
    let mut s = format!("The user would enjoy {} stories", crate::template::join_list(&g));
    if !tags.is_empty() {
        let t: Vec<String> = tags.iter().take(3).cloned().collect();
        s.push_str(&format!(" about {}", crate::template::join_list(&t)));
    }
    s
}
