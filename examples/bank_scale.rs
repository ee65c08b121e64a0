//! Bank operations at size, over HTTP against an in-process `serve` on SQLite: imports
//! `LINES` generated PDQ lines into one bank while screening a fresh image every 250 ms, then
//! times adding one entry, disabling one entry (by hash, and by id) and `GET /v1/banks`.
//!
//! ```sh
//! cargo run --release --example bank_scale -- [LINES] [LINES_PER_REQUEST] [REPS]
//! ```
//!
//! Defaults: 1,000,000 lines in one request, 5 repetitions. Prints one JSON object: the
//! import's wall time, the screenings answered during it by status and their slowest
//! latency, the median of each timed operation, and the process's peak resident memory.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use coverguard::config::{ServiceConfig, TokenConfig};

const SERVICE_TOKEN: &str = "svc-token-0123456789";
const ADMIN_TOKEN: &str = "admin-token-0123456789";

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A deterministic 64-hex-digit hash for line `n` (splitmix64, so lines are distinct).
fn hash_hex(n: u64) -> String {
    let mut state = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut out = String::with_capacity(64);
    for _ in 0..4 {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.push_str(&format!("{:016x}", z ^ (z >> 31)));
    }
    out
}

/// A textured PNG that differs per `seed`, so no screening is answered from the cache.
fn image(seed: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(256, 256, |x, y| {
        let v = (x * 7 + y * 13 + seed * 31) ^ (x * y + seed);
        image::Rgb([
            (v % 251) as u8,
            ((v / 3) % 253) as u8,
            ((x + seed) % 256) as u8,
        ])
    });
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("PNG encodes");
    out
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

async fn timed(
    client: &reqwest::Client,
    request: reqwest::RequestBuilder,
) -> anyhow::Result<(u16, f64)> {
    let _ = client;
    let start = Instant::now();
    let resp = request.send().await?;
    let status = resp.status().as_u16();
    resp.bytes().await?;
    Ok((status, start.elapsed().as_secs_f64() * 1000.0))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let lines: u64 = args.next().map_or(Ok(1_000_000), |a| a.parse())?;
    let per_request: u64 = args.next().map_or(Ok(lines), |a| a.parse())?;
    let reps: usize = args.next().map_or(Ok(5), |a| a.parse())?;
    // RUST_LOG=sqlx=warn shows the store's slow statements, when a screening was slow.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();

    let dir = tempfile::tempdir()?;
    let config = ServiceConfig {
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
        ..ServiceConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let state = coverguard::http::AppState::new(config);
    let mut loaded = state.watch_loaded();
    tokio::spawn(coverguard::http::serve_state(
        listener,
        state,
        std::future::pending(),
    ));
    let client = reqwest::Client::new();
    tokio::time::timeout(Duration::from_secs(60), loaded.wait_for(|l| *l))
        .await
        .map_err(|_| anyhow::anyhow!("the service did not load within a minute"))??;
    let resp = client
        .post(format!("{base}/v1/banks"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"name": "big", "signal_types": ["pdq", "md5"]}))
        .send()
        .await?;
    ensure!(resp.status().is_success(), "create bank: {}", resp.status());

    // Screenings every 250 ms until the import is done.
    let importing = Arc::new(AtomicBool::new(true));
    let screener = {
        let (client, base, importing) = (client.clone(), base.clone(), importing.clone());
        tokio::spawn(async move {
            let mut answers: Vec<(u16, f64, f64)> = Vec::new();
            let mut seed = 0u32;
            let start = Instant::now();
            while importing.load(Ordering::SeqCst) {
                seed += 1;
                let sent_at = start.elapsed().as_secs_f64();
                let request = client
                    .post(format!(
                        "{base}/v1/screen?artwork_id=during-{seed}&owner_id=o1"
                    ))
                    .bearer_auth(SERVICE_TOKEN)
                    .header("content-type", "image/png")
                    .body(image(seed));
                let (status, ms) = timed(&client, request).await.unwrap_or((0, 0.0));
                answers.push((status, ms, sent_at));
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            answers
        })
    };

    let import_start = Instant::now();
    let mut first = 0u64;
    while first < lines {
        let last = (first + per_request).min(lines);
        let mut text = String::with_capacity(((last - first) * 80) as usize);
        for n in first..last {
            text.push_str(&format!("pdq {} case-{n}\n", hash_hex(n)));
        }
        let resp = client
            .post(format!("{base}/v1/banks/big/import"))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "text/plain")
            .body(text)
            .send()
            .await?;
        let status = resp.status();
        let body = resp.text().await?;
        ensure!(
            status.is_success(),
            "import {first}..{last}: {status} {body}"
        );
        first = last;
    }
    let import_s = import_start.elapsed().as_secs_f64();
    importing.store(false, Ordering::SeqCst);
    let answers = screener.await.context("screener")?;
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for (status, _, _) in &answers {
        *by_status.entry(*status).or_default() += 1;
    }
    let slowest = answers.iter().map(|a| a.1).fold(0.0, f64::max);
    // When in the import the slow ones were sent (seconds from its start) and how long
    // they took (ms), to tell a slow batch from the final rebuild.
    let slow: Vec<(f64, f64, u16)> = answers
        .iter()
        .filter(|a| a.1 >= 500.0)
        .map(|a| ((a.2 * 10.0).round() / 10.0, a.1.round(), a.0))
        .collect();

    let (mut add, mut disable, mut disable_id, mut list) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for rep in 0..reps {
        let request = client
            .post(format!("{base}/v1/banks/big/entries"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({"entries": [
                {"signal": "pdq", "hash": hash_hex(lines + rep as u64), "external_id": "one"}
            ]}));
        let (status, ms) = timed(&client, request).await?;
        ensure!(status == 200, "add: {status}");
        add.push(ms);
        let request = client
            .patch(format!(
                "{base}/v1/banks/big/entries/pdq/{}",
                hash_hex(rep as u64 * 7919 % lines)
            ))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({"disabled": true}));
        let (status, ms) = timed(&client, request).await?;
        ensure!(status == 200, "disable: {status}");
        disable.push(ms);
        let request = client
            .patch(format!(
                "{base}/v1/banks/big/entry-ids/case-{}",
                (rep as u64 * 7919 + 1) % lines
            ))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({"disabled": true}));
        let (status, ms) = timed(&client, request).await?;
        ensure!(status == 200, "disable by id: {status}");
        disable_id.push(ms);
        let request = client
            .get(format!("{base}/v1/banks"))
            .bearer_auth(ADMIN_TOKEN);
        let (status, ms) = timed(&client, request).await?;
        ensure!(status == 200, "list: {status}");
        list.push(ms);
    }
    let summary = serde_json::json!({
        "lines": lines,
        "lines_per_request": per_request,
        "import_s": (import_s * 10.0).round() / 10.0,
        "screenings_during_import": by_status,
        "slowest_screening_ms": slowest.round(),
        "screenings_over_500ms": slow,
        "add_one_entry_ms": median(add).round(),
        "disable_one_entry_ms": median(disable).round(),
        "disable_one_entry_id_ms": median(disable_id).round(),
        "list_banks_ms": median(list).round(),
        "reps": reps,
        "peak_rss_mib": peak_rss_mib().round(),
    });
    println!("{summary}");
    Ok(())
}
