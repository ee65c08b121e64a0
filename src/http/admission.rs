//! What a request must show before the service reads its body: every route has an
//! [`Access`] rule and a body limit. A bearer-token route checks its token (in memory)
//! first, and a refused request is answered without its body ever being held: at most a
//! bounded amount is read and thrown away, so a well-behaved client sees the answer instead
//! of a reset, and the connection is closed. Bodies of routes other than the screening
//! itself are read here, whole, under a deadline and the route's limit.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use crate::http::error::ApiError;
use crate::http::AppState;
use crate::store::TokenRole;

/// Who may send a route a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A bearer token, checked before the body is read.
    Bearer,
    /// A console session cookie, checked by the handler (bodies are small).
    Session,
    /// Anyone: health, metrics, the console's static files, the login form.
    Open,
}

/// How large a route's body may be, and who reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyLimit {
    /// JSON of a few fields: a login, a decision, a bank's settings.
    Small,
    /// An image (max_bytes), read here.
    Image,
    /// An image read by the handler under the screening's own deadline.
    Screening,
    /// A bank import (max_import_bytes).
    Import,
}

/// The largest body of [`BodyLimit::Small`] routes.
pub const SMALL_BODY_BYTES: usize = 16 * 1024;
/// Room for the rest of a request beside an image (a by-URL JSON body, multipart framing).
const IMAGE_BODY_SLACK: usize = 64 * 1024;
/// What a refused request's body may cost before its connection is simply closed: enough
/// for an honest client's image to be read (and discarded) so it gets the answer.
const REFUSED_DRAIN_TIME: Duration = Duration::from_secs(2);
/// Bytes past a limit read and thrown away so the sender of a slightly oversized body reads
/// its 413 rather than a reset; past this the connection is closed instead.
const OVERSIZE_DRAIN: usize = 16 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoutePolicy {
    pub access: Access,
    pub body: BodyLimit,
}

/// The rule of a route, by its axum path template. Unknown paths (the 404 fallback) read
/// no body.
pub fn policy_for(route: &str) -> RoutePolicy {
    let (access, body) = match route {
        "/v1/screen" => (Access::Bearer, BodyLimit::Screening),
        "/v1/banks/{name}/entries" => (Access::Bearer, BodyLimit::Image),
        "/v1/banks/{name}/import" => (Access::Bearer, BodyLimit::Import),
        "/v1/review/login" => (Access::Open, BodyLimit::Small),
        r if r.starts_with("/v1/review/") => (Access::Session, BodyLimit::Small),
        r if r.starts_with("/v1/") => (Access::Bearer, BodyLimit::Small),
        _ => (Access::Open, BodyLimit::Small),
    };
    RoutePolicy { access, body }
}

impl BodyLimit {
    pub fn bytes(self, config: &crate::config::ServiceConfig) -> usize {
        match self {
            BodyLimit::Small => SMALL_BODY_BYTES,
            BodyLimit::Image | BodyLimit::Screening => config.max_bytes + IMAGE_BODY_SLACK,
            BodyLimit::Import => config.max_import_bytes,
        }
    }
}

/// The request's declared body length, if it declared one.
fn declared_length(request: &Request) -> Option<usize> {
    request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
}

pub fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!(
            "the request body is over this route's limit of {}",
            human_bytes(limit)
        ),
    )
}

/// `32 MiB`, `16 KiB`, `700 bytes`: limits as the README states them.
pub fn human_bytes(n: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * 1024;
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else if n >= MIB {
        format!("{:.1} MiB", n as f64 / MIB as f64)
    } else if n >= KIB && n.is_multiple_of(KIB) {
        format!("{} KiB", n / KIB)
    } else {
        format!("{n} bytes")
    }
}

/// The middleware: token, then declared length, then body.
pub async fn admit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("", |p| p.as_str())
        .to_string();
    let policy = policy_for(&route);
    let config = state.config();
    let limit = policy.body.bytes(config);
    let image_limit = BodyLimit::Image.bytes(config);
    let mut drain_time = REFUSED_DRAIN_TIME;
    if policy.access == Access::Bearer && !bodiless(request.method()) {
        if let Err(e) = state.bearer_role(request.headers(), TokenRole::Service) {
            return refuse(request, e, image_limit.min(limit), drain_time).await;
        }
        // A known caller's oversized body may take its time to be drained.
        drain_time = Duration::from_secs(config.http.body_read_timeout_secs);
    }
    if declared_length(&request).is_some_and(|n| n > limit) {
        let drain = limit.saturating_add(OVERSIZE_DRAIN);
        return refuse(request, too_large(limit), drain, drain_time).await;
    }
    if policy.body == BodyLimit::Screening || bodiless(request.method()) {
        return next.run(request).await;
    }
    let timeout = Duration::from_secs(config.http.body_read_timeout_secs);
    let (parts, body) = request.into_parts();
    match read_whole(body, limit, timeout).await {
        Ok(bytes) => {
            super::memory::note_body(bytes.len());
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

fn bodiless(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Answers `error` after reading (and discarding) at most `drain` bytes of the body for at
/// most `time`; the connection is closed either way.
async fn refuse(request: Request, error: ApiError, drain: usize, time: Duration) -> Response {
    discard(request.into_body(), drain, time).await;
    ApiError {
        close_connection: true,
        ..error
    }
    .into_response()
}

/// Reads and throws away at most about `limit` bytes of `body`, for at most `time`, so a
/// refused caller still reads its answer; nothing is kept.
pub async fn discard(body: Body, limit: usize, time: Duration) {
    let mut stream = body.into_data_stream();
    let mut read = 0usize;
    let _ = tokio::time::timeout(time, async {
        while read <= limit {
            match stream.next().await {
                Some(Ok(chunk)) => read += chunk.len(),
                _ => break,
            }
        }
    })
    .await;
}

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body is over the limit of {}", human_bytes(*.0))]
    TooLarge(usize),
    #[error("the request body did not arrive within {} s", .0.as_secs())]
    TimedOut(Duration),
    #[error("reading the request body: {0}")]
    Read(#[source] axum::Error),
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        let (status, kind) = match &e {
            BodyError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            BodyError::TimedOut(_) => (StatusCode::REQUEST_TIMEOUT, "body_timeout"),
            BodyError::Read(_) => (StatusCode::BAD_REQUEST, "bad_request"),
        };
        // The connection's framing is unknown past a failed read: never reuse it.
        ApiError {
            close_connection: true,
            ..ApiError::new(status, kind, e.to_string())
        }
    }
}

/// The whole body, at most `limit` bytes, within `timeout`. Nothing is kept past a
/// refusal.
pub async fn read_whole(
    body: Body,
    limit: usize,
    timeout: Duration,
) -> Result<bytes::Bytes, BodyError> {
    tokio::time::timeout(timeout, async {
        let mut stream = body.into_data_stream();
        let mut collected = bytes::BytesMut::new();
        let mut over = 0usize;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(BodyError::Read)?;
            if over == 0 && collected.len() + chunk.len() <= limit {
                collected.extend_from_slice(&chunk);
                continue;
            }
            // Over: keep nothing, and drain a little so the sender reads the answer.
            collected = bytes::BytesMut::new();
            over += chunk.len();
            if over > OVERSIZE_DRAIN {
                break;
            }
        }
        if over > 0 {
            return Err(BodyError::TooLarge(limit));
        }
        Ok(collected.freeze())
    })
    .await
    .map_err(|_| BodyError::TimedOut(timeout))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_route_but_the_login_and_the_console_needs_a_bearer_token() {
        for route in [
            "/v1/screen",
            "/v1/screenings/{id}",
            "/v1/banks/{name}/import",
            "/v1/banks/{name}/entries",
            "/v1/accounts/{owner_id}/takedown",
            "/v1/users",
            "/v1/users/{username}/password",
        ] {
            assert_eq!(policy_for(route).access, Access::Bearer, "{route}");
        }
        assert_eq!(policy_for("/v1/review/login").access, Access::Open);
        assert_eq!(
            policy_for("/v1/review/items/{id}/decision").access,
            Access::Session
        );
        assert_eq!(policy_for("/healthz").access, Access::Open);
        assert_eq!(policy_for("").body, BodyLimit::Small);
        assert_eq!(policy_for("/v1/review/login").body, BodyLimit::Small);
    }

    #[test]
    fn limits_read_as_the_readme_states_them() {
        assert_eq!(human_bytes(32 * 1024 * 1024), "32 MiB");
        assert_eq!(human_bytes(16 * 1024), "16 KiB");
        assert_eq!(human_bytes(700), "700 bytes");
        assert_eq!(human_bytes(32 * 1024 * 1024 + 64 * 1024), "32.1 MiB");
    }

    #[tokio::test]
    async fn a_whole_body_is_refused_past_its_limit_and_its_deadline() {
        let ok = read_whole(Body::from("abc"), 3, Duration::from_secs(1)).await;
        assert_eq!(ok.unwrap().as_ref(), b"abc");
        let over = read_whole(Body::from("abcd"), 3, Duration::from_secs(1)).await;
        assert!(matches!(over, Err(BodyError::TooLarge(3))));
        // A body whose sender never finishes.
        let (_tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(1);
        let stalled = Body::from_stream(tokio_stream_from(rx));
        let slow = read_whole(stalled, 3, Duration::from_millis(50)).await;
        assert!(matches!(slow, Err(BodyError::TimedOut(_))));
    }

    fn tokio_stream_from(
        mut rx: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>,
    ) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }
}
