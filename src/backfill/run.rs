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

use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use super::manifest::{ItemSource, ManifestItem};
use super::stale::{self, Staleness};
use crate::fetch::{self, FetchError, HttpFetcher};
use crate::screening::pipeline::{Pipeline, PipelineError, Submission};
use crate::screening::policy::Verdict;
use crate::screening::scheduler::SchedulerError;
use crate::screening::{redecide, text_only};
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
    /// Redo only what changed since each item's latest screening: skip it when current,
    /// match its stored hashes again after a bank change, decide again from its stored
    /// scores after a policy change, and screen it afresh after a model or analysis change.
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
    /// Screened now: fetched, decoded and classified (identical bytes once: the others take
    /// the verdict cache's scores); `verdict` is `allow`, `review` or `block`.
    Screened {
        verdict: Verdict,
    },
    /// `--stale-only`, the banks changed: the stored hashes matched again and decided.
    Rematched {
        verdict: Verdict,
    },
    /// `--stale-only`, only the policy changed: decided again from the stored scores.
    Redecided {
        verdict: Verdict,
    },
    /// `--stale-only`: its latest verdict is current.
    Current {
        verdict: Verdict,
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
    #[error("the store failed, so progress cannot be recorded")]
    Store(#[from] StoreError),
    #[error("cannot read the manifest")]
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
        // Recorded before a crash cut the checkpoint off: take the stored verdict rather
        // than screening again (which would record nothing, and might decide otherwise).
        let derived = screening_id(job_id, &item.artwork_id);
        if let Some(stored) = store.get_screening(&derived).await? {
            let verdict = stored.facts.verdict;
            self.checkpoint(
                job_id,
                item,
                BackfillOutcome::Done {
                    screening_id: derived,
                    verdict,
                },
            )
            .await?;
            return Ok(ItemResult::Screened { verdict });
        }
        let result = if item.source == ItemSource::Words {
            // Words are decided afresh every time: they cost no fetch and no inference.
            self.screen_words(job_id, item).await
        } else if self.options.stale_only {
            self.process_stale(job_id, item).await
        } else {
            self.screen(job_id, item, None).await
        };
        let (result, screening_id) = match result {
            Ok(done) => done,
            Err(ItemError::Store(e)) => return Err(BackfillError::Store(e)),
            Err(ItemError::Failed { kind, error }) => {
                (ItemResult::Failed { kind, error }, String::new())
            }
        };
        let outcome = match &result {
            ItemResult::Screened { verdict }
            | ItemResult::Rematched { verdict }
            | ItemResult::Redecided { verdict }
            | ItemResult::Current { verdict } => BackfillOutcome::Done {
                screening_id,
                verdict: *verdict,
            },
            ItemResult::Failed { kind, error } => BackfillOutcome::Failed {
                kind: kind.clone(),
                error: error.clone(),
            },
            ItemResult::AlreadyDone => unreachable!("never returned by screening"),
        };
        self.checkpoint(job_id, item, outcome).await?;
        Ok(result)
    }

    /// `--stale-only`: redo only the stages whose versions changed since the item's latest
    /// screening (see [`super::stale`]). Returns the result and the screening it ends on.
    async fn process_stale(
        &self,
        job_id: &str,
        item: &ManifestItem,
    ) -> Result<(ItemResult, String), ItemError> {
        let pipeline = &self.pipeline;
        let Some(latest) = pipeline.store.latest_for_artwork(&item.artwork_id).await? else {
            return self.screen(job_id, item, None).await;
        };
        let basis = pipeline.basis(pipeline.banks().await?, &item.context);
        let staleness = stale::staleness(&latest.facts.versions(), &basis.versions());
        let submission = self.submission(job_id, item);
        match staleness {
            Staleness::Current => {
                return Ok((
                    ItemResult::Current {
                        verdict: latest.facts.verdict,
                    },
                    latest.id,
                ));
            }
            Staleness::Model => return self.screen(job_id, item, None).await,
            Staleness::Banks | Staleness::Policy => {}
        }
        let redecision = match redecide::redecide(
            pipeline,
            &latest,
            &submission,
            basis.banks,
            basis.policy,
        )
        .await
        {
            Ok(r) => r,
            Err(redecide::RedecideError::Store(e)) => return Err(ItemError::Store(e)),
            Err(e) => {
                tracing::warn!(artwork = %item.artwork_id, error = %e, "cannot decide again from the stored screening; screening the bytes");
                return self.screen(job_id, item, None).await;
            }
        };
        // A verdict that quarantines keeps the bytes as evidence: only then are they fetched.
        let evidence = if redecision.quarantines(pipeline) {
            match self.fetch(item).await {
                Ok(bytes) if crate::hash::exact_hashes(&bytes).sha256 == latest.facts.sha256 => {
                    Some(bytes)
                }
                // Other bytes than were screened: the stored scores are not theirs.
                Ok(bytes) => return self.screen(job_id, item, Some(bytes)).await,
                Err(ItemError::Store(e)) => return Err(ItemError::Store(e)),
                Err(ItemError::Failed { error, .. }) => {
                    tracing::warn!(artwork = %item.artwork_id, %error, "the bytes could not be fetched again; the artwork is taken out of view without evidence bytes");
                    None
                }
            }
        } else {
            None
        };
        let derived = screening_id(job_id, &item.artwork_id);
        let recorded = redecide::record(
            pipeline,
            &redecision,
            derived,
            &submission,
            evidence.as_deref(),
        )
        .await
        .map_err(ItemError::from_pipeline)?;
        let verdict = redecision.record.verdict;
        let result = match staleness {
            Staleness::Banks => ItemResult::Rematched { verdict },
            _ => ItemResult::Redecided { verdict },
        };
        Ok((result, recorded.screening_id))
    }

    fn submission(&self, job_id: &str, item: &ManifestItem) -> Submission {
        let (source, url) = match &item.source {
            ItemSource::Path(path) => (path.display().to_string(), None),
            ItemSource::Url(url) => (url.clone(), Some(url.clone())),
            ItemSource::Words => (text_only::source(Some(&item.artwork_id)), None),
        };
        Submission {
            source,
            url,
            artwork_id: Some(item.artwork_id.clone()),
            owner_id: item.owner_id.clone(),
            context: item.context.clone(),
            screening_id: Some(screening_id(job_id, &item.artwork_id)),
        }
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

    /// The item's bytes, from its path or URL.
    async fn fetch(&self, item: &ManifestItem) -> Result<Vec<u8>, ItemError> {
        match &item.source {
            ItemSource::Path(path) => {
                let max = self.pipeline.settings.limits.max_bytes;
                let owned = path.clone();
                tokio::task::spawn_blocking(move || fetch::read_file(&owned, max))
                    .await
                    .map_err(|e| ItemError::failed("internal", e.to_string()))?
                    .map_err(ItemError::from)
            }
            ItemSource::Url(url) => self.fetch_url(url).await,
            ItemSource::Words => Err(ItemError::failed(
                "no_image",
                "the item names no image: its words are screened alone",
            )),
        }
    }

    /// An item without an image: its title and description screened alone, or, when the
    /// artwork has a stored image screening, that screening decided again under them.
    async fn screen_words(
        &self,
        job_id: &str,
        item: &ManifestItem,
    ) -> Result<(ItemResult, String), ItemError> {
        let submission = self.submission(job_id, item);
        let outcome = text_only::screen(&self.pipeline, &submission, false)
            .await
            .map_err(ItemError::from_pipeline)?;
        let (verdict, screening_id) = match outcome {
            text_only::Outcome::Redecided(screened) => {
                (screened.record.verdict, screened.screening_id)
            }
            text_only::Outcome::WordsOnly { response, .. } => {
                (response.record.verdict, response.screening_id)
            }
        };
        Ok((ItemResult::Screened { verdict }, screening_id))
    }

    /// Fetch (unless `bytes` are given), decode, classify and decide one item.
    async fn screen(
        &self,
        job_id: &str,
        item: &ManifestItem,
        bytes: Option<Vec<u8>>,
    ) -> Result<(ItemResult, String), ItemError> {
        let bytes = match bytes {
            Some(bytes) => bytes,
            None => self.fetch(item).await?,
        };
        let submission = self.submission(job_id, item);
        let bytes = Bytes::from(bytes);
        // Backpressure, not failure: wait for the queue instead of failing the item.
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(20))
            .with_max_delay(Duration::from_secs(1))
            .without_max_times();
        let screened = (|| self.pipeline.screen(bytes.clone(), &submission))
            .retry(backoff)
            .when(|e| {
                matches!(
                    e,
                    PipelineError::Scheduler(SchedulerError::Overloaded { .. })
                )
            })
            .await
            .map_err(ItemError::from_pipeline)?;
        let verdict = screened.record.verdict;
        Ok((ItemResult::Screened { verdict }, screened.screening_id))
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
        // `None`: the host's limiter is closed, which nothing does; no retry helps then.
        let attempt = || async {
            let _permit = permits.acquire().await.map_err(|_| None)?;
            self.http.get(url, max).await.map_err(Some)
        };
        attempt
            .retry(fetch_backoff(&self.options))
            .when(|e| e.as_ref().is_some_and(may_pass))
            .notify(|e, delay| {
                let error = e.as_ref().map(ToString::to_string).unwrap_or_default();
                tracing::debug!(%url, ?delay, %error, "fetch failed; retrying");
            })
            .await
            .map_err(|e| match e {
                Some(e) => e.into(),
                None => ItemError::failed("internal", "host limiter closed"),
            })
    }
}

/// The pauses between a fetch's attempts: `fetch_attempts` in all, the first pause
/// `fetch_backoff`, doubling.
fn fetch_backoff(options: &BackfillOptions) -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(options.fetch_backoff)
        .without_max_delay()
        .with_max_times(options.fetch_attempts.saturating_sub(1) as usize)
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
    fn from_pipeline(e: PipelineError) -> Self {
        match e {
            PipelineError::Store(e) => ItemError::Store(e),
            e => ItemError::failed(e.kind(), e.to_string()),
        }
    }

    fn failed(kind: &str, error: impl Into<String>) -> Self {
        ItemError::Failed {
            kind: kind.to_string(),
            error: error.into(),
        }
    }
}

impl From<StoreError> for ItemError {
    fn from(e: StoreError) -> Self {
        ItemError::Store(e)
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
    /// Items given a verdict in this run, however: `reinferred + rematched + redecided`.
    pub screened: u64,
    /// Fetched, decoded and classified (every item, without `--stale-only`).
    pub reinferred: u64,
    /// `--stale-only`, the banks changed: stored hashes matched again, nothing inferred.
    pub rematched: u64,
    /// `--stale-only`, the policy changed: decided from the stored scores.
    pub redecided: u64,
    /// `--stale-only`: the latest verdict was current, nothing recorded.
    pub skipped_current: u64,
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
        let verdict = match result {
            ItemResult::Screened { verdict } => {
                self.reinferred += 1;
                verdict
            }
            ItemResult::Rematched { verdict } => {
                self.rematched += 1;
                verdict
            }
            ItemResult::Redecided { verdict } => {
                self.redecided += 1;
                verdict
            }
            ItemResult::Current { verdict } => {
                self.skipped_current += 1;
                *self
                    .verdicts
                    .entry(verdict.as_str().to_string())
                    .or_default() += 1;
                return;
            }
            ItemResult::AlreadyDone => {
                self.already_done += 1;
                return;
            }
            ItemResult::Failed { kind, .. } => {
                self.failed += 1;
                *self.errors.entry(kind.clone()).or_default() += 1;
                return;
            }
        };
        self.screened += 1;
        *self
            .verdicts
            .entry(verdict.as_str().to_string())
            .or_default() += 1;
    }

    /// Items that reached an outcome in this run or an earlier one.
    pub fn finished(&self) -> u64 {
        self.screened + self.skipped_current + self.already_done + self.failed
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

#[cfg(test)]
mod tests {
    use super::*;
    use backon::BackoffBuilder;

    #[test]
    fn a_fetch_is_tried_fetch_attempts_times_with_doubling_pauses() {
        let options = BackfillOptions {
            fetch_attempts: 4,
            fetch_backoff: Duration::from_millis(500),
            ..BackfillOptions::default()
        };
        let pauses: Vec<Duration> = fetch_backoff(&options).build().collect();
        assert_eq!(
            pauses,
            [500, 1000, 2000].map(Duration::from_millis),
            "three pauses between four attempts"
        );
        let once = BackfillOptions {
            fetch_attempts: 1,
            ..options
        };
        assert_eq!(fetch_backoff(&once).build().count(), 0);
    }
}
