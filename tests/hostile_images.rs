//! Decompression bombs and oversized metadata: refused before their memory is spent, and
//! what is accepted stays within what its declared size allows. Animations, which screening
//! composites frame by frame, are refused past their frame, pixel and view budgets, at a
//! cost those budgets bound rather than the file's frame count.
//!
//! Memory is measured around each decode (or screening analysis) by a counting global
//! allocator (Rust's heap) and by the process's peak resident memory, reset before each
//! run (which also sees libjpeg's C allocations). This file holds one test, so nothing else
//! allocates meanwhile. The table printed with `--nocapture` is the evidence.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use coverguard::decode::{decode, DecodeLimits, DEFAULT_MAX_VIEWS};
use coverguard::screening::analyse::analyse;
use image::{ExtendedColorType, ImageEncoder};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
            PEAK.fetch_max(now, Ordering::SeqCst);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            if new_size > layout.size() {
                let now = CURRENT.fetch_add(new_size - layout.size(), Ordering::SeqCst)
                    + (new_size - layout.size());
                PEAK.fetch_max(now, Ordering::SeqCst);
            } else {
                CURRENT.fetch_sub(layout.size() - new_size, Ordering::SeqCst);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The image's size, or why it was refused.
type Outcome = Result<(u32, u32), &'static str>;

/// A way of reading an image: [`decoded`] or [`screened`].
type Run = fn(&[u8], &DecodeLimits) -> Outcome;

/// The reference decoding alone (the first frame): its size, or the error kind.
fn decoded(bytes: &[u8], limits: &DecodeLimits) -> Outcome {
    decode(bytes, limits)
        .map(|image| (image.width, image.height))
        .map_err(|e| e.kind())
}

/// Which limit an `animation_budget` refusal names, as its message does.
const BUDGETS: [(&str, &str); 3] = [
    ("(max_frames)", "animation_budget: max_frames"),
    (
        "(max_animation_pixels)",
        "animation_budget: max_animation_pixels",
    ),
    ("(max_views)", "animation_budget: max_views"),
];

/// Screening's analysis: the reference decoding, then every frame and rendering a viewer is
/// shown, each hashed. Its size, or the error kind, with the limit a budget refusal hit.
fn screened(bytes: &[u8], limits: &DecodeLimits) -> Outcome {
    analyse(bytes, limits)
        .map(|analysed| (analysed.image.width, analysed.image.height))
        .map_err(|e| {
            let message = e.to_string();
            match e.kind() {
                "animation_budget" => BUDGETS
                    .iter()
                    .find(|(limit, _)| message.contains(limit))
                    .map_or("animation_budget", |&(_, named)| named),
                kind => kind,
            }
        })
}

/// What one run cost: heap bytes above what was allocated before it (Rust's allocations),
/// resident memory above the process's before it (also libjpeg's own, which is C's
/// `malloc`), and the outcome.
struct Cost {
    heap: usize,
    rss: Option<usize>,
    outcome: Outcome,
}

fn measured(bytes: &[u8], limits: &DecodeLimits, run: Run) -> Cost {
    // Writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS.
    let rss_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let rss_before = rss_kib("VmRSS:");
    let before = CURRENT.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let outcome = run(bytes, limits);
    let heap = PEAK.load(Ordering::SeqCst) - before;
    let rss = match (rss_reset, rss_before, rss_kib("VmHWM:")) {
        (true, Some(before), Some(peak)) => Some(peak.saturating_sub(before) * 1024),
        _ => None,
    };
    Cost { heap, rss, outcome }
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut chunk = u32::try_from(data.len()).unwrap().to_be_bytes().to_vec();
    chunk.extend_from_slice(kind);
    chunk.extend_from_slice(data);
    chunk.extend_from_slice(&crc32(&chunk[4..]).to_be_bytes());
    chunk
}

/// A gray PNG of zeros, compressed as hard as the encoder can.
fn zero_png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new_with_quality(
        &mut out,
        image::codecs::png::CompressionType::Best,
        image::codecs::png::FilterType::NoFilter,
    )
    .write_image(
        &vec![0u8; (width * height) as usize],
        width,
        height,
        ExtendedColorType::L8,
    )
    .unwrap();
    out
}

/// `png` with IHDR rewritten to declare another size (CRC kept valid).
fn png_declaring(png: &[u8], width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = png[16..29].to_vec();
    ihdr[0..4].copy_from_slice(&width.to_be_bytes());
    ihdr[4..8].copy_from_slice(&height.to_be_bytes());
    let mut out = png[..8].to_vec();
    out.extend(png_chunk(b"IHDR", &ihdr));
    out.extend_from_slice(&png[33..]);
    out
}

fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
        .write_image(
            &vec![90u8; (width * height * 3) as usize],
            width,
            height,
            ExtendedColorType::Rgb8,
        )
        .unwrap();
    out
}

/// `jpeg` with `count` APP1 Exif segments of the largest size a segment can have, each an
/// IFD claiming 65535 entries.
fn jpeg_with_exif_flood(jpeg: &[u8], count: usize) -> Vec<u8> {
    let mut payload = b"Exif\0\0MM\0\x2a\0\0\0\x08\xff\xff".to_vec();
    payload.resize(65533, 0x41);
    let mut out = jpeg[..2].to_vec();
    for _ in 0..count {
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&u16::try_from(payload.len() + 2).unwrap().to_be_bytes());
        out.extend_from_slice(&payload);
    }
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A JPEG whose SOF declares `width` x `height`.
fn jpeg_declaring(jpeg: &[u8], width: u16, height: u16) -> Vec<u8> {
    let mut out = jpeg.to_vec();
    let sof = out.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    out[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    out[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    out
}

/// A lossless WebP header declaring `width` x `height`, then junk.
fn webp_declaring(width: u32, height: u32) -> Vec<u8> {
    let bits = (width - 1) | ((height - 1) << 14);
    let mut vp8l = vec![0x2f];
    vp8l.extend_from_slice(&bits.to_le_bytes());
    vp8l.extend_from_slice(&[0u8; 64]);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&u32::try_from(4 + 8 + vp8l.len()).unwrap().to_le_bytes());
    out.extend_from_slice(b"WEBPVP8L");
    out.extend_from_slice(&u32::try_from(vp8l.len()).unwrap().to_le_bytes());
    out.extend(vp8l);
    out
}

fn zero_webp(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut out)
        .write_image(
            &vec![0u8; (width * height * 3) as usize],
            width,
            height,
            ExtendedColorType::Rgb8,
        )
        .unwrap();
    out
}

/// An animated GIF of `frames` flat frames cycling through `colours` colours (at most 251).
fn gif(width: u16, height: u16, frames: usize, colours: usize) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = image::codecs::gif::GifEncoder::new(&mut out);
        for i in 0..frames {
            let frame = image::RgbaImage::from_pixel(
                u32::from(width),
                u32::from(height),
                image::Rgba([(i % colours) as u8, 7, 9, 255]),
            );
            encoder.encode_frame(image::Frame::new(frame)).unwrap();
        }
    }
    out
}

fn gif_declaring(gif: &[u8], width: u16, height: u16) -> Vec<u8> {
    let mut out = gif.to_vec();
    out[6..8].copy_from_slice(&width.to_le_bytes());
    out[8..10].copy_from_slice(&height.to_le_bytes());
    out
}

fn rss_kib(field: &str) -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn bombs_are_refused_before_their_memory_is_spent_and_accepted_images_stay_bounded() {
    let limits = DecodeLimits::default();
    const MIB: usize = 1024 * 1024;
    let png_4k = zero_png(4000, 4000);
    let small_jpeg = jpeg(64, 48);
    // 32 colours: frame 0's is the reference decoding, the other 31 are views, within
    // max_views, so it is the frame count that screening refuses.
    let many_frames = gif(64, 64, 3000, 32);
    // 1000 x 1000 frames (1 MP each, a few MB of canvas) alternating two colours: one view,
    // so it is the 101st frame's pixels that go over max_animation_pixels (100 M).
    let many_pixels = gif(1000, 1000, 120, 2);
    // 100 distinct 640 x 640 frames: the 33rd distinct picture is over max_views.
    let many_views = gif(640, 640, 100, 100);
    // Screening holds a few whole-canvas buffers at once: the reference decoding's RGB
    // (3 bytes a pixel), the compositor's canvas and frame (RGBA, 4 each), the frame handed
    // over (4) and its RGB (3), and PDQ's float planes (4 each): 32 bytes a canvas pixel
    // covers them with room. Each view keeps its RGB for the model (3 bytes a pixel), and
    // the hashers' fixed buffers fit in 1 MiB. Nothing in it grows with the frame count.
    let screening_ceiling =
        |width: usize, height: usize, views: usize| width * height * (32 + 3 * views) + MIB;

    // (name, bytes, how it is read, expected outcome, heap ceiling)
    let refused = |kind: &'static str| Err::<(u32, u32), &'static str>(kind);
    type Case = (&'static str, Vec<u8>, Run, Outcome, usize);
    let cases: Vec<Case> = vec![
        // Declared sizes over max_pixels / max_side: refused from the header, nothing allocated
        // for pixels (a 100000² RGB buffer would be 28 GiB).
        (
            "PNG declaring 100000x100000",
            png_declaring(&png_4k, 100_000, 100_000),
            decoded,
            refused("dimensions"),
            MIB,
        ),
        (
            "PNG deflate bomb 8000x8000 (64 MP) in a small file",
            png_declaring(&zero_png(8000, 8000), 8000, 8000),
            decoded,
            refused("dimensions"),
            MIB,
        ),
        (
            "JPEG declaring 65000x65000",
            jpeg_declaring(&small_jpeg, 65_000, 65_000),
            decoded,
            refused("dimensions"),
            MIB,
        ),
        (
            "WebP declaring 16384x16384",
            webp_declaring(16_384, 16_384),
            decoded,
            refused("dimensions"),
            MIB,
        ),
        (
            "GIF screen 65535x65535",
            gif_declaring(&gif(8, 8, 1, 1), 65_535, 65_535),
            decoded,
            refused("dimensions"),
            MIB,
        ),
        // Deeply compressed but within the limits: decoded, at a cost bounded by the declared
        // pixels (the gray plane and the RGB output), not by the compression ratio.
        (
            "PNG deflate bomb 4000x4000 (16 MP)",
            png_4k.clone(),
            decoded,
            Ok((4000, 4000)),
            16_000_000 * 5 + 8 * MIB,
        ),
        (
            "WebP lossless bomb 4000x4000 (16 MP)",
            zero_webp(4000, 4000),
            decoded,
            Ok((4000, 4000)),
            16_000_000 * 8 + 8 * MIB,
        ),
        // Thousands of frames: the reference decoding is the first alone.
        (
            "GIF 3000 frames of 64x64, decoded",
            many_frames.clone(),
            decoded,
            Ok((64, 64)),
            MIB,
        ),
        // Screening composites every frame, one at a time, and refuses an animation over
        // budget as soon as it is: at frame 1001, at the frame whose pixels pass 100 M, at
        // the 33rd distinct picture. Memory is one frame's buffers and the views kept.
        (
            "GIF 3000 frames of 64x64, screened",
            many_frames.clone(),
            screened,
            refused("animation_budget: max_frames"),
            screening_ceiling(64, 64, 31),
        ),
        (
            "GIF 120 frames of 1000x1000, screened",
            many_pixels.clone(),
            screened,
            refused("animation_budget: max_animation_pixels"),
            screening_ceiling(1000, 1000, 1),
        ),
        (
            "GIF 100 distinct frames of 640x640, screened",
            many_views,
            screened,
            refused("animation_budget: max_views"),
            screening_ceiling(640, 640, DEFAULT_MAX_VIEWS as usize),
        ),
        // Oversized EXIF: 400 APP1 segments of 64 KiB each claiming 65535 IFD entries
        // (26 MB): held at most once, as the input itself is.
        (
            "JPEG with 400 x 64 KiB EXIF",
            jpeg_with_exif_flood(&small_jpeg, 400),
            decoded,
            Ok((64, 48)),
            30 * MIB,
        ),
    ];

    println!(
        "{:<52} {:>10} {:>12} {:>12} {:>12}  outcome",
        "input", "file", "heap peak", "RSS peak", "ceiling"
    );
    // A first pass faults in the decoders' code pages, which would otherwise count as
    // resident memory of whichever input reached that code first.
    for (_, bytes, run, _, _) in &cases {
        let _ = run(bytes, &limits);
    }
    for (name, bytes, run, expected, ceiling) in &cases {
        let cost = measured(bytes, &limits, *run);
        println!(
            "{name:<52} {:>7} KB {:>9} KB {:>9} KB {:>9} KB  {:?}",
            bytes.len() / 1000,
            cost.heap / 1000,
            cost.rss.map_or("?".to_string(), |r| (r / 1000).to_string()),
            ceiling / 1000,
            cost.outcome
        );
        assert_eq!(&cost.outcome, expected, "{name}");
        assert!(
            cost.heap <= *ceiling,
            "{name}: {} heap bytes, over {ceiling}",
            cost.heap
        );
        if let Some(rss) = cost.rss {
            assert!(
                rss <= *ceiling,
                "{name}: resident memory grew {rss} bytes, over {ceiling}"
            );
        }
    }
    // The GIF's cost does not grow with its frames: the first frame alone costs the same.
    let one_frame = measured(&gif(64, 64, 1, 1), &limits, decoded).heap;
    let all_frames = measured(&many_frames, &limits, decoded).heap;
    assert!(
        all_frames <= one_frame + 64 * 1024,
        "{all_frames} vs {one_frame}"
    );

    // Nor does screening's, up to the frame that goes over budget: a short animation of the
    // same frames, which is accepted, costs as much.
    for (refused_file, short) in [
        (&many_frames, gif(64, 64, 40, 32)),
        (&many_pixels, gif(1000, 1000, 10, 2)),
    ] {
        let accepted = measured(&short, &limits, screened);
        assert!(accepted.outcome.is_ok(), "{:?}", accepted.outcome);
        let refused = measured(refused_file, &limits, screened).heap;
        println!(
            "screening refused at the budget: {} KB heap; a short run of its frames: {} KB",
            refused / 1000,
            accepted.heap / 1000
        );
        assert!(
            refused <= accepted.heap + 64 * 1024,
            "{refused} vs {}",
            accepted.heap
        );
    }

    // Lower limits refuse the accepted bombs too, before their pixels are allocated.
    let tight = DecodeLimits {
        max_pixels: 4_000_000,
        ..DecodeLimits::default()
    };
    let cost = measured(&png_4k, &tight, decoded);
    assert_eq!(cost.outcome, Err("dimensions"));
    assert!(cost.heap < MIB, "{}", cost.heap);
}
