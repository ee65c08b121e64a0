//! The reviewer console's API over HTTP: who may see what, claims, each decision and what it
//! does to the banks, the quarantine and the outbox, and the audit rows every view leaves.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::server::*;
use reqwest::Method;
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery staple";

/// A logged-in console user: the session cookie and the CSRF token.
struct Console<'a> {
    server: &'a Server,
    cookie: String,
    csrf: String,
}

impl Console<'_> {
    async fn request(&self, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut request = self
            .server
            .client
            .request(method, format!("{}{path}", self.server.base))
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.request(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.request(Method::POST, path, Some(body)).await
    }

    async fn bytes(&self, path: &str) -> (u16, Vec<u8>) {
        let response = self
            .server
            .client
            .get(format!("{}{path}", self.server.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.bytes().await.unwrap().to_vec())
    }
}

async fn add_user(server: &Server, name: &str, role: &str) {
    let (status, body) = server
        .send_json(
            ADMIN_TOKEN,
            Method::POST,
            "/v1/users",
            &json!({"username": name, "password": PASSWORD, "role": role}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

async fn login<'a>(server: &'a Server, name: &str) -> Console<'a> {
    let response = server
        .client
        .post(format!("{}/v1/review/login", server.base))
        .json(&json!({"username": name, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(
            set_cookie.contains(attribute),
            "{set_cookie} lacks {attribute}"
        );
    }
    assert!(set_cookie.starts_with("__Host-cg_session="));
    let body: Value = response.json().await.unwrap();
    Console {
        server,
        cookie: set_cookie.split(';').next().unwrap().to_string(),
        csrf: body["csrf_token"].as_str().unwrap().to_string(),
    }
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
        let response = server
            .client
            .post(format!("{}/v1/review/login", server.base))
            .json(&json!({"username": name, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["kind"], "bad_credentials");
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

/// A local webhook that records every body it receives.
async fn webhook() -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| async move {
            sink.lock()
                .unwrap()
                .push(serde_json::from_str(&body).unwrap());
            axum::http::StatusCode::OK
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// The first body the webhook received that `matches`, waiting up to 10 s for it.
async fn wait_for(seen: &Mutex<Vec<Value>>, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        if let Some(body) = seen.lock().unwrap().iter().find(|b| matches(b)) {
            return body.clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no {what} reached the webhook");
}

async fn wait_for_event(seen: &Mutex<Vec<Value>>, action: &str) -> Value {
    wait_for(seen, action, |b| {
        b["kind"] == "decision" && b["payload"]["action"] == action
    })
    .await
}

async fn confirm_and_release(backend: Backend) {
    let (hook_url, seen) = webhook().await;
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
    assert_eq!(body["outcome"]["bank_entries_added"], 2, "PDQ and MD5");
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
    let (_, entries) = server.get(ADMIN_TOKEN, "/v1/banks/known-bad/entries").await;
    let signals: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["signal"].as_str().unwrap())
        .collect();
    assert_eq!(signals.len(), 2, "{entries}");
    let (status, retry) = decide(confirm).await;
    assert_eq!(
        (status, retry["outcome"]["retried"].as_bool()),
        (200, Some(true))
    );
    let (status, _) = decide(json!({"decision": "release", "reason_code": "not_explicit"})).await;
    assert_eq!(status, 409, "decided already");
    wait_for_event(&seen, "keep_removed").await;
    // The confirmed image is reported, to NCMEC too as the bank holds CSAM.
    for kind in ["hit", "cybertipline"] {
        wait_for(&seen, kind, |b| b["kind"] == kind).await;
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
    let publish = wait_for_event(&seen, "publish").await;
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
