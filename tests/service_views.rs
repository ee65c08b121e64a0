//! The service screens every frame a viewer is shown: a bank image in a later frame of an
//! animation is blocked over HTTP, found again by retroactive matching from the stored
//! view hashes, and a verdict cached before views existed is never reused.

mod common;

use std::io::Cursor;

use common::server::*;
use coverguard::hash::pdq::pdq_from_rgb8;
use image::codecs::gif::GifEncoder;
use image::{Delay, Frame, RgbaImage};
use reqwest::Method;
use serde_json::{json, Value};

const SIDE: u32 = 256;

/// A scikit-image photo as an opaque RGBA canvas of `SIDE` px.
fn picture(name: &str) -> RgbaImage {
    picture_sized(name, SIDE, SIDE)
}

fn picture_sized(name: &str, width: u32, height: u32) -> RgbaImage {
    let image = image::load_from_memory(&photo(name)).unwrap();
    if (image.width(), image.height()) == (width, height) {
        return image.to_rgba8();
    }
    image
        .resize_exact(width, height, image::imageops::FilterType::Triangle)
        .to_rgba8()
}

/// A GIF showing `frames` in order; the first for 10 ms, the others for a minute each.
fn animated_gif(frames: &[&RgbaImage]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(Cursor::new(&mut out), 10);
        encoder
            .encode_frames(frames.iter().enumerate().map(|(i, f)| {
                let ms = if i == 0 { 10 } else { 60_000 };
                Frame::from_parts((*f).clone(), 0, 0, Delay::from_numer_denom_ms(ms, 1))
            }))
            .unwrap();
    }
    out
}

/// An APNG (lossless, unlike GIF's palette) showing `frames` in order, timed as
/// [`animated_gif`].
fn animated_png(frames: &[&RgbaImage]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let (width, height) = frames[0].dimensions();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_animated(frames.len() as u32, 0).unwrap();
        let mut writer = encoder.write_header().unwrap();
        for (i, frame) in frames.iter().enumerate() {
            let (numerator, denominator) = if i == 0 { (1, 100) } else { (60, 1) };
            writer.set_frame_delay(numerator, denominator).unwrap();
            writer.write_image_data(frame.as_raw()).unwrap();
        }
        writer.finish().unwrap();
    }
    out
}

/// The PDQ a bank of the original photo would hold.
fn pdq_of(picture: &RgbaImage) -> String {
    let rgb: Vec<u8> = picture
        .as_raw()
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    pdq_from_rgb8(SIDE, SIDE, &rgb).unwrap().hash.to_hex()
}

async fn create_bank(server: &Server, name: &str) {
    let (status, body) = server
        .send_json(
            ADMIN_TOKEN,
            Method::POST,
            "/v1/banks",
            &json!({"name": name, "signal_types": ["pdq", "md5"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

async fn add_pdq(server: &Server, bank: &str, pdq: &str, id: &str) {
    let (status, body) = server
        .send_json(
            ADMIN_TOKEN,
            Method::POST,
            &format!("/v1/banks/{bank}/entries"),
            &json!({"entries": [{"signal": "pdq", "hash": pdq, "external_id": id}]}),
        )
        .await;
    assert!(status == 200 || status == 201, "{status} {body}");
}

fn frames_of(matches: &Value) -> Vec<Value> {
    matches
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["frame"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bank_image_in_a_later_frame_is_blocked_and_found_again_from_stored_views() {
    let server = start(|_| {}).await;
    server.wait_ready().await;
    let (harmless, hidden) = (picture("astronaut.png"), picture("camera.png"));
    let hidden_pdq = pdq_of(&hidden);

    // Eight frames, the bank image last, screened before any bank holds it.
    let mut frames = vec![&harmless; 7];
    frames.push(&hidden);
    let (status, earlier) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/gif",
            animated_gif(&frames),
            "artwork_id=anim-old&owner_id=o2",
        )
        .await;
    assert_eq!(status, 200, "{earlier}");
    assert_eq!(earlier["verdict"], "allow", "{earlier}");
    // Its repeats of the first frame are skipped: one view, frame 7.
    let views: Vec<Value> = earlier["views"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["frame"].clone())
        .collect();
    assert_eq!(views, [json!(7)], "{earlier}");

    create_bank(&server, "known-bad").await;
    add_pdq(&server, "known-bad", &hidden_pdq, "case-1").await;

    // First frame harmless for 10 ms, then the bank image for a minute.
    let (status, blocked) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/gif",
            animated_gif(&[&harmless, &hidden]),
            "artwork_id=anim-new&owner_id=o1",
        )
        .await;
    assert_eq!(status, 200, "{blocked}");
    assert_eq!(blocked["verdict"], "block", "{blocked}");
    assert_eq!(blocked["quarantined"], true);
    assert!(blocked["report_id"].is_string(), "a block is reported");
    assert_eq!(frames_of(&blocked["matches"]), [json!(1)], "{blocked}");
    assert_eq!(blocked["matches"][0]["rendering"], "opaque");
    assert_eq!(
        blocked["decided_by"],
        json!({"frame": 1, "rendering": "opaque"})
    );
    // The reference decoding is the harmless first frame, as the references see it.
    assert_ne!(blocked["pdq"]["hash"], blocked["views"][0]["pdq"]["hash"]);
    let (_, artwork) = server.get(SERVICE_TOKEN, "/v1/artworks/anim-new").await;
    assert_eq!(artwork["status"], "quarantined");

    // The earlier animation is found from its stored frame-7 hash, without its bytes.
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
    assert_eq!(hits, ["anim-old"], "{retro}");
    // An upload cannot be fetched again: taken down from the stored hashes alone.
    assert_eq!(retro["hits"][0]["evidence"], false);
    let (_, artwork) = server.get(SERVICE_TOKEN, "/v1/artworks/anim-old").await;
    assert_eq!(
        (artwork["status"].as_str(), artwork["verdict"].as_str()),
        (Some("quarantined"), Some("block"))
    );
    let screening = artwork["screening_id"].as_str().unwrap();
    let (_, record) = server
        .get(SERVICE_TOKEN, &format!("/v1/screenings/{screening}"))
        .await;
    assert_eq!(frames_of(&record["matches"]), [json!(7)], "{record}");
    assert_eq!(record["decided_by"]["frame"], 7, "{record}");
    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_verdict_cache_keeps_views_and_never_reuses_an_older_analysis() {
    let server = start(|_| {}).await;
    server.wait_ready().await;
    // The colour chart (a model review) shown after a harmless first frame.
    let chart = picture_sized("color.png", 371, 370);
    let apng = animated_png(&[&picture_sized("astronaut.png", 371, 370), &chart]);
    let context = |id: &str| format!("artwork_id={id}&owner_id=o1");
    let inferred = "coverguard_inference_inputs_total";
    let cached = "coverguard_verdict_cache_hits_total";

    let (status, first) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/png",
            apng.clone(),
            &context("c1"),
        )
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["verdict"], "review", "{first}");
    assert_eq!(first["decided_by"]["frame"], 1, "{first}");
    // The reference decoding and the one view.
    assert_eq!(server.metric(inferred).await, 2.0);

    let (_, again) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/png",
            apng.clone(),
            &context("c2"),
        )
        .await;
    assert_eq!(
        server.metric(cached).await,
        1.0,
        "same bytes: from the cache"
    );
    assert_eq!(server.metric(inferred).await, 2.0);
    for key in ["verdict", "views", "decided_by", "detections", "reasons"] {
        assert_eq!(again[key], first[key], "{key}");
    }

    // A row recorded before views existed has no analysis: it must not answer.
    let db = server.config.data_dir.join("coverguard.db");
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
        "sqlite://{}",
        db.display()
    ))
    .await
    .unwrap();
    sqlx::query("UPDATE screenings SET analysis = ''")
        .execute(&mut conn)
        .await
        .unwrap();
    let (_, fresh) = server
        .screen_bytes(Some(SERVICE_TOKEN), "image/png", apng, &context("c3"))
        .await;
    assert_eq!(fresh["verdict"], "review", "{fresh}");
    assert_eq!(
        server.metric(cached).await,
        1.0,
        "an old analysis is not reused"
    );
    assert_eq!(
        server.metric(inferred).await,
        4.0,
        "analysed again, views included"
    );
    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_animation_over_budget_is_refused_with_its_kind() {
    let server = start(|c| c.max_frames = 4).await;
    server.wait_ready().await;
    let a = picture("astronaut.png");
    let (status, body) = server
        .screen_bytes(
            Some(SERVICE_TOKEN),
            "image/gif",
            animated_gif(&[&a, &a, &a, &a, &a]),
            "artwork_id=long-1&owner_id=o1",
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["kind"], "animation_budget", "{body}");
    let (status, _) = server.get(SERVICE_TOKEN, "/v1/artworks/long-1").await;
    assert_eq!(status, 404, "nothing is recorded for a refusal");
    server.finish().await;
}
