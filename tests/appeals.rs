//! Appeals over HTTP, on SQLite and Postgres: an owner appeals a reviewer's confirm, which
//! that reviewer cannot decide; a reversal publishes through the outbox and the art is
//! allowed at its next screening; an appeal against a `csam` bank match or an account
//! takedown goes to an admin, and reviewers never see it.

mod common;

use common::console::{self, add_user, Console};
use common::server::*;
use common::webhook::Webhook;
use reqwest::Method;
use serde_json::{json, Value};

async fn file_appeal(server: &Server, body: Value) -> (u16, Value) {
    server
        .send_json(SERVICE_TOKEN, Method::POST, "/v1/appeals", &body)
        .await
}

async fn decide(console: &Console<'_>, appeal: &str, body: Value) -> (u16, Value) {
    console
        .post(&format!("/v1/review/appeals/{appeal}/decision"), &body)
        .await
}

async fn appeal_event(hook: &Webhook, appeal: &str) -> Value {
    hook.first(&format!("the outcome of appeal {appeal}"), |b| {
        b["kind"] == "appeal" && b["payload"]["appeal_id"] == appeal
    })
    .await
}

async fn listed(console: &Console<'_>, query: &str) -> Vec<String> {
    let (status, body) = console.get(&format!("/v1/review/appeals{query}")).await;
    assert_eq!(status, 200, "{body}");
    body["appeals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect()
}

async fn a_confirm_is_appealed_to_someone_else_and_a_reversal_publishes(backend: Backend) {
    let hook = Webhook::start().await;
    let hook_url = hook.url().to_string();
    let Some(server) = start_on(backend, |c| send_outbox_to(c, &hook_url)).await else {
        return;
    };
    server.wait_ready().await;
    for name in ["rita", "sam"] {
        add_user(&server, name, "reviewer").await;
    }
    let rita = console::login(&server, "rita").await;
    let sam = console::login(&server, "sam").await;
    server
        .create_bank(json!({"name": "known-bad", "severity": 5}))
        .await;

    // A model review that rita confirms into the known-bad bank.
    let chart = server
        .screen_photo_as("color.png", "art-1", "owner-1")
        .await;
    assert_eq!(chart["verdict"], "review", "{chart}");
    let (status, queue) = rita.get("/v1/review/queue").await;
    assert_eq!(status, 200, "{queue}");
    let item = queue["items"][0]["id"].as_str().unwrap().to_string();
    let (status, body) = rita
        .post(
            &format!("/v1/review/items/{item}/decision"),
            &json!({"decision": "confirm", "reason_code": "adult_explicit", "bank": "known-bad"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let blocked = server
        .screen_photo_as("color.png", "art-2", "owner-1")
        .await;
    assert_eq!(blocked["verdict"], "block", "{blocked}");

    // Only the owner appeals, and one decision is appealed once.
    let (status, body) = file_appeal(
        &server,
        json!({"owner_id": "someone-else", "artwork_id": "art-1"}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["kind"].as_str()),
        (422, Some("not_owner")),
        "{body}"
    );
    let request =
        json!({"owner_id": "owner-1", "artwork_id": "art-1", "text": "it is a colour chart"});
    let (status, appeal) = file_appeal(&server, request.clone()).await;
    assert_eq!(status, 201, "{appeal}");
    assert_eq!(appeal["kind"], "review_confirm");
    assert_eq!(appeal["original_actor"], "rita");
    assert_eq!(appeal["level"], "reviewer");
    let id = appeal["id"].as_str().unwrap().to_string();
    let (status, again) = file_appeal(&server, request).await;
    assert_eq!(
        (status, again["id"].as_str()),
        (200, Some(id.as_str())),
        "{again}"
    );
    assert_eq!(listed(&sam, "").await, [id.as_str()]);

    // The appeal shows the decision it contests.
    let (status, view) = sam.get(&format!("/v1/review/appeals/{id}")).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["review"]["decision"], "confirm", "{view}");
    assert!(
        view["screening"]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("BUTTOCKS_EXPOSED"),
        "{view}"
    );
    assert_eq!(view["evidence"], true, "{view}");
    assert_eq!(view["own_decision"], false);
    let (_, own) = rita.get(&format!("/v1/review/appeals/{id}")).await;
    assert_eq!(own["own_decision"], true, "{own}");

    // Not by the reviewer who confirmed.
    let reverse = json!({"outcome": "reversed", "reason_code": "not_explicit", "note": "a chart"});
    let (status, body) = decide(&rita, &id, reverse.clone()).await;
    assert_eq!(
        (status, body["error"]["kind"].as_str()),
        (409, Some("same_decider")),
        "{body}"
    );
    let (status, body) = decide(
        &sam,
        &id,
        json!({"outcome": "reversed", "reason_code": "decision_correct"}),
    )
    .await;
    assert_eq!(status, 422, "an upheld reason for a reversal: {body}");

    let (status, decided) = decide(&sam, &id, reverse.clone()).await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["appeal"]["outcome"], "reversed");
    assert_eq!(decided["appeal"]["decided_by"], "sam");
    assert_eq!(decided["released_items"], 1, "{decided}");
    assert!(decided["entries_disabled"].as_u64() > Some(0), "{decided}");
    assert_eq!(server.artwork_status("art-1").await, "released");
    let event = appeal_event(&hook, &id).await;
    assert_eq!(event["payload"]["action"], "publish", "{event}");
    assert_eq!(event["payload"]["outcome"], "reversed", "{event}");
    // A retry is answered as recorded; another outcome is refused.
    let (status, retried) = decide(&sam, &id, reverse).await;
    assert_eq!(
        (status, retried["retried"].as_bool()),
        (200, Some(true)),
        "{retried}"
    );
    let (status, body) = decide(
        &sam,
        &id,
        json!({"outcome": "upheld", "reason_code": "decision_correct"}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(listed(&sam, "").await.is_empty());
    assert_eq!(listed(&sam, "?state=decided").await, [id.as_str()]);

    // The confirm's entry no longer blocks, and the allow list clears the model's review.
    let after = server
        .screen_photo_as("color.png", "art-3", "owner-1")
        .await;
    assert_eq!(after["verdict"], "allow", "{after}");
    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_confirm_is_appealed_to_someone_else_and_a_reversal_publishes_on_sqlite() {
    a_confirm_is_appealed_to_someone_else_and_a_reversal_publishes(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_confirm_is_appealed_to_someone_else_and_a_reversal_publishes_on_postgres() {
    a_confirm_is_appealed_to_someone_else_and_a_reversal_publishes(Backend::Postgres).await;
}

async fn csam_and_takedown_appeals_go_to_an_admin(backend: Backend) {
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
    add_user(&server, "rita", "reviewer").await;
    add_user(&server, "adam", "admin").await;
    let rita = console::login(&server, "rita").await;
    let adam = console::login(&server, "adam").await;
    server
        .create_bank(
            json!({"name": "hotline", "severity": 9, "category": "csam", "signal_types": ["md5"]}),
        )
        .await;
    let (status, body) = server
        .send_bytes(
            ADMIN_TOKEN,
            "/v1/banks/hotline/entries?external_id=case-7",
            "image/png",
            photo("astronaut.png"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let blocked = server
        .screen_photo_as("astronaut.png", "art-c", "owner-c")
        .await;
    assert_eq!(blocked["verdict"], "block", "{blocked}");

    let (status, appeal) = file_appeal(
        &server,
        json!({"owner_id": "owner-c", "artwork_id": "art-c"}),
    )
    .await;
    assert_eq!(status, 201, "{appeal}");
    assert_eq!(appeal["kind"], "automated_block");
    assert_eq!(appeal["level"], "admin");
    assert_eq!(appeal["original_actor"], Value::Null);
    let csam = appeal["id"].as_str().unwrap().to_string();

    // Reviewers never learn it exists.
    assert!(listed(&rita, "").await.is_empty());
    let (status, _) = rita.get(&format!("/v1/review/appeals/{csam}")).await;
    assert_eq!(status, 404);
    let reverse = json!({"outcome": "reversed", "reason_code": "false_positive_hash"});
    let (status, body) = decide(&rita, &csam, reverse.clone()).await;
    assert_eq!(status, 404);
    assert_eq!(
        body["error"]["message"],
        format!("no appeal {csam}"),
        "{body}"
    );
    assert_eq!(listed(&adam, "").await, [csam.as_str()]);

    // The admin reverses it: the entry is disabled, so a rescan does not block again.
    let (status, decided) = decide(&adam, &csam, reverse).await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["entries_disabled"], 1, "{decided}");
    assert_eq!(server.artwork_status("art-c").await, "released");
    let (status, entries) = server.get(ADMIN_TOKEN, "/v1/banks/hotline/entries").await;
    assert_eq!(status, 200, "{entries}");
    let entries = entries.as_array().unwrap();
    assert!(
        !entries.is_empty() && entries.iter().all(|e| e["disabled"] == true),
        "{entries:?}"
    );
    let again = server
        .screen_photo_as("astronaut.png", "art-c2", "owner-c")
        .await;
    assert_eq!(again["verdict"], "allow", "{again}");
    assert_eq!(
        appeal_event(&hook, &csam).await["payload"]["action"],
        "publish"
    );

    // A takedown's appeal is the account's, decided by an admin.
    server.take_down("owner-t").await;
    let (status, takedown) = file_appeal(&server, json!({"owner_id": "owner-t"})).await;
    assert_eq!(status, 201, "{takedown}");
    assert_eq!(takedown["kind"], "takedown");
    assert_eq!(takedown["level"], "admin");
    let taken = takedown["id"].as_str().unwrap().to_string();
    assert!(listed(&rita, "").await.is_empty());
    let (status, upheld) = decide(
        &adam,
        &taken,
        json!({"outcome": "upheld", "reason_code": "decision_correct"}),
    )
    .await;
    assert_eq!(status, 200, "{upheld}");
    assert_eq!(upheld["takedown_lifted"], false);
    assert_eq!(
        appeal_event(&hook, &taken).await["payload"]["action"],
        "keep_taken_down"
    );
    // An account not taken down has nothing to appeal.
    let (status, body) = file_appeal(&server, json!({"owner_id": "owner-free"})).await;
    assert_eq!(
        (status, body["error"]["kind"].as_str()),
        (409, Some("not_restricted")),
        "{body}"
    );
    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn csam_and_takedown_appeals_go_to_an_admin_on_sqlite() {
    csam_and_takedown_appeals_go_to_an_admin(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn csam_and_takedown_appeals_go_to_an_admin_on_postgres() {
    csam_and_takedown_appeals_go_to_an_admin(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_a_decided_restriction_is_appealed() {
    let server = start(|_| {}).await;
    server.wait_ready().await;
    server
        .screen_photo_as("astronaut.png", "published", "owner-1")
        .await;
    server.screen_photo_as("color.png", "held", "owner-1").await;
    for (body, status, kind) in [
        (
            json!({"owner_id": "owner-1", "artwork_id": "published"}),
            409,
            "not_restricted",
        ),
        (
            json!({"owner_id": "owner-1", "artwork_id": "held"}),
            409,
            "under_review",
        ),
        (
            json!({"owner_id": "owner-1", "artwork_id": "never"}),
            404,
            "unknown_artwork",
        ),
        (
            json!({"owner_id": "owner-1", "artwork_id": "held", "text": "x".repeat(4001)}),
            422,
            "invalid",
        ),
        (
            json!({"owner_id": "owner-1", "artwork": "held"}),
            400,
            "bad_request",
        ),
    ] {
        let (got, answer) = file_appeal(&server, body.clone()).await;
        assert_eq!(
            (got, answer["error"]["kind"].as_str()),
            (status, Some(kind)),
            "{body}: {answer}"
        );
    }
    server.finish().await;
}
