//! A loopback webhook for the delivery tests: answers a script of replies in order (then 200)
//! and records every request. It runs on its own thread and runtime, so a stalled reply never
//! holds up the test's runtime.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;

/// What the webhook does with the n-th request.
#[derive(Clone, Debug)]
pub(crate) enum Reply {
    Status(u16),
    StatusWithRetryAfter(u16, u64),
    /// Answer 200, but only after this long.
    Stall(Duration),
}

/// One request as the webhook saw it.
#[derive(Clone, Debug)]
pub(crate) struct Recorded {
    pub method: String,
    /// The request target: path and query.
    pub path: String,
    /// Header names lower-cased.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

struct Shared {
    script: Vec<Reply>,
    requests: Mutex<Vec<Recorded>>,
}

pub(crate) struct TestWebhook {
    url: String,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TestWebhook {
    pub(crate) fn start(script: Vec<Reply>) -> TestWebhook {
        TestWebhook::serve(TcpListener::bind("127.0.0.1:0").unwrap(), script)
    }

    /// Answers `statuses` in order, then 200.
    pub(crate) fn statuses(statuses: &[u16]) -> TestWebhook {
        TestWebhook::start(statuses.iter().map(|&s| Reply::Status(s)).collect())
    }

    /// Serves on `listener`, which the caller bound (to take a port it knows in advance).
    pub(crate) fn serve(listener: TcpListener, script: Vec<Reply>) -> TestWebhook {
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            script,
            requests: Mutex::new(Vec::new()),
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(Arc::clone(&shared));
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        TestWebhook {
            url,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }
}

impl Drop for TestWebhook {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn answer(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let served = {
        let mut requests = shared.requests.lock().unwrap();
        requests.push(Recorded {
            method: method.to_string(),
            path: uri.path_and_query().map_or("/", |p| p.as_str()).to_string(),
            headers: headers
                .iter()
                .map(|(name, value)| {
                    let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                    (name.as_str().to_string(), value)
                })
                .collect(),
            body: body.to_vec(),
        });
        requests.len() - 1
    };
    let status = |code: u16| StatusCode::from_u16(code).unwrap();
    match shared.script.get(served).cloned() {
        None => (StatusCode::OK, "ok").into_response(),
        Some(Reply::Status(code)) => (status(code), "ok").into_response(),
        Some(Reply::StatusWithRetryAfter(code, secs)) => {
            (status(code), [("retry-after", secs.to_string())], "ok").into_response()
        }
        Some(Reply::Stall(wait)) => {
            tokio::time::sleep(wait).await;
            (StatusCode::OK, "ok").into_response()
        }
    }
}
