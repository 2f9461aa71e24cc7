//! The recommendation API on a TEARS-Mult-VAE and a GERS model trained on the synthetic fixture:
//! top-k with seen items excluded, cold start, edits as data, leave-one-sentence-out
//! explanations that agree with scoring the edited summary, and clear errors.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{TestAutodiff, TestBackend, informative, multvae_dir};
use tears_model::control::OfflineEdits;
use tears_model::control::{ControlOptions, ControlUser};
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
        let run = RunOptions { out_dir: Some(out.clone()), resume: false, progress: false, ..RunOptions::default() };
        tears_model::fit::<A>(config, &quick(), &inputs, &run, &Default::default()).expect("train");
        out
    })
}

/// A TEARS-Mult-VAE trained long enough for its text path to read the summaries (the
/// controllability experiments measure that path; three epochs leave it near its start).
fn trained_long() -> &'static PathBuf {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        let f = informative();
        let out = f.path("control-tears");
        let config = TearsConfig { backbone: BackboneChoice::MultVae, ..TearsConfig::default() };
        let train = TearsTrainConfig { epochs: EPOCHS_LONG, ..quick() };
        let run = RunOptions { out_dir: Some(out.clone()), resume: false, progress: false, ..RunOptions::default() };
        tears_model::fit::<A>(config, &train, &f.inputs(Some(multvae_dir(f))), &run, &Default::default())
            .expect("train");
        out
    })
}

const EPOCHS_LONG: usize = 40;

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
    let model = open(trained("rec-tears", ProfileSource::Text));
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
fn a_batch_answers_each_request_as_one_by_one() {
    let model = open(trained("rec-tears", ProfileSource::Text));
    let mut requests: Vec<Request> = (0..6)
        .map(|i| {
            let (text, history) = user(i);
            // Two alphas in one batch, and alpha* (None).
            let alpha = [Some(0.5), Some(0.2), None][i % 3];
            Request { history, alpha, ..Request::summary(&text, 10) }
        })
        .collect();
    requests.push(Request { alpha: Some(0.3), ..Request::summary("I love animated musicals.", 7) });
    let batch = model.recommend_batch(&requests).expect("batch");
    assert_eq!(batch.len(), requests.len());
    for (request, got) in requests.iter().zip(&batch) {
        let one = model.recommend(request).expect("one");
        assert_eq!((got.alpha, got.cold_start, &got.notes), (one.alpha, one.cold_start, &one.notes));
        let ids = |r: &tears_model::recommend::Recommendation| r.items.iter().map(|i| i.item).collect::<Vec<_>>();
        assert_eq!(ids(got), ids(&one));
        for (a, b) in got.items.iter().zip(&one.items) {
            approx::assert_abs_diff_eq!(a.score, b.score, epsilon = 1e-4);
        }
    }
    assert!(batch.last().expect("cold").cold_start);
    requests[3].k = 0;
    let e = model.recommend_batch(&requests).expect_err("k = 0");
    assert!(matches!(&e, TearsError::BadRequest(m) if m.starts_with("request 3: k")), "{e}");
}

#[test]
fn a_cold_start_user_is_served_at_alpha_one_and_told_so() {
    let model = open(trained("rec-tears", ProfileSource::Text));
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
    let model = open(trained("rec-tears", ProfileSource::Text));
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
    let model = open(trained("rec-tears", ProfileSource::Text));
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
    let model = open(trained("rec-gers", ProfileSource::Genres));
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

/// The experiment users of the fixture's test set, with their summaries (or genre vectors).
fn control_users(model: &ScrutableModel) -> Vec<ControlUser> {
    let f = informative();
    tears_model::control::control_users(model, &f.split, tears_data::EvalSet::Test, Some(&f.summaries.profiles))
        .expect("control users")
}

/// The synthetic catalogue has 300 items: keep genres on more than 10 of them.
fn control_options() -> ControlOptions {
    ControlOptions { alphas: vec![0.0, 0.5, 1.0], min_genre_items: 10, ..ControlOptions::default() }
}

#[test]
fn large_scope_swaps_move_the_lists_and_alpha_zero_does_not_see_them() {
    let model = open(trained_long());
    let users = control_users(&model);
    let r = tears_model::control::large_scope(&model, &users, &control_options(), &mut OfflineEdits, &mut |_| {})
        .expect("large");
    assert_eq!(r.counted + r.discarded.total(), users.len());
    assert!(r.counted >= users.len() / 2, "{} of {} counted: {:?}", r.counted, users.len(), r.discarded);
    assert_eq!((r.rows.len(), r.per_user.len(), r.edits.len()), (3, r.counted, r.counted));
    // alpha = 0 is the backbone alone: the edit cannot move the list.
    assert_eq!((r.rows[0].delta_up.mean, r.rows[0].delta_down.mean), (0.0, 0.0));
    // At alpha = 1 the summary alone ranks: swapping the genres moves the lists the edit's way.
    let at1 = &r.rows[2];
    assert!(at1.delta_up.mean > 2.0 * at1.delta_up.std_err, "Δ_up {:?}", at1.delta_up);
    assert!(at1.delta_down.mean > 2.0 * at1.delta_down.std_err, "Δ_down {:?}", at1.delta_down);
    // Every edit changed the text and records the two genres it swapped.
    for (e, u) in r.edits.iter().zip(&r.per_user) {
        assert_ne!(e.original, e.edited);
        assert_eq!(e.user, u.user);
        let fav = e.params["favourite"].as_str().expect("favourite");
        assert_eq!(tears_metrics::normalize_genre(fav), u.favourite, "{e:?}");
    }
}

#[test]
fn guided_more_raises_the_genre() {
    let model = open(trained_long());
    let users = control_users(&model);
    let r = tears_model::control::guided(&model, &users, &control_options(), &mut |_| {}).expect("guided");
    assert_eq!((r.users, r.genres.len(), r.edits.len()), (users.len(), 10, 20));
    assert!(r.edits.iter().any(|e| e.edited.starts_with("Summary: More ") && e.edited.ends_with(" movies")));
    let mut raised = 0;
    for g in &r.genres {
        // alpha = 0 ranks by the history alone, exactly as the baseline does.
        assert_eq!((g.more[0].change.mean, g.less[0].change.mean), (0.0, 0.0), "{}", g.genre);
        raised += usize::from(g.more[2].change.mean > 2.0 * g.more[2].change.std_err);
    }
    // "Less" is not asserted: the hashing encoder is a bag of words, and "Less Horror movies"
    // shares its genre word with "enjoys horror movies" (measured: Less lowered 3 of 10 genres).
    assert!(raised >= 8, "More raised {raised} of 10 genres significantly");
}

#[test]
fn small_scope_targets_are_ranked_in_range_and_gers_has_no_sentences() {
    let model = open(trained_long());
    let users = control_users(&model);
    let options = control_options();
    let r = tears_model::control::small_scope(&model, &users, &options, &mut OfflineEdits, &mut |_| {}).expect("small");
    assert_eq!(r.counted + r.discarded.total(), users.len());
    assert!(r.counted > 0, "{:?}", r.discarded);
    for u in &r.per_user {
        assert!(u.before.iter().all(|b| (100..=499).contains(b)), "{u:?}");
        assert_eq!(u.before[0], u.after[0], "alpha 0 ignores the summary: {u:?}");
    }
    assert_eq!(r.rows[0].rank_change.mean, 0.0);
    // GERS: large-scope swaps vector entries; small-scope has nothing to insert a sentence into.
    let gers = open(trained("rec-gers", ProfileSource::Genres));
    let users = control_users(&gers);
    assert!(users.iter().all(|u| u.profile.as_vector().is_some()));
    let r =
        tears_model::control::large_scope(&gers, &users, &options, &mut OfflineEdits, &mut |_| {}).expect("gers large");
    assert!(r.counted > 0 && r.edits.iter().all(|e| e.edited.starts_with('[')), "{:?}", r.discarded);
    let err = tears_model::control::small_scope(&gers, &users, &options, &mut OfflineEdits, &mut |_| {})
        .expect_err("gers small");
    assert!(matches!(err, TearsError::BadRequest(m) if m.contains("TEARS")));
}

/// The summary inside a large-scope question (between "preferences:" and the genre list).
fn asked_summary(request: &tears_summarize::mock::MockRequest) -> (String, Vec<String>) {
    let first = request.json()["messages"][0]["content"].as_str().unwrap_or_default().to_string();
    let summary = first.split("preferences:\n\n").nth(1).and_then(|r| r.split("\n\nFrom this list").next());
    let genres = first.split("list of genres: ").nth(1).and_then(|r| r.split(".\n").next()).unwrap_or_default();
    (summary.unwrap_or_default().to_string(), genres.split(", ").map(str::to_string).collect())
}

#[test]
fn llm_edits_follow_the_authors_protocol_discard_bad_answers_and_are_cached() {
    use tears_model::control::LlmEdits;
    use tears_summarize::mock::{MockReply, MockServer};
    let model = open(trained_long());
    let mut users = control_users(&model);
    users.truncate(8);
    let refused = users[0].profile.as_text().expect("a summary").to_string();
    let server = MockServer::start(move |_, req| {
        let last = req.last_message();
        let (summary, genres) = asked_summary(req);
        if last.starts_with("Describe the movie") {
            return MockReply::Completion("a crew plans one last daring heist".into());
        }
        if summary == refused {
            return MockReply::Completion("I cannot tell.".into());
        }
        let (fav, least) = (&genres[0], &genres[genres.len() - 1]);
        if last.starts_with("Rewrite the summary") {
            let swapped = tears_summarize::edit::swap_genres(&summary, fav, least).text;
            MockReply::Completion(format!("{swapped} Lately {least} above all, and no more {fav}."))
        } else {
            MockReply::Completion(format!("Favorite: {fav}\nLeast Favorite: {least}"))
        }
    })
    .expect("mock server");
    let dir = tempfile::tempdir().expect("tmp");
    let cache = dir.path().join("answers.jsonl");
    let client = || {
        let mut c = tears_summarize::LlmConfig::new(&server.url(), "mock-llm");
        c.backoff_base = std::time::Duration::from_millis(1);
        tears_summarize::LlmClient::new(c).expect("client")
    };
    let options = control_options();
    let mut llm = LlmEdits::new(client(), &cache).expect("edits");
    let first = tears_model::control::large_scope(&model, &users, &options, &mut llm, &mut |_| {}).expect("large");
    // The user whose answers never parse is discarded with the reason; the others are counted
    // with the genres the LLM named and the text it wrote.
    assert_eq!(first.counted + first.discarded.total(), users.len());
    assert!(first.discarded.0.keys().any(|r| r.contains("invalid-answer")), "{:?}", first.discarded);
    assert!(first.per_user.iter().all(|u| u.user != users[0].user));
    assert!(first.counted >= 4, "{:?}", first.discarded);
    for e in &first.edits {
        assert_eq!(e.edit, "llm_swap_rewrite");
        assert!(e.edited.contains("Lately") && e.edited.contains("above all"), "{}", e.edited);
    }
    assert_eq!(first.source, "llm:mock-llm");
    let asked = server.requests();
    // A second run on the same cache (the cache's lock released with the first) asks nothing
    // that was answered and reproduces the numbers; only the refused user is asked again.
    drop(llm);
    let mut again = LlmEdits::new(client(), &cache).expect("edits");
    let second = tears_model::control::large_scope(&model, &users, &options, &mut again, &mut |_| {}).expect("again");
    assert_eq!(second.per_user, first.per_user);
    assert_eq!(again.cache_counts(), (first.counted, 0), "each counted user's swap from the cache, nothing new stored");
    let refused_asks = asked - 2 * first.counted;
    assert_eq!(server.requests() - asked, refused_asks, "only the refused user is asked again");
    // A second writer is refused while the first holds the cache.
    assert!(matches!(
        LlmEdits::new(client(), &cache),
        Err(TearsError::Summarize(tears_summarize::SummarizeError::Locked { .. }))
    ));
    drop(again);
    // Small-scope with the LLM: three descriptions per target, the median rank reported.
    let mut llm = LlmEdits::new(client(), &cache).expect("edits");
    let small = tears_model::control::small_scope(&model, &users, &options, &mut llm, &mut |_| {}).expect("small");
    for u in &small.per_user {
        assert_eq!(u.sentences.len(), 3);
        assert!(u.sentences.iter().all(|s| s == "a crew plans one last daring heist"));
    }
    assert_eq!(small.edits.len(), 3 * small.counted);
    drop(llm);
    // A torn last line (a killed run) is cut off; a bad line in the middle is an error naming it.
    let text = std::fs::read_to_string(&cache).expect("cache");
    std::fs::write(&cache, format!("{text}{{\"key\":\"ab")).expect("torn");
    drop(LlmEdits::new(client(), &cache).expect("torn last line cut"));
    assert_eq!(std::fs::read_to_string(&cache).expect("cache"), text);
    std::fs::write(&cache, format!("not json\n{text}")).expect("bad");
    let err = LlmEdits::new(client(), &cache).expect_err("bad line").to_string();
    assert!(err.contains("answers.jsonl:1:"), "{err}");
}

#[test]
fn a_server_that_refuses_every_request_stops_the_llm_edits() {
    use tears_summarize::mock::{MockReply, MockServer};
    let model = open(trained_long());
    let users = control_users(&model);
    let server = MockServer::start(|_, _| MockReply::Status { status: 401, retry_after: None, body: "bad key".into() })
        .expect("mock");
    let dir = tempfile::tempdir().expect("tmp");
    let client = tears_summarize::LlmClient::new(tears_summarize::LlmConfig::new(&server.url(), "m")).expect("client");
    let mut llm = tears_model::control::LlmEdits::new(client, &dir.path().join("a.jsonl")).expect("edits");
    let err = tears_model::control::large_scope(&model, &users, &control_options(), &mut llm, &mut |_| {})
        .expect_err("a 401 stops the experiment");
    assert!(matches!(err, TearsError::Summarize(tears_summarize::SummarizeError::Http { status: 401, .. })), "{err}");
    assert_eq!(server.requests(), 1, "no second user is asked after a fatal answer");
}
