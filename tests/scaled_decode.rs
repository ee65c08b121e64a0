//! Screening a large JPEG at reduced DCT scale (`Resolution::FAST`, opt-in): what is
//! reported stays in the image's own size, the model's finding stays, and PDQ still
//! matches the full decode's hash at the default bank threshold.

mod common;

use std::io::Cursor;

use common::*;
use coverguard::decode::{DecodeLimits, Resolution};
use coverguard::screening::analyse::{analyse, analyse_at};

/// A skimage photo enlarged to `side` px on its longer side, as JPEG q92.
fn enlarged_jpeg(file: &str, side: u32) -> Vec<u8> {
    let image = image::open(skimage_dir().join(file)).unwrap().to_rgb8();
    let scale = f64::from(side) / f64::from(image.width().max(image.height()));
    let (w, h) = (
        (f64::from(image.width()) * scale).round() as u32,
        (f64::from(image.height()) * scale).round() as u32,
    );
    let large = image::imageops::resize(&image, w, h, image::imageops::FilterType::Triangle);
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(Cursor::new(&mut jpeg), 92)
        .encode_image(&large)
        .unwrap();
    jpeg
}

#[test]
fn large_jpeg_is_screened_at_half_scale_in_its_own_coordinates() {
    let limits = DecodeLimits::default();
    // The colour chart: the reference finds BUTTOCKS_EXPOSED at 0.83 (a review verdict).
    let jpeg = enlarged_jpeg("color.png", 2400);
    let full = analyse(&jpeg, &limits).unwrap();
    let scaled = analyse_at(&jpeg, &limits, Resolution::FAST).unwrap();
    assert_eq!(scaled.image.width.max(scaled.image.height), 1200);
    assert_eq!(
        (scaled.image.source_width, scaled.image.source_height),
        (full.image.width, full.image.height)
    );

    // PDQ of the half-scale decode drifts (README: Performance), but must still match
    // the full decode's hash at the default threshold of 31.
    let distance = scaled.pdq.hash.distance(&full.pdq.hash);
    assert!(distance <= 31, "PDQ moved {distance} bits");

    let mut screener = screener();
    let full_record = screener.finish("full", &full).unwrap();
    let scaled_record = screener.finish("scaled", &scaled).unwrap();
    assert_eq!(full_record.decode_scale, 1);
    assert_eq!(scaled_record.decode_scale, 2);
    assert_eq!(
        (scaled_record.width, scaled_record.height),
        (full_record.width, full_record.height)
    );
    assert_eq!(scaled_record.verdict, full_record.verdict);

    // The explicit finding is the same, with its box in the full image's pixels.
    let finding = |record: &coverguard::screening::record::ScreeningRecord| {
        record
            .detections
            .iter()
            .find(|d| d.label == "BUTTOCKS_EXPOSED")
            .cloned()
            .expect("BUTTOCKS_EXPOSED found")
    };
    let (a, b) = (finding(&full_record), finding(&scaled_record));
    assert!(
        (a.score - b.score).abs() < 0.05,
        "{} vs {}",
        a.score,
        b.score
    );
    let overlap = iou(a.bbox.map(|v| v as f64), b.bbox.map(|v| v as f64));
    assert!(
        overlap > 0.9,
        "boxes {:?} and {:?} overlap {overlap}",
        a.bbox,
        b.bbox
    );
}

#[test]
fn reference_sized_images_are_decoded_in_full_even_on_the_fast_path() {
    // Every oracle photo is under 2047 px, so even the fast path decodes all of it.
    let limits = DecodeLimits::default();
    for reference in skimage_reference() {
        let bytes = std::fs::read(skimage_dir().join(&reference.file)).unwrap();
        let full = analyse(&bytes, &limits).unwrap();
        let fast = analyse_at(&bytes, &limits, Resolution::FAST).unwrap();
        assert_eq!(fast.image.scale_denominator(), 1, "{}", reference.file);
        assert_eq!(fast.image.rgb, full.image.rgb, "{}", reference.file);
        assert_eq!(fast.pdq.hash, full.pdq.hash, "{}", reference.file);
    }
}
