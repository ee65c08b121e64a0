//! Each stage of the hot path on its own, on the corpus issue 6 measures: the scikit-image
//! sample photos re-encoded as JPEG q90 at 640 px and at 3000 px (longest side).
//!
//! Stages: JPEG decode, PDQ (with its dihedral hashes), pHash, the model's pre-processing,
//! inference per batch size (1, 2, 4, 8), and one image end to end (decode, hash, match
//! against an empty bank set, classify, decide). Needs the provisioned model and photos
//! (`cargo run -- models fetch --test-data`).

use std::io::Cursor;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use coverguard::bank::BankSet;
use coverguard::classify::{preprocess, Detector, DetectorOptions, RgbView};
use coverguard::decide::Policy;
use coverguard::decode::{self, DecodeLimits};
use coverguard::hash;
use coverguard::provision::{self, Cache};
use coverguard::screen::Screener;

/// The photos re-encoded with their longest side at `side` px, JPEG quality 90.
fn corpus(side: u32) -> Vec<(String, Vec<u8>)> {
    let cache = Cache::from_env().expect("cache");
    let dir = provision::ensure_asset(&cache, "skimage-data")
        .expect("scikit-image photos: run `cargo run -- models fetch --test-data`")
        .join("skimage/data");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("photo dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".png") || n.ends_with(".jpg"))
        .collect();
    names.sort();
    names
        .into_iter()
        .filter_map(|name| {
            let image = image::open(dir.join(&name)).ok()?.to_rgb8();
            // Photos only: the tiny test patterns are not cover art.
            if image.width().min(image.height()) < 128 {
                return None;
            }
            let scale = side as f64 / image.width().max(image.height()) as f64;
            let (w, h) = (
                ((image.width() as f64 * scale).round() as u32).max(1),
                ((image.height() as f64 * scale).round() as u32).max(1),
            );
            let resized =
                image::imageops::resize(&image, w, h, image::imageops::FilterType::Triangle);
            let mut jpeg = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(Cursor::new(&mut jpeg), 90)
                .encode_image(&resized)
                .ok()?;
            Some((name, jpeg))
        })
        .collect()
}

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
            .map(|d| RgbView {
                width: d.width,
                height: d.height,
                rgb: &d.rgb,
            })
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
                    screener.screen_bytes(name, bytes, &limits).expect("screen");
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
