//! What the review API gives the console to show a reviewer: revealed images in colour, a
//! queue that pages and lists each artwork once, the earlier items of an artwork, which banks
//! are allow lists, and what a decision filed.

mod common;

use common::console::{add_user, login, Console};
use common::server::*;
use reqwest::Method;
use serde_json::{json, Value};

/// A revealed or safe image, decoded.
async fn image(console: &Console<'_>, path: &str) -> image::DynamicImage {
    let (status, bytes) = console.bytes(path).await;
    assert_eq!(status, 200, "{path}");
    image::load_from_memory(&bytes).unwrap()
}

async fn reviewer<'a>(server: &'a Server, name: &str) -> Console<'a> {
    add_user(server, name, "reviewer").await;
    login(server, name).await
}

async fn screen(server: &Server, name: &str, artwork: &str) -> String {
    let (status, body) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/png",
            photo(name),
            &format!("artwork_id={artwork}&owner_id=owner-1"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["verdict"], "review", "{body}");
    body["screening_id"].as_str().unwrap().to_string()
}

fn artworks(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["artwork_id"].as_str().unwrap().to_string())
        .collect()
}

fn is_gray(image: &image::DynamicImage) -> bool {
    matches!(image, image::DynamicImage::ImageLuma8(_))
}

/// The safe view is grayscale by default, but a reveal is for judging the picture, colour
/// included (the colour chart is a colour-only false positive): it is in colour unless the
/// reviewer asks for grayscale reveals too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reveal_is_in_colour_unless_the_reviewer_asks_otherwise() {
    let server = start(|_| {}).await;
    server.wait_ready().await;
    let rita = reviewer(&server, "rita").await;
    screen(&server, "color.png", "art-1").await;
    let (_, queue) = rita.get("/v1/review/queue").await;
    let id = queue["items"][0]["id"].as_str().unwrap().to_string();
    let (_, me) = rita.get("/v1/review/me").await;
    assert_eq!(
        me["user"]["settings"],
        json!({"blur": 12, "grayscale": true, "grayscale_reveal": false}),
        "{me}"
    );

    let safe = image(&rita, &format!("/v1/review/items/{id}/image")).await;
    let revealed = image(&rita, &format!("/v1/review/items/{id}/image?mode=reveal")).await;
    assert!(is_gray(&safe), "the safe view is grayscale by default");
    assert!(!is_gray(&revealed), "a reveal shows colour by default");
    let (_, reveals) = server
        .get(ADMIN_TOKEN, "/v1/review/audit?action=image.reveal")
        .await;
    assert_eq!(
        reveals["rows"][0]["detail"]["grayscale"], false,
        "{reveals}"
    );

    let (status, body) = rita
        .request(
            Method::PUT,
            "/v1/review/me/settings",
            Some(&json!({"blur": 12, "grayscale": true, "grayscale_reveal": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let revealed = image(&rita, &format!("/v1/review/items/{id}/image?mode=reveal")).await;
    assert!(is_gray(&revealed), "asked for grayscale reveals");

    // A client that knows only the older fields gets colour reveals.
    let (status, body) = rita
        .request(
            Method::PUT,
            "/v1/review/me/settings",
            Some(&json!({"blur": 12, "grayscale": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["settings"]["grayscale_reveal"], false);
    server.finish().await;
}

/// The queue pages with a cursor, and lists an artwork screened twice once: its latest open
/// item, from which the earlier one is reachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_queue_pages_and_lists_each_artwork_once() {
    let server = start(|_| {}).await;
    server.wait_ready().await;
    let rita = reviewer(&server, "rita").await;
    let first = screen(&server, "color.png", "art-1").await;
    screen(&server, "color.png", "art-2").await;
    screen(&server, "color.png", "art-3").await;
    // A rescan of art-1: a second screening and item for the same artwork.
    let second = screen(&server, "color.png", "art-1").await;
    assert_ne!(first, second);

    let (status, page1) = rita.get("/v1/review/queue?limit=2").await;
    assert_eq!(status, 200, "{page1}");
    assert_eq!(artworks(&page1).len(), 2, "{page1}");
    let cursor = page1["next_cursor"]
        .as_str()
        .unwrap_or_else(|| panic!("a first page says where the next starts: {page1}"));
    let (status, page2) = rita
        .get(&format!("/v1/review/queue?limit=2&after={cursor}"))
        .await;
    assert_eq!(status, 200, "{page2}");
    assert!(page2["next_cursor"].is_null(), "the last page: {page2}");
    let mut listed = artworks(&page1);
    listed.extend(artworks(&page2));
    listed.sort();
    assert_eq!(listed, ["art-1", "art-2", "art-3"], "one row per artwork");

    let all = page1["items"].as_array().unwrap().iter();
    let all: Vec<&Value> = all.chain(page2["items"].as_array().unwrap()).collect();
    let art1 = all.iter().find(|i| i["artwork_id"] == "art-1").unwrap();
    assert_eq!(art1["screening_id"], second.as_str(), "the latest item");

    // The current item lists the artwork's earlier item, which still opens.
    let (status, item) = rita
        .get(&format!(
            "/v1/review/items/{}",
            art1["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, 200, "{item}");
    let items = item["artwork_items"].as_array().unwrap();
    let screenings: Vec<&str> = items
        .iter()
        .map(|i| i["screening_id"].as_str().unwrap())
        .collect();
    assert_eq!(screenings, [second.as_str(), first.as_str()], "{item}");
    let (status, old) = rita
        .get(&format!(
            "/v1/review/items/{}",
            items[1]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, 200, "{old}");
    assert_eq!(old["superseded_by"]["screening_id"], second.as_str());

    // A cursor the queue did not hand out, or a filter value that names nothing, is
    // refused rather than answered with an empty page.
    for query in [
        "after=no-such-item",
        "verdict=blocked",
        "state=archived",
        "reported=yes",
    ] {
        let (status, body) = rita.get(&format!("/v1/review/queue?{query}")).await;
        assert_eq!(
            (status, body["error"]["kind"].as_str()),
            (422, Some("invalid")),
            "{query}: {body}"
        );
    }
    server.finish().await;
}

/// The queue and the item say which banks are allow lists, so an allow-list match is not
/// shown as a known-bad hit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn allow_list_banks_are_named_as_such() {
    let server = start(|_| {}).await;
    server.wait_ready().await;
    let rita = reviewer(&server, "rita").await;
    for bank in [
        json!({"name": "watch", "action": "review", "signal_types": ["md5"], "severity": 3}),
        json!({"name": "cleared", "allow_list": true, "signal_types": ["md5"]}),
    ] {
        let (status, body) = server
            .send_json(ADMIN_TOKEN, Method::POST, "/v1/banks", &bank)
            .await;
        assert_eq!(status, 201, "{body}");
    }
    for bank in ["watch", "cleared"] {
        let (status, body) = server
            .send_bytes(
                ADMIN_TOKEN,
                &format!("/v1/banks/{bank}/entries"),
                "image/png",
                photo("color.png"),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    screen(&server, "color.png", "art-1").await;
    let (_, queue) = rita.get("/v1/review/queue").await;
    assert_eq!(
        queue["bank_actions"],
        json!({"cleared": "allow", "watch": "review"}),
        "{queue}"
    );
    let id = queue["items"][0]["id"].as_str().unwrap();
    let (_, item) = rita.get(&format!("/v1/review/items/{id}")).await;
    assert_eq!(item["bank_actions"]["cleared"], "allow", "{item}");
    server.finish().await;
}

/// A release files no report: the one outbox row it writes is the decision event telling the
/// webhooks to publish, and the outcome says which kind each row is.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_release_says_it_filed_no_report() {
    let server = start(|_| {}).await;
    server.wait_ready().await;
    let rita = reviewer(&server, "rita").await;
    screen(&server, "color.png", "art-1").await;
    let (_, queue) = rita.get("/v1/review/queue").await;
    let id = queue["items"][0]["id"].as_str().unwrap();
    let (status, body) = rita
        .post(
            &format!("/v1/review/items/{id}/decision"),
            &json!({"decision": "release", "reason_code": "false_positive_model"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let outbox = &body["outcome"]["outbox"];
    assert_eq!(outbox.as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(outbox[0]["kind"], "decision", "{body}");
    assert_eq!(outbox[0]["id"], body["outcome"]["report_ids"][0], "{body}");
    server.finish().await;
}
