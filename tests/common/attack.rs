//! Builders for the files a pentester used to get past screening that looked only at the
//! first frame with alpha dropped: animations whose first frame is a brief harmless decoy
//! and whose later frame holds the picture, and translucent pictures that are blank with
//! alpha dropped but show the picture over a page colour. Every byte is written here, with
//! no binary fixture, so each case says exactly what its file holds.

use image::codecs::gif::GifEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{
    Delay, ExtendedColorType, Frame, GrayAlphaImage, GrayImage, ImageEncoder, LumaA, Rgb, RgbImage,
    Rgba, RgbaImage,
};

/// How long the decoy first frame shows: too short for a person to notice.
pub const FLASH_MS: u32 = 10;
/// How long the hidden frame shows.
pub const HOLD_MS: u32 = 60_000;

/// A scikit-image photo as RGB, resized to `width` x `height` (kept when already that size).
pub fn photo_rgb(name: &str, width: u32, height: u32) -> RgbImage {
    let photo = image::load_from_memory(&super::server::photo(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .to_rgb8();
    if photo.dimensions() == (width, height) {
        return photo;
    }
    image::imageops::resize(&photo, width, height, image::imageops::FilterType::Triangle)
}

/// A scikit-image photo as grey (its luma), resized to `width` x `height`.
pub fn photo_grey(name: &str, width: u32, height: u32) -> GrayImage {
    let photo = image::load_from_memory(&super::server::photo(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .to_luma8();
    if photo.dimensions() == (width, height) {
        return photo;
    }
    image::imageops::resize(&photo, width, height, image::imageops::FilterType::Triangle)
}

/// `grey` with the level copied into each channel, as decoders expand grey.
pub fn grey_to_rgb(grey: &GrayImage) -> RgbImage {
    RgbImage::from_fn(grey.width(), grey.height(), |x, y| {
        Rgb([grey.get_pixel(x, y)[0]; 3])
    })
}

/// `rgb` with every pixel fully opaque.
pub fn opaque(rgb: &RgbImage) -> RgbaImage {
    RgbaImage::from_fn(rgb.width(), rgb.height(), |x, y| {
        let [r, g, b] = rgb.get_pixel(x, y).0;
        Rgba([r, g, b, 255])
    })
}

/// Black colour channels, alpha 255 - grey: black with alpha dropped, and exactly `grey`
/// composited over a white page.
pub fn hidden_over_white(grey: &GrayImage) -> RgbaImage {
    RgbaImage::from_fn(grey.width(), grey.height(), |x, y| {
        Rgba([0, 0, 0, 255 - grey.get_pixel(x, y)[0]])
    })
}

/// White colour channels, alpha = grey: white with alpha dropped, and exactly `grey`
/// composited over a black page.
pub fn hidden_over_black(grey: &GrayImage) -> RgbaImage {
    RgbaImage::from_fn(grey.width(), grey.height(), |x, y| {
        Rgba([255, 255, 255, grey.get_pixel(x, y)[0]])
    })
}

/// [`hidden_over_white`] as grey+alpha, the PNG colour type with one channel less.
pub fn hidden_over_white_luma_alpha(grey: &GrayImage) -> GrayAlphaImage {
    GrayAlphaImage::from_fn(grey.width(), grey.height(), |x, y| {
        LumaA([0, 255 - grey.get_pixel(x, y)[0]])
    })
}

/// `rgb` with its four corners cut round (radius `radius`): the corners fully transparent
/// with black under them, every other pixel opaque. The usual cover-art mask.
pub fn rounded_corners(rgb: &RgbImage, radius: u32) -> RgbaImage {
    let (w, h) = rgb.dimensions();
    RgbaImage::from_fn(w, h, |x, y| {
        // Distance from the nearest corner's circle centre, when in a corner square.
        let cx = if x < radius {
            Some(radius - x)
        } else if x >= w - radius {
            Some(x + radius + 1 - w)
        } else {
            None
        };
        let cy = if y < radius {
            Some(radius - y)
        } else if y >= h - radius {
            Some(y + radius + 1 - h)
        } else {
            None
        };
        let cut = matches!((cx, cy), (Some(dx), Some(dy)) if dx * dx + dy * dy > radius * radius);
        if cut {
            Rgba([0, 0, 0, 0])
        } else {
            let [r, g, b] = rgb.get_pixel(x, y).0;
            Rgba([r, g, b, 255])
        }
    })
}

/// An animated GIF, each frame covering the canvas and shown for its milliseconds.
/// Frames of at most 256 colours keep their exact colours; more are quantised.
pub fn gif(frames: &[(&RgbaImage, u32)]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(&mut out, 10);
        encoder
            .encode_frames(frames.iter().map(|&(image, ms)| {
                Frame::from_parts(image.clone(), 0, 0, Delay::from_numer_denom_ms(ms, 1))
            }))
            .unwrap();
    }
    out
}

/// An APNG of RGBA frames covering the canvas, each replacing the canvas (blend `Source`,
/// dispose `None`) for its milliseconds. With `default`, the file's default image (IDAT,
/// what viewers without APNG support show) is that picture and is not part of the
/// animation (no fcTL before IDAT); without it the first frame is the default image.
pub fn apng(default: Option<&RgbaImage>, frames: &[(&RgbaImage, u32)]) -> Vec<u8> {
    let (width, height) = frames[0].0.dimensions();
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        encoder
            .set_animated(u32::try_from(frames.len()).unwrap(), 0)
            .unwrap();
        encoder.set_sep_def_img(default.is_some()).unwrap();
        let mut writer = encoder.write_header().unwrap();
        if let Some(default) = default {
            assert_eq!(default.dimensions(), (width, height));
            writer.write_image_data(default.as_raw()).unwrap();
        }
        for &(image, ms) in frames {
            writer
                .set_frame_delay(u16::try_from(ms).unwrap(), 1000)
                .unwrap();
            writer.set_blend_op(png::BlendOp::Source).unwrap();
            writer.set_dispose_op(png::DisposeOp::None).unwrap();
            writer.write_image_data(image.as_raw()).unwrap();
        }
        writer.finish().unwrap();
    }
    out
}

/// An animated WebP: a VP8X header (animation and alpha flags), an ANIM chunk (transparent
/// background, looping forever), then one ANMF per frame covering the canvas, shown for its
/// milliseconds and replacing the canvas (no blending, no disposal), holding the VP8L
/// chunk of the frame encoded as a still lossless WebP.
pub fn animated_webp(frames: &[(&RgbaImage, u32)]) -> Vec<u8> {
    let (width, height) = frames[0].0.dimensions();
    let mut body = b"WEBP".to_vec();
    let mut vp8x = vec![0x10 | 0x02, 0, 0, 0];
    vp8x.extend(le24(width - 1));
    vp8x.extend(le24(height - 1));
    body.extend(riff_chunk(b"VP8X", &vp8x));
    body.extend(riff_chunk(b"ANIM", &[0, 0, 0, 0, 0, 0]));
    for &(image, ms) in frames {
        assert_eq!(image.dimensions(), (width, height));
        // X/2 and Y/2, then width-1, height-1, duration, and the flags: bit 1 set is "do not
        // blend", bit 0 clear is "do not dispose".
        let mut anmf = [
            le24(0),
            le24(0),
            le24(width - 1),
            le24(height - 1),
            le24(ms),
        ]
        .concat();
        anmf.push(0b10);
        anmf.extend(vp8l_chunk(image));
        body.extend(riff_chunk(b"ANMF", &anmf));
    }
    let mut out = b"RIFF".to_vec();
    out.extend(u32::try_from(body.len()).unwrap().to_le_bytes());
    out.extend(body);
    out
}

/// The `VP8L` chunk (header, data, padding) of `image` as a still lossless WebP.
fn vp8l_chunk(image: &RgbaImage) -> Vec<u8> {
    let still = webp_rgba(image);
    // A still lossless WebP is `RIFF <size> WEBP VP8L <len> <data> [pad]`.
    assert_eq!(&still[..4], b"RIFF");
    assert_eq!(&still[8..16], b"WEBPVP8L");
    let len = u32::from_le_bytes(still[16..20].try_into().unwrap()) as usize;
    assert_eq!(still.len(), 20 + len + (len & 1), "one VP8L chunk only");
    still[12..].to_vec()
}

fn le24(v: u32) -> [u8; 3] {
    assert!(v < 1 << 24);
    let b = v.to_le_bytes();
    [b[0], b[1], b[2]]
}

/// A RIFF chunk: tag, little-endian length, data, a pad byte to an even length.
fn riff_chunk(tag: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut chunk = tag.to_vec();
    chunk.extend(u32::try_from(data.len()).unwrap().to_le_bytes());
    chunk.extend_from_slice(data);
    if data.len() % 2 == 1 {
        chunk.push(0);
    }
    chunk
}

fn png_of(raw: &[u8], width: u32, height: u32, colour: ExtendedColorType) -> Vec<u8> {
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(raw, width, height, colour)
        .unwrap();
    out
}

pub fn png_rgb(image: &RgbImage) -> Vec<u8> {
    png_of(
        image.as_raw(),
        image.width(),
        image.height(),
        ExtendedColorType::Rgb8,
    )
}

pub fn png_rgba(image: &RgbaImage) -> Vec<u8> {
    png_of(
        image.as_raw(),
        image.width(),
        image.height(),
        ExtendedColorType::Rgba8,
    )
}

pub fn png_luma_alpha(image: &GrayAlphaImage) -> Vec<u8> {
    png_of(
        image.as_raw(),
        image.width(),
        image.height(),
        ExtendedColorType::La8,
    )
}

fn webp_of(raw: &[u8], width: u32, height: u32, colour: ExtendedColorType) -> Vec<u8> {
    let mut out = Vec::new();
    WebPEncoder::new_lossless(&mut out)
        .write_image(raw, width, height, colour)
        .unwrap();
    out
}

/// A still lossless WebP (`image` writes lossless only).
pub fn webp_rgb(image: &RgbImage) -> Vec<u8> {
    webp_of(
        image.as_raw(),
        image.width(),
        image.height(),
        ExtendedColorType::Rgb8,
    )
}

/// A still lossless WebP with alpha.
pub fn webp_rgba(image: &RgbaImage) -> Vec<u8> {
    webp_of(
        image.as_raw(),
        image.width(),
        image.height(),
        ExtendedColorType::Rgba8,
    )
}

pub fn jpeg(image: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            ExtendedColorType::Rgb8,
        )
        .unwrap();
    out
}
