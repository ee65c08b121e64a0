//! WebP through the `image` crate, with its EXIF orientation.

use std::io::Cursor;

use image::ImageDecoder;

use super::image_crate::{finish_image_decode, image_error};
use super::orientation::{embedded_orientation, Orientation};
use super::{check_dimensions, corrupt, DecodeError, DecodeLimits, ImageFormat, ShownDecode};

pub(super) fn le_u16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

fn le_u24(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], 0])
}

/// Reads the canvas size from the first chunk of a WebP (VP8X, VP8L or VP8).
fn webp_header_dimensions(bytes: &[u8]) -> Result<(u32, u32), DecodeError> {
    if bytes.len() < 30 {
        return Err(corrupt(
            "WebP is truncated before the end of its image header",
        ));
    }
    let data = &bytes[20..];
    match &bytes[12..16] {
        b"VP8X" => Ok((1 + le_u24(&data[4..7]), 1 + le_u24(&data[7..10]))),
        b"VP8L" => {
            if data[0] != 0x2F {
                return Err(corrupt("WebP lossless header lacks its signature byte"));
            }
            let bits = u32::from_le_bytes([data[1], data[2], data[3], data[4]]);
            Ok((1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)))
        }
        b"VP8 " => {
            if data[3..6] != [0x9D, 0x01, 0x2A] {
                return Err(corrupt("WebP lossy header lacks its start code"));
            }
            Ok((
                u32::from(le_u16(&data[6..8]) & 0x3FFF),
                u32::from(le_u16(&data[8..10]) & 0x3FFF),
            ))
        }
        other => Err(corrupt(format!(
            "WebP's first chunk is {:?}, expected VP8X, VP8L or VP8",
            String::from_utf8_lossy(other)
        ))),
    }
}

pub(super) fn decode_webp(bytes: &[u8], limits: &DecodeLimits) -> ShownDecode {
    let (width, height) = webp_header_dimensions(bytes)?;
    check_dimensions(ImageFormat::Webp, width, height, limits)?;
    let declared = webp_with_lossless_alpha_declared(bytes);
    let bytes = declared.as_deref().unwrap_or(bytes);
    let mut decoder = image::codecs::webp::WebPDecoder::new(Cursor::new(bytes))
        .map_err(|e| image_error(ImageFormat::Webp, e))?;
    let orientation = webp_orientation(bytes, &mut decoder);
    finish_image_decode(ImageFormat::Webp, decoder, limits, orientation)
}

/// A still WebP whose lossless (VP8L) image has its alpha declared, when its headers deny
/// it: the VP8X alpha flag or the VP8L `alpha_is_used` hint unset. A lossless bitstream
/// always carries alpha, and browsers show it whatever the headers say (Chromium does,
/// tests/browser_compositing.rs), while `image-webp` believes them and drops it: an alpha
/// trick with the flag cleared would be screened as its blank colour layer only. A lossy
/// image's ALPH chunk is shown only with the VP8X flag, by browsers as by `image-webp`.
/// The colour channels decode the same either way. `None` when nothing is denied.
fn webp_with_lossless_alpha_declared(bytes: &[u8]) -> Option<Vec<u8>> {
    let set = |at: usize, bit: u8| {
        let mut declared = bytes.to_vec();
        declared[at] |= bit;
        declared
    };
    match bytes.get(12..16)? {
        // The 0x2f signature at 20, then 14 bits each of width and height - 1: the hint is
        // bit 28 of the little-endian word at 21, bit 4 of byte 24.
        b"VP8L" => (bytes.get(24)? & 0x10 == 0).then(|| set(24, 0x10)),
        // Animations are composited frame by frame (`frames`), with their frames' alpha.
        b"VP8X" if bytes.get(20)? & 0x12 == 0 => {
            // The image chunk follows VP8X's 10 bytes and any ICCP chunk.
            let mut pos = 30usize;
            while let Some(header) = bytes.get(pos..pos + 8) {
                match &header[..4] {
                    b"VP8L" => return Some(set(20, 0x10)),
                    b"VP8 " | b"ALPH" => return None,
                    _ => {}
                }
                let size =
                    u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
                pos = pos
                    .checked_add(8)?
                    .checked_add(size)?
                    .checked_add(size % 2)?;
            }
            None
        }
        _ => None,
    }
}

/// [`embedded_orientation`] of a WebP, unless a chunk header named EXIF declares more
/// bytes than follow it. `image-webp` allocates a chunk's declared size before reading it,
/// so a file of a few hundred bytes could ask for 4 GiB (a process abort where that is
/// refused); such a chunk cannot be read anyway, and unreadable EXIF means no rotation.
pub(super) fn webp_orientation(bytes: &[u8], decoder: &mut impl ImageDecoder) -> Orientation {
    // Chunk headers sit at even offsets from 12; any that could be taken for EXIF counts.
    let oversized = (12..bytes.len().saturating_sub(7)).step_by(2).any(|at| {
        let header = &bytes[at..at + 8];
        header[..4] == *b"EXIF"
            && u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize
                > bytes.len() - at - 8
    });
    if oversized {
        return Orientation::Normal;
    }
    embedded_orientation(decoder)
}
