//! The evasions a pentester found against screening that looked only at the first frame
//! with alpha dropped (all were allowed), each built here by `common::attack` and shown
//! caught: blocked by a bank holding only the hidden picture's PDQ, and sent to review when
//! the hidden picture is one the classifier flags. Each case also shows that the reference
//! decoding alone passes the file, so the view that catches it is what changed.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::attack::{self, FLASH_MS, HOLD_MS};
use coverguard::classify::label_scores;
use coverguard::decode::{decode, for_each_frame, DecodeLimits, FrameId};
use coverguard::hash::pdq::pdq_from_rgb8;
use coverguard::hash::PdqOutput;
use coverguard::matching::bank::{Bank, BankSet};
use coverguard::screening::analyse::{analyse, build_record, ImageDetections, Screener};
use coverguard::screening::policy::Verdict;
use coverguard::screening::record::ScreeningRecord;
use coverguard::screening::views::{Rendering, ViewId};
use image::{GrayImage, Rgb, RgbImage};
use serde_json::{json, Value};

const WHITE: Rendering = Rendering::Over([0xff; 3]);
const BLACK: Rendering = Rendering::Over([0x00; 3]);

/// The bank image of the bank cases (a photo with a strong PDQ), kept small so tests are fast.
const SIDE: u32 = 256;

/// The keys of a record before views were screened: an opaque still must print no more.
const PRE_VIEWS_KEYS: [&str; 15] = [
    "source",
    "sha256",
    "md5",
    "format",
    "width",
    "height",
    "decode_scale",
    "pdq",
    "phash",
    "detections",
    "matches",
    "verdict",
    "reasons",
    "model",
    "policy",
];

/// One evasion file, what its reference decoding shows, and the view that shows what it hides.
struct Attack {
    name: &'static str,
    bytes: Vec<u8>,
    /// The reference decoding's pixels: the first frame or default image, alpha dropped.
    decoy: RgbImage,
    /// The frame and rendering in which a viewer sees the hidden picture first.
    shown_by: ViewId,
}

fn view(frame: FrameId, rendering: Rendering) -> ViewId {
    ViewId { frame, rendering }
}

/// A GIF, an APNG and an animated WebP flashing `decoy` then holding `hidden`, and an APNG
/// whose default image is `decoy`, outside an animation of `hidden`. `gif_hidden` is what
/// the GIF holds instead of `hidden` (a GIF frame has at most 256 colours).
fn animation_attacks(decoy: &RgbImage, hidden: &RgbImage, gif_hidden: &RgbImage) -> Vec<Attack> {
    let (d, h, gh) = (
        attack::opaque(decoy),
        attack::opaque(hidden),
        attack::opaque(gif_hidden),
    );
    let second = view(FrameId::Index(1), Rendering::Opaque);
    vec![
        Attack {
            name: "decoy-then-hidden.gif",
            bytes: attack::gif(&[(&d, FLASH_MS), (&gh, HOLD_MS)]),
            decoy: decoy.clone(),
            shown_by: second,
        },
        Attack {
            name: "decoy-then-hidden.apng.png",
            bytes: attack::apng(None, &[(&d, FLASH_MS), (&h, HOLD_MS)]),
            decoy: decoy.clone(),
            shown_by: second,
        },
        Attack {
            name: "decoy-then-hidden.webp",
            bytes: attack::animated_webp(&[(&d, FLASH_MS), (&h, HOLD_MS)]),
            decoy: decoy.clone(),
            shown_by: second,
        },
        Attack {
            name: "decoy-default-image.apng.png",
            bytes: attack::apng(Some(&d), &[(&h, HOLD_MS)]),
            decoy: decoy.clone(),
            // The default image is the reference decoding; the animation's first frame is
            // the first picture that differs from it.
            shown_by: view(FrameId::Index(0), Rendering::Opaque),
        },
    ]
}

/// Translucent stills blank with alpha dropped that show `hidden` exactly over a page.
fn alpha_attacks(hidden: &GrayImage) -> Vec<Attack> {
    let (w, h) = hidden.dimensions();
    let black = RgbImage::new(w, h);
    let white = RgbImage::from_pixel(w, h, Rgb([255; 3]));
    let first = FrameId::Index(0);
    vec![
        Attack {
            name: "black-alpha-is-picture.png",
            bytes: attack::png_rgba(&attack::hidden_over_white(hidden)),
            decoy: black.clone(),
            shown_by: view(first, WHITE),
        },
        Attack {
            name: "white-alpha-is-picture.png",
            bytes: attack::png_rgba(&attack::hidden_over_black(hidden)),
            decoy: white,
            // Over white it is blank white, the reference decoding exactly: not screened again.
            shown_by: view(first, BLACK),
        },
        Attack {
            name: "grey-alpha-is-picture.png",
            bytes: attack::png_luma_alpha(&attack::hidden_over_white_luma_alpha(hidden)),
            decoy: black.clone(),
            shown_by: view(first, WHITE),
        },
        Attack {
            name: "black-alpha-is-picture.webp",
            bytes: attack::webp_rgba(&attack::hidden_over_white(hidden)),
            decoy: black,
            shown_by: view(first, WHITE),
        },
    ]
}

fn pdq_of(image: &RgbImage) -> PdqOutput {
    pdq_from_rgb8(image.width(), image.height(), image.as_raw()).unwrap()
}

/// A bank named `hidden` holding one entry, `hidden-1`: the PDQ of `image`.
fn bank_text(image: &RgbImage) -> String {
    let pdq = pdq_of(image);
    // A weak hash is never matched (pdq_min_quality): the entry must be one that can match.
    assert!(pdq.quality >= 50, "bank image PDQ quality {}", pdq.quality);
    format!("pdq {} hidden-1\n", pdq.hash.to_hex())
}

fn bank_of(image: &RgbImage) -> BankSet {
    BankSet::from_banks(vec![Bank::parse("hidden", &bank_text(image)).unwrap()])
}

/// Screens `bytes` against `banks`; the shared screener's detector classifies every view.
fn screen(screener: &mut Screener, banks: &BankSet, name: &str, bytes: &[u8]) -> ScreeningRecord {
    let analysed =
        analyse(bytes, &DecodeLimits::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let unbanked = screener.finish(name, &analysed).unwrap();
    let detections =
        ImageDetections::from_record(&serde_json::to_value(&unbanked).unwrap(), &analysed)
            .expect("the record has one detection list per view");
    build_record(
        name,
        &analysed,
        detections,
        banks,
        &screener.policy,
        screener.detector.model_id(),
    )
}

/// The verdict the reference decoding alone gets: what screening gave before views.
fn reference_verdict(screener: &Screener, record: &ScreeningRecord) -> Verdict {
    let reference_matches: Vec<_> = record
        .matches
        .iter()
        .filter(|m| m.frame.is_none())
        .cloned()
        .collect();
    screener
        .policy
        .decide(&label_scores(&record.detections), &reference_matches)
        .verdict
}

/// Asserts the reference decoding is `decoy` and passes on its own.
fn assert_reference_passes(screener: &Screener, a: &Attack, record: &ScreeningRecord) {
    assert_eq!(
        record.pdq.hash,
        pdq_of(&a.decoy).hash.to_hex(),
        "{}: the top-level PDQ is the reference decoding's",
        a.name
    );
    assert!(
        record.matches.iter().all(|m| m.frame.is_some()),
        "{}: the reference decoding matched: {:?}",
        a.name,
        record.matches
    );
    assert_eq!(
        reference_verdict(screener, record),
        Verdict::Allow,
        "{}: the reference decoding alone is flagged: {:?}",
        a.name,
        record.detections
    );
}

fn bank_attacks() -> (RgbImage, Vec<Attack>) {
    let hidden_grey = attack::photo_grey("camera.png", SIDE, SIDE);
    let hidden = attack::grey_to_rgb(&hidden_grey);
    let decoy = attack::photo_rgb("brick.png", SIDE, SIDE);
    // Both grey: every format, the GIF included, holds their pixels exactly.
    let mut attacks = animation_attacks(&decoy, &hidden, &hidden);
    attacks.extend(alpha_attacks(&hidden_grey));
    (hidden, attacks)
}

#[test]
fn every_evasion_is_blocked_by_a_bank_of_the_hidden_picture_alone() {
    let (hidden, attacks) = bank_attacks();
    let banks = bank_of(&hidden);
    let hidden_pdq = pdq_of(&hidden).hash.to_hex();
    let mut screener = common::screener();
    for a in &attacks {
        let record = screen(&mut screener, &banks, a.name, &a.bytes);
        assert_eq!(record.verdict, Verdict::Block, "{}: {record:?}", a.name);
        assert_eq!(record.decided_by, Some(a.shown_by), "{}", a.name);
        assert_reference_passes(&screener, a, &record);
        // The view shows the bank image pixel for pixel (every file here is lossless).
        let shown = record
            .views
            .iter()
            .find(|v| v.id() == a.shown_by)
            .unwrap_or_else(|| panic!("{}: no view {}: {:?}", a.name, a.shown_by, record.views));
        assert_eq!(shown.pdq.hash, hidden_pdq, "{}", a.name);
        assert_eq!(record.deciding_pdq().hash, hidden_pdq, "{}", a.name);
        let matched = record
            .matches
            .iter()
            .find(|m| m.view() == Some(a.shown_by))
            .unwrap_or_else(|| panic!("{}: no match names {}", a.name, a.shown_by));
        assert_eq!(
            (
                matched.bank.as_str(),
                matched.entry.as_str(),
                matched.distance
            ),
            ("hidden", "hidden-1", 0),
            "{}",
            a.name
        );
        // As printed: the match and the decision name the frame and rendering.
        let printed = serde_json::to_value(&record).unwrap();
        let expected_view = json!({
            "frame": serde_json::to_value(a.shown_by.frame).unwrap(),
            "rendering": a.shown_by.rendering.name(),
        });
        assert_eq!(printed["decided_by"], expected_view, "{}", a.name);
        assert!(
            printed["matches"].as_array().unwrap().iter().any(|m| {
                m["entry"] == "hidden-1"
                    && m["frame"] == expected_view["frame"]
                    && m["rendering"] == expected_view["rendering"]
            }),
            "{}: {}",
            a.name,
            printed["matches"]
        );
        assert_eq!(printed["verdict"], "block");
    }
}

#[test]
fn every_evasion_hiding_a_flagged_picture_goes_to_review() {
    // The colour chart: NudeNet scores BUTTOCKS_EXPOSED 0.835, a review, not a block.
    let (w, h) = (371, 370);
    let chart = attack::photo_rgb("color.png", w, h);
    let chart_grey = attack::photo_grey("color.png", w, h);
    let decoy = attack::photo_rgb("brick.png", w, h);
    // A GIF quantises the chart's colours to 256 and the detection is lost with them (a
    // weaker picture, not an evasion of views); its grey keeps every level and scores alike.
    let mut attacks = animation_attacks(&decoy, &chart, &attack::grey_to_rgb(&chart_grey));
    attacks.extend(alpha_attacks(&chart_grey));
    let no_banks = BankSet::default();
    let mut screener = common::screener();
    for a in &attacks {
        let record = screen(&mut screener, &no_banks, a.name, &a.bytes);
        assert_eq!(record.verdict, Verdict::Review, "{}: {record:?}", a.name);
        assert_eq!(record.decided_by, Some(a.shown_by), "{}", a.name);
        assert!(record.matches.is_empty());
        assert_reference_passes(&screener, a, &record);
        let shown = record.views.iter().find(|v| v.id() == a.shown_by).unwrap();
        let scores = label_scores(&shown.detections);
        assert!(
            scores.get("BUTTOCKS_EXPOSED").is_some_and(|&s| s >= 0.40),
            "{}: {:?}",
            a.name,
            shown.detections
        );
        assert!(
            record.reasons[0].contains("BUTTOCKS_EXPOSED")
                && record.reasons[0].ends_with(&format!(" in {}", a.shown_by)),
            "{}: the first reason names the label and the view: {:?}",
            a.name,
            record.reasons
        );
    }
}

#[test]
fn an_apng_hiding_its_picture_as_the_default_image_is_caught_by_the_reference() {
    // The reverse of the separate-default-image attack: browsers play a harmless animation,
    // viewers without APNG support show the default image. The reference decoding is that
    // default image, so it is caught there, as it was before views.
    let hidden = attack::grey_to_rgb(&attack::photo_grey("camera.png", SIDE, SIDE));
    let decoy = attack::photo_rgb("brick.png", SIDE, SIDE);
    let bytes = attack::apng(
        Some(&attack::opaque(&hidden)),
        &[(&attack::opaque(&decoy), HOLD_MS)],
    );

    // Both pictures a viewer can be shown are composited: the default image, then the frame.
    let mut shown = Vec::new();
    let animated = for_each_frame(
        &bytes,
        coverguard::decode::ImageFormat::Png,
        &DecodeLimits::default(),
        &mut |frame, canvas| {
            let rgb: Vec<u8> = canvas
                .rgba
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect();
            shown.push((frame, rgb));
            Ok(())
        },
    )
    .unwrap();
    assert!(animated);
    assert_eq!(
        shown,
        vec![
            (FrameId::Default, hidden.as_raw().clone()),
            (FrameId::Index(0), decoy.as_raw().clone()),
        ]
    );

    let mut screener = common::screener();
    let record = screen(
        &mut screener,
        &bank_of(&hidden),
        "hidden-default.png",
        &bytes,
    );
    assert_eq!(record.verdict, Verdict::Block);
    assert_eq!(record.decided_by, None, "the reference decoding decides");
    assert_eq!(record.pdq.hash, pdq_of(&hidden).hash.to_hex());
    assert!(record.matches.iter().any(|m| m.frame.is_none()));
    // The default image equals the reference decoding and is not screened twice; the frame
    // browsers play is.
    let views: Vec<ViewId> = record.views.iter().map(|v| v.id()).collect();
    assert_eq!(views, vec![view(FrameId::Index(0), Rendering::Opaque)]);
}

#[test]
fn opaque_stills_are_screened_once_and_print_the_record_they_always_did() {
    let photo = attack::photo_rgb("astronaut.png", SIDE, SIDE);
    let stills = [
        ("astronaut.jpg", attack::jpeg(&photo, 90)),
        ("astronaut.png", attack::png_rgb(&photo)),
        ("astronaut.webp", attack::webp_rgb(&photo)),
        (
            "astronaut.gif",
            attack::gif(&[(&attack::opaque(&photo), 0)]),
        ),
    ];
    let keys: BTreeSet<&str> = PRE_VIEWS_KEYS.into_iter().collect();
    let mut screener = common::screener();
    for (name, bytes) in &stills {
        let analysed = analyse(bytes, &DecodeLimits::default()).unwrap();
        assert!(analysed.views.is_empty(), "{name}: {:?}", analysed.views);
        assert_eq!(analysed.model_inputs().len(), 1, "{name}: one inference");
        let record = screener.finish(name, &analysed).unwrap();
        assert_eq!(record.verdict, Verdict::Allow, "{name}");
        let printed = serde_json::to_value(&record).unwrap();
        let printed_keys: BTreeSet<&str> = printed
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(printed_keys, keys, "{name}");
    }
}

#[test]
fn rounded_corners_cost_no_extra_view_and_larger_cut_outs_do() {
    let photo = attack::photo_rgb("astronaut.png", SIDE, SIDE);
    let transparent_share = |radius| {
        let image = attack::rounded_corners(&photo, radius);
        let cut = image.pixels().filter(|p| p[3] == 0).count();
        (image, cut as f64 / f64::from(SIDE * SIDE))
    };

    // Corners of radius 32 cut 1.3% of the picture: a mask, not a picture.
    let (rounded, share) = transparent_share(32);
    assert!(share > 0.0 && share <= 0.05, "{share}");
    let analysed = analyse(&attack::png_rgba(&rounded), &DecodeLimits::default()).unwrap();
    assert!(analysed.views.is_empty(), "{:?}", analysed.views);
    assert_eq!(analysed.model_inputs().len(), 1, "one inference");
    let record = common::screener().finish("rounded.png", &analysed).unwrap();
    let printed = serde_json::to_value(&record).unwrap();
    assert!(printed.get("views").is_none() && printed.get("decided_by").is_none());

    // Cut-outs of 12%: what shows through them is screened over the page colours.
    let (cut_out, share) = transparent_share(96);
    assert!(share > 0.05, "{share}");
    let analysed = analyse(&attack::png_rgba(&cut_out), &DecodeLimits::default()).unwrap();
    assert!(
        !analysed.views.is_empty()
            && analysed
                .views
                .iter()
                .all(|v| matches!(v.id.rendering, Rendering::Over(_))),
        "{:?}",
        analysed.views
    );
}

#[test]
fn repeated_frames_are_screened_once_each() {
    let side = 64;
    let pictures: Vec<RgbImage> = ["brick.png", "camera.png", "coins.png"]
        .iter()
        .map(|name| attack::grey_to_rgb(&attack::photo_grey(name, side, side)))
        .collect();
    let opaque: Vec<_> = pictures.iter().map(attack::opaque).collect();
    // A, B, C, A, B, C, ...: twelve frames, three pictures.
    let frames: Vec<_> = (0..12).map(|i| (&opaque[i % 3], 100)).collect();
    let files = [
        ("gif", attack::gif(&frames)),
        ("apng", attack::apng(None, &frames)),
        ("webp", attack::animated_webp(&frames)),
    ];
    for (name, bytes) in &files {
        let analysed = analyse(bytes, &DecodeLimits::default()).unwrap();
        // A is the reference decoding; B and C are screened where first shown.
        let views: Vec<(ViewId, String)> = analysed
            .views
            .iter()
            .map(|v| (v.id, v.pdq.hash.to_hex()))
            .collect();
        let expected: Vec<(ViewId, String)> = (1..3)
            .map(|i| {
                (
                    view(FrameId::Index(i as u32), Rendering::Opaque),
                    pdq_of(&pictures[i]).hash.to_hex(),
                )
            })
            .collect();
        assert_eq!(views, expected, "{name}");

        // Repeats do not count towards max_views: two distinct views fit a budget of two...
        let two = DecodeLimits {
            max_views: 2,
            ..DecodeLimits::default()
        };
        assert_eq!(analyse(bytes, &two).unwrap().views.len(), 2, "{name}");
        // ...and not one.
        let one = DecodeLimits {
            max_views: 1,
            ..DecodeLimits::default()
        };
        let refused = analyse(bytes, &one).err().expect("over max_views");
        assert_eq!(refused.kind(), "animation_budget", "{name}: {refused}");
    }
    // The reference decoding is frame 0, decoded alone.
    let reference = decode(&files[1].1, &DecodeLimits::default()).unwrap();
    assert_eq!(reference.rgb, *pictures[0].as_raw());
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn scan_blocks_every_evasion_and_prints_opaque_stills_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("covers");
    std::fs::create_dir(&files).unwrap();
    let (hidden, attacks) = bank_attacks();
    for a in &attacks {
        std::fs::write(files.join(a.name), &a.bytes).unwrap();
    }
    let photo = attack::photo_rgb("astronaut.png", SIDE, SIDE);
    let stills = [
        ("still.jpg", attack::jpeg(&photo, 90)),
        ("still.png", attack::png_rgb(&photo)),
        ("still.webp", attack::webp_rgb(&photo)),
        ("still.gif", attack::gif(&[(&attack::opaque(&photo), 0)])),
    ];
    for (name, bytes) in &stills {
        std::fs::write(files.join(name), bytes).unwrap();
    }
    let bank = dir.path().join("hidden.txt");
    std::fs::write(&bank, bank_text(&hidden)).unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_coverguard"))
        .args(["scan", "--json", "--bank", s(&bank), s(&files)])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a block is status 1: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect(l))
        .collect();
    let line = |name: &str| {
        let source = files.join(name);
        lines
            .iter()
            .find(|l| l["source"] == s(&source))
            .unwrap_or_else(|| panic!("no line for {name} in {stdout}"))
            .clone()
    };
    for a in &attacks {
        let printed = line(a.name);
        assert_eq!(printed["verdict"], "block", "{}: {printed}", a.name);
        assert_eq!(
            printed["decided_by"],
            json!({
                "frame": serde_json::to_value(a.shown_by.frame).unwrap(),
                "rendering": a.shown_by.rendering.name(),
            }),
            "{}",
            a.name
        );
        assert_eq!(printed["pdq"]["hash"], pdq_of(&a.decoy).hash.to_hex());
        assert!(
            printed["matches"]
                .as_array()
                .unwrap()
                .iter()
                .all(|m| m["bank"] == "hidden" && m.get("frame").is_some()),
            "{}: only views match: {}",
            a.name,
            printed["matches"]
        );
    }
    let keys: BTreeSet<&str> = PRE_VIEWS_KEYS.into_iter().collect();
    for (name, _) in &stills {
        let printed = line(name);
        assert_eq!(printed["verdict"], "allow", "{name}: {printed}");
        let printed_keys: BTreeSet<&str> = printed
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(printed_keys, keys, "{name}");
    }
}

#[test]
fn a_hidden_frame_past_a_budget_is_refused_and_an_animation_at_the_budget_is_screened() {
    let side = 64;
    let hidden = attack::opaque(&attack::grey_to_rgb(&attack::photo_grey(
        "camera.png",
        side,
        side,
    )));
    let decoy = attack::opaque(&attack::photo_rgb("brick.png", side, side));
    // The hidden picture is the last of three frames: an animation cut short by a budget
    // must be refused, never screened in part and allowed.
    let frames = [(&decoy, FLASH_MS), (&decoy, FLASH_MS), (&hidden, HOLD_MS)];
    let canvas = u64::from(side * side);
    let files = [
        ("gif", attack::gif(&frames)),
        ("apng", attack::apng(None, &frames)),
        ("webp", attack::animated_webp(&frames)),
    ];
    let at = |max_frames, max_animation_pixels| DecodeLimits {
        max_frames,
        max_animation_pixels,
        ..DecodeLimits::default()
    };
    for (name, bytes) in &files {
        for limits in [at(3, u64::MAX), at(u32::MAX, 3 * canvas)] {
            let analysed =
                analyse(bytes, &limits).unwrap_or_else(|e| panic!("{name} at {limits:?}: {e}"));
            let frames: Vec<FrameId> = analysed.views.iter().map(|v| v.id.frame).collect();
            assert_eq!(frames, vec![FrameId::Index(2)], "{name}");
        }
        for limits in [at(2, u64::MAX), at(u32::MAX, 3 * canvas - 1)] {
            let refused = analyse(bytes, &limits).err().expect("over budget");
            assert_eq!(refused.kind(), "animation_budget", "{name}: {refused}");
        }
    }
    // A one-frame GIF is screened as an animation: a budget of its one canvas is enough.
    let still = attack::gif(&[(&hidden, 0)]);
    analyse(&still, &at(1, canvas)).expect("a one-frame GIF within a one-frame budget");
}

#[test]
fn the_animations_are_what_the_pentester_built() {
    use image::AnimationDecoder;
    use std::io::Cursor;
    use std::time::Duration;

    // A viewer that plays them sees the decoy for 10 ms and the hidden picture for a minute.
    let (hidden, attacks) = bank_attacks();
    let played = |name: &str, bytes: &[u8]| -> Vec<(Duration, Vec<u8>)> {
        let frames = match name.rsplit('.').next().unwrap() {
            "gif" => image::codecs::gif::GifDecoder::new(Cursor::new(bytes))
                .unwrap()
                .into_frames(),
            "png" => image::codecs::png::PngDecoder::new(Cursor::new(bytes))
                .unwrap()
                .apng()
                .unwrap()
                .into_frames(),
            _ => image::codecs::webp::WebPDecoder::new(Cursor::new(bytes))
                .unwrap()
                .into_frames(),
        };
        frames
            .map(|f| {
                let f = f.unwrap();
                let rgb = image::DynamicImage::ImageRgba8(f.buffer().clone()).to_rgb8();
                (Duration::from(f.delay()), rgb.into_raw())
            })
            .collect()
    };
    let animations: Vec<_> = attacks
        .iter()
        .filter(|a| a.name.starts_with("decoy-then-hidden"))
        .collect();
    assert_eq!(animations.len(), 3);
    for a in animations {
        assert_eq!(
            played(a.name, &a.bytes),
            vec![
                (Duration::from_millis(10), a.decoy.as_raw().clone()),
                (Duration::from_secs(60), hidden.as_raw().clone()),
            ],
            "{}",
            a.name
        );
    }
}
