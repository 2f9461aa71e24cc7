//! End-to-end runs of the `tears` binary.

use std::process::Command;

fn tears() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tears"))
}

#[test]
fn prepare_synthetic_writes_a_loadable_split() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("split");
    let run = tears()
        .args(["prepare", "--dataset", "synthetic", "--seed", "3", "--out"])
        .arg(&out)
        .output()
        .expect("run tears");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("train_users") && stdout.contains("test_users"), "{stdout}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("split.json")).expect("split.json")).expect("json");
    assert_eq!(json["dataset"], "synthetic");
    assert_eq!(json["protocol"], "random-holdout");
    assert_eq!(json["seed"], 3);
    let split = tears_data::Split::load(&out).expect("load split");
    assert_eq!(split.meta.counts.train_users as u64, json["counts"]["train_users"].as_u64().expect("count"));
    assert!(stdout.contains(&format!("{}", split.meta.counts.items)));
}

#[test]
fn prepare_summary_window_with_overrides() {
    let dir = tempfile::tempdir().expect("tmp");
    let run = tears()
        .args(["prepare", "--dataset", "synthetic", "--protocol", "summary-window", "--window", "30"])
        .args(["--min-heldout", "5", "--validation-users", "40", "--test-users", "60", "--out"])
        .arg(dir.path())
        .output()
        .expect("run tears");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let split = tears_data::Split::load(dir.path()).expect("load split");
    assert_eq!(split.meta.protocol, "summary-window");
    assert_eq!(split.meta.counts.validation_users + split.meta.counts.test_users, 100);
}

#[test]
fn bad_requests_fail_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tmp");
    // An unknown dataset is a usage error (exit code 2) that lists the datasets.
    let run = tears().args(["prepare", "--dataset", "imdb", "--out"]).arg(dir.path()).output().expect("run");
    assert_eq!(run.status.code(), Some(2));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("invalid value 'imdb' for '--dataset <DATASET>'"), "{err}");
    assert!(err.contains(&format!("[possible values: {}]", tears::data::named::DATASET_NAMES.join(", "))), "{err}");

    let run = tears()
        .args(["prepare", "--dataset", "ml1m", "--data-dir"])
        .arg(dir.path())
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .expect("run");
    assert_eq!(run.status.code(), Some(1));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("movies.dat") && err.contains("MovieLens 1M"), "{err}");
}

/// Runs `tears` with `args` and returns its stderr, after checking that clap refused the command
/// line (exit code 2).
fn usage_error(args: &[&str]) -> String {
    let run = tears().args(args).output().expect("run");
    let err = String::from_utf8_lossy(&run.stderr).into_owned();
    assert_eq!(run.status.code(), Some(2), "{err}");
    err
}

#[test]
fn unknown_backends_and_sets_are_usage_errors_that_list_the_possible_values() {
    let paths = ["--model", "m", "--split", "s"];
    let err = usage_error(&[&["evaluate", "--backend", "tpu"], &paths[..]].concat());
    assert!(err.contains("invalid value 'tpu' for '--backend <BACKEND>'"), "{err}");
    assert!(err.contains("[possible values: flex, ndarray, cuda]"), "{err}");
    let err = usage_error(&["train", "multvae", "--backend", "tpu", "--split", "s", "--out", "o"]);
    assert!(err.contains("[possible values: flex, ndarray, cuda]"), "{err}");
    let err = usage_error(&["embed", "--backend", "tpu", "--summaries", "s.jsonl", "--out", "o.npy"]);
    assert!(err.contains("[possible values: flex, ndarray, cuda]"), "{err}");

    let err = usage_error(&[&["evaluate", "--set", "train"], &paths[..]].concat());
    assert!(err.contains("invalid value 'train' for '--set <SET>'"), "{err}");
    assert!(err.contains("[possible values: test, validation]"), "{err}");
    let err = usage_error(&["summarize", "--template", "--set", "everyone", "--split", "s", "--out", "o.jsonl"]);
    assert!(err.contains("invalid value 'everyone' for '--set <SET>'"), "{err}");
    assert!(err.contains("[possible values: train, validation, test, all]"), "{err}");

    let err = usage_error(&["prepare", "--dataset", "synthetic", "--protocol", "leave-one-out", "--out", "o"]);
    assert!(err.contains("[possible values: random-holdout, summary-window]"), "{err}");
}

#[test]
fn help_lists_the_model_kinds_the_choices_and_the_library_defaults() {
    let help = |args: &[&str]| {
        let run = tears().args(args).arg("--help").output().expect("run");
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        String::from_utf8_lossy(&run.stdout).into_owned()
    };
    let train = help(&["train"]);
    // Every kind of the registry can be trained.
    for kind in tears::recommender::ModelKind::ALL.map(|k| k.name()) {
        assert!(train.lines().any(|l| l.trim_start().starts_with(&format!("{kind} "))), "{kind}: {train}");
    }
    // Each backbone shows its own reference schedule.
    for kind in tears::vae::BackboneKind::ALL {
        let h = help(&["train", kind.name()]);
        let d = kind.default_train();
        assert!(h.contains(&format!("Epochs [default: {}]", d.epochs)), "{kind}: {h}");
        assert!(h.contains(&format!("[default: {}]", d.lr)) && h.contains("[default: flex]"), "{kind}: {h}");
    }
    let ease = help(&["train", "ease"]);
    let lambdas = tears::baselines::ease::DEFAULT_LAMBDAS.map(|l| l.to_string()).join(" ");
    assert!(ease.contains(&format!("[default: {lambdas}]")) && ease.contains("[default: 8]"), "{ease}");
    let evaluate = help(&["evaluate"]);
    assert!(evaluate.contains("[default: 10 20 50 100]") && evaluate.contains("[default: test]"), "{evaluate}");
    let prepare = help(&["prepare"]);
    assert!(prepare.contains(&tears::data::named::DATASET_NAMES.join(", ")), "{prepare}");
}

#[test]
fn train_needs_a_model_kind_and_keeps_the_popularity_alias() {
    // Without a kind, the usage error lists them.
    let err = usage_error(&["train"]);
    assert!(err.contains("ease") && err.contains("macridvae"), "{err}");
    let dir = tempfile::tempdir().expect("tmp");
    let split = synthetic_split(dir.path());
    let run = tears()
        .args(["train", "popularity", "--no-progress", "--split"])
        .arg(&split)
        .arg("--out")
        .arg(dir.path().join("pop"))
        .output()
        .expect("train");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(String::from_utf8_lossy(&run.stdout).contains("fitted pop"));
}

#[test]
fn backends_lists_and_probes_each_compiled_backend() {
    let run = tears().arg("backends").output().expect("run");
    let stdout = String::from_utf8_lossy(&run.stdout);
    for name in ["flex", "ndarray", "cuda"] {
        assert!(stdout.contains(name), "{stdout}");
    }
    if cfg!(not(feature = "cuda")) {
        assert!(run.status.success(), "{stdout}");
        assert!(stdout.contains("flex     ok"), "{stdout}");
    }
}

/// Asserts that a run succeeded (showing its output if not) and returns its stdout.
fn ok(run: std::process::Output) -> String {
    assert!(run.status.success(), "{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    String::from_utf8_lossy(&run.stdout).to_string()
}

fn synthetic_split(dir: &std::path::Path) -> std::path::PathBuf {
    let out = dir.join("split");
    let run = tears().args(["prepare", "--dataset", "synthetic", "--out"]).arg(&out).output().expect("run tears");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    out
}

#[test]
fn summarize_with_the_template_writes_every_user_and_resumes() {
    let dir = tempfile::tempdir().expect("tmp");
    let split_dir = synthetic_split(dir.path());
    let out = dir.path().join("s.jsonl");
    // The same command twice: the second run must find every user already summarized.
    let summarize = || {
        tears()
            .args(["summarize", "--template", "--set", "test", "--no-progress", "--split"])
            .arg(&split_dir)
            .arg("--out")
            .arg(&out)
            .output()
            .expect("run")
    };
    let run = summarize();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let split = tears_data::Split::load(&split_dir).expect("split");
    let stored = tears_data::StoredSummaries::load(&out).expect("summaries");
    assert_eq!(stored.len(), split.test.len());
    assert!(split.test.users().iter().all(|u| stored.get(*u).is_some_and(|t| t.starts_with("Summary: "))));
    let run = summarize();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains(" 0 summarized") && stdout.contains(&format!("{} already in", split.test.len())),
        "{stdout}"
    );
}

#[test]
fn summarize_with_an_llm_server_resumes_and_never_shows_the_key() {
    use tears_summarize::mock::{MockReply, MockServer};
    let dir = tempfile::tempdir().expect("tmp");
    let split_dir = synthetic_split(dir.path());
    let out = dir.path().join("s.jsonl");
    let key = "sk-cli-SECRET-42";
    let server = MockServer::start(|n, _| {
        if n == 3 {
            MockReply::Status { status: 503, retry_after: Some("0".into()), body: "busy".into() }
        } else {
            MockReply::Completion("Summary: The user enjoys quiet dramas and gentle comedies about families.".into())
        }
    })
    .expect("server");
    let summarize = |limit: &str| {
        tears()
            .args(["summarize", "--model", "mock", "--set", "validation", "--concurrency", "2", "--no-progress"])
            .args(["--backoff-s", "0.01", "--api-key-env", "TEARS_TEST_KEY", "--limit", limit, "--llm-url"])
            .arg(server.url())
            .arg("--split")
            .arg(&split_dir)
            .arg("--out")
            .arg(&out)
            .env("TEARS_TEST_KEY", key)
            .env("RUST_LOG", "debug")
            .output()
            .expect("run")
    };
    let run = summarize("5");
    let all = format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "{all}");
    assert!(!all.contains(key), "the key leaked: {all}");
    assert_eq!(server.requests(), 6, "5 users + one 503 retried");
    assert!(server.received().iter().all(|r| r.header("authorization") == Some(&format!("Bearer {key}"))));
    let run = summarize("8");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(server.requests(), 9, "the rerun asks only for the 3 new users");
    let text = std::fs::read_to_string(&out).expect("cache");
    assert_eq!(text.lines().count(), 8);
    assert!(!text.contains(key));
}

#[test]
fn summarize_needs_a_summarizer() {
    let dir = tempfile::tempdir().expect("tmp");
    let split_dir = synthetic_split(dir.path());
    let run = tears()
        .args(["summarize", "--split"])
        .arg(&split_dir)
        .arg("--out")
        .arg(dir.path().join("s.jsonl"))
        .output()
        .expect("run");
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&run.stderr).contains("--template, or --llm-url"));
}

#[test]
fn train_and_evaluate_baselines_end_to_end() {
    let dir = tempfile::tempdir().expect("tmp");
    let split = dir.path().join("split");
    let run = tears().args(["prepare", "--dataset", "synthetic", "--out"]).arg(&split).output().expect("prepare");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));

    let mut ndcg20 = std::collections::HashMap::new();
    for model in ["ease", "pop"] {
        let out = dir.path().join(model);
        let run = tears().args(["train", model, "--seed", "4", "--split"]).arg(&split).arg("--out").arg(&out).output();
        let run = run.expect("train");
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(stdout.contains("fitted") && stdout.contains('s'), "{stdout}");
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("manifest.json")).expect("manifest")).expect("json");
        assert_eq!(manifest["kind"], model);
        assert_eq!(manifest["dataset"], "synthetic");
        assert_eq!(manifest["seed"], 4);
        let loaded = tears_data::Split::load(&split).expect("split");
        assert_eq!(manifest["vocabulary_hash"], format!("{:016x}", loaded.vocabulary_hash()));

        let json = dir.path().join(format!("{model}.json"));
        let run = tears()
            .args(["evaluate", "--k", "20,50", "--model"])
            .arg(&out)
            .arg("--split")
            .arg(&split)
            .arg("--json")
            .arg(&json)
            .output()
            .expect("evaluate");
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(stdout.contains("ndcg") && stdout.contains("±"), "{stdout}");
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).expect("json file")).expect("json");
        let obj = v.as_object().expect("object");
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["dataset", "excluded", "metrics", "model", "set", "users"]);
        assert_eq!(
            (v["model"].as_str(), v["dataset"].as_str(), v["set"].as_str()),
            (Some(model), Some("synthetic"), Some("test"))
        );
        assert_eq!(v["users"].as_u64(), Some(loaded.test.len() as u64));
        assert_eq!(v["excluded"].as_u64(), Some(0));
        let metrics = v["metrics"].as_object().expect("metrics");
        let mut names: Vec<&str> = metrics.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["ndcg@20", "ndcg@50", "plain_recall@20", "plain_recall@50", "recall@20", "recall@50"]);
        for (name, m) in metrics {
            let mean = m["mean"].as_f64().expect("mean");
            let stderr = m["stderr"].as_f64().expect("stderr");
            assert!((0.0..=1.0).contains(&mean) && stderr > 0.0 && stderr < 0.1, "{name}: {m}");
            assert_eq!(m.as_object().map(|o| o.len()), Some(2));
        }
        ndcg20.insert(model, metrics["ndcg@20"]["mean"].as_f64().expect("ndcg"));
    }
    assert!(ndcg20["ease"] > 1.3 * ndcg20["pop"], "{ndcg20:?}");

    // A model evaluated against a split with another item vocabulary is refused.
    let manifest_path = dir.path().join("ease").join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).expect("manifest")).expect("json");
    manifest["vocabulary_hash"] = serde_json::Value::from("0123456789abcdef");
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).expect("ser")).expect("write");
    let run = tears()
        .args(["evaluate", "--model"])
        .arg(dir.path().join("ease"))
        .arg("--split")
        .arg(&split)
        .output()
        .expect("evaluate");
    assert_eq!(run.status.code(), Some(1));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("vocabulary") && err.contains("0123456789abcdef"), "{err}");

    // The memory guard reaches the command line.
    let run = tears()
        .args(["train", "ease", "--memory-limit-gib", "0.0000001", "--split"])
        .arg(&split)
        .arg("--out")
        .arg(dir.path().join("big"))
        .output()
        .expect("train");
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&run.stderr).contains("memory limit"));
}

#[test]
fn train_a_backbone_resume_it_and_evaluate_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let split = synthetic_split(dir.path());
    let out = dir.path().join("multvae");
    let train = |epochs: &str| {
        tears()
            .args(["train", "multvae", "--epochs", epochs, "--patience", "0", "--no-progress", "--split"])
            .arg(&split)
            .arg("--out")
            .arg(&out)
            .output()
            .expect("train")
    };
    let run = train("2");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("2 epochs") && stdout.contains("best epoch"), "{stdout}");
    // Asking for more epochs continues from the checkpoint.
    let run = train("3");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("resumed after epoch 2") && stdout.contains("3 epochs"), "{stdout}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).expect("manifest")).expect("json");
    assert_eq!(manifest["kind"], "multvae");
    assert_eq!(manifest["hyper_parameters"]["model"]["latent"], 200);
    assert_eq!(manifest["hyper_parameters"]["summary"]["epochs_run"], 3);
    let log: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("train_log.json")).expect("log")).expect("json");
    assert_eq!(log.as_array().map(Vec::len), Some(3));

    let json = dir.path().join("multvae.json");
    let run = tears()
        .args(["evaluate", "--k", "20", "--model"])
        .arg(&out)
        .arg("--split")
        .arg(&split)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("evaluate");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).expect("json file")).expect("json");
    assert_eq!(v["model"], "multvae");
    let ndcg = v["metrics"]["ndcg@20"]["mean"].as_f64().expect("ndcg");
    assert!(ndcg > 0.0 && ndcg <= 1.0, "{v}");

    // A backend this build lacks is a clear error, not a panic.
    if !cfg!(feature = "cuda") {
        let run = tears()
            .args(["evaluate", "--backend", "cuda", "--model"])
            .arg(&out)
            .arg("--split")
            .arg(&split)
            .output()
            .expect("evaluate");
        assert_eq!(run.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&run.stderr).contains("cuda"));
    }
}

#[test]
fn macridvae_takes_its_hyper_parameters_from_flags_and_refuses_a_tiny_tau() {
    let dir = tempfile::tempdir().expect("tmp");
    let split = synthetic_split(dir.path());
    let out = dir.path().join("macridvae");
    let train = |extra: &[&str]| {
        tears()
            .args(["train", "macridvae", "--epochs", "1", "--no-progress", "--split"])
            .arg(&split)
            .arg("--out")
            .arg(&out)
            .args(extra)
            .output()
            .expect("train")
    };
    let run = train(&["--concepts", "2", "--dim", "16", "--tau", "0.2", "--beta-cap", "0.5"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).expect("manifest")).expect("json");
    let model = &manifest["hyper_parameters"]["model"];
    assert_eq!((model["concepts"].as_u64(), model["dim"].as_u64()), (Some(2), Some(16)), "{model}");
    let close = |key: &str, want: f64| (model[key].as_f64().expect(key) - want).abs() < 1e-6;
    assert!(close("tau", 0.2) && close("beta_cap", 0.5), "{model}");
    // Flags left out keep the benchmark's setting (the reference values on synthetic data).
    assert!(close("sigma0", 0.075), "{model}");
    let run = train(&["--tau", "0.01", "--restart"]);
    assert_eq!(run.status.code(), Some(1));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("tau 0.01") && err.contains("0.02"), "{err}");
}

/// Reads a float32 `.npy` file: (shape, values).
fn read_npy(path: &std::path::Path) -> ((usize, usize), Vec<f32>) {
    let bytes = std::fs::read(path).expect("npy");
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + hlen]).expect("header");
    assert!(header.contains("'descr': '<f4'") && header.contains("'fortran_order': False"), "{header}");
    let shape = header.split("'shape': (").nth(1).and_then(|s| s.split(')').next()).expect("shape");
    let dims: Vec<usize> = shape.split(',').filter_map(|d| d.trim().parse().ok()).collect();
    let values = bytes[10 + hlen..].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    ((dims[0], dims[1]), values)
}

#[test]
fn embed_writes_npy_and_safetensors_with_a_tiny_model() {
    use burn::backend::Flex;
    use tears_text::{EncoderOptions, SentenceEncoder, TextEncoder};
    let dir = tempfile::tempdir().expect("tmp");
    let model = dir.path().join("model");
    tears_text::testing::write_tiny_model(&model, 5).expect("tiny model");
    // The JSONL of `tears summarize` (extra fields, a user repeated: the later line wins).
    let jsonl = dir.path().join("s.jsonl");
    std::fs::write(
        &jsonl,
        concat!(
            r#"{"user": 12, "prompt_hash": "x", "model": "m", "text": "Summary: the user enjoys horror."}"#,
            "\n",
            r#"{"user": 3, "prompt_hash": "x", "model": "m", "text": ""}"#,
            "\n",
            r#"{"user": 7, "prompt_hash": "x", "model": "m", "text": "old"}"#,
            "\n",
            r#"{"user": 7, "prompt_hash": "x", "model": "m", "text": "Summary: a family comedy with kids."}"#,
            "\n"
        ),
    )
    .expect("write");
    let out = dir.path().join("emb.npy");
    let cache = dir.path().join("cache");
    let embed = |summaries: &std::path::Path, out: &std::path::Path| {
        tears()
            .args(["embed", "--no-progress", "--batch-size", "2", "--model-dir"])
            .arg(&model)
            .arg("--summaries")
            .arg(summaries)
            .arg("--out")
            .arg(out)
            .arg("--cache")
            .arg(&cache)
            .output()
            .expect("run")
    };
    let run = embed(&jsonl, &out);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let ((n, d), values) = read_npy(&out);
    assert_eq!((n, d), (3, 32));
    let users = std::fs::read_to_string(dir.path().join("emb.users.txt")).expect("sidecar");
    // Rows in input order (first appearance of each user).
    assert_eq!(users.lines().collect::<Vec<_>>(), ["12", "3", "7"]);
    let encoder = SentenceEncoder::<Flex>::load(&model, &EncoderOptions::default(), &Default::default()).expect("load");
    let expected: Vec<f32> = encoder
        .encode(&["Summary: the user enjoys horror.", "", "Summary: a family comedy with kids."])
        .expect("encode")
        .into_data()
        .into_vec()
        .expect("f32");
    let diff = values.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(diff < 1e-5, "rows differ from the library's vectors by {diff}");
    let key = encoder.model_key().expect("key").to_string();
    assert_eq!(tears_text::EmbeddingCache::open(&cache).expect("cache").len(&key), 3);

    // Two shards, merged: the whole file's rows in ascending user order, with their ids.
    let parts: Vec<std::path::PathBuf> = (0..2).map(|i| dir.path().join(format!("part{i}.npy"))).collect();
    for (i, part) in parts.iter().enumerate() {
        let run = tears()
            .args(["embed", "--no-progress", "--shard", &format!("{i}/2"), "--model-dir"])
            .arg(&model)
            .arg("--summaries")
            .arg(&jsonl)
            .arg("--out")
            .arg(part)
            .output()
            .expect("run");
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    }
    let merged = dir.path().join("merged.npy");
    let run = tears().args(["merge", "--out"]).arg(&merged).args(&parts).output().expect("merge");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let ((m, md), merged_values) = read_npy(&merged);
    assert_eq!((m, md), (3, 32));
    let merged_users = std::fs::read_to_string(dir.path().join("merged.users.txt")).expect("sidecar");
    assert_eq!(merged_users.lines().collect::<Vec<_>>(), ["3", "7", "12"]);
    // Whole rows 12, 3, 7 -> sorted 3, 7, 12.
    let row = |v: &[f32], r: usize| v[r * 32..(r + 1) * 32].to_vec();
    for (merged_row, whole_row) in [(0, 1), (1, 2), (2, 0)] {
        let (a, b) = (row(&merged_values, merged_row), row(&values, whole_row));
        let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(diff < 1e-5, "merged row {merged_row} differs from whole row {whole_row} by {diff}");
    }

    // A JSON object keyed like the shipped file, to safetensors.
    let json = dir.path().join("s.json");
    std::fs::write(&json, r#"{"12.0": "Summary: the user enjoys horror.", "3.0": ""}"#).expect("write");
    let st = dir.path().join("emb.safetensors");
    let run = embed(&json, &st);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let bytes = std::fs::read(&st).expect("safetensors");
    let file = safetensors::SafeTensors::deserialize(&bytes).expect("parse");
    let emb = file.tensor("embeddings").expect("embeddings");
    assert_eq!((emb.dtype(), emb.shape()), (safetensors::Dtype::F32, &[2usize, 32][..]));
    let ids = file.tensor("users").expect("users");
    let ids: Vec<u64> = ids.data().chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8"))).collect();
    assert_eq!(ids, [12, 3], "rows in the file's key order");
    let first: Vec<f32> =
        emb.data()[..128].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4"))).collect();
    assert!(first.iter().zip(&values[..32]).all(|(a, b)| (a - b).abs() < 1e-6), "user 12 matches the .npy row");

    // Bad requests: a model folder without weights, an unknown output format.
    std::fs::remove_file(model.join("model.safetensors")).expect("rm");
    let run = embed(&jsonl, &dir.path().join("x.npy"));
    assert_eq!(run.status.code(), Some(1));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("model.safetensors") && err.contains("missing"), "{err}");
    let run = embed(&jsonl, &dir.path().join("x.csv"));
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&run.stderr).contains(".npy or .safetensors"));
}

#[test]
fn train_tears_and_gers_on_a_backbone_and_evaluate_them_at_every_alpha() {
    let dir = tempfile::tempdir().expect("tmp");
    let split = synthetic_split(dir.path());
    let summaries = dir.path().join("template.jsonl");
    ok(tears()
        .args(["summarize", "--template", "--no-progress", "--split"])
        .arg(&split)
        .arg("--out")
        .arg(&summaries)
        .output()
        .expect("summarize"));
    let backbone = dir.path().join("multvae");
    ok(tears()
        .args(["train", "multvae", "--epochs", "3", "--no-progress", "--split"])
        .arg(&split)
        .arg("--out")
        .arg(&backbone)
        .output()
        .expect("train the backbone"));
    let model = dir.path().join("tears-multvae");
    let stdout = ok(tears()
        .args(["train", "tears", "--backbone", "multvae", "--encoder", "hashing", "--epochs", "2", "--no-progress"])
        .arg("--backbone-model")
        .arg(&backbone)
        .arg("--summaries")
        .arg(&summaries)
        .arg("--split")
        .arg(&split)
        .arg("--out")
        .arg(&model)
        .output()
        .expect("train tears"));
    assert!(stdout.contains("validation ndcg@20 by alpha") && stdout.contains("alpha* = "), "{stdout}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model.join("manifest.json")).expect("manifest")).expect("json");
    assert_eq!(manifest["kind"], "tears");
    let record = &manifest["hyper_parameters"];
    assert_eq!(record["encoder"]["identity"]["kind"], "hashing");
    assert_eq!(record["backbone"]["vocabulary_hash"], manifest["vocabulary_hash"]);
    assert_eq!(record["validation_sweep"].as_array().map(Vec::len), Some(11));
    assert!(record["summaries"]["sha256"].as_str().is_some_and(|h| h.len() == 64));

    let json = dir.path().join("sweep.json");
    let stdout = ok(tears()
        .args(["evaluate", "--alpha", "sweep", "--k", "20", "--model"])
        .arg(&model)
        .arg("--split")
        .arg(&split)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("evaluate"));
    assert!(stdout.contains("at alpha 0.0") && stdout.contains("at alpha 1.0"), "{stdout}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).expect("json file")).expect("json");
    let rows = v.as_array().expect("one summary per alpha");
    assert_eq!(rows.len(), 11);
    assert_eq!(rows[10]["alpha"], 1.0);
    assert!(rows.iter().all(|r| r["model"] == "tears" && r["metrics"]["ndcg@20"]["mean"].as_f64().is_some()));

    // Recommendations for a typed sentence (cold start), as JSON.
    let stdout = ok(tears()
        .args(["recommend", "--summary", "Loves westerns and quiet dramas.", "-k", "5", "--json", "--model"])
        .arg(&model)
        .output()
        .expect("recommend"));
    let r: serde_json::Value = serde_json::from_str(&stdout).expect("recommendation JSON");
    assert_eq!((r["alpha"].as_f64(), r["cold_start"].as_bool()), (Some(1.0), Some(true)), "{stdout}");
    let items = r["items"].as_array().expect("items");
    assert_eq!(items.len(), 5);
    assert!(items.iter().all(|i| i["title"].is_string() && i["genres"].is_array() && i["score"].is_number()));
    // A test user of the split, with their summary and history, explained.
    let foldin = std::fs::read_to_string(split.join("test_foldin.csv")).expect("fold-in");
    let user = foldin.lines().nth(1).and_then(|l| l.split(',').next()).expect("a test user").to_string();
    let stdout = ok(tears()
        .args(["recommend", "--explain", "-k", "3", "--alpha", "0.5", "--user", &user, "--split"])
        .arg(&split)
        .arg("--model")
        .arg(&model)
        .output()
        .expect("recommend"));
    assert!(stdout.contains("alpha 0.5") && stdout.contains("a=0") && stdout.contains("without '"), "{stdout}");
    // Bad requests: a clear error each.
    let history = dir.path().join("history.csv");
    std::fs::write(&history, "item,rating\n987654321,5\n").expect("history");
    for (args, expected) in [
        (vec!["--summary", "x y z.", "--alpha", "1.5"], "alpha must be in [0, 1]"),
        (vec!["--summary", "   "], "the summary is empty"),
        (vec!["--summary", "Westerns.", "--history", history.to_str().unwrap_or_default()], "item 987654321"),
    ] {
        let run = tears().arg("recommend").args(&args).arg("--model").arg(&model).output().expect("run");
        assert_eq!(run.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    let run = tears().args(["recommend", "--summary", "Westerns.", "--model"]).arg(&backbone).output().expect("run");
    assert!(String::from_utf8_lossy(&run.stderr).contains("tears, gers"), "{}", String::from_utf8_lossy(&run.stderr));

    // `tears serve`: the page and its API for the split's users, on loopback; a non-loopback
    // address is refused without --allow-remote.
    let run = tears().args(["serve", "--addr", "0.0.0.0:0", "--model"]).arg(&model).output().expect("run");
    assert_eq!(run.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("--allow-remote"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let child = tears()
        .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--split"])
        .arg(&split)
        .arg("--model")
        .arg(&model)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start tears serve");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Kill(child);
    let get = |path: &str, body: Option<&str>| -> Option<String> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).ok()?;
        let (method, body) = body.map_or(("GET", ""), |b| ("POST", b));
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).ok()?;
        stream.write_all(body.as_bytes()).ok()?;
        let mut out = String::new();
        stream.read_to_string(&mut out).ok()?;
        Some(out)
    };
    let started = std::time::Instant::now();
    let users = loop {
        if let Some(answer) = get("/api/users", None) {
            break answer;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "tears serve did not answer");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(users.starts_with("HTTP/1.1 200") && users.contains("\"has_summary\":true"), "{users}");
    let answer =
        get("/api/recommend", Some(&format!("{{\"user\": {user}, \"alpha\": 0.5, \"k\": 3}}"))).expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 200") && answer.contains("\"rank\":3"), "{answer}");
    let answer = get("/api/recommend", Some("{\"k\": 3")).expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 400") && answer.contains("malformed JSON"), "{answer}");
    drop(_server);

    // The controllability experiments: results, a table and the edited texts, one line per edit.
    for (experiment, header) in [("large", "| alpha | Δ_up | Δ_down |"), ("guided", "More"), ("small", "rank")] {
        let out = dir.path().join(format!("control-{experiment}"));
        let stdout = ok(tears()
            .args(["control", experiment, "--limit", "12", "--no-progress", "--model"])
            .arg(&model)
            .arg("--split")
            .arg(&split)
            .arg("--out")
            .arg(&out)
            .output()
            .expect("control"));
        assert!(stdout.contains(header), "{experiment}: {stdout}");
        let results: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("results.json")).expect("results")).expect("json");
        let table = std::fs::read_to_string(out.join("table.md")).expect("table");
        assert!(table.contains(header), "{experiment}: {table}");
        let figure = std::fs::read_to_string(out.join("figure.svg")).expect("figure");
        let name = model.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        assert!(figure.starts_with("<svg") && figure.contains(&name), "{experiment}: the model's name labels it");
        assert!(figure.contains("alpha (0 = history only, 1 = text only)"), "{experiment}: an alpha axis");
        let edits = std::fs::read_to_string(out.join("edits.jsonl")).expect("edits");
        for line in edits.lines() {
            let e: serde_json::Value = serde_json::from_str(line).expect("an edit per line");
            assert!(e["original"].is_string() && e["edited"].is_string() && e["user"].is_number(), "{line}");
        }
        if experiment == "large" {
            let rows = results["rows"].as_array().expect("rows");
            assert_eq!(rows.len(), 11, "one row per alpha");
            // alpha = 0 ignores the summary: an edit cannot move the list there.
            assert_eq!(rows[0]["delta_up"]["mean"].as_f64(), Some(0.0));
            let counted = results["counted"].as_u64().expect("counted");
            assert_eq!(edits.lines().count() as u64, counted);
            assert_eq!(results["per_user"].as_array().map(Vec::len), Some(counted as usize));
        }
    }
    // One figure over several runs of an experiment, each labelled; experiments do not mix.
    let figure = dir.path().join("large.svg");
    let large = dir.path().join("control-large");
    let stdout = ok(tears()
        .args(["control-figure", "--label", "first", "second", "--out"])
        .arg(&figure)
        .args([&large, &large])
        .output()
        .expect("control-figure"));
    assert!(stdout.contains("large-scope figure of 2 run(s)"), "{stdout}");
    let svg = std::fs::read_to_string(&figure).expect("figure");
    for label in ["first Δ_up", "first Δ_down", "second Δ_up", "second Δ_down"] {
        assert!(svg.contains(label), "{label}");
    }
    let run = tears()
        .args(["control-figure", "--out"])
        .arg(dir.path().join("mixed.svg"))
        .args([large, dir.path().join("control-guided")])
        .output()
        .expect("control-figure");
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&run.stderr).contains("is a guided experiment, the first is large"));
    // The same with the LLM's edits (a loopback stand-in): the answers are cached, a rerun asks nothing.
    let server = tears::summarize::mock::MockServer::start(|_, req| {
        let first = req.json()["messages"][0]["content"].as_str().unwrap_or_default().to_string();
        let summary = first.split("preferences:\n\n").nth(1).and_then(|r| r.split("\n\nFrom this list").next());
        let reply = if req.last_message().starts_with("Rewrite") {
            format!("{} Now the other way round.", summary.unwrap_or_default())
        } else {
            let list = first.split("list of genres: ").nth(1).and_then(|r| r.split(".\n").next()).unwrap_or_default();
            let genres: Vec<&str> = list.split(", ").collect();
            format!("Favorite: {}\nLeast Favorite: {}", genres[0], genres[genres.len() - 1])
        };
        tears::summarize::mock::MockReply::Completion(reply)
    })
    .expect("mock server");
    let out = dir.path().join("control-llm");
    let llm_run = || {
        ok(tears()
            .args(["control", "large", "--edits", "llm", "--limit", "5", "--no-progress", "--llm-model", "m"])
            .args(["--llm-url", &server.url(), "--model"])
            .arg(&model)
            .arg("--split")
            .arg(&split)
            .arg("--out")
            .arg(&out)
            .output()
            .expect("control"))
    };
    let first = llm_run();
    assert!(first.contains("LLM edits: 5 answers asked"), "{first}");
    let again = llm_run();
    assert!(again.contains("LLM edits: 0 answers asked") && again.contains("5 taken from the cache"), "{again}");
    let edits = std::fs::read_to_string(out.join("edits.jsonl")).expect("edits");
    assert!(edits.lines().all(|l| l.contains("llm_swap_rewrite") && l.contains("Now the other way round.")), "{edits}");
    let run = tears()
        .args(["control", "large", "--edits", "llm", "--model"])
        .arg(&model)
        .arg("--split")
        .arg(&split)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run");
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&run.stderr).contains("--llm-url URL and --llm-model NAME"));
    // Summaries for only a few users: a clear error naming the file, or an explicit choice.
    let few = dir.path().join("few.jsonl");
    let text = std::fs::read_to_string(&summaries).expect("summaries");
    std::fs::write(&few, text.lines().take(5).collect::<Vec<_>>().join("\n")).expect("few");
    let run = tears()
        .args(["evaluate", "--alpha", "1", "--model"])
        .arg(&model)
        .arg("--split")
        .arg(&split)
        .arg("--summaries")
        .arg(&few)
        .output()
        .expect("evaluate");
    assert_eq!(run.status.code(), Some(1));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("have no summary in") && err.contains("few.jsonl") && err.contains("--missing-summary"),
        "{err}"
    );
    let stdout = ok(tears()
        .args(["evaluate", "--alpha", "1", "--missing-summary", "empty", "--model"])
        .arg(&model)
        .arg("--split")
        .arg(&split)
        .arg("--summaries")
        .arg(&few)
        .output()
        .expect("evaluate"));
    assert!(stdout.contains("at alpha 1.0"), "{stdout}");

    sharded_jobs_merge_into_the_whole_run(dir.path(), &split, &model);

    // GERS Base needs no summaries and no backbone.
    let gers = dir.path().join("gers");
    ok(tears()
        .args(["train", "gers", "--backbone", "none", "--epochs", "2", "--no-progress", "--split"])
        .arg(&split)
        .arg("--out")
        .arg(&gers)
        .output()
        .expect("train gers"));
    let stdout =
        ok(tears().args(["evaluate", "--model"]).arg(&gers).arg("--split").arg(&split).output().expect("evaluate"));
    assert!(stdout.contains("gers on synthetic (test) at alpha 1.0"), "{stdout}");
    // GERS has no text to insert a sentence into: the small-scope edit is refused by name.
    let run = tears()
        .args(["control", "small", "--no-progress", "--model"])
        .arg(&gers)
        .arg("--split")
        .arg(&split)
        .arg("--out")
        .arg(dir.path().join("gers-small"))
        .output()
        .expect("control");
    assert_eq!(run.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("needs a TEARS model"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // A fused model without its backbone directory is a usage error.
    let run = tears()
        .args(["train", "tears", "--backbone", "recvae", "--encoder", "hashing", "--split"])
        .arg(&split)
        .arg("--out")
        .arg(dir.path().join("x"))
        .output()
        .expect("run");
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("--backbone-model"));
}

/// Runs `job` (a `tears` command line ending in its output flag) for the whole and for shards
/// 0/2 and 1/2 at once, merges the shards and returns (whole output, merged output, stdout of
/// the merge).
fn whole_and_merged_shards(
    dir: &std::path::Path,
    name: &str,
    job: &dyn Fn(&std::path::Path) -> Command,
) -> (Vec<u8>, Vec<u8>) {
    let whole = dir.join(format!("{name}-whole.json"));
    ok(job(&whole).output().expect("the whole job"));
    let shards: Vec<std::path::PathBuf> = (0..2).map(|i| dir.join(format!("{name}-{i}.json"))).collect();
    // Both shards at once, as two machines would run them.
    let children: Vec<std::process::Child> = shards
        .iter()
        .enumerate()
        .map(|(i, out)| {
            job(out)
                .args(["--shard", &format!("{i}/2")])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("a shard")
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let stdout = ok(child.wait_with_output().expect("a shard"));
        assert!(stdout.contains(&format!("shard {i}/2: ")), "{stdout}");
    }
    let merged = dir.join(format!("{name}-merged.json"));
    let stdout = ok(tears().args(["merge", "--out"]).arg(&merged).args(&shards).output().expect("merge"));
    assert!(stdout.contains("merged 2 shards"), "{stdout}");
    // A missing shard, and a shard given twice, are refused by name.
    let run = tears().args(["merge", "--out"]).arg(dir.join("x")).arg(&shards[1]).output().expect("merge");
    assert_eq!(run.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("missing shard 0/2"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let run =
        tears().args(["merge", "--out"]).arg(dir.join("x")).args([&shards[0], &shards[0]]).output().expect("merge");
    assert_eq!(run.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("are both shard 0/2"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let run = tears().args(["merge", "--out"]).arg(dir.join("x")).arg(&whole).output().expect("merge");
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("no shard stamp"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    (std::fs::read(&whole).expect("whole"), std::fs::read(&merged).expect("merged"))
}

/// Sorts the lines of a JSONL file by their `user` field.
fn by_user(jsonl: &[u8]) -> Vec<String> {
    let mut lines: Vec<(u64, String)> = String::from_utf8_lossy(jsonl)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            (v["user"].as_u64().expect("a user"), l.to_string())
        })
        .collect();
    lines.sort();
    lines.into_iter().map(|(_, l)| l).collect()
}

/// `--shard I/N` on `tears recommend --batch` and `tears evaluate`: two shards run at once and
/// merged equal the unsharded run (after sorting by user).
fn sharded_jobs_merge_into_the_whole_run(dir: &std::path::Path, split: &std::path::Path, model: &std::path::Path) {
    let topk = |out: &std::path::Path| {
        let mut c = tears();
        c.args(["recommend", "--batch", "--set", "all", "-k", "7", "--batch-size", "64", "--no-progress", "--model"])
            .arg(model)
            .arg("--split")
            .arg(split)
            .arg("--out")
            .arg(out);
        c
    };
    let (whole, merged) = whole_and_merged_shards(dir, "topk", &topk);
    let whole = by_user(&whole);
    assert_eq!(whole.join("\n") + "\n", String::from_utf8_lossy(&merged), "merged top-k differs from the whole run");
    let split_data = tears_data::Split::load(split).expect("split");
    let everyone = split_data.train.len() + split_data.validation.len() + split_data.test.len();
    assert_eq!(whole.len(), everyone);
    let first: serde_json::Value = serde_json::from_str(&whole[0]).expect("json");
    assert_eq!(first["items"].as_array().map(Vec::len), Some(7));
    // Template summaries: the same records but for the time each was written.
    let summarize = |out: &std::path::Path| {
        let mut c = tears();
        c.args(["summarize", "--template", "--set", "all", "--no-progress", "--split"])
            .arg(split)
            .arg("--out")
            .arg(out);
        c
    };
    let (whole, merged) = whole_and_merged_shards(dir, "summaries", &summarize);
    let untimed = |jsonl: &[u8]| -> Vec<String> {
        by_user(jsonl)
            .iter()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).expect("json");
                v["created_at"] = serde_json::Value::Null;
                v.to_string()
            })
            .collect()
    };
    assert_eq!(untimed(&whole), untimed(&merged));
    assert_eq!(by_user(&merged).join("\n") + "\n", String::from_utf8_lossy(&merged), "merged in user order");
    let evaluation = |out: &std::path::Path| {
        let mut c = tears();
        c.args(["evaluate", "--alpha", "sweep", "--k", "10,20", "--model"])
            .arg(model)
            .arg("--split")
            .arg(split)
            .arg("--per-user")
            .arg(out);
        c
    };
    let (whole, merged) = whole_and_merged_shards(dir, "eval", &evaluation);
    assert_eq!(String::from_utf8_lossy(&whole), String::from_utf8_lossy(&merged), "merged evaluation differs");
    let v: serde_json::Value = serde_json::from_slice(&whole).expect("json");
    assert_eq!(v["runs"].as_array().map(Vec::len), Some(11));
    assert_eq!(v["runs"][0]["evaluation"]["users"].as_array().map(Vec::len), Some(split_data.test.len()));
    // A shard's means alone cannot be merged: a sharded evaluation without --per-user is refused.
    let run = tears()
        .args(["evaluate", "--shard", "0/2", "--model"])
        .arg(model)
        .arg("--split")
        .arg(split)
        .output()
        .expect("evaluate");
    assert_eq!(run.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("needs --per-user"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

/// Runs `command` and returns its status and its stdout and stderr together.
fn run_all(command: &mut Command) -> (std::process::ExitStatus, String) {
    let run = command.output().expect("run tears");
    (run.status, format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr)))
}

/// `tears summarize` against a fault-injecting server (seeded 429s, 5xx, slow answers past the
/// timeout, malformed 200s, empty and too-short answers, dropped connections, 3 % of users always
/// refused with a 400), killed with SIGKILL at seeded moments, then run to the end: every user is
/// summarized exactly once or listed in the failures file, no line is corrupt, the key appears
/// nowhere, and the refused users fail alone.
#[test]
fn summarize_survives_a_hostile_server_and_kill_9() {
    use rand::{Rng, SeedableRng};
    use tears_summarize::mock::{FaultPlan, MockServer};
    let dir = tempfile::tempdir().expect("tmp");
    let split_dir = synthetic_split(dir.path());
    let out = dir.path().join("s.jsonl");
    let key = "sk-qa-SECRET-12345";
    let plan = FaultPlan {
        too_many: 0.06,
        server_error: 0.06,
        slow: 0.03,
        slow_by: std::time::Duration::from_millis(1200),
        malformed: 0.06,
        bad_answer: 0.04,
        close: 0.05,
        refuse_users: 0.03,
        ..FaultPlan::none(11)
    };
    let (server, tally) = MockServer::faulty(plan.clone()).expect("server");
    let users = 300usize;
    let summarize = || {
        let mut c = tears();
        c.args(["summarize", "--model", "mock", "--set", "all", "--concurrency", "4", "--no-progress"])
            .args(["--timeout-s", "0.5", "--backoff-s", "0.01", "--api-key-env", "TEARS_QA_KEY"])
            .args(["--limit", &users.to_string(), "--llm-url"])
            .arg(format!("{}/v1/chat/completions", server.url()))
            .arg("--split")
            .arg(&split_dir)
            .arg("--out")
            .arg(&out)
            .env("TEARS_QA_KEY", key)
            .env("RUST_LOG", "debug");
        c
    };
    let started = std::time::Instant::now();
    let mut outputs = Vec::new();
    let mut progress = vec![0usize];
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    for _ in 0..9 {
        let mut child = summarize()
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        // Wait until this run has written something (however slow the machine), then a seeded
        // moment more, then SIGKILL.
        let count_lines = || std::fs::read(&out).map(|b| b.iter().filter(|&&c| c == b'\n').count()).unwrap_or(0);
        let before = count_lines();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while count_lines() == before && std::time::Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::thread::sleep(std::time::Duration::from_millis(rng.random_range(0..100)));
        let _ = child.kill(); // SIGKILL
        let run = child.wait_with_output().expect("wait");
        outputs.push(format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr)));
        progress.push(count_lines());
    }
    // The kills must land in the middle of runs: the cache grew between kills without being done.
    let grew = progress.windows(2).filter(|w| w[1] > w[0] && w[1] < users * 9 / 10).count();
    assert!(grew >= 3, "lines after each kill: {progress:?}");
    let (status, last) = run_all(&mut summarize());
    outputs.push(last.clone());
    let wall = started.elapsed();
    // Every line of the cache is a whole record, and no user is there twice.
    let text = std::fs::read_to_string(&out).expect("cache");
    let mut cached = std::collections::BTreeSet::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("corrupt line {line:?}: {e}"));
        assert!(cached.insert(v["user"].as_u64().expect("user")), "user {} twice", v["user"]);
    }
    // The failures file holds exactly the refused users, each with its 400.
    let failures_path = dir.path().join("s.jsonl.failures.jsonl");
    let failures_text = std::fs::read_to_string(&failures_path).unwrap_or_default();
    let failed: Vec<serde_json::Value> =
        failures_text.lines().map(|l| serde_json::from_str(l).expect("failures line")).collect();
    let refused_prompts: std::collections::HashSet<String> =
        server.received().iter().filter(|r| plan.refuses(r)).map(|r| r.last_message()).collect();
    assert!(!refused_prompts.is_empty(), "the plan should refuse some of {users} users");
    assert_eq!(failed.len(), refused_prompts.len(), "{last}");
    assert!(failed.iter().all(|f| f["status"] == 400 && f["kind"] == "http"), "{failures_text}");
    assert!(failed.iter().all(|f| !cached.contains(&f["user"].as_u64().expect("user"))));
    assert_eq!(cached.len() + failed.len(), users, "{last}");
    assert_eq!(status.code(), Some(1), "failed users make the exit status 1: {last}");
    assert!(last.contains(&format!("{} users failed", failed.len())) && last.contains("http 400"), "{last}");
    assert!(last.contains("s.jsonl.failures.jsonl"), "{last}");
    // The key is nowhere: not in any output (debug logs included), the cache or the failures file.
    for o in &outputs {
        assert!(!o.contains(key) && !o.contains("SECRET"), "the key leaked: {o}");
        assert!(!o.contains('\u{1b}'), "colour codes on a non-terminal stderr: {o}");
    }
    assert!(!text.contains("SECRET") && !failures_text.contains("SECRET"));
    let faults = tally.faults();
    eprintln!(
        "hostile server: {users} users, 9 kill -9 (cache lines after each: {progress:?}) then a full run, \
         {} requests ({faults} faults, {} slow), {:.1?}; {} users in the cache, {} in the failures file",
        server.requests(),
        tally.slow.load(std::sync::atomic::Ordering::SeqCst),
        wall,
        cached.len(),
        failed.len()
    );
    assert!(faults > 0 && server.requests() > users);
}

#[test]
fn summarize_stops_fast_on_a_dead_server_and_refuses_a_second_writer() {
    use tears_summarize::mock::{MockReply, MockServer};
    let dir = tempfile::tempdir().expect("tmp");
    let split_dir = synthetic_split(dir.path());
    let out = dir.path().join("s.jsonl");
    let summarize = |url: &str| {
        let mut c = tears();
        c.args(["summarize", "--model", "mock", "--set", "all", "--no-progress", "--api-key-env", "TEARS_UNSET_KEY"])
            .args(["--llm-url", url, "--split"])
            .arg(&split_dir)
            .arg("--out")
            .arg(&out)
            .env_remove("TEARS_UNSET_KEY")
            .env("NO_COLOR", "1");
        c
    };
    // Nobody listens on this port; the default backoff (1 s, doubling) applies.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let t = std::time::Instant::now();
    let (status, all) = run_all(&mut summarize(&format!("http://127.0.0.1:{port}")));
    let took = t.elapsed();
    assert_eq!(status.code(), Some(1), "{all}");
    assert!(all.contains("is not answering") && all.contains(&port.to_string()), "{all}");
    assert!(all.contains("$TEARS_UNSET_KEY is not set"), "the unset key is announced: {all}");
    eprintln!("dead server found out in {took:.2?}");
    assert!(took < std::time::Duration::from_secs(60), "{took:?}: every user was retried in full");
    // A slow server keeps the first run busy; a second run on the same --out is refused.
    let server = MockServer::start(|_, _| {
        MockReply::Delay(
            std::time::Duration::from_millis(200),
            Box::new(MockReply::Completion("Summary: The user enjoys quiet dramas about families.".into())),
        )
    })
    .expect("server");
    let mut first = summarize(&server.url())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while server.requests() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (status, all) = run_all(&mut summarize(&server.url()));
    let _ = first.kill();
    let _ = first.wait();
    assert_eq!(status.code(), Some(1), "{all}");
    assert!(all.contains("locked") && all.contains("s.jsonl"), "{all}");
}

#[test]
fn summarize_rejects_out_of_range_settings_by_name() {
    let dir = tempfile::tempdir().expect("tmp");
    let split_dir = synthetic_split(dir.path());
    for (flag, value) in
        [("--timeout-s", "1e300"), ("--timeout-s", "-1"), ("--backoff-s", "1e300"), ("--max-attempts", "0")]
    {
        let (status, all) = run_all(
            tears()
                .args(["summarize", "--model", "m", "--llm-url", "http://127.0.0.1:9", "--split"])
                .arg(&split_dir)
                .arg("--out")
                .arg(dir.path().join("s.jsonl"))
                .args([flag, value]),
        );
        assert!(matches!(status.code(), Some(1 | 2)), "{flag} {value}: {all}");
        assert!(all.contains(flag) && !all.contains("panicked"), "{flag} {value}: {all}");
        assert!(!all.contains("unexpected argument"), "{flag} {value} read as a flag: {all}");
    }
    // A file error names the file and its cause once.
    let (status, all) = run_all(
        tears()
            .args(["summarize", "--template", "--no-progress", "--split"])
            .arg(&split_dir)
            .arg("--out")
            .arg(dir.path()),
    );
    assert_eq!(status.code(), Some(1));
    assert_eq!(all.matches("os error").count(), 1, "{all}");
}

#[test]
fn summary_stats_reports_lengths_edit_distance_and_bleu() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("s.jsonl");
    std::fs::write(
        &file,
        "{\"user\": 1, \"text\": \"Summary: likes dark comedies\"}\n\
         {\"user\": 2, \"text\": \"Summary: likes light comedies a lot\"}\n\
         {\"user\": 3, \"text\": \"Summary: likes dark comedies\"}\n",
    )
    .expect("summaries");
    let json = dir.path().join("stats.json");
    let run = tears().args(["summary-stats", "--summaries"]).arg(&file).arg("--json").arg(&json).output().expect("run");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}{}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains("| s.jsonl | 3 | 3.67 ± 0.94 | 3 |"), "{stdout}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).expect("json")).expect("json");
    // Pairs (1,2), (1,3), (2,3): word distances 3, 0, 3.
    assert_eq!(v["edit_distance"]["pairs"], 3);
    assert!((v["edit_distance"]["mean"].as_f64().expect("mean") - 2.0).abs() < 1e-12, "{v}");
    assert_eq!(v["words"]["max"], 5);
    // One summary is not enough; a missing file is named.
    std::fs::write(&file, "{\"user\": 1, \"text\": \"Summary: x\"}\n").expect("one");
    let run = tears().args(["summary-stats", "--summaries"]).arg(&file).output().expect("run");
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&run.stderr).contains("at least 2"));
    let run = tears().args(["summary-stats", "--summaries", "no-such-file.json"]).output().expect("run");
    assert!(String::from_utf8_lossy(&run.stderr).contains("no-such-file.json"));
}

#[test]
fn summarize_exports_a_shard_as_a_batch_file_and_imports_the_answers() {
    use tears_data::shard::{Shard, ShardKind, ShardStamp};
    let dir = tempfile::tempdir().expect("tmp");
    let bin = || Command::new(env!("CARGO_BIN_EXE_tears"));
    let split_dir = dir.path().join("split");
    let run = bin().args(["prepare", "--dataset", "synthetic", "--out"]).arg(&split_dir).output().expect("run");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let (out, prompts, answers) =
        (dir.path().join("s.jsonl"), dir.path().join("prompts.jsonl"), dir.path().join("answers.jsonl"));
    let summarize = |shard: &str, flag: &str, file: &std::path::Path| {
        bin()
            .args(["summarize", "--set", "test", "--model", "qwen", "--shard", shard, "--split"])
            .arg(&split_dir)
            .arg("--out")
            .arg(&out)
            .arg(flag)
            .arg(file)
            .output()
            .expect("run")
    };
    let run = summarize("0/2", "--export-batch", &prompts);
    let stdout = String::from_utf8_lossy(&run.stdout).to_string();
    assert!(run.status.success(), "{stdout}{}", String::from_utf8_lossy(&run.stderr));
    let shard = Shard::new(0, 2).expect("a shard");
    let split = tears_data::Split::load(&split_dir).expect("split");
    let users: Vec<u64> = split.test.users().iter().copied().filter(|u| shard.contains(*u)).collect();
    assert!(stdout.contains(&format!("shard 0/2: {} of the {} test users", users.len(), split.test.len())), "{stdout}");
    let stamp = ShardStamp::new(ShardKind::Summaries, shard, "synthetic test");
    assert_eq!(ShardStamp::read_beside(&prompts).expect("stamp"), Some(stamp.clone()));
    let requests: Vec<serde_json::Value> = std::fs::read_to_string(&prompts)
        .expect("prompts")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let ids: Vec<String> = requests.iter().map(|r| r["custom_id"].as_str().expect("an id").to_string()).collect();
    assert_eq!(ids.len(), users.len());
    for (id, user) in ids.iter().zip(&users) {
        assert!(id.starts_with(&format!("user-{user}-")), "{id}");
    }
    assert!(requests.iter().all(|r| r["url"] == "/v1/chat/completions" && r["body"]["model"] == "qwen"));
    // The answers in the OpenAI Batch output format, in reverse order; the first user's request expired.
    let mut lines = Vec::new();
    for (i, id) in ids.iter().enumerate().rev() {
        let line = if i == 0 {
            serde_json::json!({"id": "batch_req_0", "custom_id": id, "response": null,
                "error": {"code": "batch_expired", "message": "not run in time"}})
        } else {
            let body = serde_json::json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "qwen",
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant",
                "content": "Summary: The user enjoys quiet dramas and gentle comedies about families."}}]});
            serde_json::json!({"id": format!("batch_req_{i}"), "custom_id": id,
                "response": {"status_code": 200, "request_id": "req", "body": body}, "error": null})
        };
        lines.push(line.to_string());
    }
    std::fs::write(&answers, lines.join("\n") + "\n").expect("write");
    let run = summarize("0/2", "--import-batch", &answers);
    let stdout = String::from_utf8_lossy(&run.stdout).to_string();
    assert_eq!(run.status.code(), Some(1), "{stdout}{}", String::from_utf8_lossy(&run.stderr));
    let n = users.len();
    assert!(stdout.contains(&format!("{n} answers in {}: {} imported", answers.display(), n - 1)), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "  {} {}:{n}: the batch engine reported an error batch_expired",
            ids[0],
            answers.display()
        )),
        "{stdout}"
    );
    assert_eq!(std::fs::read_to_string(&out).expect("cache").lines().count(), n - 1);
    assert_eq!(ShardStamp::read_beside(&out).expect("stamp"), Some(stamp));
    // Exporting again asks only the failed user; another shard is refused on this --out.
    let run = summarize("0/2", "--export-batch", &prompts);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let again = std::fs::read_to_string(&prompts).expect("prompts");
    assert_eq!(again.lines().count(), 1);
    assert!(again.contains(&ids[0]));
    let run = summarize("1/2", "--import-batch", &answers);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1));
    assert!(
        stderr.contains("holds summaries shard 0/2") && stderr.contains("this run is summaries shard 1/2"),
        "{stderr}"
    );
}

/// Every epoch's validation NDCG and loss from a model directory's `train_log.json`.
fn epoch_curve(out: &std::path::Path) -> Vec<(f64, f64)> {
    let log: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("train_log.json")).expect("train log")).expect("json");
    log.as_array()
        .expect("epochs")
        .iter()
        .map(|e| (e["validation_ndcg"].as_f64().expect("ndcg"), e["loss"].as_f64().expect("loss")))
        .collect()
}

#[test]
fn two_worker_processes_train_the_model_one_process_trains() {
    let dir = tempfile::tempdir().expect("tmp");
    let split = synthetic_split(dir.path());
    for (kind, extra) in [("multvae", &[][..]), ("gers", &["--backbone", "none"][..])] {
        let args = |out: &std::path::Path| {
            let mut c = tears();
            c.args(["train", kind, "--epochs", "3", "--patience", "0", "--batch-size", "100", "--no-progress"])
                .args(extra)
                .arg("--split")
                .arg(&split)
                .arg("--out")
                .arg(out);
            c
        };
        let alone = dir.path().join(format!("{kind}-alone"));
        ok(args(&alone).output().expect("train alone"));
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
        let together = dir.path().join(format!("{kind}-together"));
        let workers: Vec<std::process::Child> = (0..2)
            .map(|rank| {
                args(&together)
                    .args(["--workers", "2", "--rank", &rank.to_string(), "--coordinator"])
                    .arg(format!("127.0.0.1:{port}"))
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("start a worker")
            })
            .collect();
        for w in workers {
            ok(w.wait_with_output().expect("worker"));
        }
        let (a, b) = (epoch_curve(&alone), epoch_curve(&together));
        assert_eq!(a.len(), 3);
        assert_eq!(a.len(), b.len());
        for (epoch, ((ndcg_a, loss_a), (ndcg_b, loss_b))) in a.iter().zip(&b).enumerate() {
            assert!(
                (ndcg_a - ndcg_b).abs() < 1e-3,
                "{kind} epoch {}: validation ndcg {ndcg_a} alone, {ndcg_b} on two workers",
                epoch + 1
            );
            assert!(
                (loss_a - loss_b).abs() < 1e-3 * loss_a.abs().max(1.0),
                "{kind} epoch {}: loss {loss_a} vs {loss_b}",
                epoch + 1
            );
        }
        // Worker 1 kept its own checkpoints beside worker 0's model directory.
        assert!(together.join("manifest.json").exists() && together.join("workers/1/checkpoint").exists());
    }
}
