//! The `coverguard` command.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Screens cover artwork: hash banks (PDQ, MD5, SHA-256) and an explicit-content detector.
#[derive(Parser)]
#[command(version, long_version = coverguard::build_info::LONG_VERSION, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Screen image files, directories (recursed) and http(s) URLs.
    ///
    /// Exit status: 0 every input allowed, 1 at least one review or block,
    /// 2 at least one input could not be screened (2 wins over 1).
    Scan(cli::scan::ScanArgs),
    /// Run the screening HTTP service (see README: Serving).
    Serve {
        /// Service configuration (TOML); without one the embedded defaults run.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Rescan existing artwork from a manifest, on this machine or through a JetStream
    /// queue (see README: Backfill). Rerunning the same manifest resumes the job.
    Backfill(cli::backfill::BackfillArgs),
    /// Screen backfill items from the JetStream queue into the shared store.
    Worker(cli::backfill::WorkerArgs),
    /// Print HMA bank lines (`pdq`, `pdq_<region>`, `md5`) for image files, to build a bank
    /// from images. Exit status as `scan`'s: 1 when a PDQ line was left out under the
    /// quality gate, 2 when an image could not be hashed.
    Hash(cli::hash::HashArgs),
    /// Bank operations on the store.
    Banks {
        #[command(subcommand)]
        command: cli::banks::BanksCommand,
    },
    /// Reviewer console accounts.
    Users {
        #[command(subcommand)]
        command: cli::users::UsersCommand,
    },
    /// Manage the model and ONNX Runtime.
    Models {
        #[command(subcommand)]
        command: cli::models::ModelsCommand,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("COVERGUARD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("coverguard=info,ort=warn")),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scan(args) => cli::scan::scan(args),
        Command::Models { command } => cli::models::models(command).map(|()| ExitCode::SUCCESS),
        Command::Serve { config } => cli::serve::serve(config).map(|()| ExitCode::SUCCESS),
        Command::Hash(args) => cli::hash::hash(args),
        Command::Backfill(args) => cli::backfill::backfill(args),
        Command::Worker(args) => cli::backfill::worker(args),
        Command::Banks { command } => cli::banks::banks(command),
        Command::Users { command } => cli::users::users(command),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("coverguard: {e:#}");
            ExitCode::from(2)
        }
    }
}
