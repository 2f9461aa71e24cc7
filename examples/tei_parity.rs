//! Parity of a text-embeddings-inference (TEI) server with the local sentence encoder: embeds a
//! reference sentence and the first `--n` summaries both ways and prints the cosine of each pair's
//! vectors (minimum and mean); exits with an error when the minimum is below `--min-cosine`.
//! See `docs/tei.md` for what must match (model, mean pooling, 256 tokens, normalisation).
//!
//! ```text
//! cargo run --release --example tei_parity -- --tei http://127.0.0.1:8080
//!     [--summaries FILE] [--n 100] [--model-dir ../shared/models/all-MiniLM-L6-v2]
//!     [--min-cosine 0.999] [--backend flex|ndarray|cuda]
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::tensor::backend::AutodiffBackend;
use tears::backend::{BackendJob, BackendKind};
use tears::text::tei::{TeiClient, TeiConfig};
use tears::text::{EncoderOptions, SentenceEncoder};

const REFERENCE: &str = "The user enjoys thoughtful dramas and clever comedies, and does not enjoy horror.";
const SUMMARIES: &str = "../shared/data/summaries/ml-1m/user_summary_gpt4_all6016users_2023-12-12.json.xz";

/// The local encoder's vectors of the texts.
struct Local<'a> {
    dir: PathBuf,
    texts: &'a [&'a str],
}

impl BackendJob for Local<'_> {
    type Output = Result<Vec<Vec<f32>>>;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let encoder = SentenceEncoder::<B::InnerBackend>::load(&self.dir, &EncoderOptions::default(), &device)
            .with_context(|| format!("loading {}", self.dir.display()))?;
        Ok(encoder.encode_vecs(self.texts, &mut |_| {})?)
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b)).max(1e-12)
}

fn main() -> Result<()> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let mut tei = None;
    let mut summaries = PathBuf::from(SUMMARIES);
    let mut model_dir = PathBuf::from(tears::text::DEFAULT_MODEL_DIR);
    let (mut n, mut min_cosine, mut backend) = (100usize, 0.999f64, BackendKind::default());
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().with_context(|| format!("{flag} takes a value"))?;
        match flag.as_str() {
            "--tei" => tei = Some(value),
            "--summaries" => summaries = value.into(),
            "--model-dir" => model_dir = value.into(),
            "--n" => n = value.parse().with_context(|| format!("--n {value}"))?,
            "--min-cosine" => min_cosine = value.parse().with_context(|| format!("--min-cosine {value}"))?,
            "--backend" => backend = value.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    let tei = tei.context("--tei http://HOST:PORT is required")?;
    let stored = tears::data::StoredSummaries::load(&summaries)
        .with_context(|| format!("reading the summaries {}", summaries.display()))?;
    let texts: Vec<&str> = std::iter::once(REFERENCE).chain(stored.in_file_order().map(|(_, t)| t).take(n)).collect();

    let client = TeiClient::connect(TeiConfig::new(&tei))?;
    let info = client.info();
    println!(
        "TEI {}: {} (revision {}, {}, {} pooling, {} tokens)",
        client.url(),
        info.model_id,
        info.model_sha.as_deref().unwrap_or("unknown"),
        info.model_dtype.as_deref().unwrap_or("dtype unknown"),
        info.pooling().unwrap_or("?"),
        info.max_input_length
    );
    let remote = client.encode_vecs(&texts, &mut |_| {})?;
    let local = tears::backend::run(backend, Local { dir: model_dir, texts: &texts })??;
    if local.first().map(Vec::len) != remote.first().map(Vec::len) {
        bail!("dimensions differ: local {:?}, TEI {:?}", local.first().map(Vec::len), remote.first().map(Vec::len));
    }
    let cos: Vec<f64> = local.iter().zip(&remote).map(|(a, b)| cosine(a, b)).collect();
    let summaries_cos = &cos[1..];
    let min = summaries_cos.iter().copied().fold(cos[0], f64::min);
    let mean = summaries_cos.iter().sum::<f64>() / summaries_cos.len().max(1) as f64;
    println!("reference sentence: cosine {:.6}", cos[0]);
    println!("{} summaries: min cosine {min:.6}, mean {mean:.6}", summaries_cos.len());
    if min < min_cosine {
        let worst = cos.iter().enumerate().min_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i);
        bail!("min cosine {min:.6} < {min_cosine}: text {worst} differs most ({:?})", texts[worst]);
    }
    println!("parity: ok (every cosine >= {min_cosine})");
    Ok(())
}
