//! `tears evaluate`: score a saved model on a split's test or validation users.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use tears::backend::{BackendJob, BackendKind};
use tears::baselines::{EvalOptions, EvalSummary, Manifest, Recommender};
use tears::data::shard::ShardKind;
use tears::data::{EvalSet, EvalUsers, Split};
use tears::model::{ALPHA_GRID, LoadOptions, ScrutableRecommender};
use tears::recommender::{Family, MissingProfile, ModelKind, UserEvaluation, evaluate_users_with_profiles};

use crate::common::{BackendFlag, ShardArgs, load_split, write_json, write_stamp};
use crate::train::scrutable::{MissingArg, embedding_cache};

/// The values of `--set`: the command-line face of [`EvalSet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EvalSetArg {
    Test,
    #[value(aliases = ["valid", "val"])]
    Validation,
}

impl From<EvalSetArg> for EvalSet {
    fn from(s: EvalSetArg) -> Self {
        match s {
            EvalSetArg::Test => EvalSet::Test,
            EvalSetArg::Validation => EvalSet::Validation,
        }
    }
}

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Model directory written by `tears train`.
    #[arg(long)]
    model: PathBuf,
    /// Split directory the model was trained on.
    #[arg(long)]
    split: PathBuf,
    /// The users to evaluate on.
    #[arg(long, value_enum, default_value_t = EvalSetArg::Test)]
    set: EvalSetArg,
    /// Cut-offs, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = EvalOptions::default().ks)]
    k: Vec<usize>,
    /// Users scored at once.
    #[arg(long, default_value_t = EvalOptions::default().batch_size)]
    batch_size: usize,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also write every user's accuracy to this JSON file (users in ascending id order), the
    /// input of paired tests and of `tears merge` over shards.
    #[arg(long)]
    per_user: Option<PathBuf>,
    #[command(flatten)]
    shard: ShardArgs,
    #[command(flatten)]
    backend: BackendFlag,
    /// TEARS/GERS: the mixing weight: a number in [0, 1] (1 = profile only), `best` (alpha*,
    /// chosen on validation users after training) or `sweep` (every alpha of 0, 0.1, ..., 1).
    #[arg(long, default_value = "best", value_parser = parse_alpha)]
    alpha: AlphaArg,
    /// TEARS: the summaries to score with (default: the file recorded in the model directory,
    /// which must be unchanged). Edited summaries go here.
    #[arg(long)]
    summaries: Option<PathBuf>,
    /// TEARS: what to do with evaluated users that have no summary.
    #[arg(long, value_enum, default_value_t = MissingArg::default())]
    missing_summary: MissingArg,
    /// TEARS: read the sentence encoder from this folder instead of the recorded one (it must be
    /// the same model).
    #[arg(long)]
    encoder_dir: Option<PathBuf>,
    /// TEARS: cache folder of sentence vectors (default: SPLIT/embedding-cache; `none`: off).
    #[arg(long)]
    embedding_cache: Option<PathBuf>,
}

/// `--alpha`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AlphaArg {
    /// The recorded alpha*.
    Best,
    /// Every alpha of the grid.
    Sweep,
    /// This alpha.
    Value(f32),
}

fn parse_alpha(s: &str) -> Result<AlphaArg, String> {
    match s {
        "best" => Ok(AlphaArg::Best),
        "sweep" => Ok(AlphaArg::Sweep),
        v => match v.parse::<f32>() {
            Ok(a) if (0.0..=1.0).contains(&a) => Ok(AlphaArg::Value(a)),
            _ => Err(format!("{v:?} is not best, sweep or a number in [0, 1]")),
        },
    }
}

/// Loads a TEARS/GERS model directory on the chosen backend.
struct ScrutableLoadJob<'a> {
    dir: &'a Path,
    split: &'a Split,
    options: LoadOptions,
}

impl BackendJob for ScrutableLoadJob<'_> {
    type Output = tears::model::Result<Box<dyn ScrutableRecommender>>;
    fn run<B: burn::tensor::backend::AutodiffBackend>(self, device: B::Device) -> Self::Output {
        tears::model::load::<B::InnerBackend>(self.dir, self.split, &self.options, &device)
    }
}

/// Loads a VAE backbone's model directory on the chosen backend.
struct BackboneLoadJob<'a> {
    dir: &'a Path,
    split: &'a Split,
}

impl BackendJob for BackboneLoadJob<'_> {
    type Output = tears::vae::Result<Box<dyn Recommender>>;
    fn run<B: burn::tensor::backend::AutodiffBackend>(self, device: B::Device) -> Self::Output {
        tears::vae::load::<B::InnerBackend>(self.dir, self.split, &device)
    }
}

/// Loads a baseline or a backbone on `backend`.
fn load_any_model(dir: &Path, split: &Split, backend: BackendKind) -> Result<Box<dyn Recommender>> {
    let manifest = Manifest::read(dir)?;
    match manifest.kind.parse::<ModelKind>().map(ModelKind::family) {
        Ok(Family::Backbone) => Ok(tears::backend::run(backend, BackboneLoadJob { dir, split })??),
        _ => Ok(tears::baselines::load_model(dir, split)?),
    }
}

/// Evaluates a TEARS/GERS model at the alphas `--alpha` names.
fn evaluate_scrutable(
    a: &EvaluateArgs,
    split: &Split,
    users: &EvalUsers,
    options: &EvalOptions,
) -> Result<Vec<(Option<f32>, UserEvaluation)>> {
    let set = EvalSet::from(a.set);
    let (_, record) = tears::model::read_record(&a.model, split)?;
    let summaries = tears::model::summaries_for(&record, a.summaries.as_deref())?;
    if let (Some(given), Some(recorded)) = (&a.summaries, &record.summaries)
        && summaries.as_ref().is_some_and(|s| s.record.sha256 != recorded.sha256)
    {
        println!("scoring with {} (the model was trained with {})", given.display(), recorded.path.display());
    }
    let options_load = LoadOptions {
        encoder_dir: a.encoder_dir.clone(),
        embedding_cache: embedding_cache(a.embedding_cache.as_ref(), &a.split),
    };
    let mut model =
        tears::backend::run(a.backend.kind(), ScrutableLoadJob { dir: &a.model, split, options: options_load })??;
    let profiles = summaries.as_ref().map(|s| &s.profiles);
    let missing = a.missing_summary.into();
    let alphas: Vec<f32> = match a.alpha {
        AlphaArg::Sweep => ALPHA_GRID.to_vec(),
        AlphaArg::Best => vec![model.alpha_star().unwrap_or(model.alpha())],
        AlphaArg::Value(v) => vec![v],
    };
    let mut out = Vec::new();
    for alpha in alphas {
        model.set_alpha(alpha);
        let evaluation =
            evaluate_users_with_profiles(model.as_ref(), users, profiles, missing, options).with_context(|| {
                format!("evaluating {} at alpha {alpha} on {} {}", model.kind(), split.meta.dataset, set.name())
            })?;
        out.push((Some(model.alpha()), evaluation));
    }
    Ok(out)
}

/// The file `tears evaluate --per-user` writes: each evaluated alpha's per-user accuracy.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PerUserFile {
    /// The model kind.
    pub model: String,
    /// The split's dataset.
    pub dataset: String,
    /// `test` or `validation`.
    pub set: String,
    /// One entry per alpha evaluated (one, without an alpha, for models that have none).
    pub runs: Vec<PerUserRun>,
}

/// One alpha's per-user accuracy in a [`PerUserFile`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PerUserRun {
    /// The alpha (TEARS/GERS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// Users in ascending id order and their accuracy; the report is recomputed in that order.
    pub evaluation: UserEvaluation,
}

impl PerUserFile {
    /// What shard stamps of this file record as their source.
    pub fn source(&self) -> String {
        format!("{} on {} {}", self.model, self.dataset, self.set)
    }
}

pub fn run(a: EvaluateArgs) -> Result<()> {
    let set = EvalSet::from(a.set);
    let split = load_split(&a.split)?;
    let shard = a.shard.resolve()?;
    if !shard.is_whole() && a.per_user.is_none() {
        anyhow::bail!("--shard {shard} needs --per-user FILE: `tears merge` joins the shards' per-user files");
    }
    let users = split.eval(set).subset(|u| shard.contains(u));
    if !shard.is_whole() {
        println!("shard {shard}: {} of the {} {} users", users.len(), split.eval(set).len(), set.name());
    }
    let options = EvalOptions { ks: a.k.clone(), batch_size: a.batch_size };
    let manifest = Manifest::read(&a.model).with_context(|| format!("loading the model in {}", a.model.display()))?;
    let kind = manifest.kind.clone();
    let started = Instant::now();
    let evaluations = if manifest.kind.parse::<ModelKind>().map(ModelKind::family).ok() == Some(Family::Scrutable) {
        evaluate_scrutable(&a, &split, &users, &options)
            .with_context(|| format!("with the model in {}", a.model.display()))?
    } else {
        let model = load_any_model(&a.model, &split, a.backend.kind())
            .with_context(|| format!("loading the model in {}", a.model.display()))?;
        if model.n_items() != split.n_items() {
            anyhow::bail!(
                "the model in {} scores {} items, the split has {}",
                a.model.display(),
                model.n_items(),
                split.n_items()
            );
        }
        let evaluation = evaluate_users_with_profiles(model.as_ref(), &users, None, MissingProfile::Error, &options)
            .with_context(|| format!("evaluating {} on {} {}", model.kind(), split.meta.dataset, set.name()))?;
        vec![(None, evaluation)]
    };
    let summaries: Vec<EvalSummary> = evaluations
        .iter()
        .map(|(alpha, e)| EvalSummary {
            alpha: alpha.map(f64::from),
            ..EvalSummary::new(&kind, &split.meta.dataset, set, &e.report)
        })
        .collect();
    for (summary, (_, e)) in summaries.iter().zip(&evaluations) {
        print_report(summary, &e.report, started.elapsed());
    }
    if let Some(path) = &a.json {
        match summaries.as_slice() {
            [one] => write_json(path, one)?,
            many => write_json(path, many)?,
        }
        println!("wrote {}", path.display());
    }
    if let Some(path) = &a.per_user {
        let file = PerUserFile {
            model: kind.clone(),
            dataset: split.meta.dataset.clone(),
            set: set.name().to_string(),
            runs: evaluations
                .into_iter()
                .map(|(alpha, e)| PerUserRun { alpha: alpha.map(f64::from), evaluation: e.canonical() })
                .collect(),
        };
        write_json(path, &file)?;
        write_stamp(path, shard, ShardKind::Evaluation, file.source())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn print_report(summary: &EvalSummary, report: &tears::metrics::AccuracyReport, elapsed: std::time::Duration) {
    println!(
        "{} on {} ({}){}: {} users counted, {} excluded, in {:.2?}",
        summary.model,
        summary.dataset,
        summary.set,
        summary.alpha.map(|a| format!(" at alpha {a:.1}")).unwrap_or_default(),
        summary.users,
        summary.excluded,
        elapsed
    );
    println!("{:>6}  {:>17}  {:>17}  {:>17}", "k", "recall", "plain_recall", "ndcg");
    for r in &report.results {
        println!(
            "{:>6}  {:.4} ± {:.4}  {:.4} ± {:.4}  {:.4} ± {:.4}",
            r.k,
            r.recall.mean,
            r.recall.std_err,
            r.plain_recall.mean,
            r.plain_recall.std_err,
            r.ndcg.mean,
            r.ndcg.std_err
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_set_name_and_alias_means_what_the_library_says() {
        for v in EvalSetArg::value_variants() {
            let pv = v.to_possible_value().expect("visible");
            assert_eq!(EvalSet::from(*v).name(), pv.get_name());
            for n in pv.get_name_and_aliases() {
                assert_eq!(n.parse::<EvalSet>().expect("library name"), EvalSet::from(*v), "{n}");
            }
        }
    }
}
