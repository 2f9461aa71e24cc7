//! Fine-tuning the text encoder with the model (`top-n` and `lora`) on synthetic data with
//! template summaries and the tiny random BERT of tears-text.

mod common;

use std::path::{Path, PathBuf};

use burn::tensor::Tensor;
use common::{TestAutodiff, TestBackend, informative, multvae_dir, profiles};
use tears_core::{Profile, Recommender};
use tears_model::{
    BackboneChoice, ENCODER_FILE, EncoderMode, TearsConfig, TearsReport, TearsTrainConfig, TextEncoderChoice,
    TrainInputs,
};
use tears_text::{BertModel, EncoderOptions, SentenceEncoder};
use tears_vae::RunOptions;
use tears_vae::model::{load_record, save_record};

type A = TestAutodiff;
type T = TestBackend;

fn values<const D: usize>(t: Tensor<T, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().expect("f32 values")
}

fn quick(epochs: usize) -> TearsTrainConfig {
    // A high encoder learning rate, so that two epochs move the tiny encoder visibly.
    TearsTrainConfig { epochs, patience: None, batch_size: 128, encoder_lr: 1e-2, ..TearsTrainConfig::default() }
}

/// The tiny random BERT, written once per test binary.
fn tiny_bert(f: &common::Fixture) -> &'static PathBuf {
    static D: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    D.get_or_init(|| {
        let dir = f.path("tiny-bert");
        tears_text::testing::write_tiny_model(&dir, 3).expect("tiny model");
        dir
    })
}

fn bert_choice(f: &common::Fixture) -> TextEncoderChoice {
    TextEncoderChoice::Bert { dir: tiny_bert(f).clone(), max_tokens: 48 }
}

fn inputs<'a>(f: &'a common::Fixture, backbone: Option<&'a Path>) -> TrainInputs<'a> {
    TrainInputs { encoder: Some(bert_choice(f)), ..f.inputs(backbone) }
}

fn pretrained(f: &common::Fixture) -> BertModel<T> {
    let options = EncoderOptions { max_tokens: 48, ..EncoderOptions::default() };
    SentenceEncoder::<T>::load(tiny_bert(f), &options, &Default::default()).expect("tiny encoder").model
}

/// The fine-tuned weights a model directory holds, read into `shape` (the pretrained model
/// shaped for the mode).
fn tuned(dir: &Path, shape: BertModel<T>) -> BertModel<T> {
    load_record(shape, &dir.join(ENCODER_FILE), &Default::default()).expect("fine-tuned encoder")
}

fn scores_of(model: &dyn Recommender, f: &common::Fixture) -> ndarray::Array2<f32> {
    let users = &f.split.test;
    let p: Vec<Option<&Profile>> = users.users().iter().map(|u| profiles(f).get(*u)).collect();
    model.score_with_profiles(&users.foldin, &p).expect("scores")
}

fn fit(
    config: &TearsConfig,
    train: &TearsTrainConfig,
    inputs: &TrainInputs<'_>,
    out: &Path,
) -> (Box<dyn tears_model::ScrutableRecommender>, TearsReport) {
    let run = RunOptions { out_dir: Some(out.to_path_buf()), resume: true, progress: false, ..RunOptions::default() };
    tears_model::fit::<A>(config.clone(), train, inputs, &run, &Default::default()).expect("train")
}

#[test]
fn top_n_trains_only_the_top_layers_and_its_directory_round_trips() {
    let f = informative();
    let backbone = multvae_dir(f);
    let config = TearsConfig {
        backbone: BackboneChoice::MultVae,
        encoder_mode: EncoderMode::TopLayers { layers: 1 },
        ..TearsConfig::default()
    };
    let out = f.path("tears-top1");
    let (model, _) = fit(&config, &quick(2), &inputs(f, Some(backbone)), &out);
    let before = pretrained(f);
    let after = tuned(&out, pretrained(f));
    let weight = |m: &BertModel<T>, layer: usize| values(m.layers[layer].intermediate.weight.val());
    assert_eq!(weight(&after, 0), weight(&before, 0), "the frozen lower layer moved");
    assert_eq!(values(after.word_embeddings.weight.val()), values(before.word_embeddings.weight.val()));
    assert_ne!(weight(&after, 1), weight(&before, 1), "the top layer did not train");

    // Loaded back, the model embeds summaries with the fine-tuned weights, as the trained one.
    let loaded = tears_model::load::<T>(&out, &f.split, &Default::default(), &Default::default()).expect("load");
    let (a, b) = (scores_of(loaded.as_ref(), f), scores_of(model.as_ref(), f));
    assert_eq!(a.dim(), b.dim());
    for (x, y) in a.iter().zip(&b) {
        approx::assert_abs_diff_eq!(x, y, epsilon = 1e-4);
    }
    let (_, record) = tears_model::read_record(&out, &f.split).expect("record");
    let tears_model::EncoderSpec::Text { tuned: Some(t), .. } = &record.encoder else {
        panic!("the record names no fine-tuned encoder: {:?}", record.encoder);
    };
    assert_eq!(t.mode, EncoderMode::TopLayers { layers: 1 });

    // Other weights under the encoder file's name are refused, naming it.
    save_record::<T, _>(&before, &out.join(ENCODER_FILE)).expect("overwrite");
    let msg = tears_model::load::<T>(&out, &f.split, &Default::default(), &Default::default())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(msg.contains(ENCODER_FILE) && msg.contains("not the ones"), "{msg}");
}

#[test]
fn lora_trains_only_the_adapters_and_a_resumed_run_equals_an_uninterrupted_one() {
    let f = informative();
    let config = TearsConfig {
        backbone: BackboneChoice::None,
        encoder_mode: EncoderMode::Lora { rank: 4, scale: 2.0 },
        ..TearsConfig::default()
    };
    let full_dir = f.path("tears-lora-full");
    let (full, full_report) = fit(&config, &quick(3), &inputs(f, None), &full_dir);
    let before = pretrained(f);
    let shape = tears_model::tuning::shaped_for(pretrained(f), &config.encoder_mode, 0).expect("adapters");
    let after = tuned(&full_dir, shape);
    for layer in 0..before.num_layers() {
        let (b, a) = (&before.layers[layer], &after.layers[layer]);
        assert_eq!(values(a.attention.qkv.val()), values(b.attention.qkv.val()), "pretrained weights moved");
        assert_eq!(values(a.intermediate.weight.val()), values(b.intermediate.weight.val()));
        let lora = a.attention.lora.as_ref().expect("adapters");
        // The up projections start at zero: training moved them.
        assert!(values(lora.query.up.val()).iter().any(|v| *v != 0.0), "layer {layer}'s adapter did not train");
    }

    let parts_dir = f.path("tears-lora-parts");
    fit(&config, &quick(2), &inputs(f, None), &parts_dir);
    let (resumed, report) = fit(&config, &quick(3), &inputs(f, None), &parts_dir);
    assert_eq!(report.train.resumed_after, 2);
    let losses = |r: &TearsReport| r.train.history.iter().map(|e| e.loss).collect::<Vec<_>>();
    assert_eq!(losses(&report), losses(&full_report), "the resumed run's epochs differ");
    assert_eq!(scores_of(resumed.as_ref(), f), scores_of(full.as_ref(), f));
}

#[test]
fn fine_tuning_needs_a_bert_encoder() {
    let f = informative();
    let config = TearsConfig {
        backbone: BackboneChoice::None,
        encoder_mode: EncoderMode::TopLayers { layers: 1 },
        ..TearsConfig::default()
    };
    let run = RunOptions::default();
    let msg = tears_model::fit::<A>(config.clone(), &quick(1), &f.inputs(None), &run, &Default::default())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(msg.contains("hashing encoder"), "{msg}");
    let deep = TearsConfig { encoder_mode: EncoderMode::TopLayers { layers: 3 }, ..config };
    let msg = tears_model::fit::<A>(deep, &quick(1), &inputs(f, None), &run, &Default::default())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(msg.contains("top-n:3") && msg.contains('2'), "{msg}");
}
