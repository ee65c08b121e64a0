//! Where the text gate's time goes, image by image: the pass over the pixels (rows of
//! glyphs and the windows' pixels) and each detector window, with the window's size at
//! the detector's scale, the size it is shown at, and the boxes found; then the pass's
//! parts summed over the set (the grey image, the colour planes, the rows found in
//! each). Best of five.
//!
//! ```sh
//! cargo run --release --example gate_costs -- [DIR]
//! ```
//!
//! Without DIR, the scikit-image photos (`cargo run -- models fetch --test-data`); with
//! it, the photos in DIR (`scripts/gate-photos/collect.sh DIR`). Each is re-encoded at a
//! long side of 640 px, as `benches/ocr.rs` does.

#[path = "../benches/support/corpus.rs"]
mod corpus;

use std::time::Instant;

use anyhow::Context;
use coverguard::decode::{self, DecodeLimits};
use coverguard::provision::{self, Cache};
use coverguard::text::ocr::{gate, planes, GateParams, OcrEngine, Reading};

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

fn main() -> anyhow::Result<()> {
    let cache = Cache::from_env()?;
    let provisioned = provision::provision(&cache, None)?;
    let models = provision::provision_ocr(&cache)?;
    let gate = GateParams::default();
    let reading = Reading::Gated(gate.clone());
    let mut engine = OcrEngine::load(&models, &provisioned.runtime_library, 1, reading)?;
    let photos = match std::env::args_os().nth(1) {
        Some(dir) => corpus::photos_in(std::path::Path::new(&dir), 640),
        None => corpus::corpus(640),
    };
    let limits = DecodeLimits::default();
    let (mut pixel_total, mut detector_total) = (0.0, 0.0);
    let mut parts = [0.0f64; 4];
    for (name, bytes) in &photos {
        let d = decode::decode(bytes, &limits).with_context(|| name.clone())?;
        let (w, h) = (d.width as usize, d.height as usize);
        let (mut pixel_best, mut detector_best) = (f64::MAX, f64::MAX);
        let mut windows = Vec::new();
        let mut size = None;
        for _ in 0..5 {
            let start = Instant::now();
            let Some(gated) = engine.gate_windows(&d.rgb, w, h, &gate) else {
                break;
            };
            pixel_best = pixel_best.min(ms(start));
            size = Some((gated.width, gated.height));
            let start = Instant::now();
            windows.clear();
            for (r, pixels) in &gated.windows {
                let one = Instant::now();
                let boxes = engine.detect_boxes(pixels)?.len();
                windows.push(format!(
                    "{}x{} as {}x{}: {boxes} boxes, {:.2} ms",
                    r.width(),
                    r.height(),
                    pixels.width,
                    pixels.height,
                    ms(one)
                ));
            }
            detector_best = detector_best.min(ms(start));
        }
        let Some(size) = size else {
            println!("{name:32} too flat to scale: read in full");
            continue;
        };
        for (total, best) in parts.iter_mut().zip(pass_parts(&d.rgb, w, h, size, &gate)) {
            *total += best;
        }
        pixel_total += pixel_best;
        detector_total += detector_best;
        println!("{name:32} pixels {pixel_best:6.2} ms  detector {detector_best:6.2} ms");
        for window in &windows {
            println!("    {window}");
        }
    }
    println!(
        "{} images: pixels {pixel_total:.1} ms, detector {detector_total:.1} ms",
        photos.len()
    );
    let [grey, planes, luma_rows, plane_rows] = parts;
    println!(
        "the pass's parts: grey image {grey:.1} ms, colour planes {planes:.1} ms, \
         rows in the luma {luma_rows:.1} ms, rows in the planes {plane_rows:.1} ms"
    );
    Ok(())
}

/// The best of five of each part of the gate's pass over an image's pixels at the
/// detector's `w` x `h`, as `gate::seeds_in_colour` runs them (both planes looked in, where
/// the gate skips one whose range is under `min_contrast`).
fn pass_parts(
    rgb: &[u8],
    width: usize,
    height: usize,
    (w, h): (usize, usize),
    params: &GateParams,
) -> [f64; 4] {
    let mut best = [f64::MAX; 4];
    for _ in 0..5 {
        let start = Instant::now();
        let grey = planes::grey_at(rgb, width, height, w, h);
        best[0] = best[0].min(ms(start));
        let start = Instant::now();
        let colour = planes::opponents_at(rgb, width, height, w / 2, h / 2);
        best[1] = best[1].min(ms(start));
        let start = Instant::now();
        std::hint::black_box(gate::seeds(&grey, w, h, params));
        best[2] = best[2].min(ms(start));
        let start = Instant::now();
        for plane in &colour {
            std::hint::black_box(gate::seeds(plane, w / 2, h / 2, params));
        }
        best[3] = best[3].min(ms(start));
    }
    best
}
