//! The reviewer console's API over HTTP: who may see what, claims, each decision and what it
//! does to the banks, the quarantine and the outbox, and the audit rows every view leaves;
//! for an animation, the frame that decided it: shown, served, confirmed or released.

#[path = "common/animation.rs"]
mod animation;
mod common;

use std::time::Duration;

use animation::chart_animation;
use common::console::{self, add_user, try_login, Console, PASSWORD};
use common::server::*;
use common::webhook::Webhook;
use reqwest::Method;
use serde_json::{json, Value};

/// Logs `name` in, checking the session cookie's attributes.
async fn login<'a>(server: &'a Server, name: &str) -> Console<'a> {
    let console = console::login(server, name).await;
    let set_cookie = &console.set_cookie;
    for attribute in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(
            set_cookie.contains(attribute),
            "{set_cookie} lacks {attribute}"
        );
    }
    assert!(set_cookie.starts_with("__Host-cg_session="));
    console
}

async fn screen(server: &Server, bytes: Vec<u8>, content_type: &str, artwork: &str) -> Value {
    let (status, body) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            content_type,
            bytes,
            &format!("artwork_id={artwork}&owner_id=owner-1"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The open queue item of a screening.
async fn queue_item(console: &Console<'_>, screening_id: &str) -> Value {
    let (status, queue) = console.get("/v1/review/queue").await;
    assert_eq!(status, 200, "{queue}");
    queue["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["screening_id"] == screening_id)
        .cloned()
        .unwrap_or_else(|| panic!("screening {screening_id} is not queued: {queue}"))
}

async fn audit_actions(server: &Server, action: &str) -> Vec<Value> {
    let (status, body) = server
        .get(ADMIN_TOKEN, &format!("/v1/review/audit?action={action}"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["rows"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn roles_sessions_claims_and_audited_views() {
    let server = start(|_| {}).await;
    server.wait_ready().await;

    // Users are made with an admin token only.
    let user = json!({"username": "rita", "password": PASSWORD, "role": "reviewer"});
    let (status, _) = server
        .send_json(SERVICE_TOKEN, Method::POST, "/v1/users", &user)
        .await;
    assert_eq!(status, 403);
    for bad in [
        json!({"username": "Rita Q", "password": PASSWORD, "role": "reviewer"}),
        json!({"username": "rita", "password": "short", "role": "reviewer"}),
        json!({"username": "rita", "password": PASSWORD, "role": "service"}),
    ] {
        let (status, body) = server
            .send_json(ADMIN_TOKEN, Method::POST, "/v1/users", &bad)
            .await;
        assert_eq!(
            (status, body["error"]["kind"].as_str()),
            (422, Some("invalid")),
            "{bad}"
        );
    }
    add_user(&server, "rita", "reviewer").await;
    add_user(&server, "rhea", "reviewer").await;
    add_user(&server, "adam", "admin").await;

    // Nothing without a session: no queue, no item, no image; a bearer token is no session.
    let anonymous = server
        .client
        .get(format!("{}/v1/review/queue", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let (status, _) = server.get(ADMIN_TOKEN, "/v1/review/queue").await;
    assert_eq!(status, 401);
    for (name, password) in [("rita", "wrong password!!"), ("nobody", PASSWORD)] {
        let (status, kind) = try_login(&server, name, password).await;
        assert_eq!((status, kind.as_deref()), (401, Some("bad_credentials")));
    }
    assert_eq!(
        audit_actions(&server, "session.login_failed").await.len(),
        2
    );

    // color.png is a review verdict: quarantined (the default) and queued.
    let screened = screen(&server, photo("color.png"), "image/png", "art-1").await;
    assert_eq!(screened["verdict"], "review");
    assert_eq!(screened["quarantined"], true);
    let screening_id = screened["screening_id"].as_str().unwrap();

    let rita = login(&server, "rita").await;
    let rhea = login(&server, "rhea").await;
    let item = queue_item(&rita, screening_id).await;
    let id = item["id"].as_str().unwrap().to_string();
    assert_eq!(item["verdict"], "review");
    assert_eq!(item["owner_id"], "owner-1");
    assert!(!item["labels"].as_array().unwrap().is_empty());

    // Changes need the CSRF token.
    let forged = server
        .client
        .post(format!("{}/v1/review/items/{id}/claim", server.base))
        .header("cookie", &rita.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 403);
    let other_token = Console {
        csrf: rhea.csrf.clone(),
        server: &server,
        cookie: rita.cookie.clone(),
        set_cookie: rita.set_cookie.clone(),
    };
    let (status, body) = other_token
        .post(&format!("/v1/review/items/{id}/claim"), &json!({}))
        .await;
    assert_eq!(
        (status, body["error"]["kind"].as_str()),
        (403, Some("csrf"))
    );

    // One claim at a time.
    let (status, claimed) = rita
        .post(&format!("/v1/review/items/{id}/claim"), &json!({}))
        .await;
    assert_eq!(
        (status, claimed["claimed_by"].as_str()),
        (200, Some("rita"))
    );
    let (status, body) = rhea
        .post(&format!("/v1/review/items/{id}/claim"), &json!({}))
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = rhea
        .post(
            &format!("/v1/review/items/{id}/decision"),
            &json!({"decision": "release", "reason_code": "not_explicit"}),
        )
        .await;
    assert_eq!(status, 409, "rita's claim keeps rhea's decision out");
    let (status, mine) = rita.get("/v1/review/queue?state=claimed").await;
    assert_eq!(status, 200);
    assert_eq!(mine["items"][0]["id"], id.as_str());

    // The item: scores, boxes, matches, owner's art, history; the view is audited.
    let (status, view) = rita.get(&format!("/v1/review/items/{id}")).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["evidence"], true);
    let detections = view["screening"]["detections"].as_array().unwrap();
    assert!(!detections.is_empty());
    assert_eq!(detections[0]["box"].as_array().unwrap().len(), 4);
    assert!(!view["screening"]["scores"].as_object().unwrap().is_empty());
    assert_eq!(view["artwork"]["status"], "quarantined");
    assert_eq!(view["owner_artworks"][0]["artwork_id"], "art-1");
    let history: Vec<&str> = view["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["review.claim"]);
    assert!(view["options"]["reason_codes"]["confirm"]
        .as_array()
        .unwrap()
        .contains(&json!("csam")));

    // The image: blurred by default, sharp when revealed; each fetch audited.
    let (status, safe) = rita.bytes(&format!("/v1/review/items/{id}/image")).await;
    assert_eq!(status, 200);
    let (status, revealed) = rita
        .bytes(&format!("/v1/review/items/{id}/image?mode=reveal"))
        .await;
    assert_eq!(status, 200);
    let safe = image::load_from_memory(&safe).unwrap();
    let revealed = image::load_from_memory(&revealed).unwrap();
    assert!(safe.width().max(safe.height()) <= 512);
    assert!(
        matches!(safe, image::DynamicImage::ImageLuma8(_)),
        "grayscale by default"
    );
    assert_ne!(safe.to_luma8().into_raw(), revealed.to_luma8().into_raw());
    let views = audit_actions(&server, "image.view").await;
    let reveals = audit_actions(&server, "image.reveal").await;
    assert_eq!((views.len(), reveals.len()), (1, 1));
    assert_eq!(reveals[0]["actor"], "rita");
    assert_eq!(reveals[0]["subject"], screening_id);
    assert_eq!(audit_actions(&server, "review.view").await.len(), 1);

    // Settings change the rendition; out-of-range blur is refused.
    let (status, body) = rita
        .request(
            Method::PUT,
            "/v1/review/me/settings",
            Some(&json!({"blur": 1, "grayscale": true})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = rita
        .request(
            Method::PUT,
            "/v1/review/me/settings",
            Some(&json!({"blur": 20, "grayscale": false})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["settings"]["grayscale"], false);
    let (_, colour) = rita.bytes(&format!("/v1/review/items/{id}/image")).await;
    assert!(!matches!(
        image::load_from_memory(&colour).unwrap(),
        image::DynamicImage::ImageLuma8(_)
    ));

    // Escalation hands the item to admins: reviewers lose sight of it.
    let (status, body) = rita
        .post(
            &format!("/v1/review/items/{id}/decision"),
            &json!({"decision": "escalate", "reason_code": "age_unclear", "note": "check age"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["item"]["level"], "admin");
    let (status, _) = rhea.get(&format!("/v1/review/items/{id}")).await;
    assert_eq!(status, 404);
    let (status, _) = rhea.bytes(&format!("/v1/review/items/{id}/image")).await;
    assert_eq!(status, 404);
    let (status, _) = rhea.get("/v1/review/queue?state=escalated").await;
    assert_eq!(status, 403);
    let adam = login(&server, "adam").await;
    let (status, escalated) = adam.get("/v1/review/queue?state=escalated").await;
    assert_eq!(status, 200);
    assert_eq!(escalated["items"][0]["id"], id.as_str());
    assert_eq!(escalated["items"][0]["reason_code"], "age_unclear");

    // Audit: admins read and export it; reviewers do not.
    let (status, _) = rita.get("/v1/review/audit").await;
    assert_eq!(status, 403);
    let (status, rows) = adam.get("/v1/review/audit?actor=rita").await;
    assert_eq!(status, 200);
    assert!(rows["rows"].as_array().unwrap().len() >= 5);
    let (status, csv) = adam.bytes("/v1/review/audit/export").await;
    assert_eq!(status, 200);
    let csv = String::from_utf8(csv).unwrap();
    assert!(csv.starts_with("id,at,actor,action,subject,detail\n"));
    assert!(csv.contains("\"image.reveal\""));
    assert!(csv.contains("\"review.escalate\""));

    // The dashboard's figures.
    let (status, stats) = rita.get("/v1/review/stats").await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["verdicts_per_day"][0]["review"], 1);
    assert_eq!(stats["queue_age"][0]["count"], 1);
    assert!(!stats["score_histograms"].as_array().unwrap().is_empty());
    assert_eq!(stats["decisions_by_reviewer"][0]["escalate"], 1);

    // Offboarding: a disabled reviewer's session ends at once.
    let (status, _) = server
        .send_json(ADMIN_TOKEN, Method::DELETE, "/v1/users/rhea", &json!({}))
        .await;
    assert_eq!(status, 204);
    let (status, _) = rhea.get("/v1/review/me").await;
    assert_eq!(status, 401);

    // Logging out ends the session.
    let (status, _) = rita.post("/v1/review/logout", &json!({})).await;
    assert_eq!(status, 204);
    let (status, _) = rita.get("/v1/review/me").await;
    assert_eq!(status, 401);
    server.finish().await;
}

async fn wait_for_event(hook: &Webhook, action: &str) -> Value {
    hook.first(action, |b| {
        b["kind"] == "decision" && b["payload"]["action"] == action
    })
    .await
}

async fn confirm_and_release(backend: Backend) {
    let hook = Webhook::start().await;
    let hook_url = hook.url().to_string();
    let Some(server) = start_on(backend, |c| {
        c.reporter = Some(reporter());
        c.webhooks = vec![coverguard::config::WebhookConfig {
            url: hook_url,
            secret: None,
        }];
    })
    .await
    else {
        return;
    };
    server.wait_ready().await;
    add_user(&server, "rita", "reviewer").await;
    let rita = login(&server, "rita").await;
    for bank in [
        json!({"name": "watch", "action": "review", "signal_types": ["md5"]}),
        json!({"name": "known-bad", "severity": 5, "category": "csam"}),
    ] {
        let (status, body) = server
            .send_json(ADMIN_TOKEN, Method::POST, "/v1/banks", &bank)
            .await;
        assert_eq!(status, 201, "{body}");
    }

    // Confirm: a tip-off puts the astronaut's exact bytes on the watch list.
    let astronaut = photo("astronaut.png");
    let (status, body) = server
        .send_bytes(
            ADMIN_TOKEN,
            "/v1/banks/watch/entries",
            "image/png",
            astronaut.clone(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let flagged = screen(&server, astronaut.clone(), "image/png", "art-a").await;
    assert_eq!(flagged["verdict"], "review", "{flagged}");
    let item = queue_item(&rita, flagged["screening_id"].as_str().unwrap()).await;
    let id = item["id"].as_str().unwrap();
    assert_eq!(item["banks"], json!(["watch"]));
    let decide = |body: Value| {
        let path = format!("/v1/review/items/{id}/decision");
        let rita = &rita;
        async move { rita.post(&path, &body).await }
    };
    for (refused, why) in [
        (
            json!({"decision": "release", "reason_code": "csam"}),
            "a confirm reason",
        ),
        (
            json!({"decision": "confirm", "reason_code": "csam"}),
            "no bank",
        ),
        (
            json!({"decision": "confirm", "reason_code": "csam", "bank": "nope"}),
            "no such bank",
        ),
        (
            json!({"decision": "escalate", "reason_code": "age_unclear", "bank": "known-bad"}),
            "a bank",
        ),
    ] {
        let (status, body) = decide(refused).await;
        assert_eq!(
            (status, body["error"]["kind"].as_str()),
            (422, Some("invalid")),
            "{why}: {body}"
        );
    }
    let confirm = json!({"decision": "confirm", "reason_code": "adult_explicit",
                         "bank": "known-bad", "note": "same as the tip-off"});
    let (status, body) = decide(confirm.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["item"]["state"], "decided");
    let regions = coverguard::hash::robust::Region::ALL.len();
    assert_eq!(
        body["outcome"]["bank_entries_added"],
        2 + regions,
        "PDQ, MD5 and the PDQ of each region"
    );
    let report_ids = body["outcome"]["report_ids"].as_array().unwrap();
    assert_eq!(
        report_ids.len(),
        3,
        "the hit report, a CyberTipline report (a csam bank) and the decision event: {body}"
    );
    let (_, artwork) = server.get(SERVICE_TOKEN, "/v1/artworks/art-a").await;
    assert_eq!(
        artwork["status"], "quarantined",
        "a confirm keeps the art down"
    );
    let (signals, entries) = server.bank_signals(ADMIN_TOKEN, "known-bad").await;
    // PDQ and MD5, plus the PDQ of each region of the confirmed picture.
    let whole = signals.iter().filter(|s| !s.starts_with("pdq_")).count();
    assert_eq!(whole, 2, "{entries}");
    assert!(signals.iter().any(|s| s == "pdq_center90"), "{entries}");
    let (status, retry) = decide(confirm).await;
    assert_eq!(
        (status, retry["outcome"]["retried"].as_bool()),
        (200, Some(true))
    );
    let (status, _) = decide(json!({"decision": "release", "reason_code": "not_explicit"})).await;
    assert_eq!(status, 409, "decided already");
    wait_for_event(&hook, "keep_removed").await;
    // The confirmed image is reported, to NCMEC too as the bank holds CSAM.
    for kind in ["hit", "cybertipline"] {
        hook.first(kind, |b| b["kind"] == kind).await;
    }

    // A re-encoded re-upload (new bytes, so no MD5 match) is blocked through the bank's PDQ.
    let reencoded = jpeg_reencode(&astronaut, 80);
    let again = screen(&server, reencoded, "image/jpeg", "art-c").await;
    assert_eq!(again["verdict"], "block", "{again}");
    let matched: Vec<(&str, &str)> = again["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["bank"].as_str().unwrap(), m["signal"].as_str().unwrap()))
        .collect();
    assert!(matched.contains(&("known-bad", "pdq")), "{again}");

    // Release: a model false positive goes public and is not flagged again.
    let colour = photo("color.png");
    let flagged = screen(&server, colour.clone(), "image/png", "art-d").await;
    assert_eq!(flagged["verdict"], "review");
    let item = queue_item(&rita, flagged["screening_id"].as_str().unwrap()).await;
    let id = item["id"].as_str().unwrap();
    let (status, body) = rita
        .post(
            &format!("/v1/review/items/{id}/decision"),
            &json!({"decision": "release", "reason_code": "false_positive_model"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"]["released"], true);
    assert_eq!(body["outcome"]["bank"], "allow-list");
    let (_, artwork) = server.get(SERVICE_TOKEN, "/v1/artworks/art-d").await;
    assert_eq!(artwork["status"], "released");
    let publish = wait_for_event(&hook, "publish").await;
    assert_eq!(publish["payload"]["artwork_id"], "art-d");
    assert_eq!(publish["payload"]["reason_code"], "false_positive_model");
    let (_, banks) = server.get(ADMIN_TOKEN, "/v1/banks").await;
    let allow = banks
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "allow-list")
        .expect("the allow-list bank is created on first release");
    assert_eq!(allow["allow_list"], true);
    // The same art screened again is allowed through the allow list (no cache: the banks
    // version moved).
    let rescreened = screen(&server, colour, "image/png", "art-e").await;
    assert_eq!(rescreened["verdict"], "allow", "{rescreened}");
    assert!(rescreened["matches"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["bank"] == "allow-list"));

    // Every decision is in the audit log with its reason.
    let decided = audit_actions(&server, "review.confirm").await;
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0]["detail"]["reason_code"], "adult_explicit");
    assert_eq!(audit_actions(&server, "review.release").await.len(), 1);
    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confirm_blocks_reencoded_reuploads_and_release_allows_on_sqlite() {
    confirm_and_release(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confirm_blocks_reencoded_reuploads_and_release_allows_on_postgres() {
    confirm_and_release(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quarantined_bytes_need_a_session_and_leave_an_audit_row_and_ids_lead_nowhere_else() {
    let server = start(|_| {}).await;
    server.wait_ready().await;
    add_user(&server, "rita", "reviewer").await;
    let screened = screen(&server, photo("color.png"), "image/png", "art-1").await;
    assert_eq!(screened["quarantined"], true, "{screened}");
    let rita = login(&server, "rita").await;
    let item = queue_item(&rita, screened["screening_id"].as_str().unwrap()).await;
    let id = item["id"].as_str().unwrap().to_string();
    let image = format!("/v1/review/items/{id}/image");

    // No session, or a bearer token of either role: no bytes.
    let raw = |path: String, token: Option<&'static str>| {
        let mut request = server.client.get(format!("{}{path}", server.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.bytes().await.unwrap().to_vec())
        }
    };
    for token in [None, Some(SERVICE_TOKEN), Some(ADMIN_TOKEN)] {
        let (status, body) = raw(image.clone(), token).await;
        assert_eq!(status, 401, "{token:?}");
        assert!(!body.starts_with(b"\x89PNG"));
    }
    assert!(audit_actions(&server, "image.view").await.is_empty());

    // With the session: the (safe-by-default) rendition, and an audit row naming the viewer.
    let (status, png) = rita.bytes(&image).await;
    assert_eq!(status, 200);
    assert!(png.starts_with(b"\x89PNG"));
    let views = audit_actions(&server, "image.view").await;
    assert_eq!(views.len(), 1, "{views:?}");
    assert_eq!(views[0]["actor"], "rita");

    // Guessed and hostile ids find nothing: ids are random, and no id becomes a path.
    let screening_id = screened["screening_id"].as_str().unwrap();
    for guess in [
        uuid::Uuid::now_v7().to_string(),
        screening_id.to_string(),
        "..%2F..%2F..%2Fetc%2Fpasswd".to_string(),
        "%2e%2e".to_string(),
        "..".to_string(),
        format!("{id}%00"),
        "1".to_string(),
        "' OR '1'='1".replace(' ', "%20").replace('\'', "%27"),
    ] {
        let (status, body) = rita.bytes(&format!("/v1/review/items/{guess}/image")).await;
        assert!((400..500).contains(&status), "{guess}: {status}");
        assert!(!body.starts_with(b"\x89PNG"), "{guess}");
    }
    assert_eq!(audit_actions(&server, "image.view").await.len(), 1);
    // Static paths do not climb out of the console's assets.
    for path in [
        "/console/..%2F..%2FCargo.toml",
        "/console/assets/..%2F..%2F..%2FCargo.toml",
        "/console/%2e%2e/%2e%2e/Cargo.toml",
        "/console/assets/console.js%2F..%2F..%2FCargo.toml",
    ] {
        let (_, body) = raw(path.to_string(), None).await;
        let text = String::from_utf8_lossy(&body);
        assert!(
            !text.contains("[package]") && !text.contains("root:x:0"),
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repeated_failed_logins_lock_the_name_for_a_while_not_the_console() {
    let server = start(|_| {}).await;
    server.wait_ready().await;
    add_user(&server, "rita", "reviewer").await;
    add_user(&server, "rhea", "reviewer").await;
    let attempt = |name: &'static str, password: &'static str| {
        let request = server
            .client
            .post(format!("{}/v1/review/login", server.base))
            .json(&json!({"username": name, "password": password}));
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            let body: Value = response.json().await.unwrap();
            (
                status,
                body["error"]["kind"].as_str().map(str::to_string),
                retry_after,
            )
        }
    };
    for _ in 0..5 {
        let (status, kind, _) = attempt("rita", "wrong password!!").await;
        assert_eq!((status, kind.as_deref()), (401, Some("bad_credentials")));
    }
    let (status, _, _) = attempt("rita", "wrong password!!").await;
    assert_eq!(
        status, 401,
        "the sixth failure is checked, and locks the name"
    );
    // Locked: even the right password is refused unchecked, with a time to wait.
    let (status, kind, retry_after) = attempt("rita", PASSWORD).await;
    assert_eq!((status, kind.as_deref()), (429, Some("login_throttled")));
    assert_eq!(retry_after, Some(1));
    // Names that exist and names that do not are throttled alike.
    for _ in 0..6 {
        attempt("nobody", "wrong password!!").await;
    }
    assert_eq!(attempt("nobody", PASSWORD).await.0, 429);
    // Other reviewers log in as usual.
    assert_eq!(attempt("rhea", PASSWORD).await.0, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(attempt("rita", PASSWORD).await.0, 200, "the lock ends");
    // Failed attempts are audited; throttled ones are refused before any check.
    assert_eq!(
        audit_actions(&server, "session.login_failed").await.len(),
        12
    );
}

/// 59 wrong passwords and the right one for `name`, all at once, taking turns over
/// `servers`. Checks that every attempt was checked or refused unchecked, and that no more
/// wrong passwords were checked than one after another; returns how many were.
async fn guess_all_at_once(servers: &[&Server], name: &str) -> usize {
    let attempts: Vec<_> = (0..60)
        .map(|i| {
            let password = if i == 30 {
                PASSWORD
            } else {
                "wrong password!!"
            };
            try_login(servers[i % servers.len()], name, password)
        })
        .collect();
    let mut statuses = std::collections::BTreeMap::<(u16, Option<String>), usize>::new();
    for status in futures_util::future::join_all(attempts).await {
        *statuses.entry(status).or_default() += 1;
    }
    let count = |status: u16, kind: Option<&str>| {
        statuses
            .get(&(status, kind.map(str::to_string)))
            .copied()
            .unwrap_or(0)
    };
    let checked_wrong = count(401, Some("bad_credentials"));
    // Five failures are free; the attempt that makes the sixth may be in flight with them.
    assert!(
        checked_wrong <= 6,
        "{checked_wrong} wrong passwords were checked over {} servers: {statuses:?}",
        servers.len()
    );
    assert_eq!(
        checked_wrong + count(429, Some("login_throttled")) + count(200, None),
        60,
        "every attempt was checked or refused unchecked: {statuses:?}"
    );
    checked_wrong
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_guesses_get_no_more_checks_than_sequential_ones() {
    let server = start(|_| {}).await;
    server.wait_ready().await;
    add_user(&server, "rita", "reviewer").await;
    let checked_wrong = guess_all_at_once(&[&server], "rita").await;
    assert_eq!(
        audit_actions(&server, "session.login_failed").await.len(),
        checked_wrong
    );
}

/// Replicas behind a load balancer on one store: guesses spread over them, one after another
/// or all at once, meet one count per name.
async fn guesses_over_replicas_share_one_count(backend: Backend) {
    let Some((first, second)) = start_replicas(backend).await else {
        return;
    };
    let replicas = [&first, &second];
    add_user(&first, "rita", "reviewer").await;
    add_user(&second, "rhea", "reviewer").await;
    // Six failures, taking turns: the sixth locks the name on both.
    for i in 0..6 {
        let (status, kind) = try_login(replicas[i % 2], "rhea", "wrong password!!").await;
        assert_eq!(
            (status, kind.as_deref()),
            (401, Some("bad_credentials")),
            "attempt {i}"
        );
    }
    for server in replicas {
        let (status, kind) = try_login(server, "rhea", PASSWORD).await;
        assert_eq!((status, kind.as_deref()), (429, Some("login_throttled")));
    }
    let checked_wrong = guess_all_at_once(&replicas, "rita").await;
    assert_eq!(
        audit_actions(&second, "session.login_failed").await.len(),
        6 + checked_wrong
    );
    first.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn guesses_over_replicas_share_one_count_on_sqlite() {
    guesses_over_replicas_share_one_count(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn guesses_over_replicas_share_one_count_on_postgres() {
    guesses_over_replicas_share_one_count(Backend::Postgres).await;
}

/// Frame 1 shown as is: the view that decides [`chart_animation`].
fn chart_frame() -> Value {
    json!({"frame": 1, "rendering": "opaque"})
}

/// The animation's screening: `review`, decided by frame 1 (the reference is the harmless
/// first frame); returns the screening and its queue item's id.
async fn screen_chart_animation(
    server: &Server,
    console: &Console<'_>,
    artwork: &str,
) -> (Value, String) {
    let screened = screen(server, chart_animation(), "image/gif", artwork).await;
    assert_eq!(screened["verdict"], "review", "{screened}");
    assert_eq!(screened["decided_by"], chart_frame(), "{screened}");
    let item = queue_item(console, screened["screening_id"].as_str().unwrap()).await;
    (screened, item["id"].as_str().unwrap().to_string())
}

/// The highest BUTTOCKS_EXPOSED score in `detections`.
fn buttocks(detections: &Value) -> f64 {
    detections
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["label"] == "BUTTOCKS_EXPOSED")
        .map(|d| d["score"].as_f64().unwrap())
        .fold(0.0, f64::max)
}

/// Mean absolute difference of two grayscale pictures, the second resized to the first.
fn luma_distance(shown: &image::DynamicImage, expected: &[u8]) -> f64 {
    let shown = shown.to_luma8();
    let expected = image::load_from_memory(expected).unwrap().resize_exact(
        shown.width(),
        shown.height(),
        image::imageops::FilterType::Triangle,
    );
    let expected = expected.to_luma8();
    let total: f64 = shown
        .pixels()
        .zip(expected.pixels())
        .map(|(a, b)| f64::from(a.0[0].abs_diff(b.0[0])))
        .sum();
    total / f64::from(shown.width() * shown.height())
}

async fn animation_item_shows_and_confirms_the_deciding_frame(backend: Backend) {
    let Some(server) = start_on(backend, |_| {}).await else {
        return;
    };
    server.wait_ready().await;
    add_user(&server, "rita", "reviewer").await;
    let rita = login(&server, "rita").await;
    let (status, body) = server
        .send_json(
            ADMIN_TOKEN,
            Method::POST,
            "/v1/banks",
            &json!({"name": "known-bad", "signal_types": ["pdq", "md5"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (screened, id) = screen_chart_animation(&server, &rita, "art-anim").await;

    // The item lists every view with its detections and PDQ, and which one decided.
    let (status, view) = rita.get(&format!("/v1/review/items/{id}")).await;
    assert_eq!(status, 200, "{view}");
    let screening = &view["screening"];
    assert_eq!(screening["decided_by"], chart_frame(), "{screening}");
    assert!(buttocks(&screening["detections"]) < 0.4, "{screening}");
    let views = screening["views"].as_array().unwrap();
    let deciding = views
        .iter()
        .find(|v| v["frame"] == 1 && v["rendering"] == "opaque")
        .unwrap_or_else(|| panic!("frame 1 is not listed: {screening}"));
    assert!(buttocks(&deciding["detections"]) >= 0.4, "{deciding}");
    assert!(deciding["scores"]["BUTTOCKS_EXPOSED"].as_f64().unwrap() >= 0.4);
    let view_pdq = deciding["pdq"].as_str().unwrap().to_string();
    let reference_pdq = screening["pdq"].as_str().unwrap().to_string();
    assert_ne!(view_pdq, reference_pdq);
    assert_eq!(
        screened["views"][0]["pdq"]["hash"], view_pdq,
        "the item's views are the screening's"
    );

    // The dashboard counts the image at its deciding frame's score (0.8-0.9).
    let (status, stats) = rita.get("/v1/review/stats").await;
    assert_eq!(status, 200, "{stats}");
    let exposed = stats["score_histograms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["label"] == "BUTTOCKS_EXPOSED")
        .unwrap_or_else(|| panic!("{stats}"));
    assert_eq!(exposed["bins"][8], 1, "{stats}");

    // The image endpoint serves the deciding frame, as screened; the audit row names it.
    let image = format!("/v1/review/items/{id}/image");
    let (status, reference) = rita.bytes(&format!("{image}?mode=reveal")).await;
    assert_eq!(status, 200);
    let (status, frame) = rita
        .bytes(&format!("{image}?mode=reveal&frame=1&rendering=opaque"))
        .await;
    assert_eq!(status, 200);
    let chart = photo("color.png");
    let reference = image::load_from_memory(&reference).unwrap();
    let frame = image::load_from_memory(&frame).unwrap();
    assert!(frame.width().max(frame.height()) <= 512);
    let (to_chart, reference_to_chart) = (
        luma_distance(&frame, &chart),
        luma_distance(&reference, &chart),
    );
    assert!(
        to_chart < 8.0 && reference_to_chart > 4.0 * to_chart,
        "frame 1 is the chart ({to_chart:.1} from it), the reference is not ({reference_to_chart:.1})"
    );
    let (status, safe) = rita
        .bytes(&format!("{image}?frame=1&rendering=opaque"))
        .await;
    assert_eq!(status, 200);
    assert!(matches!(
        image::load_from_memory(&safe).unwrap(),
        image::DynamicImage::ImageLuma8(_)
    ));
    let reveals = audit_actions(&server, "image.reveal").await;
    assert_eq!(reveals.len(), 2, "{reveals:?}");
    assert_eq!(
        (
            &reveals[0]["detail"]["frame"],
            &reveals[0]["detail"]["rendering"]
        ),
        (&json!(1), &json!("opaque")),
        "the newest reveal names the frame: {reveals:?}"
    );
    assert!(reveals[1]["detail"].get("frame").is_none(), "{reveals:?}");
    let views_audited = audit_actions(&server, "image.view").await;
    assert_eq!(views_audited.len(), 1);
    assert_eq!(views_audited[0]["detail"]["frame"], 1);

    // A frame or rendering screening did not screen is not rendered, nor audited as shown:
    // frame 0 is the reference (served without parameters), frame 1 is opaque, and there
    // is no frame 2.
    for refused in [
        "frame=0&rendering=opaque",
        "frame=1&rendering=over_ffffff",
        "frame=2&rendering=opaque",
        "frame=default&rendering=opaque",
    ] {
        let (status, body) = rita.bytes(&format!("{image}?mode=reveal&{refused}")).await;
        assert_eq!(status, 404, "{refused}");
        assert!(!body.starts_with(b"\x89PNG"), "{refused}");
    }
    for malformed in ["frame=1", "rendering=opaque", "frame=one&rendering=opaque"] {
        let (status, _) = rita.bytes(&format!("{image}?{malformed}")).await;
        assert_eq!(status, 422, "{malformed}");
    }
    assert_eq!(audit_actions(&server, "image.reveal").await.len(), 2);
    assert_eq!(audit_actions(&server, "image.view").await.len(), 1);

    // Confirm banks the deciding frame's PDQ, not the harmless first frame's, and the file's
    // MD5.
    let (status, body) = rita
        .post(
            &format!("/v1/review/items/{id}/decision"),
            &json!({"decision": "confirm", "reason_code": "adult_explicit", "bank": "known-bad"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, entries) = server.get(ADMIN_TOKEN, "/v1/banks/known-bad/entries").await;
    let all = entries.as_array().unwrap();
    assert_eq!(body["outcome"]["bank_entries_added"], all.len(), "{body}");
    // The deciding view's regions are banked with it; the whole-image lines are these.
    let mut banked: Vec<(&str, &str)> = all
        .iter()
        .filter(|e| !e["signal"].as_str().unwrap().starts_with("pdq_"))
        .map(|e| (e["signal"].as_str().unwrap(), e["hash"].as_str().unwrap()))
        .collect();
    banked.sort_unstable();
    assert_eq!(
        banked,
        [
            ("md5", screened["md5"].as_str().unwrap()),
            ("pdq", view_pdq.as_str())
        ],
        "reference PDQ {reference_pdq}"
    );

    // So the chart is blocked when it comes back alone, in a file of its own.
    let alone = screen(&server, chart, "image/png", "art-chart").await;
    assert_eq!(alone["verdict"], "block", "{alone}");
    assert!(
        alone["matches"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["bank"] == "known-bad" && m["signal"] == "pdq"),
        "{alone}"
    );
    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_animation_item_shows_serves_and_confirms_its_deciding_frame_on_sqlite() {
    animation_item_shows_and_confirms_the_deciding_frame(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_animation_item_shows_serves_and_confirms_its_deciding_frame_on_postgres() {
    animation_item_shows_and_confirms_the_deciding_frame(Backend::Postgres).await;
}

async fn animation_release_allows_every_frame(backend: Backend) {
    let Some(server) = start_on(backend, |_| {}).await else {
        return;
    };
    server.wait_ready().await;
    add_user(&server, "rita", "reviewer").await;
    let rita = login(&server, "rita").await;
    let (screened, id) = screen_chart_animation(&server, &rita, "art-anim").await;

    // Release banks the PDQ of every picture the console offered: the reference and each view.
    let (status, body) = rita
        .post(
            &format!("/v1/review/items/{id}/decision"),
            &json!({"decision": "release", "reason_code": "false_positive_model"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"]["bank"], "allow-list");
    let (_, entries) = server
        .get(ADMIN_TOKEN, "/v1/banks/allow-list/entries")
        .await;
    let mut banked_pdq: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["signal"] == "pdq")
        .map(|e| e["hash"].as_str().unwrap())
        .collect();
    banked_pdq.sort_unstable();
    let mut offered: Vec<&str> = std::iter::once(&screened["pdq"]["hash"])
        .chain(
            screened["views"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| &v["pdq"]["hash"]),
        )
        .map(|h| h.as_str().unwrap())
        .collect();
    offered.sort_unstable();
    offered.dedup();
    assert_eq!(banked_pdq, offered, "{entries}");

    // The same animation comes back: each frame is cleared by its own allow-list entry.
    let again = screen(&server, chart_animation(), "image/gif", "art-anim-2").await;
    assert_eq!(again["verdict"], "allow", "{again}");
    assert!(
        again["matches"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["bank"] == "allow-list" && m["frame"] == 1),
        "{again}"
    );
    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn releasing_an_animation_allows_every_frame_next_time_on_sqlite() {
    animation_release_allows_every_frame(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn releasing_an_animation_allows_every_frame_next_time_on_postgres() {
    animation_release_allows_every_frame(Backend::Postgres).await;
}

/// Screens `bytes` as `artwork` of `owner`, with `extra` query parameters (`&k=v…`).
async fn screen_as(
    server: &Server,
    bytes: Vec<u8>,
    artwork: &str,
    owner: &str,
    extra: &str,
) -> Value {
    let (status, body) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/png",
            bytes,
            &format!("artwork_id={artwork}&owner_id={owner}{extra}"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

fn kind(body: &Value) -> Option<&str> {
    body["error"]["kind"].as_str()
}

/// A review item decides the screening it shows: once its artwork is screened again (here
/// with bank-blocked bytes), neither a release nor a confirm of the old item acts on it, and
/// the item says which screening is current and offers its queue item.
async fn superseded_items_are_not_decided(backend: Backend) {
    let Some(server) = start_on(backend, |_| {}).await else {
        return;
    };
    server.wait_ready().await;
    add_user(&server, "rita", "reviewer").await;
    let rita = login(&server, "rita").await;
    let (status, body) = server
        .send_json(
            ADMIN_TOKEN,
            Method::POST,
            "/v1/banks",
            &json!({"name": "known-bad", "signal_types": ["pdq", "md5"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let astronaut = photo("astronaut.png");
    let (status, body) = server
        .send_bytes(
            ADMIN_TOKEN,
            "/v1/banks/known-bad/entries",
            "image/png",
            astronaut.clone(),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let first = screen_as(&server, photo("color.png"), "art-x", "owner-1", "").await;
    assert_eq!(first["verdict"], "review", "{first}");
    let old_item = queue_item(&rita, first["screening_id"].as_str().unwrap()).await;
    let old_id = old_item["id"].as_str().unwrap().to_string();
    let second = screen_as(&server, astronaut, "art-x", "owner-1", "").await;
    assert_eq!(second["verdict"], "block", "{second}");
    let second_id = second["screening_id"].as_str().unwrap();

    for decision in [
        json!({"decision": "release", "reason_code": "false_positive_model"}),
        json!({"decision": "confirm", "reason_code": "adult_explicit", "bank": "known-bad"}),
        json!({"decision": "escalate", "reason_code": "second_opinion"}),
    ] {
        let (status, body) = rita
            .post(&format!("/v1/review/items/{old_id}/decision"), &decision)
            .await;
        assert_eq!(
            (status, kind(&body)),
            (409, Some("superseded")),
            "{decision}: {body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(second_id),
            "{body}"
        );
    }
    let (_, artwork) = server.get(SERVICE_TOKEN, "/v1/artworks/art-x").await;
    assert_eq!(artwork["status"], "quarantined", "{artwork}");
    assert_eq!(artwork["verdict"], "block", "{artwork}");
    for action in ["review.release", "review.confirm", "review.escalate"] {
        assert!(audit_actions(&server, action).await.is_empty(), "{action}");
    }
    let (_, entries) = server
        .get(ADMIN_TOKEN, "/v1/banks/allow-list/entries")
        .await;
    assert!(
        entries.as_array().is_none_or(|e| e.is_empty()),
        "nothing was allow-listed: {entries}"
    );

    // The old item says it is superseded, and by which item.
    let (status, view) = rita.get(&format!("/v1/review/items/{old_id}")).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["superseded_by"]["screening_id"], second_id, "{view}");
    let current = view["superseded_by"]["review_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, current_view) = rita.get(&format!("/v1/review/items/{current}")).await;
    assert_eq!(status, 200, "{current_view}");
    assert_eq!(current_view["screening"]["id"], second_id);
    assert!(current_view["superseded_by"].is_null(), "{current_view}");
    // The current item is decided as usual.
    let (status, body) = rita
        .post(
            &format!("/v1/review/items/{current}/decision"),
            &json!({"decision": "confirm", "reason_code": "adult_explicit", "bank": "known-bad"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_decision_on_a_superseded_screening_is_refused_on_sqlite() {
    superseded_items_are_not_decided(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_decision_on_a_superseded_screening_is_refused_on_postgres() {
    superseded_items_are_not_decided(Backend::Postgres).await;
}

/// A reviewer's release never lifts an admin's takedown; only the admin endpoint does, and it
/// is audited.
async fn only_an_admin_lifts_a_takedown(backend: Backend) {
    let Some(server) = start_on(backend, |_| {}).await else {
        return;
    };
    server.wait_ready().await;
    add_user(&server, "rita", "reviewer").await;
    let rita = login(&server, "rita").await;
    let screened = screen_as(&server, photo("color.png"), "art-t", "owner-t", "").await;
    let id = queue_item(&rita, screened["screening_id"].as_str().unwrap()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = server
        .send_json(
            ADMIN_TOKEN,
            Method::POST,
            "/v1/accounts/owner-t/takedown",
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let (status, view) = rita.get(&format!("/v1/review/items/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(view["owner_taken_down"], true, "{view}");
    let release = json!({"decision": "release", "reason_code": "not_explicit"});
    let (status, body) = rita
        .post(&format!("/v1/review/items/{id}/decision"), &release)
        .await;
    assert_eq!(
        (status, kind(&body)),
        (409, Some("owner_taken_down")),
        "{body}"
    );
    let (_, artwork) = server.get(SERVICE_TOKEN, "/v1/artworks/art-t").await;
    assert_eq!(artwork["status"], "quarantined", "{artwork}");
    assert!(audit_actions(&server, "review.release").await.is_empty());

    // Lifting is the admin's, explicitly.
    let lift = |token: &'static str| {
        let server = &server;
        async move {
            server
                .send_json(
                    token,
                    Method::DELETE,
                    "/v1/accounts/owner-t/takedown",
                    &json!({}),
                )
                .await
        }
    };
    assert_eq!(lift(SERVICE_TOKEN).await.0, 403);
    let (status, body) = lift(ADMIN_TOKEN).await;
    assert_eq!((status, &body["lifted"]), (200, &json!(true)), "{body}");
    let (status, body) = lift(ADMIN_TOKEN).await;
    assert_eq!(
        (status, &body["lifted"]),
        (200, &json!(false)),
        "a retry changes nothing"
    );
    let lifted = audit_actions(&server, "account.takedown_lift").await;
    assert_eq!(lifted.len(), 1, "{lifted:?}");
    assert_eq!(lifted[0]["subject"], "owner-t");
    assert!(
        lifted[0]["actor"].as_str().unwrap().starts_with("token:"),
        "the admin token: {lifted:?}"
    );
    let (_, artwork) = server.get(SERVICE_TOKEN, "/v1/artworks/art-t").await;
    assert_eq!(
        artwork["status"], "quarantined",
        "lifting publishes nothing by itself"
    );

    // Now the reviewer's release goes through.
    let (_, view) = rita.get(&format!("/v1/review/items/{id}")).await;
    assert_eq!(view["owner_taken_down"], false, "{view}");
    let (status, body) = rita
        .post(&format!("/v1/review/items/{id}/decision"), &release)
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, artwork) = server.get(SERVICE_TOKEN, "/v1/artworks/art-t").await;
    assert_eq!(artwork["status"], "released");
    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_an_admin_lifts_a_takedown_on_sqlite() {
    only_an_admin_lifts_a_takedown(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_an_admin_lifts_a_takedown_on_postgres() {
    only_an_admin_lifts_a_takedown(Backend::Postgres).await;
}

/// A release under the adult profile allow-lists the bytes for adults only: the strict
/// profile's classifier verdict on the same bytes stands.
async fn allow_list_never_clears_the_strict_profile(backend: Backend) {
    let Some(server) = start_on(backend, |_| {}).await else {
        return;
    };
    server.wait_ready().await;
    add_user(&server, "rita", "reviewer").await;
    let rita = login(&server, "rita").await;
    let chart = photo("color.png");
    let adult = screen_as(&server, chart.clone(), "art-s1", "owner-s", "").await;
    assert_eq!(adult["verdict"], "review", "{adult}");
    let id = queue_item(&rita, adult["screening_id"].as_str().unwrap()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = rita
        .post(
            &format!("/v1/review/items/{id}/decision"),
            &json!({"decision": "release", "reason_code": "false_positive_model"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let again = screen_as(&server, chart.clone(), "art-s2", "owner-s", "").await;
    assert_eq!(
        again["verdict"], "allow",
        "the adult profile is cleared: {again}"
    );
    for strict in ["&owner_is_minor=true", "&playlist_track_count=0"] {
        let minor = screen_as(&server, chart.clone(), "art-s3", "owner-m", strict).await;
        assert_ne!(minor["verdict"], "allow", "{strict}: {minor}");
        assert!(
            minor["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r.as_str().unwrap().starts_with("not cleared by")),
            "{minor}"
        );
        assert!(
            minor["matches"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["bank"] == "allow-list"),
            "the allow list matched, and did not clear: {minor}"
        );
        assert_ne!(minor["policy"], again["policy"], "{minor}");
    }
    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_allow_list_entry_never_clears_the_strict_profile_on_sqlite() {
    allow_list_never_clears_the_strict_profile(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_allow_list_entry_never_clears_the_strict_profile_on_postgres() {
    allow_list_never_clears_the_strict_profile(Backend::Postgres).await;
}

/// Two reviewers deciding one item at once: one decision is recorded (one audit row, one
/// outbox event), the other is told it lost, whether they agreed or not.
async fn concurrent_decisions_record_one(backend: Backend) {
    let Some(server) = start_on(backend, |_| {}).await else {
        return;
    };
    server.wait_ready().await;
    add_user(&server, "rita", "reviewer").await;
    add_user(&server, "rhea", "reviewer").await;
    let rita = login(&server, "rita").await;
    let rhea = login(&server, "rhea").await;
    let (status, body) = server
        .send_json(
            ADMIN_TOKEN,
            Method::POST,
            "/v1/banks",
            &json!({"name": "known-bad", "signal_types": ["pdq", "md5"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let release = json!({"decision": "release", "reason_code": "not_explicit"});
    let confirm =
        json!({"decision": "confirm", "reason_code": "adult_explicit", "bank": "known-bad"});
    // Both items are queued first: a release allow-lists the bytes for later screenings.
    let mut ids = Vec::new();
    for artwork in ["art-c0", "art-c1"] {
        let screened = screen_as(&server, photo("color.png"), artwork, "owner-c", "").await;
        let item = queue_item(&rita, screened["screening_id"].as_str().unwrap()).await;
        ids.push(item["id"].as_str().unwrap().to_string());
    }
    for (round, (a, b)) in [(&release, &release), (&release, &confirm)]
        .into_iter()
        .enumerate()
    {
        let id = &ids[round];
        let path = format!("/v1/review/items/{id}/decision");
        let ((sa, ba), (sb, bb)) = tokio::join!(rita.post(&path, a), rhea.post(&path, b));
        let mut statuses = [sa, sb];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 409], "round {round}: {ba} {bb}");
        let (winner, loser) = if sa == 200 { (&ba, &bb) } else { (&bb, &ba) };
        assert_eq!(winner["outcome"]["retried"], false, "{winner}");
        assert_eq!(kind(loser), Some("conflict"), "{loser}");
        let decided_by = winner["item"]["claimed_by"].as_str().unwrap();
        assert!(
            loser["error"]["message"]
                .as_str()
                .unwrap()
                .contains(decided_by),
            "the loser is told who decided: {loser}"
        );
        let (_, view) = rita.get(&format!("/v1/review/items/{id}")).await;
        let decisions: Vec<&Value> = view["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["action"] == "review.release" || h["action"] == "review.confirm")
            .collect();
        assert_eq!(decisions.len(), 1, "round {round}: {decisions:?}");
        assert_eq!(
            winner["outcome"]["report_ids"].as_array().unwrap().len(),
            decisions[0]["detail"]["report_ids"]
                .as_array()
                .unwrap()
                .len(),
        );
    }
    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_decisions_record_one_on_sqlite() {
    concurrent_decisions_record_one(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_decisions_record_one_on_postgres() {
    concurrent_decisions_record_one(Backend::Postgres).await;
}

/// An escalated artwork is as invisible to reviewers in another item's "owner's other
/// artwork" as its item is.
async fn escalated_artwork_is_not_listed_to_reviewers(backend: Backend) {
    let Some(server) = start_on(backend, |_| {}).await else {
        return;
    };
    server.wait_ready().await;
    add_user(&server, "rita", "reviewer").await;
    add_user(&server, "adam", "admin").await;
    let rita = login(&server, "rita").await;
    let adam = login(&server, "adam").await;
    let mut ids = Vec::new();
    for artwork in ["art-v1", "art-v2"] {
        let screened = screen_as(&server, photo("color.png"), artwork, "owner-v", "").await;
        let item = queue_item(&rita, screened["screening_id"].as_str().unwrap()).await;
        ids.push(item["id"].as_str().unwrap().to_string());
    }
    let (status, body) = rita
        .post(
            &format!("/v1/review/items/{}/decision", ids[0]),
            &json!({"decision": "escalate", "reason_code": "age_unclear"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        rita.get(&format!("/v1/review/items/{}", ids[0])).await.0,
        404
    );
    let listed = |view: &Value| -> Vec<String> {
        view["owner_artworks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["artwork_id"].as_str().unwrap().to_string())
            .collect()
    };
    let (status, view) = rita.get(&format!("/v1/review/items/{}", ids[1])).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(listed(&view), ["art-v2"], "{view}");
    let (_, view) = adam.get(&format!("/v1/review/items/{}", ids[1])).await;
    let mut seen = listed(&view);
    seen.sort();
    assert_eq!(seen, ["art-v1", "art-v2"], "admins see both");
    // Nor is it in any queue listing a reviewer may ask for.
    for state in ["open", "pending", "claimed", "decided"] {
        let (status, queue) = rita.get(&format!("/v1/review/queue?state={state}")).await;
        assert_eq!(status, 200);
        assert!(
            queue["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|i| i["id"] != ids[0].as_str()),
            "{state}: {queue}"
        );
    }
    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn escalated_artwork_is_not_listed_to_reviewers_on_sqlite() {
    escalated_artwork_is_not_listed_to_reviewers(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn escalated_artwork_is_not_listed_to_reviewers_on_postgres() {
    escalated_artwork_is_not_listed_to_reviewers(Backend::Postgres).await;
}

/// Creating a user that exists is a conflict; a reset is explicit and ends the user's
/// sessions; admins list users without secrets.
async fn users_are_created_once_and_reset_explicitly(backend: Backend) {
    let Some(server) = start_on(backend, |_| {}).await else {
        return;
    };
    server.wait_ready().await;
    add_user(&server, "rita", "reviewer").await;
    let rita = login(&server, "rita").await;
    let new_password = "another horse battery staple";
    let (status, body) = server
        .send_json(
            ADMIN_TOKEN,
            Method::POST,
            "/v1/users",
            &json!({"username": "rita", "password": new_password, "role": "admin"}),
        )
        .await;
    assert_eq!((status, kind(&body)), (409, Some("conflict")), "{body}");
    assert_eq!(rita.get("/v1/review/me").await.0, 200, "nothing changed");
    assert_eq!(
        rita.get("/v1/review/me").await.1["user"]["role"],
        "reviewer"
    );

    let reset = |token: &'static str, name: &'static str, password: &'static str| {
        let server = &server;
        async move {
            server
                .send_json(
                    token,
                    Method::POST,
                    &format!("/v1/users/{name}/password"),
                    &json!({"password": password}),
                )
                .await
        }
    };
    assert_eq!(reset(SERVICE_TOKEN, "rita", new_password).await.0, 403);
    assert_eq!(reset(ADMIN_TOKEN, "nobody", new_password).await.0, 404);
    let (status, body) = reset(ADMIN_TOKEN, "rita", "short").await;
    assert_eq!((status, kind(&body)), (422, Some("invalid")), "{body}");
    assert_eq!(rita.get("/v1/review/me").await.0, 200);
    let (status, body) = reset(ADMIN_TOKEN, "rita", new_password).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        rita.get("/v1/review/me").await.0,
        401,
        "the reset ended the session"
    );
    let login_with = |password: &'static str| {
        let request = server
            .client
            .post(format!("{}/v1/review/login", server.base))
            .json(&json!({"username": "rita", "password": password}));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(login_with(PASSWORD).await, 401);
    assert_eq!(login_with(new_password).await, 200);
    let resets = audit_actions(&server, "console_user.password_reset").await;
    assert_eq!(resets.len(), 1, "{resets:?}");
    assert_eq!(resets[0]["detail"]["sessions_ended"], 1);

    // A disabled user is enabled again by a reset.
    add_user(&server, "rhea", "admin").await;
    let (status, _) = server
        .send_json(ADMIN_TOKEN, Method::DELETE, "/v1/users/rhea", &json!({}))
        .await;
    assert_eq!(status, 204);

    let (status, _) = server.get(SERVICE_TOKEN, "/v1/users").await;
    assert_eq!(status, 403);
    let (status, list) = server.get(ADMIN_TOKEN, "/v1/users").await;
    assert_eq!(status, 200, "{list}");
    let users = list["users"].as_array().unwrap();
    let summary: Vec<(&str, &str, bool)> = users
        .iter()
        .map(|u| {
            (
                u["username"].as_str().unwrap(),
                u["role"].as_str().unwrap(),
                u["disabled"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [("rhea", "admin", true), ("rita", "reviewer", false)]
    );
    for user in users {
        assert!(user["created_at"].is_string(), "{user}");
        let keys: Vec<&String> = user.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 4, "no secret is listed: {user}");
    }
    assert!(!list.to_string().contains("argon2"), "{list}");
    assert_eq!(reset(ADMIN_TOKEN, "rhea", new_password).await.0, 204);
    let (_, list) = server.get(ADMIN_TOKEN, "/v1/users").await;
    assert_eq!(list["users"][0]["disabled"], false, "{list}");
    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn users_are_created_once_and_reset_explicitly_on_sqlite() {
    users_are_created_once_and_reset_explicitly(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn users_are_created_once_and_reset_explicitly_on_postgres() {
    users_are_created_once_and_reset_explicitly(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_openapi_document_names_the_review_state_endpoints_and_answers() {
    let server = start(|_| {}).await;
    let doc = server.openapi().await;
    for (path, method) in [
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
    assert!(doc["paths"]["/v1/users"]["post"]["responses"]["409"].is_object());
    let conflict = doc["paths"]["/v1/review/items/{id}/decision"]["post"]["responses"]["409"]
        ["description"]
        .as_str()
        .unwrap_or_default();
    for kind in ["superseded", "owner_taken_down"] {
        assert!(
            conflict.contains(kind),
            "409 {kind} undocumented: {conflict}"
        );
    }
    let item = &doc["components"]["schemas"]["ItemView"]["properties"];
    for field in ["superseded_by", "owner_taken_down"] {
        assert!(
            item[field].is_object(),
            "ItemView.{field} undocumented: {item}"
        );
    }
    let user = &doc["components"]["schemas"]["ConsoleUserSummary"]["properties"];
    let mut fields: Vec<&String> = user.as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(fields, ["created_at", "disabled", "role", "username"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_strict_title_asking_for_contact_outranks_model_only_reviews() {
    let server = start(|_| {}).await;
    server.wait_ready().await;
    add_user(&server, "rita", "reviewer").await;
    let console = login(&server, "rita").await;
    let titled = |artwork: &str, extra: &str| {
        format!("artwork_id={artwork}&owner_id=owner-1&title=add%20me%20on%20snap{extra}")
    };
    // A model-only review first; then the same clean photo under a title asking to move to
    // Snapchat, once on a busy playlist and once on an empty one (the strict profile).
    let model = screen(&server, photo("color.png"), "image/png", "model-only").await;
    let mut ids = vec![model["screening_id"].as_str().unwrap().to_string()];
    for (artwork, extra) in [
        ("busy", "&playlist_track_count=12"),
        ("empty", "&playlist_track_count=0"),
    ] {
        let (status, body) = server
            .screen_bytes(
                Some(SERVICE_TOKEN),
                "image/png",
                photo("astronaut.png"),
                &titled(artwork, extra),
            )
            .await;
        assert_eq!(
            (status, body["verdict"].as_str()),
            (200, Some("review")),
            "{body}"
        );
        ids.push(body["screening_id"].as_str().unwrap().to_string());
    }
    let (status, queue) = console.get("/v1/review/queue").await;
    assert_eq!(status, 200, "{queue}");
    let order: Vec<&str> = queue["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["artwork_id"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["empty", "model-only", "busy"], "{queue}");
    let empty = queue_item(&console, &ids[2]).await;
    assert!(empty["priority"].as_i64() > queue_item(&console, &ids[0]).await["priority"].as_i64());
    // The queue says why: the words, not only that the profile was strict.
    assert_eq!(
        empty["reason"],
        "review: contact details in title (\"add me on snap\")"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_owners_empty_playlists_asking_for_contact_are_reviewed_as_one() {
    let server = start(|_| {}).await;
    server.wait_ready().await;
    add_user(&server, "rita", "reviewer").await;
    let console = login(&server, "rita").await;
    let model = screen(&server, photo("color.png"), "image/png", "model-only").await;
    // A stranger's conversation, one empty playlist per message; then a band's innocent
    // empty playlists.
    let script = [
        ("stranger-1", "hi there 👋"),
        ("stranger-1", "how old r u?"),
        ("stranger-1", "whats ur snap"),
        ("stranger-1", "add me: jay_k99 on sc"),
        ("stranger-1", "send me a pic of u"),
        ("band-1", "Summer Vibes"),
        ("band-1", "Call Me Maybe"),
        ("band-1", "What's on your mind?"),
    ];
    let mut records = Vec::new();
    for (i, (owner, title)) in script.iter().enumerate() {
        let query = format!(
            "artwork_id=conv-{i}&owner_id={owner}&playlist_track_count=0&title={}",
            url::form_urlencoded::byte_serialize(title.as_bytes()).collect::<String>()
        );
        let (status, body) = server
            .screen_bytes(
                Some(SERVICE_TOKEN),
                "image/png",
                photo("astronaut.png"),
                &query,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        records.push(body);
    }
    let pattern = |n: usize| records[n]["text"]["owner_pattern"].clone();
    for n in [0, 1, 2, 3, 5, 6, 7] {
        assert_eq!(pattern(n), Value::Null, "upload {n}: {}", records[n]);
    }
    // The third empty playlist asking for contact or pictures completes the pattern.
    assert_eq!(
        pattern(4),
        json!(["conv-2", "conv-3", "conv-4"]),
        "{}",
        records[4]
    );
    assert_eq!(records[4]["verdict"], "review");
    let reason = records[4]["reasons"][0].as_str().unwrap();
    assert!(
        reason.starts_with("review: owner pattern: 3 empty playlists within 7 days")
            && !reason.contains("jay_k99"),
        "{reason}"
    );
    // It is first in the queue, ahead of the model-only review and the single titles.
    let (status, queue) = console.get("/v1/review/queue").await;
    assert_eq!(status, 200, "{queue}");
    let first = &queue["items"][0];
    assert_eq!(first["artwork_id"], "conv-4", "{queue}");
    assert!(
        first["priority"].as_i64()
            > queue_item(&console, model["screening_id"].as_str().unwrap()).await["priority"]
                .as_i64()
    );
}

/// Screen words alone: JSON with no `url`, the title in the context.
async fn screen_words(
    server: &Server,
    artwork: &str,
    owner: &str,
    title: &str,
    key: Option<&str>,
) -> (u16, Value) {
    let mut request = server
        .client
        .post(format!("{}/v1/screen", server.base))
        .bearer_auth(SERVICE_TOKEN)
        .json(&json!({
            "artwork_id": artwork,
            "owner_id": owner,
            "context": {"title": title, "playlist_track_count": 0},
        }));
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let resp = request.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn titles_screened_without_an_image_are_held_reviewed_and_make_the_owner_pattern() {
    let hook = Webhook::start().await;
    let hook_url = hook.url().to_string();
    let server = start_with_webhook(hook_url).await;
    server.wait_ready().await;
    add_user(&server, "rita", "reviewer").await;
    let rita = login(&server, "rita").await;
    let (status, body) = server
        .send_json(
            SERVICE_TOKEN,
            Method::POST,
            "/v1/screen",
            &json!({"artwork_id": "a", "owner_id": "o", "context": {"surface": "playlist_cover"}}),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["field"]),
        (422, &json!("url")),
        "{body}"
    );

    // The case's messages, one empty playlist with no cover each, and a band's titles.
    let script = [
        ("stranger-1", "hi there 👋"),
        ("band-1", "Call Me Maybe"),
        ("stranger-1", "whats ur snap"),
        ("stranger-1", "add me: jay_k99 on sc"),
        ("band-1", "Summer Vibes"),
        ("stranger-1", "send me a pic of u"),
    ];
    let mut records = Vec::new();
    for (i, (owner, title)) in script.iter().enumerate() {
        let (status, body) = screen_words(&server, &format!("conv-{i}"), owner, title, None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["source"], format!("text:conv-{i}"), "{body}");
        for image_field in ["sha256", "md5", "pdq", "detections", "width"] {
            assert!(body.get(image_field).is_none(), "{image_field} in {body}");
        }
        records.push(body);
    }
    let verdicts: Vec<&str> = records
        .iter()
        .map(|r| r["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(
        verdicts,
        ["allow", "allow", "review", "review", "allow", "review"]
    );
    assert_eq!(
        records[5]["text"]["owner_pattern"],
        json!(["conv-2", "conv-3", "conv-5"]),
        "{}",
        records[5]
    );
    assert!(records[3]["text"]["owner_pattern"].is_null());
    // The pattern's item leads the queue.
    let (status, queue) = rita.get("/v1/review/queue").await;
    assert_eq!(status, 200, "{queue}");
    assert_eq!(queue["items"][0]["artwork_id"], "conv-5", "{queue}");

    // A retry under its key answers the stored screening; another title under it is refused.
    let (status, first) = screen_words(&server, "retry-1", "o-2", "text me", Some("k-1")).await;
    assert_eq!(status, 200, "{first}");
    let (status, again) = screen_words(&server, "retry-1", "o-2", "text me", Some("k-1")).await;
    assert_eq!((status, &again), (200, &first));
    let (status, conflict) =
        screen_words(&server, "retry-1", "o-2", "Summer Vibes", Some("k-1")).await;
    assert_eq!(
        (status, conflict["error"]["kind"].as_str()),
        (409, Some("idempotency_conflict")),
        "{conflict}"
    );

    // A cover screened before is decided again under its new title: same image, new words.
    let cover = screen(&server, photo("astronaut.png"), "image/png", "cover-1").await;
    assert_eq!(cover["verdict"], "allow", "{cover}");
    let (status, retitled) =
        screen_words(&server, "cover-1", "owner-1", "add me on snap", None).await;
    assert_eq!(status, 200, "{retitled}");
    assert_eq!(retitled["sha256"], cover["sha256"], "{retitled}");
    assert_eq!(retitled["source"], cover["source"]);
    assert_eq!(retitled["verdict"], "review", "{retitled}");
    assert_ne!(retitled["screening_id"], cover["screening_id"]);
    // It was public: the platform is told to take it down.
    let unpublish = hook
        .first("the unpublish event", |b| b["kind"] == "unpublish")
        .await;
    assert_eq!(unpublish["payload"]["artwork_id"], "cover-1", "{unpublish}");
    // Out of view: quarantined, as review verdicts are by default (no bytes are kept for
    // a new title: the cover's were not sent again).
    let (status, artwork) = server.get(SERVICE_TOKEN, "/v1/artworks/cover-1").await;
    assert_eq!(status, 200, "{artwork}");
    assert_eq!(unpublish["payload"]["status"], "quarantined", "{unpublish}");
    assert_eq!(artwork["status"], "quarantined", "{artwork}");
    assert_eq!(
        unpublish["payload"]["screening_id"],
        retitled["screening_id"]
    );

    // The console shows words alone without an image, and confirms them without a bank.
    let words_id = records[3]["screening_id"].as_str().unwrap();
    let item = queue_item(&rita, words_id).await;
    let id = item["id"].as_str().unwrap();
    let (status, view) = rita.get(&format!("/v1/review/items/{id}")).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["screening"]["has_image"], false, "{view}");
    assert_eq!(
        view["screening"]["context"]["title"],
        "add me: jay_k99 on sc"
    );
    assert_eq!(view["screening"]["text"]["signals"][0]["source"], "title");
    assert_eq!(view["evidence"], false);
    let (status, _) = rita.bytes(&format!("/v1/review/items/{id}/image")).await;
    assert_eq!(status, 404);
    let path = format!("/v1/review/items/{id}/decision");
    let (status, body) = rita
        .post(
            &path,
            &json!({"decision": "confirm", "reason_code": "grooming_or_contact_request",
                    "bank": "known-bad"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["kind"].as_str()),
        (422, Some("invalid")),
        "{body}"
    );
    let (status, body) = rita
        .post(
            &path,
            &json!({"decision": "confirm", "reason_code": "grooming_or_contact_request"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let kinds: Vec<&str> = body["outcome"]["outbox"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["decision"], "nothing to bank or report: {body}");
    let event = hook
        .first("the decision event", |b| {
            b["kind"] == "decision" && b["payload"]["review_id"] == id
        })
        .await;
    let event = &event["payload"];
    assert_eq!(event["action"], "keep_removed", "{event}");
    assert!(event.get("sha256").is_none(), "{event}");
    // Titles held from their first screening were never public: only the cover was.
    let unpublished: Vec<Value> = hook
        .acknowledged()
        .iter()
        .filter(|b| b["kind"] == "unpublish")
        .map(|b| b["payload"]["artwork_id"].clone())
        .collect();
    assert_eq!(unpublished, [json!("cover-1")]);
}
