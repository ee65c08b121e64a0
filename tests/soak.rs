//! A bounded soak of `coverguard serve` on loopback: many clients, more than its queue
//! holds, sending a mix of good uploads and every kind of bad one for a minute
//! (`COVERGUARD_SOAK_SECS` makes it longer). The service must not crash or grow without
//! bound; beyond capacity it answers only 429; every request is answered, each with its
//! own kind; and every 200 is exactly one recorded screening.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::process::*;
use common::server::{photo, SERVICE_TOKEN};
use serde_json::json;

/// One kind of request and what it must be answered with (429 is always allowed: load is
/// shed before anything else is looked at).
struct Input {
    name: &'static str,
    token: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
    expected: u16,
    kind: Option<&'static str>,
}

const MAX_BYTES: usize = 2 * 1024 * 1024;

fn inputs() -> Vec<Input> {
    let png = photo("astronaut.png");
    let mut huge = png[..33].to_vec();
    huge[16..24].copy_from_slice(&[0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0]); // 100000 x 100000
    let good = |name: &'static str, file: &str, content_type: &'static str| Input {
        name,
        token: SERVICE_TOKEN,
        content_type,
        body: photo(file),
        expected: 200,
        kind: None,
    };
    let bad = |name: &'static str,
               content_type: &'static str,
               body: Vec<u8>,
               expected: u16,
               kind: &'static str| Input {
        name,
        token: SERVICE_TOKEN,
        content_type,
        body,
        expected,
        kind: Some(kind),
    };
    vec![
        good("allow", "astronaut.png", "image/png"),
        good("review", "color.png", "image/png"),
        good("block (bank)", "camera.png", "image/png"),
        good("jpeg", "rocket.jpg", "image/jpeg"),
        bad(
            "truncated",
            "image/png",
            png[..png.len() / 3].to_vec(),
            422,
            "corrupt",
        ),
        bad("empty", "image/png", Vec::new(), 422, "empty"),
        bad(
            "not an image",
            "image/png",
            b"GIF? no, plain text pretending".to_vec(),
            415,
            "unsupported_format",
        ),
        bad(
            "declared 100000x100000",
            "image/png",
            huge,
            422,
            "dimensions",
        ),
        bad(
            "over max_bytes",
            "image/png",
            vec![0x89; MAX_BYTES + 512 * 1024],
            413,
            "too_large",
        ),
        bad(
            "text/plain",
            "text/plain",
            b"hello".to_vec(),
            415,
            "unsupported_media_type",
        ),
        bad(
            "metadata URL",
            "application/json",
            json!({"url": "http://169.254.169.254/latest/meta-data/"})
                .to_string()
                .into_bytes(),
            422,
            "blocked_destination",
        ),
        bad(
            "malformed JSON",
            "application/json",
            b"{\"url\": ".to_vec(),
            400,
            "bad_request",
        ),
        Input {
            name: "bad token",
            token: "not-a-token-0000000000",
            content_type: "image/png",
            body: photo("astronaut.png"),
            expected: 401,
            kind: Some("unauthorized"),
        },
    ]
}

#[derive(Default)]
struct Tally {
    /// (input, status, kind) -> count
    answers: BTreeMap<(String, u16, String), u64>,
    unanswered: Vec<String>,
    wrong: Vec<String>,
    screened: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_soak_of_mixed_inputs_beyond_capacity_is_answered_in_full_and_stays_bounded() {
    let seconds: u64 = std::env::var("COVERGUARD_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let dir = tempfile::tempdir().unwrap();
    let hook = common::webhook::Webhook::start().await;
    let service = Service::new(dir.path(), hook.url(), None);
    // A queue of 4 under 16 clients: capacity is exceeded all the time.
    service.add_config("[scheduler]\nqueue_capacity = 4\n");
    service.add_top_level_config(&format!("max_bytes = {MAX_BYTES}\n"));
    let mut child = service.command().spawn().unwrap();
    service.wait_ready(&mut child).await;
    service.bank(&["camera.png"]).await;
    let pid = child.id();

    let inputs = Arc::new(inputs());
    let tally = Arc::new(Mutex::new(Tally::default()));
    let service = Arc::new(service);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..16usize {
        let (inputs, tally, service) = (
            Arc::clone(&inputs),
            Arc::clone(&tally),
            Arc::clone(&service),
        );
        clients.spawn(async move {
            let mut i = client;
            while Instant::now() < deadline {
                let input = &inputs[i % inputs.len()];
                i += 7;
                let path = format!("/v1/screen?artwork_id=c{client}-{i}&owner_id=o{client}");
                let response = service
                    .client
                    .post(format!("{}{path}", service.base))
                    .bearer_auth(input.token)
                    .header("content-type", input.content_type)
                    .body(input.body.clone())
                    .timeout(Duration::from_secs(60))
                    .send()
                    .await;
                let tally_for = |status: u16, kind: String| {
                    let mut t = tally.lock().unwrap();
                    let ok = status == 429 && kind == "overloaded"
                        || status == input.expected && input.kind.is_none_or(|k| k == kind);
                    if !ok {
                        t.wrong.push(format!("{}: {status} {kind}", input.name));
                    }
                    t.screened += u64::from(status == 200);
                    *t.answers
                        .entry((input.name.to_string(), status, kind))
                        .or_default() += 1;
                };
                match response {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let body: serde_json::Value = r.json().await.unwrap_or_default();
                        let kind = body["error"]["kind"].as_str().unwrap_or("").to_string();
                        if status == 200 {
                            assert!(body["verdict"].is_string(), "{body}");
                        }
                        tally_for(status, kind);
                    }
                    Err(e) => tally
                        .lock()
                        .unwrap()
                        .unanswered
                        .push(format!("{}: {e:?}", input.name)),
                }
                if i % 5 == 0 {
                    // Clients that honour Retry-After leave room; others hammer.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        });
    }
    // Resident memory, sampled each second.
    let mut rss = Vec::new();
    while !clients.is_empty() {
        tokio::select! {
            done = clients.join_next() => { done.unwrap().unwrap(); }
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if let Some(sample) = rss_kib(pid) { rss.push(sample); }
            }
        }
    }
    assert!(child.try_wait().unwrap().is_none(), "the service died");
    let tally = std::mem::take(&mut *tally.lock().unwrap());
    let total: u64 = tally.answers.values().sum();
    eprintln!(
        "soak: {seconds} s, {total} answered, {} unanswered",
        tally.unanswered.len()
    );
    for ((name, status, kind), n) in &tally.answers {
        eprintln!("  {name:<24} {status} {kind:<22} {n}");
    }
    let (first, last) = (rss[rss.len() / 4].0, rss.last().unwrap().0);
    let peak = rss.iter().map(|s| s.1).max().unwrap();
    eprintln!(
        "RSS: {} MiB at 1/4, {} MiB at the end, peak {} MiB",
        first / 1024,
        last / 1024,
        peak / 1024
    );

    assert!(
        tally.unanswered.is_empty(),
        "{:?}",
        &tally.unanswered[..tally.unanswered.len().min(5)]
    );
    assert!(
        tally.wrong.is_empty(),
        "{:?}",
        &tally.wrong[..tally.wrong.len().min(5)]
    );
    let shed: u64 = tally
        .answers
        .iter()
        .filter(|((_, s, _), _)| *s == 429)
        .map(|(_, n)| n)
        .sum();
    assert!(
        shed > 0 && tally.screened > 0,
        "capacity was exceeded and work still done"
    );
    assert!(total >= 1000, "only {total} requests");
    // Bounded: after the first quarter, resident memory grows by no more than 64 MiB.
    assert!(last <= first + 64 * 1024, "{first} KiB -> {last} KiB");

    // Every 200 is one recorded screening, every block one report; the service still serves.
    let mut db = service.db().await;
    assert_eq!(
        count(&mut db, "SELECT count(*) FROM screenings").await as u64,
        tally.screened
    );
    let blocks: u64 = tally
        .answers
        .iter()
        .filter(|((name, status, _), _)| name == "block (bank)" && *status == 200)
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        count(&mut db, "SELECT count(*) FROM reports WHERE kind = 'hit'").await as u64,
        blocks
    );
    let (status, body) = service
        .send(
            SERVICE_TOKEN,
            "/v1/screen?artwork_id=after&owner_id=o",
            "image/png",
            photo("astronaut.png"),
            None,
        )
        .await;
    assert_eq!(
        (status, body["verdict"].as_str()),
        (200, Some("allow")),
        "{body}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
