//! A deterministic hashing bag-of-words encoder that needs no weights.
//!
//! Texts become bags of unigrams and (optionally) adjacent-token bigrams, hashed into `dim`
//! buckets with a fixed 64-bit hash, weighted by sublinear term frequency and L2-normalised.
//! It lets TEARS run on a machine without a model folder (the synthetic default) and is the
//! ablation that shows what a pretrained encoder adds.
//!
//! The hash is FNV-1a 64 followed by the SplitMix64 finaliser, written out here, so a text
//! maps to the same vector on every machine, run and Rust version (std's hasher is randomised
//! per process). Changing the tokenisation, the hash or the weighting changes every vector:
//! such a change must bump [`HASHING_VERSION`], which is part of the encoder's
//! [identity](crate::TextEncoder::identity) key.

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::cache::sha256_hex;
use crate::encoder::{EncoderIdentity, TextEncoder};
use crate::error::{Result, TextError};

/// Version of the hashing scheme (tokens, features, hash, weights), part of the identity key.
pub const HASHING_VERSION: &str = "hashing-v1";

/// Settings of a [`HashingEncoder`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HashingConfig {
    /// Number of buckets, the vector dimension (default 4096; at least 1).
    pub dim: usize,
    /// Hash adjacent-token bigrams besides unigrams (default true), so word order counts a little.
    pub bigrams: bool,
    /// Lower-case the text before tokenising (default true).
    pub lowercase: bool,
    /// A second hash bit picks the sign (±1) of each feature (default true), so colliding
    /// features tend to cancel instead of piling up, which removes the bias collisions put on
    /// dot products.
    pub signed: bool,
}

impl Default for HashingConfig {
    fn default() -> Self {
        HashingConfig { dim: 4096, bigrams: true, lowercase: true, signed: true }
    }
}

/// FNV-1a, 64 bits.
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The SplitMix64 finaliser: spreads FNV's weak low bits over the whole word.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Salt of the sign hash, so that the sign bit is independent of the bucket.
const SIGN_SALT: u64 = 0x9e37_79b9_7f4a_7c15;

/// Apostrophes inside words are dropped (`don't` → `dont`, `l’amour` → `lamour`).
fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '\u{2019}' | '\u{2018}' | '\u{02bc}')
}

/// A hashing bag-of-words text encoder: no weights, deterministic, fast.
///
/// A text is split into Unicode alphanumeric runs (apostrophes dropped, lower-cased by default);
/// its features are the unigrams and, if [`HashingConfig::bigrams`], the adjacent-token bigrams,
/// each hashed (with a distinct prefix for unigrams and bigrams) to a bucket and, if
/// [`HashingConfig::signed`], a sign. A bucket's value is `s · (1 + ln |c|)` where `c` is the
/// signed count of the features that landed in it and `s` the sign of `c` (0 where `c = 0`);
/// the vector is then L2-normalised. An empty text (or one without any letter or digit) gives the
/// zero vector.
///
/// ```
/// use burn::backend::Flex;
/// use tears_text::{HashingConfig, HashingEncoder, TextEncoder};
/// let encoder = HashingEncoder::<Flex>::new(HashingConfig::default(), &Default::default())?;
/// let v = encoder.encode(&["enjoys quiet dramas", ""])?;
/// assert_eq!(v.dims(), [2, 4096]);
/// # Ok::<(), tears_text::TextError>(())
/// ```
#[derive(Debug, Clone)]
pub struct HashingEncoder<B: Backend> {
    config: HashingConfig,
    device: B::Device,
}

impl<B: Backend> HashingEncoder<B> {
    /// An encoder with `config` producing tensors on `device`; a dimension of 0 is an error.
    pub fn new(config: HashingConfig, device: &B::Device) -> Result<Self> {
        if config.dim == 0 {
            return Err(TextError::InvalidOption("the hashing encoder's dim must be at least 1".into()));
        }
        if u32::try_from(config.dim).is_err() {
            return Err(TextError::InvalidOption(format!("hashing dim {} is too large", config.dim)));
        }
        Ok(HashingEncoder { config, device: device.clone() })
    }

    /// The settings.
    pub fn config(&self) -> &HashingConfig {
        &self.config
    }

    /// The device tensors are made on.
    pub fn device(&self) -> &B::Device {
        &self.device
    }

    /// The tokens of `text`: alphanumeric runs, apostrophes dropped, lower-cased if configured.
    pub fn tokens(&self, text: &str) -> Vec<String> {
        let mut tokens = Vec::new();
        let mut current = String::new();
        for c in text.chars() {
            if c.is_alphanumeric() {
                if self.config.lowercase {
                    current.extend(c.to_lowercase());
                } else {
                    current.push(c);
                }
            } else if !is_apostrophe(c) && !current.is_empty() {
                tokens.push(std::mem::take(&mut current));
            }
        }
        if !current.is_empty() {
            tokens.push(current);
        }
        tokens
    }

    /// The bucket and sign (±1) of one feature string (`u:<token>` for a unigram,
    /// `b:<token> <token>` for a bigram).
    fn bucket(&self, feature: &str) -> (usize, i64) {
        let h = fnv1a64(feature.as_bytes());
        let bucket = (mix64(h) % self.config.dim as u64) as usize;
        let sign = if self.config.signed && mix64(h ^ SIGN_SALT) >> 63 == 1 { -1 } else { 1 };
        (bucket, sign)
    }

    /// The vector of one text.
    pub fn encode_one(&self, text: &str) -> Vec<f32> {
        let tokens = self.tokens(text);
        // Signed counts per touched bucket (texts are short: a sparse list beats a dense pass).
        let mut counts: Vec<(usize, i64)> = Vec::with_capacity(2 * tokens.len());
        let mut feature = String::new();
        let mut add = |feature: &str| counts.push(self.bucket(feature));
        for (i, token) in tokens.iter().enumerate() {
            feature.clear();
            feature.push_str("u:");
            feature.push_str(token);
            add(&feature);
            if self.config.bigrams
                && let Some(next) = tokens.get(i + 1)
            {
                feature.clear();
                feature.push_str("b:");
                feature.push_str(token);
                feature.push(' ');
                feature.push_str(next);
                add(&feature);
            }
        }
        let mut dense = vec![0i64; self.config.dim];
        for (bucket, sign) in counts {
            dense[bucket] += sign;
        }
        let mut out: Vec<f32> = dense
            .iter()
            .map(|&c| if c == 0 { 0.0 } else { c.signum() as f32 * (1.0 + (c.unsigned_abs() as f32).ln()) })
            .collect();
        let norm = out.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>().sqrt();
        if norm > 0.0 {
            for x in &mut out {
                *x = (f64::from(*x) / norm) as f32;
            }
        }
        out
    }

    /// The vectors of `texts` on the host (row `i` for `texts[i]`), each of length `dim`.
    pub fn encode_vecs(&self, texts: &[&str]) -> Vec<Vec<f32>> {
        texts.iter().map(|t| self.encode_one(t)).collect()
    }

    /// The vectors of `texts` concatenated, row-major `texts.len() × dim`.
    fn encode_flat(&self, texts: &[&str]) -> Vec<f32> {
        let mut flat = Vec::with_capacity(texts.len() * self.config.dim);
        for t in texts {
            flat.extend(self.encode_one(t));
        }
        flat
    }
}

impl<B: Backend> TextEncoder<B> for HashingEncoder<B> {
    fn dim(&self) -> usize {
        self.config.dim
    }

    fn encode(&self, texts: &[&str]) -> Result<Tensor<B, 2>> {
        Ok(Tensor::from_data(TensorData::new(self.encode_flat(texts), [texts.len(), self.config.dim]), &self.device))
    }

    fn encode_host(&self, texts: &[&str]) -> Result<Array2<f32>> {
        Array2::from_shape_vec((texts.len(), self.config.dim), self.encode_flat(texts))
            .map_err(|e| TextError::InvalidOption(format!("shaping the embeddings: {e}")))
    }

    fn identity(&self) -> Result<EncoderIdentity> {
        let config = serde_json::to_string(&self.config)
            .map_err(|e| TextError::InvalidOption(format!("serialising the hashing configuration: {e}")))?;
        Ok(EncoderIdentity {
            kind: "hashing".into(),
            key: sha256_hex(format!("{HASHING_VERSION};{config}").as_bytes()),
            dim: self.config.dim,
            pooling: None,
            max_tokens: None,
            normalize: true,
            source: "hashing".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_published_test_vectors() {
        // From the FNV reference test suite (Fowler, Noll, Vo).
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn mix64_is_the_splitmix64_finaliser() {
        // SplitMix64 seeded with 0 returns mix64(0x9e3779b97f4a7c15) first: 0xe220a8397b1dcdaf.
        assert_eq!(mix64(0x9e37_79b9_7f4a_7c15), 0xe220_a839_7b1d_cdaf);
    }
}
