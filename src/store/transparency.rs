//! What transparency counts are made of, read from the rows of a period in one snapshot.
//! [`TransparencyStore`] is a supertrait of [`Store`](super::Store); both backends
//! implement it in `sql/transparency.rs`. The counting is done by the caller
//! (`review::transparency`), so both backends count alike.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreResult;

/// The rows of `[from, to)` that transparency counts are made of.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TransparencyRows {
    /// Screenings by verdict.
    pub verdicts: BTreeMap<String, u64>,
    /// The record and context of each `block` screening.
    pub blocks: Vec<(serde_json::Value, serde_json::Value)>,
    /// Review items queued.
    pub queued: u64,
    /// Each decision made: (decision, reason code, seconds from queued to decided).
    pub decisions: Vec<(String, Option<String>, i64)>,
    /// Each user report made: (report id, category, the decision on each item it is
    /// counted on; `None` while undecided).
    pub user_reports: Vec<(String, String, Option<String>)>,
    /// Each appeal filed: (state, outcome).
    pub appeals: Vec<(String, Option<String>)>,
    /// Outbox rows written, by (kind, state).
    pub outbox: BTreeMap<(String, String), u64>,
}

#[async_trait]
pub trait TransparencyStore: Send + Sync {
    async fn transparency_rows(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<TransparencyRows>;
}
