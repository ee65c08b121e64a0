//! The Rust OCR against rapidocr 1.4.4's own output on the fixture images
//! (tests/fixtures/ocr, mode `max736`: detector input at most 736 px on the long side,
//! as the service runs it).
//!
//! Tolerance: every line rapidocr reports is found (box IoU at least 0.85) and no
//! other line is; at least 93% of lines read character for character the same, and the
//! character error rate over all lines is at most 1%. Boxes can differ by a pixel at
//! a corner (OpenCV computes box corners in float32 and pyclipper truncates them; we
//! compute in f64), and a one-pixel shift of a line's crop can add or drop a space.

use std::path::PathBuf;

use serde::Deserialize;

use super::geometry::{convex_iou, Point};
use super::{OcrEngine, OcrLine};
use crate::decode::{self, DecodeLimits};
use crate::provision::{self, Cache};

#[derive(Deserialize)]
struct Oracle {
    images: Vec<OracleImage>,
}

#[derive(Deserialize)]
struct OracleImage {
    file: String,
    rapidocr: std::collections::BTreeMap<String, OracleRun>,
}

#[derive(Deserialize)]
struct OracleRun {
    lines: Vec<OracleLine>,
}

#[derive(Deserialize)]
struct OracleLine {
    #[serde(rename = "box")]
    quad: [[f64; 2]; 4],
    text: String,
}

pub(crate) fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ocr")
}

pub(crate) fn engine() -> OcrEngine {
    let cache = Cache::from_env().unwrap();
    let runtime = provision::provision(&cache, None).unwrap();
    let models = provision::provision_ocr(&cache).unwrap();
    OcrEngine::load(
        &models,
        &runtime.runtime_library,
        1,
        super::Reading::EveryImage,
    )
    .unwrap()
}

pub(crate) fn levenshtein(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

fn points(quad: &[[f64; 2]; 4]) -> Vec<Point> {
    quad.iter().map(|&[x, y]| Point::new(x, y)).collect()
}

fn ours(line: &OcrLine) -> Vec<Point> {
    line.quad
        .iter()
        .map(|&[x, y]| Point::new(x as f64, y as f64))
        .collect()
}

#[test]
fn the_rust_ocr_reads_what_rapidocr_reads() {
    let oracle: Oracle =
        serde_json::from_slice(&std::fs::read(fixtures().join("rapidocr-1.4.4.json")).unwrap())
            .unwrap();
    let mut engine = engine();
    let (mut lines, mut matched, mut exact, mut edits, mut chars, mut extra) = (0, 0, 0, 0, 0, 0);
    let mut ious = Vec::new();
    for image in &oracle.images {
        let bytes = std::fs::read(fixtures().join(&image.file)).unwrap();
        let decoded = decode::decode(&bytes, &DecodeLimits::default()).unwrap();
        let read = engine
            .read(
                &decoded.rgb,
                decoded.width as usize,
                decoded.height as usize,
            )
            .unwrap();
        let expected = &image.rapidocr["max736"].lines;
        let mut used = vec![false; read.len()];
        for line in expected {
            lines += 1;
            chars += line.text.chars().count();
            let best = read
                .iter()
                .enumerate()
                .filter(|(k, _)| !used[*k])
                .map(|(k, r)| (k, convex_iou(&points(&line.quad), &ours(r))))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            match best {
                Some((k, iou)) if iou >= 0.5 => {
                    used[k] = true;
                    matched += 1;
                    ious.push(iou);
                    let d = levenshtein(&line.text, &read[k].text);
                    edits += d;
                    exact += usize::from(d == 0);
                    if d > 0 {
                        eprintln!(
                            "{}: {:?} read as {:?} (IoU {iou:.2})",
                            image.file, line.text, read[k].text
                        );
                    }
                }
                _ => {
                    edits += line.text.chars().count();
                    eprintln!("{}: {:?} not found ({best:?})", image.file, line.text);
                }
            }
        }
        for (k, r) in read.iter().enumerate() {
            if !used[k] {
                extra += 1;
                eprintln!("{}: extra line {:?} at {:?}", image.file, r.text, r.quad);
            }
        }
    }
    ious.sort_by(f64::total_cmp);
    let median_iou = ious.get(ious.len() / 2).copied().unwrap_or(0.0);
    let min_iou = ious.first().copied().unwrap_or(0.0);
    let cer = edits as f64 / chars.max(1) as f64;
    eprintln!(
        "oracle lines {lines}: matched {matched}, read exactly {exact}, extra {extra}; \
         box IoU median {median_iou:.3}, lowest {min_iou:.3}; CER {cer:.4}"
    );
    assert!(
        lines >= 80,
        "the oracle holds the fixture's lines ({lines})"
    );
    assert_eq!(matched, lines, "every line rapidocr reads is found");
    assert_eq!(extra, 0, "no line rapidocr does not read");
    assert!(min_iou >= 0.85, "lowest box IoU {min_iou}");
    assert!(
        exact as f64 >= 0.93 * lines as f64,
        "{exact} of {lines} read exactly"
    );
    assert!(cer <= 0.01, "CER {cer}");
}

#[test]
fn images_of_any_shape_are_read_without_failing() {
    let mut engine = engine();
    // Noise, so that the detector has something to look at; shapes at the edges of
    // every step: tiny, flat, tall, just over the 2000 px cap, letterboxed.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut noise = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 56) as u8
            })
            .collect()
    };
    for (w, h) in [
        (1, 1),
        (2, 3),
        (1, 4000),
        (4000, 1),
        (31, 31),
        (29, 400),
        (4000, 20),
        (2001, 17),
        (17, 2001),
        (2050, 2050),
    ] {
        let rgb = noise(w * h * 3);
        let lines = engine
            .read(&rgb, w, h)
            .unwrap_or_else(|e| panic!("{w}x{h}: {e}"));
        for line in lines {
            for [x, y] in line.quad {
                assert!(
                    (0.0..=w as f32).contains(&x) && (0.0..=h as f32).contains(&y),
                    "{w}x{h}: {line:?}"
                );
            }
        }
    }
}
