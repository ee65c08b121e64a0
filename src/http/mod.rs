//! `coverguard serve`: the synchronous screening API the upload pipeline calls, the reviewer
//! console's API and pages, and the edge they sit behind.
//!
//! The listener opens at once; the model, ONNX Runtime, store and banks load in
//! the background, and until they have, `/readyz` and every API call answer 503.
//! The caller publishes only on HTTP 200 with `verdict: "allow"`: every failure
//! path is an error response ([`error::ApiError`]), never an allow.
//!
//! The edge: accepting connections ([`listener`]), request ids, trace spans and the panic
//! guard ([`edge`]), admitting requests, token before body ([`admission`]), API tokens in
//! memory ([`tokens`]), the console login throttle ([`login_throttle`]), and giving memory
//! back after bursts ([`memory`]). One file per API area: screening and records here,
//! [`banks`], [`review`] (the console's API), [`session`], [`console`] (its pages),
//! [`metrics`], [`openapi`].

pub mod admission;
pub mod appeals;
mod audit_csv;
pub mod auth;
pub mod banks;
pub mod console;
pub mod edge;
pub mod error;
pub mod listener;
pub mod login_throttle;
pub mod memory;
pub mod metrics;
pub mod openapi;
pub mod reports;
pub mod review;
pub mod session;
pub mod statements;
pub mod tokens;
pub mod transparency;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Path as UrlPath, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::app::{write_private, Loaded};
use crate::config::ServiceConfig;
use crate::fetch::HttpFetcher;
use crate::http::tokens::TokenCache;
use crate::screening::analyse::ScreenError;
use crate::screening::context::ScreenContext;
use crate::screening::pipeline::{Pipeline, ScreeningResponse, Submission};
use crate::screening::record::ScreeningRecord;
use crate::store::{self, Store, TokenRole};
use auth::{AdminToken, ServiceToken};
use error::{ApiError, ErrorBody};
use metrics::{SchedulerReading, ServiceMetrics};

/// Everything that exists only once start-up loading has finished.
pub struct Ready {
    pub pipeline: Arc<Pipeline>,
    pub store: Arc<dyn Store>,
    pub http: HttpFetcher,
    /// The active API tokens, so a bearer token is checked without a store query.
    pub tokens: Arc<TokenCache>,
}

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: ServiceConfig,
    ready: OnceLock<Ready>,
    /// Why the last start-up attempt failed; start-up is retried until it succeeds.
    load_error: std::sync::Mutex<Option<String>>,
    metrics: Arc<ServiceMetrics>,
    /// Set on shutdown: background tasks (the outbox) flush and stop.
    shutdown: tokio::sync::watch::Sender<bool>,
    outbox_task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Becomes true once loading has finished, for whoever waits on start-up.
    loaded: tokio::sync::watch::Sender<bool>,
}

impl AppState {
    pub fn new(config: ServiceConfig) -> Self {
        AppState {
            inner: Arc::new(Inner {
                config,
                ready: OnceLock::new(),
                load_error: std::sync::Mutex::new(None),
                metrics: Arc::new(ServiceMetrics::new()),
                shutdown: tokio::sync::watch::channel(false).0,
                outbox_task: std::sync::Mutex::new(None),
                loaded: tokio::sync::watch::channel(false).0,
            }),
        }
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.inner.config
    }

    /// Turns true once start-up loading has finished and requests are screened.
    pub fn watch_loaded(&self) -> tokio::sync::watch::Receiver<bool> {
        self.inner.loaded.subscribe()
    }

    /// The bearer token's caller, if it has the `needed` role; from memory, no store query.
    pub(crate) fn bearer_role(
        &self,
        headers: &HeaderMap,
        needed: TokenRole,
    ) -> Result<Caller, ApiError> {
        check_bearer(self.ready()?, headers, needed)
    }

    fn ready(&self) -> Result<&Ready, ApiError> {
        self.inner.ready.get().ok_or_else(|| {
            let why = self
                .inner
                .load_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .map_or_else(
                    || "still loading".to_string(),
                    |e| format!("{e} (retrying)"),
                );
            ApiError::unavailable("not_ready", format!("coverguard is not ready: {why}"))
        })
    }

    /// Load the model, runtime, store, vault and banks; then mark ready.
    pub async fn load(&self) -> anyhow::Result<()> {
        let result = self.load_inner().await;
        *self
            .inner
            .load_error
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = result.as_ref().err().map(|e| format!("{e:#}"));
        result
    }

    /// [`AppState::load`] until it succeeds or the service shuts down: a store (or mount)
    /// that is not up yet when the process starts must not leave it unready for good.
    /// Meanwhile every request is answered 503 `not_ready`, never screened.
    pub async fn load_until_ready(&self) {
        let mut shutdown = self.inner.shutdown.subscribe();
        let mut delay = LOAD_RETRY_FIRST;
        loop {
            match self.load().await {
                Ok(()) => return,
                Err(e) => tracing::error!(
                    retry_in_ms = delay.as_millis() as u64,
                    "start-up failed: {e:#}"
                ),
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.changed() => return,
            }
            delay = (delay * 2).min(LOAD_RETRY_MAX);
        }
    }

    async fn load_inner(&self) -> anyhow::Result<()> {
        use anyhow::Context;
        let config = &self.inner.config;
        let store = store::open(&config.database_url())
            .await
            .context("opening the store")?;
        ensure_tokens(store.as_ref(), config).await?;
        let tokens = Arc::new(TokenCache::default());
        tokens
            .refresh(store.as_ref())
            .await
            .context("reading the API tokens")?;

        let metrics = Arc::clone(&self.inner.metrics);
        let observe: crate::screening::scheduler::BatchObserver =
            Arc::new(move |size, elapsed| metrics.observe_batch(size, elapsed));
        let Loaded {
            pipeline,
            http,
            outbox,
        } = crate::app::load(config, Arc::clone(&store), observe).await?;
        Arc::clone(&tokens).spawn_refresh(Arc::clone(&store), self.inner.shutdown.subscribe());
        let ready = Ready {
            pipeline,
            store,
            http,
            tokens,
        };
        let metrics = Arc::clone(&self.inner.metrics);
        let stats = ready.pipeline.scheduler.stats_handle();
        metrics
            .watch_scheduler(move || Some(SchedulerReading::from(stats.as_ref())))
            .context("registering scheduler metrics")?;
        let task = outbox.spawn(self.inner.shutdown.subscribe());
        *self
            .inner
            .outbox_task
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(task);
        if self.inner.ready.set(ready).is_err() {
            anyhow::bail!("loaded twice");
        }
        self.inner.loaded.send_replace(true);
        tracing::info!("ready");
        Ok(())
    }
}

/// First and longest wait between start-up attempts.
const LOAD_RETRY_FIRST: Duration = Duration::from_millis(500);
const LOAD_RETRY_MAX: Duration = Duration::from_secs(30);

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Configured tokens are stored (hashed); with none configured and none stored,
/// one service and one admin token are generated and printed once.
async fn ensure_tokens(store: &dyn Store, config: &ServiceConfig) -> anyhow::Result<()> {
    for t in &config.tokens {
        store
            .put_token(&token_hash(&t.token), &t.name, t.role)
            .await?;
    }
    // The marker file (not the store) says whether tokens were generated before:
    // they are printed once and never again.
    if config.tokens.is_empty() {
        let marker = config.data_dir.join("tokens.generated");
        if !marker.exists() {
            std::fs::create_dir_all(&config.data_dir)?;
            let mut lines = String::new();
            for (name, role) in [
                ("local-service", TokenRole::Service),
                ("local-admin", TokenRole::Admin),
            ] {
                let mut bytes = [0u8; 24];
                getrandom::fill(&mut bytes)
                    .map_err(|e| anyhow::anyhow!("no randomness for a token: {e}"))?;
                let token = format!("cg_{}", hex::encode(bytes));
                store.put_token(&token_hash(&token), name, role).await?;
                lines.push_str(&format!("{name} ({role}): {token}\n"));
            }
            write_private(&marker, b"tokens were generated and printed once\n")?;
            eprintln!(
                "No API tokens configured; generated these (shown once, stored hashed):\n{lines}"
            );
        }
    }
    Ok(())
}

/// A caller authenticated by bearer token.
pub struct Caller {
    pub name: String,
    pub role: TokenRole,
}

pub(crate) fn check_bearer(
    ready: &Ready,
    headers: &HeaderMap,
    needed: TokenRole,
) -> Result<Caller, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a bearer token is required",
            )
        })?;
    // Only the token's hash is looked up, so lookup timing says nothing about the token.
    let hash = token_hash(token);
    let role = ready.tokens.role(&hash).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "unknown or revoked token",
        )
    })?;
    let allowed = match needed {
        TokenRole::Service => true,
        TokenRole::Admin => role == TokenRole::Admin,
    };
    if !allowed {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this needs the {needed} role; the token has {role}"),
        ));
    }
    Ok(Caller {
        name: format!("token:{}", &hash[..12]),
        role,
    })
}

/// Largest screening body read: an image of `max_bytes` plus room for the rest of a request.
fn body_limit(config: &ServiceConfig) -> usize {
    admission::BodyLimit::Screening.bytes(config)
}

pub fn router(state: AppState) -> Router {
    let body_limit = body_limit(state.config());
    let routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/v1/screen", post(screen))
        .route("/v1/screenings/{id}", get(get_screening))
        .route("/v1/artworks/{artwork_id}", get(get_artwork))
        .route("/v1/reports", post(reports::report))
        .route("/v1/appeals", post(appeals::appeal))
        .route("/v1/statements", get(statements::export))
        .route("/v1/transparency", get(transparency::counts))
        .route(
            "/v1/accounts/{owner_id}/takedown",
            post(takedown).delete(review::users::lift_takedown),
        )
        .route("/v1/banks", get(banks::list_banks).post(banks::create_bank))
        .route("/v1/banks/{name}", delete(banks::delete_bank))
        .route(
            "/v1/banks/{name}/entries",
            get(banks::list_entries).post(banks::add_entries),
        )
        // A hash list is far larger than an image: this route has its own limit.
        .route(
            "/v1/banks/{name}/import",
            post(banks::import_entries)
                .layer(DefaultBodyLimit::max(state.config().max_import_bytes)),
        )
        .route("/v1/banks/{name}/retro-match", post(banks::retro_match))
        .route(
            "/v1/banks/{name}/entries/{signal}/{hash}",
            delete(banks::remove_entry).patch(banks::patch_entry),
        )
        .route(
            "/v1/banks/{name}/entry-ids/{id}",
            patch(banks::patch_entry_id),
        )
        .route("/v1/review/login", post(review::login::login))
        .route("/v1/review/logout", post(review::login::logout))
        .route("/v1/review/me", get(review::login::me))
        .route(
            "/v1/review/me/settings",
            axum::routing::put(review::login::put_settings),
        )
        .route("/v1/review/queue", get(review::queue::queue))
        .route("/v1/review/items/{id}", get(review::item::item))
        .route("/v1/review/items/{id}/claim", post(review::queue::claim))
        .route(
            "/v1/review/items/{id}/unclaim",
            post(review::queue::unclaim),
        )
        .route("/v1/review/items/{id}/image", get(review::item::image))
        .route(
            "/v1/review/items/{id}/decision",
            post(review::decisions::decide),
        )
        .route("/v1/review/appeals", get(review::appeals::list))
        .route("/v1/review/appeals/{id}", get(review::appeals::appeal))
        .route(
            "/v1/review/appeals/{id}/decision",
            post(review::appeals::decide),
        )
        .route("/v1/review/stats", get(review::dashboard::stats))
        .route("/v1/review/audit", get(review::audit_log::audit_log))
        .route(
            "/v1/review/audit/export",
            get(review::audit_log::audit_export),
        )
        .route(
            "/v1/users",
            get(review::users::list_users).post(review::users::put_user),
        )
        .route("/v1/users/{username}", delete(review::users::disable_user))
        .route(
            "/v1/users/{username}/password",
            post(review::users::reset_password),
        )
        .route("/console", get(console::page))
        .route("/console/assets/console.js", get(console::script))
        .route("/console/assets/console.css", get(console::stylesheet))
        .route("/console/{*page}", get(console::page))
        .route("/openapi.json", get(openapi::serve_document))
        // Axum's own limit answers 413 past the cap; the decoder checks it again.
        .layer(DefaultBodyLimit::max(body_limit))
        // Token before body: see crate::http::admission.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admission::admit,
        ))
        .layer(axum::middleware::from_fn(error::json_rejections))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe_request,
        ))
        .with_state(state);
    crate::http::edge::wrap(routes)
}

/// Counts every answered request by route template and status, its latency, and
/// error responses by kind.
async fn observe_request(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let metrics = &state.inner.metrics;
    metrics.observe_request(&route, response.status().as_u16(), started.elapsed());
    if let Some(error::ErrorKind(kind)) = response.extensions().get::<error::ErrorKind>() {
        metrics.observe_error(kind);
    }
    response
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = String)))]
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// Prometheus metrics: requests, verdicts, latency, queue depth, batch sizes, inference time.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, body = String, content_type = "text/plain")))]
pub(crate) async fn metrics_text(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        state.inner.metrics.render(),
    )
        .into_response()
}

/// Readiness: 200 once the model, ONNX Runtime, store and banks are loaded and the
/// store answers; 503 before.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = String), (status = 503, body = ErrorBody)))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    match state.ready() {
        Ok(ready) => match ready.store.ping().await {
            Ok(()) => (StatusCode::OK, "ready").into_response(),
            Err(e) => ApiError::from(e).into_response(),
        },
        Err(e) => e.into_response(),
    }
}

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
    token: ServiceToken,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let started = std::time::Instant::now();
    let ready = state.ready()?;
    // The token was checked (in memory) before anything was read; this names the caller.
    let caller = token.caller;
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
    match tokio::time::timeout(remaining, screen_inner(&state, ready, &caller, request)).await {
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
fn content_type(headers: &HeaderMap) -> String {
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
    State(state): State<AppState>,
    _token: ServiceToken,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<StoredScreening>, ApiError> {
    let ready = state.ready()?;
    let row = ready
        .store
        .get_screening(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no screening {id}")))?;
    Ok(Json(StoredScreening {
        record: row.record,
        screening_id: row.id,
        artwork_id: row.artwork_id,
        created_at: row.created_at.to_rfc3339(),
    }))
}

/// An artwork's state and latest verdict.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ArtworkView {
    artwork_id: String,
    owner_id: Option<String>,
    /// `published`, `held`, `quarantined` or `released`.
    status: String,
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
    State(state): State<AppState>,
    _token: ServiceToken,
    UrlPath(artwork_id): UrlPath<String>,
) -> Result<Json<ArtworkView>, ApiError> {
    let ready = state.ready()?;
    let artwork = ready
        .store
        .get_artwork(&artwork_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no artwork {artwork_id}")))?;
    let latest = ready.store.latest_for_artwork(&artwork_id).await?;
    Ok(Json(ArtworkView {
        artwork_id: artwork.artwork_id,
        owner_id: artwork.owner_id,
        status: artwork.status.to_string(),
        verdict: latest.map(|s| s.verdict),
        screening_id: artwork.latest_screening_id,
        updated_at: artwork.updated_at.to_rfc3339(),
    }))
}

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
    State(state): State<AppState>,
    token: AdminToken,
    UrlPath(owner_id): UrlPath<String>,
) -> Result<Json<TakedownView>, ApiError> {
    let ready = state.ready()?;
    let caller = token.caller;
    let changed = ready
        .store
        .takedown_account(&owner_id, &caller.name)
        .await?;
    Ok(Json(TakedownView {
        owner_id,
        quarantined_artworks: changed.into_iter().map(|a| a.artwork_id).collect(),
    }))
}

/// Bind (or take the socket systemd passed), start loading, and serve until `shutdown`
/// resolves; systemd is told once the service is ready.
pub async fn serve(
    config: ServiceConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = crate::http::listener::bind(&config.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "listening");
    let state = AppState::new(config);
    let mut loaded = state.watch_loaded();
    tokio::spawn(async move {
        if loaded.wait_for(|loaded| *loaded).await.is_ok() {
            crate::http::listener::notify_ready();
        }
    });
    serve_state(listener, state, shutdown).await
}

/// Serve on an already bound listener (tests bind port 0).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    config: ServiceConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_state(listener, AppState::new(config), shutdown).await
}

/// Serve `state` on `listener`: a caller that keeps [`AppState::watch_loaded`] learns
/// when start-up has finished.
pub async fn serve_state(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    state.config().check_serving()?;
    let limits = state.config().http.clone();
    let loader = state.clone();
    tokio::spawn(async move { loader.load_until_ready().await });
    crate::http::memory::spawn_trimmer(state.inner.shutdown.subscribe());
    crate::http::listener::serve(listener, router(state.clone()), &limits, shutdown).await;
    // Let the outbox flush what it is delivering before the process ends.
    let _ = state.inner.shutdown.send(true);
    let task = state
        .inner
        .outbox_task
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(task) = task {
        let _ = task.await;
    }
    Ok(())
}
