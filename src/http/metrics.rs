//! The service's metrics, kept by `prometheus-client` and served in the OpenMetrics text
//! format (which Prometheus scrapes).
//!
//! Counters are registered without their `_total` suffix and the info family without its
//! `_info` suffix: the encoder adds them, so the exposed names are the documented ones. Label
//! values are route templates, status codes, verdicts and error kinds, never caller text: the
//! encoder writes them as they are. Statistics that live elsewhere (the scheduler's, the bank
//! index's) are read at scrape time by collectors.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::screening::scheduler::SchedulerStats;

/// Content type of [`ServiceMetrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Bucket bounds for request latency in seconds (the default deadline is 2 s).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0,
];
/// Bucket bounds for the wall time of one inference batch in seconds.
pub const INFERENCE_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
/// Bucket bounds for the number of images in one inference batch.
pub const BATCH_SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetricsError {
    #[error("the scheduler's statistics are already watched")]
    AlreadyWatched,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabel {
    verdict: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// What the scheduler's statistics say at one moment; see [`ServiceMetrics::watch_scheduler`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SchedulerReading {
    pub queued: u64,
    pub batches: u64,
    pub images: u64,
    pub inputs: u64,
    pub refused: u64,
    pub inference_seconds: f64,
    pub ocr_images: u64,
    pub ocr_read_in_full: u64,
    pub ocr_seconds: f64,
}

impl From<&SchedulerStats> for SchedulerReading {
    fn from(stats: &SchedulerStats) -> Self {
        SchedulerReading {
            queued: stats.queued.load(Ordering::Relaxed) as u64,
            batches: stats.batches.load(Ordering::Relaxed),
            images: stats.images.load(Ordering::Relaxed),
            inputs: stats.inputs.load(Ordering::Relaxed),
            refused: stats.refused.load(Ordering::Relaxed),
            inference_seconds: stats.inference_micros.load(Ordering::Relaxed) as f64 / 1e6,
            ocr_images: stats.ocr_images.load(Ordering::Relaxed),
            ocr_read_in_full: stats.ocr_read_in_full.load(Ordering::Relaxed),
            ocr_seconds: stats.ocr_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

type ReadScheduler = Box<dyn Fn() -> Option<SchedulerReading> + Send + Sync>;

/// The scheduler's series, read at each scrape. They read 0 until a scheduler is watched
/// (before the model is loaded) and while the reader answers `None`.
#[derive(Default)]
struct SchedulerCollector {
    read: OnceLock<ReadScheduler>,
}

impl std::fmt::Debug for SchedulerCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulerCollector")
            .field("watched", &self.read.get().is_some())
            .finish()
    }
}

impl Collector for SchedulerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let r = self.read.get().and_then(|read| read()).unwrap_or_default();
        let queued = ConstGauge::new(r.queued);
        queued.encode(encoder.encode_descriptor(
            "coverguard_inference_queue_depth",
            "Inference work waiting for a worker: each image's classification and, with OCR on, its reading.",
            None,
            queued.metric_type(),
        )?)?;
        let counters: [(&str, &str, f64); 8] = [
            (
                "coverguard_inference_refused",
                "Inference requests refused because the queue was full.",
                r.refused as f64,
            ),
            (
                "coverguard_inference_images",
                "Images run through inference.",
                r.images as f64,
            ),
            (
                "coverguard_inference_inputs",
                "Model inputs run through inference: each image, and each further frame or rendering of it.",
                r.inputs as f64,
            ),
            (
                "coverguard_inference_batches",
                "Inference batches run.",
                r.batches as f64,
            ),
            (
                "coverguard_inference_seconds",
                "Total wall time spent in inference.",
                r.inference_seconds,
            ),
            (
                "coverguard_ocr_images",
                "Images whose words were read (with OCR on), each with its frames and renderings.",
                r.ocr_images as f64,
            ),
            (
                "coverguard_ocr_read_in_full",
                "Images the text gate passed to the full reading (the rest showed no text).",
                r.ocr_read_in_full as f64,
            ),
            (
                "coverguard_ocr_seconds",
                "Total wall time spent reading the words in images.",
                r.ocr_seconds,
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

/// Full rebuilds of the bank index, counted per process by the index itself.
#[derive(Debug)]
struct BankIndexCollector;

impl Collector for BankIndexCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // Per process: a single-entry bank change must not move it (it is applied as a delta).
        let rebuilds = ConstCounter::new(crate::matching::index::full_builds());
        rebuilds.encode(encoder.encode_descriptor(
            "coverguard_bank_index_rebuilds",
            "Full rebuilds of the bank index from a store snapshot.",
            None,
            rebuilds.metric_type(),
        )?)
    }
}

/// The service's metric set: requests, verdicts, errors, cache hits, request latency,
/// inference time per batch, batch sizes, the scheduler's queue and the build.
#[derive(Debug)]
pub struct ServiceMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    verdicts: Family<VerdictLabel, Counter>,
    errors: Family<KindLabel, Counter>,
    /// `coverguard_verdict_cache_hits_total`.
    pub cache_hits: Counter,
    request_latency: HistogramFamily<RouteLabel>,
    inference_batch_seconds: Histogram,
    batch_size: Histogram,
    scheduler: Arc<SchedulerCollector>,
}

impl Default for ServiceMetrics {
    fn default() -> Self {
        ServiceMetrics::new()
    }
}

impl ServiceMetrics {
    pub fn new() -> ServiceMetrics {
        let mut registry = Registry::default();
        let requests = Family::default();
        registry.register(
            "coverguard_http_requests",
            "HTTP requests answered, by route template and status code",
            Family::clone(&requests),
        );
        let verdicts = Family::default();
        registry.register(
            "coverguard_verdicts",
            "Screening verdicts returned, by verdict",
            Family::clone(&verdicts),
        );
        let errors = Family::default();
        registry.register(
            "coverguard_errors",
            "Errors answered to callers, by error kind",
            Family::clone(&errors),
        );
        let cache_hits = Counter::default();
        registry.register(
            "coverguard_verdict_cache_hits",
            "Screenings answered from the verdict cache without inference",
            cache_hits.clone(),
        );
        let request_latency: HistogramFamily<RouteLabel> =
            Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS.iter().copied()));
        registry.register(
            "coverguard_http_request_duration_seconds",
            "Time from request received to response ready, by route template",
            request_latency.clone(),
        );
        let inference_batch_seconds = Histogram::new(INFERENCE_BUCKETS.iter().copied());
        registry.register(
            "coverguard_inference_batch_duration_seconds",
            "Wall time of one inference batch",
            inference_batch_seconds.clone(),
        );
        let batch_size = Histogram::new(BATCH_SIZE_BUCKETS.iter().copied());
        registry.register(
            "coverguard_inference_batch_size",
            "Images per inference batch",
            batch_size.clone(),
        );
        registry.register(
            "coverguard_build",
            "How this binary was built: version, libjpeg-turbo SIMD on or off, profile",
            Info::new(crate::build_info::labels()),
        );
        registry.register_collector(Box::new(BankIndexCollector));
        let scheduler = Arc::new(SchedulerCollector::default());
        registry.register_collector(Box::new(Arc::clone(&scheduler)));
        ServiceMetrics {
            registry,
            requests,
            verdicts,
            errors,
            cache_hits,
            request_latency,
            inference_batch_seconds,
            batch_size,
            scheduler,
        }
    }

    /// Counts one answered request and its latency. `route` is the route template
    /// (`/v1/screenings/{id}`), never the raw path, so label sets stay few.
    pub fn observe_request(&self, route: &str, status: u16, elapsed: Duration) {
        let route = route.to_string();
        self.request_latency
            .get_or_create(&RouteLabel {
                route: route.clone(),
            })
            .observe(elapsed.as_secs_f64());
        self.requests
            .get_or_create(&RequestLabels { route, status })
            .inc();
    }

    pub fn observe_verdict(&self, verdict: &'static str) {
        self.verdicts.get_or_create(&VerdictLabel { verdict }).inc();
    }

    pub fn observe_error(&self, kind: &'static str) {
        self.errors.get_or_create(&KindLabel { kind }).inc();
    }

    /// One inference batch of `size` images that took `elapsed`.
    pub fn observe_batch(&self, size: usize, elapsed: Duration) {
        self.batch_size.observe(size as f64);
        self.inference_batch_seconds.observe(elapsed.as_secs_f64());
    }

    /// Reads the scheduler's statistics at each scrape: queue depth, refused requests,
    /// images, inputs, batches, inference and OCR time. `read` answers `None` while no
    /// scheduler runs; the series then read 0. One scheduler per process.
    pub fn watch_scheduler(
        &self,
        read: impl Fn() -> Option<SchedulerReading> + Send + Sync + 'static,
    ) -> Result<(), MetricsError> {
        self.scheduler
            .read
            .set(Box::new(read))
            .map_err(|_| MetricsError::AlreadyWatched)
    }

    /// The exposition, ending with `# EOF`.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        // Writing into a String cannot fail; an error here would be the encoder's own.
        if let Err(error) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(%error, "encoding the metrics failed");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample written exactly as `series` (name and labels as encoded).
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    fn type_of<'t>(text: &'t str, family: &str) -> Option<&'t str> {
        text.lines().find_map(|line| {
            line.strip_prefix("# TYPE ")?
                .strip_prefix(family)?
                .strip_prefix(' ')
        })
    }

    #[test]
    fn every_family_keeps_its_name_labels_and_type() {
        let metrics = ServiceMetrics::new();
        metrics.observe_request("/v1/screen", 200, Duration::from_millis(30));
        metrics.observe_request("/v1/screen", 200, Duration::from_millis(3));
        metrics.observe_request("/v1/screenings/{id}", 404, Duration::from_secs(20));
        metrics.observe_verdict("block");
        metrics.observe_error("not_found");
        metrics.cache_hits.inc();
        metrics.observe_batch(3, Duration::from_millis(40));
        let text = metrics.render();

        let requests = "coverguard_http_requests_total";
        assert_eq!(
            sample(
                &text,
                &format!("{requests}{{route=\"/v1/screen\",status=\"200\"}}")
            ),
            Some(2.0),
            "{text}"
        );
        assert_eq!(
            sample(
                &text,
                &format!("{requests}{{route=\"/v1/screenings/{{id}}\",status=\"404\"}}")
            ),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            sample(&text, "coverguard_verdicts_total{verdict=\"block\"}"),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "coverguard_errors_total{kind=\"not_found\"}"),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "coverguard_verdict_cache_hits_total"),
            Some(1.0)
        );

        // Latency buckets are cumulative and end in +Inf, which holds the 20 s request.
        let latency = "coverguard_http_request_duration_seconds";
        let screen = |le: &str| {
            sample(
                &text,
                &format!("{latency}_bucket{{le=\"{le}\",route=\"/v1/screen\"}}"),
            )
        };
        assert_eq!(
            (screen("0.005"), screen("0.05"), screen("+Inf")),
            (Some(1.0), Some(2.0), Some(2.0)),
            "{text}"
        );
        let slow = format!("{latency}_bucket{{le=\"10.0\",route=\"/v1/screenings/{{id}}\"}}");
        assert_eq!(sample(&text, &slow), Some(0.0), "{text}");
        assert_eq!(
            sample(&text, &format!("{latency}_count{{route=\"/v1/screen\"}}")),
            Some(2.0)
        );
        for bound in LATENCY_BUCKETS {
            assert!(
                screen(&format!("{bound:?}")).is_some(),
                "no bucket {bound}: {text}"
            );
        }
        assert_eq!(
            sample(&text, "coverguard_inference_batch_size_count"),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "coverguard_inference_batch_size_bucket{le=\"4.0\"}"),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "coverguard_inference_batch_duration_seconds_sum"),
            Some(0.04)
        );

        let [version, simd, profile] = crate::build_info::labels().map(|(_, value)| value);
        let build = format!(
            "coverguard_build_info{{version=\"{version}\",jpeg_simd=\"{simd}\",profile=\"{profile}\"}}"
        );
        assert_eq!(sample(&text, &build), Some(1.0), "{text}");

        for (family, kind) in [
            ("coverguard_http_requests", "counter"),
            ("coverguard_verdicts", "counter"),
            ("coverguard_errors", "counter"),
            ("coverguard_verdict_cache_hits", "counter"),
            (latency, "histogram"),
            ("coverguard_inference_batch_duration_seconds", "histogram"),
            ("coverguard_inference_batch_size", "histogram"),
            ("coverguard_build", "info"),
            ("coverguard_bank_index_rebuilds", "counter"),
            ("coverguard_inference_queue_depth", "gauge"),
            ("coverguard_inference_images", "counter"),
        ] {
            assert_eq!(type_of(&text, family), Some(kind), "{family}: {text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn scheduler_series_read_zero_until_watched_then_the_reading() {
        let metrics = ServiceMetrics::new();
        let before = metrics.render();
        for name in [
            "coverguard_inference_queue_depth",
            "coverguard_inference_refused_total",
            "coverguard_inference_images_total",
            "coverguard_inference_inputs_total",
            "coverguard_inference_batches_total",
            "coverguard_inference_seconds_total",
            "coverguard_ocr_images_total",
            "coverguard_ocr_read_in_full_total",
            "coverguard_ocr_seconds_total",
        ] {
            assert_eq!(sample(&before, name), Some(0.0), "{name}: {before}");
        }

        let reading = SchedulerReading {
            queued: 3,
            batches: 4,
            images: 9,
            inputs: 11,
            refused: 2,
            inference_seconds: 1.25,
            ocr_images: 6,
            ocr_read_in_full: 5,
            ocr_seconds: 0.5,
        };
        let shown = reading.clone();
        metrics
            .watch_scheduler(move || Some(shown.clone()))
            .unwrap();
        let after = metrics.render();
        for (name, value) in [
            ("coverguard_inference_queue_depth", 3.0),
            ("coverguard_inference_refused_total", 2.0),
            ("coverguard_inference_images_total", 9.0),
            ("coverguard_inference_inputs_total", 11.0),
            ("coverguard_inference_batches_total", 4.0),
            ("coverguard_inference_seconds_total", 1.25),
            ("coverguard_ocr_images_total", 6.0),
            ("coverguard_ocr_read_in_full_total", 5.0),
            ("coverguard_ocr_seconds_total", 0.5),
        ] {
            assert_eq!(sample(&after, name), Some(value), "{name}: {after}");
        }
        assert_eq!(
            metrics.watch_scheduler(move || Some(reading.clone())),
            Err(MetricsError::AlreadyWatched)
        );
    }

    #[test]
    fn a_reading_from_the_scheduler_statistics() {
        let stats = SchedulerStats::default();
        stats.queued.store(2, Ordering::Relaxed);
        stats.inference_micros.store(1_500_000, Ordering::Relaxed);
        stats.ocr_micros.store(250_000, Ordering::Relaxed);
        let reading = SchedulerReading::from(&stats);
        assert_eq!(
            (
                reading.queued,
                reading.inference_seconds,
                reading.ocr_seconds
            ),
            (2, 1.5, 0.25)
        );
    }
}
