//! Tests on a tiny random BERT written by the test: they run everywhere, in well under a second.

use std::path::Path;

use burn::backend::{Autodiff, Flex};
use burn::module::{AutodiffModule, Module};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::Tensor;
use tears_text::{
    EmbeddingCache, EncoderOptions, FineTuning, LoraConfig, Pooling, SentenceEncoder, TextEncoder, TextError, testing,
};

type B = Flex;
type AD = Autodiff<Flex>;

fn tiny(dir: &Path) -> SentenceEncoder<B> {
    testing::write_tiny_model(dir, 11).expect("write tiny model");
    SentenceEncoder::load(dir, &EncoderOptions::default(), &Default::default()).expect("load tiny model")
}

fn rows(t: Tensor<B, 2>) -> Vec<Vec<f32>> {
    let [_, d] = t.dims();
    let v: Vec<f32> = t.into_data().into_vec().expect("f32");
    v.chunks(d).map(<[f32]>::to_vec).collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

const LONG: &str = "the user enjoys slow dramas about friendship and love, with characters and stories; ";

#[test]
fn shapes_order_and_normalisation() {
    let dir = tempfile::tempdir().expect("tmp");
    let enc = tiny(dir.path());
    assert_eq!(enc.dim(), 32);
    let texts = ["the user enjoys quiet dramas", "", "horror", &LONG.repeat(3)];
    let all = rows(enc.encode(&texts).expect("encode"));
    assert_eq!(all.len(), 4);
    for v in &all {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
        assert!(v.iter().all(|x| x.is_finite()));
    }
    // Rows come back in input order: each equals the text encoded alone.
    for (i, t) in texts.iter().enumerate() {
        let alone = rows(enc.encode(&[t]).expect("encode"));
        assert!(max_diff(&alone[0], &all[i]) < 1e-5, "row {i}");
    }
    assert!(max_diff(&all[0], &all[2]) > 1e-3, "different texts, different vectors");
    assert_eq!(enc.encode(&[]).expect("empty batch").dims(), [0, 32]);
}

#[test]
fn padding_invariance_and_dynamic_padding() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut enc = tiny(dir.path());
    // The file asks for fixed padding to 128: the tokenizer must not pad.
    let ids = enc.tokenize(&["the user", "the user enjoys dramas"]).expect("tokenize");
    assert_eq!(ids[0], vec![2, 5, 7, 3], "[CLS] the user [SEP], no padding");
    assert_eq!(ids[1].len(), 6);
    let short = "the user likes comedies";
    let alone = rows(enc.encode(&[short]).expect("encode"));
    enc.set_batch_size(8);
    let batched = rows(enc.encode(&[&LONG.repeat(2), short, LONG, "a"]).expect("encode"));
    let d = max_diff(&alone[0], &batched[1]);
    assert!(d < 1e-5, "padding changed the embedding by {d}");
    // Unnormalised mean pooling too.
    let options = EncoderOptions { normalize: false, batch_size: 8, ..Default::default() };
    let raw = SentenceEncoder::<B>::load(dir.path(), &options, &Default::default()).expect("load");
    let a = rows(raw.encode(&[short]).expect("encode"));
    let b = rows(raw.encode(&[LONG, short]).expect("encode"));
    assert!(max_diff(&a[0], &b[1]) < 1e-5);
    let norm = a[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() > 1e-3, "normalize=false must not normalise (norm {norm})");
}

#[test]
fn long_texts_truncate_at_max_tokens() {
    let dir = tempfile::tempdir().expect("tmp");
    let enc = tiny(dir.path());
    let long = LONG.repeat(100);
    assert_eq!(enc.tokenize(&[&long]).expect("tokenize")[0].len(), 256);
    let options = EncoderOptions { max_tokens: 300, ..Default::default() };
    let wide = SentenceEncoder::<B>::load(dir.path(), &options, &Default::default()).expect("load");
    let ids = wide.tokenize(&[&long]).expect("tokenize");
    assert_eq!(ids[0].len(), 300);
    assert_eq!(ids[0].last(), Some(&3), "[SEP] is kept at the end");
    let v = rows(wide.encode(&[&long, ""]).expect("encode"));
    assert!(v.iter().flatten().all(|x| x.is_finite()));
    let too_long = EncoderOptions { max_tokens: 513, ..Default::default() };
    let err = SentenceEncoder::<B>::load(dir.path(), &too_long, &Default::default()).expect_err("513 > 512 positions");
    assert!(err.to_string().contains("max_position_embeddings 512"), "{err}");
}

#[test]
fn cls_pooling_differs_from_mean_pooling() {
    let dir = tempfile::tempdir().expect("tmp");
    let mean = tiny(dir.path());
    let options = EncoderOptions { pooling: Some(Pooling::Cls), ..Default::default() };
    let cls = SentenceEncoder::<B>::load(dir.path(), &options, &Default::default()).expect("load");
    let text = ["the user enjoys war films"];
    let m = rows(mean.encode(&text).expect("mean"));
    let c = rows(cls.encode(&text).expect("cls"));
    assert!(max_diff(&m[0], &c[0]) > 1e-3);
    let states = cls.model.hidden_states(
        cls.pad(&[&cls.tokenize(&text).expect("ids")[0]]).0,
        cls.pad(&[&cls.tokenize(&text).expect("ids")[0]]).1,
    );
    let first = states.slice([0..1, 0..1, 0..32]).reshape([1, 32]);
    let n = first.clone().powf_scalar(2.0).sum().sqrt();
    let expected = rows(first / n.unsqueeze::<2>());
    assert!(max_diff(&expected[0], &c[0]) < 1e-5);
}

fn expect_err(dir: &Path) -> TextError {
    SentenceEncoder::<B>::load(dir, &EncoderOptions::default(), &Default::default()).expect_err("must fail")
}

fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("config.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    edit(&mut v);
    std::fs::write(&path, serde_json::to_vec(&v).expect("ser")).expect("write");
}

#[test]
fn bad_model_folders_are_errors_naming_the_file() {
    let root = tempfile::tempdir().expect("tmp");
    let fresh = |name: &str| {
        let d = root.path().join(name);
        testing::write_tiny_model(&d, 1).expect("write");
        d
    };

    let err = expect_err(&root.path().join("nowhere"));
    assert!(matches!(err, TextError::MissingFile { .. }) && err.to_string().contains("nowhere"), "{err}");

    for (file, what) in [
        ("config.json", "config.json"),
        ("tokenizer.json", "tokenizer.json"),
        ("model.safetensors", "model.safetensors"),
    ] {
        let d = fresh(&format!("missing-{file}"));
        std::fs::remove_file(d.join(file)).expect("rm");
        let err = expect_err(&d);
        assert!(matches!(err, TextError::MissingFile { .. }) && err.to_string().contains(what), "{err}");
    }

    let d = fresh("t5");
    edit_config(&d, |v| v["model_type"] = "t5".into());
    let err = expect_err(&d);
    assert!(err.to_string().contains("config.json") && err.to_string().contains("\"t5\""), "{err}");

    let d = fresh("relu");
    edit_config(&d, |v| v["hidden_act"] = "relu".into());
    assert!(expect_err(&d).to_string().contains("hidden_act \"relu\""));

    let d = fresh("heads");
    edit_config(&d, |v| v["num_attention_heads"] = 5.into());
    assert!(expect_err(&d).to_string().contains("not a multiple of num_attention_heads 5"));

    let d = fresh("garbage-config");
    std::fs::write(d.join("config.json"), "{ not json").expect("write");
    let err = expect_err(&d);
    assert!(matches!(err, TextError::Config { .. }) && err.to_string().contains("config.json"), "{err}");

    // Shapes that disagree with config.json.
    let d = fresh("wide");
    edit_config(&d, |v| v["hidden_size"] = 48.into());
    let err = expect_err(&d);
    let msg = err.to_string();
    assert!(matches!(err, TextError::TensorShape { .. }), "{msg}");
    assert!(msg.contains("model.safetensors") && msg.contains("48"), "{msg}");

    let d = fresh("deep");
    edit_config(&d, |v| v["num_hidden_layers"] = 3.into());
    let err = expect_err(&d);
    assert!(matches!(&err, TextError::MissingTensor { name, .. } if name.starts_with("encoder.layer.2.")), "{err}");
    assert!(err.to_string().contains("model.safetensors"));

    let d = fresh("small-vocab");
    edit_config(&d, |v| v["vocab_size"] = 10.into());
    let err = expect_err(&d);
    assert!(err.to_string().contains("tokenizer.json") && err.to_string().contains("10 embeddings"), "{err}");

    let d = fresh("garbage-weights");
    std::fs::write(d.join("model.safetensors"), b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage").expect("write");
    let err = expect_err(&d);
    assert!(matches!(err, TextError::Weights { .. } | TextError::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("model.safetensors"), "{err}");

    let d = fresh("not-bert");
    tears_text::write_safetensors(&d.join("model.safetensors"), &[("decoder.weight".into(), vec![2], vec![1.0, 2.0])])
        .expect("write");
    let err = expect_err(&d);
    assert!(err.to_string().contains("not a BERT checkpoint"), "{err}");

    let d = fresh("garbage-tokenizer");
    std::fs::write(d.join("tokenizer.json"), "[1, 2]").expect("write");
    let err = expect_err(&d);
    assert!(matches!(err, TextError::Tokenizer { .. }) && err.to_string().contains("tokenizer.json"), "{err}");
}

#[test]
fn bert_prefixed_and_half_precision_checkpoints_load() {
    let dir = tempfile::tempdir().expect("tmp");
    let plain = tiny(dir.path());
    let reference = rows(plain.encode(&["the user loves animated musicals"]).expect("encode"));
    // Rewrite the weights as `bert.`-prefixed f16 tensors (a BertForMaskedLM-style checkpoint).
    let bytes = std::fs::read(dir.path().join("model.safetensors")).expect("read");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("parse");
    let mut halves = Vec::new();
    for (name, view) in st.tensors() {
        let data: Vec<u8> = view
            .data()
            .chunks_exact(4)
            .flat_map(|c| half::f16::from_f32(f32::from_le_bytes([c[0], c[1], c[2], c[3]])).to_le_bytes())
            .collect();
        halves.push((format!("bert.{name}"), view.shape().to_vec(), data));
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = halves
        .iter()
        .map(|(n, s, d)| {
            (n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F16, s.clone(), d).expect("view"))
        })
        .collect();
    std::fs::write(dir.path().join("model.safetensors"), safetensors::serialize(views, None).expect("ser"))
        .expect("write");
    let half_enc =
        SentenceEncoder::<B>::load(dir.path(), &EncoderOptions::default(), &Default::default()).expect("load f16");
    let got = rows(half_enc.encode(&["the user loves animated musicals"]).expect("encode"));
    let d = max_diff(&reference[0], &got[0]);
    assert!(d < 2e-2 && d > 0.0, "f16 weights: max difference {d}");
}

#[test]
fn embedding_cache_encodes_each_text_once() {
    let dir = tempfile::tempdir().expect("tmp");
    let enc = tiny(&dir.path().join("model"));
    let cache = EmbeddingCache::open(&dir.path().join("cache")).expect("cache");
    let texts = ["the user enjoys horror", "a family comedy", "the user enjoys horror", ""];
    let mut first_report = Vec::new();
    let a = enc.encode_cached(&texts, &cache, &mut |n| first_report.push(n)).expect("encode");
    assert_eq!(first_report[0], 0, "nothing cached at first");
    let key = enc.model_key().expect("key").to_string();
    assert_eq!(cache.len(&key), 3, "three distinct texts");
    let mut second_report = Vec::new();
    let b = enc.encode_cached(&texts, &cache, &mut |n| second_report.push(n)).expect("encode");
    assert_eq!(second_report, vec![4], "all four from the cache, no forward pass");
    assert_eq!(a, b);
    let direct = rows(enc.encode(&texts).expect("encode"));
    for (x, y) in a.iter().zip(&direct) {
        assert!(max_diff(x, y) < 1e-6);
    }
    // Another model (other weights) has another key.
    testing::write_tiny_model(&dir.path().join("model2"), 12).expect("write");
    let other = SentenceEncoder::<B>::load(&dir.path().join("model2"), &EncoderOptions::default(), &Default::default())
        .expect("load");
    assert_ne!(other.model_key().expect("key"), key);
}

/// Float parameters of a module, flattened, in visiting order.
fn snapshot<M: burn::module::Module<AD>>(m: &M) -> Vec<Vec<f32>> {
    struct Collect(Vec<Vec<f32>>);
    impl burn::module::ModuleVisitor<AD> for Collect {
        fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<AD, D>>) {
            self.0.push(p.val().into_data().into_vec().expect("f32"));
        }
    }
    let mut c = Collect(Vec::new());
    m.visit(&mut c);
    c.0
}

fn one_step(enc: &SentenceEncoder<AD>, model: tears_text::BertModel<AD>) -> tears_text::BertModel<AD> {
    let texts = ["the user enjoys quiet dramas", "the user loves loud action films and war"];
    let ids = enc.tokenize(&texts).expect("tokenize");
    let (ids, mask) = enc.pad(&[&ids[0], &ids[1]]);
    let mut optim = AdamConfig::new().init::<AD, tears_text::BertModel<AD>>();
    let mut model = model;
    for _ in 0..2 {
        let out = model.forward(ids.clone(), mask.clone());
        let target = Tensor::<AD, 2>::ones([2, enc.dim()], &Default::default());
        let loss = (out - target).powf_scalar(2.0).mean();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-2, model, grads);
    }
    model
}

#[test]
fn lora_trains_adapters_and_leaves_pretrained_weights_frozen() {
    let dir = tempfile::tempdir().expect("tmp");
    testing::write_tiny_model(dir.path(), 3).expect("write");
    let enc = SentenceEncoder::<AD>::load(dir.path(), &EncoderOptions::default(), &Default::default()).expect("load");
    let base = enc.model.clone();
    let frozen_before = snapshot(&base);
    let lora = LoraConfig { rank: 2, scale: 2.0, dropout: 0.1, seed: 5 };
    let model = enc.model.clone().fine_tuning(&FineTuning::Lora(lora)).expect("lora");
    // 2 layers × q, k, v × (32·2 + 2·32).
    assert_eq!(model.trainable_params(), 2 * 3 * (32 * 2 + 2 * 32));
    // Adapters start at zero: the adapted model equals the base model.
    let ids = enc.tokenize(&["a family comedy"]).expect("ids");
    let (i, m) = enc.pad(&[&ids[0]]);
    let same = max_diff(
        &model.valid().forward(i.clone().inner(), m.clone().inner()).into_data().into_vec::<f32>().expect("v"),
        &base.valid().forward(i.inner(), m.inner()).into_data().into_vec::<f32>().expect("v"),
    );
    assert!(same < 1e-6, "{same}");
    let adapters_before: Vec<Vec<f32>> =
        model.layers.iter().flat_map(|l| snapshot(l.attention.lora.as_ref().expect("lora"))).collect();
    let trained = one_step(&enc, model);
    let adapters_after: Vec<Vec<f32>> =
        trained.layers.iter().flat_map(|l| snapshot(l.attention.lora.as_ref().expect("lora"))).collect();
    let changed = adapters_before.iter().zip(&adapters_after).filter(|(a, b)| a != b).count();
    assert_eq!(changed, adapters_before.len(), "every adapter matrix moved");
    // The pretrained weights: identical, bit for bit.
    let mut without_lora = trained;
    for l in &mut without_lora.layers {
        l.attention.lora = None;
    }
    assert_eq!(snapshot(&without_lora), frozen_before);
}

#[test]
fn top_layers_train_and_the_rest_stays_frozen() {
    let dir = tempfile::tempdir().expect("tmp");
    testing::write_tiny_model(dir.path(), 4).expect("write");
    let enc = SentenceEncoder::<AD>::load(dir.path(), &EncoderOptions::default(), &Default::default()).expect("load");
    let layer_params = 32 * 96 + 96 + 32 * 32 + 32 + 2 * 32 + 32 * 128 + 128 + 128 * 32 + 32 + 2 * 32;
    let model = enc.model.clone().fine_tuning(&FineTuning::TopLayers(1)).expect("top 1");
    assert_eq!(model.trainable_params(), layer_params);
    let before_bottom = snapshot(&model.layers[0]);
    let before_top = snapshot(&model.layers[1]);
    let before_embeddings = (snapshot(&model.word_embeddings), snapshot(&model.embeddings_norm));
    let trained = one_step(&enc, model);
    assert_eq!(snapshot(&trained.layers[0]), before_bottom, "bottom layer frozen");
    assert_eq!((snapshot(&trained.word_embeddings), snapshot(&trained.embeddings_norm)), before_embeddings);
    let after_top = snapshot(&trained.layers[1]);
    assert!(before_top.iter().zip(&after_top).all(|(a, b)| a != b), "every top-layer tensor moved");

    let frozen = enc.model.clone().fine_tuning(&FineTuning::Frozen).expect("frozen");
    assert_eq!(frozen.trainable_params(), 0);
    let full = enc.model.clone().fine_tuning(&FineTuning::Full).expect("full");
    assert_eq!(full.trainable_params(), full.num_params());
    let err = enc.model.clone().fine_tuning(&FineTuning::TopLayers(3)).expect_err("only 2 layers");
    assert!(err.to_string().contains("3 top layers"));
    let err = enc.model.clone().fine_tuning(&FineTuning::Lora(LoraConfig { rank: 0, ..Default::default() }));
    assert!(err.is_err());
}
