//! Parity with the oracles: NudeNet 3.4.2 detections and Meta's PDQ on the
//! scikit-image 0.26.0 sample photos (`../shared/reference`, copied to fixtures).

mod common;

use common::*;
use coverguard::decode::DecodeLimits;
use coverguard::screening::analyse::analyse;
use coverguard::screening::policy::Verdict;
use coverguard::screening::record::ScreeningRecord;

fn screen_all() -> Vec<(ReferenceImage, ScreeningRecord)> {
    let dir = skimage_dir();
    let mut screener = screener();
    skimage_reference()
        .into_iter()
        .map(|reference| {
            let bytes = std::fs::read(dir.join(&reference.file)).unwrap();
            let analysed = analyse(&bytes, &DecodeLimits::default()).unwrap();
            assert_eq!(
                analysed.exact.sha256, reference.sha256,
                "{} is not the reference's file",
                reference.file
            );
            let record = screener.finish(&reference.file, &analysed).unwrap();
            (reference, record)
        })
        .collect()
}

#[test]
fn detections_match_nudenet_3_4_2() {
    let results = screen_all();
    assert_eq!(results.len(), 26);
    let mut failures = Vec::new();
    for (reference, record) in &results {
        let ours: Vec<(String, f32, [f64; 4])> = record
            .detections
            .iter()
            .map(|d| (d.label.clone(), d.score, d.bbox.map(|v| v as f64)))
            .collect();
        // Every reference detection >= 0.3 has a same-label twin: IoU >= 0.9, |Δscore| <= 0.02.
        for r in reference.nudenet_3_4_2.iter().filter(|r| r.score >= 0.3) {
            let twin = ours.iter().any(|(label, score, bbox)| {
                *label == r.class && iou(*bbox, r.bbox) >= 0.9 && (score - r.score).abs() <= 0.02
            });
            if !twin {
                failures.push(format!(
                    "{}: reference {} {:.4} {:?} missing; ours {:?}",
                    reference.file, r.class, r.score, r.bbox, ours
                ));
            }
        }
        // No detection of ours >= 0.32 lacks a same-label reference detection with IoU >= 0.9.
        for (label, score, bbox) in ours.iter().filter(|(_, s, _)| *s >= 0.32) {
            let twin = reference
                .nudenet_3_4_2
                .iter()
                .any(|r| r.class == *label && iou(*bbox, r.bbox) >= 0.9);
            if !twin {
                failures.push(format!(
                    "{}: extra {label} {score:.4} {bbox:?}",
                    reference.file
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn default_policy_reviews_the_colour_chart_and_allows_the_astronaut() {
    let results = screen_all();
    let verdict = |file: &str| {
        results
            .iter()
            .find(|(r, _)| r.file == file)
            .unwrap()
            .1
            .verdict
    };
    assert_ne!(verdict("color.png"), Verdict::Allow);
    assert_eq!(verdict("astronaut.png"), Verdict::Allow);
}

#[test]
fn pdq_matches_meta_reference() {
    let dir = skimage_dir();
    let mut failures = Vec::new();
    for reference in skimage_reference() {
        let bytes = std::fs::read(dir.join(&reference.file)).unwrap();
        let analysed = analyse(&bytes, &DecodeLimits::default()).unwrap();
        let ours = analysed.pdq.hash.to_hex();
        let distance = hex_distance(&ours, &reference.pdq.hash);
        if reference.file.ends_with(".png") {
            // Lossless: bit for bit, quality included.
            if ours != reference.pdq.hash || analysed.pdq.quality != reference.pdq.quality {
                failures.push(format!(
                    "{}: ours {ours} q{} vs {} q{}",
                    reference.file, analysed.pdq.quality, reference.pdq.hash, reference.pdq.quality
                ));
            }
        } else if distance > 4 {
            failures.push(format!(
                "{}: JPEG hash {distance} bits from the reference",
                reference.file
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
