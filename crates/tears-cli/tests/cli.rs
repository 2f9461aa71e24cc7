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
    let run = tears().args(["prepare", "--dataset", "imdb", "--out"]).arg(dir.path()).output().expect("run");
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&run.stderr).contains("unknown dataset \"imdb\""));

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
