//! Fine-tuning the text encoder with the TEARS objective ([`EncoderMode::TopLayers`] and
//! [`EncoderMode::Lora`]).
//!
//! What does not train is computed once: for `top-n` the token states below the top `n` layers,
//! for `lora` the embeddings' output (the adapters sit in every layer), both held on the host in
//! a [`LayerCache`] per user set. A training step batches the cached states of its users and
//! runs only the layers that train ([`BertModel::forward_from`]); validation runs the same
//! layers on inference weights. The encoder trains without dropout, so that a run is a function
//! of its seed and resumes bit for bit; its weights take their own AdamW at
//! [`TearsTrainConfig::encoder_lr`](crate::TearsTrainConfig::encoder_lr).
//!
//! The fine-tuned encoder is saved beside the network as [`ENCODER_FILE`]; the model directory
//! records the mode and a digest of its weights ([`weights_digest`]), and summaries are then
//! embedded with it (never through the frozen model's embedding cache).

use std::path::Path;

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};
use sha2::{Digest, Sha256};
use tears_core::{Profile, Profiles};
use tears_text::{BertModel, LayerCache, SentenceEncoder};
use tears_vae::checkpoint::{load_optimizer, save_optimizer};
use tears_vae::model::{load_record, save_record};

use crate::config::EncoderMode;
use crate::error::{Result, TearsError};

/// The fine-tuned encoder's weights in a model directory (and its best-epoch snapshot).
pub const ENCODER_FILE: &str = "encoder.mpk";
/// The fine-tuned encoder's weights in a checkpoint folder.
pub const ENCODER_CHECKPOINT: &str = "encoder.mpk";
/// The encoder optimiser's state in a checkpoint folder.
pub const ENCODER_OPTIM: &str = "encoder-optim.mpk";

/// Texts embedded at once during validation.
const VALIDATION_BATCH: usize = 64;

/// SHA-256 over a module's float parameters (shapes and values, in visiting order): the
/// identity of fine-tuned weights, independent of the file they are stored in.
pub fn weights_digest<B: Backend, M: Module<B>>(module: &M) -> String {
    struct Hasher(Sha256);
    impl<B: Backend> ModuleVisitor<B> for Hasher {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let t = param.val();
            for d in t.dims() {
                self.0.update((d as u64).to_le_bytes());
            }
            let values: Vec<f32> = t.into_data().convert::<f32>().into_vec().unwrap_or_default();
            for v in values {
                self.0.update(v.to_le_bytes());
            }
        }
    }
    let mut hasher = Hasher(Sha256::new());
    module.visit(&mut hasher);
    hasher.0.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// `encoder`'s model shaped for `mode` (LoRA adapters added where the mode has them), on its
/// backend, ready to receive fine-tuned weights.
///
/// # Errors
/// A mode the model cannot take (more top layers than it has).
pub fn shaped_for<B: Backend>(model: BertModel<B>, mode: &EncoderMode, seed: u64) -> Result<BertModel<B>> {
    if let EncoderMode::TopLayers { layers } = *mode
        && layers > model.num_layers()
    {
        return Err(TearsError::Model(tears_core::ModelError::Config(format!(
            "--encoder-mode top-n:{layers} asks for more layers than the encoder's {}",
            model.num_layers()
        ))));
    }
    Ok(model.fine_tuning(&mode.fine_tuning(seed))?)
}

/// The layers below those that train: `L − n` for top-n, 0 for LoRA, every layer when frozen.
pub fn frozen_layers(mode: &EncoderMode, num_layers: usize) -> usize {
    match *mode {
        EncoderMode::Frozen => num_layers,
        EncoderMode::TopLayers { layers } => num_layers.saturating_sub(layers),
        EncoderMode::Lora { .. } => 0,
    }
}

/// The validation users' cached states.
#[derive(Debug, Clone)]
struct ValidationStates {
    users: Vec<u64>,
    states: LayerCache,
}

type EncoderOptim<B> = OptimizerAdaptor<AdamW, BertModel<B>, B>;

fn encoder_adamw<B: AutodiffBackend>(weight_decay: f32) -> EncoderOptim<B> {
    AdamWConfig::new().with_epsilon(1e-8).with_weight_decay(weight_decay).init::<B, BertModel<B>>()
}

/// The trainable text encoder of a TEARS run: its weights, their optimiser and the cached
/// states of the training and validation summaries.
pub struct EncoderTuner<B: AutodiffBackend> {
    bert: BertModel<B>,
    optim: EncoderOptim<B>,
    train: LayerCache,
    validation: ValidationStates,
    start: usize,
    lr: f64,
    weight_decay: f32,
    device: B::Device,
}

impl<B: AutodiffBackend> std::fmt::Debug for EncoderTuner<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncoderTuner")
            .field("start_layer", &self.start)
            .field("train_texts", &self.train.len())
            .field("validation_texts", &self.validation.states.len())
            .field("cached_bytes", &(self.train.bytes() + self.validation.states.bytes()))
            .finish_non_exhaustive()
    }
}

/// What an [`EncoderTuner`] is built from.
#[derive(Debug, Clone, Copy)]
pub struct TunerInputs<'a> {
    /// The training users' summaries, in the order of the training rows.
    pub train_texts: &'a [&'a str],
    /// The validation users and their summaries.
    pub validation: (&'a [u64], &'a [&'a str]),
    /// Learning rate of the encoder.
    pub lr: f64,
    /// AdamW weight decay.
    pub weight_decay: f32,
    /// Seed (LoRA's initialisation).
    pub seed: u64,
}

impl<B: AutodiffBackend> EncoderTuner<B> {
    /// A tuner for `mode` over `base` (the frozen encoder on the inner backend, which computes
    /// the cached states) and `trainable` (the same pretrained weights on the autodiff backend).
    ///
    /// # Errors
    /// A frozen mode, a mode the model cannot take, a failed encoding.
    pub fn new(
        mode: &EncoderMode,
        base: &SentenceEncoder<B::InnerBackend>,
        trainable: BertModel<B>,
        inputs: &TunerInputs<'_>,
        device: &B::Device,
    ) -> Result<Self> {
        if !mode.trains() {
            return Err(TearsError::Model(tears_core::ModelError::Config(
                "a frozen encoder has nothing to fine-tune".into(),
            )));
        }
        let bert = shaped_for(trainable, mode, inputs.seed)?.without_dropout();
        let start = frozen_layers(mode, bert.num_layers());
        let started = std::time::Instant::now();
        let train = base.cache_lower_layers(inputs.train_texts, start)?;
        let (users, texts) = inputs.validation;
        let validation = ValidationStates { users: users.to_vec(), states: base.cache_lower_layers(texts, start)? };
        tracing::info!(
            start_layer = start,
            trainable_params = bert.trainable_params(),
            cached_mib = (train.bytes() + validation.states.bytes()) / (1 << 20),
            seconds = started.elapsed().as_secs_f64(),
            "encoder states below the trained layers cached"
        );
        Ok(EncoderTuner {
            bert,
            optim: encoder_adamw::<B>(inputs.weight_decay),
            train,
            validation,
            start,
            lr: inputs.lr,
            weight_decay: inputs.weight_decay,
            device: device.clone(),
        })
    }

    /// The profile vectors of training rows `rows`, differentiable in the trained weights.
    pub fn embed(&self, rows: &[usize]) -> Tensor<B, 2> {
        let (hidden, mask) = self.train.batch::<B>(rows, &self.device);
        self.bert.forward_from(hidden, mask, self.start)
    }

    /// One AdamW step of the encoder's weights from the gradients left in `grads`.
    pub fn step(&mut self, grads: &mut B::Gradients) {
        let params = GradientsParams::from_module(grads, &self.bert);
        self.bert = self.optim.step(self.lr, self.bert.clone(), params);
    }

    /// Training summaries held (one per training row).
    pub fn train_len(&self) -> usize {
        self.train.len()
    }

    /// The encoder's inference weights.
    pub fn snapshot(&self) -> BertModel<B::InnerBackend> {
        self.bert.valid()
    }

    /// The validation users' profile vectors through `encoder` (a snapshot's weights).
    ///
    /// # Errors
    /// Vectors that cannot be read back.
    pub fn validation_profiles(&self, encoder: &BertModel<B::InnerBackend>) -> Result<Profiles> {
        let mut profiles = Profiles::new(None);
        let n = self.validation.states.len();
        let rows: Vec<usize> = (0..n).collect();
        for chunk in rows.chunks(VALIDATION_BATCH) {
            let (hidden, mask) = self.validation.states.batch::<B::InnerBackend>(chunk, &self.device);
            let out = encoder.forward_from(hidden, mask, self.start);
            let dim = out.dims()[1];
            let flat: Vec<f32> = out.into_data().convert::<f32>().into_vec().map_err(|e| {
                TearsError::Model(tears_core::ModelError::Numerical(format!("reading embeddings back: {e:?}")))
            })?;
            for (j, &r) in chunk.iter().enumerate() {
                let v = flat[j * dim..(j + 1) * dim].to_vec();
                profiles.insert(self.validation.users[r], Profile::Vector(v));
            }
        }
        Ok(profiles)
    }

    /// Writes the encoder's weights and its optimiser's state into checkpoint folder `dir`.
    ///
    /// # Errors
    /// I/O and record errors, naming the file.
    pub fn save_checkpoint(&self, dir: &Path) -> Result<()> {
        save_record::<B, _>(&self.bert, &dir.join(ENCODER_CHECKPOINT))?;
        Ok(save_optimizer::<B, BertModel<B>, _>(&self.optim, &dir.join(ENCODER_OPTIM))?)
    }

    /// Reads what [`save_checkpoint`](Self::save_checkpoint) wrote.
    ///
    /// # Errors
    /// Missing or undecodable files, naming them.
    pub fn load_checkpoint(&mut self, dir: &Path) -> Result<()> {
        self.bert = load_record(self.bert.clone(), &dir.join(ENCODER_CHECKPOINT), &self.device)?;
        self.optim = load_optimizer::<B, BertModel<B>, _>(
            encoder_adamw::<B>(self.weight_decay),
            &dir.join(ENCODER_OPTIM),
            &self.device,
        )?;
        Ok(())
    }

    /// Reads an encoder snapshot saved beside `weights` (the network's file).
    ///
    /// # Errors
    /// A missing or undecodable file, naming it.
    pub fn load_snapshot(&self, weights: &Path) -> Result<BertModel<B::InnerBackend>> {
        Ok(load_record(self.bert.valid(), &beside(weights), &self.device)?)
    }
}

/// The encoder file beside the network's weights file `weights`.
pub fn beside(weights: &Path) -> std::path::PathBuf {
    weights.with_file_name(ENCODER_FILE)
}
