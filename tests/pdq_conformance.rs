//! Meta's PDQ test images (`../shared/pdq-conformance`, copied to fixtures).

mod common;

use common::*;
use coverguard::decode::DecodeLimits;
use coverguard::matching::bank::{Bank, BankSet, MatchParams, SignalType, Signals};
use coverguard::screening::analyse::analyse;

fn load(file: &str) -> coverguard::screening::analyse::Analysed {
    let bytes = std::fs::read(fixtures().join("pdq-conformance").join(file)).unwrap();
    analyse(&bytes, &DecodeLimits::default()).unwrap()
}

#[test]
fn hashes_qualities_and_dihedrals_match_the_reference() {
    let expected = pdq_conformance();
    assert!(expected.len() >= 30);
    let mut failures = Vec::new();
    for e in &expected {
        let ours = load(&e.file);
        let hash = ours.pdq.hash.to_hex();
        let dihedral: Vec<String> = ours.pdq.dihedral.iter().map(|h| h.to_hex()).collect();
        if e.file.ends_with(".png") {
            if hash != e.pdq || ours.pdq.quality != e.quality || dihedral != e.dihedral {
                failures.push(format!(
                    "{}: lossless image differs: {hash} q{}",
                    e.file, ours.pdq.quality
                ));
            }
        } else {
            let worst = std::iter::once(hex_distance(&hash, &e.pdq))
                .chain(
                    dihedral
                        .iter()
                        .zip(&e.dihedral)
                        .map(|(a, b)| hex_distance(a, b)),
                )
                .max()
                .unwrap();
            if worst > 4 {
                failures.push(format!(
                    "{}: JPEG hash or dihedral {worst} bits from the reference",
                    e.file
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn bridge_rotations_and_flips_match_the_original_through_the_dihedral_set() {
    let original = load("reg-test-input/dih/bridge-1-original.jpg");
    let mut bank = Bank::new("bridge");
    bank.add(
        SignalType::Pdq,
        &original.pdq.hash.to_hex(),
        "bridge-original",
    )
    .unwrap();
    let banks = BankSet::from_banks(vec![bank]);
    let params = |_: &str| MatchParams {
        pdq_threshold: 31,
        pdq_min_quality: 50,
        signals: Default::default(),
    };
    for (file, transform) in [
        ("bridge-2-rotate-90.jpg", "rot270"),
        ("bridge-3-rotate-180.jpg", "rot180"),
        ("bridge-4-rotate-270.jpg", "rot90"),
        ("bridge-5-flipx.jpg", "flipx"),
        ("bridge-6-flipy.jpg", "flipy"),
        ("bridge-7-flip-plus-1.jpg", "flip_plus1"),
        ("bridge-8-flip-minus-1.jpg", "flip_minus1"),
    ] {
        let rotated = load(&format!("reg-test-input/dih/{file}"));
        // Not similar as they stand...
        assert!(rotated.pdq.hash.distance(&original.pdq.hash) > 31, "{file}");
        let matches = banks.match_signals(
            Signals {
                exact: Some(&rotated.exact),
                pdq: Some(&rotated.pdq),
            },
            params,
        );
        assert_eq!(matches.len(), 1, "{file}: {matches:?}");
        // ...but one transform of theirs brings them back.
        assert!(matches[0].distance <= 10, "{file}: {:?}", matches[0]);
        assert_eq!(matches[0].transform.as_deref(), Some(transform), "{file}");
    }
}
