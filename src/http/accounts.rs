//! `POST /v1/accounts/{owner_id}/takedown`: an owner's whole account out of view. Its lift
//! is the console's (`review::users::lift_takedown`), since only admins decide it.

use axum::extract::Path as UrlPath;
use axum::Json;
use serde::Serialize;

use super::auth::AdminToken;
use super::error::{ApiError, ErrorBody};

/// What a takedown quarantined.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TakedownView {
    owner_id: String,
    quarantined_artworks: Vec<String>,
}

/// Quarantine every stored artwork of an owner; their future uploads get at least `review`.
#[utoipa::path(post, path = "/v1/accounts/{owner_id}/takedown", tag = "accounts",
    params(("owner_id" = String, Path)),
    responses((status = 200, body = TakedownView), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn takedown(
    AdminToken { ready, caller, .. }: AdminToken,
    UrlPath(owner_id): UrlPath<String>,
) -> Result<Json<TakedownView>, ApiError> {
    let changed = ready
        .store
        .takedown_account(&owner_id, &caller.name)
        .await?;
    Ok(Json(TakedownView {
        owner_id,
        quarantined_artworks: changed.into_iter().map(|a| a.artwork_id).collect(),
    }))
}
