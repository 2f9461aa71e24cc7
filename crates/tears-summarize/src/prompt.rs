//! Prompt templates: a system message, a user message and an item line format, kept in files.
//!
//! A template file has three sections, each opened by a header line:
//!
//! ```text
//! ### system
//! Task: ... (the instructions)
//! ### user
//! Here are the movies the user rated, most recent first:
//!
//! {items}
//! ### item
//! Movie Title: {title}
//! User Rating: {rating}
//! Movie Genres: {genres}
//! ```
//!
//! `{items}` in the user section is replaced by the rendered items, most recent first, at most
//! [`PromptTemplate::max_items`], separated by blank lines. Item placeholders: `{title}`, `{rating}`
//! (`4`, `3.5`), `{genres}` (comma separated), `{tags}`, `{year}` and `{index}` (1-based). Any other
//! brace text is kept as written.

use std::path::Path;

use crate::error::{Result, SummarizeError};
use crate::history::{History, HistoryItem};

/// The default movie prompt (the TEARS prompt), `prompts/movies.txt`.
pub const MOVIES_PROMPT: &str = include_str!("../prompts/movies.txt");
/// The books variant, `prompts/books.txt`.
pub const BOOKS_PROMPT: &str = include_str!("../prompts/books.txt");

/// At most this many items go into a prompt by default.
pub const DEFAULT_MAX_ITEMS: usize = 50;

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl Message {
    /// A message with `role` and `content`.
    ///
    /// ```
    /// let m = tears_summarize::Message::new("user", "hi");
    /// assert_eq!(m.role, "user");
    /// ```
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Message { role: role.to_string(), content: content.into() }
    }
}

/// A parsed prompt template.
///
/// ```
/// use tears_summarize::PromptTemplate;
/// let t = PromptTemplate::movies();
/// assert!(t.system.starts_with("Task:"));
/// assert_eq!(t.max_items, 50);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptTemplate {
    /// The system message.
    pub system: String,
    /// The user message, with an `{items}` placeholder.
    pub user: String,
    /// The format of one item.
    pub item: String,
    /// At most this many items (the most recent) are rendered.
    pub max_items: usize,
}

impl PromptTemplate {
    /// Parses a template text (see the module docs); `origin` names it in errors.
    ///
    /// ```
    /// use tears_summarize::PromptTemplate;
    /// let t = PromptTemplate::parse("### system\nBe brief.\n### user\n{items}\n### item\n{title}: {rating}\n", "inline")?;
    /// assert_eq!(t.system, "Be brief.");
    /// assert!(PromptTemplate::parse("### user\nno items placeholder\n### item\n{title}", "x").is_err());
    /// # Ok::<(), tears_summarize::SummarizeError>(())
    /// ```
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let err = |message: String| SummarizeError::Template { origin: origin.to_string(), message };
        let mut sections: Vec<(String, Vec<&str>)> = Vec::new();
        for line in text.lines() {
            if let Some(name) = line.trim_end().strip_prefix("### ") {
                sections.push((name.trim().to_lowercase(), Vec::new()));
            } else if let Some((_, lines)) = sections.last_mut() {
                lines.push(line);
            } else if !line.trim().is_empty() {
                return Err(err("text before the first `### system|user|item` header".into()));
            }
        }
        let mut system = String::new();
        let mut user = None;
        let mut item = None;
        for (name, lines) in sections {
            let body = lines.join("\n").trim().to_string();
            match name.as_str() {
                "system" => system = body,
                "user" => user = Some(body),
                "item" => item = Some(body),
                other => return Err(err(format!("unknown section `### {other}` (system, user or item)"))),
            }
        }
        let user = user.ok_or_else(|| err("no `### user` section".into()))?;
        let item = item.ok_or_else(|| err("no `### item` section".into()))?;
        if !user.contains("{items}") {
            return Err(err("the user section has no {items} placeholder".into()));
        }
        if !item.contains("{title}") && !item.contains("{genres}") {
            return Err(err("the item section shows neither {title} nor {genres}".into()));
        }
        Ok(PromptTemplate { system, user, item, max_items: DEFAULT_MAX_ITEMS })
    }

    /// Reads and parses a template file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| SummarizeError::io(path, e))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The built-in movie prompt (the TEARS prompt).
    pub fn movies() -> Self {
        Self::parse(MOVIES_PROMPT, "built-in movies").unwrap_or_else(|_| unreachable!("the built-in prompt parses"))
    }

    /// The built-in books prompt.
    ///
    /// ```
    /// assert!(tears_summarize::PromptTemplate::books().item.contains("Book Title"));
    /// ```
    pub fn books() -> Self {
        Self::parse(BOOKS_PROMPT, "built-in books").unwrap_or_else(|_| unreachable!("the built-in prompt parses"))
    }

    /// Renders one item (`index` is 1-based).
    pub fn render_item(&self, index: usize, item: &HistoryItem) -> String {
        self.item
            .replace("{title}", item.title.trim())
            .replace("{rating}", &format_rating(item.rating))
            .replace("{genres}", &item.genres.join(", "))
            .replace("{tags}", &item.tags.join(", "))
            .replace("{year}", &item.year.map(|y| y.to_string()).unwrap_or_default())
            .replace("{index}", &index.to_string())
    }

    /// Renders the chat messages for `history`: the system message (when not empty) and the user
    /// message with the `max_items` most recent items.
    ///
    /// ```
    /// use tears_data::WindowEntry;
    /// use tears_summarize::{History, PromptTemplate};
    /// let h = History::from_window(&[WindowEntry {
    ///     item_id: 1, item: None, title: "Heat".into(), year: Some(1995),
    ///     genres: vec!["Action".into(), "Crime".into()], rating: 4.0, timestamp: 0,
    /// }]);
    /// let m = PromptTemplate::movies().render(&h);
    /// assert_eq!(m[0].role, "system");
    /// assert!(m[1].content.ends_with("Movie Title: Heat\nUser Rating: 4\nMovie Genres: Action, Crime"));
    /// ```
    pub fn render(&self, history: &History) -> Vec<crate::Message> {
        let items: Vec<String> =
            history.recent(self.max_items).iter().enumerate().map(|(i, it)| self.render_item(i + 1, it)).collect();
        let user = self.user.replace("{items}", &items.join("\n\n"));
        let mut out = Vec::with_capacity(2);
        if !self.system.is_empty() {
            out.push(crate::Message::new("system", self.system.clone()));
        }
        out.push(crate::Message::new("user", user));
        out
    }
}

/// A rating as prompts show it: `4`, `3.5`.
fn format_rating(r: f32) -> String {
    if r.fract() == 0.0 { format!("{}", r as i64) } else { format!("{r}") }
}

/// A stable 64-bit FNV-1a hash of `parts` (each followed by a 0 byte), as 16 hex digits.
///
/// Used as the `prompt_hash` of cached summaries: it changes when the rendered prompt, the model
/// or the generation settings change.
///
/// ```
/// let a = tears_summarize::stable_hash(&["x", "y"]);
/// assert_eq!(a.len(), 16);
/// assert_ne!(a, tears_summarize::stable_hash(&["xy"]));
/// ```
pub fn stable_hash(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.as_bytes().iter().chain(std::iter::once(&0u8)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}
