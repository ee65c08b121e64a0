//! Screening with consequences, shared by the HTTP service and backfill:
//! analyse (decode, hash) → classify (scheduler, or the verdict cache) → match and
//! decide → act (encrypted quarantine copy, review row, report outbox rows), with
//! every row written in one store transaction.
//!
//! Fetching is the caller's: the service and backfill fetch differently (a request
//! deadline against per-host limits and retries), and both hand bytes in here.

mod basis;
mod retro;
mod same_bytes;
mod writes;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde::Serialize;

use crate::act::quarantine::{QuarantineError, QuarantineVault};
use crate::act::report::{self as report_payload, ReportError, ReportKind, ReporterInfo};
use crate::decode::{DecodeLimits, Resolution};
use crate::matching::bank::{BankMatch, SignalType};
use crate::matching::index::{BankIndex, SharedBankIndex};
use crate::screening::analyse::{analyse_with, build_record, ImageDetections, ScreenError};
use crate::screening::context::ScreenContext;
use crate::screening::evidence::PendingEvidence;
use crate::screening::policy::{Policy, Verdict};
use crate::screening::record::ScreeningRecord;
use crate::screening::scheduler::{Scheduler, SchedulerError};
use crate::screening::text::Decision;
use crate::screening::views::ViewSettings;
use crate::store::{self, ReportWrite, ScreeningRow, ScreeningWrite, Store, StoreError};
use crate::text::ocr::Depth;

pub use retro::{RetroHit, RetroSummary};
pub use same_bytes::SameBytes;
pub use writes::report_priority;
use writes::*;
pub(crate) use writes::{artwork_status, key_taken, stored_review_write, text_priority, Analyser};

/// Why a screening produced no verdict. Callers must treat every one as "not allowed".
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Screen(#[from] ScreenError),
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not quarantine the image: {0}")]
    Quarantine(#[from] QuarantineError),
    #[error("could not build the report: {0}")]
    Report(#[from] ReportError),
    #[error("the analysis task failed: {0}")]
    Task(String),
    #[error("Idempotency-Key already names screening {screening_id}, of another request (other bytes, URL, artwork, owner or context); use a new key for a new request")]
    IdempotencyConflict { screening_id: String },
}

impl PipelineError {
    /// Stable machine-readable kind.
    pub fn kind(&self) -> &'static str {
        match self {
            PipelineError::Screen(e) => e.kind(),
            PipelineError::Scheduler(SchedulerError::Overloaded { .. }) => "overloaded",
            PipelineError::Scheduler(SchedulerError::Shutdown) => "shutting_down",
            PipelineError::Scheduler(SchedulerError::Classify(_)) => "classify",
            PipelineError::Store(e) => e.kind(),
            PipelineError::Quarantine(_) => "quarantine",
            PipelineError::Report(_) => "report",
            PipelineError::Task(_) => "internal",
            PipelineError::IdempotencyConflict { .. } => "idempotency_conflict",
        }
    }
}

/// What screening does with a verdict.
#[derive(Clone, Debug)]
pub struct PipelineSettings {
    pub limits: DecodeLimits,
    /// How much of a JPEG to decode for hashing and the model.
    pub resolution: Resolution,
    /// Also quarantine `review` verdicts, not only `block`.
    pub quarantine_on_review: bool,
    /// How long quarantined evidence is kept.
    pub retention: Duration,
    /// Needed for CyberTipline payloads (hits on `csam` banks).
    pub reporter: Option<ReporterInfo>,
    /// Which frames and renderings are screened beyond the reference decoding.
    pub views: ViewSettings,
    /// The rules (and keyword list) titles and descriptions are read with.
    pub text: crate::text::TextScreener,
    /// When one owner's uploads make the owner pattern.
    pub owner_pattern: crate::screening::owner_pattern::OwnerPatternSettings,
}

/// One image to screen and what the caller knows about it.
#[derive(Clone, Debug, Default)]
pub struct Submission {
    /// Where the bytes came from, as recorded (`upload:<artwork>`, a URL, a path).
    pub source: String,
    /// The URL fetched, when there was one (it goes into reports).
    pub url: Option<String>,
    pub artwork_id: Option<String>,
    pub owner_id: Option<String>,
    pub context: ScreenContext,
    /// A caller-chosen screening id makes the write idempotent across retries
    /// (backfill derives it from the job and the item); `None` makes a new one.
    pub screening_id: Option<String>,
}

/// A recorded screening.
#[derive(Clone, Debug)]
pub struct Screened {
    pub record: ScreeningRecord,
    pub screening_id: String,
    /// False when `screening_id` was already recorded: nothing new was written.
    pub created: bool,
    pub quarantined: bool,
    /// Outbox rows of this screening: the hit report first, then a CyberTipline report.
    pub report_ids: Vec<String>,
    /// Answered from the verdict cache, without inference.
    pub cached: bool,
}

impl Screened {
    /// The record as the API answers it.
    pub fn response(&self) -> ScreeningResponse {
        ScreeningResponse {
            record: self.record.clone(),
            screening_id: self.screening_id.clone(),
            quarantined: self.quarantined,
            report_id: self.report_ids.first().cloned(),
            report_ids: self.report_ids.clone(),
        }
    }
}

/// A screening as `POST /v1/screen` answers it: the scan record plus what was done.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ScreeningResponse {
    #[serde(flatten)]
    pub record: ScreeningRecord,
    pub screening_id: String,
    /// The bytes are kept encrypted as evidence and the artwork is not public.
    pub quarantined: bool,
    /// The hit report, when one was made (every `block`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_id: Option<String>,
    /// Every report made: the hit report, then a CyberTipline report for a `csam` bank hit.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub report_ids: Vec<String>,
}

/// Everything a screening needs once loaded. Cheap to share behind an `Arc`.
pub struct Pipeline {
    pub store: Arc<dyn Store>,
    pub scheduler: Scheduler,
    pub vault: Arc<dyn QuarantineVault>,
    pub policy: Policy,
    pub banks: SharedBankIndex,
    pub settings: PipelineSettings,
    /// Woken after a screening wrote a report, so the outbox delivers at once.
    pub reported: Arc<tokio::sync::Notify>,
    /// Screenings of identical bytes in flight together, in any replica, run one after
    /// the other, so the later ones find the first one's verdict in the cache.
    pub same_bytes: SameBytes,
    /// Decodes and hashes running at once.
    pub cpu_slots: CpuSlots,
}

/// One slot per core for decoding and hashing.
pub struct CpuSlots(tokio::sync::Semaphore);

impl Default for CpuSlots {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        CpuSlots(tokio::sync::Semaphore::new(cores))
    }
}

impl CpuSlots {
    async fn acquire(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.0.acquire().await.expect("CPU slots are never closed")
    }
}

impl Pipeline {
    /// Refuses a request whose key already names a stored screening of another request.
    pub(crate) async fn check_same_request(
        &self,
        screening_id: &str,
        sha256: &str,
        submission: &Submission,
    ) -> Result<(), PipelineError> {
        let Some(row) = self.store.get_screening(screening_id).await? else {
            return Ok(());
        };
        let context = serde_json::from_value::<ScreenContext>(row.facts.context.clone()).ok();
        let source = row.facts.record.get("source").and_then(|s| s.as_str());
        // A URL is the request whatever it serves on a retry; raw bytes are their sha256.
        let same = row.facts.artwork_id == submission.artwork_id
            && row.facts.owner_id == submission.owner_id
            && context.as_ref() == Some(&submission.context)
            && source == Some(submission.source.as_str())
            && (submission.url.is_some() || row.facts.sha256 == sha256);
        if same {
            Ok(())
        } else {
            Err(PipelineError::IdempotencyConflict {
                screening_id: screening_id.to_string(),
            })
        }
    }

    /// How this pipeline analyses bytes, reading words to `depth`: stored with each
    /// screening, and part of the verdict cache key, so a screening analysed otherwise
    /// (before views existed, or read through the gate) is never reused.
    pub fn analysis(&self, depth: Depth) -> String {
        let views = self.settings.views.analysis();
        match self.scheduler.ocr_id(depth) {
            // Read with OCR is another analysis: turning it on reads what was cached.
            Some(ocr) => format!("{views};{ocr}"),
            None => views,
        }
    }

    /// The current bank index; the version is checked against the store first, so a
    /// bank change made through any instance is seen by the next screening.
    pub async fn banks(&self) -> Result<Arc<BankIndex>, StoreError> {
        self.banks.refresh(self.store.as_ref()).await?;
        Ok(self.banks.current())
    }

    /// The index to screen with: [`Pipeline::banks`] without waiting on bank work (another
    /// refresh, or the rebuild of a large index, which runs in the background meanwhile), so
    /// a bank write never delays a screening past its deadline. The screening records the
    /// version it used.
    pub async fn banks_for_screening(&self) -> Result<Arc<BankIndex>, StoreError> {
        self.banks.refresh_without_waiting(&self.store).await?;
        Ok(self.banks.current())
    }

    /// Screen `bytes` and record the verdict and its consequences.
    pub async fn screen(
        &self,
        bytes: Bytes,
        submission: &Submission,
    ) -> Result<Screened, PipelineError> {
        self.screen_checked(bytes, submission, false).await
    }

    /// As [`Pipeline::screen`], for a `screening_id` derived from a caller's idempotency
    /// key: the key belongs to one request, so a screening already stored under it must be
    /// of the same request (bytes or URL, artwork, owner and context), or this one is
    /// refused as [`PipelineError::IdempotencyConflict`] before any evidence is written.
    pub async fn screen_for_key(
        &self,
        bytes: Bytes,
        submission: &Submission,
    ) -> Result<Screened, PipelineError> {
        self.screen_checked(bytes, submission, true).await
    }

    async fn screen_checked(
        &self,
        bytes: Bytes,
        submission: &Submission,
        bound_to_request: bool,
    ) -> Result<Screened, PipelineError> {
        // Admission first: under overload a refusal (429) must cost nothing, or the
        // work spent on refused requests starves the accepted ones.
        let admission = self.scheduler.admit()?;
        let (limits, resolution) = (self.settings.limits.clone(), self.settings.resolution);
        let view_settings = self.settings.views.clone();
        let decode_input = bytes.clone();
        // Decode and hashing are CPU work: off the async runtime, and no more at once
        // than there are cores (more would only hold more decoded images in memory).
        let analysed = {
            let _cpu = self.cpu_slots.acquire().await;
            tokio::task::spawn_blocking(move || {
                analyse_with(&decode_input, &limits, resolution, &view_settings)
            })
            .await
            .map_err(|e| PipelineError::Task(e.to_string()))??
        };
        let analysed = Arc::new(analysed);

        // Requests under one key run one at a time, so the second of two racing requests
        // sees the first one's row before it writes anything. Always taken before the
        // bytes' lock, so the two cannot deadlock; the prefix keeps the names apart.
        let _same_key = match (&submission.screening_id, bound_to_request) {
            (Some(id), true) => Some(self.same_bytes.key(id).await),
            _ => None,
        };
        if let (Some(id), true) = (&submission.screening_id, bound_to_request) {
            self.check_same_request(id, &analysed.exact.sha256, submission)
                .await?;
        }
        let _same_bytes = self.same_bytes.bytes(&analysed.exact.sha256).await?;
        let basis = self.basis(self.banks_for_screening().await?, &submission.context);

        // Identical bytes under the same model, analysis, policy and banks: no inference.
        let cached = self
            .store
            .cached_verdict(&analysed.exact.sha256, &basis.versions())
            .await?
            .and_then(|row| ImageDetections::from_record(&row.facts.record, &analysed));
        let was_cached = cached.is_some();
        let detections = match cached {
            Some(d) => d,
            None => {
                self.scheduler
                    .classify_admitted(
                        admission,
                        Arc::clone(&analysed),
                        submission.context.ocr_depth(),
                    )
                    .await?
            }
        };

        let mut record = build_record(
            &submission.source,
            &analysed,
            detections,
            basis.banks.bank_set(),
            &basis.policy,
            &basis.analyser.model,
        );
        self.apply_submission((&mut record).into(), submission, &basis.policy)
            .await?;
        self.apply_owner_pattern((&mut record).into(), submission)
            .await?;
        let screening_id = submission
            .screening_id
            .clone()
            .unwrap_or_else(store::new_id);
        let recorded = self
            .record_decided(
                &record,
                screening_id,
                submission,
                basis.analyser,
                &basis.banks,
                &basis.policy,
                Some(&bytes),
            )
            .await
            .map_err(|e| key_taken(e, submission, bound_to_request))?;
        if bound_to_request && !recorded.created {
            // Another instance stored the key first; answer its record only if it is of
            // this same request.
            self.check_same_request(&recorded.screening_id, &analysed.exact.sha256, submission)
                .await?;
        }
        Ok(Screened {
            record,
            screening_id: recorded.screening_id,
            created: recorded.created,
            quarantined: recorded.quarantined,
            report_ids: recorded.report_ids,
            cached: was_cached,
        })
    }

    /// Holds for review, and puts ahead in the queue, an upload that completes an owner
    /// pattern: with it, enough of the owner's recent empty playlists ask for contact or
    /// pictures. Read from the owner's stored screenings (their context and signals).
    pub(crate) async fn apply_owner_pattern(
        &self,
        mut record: Decision<'_>,
        submission: &Submission,
    ) -> Result<(), StoreError> {
        use crate::screening::owner_pattern::{self, Upload};
        let (Some(owner), Some(artwork)) = (&submission.owner_id, &submission.artwork_id) else {
            return Ok(());
        };
        let now = chrono::Utc::now();
        let signals = record.text.signals.clone();
        let current = Upload {
            artwork_id: artwork,
            at: now,
            context: &submission.context,
            signals: &signals,
        };
        if !current.counts() {
            return Ok(());
        }
        let settings = &self.settings.owner_pattern;
        let rows = self
            .store
            .owner_screenings_since(owner, now - settings.window, OWNER_PATTERN_ROWS)
            .await?;
        let earlier: Vec<owner_pattern::StoredUpload> = rows
            .into_iter()
            .filter_map(owner_pattern::StoredUpload::from_row)
            .collect();
        let mut uploads: Vec<Upload<'_>> = earlier.iter().map(|u| u.upload()).collect();
        uploads.push(current);
        if let Some(pattern) = owner_pattern::find(&uploads, now, settings) {
            let reason = pattern.reason(settings);
            record.raise(Verdict::Review);
            record.reasons.insert(0, reason);
            record.text.owner_pattern = pattern.artworks.into_iter().map(|(id, _)| id).collect();
        }
        Ok(())
    }

    /// What the submission adds to a decided record: the strict profile's reason, the text
    /// signals of its title and description, and a hold for review when the owner's
    /// account was taken down.
    pub(crate) async fn apply_submission(
        &self,
        mut record: Decision<'_>,
        submission: &Submission,
        policy: &Policy,
    ) -> Result<(), StoreError> {
        crate::screening::text::apply_context(
            record.reborrow(),
            &submission.context,
            policy,
            &self.settings.text,
        );
        let taken_down = match &submission.owner_id {
            Some(owner) => self.store.is_taken_down(owner).await?,
            None => false,
        };
        if taken_down && *record.verdict == Verdict::Allow {
            *record.verdict = Verdict::Review;
            record
                .reasons
                .insert(0, "review: the owner's account was taken down".into());
        }
        Ok(())
    }

    /// Whether a verdict keeps an encrypted copy of the bytes.
    pub(crate) fn quarantines(&self, verdict: Verdict) -> bool {
        verdict == Verdict::Block
            || (self.settings.quarantine_on_review && verdict == Verdict::Review)
    }

    /// Record `record` with what its verdict does, in one store write: the encrypted copy of
    /// `evidence` when the verdict quarantines, the review row, the reports and the artwork's
    /// status. Without evidence a quarantining verdict still takes the artwork out of view.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn record_decided(
        &self,
        record: &ScreeningRecord,
        screening_id: String,
        submission: &Submission,
        analyser: Analyser,
        banks: &BankIndex,
        policy: &Policy,
        evidence: Option<&[u8]>,
    ) -> Result<store::RecordedScreening, PipelineError> {
        let quarantine = self.quarantines(record.verdict);
        let review = (record.verdict != Verdict::Allow).then(|| {
            review_write(
                record,
                banks,
                policy,
                &submission.context,
                record.reasons.first().cloned(),
            )
        });
        let reports = if record.verdict == Verdict::Block {
            self.reports(&screening_id, submission, record, banks)?
        } else {
            Vec::new()
        };
        let artwork_status = artwork_status(record.verdict, quarantine);
        let context = serde_json::to_value(&submission.context)
            .map_err(|e| StoreError::Invalid(format!("the context does not serialise: {e}")))?;
        let mut write = ScreeningWrite {
            review,
            reports,
            ..screening_write(
                record,
                screening_id,
                submission,
                analyser,
                banks.banks_version(),
                context,
                artwork_status,
            )?
        };
        // Everything that can fail before the store write is done: from here on, evidence
        // written is either pointed at by the row or discarded.
        let pending = match evidence.filter(|_| quarantine) {
            Some(bytes) => Some(
                self.write_evidence(&record.sha256, bytes, &mut write)
                    .await?,
            ),
            None => None,
        };
        let recorded = self.store.record_screening(&write).await;
        let recorded = match recorded {
            Ok(recorded) if recorded.created => {
                if let Some(pending) = pending {
                    pending.recorded(self.vault.as_ref()).await;
                }
                recorded
            }
            // Nothing was recorded, or another instance recorded this id first (with its own
            // evidence, if any): what this one wrote stays only if a stored row points at it.
            other => {
                if let Some(pending) = pending {
                    pending
                        .unrecorded(self.vault.as_ref(), self.store.as_ref())
                        .await;
                }
                other?
            }
        };
        if !recorded.report_ids.is_empty() {
            self.reported.notify_one();
        }
        Ok(recorded)
    }

    /// Write the encrypted copy of `bytes`, kept for the retention period, and point
    /// `write`'s quarantine row at it.
    async fn write_evidence<'a>(
        &self,
        sha256: &'a str,
        bytes: &'a [u8],
        write: &mut ScreeningWrite,
    ) -> Result<PendingEvidence<'a>, QuarantineError> {
        let retention = SystemTime::now() + self.settings.retention;
        let (pending, quarantine) =
            PendingEvidence::write(self.vault.as_ref(), sha256, bytes, retention).await?;
        write.quarantine = Some(quarantine);
        Ok(pending)
    }

    /// The hit report, and a CyberTipline report when a `csam` bank matched.
    /// The reports a reviewer's confirm writes: the screening's hit report (and CyberTipline
    /// report when `bank` holds CSAM) as if it had matched `bank`. They carry the keys the
    /// screening's own reports would have, so a screening that was reported already keeps
    /// its one report (the confirm finds it) instead of getting a second.
    pub fn confirmation_reports(
        &self,
        screening: &ScreeningRow,
        bank: &str,
    ) -> Result<Vec<ReportWrite>, PipelineError> {
        let stored = |what: &str, e: serde_json::Error| {
            StoreError::backend(
                format!("screening {}: stored {what} does not parse", screening.id),
                e,
            )
        };
        let mut record: ScreeningRecord = serde_json::from_value(screening.facts.record.clone())
            .map_err(|e| stored("record", e))?;
        let context: ScreenContext = serde_json::from_value(screening.facts.context.clone())
            .map_err(|e| stored("context", e))?;
        record.verdict = Verdict::Block;
        record
            .reasons
            .insert(0, format!("block: confirmed by review into bank {bank}"));
        record.matches.push(BankMatch {
            bank: bank.to_string(),
            signal: if screening.facts.pdq.is_some() {
                SignalType::Pdq
            } else {
                SignalType::Md5
            },
            distance: 0,
            transform: None,
            robust: false,
            entry: format!("review:{}", screening.id),
            frame: None,
            rendering: None,
        });
        let submission = Submission {
            source: record.source.clone(),
            url: None,
            artwork_id: screening.facts.artwork_id.clone(),
            owner_id: screening.facts.owner_id.clone(),
            context,
            screening_id: Some(screening.id.clone()),
        };
        self.reports(&screening.id, &submission, &record, &self.banks.current())
    }

    fn reports(
        &self,
        screening_id: &str,
        submission: &Submission,
        record: &ScreeningRecord,
        banks: &BankIndex,
    ) -> Result<Vec<ReportWrite>, PipelineError> {
        let hit = hit_report(screening_id, submission, record, banks);
        let mut writes = vec![ReportWrite {
            idempotency_key: report_payload::idempotency_key(ReportKind::Hit, screening_id),
            kind: ReportKind::Hit.as_str().into(),
            payload: serde_json::to_value(&hit).map_err(|e| ReportError::Serialize {
                detail: e.to_string(),
            })?,
        }];
        if hit.is_csam_bank_hit() {
            match &self.settings.reporter {
                Some(reporter) => {
                    let tip = report_payload::build_cybertipline_report(&hit, reporter)?;
                    writes.push(ReportWrite {
                        idempotency_key: report_payload::idempotency_key(
                            ReportKind::Cybertipline,
                            screening_id,
                        ),
                        kind: ReportKind::Cybertipline.as_str().into(),
                        payload: serde_json::to_value(&tip).map_err(|e| {
                            ReportError::Serialize {
                                detail: e.to_string(),
                            }
                        })?,
                    });
                }
                // The hit report (which names the bank's category) still goes out; the
                // service refuses csam banks without a reporter, so this is a bank made
                // behind its back.
                None => tracing::error!(
                    screening = screening_id,
                    "csam bank hit but no [reporter] is configured: no CyberTipline report made"
                ),
            }
        }
        Ok(writes)
    }
}
