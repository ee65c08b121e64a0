//! Matching and deciding, from hashes and detections however they were obtained: freshly
//! from pixels, or as a stored record holds them. A change of banks or policy re-decides a
//! stored screening here without decoding or running the model, and because fresh screening
//! goes through the same code, both give the same matches and verdict for the same image.

use crate::classify::Detection;
use crate::hash::pdq::PdqHash;
use crate::hash::robust::{RegionPdq, RobustPdq, TrimmedPdq};
use crate::hash::{ExactHashes, PdqOutput};
use crate::matching::bank::{BankMatch, BankSet, Signals};
use crate::screening::policy::{Policy, Verdict};
use crate::screening::record::{PdqRecord, ScreeningRecord};
use crate::screening::views::ViewId;

/// One view to match and decide: its PDQ and what the model found in it.
pub struct ViewSignals<'a> {
    pub id: ViewId,
    pub pdq: &'a PdqOutput,
    pub detections: &'a [Detection],
}

/// Matches and verdict of an image and its views.
#[derive(Clone, Debug, PartialEq)]
pub struct Decided {
    pub matches: Vec<BankMatch>,
    pub verdict: Verdict,
    pub decided_by: Option<ViewId>,
    pub reasons: Vec<String>,
}

/// Match against `banks` and decide by `policy`. Each view is matched and decided on its
/// own (an allow-list match clears only the view it matched), and the verdict is the worst.
pub fn match_and_decide(
    exact: &ExactHashes,
    pdq: &PdqOutput,
    detections: &[Detection],
    views: &[ViewSignals<'_>],
    banks: &BankSet,
    policy: &Policy,
) -> Decided {
    let params = |bank: &str| policy.match_params(bank);
    let mut matches = banks.match_signals(
        Signals {
            exact: Some(exact),
            pdq: Some(pdq),
        },
        params,
    );
    let decision = policy.decide(&crate::classify::label_scores(detections), &matches);
    let (mut verdict, mut reasons, mut decided_by) = (decision.verdict, decision.reasons, None);
    for view in views {
        let mut view_matches = banks.match_signals(
            Signals {
                exact: None,
                pdq: Some(view.pdq),
            },
            params,
        );
        for m in &mut view_matches {
            m.frame = Some(view.id.frame);
            m.rendering = Some(view.id.rendering);
        }
        let decided = policy.decide(
            &crate::classify::label_scores(view.detections),
            &view_matches,
        );
        if decided.verdict > verdict {
            verdict = decided.verdict;
            decided_by = Some(view.id);
        }
        reasons.extend(
            decided
                .reasons
                .into_iter()
                .map(|r| format!("{r} in {}", view.id)),
        );
        matches.extend(view_matches);
    }
    // The reasons that set the verdict first, as `decide` orders them.
    reasons.sort_by_key(|r| std::cmp::Reverse(r.starts_with(verdict.as_str())));
    Decided {
        matches,
        verdict,
        decided_by,
        reasons,
    }
}

/// A stored record that cannot be decided again without its pixels.
#[derive(Debug, thiserror::Error)]
pub enum RematchError {
    #[error("the stored PDQ {which} is not readable: {detail}")]
    Pdq { which: String, detail: String },
}

fn stored_pdq(record: &PdqRecord, which: impl Fn() -> String) -> Result<PdqOutput, RematchError> {
    let invalid = |detail: String| RematchError::Pdq {
        which: which(),
        detail,
    };
    let parse = |hex: &str| PdqHash::from_hex(hex).map_err(|e| invalid(e.to_string()));
    let eight = |hexes: &[String], what: &str| -> Result<[PdqHash; 8], RematchError> {
        let hashes: Vec<PdqHash> = hexes.iter().map(|h| parse(h)).collect::<Result<_, _>>()?;
        hashes
            .try_into()
            .map_err(|d: Vec<PdqHash>| invalid(format!("{} {what} hashes instead of 8", d.len())))
    };
    let hash = parse(&record.hash)?;
    let dihedral = eight(&record.dihedral, "dihedral")?;
    // Records made before the robust signals were computed have none: they match as then.
    let robust = if record.turned.is_empty() {
        None
    } else {
        let trimmed = record
            .trimmed
            .iter()
            .map(|t| {
                Ok(TrimmedPdq {
                    crop: t.crop,
                    quality: t.quality,
                    turned: eight(&t.turned, "trimmed")?,
                })
            })
            .collect::<Result<_, RematchError>>()?;
        let regions = record
            .regions
            .iter()
            .map(|r| {
                Ok(RegionPdq {
                    region: r.region,
                    hash: parse(&r.hash)?,
                    quality: r.quality,
                })
            })
            .collect::<Result<_, RematchError>>()?;
        Some(RobustPdq {
            turned: eight(&record.turned, "turned")?,
            trimmed,
            regions,
        })
    };
    Ok(PdqOutput {
        hash,
        quality: record.quality,
        dihedral,
        robust,
    })
}

/// `record` decided again under `banks` and `policy` from what it stores: its exact hashes,
/// the PDQ (with every rotation and flip) of the reference decoding and of each view, and
/// the model's detections. Classifier thresholds, bank actions, thresholds and entries may
/// all have changed; the pixels and the model are not needed.
pub fn redecide(
    record: &ScreeningRecord,
    banks: &BankSet,
    policy: &Policy,
) -> Result<ScreeningRecord, RematchError> {
    let exact = ExactHashes {
        sha256: record.sha256.clone(),
        md5: record.md5.clone(),
    };
    let pdq = stored_pdq(&record.pdq, || "of the reference decoding".into())?;
    let view_pdq = record
        .views
        .iter()
        .map(|v| stored_pdq(&v.pdq, || format!("of {}", v.id())))
        .collect::<Result<Vec<_>, _>>()?;
    let views: Vec<ViewSignals<'_>> = record
        .views
        .iter()
        .zip(&view_pdq)
        .map(|(v, pdq)| ViewSignals {
            id: v.id(),
            pdq,
            detections: &v.detections,
        })
        .collect();
    let decided = match_and_decide(&exact, &pdq, &record.detections, &views, banks, policy);
    Ok(ScreeningRecord {
        matches: decided.matches,
        verdict: decided.verdict,
        decided_by: decided.decided_by,
        reasons: decided.reasons,
        policy: policy.version(),
        ..record.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::DecodeLimits;
    use crate::matching::bank::Bank;
    use crate::screening::analyse::{analyse, build_record, ImageDetections};
    use crate::screening::policy::{BankAction, BankRule, LabelRule};

    use crate::screening::analyse::test_images::{explicit, two_frames};

    fn policy_with(banks: &[(&str, BankAction)]) -> Policy {
        let mut policy = Policy::builtin(&["BUTTOCKS_EXPOSED".to_string()]);
        for (bank, action) in banks {
            policy.banks.insert(
                bank.to_string(),
                BankRule {
                    action: *action,
                    pdq_threshold: 31,
                },
            );
        }
        policy
    }

    fn bank(name: &str, lines: &[String]) -> Bank {
        Bank::parse(name, &lines.join("\n")).unwrap()
    }

    /// Deciding a stored record again gives what screening the pixels under the same banks
    /// and policy gives, for every bank and policy change below.
    #[test]
    fn a_stored_record_decided_again_equals_a_fresh_screening() {
        let analysed = analyse(&two_frames(), &DecodeLimits::default()).unwrap();
        assert_eq!(analysed.views.len(), 1);
        let detections = ImageDetections {
            reference: explicit(0.5),
            views: vec![explicit(0.2)],
            ocr: vec![],
        };
        let policy = policy_with(&[]);
        let stored = build_record(
            "a",
            &analysed,
            detections.clone(),
            &BankSet::default(),
            &policy,
            "m",
        );
        assert_eq!(stored.verdict, Verdict::Review);
        // Rotated: only the dihedral hashes find it.
        let rotated = analysed.views[0].pdq.dihedral[1].to_hex();
        let mut lowered = policy_with(&[]);
        lowered.labels.insert(
            "BUTTOCKS_EXPOSED".into(),
            LabelRule {
                review: Some(0.1),
                block: Some(0.45),
            },
        );
        let cases: Vec<(BankSet, Policy)> = vec![
            // A release of the reference decoding clears the review.
            (
                BankSet::from_banks(vec![bank(
                    "released",
                    &[format!("pdq {} r-1", analysed.pdq.hash.to_hex())],
                )]),
                policy_with(&[("released", BankAction::Allow)]),
            ),
            // A known-bad MD5 blocks.
            (
                BankSet::from_banks(vec![bank(
                    "known-bad",
                    &[format!("md5 {} k-1", analysed.exact.md5)],
                )]),
                policy_with(&[("known-bad", BankAction::Block)]),
            ),
            // A known-bad hash of the second frame, rotated.
            (
                BankSet::from_banks(vec![bank("known-bad", &[format!("pdq {rotated} k-2")])]),
                policy_with(&[("known-bad", BankAction::Block)]),
            ),
            // Lower thresholds: the stored scores block the reference and hold the view.
            (BankSet::default(), lowered),
        ];
        for (banks, policy) in cases {
            let fresh = build_record("a", &analysed, detections.clone(), &banks, &policy, "m");
            let again = redecide(&stored, &banks, &policy).unwrap();
            assert_eq!(again, fresh);
            assert_ne!(again.verdict, Verdict::Review, "{:?}", again.reasons);
        }
    }

    #[test]
    fn an_unreadable_stored_hash_is_an_error() {
        let analysed = analyse(&two_frames(), &DecodeLimits::default()).unwrap();
        let policy = policy_with(&[]);
        let mut stored = build_record(
            "a",
            &analysed,
            ImageDetections::default(),
            &BankSet::default(),
            &policy,
            "m",
        );
        stored.views[0].pdq.dihedral.pop();
        let e = redecide(&stored, &BankSet::default(), &policy).unwrap_err();
        assert!(e.to_string().contains("7 dihedral"), "{e}");
    }
}
