//! Checks against the published all-MiniLM-L6-v2 outputs. They need the model folder
//! (`../shared/models/all-MiniLM-L6-v2` beside the workspace, or `$TEARS_MODEL_DIR`) and skip
//! with a message when it is absent.

use std::path::PathBuf;
use std::sync::OnceLock;

use burn::backend::Flex;
use tears_text::{EncoderOptions, SentenceEncoder, TextEncoder};

type B = Flex;

fn model_dir() -> PathBuf {
    std::env::var_os("TEARS_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(tears_text::DEFAULT_MODEL_DIR))
}

/// The encoder, loaded once for all tests of this file; `None` (with a message) when absent.
fn encoder() -> Option<&'static SentenceEncoder<B>> {
    static ENCODER: OnceLock<Option<SentenceEncoder<B>>> = OnceLock::new();
    ENCODER
        .get_or_init(|| {
            let dir = model_dir();
            if !dir.join("model.safetensors").is_file() {
                eprintln!("skipping: no all-MiniLM-L6-v2 model folder at {} (set TEARS_MODEL_DIR)", dir.display());
                return None;
            }
            Some(SentenceEncoder::load(&dir, &EncoderOptions::default(), &Default::default()).expect("load MiniLM"))
        })
        .as_ref()
}

fn embed(enc: &SentenceEncoder<B>, texts: &[&str]) -> Vec<Vec<f32>> {
    let t = enc.encode(texts).expect("encode");
    let [_, d] = t.dims();
    let v: Vec<f32> = t.into_data().into_vec().expect("f32");
    v.chunks(d).map(<[f32]>::to_vec).collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

#[test]
fn reference_vector_of_the_example_sentence() {
    let Some(enc) = encoder() else { return };
    assert_eq!(enc.dim(), 384);
    let v = &embed(enc, &["This is an example sentence"])[0];
    let expected = [0.0677, 0.0635, 0.0487, 0.0793, 0.0374, 0.0027, 0.0394, -0.0071];
    let err = v.iter().zip(expected).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    eprintln!("first eight: {:?}; max error {err:.2e}", &v[..8]);
    assert!(err < 5e-4, "first eight dimensions {:?}, expected {expected:?}", &v[..8]);
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5);
}

#[test]
fn related_texts_are_closer_than_unrelated_ones() {
    let Some(enc) = encoder() else { return };
    let v = embed(
        enc,
        &[
            "loves animated family musicals",
            "enjoys cartoons for kids",
            "Preheat the oven to 180 degrees, whisk the eggs with sugar and fold in the flour for a sponge cake.",
        ],
    );
    let near = cosine(&v[0], &v[1]);
    let far = cosine(&v[0], &v[2]);
    eprintln!("cosine(musicals, cartoons) = {near:.4}, cosine(musicals, cake recipe) = {far:.4}");
    // sentence-transformers 6.2 on PyTorch gives 0.4933 and 0.0944 for these texts.
    assert!((near - 0.4933).abs() < 2e-3, "{near}");
    assert!((far - 0.0944).abs() < 2e-3, "{far}");
    assert!(near > far + 0.3);
}

#[test]
fn padding_does_not_change_an_embedding() {
    let Some(enc) = encoder() else { return };
    let short = "The user enjoys light romantic comedies.";
    let long = "Summary: The user enjoys character-driven dramas with complex relationships, historical \
                settings and moral dilemmas, and does not enjoy slapstick or gory horror. "
        .repeat(4);
    let alone = &embed(enc, &[short])[0];
    let batched = embed(enc, &[&long, short, "", &long[..200]]);
    let d = alone.iter().zip(&batched[1]).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(d < 1e-5, "batched with longer texts, the embedding moved by {d}");
    assert!(batched.iter().flatten().all(|x| x.is_finite()), "empty and long texts give finite vectors");
    // Truncation at 256 tokens: a text past it equals its first 256 tokens' embedding.
    let ids = enc.tokenize(&[&long.repeat(3)]).expect("tokenize");
    assert_eq!(ids[0].len(), 256);
}
