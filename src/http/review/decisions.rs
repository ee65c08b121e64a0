//! Decisions on an item, with the bank entries, releases and reports they cause.

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

use crate::http::auth::ConsoleSession;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::{AppState, Ready};
use crate::review::{self, DecisionRequest, ReviewError};
use crate::store::{
    BankAction, BankSpec, DecisionRefused, DecisionWrite, ReviewDecision, ReviewRow, StoreError,
};

use super::queue::claim_lease;
use super::{store_error_for, visible_item};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DecisionOutcome {
    #[schema(value_type = String)]
    decision: ReviewDecision,
    bank_entries_added: u64,
    /// Every outbox row the decision wrote (of `outbox`), in order.
    report_ids: Vec<String>,
    /// The outbox rows with their kind: `hit` and `cybertipline` are reports filed,
    /// `decision` is the event telling the webhooks to publish or keep the art removed.
    outbox: Vec<OutboxEntry>,
    released: bool,
    /// The bank that received the image's hashes.
    bank: Option<String>,
    /// True when the same decision had been recorded already (a retry).
    retried: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OutboxEntry {
    id: String,
    kind: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DecisionView {
    item: ReviewRow,
    outcome: DecisionOutcome,
}

/// Decide an item. **confirm** keeps it quarantined, reports it and adds its PDQ (of the view
/// that decided) and MD5 to the chosen known-bad bank; **release** lifts the quarantine, tells
/// the caller's webhook to publish and adds its hashes (the PDQ of every view) to the
/// allow-list bank; **escalate** hands it to admins.
///
/// A decision applies to the screening that was reviewed: once the artwork has been screened
/// again it answers 409 `superseded` (the item's `superseded_by` names the current one), and a
/// release of a taken-down owner's art answers 409 `owner_taken_down`.
#[utoipa::path(post, path = "/v1/review/items/{id}/decision", tag = "review",
    request_body = DecisionRequest,
    responses((status = 200, body = DecisionView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`superseded`: the artwork was screened again since; `owner_taken_down`: a release while the owner is taken down; `conflict`: decided otherwise, or claimed by someone else"),
        (status = 422, body = ErrorBody)))]
pub async fn decide(
    State(state): State<AppState>,
    ConsoleSession { ready, reviewer }: ConsoleSession,
    UrlPath(id): UrlPath<String>,
    Json(request): Json<DecisionRequest>,
) -> Result<Json<DecisionView>, ApiError> {
    let (review, screening) = visible_item(&ready, &reviewer, &id).await?;
    let request = request.validate(screening.facts.has_image())?;

    let mut reports = Vec::new();
    let decision_bank = match request.decision {
        // Words screened alone: nothing to bank or to report; the decision event tells
        // the platform.
        _ if !screening.facts.has_image() => None,
        ReviewDecision::Confirm => {
            let name = request.bank.as_deref().unwrap_or_default();
            let bank = find_bank(&ready, name).await?;
            if bank.spec.allow_list || bank.spec.action == BankAction::Allow {
                return Err(ReviewError::NotKnownBad(name.to_string()).into());
            }
            reports.extend(ready.pipeline.confirmation_reports(&screening, name)?);
            Some(bank)
        }
        ReviewDecision::Release => Some(allow_list_bank(&state, &ready).await?),
        ReviewDecision::Escalate => None,
    };
    let bank_entries = match decision_bank {
        Some(bank) => {
            let min_quality = ready.pipeline.policy.pdq_min_quality;
            let entries =
                review::bank_entries(&screening, &bank, &review, request.decision, min_quality)?;
            Some((bank.spec.name.clone(), entries))
        }
        None => None,
    };
    let bank_name = bank_entries.as_ref().map(|(name, _)| name.clone());
    reports.extend(review::decision_event(
        &review,
        &screening,
        &reviewer.username,
        &request,
        bank_name.as_deref(),
    ));
    let kinds: Vec<String> = reports.iter().map(|r| r.kind.clone()).collect();
    let applied = ready
        .store
        .apply_decision(&DecisionWrite {
            review_id: review.id.clone(),
            reviewer: reviewer.username.clone(),
            reviewer_role: reviewer.role,
            decision: request.decision,
            reason_code: request.reason_code.clone(),
            note: request.note.clone(),
            bank_entries,
            reports,
            claim_lease: claim_lease(&state),
        })
        .await
        .map_err(store_error_for(&reviewer))?
        .map_err(|refused| {
            let kind = match refused {
                DecisionRefused::Superseded { .. } => "superseded",
                DecisionRefused::OwnerTakenDown { .. } => "owner_taken_down",
            };
            ApiError::new(StatusCode::CONFLICT, kind, refused.to_string())
        })?;
    if applied.bank_entries_added > 0 {
        // The next screening sees the new entries (and the verdict cache misses: its key
        // carries the banks version).
        ready.pipeline.banks.refresh(ready.store.as_ref()).await?;
    }
    if !applied.report_ids.is_empty() {
        ready.pipeline.reported.notify_one();
    }
    // The store answers one id per outbox row written, in the order they were given.
    let outbox = applied
        .report_ids
        .iter()
        .zip(&kinds)
        .map(|(id, kind)| OutboxEntry {
            id: id.clone(),
            kind: kind.clone(),
        })
        .collect();
    Ok(Json(DecisionView {
        item: applied.review,
        outcome: DecisionOutcome {
            decision: request.decision,
            bank_entries_added: applied.bank_entries_added,
            report_ids: applied.report_ids,
            outbox,
            released: applied.released_items > 0,
            bank: bank_name,
            retried: applied.retried,
        },
    }))
}

/// A bank a decision names; a missing one is the request's fault (422), not a missing page.
async fn find_bank(ready: &Ready, name: &str) -> Result<crate::store::BankRow, ApiError> {
    crate::http::banks::find_bank(ready, name)
        .await
        .map_err(|e| {
            if e.status == StatusCode::NOT_FOUND {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid",
                    format!("no bank {name:?}"),
                )
            } else {
                e
            }
        })
}

/// The configured allow-list bank, created on first use.
pub(super) async fn allow_list_bank(
    state: &AppState,
    ready: &Ready,
) -> Result<crate::store::BankRow, ApiError> {
    let config = &state.config().review;
    let existing = ready
        .store
        .list_banks()
        .await?
        .into_iter()
        .find(|b| b.spec.name == config.allow_list_bank);
    if let Some(bank) = existing {
        if !bank.spec.allow_list {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!(
                    "review.allow_list_bank {:?} exists but is not an allow list",
                    config.allow_list_bank
                ),
            ));
        }
        return Ok(bank);
    }
    let spec = BankSpec {
        name: config.allow_list_bank.clone(),
        signal_types: vec!["pdq".into(), "md5".into(), "sha256".into()],
        pdq_threshold: config.allow_list_pdq_threshold,
        action: BankAction::Allow,
        allow_list: true,
        severity: 0,
        category: Some("released".into()),
    };
    match ready.store.create_bank(&spec).await {
        // Created here, or by a concurrent release a moment ago.
        Ok(_) | Err(StoreError::Conflict(_)) => {}
        Err(e) => return Err(e.into()),
    }
    find_bank(ready, &config.allow_list_bank).await
}
