//! What a screening reports: the record `scan --json` prints, the service answers with and
//! the store keeps, and the PDQ of each view in it.

use serde::{Deserialize, Serialize};

use crate::classify::Detection;
use crate::decode::{FrameId, ImageFormat};
use crate::hash::robust::Region;
use crate::hash::trim::Crop;
use crate::hash::{PdqHash, PdqOutput};
use crate::matching::bank::BankMatch;
use crate::screening::policy::Verdict;
use crate::screening::views::{Rendering, ViewId};

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
