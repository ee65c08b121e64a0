//! `coverguard backfill` and `coverguard worker`: argument parsing and printing; the work is
//! in `coverguard::backfill` and the pipeline.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use coverguard::backfill::jetstream::JobQueueConfig;
use coverguard::backfill::job::{self, ManifestArg, WorkerOptions};
use coverguard::backfill::manifest::ManifestFormat;
use coverguard::backfill::run::BackfillOptions;
use coverguard::config::ServiceConfig;

use super::runtime;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BackfillArgs {
    #[command(subcommand)]
    command: Option<BackfillCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum BackfillCommand {
    /// Put every manifest item on the JetStream work queue for `coverguard worker`s.
    Enqueue {
        #[command(flatten)]
        manifest: ManifestArgs,
        #[command(flatten)]
        queue: QueueArgs,
        /// Service configuration: the job and its size are registered in its store (the
        /// workers' shared store, e.g. `DATABASE_URL`), which `status` reads.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// A job's progress: done and failed items by verdict and error, and the queue.
    Status {
        /// The job id (as printed when the job started).
        #[arg(long, required_unless_present = "manifest")]
        job: Option<String>,
        /// Or the manifest the job was started from.
        #[arg(long, value_name = "FILE")]
        manifest: Option<PathBuf>,
        /// Also show the JetStream queue.
        #[arg(long, value_name = "URL")]
        nats: Option<String>,
        #[arg(long, default_value = "COVERGUARD_BACKFILL")]
        stream: String,
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[derive(Args)]
struct ManifestArgs {
    /// CSV or JSON Lines of `artwork_id, url|path, owner_id` and optional context.
    #[arg(long, value_name = "FILE", required = true)]
    manifest: Option<PathBuf>,
    /// The manifest's format; by default from its extension.
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// The job id; by default derived from the manifest's contents, so a rerun with
    /// the same manifest continues the same job.
    #[arg(long)]
    job: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Csv,
    Jsonl,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    manifest: ManifestArgs,
    /// Items in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Fetches in flight per URL host.
    #[arg(long, default_value_t = 4)]
    per_host: usize,
    /// Tries per URL for errors that may pass (timeouts, 5xx, 429).
    #[arg(long, default_value_t = 3)]
    fetch_attempts: u32,
    /// Skip items whose latest verdict was made under the current model, policy and banks.
    #[arg(long)]
    stale_only: bool,
    /// Where to write one JSON line per item; default `<data_dir>/backfill/<job>.jsonl`.
    #[arg(long, value_name = "FILE")]
    results: Option<PathBuf>,
    /// Service configuration (store, quarantine, policy, webhooks); default: embedded.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Args)]
struct QueueArgs {
    /// The NATS server with JetStream, e.g. nats://127.0.0.1:4222.
    #[arg(long, value_name = "URL")]
    nats: String,
    #[arg(long, default_value = "COVERGUARD_BACKFILL")]
    stream: String,
    /// Seconds a worker holds an item before it goes to another one.
    #[arg(long, default_value_t = 60)]
    ack_wait_secs: u64,
    /// Deliveries before an item goes to the dead-letter stream.
    #[arg(long, default_value_t = 5)]
    max_deliver: i64,
}

impl QueueArgs {
    fn config(&self) -> JobQueueConfig {
        queue_config(&self.stream, self.ack_wait_secs, self.max_deliver)
    }
}

fn queue_config(stream: &str, ack_wait_secs: u64, max_deliver: i64) -> JobQueueConfig {
    let defaults = JobQueueConfig::default();
    JobQueueConfig {
        stream: stream.to_string(),
        subject_prefix: if stream == defaults.stream {
            defaults.subject_prefix.clone()
        } else {
            format!("coverguard.{}", stream.to_ascii_lowercase())
        },
        ack_wait: Duration::from_secs(ack_wait_secs.max(1)),
        max_deliver,
        ..defaults
    }
}

impl ManifestArgs {
    fn manifest(&self) -> ManifestArg {
        ManifestArg {
            path: self.manifest.clone().unwrap_or_default(),
            format: self.format.map(|f| match f {
                FormatArg::Csv => ManifestFormat::Csv,
                FormatArg::Jsonl => ManifestFormat::Jsonl,
            }),
        }
    }
}

#[derive(Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    queue: QueueArgs,
    /// This worker's name, recorded with each item; default `<host>-<pid>`.
    #[arg(long)]
    name: Option<String>,
    /// Items in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Exit once the queue has been empty this many seconds (default: run until stopped).
    #[arg(long, value_name = "SECS")]
    exit_when_idle: Option<u64>,
    /// Redo only what changed since each item's latest screening, as `backfill --stale-only`.
    #[arg(long)]
    stale_only: bool,
    /// Service configuration; workers share its store (Postgres: `DATABASE_URL`).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

pub fn backfill(args: BackfillArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        None => run_local(args.run),
        Some(BackfillCommand::Enqueue {
            manifest,
            queue,
            config,
        }) => {
            let config = ServiceConfig::load(config.as_deref())?;
            let (job_id, summary) = runtime()?.block_on(job::enqueue(
                &config,
                &manifest.manifest(),
                manifest.job.as_deref(),
                &queue.nats,
                queue.config(),
            ))?;
            println!(
                "job {job_id}: {} item(s) queued, {} already queued",
                summary.queued, summary.duplicates
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(BackfillCommand::Status {
            job,
            manifest,
            nats,
            stream,
            config,
        }) => {
            let config = ServiceConfig::load(config.as_deref())?;
            let job_id = match (job, manifest) {
                (Some(job), _) => job,
                (None, Some(path)) => ManifestArg { path, format: None }.job_id(None, false)?,
                (None, None) => anyhow::bail!("give --job or --manifest"),
            };
            let queue = nats
                .as_deref()
                .map(|url| (url, queue_config(&stream, 60, 5)));
            let (counts, queue) = runtime()?.block_on(job::status(&config, &job_id, queue))?;
            let total = counts
                .total
                .map_or_else(|| "?".to_string(), |t| t.to_string());
            println!(
                "job {job_id}: {} done, {} failed, of {total}",
                counts.done, counts.failed
            );
            for (verdict, n) in &counts.verdicts {
                println!("  {verdict}: {n}");
            }
            for (kind, n) in &counts.errors {
                println!("  error {kind}: {n}");
            }
            if let Some(q) = queue {
                println!(
                    "queue: {} queued ({} never delivered, {} in flight), {} redelivered, {} dead letters",
                    q.queued, q.pending, q.in_flight, q.redelivered, q.dead_letters
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn run_local(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = ServiceConfig::load(args.config.as_deref())?;
    let options = BackfillOptions {
        concurrency: args.concurrency,
        per_host: args.per_host,
        fetch_attempts: args.fetch_attempts.max(1),
        stale_only: args.stale_only,
        ..BackfillOptions::default()
    };
    let outcome = runtime()?.block_on(job::run_local(
        &config,
        &args.manifest.manifest(),
        args.manifest.job.as_deref(),
        options,
        args.results.as_deref(),
    ))?;
    let s = &outcome.summary;
    eprintln!(
        "job {}: {} screened ({} reinferred, {} rematched, {} redecided), {} skipped as current, {} already done, {} failed, {} bad rows, {} repeated ids",
        outcome.job_id,
        s.screened,
        s.reinferred,
        s.rematched,
        s.redecided,
        s.skipped_current,
        s.already_done,
        s.failed,
        s.bad_rows,
        s.duplicate_rows
    );
    for (verdict, n) in &outcome.counts.verdicts {
        eprintln!("  {verdict}: {n}");
    }
    for (kind, n) in &outcome.counts.errors {
        eprintln!("  error {kind}: {n}");
    }
    eprintln!(
        "{} image(s) inferred (identical bytes once); results: {}",
        outcome.inferred,
        outcome.results.display()
    );
    // Like scan: 2 when something could not be screened, 1 when something was flagged.
    let flagged = outcome
        .counts
        .verdicts
        .iter()
        .any(|(v, n)| v != "allow" && *n > 0);
    Ok(ExitCode::from(
        if outcome.counts.failed > 0 || s.bad_rows > 0 {
            2
        } else if flagged {
            1
        } else {
            0
        },
    ))
}

pub fn worker(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let config = ServiceConfig::load(args.config.as_deref())?;
    let name = args.name.unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "worker".into());
        format!("{host}-{}", std::process::id())
    });
    let options = WorkerOptions {
        name: name.clone(),
        backfill: BackfillOptions {
            concurrency: args.concurrency,
            stale_only: args.stale_only,
            ..BackfillOptions::default()
        },
        exit_when_idle: args.exit_when_idle.map(Duration::from_secs),
    };
    let processed = runtime()?.block_on(async {
        let stop = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
            }
        };
        job::work(&config, &args.queue.nats, args.queue.config(), options, stop).await
    })?;
    eprintln!(
        "worker {name}: {} item(s) done: {} screened ({} reinferred, {} rematched, {} redecided), {} skipped as current, {} already done, {} failed",
        processed.finished(),
        processed.screened,
        processed.reinferred,
        processed.rematched,
        processed.redecided,
        processed.skipped_current,
        processed.already_done,
        processed.failed
    );
    Ok(ExitCode::SUCCESS)
}
