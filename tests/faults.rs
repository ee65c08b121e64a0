//! Faults: the store going away and coming back, the service killed with `kill -9`
//! mid-screening while the webhook is down, and a full quarantine disk. In every case a
//! screening answers an error or a verdict that was recorded, never an unrecorded `allow`,
//! and nothing is lost or written twice.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::process::*;
use common::server::{photo, start, ADMIN_TOKEN, SERVICE_TOKEN};
use common::webhook::Webhook;
use serde_json::json;
use sqlx::Connection;

// --- store outages, in process ------------------------------------------------------------

/// Screen camera.png (allowed: no bank here) as `artwork`, expecting a recorded allow.
async fn screened_allow(server: &common::server::Server, artwork: &str) {
    let (status, body) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/png",
            photo("camera.png"),
            &format!("artwork_id={artwork}&owner_id=o"),
        )
        .await;
    assert_eq!(
        (status, body["verdict"].as_str()),
        (200, Some("allow")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_outage_is_an_error_never_an_allow_and_screening_recovers() {
    let server = start(|c| c.request_deadline_ms = 10_000).await;
    server.wait_ready().await;
    screened_allow(&server, "before").await;

    // Another process holds the database's write lock: the store cannot record anything.
    let db = server.config.data_dir.join("coverguard.db");
    let mut holder = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut holder)
        .await
        .unwrap();
    let (status, body) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/png",
            photo("camera.png"),
            "artwork_id=during&owner_id=o",
        )
        .await;
    // SQLite waits busy_timeout (5 s, inside the 10 s deadline), then reports BUSY:
    // the store is unavailable, and the caller is told to retry.
    assert_eq!(
        (status, body["error"]["kind"].as_str()),
        (503, Some("store_unavailable")),
        "{body}"
    );
    assert!(
        body.get("verdict").is_none(),
        "an error carries no verdict: {body}"
    );
    assert!(body["error"]["kind"].is_string(), "{body}");

    // The store is back: the same upload is screened and recorded, with no restart.
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    screened_allow(&server, "during").await;
    let (status, artwork) = server.get(SERVICE_TOKEN, "/v1/artworks/during").await;
    assert_eq!(status, 200, "{artwork}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_missing_at_start_up_is_retried_until_it_appears() {
    let dir = tempfile::tempdir().unwrap();
    // The data directory's parent is a file: the store cannot be opened (an unmounted
    // volume looks like this to the process).
    let mount = dir.path().join("volume");
    std::fs::write(&mount, b"not a directory").unwrap();
    let server = start(|c| c.data_dir = mount.join("data")).await;
    let started = Instant::now();
    let not_ready = loop {
        let (status, body) = server
            .screen_bytes(
                Some(SERVICE_TOKEN),
                "image/png",
                photo("camera.png"),
                "artwork_id=x",
            )
            .await;
        assert_eq!(status, 503, "{body}");
        assert!(body.get("verdict").is_none());
        let message = body["error"]["message"].as_str().unwrap_or("").to_string();
        if message.contains("retrying") {
            break message;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never failed: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(not_ready.contains("store"), "{not_ready}");

    std::fs::remove_file(&mount).unwrap();
    std::fs::create_dir(&mount).unwrap();
    server.wait_ready().await;
    screened_allow(&server, "x").await;
}

// --- the service as a process -------------------------------------------------------------

/// Upload `i`, the photo `name`, which the bank blocks.
async fn screen_blocked(service: &Service, name: &str, i: usize) {
    let key = format!("upload-{i}");
    let path = format!("/v1/screen?artwork_id=a{i}&owner_id=o");
    let (status, body) = service
        .send(SERVICE_TOKEN, &path, "image/png", photo(name), Some(&key))
        .await;
    assert_eq!(
        (status, body["verdict"].as_str()),
        (200, Some("block")),
        "{body}"
    );
}

/// Two `serve` replicas on one Postgres, each screening uploads; one is killed while the
/// receiver holds its deliveries. Every report is acknowledged in the end, no report is
/// ever being sent by two senders at once, and each is sent under its one key.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_killed_mid_delivery_leaves_its_reports_to_the_other_sent_one_at_a_time() {
    let Some(schema) = common::PgSchema::create("cg_rep").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let quarantine = dir.path().join("shared-quarantine");
    let hook = Webhook::start().await;
    hook.hold(true);
    let replica = |name: &str| {
        let own = dir.path().join(name);
        std::fs::create_dir_all(&own).unwrap();
        let service = Service::new(&own, hook.url(), Some(&quarantine));
        // The shortest lease, so the test waits for the dead replica's as little as it can.
        service.add_top_level_config(&format!(
            "database_url = \"{}\"\noutbox_lease_secs = 11\n",
            schema.url
        ));
        service
    };
    let (a, b) = (replica("a"), replica("b"));
    let blocked: Vec<String> = photos_by_size()
        .into_iter()
        .take(6)
        .map(|(n, _)| n)
        .collect();
    // Replica a alone screens three uploads and begins delivering their reports.
    let mut a_child = a.command().spawn().unwrap();
    a.wait_ready(&mut a_child).await;
    let names: Vec<&str> = blocked.iter().map(String::as_str).collect();
    a.bank(&names).await;
    for (i, name) in blocked.iter().enumerate().take(3) {
        screen_blocked(&a, name, i).await;
    }
    let a_sending = hook.wait_receiving(1).await;
    // Replica b joins and screens the other three.
    let mut b_child = b.command().spawn().unwrap();
    b.wait_ready(&mut b_child).await;
    for (i, name) in blocked.iter().enumerate().skip(3) {
        screen_blocked(&b, name, i).await;
    }
    // a dies in the middle of its deliveries; then the receiver answers again.
    a_child.kill().unwrap(); // SIGKILL
    a_child.wait().unwrap();
    hook.hold(false);

    let acknowledged_keys = |log: &[common::webhook::Delivery]| {
        log.iter()
            .filter(|d| d.acknowledged)
            .map(|d| d.idempotency_key.clone())
            .collect::<std::collections::BTreeSet<_>>()
    };
    // The store, not the webhook, says when every report is delivered: the webhook may
    // also have answered 200 to a delivery a was holding when it died, which a never read
    // (b sends that report again once a's lease ends).
    let mut db = sqlx::PgConnection::connect(&schema.url).await.unwrap();
    let started = Instant::now();
    let reports = loop {
        let reports: Vec<(String, String, String)> =
            sqlx::query_as("SELECT id, idempotency_key, state FROM reports WHERE kind = 'hit'")
                .fetch_all(&mut db)
                .await
                .unwrap();
        let delivered = reports.iter().filter(|(_, _, state)| state == "delivered");
        if delivered.count() == 6 {
            break reports;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "reports still undelivered after 90 s: {reports:?}"
        );
        // Nothing notifies a change of state in the store: it is read again shortly.
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    stop(&mut b_child);
    db.close().await.unwrap();
    schema.drop().await;

    assert_eq!(reports.len(), 6, "one report per upload: {reports:?}");
    assert_eq!(
        hook.most_at_once(),
        1,
        "a report was being sent twice at once"
    );
    let deliveries = hook.deliveries();
    let acknowledged = acknowledged_keys(&deliveries);
    for (id, key, _) in &reports {
        assert!(
            acknowledged.contains(key),
            "report {id} was never acknowledged"
        );
        // Every attempt at this report, by either replica, came under its one key.
        for delivery in deliveries
            .iter()
            .filter(|d| d.json()["report_id"] == id.as_str())
        {
            assert_eq!(&delivery.idempotency_key, key);
        }
    }
    // The reports a was sending when it died were among them.
    for key in &a_sending {
        assert!(reports.iter().any(|(_, k, _)| k == key), "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_screening_with_the_webhook_down_loses_nothing_and_reports_once() {
    let dir = tempfile::tempdir().unwrap();
    // The webhook is down until the end: every delivery fails meanwhile.
    let hook = Webhook::start().await;
    hook.set_down(true);
    let service = Service::new(dir.path(), hook.url(), None);
    // A report being sent at the kill waits out its lease before it is sent again: the
    // shortest, so that is within the test's patience.
    service.add_top_level_config("outbox_lease_secs = 11\n");
    let mut child = service.command().spawn().unwrap();
    service.wait_ready(&mut child).await;
    let blocked: Vec<String> = photos_by_size()
        .into_iter()
        .take(6)
        .map(|(n, _)| n)
        .collect();
    let names: Vec<&str> = blocked.iter().map(String::as_str).collect();
    service.bank(&names).await;

    // Six uploads in flight, each with its own idempotency key; the process is killed as
    // soon as the first answer arrives, with the others mid-screening.
    let service = Arc::new(service);
    let mut requests = tokio::task::JoinSet::new();
    for (i, name) in blocked.iter().enumerate() {
        let (service, bytes) = (Arc::clone(&service), photo(name));
        requests.spawn(async move {
            let key = format!("upload-{i}");
            let path = format!("/v1/screen?artwork_id=a{i}&owner_id=o");
            service
                .send(SERVICE_TOKEN, &path, "image/png", bytes, Some(&key))
                .await
        });
    }
    let first = requests.join_next().await.unwrap().unwrap();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let mut answered_before_kill = 1;
    while let Some(answer) = requests.join_next().await {
        answered_before_kill += usize::from(answer.unwrap().0 == 200);
    }
    assert_eq!(first.0, 200, "{:?}", first.1);
    eprintln!("{answered_before_kill} of 6 answered before the kill");

    // The upload pipeline retries every upload that got no verdict (it never publishes
    // without one); here it retries all six, as it would after its own timeout.
    let mut child = service.command().spawn().unwrap();
    service.wait_ready(&mut child).await;
    let mut screening_ids = std::collections::BTreeSet::new();
    for (i, name) in blocked.iter().enumerate() {
        let key = format!("upload-{i}");
        let path = format!("/v1/screen?artwork_id=a{i}&owner_id=o");
        let (status, body) = service
            .send(SERVICE_TOKEN, &path, "image/png", photo(name), Some(&key))
            .await;
        assert_eq!(
            (status, body["verdict"].as_str()),
            (200, Some("block")),
            "{body}"
        );
        assert!(screening_ids.insert(body["screening_id"].as_str().unwrap().to_string()));
        // The same key again answers the same screening.
        let (_, again) = service
            .send(SERVICE_TOKEN, &path, "image/png", photo(name), Some(&key))
            .await;
        assert_eq!(again["screening_id"], body["screening_id"]);
        assert_eq!(again["report_id"], body["report_id"]);
    }

    let mut db = service.db().await;
    assert_eq!(
        count(&mut db, "SELECT count(*) FROM screenings").await,
        6,
        "one screening per upload"
    );
    assert_eq!(
        count(&mut db, "SELECT count(*) FROM reports WHERE kind = 'hit'").await,
        6,
        "one report per upload"
    );
    assert_eq!(
        count(&mut db, "SELECT count(*) FROM quarantine_items").await,
        6
    );
    assert_eq!(
        count(
            &mut db,
            "SELECT count(*) FROM reports WHERE state = 'delivered'"
        )
        .await,
        0
    );

    // The webhook comes back: each report is delivered, once. Once the service has
    // stopped (its outbox finishing what it was sending), nothing more can arrive.
    hook.set_down(false);
    let acknowledged_keys = |log: &[common::webhook::Delivery]| -> Vec<String> {
        log.iter()
            .filter(|d| d.acknowledged)
            .map(|d| d.idempotency_key.clone())
            .collect()
    };
    hook.wait_until("six reports", |log| acknowledged_keys(log).len() >= 6)
        .await;
    stop(&mut child);
    assert_eq!(
        count(
            &mut db,
            "SELECT count(*) FROM reports WHERE state = 'delivered'"
        )
        .await,
        6
    );
    let keys = acknowledged_keys(&hook.deliveries());
    let distinct: std::collections::BTreeSet<&String> = keys.iter().collect();
    assert_eq!((keys.len(), distinct.len()), (6, 6), "{keys:?}");

    // No quarantine file is corrupt, and no temporary file was left behind.
    let key = coverguard::act::quarantine::QuarantineKey::parse(QUARANTINE_KEY).unwrap();
    let vault =
        coverguard::act::quarantine::LocalVault::open(dir.path().join("data/quarantine"), key)
            .unwrap();
    let referenced: Vec<String> = sqlx::query_scalar("SELECT object_key FROM quarantine_items")
        .fetch_all(&mut db)
        .await
        .unwrap();
    // Every object under its final name is whole, including one written just before the
    // kill whose row never committed: objects only ever appear by rename. A kill in the
    // middle of a write leaves at most a dot-named temporary file, which no reader takes
    // for an object (the vault's sweep removes it once it is stale).
    let mut objects = 0;
    for path in walk(&dir.path().join("data/quarantine")) {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with('.') && name.ends_with(".tmp") {
            eprintln!("temporary file left by the kill: {name}");
            continue;
        }
        use coverguard::act::quarantine::QuarantineVault;
        let key = coverguard::act::quarantine::ObjectKey::from_sha256(&name).unwrap();
        let bytes = vault.get(&key).await.unwrap();
        assert_eq!(coverguard::hash::exact_hashes(&bytes).sha256, name);
        objects += 1;
    }
    assert!(objects >= referenced.len());
    for object in &referenced {
        let key = coverguard::act::quarantine::ObjectKey::from_sha256(object).unwrap();
        use coverguard::act::quarantine::QuarantineVault;
        vault.get(&key).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_quarantine_disk_is_an_error_not_an_allow() {
    let dir = tempfile::tempdir().unwrap();
    let photos = photos_by_size();
    let (small, small_size) = photos[0].clone();
    let (large, large_size) = photos.last().unwrap().clone();
    // A filesystem with room for the small photo's encrypted copy but not the large one's.
    let room = (small_size + large_size) / 2;
    assert!(
        room > small_size + 64 * 1024 && room < large_size,
        "{small_size} {large_size}"
    );
    let quarantine = dir.path().join("quarantine");
    std::fs::create_dir(&quarantine).unwrap();
    let hook = Webhook::start().await;
    let service = Service::new(dir.path(), hook.url(), Some(&quarantine));
    // A private mount namespace: the small filesystem exists for the service alone and
    // disappears with it, whatever happens to the test.
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--map-root-user", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs -o size={room} tmpfs '{}' && exec \"$0\" \"$@\"",
            quarantine.display()
        ))
        .arg(env!("CARGO_BIN_EXE_coverguard"))
        .args(service.command().get_args())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    service.hand_over(&mut command);
    let mut child = command
        .spawn()
        .expect("unshare (util-linux) runs the service in its own mount namespace");
    service.wait_ready(&mut child).await;
    service.bank(&[&small, &large]).await;

    let (status, body) = service
        .send(
            SERVICE_TOKEN,
            "/v1/screen?artwork_id=big&owner_id=o",
            "image/png",
            photo(&large),
            None,
        )
        .await;
    assert_eq!(status, 500, "{body}");
    assert!(body.get("verdict").is_none(), "{body}");
    assert_eq!(body["error"]["kind"], "quarantine", "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("full"),
        "{body}"
    );
    let (status, _) = service
        .send(
            SERVICE_TOKEN,
            "/v1/screen?artwork_id=small&owner_id=o",
            "image/png",
            photo(&small),
            None,
        )
        .await;
    assert_eq!(status, 200, "the failed write left its space free");

    let mut db = service.db().await;
    assert_eq!(
        count(
            &mut db,
            "SELECT count(*) FROM artworks WHERE artwork_id = 'big'"
        )
        .await,
        0
    );
    assert_eq!(count(&mut db, "SELECT count(*) FROM screenings").await, 1);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Readiness probes answered 503 while the model loads are the expected start-up, not
/// errors: an operator's log shows no ERROR line for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn start_up_probes_are_not_errors_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Webhook::start().await;
    let service = Service::new(dir.path(), hook.url(), None);
    let log = dir.path().join("service.log");
    let mut child = service
        .command()
        .env("COVERGUARD_LOG", "info")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Polls /readyz (and so gets 503 not_ready) until the service is ready.
    let mut not_ready = 0;
    loop {
        let status = service
            .client
            .get(format!("{}/readyz", service.base))
            .send()
            .await
            .map(|r| r.status().as_u16());
        match status {
            Ok(200) => break,
            Ok(503) => not_ready += 1,
            _ => {}
        }
        assert!(child.try_wait().unwrap().is_none(), "the service exited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(not_ready > 0, "the probe never saw the service loading");
    assert!(text.contains("ready"), "{text}");
    let errors: Vec<&str> = text.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_never_reach_the_log_even_at_debug_level() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Webhook::start().await;
    let service = Service::new(dir.path(), hook.url(), None);
    const WEBHOOK_SECRET: &str = "hook-secret-a9f3e1c07b";
    const PASSWORD: &str = "a long console password 7351";
    let mut config = std::fs::read_to_string(&service.config).unwrap();
    config = config.replace(
        &format!("url = \"{}\"\n", hook.url()),
        &format!("url = \"{}\"\nsecret = \"{WEBHOOK_SECRET}\"\n", hook.url()),
    );
    std::fs::write(&service.config, config).unwrap();
    let log = dir.path().join("service.log");
    let mut child = service
        .command()
        .env("COVERGUARD_LOG", "debug")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    service.wait_ready(&mut child).await;

    // Every kind of secret crosses the service: bearer tokens (good and bad), a console
    // password (right and wrong), a session cookie, the webhook's signing secret.
    service.bank(&["camera.png"]).await;
    let (status, body) = service
        .send(
            SERVICE_TOKEN,
            "/v1/screen?artwork_id=a&owner_id=o",
            "image/png",
            photo("camera.png"),
            None,
        )
        .await;
    assert_eq!(
        (status, body["verdict"].as_str()),
        (200, Some("block")),
        "{body}"
    );
    let (status, _) = service
        .send(
            "not-a-real-token-5521",
            "/v1/screen",
            "image/png",
            photo("camera.png"),
            None,
        )
        .await;
    assert_eq!(status, 401);
    let user = json!({"username": "rita", "password": PASSWORD, "role": "reviewer"});
    let (status, body) = service
        .send(
            ADMIN_TOKEN,
            "/v1/users",
            "application/json",
            user.to_string().into_bytes(),
            None,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let mut cookie = String::new();
    for password in ["wrong password 123", PASSWORD] {
        let response = service
            .client
            .post(format!("{}/v1/review/login", service.base))
            .json(&json!({"username": "rita", "password": password}))
            .send()
            .await
            .unwrap();
        if let Some(c) = response.headers().get("set-cookie") {
            cookie = c.to_str().unwrap().split(';').next().unwrap().to_string();
        }
    }
    let session = cookie.split_once('=').map(|(_, v)| v.to_string()).unwrap();
    let response = service
        .client
        .get(format!("{}/v1/review/queue", service.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The block's report is signed with the secret and sent; then the service stops,
    // its log complete.
    hook.wait_until("the block's report", |log| {
        log.iter().any(|d| d.acknowledged)
    })
    .await;
    stop(&mut child);

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.lines().count() > 10, "debug logging was on: {text}");
    for secret in [
        SERVICE_TOKEN,
        ADMIN_TOKEN,
        "not-a-real-token-5521",
        PASSWORD,
        "wrong password 123",
        WEBHOOK_SECRET,
        QUARANTINE_KEY,
        &session,
    ] {
        assert!(
            !text.contains(secret),
            "the log holds a secret ({} chars)",
            secret.len()
        );
    }
}
