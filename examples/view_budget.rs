//! What an animation at the default frame budget costs to analyse (decode every frame,
//! composite, fingerprint, PDQ of each distinct view), to size the budget against the
//! request deadline. Inference of the views comes on top (about 9 ms per view on one core).
//!
//! `cargo run --release --example view_budget`

use std::time::Instant;

use coverguard::decode::DecodeLimits;
use coverguard::screening::analyse::analyse;

/// An APNG of `frames` frames of `side` px; frame `i` shows pattern `i % distinct`.
fn apng(side: u32, frames: u32, distinct: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side, side);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    encoder.set_animated(frames, 0).expect("animated");
    let mut writer = encoder.write_header().expect("header");
    for i in 0..frames {
        // Stripes at a different angle per pattern: distinct pictures that compress well.
        let pattern = i % distinct;
        let pixels: Vec<u8> = (0..side * side)
            .flat_map(|p| {
                let (x, y) = (p % side, p / side);
                let v = ((x * (pattern + 1) + y * 3) / 4 % 256) as u8;
                [v, v, 255 - v, 255]
            })
            .collect();
        writer.write_image_data(&pixels).expect("frame");
    }
    writer.finish().expect("finish");
    out
}

fn main() {
    // Whole frames of stripes compress less than real animations (which redraw sub-frames),
    // so the byte cap is lifted here: the frame and pixel budgets are what is measured.
    let limits = DecodeLimits {
        max_bytes: 1 << 30,
        ..DecodeLimits::default()
    };
    println!(
        "limits: max_frames {}, max_animation_pixels {}, max_views {}",
        limits.max_frames, limits.max_animation_pixels, limits.max_views
    );
    for (side, frames, distinct) in [(640, 122, 33), (223, 1000, 33), (640, 1, 1)] {
        let bytes = apng(side, frames, distinct);
        let mut times = Vec::new();
        let mut views = 0;
        for _ in 0..5 {
            let started = Instant::now();
            let analysed = analyse(&bytes, &limits).expect("within the budget");
            times.push(started.elapsed().as_secs_f64() * 1e3);
            views = analysed.views.len();
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{frames} frames of {side} px ({} MP decoded), {views} views beyond the first frame: median {:.0} ms (min {:.0}, max {:.0})",
            u64::from(side * side) * u64::from(frames) / 1_000_000,
            times[2],
            times[0],
            times[4]
        );
    }
}
