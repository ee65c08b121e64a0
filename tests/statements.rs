//! Statements of reasons and transparency counts over HTTP, on SQLite and Postgres: every
//! decision that restricted art or an account (an automatic block, a review hold,
//! reviewers' confirms, a takedown) has exactly one statement, in the DSA Transparency
//! Database's shape, and the export reads the same every time; the counts equal the rows
//! they count.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::console;
use common::server::*;
use common::webhook::Webhook;
use serde_json::{json, Value};

/// Fields every statement carries, as the database's API names them.
const REQUIRED: [&str; 13] = [
    "puid",
    "decision_visibility",
    "decision_ground",
    "category",
    "category_specification",
    "content_type",
    "content_date",
    "application_date",
    "decision_facts",
    "source_type",
    "automated_detection",
    "automated_decision",
    "territorial_scope",
];

async fn export(server: &Server, token: &str, from: &str, to: &str) -> (u16, String) {
    let response = server
        .client
        .get(format!("{}/v1/statements?from={from}&to={to}", server.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

fn day(offset: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(offset))
        .format("%Y-%m-%d")
        .to_string()
}

async fn confirm(console: &console::Console<'_>, item: &str, reason: &str) {
    let (status, body) = console
        .post(
            &format!("/v1/review/items/{item}/decision"),
            &json!({"decision": "confirm", "reason_code": reason, "bank": "known-bad"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// A `csam` bank holding the astronaut's bytes, and a known-bad bank to confirm into.
async fn banks_with_the_astronaut_as_csam(server: &Server) {
    server
        .create_bank(json!({"name": "hotline", "category": "csam", "signal_types": ["md5"]}))
        .await;
    server
        .create_bank(json!({"name": "known-bad", "severity": 5}))
        .await;
    let (status, body) = server
        .bank_image("hotline", "case-1", photo("astronaut.png"))
        .await;
    assert_eq!(status, 200, "{body}");
}

async fn every_restricting_decision_has_one_statement(backend: Backend) {
    let Some(server) = start_on(backend, |c| c.reporter = Some(reporter())).await else {
        return;
    };
    server.wait_ready().await;
    console::add_user(&server, "rita", "reviewer").await;
    let rita = console::login(&server, "rita").await;
    banks_with_the_astronaut_as_csam(&server).await;

    let blocked = server
        .screen_photo_as("astronaut.png", "art-b", "owner-1")
        .await;
    assert_eq!(blocked["verdict"], "block", "{blocked}");
    let held = server
        .screen_photo_as("color.png", "art-h", "owner-1")
        .await;
    assert_eq!(held["verdict"], "review", "{held}");
    let allowed = server.screen_photo_as("moon.png", "art-r", "owner-2").await;
    assert_eq!(allowed["verdict"], "allow", "{allowed}");
    let (status, reported) = server
        .send_json(
            SERVICE_TOKEN,
            reqwest::Method::POST,
            "/v1/reports",
            &json!({"reporter_kind": "trusted_flagger", "reporter_ref": "hotline-9",
                    "category": "other", "artwork_id": "art-r"}),
        )
        .await;
    assert_eq!(status, 201, "{reported}");
    let (_, queue) = rita.get("/v1/review/queue").await;
    let item_of = |artwork: &str| {
        queue["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["artwork_id"] == artwork)
            .unwrap_or_else(|| panic!("{artwork} is not queued: {queue}"))["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (held_item, reported_item) = (item_of("art-h"), item_of("art-r"));
    confirm(&rita, &held_item, "adult_explicit").await;
    confirm(&rita, &reported_item, "grooming_or_contact_request").await;
    // Taken down twice: one decision.
    server.take_down("owner-t").await;
    server.take_down("owner-t").await;

    let (status, body) = export(&server, ADMIN_TOKEN, &day(-1), &day(1)).await;
    assert_eq!(status, 200, "{body}");
    let statements: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: BTreeMap<String, &Value> = statements
        .iter()
        .map(|s| {
            let key = format!(
                "{} {}",
                s["coverguard"]["decision"].as_str().unwrap(),
                s["coverguard"]["artwork_id"].as_str().unwrap_or("-")
            );
            (key, s)
        })
        .collect();
    assert_eq!(
        kinds.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "automated_block art-b",
            "review_confirm art-h",
            "review_confirm art-r",
            "review_hold art-h",
            "takedown -",
        ],
        "one statement per restricting decision: {body}"
    );
    let puids: BTreeSet<&str> = statements
        .iter()
        .map(|s| s["puid"].as_str().unwrap())
        .collect();
    assert_eq!(puids.len(), statements.len(), "{body}");
    for s in &statements {
        for field in REQUIRED {
            assert!(!s[field].is_null(), "{field} missing: {s}");
        }
        assert!(s["territorial_scope"]
            .as_array()
            .unwrap()
            .contains(&json!("DE")));
        let ground = s["decision_ground"].as_str().unwrap();
        let (present, absent) = if ground == "DECISION_GROUND_ILLEGAL_CONTENT" {
            (
                "illegal_content_legal_ground",
                "incompatible_content_ground",
            )
        } else {
            assert_eq!(ground, "DECISION_GROUND_INCOMPATIBLE_CONTENT");
            (
                "incompatible_content_ground",
                "illegal_content_legal_ground",
            )
        };
        assert!(s[present].is_string() && s[absent].is_null(), "{s}");
    }
    let field = |key: &str, name: &str| kinds[key][name].clone();
    assert_eq!(
        field("automated_block art-b", "decision_ground"),
        "DECISION_GROUND_ILLEGAL_CONTENT"
    );
    assert_eq!(
        field("automated_block art-b", "category_specification"),
        json!(["KEYWORD_CHILD_SEXUAL_ABUSE_MATERIAL"])
    );
    assert_eq!(
        field("automated_block art-b", "automated_decision"),
        "AUTOMATED_DECISION_FULLY"
    );
    assert_eq!(
        field("review_hold art-h", "decision_visibility"),
        json!(["DECISION_VISIBILITY_CONTENT_DISABLED"])
    );
    assert!(field("review_hold art-h", "decision_facts")
        .as_str()
        .unwrap()
        .contains("BUTTOCKS_EXPOSED"));
    assert_eq!(
        field("review_confirm art-h", "automated_decision"),
        "AUTOMATED_DECISION_PARTIALLY"
    );
    assert_eq!(
        field("review_confirm art-h", "category"),
        "STATEMENT_CATEGORY_PORNOGRAPHY_OR_SEXUALIZED_CONTENT"
    );
    assert_eq!(
        field("review_confirm art-r", "source_type"),
        "SOURCE_TRUSTED_FLAGGER"
    );
    assert_eq!(field("review_confirm art-r", "automated_detection"), "No");
    assert_eq!(
        field("review_confirm art-r", "automated_decision"),
        "AUTOMATED_DECISION_NOT_AUTOMATED"
    );
    assert_eq!(
        field("review_confirm art-r", "category_specification"),
        json!(["KEYWORD_GROOMING_SEXUAL_ENTICEMENT_MINORS"])
    );
    assert_eq!(
        field("takedown -", "decision_account"),
        "DECISION_ACCOUNT_SUSPENDED"
    );
    assert_eq!(field("takedown -", "coverguard")["owner_id"], "owner-t");

    // The same decisions read the same; days without decisions have none.
    let (_, again) = export(&server, ADMIN_TOKEN, &day(-1), &day(1)).await;
    assert_eq!(again, body);
    let (status, none) = export(&server, ADMIN_TOKEN, &day(-9), &day(-8)).await;
    assert_eq!((status, none.as_str()), (200, ""));
    for (token, from, to, status) in [
        (SERVICE_TOKEN, day(-1), day(1), 403),
        (ADMIN_TOKEN, "yesterday".to_string(), day(1), 422),
        (ADMIN_TOKEN, day(1), day(-1), 422),
    ] {
        let (got, answer) = export(&server, token, &from, &to).await;
        assert_eq!(got, status, "{from}..{to}: {answer}");
    }
    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_restricting_decision_has_one_statement_on_sqlite() {
    every_restricting_decision_has_one_statement(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_restricting_decision_has_one_statement_on_postgres() {
    every_restricting_decision_has_one_statement(Backend::Postgres).await;
}

async fn transparency_counts_equal_the_rows_they_count(backend: Backend) {
    let hook = Webhook::start().await;
    let hook_url = hook.url().to_string();
    let Some(server) = start_on(backend, |c| {
        c.reporter = Some(reporter());
        send_outbox_to(c, &hook_url);
    })
    .await
    else {
        return;
    };
    server.wait_ready().await;
    for name in ["rita", "sam"] {
        console::add_user(&server, name, "reviewer").await;
    }
    let rita = console::login(&server, "rita").await;
    let sam = console::login(&server, "sam").await;
    banks_with_the_astronaut_as_csam(&server).await;
    server
        .screen_photo_as("astronaut.png", "art-b", "owner-1")
        .await;
    server
        .screen_photo_as("color.png", "art-h", "owner-1")
        .await;
    server.screen_photo_as("moon.png", "art-r", "owner-2").await;
    // A guardian's report decides art-r again (a fourth screening) and queues it.
    let (status, body) = server
        .send_json(
            SERVICE_TOKEN,
            reqwest::Method::POST,
            "/v1/reports",
            &json!({"reporter_kind": "guardian", "reporter_ref": "parent-1",
                    "category": "minor_sexual", "artwork_id": "art-r"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (_, queue) = rita.get("/v1/review/queue").await;
    let held = queue["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["artwork_id"] == "art-h")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    confirm(&rita, &held, "adult_explicit").await;
    let (status, appeal) = server
        .send_json(
            SERVICE_TOKEN,
            reqwest::Method::POST,
            "/v1/appeals",
            &json!({"owner_id": "owner-1", "artwork_id": "art-h"}),
        )
        .await;
    assert_eq!(status, 201, "{appeal}");
    let (status, body) = sam
        .post(
            &format!(
                "/v1/review/appeals/{}/decision",
                appeal["id"].as_str().unwrap()
            ),
            &json!({"outcome": "upheld", "reason_code": "decision_correct"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let (status, counts) = server
        .get(
            ADMIN_TOKEN,
            &format!("/v1/transparency?from={}&to={}", day(-1), day(1)),
        )
        .await;
    assert_eq!(status, 200, "{counts}");
    let written: u64 = counts["reports_sent"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|states| states.as_object().unwrap().values())
        .map(|n| n.as_u64().unwrap())
        .sum();
    // Each outbox row counted is one report the webhook receives.
    let received = hook
        .at_least(written as usize, "every report", |_| true)
        .await;
    let distinct: BTreeSet<&str> = received
        .iter()
        .map(|b| b["report_id"].as_str().unwrap())
        .collect();
    assert_eq!(distinct.len() as u64, written, "{counts}");

    assert_eq!(counts["screenings"], 4, "{counts}");
    assert_eq!(
        counts["verdicts"],
        json!({"allow": 2, "block": 1, "review": 1}),
        "{counts}"
    );
    assert_eq!(
        counts["blocks_by_signal"],
        json!({"bank:csam": 1}),
        "{counts}"
    );
    assert_eq!(counts["reviews"]["queued"], 3, "{counts}");
    assert_eq!(counts["reviews"]["decided"], 1, "{counts}");
    assert!(counts["reviews"]["median_seconds_to_decision"].is_i64());
    assert_eq!(
        counts["decisions_by_reason"],
        json!({"confirm:adult_explicit": 1})
    );
    assert_eq!(
        counts["user_reports"],
        json!({"reports": 1, "by_category": {"minor_sexual": 1}, "by_outcome": {"pending": 1}})
    );
    assert_eq!(
        counts["appeals"],
        json!({"filed": 1, "decided": 1, "upheld": 1, "reversed": 0, "reversal_rate": 0.0})
    );
    for kind in ["hit", "cybertipline", "decision", "appeal"] {
        assert!(counts["reports_sent"][kind].is_object(), "{kind}: {counts}");
    }
    // The console shows the same counts to a reviewer; a service token is refused.
    let (status, seen) = rita
        .get(&format!("/v1/transparency?from={}&to={}", day(-1), day(1)))
        .await;
    assert_eq!((status, &seen["appeals"]), (200, &counts["appeals"]));
    let (status, _) = server
        .get(
            SERVICE_TOKEN,
            &format!("/v1/transparency?from={}&to={}", day(-1), day(1)),
        )
        .await;
    assert_eq!(status, 403);
    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transparency_counts_equal_the_rows_they_count_on_sqlite() {
    transparency_counts_equal_the_rows_they_count(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transparency_counts_equal_the_rows_they_count_on_postgres() {
    transparency_counts_equal_the_rows_they_count(Backend::Postgres).await;
}
