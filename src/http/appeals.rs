//! `POST /v1/appeals`: an owner contests what restricts their art or their account.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;

use super::auth::ServiceToken;
use super::error::{ApiError, ErrorBody};
use super::AppState;
use crate::review::appeals::{self, AppealRequest};
use crate::store::AppealRow;

/// File an owner's appeal, from the platform's appeal flow: about an artwork
/// (`artwork_id`: its automatic block, or a reviewer's confirm), or without one about the
/// owner's account takedown. Taken within `[review] appeal_window_days` (183) of the
/// decision. 201 for a new appeal; 200 with the stored one when that decision was
/// appealed already.
#[utoipa::path(post, path = "/v1/appeals", tag = "reports", request_body = AppealRequest,
    responses((status = 201, body = AppealRow), (status = 200, body = AppealRow, description = "this decision was appealed already"),
        (status = 404, body = ErrorBody, description = "`unknown_artwork`"),
        (status = 409, body = ErrorBody, description = "`not_restricted`: nothing restricts it; `under_review`: not decided yet"),
        (status = 422, body = ErrorBody, description = "`appeal_window_closed`, `not_owner`, `invalid`")),
    security(("bearer" = [])))]
pub async fn appeal(
    State(state): State<AppState>,
    ServiceToken { ready, .. }: ServiceToken,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: AppealRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("JSON body: {e}")))?;
    let banks = ready.pipeline.banks.current();
    let (appeal, created) = appeals::file(
        ready.store.as_ref(),
        &banks,
        request,
        state.config().review.appeal_window_days,
        chrono::Utc::now(),
    )
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(appeal)).into_response())
}
