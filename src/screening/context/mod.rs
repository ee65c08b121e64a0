//! Context policy: stricter thresholds where the grooming pattern lives.
//!
//! In the case that motivated coverguard, a child was coerced into uploading
//! explicit photos as the artwork of empty playlists whose titles carried the
//! messages. So an upload by an owner known to be a minor, or the cover of a
//! playlist with no tracks, is screened with the strict profile.

pub mod parse;

use serde::{Deserialize, Serialize};

use crate::screening::policy::{LabelRule, Policy};
use crate::text::ocr::Depth;

/// What the caller tells us about the upload.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScreenContext {
    /// `playlist_cover`, `track_art`, …
    pub surface: Option<String>,
    #[serde(default)]
    pub owner_is_minor: bool,
    pub playlist_track_count: Option<i64>,
    /// The playlist's or track's title, screened for text signals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The playlist's or track's description, screened for text signals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Strict profile thresholds: review explicit labels from 0.25 and block from
/// 0.80, and review covered intimate areas from 0.50.
pub const STRICT_EXPLICIT_REVIEW: f32 = 0.25;
pub const STRICT_EXPLICIT_BLOCK: f32 = 0.80;
pub const STRICT_COVERED_REVIEW: f32 = 0.50;
pub const STRICT_COVERED_LABELS: [&str; 3] = [
    "FEMALE_GENITALIA_COVERED",
    "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
];

impl ScreenContext {
    /// Whether the strict profile applies, and why.
    pub fn strict_reason(&self) -> Option<&'static str> {
        if self.owner_is_minor {
            Some("owner is a minor")
        } else if self.playlist_track_count == Some(0) {
            Some("playlist has no tracks")
        } else {
            None
        }
    }

    /// How much of an image in this context is read: in full under the strict profile,
    /// since the text gate lets pass some text the reading reads.
    pub fn ocr_depth(&self) -> Depth {
        if self.strict_reason().is_some() {
            Depth::InFull
        } else {
            Depth::AsConfigured
        }
    }

    /// The policy for this context: `base`, or its strict variant.
    pub fn policy(&self, base: &Policy) -> Policy {
        if self.strict_reason().is_none() {
            return base.clone();
        }
        strict_policy(base)
    }
}

/// The strict variant of `base`: what a minor's upload or an empty playlist's cover is
/// decided under, and what a report that a minor is involved asks for.
pub fn strict_policy(base: &Policy) -> Policy {
    let mut strict = base.clone();
    // A release under the adult profile must not clear what the strict profile flags.
    strict.allow_list_clears_classifier = false;
    for rule in strict.labels.values_mut() {
        rule.review = Some(
            rule.review
                .map_or(STRICT_EXPLICIT_REVIEW, |r| r.min(STRICT_EXPLICIT_REVIEW)),
        );
        rule.block = Some(
            rule.block
                .map_or(STRICT_EXPLICIT_BLOCK, |b| b.min(STRICT_EXPLICIT_BLOCK)),
        );
    }
    for label in STRICT_COVERED_LABELS {
        strict.labels.entry(label.to_string()).or_insert(LabelRule {
            review: Some(STRICT_COVERED_REVIEW),
            block: None,
        });
    }
    strict
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn minors_and_empty_playlists_get_the_strict_profile() {
        let base = Policy::builtin(&["BUTTOCKS_EXPOSED".to_string()]);
        let scores: BTreeMap<String, f32> = [
            ("BUTTOCKS_EXPOSED".to_string(), 0.3),
            ("BUTTOCKS_COVERED".to_string(), 0.6),
        ]
        .into();
        let normal = ScreenContext::default();
        assert_eq!(
            normal.policy(&base).decide(&scores, &[]).verdict,
            crate::screening::policy::Verdict::Allow
        );
        for strict in [
            ScreenContext {
                owner_is_minor: true,
                ..Default::default()
            },
            ScreenContext {
                playlist_track_count: Some(0),
                ..Default::default()
            },
        ] {
            let p = strict.policy(&base);
            assert_ne!(
                p.version(),
                base.version(),
                "the cache must tell the profiles apart"
            );
            let d = p.decide(&scores, &[]);
            assert_eq!(
                d.verdict,
                crate::screening::policy::Verdict::Review,
                "{strict:?}"
            );
            assert_eq!(d.reasons.len(), 2);
            assert!(!p.allow_list_clears_classifier, "{strict:?}");
        }
        let busy = ScreenContext {
            playlist_track_count: Some(12),
            ..Default::default()
        };
        assert!(busy.strict_reason().is_none());
    }
}
