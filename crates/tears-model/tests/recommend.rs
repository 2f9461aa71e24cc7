//! The recommendation API on a TEARS-Mult-VAE and a GERS model trained on the synthetic fixture:
//! top-k with seen items excluded, cold start, edits as data, leave-one-sentence-out
//! explanations that agree with scoring the edited summary, and clear errors.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{TestAutodiff, TestBackend, informative, multvae_dir};
use tears_model::recommend::{Edit, ProfileInput, Request, ScrutableModel, split_sentences};
use tears_model::{BackboneChoice, ProfileSource, TearsConfig, TearsError, TearsTrainConfig};
use tears_vae::RunOptions;

type A = TestAutodiff;
type T = TestBackend;

fn quick() -> TearsTrainConfig {
    TearsTrainConfig { epochs: 3, patience: None, batch_size: 128, ..TearsTrainConfig::default() }
}

fn trained(name: &str, profile: ProfileSource) -> &'static PathBuf {
    static TEARS: OnceLock<PathBuf> = OnceLock::new();
    static GERS: OnceLock<PathBuf> = OnceLock::new();
    let cell = if profile == ProfileSource::Text { &TEARS } else { &GERS };
    cell.get_or_init(|| {
        let f = informative();
        let out = f.path(name);
        let config = TearsConfig { profile, backbone: BackboneChoice::MultVae, ..TearsConfig::default() };
        let mut inputs = f.inputs(Some(multvae_dir(f)));
        if profile == ProfileSource::Genres {
            inputs.encoder = None;
            inputs.summaries = None;
        }
        let run = RunOptions { out_dir: Some(out.clone()), resume: false, progress: false };
        tears_model::fit::<A>(config, &quick(), &inputs, &run, &Default::default()).expect("train");
        out
    })
}

fn open(dir: &Path) -> ScrutableModel {
    ScrutableModel::open::<T>(dir, &Default::default(), &Default::default()).expect("open the model directory")
}

/// A test user's summary and fold-in history (source ids).
fn user(index: usize) -> (String, Vec<(u64, f32)>) {
    let f = informative();
    let users = &f.split.test;
    let id = users.users()[index];
    let text = f.summaries.profiles.get(id).and_then(|p| p.as_text()).expect("a summary").to_string();
    let history = users.foldin.row(index).iter().map(|r| (f.split.items[r.item as usize].id, r.rating)).collect();
    (text, history)
}

fn bad_request(result: tears_model::Result<tears_model::recommend::Recommendation>) -> String {
    match result {
        Err(TearsError::BadRequest(m)) => m,
        Err(other) => panic!("expected a bad request, got {other}"),
        Ok(_) => panic!("the request was accepted"),
    }
}

#[test]
fn top_k_excludes_seen_items_and_carries_titles_from_the_item_table() {
    let f = informative();
    let mut model = open(trained("rec-tears", ProfileSource::Text));
    let (text, history) = user(0);
    let request = Request { history: history.clone(), alpha: Some(0.5), ..Request::summary(&text, 15) };
    let r = model.recommend(&request).expect("recommend");
    assert_eq!(r.items.len(), 15);
    assert_eq!(r.alpha, 0.5);
    assert_eq!(r.profile.as_deref(), Some(text.trim()));
    assert!(!r.cold_start && r.notes.is_empty());
    let seen: Vec<u64> = history.iter().map(|(i, _)| *i).collect();
    for (n, item) in r.items.iter().enumerate() {
        assert_eq!(item.rank, n + 1);
        assert!(!seen.contains(&item.item), "seen item {} recommended", item.item);
        let known = f.split.items.iter().find(|i| i.id == item.item).expect("a vocabulary item");
        assert_eq!((&item.title, &item.genres), (&known.title, &known.genres));
    }
    assert!(r.items.windows(2).all(|w| w[0].score >= w[1].score), "not sorted by score");
    // Without alpha, the recorded alpha* is used.
    let star = model.model().alpha_star().expect("alpha*");
    let r = model.recommend(&Request { history, ..Request::summary(&text, 5) }).expect("recommend");
    assert_eq!(r.alpha, star);
}

#[test]
fn a_cold_start_user_is_served_at_alpha_one_and_told_so() {
    let mut model = open(trained("rec-tears", ProfileSource::Text));
    let sentence = "I love animated musicals and hate gore.";
    let cold = model.recommend(&Request { alpha: Some(0.3), ..Request::summary(sentence, 10) }).expect("cold start");
    assert!(cold.cold_start);
    assert_eq!(cold.alpha, 1.0);
    assert!(cold.notes.iter().any(|n| n.contains("no history")), "{:?}", cold.notes);
    // At alpha = 1 a history only masks: the unseen items keep their scores.
    let (_, history) = user(1);
    let warm =
        model.recommend(&Request { history: history.clone(), alpha: Some(1.0), ..Request::summary(sentence, 10) });
    let warm = warm.expect("alpha 1 with a history");
    let seen: Vec<u64> = history.iter().map(|(i, _)| *i).collect();
    let unseen: Vec<_> = cold.items.iter().filter(|i| !seen.contains(&i.item)).map(|i| (i.item, i.score)).collect();
    let expected: Vec<_> = warm.items.iter().take(unseen.len()).map(|i| (i.item, i.score)).collect();
    assert_eq!(unseen, expected);
}

#[test]
fn leaving_one_sentence_out_agrees_with_scoring_the_edited_summary() {
    let mut model = open(trained("rec-tears", ProfileSource::Text));
    let (text, history) = user(2);
    let sentences = split_sentences(&text);
    assert!(sentences.len() >= 2, "the template summary has several sentences: {text}");
    let request = Request { history: history.clone(), alpha: Some(0.5), explain: true, ..Request::summary(&text, 8) };
    let r = model.recommend(&request).expect("explain");
    let alpha1 = model
        .recommend(&Request { history: history.clone(), alpha: Some(1.0), ..Request::summary(&text, 3308) })
        .expect("alpha 1");
    let alpha0 = model
        .recommend(&Request { history: history.clone(), alpha: Some(0.0), ..Request::summary(&text, 3308) })
        .expect("alpha 0");
    let rank_in = |list: &tears_model::recommend::Recommendation, item: u64| {
        list.items.iter().find(|i| i.item == item).map(|i| i.rank).expect("ranked")
    };
    for item in &r.items {
        let e = item.explanation.as_ref().expect("an explanation");
        assert_eq!(e.rank_alpha1, rank_in(&alpha1, item.item));
        assert_eq!(e.rank_alpha0, Some(rank_in(&alpha0, item.item)));
        assert_eq!(e.sentences.len(), sentences.len());
        let moves: Vec<i64> = e.sentences.iter().map(|s| (s.rank_without as i64 - item.rank as i64).abs()).collect();
        assert!(moves.windows(2).all(|w| w[0] >= w[1]), "not ranked by effect: {moves:?}");
    }
    // The first item's strongest sentence, removed as an edit, gives the rank it reported.
    let first = &r.items[0];
    let effect = &first.explanation.as_ref().expect("explanation").sentences[0];
    let edited = Edit::RemoveSentence(effect.index).apply_to_text(&text).expect("edit");
    let all = Request { history, alpha: Some(0.5), ..Request::summary(&edited, 3308) };
    let without = model.recommend(&all).expect("edited");
    assert_eq!(rank_in(&without, first.item), effect.rank_without);
    let score = without.items.iter().find(|i| i.item == first.item).map(|i| i.score).expect("scored");
    approx::assert_abs_diff_eq!(first.score - score, effect.score_change, epsilon = 1e-4);
    let said = if effect.rank_without == first.rank {
        format!("stays at {}", first.rank)
    } else {
        format!("from {} to {}", first.rank, effect.rank_without)
    };
    assert!(effect.text.starts_with("without '") && effect.text.ends_with(&said), "{}", effect.text);
}

#[test]
fn edits_rerank_and_bad_requests_are_named() {
    let mut model = open(trained("rec-tears", ProfileSource::Text));
    let (text, history) = user(3);
    let base = Request { history: history.clone(), alpha: Some(1.0), ..Request::summary(&text, 10) };
    let before = model.recommend(&base).expect("recommend");
    let appended =
        Edit::Append("Lately I only want light comedies and musicals.".into()).apply_to_text(&text).expect("edit");
    let after =
        model.recommend(&Request { profile: ProfileInput::Summary(appended.clone()), ..base.clone() }).expect("edited");
    assert_eq!(after.profile.as_deref(), Some(appended.as_str()));
    assert_ne!(
        before.items.iter().map(|i| i.item).collect::<Vec<_>>(),
        after.items.iter().map(|i| i.item).collect::<Vec<_>>(),
        "an appended sentence changed nothing"
    );
    let msg = bad_request(model.recommend(&Request { alpha: Some(1.5), ..base.clone() }));
    assert!(msg.contains("alpha") && msg.contains("1.5"), "{msg}");
    let msg = bad_request(model.recommend(&Request { profile: ProfileInput::Summary("  ".into()), ..base.clone() }));
    assert!(msg.contains("empty"), "{msg}");
    let msg = bad_request(model.recommend(&Request { history: vec![(987_654_321, 5.0)], ..base.clone() }));
    assert!(msg.contains("987654321"), "{msg}");
    let msg = bad_request(model.recommend(&Request { k: 0, ..base.clone() }));
    assert!(msg.contains('k'), "{msg}");
    let msg = bad_request(model.recommend(&Request { profile: ProfileInput::Genres(vec![0.5; 3]), ..base }));
    assert!(msg.contains("summaries"), "{msg}");
}

#[test]
fn gers_swaps_genres_through_the_same_request() {
    let mut model = open(trained("rec-gers", ProfileSource::Genres));
    let space = model.genres().expect("a GERS model has genres").clone();
    let (_, history) = user(0);
    let own = model
        .recommend(&Request {
            profile: ProfileInput::FromHistory,
            history: history.clone(),
            alpha: Some(1.0),
            k: 10,
            explain: false,
        })
        .expect("from the history");
    let g = own.genres.clone().expect("the genre vector used");
    let top = (0..g.len()).fold(0, |k, i| if g[i] > g[k] { i } else { k });
    let low = (0..g.len()).fold(0, |k, i| if g[i] < g[k] { i } else { k });
    let swapped =
        Edit::SwapGenres(space.names[top].clone(), space.names[low].clone()).apply_to_genres(&g, &space).expect("swap");
    let moved = model
        .recommend(&Request {
            profile: ProfileInput::Genres(swapped.clone()),
            history,
            alpha: Some(1.0),
            k: 10,
            explain: false,
        })
        .expect("swapped");
    assert_eq!(moved.genres.as_deref(), Some(swapped.as_slice()));
    assert_ne!(
        own.items.iter().map(|i| i.item).collect::<Vec<_>>(),
        moved.items.iter().map(|i| i.item).collect::<Vec<_>>()
    );
    let msg = bad_request(model.recommend(&Request::summary("Loves westerns.", 5)));
    assert!(msg.contains("genre vectors"), "{msg}");
}
