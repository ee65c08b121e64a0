//! GIF's first frame through the `image` crate, placed on its logical screen.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder};

use super::image_crate::{image_crate_limits, image_error};
use super::webp::le_u16;
use super::{check_dimensions, corrupt, DecodeError, DecodeLimits, DecodedImage, ImageFormat};

/// Reads the logical screen size from the GIF header.
fn gif_header_dimensions(bytes: &[u8]) -> Result<(u32, u32), DecodeError> {
    if bytes.len() < 10 {
        return Err(corrupt(
            "GIF is truncated before the end of its screen descriptor",
        ));
    }
    Ok((
        u32::from(le_u16(&bytes[6..8])),
        u32::from(le_u16(&bytes[8..10])),
    ))
}

/// Position and size of a GIF frame, from its image descriptor.
struct GifFrameRect {
    left: u32,
    top: u32,
    width: u32,
    height: u32,
}

/// Walks the GIF block structure up to the first image descriptor.
fn gif_first_frame_rect(bytes: &[u8]) -> Result<GifFrameRect, DecodeError> {
    let truncated = || corrupt("GIF is truncated before its first image");
    let flags = *bytes.get(10).ok_or_else(truncated)?;
    let mut pos = 13;
    if flags & 0x80 != 0 {
        pos += 3 * (1usize << ((flags & 0x07) + 1));
    }
    loop {
        match *bytes.get(pos).ok_or_else(truncated)? {
            // Extension: label byte, then data sub-blocks ending with a zero length.
            0x21 => {
                pos += 2;
                loop {
                    let len = usize::from(*bytes.get(pos).ok_or_else(truncated)?);
                    pos += 1 + len;
                    if len == 0 {
                        break;
                    }
                }
            }
            0x2C => {
                let d = bytes.get(pos + 1..pos + 9).ok_or_else(truncated)?;
                return Ok(GifFrameRect {
                    left: u32::from(le_u16(&d[0..2])),
                    top: u32::from(le_u16(&d[2..4])),
                    width: u32::from(le_u16(&d[4..6])),
                    height: u32::from(le_u16(&d[6..8])),
                });
            }
            0x3B => return Err(corrupt("GIF ends before any image")),
            other => {
                return Err(corrupt(format!(
                    "GIF has an unknown block type 0x{other:02x} at byte {pos}"
                )))
            }
        }
    }
}

pub(super) fn decode_gif(bytes: &[u8], limits: &DecodeLimits) -> Result<DecodedImage, DecodeError> {
    let (width, height) = gif_header_dimensions(bytes)?;
    check_dimensions(ImageFormat::Gif, width, height, limits)?;
    // The spec requires frames inside the logical screen; OpenCV refuses other files
    // (Pillow grows the canvas instead), so we refuse them too.
    let frame = gif_first_frame_rect(bytes)?;
    let fits = frame.width > 0
        && frame.height > 0
        && frame.left + frame.width <= width
        && frame.top + frame.height <= height;
    if !fits {
        return Err(corrupt(format!(
            "GIF's first frame ({}x{} at {},{}) does not fit its {width}x{height} screen",
            frame.width, frame.height, frame.left, frame.top
        )));
    }
    let decoder = gif_decoder(bytes, limits)?;
    // `read_image` of the GIF decoder yields the first frame only, as RGBA where
    // transparent pixels and the screen outside the frame have alpha 0.
    let (width, height) = decoder.dimensions();
    check_dimensions(ImageFormat::Gif, width, height, limits)?;
    let frame = DynamicImage::from_decoder(decoder)
        .map_err(|e| image_error(ImageFormat::Gif, e))?
        .into_rgba8();
    // OpenCV paints the first frame onto a canvas of the background colour and leaves
    // transparent pixels showing it (Pillow shows the transparent index's own colour).
    let background = gif_background_rgb(bytes);
    let rgb = frame
        .as_raw()
        .chunks_exact(4)
        .flat_map(|p| {
            if p[3] == 0 {
                background
            } else {
                [p[0], p[1], p[2]]
            }
        })
        .collect();
    Ok(DecodedImage {
        format: ImageFormat::Gif,
        width,
        height,
        source_width: width,
        source_height: height,
        rgb,
    })
}

/// A GIF decoder whose allocations are bounded by `limits` (a frame larger than the screen
/// included).
pub(super) fn gif_decoder<'a>(
    bytes: &'a [u8],
    limits: &DecodeLimits,
) -> Result<image::codecs::gif::GifDecoder<Cursor<&'a [u8]>>, DecodeError> {
    let mut decoder = image::codecs::gif::GifDecoder::new(Cursor::new(bytes))
        .map_err(|e| image_error(ImageFormat::Gif, e))?;
    decoder
        .set_limits(image_crate_limits(limits))
        .map_err(|e| image_error(ImageFormat::Gif, e))?;
    Ok(decoder)
}

/// The global colour table entry named by the screen descriptor's background index;
/// black when there is no global table or the index is outside it.
pub(super) fn gif_background_rgb(bytes: &[u8]) -> [u8; 3] {
    let (Some(&flags), Some(&index)) = (bytes.get(10), bytes.get(11)) else {
        return [0, 0, 0];
    };
    let has_global_table = flags & 0x80 != 0;
    let table_len = 1usize << ((flags & 0x07) + 1);
    let index = usize::from(index);
    if !has_global_table || index >= table_len {
        return [0, 0, 0];
    }
    let at = 13 + index * 3;
    match bytes.get(at..at + 3) {
        Some(c) => [c[0], c[1], c[2]],
        None => [0, 0, 0],
    }
}
