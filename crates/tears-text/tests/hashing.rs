//! The hashing bag-of-words encoder and encoder identities.

use std::path::Path;

use approx::{assert_abs_diff_eq, assert_relative_eq};
use burn::backend::Flex;
use burn::tensor::Tensor;
use tears_text::{
    EncoderIdentity, EncoderOptions, HashingConfig, HashingEncoder, SentenceEncoder, TextEncoder, TextError, testing,
};

type B = Flex;

fn encoder(config: HashingConfig) -> HashingEncoder<B> {
    HashingEncoder::new(config, &Default::default()).expect("valid config")
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

fn nonzero(v: &[f32]) -> Vec<(usize, f32)> {
    v.iter().copied().enumerate().filter(|(_, x)| *x != 0.0).collect()
}

fn rows(t: Tensor<B, 2>) -> Vec<Vec<f32>> {
    let [_, d] = t.dims();
    let v: Vec<f32> = t.into_data().into_vec().expect("f32");
    v.chunks(d).map(<[f32]>::to_vec).collect()
}

#[test]
fn same_text_same_vector_on_two_instances_and_unit_norm() {
    let a = encoder(HashingConfig::default());
    let b = encoder(HashingConfig::default());
    let texts = ["Summary: the user enjoys quiet dramas about friendship.", "Loves loud action films; not horror"];
    let va = a.encode_vecs(&texts);
    let vb = b.encode_vecs(&texts);
    assert_eq!(va, vb);
    for v in &va {
        assert_eq!(v.len(), 4096);
        assert_relative_eq!(norm(v), 1.0, epsilon = 1e-6);
    }
    // The tensor path and the host path agree.
    let t = rows(a.encode(&texts).expect("encode"));
    assert_eq!(t, va);
    let host = a.encode_host(&texts).expect("host");
    assert_eq!(host.dim(), (texts.len(), 4096));
    assert_eq!(host.outer_iter().map(|r| r.to_vec()).collect::<Vec<_>>(), va);
    assert_eq!(a.encode_host(&[]).expect("empty batch").dim(), (0, 4096));
    assert_eq!(a.encode(&[]).expect("empty batch").dims(), [0, 4096]);
}

#[test]
fn empty_text_gives_the_zero_vector() {
    let e = encoder(HashingConfig::default());
    for text in ["", "   ", ", ; ! -- ''"] {
        let v = e.encode_one(text);
        assert_eq!(v.len(), 4096);
        assert!(v.iter().all(|&x| x == 0.0), "{text:?} must give zeros, not NaN");
    }
}

#[test]
fn tokens_are_alphanumeric_runs_without_apostrophes() {
    let e = encoder(HashingConfig::default());
    assert_eq!(e.tokens("Don't STOP: rock'n'roll, 80s!"), ["dont", "stop", "rocknroll", "80s"]);
    assert_eq!(e.tokens("Amélie’s café — ÉTÉ"), ["amélies", "café", "été"]);
    let cased = encoder(HashingConfig { lowercase: false, ..Default::default() });
    assert_eq!(cased.tokens("Don't STOP"), ["Dont", "STOP"]);
    // Lower-casing makes case irrelevant.
    assert_eq!(e.encode_one("QUIET Dramas"), e.encode_one("quiet dramas"));
    assert_ne!(cased.encode_one("QUIET Dramas"), cased.encode_one("quiet dramas"));
}

#[test]
fn changing_one_word_changes_the_vector() {
    let e = encoder(HashingConfig::default());
    let a = e.encode_one("the user enjoys quiet dramas");
    let b = e.encode_one("the user enjoys loud dramas");
    assert_ne!(a, b);
    let dot: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
    assert!(dot > 0.0 && dot < 0.99, "shared words keep them similar, not equal: {dot}");
}

#[test]
fn word_order_counts_only_through_bigrams() {
    let (a, b) = ("quiet dramas about love", "love about quiet dramas");
    let with = encoder(HashingConfig::default());
    assert_ne!(with.encode_one(a), with.encode_one(b));
    let without = encoder(HashingConfig { bigrams: false, ..Default::default() });
    assert_eq!(without.encode_one(a), without.encode_one(b));
    // Bigrams are distinct features from unigrams: a bigram text has more nonzero buckets.
    assert!(nonzero(&with.encode_one(a)).len() > nonzero(&without.encode_one(a)).len());
}

#[test]
fn term_frequency_is_sublinear() {
    for signed in [true, false] {
        let e = encoder(HashingConfig { dim: 1 << 20, bigrams: false, signed, ..Default::default() });
        let v = e.encode_one("drama comedy drama drama");
        let nz = nonzero(&v);
        assert_eq!(nz.len(), 2, "two distinct words, no collision at this dim: {nz:?}");
        let drama = e.encode_one("drama");
        let (i_drama, _) = nonzero(&drama)[0];
        let heavy = nz.iter().find(|(i, _)| *i == i_drama).expect("drama's bucket").1.abs();
        let light = nz.iter().find(|(i, _)| *i != i_drama).expect("comedy's bucket").1.abs();
        assert_relative_eq!(heavy / light, 1.0 + 3.0f32.ln(), epsilon = 1e-5);
        assert_relative_eq!(norm(&v), 1.0, epsilon = 1e-6);
        if !signed {
            assert!(v.iter().all(|&x| x >= 0.0));
        }
    }
}

#[test]
fn signs_are_mixed_when_signed() {
    let e = encoder(HashingConfig { bigrams: false, ..Default::default() });
    let text = "the user enjoys quiet dramas about friendship love family comedy horror war science fiction";
    let v = e.encode_one(text);
    assert!(v.iter().any(|&x| x > 0.0) && v.iter().any(|&x| x < 0.0));
}

/// Pins the hash: the unigram "drama" (feature string `u:drama`) lands in bucket 1363 of 4096
/// with sign +1 (computed once, and checked against an independent Python implementation of
/// FNV-1a 64 + the SplitMix64 finaliser). Vectors saved by earlier runs (embedding files, trained TEARS heads) depend on these buckets; if this test
/// fails the hash, the feature strings or the tokenisation changed, which silently invalidates
/// every saved hashing embedding. Change it only together with `HASHING_VERSION`.
#[test]
fn golden_bucket_of_one_feature() {
    assert_eq!(tears_text::HASHING_VERSION, "hashing-v1");
    let e = encoder(HashingConfig::default());
    let nz = nonzero(&e.encode_one("drama"));
    assert_eq!(nz.len(), 1);
    assert_eq!(nz[0].0, 1363, "bucket of \"u:drama\" at dim 4096");
    assert_abs_diff_eq!(nz[0].1, 1.0);
}

#[test]
fn zero_dimension_is_an_error() {
    let err = HashingEncoder::<B>::new(HashingConfig { dim: 0, ..Default::default() }, &Default::default())
        .expect_err("dim 0");
    assert!(matches!(err, TextError::InvalidOption(_)) && err.to_string().contains("dim"), "{err}");
}

#[test]
fn hashing_config_serde_defaults() {
    let c: HashingConfig = serde_json::from_str(r#"{"dim": 512}"#).expect("partial config");
    assert_eq!(c, HashingConfig { dim: 512, ..Default::default() });
    let back: HashingConfig = serde_json::from_str(&serde_json::to_string(&c).expect("ser")).expect("de");
    assert_eq!(back, c);
}

#[test]
fn hashing_identity_is_stable_and_follows_the_config() {
    let a = encoder(HashingConfig::default()).identity().expect("identity");
    let b = encoder(HashingConfig::default()).identity().expect("identity");
    assert_eq!(a, b);
    assert_eq!(a.kind, "hashing");
    assert_eq!(a.dim, 4096);
    assert_eq!((a.pooling.as_deref(), a.max_tokens, a.normalize, a.source.as_str()), (None, None, true, "hashing"));
    assert_eq!(a.key.len(), 64, "hex SHA-256");
    let other = encoder(HashingConfig { signed: false, ..Default::default() }).identity().expect("identity");
    assert_ne!(a.key, other.key);
    let json = serde_json::to_string(&a).expect("ser");
    let back: EncoderIdentity = serde_json::from_str(&json).expect("de");
    assert_eq!(back, a);

    let file = Path::new("runs/emb.npy");
    a.check_matches(&b, file).expect("same encoder");
    let wide = encoder(HashingConfig { dim: 8192, ..Default::default() }).identity().expect("identity");
    let err = a.check_matches(&wide, file).expect_err("other dim");
    let msg = err.to_string();
    assert!(matches!(&err, TextError::EncoderMismatch { fields, .. } if fields == "key, dim"), "{msg}");
    assert!(msg.contains("runs/emb.npy") && msg.contains("dim=4096") && msg.contains("dim=8192"), "{msg}");
}

#[test]
fn bert_identity_and_mismatch_with_hashing() {
    let dir = tempfile::tempdir().expect("tmp");
    testing::write_tiny_model(dir.path(), 2).expect("write");
    let bert = SentenceEncoder::<B>::load(dir.path(), &EncoderOptions::default(), &Default::default()).expect("load");
    let id = bert.identity().expect("identity");
    assert_eq!(id.kind, "bert");
    assert_eq!(id.key, bert.model_key().expect("key"));
    assert_eq!(id.dim, 32);
    assert_eq!(id.pooling.as_deref(), Some("mean"));
    assert_eq!(id.max_tokens, Some(256));
    assert!(id.normalize);
    assert_eq!(id.source, dir.path().display().to_string());
    // The same model read with other settings is another encoder.
    let short = EncoderOptions { max_tokens: 64, ..Default::default() };
    let other = SentenceEncoder::<B>::load(dir.path(), &short, &Default::default()).expect("load");
    let err = id.check_matches(&other.identity().expect("identity"), Path::new("model.bin")).expect_err("max_tokens");
    assert!(matches!(&err, TextError::EncoderMismatch { fields, .. } if fields == "key, max_tokens"), "{err}");

    let hashing = encoder(HashingConfig::default()).identity().expect("identity");
    let err = id.check_matches(&hashing, Path::new("emb.npy")).expect_err("bert vs hashing");
    let msg = err.to_string();
    assert!(msg.contains("emb.npy") && msg.contains("kind=bert") && msg.contains("kind=hashing"), "{msg}");

    // encode_host is encode read back.
    let texts = ["the user enjoys horror", "a family comedy"];
    let host = bert.encode_host(&texts).expect("host");
    let direct = rows(bert.encode(&texts).expect("encode"));
    assert_eq!(host.dim(), (texts.len(), bert.dim()));
    assert_eq!(host.outer_iter().map(|r| r.to_vec()).collect::<Vec<_>>(), direct);
}
