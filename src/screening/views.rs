//! Views: the pictures people are shown of one file, beyond the reference decoding.
//!
//! The reference decoding (first frame, alpha dropped) is what NudeNet's and Meta's
//! pipelines see, and its hashes and scores stay theirs exactly. A browser shows more:
//! every frame of an animation, and a translucent image composited over the page behind
//! it. Each such picture that differs from everything already screened becomes a view,
//! hashed (PDQ) and classified like the reference, so a harmless first frame or an
//! all-black colour layer cannot hide what is shown.
//!
//! A view is skipped when its pixels equal one already screened (a keyed 64-bit
//! fingerprint of its pixels, so an uploader cannot craft a collision). A frame whose
//! alpha is only 0 or 255, and transparent in at most [`SMALL_MASK_PERCENT`] of its
//! pixels (rounded corners, a cut-out edge), shows the same opaque pixels over every page
//! colour, and a mask that small carries no picture: it is screened in one rendering, and
//! not at all when a screened view already shows those opaque pixels.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher, RandomState};

use crate::decode::{self, Canvas, DecodeError, DecodeLimits, DecodedImage, FrameId};
use crate::hash::pdq;
use crate::hash::PdqOutput;

/// How a view's pixels were painted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rendering {
    /// A fully opaque frame: the page behind it never shows.
    Opaque,
    /// Composited over a page of this colour.
    Over([u8; 3]),
}

impl Rendering {
    /// `opaque` or `over_<rrggbb>`, as recorded.
    #[must_use]
    pub fn name(&self) -> String {
        match self {
            Rendering::Opaque => "opaque".to_string(),
            Rendering::Over(c) => format!("over_{}", hex::encode(c)),
        }
    }
}

impl std::fmt::Display for Rendering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl std::str::FromStr for Rendering {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text == "opaque" {
            return Ok(Rendering::Opaque);
        }
        text.strip_prefix("over_")
            .and_then(|c| parse_hex_colour(c).ok())
            .map(Rendering::Over)
            .ok_or_else(|| format!("rendering is \"opaque\" or \"over_<rrggbb>\", not {text:?}"))
    }
}

impl serde::Serialize for Rendering {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Rendering {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Which picture a view is: a frame, in a rendering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ViewId {
    pub frame: FrameId,
    pub rendering: Rendering,
}

impl std::fmt::Display for ViewId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.rendering {
            Rendering::Opaque => write!(f, "{}", self.frame),
            Rendering::Over(_) => write!(f, "{} {}", self.frame, self.rendering),
        }
    }
}

/// `rrggbb` or `#rrggbb`.
///
/// # Errors
/// Anything else, with what was expected.
pub fn parse_hex_colour(text: &str) -> Result<[u8; 3], String> {
    let digits = text.strip_prefix('#').unwrap_or(text);
    let bytes = (digits.len() == 6)
        .then(|| hex::decode(digits).ok())
        .flatten()
        .ok_or_else(|| format!("a page colour is six hex digits like \"#121212\", not {text:?}"))?;
    Ok([bytes[0], bytes[1], bytes[2]])
}

/// A page colour as configured: `"#rrggbb"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageColour(pub [u8; 3]);

impl<'de> serde::Deserialize<'de> for PageColour {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_hex_colour(&text)
            .map(PageColour)
            .map_err(serde::de::Error::custom)
    }
}

/// The page colours the platform shows art on. A composite is linear in the background,
/// so a pattern that reads as noise over white and over black can read clearly over a dark
/// grey: all three are screened by default.
pub const DEFAULT_PAGE_COLOURS: [[u8; 3]; 3] = [[0xff; 3], [0x00; 3], [0x12; 3]];

/// What views screening makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewSettings {
    /// Translucent pictures are composited over each of these, in order.
    pub page_colours: Vec<[u8; 3]>,
}

impl Default for ViewSettings {
    fn default() -> Self {
        ViewSettings {
            page_colours: DEFAULT_PAGE_COLOURS.to_vec(),
        }
    }
}

/// Bumped whenever the views made of a file, or the signals hashed from each (3: turned,
/// trimmed and region PDQ), change for the same settings.
pub const ANALYSIS_VERSION: u32 = 3;

impl ViewSettings {
    /// Names how a file is analysed (the views made of it), for the verdict cache and
    /// `--stale-only`: a screening analysed otherwise is analysed again, never reused.
    #[must_use]
    pub fn analysis(&self) -> String {
        let colours: Vec<String> = self.page_colours.iter().map(hex::encode).collect();
        format!("views-{ANALYSIS_VERSION}:{}", colours.join(","))
    }
}

/// A transparent share of at most this many percent of a frame's pixels, with no
/// partly transparent pixel, is a mask too small to carry a picture.
pub const SMALL_MASK_PERCENT: u64 = 5;

/// Longest side of the pixels a view keeps for the model. The model sees 320 x 320, and
/// at 1024 px or more no verdict changed with reduced-scale decoding (README:
/// Performance); keeping at most this much bounds the memory of 32 views.
pub const MODEL_SIDE: u32 = 1024;

/// One screened view: its PDQ (of every pixel) and the pixels the model sees.
pub struct View {
    pub id: ViewId,
    pub pdq: PdqOutput,
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
    /// The view's own size; `width` x `height` is smaller when it was box-averaged.
    pub source_width: u32,
    pub source_height: u32,
}

impl std::fmt::Debug for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View")
            .field("id", &self.id)
            .field("pdq", &self.pdq.hash.to_hex())
            .field("width", &self.width)
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

/// Why a view could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("PDQ hashing of {view} failed: {source}")]
    Pdq {
        view: ViewId,
        #[source]
        source: pdq::PdqError,
    },
}

/// Every view of `bytes` beyond `reference`, in display order (frames, then renderings in
/// page-colour order). `still` is the translucent still picture [`decode::decode_shown_at`]
/// returned, if any.
///
/// # Errors
/// `AnimationBudget` past `limits.max_views` distinct views (or the frame limits), a frame
/// that does not decode, or a PDQ failure.
pub fn collect(
    bytes: &[u8],
    reference: &DecodedImage,
    still: Option<Canvas>,
    limits: &DecodeLimits,
    settings: &ViewSettings,
) -> Result<Vec<View>, ViewError> {
    let mut collector = Collector {
        reference,
        limits,
        settings,
        seen: HashSet::new(),
        reference_seen: false,
        keys: RandomState::new(),
        views: Vec::new(),
    };
    let format = reference.format;
    let mut failure: Option<ViewError> = None;
    let animated = decode::guarded(format, || {
        decode::for_each_frame(bytes, format, limits, &mut |frame, canvas| {
            collector.offer(frame, canvas).map_err(|e| match e {
                ViewError::Decode(d) => d,
                other => {
                    // Carried out of the decoder's callback whole, with its source.
                    let detail = other.to_string();
                    failure = Some(other);
                    DecodeError::Corrupt { detail }
                }
            })
        })
    });
    if let Some(failure) = failure {
        return Err(failure);
    }
    if !animated? {
        if let Some(still) = still {
            collector.offer(FrameId::Index(0), &still)?;
        }
    }
    Ok(collector.views)
}

struct Collector<'a> {
    reference: &'a DecodedImage,
    limits: &'a DecodeLimits,
    settings: &'a ViewSettings,
    /// Fingerprints of every picture screened: (width, height, keyed hash of the pixels).
    seen: HashSet<(u32, u32, u64)>,
    /// Whether the reference decoding's fingerprint is in `seen`: taken only when a first
    /// candidate view comes, so an opaque still image (most uploads) never pays for it.
    reference_seen: bool,
    keys: RandomState,
    views: Vec<View>,
}

impl Collector<'_> {
    fn print(&self, width: u32, height: u32, rgb: &[u8]) -> (u32, u32, u64) {
        let mut hasher = self.keys.build_hasher();
        hasher.write(rgb);
        (width, height, hasher.finish())
    }

    /// Screens what `canvas` shows, unless something screened already shows it.
    fn offer(&mut self, frame: FrameId, canvas: &Canvas) -> Result<(), ViewError> {
        let mut transparent = 0u64;
        let mut partial = false;
        for p in canvas.rgba.chunks_exact(4) {
            match p[3] {
                0 => transparent += 1,
                255 => {}
                _ => partial = true,
            }
        }
        let pixels = u64::from(canvas.width) * u64::from(canvas.height);
        if transparent == 0 && !partial {
            let rgb: Vec<u8> = canvas
                .rgba
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect();
            return self.add_unless_seen(frame, Rendering::Opaque, canvas, rgb);
        }
        let small_mask = !partial && transparent * 100 <= pixels * SMALL_MASK_PERCENT;
        if small_mask {
            if self.reference_shows_opaque_pixels_of(canvas) {
                return Ok(());
            }
            if let Some(&colour) = self.settings.page_colours.first() {
                let rgb = composite(canvas, colour);
                self.add_unless_seen(frame, Rendering::Over(colour), canvas, rgb)?;
            }
            return Ok(());
        }
        for &colour in &self.settings.page_colours {
            let rgb = composite(canvas, colour);
            self.add_unless_seen(frame, Rendering::Over(colour), canvas, rgb)?;
        }
        Ok(())
    }

    /// Whether the reference decoding has `canvas`'s opaque pixels exactly (then a small
    /// transparent mask is all that differs).
    fn reference_shows_opaque_pixels_of(&self, canvas: &Canvas) -> bool {
        let reference = self.reference;
        reference.scale_denominator() == 1
            && (reference.width, reference.height) == (canvas.width, canvas.height)
            && canvas
                .rgba
                .chunks_exact(4)
                .zip(reference.rgb.chunks_exact(3))
                .all(|(c, r)| c[3] == 0 || c[..3] == r[..])
    }

    fn add_unless_seen(
        &mut self,
        frame: FrameId,
        rendering: Rendering,
        canvas: &Canvas,
        rgb: Vec<u8>,
    ) -> Result<(), ViewError> {
        let (width, height) = (canvas.width, canvas.height);
        if !self.reference_seen {
            self.reference_seen = true;
            // A reduced-scale reference is smaller than any view: nothing equals it.
            let reference = self.reference;
            if reference.scale_denominator() == 1 {
                let print = self.print(reference.width, reference.height, &reference.rgb);
                self.seen.insert(print);
            }
        }
        if !self.seen.insert(self.print(width, height, &rgb)) {
            return Ok(());
        }
        let id = ViewId { frame, rendering };
        if self.views.len() >= self.limits.max_views as usize {
            return Err(DecodeError::AnimationBudget {
                detail: format!(
                    "more than {} distinct frames and renderings to screen (max_views)",
                    self.limits.max_views
                ),
            }
            .into());
        }
        let pdq = crate::hash::robust::pdq_robust_from_rgb8(width, height, &rgb)
            .map_err(|source| ViewError::Pdq { view: id, source })?;
        let (model_width, model_height, model_rgb) = if width.max(height) > MODEL_SIDE {
            crate::hash::box_downsample(width, height, &rgb, MODEL_SIDE)
        } else {
            (width, height, rgb)
        };
        self.views.push(View {
            id,
            pdq,
            width: model_width,
            height: model_height,
            rgb: model_rgb,
            source_width: width,
            source_height: height,
        });
        Ok(())
    }
}

/// The pixels of one view of `bytes`, as screening saw them (for the reviewer console):
/// `(width, height, rgb)` at the file's own size, or `None` when the file has no such
/// frame. A frame's `opaque` rendering is its canvas without alpha (fully opaque frames
/// only have that one).
///
/// # Errors
/// The file does not decode, or its animation is over `limits`.
pub fn render(
    bytes: &[u8],
    limits: &DecodeLimits,
    id: ViewId,
) -> Result<Option<(u32, u32, Vec<u8>)>, DecodeError> {
    let paint = |canvas: &Canvas| match id.rendering {
        Rendering::Opaque => canvas
            .rgba
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        Rendering::Over(colour) => composite(canvas, colour),
    };
    let (reference, still) = decode::decode_shown_at(bytes, limits, decode::Resolution::Full)?;
    let format = reference.format;
    let mut found = None;
    let animated = decode::guarded(format, || {
        decode::for_each_frame(bytes, format, limits, &mut |frame, canvas| {
            if frame == id.frame && found.is_none() {
                found = Some((canvas.width, canvas.height, paint(canvas)));
            }
            Ok(())
        })
    })?;
    if animated {
        return Ok(found);
    }
    if id.frame != FrameId::Index(0) {
        return Ok(None);
    }
    Ok(Some(match &still {
        Some(canvas) => (canvas.width, canvas.height, paint(canvas)),
        None => (reference.width, reference.height, reference.rgb),
    }))
}

/// `canvas` over a page of `colour`, rounded to the nearest value.
fn composite(canvas: &Canvas, colour: [u8; 3]) -> Vec<u8> {
    let mut out = Vec::with_capacity(canvas.rgba.len() / 4 * 3);
    for p in canvas.rgba.chunks_exact(4) {
        let a = u32::from(p[3]);
        for c in 0..3 {
            let v = u32::from(p[c]) * a + u32::from(colour[c]) * (255 - a);
            out.push(((v + 127) / 255) as u8);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renderings_round_trip_by_name() {
        for r in [Rendering::Opaque, Rendering::Over([0xff, 0, 0x12])] {
            assert_eq!(r.name().parse::<Rendering>().unwrap(), r);
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<Rendering>(&json).unwrap(), r);
        }
        assert_eq!(Rendering::Over([0x12; 3]).name(), "over_121212");
        assert!("over_12".parse::<Rendering>().is_err());
        assert!("opaque ".parse::<Rendering>().is_err());
        assert_eq!(parse_hex_colour("#FFffFF").unwrap(), [255; 3]);
        assert!(parse_hex_colour("white").is_err());
    }

    #[test]
    fn composite_is_exact_for_the_alpha_tricks() {
        // Black colour, alpha = 255 - g: over white it is g exactly.
        // White colour, alpha = g: over black it is g exactly.
        for g in 0..=255u8 {
            let dark = Canvas {
                width: 1,
                height: 1,
                rgba: vec![0, 0, 0, 255 - g],
            };
            assert_eq!(composite(&dark, [255; 3]), vec![g; 3]);
            let light = Canvas {
                width: 1,
                height: 1,
                rgba: vec![255, 255, 255, g],
            };
            assert_eq!(composite(&light, [0; 3]), vec![g; 3]);
        }
    }
}
