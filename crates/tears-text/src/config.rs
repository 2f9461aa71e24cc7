//! `config.json` of a BERT-family model in the Hugging Face layout.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Result, TextError};

/// The architecture hyper-parameters of a BERT encoder (the fields of Hugging Face's
/// `config.json` this crate uses).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    /// `bert` (the only model type implemented; bge-small, gte-small and e5-small are `bert`).
    #[serde(default = "default_model_type")]
    pub model_type: String,
    /// Vocabulary size (rows of the word-embedding table).
    pub vocab_size: usize,
    /// Hidden size (the sentence-embedding dimension).
    pub hidden_size: usize,
    /// Number of transformer layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer (must divide `hidden_size`).
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// Longest sequence the position embeddings allow.
    pub max_position_embeddings: usize,
    /// Token-type (segment) vocabulary size.
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// Activation of the feed-forward layer: `gelu` (exact) or `gelu_new`/`gelu_pytorch_tanh`
    /// (tanh approximation).
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Dropout on hidden states during training.
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    /// Position embeddings: only `absolute` is implemented.
    #[serde(default = "default_position")]
    pub position_embedding_type: String,
    /// Id of the padding token.
    #[serde(default)]
    pub pad_token_id: u32,
}

fn default_model_type() -> String {
    "bert".into()
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_act() -> String {
    "gelu".into()
}
fn default_dropout() -> f64 {
    0.1
}
fn default_position() -> String {
    "absolute".into()
}

/// The feed-forward activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Exact GELU, `x Φ(x)`.
    Gelu,
    /// The tanh approximation of GELU.
    GeluTanh,
}

impl BertConfig {
    /// Reads and validates `config.json`.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                TextError::MissingFile { path: path.to_path_buf(), what: "model configuration" }
            }
            _ => TextError::io(path, e),
        })?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| TextError::Config { path: path.to_path_buf(), reason: e.to_string() })?;
        let model_type = value.get("model_type").and_then(|v| v.as_str()).unwrap_or("bert");
        if model_type != "bert" {
            return Err(TextError::Unsupported {
                path: path.to_path_buf(),
                reason: format!("model_type {model_type:?}; only BERT-family encoders (\"bert\") are implemented"),
            });
        }
        let config: BertConfig = serde_json::from_value(value)
            .map_err(|e| TextError::Config { path: path.to_path_buf(), reason: e.to_string() })?;
        config.validate().map_err(|reason| TextError::Unsupported { path: path.to_path_buf(), reason })?;
        Ok(config)
    }

    /// Checks that the hyper-parameters describe a model this crate can run.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.model_type != "bert" {
            return Err(format!("model_type {:?}; only \"bert\" is implemented", self.model_type));
        }
        if self.position_embedding_type != "absolute" {
            return Err(format!(
                "position_embedding_type {:?}; only \"absolute\" is implemented",
                self.position_embedding_type
            ));
        }
        self.activation()?;
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} is 0"));
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0) {
            return Err(format!("layer_norm_eps {} is not positive", self.layer_norm_eps));
        }
        if !(0.0..1.0).contains(&self.hidden_dropout_prob) {
            return Err(format!("hidden_dropout_prob {} is not in [0, 1)", self.hidden_dropout_prob));
        }
        Ok(())
    }

    /// The feed-forward activation named by `hidden_act`.
    pub fn activation(&self) -> std::result::Result<Activation, String> {
        match self.hidden_act.as_str() {
            "gelu" => Ok(Activation::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Ok(Activation::GeluTanh),
            other => Err(format!("hidden_act {other:?}; only gelu and its tanh approximation are implemented")),
        }
    }

    /// Size of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Floating-point operations of one forward pass over a `[batch, len]` padded batch:
    /// 2 per multiply-add of every matrix product (the projections, the feed-forward layer,
    /// attention scores and the weighted sum of values); element-wise work is not counted.
    pub fn forward_flops(&self, batch: usize, len: usize) -> f64 {
        let (b, l, h, i) = (batch as f64, len as f64, self.hidden_size as f64, self.intermediate_size as f64);
        let tokens = b * l;
        let projections = 2.0 * tokens * (4.0 * h * h + 2.0 * h * i);
        let attention = 2.0 * 2.0 * b * l * l * h;
        self.num_hidden_layers as f64 * (projections + attention)
    }

    /// The configuration of a small model for tests (`hidden` must be a multiple of `heads`).
    pub fn tiny(vocab_size: usize, hidden: usize, layers: usize, heads: usize) -> Self {
        BertConfig {
            model_type: "bert".into(),
            vocab_size,
            hidden_size: hidden,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            intermediate_size: 4 * hidden,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            hidden_act: "gelu".into(),
            hidden_dropout_prob: 0.1,
            position_embedding_type: "absolute".into(),
            pad_token_id: 0,
        }
    }
}
