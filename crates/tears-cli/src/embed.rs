//! `tears embed`: encode user summaries into sentence embeddings (.npy or .safetensors).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use tears::backend::BackendJob;
use tears::text::{EmbeddingCache, EncoderOptions, SentenceEncoder, export};

use crate::common::{BackendFlag, progress_bar};

#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Model folder in the Hugging Face layout (config.json, tokenizer.json, model.safetensors).
    #[arg(long, default_value = tears::text::DEFAULT_MODEL_DIR)]
    model_dir: PathBuf,
    /// Summaries: the JSONL written by `tears summarize` (`user` and `text` fields), or a JSON
    /// object mapping user ids to texts (the shipped summaries); plain, .gz or .xz.
    #[arg(long)]
    summaries: PathBuf,
    /// Output file: .npy (float32 [users, dim], rows in the summaries file's order, the ids in
    /// OUT.users.txt) or .safetensors (tensors `embeddings` and `users`).
    #[arg(long)]
    out: PathBuf,
    /// Texts per forward pass.
    #[arg(long, default_value_t = EncoderOptions::default().batch_size)]
    batch_size: usize,
    /// Truncation length in tokens.
    #[arg(long, default_value_t = EncoderOptions::default().max_tokens)]
    max_tokens: usize,
    /// Keep the pooled vectors as they are (no L2 normalisation).
    #[arg(long)]
    no_normalize: bool,
    /// Embedding cache folder, keyed by (model hash, text hash): texts already there are not
    /// encoded again. Safe to share between runs.
    #[arg(long)]
    cache: Option<PathBuf>,
    #[command(flatten)]
    backend: BackendFlag,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
}

/// Encodes texts on the backend chosen at run time.
struct EmbedJob<'a> {
    args: &'a EmbedArgs,
    texts: Vec<&'a str>,
    bar: indicatif::ProgressBar,
}

impl BackendJob for EmbedJob<'_> {
    type Output = Result<Vec<Vec<f32>>>;
    fn run<B: burn::tensor::backend::AutodiffBackend>(self, device: B::Device) -> Self::Output {
        let a = self.args;
        let options = EncoderOptions {
            batch_size: a.batch_size,
            max_tokens: a.max_tokens,
            normalize: !a.no_normalize,
            ..EncoderOptions::default()
        };
        // Inference only: the inner (non-autodiff) backend.
        let encoder = SentenceEncoder::<B::InnerBackend>::load(&a.model_dir, &options, &device)
            .with_context(|| format!("loading the model in {}", a.model_dir.display()))?;
        let bar = self.bar;
        let mut progress = |n: usize| bar.inc(n as u64);
        let vectors = match &a.cache {
            Some(dir) => {
                let cache = EmbeddingCache::open(dir)?;
                encoder.encode_cached(&self.texts, &cache, &mut progress)?
            }
            None => encoder.encode_vecs(&self.texts, &mut progress)?,
        };
        bar.finish_and_clear();
        Ok(vectors)
    }
}

pub fn run(a: EmbedArgs) -> Result<()> {
    let backend = a.backend.kind();
    let ext = a.out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    if !matches!(ext.as_deref(), Some("npy" | "safetensors")) {
        anyhow::bail!("--out {}: the extension must be .npy or .safetensors", a.out.display());
    }
    let stored = tears::data::StoredSummaries::load(&a.summaries)
        .with_context(|| format!("reading the summaries {}", a.summaries.display()))?;
    // Rows follow the input file's order (first appearance of each user).
    let (users, texts): (Vec<u64>, Vec<&str>) = stored.in_file_order().unzip();
    let bar = progress_bar(
        texts.len() as u64,
        "{bar:40} {pos}/{len} summaries [{elapsed_precise}, {per_sec}, eta {eta}]",
        !a.no_progress,
    );
    let started = Instant::now();
    let vectors = tears::backend::run(backend, EmbedJob { args: &a, texts, bar })??;
    let seconds = started.elapsed().as_secs_f64();
    let dim = vectors.first().map_or(0, Vec::len);
    match ext.as_deref() {
        Some("npy") => {
            export::write_npy(&a.out, &vectors)?;
            let sidecar = export::users_sidecar(&a.out);
            export::write_ids(&sidecar, &users)?;
            println!("wrote {} ({} x {dim} float32) and {}", a.out.display(), vectors.len(), sidecar.display());
        }
        _ => {
            export::write_embeddings_safetensors(&a.out, &vectors, &users)?;
            println!("wrote {} (embeddings {} x {dim}, users)", a.out.display(), vectors.len());
        }
    }
    println!(
        "{} summaries in {seconds:.2} s ({:.1} summaries/s) on {}",
        vectors.len(),
        vectors.len() as f64 / seconds.max(1e-9),
        backend.name()
    );
    Ok(())
}
