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

pub mod accounts;
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
pub mod screening;
pub mod session;
pub mod statements;
pub mod tokens;
pub mod transparency;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::Router;
use sha2::{Digest, Sha256};

use crate::app::{write_private, Loaded};
use crate::config::ServiceConfig;
use crate::fetch::HttpFetcher;
use crate::http::tokens::TokenCache;
use crate::screening::pipeline::Pipeline;
use crate::store::{self, Store, TokenRole};
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
    ready: OnceLock<Arc<Ready>>,
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
        self.shared_ready().map(|ready| &**ready)
    }

    /// The loaded service, to keep past the borrow of the state (an extractor's).
    fn shared_ready(&self) -> Result<&Arc<Ready>, ApiError> {
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
        use backon::{ExponentialBuilder, Retryable};
        let mut shutdown = self.inner.shutdown.subscribe();
        let backoff = ExponentialBuilder::default()
            .with_min_delay(LOAD_RETRY_FIRST)
            .with_max_delay(LOAD_RETRY_MAX)
            .without_max_times();
        let loaded = (|| self.load()).retry(backoff).notify(|e, delay| {
            tracing::error!(
                retry_in_ms = delay.as_millis() as u64,
                "start-up failed: {e:#}"
            )
        });
        tokio::select! {
            _ = loaded => {}
            _ = shutdown.changed() => {}
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
        if self.inner.ready.set(Arc::new(ready)).is_err() {
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
        .route("/v1/screen", post(screening::screen))
        .route("/v1/screenings/{id}", get(screening::get_screening))
        .route("/v1/artworks/{artwork_id}", get(screening::get_artwork))
        .route("/v1/reports", post(reports::report))
        .route("/v1/appeals", post(appeals::appeal))
        .route("/v1/statements", get(statements::export))
        .route("/v1/transparency", get(transparency::counts))
        .route(
            "/v1/accounts/{owner_id}/takedown",
            post(accounts::takedown).delete(review::users::lift_takedown),
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

/// Prometheus metrics in the OpenMetrics text format: requests, verdicts, latency, queue depth,
/// batch sizes, inference time.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, body = String, content_type = "application/openmetrics-text")))]
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
