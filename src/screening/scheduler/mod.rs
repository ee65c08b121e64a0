//! Inference scheduler: a bounded queue in front of a fixed set of detectors.
//!
//! Each worker thread owns one [`Detector`] (`Session::run` takes `&mut self`), and
//! with OCR on its own [`OcrEngine`]. An image's classification and its reading are
//! two pieces of work in one queue (`queue.rs`): any free worker takes either, so an
//! idle service runs the two at once and a busy one keeps every worker on whatever
//! waits longest.
//!
//! Batches form without a linger timer: a worker blocks for one request, then takes
//! the other classifications already queued, up to `max_batch` model inputs (an image
//! brings its views). Under light load a request runs alone at once; under heavy load
//! batches grow while the workers are busy. When `queue_capacity` requests are waiting, new ones are refused at
//! once ([`SchedulerError::Overloaded`], a 429 to HTTP callers) instead of piling up.

mod queue;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::classify::{ClassifyError, Detection, Detector, RgbView};
use crate::screening::analyse::{Analysed, ImageDetections};
use crate::text::ocr::{Depth, OcrEngine, OcrLine};
use queue::{Queued, WorkQueue};

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("inference queue is full ({capacity} waiting); retry later")]
    Overloaded { capacity: usize },
    #[error("inference scheduler is shut down")]
    Shutdown,
    #[error(transparent)]
    Classify(#[from] ClassifyError),
}

/// Scheduler sizing.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerConfig {
    /// Worker threads, each with its own session (default: one per core).
    pub workers: usize,
    /// Largest batch one inference call takes.
    pub max_batch: usize,
    /// Requests allowed to wait (queued or running) before new ones are refused.
    pub queue_capacity: usize,
    /// Pin worker `i` to the `i`-th CPU this process may run on (Linux). Off by default:
    /// side by side it gave +6% images/s at 640 px, -3% at 3000 px and the same p99
    /// (README: Performance).
    pub pin_workers: bool,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            // One single-threaded session per core: side by side with one session on
            // two threads (scripts/compare), it gave 28% more images/s and a lower p99
            // (19.8 vs 33.5 ms at 640 px), for a higher p50 (16.2 vs 12.9 ms).
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_batch: 8,
            queue_capacity: 64,
            pin_workers: false,
        }
    }
}

/// One stage of one image's inference.
enum Job {
    /// The detections in each model input ([`Analysed::model_inputs`]).
    Classify(Pending<Vec<Vec<Detection>>>),
    /// The words in the image and its views, read to that depth.
    Read(Pending<Vec<OcrLine>>, Depth),
}

/// A stage waiting for its answer, holding the request's place in the queue until the
/// last of its stages is answered.
struct Pending<T> {
    image: Arc<Analysed>,
    reply: oneshot::Sender<Result<T, SchedulerError>>,
    place: Arc<OwnedSemaphorePermit>,
}

impl<T> Pending<T> {
    fn answer(self, answer: Result<T, SchedulerError>) {
        // Free the queue slot (when this was the image's last stage) before the caller
        // wakes, so depth is exact.
        drop(self.place);
        let _ = self.reply.send(answer);
    }

    /// The caller gave up (its deadline passed) and dropped its receiver.
    fn abandoned(&self) -> bool {
        self.reply.is_closed()
    }
}

impl Queued for Job {
    fn batch_inputs(&self) -> Option<usize> {
        match self {
            Job::Classify(pending) => Some(pending.image.model_input_count()),
            Job::Read(..) => None,
        }
    }
}

/// Closes the queue when the last handle on the scheduler is dropped, so the workers
/// finish what is queued and stop.
struct CloseOnDrop(Arc<WorkQueue<Job>>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// A request's place in the queue, from admission until its answer (or until it is
/// dropped, when the request needed no inference).
pub struct Admission {
    permit: OwnedSemaphorePermit,
}

/// Called after every inference batch with its size and wall time.
pub type BatchObserver = Arc<dyn Fn(usize, Duration) + Send + Sync>;

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct SchedulerStats {
    /// Stages waiting for a worker: each image's classification and, with OCR on, its
    /// reading.
    pub queued: AtomicUsize,
    pub batches: AtomicU64,
    /// Images classified (each with its views).
    pub images: AtomicU64,
    /// Model inputs classified: each image's reference decoding and every view of it.
    pub inputs: AtomicU64,
    pub refused: AtomicU64,
    /// Total inference wall time, microseconds.
    pub inference_micros: AtomicU64,
    /// Images whose words were read, and the wall time spent reading them, microseconds.
    pub ocr_images: AtomicU64,
    pub ocr_micros: AtomicU64,
    /// Images the text gate passed to the full reading.
    pub ocr_read_in_full: AtomicU64,
    /// Count of batches by size (index = size - 1).
    pub batch_sizes: Vec<AtomicU64>,
}

/// What one worker thread owns.
pub struct Worker {
    pub detector: Detector,
    /// Reads the words of images; `None` with OCR off.
    pub ocr: Option<OcrEngine>,
}

impl From<Detector> for Worker {
    fn from(detector: Detector) -> Worker {
        Worker {
            detector,
            ocr: None,
        }
    }
}

/// Handle to the scheduler; clone freely.
#[derive(Clone)]
pub struct Scheduler {
    queue: Arc<WorkQueue<Job>>,
    _open: Arc<CloseOnDrop>,
    permits: Arc<Semaphore>,
    capacity: usize,
    stats: Arc<SchedulerStats>,
    model_id: Arc<str>,
    /// The OCR's id as configured, and read in full ([`OcrEngine::id_at`]).
    ocr_id: Option<(Arc<str>, Arc<str>)>,
    workers: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Scheduler {
    /// Start one worker per detector.
    pub fn start(detectors: Vec<Detector>, config: &SchedulerConfig) -> Scheduler {
        let workers = detectors.into_iter().map(Worker::from).collect();
        Scheduler::start_observed(workers, config, Arc::new(|_, _| {}))
    }

    /// [`Scheduler::start`], calling `observe(batch size, inference time)` after every batch
    /// (the service feeds its histograms from it).
    pub fn start_observed(
        workers: Vec<Worker>,
        config: &SchedulerConfig,
        observe: BatchObserver,
    ) -> Scheduler {
        assert!(!workers.is_empty(), "a scheduler needs at least one worker");
        let max_batch = config.max_batch.max(1);
        let model_id: Arc<str> = workers[0].detector.model_id().into();
        let ocr_id = workers[0].ocr.as_ref().map(|o| {
            (
                Arc::from(o.id_at(Depth::AsConfigured)),
                Arc::from(o.id_at(Depth::InFull)),
            )
        });
        let queue = Arc::new(WorkQueue::default());
        let stats = Arc::new(SchedulerStats {
            batch_sizes: (0..max_batch).map(|_| AtomicU64::new(0)).collect(),
            ..Default::default()
        });
        let cpus = if config.pin_workers {
            allowed_cpus()
        } else {
            Vec::new()
        };
        let workers = workers
            .into_iter()
            .enumerate()
            .map(|(i, worker)| {
                let queue = Arc::clone(&queue);
                let stats = Arc::clone(&stats);
                let observe = Arc::clone(&observe);
                let cpu = (!cpus.is_empty()).then(|| cpus[i % cpus.len()]);
                std::thread::Builder::new()
                    .name(format!("coverguard-infer-{i}"))
                    .spawn(move || {
                        if let Some(cpu) = cpu {
                            pin_current_thread(cpu);
                        }
                        worker_loop(worker, &queue, &stats, &*observe, max_batch)
                    })
                    .expect("spawn inference worker")
            })
            .collect();
        Scheduler {
            _open: Arc::new(CloseOnDrop(Arc::clone(&queue))),
            queue,
            permits: Arc::new(Semaphore::new(config.queue_capacity.max(1))),
            capacity: config.queue_capacity.max(1),
            stats,
            model_id,
            ocr_id,
            workers: Arc::new(Mutex::new(workers)),
        }
    }

    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// The OCR an image is read with at `depth` ([`OcrEngine::id_at`]); `None` with OCR
    /// off.
    pub fn ocr_id(&self, depth: Depth) -> Option<&str> {
        self.ocr_id
            .as_ref()
            .map(|(configured, in_full)| match depth {
                Depth::AsConfigured => &**configured,
                Depth::InFull => &**in_full,
            })
    }

    pub fn stats(&self) -> &SchedulerStats {
        &self.stats
    }

    /// A shared handle on the counters, for readers that outlive a borrow (metrics).
    pub fn stats_handle(&self) -> Arc<SchedulerStats> {
        Arc::clone(&self.stats)
    }

    /// Requests waiting or running now.
    pub fn depth(&self) -> usize {
        self.capacity - self.permits.available_permits()
    }

    /// A place in the queue, refused at once when the queue is full. Callers take it
    /// before they spend anything on a request (decoding, hashing), so that under
    /// overload a refusal costs nothing and accepted work is not starved by refused work.
    pub fn admit(&self) -> Result<Admission, SchedulerError> {
        let permit = Arc::clone(&self.permits)
            .try_acquire_owned()
            .map_err(|_| self.refuse())?;
        Ok(Admission { permit })
    }

    /// Refuses at once when the queue is full, taking no place: for the edge of the
    /// service, before any other work (even the token lookup) is spent on a request
    /// that would be refused anyway. [`Scheduler::admit`] still decides.
    pub fn shed_if_full(&self) -> Result<(), SchedulerError> {
        if self.permits.available_permits() == 0 {
            return Err(self.refuse());
        }
        Ok(())
    }

    /// Counts a refusal and names it.
    fn refuse(&self) -> SchedulerError {
        self.stats.refused.fetch_add(1, Ordering::Relaxed);
        SchedulerError::Overloaded {
            capacity: self.capacity,
        }
    }

    /// Queue one image (its reference decoding and every view) for inference, its words
    /// read to `depth`; refused at once when the queue is full.
    pub async fn classify(
        &self,
        image: Arc<Analysed>,
        depth: Depth,
    ) -> Result<ImageDetections, SchedulerError> {
        let admission = self.admit()?;
        self.classify_admitted(admission, image, depth).await
    }

    /// Queue one image for inference under a place already taken with [`Scheduler::admit`].
    pub async fn classify_admitted(
        &self,
        admission: Admission,
        image: Arc<Analysed>,
        depth: Depth,
    ) -> Result<ImageDetections, SchedulerError> {
        let place = Arc::new(admission.permit);
        let (classified, detections) = oneshot::channel();
        let mut stages = vec![Job::Classify(Pending {
            image: Arc::clone(&image),
            reply: classified,
            place: Arc::clone(&place),
        })];
        let words = self.ocr_id.is_some().then(|| {
            let (read, words) = oneshot::channel();
            stages.push(Job::Read(
                Pending {
                    image,
                    reply: read,
                    place: Arc::clone(&place),
                },
                depth,
            ));
            words
        });
        // The place is held by the stages alone, and freed with the last of them.
        drop(place);
        let count = stages.len();
        self.stats.queued.fetch_add(count, Ordering::Relaxed);
        if self.queue.push(stages).is_err() {
            self.stats.queued.fetch_sub(count, Ordering::Relaxed);
            return Err(SchedulerError::Shutdown);
        }
        let per_input = detections.await.map_err(|_| SchedulerError::Shutdown)??;
        let mut detections = ImageDetections::from_inputs(per_input);
        if let Some(words) = words {
            detections.ocr = words.await.map_err(|_| SchedulerError::Shutdown)??;
        }
        Ok(detections)
    }

    /// Stop accepting work and wait for the workers to finish what is queued (once every
    /// other handle on the scheduler is dropped too).
    pub fn shutdown(self) {
        let workers = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|e| e.into_inner()));
        drop(self);
        for w in workers {
            let _ = w.join();
        }
    }
}

/// The CPUs this process may run on (its affinity mask); empty where unknown.
fn allowed_cpus() -> Vec<usize> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: a zeroed cpu_set_t is a valid empty set, filled in by the kernel.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: `set` is a live cpu_set_t of `size` bytes.
        if unsafe { libc::sched_getaffinity(0, size, &mut set) } == 0 {
            // SAFETY: CPU_ISSET reads the set within its bounds.
            return (0..libc::CPU_SETSIZE as usize)
                .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
                .collect();
        }
    }
    Vec::new()
}

/// Pins the calling thread to `cpu`; a failure is logged and the thread runs unpinned.
fn pin_current_thread(cpu: usize) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET stays within it.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        unsafe { libc::CPU_SET(cpu, &mut set) };
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: `set` is a live cpu_set_t of `size` bytes; 0 is the calling thread.
        if unsafe { libc::sched_setaffinity(0, size, &set) } != 0 {
            tracing::warn!(cpu, error = %std::io::Error::last_os_error(), "could not pin an inference worker");
        }
    }
    #[cfg(not(target_os = "linux"))]
    tracing::warn!(cpu, "pinning inference workers is supported on Linux only");
}

fn worker_loop(
    Worker {
        mut detector,
        mut ocr,
    }: Worker,
    queue: &WorkQueue<Job>,
    stats: &SchedulerStats,
    observe: &(dyn Fn(usize, Duration) + Send + Sync),
    max_batch: usize,
) {
    while let Some(jobs) = queue.take(max_batch) {
        stats.queued.fetch_sub(jobs.len(), Ordering::Relaxed);
        let mut batch = Vec::new();
        for job in jobs {
            match job {
                Job::Classify(pending) if !pending.abandoned() => batch.push(pending),
                Job::Read(pending, depth) if !pending.abandoned() => {
                    let answer = match ocr.as_mut() {
                        Some(engine) => read_words(engine, &pending.image, depth, stats),
                        None => Err(ClassifyError::Inference(
                            "this worker has no OCR to read the words with".into(),
                        )
                        .into()),
                    };
                    pending.answer(answer);
                }
                Job::Classify(_) | Job::Read(..) => {}
            }
        }
        if !batch.is_empty() {
            classify_batch(&mut detector, batch, stats, observe, max_batch);
        }
    }
}

/// Classifies every model input of a batch of images and answers each image with its
/// inputs' detections; a failure (or a panic) fails the whole batch.
fn classify_batch(
    detector: &mut Detector,
    batch: Vec<Pending<Vec<Vec<Detection>>>>,
    stats: &SchedulerStats,
    observe: &(dyn Fn(usize, Duration) + Send + Sync),
    max_batch: usize,
) {
    stats
        .images
        .fetch_add(batch.len() as u64, Ordering::Relaxed);
    let views: Vec<RgbView<'_>> = batch.iter().flat_map(|p| p.image.model_inputs()).collect();
    let mut outcome: Result<Vec<Vec<Detection>>, String> = Ok(Vec::with_capacity(views.len()));
    for chunk in views.chunks(max_batch) {
        let started = Instant::now();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            detector.classify_batch(chunk)
        }));
        let elapsed = started.elapsed();
        record(stats, chunk.len(), elapsed);
        observe(chunk.len(), elapsed);
        match (result, &mut outcome) {
            (Ok(Ok(classified)), Ok(all)) => {
                all.extend(classified.into_iter().map(|c| c.detections));
            }
            (Ok(Err(e)), _) => {
                outcome = Err(e.to_string());
                break;
            }
            (Err(_), _) => {
                outcome = Err("inference panicked".into());
                break;
            }
            (_, Err(_)) => break,
        }
    }
    drop(views);
    match outcome {
        Ok(all) => {
            let mut all = all.into_iter();
            for pending in batch {
                let per_input = all
                    .by_ref()
                    .take(pending.image.model_input_count())
                    .collect();
                pending.answer(Ok(per_input));
            }
        }
        Err(message) => {
            for pending in batch {
                pending.answer(Err(ClassifyError::Inference(message.clone()).into()));
            }
        }
    }
}

/// The words in an image's reference decoding and in each of its views (what a viewer
/// is shown beyond it: later frames, translucent pictures over page colours), a line
/// read again in a later view reported once. A failure (or a panic) fails that image
/// alone, as a classification error, so it is never published unread.
fn read_words(
    engine: &mut OcrEngine,
    image: &Analysed,
    depth: Depth,
    stats: &SchedulerStats,
) -> Result<Vec<OcrLine>, SchedulerError> {
    let started = Instant::now();
    let views = std::iter::once(None).chain(image.views.iter().map(|v| Some(v.id)));
    let mut lines: Vec<OcrLine> = Vec::new();
    let mut outcome = Ok(());
    let mut read_in_full = false;
    for (input, view) in image.model_inputs().iter().zip(views) {
        let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            engine.read_view(input, depth)
        }));
        match read {
            Ok(Ok(read)) => {
                read_in_full |= read.read_in_full;
                for mut line in read.lines {
                    if !lines.iter().any(|l| l.text == line.text) {
                        line.view = view;
                        lines.push(line);
                    }
                }
            }
            Ok(Err(e)) => {
                outcome = Err(format!("reading the words in the image: {e}"));
                break;
            }
            Err(_) => {
                outcome = Err("reading the words in the image panicked".to_string());
                break;
            }
        }
    }
    stats.ocr_images.fetch_add(1, Ordering::Relaxed);
    if read_in_full {
        stats.ocr_read_in_full.fetch_add(1, Ordering::Relaxed);
    }
    stats
        .ocr_micros
        .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    outcome.map_err(ClassifyError::Inference)?;
    Ok(lines)
}

fn record(stats: &SchedulerStats, size: usize, elapsed: Duration) {
    stats.batches.fetch_add(1, Ordering::Relaxed);
    stats.inputs.fetch_add(size as u64, Ordering::Relaxed);
    stats
        .inference_micros
        .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    if let Some(bucket) = stats.batch_sizes.get(size - 1) {
        bucket.fetch_add(1, Ordering::Relaxed);
    }
}
