//! Report delivery: the task that drains the reports outbox.
//!
//! A screening with a hit writes its report row in the same transaction as the verdict
//! ([`ScreeningStore::record_screening`]), so a report exists exactly when its verdict does.
//! This task takes due rows ([`OutboxStore::due_reports`]), sends each to every configured
//! [`ReportSink`], and records the result: [`OutboxStore::mark_report_delivered`] once every
//! sink has acknowledged, or [`OutboxStore::mark_report_failed_attempt`] with the next attempt
//! time from [`retry_delay`].
//!
//! # Guarantees
//!
//! - **Nothing is dropped.** Every failure, including a sink that refuses the report outright
//!   and a row this build cannot turn into a request, is recorded as a failed attempt with a
//!   next attempt time; the act module's policy retries permanent failures slowly
//!   ([`PERMANENT_FAILURE_RETRY`]) so an operator can fix the receiver. The row is the durable
//!   truth: a crash between a send and its bookkeeping means the report is sent again.
//! - **Never twice with different keys.** The request is built from the row alone (id, kind,
//!   idempotency key, creation time, payload, all immutable once written), so every attempt,
//!   before or after a restart, sends the same bytes under the same `Idempotency-Key`.
//! - **Per-sink acknowledgement is kept in memory only.** A report counts as delivered when
//!   every sink acknowledged it. Sinks that already acknowledged are remembered for the life
//!   of the worker and skipped on retries, so a healthy sink is not sent the report again
//!   while another one is down. After a restart (or when a dead replica's lease ran out)
//!   a sink may receive the report again; that is harmless because the idempotency key is the
//!   same and receivers deduplicate on it, which is what the key is for. Storing per-sink
//!   state durably would need a schema change for no gain in correctness.
//! - **One replica sends a report at a time.** Before a report is sent it is leased
//!   ([`OutboxStore::lease_report`]): its next attempt moves a lease time ahead, so replicas
//!   on one store that read the same due row skip it, and a replica that dies while
//!   sending lets it fall due again when the lease ends. A result that could not be written
//!   leaves the report leased, and it is taken up again then.
//! - **A store outage does not stop the task.** A failed round is logged and the task tries
//!   again after the poll interval.
//! - **Shutdown flushes.** On the shutdown signal the round in flight runs to completion, then
//!   one last round (bounded by the flush timeout) sends what became due meanwhile, e.g. the
//!   reports of the last requests the server finished.
//!
//! [`ScreeningStore::record_screening`]: crate::store::ScreeningStore::record_screening
//! [`OutboxStore::due_reports`]: crate::store::OutboxStore::due_reports
//! [`OutboxStore::lease_report`]: crate::store::OutboxStore::lease_report
//! [`OutboxStore::mark_report_delivered`]: crate::store::OutboxStore::mark_report_delivered
//! [`OutboxStore::mark_report_failed_attempt`]: crate::store::OutboxStore::mark_report_failed_attempt

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use futures_util::{FutureExt as _, StreamExt as _};
use serde::Serialize;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::act::delivery::{retry_delay, DeliveryOutcome, ReportSink, PERMANENT_FAILURE_RETRY};
use crate::act::report::{rfc3339_utc, OutboundReport, ReportKind};
use crate::store::{now_utc, ReportRow, Store, StoreError};

/// Reports taken up per round.
pub const DEFAULT_BATCH: i64 = 100;
/// Pause between rounds when nothing more is due.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(2);
/// Longest the final round at shutdown may take; what it does not finish stays pending.
pub const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a replica holds a report it is delivering before another may take it up:
/// six times as long as one attempt can take (every sink is sent to at once, each request
/// bounded by its timeout of ten seconds), so two replicas never send one report at the
/// same time, and short enough that the reports a dead replica was sending go out within
/// a minute.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);
/// Reports delivered at the same time within a round, so one slow receiver (each attempt
/// can take the webhook timeout) does not hold up the whole batch.
const REPORTS_IN_PARALLEL: usize = 4;

/// What one round did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryRound {
    /// Due reports taken up.
    pub due: usize,
    /// Reports now marked delivered (every sink acknowledged).
    pub delivered: usize,
    /// Reports with a failed attempt recorded; they stay pending until their next attempt.
    pub retrying: usize,
    /// Requests made to sinks (a sink that already acknowledged a report is not asked again).
    pub sends: usize,
    /// Reports whose result could not be written; they are taken up again when due.
    pub store_errors: usize,
    /// Due reports another replica took first.
    pub taken_elsewhere: usize,
}

/// Running totals, for `/metrics` and tests.
#[derive(Debug, Default)]
pub struct OutboxStats {
    pub rounds: AtomicU64,
    pub delivered: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub sends: AtomicU64,
    /// Failed store calls, whole rounds included.
    pub store_errors: AtomicU64,
}

impl OutboxStats {
    /// Adds a finished round.
    fn count(&self, round: &DeliveryRound) {
        let add = |counter: &AtomicU64, n: usize| counter.fetch_add(n as u64, Ordering::Relaxed);
        add(&self.rounds, 1);
        add(&self.delivered, round.delivered);
        add(&self.failed_attempts, round.retrying);
        add(&self.sends, round.sends);
        add(&self.store_errors, round.store_errors);
    }
}

/// The report delivery task. Build it with [`OutboxWorker::new`], keep [`OutboxWorker::waker`]
/// and [`OutboxWorker::stats`] if needed, then [`OutboxWorker::spawn`] it.
pub struct OutboxWorker {
    store: Arc<dyn Store>,
    sinks: Vec<Arc<dyn ReportSink>>,
    batch: i64,
    poll_interval: Duration,
    flush_timeout: Duration,
    lease: Duration,
    /// Report id → indexes of the sinks that acknowledged it (see the module docs).
    acknowledged: Mutex<HashMap<String, HashSet<usize>>>,
    wake: Arc<Notify>,
    stats: Arc<OutboxStats>,
}

/// How one report fared in a round.
enum ReportResult {
    TakenElsewhere,
    Delivered { sends: usize },
    Retrying { sends: usize },
    StoreError { sends: usize },
}

/// The body every sink receives: the act module's envelope, built from the stored row.
#[derive(Serialize)]
struct Envelope<'a> {
    report_id: &'a str,
    kind: ReportKind,
    idempotency_key: &'a str,
    created_at: &'a str,
    payload: &'a serde_json::Value,
}

impl OutboxWorker {
    /// `batch` below 1 counts as 1; a zero `poll_interval` as 1 ms (no busy loop).
    pub fn new(
        store: Arc<dyn Store>,
        sinks: Vec<Arc<dyn ReportSink>>,
        batch: i64,
        poll_interval: Duration,
    ) -> OutboxWorker {
        if sinks.is_empty() {
            tracing::warn!("no report sinks configured: reports stay pending until one is");
        }
        OutboxWorker {
            store,
            sinks,
            batch: batch.max(1),
            poll_interval: poll_interval.max(Duration::from_millis(1)),
            flush_timeout: DEFAULT_FLUSH_TIMEOUT,
            lease: DEFAULT_LEASE,
            acknowledged: Mutex::new(HashMap::new()),
            wake: Arc::new(Notify::new()),
            stats: Arc::new(OutboxStats::default()),
        }
    }

    /// Bound on the final round at shutdown.
    pub fn with_flush_timeout(mut self, flush_timeout: Duration) -> OutboxWorker {
        self.flush_timeout = flush_timeout;
        self
    }

    /// How long a report being delivered is held from other replicas; it must be longer
    /// than one delivery can take (see [`DEFAULT_LEASE`]).
    pub fn with_lease(mut self, lease: Duration) -> OutboxWorker {
        self.lease = lease;
        self
    }

    /// `notify_one()` on it starts a round now instead of after the poll interval; the
    /// service calls it after writing a report so delivery does not wait for the next poll.
    pub fn waker(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    pub fn stats(&self) -> Arc<OutboxStats> {
        Arc::clone(&self.stats)
    }

    /// One pass over the reports due now.
    pub async fn deliver_due(&self) -> Result<DeliveryRound, StoreError> {
        self.deliver_due_at(now_utc()).await
    }

    /// One pass over the reports due at `now`; next attempts are scheduled from `now` (or
    /// the real clock, if later). Tests pass a later `now` instead of waiting out backoff.
    pub async fn deliver_due_at(&self, now: DateTime<Utc>) -> Result<DeliveryRound, StoreError> {
        if self.sinks.is_empty() {
            // Marking anything delivered without a receiver would lose it.
            self.stats.rounds.fetch_add(1, Ordering::Relaxed);
            return Ok(DeliveryRound::default());
        }
        let due = match self.store.due_reports(now, self.batch).await {
            Ok(due) => due,
            Err(e) => {
                self.stats.store_errors.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        };
        let mut round = DeliveryRound {
            due: due.len(),
            ..DeliveryRound::default()
        };
        let results: Vec<ReportResult> = futures_util::stream::iter(due)
            .map(|row| self.deliver_report(row, now))
            .buffer_unordered(REPORTS_IN_PARALLEL)
            .collect()
            .await;
        for result in results {
            match result {
                ReportResult::TakenElsewhere => round.taken_elsewhere += 1,
                ReportResult::Delivered { sends } => {
                    round.delivered += 1;
                    round.sends += sends;
                }
                ReportResult::Retrying { sends } => {
                    round.retrying += 1;
                    round.sends += sends;
                }
                ReportResult::StoreError { sends } => {
                    round.store_errors += 1;
                    round.sends += sends;
                }
            }
        }
        self.stats.count(&round);
        Ok(round)
    }

    async fn deliver_report(&self, row: ReportRow, now: DateTime<Utc>) -> ReportResult {
        // Held first, so that another replica that read the same due row skips it.
        match self
            .store
            .lease_report(&row.id, now, next_attempt_at(now, self.lease))
            .await
        {
            Ok(true) => {}
            Ok(false) => return ReportResult::TakenElsewhere,
            Err(e) => return self.store_failed(&row.id, e, 0),
        }
        let outbound = match outbound_from_row(&row) {
            Ok(outbound) => outbound,
            Err(reason) => {
                // Kept and retried slowly: a newer build may know how to send it.
                tracing::error!(report_id = %row.id, %reason, "report row cannot be sent; retrying slowly, needs an operator");
                let next = next_attempt_at(now, PERMANENT_FAILURE_RETRY);
                return match self
                    .store
                    .mark_report_failed_attempt(&row.id, &reason, Some(next))
                    .await
                {
                    Ok(()) => ReportResult::Retrying { sends: 0 },
                    Err(e) => self.store_failed(&row.id, e, 0),
                };
            }
        };

        let already = self.acknowledged_by(&row.id);
        let outcomes: Vec<(usize, DeliveryOutcome)> = futures_util::future::join_all(
            self.sinks
                .iter()
                .enumerate()
                .filter(|(i, _)| !already.contains(i))
                .map(|(i, sink)| {
                    let outbound = &outbound;
                    async move { (i, sink.deliver(outbound).await) }
                }),
        )
        .await;
        let sends = outcomes.len();

        let mut failures = Vec::new();
        let mut newly_acknowledged = Vec::new();
        for (i, outcome) in outcomes {
            if outcome.is_acknowledged() {
                newly_acknowledged.push(i);
            } else {
                failures.push((i, outcome));
            }
        }

        if failures.is_empty() {
            return match self.store.mark_report_delivered(&row.id).await {
                Ok(()) => {
                    self.forget(&row.id);
                    ReportResult::Delivered { sends }
                }
                Err(e) => {
                    // Remember the acknowledgements so the next attempt only marks the row.
                    self.remember(&row.id, &newly_acknowledged);
                    self.store_failed(&row.id, e, sends)
                }
            };
        }

        self.remember(&row.id, &newly_acknowledged);
        let attempt = u32::try_from(row.attempts.saturating_add(1)).unwrap_or(u32::MAX);
        // The soonest any failing sink wants another try; sinks that asked for longer are
        // tried early, which costs them nothing but a request.
        let delay = failures
            .iter()
            .filter_map(|(_, outcome)| retry_delay(outcome, attempt))
            .min()
            .unwrap_or(PERMANENT_FAILURE_RETRY);
        let error = failures
            .iter()
            .map(|(i, outcome)| format!("{}: {}", self.sinks[*i].name(), describe(outcome)))
            .collect::<Vec<_>>()
            .join("; ");
        let next = next_attempt_at(now, delay);
        match self
            .store
            .mark_report_failed_attempt(&row.id, &error, Some(next))
            .await
        {
            Ok(()) => {
                tracing::debug!(report_id = %row.id, attempt, %next, %error, "report delivery attempt failed");
                ReportResult::Retrying { sends }
            }
            Err(e) => self.store_failed(&row.id, e, sends),
        }
    }

    fn store_failed(&self, report_id: &str, error: StoreError, sends: usize) -> ReportResult {
        if matches!(error, StoreError::NotFound(_)) {
            // The row is gone (deleted by an operator): nothing left to track.
            self.forget(report_id);
        }
        tracing::warn!(%report_id, %error, "could not record report delivery; it will be taken up again");
        ReportResult::StoreError { sends }
    }

    fn acknowledgements(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashSet<usize>>> {
        // The map is only a cache of sends already made: after a panic elsewhere it is
        // still valid, so a poisoned lock is used as is.
        self.acknowledged
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn acknowledged_by(&self, report_id: &str) -> HashSet<usize> {
        self.acknowledgements()
            .get(report_id)
            .cloned()
            .unwrap_or_default()
    }

    fn remember(&self, report_id: &str, sinks: &[usize]) {
        if sinks.is_empty() {
            return;
        }
        self.acknowledgements()
            .entry(report_id.to_string())
            .or_default()
            .extend(sinks.iter().copied());
    }

    fn forget(&self, report_id: &str) {
        self.acknowledgements().remove(report_id);
    }

    /// Runs rounds until `shutdown` turns true (or its sender is dropped), then flushes:
    /// the round in flight completes and one final round runs.
    pub fn spawn(self, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(self.run(shutdown))
    }

    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        tracing::info!(sinks = self.sinks.len(), "report outbox started");
        loop {
            if *shutdown.borrow_and_update() {
                break;
            }
            let more_due = self.guarded_round().await;
            if more_due {
                // A full batch: there may be more due right now.
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(self.poll_interval) => {}
                _ = self.wake.notified() => {}
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        // The owner is gone: nobody can ask us to stop any more.
                        break;
                    }
                }
            }
        }
        match tokio::time::timeout(self.flush_timeout, self.guarded_round()).await {
            Ok(_) => {}
            Err(_) => tracing::warn!(
                timeout = ?self.flush_timeout,
                "report outbox flush timed out; unsent reports stay pending for the next start"
            ),
        }
        tracing::info!("report outbox stopped");
    }

    /// One round that never ends the task: store errors and panicking sinks are logged.
    /// Returns whether a full batch was handled cleanly (more may be due at once).
    async fn guarded_round(&self) -> bool {
        match AssertUnwindSafe(self.deliver_due()).catch_unwind().await {
            Ok(Ok(round)) => {
                if round.due > 0 {
                    tracing::info!(
                        due = round.due,
                        delivered = round.delivered,
                        retrying = round.retrying,
                        store_errors = round.store_errors,
                        "report outbox round"
                    );
                }
                round.due as i64 >= self.batch && round.store_errors == 0
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e.chain(), retry_in = ?self.poll_interval, "report outbox cannot read the store; retrying");
                false
            }
            Err(_) => {
                tracing::error!("report outbox round panicked; retrying");
                false
            }
        }
    }
}

/// The request for a stored report. Only immutable columns go in, so every attempt is
/// byte-identical. An unknown kind is an error (the row is kept, see the module docs).
fn outbound_from_row(row: &ReportRow) -> Result<OutboundReport, String> {
    let kind = match row.kind.as_str() {
        "hit" => ReportKind::Hit,
        "cybertipline" => ReportKind::Cybertipline,
        "decision" => ReportKind::Decision,
        "account" => ReportKind::Account,
        "unpublish" => ReportKind::Unpublish,
        "appeal" => ReportKind::Appeal,
        other => return Err(format!("unknown report kind {other:?}")),
    };
    let created_at = rfc3339_utc(SystemTime::from(row.created_at));
    let body = serde_json::to_vec(&Envelope {
        report_id: &row.id,
        kind,
        idempotency_key: &row.idempotency_key,
        created_at: &created_at,
        payload: &row.payload,
    })
    .map_err(|e| format!("report body cannot be serialised: {e}"))?;
    Ok(OutboundReport::from_stored(
        row.id.clone(),
        kind,
        row.idempotency_key.clone(),
        body,
    ))
}

fn next_attempt_at(now: DateTime<Utc>, delay: Duration) -> DateTime<Utc> {
    // Sends can take a while; count the delay from when they ended.
    let base = now.max(now_utc());
    let delay = chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1));
    base.checked_add_signed(delay).unwrap_or(base)
}

fn describe(outcome: &DeliveryOutcome) -> String {
    match outcome {
        DeliveryOutcome::Acknowledged { status } => format!("acknowledged (HTTP {status})"),
        DeliveryOutcome::Retryable { reason, .. } => format!("retryable: {reason}"),
        DeliveryOutcome::Permanent { reason, .. } => format!("refused: {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    use serde_json::json;
    use sha2::{Digest as _, Sha256};

    use crate::act::report::{
        idempotency_key, IDEMPOTENCY_KEY_HEADER, REPORT_ID_HEADER, SIGNATURE_HEADER,
    };
    use crate::act::test_webhook::TestWebhook;
    use crate::act::webhook::{sign_body, WebhookConfig, WebhookSecret, WebhookSink};
    use crate::store::{
        self, ArtworkStatus, ReportState, ReportWrite, ScreeningFacts, ScreeningWrite,
    };

    const SECRET: &str = "outbox test secret";

    fn webhook(name: &str, url: &str) -> Arc<dyn ReportSink> {
        Arc::new(
            WebhookSink::new(WebhookConfig {
                name: name.to_string(),
                url: url.to_string(),
                secret: Some(WebhookSecret::new(SECRET)),
                timeout: Duration::from_secs(3),
            })
            .unwrap(),
        )
    }

    /// A worker with one webhook sink, `primary`.
    fn primary_worker(store: &Arc<dyn Store>, url: &str, poll: Duration) -> OutboxWorker {
        OutboxWorker::new(
            Arc::clone(store),
            vec![webhook("primary", url)],
            DEFAULT_BATCH,
            poll,
        )
    }

    async fn open_store() -> (tempfile::TempDir, Arc<dyn Store>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("coverguard.db");
        let store = store::open(path.to_str().unwrap()).await.unwrap();
        (dir, store)
    }

    /// A blocked screening with a hit report, as the service writes it.
    fn blocked_with_report(tag: &str, kind: &str) -> ScreeningWrite {
        let screening_id = store::new_id();
        let sha256 = hex::encode(Sha256::digest(tag.as_bytes()));
        let key = idempotency_key(ReportKind::Hit, &screening_id);
        ScreeningWrite {
            id: Some(screening_id.clone()),
            facts: ScreeningFacts {
                artwork_id: Some(format!("art-{tag}")),
                owner_id: Some("owner-1".to_string()),
                sha256: sha256.clone(),
                md5: "0123456789abcdef0123456789abcdef".to_string(),
                pdq: None,
                pdq_quality: None,
                verdict: crate::screening::policy::Verdict::Block,
                model: "test-model".to_string(),
                policy_version: "policy-1".to_string(),
                banks_version: 1,
                analysis: String::new(),
                view_pdq: Vec::new(),
                record: json!({ "verdict": "block" }),
                context: json!({ "surface": "playlist_cover" }),
            },
            artwork_status: ArtworkStatus::Held,
            quarantine: None,
            review: None,
            reports: vec![ReportWrite {
                idempotency_key: key,
                kind: kind.to_string(),
                payload: json!({
                    "schema": "coverguard.hit_report.v1",
                    "screening_id": screening_id,
                    "sha256": sha256,
                    "verdict": "block",
                    "reasons": ["bank match"],
                    "score": 0.87,
                }),
            }],
            created_at: None,
        }
    }

    /// Records a screening with a report; returns (report id, idempotency key).
    async fn record_report(store: &Arc<dyn Store>, tag: &str) -> (String, String) {
        let write = blocked_with_report(tag, "hit");
        let recorded = store.record_screening(&write).await.unwrap();
        let key = write.reports[0].idempotency_key.clone();
        (recorded.report_ids[0].clone(), key)
    }

    async fn report(store: &Arc<dyn Store>, id: &str) -> ReportRow {
        store.get_report(id).await.unwrap().expect("report row")
    }

    async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !condition() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A receiver that never answers: the report stays in flight until the task dies.
    struct Stuck {
        started: Arc<Notify>,
    }

    #[async_trait::async_trait]
    impl ReportSink for Stuck {
        fn name(&self) -> &str {
            "stuck"
        }

        async fn deliver(&self, _report: &OutboundReport) -> DeliveryOutcome {
            self.started.notify_one();
            std::future::pending().await
        }
    }

    #[tokio::test]
    async fn a_report_in_flight_on_one_replica_is_left_alone_until_its_lease_ends() {
        let (_dir, store) = open_store().await;
        let (report_id, key) = record_report(&store, "leased").await;
        let lease = Duration::from_secs(3600);

        // Replica A takes the report and hangs in the middle of sending it.
        let started = Arc::new(Notify::new());
        let a = OutboxWorker::new(
            Arc::clone(&store),
            vec![Arc::new(Stuck {
                started: Arc::clone(&started),
            })],
            DEFAULT_BATCH,
            DEFAULT_POLL_INTERVAL,
        )
        .with_lease(lease);
        let in_flight = tokio::spawn(async move { a.deliver_due().await });
        started.notified().await;

        // Replica B, healthy, leaves it alone while A's lease runs, however often it looks.
        let hook = TestWebhook::start(vec![]);
        let b = primary_worker(&store, hook.url(), DEFAULT_POLL_INTERVAL);
        let within_lease = now_utc() + chrono::Duration::seconds(3000);
        for now in [now_utc(), within_lease] {
            assert_eq!(
                b.deliver_due_at(now).await.unwrap(),
                DeliveryRound::default()
            );
        }
        assert!(hook.requests().is_empty());

        // A dies holding it; once the lease has run out B sends it, under the same key.
        in_flight.abort();
        assert!(in_flight.await.unwrap_err().is_cancelled());
        let after_lease = now_utc() + chrono::Duration::seconds(3700);
        let round = b.deliver_due_at(after_lease).await.unwrap();
        assert_eq!((round.due, round.delivered, round.sends), (1, 1, 1));
        let received = hook.requests();
        assert_eq!(received.len(), 1);
        assert_eq!(
            received[0].headers[&IDEMPOTENCY_KEY_HEADER.to_ascii_lowercase()],
            key
        );
        assert_eq!(
            report(&store, &report_id).await.state,
            ReportState::Delivered
        );
    }

    #[tokio::test]
    async fn replicas_reading_the_same_due_reports_send_each_once() {
        let (_dir, store) = open_store().await;
        let mut ids = Vec::new();
        for i in 0..12 {
            ids.push(record_report(&store, &format!("shared-{i}")).await.0);
        }
        let hook = TestWebhook::start(vec![]);
        let replica = || primary_worker(&store, hook.url(), DEFAULT_POLL_INTERVAL);
        let (a, b) = (replica(), replica());
        // Both replicas read the same due rows, then race to send each of them.
        let now = now_utc() + chrono::Duration::seconds(1);
        let due = store.due_reports(now, 100).await.unwrap();
        assert_eq!(due.len(), ids.len());
        let results = futures_util::future::join_all(due.into_iter().flat_map(|row| {
            [
                a.deliver_report(row.clone(), now),
                b.deliver_report(row, now),
            ]
        }))
        .await;
        let (mut delivered, mut skipped) = (0, 0);
        for result in results {
            match result {
                ReportResult::Delivered { sends: 1 } => delivered += 1,
                ReportResult::TakenElsewhere => skipped += 1,
                _ => panic!("a report neither delivered once nor left to the other"),
            }
        }
        assert_eq!((delivered, skipped), (ids.len(), ids.len()));
        let mut sent: Vec<String> = hook
            .requests()
            .iter()
            .map(|r| r.headers[&REPORT_ID_HEADER.to_ascii_lowercase()].clone())
            .collect();
        sent.sort();
        ids.sort();
        assert_eq!(sent, ids, "every report sent exactly once");
    }

    #[tokio::test]
    async fn a_recorded_report_is_delivered_with_its_idempotency_key() {
        let (_dir, store) = open_store().await;
        let hook = TestWebhook::start(vec![]);
        let (report_id, key) = record_report(&store, "one").await;
        let worker = primary_worker(&store, hook.url(), Duration::from_millis(20));
        let (stop, stopped) = watch::channel(false);
        let task = worker.spawn(stopped);

        eventually("the webhook to be called", || !hook.requests().is_empty()).await;
        let row = {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let row = report(&store, &report_id).await;
                if row.state == ReportState::Delivered || Instant::now() > deadline {
                    break row;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        assert_eq!(row.state, ReportState::Delivered);
        assert_eq!(row.attempts, 0);
        assert!(row.delivered_at.is_some());

        let received = hook.requests();
        assert_eq!(received.len(), 1, "delivered once");
        let request = &received[0];
        assert_eq!(
            request.headers[&IDEMPOTENCY_KEY_HEADER.to_ascii_lowercase()],
            key
        );
        assert_eq!(
            request.headers[&REPORT_ID_HEADER.to_ascii_lowercase()],
            report_id
        );
        assert_eq!(
            request.headers[&SIGNATURE_HEADER.to_ascii_lowercase()],
            sign_body(&WebhookSecret::new(SECRET), &request.body)
        );
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["report_id"], report_id.as_str());
        assert_eq!(body["kind"], "hit");
        assert_eq!(body["idempotency_key"], key.as_str());
        assert_eq!(body["payload"], row.payload);
        assert_eq!(
            body["created_at"],
            rfc3339_utc(SystemTime::from(row.created_at)).as_str()
        );

        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("worker stops")
            .expect("worker did not panic");
        assert_eq!(hook.requests().len(), 1, "nothing sent twice");
    }

    #[tokio::test]
    async fn a_webhook_failing_twice_gets_the_same_report_on_the_third_round() {
        let (_dir, store) = open_store().await;
        let hook = TestWebhook::statuses(&[503, 500]);
        let (report_id, key) = record_report(&store, "flaky").await;
        let worker = OutboxWorker::new(
            Arc::clone(&store),
            vec![webhook("flaky", hook.url())],
            DEFAULT_BATCH,
            DEFAULT_POLL_INTERVAL,
        );
        let start = now_utc();

        let first = worker.deliver_due_at(start).await.unwrap();
        assert_eq!((first.due, first.retrying, first.sends), (1, 1, 1));
        let row = report(&store, &report_id).await;
        assert_eq!((row.state, row.attempts), (ReportState::Pending, 1));
        assert!(row.next_attempt_at > start);
        assert!(row.last_error.as_deref().unwrap().contains("flaky"));
        assert!(row.last_error.as_deref().unwrap().contains("503"));
        // Not due again until its backoff has passed.
        assert_eq!(worker.deliver_due_at(start).await.unwrap().due, 0);

        let second = worker
            .deliver_due_at(start + chrono::Duration::hours(2))
            .await
            .unwrap();
        assert_eq!((second.due, second.retrying), (1, 1));
        assert_eq!(report(&store, &report_id).await.attempts, 2);

        let third = worker
            .deliver_due_at(start + chrono::Duration::hours(4))
            .await
            .unwrap();
        assert_eq!((third.due, third.delivered), (1, 1));
        let row = report(&store, &report_id).await;
        assert_eq!(row.state, ReportState::Delivered);
        assert_eq!(row.attempts, 2, "two failed attempts recorded");
        assert_eq!(row.last_error, None);
        assert!(row.delivered_at.is_some());

        let received = hook.requests();
        assert_eq!(received.len(), 3);
        for request in &received {
            assert_eq!(request.headers["idempotency-key"], key);
            assert_eq!(request.body, received[0].body, "identical bytes each time");
            assert_eq!(
                request.headers["x-coverguard-signature"],
                received[0].headers["x-coverguard-signature"]
            );
        }
        let later = worker
            .deliver_due_at(start + chrono::Duration::hours(6))
            .await
            .unwrap();
        assert_eq!(later.due, 0);
        assert_eq!(hook.requests().len(), 3);
    }

    #[tokio::test]
    async fn a_dead_webhook_keeps_the_report_pending_until_it_comes_back() {
        let (_dir, store) = open_store().await;
        // Bound but not listening, so connections are refused until the hook starts on it.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
        let url = format!("http://{}/reports", socket.local_addr().unwrap());
        let (report_id, key) = record_report(&store, "dead").await;
        let worker = OutboxWorker::new(
            Arc::clone(&store),
            vec![webhook("dead", &url)],
            DEFAULT_BATCH,
            DEFAULT_POLL_INTERVAL,
        );

        let round = worker.deliver_due().await.unwrap();
        assert_eq!((round.due, round.retrying), (1, 1));
        let row = report(&store, &report_id).await;
        assert_eq!((row.state, row.attempts), (ReportState::Pending, 1));
        assert!(
            row.next_attempt_at > now_utc(),
            "next attempt in the future"
        );
        assert!(row
            .last_error
            .as_deref()
            .unwrap()
            .contains("dead: retryable"));
        assert_eq!(worker.deliver_due().await.unwrap().due, 0, "not due yet");

        let hook = TestWebhook::serve(socket.listen(16).unwrap().into_std().unwrap(), vec![]);
        let later = now_utc() + chrono::Duration::hours(2);
        let round = worker.deliver_due_at(later).await.unwrap();
        assert_eq!((round.due, round.delivered), (1, 1));
        let row = report(&store, &report_id).await;
        assert_eq!((row.state, row.attempts), (ReportState::Delivered, 1));
        let round = worker
            .deliver_due_at(later + chrono::Duration::hours(2))
            .await
            .unwrap();
        assert_eq!(round.due, 0);
        let received = hook.requests();
        assert_eq!(received.len(), 1, "delivered once");
        assert_eq!(received[0].headers["idempotency-key"], key);
    }

    #[tokio::test]
    async fn a_report_counts_as_delivered_only_when_every_sink_acknowledged() {
        let (_dir, store) = open_store().await;
        let healthy = TestWebhook::start(vec![]);
        let failing = TestWebhook::statuses(&[503]);
        let (report_id, key) = record_report(&store, "two sinks").await;
        let worker = OutboxWorker::new(
            Arc::clone(&store),
            vec![
                webhook("healthy", healthy.url()),
                webhook("failing", failing.url()),
            ],
            DEFAULT_BATCH,
            DEFAULT_POLL_INTERVAL,
        );
        let start = now_utc();
        let first = worker.deliver_due_at(start).await.unwrap();
        assert_eq!((first.retrying, first.sends), (1, 2));
        let row = report(&store, &report_id).await;
        assert_eq!(row.state, ReportState::Pending);
        let error = row.last_error.unwrap();
        assert!(
            error.contains("failing") && !error.contains("healthy"),
            "{error}"
        );

        let second = worker
            .deliver_due_at(start + chrono::Duration::hours(2))
            .await
            .unwrap();
        assert_eq!((second.delivered, second.sends), (1, 1));
        assert_eq!(
            report(&store, &report_id).await.state,
            ReportState::Delivered
        );
        // The sink that acknowledged first was not asked again.
        assert_eq!(healthy.requests().len(), 1);
        let failing_requests = failing.requests();
        assert_eq!(failing_requests.len(), 2);
        assert_eq!(failing_requests[1].headers["idempotency-key"], key);
        assert_eq!(failing_requests[1].body, healthy.requests()[0].body);
    }

    #[tokio::test]
    async fn shutdown_flushes_reports_written_while_idle() {
        let (_dir, store) = open_store().await;
        let hook = TestWebhook::start(vec![]);
        // A poll interval far beyond the test: only the flush can deliver.
        let worker = primary_worker(&store, hook.url(), Duration::from_secs(3600));
        let stats = worker.stats();
        let (stop, stopped) = watch::channel(false);
        let task = worker.spawn(stopped);
        eventually("the first round", || {
            stats.rounds.load(Ordering::Relaxed) >= 1
        })
        .await;

        let (report_id, _) = record_report(&store, "late").await;
        assert_eq!(report(&store, &report_id).await.state, ReportState::Pending);
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("worker stops")
            .expect("worker did not panic");
        assert_eq!(
            report(&store, &report_id).await.state,
            ReportState::Delivered
        );
        assert_eq!(hook.requests().len(), 1);
    }

    #[tokio::test]
    async fn the_waker_starts_a_round_without_waiting_for_the_poll() {
        let (_dir, store) = open_store().await;
        let hook = TestWebhook::start(vec![]);
        let worker = primary_worker(&store, hook.url(), Duration::from_secs(3600));
        let (stats, wake) = (worker.stats(), worker.waker());
        let (stop, stopped) = watch::channel(false);
        let task = worker.spawn(stopped);
        eventually("the first round", || {
            stats.rounds.load(Ordering::Relaxed) >= 1
        })
        .await;
        record_report(&store, "woken").await;
        wake.notify_one();
        eventually("the woken round", || hook.requests().len() == 1).await;
        stop.send(true).unwrap();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_store_outage_does_not_end_the_task() {
        let (_dir, store) = open_store().await;
        let hook = TestWebhook::start(vec![]);
        let worker = primary_worker(&store, hook.url(), Duration::from_millis(10));
        assert!(worker.deliver_due().await.is_ok());
        let stats = worker.stats();
        store.close().await;
        assert!(matches!(
            worker.deliver_due().await,
            Err(StoreError::Unavailable(..))
        ));

        let (stop, stopped) = watch::channel(false);
        let task = worker.spawn(stopped);
        eventually("rounds failing on the closed store", || {
            stats.store_errors.load(Ordering::Relaxed) >= 4
        })
        .await;
        assert!(!task.is_finished(), "the task keeps going");
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("worker stops")
            .expect("worker did not panic");
    }

    #[tokio::test]
    async fn reports_are_never_dropped_without_a_way_to_send_them() {
        let (_dir, store) = open_store().await;
        let hook = TestWebhook::start(vec![]);

        // No sinks: nothing is marked delivered.
        let (report_id, _) = record_report(&store, "no sinks").await;
        let idle = OutboxWorker::new(Arc::clone(&store), vec![], 10, DEFAULT_POLL_INTERVAL);
        assert_eq!(idle.deliver_due().await.unwrap(), DeliveryRound::default());
        assert_eq!(report(&store, &report_id).await.state, ReportState::Pending);

        // A kind this build cannot send is kept and retried at the slow rate.
        let write = blocked_with_report("odd kind", "future-kind");
        let odd = store
            .record_screening(&write)
            .await
            .unwrap()
            .report_ids
            .remove(0);
        let worker = OutboxWorker::new(
            Arc::clone(&store),
            vec![webhook("primary", hook.url())],
            10,
            DEFAULT_POLL_INTERVAL,
        );
        let before = now_utc();
        let round = worker.deliver_due().await.unwrap();
        assert_eq!((round.due, round.delivered, round.retrying), (2, 1, 1));
        let row = report(&store, &odd).await;
        assert_eq!(row.state, ReportState::Pending);
        assert!(row.last_error.unwrap().contains("future-kind"));
        let slow = chrono::Duration::from_std(PERMANENT_FAILURE_RETRY).unwrap();
        assert!(row.next_attempt_at >= before + slow);
        assert_eq!(
            hook.requests().len(),
            1,
            "only the sendable report went out"
        );
    }

    #[test]
    fn the_body_is_rebuilt_identically_from_the_row() {
        let row = ReportRow {
            id: "rep-1".to_string(),
            screening_id: Some("scr-1".to_string()),
            idempotency_key: idempotency_key(ReportKind::Cybertipline, "scr-1"),
            kind: "cybertipline".to_string(),
            payload: json!({ "b": 1, "a": [0.1, "x"] }),
            state: ReportState::Pending,
            attempts: 3,
            next_attempt_at: now_utc(),
            last_error: Some("earlier".to_string()),
            created_at: DateTime::from_timestamp(1_700_000_000, 123_000).unwrap(),
            delivered_at: None,
        };
        let first = outbound_from_row(&row).unwrap();
        // Fields that change between attempts do not reach the body.
        let retried = ReportRow {
            attempts: 4,
            last_error: None,
            next_attempt_at: now_utc() + chrono::Duration::hours(1),
            ..row.clone()
        };
        assert_eq!(outbound_from_row(&retried).unwrap(), first);
        assert_eq!(first.kind, ReportKind::Cybertipline);
        assert_eq!(first.idempotency_key, row.idempotency_key);
        let body: serde_json::Value = serde_json::from_slice(&first.body).unwrap();
        assert_eq!(
            body,
            json!({
                "report_id": "rep-1",
                "kind": "cybertipline",
                "idempotency_key": row.idempotency_key,
                "created_at": "2023-11-14T22:13:20Z",
                "payload": { "a": [0.1, "x"], "b": 1 },
            })
        );
    }
}
