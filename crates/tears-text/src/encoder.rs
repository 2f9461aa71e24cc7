//! Sentence encoders: the [`TextEncoder`] trait and the pretrained BERT-family [`SentenceEncoder`].

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::bert::{BertModel, Pooling};
use crate::cache::{EmbeddingCache, sha256_hex};
use crate::config::BertConfig;
use crate::error::{Result, TextError};
use crate::tokenizer::{DEFAULT_MAX_TOKENS, TextTokenizer};
use crate::weights::SafetensorsWeights;

/// Maps a batch of strings to a batch of vectors `[batch, dim]`.
pub trait TextEncoder<B: Backend> {
    /// The vector dimension.
    fn dim(&self) -> usize;

    /// Encodes `texts`; row `i` is the vector of `texts[i]`.
    fn encode(&self, texts: &[&str]) -> Result<Tensor<B, 2>>;

    /// What this encoder is, for recording next to the vectors it made and checking them when
    /// they are read back (see [`EncoderIdentity::check_matches`]).
    fn identity(&self) -> Result<EncoderIdentity>;

    /// Encodes `texts` and reads the vectors back to the host as a `[texts.len(), dim]` matrix
    /// in standard (row-major, contiguous) layout: row `i` is the vector of `texts[i]`, of
    /// length [`dim`](Self::dim).
    fn encode_host(&self, texts: &[&str]) -> Result<Array2<f32>> {
        let dim = self.dim();
        let tensor = self.encode(texts)?;
        if texts.is_empty() || dim == 0 {
            return Ok(Array2::zeros((texts.len(), dim)));
        }
        let flat: Vec<f32> = tensor
            .into_data()
            .convert::<f32>()
            .into_vec()
            .map_err(|e| TextError::InvalidOption(format!("reading embeddings back: {e:?}")))?;
        if flat.len() != texts.len() * dim {
            return Err(TextError::InvalidOption(format!(
                "the encoder returned {} values for {} texts of dimension {dim}",
                flat.len(),
                texts.len()
            )));
        }
        Array2::from_shape_vec((texts.len(), dim), flat)
            .map_err(|e| TextError::InvalidOption(format!("shaping the embeddings: {e}")))
    }
}

/// What made a set of vectors: the encoder's kind, a key that changes whenever its vectors
/// could change (weights, tokenizer, settings), and its settings in readable form.
///
/// Files of embeddings (and anything trained on them) record it, so that vectors of two
/// different encoders are never mixed silently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncoderIdentity {
    /// `"bert"` (a [`SentenceEncoder`]), `"hashing"` (a [`HashingEncoder`](crate::HashingEncoder))
    /// or `"tei"` (a [`TeiEncoder`](crate::TeiEncoder), vectors from a text-embeddings-inference
    /// server).
    pub kind: String,
    /// For BERT, [`SentenceEncoder::model_key`] (SHA-256 over `model.safetensors`, `config.json`,
    /// `tokenizer.json` and the truncation, pooling and normalisation settings); for hashing, a
    /// hash of its configuration and version; for TEI, [`TeiClient::model_key`](crate::TeiClient::model_key)
    /// (from the server's `/info`, never equal to a BERT key).
    pub key: String,
    /// The vector dimension.
    pub dim: usize,
    /// Pooling of token states (`"mean"`, `"cls"`), `None` where there are no token states.
    pub pooling: Option<String>,
    /// Truncation length in tokens, `None` where texts are not truncated.
    pub max_tokens: Option<usize>,
    /// Whether the vectors are L2-normalised.
    pub normalize: bool,
    /// Where the encoder came from: the model folder as given, `"hashing"`, or the TEI server's
    /// URL.
    pub source: String,
}

impl EncoderIdentity {
    /// `Ok` when `other` (the identity recorded in `what_file`) describes the same encoder as
    /// `self` (the encoder in use); otherwise a [`TextError::EncoderMismatch`] naming the file and
    /// every field that differs. `source` is not compared: the same model may be read from two
    /// folders, and the key already covers its files.
    pub fn check_matches(&self, other: &EncoderIdentity, what_file: &Path) -> Result<()> {
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
        let opt_n = |v: &Option<usize>| v.map_or_else(|| "none".into(), |n| n.to_string());
        let pairs = [
            ("kind", self.kind.clone(), other.kind.clone()),
            ("key", self.key.clone(), other.key.clone()),
            ("dim", self.dim.to_string(), other.dim.to_string()),
            ("pooling", opt(&self.pooling), opt(&other.pooling)),
            ("max_tokens", opt_n(&self.max_tokens), opt_n(&other.max_tokens)),
            ("normalize", self.normalize.to_string(), other.normalize.to_string()),
        ];
        let differing: Vec<&(&str, String, String)> = pairs.iter().filter(|(_, a, b)| a != b).collect();
        if differing.is_empty() {
            return Ok(());
        }
        let join = |f: &dyn Fn(&(&str, String, String)) -> String| {
            differing.iter().map(|p| f(p)).collect::<Vec<_>>().join(", ")
        };
        Err(TextError::EncoderMismatch {
            path: what_file.to_path_buf(),
            fields: join(&|(name, _, _)| name.to_string()),
            expected: join(&|(name, a, _)| format!("{name}={a}")) + &format!(" ({})", self.source),
            found: join(&|(name, _, b)| format!("{name}={b}")) + &format!(" ({})", other.source),
        })
    }
}

/// Options of a [`SentenceEncoder`].
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderOptions {
    /// Truncation length in tokens, special tokens included (default 256, as sentence-transformers
    /// uses for all-MiniLM-L6-v2).
    pub max_tokens: usize,
    /// Texts per forward pass (texts are sorted by length first, so batches pad little).
    pub batch_size: usize,
    /// L2-normalise the sentence vectors.
    pub normalize: bool,
    /// Pooling; `None` reads `1_Pooling/config.json` of the model folder, else mean pooling.
    pub pooling: Option<Pooling>,
    /// Batches in flight at once, each on its own thread (default 2). Backends run parts of a
    /// forward pass (element-wise work, the attention kernel) on one thread; two batches at once
    /// keep both cores of a small machine busy. 1 runs batches one after the other.
    pub concurrent_batches: usize,
}

impl Default for EncoderOptions {
    fn default() -> Self {
        EncoderOptions {
            max_tokens: DEFAULT_MAX_TOKENS,
            batch_size: 32,
            normalize: true,
            pooling: None,
            concurrent_batches: 2,
        }
    }
}

/// The default model folder relative to the workspace root.
pub const DEFAULT_MODEL_DIR: &str = "../shared/models/all-MiniLM-L6-v2";

/// A pretrained BERT-family sentence encoder loaded from a Hugging Face model folder
/// (`config.json`, `tokenizer.json`, `model.safetensors`).
///
/// ```no_run
/// use burn::backend::Flex;
/// use tears_text::{EncoderOptions, SentenceEncoder, TextEncoder};
/// let encoder = SentenceEncoder::<Flex>::load(
///     std::path::Path::new("../shared/models/all-MiniLM-L6-v2"),
///     &EncoderOptions::default(),
///     &Default::default(),
/// )?;
/// let vectors = encoder.encode(&["enjoys quiet dramas", "likes loud action films"])?;
/// assert_eq!(vectors.dims(), [2, 384]);
/// # Ok::<(), tears_text::TextError>(())
/// ```
#[derive(Debug)]
pub struct SentenceEncoder<B: Backend> {
    /// The burn module (fine-tune it through [`BertModel::fine_tuning`]).
    pub model: BertModel<B>,
    tokenizer: TextTokenizer,
    config: BertConfig,
    options: EncoderOptions,
    dir: PathBuf,
    device: B::Device,
    model_key: OnceLock<String>,
}

/// One padded batch: the positions of its texts in the input and its token ids.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Input positions of the batch's texts, in batch order.
    pub rows: Vec<usize>,
    /// Padded length (the longest sequence of the batch).
    pub len: usize,
}

fn pooling_of_folder(dir: &Path) -> Option<Pooling> {
    let bytes = std::fs::read(dir.join("1_Pooling").join("config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    if v.get("pooling_mode_cls_token").and_then(|b| b.as_bool()) == Some(true) {
        Some(Pooling::Cls)
    } else if v.get("pooling_mode_mean_tokens").and_then(|b| b.as_bool()) == Some(true) {
        Some(Pooling::Mean)
    } else {
        None
    }
}

impl<B: Backend> SentenceEncoder<B> {
    /// Loads the model folder `dir` onto `device`.
    ///
    /// Errors name the file: a missing file, an architecture other than BERT, a tensor missing
    /// from `model.safetensors` or whose shape disagrees with `config.json`, a tokenizer whose
    /// vocabulary exceeds the model's, or `max_tokens` beyond the position embeddings.
    pub fn load(dir: &Path, options: &EncoderOptions, device: &B::Device) -> Result<Self> {
        if options.batch_size == 0 || options.concurrent_batches == 0 {
            return Err(TextError::InvalidOption("batch_size and concurrent_batches must be at least 1".into()));
        }
        if !dir.is_dir() {
            return Err(TextError::MissingFile { path: dir.to_path_buf(), what: "model folder" });
        }
        let config_path = dir.join("config.json");
        let config = BertConfig::load(&config_path)?;
        if options.max_tokens > config.max_position_embeddings {
            return Err(TextError::InvalidOption(format!(
                "max_tokens {} exceeds max_position_embeddings {} of {}",
                options.max_tokens,
                config.max_position_embeddings,
                config_path.display()
            )));
        }
        let tokenizer = TextTokenizer::load(&dir.join("tokenizer.json"), options.max_tokens)?;
        if tokenizer.vocab_size() > config.vocab_size {
            return Err(TextError::Tokenizer {
                path: tokenizer.path().to_path_buf(),
                reason: format!(
                    "vocabulary of {} tokens, but config.json gives the model {} embeddings",
                    tokenizer.vocab_size(),
                    config.vocab_size
                ),
            });
        }
        let weights_path = dir.join("model.safetensors");
        if !weights_path.is_file() {
            return Err(TextError::MissingFile { path: weights_path, what: "model weights" });
        }
        let bytes = std::fs::read(&weights_path).map_err(|e| TextError::io(&weights_path, e))?;
        let mut source = SafetensorsWeights::parse(&bytes, &weights_path)?;
        let pooling = options.pooling.or_else(|| pooling_of_folder(dir)).unwrap_or_default();
        let model = BertModel::build(&config, pooling, options.normalize, &mut source, device)?;
        tracing::debug!(
            "loaded {} ({} layers, hidden {}, {:?} pooling)",
            dir.display(),
            config.num_hidden_layers,
            config.hidden_size,
            pooling
        );
        Ok(SentenceEncoder {
            model,
            tokenizer,
            config,
            options: options.clone(),
            dir: dir.to_path_buf(),
            device: device.clone(),
            model_key: OnceLock::new(),
        })
    }

    /// The architecture read from `config.json`.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// The options it was loaded with.
    pub fn options(&self) -> &EncoderOptions {
        &self.options
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// The model folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The device the model lives on.
    pub fn device(&self) -> &B::Device {
        &self.device
    }

    /// Sets the batch size (at least 1).
    pub fn set_batch_size(&mut self, batch_size: usize) {
        self.options.batch_size = batch_size.max(1);
    }

    /// The cache key of this model: SHA-256 of `model.safetensors`, `config.json` and
    /// `tokenizer.json`, with the truncation, pooling and normalisation settings (computed once).
    pub fn model_key(&self) -> Result<&str> {
        if let Some(k) = self.model_key.get() {
            return Ok(k);
        }
        let mut parts = String::new();
        for name in ["model.safetensors", "config.json", "tokenizer.json"] {
            let path = self.dir.join(name);
            let bytes = std::fs::read(&path).map_err(|e| TextError::io(&path, e))?;
            parts.push_str(&sha256_hex(&bytes));
            parts.push('/');
        }
        parts.push_str(&format!(
            "max_tokens={};pooling={:?};normalize={}",
            self.options.max_tokens,
            self.model.pooling(),
            self.model.normalizes()
        ));
        let key = sha256_hex(parts.as_bytes());
        Ok(self.model_key.get_or_init(|| key))
    }

    /// Token ids of each text (special tokens added, truncated at `max_tokens`).
    pub fn tokenize(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        self.tokenizer.encode(texts)
    }

    /// Groups texts into batches of similar length: sorted by token count (longest first), cut
    /// into `batch_size` chunks. Each batch pads to its longest sequence.
    pub fn plan(&self, lengths: &[usize]) -> Vec<Batch> {
        let mut order: Vec<usize> = (0..lengths.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
        order
            .chunks(self.options.batch_size)
            .map(|rows| Batch { rows: rows.to_vec(), len: rows.iter().map(|&i| lengths[i]).max().unwrap_or(0) })
            .collect()
    }

    /// The padded id and mask tensors of `seqs` (`[batch, len]`, mask 1.0 on tokens).
    pub fn pad(&self, seqs: &[&[u32]]) -> (Tensor<B, 2, Int>, Tensor<B, 2>) {
        let len = seqs.iter().map(|s| s.len()).max().unwrap_or(0).max(1);
        let pad = self.tokenizer.pad_id() as i64;
        let mut ids = Vec::with_capacity(seqs.len() * len);
        let mut mask = Vec::with_capacity(seqs.len() * len);
        for s in seqs {
            ids.extend(s.iter().map(|&t| t as i64));
            ids.extend(std::iter::repeat_n(pad, len - s.len()));
            mask.extend(std::iter::repeat_n(1.0f32, s.len()));
            mask.extend(std::iter::repeat_n(0.0f32, len - s.len()));
        }
        let ids = Tensor::from_data(TensorData::new(ids, [seqs.len(), len]), &self.device);
        let mask = Tensor::from_data(TensorData::new(mask, [seqs.len(), len]), &self.device);
        (ids, mask)
    }

    /// The sentence vectors of one planned batch.
    fn forward_batch(&self, seqs: &[Vec<u32>], batch: &Batch) -> Tensor<B, 2> {
        let rows: Vec<&[u32]> = batch.rows.iter().map(|&i| seqs[i].as_slice()).collect();
        let (ids, mask) = self.pad(&rows);
        let out = self.model.forward(ids, mask);
        // Finish the work on this thread (backends may evaluate lazily).
        B::sync(&self.device).ok();
        out
    }

    /// Encodes `texts` batch by batch, calling `progress(n)` after each batch with the number of
    /// texts it held. Returns `[texts.len(), dim]` in input order.
    pub fn encode_with_progress(&self, texts: &[&str], progress: &mut dyn FnMut(usize)) -> Result<Tensor<B, 2>> {
        if texts.is_empty() {
            return Ok(Tensor::zeros([0, self.model.dim()], &self.device));
        }
        let seqs = self.tokenize(texts)?;
        let lengths: Vec<usize> = seqs.iter().map(Vec::len).collect();
        let batches = self.plan(&lengths);
        let mut outputs: Vec<Option<Tensor<B, 2>>> = vec![None; batches.len()];
        let workers = self.options.concurrent_batches.clamp(1, batches.len());
        if workers == 1 {
            for (slot, batch) in outputs.iter_mut().zip(&batches) {
                *slot = Some(self.forward_batch(&seqs, batch));
                progress(batch.rows.len());
            }
        } else {
            // Workers take batches in order; the caller's thread reports progress as they finish.
            let next = std::sync::atomic::AtomicUsize::new(0);
            let (sender, receiver) = std::sync::mpsc::channel::<(usize, Tensor<B, 2>)>();
            std::thread::scope(|scope| {
                for _ in 0..workers {
                    let sender = sender.clone();
                    let (next, seqs, batches) = (&next, &seqs, &batches);
                    scope.spawn(move || {
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(batch) = batches.get(i) else { break };
                            if sender.send((i, self.forward_batch(seqs, batch))).is_err() {
                                break;
                            }
                        }
                    });
                }
                drop(sender);
                for (i, out) in receiver {
                    progress(batches[i].rows.len());
                    outputs[i] = Some(out);
                }
            });
        }
        let outputs: Vec<Tensor<B, 2>> = outputs.into_iter().flatten().collect();
        if outputs.len() != batches.len() {
            return Err(TextError::InvalidOption("a batch worker stopped before finishing".into()));
        }
        let order: Vec<usize> = batches.iter().flat_map(|b| b.rows.iter().copied()).collect();
        let sorted = Tensor::cat(outputs, 0);
        // sorted row j is input order[j]; gather row `position of i` for each input i.
        let mut inverse = vec![0i64; order.len()];
        for (j, &i) in order.iter().enumerate() {
            inverse[i] = j as i64;
        }
        let index = Tensor::<B, 1, Int>::from_data(TensorData::new(inverse, [order.len()]), &self.device);
        Ok(sorted.select(0, index))
    }

    /// Encodes `texts` into plain vectors (row `i` for `texts[i]`).
    pub fn encode_vecs(&self, texts: &[&str], progress: &mut dyn FnMut(usize)) -> Result<Vec<Vec<f32>>> {
        let dim = self.model.dim();
        let tensor = self.encode_with_progress(texts, progress)?;
        let flat: Vec<f32> = tensor
            .into_data()
            .convert::<f32>()
            .into_vec()
            .map_err(|e| TextError::InvalidOption(format!("reading embeddings back: {e:?}")))?;
        Ok(flat.chunks_exact(dim).map(<[f32]>::to_vec).collect())
    }

    /// Like [`encode_vecs`](Self::encode_vecs), reading and filling `cache`: only texts missing
    /// from it are encoded. `progress` counts cached texts too.
    pub fn encode_cached(
        &self,
        texts: &[&str],
        cache: &EmbeddingCache,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<Vec<f32>>> {
        let key = self.model_key()?.to_string();
        cache.get_or_encode(&key, texts, None, progress, |todo, progress| self.encode_vecs(todo, progress))
    }

    /// Floating-point operations of encoding texts of these token counts with this batch size
    /// (see [`BertConfig::forward_flops`]).
    pub fn flops(&self, lengths: &[usize]) -> f64 {
        self.plan(lengths).iter().map(|b| self.config.forward_flops(b.rows.len(), b.len)).sum()
    }
}

impl<B: Backend> TextEncoder<B> for SentenceEncoder<B> {
    fn dim(&self) -> usize {
        self.model.dim()
    }

    fn encode(&self, texts: &[&str]) -> Result<Tensor<B, 2>> {
        self.encode_with_progress(texts, &mut |_| {})
    }

    fn identity(&self) -> Result<EncoderIdentity> {
        let pooling = match self.model.pooling() {
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
        };
        Ok(EncoderIdentity {
            kind: "bert".into(),
            key: self.model_key()?.to_string(),
            dim: self.model.dim(),
            pooling: Some(pooling.into()),
            max_tokens: Some(self.options.max_tokens),
            normalize: self.model.normalizes(),
            source: self.dir.display().to_string(),
        })
    }
}
