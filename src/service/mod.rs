//! `coverguard serve`: the synchronous screening API the upload pipeline calls.
//!
//! The listener opens at once; the model, ONNX Runtime, store and banks load in
//! the background, and until they have, `/readyz` and every API call answer 503.
//! The caller publishes only on HTTP 200 with `verdict: "allow"`: every failure
//! path is an error response ([`error::ApiError`]), never an allow.

pub mod context;
pub mod error;
pub mod metrics;
pub mod outbox;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::act::quarantine::{LocalVault, QuarantineKey, QuarantineVault};
use crate::act::report as report_payload;
use crate::act::report::{ReportSink, WebhookConfig, WebhookSecret, WebhookSink};
use crate::bank_index::{BankIndex, SharedBankIndex};
use crate::classify::{Detection, Detector, DetectorOptions};
use crate::config::ServiceConfig;
use crate::decide::{Policy, Verdict};
use crate::fetch::{HttpFetcher, HttpOptions};
use crate::provision::{self, Cache};
use crate::scheduler::Scheduler;
use crate::screen::{analyse, build_record, ScreenError};
use crate::store::{
    self, ArtworkStatus, QuarantineWrite, ReportWrite, ReviewWrite, ScreeningWrite, Store,
    TokenRole,
};
use context::ScreenContext;
use error::ApiError;
use metrics::{SchedulerReading, ServiceMetrics};
use outbox::OutboxWorker;

/// Everything that exists only once start-up loading has finished.
pub struct Ready {
    pub store: Arc<dyn Store>,
    pub scheduler: Scheduler,
    pub vault: Arc<dyn QuarantineVault>,
    pub policy: Policy,
    pub http: HttpFetcher,
    pub banks: SharedBankIndex,
    /// Wakes the report outbox after a screening wrote a report.
    pub outbox: Arc<tokio::sync::Notify>,
}

impl Ready {
    /// The current bank index; the version is checked against the store first,
    /// so a bank change made through any instance is seen by the next screening.
    async fn banks(&self) -> Result<Arc<BankIndex>, ApiError> {
        self.banks.refresh(self.store.as_ref()).await?;
        Ok(self.banks.current())
    }
}

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: ServiceConfig,
    ready: OnceLock<Ready>,
    load_error: OnceLock<String>,
    metrics: Arc<ServiceMetrics>,
    /// Set on shutdown: background tasks (the outbox) flush and stop.
    shutdown: tokio::sync::watch::Sender<bool>,
    outbox_task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl AppState {
    pub fn new(config: ServiceConfig) -> Self {
        AppState {
            inner: Arc::new(Inner {
                config,
                ready: OnceLock::new(),
                load_error: OnceLock::new(),
                metrics: Arc::new(ServiceMetrics::new()),
                shutdown: tokio::sync::watch::channel(false).0,
                outbox_task: std::sync::Mutex::new(None),
            }),
        }
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.inner.config
    }

    fn ready(&self) -> Result<&Ready, ApiError> {
        self.inner.ready.get().ok_or_else(|| {
            let why = self
                .inner
                .load_error
                .get()
                .map_or("still loading", |e| e.as_str());
            ApiError::unavailable("not_ready", format!("coverguard is not ready: {why}"))
        })
    }

    /// Load the model, runtime, store, vault and banks; then mark ready.
    pub async fn load(&self) -> anyhow::Result<()> {
        let result = self.load_inner().await;
        if let Err(e) = &result {
            let _ = self.inner.load_error.set(format!("{e:#}"));
        }
        result
    }

    async fn load_inner(&self) -> anyhow::Result<()> {
        use anyhow::Context;
        let config = &self.inner.config;
        let store = store::open(&config.database_url())
            .await
            .context("opening the store")?;
        ensure_tokens(store.as_ref(), config).await?;

        let manifest = provision::manifest()?;
        let policy = Policy::for_model(config.policy_file.as_deref(), &manifest.model)?;
        let scheduler_config = config.scheduler.clone();
        let intra_threads = config.intra_threads;
        let scheduler = tokio::task::spawn_blocking(move || -> anyhow::Result<Scheduler> {
            let cache = Cache::from_env()?;
            let provisioned = provision::provision(&cache, None)?;
            let detectors = (0..scheduler_config.workers.max(1))
                .map(|_| Detector::load(&provisioned, &DetectorOptions { intra_threads }))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Scheduler::start(detectors, &scheduler_config))
        })
        .await??;

        let key = quarantine_key(config)?;
        let vault = LocalVault::open(config.quarantine_dir(), key)
            .context("opening the quarantine directory")?;
        let banks = SharedBankIndex::load(store.as_ref())
            .await
            .context("loading the banks")?;
        let sinks = config
            .webhooks
            .iter()
            .enumerate()
            .map(|(i, w)| {
                WebhookSink::new(WebhookConfig {
                    name: format!("webhook-{i}"),
                    url: w.url.clone(),
                    secret: w
                        .secret
                        .as_ref()
                        .map(|s| WebhookSecret::new(s.as_bytes().to_vec())),
                    timeout: WebhookConfig::DEFAULT_TIMEOUT,
                })
                .map(|sink| Arc::new(sink) as Arc<dyn ReportSink>)
            })
            .collect::<Result<Vec<_>, _>>()
            .context("configuring webhooks")?;
        let outbox = OutboxWorker::new(
            Arc::clone(&store),
            sinks,
            outbox::DEFAULT_BATCH,
            outbox::DEFAULT_POLL_INTERVAL,
        );
        let http = HttpFetcher::new(HttpOptions {
            timeout: Duration::from_secs(config.url_timeout_secs),
            ..HttpOptions::default()
        })?;
        let ready = Ready {
            store,
            scheduler,
            vault: Arc::new(vault),
            policy,
            http,
            banks,
            outbox: outbox.waker(),
        };
        let metrics = Arc::clone(&self.inner.metrics);
        let stats = ready.scheduler.stats_handle();
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
        tracing::info!("ready");
        Ok(())
    }
}

/// The configured key, or (local development) one generated once into the data dir.
fn quarantine_key(config: &ServiceConfig) -> anyhow::Result<QuarantineKey> {
    if let Some(encoded) = &config.quarantine_key {
        return Ok(QuarantineKey::parse(encoded)?);
    }
    let path = config.data_dir.join("quarantine.key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Ok(QuarantineKey::parse(text.trim())?);
    }
    std::fs::create_dir_all(&config.data_dir)?;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness for a quarantine key: {e}"))?;
    write_private(&path, hex::encode(bytes).as_bytes())?;
    tracing::warn!(path = %path.display(), "generated a quarantine key for local development; configure quarantine_key in production");
    Ok(QuarantineKey::from_bytes(bytes))
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Configured tokens are stored (hashed); with none configured and none stored,
/// one service and one admin token are generated and printed once.
async fn ensure_tokens(store: &dyn Store, config: &ServiceConfig) -> anyhow::Result<()> {
    for t in &config.tokens {
        let role = if t.role == "admin" {
            TokenRole::Admin
        } else {
            TokenRole::Service
        };
        store
            .put_token(&token_hash(&t.token), &t.name, role)
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

async fn authenticate(
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
    let role = ready.store.token_role(&hash).await?.ok_or_else(|| {
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

pub fn router(state: AppState) -> Router {
    let body_limit = state.config().max_bytes + 64 * 1024;
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/v1/screen", post(screen))
        .route("/v1/screenings/{id}", get(get_screening))
        .route("/v1/artworks/{artwork_id}", get(get_artwork))
        .route("/v1/accounts/{owner_id}/takedown", post(takedown))
        // Axum's own limit answers 413 past the cap; the decoder checks it again.
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        state.inner.metrics.render(),
    )
        .into_response()
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.ready() {
        Ok(ready) => match ready.store.ping().await {
            Ok(()) => (StatusCode::OK, "ready").into_response(),
            Err(e) => ApiError::from(e).into_response(),
        },
        Err(e) => e.into_response(),
    }
}

/// Query parameters of a raw-bytes screening request.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScreenQuery {
    artwork_id: Option<String>,
    owner_id: Option<String>,
    surface: Option<String>,
    #[serde(default)]
    owner_is_minor: bool,
    playlist_track_count: Option<i64>,
    deadline_ms: Option<u64>,
}

/// JSON body of a by-URL screening request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScreenJson {
    url: String,
    artwork_id: Option<String>,
    owner_id: Option<String>,
    #[serde(default)]
    context: ScreenContext,
    deadline_ms: Option<u64>,
}

struct ScreenRequest {
    source: String,
    url: Option<String>,
    bytes: Option<Bytes>,
    artwork_id: Option<String>,
    owner_id: Option<String>,
    context: ScreenContext,
    deadline_ms: Option<u64>,
}

async fn screen(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Query<serde_json::Map<String, serde_json::Value>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let ready = state.ready()?;
    let caller = authenticate(ready, &headers, TokenRole::Service).await?;
    let request = parse_screen_request(&headers, query.0, body)?;
    let deadline_ms = request
        .deadline_ms
        .map_or(state.config().request_deadline_ms, |d| {
            d.min(state.config().request_deadline_ms)
        });
    match tokio::time::timeout(
        Duration::from_millis(deadline_ms),
        screen_inner(&state, ready, &caller, request),
    )
    .await
    {
        Ok(result) => result.map(|v| Json(v).into_response()),
        Err(_) => Err(ApiError::deadline(deadline_ms)),
    }
}

fn parse_screen_request(
    headers: &HeaderMap,
    query: serde_json::Map<String, serde_json::Value>,
    body: Bytes,
) -> Result<ScreenRequest, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/json") {
        let parsed: ScreenJson = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("JSON body: {e}")))?;
        return Ok(ScreenRequest {
            source: parsed.url.clone(),
            url: Some(parsed.url),
            bytes: None,
            artwork_id: parsed.artwork_id,
            owner_id: parsed.owner_id,
            context: parsed.context,
            deadline_ms: parsed.deadline_ms,
        });
    }
    if !content_type.starts_with("image/") && content_type != "application/octet-stream" {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "Content-Type {content_type:?}: send image/* bytes or application/json with a url"
            ),
        ));
    }
    // Query values arrive as strings; re-read them with their types.
    let typed: ScreenQuery = serde_json::from_value(serde_json::Value::Object(
        query
            .into_iter()
            .map(|(k, v)| {
                let v = match (&*k, v) {
                    ("owner_is_minor", serde_json::Value::String(s)) => {
                        serde_json::Value::Bool(s == "true" || s == "1")
                    }
                    ("playlist_track_count" | "deadline_ms", serde_json::Value::String(s)) => s
                        .parse::<i64>()
                        .map(serde_json::Value::from)
                        .unwrap_or(serde_json::Value::String(s)),
                    (_, v) => v,
                };
                (k, v)
            })
            .collect(),
    ))
    .map_err(|e| ApiError::bad_request(format!("query: {e}")))?;
    Ok(ScreenRequest {
        source: typed
            .artwork_id
            .clone()
            .map_or_else(|| "upload".to_string(), |a| format!("upload:{a}")),
        url: None,
        bytes: Some(body),
        artwork_id: typed.artwork_id,
        owner_id: typed.owner_id,
        context: ScreenContext {
            surface: typed.surface,
            owner_is_minor: typed.owner_is_minor,
            playlist_track_count: typed.playlist_track_count,
        },
        deadline_ms: typed.deadline_ms,
    })
}

async fn screen_inner(
    state: &AppState,
    ready: &Ready,
    caller: &Caller,
    request: ScreenRequest,
) -> Result<serde_json::Value, ApiError> {
    let config = state.config();
    let limits = config.limits();
    let bytes = match (&request.bytes, &request.url) {
        (Some(b), _) => b.clone(),
        (None, Some(url)) => Bytes::from(
            ready
                .http
                .get(url, limits.max_bytes)
                .await
                .map_err(ScreenError::from)?,
        ),
        (None, None) => return Err(ApiError::bad_request("no image")),
    };
    let decode_input = bytes.clone();
    let analysed = tokio::task::spawn_blocking(move || analyse(&decode_input, &limits))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("analysis task failed: {e}"),
            )
        })??;
    let analysed = Arc::new(analysed);

    let banks = ready.banks().await?;
    let policy = banks.policy_with_banks(&request.context.policy(&ready.policy));
    let policy_version = policy.version();
    let model = ready.scheduler.model_id().to_string();

    // Identical bytes under the same model, policy and banks: no inference.
    let cached = ready
        .store
        .cached_verdict(
            &analysed.exact.sha256,
            &model,
            &policy_version,
            banks.banks_version(),
        )
        .await?;
    let detections: Vec<Detection> = match cached
        .and_then(|row| serde_json::from_value(row.record["detections"].clone()).ok())
    {
        Some(d) => {
            state.inner.metrics.cache_hits.inc();
            d
        }
        None => ready.scheduler.classify(Arc::clone(&analysed)).await?,
    };

    let mut record = build_record(
        &request.source,
        &analysed,
        detections,
        banks.bank_set(),
        &policy,
        &model,
    );
    if let Some(reason) = request.context.strict_reason() {
        record.reasons.push(format!("strict profile: {reason}"));
    }
    let taken_down = match &request.owner_id {
        Some(owner) => ready.store.is_taken_down(owner).await?,
        None => false,
    };
    if taken_down && record.verdict == Verdict::Allow {
        record.verdict = Verdict::Review;
        record
            .reasons
            .insert(0, "review: the owner's account was taken down".into());
    }

    let screening_id = store::new_id();
    let quarantine = record.verdict == Verdict::Block
        || (config.quarantine_on_review && record.verdict == Verdict::Review);
    let retention =
        std::time::SystemTime::now() + Duration::from_secs(86_400 * config.retention_days as u64);
    let quarantine_write = if quarantine {
        // The encrypted copy exists before the row that points at it.
        let key = ready
            .vault
            .put(&analysed.exact.sha256, &bytes, retention)
            .await
            .map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "quarantine",
                    e.to_string(),
                )
            })?;
        Some(QuarantineWrite {
            object_key: key.sha256().to_string(),
            retention_until: chrono::DateTime::<chrono::Utc>::from(retention),
        })
    } else {
        None
    };
    let review = (record.verdict != Verdict::Allow).then(|| ReviewWrite {
        priority: review_priority(&record),
        reason: record.reasons.first().cloned(),
    });
    let report = (record.verdict == Verdict::Block)
        .then(|| hit_report(&screening_id, &request, &record))
        .transpose()?;
    let artwork_status = match record.verdict {
        Verdict::Allow => ArtworkStatus::Published,
        Verdict::Review if !quarantine => ArtworkStatus::Held,
        _ => ArtworkStatus::Quarantined,
    };
    let record_json = serde_json::to_value(&record).expect("records serialise");
    let recorded = ready
        .store
        .record_screening(&ScreeningWrite {
            id: Some(screening_id.clone()),
            artwork_id: request.artwork_id.clone(),
            owner_id: request.owner_id.clone(),
            sha256: record.sha256.clone(),
            md5: record.md5.clone(),
            pdq: Some(record.pdq.hash.clone()),
            pdq_quality: Some(record.pdq.quality as i64),
            verdict: record.verdict.as_str().to_string(),
            model: model.clone(),
            policy_version,
            banks_version: banks.banks_version(),
            record: record_json.clone(),
            context: serde_json::to_value(&request.context).expect("context serialises"),
            artwork_status,
            quarantine: quarantine_write,
            review,
            report,
            created_at: None,
        })
        .await?;
    tracing::info!(screening = %recorded.screening_id, verdict = %record.verdict, caller = %caller.name, "screened");
    state.inner.metrics.observe_verdict(record.verdict.as_str());
    if recorded.report_id.is_some() {
        ready.outbox.notify_one();
    }

    let mut out = record_json;
    let obj = out.as_object_mut().expect("record is an object");
    obj.insert("screening_id".into(), recorded.screening_id.into());
    obj.insert("quarantined".into(), recorded.quarantined.into());
    if let Some(id) = recorded.report_id {
        obj.insert("report_id".into(), id.into());
    }
    Ok(out)
}

/// Bank hits first (by severity later), then by the highest explicit score.
fn review_priority(record: &crate::screen::ScreeningRecord) -> i64 {
    let bank_hit = !record.matches.is_empty();
    let top = record
        .detections
        .iter()
        .map(|d| d.score)
        .fold(0f32, f32::max);
    (if bank_hit { 1_000_000 } else { 0 }) + (top * 1000.0) as i64
}

fn hit_report(
    screening_id: &str,
    request: &ScreenRequest,
    record: &crate::screen::ScreeningRecord,
) -> Result<ReportWrite, ApiError> {
    let hit = report_payload::HitReport {
        schema: "coverguard.hit.v1".into(),
        screening_id: screening_id.to_string(),
        artwork_id: request.artwork_id.clone(),
        owner_id: request.owner_id.clone(),
        sha256: record.sha256.clone(),
        md5: record.md5.clone(),
        pdq: Some(report_payload::PdqSummary {
            hash: record.pdq.hash.clone(),
            quality: record.pdq.quality,
        }),
        verdict: record.verdict.as_str().into(),
        reasons: record.reasons.clone(),
        matches: record
            .matches
            .iter()
            .map(|m| report_payload::ReportMatch {
                bank: m.bank.clone(),
                bank_category: None,
                signal: m.signal.as_str().into(),
                distance: m.distance,
                entry: m.entry.clone(),
                transform: m.transform.map(str::to_string),
            })
            .collect(),
        detections: report_payload::summarise_detections(
            record
                .detections
                .iter()
                .map(|d| (d.label.as_str(), d.score)),
        ),
        uploaded_at: report_payload::rfc3339_utc(std::time::SystemTime::now()),
        source: report_payload::ReportSource {
            surface: request.context.surface.clone(),
            url: request.url.clone(),
            publicly_available: false,
        },
    };
    Ok(ReportWrite {
        idempotency_key: report_payload::idempotency_key(
            report_payload::ReportKind::Hit,
            screening_id,
        ),
        kind: report_payload::ReportKind::Hit.as_str().into(),
        payload: serde_json::to_value(&hit).map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "report", e.to_string())
        })?,
    })
}

async fn get_screening(
    State(state): State<AppState>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let ready = state.ready()?;
    authenticate(ready, &headers, TokenRole::Service).await?;
    let row = ready
        .store
        .get_screening(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no screening {id}")))?;
    let mut out = row.record;
    if let Some(obj) = out.as_object_mut() {
        obj.insert("screening_id".into(), row.id.into());
        obj.insert(
            "artwork_id".into(),
            serde_json::to_value(row.artwork_id).unwrap_or_default(),
        );
        obj.insert("created_at".into(), row.created_at.to_rfc3339().into());
    }
    Ok(Json(out))
}

async fn get_artwork(
    State(state): State<AppState>,
    headers: HeaderMap,
    UrlPath(artwork_id): UrlPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let ready = state.ready()?;
    authenticate(ready, &headers, TokenRole::Service).await?;
    let artwork = ready
        .store
        .get_artwork(&artwork_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no artwork {artwork_id}")))?;
    let latest = ready.store.latest_for_artwork(&artwork_id).await?;
    Ok(Json(serde_json::json!({
        "artwork_id": artwork.artwork_id,
        "owner_id": artwork.owner_id,
        "status": artwork.status,
        "verdict": latest.as_ref().map(|s| s.verdict.clone()),
        "screening_id": artwork.latest_screening_id,
        "updated_at": artwork.updated_at.to_rfc3339(),
    })))
}

async fn takedown(
    State(state): State<AppState>,
    headers: HeaderMap,
    UrlPath(owner_id): UrlPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let ready = state.ready()?;
    let caller = authenticate(ready, &headers, TokenRole::Admin).await?;
    let changed = ready
        .store
        .takedown_account(&owner_id, &caller.name)
        .await?;
    Ok(Json(serde_json::json!({
        "owner_id": owner_id,
        "quarantined_artworks": changed.iter().map(|a| a.artwork_id.clone()).collect::<Vec<_>>(),
    })))
}

/// Bind, start loading, and serve until `shutdown` resolves.
pub async fn serve(
    config: ServiceConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr: SocketAddr = config
        .listen
        .parse()
        .map_err(|e| anyhow::anyhow!("listen address {:?}: {e}", config.listen))?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "listening");
    serve_on(listener, config, shutdown).await
}

/// Serve on an already bound listener (tests bind port 0).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    config: ServiceConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = AppState::new(config);
    let loader = state.clone();
    tokio::spawn(async move {
        if let Err(e) = loader.load().await {
            tracing::error!("start-up failed: {e:#}");
        }
    });
    axum::serve(listener, router(state.clone()))
        .with_graceful_shutdown(shutdown)
        .await?;
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
