//! Banks built from some images' hashes catch those images after re-encoding
//! and resizing (PDQ), or byte-identical copies (MD5, SHA-256), and nothing else.

mod common;

use std::io::Cursor;

use common::*;
use coverguard::decode::DecodeLimits;
use coverguard::matching::bank::{Bank, BankSet, SignalType, Signals};
use coverguard::screening::analyse::{analyse, Analysed};
use coverguard::screening::policy::Policy;
use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;

const IN_BANK: [&str; 4] = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"];

fn original(file: &str) -> (Vec<u8>, Analysed) {
    let bytes = std::fs::read(skimage_dir().join(file)).unwrap();
    let analysed = analyse(&bytes, &DecodeLimits::default()).unwrap();
    (bytes, analysed)
}

/// The image re-encoded as JPEG at `quality`, after scaling by `scale`.
fn variant(a: &Analysed, scale: f64, quality: u8) -> Analysed {
    let img =
        image::RgbImage::from_raw(a.image.width, a.image.height, a.image.rgb.clone()).unwrap();
    let (w, h) = (
        ((a.image.width as f64) * scale) as u32,
        ((a.image.height as f64) * scale) as u32,
    );
    let img = image::imageops::resize(&img, w, h, FilterType::Triangle);
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(Cursor::new(&mut jpeg), quality)
        .encode_image(&img)
        .unwrap();
    analyse(&jpeg, &DecodeLimits::default()).unwrap()
}

fn policy() -> Policy {
    Policy::builtin(&[])
}

fn pdq_bank() -> BankSet {
    let mut bank = Bank::new("known-bad");
    for file in IN_BANK {
        let (_, a) = original(file);
        bank.add(SignalType::Pdq, &a.pdq.hash.to_hex(), file)
            .unwrap();
    }
    BankSet::from_banks(vec![bank])
}

fn matched_entries(banks: &BankSet, a: &Analysed) -> Vec<String> {
    let p = policy();
    banks
        .match_signals(
            Signals {
                exact: Some(&a.exact),
                pdq: Some(&a.pdq),
            },
            |b| p.match_params(b),
        )
        .into_iter()
        .map(|m| m.entry)
        .collect()
}

#[test]
fn pdq_bank_catches_reencoded_and_resized_copies() {
    let banks = pdq_bank();
    for file in IN_BANK {
        let (_, a) = original(file);
        for (scale, quality) in [(1.0, 90), (1.0, 60), (0.5, 80), (0.37, 70), (1.6, 85)] {
            let v = variant(&a, scale, quality);
            let entries = matched_entries(&banks, &v);
            assert_eq!(
                entries,
                vec![file.to_string()],
                "{file} at scale {scale} q{quality}"
            );
        }
    }
}

#[test]
fn pdq_bank_does_not_match_other_images() {
    let banks = pdq_bank();
    for reference in skimage_reference() {
        if IN_BANK.contains(&reference.file.as_str()) {
            continue;
        }
        let (_, a) = original(&reference.file);
        assert!(
            matched_entries(&banks, &a).is_empty(),
            "{} matched",
            reference.file
        );
    }
}

#[test]
fn low_quality_pdq_is_never_matched() {
    // clock_motion.png has PDQ quality 34 in the reference: under the gate of 50.
    let (_, a) = original("clock_motion.png");
    assert!(a.pdq.quality < 50);
    let mut bank = Bank::new("known-bad");
    bank.add(SignalType::Pdq, &a.pdq.hash.to_hex(), "itself")
        .unwrap();
    assert!(matched_entries(&BankSet::from_banks(vec![bank]), &a).is_empty());
}

#[test]
fn exact_banks_match_identical_bytes_only() {
    let (_, astronaut) = original("astronaut.png");
    let (_, chelsea) = original("chelsea.png");
    let mut bank = Bank::new("exact");
    bank.add(SignalType::Md5, &astronaut.exact.md5, "astronaut-md5")
        .unwrap();
    bank.add(
        SignalType::Sha256,
        &chelsea.exact.sha256.to_uppercase(),
        "chelsea-sha256",
    )
    .unwrap();
    let banks = BankSet::from_banks(vec![bank]);
    assert_eq!(matched_entries(&banks, &astronaut), vec!["astronaut-md5"]);
    assert_eq!(matched_entries(&banks, &chelsea), vec!["chelsea-sha256"]);
    // Same pixels, different bytes: no exact match.
    assert!(matched_entries(&banks, &variant(&astronaut, 1.0, 95)).is_empty());
    let (_, coffee) = original("coffee.png");
    assert!(matched_entries(&banks, &coffee).is_empty());
}
