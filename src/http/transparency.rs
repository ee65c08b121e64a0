//! `GET /v1/transparency`: transparency counts for a period, for an admin token or anyone
//! logged in to the console (the dashboard draws them).

use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use axum::Json;
use serde::Deserialize;

use super::auth::AdminOrConsole;
use super::error::{ApiError, ErrorBody};
use super::statements::day_range;
use crate::review::transparency::{self, TransparencyCounts};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TransparencyQuery {
    /// First day, `YYYY-MM-DD` (UTC).
    from: String,
    /// Last day, inclusive.
    to: String,
}

/// Counts for the days `from` to `to`: screenings and verdicts, blocks by signal, reviews
/// and their median time to decision, decisions by reason code, user reports by category
/// and outcome, appeals and their reversal rate, and the reports sent. An admin token, or
/// a console session of any role.
#[utoipa::path(get, path = "/v1/transparency", tag = "reports", params(TransparencyQuery),
    responses((status = 200, body = TransparencyCounts), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn counts(
    AdminOrConsole { ready, .. }: AdminOrConsole,
    // After the caller is known: a stranger learns nothing of the parameters.
    query: Result<Query<TransparencyQuery>, QueryRejection>,
) -> Result<Json<TransparencyCounts>, ApiError> {
    let Query(query) = query.map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            format!("query: {}", e.body_text()),
        )
    })?;
    let (from, to) = day_range(&query.from, &query.to)?;
    let rows = ready.store.transparency_rows(from, to).await?;
    let banks = ready.pipeline.banks.current();
    Ok(Json(transparency::count(&rows, &banks, from, to)))
}
