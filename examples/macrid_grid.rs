//! Chooses MacridVAE's concepts K, latent size d, cosine temperature tau and KL cap on the
//! validation users of a benchmark: trains one model per setting and ranks the settings by the
//! best validation NDCG@100 of their run (the epoch-selection metric). Test users are not touched.
//!
//! ```sh
//! cargo run --release --example macrid_grid -- --benchmark ml1m-gpt4 --out results/macrid-grid \
//!     --grid 7:100:0.1:0.2,2:100:0.1:0.2,2:400:0.1:0.2,4:200:0.1:0.2
//! ```
//!
//! Each setting `K:d:tau:beta_cap` trains in `OUT/K{K}-d{d}-tau{tau}-beta{beta}` (resumable; a
//! finished folder is read back, not retrained), with the backbone's reference schedule (100
//! epochs, Adam 1e-3, batch 500, patience 20) and training seed `--seed` (0). The split is the
//! benchmark's (split seed 0, as `reproduce` makes it). `OUT/grid.md` and `OUT/grid.json` list
//! every setting run so far in that folder: best validation NDCG@100, its epoch, epochs run,
//! seconds per training epoch.

mod common;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::backend::AutodiffBackend;
use serde::Serialize;
use tears::backend::BackendJob;
use tears::data::split::{Protocol, SummaryWindow};
use tears::data::{DatasetName, PrepareOptions, Split, default_data_dir, prepare};
use tears::vae::{BackboneKind, EpochLog, MacridConfig, ModelConfig, RunOptions, TrainConfig};

const FLAGS: [&str; 5] = ["--benchmark", "--out", "--grid", "--seed", "--max-epochs"];

/// One grid point.
#[derive(Debug, Clone, Copy, Serialize)]
struct Setting {
    concepts: usize,
    dim: usize,
    tau: f32,
    beta_cap: f32,
}

impl Setting {
    fn parse(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split(':').collect();
        let [k, d, tau, beta] = parts.as_slice() else {
            bail!("grid point {s:?} is not K:d:tau:beta_cap (for example 2:400:0.1:0.2)");
        };
        let number = |what: &str, v: &str| -> Result<f64> {
            v.parse::<f64>().with_context(|| format!("grid point {s:?}: {what} {v:?} is not a number"))
        };
        Ok(Setting {
            concepts: k.parse().with_context(|| format!("grid point {s:?}: K {k:?} is not a count"))?,
            dim: d.parse().with_context(|| format!("grid point {s:?}: d {d:?} is not a count"))?,
            tau: number("tau", tau)? as f32,
            beta_cap: number("beta_cap", beta)? as f32,
        })
    }

    fn config(&self) -> MacridConfig {
        MacridConfig {
            concepts: self.concepts,
            dim: self.dim,
            tau: self.tau,
            beta_cap: self.beta_cap,
            ..MacridConfig::default()
        }
    }

    fn folder(&self) -> String {
        format!("K{}-d{}-tau{}-beta{}", self.concepts, self.dim, self.tau, self.beta_cap)
    }
}

/// One finished grid point, as written to `grid.json`.
#[derive(Debug, Serialize)]
struct Row {
    setting: Setting,
    folder: String,
    best_validation_ndcg100: f64,
    best_epoch: usize,
    epochs_run: usize,
    seconds_per_epoch: f64,
    validation_curve: Vec<f64>,
}

struct GridJob<'a> {
    split: &'a Split,
    out: &'a Path,
    settings: Vec<Setting>,
    train: TrainConfig,
}

impl BackendJob for GridJob<'_> {
    type Output = Result<()>;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Result<()> {
        for (i, s) in self.settings.iter().enumerate() {
            let dir = self.out.join(s.folder());
            if common::finished(&dir) {
                println!("[{}/{}] {}: finished earlier", i + 1, self.settings.len(), s.folder());
                continue;
            }
            println!("[{}/{}] {}: training", i + 1, self.settings.len(), s.folder());
            let model = ModelConfig::MacridVae(s.config());
            let run = RunOptions { out_dir: Some(dir.clone()), resume: true, progress: true, ..RunOptions::default() };
            tears::vae::fit_config::<B>(&model, self.split, &self.train, &run, &device)
                .with_context(|| format!("training MacridVAE {} in {}", s.folder(), dir.display()))?;
        }
        Ok(())
    }
}

/// Reads a finished grid point's training log.
fn row(out: &Path, setting: Setting) -> Result<Option<Row>> {
    let folder = setting.folder();
    let dir = out.join(&folder);
    if !common::finished(&dir) {
        return Ok(None);
    }
    let path = dir.join("train_log.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let log: Vec<EpochLog> = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let curve: Vec<f64> = log.iter().map(|e| e.validation_ndcg.unwrap_or(f64::NAN)).collect();
    let Some((best, value)) = curve.iter().enumerate().filter(|(_, v)| v.is_finite()).max_by(|a, b| a.1.total_cmp(b.1))
    else {
        bail!("{} has no validation NDCG", path.display());
    };
    let seconds = log.iter().map(|e| e.train_seconds).sum::<f64>() / log.len().max(1) as f64;
    Ok(Some(Row {
        setting,
        folder,
        best_validation_ndcg100: *value,
        best_epoch: best + 1,
        epochs_run: log.len(),
        seconds_per_epoch: seconds,
        validation_curve: curve,
    }))
}

/// Every finished grid point in `out` (the settings of this call and of earlier ones).
fn finished_rows(out: &Path) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(out).with_context(|| format!("listing {}", out.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let Some(setting) = parse_folder(&name) else { continue };
        rows.extend(row(out, setting)?);
    }
    rows.sort_by(|a, b| b.best_validation_ndcg100.total_cmp(&a.best_validation_ndcg100));
    Ok(rows)
}

/// The setting a folder name was made from (`None` for other folders).
fn parse_folder(name: &str) -> Option<Setting> {
    let rest = name.strip_prefix('K')?;
    let (k, rest) = rest.split_once("-d")?;
    let (d, rest) = rest.split_once("-tau")?;
    let (tau, beta) = rest.split_once("-beta")?;
    Setting::parse(&format!("{k}:{d}:{tau}:{beta}")).ok()
}

fn table(benchmark: &str, rows: &[Row]) -> String {
    let mut md = format!(
        "# MacridVAE grid on {benchmark} (validation users only)\n\n\
         | K | d | tau | beta cap | best validation NDCG@100 | best epoch | epochs run | s / epoch |\n\
         |---|---|---|---|---|---|---|---|\n"
    );
    for (i, r) in rows.iter().enumerate() {
        let s = &r.setting;
        let mark = if i == 0 { " **(best)**" } else { "" };
        md.push_str(&format!(
            "| {} | {} | {} | {} | {:.4}{mark} | {} | {} | {:.2} |\n",
            s.concepts,
            s.dim,
            s.tau,
            s.beta_cap,
            r.best_validation_ndcg100,
            r.best_epoch,
            r.epochs_run,
            r.seconds_per_epoch
        ));
    }
    md
}

fn main() -> Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let (options, args) = common::Options::from_args(&FLAGS)?;
    let benchmark: DatasetName = args.value("--benchmark").unwrap_or("ml1m-gpt4").parse()?;
    let out = PathBuf::from(args.value("--out").unwrap_or("results/macrid-grid"));
    let seed: u64 = args.value("--seed").map(str::parse).transpose().context("--seed takes a number")?.unwrap_or(0);
    let reference = MacridConfig::default();
    let default_grid = format!("{}:{}:{}:{}", reference.concepts, reference.dim, reference.tau, reference.beta_cap);
    let settings =
        args.value("--grid").unwrap_or(&default_grid).split(',').map(Setting::parse).collect::<Result<Vec<_>>>()?;
    for s in &settings {
        ModelConfig::MacridVae(s.config()).validate().with_context(|| format!("grid point {}", s.folder()))?;
    }
    let base = BackboneKind::MacridVae.default_train();
    let epochs = match args.value("--max-epochs") {
        Some(m) => m.parse::<usize>().context("--max-epochs takes a number")?.min(base.epochs),
        None => base.epochs,
    };
    let train = TrainConfig { seed, epochs, ..base };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    let protocol = match benchmark {
        DatasetName::Ml100k => Some(Protocol::SummaryWindow(SummaryWindow::default())),
        _ => None,
    };
    let options_prepare = PrepareOptions { data_dir: default_data_dir(), seed: 0, protocol, ..Default::default() };
    let split =
        prepare(benchmark, &options_prepare).with_context(|| format!("preparing {}", benchmark.as_str()))?.split;
    println!(
        "== MacridVAE grid on {}: {} settings, training seed {seed}, {} epochs at most (patience {:?}); out {}",
        split.meta.dataset,
        settings.len(),
        train.epochs,
        train.patience,
        out.display()
    );
    tears::backend::run(options.backend, GridJob { split: &split, out: &out, settings, train })??;

    let rows = finished_rows(&out)?;
    let md = table(&split.meta.dataset, &rows);
    let json = serde_json::to_vec_pretty(&rows).context("encoding the grid")?;
    tears::data::io::write_atomic(&out.join("grid.json"), |w| w.write_all(&json))
        .with_context(|| format!("writing {}", out.join("grid.json").display()))?;
    tears::data::io::write_atomic(&out.join("grid.md"), |w| w.write_all(md.as_bytes()))
        .with_context(|| format!("writing {}", out.join("grid.md").display()))?;
    print!("{md}");
    println!("wrote {} and grid.json", out.join("grid.md").display());
    Ok(())
}
