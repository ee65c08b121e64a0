//! Console login, logout, the signed-in user and their settings.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::http::auth::ConsoleSession;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::login_throttle::{Attempt, Outcome};
use crate::http::session::{self, Reviewer};
use crate::http::AppState;
use crate::store::{ConsoleRole, ConsoleSettings};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    username: String,
    password: String,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub(super) username: String,
    #[schema(value_type = String)]
    pub(super) role: ConsoleRole,
    pub(super) settings: ConsoleSettings,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    user: UserView,
    /// Send as `X-CSRF-Token` on every change.
    csrf_token: String,
}

fn session_view(reviewer: &Reviewer) -> SessionView {
    SessionView {
        user: UserView {
            username: reviewer.username.clone(),
            role: reviewer.role,
            settings: reviewer.settings,
        },
        csrf_token: reviewer.csrf_token.clone(),
    }
}

/// Log in to the console: sets the session cookie and returns the CSRF token.
#[utoipa::path(post, path = "/v1/review/login", tag = "review",
    request_body = LoginRequest,
    responses((status = 200, body = SessionView), (status = 401, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "too many failed logins for this name; see Retry-After")))]
pub async fn login(
    State(state): State<AppState>,
    Json(request): Json<LoginRequest>,
) -> Result<Response, ApiError> {
    let ready = state.ready()?;
    let attempt = Attempt::begin(&ready.store, &request.username)
        .await?
        .map_err(|wait| ApiError {
            retry_after_secs: Some((wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "login_throttled",
                "too many failed logins for this user name; try again after Retry-After seconds",
            )
        })?;
    let (reviewer, cookie) = match session::login(
        ready,
        &state.config().review,
        &request.username,
        &request.password,
    )
    .await
    {
        Ok(done) => done,
        Err(e) => {
            if e.kind == "bad_credentials" {
                // While the store cannot count failures, admission fails too: no free guesses.
                attempt.settle(Outcome::Failed).await?;
            }
            return Err(e);
        }
    };
    // The user is who they said; a count left standing only times out.
    if let Err(e) = attempt.settle(Outcome::Succeeded).await {
        tracing::warn!(error = %e.chain(), "a successful login's failures stay counted until forgotten");
    }
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(session_view(&reviewer)),
    )
        .into_response())
}

/// End the session.
#[utoipa::path(post, path = "/v1/review/logout", tag = "review",
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn logout(
    State(state): State<AppState>,
    ConsoleSession { ready, reviewer }: ConsoleSession,
) -> Result<Response, ApiError> {
    let cookie = session::logout(&ready, &state.config().review, &reviewer).await?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

/// The logged-in user and the session's CSRF token.
#[utoipa::path(get, path = "/v1/review/me", tag = "review",
    responses((status = 200, body = SessionView), (status = 401, body = ErrorBody)))]
pub async fn me(
    ConsoleSession { reviewer, .. }: ConsoleSession,
) -> Result<Json<SessionView>, ApiError> {
    Ok(Json(session_view(&reviewer)))
}

/// Change how quarantined images are shown to me: blur level, grayscale for the safe view,
/// and `grayscale_reveal` (default false) for revealed images.
#[utoipa::path(put, path = "/v1/review/me/settings", tag = "review",
    request_body = ConsoleSettings,
    responses((status = 200, body = SessionView), (status = 422, body = ErrorBody)))]
pub async fn put_settings(
    ConsoleSession {
        ready,
        mut reviewer,
    }: ConsoleSession,
    Json(settings): Json<ConsoleSettings>,
) -> Result<Json<SessionView>, ApiError> {
    let user = ready
        .store
        .set_console_settings(&reviewer.username, &settings)
        .await?;
    reviewer.settings = user.settings;
    Ok(Json(session_view(&reviewer)))
}
