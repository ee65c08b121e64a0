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
use crate::decode::{self, DecodeError, DecodeLimits, ImageFormat};
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
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
    pub pdq: PdqOutput,
    pub phash: Option<String>,
}

impl Analysed {
    pub fn view(&self) -> RgbView<'_> {
        RgbView {
            width: self.width,
            height: self.height,
            rgb: &self.rgb,
        }
    }
}

/// Decode and hash. A panic anywhere in here fails this image only.
pub fn analyse(bytes: &[u8], limits: &DecodeLimits) -> Result<Analysed, ScreenError> {
    let exact = hash::exact_hashes(bytes);
    let image = decode::decode(bytes, limits)?;
    let hashed = catch_unwind(AssertUnwindSafe(|| {
        let pdq = hash::pdq::pdq_from_rgb8(image.width, image.height, &image.rgb);
        let phash = hash::phash(image.width, image.height, &image.rgb);
        (pdq, phash)
    }));
    let (pdq, phash) = hashed.map_err(|p| ScreenError::HashPanicked(panic_message(&p)))?;
    Ok(Analysed {
        exact,
        format: image.format,
        width: image.width,
        height: image.height,
        rgb: image.rgb,
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
    pub pdq: PdqRecord,
    pub phash: Option<String>,
    pub detections: Vec<Detection>,
    pub matches: Vec<BankMatch>,
    pub verdict: Verdict,
    pub reasons: Vec<String>,
    pub model: String,
    pub policy: String,
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

    /// Decode, hash, match, classify and decide one image's bytes.
    pub fn screen_bytes(
        &mut self,
        source: &str,
        bytes: &[u8],
        limits: &DecodeLimits,
    ) -> Result<ScreeningRecord, ScreenError> {
        let analysed = analyse(bytes, limits)?;
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
        format: analysed.format,
        width: analysed.width,
        height: analysed.height,
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
