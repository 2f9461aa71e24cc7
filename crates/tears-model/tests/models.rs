//! TEARS and GERS on synthetic data with template summaries and the hashing encoder.

mod common;

use approx::assert_abs_diff_eq;
use burn::module::ModuleDisplay;
use burn::optim::GradientsParams;
use burn::tensor::{Distribution, Tensor};
use common::{TestAutodiff, TestBackend, hashing, informative, multvae_dir, profiles};
use tears_core::{EvalOptions, MissingProfile, Profile, Recommender, evaluate_with_profiles};
use tears_data::split::UserRows;
use tears_data::{EvalSet, Split};
use tears_model::{
    Alignment, BackboneChoice, Fused, ProfileEncoder, Scorer, Scrutable, TearsConfig, TearsTrainConfig, Weights,
};
use tears_vae::{
    MacridConfig, MacridVae, Mode, MultDae, MultDaeConfig, MultVae, MultVaeConfig, NoiseSource, RecVae, RecVaeConfig,
    RunOptions,
};

type A = TestAutodiff;
type T = TestBackend;

fn values<const D: usize>(t: Tensor<T, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().expect("f32 values")
}

fn ndcg20(model: &dyn Recommender, split: &Split, set: EvalSet, p: &tears_core::Profiles) -> f64 {
    let options = EvalOptions { ks: vec![20], ..EvalOptions::default() };
    let r = evaluate_with_profiles(model, split.eval(set), Some(p), MissingProfile::Error, &options).expect("evaluate");
    r.at(20).expect("k = 20").ndcg.mean
}

fn quick(epochs: usize) -> TearsTrainConfig {
    TearsTrainConfig { epochs, patience: None, batch_size: 128, ..TearsTrainConfig::default() }
}

fn hashing_encoder() -> std::sync::Arc<ProfileEncoder<T>> {
    std::sync::Arc::new(ProfileEncoder::text(&hashing(), None, &Default::default()).expect("hashing encoder"))
}

fn rows_of(users: &[(u64, &[u32])]) -> UserRows {
    let mut rows = UserRows::new();
    for (u, items) in users {
        rows.push(*u, items.iter().map(|&i| tears_data::Rating { item: i, rating: 5.0, timestamp: i as i64 }));
    }
    rows
}

#[test]
fn alpha_one_reads_only_the_summary_and_alpha_zero_only_the_history() {
    let device = Default::default();
    let config = TearsConfig { backbone: BackboneChoice::MultVae, ..TearsConfig::default() };
    let backbone =
        MultVae::<T>::new(&MultVaeConfig { hidden: 32, latent: 8, ..MultVaeConfig::default() }, 50, 1, &device);
    let model = Fused::new(backbone, &config, 1024, 2, &device);
    let mut scorer = Scorer::new(model, hashing_encoder(), device, 3.5, 1.0);
    let texts = ["Summary: The user enjoys westerns. They dislike horror.", "Summary: Loves comedies."];
    let p: Vec<Profile> = texts.iter().map(|t| Profile::Text((*t).into())).collect();
    let refs: Vec<Option<&Profile>> = p.iter().map(Some).collect();
    let a = rows_of(&[(1, &[1, 2, 3]), (2, &[4])]);
    let b = rows_of(&[(1, &[10, 20, 30, 40]), (2, &[5, 6, 7])]);
    let s1 = scorer.score_with_profiles(&a, &refs).expect("scores");
    assert_eq!(s1, scorer.score_with_profiles(&b, &refs).expect("scores"), "alpha = 1 read the fold-in");
    // A cold-start user with no history at all is scored at alpha = 1.
    assert_eq!(scorer.score_with_profiles(&rows_of(&[(1, &[]), (2, &[])]), &refs).expect("scores"), s1);
    // One sentence changes the text-only scores.
    let edited = [Profile::Text("Summary: The user enjoys musicals. They dislike horror.".into()), p[1].clone()];
    let edited_refs: Vec<Option<&Profile>> = edited.iter().map(Some).collect();
    let s2 = scorer.score_with_profiles(&a, &edited_refs).expect("scores");
    assert_eq!(s1.dim(), (2, 50));
    assert_ne!(s1.row(0), s2.row(0), "editing a sentence did not change user 1's scores");
    assert_eq!(s1.row(1), s2.row(1), "user 2's summary did not change");
    // alpha = 0 reads the fold-in only: another summary, or none, gives the same scores.
    scorer.set_alpha(0.0);
    let z1 = scorer.score_with_profiles(&a, &refs).expect("scores");
    assert_eq!(z1, scorer.score_with_profiles(&a, &edited_refs).expect("scores"));
    assert_eq!(z1, scorer.score(&a).expect("scores without summaries"));
    assert_ne!(z1, scorer.score(&b).expect("scores"));
    // In between, both matter, and a missing summary is refused.
    scorer.set_alpha(0.5);
    assert!(scorer.score(&a).is_err());
}

fn batch(rows: usize, items: usize, dim: usize) -> (Tensor<A, 2>, Tensor<A, 2>) {
    let device = Default::default();
    let x = Tensor::<A, 2>::random([rows, items], Distribution::Bernoulli(0.2), &device);
    let e = Tensor::<A, 2>::random([rows, dim], Distribution::Normal(0.0, 0.1), &device);
    (x, e)
}

/// `backbone` fused with a text head for 16-wide profiles, its configuration, and its item count.
fn fused<M>(backbone: M) -> (Fused<A, M>, TearsConfig, usize)
where
    M: tears_vae::Trainable<A> + ModuleDisplay,
{
    let config = TearsConfig { backbone: BackboneChoice::of(backbone.kind()), ..TearsConfig::default() };
    let items = backbone.n_items();
    (Fused::new(backbone, &config, 16, 3, &Default::default()), config, items)
}

fn check_gradients<M>(backbone: M, name: &str)
where
    M: tears_vae::Trainable<A> + ModuleDisplay,
    M::InnerModule: ModuleDisplay,
{
    let (model, config, items) = fused(backbone);
    let grads = || {
        let (x, e) = batch(8, items, 16);
        let noise = NoiseSource::new(0, 0);
        model.loss(x, e, 0.5, &Weights::at(&config, 1000), Mode::train(&noise), None).expect("loss").total.backward()
    };
    assert!(!GradientsParams::from_module(&mut grads(), &model.head).is_empty(), "{name}: the head got no gradient");
    assert!(model.backbone.encoder_grads(&mut grads()).is_empty(), "{name}: the frozen encoder got gradients");
    let decoder = model.backbone.decoder_grads(&mut grads()).len();
    assert!(decoder > 0, "{name}: the decoder got no gradient");
    let whole = GradientsParams::from_module(&mut grads(), &model.backbone).len();
    assert_eq!(whole, decoder, "{name}: parameters outside the decoder got gradients");
}

/// The fused NLL at evaluation (means, no dropout) against decoding the mixed latent directly.
fn check_fused_nll<M>(backbone: M, name: &str, affine: bool)
where
    M: tears_vae::Trainable<A> + ModuleDisplay,
    M::InnerModule: ModuleDisplay,
{
    assert_eq!(backbone.affine_decoder(), affine, "{name}");
    let (model, config, items) = fused(backbone);
    let (x, e) = batch(8, items, 16);
    for alpha in [0.0f32, 0.3, 0.5, 1.0] {
        let loss = model.loss(x.clone(), e.clone(), alpha, &Weights::at(&config, 0), Mode::Eval, None).expect("loss");
        let fused = model.latents(Some(x.clone()), e.clone(), alpha).fused;
        let direct = tears_vae::ops::multinomial_nll(model.backbone.decode(fused, Mode::Eval), x.clone()).mean();
        let (got, want) = (loss.nll_fused.into_scalar(), direct.into_scalar());
        assert!((got - want).abs() <= 1e-4 * want.abs().max(1.0), "{name} at alpha {alpha}: {got} against {want}");
    }
}

#[test]
fn the_fused_nll_equals_decoding_the_mixed_latent_with_or_without_the_affine_shortcut() {
    let device = Default::default();
    check_fused_nll(
        MultDae::<A>::new(&MultDaeConfig { hidden: 12, ..MultDaeConfig::default() }, 40, 0, &device),
        "multdae",
        true,
    );
    check_fused_nll(
        RecVae::<A>::new(&RecVaeConfig { hidden: 16, latent: 6, layers: 2, ..RecVaeConfig::default() }, 40, 0, &device),
        "recvae",
        true,
    );
    check_fused_nll(
        MultVae::<A>::new(&MultVaeConfig { hidden: 16, latent: 6, ..MultVaeConfig::default() }, 40, 0, &device),
        "multvae",
        false,
    );
    check_fused_nll(
        MacridVae::<A>::new(&MacridConfig { dim: 6, concepts: 3, ..MacridConfig::default() }, 40, 0, &device),
        "macridvae",
        false,
    );
}

#[test]
fn the_frozen_encoder_gets_no_gradient_while_the_decoder_and_head_do() {
    let device = Default::default();
    check_gradients(
        MultDae::<A>::new(&MultDaeConfig { hidden: 12, ..MultDaeConfig::default() }, 40, 0, &device),
        "multdae",
    );
    check_gradients(
        MultVae::<A>::new(&MultVaeConfig { hidden: 16, latent: 6, ..MultVaeConfig::default() }, 40, 0, &device),
        "multvae",
    );
    check_gradients(
        RecVae::<A>::new(&RecVaeConfig { hidden: 16, latent: 6, layers: 2, ..RecVaeConfig::default() }, 40, 0, &device),
        "recvae",
    );
    check_gradients(
        MacridVae::<A>::new(&MacridConfig { dim: 6, concepts: 3, ..MacridConfig::default() }, 40, 0, &device),
        "macridvae",
    );
}

#[test]
fn macrid_profile_latents_are_unit_norm_per_concept_before_and_after_mixing() {
    let device = Default::default();
    let (k, d) = (4, 5);
    let backbone =
        MacridVae::<T>::new(&MacridConfig { dim: d, concepts: k, ..MacridConfig::default() }, 30, 0, &device);
    let config = TearsConfig { backbone: BackboneChoice::MacridVae, ..TearsConfig::default() };
    let model = Fused::new(backbone, &config, 12, 1, &device);
    let x = Tensor::<T, 2>::random([6, 30], Distribution::Bernoulli(0.3), &device);
    let e = Tensor::<T, 2>::random([6, 12], Distribution::Normal(0.0, 1.0), &device);
    for alpha in [0.0f32, 0.3, 1.0] {
        let l = model.latents(Some(x.clone()), e.clone(), alpha);
        for z in [l.profile.mu.clone(), l.fused.clone()] {
            for n in values(z.reshape([6 * k, d]).powi_scalar(2).sum_dim(1).sqrt()) {
                assert_abs_diff_eq!(n, 1.0, epsilon = 1e-4);
            }
        }
    }
}

#[test]
fn gaussian_w2_is_the_closed_form_and_sinkhorn_is_the_tears_ot_divergence() {
    use tears_vae::Posterior;
    let device = Default::default();
    let mu_s = Tensor::<T, 2>::from_floats([[0.0, 1.0], [2.0, 0.0]], &device);
    let lv_s = Tensor::<T, 2>::from_floats([[0.0, 0.0], [2.0f32.ln(), 0.0]], &device);
    let mu_r = Tensor::<T, 2>::from_floats([[1.0, 1.0], [0.0, 0.0]], &device);
    let lv_r = Tensor::<T, 2>::from_floats([[0.0, 0.0], [0.0, 4.0f32.ln()]], &device);
    let s = Posterior { mu: mu_s.clone(), logvar: Some(lv_s) };
    let r = Posterior { mu: mu_r.clone(), logvar: Some(lv_r) };
    let w2 = values(tears_model::nets::alignment_distance(&s, &r, Alignment::GaussianW2).expect("w2"))[0];
    // User 1: |(−1, 0)|² + 0 = 1. User 2: |(2, 0)|² + (√2 − 1)² + (1 − 2)².
    let user2 = 4.0 + (2.0f32.sqrt() - 1.0).powi(2) + 1.0;
    assert_abs_diff_eq!(w2, (1.0 + user2) / 2.0, epsilon = 1e-5);
    let none = values(tears_model::nets::alignment_distance(&s, &r, Alignment::None).expect("none"))[0];
    assert_eq!(none, 0.0);
    let sk =
        values(tears_model::nets::alignment_distance(&s, &r, Alignment::Sinkhorn { eps_rel: 0.05 }).expect("sk"))[0];
    let config = tears_ot::SinkhornConfig::default()
        .with_eps(tears_ot::Epsilon::RelativeToMedian(0.05))
        .with_tol(1e-4)
        .with_max_iter(500);
    let direct = tears_ot::sinkhorn_divergence(mu_s.clone().unsqueeze(), mu_r.unsqueeze(), None, None, &config)
        .expect("tears-ot");
    assert_abs_diff_eq!(sk, values(direct.divergence)[0], epsilon = 1e-6);
    assert!(sk > 0.0);
    let same = Posterior { mu: mu_s, logvar: None };
    let zero = values(
        tears_model::nets::alignment_distance(&same, &same.clone(), Alignment::Sinkhorn { eps_rel: 0.05 }).expect("sk"),
    )[0];
    assert_abs_diff_eq!(zero, 0.0, epsilon = 1e-4);
}

#[test]
fn each_alignment_lowers_its_own_distance_and_none_adds_no_term() {
    let f = informative();
    let dir = multvae_dir(f);
    for alignment in [Alignment::GaussianW2, Alignment::Sinkhorn { eps_rel: 0.05 }, Alignment::None] {
        let config = TearsConfig { backbone: BackboneChoice::MultVae, alignment, ..TearsConfig::default() };
        let (_, report) =
            tears_model::fit::<A>(config, &quick(6), &f.inputs(Some(dir)), &RunOptions::default(), &Default::default())
                .expect("train");
        let distance: Vec<f64> = report.train.history.iter().map(|e| e.parts["alignment"]).collect();
        match alignment {
            Alignment::None => assert!(distance.iter().all(|d| *d == 0.0), "none added a term: {distance:?}"),
            _ => {
                let (first, last) = (distance[0], distance[distance.len() - 1]);
                assert!(last < 0.8 * first, "{}: the distance went from {first} to {last}", alignment.name());
            }
        }
    }
}

#[test]
fn tears_on_a_backbone_beats_it_when_the_summary_knows_more_and_base_beats_popularity() {
    let f = informative();
    let dir = multvae_dir(f);
    let backbone = tears_vae::load::<T>(dir, &f.split, &Default::default()).expect("backbone");
    let p = profiles(f);
    let bb = ndcg20(backbone.as_ref(), &f.split, EvalSet::Test, p);
    let config = TearsConfig { backbone: BackboneChoice::MultVae, ..TearsConfig::default() };
    let (tears, report) =
        tears_model::fit::<A>(config, &quick(60), &f.inputs(Some(dir)), &RunOptions::default(), &Default::default())
            .expect("train TEARS-MultVAE");
    eprintln!("sweep {:?} best epoch {}", report.sweep, report.train.summary.best_epoch);
    assert!(report.alpha_star > 0.0, "alpha* {} ignores the summaries", report.alpha_star);
    let t = ndcg20(tears.as_ref(), &f.split, EvalSet::Test, p);
    assert!(
        t > bb * 1.1,
        "TEARS-MultVAE at alpha* {} has test NDCG@20 {t:.4}, its backbone {bb:.4}",
        report.alpha_star
    );

    let pop = tears_baselines::Popularity::fit_split(&f.split).expect("pop");
    let popularity = ndcg20(&pop, &f.split, EvalSet::Test, p);
    let base = TearsConfig { backbone: BackboneChoice::None, ..TearsConfig::default() };
    let (base, _) =
        tears_model::fit::<A>(base, &quick(60), &f.inputs(None), &RunOptions::default(), &Default::default())
            .expect("train TEARS Base");
    let b = ndcg20(base.as_ref(), &f.split, EvalSet::Test, p);
    eprintln!("base {b} pop {popularity} tears {t} backbone {bb}");
    assert!(b > popularity * 1.3, "TEARS Base {b:.4} is not far above most-popular {popularity:.4}");
}

fn scores_of(model: &dyn Recommender, f: &common::Fixture) -> ndarray::Array2<f32> {
    let users = &f.split.test;
    let p: Vec<Option<&Profile>> = users.users().iter().map(|u| profiles(f).get(*u)).collect();
    model.score_with_profiles(&users.foldin, &p).expect("scores")
}

#[test]
fn model_directories_round_trip_and_a_resumed_run_equals_an_uninterrupted_one() {
    let f = informative();
    let dir = multvae_dir(f);
    let config = TearsConfig {
        backbone: BackboneChoice::MultVae,
        train_alpha: tears_model::TrainAlpha::Uniform,
        ..TearsConfig::default()
    };
    let full_dir = f.path("tears-full");
    let run = RunOptions { out_dir: Some(full_dir.clone()), resume: true, progress: false, ..RunOptions::default() };
    let (full, full_report) =
        tears_model::fit::<A>(config.clone(), &quick(4), &f.inputs(Some(dir)), &run, &Default::default())
            .expect("train");
    let loaded = tears_model::load::<T>(&full_dir, &f.split, &Default::default(), &Default::default()).expect("load");
    assert_eq!(loaded.alpha(), full.alpha());
    assert_eq!(scores_of(loaded.as_ref(), f), scores_of(full.as_ref(), f), "a loaded model scores differently");

    let parts_dir = f.path("tears-parts");
    let run = RunOptions { out_dir: Some(parts_dir.clone()), resume: true, progress: false, ..RunOptions::default() };
    tears_model::fit::<A>(config.clone(), &quick(2), &f.inputs(Some(dir)), &run, &Default::default())
        .expect("first part");
    let (resumed, report) =
        tears_model::fit::<A>(config, &quick(4), &f.inputs(Some(dir)), &run, &Default::default()).expect("second part");
    assert_eq!(report.train.resumed_after, 2);
    let losses = |r: &tears_model::TearsReport| r.train.history.iter().map(|e| e.loss).collect::<Vec<_>>();
    assert_eq!(losses(&report), losses(&full_report), "the resumed run's epochs differ");
    assert_eq!(scores_of(resumed.as_ref(), f), scores_of(full.as_ref(), f));
}

#[test]
fn mismatched_vocabulary_summaries_and_checkpoints_are_refused_naming_the_file() {
    let f = informative();
    let dir = multvae_dir(f);
    let out = f.path("tears-refuse");
    let config = TearsConfig { backbone: BackboneChoice::MultVae, ..TearsConfig::default() };
    let run = RunOptions { out_dir: Some(out.clone()), resume: true, progress: false, ..RunOptions::default() };
    tears_model::fit::<A>(config.clone(), &quick(1), &f.inputs(Some(dir)), &run, &Default::default()).expect("train");
    // Another split (another vocabulary).
    let other = tears_data::prepare(tears_data::DatasetName::Synthetic, &Default::default()).expect("split").split;
    let msg =
        tears_model::load::<T>(&out, &other, &Default::default(), &Default::default()).err().map(|e| e.to_string());
    let msg = msg.unwrap_or_default();
    assert!(msg.contains("vocabulary") && msg.contains("tears-refuse"), "{msg}");
    // The recorded summaries file changed since training.
    let (_, record) = tears_model::read_record(&out, &f.split).expect("record");
    let copy = f.path("summaries-copy.json");
    std::fs::copy(&f.summaries.record.path, &copy).expect("copy");
    let mut record = record;
    let recorded = record.summaries.clone().expect("recorded summaries");
    record.summaries = Some(tears_model::SummariesRecord { path: copy.clone(), ..recorded });
    std::fs::write(&copy, b"{\"1\": \"Summary: edited behind the model's back.\"}").expect("edit");
    let msg = tears_model::summaries_for(&record, None).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("summaries-copy.json") && msg.contains("not the one"), "{msg}");
    // Resuming with other summaries is refused, naming the checkpoint state.
    let edited = tears_model::SummariesFile::load(&copy).expect("edited summaries");
    let mut inputs = f.inputs(Some(dir));
    inputs.summaries = Some(&edited);
    inputs.missing = MissingProfile::Empty;
    let msg = tears_model::fit::<A>(config, &quick(2), &inputs, &run, &Default::default()).err().map(|e| e.to_string());
    let msg = msg.unwrap_or_default();
    assert!(msg.contains("state.json") && msg.contains("another summaries file"), "{msg}");
}

#[test]
fn missing_summaries_are_an_error_naming_the_file_or_an_explicit_choice() {
    let f = informative();
    let base = TearsConfig { backbone: BackboneChoice::None, ..TearsConfig::default() };
    let (model, _) =
        tears_model::fit::<A>(base, &quick(1), &f.inputs(None), &RunOptions::default(), &Default::default())
            .expect("train");
    let mut few = tears_core::Profiles::new(Some(std::path::Path::new("few.jsonl")));
    for &u in f.split.test.users().iter().take(10) {
        few.insert(u, profiles(f).get(u).cloned().expect("summary"));
    }
    let options = EvalOptions { ks: vec![20], ..EvalOptions::default() };
    let err = evaluate_with_profiles(model.as_ref(), &f.split.test, Some(&few), MissingProfile::Error, &options)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    let missing = f.split.test.len() - 10;
    assert!(err.contains(&format!("{missing} of {} users have no summary in few.jsonl", f.split.test.len())), "{err}");
    let skip = evaluate_with_profiles(model.as_ref(), &f.split.test, Some(&few), MissingProfile::Skip, &options)
        .expect("skip");
    assert!(skip.at(20).expect("k").ndcg.counted <= 10);
    assert!(evaluate_with_profiles(model.as_ref(), &f.split.test, Some(&few), MissingProfile::Empty, &options).is_ok());
}

#[test]
fn gers_edits_are_vectors_given_through_the_same_profile_seam() {
    let f = informative();
    let dir = multvae_dir(f);
    let config = TearsConfig {
        profile: tears_model::ProfileSource::Genres,
        backbone: BackboneChoice::MultVae,
        ..TearsConfig::default()
    };
    let mut inputs = f.inputs(Some(dir));
    inputs.encoder = None;
    inputs.summaries = None;
    let (mut gers, _) = tears_model::fit::<A>(config, &quick(3), &inputs, &RunOptions::default(), &Default::default())
        .expect("train GERS");
    assert_eq!(gers.kind(), "gers");
    gers.set_alpha(1.0);
    let space = tears_model::GenreSpace::from_split(&f.split);
    let rows = tears_core::evaluate::slice_rows(&f.split.test.foldin, 0..1);
    let own = gers.score(&rows).expect("scores from the fold-in's genres");
    let g = space.profile(rows.row(0));
    let given = Profile::Vector(g.clone());
    assert_eq!(gers.score_with_profiles(&rows, &[Some(&given)]).expect("scores"), own);
    let order = |best: bool| (0..g.len()).fold(0, |k, i| if (g[i] > g[k]) == best && g[i] != g[k] { i } else { k });
    let (top, low) = (order(true), order(false));
    assert!(g[top] > g[low]);
    let swapped = Profile::Vector(space.swap(&g, top, low));
    let one_hot = Profile::Vector(space.one_hot(top));
    assert_ne!(gers.score_with_profiles(&rows, &[Some(&swapped)]).expect("scores"), own);
    assert_ne!(gers.score_with_profiles(&rows, &[Some(&one_hot)]).expect("scores"), own);
    let wrong = Profile::Vector(vec![1.0; 3]);
    assert!(gers.score_with_profiles(&rows, &[Some(&wrong)]).is_err());
}

/// The frozen backbone's first layer from sparse rows (what the trainer does on CPU backends)
/// gives the training loss of the dense product, with the same dropout draw.
#[test]
fn the_sparse_first_layer_gives_the_dense_training_loss() {
    let device = Default::default();
    let users: Vec<(u64, Vec<u32>)> =
        (0..6u64).map(|u| (u, (0..30u32).filter(|i| (i + 2 * u as u32).is_multiple_of(4)).collect())).collect();
    let refs: Vec<(u64, &[u32])> = users.iter().map(|(u, i)| (*u, i.as_slice())).collect();
    let clicks =
        tears_data::Interactions::from_rows(&rows_of(&refs), 30, tears_data::Values::Binary { positive_above: 3.5 })
            .expect("clicks");
    let backbone = RecVae::<A>::new(&RecVaeConfig { hidden: 12, latent: 4, ..RecVaeConfig::default() }, 30, 4, &device);
    let (model, config, _) = fused(backbone);
    let rows: Vec<usize> = (0..6).collect();
    let x = clicks.to_tensor::<A>(&rows, &device);
    let e = Tensor::<A, 2>::random([6, 16], Distribution::Normal(0.0, 0.1), &device);
    let weights = Weights::at(&config, 1000);
    let dense_noise = NoiseSource::new(8, 0);
    let dense = model.loss(x.clone(), e.clone(), 0.5, &weights, Mode::train(&dense_noise), None).expect("loss");
    let sparse_noise = NoiseSource::new(8, 0);
    let mode = Mode::train(&sparse_noise);
    let layer = model.backbone_input_layer().expect("RecVAE has an input layer");
    let input = tears_vae::SparseRows::encoder_input(&clicks, &rows, layer.dropout, mode);
    let first = tears_vae::HostWeight::read(layer.linear).forward::<A>(&input, layer.linear, &device);
    let sparse = model.loss(x, e, 0.5, &weights, mode, Some(first)).expect("loss");
    assert_eq!(dense_noise.draws(), sparse_noise.draws());
    for (a, b) in
        [(dense.total, sparse.total), (dense.alignment, sparse.alignment), (dense.nll_backbone, sparse.nll_backbone)]
    {
        let (a, b) = (a.into_scalar(), b.into_scalar());
        assert!((a - b).abs() <= common::MATMUL_RTOL * a.abs().max(1.0), "dense {a} against sparse {b}");
    }
}
