//! `coverguard serve` over HTTP on loopback: screening, errors, auth, quarantine,
//! reports, takedown, readiness and overload.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use coverguard::config::{ServiceConfig, TokenConfig};
use coverguard::scheduler::SchedulerConfig;
use coverguard::store::{self, ReportState};
use serde_json::Value;

const SERVICE_TOKEN: &str = "svc-token-0123456789";
const ADMIN_TOKEN: &str = "admin-token-0123456789";

struct Server {
    base: String,
    config: ServiceConfig,
    _dir: tempfile::TempDir,
    client: reqwest::Client,
}

async fn start(configure: impl FnOnce(&mut ServiceConfig)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServiceConfig {
        data_dir: dir.path().join("data"),
        quarantine_key: Some("11".repeat(32)),
        tokens: vec![
            TokenConfig {
                name: "upload".into(),
                role: "service".into(),
                token: SERVICE_TOKEN.into(),
            },
            TokenConfig {
                name: "ops".into(),
                role: "admin".into(),
                token: ADMIN_TOKEN.into(),
            },
        ],
        ..ServiceConfig::default()
    };
    configure(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let served = config.clone();
    tokio::spawn(async move {
        coverguard::service::serve_on(listener, served, std::future::pending())
            .await
            .unwrap();
    });
    Server {
        base: format!("http://{addr}"),
        config,
        _dir: dir,
        client: reqwest::Client::new(),
    }
}

impl Server {
    async fn wait_ready(&self) {
        for _ in 0..600 {
            if let Ok(r) = self
                .client
                .get(format!("{}/readyz", self.base))
                .send()
                .await
            {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("server never became ready");
    }

    async fn screen_bytes(
        &self,
        token: Option<&str>,
        content_type: &str,
        bytes: Vec<u8>,
        query: &str,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .post(format!("{}/v1/screen?{query}", self.base))
            .header("content-type", content_type)
            .body(bytes);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

fn photo(name: &str) -> Vec<u8> {
    std::fs::read(skimage_dir().join(name)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readiness_then_screening_with_records_and_errors() {
    let server = start(|_| {}).await;
    // Before loading finishes the API refuses (503 + Retry-After), never allows.
    let early = server
        .client
        .get(format!("{}/readyz", server.base))
        .send()
        .await
        .unwrap();
    if early.status() != 200 {
        assert_eq!(early.status(), 503);
        assert!(early.headers().contains_key("retry-after"));
    }
    assert_eq!(
        server
            .client
            .get(format!("{}/healthz", server.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    server.wait_ready().await;

    let (status, allow) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/png",
            photo("astronaut.png"),
            "artwork_id=a1&owner_id=o1&surface=playlist_cover",
        )
        .await;
    assert_eq!(status, 200, "{allow}");
    assert_eq!(allow["verdict"], "allow");
    assert_eq!(allow["quarantined"], false);
    assert_eq!(allow["detections"][0]["label"], "FACE_FEMALE");
    let id = allow["screening_id"].as_str().unwrap().to_string();
    let (status, fetched) = server
        .get(SERVICE_TOKEN, &format!("/v1/screenings/{id}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(fetched["sha256"], allow["sha256"]);
    let (status, artwork) = server.get(SERVICE_TOKEN, "/v1/artworks/a1").await;
    assert_eq!(status, 200);
    assert_eq!(
        (artwork["verdict"].as_str(), artwork["status"].as_str()),
        (Some("allow"), Some("published"))
    );

    let (status, review) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/png",
            photo("color.png"),
            "artwork_id=a2&owner_id=o1",
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(review["verdict"], "review");
    let (_, artwork) = server.get(SERVICE_TOKEN, "/v1/artworks/a2").await;
    assert_eq!(artwork["status"], "held");

    // Errors carry a kind and the right status.
    let rocket = photo("rocket.jpg");
    for (content_type, body, status, kind) in [
        (
            "text/plain",
            b"hello".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "image/jpeg",
            b"hello, not a jpeg".to_vec(),
            415,
            "unsupported_format",
        ),
        (
            "image/jpeg",
            rocket[..rocket.len() / 2].to_vec(),
            422,
            "corrupt",
        ),
        ("image/png", Vec::new(), 422, "empty"),
    ] {
        let (got, body) = server
            .screen_bytes(Some(SERVICE_TOKEN), content_type, body, "")
            .await;
        assert_eq!(got, status, "{content_type}: {body}");
        assert_eq!(body["error"]["kind"], kind);
        assert!(body.get("verdict").is_none());
    }
    let (got, _) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/png",
            vec![0u8; server.config.max_bytes + 100 * 1024],
            "",
        )
        .await;
    assert_eq!(got, 413);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tokens_and_roles_are_enforced() {
    let server = start(|_| {}).await;
    server.wait_ready().await;
    let (status, body) = server
        .screen_bytes(None, "image/png", photo("astronaut.png"), "")
        .await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = server
        .screen_bytes(
            Some("not-a-real-token-at-all"),
            "image/png",
            photo("astronaut.png"),
            "",
        )
        .await;
    assert_eq!(status, 401);
    let takedown = |token: &'static str| {
        let client = server.client.clone();
        let url = format!("{}/v1/accounts/o9/takedown", server.base);
        async move {
            client
                .post(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(takedown(SERVICE_TOKEN).await, 403);
    assert_eq!(takedown(ADMIN_TOKEN).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn block_quarantines_encrypted_and_writes_a_report() {
    let server = start(|c| c.policy_file = None).await;
    server.wait_ready().await;
    // Block through a strict context: the colour chart scores 0.835 >= 0.80 for a minor's upload.
    let (status, body) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/png",
            photo("color.png"),
            "artwork_id=c1&owner_id=kid&owner_is_minor=true",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["verdict"], "block", "{body}");
    assert_eq!(body["quarantined"], true);
    let report_id = body["report_id"].as_str().expect("a report").to_string();

    let sha = body["sha256"].as_str().unwrap();
    let stored = server
        .config
        .data_dir
        .join("quarantine")
        .join(&sha[..2])
        .join(&sha[2..4])
        .join(sha);
    let on_disk = std::fs::read(&stored).expect("quarantined file");
    assert_ne!(on_disk, photo("color.png"));

    let store = store::open(&server.config.database_url()).await.unwrap();
    let report = store.get_report(&report_id).await.unwrap().unwrap();
    assert_eq!(report.state, ReportState::Pending);
    assert_eq!(report.payload["sha256"], sha);
    let (_, artwork) = server.get(SERVICE_TOKEN, "/v1/artworks/c1").await;
    assert_eq!(artwork["status"], "quarantined");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn takedown_quarantines_the_owners_art_and_holds_future_uploads() {
    let server = start(|_| {}).await;
    server.wait_ready().await;
    for (artwork, file) in [("t1", "astronaut.png"), ("t2", "camera.png")] {
        let (status, body) = server
            .screen_bytes(
                Some(SERVICE_TOKEN),
                "image/png",
                photo(file),
                &format!("artwork_id={artwork}&owner_id=groomed"),
            )
            .await;
        assert_eq!((status, body["verdict"].as_str()), (200, Some("allow")));
    }
    let resp = server
        .client
        .post(format!("{}/v1/accounts/groomed/takedown", server.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let mut taken: Vec<&str> = body["quarantined_artworks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    taken.sort();
    assert_eq!(taken, vec!["t1", "t2"]);
    for artwork in ["t1", "t2"] {
        let (_, a) = server
            .get(SERVICE_TOKEN, &format!("/v1/artworks/{artwork}"))
            .await;
        assert_eq!(a["status"], "quarantined");
    }
    // A harmless new upload by the same owner is not published.
    let (_, later) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/png",
            photo("coffee.png"),
            "artwork_id=t3&owner_id=groomed",
        )
        .await;
    assert_ne!(later["verdict"], "allow", "{later}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_beyond_the_queue_gets_429_and_every_request_an_answer() {
    let server = start(|c| {
        c.scheduler = SchedulerConfig {
            workers: 1,
            max_batch: 1,
            queue_capacity: 1,
        };
        c.request_deadline_ms = 30_000;
    })
    .await;
    server.wait_ready().await;
    let bytes = photo("astronaut.png");
    let mut tasks = Vec::new();
    for i in 0..24 {
        let client = server.client.clone();
        let url = format!("{}/v1/screen?artwork_id=f{i}", server.base);
        let body = bytes.clone();
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(SERVICE_TOKEN)
                .header("content-type", "image/png")
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.headers().contains_key("retry-after"))
        }));
    }
    let (mut ok, mut refused) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            (200, _) => ok += 1,
            (429, true) => refused += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert!(ok >= 1 && refused >= 1, "{ok} ok, {refused} refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_passed_deadline_is_an_error_not_an_allow() {
    let server = start(|_| {}).await;
    server.wait_ready().await;
    let (status, body) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/png",
            photo("astronaut.png"),
            "deadline_ms=1",
        )
        .await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"]["kind"], "deadline_exceeded");
}
