//! Writes the starting corpus of each fuzz target into `fuzz/seeds/<target>/`: small valid
//! inputs of every shape the parsers accept, so the fuzzer starts past the magic bytes.
//! Run once, then fuzz and minimise (fuzz/README.md); the minimised corpus is committed.
//!
//! `cargo run --example fuzz_seeds`

use std::path::Path;

use image::{ExtendedColorType, ImageEncoder};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn gradient(width: u32, height: u32, channels: u32) -> Vec<u8> {
    (0..width * height * channels)
        .map(|i| ((i * 7) ^ (i / (width * channels) * 13)) as u8)
        .collect()
}

fn png(
    width: u32,
    height: u32,
    color: ExtendedColorType,
    channels: u32,
    bytes_per_sample: u32,
) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(
            &gradient(width, height, channels * bytes_per_sample),
            width,
            height,
            color,
        )
        .unwrap();
    out
}

fn main() {
    // decode: each format and its common variants, a few pixels each.
    for (name, color, channels, bps) in [
        ("gray.png", ExtendedColorType::L8, 1, 1),
        ("gray_alpha.png", ExtendedColorType::La8, 2, 1),
        ("rgb.png", ExtendedColorType::Rgb8, 3, 1),
        ("rgba.png", ExtendedColorType::Rgba8, 4, 1),
        ("rgb16.png", ExtendedColorType::Rgb16, 3, 2),
    ] {
        write("decode", name, &png(9, 7, color, channels, bps));
    }
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80)
        .write_image(&gradient(17, 9, 3), 17, 9, ExtendedColorType::Rgb8)
        .unwrap();
    write("decode", "rgb.jpg", &jpeg);
    // The same JPEG with an EXIF APP1 (orientation 6) after SOI.
    let exif: &[u8] = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0";
    let mut with_exif = vec![0xFF, 0xD8, 0xFF, 0xE1];
    with_exif.extend_from_slice(&u16::try_from(exif.len() + 2).unwrap().to_be_bytes());
    with_exif.extend_from_slice(exif);
    with_exif.extend_from_slice(&jpeg[2..]);
    write("decode", "exif.jpg", &with_exif);
    let mut gray_jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut gray_jpeg, 80)
        .write_image(&gradient(8, 8, 1), 8, 8, ExtendedColorType::L8)
        .unwrap();
    write("decode", "gray.jpg", &gray_jpeg);
    let mut webp = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut webp)
        .write_image(&gradient(9, 7, 4), 9, 7, ExtendedColorType::Rgba8)
        .unwrap();
    write("decode", "lossless.webp", &webp);
    let mut gif = Vec::new();
    {
        let mut encoder = image::codecs::gif::GifEncoder::new(&mut gif);
        for shift in 0..2u8 {
            let frame = image::RgbaImage::from_fn(6, 5, |x, y| {
                image::Rgba([x as u8 * 40 + shift, y as u8 * 50, 90, 255])
            });
            encoder.encode_frame(image::Frame::new(frame)).unwrap();
        }
    }
    write("decode", "two_frames.gif", &gif);
    for path in [
        "misc-images/wee.jpg",
        "misc-images/small.jpg",
        "bridge-mods/square-128x128.jpg",
    ] {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/pdq-conformance")
            .join(path);
        write(
            "decode",
            &path.replace('/', "_"),
            &std::fs::read(src).unwrap(),
        );
    }

    gif_animation_seeds();
    apng_seeds();
    webp_animation_seeds();
    translucent_still_seeds();

    // pdq: size bytes, then pixels.
    write("pdq", "flat_64x64", &[63, 63, 128, 128, 128]);
    let mut ramp = vec![99, 40];
    ramp.extend(gradient(100, 41, 3));
    write("pdq", "ramp_100x41", &ramp);
    write("pdq", "tiny_3x3", &[2, 2, 1, 2, 3, 4, 5, 6]);

    // bank_file: every signal type, ids, comments, a CRLF line.
    write(
        "bank_file",
        "mixed.txt",
        concat!(
            "# HMA export\n",
            "pdq f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22 case-1\n",
            "md5 d41d8cd98f00b204e9800998ecf8427e\n",
            "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 x # note\r\n",
            "\n"
        )
        .as_bytes(),
    );

    // manifest: CSV with every column, quoting, and JSON lines.
    write(
        "manifest",
        "items.csv",
        b"artwork_id,url,path,owner_id,surface,owner_is_minor,playlist_track_count\n\
          a1,https://cdn.example/a1.jpg,,o1,playlist_cover,false,12\n\
          a2,,art/a2.png,o2,track_cover,,\n\
          \"a,3\",,\"dir/x\"\"y.png\",o3,,true,0\n",
    );
    write(
        "manifest",
        "items.jsonl",
        b"{\"artwork_id\":\"a1\",\"url\":\"https://cdn.example/a1.jpg\",\"owner_id\":\"o1\"}\n\
          {\"artwork_id\":\"a2\",\"path\":\"art/a2.png\",\"context\":{\"surface\":\"playlist_cover\",\"owner_is_minor\":true}}\n",
    );

    // request_body: selector byte (0 JSON, 1 image/png, 2 octet-stream), query, NUL, body.
    write(
        "request_body",
        "screen_json",
        b"\0\0{\"url\":\"https://cdn.example/a.png\",\"artwork_id\":\"a\",\"owner_id\":\"o\",\"context\":{\"surface\":\"playlist_cover\",\"owner_is_minor\":true,\"playlist_track_count\":3},\"deadline_ms\":500}",
    );
    let mut raw =
        b"\x01artwork_id=a&owner_id=o&owner_is_minor=1&playlist_track_count=4&deadline_ms=300\0"
            .to_vec();
    raw.extend_from_slice(&png(2, 2, ExtendedColorType::Rgb8, 3, 1));
    write("request_body", "screen_raw", &raw);
    write(
        "request_body",
        "login",
        b"\0\0{\"username\":\"r1\",\"password\":\"pw\"}",
    );
    write(
        "request_body",
        "decision",
        b"\0\0{\"decision\":\"confirm\",\"reason_code\":\"csam\",\"bank\":\"known-bad\",\"note\":\"n\"}",
    );
    write(
        "request_body",
        "bank",
        b"\0\0{\"name\":\"b\",\"signal_types\":[\"pdq\",\"md5\"],\"category\":\"csam\",\"pdq_threshold\":31,\"action\":\"block\"}",
    );
}

// ---------------------------------------------------------------------------------
// Animations and translucent stills: seeds that reach every branch of the frame
// compositing (src/decode/frames.rs) and of the views (src/screening/views.rs).
// ---------------------------------------------------------------------------------

/// The TIFF body of an EXIF block with orientation 6 (rotate 90): PNG's eXIf and WebP's
/// EXIF chunk carry it without the JPEG "Exif\0\0" prefix.
const EXIF_ROTATE_90: &[u8] = b"MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0";

/// A GIF frame: its rectangle, disposal method (0 unspecified, 1 keep, 2 background,
/// 3 previous), transparent index, optional 4-colour local table, and palette indices
/// (0..4), one per pixel in the order they are stored.
struct GifFrame {
    rect: (u16, u16, u16, u16),
    disposal: u8,
    transparent: Option<u8>,
    local_palette: Option<[u8; 12]>,
    interlaced: bool,
    indices: Vec<u8>,
}

impl GifFrame {
    fn new(rect: (u16, u16, u16, u16), disposal: u8, transparent: Option<u8>, seed: u8) -> Self {
        let pixels = usize::from(rect.2) * usize::from(rect.3);
        GifFrame {
            rect,
            disposal,
            transparent,
            local_palette: None,
            interlaced: false,
            indices: (0..pixels)
                .map(|i| (i as u8).wrapping_mul(3).wrapping_add(seed) % 4)
                .collect(),
        }
    }
}

/// LZW image data of 2-bit indices, every code a literal: a clear code after every two
/// literals keeps the code width at 3 bits, so no table logic is needed to write it.
fn gif_lzw(indices: &[u8]) -> Vec<u8> {
    const CLEAR: u32 = 4;
    const END: u32 = 5;
    let mut codes = vec![CLEAR];
    for pair in indices.chunks(2) {
        codes.extend(pair.iter().map(|&i| u32::from(i)));
        codes.push(CLEAR);
    }
    codes.push(END);
    let (mut packed, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for code in codes {
        acc |= code << bits;
        bits += 3;
        while bits >= 8 {
            packed.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    if bits > 0 {
        packed.push(acc as u8);
    }
    let mut out = vec![2]; // minimum code size
    for block in packed.chunks(255) {
        out.push(block.len() as u8);
        out.extend_from_slice(block);
    }
    out.push(0);
    out
}

/// A GIF89a written by hand, so each frame's disposal and transparency are exactly as
/// given (`image`'s encoder always disposes to background).
fn gif(width: u16, height: u16, frames: &[GifFrame]) -> Vec<u8> {
    const PALETTE: [u8; 12] = [0, 0, 0, 255, 255, 255, 220, 40, 40, 30, 90, 200];
    let mut out = b"GIF89a".to_vec();
    out.extend_from_slice(&width.to_le_bytes());
    out.extend_from_slice(&height.to_le_bytes());
    // Global table of 4 colours; background index 1 (white), which browsers ignore.
    out.extend_from_slice(&[0x91, 1, 0]);
    out.extend_from_slice(&PALETTE);
    out.extend_from_slice(b"\x21\xFF\x0BNETSCAPE2.0\x03\x01\0\0\0");
    for frame in frames {
        let flags = (frame.disposal << 2) | u8::from(frame.transparent.is_some());
        out.extend_from_slice(&[0x21, 0xF9, 4, flags, 5, 0]);
        out.extend_from_slice(&[frame.transparent.unwrap_or(0), 0]);
        out.push(0x2C);
        let (left, top, w, h) = frame.rect;
        for v in [left, top, w, h] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let mut packed = if frame.interlaced { 0x40 } else { 0 };
        if frame.local_palette.is_some() {
            packed |= 0x81;
        }
        out.push(packed);
        if let Some(palette) = frame.local_palette {
            out.extend_from_slice(&palette);
        }
        out.extend(gif_lzw(&frame.indices));
    }
    out.push(0x3B);
    out
}

fn gif_animation_seeds() {
    let f = GifFrame::new;
    write(
        "decode",
        "anim_gif_three_frames.gif",
        &gif(
            6,
            5,
            &[
                f((0, 0, 6, 5), 1, None, 0),
                f((0, 0, 6, 5), 1, None, 1),
                f((0, 0, 6, 5), 0, None, 2),
            ],
        ),
    );
    write(
        "decode",
        "anim_gif_partial_offsets.gif",
        &gif(
            8,
            6,
            &[
                f((0, 0, 8, 6), 1, None, 0),
                f((4, 3, 3, 2), 1, None, 1),
                f((1, 1, 2, 4), 1, None, 2),
                f((7, 5, 1, 1), 1, None, 3),
            ],
        ),
    );
    // Each disposal after an opaque first frame, with transparent pixels in the partial
    // frames so what lies beneath them shows.
    for (name, disposal) in [
        ("anim_gif_dispose_keep.gif", 1),
        ("anim_gif_dispose_background.gif", 2),
        ("anim_gif_dispose_previous.gif", 3),
    ] {
        write(
            "decode",
            name,
            &gif(
                8,
                6,
                &[
                    f((0, 0, 8, 6), 1, None, 0),
                    f((2, 1, 4, 3), disposal, Some(2), 1),
                    f((3, 2, 4, 3), disposal, Some(0), 2),
                    f((0, 0, 3, 3), 1, Some(3), 3),
                ],
            ),
        );
    }
    write(
        "decode",
        "anim_gif_dispose_previous_first.gif",
        &gif(
            8,
            6,
            &[
                f((1, 1, 4, 3), 3, Some(1), 0),
                f((3, 2, 5, 4), 2, None, 1),
                f((0, 0, 8, 6), 3, Some(0), 2),
            ],
        ),
    );
    write(
        "decode",
        "anim_gif_transparent_single.gif",
        &gif(7, 5, &[f((0, 0, 7, 5), 0, Some(1), 0)]),
    );
    write(
        "decode",
        "anim_gif_partial_single.gif",
        &gif(9, 7, &[f((2, 2, 4, 3), 1, None, 1)]),
    );
    // Two frames opaque but for a corner pixel each: the small-mask rendering.
    let corners = |seed| {
        let mut frame = f((0, 0, 10, 10), 1, Some(3), seed);
        for i in &mut frame.indices {
            *i %= 3;
        }
        frame.indices[0] = 3;
        frame.indices[99] = 3;
        frame
    };
    let rounded = [corners(0), corners(1)];
    write(
        "decode",
        "anim_gif_rounded_corners.gif",
        &gif(10, 10, &rounded),
    );
    let mut local = f((1, 0, 5, 6), 2, Some(0), 1);
    local.local_palette = Some([10, 200, 10, 250, 250, 0, 0, 0, 0, 128, 0, 128]);
    local.interlaced = true;
    write(
        "decode",
        "anim_gif_local_palette_interlaced.gif",
        &gif(6, 6, &[f((0, 0, 6, 6), 1, None, 0), local]),
    );
    // A frame larger than the screen after a valid first one.
    write(
        "decode",
        "anim_gif_frame_past_screen.gif",
        &gif(
            6,
            4,
            &[f((0, 0, 6, 4), 1, None, 0), f((4, 2, 5, 5), 1, None, 1)],
        ),
    );
    // More distinct frames than the fuzz target's 8 views.
    let many: Vec<GifFrame> = (0..12)
        .map(|i| f((i % 4, i / 4, 1, 1), 1, None, (i % 3) as u8 + 1))
        .collect();
    write("decode", "anim_gif_over_max_views.gif", &gif(4, 3, &many));
    // 65 frames: one over the fuzz target's max_frames.
    let long: Vec<GifFrame> = (0..65)
        .map(|i| f((i % 2, 0, 1, 1), 1, None, (i % 4) as u8))
        .collect();
    write("decode", "anim_gif_over_max_frames.gif", &gif(2, 1, &long));
    // Five tiny frames on a 1024 x 1024 screen: past max_animation_pixels (4 Mi) on the
    // fifth, though the file is a few hundred bytes.
    let wide: Vec<GifFrame> = (0..5)
        .map(|i| f((i * 100, i * 100, 2, 2), 1, None, i as u8))
        .collect();
    write(
        "decode",
        "anim_gif_over_pixel_budget.gif",
        &gif(1024, 1024, &wide),
    );
}

/// An APNG frame: its rectangle on the canvas, and how it is disposed of and blended.
struct ApngFrame {
    rect: (u32, u32, u32, u32),
    dispose: png::DisposeOp,
    blend: png::BlendOp,
}

fn apng_frame(
    rect: (u32, u32, u32, u32),
    dispose: png::DisposeOp,
    blend: png::BlendOp,
) -> ApngFrame {
    ApngFrame {
        rect,
        dispose,
        blend,
    }
}

/// An APNG's pixel format and the chunks that go with it.
struct ApngFormat {
    color: png::ColorType,
    depth: png::BitDepth,
    palette: Option<Vec<u8>>,
    trns: Option<Vec<u8>>,
    exif: Option<&'static [u8]>,
}

fn apng_format(color: png::ColorType, depth: png::BitDepth) -> ApngFormat {
    ApngFormat {
        color,
        depth,
        palette: None,
        trns: None,
        exif: None,
    }
}

/// Samples for a `width` x `height` image: varied bytes (alpha included, so frames are
/// translucent in places), palette indices kept inside a 16-entry palette.
fn apng_samples(format: &ApngFormat, width: u32, height: u32, seed: u32) -> Vec<u8> {
    let bits = format.color.samples() as u32 * format.depth as u32;
    let row = (width * bits).div_ceil(8);
    (0..row * height)
        .map(|i| {
            let v = (i * 37 + seed * 71) ^ (i / row * 29);
            if format.color == png::ColorType::Indexed && format.depth == png::BitDepth::Eight {
                (v % 16) as u8
            } else {
                v as u8
            }
        })
        .collect()
}

/// An APNG from the `png` crate. With `separate_default` the default image (full size)
/// is outside the animation; otherwise it is `frames[0]`, which must cover the canvas.
fn apng(
    (width, height): (u32, u32),
    format: &ApngFormat,
    separate_default: bool,
    frames: &[ApngFrame],
) -> Vec<u8> {
    let mut info = png::Info::with_size(width, height);
    info.exif_metadata = format.exif.map(Into::into);
    let mut out = Vec::new();
    let mut encoder = png::Encoder::with_info(&mut out, info).unwrap();
    encoder.set_color(format.color);
    encoder.set_depth(format.depth);
    if let Some(palette) = &format.palette {
        encoder.set_palette(palette.clone());
    }
    if let Some(trns) = &format.trns {
        encoder.set_trns(trns.clone());
    }
    encoder
        .set_animated(u32::try_from(frames.len()).unwrap(), 0)
        .unwrap();
    encoder.set_sep_def_img(separate_default).unwrap();
    let mut writer = encoder.write_header().unwrap();
    if separate_default {
        writer
            .write_image_data(&apng_samples(format, width, height, 99))
            .unwrap();
    }
    for (i, frame) in frames.iter().enumerate() {
        let (x, y, w, h) = frame.rect;
        // Position first to (0, 0) so any size fits, then the size, then the position.
        writer.reset_frame_position().unwrap();
        writer.set_frame_dimension(w, h).unwrap();
        writer.set_frame_position(x, y).unwrap();
        writer.set_frame_delay(1, 10).unwrap();
        writer.set_dispose_op(frame.dispose).unwrap();
        writer.set_blend_op(frame.blend).unwrap();
        writer
            .write_image_data(&apng_samples(format, w, h, i as u32))
            .unwrap();
    }
    writer.finish().unwrap();
    out
}

fn apng_seeds() {
    use png::{BitDepth, BlendOp, ColorType, DisposeOp};
    let rgba = apng_format(ColorType::Rgba, BitDepth::Eight);
    let canvas = (8, 6);
    let full = (0, 0, 8, 6);
    // Default image as frame 0, then every disposal, each blend, sub-frames at offsets.
    let mixed = [
        apng_frame(full, DisposeOp::None, BlendOp::Source),
        apng_frame((2, 1, 3, 2), DisposeOp::Background, BlendOp::Over),
        apng_frame((4, 3, 4, 3), DisposeOp::Previous, BlendOp::Over),
        apng_frame((1, 2, 5, 3), DisposeOp::None, BlendOp::Source),
        apng_frame(full, DisposeOp::None, BlendOp::Over),
    ];
    write(
        "decode",
        "anim_apng_default_is_frame_rgba.png",
        &apng(canvas, &rgba, false, &mixed),
    );
    write(
        "decode",
        "anim_apng_separate_default_rgba.png",
        &apng(canvas, &rgba, true, &mixed),
    );
    // A default image outside the animation, and a first frame that only covers part of
    // the canvas (allowed when the default is separate).
    write(
        "decode",
        "anim_apng_separate_default_partial_first.png",
        &apng(
            canvas,
            &apng_format(ColorType::Rgb, BitDepth::Eight),
            true,
            &[
                apng_frame((1, 1, 4, 3), DisposeOp::None, BlendOp::Source),
                apng_frame((3, 2, 5, 4), DisposeOp::Background, BlendOp::Over),
            ],
        ),
    );
    // `Previous` on the first frame counts as `Background`.
    write(
        "decode",
        "anim_apng_dispose_previous_first.png",
        &apng(
            canvas,
            &rgba,
            false,
            &[
                apng_frame(full, DisposeOp::Previous, BlendOp::Source),
                apng_frame((2, 2, 3, 3), DisposeOp::None, BlendOp::Over),
            ],
        ),
    );
    write(
        "decode",
        "anim_apng_dispose_previous_first_separate.png",
        &apng(
            canvas,
            &rgba,
            true,
            &[
                apng_frame((1, 0, 4, 4), DisposeOp::Previous, BlendOp::Over),
                apng_frame((3, 2, 4, 3), DisposeOp::Previous, BlendOp::Over),
                apng_frame(full, DisposeOp::None, BlendOp::Over),
            ],
        ),
    );
    // `Background` then `Previous`: the restore must bring back the cleared region.
    write(
        "decode",
        "anim_apng_dispose_background_then_previous.png",
        &apng(
            canvas,
            &rgba,
            false,
            &[
                apng_frame(full, DisposeOp::None, BlendOp::Source),
                apng_frame((0, 0, 4, 3), DisposeOp::Background, BlendOp::Source),
                apng_frame((0, 0, 6, 4), DisposeOp::Previous, BlendOp::Over),
                apng_frame((2, 2, 2, 2), DisposeOp::None, BlendOp::Over),
            ],
        ),
    );
    // Every colour type and depth the png crate expands to 8-bit grey, grey+alpha, RGB
    // or RGBA before compositing.
    let palette: Vec<u8> = (0..16u8)
        .flat_map(|i| [i * 16, 255 - i * 16, i * 5])
        .collect();
    let mut palette8 = apng_format(ColorType::Indexed, BitDepth::Eight);
    palette8.palette = Some(palette.clone());
    palette8.trns = Some(vec![0, 64, 128, 255, 200]);
    let mut palette4 = apng_format(ColorType::Indexed, BitDepth::Four);
    palette4.palette = Some(palette);
    let mut gray_trns = apng_format(ColorType::Grayscale, BitDepth::Eight);
    gray_trns.trns = Some(vec![0, 7]);
    let mut rgb_trns = apng_format(ColorType::Rgb, BitDepth::Eight);
    rgb_trns.trns = Some(vec![0, 7, 0, 14, 0, 21]);
    let colours = [
        (
            "anim_apng_gray.png",
            apng_format(ColorType::Grayscale, BitDepth::Eight),
        ),
        ("anim_apng_gray_trns.png", gray_trns),
        (
            "anim_apng_gray2.png",
            apng_format(ColorType::Grayscale, BitDepth::Two),
        ),
        (
            "anim_apng_gray16.png",
            apng_format(ColorType::Grayscale, BitDepth::Sixteen),
        ),
        (
            "anim_apng_gray_alpha.png",
            apng_format(ColorType::GrayscaleAlpha, BitDepth::Eight),
        ),
        (
            "anim_apng_gray_alpha16.png",
            apng_format(ColorType::GrayscaleAlpha, BitDepth::Sixteen),
        ),
        (
            "anim_apng_rgb.png",
            apng_format(ColorType::Rgb, BitDepth::Eight),
        ),
        ("anim_apng_rgb_trns.png", rgb_trns),
        (
            "anim_apng_rgb16.png",
            apng_format(ColorType::Rgb, BitDepth::Sixteen),
        ),
        (
            "anim_apng_rgba16.png",
            apng_format(ColorType::Rgba, BitDepth::Sixteen),
        ),
        ("anim_apng_palette_trns.png", palette8),
        ("anim_apng_palette4.png", palette4),
    ];
    let short = [
        apng_frame(full, DisposeOp::Background, BlendOp::Source),
        apng_frame((1, 1, 5, 3), DisposeOp::Previous, BlendOp::Over),
        apng_frame((3, 2, 3, 4), DisposeOp::None, BlendOp::Over),
    ];
    for (name, format) in &colours {
        write("decode", name, &apng(canvas, format, false, &short));
    }
    // EXIF orientation on a non-square canvas: every frame is rotated as the reference.
    let mut rotated = apng_format(ColorType::Rgba, BitDepth::Eight);
    rotated.exif = Some(EXIF_ROTATE_90);
    write(
        "decode",
        "anim_apng_exif_rotate.png",
        &apng(
            (9, 4),
            &rotated,
            true,
            &[
                apng_frame((0, 0, 9, 4), DisposeOp::None, BlendOp::Source),
                apng_frame((5, 1, 4, 3), DisposeOp::Previous, BlendOp::Over),
            ],
        ),
    );
    // More distinct frames than the fuzz target's 8 views.
    let many: Vec<ApngFrame> =
        std::iter::once(apng_frame((0, 0, 4, 3), DisposeOp::None, BlendOp::Source))
            .chain(
                (0..10).map(|i| {
                    apng_frame((i % 4, (i / 4) % 3, 1, 1), DisposeOp::None, BlendOp::Source)
                }),
            )
            .collect();
    write(
        "decode",
        "anim_apng_over_max_views.png",
        &apng(
            (4, 3),
            &apng_format(ColorType::Rgb, BitDepth::Eight),
            false,
            &many,
        ),
    );
}

/// A lossless WebP bitstream (the VP8L chunk, header and padding included) of `rgba`.
fn vp8l_chunk(width: u32, height: u32, rgba: &[u8]) -> Vec<u8> {
    let mut still = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut still)
        .write_image(rgba, width, height, ExtendedColorType::Rgba8)
        .unwrap();
    // RIFF header (12 bytes), then the only chunk.
    assert_eq!(&still[12..16], b"VP8L");
    still[12..].to_vec()
}

fn riff_chunk(name: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = name.to_vec();
    out.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_le_bytes());
    out.extend_from_slice(payload);
    if payload.len() % 2 == 1 {
        out.push(0);
    }
    out
}

fn le24(v: u32) -> [u8; 3] {
    let b = v.to_le_bytes();
    [b[0], b[1], b[2]]
}

/// An animated WebP frame: offset (even), size, the ANMF flags byte (bit 1: do not
/// blend, bit 0: dispose to background after display), and whether every pixel is opaque.
struct WebpFrame {
    rect: (u32, u32, u32, u32),
    flags: u8,
    opaque: bool,
}

/// An animated WebP written by hand (`image` has no animated WebP encoder): VP8X, ANIM,
/// optional EXIF, then one ANMF per frame holding a lossless bitstream.
fn animated_webp(
    (width, height): (u32, u32),
    alpha: bool,
    exif: Option<&[u8]>,
    frames: &[WebpFrame],
) -> Vec<u8> {
    let mut flags = 0x02; // animation
    if alpha {
        flags |= 0x10;
    }
    if exif.is_some() {
        flags |= 0x08;
    }
    let mut vp8x = vec![flags, 0, 0, 0];
    vp8x.extend_from_slice(&le24(width - 1));
    vp8x.extend_from_slice(&le24(height - 1));
    let mut body = b"WEBP".to_vec();
    body.extend(riff_chunk(b"VP8X", &vp8x));
    // Background colour (BGRA) and loop count: hints that browsers ignore.
    body.extend(riff_chunk(b"ANIM", &[40, 200, 120, 255, 0, 0]));
    for (i, frame) in frames.iter().enumerate() {
        let (x, y, w, h) = frame.rect;
        let rgba: Vec<u8> = gradient(w, h, 4)
            .iter()
            .enumerate()
            .map(|(j, v)| {
                if frame.opaque && j % 4 == 3 {
                    255
                } else {
                    v.wrapping_add((i as u8).wrapping_mul(50))
                        .wrapping_add(j as u8)
                }
            })
            .collect();
        let mut anmf = Vec::new();
        for v in [x / 2, y / 2, w - 1, h - 1, 80] {
            anmf.extend_from_slice(&le24(v));
        }
        anmf.push(frame.flags);
        anmf.extend(vp8l_chunk(w, h, &rgba));
        body.extend(riff_chunk(b"ANMF", &anmf));
    }
    if let Some(exif) = exif {
        body.extend(riff_chunk(b"EXIF", exif));
    }
    riff_chunk(b"RIFF", &body)
}

fn webp_animation_seeds() {
    let frame = |rect, flags| WebpFrame {
        rect,
        flags,
        opaque: false,
    };
    // Blend and no-blend, dispose and keep, frames at offsets on an 8 x 6 canvas.
    let mixed = [
        frame((0, 0, 8, 6), 0x00),
        frame((2, 2, 4, 2), 0x01),
        frame((4, 2, 3, 3), 0x02),
        frame((0, 0, 5, 6), 0x03),
        frame((6, 4, 2, 2), 0x00),
    ];
    write(
        "decode",
        "anim_webp_blend_dispose.webp",
        &animated_webp((8, 6), true, None, &mixed),
    );
    // Without the alpha flag the decoder hands out RGB canvases.
    write(
        "decode",
        "anim_webp_no_alpha_flag.webp",
        &animated_webp((8, 6), false, None, &mixed[..3]),
    );
    write(
        "decode",
        "anim_webp_single_partial_frame.webp",
        &animated_webp((7, 5), true, None, &[frame((2, 2, 3, 2), 0x00)]),
    );
    write(
        "decode",
        "anim_webp_exif_rotate.webp",
        &animated_webp(
            (9, 4),
            true,
            Some(EXIF_ROTATE_90),
            &[frame((0, 0, 9, 4), 0x02), frame((4, 2, 5, 2), 0x01)],
        ),
    );
    // An opaque frame disposed to background, then a translucent one blended: browsers
    // show the second over a cleared (transparent) canvas, so over the page.
    let opaque = WebpFrame {
        rect: (0, 0, 8, 6),
        flags: 0x01,
        opaque: true,
    };
    write(
        "decode",
        "anim_webp_dispose_then_translucent.webp",
        &animated_webp((8, 6), true, None, &[opaque, frame((2, 2, 4, 2), 0x00)]),
    );
    let many: Vec<WebpFrame> = (0..10)
        .map(|i| frame(((i % 3) * 2, (i / 3 % 2) * 2, 2, 2), 0x00))
        .collect();
    write(
        "decode",
        "anim_webp_over_max_views.webp",
        &animated_webp((6, 4), true, None, &many),
    );
}

fn translucent_still_seeds() {
    // Alpha that is neither 0 nor 255: composited over every page colour.
    let rgba: Vec<u8> = gradient(9, 7, 4)
        .chunks_exact(4)
        .enumerate()
        .flat_map(|(i, p)| [p[0], p[1], p[2], (i * 4) as u8])
        .collect();
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(&rgba, 9, 7, ExtendedColorType::Rgba8)
        .unwrap();
    write("decode", "translucent_rgba.png", &out);
    write(
        "decode",
        "translucent_gray_alpha16.png",
        &png(9, 7, ExtendedColorType::La16, 2, 2),
    );
    let mut webp = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut webp)
        .write_image(&rgba, 9, 7, ExtendedColorType::Rgba8)
        .unwrap();
    write("decode", "translucent_lossless.webp", &webp);
    // A palette with tRNS, rotated by EXIF: the still canvas is oriented as the reference.
    let mut info = png::Info::with_size(5, 3);
    info.exif_metadata = Some(EXIF_ROTATE_90.into());
    let mut out = Vec::new();
    let mut encoder = png::Encoder::with_info(&mut out, info).unwrap();
    encoder.set_color(png::ColorType::Indexed);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_palette(vec![255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9]);
    encoder.set_trns(vec![255, 128, 0]);
    let mut writer = encoder.write_header().unwrap();
    writer
        .write_image_data(&(0..15u8).map(|i| i % 4).collect::<Vec<_>>())
        .unwrap();
    writer.finish().unwrap();
    write("decode", "translucent_palette_exif_rotate.png", &out);
    // Binary alpha: rounded corners (a mask under 5 %, one rendering at most) and a
    // cut-out (a large mask, every page colour).
    let (side, radius) = (32u32, 4u32);
    let corner = |x: u32, y: u32| {
        let dx = radius.saturating_sub(x.min(side - 1 - x));
        let dy = radius.saturating_sub(y.min(side - 1 - y));
        dx * dx + dy * dy > radius * radius
    };
    let rounded: Vec<u8> = (0..side * side)
        .flat_map(|i| {
            let (x, y) = (i % side, i / side);
            let alpha = if corner(x, y) { 0 } else { 255 };
            [(x * 10) as u8, (y * 10) as u8, 128, alpha]
        })
        .collect();
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(&rounded, side, side, ExtendedColorType::Rgba8)
        .unwrap();
    write("decode", "rounded_corners_binary_alpha.png", &out);
    let cutout: Vec<u8> = (0..side * side)
        .flat_map(|i| {
            let (x, y) = (i % side, i / side);
            let alpha = if (x / 6 + y / 6) % 2 == 0 { 0 } else { 255 };
            [(x * 10) as u8, 60, (y * 10) as u8, alpha]
        })
        .collect();
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(&cutout, side, side, ExtendedColorType::Rgba8)
        .unwrap();
    write("decode", "cutout_binary_alpha.png", &out);
}
