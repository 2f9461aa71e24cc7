//! Shared fixtures of the tears-model suites: a small synthetic split with template summaries,
//! the backend chosen by cargo feature, and trained backbones.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use burn::backend::Autodiff;
use tears_core::{MissingProfile, Profile, Profiles};
use tears_data::split::UserRows;
use tears_data::synthetic::SyntheticConfig;
use tears_data::{DatasetName, PrepareOptions, Split, prepare};
use tears_model::{SummariesFile, TextEncoderChoice, TrainInputs};
use tears_summarize::{Summarizer, TemplateSummarizer, UserSet, user_histories};
use tears_text::HashingConfig;
use tears_vae::{BackboneKind, ModelConfig, MultVaeConfig, RunOptions, TrainConfig};

/// The backend the suites run on: flex, or cuda / ndarray by cargo feature.
#[cfg(feature = "test-cuda")]
pub type TestBackend = burn::backend::Cuda;
/// The backend the suites run on: flex, or cuda / ndarray by cargo feature.
#[cfg(all(feature = "test-ndarray", not(feature = "test-cuda")))]
pub type TestBackend = burn::backend::NdArray;
/// The backend the suites run on: flex, or cuda / ndarray by cargo feature.
#[cfg(not(any(feature = "test-cuda", feature = "test-ndarray")))]
pub type TestBackend = burn::backend::Flex;
/// Its autodiff wrapper.
pub type TestAutodiff = Autodiff<TestBackend>;

/// Relative tolerance between a result computed through the test backend's dense matrix products
/// and the same result from exact f32 products on the host. The CPU backends multiply in f32, so
/// only the summation order differs.
#[cfg(not(feature = "test-cuda"))]
pub const MATMUL_RTOL: f32 = 1e-5;
/// Relative tolerance between a result computed through the test backend's dense matrix products
/// and the same result from exact f32 products on the host. burn's CUDA matrix kernels may run on
/// tensor cores in TF32 (10-bit mantissa): on an H200 this moved a TEARS training loss by 1e-4.
#[cfg(feature = "test-cuda")]
pub const MATMUL_RTOL: f32 = 2e-3;

/// A split, its summaries file, and a folder for model directories.
pub struct Fixture {
    pub split: Split,
    pub summaries: SummariesFile,
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn inputs<'a>(&'a self, backbone_dir: Option<&'a Path>) -> TrainInputs<'a> {
        TrainInputs {
            split: &self.split,
            backbone_dir,
            encoder: Some(hashing()),
            summaries: Some(&self.summaries),
            missing: MissingProfile::Error,
            embedding_cache: None,
        }
    }
}

/// The hashing encoder at a small width (fast tests).
pub fn hashing() -> TextEncoderChoice {
    TextEncoderChoice::Hashing(HashingConfig { dim: 1024, ..HashingConfig::default() })
}

/// The most recent `keep` ratings of each row.
pub fn recent(rows: &UserRows, keep: usize) -> UserRows {
    let mut out = UserRows::new();
    for (user, ratings) in rows.iter() {
        let mut r = ratings.to_vec();
        r.sort_by_key(|x| std::cmp::Reverse(x.timestamp));
        r.truncate(keep);
        out.push(user, r);
    }
    out
}

/// Synthetic data whose summaries carry what the fold-in lacks: every user's template summary
/// is written from their whole history a summarizer may see (all training ratings; an
/// evaluation user's full fold-in), then the evaluation users' fold-in is cut to their 3 most
/// recent ratings.
pub fn informative() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let options = PrepareOptions {
            synthetic: SyntheticConfig { users: 900, items: 300, ..SyntheticConfig::default() },
            ..PrepareOptions::default()
        };
        let mut split = prepare(DatasetName::Synthetic, &options).expect("synthetic split").split;
        let dir = tempfile::tempdir().expect("temp dir");
        let summarizer = TemplateSummarizer::from_split(&split);
        let mut map = serde_json::Map::new();
        for (user, history) in user_histories(&split, UserSet::All) {
            let text = summarizer.summarize(&history).expect("template summary");
            map.insert(user.to_string(), serde_json::Value::String(text));
        }
        let path = dir.path().join("summaries.json");
        std::fs::write(&path, serde_json::to_vec(&map).expect("json")).expect("write summaries");
        let summaries = SummariesFile::load(&path).expect("read summaries");
        split.validation.foldin = recent(&split.validation.foldin, 3);
        split.test.foldin = recent(&split.test.foldin, 3);
        Fixture { split, summaries, dir }
    })
}

/// A small Mult-VAE trained on the fixture's training users, saved once.
pub fn multvae_dir(f: &Fixture) -> &'static PathBuf {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        let out = f.path("multvae");
        let model = ModelConfig::MultVae(MultVaeConfig { hidden: 200, latent: 64, ..MultVaeConfig::default() });
        let train = TrainConfig { epochs: 30, patience: Some(5), ..BackboneKind::MultVae.default_train() };
        let run = RunOptions { out_dir: Some(out.clone()), resume: false, progress: false, ..RunOptions::default() };
        tears_vae::fit_config::<TestAutodiff>(&model, &f.split, &train, &run, &Default::default())
            .expect("train the backbone");
        out
    })
}

/// Summaries of `users` as profiles.
pub fn profiles_of(f: &Fixture, users: &[u64]) -> Vec<Profile> {
    users.iter().map(|u| f.summaries.profiles.get(*u).cloned().expect("a summary")).collect()
}

/// The fixture's summaries.
pub fn profiles(f: &Fixture) -> &Profiles {
    &f.summaries.profiles
}
