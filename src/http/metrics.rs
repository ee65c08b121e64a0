//! Metrics in the Prometheus text exposition format (version 0.0.4), without a metrics crate.
//!
//! [`Registry`] holds metric families in registration order and renders them with
//! [`Registry::render`]. Updates are lock-light: every series is a set of atomics, and a
//! labelled family takes its write lock only when a label set appears for the first time
//! (later updates of that series take a shared read lock, or none when the caller keeps the
//! handle from [`CounterVec::with_labels`]). Gauges and counters that already live elsewhere
//! (scheduler and outbox statistics) are read by closures at render time.
//!
//! [`ServiceMetrics`] is the service's own set: requests, verdicts, errors, cache hits,
//! request latency, inference time per batch, batch sizes, and the scheduler's queue.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::screening::scheduler::SchedulerStats;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetricsError {
    #[error("invalid metric name {0:?}")]
    InvalidName(String),
    #[error("invalid label name {0:?}")]
    InvalidLabel(String),
    #[error("a metric named {0:?} is already registered")]
    Duplicate(String),
    #[error("histogram bucket bounds must be finite and strictly increasing")]
    InvalidBuckets,
}

impl MetricsError {
    /// Stable machine-readable kind.
    pub fn kind(&self) -> &'static str {
        match self {
            MetricsError::InvalidName(_) => "invalid_name",
            MetricsError::InvalidLabel(_) => "invalid_label",
            MetricsError::Duplicate(_) => "duplicate",
            MetricsError::InvalidBuckets => "invalid_buckets",
        }
    }
}

// ---------------------------------------------------------------------------
// Series
// ---------------------------------------------------------------------------

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter {
    value: AtomicU64,
}

impl Counter {
    pub fn inc(&self) {
        self.inc_by(1);
    }

    pub fn inc_by(&self, n: u64) {
        self.value.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down, set by the service.
#[derive(Debug, Default)]
pub struct Gauge {
    bits: AtomicU64,
}

impl Gauge {
    pub fn set(&self, value: f64) {
        self.bits.store(value.to_bits(), Ordering::Relaxed);
    }

    pub fn get(&self) -> f64 {
        f64::from_bits(self.bits.load(Ordering::Relaxed))
    }
}

/// Observations counted into fixed buckets.
#[derive(Debug)]
pub struct Histogram {
    /// Upper bounds (inclusive), strictly increasing; `+Inf` is implicit.
    bounds: Arc<[f64]>,
    /// Per-bucket (not cumulative) counts; the last one is the `+Inf` bucket.
    counts: Vec<AtomicU64>,
    sum_bits: AtomicU64,
}

impl Histogram {
    fn with_bounds(bounds: Arc<[f64]>) -> Histogram {
        Histogram {
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            bounds,
            sum_bits: AtomicU64::new(0f64.to_bits()),
        }
    }

    /// Records one observation. NaN is ignored (it would poison the sum for good).
    pub fn observe(&self, value: f64) {
        if value.is_nan() {
            return;
        }
        let bucket = self.bounds.partition_point(|bound| *bound < value);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        // No atomic f64 add: compare-and-swap on the bits. Contention is one retry at most
        // per concurrent observer.
        let _ = self
            .sum_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
    }

    pub fn observe_duration(&self, elapsed: Duration) {
        self.observe(elapsed.as_secs_f64());
    }

    /// Observation count.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    pub fn sum(&self) -> f64 {
        f64::from_bits(self.sum_bits.load(Ordering::Relaxed))
    }

    /// `(upper bound, cumulative count)` per bucket, ending with `+Inf`.
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut total = 0;
        self.counts
            .iter()
            .enumerate()
            .map(|(i, count)| {
                total += count.load(Ordering::Relaxed);
                (self.bounds.get(i).copied().unwrap_or(f64::INFINITY), total)
            })
            .collect()
    }
}

/// Bucket bounds for request latency in seconds (the default deadline is 2 s).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0,
];
/// Bucket bounds for the wall time of one inference batch in seconds.
pub const INFERENCE_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
/// Bucket bounds for the number of images in one inference batch.
pub const BATCH_SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

// ---------------------------------------------------------------------------
// Labelled families
// ---------------------------------------------------------------------------

/// Series keyed by `N` label values. The write lock is taken only for a new label set.
#[derive(Debug)]
struct Series<T, const N: usize> {
    by_labels: RwLock<HashMap<[String; N], Arc<T>>>,
}

impl<T, const N: usize> Series<T, N> {
    fn new() -> Self {
        Series {
            by_labels: RwLock::new(HashMap::new()),
        }
    }

    fn get_or_insert(&self, values: [&str; N], make: impl FnOnce() -> T) -> Arc<T> {
        let key: [String; N] = values.map(str::to_string);
        {
            // A poisoned lock still holds a valid map (inserts cannot half-happen).
            let read = self.by_labels.read().unwrap_or_else(|e| e.into_inner());
            if let Some(series) = read.get(&key) {
                return Arc::clone(series);
            }
        }
        let mut write = self.by_labels.write().unwrap_or_else(|e| e.into_inner());
        Arc::clone(write.entry(key).or_insert_with(|| Arc::new(make())))
    }

    /// Every series, sorted by label values so output is stable.
    fn snapshot(&self) -> Vec<([String; N], Arc<T>)> {
        let read = self.by_labels.read().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<_> = read
            .iter()
            .map(|(labels, series)| (labels.clone(), Arc::clone(series)))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

/// Counters with `N` labels, e.g. requests by route and status.
#[derive(Debug)]
pub struct CounterVec<const N: usize> {
    labels: [&'static str; N],
    series: Series<Counter, N>,
}

impl<const N: usize> CounterVec<N> {
    /// The counter for these label values (created at zero the first time). Keep the handle
    /// on hot paths with a fixed label set.
    pub fn with_labels(&self, values: [&str; N]) -> Arc<Counter> {
        self.series.get_or_insert(values, Counter::default)
    }

    pub fn inc(&self, values: [&str; N]) {
        self.with_labels(values).inc();
    }

    /// Current value; 0 for a label set never seen.
    pub fn get(&self, values: [&str; N]) -> u64 {
        let key: [String; N] = values.map(str::to_string);
        let read = self
            .series
            .by_labels
            .read()
            .unwrap_or_else(|e| e.into_inner());
        read.get(&key).map_or(0, |c| c.get())
    }
}

/// Histograms with `N` labels sharing one set of buckets, e.g. latency by route.
#[derive(Debug)]
pub struct HistogramVec<const N: usize> {
    labels: [&'static str; N],
    bounds: Arc<[f64]>,
    series: Series<Histogram, N>,
}

impl<const N: usize> HistogramVec<N> {
    pub fn with_labels(&self, values: [&str; N]) -> Arc<Histogram> {
        self.series
            .get_or_insert(values, || Histogram::with_bounds(Arc::clone(&self.bounds)))
    }

    pub fn observe(&self, values: [&str; N], value: f64) {
        self.with_labels(values).observe(value);
    }
}

// ---------------------------------------------------------------------------
// Registry
// ---------------------------------------------------------------------------

/// A value read at render time.
type ReadFn = Box<dyn Fn() -> f64 + Send + Sync>;

enum Metric {
    Counter(Arc<Counter>),
    Gauge(Arc<Gauge>),
    Histogram(Arc<Histogram>),
    /// Type-erased labelled families; each renders its own samples.
    Labelled(Arc<dyn RenderSeries>),
    CounterFn(ReadFn),
    GaugeFn(ReadFn),
    /// Constant labels with the value 1 (the `*_info` convention).
    Info(Vec<(&'static str, &'static str)>),
}

impl Metric {
    fn type_name(&self) -> &'static str {
        match self {
            Metric::Counter(_) | Metric::CounterFn(_) => "counter",
            Metric::Gauge(_) | Metric::GaugeFn(_) | Metric::Info(_) => "gauge",
            Metric::Histogram(_) => "histogram",
            Metric::Labelled(family) => family.type_name(),
        }
    }
}

trait RenderSeries: Send + Sync {
    fn type_name(&self) -> &'static str;
    fn render(&self, name: &str, out: &mut String);
}

impl<const N: usize> RenderSeries for CounterVec<N> {
    fn type_name(&self) -> &'static str {
        "counter"
    }

    fn render(&self, name: &str, out: &mut String) {
        for (values, counter) in self.series.snapshot() {
            let labels = label_pairs(&self.labels, &values);
            write_sample(out, name, &labels, counter.get() as f64);
        }
    }
}

impl<const N: usize> RenderSeries for HistogramVec<N> {
    fn type_name(&self) -> &'static str {
        "histogram"
    }

    fn render(&self, name: &str, out: &mut String) {
        for (values, histogram) in self.series.snapshot() {
            let labels = label_pairs(&self.labels, &values);
            write_histogram(out, name, &labels, &histogram);
        }
    }
}

struct Family {
    name: String,
    help: String,
    metric: Metric,
}

/// Metric families, rendered in registration order.
#[derive(Default)]
pub struct Registry {
    // Locked to register and to take a snapshot for rendering, never while updating a series.
    families: Mutex<Vec<Arc<Family>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.lock().iter().map(|f| f.name.clone()).collect();
        f.debug_struct("Registry")
            .field("families", &names)
            .finish()
    }
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Family>>> {
        self.families.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn register(&self, name: &str, help: &str, metric: Metric) -> Result<(), MetricsError> {
        if !valid_metric_name(name) {
            return Err(MetricsError::InvalidName(name.to_string()));
        }
        let mut families = self.lock();
        // Histograms also own `<name>_bucket`, `_sum` and `_count`; refuse names that would
        // produce samples of another family.
        let owned = |family: &Family| -> Vec<String> {
            let mut names = vec![family.name.clone()];
            if family.metric.type_name() == "histogram" {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.push(format!("{}{suffix}", family.name));
                }
            }
            names
        };
        let candidate = Family {
            name: name.to_string(),
            help: help.to_string(),
            metric,
        };
        let new_names = owned(&candidate);
        if families
            .iter()
            .any(|family| owned(family).iter().any(|n| new_names.contains(n)))
        {
            return Err(MetricsError::Duplicate(name.to_string()));
        }
        families.push(Arc::new(candidate));
        Ok(())
    }

    pub fn counter(&self, name: &str, help: &str) -> Result<Arc<Counter>, MetricsError> {
        let counter = Arc::new(Counter::default());
        self.register(name, help, Metric::Counter(Arc::clone(&counter)))?;
        Ok(counter)
    }

    pub fn gauge(&self, name: &str, help: &str) -> Result<Arc<Gauge>, MetricsError> {
        let gauge = Arc::new(Gauge::default());
        self.register(name, help, Metric::Gauge(Arc::clone(&gauge)))?;
        Ok(gauge)
    }

    pub fn counter_vec<const N: usize>(
        &self,
        name: &str,
        help: &str,
        labels: [&'static str; N],
    ) -> Result<Arc<CounterVec<N>>, MetricsError> {
        check_labels(&labels, false)?;
        let family = Arc::new(CounterVec {
            labels,
            series: Series::new(),
        });
        self.register(name, help, Metric::Labelled(family.clone()))?;
        Ok(family)
    }

    pub fn histogram(
        &self,
        name: &str,
        help: &str,
        buckets: &[f64],
    ) -> Result<Arc<Histogram>, MetricsError> {
        let histogram = Arc::new(Histogram::with_bounds(check_buckets(buckets)?));
        self.register(name, help, Metric::Histogram(Arc::clone(&histogram)))?;
        Ok(histogram)
    }

    pub fn histogram_vec<const N: usize>(
        &self,
        name: &str,
        help: &str,
        labels: [&'static str; N],
        buckets: &[f64],
    ) -> Result<Arc<HistogramVec<N>>, MetricsError> {
        check_labels(&labels, true)?;
        let family = Arc::new(HistogramVec {
            labels,
            bounds: check_buckets(buckets)?,
            series: Series::new(),
        });
        self.register(name, help, Metric::Labelled(family.clone()))?;
        Ok(family)
    }

    /// A gauge whose value `read` returns at render time (e.g. a queue depth).
    pub fn gauge_fn(
        &self,
        name: &str,
        help: &str,
        read: impl Fn() -> f64 + Send + Sync + 'static,
    ) -> Result<(), MetricsError> {
        self.register(name, help, Metric::GaugeFn(Box::new(read)))
    }

    /// A gauge of value 1 whose labels describe the process (a build, a configuration).
    pub fn info(
        &self,
        name: &str,
        help: &str,
        labels: &[(&'static str, &'static str)],
    ) -> Result<(), MetricsError> {
        let names: Vec<&'static str> = labels.iter().map(|(label, _)| *label).collect();
        check_labels(&names, false)?;
        self.register(name, help, Metric::Info(labels.to_vec()))
    }

    /// A counter kept elsewhere (an atomic in another module), read at render time.
    pub fn counter_fn(
        &self,
        name: &str,
        help: &str,
        read: impl Fn() -> f64 + Send + Sync + 'static,
    ) -> Result<(), MetricsError> {
        self.register(name, help, Metric::CounterFn(Box::new(read)))
    }

    /// The exposition text (`text/plain; version=0.0.4`).
    pub fn render(&self) -> String {
        // Snapshot the family list so render-time closures run without the registry lock.
        let families: Vec<Arc<Family>> = self.lock().clone();
        let mut out = String::with_capacity(families.len() * 128);
        for family in families {
            let name = family.name.as_str();
            let _ = writeln!(out, "# HELP {name} {}", escape_help(&family.help));
            let _ = writeln!(out, "# TYPE {name} {}", family.metric.type_name());
            match &family.metric {
                Metric::Counter(counter) => write_sample(&mut out, name, &[], counter.get() as f64),
                Metric::Gauge(gauge) => write_sample(&mut out, name, &[], gauge.get()),
                Metric::Histogram(histogram) => write_histogram(&mut out, name, &[], histogram),
                Metric::Labelled(series) => series.render(name, &mut out),
                Metric::CounterFn(read) | Metric::GaugeFn(read) => {
                    write_sample(&mut out, name, &[], read())
                }
                Metric::Info(labels) => write_sample(&mut out, name, labels, 1.0),
            }
        }
        out
    }
}

/// Content type of [`Registry::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn check_labels(labels: &[&str], histogram: bool) -> Result<(), MetricsError> {
    for (i, label) in labels.iter().enumerate() {
        let mut chars = label.chars();
        let valid = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
            // `__` names are reserved for Prometheus itself, `le` for histogram buckets.
            && !label.starts_with("__")
            && !(histogram && *label == "le")
            && !labels[..i].contains(label);
        if !valid {
            return Err(MetricsError::InvalidLabel(label.to_string()));
        }
    }
    Ok(())
}

fn check_buckets(buckets: &[f64]) -> Result<Arc<[f64]>, MetricsError> {
    let increasing = buckets.windows(2).all(|w| w[0] < w[1]);
    if !increasing || buckets.iter().any(|b| !b.is_finite()) {
        return Err(MetricsError::InvalidBuckets);
    }
    Ok(buckets.into())
}

fn label_pairs<'a, const N: usize>(
    names: &[&'static str; N],
    values: &'a [String; N],
) -> Vec<(&'static str, &'a str)> {
    names
        .iter()
        .copied()
        .zip(values.iter().map(String::as_str))
        .collect()
}

fn write_histogram(out: &mut String, name: &str, labels: &[(&str, &str)], histogram: &Histogram) {
    let bucket_name = format!("{name}_bucket");
    let buckets = histogram.cumulative();
    for (bound, count) in &buckets {
        let le = format_value(*bound);
        let mut with_le = labels.to_vec();
        with_le.push(("le", le.as_str()));
        write_sample(out, &bucket_name, &with_le, *count as f64);
    }
    // `_count` equals the `+Inf` bucket by construction, even while observations race.
    let count = buckets.last().map_or(0, |(_, count)| *count);
    write_sample(out, &format!("{name}_sum"), labels, histogram.sum());
    write_sample(out, &format!("{name}_count"), labels, count as f64);
}

fn write_sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (label, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{label}=\"{}\"", escape_label_value(value));
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(&format_value(value));
    out.push('\n');
}

/// Label values escape backslash, double quote and line feed.
fn escape_label_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// HELP text escapes backslash and line feed.
fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Prometheus spells infinities `+Inf`/`-Inf` and not-a-number `NaN`; Rust's `Display`
/// for finite floats (no exponent, shortest round-trip digits) is valid as is.
fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_string()
    } else if value == f64::INFINITY {
        "+Inf".to_string()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{value}")
    }
}

// ---------------------------------------------------------------------------
// The service's metrics
// ---------------------------------------------------------------------------

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

/// The service's metric set. Families are public for direct updates; the helpers cover the
/// common cases.
#[derive(Debug)]
pub struct ServiceMetrics {
    registry: Registry,
    /// `coverguard_http_requests_total{route, status}`.
    pub requests: Arc<CounterVec<2>>,
    /// `coverguard_verdicts_total{verdict}`.
    pub verdicts: Arc<CounterVec<1>>,
    /// `coverguard_errors_total{kind}`: error kinds answered to callers.
    pub errors: Arc<CounterVec<1>>,
    /// `coverguard_verdict_cache_hits_total`.
    pub cache_hits: Arc<Counter>,
    /// `coverguard_http_request_duration_seconds{route}`.
    pub request_latency: Arc<HistogramVec<1>>,
    /// `coverguard_inference_batch_duration_seconds`.
    pub inference_batch_seconds: Arc<Histogram>,
    /// `coverguard_inference_batch_size`.
    pub batch_size: Arc<Histogram>,
}

impl Default for ServiceMetrics {
    fn default() -> Self {
        ServiceMetrics::new()
    }
}

/// The built-in families. Their names and labels are constants checked by the unit tests,
/// so registering them cannot fail; the fallbacks below only keep that a non-panicking path.
impl ServiceMetrics {
    pub fn new() -> ServiceMetrics {
        let registry = Registry::new();
        let requests = registry
            .counter_vec(
                "coverguard_http_requests_total",
                "HTTP requests answered, by route template and status code.",
                ["route", "status"],
            )
            .unwrap_or_else(|_| unregistered_counter_vec(["route", "status"]));
        let verdicts = registry
            .counter_vec(
                "coverguard_verdicts_total",
                "Screening verdicts returned, by verdict.",
                ["verdict"],
            )
            .unwrap_or_else(|_| unregistered_counter_vec(["verdict"]));
        let errors = registry
            .counter_vec(
                "coverguard_errors_total",
                "Errors answered to callers, by error kind.",
                ["kind"],
            )
            .unwrap_or_else(|_| unregistered_counter_vec(["kind"]));
        let cache_hits = registry
            .counter(
                "coverguard_verdict_cache_hits_total",
                "Screenings answered from the verdict cache without inference.",
            )
            .unwrap_or_default();
        let request_latency = registry
            .histogram_vec(
                "coverguard_http_request_duration_seconds",
                "Time from request received to response ready, by route template.",
                ["route"],
                LATENCY_BUCKETS,
            )
            .unwrap_or_else(|_| {
                Arc::new(HistogramVec {
                    labels: ["route"],
                    bounds: LATENCY_BUCKETS.into(),
                    series: Series::new(),
                })
            });
        let inference_batch_seconds = registry
            .histogram(
                "coverguard_inference_batch_duration_seconds",
                "Wall time of one inference batch.",
                INFERENCE_BUCKETS,
            )
            .unwrap_or_else(|_| Arc::new(Histogram::with_bounds(INFERENCE_BUCKETS.into())));
        let batch_size = registry
            .histogram(
                "coverguard_inference_batch_size",
                "Images per inference batch.",
                BATCH_SIZE_BUCKETS,
            )
            .unwrap_or_else(|_| Arc::new(Histogram::with_bounds(BATCH_SIZE_BUCKETS.into())));
        let _ = registry.info(
            "coverguard_build_info",
            "How this binary was built: version, libjpeg-turbo SIMD on or off, profile.",
            &crate::build_info::labels(),
        );
        // Per process: a single-entry bank change must not move it (it is applied as a delta).
        let _ = registry.counter_fn(
            "coverguard_bank_index_rebuilds_total",
            "Full rebuilds of the bank index from a store snapshot.",
            || crate::matching::index::full_builds() as f64,
        );
        ServiceMetrics {
            registry,
            requests,
            verdicts,
            errors,
            cache_hits,
            request_latency,
            inference_batch_seconds,
            batch_size,
        }
    }

    /// The registry, to add more families (e.g. outbox counters via [`Registry::counter_fn`]).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Counts one answered request and its latency. `route` is the route template
    /// (`/v1/screenings/{id}`), never the raw path, so label sets stay few.
    pub fn observe_request(&self, route: &str, status: u16, elapsed: Duration) {
        let status = status.to_string();
        self.requests.inc([route, status.as_str()]);
        self.request_latency.observe([route], elapsed.as_secs_f64());
    }

    pub fn observe_verdict(&self, verdict: &str) {
        self.verdicts.inc([verdict]);
    }

    pub fn observe_error(&self, kind: &str) {
        self.errors.inc([kind]);
    }

    /// One inference batch of `size` images that took `elapsed`.
    pub fn observe_batch(&self, size: usize, elapsed: Duration) {
        self.batch_size.observe(size as f64);
        self.inference_batch_seconds.observe_duration(elapsed);
    }

    /// Renders `coverguard_inference_queue_depth` from `depth` at each scrape.
    pub fn watch_queue_depth(
        &self,
        depth: impl Fn() -> usize + Send + Sync + 'static,
    ) -> Result<(), MetricsError> {
        self.registry.gauge_fn(
            "coverguard_inference_queue_depth",
            "Inference requests waiting or running.",
            move || depth() as f64,
        )
    }

    /// Renders the scheduler's statistics at each scrape: queue depth (unless
    /// [`ServiceMetrics::watch_queue_depth`] registered it already, then `Duplicate`),
    /// refused requests, images, batches and total inference time. `read` returns `None`
    /// while no scheduler runs (before the model is loaded); the series then read 0.
    pub fn watch_scheduler(
        &self,
        read: impl Fn() -> Option<SchedulerReading> + Send + Sync + 'static,
    ) -> Result<(), MetricsError> {
        let read = Arc::new(read);
        let field = |pick: fn(&SchedulerReading) -> f64| {
            let read = Arc::clone(&read);
            move || read().as_ref().map_or(0.0, pick)
        };
        self.registry.gauge_fn(
            "coverguard_inference_queue_depth",
            "Inference requests waiting or running.",
            field(|r| r.queued as f64),
        )?;
        self.registry.counter_fn(
            "coverguard_inference_refused_total",
            "Inference requests refused because the queue was full.",
            field(|r| r.refused as f64),
        )?;
        self.registry.counter_fn(
            "coverguard_inference_images_total",
            "Images run through inference.",
            field(|r| r.images as f64),
        )?;
        self.registry.counter_fn(
            "coverguard_inference_inputs_total",
            "Model inputs run through inference: each image, and each further frame or rendering of it.",
            field(|r| r.inputs as f64),
        )?;
        self.registry.counter_fn(
            "coverguard_inference_batches_total",
            "Inference batches run.",
            field(|r| r.batches as f64),
        )?;
        self.registry.counter_fn(
            "coverguard_inference_seconds_total",
            "Total wall time spent in inference.",
            field(|r| r.inference_seconds),
        )?;
        self.registry.counter_fn(
            "coverguard_ocr_images_total",
            "Images whose words were read (with OCR on), each with its frames and renderings.",
            field(|r| r.ocr_images as f64),
        )?;
        self.registry.counter_fn(
            "coverguard_ocr_read_in_full_total",
            "Images the text gate passed to the full reading (the rest showed no text).",
            field(|r| r.ocr_read_in_full as f64),
        )?;
        self.registry.counter_fn(
            "coverguard_ocr_seconds_total",
            "Total wall time spent reading the words in images.",
            field(|r| r.ocr_seconds),
        )
    }

    pub fn render(&self) -> String {
        self.registry.render()
    }
}

fn unregistered_counter_vec<const N: usize>(labels: [&'static str; N]) -> Arc<CounterVec<N>> {
    Arc::new(CounterVec {
        labels,
        series: Series::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// One parsed sample line.
    #[derive(Debug, Clone, PartialEq)]
    struct Sample {
        name: String,
        labels: Vec<(String, String)>,
        value: f64,
    }

    #[derive(Debug, Default)]
    struct Exposition {
        help: HashMap<String, String>,
        types: HashMap<String, String>,
        samples: Vec<Sample>,
    }

    impl Exposition {
        fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
            self.samples
                .iter()
                .find(|s| {
                    s.name == name
                        && s.labels.len() == labels.len()
                        && labels
                            .iter()
                            .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
                })
                .map(|s| s.value)
        }

        /// `(le, cumulative count)` of one histogram series, checked for shape.
        fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> (Vec<(f64, f64)>, f64, f64) {
            let bucket_name = format!("{name}_bucket");
            let buckets: Vec<(f64, f64)> = self
                .samples
                .iter()
                .filter(|s| {
                    s.name == bucket_name
                        && labels
                            .iter()
                            .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
                })
                .map(|s| {
                    let le = &s
                        .labels
                        .iter()
                        .find(|(k, _)| k == "le")
                        .expect("le label")
                        .1;
                    (parse_value(le).expect("le parses"), s.value)
                })
                .collect();
            assert!(!buckets.is_empty(), "{name} has buckets");
            assert!(buckets.windows(2).all(|w| w[0].0 < w[1].0), "le ascending");
            assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "cumulative");
            assert_eq!(buckets.last().unwrap().0, f64::INFINITY, "ends with +Inf");
            let sum = self.value(&format!("{name}_sum"), labels).expect("_sum");
            let count = self
                .value(&format!("{name}_count"), labels)
                .expect("_count");
            assert_eq!(
                buckets.last().unwrap().1,
                count,
                "+Inf bucket equals _count"
            );
            (buckets, sum, count)
        }
    }

    fn valid_name(name: &str, extra: &str) -> bool {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || extra.contains(c))
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(c))
    }

    fn parse_value(text: &str) -> Result<f64, String> {
        match text {
            "+Inf" => Ok(f64::INFINITY),
            "-Inf" => Ok(f64::NEG_INFINITY),
            "NaN" => Ok(f64::NAN),
            other => other
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("bad value {other:?}")),
        }
    }

    /// A strict reading of the text format: every line is a HELP, a TYPE or a sample; a
    /// family's TYPE precedes its samples, which are contiguous; label values unescape.
    fn parse(text: &str) -> Result<Exposition, String> {
        if !text.is_empty() && !text.ends_with('\n') {
            return Err("missing final line feed".into());
        }
        let mut parsed = Exposition::default();
        let mut current_family: Option<String> = None;
        let mut finished: HashSet<String> = HashSet::new();
        let mut series_seen: HashSet<String> = HashSet::new();
        for (number, line) in text.lines().enumerate() {
            let fail = |why: &str| format!("line {}: {why}: {line:?}", number + 1);
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').ok_or_else(|| fail("HELP"))?;
                if !valid_name(name, ":") || parsed.help.contains_key(name) {
                    return Err(fail("HELP name"));
                }
                let help = help.replace("\\n", "\n").replace("\\\\", "\\");
                parsed.help.insert(name.to_string(), help);
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').ok_or_else(|| fail("TYPE"))?;
                if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind)
                    || parsed.types.contains_key(name)
                {
                    return Err(fail("TYPE"));
                }
                parsed.types.insert(name.to_string(), kind.to_string());
            } else if line.starts_with('#') || line.trim().is_empty() {
                continue;
            } else {
                let sample = parse_sample(line).map_err(|e| fail(&e))?;
                let family = if parsed.types.contains_key(&sample.name) {
                    sample.name.clone()
                } else {
                    ["_bucket", "_sum", "_count"]
                        .iter()
                        .filter_map(|suffix| sample.name.strip_suffix(suffix))
                        .find(|base| {
                            parsed.types.get(*base).map(String::as_str) == Some("histogram")
                        })
                        .map(str::to_string)
                        .ok_or_else(|| fail("sample without TYPE"))?
                };
                if current_family.as_deref() != Some(family.as_str()) {
                    if finished.contains(&family) {
                        return Err(fail("family samples not contiguous"));
                    }
                    if let Some(previous) = current_family.replace(family.clone()) {
                        finished.insert(previous);
                    }
                }
                let mut key = sample.labels.clone();
                key.sort();
                if !series_seen.insert(format!("{}{key:?}", sample.name)) {
                    return Err(fail("duplicate series"));
                }
                if sample.name.ends_with("_bucket")
                    && family != sample.name
                    && !sample.labels.iter().any(|(k, _)| k == "le")
                {
                    return Err(fail("bucket without le"));
                }
                parsed.samples.push(sample);
            }
        }
        Ok(parsed)
    }

    fn parse_sample(line: &str) -> Result<Sample, String> {
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| "no value".to_string())?;
        let name = &line[..name_end];
        if !valid_name(name, ":") {
            return Err(format!("bad metric name {name:?}"));
        }
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(mut inner) = rest.strip_prefix('{') {
            loop {
                if let Some(after) = inner.strip_prefix('}') {
                    rest = after;
                    break;
                }
                let eq = inner.find('=').ok_or("label without =")?;
                let label = &inner[..eq];
                if !valid_name(label, "") {
                    return Err(format!("bad label name {label:?}"));
                }
                let mut chars = inner[eq + 1..].char_indices();
                if chars.next().map(|(_, c)| c) != Some('"') {
                    return Err("label value not quoted".into());
                }
                let mut value = String::new();
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => match chars.next().map(|(_, c)| c) {
                            Some('\\') => value.push('\\'),
                            Some('"') => value.push('"'),
                            Some('n') => value.push('\n'),
                            other => return Err(format!("bad escape {other:?}")),
                        },
                        '"' => {
                            end = Some(eq + 1 + i + 1);
                            break;
                        }
                        '\n' => return Err("raw line feed in label value".into()),
                        c => value.push(c),
                    }
                }
                let end = end.ok_or("unterminated label value")?;
                labels.push((label.to_string(), value));
                inner = &inner[end..];
                inner = inner.strip_prefix(',').unwrap_or(inner);
            }
        }
        let mut fields = rest
            .strip_prefix(' ')
            .ok_or("no space before value")?
            .split(' ');
        let value = parse_value(fields.next().ok_or("no value")?)?;
        if let Some(timestamp) = fields.next() {
            timestamp
                .parse::<i64>()
                .map_err(|_| "bad timestamp".to_string())?;
        }
        if fields.next().is_some() {
            return Err("trailing fields".into());
        }
        Ok(Sample {
            name: name.to_string(),
            labels,
            value,
        })
    }

    #[test]
    fn info_renders_its_labels_with_the_value_one() {
        let registry = Registry::new();
        registry
            .info(
                "test_build_info",
                "Build.",
                &[("version", "1.2"), ("simd", "on")],
            )
            .unwrap();
        let text = registry.render();
        assert!(text.contains("# TYPE test_build_info gauge\n"), "{text}");
        let parsed = parse(&text).unwrap();
        assert_eq!(
            parsed.value("test_build_info", &[("version", "1.2"), ("simd", "on")]),
            Some(1.0)
        );
        assert_eq!(
            registry.info("test_build_info", "Again.", &[]),
            Err(MetricsError::Duplicate("test_build_info".into()))
        );
        assert!(matches!(
            registry.info("test_bad_info", "Bad label.", &[("1x", "v")]),
            Err(MetricsError::InvalidLabel(_))
        ));
    }

    #[test]
    fn counts_and_buckets_are_right() {
        let registry = Registry::new();
        let histogram = registry
            .histogram("test_seconds", "Test latency.", &[1.0, 2.0, 5.0])
            .unwrap();
        for value in [0.5, 1.0, 1.5, 5.0, 7.0, f64::NAN] {
            histogram.observe(value);
        }
        let counter = registry.counter("test_events_total", "Events.").unwrap();
        counter.inc();
        counter.inc_by(4);
        let by_kind = registry
            .counter_vec("test_errors_total", "Errors by kind.", ["kind"])
            .unwrap();
        by_kind.inc(["timeout"]);
        by_kind.inc(["timeout"]);
        by_kind.inc(["decode"]);
        let parsed = parse(&registry.render()).unwrap();

        let (buckets, sum, count) = parsed.histogram("test_seconds", &[]);
        // Bounds are inclusive: 1.0 lands in le="1", and NaN was not counted.
        assert_eq!(
            buckets,
            [(1.0, 2.0), (2.0, 3.0), (5.0, 4.0), (f64::INFINITY, 5.0)]
        );
        assert_eq!((sum, count), (15.0, 5.0));
        assert_eq!(parsed.value("test_events_total", &[]), Some(5.0));
        assert_eq!(
            parsed.value("test_errors_total", &[("kind", "timeout")]),
            Some(2.0)
        );
        assert_eq!(
            parsed.value("test_errors_total", &[("kind", "decode")]),
            Some(1.0)
        );
        assert_eq!(parsed.types["test_seconds"], "histogram");
        assert_eq!(parsed.types["test_events_total"], "counter");
        assert_eq!(parsed.help["test_errors_total"], "Errors by kind.");
        assert_eq!(by_kind.get(["timeout"]), 2);
        assert_eq!(by_kind.get(["never"]), 0);
    }

    #[test]
    fn the_service_set_renders_valid_exposition_text() {
        let metrics = ServiceMetrics::new();
        let stats = Arc::new(SchedulerStats::default());
        let watched = Arc::clone(&stats);
        metrics
            .watch_scheduler(move || Some(SchedulerReading::from(&*watched)))
            .unwrap();

        // Families with no series yet still render their HELP and TYPE and parse.
        let empty = parse(&metrics.render()).unwrap();
        assert_eq!(empty.types["coverguard_http_requests_total"], "counter");
        assert_eq!(
            empty.types["coverguard_http_request_duration_seconds"],
            "histogram"
        );
        assert_eq!(
            empty.value("coverguard_inference_queue_depth", &[]),
            Some(0.0)
        );

        metrics.observe_request("/v1/screen", 200, Duration::from_millis(30));
        metrics.observe_request("/v1/screen", 200, Duration::from_millis(700));
        metrics.observe_request("/v1/screen", 429, Duration::from_micros(300));
        metrics.observe_request("/v1/screenings/{id}", 404, Duration::from_millis(2));
        metrics.observe_verdict("allow");
        metrics.observe_verdict("allow");
        metrics.observe_verdict("block");
        metrics.observe_error("overloaded");
        metrics.cache_hits.inc();
        metrics.observe_batch(3, Duration::from_millis(40));
        metrics.observe_batch(8, Duration::from_millis(120));
        stats.queued.store(5, Ordering::Relaxed);
        stats.refused.store(2, Ordering::Relaxed);
        stats.inference_micros.store(1_500_000, Ordering::Relaxed);
        stats.ocr_images.store(3, Ordering::Relaxed);
        stats.ocr_read_in_full.store(1, Ordering::Relaxed);
        stats.ocr_micros.store(250_000, Ordering::Relaxed);

        let text = metrics.render();
        let parsed = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let requests = "coverguard_http_requests_total";
        assert_eq!(
            parsed.value(requests, &[("route", "/v1/screen"), ("status", "200")]),
            Some(2.0)
        );
        assert_eq!(
            parsed.value(requests, &[("route", "/v1/screen"), ("status", "429")]),
            Some(1.0)
        );
        assert_eq!(
            parsed.value(
                requests,
                &[("route", "/v1/screenings/{id}"), ("status", "404")]
            ),
            Some(1.0)
        );
        assert_eq!(
            parsed.value("coverguard_verdicts_total", &[("verdict", "allow")]),
            Some(2.0)
        );
        assert_eq!(
            parsed.value("coverguard_errors_total", &[("kind", "overloaded")]),
            Some(1.0)
        );
        assert_eq!(
            parsed.value("coverguard_verdict_cache_hits_total", &[]),
            Some(1.0)
        );
        let (buckets, _, count) = parsed.histogram(
            "coverguard_http_request_duration_seconds",
            &[("route", "/v1/screen")],
        );
        assert_eq!(count, 3.0);
        let at = |le: f64| buckets.iter().find(|(b, _)| *b == le).unwrap().1;
        assert_eq!(
            (at(0.005), at(0.05), at(0.5), at(1.0)),
            (1.0, 2.0, 2.0, 3.0)
        );
        let (buckets, sum, count) = parsed.histogram("coverguard_inference_batch_size", &[]);
        assert_eq!((sum, count), (11.0, 2.0));
        let at = |le: f64| buckets.iter().find(|(b, _)| *b == le).unwrap().1;
        assert_eq!((at(2.0), at(4.0), at(8.0)), (0.0, 1.0, 2.0));
        let (_, sum, count) = parsed.histogram("coverguard_inference_batch_duration_seconds", &[]);
        assert_eq!(count, 2.0);
        assert!((sum - 0.16).abs() < 1e-9, "{sum}");
        // Read at render time.
        assert_eq!(
            parsed.value("coverguard_inference_queue_depth", &[]),
            Some(5.0)
        );
        assert_eq!(
            parsed.value("coverguard_inference_refused_total", &[]),
            Some(2.0)
        );
        assert_eq!(
            parsed.value("coverguard_inference_seconds_total", &[]),
            Some(1.5)
        );
        assert_eq!(parsed.value("coverguard_ocr_images_total", &[]), Some(3.0));
        assert_eq!(
            parsed.value("coverguard_ocr_read_in_full_total", &[]),
            Some(1.0)
        );
        assert_eq!(
            parsed.value("coverguard_ocr_seconds_total", &[]),
            Some(0.25)
        );
        stats.queued.store(1, Ordering::Relaxed);
        let again = parse(&metrics.render()).unwrap();
        assert_eq!(
            again.value("coverguard_inference_queue_depth", &[]),
            Some(1.0)
        );
        // Stable output: same state, same text.
        assert_eq!(metrics.render(), metrics.render());
    }

    #[test]
    fn queue_depth_from_a_closure_and_absent_scheduler() {
        let metrics = ServiceMetrics::new();
        let depth = Arc::new(std::sync::atomic::AtomicUsize::new(7));
        let read = Arc::clone(&depth);
        metrics
            .watch_queue_depth(move || read.load(Ordering::Relaxed))
            .unwrap();
        assert_eq!(
            parse(&metrics.render())
                .unwrap()
                .value("coverguard_inference_queue_depth", &[]),
            Some(7.0)
        );
        // The depth is already watched; the scheduler set would render it twice.
        assert_eq!(
            metrics.watch_scheduler(|| None).unwrap_err(),
            MetricsError::Duplicate("coverguard_inference_queue_depth".into())
        );

        let without_scheduler = ServiceMetrics::new();
        without_scheduler.watch_scheduler(|| None).unwrap();
        let parsed = parse(&without_scheduler.render()).unwrap();
        assert_eq!(
            parsed.value("coverguard_inference_batches_total", &[]),
            Some(0.0)
        );
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let registry = Registry::new();
        let family = registry
            .counter_vec(
                "test_odd_total",
                "Help with a \\ backslash\nand a second line.",
                ["kind", "route"],
            )
            .unwrap();
        let odd = "quote \" backslash \\ newline \n end";
        family.inc([odd, "/ünïcode/{id}"]);
        family.inc(["plain", ""]);
        let text = registry.render();
        assert!(
            text.contains(r#"kind="quote \" backslash \\ newline \n end""#),
            "{text}"
        );
        assert!(
            text.contains(r"# HELP test_odd_total Help with a \\ backslash\nand a second line.")
        );
        assert_eq!(text.lines().count(), 4, "no raw line feeds leak: {text}");
        let parsed = parse(&text).unwrap();
        assert_eq!(
            parsed.value(
                "test_odd_total",
                &[("kind", odd), ("route", "/ünïcode/{id}")]
            ),
            Some(1.0)
        );
        assert_eq!(
            parsed.value("test_odd_total", &[("kind", "plain"), ("route", "")]),
            Some(1.0)
        );
        assert_eq!(
            parsed.help["test_odd_total"],
            "Help with a \\ backslash\nand a second line."
        );
    }

    #[test]
    fn special_values_render_in_prometheus_spelling() {
        let registry = Registry::new();
        let gauge = registry.gauge("test_level", "A level.").unwrap();
        for (value, text) in [
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (0.1, "0.1"),
            (1e-7, "0.0000001"),
            (-3.0, "-3"),
        ] {
            gauge.set(value);
            let rendered = registry.render();
            assert!(
                rendered.ends_with(&format!("test_level {text}\n")),
                "{rendered}"
            );
            parse(&rendered).unwrap();
        }
    }

    #[test]
    fn bad_names_labels_buckets_and_duplicates_are_refused() {
        let registry = Registry::new();
        assert_eq!(
            registry
                .counter("1starts_with_digit", "x")
                .unwrap_err()
                .kind(),
            "invalid_name"
        );
        assert_eq!(
            registry.counter("has-dash", "x").unwrap_err().kind(),
            "invalid_name"
        );
        assert_eq!(
            registry.counter("", "x").unwrap_err().kind(),
            "invalid_name"
        );
        for labels in [["__reserved"], ["with space"], ["9digit"]] {
            assert_eq!(
                registry
                    .counter_vec("test_a_total", "x", labels)
                    .unwrap_err()
                    .kind(),
                "invalid_label"
            );
        }
        assert_eq!(
            registry
                .counter_vec("test_a_total", "x", ["same", "same"])
                .unwrap_err()
                .kind(),
            "invalid_label"
        );
        assert_eq!(
            registry
                .histogram_vec("test_h", "x", ["le"], &[1.0])
                .unwrap_err()
                .kind(),
            "invalid_label"
        );
        for buckets in [
            &[2.0, 1.0][..],
            &[1.0, 1.0],
            &[1.0, f64::INFINITY],
            &[f64::NAN],
        ] {
            assert_eq!(
                registry.histogram("test_h", "x", buckets).unwrap_err(),
                MetricsError::InvalidBuckets
            );
        }
        registry.histogram("test_h", "x", &[]).unwrap();
        assert_eq!(
            registry.counter("test_h", "x").unwrap_err().kind(),
            "duplicate"
        );
        // `test_h_count` is a sample of the histogram already.
        assert_eq!(
            registry.gauge("test_h_count", "x").unwrap_err().kind(),
            "duplicate"
        );
        registry.counter("test_b_sum", "x").unwrap();
        assert_eq!(
            registry
                .histogram("test_b", "x", &[1.0])
                .unwrap_err()
                .kind(),
            "duplicate"
        );
        // A histogram with no bounds has only +Inf and still parses.
        let parsed = parse(&registry.render()).unwrap();
        assert_eq!(parsed.histogram("test_h", &[]).0, [(f64::INFINITY, 0.0)]);
    }

    #[test]
    fn concurrent_updates_are_all_counted() {
        let metrics = Arc::new(ServiceMetrics::new());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let metrics = Arc::clone(&metrics);
                std::thread::spawn(move || {
                    let route = if t % 2 == 0 { "/v1/screen" } else { "/healthz" };
                    for i in 0..1000 {
                        metrics.observe_request(route, 200, Duration::from_millis(i % 50));
                        metrics.observe_batch(1 + (i % 8) as usize, Duration::from_millis(10));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let parsed = parse(&metrics.render()).unwrap();
        for route in ["/v1/screen", "/healthz"] {
            assert_eq!(
                parsed.value(
                    "coverguard_http_requests_total",
                    &[("route", route), ("status", "200")]
                ),
                Some(4000.0)
            );
            let (_, _, count) = parsed.histogram(
                "coverguard_http_request_duration_seconds",
                &[("route", route)],
            );
            assert_eq!(count, 4000.0);
        }
        let (_, sum, count) = parsed.histogram("coverguard_inference_batch_size", &[]);
        assert_eq!((sum, count), (8.0 * 4500.0, 8000.0));
    }

    #[test]
    fn the_parser_rejects_what_prometheus_would() {
        for bad in [
            "# TYPE x counter\nx 1",              // no final line feed
            "x 1\n",                              // no TYPE
            "# TYPE x counter\nx{a=\"b} 1\n",     // unterminated value
            "# TYPE x counter\nx{a=\"\\q\"} 1\n", // bad escape
            "# TYPE x counter\nx one\n",          // bad value
            "# TYPE x counter\n# TYPE y gauge\nx 1\ny 1\nx{a=\"1\"} 2\n", // split family
            "# TYPE x counter\nx 1\nx 2\n",       // duplicate series
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
