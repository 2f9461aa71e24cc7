//! Latency of the recommendation API (`tears::model::recommend`) on a trained TEARS model.
//!
//! Run: `TEARS_BENCH_MODEL=DIR TEARS_BENCH_SPLIT=SPLIT cargo bench --bench recommend`, where DIR is
//! a TEARS model directory (`tears train tears ... --encoder ../shared/models/all-MiniLM-L6-v2`)
//! and SPLIT its split directory (the bench user is its first test user). It skips with a
//! message when either is unset. About a minute.
//!
//! - `recommend/edited_summary`: one request for an edited summary (the test user's summary
//!   with a sentence appended that differs every iteration, so the encoder's memo never hits),
//!   with their history, at alpha*: encode + fuse + decode + top-20.
//! - `recommend/explain_10_sentences`: the same with `explain` for a 10-sentence summary: the
//!   scores at alpha 1 and 0, and the 10 leave-one-sentence-out variants in one encoder batch.
//! - `recommend/encoder_only`: encoding one summary with the sentence encoder alone.
//! - `recommend/decoder_only`: scoring one user from a given profile vector (no encoding):
//!   the backbone encoder, the fusion and the decoder.
//!
//! Targets (issue 14): a recommendation under 50 ms, an explanation under 300 ms, on 2 cores.

use std::cell::Cell;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use tears::model::recommend::{Edit, Request, ScrutableModel, split_sentences};
use tears::model::{ItemTable, LoadOptions};
use tears::recommender::{ITEMS_FILE, Profile};
use tears::text::{EncoderOptions, SentenceEncoder};

#[cfg(feature = "cuda")]
type Bk = burn::backend::Cuda;
#[cfg(not(feature = "cuda"))]
type Bk = burn::backend::Flex;

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).map(PathBuf::from)
}

fn bench(c: &mut Criterion) {
    let (Some(model_dir), Some(split_dir)) = (env_path("TEARS_BENCH_MODEL"), env_path("TEARS_BENCH_SPLIT")) else {
        eprintln!("recommend bench skipped: set TEARS_BENCH_MODEL (a TEARS model directory) and TEARS_BENCH_SPLIT");
        return;
    };
    let split = tears::data::Split::load(&split_dir).expect("the split");
    let device = Default::default();
    let model = if model_dir.join(ITEMS_FILE).is_file() {
        ScrutableModel::open::<Bk>(&model_dir, &LoadOptions::default(), &device).expect("the model")
    } else {
        let loaded = tears::model::load::<Bk>(&model_dir, &split, &LoadOptions::default(), &device).expect("the model");
        ScrutableModel::new(loaded, ItemTable::new(split.items.clone()))
    };
    let (_, record) = tears::model::read_record(&model_dir, &split).expect("the record");
    let summaries = tears::model::summaries_for(&record, None).expect("the recorded summaries").expect("TEARS");
    let user = split.test.users()[0];
    let text = summaries.profiles.get(user).and_then(Profile::as_text).expect("a summary").to_string();
    let history: Vec<(u64, f32)> =
        split.test.foldin.row(0).iter().map(|r| (split.items[r.item as usize].id, r.rating)).collect();
    let sentences = split_sentences(&text);
    let ten: Vec<String> = sentences.iter().cycle().take(10).cloned().collect();
    let ten = ten.join(" ");
    println!("bench user {user}: {} sentences, {} history items", sentences.len(), history.len());

    let counter = Cell::new(0u64);
    let sentence = || {
        counter.set(counter.get() + 1);
        format!("Lately they want light comedies, mood {}.", counter.get())
    };
    let fresh = |base: &str| Edit::Append(sentence()).apply_to_text(base).expect("edit");
    let mut group = c.benchmark_group("recommend");
    group.sample_size(20);
    group.bench_function("edited_summary", |b| {
        b.iter(|| {
            let request = Request { history: history.clone(), ..Request::summary(fresh(&text), 20) };
            model.recommend(&request).expect("recommend")
        })
    });
    group.bench_function("explain_10_sentences", |b| {
        b.iter(|| {
            // Ten sentences: the user's, cycled, with the last one fresh each time.
            let varied = Edit::ReplaceSentence(9, sentence()).apply_to_text(&ten).expect("edit");
            let request = Request { history: history.clone(), explain: true, ..Request::summary(varied, 20) };
            model.recommend(&request).expect("explain")
        })
    });
    let choice = match &record.encoder {
        tears::model::EncoderSpec::Text {
            choice: tears::model::TextEncoderChoice::Bert { dir, max_tokens }, ..
        } => Some((dir.clone(), *max_tokens)),
        _ => None,
    };
    if let Some((dir, max_tokens)) = choice {
        let options = EncoderOptions { max_tokens, ..EncoderOptions::default() };
        let encoder = SentenceEncoder::<Bk>::load(&dir, &options, &device).expect("the encoder");
        group.bench_function("encoder_only", |b| {
            b.iter(|| encoder.encode_vecs(&[fresh(&text).as_str()], &mut |_| {}).expect("encode"))
        });
        let vector = encoder.encode_vecs(&[text.as_str()], &mut |_| {}).expect("encode").remove(0);
        let profile = Profile::Vector(vector);
        let alpha = model.model().alpha_star().unwrap_or(0.5);
        group.bench_function("decoder_only", |b| {
            b.iter(|| model.score_matrix(&history, std::slice::from_ref(&profile), alpha).expect("scores"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
