//! The tokenizer of a model folder (`tokenizer.json`), with the file's own padding replaced by
//! dynamic padding and its truncation by ours.

use std::path::{Path, PathBuf};

use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::error::{Result, TextError};

/// Default truncation: sequences longer than this many tokens (special tokens included) are cut.
pub const DEFAULT_MAX_TOKENS: usize = 256;

/// A Hugging Face tokenizer loaded from a local `tokenizer.json`.
///
/// The file's padding setting (all-MiniLM-L6-v2 ships fixed padding to 128 tokens) is removed:
/// the encoder pads each batch to its longest sequence. Truncation is set to `max_tokens`.
#[derive(Debug, Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    path: PathBuf,
    max_tokens: usize,
    pad_id: u32,
}

impl TextTokenizer {
    /// Loads `path` and truncates at `max_tokens` tokens (special tokens included).
    pub fn load(path: &Path, max_tokens: usize) -> Result<Self> {
        if !path.is_file() {
            return Err(TextError::MissingFile { path: path.to_path_buf(), what: "tokenizer" });
        }
        let bytes = std::fs::read(path).map_err(|e| TextError::io(path, e))?;
        let inner = Tokenizer::from_bytes(&bytes)
            .map_err(|e| TextError::Tokenizer { path: path.to_path_buf(), reason: e.to_string() })?;
        Self::from_tokenizer(inner, path, max_tokens)
    }

    fn from_tokenizer(mut inner: Tokenizer, path: &Path, max_tokens: usize) -> Result<Self> {
        if max_tokens < 2 {
            return Err(TextError::InvalidOption(format!("max_tokens must be at least 2, got {max_tokens}")));
        }
        let pad_id = inner
            .get_padding()
            .map(|p| p.pad_id)
            .or_else(|| inner.token_to_id("[PAD]"))
            .or_else(|| inner.token_to_id("<pad>"))
            .unwrap_or(0);
        inner.with_padding(None);
        inner
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: max_tokens,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| TextError::Tokenizer { path: path.to_path_buf(), reason: e.to_string() })?;
        Ok(TextTokenizer { inner, path: path.to_path_buf(), max_tokens, pad_id })
    }

    /// The token ids of each text, special tokens added, truncated, not padded.
    pub fn encode(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        let encodings = self
            .inner
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| TextError::Tokenizer { path: self.path.clone(), reason: e.to_string() })?;
        Ok(encodings.into_iter().map(|e| e.get_ids().to_vec()).collect())
    }

    /// Token ids of one text (for inspection).
    pub fn encode_one(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.encode(&[text])?.pop().unwrap_or_default())
    }

    /// Largest id the tokenizer can produce, plus one.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The id used for padding.
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// The truncation length.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// The file this tokenizer was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
