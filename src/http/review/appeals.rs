//! Appeals in the console: the open and decided appeals, one appeal with the decision it
//! contests (that screening's reasons, scores and matches, and its review item), and the
//! decision on it.

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::http::auth::ConsoleSession;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::session::Reviewer;
use crate::http::{AppState, Ready};
use crate::review::appeals::{self, AppealDecisionRequest, AppealError};
use crate::store::{
    AppealDecisionWrite, AppealKind, AppealOutcome, AppealRefused, AppealRow, AppealState,
    ArtworkRow, ReviewDecision, ReviewRow,
};

use super::audit;
use super::decisions::allow_list_bank;
use super::item::{ItemRecord, ScreeningDetail};

impl From<AppealError> for ApiError {
    fn from(e: AppealError) -> Self {
        let message = e.to_string();
        match e {
            AppealError::UnknownArtwork(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_artwork", message)
            }
            AppealError::NotOwner { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "not_owner", message)
            }
            AppealError::NotRestricted(_) => {
                ApiError::new(StatusCode::CONFLICT, "not_restricted", message)
            }
            AppealError::UnderReview(_) => {
                ApiError::new(StatusCode::CONFLICT, "under_review", message)
            }
            AppealError::WindowClosed { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "appeal_window_closed",
                message,
            ),
            AppealError::Invalid(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
            }
            AppealError::Store(e) => e.into(),
        }
    }
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AppealsQuery {
    /// `pending` (the default) or `decided`.
    state: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AppealsView {
    appeals: Vec<AppealRow>,
}

/// Appeals the caller may decide: pending ones oldest first, or decided ones latest first.
/// Reviewers do not see appeals for admins (about a `csam` bank or a takedown).
#[utoipa::path(get, path = "/v1/review/appeals", tag = "review", params(AppealsQuery),
    responses((status = 200, body = AppealsView), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn list(
    ConsoleSession { ready, reviewer }: ConsoleSession,
    Query(query): Query<AppealsQuery>,
) -> Result<Json<AppealsView>, ApiError> {
    let appeal_state = match query.state.as_deref().map(str::trim) {
        None | Some("") | Some("pending") => AppealState::Pending,
        Some("decided") => AppealState::Decided,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                format!("state={other:?}: use pending or decided"),
            ))
        }
    };
    let appeals = ready
        .store
        .appeals(appeal_state, reviewer.is_admin(), 200)
        .await?;
    Ok(Json(AppealsView { appeals }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AppealView {
    appeal: AppealRow,
    /// The screening whose decision is appealed: its reasons, scores and matches.
    screening: Option<ScreeningDetail>,
    /// Its review item (a confirm's, or the block's), whose image the console shows.
    review: Option<ReviewRow>,
    #[schema(value_type = Option<Object>)]
    artwork: Option<ArtworkRow>,
    /// Whether the image's bytes are kept and can be shown through the review item.
    evidence: bool,
    /// True when the caller made the decision appealed: they may read it, not decide it.
    own_decision: bool,
    /// Reason codes by outcome.
    reason_codes: std::collections::BTreeMap<String, Vec<String>>,
}

/// The appeal `id`, if the caller may see it.
async fn visible_appeal(
    ready: &Ready,
    reviewer: &Reviewer,
    id: &str,
) -> Result<AppealRow, ApiError> {
    ready
        .store
        .get_appeal(id)
        .await?
        .filter(|a| a.visible_to(reviewer.role))
        .ok_or_else(|| ApiError::not_found(format!("no appeal {id}")))
}

/// One appeal with the decision it contests. Audited as a view.
#[utoipa::path(get, path = "/v1/review/appeals/{id}", tag = "review",
    responses((status = 200, body = AppealView), (status = 404, body = ErrorBody)))]
pub async fn appeal(
    ConsoleSession { ready, reviewer }: ConsoleSession,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<AppealView>, ApiError> {
    let appeal = visible_appeal(&ready, &reviewer, &id).await?;
    let (screening, evidence) = match &appeal.filing.screening_id {
        Some(screening_id) => match ready.store.get_screening(screening_id).await? {
            Some(row) => {
                let evidence = row.facts.has_image()
                    && !ready
                        .store
                        .quarantine_items(&row.facts.sha256)
                        .await?
                        .is_empty();
                (Some(ItemRecord::read(&row)?.detail(row)), evidence)
            }
            None => (None, false),
        },
        None => (None, false),
    };
    let review = match &appeal.filing.review_id {
        Some(review_id) => ready.store.get_review(review_id).await?,
        None => None,
    };
    let artwork = match &appeal.filing.artwork_id {
        Some(artwork_id) => ready.store.get_artwork(artwork_id).await?,
        None => None,
    };
    audit(
        &ready,
        &reviewer,
        "appeal.view",
        &appeal.id,
        serde_json::json!({}),
    )
    .await?;
    let reason_codes = [AppealOutcome::Upheld, AppealOutcome::Reversed]
        .into_iter()
        .map(|o| {
            (
                o.to_string(),
                appeals::reason_codes(o)
                    .iter()
                    .map(|c| c.to_string())
                    .collect(),
            )
        })
        .collect();
    Ok(Json(AppealView {
        own_decision: appeal.filing.original_actor.as_deref() == Some(reviewer.username.as_str()),
        appeal,
        screening,
        review,
        artwork,
        evidence,
        reason_codes,
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AppealDecisionView {
    appeal: AppealRow,
    released_items: u64,
    bank_entries_added: u64,
    entries_disabled: u64,
    takedown_lifted: bool,
    report_ids: Vec<String>,
    retried: bool,
}

/// Decide an appeal: **upheld** keeps the decision and tells the webhooks; **reversed**
/// releases the art as a release does (quarantine lifted, `released`, its hashes on the
/// allow list, a `publish` event), disables the known-bad entries that made the decision,
/// and for a takedown lifts it. Whoever made the appealed decision cannot decide its
/// appeal (409 `same_decider`).
#[utoipa::path(post, path = "/v1/review/appeals/{id}/decision", tag = "review",
    request_body = AppealDecisionRequest,
    responses((status = 200, body = AppealDecisionView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`same_decider`: the caller made the decision appealed; `superseded`: the artwork was screened again; `owner_taken_down`; `conflict`: decided otherwise"),
        (status = 422, body = ErrorBody)))]
pub async fn decide(
    State(state): State<AppState>,
    ConsoleSession { ready, reviewer }: ConsoleSession,
    UrlPath(id): UrlPath<String>,
    Json(request): Json<AppealDecisionRequest>,
) -> Result<Json<AppealDecisionView>, ApiError> {
    request.validate()?;
    let appeal = visible_appeal(&ready, &reviewer, &id).await?;
    let screening = match &appeal.filing.screening_id {
        Some(screening_id) => ready.store.get_screening(screening_id).await?,
        None => None,
    };
    let (mut allow_entries, mut disable_entries) = (None, Vec::new());
    if request.outcome == AppealOutcome::Reversed {
        if let Some(screening) = screening.as_ref().filter(|s| s.facts.has_image()) {
            let bank = allow_list_bank(&state, &ready).await?;
            let entries = crate::review::bank_entries_as(
                screening,
                &bank,
                &format!("appeal:{}", appeal.id),
                ReviewDecision::Release,
                ready.pipeline.policy.pdq_min_quality,
            )?;
            allow_entries = Some((bank.spec.name.clone(), entries));
            let banks = ready.pipeline.banks.current();
            disable_entries = appeals::known_bad_matches(screening, &banks);
            if let (AppealKind::ReviewConfirm, Some(review_id)) =
                (appeal.filing.kind, &appeal.filing.review_id)
            {
                if let Some(bank) =
                    appeals::confirm_bank(ready.store.as_ref(), &screening.id, review_id).await?
                {
                    disable_entries.push((bank, format!("review:{review_id}")));
                }
            }
        }
    }
    let reports = vec![appeals::outcome_event(
        &appeal,
        &request,
        &reviewer.username,
    )?];
    let decided = ready
        .store
        .decide_appeal(&AppealDecisionWrite {
            appeal_id: appeal.id.clone(),
            decider: reviewer.username.clone(),
            decider_role: reviewer.role,
            outcome: request.outcome,
            reason_code: request.reason_code.clone(),
            note: request.note.clone(),
            allow_entries,
            disable_entries,
            reports,
        })
        .await
        .map_err(|e| match e {
            // Same answer whether the appeal is missing or above the caller's level.
            crate::store::StoreError::NotFound(_) => ApiError::not_found(format!("no appeal {id}")),
            e => e.into(),
        })?
        .map_err(|refused| {
            let kind = match refused {
                AppealRefused::SameDecider { .. } => "same_decider",
                AppealRefused::Superseded { .. } => "superseded",
                AppealRefused::OwnerTakenDown { .. } => "owner_taken_down",
            };
            ApiError::new(StatusCode::CONFLICT, kind, refused.to_string())
        })?;
    if decided.bank_entries_added + decided.entries_disabled > 0 {
        ready.pipeline.banks.refresh(ready.store.as_ref()).await?;
    }
    if !decided.report_ids.is_empty() {
        ready.pipeline.reported.notify_one();
    }
    Ok(Json(AppealDecisionView {
        appeal: decided.appeal,
        released_items: decided.released_items,
        bank_entries_added: decided.bank_entries_added,
        entries_disabled: decided.entries_disabled,
        takedown_lifted: decided.takedown_lifted,
        report_ids: decided.report_ids,
        retried: decided.retried,
    }))
}
