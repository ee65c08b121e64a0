//! PDQ range search in a large bank: the multi-index (`PdqIndex::within`) against a linear
//! scan, at threshold 31 (the industry default), on random hashes with a few planted
//! near-duplicates so every query has answers.
//!
//! `COVERGUARD_BENCH_BANK_SIZES` lists the bank sizes (default `1000000,10000000`). The index's
//! memory per hash is printed before each size's run.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

use coverguard::hash::pdq_index::PdqIndex;
use coverguard::hash::PdqHash;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn hash(&mut self) -> PdqHash {
        let mut bytes = [0u8; 32];
        for chunk in bytes.chunks_exact_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes());
        }
        PdqHash(bytes)
    }

    fn near(&mut self, hash: &PdqHash, bits: usize) -> PdqHash {
        let mut out = *hash;
        for _ in 0..bits {
            let bit = (self.next() % 256) as usize;
            out.0[bit / 8] ^= 1 << (bit % 8);
        }
        out
    }
}

fn sizes() -> Vec<usize> {
    std::env::var("COVERGUARD_BENCH_BANK_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000_000, 10_000_000])
}

fn bank_match(c: &mut Criterion) {
    const THRESHOLD: u32 = 31;
    let mut group = c.benchmark_group("pdq_range_31");
    group.sample_size(20);
    for size in sizes() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ size as u64);
        let hashes: Vec<PdqHash> = (0..size).map(|_| rng.hash()).collect();
        // Queries: near copies (distance <= 24) of bank entries, so each has a match.
        let queries: Vec<PdqHash> = (0..64)
            .map(|i| {
                let anchor = hashes[(i * 7919) % size];
                let bits = (rng.next() % 25) as usize;
                rng.near(&anchor, bits)
            })
            .collect();
        let started = std::time::Instant::now();
        let index = PdqIndex::new(&hashes).expect("index");
        eprintln!(
            "{size} hashes: index built in {:.2?}, {:.1} bytes per hash ({:.2}x the raw 32)",
            started.elapsed(),
            index.memory_bytes() as f64 / size as f64,
            index.memory_bytes() as f64 / size as f64 / 32.0
        );
        let mut out = Vec::new();
        let mut next = 0;
        group.bench_function(BenchmarkId::new("multi_index", size), |b| {
            b.iter(|| {
                index.within(&queries[next % queries.len()], THRESHOLD, &mut out);
                next += 1;
                assert!(!out.is_empty());
            })
        });
        group.bench_function(BenchmarkId::new("linear_scan", size), |b| {
            b.iter(|| {
                let query = &queries[next % queries.len()];
                next += 1;
                let found = hashes
                    .iter()
                    .filter(|h| h.distance(query) <= THRESHOLD)
                    .count();
                assert!(found > 0);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bank_match);
criterion_main!(benches);
