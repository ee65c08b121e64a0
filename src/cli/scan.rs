//! `coverguard scan`: screen files, folders and URLs, one result line per input in input
//! order. Reading, decoding and hashing run on up to `--jobs` threads at once and
//! inference goes through the batching scheduler, as in `serve`; results are printed as
//! soon as every earlier input's is, and only a bounded window of inputs is in flight.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use futures_util::StreamExt as _;

use coverguard::decode::{DecodeLimits, Resolution};
use coverguard::fetch::{self, DestinationPolicy, HttpFetcher, HttpOptions, Source};
use coverguard::matching::bank::BankSet;
use coverguard::provision::{self, Cache};
use coverguard::screening::analyse::{analyse_with, build_record, ScreenError};
use coverguard::screening::context::ScreenContext;
use coverguard::screening::policy::{Policy, Verdict};
use coverguard::screening::record::ScreeningRecord;
use coverguard::screening::scheduler::{Scheduler, SchedulerConfig, SchedulerError};
use coverguard::screening::views::ViewSettings;
use coverguard::text::TextScreener;

#[derive(Args)]
pub struct ScanArgs {
    /// One JSON object per input on stdout.
    #[arg(long)]
    json: bool,
    /// A hash bank file (`<signal_type> <hash> [id]` lines); repeatable.
    #[arg(long = "bank", value_name = "FILE")]
    banks: Vec<PathBuf>,
    /// A policy TOML file overriding the built-in policy.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// A keyword list (`category<TAB>term` lines) for the text rules (title, description and,
    /// with `--ocr`, the words in the artwork).
    #[arg(long, value_name = "FILE")]
    keywords: Option<PathBuf>,
    /// Also read the words in each image (PP-OCRv4 as rapidocr runs it) and screen them
    /// with the text rules. A cheap text gate reads only images that show rows of glyphs.
    #[arg(long)]
    ocr: bool,
    /// With `--ocr`, read every image in full instead of gating (several times the CPU).
    #[arg(long, requires = "ocr")]
    ocr_every_image: bool,
    /// Use this ONNX model file instead of the provisioned one.
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
    /// Inputs read, decoded and hashed at once, and inference sessions (one thread each);
    /// default: one per core.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
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
    #[arg(long, value_name = "BOOL", value_parser = coverguard::screening::context::parse::cli_bool)]
    owner_is_minor: Option<bool>,
    /// Screen as the cover of a playlist with this many tracks (0: the strict profile).
    #[arg(long, value_name = "N", value_parser = coverguard::screening::context::parse::cli_count)]
    playlist_track_count: Option<i64>,
    /// Where the art is shown (`playlist_cover`, `track_art`, …).
    #[arg(long, value_name = "NAME", value_parser = coverguard::screening::context::parse::cli_surface)]
    surface: Option<String>,
    /// The playlist's or track's title, screened for text signals (contact details,
    /// requests for pictures, ages under 18).
    #[arg(long, value_name = "TEXT", value_parser = coverguard::screening::context::parse::cli_title)]
    title: Option<String>,
    /// The playlist's or track's description, screened as the title is.
    #[arg(long, value_name = "TEXT", value_parser = coverguard::screening::context::parse::cli_description)]
    description: Option<String>,
    /// Files, directories or http(s) URLs.
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<String>,
}

/// Fewer inputs than this get no progress line: they finish before it would help.
const PROGRESS_FROM: usize = 20;

/// What every screening of the run shares.
struct Run {
    limits: DecodeLimits,
    resolution: Resolution,
    views: ViewSettings,
    context: ScreenContext,
    banks: BankSet,
    policy: Policy,
    text: TextScreener,
    scheduler: Scheduler,
    http: Option<HttpFetcher>,
    /// Inputs read, decoded and hashed at once: each holds a decoded image.
    cpu: tokio::sync::Semaphore,
}

pub fn scan(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let manifest = provision::manifest()?;
    let context = ScreenContext {
        surface: args.surface.clone(),
        owner_is_minor: args.owner_is_minor.unwrap_or(false),
        playlist_track_count: args.playlist_track_count,
        title: args.title.clone(),
        description: args.description.clone(),
    };
    let policy = context.policy(&Policy::for_model(args.policy.as_deref(), &manifest.model)?);
    let banks = BankSet::load(&args.banks)?;
    let text = TextScreener::with_keyword_file(args.keywords.as_deref())?;
    let cache = Cache::from_env()?;
    let provisioned = provision::provision(&cache, args.model.as_deref())
        .context("provisioning the model and ONNX Runtime")?;
    let jobs = args.jobs.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        usize::from,
    );
    // One single-threaded session per job, batched by the scheduler, as `serve` runs them.
    let workers = coverguard::app::load_workers(&cache, &provisioned, jobs, 1, ocr_reading(&args))?;
    let defaults = SchedulerConfig::default();
    // Every input in flight holds a queue place at most once, so none is ever refused.
    let window = jobs + defaults.max_batch;
    let scheduler = Scheduler::start_observed(
        workers,
        &SchedulerConfig {
            workers: jobs,
            queue_capacity: defaults.queue_capacity.max(window),
            ..defaults
        },
        Arc::new(|_, _| {}),
    );

    let inputs = fetch::expand_inputs(&args.inputs);
    let http = if inputs.iter().any(|(_, s)| matches!(s, Source::Url(_))) {
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
    let run = Arc::new(Run {
        limits: DecodeLimits {
            max_bytes: args.max_bytes,
            max_pixels: args.max_pixels,
            max_side: args.max_side,
            max_frames: args.max_frames,
            max_animation_pixels: args.max_animation_pixels,
            max_views: args.max_views,
        },
        resolution: if args.fast_decode {
            Resolution::FAST
        } else {
            Resolution::Full
        },
        views: if args.page_colours.is_empty() {
            ViewSettings::default()
        } else {
            ViewSettings {
                page_colours: args.page_colours.clone(),
            }
        },
        context,
        banks,
        policy,
        text,
        scheduler,
        http,
        cpu: tokio::sync::Semaphore::new(jobs),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(jobs)
        .enable_all()
        .build()?;
    let progress = Progress::new(inputs.len());
    let status = runtime.block_on(print_in_order(&run, inputs, window, args.json, &progress));
    progress.finish();
    // Whatever is still running after a closed pipe is not waited for.
    runtime.shutdown_background();
    status
}

/// Screen `inputs`, at most `window` at once, and print each result once every earlier
/// one is printed. The exit status: 2 when any input failed, else 1 when any was not
/// allowed, else 0.
async fn print_in_order(
    run: &Arc<Run>,
    inputs: Vec<(String, Source)>,
    window: usize,
    json: bool,
    progress: &Progress,
) -> anyhow::Result<ExitCode> {
    let mut results = futures_util::stream::iter(inputs)
        .map(|(shown, source)| {
            let run = Arc::clone(run);
            async move {
                let outcome = screen_one(&run, &shown, &source).await;
                (shown, outcome)
            }
        })
        .buffered(window);
    let stdout = std::io::stdout();
    let (mut flagged, mut failed) = (false, false);
    while let Some((shown, outcome)) = results.next().await {
        let outcome = outcome?;
        match &outcome {
            Ok(record) => flagged |= record.verdict != Verdict::Allow,
            Err(_) => failed = true,
        }
        progress.record(&outcome);
        let line = if json {
            json_line(&shown, &outcome)
        } else {
            text_line(&shown, &outcome)
        };
        // A closed pipe (e.g. `| head`) ends the run; it is not a screening failure.
        if progress
            .suspend(|| writeln!(stdout.lock(), "{line}"))
            .is_err()
        {
            break;
        }
    }
    Ok(ExitCode::from(match (failed, flagged) {
        (true, _) => 2,
        (false, true) => 1,
        (false, false) => 0,
    }))
}

/// One input's record or the reason it has none. The outer error is the run's own failure
/// (the scheduler stopped), which ends the run rather than being blamed on an input.
async fn screen_one(
    run: &Arc<Run>,
    shown: &str,
    source: &Source,
) -> anyhow::Result<Result<ScreeningRecord, ScreenError>> {
    let analysed = {
        let bytes = match source {
            Source::Url(url) => {
                let client = run
                    .http
                    .as_ref()
                    .expect("an HTTP client exists whenever a URL is given");
                match client.get(url, run.limits.max_bytes).await {
                    Ok(bytes) => Some(bytes),
                    Err(e) => return Ok(Err(e.into())),
                }
            }
            Source::File(_) => None,
        };
        let _cpu = run.cpu.acquire().await?;
        let (run, source) = (Arc::clone(run), source.clone());
        let analysed = tokio::task::spawn_blocking(move || {
            let bytes = match (bytes, &source) {
                (Some(bytes), _) => bytes,
                (None, Source::File(path)) => fetch::read_file(path, run.limits.max_bytes)?,
                (None, Source::Url(_)) => unreachable!("a URL's bytes are fetched first"),
            };
            analyse_with(&bytes, &run.limits, run.resolution, &run.views)
        })
        .await
        .context("a screening thread failed")?;
        match analysed {
            Ok(analysed) => Arc::new(analysed),
            Err(e) => return Ok(Err(e)),
        }
    };
    let detections = match run
        .scheduler
        .classify(Arc::clone(&analysed), run.context.ocr_depth())
        .await
    {
        Ok(detections) => detections,
        Err(SchedulerError::Classify(e)) => return Ok(Err(e.into())),
        Err(e) => return Err(e).context("inference stopped"),
    };
    let mut record = build_record(
        shown,
        &analysed,
        detections,
        &run.banks,
        &run.policy,
        run.scheduler.model_id(),
    );
    coverguard::screening::text::apply_context(&mut record, &run.context, &run.policy, &run.text);
    Ok(Ok(record))
}

/// A progress line on stderr (done/total, rate, ETA, verdict counts) when stderr is a
/// terminal and there are many inputs; nothing otherwise.
struct Progress {
    bar: indicatif::ProgressBar,
    counts: std::cell::RefCell<[usize; 4]>,
}

impl Progress {
    fn new(total: usize) -> Progress {
        let bar = if total >= PROGRESS_FROM && std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{pos}/{len} {per_sec} eta {eta} {msg} {wide_bar}",
                )
                .expect("a valid progress template"),
            );
            bar
        } else {
            indicatif::ProgressBar::hidden()
        };
        Progress {
            bar,
            counts: std::cell::RefCell::new([0; 4]),
        }
    }

    fn record(&self, outcome: &Result<ScreeningRecord, ScreenError>) {
        let mut counts = self.counts.borrow_mut();
        counts[match outcome {
            Ok(r) if r.verdict == Verdict::Allow => 0,
            Ok(r) if r.verdict == Verdict::Review => 1,
            Ok(_) => 2,
            Err(_) => 3,
        }] += 1;
        let [allow, review, block, failed] = *counts;
        self.bar.set_message(format!(
            "allow {allow} review {review} block {block} failed {failed}"
        ));
        self.bar.inc(1);
    }

    /// Run `write` with the bar cleared, so result lines and the bar do not interleave.
    fn suspend<T>(&self, write: impl FnOnce() -> T) -> T {
        self.bar.suspend(write)
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
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

/// How `--ocr` and `--ocr-every-image` say images are read.
fn ocr_reading(args: &ScanArgs) -> Option<coverguard::text::ocr::Reading> {
    use coverguard::text::ocr::{GateParams, Reading};
    match (args.ocr, args.ocr_every_image) {
        (false, _) => None,
        (true, false) => Some(Reading::Gated(GateParams::default())),
        (true, true) => Some(Reading::EveryImage),
    }
}
