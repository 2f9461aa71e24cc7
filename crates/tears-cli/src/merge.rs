//! `tears merge`: join the outputs of the shards of one batch job (summary caches, embeddings,
//! top-k lists, per-user evaluations) into one, in ascending user order, refusing missing,
//! duplicate or mismatched shards.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use tears::data::shard::{Shard, ShardKind, ShardStamp, check_cover, stamp_path};
use tears::recommender::UserEvaluation;
use tears::summarize::{CacheRecord, SummaryCache};
use tears::text::export;

use crate::common::write_json;
use crate::evaluate::{PerUserFile, PerUserRun};
use crate::recommend::{TopKLine, write_topk};

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The merged output (for embeddings, .npy with OUT.users.txt, or .safetensors).
    #[arg(long)]
    out: PathBuf,
    /// The shard outputs, each with its stamp beside it (FILE.shard.json), one per shard.
    #[arg(required = true, num_args = 1..)]
    inputs: Vec<PathBuf>,
}

/// Checks that every user of `path` (stamped as `shard`) belongs to that shard.
fn check_users(path: &Path, shard: Shard, users: impl IntoIterator<Item = u64>) -> Result<()> {
    for user in users {
        if !shard.contains(user) {
            bail!(
                "{}: user {user} belongs to shard {}/{}, but the file is stamped as shard {shard}; was it written \
                 by another job?",
                path.display(),
                Shard::index_of(user, shard.count),
                shard.count
            );
        }
    }
    Ok(())
}

/// Sorts `rows` by user and refuses a user present twice.
fn sort_unique<T>(rows: &mut [(u64, T)], what: &str) -> Result<()> {
    rows.sort_by_key(|(u, _)| *u);
    if let Some(w) = rows.windows(2).find(|w| w[0].0 == w[1].0) {
        bail!("user {} has {what} in more than one shard", w[0].0);
    }
    Ok(())
}

fn merge_summaries(inputs: &[(PathBuf, Shard)], out: &Path) -> Result<usize> {
    let mut rows: Vec<(u64, CacheRecord)> = Vec::new();
    for (path, shard) in inputs {
        let cache =
            SummaryCache::open(path).with_context(|| format!("reading the summary cache {}", path.display()))?;
        check_users(path, *shard, cache.records().keys().copied())?;
        rows.extend(cache.records().iter().map(|(u, r)| (*u, r.clone())));
    }
    sort_unique(&mut rows, "a summary")?;
    tears::data::io::write_atomic(out, |w| {
        for (_, record) in &rows {
            serde_json::to_writer(&mut *w, record)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })
    .with_context(|| format!("writing {}", out.display()))?;
    Ok(rows.len())
}

/// Reads an embeddings file: `.npy` with its users sidecar, or `.safetensors`.
fn read_embeddings(path: &Path) -> Result<(Vec<Vec<f32>>, Vec<u64>)> {
    if is_npy(path)? {
        let rows = export::read_npy(path)?;
        let sidecar = export::users_sidecar(path);
        let users = export::read_ids(&sidecar)?;
        if users.len() != rows.len() {
            bail!("{} has {} rows but {} lists {} users", path.display(), rows.len(), sidecar.display(), users.len());
        }
        Ok((rows, users))
    } else {
        Ok(export::read_embeddings_safetensors(path)?)
    }
}

/// Whether `path` names a `.npy` file (else `.safetensors`; anything else is an error).
fn is_npy(path: &Path) -> Result<bool> {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("npy") => Ok(true),
        Some("safetensors") => Ok(false),
        _ => bail!("{}: embeddings must be .npy or .safetensors", path.display()),
    }
}

fn merge_embeddings(inputs: &[(PathBuf, Shard)], out: &Path) -> Result<usize> {
    let npy_out = is_npy(out)?;
    let mut rows: Vec<(u64, Vec<f32>)> = Vec::new();
    let mut dim: Option<(usize, &Path)> = None;
    for (path, shard) in inputs {
        let (vectors, users) = read_embeddings(path)?;
        check_users(path, *shard, users.iter().copied())?;
        if let Some(d) = vectors.first().map(Vec::len) {
            match dim {
                Some((d0, p0)) if d0 != d => {
                    bail!("{} holds {d}-dimensional vectors but {} holds {d0}", path.display(), p0.display())
                }
                _ => dim = Some((d, path)),
            }
        }
        rows.extend(users.into_iter().zip(vectors));
    }
    sort_unique(&mut rows, "an embedding")?;
    let (users, vectors): (Vec<u64>, Vec<Vec<f32>>) = rows.into_iter().unzip();
    if npy_out {
        export::write_npy(out, &vectors)?;
        export::write_ids(&export::users_sidecar(out), &users)?;
    } else {
        export::write_embeddings_safetensors(out, &vectors, &users)?;
    }
    Ok(users.len())
}

fn read_topk(path: &Path) -> Result<Vec<TopKLine>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| {
            serde_json::from_str::<TopKLine>(l).with_context(|| {
                format!("{}:{}: expected a top-k line {{user, alpha, items, scores}}", path.display(), n + 1)
            })
        })
        .collect()
}

fn merge_topk(inputs: &[(PathBuf, Shard)], out: &Path) -> Result<usize> {
    let mut rows: Vec<(u64, TopKLine)> = Vec::new();
    for (path, shard) in inputs {
        let lines = read_topk(path)?;
        check_users(path, *shard, lines.iter().map(|l| l.user))?;
        rows.extend(lines.into_iter().map(|l| (l.user, l)));
    }
    sort_unique(&mut rows, "a top-k list")?;
    let lines: Vec<TopKLine> = rows.into_iter().map(|(_, l)| l).collect();
    write_topk(out, &lines)?;
    Ok(lines.len())
}

fn merge_evaluations(inputs: &[(PathBuf, Shard)], out: &Path) -> Result<usize> {
    let mut files: Vec<(PathBuf, PerUserFile)> = Vec::new();
    for (path, shard) in inputs {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let file: PerUserFile = serde_json::from_slice(&bytes).with_context(|| {
            format!("{}: not a per-user evaluation written by `tears evaluate --per-user`", path.display())
        })?;
        for run in &file.runs {
            check_users(path, *shard, run.evaluation.users.iter().copied())?;
        }
        files.push((path.clone(), file));
    }
    let Some((first_path, first)) = files.first() else { bail!("no inputs") };
    let alphas: Vec<Option<f64>> = first.runs.iter().map(|r| r.alpha).collect();
    for (path, file) in &files {
        let these: Vec<Option<f64>> = file.runs.iter().map(|r| r.alpha).collect();
        if these != alphas {
            bail!("{} was evaluated at alphas {these:?} but {} at {alphas:?}", path.display(), first_path.display());
        }
    }
    let mut runs = Vec::with_capacity(alphas.len());
    for (i, alpha) in alphas.iter().enumerate() {
        let parts: Vec<UserEvaluation> = files.iter().map(|(_, f)| f.runs[i].evaluation.clone()).collect();
        runs.push(PerUserRun { alpha: *alpha, evaluation: UserEvaluation::merge(parts)? });
    }
    let merged =
        PerUserFile { model: first.model.clone(), dataset: first.dataset.clone(), set: first.set.clone(), runs };
    write_json(out, &merged)?;
    for run in &merged.runs {
        let alpha = run.alpha.map(|a| format!(" at alpha {a:.1}")).unwrap_or_default();
        for r in &run.evaluation.report.results {
            println!(
                "{} on {} ({}){alpha}: recall@{k} {:.4} ± {:.4}, ndcg@{k} {:.4} ± {:.4} over {} users",
                merged.model,
                merged.dataset,
                merged.set,
                r.recall.mean,
                r.recall.std_err,
                r.ndcg.mean,
                r.ndcg.std_err,
                r.ndcg.counted,
                k = r.k
            );
        }
    }
    Ok(merged.runs.first().map_or(0, |r| r.evaluation.users.len()))
}

pub fn run(a: MergeArgs) -> Result<()> {
    let mut stamps = Vec::with_capacity(a.inputs.len());
    for path in &a.inputs {
        let stamp = ShardStamp::read_beside(path)?.with_context(|| {
            format!(
                "{} has no shard stamp ({}): was it written with --shard?",
                path.display(),
                stamp_path(path).display()
            )
        })?;
        stamps.push((path.clone(), stamp));
    }
    let n = check_cover(&stamps)?;
    if a.inputs.iter().any(|p| p == &a.out) {
        bail!("--out {} is one of the inputs", a.out.display());
    }
    let kind = stamps[0].1.kind;
    // Every merge sorts by user, so the order of the inputs does not matter.
    let inputs: Vec<(PathBuf, Shard)> =
        stamps.iter().map(|(p, s)| Ok((p.clone(), s.shard()?))).collect::<Result<_>>()?;
    let users = match kind {
        ShardKind::Summaries => merge_summaries(&inputs, &a.out)?,
        ShardKind::Embeddings => merge_embeddings(&inputs, &a.out)?,
        ShardKind::TopK => merge_topk(&inputs, &a.out)?,
        ShardKind::Evaluation => merge_evaluations(&inputs, &a.out)?,
    };
    println!("merged {n} shards of {} ({}) into {}: {users} users", kind.name(), stamps[0].1.source, a.out.display());
    Ok(())
}
