//! Retroactive matching over many stored artworks (it should take seconds at a
//! million): new bank entries against every artwork's stored MD5, SHA-256 and PDQ,
//! no fetch, no inference.
//!
//! `COVERGUARD_BENCH_ARTWORKS` sets the number of stored artworks (default 1,000,000).
//! Seeding writes rows directly into a fresh SQLite store, since a million screenings
//! through the pipeline would take hours of inference to set up.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};

use coverguard::config::ServiceConfig;
use coverguard::store::{self, BankAction, BankSpec, EntryWrite};

/// Deterministic pseudo-random hex (xorshift64*), so every run seeds the same rows.
struct Hex(u64);

impl Hex {
    fn next(&mut self, digits: usize) -> String {
        let mut out = String::with_capacity(digits);
        while out.len() < digits {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            out.push_str(&format!(
                "{:016x}",
                self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
            ));
        }
        out.truncate(digits);
        out
    }
}

async fn seed(url: &str, artworks: usize) {
    let pool = sqlx::SqlitePool::connect(url).await.unwrap();
    let mut hex = Hex(0x9e37_79b9_7f4a_7c15);
    let now = "2026-01-01T00:00:00.000000Z";
    for chunk in (0..artworks).collect::<Vec<_>>().chunks(50_000) {
        let mut tx = pool.begin().await.unwrap();
        for &i in chunk {
            let id = format!("s{i:08}");
            sqlx::query(
                "INSERT INTO screenings (id, artwork_id, owner_id, sha256, md5, pdq, pdq_quality, \
                 verdict, model, policy_version, banks_version, record, context, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 100, 'allow', 'bench', 'bench', 1, '{}', '{}', $7)",
            )
            .bind(&id)
            .bind(format!("a{i:08}"))
            .bind(format!("o{}", i % 10_000))
            .bind(hex.next(64))
            .bind(hex.next(32))
            .bind(hex.next(64))
            .bind(now)
            .execute(&mut *tx)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO artworks (artwork_id, owner_id, latest_screening_id, status, updated_at) \
                 VALUES ($1, $2, $3, 'published', $4)",
            )
            .bind(format!("a{i:08}"))
            .bind(format!("o{}", i % 10_000))
            .bind(&id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }
    pool.close().await;
}

fn retro_match(c: &mut Criterion) {
    let artworks: usize = std::env::var("COVERGUARD_BENCH_ARTWORKS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = ServiceConfig {
        data_dir: dir.path().to_path_buf(),
        quarantine_key: Some("33".repeat(32)),
        ..ServiceConfig::default()
    };
    let pipeline = runtime.block_on(async {
        let store = store::open(&config.database_url()).await.unwrap();
        seed(&config.database_url(), artworks).await;
        // New entries that match nothing stored: the cost measured is the scan itself.
        store
            .create_bank(&BankSpec {
                name: "new-entries".into(),
                signal_types: vec!["md5".into(), "sha256".into(), "pdq".into()],
                pdq_threshold: 31,
                action: BankAction::Block,
                allow_list: false,
                severity: 1,
                category: None,
            })
            .await
            .unwrap();
        let mut hex = Hex(42);
        let entries: Vec<EntryWrite> = (0..100)
            .flat_map(|_| {
                [("md5", 32), ("sha256", 64), ("pdq", 64)].map(|(signal, digits)| EntryWrite {
                    signal: signal.into(),
                    hash: hex.next(digits),
                    external_id: None,
                })
            })
            .collect();
        store.add_entries("new-entries", &entries).await.unwrap();
        coverguard::app::load(&config, store, Arc::new(|_, _| {}))
            .await
            .unwrap()
            .pipeline
    });
    let mut group = c.benchmark_group("retro_match");
    group.sample_size(10);
    group.bench_function(format!("{artworks}_artworks_300_entries"), |b| {
        b.iter(|| {
            let summary = runtime.block_on(pipeline.retro_match(None, None)).unwrap();
            assert_eq!(summary.scanned as usize, artworks);
            summary
        })
    });
    group.finish();
}

criterion_group!(benches, retro_match);
criterion_main!(benches);
