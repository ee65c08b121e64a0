//! The reviewer console's part of the store: console users and their sessions, the filtered
//! queue, claims, decisions (applied with their bank entries, reports and quarantine release in
//! one transaction), item history and dashboard figures.
//!
//! [`ConsoleUserStore`] and [`ReviewStore`] are supertraits of [`Store`](super::Store), so an
//! `Arc<dyn Store>` answers them; both backends implement them from `sql/console_users.rs` and
//! `sql/review.rs`.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{AuditRow, EntryWrite, ReportWrite, ReviewRow, StoreError, StoreResult};
use crate::screening::policy::Verdict;

text_enum!(
    /// Who may log in to the console. Admins also see escalated items and the audit log.
    ConsoleRole ("console role") {
        Reviewer => "reviewer",
        Admin => "admin",
    }
);

text_enum!(
    /// Which role may work a queue item: `admin` once a reviewer escalated it.
    ReviewLevel ("review level") {
        Reviewer => "reviewer",
        Admin => "admin",
    }
);

text_enum!(
    /// A reviewer's decision on a queue item.
    ReviewDecision ("review decision") {
        Confirm => "confirm",
        Release => "release",
        Escalate => "escalate",
    }
);

impl ReviewRow {
    /// Reviewers never learn that an escalated (admin-level) item exists.
    pub fn visible_to(&self, role: ConsoleRole) -> bool {
        role == ConsoleRole::Admin || self.level == ReviewLevel::Reviewer
    }
}

/// Per-reviewer display settings for quarantined images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConsoleSettings {
    /// Blur radius of the safe view in pixels at 512 px; never below [`MIN_BLUR`](Self::MIN_BLUR),
    /// so the default view is always blurred.
    pub blur: u8,
    /// The safe (blurred) view in grayscale.
    pub grayscale: bool,
    /// Revealed images in grayscale too. Off by default: a reveal is for judging the picture,
    /// and some false positives can only be told apart by their colour.
    #[serde(default)]
    pub grayscale_reveal: bool,
}

impl ConsoleSettings {
    pub const MIN_BLUR: u8 = 2;
    pub const MAX_BLUR: u8 = 40;

    pub fn validate(&self) -> StoreResult<()> {
        if !(Self::MIN_BLUR..=Self::MAX_BLUR).contains(&self.blur) {
            return Err(StoreError::Invalid(format!(
                "blur must be between {} and {}, not {}",
                Self::MIN_BLUR,
                Self::MAX_BLUR,
                self.blur
            )));
        }
        Ok(())
    }
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            blur: 12,
            grayscale: true,
            grayscale_reveal: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ConsoleUserRow {
    pub username: String,
    pub role: ConsoleRole,
    #[sqlx(try_from = "super::columns::JsonText<ConsoleSettings>")]
    pub settings: ConsoleSettings,
    pub disabled: bool,
    /// Argon2id PHC string; never serialised.
    #[serde(skip)]
    pub password_hash: String,
}

#[derive(Debug, Clone)]
pub struct SessionWrite {
    /// sha256 hex of the cookie secret (the secret itself is never stored).
    pub token_hash: String,
    pub username: String,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

/// A live session and the user it belongs to.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub user: ConsoleUserRow,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

/// A console login name's recent attempts, as the login throttle counts them; the default
/// is a name with none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, sqlx::FromRow)]
pub struct LoginCount {
    #[sqlx(try_from = "super::columns::Count")]
    pub failures: u32,
    /// Attempts admitted and not yet settled.
    #[sqlx(try_from = "super::columns::Count")]
    pub in_flight: u32,
    /// When the attempts in flight stop counting, should their replica never settle them.
    pub in_flight_until: Option<DateTime<Utc>>,
    /// The last admission or failure.
    pub last_at: Option<DateTime<Utc>>,
    pub locked_until: Option<DateTime<Utc>>,
}

impl LoginCount {
    /// Nothing to remember: the name is as good as never seen.
    pub fn is_empty(&self) -> bool {
        self.failures == 0 && self.in_flight == 0
    }
}

/// Which items a queue listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueueState {
    /// Pending or claimed, at the caller's level.
    #[default]
    Open,
    Pending,
    Claimed,
    Decided,
    /// Open items escalated to admins.
    Escalated,
}

#[derive(Debug, Clone, Default)]
pub struct ReviewFilter {
    pub state: QueueState,
    pub verdict: Option<Verdict>,
    pub label: Option<String>,
    pub bank: Option<String>,
    pub owner: Option<String>,
    /// Created at or after.
    pub from: Option<DateTime<Utc>>,
    /// Created before.
    pub to: Option<DateTime<Utc>>,
    /// Whether escalated (admin level) items are listed at all.
    pub include_admin_level: bool,
    /// Only items with at least one user report counted on them.
    pub reported: bool,
    /// Keyset paging: the items after this one (the last of the previous page) in the
    /// listing's order. Invalid when there is no such item.
    pub after: Option<String>,
    pub limit: i64,
}

/// A decision and everything it changes, applied in one transaction.
#[derive(Debug, Clone)]
pub struct DecisionWrite {
    pub review_id: String,
    pub reviewer: String,
    pub reviewer_role: ConsoleRole,
    pub decision: ReviewDecision,
    pub reason_code: String,
    pub note: Option<String>,
    /// Entries to add (confirm: to the chosen known-bad bank; release: to the allow-list bank).
    pub bank_entries: Option<(String, Vec<EntryWrite>)>,
    /// Outbox rows (confirm: the confirmation report; release: the publish event).
    pub reports: Vec<ReportWrite>,
    /// A claim older than this no longer blocks other reviewers.
    pub claim_lease: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionApplied {
    pub review: ReviewRow,
    pub bank_entries_added: u64,
    pub banks_version: i64,
    pub report_ids: Vec<String>,
    /// Quarantine items lifted by a release.
    pub released_items: u64,
    /// True when this was a retry of the decision already stored: nothing changed.
    pub retried: bool,
}

/// Why a decision was not applied although the item is open: the state it would act on has
/// moved since the item was queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionRefused {
    /// The artwork was screened again: the decision would act on bytes nobody reviewed.
    #[error(
        "review item {review_id} is about screening {screening_id}, but artwork {artwork_id} has \
         been screened again since (screening {current_screening_id}); decide its current item"
    )]
    Superseded {
        review_id: String,
        screening_id: String,
        artwork_id: String,
        current_screening_id: String,
        /// The current screening's queue item, if it has one.
        current_review_id: Option<String>,
    },
    /// A release would publish art of an owner an admin took down.
    #[error(
        "owner {owner_id} is taken down: only an admin lifts a takedown \
         (DELETE /v1/accounts/{{owner_id}}/takedown); until then nothing of theirs is released"
    )]
    OwnerTakenDown { owner_id: String },
}

/// A console user as admins list them: no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct ConsoleUserSummary {
    pub username: String,
    #[schema(value_type = String)]
    pub role: ConsoleRole,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct OwnerArtwork {
    pub artwork_id: String,
    #[schema(value_type = String)]
    pub status: super::ArtworkStatus,
    #[schema(value_type = Option<String>)]
    pub verdict: Option<Verdict>,
    #[sqlx(rename = "latest_screening_id")]
    pub screening_id: Option<String>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    /// Only rows about these subjects (empty: any).
    pub subjects: Vec<String>,
    /// Keyset paging: rows with an id after (oldest first) or before (newest first) this one.
    pub cursor: Option<String>,
    pub oldest_first: bool,
    pub limit: i64,
}

/// Counts the dashboard draws. Score histograms are built by the caller from
/// [`ReviewStore::recent_records`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReviewCounts {
    /// (day `YYYY-MM-DD`, verdict, screenings).
    pub verdicts_per_day: Vec<(String, String, i64)>,
    /// Open items per age bucket, in the order of the cut-offs asked for (and one more: older).
    pub queue_age: Vec<i64>,
    /// (reviewer, decision, count); escalations are counted from the audit log.
    pub decisions: Vec<(String, String, i64)>,
}

/// A valid console user name: 1–64 of `a-z 0-9 . _ -` (case-folded: one person, one name).
pub fn valid_username(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// What [`ConsoleUserStore::put_console_user`] does with a name that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExistingUser {
    Replace,
    /// Conflict: a new password for them is
    /// [`reset_console_password`](ConsoleUserStore::reset_console_password).
    Refuse,
}

/// Console users and their sessions.
#[async_trait]
pub trait ConsoleUserStore: Send + Sync {
    /// Creates the user with default settings. A name that exists is replaced (password and
    /// role, enabled again, every session ended) or refused with Conflict, as `existing` says.
    async fn put_console_user(
        &self,
        username: &str,
        password_hash: &str,
        role: ConsoleRole,
        actor: &str,
        existing: ExistingUser,
    ) -> StoreResult<()>;
    /// Sets a new password, enables the user and ends every session of theirs. Not found for
    /// an unknown user.
    async fn reset_console_password(
        &self,
        username: &str,
        password_hash: &str,
        actor: &str,
    ) -> StoreResult<()>;
    /// Every console user, by name.
    async fn console_users(&self) -> StoreResult<Vec<ConsoleUserSummary>>;
    async fn console_user(&self, username: &str) -> StoreResult<Option<ConsoleUserRow>>;
    /// Disables the user and ends their sessions (offboarding); `put_console_user` enables
    /// them again. Not found for an unknown user.
    async fn disable_console_user(&self, username: &str, actor: &str) -> StoreResult<()>;
    async fn set_console_settings(
        &self,
        username: &str,
        settings: &ConsoleSettings,
    ) -> StoreResult<ConsoleUserRow>;
    /// Also removes expired sessions.
    async fn create_session(&self, session: &SessionWrite) -> StoreResult<()>;
    /// The session if it exists, has not expired at `now` and its user is enabled.
    async fn session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<SessionRow>>;
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()>;
    /// The login count of `name` as last stored, read without a lock.
    async fn login_count(&self, name: &str) -> StoreResult<LoginCount>;
    /// Reads the login count of `name`, lets `update` change it and stores the result, in one
    /// transaction that every other update of that name, from any replica, waits for. An
    /// empty result removes the name. Names last seen before `forget_before` are removed too.
    async fn update_login_count(
        &self,
        name: &str,
        forget_before: DateTime<Utc>,
        update: &mut (dyn FnMut(LoginCount) -> LoginCount + Send),
    ) -> StoreResult<LoginCount>;
}

/// The review queue: items, claims, decisions, and the context and figures the console shows.
#[async_trait]
pub trait ReviewStore: Send + Sync {
    /// Highest priority first, then oldest (decided: latest decision first). Open listings
    /// show one item per artwork: its latest open item the caller may see, since an earlier
    /// one can no longer be decided.
    async fn review_queue(&self, filter: &ReviewFilter) -> StoreResult<Vec<ReviewRow>>;
    /// Every queue item of an artwork, newest first; without `include_admin_level`, none
    /// escalated to admins.
    async fn artwork_reviews(
        &self,
        artwork_id: &str,
        include_admin_level: bool,
        limit: i64,
    ) -> StoreResult<Vec<ReviewRow>>;
    async fn get_review(&self, id: &str) -> StoreResult<Option<ReviewRow>>;
    /// Claims one item for `reviewer`. Conflict when someone else holds a claim made after
    /// `lease_cutoff`, or the item is decided; Forbidden for an admin-level item and a reviewer.
    async fn claim_review_item(
        &self,
        id: &str,
        reviewer: &str,
        role: ConsoleRole,
        lease_cutoff: DateTime<Utc>,
    ) -> StoreResult<ReviewRow>;
    /// Gives a claim back (own claims only, or any as admin).
    async fn unclaim_review_item(
        &self,
        id: &str,
        reviewer: &str,
        role: ConsoleRole,
    ) -> StoreResult<ReviewRow>;
    /// Applies the decision, or refuses it (changing nothing) when its screening is no longer
    /// the artwork's latest, or when a release meets an owner who is taken down.
    async fn apply_decision(
        &self,
        write: &DecisionWrite,
    ) -> StoreResult<Result<DecisionApplied, DecisionRefused>>;
    /// The queue item of a screening, if it was queued.
    async fn review_for_screening(&self, screening_id: &str) -> StoreResult<Option<ReviewRow>>;
    /// Lifts an account takedown: the owner's next uploads are screened as anyone's. Their
    /// quarantined artworks stay quarantined until reviewed. False when the account was not
    /// taken down.
    async fn lift_takedown(&self, owner_id: &str, actor: &str) -> StoreResult<bool>;

    // --- item context and dashboard -------------------------------------------------------

    /// The owner's artworks; without `include_admin_level`, none that has an escalated
    /// (admin-level) queue item, since reviewers must not learn such items exist.
    async fn owner_artworks(
        &self,
        owner_id: &str,
        limit: i64,
        include_admin_level: bool,
    ) -> StoreResult<Vec<OwnerArtwork>>;
    async fn audit_rows(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRow>>;
    /// `queue_age_cutoffs` newest first (e.g. now-1h, now-6h, …).
    async fn review_counts(
        &self,
        since: DateTime<Utc>,
        queue_age_cutoffs: &[DateTime<Utc>],
    ) -> StoreResult<ReviewCounts>;
    /// The records of the latest `limit` screenings (for score distributions).
    async fn recent_records(&self, limit: i64) -> StoreResult<Vec<serde_json::Value>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_are_safe() {
        assert!(valid_username("alice.r-2_x"));
        assert!(!valid_username("Alice"));
        assert!(!valid_username(""));
        assert!(!valid_username("a b"));
        assert!(!valid_username(&"a".repeat(65)));
    }
}
