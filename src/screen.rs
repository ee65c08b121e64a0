//! The screening pipeline: decode → hash → match → classify → decide.
//!
//! Split in two so callers can place the halves: [`analyse`] (decode and hash)
//! is pure CPU work that any thread may run, and [`Screener::finish`] (match,
//! classify, decide) needs the detector, which one worker owns.

use std::panic::{catch_unwind, AssertUnwindSafe};

use serde::{Deserialize, Serialize};

use crate::bank::{BankMatch, BankSet, Signals};
use crate::classify::{ClassifyError, Detection, Detector, RgbView};
use crate::decide::{Policy, Verdict};
use crate::decode::{self, DecodeError, DecodeLimits, DecodedImage, ImageFormat, Resolution};
use crate::fetch::FetchError;
use crate::hash::{self, ExactHashes, PdqOutput};

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
    /// The pixels the hashes and the model see; `image.source_width` x
    /// `image.source_height` is the size reported.
    pub image: DecodedImage,
    pub pdq: PdqOutput,
    pub phash: Option<String>,
}

impl Analysed {
    pub fn view(&self) -> RgbView<'_> {
        RgbView {
            width: self.image.width,
            height: self.image.height,
            rgb: &self.image.rgb,
            source_width: self.image.source_width,
            source_height: self.image.source_height,
        }
    }
}

/// Decode every pixel and hash: PDQ and pHash exactly as the references compute them.
pub fn analyse(bytes: &[u8], limits: &DecodeLimits) -> Result<Analysed, ScreenError> {
    analyse_at(bytes, limits, Resolution::Full)
}

/// Decode at `resolution` and hash. A panic anywhere in here fails this image only.
pub fn analyse_at(
    bytes: &[u8],
    limits: &DecodeLimits,
    resolution: Resolution,
) -> Result<Analysed, ScreenError> {
    let exact = hash::exact_hashes(bytes);
    let image = decode::decode_at(bytes, limits, resolution)?;
    let hashed = catch_unwind(AssertUnwindSafe(|| {
        let pdq = hash::pdq::pdq_from_rgb8(image.width, image.height, &image.rgb);
        let phash = hash::phash(image.width, image.height, &image.rgb);
        (pdq, phash)
    }));
    let (pdq, phash) = hashed.map_err(|p| ScreenError::HashPanicked(panic_message(&p)))?;
    Ok(Analysed {
        exact,
        image,
        pdq: pdq?,
        phash,
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
}

impl From<&PdqOutput> for PdqRecord {
    fn from(p: &PdqOutput) -> Self {
        PdqRecord {
            hash: p.hash.to_hex(),
            quality: p.quality,
            dihedral: p.dihedral.iter().map(|h| h.to_hex()).collect(),
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
    pub detections: Vec<Detection>,
    pub matches: Vec<BankMatch>,
    pub verdict: Verdict,
    pub reasons: Vec<String>,
    pub model: String,
    pub policy: String,
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
        let classification = self.detector.classify(analysed.view())?;
        Ok(self.record(source, analysed, classification.detections))
    }

    /// Build the record from an image's detections (run on the detector elsewhere,
    /// e.g. in a batch).
    pub fn record(
        &self,
        source: &str,
        analysed: &Analysed,
        detections: Vec<Detection>,
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

/// Match against `banks` and decide by `policy`, given the image's detections.
pub fn build_record(
    source: &str,
    analysed: &Analysed,
    detections: Vec<Detection>,
    banks: &BankSet,
    policy: &Policy,
    model_id: &str,
) -> ScreeningRecord {
    let matches = banks.match_signals(
        Signals {
            exact: &analysed.exact,
            pdq: Some(&analysed.pdq),
        },
        |bank| policy.match_params(bank),
    );
    let scores = crate::classify::label_scores(&detections);
    let decision = policy.decide(&scores, &matches);
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
        detections,
        matches,
        verdict: decision.verdict,
        reasons: decision.reasons,
        model: model_id.to_string(),
        policy: policy.version(),
    }
}
