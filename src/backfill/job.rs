//! The backfill commands: run a manifest on this machine, put it on a JetStream
//! work queue, work that queue, and show a job's progress.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use sha2::{Digest, Sha256};

use super::jetstream::{JobQueue, JobQueueConfig, QueueStatus};
use super::manifest::{self, ManifestFormat, ManifestItem};
use super::run::{self, Backfill, BackfillOptions, ItemResult, Progress, RunSummary};
use crate::app::{self, Loaded};
use crate::config::ServiceConfig;
use crate::store::{self, BackfillCounts, Store};

/// A manifest and how to read it.
#[derive(Clone, Debug)]
pub struct ManifestArg {
    pub path: PathBuf,
    pub format: Option<ManifestFormat>,
}

impl ManifestArg {
    /// The job id: given, or derived from the manifest's bytes and `stale_only`.
    pub fn job_id(&self, given: Option<&str>, stale_only: bool) -> anyhow::Result<String> {
        if let Some(job) = given {
            anyhow::ensure!(
                !job.is_empty()
                    && job
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "job id {job:?}: use letters, digits, '-' and '_'"
            );
            return Ok(job.to_string());
        }
        let mut file = std::fs::File::open(&self.path)
            .with_context(|| format!("opening the manifest {}", self.path.display()))?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut hasher)
            .with_context(|| format!("reading the manifest {}", self.path.display()))?;
        Ok(run::job_id_for(&hasher.finalize(), stale_only))
    }

    /// Rows in the manifest (valid or not): the progress total.
    pub fn count_rows(&self) -> anyhow::Result<u64> {
        let reader = manifest::open(&self.path, self.format)?;
        let mut rows = 0;
        for row in reader {
            match row {
                Err(manifest::ManifestError::Io { .. }) => {
                    row.with_context(|| format!("reading {}", self.path.display()))?;
                }
                _ => rows += 1,
            }
        }
        Ok(rows)
    }

    fn items(&self) -> anyhow::Result<manifest::ManifestReader<std::io::BufReader<std::fs::File>>> {
        Ok(manifest::open(&self.path, self.format)?)
    }
}

/// The store and the screening components, with the outbox delivering meanwhile.
struct Opened {
    store: Arc<dyn Store>,
    pipeline: Arc<crate::screening::pipeline::Pipeline>,
    http: crate::fetch::HttpFetcher,
    stop_outbox: tokio::sync::watch::Sender<bool>,
    outbox: tokio::task::JoinHandle<()>,
}

impl Opened {
    async fn new(config: &ServiceConfig) -> anyhow::Result<Opened> {
        let store = store::open(&config.database_url())
            .await
            .context("opening the store")?;
        let Loaded {
            pipeline,
            http,
            outbox,
        } = app::load(config, Arc::clone(&store), Arc::new(|_, _| {})).await?;
        let (stop_outbox, stopped) = tokio::sync::watch::channel(false);
        let outbox = outbox.spawn(stopped);
        Ok(Opened {
            store,
            pipeline,
            http,
            stop_outbox,
            outbox,
        })
    }

    /// Let the outbox finish the deliveries it started; undelivered reports stay stored.
    async fn close(self) {
        let _ = self.stop_outbox.send(true);
        let _ = self.outbox.await;
        self.store.close().await;
    }
}

/// What a local run did.
#[derive(Debug)]
pub struct LocalOutcome {
    pub job_id: String,
    pub summary: RunSummary,
    /// The job's state in the store after the run (earlier runs included).
    pub counts: BackfillCounts,
    pub results: PathBuf,
    /// Images run through the model in this run: identical bytes count once.
    pub inferred: u64,
}

/// `coverguard backfill --manifest FILE`: screen every item on this machine.
pub async fn run_local(
    config: &ServiceConfig,
    manifest: &ManifestArg,
    job: Option<&str>,
    options: BackfillOptions,
    results: Option<&Path>,
) -> anyhow::Result<LocalOutcome> {
    let job_id = manifest.job_id(job, options.stale_only)?;
    let total = manifest.count_rows()?;
    let opened = Opened::new(config).await?;
    opened
        .store
        .register_backfill_job(&job_id, &manifest.path.display().to_string(), total as i64)
        .await?;
    tracing::info!(job = %job_id, total, "backfill starting");
    let backfill = Backfill::new(Arc::clone(&opened.pipeline), opened.http.clone(), options);
    let progress = ProgressReport::new(total);
    let summary = run::run_items(&backfill, &job_id, manifest.items()?, &progress).await?;
    progress.finish(&summary);
    let results = results.map_or_else(
        || {
            config
                .data_dir
                .join("backfill")
                .join(format!("{job_id}.jsonl"))
        },
        Path::to_path_buf,
    );
    export_results(opened.store.as_ref(), &job_id, &results).await?;
    let counts = opened.store.backfill_counts(&job_id).await?;
    let inferred = opened
        .pipeline
        .scheduler
        .stats()
        .images
        .load(std::sync::atomic::Ordering::Relaxed);
    opened.close().await;
    Ok(LocalOutcome {
        job_id,
        summary,
        counts,
        results,
        inferred,
    })
}

/// Write the job's items as JSON Lines, one per artwork, from the store (so a run
/// resumed after a crash still lists every item once); temp file, then rename.
pub async fn export_results(store: &dyn Store, job_id: &str, path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let temp = path.with_extension("jsonl.partial");
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&temp).with_context(|| format!("creating {}", temp.display()))?,
    );
    let mut after: Option<String> = None;
    loop {
        let page = store.backfill_items(job_id, after.as_deref(), 5000).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.artwork_id.clone());
        for row in &page {
            serde_json::to_writer(&mut out, row)?;
            out.write_all(b"\n")?;
        }
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    std::fs::rename(&temp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// `coverguard backfill enqueue`: one message per item on the work queue.
pub async fn enqueue(
    config: &ServiceConfig,
    manifest: &ManifestArg,
    job: Option<&str>,
    nats_url: &str,
    queue: JobQueueConfig,
) -> anyhow::Result<(String, super::jetstream::EnqueueSummary)> {
    let job_id = manifest.job_id(job, false)?;
    // Every row must be valid before anything is queued: a half-queued job is harder to
    // reason about than a refused one. Two streaming passes, so a manifest of millions of
    // rows is never held in memory.
    let mut rows = 0i64;
    let mut bad = Vec::new();
    for row in manifest.items()? {
        match row {
            Ok(_) => rows += 1,
            Err(e) => bad.push(e.to_string()),
        }
    }
    if !bad.is_empty() {
        anyhow::bail!(
            "{} bad row(s) in {}; nothing was queued:\n  {}",
            bad.len(),
            manifest.path.display(),
            bad.join("\n  ")
        );
    }
    let store = store::open(&config.database_url())
        .await
        .context("opening the store to register the job")?;
    store
        .register_backfill_job(&job_id, &manifest.path.display().to_string(), rows)
        .await?;
    store.close().await;
    let queue = JobQueue::connect(nats_url, queue).await?;
    // The file was valid a moment ago; a row that changed since stops the enqueue.
    let mut changed: Option<String> = None;
    let items = manifest.items()?.map_while(|row| match row {
        Ok(item) => Some(item),
        Err(e) => {
            changed = Some(e.to_string());
            None
        }
    });
    let summary = queue.enqueue_all(&job_id, items).await?;
    if let Some(e) = changed {
        anyhow::bail!(
            "{} changed while it was queued ({e}); {} item(s) were queued, rerun to finish",
            manifest.path.display(),
            summary.queued
        );
    }
    Ok((job_id, summary))
}

/// How a worker runs.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    pub name: String,
    pub backfill: BackfillOptions,
    /// Stop after the queue has been empty this long (batch jobs); `None`: run until stopped.
    pub exit_when_idle: Option<Duration>,
}

/// `coverguard worker`: take items off the queue until stopped (or idle), screen
/// them, checkpoint them in the shared store, and ack. Returns the counts of the items
/// acked.
pub async fn work(
    config: &ServiceConfig,
    nats_url: &str,
    queue: JobQueueConfig,
    options: WorkerOptions,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<RunSummary> {
    let ack_wait = queue.ack_wait;
    let queue = JobQueue::connect(nats_url, queue).await?;
    let opened = Opened::new(config).await?;
    let backfill = Arc::new(Backfill::new(
        Arc::clone(&opened.pipeline),
        opened.http.clone(),
        BackfillOptions {
            worker: options.name.clone(),
            ..options.backfill.clone()
        },
    ));
    let worker = queue.worker::<ManifestItem>(&options.name);
    let slots = Arc::new(tokio::sync::Semaphore::new(
        options.backfill.concurrency.max(1),
    ));
    let mut tasks = tokio::task::JoinSet::new();
    let mut processed = RunSummary::default();
    let mut idle_since = Instant::now();
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            _ = &mut stop => break,
            permit = Arc::clone(&slots).acquire_owned() => permit?,
        };
        while let Some(done) = tasks.try_join_next() {
            if let Ok(Some(result)) = done {
                processed.add(&result);
            }
        }
        let delivery = tokio::select! {
            _ = &mut stop => break,
            next = worker.next(Duration::from_secs(1)) => next?,
        };
        let Some(delivery) = delivery else {
            if tasks.is_empty()
                && options
                    .exit_when_idle
                    .is_some_and(|idle| idle_since.elapsed() >= idle)
            {
                break;
            }
            continue;
        };
        idle_since = Instant::now();
        let backfill = Arc::clone(&backfill);
        tasks.spawn(async move {
            let _permit = permit;
            let job_id = delivery.job_id().to_string();
            let item = delivery.item.clone();
            // Long items keep their claim: tell the server we are alive every ack_wait / 3.
            let result = {
                let work = backfill.process(&job_id, &item);
                tokio::pin!(work);
                loop {
                    tokio::select! {
                        r = &mut work => break r,
                        _ = tokio::time::sleep(ack_wait / 3) => {
                            let _ = delivery.in_progress().await;
                        }
                    }
                }
            };
            match result {
                Ok(result) => match delivery.ack().await {
                    Ok(()) => Some(result),
                    Err(e) => {
                        // Redelivered later; the checkpoint makes the repeat harmless.
                        tracing::warn!(artwork = %item.artwork_id, error = %e, "ack failed");
                        None
                    }
                },
                Err(e) => {
                    let error = crate::error_chain::chain(&e);
                    tracing::error!(artwork = %item.artwork_id, %error, "item not checkpointed; returned to the queue");
                    let _ = delivery.nak(Duration::from_secs(5)).await;
                    None
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        if let Ok(Some(result)) = done {
            processed.add(&result);
        }
    }
    opened.close().await;
    Ok(processed)
}

/// `coverguard backfill status`.
pub async fn status(
    config: &ServiceConfig,
    job_id: &str,
    nats: Option<(&str, JobQueueConfig)>,
) -> anyhow::Result<(BackfillCounts, Option<QueueStatus>)> {
    let store = store::open(&config.database_url()).await?;
    let counts = store.backfill_counts(job_id).await?;
    store.close().await;
    let queue = match nats {
        Some((url, queue)) => Some(JobQueue::connect(url, queue).await?.status().await?),
        None => None,
    };
    Ok((counts, queue))
}

/// A progress bar on a terminal; a log line every 10 s otherwise.
pub struct ProgressReport {
    bar: Option<indicatif::ProgressBar>,
    last_line: Mutex<Instant>,
    started: Instant,
    total: u64,
}

impl ProgressReport {
    pub fn new(total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} {per_sec} ETA {eta} {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        ProgressReport {
            bar,
            last_line: Mutex::new(Instant::now()),
            started: Instant::now(),
            total,
        }
    }

    fn counts(summary: &RunSummary) -> String {
        let mut parts: Vec<String> = summary
            .verdicts
            .iter()
            .map(|(v, n)| format!("{v} {n}"))
            .collect();
        parts.extend(
            summary
                .errors
                .iter()
                .map(|(kind, n)| format!("error {kind} {n}")),
        );
        for (what, n) in [
            ("rematched", summary.rematched),
            ("redecided", summary.redecided),
            ("current", summary.skipped_current),
            ("already done", summary.already_done),
        ] {
            if n > 0 {
                parts.push(format!("{what} {n}"));
            }
        }
        parts.join(", ")
    }

    pub fn finish(&self, summary: &RunSummary) {
        if let Some(bar) = &self.bar {
            bar.finish_with_message(Self::counts(summary));
        }
    }
}

impl Progress for ProgressReport {
    fn item(&self, _result: &ItemResult, summary: &RunSummary) {
        if let Some(bar) = &self.bar {
            bar.set_position(summary.finished());
            bar.set_message(Self::counts(summary));
            return;
        }
        let mut last = self.last_line.lock().unwrap_or_else(|e| e.into_inner());
        if last.elapsed() >= Duration::from_secs(10) {
            *last = Instant::now();
            let rate = summary.finished() as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
            tracing::info!(
                done = summary.finished(),
                total = self.total,
                rate = format!("{rate:.1}/s"),
                counts = %Self::counts(summary),
                "backfill progress"
            );
        }
    }
}
