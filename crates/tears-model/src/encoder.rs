//! Profile encoders: what turns a user's profile into the vector a model reads.
//!
//! - text through a pretrained BERT-family [`SentenceEncoder`] (frozen; vectors cached on disk
//!   through an [`EmbeddingCache`] and in memory) or the weight-free [`HashingEncoder`];
//! - a genre vector for GERS ([`GenreSpace`]).
//!
//! [`EncoderSpec`] is what a model directory records to rebuild (and check) the encoder.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};
use tears_text::{
    EmbeddingCache, EncoderIdentity, EncoderOptions, HashingConfig, HashingEncoder, SentenceEncoder, TextEncoder,
};

use crate::config::EncoderMode;
use crate::error::{Result, TearsError};
use crate::genres::GenreSpace;
use crate::tuning::{ENCODER_FILE, shaped_for, weights_digest};

/// A text encoder fine-tuned with the model, as its directory records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TunedEncoder {
    /// How it was fine-tuned.
    pub mode: EncoderMode,
    /// Its weights file in the model directory.
    pub file: String,
    /// [`weights_digest`] of its weights, checked when the model is loaded.
    pub weights_digest: String,
}

/// Which text encoder: a model folder or the hashing encoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum TextEncoderChoice {
    /// A BERT-family model folder (all-MiniLM-L6-v2 by default).
    Bert {
        /// The folder.
        dir: PathBuf,
        /// Truncation in tokens.
        max_tokens: usize,
    },
    /// The hashing bag-of-words encoder.
    Hashing(HashingConfig),
}

impl TextEncoderChoice {
    /// `hashing` (default settings) or a model folder with the default truncation.
    pub fn parse(s: &str) -> Self {
        if s == "hashing" {
            TextEncoderChoice::Hashing(HashingConfig::default())
        } else {
            TextEncoderChoice::Bert { dir: PathBuf::from(s), max_tokens: tears_text::DEFAULT_MAX_TOKENS }
        }
    }
}

/// What a model directory records about its encoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "profile")]
pub enum EncoderSpec {
    /// A text encoder and its identity (the key is checked when the model is loaded).
    Text {
        /// How to rebuild it.
        choice: TextEncoderChoice,
        /// What it was (before fine-tuning).
        identity: EncoderIdentity,
        /// The fine-tuned weights, when the encoder trained with the model.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tuned: Option<Box<TunedEncoder>>,
    },
    /// Genre vectors over these genres.
    Genres {
        /// The genre names, in vector order.
        names: Vec<String>,
    },
}

/// A text encoder of either kind.
#[derive(Debug)]
pub enum AnyTextEncoder<B: Backend> {
    /// A pretrained sentence encoder.
    Bert(Box<SentenceEncoder<B>>),
    /// The hashing encoder.
    Hashing(HashingEncoder<B>),
}

impl<B: Backend> AnyTextEncoder<B> {
    /// Opens the encoder `choice` names on `device`.
    ///
    /// # Errors
    /// A missing or malformed model folder.
    pub fn open(choice: &TextEncoderChoice, device: &B::Device) -> Result<Self> {
        Ok(match choice {
            TextEncoderChoice::Bert { dir, max_tokens } => {
                let options = EncoderOptions { max_tokens: *max_tokens, ..EncoderOptions::default() };
                AnyTextEncoder::Bert(Box::new(SentenceEncoder::load(dir, &options, device)?))
            }
            TextEncoderChoice::Hashing(config) => AnyTextEncoder::Hashing(HashingEncoder::new(config.clone(), device)?),
        })
    }

    fn as_encoder(&self) -> &dyn TextEncoder<B> {
        match self {
            AnyTextEncoder::Bert(e) => e.as_ref(),
            AnyTextEncoder::Hashing(e) => e,
        }
    }
}

/// How many floats the in-memory memo of text vectors holds at most (128 MiB); past that it is
/// cleared and refilled, so that a long-running server that embeds every text a client sends
/// stays bounded.
pub const MEMO_FLOATS: usize = 1 << 25;

/// Turns profiles into vectors: texts through a text encoder (memoised in memory, up to
/// [`MEMO_FLOATS`] floats, and on disk for BERT when a cache folder is given), or genre vectors
/// from fold-in ratings.
#[derive(Debug)]
pub enum ProfileEncoder<B: Backend> {
    /// Summaries through a text encoder.
    Text(Box<TextProfiles<B>>),
    /// Genre vectors.
    Genres(GenreSpace),
}

/// A text encoder with its identity and caches.
#[derive(Debug)]
pub struct TextProfiles<B: Backend> {
    /// The encoder.
    pub encoder: AnyTextEncoder<B>,
    /// How it was opened.
    pub choice: TextEncoderChoice,
    /// Its identity.
    pub identity: EncoderIdentity,
    /// On-disk vectors (BERT only, and only for the pretrained weights).
    pub cache: Option<EmbeddingCache>,
    /// Vectors computed in this process, by text.
    pub memo: Mutex<HashMap<String, Vec<f32>>>,
    /// The fine-tuned weights in use, if any.
    pub tuned: Option<TunedEncoder>,
}

impl<B: Backend> ProfileEncoder<B> {
    /// A text profile encoder; `cache` keeps BERT vectors on disk between runs.
    ///
    /// # Errors
    /// A missing or malformed model folder, an unreadable cache folder.
    pub fn text(choice: &TextEncoderChoice, cache: Option<&Path>, device: &B::Device) -> Result<Self> {
        let encoder = AnyTextEncoder::open(choice, device)?;
        let identity = encoder.as_encoder().identity()?;
        let cache = match (&encoder, cache) {
            (AnyTextEncoder::Bert(_), Some(dir)) => Some(EmbeddingCache::open(dir)?),
            _ => None,
        };
        Ok(ProfileEncoder::Text(Box::new(TextProfiles {
            encoder,
            choice: choice.clone(),
            identity,
            cache,
            memo: Mutex::new(HashMap::new()),
            tuned: None,
        })))
    }

    /// The same encoder with fine-tuned weights `model` (trained in `mode`): the embedding
    /// cache, which holds the pretrained weights' vectors, is no longer read.
    ///
    /// # Errors
    /// A genre or hashing encoder (nothing to fine-tune).
    pub fn with_tuned_model(self, model: tears_text::BertModel<B>, mode: EncoderMode) -> Result<Self> {
        let ProfileEncoder::Text(mut t) = self else {
            return Err(not_tunable("a genre-vector (GERS) profile"));
        };
        let AnyTextEncoder::Bert(e) = &mut t.encoder else {
            return Err(not_tunable("the hashing encoder"));
        };
        let weights_digest = weights_digest(&model);
        e.model = model;
        t.cache = None;
        t.memo = Mutex::new(HashMap::new());
        t.tuned = Some(TunedEncoder { mode, file: ENCODER_FILE.to_string(), weights_digest });
        Ok(ProfileEncoder::Text(t))
    }

    /// The BERT sentence encoder, if this is one.
    pub fn sentence_encoder(&self) -> Option<&SentenceEncoder<B>> {
        match self {
            ProfileEncoder::Text(t) => match &t.encoder {
                AnyTextEncoder::Bert(e) => Some(e),
                AnyTextEncoder::Hashing(_) => None,
            },
            ProfileEncoder::Genres(_) => None,
        }
    }

    /// Rebuilds the encoder `spec` records, checking that it is the same one (`manifest` names
    /// the file in the error). `encoder_dir` points a BERT encoder at another folder holding the
    /// same model. Fine-tuned weights are read from the manifest's directory and checked against
    /// their recorded digest.
    ///
    /// # Errors
    /// [`TearsError::Text`] with the fields that differ when the encoder is another one;
    /// [`TearsError::Mismatch`] when the fine-tuned weights are not the recorded ones.
    pub fn from_spec(
        spec: &EncoderSpec,
        encoder_dir: Option<&Path>,
        cache: Option<&Path>,
        manifest: &Path,
        device: &B::Device,
    ) -> Result<Self> {
        match spec {
            EncoderSpec::Genres { names } => {
                Ok(ProfileEncoder::Genres(GenreSpace { names: names.clone(), item_genres: Vec::new() }))
            }
            EncoderSpec::Text { choice, identity, tuned } => {
                let choice = match (choice, encoder_dir) {
                    (TextEncoderChoice::Bert { max_tokens, .. }, Some(dir)) => {
                        TextEncoderChoice::Bert { dir: dir.to_path_buf(), max_tokens: *max_tokens }
                    }
                    (c, _) => c.clone(),
                };
                let encoder = Self::text(&choice, if tuned.is_some() { None } else { cache }, device)?;
                if let ProfileEncoder::Text(now) = &encoder {
                    now.identity.check_matches(identity, manifest)?;
                }
                let Some(tuned) = tuned else {
                    return Ok(encoder);
                };
                let Some(base) = encoder.sentence_encoder() else {
                    return Err(not_tunable("the hashing encoder"));
                };
                let file = manifest.parent().unwrap_or_else(|| Path::new(".")).join(&tuned.file);
                let shaped = shaped_for(base.model.clone(), &tuned.mode, 0)?;
                let model = tears_vae::model::load_record(shaped, &file, device)?;
                let digest = weights_digest(&model);
                if digest != tuned.weights_digest {
                    return Err(TearsError::Mismatch {
                        path: file,
                        message: format!(
                            "these fine-tuned encoder weights are not the ones the model recorded (digest {} recorded, {} read)",
                            &tuned.weights_digest[..tuned.weights_digest.len().min(12)],
                            &digest[..12]
                        ),
                    });
                }
                encoder.with_tuned_model(model, tuned.mode)
            }
        }
    }

    /// The vector width.
    pub fn dim(&self) -> usize {
        match self {
            ProfileEncoder::Text(t) => t.identity.dim,
            ProfileEncoder::Genres(g) => g.len(),
        }
    }

    /// What a model directory records.
    pub fn spec(&self) -> EncoderSpec {
        match self {
            ProfileEncoder::Text(t) => EncoderSpec::Text {
                choice: t.choice.clone(),
                identity: t.identity.clone(),
                tuned: t.tuned.clone().map(Box::new),
            },
            ProfileEncoder::Genres(g) => EncoderSpec::Genres { names: g.names.clone() },
        }
    }

    /// The genre space of a GERS encoder.
    pub fn genres(&self) -> Option<&GenreSpace> {
        match self {
            ProfileEncoder::Genres(g) => Some(g),
            ProfileEncoder::Text(_) => None,
        }
    }

    /// Attaches the items' genres (a GERS encoder rebuilt from a spec knows only the names).
    ///
    /// # Errors
    /// [`TearsError::Mismatch`] when the split's genres are not the recorded ones.
    pub fn with_items(self, items: &[tears_data::Item], manifest: &Path) -> Result<Self> {
        match self {
            ProfileEncoder::Genres(recorded) => {
                let fresh = GenreSpace::from_items(items);
                if fresh.names != recorded.names {
                    return Err(TearsError::Mismatch {
                        path: manifest.to_path_buf(),
                        message: format!(
                            "the model was trained on {} genres but these items have {} other ones",
                            recorded.names.len(),
                            fresh.names.len()
                        ),
                    });
                }
                Ok(ProfileEncoder::Genres(fresh))
            }
            text => Ok(text),
        }
    }

    /// The vectors of `texts` (row `i` for `texts[i]`), each computed once per process (and once
    /// per cache folder for BERT). `progress` counts texts as they are done.
    ///
    /// # Errors
    /// A GERS encoder (it has no text), a failed encoding.
    pub fn embed_texts(&self, texts: &[&str], progress: &mut dyn FnMut(usize)) -> Result<Vec<Vec<f32>>> {
        let ProfileEncoder::Text(t) = self else {
            return Err(TearsError::Model(tears_core::ModelError::Config(
                "a genre-vector (GERS) model reads genre vectors, not summaries".into(),
            )));
        };
        let TextProfiles { encoder, cache, memo, .. } = t.as_ref();
        let mut out: Vec<Option<Vec<f32>>> = {
            let memo = memo.lock().map_err(|_| poisoned())?;
            texts.iter().map(|t| memo.get(*t).cloned()).collect()
        };
        let mut todo: Vec<&str> = texts.iter().zip(&out).filter(|(_, v)| v.is_none()).map(|(t, _)| *t).collect();
        todo.sort_unstable();
        todo.dedup();
        progress(texts.len() - out.iter().filter(|v| v.is_none()).count());
        if !todo.is_empty() {
            let fresh = match (encoder, cache) {
                (AnyTextEncoder::Bert(e), Some(cache)) => e.encode_cached(&todo, cache, &mut *progress)?,
                (AnyTextEncoder::Bert(e), None) => e.encode_vecs(&todo, &mut *progress)?,
                (AnyTextEncoder::Hashing(e), _) => {
                    let v = e.encode_vecs(&todo);
                    progress(todo.len());
                    v
                }
            };
            let mut memo = memo.lock().map_err(|_| poisoned())?;
            // Bounded: a long-running server embeds every text a client sends.
            let limit = MEMO_FLOATS / t.identity.dim.max(1);
            if memo.len() + todo.len() > limit {
                tracing::debug!(entries = memo.len(), limit, "the embedding memo is full: cleared");
                memo.clear();
            }
            for (t, v) in todo.iter().zip(fresh) {
                memo.insert((*t).to_string(), v);
            }
            for (slot, t) in out.iter_mut().zip(texts) {
                if slot.is_none() {
                    *slot = memo.get(*t).cloned();
                }
            }
        }
        Ok(out.into_iter().map(Option::unwrap_or_default).collect())
    }
}

fn not_tunable(what: &str) -> TearsError {
    TearsError::Model(tears_core::ModelError::Config(format!(
        "--encoder-mode top-n and lora fine-tune a BERT-family encoder; {what} has no weights to fine-tune"
    )))
}

fn poisoned() -> TearsError {
    TearsError::Model(tears_core::ModelError::Numerical("the embedding memo was poisoned by a panic".into()))
}
