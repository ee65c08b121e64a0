//! API errors: a status, a stable kind and a message, as JSON.
//!
//! Every failure path of the screening endpoint ends here, so no internal error
//! can ever be mistaken for `allow`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::scheduler::SchedulerError;
use crate::screen::ScreenError;
use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
            retry_after_secs: None,
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

impl From<ScreenError> for ApiError {
    fn from(e: ScreenError) -> Self {
        let kind = e.kind();
        let status = match kind {
            "too_large" => StatusCode::PAYLOAD_TOO_LARGE,
            "unsupported_format" => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "empty" | "corrupt" | "dimensions" | "decoder_panic" => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            "invalid_url" => StatusCode::BAD_REQUEST,
            "not_found" | "http_status" | "timeout" | "fetch" | "io" => {
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
        if e.is_retryable() {
            ApiError::unavailable("store_unavailable", e.to_string())
        } else {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store", e.to_string())
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(kind = self.kind, status = %self.status, "{}", self.message);
        }
        let body = Json(serde_json::json!({
            "error": { "kind": self.kind, "message": self.message }
        }));
        let mut response = (self.status, body).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
