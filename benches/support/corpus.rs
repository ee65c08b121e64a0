//! The benchmark corpus: the scikit-image sample photos (from the
//! pinned wheel) re-encoded as JPEG q90 with their longest side at a given size.
//! Shared by the `stages` bench and the `scaled_decode` example.

use std::io::Cursor;

use coverguard::provision::{self, Cache};

/// The photos re-encoded with their longest side at `side` px, JPEG quality 90.
pub fn corpus(side: u32) -> Vec<(String, Vec<u8>)> {
    let cache = Cache::from_env().expect("cache");
    let dir = provision::ensure_asset(&cache, "skimage-data")
        .expect("scikit-image photos: run `cargo run -- models fetch --test-data`")
        .join("skimage/data");
    photos_in(&dir, side)
}

/// The photos in `dir` (PNG, JPEG, WebP) re-encoded as [`corpus`] re-encodes them.
#[allow(dead_code)] // not every bench that includes this module has a second set
pub fn photos_in(dir: &std::path::Path, side: u32) -> Vec<(String, Vec<u8>)> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("photo dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".png") || n.ends_with(".jpg") || n.ends_with(".webp"))
        .collect();
    names.sort();
    names
        .into_iter()
        .filter_map(|name| {
            let image = image::open(dir.join(&name)).ok()?.to_rgb8();
            // Photos only: the tiny test patterns are not cover art.
            if image.width().min(image.height()) < 128 {
                return None;
            }
            let scale = side as f64 / image.width().max(image.height()) as f64;
            let (w, h) = (
                ((image.width() as f64 * scale).round() as u32).max(1),
                ((image.height() as f64 * scale).round() as u32).max(1),
            );
            let resized =
                image::imageops::resize(&image, w, h, image::imageops::FilterType::Triangle);
            let mut jpeg = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(Cursor::new(&mut jpeg), 90)
                .encode_image(&resized)
                .ok()?;
            Some((name, jpeg))
        })
        .collect()
}
