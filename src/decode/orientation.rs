//! EXIF orientation: read tolerantly from the container's metadata and applied to pixels.

use image::ImageDecoder;

use super::{Canvas, DecodedImage, ImageFormat};

/// Orientation from the EXIF block an `image` decoder exposes; unreadable EXIF means none.
pub(super) fn embedded_orientation(decoder: &mut impl ImageDecoder) -> Orientation {
    decoder
        .exif_metadata()
        .ok()
        .flatten()
        .map_or(Orientation::Normal, |exif| exif_orientation(&exif))
}

/// EXIF orientation tag values 1..=8 (TIFF 6.0 / EXIF 2.3 semantics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Orientation {
    /// 1: as stored.
    Normal,
    /// 2: mirror left-right.
    FlipHorizontal,
    /// 3: rotate 180 degrees.
    Rotate180,
    /// 4: mirror top-bottom.
    FlipVertical,
    /// 5: transpose (mirror along the main diagonal).
    Transpose,
    /// 6: rotate 90 degrees clockwise.
    Rotate90,
    /// 7: transverse (mirror along the anti-diagonal).
    Transverse,
    /// 8: rotate 270 degrees clockwise.
    Rotate270,
}

impl Orientation {
    fn from_exif_value(value: u32) -> Self {
        match value {
            2 => Orientation::FlipHorizontal,
            3 => Orientation::Rotate180,
            4 => Orientation::FlipVertical,
            5 => Orientation::Transpose,
            6 => Orientation::Rotate90,
            7 => Orientation::Transverse,
            8 => Orientation::Rotate270,
            // 1, absent, or out of range: OpenCV leaves the image as stored.
            _ => Orientation::Normal,
        }
    }

    pub(super) fn swaps_axes(self) -> bool {
        matches!(
            self,
            Orientation::Transpose
                | Orientation::Rotate90
                | Orientation::Transverse
                | Orientation::Rotate270
        )
    }
}

/// Orientation from a TIFF-structured EXIF block (leading "Exif\0\0" tolerated).
/// Unreadable EXIF means no rotation, as in OpenCV, never an error.
pub(super) fn exif_orientation(exif: &[u8]) -> Orientation {
    let tiff = exif.strip_prefix(b"Exif\0\0").unwrap_or(exif);
    let mut reader = exif::Reader::new();
    // A damaged later IFD must not hide a valid orientation in IFD0.
    reader.continue_on_error(true);
    let parsed = match reader.read_raw(tiff.to_vec()) {
        Ok(parsed) => parsed,
        Err(error) => match error.distill_partial_result(|_| {}) {
            Ok(partial) => partial,
            Err(_) => return Orientation::Normal,
        },
    };
    parsed
        .get_field(exif::Tag::Orientation, exif::In::PRIMARY)
        .and_then(|field| field.value.get_uint(0))
        .map_or(Orientation::Normal, Orientation::from_exif_value)
}

/// Applies `orientation` to a `width` x `height` RGB8 buffer.
pub(super) fn orient(
    format: ImageFormat,
    width: u32,
    height: u32,
    rgb: Vec<u8>,
    orientation: Orientation,
) -> DecodedImage {
    let (width, height, rgb) = orient_pixels::<3>(width, height, rgb, orientation);
    DecodedImage {
        format,
        width,
        height,
        source_width: width,
        source_height: height,
        rgb,
    }
}

/// Applies `orientation` to an RGBA canvas, as to the reference decoding.
pub(super) fn orient_canvas(canvas: Canvas, orientation: Orientation) -> Canvas {
    let (width, height, rgba) =
        orient_pixels::<4>(canvas.width, canvas.height, canvas.rgba, orientation);
    Canvas {
        width,
        height,
        rgba,
    }
}

/// Applies `orientation` to a `width` x `height` buffer of `N`-byte pixels.
fn orient_pixels<const N: usize>(
    width: u32,
    height: u32,
    pixels: Vec<u8>,
    orientation: Orientation,
) -> (u32, u32, Vec<u8>) {
    if orientation == Orientation::Normal {
        return (width, height, pixels);
    }
    let (w, h) = (width as usize, height as usize);
    let (out_width, out_height) = if orientation.swaps_axes() {
        (height, width)
    } else {
        (width, height)
    };
    let out_w = out_width as usize;
    let mut out = vec![0u8; pixels.len()];
    for (y, row) in out.chunks_exact_mut(out_w * N).enumerate() {
        for (x, px) in row.chunks_exact_mut(N).enumerate() {
            // Source pixel in the stored image for output pixel (x, y).
            let (sx, sy) = match orientation {
                Orientation::Normal => (x, y),
                Orientation::FlipHorizontal => (w - 1 - x, y),
                Orientation::Rotate180 => (w - 1 - x, h - 1 - y),
                Orientation::FlipVertical => (x, h - 1 - y),
                Orientation::Transpose => (y, x),
                Orientation::Rotate90 => (y, h - 1 - x),
                Orientation::Transverse => (w - 1 - y, h - 1 - x),
                Orientation::Rotate270 => (w - 1 - y, x),
            };
            let src = (sy * w + sx) * N;
            px.copy_from_slice(&pixels[src..src + N]);
        }
    }
    (out_width, out_height, out)
}
