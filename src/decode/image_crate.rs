//! What PNG, WebP and GIF share: the `image` crate's limits and errors, and its pixels
//! reduced to RGB8 as OpenCV reduces them.

use image::{DynamicImage, ImageDecoder};

use super::orientation::{orient, orient_canvas, Orientation};
use super::{
    check_dimensions, corrupt, Canvas, DecodeError, DecodeLimits, ImageFormat, ShownDecode,
};

/// Allocation ceiling handed to the `image` decoders: the largest output buffer an
/// accepted image can need (16-bit RGBA) plus room for metadata chunks.
pub(super) fn image_crate_limits(limits: &DecodeLimits) -> image::Limits {
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(limits.max_side);
    image_limits.max_image_height = Some(limits.max_side);
    image_limits.max_alloc = Some(
        limits
            .max_pixels
            .saturating_mul(8)
            .saturating_add(64 * 1024 * 1024),
    );
    image_limits
}

pub(super) fn image_error(format: ImageFormat, error: image::ImageError) -> DecodeError {
    match error {
        image::ImageError::Unsupported(e) => DecodeError::UnsupportedFormat {
            detail: format!("{format} variant not supported by the decoder: {e}"),
        },
        image::ImageError::Limits(e) => corrupt(format!(
            "{format} needs more memory than its declared size allows: {e}"
        )),
        other => corrupt(format!("{format}: {other}")),
    }
}

/// Decodes with an `image` decoder whose header has been read but whose pixels have
/// not: checks the declared size, then decodes and converts to RGB8 (and keeps the RGBA
/// a viewer sees when the alpha channel is not fully opaque).
pub(super) fn finish_image_decode(
    format: ImageFormat,
    decoder: impl ImageDecoder,
    limits: &DecodeLimits,
    orientation: Orientation,
) -> ShownDecode {
    let (width, height) = decoder.dimensions();
    check_dimensions(format, width, height, limits)?;
    let image = DynamicImage::from_decoder(decoder).map_err(|e| image_error(format, e))?;
    let shown = translucent_rgba(&image).map(|rgba| {
        orient_canvas(
            Canvas {
                width,
                height,
                rgba,
            },
            orientation,
        )
    });
    let rgb = rgb8_like_opencv(format, image)?;
    Ok((orient(format, width, height, rgb, orientation), shown))
}

/// The image as RGBA8 when it has an alpha channel with any pixel not fully opaque; 16-bit
/// samples keep their high byte, as the colour channels do.
fn translucent_rgba(image: &DynamicImage) -> Option<Vec<u8>> {
    let opaque = match image {
        DynamicImage::ImageRgba8(buf) => buf.as_raw().chunks_exact(4).all(|p| p[3] == 255),
        DynamicImage::ImageLumaA8(buf) => buf.as_raw().chunks_exact(2).all(|p| p[1] == 255),
        DynamicImage::ImageRgba16(buf) => buf.as_raw().chunks_exact(4).all(|p| p[3] >> 8 == 255),
        DynamicImage::ImageLumaA16(buf) => buf.as_raw().chunks_exact(2).all(|p| p[1] >> 8 == 255),
        _ => true,
    };
    if opaque {
        return None;
    }
    let high = |v: u16| (v >> 8) as u8;
    Some(match image {
        DynamicImage::ImageRgba8(buf) => buf.as_raw().clone(),
        DynamicImage::ImageLumaA8(buf) => buf
            .as_raw()
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0], p[1]])
            .collect(),
        DynamicImage::ImageRgba16(buf) => buf.as_raw().iter().map(|&v| high(v)).collect(),
        DynamicImage::ImageLumaA16(buf) => buf
            .as_raw()
            .chunks_exact(2)
            .flat_map(|p| [high(p[0]), high(p[0]), high(p[0]), high(p[1])])
            .collect(),
        _ => return None,
    })
}

/// IMREAD_COLOR's channel rules: grey is replicated, alpha is dropped (no
/// compositing), 16-bit samples keep their high byte (libpng `png_set_strip_16`).
fn rgb8_like_opencv(format: ImageFormat, image: DynamicImage) -> Result<Vec<u8>, DecodeError> {
    fn high_byte(v: u16) -> u8 {
        (v >> 8) as u8
    }
    let rgb = match image {
        DynamicImage::ImageRgb8(buf) => buf.into_raw(),
        DynamicImage::ImageRgba8(buf) => buf
            .as_raw()
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        DynamicImage::ImageLuma8(buf) => buf.as_raw().iter().flat_map(|&l| [l, l, l]).collect(),
        DynamicImage::ImageLumaA8(buf) => buf
            .as_raw()
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0]])
            .collect(),
        DynamicImage::ImageRgb16(buf) => buf.as_raw().iter().map(|&v| high_byte(v)).collect(),
        DynamicImage::ImageRgba16(buf) => buf
            .as_raw()
            .chunks_exact(4)
            .flat_map(|p| [high_byte(p[0]), high_byte(p[1]), high_byte(p[2])])
            .collect(),
        DynamicImage::ImageLuma16(buf) => buf
            .as_raw()
            .iter()
            .flat_map(|&v| [high_byte(v); 3])
            .collect(),
        DynamicImage::ImageLumaA16(buf) => buf
            .as_raw()
            .chunks_exact(2)
            .flat_map(|p| [high_byte(p[0]); 3])
            .collect(),
        other => {
            return Err(DecodeError::UnsupportedFormat {
                detail: format!(
                    "{format} decoded to an unexpected pixel type {:?}",
                    other.color()
                ),
            })
        }
    };
    Ok(rgb)
}
