//! `coverguard serve` over HTTP on loopback: screening, errors, auth, quarantine,
//! reports, takedown, readiness and overload.

mod common;

use common::server::*;
use common::webhook::Webhook;

use coverguard::decode::Resolution;
use coverguard::screening::scheduler::SchedulerConfig;
use coverguard::store::{self, ReportState};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readiness_then_screening_with_records_and_errors() {
    // Review verdicts only hold the artwork here (the default also quarantines them).
    let server = start(|c| c.quarantine_on_review = false).await;
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
    // The build says whether its JPEG decoder has SIMD (every build must).
    let build_info = format!(
        "coverguard_build_info{{version=\"{}\",jpeg_simd=\"on\",profile=\"{}\"}}",
        coverguard::build_info::VERSION,
        coverguard::build_info::PROFILE
    );
    assert_eq!(server.metric(&build_info).await, 1.0);

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
            .screen_bytes(
                Some(SERVICE_TOKEN),
                content_type,
                body,
                "artwork_id=bad&owner_id=o1",
            )
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

/// Every route the API document says takes a bearer token refuses a request without one
/// and one with an unknown token; the admin areas refuse a service token, and the service
/// routes accept it. A route added without its token check fails here.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_bearer_route_checks_the_token_and_its_role() {
    let server = start(|_| {}).await;
    server.wait_ready().await;
    let document = server.openapi().await;
    let admin_areas = [
        "/v1/banks",
        "/v1/users",
        "/v1/accounts",
        "/v1/review/audit",
        "/v1/statements",
        "/v1/transparency",
    ];
    let mut checked = 0;
    for (path, operations) in document["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let bearer = operation["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
            if !bearer {
                continue;
            }
            let url = format!("{}{}", server.base, path.replace('{', "x").replace('}', ""));
            let method: reqwest::Method = method.to_uppercase().parse().unwrap();
            let send = |token: Option<&'static str>| {
                let mut request = server
                    .client
                    .request(method.clone(), &url)
                    .header("content-type", "application/json")
                    .body("{}");
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                async move { request.send().await.unwrap().status().as_u16() }
            };
            let what = format!("{method} {path}");
            assert_eq!(send(None).await, 401, "{what} without a token");
            assert_eq!(send(Some("not-a-real-token-at-all")).await, 401, "{what}");
            let as_service = send(Some(SERVICE_TOKEN)).await;
            if admin_areas.iter().any(|area| path.starts_with(area)) {
                assert_eq!(as_service, 403, "{what} with a service token");
            } else {
                assert!(![401, 403].contains(&as_service), "{what}: {as_service}");
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 15,
        "only {checked} bearer routes in the document"
    );
}

async fn block_quarantines_encrypted_and_writes_a_report(backend: Backend) {
    let Some(server) = start_on(backend, |c| c.policy_file = None).await else {
        return;
    };
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
    store.close().await;
    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn block_quarantines_encrypted_and_writes_a_report_on_sqlite() {
    block_quarantines_encrypted_and_writes_a_report(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn block_quarantines_encrypted_and_writes_a_report_on_postgres() {
    block_quarantines_encrypted_and_writes_a_report(Backend::Postgres).await;
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
            pin_workers: false,
        };
        c.request_deadline_ms = 30_000;
    })
    .await;
    server.wait_ready().await;
    // Distinct images: identical bytes would wait for one another and come from the
    // verdict cache instead of filling the queue.
    let astronaut = image::load_from_memory(&photo("astronaut.png"))
        .unwrap()
        .to_rgb8();
    let mut tasks = Vec::new();
    for i in 0..24u8 {
        let client = server.client.clone();
        let url = format!("{}/v1/screen?artwork_id=f{i}&owner_id=o", server.base);
        let mut variant = astronaut.clone();
        variant.put_pixel(0, 0, image::Rgb([i, i, i]));
        let mut body = std::io::Cursor::new(Vec::new());
        variant
            .write_to(&mut body, image::ImageFormat::Png)
            .unwrap();
        let body = body.into_inner();
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
            "artwork_id=d1&owner_id=o1&deadline_ms=1",
        )
        .await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"]["kind"], "deadline_exceeded");
}

/// Bank changes over HTTP take effect on the next screening, without a restart:
/// entry by image, CyberTipline report for a csam bank, PDQ match of a re-encode,
/// disable, import, remove, delete, allow-list, and an audit row for each change.
async fn banks_managed_over_http(backend: Backend) {
    use reqwest::Method;
    use serde_json::json;
    let Some(server) = start_on(backend, |c| c.reporter = Some(reporter())).await else {
        return;
    };
    server.wait_ready().await;
    let camera = photo("camera.png");
    let camera_jpeg = jpeg_reencode(&camera, 80);
    let (_, before) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/png",
            camera.clone(),
            "artwork_id=b0&owner_id=u1",
        )
        .await;
    assert_eq!(before["verdict"], "allow", "{before}");

    let (status, _) = server
        .send_json(
            SERVICE_TOKEN,
            Method::POST,
            "/v1/banks",
            &json!({"name": "kb"}),
        )
        .await;
    assert_eq!(status, 403, "banks need the admin role");
    let spec = json!({"name": "known-bad", "category": "csam", "severity": 5});
    let (status, created) = server
        .send_json(ADMIN_TOKEN, Method::POST, "/v1/banks", &spec)
        .await;
    assert_eq!(status, 201, "{created}");
    let (status, again) = server
        .send_json(ADMIN_TOKEN, Method::POST, "/v1/banks", &spec)
        .await;
    assert_eq!((status, again["changed"].as_u64()), (200, Some(0)));
    let (status, _) = server
        .send_json(
            ADMIN_TOKEN,
            Method::POST,
            "/v1/banks",
            &json!({"name": "known-bad", "pdq_threshold": 10}),
        )
        .await;
    assert_eq!(status, 409);

    // An entry from an uploaded image: its PDQ, its regions' PDQ and MD5, as the screening
    // saw them.
    let (status, added) = server
        .bank_image("known-bad", "case-1", camera.clone())
        .await;
    assert_eq!(status, 200, "{added}");
    assert_eq!(added["changed"], 6, "{added}");
    let entries: Vec<(String, String)> = added["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["signal"].as_str().unwrap().to_string(),
                e["hash"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let pdq = before["pdq"]["hash"].as_str().unwrap().to_string();
    assert!(entries.contains(&("pdq".into(), pdq.clone())), "{added}");
    assert!(entries.contains(&("md5".into(), before["md5"].as_str().unwrap().into())));
    for region in before["pdq"]["regions"]
        .as_array()
        .expect("regions in the record")
    {
        let signal = format!("pdq_{}", region["region"].as_str().unwrap());
        let hash = region["hash"].as_str().unwrap().to_string();
        assert!(entries.contains(&(signal, hash)), "{added}");
    }

    // The next screening sees it: blocked, reported, and CyberTipline-reported.
    let (_, hit) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/png",
            camera.clone(),
            "artwork_id=b1&owner_id=u1&surface=playlist_cover",
        )
        .await;
    assert_eq!(hit["verdict"], "block", "{hit}");
    assert_eq!(hit["matches"][0]["bank"], "known-bad");
    let report_ids = hit["report_ids"].as_array().expect("two reports");
    assert_eq!(report_ids.len(), 2, "{hit}");
    let store = store::open(&server.config.database_url()).await.unwrap();
    let tip = store
        .get_report(report_ids[1].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tip.kind, "cybertipline");
    assert_eq!(
        tip.payload["report"]["personOrUserReported"]["espIdentifier"], "u1",
        "{}",
        tip.payload
    );
    // A JPEG re-encode has other bytes: caught by PDQ alone.
    let (_, reencoded) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/jpeg",
            camera_jpeg.clone(),
            "artwork_id=b2&owner_id=u1",
        )
        .await;
    assert_eq!(reencoded["verdict"], "block", "{reencoded}");
    let by_pdq = reencoded["matches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["signal"] == "pdq")
        .unwrap_or_else(|| panic!("a whole-image PDQ match: {reencoded}"));
    assert!(by_pdq["distance"].as_u64().unwrap() > 0);

    // Disabled, the image's PDQ lines (whole and regions) match nothing: the re-encode is
    // allowed again.
    for (signal, hash) in entries.iter().filter(|(s, _)| s.starts_with("pdq")) {
        let (status, _) = server
            .send_json(
                ADMIN_TOKEN,
                Method::PATCH,
                &format!("/v1/banks/known-bad/entries/{signal}/{hash}"),
                &json!({"disabled": true}),
            )
            .await;
        assert_eq!(status, 200, "{signal}");
    }
    let (_, released) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/jpeg",
            camera_jpeg,
            "artwork_id=b3&owner_id=u1",
        )
        .await;
    assert_eq!(released["verdict"], "allow", "{released}");

    // Retroactive match: b0, screened before the bank existed, is found by its MD5 and
    // taken down (its bytes were an upload, so no evidence can be fetched again); b3's
    // PDQ entry is disabled, b1 and b2 are quarantined already.
    let (status, _) = server
        .send_json(
            SERVICE_TOKEN,
            Method::POST,
            "/v1/banks/known-bad/retro-match",
            &json!({}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, retro) = server
        .send_json(
            ADMIN_TOKEN,
            Method::POST,
            "/v1/banks/known-bad/retro-match",
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{retro}");
    let hits: Vec<&str> = retro["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["artwork_id"].as_str().unwrap())
        .collect();
    assert_eq!(hits, ["b0"], "{retro}");
    assert_eq!(retro["hits"][0]["evidence"], false);
    assert_eq!(
        retro["hits"][0]["report_ids"].as_array().unwrap().len(),
        2,
        "{retro}"
    );
    let (_, b0) = server.get(SERVICE_TOKEN, "/v1/artworks/b0").await;
    assert_eq!(
        (b0["status"].as_str(), b0["verdict"].as_str()),
        (Some("quarantined"), Some("block"))
    );
    let (status, _) = server
        .send_json(
            ADMIN_TOKEN,
            Method::POST,
            "/v1/banks/none/retro-match",
            &json!({}),
        )
        .await;
    assert_eq!(status, 404);
    let (_, listed) = server.get(ADMIN_TOKEN, "/v1/banks").await;
    let bank = &listed.as_array().unwrap()[0];
    assert_eq!(
        (
            bank["name"].as_str(),
            bank["entries"].as_u64(),
            bank["disabled_entries"].as_u64()
        ),
        (Some("known-bad"), Some(6), Some(5)),
        "{listed}: the image's six lines, its five PDQ lines disabled"
    );

    // By its entry id, the image's lines go out of matching and come back together: the
    // original bytes (its MD5 line) pass once the id is disabled, and the re-encode (its PDQ
    // lines) is caught again once it is enabled.
    let set_id = |disabled: bool, id: &'static str| {
        server.set_entry_disabled(ADMIN_TOKEN, "known-bad", id, disabled)
    };
    let (status, off) = set_id(true, "case-1").await;
    assert_eq!((status, off["changed"].as_u64()), (200, Some(1)), "{off}");
    let (_, original) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/png",
            camera.clone(),
            "artwork_id=b4&owner_id=u1",
        )
        .await;
    assert_eq!(original["verdict"], "allow", "{original}");
    let (status, on) = set_id(false, "case-1").await;
    assert_eq!((status, on["changed"].as_u64()), (200, Some(6)), "{on}");
    let (_, caught) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/jpeg",
            jpeg_reencode(&camera, 80),
            "artwork_id=b5&owner_id=u1",
        )
        .await;
    assert_eq!(caught["verdict"], "block", "{caught}");
    let (status, _) = set_id(true, "case-9").await;
    assert_eq!(status, 404, "an id no line has");
    // Uploaded with no id, an image's lines share one derived from its bytes.
    let (status, _) = server
        .send_json(
            ADMIN_TOKEN,
            Method::POST,
            "/v1/banks",
            &json!({"name": "uploads"}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, unnamed) = server
        .send_bytes(
            ADMIN_TOKEN,
            "/v1/banks/uploads/entries",
            "image/png",
            camera.clone(),
        )
        .await;
    assert_eq!(status, 200, "{unnamed}");
    let ids: std::collections::BTreeSet<&str> = unnamed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["external_id"].as_str().expect("an entry id"))
        .collect();
    let sha256 = before["sha256"].as_str().unwrap();
    assert_eq!(ids, [&sha256[..32]].into(), "{unnamed}");
    assert_eq!(server.delete(ADMIN_TOKEN, "/v1/banks/uploads").await, 200);
    let (status, service) = server
        .set_entry_disabled(SERVICE_TOKEN, "known-bad", "case-1", true)
        .await;
    assert_eq!(status, 403, "{service}");

    // HMA import: all lines or none, the bad line named.
    let good = format!("md5 {}  case-2\n", "ab".repeat(16));
    let (status, body) = server
        .send_bytes(
            ADMIN_TOKEN,
            "/v1/banks/known-bad/import",
            "text/plain",
            format!("{good}pdq nothex\n").into_bytes(),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 2"),
        "{body}"
    );
    let (status, body) = server
        .send_bytes(
            ADMIN_TOKEN,
            "/v1/banks/known-bad/import",
            "text/plain",
            format!("# a comment\n{good}").into_bytes(),
        )
        .await;
    assert_eq!((status, body["changed"].as_u64()), (200, Some(1)), "{body}");
    let path = format!("/v1/banks/known-bad/entries/md5/{}", "ab".repeat(16));
    assert_eq!(server.delete(ADMIN_TOKEN, &path).await, 200);
    assert_eq!(server.delete(ADMIN_TOKEN, &path).await, 404);

    // An allow-list bank exempts a classifier-only verdict.
    let color = photo("color.png");
    let (_, flagged) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/png",
            color.clone(),
            "artwork_id=al-1&owner_id=o",
        )
        .await;
    assert_eq!(flagged["verdict"], "review");
    let (status, _) = server
        .send_json(
            ADMIN_TOKEN,
            Method::POST,
            "/v1/banks",
            &json!({"name": "known-good", "allow_list": true, "signal_types": ["md5"]}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = server
        .send_json(
            ADMIN_TOKEN,
            Method::POST,
            "/v1/banks/known-good/entries",
            &json!({"entries": [{"signal": "md5", "hash": flagged["md5"]}]}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, exempt) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/png",
            color,
            "artwork_id=al-2&owner_id=o",
        )
        .await;
    assert_eq!(exempt["verdict"], "allow", "{exempt}");

    assert_eq!(
        server.delete(ADMIN_TOKEN, "/v1/banks/known-good").await,
        200
    );
    let (_, listed) = server.get(ADMIN_TOKEN, "/v1/banks").await;
    assert_eq!(listed.as_array().unwrap().len(), 1);

    let audit = store.recent_audit(100).await.unwrap();
    for action in [
        "bank.create",
        "bank.add_entries",
        "bank.disable_entry",
        "bank.import",
        "bank.remove_entry",
        "bank.delete",
        "bank.retro_match",
    ] {
        assert!(
            audit
                .iter()
                .any(|a| a.action == action && a.actor.starts_with("token:")),
            "no audit row for {action}"
        );
    }
    store.close().await;
    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn banks_managed_over_http_on_sqlite() {
    banks_managed_over_http(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn banks_managed_over_http_on_postgres() {
    banks_managed_over_http(Backend::Postgres).await;
}

/// A local server with an image to fetch.
async fn origin() -> String {
    let color = photo("color.png");
    let app = axum::Router::new().route(
        "/art/color.png",
        axum::routing::get(move || async move { color }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn screening_by_url_and_report_delivery_through_failures() {
    use serde_json::json;
    let origin = origin().await;
    let hook = Webhook::start().await;
    hook.fail_next(2);
    let hook_url = hook.url().to_string();
    let origin_addr: std::net::SocketAddr = origin.trim_start_matches("http://").parse().unwrap();
    let mut server = start(|c| {
        c.webhooks = vec![coverguard::config::WebhookConfig {
            url: hook_url,
            secret: None,
        }];
        c.url_fetch = coverguard::fetch::DestinationPolicy::allowing(origin_addr);
    })
    .await;
    server.wait_ready().await;

    // Without a configured reporter, a csam bank (which needs CyberTipline reports) is refused.
    let (status, body) = server
        .send_json(
            ADMIN_TOKEN,
            reqwest::Method::POST,
            "/v1/banks",
            &json!({"name": "x", "category": "csam"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("reporter"));

    let request = json!({
        "url": format!("{origin}/art/color.png"),
        "artwork_id": "u1",
        "owner_id": "kid",
        "context": {"surface": "playlist_cover", "owner_is_minor": true, "playlist_track_count": 0}
    });
    let (status, body) = server
        .send_json(SERVICE_TOKEN, reqwest::Method::POST, "/v1/screen", &request)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["verdict"], "block", "{body}");
    assert_eq!(body["source"], format!("{origin}/art/color.png"));
    let report_id = body["report_id"].as_str().unwrap().to_string();

    let missing =
        json!({"url": format!("{origin}/art/missing.png"), "artwork_id": "u2", "owner_id": "o"});
    let (status, body) = server
        .send_json(SERVICE_TOKEN, reqwest::Method::POST, "/v1/screen", &missing)
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["kind"], "http_status");
    // Only the allow-listed origin is reachable: the metadata service and the rest of
    // loopback are refused before any connection (tests/hostile_urls.rs has the rest).
    let port = origin_addr.port();
    for url in [
        "http://169.254.169.254/latest/meta-data/".to_string(),
        format!("http://127.0.0.2:{port}/art/color.png"),
    ] {
        let (status, body) = server
            .send_json(
                SERVICE_TOKEN,
                reqwest::Method::POST,
                "/v1/screen",
                &json!({ "url": url, "artwork_id": "u3", "owner_id": "o" }),
            )
            .await;
        assert_eq!(status, 422, "{url}: {body}");
        assert_eq!(body["error"]["kind"], "blocked_destination", "{url}");
        assert!(body.get("verdict").is_none());
    }
    let (status, _) = server
        .send_bytes(
            SERVICE_TOKEN,
            "/v1/screen",
            "application/json",
            b"{\"url\": 3".to_vec(),
        )
        .await;
    assert_eq!(status, 400, "a body that is not JSON is a bad request");

    // Two failures, then delivered: the same idempotency key every time, then no more
    // calls (once the server has stopped, nothing more can come).
    hook.wait_until("the report", |log| log.iter().any(|d| d.acknowledged))
        .await;
    server.stop().await;
    let store = store::open(&server.config.database_url()).await.unwrap();
    let report = store.get_report(&report_id).await.unwrap().unwrap();
    assert_eq!(report.state, ReportState::Delivered, "{report:?}");
    assert_eq!(report.attempts, 2, "two failed attempts are recorded");
    let attempts = hook.deliveries();
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    let keys: std::collections::BTreeSet<&str> = attempts
        .iter()
        .map(|d| d.idempotency_key.as_str())
        .collect();
    assert_eq!(keys.len(), 1, "one idempotency key across retries");
    assert!(attempts[2].acknowledged);
    let delivered = attempts[2].json();
    assert_eq!(delivered["report_id"], report_id.as_str());
    assert_eq!(delivered["payload"]["owner_id"], "kid");
    assert_eq!(delivered["payload"]["source"]["surface"], "playlist_cover");
}

/// Replicas on one store screening identical bytes at once take turns, in the store, so the
/// bytes are inferred once between them.
async fn identical_bytes_over_replicas(backend: Backend) {
    let Some((first, second)) = start_replicas(backend).await else {
        return;
    };
    let screenings = (0..6).map(|i| {
        let server = if i % 2 == 0 { &first } else { &second };
        async move {
            let query = format!("artwork_id=replicated-{i}&owner_id=o");
            (server.screen_bytes(
                Some(SERVICE_TOKEN),
                "image/png",
                photo("astronaut.png"),
                &query,
            ))
            .await
        }
    });
    for (status, body) in futures_util::future::join_all(screenings).await {
        assert_eq!(
            (status, body["verdict"].as_str()),
            (200, Some("allow")),
            "{body}"
        );
    }
    let replicas = (&first, &second);
    let metric = |name: &'static str| async move {
        replicas.0.metric(name).await + replicas.1.metric(name).await
    };
    assert_eq!(metric("coverguard_inference_images_total").await, 1.0);
    assert_eq!(metric("coverguard_verdict_cache_hits_total").await, 5.0);
    first.finish().await;
}

/// A bank change made through one replica is used by the other at its next screening.
async fn bank_changes_over_replicas(backend: Backend) {
    use reqwest::Method;
    use serde_json::json;
    let Some((first, second)) = start_replicas(backend).await else {
        return;
    };
    let camera = photo("camera.png");
    let screen_on_second = |artwork: &'static str| {
        let camera = camera.clone();
        let second = &second;
        async move {
            let query = format!("artwork_id={artwork}&owner_id=u1");
            let (status, body) = second
                .screen_bytes(Some(SERVICE_TOKEN), "image/png", camera, &query)
                .await;
            assert_eq!(status, 200, "{body}");
            body["verdict"].as_str().unwrap().to_string()
        }
    };
    // The second replica has screened, so it holds the banks as they were.
    assert_eq!(screen_on_second("r0").await, "allow");
    let (status, created) = first
        .send_json(
            ADMIN_TOKEN,
            Method::POST,
            "/v1/banks",
            &json!({"name": "known-bad"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let (status, added) = first
        .bank_image("known-bad", "case-1", camera.clone())
        .await;
    assert_eq!(status, 200, "{added}");
    assert_eq!(screen_on_second("r1").await, "block");
    let (status, off) = first
        .set_entry_disabled(ADMIN_TOKEN, "known-bad", "case-1", true)
        .await;
    // Every line the image made goes out of matching.
    assert_eq!(
        (status, off["changed"].as_u64()),
        (200, added["changed"].as_u64()),
        "{off}"
    );
    assert_eq!(screen_on_second("r2").await, "allow");
    first.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bank_changes_on_one_replica_are_used_by_the_other_on_sqlite() {
    bank_changes_over_replicas(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bank_changes_on_one_replica_are_used_by_the_other_on_postgres() {
    bank_changes_over_replicas(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn identical_bytes_over_replicas_are_inferred_once_on_sqlite() {
    identical_bytes_over_replicas(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn identical_bytes_over_replicas_are_inferred_once_on_postgres() {
    identical_bytes_over_replicas(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn identical_bytes_are_answered_without_a_second_inference() {
    let server = start(|_| {}).await;
    server.wait_ready().await;
    for artwork in ["same-1", "same-2"] {
        let (status, body) = server
            .screen_bytes(
                Some(SERVICE_TOKEN),
                "image/png",
                photo("astronaut.png"),
                &format!("artwork_id={artwork}&owner_id=o"),
            )
            .await;
        assert_eq!((status, body["verdict"].as_str()), (200, Some("allow")));
    }
    // A stricter context is another policy: inferred again, not taken from the cache.
    let (_, strict) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/png",
            photo("astronaut.png"),
            "artwork_id=same-3&owner_id=o&owner_is_minor=true",
        )
        .await;
    assert!(strict["reasons"].to_string().contains("strict profile"));
    assert_eq!(
        server.metric("coverguard_verdict_cache_hits_total").await,
        1.0
    );
    assert_eq!(
        server.metric("coverguard_inference_images_total").await,
        2.0
    );
    assert_eq!(
        server.metric("coverguard_inference_batch_size_count").await,
        2.0
    );
    assert_eq!(
        server
            .metric("coverguard_http_requests_total{route=\"/v1/screen\",status=\"200\"}")
            .await,
        3.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn turning_ocr_on_reads_images_screened_without_it() {
    let shared = tempfile::tempdir().unwrap();
    let data = shared.path().join("data");
    let bytes = std::fs::read(common::fixtures().join("ocr/text-16.png")).unwrap();
    let unread = {
        let data = data.clone();
        start(move |c| c.data_dir = data).await
    };
    unread.wait_ready().await;
    let (status, first) = unread
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/png",
            bytes.clone(),
            "artwork_id=a-1&owner_id=o",
        )
        .await;
    assert_eq!(
        (status, first["verdict"].as_str()),
        (200, Some("allow")),
        "{first}"
    );
    // The same store, now with OCR: the earlier verdict is not reused for the same bytes.
    let reading = start(move |c| {
        c.data_dir = data;
        c.ocr.enabled = true;
    })
    .await;
    reading.wait_ready().await;
    let (status, again) = reading
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/png",
            bytes,
            "artwork_id=a-2&owner_id=o",
        )
        .await;
    assert_eq!(
        (status, again["verdict"].as_str()),
        (200, Some("review")),
        "{again}"
    );
    assert_eq!(
        again["text"]["ocr"][0]["text"], "text me 555 0147",
        "{again}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_text_gate_reads_in_full_only_the_images_with_rows_of_glyphs() {
    let photo = std::fs::read(common::fixtures().join("ocr/notext-1.png")).unwrap();
    let text = std::fs::read(common::fixtures().join("ocr/text-16.png")).unwrap();
    for (gate, read_in_full) in [(true, 1.0), (false, 2.0)] {
        let server = start(move |c| {
            c.ocr.enabled = true;
            c.ocr.gate = gate;
        })
        .await;
        server.wait_ready().await;
        for (artwork, bytes, verdict) in [("photo", &photo, "allow"), ("words", &text, "review")] {
            let (status, record) = server
                .screen_bytes(
                    Some(SERVICE_TOKEN),
                    "image/png",
                    bytes.clone(),
                    &format!("artwork_id={artwork}&owner_id=o"),
                )
                .await;
            assert_eq!(
                (status, record["verdict"].as_str()),
                (200, Some(verdict)),
                "gate {gate}: {record}"
            );
        }
        assert_eq!(server.metric("coverguard_ocr_images_total").await, 2.0);
        assert_eq!(
            server.metric("coverguard_ocr_read_in_full_total").await,
            read_in_full,
            "gate {gate}"
        );
    }
}

/// The gate lets pass some text that rapidocr reads (tests/fixtures/ocr-gate/README.md:
/// a 12 px line set apart from a photo by hue alone); a minor's upload or an empty
/// playlist's cover is read in full all the same, even after the same bytes passed the
/// gate.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_strict_profile_reads_every_image_in_full_past_the_gate() {
    let server = start(|c| {
        c.ocr.enabled = true;
        c.ocr.gate = true;
    })
    .await;
    server.wait_ready().await;
    let bytes = std::fs::read(common::fixtures().join("ocr-gate/same-luma-on-photo.png")).unwrap();
    let (status, unread) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/png",
            bytes.clone(),
            "artwork_id=hue-1&owner_id=o",
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        unread["text"]["ocr"]
            .as_array()
            .is_none_or(|l| l.is_empty()),
        "premise: the gate lets this cover pass unread; if it reads it now, keep one it \
         misses in its place: {unread}"
    );
    let in_full_before = server.metric("coverguard_ocr_read_in_full_total").await;
    for (artwork, context) in [
        ("hue-2", "owner_is_minor=true"),
        ("hue-3", "playlist_track_count=0"),
    ] {
        let (status, record) = server
            .screen_bytes(
                Some(SERVICE_TOKEN),
                "image/png",
                bytes.clone(),
                &format!("artwork_id={artwork}&owner_id=o&{context}"),
            )
            .await;
        assert_eq!(status, 200, "{record}");
        let lines: Vec<&str> = record["text"]["ocr"]
            .as_array()
            .unwrap_or_else(|| panic!("{context}: no words read: {record}"))
            .iter()
            .filter_map(|l| l["text"].as_str())
            .collect();
        assert!(
            lines.iter().any(|l| l.starts_with("Vol. 2")),
            "{context}: {lines:?}"
        );
    }
    // The second strict screening reuses the first one's verdict: same bytes, same basis.
    assert_eq!(
        server.metric("coverguard_ocr_read_in_full_total").await,
        in_full_before + 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn words_in_the_artwork_hold_it_with_ocr_on_even_when_the_image_is_cached() {
    let server = start(|c| c.ocr.enabled = true).await;
    server.wait_ready().await;
    let bytes = std::fs::read(common::fixtures().join("ocr/text-16.png")).unwrap();
    for artwork in ["ocr-1", "ocr-2"] {
        let (status, held) = server
            .screen_bytes(
                Some(SERVICE_TOKEN),
                "image/png",
                bytes.clone(),
                &format!("artwork_id={artwork}&owner_id=o"),
            )
            .await;
        assert_eq!(
            (status, held["verdict"].as_str()),
            (200, Some("review")),
            "{held}"
        );
        assert_eq!(held["text"]["ocr"][0]["text"], "text me 555 0147", "{held}");
        let signals = held["text"]["signals"].as_array().expect("signals");
        assert!(
            signals
                .iter()
                .any(|s| s["source"] == "ocr" && s["kind"] == "phone"),
            "{signals:?}"
        );
        let reasons = held["reasons"].to_string();
        assert!(
            reasons.contains("in ocr") && !reasons.contains("0147"),
            "{reasons}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_title_with_contact_details_holds_the_cover_even_when_the_image_is_cached() {
    let server = start(|_| {}).await;
    server.wait_ready().await;
    let (status, plain) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/png",
            photo("astronaut.png"),
            "artwork_id=titled-1&owner_id=o&title=Summer%20Vibes",
        )
        .await;
    assert_eq!((status, plain["verdict"].as_str()), (200, Some("allow")));
    assert_eq!(
        plain["text"],
        Value::Null,
        "no words found, no text object: {plain}"
    );
    // The same bytes under a title that asks to move the talk to Snapchat.
    let (status, held) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/png",
            photo("astronaut.png"),
            "artwork_id=titled-2&owner_id=o&title=add%20me%20on%20%EF%BD%93%EF%BD%8E%EF%BD%81%EF%BD%90%3A%20lily_2010",
        )
        .await;
    assert_eq!(
        (status, held["verdict"].as_str()),
        (200, Some("review")),
        "{held}"
    );
    let signals = held["text"]["signals"].as_array().expect("signals");
    assert!(
        signals
            .iter()
            .all(|s| s["source"] == "title" && s["kind"] == "contact_handle"),
        "{signals:?}"
    );
    // Spans are reported as written, and the handle is named for the owner pattern.
    assert!(
        signals.iter().any(|s| s["match"] == "add me on ｓｎａｐ"),
        "{signals:?}"
    );
    assert!(
        signals.iter().any(|s| s["recipient"] == "lily_2010"),
        "{signals:?}"
    );
    let reasons = held["reasons"].to_string();
    assert!(
        reasons.contains("review: contact details in title"),
        "{reasons}"
    );
    assert!(
        !reasons.contains("lily"),
        "a handle is not quoted in reasons: {reasons}"
    );
    assert_eq!(
        server.metric("coverguard_verdict_cache_hits_total").await,
        1.0,
        "the image's verdict came from the cache, and the title was still read"
    );
    // A title is checked like every field: control characters are refused.
    let (status, refused) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/png",
            photo("astronaut.png"),
            "artwork_id=titled-3&owner_id=o&title=a%1Bb",
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["field"], "title");
}

/// Every property a schema allows, following `$ref` and `allOf`.
fn schema_properties(doc: &Value, schema: &Value) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap();
        return schema_properties(doc, &doc["components"]["schemas"][name]);
    }
    if let Some(parts) = schema["allOf"].as_array() {
        for part in parts {
            out.extend(schema_properties(doc, part));
        }
    }
    if let Some(props) = schema["properties"].as_object() {
        out.extend(props.keys().cloned());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_openapi_document_describes_the_api_as_it_answers() {
    let server = start(|_| {}).await;
    let doc = server.openapi().await;
    for (path, method) in [
        ("/v1/screen", "post"),
        ("/v1/screenings/{id}", "get"),
        ("/v1/artworks/{artwork_id}", "get"),
        ("/v1/accounts/{owner_id}/takedown", "post"),
        ("/v1/banks", "get"),
        ("/v1/banks", "post"),
        ("/v1/banks/{name}", "delete"),
        ("/v1/banks/{name}/entries", "get"),
        ("/v1/banks/{name}/entries", "post"),
        ("/v1/banks/{name}/import", "post"),
        ("/v1/banks/{name}/retro-match", "post"),
        ("/v1/banks/{name}/entries/{signal}/{hash}", "delete"),
        ("/v1/banks/{name}/entries/{signal}/{hash}", "patch"),
        ("/v1/banks/{name}/entry-ids/{id}", "patch"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
        ("/v1/accounts/{owner_id}/takedown", "delete"),
        ("/v1/users", "get"),
        ("/v1/users", "post"),
        ("/v1/users/{username}/password", "post"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
    }
    // Raw image bytes are a binary string, never an array of integers.
    let mut image_contents = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let bodies = std::iter::once(&operation["requestBody"]).chain(
                operation["responses"]
                    .as_object()
                    .into_iter()
                    .flat_map(|r| r.values()),
            );
            for body in bodies {
                for (media_type, content) in body["content"].as_object().into_iter().flatten() {
                    if media_type.starts_with("image/") {
                        image_contents += 1;
                        assert_eq!(
                            (&content["schema"]["type"], &content["schema"]["format"]),
                            (&Value::from("string"), &Value::from("binary")),
                            "{method} {path} {media_type}: {content}"
                        );
                    }
                }
            }
        }
    }
    assert!(image_contents >= 2, "the screen body and the review image");
    // The words read in the artwork are described field by field.
    let line = &doc["components"]["schemas"]["OcrLine"]["properties"];
    for field in ["box", "text", "score", "view"] {
        assert!(line[field].is_object(), "OcrLine.{field}: {line}");
    }
    assert_eq!(
        doc["components"]["schemas"]["TextRecord"]["properties"]["ocr"]["items"]["$ref"],
        "#/components/schemas/OcrLine"
    );
    // Every refusal with 409 is documented where it can happen.
    for (path, method) in [
        ("/v1/screen", "post"),
        ("/v1/review/items/{id}/decision", "post"),
        ("/v1/users", "post"),
    ] {
        let conflict = &doc["paths"][path][method]["responses"]["409"];
        assert!(conflict.is_object(), "{method} {path}: 409 undocumented");
    }
    let decision_conflict = doc["paths"]["/v1/review/items/{id}/decision"]["post"]["responses"]
        ["409"]["description"]
        .to_string();
    for kind in ["superseded", "owner_taken_down"] {
        assert!(decision_conflict.contains(kind), "{decision_conflict}");
    }
    assert!(
        doc["paths"]["/v1/screen"]["post"]["responses"]["409"]["description"]
            .to_string()
            .contains("idempotency_conflict")
    );
    // The console's endpoints take the session cookie this server sets, and changes the
    // CSRF header.
    let cookie = if server.config.review.secure_cookies {
        "__Host-cg_session"
    } else {
        "cg_session"
    };
    let schemes = &doc["components"]["securitySchemes"];
    let session = schemes
        .as_object()
        .unwrap()
        .values()
        .find(|s| s["type"] == "apiKey" && s["in"] == "cookie")
        .unwrap_or_else(|| panic!("no cookie scheme in {schemes}"));
    assert_eq!(session["name"], cookie);
    let scheme_name = schemes
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, s)| *s == session)
        .unwrap()
        .0
        .clone();
    for (path, method) in [
        ("/v1/review/queue", "get"),
        ("/v1/review/items/{id}", "get"),
        ("/v1/review/items/{id}/decision", "post"),
        ("/v1/review/me/settings", "put"),
        ("/v1/review/logout", "post"),
        ("/v1/review/audit/export", "get"),
    ] {
        let operation = &doc["paths"][path][method];
        let security = operation["security"].to_string();
        assert!(
            security.contains(&format!("\"{scheme_name}\"")),
            "{method} {path}: {security}"
        );
        if method != "get" {
            let csrf = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["name"] == "X-CSRF-Token")
                .unwrap_or_else(|| panic!("{method} {path}: no X-CSRF-Token"));
            assert_eq!(
                (&csrf["in"], &csrf["required"]),
                (&Value::from("header"), &Value::from(true))
            );
            assert!(operation["description"]
                .to_string()
                .contains("X-CSRF-Token"));
        }
    }
    assert!(
        doc["paths"]["/v1/review/login"]["post"]["security"].is_null(),
        "logging in takes no session"
    );
    let screen = &doc["paths"]["/v1/screen"]["post"]["responses"];
    for status in ["200", "409", "413", "415", "422", "429", "503", "504"] {
        assert!(
            screen[status].is_object(),
            "/v1/screen {status} undocumented"
        );
    }
    // What the server answers is what the document says it answers.
    server.wait_ready().await;
    let (_, body) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/png",
            photo("color.png"),
            "artwork_id=doc-1&owner_id=o&owner_is_minor=true",
        )
        .await;
    let documented = schema_properties(
        &doc,
        &screen["200"]["content"]["application/json"]["schema"],
    );
    // A translucent picture answers with its views and the view that decided too.
    let translucent = {
        let chart = image::load_from_memory(&photo("color.png"))
            .unwrap()
            .to_rgba8();
        let faded = image::RgbaImage::from_fn(chart.width(), chart.height(), |x, y| {
            let p = chart.get_pixel(x, y).0;
            image::Rgba([p[0], p[1], p[2], ((x + y) % 256) as u8])
        });
        let mut png = Vec::new();
        image::DynamicImage::ImageRgba8(faded)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        png
    };
    let (status, viewed) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/png",
            translucent,
            "artwork_id=doc-2&owner_id=o&owner_is_minor=true",
        )
        .await;
    assert_eq!(status, 200, "{viewed}");
    assert!(viewed["views"].is_array(), "{viewed}");
    for answer in [&body, &viewed] {
        let answered: std::collections::BTreeSet<String> =
            answer.as_object().unwrap().keys().cloned().collect();
        assert!(
            answered.is_subset(&documented) && documented.contains("verdict"),
            "answered {answered:?}, documented {documented:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn decode_resolution_setting_reaches_screening() {
    // The colour chart enlarged to 2400 px: the fast path decodes it at 1/2.
    let chart = image::load_from_memory(&photo("color.png"))
        .unwrap()
        .to_rgb8();
    let large = image::imageops::resize(&chart, 2400, 2400, image::imageops::FilterType::Triangle);
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(std::io::Cursor::new(&mut jpeg), 90)
        .encode_image(&large)
        .unwrap();

    for (resolution, scale) in [(Resolution::Full, 1), (Resolution::FAST, 2)] {
        let server = start(|c| c.decode_resolution = resolution).await;
        server.wait_ready().await;
        let (status, record) = server
            .screen_bytes(
                Some(SERVICE_TOKEN),
                "image/jpeg",
                jpeg.clone(),
                "artwork_id=big&owner_id=o",
            )
            .await;
        assert_eq!(status, 200, "{record}");
        assert_eq!(record["decode_scale"], scale, "{resolution:?}");
        assert_eq!(
            (record["width"].as_u64(), record["height"].as_u64()),
            (Some(2400), Some(2400))
        );
        // Boxes are in the image's own pixels either way.
        let boxes = record["detections"].as_array().unwrap();
        assert!(!boxes.is_empty(), "{record}");
        assert!(
            boxes.iter().any(|d| d["box"][2].as_i64().unwrap() > 1200),
            "{record}"
        );
        server.finish().await;
    }
}

/// What axum refuses by itself (its extractors' rejections, an unknown route or method, the
/// body limit) answers the same JSON error body as every other failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_rejections_answer_the_documented_json_error() {
    let server = start(|c| c.max_bytes = 4096).await;
    // Until the tokens are loaded a token route answers 503 not_ready before any extractor.
    server.wait_ready().await;
    let url = |path: &str| format!("{}{path}", server.base);
    let c = &server.client;
    let oversized = serde_json::json!({"username": "a".repeat(200_000), "password": "x"});
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "malformed JSON",
            c.post(url("/v1/review/login"))
                .header("content-type", "application/json")
                .body("{\"username\": "),
            400,
            "bad_request",
        ),
        (
            "JSON of the wrong shape",
            c.post(url("/v1/users"))
                .bearer_auth(ADMIN_TOKEN)
                .json(&serde_json::json!({"nope": 1})),
            422,
            "invalid_body",
        ),
        (
            "a Json extractor without its Content-Type",
            c.post(url("/v1/review/login"))
                .header("content-type", "text/plain")
                .body("{}"),
            415,
            "unsupported_media_type",
        ),
        (
            "a path parameter that is not UTF-8",
            c.get(url("/v1/screenings/%FF%FE"))
                .bearer_auth(SERVICE_TOKEN),
            400,
            "bad_request",
        ),
        (
            "a query parameter of the wrong type",
            c.get(url("/v1/review/audit?limit=many"))
                .bearer_auth(ADMIN_TOKEN),
            400,
            "bad_request",
        ),
        (
            // The caller is checked before the query is read.
            "a console route without a session, its query wrong too",
            c.get(url("/v1/review/queue?limit=many")),
            401,
            "unauthenticated",
        ),
        (
            "an unknown route",
            c.get(url("/v1/nothing-here")).bearer_auth(SERVICE_TOKEN),
            404,
            "not_found",
        ),
        (
            "a method the route does not have",
            c.delete(url("/v1/screen")).bearer_auth(SERVICE_TOKEN),
            405,
            "method_not_allowed",
        ),
        (
            "a body past the body limit",
            c.post(url("/v1/users"))
                .bearer_auth(ADMIN_TOKEN)
                .json(&oversized),
            413,
            "too_large",
        ),
    ];
    for (what, request, status, kind) in cases {
        let resp = request.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{what}");
        let allow = resp.headers().get("allow").cloned();
        let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(
            content_type.starts_with("application/json"),
            "{what}: {content_type}"
        );
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["kind"], kind, "{what}: {body}");
        assert!(
            !body["error"]["message"].as_str().unwrap().is_empty(),
            "{what}: {body}"
        );
        if status == 405 {
            assert!(
                allow.is_some_and(|a| a.to_str().unwrap().contains("POST")),
                "405 keeps its Allow header"
            );
        }
    }
}

/// A vault that runs a step of another screening once, right after its first put (the
/// evidence is written, the row not yet) or right before its first delete.
struct HookedVault {
    inner: std::sync::Arc<dyn coverguard::act::quarantine::QuarantineVault>,
    after_put: std::sync::Mutex<Option<futures_util::future::BoxFuture<'static, ()>>>,
    before_delete: std::sync::Mutex<Option<futures_util::future::BoxFuture<'static, ()>>>,
}

#[async_trait::async_trait]
impl coverguard::act::quarantine::QuarantineVault for HookedVault {
    async fn put(
        &self,
        sha256: &str,
        bytes: &[u8],
        retention_until: std::time::SystemTime,
    ) -> Result<coverguard::act::quarantine::ObjectKey, coverguard::act::quarantine::QuarantineError>
    {
        let key = self.inner.put(sha256, bytes, retention_until).await?;
        let hook = self.after_put.lock().unwrap().take();
        if let Some(hook) = hook {
            hook.await;
        }
        Ok(key)
    }

    async fn get(
        &self,
        key: &coverguard::act::quarantine::ObjectKey,
    ) -> Result<Vec<u8>, coverguard::act::quarantine::QuarantineError> {
        self.inner.get(key).await
    }

    async fn delete_expired(
        &self,
        now: std::time::SystemTime,
    ) -> Result<
        coverguard::act::quarantine::ExpiryReport,
        coverguard::act::quarantine::QuarantineError,
    > {
        self.inner.delete_expired(now).await
    }

    async fn delete(
        &self,
        key: &coverguard::act::quarantine::ObjectKey,
    ) -> Result<bool, coverguard::act::quarantine::QuarantineError> {
        let hook = self.before_delete.lock().unwrap().take();
        if let Some(hook) = hook {
            hook.await;
        }
        self.inner.delete(key).await
    }
}

/// The SHA-256 of every object in a quarantine directory.
fn vault_objects(dir: &std::path::Path) -> std::collections::BTreeSet<String> {
    let mut found = std::collections::BTreeSet::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(vault_objects(&path));
        } else {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
                found.insert(name);
            }
        }
    }
    found
}

/// Replicas of the service over one store and one quarantine directory, keeping evidence
/// of review verdicts too.
struct Replicas {
    _dir: tempfile::TempDir,
    config: coverguard::config::ServiceConfig,
    store: std::sync::Arc<dyn store::Store>,
}

impl Replicas {
    async fn new() -> Replicas {
        let dir = tempfile::tempdir().unwrap();
        let config = coverguard::config::ServiceConfig {
            data_dir: dir.path().join("data"),
            quarantine_key: Some("11".repeat(32)),
            quarantine_on_review: true,
            ..coverguard::config::ServiceConfig::default()
        };
        std::fs::create_dir_all(&config.data_dir).unwrap();
        let store = store::open(&config.database_url()).await.unwrap();
        Replicas {
            _dir: dir,
            config,
            store,
        }
    }

    /// One replica's pipeline, its own to change.
    async fn pipeline(&self) -> coverguard::screening::pipeline::Pipeline {
        let loaded = coverguard::app::load(
            &self.config,
            self.store.clone(),
            std::sync::Arc::new(|_, _| {}),
        )
        .await
        .unwrap();
        std::sync::Arc::try_unwrap(loaded.pipeline)
            .ok()
            .expect("nothing else holds the pipeline")
    }
}

/// An upload of `artwork` under screening id `id` in the strict context, where the colour
/// chart is held (and so keeps evidence).
fn strict_submission(artwork: &str, id: &str) -> coverguard::screening::pipeline::Submission {
    coverguard::screening::pipeline::Submission {
        source: format!("upload:{artwork}"),
        url: None,
        artwork_id: Some(artwork.into()),
        owner_id: Some("o".into()),
        context: coverguard::screening::context::ScreenContext {
            surface: Some("playlist_cover".into()),
            owner_is_minor: true,
            playlist_track_count: Some(0),
            ..Default::default()
        },
        screening_id: Some(id.into()),
    }
}

/// The colour chart as the photo's own bytes, and the same picture in other bytes.
fn chart_twice() -> (bytes::Bytes, bytes::Bytes) {
    let first = bytes::Bytes::from(photo("color.png"));
    let chart = image::load_from_memory(&first).unwrap();
    let mut png = Vec::new();
    chart
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    assert_ne!(&first[..], &png[..]);
    (first, bytes::Bytes::from(png))
}

/// Two replicas screen different images under one `Idempotency-Key` at once: the one whose
/// row lands second answers 409 and keeps no evidence file with no row behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_that_loses_an_idempotency_race_keeps_no_evidence() {
    use coverguard::screening::pipeline::PipelineError;
    use std::sync::Arc;
    let replicas = Replicas::new().await;
    let (config, store) = (&replicas.config, &replicas.store);
    let winner = Arc::new(replicas.pipeline().await);
    let mut loser = replicas.pipeline().await;
    let submission = |artwork: &str| strict_submission(artwork, "ik_race");
    // The same picture in other bytes: another request under the same key.
    let (first, second) = chart_twice();

    let raced = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let other_replica = {
        let (winner, first, submission, raced) = (
            winner.clone(),
            first.clone(),
            submission("race-a"),
            raced.clone(),
        );
        Box::pin(async move {
            let won = winner.screen_for_key(first, &submission).await.unwrap();
            assert!(won.created && won.quarantined, "{:?}", won.record.verdict);
            raced.store(true, std::sync::atomic::Ordering::SeqCst);
        }) as futures_util::future::BoxFuture<'static, ()>
    };
    loser.vault = Arc::new(HookedVault {
        inner: loser.vault.clone(),
        after_put: std::sync::Mutex::new(Some(other_replica)),
        before_delete: std::sync::Mutex::new(None),
    });
    let lost = loser.screen_for_key(second, &submission("race-b")).await;
    assert!(raced.load(std::sync::atomic::Ordering::SeqCst));
    assert!(
        matches!(lost, Err(PipelineError::IdempotencyConflict { .. })),
        "{:?}",
        lost.map(|s| s.record.verdict)
    );

    let objects = vault_objects(&config.quarantine_dir());
    let stored = store.get_screening("ik_race").await.unwrap().unwrap();
    assert_eq!(
        objects,
        std::collections::BTreeSet::from([stored.facts.sha256.clone()]),
        "only the recorded screening's evidence is kept"
    );
    for sha256 in &objects {
        assert!(
            !store.quarantine_items(sha256).await.unwrap().is_empty(),
            "{sha256} has no row"
        );
    }
}

/// When a third screening of the loser's bytes, in the vault but not yet recorded, lands
/// its row relative to the loser's discarding of the evidence they share.
#[derive(Debug, Clone, Copy)]
enum ThirdLands {
    /// After the loser looked for a row (none yet) and before it deletes the object.
    BetweenCheckAndDelete,
    /// After the loser deleted the object and found no row.
    AfterTheDiscard,
}

/// A replica that loses an `Idempotency-Key` race discards its evidence while another
/// screening of the same bytes has the object in the vault and its row not yet recorded:
/// however the two interleave, the recorded screening's evidence is still there after.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_loser_never_deletes_evidence_a_screening_in_flight_records() {
    for lands in [
        ThirdLands::BetweenCheckAndDelete,
        ThirdLands::AfterTheDiscard,
    ] {
        loser_and_third_screening_of_the_same_bytes(lands).await;
    }
}

async fn loser_and_third_screening_of_the_same_bytes(lands: ThirdLands) {
    use coverguard::act::quarantine::ObjectKey;
    use coverguard::screening::pipeline::PipelineError;
    use std::sync::Arc;
    use std::time::Duration;
    let replicas = Replicas::new().await;
    let store = &replicas.store;
    let winner = Arc::new(replicas.pipeline().await);
    let mut loser = replicas.pipeline().await;
    let mut third = replicas.pipeline().await;
    let submission = strict_submission;
    // The loser's and the third screening's bytes are the same picture in other bytes.
    let (winners, shared) = chart_twice();

    // The third screening writes its evidence, then waits.
    let (written_tx, written_rx) = tokio::sync::oneshot::channel();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel();
    let hold = Box::pin(async move {
        written_tx.send(()).unwrap();
        go_rx.await.unwrap();
    }) as futures_util::future::BoxFuture<'static, ()>;
    third.vault = Arc::new(HookedVault {
        inner: third.vault.clone(),
        after_put: std::sync::Mutex::new(Some(hold)),
        before_delete: std::sync::Mutex::new(None),
    });
    let third = Arc::new(third);
    let third_task = {
        let (third, shared, submission) = (
            third.clone(),
            shared.clone(),
            submission("race-c", "ik_third"),
        );
        tokio::spawn(async move { third.screen_for_key(shared, &submission).await })
    };
    tokio::time::timeout(Duration::from_secs(120), written_rx)
        .await
        .expect("the third screening writes its evidence")
        .unwrap();
    let third_outcome = Arc::new(std::sync::Mutex::new(None));
    let land_third = {
        let outcome = third_outcome.clone();
        Box::pin(async move {
            go_tx.send(()).unwrap();
            let landed = third_task.await.unwrap();
            *outcome.lock().unwrap() = Some(landed);
        }) as futures_util::future::BoxFuture<'static, ()>
    };

    let other_replica = {
        let (winner, winners, submission) = (
            winner.clone(),
            winners.clone(),
            submission("race-a", "ik_race"),
        );
        Box::pin(async move {
            let won = winner.screen_for_key(winners, &submission).await.unwrap();
            assert!(won.created && won.quarantined, "{:?}", won.record.verdict);
        }) as futures_util::future::BoxFuture<'static, ()>
    };
    let (before_delete, after) = match lands {
        ThirdLands::BetweenCheckAndDelete => (Some(land_third), None),
        ThirdLands::AfterTheDiscard => (None, Some(land_third)),
    };
    loser.vault = Arc::new(HookedVault {
        inner: loser.vault.clone(),
        after_put: std::sync::Mutex::new(Some(other_replica)),
        before_delete: std::sync::Mutex::new(before_delete),
    });
    let lost = loser
        .screen_for_key(shared.clone(), &submission("race-b", "ik_race"))
        .await;
    assert!(
        matches!(lost, Err(PipelineError::IdempotencyConflict { .. })),
        "{lands:?}: {:?}",
        lost.map(|s| s.record.verdict)
    );
    if let Some(after) = after {
        after.await;
    }
    let landed = third_outcome
        .lock()
        .unwrap()
        .take()
        .unwrap_or_else(|| panic!("{lands:?}: the loser deleted nothing, so the race never ran"))
        .unwrap();
    assert!(landed.created && landed.quarantined, "{lands:?}");

    // Every recorded quarantine row points at evidence that is there and decrypts.
    for (bytes, screening) in [(&winners, "ik_race"), (&shared, "ik_third")] {
        let row = store.get_screening(screening).await.unwrap().unwrap();
        assert!(
            !store
                .quarantine_items(&row.facts.sha256)
                .await
                .unwrap()
                .is_empty(),
            "{lands:?}: {screening} has a quarantine row"
        );
        let key = ObjectKey::from_sha256(&row.facts.sha256).unwrap();
        let kept = winner.vault.get(&key).await;
        assert!(
            kept.as_ref().is_ok_and(|kept| kept == &bytes[..]),
            "{lands:?}: the evidence of {screening} is lost: {:?}",
            kept.map(|b| b.len())
        );
    }
}

/// An account takedown and its lift reach the webhooks, once each however often the
/// request is retried; a takedown after a lift is a new event.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn takedowns_and_their_lifts_are_sent_to_the_webhooks() {
    let hook = Webhook::start().await;
    let mut server = start_with_webhook(hook.url().to_string()).await;
    server.wait_ready().await;
    let (status, body) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/png",
            photo("astronaut.png"),
            "artwork_id=td-art&owner_id=td-owner",
        )
        .await;
    assert_eq!((status, body["verdict"].as_str()), (200, Some("allow")));

    let takedown = |method: reqwest::Method| {
        server.send_json(
            ADMIN_TOKEN,
            method,
            "/v1/accounts/td-owner/takedown",
            &Value::Null,
        )
    };
    let is_account = |e: &Value| e["kind"] == "account";
    let events = |want: usize| hook.at_least(want, "the account events", is_account);

    for _ in 0..2 {
        let (status, body) = takedown(reqwest::Method::POST).await;
        assert_eq!(status, 200, "{body}");
    }
    let sent = events(1).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let payload = &sent[0]["payload"];
    assert_eq!(payload["event"], "takedown", "{payload}");
    assert_eq!(payload["owner_id"], "td-owner");
    assert_eq!(
        payload["quarantined_artworks"],
        serde_json::json!(["td-art"])
    );
    assert!(payload["actor"].as_str().is_some_and(|a| !a.is_empty()));

    let (status, body) = takedown(reqwest::Method::DELETE).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = takedown(reqwest::Method::DELETE).await;
    assert!(status < 500, "a second lift is not an error of ours");
    let sent = events(2).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[1]["payload"]["event"], "takedown_lifted", "{sent:?}");
    assert_eq!(sent[1]["payload"]["owner_id"], "td-owner");

    let (status, body) = takedown(reqwest::Method::POST).await;
    assert_eq!(status, 200, "{body}");
    let sent = events(3).await;
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_eq!(sent[2]["payload"]["event"], "takedown");
    let keys: std::collections::BTreeSet<&str> = sent
        .iter()
        .map(|e| e["idempotency_key"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 3, "each event its own key");
    // Nothing more arrives later: once the server has stopped, nothing more can come.
    server.stop().await;
    let account_events = hook.acknowledged().into_iter().filter(is_account).count();
    assert_eq!(account_events, 3);
}
