//! A BERT encoder as burn modules, with mean or CLS pooling, LoRA adapters and layer freezing.
//!
//! The module is differentiable end to end: [`BertModel::forward`] maps token ids and an
//! attention mask to sentence embeddings `[batch, hidden]`, so a downstream model can fine-tune
//! it with burn's autodiff. [`BertModel::fine_tuning`] chooses which parameters train.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::nn::{Dropout, DropoutConfig, Embedding, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::activation::{gelu, gelu_approximate};
use burn::tensor::backend::Backend;
use burn::tensor::module::{attention, embedding};
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{DType, Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::{Activation, BertConfig};
use crate::error::{Result, TextError};
use crate::host;

/// How token states become one sentence vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pooling {
    /// Mean over the non-padding tokens (sentence-transformers' MiniLM, gte, e5).
    #[default]
    Mean,
    /// The first token's state (`[CLS]`; bge).
    Cls,
}

/// Additive attention bias of masked keys: large enough that `exp` underflows to exactly 0,
/// finite so that a fully masked row cannot produce NaN.
const MASKED: f32 = -1.0e9;

/// A LoRA adapter: `x ↦ scale · dropout(x) · down · up`, added to a frozen projection.
#[derive(Module, Debug)]
pub struct LoraAdapter<B: Backend> {
    /// `[d_in, rank]`, random at creation.
    pub down: Param<Tensor<B, 2>>,
    /// `[rank, d_out]`, zero at creation (the adapted model starts equal to the base model).
    pub up: Param<Tensor<B, 2>>,
    /// Multiplier of the low-rank update (often `alpha / rank`).
    pub scale: f64,
    dropout: Dropout,
}

impl<B: Backend> LoraAdapter<B> {
    fn new(d_in: usize, d_out: usize, config: &LoraConfig, rng: &mut ChaCha8Rng, device: &B::Device) -> Self {
        // Kaiming-uniform bound for the down projection, as in the LoRA reference code.
        let bound = (1.0 / d_in as f64).sqrt() as f32;
        let down: Vec<f32> = (0..d_in * config.rank).map(|_| rng.random_range(-bound..bound)).collect();
        LoraAdapter {
            down: Param::from_tensor(Tensor::from_data(TensorData::new(down, [d_in, config.rank]), device)),
            up: Param::from_tensor(Tensor::zeros([config.rank, d_out], device)),
            scale: config.scale,
            dropout: DropoutConfig::new(config.dropout).init(),
        }
    }

    /// The update for `x` `[n, d_in]`: `[n, d_out]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.dropout.forward(x).matmul(self.down.val()).matmul(self.up.val()).mul_scalar(self.scale)
    }
}

/// LoRA adapters on the query, key and value projections of one layer.
#[derive(Module, Debug)]
pub struct QkvLora<B: Backend> {
    /// Adapter of the query projection.
    pub query: LoraAdapter<B>,
    /// Adapter of the key projection.
    pub key: LoraAdapter<B>,
    /// Adapter of the value projection.
    pub value: LoraAdapter<B>,
}

/// Multi-head self-attention with its output projection, residual and LayerNorm.
#[derive(Module, Debug)]
pub struct SelfAttention<B: Backend> {
    /// Query, key and value projections, head-major: `[1, 3 · heads, hidden + 1, head_dim]`
    /// (queries' heads, then keys', then values'); row `hidden` of each block is the bias. One
    /// batched product with `[x, 1]` yields `[batch, heads, len, head_dim]` directly, with no
    /// transposition of activations.
    pub qkv: Param<Tensor<B, 4>>,
    /// Optional LoRA adapters on query, key and value.
    pub lora: Option<QkvLora<B>>,
    /// Output projection.
    pub output: Linear<B>,
    /// LayerNorm after the residual.
    pub norm: LayerNorm<B>,
    dropout: Dropout,
    heads: usize,
}

impl<B: Backend> SelfAttention<B> {
    /// `x` `[batch · len, hidden]`, `mask` the additive key mask.
    fn forward(&self, x: Tensor<B, 2>, mask: &KeyMask<B>, batch: usize, len: usize) -> Tensor<B, 2> {
        let [n, hidden] = x.dims();
        let heads = self.heads;
        let head_dim = hidden / heads;
        let ones = Tensor::ones([n, 1], &x.device());
        let xa = Tensor::cat(vec![x.clone(), ones], 1).reshape([batch, 1, len, hidden + 1]);
        let weights = self.qkv.val();
        let project = |part: usize| {
            let w = weights.clone().slice([0..1, part * heads..(part + 1) * heads, 0..hidden + 1, 0..head_dim]);
            xa.clone().matmul(w)
        };
        let (mut q, mut k, mut v) = (project(0), project(1), project(2));
        if let Some(lora) = &self.lora {
            let heads_major = |t: Tensor<B, 2>| t.reshape([batch, len, heads, head_dim]).swap_dims(1, 2);
            q = q + heads_major(lora.query.forward(x.clone()));
            k = k + heads_major(lora.key.forward(x.clone()));
            v = v + heads_major(lora.value.forward(x.clone()));
        }
        let context = match mask {
            // The backend's fused attention (softmax(q kᵀ / √d + bias) v); under autodiff burn
            // runs it as differentiable matrix products and a softmax.
            KeyMask::Backend(bias) => attention(q, k, v, None, Some(bias.clone()), AttentionModuleOptions::default())
                .swap_dims(1, 2)
                .reshape([n, hidden]),
            KeyMask::Host(key_bias) => host::attention(q, k, v, key_bias),
        };
        let out = self.dropout.forward(self.output.forward(context));
        self.norm.forward(out + x)
    }
}

/// One transformer layer: self-attention, then the GELU feed-forward block.
#[derive(Module, Debug)]
pub struct BertLayer<B: Backend> {
    /// The attention block.
    pub attention: SelfAttention<B>,
    /// First feed-forward projection (`hidden → intermediate`).
    pub intermediate: Linear<B>,
    /// Second feed-forward projection (`intermediate → hidden`).
    pub output: Linear<B>,
    /// LayerNorm after the feed-forward residual.
    pub norm: LayerNorm<B>,
    dropout: Dropout,
    gelu_tanh: bool,
}

impl<B: Backend> BertLayer<B> {
    fn forward(&self, x: Tensor<B, 2>, mask: &KeyMask<B>, batch: usize, len: usize) -> Tensor<B, 2> {
        let x = self.attention.forward(x, mask, batch, len);
        let h = self.intermediate.forward(x.clone());
        let h = match (self.gelu_tanh, mask) {
            (true, _) => gelu_approximate(h),
            (false, KeyMask::Backend(_)) => gelu(h),
            (false, KeyMask::Host(_)) => host::gelu_tensor(h),
        };
        let out = self.dropout.forward(self.output.forward(h));
        self.norm.forward(out + x)
    }
}

/// The attention mask in the form the forward uses: burn's additive bias `[batch, 1, len, len]`,
/// or one additive bias per key on the host, which also selects the host kernels (see
/// [`BertModel::set_host_kernels`]).
enum KeyMask<B: Backend> {
    Backend(Tensor<B, 4>),
    Host(Vec<f32>),
}

/// A BERT encoder with a pooling head: token ids and mask in, sentence embeddings out.
#[derive(Module, Debug)]
pub struct BertModel<B: Backend> {
    /// Word-piece embeddings `[vocab, hidden]`.
    pub word_embeddings: Embedding<B>,
    /// Absolute position embeddings `[max_positions, hidden]`.
    pub position_embeddings: Embedding<B>,
    /// Token-type embeddings `[types, hidden]` (type 0 is used for single sentences).
    pub token_type_embeddings: Embedding<B>,
    /// LayerNorm of the summed embeddings.
    pub embeddings_norm: LayerNorm<B>,
    /// The transformer layers, bottom first.
    pub layers: Vec<BertLayer<B>>,
    dropout: Dropout,
    hidden: usize,
    max_positions: usize,
    cls_pooling: bool,
    normalize: bool,
    host_kernels: bool,
}

/// Which parameters of a [`BertModel`] train.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum FineTuning {
    /// Nothing trains (the encoder is a fixed feature extractor; embeddings can be cached).
    #[default]
    Frozen,
    /// LoRA adapters on query/key/value of every layer train; the pretrained weights stay frozen.
    Lora(LoraConfig),
    /// The top `n` transformer layers train; the embeddings and the layers below stay frozen.
    TopLayers(usize),
    /// Every parameter trains.
    Full,
}

/// Hyper-parameters of the LoRA adapters.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraConfig {
    /// Rank of the update (at least 1).
    pub rank: usize,
    /// Multiplier of the update (`alpha / rank` in the LoRA paper's notation).
    pub scale: f64,
    /// Dropout on the adapter's input during training.
    pub dropout: f64,
    /// Seed of the down-projection initialisation.
    pub seed: u64,
}

impl Default for LoraConfig {
    /// Rank 8, scale 2 (alpha 16), dropout 0.1.
    fn default() -> Self {
        LoraConfig { rank: 8, scale: 2.0, dropout: 0.1, seed: 0 }
    }
}

/// Sets `require_grad` on every float parameter a module visits.
struct SetRequireGrad(bool);

impl<B: Backend> ModuleMapper<B> for SetRequireGrad {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        param.set_require_grad(self.0)
    }
}

/// Counts the elements of parameters that require gradients.
struct CountTrainable(usize);

impl<B: Backend> ModuleVisitor<B> for CountTrainable {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let t = param.val();
        if t.is_require_grad() {
            self.0 += t.shape().num_elements();
        }
    }
}

/// Where the builder gets each tensor from (a safetensors file or a random initialiser), in the
/// Hugging Face layout: linear weights `[out, in]`.
pub(crate) trait WeightSource {
    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>>;
}

/// `[out, in]` row-major → `[in, out]` row-major.
fn transpose(data: &[f32], out: usize, inp: usize) -> Vec<f32> {
    let mut t = vec![0.0; data.len()];
    for o in 0..out {
        for i in 0..inp {
            t[i * out + o] = data[o * inp + i];
        }
    }
    t
}

fn param1<B: Backend>(data: Vec<f32>, device: &B::Device) -> Param<Tensor<B, 1>> {
    let n = data.len();
    Param::from_tensor(Tensor::from_data(TensorData::new(data, [n]), device))
}

fn param2<B: Backend>(data: Vec<f32>, shape: [usize; 2], device: &B::Device) -> Param<Tensor<B, 2>> {
    Param::from_tensor(Tensor::from_data(TensorData::new(data, shape), device))
}

fn linear<B: Backend>(
    src: &mut dyn WeightSource,
    name: &str,
    inp: usize,
    out: usize,
    device: &B::Device,
) -> Result<Linear<B>> {
    let w = src.tensor(&format!("{name}.weight"), &[out, inp])?;
    let b = src.tensor(&format!("{name}.bias"), &[out])?;
    Ok(Linear { weight: param2(transpose(&w, out, inp), [inp, out], device), bias: Some(param1(b, device)) })
}

fn layer_norm<B: Backend>(
    src: &mut dyn WeightSource,
    name: &str,
    d: usize,
    eps: f64,
    device: &B::Device,
) -> Result<LayerNorm<B>> {
    let mut norm = LayerNormConfig::new(d).with_epsilon(eps).init(device);
    norm.gamma = param1(src.tensor(&format!("{name}.weight"), &[d])?, device);
    norm.beta = Some(param1(src.tensor(&format!("{name}.bias"), &[d])?, device));
    Ok(norm)
}

fn table<B: Backend>(
    src: &mut dyn WeightSource,
    name: &str,
    rows: usize,
    d: usize,
    device: &B::Device,
) -> Result<Embedding<B>> {
    Ok(Embedding { weight: param2(src.tensor(name, &[rows, d])?, [rows, d], device) })
}

impl<B: Backend> BertModel<B> {
    pub(crate) fn build(
        config: &BertConfig,
        pooling: Pooling,
        normalize: bool,
        src: &mut dyn WeightSource,
        device: &B::Device,
    ) -> Result<Self> {
        let h = config.hidden_size;
        let i = config.intermediate_size;
        let eps = config.layer_norm_eps;
        let gelu_tanh = matches!(config.activation(), Ok(Activation::GeluTanh));
        let dropout = DropoutConfig::new(config.hidden_dropout_prob).init();
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            // Head-major [1, 3 heads, h + 1, d]: block (part, head) holds W_partᵀ's columns of
            // that head, then its bias as the last row.
            let heads = config.num_attention_heads;
            let d = config.head_dim();
            let mut w = vec![0.0f32; 3 * heads * (h + 1) * d];
            for (pi, part) in ["query", "key", "value"].into_iter().enumerate() {
                let wp = src.tensor(&format!("{p}.attention.self.{part}.weight"), &[h, h])?;
                let bp = src.tensor(&format!("{p}.attention.self.{part}.bias"), &[h])?;
                for j in 0..heads {
                    let block = (pi * heads + j) * (h + 1) * d;
                    for c in 0..d {
                        let out = j * d + c;
                        for i in 0..h {
                            w[block + i * d + c] = wp[out * h + i];
                        }
                        w[block + h * d + c] = bp[out];
                    }
                }
            }
            let qkv = Param::from_tensor(Tensor::from_data(TensorData::new(w, [1, 3 * heads, h + 1, d]), device));
            let attention = SelfAttention {
                qkv,
                lora: None,
                output: linear(src, &format!("{p}.attention.output.dense"), h, h, device)?,
                norm: layer_norm(src, &format!("{p}.attention.output.LayerNorm"), h, eps, device)?,
                dropout: dropout.clone(),
                heads: config.num_attention_heads,
            };
            layers.push(BertLayer {
                attention,
                intermediate: linear(src, &format!("{p}.intermediate.dense"), h, i, device)?,
                output: linear(src, &format!("{p}.output.dense"), i, h, device)?,
                norm: layer_norm(src, &format!("{p}.output.LayerNorm"), h, eps, device)?,
                dropout: dropout.clone(),
                gelu_tanh,
            });
        }
        Ok(BertModel {
            word_embeddings: table(src, "embeddings.word_embeddings.weight", config.vocab_size, h, device)?,
            position_embeddings: table(
                src,
                "embeddings.position_embeddings.weight",
                config.max_position_embeddings,
                h,
                device,
            )?,
            token_type_embeddings: table(
                src,
                "embeddings.token_type_embeddings.weight",
                config.type_vocab_size,
                h,
                device,
            )?,
            embeddings_norm: layer_norm(src, "embeddings.LayerNorm", h, eps, device)?,
            layers,
            dropout,
            hidden: h,
            max_positions: config.max_position_embeddings,
            cls_pooling: pooling == Pooling::Cls,
            normalize,
            host_kernels: true,
        })
    }

    /// A randomly initialised model (normal(0, 0.02) weights, LayerNorm scales near 1), for tests
    /// and for training from scratch. Deterministic in `seed`.
    pub fn random(
        config: &BertConfig,
        pooling: Pooling,
        normalize: bool,
        seed: u64,
        device: &B::Device,
    ) -> Result<Self> {
        config.validate().map_err(TextError::InvalidOption)?;
        Self::build(config, pooling, normalize, &mut RandomWeights::new(seed), device)
    }

    /// The sentence-embedding dimension.
    pub fn dim(&self) -> usize {
        self.hidden
    }

    /// The pooling head.
    pub fn pooling(&self) -> Pooling {
        if self.cls_pooling { Pooling::Cls } else { Pooling::Mean }
    }

    /// Whether sentence embeddings are L2-normalised.
    pub fn normalizes(&self) -> bool {
        self.normalize
    }

    /// Longest sequence the position embeddings allow.
    pub fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// Token states `[batch, len, hidden]` of `input_ids` `[batch, len]` under `attention_mask`
    /// `[batch, len]` (1.0 for tokens, 0.0 for padding). `len` must not exceed
    /// [`max_positions`](Self::max_positions) and ids must be below the vocabulary size.
    pub fn hidden_states(&self, input_ids: Tensor<B, 2, Int>, attention_mask: Tensor<B, 2>) -> Tensor<B, 3> {
        self.hidden_states_until(input_ids, attention_mask, self.layers.len())
    }

    /// Token states `[batch, len, hidden]` after the embeddings and the first `layers`
    /// transformer layers (`0`: the embeddings alone; `layers` at or above
    /// [`num_layers`](Self::num_layers): every layer, as [`hidden_states`](Self::hidden_states)).
    /// Same inputs as [`hidden_states`](Self::hidden_states). With
    /// [`forward_from`](Self::forward_from) it splits [`forward`](Self::forward) in two:
    /// `forward_from(hidden_states_until(ids, mask, k), mask, k)` equals `forward(ids, mask)`.
    pub fn hidden_states_until(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2>,
        layers: usize,
    ) -> Tensor<B, 3> {
        let [_, len] = input_ids.dims();
        let h = self.hidden;
        let words = embedding(self.word_embeddings.weight.val(), input_ids);
        let positions = self.position_embeddings.weight.val().slice([0..len, 0..h]).unsqueeze_dim::<3>(0);
        let types = self.token_type_embeddings.weight.val().slice([0..1, 0..h]).unsqueeze_dim::<3>(0);
        let x = self.embeddings_norm.forward(words + positions + types);
        let x = self.dropout.forward(x);
        self.run_layers(x, attention_mask, 0, layers)
    }

    /// Runs layers `start..end` (clamped to the model's layers) over token states `x`
    /// `[batch, len, hidden]`.
    fn run_layers(&self, x: Tensor<B, 3>, attention_mask: Tensor<B, 2>, start: usize, end: usize) -> Tensor<B, 3> {
        let [batch, len, h] = x.dims();
        let end = end.min(self.layers.len());
        if start >= end {
            return x;
        }
        let mut x = x.reshape([batch * len, h]);
        let device = x.device();
        let key_bias = (attention_mask - 1.0).mul_scalar(-MASKED);
        // burn's form: materialised once as [batch, 1, len, len] (shared by the heads).
        let backend = |bias: Tensor<B, 2>| KeyMask::Backend(bias.reshape([batch, 1, 1, len]).repeat_dim(2, len));
        let mask = if self.host_kernels && x.dtype() == DType::F32 && host::available::<B>(&device) {
            let data = key_bias.into_data();
            match data.as_slice::<f32>() {
                Ok(values) => KeyMask::Host(values.to_vec()),
                Err(_) => backend(Tensor::from_data(data, &device)),
            }
        } else {
            backend(key_bias)
        };
        for layer in &self.layers[start..end] {
            x = layer.forward(x, &mask, batch, len);
        }
        x.reshape([batch, len, h])
    }

    /// Pools token states `[batch, len, hidden]` into sentence vectors, normalised if the model
    /// normalises.
    fn pool(&self, states: Tensor<B, 3>, attention_mask: Tensor<B, 2>) -> Tensor<B, 2> {
        let [batch, len, h] = states.dims();
        let pooled = if self.cls_pooling {
            states.slice([0..batch, 0..1, 0..h]).reshape([batch, h])
        } else {
            let mask = attention_mask.reshape([batch, len, 1]);
            let counts = mask.clone().sum_dim(1).reshape([batch, 1]).clamp_min(1e-9);
            (states * mask).sum_dim(1).reshape([batch, h]) / counts
        };
        if self.normalize {
            let norm = pooled.clone().powf_scalar(2.0).sum_dim(1).sqrt().clamp_min(1e-12);
            pooled / norm
        } else {
            pooled
        }
    }

    /// Sentence embeddings `[batch, hidden]`: token states pooled (mean over the mask, or the
    /// first token), then L2-normalised if the model normalises. Differentiable.
    pub fn forward(&self, input_ids: Tensor<B, 2, Int>, attention_mask: Tensor<B, 2>) -> Tensor<B, 2> {
        let states = self.hidden_states(input_ids, attention_mask.clone());
        self.pool(states, attention_mask)
    }

    /// Sentence embeddings `[batch, hidden]` from the token states `hidden` `[batch, len, hidden]`
    /// that the first `start_layer` layers produced (see
    /// [`hidden_states_until`](Self::hidden_states_until)): runs layers `start_layer..` to the
    /// top, then pools and normalises as [`forward`](Self::forward) does. `attention_mask` is the
    /// `[batch, len]` mask of the tokens (1.0) and padding (0.0); `start_layer` at or above
    /// [`num_layers`](Self::num_layers) only pools. Differentiable in the top layers' parameters
    /// (and in `hidden`, if it requires a gradient).
    ///
    /// With the lower layers' states cached ([`LayerCache`](crate::LayerCache)), a top-n
    /// fine-tuning step runs `n` layers instead of all of them.
    pub fn forward_from(&self, hidden: Tensor<B, 3>, attention_mask: Tensor<B, 2>, start_layer: usize) -> Tensor<B, 2> {
        let states = self.run_layers(hidden, attention_mask.clone(), start_layer, self.layers.len());
        self.pool(states, attention_mask)
    }

    /// Number of transformer layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Allows (`true`, the default) or forbids the host kernels of the inference forward. On a
    /// backend that keeps tensors in host memory and needs no gradient (burn-flex itself, not
    /// an autodiff backend over it), the exact GELU and the attention then run over rayon's
    /// threads with vectorised `exp` and `erf` instead of burn-flex's single-threaded scalar
    /// loops: sentence vectors differ from burn's operations by about 1e-6, and a MiniLM pass is
    /// faster (`docs/benchmarks-text.md`). Every other backend ignores the setting.
    pub fn set_host_kernels(&mut self, allowed: bool) {
        self.host_kernels = allowed;
    }

    /// A copy with every dropout switched off (embeddings, layers, LoRA adapters), for
    /// deterministic inference on an autodiff backend, where burn's dropout is active. The
    /// parameters are shared with `self` (burn tensors are reference-counted).
    pub fn without_dropout(&self) -> Self {
        let off = || DropoutConfig::new(0.0).init();
        let mut model = self.clone();
        model.dropout = off();
        for layer in &mut model.layers {
            layer.dropout = off();
            layer.attention.dropout = off();
            if let Some(lora) = &mut layer.attention.lora {
                for adapter in [&mut lora.query, &mut lora.key, &mut lora.value] {
                    adapter.dropout = off();
                }
            }
        }
        model
    }

    /// Applies a fine-tuning mode: freezes what must not train, adds LoRA adapters where asked.
    /// On a backend without autodiff nothing trains anyway; call this on the autodiff model.
    pub fn fine_tuning(self, mode: &FineTuning) -> Result<Self> {
        match mode {
            FineTuning::Frozen => Ok(self.map(&mut SetRequireGrad(false))),
            FineTuning::Full => Ok(self.map(&mut SetRequireGrad(true))),
            FineTuning::TopLayers(n) => {
                let total = self.layers.len();
                if *n > total {
                    return Err(TextError::InvalidOption(format!("{n} top layers asked of a {total}-layer model")));
                }
                let mut model = self.map(&mut SetRequireGrad(false));
                model.layers = model
                    .layers
                    .into_iter()
                    .enumerate()
                    .map(|(i, layer)| if i >= total - n { layer.map(&mut SetRequireGrad(true)) } else { layer })
                    .collect();
                Ok(model)
            }
            FineTuning::Lora(config) => {
                if config.rank == 0 {
                    return Err(TextError::InvalidOption("LoRA rank must be at least 1".into()));
                }
                if !(0.0..1.0).contains(&config.dropout) || !config.scale.is_finite() {
                    return Err(TextError::InvalidOption(format!(
                        "LoRA dropout must be in [0, 1) and scale finite, got {} and {}",
                        config.dropout, config.scale
                    )));
                }
                let mut model = self.map(&mut SetRequireGrad(false));
                let h = model.hidden;
                let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
                for layer in &mut model.layers {
                    let device = layer.attention.qkv.val().device();
                    layer.attention.lora = Some(QkvLora {
                        query: LoraAdapter::new(h, h, config, &mut rng, &device),
                        key: LoraAdapter::new(h, h, config, &mut rng, &device),
                        value: LoraAdapter::new(h, h, config, &mut rng, &device),
                    });
                }
                Ok(model)
            }
        }
    }

    /// Number of parameter elements that require gradients (0 on a backend without autodiff).
    pub fn trainable_params(&self) -> usize {
        let mut count = CountTrainable(0);
        self.visit(&mut count);
        count.0
    }
}

/// Random weights in the Hugging Face layout, for tests and training from scratch.
pub(crate) struct RandomWeights {
    rng: ChaCha8Rng,
}

impl RandomWeights {
    pub(crate) fn new(seed: u64) -> Self {
        RandomWeights { rng: ChaCha8Rng::seed_from_u64(seed) }
    }

    fn normal(&mut self, mean: f32, std: f32) -> f32 {
        // Box-Muller.
        let u1: f32 = self.rng.random_range(f32::EPSILON..1.0);
        let u2: f32 = self.rng.random_range(0.0..1.0);
        mean + std * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
    }
}

impl WeightSource for RandomWeights {
    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let n = shape.iter().product();
        let mean = if name.ends_with("LayerNorm.weight") { 1.0 } else { 0.0 };
        Ok((0..n).map(|_| self.normal(mean, 0.02)).collect())
    }
}

/// Every tensor of a BERT checkpoint in the Hugging Face layout, with its shape.
pub fn checkpoint_shapes(config: &BertConfig) -> Vec<(String, Vec<usize>)> {
    let (h, i) = (config.hidden_size, config.intermediate_size);
    let mut out = vec![
        ("embeddings.word_embeddings.weight".to_string(), vec![config.vocab_size, h]),
        ("embeddings.position_embeddings.weight".to_string(), vec![config.max_position_embeddings, h]),
        ("embeddings.token_type_embeddings.weight".to_string(), vec![config.type_vocab_size, h]),
        ("embeddings.LayerNorm.weight".to_string(), vec![h]),
        ("embeddings.LayerNorm.bias".to_string(), vec![h]),
    ];
    for l in 0..config.num_hidden_layers {
        let p = format!("encoder.layer.{l}");
        for part in ["query", "key", "value"] {
            out.push((format!("{p}.attention.self.{part}.weight"), vec![h, h]));
            out.push((format!("{p}.attention.self.{part}.bias"), vec![h]));
        }
        out.push((format!("{p}.attention.output.dense.weight"), vec![h, h]));
        out.push((format!("{p}.attention.output.dense.bias"), vec![h]));
        out.push((format!("{p}.attention.output.LayerNorm.weight"), vec![h]));
        out.push((format!("{p}.attention.output.LayerNorm.bias"), vec![h]));
        out.push((format!("{p}.intermediate.dense.weight"), vec![i, h]));
        out.push((format!("{p}.intermediate.dense.bias"), vec![i]));
        out.push((format!("{p}.output.dense.weight"), vec![h, i]));
        out.push((format!("{p}.output.dense.bias"), vec![h]));
        out.push((format!("{p}.output.LayerNorm.weight"), vec![h]));
        out.push((format!("{p}.output.LayerNorm.bias"), vec![h]));
    }
    out
}
