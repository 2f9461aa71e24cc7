//! A tiny randomly initialised BERT model folder, written on the fly, so that tests and examples
//! run everywhere without downloaded weights.

use std::path::Path;

use crate::bert::{RandomWeights, WeightSource, checkpoint_shapes};
use crate::config::BertConfig;
use crate::error::{Result, TextError};

/// Words of the tiny vocabulary (besides special tokens, letters and a few suffixes).
const WORDS: &[&str] = &[
    "the",
    "a",
    "user",
    "enjoys",
    "likes",
    "loves",
    "does",
    "not",
    "enjoy",
    "movies",
    "films",
    "drama",
    "dramas",
    "comedy",
    "comedies",
    "action",
    "horror",
    "thriller",
    "romance",
    "animated",
    "family",
    "musicals",
    "cartoons",
    "for",
    "kids",
    "and",
    "with",
    "summary",
    "genres",
    "plot",
    "points",
    "of",
    "is",
    "this",
    "an",
    "example",
    "sentence",
    "cake",
    "recipe",
    "sugar",
    "flour",
    "eggs",
    "bake",
    "oven",
    "quiet",
    "loud",
    "war",
    "science",
    "fiction",
    "characters",
    "stories",
    "about",
    "love",
    "friendship",
    "violence",
    "slow",
    "fast",
    ".",
    ",",
    ":",
];

/// The tokenizer.json of the tiny model: BERT normaliser (lower-casing), BERT pre-tokeniser,
/// WordPiece over a small word list, letters and `##` letters, `[CLS] … [SEP]` template. Like the
/// shipped all-MiniLM-L6-v2 file it asks for fixed padding to 128 and truncation at 128, which
/// the encoder must override.
pub fn tiny_tokenizer_json() -> (String, usize) {
    let mut vocab: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].iter().map(|s| s.to_string()).collect();
    vocab.extend(WORDS.iter().map(|s| s.to_string()));
    for c in 'a'..='z' {
        vocab.push(c.to_string());
        vocab.push(format!("##{c}"));
    }
    for s in ["##s", "##ing", "##ed", "##er"] {
        vocab.push(s.to_string());
    }
    for d in '0'..='9' {
        vocab.push(d.to_string());
        vocab.push(format!("##{d}"));
    }
    let vocab_json: serde_json::Map<String, serde_json::Value> =
        vocab.iter().enumerate().map(|(i, t)| (t.clone(), serde_json::Value::from(i))).collect();
    let added: Vec<serde_json::Value> = vocab[..5]
        .iter()
        .enumerate()
        .map(|(i, t)| {
            serde_json::json!({"id": i, "special": true, "content": t, "single_word": false,
                "lstrip": false, "rstrip": false, "normalized": false})
        })
        .collect();
    let json = serde_json::json!({
        "version": "1.0",
        "truncation": {"max_length": 128, "strategy": "LongestFirst", "stride": 0},
        "padding": {"strategy": {"Fixed": 128}, "direction": "Right", "pad_to_multiple_of": null,
            "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"},
        "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
            "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
            "max_input_chars_per_word": 100, "vocab": vocab_json}
    });
    (json.to_string(), vocab.len())
}

/// The configuration of the tiny model: hidden 32, 2 layers, 4 heads, feed-forward 128,
/// 512 positions.
pub fn tiny_config() -> BertConfig {
    let (_, vocab) = tiny_tokenizer_json();
    BertConfig::tiny(vocab, 32, 2, 4)
}

/// Writes a tiny random BERT model folder (`config.json`, `tokenizer.json`,
/// `model.safetensors`) to `dir`, deterministic in `seed`. Returns its configuration.
pub fn write_tiny_model(dir: &Path, seed: u64) -> Result<BertConfig> {
    let config = tiny_config();
    write_model(dir, &config, seed)?;
    Ok(config)
}

/// Writes a random model of any configuration with the tiny tokenizer (the configuration's
/// vocabulary must hold the tokenizer's).
pub fn write_model(dir: &Path, config: &BertConfig, seed: u64) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| TextError::io(dir, e))?;
    let (tokenizer, _) = tiny_tokenizer_json();
    crate::io::write_atomic(&dir.join("tokenizer.json"), tokenizer.as_bytes())?;
    let config_json = serde_json::to_vec_pretty(config)
        .map_err(|e| TextError::Config { path: dir.join("config.json"), reason: e.to_string() })?;
    crate::io::write_atomic(&dir.join("config.json"), &config_json)?;
    let mut random = RandomWeights::new(seed);
    let tensors = checkpoint_shapes(config)
        .into_iter()
        .map(|(name, shape)| {
            let data = random.tensor(&name, &shape)?;
            Ok((name, shape, data))
        })
        .collect::<Result<Vec<_>>>()?;
    crate::weights::write_safetensors(&dir.join("model.safetensors"), &tensors)
}
