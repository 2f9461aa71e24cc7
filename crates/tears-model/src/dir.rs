//! Training a TEARS/GERS model into a model directory, and loading one back.
//!
//! A directory holds `weights.mpk` (the best epoch, a burn record of the whole network: the
//! backbone with its frozen encoder and fine-tuned decoder, and the profile head),
//! `manifest.json` (kind `tears` or `gers`; hyper-parameters with the [`TearsRecord`]: the
//! configuration, the backbone directory and its vocabulary hash, the encoder's identity, the
//! summaries file's hash, alpha* and the validation sweep), `train_log.json` and `checkpoint/`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tears_core::{
    EvalOptions, Manifest, MissingProfile, ModelKind, Profile, Profiles, evaluate_with_profiles, save_model,
};
use tears_data::{EvalUsers, Item, Split, StoredSummaries};
use tears_metrics::AccuracyReport;
use tears_text::SentenceEncoder;
use tears_vae::checkpoint::Fingerprint;
use tears_vae::model::{init_any, load_record};
use tears_vae::{AnyBackbone, GradientSync, ModelConfig, RunOptions, TrainReport, TrainSummary, load_backbone};

use crate::config::{ALPHA_GRID, BackboneChoice, ProfileSource, TearsConfig, TearsTrainConfig};
use crate::encoder::{EncoderSpec, ProfileEncoder, TextEncoderChoice};
use crate::error::{Result, TearsError};
use crate::genres::GenreSpace;
use crate::nets::{Base, Fused, Scrutable};
use crate::scorer::{Scorer, ScrutableRecommender, WEIGHTS_FILE};
use crate::train::{TearsTask, TrainingData, Validation};
use crate::tuning::{EncoderTuner, TunerInputs};

/// A summaries file and its hash, as a model directory records it (the default: summaries that
/// came from no file).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummariesRecord {
    /// The file as given.
    pub path: PathBuf,
    /// SHA-256 of its bytes.
    pub sha256: String,
    /// Users in it.
    pub users: usize,
}

/// Summaries read from a file (JSON object, JSONL of `tears summarize`, plain, .gz or .xz).
#[derive(Debug, Clone)]
pub struct SummariesFile {
    /// The summaries as profiles.
    pub profiles: Profiles,
    /// The file and its hash.
    pub record: SummariesRecord,
}

impl SummariesFile {
    /// Reads `path`.
    ///
    /// # Errors
    /// A missing or malformed file, naming it and the line.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| tears_data::DataError::io(path, e))?;
        let sha256 = hex(&Sha256::digest(&bytes));
        let stored = StoredSummaries::load(path)?;
        let profiles = Profiles::from_texts(stored.in_file_order(), Some(path));
        let record = SummariesRecord { path: path.to_path_buf(), sha256, users: profiles.len() };
        Ok(SummariesFile { profiles, record })
    }

    /// Checks that this is the file `recorded` describes (the same bytes).
    ///
    /// # Errors
    /// [`TearsError::Mismatch`] naming the file.
    pub fn check_same(&self, recorded: &SummariesRecord) -> Result<()> {
        if self.record.sha256 != recorded.sha256 {
            return Err(TearsError::Mismatch {
                path: self.record.path.clone(),
                message: format!(
                    "this summaries file is not the one the model was trained with (sha256 {} recorded for {}, {} now); pass the summaries to score with explicitly",
                    short(&recorded.sha256),
                    recorded.path.display(),
                    short(&self.record.sha256)
                ),
            });
        }
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn short(h: &str) -> &str {
    &h[..h.len().min(12)]
}

fn file_sha256(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| tears_data::DataError::io(path, e))?;
    Ok(hex(&Sha256::digest(&bytes)))
}

/// The backbone a fused model was built from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackboneRecord {
    /// Its model directory as given.
    pub dir: PathBuf,
    /// Its hyper-parameters (to rebuild the network).
    pub model: ModelConfig,
    /// The item-vocabulary hash recorded in its manifest.
    pub vocabulary_hash: String,
    /// SHA-256 of its `weights.mpk`.
    pub weights_sha256: String,
}

/// One alpha of a sweep and its NDCG@20.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AlphaPoint {
    /// alpha.
    pub alpha: f32,
    /// NDCG@20 (validation users for alpha*).
    pub ndcg20: f64,
}

/// What a TEARS/GERS model directory records (its manifest's `hyper_parameters`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TearsRecord {
    /// The configuration.
    pub config: TearsConfig,
    /// The training schedule.
    pub train: TearsTrainConfig,
    /// What training selected.
    pub summary: Option<TrainSummary>,
    /// The backbone (`None` for a Base model).
    pub backbone: Option<BackboneRecord>,
    /// The profile encoder.
    pub encoder: EncoderSpec,
    /// Profile width.
    pub profile_dim: usize,
    /// The training summaries (TEARS).
    pub summaries: Option<SummariesRecord>,
    /// Ratings above this are clicks.
    pub positive_above: f32,
    /// The alpha with the best validation NDCG@20.
    pub alpha_star: Option<f32>,
    /// The validation sweep that chose it.
    pub validation_sweep: Vec<AlphaPoint>,
    /// Training users used.
    pub train_users: usize,
    /// Training users left out for lack of a summary.
    pub skipped_train_users: usize,
    /// The weights file.
    pub weights_file: String,
}

/// What a training run reads besides the configuration.
#[derive(Debug, Clone)]
pub struct TrainInputs<'a> {
    /// The split.
    pub split: &'a Split,
    /// The trained backbone's model directory (`tears train <backbone>`), for a fused model.
    pub backbone_dir: Option<&'a Path>,
    /// The text encoder (TEARS).
    pub encoder: Option<TextEncoderChoice>,
    /// The summaries (TEARS).
    pub summaries: Option<&'a SummariesFile>,
    /// Users without a summary.
    pub missing: MissingProfile,
    /// An embedding cache folder for BERT vectors.
    pub embedding_cache: Option<PathBuf>,
}

/// The outcome of [`fit`].
#[derive(Debug, Clone)]
pub struct TearsReport {
    /// The loop's report (history, selection, resume point).
    pub train: TrainReport,
    /// The validation sweep over alpha.
    pub sweep: Vec<AlphaPoint>,
    /// alpha* (validation NDCG@20).
    pub alpha_star: f32,
    /// Training users used.
    pub train_users: usize,
    /// Seconds spent encoding the training profiles.
    pub encode_seconds: f64,
}

/// Evaluates `model` at every alpha of `alphas` on `users`.
///
/// # Errors
/// As [`evaluate_with_profiles`].
pub fn sweep_alpha(
    model: &mut dyn ScrutableRecommender,
    users: &EvalUsers,
    profiles: Option<&Profiles>,
    missing: MissingProfile,
    alphas: &[f32],
    options: &EvalOptions,
) -> Result<Vec<(f32, AccuracyReport)>> {
    let before = model.alpha();
    let mut out = Vec::with_capacity(alphas.len());
    for &a in alphas {
        model.set_alpha(a);
        out.push((model.alpha(), evaluate_with_profiles(&*model, users, profiles, missing, options)?));
    }
    model.set_alpha(before);
    Ok(out)
}

/// The alpha of the best NDCG@20 (ties go to the larger, more scrutable alpha).
pub fn best_alpha(points: &[AlphaPoint]) -> Option<f32> {
    points
        .iter()
        .fold(None::<AlphaPoint>, |best, p| match best {
            Some(b) if b.ndcg20 > p.ndcg20 => Some(b),
            _ => Some(*p),
        })
        .map(|p| p.alpha)
}

/// Trains a TEARS or GERS model (`config.profile`) on `inputs.split`, chooses alpha* on the
/// validation users, and with `run.out_dir` writes the model directory. Returns the model on
/// `B`'s inner backend at alpha*.
///
/// # Errors
/// An invalid configuration; a missing backbone, encoder or summaries; missing summaries under
/// [`MissingProfile::Error`]; training and I/O errors.
pub fn fit<B: AutodiffBackend>(
    config: TearsConfig,
    train: &TearsTrainConfig,
    inputs: &TrainInputs<'_>,
    run: &RunOptions,
    device: &B::Device,
) -> Result<(Box<dyn ScrutableRecommender>, TearsReport)>
where
    B::InnerBackend: 'static,
{
    let checked = config.check()?;
    train.check()?;
    let config = checked.get().clone();
    let split = inputs.split;
    let encoder: ProfileEncoder<B::InnerBackend> = match config.profile {
        ProfileSource::Genres => ProfileEncoder::Genres(GenreSpace::from_split(split)),
        ProfileSource::Text => {
            let choice = inputs.encoder.as_ref().ok_or_else(|| config_error("TEARS needs a text encoder"))?;
            ProfileEncoder::text(choice, inputs.embedding_cache.as_deref(), device)?
        }
    };
    let profiles = match config.profile {
        ProfileSource::Text => {
            Some(&inputs.summaries.ok_or_else(|| config_error("TEARS needs a summaries file"))?.profiles)
        }
        ProfileSource::Genres => None,
    };
    let started = Instant::now();
    let data = TrainingData::build(split, &encoder, profiles, inputs.missing, &mut |_| {})?;
    let encode_seconds = started.elapsed().as_secs_f64();
    tracing::info!(users = data.users.len(), encode_seconds, "training profiles ready");
    let mut fingerprint = Fingerprint::new();
    fingerprint.insert("encoder".into(), serde_json::to_value(encoder.spec()).unwrap_or_default());
    if let Some(s) = inputs.summaries.filter(|_| config.profile == ProfileSource::Text) {
        fingerprint.insert("summaries file".into(), serde_json::Value::String(s.record.sha256.clone()));
    }
    let backbone = match config.backbone.backbone() {
        None => None,
        Some(kind) => {
            let dir = inputs.backbone_dir.ok_or_else(|| config_error("a fused model needs --backbone-model DIR"))?;
            let (model, saved) = load_backbone::<B>(dir, split, device)?;
            if saved.model.kind() != kind {
                return Err(TearsError::Mismatch {
                    path: Manifest::path(dir),
                    message: format!(
                        "this is a {} backbone, but --backbone {} was asked for",
                        saved.model.kind(),
                        kind
                    ),
                });
            }
            let record = BackboneRecord {
                dir: dir.to_path_buf(),
                model: saved.model,
                vocabulary_hash: saved.manifest.vocabulary_hash.clone(),
                weights_sha256: file_sha256(&dir.join(tears_vae::model::WEIGHTS_FILE))?,
            };
            fingerprint.insert("backbone".into(), serde_json::to_value(&record).unwrap_or_default());
            Some((model, record))
        }
    };
    let tuner = match (config.encoder_mode.trains(), profiles) {
        (true, Some(profiles)) => Some(tuner_for::<B>(&config, train, &encoder, inputs, profiles, &data, device)?),
        _ => None,
    };
    let job = Job {
        config: &checked,
        train,
        inputs,
        profiles,
        data: &data,
        encoder: Arc::new(encoder),
        tuner,
        run,
        fingerprint,
    };
    let seed = train.seed;
    let dim = data.profiles.ncols();
    let (model, mut report) = match backbone {
        None => job.run(Base::<B>::new(&config, dim, split.n_items(), seed, device), None, device)?,
        Some((model, record)) => match model {
            AnyBackbone::MultDae(m) => job.run(Fused::new(m, &config, dim, seed, device), Some(record), device)?,
            AnyBackbone::MultVae(m) => job.run(Fused::new(m, &config, dim, seed, device), Some(record), device)?,
            AnyBackbone::RecVae(m) => job.run(Fused::new(m, &config, dim, seed, device), Some(record), device)?,
            AnyBackbone::MacridVae(m) => job.run(Fused::new(m, &config, dim, seed, device), Some(record), device)?,
        },
    };
    report.encode_seconds = encode_seconds;
    Ok((model, report))
}

/// The encoder tuner of a run whose text encoder trains: the pretrained weights on the autodiff
/// backend, and the cached states of the training rows' and the validation users' summaries.
fn tuner_for<B: AutodiffBackend>(
    config: &TearsConfig,
    train: &TearsTrainConfig,
    encoder: &ProfileEncoder<B::InnerBackend>,
    inputs: &TrainInputs<'_>,
    profiles: &Profiles,
    data: &TrainingData,
    device: &B::Device,
) -> Result<EncoderTuner<B>> {
    let base = encoder.sentence_encoder().ok_or_else(|| {
        config_error("--encoder-mode top-n and lora fine-tune a BERT-family encoder; the hashing encoder has no weights to fine-tune")
    })?;
    let text = |u: &u64| profiles.get(*u).and_then(Profile::as_text).unwrap_or("");
    let train_texts: Vec<&str> = data.users.iter().map(text).collect();
    // Validation users without a summary are left to the missing-summary rule, as when frozen.
    let keep = |u: &&u64| profiles.get(**u).is_some() || inputs.missing == MissingProfile::Empty;
    let valid_users: Vec<u64> = inputs.split.validation.users().iter().filter(keep).copied().collect();
    let valid_texts: Vec<&str> = valid_users.iter().map(text).collect();
    let trainable = SentenceEncoder::<B>::load(base.dir(), base.options(), device)?.model;
    EncoderTuner::new(
        &config.encoder_mode,
        base,
        trainable,
        &TunerInputs {
            train_texts: &train_texts,
            validation: (&valid_users, &valid_texts),
            lr: train.encoder_lr,
            weight_decay: train.weight_decay,
            seed: train.seed,
        },
        device,
    )
}

fn config_error(message: &str) -> TearsError {
    TearsError::Model(tears_core::ModelError::Config(message.to_string()))
}

struct Job<'a, A: AutodiffBackend> {
    config: &'a crate::config::CheckedConfig,
    train: &'a TearsTrainConfig,
    inputs: &'a TrainInputs<'a>,
    profiles: Option<&'a Profiles>,
    data: &'a TrainingData,
    encoder: Arc<ProfileEncoder<A::InnerBackend>>,
    tuner: Option<EncoderTuner<A>>,
    run: &'a RunOptions,
    fingerprint: Fingerprint,
}

impl<A: AutodiffBackend> Job<'_, A>
where
    A::InnerBackend: 'static,
{
    fn run<S>(
        self,
        model: S,
        backbone: Option<BackboneRecord>,
        device: &A::Device,
    ) -> Result<(Box<dyn ScrutableRecommender>, TearsReport)>
    where
        S: Scrutable<A> + AutodiffModule<A>,
        S::InnerModule: Scrutable<A::InnerBackend> + Sync + 'static,
    {
        let started = Instant::now();
        let split = self.inputs.split;
        let validation = Validation { split, profiles: self.profiles, missing: self.inputs.missing };
        let mut task = TearsTask::new(
            model,
            self.data,
            self.config,
            self.train,
            self.encoder.clone(),
            validation,
            device.clone(),
            self.fingerprint,
        )?;
        if let Some(tuner) = self.tuner {
            task = task.with_tuner(tuner)?;
        }
        let mut task = task.with_workers(self.run.workers.clone())?;
        let schedule = tears_vae::epochs::Schedule {
            epochs: self.train.epochs,
            patience: self.train.patience,
            select_k: self.train.select_k,
        };
        let trained = tears_vae::run_epochs(&mut task, &schedule, &self.run.for_worker());
        self.run.workers.finish()?;
        let (best, report) = trained?;
        let positive_above = split.meta.positive_above;
        let encoder = match (best.encoder, &self.inputs.encoder) {
            (Some(tuned), Some(choice)) => Arc::new(
                ProfileEncoder::text(choice, None, device)?.with_tuned_model(tuned, self.config.get().encoder_mode)?,
            ),
            _ => self.encoder.clone(),
        };
        let mut scorer = Scorer::new(best.net, encoder.clone(), device.clone(), positive_above, 0.5);
        let options = EvalOptions { ks: vec![20], batch_size: self.train.eval_batch_size };
        let sweep: Vec<AlphaPoint> = if split.validation.is_empty() {
            Vec::new()
        } else {
            let alphas: &[f32] = if self.config.get().backbone == BackboneChoice::None { &[1.0] } else { &ALPHA_GRID };
            sweep_alpha(&mut scorer, &split.validation, self.profiles, self.inputs.missing, alphas, &options)?
                .into_iter()
                .map(|(alpha, r)| AlphaPoint { alpha, ndcg20: r.at(20).map_or(0.0, |a| a.ndcg.mean) })
                .collect()
        };
        let alpha_star = best_alpha(&sweep).unwrap_or(self.train.select_alpha);
        let record = TearsRecord {
            config: self.config.get().clone(),
            train: self.train.clone(),
            summary: Some(report.summary.clone()),
            backbone,
            encoder: encoder.spec(),
            profile_dim: self.data.profiles.ncols(),
            summaries: self.inputs.summaries.map(|s| s.record.clone()).filter(|_| self.encoder.genres().is_none()),
            positive_above,
            alpha_star: Some(alpha_star),
            validation_sweep: sweep.clone(),
            train_users: self.data.users.len(),
            skipped_train_users: self.data.skipped,
            weights_file: WEIGHTS_FILE.to_string(),
        };
        let hyper = serde_json::to_value(&record).unwrap_or_default();
        let mut scorer = scorer.with_record(hyper, Some(alpha_star));
        scorer.set_alpha(alpha_star);
        // Worker 0 writes the model directory (the other workers hold the same model).
        if let (Some(out), 0) = (&self.run.out_dir, self.run.workers.rank()) {
            tears_vae::write_train_log(out, &report.history)?;
            save_model(&scorer, split, self.train.seed, Some(started.elapsed().as_secs_f64()), out)?;
        }
        let train_users = self.data.users.len();
        Ok((Box::new(scorer), TearsReport { train: report, sweep, alpha_star, train_users, encode_seconds: 0.0 }))
    }
}

/// Options of [`load`].
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Read the BERT encoder from this folder instead of the recorded one (its identity is
    /// checked all the same).
    pub encoder_dir: Option<PathBuf>,
    /// An embedding cache folder for BERT vectors.
    pub embedding_cache: Option<PathBuf>,
}

/// Reads a TEARS/GERS model directory's manifest and record, checking the split's vocabulary.
///
/// # Errors
/// A missing or malformed manifest, another kind of model, another item vocabulary.
pub fn read_record(dir: &Path, split: &Split) -> Result<(Manifest, TearsRecord)> {
    read_record_for_items(dir, &split.items, &split.meta.dataset)
}

/// [`read_record`] against an item table (`source` names it in errors) instead of a split.
///
/// # Errors
/// As [`read_record`].
pub fn read_record_for_items(dir: &Path, items: &[Item], source: &str) -> Result<(Manifest, TearsRecord)> {
    let manifest = Manifest::read(dir)?;
    let path = Manifest::path(dir);
    match manifest.kind.parse::<ModelKind>() {
        Ok(ModelKind::Tears | ModelKind::Gers) => {}
        _ => {
            return Err(TearsError::Model(tears_core::ModelError::UnknownKind {
                path,
                kind: manifest.kind.clone(),
                known: "tears, gers".into(),
            }));
        }
    }
    manifest.check_items(dir, items, source)?;
    let record: TearsRecord = serde_json::from_value(manifest.hyper_parameters.clone())
        .map_err(|e| TearsError::Mismatch { path: path.clone(), message: format!("unreadable TEARS record: {e}") })?;
    Ok((manifest, record))
}

/// Loads a TEARS/GERS model directory on `device` of backend `B`, at its recorded alpha*.
/// The encoder is rebuilt from the record and refused when it is another one.
///
/// # Errors
/// As [`read_record`]; an encoder that does not match; missing or undecodable weights.
pub fn load<B: Backend + 'static>(
    dir: &Path,
    split: &Split,
    options: &LoadOptions,
    device: &B::Device,
) -> Result<Box<dyn ScrutableRecommender>> {
    load_from::<B>(dir, &split.items, &split.meta.dataset, options, device)
}

/// [`load`] with the model's item table (its `items.json`, or a split's items) instead of a split.
///
/// # Errors
/// As [`load`].
pub fn load_with_items<B: Backend + 'static>(
    dir: &Path,
    items: &[Item],
    options: &LoadOptions,
    device: &B::Device,
) -> Result<Box<dyn ScrutableRecommender>> {
    load_from::<B>(dir, items, "the item table", options, device)
}

fn load_from<B: Backend + 'static>(
    dir: &Path,
    items: &[Item],
    source: &str,
    options: &LoadOptions,
    device: &B::Device,
) -> Result<Box<dyn ScrutableRecommender>> {
    let (manifest, record) = read_record_for_items(dir, items, source)?;
    let path = Manifest::path(dir);
    let encoder = ProfileEncoder::<B>::from_spec(
        &record.encoder,
        options.encoder_dir.as_deref(),
        options.embedding_cache.as_deref(),
        &path,
        device,
    )?
    .with_items(items, &path)?;
    let encoder = Arc::new(encoder);
    let config = record.config.clone().check()?;
    let config = config.get();
    let dim = record.profile_dim;
    let n = manifest.n_items;
    let weights = dir.join(&record.weights_file);
    let alpha = record.alpha_star.unwrap_or(record.train.select_alpha);
    let hyper = manifest.hyper_parameters.clone();
    let positive_above = record.positive_above;
    fn wrap<B: Backend + 'static, S: Scrutable<B> + Sync + 'static>(
        model: S,
        encoder: Arc<ProfileEncoder<B>>,
        device: &B::Device,
        positive_above: f32,
        alpha: f32,
        hyper: serde_json::Value,
    ) -> Box<dyn ScrutableRecommender> {
        Box::new(Scorer::new(model, encoder, device.clone(), positive_above, alpha).with_record(hyper, Some(alpha)))
    }
    Ok(match &record.backbone {
        None => {
            let model = load_record(Base::<B>::new(config, dim, n, 0, device), &weights, device)?;
            wrap(model, encoder, device, positive_above, alpha, hyper)
        }
        Some(b) => match init_any::<B>(&b.model, n, 0, device) {
            AnyBackbone::MultDae(m) => {
                let model = load_record(Fused::new(m, config, dim, 0, device), &weights, device)?;
                wrap(model, encoder, device, positive_above, alpha, hyper)
            }
            AnyBackbone::MultVae(m) => {
                let model = load_record(Fused::new(m, config, dim, 0, device), &weights, device)?;
                wrap(model, encoder, device, positive_above, alpha, hyper)
            }
            AnyBackbone::RecVae(m) => {
                let model = load_record(Fused::new(m, config, dim, 0, device), &weights, device)?;
                wrap(model, encoder, device, positive_above, alpha, hyper)
            }
            AnyBackbone::MacridVae(m) => {
                let model = load_record(Fused::new(m, config, dim, 0, device), &weights, device)?;
                wrap(model, encoder, device, positive_above, alpha, hyper)
            }
        },
    })
}

/// The summaries to score a loaded model with: `given` when set, otherwise the recorded file,
/// checked to be unchanged. `None` for GERS.
///
/// # Errors
/// A missing or changed summaries file, naming it.
pub fn summaries_for(record: &TearsRecord, given: Option<&Path>) -> Result<Option<SummariesFile>> {
    if let Some(path) = given {
        return Ok(Some(SummariesFile::load(path)?));
    }
    match &record.summaries {
        None => Ok(None),
        Some(r) => {
            let file = SummariesFile::load(&r.path)?;
            file.check_same(r)?;
            Ok(Some(file))
        }
    }
}
