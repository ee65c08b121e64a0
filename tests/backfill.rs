//! Backfill: a local run over a generated corpus, a run killed with SIGKILL and
//! resumed, two JetStream workers with one killed, and retroactive matching.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use coverguard::backfill::job::{self, ManifestArg};
use coverguard::backfill::run::BackfillOptions;
use coverguard::config::ServiceConfig;
use coverguard::fetch::DestinationPolicy;
use coverguard::screening::policy::Verdict;
use coverguard::store::{self, BankAction, BankSpec, EntryWrite, Store};
use coverguard::testing::NATS_URL_VAR;

const PHOTOS: [&str; 16] = [
    "astronaut.png",
    "brick.png",
    "camera.png",
    "cell.png",
    "chelsea.png",
    "clock_motion.png",
    "coffee.png",
    "coins.png",
    "color.png",
    "grass.png",
    "gravel.png",
    "horse.png",
    "moon.png",
    "page.png",
    "phantom.png",
    "rocket.jpg",
];

/// A generated manifest and what a correct run of it must end with.
struct Corpus {
    dir: tempfile::TempDir,
    manifest: PathBuf,
    /// Every artwork id with the sha256 of its bytes (None: cannot be screened).
    items: BTreeMap<String, Option<String>>,
    /// The original photos' bytes by name.
    originals: BTreeMap<String, Vec<u8>>,
    /// The loopback server the manifest's URLs point at.
    image_server: SocketAddr,
}

impl Corpus {
    /// A config file for the binary: URL fetching allow-lists the corpus's image server.
    fn config_file(&self) -> PathBuf {
        let path = self.dir.path().join("coverguard.toml");
        let server = self.image_server;
        std::fs::write(
            &path,
            format!(
                "[url_fetch]\nallow_networks = [\"{}/32\"]\nallow_ports = [80, 443, {}]\n",
                server.ip(),
                server.port()
            ),
        )
        .unwrap();
        path
    }

    fn total(&self) -> usize {
        self.items.len()
    }
    fn failing(&self) -> usize {
        self.items.values().filter(|s| s.is_none()).count()
    }
    fn distinct_images(&self) -> usize {
        self.items.values().flatten().collect::<BTreeSet<_>>().len()
    }
    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

fn sha256(bytes: &[u8]) -> String {
    coverguard::hash::exact_hashes(bytes).sha256
}

/// Serves `/art/<file>` from `dir`, 404 for anything missing, and `/flaky/<file>`
/// that fails once with a 503 before it serves the file.
async fn image_server(dir: PathBuf) -> SocketAddr {
    use axum::extract::Path as UrlPath;
    use axum::http::StatusCode;
    use axum::routing::get;
    let flaky_calls = Arc::new(std::sync::Mutex::new(BTreeMap::<String, usize>::new()));
    let art_dir = dir.clone();
    let app = axum::Router::new()
        .route(
            "/art/{file}",
            get(move |UrlPath(file): UrlPath<String>| {
                let path = art_dir.join(file);
                async move { std::fs::read(path).map_err(|_| StatusCode::NOT_FOUND) }
            }),
        )
        .route(
            "/flaky/{file}",
            get(move |UrlPath(file): UrlPath<String>| {
                let calls = flaky_calls.clone();
                let path = dir.join(&file);
                async move {
                    let n = {
                        let mut calls = calls.lock().unwrap();
                        let n = calls.entry(file).or_default();
                        *n += 1;
                        *n
                    };
                    if n == 1 {
                        return Err(StatusCode::SERVICE_UNAVAILABLE);
                    }
                    std::fs::read(path).map_err(|_| StatusCode::NOT_FOUND)
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Variants of the photos (re-encodes, resizes), repeats of identical bytes under
/// other artwork ids, broken files, and URLs on a local server (some missing, some
/// failing once).
async fn corpus() -> Corpus {
    let dir = tempfile::tempdir().unwrap();
    let art = dir.path().join("art");
    std::fs::create_dir_all(&art).unwrap();
    let mut rows = vec!["artwork_id,url,path,owner_id,surface".to_string()];
    let mut items = BTreeMap::new();
    let mut originals = BTreeMap::new();
    let mut add = |rows: &mut Vec<String>,
                   id: String,
                   url: &str,
                   path: &str,
                   owner: &str,
                   sha: Option<String>| {
        rows.push(format!("{id},{url},{path},{owner},playlist_cover"));
        items.insert(id, sha);
    };
    let image_server = image_server(art.clone()).await;
    let base = format!("http://{image_server}");
    for (i, name) in PHOTOS.iter().enumerate() {
        let bytes = std::fs::read(skimage_dir().join(name)).unwrap();
        originals.insert(name.to_string(), bytes.clone());
        let image = image::load_from_memory(&bytes).unwrap();
        let stem = name.split('.').next().unwrap();
        let mut variants: Vec<(String, Vec<u8>)> = vec![(name.to_string(), bytes.clone())];
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85)
            .encode_image(&image.to_rgb8())
            .unwrap();
        variants.push((format!("{stem}-q85.jpg"), jpeg));
        for (suffix, div) in [("half", 2), ("quarter", 4)] {
            let small = image.resize_exact(
                (image.width() / div).max(8),
                (image.height() / div).max(8),
                image::imageops::FilterType::Triangle,
            );
            let mut png = std::io::Cursor::new(Vec::new());
            small
                .to_rgb8()
                .write_to(&mut png, image::ImageFormat::Png)
                .unwrap();
            variants.push((format!("{stem}-{suffix}.png"), png.into_inner()));
        }
        let owner = format!("owner-{}", i % 5);
        for (file, data) in &variants {
            std::fs::write(art.join(file), data).unwrap();
            let path = art.join(file);
            add(
                &mut rows,
                format!("p-{file}"),
                "",
                path.to_str().unwrap(),
                &owner,
                Some(sha256(data)),
            );
        }
        // Identical bytes under other artwork ids: inferred once.
        for copy in 0..7 {
            let (file, data) = &variants[copy % variants.len()];
            let path = art.join(file);
            add(
                &mut rows,
                format!("d{copy}-{file}"),
                "",
                path.to_str().unwrap(),
                &owner,
                Some(sha256(data)),
            );
        }
        // The re-encode again by URL.
        let (file, data) = &variants[1];
        add(
            &mut rows,
            format!("u-{file}"),
            &format!("{base}/art/{file}"),
            "",
            &owner,
            Some(sha256(data)),
        );
        // A broken file: the JPEG cut in half.
        let broken = format!("{stem}-broken.jpg");
        std::fs::write(art.join(&broken), &data[..data.len() / 2]).unwrap();
        add(
            &mut rows,
            format!("b-{broken}"),
            "",
            art.join(&broken).to_str().unwrap(),
            &owner,
            None,
        );
    }
    for n in 0..4 {
        add(
            &mut rows,
            format!("missing-{n}"),
            &format!("{base}/art/none-{n}.png"),
            "",
            "owner-x",
            None,
        );
    }
    add(
        &mut rows,
        "text-file".into(),
        "",
        "/etc/hostname",
        "owner-x",
        None,
    );
    for name in ["camera-half.png", "coins-half.png"] {
        let data = std::fs::read(art.join(name)).unwrap();
        add(
            &mut rows,
            format!("f-{name}"),
            &format!("{base}/flaky/{name}"),
            "",
            "owner-y",
            Some(sha256(&data)),
        );
    }
    let manifest = dir.path().join("manifest.csv");
    std::fs::write(&manifest, rows.join("\n") + "\n").unwrap();
    Corpus {
        dir,
        manifest,
        items,
        originals,
        image_server,
    }
}

/// A config whose URL fetching allow-lists the corpus's loopback image server, and only it.
fn config_for(corpus: &Corpus, database_url: Option<String>) -> ServiceConfig {
    ServiceConfig {
        data_dir: corpus.data_dir(),
        database_url,
        quarantine_key: Some("22".repeat(32)),
        url_fetch: DestinationPolicy::allowing(corpus.image_server),
        ..ServiceConfig::default()
    }
}

/// A known-bad bank holding the MD5 of three originals.
async fn bank_three(store: &dyn Store, corpus: &Corpus) -> BTreeSet<String> {
    store
        .create_bank(&BankSpec {
            name: "known-bad".into(),
            signal_types: vec!["md5".into(), "pdq".into()],
            pdq_threshold: 31,
            action: BankAction::Block,
            allow_list: false,
            severity: 3,
            category: None,
        })
        .await
        .unwrap();
    let chosen = ["coffee.png", "horse.png", "moon.png"];
    let entries: Vec<EntryWrite> = chosen
        .iter()
        .map(|name| EntryWrite {
            signal: "md5".into(),
            hash: coverguard::hash::exact_hashes(&corpus.originals[*name]).md5,
            external_id: None,
        })
        .collect();
    store.add_entries("known-bad", &entries).await.unwrap();
    chosen
        .iter()
        .map(|name| sha256(&corpus.originals[*name]))
        .collect()
}

/// The end state every correct run reaches, however often it was interrupted.
async fn assert_complete(
    store: &dyn Store,
    job_id: &str,
    corpus: &Corpus,
    blocked_shas: &BTreeSet<String>,
) {
    let counts = store.backfill_counts(job_id).await.unwrap();
    assert_eq!(counts.failed as usize, corpus.failing(), "{counts:?}");
    assert_eq!(
        counts.done as usize,
        corpus.total() - corpus.failing(),
        "{counts:?}"
    );
    let mut seen = BTreeSet::new();
    let mut after = None;
    loop {
        let page = store
            .backfill_items(job_id, after.as_deref(), 1000)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.artwork_id.clone());
        for row in page {
            let expected = &corpus.items[&row.artwork_id];
            assert_eq!(row.state == "done", expected.is_some(), "{row:?}");
            assert!(seen.insert(row.artwork_id));
        }
    }
    assert_eq!(seen.len(), corpus.total());
    // Exactly one report and one quarantine item per blocked artwork: none twice.
    let blocked: Vec<&String> = corpus
        .items
        .iter()
        .filter(|(_, sha)| sha.as_ref().is_some_and(|s| blocked_shas.contains(s)))
        .map(|(id, _)| id)
        .collect();
    assert!(!blocked.is_empty());
    assert_eq!(
        counts.verdicts.get("block").copied().unwrap_or(0) as usize,
        blocked.len(),
        "{counts:?}"
    );
    let mut reports = 0;
    let mut quarantined = 0;
    for sha in blocked_shas {
        let items = store.quarantine_items(sha).await.unwrap();
        quarantined += items.len();
        for item in items {
            let screening = store
                .get_screening(&item.screening_id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(screening.facts.verdict, Verdict::Block);
            reports += 1;
        }
    }
    assert_eq!(
        quarantined,
        blocked.len(),
        "one quarantine item per blocked artwork"
    );
    assert_eq!(reports, blocked.len());
    let due = store
        .due_reports(chrono::Utc::now() + chrono::Duration::days(1), 10_000)
        .await
        .unwrap();
    assert_eq!(due.len(), blocked.len(), "one report per blocked artwork");
    let screenings: BTreeSet<&str> = due
        .iter()
        .filter_map(|r| r.screening_id.as_deref())
        .collect();
    assert_eq!(screenings.len(), due.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_local_run_screens_every_item_once_then_retro_matches_new_entries() {
    let corpus = corpus().await;
    let config = config_for(&corpus, None);
    let manifest = ManifestArg {
        path: corpus.manifest.clone(),
        format: None,
    };
    let outcome = job::run_local(&config, &manifest, None, BackfillOptions::default(), None)
        .await
        .unwrap();
    let s = &outcome.summary;
    assert_eq!(
        s.screened as usize,
        corpus.total() - corpus.failing(),
        "{s:?}"
    );
    assert_eq!(s.failed as usize, corpus.failing(), "{s:?}");
    assert_eq!(s.errors["corrupt"], PHOTOS.len() as u64, "{s:?}");
    assert_eq!(s.errors["http_status"], 4, "{s:?}");
    assert_eq!((s.bad_rows, s.duplicate_rows), (0, 0));
    assert_eq!(
        outcome.inferred as usize,
        corpus.distinct_images(),
        "identical bytes inferred once"
    );
    let lines = std::fs::read_to_string(&outcome.results).unwrap();
    assert_eq!(lines.lines().count(), corpus.total());

    // Rerun: nothing is screened again; the failures are retried and fail again.
    let again = job::run_local(&config, &manifest, None, BackfillOptions::default(), None)
        .await
        .unwrap();
    assert_eq!(again.job_id, outcome.job_id);
    assert_eq!(again.summary.screened, 0);
    assert_eq!(
        again.summary.already_done as usize,
        corpus.total() - corpus.failing()
    );
    assert_eq!(again.inferred, 0);

    // --stale-only is another job; every verdict is current, so nothing is screened.
    let stale_only = || BackfillOptions {
        stale_only: true,
        ..BackfillOptions::default()
    };
    let fresh = job::run_local(&config, &manifest, Some("stale-1"), stale_only(), None)
        .await
        .unwrap();
    assert_eq!(fresh.summary.screened, 0, "{:?}", fresh.summary);
    assert_eq!(
        fresh.summary.skipped_current as usize,
        corpus.total() - corpus.failing()
    );
    assert_eq!(fresh.inferred, 0);

    // Entries added after the fact find the stored artworks without fetching or inferring.
    let store = store::open(&config.database_url()).await.unwrap();
    let blocked_shas = bank_three(store.as_ref(), &corpus).await;
    // And the originals' PDQ, which also finds their re-encodes and resizes.
    let pdq: Vec<EntryWrite> = ["coffee.png", "horse.png", "moon.png"]
        .iter()
        .map(|name| {
            let limits = coverguard::decode::DecodeLimits::default();
            let analysed =
                coverguard::screening::analyse::analyse(&corpus.originals[*name], &limits).unwrap();
            EntryWrite {
                signal: "pdq".into(),
                hash: analysed.pdq.hash.to_hex(),
                external_id: None,
            }
        })
        .collect();
    store.add_entries("known-bad", &pdq).await.unwrap();
    let loaded = coverguard::app::load(&config, store.clone(), Arc::new(|_, _| {}))
        .await
        .unwrap();
    let retro = loaded
        .pipeline
        .retro_match(None, Some(&loaded.http))
        .await
        .unwrap();
    assert_eq!(retro.scanned as usize, corpus.total() - corpus.failing());
    let hit_ids: BTreeSet<String> = retro.hits.iter().map(|h| h.artwork_id.clone()).collect();
    let expected: BTreeSet<String> = corpus
        .items
        .iter()
        .filter(|(_, sha)| sha.as_ref().is_some_and(|s| blocked_shas.contains(s)))
        .map(|(id, _)| id.clone())
        .collect();
    // MD5 finds the identical bytes; PDQ also finds the re-encodes and resizes.
    assert!(
        hit_ids.is_superset(&expected),
        "{hit_ids:?} vs {expected:?}"
    );
    for stem in ["coffee", "horse", "moon"] {
        assert!(
            hit_ids.contains(&format!("p-{stem}-q85.jpg")),
            "{hit_ids:?}"
        );
    }
    assert_eq!(
        loaded
            .pipeline
            .scheduler
            .stats()
            .images
            .load(Ordering::Relaxed),
        0,
        "no inference"
    );
    for hit in &retro.hits {
        assert_eq!(hit.report_ids.len(), 1, "{hit:?}");
        assert!(hit.evidence, "the file is still there: {hit:?}");
        let artwork = store.get_artwork(&hit.artwork_id).await.unwrap().unwrap();
        assert_eq!(artwork.status.as_str(), "quarantined");
    }
    // Run again: everything it found is quarantined already; nothing new.
    let repeat = loaded.pipeline.retro_match(None, None).await.unwrap();
    assert!(repeat.hits.is_empty(), "{:?}", repeat.hits);

    // A crash after an item's screening was recorded but before its checkpoint: the
    // rerun takes the stored verdict instead of deciding again.
    let astronaut = corpus.originals["astronaut.png"].clone();
    let item = coverguard::backfill::manifest::ManifestItem {
        line: 2,
        artwork_id: "crash-1".into(),
        source: coverguard::backfill::manifest::ItemSource::Path(
            skimage_dir().join("astronaut.png"),
        ),
        owner_id: Some("crash-owner".into()),
        context: Default::default(),
    };
    let recorded = loaded
        .pipeline
        .screen(
            astronaut.clone().into(),
            &coverguard::screening::pipeline::Submission {
                source: "before the crash".into(),
                artwork_id: Some("crash-1".into()),
                owner_id: Some("crash-owner".into()),
                screening_id: Some(coverguard::backfill::run::screening_id(
                    "crash-job",
                    "crash-1",
                )),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(recorded.record.verdict.as_str(), "allow");
    // The owner is taken down since: screened afresh, the item would be held for review.
    store.takedown_account("crash-owner", "test").await.unwrap();
    let backfill = coverguard::backfill::run::Backfill::new(
        loaded.pipeline.clone(),
        loaded.http.clone(),
        BackfillOptions::default(),
    );
    let resumed = backfill.process("crash-job", &item).await.unwrap();
    assert_eq!(
        resumed,
        coverguard::backfill::run::ItemResult::Screened {
            verdict: Verdict::Allow
        }
    );
    let counts = store.backfill_counts("crash-job").await.unwrap();
    assert_eq!((counts.done, counts.verdicts["allow"]), (1, 1));
    store.close().await;

    // The banks changed since the first run: every verdict but the retroactive hits'
    // (made under the new banks) is stale, and its stored hashes are matched again.
    let stale = job::run_local(&config, &manifest, Some("stale-2"), stale_only(), None)
        .await
        .unwrap();
    assert_eq!(
        stale.summary.skipped_current as usize,
        retro.hits.len(),
        "{:?}",
        stale.summary
    );
    assert_eq!(
        (stale.summary.rematched as usize, stale.summary.reinferred),
        (corpus.total() - corpus.failing() - retro.hits.len(), 0),
        "{:?}",
        stale.summary
    );
    assert_eq!(stale.inferred, 0, "a bank change runs no inference");

    // Rows analysed before views existed carry no analysis version: however current their
    // model, policy and banks, each is screened again rather than trusted.
    let db = corpus.data_dir().join("coverguard.db");
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
        "sqlite://{}",
        db.display()
    ))
    .await
    .unwrap();
    let fresh = job::run_local(&config, &manifest, Some("stale-3"), stale_only(), None)
        .await
        .unwrap();
    assert_eq!(fresh.summary.screened, 0, "{:?}", fresh.summary);
    sqlx::query("UPDATE screenings SET analysis = ''")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let upgraded = job::run_local(&config, &manifest, Some("stale-4"), stale_only(), None)
        .await
        .unwrap();
    assert_eq!(
        (
            upgraded.summary.skipped_current,
            upgraded.summary.reinferred as usize
        ),
        (0, corpus.total() - corpus.failing()),
        "{:?}",
        upgraded.summary
    );
}

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_coverguard"));
    command
        .env("COVERGUARD_LOG", "coverguard=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

async fn backfill_rows(store: &dyn Store, job_id: &str) -> i64 {
    let c = store.backfill_counts(job_id).await.unwrap();
    c.done + c.failed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_killed_part_way_resumes_to_exactly_one_result_per_item() {
    let corpus = corpus().await;
    let data = corpus.data_dir();
    let config = config_for(&corpus, None);
    let store = store::open(&config.database_url()).await.unwrap();
    let blocked_shas = bank_three(store.as_ref(), &corpus).await;
    let manifest = ManifestArg {
        path: corpus.manifest.clone(),
        format: None,
    };
    let job_id = manifest.job_id(None, false).unwrap();
    let run = || {
        let mut c = binary();
        c.args(["backfill", "--concurrency", "2", "--manifest"])
            .arg(&corpus.manifest)
            .arg("--config")
            .arg(corpus.config_file())
            .env("COVERGUARD_DATA_DIR", &data)
            .env("COVERGUARD_QUARANTINE_KEY", "22".repeat(32));
        c
    };
    let mut child = run().spawn().unwrap();
    let started = Instant::now();
    let at_kill = loop {
        let n = backfill_rows(store.as_ref(), &job_id).await;
        if n >= 25 {
            break n;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(started.elapsed() < Duration::from_secs(300), "no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert!((at_kill as usize) < corpus.total(), "killed after the end");

    let output = run().output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "failures exit 2: {stderr}");
    assert!(stderr.contains("already done"), "{stderr}");
    assert_complete(store.as_ref(), &job_id, &corpus, &blocked_shas).await;

    // No corrupt quarantine file: every stored object decrypts to bytes with its hash.
    let key = coverguard::act::quarantine::QuarantineKey::parse(&"22".repeat(32)).unwrap();
    let vault =
        coverguard::act::quarantine::LocalVault::open(data.join("quarantine"), key).unwrap();
    for sha in &blocked_shas {
        for item in store.quarantine_items(sha).await.unwrap() {
            let key =
                coverguard::act::quarantine::ObjectKey::from_sha256(&item.object_key).unwrap();
            use coverguard::act::quarantine::QuarantineVault;
            let bytes = vault.get(&key).await.unwrap();
            assert_eq!(&sha256(&bytes), sha);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_jetstream_workers_one_killed_do_every_item_exactly_once() {
    let Some([nats, _]) = coverguard::testing::service_urls([NATS_URL_VAR, POSTGRES_URL_VAR])
    else {
        return;
    };
    let corpus = corpus().await;
    // A fresh Postgres schema: the workers' shared store.
    let schema = PgSchema::create("cg_bf").await.expect("checked above");
    let database_url = schema.url.clone();
    let config = config_for(&corpus, Some(database_url.clone()));
    let store = store::open(&database_url).await.unwrap();
    let blocked_shas = bank_three(store.as_ref(), &corpus).await;
    let stream = format!("CGTEST_{}", uuid::Uuid::now_v7().simple()).to_ascii_uppercase();
    let with_env = |c: &mut Command| {
        c.env("DATABASE_URL", &database_url)
            .env("COVERGUARD_DATA_DIR", corpus.data_dir())
            .env("COVERGUARD_QUARANTINE_KEY", "22".repeat(32));
    };

    let mut enqueue = binary();
    enqueue
        .args([
            "backfill",
            "enqueue",
            "--nats",
            &nats,
            "--stream",
            &stream,
            "--manifest",
        ])
        .arg(&corpus.manifest);
    with_env(&mut enqueue);
    let out = enqueue.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let job_id = ManifestArg {
        path: corpus.manifest.clone(),
        format: None,
    }
    .job_id(None, false)
    .unwrap();
    // Enqueued again: JetStream drops the repeats.
    let out = enqueue.output().unwrap();
    assert!(out.status.success());

    let worker = |name: &str| {
        let mut c = binary();
        c.args([
            "worker",
            "--nats",
            &nats,
            "--stream",
            &stream,
            "--ack-wait-secs",
            "3",
            "--exit-when-idle",
            "10",
            "--concurrency",
            "2",
            "--name",
            name,
            "--config",
        ])
        .arg(corpus.config_file());
        with_env(&mut c);
        c.spawn().unwrap()
    };
    let mut doomed = worker("doomed");
    let survivor = worker("survivor");
    let started = Instant::now();
    loop {
        if backfill_rows(store.as_ref(), &job_id).await >= 20 {
            break;
        }
        assert!(doomed.try_wait().unwrap().is_none(), "worker ended early");
        assert!(started.elapsed() < Duration::from_secs(300), "no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    doomed.kill().unwrap();
    doomed.wait().unwrap();
    let status = tokio::task::spawn_blocking(move || survivor.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert_complete(store.as_ref(), &job_id, &corpus, &blocked_shas).await;
    let workers: BTreeSet<String> = store
        .backfill_items(&job_id, None, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| r.worker)
        .collect();
    assert!(
        workers.contains("doomed") && workers.contains("survivor"),
        "{workers:?}"
    );

    let mut status = binary();
    status
        .args([
            "backfill", "status", "--job", &job_id, "--nats", &nats, "--stream", &stream,
        ])
        .stdout(Stdio::piped());
    with_env(&mut status);
    let out = status.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "{} done, {} failed, of {}",
            corpus.total() - corpus.failing(),
            corpus.failing(),
            corpus.total()
        )),
        "{text}"
    );
    assert!(text.contains("queue: 0 queued"), "{text}");

    // A bank change, then the manifest again as its own job for a `--stale-only` worker:
    // every screened item is matched again from its stored hashes, none inferred.
    store
        .add_entries(
            "known-bad",
            &[EntryWrite {
                signal: "md5".into(),
                hash: "0".repeat(32),
                external_id: Some("unrelated".into()),
            }],
        )
        .await
        .unwrap();
    let mut enqueue_stale = binary();
    enqueue_stale
        .args([
            "backfill",
            "enqueue",
            "--nats",
            &nats,
            "--stream",
            &stream,
            "--job",
            "js-stale",
            "--manifest",
        ])
        .arg(&corpus.manifest);
    with_env(&mut enqueue_stale);
    let out = enqueue_stale.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut stale_worker = binary();
    stale_worker
        .args([
            "worker",
            "--nats",
            &nats,
            "--stream",
            &stream,
            "--exit-when-idle",
            "3",
            "--stale-only",
            "--name",
            "stale",
            "--config",
        ])
        .arg(corpus.config_file());
    with_env(&mut stale_worker);
    let out = stale_worker.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let done = corpus.total() - corpus.failing();
    assert!(
        stderr.contains(&format!(
            "{done} screened (0 reinferred, {done} rematched, 0 redecided), 0 skipped as current"
        )),
        "{stderr}"
    );
    let counts = store.backfill_counts("js-stale").await.unwrap();
    assert_eq!(counts.done as usize, done, "{counts:?}");

    let queue = coverguard::backfill::jetstream::JobQueue::connect(
        &nats,
        coverguard::backfill::jetstream::JobQueueConfig {
            stream: stream.clone(),
            subject_prefix: format!("coverguard.{}", stream.to_ascii_lowercase()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    queue.delete().await.unwrap();
    store.close().await;
    drop(config);
    schema.drop().await;
}

/// The stored screening an artwork's row points at, with its record parsed.
async fn latest(store: &dyn Store, artwork_id: &str) -> (store::ScreeningRow, serde_json::Value) {
    let row = store
        .latest_for_artwork(artwork_id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{artwork_id} has no screening"));
    let record = row.facts.record.clone();
    (row, record)
}

fn banks_named(record: &serde_json::Value) -> BTreeSet<String> {
    record["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["bank"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stale_only_redoes_only_the_stages_whose_versions_changed() {
    let dir = tempfile::tempdir().unwrap();
    let photos = [
        "astronaut.png",
        "chelsea.png",
        "coffee.png",
        "camera.png",
        "horse.png",
        "coins.png",
    ];
    let mut rows = vec!["artwork_id,url,path,owner_id,surface".to_string()];
    let mut originals = BTreeMap::new();
    for name in photos {
        let path = dir.path().join(name);
        let bytes = std::fs::read(skimage_dir().join(name)).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        originals.insert(name, bytes);
        rows.push(format!(
            "a-{name},,{},owner-1,playlist_cover",
            path.display()
        ));
    }
    let manifest_path = dir.path().join("manifest.csv");
    std::fs::write(&manifest_path, rows.join("\n") + "\n").unwrap();
    let manifest = ManifestArg {
        path: manifest_path,
        format: None,
    };
    let mut config = ServiceConfig {
        data_dir: dir.path().join("data"),
        quarantine_key: Some("22".repeat(32)),
        ..ServiceConfig::default()
    };
    let n = photos.len() as u64;
    let stale_only = BackfillOptions {
        stale_only: true,
        ..BackfillOptions::default()
    };
    let run = |config: ServiceConfig, job: &'static str| {
        let (manifest, options) = (manifest.clone(), stale_only.clone());
        async move {
            job::run_local(&config, &manifest, Some(job), options, None)
                .await
                .unwrap()
        }
    };

    let first = job::run_local(&config, &manifest, None, BackfillOptions::default(), None)
        .await
        .unwrap();
    assert_eq!(
        (first.summary.screened, first.summary.reinferred),
        (n, n),
        "{:?}",
        first.summary
    );
    assert_eq!(first.inferred, n);
    let store = store::open(&config.database_url()).await.unwrap();
    let (before, _) = latest(store.as_ref(), "a-coffee.png").await;
    assert_eq!(before.facts.verdict, Verdict::Allow);

    // Nothing changed: every item is skipped, nothing recorded.
    let unchanged = run(config.clone(), "stale-unchanged").await;
    assert_eq!(
        unchanged.summary.skipped_current, n,
        "{:?}",
        unchanged.summary
    );
    assert_eq!((unchanged.summary.screened, unchanged.inferred), (0, 0));
    assert_eq!(latest(store.as_ref(), "a-coffee.png").await.0.id, before.id);

    // A release adds the camera photo's PDQ to an allow-list: the banks version moves, so every
    // item is matched again from its stored hashes, and the model is not run.
    store
        .create_bank(&BankSpec {
            name: "released".into(),
            signal_types: vec!["pdq".into()],
            pdq_threshold: 31,
            action: BankAction::Allow,
            allow_list: true,
            severity: 0,
            category: None,
        })
        .await
        .unwrap();
    let limits = coverguard::decode::DecodeLimits::default();
    let camera =
        coverguard::screening::analyse::analyse(&originals["camera.png"], &limits).unwrap();
    store
        .add_entries(
            "released",
            &[EntryWrite {
                signal: "pdq".into(),
                hash: camera.pdq.hash.to_hex(),
                external_id: Some("release-1".into()),
            }],
        )
        .await
        .unwrap();
    let released = run(config.clone(), "stale-release").await;
    let s = &released.summary;
    assert_eq!((s.rematched, s.reinferred, s.redecided), (n, 0, 0), "{s:?}");
    assert_eq!(released.inferred, 0, "no inference for a bank change");
    let (row, record) = latest(store.as_ref(), "a-camera.png").await;
    assert!(banks_named(&record).contains("released"), "{record}");
    assert_eq!(
        row.id,
        coverguard::backfill::run::screening_id("stale-release", "a-camera.png")
    );
    assert_eq!(
        (row.facts.model.as_str(), row.facts.analysis.as_str()),
        (before.facts.model.as_str(), before.facts.analysis.as_str())
    );
    let banks_after_release = row.facts.banks_version;
    assert!(banks_after_release > before.facts.banks_version);
    // Made current: run again, all skipped.
    let again = run(config.clone(), "stale-release-again").await;
    assert_eq!(again.summary.skipped_current, n, "{:?}", again.summary);

    // A known-bad MD5 of the coffee photo, allowed so far: blocked from the stored hashes,
    // its bytes read again as evidence, reported, out of public view.
    store
        .create_bank(&BankSpec {
            name: "known-bad".into(),
            signal_types: vec!["md5".into()],
            pdq_threshold: 31,
            action: BankAction::Block,
            allow_list: false,
            severity: 3,
            category: None,
        })
        .await
        .unwrap();
    let coffee = coverguard::hash::exact_hashes(&originals["coffee.png"]);
    store
        .add_entries(
            "known-bad",
            &[EntryWrite {
                signal: "md5".into(),
                hash: coffee.md5.clone(),
                external_id: None,
            }],
        )
        .await
        .unwrap();
    let bad = run(config.clone(), "stale-bad").await;
    let s = &bad.summary;
    assert_eq!((s.rematched, s.reinferred), (n, 0), "{s:?}");
    assert_eq!(bad.inferred, 0);
    assert_eq!(s.verdicts.get("block"), Some(&1), "{s:?}");
    let (row, record) = latest(store.as_ref(), "a-coffee.png").await;
    assert_eq!(row.facts.verdict, Verdict::Block, "{record}");
    assert!(banks_named(&record).contains("known-bad"), "{record}");
    let artwork = store.get_artwork("a-coffee.png").await.unwrap().unwrap();
    assert_eq!(artwork.status.as_str(), "quarantined");
    let quarantined = store.quarantine_items(&coffee.sha256).await.unwrap();
    assert_eq!(quarantined.len(), 1, "the bytes are kept as evidence");
    assert_eq!(quarantined[0].screening_id, row.id);
    let due = store
        .due_reports(chrono::Utc::now() + chrono::Duration::days(1), 100)
        .await
        .unwrap();
    assert!(
        due.iter()
            .any(|r| r.screening_id.as_deref() == Some(row.id.as_str())),
        "{due:?}"
    );

    // A policy change alone: decided again from the stored scores. A label the model found in
    // some photo is now reviewed from just under its score.
    let mut found = None;
    // Not the released photo: its release clears what the classifier alone flags.
    for name in photos.into_iter().filter(|n| *n != "camera.png") {
        let (_, record) = latest(store.as_ref(), &format!("a-{name}")).await;
        let top = record["detections"]
            .as_array()
            .unwrap()
            .iter()
            .max_by(|a, b| {
                a["score"]
                    .as_f64()
                    .unwrap()
                    .total_cmp(&b["score"].as_f64().unwrap())
            })
            .map(|d| {
                (
                    d["label"].as_str().unwrap().to_string(),
                    d["score"].as_f64().unwrap(),
                )
            });
        if let (Some(top), "allow") = (top, record["verdict"].as_str().unwrap()) {
            found = Some((name, top));
            break;
        }
    }
    let (flagged, (label, score)) = found.expect("some allowed photo has a detection");
    let policy_file = dir.path().join("policy.toml");
    std::fs::write(
        &policy_file,
        format!(
            "[labels.{label}]\nreview = {:.4}\n",
            (score - 0.01).max(0.0)
        ),
    )
    .unwrap();
    config.policy_file = Some(policy_file);
    let redecided = run(config.clone(), "stale-policy").await;
    let s = &redecided.summary;
    assert_eq!((s.redecided, s.rematched, s.reinferred), (n, 0, 0), "{s:?}");
    assert_eq!(redecided.inferred, 0, "no inference for a policy change");
    let (row, record) = latest(store.as_ref(), &format!("a-{flagged}")).await;
    assert_eq!(row.facts.verdict, Verdict::Review, "{record}");
    assert_eq!(
        row.facts.banks_version,
        latest(store.as_ref(), "a-coffee.png")
            .await
            .0
            .facts
            .banks_version
    );
    assert_ne!(row.facts.policy_version, before.facts.policy_version);
    assert_eq!(
        latest(store.as_ref(), "a-coffee.png").await.0.facts.verdict,
        Verdict::Block
    );

    // Another model: its scores are not the stored ones, so every item is inferred again.
    let db = config.data_dir.join("coverguard.db");
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
        "sqlite://{}",
        db.display()
    ))
    .await
    .unwrap();
    sqlx::query("UPDATE screenings SET model = 'an-older-model'")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let reinferred = run(config.clone(), "stale-model").await;
    let s = &reinferred.summary;
    assert_eq!((s.reinferred, s.rematched, s.redecided), (n, 0, 0), "{s:?}");
    assert_eq!(reinferred.inferred, n);
    let (row, _) = latest(store.as_ref(), &format!("a-{flagged}")).await;
    assert_eq!(row.facts.model, before.facts.model);
    assert_eq!(row.facts.verdict, Verdict::Review);
    store.close().await;
}

/// Playlists without a cover are backfilled by their words: a row with a title and no
/// image is screened alone (held when it asks for contact), and a row of words for an
/// artwork screened before decides its stored image screening again, with no fetch and
/// no inference.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rows_without_an_image_screen_their_words() {
    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("coffee.png");
    std::fs::write(
        &photo,
        std::fs::read(skimage_dir().join("coffee.png")).unwrap(),
    )
    .unwrap();
    let write = |name: &str, lines: &[String]| {
        let path = dir.path().join(name);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        ManifestArg { path, format: None }
    };
    let first = write(
        "first.jsonl",
        &[
            r#"{"artwork_id":"asks","owner_id":"o-1","playlist_track_count":0,"title":"sc: lily_2010 add me"}"#.to_string(),
            r#"{"artwork_id":"jazz","owner_id":"o-1","description":"sunday morning jazz"}"#.to_string(),
            format!(
                r#"{{"artwork_id":"cover","owner_id":"o-2","path":"{}","title":"coffee break"}}"#,
                photo.display()
            ),
        ],
    );
    let config = ServiceConfig {
        data_dir: dir.path().join("data"),
        quarantine_key: Some("22".repeat(32)),
        ..ServiceConfig::default()
    };
    let done = job::run_local(&config, &first, None, BackfillOptions::default(), None)
        .await
        .unwrap();
    assert_eq!(
        (done.summary.screened, done.summary.failed),
        (3, 0),
        "{:?}",
        done.summary
    );
    assert_eq!(done.inferred, 1, "only the cover is inferred");
    let store = store::open(&config.database_url()).await.unwrap();
    let (asks, record) = latest(store.as_ref(), "asks").await;
    assert_eq!(asks.facts.verdict, Verdict::Review, "{record}");
    assert!(!asks.facts.has_image());
    assert_eq!(record["source"], "text:asks");
    assert_eq!(record["text"]["signals"][0]["source"], "title", "{record}");
    let (jazz, record) = latest(store.as_ref(), "jazz").await;
    assert_eq!(jazz.facts.verdict, Verdict::Allow, "{record}");
    let (cover, _) = latest(store.as_ref(), "cover").await;
    assert_eq!(cover.facts.verdict, Verdict::Allow);

    // The cover is retitled: its stored screening is decided again under the new words.
    let retitled = write(
        "retitled.jsonl",
        &[r#"{"artwork_id":"cover","owner_id":"o-2","title":"text me 555 123 4567"}"#.to_string()],
    );
    let again = job::run_local(&config, &retitled, None, BackfillOptions::default(), None)
        .await
        .unwrap();
    assert_eq!(
        (again.summary.screened, again.inferred),
        (1, 0),
        "{:?}",
        again.summary
    );
    let (now, record) = latest(store.as_ref(), "cover").await;
    assert_ne!(now.id, cover.id);
    assert_eq!(
        now.facts.sha256, cover.facts.sha256,
        "the image's screening, decided again"
    );
    assert_eq!(now.facts.verdict, Verdict::Review, "{record}");
}
