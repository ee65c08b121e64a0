//! Our compositing held to the browser's, with Debian's Chromium as the oracle.
//!
//! Screening claims to judge what a browser shows: every frame of an animation composited
//! as browsers composite it, and a translucent image over the page behind it. Here Chromium
//! shows each file at its natural size at the top left of a page of each page colour, and
//! the pixels of its screenshot are compared with `views::render` of the matching view.
//! Translucent stills are compared at once; an animation whose first frame flashes for 10 ms
//! (Chromium holds it about 100 ms) is screenshotted until the browser shows the frame a
//! viewer sees for a minute, which must then match ours. APNG, GIF and WebP sub-frames,
//! blending and every disposal are included, not only frames replacing the canvas.
//!
//! Runs when Chromium is installed (see `common/webdriver.rs` for the skip rule). Every
//! case's measured difference is printed (`cargo test --test browser_compositing --
//! --nocapture`); all disagreements are gathered and reported together.

mod common;
#[path = "common/webdriver.rs"]
mod webdriver;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use common::attack::{self, FLASH_MS, HOLD_MS};
use coverguard::decode::{DecodeLimits, FrameId};
use coverguard::screening::views::{render, Rendering, ViewId};
use image::{GrayAlphaImage, GrayImage, LumaA, Rgba, RgbaImage};
use serde_json::{json, Value};
use webdriver::{browser_available, start_driver, Browser};

/// Every test image's size: not square, so a transposed comparison cannot pass.
const W: u32 = 240;
const H: u32 = 180;
/// The browser window: room for the image and page colour around it.
const WINDOW: (u32, u32) = (480, 360);

/// The page colours the platform shows art on (the default views).
const PAGE_COLOURS: [[u8; 3]; 3] = [[0xff; 3], [0x00; 3], [0x12; 3]];

/// The tolerance: a pixel is over it when a channel differs from our rendering by more than
/// `TOLERANCE` levels, and at most `MAX_SHARE_OVER` of the image's pixels may be. Chromium
/// decodes to premultiplied alpha and blends in it; we blend straight alpha and round once,
/// so rounding alone differs by a level or two, never more.
const TOLERANCE: u8 = 2;
const MAX_SHARE_OVER: f64 = 0.0;

/// How long a still may take to be painted, and an animation to reach its held frame.
const STILL_DEADLINE: Duration = Duration::from_secs(10);
const ANIMATION_DEADLINE: Duration = Duration::from_secs(20);

/// One file shown in the browser.
struct Case {
    name: &'static str,
    mime: &'static str,
    bytes: Vec<u8>,
    /// The frame a viewer sees for a minute (a still's only picture).
    held: FrameId,
    /// Frames that must differ from `held` in every page colour: those flashed before it
    /// (so a match proves the browser reached `held`), and an APNG default image the
    /// browser must not show.
    others: Vec<FrameId>,
}

impl Case {
    fn animated(&self) -> bool {
        self.held != FrameId::Index(0) || !self.others.is_empty()
    }
}

/// `rgb` with alpha rising from 0 at the top left to 255 at the bottom right: every alpha
/// level over varied colours, where premultiplied and straight blending round apart most.
fn alpha_ramp(rgb: &image::RgbImage) -> RgbaImage {
    let (w, h) = rgb.dimensions();
    RgbaImage::from_fn(w, h, |x, y| {
        let [r, g, b] = rgb.get_pixel(x, y).0;
        Rgba([r, g, b, ((x + y) * 255 / (w + h - 2)) as u8])
    })
}

fn crop(image: &RgbaImage, x: u32, y: u32, w: u32, h: u32) -> RgbaImage {
    image::imageops::crop_imm(image, x, y, w, h).to_image()
}

/// A sub-frame's place on the canvas: a rectangle inside it, away from every edge.
const SUB: (u32, u32, u32, u32) = (40, 30, 120, 100);
/// A second sub-frame, overlapping the first in part.
const SUB2: (u32, u32, u32, u32) = (100, 70, 110, 90);

struct ApngFrame<'a> {
    image: &'a RgbaImage,
    at: (u32, u32),
    ms: u32,
    blend: png::BlendOp,
    dispose: png::DisposeOp,
}

/// An APNG of `frames`, the first being the default image (it must cover the canvas).
/// `attack::apng` writes only full frames that replace the canvas; this writes each
/// frame's region, blending and disposal.
fn apng(frames: &[ApngFrame<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, W, H);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        encoder
            .set_animated(u32::try_from(frames.len()).unwrap(), 0)
            .unwrap();
        let mut writer = encoder.write_header().unwrap();
        for frame in frames {
            let (w, h) = frame.image.dimensions();
            // Position then size are each checked against the other: go through (0, 0).
            writer.reset_frame_position().unwrap();
            writer.set_frame_dimension(w, h).unwrap();
            writer.set_frame_position(frame.at.0, frame.at.1).unwrap();
            writer
                .set_frame_delay(u16::try_from(frame.ms).unwrap(), 1000)
                .unwrap();
            writer.set_blend_op(frame.blend).unwrap();
            writer.set_dispose_op(frame.dispose).unwrap();
            writer.write_image_data(frame.image.as_raw()).unwrap();
        }
        writer.finish().unwrap();
    }
    out
}

struct GifFrame<'a> {
    /// Grey levels 0..=254 (255 is the transparent index); alpha 0 is transparent.
    image: &'a GrayAlphaImage,
    at: (u32, u32),
    centiseconds: u16,
    /// 1 keep, 2 restore to background, 3 restore to previous.
    disposal: u8,
}

/// A GIF of grey `frames` written byte by byte: the `image` encoder writes every frame at
/// (0, 0) with disposal "background", so it cannot make sub-frames or other disposals.
fn gif(frames: &[GifFrame<'_>]) -> Vec<u8> {
    const TRANSPARENT: u8 = 255;
    let le16 = |v: u32| u16::try_from(v).unwrap().to_le_bytes();
    let mut out = b"GIF89a".to_vec();
    out.extend(le16(W));
    out.extend(le16(H));
    // A 256-entry global colour table of greys, background index 0, square pixels.
    out.extend([0xf7, 0, 0]);
    out.extend((0..=255u8).flat_map(|g| [g; 3]));
    // Loop forever (NETSCAPE2.0), as animations on the web do.
    out.extend(b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00");
    for frame in frames {
        let (w, h) = frame.image.dimensions();
        out.extend([0x21, 0xf9, 4, (frame.disposal << 2) | 1]);
        out.extend(frame.centiseconds.to_le_bytes());
        out.extend([TRANSPARENT, 0]);
        out.push(0x2c);
        out.extend(le16(frame.at.0));
        out.extend(le16(frame.at.1));
        out.extend(le16(w));
        out.extend(le16(h));
        out.push(0);
        let indices: Vec<u8> = frame
            .image
            .pixels()
            .map(|p| {
                if p[1] == 0 {
                    TRANSPARENT
                } else {
                    p[0].min(254)
                }
            })
            .collect();
        out.push(8);
        for block in lzw_literals(&indices).chunks(255) {
            out.push(block.len() as u8);
            out.extend(block);
        }
        out.push(0);
    }
    out.push(0x3b);
    out
}

/// LZW data for minimum code size 8 that is every index as a 9-bit literal, with a clear
/// code every 253 literals so the decoder's table never grows to 10-bit codes.
fn lzw_literals(indices: &[u8]) -> Vec<u8> {
    const CLEAR: u32 = 256;
    const END: u32 = 257;
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    let mut emit = |code: u32| {
        acc |= code << bits;
        bits += 9;
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    };
    for chunk in indices.chunks(253) {
        emit(CLEAR);
        for &i in chunk {
            emit(u32::from(i));
        }
    }
    emit(END);
    if bits > 0 {
        out.push(acc as u8);
    }
    out
}

struct WebpFrame<'a> {
    image: &'a RgbaImage,
    /// Even offsets: WebP stores half of each.
    at: (u32, u32),
    ms: u32,
    blend: bool,
    dispose: bool,
}

/// An animated WebP of lossless `frames` with their offsets, blending and disposal, and
/// `background` (RGBA) as the ANIM chunk's background colour: a hint the WebP container
/// spec lets viewers ignore, and browsers do (they dispose to transparent).
/// Without `alpha_flag` the VP8X header says the animation has no alpha (its frames still
/// do: lossless frames carry an alpha channel).
fn animated_webp(alpha_flag: bool, background: [u8; 4], frames: &[WebpFrame<'_>]) -> Vec<u8> {
    fn le24(v: u32) -> [u8; 3] {
        let b = v.to_le_bytes();
        assert_eq!(b[3], 0);
        [b[0], b[1], b[2]]
    }
    fn chunk(tag: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut c = tag.to_vec();
        c.extend(u32::try_from(data.len()).unwrap().to_le_bytes());
        c.extend(data);
        if data.len() % 2 == 1 {
            c.push(0);
        }
        c
    }
    let mut body = b"WEBP".to_vec();
    let mut vp8x = vec![if alpha_flag { 0x10 } else { 0 } | 0x02, 0, 0, 0];
    vp8x.extend(le24(W - 1));
    vp8x.extend(le24(H - 1));
    body.extend(chunk(b"VP8X", &vp8x));
    // ANIM stores the colour as blue, green, red, alpha; then the loop count (0: forever).
    let [r, g, b, a] = background;
    body.extend(chunk(b"ANIM", &[b, g, r, a, 0, 0]));
    for frame in frames {
        let (w, h) = frame.image.dimensions();
        assert!(frame.at.0 % 2 == 0 && frame.at.1 % 2 == 0);
        let mut anmf = [
            le24(frame.at.0 / 2),
            le24(frame.at.1 / 2),
            le24(w - 1),
            le24(h - 1),
            le24(frame.ms),
        ]
        .concat();
        // Bit 1 set: do not blend; bit 0 set: dispose to background.
        anmf.push(u8::from(!frame.blend) << 1 | u8::from(frame.dispose));
        // The VP8L chunk of the frame written as a still lossless WebP
        // (`RIFF <size> WEBP VP8L <len> <data> [pad]`).
        let still = attack::webp_rgba(frame.image);
        assert_eq!(&still[8..16], b"WEBPVP8L");
        anmf.extend(&still[12..]);
        body.extend(chunk(b"ANMF", &anmf));
    }
    let mut out = b"RIFF".to_vec();
    out.extend(u32::try_from(body.len()).unwrap().to_le_bytes());
    out.extend(body);
    out
}

/// `image` as 16-bit RGBA, each sample's low byte 0xff: a decoder that rounds to 8 bits
/// and one that keeps the high byte are a level apart everywhere.
fn png_rgba16(image: &RgbaImage) -> Vec<u8> {
    let raw: Vec<u8> = image
        .as_raw()
        .iter()
        .flat_map(|&v| {
            u16::from(v)
                .wrapping_mul(256)
                .wrapping_add(0xff)
                .to_le_bytes()
        })
        .collect();
    let mut out = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut out),
        &raw,
        image.width(),
        image.height(),
        image::ExtendedColorType::Rgba16,
    )
    .unwrap();
    out
}

/// A palette PNG whose 256 entries are grey levels at falling alpha (tRNS): the index is
/// `grey`, so alpha is 255 - grey and the colour the grey.
fn png_palette_trns(grey: &GrayImage) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, grey.width(), grey.height());
        encoder.set_color(png::ColorType::Indexed);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_palette((0..=255u8).flat_map(|g| [g; 3]).collect::<Vec<_>>());
        encoder.set_trns((0..=255u8).map(|g| 255 - g).collect::<Vec<_>>());
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(grey.as_raw()).unwrap();
    }
    out
}

/// Grey with transparent 8-pixel squares in a checkerboard: holes a GIF frame shows the
/// canvas through.
fn with_holes(grey: &GrayImage) -> GrayAlphaImage {
    GrayAlphaImage::from_fn(grey.width(), grey.height(), |x, y| {
        let hole = (x / 8 + y / 8) % 2 == 0;
        LumaA([grey.get_pixel(x, y)[0].min(254), if hole { 0 } else { 255 }])
    })
}

fn opaque_grey(grey: &GrayImage) -> GrayAlphaImage {
    GrayAlphaImage::from_fn(grey.width(), grey.height(), |x, y| {
        LumaA([grey.get_pixel(x, y)[0].min(254), 255])
    })
}

fn cases() -> Vec<Case> {
    use png::{BlendOp, DisposeOp};
    let still = |name, mime, bytes| Case {
        name,
        mime,
        bytes,
        held: FrameId::Index(0),
        others: vec![],
    };
    let second = |name, mime, bytes| Case {
        name,
        mime,
        bytes,
        held: FrameId::Index(1),
        others: vec![FrameId::Index(0)],
    };
    let grey = attack::photo_grey("camera.png", W, H);
    let chart = alpha_ramp(&attack::photo_rgb("color.png", W, H));
    let decoy = attack::opaque(&attack::photo_rgb("coffee.png", W, H));
    let hidden = attack::opaque(&attack::photo_rgb("astronaut.png", W, H));
    let sub_chart = crop(&chart, SUB.0, SUB.1, SUB.2, SUB.3);
    let sub_chart2 = crop(&chart, 0, 0, SUB2.2, SUB2.3);
    let sub_hidden = crop(&hidden, SUB.0, SUB.1, SUB.2, SUB.3);
    let full = |image, ms, dispose| ApngFrame {
        image,
        at: (0, 0),
        ms,
        blend: BlendOp::Source,
        dispose,
    };
    let over = |image, (x, y, _, _): (u32, u32, u32, u32), ms, dispose| ApngFrame {
        image,
        at: (x, y),
        ms,
        blend: BlendOp::Over,
        dispose,
    };
    let grey_decoy = attack::photo_grey("coffee.png", W, H);
    let grey_hidden = attack::photo_grey("astronaut.png", W, H);
    let gif_sub =
        with_holes(&image::imageops::crop_imm(&grey_hidden, 0, 0, SUB.2, SUB.3).to_image());
    let gif_sub2 = with_holes(&image::imageops::crop_imm(&grey, 0, 0, SUB2.2, SUB2.3).to_image());
    let gif_decoy = opaque_grey(&grey_decoy);
    let gif_frame = |image, at: (u32, u32, u32, u32), centiseconds, disposal| GifFrame {
        image,
        at: (at.0, at.1),
        centiseconds,
        disposal,
    };
    let whole = (0, 0, W, H);
    let (flash_cs, hold_cs) = ((FLASH_MS / 10) as u16, (HOLD_MS / 10) as u16);
    let webp_frame = |image, at: (u32, u32, u32, u32), ms, blend, dispose| WebpFrame {
        image,
        at: (at.0, at.1),
        ms,
        blend,
        dispose,
    };
    let magenta = [0xff, 0x00, 0xff, 0xff];

    vec![
        // Translucent stills: the alpha tricks and graded alpha over colour.
        still(
            "black-alpha-is-picture.png",
            "image/png",
            attack::png_rgba(&attack::hidden_over_white(&grey)),
        ),
        still(
            "white-alpha-is-picture.png",
            "image/png",
            attack::png_rgba(&attack::hidden_over_black(&grey)),
        ),
        still(
            "grey-alpha-is-picture.png",
            "image/png",
            attack::png_luma_alpha(&attack::hidden_over_white_luma_alpha(&grey)),
        ),
        still(
            "black-alpha-is-picture.webp",
            "image/webp",
            attack::webp_rgba(&attack::hidden_over_white(&grey)),
        ),
        still(
            "chart-alpha-ramp.png",
            "image/png",
            attack::png_rgba(&chart),
        ),
        still(
            "chart-alpha-ramp.webp",
            "image/webp",
            attack::webp_rgba(&chart),
        ),
        still(
            "chart-alpha-ramp-16-bit.png",
            "image/png",
            png_rgba16(&chart),
        ),
        still("palette-trns.png", "image/png", png_palette_trns(&grey)),
        // A one-frame GIF not covering its canvas, with holes: transparent around and in it.
        still(
            "gif-partial-frame.gif",
            "image/gif",
            gif(&[gif_frame(&gif_sub, SUB, hold_cs, 1)]),
        ),
        // Animations flashing a decoy, then holding another picture for a minute.
        second(
            "decoy-then-hidden.gif",
            "image/gif",
            attack::gif(&[(&decoy, FLASH_MS), (&hidden, HOLD_MS)]),
        ),
        second(
            "decoy-then-hidden.apng.png",
            "image/png",
            attack::apng(None, &[(&decoy, FLASH_MS), (&hidden, HOLD_MS)]),
        ),
        second(
            "decoy-then-hidden.webp",
            "image/webp",
            attack::animated_webp(&[(&decoy, FLASH_MS), (&hidden, HOLD_MS)]),
        ),
        Case {
            name: "decoy-default-image.apng.png",
            mime: "image/png",
            bytes: attack::apng(Some(&decoy), &[(&hidden, HOLD_MS)]),
            // A browser playing the animation never shows the default image.
            held: FrameId::Index(0),
            others: vec![FrameId::Default],
        },
        // APNG: a translucent sub-frame blended over the first frame.
        second(
            "apng-sub-frame-blend-over.png",
            "image/png",
            apng(&[
                full(&decoy, FLASH_MS, DisposeOp::None),
                over(&sub_chart, SUB, HOLD_MS, DisposeOp::None),
            ]),
        ),
        // APNG: a translucent sub-frame replacing its region of the first frame.
        second(
            "apng-sub-frame-blend-source.png",
            "image/png",
            apng(&[
                full(&decoy, FLASH_MS, DisposeOp::None),
                ApngFrame {
                    image: &sub_chart,
                    at: (SUB.0, SUB.1),
                    ms: HOLD_MS,
                    blend: BlendOp::Source,
                    dispose: DisposeOp::None,
                },
            ]),
        ),
        // APNG: the first frame disposed to transparent, then a sub-frame over that.
        second(
            "apng-dispose-background.png",
            "image/png",
            apng(&[
                full(&decoy, FLASH_MS, DisposeOp::Background),
                over(&sub_chart, SUB, HOLD_MS, DisposeOp::None),
            ]),
        ),
        // APNG: `Previous` on the first frame, which the spec treats as `Background`.
        second(
            "apng-dispose-previous-first-frame.png",
            "image/png",
            apng(&[
                full(&decoy, FLASH_MS, DisposeOp::Previous),
                over(&sub_chart, SUB, HOLD_MS, DisposeOp::None),
            ]),
        ),
        // APNG: a sub-frame disposed to what was under it, then another sub-frame.
        Case {
            name: "apng-dispose-previous.png",
            mime: "image/png",
            bytes: apng(&[
                full(&decoy, FLASH_MS, DisposeOp::None),
                ApngFrame {
                    image: &sub_hidden,
                    at: (SUB.0, SUB.1),
                    ms: FLASH_MS,
                    blend: BlendOp::Source,
                    dispose: DisposeOp::Previous,
                },
                over(&sub_chart2, SUB2, HOLD_MS, DisposeOp::None),
            ]),
            held: FrameId::Index(2),
            others: vec![FrameId::Index(0), FrameId::Index(1)],
        },
        // GIF: a sub-frame with transparent holes over a kept first frame.
        second(
            "gif-sub-frame-keep.gif",
            "image/gif",
            gif(&[
                gif_frame(&gif_decoy, whole, flash_cs, 1),
                gif_frame(&gif_sub, SUB, hold_cs, 1),
            ]),
        ),
        // GIF: the first frame restored to background (transparent in browsers).
        second(
            "gif-dispose-background.gif",
            "image/gif",
            gif(&[
                gif_frame(&gif_decoy, whole, flash_cs, 2),
                gif_frame(&gif_sub, SUB, hold_cs, 1),
            ]),
        ),
        // GIF: "restore to previous" on the first frame: to the empty canvas.
        second(
            "gif-dispose-previous-first-frame.gif",
            "image/gif",
            gif(&[
                gif_frame(&gif_decoy, whole, flash_cs, 3),
                gif_frame(&gif_sub, SUB, hold_cs, 1),
            ]),
        ),
        // GIF: a sub-frame restored to previous, then another sub-frame.
        Case {
            name: "gif-dispose-previous.gif",
            mime: "image/gif",
            bytes: gif(&[
                gif_frame(&gif_decoy, whole, flash_cs, 1),
                gif_frame(&gif_sub, SUB, flash_cs, 3),
                gif_frame(&gif_sub2, SUB2, hold_cs, 1),
            ]),
            held: FrameId::Index(2),
            others: vec![FrameId::Index(0), FrameId::Index(1)],
        },
        // WebP: a translucent sub-frame alpha-blended over the first frame.
        second(
            "webp-sub-frame-blend.webp",
            "image/webp",
            animated_webp(
                true,
                magenta,
                &[
                    webp_frame(&decoy, whole, FLASH_MS, false, false),
                    webp_frame(&sub_chart, SUB, HOLD_MS, true, false),
                ],
            ),
        ),
        // WebP: the first frame disposed to background (transparent in browsers, whatever
        // the ANIM colour), then a sub-frame blended over that.
        second(
            "webp-dispose-background.webp",
            "image/webp",
            animated_webp(
                true,
                magenta,
                &[
                    webp_frame(&decoy, whole, FLASH_MS, false, true),
                    webp_frame(&sub_chart, SUB, HOLD_MS, true, false),
                ],
            ),
        ),
        // WebP whose headers deny the alpha its lossless frames carry (the VP8X flag, or
        // the VP8L hint): Chromium shows the alpha and the page where a disposal cleared,
        // so an alpha trick works with the headers cleared, and screening must see it too.
        second(
            "webp-no-alpha-flag-dispose.webp",
            "image/webp",
            animated_webp(
                false,
                magenta,
                &[
                    webp_frame(&decoy, whole, FLASH_MS, false, true),
                    webp_frame(&sub_hidden, SUB, HOLD_MS, false, false),
                ],
            ),
        ),
        // The same header over frames whose alpha holds the picture (the alpha trick).
        second(
            "webp-no-alpha-flag-alpha-trick.webp",
            "image/webp",
            animated_webp(
                false,
                magenta,
                &[
                    webp_frame(&decoy, whole, FLASH_MS, false, false),
                    webp_frame(
                        &attack::hidden_over_white(&grey),
                        whole,
                        HOLD_MS,
                        false,
                        false,
                    ),
                ],
            ),
        ),
        still(
            "webp-still-no-alpha-flag.webp",
            "image/webp",
            still_webp_without_alpha_flag(&attack::hidden_over_white(&grey)),
        ),
        still(
            "webp-vp8l-alpha-hint-unset.webp",
            "image/webp",
            webp_with_alpha_hint_unset(&attack::hidden_over_white(&grey)),
        ),
    ]
}

/// A still simple lossless WebP whose VP8L header's `alpha_is_used` hint is 0 while its
/// pixels carry alpha.
fn webp_with_alpha_hint_unset(image: &RgbaImage) -> Vec<u8> {
    let mut still = attack::webp_rgba(image);
    assert_eq!(&still[8..16], b"WEBPVP8L");
    // After the 0x2f signature, 14 bits of width - 1, 14 of height - 1, then the hint
    // (bit 28 of the little-endian word at byte 21: bit 4 of byte 24).
    assert_eq!(still[20], 0x2f);
    assert_ne!(
        still[24] & 0x10,
        0,
        "the encoder sets the hint for an image with alpha"
    );
    still[24] &= !0x10;
    still
}

/// A still extended WebP (VP8X, then VP8L) whose VP8X header says it has no alpha while its
/// lossless bitstream carries alpha.
fn still_webp_without_alpha_flag(image: &RgbaImage) -> Vec<u8> {
    let still = attack::webp_rgba(image);
    assert_eq!(&still[8..16], b"WEBPVP8L");
    let mut vp8x = b"VP8X\x0a\0\0\0\0\0\0\0".to_vec();
    vp8x.extend(&(image.width() - 1).to_le_bytes()[..3]);
    vp8x.extend(&(image.height() - 1).to_le_bytes()[..3]);
    let mut body = b"WEBP".to_vec();
    body.extend(vp8x);
    body.extend(&still[12..]);
    let mut out = b"RIFF".to_vec();
    out.extend(u32::try_from(body.len()).unwrap().to_le_bytes());
    out.extend(body);
    out
}

/// Where a pixel over the tolerance is, and its value in ours and in Chromium's.
type FirstOver = ((u32, u32), [u8; 3], [u8; 3]);

/// How a screenshot's image area differs from our rendering.
#[derive(Clone, Debug, Default)]
struct Difference {
    /// The largest channel difference.
    max: u8,
    /// Pixels with a channel differing at all, by more than 1, by more than `TOLERANCE`.
    over_0: usize,
    over_1: usize,
    over_tolerance: usize,
    pixels: usize,
    /// The first pixel over the tolerance: where, ours, Chromium's.
    first_over: Option<FirstOver>,
    /// The bounding box of the pixels over the tolerance (x0, y0, x1, y1 inclusive).
    bounds: Option<(u32, u32, u32, u32)>,
}

impl Difference {
    fn within_tolerance(&self) -> bool {
        self.over_tolerance as f64 <= MAX_SHARE_OVER * self.pixels as f64
    }

    fn share(&self, n: usize) -> f64 {
        100.0 * n as f64 / self.pixels as f64
    }
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "max {:>3}, differing {:>6.2}%, >1 {:>6.2}%, >{TOLERANCE} {:>6.2}%",
            self.max,
            self.share(self.over_0),
            self.share(self.over_1),
            self.share(self.over_tolerance)
        )?;
        if let (Some((at, ours, theirs)), Some(bounds)) = (self.first_over, self.bounds) {
            write!(
                f,
                " (over it within {bounds:?}; first at {at:?}: ours {ours:?}, Chromium {theirs:?})"
            )?;
        }
        Ok(())
    }
}

/// Compares `ours` (RGB, `w` x `h`) with the top-left `w` x `h` of `shot`.
fn difference(ours: &[u8], w: u32, h: u32, shot: &RgbaImage) -> Difference {
    let mut d = Difference {
        pixels: (w * h) as usize,
        ..Difference::default()
    };
    for y in 0..h {
        for x in 0..w {
            let i = ((y * w + x) * 3) as usize;
            let o: [u8; 3] = ours[i..i + 3].try_into().unwrap();
            let s = shot.get_pixel(x, y).0;
            let t = [s[0], s[1], s[2]];
            let m = (0..3).map(|c| o[c].abs_diff(t[c])).max().unwrap();
            d.max = d.max.max(m);
            d.over_0 += usize::from(m > 0);
            d.over_1 += usize::from(m > 1);
            if m > TOLERANCE {
                d.over_tolerance += 1;
                d.first_over.get_or_insert(((x, y), o, t));
                let b = d.bounds.get_or_insert((x, y, x, y));
                *b = (b.0.min(x), b.1.min(y), b.2.max(x), b.3.max(y));
            }
        }
    }
    d
}

fn rgb_difference(a: &[u8], b: &[u8], w: u32, h: u32) -> Difference {
    let shot = RgbaImage::from_fn(w, h, |x, y| {
        let i = ((y * w + x) * 3) as usize;
        Rgba([b[i], b[i + 1], b[i + 2], 255])
    });
    difference(a, w, h, &shot)
}

/// Our rendering of `frame` of `bytes` over `colour`.
fn ours(bytes: &[u8], frame: FrameId, colour: [u8; 3]) -> (u32, u32, Vec<u8>) {
    let view = ViewId {
        frame,
        rendering: Rendering::Over(colour),
    };
    render(bytes, &DecodeLimits::default(), view)
        .unwrap_or_else(|e| panic!("{view}: {e}"))
        .unwrap_or_else(|| panic!("no {view}"))
}

/// The pages the browser is sent to, each one case over one page colour.
struct Site {
    cases: Vec<Case>,
    pages: Vec<(usize, [u8; 3])>,
}

/// `/page/<n>` is page n: the image at its natural size at 0,0 on the page colour.
/// `/image/<n>` is its file, a URL of its own per page so no page reuses another's decoded
/// animation (and where it had got to) from the memory cache.
async fn handle(State(site): State<Arc<Site>>, uri: Uri) -> Response {
    let number = |prefix: &str| {
        uri.path()
            .strip_prefix(prefix)
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|&n| n < site.pages.len())
    };
    let no_store = (header::CACHE_CONTROL, "no-store");
    if let Some(n) = number("/page/") {
        let [r, g, b] = site.pages[n].1;
        let html = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>page {n}</title></head>\
             <body style=\"margin:0;background:#{r:02x}{g:02x}{b:02x}\">\
             <img id=\"art\" src=\"/image/{n}\" style=\"display:block\"></body></html>"
        );
        return (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8"), no_store],
            html,
        )
            .into_response();
    }
    if let Some(n) = number("/image/") {
        let case = &site.cases[site.pages[n].0];
        return (
            [(header::CONTENT_TYPE, case.mime), no_store],
            case.bytes.clone(),
        )
            .into_response();
    }
    StatusCode::NOT_FOUND.into_response()
}

/// Serves `site` on a listener bound here, and returns its base URL.
async fn serve(site: Arc<Site>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(handle).with_state(site);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// Where the page laid the image out, at what pixel ratio, in what viewport.
const LAYOUT: &str = "const img = document.getElementById('art');
    if (!img || !img.complete || img.naturalWidth === 0) return null;
    const r = img.getBoundingClientRect();
    return {x: r.x, y: r.y, width: r.width, height: r.height,
            naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight,
            ratio: window.devicePixelRatio,
            innerWidth: window.innerWidth, innerHeight: window.innerHeight};";

/// Resolves once the image is decoded and two frames have been produced after it, so the
/// next screenshot shows a still image painted.
const PAINTED: &str = "const done = arguments[arguments.length - 1];
    document.getElementById('art').decode().then(
      () => requestAnimationFrame(() => requestAnimationFrame(() => done(true))),
      (e) => done(String(e)));";

/// What one page showed.
struct Measured {
    difference: Difference,
    screenshots: u32,
    elapsed: Duration,
}

/// Screenshots the page until its image area matches `expected` within the tolerance, or
/// the deadline passes (then the last difference is the error). Screenshots are taken back
/// to back: each is a round trip through the browser's compositor.
async fn poll_until_shown(
    browser: &Browser<'_>,
    (w, h, expected): &(u32, u32, Vec<u8>),
    colour: [u8; 3],
    deadline: Duration,
) -> Result<Measured, (Difference, u32)> {
    let start = Instant::now();
    let mut screenshots = 0;
    loop {
        let png = browser.screenshot_png().await;
        screenshots += 1;
        let shot = image::load_from_memory(&png).unwrap().to_rgba8();
        assert!(
            shot.width() > *w && shot.height() > *h,
            "viewport too small"
        );
        // The page around the image is exactly the page colour: nothing recolours it.
        let page = shot.get_pixel(shot.width() - 1, shot.height() - 1).0;
        assert_eq!(page[..3], colour, "page colour in the screenshot");
        let d = difference(expected, *w, *h, &shot);
        if d.within_tolerance() {
            return Ok(Measured {
                difference: d,
                screenshots,
                elapsed: start.elapsed(),
            });
        }
        if start.elapsed() > deadline {
            return Err((d, screenshots));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_composites_as_we_do() {
    if !browser_available() {
        return;
    }
    let cases = cases();
    let pages = (0..cases.len())
        .flat_map(|c| PAGE_COLOURS.map(|colour| (c, colour)))
        .collect();
    let site = Arc::new(Site { cases, pages });
    let base = serve(site.clone()).await;

    let driver = start_driver().await;
    let profile = tempfile::tempdir().unwrap();
    let window = format!("--window-size={},{}", WINDOW.0, WINDOW.1);
    let browser = driver
        .browser(
            profile.path(),
            &[
                &window,
                // One CSS pixel is one screenshot pixel.
                "--force-device-scale-factor=1",
                // Untagged images are sRGB; an sRGB output paints them unconverted, as an
                // sRGB display does (the headless default may be another profile).
                "--force-color-profile=srgb",
                "--hide-scrollbars",
            ],
        )
        .await;

    let mut failures = Vec::new();
    let mut report = Vec::new();
    for (n, &(c, colour)) in site.pages.iter().enumerate() {
        let case = &site.cases[c];
        let rendering = Rendering::Over(colour);
        let expected = ours(&case.bytes, case.held, colour);
        // Each frame shown before the held one (and a default image) must differ from it,
        // or a screenshot matching the held frame would prove nothing.
        for &other in &case.others {
            let (w, h, rgb) = ours(&case.bytes, other, colour);
            assert_eq!((w, h), (expected.0, expected.1));
            assert!(
                !rgb_difference(&rgb, &expected.2, w, h).within_tolerance(),
                "{}: {other} and {} look the same {rendering}",
                case.name,
                case.held
            );
        }

        browser.goto(&format!("{base}/page/{n}")).await;
        let layout = browser.until("the image", LAYOUT, json!([])).await;
        let num = |key: &str| layout[key].as_f64().unwrap();
        assert_eq!(num("ratio"), 1.0, "devicePixelRatio: {layout}");
        assert_eq!(
            [num("x"), num("y"), num("width"), num("height")],
            [0.0, 0.0, f64::from(expected.0), f64::from(expected.1)],
            "{}: the image at 0,0 at its natural size: {layout}",
            case.name
        );
        assert_eq!(
            (num("naturalWidth"), num("naturalHeight")),
            (f64::from(W), f64::from(H)),
            "{layout}"
        );
        assert!(num("innerWidth") > f64::from(W) && num("innerHeight") > f64::from(H));
        let deadline = if case.animated() {
            ANIMATION_DEADLINE
        } else {
            let painted = browser.script_async(PAINTED, json!([])).await;
            assert_eq!(
                painted,
                Value::Bool(true),
                "{}: decode: {painted}",
                case.name
            );
            STILL_DEADLINE
        };
        let label = format!("{:<38} {} {}", case.name, case.held, rendering);
        match poll_until_shown(&browser, &expected, colour, deadline).await {
            Ok(m) => report.push(format!(
                "{label}: {} ({} screenshots, {} ms)",
                m.difference,
                m.screenshots,
                m.elapsed.as_millis()
            )),
            Err((d, screenshots)) => {
                let line = format!(
                    "{label}: NOT SHOWN within {} s ({screenshots} screenshots); last: {d}",
                    deadline.as_secs()
                );
                report.push(line.clone());
                failures.push(line);
            }
        }
    }
    browser.quit().await;

    eprintln!(
        "Chromium against views::render (tolerance: no channel off by more than {TOLERANCE} \
         levels in more than {:.2}% of pixels)",
        100.0 * MAX_SHARE_OVER
    );
    for line in &report {
        eprintln!("  {line}");
    }
    assert!(
        failures.is_empty(),
        "Chromium shows otherwise:\n{}",
        failures.join("\n")
    );
}
