//! What reading the words costs per image, beside screening without it, on one worker
//! thread: the scikit-image photos without words (JPEG q90, longest side 640 and 3000
//! px) and the OCR fixture's covers with text. Per image set:
//!
//! - `screen`: decode, hash, match against an empty bank set, classify, decide (`scan`
//!   without OCR);
//! - `gate`: the text gate, the detector over its windows, and the full reading where
//!   it finds text (what `[ocr] gate = true` adds to a screening);
//! - `every_image`: the full reading of every image (`gate = false`).
//!
//! `COVERGUARD_BENCH_GATE_PHOTOS=DIR` adds the photos in DIR (640 px) as a further set
//! without words (`scripts/gate-photos/collect.sh DIR` gathers one).
//!
//! `gate / screen` is the gated OCR's share of a screening's CPU. Needs the provisioned
//! models and photos (`cargo run -- models fetch --test-data`).

#[path = "support/corpus.rs"]
mod corpus;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use corpus::{corpus, photos_in};
use coverguard::classify::{Detector, DetectorOptions};
use coverguard::decode::{self, DecodeLimits, DecodedImage, Resolution};
use coverguard::matching::bank::BankSet;
use coverguard::provision::{self, Cache};
use coverguard::screening::analyse::Screener;
use coverguard::screening::policy::Policy;
use coverguard::text::ocr::{GateParams, OcrEngine, Reading};

/// The scikit-image photos with words in them (badges, legends, numbers, squares).
const PHOTOS_WITH_TEXT: [&str; 9] = [
    "text.png",
    "page.png",
    "logo.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "clock_motion.png",
    "coins.png",
    "chessboard_GRAY.png",
    "chessboard_RGB.png",
];

/// Named files: (name, bytes).
type Files = Vec<(String, Vec<u8>)>;

fn image_sets() -> Vec<(String, Files)> {
    let mut sets: Vec<(String, Files)> = [640u32, 3000]
        .into_iter()
        .map(|side| {
            let photos = corpus(side)
                .into_iter()
                .filter(|(name, _)| !PHOTOS_WITH_TEXT.contains(&name.as_str()))
                .collect();
            (format!("no_text_{side}px"), photos)
        })
        .collect();
    // A second set without words, apart from the one the gate's thresholds were chosen
    // against: `scripts/gate-photos/collect.sh DIR`.
    if let Some(dir) = std::env::var_os("COVERGUARD_BENCH_GATE_PHOTOS") {
        let photos = photos_in(std::path::Path::new(&dir), 640);
        assert!(
            !photos.is_empty(),
            "no photos in COVERGUARD_BENCH_GATE_PHOTOS"
        );
        sets.push(("other_no_text_640px".to_string(), photos));
    }
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ocr");
    let mut covers: Files = std::fs::read_dir(&fixtures)
        .expect("OCR fixtures")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("text-") && n.ends_with(".png"))
        .map(|n| {
            let bytes = std::fs::read(fixtures.join(&n)).expect("fixture");
            (n, bytes)
        })
        .collect();
    covers.sort();
    sets.push(("text_covers".to_string(), covers));
    sets
}

fn ocr(c: &mut Criterion) {
    let cache = Cache::from_env().expect("cache");
    let provisioned = provision::provision(&cache, None).expect("model and runtime");
    let models = provision::provision_ocr(&cache).expect("OCR models");
    let manifest = provision::manifest().expect("manifest");
    let mut screener = Screener {
        detector: Detector::load(&provisioned, &DetectorOptions::default()).expect("detector"),
        banks: BankSet::default(),
        policy: Policy::builtin(&manifest.model.explicit_labels),
    };
    let gate = GateParams::default();
    let mut engine = OcrEngine::load(
        &models,
        &provisioned.runtime_library,
        1,
        Reading::Gated(gate.clone()),
    )
    .expect("OCR");
    let limits = DecodeLimits::default();
    for (label, files) in image_sets() {
        let decoded: Vec<DecodedImage> = files
            .iter()
            .map(|(_, bytes)| decode::decode(bytes, &limits).expect("decode"))
            .collect();
        let mut group = c.benchmark_group(format!("ocr_{label}"));
        group.sample_size(10);
        group.throughput(Throughput::Elements(files.len() as u64));
        group.bench_function(BenchmarkId::new("screen", &label), |b| {
            b.iter(|| {
                for (name, bytes) in &files {
                    screener
                        .screen_bytes(name, bytes, &limits, Resolution::Full)
                        .expect("screen");
                }
            })
        });
        group.bench_function(BenchmarkId::new("gate", &label), |b| {
            b.iter(|| {
                for d in &decoded {
                    let (w, h) = (d.width as usize, d.height as usize);
                    engine.read_gated(&d.rgb, w, h, &gate).expect("gated read");
                }
            })
        });
        group.bench_function(BenchmarkId::new("gate_windows", &label), |b| {
            b.iter(|| {
                for d in &decoded {
                    let (w, h) = (d.width as usize, d.height as usize);
                    engine.gate_windows(&d.rgb, w, h, &gate).expect("windows");
                }
            })
        });
        group.bench_function(BenchmarkId::new("every_image", &label), |b| {
            b.iter(|| {
                for d in &decoded {
                    let (w, h) = (d.width as usize, d.height as usize);
                    engine.read(&d.rgb, w, h).expect("read");
                }
            })
        });
        group.finish();
    }
}

criterion_group!(benches, ocr);
criterion_main!(benches);
