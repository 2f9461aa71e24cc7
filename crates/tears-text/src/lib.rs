//! # tears-text
//!
//! Text encoders for tears-rs: a summary text becomes a vector that the TEARS model maps into
//! a recommender's latent space.
//!
//! - [`TextEncoder`]: a batch of strings → a burn tensor `[batch, dim]`, generic over the backend.
//! - [`SentenceEncoder`]: a pretrained BERT-family sentence encoder (all-MiniLM-L6-v2 by
//!   default; bge-small, gte-small, e5-small and other `bert` folders work) loaded from a local
//!   Hugging Face folder: `config.json`, `tokenizer.json`, `model.safetensors`. Mean (or CLS)
//!   pooling over non-padding tokens, optional L2 normalisation, dynamic padding to the longest
//!   text of each batch, truncation at 256 tokens by default.
//! - [`BertModel`]: the burn module itself, differentiable, with [`FineTuning`] modes: frozen,
//!   LoRA adapters on query/key/value, top-n layers, or everything.
//! - [`HashingEncoder`]: a deterministic hashing bag-of-words encoder (unigrams and bigrams,
//!   sublinear tf, L2-normalised) that needs no weights.
//! - [`EncoderIdentity`]: what made a set of vectors ([`TextEncoder::identity`]), recorded next to
//!   them and checked when they are read back.
//! - [`EmbeddingCache`]: embeddings on disk keyed by (model hash, text hash), safe to share
//!   between concurrent runs.
//! - [`LayerCache`]: the frozen lower layers' hidden states of a set of texts, kept on the host,
//!   so that top-n fine-tuning runs only the top layers each step
//!   ([`SentenceEncoder::cache_lower_layers`], [`BertModel::forward_from`]).
//! - [`TeiClient`] / [`TeiEncoder`]: sentence vectors from a Hugging Face
//!   text-embeddings-inference server (batched, retried, cached under a key of the server's
//!   model that never meets a local model's key).
//! - [`testing`]: a tiny random BERT folder written on the fly, for tests that need no download.
//!
//! ```
//! use burn::backend::Flex;
//! use tears_text::{EncoderOptions, SentenceEncoder, TextEncoder, testing};
//! let dir = tempfile::tempdir()?;
//! testing::write_tiny_model(dir.path(), 7)?;
//! let encoder = SentenceEncoder::<Flex>::load(dir.path(), &EncoderOptions::default(), &Default::default())?;
//! let v = encoder.encode(&["the user enjoys quiet dramas", ""])?;
//! assert_eq!(v.dims(), [2, encoder.dim()]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod bert;
pub mod cache;
pub mod config;
pub mod encoder;
pub mod error;
pub mod export;
pub mod hashing;
mod host;
pub mod io;
pub mod layer_cache;
pub mod tei;
pub mod testing;
pub mod tokenizer;
mod weights;

pub use bert::{BertModel, FineTuning, LoraConfig, Pooling, checkpoint_shapes};
pub use cache::EmbeddingCache;
pub use config::BertConfig;
pub use encoder::{Batch, DEFAULT_MODEL_DIR, EncoderIdentity, EncoderOptions, SentenceEncoder, TextEncoder};
pub use error::{Result, TextError};
pub use hashing::{HASHING_VERSION, HashingConfig, HashingEncoder};
pub use layer_cache::LayerCache;
pub use tei::{TeiClient, TeiConfig, TeiEncoder, TeiInfo};
pub use tokenizer::{DEFAULT_MAX_TOKENS, TextTokenizer};
pub use weights::write_safetensors;
