//! Each stage of the hot path on its own, on the benchmark corpus: the scikit-image
//! sample photos re-encoded as JPEG q90 at 640 px and at 3000 px (longest side).
//!
//! Stages: JPEG decode, PDQ (with its dihedral hashes), pHash, the model's pre-processing,
//! inference per batch size (1, 2, 4, 8), and one image end to end (decode, hash, match
//! against an empty bank set, classify, decide). Needs the provisioned model and photos
//! (`cargo run -- models fetch --test-data`).

#[path = "support/corpus.rs"]
mod corpus;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use corpus::corpus;
use coverguard::classify::{preprocess, Detector, DetectorOptions, RgbView};
use coverguard::decode::{self, DecodeLimits, Resolution};
use coverguard::hash;
use coverguard::matching::bank::BankSet;
use coverguard::provision::{self, Cache};
use coverguard::screening::analyse::Screener;
use coverguard::screening::policy::Policy;

fn detector() -> Detector {
    let cache = Cache::from_env().expect("cache");
    let provisioned = provision::provision(&cache, None).expect("model and runtime");
    Detector::load(&provisioned, &DetectorOptions::default()).expect("detector")
}

fn stages(c: &mut Criterion) {
    let limits = DecodeLimits::default();
    let mut detector = detector();
    let spec = detector.spec();
    let side = spec.input_size as usize;
    for size in [640u32, 3000] {
        let files = corpus(size);
        let decoded: Vec<_> = files
            .iter()
            .map(|(_, bytes)| decode::decode(bytes, &limits).expect("decode"))
            .collect();
        let mut group = c.benchmark_group(format!("stage_{size}px"));
        group.sample_size(10);
        group.throughput(Throughput::Elements(files.len() as u64));
        group.bench_function("decode", |b| {
            b.iter(|| {
                for (_, bytes) in &files {
                    decode::decode(bytes, &limits).expect("decode");
                }
            })
        });
        group.bench_function("pdq", |b| {
            b.iter(|| {
                for image in &decoded {
                    hash::pdq::pdq_from_rgb8(image.width, image.height, &image.rgb).expect("pdq");
                }
            })
        });
        group.bench_function("phash", |b| {
            b.iter(|| {
                for image in &decoded {
                    hash::phash(image.width, image.height, &image.rgb);
                }
            })
        });
        group.bench_function("preprocess", |b| {
            let mut input = vec![0f32; 3 * side * side];
            let order = preprocess::ChannelOrder::parse(&spec.preprocess.channel_order)
                .expect("channel order");
            b.iter(|| {
                for image in &decoded {
                    let resized = preprocess::resize_padded_square(
                        &image.rgb,
                        image.width as usize,
                        image.height as usize,
                        side,
                    );
                    preprocess::to_nchw(&resized, side, order, spec.preprocess.scale, &mut input);
                }
            })
        });
        group.finish();
    }

    // Inference alone, per batch size, on 640 px images (the input is 320x320 either way).
    let files = corpus(640);
    let decoded: Vec<_> = files
        .iter()
        .map(|(_, bytes)| decode::decode(bytes, &limits).expect("decode"))
        .collect();
    let mut group = c.benchmark_group("inference");
    group.sample_size(10);
    for batch in [1usize, 2, 4, 8] {
        let views: Vec<RgbView<'_>> = decoded
            .iter()
            .take(batch)
            .map(|d| RgbView::full(d.width, d.height, &d.rgb))
            .collect();
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::new("batch", batch), &views, |b, views| {
            b.iter(|| detector.classify_batch(views).expect("classify"))
        });
    }
    group.finish();

    // One image end to end, as `scan` does it (no store, no service).
    let manifest = provision::manifest().expect("manifest");
    let mut screener = Screener {
        detector,
        banks: BankSet::default(),
        policy: Policy::builtin(&manifest.model.explicit_labels),
    };
    let mut group = c.benchmark_group("end_to_end");
    group.sample_size(10);
    for size in [640u32, 3000] {
        let files = corpus(size);
        group.throughput(Throughput::Elements(files.len() as u64));
        group.bench_function(BenchmarkId::new("screen", size), |b| {
            b.iter(|| {
                for (name, bytes) in &files {
                    screener
                        .screen_bytes(name, bytes, &limits, Resolution::Full)
                        .expect("screen");
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
