//! The filtered queue, claims and their lease.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::http::auth::ConsoleSession;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::{AppState, Ready};
use crate::store::{now_utc, QueueState, ReviewFilter, ReviewRow};

use super::store_error_for;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QueueQuery {
    /// open (default), pending, claimed, decided, escalated (admins).
    state: Option<String>,
    verdict: Option<String>,
    label: Option<String>,
    bank: Option<String>,
    owner: Option<String>,
    /// First day, `YYYY-MM-DD` (UTC).
    from: Option<String>,
    /// Last day, inclusive.
    to: Option<String>,
    /// Items per page: 1 to 500, default 100.
    limit: Option<i64>,
    /// The next page: the `next_cursor` of the previous one.
    after: Option<String>,
    /// `true`: only items people reported (`POST /v1/reports`).
    reported: Option<String>,
}

/// Empty query values (an untouched filter field) mean "any".
pub(super) fn given(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// The start (UTC midnight) of the day `value` names, plus `days_after` days.
pub(crate) fn day_start(
    field: &str,
    value: &str,
    days_after: u64,
) -> Result<DateTime<Utc>, ApiError> {
    let day = NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            format!("{field}={value:?} is not a YYYY-MM-DD date: {e}"),
        )
    })?;
    let day = day
        .checked_add_days(chrono::Days::new(days_after))
        .unwrap_or(day);
    Ok(day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueueView {
    items: Vec<ReviewRow>,
    /// Pass as `after` for the next page; absent on the last page.
    next_cursor: Option<String>,
    /// What each bank the items name does on a match: `block`, `review` or `allow` (an allow
    /// list). A bank deleted since is absent.
    bank_actions: BTreeMap<String, String>,
    /// How many user reports are counted on each item (by item id); items without any are
    /// absent.
    user_reports: BTreeMap<String, i64>,
}

/// What each of `banks` does on a match, as screening applies it now.
pub(super) fn bank_actions<'a>(
    ready: &Ready,
    banks: impl IntoIterator<Item = &'a String>,
) -> BTreeMap<String, String> {
    let index = ready.pipeline.banks.current();
    banks
        .into_iter()
        .filter_map(|name| {
            let rules = index.rules(name)?;
            Some((name.clone(), rules.action.as_str().to_string()))
        })
        .collect()
}

/// The review queue: bank hits first (by bank severity), then by the highest model score.
/// Open listings show each artwork once, as its latest open item; pages follow `next_cursor`.
#[utoipa::path(get, path = "/v1/review/queue", tag = "review",
    params(QueueQuery),
    responses((status = 200, body = QueueView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn queue(
    ConsoleSession { ready, reviewer }: ConsoleSession,
    Query(query): Query<QueueQuery>,
) -> Result<Json<QueueView>, ApiError> {
    let queue_state = match given(&query.state).as_deref() {
        None | Some("open") => QueueState::Open,
        Some("pending") => QueueState::Pending,
        Some("claimed") => QueueState::Claimed,
        Some("decided") => QueueState::Decided,
        Some("escalated") => {
            reviewer.require_admin()?;
            QueueState::Escalated
        }
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                format!("state={other:?}: use open, pending, claimed, decided or escalated"),
            ))
        }
    };
    let filter = ReviewFilter {
        state: queue_state,
        verdict: given(&query.verdict)
            .map(|v| {
                v.parse().map_err(|_| {
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid",
                        format!("verdict={v:?}: use allow, review or block"),
                    )
                })
            })
            .transpose()?,
        label: given(&query.label),
        bank: given(&query.bank),
        owner: given(&query.owner),
        from: given(&query.from)
            .map(|d| day_start("from", &d, 0))
            .transpose()?,
        to: given(&query.to)
            .map(|d| day_start("to", &d, 1))
            .transpose()?,
        include_admin_level: reviewer.is_admin(),
        reported: match given(&query.reported).as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid",
                    format!("reported={other:?}: use true or false"),
                ))
            }
        },
        after: given(&query.after),
        // One more than a page, to learn whether another follows.
        limit: query.limit.unwrap_or(100).clamp(1, 500) + 1,
    };
    let mut items = ready.store.review_queue(&filter).await?;
    let next_cursor = if items.len() as i64 >= filter.limit {
        items.truncate((filter.limit - 1) as usize);
        items.last().map(|last| last.id.clone())
    } else {
        None
    };
    let bank_actions = bank_actions(&ready, items.iter().flat_map(|i| &i.banks));
    let ids: Vec<String> = items.iter().map(|i| i.id.clone()).collect();
    let user_reports = ready
        .store
        .user_report_counts(&ids)
        .await?
        .into_iter()
        .collect();
    Ok(Json(QueueView {
        items,
        next_cursor,
        bank_actions,
        user_reports,
    }))
}

pub(super) fn claim_lease(state: &AppState) -> Duration {
    Duration::from_secs(u64::from(state.config().review.claim_lease_minutes) * 60)
}

/// Claim an item so no other reviewer works it (the claim lapses after `claim_lease_minutes`).
#[utoipa::path(post, path = "/v1/review/items/{id}/claim", tag = "review",
    responses((status = 200, body = ReviewRow), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "claimed by someone else, or decided")))]
pub async fn claim(
    State(state): State<AppState>,
    ConsoleSession { ready, reviewer }: ConsoleSession,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<ReviewRow>, ApiError> {
    let cutoff = now_utc()
        - chrono::Duration::from_std(claim_lease(&state)).unwrap_or(chrono::Duration::minutes(30));
    let row = ready
        .store
        .claim_review_item(&id, &reviewer.username, reviewer.role, cutoff)
        .await
        .map_err(store_error_for(&reviewer))?;
    Ok(Json(row))
}

/// Give a claim back.
#[utoipa::path(post, path = "/v1/review/items/{id}/unclaim", tag = "review",
    responses((status = 200, body = ReviewRow), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn unclaim(
    ConsoleSession { ready, reviewer }: ConsoleSession,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<ReviewRow>, ApiError> {
    let row = ready
        .store
        .unclaim_review_item(&id, &reviewer.username, reviewer.role)
        .await
        .map_err(store_error_for(&reviewer))?;
    Ok(Json(row))
}
