//! Console users, managed with the admin token, and lifting a takedown.

use axum::extract::Path as UrlPath;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::http::auth::AdminToken;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::session;
use crate::store::valid_username;
use crate::store::{ConsoleRole, ConsoleSettings, ConsoleUserSummary, ExistingUser};

use super::login::UserView;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserRequest {
    username: String,
    /// At least 12 characters; stored as an Argon2id hash.
    password: String,
    /// `reviewer` or `admin`.
    role: String,
}

fn invalid(message: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
}

/// Argon2id of `password`, off the async threads; a short one is the caller's error.
async fn password_hash(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || session::hash_password(&password))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        .map_err(|e| invalid(e.to_string()))
}

/// Create a console user (admin token). An existing name is 409 `conflict`: a new password
/// for someone is `POST /v1/users/{username}/password`.
#[utoipa::path(post, path = "/v1/users", tag = "review",
    request_body = UserRequest,
    responses((status = 201, body = UserView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the user exists"),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn put_user(
    AdminToken { ready, caller, .. }: AdminToken,
    Json(request): Json<UserRequest>,
) -> Result<Response, ApiError> {
    if !valid_username(&request.username) {
        return Err(invalid(format!(
            "user name {:?}: use 1-64 of a-z, 0-9, '.', '_', '-'",
            request.username
        )));
    }
    let role: ConsoleRole = request
        .role
        .parse()
        .map_err(|_| invalid(format!("role {:?}: use reviewer or admin", request.role)))?;
    let phc = password_hash(request.password).await?;
    ready
        .store
        .put_console_user(
            &request.username,
            &phc,
            role,
            &caller.name,
            ExistingUser::Refuse,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(UserView {
            username: request.username,
            role,
            settings: ConsoleSettings::default(),
        }),
    )
        .into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    /// At least 12 characters; stored as an Argon2id hash.
    password: String,
}

impl std::fmt::Debug for PasswordReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordReset")
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Set a console user's password (admin token): every session of theirs ends, and a disabled
/// user is enabled again.
#[utoipa::path(post, path = "/v1/users/{username}/password", tag = "review",
    params(("username" = String, Path)),
    request_body = PasswordReset,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn reset_password(
    AdminToken { ready, caller, .. }: AdminToken,
    UrlPath(username): UrlPath<String>,
    Json(request): Json<PasswordReset>,
) -> Result<StatusCode, ApiError> {
    let phc = password_hash(request.password).await?;
    ready
        .store
        .reset_console_password(&username, &phc, &caller.name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserList {
    users: Vec<ConsoleUserSummary>,
}

/// Every console user: name, role, disabled, created (admin token). No secret is listed.
#[utoipa::path(get, path = "/v1/users", tag = "review",
    responses((status = 200, body = UserList), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_users(AdminToken { ready, .. }: AdminToken) -> Result<Json<UserList>, ApiError> {
    let users = ready.store.console_users().await?;
    Ok(Json(UserList { users }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TakedownLifted {
    owner_id: String,
    /// False when the account was not taken down (nothing changed).
    lifted: bool,
}

/// Lift an account takedown (admin token): the owner's next uploads are screened as anyone's.
/// Their quarantined artworks stay quarantined until a reviewer releases them; until this is
/// called, no release of theirs is accepted. Audited as `account.takedown_lift`.
#[utoipa::path(delete, path = "/v1/accounts/{owner_id}/takedown", tag = "accounts",
    params(("owner_id" = String, Path)),
    responses((status = 200, body = TakedownLifted), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn lift_takedown(
    AdminToken { ready, caller, .. }: AdminToken,
    UrlPath(owner_id): UrlPath<String>,
) -> Result<Json<TakedownLifted>, ApiError> {
    let lifted = ready.store.lift_takedown(&owner_id, &caller.name).await?;
    Ok(Json(TakedownLifted { owner_id, lifted }))
}

/// Disable a console user and end their sessions (admin token).
/// `POST /v1/users/{username}/password` enables them again.
#[utoipa::path(delete, path = "/v1/users/{username}", tag = "review",
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn disable_user(
    AdminToken { ready, caller, .. }: AdminToken,
    UrlPath(username): UrlPath<String>,
) -> Result<StatusCode, ApiError> {
    ready
        .store
        .disable_console_user(&username, &caller.name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
