//! Per-image decode and PDQ times of coverguard on a folder of images, as JSON, for the
//! side-by-side comparison script (`scripts/compare/compare.py`), which times Meta's PDQ
//! binding on the same files.
//!
//! ```sh
//! cargo run --release --example stage_times -- DIR [ROUNDS]
//! ```
//!
//! Prints `{"files": n, "decode_ms": median, "pdq_ms": median, "robust_ms": median}`: the
//! median over files of each file's fastest round. PDQ includes the seven dihedral hashes,
//! as `pdqhash.compute_dihedral` does; `robust_ms` is PDQ with the robust signals (turned,
//! trimmed and region hashes), the hashing `scan` and `serve` do.

use std::time::Instant;

use anyhow::Context;
use coverguard::decode::{self, DecodeLimits};
use coverguard::hash::{pdq, robust};

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().context("usage: stage_times DIR [ROUNDS]")?;
    let rounds: usize = args.next().map_or(Ok(3), |r| r.parse())?;
    let mut paths: Vec<_> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.sort();
    anyhow::ensure!(!paths.is_empty(), "{dir} holds no files");
    let limits = DecodeLimits::default();
    let (mut decode_ms, mut pdq_ms, mut robust_ms) = (Vec::new(), Vec::new(), Vec::new());
    for path in &paths {
        let bytes = std::fs::read(path)?;
        let decode = || {
            decode::decode(&bytes, &limits).with_context(|| format!("decoding {}", path.display()))
        };
        let (mut best_decode, mut best_pdq, mut best_robust) = (f64::MAX, f64::MAX, f64::MAX);
        for _ in 0..rounds {
            let start = Instant::now();
            let image = decode()?;
            best_decode = best_decode.min(start.elapsed().as_secs_f64() * 1e3);
            let start = Instant::now();
            pdq::pdq_from_rgb8(image.width, image.height, &image.rgb)?;
            best_pdq = best_pdq.min(start.elapsed().as_secs_f64() * 1e3);
        }
        // Rounds of their own, each after a decode as PDQ's are and as in a screening: run
        // right after PDQ, the robust hashing found the pages it needs already mapped.
        for _ in 0..rounds {
            let image = decode()?;
            let start = Instant::now();
            robust::pdq_robust_from_rgb8(image.width, image.height, &image.rgb)?;
            best_robust = best_robust.min(start.elapsed().as_secs_f64() * 1e3);
        }
        decode_ms.push(best_decode);
        pdq_ms.push(best_pdq);
        robust_ms.push(best_robust);
    }
    println!(
        "{}",
        serde_json::json!({
            "files": paths.len(),
            "decode_ms": median(decode_ms),
            "pdq_ms": median(pdq_ms),
            "robust_ms": median(robust_ms),
        })
    );
    Ok(())
}
