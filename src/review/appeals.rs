//! Appeals: an owner contests what restricts their art (an automatic block, a reviewer's
//! confirm) or their account (a takedown). [`file()`] finds the decision that restricts now and
//! files one appeal against it, within the appeal window; the appeal is decided by someone
//! other than who made that decision, by an admin when it is about a `csam` bank or a
//! takedown. A reversal goes the way a release goes (quarantine lifted, `released`, the
//! hashes allowed) and also disables the known-bad entries that made the decision, or they
//! would block the art again at the next rescan; a reversed takedown is lifted. Either
//! outcome is told to the webhooks through the outbox.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::act::report::{idempotency_key, is_csam_category, ReportKind};
use crate::matching::index::BankIndex;
use crate::screening::record::ScreeningRecord;
use crate::store::{
    AppealFiling, AppealKind, AppealOutcome, AppealRow, AppealWrite, AuditFilter, ReportWrite,
    ReviewDecision, ReviewLevel, ScreeningRow, Store, StoreError,
};

use super::MAX_NOTE_CHARS;

/// Longest text kept with an appeal.
pub const MAX_APPEAL_TEXT: usize = 4000;

/// Reason codes by outcome. Stable strings: transparency counts group by them.
pub const UPHOLD_REASONS: &[&str] = &["decision_correct", "policy_applied_correctly"];
pub const REVERSE_REASONS: &[&str] = &[
    "false_positive_model",
    "false_positive_hash",
    "not_explicit",
    "context_misread",
    "new_information",
];

pub fn reason_codes(outcome: AppealOutcome) -> &'static [&'static str] {
    match outcome {
        AppealOutcome::Upheld => UPHOLD_REASONS,
        AppealOutcome::Reversed => REVERSE_REASONS,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppealError {
    #[error("no artwork {0:?} has been screened")]
    UnknownArtwork(String),
    #[error("artwork {artwork_id} is not owner {owner_id}'s")]
    NotOwner {
        artwork_id: String,
        owner_id: String,
    },
    #[error("{0}: nothing restricts it, so there is nothing to appeal")]
    NotRestricted(String),
    #[error("artwork {0} is held for review and not decided yet; appeal once it is")]
    UnderReview(String),
    #[error(
        "the decision was made at {decided_at}; appeals are taken for {window_days} days after \
         a decision"
    )]
    WindowClosed {
        decided_at: DateTime<Utc>,
        window_days: u32,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An appeal as the platform sends it: about one artwork, or (without `artwork_id`) about
/// the owner's account takedown.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppealRequest {
    /// The owner appealing: the artwork's owner, or the account taken down.
    pub owner_id: String,
    pub artwork_id: Option<String>,
    /// What the owner wrote; at most 4,000 characters.
    pub text: Option<String>,
}

/// File `request`'s appeal against the decision restricting its subject now, if it was made
/// within `window_days`: the appeal, and whether it is new (an appeal already filed against
/// the same decision is answered instead).
pub async fn file(
    store: &dyn Store,
    banks: &BankIndex,
    request: AppealRequest,
    window_days: u32,
    now: DateTime<Utc>,
) -> Result<(AppealRow, bool), AppealError> {
    let text = request.text.filter(|t| !t.trim().is_empty());
    if text
        .as_ref()
        .is_some_and(|t| t.chars().count() > MAX_APPEAL_TEXT)
    {
        return Err(AppealError::Invalid(format!(
            "an appeal's text is at most {MAX_APPEAL_TEXT} characters"
        )));
    }
    if request.owner_id.trim().is_empty() {
        return Err(AppealError::Invalid("owner_id must not be blank".into()));
    }
    let mut write = match &request.artwork_id {
        Some(artwork_id) => artwork_decision(store, banks, artwork_id, &request.owner_id).await?,
        None => {
            let (at, by) = store.takedown_of(&request.owner_id).await?.ok_or_else(|| {
                AppealError::NotRestricted(format!("account {}", request.owner_id))
            })?;
            AppealWrite {
                decision_ref: format!("takedown:{}:{}", request.owner_id, at.to_rfc3339()),
                filing: AppealFiling {
                    kind: AppealKind::Takedown,
                    owner_id: request.owner_id.clone(),
                    artwork_id: None,
                    screening_id: None,
                    review_id: None,
                    original_actor: Some(by).filter(|b| !b.is_empty()),
                    decided_originally_at: at,
                    text: None,
                    level: ReviewLevel::Admin,
                },
            }
        }
    };
    if now - write.filing.decided_originally_at > chrono::Duration::days(i64::from(window_days)) {
        return Err(AppealError::WindowClosed {
            decided_at: write.filing.decided_originally_at,
            window_days,
        });
    }
    write.filing.text = text;
    Ok(store.put_appeal(&write).await?)
}

/// The decision that restricts `artwork_id` now, as an appeal against it.
async fn artwork_decision(
    store: &dyn Store,
    banks: &BankIndex,
    artwork_id: &str,
    owner_id: &str,
) -> Result<AppealWrite, AppealError> {
    let artwork = store
        .get_artwork(artwork_id)
        .await?
        .ok_or_else(|| AppealError::UnknownArtwork(artwork_id.to_string()))?;
    if artwork.owner_id.as_deref() != Some(owner_id) {
        return Err(AppealError::NotOwner {
            artwork_id: artwork_id.to_string(),
            owner_id: owner_id.to_string(),
        });
    }
    let latest = store
        .latest_for_artwork(artwork_id)
        .await?
        .ok_or_else(|| AppealError::UnknownArtwork(artwork_id.to_string()))?;
    let item = store.review_for_screening(&latest.id).await?;
    let confirmed = item
        .as_ref()
        .filter(|i| i.decision == Some(ReviewDecision::Confirm));
    let released = item
        .as_ref()
        .is_some_and(|i| i.decision == Some(ReviewDecision::Release));
    let automated = AppealFiling {
        kind: AppealKind::AutomatedBlock,
        owner_id: owner_id.to_string(),
        artwork_id: Some(artwork_id.to_string()),
        screening_id: Some(latest.id.clone()),
        review_id: item.as_ref().map(|i| i.id.clone()),
        original_actor: None,
        decided_originally_at: latest.created_at,
        text: None,
        level: level_for(store, banks, &latest, confirmed.map(|c| c.id.as_str())).await?,
    };
    if let Some(confirmed) = confirmed {
        return Ok(AppealWrite {
            decision_ref: format!("review:{}", confirmed.id),
            filing: AppealFiling {
                kind: AppealKind::ReviewConfirm,
                original_actor: confirmed.claimed_by.clone(),
                decided_originally_at: confirmed.decided_at.unwrap_or(confirmed.created_at),
                ..automated
            },
        });
    }
    match latest.facts.verdict {
        crate::screening::policy::Verdict::Block if !released => Ok(AppealWrite {
            decision_ref: format!("screening:{}", latest.id),
            filing: automated,
        }),
        crate::screening::policy::Verdict::Review if !released && item.is_some() => {
            Err(AppealError::UnderReview(artwork_id.to_string()))
        }
        _ => Err(AppealError::NotRestricted(format!("artwork {artwork_id}"))),
    }
}

/// Admins decide appeals about a `csam` bank: one the screening matched, or the bank a
/// reviewer confirmed it into.
async fn level_for(
    store: &dyn Store,
    banks: &BankIndex,
    screening: &ScreeningRow,
    confirmed_review: Option<&str>,
) -> Result<ReviewLevel, StoreError> {
    let csam = |bank: &str| is_csam_category(banks.rules(bank).and_then(|r| r.category.as_deref()));
    let matched = known_bad_matches(screening, banks)
        .iter()
        .any(|(bank, _)| csam(bank));
    let confirmed_into = match confirmed_review {
        Some(review_id) => confirm_bank(store, &screening.id, review_id).await?,
        None => None,
    };
    Ok(if matched || confirmed_into.as_deref().is_some_and(csam) {
        ReviewLevel::Admin
    } else {
        ReviewLevel::Reviewer
    })
}

/// The bank a reviewer's confirm of `review_id` put the image's hashes into, from its
/// audit row.
pub async fn confirm_bank(
    store: &dyn Store,
    screening_id: &str,
    review_id: &str,
) -> Result<Option<String>, StoreError> {
    let rows = store
        .audit_rows(&AuditFilter {
            action: Some("review.confirm".into()),
            subjects: vec![screening_id.to_string()],
            limit: 50,
            ..AuditFilter::default()
        })
        .await?;
    Ok(rows
        .iter()
        .find(|r| r.detail["review_id"] == review_id)
        .and_then(|r| r.detail["bank"].as_str().map(str::to_string)))
}

/// The known-bad entries a screening matched, as (bank, entry id).
pub fn known_bad_matches(screening: &ScreeningRow, banks: &BankIndex) -> Vec<(String, String)> {
    let Ok(record) = serde_json::from_value::<ScreeningRecord>(screening.facts.record.clone())
    else {
        return Vec::new();
    };
    // A view's matches are among the record's, marked with their view.
    let mut found: Vec<(String, String)> = record
        .matches
        .iter()
        .filter(|m| banks.rules(&m.bank).is_some_and(|r| !r.allow_list))
        .map(|m| (m.bank.clone(), m.entry.clone()))
        .collect();
    found.sort();
    found.dedup();
    found
}

/// A decision on an appeal as the API receives it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppealDecisionRequest {
    /// `upheld` or `reversed`.
    #[schema(value_type = String)]
    pub outcome: AppealOutcome,
    pub reason_code: String,
    pub note: Option<String>,
}

impl AppealDecisionRequest {
    pub fn validate(&self) -> Result<(), AppealError> {
        let allowed = reason_codes(self.outcome);
        if !allowed.contains(&self.reason_code.as_str()) {
            return Err(AppealError::Invalid(format!(
                "reason code {:?} is not one of {allowed:?} for {}",
                self.reason_code, self.outcome
            )));
        }
        if self
            .note
            .as_ref()
            .is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS)
        {
            return Err(AppealError::Invalid(format!(
                "a note is at most {MAX_NOTE_CHARS} characters"
            )));
        }
        Ok(())
    }
}

/// The webhook event telling the platform an appeal's outcome and what to do.
#[derive(Debug, Serialize)]
struct AppealEvent<'a> {
    schema: &'static str,
    appeal_id: &'a str,
    kind: AppealKind,
    outcome: AppealOutcome,
    /// `publish` (a reversed restriction of art), `resume_owner` (a reversed takedown),
    /// `keep_removed` or `keep_taken_down` (upheld).
    action: &'static str,
    owner_id: &'a str,
    artwork_id: Option<&'a str>,
    screening_id: Option<&'a str>,
    reason_code: &'a str,
    decided_by: &'a str,
}

/// The outbox row for the outcome of `appeal`; one per appeal, so its id keys it.
pub fn outcome_event(
    appeal: &AppealRow,
    request: &AppealDecisionRequest,
    decided_by: &str,
) -> Result<ReportWrite, StoreError> {
    let takedown = appeal.filing.kind == AppealKind::Takedown;
    let action = match (request.outcome, takedown) {
        (AppealOutcome::Reversed, false) => "publish",
        (AppealOutcome::Reversed, true) => "resume_owner",
        (AppealOutcome::Upheld, false) => "keep_removed",
        (AppealOutcome::Upheld, true) => "keep_taken_down",
    };
    let event = AppealEvent {
        schema: "coverguard.appeal.v1",
        appeal_id: &appeal.id,
        kind: appeal.filing.kind,
        outcome: request.outcome,
        action,
        owner_id: &appeal.filing.owner_id,
        artwork_id: appeal.filing.artwork_id.as_deref(),
        screening_id: appeal.filing.screening_id.as_deref(),
        reason_code: &request.reason_code,
        decided_by,
    };
    Ok(ReportWrite {
        idempotency_key: idempotency_key(ReportKind::Appeal, &appeal.id),
        kind: ReportKind::Appeal.as_str().into(),
        payload: serde_json::to_value(&event).map_err(|e| {
            StoreError::Invalid(format!("the appeal event does not serialise: {e}"))
        })?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::screening::policy::Verdict;
    use crate::store::{ArtworkStatus, ScreeningFacts, ScreeningWrite};

    fn blocked(artwork: &str, owner: &str) -> ScreeningWrite {
        ScreeningWrite {
            id: None,
            facts: ScreeningFacts {
                artwork_id: Some(artwork.into()),
                owner_id: Some(owner.into()),
                sha256: "a".repeat(64),
                md5: "b".repeat(32),
                pdq: None,
                pdq_quality: None,
                verdict: Verdict::Block,
                model: "m".into(),
                policy_version: "p".into(),
                banks_version: 1,
                analysis: "views-1".into(),
                view_pdq: Vec::new(),
                record: serde_json::json!({}),
                context: serde_json::json!({}),
            },
            artwork_status: ArtworkStatus::Quarantined,
            quarantine: None,
            review: None,
            reports: Vec::new(),
            created_at: None,
        }
    }

    #[tokio::test]
    async fn a_decision_is_appealed_within_the_window_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open(dir.path().join("cg.db").to_str().unwrap())
            .await
            .unwrap();
        let written = store
            .record_screening(&blocked("art-1", "owner-1"))
            .await
            .unwrap();
        let at = store
            .get_screening(&written.screening_id)
            .await
            .unwrap()
            .unwrap()
            .created_at;
        let request = || AppealRequest {
            owner_id: "owner-1".into(),
            artwork_id: Some("art-1".into()),
            text: Some("  ".into()),
        };
        let banks = BankIndex::empty();
        let late = file(
            store.as_ref(),
            &banks,
            request(),
            30,
            at + chrono::Duration::days(31),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                late,
                AppealError::WindowClosed {
                    window_days: 30,
                    ..
                }
            ),
            "{late}"
        );
        let (appeal, created) = file(
            store.as_ref(),
            &banks,
            request(),
            30,
            at + chrono::Duration::days(29),
        )
        .await
        .unwrap();
        assert!(created);
        assert_eq!(appeal.filing.kind, AppealKind::AutomatedBlock);
        assert_eq!(appeal.filing.decided_originally_at, at);
        assert_eq!(appeal.filing.text, None, "blank text is no text");
    }
}
