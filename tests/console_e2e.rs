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
use webdriver::{browser_available, start_driver, Browser, Driver};

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

/// A ready server with one reviewer, rita.
async fn server_with_reviewer() -> Server {
    server_with_reviewer_configured(|_| {}).await
}

/// [`server_with_reviewer`] with its configuration changed by `configure`.
async fn server_with_reviewer_configured(
    configure: impl FnOnce(&mut coverguard::config::ServiceConfig),
) -> Server {
    let server = start(configure).await;
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
    server
}

/// A browser for the console of `server`, and the base address to open it at:
/// `localhost`, not 127.0.0.1, since browsers keep Secure cookies for http://localhost only.
async fn console_browser<'d>(
    driver: &'d Driver,
    profile: &std::path::Path,
    server: &Server,
) -> (Browser<'d>, String) {
    let browser = driver.browser(profile, &["--window-size=1280,1100"]).await;
    (browser, server.base.replace("127.0.0.1", "localhost"))
}

/// [`console_browser`] with rita logged in.
async fn logged_in<'d>(
    driver: &'d Driver,
    profile: &std::path::Path,
    server: &Server,
) -> (Browser<'d>, String) {
    let (browser, base) = console_browser(driver, profile, server).await;
    browser.goto(&format!("{base}/console/login")).await;
    log_in(&browser).await;
    (browser, base)
}

/// Logs rita in on the login form the browser shows.
async fn log_in(browser: &Browser<'_>) {
    browser.type_into("#username", "rita").await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("#login-submit").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reviewer_confirms_an_item_in_the_browser() {
    if !browser_available() {
        return;
    }
    let server = server_with_reviewer().await;
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
    // An allow list that knows the animation's file: a match that clears nothing bad, and must
    // not look like a known-bad hit.
    let (status, body) = server
        .send_json(
            ADMIN_TOKEN,
            Method::POST,
            "/v1/banks",
            &json!({"name": "cleared", "allow_list": true, "signal_types": ["md5"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = server
        .send_bytes(
            ADMIN_TOKEN,
            "/v1/banks/cleared/entries",
            "image/gif",
            animation::chart_animation(),
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
    let (browser, base) = console_browser(&driver, profile.path(), &server).await;

    // Not logged in: the console sends us to the login page.
    browser.goto(&format!("{base}/console")).await;
    browser.find("#login-form").await;
    log_in(&browser).await;

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
    let mut checks = Checks::default();
    queue_reads_as_a_reviewer_reads_it(&browser, &mut checks).await;
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
    item_reads_as_a_reviewer_reads_it(&browser, &mut checks).await;
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
    // The colour chart is a colour-only false positive: a reveal must show its colour.
    let colourful = browser.script(COLOURFUL, json!([])).await;
    checks.that(
        colourful == true,
        format!("the revealed image is in colour (saturated pixels: {colourful})"),
    );
    checks.finish();

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
    // The screening's PDQ and MD5, and the PDQ of each region (a confirm banks those too).
    let (signals, entries) = server.bank_signals(ADMIN_TOKEN, "known-bad").await;
    let whole = signals.iter().filter(|s| !s.starts_with("pdq_")).count();
    assert_eq!(whole, 2, "{entries}");
    assert!(signals.iter().any(|s| s == "pdq_top75"), "{entries}");
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

/// Failed expectations, gathered so one run names every one of them.
#[derive(Default)]
struct Checks(Vec<String>);

impl Checks {
    fn that(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.0.push(what.into());
        }
    }

    fn finish(self) {
        assert!(self.0.is_empty(), "failed:\n- {}", self.0.join("\n- "));
    }
}

/// Whether the image shown has colour: true, or the number of saturated pixels.
const COLOURFUL: &str = "const img = document.querySelector('#artwork-image');
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    let saturated = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2]) > 32) saturated++;
    }
    return saturated * 20 > d.length / 4 ? true : saturated;";

/// The queue as a reviewer reads it: words for priorities, whole reasons, allow lists told
/// apart from known-bad banks, one naming for states, and no filter that only admins may use.
async fn queue_reads_as_a_reviewer_reads_it(browser: &Browser<'_>, checks: &mut Checks) {
    let queue = browser
        .script(
            "const rows = [...document.querySelectorAll('tr.queue-row')];
             const row = (a) => rows.find(r => r.textContent.includes(a));
             const reason = row('art-0').querySelector('.col-label .sub');
             return {
               priorities: rows.map(r => [r.cells[0].textContent.trim(), r.cells[0].title || '']),
               reason: reason ? reason.textContent : null,
               chips: [...row('art-3').querySelectorAll('.chip')].map(c => [c.textContent, c.className]),
               summary: document.querySelector('#queue-summary').textContent,
               states: [...document.querySelectorAll('#f-state option')].map(o => [o.value, o.textContent]),
               rowStates: rows.map(r => r.querySelector('.state').textContent),
             };",
            json!([]),
        )
        .await;
    for p in queue["priorities"].as_array().unwrap() {
        let (text, title) = (p[0].as_str().unwrap(), p[1].as_str().unwrap());
        checks.that(
            ["urgent", "high", "normal", "low"].contains(&text),
            format!("a priority reads as a word, not {text:?}"),
        );
        checks.that(
            title.chars().any(|c| c.is_ascii_digit()),
            format!("the priority number is its tooltip: {title:?}"),
        );
    }
    let reason = queue["reason"].as_str().unwrap_or_default();
    checks.that(
        reason.contains("bank watch") && reason.contains("exact md5") && !reason.contains('…'),
        format!("the bank reason is whole (bank, how it matched): {reason:?}"),
    );
    let chips = queue["chips"].as_array().unwrap();
    let cleared = chips.iter().find(|c| c[0] == "cleared");
    checks.that(
        cleared.is_some_and(|c| {
            let class = c[1].as_str().unwrap();
            class.contains("chip-allow") && !class.contains("chip-bank")
        }),
        format!("the allow-list match has its own badge: {chips:?}"),
    );
    let states = queue["states"].as_array().unwrap();
    checks.that(
        !states.iter().any(|s| s[0] == "escalated"),
        format!("a reviewer is not offered the escalated filter: {states:?}"),
    );
    let words = ["pending", "claimed", "decided"];
    for s in states {
        let label = s[1].as_str().unwrap();
        checks.that(
            label.split(" or ").all(|w| words.contains(&w)),
            format!("the state filter names states as rows do: {label:?}"),
        );
    }
    let summary = queue["summary"].as_str().unwrap();
    checks.that(
        !summary.contains("open"),
        format!("the summary names states as rows do: {summary:?}"),
    );
    for s in queue["rowStates"].as_array().unwrap() {
        checks.that(
            words.contains(&s.as_str().unwrap()),
            format!("a row state is one of {words:?}: {s}"),
        );
    }
}

/// The item page is titled with the artwork and owner, and nothing is decided for the
/// reviewer: no decision is preselected and the form cannot be sent without one.
async fn item_reads_as_a_reviewer_reads_it(browser: &Browser<'_>, checks: &mut Checks) {
    let item = browser
        .until(
            "the item page",
            "const h1 = document.querySelector('h1');
             const decision = document.querySelector('#decision');
             if (!h1 || !decision) return null;
             return {
               title: document.title,
               heading: h1.textContent,
               decision: decision.value,
               submitDisabled: document.querySelector('#decide-submit').disabled,
               path: location.pathname,
             };",
            json!([]),
        )
        .await;
    let heading = item["heading"].as_str().unwrap();
    let title = item["title"].as_str().unwrap();
    let review_id = item["path"].as_str().unwrap().rsplit('/').next().unwrap();
    checks.that(
        heading.contains("art-1") && heading.contains("owner-1") && !heading.contains(review_id),
        format!("the item is headed with its artwork and owner: {heading:?}"),
    );
    checks.that(
        title.contains("art-1") && !title.contains(review_id),
        format!("the page title names the artwork: {title:?}"),
    );
    checks.that(
        item["decision"] == "",
        format!("no decision preselected: {}", item["decision"]),
    );
    checks.that(
        item["submitDisabled"] == true,
        "the submit button waits for a decision",
    );
}

async fn screen_art(server: &Server, artwork: &str, owner: &str) -> String {
    let (status, body) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/png",
            photo("color.png"),
            &format!("artwork_id={artwork}&owner_id={owner}"),
        )
        .await;
    assert_eq!(
        (status, body["verdict"].as_str()),
        (200, Some("review")),
        "{body}"
    );
    body["screening_id"].as_str().unwrap().to_string()
}

/// Chooses a decision and reason in the item's form and sends it.
async fn decide(browser: &Browser<'_>, decision: &str, reason: &str) {
    browser
        .click(&format!("#decision option[value='{decision}']"))
        .await;
    browser
        .click(&format!("#reason-code option[value='{reason}']"))
        .await;
    browser.click("#decide-submit").await;
}

/// Waits for the item page of `artwork` and returns its path.
async fn item_page(browser: &Browser<'_>, artwork: &str) -> String {
    browser
        .until(
            &format!("the item page of {artwork}"),
            "const h1 = document.querySelector('h1');
             return h1 && h1.textContent.includes(arguments[0]) && document.querySelector('#decision-panel')
               ? location.pathname : null;",
            json!([artwork]),
        )
        .await
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_queue_pages_lists_each_artwork_once_and_items_say_what_changed() {
    if !browser_available() {
        return;
    }
    let server = server_with_reviewer().await;
    // Five artworks to review; art-a screened twice (a rescan), art-t's owner about to be
    // taken down.
    let first_a = screen_art(&server, "art-a", "owner-1").await;
    for artwork in ["art-b", "art-c", "art-d"] {
        screen_art(&server, artwork, "owner-1").await;
    }
    let second_a = screen_art(&server, "art-a", "owner-1").await;
    screen_art(&server, "art-t", "owner-t").await;

    let driver = start_driver().await;
    let profile = tempfile::tempdir().unwrap();
    let (browser, base) = console_browser(&driver, profile.path(), &server).await;
    browser
        .goto(&format!("{base}/console/login?next=%2Fconsole%3Flimit%3D2"))
        .await;
    log_in(&browser).await;

    // Two rows a page, each artwork once, over three pages.
    const PAGE: &str = "const rows = [...document.querySelectorAll('tr.queue-row')];
        if (!rows.length || rows[0].dataset.reviewId === arguments[0]) return null;
        return {
          first: rows[0].dataset.reviewId,
          rows: rows.map(r => [r.dataset.artworkId, r.dataset.reviewId]),
          next: document.querySelector('#queue-next') !== null,
        };";
    let mut listed: Vec<(String, String)> = Vec::new();
    let mut previous = String::new();
    let mut pages = 0;
    loop {
        let page = browser.until("a queue page", PAGE, json!([previous])).await;
        pages += 1;
        let rows = page["rows"].as_array().unwrap();
        assert!(rows.len() <= 2, "{page}");
        listed.extend(rows.iter().map(|r| {
            (
                r[0].as_str().unwrap_or_default().to_string(),
                r[1].as_str().unwrap().to_string(),
            )
        }));
        if page["next"] != true {
            break;
        }
        assert!(pages < 5, "the queue pages end");
        previous = page["first"].as_str().unwrap().to_string();
        browser.click("#queue-next").await;
    }
    let mut artworks: Vec<&str> = listed.iter().map(|(a, _)| a.as_str()).collect();
    artworks.sort();
    assert_eq!(
        (pages, artworks),
        (3, vec!["art-a", "art-b", "art-c", "art-d", "art-t"]),
        "{listed:?}"
    );
    let item_of = |artwork: &str| {
        listed
            .iter()
            .find(|(a, _)| a == artwork)
            .map(|(_, id)| id.clone())
            .unwrap()
    };

    // art-a's row is its latest item; its earlier item is reachable from it, and says it is
    // superseded, linking back.
    browser
        .goto(&format!("{base}/console/items/{}", item_of("art-a")))
        .await;
    item_page(&browser, "art-a").await;
    let earlier = browser
        .until(
            "the artwork's earlier items",
            "const rows = [...document.querySelectorAll('#artwork-items tbody tr')];
             return rows.length ? rows.map(r => [r.dataset.screeningId, !!r.querySelector('a')]) : null;",
            json!([]),
        )
        .await;
    assert_eq!(
        earlier,
        json!([[second_a, false], [first_a, true]]),
        "the current item first, the earlier one linked"
    );
    browser.click("#artwork-items a").await;
    browser.find("#superseded-notice").await;
    screenshot(&browser, "console-item-superseded.png").await;
    browser.click("#current-item").await;
    let current = item_page(&browser, "art-a").await;
    assert!(current.ends_with(&item_of("art-a")), "{current}");

    // Superseded while the reviewer decides: the 409 shows why and offers the current item.
    let b = item_of("art-b");
    browser.goto(&format!("{base}/console/items/{b}")).await;
    item_page(&browser, "art-b").await;
    let second_b = screen_art(&server, "art-b", "owner-1").await;
    decide(&browser, "release", "not_explicit").await;
    let notice = browser
        .until(
            "the superseded notice",
            "const n = document.querySelector('#superseded-notice');
             return n && document.querySelector('#current-item') ? n.textContent : null;",
            json!([]),
        )
        .await;
    assert!(notice.as_str().unwrap().contains("Superseded"), "{notice}");
    let kind = browser
        .script(
            "return document.querySelector('#error').dataset.kind",
            json!([]),
        )
        .await;
    assert_eq!(kind, "superseded");
    assert!(
        browser
            .script(
                "return document.querySelector('#decision-form') === null",
                json!([])
            )
            .await
            == true,
        "a superseded item offers no decision"
    );
    browser.click("#current-item").await;
    item_page(&browser, "art-b").await;
    let (_, artwork) = server.get(SERVICE_TOKEN, "/v1/artworks/art-b").await;
    assert_eq!(artwork["screening_id"], second_b.as_str(), "{artwork}");
    let shown = browser
        .script(
            "return [document.querySelector('#superseded-notice') === null,
                     document.querySelector('#decision-form') !== null]",
            json!([]),
        )
        .await;
    assert_eq!(
        shown,
        json!([true, true]),
        "the current item can be decided"
    );

    // The owner is taken down while the reviewer decides: the 409 says so, and release is off.
    browser
        .goto(&format!("{base}/console/items/{}", item_of("art-t")))
        .await;
    item_page(&browser, "art-t").await;
    let (status, body) = server
        .send_json(
            ADMIN_TOKEN,
            Method::POST,
            "/v1/accounts/owner-t/takedown",
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    decide(&browser, "release", "not_explicit").await;
    let notice = browser
        .until(
            "the owner-taken-down notice",
            "const n = document.querySelector('#taken-down-notice');
             const release = document.querySelector(\"#decision option[value='release']\");
             return n && release && release.disabled ? n.textContent : null;",
            json!([]),
        )
        .await;
    assert!(
        notice.as_str().unwrap().contains("Owner taken down"),
        "{notice}"
    );
    let kind = browser
        .script(
            "return document.querySelector('#error').dataset.kind",
            json!([]),
        )
        .await;
    assert_eq!(kind, "owner_taken_down");
    screenshot(&browser, "console-item-taken-down.png").await;

    // A released false positive says what happened: no report, the webhooks told to publish.
    browser
        .goto(&format!("{base}/console/items/{}", item_of("art-c")))
        .await;
    item_page(&browser, "art-c").await;
    decide(&browser, "release", "false_positive_model").await;
    let result = browser
        .until(
            "the release result",
            "const r = document.querySelector('#decision-result');
             return r && r.textContent.includes('released') ? r.textContent : null;",
            json!([]),
        )
        .await;
    let result = result.as_str().unwrap();
    assert!(
        result.contains("no report filed") && !result.contains("1 report"),
        "{result}"
    );
    browser.quit().await;
    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_title_is_shown_with_what_the_rules_found_marked() {
    if !browser_available() {
        return;
    }
    let server = server_with_reviewer().await;
    // Held only for their titles: three empty playlists of one owner, so the last
    // completes the owner pattern. The first two have no cover (their words are screened
    // alone); the last is a clean photo. The ghost before the span is two UTF-16 units
    // but one character: the marks must still land on the words.
    let title = "👻 hey add me on snap!! (x) and ur number? 💕";
    for (artwork, words) in [("titled-a", "whats ur snap"), ("titled-b", "send pics")] {
        let (status, body) = server
            .send_json(
                SERVICE_TOKEN,
                reqwest::Method::POST,
                "/v1/screen",
                &json!({"artwork_id": artwork, "owner_id": "owner-1",
                        "context": {"title": words, "playlist_track_count": 0}}),
            )
            .await;
        assert_eq!(
            (status, body["verdict"].as_str()),
            (200, Some("review")),
            "{body}"
        );
    }
    for (artwork, title) in [("titled-1", title)] {
        let (status, body) = server
            .screen_bytes(
                Some(SERVICE_TOKEN),
                "image/png",
                photo("astronaut.png"),
                &format!(
                    "artwork_id={artwork}&owner_id=owner-1&playlist_track_count=0&title={}",
                    url::form_urlencoded::byte_serialize(title.as_bytes()).collect::<String>()
                ),
            )
            .await;
        assert_eq!(
            (status, body["verdict"].as_str()),
            (200, Some("review")),
            "{body}"
        );
    }

    let driver = start_driver().await;
    let profile = tempfile::tempdir().unwrap();
    let (browser, base) = logged_in(&driver, profile.path(), &server).await;
    let item = browser
        .until(
            "the queue row of titled-1",
            "const row = document.querySelector('tr.queue-row[data-artwork-id=\"titled-1\"]');
             return row ? row.dataset.reviewId : null;",
            json!([]),
        )
        .await;
    browser
        .goto(&format!("{base}/console/items/{}", item.as_str().unwrap()))
        .await;
    item_page(&browser, "titled-1").await;
    let shown = browser
        .until(
            "the marked title",
            "const marks = [...document.querySelectorAll('#text mark.text-signal')];
             if (!marks.length) return null;
             return {
               title: document.querySelector('#text .text-source').textContent,
               marks: marks.map(m => [m.dataset.kind, m.textContent]),
               listed: document.querySelectorAll('#text-signals li').length,
               pattern: (document.querySelector('#owner-pattern') || {}).textContent || null,
             };",
            json!([]),
        )
        .await;
    screenshot(&browser, "console-text.png").await;
    assert_eq!(shown["title"], title, "{shown}");
    assert_eq!(
        shown["marks"],
        // The ghost is Snapchat's: it opens the invitation.
        json!([
            ["contact_handle", "👻 hey add me on snap"],
            ["contact_handle", "ur number?"]
        ]),
        "{shown}"
    );
    assert_eq!(shown["listed"], 2, "{shown}");
    assert!(
        shown["pattern"]
            .as_str()
            .is_some_and(|p| p.ends_with("titled-a → titled-b → titled-1")),
        "{shown}"
    );

    // Words screened alone: no image to show, and a confirm asks for no bank.
    browser.goto(&format!("{base}/console")).await;
    let words_item = browser
        .until(
            "the queue row of titled-b",
            "const row = document.querySelector('tr.queue-row[data-artwork-id=\"titled-b\"]');
             return row ? row.dataset.reviewId : null;",
            json!([]),
        )
        .await;
    browser
        .goto(&format!(
            "{base}/console/items/{}",
            words_item.as_str().unwrap()
        ))
        .await;
    item_page(&browser, "titled-b").await;
    let words = browser
        .until(
            "the words-only item",
            "const note = document.querySelector('#words-only');
             const title = document.querySelector('#text .text-source');
             return note && title ? {note: note.textContent, title: title.textContent,
                                     image: document.querySelector('.artwork-panel img') !== null} : null;",
            json!([]),
        )
        .await;
    assert_eq!(words["title"], "send pics", "{words}");
    assert_eq!(words["image"], false, "{words}");
    browser.click("#decision option[value='confirm']").await;
    let bank_hidden = browser
        .script(
            "return document.querySelector('.field-bank').hidden;",
            json!([]),
        )
        .await;
    assert_eq!(bank_hidden, true, "a words-only confirm asks for no bank");
    decide(&browser, "confirm", "grooming_or_contact_request").await;
    browser
        .until(
            "the words-only decision result",
            "const r = document.querySelector('#decision-result');
             return r && r.textContent.includes('confirm') ? r.textContent : null;",
            json!([]),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn words_read_in_the_artwork_are_shown_line_by_line_with_what_the_rules_found_marked() {
    if !browser_available() {
        return;
    }
    let server = server_with_reviewer_configured(|c| c.ocr.enabled = true).await;
    let bytes = std::fs::read(common::fixtures().join("ocr/text-04.png")).unwrap();
    let (status, body) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/png",
            bytes,
            "artwork_id=read-1&owner_id=owner-1",
        )
        .await;
    assert_eq!(
        (status, body["verdict"].as_str()),
        (200, Some("review")),
        "{body}"
    );

    let driver = start_driver().await;
    let profile = tempfile::tempdir().unwrap();
    let (browser, base) = logged_in(&driver, profile.path(), &server).await;
    let item = browser
        .until(
            "the queue row of read-1",
            "const row = document.querySelector('tr.queue-row[data-artwork-id=\"read-1\"]');
             return row ? row.dataset.reviewId : null;",
            json!([]),
        )
        .await;
    browser
        .goto(&format!("{base}/console/items/{}", item.as_str().unwrap()))
        .await;
    item_page(&browser, "read-1").await;
    let shown = browser
        .until(
            "the words read in the artwork",
            "const dd = document.querySelector('#text dd.ocr-lines');
             if (!dd) return null;
             const layer = document.querySelector('#boxes svg.ocr-boxes');
             if (!layer) return null;
             return {
               text: dd.innerText,
               marks: [...dd.querySelectorAll('mark.text-signal')].map(m => [m.dataset.kind, m.textContent]),
               view_box: layer.getAttribute('viewBox'),
               boxes: [...layer.querySelectorAll('polygon.ocr-box')].map(p => [p.dataset.text,
                 [...p.points].map(q => [q.x, q.y])]),
             };",
            json!([]),
        )
        .await;
    screenshot(&browser, "console-ocr.png").await;
    let lines: Vec<&str> = shown["text"].as_str().unwrap().lines().collect();
    assert!(
        lines.contains(&"kik me: jenny_14") && lines.contains(&"im 12"),
        "{shown}"
    );
    let kinds: Vec<&str> = shown["marks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m[0].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"contact_handle") && kinds.contains(&"age"),
        "{shown}"
    );
    // Each line is outlined over the image, in its pixels (640 x 360).
    assert_eq!(shown["view_box"], "0 0 640 360", "{shown}");
    let boxes = shown["boxes"].as_array().unwrap();
    assert_eq!(boxes.len(), lines.len(), "{shown}");
    let kik = boxes
        .iter()
        .find(|b| b[0] == "kik me: jenny_14")
        .unwrap_or_else(|| panic!("{shown}"));
    for corner in kik[1].as_array().unwrap() {
        let (x, y) = (corner[0].as_f64().unwrap(), corner[1].as_f64().unwrap());
        assert!(
            (0.0..=640.0).contains(&x) && (0.0..=360.0).contains(&y),
            "{shown}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reports_from_people_are_counted_filtered_and_shown_on_the_item() {
    if !browser_available() {
        return;
    }
    let server = server_with_reviewer().await;
    // A model-only review, and an owner's allowed art that a guardian then reports.
    screen_art(&server, "chart", "owner-m").await;
    let (status, body) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/png",
            photo("astronaut.png"),
            "artwork_id=reported-1&owner_id=owner-r",
        )
        .await;
    assert_eq!(
        (status, body["verdict"].as_str()),
        (200, Some("allow")),
        "{body}"
    );
    for (reporter, kind, category, text) in [
        (
            "parent-1",
            "guardian",
            "minor_sexual",
            "my daughter, please take it down",
        ),
        ("listener-2", "user", "other", "<b>not markup</b>"),
    ] {
        let (status, body) = server
            .send_json(
                SERVICE_TOKEN,
                Method::POST,
                "/v1/reports",
                &json!({"reporter_kind": kind, "reporter_ref": reporter,
                        "category": category, "artwork_id": "reported-1", "text": text}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    let driver = start_driver().await;
    let profile = tempfile::tempdir().unwrap();
    let (browser, _) = logged_in(&driver, profile.path(), &server).await;
    let rows =
        "return [...document.querySelectorAll('tr.queue-row')].map(r => [r.dataset.artworkId,
                  (r.querySelector('.badge-reported') || {}).textContent || null]);";
    let queue = browser
        .until(
            "the queue with the reported row",
            &format!(
                "const rows = (() => {{ {rows} }})(); return rows.length === 2 ? rows : null;"
            ),
            json!([]),
        )
        .await;
    assert_eq!(
        queue,
        json!([["reported-1", "reported ×2"], ["chart", null]]),
        "the guardian's report comes first"
    );

    // The filter keeps only reported items, and says so in the address.
    browser.click("#f-reported").await;
    browser.click("#queue-filters button[type=submit]").await;
    let filtered = browser
        .until(
            "the reported filter",
            &format!(
                "if (!location.search.includes('reported=true')) return null;
                 const rows = (() => {{ {rows} }})(); return rows.length === 1 ? rows : null;"
            ),
            json!([]),
        )
        .await;
    assert_eq!(filtered, json!([["reported-1", "reported ×2"]]));
    screenshot(&browser, "console-queue-reported.png").await;

    browser.click("tr.queue-row a.open-item").await;
    item_page(&browser, "reported-1").await;
    let shown = browser
        .until(
            "the reports panel",
            "const items = [...document.querySelectorAll('#user-reports .user-report')];
             if (items.length !== 2) return null;
             return {
               heading: document.querySelector('#user-reports-h').textContent,
               who: items.map(i => i.querySelector('strong').textContent),
               category: items.map(i => i.querySelector('.report-category').textContent),
               text: items.map(i => (i.querySelector('.report-text') || {}).textContent || null),
               markup: document.querySelector('#user-reports b') !== null,
               noEvidence: document.querySelector('#no-evidence') !== null,
             };",
            json!([]),
        )
        .await;
    screenshot(&browser, "console-item-reported.png").await;
    assert_eq!(shown["heading"], "Reported by people (2)", "{shown}");
    assert_eq!(
        shown["who"],
        json!(["a parent or guardian", "a user"]),
        "{shown}"
    );
    assert_eq!(
        shown["category"],
        json!(["sexual content involving a minor", "other"]),
        "{shown}"
    );
    assert_eq!(
        shown["text"],
        json!(["my daughter, please take it down", "<b>not markup</b>"]),
        "{shown}"
    );
    assert_eq!(shown["markup"], false, "a report's text is shown as text");
    assert_eq!(
        shown["noEvidence"], true,
        "allowed art kept no bytes: {shown}"
    );
    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_appeal_is_read_by_its_reviewer_and_reversed_by_another() {
    if !browser_available() {
        return;
    }
    let server = server_with_reviewer().await;
    common::console::add_user(&server, "sam", "reviewer").await;
    server
        .create_bank(json!({"name": "known-bad", "severity": 5}))
        .await;
    // rita confirms the chart; its owner appeals.
    let screening = screen_art(&server, "appealed", "owner-a").await;
    let rita = common::console::login(&server, "rita").await;
    let (_, queue) = rita.get("/v1/review/queue").await;
    let item = queue["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["screening_id"] == screening.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = rita
        .post(
            &format!("/v1/review/items/{item}/decision"),
            &json!({"decision": "confirm", "reason_code": "adult_explicit", "bank": "known-bad"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, appeal) = server
        .send_json(
            SERVICE_TOKEN,
            Method::POST,
            "/v1/appeals",
            &json!({"owner_id": "owner-a", "artwork_id": "appealed",
                    "text": "It is a <i>test chart</i>, not a person."}),
        )
        .await;
    assert_eq!(status, 201, "{appeal}");
    let appeal_id = appeal["id"].as_str().unwrap().to_string();

    let driver = start_driver().await;
    let profile = tempfile::tempdir().unwrap();
    let (browser, base) = logged_in(&driver, profile.path(), &server).await;
    browser
        .until(
            "the queue after login",
            "return document.querySelector('#nav-appeals') ? true : null;",
            json!([]),
        )
        .await;
    browser.click("#nav-appeals").await;
    let row = browser
        .until(
            "the appeal row",
            "const row = document.querySelector('tr.appeal-row');
             return row ? [row.dataset.appealId, row.cells[0].textContent] : null;",
            json!([]),
        )
        .await;
    assert_eq!(
        row,
        json!([appeal_id, "a reviewer's confirmby rita"]),
        "{row}"
    );
    browser.click("tr.appeal-row a.open-appeal").await;
    // The reviewer who confirmed reads the appeal and its reasons, and is offered no form.
    let own = browser
        .until(
            "rita's own decision notice",
            "const n = document.querySelector('#own-decision');
             return n ? {
               notice: n.textContent,
               form: document.querySelector('#appeal-form') !== null,
               text: document.querySelector('#appeal-text .report-text').textContent,
               markup: document.querySelector('#appeal-text i') !== null,
               reasons: document.querySelector('#item-meta').textContent.includes('BUTTOCKS_EXPOSED'),
               scores: document.querySelectorAll('#scores tr[data-label]').length,
             } : null;",
            json!([]),
        )
        .await;
    assert_eq!(own["form"], false, "{own}");
    assert_eq!(own["text"], "It is a <i>test chart</i>, not a person.");
    assert_eq!(own["markup"], false, "the owner's words are shown as text");
    assert_eq!(own["reasons"], true, "{own}");
    assert!(own["scores"].as_u64() > Some(0), "{own}");

    // Another reviewer reverses it.
    browser.click("#logout").await;
    browser
        .until(
            "the login form",
            "return document.querySelector('#username') ? true : null;",
            json!([]),
        )
        .await;
    browser.type_into("#username", "sam").await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("#login-submit").await;
    browser
        .until(
            "sam's queue",
            "return document.querySelector('#whoami') &&
               document.querySelector('#whoami').textContent.startsWith('sam') ? true : null;",
            json!([]),
        )
        .await;
    browser
        .goto(&format!("{base}/console/appeals/{appeal_id}"))
        .await;
    browser
        .until(
            "the appeal form",
            "return document.querySelector('#appeal-form') ? true : null;",
            json!([]),
        )
        .await;
    browser
        .click("#appeal-outcome option[value='reversed']")
        .await;
    browser
        .click("#appeal-reason option[value='not_explicit']")
        .await;
    browser.click("#appeal-submit").await;
    let result = browser
        .until(
            "the appeal's result",
            "const r = document.querySelector('#appeal-result');
             return r ? r.textContent : null;",
            json!([]),
        )
        .await;
    screenshot(&browser, "console-appeal.png").await;
    let result = result.as_str().unwrap();
    assert!(
        result.starts_with("reversed: the art is released (not_explicit), by sam")
            && result.contains("released"),
        "{result}"
    );
    let (status, artwork) = server.get(SERVICE_TOKEN, "/v1/artworks/appealed").await;
    assert_eq!(
        (status, artwork["status"].as_str()),
        (200, Some("released")),
        "{artwork}"
    );

    // The dashboard counts the appeal and its reversal.
    browser.goto(&format!("{base}/console/dashboard")).await;
    let appeals = browser
        .until(
            "the transparency counts",
            "const rows = [...document.querySelectorAll('#t-appeals tr[data-key]')];
             return rows.length ? rows.map(r => [r.dataset.key, r.cells[1].textContent]) : null;",
            json!([]),
        )
        .await;
    assert_eq!(
        appeals,
        json!([
            ["filed", "1"],
            ["decided", "1"],
            ["upheld", "0"],
            ["reversed", "1"],
            ["reversal rate", "100%"]
        ])
    );
    screenshot(&browser, "console-dashboard-transparency.png").await;
    server.finish().await;
}
