//! `GET /v1/statements`: statements of reasons for every decision that restricted art or an
//! account in a date range, as JSON Lines.

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::auth::AdminToken;
use super::error::{ApiError, ErrorBody};
use super::review::queue::day_start;
use super::AppState;
use crate::review::statements;

/// Most statements one export holds; a longer range is refused, to be asked in parts.
pub const MAX_STATEMENTS: i64 = 100_000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatementsQuery {
    /// First day, `YYYY-MM-DD` (UTC).
    from: String,
    /// Last day, inclusive.
    to: String,
}

/// `[from, to)` for the days `from` to `to` (UTC, both inclusive).
pub(crate) fn day_range(from: &str, to: &str) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let (start, end) = (
        day_start("from", from.trim(), 0)?,
        day_start("to", to.trim(), 1)?,
    );
    if end <= start {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            format!("to={to} is before from={from}"),
        ));
    }
    Ok((start, end))
}

/// Statements of reasons for the automatic blocks, review holds, reviewers' confirms and
/// account takedowns applied from `from` to `to` (days, UTC, inclusive), oldest first, one
/// JSON object per line in the shape of the EU DSA Transparency Database's statements.
/// Each carries a stable `puid`; `coverguard` holds the platform's own ids, to strip
/// before submitting.
#[utoipa::path(get, path = "/v1/statements", tag = "reports", params(StatementsQuery),
    responses((status = 200, content_type = "application/x-ndjson", body = statements::Statement,
        description = "one statement per line"),
        (status = 422, body = ErrorBody, description = "a date that does not read, a range that ends before it starts, or more than 100,000 statements")),
    security(("bearer" = [])))]
pub async fn export(
    State(state): State<AppState>,
    AdminToken { ready, .. }: AdminToken,
    Query(query): Query<StatementsQuery>,
) -> Result<Response, ApiError> {
    let (from, to) = day_range(&query.from, &query.to)?;
    let decisions = ready
        .store
        .restricting_decisions(from, to, MAX_STATEMENTS + 1)
        .await?;
    if decisions.len() as i64 > MAX_STATEMENTS {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            format!("more than {MAX_STATEMENTS} statements in this range: ask for a shorter one"),
        ));
    }
    let banks = ready.pipeline.banks.current();
    let config = state.config();
    let mut body = Vec::new();
    for decision in &decisions {
        let statement = statements::statement(
            decision,
            &banks,
            &config.statements,
            config.review.appeal_window_days,
        );
        serde_json::to_writer(&mut body, &statement).map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("a statement does not serialise: {e}"),
            )
        })?;
        body.push(b'\n');
    }
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}
