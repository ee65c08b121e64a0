//! The `coverguard` command.

mod cli;
mod cli_backfill;
mod cli_users;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use coverguard::bank::BankSet;
use coverguard::classify::{Detector, DetectorOptions};
use coverguard::decide::{Policy, Verdict};
use coverguard::decode::{DecodeLimits, Resolution};
use coverguard::fetch::{self, DestinationPolicy, HttpFetcher, HttpOptions, Source};
use coverguard::provision::{self, Cache};
use coverguard::screen::{analyse_with, ScreenError, Screener, ScreeningRecord};
use coverguard::screening::views::ViewSettings;

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
    Scan(ScanArgs),
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

#[derive(Args)]
struct ScanArgs {
    /// One JSON object per input on stdout.
    #[arg(long)]
    json: bool,
    /// A hash bank file (`<signal_type> <hash> [id]` lines); repeatable.
    #[arg(long = "bank", value_name = "FILE")]
    banks: Vec<PathBuf>,
    /// A policy TOML file overriding the built-in policy.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Use this ONNX model file instead of the provisioned one.
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
    /// Largest accepted input, in bytes.
    #[arg(long, default_value_t = DecodeLimits::default().max_bytes)]
    max_bytes: usize,
    /// Largest accepted width x height.
    #[arg(long, default_value_t = DecodeLimits::default().max_pixels)]
    max_pixels: u64,
    /// Largest accepted width or height.
    #[arg(long, default_value_t = DecodeLimits::default().max_side)]
    max_side: u32,
    /// Most frames of one animation decoded; a longer one fails as `animation_budget`.
    #[arg(long, default_value_t = DecodeLimits::default().max_frames)]
    max_frames: u32,
    /// Most canvas pixels decoded over all frames of one animation.
    #[arg(long, default_value_t = DecodeLimits::default().max_animation_pixels)]
    max_animation_pixels: u64,
    /// Most distinct frames and renderings screened beyond the first frame.
    #[arg(long, default_value_t = DecodeLimits::default().max_views)]
    max_views: u32,
    /// A page colour art is shown on (`#rrggbb`); translucent images are screened composited
    /// over each. Repeatable; replaces the defaults #ffffff, #000000 and #121212.
    #[arg(long = "page-colour", value_name = "HEX", value_parser = coverguard::screening::views::parse_hex_colour)]
    page_colours: Vec<[u8; 3]>,
    /// Decode a JPEG of 2047 px or more at 1/2 scale or less (never below 1024 px):
    /// several times faster on large images, but PDQ moves by a few bits (up to 18
    /// measured; README: Performance). Without it every pixel is decoded and PDQ is
    /// bit-exact with Meta's reference.
    #[arg(long)]
    fast_decode: bool,
    /// Seconds allowed for fetching one URL.
    #[arg(long, default_value_t = 20)]
    url_timeout: u64,
    /// Also fetch URLs in this network (CIDR, e.g. 10.20.0.0/16), which is refused by
    /// default because it is not public; repeatable.
    #[arg(long = "allow-network", value_name = "CIDR")]
    allow_networks: Vec<ipnet::IpNet>,
    /// Also fetch URLs on this port (80 and 443 always are); repeatable.
    #[arg(long = "allow-port", value_name = "PORT")]
    allow_ports: Vec<u16>,
    /// Screen as an upload by a minor (the strict profile): exactly true, false, 1 or 0,
    /// as the service takes it.
    #[arg(long, value_name = "BOOL", value_parser = coverguard::screening::context::cli_bool)]
    owner_is_minor: Option<bool>,
    /// Screen as the cover of a playlist with this many tracks (0: the strict profile).
    #[arg(long, value_name = "N", value_parser = coverguard::screening::context::cli_count)]
    playlist_track_count: Option<i64>,
    /// Where the art is shown (`playlist_cover`, `track_art`, …).
    #[arg(long, value_name = "NAME", value_parser = coverguard::screening::context::cli_surface)]
    surface: Option<String>,
    /// Files, directories or http(s) URLs.
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<String>,
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Download and verify the model and ONNX Runtime into the cache.
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
        Command::Scan(args) => scan(args),
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

fn scan(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let manifest = provision::manifest()?;
    let context = coverguard::context::ScreenContext {
        surface: args.surface.clone(),
        owner_is_minor: args.owner_is_minor.unwrap_or(false),
        playlist_track_count: args.playlist_track_count,
    };
    let policy = context.policy(&Policy::for_model(args.policy.as_deref(), &manifest.model)?);
    let banks = BankSet::load(&args.banks)?;
    let cache = Cache::from_env()?;
    let provisioned = provision::provision(&cache, args.model.as_deref())
        .context("provisioning the model and ONNX Runtime")?;
    let detector = Detector::load(&provisioned, &DetectorOptions::default())?;
    let mut screener = Screener {
        detector,
        banks,
        policy,
    };
    let limits = DecodeLimits {
        max_bytes: args.max_bytes,
        max_pixels: args.max_pixels,
        max_side: args.max_side,
        max_frames: args.max_frames,
        max_animation_pixels: args.max_animation_pixels,
        max_views: args.max_views,
    };
    let views = if args.page_colours.is_empty() {
        ViewSettings::default()
    } else {
        ViewSettings {
            page_colours: args.page_colours.clone(),
        }
    };

    let resolution = if args.fast_decode {
        Resolution::FAST
    } else {
        Resolution::Full
    };
    let inputs = fetch::expand_inputs(&args.inputs);
    let needs_http = inputs.iter().any(|(_, s)| matches!(s, Source::Url(_)));
    let runtime = if needs_http {
        Some(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
        )
    } else {
        None
    };
    let http = if needs_http {
        Some(HttpFetcher::new(HttpOptions {
            timeout: std::time::Duration::from_secs(args.url_timeout),
            destinations: DestinationPolicy::widened(
                args.allow_networks.clone(),
                &args.allow_ports,
            ),
            ..HttpOptions::default()
        })?)
    } else {
        None
    };

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let (mut flagged, mut failed) = (false, false);
    for (shown, source) in inputs {
        let bytes = match (&source, &runtime, &http) {
            (Source::File(path), _, _) => fetch::read_file(path, limits.max_bytes),
            (Source::Url(url), Some(rt), Some(client)) => {
                rt.block_on(client.get(url, limits.max_bytes))
            }
            (Source::Url(_), _, _) => unreachable!("an HTTP client exists whenever a URL is given"),
        };
        let outcome = bytes
            .map_err(ScreenError::from)
            .and_then(|b| analyse_with(&b, &limits, resolution, &views))
            .and_then(|analysed| screener.finish(&shown, &analysed))
            .map(|mut record| {
                if let Some(reason) = context.strict_reason() {
                    record.reasons.push(format!("strict profile: {reason}"));
                }
                record
            });
        match &outcome {
            Ok(record) => flagged |= record.verdict != Verdict::Allow,
            Err(_) => failed = true,
        }
        let line = if args.json {
            json_line(&shown, &outcome)
        } else {
            text_line(&shown, &outcome)
        };
        // A closed pipe (e.g. `| head`) ends the run; it is not a screening failure.
        if writeln!(out, "{line}").is_err() {
            break;
        }
    }
    Ok(ExitCode::from(match (failed, flagged) {
        (true, _) => 2,
        (false, true) => 1,
        (false, false) => 0,
    }))
}

fn json_line(source: &str, outcome: &Result<ScreeningRecord, ScreenError>) -> String {
    let value = match outcome {
        Ok(record) => serde_json::to_value(record).expect("records serialise"),
        Err(e) => serde_json::json!({
            "source": source,
            "error": { "kind": e.kind(), "message": e.to_string() },
        }),
    };
    value.to_string()
}

fn text_line(source: &str, outcome: &Result<ScreeningRecord, ScreenError>) -> String {
    match outcome {
        Ok(r) if r.reasons.is_empty() => format!("{source}: {}", r.verdict),
        Ok(r) => format!("{source}: {} ({})", r.verdict, r.reasons.join("; ")),
        Err(e) => format!("{source}: ERROR {}: {e}", e.kind()),
    }
}
