//! Replays every fuzz target over its committed corpus (`fuzz/seeds/<target>/`, the
//! minimised corpus of the fuzzing runs) and its crash reproducers
//! (`fuzz/regressions/<target>/`), on the stable toolchain: a fixed crash stays fixed,
//! and a change that breaks a target's checks on known inputs fails here, not weeks later
//! in a fuzzing run.

use std::path::{Path, PathBuf};

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 5] = [
    ("decode", coverguard::fuzz_targets::decode),
    ("pdq", coverguard::fuzz_targets::pdq),
    ("bank_file", coverguard::fuzz_targets::bank_file),
    ("manifest", coverguard::fuzz_targets::manifest),
    ("request_body", coverguard::fuzz_targets::request_body),
];

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_fuzz_target_passes_its_corpus_and_regressions() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut failures = Vec::new();
    for (name, target) in TARGETS {
        let seeds = files(&fuzz.join("seeds").join(name));
        let regressions = files(&fuzz.join("regressions").join(name));
        assert!(
            seeds.len() >= 3,
            "fuzz/seeds/{name} holds {} inputs: the corpus is missing",
            seeds.len()
        );
        for path in seeds.iter().chain(&regressions) {
            let data = std::fs::read(path).unwrap();
            if std::panic::catch_unwind(|| target(&data)).is_err() {
                failures.push(path.display().to_string());
            }
        }
        eprintln!(
            "{name}: {} corpus inputs, {} regressions",
            seeds.len(),
            regressions.len()
        );
    }
    assert!(failures.is_empty(), "fuzz inputs that fail: {failures:#?}");
}
