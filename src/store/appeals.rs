//! Appeals: an owner contesting an automatic block, a reviewer's confirm or an account
//! takedown, and the decision on it. [`AppealStore`] is a supertrait of
//! [`Store`](super::Store); both backends implement it in `sql/appeals.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ConsoleRole, EntryWrite, ReportWrite, ReviewLevel, StoreResult};

text_enum!(
    /// What an appeal contests.
    AppealKind ("appeal kind") {
        AutomatedBlock => "automated_block",
        ReviewConfirm => "review_confirm",
        Takedown => "takedown",
    }
);

text_enum!(
    /// Whether the appealed decision stands.
    AppealOutcome ("appeal outcome") {
        Upheld => "upheld",
        Reversed => "reversed",
    }
);

text_enum!(
    AppealState ("appeal state") {
        Pending => "pending",
        Decided => "decided",
    }
);

/// The decision an appeal is against, the appellant's words and who may decide it.
// What filing an appeal writes and its stored row reads back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct AppealFiling {
    #[schema(value_type = String)]
    pub kind: AppealKind,
    pub owner_id: String,
    pub artwork_id: Option<String>,
    pub screening_id: Option<String>,
    pub review_id: Option<String>,
    /// Who made the appealed decision; `None` when it was automatic.
    pub original_actor: Option<String>,
    pub decided_originally_at: DateTime<Utc>,
    pub text: Option<String>,
    #[schema(value_type = String)]
    pub level: ReviewLevel,
}

/// An appeal as filed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppealWrite {
    /// The decision appealed, once: `screening:<id>`, `review:<id>` or
    /// `takedown:<owner>:<when>`.
    pub decision_ref: String,
    pub filing: AppealFiling,
}

/// A stored appeal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct AppealRow {
    pub id: String,
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub filing: AppealFiling,
    #[schema(value_type = String)]
    pub state: AppealState,
    #[schema(value_type = Option<String>)]
    pub outcome: Option<AppealOutcome>,
    pub reason_code: Option<String>,
    pub note: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl AppealRow {
    /// Reviewers never learn that an admin-level appeal exists.
    pub fn visible_to(&self, role: ConsoleRole) -> bool {
        role == ConsoleRole::Admin || self.filing.level == ReviewLevel::Reviewer
    }
}

/// A decision on an appeal and everything it changes, applied in one transaction.
#[derive(Debug, Clone)]
pub struct AppealDecisionWrite {
    pub appeal_id: String,
    pub decider: String,
    pub decider_role: ConsoleRole,
    pub outcome: AppealOutcome,
    pub reason_code: String,
    pub note: Option<String>,
    /// A reversal of an artwork's restriction: entries for the allow-list bank, as a release
    /// adds them.
    pub allow_entries: Option<(String, Vec<EntryWrite>)>,
    /// A reversal: the known-bad entries that made the decision, disabled so they do not
    /// block the art again, as (bank, entry id). An entry id matches an entry's external
    /// id, or its row id when it has none.
    pub disable_entries: Vec<(String, String)>,
    /// The outcome event for the webhooks.
    pub reports: Vec<ReportWrite>,
}

/// What [`AppealStore::decide_appeal`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct AppealDecided {
    pub appeal: AppealRow,
    pub released_items: u64,
    pub bank_entries_added: u64,
    pub entries_disabled: u64,
    pub takedown_lifted: bool,
    pub report_ids: Vec<String>,
    /// The same decision by the same person was recorded already: nothing changed.
    pub retried: bool,
}

/// Why a decision on an appeal was not applied (nothing changed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppealRefused {
    #[error("{decider} made the decision appealed; an appeal is decided by someone else")]
    SameDecider { decider: String },
    #[error(
        "artwork {artwork_id} has been screened again since the decision appealed (screening \
         {current_screening_id}); the appeal is about a decision that no longer applies"
    )]
    Superseded {
        artwork_id: String,
        current_screening_id: String,
    },
    #[error(
        "owner {owner_id} is taken down: their art is released only once an admin lifts the \
         takedown"
    )]
    OwnerTakenDown { owner_id: String },
}

/// Appeals and their decisions.
#[async_trait]
pub trait AppealStore: Send + Sync {
    /// Stores the appeal, or finds the one already filed against the same decision (then
    /// `false`, and the stored appeal is answered unchanged).
    async fn put_appeal(&self, write: &AppealWrite) -> StoreResult<(AppealRow, bool)>;
    async fn get_appeal(&self, id: &str) -> StoreResult<Option<AppealRow>>;
    /// Appeals oldest first (decided: latest decision first); without
    /// `include_admin_level`, none for admins only.
    async fn appeals(
        &self,
        state: AppealState,
        include_admin_level: bool,
        limit: i64,
    ) -> StoreResult<Vec<AppealRow>>;
    /// When the owner's account was taken down, and by whom; `None` when it is not.
    async fn takedown_of(&self, owner_id: &str) -> StoreResult<Option<(DateTime<Utc>, String)>>;
    /// Applies the decision, or refuses it changing nothing. NotFound for an appeal the
    /// decider's role may not see; Conflict when it was decided otherwise.
    async fn decide_appeal(
        &self,
        write: &AppealDecisionWrite,
    ) -> StoreResult<Result<AppealDecided, AppealRefused>>;
}
