//! # tears-summarize
//!
//! Summarizers turn a user's rated items into the short natural-language profile that TEARS
//! recommends from:
//!
//! - [`LlmSummarizer`]: any OpenAI-compatible chat-completions server (OpenAI, vLLM, llama.cpp,
//!   Ollama), with bounded concurrency, retries with backoff and jitter, answer validation and
//!   re-asks, through a small blocking client ([`LlmClient`]);
//! - [`TemplateSummarizer`]: deterministic, offline, from genre statistics;
//! - stored summaries are read by [`tears_data::StoredSummaries`].
//!
//! A summarizer only sees a [`History`], which is built from what a split lets it read (an
//! evaluation user's window, a training user's rows), never from held-out items. Prompts are
//! template files ([`PromptTemplate`]); batches go through a resumable JSONL cache
//! ([`SummaryCache`], [`summarize_all`]), or through a batch engine (the OpenAI Batch API,
//! `vllm run-batch`) as OpenAI Batch-format files ([`batch_file`]). The [`edit`] module has the
//! controllability edits; [`direct`] asks an LLM for recommendations directly (the paper's LLM
//! baseline row).
//!
//! ```
//! use tears_data::{prepare, DatasetName, PrepareOptions, split::EvalSet};
//! use tears_summarize::{History, Summarizer, TemplateSummarizer};
//! let split = prepare(DatasetName::Synthetic, &PrepareOptions::default())?.split;
//! let history = History::from_eval_user(&split, EvalSet::Test, 0).expect("a test user");
//! let text = TemplateSummarizer::from_split(&split).summarize(&history)?;
//! assert!(text.starts_with("Summary: "));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod batch;
pub mod batch_file;
pub mod cache;
pub mod direct;
pub mod edit;
pub mod error;
pub mod history;
pub mod llm;
pub mod mock;
pub mod prompt;
pub mod stats;
pub mod template;

pub use batch::{BatchOptions, BatchReport, summarize_all};
pub use batch_file::{BatchPrompts, ExportReport, ImportReport};
pub use cache::{CacheRecord, SummaryCache, now_rfc3339};
pub use error::{Result, SummarizeError};
pub use history::{History, HistoryItem, UserSet, user_histories};
pub use llm::{AnswerRules, ApiKey, LlmClient, LlmConfig, LlmSummarizer, Usage};
pub use prompt::{BOOKS_PROMPT, DEFAULT_MAX_ITEMS, MOVIES_PROMPT, Message, PromptTemplate, stable_hash};
pub use template::{TemplateSummarizer, genre_theme};

/// Turns a user's history into a summary text.
///
/// Implementations must be shareable between worker threads; [`Summarizer::prompt_hash`] names
/// what the summarizer saw so a cache can tell a finished user from a stale one.
pub trait Summarizer: Send + Sync {
    /// The model name recorded in the cache (`template` for the template summarizer).
    fn model(&self) -> String;
    /// A stable hash of the input this summarizer would send for `history` (prompt and settings).
    fn prompt_hash(&self, history: &History) -> String;
    /// The summary of `history`.
    fn summarize(&self, history: &History) -> Result<String>;
}
