//! The layers every request passes first: an `x-request-id` (the caller's, else a new
//! UUID) that the answer echoes and the request's trace span names, so one upload can be
//! followed through the logs; and a panic in a handler answered as a 500 error body,
//! never an allow, instead of a connection dropped without an answer.

use std::any::Any;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::http::error::ApiError;

const REQUEST_ID: &str = "x-request-id";

/// `router` behind the request id, its trace span and the panic guard.
pub fn wrap(router: Router) -> Router {
    // The last layer added is the outermost: the id is set before the span opens, and a
    // panic's answer still carries the id.
    router
        .layer(CatchPanicLayer::custom(panicked))
        // Errors are logged where they are answered, at the level their kind deserves (a
        // 503 while loading is expected); the layer's own failure event would make every
        // 5xx an ERROR line.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(span)
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// The path without its query: ids in a query are the caller's business, not the log's.
fn span(request: &Request) -> tracing::Span {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %id,
    )
}

fn panicked(_: Box<dyn Any + Send + 'static>) -> Response {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the request failed inside coverguard",
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn serve(router: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, wrap(router)).await.unwrap() });
        base
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_with_the_request_id() {
        let base = serve(Router::new().route(
            "/boom",
            axum::routing::get(|| async {
                panic!("a handler fault");
                #[allow(unreachable_code)]
                ""
            }),
        ))
        .await;
        let client = reqwest::Client::new();
        let response = client
            .get(format!("{base}/boom"))
            .header(REQUEST_ID, "upload-7781")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 500);
        assert_eq!(response.headers()[REQUEST_ID], "upload-7781");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["kind"], "internal", "{body}");
        assert!(body.get("verdict").is_none());
        // The process still answers.
        let again = client.get(format!("{base}/boom")).send().await.unwrap();
        assert_eq!(again.status(), 500);
    }

    #[tokio::test]
    async fn a_request_without_an_id_is_given_one() {
        let base = serve(Router::new().route("/", axum::routing::get(|| async { "ok" }))).await;
        let client = reqwest::Client::new();
        let ids: Vec<String> = {
            let mut ids = Vec::new();
            for _ in 0..2 {
                let response = client.get(&base).send().await.unwrap();
                assert_eq!(response.status(), 200);
                let id = response.headers()[REQUEST_ID].to_str().unwrap().to_string();
                ids.push(id);
            }
            ids
        };
        assert_ne!(ids[0], ids[1], "each request its own id");
        for id in &ids {
            assert_eq!(id.len(), 36, "a UUID: {id}");
        }
    }
}
