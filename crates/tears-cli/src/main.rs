//! The `tears` command line.

mod backends;
mod common;
mod control;
mod embed;
mod evaluate;
mod merge;
mod prepare;
mod recommend;
mod serve;
mod summarize;
mod summary_stats;
mod train;

use std::io::IsTerminal;

use clap::{Parser, Subcommand};

/// mimalloc keeps freed tensor buffers for reuse where glibc's malloc returns them to the kernel
/// and faults them in again: 13–17 % off a TEARS-RecVAE epoch on flex (docs/benchmarks.md,
/// "The allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Scrutable recommendation with editable natural-language user profiles (TEARS).
#[derive(Debug, Parser)]
#[command(name = "tears", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load a dataset, split it with an evaluation protocol and write the split directory.
    Prepare(Box<prepare::PrepareArgs>),
    /// List the backends compiled into this build and check that each can run a small kernel.
    Backends,
    /// Write a summary of every user of a split (LLM or template), from the ratings a summarizer
    /// may see; resumable: finished users in --out are skipped.
    Summarize(Box<summarize::SummarizeArgs>),
    /// Fit a baseline or train a VAE backbone (one subcommand per model kind) on a split's
    /// training users and save it to a model directory (backbones checkpoint every epoch and
    /// resume).
    Train(train::TrainArgs),
    /// Evaluate a saved model on a split's test or validation users.
    Evaluate(evaluate::EvaluateArgs),
    /// Recommend for one profile (a typed or edited summary, a file, or a split user) with a
    /// trained TEARS or GERS model, optionally with explanations.
    Recommend(Box<recommend::RecommendArgs>),
    /// Serve the interactive scrutable page and its JSON API for a trained TEARS model: pick a
    /// user of --split or start as a new one, edit the summary, move alpha, watch the list
    /// (127.0.0.1 only unless --allow-remote).
    Serve(Box<serve::ServeArgs>),
    /// Run a controllability experiment on a trained TEARS or GERS model: swap the favourite and
    /// least favourite genre (large), append a description of a held-out item (small), or
    /// "More / Less {genre}" profiles (guided); per alpha, with the edited profiles written out.
    Control(Box<control::ControlArgs>),
    /// Draw one SVG figure over several `tears control` runs of the same experiment (Δ against
    /// alpha per model; rank change against alpha per model; guided change per genre).
    ControlFigure(control::ControlFigureArgs),
    /// Are the summaries user-specific? Length in words, and word-level edit distance and BLEU
    /// between pairs of different users' summaries (a seeded sample).
    SummaryStats(Box<summary_stats::SummaryStatsArgs>),
    /// Encode user summaries into sentence embeddings with a BERT-family model folder or a
    /// text-embeddings-inference server (.npy with the user ids in OUT.users.txt, or .safetensors).
    Embed(Box<embed::EmbedArgs>),
    /// Join the outputs of the shards of one batch job (`--shard I/N` of summarize, embed,
    /// evaluate or recommend --batch) into one, in ascending user order; refuses missing,
    /// duplicate or mismatched shards.
    Merge(merge::MergeArgs),
}

fn main() {
    // Colour only on a terminal, and never under NO_COLOR (https://no-color.org).
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Prepare(a) => prepare::run(*a),
        Command::Backends => backends::run(),
        Command::Summarize(a) => summarize::run(*a),
        Command::Train(a) => train::run(a),
        Command::Evaluate(a) => evaluate::run(a),
        Command::Embed(a) => embed::run(*a),
        Command::Merge(a) => merge::run(a),
        Command::Recommend(a) => recommend::run(*a),
        Command::Serve(a) => serve::run(*a),
        Command::Control(a) => control::run(*a),
        Command::ControlFigure(a) => control::figure(a),
        Command::SummaryStats(a) => summary_stats::run(*a),
    };
    if let Err(e) = result {
        eprintln!("error: {}", error_chain(&e));
        std::process::exit(1);
    }
}

/// The error and its causes joined by `: `, leaving out a cause whose text the message already
/// ends with (library errors that quote their source, `path: Is a directory (os error 21)`, would
/// otherwise print it twice).
fn error_chain(e: &anyhow::Error) -> String {
    let mut message = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !message.ends_with(&cause) {
            message.push_str(": ");
            message.push_str(&cause);
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn an_error_chain_names_each_cause_once() {
        let io = std::io::Error::from(std::io::ErrorKind::IsADirectory);
        let inner = tears::summarize::SummarizeError::io("runs/out", io);
        let shown = inner.to_string();
        let e = anyhow::Error::new(inner).context("summarizing stopped");
        assert_eq!(super::error_chain(&e), format!("summarizing stopped: {shown}"));
        assert_eq!(shown.matches("directory").count(), 1, "{shown}");
        let e = anyhow::anyhow!("inner cause").context("outer");
        assert_eq!(super::error_chain(&e), "outer: inner cause");
    }
}
