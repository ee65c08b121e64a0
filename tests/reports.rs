//! User reports over HTTP, on SQLite and Postgres: a report about an owner covers all of
//! their stored art, a report that a minor is involved decides the art again under the
//! strict profile and puts it ahead of model-only reviews, a repeat is the same report,
//! other reporters' reports join the same item, and a report after a decision is reviewed
//! again.

mod common;

use std::collections::BTreeSet;

use common::console::{self, add_user, Console};
use common::server::*;
use reqwest::Method;
use serde_json::{json, Value};

/// Reviews BELLY_EXPOSED from 0.5: the moon (0.39) passes the adult profile, and the strict
/// profile (review from 0.25) holds it.
const POLICY: &str = "[labels.BELLY_EXPOSED]\nreview = 0.5\n";

async fn report(server: &Server, body: Value) -> (u16, Value) {
    server
        .send_json(SERVICE_TOKEN, Method::POST, "/v1/reports", &body)
        .await
}

async fn queue(console: &Console<'_>, query: &str) -> Value {
    let (status, queue) = console.get(&format!("/v1/review/queue{query}")).await;
    assert_eq!(status, 200, "{queue}");
    queue
}

fn artwork_order(queue: &Value) -> Vec<String> {
    queue["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["artwork_id"].as_str().unwrap().to_string())
        .collect()
}

/// The report's item for `artwork`.
fn item_for<'a>(intake: &'a Value, artwork: &str) -> &'a Value {
    intake["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["artwork_id"] == artwork)
        .unwrap_or_else(|| panic!("no item for {artwork}: {intake}"))
}

async fn a_guardians_report_about_an_owner_comes_before_model_reviews(backend: Backend) {
    let policy = tempfile::tempdir().unwrap();
    let policy_file = policy.path().join("policy.toml");
    std::fs::write(&policy_file, POLICY).unwrap();
    let Some(server) = start_on(backend, |c| c.policy_file = Some(policy_file)).await else {
        return;
    };
    server.wait_ready().await;
    add_user(&server, "rita", "reviewer").await;
    let rita = console::login(&server, "rita").await;
    // The banks a confirm and a release use, made first: the strict profile's version
    // then stays the same through the test, as it does between bank-rule changes.
    server
        .create_bank(json!({"name": "known-bad", "severity": 5}))
        .await;
    server
        .create_bank(
            json!({"name": "allow-list", "allow_list": true, "action": "allow",
                            "signal_types": ["pdq", "md5", "sha256"], "pdq_threshold": 8,
                            "severity": 0}),
        )
        .await;

    let model = server
        .screen_photo_as("color.png", "model-only", "owner-m")
        .await;
    assert_eq!(model["verdict"], "review", "{model}");
    for (file, artwork) in [("moon.png", "g-1"), ("astronaut.png", "g-2")] {
        let body = server.screen_photo_as(file, artwork, "owner-g").await;
        assert_eq!(body["verdict"], "allow", "{artwork}: {body}");
    }
    assert_eq!(artwork_order(&queue(&rita, "").await), ["model-only"]);

    let guardian = json!({
        "reporter_kind": "guardian",
        "reporter_ref": "parent-1",
        "category": "minor_sexual",
        "owner_id": "owner-g",
        "text": "these are pictures of my daughter",
    });
    let (status, intake) = report(&server, guardian.clone()).await;
    assert_eq!(status, 201, "{intake}");
    assert_eq!(intake["created"], true);
    assert_eq!(intake["report"]["subject"], "owner");
    assert_eq!(intake["items"].as_array().unwrap().len(), 2, "{intake}");
    for artwork in ["g-1", "g-2"] {
        assert_eq!(item_for(&intake, artwork)["redecided"], true, "{intake}");
    }
    // Decided again under the strict profile: the moon is held now, the astronaut (a face)
    // is still allowed but in front of a reviewer all the same.
    assert_eq!(item_for(&intake, "g-1")["verdict"], "review", "{intake}");
    assert_eq!(item_for(&intake, "g-2")["verdict"], "allow", "{intake}");
    // Held for review out of view (reviews quarantine by default), with no bytes: an
    // allowed upload's were not kept.
    assert_eq!(server.artwork_status("g-1").await, "quarantined");
    assert_eq!(server.artwork_status("g-2").await, "published");

    // All of the owner's art ahead of the model-only review.
    let open = queue(&rita, "").await;
    let order = artwork_order(&open);
    assert_eq!(order.len(), 3, "{open}");
    assert_eq!(
        order[..2].iter().collect::<BTreeSet<_>>(),
        ["g-1".to_string(), "g-2".to_string()].iter().collect(),
        "{open}"
    );
    assert_eq!(order[2], "model-only");

    // The item shows the report and what the strict profile found.
    let g1 = item_for(&intake, "g-1")["review_id"]
        .as_str()
        .unwrap()
        .to_string();
    let g2 = item_for(&intake, "g-2")["review_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, view) = rita.get(&format!("/v1/review/items/{g1}")).await;
    assert_eq!(status, 200, "{view}");
    let reports = view["user_reports"].as_array().unwrap();
    assert_eq!(reports.len(), 1, "{view}");
    assert_eq!(reports[0]["reporter_kind"], "guardian");
    assert_eq!(reports[0]["text"], "these are pictures of my daughter");
    assert!(
        view["screening"]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().contains("strict profile")),
        "{view}"
    );

    // The same report again is the same report: nothing changes.
    let (status, again) = report(&server, guardian).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["created"], false);
    assert_eq!(again["report"]["id"], intake["report"]["id"]);
    for artwork in ["g-1", "g-2"] {
        assert_eq!(
            item_for(&again, artwork)["review_id"],
            item_for(&intake, artwork)["review_id"]
        );
        assert_eq!(
            item_for(&again, artwork)["priority"],
            item_for(&intake, artwork)["priority"]
        );
    }

    // A second report that a minor is involved joins the item the strict profile already
    // decided: deciding it again would hide the first report on a superseded item.
    let (status, flagger) = report(
        &server,
        json!({"reporter_kind": "trusted_flagger", "reporter_ref": "hotline-1",
               "category": "minor_sexual", "artwork_id": "g-1"}),
    )
    .await;
    assert_eq!(status, 201, "{flagger}");
    assert_eq!(item_for(&flagger, "g-1")["review_id"], g1.as_str());
    assert_eq!(item_for(&flagger, "g-1")["redecided"], false, "{flagger}");

    // Another reporter's report joins the item; a user's word adds less than the guardian's,
    // so the priority stays.
    let (status, user) = report(
        &server,
        json!({"reporter_kind": "user", "reporter_ref": "listener-9",
               "category": "adult_nudity", "artwork_id": "g-2"}),
    )
    .await;
    assert_eq!(status, 201, "{user}");
    assert_eq!(item_for(&user, "g-2")["review_id"], g2.as_str());
    assert_eq!(item_for(&user, "g-2")["redecided"], false);
    assert_eq!(
        item_for(&user, "g-2")["priority"],
        item_for(&intake, "g-2")["priority"]
    );
    let reported = queue(&rita, "?reported=true").await;
    assert_eq!(
        artwork_order(&reported)
            .into_iter()
            .collect::<BTreeSet<_>>(),
        ["g-1".to_string(), "g-2".to_string()].into(),
        "{reported}"
    );
    assert_eq!(reported["user_reports"][&g2], 2, "{reported}");
    assert_eq!(reported["user_reports"][&g1], 2, "{reported}");

    // Confirmed, art the screening let through goes out of view.
    let (status, body) = rita
        .post(
            &format!("/v1/review/items/{g2}/decision"),
            &json!({"decision": "confirm", "reason_code": "sexualised_minor", "bank": "known-bad"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.artwork_status("g-2").await, "quarantined");

    // Reported again after a decision, the art is reviewed again, as a new screening.
    let (status, body) = rita
        .post(
            &format!("/v1/review/items/{g1}/decision"),
            &json!({"decision": "release", "reason_code": "not_explicit"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, later) = report(
        &server,
        json!({"reporter_kind": "trusted_flagger", "reporter_ref": "hotline-3",
               "category": "grooming", "artwork_id": "g-1"}),
    )
    .await;
    assert_eq!(status, 201, "{later}");
    let item = item_for(&later, "g-1");
    assert_eq!(item["redecided"], true, "{later}");
    // Under the strict profile again: the moon is held, not allowed under the adult one.
    assert_eq!(item["verdict"], "review", "{later}");
    assert_ne!(item["review_id"], g1.as_str());
    assert_ne!(
        item["screening_id"],
        item_for(&intake, "g-1")["screening_id"]
    );
    let open = queue(&rita, "").await;
    assert_eq!(artwork_order(&open)[0], "g-1", "{open}");

    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_guardians_report_about_an_owner_comes_before_model_reviews_on_sqlite() {
    a_guardians_report_about_an_owner_comes_before_model_reviews(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_guardians_report_about_an_owner_comes_before_model_reviews_on_postgres() {
    a_guardians_report_about_an_owner_comes_before_model_reviews(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reports_that_name_nothing_known_are_refused_and_store_nothing() {
    let server = start(|_| {}).await;
    server.wait_ready().await;
    server
        .screen_photo_as("astronaut.png", "art-1", "owner-1")
        .await;
    let base = json!({"reporter_kind": "user", "reporter_ref": "r-1", "category": "other"});
    let with = |extra: Value| {
        let mut body = base.clone();
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    for (body, status, kind) in [
        (
            with(json!({"artwork_id": "never-seen"})),
            404,
            "unknown_artwork",
        ),
        (with(json!({})), 422, "invalid"),
        (
            with(json!({"artwork_id": "art-1", "owner_id": "owner-1"})),
            422,
            "invalid",
        ),
        (
            with(json!({"artwork_id": "art-1", "category": "spam"})),
            400,
            "bad_request",
        ),
        (
            with(json!({"artwork_id": "art-1", "reporter_ref": " "})),
            422,
            "invalid",
        ),
        (
            with(json!({"artwork_id": "art-1", "text": "x".repeat(4001)})),
            422,
            "invalid",
        ),
        (
            with(json!({"artwork_id": "art-1", "extra": 1})),
            400,
            "bad_request",
        ),
    ] {
        let (got, answer) = report(&server, body.clone()).await;
        assert_eq!(
            (got, answer["error"]["kind"].as_str()),
            (status, Some(kind)),
            "{body}: {answer}"
        );
    }
    // None of them made a report: the first valid one is new.
    let (status, body) = report(&server, with(json!({"artwork_id": "art-1"}))).await;
    assert_eq!(status, 201, "{body}");
    // Reports come from the platform, with its token.
    let (status, _) = server
        .send_json(
            "not-a-token",
            Method::POST,
            "/v1/reports",
            &with(json!({"artwork_id": "art-1"})),
        )
        .await;
    assert_eq!(status, 401);
    server.finish().await;
}
