//! What a bank match is allowed: the thresholds of each signal, from the policy.

use serde::{Deserialize, Serialize};

use crate::hash::robust::Region;

/// PDQ distance of a bank that names none: python-threatexchange's default.
pub const DEFAULT_PDQ_THRESHOLD: u32 = 31;

/// Largest PDQ threshold accepted: beyond it unrelated images match.
pub const MAX_PDQ_THRESHOLD: u32 = 63;

/// Per-bank matching parameters (from the policy).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MatchParams {
    pub pdq_threshold: u32,
    pub pdq_min_quality: u32,
    /// The robust signals' own thresholds, each capped by `pdq_threshold`.
    pub signals: SignalThresholds,
}

/// Distance thresholds of the signals beyond the whole-image PDQ. A bank's own
/// `pdq_threshold` caps each, so a bank kept strict stays strict for them too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalThresholds {
    /// The actually turned pixels of the whole image.
    pub turned: u32,
    /// The picture inside a uniform frame.
    pub trimmed: u32,
    #[serde(rename = "pdq_top75")]
    pub top75: u32,
    #[serde(rename = "pdq_bottom75")]
    pub bottom75: u32,
    #[serde(rename = "pdq_center90")]
    pub center90: u32,
    #[serde(rename = "pdq_center80")]
    pub center80: u32,
}

impl Default for SignalThresholds {
    fn default() -> Self {
        let t = DEFAULT_PDQ_THRESHOLD;
        SignalThresholds {
            turned: t,
            trimmed: t,
            top75: t,
            bottom75: t,
            center90: t,
            center80: t,
        }
    }
}

impl SignalThresholds {
    pub fn region(&self, region: Region) -> u32 {
        match region {
            Region::Top75 => self.top75,
            Region::Bottom75 => self.bottom75,
            Region::Center90 => self.center90,
            Region::Center80 => self.center80,
        }
    }

    /// Every threshold with its setting's name, for validation messages.
    pub fn named(&self) -> [(&'static str, u32); 6] {
        [
            ("turned", self.turned),
            ("trimmed", self.trimmed),
            ("pdq_top75", self.top75),
            ("pdq_bottom75", self.bottom75),
            ("pdq_center90", self.center90),
            ("pdq_center80", self.center80),
        ]
    }
}
