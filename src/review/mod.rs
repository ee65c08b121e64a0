//! Human review: what a reviewer's decision writes, and how evidence is shown to them.
//!
//! A decision is one store transaction ([`crate::store::ReviewStore::apply_decision`]); this
//! module decides its contents: the reason codes a decision may carry, the bank entries
//! (confirm → the chosen known-bad bank, release → the allow-list bank) and the outbox event
//! that tells the caller to keep the art down or publish it. It also renders quarantined bytes
//! for the console, the reference decoding or one view that screening screened (a frame, in a
//! rendering): downscaled, blurred unless revealed, grayscale if the reviewer wants, and
//! re-encoded as PNG so nothing of the original file (metadata, other frames) reaches a browser.

pub mod appeals;
pub mod statements;
pub mod transparency;
pub mod user_reports;

use std::io::Cursor;

use image::{imageops, DynamicImage, ImageBuffer, Rgb};
use serde::{Deserialize, Serialize};

use crate::act::report::{idempotency_key, ReportKind};
use crate::decode::{self, DecodeError, DecodeLimits, FrameId};
use crate::screening::record::ScreeningRecord;
use crate::screening::views::{self, Rendering, ViewId};
use crate::store::{
    BankRow, ConsoleSettings, EntryWrite, ReportWrite, ReviewDecision, ReviewRow, ScreeningRow,
};

/// Reason codes by decision. Stable strings: dashboards and exports count them.
pub const CONFIRM_REASONS: &[&str] = &[
    "csam",
    "sexualised_minor",
    "adult_explicit",
    "known_bad_variant",
    "grooming_or_contact_request",
];
pub const RELEASE_REASONS: &[&str] = &[
    "false_positive_model",
    "false_positive_hash",
    "not_explicit",
    "artistic_or_educational",
    "false_positive_text",
];
pub const ESCALATE_REASONS: &[&str] = &[
    "age_unclear",
    "legal_question",
    "policy_gap",
    "second_opinion",
];

pub fn reason_codes(decision: ReviewDecision) -> &'static [&'static str] {
    match decision {
        ReviewDecision::Confirm => CONFIRM_REASONS,
        ReviewDecision::Release => RELEASE_REASONS,
        ReviewDecision::Escalate => ESCALATE_REASONS,
    }
}

/// Longest note kept with a decision.
pub const MAX_NOTE_CHARS: usize = 2000;
/// Longest side of the image the console receives.
pub const RENDITION_SIDE: u32 = 512;

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("reason code {code:?} is not one of {allowed:?} for {decision}")]
    UnknownReason {
        code: String,
        decision: ReviewDecision,
        allowed: &'static [&'static str],
    },
    #[error("a note is at most {MAX_NOTE_CHARS} characters")]
    NoteTooLong,
    #[error("confirm needs `bank`: the known-bad bank the image's hashes go into")]
    BankRequired,
    #[error("only confirm takes a bank")]
    BankNotExpected,
    #[error("words screened alone have no image to bank: confirm them without `bank`")]
    NoImageToBank,
    #[error("bank {0:?} is an allow list; confirm needs a known-bad bank")]
    NotKnownBad(String),
    #[error("bank {bank:?} holds none of the signals this screening has ({signals})")]
    NoSignals { bank: String, signals: String },
    #[error("{0}")]
    BadView(String),
    #[error("screening did not screen {0} of this image")]
    ViewNotScreened(ViewId),
    #[error("the evidence has no {0}, though its screening lists it")]
    ViewNotInFile(ViewId),
    #[error("the evidence does not decode: {0}")]
    Decode(#[from] DecodeError),
    #[error("the rendition could not be encoded: {0}")]
    Encode(String),
}

/// A reviewer's decision as the API receives it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    #[schema(value_type = String, example = "confirm")]
    pub decision: ReviewDecision,
    pub reason_code: String,
    #[serde(default)]
    pub note: Option<String>,
    /// Confirm only: the known-bad bank that receives the image's PDQ and MD5.
    #[serde(default)]
    pub bank: Option<String>,
}

impl DecisionRequest {
    /// Checks the reason code and the bank's presence for a screening with or without an
    /// image (words screened alone have nothing to bank); an empty note counts as none.
    pub fn validate(mut self, has_image: bool) -> Result<DecisionRequest, ReviewError> {
        let allowed = reason_codes(self.decision);
        if !allowed.contains(&self.reason_code.as_str()) {
            return Err(ReviewError::UnknownReason {
                code: self.reason_code,
                decision: self.decision,
                allowed,
            });
        }
        self.note = self
            .note
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty());
        if self
            .note
            .as_ref()
            .is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS)
        {
            return Err(ReviewError::NoteTooLong);
        }
        match (self.decision, &self.bank) {
            (ReviewDecision::Confirm, None) if has_image => Err(ReviewError::BankRequired),
            (ReviewDecision::Confirm, Some(_)) if !has_image => Err(ReviewError::NoImageToBank),
            (ReviewDecision::Confirm, _) | (_, None) => Ok(self),
            (_, Some(_)) => Err(ReviewError::BankNotExpected),
        }
    }
}

/// The screening's hashes that `bank` holds, as entries naming the review they came from.
///
/// MD5 and SHA-256 are the file's. The PDQ depends on the decision (see [`decision_pdqs`]);
/// a confirm also banks the regions of that PDQ of at least `min_quality`, so a crop or a
/// caption bar over the confirmed image matches too.
pub fn bank_entries(
    screening: &ScreeningRow,
    bank: &BankRow,
    review: &ReviewRow,
    decision: ReviewDecision,
    min_quality: u32,
) -> Result<Vec<EntryWrite>, ReviewError> {
    bank_entries_as(
        screening,
        bank,
        &format!("review:{}", review.id),
        decision,
        min_quality,
    )
}

/// [`bank_entries`] under the entry id `entry_id`.
pub fn bank_entries_as(
    screening: &ScreeningRow,
    bank: &BankRow,
    entry_id: &str,
    decision: ReviewDecision,
    min_quality: u32,
) -> Result<Vec<EntryWrite>, ReviewError> {
    let external_id = Some(entry_id.to_string());
    let mut entries = Vec::new();
    for signal in &bank.spec.signal_types {
        let hashes = match signal.as_str() {
            "pdq" => decision_pdqs(screening, decision),
            "md5" => vec![screening.facts.md5.clone()],
            "sha256" => vec![screening.facts.sha256.clone()],
            _ => Vec::new(),
        };
        entries.extend(hashes.into_iter().map(|hash| EntryWrite {
            signal: signal.clone(),
            hash,
            external_id: external_id.clone(),
        }));
        if signal == "pdq" && decision == ReviewDecision::Confirm {
            entries.extend(confirmed_regions(screening, min_quality).into_iter().map(
                |(signal, hash)| EntryWrite {
                    signal,
                    hash,
                    external_id: external_id.clone(),
                },
            ));
        }
    }
    if entries.is_empty() {
        return Err(ReviewError::NoSignals {
            bank: bank.spec.name.clone(),
            signals: if screening.facts.pdq.is_some() {
                "pdq, md5, sha256".into()
            } else {
                "md5, sha256".into()
            },
        });
    }
    Ok(entries)
}

/// The region hashes of the PDQ a confirm banks, as (signal type, hash); none from a record
/// that does not parse or predates regions.
fn confirmed_regions(screening: &ScreeningRow, min_quality: u32) -> Vec<(String, String)> {
    let Ok(record) = ScreeningRecord::deserialize(&screening.facts.record) else {
        return Vec::new();
    };
    record
        .deciding_pdq()
        .regions
        .iter()
        .filter(|r| r.quality >= min_quality)
        .map(|r| {
            let signal = crate::matching::bank::SignalType::of_region(r.region);
            (signal.as_str().to_string(), r.hash.clone())
        })
        .collect()
}

/// The PDQ hashes a decision banks.
///
/// A confirm banks the view that decided: banking a harmless first frame would block
/// harmless art, and miss the frame that was bad. A release banks the reference and every
/// view the console offered, because screening decides each view on its own and an
/// allow-list match clears only the view it matched. A record that does not parse (rows
/// written before records had views) gives the screening's own PDQ, if any.
pub fn decision_pdqs(screening: &ScreeningRow, decision: ReviewDecision) -> Vec<String> {
    let Ok(record) = ScreeningRecord::deserialize(&screening.facts.record) else {
        return screening.facts.pdq.iter().cloned().collect();
    };
    match decision {
        ReviewDecision::Confirm => vec![record.deciding_pdq().hash.clone()],
        ReviewDecision::Release => std::iter::once(record.pdq.hash.clone())
            .chain(record.views.iter().map(|v| v.pdq.hash.clone()))
            .collect(),
        ReviewDecision::Escalate => Vec::new(),
    }
}

/// The view a console request names by its `frame` (an index or `default`) and `rendering`
/// (`opaque`, `over_<rrggbb>`) query parameters; neither means the reference decoding.
///
/// # Errors
/// [`ReviewError::BadView`] when only one is given or either does not parse.
pub fn parse_view(
    frame: Option<&str>,
    rendering: Option<&str>,
) -> Result<Option<ViewId>, ReviewError> {
    let (frame, rendering) = match (frame, rendering) {
        (None, None) => return Ok(None),
        (Some(frame), Some(rendering)) => (frame, rendering),
        _ => {
            return Err(ReviewError::BadView(
                "frame and rendering name a view together: give both, or neither for the \
                 reference decoding"
                    .into(),
            ))
        }
    };
    let frame = match frame {
        "default" => FrameId::Default,
        index => FrameId::Index(index.parse().map_err(|_| {
            ReviewError::BadView(format!(
                "frame is a 0-based index or \"default\", not {index:?}"
            ))
        })?),
    };
    let rendering: Rendering = rendering.parse().map_err(ReviewError::BadView)?;
    Ok(Some(ViewId { frame, rendering }))
}

/// Checks that screening screened `view` of this screening (its record lists it), so the
/// console never renders a frame of the file that no verdict covers.
///
/// # Errors
/// [`ReviewError::ViewNotScreened`] otherwise, also when the record does not parse.
pub fn check_screened(screening: &ScreeningRow, view: ViewId) -> Result<(), ReviewError> {
    let listed = ScreeningRecord::deserialize(&screening.facts.record)
        .is_ok_and(|record| record.views.iter().any(|v| v.id() == view));
    if listed {
        Ok(())
    } else {
        Err(ReviewError::ViewNotScreened(view))
    }
}

/// What the caller's webhook receives for a decision.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DecisionEvent {
    pub schema: &'static str,
    pub decision: ReviewDecision,
    /// `publish` after a release, `keep_removed` after a confirm.
    pub action: &'static str,
    pub review_id: String,
    pub screening_id: String,
    pub artwork_id: Option<String>,
    pub owner_id: Option<String>,
    /// The image's; absent for words screened alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub reviewer: String,
    pub reason_code: String,
    pub bank: Option<String>,
}

/// The outbox row announcing a confirm or release (escalations stay internal).
pub fn decision_event(
    review: &ReviewRow,
    screening: &ScreeningRow,
    reviewer: &str,
    request: &DecisionRequest,
    bank: Option<&str>,
) -> Option<ReportWrite> {
    let action = match request.decision {
        ReviewDecision::Confirm => "keep_removed",
        ReviewDecision::Release => "publish",
        ReviewDecision::Escalate => return None,
    };
    let event = DecisionEvent {
        schema: "coverguard.decision.v1",
        decision: request.decision,
        action,
        review_id: review.id.clone(),
        screening_id: screening.id.clone(),
        artwork_id: screening.facts.artwork_id.clone(),
        owner_id: screening.facts.owner_id.clone(),
        sha256: screening
            .facts
            .has_image()
            .then(|| screening.facts.sha256.clone()),
        reviewer: reviewer.to_string(),
        reason_code: request.reason_code.clone(),
        bank: bank.map(str::to_string),
    };
    Some(ReportWrite {
        // One decision per review item, so its id keys the event.
        idempotency_key: idempotency_key(ReportKind::Decision, &review.id),
        kind: ReportKind::Decision.as_str().into(),
        payload: serde_json::to_value(&event).ok()?,
    })
}

/// How the console shows evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ViewMode {
    /// Blurred (and grayscale if set): the default.
    #[default]
    Safe,
    /// Not blurred; in colour unless the reviewer asked for grayscale reveals.
    Reveal,
}

impl ViewMode {
    /// Whether `settings` want this mode in grayscale.
    pub fn grayscale(self, settings: &ConsoleSettings) -> bool {
        match self {
            ViewMode::Safe => settings.grayscale,
            ViewMode::Reveal => settings.grayscale_reveal,
        }
    }
}

/// Decodes quarantined bytes and renders them for the console as PNG: the reference
/// decoding, or `view` as screening saw it, through [`rendition`].
///
/// # Errors
/// The bytes do not decode, the file has no such view, or the PNG cannot be encoded.
pub fn render_evidence(
    bytes: &[u8],
    limits: &DecodeLimits,
    view: Option<ViewId>,
    settings: &ConsoleSettings,
    mode: ViewMode,
) -> Result<Vec<u8>, ReviewError> {
    let (width, height, rgb) = match view {
        None => {
            // The rendition is small: a large JPEG need not be decoded in full.
            let decoded = decode::decode_at(
                bytes,
                limits,
                decode::Resolution::LongSideAtLeast(RENDITION_SIDE),
            )?;
            (decoded.width, decoded.height, decoded.rgb)
        }
        Some(id) => views::render(bytes, limits, id)?.ok_or(ReviewError::ViewNotInFile(id))?,
    };
    rendition(width, height, rgb, settings, mode)
}

/// Pixels as the console receives them, as PNG: at most [`RENDITION_SIDE`] px, blurred in
/// [`ViewMode::Safe`], grayscale when the settings say so for the mode.
///
/// # Errors
/// The pixels do not fill `width` x `height`, or the PNG cannot be encoded.
pub fn rendition(
    width: u32,
    height: u32,
    rgb: Vec<u8>,
    settings: &ConsoleSettings,
    mode: ViewMode,
) -> Result<Vec<u8>, ReviewError> {
    let buffer: ImageBuffer<Rgb<u8>, Vec<u8>> = ImageBuffer::from_raw(width, height, rgb)
        .ok_or_else(|| ReviewError::Encode("decoded pixels do not fill the image".into()))?;
    let mut image = DynamicImage::ImageRgb8(buffer);
    if image.width().max(image.height()) > RENDITION_SIDE {
        image = image.resize(
            RENDITION_SIDE,
            RENDITION_SIDE,
            imageops::FilterType::Triangle,
        );
    }
    if mode == ViewMode::Safe {
        image = image.fast_blur(f32::from(settings.blur.max(ConsoleSettings::MIN_BLUR)));
    }
    if mode.grayscale(settings) {
        image = DynamicImage::ImageLuma8(image.to_luma8());
    }
    let mut png = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| ReviewError::Encode(e.to_string()))?;
    Ok(png)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(decision: ReviewDecision, code: &str, bank: Option<&str>) -> DecisionRequest {
        DecisionRequest {
            decision,
            reason_code: code.into(),
            note: Some("  ".into()),
            bank: bank.map(str::to_string),
        }
    }

    #[test]
    fn decisions_need_their_own_reason_codes_and_confirm_needs_a_bank() {
        let ok = request(ReviewDecision::Confirm, "csam", Some("known-bad"))
            .validate(true)
            .unwrap();
        assert_eq!(ok.note, None, "a blank note is no note");
        assert!(matches!(
            request(ReviewDecision::Release, "csam", None).validate(true),
            Err(ReviewError::UnknownReason { .. })
        ));
        assert!(matches!(
            request(ReviewDecision::Confirm, "csam", None).validate(true),
            Err(ReviewError::BankRequired)
        ));
        assert!(matches!(
            request(ReviewDecision::Escalate, "age_unclear", Some("x")).validate(true),
            Err(ReviewError::BankNotExpected)
        ));
        let mut long = request(ReviewDecision::Escalate, "age_unclear", None);
        long.note = Some("x".repeat(MAX_NOTE_CHARS + 1));
        assert!(matches!(long.validate(true), Err(ReviewError::NoteTooLong)));
    }

    #[test]
    fn words_screened_alone_are_confirmed_without_a_bank() {
        let code = reason_codes(ReviewDecision::Confirm)[0];
        assert!(request(ReviewDecision::Confirm, code, None)
            .validate(false)
            .is_ok());
        assert!(matches!(
            request(ReviewDecision::Confirm, code, Some("known-bad")).validate(false),
            Err(ReviewError::NoImageToBank)
        ));
        let release = reason_codes(ReviewDecision::Release)[0];
        assert!(matches!(
            request(ReviewDecision::Release, release, Some("x")).validate(false),
            Err(ReviewError::BankNotExpected)
        ));
    }

    /// A high-contrast checkerboard: blur flattens it, reveal keeps it.
    fn checkerboard_png(side: u32) -> Vec<u8> {
        let image = ImageBuffer::from_fn(side, side, |x, y| {
            if (x / 4 + y / 4) % 2 == 0 {
                Rgb([255u8, 0, 0])
            } else {
                Rgb([0u8, 0, 255])
            }
        });
        let mut png = Vec::new();
        DynamicImage::ImageRgb8(image)
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        png
    }

    fn spread(png: &[u8]) -> (u32, u32, u8, bool) {
        let image = image::load_from_memory(png).unwrap();
        let gray = matches!(image, DynamicImage::ImageLuma8(_));
        let luma = image.to_luma8();
        let (lo, hi) = luma
            .pixels()
            .fold((255u8, 0u8), |(lo, hi), p| (lo.min(p.0[0]), hi.max(p.0[0])));
        (image.width(), image.height(), hi - lo, gray)
    }

    #[test]
    fn the_safe_view_is_blurred_small_and_gray_and_reveal_is_sharp() {
        let png = checkerboard_png(1024);
        let limits = DecodeLimits::default();
        let settings = ConsoleSettings::default();
        let (w, h, safe_spread, gray) =
            spread(&render_evidence(&png, &limits, None, &settings, ViewMode::Safe).unwrap());
        assert_eq!((w, h), (RENDITION_SIDE, RENDITION_SIDE));
        assert!(gray);
        let (_, _, reveal_spread, _) =
            spread(&render_evidence(&png, &limits, None, &settings, ViewMode::Reveal).unwrap());
        assert!(
            safe_spread < reveal_spread / 4,
            "blur should flatten the checkerboard: safe {safe_spread}, revealed {reveal_spread}"
        );
        let (_, _, _, gray) =
            spread(&render_evidence(&png, &limits, None, &settings, ViewMode::Reveal).unwrap());
        assert!(!gray, "a reveal is in colour by default");
        let gray_reveals = ConsoleSettings {
            grayscale_reveal: true,
            ..settings
        };
        let (_, _, _, gray) =
            spread(&render_evidence(&png, &limits, None, &gray_reveals, ViewMode::Reveal).unwrap());
        assert!(gray);
        assert!(matches!(
            render_evidence(b"not an image", &limits, None, &settings, ViewMode::Safe),
            Err(ReviewError::Decode(_))
        ));
    }

    #[test]
    fn views_are_named_by_frame_and_rendering_together() {
        assert_eq!(parse_view(None, None).unwrap(), None);
        assert_eq!(
            parse_view(Some("1"), Some("over_ffffff")).unwrap(),
            Some(ViewId {
                frame: FrameId::Index(1),
                rendering: Rendering::Over([0xff; 3]),
            })
        );
        assert_eq!(
            parse_view(Some("default"), Some("opaque")).unwrap(),
            Some(ViewId {
                frame: FrameId::Default,
                rendering: Rendering::Opaque,
            })
        );
        for (frame, rendering) in [
            (Some("1"), None),
            (None, Some("opaque")),
            (Some("-1"), Some("opaque")),
            (Some("first"), Some("opaque")),
            (Some("1"), Some("over_white")),
        ] {
            assert!(
                matches!(parse_view(frame, rendering), Err(ReviewError::BadView(_))),
                "{frame:?} {rendering:?}"
            );
        }
    }

    /// A two-frame GIF: red, then blue.
    fn two_frame_gif() -> Vec<u8> {
        let frames = [[255u8, 0, 0, 255], [0u8, 0, 255, 255]].map(|colour| {
            image::Frame::new(image::RgbaImage::from_pixel(16, 16, image::Rgba(colour)))
        });
        let mut gif = Vec::new();
        image::codecs::gif::GifEncoder::new(&mut gif)
            .encode_frames(frames)
            .unwrap();
        gif
    }

    #[test]
    fn a_view_is_rendered_from_its_own_frame() {
        let gif = two_frame_gif();
        let limits = DecodeLimits::default();
        let colour = ConsoleSettings {
            blur: 2,
            grayscale: false,
            grayscale_reveal: false,
        };
        let centre = |png: Vec<u8>| image::load_from_memory(&png).unwrap().to_rgb8()[(8, 8)].0;
        let reference = render_evidence(&gif, &limits, None, &colour, ViewMode::Reveal).unwrap();
        assert_eq!(centre(reference), [255, 0, 0]);
        let second = ViewId {
            frame: FrameId::Index(1),
            rendering: Rendering::Opaque,
        };
        let shown = render_evidence(&gif, &limits, Some(second), &colour, ViewMode::Reveal);
        assert_eq!(centre(shown.unwrap()), [0, 0, 255]);
        let missing = ViewId {
            frame: FrameId::Index(7),
            ..second
        };
        assert!(matches!(
            render_evidence(&gif, &limits, Some(missing), &colour, ViewMode::Safe),
            Err(ReviewError::ViewNotInFile(_))
        ));
    }
}
