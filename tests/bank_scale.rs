//! Banks at size, over HTTP on SQLite: screenings keep answering during a bulk import, the
//! import becomes visible all at once, single-entry changes do not rebuild the index, and
//! listing banks reads counters rather than entries.
//!
//! `COVERGUARD_BANK_SCALE_LINES` sets the import's size (default 100,000; the 1M figures are
//! from `examples/bank_scale.rs`).

mod common;

use std::io::Cursor;
use std::time::Instant;

use common::server::{start, ADMIN_TOKEN, SERVICE_TOKEN};
use serde_json::{json, Value};

const REBUILDS: &str = "coverguard_bank_index_rebuilds_total";

/// A deterministic 64-hex-digit hash per line number (splitmix64).
fn hash_hex(n: u64) -> String {
    let mut state = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    (0..4)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            format!("{:016x}", z ^ (z >> 31))
        })
        .collect()
}

/// A textured PNG that differs per `seed`, so no screening is answered from the cache.
fn image(seed: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(128, 128, |x, y| {
        let v = (x * 7 + y * 13 + seed * 31) ^ (x * y + seed);
        image::Rgb([
            (v % 251) as u8,
            ((v / 3) % 253) as u8,
            ((x + seed) % 256) as u8,
        ])
    });
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

fn big_bank(list: &Value) -> (u64, u64) {
    let bank = list
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "big")
        .unwrap();
    (
        bank["entries"].as_u64().unwrap(),
        bank["disabled_entries"].as_u64().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn screening_is_never_held_up_by_bank_writes_and_single_entries_do_not_rebuild() {
    let lines: u64 = std::env::var("COVERGUARD_BANK_SCALE_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    // The import is larger than an image may be: only its own limit lets it in.
    let server = start(|c| {
        c.max_bytes = 1 << 20;
        c.max_import_bytes = 64 << 20;
        // Tight enough that waiting on a long bank write shows as a 504.
        c.request_deadline_ms = 1000;
    })
    .await;
    server.wait_ready().await;
    let (status, _) = server
        .send_json(
            ADMIN_TOKEN,
            reqwest::Method::POST,
            "/v1/banks",
            &json!({"name": "big", "signal_types": ["pdq", "md5"]}),
        )
        .await;
    assert_eq!(status, 201);
    let mut text = String::with_capacity(lines as usize * 80);
    for n in 0..lines {
        text.push_str(&format!("pdq {} case-{n}\n", hash_hex(n)));
    }
    assert!(text.len() > server.config.max_bytes);

    // Screen and list banks, one request after another, until the import has answered.
    let import = {
        let (client, base) = (server.client.clone(), server.base.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let resp = client
                .post(format!("{base}/v1/banks/big/import"))
                .bearer_auth(ADMIN_TOKEN)
                .header("content-type", "text/plain")
                .body(text)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            (status, body, started, Instant::now())
        })
    };
    let mut screenings: Vec<(u16, Instant, Instant)> = Vec::new();
    let mut listed = std::collections::BTreeSet::new();
    let mut seed = 0;
    while !import.is_finished() {
        seed += 1;
        let begun = Instant::now();
        let (status, body) = server
            .screen_bytes(
                Some(SERVICE_TOKEN),
                "image/png",
                image(seed),
                &format!("artwork_id=during-{seed}&owner_id=o1"),
            )
            .await;
        assert_eq!(status, 200, "screening {seed} during the import: {body}");
        screenings.push((status, begun, Instant::now()));
        let (status, list) = server.get(ADMIN_TOKEN, "/v1/banks").await;
        assert_eq!(status, 200);
        listed.insert(big_bank(&list).0);
    }
    let (status, body, import_start, import_end) = import.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changed"], lines);
    let overlapping = screenings
        .iter()
        .filter(|(_, begun, done)| *begun >= import_start && *done <= import_end)
        .count();
    assert!(
        overlapping >= 1,
        "no screening ran inside the import ({} in all)",
        screenings.len()
    );
    // Staged rows are invisible until the one flip that publishes them all.
    assert!(
        listed.iter().all(|n| *n == 0 || *n == lines),
        "a partial import was visible: {listed:?}"
    );
    let (_, list) = server.get(ADMIN_TOKEN, "/v1/banks").await;
    assert_eq!(big_bank(&list), (lines, 0));

    // One entry added, one disabled, one removed: applied as deltas, no rebuild, and seen
    // by the next screening.
    let rebuilds = server.metric(REBUILDS).await;
    assert!(rebuilds >= 1.0);
    let target = image(1_000_000);
    let md5 = coverguard::hash::exact_hashes(&target).md5;
    let (status, body) = server
        .send_json(
            ADMIN_TOKEN,
            reqwest::Method::POST,
            "/v1/banks/big/entries",
            &json!({"entries": [{"signal": "md5", "hash": md5, "external_id": "one"}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server
        .send_json(
            ADMIN_TOKEN,
            reqwest::Method::PATCH,
            &format!("/v1/banks/big/entries/pdq/{}", hash_hex(7)),
            &json!({"disabled": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let path = format!("/v1/banks/big/entries/pdq/{}", hash_hex(8));
    assert_eq!(server.delete(ADMIN_TOKEN, &path).await, 200);
    let (status, screened) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/png",
            target,
            "artwork_id=after&owner_id=o1",
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(screened["verdict"], "block", "{screened}");
    assert_eq!(server.metric(REBUILDS).await, rebuilds);

    // Listing reports the counters the writes keep, not a count of entries: changed behind
    // the service's back, the counter is what it answers.
    let (_, list) = server.get(ADMIN_TOKEN, "/v1/banks").await;
    assert_eq!(big_bank(&list), (lines, 1));
    let db = server.dir.path().join("data/coverguard.db");
    assert!(db.exists(), "no store at {}", db.display());
    {
        use sqlx::Connection as _;
        let mut conn = sqlx::SqliteConnection::connect(db.to_str().unwrap())
            .await
            .unwrap();
        sqlx::query("UPDATE banks SET entry_count = 7 WHERE name = 'big'")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let (_, list) = server.get(ADMIN_TOKEN, "/v1/banks").await;
    assert_eq!(big_bank(&list), (7, 1));

    // Past the import's own limit: 413, nothing imported.
    let oversized = "#".repeat(server.config.max_import_bytes + 1);
    let resp = server
        .client
        .post(format!("{}/v1/banks/big/import", server.base))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "text/plain")
        .body(oversized)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    server.finish().await;
}
