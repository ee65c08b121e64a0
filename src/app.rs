//! What `serve`, `backfill` and `worker` load from one [`ServiceConfig`]: the
//! screening pipeline (model, ONNX Runtime, scheduler, quarantine vault, banks),
//! the URL fetcher and the report outbox, over an already opened store.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::act::delivery::ReportSink;
use crate::act::outbox::{self, OutboxWorker};
use crate::act::quarantine::{LocalVault, QuarantineKey};
use crate::act::webhook::{WebhookConfig, WebhookSecret, WebhookSink};
use crate::classify::{Detector, DetectorOptions};
use crate::config::ServiceConfig;
use crate::fetch::{HttpFetcher, HttpOptions};
use crate::matching::index::SharedBankIndex;
use crate::provision::{self, Cache};
use crate::screening::pipeline::{Pipeline, PipelineSettings, SameBytes};
use crate::screening::policy::Policy;
use crate::screening::scheduler::{BatchObserver, Scheduler, Worker};
use crate::store::Store;
use crate::text::ocr::{OcrEngine, Reading};

/// One inference worker per `count` (at least one), each with its own sessions: the
/// detector, and the OCR models when `ocr` is on.
pub fn load_workers(
    cache: &Cache,
    provisioned: &provision::Provisioned,
    count: usize,
    intra_threads: usize,
    ocr: Option<Reading>,
) -> anyhow::Result<Vec<Worker>> {
    let ocr_models = match &ocr {
        Some(reading) => Some((
            provision::provision_ocr(cache).context("provisioning the OCR models")?,
            reading,
        )),
        None => None,
    };
    (0..count.max(1))
        .map(|_| {
            let detector = Detector::load(provisioned, &DetectorOptions { intra_threads })?;
            let ocr = match &ocr_models {
                Some((models, reading)) => Some(
                    OcrEngine::load(
                        models,
                        &provisioned.runtime_library,
                        intra_threads,
                        (*reading).clone(),
                    )
                    .context("loading the OCR models")?,
                ),
                None => None,
            };
            Ok(Worker { detector, ocr })
        })
        .collect()
}

pub struct Loaded {
    pub pipeline: Arc<Pipeline>,
    pub http: HttpFetcher,
    /// Not started: the caller spawns it with its own shutdown signal.
    pub outbox: OutboxWorker,
}

/// Load everything but the store; `observe` sees every inference batch.
pub async fn load(
    config: &ServiceConfig,
    store: Arc<dyn Store>,
    observe: BatchObserver,
) -> anyhow::Result<Loaded> {
    let manifest = provision::manifest()?;
    let policy = Policy::for_model(config.policy_file.as_deref(), &manifest.model)?;
    let scheduler_config = config.scheduler.clone();
    let intra_threads = config.intra_threads;
    let ocr = config.ocr.reading();
    let scheduler = tokio::task::spawn_blocking(move || -> anyhow::Result<Scheduler> {
        let cache = Cache::from_env()?;
        let provisioned = provision::provision(&cache, None)?;
        let workers = load_workers(
            &cache,
            &provisioned,
            scheduler_config.workers,
            intra_threads,
            ocr,
        )?;
        Ok(Scheduler::start_observed(
            workers,
            &scheduler_config,
            observe,
        ))
    })
    .await??;

    let key = quarantine_key(config)?;
    let vault = LocalVault::open(config.quarantine_dir(), key)
        .context("opening the quarantine directory")?;
    // Writes a crash interrupted leave temporary files; without this they pile up across
    // restarts until the disk is full.
    match vault.sweep_stale_temporaries().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "removed stale quarantine temporary files"),
        Err(e) => tracing::warn!("sweeping stale quarantine temporary files: {e}"),
    }
    let banks = SharedBankIndex::load(store.as_ref())
        .await
        .context("loading the banks")?;
    let sinks = config
        .webhooks
        .iter()
        .enumerate()
        .map(|(i, w)| {
            WebhookSink::new(WebhookConfig {
                name: format!("webhook-{i}"),
                url: w.url.clone(),
                secret: w
                    .secret
                    .as_ref()
                    .map(|s| WebhookSecret::new(s.as_bytes().to_vec())),
                timeout: WebhookConfig::DEFAULT_TIMEOUT,
            })
            .map(|sink| Arc::new(sink) as Arc<dyn ReportSink>)
        })
        .collect::<Result<Vec<_>, _>>()
        .context("configuring webhooks")?;
    let outbox = OutboxWorker::new(
        Arc::clone(&store),
        sinks,
        outbox::DEFAULT_BATCH,
        outbox::DEFAULT_POLL_INTERVAL,
    )
    .with_lease(Duration::from_secs(config.outbox_lease_secs));
    let http = HttpFetcher::new(HttpOptions {
        timeout: Duration::from_secs(config.url_timeout_secs),
        destinations: config.url_fetch.clone(),
        ..HttpOptions::default()
    })?;
    let pipeline = Pipeline {
        store: Arc::clone(&store),
        scheduler,
        vault: Arc::new(vault),
        policy,
        banks,
        settings: PipelineSettings {
            limits: config.limits(),
            resolution: config.decode_resolution,
            quarantine_on_review: config.quarantine_on_review,
            retention: Duration::from_secs(86_400 * u64::from(config.retention_days)),
            reporter: config.reporter.clone(),
            views: config.view_settings(),
            text: crate::text::TextScreener::with_keyword_file(config.keyword_file.as_deref())?,
            owner_pattern: config.owner_pattern.settings(),
        },
        reported: outbox.waker(),
        same_bytes: SameBytes::new(Arc::clone(&store)),
        cpu_slots: Default::default(),
    };
    Ok(Loaded {
        pipeline: Arc::new(pipeline),
        http,
        outbox,
    })
}

/// The configured key, or (local development) one generated once into the data dir.
fn quarantine_key(config: &ServiceConfig) -> anyhow::Result<QuarantineKey> {
    if let Some(encoded) = &config.quarantine_key {
        return Ok(QuarantineKey::parse(encoded)?);
    }
    let path = config.data_dir.join("quarantine.key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Ok(QuarantineKey::parse(text.trim())?);
    }
    std::fs::create_dir_all(&config.data_dir)?;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness for a quarantine key: {e}"))?;
    write_private(&path, hex::encode(bytes).as_bytes())?;
    tracing::warn!(path = %path.display(), "generated a quarantine key for local development; configure quarantine_key in production");
    Ok(QuarantineKey::from_bytes(bytes))
}

pub(crate) fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}
