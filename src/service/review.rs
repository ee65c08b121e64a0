//! `/v1/review/*`: the API the reviewer console runs on, and `/v1/users` to create its users.
//!
//! Every handler here needs a console session (reviewer or admin; see [`super::session`]), and
//! every change a CSRF token. Reviewers never see escalated items (they answer 404, as if the
//! item did not exist). Each look at an item, each image served (safe or revealed) and each
//! claim and decision is written to the audit log before the answer goes out.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::auth::AdminToken;
use super::error::{ApiError, ErrorBody};
use super::session::{self, Reviewer};
use super::{check_bearer, AppState, Ready};
use crate::act::quarantine::ObjectKey;
use crate::classify::{label_scores, Detection};
use crate::http::login_throttle::{Attempt, Outcome};
use crate::review::{self, DecisionRequest, ReviewError, ViewMode};
use crate::screen::{ScreeningRecord, ViewRecord};
use crate::screening::text_only::WordsRecord;
use crate::screening::views::ViewId;
use crate::store::{
    now_utc, ArtworkRow, AuditFilter, AuditRow, BankAction, BankSpec, ConsoleRole, ConsoleSettings,
    ConsoleUserSummary, DecisionRefused, DecisionWrite, OwnerArtwork, QueueState, ReviewDecision,
    ReviewFilter, ReviewRow, ScreeningRow, StoreError, TokenRole,
};

/// Screenings sampled for the score distributions.
const SCORE_SAMPLE: i64 = 5000;
/// Days of verdict counts on the dashboard.
const DASHBOARD_DAYS: i64 = 14;
const QUEUE_AGE_BUCKETS: [&str; 5] = ["<1h", "1-6h", "6-24h", "1-3d", ">3d"];

impl From<ReviewError> for ApiError {
    fn from(e: ReviewError) -> Self {
        match e {
            ReviewError::Decode(_) | ReviewError::Encode(_) | ReviewError::ViewNotInFile(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "evidence", e.to_string())
            }
            ReviewError::ViewNotScreened(_) => ApiError::not_found(e.to_string()),
            _ => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", e.to_string()),
        }
    }
}

async fn reviewer<'a>(
    state: &'a AppState,
    method: &Method,
    headers: &HeaderMap,
) -> Result<(&'a Ready, Reviewer), ApiError> {
    let ready = state.ready()?;
    let reviewer = session::authenticate(ready, &state.config().review, method, headers).await?;
    Ok((ready, reviewer))
}

fn store_error_for(reviewer: &Reviewer) -> impl Fn(StoreError) -> ApiError + '_ {
    move |e| {
        if let StoreError::NotFound(_) = e {
            // Same answer whether the item is missing or above the caller's level.
            ApiError::not_found(format!("no review item visible to {}", reviewer.username))
        } else {
            e.into()
        }
    }
}

/// The item (if the caller's role may see it) and its screening.
async fn visible_item(
    ready: &Ready,
    reviewer: &Reviewer,
    id: &str,
) -> Result<(ReviewRow, ScreeningRow), ApiError> {
    let review = ready
        .store
        .get_review(id)
        .await?
        .filter(|r| r.visible_to(reviewer.role))
        .ok_or_else(|| ApiError::not_found(format!("no review item {id}")))?;
    let screening = ready
        .store
        .get_screening(&review.screening_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("screening {}", review.screening_id)))?;
    Ok((review, screening))
}

async fn audit(
    ready: &Ready,
    reviewer: &Reviewer,
    action: &str,
    subject: &str,
    detail: serde_json::Value,
) -> Result<(), ApiError> {
    ready
        .store
        .append_audit(&reviewer.username, action, subject, &detail)
        .await?;
    Ok(())
}

// --- session ---------------------------------------------------------------------------------

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
    username: String,
    #[schema(value_type = String)]
    role: ConsoleRole,
    settings: ConsoleSettings,
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
    let attempt =
        Attempt::begin(state.login_throttle(), &request.username).map_err(|wait| ApiError {
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
                attempt.settle(Outcome::Failed);
            }
            return Err(e);
        }
    };
    attempt.settle(Outcome::Succeeded);
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
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (ready, reviewer) = reviewer(&state, &method, &headers).await?;
    let cookie = session::logout(ready, &state.config().review, &reviewer).await?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

/// The logged-in user and the session's CSRF token.
#[utoipa::path(get, path = "/v1/review/me", tag = "review",
    responses((status = 200, body = SessionView), (status = 401, body = ErrorBody)))]
pub async fn me(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
) -> Result<Json<SessionView>, ApiError> {
    let (_, reviewer) = reviewer(&state, &method, &headers).await?;
    Ok(Json(session_view(&reviewer)))
}

/// Change how quarantined images are shown to me: blur level, grayscale for the safe view,
/// and `grayscale_reveal` (default false) for revealed images.
#[utoipa::path(put, path = "/v1/review/me/settings", tag = "review",
    request_body = ConsoleSettings,
    responses((status = 200, body = SessionView), (status = 422, body = ErrorBody)))]
pub async fn put_settings(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Json(settings): Json<ConsoleSettings>,
) -> Result<Json<SessionView>, ApiError> {
    let (ready, mut reviewer) = reviewer(&state, &method, &headers).await?;
    let user = ready
        .store
        .set_console_settings(&reviewer.username, &settings)
        .await?;
    reviewer.settings = user.settings;
    Ok(Json(session_view(&reviewer)))
}

// --- queue -----------------------------------------------------------------------------------

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
}

/// Empty query values (an untouched filter field) mean "any".
fn given(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

fn day_start(field: &str, value: &str, days_after: u64) -> Result<DateTime<Utc>, ApiError> {
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
}

/// What each of `banks` does on a match, as screening applies it now.
fn bank_actions<'a>(
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
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Query(query): Query<QueueQuery>,
) -> Result<Json<QueueView>, ApiError> {
    let (ready, reviewer) = reviewer(&state, &method, &headers).await?;
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
        verdict: given(&query.verdict),
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
    let bank_actions = bank_actions(ready, items.iter().flat_map(|i| &i.banks));
    Ok(Json(QueueView {
        items,
        next_cursor,
        bank_actions,
    }))
}

fn claim_lease(state: &AppState) -> Duration {
    Duration::from_secs(u64::from(state.config().review.claim_lease_minutes) * 60)
}

/// Claim an item so no other reviewer works it (the claim lapses after `claim_lease_minutes`).
#[utoipa::path(post, path = "/v1/review/items/{id}/claim", tag = "review",
    responses((status = 200, body = ReviewRow), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "claimed by someone else, or decided")))]
pub async fn claim(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<ReviewRow>, ApiError> {
    let (ready, reviewer) = reviewer(&state, &method, &headers).await?;
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
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<ReviewRow>, ApiError> {
    let (ready, reviewer) = reviewer(&state, &method, &headers).await?;
    let row = ready
        .store
        .unclaim_review_item(&id, &reviewer.username, reviewer.role)
        .await
        .map_err(store_error_for(&reviewer))?;
    Ok(Json(row))
}

// --- item ------------------------------------------------------------------------------------

/// A stored record as the console reads it: an image's, or words screened alone.
enum ItemRecord {
    Image(Box<ScreeningRecord>),
    Words(WordsRecord),
}

impl ItemRecord {
    fn read(screening: &ScreeningRow) -> Result<ItemRecord, StoreError> {
        let parsed = if screening.has_image() {
            serde_json::from_value(screening.record.clone()).map(|r| ItemRecord::Image(Box::new(r)))
        } else {
            serde_json::from_value(screening.record.clone()).map(ItemRecord::Words)
        };
        parsed.map_err(|e| StoreError::backend("stored record does not parse", e))
    }

    fn matches(&self) -> &[crate::bank::BankMatch] {
        match self {
            ItemRecord::Image(record) => &record.matches,
            ItemRecord::Words(_) => &[],
        }
    }

    fn detail(self, screening: ScreeningRow) -> ScreeningDetail {
        let record = match self {
            ItemRecord::Image(record) => *record,
            ItemRecord::Words(words) => {
                return ScreeningDetail {
                    id: screening.id,
                    verdict: screening.verdict,
                    reasons: words.reasons,
                    has_image: false,
                    sha256: String::new(),
                    md5: String::new(),
                    pdq: None,
                    pdq_quality: None,
                    created_at: screening.created_at,
                    width: 0,
                    height: 0,
                    format: String::new(),
                    model: String::new(),
                    detections: Vec::new(),
                    scores: BTreeMap::new(),
                    matches: Vec::new(),
                    views: Vec::new(),
                    decided_by: None,
                    context: screening.context,
                    text: words.text,
                }
            }
        };
        ScreeningDetail {
            id: screening.id,
            verdict: screening.verdict,
            reasons: record.reasons,
            has_image: true,
            sha256: screening.sha256,
            md5: screening.md5,
            pdq: screening.pdq,
            pdq_quality: screening.pdq_quality,
            created_at: screening.created_at,
            width: record.width,
            height: record.height,
            format: record.format.as_str().to_string(),
            model: record.model,
            scores: label_scores(&record.detections),
            detections: record.detections,
            matches: record.matches,
            views: record.views.into_iter().map(ViewDetail::from).collect(),
            decided_by: record.decided_by,
            context: screening.context,
            text: record.text,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScreeningDetail {
    id: String,
    verdict: crate::decide::Verdict,
    reasons: Vec<String>,
    /// False for words screened alone (a title with no image): the image's fields below
    /// are then empty.
    has_image: bool,
    sha256: String,
    md5: String,
    pdq: Option<String>,
    pdq_quality: Option<i64>,
    created_at: DateTime<Utc>,
    width: u32,
    height: u32,
    format: String,
    model: String,
    #[schema(value_type = Vec<Object>)]
    detections: Vec<Detection>,
    /// The highest score per label.
    scores: BTreeMap<String, f32>,
    /// Every match; a view's names its `frame` and `rendering`.
    #[schema(value_type = Vec<Object>)]
    matches: Vec<crate::bank::BankMatch>,
    /// Every frame or rendering screened beyond the reference decoding (whose detections
    /// and scores are the fields above), in the order the console steps through them.
    views: Vec<ViewDetail>,
    /// The view whose verdict the screening's is; absent when the reference decided.
    #[schema(value_type = Option<Object>)]
    decided_by: Option<ViewId>,
    context: serde_json::Value,
    /// Text signals of the title and description, with their spans.
    text: crate::text::TextRecord,
}

/// One view of the image: a frame, in a rendering. It has the reference's size, so its
/// boxes are in the same pixels.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ViewDetail {
    /// A 0-based frame index, or `"default"` (an APNG's default image).
    #[schema(value_type = serde_json::Value)]
    frame: crate::decode::FrameId,
    /// `opaque`, or `over_<rrggbb>`.
    #[schema(value_type = String)]
    rendering: crate::screening::views::Rendering,
    pdq: String,
    pdq_quality: u32,
    #[schema(value_type = Vec<Object>)]
    detections: Vec<Detection>,
    /// The highest score per label.
    scores: BTreeMap<String, f32>,
}

impl From<ViewRecord> for ViewDetail {
    fn from(view: ViewRecord) -> Self {
        ViewDetail {
            frame: view.frame,
            rendering: view.rendering,
            pdq: view.pdq.hash,
            pdq_quality: view.pdq.quality,
            scores: label_scores(&view.detections),
            detections: view.detections,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    at: DateTime<Utc>,
    actor: String,
    action: String,
    detail: serde_json::Value,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BankChoice {
    name: String,
    category: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DecisionOptions {
    reason_codes: BTreeMap<String, Vec<String>>,
    /// Known-bad banks a confirm can add the image's hashes to.
    banks: Vec<BankChoice>,
}

/// The artwork's screening since the item's: the item can no longer be decided.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SupersededBy {
    screening_id: String,
    /// The current screening's queue item, when there is one the caller may see.
    review_id: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ItemView {
    item: ReviewRow,
    /// Set when the artwork was screened again since: decisions answer 409 `superseded`.
    superseded_by: Option<SupersededBy>,
    /// The owner's account is taken down: a release answers 409 `owner_taken_down` until an
    /// admin lifts the takedown.
    owner_taken_down: bool,
    /// Every queue item of the artwork the caller may see, this one included, newest first.
    artwork_items: Vec<ReviewRow>,
    /// What each bank the matches name does on a match: `block`, `review` or `allow`.
    bank_actions: BTreeMap<String, String>,
    screening: ScreeningDetail,
    #[schema(value_type = Option<Object>)]
    artwork: Option<ArtworkRow>,
    /// Whether the image's bytes are kept (quarantined) and can be shown.
    evidence: bool,
    owner_artworks: Vec<OwnerArtwork>,
    history: Vec<HistoryEntry>,
    options: DecisionOptions,
}

/// One item with everything a reviewer needs to decide it. Audited as a view.
#[utoipa::path(get, path = "/v1/review/items/{id}", tag = "review",
    responses((status = 200, body = ItemView), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn item(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<ItemView>, ApiError> {
    let (ready, reviewer) = reviewer(&state, &method, &headers).await?;
    let (review, screening) = visible_item(ready, &reviewer, &id).await?;
    let record = ItemRecord::read(&screening)?;
    let artwork = match &screening.artwork_id {
        Some(artwork_id) => ready.store.get_artwork(artwork_id).await?,
        None => None,
    };
    let evidence = !ready
        .store
        .quarantine_items(&screening.sha256)
        .await?
        .is_empty();
    let superseded_by = match artwork
        .as_ref()
        .and_then(|a| a.latest_screening_id.clone())
        .filter(|current| *current != screening.id)
    {
        Some(current) => {
            let review_id = ready
                .store
                .review_for_screening(&current)
                .await?
                .filter(|r| r.visible_to(reviewer.role))
                .map(|r| r.id);
            Some(SupersededBy {
                screening_id: current,
                review_id,
            })
        }
        None => None,
    };
    let (owner_artworks, owner_taken_down) = match &screening.owner_id {
        Some(owner) => (
            ready
                .store
                .owner_artworks(owner, 50, reviewer.is_admin())
                .await?,
            ready.store.is_taken_down(owner).await?,
        ),
        None => (Vec::new(), false),
    };
    let artwork_items = match &screening.artwork_id {
        Some(artwork_id) => {
            ready
                .store
                .artwork_reviews(artwork_id, reviewer.is_admin(), 50)
                .await?
        }
        None => Vec::new(),
    };
    let bank_actions = bank_actions(ready, record.matches().iter().map(|m| &m.bank));
    let history = ready
        .store
        .audit_rows(&AuditFilter {
            subjects: vec![screening.id.clone()],
            oldest_first: true,
            limit: 500,
            ..AuditFilter::default()
        })
        .await?
        .into_iter()
        .map(|row| HistoryEntry {
            at: row.at,
            actor: row.actor,
            action: row.action,
            detail: row.detail,
        })
        .collect();
    let banks = ready
        .store
        .list_banks()
        .await?
        .into_iter()
        .filter(|b| !b.spec.allow_list && b.spec.action != BankAction::Allow)
        .map(|b| BankChoice {
            name: b.spec.name,
            category: b.spec.category,
        })
        .collect();
    let reason_codes = [
        ReviewDecision::Confirm,
        ReviewDecision::Release,
        ReviewDecision::Escalate,
    ]
    .into_iter()
    .map(|d| {
        (
            d.to_string(),
            review::reason_codes(d)
                .iter()
                .map(|c| c.to_string())
                .collect(),
        )
    })
    .collect();
    audit(
        ready,
        &reviewer,
        "review.view",
        &screening.id,
        serde_json::json!({ "review_id": review.id }),
    )
    .await?;
    Ok(Json(ItemView {
        item: review,
        superseded_by,
        owner_taken_down,
        artwork_items,
        bank_actions,
        screening: record.detail(screening),
        artwork,
        evidence,
        owner_artworks,
        history,
        options: DecisionOptions {
            reason_codes,
            banks,
        },
    }))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImageQuery {
    /// `safe` (blurred; the default) or `reveal`.
    #[serde(default)]
    #[param(value_type = Option<String>)]
    mode: ViewMode,
    /// With `rendering`, a view the screening screened: a 0-based frame index, or `default`
    /// (an APNG's default image). Without both, the reference decoding (first frame).
    frame: Option<String>,
    /// With `frame`: `opaque`, or `over_<rrggbb>` (composited over that page colour).
    rendering: Option<String>,
    /// Ignored; lets the console bust its cache after a settings change.
    #[serde(default, rename = "v")]
    _v: Option<String>,
}

/// The item's quarantined image as PNG: blurred (safe) by default, or revealed; grayscale
/// per the reviewer's settings for the mode (safe: grayscale by default; reveal: colour).
/// The reference decoding, or with `frame` and `rendering` one of the views the item's
/// screening lists (any other answers 404). Every call is audited before the bytes are sent.
#[utoipa::path(get, path = "/v1/review/items/{id}/image", tag = "review",
    params(ImageQuery),
    responses((status = 200, content_type = "image/png", body = Vec<u8>),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such item, no image kept, or a view the screening did not screen"),
        (status = 422, body = ErrorBody, description = "frame or rendering malformed, or one without the other")))]
pub async fn image(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    Query(query): Query<ImageQuery>,
) -> Result<Response, ApiError> {
    let (ready, reviewer) = reviewer(&state, &method, &headers).await?;
    let view = review::parse_view(query.frame.as_deref(), query.rendering.as_deref())?;
    let (review, screening) = visible_item(ready, &reviewer, &id).await?;
    if let Some(view) = view {
        review::check_screened(&screening, view)?;
    }
    if ready
        .store
        .quarantine_items(&screening.sha256)
        .await?
        .is_empty()
    {
        return Err(ApiError::not_found(
            "no image is kept for this item (review verdicts are kept only with quarantine_on_review)",
        ));
    }
    let key = ObjectKey::from_sha256(&screening.sha256).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "quarantine",
            e.to_string(),
        )
    })?;
    let bytes = ready.pipeline.vault.get(&key).await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "quarantine",
            e.to_string(),
        )
    })?;
    let limits = ready.pipeline.settings.limits.clone();
    let settings = reviewer.settings;
    let mode = query.mode;
    let png = tokio::task::spawn_blocking(move || {
        review::render_evidence(&bytes, &limits, view, &settings, mode)
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "evidence", e.to_string()))??;
    let mut detail = serde_json::json!({
        "review_id": review.id,
        "blur": settings.blur,
        "grayscale": mode.grayscale(&settings),
    });
    if let Some(view) = view {
        detail["frame"] = serde_json::json!(view.frame);
        detail["rendering"] = serde_json::json!(view.rendering);
    }
    // Written before the bytes leave: no audit row, no image.
    audit(
        ready,
        &reviewer,
        match mode {
            ViewMode::Safe => "image.view",
            ViewMode::Reveal => "image.reveal",
        },
        &screening.id,
        detail,
    )
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        png,
    )
        .into_response())
}

// --- decisions -------------------------------------------------------------------------------

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
    method: Method,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    Json(request): Json<DecisionRequest>,
) -> Result<Json<DecisionView>, ApiError> {
    let (ready, reviewer) = reviewer(&state, &method, &headers).await?;
    let (review, screening) = visible_item(ready, &reviewer, &id).await?;
    let request = request.validate(screening.has_image())?;

    let mut reports = Vec::new();
    let decision_bank = match request.decision {
        // Words screened alone: nothing to bank or to report; the decision event tells
        // the platform.
        _ if !screening.has_image() => None,
        ReviewDecision::Confirm => {
            let name = request.bank.as_deref().unwrap_or_default();
            let bank = find_bank(ready, name).await?;
            if bank.spec.allow_list || bank.spec.action == BankAction::Allow {
                return Err(ReviewError::NotKnownBad(name.to_string()).into());
            }
            reports.extend(ready.pipeline.confirmation_reports(&screening, name)?);
            Some(bank)
        }
        ReviewDecision::Release => Some(allow_list_bank(&state, ready).await?),
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
    super::banks::find_bank(ready, name).await.map_err(|e| {
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
async fn allow_list_bank(
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

// --- dashboard -------------------------------------------------------------------------------

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct DayVerdicts {
    day: String,
    allow: i64,
    review: i64,
    block: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScoreHistogram {
    label: String,
    /// Bin i counts images whose highest score for the label is in [i/10, (i+1)/10).
    bins: [u64; 10],
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgeBucket {
    bucket: &'static str,
    count: i64,
}

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct ReviewerDecisions {
    reviewer: String,
    confirm: i64,
    release: i64,
    escalate: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatsView {
    verdicts_per_day: Vec<DayVerdicts>,
    /// Over the latest screenings (at most 5000), each image's highest score over its views.
    score_histograms: Vec<ScoreHistogram>,
    queue_age: Vec<AgeBucket>,
    decisions_by_reviewer: Vec<ReviewerDecisions>,
}

/// Figures for the dashboard.
#[utoipa::path(get, path = "/v1/review/stats", tag = "review",
    responses((status = 200, body = StatsView), (status = 401, body = ErrorBody)))]
pub async fn stats(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
) -> Result<Json<StatsView>, ApiError> {
    let (ready, _) = reviewer(&state, &method, &headers).await?;
    let now = now_utc();
    let cutoffs = [1, 6, 24, 72].map(|hours| now - chrono::Duration::hours(hours));
    let counts = ready
        .store
        .review_counts(now - chrono::Duration::days(DASHBOARD_DAYS), &cutoffs)
        .await?;

    let mut days: BTreeMap<String, DayVerdicts> = BTreeMap::new();
    for (day, verdict, n) in counts.verdicts_per_day {
        let entry = days.entry(day.clone()).or_insert_with(|| DayVerdicts {
            day,
            ..DayVerdicts::default()
        });
        match verdict.as_str() {
            "allow" => entry.allow += n,
            "review" => entry.review += n,
            "block" => entry.block += n,
            _ => {}
        }
    }

    let mut histograms: BTreeMap<String, [u64; 10]> = BTreeMap::new();
    for record in ready.store.recent_records(SCORE_SAMPLE).await? {
        let Ok(mut detections) =
            serde_json::from_value::<Vec<Detection>>(record["detections"].clone())
        else {
            continue;
        };
        // An image scores what its highest-scoring view scores: a frame can decide it.
        let views = record["views"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        for view in views {
            if let Ok(more) = serde_json::from_value::<Vec<Detection>>(view["detections"].clone()) {
                detections.extend(more);
            }
        }
        for (label, score) in label_scores(&detections) {
            let bin = ((score * 10.0) as usize).min(9);
            histograms.entry(label).or_default()[bin] += 1;
        }
    }

    let mut by_reviewer: BTreeMap<String, ReviewerDecisions> = BTreeMap::new();
    for (name, decision, n) in counts.decisions {
        let entry = by_reviewer
            .entry(name.clone())
            .or_insert_with(|| ReviewerDecisions {
                reviewer: name,
                ..ReviewerDecisions::default()
            });
        match decision.as_str() {
            "confirm" => entry.confirm += n,
            "release" => entry.release += n,
            "escalate" => entry.escalate += n,
            _ => {}
        }
    }

    Ok(Json(StatsView {
        verdicts_per_day: days.into_values().collect(),
        score_histograms: histograms
            .into_iter()
            .map(|(label, bins)| ScoreHistogram { label, bins })
            .collect(),
        queue_age: QUEUE_AGE_BUCKETS
            .iter()
            .zip(counts.queue_age)
            .map(|(bucket, count)| AgeBucket { bucket, count })
            .collect(),
        decisions_by_reviewer: by_reviewer.into_values().collect(),
    }))
}

// --- audit (admins) --------------------------------------------------------------------------

/// An admin console session or an admin API token; returns the actor name.
async fn audit_reader<'a>(
    state: &'a AppState,
    method: &Method,
    headers: &HeaderMap,
) -> Result<(&'a Ready, String), ApiError> {
    let ready = state.ready()?;
    if headers.contains_key(header::AUTHORIZATION) {
        let caller = check_bearer(ready, headers, TokenRole::Admin)?;
        return Ok((ready, caller.name));
    }
    let reviewer = session::authenticate(ready, &state.config().review, method, headers).await?;
    reviewer.require_admin()?;
    Ok((ready, reviewer.username))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    /// Rows older than this audit id (paging).
    before: Option<String>,
    limit: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditView {
    #[schema(value_type = Vec<Object>)]
    rows: Vec<AuditRow>,
}

/// The audit log, newest first (admins).
#[utoipa::path(get, path = "/v1/review/audit", tag = "review",
    params(AuditQuery),
    responses((status = 200, body = AuditView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn audit_log(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Query(query): Query<AuditQuery>,
) -> Result<Json<AuditView>, ApiError> {
    let (ready, _) = audit_reader(&state, &method, &headers).await?;
    let rows = ready
        .store
        .audit_rows(&AuditFilter {
            actor: given(&query.actor),
            action: given(&query.action),
            cursor: given(&query.before),
            limit: query.limit.unwrap_or(200),
            ..AuditFilter::default()
        })
        .await?;
    Ok(Json(AuditView { rows }))
}

/// Rows per store round trip while exporting.
const EXPORT_PAGE: i64 = 1000;

/// The whole audit log as CSV, oldest first, streamed (admins). The export is itself audited.
#[utoipa::path(get, path = "/v1/review/audit/export", tag = "review",
    responses((status = 200, content_type = "text/csv", body = String),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn audit_export(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (ready, actor) = audit_reader(&state, &method, &headers).await?;
    ready
        .store
        .append_audit(&actor, "audit.export", "audit_log", &serde_json::json!({}))
        .await?;
    let store = std::sync::Arc::clone(&ready.store);
    let header_line = super::audit_csv::HEADER.to_string();
    let pages = futures_util::stream::unfold(
        (store, None::<String>, false),
        |(store, cursor, done)| async move {
            if done {
                return None;
            }
            let page = store
                .audit_rows(&AuditFilter {
                    cursor: cursor.clone(),
                    oldest_first: true,
                    limit: EXPORT_PAGE,
                    ..AuditFilter::default()
                })
                .await;
            match page {
                Ok(rows) => {
                    let last = rows.last().map(|r| r.id.clone());
                    let text = super::audit_csv::rows(&rows)
                        .map_err(|e| StoreError::backend("audit rows do not write as CSV", e));
                    let done = (rows.len() as i64) < EXPORT_PAGE || text.is_err();
                    Some((text, (store, last.or(cursor), done)))
                }
                // The stream ends with an error: the client sees a broken download, never a
                // short file that looks complete.
                Err(e) => Some((Err(e), (store, cursor, true))),
            }
        },
    );
    let body = futures_util::stream::iter([Ok::<_, StoreError>(header_line)]).chain(pages);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"coverguard-audit.csv\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

// --- users (admin token) ---------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserRequest {
    username: String,
    /// At least 12 characters; stored as an Argon2id hash.
    password: String,
    /// `reviewer` or `admin`.
    role: String,
}

/// A valid console user name: 1–64 of `a-z 0-9 . _ -` (case-folded: one person, one name).
pub fn valid_username(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
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
    State(state): State<AppState>,
    token: AdminToken,
    Json(request): Json<UserRequest>,
) -> Result<Response, ApiError> {
    let ready = state.ready()?;
    let caller = token.caller;
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
        .create_console_user(&request.username, &phc, role, &caller.name)
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
    State(state): State<AppState>,
    token: AdminToken,
    UrlPath(username): UrlPath<String>,
    Json(request): Json<PasswordReset>,
) -> Result<StatusCode, ApiError> {
    let ready = state.ready()?;
    let caller = token.caller;
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
pub async fn list_users(
    State(state): State<AppState>,
    _token: AdminToken,
) -> Result<Json<UserList>, ApiError> {
    let ready = state.ready()?;
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
    State(state): State<AppState>,
    token: AdminToken,
    UrlPath(owner_id): UrlPath<String>,
) -> Result<Json<TakedownLifted>, ApiError> {
    let ready = state.ready()?;
    let caller = token.caller;
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
    State(state): State<AppState>,
    token: AdminToken,
    UrlPath(username): UrlPath<String>,
) -> Result<StatusCode, ApiError> {
    let ready = state.ready()?;
    let caller = token.caller;
    ready
        .store
        .disable_console_user(&username, &caller.name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_are_safe() {
        assert!(valid_username("alice.r-2_x"));
        assert!(!valid_username("Alice"));
        assert!(!valid_username(""));
        assert!(!valid_username("a b"));
        assert!(!valid_username(&"a".repeat(65)));
    }
}
