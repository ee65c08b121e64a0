//! The screening pipeline: decode → hash → match → classify → decide.
//!
//! Split in two so callers can place the halves: [`analyse`] (decode and hash)
//! is pure CPU work that any thread may run, and [`Screener::finish`] (match,
//! classify, decide) needs the detector, which one worker owns.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::classify::{ClassifyError, Detection, Detector, RgbView};
use crate::decode::{self, DecodeError, DecodeLimits, DecodedImage, Resolution};
use crate::fetch::FetchError;
use crate::hash::{self, ExactHashes, PdqOutput};
use crate::matching::bank::BankSet;
use crate::screening::policy::Policy;
use crate::screening::record::{PdqRecord, ScreeningRecord, ViewRecord};
use crate::screening::rematch::{match_and_decide, Decided, ViewSignals};
use crate::screening::views::{self, View, ViewError, ViewSettings};

/// Why an input could not be screened. Never treated as `allow`.
#[derive(Debug, thiserror::Error)]
pub enum ScreenError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("PDQ hashing failed: {0}")]
    Pdq(#[from] hash::pdq::PdqError),
    #[error("hashing panicked: {0}")]
    HashPanicked(String),
    #[error(transparent)]
    Classify(#[from] ClassifyError),
}

impl From<ViewError> for ScreenError {
    fn from(e: ViewError) -> Self {
        match e {
            ViewError::Decode(d) => ScreenError::Decode(d),
            ViewError::Pdq { source, .. } => ScreenError::Pdq(source),
        }
    }
}

impl ScreenError {
    /// Stable machine-readable kind, as reported in JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            ScreenError::Fetch(e) => e.kind(),
            ScreenError::Decode(e) => e.kind(),
            ScreenError::Pdq(_) | ScreenError::HashPanicked(_) => "hash",
            ScreenError::Classify(_) => "classify",
        }
    }
}

/// Decoded pixels and every hash of one image.
pub struct Analysed {
    pub exact: ExactHashes,
    /// The reference decoding (first frame, alpha dropped): the pixels the references see,
    /// and that the hashes and the model see; `image.source_width` x `image.source_height`
    /// is the size reported.
    pub image: DecodedImage,
    pub pdq: PdqOutput,
    pub phash: Option<String>,
    /// What a viewer is shown beyond the reference decoding: later frames, and translucent
    /// pictures over each page colour. Empty for an opaque still image.
    pub views: Vec<View>,
}

impl Analysed {
    /// The reference decoding as the model takes it.
    pub fn view(&self) -> RgbView<'_> {
        RgbView {
            width: self.image.width,
            height: self.image.height,
            rgb: &self.image.rgb,
            source_width: self.image.source_width,
            source_height: self.image.source_height,
        }
    }

    /// Everything the model classifies for this image: the reference, then each view.
    pub fn model_inputs(&self) -> Vec<RgbView<'_>> {
        std::iter::once(self.view())
            .chain(self.views.iter().map(|v| RgbView {
                width: v.width,
                height: v.height,
                rgb: &v.rgb,
                source_width: v.source_width,
                source_height: v.source_height,
            }))
            .collect()
    }

    /// How many inputs [`Analysed::model_inputs`] gives: what the image brings to a batch,
    /// and how many of a batch's answers are its own.
    pub fn model_input_count(&self) -> usize {
        1 + self.views.len()
    }
}

/// Detections of one image: its reference decoding's, then each view's in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImageDetections {
    pub reference: Vec<Detection>,
    pub views: Vec<Vec<Detection>>,
    /// The lines read in the reference decoding, when OCR runs.
    pub ocr: Vec<crate::text::ocr::OcrLine>,
}

impl ImageDetections {
    /// From one list per model input, in [`Analysed::model_inputs`] order.
    pub fn from_inputs(mut per_input: Vec<Vec<Detection>>) -> Self {
        if per_input.is_empty() {
            return ImageDetections::default();
        }
        let reference = per_input.remove(0);
        ImageDetections {
            reference,
            views: per_input,
            ocr: Vec::new(),
        }
    }

    /// The detections stored in a record, if it has one list for each of `analysed`'s views.
    pub fn from_record(record: &serde_json::Value, analysed: &Analysed) -> Option<Self> {
        let reference = serde_json::from_value(record.get("detections")?.clone()).ok()?;
        let stored: Vec<ViewRecord> = match record.get("views") {
            Some(v) => serde_json::from_value(v.clone()).ok()?,
            None => Vec::new(),
        };
        let same_views = stored.len() == analysed.views.len()
            && stored
                .iter()
                .zip(&analysed.views)
                .all(|(s, v)| s.id() == v.id && s.pdq.hash == v.pdq.hash.to_hex());
        // The words read in the artwork stay with its detections.
        let ocr = record
            .get("text")
            .and_then(|t| t.get("ocr"))
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        same_views.then(|| ImageDetections {
            reference,
            views: stored.into_iter().map(|v| v.detections).collect(),
            ocr,
        })
    }
}

/// Decode every pixel and hash: PDQ and pHash exactly as the references compute them.
pub fn analyse(bytes: &[u8], limits: &DecodeLimits) -> Result<Analysed, ScreenError> {
    analyse_at(bytes, limits, Resolution::Full)
}

/// Decode at `resolution` and hash, with the default page colours.
pub fn analyse_at(
    bytes: &[u8],
    limits: &DecodeLimits,
    resolution: Resolution,
) -> Result<Analysed, ScreenError> {
    analyse_with(bytes, limits, resolution, &ViewSettings::default())
}

/// Decode at `resolution`, hash, and make every view a viewer is shown. A panic anywhere
/// in here fails this image only.
pub fn analyse_with(
    bytes: &[u8],
    limits: &DecodeLimits,
    resolution: Resolution,
    settings: &ViewSettings,
) -> Result<Analysed, ScreenError> {
    let exact = hash::exact_hashes(bytes);
    let (image, still) = decode::decode_shown_at(bytes, limits, resolution)?;
    let hashed = catch_unwind(AssertUnwindSafe(|| {
        let pdq = hash::robust::pdq_robust_from_rgb8(image.width, image.height, &image.rgb);
        let phash = hash::phash(image.width, image.height, &image.rgb);
        (pdq, phash)
    }));
    let (pdq, phash) = hashed.map_err(|p| ScreenError::HashPanicked(panic_message(&p)))?;
    let pdq = pdq?;
    let views = catch_unwind(AssertUnwindSafe(|| {
        views::collect(bytes, &image, still, limits, settings)
    }))
    .map_err(|p| ScreenError::HashPanicked(panic_message(&p)))??;
    Ok(Analysed {
        exact,
        image,
        pdq,
        phash,
        views,
    })
}

fn panic_message(payload: &Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}

/// Everything needed to finish screening: the detector, banks and policy.
pub struct Screener {
    pub detector: Detector,
    pub banks: BankSet,
    pub policy: Policy,
}

impl Screener {
    /// Match, classify and decide one analysed image.
    pub fn finish(
        &mut self,
        source: &str,
        analysed: &Analysed,
    ) -> Result<ScreeningRecord, ScreenError> {
        let mut per_input = Vec::with_capacity(analysed.model_input_count());
        for chunk in analysed.model_inputs().chunks(MAX_BATCH) {
            per_input.extend(
                self.detector
                    .classify_batch(chunk)?
                    .into_iter()
                    .map(|c| c.detections),
            );
        }
        Ok(self.record(source, analysed, ImageDetections::from_inputs(per_input)))
    }

    /// Build the record from an image's detections (run on the detector elsewhere,
    /// e.g. in a batch).
    pub fn record(
        &self,
        source: &str,
        analysed: &Analysed,
        detections: ImageDetections,
    ) -> ScreeningRecord {
        build_record(
            source,
            analysed,
            detections,
            &self.banks,
            &self.policy,
            self.detector.model_id(),
        )
    }

    /// Decode (at `resolution`), hash, match, classify and decide one image's bytes.
    pub fn screen_bytes(
        &mut self,
        source: &str,
        bytes: &[u8],
        limits: &DecodeLimits,
        resolution: Resolution,
    ) -> Result<ScreeningRecord, ScreenError> {
        let analysed = analyse_at(bytes, limits, resolution)?;
        self.finish(source, &analysed)
    }
}

/// Most model inputs in one inference call outside the scheduler.
const MAX_BATCH: usize = 8;

/// Match against `banks` and decide by `policy`, given the detections of the image and of
/// each of its views. Each view is matched and decided on its own (an allow-list match
/// clears only the view it matched), and the record's verdict is the worst of them.
pub fn build_record(
    source: &str,
    analysed: &Analysed,
    detections: ImageDetections,
    banks: &BankSet,
    policy: &Policy,
    model_id: &str,
) -> ScreeningRecord {
    let view_signals: Vec<ViewSignals<'_>> = analysed
        .views
        .iter()
        .enumerate()
        .map(|(i, view)| ViewSignals {
            id: view.id,
            pdq: &view.pdq,
            detections: detections.views.get(i).map_or(&[], Vec::as_slice),
        })
        .collect();
    let decided = match_and_decide(
        &analysed.exact,
        &analysed.pdq,
        &detections.reference,
        &view_signals,
        banks,
        policy,
    );
    let mut view_detections = detections.views.into_iter();
    let view_records = analysed
        .views
        .iter()
        .map(|view| ViewRecord {
            frame: view.id.frame,
            rendering: view.id.rendering,
            pdq: PdqRecord::from(&view.pdq),
            detections: view_detections.next().unwrap_or_default(),
        })
        .collect();
    let Decided {
        matches,
        verdict,
        decided_by,
        reasons,
    } = decided;
    ScreeningRecord {
        source: source.to_string(),
        sha256: analysed.exact.sha256.clone(),
        md5: analysed.exact.md5.clone(),
        format: analysed.image.format,
        width: analysed.image.source_width,
        height: analysed.image.source_height,
        decode_scale: analysed.image.scale_denominator(),
        pdq: PdqRecord::from(&analysed.pdq),
        phash: analysed.phash.clone(),
        detections: detections.reference,
        views: view_records,
        matches,
        verdict,
        decided_by,
        reasons,
        text: crate::text::TextRecord {
            ocr: detections.ocr,
            ..Default::default()
        },
        model: model_id.to_string(),
        policy: policy.version(),
    }
}

/// Pictures and detections the screening tests share.
#[cfg(test)]
pub(crate) mod test_images {
    use crate::classify::Detection;

    pub const SIDE: u32 = 64;

    /// A textured picture (PDQ quality well over the gate); `seed` changes it.
    pub fn texture(seed: u32) -> Vec<u8> {
        let mut state = seed;
        (0..SIDE * SIDE)
            .flat_map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let v = (state >> 24) as u8;
                [v, v / 2, 255 - v, 255]
            })
            .collect()
    }

    /// An APNG of two different opaque frames.
    pub fn two_frames() -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, SIDE, SIDE);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_animated(2, 0).unwrap();
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&texture(1)).unwrap();
        writer.write_image_data(&texture(2)).unwrap();
        writer.finish().unwrap();
        out
    }

    /// One exposed-buttocks detection of `score`.
    pub fn explicit(score: f32) -> Vec<Detection> {
        vec![Detection {
            label: "BUTTOCKS_EXPOSED".into(),
            score,
            bbox: [0, 0, 8, 8],
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::FrameId;
    use crate::matching::bank::Bank;
    use crate::screening::policy::{BankAction, BankRule, Verdict};
    use crate::screening::views::Rendering;
    use image::ImageEncoder;

    use super::test_images::{explicit, texture, two_frames, SIDE};

    fn policy_with(bank: &str, action: BankAction) -> Policy {
        let mut policy = Policy::builtin(&["BUTTOCKS_EXPOSED".to_string()]);
        policy.banks.insert(
            bank.into(),
            BankRule {
                action,
                pdq_threshold: 31,
            },
        );
        policy
    }

    fn bank_of(name: &str, pdq: &PdqOutput) -> BankSet {
        let text = format!("pdq {} entry-1\n", pdq.hash.to_hex());
        BankSet::from_banks(vec![Bank::parse(name, &text).unwrap()])
    }

    #[test]
    fn each_view_is_decided_on_its_own_and_the_worst_wins() {
        let analysed = analyse(&two_frames(), &DecodeLimits::default()).unwrap();
        assert_eq!(analysed.views.len(), 1, "{:?}", analysed.views);
        let view = analysed.views[0].id;
        assert_eq!(view.frame, FrameId::Index(1));
        let policy = Policy::builtin(&["BUTTOCKS_EXPOSED".to_string()]);
        // Only the second frame is explicit: the record is held for it, and says so.
        let record = build_record(
            "a",
            &analysed,
            ImageDetections {
                reference: vec![],
                views: vec![explicit(0.6)],
                ocr: vec![],
            },
            &BankSet::default(),
            &policy,
            "m",
        );
        assert_eq!(record.verdict, Verdict::Review);
        assert_eq!(record.decided_by, Some(view));
        assert!(
            record.reasons[0].ends_with("in frame 1"),
            "{:?}",
            record.reasons
        );
        assert!(record.detections.is_empty());
        // The same score on the reference: it decides, and no view is named.
        let record = build_record(
            "a",
            &analysed,
            ImageDetections {
                reference: explicit(0.6),
                views: vec![vec![]],
                ocr: vec![],
            },
            &BankSet::default(),
            &policy,
            "m",
        );
        assert_eq!((record.verdict, record.decided_by), (Verdict::Review, None));
    }

    #[test]
    fn an_allow_list_clears_only_the_view_it_matched() {
        let analysed = analyse(&two_frames(), &DecodeLimits::default()).unwrap();
        let detections = ImageDetections {
            reference: vec![],
            views: vec![explicit(0.6)],
            ocr: vec![],
        };
        // The released first frame does not clear the explicit second frame.
        let released = bank_of("released", &analysed.pdq);
        let policy = policy_with("released", BankAction::Allow);
        let record = build_record("a", &analysed, detections.clone(), &released, &policy, "m");
        assert_eq!(record.verdict, Verdict::Review, "{:?}", record.reasons);
        assert_eq!(record.matches.len(), 1);
        assert_eq!(record.matches[0].view(), None, "the reference matched");
        // Released as the second frame itself, it is cleared.
        let released = bank_of("released", &analysed.views[0].pdq);
        let record = build_record("a", &analysed, detections.clone(), &released, &policy, "m");
        assert_eq!(record.verdict, Verdict::Allow, "{:?}", record.reasons);
        assert_eq!(record.matches[0].view(), Some(analysed.views[0].id));
        // A known-bad bank of the second frame blocks, naming the frame that matched.
        let known_bad = bank_of("known-bad", &analysed.views[0].pdq);
        let policy = policy_with("known-bad", BankAction::Block);
        let record = build_record("a", &analysed, detections, &known_bad, &policy, "m");
        assert_eq!(record.verdict, Verdict::Block);
        assert_eq!(record.matches[0].frame, Some(FrameId::Index(1)));
        assert_eq!(record.matches[0].rendering, Some(Rendering::Opaque));
        assert_eq!(
            record.deciding_pdq().hash,
            analysed.views[0].pdq.hash.to_hex()
        );
    }

    #[test]
    fn an_opaque_still_record_has_no_view_fields() {
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(&texture(3), SIDE, SIDE, image::ExtendedColorType::Rgba8)
            .unwrap();
        let analysed = analyse(&png, &DecodeLimits::default()).unwrap();
        assert!(
            analysed.views.is_empty(),
            "fully opaque alpha changes nothing"
        );
        let record = build_record(
            "a",
            &analysed,
            ImageDetections::default(),
            &BankSet::default(),
            &Policy::builtin(&[]),
            "m",
        );
        let json = serde_json::to_value(&record).unwrap();
        assert!(json.get("views").is_none() && json.get("decided_by").is_none());
    }
}
