//! Reports from the platform's report flow: who reported what and why, and the review item
//! each covered artwork joined. [`UserReportStore`] is a supertrait of
//! [`Store`](super::Store); both backends implement it in `sql/user_reports.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ReviewRow, ReviewWrite, StoreError, StoreResult};

text_enum!(
    /// Who made a report, as the platform's report flow knows them.
    ReporterKind ("reporter kind") {
        User => "user",
        Guardian => "guardian",
        TrustedFlagger => "trusted_flagger",
        LawEnforcement => "law_enforcement",
    }
);

impl ReporterKind {
    /// A reporter whose word about a minor is acted on ahead of anything a model found: a
    /// parent or guardian, a trusted flagger, the police.
    pub fn is_vouched(self) -> bool {
        self != ReporterKind::User
    }
}

text_enum!(
    /// What a report says is wrong.
    ReportCategory ("report category") {
        MinorSexual => "minor_sexual",
        AdultNudity => "adult_nudity",
        Grooming => "grooming",
        Other => "other",
    }
);

impl ReportCategory {
    /// Whether the report says a minor is involved: the artwork is then decided again under
    /// the strict profile.
    pub fn concerns_minor(self) -> bool {
        matches!(self, ReportCategory::MinorSexual | ReportCategory::Grooming)
    }

    /// In words, for reasons and the console.
    pub fn describe(self) -> &'static str {
        match self {
            ReportCategory::MinorSexual => "sexual content involving a minor",
            ReportCategory::AdultNudity => "adult nudity",
            ReportCategory::Grooming => "grooming or a contact request",
            ReportCategory::Other => "other",
        }
    }
}

text_enum!(
    /// What a report is about: one artwork, or every stored artwork of an owner.
    ReportSubject ("report subject") {
        Artwork => "artwork",
        Owner => "owner",
    }
);

/// A report as the platform sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserReportWrite {
    pub reporter_kind: ReporterKind,
    /// The platform's reference for the reporter; one report per reporter and subject.
    pub reporter_ref: String,
    pub category: ReportCategory,
    pub subject: ReportSubject,
    pub subject_id: String,
    pub text: Option<String>,
}

/// A stored report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct UserReportRow {
    pub id: String,
    #[schema(value_type = String)]
    pub reporter_kind: ReporterKind,
    pub reporter_ref: String,
    #[schema(value_type = String)]
    pub category: ReportCategory,
    #[schema(value_type = String)]
    #[sqlx(rename = "subject_kind")]
    pub subject: ReportSubject,
    pub subject_id: String,
    pub text: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What [`UserReportStore::attach_user_report`] did to the artwork's review item.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportAttached {
    pub review: ReviewRow,
    /// False when the report was already counted on this item.
    pub linked: bool,
    /// True when the item was made for the report (the screening had none).
    pub created: bool,
}

/// Why a report could not join a screening's review item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachRefused {
    /// The screening's item is decided; a report needs a new screening to be reviewed again.
    #[error("review item {review_id} of screening {screening_id} is already decided")]
    Decided {
        review_id: String,
        screening_id: String,
    },
    /// The screening is no longer the artwork's latest.
    #[error("screening {screening_id} is no longer the latest of artwork {artwork_id}")]
    Superseded {
        screening_id: String,
        artwork_id: String,
    },
}

/// Reports and the items they are counted on.
#[async_trait]
pub trait UserReportStore: Send + Sync {
    /// Stores the report, or finds the one this reporter already made about this subject
    /// (then `false`, and the stored report is answered unchanged).
    async fn put_user_report(&self, write: &UserReportWrite) -> StoreResult<(UserReportRow, bool)>;
    /// Counts report `report_id` on the review item of screening `screening_id` of
    /// `artwork_id`, making the item from `review` when the screening has none, and raises
    /// the item's priority by `priority` less what reports already added to it. In one
    /// transaction; refused, changing nothing, when the item is decided or the screening is
    /// no longer the artwork's latest.
    async fn attach_user_report(
        &self,
        report_id: &str,
        artwork_id: &str,
        screening_id: &str,
        review: &ReviewWrite,
        priority: i64,
    ) -> StoreResult<Result<ReportAttached, AttachRefused>>;
    /// The items report `report_id` is already counted on: (artwork id, review item id).
    async fn user_report_items(&self, report_id: &str) -> StoreResult<Vec<(String, String)>>;
    /// The reports counted on a review item, oldest first.
    async fn review_user_reports(&self, review_id: &str) -> StoreResult<Vec<UserReportRow>>;
    /// How many reports are counted on each of `review_ids` (items without any are left out).
    async fn user_report_counts(
        &self,
        review_ids: &[String],
    ) -> StoreResult<std::collections::HashMap<String, i64>>;
}

/// Longest free text kept with a report.
pub const MAX_REPORT_TEXT: usize = 4000;
/// Longest reporter reference or subject id.
pub const MAX_REPORT_REF: usize = 256;

impl UserReportWrite {
    pub fn validate(&self) -> StoreResult<()> {
        for (what, value) in [
            ("reporter_ref", &self.reporter_ref),
            ("subject id", &self.subject_id),
        ] {
            if value.trim().is_empty() || value.len() > MAX_REPORT_REF {
                return Err(StoreError::Invalid(format!(
                    "{what} must be 1 to {MAX_REPORT_REF} bytes and not blank"
                )));
            }
        }
        if self
            .text
            .as_ref()
            .is_some_and(|t| t.chars().count() > MAX_REPORT_TEXT)
        {
            return Err(StoreError::Invalid(format!(
                "a report's text is at most {MAX_REPORT_TEXT} characters"
            )));
        }
        Ok(())
    }
}
