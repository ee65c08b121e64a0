//! The reviewer console end to end in a real headless Chromium (Debian's chromium, driven by
//! its chromedriver over the W3C WebDriver protocol; no browser download): log in, see the
//! queue, open an item whose image is blurred, reveal it, see the boxes, confirm it, and check
//! what the confirm did; open an animation's item on the frame that decided it, and step
//! through its frames.
//!
//! Runs when /usr/bin/chromedriver exists; `COVERGUARD_TEST_BROWSER=1` (set by `.ci/run`)
//! makes a missing browser a failure instead of a skip. With `COVERGUARD_SCREENSHOT_DIR` set,
//! the queue and item pages are saved there as PNG (the README's screenshots).

#[path = "common/animation.rs"]
mod animation;
mod common;
#[path = "common/webdriver.rs"]
mod webdriver;

use std::path::PathBuf;

use common::server::*;
use reqwest::Method;
use serde_json::{json, Value};
use webdriver::{browser_available, start_driver, Browser};

const PASSWORD: &str = "correct horse battery staple";

/// Saves the viewport as `name` in `COVERGUARD_SCREENSHOT_DIR`, when that is set.
async fn screenshot(browser: &Browser<'_>, name: &str) {
    let Some(dir) = std::env::var_os("COVERGUARD_SCREENSHOT_DIR") else {
        return;
    };
    let bytes = browser.screenshot_png().await;
    let path = PathBuf::from(dir).join(name);
    std::fs::write(&path, bytes).unwrap();
    eprintln!("screenshot: {}", path.display());
}

/// What the item page shows of its image once it has loaded: the view, its URL, its boxes.
const SHOWN: &str = "const img = document.querySelector('#artwork-image');
    if (!img || !img.complete || img.naturalWidth === 0) return null;
    const text = (css) => { const e = document.querySelector(css); return e ? e.textContent : null; };
    return {
      src: img.src,
      mode: img.dataset.mode,
      label: text('#view-label'),
      position: text('#view-position'),
      scores: text('#scores-h'),
      boxes: [...document.querySelectorAll('#boxes .box')].map(b => b.dataset.label),
      prevDisabled: document.querySelector('#view-prev').disabled,
      nextDisabled: document.querySelector('#view-next').disabled,
    };";

async fn image_shown(browser: &Browser<'_>) -> Value {
    browser.until("the image", SHOWN, json!([])).await
}

/// Waits until the view labelled `label` has loaded.
async fn until_shown(browser: &Browser<'_>, label: &str) -> Value {
    let script = format!(
        "const shown = (() => {{ {SHOWN} }})();
         return shown && shown.label === arguments[0] ? shown : null;"
    );
    browser
        .until(&format!("the view {label}"), &script, json!([label]))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reviewer_confirms_an_item_in_the_browser() {
    if !browser_available() {
        return;
    }
    let server = start(|_| {}).await;
    server.wait_ready().await;
    let (status, body) = server
        .send_json(
            ADMIN_TOKEN,
            Method::POST,
            "/v1/users",
            &json!({"username": "rita", "password": PASSWORD, "role": "reviewer"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = server
        .send_json(
            ADMIN_TOKEN,
            Method::POST,
            "/v1/banks",
            &json!({"name": "known-bad", "severity": 5}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // A watch-list hit (queued first: bank hits outrank model scores), color.png, a model
    // review with a detection box, and an animation whose second frame is the colour chart;
    // coffee.png is allowed and never queued.
    let (status, body) = server
        .send_json(
            ADMIN_TOKEN,
            Method::POST,
            "/v1/banks",
            &json!({"name": "watch", "action": "review", "signal_types": ["md5"], "severity": 3}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = server
        .send_bytes(
            ADMIN_TOKEN,
            "/v1/banks/watch/entries",
            "image/png",
            photo("astronaut.png"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    for (photo_name, artwork) in [
        ("astronaut.png", "art-0"),
        ("color.png", "art-1"),
        ("coffee.png", "art-2"),
    ] {
        let (status, body) = server
            .screen_bytes(
                Some(SERVICE_TOKEN),
                "image/png",
                photo(photo_name),
                &format!("artwork_id={artwork}&owner_id=owner-1"),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/gif",
            animation::chart_animation(),
            "artwork_id=art-3&owner_id=owner-2",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["verdict"], "review", "{body}");

    let driver = start_driver().await;
    let profile = tempfile::tempdir().unwrap();
    let browser = driver
        .browser(profile.path(), &["--window-size=1280,1100"])
        .await;
    // `localhost`, not 127.0.0.1: browsers keep Secure cookies for http://localhost only.
    let base = server.base.replace("127.0.0.1", "localhost");

    // Not logged in: the console sends us to the login page.
    browser.goto(&format!("{base}/console")).await;
    browser.find("#login-form").await;
    browser.type_into("#username", "rita").await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("#login-submit").await;

    // The queue.
    browser.find("#queue-table tr.queue-row").await;
    let rows = browser
        .script(
            "return [...document.querySelectorAll('tr.queue-row')].map(r => r.dataset.reviewId)",
            json!([]),
        )
        .await;
    let queued = rows.as_array().unwrap();
    assert_eq!(queued.len(), 3, "queue rows: {rows}");
    let first = browser
        .script(
            "return document.querySelector('tr.queue-row').textContent",
            json!([]),
        )
        .await;
    assert!(
        first.as_str().unwrap().contains("art-0"),
        "the bank hit is first: {first}"
    );
    screenshot(&browser, "console-queue.png").await;

    // Open the color.png item (the one with detections).
    let (_, artwork) = server.get(SERVICE_TOKEN, "/v1/artworks/art-1").await;
    let screening_id = artwork["screening_id"].as_str().unwrap().to_string();
    let row_of = |artwork: &'static str| {
        let browser = &browser;
        async move {
            browser
                .until(
                    &format!("the {artwork} row"),
                    "const row = [...document.querySelectorAll('tr.queue-row')]
                       .find(r => r.textContent.includes(arguments[0]));
                     return row ? row.dataset.reviewId : null;",
                    json!([artwork]),
                )
                .await
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let item_id = row_of("art-1").await;
    let animation_id = row_of("art-3").await;
    browser
        .click(&format!(
            "tr.queue-row[data-review-id='{item_id}'] a.open-item"
        ))
        .await;

    // Blurred by default: the browser was given the safe rendition only.
    let mode = browser
        .until(
            "the safe image",
            "const img = document.querySelector('#artwork-image');
             return img && img.complete && img.naturalWidth > 0 ? img.dataset.mode : null;",
            json!([]),
        )
        .await;
    assert_eq!(mode, "safe");
    let src = browser
        .script(
            "return document.querySelector('#artwork-image').src",
            json!([]),
        )
        .await;
    assert!(src.as_str().unwrap().contains("mode=safe"), "{src}");
    let boxes = browser
        .until(
            "detection boxes",
            "const boxes = [...document.querySelectorAll('#boxes .box')];
             return boxes.length ? boxes.map(b => b.dataset.label) : null;",
            json!([]),
        )
        .await;
    assert!(!boxes.as_array().unwrap().is_empty());
    let (_, views) = server
        .get(ADMIN_TOKEN, "/v1/review/audit?action=image.view")
        .await;
    assert_eq!(views["rows"].as_array().unwrap().len(), 1, "{views}");
    assert_eq!(views["rows"][0]["actor"], "rita");
    let (_, reveals) = server
        .get(ADMIN_TOKEN, "/v1/review/audit?action=image.reveal")
        .await;
    assert!(
        reveals["rows"].as_array().unwrap().is_empty(),
        "nothing revealed yet"
    );
    screenshot(&browser, "console-item.png").await;

    // Reveal: a new, audited request for the unblurred rendition.
    browser.click("#reveal").await;
    browser
        .until(
            "the revealed image",
            "const img = document.querySelector('#artwork-image');
             return img.dataset.mode === 'reveal' && img.src.includes('mode=reveal')
                    && img.complete && img.naturalWidth > 0;",
            json!([]),
        )
        .await;
    let (_, reveals) = server
        .get(ADMIN_TOKEN, "/v1/review/audit?action=image.reveal")
        .await;
    assert_eq!(reveals["rows"].as_array().unwrap().len(), 1, "{reveals}");

    // Confirm into the known-bad bank.
    browser.click("#decision option[value='confirm']").await;
    browser
        .until(
            "confirm reason codes",
            "return document.querySelector(\"#reason-code option[value='adult_explicit']\") !== null",
            json!([]),
        )
        .await;
    browser
        .click("#reason-code option[value='adult_explicit']")
        .await;
    browser
        .click("#confirm-bank option[value='known-bad']")
        .await;
    browser
        .type_into("#note", "confirmed in the e2e test")
        .await;
    browser.click("#decide-submit").await;
    let result = browser
        .until(
            "the decision result",
            "const r = document.querySelector('#decision-result');
             return r && r.textContent.includes('confirm') ? r.textContent : null;",
            json!([]),
        )
        .await;
    eprintln!("decision result: {result}");

    // The animation opens on the frame that decided it, labelled, blurred, with its boxes.
    browser
        .goto(&format!("{base}/console/items/{animation_id}"))
        .await;
    let decided_by = browser
        .until(
            "the deciding frame's label",
            "const p = document.querySelector('#decided-by');
             return p ? p.textContent : null;",
            json!([]),
        )
        .await;
    assert!(
        decided_by.as_str().unwrap().contains("Decided by frame 1"),
        "{decided_by}"
    );
    let shown = image_shown(&browser).await;
    assert_eq!(
        (shown["mode"].as_str(), shown["label"].as_str()),
        (Some("safe"), Some("frame 1")),
        "{shown}"
    );
    let src = shown["src"].as_str().unwrap();
    assert!(
        src.contains("frame=1") && src.contains("rendering=opaque"),
        "{src}"
    );
    assert!(
        shown["position"].as_str().unwrap().contains("2 of 2"),
        "{shown}"
    );
    assert!(
        shown["boxes"]
            .as_array()
            .unwrap()
            .contains(&json!("BUTTOCKS_EXPOSED")),
        "the deciding frame's boxes: {shown}"
    );
    assert!(
        shown["scores"].as_str().unwrap().contains("frame 1"),
        "{shown}"
    );
    let latest_view = |action: &'static str| {
        let server = &server;
        async move {
            let (_, rows) = server
                .get(ADMIN_TOKEN, &format!("/v1/review/audit?action={action}"))
                .await;
            rows["rows"][0]["detail"].clone()
        }
    };
    assert_eq!(latest_view("image.view").await["frame"], 1);
    screenshot(&browser, "console-item-frames.png").await;

    // Step back to the reference: the first frame, its own boxes, Previous disabled.
    browser.click("#view-prev").await;
    let shown = until_shown(&browser, "reference (first frame)").await;
    assert!(
        !shown["src"].as_str().unwrap().contains("frame="),
        "{shown}"
    );
    assert!(
        !shown["boxes"]
            .as_array()
            .unwrap()
            .contains(&json!("BUTTOCKS_EXPOSED")),
        "{shown}"
    );
    assert_eq!(shown["prevDisabled"], true);
    assert!(latest_view("image.view").await.get("frame").is_none());

    // A reveal covers the view it was asked for: the next view is blurred again until revealed.
    browser.click("#reveal").await;
    browser
        .until(
            "the revealed reference",
            "const img = document.querySelector('#artwork-image');
             return img.dataset.mode === 'reveal' && img.complete && img.naturalWidth > 0;",
            json!([]),
        )
        .await;
    browser.click("#view-next").await;
    let shown = until_shown(&browser, "frame 1").await;
    assert_eq!(shown["mode"], "safe", "{shown}");
    assert_eq!(shown["nextDisabled"], true);
    browser.click("#reveal").await;
    browser
        .until(
            "the revealed frame 1",
            "const img = document.querySelector('#artwork-image');
             return img.dataset.mode === 'reveal' && img.src.includes('frame=1')
                    && img.complete && img.naturalWidth > 0;",
            json!([]),
        )
        .await;
    let revealed = latest_view("image.reveal").await;
    assert_eq!(
        (&revealed["frame"], &revealed["rendering"]),
        (&json!(1), &json!("opaque")),
        "{revealed}"
    );

    // The dashboard draws its figures as SVG.
    browser.goto(&format!("{base}/console/dashboard")).await;
    browser
        .until(
            "the verdict chart",
            "const svg = document.querySelector('#chart-verdicts');
             return svg && svg.querySelectorAll('rect').length > 0;",
            json!([]),
        )
        .await;
    screenshot(&browser, "console-dashboard.png").await;
    browser.quit().await;

    // What the click did: decided, hashes in the bank, an audit row by rita.
    let (_, entries) = server.get(ADMIN_TOKEN, "/v1/banks/known-bad/entries").await;
    assert_eq!(entries.as_array().unwrap().len(), 2, "{entries}");
    let (_, confirms) = server
        .get(ADMIN_TOKEN, "/v1/review/audit?action=review.confirm")
        .await;
    let confirm = &confirms["rows"][0];
    assert_eq!(confirm["actor"], "rita");
    assert_eq!(confirm["detail"]["reason_code"], "adult_explicit");
    assert_eq!(confirm["detail"]["note"], "confirmed in the e2e test");
    assert_eq!(confirm["detail"]["review_id"], item_id.as_str());
    assert_eq!(confirm["subject"], screening_id.as_str());
    let (_, artwork) = server.get(SERVICE_TOKEN, "/v1/artworks/art-1").await;
    assert_eq!(artwork["status"], "quarantined");
    server.finish().await;
}
