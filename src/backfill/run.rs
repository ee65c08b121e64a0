//! Screening one backfill item, and a whole manifest on one machine.
//!
//! Every item is screened under a screening id derived from the job and the
//! artwork ([`screening_id`]), so screening it again after a crash writes
//! nothing new: no second quarantine row, no second report. After the
//! screening is recorded the item is checkpointed in the store; a rerun of the
//! same job skips checkpointed `done` items and retries `failed` ones.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use super::manifest::{ItemSource, ManifestItem};
use crate::fetch::{self, FetchError, HttpFetcher};
use crate::pipeline::{Pipeline, PipelineError, Submission};
use crate::scheduler::SchedulerError;
use crate::store::{BackfillItemWrite, BackfillOutcome, StoreError};

/// How a backfill runs.
#[derive(Clone, Debug)]
pub struct BackfillOptions {
    /// Who checkpoints items: `local`, or a worker's name.
    pub worker: String,
    /// Items in flight at once (fetching, decoding, waiting for inference).
    pub concurrency: usize,
    /// Fetches in flight per URL host.
    pub per_host: usize,
    /// Tries per URL for errors that may pass (timeouts, connection errors, 5xx, 429).
    pub fetch_attempts: u32,
    /// First retry delay; it doubles each time.
    pub fetch_backoff: Duration,
    /// Skip items whose latest screening was made under the current model, policy and
    /// banks versions.
    pub stale_only: bool,
}

impl Default for BackfillOptions {
    fn default() -> Self {
        BackfillOptions {
            worker: "local".into(),
            concurrency: 8,
            per_host: 4,
            fetch_attempts: 3,
            fetch_backoff: Duration::from_millis(500),
            stale_only: false,
        }
    }
}

/// A job's id from its manifest's bytes and the options that change what it does:
/// the same arguments give the same job, so a rerun resumes it.
pub fn job_id_for(manifest_bytes: &[u8], stale_only: bool) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"coverguard backfill job v1\0");
    hasher.update([u8::from(stale_only)]);
    hasher.update(manifest_bytes);
    format!("bf-{}", &hex::encode(hasher.finalize())[..20])
}

/// The screening id of an item in a job: derived, so a retry is idempotent.
pub fn screening_id(job_id: &str, artwork_id: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"coverguard backfill screening v1\0");
    hasher.update(job_id.as_bytes());
    hasher.update(b"\0");
    hasher.update(artwork_id.as_bytes());
    format!("bf_{}", &hex::encode(hasher.finalize())[..32])
}

/// What happened to one item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemResult {
    /// Screened now; `verdict` is `allow`, `review` or `block`.
    Screened {
        verdict: String,
    },
    /// `--stale-only`: its latest verdict is current.
    Fresh {
        verdict: String,
    },
    /// Already done in an earlier run of the job.
    AlreadyDone,
    Failed {
        kind: String,
        error: String,
    },
}

/// Errors that stop a backfill. Item errors never do: they are checkpointed.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// Without the store no checkpoint can be written; rerunning resumes.
    #[error("the store failed, so progress cannot be recorded: {0}")]
    Store(#[from] StoreError),
    #[error("cannot read the manifest: {0}")]
    Manifest(#[from] super::manifest::ManifestError),
}

/// Screens backfill items through a [`Pipeline`].
pub struct Backfill {
    pipeline: Arc<Pipeline>,
    http: HttpFetcher,
    options: BackfillOptions,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Backfill {
    pub fn new(pipeline: Arc<Pipeline>, http: HttpFetcher, options: BackfillOptions) -> Self {
        Backfill {
            pipeline,
            http,
            options,
            hosts: Mutex::new(HashMap::new()),
        }
    }

    pub fn options(&self) -> &BackfillOptions {
        &self.options
    }

    /// Screen one item of job `job_id` and checkpoint it. Only a store failure is an error.
    pub async fn process(
        &self,
        job_id: &str,
        item: &ManifestItem,
    ) -> Result<ItemResult, BackfillError> {
        let store = &self.pipeline.store;
        if self.options.stale_only {
            if let Some(verdict) = self.fresh_verdict(item).await? {
                let latest = store.get_artwork(&item.artwork_id).await?;
                let screening_id = latest
                    .and_then(|a| a.latest_screening_id)
                    .unwrap_or_default();
                self.checkpoint(
                    job_id,
                    item,
                    BackfillOutcome::Done {
                        screening_id,
                        verdict: verdict.clone(),
                    },
                )
                .await?;
                return Ok(ItemResult::Fresh { verdict });
            }
        }
        // Recorded before a crash cut the checkpoint off: take the stored verdict rather
        // than screening again (which would record nothing, and might decide otherwise).
        let derived = screening_id(job_id, &item.artwork_id);
        if let Some(stored) = store.get_screening(&derived).await? {
            let verdict = stored.verdict;
            self.checkpoint(
                job_id,
                item,
                BackfillOutcome::Done {
                    screening_id: derived,
                    verdict: verdict.clone(),
                },
            )
            .await?;
            return Ok(ItemResult::Screened { verdict });
        }
        let result = match self.screen(job_id, item).await {
            Ok(verdict) => ItemResult::Screened { verdict },
            Err(ItemError::Store(e)) => return Err(BackfillError::Store(e)),
            Err(ItemError::Failed { kind, error }) => ItemResult::Failed { kind, error },
        };
        let outcome = match &result {
            ItemResult::Screened { verdict } => BackfillOutcome::Done {
                screening_id: derived,
                verdict: verdict.clone(),
            },
            ItemResult::Failed { kind, error } => BackfillOutcome::Failed {
                kind: kind.clone(),
                error: error.clone(),
            },
            ItemResult::Fresh { .. } | ItemResult::AlreadyDone => unreachable!("handled above"),
        };
        self.checkpoint(job_id, item, outcome).await?;
        Ok(result)
    }

    async fn checkpoint(
        &self,
        job_id: &str,
        item: &ManifestItem,
        outcome: BackfillOutcome,
    ) -> Result<(), StoreError> {
        self.pipeline
            .store
            .record_backfill_item(&BackfillItemWrite {
                job_id: job_id.to_string(),
                artwork_id: item.artwork_id.clone(),
                outcome,
                worker: Some(self.options.worker.clone()),
            })
            .await
    }

    /// The latest verdict, if it was made under the current model, policy and banks.
    async fn fresh_verdict(&self, item: &ManifestItem) -> Result<Option<String>, StoreError> {
        let Some(latest) = self
            .pipeline
            .store
            .latest_for_artwork(&item.artwork_id)
            .await?
        else {
            return Ok(None);
        };
        let banks = self.pipeline.banks().await?;
        let policy = banks.policy_with_banks(&item.context.policy(&self.pipeline.policy));
        let fresh = latest.model == self.pipeline.scheduler.model_id()
            && latest.analysis == self.pipeline.analysis()
            && latest.policy_version == policy.version()
            && latest.banks_version == banks.banks_version();
        Ok(fresh.then_some(latest.verdict))
    }

    async fn screen(&self, job_id: &str, item: &ManifestItem) -> Result<String, ItemError> {
        let (bytes, source, url) = match &item.source {
            ItemSource::Path(path) => {
                let max = self.pipeline.settings.limits.max_bytes;
                let owned = path.clone();
                let bytes = tokio::task::spawn_blocking(move || fetch::read_file(&owned, max))
                    .await
                    .map_err(|e| ItemError::failed("internal", e.to_string()))?
                    .map_err(ItemError::from)?;
                (bytes, path.display().to_string(), None)
            }
            ItemSource::Url(url) => (self.fetch_url(url).await?, url.clone(), Some(url.clone())),
        };
        let submission = Submission {
            source,
            url,
            artwork_id: Some(item.artwork_id.clone()),
            owner_id: item.owner_id.clone(),
            context: item.context.clone(),
            screening_id: Some(screening_id(job_id, &item.artwork_id)),
        };
        let bytes = Bytes::from(bytes);
        let mut wait = Duration::from_millis(20);
        loop {
            match self.pipeline.screen(bytes.clone(), &submission).await {
                Ok(screened) => return Ok(screened.record.verdict.as_str().to_string()),
                // Backpressure, not failure: wait for the queue instead of failing the item.
                Err(PipelineError::Scheduler(SchedulerError::Overloaded { .. })) => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(1));
                }
                Err(PipelineError::Store(e)) => return Err(ItemError::Store(e)),
                Err(e) => return Err(ItemError::failed(e.kind(), e.to_string())),
            }
        }
    }

    async fn fetch_url(&self, url: &str) -> Result<Vec<u8>, ItemError> {
        let host = reqwest::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        let permits = {
            let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(
                hosts
                    .entry(host)
                    .or_insert_with(|| Arc::new(Semaphore::new(self.options.per_host.max(1)))),
            )
        };
        let max = self.pipeline.settings.limits.max_bytes;
        let mut delay = self.options.fetch_backoff;
        let mut attempt = 1;
        loop {
            let result = {
                let _permit = permits
                    .acquire()
                    .await
                    .map_err(|_| ItemError::failed("internal", "host limiter closed"))?;
                self.http.get(url, max).await
            };
            match result {
                Ok(bytes) => return Ok(bytes),
                Err(e) if attempt < self.options.fetch_attempts && may_pass(&e) => {
                    tracing::debug!(%url, attempt, error = %e, "fetch failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Fetch errors worth another try.
fn may_pass(e: &FetchError) -> bool {
    match e {
        FetchError::Timeout { .. } | FetchError::Http { .. } => true,
        FetchError::Status { status, .. } => *status == 429 || *status >= 500,
        _ => false,
    }
}

enum ItemError {
    Store(StoreError),
    Failed { kind: String, error: String },
}

impl ItemError {
    fn failed(kind: &str, error: impl Into<String>) -> Self {
        ItemError::Failed {
            kind: kind.to_string(),
            error: error.into(),
        }
    }
}

impl From<FetchError> for ItemError {
    fn from(e: FetchError) -> Self {
        ItemError::failed(e.kind(), e.to_string())
    }
}

/// Counts of a run, by outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RunSummary {
    pub screened: u64,
    pub fresh: u64,
    pub already_done: u64,
    pub failed: u64,
    /// Rows that were not valid items (each named in the log).
    pub bad_rows: u64,
    /// Rows repeating an artwork id seen earlier in the manifest (skipped).
    pub duplicate_rows: u64,
    pub verdicts: BTreeMap<String, u64>,
    pub errors: BTreeMap<String, u64>,
}

impl RunSummary {
    pub fn add(&mut self, result: &ItemResult) {
        match result {
            ItemResult::Screened { verdict } => {
                self.screened += 1;
                *self.verdicts.entry(verdict.clone()).or_default() += 1;
            }
            ItemResult::Fresh { verdict } => {
                self.fresh += 1;
                *self.verdicts.entry(verdict.clone()).or_default() += 1;
            }
            ItemResult::AlreadyDone => self.already_done += 1,
            ItemResult::Failed { kind, .. } => {
                self.failed += 1;
                *self.errors.entry(kind.clone()).or_default() += 1;
            }
        }
    }

    /// Items that reached an outcome in this run or an earlier one.
    pub fn finished(&self) -> u64 {
        self.screened + self.fresh + self.already_done + self.failed
    }
}

/// Called after each item; a progress bar or log lines.
pub trait Progress: Send + Sync {
    fn item(&self, result: &ItemResult, summary: &RunSummary);
}

/// Screen every item of `items` with bounded concurrency, skipping the job's done items.
pub async fn run_items<I>(
    backfill: &Backfill,
    job_id: &str,
    items: I,
    progress: &dyn Progress,
) -> Result<RunSummary, BackfillError>
where
    I: Iterator<Item = Result<ManifestItem, super::manifest::ManifestError>>,
{
    let done: HashSet<String> = backfill.pipeline.store.backfill_done(job_id).await?;
    let summary = Mutex::new(RunSummary::default());
    let mut seen = super::manifest::DuplicateIds::new();
    let mut skipped = Vec::new();
    // The iterator is read lazily as work completes: a huge manifest is never held whole.
    let work = items.filter_map(|row| match row {
        Ok(item) => {
            if let Some(dup) = seen.check(&item) {
                tracing::warn!(artwork = %dup.artwork_id, first_line = dup.first_line, line = dup.line, "artwork id repeated in the manifest; the repeat is skipped");
                skipped.push(false);
                None
            } else {
                Some(item)
            }
        }
        Err(e) => {
            tracing::error!("manifest: {e}");
            skipped.push(true);
            None
        }
    });
    {
        let results = futures_util::stream::iter(work)
            .map(|item| {
                let done = &done;
                async move {
                    if done.contains(&item.artwork_id) {
                        return Ok(ItemResult::AlreadyDone);
                    }
                    backfill.process(job_id, &item).await
                }
            })
            .buffer_unordered(backfill.options.concurrency.max(1));
        futures_util::pin_mut!(results);
        while let Some(result) = results.next().await {
            let result = result?;
            let mut s = summary.lock().unwrap_or_else(|e| e.into_inner());
            s.add(&result);
            progress.item(&result, &s);
        }
    }
    let mut summary = summary.into_inner().unwrap_or_else(|e| e.into_inner());
    summary.bad_rows = skipped.iter().filter(|bad| **bad).count() as u64;
    summary.duplicate_rows = skipped.iter().filter(|bad| !**bad).count() as u64;
    Ok(summary)
}
