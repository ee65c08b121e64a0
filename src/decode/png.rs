//! PNG through the `image` crate.

use std::io::Cursor;

use super::image_crate::{finish_image_decode, image_crate_limits, image_error};
use super::orientation::embedded_orientation;
use super::{check_dimensions, corrupt, DecodeError, DecodeLimits, ImageFormat, ShownDecode};

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Reads width and height from the IHDR chunk, which the PNG spec requires first.
fn png_header_dimensions(bytes: &[u8]) -> Result<(u32, u32), DecodeError> {
    if bytes.len() < 24 {
        return Err(corrupt(
            "PNG is truncated before the end of its IHDR header",
        ));
    }
    if &bytes[12..16] != b"IHDR" {
        return Err(corrupt("PNG's first chunk is not IHDR"));
    }
    Ok((be_u32(&bytes[16..20]), be_u32(&bytes[20..24])))
}

pub(super) fn decode_png(bytes: &[u8], limits: &DecodeLimits) -> ShownDecode {
    let (width, height) = png_header_dimensions(bytes)?;
    check_dimensions(ImageFormat::Png, width, height, limits)?;
    let mut decoder =
        image::codecs::png::PngDecoder::with_limits(Cursor::new(bytes), image_crate_limits(limits))
            .map_err(|e| image_error(ImageFormat::Png, e))?;
    // eXIf must precede IDAT to be seen here; that is where writers put it.
    let orientation = embedded_orientation(&mut decoder);
    finish_image_decode(ImageFormat::Png, decoder, limits, orientation)
}
