//! A coverguard server on loopback for HTTP tests, with the tokens it accepts.

use std::net::SocketAddr;
use std::time::Duration;

use coverguard::config::{ServiceConfig, TokenConfig};
use serde_json::Value;

use super::{skimage_dir, PgSchema};

pub const SERVICE_TOKEN: &str = "svc-token-0123456789";
pub const ADMIN_TOKEN: &str = "admin-token-0123456789";

pub struct Server {
    pub base: String,
    pub config: ServiceConfig,
    pub dir: tempfile::TempDir,
    pub client: reqwest::Client,
    /// The Postgres schema this server's store lives in, dropped by `finish`.
    pg_schema: Option<PgSchema>,
    /// Turns true once the server has loaded (and so answers requests).
    loaded: tokio::sync::watch::Receiver<bool>,
    /// Begins the server's shutdown; `serving` ends once it has finished.
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    serving: Option<tokio::task::JoinHandle<()>>,
}

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Sends `config`'s outbox to the one webhook at `url`.
pub fn send_outbox_to(config: &mut ServiceConfig, url: &str) {
    config.webhooks = vec![coverguard::config::WebhookConfig {
        url: url.to_string(),
        secret: None,
    }];
}

/// A server that sends its outbox to the one webhook at `url`.
pub async fn start_with_webhook(url: String) -> Server {
    start(|c| {
        c.webhooks = vec![coverguard::config::WebhookConfig { url, secret: None }];
    })
    .await
}

pub async fn start(configure: impl FnOnce(&mut ServiceConfig)) -> Server {
    start_on(Backend::Sqlite, configure)
        .await
        .expect("sqlite always runs")
}

/// A server on `backend`; `None` when that backend is not available here.
pub async fn start_on(
    backend: Backend,
    configure: impl FnOnce(&mut ServiceConfig),
) -> Option<Server> {
    let pg_schema = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(PgSchema::create("cg_svc").await?),
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServiceConfig {
        data_dir: dir.path().join("data"),
        quarantine_key: Some("11".repeat(32)),
        tokens: vec![
            TokenConfig {
                name: "upload".into(),
                role: coverguard::store::TokenRole::Service,
                token: SERVICE_TOKEN.into(),
            },
            TokenConfig {
                name: "ops".into(),
                role: coverguard::store::TokenRole::Admin,
                token: ADMIN_TOKEN.into(),
            },
        ],
        database_url: pg_schema.as_ref().map(|schema| schema.url.clone()),
        ..ServiceConfig::default()
    };
    configure(&mut config);
    Some(serve(config, dir, pg_schema).await)
}

/// Two ready servers on one store of `backend`, as replicas behind a load balancer; `None`
/// when that backend is not available here. The first one's `finish` drops a Postgres schema.
pub async fn start_replicas(backend: Backend) -> Option<(Server, Server)> {
    let first = start_on(backend, |_| {}).await?;
    first.wait_ready().await;
    // Started once the store is migrated, as a rolling deploy starts them.
    let second = first.replica().await;
    second.wait_ready().await;
    Some((first, second))
}

async fn serve(
    config: ServiceConfig,
    dir: tempfile::TempDir,
    pg_schema: Option<PgSchema>,
) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let state = coverguard::http::AppState::new(config.clone());
    let loaded = state.watch_loaded();
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(async move {
        // A server dropped without `stop` serves until the test ends, as before.
        let stopped = async move {
            if stopped.await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        coverguard::http::serve_state(listener, state, stopped)
            .await
            .unwrap();
    });
    let client = super::client_for(Duration::from_secs(config.http.header_read_timeout_secs));
    Server {
        base: format!("http://{addr}"),
        config,
        dir,
        client,
        pg_schema,
        loaded,
        shutdown: Some(shutdown),
        serving: Some(serving),
    }
}

impl Server {
    /// A second server with this one's configuration: the same store (database or SQLite
    /// file), quarantine and tokens, as a replica behind a load balancer. This server's
    /// `finish` drops the Postgres schema they share.
    pub async fn replica(&self) -> Server {
        serve(self.config.clone(), tempfile::tempdir().unwrap(), None).await
    }

    /// Shuts the server down as a SIGTERM would and waits until it has: requests and the
    /// outbox's deliveries in flight finish, so nothing it sends arrives afterwards.
    pub async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(serving) = self.serving.take() {
            serving.await.unwrap();
        }
    }

    /// Drop the test's Postgres schema (the server keeps running until the test ends).
    pub async fn finish(self) {
        if let Some(schema) = self.pg_schema {
            schema.drop().await;
        }
    }

    pub async fn send_json(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: &Value,
    ) -> (u16, Value) {
        let resp = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Screens the scikit-image photo `file` as `artwork` of `owner`, expecting an answer.
    pub async fn screen_photo_as(&self, file: &str, artwork: &str, owner: &str) -> Value {
        let (status, body) = self
            .screen_bytes(
                Some(SERVICE_TOKEN),
                "image/png",
                photo(file),
                &format!("artwork_id={artwork}&owner_id={owner}"),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Creates the bank `spec` (admin token), expecting it to be new.
    pub async fn create_bank(&self, spec: Value) {
        let (status, body) = self
            .send_json(ADMIN_TOKEN, reqwest::Method::POST, "/v1/banks", &spec)
            .await;
        assert_eq!(status, 201, "{body}");
    }

    /// Takes `owner`'s account down (admin token).
    pub async fn take_down(&self, owner: &str) {
        let path = format!("/v1/accounts/{owner}/takedown");
        let (status, body) = self
            .send_json(ADMIN_TOKEN, reqwest::Method::POST, &path, &Value::Null)
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// The status of `artwork`, as `GET /v1/artworks/{id}` says it.
    pub async fn artwork_status(&self, artwork: &str) -> String {
        let (status, body) = self
            .get(SERVICE_TOKEN, &format!("/v1/artworks/{artwork}"))
            .await;
        assert_eq!(status, 200, "{body}");
        body["status"].as_str().unwrap().to_string()
    }

    /// Adds the PNG `image` to `bank` as entry `external_id` (admin token).
    pub async fn bank_image(&self, bank: &str, external_id: &str, image: Vec<u8>) -> (u16, Value) {
        let path = format!("/v1/banks/{bank}/entries?external_id={external_id}");
        self.send_bytes(ADMIN_TOKEN, &path, "image/png", image)
            .await
    }

    /// Takes every line of entry `id` of `bank` out of matching, or back in, as `token`.
    pub async fn set_entry_disabled(
        &self,
        token: &str,
        bank: &str,
        id: &str,
        disabled: bool,
    ) -> (u16, Value) {
        let path = format!("/v1/banks/{bank}/entry-ids/{id}");
        let body = serde_json::json!({ "disabled": disabled });
        self.send_json(token, reqwest::Method::PATCH, &path, &body)
            .await
    }

    pub async fn send_bytes(
        &self,
        token: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, Value) {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn metric(&self, name: &str) -> f64 {
        let text = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
    }

    /// Waits until the server has loaded, up to 30 s.
    pub async fn wait_ready(&self) {
        let mut loaded = self.loaded.clone();
        let waited = tokio::time::timeout(Duration::from_secs(30), loaded.wait_for(|l| *l)).await;
        assert!(matches!(waited, Ok(Ok(_))), "server never became ready");
    }

    pub async fn screen_bytes(
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

    /// `DELETE` of `path`, answering its status.
    pub async fn delete(&self, token: &str, path: &str) -> u16 {
        self.client
            .delete(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// The API document the server serves (no token needed).
    pub async fn openapi(&self) -> Value {
        let resp = self
            .client
            .get(format!("{}/openapi.json", self.base))
            .send()
            .await
            .unwrap();
        resp.json().await.unwrap()
    }

    pub async fn get(&self, token: &str, path: &str) -> (u16, Value) {
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

    /// The signal type of every entry of `bank`, and the listing they came from.
    pub async fn bank_signals(&self, token: &str, bank: &str) -> (Vec<String>, Value) {
        let (_, entries) = self.get(token, &format!("/v1/banks/{bank}/entries")).await;
        let signals = entries
            .as_array()
            .unwrap_or_else(|| panic!("entries of {bank}: {entries}"))
            .iter()
            .map(|e| e["signal"].as_str().unwrap().to_string())
            .collect();
        (signals, entries)
    }
}

pub fn photo(name: &str) -> Vec<u8> {
    std::fs::read(skimage_dir().join(name)).unwrap()
}

/// The reporting company's details CyberTipline payloads need.
pub fn reporter() -> coverguard::act::report::ReporterInfo {
    coverguard::act::report::ReporterInfo {
        first_name: "Trust".into(),
        last_name: "Safety".into(),
        email: "tns@example.test".into(),
        phone: None,
        esp_service: "example-music".into(),
        company_template: None,
        terms_of_service: None,
    }
}

/// `png` as a grayscale JPEG: new bytes, the same picture to PDQ.
pub fn jpeg_reencode(png: &[u8], quality: u8) -> Vec<u8> {
    let image = image::load_from_memory(png).unwrap();
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(&image.to_luma8())
        .unwrap();
    out
}
