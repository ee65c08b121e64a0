//! The signal types bank entries carry.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::hash::robust::Region;

/// The signal a bank entry carries. The `pdq_<region>` types are PDQ hashes of a fixed
/// region of an image (see [`Region`]): they need a bank built from images and match only
/// the same region of an upload, or the whole upload for a centre region (a crop).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum SignalType {
    #[serde(rename = "pdq")]
    Pdq,
    #[serde(rename = "md5")]
    Md5,
    #[serde(rename = "sha256")]
    Sha256,
    #[serde(rename = "pdq_top75")]
    PdqTop75,
    #[serde(rename = "pdq_bottom75")]
    PdqBottom75,
    #[serde(rename = "pdq_center90")]
    PdqCenter90,
    #[serde(rename = "pdq_center80")]
    PdqCenter80,
}

impl SignalType {
    pub const ALL: [SignalType; 7] = [
        SignalType::Pdq,
        SignalType::Md5,
        SignalType::Sha256,
        SignalType::PdqTop75,
        SignalType::PdqBottom75,
        SignalType::PdqCenter90,
        SignalType::PdqCenter80,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        let s = s.to_ascii_lowercase();
        SignalType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            SignalType::Pdq => "pdq",
            SignalType::Md5 => "md5",
            SignalType::Sha256 => "sha256",
            SignalType::PdqTop75 => "pdq_top75",
            SignalType::PdqBottom75 => "pdq_bottom75",
            SignalType::PdqCenter90 => "pdq_center90",
            SignalType::PdqCenter80 => "pdq_center80",
        }
    }

    /// The region a region signal hashes.
    pub fn region(&self) -> Option<Region> {
        match self {
            SignalType::Pdq | SignalType::Md5 | SignalType::Sha256 => None,
            SignalType::PdqTop75 => Some(Region::Top75),
            SignalType::PdqBottom75 => Some(Region::Bottom75),
            SignalType::PdqCenter90 => Some(Region::Center90),
            SignalType::PdqCenter80 => Some(Region::Center80),
        }
    }

    /// The signal type of a region's hash.
    pub fn of_region(region: Region) -> SignalType {
        match region {
            Region::Top75 => SignalType::PdqTop75,
            Region::Bottom75 => SignalType::PdqBottom75,
            Region::Center90 => SignalType::PdqCenter90,
            Region::Center80 => SignalType::PdqCenter80,
        }
    }

    /// Whether the hash is a PDQ hash (whole image or region), matched by distance.
    pub fn is_pdq(&self) -> bool {
        *self == SignalType::Pdq || self.region().is_some()
    }

    pub(crate) fn hex_len(&self) -> usize {
        match self {
            SignalType::Md5 => 32,
            _ => 64,
        }
    }
}

impl fmt::Display for SignalType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
