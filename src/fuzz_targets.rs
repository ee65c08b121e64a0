//! The bodies of the `cargo fuzz` targets in `fuzz/`, kept in the library so the test
//! suite replays the same code over the committed corpus (`tests/fuzz_corpus.rs`) on a
//! stable toolchain. Each function takes arbitrary bytes; a panic is a finding. Beyond
//! "no panic", each checks what its caller relies on.

use std::io::Cursor;

use crate::decode::{self, DecodeLimits, Resolution};

/// Small limits so the fuzzer spends its time on parsing, not on large allocations; the
/// limit checks themselves are what is exercised.
fn fuzz_limits() -> DecodeLimits {
    DecodeLimits {
        max_bytes: 1 << 20,
        max_pixels: 1 << 20,
        max_side: 4096,
        max_frames: 64,
        max_animation_pixels: 1 << 22,
        max_views: 8,
    }
}

/// Every decoder (JPEG, PNG, WebP, GIF), at full and reduced scale: an image or a typed
/// error, within the limits, with a buffer of exactly the stated size that PDQ accepts.
/// Then every frame and rendering screening makes of it: within the view budget, each of
/// the file's size, or `animation_budget`.
pub fn decode(data: &[u8]) {
    let limits = fuzz_limits();
    views(data, &limits);
    for resolution in [Resolution::Full, Resolution::LongSideAtLeast(16)] {
        match decode::decode_at(data, &limits, resolution) {
            Ok(image) => {
                let pixels = u64::from(image.source_width) * u64::from(image.source_height);
                assert!(pixels <= limits.max_pixels, "over max_pixels");
                assert!(image.source_width.max(image.source_height) <= limits.max_side);
                assert!(image.width <= image.source_width && image.height <= image.source_height);
                assert!(image.width > 0 && image.height > 0);
                assert_eq!(
                    image.rgb.len(),
                    image.width as usize * image.height as usize * 3
                );
                crate::hash::pdq::pdq_from_rgb8(image.width, image.height, &image.rgb)
                    .expect("a decoded image always hashes");
            }
            Err(e) => {
                assert!(!e.kind().is_empty());
                if let decode::DecodeError::DecoderPanicked { detail } = &e {
                    panic!("a decoder panicked (contained in production, a bug all the same): {detail}");
                }
            }
        }
    }
}

fn views(data: &[u8], limits: &DecodeLimits) {
    let settings = crate::screening::views::ViewSettings::default();
    let Ok((reference, still)) = decode::decode_shown_at(data, limits, Resolution::Full) else {
        return;
    };
    let mut frames = 0u32;
    let counted = decode::guarded(reference.format, || {
        decode::for_each_frame(data, reference.format, limits, &mut |_, canvas| {
            frames += 1;
            assert_eq!(
                (canvas.width, canvas.height),
                (reference.width, reference.height),
                "every frame is the canvas's size"
            );
            assert_eq!(
                canvas.rgba.len(),
                canvas.width as usize * canvas.height as usize * 4
            );
            Ok(())
        })
    });
    match counted {
        Ok(_) => assert!(frames <= limits.max_frames, "over max_frames"),
        Err(e) => {
            if let decode::DecodeError::DecoderPanicked { detail } = &e {
                panic!("a frame decoder panicked: {detail}");
            }
            if frames > 0 && e.kind() == "animation_budget" {
                assert!(frames <= limits.max_frames);
            }
        }
    }
    match crate::screening::views::collect(data, &reference, still, limits, &settings) {
        Ok(views) => {
            assert!(views.len() <= limits.max_views as usize, "over max_views");
            for view in &views {
                assert_eq!(
                    (view.source_width, view.source_height),
                    (reference.width, reference.height)
                );
                assert_eq!(
                    view.rgb.len(),
                    view.width as usize * view.height as usize * 3
                );
            }
        }
        Err(crate::screening::views::ViewError::Decode(decode::DecodeError::DecoderPanicked {
            detail,
        })) => panic!("a frame decoder panicked: {detail}"),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// PDQ over arbitrary pixels: the first two bytes give the size (1..=256 a side).
pub fn pdq(data: &[u8]) {
    let [w, h, pixels @ ..] = data else {
        return;
    };
    let (width, height) = (u32::from(*w) + 1, u32::from(*h) + 1);
    let needed = width as usize * height as usize * 3;
    let rgb: Vec<u8> = pixels.iter().copied().cycle().take(needed).collect();
    if rgb.len() < needed {
        // Too few bytes to fill the image: the length check must refuse it.
        assert!(crate::hash::pdq::pdq_from_rgb8(width, height, &rgb).is_err());
        return;
    }
    let out = crate::hash::pdq::pdq_from_rgb8(width, height, &rgb).expect("valid input hashes");
    assert!(out.quality <= 100);
    if (width, height) != (64, 64) {
        assert_eq!(out.dihedral[0], out.hash, "dihedral[0] is the plain hash");
    }
    let hex = out.hash.to_hex();
    assert_eq!(crate::hash::pdq::PdqHash::from_hex(&hex).unwrap(), out.hash);
}

/// A hash-bank file (HMA import text): entries or every bad line, and what parses
/// round-trips through the index.
pub fn bank_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match crate::matching::bank::Bank::parse("fuzz", text) {
        Ok(mut bank) => {
            bank.index();
            let entries =
                crate::matching::bank::parse_entries(text).expect("Bank::parse accepted it");
            assert_eq!(entries.len(), bank.len());
        }
        Err(lines) => {
            assert!(!lines.is_empty());
            assert!(lines
                .iter()
                .all(|l| l.line >= 1 && l.line <= text.lines().count()));
        }
    }
}

/// A backfill manifest, as CSV and as JSON lines: items or typed errors with the line
/// they were on, and a reader that ends.
pub fn manifest(data: &[u8]) {
    for format in [
        crate::backfill::manifest::ManifestFormat::Csv,
        crate::backfill::manifest::ManifestFormat::Jsonl,
    ] {
        let Ok(reader) =
            crate::backfill::manifest::ManifestReader::new(Cursor::new(data), format, "/base")
        else {
            continue;
        };
        let lines = data.iter().filter(|b| **b == b'\n').count() as u64 + 1;
        // An item per line at most, plus the error that ends the reader.
        for item in reader.take(data.len() + 2) {
            match item {
                Ok(item) => {
                    assert!(
                        item.line >= 1 && item.line <= lines,
                        "line {} of {lines}",
                        item.line
                    );
                    assert!(!item.artwork_id.is_empty());
                }
                Err(e) => assert!(!e.to_string().is_empty()),
            }
        }
    }
}

/// The request bodies the API parses: `/v1/screen` (JSON or image bytes with a query),
/// login, review decisions and bank edits. The first byte picks the content type, and
/// bytes before the first NUL are the query string.
pub fn request_body(data: &[u8]) {
    let [selector, rest @ ..] = data else {
        return;
    };
    let content_type = [
        "application/json",
        "image/png",
        "application/octet-stream",
        "text/plain",
    ][usize::from(*selector) % 4];
    let (query, body) = match rest.iter().position(|b| *b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&[][..], rest),
    };
    let query = String::from_utf8_lossy(query);
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(content_type),
    );
    let parsed = crate::http::screening::parse_screen_request(
        &headers,
        Some(&query),
        bytes::Bytes::copy_from_slice(body),
    );
    if let Ok(request) = &parsed {
        // A JSON request names a URL and carries no bytes; a raw one is the bytes as sent.
        assert_eq!(request.bytes.is_none(), content_type == "application/json");
    }
    if content_type == "text/plain" {
        assert!(parsed.is_err(), "only JSON and image bodies are screened");
    }
    let _ = serde_json::from_slice::<crate::http::review::login::LoginRequest>(body);
    let _ = serde_json::from_slice::<crate::review::DecisionRequest>(body);
    let _ = serde_json::from_slice::<crate::http::banks::CreateBank>(body);
    let _ = serde_json::from_slice::<crate::http::banks::AddEntries>(body);
    let _ = serde_json::from_slice::<crate::http::banks::EntryPatch>(body);
}
