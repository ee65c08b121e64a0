//! Durable store: screenings, artworks, banks, quarantine, review queue, reports outbox,
//! audit log, API tokens and account takedowns.
//!
//! The rest of the crate sees only [`Store`] (object safe), the area traits it is made of
//! ([`ScreeningStore`], [`BankStore`], [`ReviewStore`], ...) and the plain types below; [`open`]
//! picks SQLite or Postgres from the URL and runs that backend's migrations. Both backends share
//! one implementation (`sql/`, one file per area, included by each backend file) because the
//! SQL is portable; each backend file only supplies connection set-up and the few statements
//! that differ.
//!
//! Every write that may be retried (backfill, crash recovery, a client retry) is idempotent: a
//! screening id, a report idempotency key, a bank entry (bank, signal, hash), a quarantine item
//! (sha256, artwork) and a takedown can all be written twice without a second effect.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use crate::names::UnknownName;
/// What a match in a bank does to the verdict: the policy's type, stored as its text.
pub use crate::screening::policy::BankAction;
use crate::screening::policy::Verdict;
use columns::{JsonText, ListText};

#[macro_use]
mod columns;
mod pace;
mod postgres;
mod sqlite;

#[cfg(test)]
mod tests;

/// What a store error was caused by (the database's own error, a row that does not
/// parse), kept as the error's source.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors of the store. Callers map [`StoreError::Unavailable`] to 503 with `Retry-After`,
/// and never treat any error as an `allow`. A message says what failed in the store's
/// words; the database's own words are the source (see [`StoreError::chain`]).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached right now (pool exhausted, connection lost, locked).
    #[error("store unavailable: {0}")]
    Unavailable(String, #[source] Option<Cause>),
    /// The write contradicts what is stored (e.g. a bank of that name with other settings).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// The caller passed something the store refuses (empty hash, unknown bank, bad URL).
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("migration failed: {0}")]
    Migration(String, #[source] Option<Cause>),
    /// Anything else the database said, including rows that no longer decode.
    #[error("store backend error: {0}")]
    Backend(String, #[source] Option<Cause>),
}

impl StoreError {
    /// Stable machine-readable kind for API error bodies and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::Unavailable(..) => "unavailable",
            StoreError::Conflict(_) => "conflict",
            StoreError::NotFound(_) => "not_found",
            StoreError::Invalid(_) => "invalid",
            StoreError::Migration(..) => "migration",
            StoreError::Backend(..) => "backend",
        }
    }

    /// Whether retrying the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(..))
    }

    /// Unavailable because of `cause`.
    pub fn unavailable(message: impl Into<String>, cause: impl Into<Cause>) -> Self {
        StoreError::Unavailable(message.into(), Some(cause.into()))
    }

    /// A backend failure (or a stored row that does not decode) because of `cause`.
    pub fn backend(message: impl Into<String>, cause: impl Into<Cause>) -> Self {
        StoreError::Backend(message.into(), Some(cause.into()))
    }

    /// This error and each of its causes, `: `-separated: what logs and API bodies show.
    pub fn chain(&self) -> String {
        crate::error_chain::chain(self)
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        use sqlx::error::ErrorKind;
        match &err {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => {
                StoreError::unavailable("the database cannot be reached", err)
            }
            sqlx::Error::RowNotFound => StoreError::NotFound(err.to_string()),
            sqlx::Error::Configuration(_) => StoreError::Invalid(err.to_string()),
            sqlx::Error::Database(db) => {
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                // SQLite: 5 BUSY, 6 LOCKED (and their extended codes end in those low bits).
                // Postgres: 40001 serialization, 40P01 deadlock, 53xxx resources, 57Pxx shutdown,
                // 08xxx connection: all transient.
                let sqlite_busy = code
                    .parse::<i64>()
                    .map(|c| matches!(c & 0xff, 5 | 6))
                    .unwrap_or(false);
                let pg_transient = code == "40001"
                    || code == "40P01"
                    || code.starts_with("53")
                    || code.starts_with("57P")
                    || code.starts_with("08");
                if sqlite_busy || pg_transient {
                    return StoreError::unavailable("the database is busy", err);
                }
                match db.kind() {
                    ErrorKind::UniqueViolation => StoreError::Conflict(db.message().to_string()),
                    ErrorKind::ForeignKeyViolation
                    | ErrorKind::NotNullViolation
                    | ErrorKind::CheckViolation => StoreError::Invalid(db.message().to_string()),
                    _ => StoreError::backend("the database refused the statement", err),
                }
            }
            _ => StoreError::backend("the database failed", err),
        }
    }
}

/// A stored name (a verdict, a state, a role) that no longer reads as one: the row does
/// not decode.
impl From<UnknownName> for StoreError {
    fn from(err: UnknownName) -> Self {
        StoreError::backend("a stored row does not decode", err)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        match err {
            sqlx::migrate::MigrateError::Execute(inner) => match StoreError::from(inner) {
                unavailable @ StoreError::Unavailable(..) => unavailable,
                other => StoreError::Migration("a migration failed".into(), Some(Box::new(other))),
            },
            other => StoreError::Migration(
                "the schema cannot be migrated".into(),
                Some(Box::new(other)),
            ),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Screening ids are UUID-shaped strings; time-ordered when the store makes them.
pub type ScreeningId = String;

/// A new time-ordered id (UUIDv7 text), used for every row id the store generates.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Current time at the precision both backends keep (microseconds), so values read back
/// compare equal to the values written.
pub fn now_utc() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

// Verdicts and bank actions are kept as their names; a name that is none of the enum's fails
// to decode with [`crate::names::UnknownName`].
text_column!(
    crate::screening::policy::Verdict,
    crate::screening::policy::BankAction
);

/// A store enum: kept as its name in a text column, and in the API as the same name.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident ($what:literal) { $($variant:ident => $text:literal),+ $(,)? }) => {
        crate::names::named_enum!(
            $(#[$meta])*
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
            #[serde(rename_all = "snake_case")]
            pub enum $name ($what) { $($variant => $text),+ }
        );
        text_column!($name);
    };
}

text_enum!(
    /// Publication state of an artwork as the platform should treat it.
    ArtworkStatus ("artwork status") {
        Published => "published",
        Held => "held",
        Quarantined => "quarantined",
        Released => "released",
    }
);

text_enum!(
    ReportState ("report state") {
        Pending => "pending",
        Delivered => "delivered",
        Failed => "failed",
    }
);

text_enum!(
    ReviewState ("review state") {
        Pending => "pending",
        Claimed => "claimed",
        Decided => "decided",
    }
);

mod review;
pub use review::*;
mod user_reports;
pub use user_reports::*;
mod appeals;
pub use appeals::*;
mod statements;
pub use statements::*;
mod transparency;
pub use transparency::*;

text_enum!(
    /// `service` may screen; `admin` may also manage banks, takedowns and quarantine.
    TokenRole ("token role") {
        Service => "service",
        Admin => "admin",
    }
);

/// What a screening found and decided: what its write stores and its row reads back.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ScreeningFacts {
    pub artwork_id: Option<String>,
    pub owner_id: Option<String>,
    /// Empty, as `md5` is, for a screening of words alone (a title with no new cover).
    pub sha256: String,
    pub md5: String,
    pub pdq: Option<String>,
    pub pdq_quality: Option<i64>,
    pub verdict: Verdict,
    pub model: String,
    /// Must identify every policy input that changes the verdict, including the context profile
    /// (e.g. minor owner), because the verdict cache matches on it.
    pub policy_version: String,
    pub banks_version: i64,
    /// How the bytes were analysed (which views were made); part of the verdict cache key.
    /// Empty for rows recorded before views existed.
    pub analysis: String,
    /// The PDQ of every view beyond the reference decoding, for retroactive matching.
    #[sqlx(try_from = "JsonText<Vec<ViewPdq>>")]
    pub view_pdq: Vec<ViewPdq>,
    #[sqlx(try_from = "JsonText<serde_json::Value>")]
    pub record: serde_json::Value,
    #[sqlx(try_from = "JsonText<serde_json::Value>")]
    pub context: serde_json::Value,
}

impl ScreeningFacts {
    /// The versions this screening's verdict was made under.
    pub fn versions(&self) -> VerdictVersions<'_> {
        VerdictVersions {
            model: &self.model,
            analysis: &self.analysis,
            policy: &self.policy_version,
            banks: self.banks_version,
        }
    }

    /// Whether an image was screened.
    pub fn has_image(&self) -> bool {
        !self.sha256.is_empty()
    }

    /// A screening of words alone: no hashes of any kind.
    pub fn is_words_only(&self) -> bool {
        self.sha256.is_empty()
            && self.md5.is_empty()
            && self.pdq.is_none()
            && self.view_pdq.is_empty()
    }
}

/// The versions a verdict is made under. A stored verdict is reused for the same bytes only
/// under the same versions, and is out of date once one of them changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerdictVersions<'a> {
    pub model: &'a str,
    /// How the bytes are analysed (which views are made).
    pub analysis: &'a str,
    /// Identifies every policy input that changes the verdict, the context profile included.
    pub policy: &'a str,
    pub banks: i64,
}

/// Everything one screening writes, applied in a single transaction by
/// [`ScreeningStore::record_screening`].
#[derive(Debug, Clone)]
pub struct ScreeningWrite {
    /// Caller-chosen id (makes a retry idempotent); `None` lets the store make one.
    pub id: Option<ScreeningId>,
    pub facts: ScreeningFacts,
    /// Status for the artwork row (ignored without `artwork_id`). A `published` status for an
    /// owner whose account is taken down is stored as `held`.
    pub artwork_status: ArtworkStatus,
    pub quarantine: Option<QuarantineWrite>,
    pub review: Option<ReviewWrite>,
    /// Outbox rows written with the screening, each idempotent on its key.
    pub reports: Vec<ReportWrite>,
    /// `None` means now.
    pub created_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct QuarantineWrite {
    /// Where the encrypted bytes live (local path key now, object key later).
    pub object_key: String,
    pub retention_until: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct ReviewWrite {
    /// Higher is reviewed first.
    pub priority: i64,
    pub reason: Option<String>,
    /// What the queue filters on, copied from the record (owner comes from the screening).
    pub verdict: Verdict,
    pub top_label: Option<String>,
    pub top_score: Option<f64>,
    pub labels: Vec<String>,
    pub banks: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ReportWrite {
    /// Sent to the webhook unchanged on every attempt; a second write with the same key is a no-op.
    pub idempotency_key: String,
    /// e.g. "hit" or "cybertipline".
    pub kind: String,
    pub payload: serde_json::Value,
}

/// What [`ScreeningStore::record_screening`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedScreening {
    pub screening_id: ScreeningId,
    /// False when the id was already stored (a retry): nothing was written.
    pub created: bool,
    /// Status the artwork row has after the write (None without an artwork id).
    pub artwork_status: Option<ArtworkStatus>,
    pub quarantined: bool,
    /// The report rows for the write's idempotency keys (new or pre-existing), in order.
    pub report_ids: Vec<String>,
    pub review_id: Option<String>,
    pub owner_taken_down: bool,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ScreeningRow {
    pub id: ScreeningId,
    #[sqlx(flatten)]
    pub facts: ScreeningFacts,
    pub created_at: DateTime<Utc>,
}

/// The PDQ of one view (a frame, in a rendering) of a screened file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ViewPdq {
    pub frame: crate::decode::FrameId,
    pub rendering: crate::screening::views::Rendering,
    pub hash: String,
    pub quality: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ArtworkRow {
    pub artwork_id: String,
    pub owner_id: Option<String>,
    pub latest_screening_id: Option<ScreeningId>,
    pub status: ArtworkStatus,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct BankSpec {
    pub name: String,
    /// Signal types matched against this bank, e.g. "pdq", "md5", "sha256".
    #[sqlx(try_from = "JsonText<Vec<String>>")]
    pub signal_types: Vec<String>,
    /// Maximum PDQ Hamming distance that counts as a match.
    pub pdq_threshold: i64,
    pub action: BankAction,
    /// An allow-list bank exempts matches instead of flagging them.
    pub allow_list: bool,
    pub severity: i64,
    /// What the bank holds, e.g. `csam` (whose hits also get a CyberTipline report);
    /// lower-case letters, digits, `_` and `-`.
    #[serde(default)]
    pub category: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct BankRow {
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub spec: BankSpec,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EntryWrite {
    pub signal: String,
    /// Stored trimmed and lower-cased (hex), so the same hash is one entry however spelt.
    pub hash: String,
    pub external_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct EntryRow {
    pub id: String,
    pub bank: String,
    pub signal: String,
    pub hash: String,
    pub external_id: Option<String>,
    pub disabled: bool,
    pub added_at: DateTime<Utc>,
}

/// Result of a bank change: how many rows it changed and the version after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BankChange {
    pub changed: u64,
    pub banks_version: i64,
}

/// One entry starting or stopping to match, as the bank change log records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryChange {
    pub bank: String,
    pub signal: String,
    pub hash: String,
    /// What a match reports (the external id, else the entry id) once the entry matches;
    /// `None` when it stops matching (removed or disabled).
    pub matched_as: Option<String>,
}

/// The entry changes between an index's version and the store's, when the log has them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankChangeLog {
    pub banks_version: i64,
    /// `None` when some version in between is not a logged entry change (bank settings, an
    /// import, a large add) or is too old to be kept: the index must be rebuilt.
    pub changes: Option<Vec<EntryChange>>,
    /// Enabled entries of all banks, from the counters (to judge what a rebuild costs).
    pub enabled_entries: i64,
}

/// A bank's entry counters (published entries only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct BankCounts {
    pub entries: i64,
    pub disabled: i64,
}

/// Most rows per transaction of a bulk import, which also sizes its steps to end each
/// transaction, commit included, within 200 ms: each holds SQLite's single writer lock only
/// briefly, however loaded the machine.
pub const IMPORT_BATCH: usize = 10_000;

/// Banks and enabled entries read from one consistent snapshot, tagged with its version, so an
/// index built from it never mixes two versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BankSnapshot {
    pub banks_version: i64,
    pub banks: Vec<BankRow>,
    pub entries: Vec<EntryRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct QuarantineRow {
    pub id: String,
    pub sha256: String,
    pub screening_id: ScreeningId,
    pub artwork_id: Option<String>,
    pub owner_id: Option<String>,
    pub object_key: String,
    pub retention_until: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub released_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct ReviewRow {
    pub id: String,
    pub screening_id: ScreeningId,
    pub artwork_id: Option<String>,
    pub priority: i64,
    pub state: ReviewState,
    pub reason: Option<String>,
    pub claimed_by: Option<String>,
    pub claimed_at: Option<DateTime<Utc>>,
    pub decided_at: Option<DateTime<Utc>>,
    #[schema(value_type = Option<String>)]
    pub decision: Option<ReviewDecision>,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
    pub level: ReviewLevel,
    pub verdict: Option<Verdict>,
    pub owner_id: Option<String>,
    pub top_label: Option<String>,
    pub top_score: Option<f64>,
    #[sqlx(try_from = "ListText")]
    pub labels: Vec<String>,
    #[sqlx(try_from = "ListText")]
    pub banks: Vec<String>,
    pub reason_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ReportRow {
    pub id: String,
    /// The screening the report is about; `None` for an account event.
    pub screening_id: Option<ScreeningId>,
    pub idempotency_key: String,
    pub kind: String,
    #[sqlx(try_from = "JsonText<serde_json::Value>")]
    pub payload: serde_json::Value,
    pub state: ReportState,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct AuditRow {
    pub id: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    #[sqlx(try_from = "JsonText<serde_json::Value>")]
    pub detail: serde_json::Value,
    pub at: DateTime<Utc>,
}

/// The record stored for `screening_id` read back as `T`: what was answered when the
/// screening was made, for a retry to answer again.
pub async fn read_record<T: serde::de::DeserializeOwned>(
    store: &dyn Store,
    screening_id: &str,
) -> Result<T, StoreError> {
    let stored = store
        .get_screening(screening_id)
        .await?
        .ok_or_else(|| StoreError::NotFound(screening_id.to_string()))?;
    serde_json::from_value(stored.facts.record).map_err(|e| {
        StoreError::Invalid(format!(
            "stored screening {screening_id} does not read back: {e}"
        ))
    })
}

/// The durable store, one trait per area. Object safe: the service holds an `Arc<dyn Store>` and
/// never learns which backend runs; a caller imports the area traits whose methods it calls.
#[async_trait]
pub trait Store:
    ScreeningStore
    + BankStore
    + AccountStore
    + QuarantineStore
    + OutboxStore
    + AuditStore
    + TokenStore
    + BackfillStore
    + ReviewStore
    + ConsoleUserStore
    + UserReportStore
    + AppealStore
    + StatementStore
    + TransparencyStore
    + Send
    + Sync
{
    /// "sqlite" or "postgres", for logs and `/readyz` detail only.
    fn backend(&self) -> &'static str;

    /// Cheap round trip for readiness.
    async fn ping(&self) -> StoreResult<()>;

    /// Waits for checked-out connections to return and closes the pool (graceful shutdown;
    /// SQLite checkpoints its WAL). Later calls fail as unavailable.
    async fn close(&self);
}

/// Screenings and the artworks they describe.
#[async_trait]
pub trait ScreeningStore: Send + Sync {
    /// In one transaction: the screening, the artwork upsert, and optionally a quarantine item,
    /// a review row and a report outbox row. Idempotent on the screening id and on the report
    /// idempotency key.
    async fn record_screening(&self, write: &ScreeningWrite) -> StoreResult<RecordedScreening>;
    async fn get_screening(&self, id: &str) -> StoreResult<Option<ScreeningRow>>;
    async fn get_artwork(&self, artwork_id: &str) -> StoreResult<Option<ArtworkRow>>;
    /// A moderator's status change, audited. `published` for a taken-down owner is a conflict.
    async fn set_artwork_status(
        &self,
        artwork_id: &str,
        status: ArtworkStatus,
        actor: &str,
    ) -> StoreResult<ArtworkRow>;
    /// The screening the artwork row points at.
    async fn latest_for_artwork(&self, artwork_id: &str) -> StoreResult<Option<ScreeningRow>>;
    /// An owner's screenings from `since` on, oldest first, at most `limit`.
    async fn owner_screenings_since(
        &self,
        owner_id: &str,
        since: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<ScreeningRow>>;
    /// Most recent screening of these bytes made under `versions`.
    async fn cached_verdict(
        &self,
        sha256: &str,
        versions: &VerdictVersions<'_>,
    ) -> StoreResult<Option<ScreeningRow>>;
    /// Every artwork with the hashes of its latest screening, in artwork id order after
    /// `after`: what retroactive matching compares new bank entries against.
    async fn artwork_signals(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<ArtworkSignals>>;
    /// Claims `key` (the bytes a screening is working on) for `holder` until `until`, unless
    /// another holder's claim lasts beyond `now`. True when `holder` now has it.
    async fn claim_in_flight(
        &self,
        key: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Ends `holder`'s claim on `key`; another holder's claim is left alone. Claims run out
    /// by `now` are removed too.
    async fn release_in_flight(
        &self,
        key: &str,
        holder: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
}

/// Hash banks: specs, entries, the banks version and its change log.
#[async_trait]
pub trait BankStore: Send + Sync {
    /// Creates the bank; the same spec again is a no-op (`changed == 0`), a different spec for
    /// an existing name is a conflict.
    async fn create_bank(&self, spec: &BankSpec) -> StoreResult<BankChange>;
    async fn list_banks(&self) -> StoreResult<Vec<BankRow>>;
    /// Deletes the bank and its entries.
    async fn delete_bank(&self, name: &str) -> StoreResult<BankChange>;
    /// Bulk insert in one transaction; entries already present are skipped (`changed` counts
    /// the new ones). Unknown bank is `NotFound`.
    async fn add_entries(&self, bank: &str, entries: &[EntryWrite]) -> StoreResult<BankChange>;
    async fn remove_entry(&self, bank: &str, signal: &str, hash: &str) -> StoreResult<BankChange>;
    async fn set_entry_disabled(
        &self,
        bank: &str,
        signal: &str,
        hash: &str,
        disabled: bool,
    ) -> StoreResult<BankChange>;
    /// Disables or re-enables every line of one entry id in `bank` (an image-built entry's
    /// pdq, md5 and region lines share it) in one banks version. `NotFound` when no
    /// published line has that id; `changed` counts the lines that changed state.
    async fn set_entry_id_disabled(
        &self,
        bank: &str,
        entry_id: &str,
        disabled: bool,
    ) -> StoreResult<BankChange>;
    /// Enabled entries of every bank.
    async fn list_entries(&self) -> StoreResult<Vec<EntryRow>>;
    /// Every entry of one bank, disabled ones included, for the admin API.
    async fn list_bank_entries(&self, bank: &str) -> StoreResult<Vec<EntryRow>>;
    async fn banks_version(&self) -> StoreResult<i64>;
    /// Bulk import: written in transactions of at most [`IMPORT_BATCH`] rows that nothing
    /// else sees, then published with one version bump. On failure nothing becomes visible
    /// and the staged rows are deleted. Entries already present are skipped.
    async fn import_entries(&self, bank: &str, entries: &[EntryWrite]) -> StoreResult<BankChange>;
    /// Entry counters of every bank, without reading entries.
    async fn bank_counts(&self) -> StoreResult<BTreeMap<String, BankCounts>>;
    /// The logged entry changes after `version`, up to the current version.
    async fn bank_changes_since(&self, version: i64) -> StoreResult<BankChangeLog>;
    /// Banks, enabled entries and the version, from one snapshot.
    async fn bank_snapshot(&self) -> StoreResult<BankSnapshot>;
}

/// Account takedowns.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Marks the account taken down and quarantines every artwork of the owner, with an audit
    /// entry, in one transaction. Returns the artworks it changed (empty on a retry).
    async fn takedown_account(&self, owner_id: &str, actor: &str) -> StoreResult<Vec<ArtworkRow>>;
    async fn is_taken_down(&self, owner_id: &str) -> StoreResult<bool>;
}

/// Quarantine items.
#[async_trait]
pub trait QuarantineStore: Send + Sync {
    async fn quarantine_items(&self, sha256: &str) -> StoreResult<Vec<QuarantineRow>>;
    /// Marks the item released and its artwork `released`, with an audit entry.
    async fn release_quarantine(&self, item_id: &str, actor: &str) -> StoreResult<QuarantineRow>;
    /// Unreleased items whose retention ended before `now`, oldest first.
    async fn expired_quarantine(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<QuarantineRow>>;
}

/// The outbox of reports and events the delivery loop sends.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    async fn get_report(&self, id: &str) -> StoreResult<Option<ReportRow>>;
    /// Pending reports whose next attempt is due at `now`, oldest due first.
    async fn due_reports(&self, now: DateTime<Utc>, limit: i64) -> StoreResult<Vec<ReportRow>>;
    /// Takes report `id` for one delivery attempt: when it is pending and due at `now`,
    /// its next attempt moves to `until` and the answer is true. Meanwhile no other
    /// replica takes it, and if the one holding it dies it falls due again at `until`.
    /// False when it is not due any more: another replica took it first, or it was
    /// delivered or given up.
    async fn lease_report(
        &self,
        id: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Idempotent; unknown id is `NotFound`.
    async fn mark_report_delivered(&self, id: &str) -> StoreResult<()>;
    /// Counts a failed attempt. `next_attempt_at: None` gives up (state `failed`).
    /// A report already delivered stays delivered.
    async fn mark_report_failed_attempt(
        &self,
        id: &str,
        error: &str,
        next_attempt_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()>;
}

/// The audit log.
#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append_audit(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &serde_json::Value,
    ) -> StoreResult<String>;
    /// Most recent first.
    async fn recent_audit(&self, limit: i64) -> StoreResult<Vec<AuditRow>>;
}

/// API tokens.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores a token by the sha256 hex of its secret. Re-putting updates name and role but
    /// never un-revokes.
    async fn put_token(&self, token_hash: &str, name: &str, role: TokenRole) -> StoreResult<()>;
    async fn revoke_token(&self, token_hash: &str) -> StoreResult<bool>;
    /// Role of a non-revoked token.
    async fn token_role(&self, token_hash: &str) -> StoreResult<Option<TokenRole>>;
    /// Every non-revoked token: (sha256 hex, role). The service keeps them in memory so an
    /// unauthenticated request costs no store query.
    async fn active_tokens(&self) -> StoreResult<Vec<(String, TokenRole)>>;
}

/// Backfill jobs and their checkpoints.
#[async_trait]
pub trait BackfillStore: Send + Sync {
    /// Registers a backfill job (a rerun keeps the first `created_at` and updates `total`).
    async fn register_backfill_job(
        &self,
        job_id: &str,
        manifest: &str,
        total: i64,
    ) -> StoreResult<()>;
    /// Checkpoints one item. A `done` item stays done: a late failure report of an item
    /// another worker finished (at-least-once delivery) changes nothing.
    async fn record_backfill_item(&self, write: &BackfillItemWrite) -> StoreResult<()>;
    /// The artwork ids of a job's `done` items, to skip on a rerun.
    async fn backfill_done(&self, job_id: &str) -> StoreResult<HashSet<String>>;
    async fn backfill_counts(&self, job_id: &str) -> StoreResult<BackfillCounts>;
    /// A job's items in artwork id order, after `after` (keyset pagination).
    async fn backfill_items(
        &self,
        job_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<BackfillItemRow>>;
}

/// How one backfill item ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum BackfillOutcome {
    Done {
        screening_id: String,
        verdict: Verdict,
    },
    Failed {
        kind: String,
        error: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillItemWrite {
    pub job_id: String,
    pub artwork_id: String,
    pub outcome: BackfillOutcome,
    /// Which process did it (`local`, or a worker's name).
    pub worker: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct BackfillItemRow {
    pub job_id: String,
    pub artwork_id: String,
    /// `done` or `failed`.
    pub state: String,
    pub screening_id: Option<String>,
    pub verdict: Option<Verdict>,
    pub error_kind: Option<String>,
    pub error: Option<String>,
    pub attempts: i64,
    pub worker: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// Progress of a backfill job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BackfillCounts {
    /// Items in the manifest, when the job is registered.
    pub total: Option<i64>,
    pub done: i64,
    pub failed: i64,
    pub verdicts: BTreeMap<String, i64>,
    pub errors: BTreeMap<String, i64>,
}

/// An artwork and the hashes of its latest screening.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ArtworkSignals {
    pub artwork_id: String,
    pub owner_id: Option<String>,
    pub status: ArtworkStatus,
    pub screening_id: String,
    pub sha256: String,
    pub md5: String,
    pub pdq: Option<String>,
    pub pdq_quality: Option<i64>,
    /// The PDQ of every view of the latest screening beyond its reference decoding.
    #[sqlx(try_from = "JsonText<Vec<ViewPdq>>")]
    pub view_pdq: Vec<ViewPdq>,
}

/// Opens the store named by `url` and runs its migrations.
///
/// `postgres://…` / `postgresql://…` selects Postgres; `sqlite:…` or a plain file path selects
/// SQLite (file and parent directory created, WAL, foreign keys on, busy timeout).
pub async fn open(url: &str) -> StoreResult<Arc<dyn Store>> {
    let url = url.trim();
    if url.is_empty() {
        return Err(StoreError::Invalid("empty store URL".into()));
    }
    if is_shared_url(url) {
        Ok(Arc::new(postgres::PgStore::connect(url).await?))
    } else if url.contains("://") && !url.starts_with("sqlite://") {
        Err(StoreError::Invalid(format!(
            "unsupported store URL scheme in {:?}",
            url.split("://").next().unwrap_or_default()
        )))
    } else {
        Ok(Arc::new(sqlite::SqliteStore::connect(url).await?))
    }
}

/// Whether the store at `url` is a server that several processes (replicas, backfill
/// workers) share: Postgres. A SQLite file belongs to one machine.
pub fn is_shared_url(url: &str) -> bool {
    let url = url.trim();
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

// --- helpers shared by both backends --------------------------------------------------------

fn require_nonempty(what: &str, value: &str) -> StoreResult<()> {
    if value.trim().is_empty() {
        Err(StoreError::Invalid(format!("{what} must not be empty")))
    } else {
        Ok(())
    }
}

fn normalise_hash(hash: &str) -> String {
    hash.trim().to_ascii_lowercase()
}

fn to_json_text(value: &serde_json::Value) -> String {
    // Serialising a Value cannot fail (its map keys are strings).
    value.to_string()
}

/// Whether a bank of `signal_types` holds entries of `signal`. A bank of `pdq` also holds
/// the region PDQ types (`pdq_top75`, ...): they come with PDQ entries built from images.
pub fn bank_holds(signal_types: &[String], signal: &str) -> bool {
    signal_types
        .iter()
        .any(|s| s == signal || (s == "pdq" && signal.starts_with("pdq_")))
}

fn validate_bank_spec(spec: &BankSpec) -> StoreResult<()> {
    require_nonempty("bank name", &spec.name)?;
    if spec.signal_types.is_empty() || spec.signal_types.iter().any(|s| s.trim().is_empty()) {
        return Err(StoreError::Invalid(
            "a bank needs at least one non-empty signal type".into(),
        ));
    }
    // The policy refuses wider thresholds (unrelated images would match); a stored bank must
    // not be able to bypass that.
    let max = i64::from(crate::screening::policy::MAX_PDQ_THRESHOLD);
    if !(0..=max).contains(&spec.pdq_threshold) {
        return Err(StoreError::Invalid(format!(
            "pdq_threshold {} outside 0..={max}",
            spec.pdq_threshold
        )));
    }
    // Both fields say whether matches flag or exempt; a bank where they disagree would mean
    // different things to different readers.
    if spec.allow_list != (spec.action == BankAction::Allow) {
        return Err(StoreError::Invalid(format!(
            "bank {:?}: allow_list is {} but action is {}; an allow-list bank has action allow \
             and only it does",
            spec.name, spec.allow_list, spec.action
        )));
    }
    if let Some(category) = &spec.category {
        let valid = !category.is_empty()
            && category.len() <= 32
            && category
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !valid {
            return Err(StoreError::Invalid(format!(
                "bank {:?}: category {category:?} must be 1-32 lower-case letters, digits, _ or -",
                spec.name
            )));
        }
    }
    Ok(())
}
