//! The rows a screening writes: the screening, its review item and priority, and its reports.

use std::time::SystemTime;

use super::{PipelineError, Submission};
use crate::act::report::{self as report_payload};
use crate::classify::Detection;
use crate::matching::index::BankIndex;
use crate::screening::context::ScreenContext;
use crate::screening::policy::{Policy, Verdict};
use crate::screening::record::ScreeningRecord;
use crate::store::{
    ArtworkStatus, ReportCategory, ReporterKind, ReviewWrite, ScreeningFacts, ScreeningRow,
    ScreeningWrite, StoreError, ViewPdq,
};

/// The store refuses a screening id already stored for other bytes. Under an
/// `Idempotency-Key` that is another instance's request winning the key: the caller's
/// conflict, answered as such.
pub(crate) fn key_taken(
    e: PipelineError,
    submission: &Submission,
    bound_to_request: bool,
) -> PipelineError {
    match (e, &submission.screening_id) {
        (PipelineError::Store(StoreError::Conflict(_)), Some(id)) if bound_to_request => {
            PipelineError::IdempotencyConflict {
                screening_id: id.clone(),
            }
        }
        (e, _) => e,
    }
}

/// What a verdict makes of the artwork: public, held, or out of view with its evidence.
pub(crate) fn artwork_status(verdict: Verdict, quarantine: bool) -> ArtworkStatus {
    match verdict {
        Verdict::Allow => ArtworkStatus::Published,
        Verdict::Review if !quarantine => ArtworkStatus::Held,
        _ => ArtworkStatus::Quarantined,
    }
}

/// What analysed a screening: the model, and how the bytes were analysed.
pub(crate) struct Analyser {
    pub model: String,
    pub analysis: String,
}

/// The PDQ of each view of `record`, as stored for retroactive matching.
pub(super) fn view_pdq(record: &ScreeningRecord) -> Vec<ViewPdq> {
    record
        .views
        .iter()
        .map(|v| ViewPdq {
            frame: v.frame,
            rendering: v.rendering,
            hash: v.pdq.hash.clone(),
            quality: i64::from(v.pdq.quality),
        })
        .collect()
}

/// The store row of a screening: `record`'s hashes, verdict, policy version and JSON.
/// The caller adds what the verdict does (quarantine, review, reports).
pub(super) fn screening_write(
    record: &ScreeningRecord,
    screening_id: String,
    submission: &Submission,
    analyser: Analyser,
    banks_version: i64,
    context: serde_json::Value,
    artwork_status: ArtworkStatus,
) -> Result<ScreeningWrite, StoreError> {
    Ok(ScreeningWrite {
        id: Some(screening_id),
        facts: ScreeningFacts {
            artwork_id: submission.artwork_id.clone(),
            owner_id: submission.owner_id.clone(),
            sha256: record.sha256.clone(),
            md5: record.md5.clone(),
            pdq: Some(record.pdq.hash.clone()),
            pdq_quality: Some(i64::from(record.pdq.quality)),
            verdict: record.verdict,
            model: analyser.model,
            policy_version: record.policy.clone(),
            banks_version,
            analysis: analyser.analysis,
            view_pdq: view_pdq(record),
            record: serde_json::to_value(record)
                .map_err(|e| StoreError::Invalid(format!("the record does not serialise: {e}")))?,
            context,
        },
        artwork_status,
        quarantine: None,
        review: None,
        reports: Vec::new(),
        created_at: None,
    })
}

/// The queue row for a record: its priority and what the console filters on.
pub(super) fn review_write(
    record: &ScreeningRecord,
    banks: &BankIndex,
    policy: &Policy,
    context: &ScreenContext,
    reason: Option<String>,
) -> ReviewWrite {
    let top = top_explicit(record, policy);
    let mut labels: Vec<String> = all_detections(record).map(|d| d.label.clone()).collect();
    labels.sort();
    labels.dedup();
    let mut bank_names: Vec<String> = record.matches.iter().map(|m| m.bank.clone()).collect();
    bank_names.sort();
    bank_names.dedup();
    ReviewWrite {
        priority: review_priority(record, banks, top.map_or(0.0, |d| d.score), context),
        reason,
        verdict: record.verdict,
        top_label: top.map(|d| d.label.clone()),
        top_score: top.map(|d| f64::from(d.score)),
        labels,
        banks: bank_names,
    }
}

/// The queue row for a stored screening that has none, as a user report makes it: what
/// [`review_write`] gives its record (a words-only record has no scores), with `reason`.
pub(crate) fn stored_review_write(
    row: &ScreeningRow,
    banks: &BankIndex,
    policy: &Policy,
    reason: String,
) -> ReviewWrite {
    let context: ScreenContext =
        serde_json::from_value(row.facts.context.clone()).unwrap_or_default();
    match serde_json::from_value::<ScreeningRecord>(row.facts.record.clone()) {
        Ok(record) if row.facts.has_image() => ReviewWrite {
            verdict: row.facts.verdict,
            ..review_write(&record, banks, policy, &context, Some(reason))
        },
        _ => ReviewWrite {
            priority: 0,
            reason: Some(reason),
            verdict: row.facts.verdict,
            top_label: None,
            top_score: None,
            labels: Vec::new(),
            banks: Vec::new(),
        },
    }
}

/// The detections of the reference decoding and of every view.
fn all_detections(record: &ScreeningRecord) -> impl Iterator<Item = &Detection> {
    record
        .detections
        .iter()
        .chain(record.views.iter().flat_map(|v| &v.detections))
}

/// The highest-scoring detection of a label the policy acts on (a face is not explicit),
/// over every view.
fn top_explicit<'a>(record: &'a ScreeningRecord, policy: &Policy) -> Option<&'a Detection> {
    all_detections(record)
        .filter(|d| policy.labels.contains_key(&d.label))
        .max_by(|a, b| a.score.total_cmp(&b.score))
}

/// What a strict-context review whose words ask for contact or pictures adds: more than
/// any explicit score can (1,000), less than a bank hit (1,000,000).
const STRICT_TEXT_PRIORITY: i64 = 2_000;

/// What completing an owner pattern adds: above every single upload's words and scores,
/// below a bank hit.
const OWNER_PATTERN_PRIORITY: i64 = 500_000;

/// What a report that a minor is involved adds, from a guardian, a trusted flagger or the
/// police: above an owner pattern, below a bank hit.
const VOUCHED_MINOR_REPORT_PRIORITY: i64 = 600_000;
/// The same report from anyone else: above a strict-context review of words and scores.
const MINOR_REPORT_PRIORITY: i64 = 4_000;
/// Any other report: above every explicit score, so what people saw is looked at first.
const REPORT_PRIORITY: i64 = 1_000;

/// What a user report adds to the priority of the item it is counted on.
pub fn report_priority(reporter: ReporterKind, category: ReportCategory) -> i64 {
    match (category.concerns_minor(), reporter.is_vouched()) {
        (true, true) => VOUCHED_MINOR_REPORT_PRIORITY,
        (true, false) => MINOR_REPORT_PRIORITY,
        (false, _) => REPORT_PRIORITY,
    }
}

/// Most of an owner's recent screenings read for the owner pattern.
pub(super) const OWNER_PATTERN_ROWS: i64 = 500;

/// Bank hits first, by the most severe bank matched; then a minor's upload or an empty
/// playlist whose title or description asks for contact details or pictures (the case's
/// own pattern); then by the highest explicit score.
fn review_priority(
    record: &ScreeningRecord,
    banks: &BankIndex,
    top_explicit: f32,
    context: &ScreenContext,
) -> i64 {
    let severity = record
        .matches
        .iter()
        .filter_map(|m| banks.rules(&m.bank))
        .filter(|r| !r.allow_list)
        .map(|r| r.severity.clamp(0, 1000))
        .max();
    severity.map_or(0, |s| 1_000_000 * (1 + s))
        + text_priority(&record.text, context)
        + (top_explicit.clamp(0.0, 1.0) * 1000.0) as i64
}

/// What a record's words add to its review priority: completing an owner pattern, and
/// asking for contact or pictures in the strict context.
pub(crate) fn text_priority(text: &crate::text::TextRecord, context: &ScreenContext) -> i64 {
    let strict_text = context.strict_reason().is_some()
        && text
            .signals
            .iter()
            .any(|s| s.kind.is_contact() || s.kind.is_solicitation());
    (if text.owner_pattern.is_empty() {
        0
    } else {
        OWNER_PATTERN_PRIORITY
    }) + if strict_text { STRICT_TEXT_PRIORITY } else { 0 }
}

pub(super) fn hit_report(
    screening_id: &str,
    submission: &Submission,
    record: &ScreeningRecord,
    banks: &BankIndex,
) -> report_payload::HitReport {
    report_payload::HitReport {
        schema: "coverguard.hit.v1".into(),
        screening_id: screening_id.to_string(),
        artwork_id: submission.artwork_id.clone(),
        owner_id: submission.owner_id.clone(),
        sha256: record.sha256.clone(),
        md5: record.md5.clone(),
        pdq: Some(report_payload::PdqSummary {
            hash: record.pdq.hash.clone(),
            quality: record.pdq.quality,
        }),
        verdict: record.verdict.as_str().into(),
        reasons: record.reasons.clone(),
        matches: record
            .matches
            .iter()
            .map(|m| report_payload::ReportMatch {
                bank: m.bank.clone(),
                bank_category: banks.rules(&m.bank).and_then(|r| r.category.clone()),
                signal: m.signal.as_str().into(),
                distance: m.distance,
                entry: m.entry.clone(),
                transform: m.transform.clone(),
            })
            .collect(),
        detections: report_payload::summarise_detections(
            record
                .detections
                .iter()
                .map(|d| (d.label.as_str(), d.score)),
        ),
        uploaded_at: report_payload::rfc3339_utc(SystemTime::now()),
        source: report_payload::ReportSource {
            surface: submission.context.surface.clone(),
            url: submission.url.clone(),
            publicly_available: false,
        },
    }
}
