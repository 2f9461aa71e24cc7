//! Cached lower-layer hidden states, so top-n fine-tuning runs only the top layers on CPU.
//!
//! In the `top-n` mode the embeddings and the lower `L - n` layers of the encoder are frozen:
//! their output for a text never changes during training. [`SentenceEncoder::cache_lower_layers`]
//! computes it once per text and keeps it on the host; each training step then builds a batch
//! from the cache ([`LayerCache::batch`]) and runs only the top `n` layers
//! ([`BertModel::forward_from`](crate::BertModel::forward_from)).
//!
//! Memory: texts × tokens × hidden × 4 bytes (f32), tokens counted per text without padding.
//! For all-MiniLM-L6-v2 (hidden 384) at the default truncation of 256 tokens that is up to
//! 384 KiB per text, about 1 GiB per 2,700 texts of full length; summaries of about 200 words
//! take roughly 250 tokens. [`LayerCache::bytes`] reports the exact figure.

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use crate::encoder::SentenceEncoder;
use crate::error::{Result, TextError};

/// The hidden states of a set of texts after the embeddings and the first
/// [`frozen_layers`](Self::frozen_layers) layers of an encoder, on the host as f32.
///
/// Row `i` holds text `i`'s states `[tokens, hidden]` without padding; its attention mask is
/// `tokens` ones (padding is added, with zeros in the mask, when rows are batched).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerCache {
    hidden: usize,
    frozen_layers: usize,
    lens: Vec<usize>,
    states: Vec<Vec<f32>>,
}

impl LayerCache {
    /// Number of texts.
    pub fn len(&self) -> usize {
        self.lens.len()
    }

    /// Whether the cache holds no text.
    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// The hidden size of the states.
    pub fn hidden_size(&self) -> usize {
        self.hidden
    }

    /// Layers already applied: pass it as `start_layer` to
    /// [`BertModel::forward_from`](crate::BertModel::forward_from).
    pub fn frozen_layers(&self) -> usize {
        self.frozen_layers
    }

    /// Token count of each text (special tokens included, after truncation).
    pub fn token_counts(&self) -> &[usize] {
        &self.lens
    }

    /// The states of text `row`, `[tokens, hidden]` row-major, or `None` past the end.
    pub fn states(&self, row: usize) -> Option<&[f32]> {
        self.states.get(row).map(Vec::as_slice)
    }

    /// Bytes of hidden states held: total tokens × hidden × 4.
    pub fn bytes(&self) -> usize {
        self.lens.iter().sum::<usize>() * self.hidden * std::mem::size_of::<f32>()
    }

    /// The states of texts `rows` as one batch on `device`: hidden states `[rows, len, hidden]`
    /// padded with zeros to the longest of them, and the attention mask `[rows, len]` (1.0 on
    /// tokens, 0.0 on padding). Neither tensor requires a gradient. `len` is at least 1, so an
    /// empty `rows` gives `[0, 1, hidden]` and `[0, 1]`.
    ///
    /// # Panics
    /// If a row is out of range (`row >= self.len()`), like slice indexing.
    pub fn batch<B: Backend>(&self, rows: &[usize], device: &B::Device) -> (Tensor<B, 3>, Tensor<B, 2>) {
        let h = self.hidden;
        for &r in rows {
            assert!(r < self.len(), "row {r} of a layer cache of {} texts", self.len());
        }
        let len = rows.iter().map(|&r| self.lens[r]).max().unwrap_or(0).max(1);
        let mut hidden = Vec::with_capacity(rows.len() * len * h);
        let mut mask = Vec::with_capacity(rows.len() * len);
        for &r in rows {
            let n = self.lens[r];
            hidden.extend_from_slice(&self.states[r]);
            hidden.extend(std::iter::repeat_n(0.0f32, (len - n) * h));
            mask.extend(std::iter::repeat_n(1.0f32, n));
            mask.extend(std::iter::repeat_n(0.0f32, len - n));
        }
        let hidden = Tensor::from_data(TensorData::new(hidden, [rows.len(), len, h]), device);
        let mask = Tensor::from_data(TensorData::new(mask, [rows.len(), len]), device);
        (hidden, mask)
    }
}

impl<B: Backend> SentenceEncoder<B> {
    /// Caches the token states of `texts` after the embeddings and the first `frozen_layers`
    /// layers (the frozen part of a top-n fine-tuning: `frozen_layers = layers - n`), computed
    /// batch by batch (batches of similar length, [`plan`](Self::plan)) with dropout off and no
    /// gradient kept. Row `i` of the cache is `texts[i]`.
    ///
    /// Memory: texts × tokens × hidden × 4 bytes (see the [module](crate::layer_cache) notes).
    /// `frozen_layers` above the model's layer count is an error.
    pub fn cache_lower_layers(&self, texts: &[&str], frozen_layers: usize) -> Result<LayerCache> {
        let layers = self.model.num_layers();
        if frozen_layers > layers {
            return Err(TextError::InvalidOption(format!(
                "{frozen_layers} frozen layers asked of a {layers}-layer model"
            )));
        }
        let h = self.model.dim();
        let seqs = self.tokenize(texts)?;
        let lens: Vec<usize> = seqs.iter().map(Vec::len).collect();
        let mut states: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        let model = self.model.without_dropout();
        for batch in self.plan(&lens) {
            let rows: Vec<&[u32]> = batch.rows.iter().map(|&i| seqs[i].as_slice()).collect();
            let (ids, mask) = self.pad(&rows);
            let [_, padded] = ids.dims();
            let out = model.hidden_states_until(ids, mask, frozen_layers).detach();
            let flat: Vec<f32> = out
                .into_data()
                .convert::<f32>()
                .into_vec()
                .map_err(|e| TextError::InvalidOption(format!("reading hidden states back: {e:?}")))?;
            for (j, &i) in batch.rows.iter().enumerate() {
                let start = j * padded * h;
                let row = flat.get(start..start + lens[i] * h).ok_or_else(|| {
                    TextError::InvalidOption(format!(
                        "hidden states of {} values for a batch of {padded} tokens",
                        flat.len()
                    ))
                })?;
                states[i] = row.to_vec();
            }
        }
        Ok(LayerCache { hidden: h, frozen_layers, lens, states })
    }
}
