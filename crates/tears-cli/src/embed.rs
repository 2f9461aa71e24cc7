//! `tears embed`: encode user summaries into sentence embeddings (.npy or .safetensors), with
//! the local model folder or a text-embeddings-inference server (`--encoder tei:URL`), for all
//! users or one shard of them (`--shard I/N`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use tears::backend::BackendJob;
use tears::data::shard::{ShardKind, ShardStamp, stamp_path};
use tears::text::tei::{TeiClient, TeiConfig};
use tears::text::{EmbeddingCache, EncoderOptions, SentenceEncoder, export};

use crate::common::{BackendFlag, ShardArgs, progress_bar};

/// Which encoder `tears embed` uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncoderChoice {
    /// The model folder of `--model-dir`, run on `--backend`.
    Local,
    /// A text-embeddings-inference server at this base URL.
    Tei(String),
}

fn parse_encoder(s: &str) -> Result<EncoderChoice, String> {
    if s == "local" {
        return Ok(EncoderChoice::Local);
    }
    match s.strip_prefix("tei:") {
        Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
            Ok(EncoderChoice::Tei(url.to_string()))
        }
        Some(url) => Err(format!("the TEI server URL {url:?} must start with http:// or https://")),
        None => Err("expected local or tei:http://HOST:PORT".into()),
    }
}

#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// The encoder: `local` (the model folder of --model-dir, on --backend) or
    /// `tei:http://HOST:PORT`, a Hugging Face text-embeddings-inference server (no model is
    /// loaded here; --batch-size caps the texts per request, the server's max_client_batch_size
    /// too).
    #[arg(long, default_value = "local", value_parser = parse_encoder)]
    encoder: EncoderChoice,
    /// With `--encoder tei:...`: accept a server whose pooling is not mean pooling (its vectors
    /// then differ from the local all-MiniLM-L6-v2 encoder's).
    #[arg(long)]
    tei_any_pooling: bool,
    #[command(flatten)]
    shard: ShardArgs,
    /// Model folder in the Hugging Face layout (config.json, tokenizer.json, model.safetensors) of
    /// `--encoder local`.
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
    /// encoded again. Safe to share between runs. A TEI server's vectors are keyed by the model,
    /// revision, normalisation and truncation length its /info reports, never by a local key.
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

/// Encodes `texts` on the TEI server at `url`.
fn embed_tei(a: &EmbedArgs, url: &str, texts: &[&str], bar: indicatif::ProgressBar) -> Result<Vec<Vec<f32>>> {
    let options = EncoderOptions {
        batch_size: a.batch_size,
        max_tokens: a.max_tokens,
        normalize: !a.no_normalize,
        ..EncoderOptions::default()
    };
    let config = TeiConfig { allow_any_pooling: a.tei_any_pooling, ..TeiConfig::from_options(url, &options) };
    let client = TeiClient::connect(config)?;
    let info = client.info();
    println!(
        "TEI server {}: {} (revision {}, {} pooling, dimension {}, truncation at {} tokens, {} texts per request)",
        client.url(),
        info.model_id,
        info.model_sha.as_deref().unwrap_or("unknown"),
        info.pooling().unwrap_or("?"),
        client.dim(),
        info.max_input_length,
        client.batch_limit()
    );
    let mut progress = |n: usize| bar.inc(n as u64);
    let vectors = match &a.cache {
        Some(dir) => {
            let cache = EmbeddingCache::open(dir)?;
            client.encode_cached(texts, &cache, &mut progress)?
        }
        None => client.encode_vecs(texts, &mut progress)?,
    };
    bar.finish_and_clear();
    Ok(vectors)
}

pub fn run(a: EmbedArgs) -> Result<()> {
    let backend = a.backend.kind_announced();
    let ext = a.out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    if !matches!(ext.as_deref(), Some("npy" | "safetensors")) {
        anyhow::bail!("--out {}: the extension must be .npy or .safetensors", a.out.display());
    }
    let shard = a.shard.resolve()?;
    let stored = tears::data::StoredSummaries::load(&a.summaries)
        .with_context(|| format!("reading the summaries {}", a.summaries.display()))?;
    // Rows follow the input file's order (first appearance of each user), this shard's users only.
    let all = stored.in_file_order().count();
    let (users, texts): (Vec<u64>, Vec<&str>) = stored.in_file_order().filter(|(u, _)| shard.contains(*u)).unzip();
    if !shard.is_whole() {
        println!("shard {shard}: {} of {all} users", users.len());
    }
    let bar = progress_bar(
        texts.len() as u64,
        "{bar:40} {pos}/{len} summaries [{elapsed_precise}, {per_sec}, eta {eta}]",
        !a.no_progress,
    );
    let started = Instant::now();
    let (vectors, ran_on) = match &a.encoder {
        EncoderChoice::Local => {
            (tears::backend::run(backend, EmbedJob { args: &a, texts, bar })??, backend.name().to_string())
        }
        // The library's errors already name the server.
        EncoderChoice::Tei(url) => (embed_tei(&a, url, &texts, bar)?, format!("TEI server {url}")),
    };
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
    let stamp = stamp_path(&a.out);
    if shard.is_whole() {
        // A stamp left by an earlier sharded run would make this whole file pass for a part.
        if stamp.is_file() {
            std::fs::remove_file(&stamp)
                .with_context(|| format!("removing the stale shard stamp {}", stamp.display()))?;
        }
    } else {
        let source = a
            .summaries
            .file_name()
            .map_or_else(|| a.summaries.display().to_string(), |n| n.to_string_lossy().into_owned());
        ShardStamp::new(ShardKind::Embeddings, shard, source).write_beside(&a.out)?;
        println!("wrote {} (shard {shard} of the embeddings)", stamp.display());
    }
    println!(
        "{} summaries in {seconds:.2} s ({:.1} summaries/s) on {ran_on}",
        vectors.len(),
        vectors.len() as f64 / seconds.max(1e-9),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};

    use clap::Parser;
    use tears::data::shard::{Shard, ShardSpec, ShardStamp};

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: EmbedArgs,
    }

    fn parse(list: &[&str]) -> Result<EmbedArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("embed").chain(list.iter().copied())).map(|c| c.args)
    }

    /// A loopback TEI server (`/info`, `/embed` answering `[text length, first byte]` per input)
    /// for the rest of the test process; its base URL.
    fn tei_stub() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
                let (mut line, mut first, mut length) = (String::new(), String::new(), 0);
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && !line.trim().is_empty() {
                    if first.is_empty() {
                        first = line.clone();
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    line.clear();
                }
                let mut body = vec![0u8; length];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let reply = if first.starts_with("GET /info") {
                    serde_json::json!({"model_id": "stub/minilm", "model_sha": null, "model_dtype": "float32",
                        "model_type": {"embedding": {"pooling": "mean"}}, "max_input_length": 256,
                        "max_client_batch_size": 3})
                } else {
                    let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    let inputs = body["inputs"].as_array().cloned().unwrap_or_default();
                    let rows: Vec<[f32; 2]> = inputs
                        .iter()
                        .map(|t| t.as_str().unwrap_or_default())
                        .map(|t| [t.len() as f32, f32::from(t.bytes().next().unwrap_or(0))])
                        .collect();
                    serde_json::json!(rows)
                };
                let reply = reply.to_string();
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                );
            }
        });
        url
    }

    #[test]
    fn encoder_and_shard_flags_parse() {
        let base = ["--summaries", "s.json", "--out", "e.npy"];
        let a = parse(&base).expect("defaults");
        assert_eq!((a.encoder, a.shard.shard, a.shard.shards), (EncoderChoice::Local, None, None));
        let a = parse(&[&base[..], &["--encoder", "tei:http://h:8080", "--shard", "auto", "--shards", "4"]].concat())
            .expect("tei, auto");
        assert_eq!(a.encoder, EncoderChoice::Tei("http://h:8080".into()));
        assert_eq!((a.shard.shard, a.shard.shards), (Some(ShardSpec::Auto), Some(4)));
        let a = parse(&[&base[..], &["--shard", "2/5"]].concat()).expect("fixed shard");
        assert_eq!(a.shard.shard, Some(ShardSpec::Fixed(Shard::new(2, 5).expect("2/5"))));
        for bad in [["--encoder", "tei:h:8080"], ["--encoder", "http://h"], ["--shard", "5/5"], ["--shards", "0"]] {
            assert!(parse(&[&base[..], &bad[..]].concat()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn shards_through_a_tei_server_cover_the_users_once_and_carry_stamps() {
        let url = tei_stub();
        let dir = tempfile::tempdir().expect("tmp");
        let summaries = dir.path().join("s.json");
        // Users 1..=20 in this order in the file (a JSON object written by hand keeps it).
        let entries: Vec<String> = (1..=20).map(|u| format!("\"{u}\": \"user {u} likes {}\"", "x".repeat(u))).collect();
        std::fs::write(&summaries, format!("{{{}}}", entries.join(", "))).expect("write summaries");
        let encoder = format!("tei:{url}");
        let embed = |out: &std::path::Path, shard: Option<&str>| {
            let mut list = vec!["--no-progress", "--encoder", &encoder, "--summaries"];
            let (s, o) = (summaries.to_str().expect("utf-8 path"), out.to_str().expect("utf-8 path"));
            list.extend([s, "--out", o]);
            if let Some(shard) = shard {
                list.extend(["--shard", shard]);
            }
            run(parse(&list).expect("arguments")).expect("embed");
        };
        let mut seen = Vec::new();
        for i in 0..3u32 {
            let out = dir.path().join(format!("part{i}.npy"));
            embed(&out, Some(&format!("{i}/3")));
            let users: Vec<u64> = std::fs::read_to_string(export::users_sidecar(&out))
                .expect("users")
                .lines()
                .map(|l| l.parse().expect("id"))
                .collect();
            let shard = Shard::new(i, 3).expect("shard");
            assert!(users.iter().all(|&u| shard.contains(u)), "{users:?}");
            assert!(users.windows(2).all(|w| w[0] < w[1]), "file order: {users:?}");
            let stamp = ShardStamp::read_beside(&out).expect("read stamp").expect("a stamp");
            assert_eq!(stamp, ShardStamp::new(ShardKind::Embeddings, shard, "s.json"));
            // The .npy holds one row of 2 values per user.
            let bytes = std::fs::read(&out).expect("npy");
            let header_len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
            let header = String::from_utf8_lossy(&bytes[10..10 + header_len]).into_owned();
            assert!(header.contains(&format!("'shape': ({}, 2)", users.len())), "{header}");
            seen.extend(users);
        }
        seen.sort_unstable();
        assert_eq!(seen, (1..=20).collect::<Vec<u64>>());
        // A whole run over a part's file drops the part's stamp.
        let part = dir.path().join("part0.npy");
        embed(&part, None);
        assert!(ShardStamp::read_beside(&part).expect("read").is_none());
        assert_eq!(std::fs::read_to_string(export::users_sidecar(&part)).expect("users").lines().count(), 20);
    }
}
