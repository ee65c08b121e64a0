//! Decode stage: untrusted image bytes -> tightly packed RGB8 pixels.
//!
//! The pixels must equal what the two reference pipelines see, because hashes and
//! classifier scores are compared against them:
//! - NudeNet decodes with OpenCV `cv2.imread(path)` (IMREAD_COLOR): EXIF orientation
//!   applied, alpha dropped (not composited), grey replicated, palette expanded,
//!   16-bit reduced to 8-bit by keeping the high byte.
//! - Meta's PDQ reference decodes with Pillow `Image.open(p).convert("RGB")`.
//!
//! Where the two disagree we follow OpenCV (the classifier's reference). JPEG goes
//! through libjpeg-turbo (as `mozjpeg`) so DCT, upsampling and colour conversion are
//! bit-identical to both references; PNG, WebP and GIF go through the `image` crate.
//!
//! Hostile input is expected: the format is sniffed from magic bytes, dimensions are
//! checked from the header before any pixel buffer exists, every decoder runs under
//! `catch_unwind`, and libjpeg's "corrupt data" warnings are errors (fail closed), where
//! OpenCV would return a partly grey image.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

pub mod frames;
mod gif;
mod image_crate;
mod jpeg;
mod orientation;
mod png;
mod webp;

pub use frames::{for_each_frame, Canvas, FrameId, FrameSink};
use gif::decode_gif;
use jpeg::{decode_jpeg, LibjpegFailure};
use png::decode_png;
use webp::decode_webp;

/// Resource limits applied before and during decoding.
#[derive(Clone, Debug)]
pub struct DecodeLimits {
    /// Largest accepted encoded file, in bytes.
    pub max_bytes: usize,
    /// Largest accepted width x height, as declared by the file header.
    pub max_pixels: u64,
    /// Largest accepted width or height, in pixels.
    pub max_side: u32,
    /// Most frames of one animation that are decoded; a longer one is refused.
    pub max_frames: u32,
    /// Most decoded canvas pixels over all frames of one animation; more is refused.
    pub max_animation_pixels: u64,
    /// Most distinct views (frames and renderings over page colours, beyond the reference
    /// decoding) screened for one file; more is refused.
    pub max_views: u32,
}

/// Default [`DecodeLimits::max_frames`].
pub const DEFAULT_MAX_FRAMES: u32 = 1_000;
/// Default [`DecodeLimits::max_animation_pixels`]: 122 frames of 640 x 640. Analysing that
/// many pixels with 32 distinct views took 0.54 s of one core on the 2-core reference
/// machine (`cargo run --release --example view_budget`), and inferring the 33 pictures
/// about 0.3 s more: under half the default 2 s request deadline.
pub const DEFAULT_MAX_ANIMATION_PIXELS: u64 = 50_000_000;
/// Default [`DecodeLimits::max_views`]: each view costs one PDQ and one inference.
pub const DEFAULT_MAX_VIEWS: u32 = 32;

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_bytes: 32 * 1024 * 1024,
            max_pixels: 50_000_000,
            max_side: 20_000,
            max_frames: DEFAULT_MAX_FRAMES,
            max_animation_pixels: DEFAULT_MAX_ANIMATION_PIXELS,
            max_views: DEFAULT_MAX_VIEWS,
        }
    }
}

/// Container formats we decode, identified from magic bytes only.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Jpeg,
    Png,
    Webp,
    Gif,
}

impl ImageFormat {
    /// Lowercase machine name, as serialized.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpeg",
            ImageFormat::Png => "png",
            ImageFormat::Webp => "webp",
            ImageFormat::Gif => "gif",
        }
    }

    /// Name used in human-readable messages.
    fn label(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "JPEG",
            ImageFormat::Png => "PNG",
            ImageFormat::Webp => "WebP",
            ImageFormat::Gif => "GIF",
        }
    }
}

impl std::fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// A decoded image: `width` and `height` are after EXIF orientation was applied, and
/// `rgb` holds `width * height * 3` bytes, row-major, no padding.
///
/// `source_width` x `source_height` is the image's own size (oriented). It differs from
/// `width` x `height` only when a JPEG was decoded at reduced scale ([`Resolution`]).
#[derive(Clone)]
pub struct DecodedImage {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
    pub source_width: u32,
    pub source_height: u32,
    pub rgb: Vec<u8>,
}

impl DecodedImage {
    /// 1 for every pixel, else 2, 4 or 8: how many source pixels one decoded pixel spans
    /// along the longer side, rounded (decoded sides are rounded up).
    #[must_use]
    pub fn scale_denominator(&self) -> u32 {
        let decoded = self.width.max(self.height).max(1);
        let source = self.source_width.max(self.source_height);
        (source + decoded / 2) / decoded
    }
}

/// How many pixels a caller needs.
///
/// JPEG can be decoded at 1/2, 1/4 or 1/8 scale in the DCT domain (libjpeg-turbo's
/// reduced-size IDCT), which skips most of the work of a large image that is only
/// going to be shrunk. Other formats always decode in full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// Every pixel: what the references see, so hashes and scores are theirs exactly.
    Full,
    /// The smallest DCT scale whose longer side is still at least this many pixels.
    LongSideAtLeast(u32),
}

impl Resolution {
    /// The fast path, for operators who trade PDQ exactness for throughput: a JPEG at
    /// the smallest of 1/2, 1/4 and 1/8 that leaves its longer side at 1024 px or more
    /// (images under 2047 px are still decoded in full). Measured on the benchmark photos
    /// (`cargo run --release --example scaled_decode 2048 2400 3000 4000`): no verdict
    /// and no explicit score changed by more than 0.004, but PDQ moved by a median of
    /// 2 to 4 bits and up to 18 on natural photos (24 on 4000 px ones), where a re-encode
    /// moves it by 0 to 8; so the default stays [`Resolution::Full`], which keeps bank
    /// matches exactly as the references compute them.
    pub const FAST: Resolution = Resolution::LongSideAtLeast(1024);

    /// libjpeg's scale numerator (out of 8) for an image of `width` x `height`.
    fn jpeg_scale_numerator(self, width: u32, height: u32) -> u8 {
        match self {
            Resolution::Full => 8,
            Resolution::LongSideAtLeast(min) => {
                let long = u64::from(width.max(height));
                // Output sides are ceil(side * n / 8); take the smallest n that keeps `min`.
                [1u8, 2, 4]
                    .into_iter()
                    .find(|&n| (long * u64::from(n)).div_ceil(8) >= u64::from(min))
                    .unwrap_or(8)
            }
        }
    }
}

impl std::fmt::Debug for DecodedImage {
    // Pixels are left out: printing megabytes of them helps no one.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodedImage")
            .field("format", &self.format)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("source_width", &self.source_width)
            .field("source_height", &self.source_height)
            .field("rgb_len", &self.rgb.len())
            .finish()
    }
}

/// Why an image could not be decoded. `kind()` gives a stable machine-readable name.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("image is {bytes} bytes, over the limit of {max} bytes (max_bytes)")]
    TooLarge { bytes: usize, max: usize },
    #[error("image is empty (0 bytes)")]
    Empty,
    #[error("unsupported image format: {detail}")]
    UnsupportedFormat { detail: String },
    #[error("{reason}")]
    Dimensions {
        width: u32,
        height: u32,
        reason: String,
    },
    #[error("corrupt or truncated image: {detail}")]
    Corrupt { detail: String },
    #[error("image decoder crashed (caught; the image is refused): {detail}")]
    DecoderPanicked { detail: String },
    /// Screening every frame would exceed the animation limits; nothing of it is allowed.
    #[error("animation over the screening budget (refused, not screened in part): {detail}")]
    AnimationBudget { detail: String },
}

impl DecodeError {
    /// Stable name of the error class, for logs, metrics and API responses.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::TooLarge { .. } => "too_large",
            DecodeError::Empty => "empty",
            DecodeError::UnsupportedFormat { .. } => "unsupported_format",
            DecodeError::Dimensions { .. } => "dimensions",
            DecodeError::Corrupt { .. } => "corrupt",
            DecodeError::DecoderPanicked { .. } => "decoder_panic",
            DecodeError::AnimationBudget { .. } => "animation_budget",
        }
    }
}

fn corrupt(detail: impl Into<String>) -> DecodeError {
    DecodeError::Corrupt {
        detail: detail.into(),
    }
}

const SUPPORTED_FORMATS: &str = "supported formats are JPEG, PNG, WebP and GIF";

/// Identifies the format from its magic bytes (never from a file name).
#[must_use]
pub fn sniff_format(bytes: &[u8]) -> Option<ImageFormat> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageFormat::Jpeg)
    } else if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some(ImageFormat::Png)
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some(ImageFormat::Gif)
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some(ImageFormat::Webp)
    } else {
        None
    }
}

/// Names what the bytes look like, so the user knows what to convert from.
fn describe_unsupported(bytes: &[u8]) -> String {
    // One row a format: its name, where its magic stands, and the magics it may have.
    let known: &[(&str, usize, &[&[u8]])] = &[
        ("BMP", 0, &[b"BM"]),
        ("TIFF", 0, &[b"II*\0", b"MM\0*"]),
        ("AVIF", 4, &[b"ftypavif", b"ftypavis"]),
        ("HEIC", 4, &[b"ftypheic", b"ftypheix"]),
        ("HEIF", 4, &[b"ftypmif1", b"ftypmsf1"]),
        ("JPEG XL", 0, &[&[0xFF, 0x0A], b"\0\0\0\x0cJXL "]),
        ("JPEG 2000", 0, &[b"\0\0\0\x0cjP  "]),
        ("ICO", 0, &[b"\0\0\x01\0"]),
        ("PDF", 0, &[b"%PDF"]),
        ("Photoshop PSD", 0, &[b"8BPS"]),
        ("QOI", 0, &[b"qoif"]),
        ("SVG", 0, &[b"<svg"]),
        ("XML (SVG?)", 0, &[b"<?xml"]),
    ];
    for (name, offset, magics) in known {
        let at = |magic: &[u8]| bytes.get(*offset..offset + magic.len()) == Some(magic);
        if magics.iter().any(|magic| at(magic)) {
            return format!("the bytes are {name}, not an accepted format; {SUPPORTED_FORMATS}");
        }
    }
    if bytes.starts_with(&[0xFF, 0xD8]) {
        return format!(
            "the bytes start like JPEG (FF D8) but lack the marker that must follow; {SUPPORTED_FORMATS}"
        );
    }
    if bytes.starts_with(b"RIFF") {
        return format!("RIFF container that is not WebP; {SUPPORTED_FORMATS}");
    }
    let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let looks_textual = bytes
        .iter()
        .take(64)
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace());
    let hint = if looks_textual {
        " (looks like text)"
    } else {
        ""
    };
    format!(
        "unrecognised leading bytes {}{hint}; {SUPPORTED_FORMATS}",
        head.join(" ")
    )
}

/// Decodes `bytes` into RGB8 exactly as OpenCV's `imread(IMREAD_COLOR)` would, with
/// EXIF orientation applied. Never panics; never allocates pixel memory for an image
/// whose header exceeds `limits`.
///
/// # Errors
/// `Empty`, `TooLarge` and `UnsupportedFormat` before any parsing; `Dimensions` from
/// the header; `Corrupt` for truncated or damaged data (including libjpeg's
/// corrupt-data warnings); `DecoderPanicked` if a decoder panicked (caught).
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<DecodedImage, DecodeError> {
    decode_at(bytes, limits, Resolution::Full)
}

/// [`decode`], at reduced scale where `resolution` allows it (JPEG only). Limits are
/// checked against the image's own size, whatever the scale.
///
/// # Errors
/// As [`decode`].
pub fn decode_at(
    bytes: &[u8],
    limits: &DecodeLimits,
    resolution: Resolution,
) -> Result<DecodedImage, DecodeError> {
    decode_shown_at(bytes, limits, resolution).map(|(image, _)| image)
}

/// A decoding and, where it differs, the still picture a viewer sees.
pub(crate) type ShownDecode = Result<(DecodedImage, Option<Canvas>), DecodeError>;

/// [`decode_at`], plus the still picture as a viewer sees it when that differs from the
/// reference decoding: the oriented RGBA of a PNG or WebP whose alpha channel is not fully
/// opaque (the reference drops alpha). `None` for opaque images, JPEG and GIF (a GIF's
/// canvas comes from [`for_each_frame`]).
///
/// # Errors
/// As [`decode`].
pub fn decode_shown_at(
    bytes: &[u8],
    limits: &DecodeLimits,
    resolution: Resolution,
) -> Result<(DecodedImage, Option<Canvas>), DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    if bytes.len() > limits.max_bytes {
        return Err(DecodeError::TooLarge {
            bytes: bytes.len(),
            max: limits.max_bytes,
        });
    }
    let format = sniff_format(bytes).ok_or_else(|| DecodeError::UnsupportedFormat {
        detail: describe_unsupported(bytes),
    })?;
    guarded(format, || match format {
        ImageFormat::Jpeg => decode_jpeg(bytes, limits, resolution).map(|i| (i, None)),
        ImageFormat::Png => decode_png(bytes, limits),
        ImageFormat::Webp => decode_webp(bytes, limits),
        ImageFormat::Gif => decode_gif(bytes, limits).map(|i| (i, None)),
    })
}

/// Runs a decoder of `format`, turning a panic into an error. libjpeg reports fatal errors
/// by unwinding (see `jpeg_error_exit`); the `image` decoders should not panic, but a bug
/// there must fail one image, not take the service down.
///
/// # Errors
/// `f`'s error, or `DecoderPanicked`.
pub fn guarded<T>(
    format: ImageFormat,
    f: impl FnOnce() -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => Err(error_from_unwind(format, payload)),
    }
}

fn error_from_unwind(format: ImageFormat, payload: Box<dyn Any + Send>) -> DecodeError {
    if let Some(failure) = payload.downcast_ref::<LibjpegFailure>() {
        return failure.to_decode_error();
    }
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("no panic message");
    DecodeError::DecoderPanicked {
        detail: format!("the {format} decoder panicked: {message}"),
    }
}

/// Refuses zero-sized and oversized images from header values alone.
fn check_dimensions(
    format: ImageFormat,
    width: u32,
    height: u32,
    limits: &DecodeLimits,
) -> Result<(), DecodeError> {
    let refuse = |reason: String| DecodeError::Dimensions {
        width,
        height,
        reason,
    };
    if width == 0 || height == 0 {
        return Err(refuse(format!(
            "{format} header declares {width}x{height}: an image needs at least one pixel in each direction"
        )));
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(refuse(format!(
            "{format} header declares {width}x{height} = {pixels} pixels, over the limit of {} (max_pixels)",
            limits.max_pixels
        )));
    }
    let longest = width.max(height);
    if longest > limits.max_side {
        return Err(refuse(format!(
            "{format} header declares {width}x{height}: a side of {longest} px is over the limit of {} px (max_side)",
            limits.max_side
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::gif::gif_background_rgb;
    use super::jpeg::{cmyk_to_rgb_like_opencv, jpeg_warning_is_harmless};
    use super::*;
    use image::{ImageEncoder, RgbImage, RgbaImage};

    fn limits() -> DecodeLimits {
        DecodeLimits::default()
    }

    /// Decodes `bytes` and checks that it shows `plain` turned as EXIF orientation `value` says.
    fn assert_oriented(bytes: &[u8], plain: &RgbImage, value: u16) {
        let out = decode(bytes, &limits()).unwrap();
        let expected = oriented_reference(plain, value);
        assert_eq!(
            (out.width, out.height),
            expected.dimensions(),
            "orientation {value}"
        );
        assert_eq!(out.rgb, expected.into_raw(), "orientation {value}");
    }

    /// Decodes `bytes` and checks the format and size it reports.
    fn decoded_as(bytes: &[u8], format: ImageFormat, (width, height): (u32, u32)) -> DecodedImage {
        let out = decode(bytes, &limits()).unwrap();
        assert_eq!((out.format, out.width, out.height), (format, width, height));
        out
    }

    fn lossless_webp(rgba: &RgbaImage) -> Vec<u8> {
        let mut webp = Vec::new();
        image::codecs::webp::WebPEncoder::new_lossless(&mut webp)
            .write_image(
                rgba.as_raw(),
                rgba.width(),
                rgba.height(),
                image::ExtendedColorType::Rgba8,
            )
            .unwrap();
        webp
    }

    /// The colour channels of `rgba`, alpha dropped.
    fn colour_of(rgba: &RgbaImage) -> Vec<u8> {
        rgba.pixels()
            .flat_map(|p| [p.0[0], p.0[1], p.0[2]])
            .collect()
    }

    /// A small image with distinct values everywhere, so flips and rotations show.
    fn test_rgb(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([
                (x * 6) as u8,
                (y * 10) as u8,
                ((x * 7 + y * 13) % 256) as u8,
            ])
        })
    }

    fn encode_jpeg(img: &RgbImage) -> Vec<u8> {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .write_image(
                img.as_raw(),
                img.width(),
                img.height(),
                image::ExtendedColorType::Rgb8,
            )
            .unwrap();
        out
    }

    fn encode_png(raw: &[u8], width: u32, height: u32, color: image::ExtendedColorType) -> Vec<u8> {
        let mut out = Vec::new();
        image::codecs::png::PngEncoder::new(&mut out)
            .write_image(raw, width, height, color)
            .unwrap();
        out
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// zlib stream made of stored (uncompressed) deflate blocks.
    fn zlib_stored(data: &[u8]) -> Vec<u8> {
        let mut out = vec![0x78, 0x01];
        let blocks: Vec<&[u8]> = if data.is_empty() {
            vec![&[]]
        } else {
            data.chunks(65_535).collect()
        };
        for (i, block) in blocks.iter().enumerate() {
            out.push(u8::from(i + 1 == blocks.len()));
            let len = block.len() as u16;
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&(!len).to_le_bytes());
            out.extend_from_slice(block);
        }
        let (mut a, mut b) = (1u32, 0u32);
        for &x in data {
            a = (a + u32::from(x)) % 65_521;
            b = (b + a) % 65_521;
        }
        out.extend_from_slice(&((b << 16) | a).to_be_bytes());
        out
    }

    fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut crc_input = kind.to_vec();
        crc_input.extend_from_slice(data);
        out.extend_from_slice(&crc32(&crc_input).to_be_bytes());
        out
    }

    /// A PNG written by hand, for variants the `image` encoder cannot produce.
    /// `rows` are unfiltered scanlines; `extra` chunks go between IHDR and IDAT.
    fn hand_png(
        width: u32,
        height: u32,
        bit_depth: u8,
        color_type: u8,
        rows: &[Vec<u8>],
        extra: &[(&[u8; 4], Vec<u8>)],
    ) -> Vec<u8> {
        let mut ihdr = width.to_be_bytes().to_vec();
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[bit_depth, color_type, 0, 0, 0]);
        let mut raw = Vec::new();
        for row in rows {
            raw.push(0);
            raw.extend_from_slice(row);
        }
        let mut out = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
        out.extend(png_chunk(b"IHDR", &ihdr));
        for (kind, data) in extra {
            out.extend(png_chunk(kind, data));
        }
        out.extend(png_chunk(b"IDAT", &zlib_stored(&raw)));
        out.extend(png_chunk(b"IEND", &[]));
        out
    }

    /// Big-endian TIFF block whose IFD0 holds only an Orientation tag.
    fn tiff_with_orientation(value: u16) -> Vec<u8> {
        let mut t = b"MM\0*".to_vec();
        t.extend_from_slice(&8u32.to_be_bytes());
        t.extend_from_slice(&1u16.to_be_bytes());
        t.extend_from_slice(&0x0112u16.to_be_bytes());
        t.extend_from_slice(&3u16.to_be_bytes()); // SHORT
        t.extend_from_slice(&1u32.to_be_bytes());
        t.extend_from_slice(&value.to_be_bytes());
        t.extend_from_slice(&[0, 0]);
        t.extend_from_slice(&0u32.to_be_bytes());
        t
    }

    /// Inserts APP1 segments right after SOI.
    fn with_app1(jpeg: &[u8], payloads: &[Vec<u8>]) -> Vec<u8> {
        let mut out = jpeg[..2].to_vec();
        for payload in payloads {
            out.extend_from_slice(&[0xFF, 0xE1]);
            out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
            out.extend_from_slice(payload);
        }
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    fn exif_app1(orientation: u16) -> Vec<u8> {
        let mut payload = b"Exif\0\0".to_vec();
        payload.extend(tiff_with_orientation(orientation));
        payload
    }

    /// What EXIF orientation `value` must turn `img` into (via `image::imageops`,
    /// independently of `orient`).
    fn oriented_reference(img: &RgbImage, value: u16) -> RgbImage {
        use image::imageops::{flip_horizontal, flip_vertical, rotate180, rotate270, rotate90};
        match value {
            2 => flip_horizontal(img),
            3 => rotate180(img),
            4 => flip_vertical(img),
            5 => flip_horizontal(&rotate90(img)),
            6 => rotate90(img),
            7 => flip_horizontal(&rotate270(img)),
            8 => rotate270(img),
            _ => img.clone(),
        }
    }

    fn patch_jpeg_size(jpeg: &[u8], width: u16, height: u16) -> Vec<u8> {
        let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        let mut out = jpeg.to_vec();
        out[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
        out[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
        out
    }

    /// 8x8 grey progressive JPEG, all coefficients zero, 1 + 14 * `bands` valid scans.
    fn many_scan_jpeg(bands: u8) -> Vec<u8> {
        fn segment(out: &mut Vec<u8>, marker: u8, payload: &[u8]) {
            out.extend_from_slice(&[0xFF, marker]);
            out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
            out.extend_from_slice(payload);
        }
        // One Huffman code, '0', for symbol 0 (DC diff 0 / AC end-of-band).
        let mut one_code = vec![1u8];
        one_code.extend_from_slice(&[0; 15]);
        one_code.push(0);
        let mut out = vec![0xFF, 0xD8];
        let mut dqt = vec![0u8];
        dqt.extend_from_slice(&[1; 64]);
        segment(&mut out, 0xDB, &dqt);
        segment(&mut out, 0xC2, &[8, 0, 8, 0, 8, 1, 1, 0x11, 0]);
        let mut dht = vec![0x00];
        dht.extend_from_slice(&one_code);
        dht.push(0x10);
        dht.extend_from_slice(&one_code);
        segment(&mut out, 0xC4, &dht);
        let mut scans = vec![(0u8, 0u8, 0u8, 0u8)];
        for band in 1..=bands {
            scans.push((band, band, 0, 13));
            scans.extend((1..=13).rev().map(|a| (band, band, a, a - 1)));
        }
        for (ss, se, ah, al) in scans {
            segment(&mut out, 0xDA, &[1, 1, 0x00, ss, se, (ah << 4) | al]);
            out.push(0x7F); // the single '0' code, padded with ones
        }
        out.extend_from_slice(&[0xFF, 0xD9]);
        out
    }

    #[test]
    fn empty_input_is_refused() {
        let err = decode(&[], &limits()).unwrap_err();
        assert_eq!(err.kind(), "empty");
    }

    #[test]
    fn input_over_max_bytes_is_refused_before_decoding() {
        let jpeg = encode_jpeg(&test_rgb(16, 16));
        let small = DecodeLimits {
            max_bytes: 100,
            ..limits()
        };
        let err = decode(&jpeg, &small).unwrap_err();
        assert_eq!(err.kind(), "too_large");
        assert!(
            err.to_string()
                .contains("over the limit of 100 bytes (max_bytes)"),
            "{err}"
        );
    }

    #[test]
    fn text_and_other_formats_are_unsupported_with_a_hint() {
        let err = decode(b"hello, this is not an image\n", &limits()).unwrap_err();
        assert_eq!(err.kind(), "unsupported_format");
        assert!(err.to_string().contains("looks like text"), "{err}");
        let err = decode(b"BM\x36\x00\x00\x00\x00\x00", &limits()).unwrap_err();
        assert!(err.to_string().contains("BMP"), "{err}");
        let err = decode(b"II*\0\x08\0\0\0", &limits()).unwrap_err();
        assert!(err.to_string().contains("TIFF"), "{err}");
    }

    #[test]
    fn sniffs_magic_bytes() {
        assert_eq!(
            sniff_format(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(ImageFormat::Jpeg)
        );
        assert_eq!(
            sniff_format(b"\x89PNG\r\n\x1a\n...."),
            Some(ImageFormat::Png)
        );
        assert_eq!(sniff_format(b"GIF87a......"), Some(ImageFormat::Gif));
        assert_eq!(sniff_format(b"GIF89a......"), Some(ImageFormat::Gif));
        assert_eq!(
            sniff_format(b"RIFF\0\0\0\0WEBPVP8 "),
            Some(ImageFormat::Webp)
        );
        assert_eq!(sniff_format(b"RIFF\0\0\0\0WAVEfmt "), None);
        assert_eq!(sniff_format(&[0xFF, 0xD8]), None);
        assert_eq!(sniff_format(b""), None);
        assert_eq!(
            serde_json::to_string(&ImageFormat::Webp).unwrap(),
            "\"webp\""
        );
        assert_eq!(ImageFormat::Jpeg.as_str(), "jpeg");
    }

    #[test]
    fn png_declaring_ten_gigapixels_is_refused_from_its_header() {
        // Only a header: decoding would need 30 GB, so passing means nothing was allocated.
        let png = hand_png(100_000, 100_000, 8, 2, &[], &[]);
        let err = decode(&png, &limits()).unwrap_err();
        assert_eq!(err.kind(), "dimensions");
        assert_eq!(
            err.to_string(),
            "PNG header declares 100000x100000 = 10000000000 pixels, over the limit of 50000000 (max_pixels)"
        );
        match err {
            DecodeError::Dimensions { width, height, .. } => {
                assert_eq!((width, height), (100_000, 100_000))
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn zero_and_overlong_sides_are_refused() {
        let err = decode(&hand_png(0, 10, 8, 2, &[], &[]), &limits()).unwrap_err();
        assert_eq!(err.kind(), "dimensions");
        assert!(err.to_string().contains("at least one pixel"), "{err}");
        let err = decode(&hand_png(30_000, 10, 8, 2, &[], &[]), &limits()).unwrap_err();
        assert_eq!(err.kind(), "dimensions");
        assert!(
            err.to_string()
                .contains("over the limit of 20000 px (max_side)"),
            "{err}"
        );
        let jpeg = patch_jpeg_size(&encode_jpeg(&test_rgb(16, 16)), 16, 0);
        assert_eq!(decode(&jpeg, &limits()).unwrap_err().kind(), "dimensions");
    }

    #[test]
    fn huge_gif_webp_and_jpeg_headers_are_refused() {
        let mut gif = b"GIF89a".to_vec();
        gif.extend_from_slice(&65_535u16.to_le_bytes());
        gif.extend_from_slice(&65_535u16.to_le_bytes());
        gif.extend_from_slice(&[0, 0, 0, 0x3B]);
        let err = decode(&gif, &limits()).unwrap_err();
        assert_eq!(err.kind(), "dimensions", "{err}");
        assert!(
            err.to_string()
                .starts_with("GIF header declares 65535x65535"),
            "{err}"
        );

        let mut webp = b"RIFF".to_vec();
        webp.extend_from_slice(&22u32.to_le_bytes());
        webp.extend_from_slice(b"WEBPVP8X");
        webp.extend_from_slice(&10u32.to_le_bytes());
        webp.extend_from_slice(&[0, 0, 0, 0]);
        webp.extend_from_slice(&16_383u32.to_le_bytes()[..3]);
        webp.extend_from_slice(&16_383u32.to_le_bytes()[..3]);
        let err = decode(&webp, &limits()).unwrap_err();
        assert_eq!(err.kind(), "dimensions", "{err}");
        assert!(
            err.to_string().contains("16384x16384 = 268435456 pixels"),
            "{err}"
        );

        let jpeg = patch_jpeg_size(&encode_jpeg(&test_rgb(16, 16)), 60_000, 60_000);
        let err = decode(&jpeg, &limits()).unwrap_err();
        assert_eq!(err.kind(), "dimensions", "{err}");
    }

    #[test]
    fn truncated_or_damaged_files_are_corrupt_not_grey() {
        let jpeg = encode_jpeg(&test_rgb(64, 48));
        for cut in [jpeg.len() / 2, jpeg.len() - 2] {
            let err = decode(&jpeg[..cut], &limits()).unwrap_err();
            assert_eq!(err.kind(), "corrupt", "cut at {cut}: {err}");
            assert!(
                err.to_string().contains("Premature end of JPEG file"),
                "{err}"
            );
        }
        // A stray marker inside the entropy-coded data (zeroed bytes would just decode
        // to different pixels: libjpeg cannot see every kind of damage).
        let mut damaged = jpeg.clone();
        let middle = damaged.len() / 2;
        damaged[middle..middle + 2].copy_from_slice(&[0xFF, 0xD5]);
        let err = decode(&damaged, &limits()).unwrap_err();
        assert_eq!(err.kind(), "corrupt");
        assert!(err.to_string().contains("Corrupt JPEG data"), "{err}");

        let img = test_rgb(64, 48);
        let png = encode_png(img.as_raw(), 64, 48, image::ExtendedColorType::Rgb8);
        let err = decode(&png[..png.len() / 2], &limits()).unwrap_err();
        assert_eq!(err.kind(), "corrupt", "{err}");
    }

    #[test]
    fn harmless_jpeg_oddities_still_decode() {
        let jpeg = encode_jpeg(&test_rgb(32, 24));
        let clean = decode(&jpeg, &limits()).unwrap();
        // Padding before EOI makes libjpeg warn "extraneous bytes before marker 0xd9".
        let mut padded = jpeg[..jpeg.len() - 2].to_vec();
        padded.extend_from_slice(&[0, 0, 0, 0xFF, 0xD9]);
        assert_eq!(decode(&padded, &limits()).unwrap().rgb, clean.rgb);
        let mut trailing = jpeg.clone();
        trailing.extend_from_slice(b"trailing bytes after EOI");
        assert_eq!(decode(&trailing, &limits()).unwrap().rgb, clean.rgb);
    }

    #[test]
    fn progressive_scan_bomb_is_refused() {
        let ok = decode(&many_scan_jpeg(35), &limits()).unwrap(); // 491 scans
        assert_eq!((ok.width, ok.height), (8, 8));
        // All coefficients zero: every pixel is mid-grey.
        assert!(ok.rgb.iter().all(|&v| v == 128), "{:?}", &ok.rgb[..6]);
        let err = decode(&many_scan_jpeg(63), &limits()).unwrap_err(); // 883 scans
        assert_eq!(err.kind(), "corrupt");
        assert!(err.to_string().contains("more than 500 scans"), "{err}");
    }

    #[test]
    fn every_truncation_and_byte_flip_fails_cleanly() {
        let img = test_rgb(24, 16);
        let rgba = RgbaImage::from_fn(24, 16, |x, y| {
            let p = img.get_pixel(x, y).0;
            image::Rgba([p[0], p[1], p[2], if x < 4 { 0 } else { 255 }])
        });
        let mut gif = Vec::new();
        image::codecs::gif::GifEncoder::new(&mut gif)
            .encode_frames([
                image::Frame::new(rgba.clone()),
                image::Frame::new(rgba.clone()),
            ])
            .unwrap();
        let mut webp = Vec::new();
        image::codecs::webp::WebPEncoder::new_lossless(&mut webp)
            .write_image(rgba.as_raw(), 24, 16, image::ExtendedColorType::Rgba8)
            .unwrap();
        let files = [
            encode_jpeg(&img),
            encode_png(img.as_raw(), 24, 16, image::ExtendedColorType::Rgb8),
            gif,
            webp,
            many_scan_jpeg(2),
        ];
        let check = |bytes: &[u8], what: &str| match decode(bytes, &limits()) {
            Ok(out) => assert_eq!(
                out.rgb.len(),
                out.width as usize * out.height as usize * 3,
                "{what}"
            ),
            Err(e) => assert_ne!(e.kind(), "decoder_panic", "{what}: {e}"),
        };
        for file in &files {
            for cut in 0..file.len() {
                check(&file[..cut], &format!("cut at {cut}"));
            }
            for at in 0..file.len() {
                for flip in [0x01u8, 0x80, 0xFF] {
                    let mut damaged = file.clone();
                    damaged[at] ^= flip;
                    check(&damaged, &format!("byte {at} ^ {flip:#x}"));
                }
            }
        }
    }

    #[test]
    fn exif_orientation_1_to_8_on_lossless_png() {
        let img = test_rgb(5, 3);
        for value in 1..=8u16 {
            let rows: Vec<Vec<u8>> = img.rows().map(|r| r.flat_map(|p| p.0).collect()).collect();
            let png = hand_png(
                5,
                3,
                8,
                2,
                &rows,
                &[(b"eXIf", tiff_with_orientation(value))],
            );
            assert_oriented(&png, &img, value);
        }
    }

    #[test]
    fn scale_numerator_keeps_the_long_side_at_the_minimum() {
        let at_least = Resolution::LongSideAtLeast(1024);
        for ((width, height), numerator) in [
            ((640, 480), 8),
            ((2046, 100), 8),
            ((2047, 100), 4),
            ((100, 2048), 4),
            ((3000, 2000), 4),
            ((4092, 4092), 4),
            ((4093, 10), 2),
            ((8192, 8192), 1),
            ((20_000, 20_000), 1),
        ] {
            assert_eq!(
                at_least.jpeg_scale_numerator(width, height),
                numerator,
                "{width}x{height}"
            );
            assert_eq!(Resolution::Full.jpeg_scale_numerator(width, height), 8);
        }
    }

    #[test]
    fn large_jpeg_decodes_at_reduced_scale_with_its_own_size_kept() {
        let img = test_rgb(260, 130);
        let jpeg = encode_jpeg(&img);
        let full = decode(&jpeg, &limits()).unwrap();
        assert_eq!(
            (full.width, full.height, full.scale_denominator()),
            (260, 130, 1)
        );
        // 260 -> 65 at 1/4 is the smallest scale keeping at least 64.
        let reduced = decode_at(&jpeg, &limits(), Resolution::LongSideAtLeast(64)).unwrap();
        assert_eq!((reduced.width, reduced.height), (65, 33));
        assert_eq!((reduced.source_width, reduced.source_height), (260, 130));
        assert_eq!(reduced.scale_denominator(), 4);
        assert_eq!(reduced.rgb.len(), 65 * 33 * 3);
        // The reduced image is the full one shrunk: block means stay close.
        let mean = |d: &DecodedImage| {
            d.rgb.iter().map(|&v| f64::from(v)).sum::<f64>() / d.rgb.len() as f64
        };
        assert!((mean(&full) - mean(&reduced)).abs() < 2.0);
        // Rotated by EXIF: both sizes are given upright.
        let rotated = decode_at(
            &with_app1(&jpeg, &[exif_app1(6)]),
            &limits(),
            Resolution::LongSideAtLeast(64),
        )
        .unwrap();
        assert_eq!((rotated.width, rotated.height), (33, 65));
        assert_eq!((rotated.source_width, rotated.source_height), (130, 260));
        // Limits apply to the image's own size, not to the reduced one.
        let tight = DecodeLimits {
            max_side: 200,
            ..limits()
        };
        assert_eq!(
            decode_at(&jpeg, &tight, Resolution::LongSideAtLeast(64))
                .unwrap_err()
                .kind(),
            "dimensions"
        );
    }

    #[test]
    fn other_formats_always_decode_in_full() {
        let img = test_rgb(260, 130);
        let png = encode_png(img.as_raw(), 260, 130, image::ExtendedColorType::Rgb8);
        let out = decode_at(&png, &limits(), Resolution::LongSideAtLeast(64)).unwrap();
        assert_eq!(
            (out.width, out.height, out.scale_denominator()),
            (260, 130, 1)
        );
        assert_eq!(out.rgb, img.into_raw());
    }

    #[test]
    fn exif_orientation_on_jpeg_follows_opencv() {
        let jpeg = encode_jpeg(&test_rgb(40, 24));
        let plain = decode(&jpeg, &limits()).unwrap();
        let plain = RgbImage::from_raw(plain.width, plain.height, plain.rgb).unwrap();
        for value in 1..=8u16 {
            assert_oriented(&with_app1(&jpeg, &[exif_app1(value)]), &plain, value);
        }
        let rotated = oriented_reference(&plain, 6).into_raw();
        // An XMP APP1 before the Exif one does not hide it.
        let xmp = b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta/>".to_vec();
        let out = decode(&with_app1(&jpeg, &[xmp, exif_app1(6)]), &limits()).unwrap();
        assert_eq!(out.rgb, rotated);
        // Of two Exif segments the first counts.
        let out = decode(&with_app1(&jpeg, &[exif_app1(6), exif_app1(3)]), &limits()).unwrap();
        assert_eq!(out.rgb, rotated);
        // Out-of-range values and unreadable EXIF leave the image as stored.
        for payload in [
            exif_app1(9),
            exif_app1(0),
            b"Exif\0\0MM\0*garbage".to_vec(),
            b"Exif\0\0".to_vec(),
        ] {
            let out = decode(&with_app1(&jpeg, &[payload]), &limits()).unwrap();
            assert_eq!(out.rgb, plain.as_raw().clone());
        }
    }

    #[test]
    fn png_channels_follow_imread_color() {
        // 16-bit grey keeps the high byte (libpng strip_16), replicated to RGB.
        let grey16: Vec<u16> = (0..12).map(|i| i * 5_000 + 255).collect();
        let raw: Vec<u8> = grey16.iter().flat_map(|v| v.to_ne_bytes()).collect();
        let out = decode(
            &encode_png(&raw, 4, 3, image::ExtendedColorType::L16),
            &limits(),
        )
        .unwrap();
        let expected: Vec<u8> = grey16.iter().flat_map(|v| [(v >> 8) as u8; 3]).collect();
        assert_eq!(out.rgb, expected);

        // 16-bit RGBA: high bytes, alpha dropped.
        let rgba16: Vec<u16> = (0..4 * 4 * 2).map(|i| (i * 2_011) as u16).collect();
        let raw: Vec<u8> = rgba16.iter().flat_map(|v| v.to_ne_bytes()).collect();
        let out = decode(
            &encode_png(&raw, 4, 2, image::ExtendedColorType::Rgba16),
            &limits(),
        )
        .unwrap();
        let expected: Vec<u8> = rgba16
            .chunks(4)
            .flat_map(|p| [(p[0] >> 8) as u8, (p[1] >> 8) as u8, (p[2] >> 8) as u8])
            .collect();
        assert_eq!(out.rgb, expected);

        // Grey + alpha: grey replicated, alpha dropped (not composited).
        let la = [10u8, 0, 200, 255, 90, 128];
        let out = decode(
            &encode_png(&la, 3, 1, image::ExtendedColorType::La8),
            &limits(),
        )
        .unwrap();
        assert_eq!(out.rgb, vec![10, 10, 10, 200, 200, 200, 90, 90, 90]);

        // Palette with tRNS: palette colours, transparency ignored.
        let plte = vec![255, 0, 0, 0, 255, 0, 0, 0, 255];
        let png = hand_png(
            3,
            1,
            8,
            3,
            &[vec![0, 1, 2]],
            &[(b"PLTE", plte), (b"tRNS", vec![0, 128])],
        );
        let out = decode(&png, &limits()).unwrap();
        assert_eq!(out.rgb, vec![255, 0, 0, 0, 255, 0, 0, 0, 255]);

        // 1-bit grey scales to 0/255.
        let png = hand_png(8, 1, 1, 0, &[vec![0b1010_0000]], &[]);
        let out = decode(&png, &limits()).unwrap();
        assert_eq!(&out.rgb[..9], &[255, 255, 255, 0, 0, 0, 255, 255, 255]);
    }

    #[test]
    fn gif_gives_first_frame_with_background_under_transparency() {
        let first = RgbaImage::from_fn(6, 4, |x, y| {
            image::Rgba([
                (x * 40) as u8,
                (y * 60) as u8,
                7,
                if x == 0 { 0 } else { 255 },
            ])
        });
        let second = RgbaImage::from_pixel(6, 4, image::Rgba([1, 2, 3, 255]));
        let mut gif = Vec::new();
        image::codecs::gif::GifEncoder::new(&mut gif)
            .encode_frames([image::Frame::new(first.clone()), image::Frame::new(second)])
            .unwrap();
        let out = decoded_as(&gif, ImageFormat::Gif, (6, 4));
        // This encoder writes no global colour table, so the background is black.
        let expected: Vec<u8> = first
            .pixels()
            .flat_map(|p| {
                if p.0[3] == 0 {
                    [0, 0, 0]
                } else {
                    [p.0[0], p.0[1], p.0[2]]
                }
            })
            .collect();
        assert_eq!(out.rgb, expected);

        // A first frame larger than the logical screen is refused, as OpenCV does.
        let mut shrunk = gif.clone();
        shrunk[6..8].copy_from_slice(&3u16.to_le_bytes());
        let err = decode(&shrunk, &limits()).unwrap_err();
        assert_eq!(err.kind(), "corrupt");
        assert!(
            err.to_string().contains("does not fit its 3x4 screen"),
            "{err}"
        );
    }

    #[test]
    fn gif_background_comes_from_the_global_table() {
        let mut header = b"GIF89a".to_vec();
        header.extend_from_slice(&[2, 0, 2, 0, 0x81, 2, 0]); // 4-entry table, background 2
        header.extend_from_slice(&[0, 0, 0, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
        assert_eq!(gif_background_rgb(&header), [40, 50, 60]);
        header[11] = 9; // outside the table
        assert_eq!(gif_background_rgb(&header), [0, 0, 0]);
        header[10] = 0x01; // no global table
        header[11] = 2;
        assert_eq!(gif_background_rgb(&header), [0, 0, 0]);
    }

    #[test]
    fn webp_lossless_is_exact_and_alpha_is_dropped() {
        let rgba = RgbaImage::from_fn(9, 7, |x, y| {
            image::Rgba([(x * 20) as u8, (y * 30) as u8, 99, (x * 28) as u8])
        });
        let out = decoded_as(&lossless_webp(&rgba), ImageFormat::Webp, (9, 7));
        assert_eq!(out.rgb, colour_of(&rgba));
    }

    #[test]
    fn lossless_webp_alpha_is_shown_whatever_the_headers_say() {
        let rgba = RgbaImage::from_fn(9, 7, |x, y| {
            image::Rgba([(x * 20) as u8, (y * 30) as u8, 99, (x * 28) as u8])
        });
        let simple = lossless_webp(&rgba);
        assert_eq!(&simple[12..16], b"VP8L");
        // The VP8L `alpha_is_used` hint cleared.
        let mut hint_unset = simple.clone();
        hint_unset[24] &= !0x10;
        // The same bitstream in an extended file whose VP8X flags deny alpha.
        let mut body = b"WEBPVP8X\x0a\0\0\0\0\0\0\0\x08\0\0\x06\0\0".to_vec();
        body.extend_from_slice(&simple[12..]);
        let mut flag_unset = b"RIFF".to_vec();
        flag_unset.extend_from_slice(&u32::try_from(body.len()).unwrap().to_le_bytes());
        flag_unset.extend_from_slice(&body);
        let colour = colour_of(&rgba);
        for (name, bytes) in [
            ("simple", &simple),
            ("hint unset", &hint_unset),
            ("flag unset", &flag_unset),
        ] {
            let (reference, shown) = decode_shown_at(bytes, &limits(), Resolution::Full).unwrap();
            assert_eq!(reference.rgb, colour, "{name}: the reference drops alpha");
            let shown = shown.unwrap_or_else(|| panic!("{name}: alpha dropped"));
            assert_eq!(shown.rgba, rgba.as_raw().clone(), "{name}");
        }
    }

    #[test]
    fn cmyk_jpeg_uses_opencv_conversion() {
        let (width, height) = (16usize, 16usize);
        let ink = [200u8, 100, 50, 180];
        let mut compress = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_CMYK);
        compress.set_size(width, height);
        compress.set_quality(100.0);
        let mut started = compress.start_compress(Vec::new()).unwrap();
        started
            .write_scanlines(&ink.repeat(width * height))
            .unwrap();
        let jpeg = started.finish().unwrap();
        let out = decode(&jpeg, &limits()).unwrap();
        // k - ((255 - ink) * k >> 8) for each of C, M, Y with k = 180.
        let expected = [142i32, 72, 36];
        for px in out.rgb.chunks(3) {
            for (got, want) in px.iter().zip(expected) {
                assert!(
                    (i32::from(*got) - want).abs() <= 2,
                    "{px:?} vs {expected:?}"
                );
            }
        }
        assert_eq!(
            cmyk_to_rgb_like_opencv(&[0, 255, 128, 255, 9, 9, 9, 0]),
            vec![1, 255, 129, 0, 0, 0]
        );
    }

    #[test]
    fn grey_jpeg_is_replicated() {
        let grey = image::GrayImage::from_fn(16, 8, |x, y| image::Luma([(x * 16 + y) as u8]));
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
            .write_image(grey.as_raw(), 16, 8, image::ExtendedColorType::L8)
            .unwrap();
        let out = decode(&jpeg, &limits()).unwrap();
        assert!(out.rgb.chunks(3).all(|p| p[0] == p[1] && p[1] == p[2]));
    }

    #[test]
    fn unwind_payloads_map_to_error_kinds() {
        let err = error_from_unwind(
            ImageFormat::Png,
            Box::new(String::from("index out of bounds")),
        );
        assert_eq!(err.kind(), "decoder_panic");
        assert!(
            err.to_string()
                .contains("PNG decoder panicked: index out of bounds"),
            "{err}"
        );
        let err = error_from_unwind(ImageFormat::Gif, Box::new(42u8));
        assert_eq!(err.kind(), "decoder_panic");
        let failure = LibjpegFailure {
            message: "Bogus marker length".into(),
        };
        assert_eq!(
            error_from_unwind(ImageFormat::Jpeg, Box::new(failure)).kind(),
            "corrupt"
        );
        let failure = LibjpegFailure {
            message: "Sorry, arithmetic coding is not implemented".into(),
        };
        assert_eq!(
            error_from_unwind(ImageFormat::Jpeg, Box::new(failure)).kind(),
            "unsupported_format"
        );
    }

    #[test]
    fn only_pixel_neutral_libjpeg_warnings_are_tolerated() {
        assert!(jpeg_warning_is_harmless(
            "Corrupt JPEG data: 5 extraneous bytes before marker 0xd9"
        ));
        assert!(jpeg_warning_is_harmless(
            "Warning: unknown JFIF revision number 3.01"
        ));
        assert!(!jpeg_warning_is_harmless(
            "Corrupt JPEG data: 5 extraneous bytes before marker 0xd0"
        ));
        assert!(!jpeg_warning_is_harmless("Premature end of JPEG file"));
        assert!(!jpeg_warning_is_harmless(
            "Corrupt JPEG data: premature end of data segment"
        ));
        assert!(!jpeg_warning_is_harmless(
            "Corrupt JPEG data: bad Huffman code"
        ));
    }

    #[test]
    fn debug_output_leaves_out_pixels() {
        let img = DecodedImage {
            format: ImageFormat::Png,
            width: 2,
            height: 1,
            source_width: 2,
            source_height: 1,
            rgb: vec![7; 6],
        };
        assert_eq!(
            format!("{img:?}"),
            "DecodedImage { format: Png, width: 2, height: 1, source_width: 2, source_height: 1, rgb_len: 6 }"
        );
    }
}
