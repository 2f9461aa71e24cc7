//! The template summarizer: a deterministic, offline four-part summary from genre statistics.

use std::collections::{BTreeMap, HashMap};

use tears_data::Split;

use crate::Summarizer;
use crate::error::Result;
use crate::history::History;
use crate::prompt::{DEFAULT_MAX_ITEMS, stable_hash};

/// A plot or theme phrase for a genre name (case-insensitive); generic for unknown genres.
pub fn genre_theme(genre: &str) -> String {
    let g = genre.trim().to_lowercase();
    let phrase = match g.as_str() {
        "action" => "fast-paced confrontations and high-stakes set pieces",
        "adventure" => "journeys into unknown places and daring quests",
        "animation" => "animated worlds with inventive visual storytelling",
        "children's" | "children" | "kids" => "gentle stories for young audiences",
        "comedy" => "witty dialogue and lighthearted situations",
        "crime" => "heists, investigations and morally grey criminals",
        "documentary" => "real events and people examined up close",
        "drama" => "character-driven stories and emotional conflicts",
        "fantasy" => "magic, mythical creatures and invented worlds",
        "film-noir" | "film noir" => "cynical detectives and shadowy urban intrigue",
        "horror" => "dread, gore and supernatural menace",
        "imax" => "large-format spectacle",
        "musical" => "song-and-dance numbers carrying the story",
        "mystery" => "puzzles, secrets and twisty revelations",
        "romance" => "love stories and relationships",
        "sci-fi" | "science fiction" => "futuristic technology, space and speculative ideas",
        "thriller" => "suspense, danger and tense cat-and-mouse plots",
        "war" => "soldiers, battles and the cost of conflict",
        "western" => "frontier towns, outlaws and showdowns",
        _ => "",
    };
    if phrase.is_empty() { format!("{} themes", genre.trim().to_lowercase()) } else { phrase.to_string() }
}

/// Writes the four-part "Summary: ..." text from genre statistics (and tags where the items have
/// them). Same history, same text.
///
/// - liked genres: at least 2 positives (rating > `positive_above`) and a share of the user's
///   positives at least 1.2 times the catalogue base rate (and 5 points above it);
/// - disliked genres: at least 2 ratings and a mean rating <= 2.5, or at least half of them low
///   (rating <= 2);
/// - frequent tags of liked items (at least 2 liked items carry them) join the plot part.
///
/// ```
/// use tears_data::WindowEntry;
/// use tears_summarize::{History, Summarizer, TemplateSummarizer};
/// let e = |t: i64, g: &str, r: f32| WindowEntry {
///     item_id: t as u64, item: None, title: format!("T{t}"), year: None,
///     genres: vec![g.into()], rating: r, timestamp: t,
/// };
/// let h = History::from_window(&[e(1, "Horror", 1.0), e(2, "Horror", 2.0), e(3, "Comedy", 5.0),
///     e(4, "Comedy", 4.0), e(5, "Drama", 3.0)]);
/// let s = TemplateSummarizer::new().summarize(&h)?;
/// assert!(s.starts_with("Summary: The user enjoys comedy"), "{s}");
/// assert!(s.contains("does not enjoy horror"), "{s}");
/// # Ok::<(), tears_summarize::SummarizeError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateSummarizer {
    /// Share of positives of each genre (lower-cased) in the catalogue; empty: the user's own
    /// share of ratings is the base rate.
    pub base_rates: HashMap<String, f64>,
    /// Ratings strictly above this are positives.
    pub positive_above: f32,
    /// What the items are called (`movies`, `books`).
    pub noun: String,
    /// At most this many recent items are used.
    pub max_items: usize,
}

impl Default for TemplateSummarizer {
    fn default() -> Self {
        Self::new()
    }
}

impl TemplateSummarizer {
    /// A summarizer with no catalogue base rates, for movies.
    pub fn new() -> Self {
        TemplateSummarizer {
            base_rates: HashMap::new(),
            positive_above: tears_data::POSITIVE_ABOVE,
            noun: "movies".to_string(),
            max_items: DEFAULT_MAX_ITEMS,
        }
    }

    /// Base rates from the positives of the split's training users.
    ///
    /// ```
    /// use tears_data::{prepare, DatasetName, PrepareOptions};
    /// let split = prepare(DatasetName::Synthetic, &PrepareOptions::default())?.split;
    /// let t = tears_summarize::TemplateSummarizer::from_split(&split);
    /// assert!(!t.base_rates.is_empty());
    /// # Ok::<(), tears_data::DataError>(())
    /// ```
    pub fn from_split(split: &Split) -> Self {
        let pos = split.meta.positive_above;
        let mut counts: HashMap<String, f64> = HashMap::new();
        let mut total = 0.0;
        for r in split.train.entries() {
            if r.rating <= pos {
                continue;
            }
            if let Some(item) = split.items.get(r.item as usize) {
                total += 1.0;
                for g in &item.genres {
                    *counts.entry(g.to_lowercase()).or_default() += 1.0;
                }
            }
        }
        if total > 0.0 {
            counts.values_mut().for_each(|c| *c /= total);
        }
        let noun = if split.meta.dataset.contains("book") { "books" } else { "movies" };
        TemplateSummarizer { base_rates: counts, positive_above: pos, noun: noun.to_string(), ..Self::new() }
    }

    fn text(&self, history: &History) -> String {
        let items = history.recent(self.max_items);
        #[derive(Default)]
        struct Stat {
            name: String,
            n: f64,
            pos: f64,
            low: f64,
            sum: f64,
        }
        let mut stats: BTreeMap<String, Stat> = BTreeMap::new();
        let mut n_pos = 0.0;
        for it in items {
            let positive = it.rating > self.positive_above;
            n_pos += f64::from(u8::from(positive));
            for g in &it.genres {
                let s = stats.entry(g.to_lowercase()).or_insert_with(|| Stat { name: g.clone(), ..Stat::default() });
                s.n += 1.0;
                s.sum += f64::from(it.rating);
                s.pos += f64::from(u8::from(positive));
                s.low += f64::from(u8::from(it.rating <= 2.0));
            }
        }
        let n_items = items.len().max(1) as f64;
        let mut liked: Vec<(f64, &str, &Stat)> = Vec::new();
        let mut disliked: Vec<(f64, &str, &Stat)> = Vec::new();
        for (key, s) in &stats {
            let base = self.base_rates.get(key).copied().unwrap_or(s.n / n_items);
            let share = if n_pos > 0.0 { s.pos / n_pos } else { 0.0 };
            let mean = s.sum / s.n;
            if s.pos >= 2.0 && share >= 1.2 * base && share >= base + 0.05 {
                liked.push((share - base, key, s));
            } else if s.n >= 2.0 && (mean <= 2.5 || s.low / s.n >= 0.5) {
                disliked.push((-mean, key, s));
            }
        }
        if liked.is_empty() {
            // Fall back to the genres with the most positives.
            liked = stats.iter().filter(|(_, s)| s.pos >= 1.0).map(|(k, s)| (s.pos, k.as_str(), s)).collect();
        }
        let order = |v: &mut Vec<(f64, &str, &Stat)>| {
            v.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
            v.truncate(3);
        };
        order(&mut liked);
        order(&mut disliked);
        let names = |v: &[(f64, &str, &Stat)]| -> Vec<String> { v.iter().map(|x| x.2.name.to_lowercase()).collect() };
        // Theme phrases contain commas and "and": join them with "as well as".
        let themes = |v: &[(f64, &str, &Stat)]| -> String {
            match v.iter().map(|x| genre_theme(&x.2.name)).collect::<Vec<_>>().as_slice() {
                [] => String::new(),
                [a] => a.clone(),
                [a, b] => format!("{a}, as well as {b}"),
                [rest @ .., last] => format!("{}; and {last}", rest.join("; ")),
            }
        };

        // Frequent tags of liked items.
        let mut tag_counts: BTreeMap<String, usize> = BTreeMap::new();
        for it in items.iter().filter(|it| it.rating > self.positive_above) {
            for t in it.tags.iter().take(10) {
                *tag_counts.entry(t.to_lowercase()).or_default() += 1;
            }
        }
        let mut tags: Vec<(usize, String)> =
            tag_counts.into_iter().filter(|(_, c)| *c >= 2).map(|(t, c)| (c, t)).collect();
        tags.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let tags: Vec<String> = tags.into_iter().take(3).map(|(_, t)| t).collect();

        let noun = &self.noun;
        let mut out = String::from("Summary: ");
        if liked.is_empty() {
            out.push_str(&format!("The user has not clearly enjoyed any genre of {noun} yet. "));
        } else {
            out.push_str(&format!("The user enjoys {} {noun}. ", join_list(&names(&liked))));
            let mut plot = format!("They seem to enjoy {}", themes(&liked));
            if !tags.is_empty() {
                plot.push_str(&format!(", with recurring elements such as {}", join_list(&tags)));
            }
            out.push_str(&plot);
            out.push_str(". ");
        }
        if disliked.is_empty() {
            out.push_str(&format!("The user does not show a strong dislike of any genre of {noun}. "));
            out.push_str("No particular plot points seem to put them off.");
        } else {
            out.push_str(&format!("The user does not enjoy {} {noun}. ", join_list(&names(&disliked))));
            out.push_str(&format!("They are put off by {}, which other viewers may appreciate.", themes(&disliked)));
        }
        out
    }
}

/// `a`, `a and b`, `a, b and c`.
pub(crate) fn join_list(v: &[String]) -> String {
    match v {
        [] => String::new(),
        [a] => a.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

impl Summarizer for TemplateSummarizer {
    fn model(&self) -> String {
        "template".to_string()
    }

    fn prompt_hash(&self, history: &History) -> String {
        let mut parts = vec![format!("template-v1|{}|{}|{}", self.noun, self.positive_above, self.max_items)];
        let mut rates: Vec<(&String, &f64)> = self.base_rates.iter().collect();
        rates.sort_by(|a, b| a.0.cmp(b.0));
        parts.push(format!("{rates:?}"));
        for it in history.recent(self.max_items) {
            parts.push(format!("{}|{:?}|{:?}|{}", it.title, it.genres, it.tags, it.rating));
        }
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        stable_hash(&refs)
    }

    fn summarize(&self, history: &History) -> Result<String> {
        Ok(self.text(history))
    }
}
