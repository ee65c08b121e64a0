//! The cost of the robust signals: PDQ with its dihedral hashes alone, against PDQ with the
//! turned, trimmed and region hashes read off the same filter pass, on the stages corpus
//! (scikit-image photos as JPEG q90 at 640 px and 3000 px) and on the same photos inside a
//! 10% black frame (so the trimmed hashes are computed too). Needs the photos
//! (`cargo run -- models fetch --test-data`).

#[path = "support/corpus.rs"]
mod corpus;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use corpus::corpus;
use coverguard::decode::{self, DecodeLimits, DecodedImage};
use coverguard::hash;

/// `image` inside a black frame a tenth of its size on every side.
fn framed(image: &DecodedImage) -> (u32, u32, Vec<u8>) {
    let (bx, by) = (image.width / 10, image.height / 10);
    let (w, h) = (image.width + 2 * bx, image.height + 2 * by);
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    let row = (image.width * 3) as usize;
    for y in 0..image.height {
        let at = (((y + by) * w + bx) * 3) as usize;
        let from = y as usize * row;
        rgb[at..at + row].copy_from_slice(&image.rgb[from..from + row]);
    }
    (w, h, rgb)
}

fn robust_hash(c: &mut Criterion) {
    let limits = DecodeLimits::default();
    for size in [640u32, 3000] {
        let files = corpus(size);
        let decoded: Vec<(u32, u32, Vec<u8>)> = files
            .iter()
            .map(|(_, bytes)| {
                let image = decode::decode(bytes, &limits).expect("decode");
                (image.width, image.height, image.rgb)
            })
            .collect();
        let framed: Vec<(u32, u32, Vec<u8>)> = files
            .iter()
            .map(|(_, bytes)| framed(&decode::decode(bytes, &limits).expect("decode")))
            .collect();
        let mut group = c.benchmark_group(format!("robust_{size}px"));
        group.sample_size(10);
        group.throughput(Throughput::Elements(files.len() as u64));
        for (name, images) in [("photos", &decoded), ("framed", &framed)] {
            group.bench_function(format!("pdq/{name}"), |b| {
                b.iter(|| {
                    for (w, h, rgb) in images {
                        hash::pdq::pdq_from_rgb8(*w, *h, rgb).expect("pdq");
                    }
                })
            });
            group.bench_function(format!("pdq_robust/{name}"), |b| {
                b.iter(|| {
                    for (w, h, rgb) in images {
                        hash::robust::pdq_robust_from_rgb8(*w, *h, rgb).expect("pdq");
                    }
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, robust_hash);
criterion_main!(benches);
