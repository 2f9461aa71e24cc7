//! Training, selection, checkpoints and the properties the fusion model relies on, on the
//! embedded synthetic dataset.

use burn::backend::{Autodiff, Flex};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::{Tensor, TensorData};
use tears_baselines::{EvalOptions, Popularity, Recommender, evaluate_split};
use tears_data::synthetic::SyntheticConfig;
use tears_data::{DatasetName, EvalSet, PrepareOptions, Split, prepare};
use tears_vae::{
    Backbone, BackboneKind, MacridConfig, MacridVae, Mode, MultVae, MultVaeConfig, NoiseSource, Phase, RecVae,
    RecVaeConfig, RunOptions, TrainConfig, Trainable, fit_config, load,
};

type A = Autodiff<Flex>;

fn synthetic(users: usize, items: usize) -> Split {
    let options = PrepareOptions {
        synthetic: SyntheticConfig { users, items, ..SyntheticConfig::default() },
        ..PrepareOptions::default()
    };
    prepare(DatasetName::Synthetic, &options).expect("synthetic split").split
}

fn ndcg20(model: &dyn Recommender, split: &Split) -> f64 {
    let report = evaluate_split(model, split, EvalSet::Test, &EvalOptions::default()).expect("evaluation");
    report.at(20).expect("k = 20").ndcg.mean
}

fn quick(kind: BackboneKind, epochs: usize, seed: u64) -> TrainConfig {
    TrainConfig { epochs, patience: None, seed, ..kind.default_train() }
}

fn values<const D: usize>(t: Tensor<Flex, D>) -> Vec<f32> {
    t.into_data().to_vec::<f32>().expect("f32 tensor")
}

#[test]
fn every_backbone_learns_and_beats_popularity_within_a_few_epochs() {
    let split = prepare(DatasetName::Synthetic, &PrepareOptions::default()).expect("synthetic").split;
    let pop = ndcg20(&Popularity::fit_split(&split).expect("pop"), &split);
    let device = Default::default();
    for (kind, epochs) in [
        (BackboneKind::MultDae, 12),
        (BackboneKind::MultVae, 12),
        (BackboneKind::RecVae, 4),
        (BackboneKind::MacridVae, 10),
    ] {
        let (model, report) =
            fit_config::<A>(&kind.default_model(), &split, &quick(kind, epochs, 0), &RunOptions::default(), &device)
                .expect("training");
        let first = report.history.first().expect("epochs").loss;
        let last = report.history.last().expect("epochs").loss;
        assert!(last < first, "{kind}: loss went from {first} to {last}");
        let ndcg = ndcg20(model.as_ref(), &split);
        assert!(ndcg > 1.5 * pop, "{kind}: test NDCG@20 {ndcg:.4} is not clearly above popularity's {pop:.4}");
    }
}

#[test]
fn same_seed_same_scores_and_another_seed_differs() {
    let split = synthetic(300, 200);
    let device = Default::default();
    for kind in [BackboneKind::MultVae, BackboneKind::MacridVae] {
        let run = |seed| {
            let (m, _) =
                fit_config::<A>(&kind.default_model(), &split, &quick(kind, 2, seed), &RunOptions::default(), &device)
                    .expect("training");
            m.score(&split.test.foldin).expect("scores")
        };
        let (a, b, c) = (run(3), run(3), run(4));
        assert_eq!(a, b, "{kind}: the same seed gave different scores");
        assert_ne!(a, c, "{kind}: another seed gave the same scores");
    }
}

#[test]
fn model_directories_round_trip_to_identical_scores() {
    let split = synthetic(300, 200);
    let device = Default::default();
    let dir = tempfile::tempdir().expect("temp dir");
    for kind in BackboneKind::ALL {
        let out = dir.path().join(kind.name());
        let run = RunOptions { out_dir: Some(out.clone()), resume: false, progress: false, ..RunOptions::default() };
        let (trained, _) =
            fit_config::<A>(&kind.default_model(), &split, &quick(kind, 2, 1), &run, &device).expect("training");
        let loaded = load::<Flex>(&out, &split, &device).expect("loading");
        assert_eq!(loaded.kind(), kind.name());
        assert_eq!(loaded.hyper_parameters(), trained.hyper_parameters());
        assert_eq!(
            loaded.score(&split.test.foldin).expect("scores"),
            trained.score(&split.test.foldin).expect("scores"),
            "{kind}: the loaded model scores differently"
        );
    }
}

#[test]
fn a_resumed_run_reaches_the_uninterrupted_run_numbers() {
    let split = synthetic(300, 200);
    let device = Default::default();
    let dir = tempfile::tempdir().expect("temp dir");
    for kind in [BackboneKind::RecVae, BackboneKind::MultVae] {
        let model = kind.default_model();
        let whole = RunOptions { out_dir: Some(dir.path().join(format!("{kind}-whole"))), ..RunOptions::default() };
        let (a, report_a) = fit_config::<A>(&model, &split, &quick(kind, 3, 2), &whole, &device).expect("training");
        let parts = RunOptions {
            out_dir: Some(dir.path().join(format!("{kind}-parts"))),
            resume: true,
            progress: false,
            ..RunOptions::default()
        };
        fit_config::<A>(&model, &split, &quick(kind, 2, 2), &parts, &device).expect("first part");
        let (b, report_b) = fit_config::<A>(&model, &split, &quick(kind, 3, 2), &parts, &device).expect("second part");
        assert_eq!(report_b.resumed_after, 2);
        let losses =
            |r: &tears_vae::TrainReport| r.history.iter().map(|e| (e.loss, e.validation_ndcg)).collect::<Vec<_>>();
        assert_eq!(losses(&report_a), losses(&report_b), "{kind}: the resumed run's epochs differ");
        assert_eq!(a.score(&split.test.foldin).expect("scores"), b.score(&split.test.foldin).expect("scores"));
    }
}

#[test]
fn a_checkpoint_of_another_configuration_is_refused() {
    let split = synthetic(300, 200);
    let device = Default::default();
    let dir = tempfile::tempdir().expect("temp dir");
    let run =
        RunOptions { out_dir: Some(dir.path().to_path_buf()), resume: true, progress: false, ..RunOptions::default() };
    let kind = BackboneKind::MultVae;
    fit_config::<A>(&kind.default_model(), &split, &quick(kind, 1, 0), &run, &device).expect("training");
    let other = tears_vae::ModelConfig::MultVae(MultVaeConfig { latent: 50, ..MultVaeConfig::default() });
    let err = fit_config::<A>(&other, &split, &quick(kind, 2, 0), &run, &device).err().expect("refused");
    let msg = err.to_string();
    assert!(msg.contains("state.json") && msg.contains("model configuration"), "{msg}");
}

#[test]
fn loading_into_another_dataset_is_a_clear_error() {
    let split = synthetic(300, 200);
    let other = synthetic(300, 150);
    let device = Default::default();
    let dir = tempfile::tempdir().expect("temp dir");
    let run = RunOptions { out_dir: Some(dir.path().to_path_buf()), ..RunOptions::default() };
    let kind = BackboneKind::MultDae;
    fit_config::<A>(&kind.default_model(), &split, &quick(kind, 1, 0), &run, &device).expect("training");
    let err = load::<Flex>(dir.path(), &other, &device).err().expect("mismatch");
    let msg = err.to_string();
    assert!(msg.contains("vocabulary") || msg.contains("items"), "{msg}");
    let missing = load::<Flex>(&dir.path().join("nope"), &split, &device).err().expect("missing");
    assert!(missing.to_string().contains("manifest.json"), "{missing}");
}

fn click_rows(rows: usize, items: usize) -> Tensor<A, 2> {
    let data: Vec<f32> =
        (0..rows * items).map(|k| if (k * 7 + k / items).is_multiple_of(5) { 1.0 } else { 0.0 }).collect();
    Tensor::from_data(TensorData::new(data, [rows, items]), &Default::default())
}

#[test]
fn recvae_phases_update_only_their_half() {
    let device = Default::default();
    let config = RecVaeConfig { hidden: 16, latent: 4, ..RecVaeConfig::default() };
    let model = RecVae::<A>::new(&config, 30, 0, &device);
    let noise = NoiseSource::new(0, 0);
    let snapshot = |m: &RecVae<A>| {
        (
            values(m.encoder.layers[0].weight.val().inner()),
            values(m.decoder.weight.val().inner()),
            values(m.prior_encoder.layers[0].weight.val().inner()),
        )
    };
    let before = snapshot(&model);

    let mut encoder_optim = AdamConfig::new().init::<A, RecVae<A>>();
    let loss = model.loss(click_rows(8, 30), 1.0, Mode::train(&noise));
    let mut grads = loss.total.backward();
    let params = model.encoder_grads(&mut grads);
    let model = encoder_optim.step(1e-2, model, params);
    let after_encoder = snapshot(&model);
    assert_ne!(before.0, after_encoder.0, "the encoder phase did not move the encoder");
    assert_eq!(before.1, after_encoder.1, "the encoder phase moved the decoder");
    assert_eq!(before.2, after_encoder.2, "the encoder phase moved the prior's encoder copy");

    let model = model.refresh_prior();
    let refreshed = snapshot(&model);
    assert_eq!(refreshed.2, after_encoder.0, "the prior copy is not the current encoder");

    let mut decoder_optim = AdamConfig::new().init::<A, RecVae<A>>();
    let loss = model.loss(click_rows(8, 30), 1.0, Mode::Train { noise: &noise, phase: Phase::Decoder });
    let mut grads = loss.total.backward();
    let params = model.decoder_grads(&mut grads);
    let model = decoder_optim.step(1e-2, model, params);
    let after_decoder = snapshot(&model);
    assert_eq!(refreshed.0, after_decoder.0, "the decoder phase moved the encoder");
    assert_ne!(refreshed.1, after_decoder.1, "the decoder phase did not move the decoder");
}

#[test]
fn composite_prior_matches_the_closed_form() {
    let device = Default::default();
    let model = RecVae::<Flex>::new(&RecVaeConfig { hidden: 8, latent: 3, ..RecVaeConfig::default() }, 5, 0, &device);
    let z = [0.3f64, -1.2, 2.5];
    let mu = [0.1f64, -1.0, 0.0];
    let logvar = [-0.5f64, 0.2, 1.0];
    let t = |v: [f64; 3]| Tensor::<Flex, 2>::from_data(TensorData::new(v.map(|x| x as f32).to_vec(), [1, 3]), &device);
    let got = values(model.log_prior(t(z), t(mu), t(logvar)));
    let density = |x: f64, m: f64, lv: f64| {
        (-(0.5) * ((2.0 * std::f64::consts::PI).ln() + lv + (x - m).powi(2) / lv.exp())).exp()
    };
    for k in 0..3 {
        let p =
            0.15 * density(z[k], 0.0, 0.0) + 0.75 * density(z[k], mu[k], logvar[k]) + 0.10 * density(z[k], 0.0, 10.0);
        assert!((f64::from(got[k]) - p.ln()).abs() < 1e-5, "coordinate {k}: {} vs {}", got[k], p.ln());
    }
}

#[test]
fn a_frozen_encoder_gets_no_gradient_and_the_decoder_does() {
    let device = Default::default();
    let noise = NoiseSource::new(0, 0);
    let vae = MultVae::<A>::new(&MultVaeConfig { hidden: 8, latent: 4, ..MultVaeConfig::default() }, 30, 0, &device)
        .freeze_encoder();
    let mut grads = vae.loss(click_rows(6, 30), 0.2, Mode::train(&noise)).total.backward();
    assert!(vae.encoder_grads(&mut grads).is_empty());
    assert_eq!(vae.decoder_grads(&mut grads).len(), 4);

    let macrid = MacridVae::<A>::new(&MacridConfig { dim: 6, concepts: 3, ..MacridConfig::default() }, 30, 0, &device);
    let shared = values(macrid.encoder.items.val().inner());
    let macrid = macrid.freeze_encoder();
    let decoder = macrid.decoder.as_ref().expect("a decoder copy");
    assert_eq!(values(decoder.items.val().inner()), shared, "the decoder's copy starts from the trained embeddings");
    let before = macrid.score(click_rows(4, 30));
    let mut grads = macrid.loss(click_rows(6, 30), 0.2, Mode::train(&noise)).total.backward();
    assert!(macrid.encoder_grads(&mut grads).is_empty());
    let params = macrid.decoder_grads(&mut grads);
    assert_eq!(params.len(), 2);
    let mut optim = AdamConfig::new().init::<A, MacridVae<A>>();
    let stepped = optim.step(
        1e-2,
        macrid.clone(),
        GradientsParams::from_grads(macrid.loss(click_rows(6, 30), 0.2, Mode::train(&noise)).total.backward(), &macrid),
    );
    assert_eq!(values(stepped.encoder.items.val().inner()), shared, "a frozen embedding moved");
    assert_ne!(values(stepped.score(click_rows(4, 30)).inner()), values(before.inner()));
}

#[test]
fn a_frozen_recvae_encoder_runs_detached_and_agrees_with_the_trained_one() {
    let device = Default::default();
    let model = RecVae::<A>::new(&RecVaeConfig { hidden: 16, latent: 4, ..RecVaeConfig::default() }, 30, 0, &device);
    assert!(!model.encoder.is_frozen());
    assert!(model.prior_encoder.is_frozen(), "the prior's copy is frozen");
    let frozen = model.clone().freeze_encoder();
    assert!(frozen.encoder.is_frozen());
    let x = click_rows(8, 30);
    let (trained, detached) = (model.encode(x.clone(), Mode::Eval), frozen.encode(x, Mode::Eval));
    for (a, b) in [(trained.mu, detached.mu), (trained.logvar.expect("lv"), detached.logvar.expect("lv"))] {
        let (a, b) = (values(a.inner()), values(b.inner()));
        assert_eq!(a.len(), b.len());
        for (a, b) in a.iter().zip(&b) {
            approx::assert_relative_eq!(*a, *b, max_relative = 1e-5, epsilon = 1e-6);
        }
    }
}

#[test]
fn macrid_latents_are_unit_norm_per_concept() {
    let device = Default::default();
    let config = MacridConfig { dim: 5, concepts: 3, ..MacridConfig::default() };
    let model = MacridVae::<Flex>::new(&config, 20, 0, &device);
    let x = Tensor::<Flex, 2>::from_data(
        TensorData::new((0..60).map(|k| if k % 3 == 0 { 1.0f32 } else { 0.0 }).collect::<Vec<_>>(), [3, 20]),
        &device,
    );
    let mu = values(model.encode(x, Mode::Eval).mu);
    for block in mu.chunks(5) {
        let norm: f32 = block.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "a concept latent has norm {norm}");
    }
    let mixed = Tensor::<Flex, 2>::from_data(TensorData::new(vec![0.5f32; 15], [1, 15]), &device);
    let renormed = values(model.normalize_latent(mixed));
    assert!(renormed.iter().all(|v| (v - 1.0 / 5f32.sqrt()).abs() < 1e-5));
    assert_eq!(model.latent().size(), 15);
}

#[test]
fn unknown_backbones_and_bad_schedules_are_refused() {
    let err = "vae".parse::<BackboneKind>().expect_err("unknown");
    assert!(err.to_string().contains("multdae, multvae, recvae or macridvae"));
    assert_eq!("Mult-VAE".parse::<BackboneKind>().expect("alias"), BackboneKind::MultVae);
    let split = synthetic(300, 200);
    let bad = TrainConfig { batch_size: 0, ..TrainConfig::default() };
    let kind = BackboneKind::MultDae;
    let err = fit_config::<A>(&kind.default_model(), &split, &bad, &RunOptions::default(), &Default::default())
        .err()
        .expect("refused");
    assert!(err.to_string().contains("batch"), "{err}");
}
