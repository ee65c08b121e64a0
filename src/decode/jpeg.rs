//! JPEG through libjpeg-turbo (the `mozjpeg` crate), with an error manager that fails on
//! every corrupt-data warning; kept hand-written because no crate exposes libjpeg's error hooks
//! this strictly, and libjpeg is what decodes exactly as OpenCV and Pillow do.

use std::cell::Cell;
use std::os::raw::c_int;
use std::panic::resume_unwind;

use mozjpeg_sys::{jpeg_common_struct, jpeg_error_mgr};

use super::orientation::{exif_orientation, orient, Orientation};
use super::{
    check_dimensions, corrupt, DecodeError, DecodeLimits, DecodedImage, ImageFormat, Resolution,
};

/// A legitimate progressive JPEG has about ten scans; thousands of tiny scans make
/// libjpeg re-walk the whole coefficient buffer each time (a known CPU bomb).
/// libjpeg-turbo recommends a limit of 500 for untrusted input.
const MAX_JPEG_SCANS: u32 = 500;

/// libjpeg message buffer size (`JMSG_LENGTH_MAX` is 200 in jpeglib.h).
const JPEG_MESSAGE_BUFFER: usize = 256;

/// Payload of the unwind that our libjpeg callbacks start; caught in `decode`.
pub(super) struct LibjpegFailure {
    pub(super) message: String,
}

impl LibjpegFailure {
    pub(super) fn to_decode_error(&self) -> DecodeError {
        let message = &self.message;
        // Valid JPEG variants that this libjpeg build does not decode are not corruption.
        let unsupported = message.starts_with("Sorry, arithmetic")
            || message.starts_with("Unsupported JPEG data precision")
            || message.starts_with("Unsupported color conversion request");
        if unsupported {
            DecodeError::UnsupportedFormat {
                detail: format!("JPEG variant not supported by the decoder: {message}"),
            }
        } else if message.starts_with("Empty JPEG image") {
            DecodeError::Dimensions {
                width: 0,
                height: 0,
                reason: format!("JPEG header declares zero width or height (libjpeg: {message})"),
            }
        } else {
            corrupt(format!("JPEG: {message}"))
        }
    }
}

thread_local! {
    /// Start-of-scan markers seen by the libjpeg decoder running on this thread.
    /// libjpeg is synchronous, so one counter per thread is one counter per decode.
    static JPEG_SCANS_SEEN: Cell<u32> = const { Cell::new(0) };
}

/// Formats libjpeg's current message (code and parameters are in `cinfo.err`).
unsafe fn libjpeg_message(cinfo: &mut jpeg_common_struct) -> String {
    let Some(format_message) = (unsafe { cinfo.err.as_ref() }).and_then(|err| err.format_message)
    else {
        return "unknown libjpeg error".to_owned();
    };
    // The binding declares the buffer as `&[u8; 80]`, but libjpeg writes up to
    // JMSG_LENGTH_MAX (200) bytes into it: call it with a large enough mutable buffer.
    type FormatMessage = unsafe extern "C-unwind" fn(&mut jpeg_common_struct, *mut u8);
    let format_message: FormatMessage = unsafe { std::mem::transmute(format_message) };
    let mut buffer = [0u8; JPEG_MESSAGE_BUFFER];
    unsafe { format_message(cinfo, buffer.as_mut_ptr()) };
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}

/// libjpeg "warnings" that leave every pixel as the file intended: metadata oddities,
/// and padding between the last scan and the end-of-image marker.
pub(super) fn jpeg_warning_is_harmless(message: &str) -> bool {
    message.starts_with("Warning: unknown JFIF revision number")
        || message.starts_with("Corrupt JPEG data: bad ICC marker")
        || message.starts_with("Unknown Adobe color transform code")
        || (message.contains("extraneous bytes before marker") && message.ends_with("0xd9"))
}

/// libjpeg `error_exit`: must not return, so unwind (C is built with -fexceptions).
pub(super) unsafe extern "C-unwind" fn jpeg_error_exit(cinfo: &mut jpeg_common_struct) {
    let message = unsafe { libjpeg_message(cinfo) };
    // resume_unwind skips the panic hook: a bad upload is not a crash worth a backtrace.
    resume_unwind(Box::new(LibjpegFailure { message }));
}

/// libjpeg `emit_message`: level -1 is a corrupt-data warning, after which libjpeg
/// would carry on and fill the damage with grey. We stop instead, except for the
/// harmless ones. Levels >= 0 are trace messages, used here to count scans.
unsafe extern "C-unwind" fn jpeg_emit_message(cinfo: &mut jpeg_common_struct, msg_level: c_int) {
    if msg_level < 0 {
        let message = unsafe { libjpeg_message(cinfo) };
        if !jpeg_warning_is_harmless(&message) {
            resume_unwind(Box::new(LibjpegFailure { message }));
        }
        return;
    }
    let msg_code = unsafe { cinfo.err.as_ref() }.map_or(-1, |err| err.msg_code);
    if msg_code == mozjpeg_sys::JTRC_SOS {
        let scans = JPEG_SCANS_SEEN.with(|seen| {
            seen.set(seen.get().saturating_add(1));
            seen.get()
        });
        if scans > MAX_JPEG_SCANS {
            resume_unwind(Box::new(LibjpegFailure {
                message: format!(
                    "more than {MAX_JPEG_SCANS} scans (a progressive-JPEG decoding bomb)"
                ),
            }));
        }
    }
}

/// libjpeg `output_message`: never print to stderr; messages travel in errors.
unsafe extern "C-unwind" fn jpeg_output_message(_cinfo: &mut jpeg_common_struct) {}

fn strict_jpeg_error_mgr() -> jpeg_error_mgr {
    // SAFETY: jpeg_error_mgr is plain C data; jpeg_std_error fills every field.
    let mut error_mgr: jpeg_error_mgr = unsafe { std::mem::zeroed() };
    unsafe { mozjpeg_sys::jpeg_std_error(&mut error_mgr) };
    error_mgr.error_exit = Some(jpeg_error_exit);
    error_mgr.emit_message = Some(jpeg_emit_message);
    error_mgr.output_message = Some(jpeg_output_message);
    error_mgr
}

pub(super) fn decode_jpeg(
    bytes: &[u8],
    limits: &DecodeLimits,
    resolution: Resolution,
) -> Result<DecodedImage, DecodeError> {
    JPEG_SCANS_SEEN.with(|seen| seen.set(0));
    // APP1 is kept for EXIF. Reading the header allocates no pixel memory.
    let mut decompress = mozjpeg::Decompress::builder()
        .with_err(strict_jpeg_error_mgr())
        .with_markers(&[mozjpeg::Marker::APP(1)])
        .from_mem(bytes)
        .map_err(|e| corrupt(format!("JPEG header could not be read: {e}")))?;
    let width = u32::try_from(decompress.width()).unwrap_or(u32::MAX);
    let height = u32::try_from(decompress.height()).unwrap_or(u32::MAX);
    check_dimensions(ImageFormat::Jpeg, width, height, limits)?;

    // The first APP1 that is Exif (an XMP APP1 may come before it), as OpenCV does.
    let orientation = decompress
        .markers()
        .filter(|m| m.marker == mozjpeg::Marker::APP(1))
        .find_map(|m| m.data.strip_prefix(b"Exif\0\0"))
        .map_or(Orientation::Normal, exif_orientation);

    // Limits were checked on the header's size; the output size follows the scale.
    decompress.scale(resolution.jpeg_scale_numerator(width, height));
    // Like OpenCV: four components (CMYK or YCCK) are read as CMYK and converted
    // below; anything else lets libjpeg convert to RGB (grey is replicated).
    let cmyk = decompress.components().len() == 4;
    let started = if cmyk {
        decompress.to_colorspace(mozjpeg_sys::J_COLOR_SPACE::JCS_CMYK)
    } else {
        decompress.rgb()
    };
    let mut started =
        started.map_err(|e| corrupt(format!("JPEG decoding could not start: {e}")))?;
    let (out_width, out_height) = output_size(started.width(), started.height());
    let samples: Vec<u8> = started
        .read_scanlines()
        .map_err(|e| corrupt(format!("JPEG scanlines could not be read: {e}")))?;
    started
        .finish()
        .map_err(|e| corrupt(format!("JPEG did not end cleanly: {e}")))?;
    let rgb = if cmyk {
        cmyk_to_rgb_like_opencv(&samples)
    } else {
        samples
    };
    let expected_len = out_width as usize * out_height as usize * 3;
    if rgb.len() != expected_len {
        return Err(corrupt(format!(
            "JPEG decoder returned {} bytes for {out_width}x{out_height}, expected {expected_len}",
            rgb.len()
        )));
    }
    let mut image = orient(ImageFormat::Jpeg, out_width, out_height, rgb, orientation);
    (image.source_width, image.source_height) = if orientation.swaps_axes() {
        (height, width)
    } else {
        (width, height)
    };
    Ok(image)
}

/// A started decoder's output size; it never exceeds the checked header size.
fn output_size(width: usize, height: usize) -> (u32, u32) {
    (
        u32::try_from(width).unwrap_or(u32::MAX),
        u32::try_from(height).unwrap_or(u32::MAX),
    )
}

/// OpenCV's CMYK->BGR rule (imgcodecs `icvCvt_CMYK2BGR_8u_C4C3R`), which treats the
/// samples as Adobe-style inverted CMYK: channel = k - ((255 - c) * k >> 8).
pub(super) fn cmyk_to_rgb_like_opencv(cmyk: &[u8]) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(cmyk.len() / 4 * 3);
    for px in cmyk.chunks_exact(4) {
        let k = i32::from(px[3]);
        for &ink in &px[..3] {
            let value = k - (((255 - i32::from(ink)) * k) >> 8);
            rgb.push(value.clamp(0, 255) as u8);
        }
    }
    rgb
}
