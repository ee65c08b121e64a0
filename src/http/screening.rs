//! `POST /v1/screen` and the records it leaves: a screening by id, an artwork's latest
//! state.

use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::Serialize;
use sha2::{Digest, Sha256};

use std::time::Duration;

use super::auth::ServiceToken;
use super::error::{ApiError, ErrorBody};
use super::{admission, body_limit, AppState, Caller, Ready};
use crate::screening::analyse::ScreenError;
use crate::screening::context::ScreenContext;
use crate::screening::pipeline::{ScreeningResponse, Submission};
use crate::screening::record::ScreeningRecord;
use crate::store;

/// Query parameters of a screening request, as documented; they are read by
/// [`crate::screening::context::parse`], which sees every pair and refuses repeats.
#[derive(Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct ScreenQuery {
    /// Required (here or in a JSON body): 1 to 128 characters of `[A-Za-z0-9._:-]`.
    artwork_id: String,
    /// Required (here or in a JSON body): 1 to 128 characters of `[A-Za-z0-9._:-]`.
    owner_id: String,
    /// `playlist_cover`, `track_art`, …: 1 to 128 characters of `[A-Za-z0-9._:-]`.
    surface: Option<String>,
    /// Exactly `true`, `false`, `1` or `0`; anything else is 422 `invalid_field`.
    owner_is_minor: Option<bool>,
    /// A whole number of 0 or more.
    playlist_track_count: Option<u64>,
    /// The playlist's or track's title, read for text signals: at most 1,000 characters,
    /// no control characters but tab and newline.
    title: Option<String>,
    /// The playlist's or track's description, as the title: at most 5,000 characters.
    description: Option<String>,
    deadline_ms: Option<u64>,
}

/// JSON body of a by-URL screening request, or of words alone: with no `url`, the
/// context's `title` or `description` is screened by itself (a retitled playlist, an
/// empty one with no cover) and the answer is a `WordsResponse`, or, when the artwork has
/// an image screened before, that screening decided again under the new words. No field
/// may also be in the query.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct ScreenJson {
    url: Option<String>,
    artwork_id: Option<String>,
    owner_id: Option<String>,
    context: Option<ScreenContext>,
    deadline_ms: Option<u64>,
}

pub(crate) struct ScreenRequest {
    /// The raw image; `None` for a by-URL request (`submission.url`) or words alone.
    pub(crate) bytes: Option<Bytes>,
    submission: Submission,
    deadline_ms: Option<u64>,
}

/// Screen one image: raw bytes (`Content-Type: image/*`, ids and context as query
/// parameters) or JSON with a `url`. Publish only on 200 with `verdict: "allow"`.
#[utoipa::path(post, path = "/v1/screen", tag = "screening",
    params(ScreenQuery,
        ("Idempotency-Key" = Option<String>, Header, description = "the caller's key for this upload (1 to 200 visible ASCII characters): a retry of the same request (bytes or URL, artwork, owner, context) with the same key, say after a timeout or a crash, answers the screening already recorded instead of screening and reporting again; any other request under the key is 409 idempotency_conflict")),
    request_body(content((Vec<u8> = "image/*"), (ScreenJson = "application/json"))),
    responses(
        (status = 200, body = ScreeningResponse, description = "a verdict; publish only if it is allow. Words screened alone (JSON with no url) answer a WordsResponse: the same verdict, reasons, text and screening_id, without image fields"),
        (status = 400, body = ErrorBody, description = "the body is not JSON, or the Idempotency-Key header is malformed"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "idempotency_conflict: the Idempotency-Key was first used for another request (other bytes or URL, artwork, owner or context); nothing was screened or kept"),
        (status = 413, body = ErrorBody, description = "larger than max_bytes"),
        (status = 415, body = ErrorBody, description = "not an image format coverguard decodes"),
        (status = 422, body = ErrorBody, description = "invalid_field (with `field`): an id or context value refused, missing, unknown or given twice; or undecodable, or the URL could not be fetched"),
        (status = 429, body = ErrorBody, description = "inference queue full; see Retry-After"),
        (status = 503, body = ErrorBody, description = "not ready, or the store is unavailable; see Retry-After"),
        (status = 504, body = ErrorBody, description = "the request's deadline passed"),
        (status = 500, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn screen(
    State(state): State<AppState>,
    ServiceToken { ready, caller, .. }: ServiceToken,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let started = std::time::Instant::now();
    let limit = body_limit(state.config());
    let deadline = Duration::from_millis(state.config().request_deadline_ms);
    // Under overload a refusal must cost next to nothing: the body is drained unbuffered so
    // the caller reads the 429 rather than a reset connection.
    if let Err(e) = ready.pipeline.scheduler.shed_if_full() {
        admission::discard(body, limit, deadline).await;
        return Err(e.into());
    }
    // The body must arrive within the service's deadline; the screening gets what is left.
    let body = admission::read_whole(body, limit, deadline)
        .await
        .map_err(ApiError::from)?;
    crate::http::memory::note_body(body.len());
    let mut request = parse_screen_request(&headers, query.as_deref(), body)?;
    request.submission.screening_id = idempotent_screening_id(&headers, &caller)?;
    let deadline_ms = request
        .deadline_ms
        .map_or(state.config().request_deadline_ms, |d| {
            d.min(state.config().request_deadline_ms)
        });
    let remaining = Duration::from_millis(deadline_ms).saturating_sub(started.elapsed());
    match tokio::time::timeout(remaining, screen_inner(&state, &ready, &caller, request)).await {
        Ok(result) => result,
        Err(_) => Err(ApiError::deadline(deadline_ms)),
    }
}

/// The request's image (or URL), ids and context. Every field goes through
/// [`crate::screening::context::parse`]: the query's pairs, then the JSON body's, into one set,
/// so a field given twice anywhere is refused, as is a missing `artwork_id` or `owner_id`.
pub(crate) fn parse_screen_request(
    headers: &HeaderMap,
    query: Option<&str>,
    body: Bytes,
) -> Result<ScreenRequest, ApiError> {
    use crate::screening::context::parse::{push_query, FieldError, FieldSet};
    let content_type = content_type(headers);
    let json = content_type.starts_with("application/json");
    if !json && !content_type.starts_with("image/") && content_type != "application/octet-stream" {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "Content-Type {content_type:?}: send image/* bytes or application/json with a url"
            ),
        ));
    }
    let mut fields = FieldSet::new();
    push_query(&mut fields, query.unwrap_or(""))?;
    let mut url = None;
    if json {
        // Malformed JSON is a bad request (400); a well-formed field it does not
        // understand is an invalid field (422).
        let parsed: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("JSON body: {e}")))?;
        for (name, value) in &parsed {
            match (name.as_str(), value) {
                ("url", serde_json::Value::String(u)) => url = Some(u.clone()),
                ("url", _) => Err(FieldError::WrongType {
                    field: "url".into(),
                    expected: "a string",
                    found: "another type",
                })?,
                ("context", serde_json::Value::Object(context)) => {
                    for (name, value) in context {
                        fields.push_json(name, value)?;
                    }
                }
                ("context", serde_json::Value::Null) => {}
                ("context", _) => Err(FieldError::WrongType {
                    field: "context".into(),
                    expected: "an object",
                    found: "another type",
                })?,
                (name, value) => fields.push_json(name, value)?,
            }
        }
    }
    let fields = fields.finish(true)?;
    let has_words = fields.context.title.is_some() || fields.context.description.is_some();
    let (bytes, source) = match &url {
        Some(url) => (None, url.clone()),
        // JSON with no URL screens the title and description alone.
        None if json && has_words => (
            None,
            crate::screening::text_only::source(fields.artwork_id.as_deref()),
        ),
        None if json => Err(FieldError::NothingToScreen)?,
        None => (
            Some(body),
            format!(
                "upload:{}",
                fields.artwork_id.as_deref().unwrap_or_default()
            ),
        ),
    };
    Ok(ScreenRequest {
        bytes,
        submission: Submission {
            url,
            source,
            artwork_id: fields.artwork_id,
            owner_id: fields.owner_id,
            context: fields.context,
            screening_id: None,
        },
        deadline_ms: fields.deadline_ms,
    })
}

/// The screening id an `Idempotency-Key` stands for: the same key from the same caller is
/// the same screening, so the store writes it (and its reports) once however often it is sent.
fn idempotent_screening_id(
    headers: &HeaderMap,
    caller: &Caller,
) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| (1..=200).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::bad_request("Idempotency-Key must be 1 to 200 visible ASCII characters")
        })?;
    let mut hasher = Sha256::new();
    hasher.update(b"coverguard screen idempotency v1\0");
    hasher.update(caller.name.as_bytes());
    hasher.update(b"\0");
    hasher.update(key.as_bytes());
    Ok(Some(format!(
        "ik_{}",
        &hex::encode(hasher.finalize())[..32]
    )))
}

/// The request's Content-Type, lower-cased; empty when absent.
pub(super) fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
}

async fn screen_inner(
    state: &AppState,
    ready: &Ready,
    caller: &Caller,
    request: ScreenRequest,
) -> Result<Response, ApiError> {
    let bytes = match (request.bytes, &request.submission.url) {
        (Some(b), _) => b,
        (None, Some(url)) => Bytes::from(
            ready
                .http
                .get(url, state.config().max_bytes)
                .await
                .map_err(ScreenError::from)?,
        ),
        (None, None) => return screen_words(state, ready, caller, &request.submission).await,
    };
    let mut screened = if request.submission.screening_id.is_some() {
        ready
            .pipeline
            .screen_for_key(bytes, &request.submission)
            .await?
    } else {
        ready.pipeline.screen(bytes, &request.submission).await?
    };
    if !screened.created {
        // A retried Idempotency-Key: answer what was recorded the first time, which is
        // what its reports and quarantine say, even if banks changed since.
        screened.record = stored_record(ready, &screened.screening_id).await?;
    }
    if screened.cached {
        state.inner.metrics.cache_hits.inc();
    }
    let verdict = screened.record.verdict;
    tracing::info!(screening = %screened.screening_id, %verdict, caller = %caller.name, "screened");
    state.inner.metrics.observe_verdict(verdict.as_str());
    Ok(Json(screened.response()).into_response())
}

/// Screen a title or description with no image (see [`crate::screening::text_only`]).
async fn screen_words(
    state: &AppState,
    ready: &Ready,
    caller: &Caller,
    submission: &Submission,
) -> Result<Response, ApiError> {
    use crate::screening::text_only::{self, Outcome};
    let bound_to_request = submission.screening_id.is_some();
    let (verdict, response, screening_id) =
        match text_only::screen(&ready.pipeline, submission, bound_to_request).await? {
            Outcome::Redecided(mut screened) => {
                if !screened.created {
                    screened.record = stored_record(ready, &screened.screening_id).await?;
                }
                let response = Json(screened.response()).into_response();
                (screened.record.verdict, response, screened.screening_id)
            }
            Outcome::WordsOnly { response, .. } => {
                let verdict = response.record.verdict;
                let id = response.screening_id.clone();
                (verdict, Json(response).into_response(), id)
            }
        };
    tracing::info!(screening = %screening_id, %verdict, caller = %caller.name, "screened words");
    state.inner.metrics.observe_verdict(verdict.as_str());
    Ok(response)
}

/// The record stored for `screening_id`, as answered when it was made.
async fn stored_record(ready: &Ready, screening_id: &str) -> Result<ScreeningRecord, ApiError> {
    Ok(store::read_record(ready.store.as_ref(), screening_id).await?)
}

/// A stored screening: its record as answered then, with when and for which artwork.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct StoredScreening {
    #[serde(flatten)]
    #[schema(value_type = ScreeningRecord)]
    record: serde_json::Value,
    screening_id: String,
    artwork_id: Option<String>,
    created_at: String,
}

/// One screening by id.
#[utoipa::path(get, path = "/v1/screenings/{id}", tag = "screening",
    params(("id" = String, Path)),
    responses((status = 200, body = StoredScreening), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn get_screening(
    ServiceToken { ready, .. }: ServiceToken,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<StoredScreening>, ApiError> {
    let row = ready
        .store
        .get_screening(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no screening {id}")))?;
    Ok(Json(StoredScreening {
        record: row.facts.record,
        screening_id: row.id,
        artwork_id: row.facts.artwork_id,
        created_at: row.created_at.to_rfc3339(),
    }))
}

/// An artwork's state and latest verdict.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ArtworkView {
    artwork_id: String,
    owner_id: Option<String>,
    status: crate::store::ArtworkStatus,
    verdict: Option<crate::screening::policy::Verdict>,
    screening_id: Option<String>,
    updated_at: String,
}

/// The latest state of one artwork.
#[utoipa::path(get, path = "/v1/artworks/{artwork_id}", tag = "screening",
    params(("artwork_id" = String, Path)),
    responses((status = 200, body = ArtworkView), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn get_artwork(
    ServiceToken { ready, .. }: ServiceToken,
    UrlPath(artwork_id): UrlPath<String>,
) -> Result<Json<ArtworkView>, ApiError> {
    let artwork = ready
        .store
        .get_artwork(&artwork_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no artwork {artwork_id}")))?;
    let latest = ready.store.latest_for_artwork(&artwork_id).await?;
    Ok(Json(ArtworkView {
        artwork_id: artwork.artwork_id,
        owner_id: artwork.owner_id,
        status: artwork.status,
        verdict: latest.map(|s| s.facts.verdict),
        screening_id: artwork.latest_screening_id,
        updated_at: artwork.updated_at.to_rfc3339(),
    }))
}
