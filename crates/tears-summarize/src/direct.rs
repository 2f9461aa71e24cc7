//! The "LLM asked directly" baseline of the TEARS paper (its GPT-4-turbo row): an LLM reads a
//! user's window (titles, years, ratings, genres) and names movies to recommend; the titles are
//! matched to the catalogue and ranked in the LLM's order.
//!
//! [`DirectRecommender`] is a [`Summarizer`] whose "summary" is the LLM's raw list, so asking it
//! for many users goes through [`crate::summarize_all`] with everything the summaries have:
//! bounded concurrency, retries, the resumable [`crate::SummaryCache`], a failures file. An
//! answer is accepted when at least [`DirectRecommender::min_titles`] lines parse as titles;
//! otherwise it is re-asked in the same chat.
//!
//! [`TitleIndex`] matches an answer to item indices: titles are compared after
//! [`normalize_title`] (case, punctuation, a trailing ", The" and bracketed alternative titles do
//! not matter); when several items share a title, the answer's year picks one. Titles that match
//! nothing, items the user has already rated and repeats are dropped; the rest keep the LLM's
//! order.
//!
//! ```
//! use tears_data::Item;
//! use tears_summarize::direct::{TitleIndex, parse_titles};
//! let item = |id, title: &str, year| Item { id, title: title.into(), year: Some(year), genres: vec![], tags: vec![] };
//! let items = [item(1, "American President, The", 1995), item(2, "Heat", 1995), item(3, "Heat", 1972)];
//! let index = TitleIndex::new(&items);
//! let answer = "1. The American President (1995)\n2. Heat (1972)\n3. A Movie Nobody Made (2001)";
//! let ranked = index.rank(&parse_titles(answer), &[]);
//! assert_eq!(ranked, vec![0, 2]); // the unknown title is dropped
//! ```

use std::collections::HashMap;

use tears_data::split::EvalSet;
use tears_data::{Item, Split};

use crate::error::Result;
use crate::history::History;
use crate::llm::LlmClient;
use crate::prompt::PromptTemplate;
use crate::{Summarizer, SummaryCache};

/// The default prompt of the direct ask (movies), `prompts/direct-movies.txt`: 50 titles, one
/// per line as "Title (Year)".
pub const DIRECT_MOVIES_PROMPT: &str = include_str!("../prompts/direct-movies.txt");

/// Tokens an answer of 50 titles needs (about 10 a line, with room to spare); the default 300
/// of [`crate::LlmConfig`] would cut the list.
pub const DIRECT_MAX_TOKENS: u32 = 1000;

/// One title of an answer, with its year when the line gave one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TitleGuess {
    /// The title as written (list markers, quotes and the year removed).
    pub title: String,
    /// The year in parentheses at the end of the line, when there was one.
    pub year: Option<i32>,
}

/// The titles of an answer, one per non-empty line: list markers (`1.`, `2)`, `-`, `*`, `•`),
/// surrounding quotes and markdown emphasis are removed, a trailing `(YYYY)` is read as the year,
/// and a comment after the year (`Title (1995) - why`, `Title (1995): why`) is dropped. Lines
/// that end in a colon (a heading such as "Here are my picks:") are skipped.
///
/// ```
/// use tears_summarize::direct::parse_titles;
/// let t = parse_titles("Here are my picks:\n1. **Heat (1995)** - a tense crime film\n- \"Fargo\" (1996)\n3) Star Wars: Episode IV - A New Hope (1977)");
/// assert_eq!(t.len(), 3);
/// assert_eq!((t[0].title.as_str(), t[0].year), ("Heat", Some(1995)));
/// assert_eq!((t[1].title.as_str(), t[1].year), ("Fargo", Some(1996)));
/// assert_eq!(t[2].title, "Star Wars: Episode IV - A New Hope");
/// ```
pub fn parse_titles(answer: &str) -> Vec<TitleGuess> {
    answer.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<TitleGuess> {
    let mut s = line.trim();
    if s.is_empty() || s.ends_with(':') {
        return None;
    }
    // List markers: "12.", "12)", "-", "*", "•".
    let digits = s.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 && s[digits..].starts_with(['.', ')']) {
        s = s[digits + 1..].trim_start();
    }
    s = s.trim_start_matches(['-', '*', '•']).trim();
    // A comment after the title and its year: "Title (1995) - why" (a dash inside a title, as in
    // "Star Wars: Episode IV - A New Hope (1977)", stays).
    for sep in [" - ", " – ", " — ", ": "] {
        if let Some(i) = s.match_indices(sep).map(|(i, _)| i).find(|&i| split_year(strip_marks(&s[..i])).1.is_some()) {
            s = &s[..i];
        }
    }
    let (title, year) = split_year(strip_marks(s));
    let title = strip_marks(title);
    if title.is_empty() {
        return None;
    }
    Some(TitleGuess { title: title.to_string(), year })
}

/// `s` without surrounding white space, quotes and markdown emphasis.
fn strip_marks(s: &str) -> &str {
    s.trim().trim_matches(|c: char| matches!(c, '*' | '_' | '"' | '“' | '”')).trim()
}

/// `"Heat (1995)"` → `("Heat", Some(1995))`; no year → the text itself.
fn split_year(s: &str) -> (&str, Option<i32>) {
    let t = s.trim_end();
    if let Some(open) = t.rfind('(')
        && t.ends_with(')')
    {
        let inner = t[open + 1..t.len() - 1].trim();
        if inner.len() == 4
            && let Ok(y) = inner.parse::<i32>()
        {
            return (&t[..open], Some(y));
        }
    }
    (s, None)
}

/// A title reduced to what identifies it: lower case, a trailing article moved to the front
/// ("American President, The" = "The American President"), bracketed parts (alternative titles,
/// years) removed, and only letters and digits kept, single-spaced.
///
/// ```
/// use tears_summarize::direct::normalize_title;
/// assert_eq!(normalize_title("American President, The"), normalize_title("The American President"));
/// assert_eq!(normalize_title("Seven (Se7en)"), "seven");
/// assert_eq!(normalize_title("Star Wars: Episode IV - A New Hope"), "star wars episode iv a new hope");
/// ```
pub fn normalize_title(title: &str) -> String {
    let mut s = String::with_capacity(title.len());
    let mut depth = 0usize;
    for c in title.chars() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            _ if depth == 0 => s.push(c),
            _ => {}
        }
    }
    let mut s = s.trim().to_lowercase();
    for article in ["the", "a", "an", "les", "la", "le", "il", "el", "das", "der", "die"] {
        let suffix = format!(", {article}");
        if s.ends_with(&suffix) {
            s.truncate(s.len() - suffix.len());
            s = format!("{article} {s}");
            break;
        }
    }
    let cleaned: String = s.chars().map(|c| if c.is_alphanumeric() { c } else { ' ' }).collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The catalogue by normalised title, for matching answers to item indices.
#[derive(Debug, Clone, Default)]
pub struct TitleIndex {
    by_title: HashMap<String, Vec<(usize, Option<i32>)>>,
}

impl TitleIndex {
    /// The index of `items` (positions in the slice are the item indices returned).
    pub fn new(items: &[Item]) -> Self {
        let mut by_title: HashMap<String, Vec<(usize, Option<i32>)>> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            by_title.entry(normalize_title(&item.title)).or_default().push((i, item.year));
        }
        TitleIndex { by_title }
    }

    /// The item a guess names: the only item with that title, or among several the one of the
    /// guess's year (the first listed when the year is missing or matches none).
    pub fn find(&self, guess: &TitleGuess) -> Option<usize> {
        let candidates = self.by_title.get(&normalize_title(&guess.title))?;
        guess
            .year
            .and_then(|y| candidates.iter().find(|(_, year)| *year == Some(y)))
            .or_else(|| candidates.first())
            .map(|(i, _)| *i)
    }

    /// The ranked list of an answer: matched items in the answer's order, without repeats and
    /// without the `seen` items.
    pub fn rank(&self, guesses: &[TitleGuess], seen: &[usize]) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::with_capacity(guesses.len());
        for g in guesses {
            if let Some(i) = self.find(g)
                && !seen.contains(&i)
                && !out.contains(&i)
            {
                out.push(i);
            }
        }
        out
    }
}

/// The direct-ask jobs of the evaluation users of `set`: each user's window (what the protocol
/// lets an LLM read), keyed by the user's source id.
pub fn jobs(split: &Split, set: EvalSet) -> Vec<(u64, History)> {
    let users = split.eval(set).users();
    (0..users.len()).filter_map(|k| History::from_eval_user(split, set, k).map(|h| (users[k], h))).collect()
}

/// Each evaluation user's ranked list from the answers in `answers` (in `set`'s row order):
/// the answer's titles matched to `split.items`, the user's fold-in items and repeats dropped;
/// `None` for a user without an answer.
pub fn ranked_lists(split: &Split, set: EvalSet, answers: &SummaryCache) -> Vec<Option<Vec<usize>>> {
    let index = TitleIndex::new(&split.items);
    let users = split.eval(set);
    (0..users.len())
        .map(|k| {
            let answer = answers.get(users.users()[k])?;
            let seen: Vec<usize> = users.foldin.row(k).iter().map(|r| r.item as usize).collect();
            Some(index.rank(&parse_titles(&answer.text), &seen))
        })
        .collect()
}

/// The direct ask as a [`Summarizer`]: its text is the LLM's list of titles.
#[derive(Debug)]
pub struct DirectRecommender {
    /// The client (set its `max_tokens` to [`DIRECT_MAX_TOKENS`] or more).
    pub client: LlmClient,
    /// The prompt.
    pub template: PromptTemplate,
    /// Fewest parseable title lines an accepted answer has (10).
    pub min_titles: usize,
    /// Re-asks of a rejected answer (2).
    pub max_reasks: u32,
}

impl DirectRecommender {
    /// The direct ask with the movie prompt ([`DIRECT_MOVIES_PROMPT`]).
    ///
    /// # Errors
    /// Never for the shipped prompt; a malformed template otherwise.
    pub fn movies(client: LlmClient) -> Result<Self> {
        Ok(DirectRecommender {
            client,
            template: PromptTemplate::parse(DIRECT_MOVIES_PROMPT, "direct-movies.txt")?,
            min_titles: 10,
            max_reasks: 2,
        })
    }
}

impl Summarizer for DirectRecommender {
    fn model(&self) -> String {
        self.client.config().model.clone()
    }

    fn prompt_hash(&self, history: &History) -> String {
        self.client.chat_hash(&self.template.render(history))
    }

    fn summarize(&self, history: &History) -> Result<String> {
        let min = self.min_titles;
        self.client.ask_validated(self.template.render(history), self.max_reasks, |answer| {
            let n = parse_titles(answer).len();
            if n >= min {
                Ok(answer.trim().to_string())
            } else {
                Err(format!("only {n} lines name a movie; list at least {min}, one \"Title (Year)\" per line"))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::{MockReply, MockServer};
    use crate::{BatchOptions, LlmConfig, SummaryCache, summarize_all};

    fn item(id: u64, title: &str, year: i32) -> Item {
        Item { id, title: title.into(), year: Some(year), genres: vec!["Drama".into()], tags: vec![] }
    }

    #[test]
    fn seen_and_repeated_titles_are_dropped_in_order() {
        let items = [item(1, "Heat", 1995), item(2, "Fargo", 1996), item(3, "Casino", 1995)];
        let index = TitleIndex::new(&items);
        let guesses = parse_titles("Casino (1995)\nHeat (1995)\ncasino\nFargo (1996)");
        assert_eq!(index.rank(&guesses, &[0]), vec![2, 1]);
    }

    #[test]
    fn a_year_that_matches_nothing_falls_back_to_the_first_title() {
        let index = TitleIndex::new(&[item(1, "Heat", 1995), item(2, "Heat", 1972)]);
        let find = |year| index.find(&TitleGuess { title: "heat".into(), year });
        assert_eq!((find(Some(1972)), find(Some(2020)), find(None)), (Some(1), Some(0), Some(0)));
    }

    #[test]
    fn test_users_get_catalogue_items_in_the_answer_order_without_seen_ones() {
        let split =
            tears_data::prepare(tears_data::DatasetName::Synthetic, &Default::default()).expect("synthetic").split;
        // The server names the first 40 items of the catalogue, in reverse, with their years.
        let named: Vec<usize> = (0..40).rev().collect();
        let answer: String = named
            .iter()
            .map(|&i| format!("{}. {} ({})\n", i + 1, split.items[i].title, split.items[i].year.unwrap_or(2000)))
            .collect();
        let server = MockServer::start(move |_, _| MockReply::Completion(answer.clone())).expect("mock server");
        let config = LlmConfig { max_tokens: DIRECT_MAX_TOKENS, ..LlmConfig::new(&server.url(), "mock") };
        let direct = DirectRecommender::movies(LlmClient::new(config).expect("client")).expect("prompt");
        let jobs = jobs(&split, EvalSet::Test);
        assert_eq!(jobs.len(), split.test.len());
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cache = SummaryCache::open(&dir.path().join("direct.jsonl")).expect("cache");
        let report = summarize_all(&direct, &jobs, &mut cache, &BatchOptions { progress: false, ..Default::default() });
        assert!(report.stopped.is_none() && report.failed.is_empty());
        let lists = ranked_lists(&split, EvalSet::Test, &cache);
        for (k, list) in lists.iter().enumerate() {
            let list = list.as_ref().expect("every user answered");
            let seen: Vec<usize> = split.test.foldin.row(k).iter().map(|r| r.item as usize).collect();
            let expected: Vec<usize> = named.iter().copied().filter(|i| !seen.contains(i)).collect();
            assert_eq!(list, &expected, "user row {k}");
        }
    }

    #[test]
    fn a_short_answer_is_re_asked_and_the_list_is_cached() {
        let list: String = (0..12).map(|i| format!("{}. Movie {i} (19{:02})\n", i + 1, 80 + i)).collect();
        let server = MockServer::start(move |n, _| {
            MockReply::Completion(if n == 0 { "I cannot choose.".into() } else { list.clone() })
        })
        .expect("mock server");
        let config = LlmConfig { max_tokens: DIRECT_MAX_TOKENS, ..LlmConfig::new(&server.url(), "mock") };
        let direct = DirectRecommender::movies(LlmClient::new(config).expect("client")).expect("prompt");
        let entry = tears_data::WindowEntry {
            item_id: 7,
            item: Some(0),
            title: "Heat".into(),
            year: Some(1995),
            genres: vec!["Crime".into()],
            rating: 5.0,
            timestamp: 1,
        };
        let jobs = vec![(42u64, History::from_window(&[entry]))];
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("direct.jsonl");
        let options = BatchOptions { concurrency: 1, progress: false, ..BatchOptions::default() };
        for run in 0..2 {
            let mut cache = SummaryCache::open(&path).expect("cache");
            let report = summarize_all(&direct, &jobs, &mut cache, &options);
            assert!(report.stopped.is_none() && report.failed.is_empty());
            let answer = &cache.get(42).expect("cached answer").text;
            assert_eq!(parse_titles(answer).len(), 12, "run {run}");
        }
        // The first answer was refused and re-asked once; the second run asked nothing.
        assert_eq!(server.requests(), 2);
        let prompt = server.received()[0].json().to_string();
        assert!(prompt.contains("Heat (1995)") && prompt.contains("recommend 50"));
    }
}
