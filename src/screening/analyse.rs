//! The screening pipeline: decode → hash → match → classify → decide.
//!
//! Split in two so callers can place the halves: [`analyse`] (decode and hash)
//! is pure CPU work that any thread may run, and [`Screener::finish`] (match,
//! classify, decide) needs the detector, which one worker owns.

use std::panic::{catch_unwind, AssertUnwindSafe};

use serde::{Deserialize, Serialize};

use crate::classify::{ClassifyError, Detection, Detector, RgbView};
use crate::decode::{
    self, DecodeError, DecodeLimits, DecodedImage, FrameId, ImageFormat, Resolution,
};
use crate::fetch::FetchError;
use crate::hash::robust::Region;
use crate::hash::trim::Crop;
use crate::hash::{self, ExactHashes, PdqHash, PdqOutput};
use crate::matching::bank::{BankMatch, BankSet};
use crate::screening::policy::{Policy, Verdict};
use crate::screening::rematch::{match_and_decide, Decided, ViewSignals};
use crate::screening::views::{self, Rendering, View, ViewError, ViewId, ViewSettings};

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

/// PDQ as reported.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PdqRecord {
    pub hash: String,
    pub quality: u32,
    pub dihedral: Vec<String>,
    /// PDQ of the actually turned pixels, in `dihedral`'s order (`turned[0]` is the
    /// image as it is). Absent in records made before these were computed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub turned: Vec<String>,
    /// The picture inside each uniform frame found, hashed turned every way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trimmed: Vec<TrimmedRecord>,
    /// Fixed regions of the image (`top75`, `center90`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<RegionRecord>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TrimmedRecord {
    pub crop: Crop,
    pub quality: u32,
    /// In `dihedral`'s order; `turned[0]` is the crop as it is.
    pub turned: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RegionRecord {
    #[schema(value_type = String)]
    pub region: Region,
    pub hash: String,
    pub quality: u32,
}

fn hex_all(hashes: &[PdqHash]) -> Vec<String> {
    hashes.iter().map(PdqHash::to_hex).collect()
}

impl From<&PdqOutput> for PdqRecord {
    fn from(p: &PdqOutput) -> Self {
        let robust = p.robust.as_ref();
        PdqRecord {
            hash: p.hash.to_hex(),
            quality: p.quality,
            dihedral: hex_all(&p.dihedral),
            turned: robust.map(|r| hex_all(&r.turned)).unwrap_or_default(),
            trimmed: robust
                .map(|r| {
                    r.trimmed
                        .iter()
                        .map(|t| TrimmedRecord {
                            crop: t.crop,
                            quality: t.quality,
                            turned: hex_all(&t.turned),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            regions: robust
                .map(|r| {
                    r.regions
                        .iter()
                        .map(|g| RegionRecord {
                            region: g.region,
                            hash: g.hash.to_hex(),
                            quality: g.quality,
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// One view screened beyond the reference decoding: a frame, in a rendering.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ViewRecord {
    /// The 0-based index among the frames displayed, or `"default"` for an APNG's default
    /// image that is not part of its animation.
    #[schema(value_type = serde_json::Value)]
    pub frame: FrameId,
    /// `opaque`, or `over_<rrggbb>`: composited over a page of that colour.
    #[schema(value_type = String)]
    pub rendering: Rendering,
    pub pdq: PdqRecord,
    pub detections: Vec<Detection>,
}

impl ViewRecord {
    pub fn id(&self) -> ViewId {
        ViewId {
            frame: self.frame,
            rendering: self.rendering,
        }
    }
}

/// The outcome of screening one image: what `scan --json` prints per input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScreeningRecord {
    pub source: String,
    pub sha256: String,
    pub md5: String,
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
    /// Hashes and scores come from pixels decoded at 1/`decode_scale` of the image's
    /// size (JPEG DCT scaling); 1 means every pixel, as the references decode.
    #[serde(default = "full_scale")]
    pub decode_scale: u32,
    pub pdq: PdqRecord,
    pub phash: Option<String>,
    /// The reference decoding's detections.
    pub detections: Vec<Detection>,
    /// Every further frame or rendering screened; absent for an opaque still image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub views: Vec<ViewRecord>,
    /// Every match, of the reference decoding (no `frame`) or of a view.
    pub matches: Vec<BankMatch>,
    /// The worst verdict over the reference decoding and every view.
    pub verdict: Verdict,
    /// The view whose verdict the record's is, when it is not the reference decoding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub decided_by: Option<ViewId>,
    pub reasons: Vec<String>,
    /// Text signals of the title and description; absent when there were none.
    #[serde(default, skip_serializing_if = "crate::text::TextRecord::is_empty")]
    pub text: crate::text::TextRecord,
    pub model: String,
    pub policy: String,
}

impl ScreeningRecord {
    /// The PDQ of the view that decided, or of the reference decoding.
    pub fn deciding_pdq(&self) -> &PdqRecord {
        self.decided_by
            .and_then(|id| self.views.iter().find(|v| v.id() == id))
            .map_or(&self.pdq, |v| &v.pdq)
    }
}

fn full_scale() -> u32 {
    1
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
        let mut per_input = Vec::with_capacity(1 + analysed.views.len());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::bank::Bank;
    use crate::screening::policy::{BankAction, BankRule};
    use image::ImageEncoder;

    const SIDE: u32 = 64;

    /// A textured picture (PDQ quality well over the gate); `seed` changes it.
    fn texture(seed: u32) -> Vec<u8> {
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
    fn two_frames() -> Vec<u8> {
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

    fn explicit(score: f32) -> Vec<Detection> {
        vec![Detection {
            label: "BUTTOCKS_EXPOSED".into(),
            score,
            bbox: [0, 0, 8, 8],
        }]
    }

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
