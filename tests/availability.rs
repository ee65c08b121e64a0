//! Availability without a token: callers that never authenticate cannot take the service's
//! memory or its connections. The service runs as a child process so its resident memory
//! (VmRSS, not heap) is what is measured.
//!
//! Figures: 200 unauthenticated connections (half-sent headers, oversized and slow bodies
//! to `/v1/screen`, oversized logins) raise resident memory by at most 100 MiB while an
//! authenticated screening is answered within its deadline; after a burst of authenticated
//! oversized bodies, resident memory comes back to within 100 MiB of where it started.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::process::*;
use common::server::{photo, SERVICE_TOKEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MIB: u64 = 1024 * 1024;
/// The most resident memory unauthenticated load may add.
const ALLOWED_RISE: u64 = 100 * MIB;
/// Deadline of the authenticated screenings made during the load.
const DEADLINE_MS: u64 = 20_000;

fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .expect("VmRSS in /proc/PID/status");
    kib * 1024
}

/// Samples the process's resident memory until stopped; the highest reading.
fn watch_peak(pid: u32) -> (Arc<AtomicU64>, Arc<AtomicBool>, tokio::task::JoinHandle<()>) {
    let peak = Arc::new(AtomicU64::new(resident_bytes(pid)));
    let stop = Arc::new(AtomicBool::new(false));
    let (p, s) = (Arc::clone(&peak), Arc::clone(&stop));
    let task = tokio::spawn(async move {
        while !s.load(Ordering::Relaxed) {
            p.fetch_max(resident_bytes(pid), Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    (peak, stop, task)
}

/// Stops [`watch_peak`] and holds its peak to [`ALLOWED_RISE`] over `baseline`.
async fn stop_watching(
    stop: Arc<AtomicBool>,
    watcher: tokio::task::JoinHandle<()>,
    peak: &AtomicU64,
    baseline: u64,
    what: &str,
) {
    stop.store(true, Ordering::Relaxed);
    watcher.await.unwrap();
    let peak = peak.load(Ordering::Relaxed);
    let rise = peak.saturating_sub(baseline);
    eprintln!(
        "resident memory: baseline {} MiB, peak under {what} {} MiB (+{} MiB)",
        baseline / MIB,
        peak / MIB,
        rise / MIB
    );
    assert!(
        rise <= ALLOWED_RISE,
        "{what} raised resident memory by {} MiB",
        rise / MIB
    );
}

fn authority(base: &str) -> String {
    base.trim_start_matches("http://").to_string()
}

/// Sends `head`, then `body_len` bytes of body in 64 KiB writes (`pause` between them),
/// until done or the server stops reading; returns the connection.
async fn send_unauthenticated(
    base: &str,
    head: String,
    body_len: usize,
    pause: Duration,
) -> TcpStream {
    let mut stream = TcpStream::connect(authority(base)).await.unwrap();
    if stream.write_all(head.as_bytes()).await.is_err() {
        return stream;
    }
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < body_len {
        let n = chunk.len().min(body_len - sent);
        // A refused request may be closed (or reset) under the writer: that is the point.
        match tokio::time::timeout(Duration::from_secs(5), stream.write_all(&chunk[..n])).await {
            Ok(Ok(())) => sent += n,
            _ => break,
        }
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    stream
}

async fn screen_within_deadline(service: &Service, artwork: &str) {
    let started = Instant::now();
    let response = service
        .client
        .post(format!(
            "{}/v1/screen?artwork_id={artwork}&owner_id=owner&deadline_ms={DEADLINE_MS}",
            service.base
        ))
        .bearer_auth(SERVICE_TOKEN)
        .header("content-type", "image/png")
        .body(photo("camera.png"))
        .timeout(Duration::from_millis(DEADLINE_MS + 5_000))
        .send()
        .await
        .expect("an authenticated screening is answered during the load");
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    assert!(started.elapsed() < Duration::from_millis(DEADLINE_MS));
}

async fn start_service(dir: &std::path::Path) -> (Service, std::process::Child) {
    // Nothing here is reported; the webhook only has to exist.
    let hook = common::webhook::Webhook::start().await;
    let mut service = Service::new(dir, hook.url(), None);
    service.add_config("[http]\nheader_read_timeout_secs = 2\nbody_read_timeout_secs = 4\n");
    // Idle connections are closed after 2 s, and the load saturates the machine: no
    // connection is kept, so none is reused as the service closes it.
    service.client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut child = service.command().spawn().unwrap();
    service.wait_ready(&mut child).await;
    // Warm up: the model's arenas and the first store writes are not what is measured.
    for i in 0..3 {
        screen_within_deadline(&service, &format!("warm-{i}")).await;
    }
    (service, child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unauthenticated_connections_hold_neither_memory_nor_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let (service, mut child) = start_service(dir.path()).await;
    let pid = child.id();
    let baseline = resident_bytes(pid);
    let (peak, stop, watcher) = watch_peak(pid);

    let host = authority(&service.base);
    let mut attackers = Vec::new();
    for i in 0..200 {
        let base = service.base.clone();
        let host = host.clone();
        attackers.push(tokio::spawn(async move {
            match i % 4 {
                // Half a request header, then nothing.
                0 => {
                    send_unauthenticated(
                        &base,
                        format!(
                        "POST /v1/screen HTTP/1.1\r\nHost: {host}\r\nContent-Type: image/png\r\n"
                    ),
                        0,
                        Duration::ZERO,
                    )
                    .await
                }
                // 25 MB without a token.
                1 => {
                    send_unauthenticated(
                        &base,
                        format!(
                            "POST /v1/screen?artwork_id=a&owner_id=o HTTP/1.1\r\nHost: {host}\r\n\
                         Content-Type: image/png\r\nContent-Length: 25000000\r\n\r\n"
                        ),
                        25_000_000,
                        Duration::ZERO,
                    )
                    .await
                }
                // 25 MB with a wrong token.
                2 => {
                    send_unauthenticated(
                        &base,
                        format!(
                            "POST /v1/screen?artwork_id=a&owner_id=o HTTP/1.1\r\nHost: {host}\r\n\
                         Authorization: Bearer wrong-token\r\nContent-Type: image/png\r\n\
                         Content-Length: 25000000\r\n\r\n"
                        ),
                        25_000_000,
                        Duration::ZERO,
                    )
                    .await
                }
                // A 32 MB login, slowly.
                _ => {
                    send_unauthenticated(
                        &base,
                        format!(
                            "POST /v1/review/login HTTP/1.1\r\nHost: {host}\r\n\
                         Content-Type: application/json\r\nContent-Length: 32000000\r\n\r\n\
                         {{\"username\": \"a\", \"password\": \""
                        ),
                        32_000_000,
                        Duration::from_millis(50),
                    )
                    .await
                }
            }
        }));
    }
    // Screen while the connections are open and sending.
    for i in 0..3 {
        screen_within_deadline(&service, &format!("during-{i}")).await;
    }
    let mut streams = Vec::new();
    for attacker in attackers {
        streams.push(attacker.await.unwrap());
    }
    screen_within_deadline(&service, "after-sending").await;

    stop_watching(
        stop,
        watcher,
        &peak,
        baseline,
        "unauthenticated connections",
    )
    .await;
    // Every connection is closed by the service: refused requests are not kept alive, and
    // half-sent headers time out.
    for (i, mut stream) in streams.into_iter().enumerate() {
        let mut sink = vec![0u8; 64 * 1024];
        let closed = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                match stream.read(&mut sink).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "connection {i} is still open after 30 s");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_taken_by_a_burst_of_oversized_bodies_is_given_back() {
    let dir = tempfile::tempdir().unwrap();
    let (service, mut child) = start_service(dir.path()).await;
    let pid = child.id();
    let baseline = resident_bytes(pid);

    // Logins of 32 MB, and authenticated screenings of 25 MB of junk (read, up to
    // max_bytes, then refused as not an image).
    let mut burst = Vec::new();
    for _ in 0..20 {
        let request = service
            .client
            .post(format!("{}/v1/review/login", service.base))
            .header("content-type", "application/json")
            .body(format!(
                "{{\"username\": \"a\", \"password\": \"{}\"}}",
                "p".repeat(32_000_000)
            ));
        burst.push(tokio::spawn(async move {
            // Refused unread, the upload may be cut short: the answer is not the point.
            let _ = request.send().await;
            None
        }));
    }
    for i in 0..20 {
        let client = service.client.clone();
        let url = format!(
            "{}/v1/screen?artwork_id=burst-{i}&owner_id=owner",
            service.base
        );
        burst.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(SERVICE_TOKEN)
                .header("content-type", "image/png")
                .body(vec![7u8; 25_000_000])
                .send()
                .await
                .map(|r| Some(r.status().as_u16()))
                .expect("an authenticated request is answered")
        }));
    }
    let mut peak = 0;
    for request in burst {
        if let Some(status) = request.await.unwrap() {
            assert!(
                (400..500).contains(&status),
                "junk bytes are refused: {status}"
            );
        }
        peak = peak.max(resident_bytes(pid));
    }
    let started = Instant::now();
    let settled = loop {
        let now = resident_bytes(pid);
        if now <= baseline + ALLOWED_RISE || started.elapsed() > Duration::from_secs(30) {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!(
        "resident memory: baseline {} MiB, during the burst {} MiB, after {} MiB",
        baseline / MIB,
        peak / MIB,
        settled / MIB
    );
    assert!(
        settled <= baseline + ALLOWED_RISE,
        "resident memory stayed {} MiB above its baseline 30 s after the burst",
        (settled - baseline) / MIB
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_logins_does_not_run_every_password_check_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (service, mut child) = start_service(dir.path()).await;
    let pid = child.id();
    let baseline = resident_bytes(pid);
    let (peak, stop, watcher) = watch_peak(pid);
    // Each Argon2id check holds 19 MiB: 150 at once would be near 3 GB.
    let mut logins = Vec::new();
    for i in 0..150 {
        let request = service
            .client
            .post(format!("{}/v1/review/login", service.base))
            .json(&serde_json::json!({"username": format!("nobody{i}"), "password": "wrong password!!"}));
        logins.push(tokio::spawn(async move {
            request.send().await.map(|r| r.status().as_u16())
        }));
    }
    for login in logins {
        let status = login.await.unwrap().unwrap();
        assert!(
            matches!(status, 401 | 503),
            "a wrong password is refused, or the caller told to come back: {status}"
        );
    }
    stop_watching(stop, watcher, &peak, baseline, "150 concurrent logins").await;
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The service closes a kept-alive connection once it has idled `header_read_timeout_secs`;
/// a request sent down such a connection as it closes is cut off unanswered. The tests'
/// clients let idle connections go well before then, so no test's request is lost to that
/// race, whatever the test idles between requests.
#[tokio::test(flavor = "current_thread")]
async fn the_tests_clients_never_reuse_a_connection_the_service_closes_as_idle() {
    let server = common::server::start(|c| c.http.header_read_timeout_secs = 1).await;
    server.wait_ready().await;
    let healthz = format!("{}/healthz", server.base);
    let mut cut_off = Vec::new();
    // Idles straddling the service's idle close, a millisecond apart.
    for idle_ms in 994..1008u64 {
        server.client.get(&healthz).send().await.unwrap();
        tokio::time::sleep(Duration::from_millis(idle_ms)).await;
        if let Err(e) = server.client.get(&healthz).send().await {
            cut_off.push(format!("after {idle_ms} ms idle: {e:?}"));
        }
    }
    assert!(cut_off.is_empty(), "requests cut off: {cut_off:#?}");
    server.finish().await;
}
