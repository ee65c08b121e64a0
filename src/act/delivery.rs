//! Delivering a report: what an answer means, and when to try again.
//!
//! Every retry (and every retry after a restart, when the outbox stores them) sends
//! the same bytes under the same key. [`WebhookSink`](super::webhook::WebhookSink) POSTs them and classifies the answer
//! ([`DeliveryOutcome`]); the outbox schedules the next try with
//! [`retry_delay`].
//!
//! # Outcome policy
//!
//! - 2xx: acknowledged, done.
//! - 408, 429, 5xx, timeouts and connection errors: retryable, with
//!   exponential backoff and jitter from 5 s up to 1 h ([`next_attempt_delay`]),
//!   or later if the receiver sent `Retry-After`.
//! - 3xx and other 4xx: permanent. Redirects are not followed (a webhook URL
//!   is configured exactly). A permanent failure is **not** dropped: it usually
//!   means a misconfigured receiver (wrong URL, rotated secret, schema
//!   rejected), and losing a report, above all a CSAM one, is never
//!   acceptable. The outbox keeps it, retries it at the slow fixed rate
//!   [`PERMANENT_FAILURE_RETRY`] and should surface it to an operator.

use std::time::Duration;

use async_trait::async_trait;

use super::report::OutboundReport;

/// First retry delay, and the floor of every retryable delay.
pub const BACKOFF_MIN: Duration = Duration::from_secs(5);
/// Ceiling of the exponential backoff.
pub const BACKOFF_MAX: Duration = Duration::from_secs(3600);
/// How often a permanently failing report is tried again (see the module docs).
pub const PERMANENT_FAILURE_RETRY: Duration = Duration::from_secs(3600);

/// The result of one delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The receiver took it (2xx). Done.
    Acknowledged { status: u16 },
    /// Try again later; `retry_after` is the receiver's own hint, if any.
    Retryable {
        reason: String,
        status: Option<u16>,
        retry_after: Option<Duration>,
    },
    /// The receiver refused it; retried only at [`PERMANENT_FAILURE_RETRY`].
    Permanent { reason: String, status: Option<u16> },
}

impl DeliveryOutcome {
    pub fn is_acknowledged(&self) -> bool {
        matches!(self, DeliveryOutcome::Acknowledged { .. })
    }

    /// Stable machine-readable kind, for the outbox row and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            DeliveryOutcome::Acknowledged { .. } => "acknowledged",
            DeliveryOutcome::Retryable { .. } => "retryable",
            DeliveryOutcome::Permanent { .. } => "permanent",
        }
    }
}

/// Classify an HTTP status per the module's outcome policy.
pub fn classify_status(status: u16, retry_after: Option<Duration>) -> DeliveryOutcome {
    match status {
        200..=299 => DeliveryOutcome::Acknowledged { status },
        408 | 429 | 500..=599 => DeliveryOutcome::Retryable {
            reason: format!("HTTP {status}"),
            status: Some(status),
            retry_after,
        },
        _ => DeliveryOutcome::Permanent {
            reason: format!("HTTP {status}"),
            status: Some(status),
        },
    }
}

/// A destination for reports. Object safe: the delivery task holds
/// `Vec<Arc<dyn ReportSink>>`.
#[async_trait]
pub trait ReportSink: Send + Sync {
    /// Stable name, recorded with each delivery in the outbox.
    fn name(&self) -> &str;

    /// One delivery attempt. Never panics and never errors: every failure is an outcome.
    async fn deliver(&self, report: &OutboundReport) -> DeliveryOutcome;
}

/// Exponential backoff with jitter after `attempts` failed attempts (1 = the
/// first failed): the nominal delay doubles from [`BACKOFF_MIN`] up to
/// [`BACKOFF_MAX`], and the actual one is uniform in the upper half of it
/// (never below `BACKOFF_MIN`), so receivers coming back are not hit in step.
pub fn next_attempt_delay(attempts: u32) -> Duration {
    let mut random = [0u8; 8];
    // Without randomness the delay is the nominal one: still correct, just not spread.
    let unit = match getrandom::fill(&mut random) {
        Ok(()) => (u64::from_le_bytes(random) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 1.0,
    };
    next_attempt_delay_with_jitter(attempts, unit)
}

/// [`next_attempt_delay`] with the jitter given: `unit` in `[0, 1]` picks a
/// point in `[max(nominal / 2, BACKOFF_MIN), nominal]`.
pub fn next_attempt_delay_with_jitter(attempts: u32, unit: f64) -> Duration {
    let doublings = attempts.saturating_sub(1).min(30);
    let nominal = BACKOFF_MIN
        .saturating_mul(1u32 << doublings)
        .min(BACKOFF_MAX);
    let low = (nominal / 2).max(BACKOFF_MIN);
    let unit = if unit.is_finite() {
        unit.clamp(0.0, 1.0)
    } else {
        1.0
    };
    low + (nominal.saturating_sub(low)).mul_f64(unit)
}

/// When to try again after `outcome` on the `attempts`-th attempt; `None` once acknowledged.
pub fn retry_delay(outcome: &DeliveryOutcome, attempts: u32) -> Option<Duration> {
    match outcome {
        DeliveryOutcome::Acknowledged { .. } => None,
        DeliveryOutcome::Retryable { retry_after, .. } => {
            let backoff = next_attempt_delay(attempts);
            let hinted = retry_after
                .map(|d| d.min(BACKOFF_MAX))
                .unwrap_or(Duration::ZERO);
            Some(backoff.max(hinted))
        }
        DeliveryOutcome::Permanent { .. } => Some(PERMANENT_FAILURE_RETRY),
    }
}

/// The last outcome of [`deliver_with_retries`] and how many attempts it took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryAttempts {
    pub outcome: DeliveryOutcome,
    pub attempts: u32,
}

/// Deliver in-process until acknowledged, a permanent outcome, or
/// `max_attempts`, sleeping `delay_for(attempts, outcome)` between tries. For
/// short-lived callers and tests; the service's outbox persists attempts and
/// schedules with [`retry_delay`] instead, so a restart loses nothing.
pub async fn deliver_with_retries(
    sink: &dyn ReportSink,
    report: &OutboundReport,
    max_attempts: u32,
    delay_for: impl Fn(u32, &DeliveryOutcome) -> Option<Duration>,
) -> DeliveryAttempts {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let outcome = sink.deliver(report).await;
        let retryable = matches!(outcome, DeliveryOutcome::Retryable { .. });
        if !retryable || attempts >= max_attempts.max(1) {
            return DeliveryAttempts { outcome, attempts };
        }
        match delay_for(attempts, &outcome) {
            Some(delay) => tokio::time::sleep(delay).await,
            None => return DeliveryAttempts { outcome, attempts },
        }
    }
}
