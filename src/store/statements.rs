//! The decisions that restricted art or an account, read back with what a statement of
//! reasons needs: the screening's record (facts, signals), the review decision, the reports
//! people made. The rows they come from are never rewritten, so a decision's statement is
//! the same every time it is read. [`StatementStore`] is a supertrait of
//! [`Store`](super::Store); both backends implement it in `sql/statements.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ReporterKind, ReviewRow, ScreeningRow, StoreResult};

text_enum!(
    /// Which decision restricted: screening's own verdict, a reviewer's, or an admin's.
    RestrictionKind ("restriction kind") {
        AutomatedBlock => "automated_block",
        ReviewHold => "review_hold",
        ReviewConfirm => "review_confirm",
        Takedown => "takedown",
    }
);

/// One restricting decision.
#[derive(Debug, Clone, PartialEq)]
pub struct RestrictingDecision {
    pub kind: RestrictionKind,
    /// Unique per decision and stable: the screening's id (a block or a hold), the review
    /// item's (a confirm), the takedown event's (a takedown).
    pub decision_id: String,
    /// When the restriction applied.
    pub at: DateTime<Utc>,
    pub screening: Option<ScreeningRow>,
    pub review: Option<ReviewRow>,
    pub owner_id: Option<String>,
    /// The reviewer or admin; `None` for screening's own verdicts.
    pub actor: Option<String>,
    /// Who reported the art, for a confirm of a reported item.
    pub reporters: Vec<ReporterKind>,
}

#[async_trait]
pub trait StatementStore: Send + Sync {
    /// Restricting decisions applied in `[from, to)`, oldest first, at most `limit`.
    async fn restricting_decisions(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<RestrictingDecision>>;
}
