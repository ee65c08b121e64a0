//! Matching an image's PDQ signals against a bank's PDQ tables: the reference's dihedral
//! hashes, the turned pixels and the trimmed picture against whole-image entries, and
//! regions against entries of the same region (a centre region against the whole upload,
//! which is then a crop of the banked image).

use std::collections::BTreeMap;

use super::params::MatchParams;
use super::pdq_table::{Entry, PdqTable};
use crate::hash::robust::Region;
use crate::hash::{Dihedral, PdqHash, PdqOutput};

/// One entry matched, at its best.
pub struct PdqMatch<'b> {
    /// The region of the entry's signal; `None` for a whole-image entry.
    pub region: Option<Region>,
    pub distance: u32,
    /// What matched, named as `BankMatch::transform` documents.
    pub transform: String,
    pub robust: bool,
    pub entry: &'b Entry,
}

/// One candidate match of a PDQ entry before the best per entry is kept.
#[derive(Clone, Copy)]
struct Candidate {
    distance: u32,
    transform: Transform,
}

/// How an image's hash came to match an entry: the reference's own hashes, or a robust
/// signal (which never clears an allow-list).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transform {
    /// The reference's DCT-domain dihedral hash.
    Reference(Dihedral),
    /// The actually turned pixels of the whole image.
    Turned(Dihedral),
    /// The picture inside a frame, turned.
    Trimmed(Dihedral),
    /// A region entry: the same region of the image, or for a centre region the whole
    /// image, turned.
    Region(Region, Dihedral),
}

impl Transform {
    /// The same kind of match, through the turn `turn` of its hashes.
    fn turned(self, turn: Dihedral) -> Transform {
        match self {
            Transform::Reference(_) => Transform::Reference(turn),
            Transform::Turned(_) => Transform::Turned(turn),
            Transform::Trimmed(_) => Transform::Trimmed(turn),
            Transform::Region(region, _) => Transform::Region(region, turn),
        }
    }

    fn is_robust(self) -> bool {
        !matches!(self, Transform::Reference(_))
    }

    fn name(self) -> String {
        let plus = |base: String, turn: Dihedral| match turn {
            Dihedral::Original => base,
            turn => format!("{base}+{}", turn.as_str()),
        };
        match self {
            Transform::Reference(d) => d.as_str().to_string(),
            Transform::Turned(d) => format!("turned:{}", d.as_str()),
            Transform::Trimmed(d) => plus("trimmed".to_string(), d),
            Transform::Region(region, d) => plus(format!("region:{region}"), d),
        }
    }
}

/// Keeps, per entry position, the reference's match if it has one (the standard signal,
/// and the only one an allow-list honours), else the nearest robust one.
fn keep_best(best: &mut BTreeMap<usize, Candidate>, position: usize, candidate: Candidate) {
    let slot = best.entry(position).or_insert(candidate);
    let better = match (slot.transform.is_robust(), candidate.transform.is_robust()) {
        (true, false) => true,
        (false, true) => false,
        _ => candidate.distance < slot.distance,
    };
    if better {
        *slot = candidate;
    }
}

/// Every entry of `whole` and `regions` that `pdq` matches under `p`, once each.
pub fn match_pdq<'b>(
    whole: &'b PdqTable,
    regions: &'b BTreeMap<Region, PdqTable>,
    pdq: &PdqOutput,
    p: &MatchParams,
) -> Vec<PdqMatch<'b>> {
    let gate = p.pdq_min_quality;
    let robust = pdq.robust.as_ref();
    let mut found = Vec::new();
    let mut search =
        |table: &'b PdqTable, region: Option<Region>, queries: &[(&[PdqHash], u32, Transform)]| {
            let mut best: BTreeMap<usize, Candidate> = BTreeMap::new();
            for &(hashes, threshold, via) in queries {
                for (position, distance, turn) in table.within(hashes, threshold) {
                    let transform = via.turned(turn);
                    keep_best(
                        &mut best,
                        position,
                        Candidate {
                            distance,
                            transform,
                        },
                    );
                }
            }
            found.extend(best.into_iter().map(|(position, c)| PdqMatch {
                region,
                distance: c.distance,
                transform: c.transform.name(),
                robust: c.transform.is_robust(),
                entry: table.entry(position),
            }));
        };

    let whole_ok = pdq.quality >= gate;
    let mut queries: Vec<(&[PdqHash], u32, Transform)> = Vec::new();
    if whole_ok {
        queries.push((
            &pdq.dihedral,
            p.pdq_threshold,
            Transform::Reference(Dihedral::Original),
        ));
        if let Some(r) = robust {
            let threshold = p.pdq_threshold.min(p.signals.turned);
            queries.push((&r.turned, threshold, Transform::Turned(Dihedral::Original)));
        }
    }
    // A frame can pull the whole image under the quality gate (a flat border has no
    // gradients); the picture inside is gated on its own quality.
    for trimmed in robust.iter().flat_map(|r| &r.trimmed) {
        if trimmed.quality >= gate {
            let threshold = p.pdq_threshold.min(p.signals.trimmed);
            queries.push((
                &trimmed.turned,
                threshold,
                Transform::Trimmed(Dihedral::Original),
            ));
        }
    }
    if !whole.is_empty() {
        search(whole, None, &queries);
    }

    for (&region, table) in regions {
        if table.is_empty() {
            continue;
        }
        let threshold = p.pdq_threshold.min(p.signals.region(region));
        let own: Option<&PdqHash> = robust
            .and_then(|r| {
                r.regions
                    .iter()
                    .find(|g| g.region == region && g.quality >= gate)
            })
            .map(|g| &g.hash);
        let queries: Vec<(&[PdqHash], u32, Transform)> = match region {
            // A crop of the banked image: the whole upload, turned any way.
            Region::Center90 | Region::Center80 => match robust {
                Some(r) if whole_ok => {
                    vec![(
                        &r.turned[..],
                        threshold,
                        Transform::Region(region, Dihedral::Original),
                    )]
                }
                _ => Vec::new(),
            },
            // A bar over the rest: the same region of the upload.
            Region::Top75 | Region::Bottom75 => own
                .map(|hash| {
                    vec![(
                        std::slice::from_ref(hash),
                        threshold,
                        Transform::Region(region, Dihedral::Original),
                    )]
                })
                .unwrap_or_default(),
        };
        if !queries.is_empty() {
            search(table, Some(region), &queries);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use crate::hash::robust::pdq_robust_from_rgb8;
    use crate::matching::bank::{Bank, BankMatch, BankSet, MatchParams, SignalType, Signals};
    use crate::matching::image_entries::image_entries;

    const W: u32 = 320;
    const H: u32 = 240;

    fn picture() -> Vec<u8> {
        crate::hash::test_images::textured(W, H)
    }

    /// `rgb` (`w` x `h`) with rows and columns `[y0, y0 + ch) x [x0, x0 + cw)` kept.
    fn crop(rgb: &[u8], w: u32, (x0, y0, cw, ch): (u32, u32, u32, u32)) -> Vec<u8> {
        let mut out = Vec::new();
        for y in y0..y0 + ch {
            let row = ((y * w + x0) * 3) as usize;
            out.extend_from_slice(&rgb[row..row + (cw * 3) as usize]);
        }
        out
    }

    /// A bank of the picture built from the image: whole PDQ, regions, MD5.
    fn image_bank() -> BankSet {
        let rgb = picture();
        let pdq = pdq_robust_from_rgb8(W, H, &rgb).unwrap();
        let built = image_entries(&crate::hash::exact_hashes(&rgb), &pdq, 50, |_| true);
        let mut bank = Bank::new("known-bad");
        for (signal, hash) in built.entries {
            bank.add(signal, &hash, "case-1").unwrap();
        }
        BankSet::from_banks(vec![bank])
    }

    /// A bank of the picture's whole-image PDQ only, as an industry list ships it.
    fn hash_only_bank() -> BankSet {
        let pdq = pdq_robust_from_rgb8(W, H, &picture()).unwrap();
        let mut bank = Bank::new("industry");
        bank.add(SignalType::Pdq, &pdq.hash.to_hex(), "list-1")
            .unwrap();
        BankSet::from_banks(vec![bank])
    }

    fn matches(banks: &BankSet, w: u32, h: u32, rgb: &[u8]) -> Vec<BankMatch> {
        let pdq = pdq_robust_from_rgb8(w, h, rgb).unwrap();
        let params = |_: &str| MatchParams {
            pdq_threshold: 31,
            pdq_min_quality: 50,
            signals: Default::default(),
        };
        banks.match_signals(
            Signals {
                exact: None,
                pdq: Some(&pdq),
            },
            params,
        )
    }

    #[test]
    fn the_unedited_image_matches_by_the_reference_hash_not_a_robust_signal() {
        let found = matches(&hash_only_bank(), W, H, &picture());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].transform.as_deref(), Some("original"));
        assert!(!found[0].robust);
    }

    #[test]
    fn a_framed_copy_matches_a_hash_only_bank_as_trimmed() {
        let (fw, fh) = (W + 64, H + 48);
        let mut framed = vec![255u8; (fw * fh * 3) as usize];
        let rgb = picture();
        for y in 0..H {
            let at = (((y + 24) * fw + 32) * 3) as usize;
            framed[at..at + (W * 3) as usize]
                .copy_from_slice(&rgb[(y * W * 3) as usize..((y + 1) * W * 3) as usize]);
        }
        let found = matches(&hash_only_bank(), fw, fh, &framed);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].transform.as_deref(), Some("trimmed"));
        assert!(found[0].robust);
        assert_eq!(found[0].entry, "list-1");
    }

    #[test]
    fn a_caption_bar_and_a_crop_match_an_image_built_bank_by_region() {
        let banks = image_bank();
        // A bar over the bottom fifth.
        let mut captioned = picture();
        let from = ((H * 4 / 5) * W * 3) as usize;
        captioned[from..].iter_mut().enumerate().for_each(|(i, v)| {
            *v = if i % 89 < 7 { 250 } else { 10 };
        });
        let found = matches(&banks, W, H, &captioned);
        assert!(
            found.iter().any(|m| m.signal == SignalType::PdqTop75
                && m.transform.as_deref() == Some("region:top75")
                && m.robust),
            "{found:?}"
        );
        // 5% cut from every side.
        let (cx, cy) = (W / 20, H / 20);
        let cropped = crop(&picture(), W, (cx, cy, W - 2 * cx, H - 2 * cy));
        let found = matches(&banks, W - 2 * cx, H - 2 * cy, &cropped);
        assert!(
            found
                .iter()
                .any(|m| m.signal == SignalType::PdqCenter90 && m.robust),
            "{found:?}"
        );
    }

    #[test]
    fn one_match_per_entry_preferring_the_reference() {
        // The unedited image also matches its own regions' entries (centre against whole),
        // but the whole-image entry is reported once, by the reference.
        let found = matches(&image_bank(), W, H, &picture());
        let whole: Vec<_> = found
            .iter()
            .filter(|m| m.signal == SignalType::Pdq)
            .collect();
        assert_eq!(whole.len(), 1);
        assert!(!whole[0].robust);
    }
}
