//! Every frame an animation shows, composited as a browser composites it.
//!
//! The reference decoding ([`super::decode_at`]) is the first frame with alpha dropped,
//! because that is what the reference pipelines see. A viewer sees something else: each
//! frame of a GIF, APNG or animated WebP drawn onto a canvas that starts transparent, with
//! the format's disposal and blending rules, over the page behind it. This module yields
//! those canvases one at a time (never all at once), under a frame-count and decoded-pixel
//! budget, so an animation over the budget is refused rather than screened in part.
//!
//! GIF frames come from the `image` crate's compositor. APNG and WebP are composited here:
//! `image`'s APNG compositor skips a default image that is not part of the animation and
//! restores the wrong pixels when a `Background` disposal is followed by `Previous`;
//! `image-webp` 0.2.4 disposes of a WebP frame only when given a background colour, and
//! then clears the whole canvas under a full-size frame, and the wrong bytes under a frame
//! without alpha.

use std::io::Cursor;

use image::{AnimationDecoder, ImageDecoder};

use super::gif::gif_decoder;
use super::image_crate::{image_crate_limits, image_error};
use super::orientation::{exif_orientation, orient_canvas, Orientation};
use super::webp::webp_orientation;
use super::{corrupt, DecodeError, DecodeLimits, ImageFormat};

/// What [`for_each_frame`] calls with each frame a viewer sees, composited.
pub type FrameSink<'a> = dyn FnMut(FrameId, &Canvas) -> Result<(), DecodeError> + 'a;

/// A picture as a browser holds it before painting it on the page: RGBA8 with straight
/// (not premultiplied) alpha, row-major, `width * height * 4` bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Canvas {
    pub width: u32,
    pub height: u32,
    pub rgba: Vec<u8>,
}

impl std::fmt::Debug for Canvas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Canvas")
            .field("width", &self.width)
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

impl Canvas {
    fn transparent(width: u32, height: u32) -> Canvas {
        Canvas {
            width,
            height,
            rgba: vec![0; width as usize * height as usize * 4],
        }
    }

    /// Whether every pixel is fully opaque (then the page behind it never shows).
    #[must_use]
    pub fn is_opaque(&self) -> bool {
        self.rgba.chunks_exact(4).all(|p| p[3] == 255)
    }
}

/// Which displayed picture of a file a view is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FrameId {
    /// The 0-based index among the frames an animation displays (0 for a still image).
    Index(u32),
    /// An APNG's default image that is not part of its animation: no browser that plays
    /// the animation shows it, but every viewer without APNG support does.
    Default,
}

impl std::fmt::Display for FrameId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameId::Index(i) => write!(f, "frame {i}"),
            FrameId::Default => f.write_str("the default image"),
        }
    }
}

impl serde::Serialize for FrameId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            FrameId::Index(i) => s.serialize_u32(*i),
            FrameId::Default => s.serialize_str("default"),
        }
    }
}

impl<'de> serde::Deserialize<'de> for FrameId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Index(u32),
            Name(String),
        }
        match Raw::deserialize(d)? {
            Raw::Index(i) => Ok(FrameId::Index(i)),
            Raw::Name(name) if name == "default" => Ok(FrameId::Default),
            Raw::Name(other) => Err(serde::de::Error::custom(format!(
                "frame is a 0-based index or \"default\", not {other:?}"
            ))),
        }
    }
}

/// Counts decoded frames and their pixels against the limits.
struct Budget<'a> {
    limits: &'a DecodeLimits,
    format: ImageFormat,
    frames: u32,
    pixels: u64,
}

impl Budget<'_> {
    /// Charges one more frame of `canvas_pixels`.
    fn charge(&mut self, canvas_pixels: u64) -> Result<(), DecodeError> {
        self.frames += 1;
        self.pixels += canvas_pixels;
        if self.frames > self.limits.max_frames {
            return Err(DecodeError::AnimationBudget {
                detail: format!(
                    "{} animation has more than {} frames (max_frames)",
                    self.format, self.limits.max_frames
                ),
            });
        }
        if self.pixels > self.limits.max_animation_pixels {
            return Err(DecodeError::AnimationBudget {
                detail: format!(
                    "{} animation decodes to more than {} pixels over its first {} frames (max_animation_pixels)",
                    self.format, self.limits.max_animation_pixels, self.frames
                ),
            });
        }
        Ok(())
    }
}

/// Calls `shown` with every frame of an animated GIF, APNG or WebP, in display order, as
/// the composited canvas a browser shows (oriented as the reference decoding is). Returns
/// whether the file is animated at all: for a still image (every JPEG, a PNG without
/// `acTL`, a WebP without `ANIM`) nothing is called and the caller screens the still.
/// A GIF always counts as animated, even with one frame: its canvas starts transparent.
///
/// # Errors
/// `AnimationBudget` when the frames or their decoded pixels exceed the limits (an APNG or
/// WebP frame is refused before it is decoded; a GIF frame is known to exist only once
/// decoded, so the one over the limits is decoded, then refused), a decode error of any
/// frame, or the first error `shown` returns.
pub fn for_each_frame(
    bytes: &[u8],
    format: ImageFormat,
    limits: &DecodeLimits,
    shown: &mut FrameSink<'_>,
) -> Result<bool, DecodeError> {
    let mut budget = Budget {
        limits,
        format,
        frames: 0,
        pixels: 0,
    };
    match format {
        ImageFormat::Jpeg => Ok(false),
        ImageFormat::Gif => gif_frames(bytes, limits, &mut budget, shown).map(|()| true),
        ImageFormat::Png => apng_frames(bytes, limits, &mut budget, shown),
        ImageFormat::Webp => webp_frames(bytes, limits, &mut budget, shown),
    }
}

fn gif_frames(
    bytes: &[u8],
    limits: &DecodeLimits,
    budget: &mut Budget<'_>,
    shown: &mut FrameSink<'_>,
) -> Result<(), DecodeError> {
    let decoder = gif_decoder(bytes, limits)?;
    let (width, height) = decoder.dimensions();
    super::check_dimensions(ImageFormat::Gif, width, height, limits)?;
    // `image` composites each frame onto a canvas that starts transparent and ignores the
    // screen's background colour, as browsers do.
    let frames = decoder.into_frames();
    let count = composited_frames(
        frames,
        ImageFormat::Gif,
        (width, height),
        Orientation::Normal,
        budget,
        shown,
    )?;
    if count == 0 {
        return Err(corrupt("GIF ends before any image"));
    }
    Ok(())
}

fn webp_frames(
    bytes: &[u8],
    limits: &DecodeLimits,
    budget: &mut Budget<'_>,
    shown: &mut FrameSink<'_>,
) -> Result<bool, DecodeError> {
    let mut decoder = image::codecs::webp::WebPDecoder::new(Cursor::new(bytes))
        .map_err(|e| image_error(ImageFormat::Webp, e))?;
    if !decoder.has_animation() {
        return Ok(false);
    }
    let (width, height) = decoder.dimensions();
    super::check_dimensions(ImageFormat::Webp, width, height, limits)?;
    let orientation = webp_orientation(bytes, &mut decoder);
    let canvas_pixels = u64::from(width) * u64::from(height);
    // The canvas starts transparent, and a disposed frame's rectangle is cleared to
    // transparent: the ANIM background colour is a hint browsers ignore. So is the VP8X
    // alpha flag: Chromium shows the frames' alpha, and the page where a disposal cleared.
    let mut canvas = Canvas::transparent(width, height);
    let mut disposed: Option<Region> = None;
    for (index, anmf) in (0u32..).zip(webp_anmf_payloads(bytes)?) {
        budget.charge(canvas_pixels)?;
        let header = anmf
            .get(..16)
            .ok_or_else(|| corrupt(format!("WebP frame {index} has a short ANMF header")))?;
        let le24 = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], 0]);
        let region = Region {
            x: le24(&header[0..3]) * 2,
            y: le24(&header[3..6]) * 2,
            width: le24(&header[6..9]) + 1,
            height: le24(&header[9..12]) + 1,
        };
        let flags = header[15];
        let fits = u64::from(region.x) + u64::from(region.width) <= u64::from(width)
            && u64::from(region.y) + u64::from(region.height) <= u64::from(height);
        if !fits {
            return Err(corrupt(format!(
                "WebP frame {index} ({}x{} at {},{}) does not fit its {width}x{height} canvas",
                region.width, region.height, region.x, region.y
            )));
        }
        if let Some(r) = disposed.take() {
            clear(&mut canvas, r);
        }
        let data = &anmf[16..];
        let frame = webp_frame_pixels(&header[6..12], data, region)?;
        // As `image-webp` composites (so an animation without disposals gives the pixels
        // it always gave): a frame without alpha (VP8 without ALPH) is copied.
        let has_alpha = data.get(..4) != Some(b"VP8 ");
        let blend = (flags & 0x02 == 0 && has_alpha).then_some(webp_over);
        draw(&mut canvas, &frame, region, blend);
        show_oriented(shown, FrameId::Index(index), &canvas, orientation)?;
        if flags & 0x01 != 0 {
            disposed = Some(region);
        }
    }
    Ok(true)
}

/// The payload of each top-level ANMF chunk inside the RIFF size, in file order.
fn webp_anmf_payloads(bytes: &[u8]) -> Result<Vec<&[u8]>, DecodeError> {
    let riff_size = bytes
        .get(4..8)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
    let end = riff_size.saturating_add(8).min(bytes.len());
    let mut payloads = Vec::new();
    let mut pos = 12;
    while pos + 8 <= end {
        let size = u32::from_le_bytes([
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
            bytes[pos + 7],
        ]) as usize;
        let start = pos + 8;
        let payload = start
            .checked_add(size)
            .and_then(|stop| bytes.get(start..stop));
        if &bytes[pos..pos + 4] == b"ANMF" {
            payloads.push(payload.ok_or_else(|| corrupt("WebP ANMF chunk is truncated"))?);
        }
        // Chunks are padded to an even size.
        pos = start.saturating_add(size).saturating_add(size % 2);
    }
    Ok(payloads)
}

/// One frame's own pixels, not composited: its bitstream (`data`, the ANMF payload after
/// the header) re-wrapped as a one-frame animation of its own size that is not blended,
/// which `image-webp` hands out as decoded.
fn webp_frame_pixels(size: &[u8], data: &[u8], region: Region) -> Result<Canvas, DecodeError> {
    let anmf_len = 16 + data.len();
    let padded = anmf_len + anmf_len % 2;
    // "WEBP", the VP8X and ANIM chunks, the ANMF chunk's header, then its payload.
    let riff_len =
        u32::try_from(4 + 18 + 14 + 8 + padded).map_err(|_| corrupt("WebP frame is too large"))?;
    let mut file = Vec::with_capacity(8 + riff_len as usize);
    file.extend_from_slice(b"RIFF");
    file.extend_from_slice(&riff_len.to_le_bytes());
    // VP8X: animation and alpha, canvas of the frame's size.
    file.extend_from_slice(b"WEBPVP8X\x0a\0\0\0\x12\0\0\0");
    file.extend_from_slice(size);
    file.extend_from_slice(b"ANIM\x06\0\0\0\0\0\0\0\0\0ANMF");
    file.extend_from_slice(&(anmf_len as u32).to_le_bytes());
    // At 0,0, then the frame's size, no duration, and "do not blend".
    file.extend_from_slice(&[0; 6]);
    file.extend_from_slice(size);
    file.extend_from_slice(&[0, 0, 0, 0x02]);
    file.extend_from_slice(data);
    file.resize(8 + riff_len as usize, 0);
    let decoder = image::codecs::webp::WebPDecoder::new(Cursor::new(&file))
        .map_err(|e| image_error(ImageFormat::Webp, e))?;
    let buffer = decoder
        .into_frames()
        .next()
        .ok_or_else(|| corrupt("WebP frame has no image"))?
        .map_err(|e| image_error(ImageFormat::Webp, e))?
        .into_buffer();
    if (buffer.width(), buffer.height()) != (region.width, region.height) {
        return Err(corrupt(
            "WebP frame decoded to another size than its ANMF header",
        ));
    }
    Ok(Canvas {
        width: region.width,
        height: region.height,
        rgba: buffer.into_raw(),
    })
}

/// Feeds the canvases an `image` animation decoder composites to `shown`, charging each
/// frame to the budget. Returns how many frames there were.
fn composited_frames(
    mut frames: image::Frames<'_>,
    format: ImageFormat,
    (width, height): (u32, u32),
    orientation: Orientation,
    budget: &mut Budget<'_>,
    shown: &mut FrameSink<'_>,
) -> Result<u32, DecodeError> {
    let canvas_pixels = u64::from(width) * u64::from(height);
    let mut index = 0;
    loop {
        // Only a frame that exists is charged: an animation exactly at the limits is
        // screened in full.
        let Some(frame) = frames.next() else {
            return Ok(index);
        };
        budget.charge(canvas_pixels)?;
        let buffer = frame.map_err(|e| image_error(format, e))?.into_buffer();
        let canvas = Canvas {
            width: buffer.width(),
            height: buffer.height(),
            rgba: buffer.into_raw(),
        };
        shown(FrameId::Index(index), &orient_canvas(canvas, orientation))?;
        index += 1;
    }
}

/// An APNG frame's region on the canvas and what happens to it.
#[derive(Clone, Copy)]
struct Region {
    x: u32,
    y: u32,
    width: u32,
    height: u32,
}

fn apng_frames(
    bytes: &[u8],
    limits: &DecodeLimits,
    budget: &mut Budget<'_>,
    shown: &mut FrameSink<'_>,
) -> Result<bool, DecodeError> {
    let png_error = |e: png::DecodingError| corrupt(format!("PNG: {e}"));
    let mut decoder = png::Decoder::new_with_limits(
        Cursor::new(bytes),
        png::Limits {
            bytes: usize::try_from(image_crate_limits(limits).max_alloc.unwrap_or(u64::MAX))
                .unwrap_or(usize::MAX),
        },
    );
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(png_error)?;
    let info = reader.info();
    let Some(animation) = info.animation_control else {
        return Ok(false);
    };
    let (width, height) = (info.width, info.height);
    super::check_dimensions(ImageFormat::Png, width, height, limits)?;
    let orientation = info
        .exif_metadata
        .as_deref()
        .map_or(Orientation::Normal, exif_orientation);
    // An fcTL before IDAT makes the default image the animation's first frame.
    let default_is_frame = info.frame_control.is_some();
    let canvas_pixels = u64::from(width) * u64::from(height);
    let mut buffer = vec![
        0;
        reader
            .output_buffer_size()
            .ok_or_else(|| corrupt("PNG is too large to decode"))?
    ];
    let mut canvas = Canvas::transparent(width, height);
    // What a `Previous` disposal restores: the canvas before the frame that asked for it.
    let mut saved: Option<Vec<u8>> = None;
    let mut pending_dispose: Option<(png::DisposeOp, Region)> = None;

    if !default_is_frame {
        budget.charge(canvas_pixels)?;
        let out = reader.next_frame(&mut buffer).map_err(png_error)?;
        let default = to_canvas(&buffer, &out)?;
        shown(FrameId::Default, &orient_canvas(default, orientation))?;
    }
    for index in 0..animation.num_frames {
        budget.charge(canvas_pixels)?;
        if index > 0 || !default_is_frame {
            reader.next_frame_info().map_err(png_error)?;
        }
        let control = *reader
            .info()
            .frame_control()
            .ok_or_else(|| corrupt("APNG frame has no fcTL"))?;
        let region = Region {
            x: control.x_offset,
            y: control.y_offset,
            width: control.width,
            height: control.height,
        };
        let fits = region.width > 0
            && region.height > 0
            && u64::from(region.x) + u64::from(region.width) <= u64::from(width)
            && u64::from(region.y) + u64::from(region.height) <= u64::from(height);
        if !fits {
            return Err(corrupt(format!(
                "APNG frame {index} ({}x{} at {},{}) does not fit its {width}x{height} canvas",
                region.width, region.height, region.x, region.y
            )));
        }
        // The previous frame's disposal, now that it has been shown.
        match pending_dispose.take() {
            Some((png::DisposeOp::Background, r)) => clear(&mut canvas, r),
            Some((png::DisposeOp::Previous, r)) => {
                if let Some(before) = &saved {
                    restore(&mut canvas, before, r);
                }
            }
            _ => {}
        }
        // The spec treats `Previous` on the first frame as `Background`.
        let dispose = match control.dispose_op {
            png::DisposeOp::Previous if index == 0 => png::DisposeOp::Background,
            op => op,
        };
        if dispose == png::DisposeOp::Previous {
            saved = Some(canvas.rgba.clone());
        }
        let out = reader.next_frame(&mut buffer).map_err(png_error)?;
        if out.width != region.width || out.height != region.height {
            return Err(corrupt(format!(
                "APNG frame {index} decoded to {}x{}, its fcTL says {}x{}",
                out.width, out.height, region.width, region.height
            )));
        }
        let frame = to_canvas(&buffer, &out)?;
        let blend = (control.blend_op == png::BlendOp::Over).then_some(over);
        draw(&mut canvas, &frame, region, blend);
        show_oriented(shown, FrameId::Index(index), &canvas, orientation)?;
        pending_dispose = Some((dispose, region));
    }
    Ok(true)
}

/// Shows the persistent canvas as the reference decoding is oriented; it is copied only
/// when it has to be turned (almost never), not once per frame.
fn show_oriented(
    shown: &mut FrameSink<'_>,
    frame: FrameId,
    canvas: &Canvas,
    orientation: Orientation,
) -> Result<(), DecodeError> {
    if orientation == Orientation::Normal {
        return shown(frame, canvas);
    }
    shown(frame, &orient_canvas(canvas.clone(), orientation))
}

/// The png crate's 8-bit output (grey, grey+alpha, RGB or RGBA) as RGBA.
fn to_canvas(buffer: &[u8], out: &png::OutputInfo) -> Result<Canvas, DecodeError> {
    if out.bit_depth != png::BitDepth::Eight {
        return Err(corrupt(format!(
            "PNG frame has bit depth {:?} after expansion",
            out.bit_depth
        )));
    }
    let (w, h) = (out.width as usize, out.height as usize);
    let samples = out.color_type.samples();
    let mut rgba = Vec::with_capacity(w * h * 4);
    for row in buffer.chunks_exact(out.line_size).take(h) {
        for p in row[..w * samples].chunks_exact(samples) {
            let px = match samples {
                1 => [p[0], p[0], p[0], 255],
                2 => [p[0], p[0], p[0], p[1]],
                3 => [p[0], p[1], p[2], 255],
                _ => [p[0], p[1], p[2], p[3]],
            };
            rgba.extend_from_slice(&px);
        }
    }
    if rgba.len() != w * h * 4 {
        return Err(corrupt("PNG frame is shorter than its size"));
    }
    Ok(Canvas {
        width: out.width,
        height: out.height,
        rgba,
    })
}

fn rows(canvas_width: u32, r: Region) -> impl Iterator<Item = std::ops::Range<usize>> {
    let stride = canvas_width as usize * 4;
    (r.y as usize..(r.y + r.height) as usize).map(move |y| {
        let start = y * stride + r.x as usize * 4;
        start..start + r.width as usize * 4
    })
}

fn clear(canvas: &mut Canvas, r: Region) {
    for range in rows(canvas.width, r) {
        canvas.rgba[range].fill(0);
    }
}

fn restore(canvas: &mut Canvas, before: &[u8], r: Region) {
    for range in rows(canvas.width, r) {
        canvas.rgba[range.clone()].copy_from_slice(&before[range]);
    }
}

/// Draws `frame` at `r`: without `blend` it replaces the region, with it each pixel is
/// composited onto the canvas (`blend(canvas_pixel, frame_pixel)`).
fn draw(canvas: &mut Canvas, frame: &Canvas, r: Region, blend: Option<impl Fn(&mut [u8], &[u8])>) {
    let frame_stride = frame.width as usize * 4;
    for (row, range) in rows(canvas.width, r).enumerate() {
        let src = &frame.rgba[row * frame_stride..(row + 1) * frame_stride];
        let dst = &mut canvas.rgba[range];
        let Some(blend) = &blend else {
            dst.copy_from_slice(src);
            continue;
        };
        for (d, s) in dst.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
            blend(d, s);
        }
    }
}

/// `s` over `d`, both straight alpha, in place (the APNG specification's formula).
fn over(d: &mut [u8], s: &[u8]) {
    let sa = u32::from(s[3]);
    if sa == 255 {
        d.copy_from_slice(s);
        return;
    }
    if sa == 0 {
        return;
    }
    let da = u32::from(d[3]) * (255 - sa) / 255;
    let out_a = sa + da;
    for c in 0..3 {
        let v = (u32::from(s[c]) * sa + u32::from(d[c]) * da + out_a / 2) / out_a;
        d[c] = v.min(255) as u8;
    }
    d[3] = out_a.min(255) as u8;
}

/// `s` over `d` in `image-webp` 0.2.4's integer arithmetic (libwebp's, with a rounded
/// division by 255), so a WebP frame composites to the very pixels of the reference
/// decoding.
fn webp_over(d: &mut [u8], s: &[u8]) {
    let sa = u32::from(s[3]);
    if sa == 0 {
        return;
    }
    let div_by_255 = |v: u32| (((v + 0x80) >> 8) + v + 0x80) >> 8;
    let da = div_by_255(u32::from(d[3]) * (255 - sa));
    let out_a = sa + da;
    let scale = (1u32 << 24) / out_a;
    for c in 0..3 {
        d[c] = (((u32::from(s[c]) * sa + u32::from(d[c]) * da) * scale) >> 24) as u8;
    }
    d[3] = out_a as u8;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_is_the_apng_formula() {
        let mut d = [0, 0, 255, 255];
        over(&mut d, &[255, 0, 0, 128]);
        assert_eq!(d, [128, 0, 127, 255]);
        let mut d = [10, 20, 30, 0];
        over(&mut d, &[200, 100, 50, 64]);
        assert_eq!(d, [200, 100, 50, 64], "over transparent keeps the source");
        let mut d = [1, 2, 3, 4];
        over(&mut d, &[9, 9, 9, 0]);
        assert_eq!(d, [1, 2, 3, 4]);
    }

    /// One frame of [`animated_webp`]: `(x, y, width, height, ANMF flags, rgba)`.
    type WebpFrame = (u32, u32, u32, u32, u8, Vec<u8>);

    /// An animated WebP of lossless frames.
    fn animated_webp(width: u32, height: u32, frames: &[WebpFrame]) -> Vec<u8> {
        use image::ImageEncoder;
        let chunk = |name: &[u8], payload: &[u8]| {
            let mut c = name.to_vec();
            c.extend((payload.len() as u32).to_le_bytes());
            c.extend(payload);
            if payload.len() % 2 == 1 {
                c.push(0);
            }
            c
        };
        let le24 = |v: u32| v.to_le_bytes()[..3].to_vec();
        let mut vp8x = vec![0x12, 0, 0, 0];
        vp8x.extend(le24(width - 1));
        vp8x.extend(le24(height - 1));
        let mut body = b"WEBP".to_vec();
        body.extend(chunk(b"VP8X", &vp8x));
        body.extend(chunk(b"ANIM", &[0; 6]));
        for (x, y, w, h, flags, rgba) in frames {
            let mut still = Vec::new();
            image::codecs::webp::WebPEncoder::new_lossless(&mut still)
                .write_image(rgba, *w, *h, image::ExtendedColorType::Rgba8)
                .unwrap();
            let mut anmf = Vec::new();
            for v in [x / 2, y / 2, w - 1, h - 1, 100] {
                anmf.extend(le24(v));
            }
            anmf.push(*flags);
            // The still's only chunk (VP8L), after its 12-byte RIFF header.
            anmf.extend_from_slice(&still[12..]);
            body.extend(chunk(b"ANMF", &anmf));
        }
        chunk(b"RIFF", &body)
    }

    fn webp_canvases(bytes: &[u8]) -> Vec<Canvas> {
        let mut canvases = Vec::new();
        let animated = for_each_frame(
            bytes,
            ImageFormat::Webp,
            &DecodeLimits::default(),
            &mut |_, canvas| {
                canvases.push(canvas.clone());
                Ok(())
            },
        )
        .unwrap();
        assert!(animated);
        canvases
    }

    #[test]
    fn webp_frame_disposed_to_background_is_cleared_to_transparent() {
        let opaque = [200, 10, 10, 255].repeat(16);
        let translucent = [0, 0, 0, 100].repeat(4);
        let bytes = animated_webp(
            4,
            4,
            &[(0, 0, 4, 4, 0x01, opaque), (2, 2, 2, 2, 0x00, translucent)],
        );
        let second = &webp_canvases(&bytes)[1].rgba;
        assert_eq!(second[..4], [0, 0, 0, 0], "the first frame is gone");
        let at = (2 * 4 + 2) * 4;
        assert_eq!(
            second[at..at + 4],
            [0, 0, 0, 100],
            "over transparency, not over red"
        );
    }

    #[test]
    fn webp_frames_without_disposal_are_image_webps() {
        let pattern = |w: u32, h: u32, seed: u8| -> Vec<u8> {
            (0..w * h * 4)
                .map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed))
                .collect()
        };
        let bytes = animated_webp(
            6,
            4,
            &[
                (0, 0, 6, 4, 0x00, pattern(6, 4, 1)),
                (2, 0, 4, 4, 0x00, pattern(4, 4, 2)),
                (0, 2, 3, 2, 0x02, pattern(3, 2, 3)),
                (0, 0, 6, 4, 0x00, pattern(6, 4, 4)),
            ],
        );
        let ours: Vec<Vec<u8>> = webp_canvases(&bytes).into_iter().map(|c| c.rgba).collect();
        let theirs: Vec<Vec<u8>> = image::codecs::webp::WebPDecoder::new(Cursor::new(&bytes))
            .unwrap()
            .into_frames()
            .map(|f| f.unwrap().into_buffer().into_raw())
            .collect();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn frame_ids_serialise_as_index_or_default() {
        assert_eq!(serde_json::to_string(&FrameId::Index(3)).unwrap(), "3");
        assert_eq!(
            serde_json::to_string(&FrameId::Default).unwrap(),
            "\"default\""
        );
        for id in [FrameId::Index(0), FrameId::Index(7), FrameId::Default] {
            let text = serde_json::to_string(&id).unwrap();
            assert_eq!(serde_json::from_str::<FrameId>(&text).unwrap(), id);
        }
        assert!(serde_json::from_str::<FrameId>("\"first\"").is_err());
        assert!(serde_json::from_str::<FrameId>("-1").is_err());
    }
}
