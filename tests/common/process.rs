//! `coverguard serve` as a child process, for tests that kill it, limit its disk or read
//! its log: its config, readiness, requests, and its SQLite store read from outside.
//!
//! The test binds the listening socket and passes it down as systemd would (socket
//! activation), so the port is never free for another process to take, and it survives
//! a restart; the child says it is ready as a `Type=notify` service would.

use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::Connection;

use super::server::{photo, ADMIN_TOKEN, SERVICE_TOKEN};
use super::skimage_dir;

pub const QUARANTINE_KEY: &str = "3333333333333333333333333333333333333333333333333333333333333333";

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: i32 = 3;

pub struct Service {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub base: String,
    pub client: reqwest::Client,
    listener: TcpListener,
    /// The socket the latest child reports readiness on; one per child, so a notice from
    /// a process killed earlier is never taken for the next one's.
    notify: Mutex<Option<UnixDatagram>>,
    children: std::sync::atomic::AtomicUsize,
}

impl Service {
    pub fn new(dir: &Path, hook_url: &str, quarantine_dir: Option<&Path>) -> Service {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let config = dir.join("coverguard.toml");
        // `listen` is what the service binds when started by hand; here it is given the
        // test's socket instead.
        let mut text = format!(
            "listen = \"{addr}\"\ndata_dir = \"{}\"\nquarantine_key = \"{}\"\n\
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
             [[webhooks]]\nurl = \"{hook_url}\"\n"
        ));
        std::fs::write(&config, text).unwrap();
        Service {
            dir: dir.to_path_buf(),
            config,
            base: format!("http://{addr}"),
            // The config written above keeps the default idle close.
            client: super::client_for(Duration::from_secs(
                coverguard::config::HttpConfig::default().header_read_timeout_secs,
            )),
            listener,
            notify: Mutex::new(None),
            children: std::sync::atomic::AtomicUsize::new(0),
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
        self.hand_over(&mut command);
        command
    }

    /// Passes the listening socket and a fresh readiness socket to `command`, a
    /// `coverguard serve` or a wrapper that execs one.
    pub fn hand_over(&self, command: &mut Command) {
        let n = self
            .children
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = self.dir.join(format!("ready-{n}.sock"));
        let notify = UnixDatagram::bind(&path).unwrap();
        *self.notify.lock().unwrap() = Some(notify);
        let fd = self.listener.as_raw_fd();
        command
            .env("LISTEN_FDS", "1")
            .env_remove("LISTEN_PID")
            .env_remove("LISTEN_FDNAMES")
            .env("NOTIFY_SOCKET", &path);
        // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and exec.
        unsafe {
            command.pre_exec(move || {
                let moved = if fd == LISTEN_FDS_START {
                    // Already in place: only the close-on-exec flag must go.
                    libc::fcntl(fd, libc::F_SETFD, 0)
                } else {
                    libc::dup2(fd, LISTEN_FDS_START)
                };
                if moved == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }

    /// Waits for the latest child's readiness notice; fails the test if it exits first.
    pub async fn wait_ready(&self, child: &mut Child) {
        let notify = self
            .notify
            .lock()
            .unwrap()
            .take()
            .expect("a child started with Service::command");
        notify.set_nonblocking(true).unwrap();
        let notify = tokio::net::UnixDatagram::from_std(notify).unwrap();
        let started = Instant::now();
        let mut notice = [0u8; 256];
        loop {
            // Wakes once a second only to see whether the child has died meanwhile.
            let received =
                tokio::time::timeout(Duration::from_secs(1), notify.recv(&mut notice)).await;
            if let Ok(received) = received {
                let n = received.unwrap();
                let notice = String::from_utf8_lossy(&notice[..n]);
                if notice.lines().any(|l| l == "READY=1") {
                    return;
                }
            }
            assert!(child.try_wait().unwrap().is_none(), "the service exited");
            assert!(started.elapsed() < Duration::from_secs(120), "never ready");
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

/// Stops a child as its service manager would (SIGTERM): in-flight requests and the
/// outbox's deliveries finish before it exits, so nothing it sends arrives later.
pub fn stop(child: &mut Child) {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: a signal to our own child, which has not been reaped (we hold `child`).
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = child.wait().unwrap();
    assert!(status.success(), "the service exited with {status}");
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
