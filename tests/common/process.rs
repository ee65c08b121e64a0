//! `coverguard serve` as a child process, for tests that kill it, limit its disk or read
//! its log: its config, readiness, requests, and its SQLite store read from outside.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::Connection;

use super::server::{is_ready, photo, ADMIN_TOKEN, SERVICE_TOKEN};
use super::skimage_dir;

pub const QUARANTINE_KEY: &str = "3333333333333333333333333333333333333333333333333333333333333333";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Service {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub base: String,
    pub client: reqwest::Client,
}

impl Service {
    pub fn new(dir: &Path, hook_port: u16, quarantine_dir: Option<&Path>) -> Service {
        let port = free_port();
        let config = dir.join("coverguard.toml");
        let mut text = format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\nquarantine_key = \"{}\"\n\
             request_deadline_ms = 60000\n",
            dir.join("data").display(),
            QUARANTINE_KEY
        );
        if let Some(q) = quarantine_dir {
            text.push_str(&format!("quarantine_dir = \"{}\"\n", q.display()));
        }
        text.push_str(&format!(
            "[[tokens]]\nname = \"upload\"\nrole = \"service\"\ntoken = \"{SERVICE_TOKEN}\"\n\
             [[tokens]]\nname = \"ops\"\nrole = \"admin\"\ntoken = \"{ADMIN_TOKEN}\"\n\
             [[webhooks]]\nurl = \"http://127.0.0.1:{hook_port}/hook\"\n"
        ));
        std::fs::write(&config, text).unwrap();
        Service {
            dir: dir.to_path_buf(),
            config,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        }
    }

    /// Add top-level TOML keys to the config.
    pub fn add_top_level_config(&self, keys: &str) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        std::fs::write(&self.config, format!("{keys}{text}")).unwrap();
    }

    /// Add TOML tables (not top-level keys) to the config.
    pub fn add_config(&self, tables: &str) {
        let mut text = std::fs::read_to_string(&self.config).unwrap();
        text.push_str(tables);
        std::fs::write(&self.config, text).unwrap();
    }

    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_coverguard"));
        command
            .arg("serve")
            .arg("--config")
            .arg(&self.config)
            .env("COVERGUARD_LOG", "coverguard=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    pub async fn wait_ready(&self, child: &mut Child) {
        let started = Instant::now();
        loop {
            if is_ready(&self.client, &self.base).await {
                return;
            }
            assert!(child.try_wait().unwrap().is_none(), "the service exited");
            assert!(started.elapsed() < Duration::from_secs(120), "never ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn send(
        &self,
        token: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        key: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        match request.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.json().await.unwrap_or(Value::Null))
            }
            // The process was killed under the request.
            Err(_) => (0, Value::Null),
        }
    }

    pub async fn bank(&self, photos: &[&str]) {
        let (status, body) = self
            .send(
                ADMIN_TOKEN,
                "/v1/banks",
                "application/json",
                json!({"name": "known-bad"}).to_string().into_bytes(),
                None,
            )
            .await;
        assert_eq!(status, 201, "{body}");
        for name in photos {
            let (status, body) = self
                .send(
                    ADMIN_TOKEN,
                    "/v1/banks/known-bad/entries",
                    "image/png",
                    photo(name),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
    }

    pub async fn db(&self) -> sqlx::SqliteConnection {
        let db = self.dir.join("data/coverguard.db");
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap()
    }
}

pub async fn count(db: &mut sqlx::SqliteConnection, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(db).await.unwrap()
}

/// The sample photos, smallest file first.
pub fn photos_by_size() -> Vec<(String, u64)> {
    let mut photos: Vec<(String, u64)> = std::fs::read_dir(skimage_dir())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.ends_with(".png") || name.ends_with(".jpg")
        })
        .map(|e| {
            (
                e.file_name().to_string_lossy().to_string(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    photos.sort_by_key(|(_, size)| *size);
    photos
}

/// A webhook that records every delivery's idempotency key.
pub async fn webhook(port: u16) -> Arc<Mutex<Vec<String>>> {
    use axum::routing::post;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&seen);
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: axum::http::HeaderMap| async move {
            let key = headers["idempotency-key"].to_str().unwrap().to_string();
            recorded.lock().unwrap().push(key);
            axum::http::StatusCode::OK
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    seen
}

/// Resident memory of a process, from /proc: (current, peak) in KiB.
pub fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Every file below `dir`.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
