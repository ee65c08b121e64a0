//! A webhook receiver for tests: it records every delivery, answers as a test tells it
//! to (up, down, failing the next few), and lets a test wait for what it expects to
//! arrive without polling.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use tokio::sync::watch;

/// How long a test waits for a delivery it expects; the outbox's first retries are
/// seconds apart.
const PATIENCE: Duration = Duration::from_secs(60);

/// One request the webhook received.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub idempotency_key: String,
    pub body: String,
    /// Answered 200; otherwise the sender was told to retry. A sender that died while its
    /// delivery was held never reads the 200, so this alone does not mean delivered.
    pub acknowledged: bool,
}

impl Delivery {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

struct Shared {
    log: watch::Sender<Vec<Delivery>>,
    down: AtomicBool,
    failures_left: AtomicUsize,
    /// While true, deliveries wait unanswered.
    holding: watch::Sender<bool>,
    /// The idempotency keys of the deliveries being received now, one entry per delivery.
    receiving: watch::Sender<Vec<String>>,
    /// The most deliveries of one key ever received at the same time.
    most_at_once: AtomicUsize,
}

/// A local webhook at [`Webhook::url`], serving until the test's runtime ends.
pub struct Webhook {
    url: String,
    shared: Arc<Shared>,
}

impl Webhook {
    /// A webhook that acknowledges every delivery.
    pub async fn start() -> Webhook {
        let shared = Arc::new(Shared {
            log: watch::channel(Vec::new()).0,
            down: AtomicBool::new(false),
            failures_left: AtomicUsize::new(0),
            holding: watch::channel(false).0,
            receiving: watch::channel(Vec::new()).0,
            most_at_once: AtomicUsize::new(0),
        });
        let receiving = Arc::clone(&shared);
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let shared = Arc::clone(&receiving);
                async move { shared.receive(&headers, body).await }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Webhook { url, shared }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// While down, every delivery is answered 503.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    /// The next `n` deliveries are answered 500.
    pub fn fail_next(&self, n: usize) {
        self.shared.failures_left.store(n, Ordering::SeqCst);
    }

    /// While holding, deliveries are received but wait unanswered, as from a slow
    /// receiver; released, they are answered as usual.
    pub fn hold(&self, holding: bool) {
        self.shared.holding.send_replace(holding);
    }

    /// Waits until at least `n` deliveries are being received at once (held, say), and
    /// returns their idempotency keys.
    pub async fn wait_receiving(&self, n: usize) -> Vec<String> {
        let mut receiving = self.shared.receiving.subscribe();
        let waited =
            tokio::time::timeout(PATIENCE, receiving.wait_for(|keys| keys.len() >= n)).await;
        match waited {
            Ok(Ok(keys)) => keys.clone(),
            _ => panic!("{n} deliveries were never received at once"),
        }
    }

    /// The most deliveries under one idempotency key that were ever received at once: more
    /// than one means two senders had the same report at the same time.
    pub fn most_at_once(&self) -> usize {
        self.shared.most_at_once.load(Ordering::SeqCst)
    }

    /// Every request received so far, in order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.log.borrow().clone()
    }

    /// The bodies of the acknowledged deliveries, in order.
    pub fn acknowledged(&self) -> Vec<Value> {
        acknowledged(&self.shared.log.borrow())
    }

    /// Waits until the deliveries so far satisfy `done`, and returns them; fails the
    /// test, naming `what`, if they do not within a minute.
    pub async fn wait_until(
        &self,
        what: &str,
        done: impl Fn(&[Delivery]) -> bool,
    ) -> Vec<Delivery> {
        let mut log = self.shared.log.subscribe();
        let waited = tokio::time::timeout(PATIENCE, log.wait_for(|log| done(log))).await;
        match waited {
            Ok(Ok(log)) => log.clone(),
            _ => panic!(
                "{what} never reached the webhook; it received {:?}",
                self.deliveries()
            ),
        }
    }

    /// The first acknowledged body that `matches`, waiting for it.
    pub async fn first(&self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let found = |log: &[Delivery]| acknowledged(log).into_iter().find(|b| matches(b));
        let log = self.wait_until(what, |log| found(log).is_some()).await;
        found(&log).unwrap()
    }

    /// Waits until at least `n` acknowledged bodies match, and returns every one that does.
    pub async fn at_least(
        &self,
        n: usize,
        what: &str,
        matches: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        let matching = |log: &[Delivery]| -> Vec<Value> {
            acknowledged(log)
                .into_iter()
                .filter(|b| matches(b))
                .collect()
        };
        let log = self.wait_until(what, |log| matching(log).len() >= n).await;
        matching(&log)
    }
}

/// A delivery being received: counted under its key until it is answered or its sender
/// goes away.
struct Receiving<'a> {
    shared: &'a Shared,
    key: String,
}

impl<'a> Receiving<'a> {
    fn begin(shared: &'a Shared, key: &str) -> Self {
        shared.receiving.send_modify(|keys| {
            keys.push(key.to_string());
            let at_once = keys.iter().filter(|k| *k == key).count();
            shared.most_at_once.fetch_max(at_once, Ordering::SeqCst);
        });
        Receiving {
            shared,
            key: key.to_string(),
        }
    }
}

impl Drop for Receiving<'_> {
    fn drop(&mut self) {
        self.shared.receiving.send_modify(|keys| {
            if let Some(i) = keys.iter().position(|k| *k == self.key) {
                keys.remove(i);
            }
        });
    }
}

impl Shared {
    async fn receive(&self, headers: &HeaderMap, body: String) -> StatusCode {
        let idempotency_key = headers
            .get("idempotency-key")
            .and_then(|k| k.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let _receiving = Receiving::begin(self, &idempotency_key);
        let _ = self.holding.subscribe().wait_for(|holding| !*holding).await;
        let status = if self.down.load(Ordering::SeqCst) {
            StatusCode::SERVICE_UNAVAILABLE
        } else if self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        };
        self.log.send_modify(|log| {
            log.push(Delivery {
                idempotency_key,
                body,
                acknowledged: status == StatusCode::OK,
            })
        });
        status
    }
}

fn acknowledged(log: &[Delivery]) -> Vec<Value> {
    log.iter()
        .filter(|d| d.acknowledged)
        .map(Delivery::json)
        .collect()
}
