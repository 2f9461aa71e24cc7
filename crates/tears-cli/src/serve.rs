//! `tears serve`: the interactive scrutable page (edit a summary, move alpha, watch the list)
//! and its JSON API for a trained TEARS model, with the users of a split to pick from.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use tears::backend::BackendJob;
use tears::data::Split;
use tears::model::recommend::{ItemTable, ScrutableModel};
use tears::model::{LoadOptions, SummariesFile};
use tears_serve::{Limits, ServeError, Server, check_address, users_from_split};

use crate::common::{BackendFlag, load_split};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Model directory written by `tears train tears`.
    #[arg(long)]
    model: PathBuf,
    /// A split whose test and validation users the page offers (their history and stored
    /// summary); without it the page serves new users only.
    #[arg(long)]
    split: Option<PathBuf>,
    /// The users' summaries (default: the file the model recorded, when it is still there).
    #[arg(long, requires = "split")]
    summaries: Option<PathBuf>,
    /// The address to listen on. A non-loopback address needs --allow-remote.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Serve on a non-loopback address: anyone who can reach it can use the page and the API
    /// (read the split users' histories and summaries, and spend this machine's CPU).
    #[arg(long)]
    allow_remote: bool,
    /// Most model requests computed at once (default: one per core, at most 8).
    #[arg(long)]
    workers: Option<usize>,
    #[command(flatten)]
    backend: BackendFlag,
    /// Read the sentence encoder from this folder instead of the recorded one (it must be the
    /// same model).
    #[arg(long)]
    encoder_dir: Option<PathBuf>,
}

struct Open<'a> {
    dir: &'a std::path::Path,
    options: LoadOptions,
    split: Option<&'a Split>,
}

impl BackendJob for Open<'_> {
    type Output = tears::model::Result<ScrutableModel>;
    fn run<B: burn::tensor::backend::AutodiffBackend>(self, device: B::Device) -> Self::Output {
        match self.split {
            Some(split) if !self.dir.join(tears::recommender::ITEMS_FILE).is_file() => {
                let loaded = tears::model::load::<B::InnerBackend>(self.dir, split, &self.options, &device)?;
                Ok(ScrutableModel::new(loaded, ItemTable::new(split.items.clone())))
            }
            _ => ScrutableModel::open::<B::InnerBackend>(self.dir, &self.options, &device),
        }
    }
}

/// The split's summaries: --summaries, else the model's recorded file (a warning, and users
/// without summaries, when it is gone).
fn summaries(a: &ServeArgs, split: &Split) -> Result<Option<SummariesFile>> {
    let (_, record) = tears::model::read_record(&a.model, split)?;
    match tears::model::summaries_for(&record, a.summaries.as_deref()) {
        Ok(s) => Ok(s),
        Err(e) if a.summaries.is_none() => {
            tracing::warn!(
                "the model's recorded summaries cannot be read ({e}): users come without summaries; pass --summaries"
            );
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

pub fn run(a: ServeArgs) -> Result<()> {
    check_address(a.addr, a.allow_remote)?;
    let split = a.split.as_deref().map(load_split).transpose()?;
    let users = match &split {
        Some(s) => {
            let file = summaries(&a, s)?;
            users_from_split(s, file.as_ref().map(|f| &f.profiles))
        }
        None => Vec::new(),
    };
    // No embedding cache: every text a client types would be written to it.
    let options = LoadOptions { encoder_dir: a.encoder_dir.clone(), embedding_cache: None };
    let job = Open { dir: &a.model, options, split: split.as_ref() };
    let model =
        tears::backend::run(a.backend.kind(), job)?.with_context(|| format!("opening {}", a.model.display()))?;
    let mut limits = Limits::default();
    if let Some(w) = a.workers {
        limits.workers = w;
    }
    let server = Server::new(model, users, limits)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async {
        let listener =
            tokio::net::TcpListener::bind(a.addr).await.map_err(|source| ServeError::Bind { addr: a.addr, source })?;
        let bound = listener.local_addr().map_err(ServeError::Io)?;
        println!("serving {} users of {} on http://{bound}/ (Ctrl-C stops)", server.users().len(), a.model.display());
        let stop = async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tears_serve::serve(listener, server.router(), stop).await
    })?;
    Ok(())
}
