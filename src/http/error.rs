//! API errors: a status, a stable kind and a message, as JSON.
//!
//! Every failure path of the screening endpoint ends here, so no internal error
//! can ever be mistaken for `allow`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::screening::analyse::ScreenError;
use crate::screening::pipeline::PipelineError;
use crate::screening::scheduler::SchedulerError;
use crate::store::StoreError;

/// The kind of an error response, attached to it for metrics.
#[derive(Clone, Copy, Debug)]
pub struct ErrorKind(pub &'static str);

/// Every error response's body.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `too_large`, `unsupported_format`, `corrupt`,
    /// `invalid_field`, `idempotency_conflict`, `overloaded`, `deadline_exceeded`,
    /// `unauthorized`, `not_ready`, …
    pub kind: String,
    /// For people: what went wrong and what to do.
    pub message: String,
    /// With `invalid_field`: the field refused, as the request spelt it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    pub retry_after_secs: Option<u64>,
    /// Answer with `Connection: close`: the request body was left unread, so the
    /// connection cannot carry another request, and a client must not reuse it.
    pub close_connection: bool,
    /// The field an `invalid_field` error is about.
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
            retry_after_secs: None,
            close_connection: false,
            field: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unavailable(kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            retry_after_secs: Some(1),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, kind, message)
        }
    }

    pub fn deadline(ms: u64) -> Self {
        ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "deadline_exceeded",
            format!("the request's deadline of {ms} ms passed before a verdict"),
        )
    }
}

/// A refused id or context field: 422 `invalid_field`, naming it.
impl From<crate::screening::context::parse::FieldError> for ApiError {
    fn from(e: crate::screening::context::parse::FieldError) -> Self {
        ApiError {
            field: Some(e.field().to_string()),
            ..ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                e.to_string(),
            )
        }
    }
}

impl From<ScreenError> for ApiError {
    fn from(e: ScreenError) -> Self {
        let kind = e.kind();
        let status = match kind {
            "too_large" => StatusCode::PAYLOAD_TOO_LARGE,
            "unsupported_format" => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "empty" | "corrupt" | "dimensions" | "decoder_panic" | "animation_budget" => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            "invalid_url" => StatusCode::BAD_REQUEST,
            "not_found" | "http_status" | "timeout" | "fetch" | "io" | "blocked_destination" => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, kind, e.to_string())
    }
}

impl From<SchedulerError> for ApiError {
    fn from(e: SchedulerError) -> Self {
        match e {
            SchedulerError::Overloaded { .. } => ApiError {
                retry_after_secs: Some(1),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "overloaded", e.to_string())
            },
            SchedulerError::Shutdown => ApiError::unavailable("shutting_down", e.to_string()),
            SchedulerError::Classify(c) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "classify", c.to_string())
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let message = e.chain();
        match e {
            StoreError::Unavailable(..) => ApiError::unavailable("store_unavailable", message),
            StoreError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "not_found", message),
            StoreError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            StoreError::Invalid(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
            }
            StoreError::Migration(..) | StoreError::Backend(..) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store", message)
            }
        }
    }
}

impl From<PipelineError> for ApiError {
    fn from(e: PipelineError) -> Self {
        match e {
            PipelineError::Screen(e) => e.into(),
            PipelineError::Scheduler(e) => e.into(),
            PipelineError::Store(e) => e.into(),
            e @ PipelineError::IdempotencyConflict { .. } => {
                ApiError::new(StatusCode::CONFLICT, "idempotency_conflict", e.to_string())
            }
            other => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                other.kind(),
                other.to_string(),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match (self.status.is_server_error(), self.kind) {
            (false, _) => {}
            // Expected states with a Retry-After, not faults: start-up, a login queue.
            (true, "not_ready") => {
                tracing::debug!(kind = self.kind, status = %self.status, "{}", self.message)
            }
            (true, "login_busy") => {
                tracing::warn!(kind = self.kind, status = %self.status, "{}", self.message)
            }
            (true, _) => {
                tracing::error!(kind = self.kind, status = %self.status, "{}", self.message)
            }
        }
        let body = Json(ErrorBody {
            error: ErrorDetail {
                kind: self.kind.to_string(),
                message: self.message,
                field: self.field,
            },
        });
        let mut response = (self.status, body).into_response();
        // For the metrics middleware, which counts errors by kind.
        response.extensions_mut().insert(ErrorKind(self.kind));
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.close_connection {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// Gives the responses axum makes itself the documented JSON error body: its extractors'
/// rejections (malformed JSON, a wrong Content-Type, undecodable path or query
/// parameters, a body past `DefaultBodyLimit`) are plain text, and an unknown route (404)
/// or method (405) has no body at all. A client parses one error shape, whatever failed.
///
/// Only error responses that are not ours (no [`ErrorKind`]) and carry no body type, or
/// plain text, are rewritten; headers such as `Allow` are kept.
pub async fn json_rejections(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<ErrorKind>().is_some()
    {
        return response;
    }
    let plain = match response.headers().get(header::CONTENT_TYPE) {
        None => true,
        Some(v) => v.to_str().is_ok_and(|v| v.starts_with("text/plain")),
    };
    if !plain {
        return response;
    }
    let (parts, body) = response.into_parts();
    // Rejection texts are one short line; anything longer is cut, not buffered.
    let text = axum::body::to_bytes(body, REJECTION_TEXT_LIMIT)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let allowed = parts
        .headers
        .get(header::ALLOW)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let message = match (status, text.is_empty()) {
        (StatusCode::NOT_FOUND, true) => format!("no route {method} {path}"),
        (StatusCode::METHOD_NOT_ALLOWED, true) => match &allowed {
            Some(allowed) => format!("{method} is not allowed on {path}; allowed: {allowed}"),
            None => format!("{method} is not allowed on {path}"),
        },
        (_, true) => status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_string(),
        (_, false) => text,
    };
    let mut rewritten = ApiError::new(status, rejection_kind(status), message).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rewritten.headers_mut().append(name, value.clone());
        }
    }
    rewritten
}

/// Longest rejection text kept as a message.
const REJECTION_TEXT_LIMIT: usize = 4096;

/// The kind of an error response axum made itself, by status.
fn rejection_kind(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_body",
        StatusCode::TOO_MANY_REQUESTS => "overloaded",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_client_error() => "bad_request",
        _ => "internal",
    }
}
