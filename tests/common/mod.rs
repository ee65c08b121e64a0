//! Shared test helpers: fixtures, the provisioned model, reference data.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use coverguard::classify::{Detector, DetectorOptions};
use coverguard::matching::bank::BankSet;
use coverguard::provision::{self, Cache};
use coverguard::screening::analyse::Screener;
use coverguard::screening::policy::Policy;
use serde::Deserialize;

pub mod attack;
pub mod console;
pub mod process;
pub mod raw_http;
pub mod server;
pub mod webhook;

/// An HTTP client for a coverguard service whose `header_read_timeout_secs` is `idle_close`.
/// The service closes a kept-alive connection once it has idled that long, and a request
/// sent down it as it closes is cut off unanswered; this client lets idle connections go
/// at half of it.
pub fn client_for(idle_close: std::time::Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(idle_close / 2)
        .build()
        .unwrap()
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The scikit-image 0.26.0 sample photos, provisioned from the pinned wheel.
pub fn skimage_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let cache = Cache::from_env().expect("cache dir");
        provision::ensure_asset(&cache, "skimage-data")
            .expect("scikit-image test photos (run `cargo run -- models fetch --test-data`)")
            .join("skimage/data")
    })
    .clone()
}

#[derive(Debug, Deserialize)]
pub struct ReferenceImage {
    pub file: String,
    pub sha256: String,
    pub nudenet_3_4_2: Vec<ReferenceDetection>,
    pub pdq: ReferencePdq,
}

#[derive(Debug, Deserialize)]
pub struct ReferenceDetection {
    pub class: String,
    pub score: f32,
    #[serde(rename = "box")]
    pub bbox: [f64; 4],
}

#[derive(Debug, Deserialize)]
pub struct ReferencePdq {
    pub hash: String,
    pub quality: u32,
}

/// `tests/fixtures/skimage-0.26.0.json`: NudeNet 3.4.2 and Meta PDQ outputs.
pub fn skimage_reference() -> Vec<ReferenceImage> {
    let text = std::fs::read_to_string(fixtures().join("skimage-0.26.0.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[derive(Debug, Deserialize)]
pub struct ConformanceImage {
    pub file: String,
    pub sha256: String,
    pub pdq: String,
    pub quality: u32,
    pub dihedral: Vec<String>,
}

/// `tests/fixtures/pdq-conformance/expected.json`: Meta's PDQ on its test images.
pub fn pdq_conformance() -> Vec<ConformanceImage> {
    let text = std::fs::read_to_string(fixtures().join("pdq-conformance/expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// One detector per test binary; tests take turns (`Session::run` needs `&mut`).
pub fn screener() -> MutexGuard<'static, Screener> {
    static SCREENER: OnceLock<Mutex<Screener>> = OnceLock::new();
    SCREENER
        .get_or_init(|| {
            let cache = Cache::from_env().unwrap();
            let provisioned = provision::provision(&cache, None).expect("model and runtime");
            let detector =
                Detector::load(&provisioned, &DetectorOptions::default()).expect("detector");
            let manifest = provision::manifest().unwrap();
            Mutex::new(Screener {
                detector,
                banks: BankSet::default(),
                policy: Policy::builtin(&manifest.model.explicit_labels),
            })
        })
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

pub fn iou(a: [f64; 4], b: [f64; 4]) -> f64 {
    let x1 = a[0].max(b[0]);
    let y1 = a[1].max(b[1]);
    let x2 = (a[0] + a[2]).min(b[0] + b[2]);
    let y2 = (a[1] + a[3]).min(b[1] + b[3]);
    let inter = (x2 - x1).max(0.0) * (y2 - y1).max(0.0);
    let union = a[2] * a[3] + b[2] * b[3] - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// Hamming distance of two 64-hex-digit hashes.
pub fn hex_distance(a: &str, b: &str) -> u32 {
    let a = hex::decode(a).unwrap();
    let b = hex::decode(b).unwrap();
    a.iter().zip(&b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

pub use coverguard::testing::POSTGRES_URL_VAR;

/// A fresh schema on the test Postgres, so parallel tests and reruns never collide.
pub struct PgSchema {
    /// The database URL with the schema as its search path.
    pub url: String,
    pub name: String,
}

impl PgSchema {
    /// `None` (with a skip line) when `COVERGUARD_TEST_POSTGRES_URL` is unset.
    pub async fn create(prefix: &str) -> Option<PgSchema> {
        let [base] = coverguard::testing::service_urls([POSTGRES_URL_VAR])?;
        let name = format!("{prefix}_{}", uuid::Uuid::now_v7().simple());
        let admin = sqlx::PgPool::connect(&base)
            .await
            .expect("connect postgres");
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&admin)
            .await
            .expect("create schema");
        admin.close().await;
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{name}");
        Some(PgSchema { url, name })
    }

    pub async fn drop(self) {
        let base = std::env::var(POSTGRES_URL_VAR).expect("set when the schema was made");
        let admin = sqlx::PgPool::connect(&base)
            .await
            .expect("connect postgres");
        sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.name))
            .execute(&admin)
            .await
            .expect("drop schema");
        admin.close().await;
    }
}
