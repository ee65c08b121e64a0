//! How far reduced-scale JPEG decoding moves each signal, to choose the decode
//! resolution per signal.
//!
//! For the benchmark corpus at 640 and 3000 px, every DCT scale (1/2, 1/4, 1/8) is
//! compared with the full decode: PDQ Hamming distance (over the images whose full
//! PDQ passes the matching quality gate, 50), the largest change of any label's score
//! and of an explicit label's score, whether the verdict under the built-in policy is
//! the same, and the decode + hash time. Needs the provisioned model and photos
//! (`cargo run -- models fetch --test-data`).
//!
//! ```sh
//! cargo run --release --example scaled_decode [SIZE...]
//! ```

#[path = "../benches/support/corpus.rs"]
mod corpus;

use std::time::Instant;

use coverguard::classify::{label_scores, Detector, DetectorOptions};
use coverguard::decode::{DecodeLimits, Resolution};
use coverguard::provision::{self, Cache};
use coverguard::screening::analyse::{analyse_at, Analysed};
use coverguard::screening::policy::Policy;

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let cache = Cache::from_env()?;
    let provisioned = provision::provision(&cache, None)?;
    let mut detector = Detector::load(&provisioned, &DetectorOptions::default())?;
    let manifest = provision::manifest()?;
    let policy = Policy::builtin(&manifest.model.explicit_labels);
    let limits = DecodeLimits::default();

    const QUALITY_GATE: u32 = 50;
    println!("size  scale  long side  PDQ distance (median / max)  max score change (explicit)  verdicts same  decode+hash ms (median)");
    // Sizes from the command line, else the benchmark's two.
    let sizes: Vec<u32> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let sizes = if sizes.is_empty() {
        vec![640, 3000]
    } else {
        sizes
    };
    for size in sizes {
        let files = corpus::corpus(size);
        let timed = |bytes: &[u8], resolution| -> anyhow::Result<(Analysed, f64)> {
            let start = Instant::now();
            let analysed = analyse_at(bytes, &limits, resolution)?;
            Ok((analysed, start.elapsed().as_secs_f64() * 1e3))
        };
        let mut full = Vec::new();
        // For scale: how far PDQ moves when the same image is merely re-encoded (q75).
        let mut reencoded = Vec::new();
        for (name, bytes) in &files {
            let (analysed, ms) = timed(bytes, Resolution::Full)?;
            let scores = label_scores(&detector.classify(analysed.view())?.detections);
            let mut jpeg = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 75).encode(
                &analysed.image.rgb,
                analysed.image.width,
                analysed.image.height,
                image::ExtendedColorType::Rgb8,
            )?;
            let again = analyse_at(&jpeg, &limits, Resolution::Full)?;
            if analysed.pdq.quality >= QUALITY_GATE {
                let d = again.pdq.hash.distance(&analysed.pdq.hash);
                reencoded.push(f64::from(d));
                if std::env::var_os("SCALED_DECODE_VERBOSE").is_some() {
                    println!(
                        "  {name}: quality {}, re-encode moves PDQ {d}",
                        analysed.pdq.quality
                    );
                }
            }
            full.push((analysed, scores, ms));
        }
        let reencoded_max = reencoded.iter().copied().fold(0.0, f64::max);
        println!(
            "{size:>4}  re-encoded at q75, full decode: PDQ distance {} / {}",
            median(&mut reencoded),
            reencoded_max
        );
        let mut full_ms: Vec<f64> = full.iter().map(|f| f.2).collect();
        println!(
            "{size:>4}  1      {size:>9}  {:>27}  {:>27}  {:>13}  {:>.1}",
            "0 / 0",
            "0 (0)",
            format!("{0}/{0}", files.len()),
            median(&mut full_ms)
        );
        for numerator in [4u32, 2, 1] {
            let (mut distances, mut times) = (Vec::new(), Vec::new());
            let (mut worst_score, mut worst_explicit, mut same_verdicts) = (0f32, 0f32, 0usize);
            let mut long_side = 0;
            for ((name, bytes), (reference, reference_scores, _)) in files.iter().zip(&full) {
                let long = reference.image.width.max(reference.image.height);
                let target = (long * numerator).div_ceil(8);
                let (scaled, ms) = timed(bytes, Resolution::LongSideAtLeast(target))?;
                long_side = scaled.image.width.max(scaled.image.height);
                if reference.pdq.quality >= QUALITY_GATE {
                    let d = scaled.pdq.hash.distance(&reference.pdq.hash);
                    distances.push(f64::from(d));
                    if std::env::var_os("SCALED_DECODE_VERBOSE").is_some() {
                        println!("  {name} at 1/{}: PDQ moves {d}", 8 / numerator);
                    }
                }
                times.push(ms);
                let scores = label_scores(&detector.classify(scaled.view())?.detections);
                for label in reference_scores.keys().chain(scores.keys()) {
                    let a = reference_scores.get(label).copied().unwrap_or(0.0);
                    let b = scores.get(label).copied().unwrap_or(0.0);
                    worst_score = worst_score.max((a - b).abs());
                    if manifest.model.explicit_labels.contains(label) {
                        worst_explicit = worst_explicit.max((a - b).abs());
                    }
                }
                let verdict = |s| policy.decide(s, &[]).verdict;
                same_verdicts += usize::from(verdict(&scores) == verdict(reference_scores));
            }
            let max_distance = distances.iter().copied().fold(0.0, f64::max);
            println!(
                "{size:>4}  1/{:<4} {long_side:>9}  {:>27}  {:>27}  {:>13}  {:>.1}",
                8 / numerator,
                format!(
                    "{} / {} ({} images)",
                    median(&mut distances),
                    max_distance,
                    distances.len()
                ),
                format!("{worst_score:.3} ({worst_explicit:.3})"),
                format!("{same_verdicts}/{}", files.len()),
                median(&mut times)
            );
        }
    }
    Ok(())
}
