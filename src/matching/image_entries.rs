//! The bank entries an image gives when a bank is built from images (uploaded to a bank,
//! confirmed by a reviewer, or hashed by `coverguard hash`): its whole-image PDQ, the PDQ of
//! each region, and its exact hashes. Regions let a crop or a caption bar of the image match
//! later, which a hash-only entry cannot.

use super::signal::SignalType;
use crate::hash::robust::Region;
use crate::hash::{ExactHashes, PdqOutput};

/// The entry id an image's lines share when none is given: the first half of its SHA-256,
/// so the same image gets the same id from `coverguard hash` and from an upload.
pub fn default_entry_id(exact: &ExactHashes) -> String {
    exact.sha256.chars().take(32).collect()
}

/// Entries of one image, in the order written, and the signals left out with why.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageEntries {
    pub entries: Vec<(SignalType, String)>,
    pub skipped: Vec<String>,
}

/// The entries of `wanted` signal types an image gives. A PDQ hash (whole or region) below
/// `min_quality` is left out with the reason: it would match unrelated images.
pub fn image_entries(
    exact: &ExactHashes,
    pdq: &PdqOutput,
    min_quality: u32,
    wanted: impl Fn(SignalType) -> bool,
) -> ImageEntries {
    let mut out = ImageEntries::default();
    let mut pdq_entry = |signal: SignalType, hex: String, quality: u32| {
        if !wanted(signal) {
            return;
        }
        if quality < min_quality {
            out.skipped.push(format!(
                "{signal}: quality {quality} is below {min_quality}; it would match unrelated images"
            ));
        } else {
            out.entries.push((signal, hex));
        }
    };
    pdq_entry(SignalType::Pdq, pdq.hash.to_hex(), pdq.quality);
    for region in Region::ALL {
        let hashed = pdq
            .robust
            .as_ref()
            .and_then(|r| r.regions.iter().find(|g| g.region == region));
        if let Some(g) = hashed {
            pdq_entry(SignalType::of_region(region), g.hash.to_hex(), g.quality);
        }
    }
    for (signal, hex) in [
        (SignalType::Md5, &exact.md5),
        (SignalType::Sha256, &exact.sha256),
    ] {
        if wanted(signal) {
            out.entries.push((signal, hex.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::robust::pdq_robust_from_rgb8;

    #[test]
    fn an_image_gives_pdq_regions_and_exact_hashes() {
        let rgb = crate::hash::test_images::textured(200, 200);
        let pdq = pdq_robust_from_rgb8(200, 200, &rgb).unwrap();
        let exact = crate::hash::exact_hashes(&rgb);
        let all = image_entries(&exact, &pdq, 50, |_| true);
        let signals: Vec<&str> = all.entries.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(
            signals,
            [
                "pdq",
                "pdq_top75",
                "pdq_bottom75",
                "pdq_center90",
                "pdq_center80",
                "md5",
                "sha256"
            ]
        );
        assert_eq!(all.entries[0].1, pdq.hash.to_hex());
        assert!(all.skipped.is_empty());
        let md5_only = image_entries(&exact, &pdq, 50, |s| s == SignalType::Md5);
        assert_eq!(md5_only.entries, vec![(SignalType::Md5, exact.md5.clone())]);
    }

    #[test]
    fn weak_pdq_hashes_are_skipped_with_the_reason() {
        let flat = vec![128u8; 100 * 100 * 3];
        let pdq = pdq_robust_from_rgb8(100, 100, &flat).unwrap();
        let exact = crate::hash::exact_hashes(&flat);
        let out = image_entries(&exact, &pdq, 50, |s| s.is_pdq());
        assert!(out.entries.is_empty());
        assert_eq!(out.skipped.len(), 5, "{:?}", out.skipped);
        assert!(out.skipped[0].starts_with("pdq: quality 0 is below 50"));
    }
}
