//! The `coverguard` command.

mod cli;
mod cli_backfill;
mod cli_users;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use coverguard::provision::{self, Cache};

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
    Backfill(cli_backfill::BackfillArgs),
    /// Screen backfill items from the JetStream queue into the shared store.
    Worker(cli_backfill::WorkerArgs),
    /// Print HMA bank lines (`pdq`, `pdq_<region>`, `md5`) for image files, to build a bank
    /// from images. Exit status as `scan`'s: 1 when a PDQ line was left out under the
    /// quality gate, 2 when an image could not be hashed.
    Hash(cli::hash::HashArgs),
    /// Bank operations on the store.
    Banks {
        #[command(subcommand)]
        command: cli_backfill::BanksCommand,
    },
    /// Reviewer console accounts.
    Users {
        #[command(subcommand)]
        command: cli_users::UsersCommand,
    },
    /// Manage the model and ONNX Runtime.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Download and verify the model, the OCR models and ONNX Runtime into the cache.
    Fetch {
        /// Also fetch the scikit-image sample photos the parity tests use.
        #[arg(long)]
        test_data: bool,
    },
    /// Print where the model and runtime are (fetching them if needed).
    Path,
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
        Command::Models { command } => models(command).map(|()| ExitCode::SUCCESS),
        Command::Serve { config } => serve(config).map(|()| ExitCode::SUCCESS),
        Command::Hash(args) => cli::hash::hash(args),
        Command::Backfill(args) => cli_backfill::backfill(args),
        Command::Worker(args) => cli_backfill::worker(args),
        Command::Banks { command } => cli_backfill::banks(command),
        Command::Users { command } => cli_users::users(command),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("coverguard: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn serve(config: Option<PathBuf>) -> anyhow::Result<()> {
    let config = coverguard::config::ServiceConfig::load(config.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(coverguard::service::serve(config, async {
        // Stop accepting on Ctrl-C or SIGTERM; in-flight requests finish.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
        tracing::info!("shutting down");
    }))
}

fn models(command: ModelsCommand) -> anyhow::Result<()> {
    let cache = Cache::from_env()?;
    match command {
        ModelsCommand::Fetch { test_data } => {
            let p = provision::provision(&cache, None)?;
            println!("model:   {}", p.model_path.display());
            println!("runtime: {}", p.runtime_library.display());
            let ocr = provision::provision_ocr(&cache)?;
            println!("ocr detector:   {}", ocr.detector.display());
            println!("ocr recogniser: {}", ocr.recogniser.display());
            println!("ocr classifier: {}", ocr.classifier.display());
            if test_data {
                let dir = provision::ensure_asset(&cache, "skimage-data")?;
                println!("test data: {}", dir.display());
            }
        }
        ModelsCommand::Path => {
            let p = provision::provision(&cache, None)?;
            println!("cache:   {}", cache.root().display());
            println!("model:   {}", p.model_path.display());
            println!("runtime: {}", p.runtime_library.display());
        }
    }
    Ok(())
}
