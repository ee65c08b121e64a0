//! The batching inference scheduler: same answers as a lone detector (and, with OCR,
//! a lone reader), batches under load, and refusal (not queueing) beyond capacity.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use common::*;
use coverguard::classify::{Detector, DetectorOptions};
use coverguard::decode::DecodeLimits;
use coverguard::provision::{self, Cache};
use coverguard::screening::analyse::{analyse, Analysed, ImageDetections};
use coverguard::screening::scheduler::{Scheduler, SchedulerConfig, SchedulerError, Worker};
use coverguard::text::ocr::{Depth, GateParams, OcrEngine, Reading};

fn detector() -> Detector {
    let provisioned = provision::provision(&Cache::from_env().unwrap(), None).unwrap();
    Detector::load(&provisioned, &DetectorOptions { intra_threads: 1 }).unwrap()
}

fn photos() -> Vec<Arc<Analysed>> {
    [
        "astronaut.png",
        "color.png",
        "moon.png",
        "camera.png",
        "phantom.png",
        "rocket.jpg",
    ]
    .iter()
    .map(|f| {
        let bytes = std::fs::read(skimage_dir().join(f)).unwrap();
        Arc::new(analyse(&bytes, &DecodeLimits::default()).unwrap())
    })
    .collect()
}

/// Each image's answer, `rounds` times over, all asked at once; with its image's index.
async fn all_at_once(
    scheduler: &Scheduler,
    images: &[Arc<Analysed>],
    rounds: usize,
) -> Vec<(usize, ImageDetections)> {
    let mut tasks = Vec::new();
    for _ in 0..rounds {
        for (i, image) in images.iter().enumerate() {
            let s = scheduler.clone();
            let image = Arc::clone(image);
            tasks.push(tokio::spawn(async move {
                (i, s.classify(image, Depth::AsConfigured).await)
            }));
        }
    }
    let mut answers = Vec::new();
    for task in tasks {
        let (i, got) = task.await.unwrap();
        answers.push((i, got.unwrap()));
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batched_answers_equal_single_image_answers() {
    let images = photos();
    let mut single = detector();
    let expected: Vec<_> = images
        .iter()
        .map(|a| single.classify(a.view()).unwrap().detections)
        .collect();

    let scheduler = Scheduler::start(
        vec![detector()],
        &SchedulerConfig {
            workers: 1,
            max_batch: 8,
            queue_capacity: 64,
            pin_workers: false,
        },
    );
    // Three rounds of all images at once, so batches of several images form.
    for (i, got) in all_at_once(&scheduler, &images, 3).await {
        assert_eq!(got.reference.len(), expected[i].len(), "image {i}");
        assert!(got.views.is_empty(), "an opaque photo has no views");
        for (g, e) in got.reference.iter().zip(&expected[i]) {
            assert_eq!(
                (g.label.as_str(), g.bbox),
                (e.label.as_str(), e.bbox),
                "image {i}"
            );
            // Batched convolutions may round differently in the last float bits.
            assert!(
                (g.score - e.score).abs() < 1e-4,
                "image {i}: {} vs {}",
                g.score,
                e.score
            );
        }
    }
    let stats = scheduler.stats();
    assert_eq!(stats.images.load(Ordering::Relaxed), 18);
    assert!(
        stats.batches.load(Ordering::Relaxed) < 18,
        "some requests shared a batch"
    );
    scheduler.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_queue_refuses_at_once() {
    let images = photos();
    let scheduler = Scheduler::start(
        vec![detector()],
        &SchedulerConfig {
            workers: 1,
            max_batch: 2,
            queue_capacity: 3,
            pin_workers: false,
        },
    );
    let mut tasks = Vec::new();
    for i in 0..40 {
        let s = scheduler.clone();
        let image = Arc::clone(&images[i % images.len()]);
        tasks.push(tokio::spawn(async move {
            s.classify(image, Depth::AsConfigured).await
        }));
    }
    let (mut ok, mut refused) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(SchedulerError::Overloaded { capacity }) => {
                assert_eq!(capacity, 3);
                refused += 1
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(ok >= 3, "{ok} answered");
    assert!(refused > 0, "nothing refused");
    assert_eq!(
        ok + refused,
        40,
        "every request was answered one way or the other"
    );
    assert_eq!(
        scheduler.stats().refused.load(Ordering::Relaxed),
        refused as u64
    );
    assert_eq!(scheduler.depth(), 0);
    scheduler.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_holds_a_place_until_the_answer_or_drop() {
    let scheduler = Scheduler::start(
        vec![detector()],
        &SchedulerConfig {
            workers: 1,
            max_batch: 1,
            queue_capacity: 2,
            // Pinned: the worker still answers.
            pin_workers: true,
        },
    );
    // Places are taken before any work: the third caller is refused at once.
    let first = scheduler.admit().unwrap();
    let second = scheduler.admit().unwrap();
    assert_eq!(scheduler.depth(), 2);
    assert!(matches!(
        scheduler.admit(),
        Err(SchedulerError::Overloaded { capacity: 2 })
    ));
    assert_eq!(scheduler.stats().refused.load(Ordering::Relaxed), 1);
    // The edge's check refuses too, without taking a place.
    assert!(scheduler.shed_if_full().is_err());
    assert_eq!(scheduler.stats().refused.load(Ordering::Relaxed), 2);
    // A place given up without inference (e.g. a cached verdict) frees it.
    drop(second);
    assert_eq!(scheduler.depth(), 1);
    scheduler.shed_if_full().unwrap();
    assert_eq!(scheduler.depth(), 1);
    // A place used for inference is held until the answer, then freed.
    let image = photos().swap_remove(0);
    let detections = scheduler
        .classify_admitted(first, image, Depth::AsConfigured)
        .await
        .unwrap();
    assert!(!detections.reference.is_empty());
    assert_eq!(scheduler.depth(), 0);
    scheduler.shutdown();
}

fn ocr_worker() -> Worker {
    let cache = Cache::from_env().unwrap();
    let provisioned = provision::provision(&cache, None).unwrap();
    let models = provision::provision_ocr(&cache).unwrap();
    let ocr = OcrEngine::load(
        &models,
        &provisioned.runtime_library,
        1,
        Reading::Gated(GateParams::default()),
    )
    .unwrap();
    Worker {
        detector: detector(),
        ocr: Some(ocr),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_ocr_each_image_gets_its_own_detections_and_its_own_words() {
    // Covers with different words among photos without any: an answer put together
    // from the stages of two images would show another image's words or detections.
    let images: Vec<Arc<Analysed>> = ["text-16.png", "text-03.png", "notext-1.png", "text-20.png"]
        .iter()
        .map(|f| std::fs::read(fixtures().join("ocr").join(f)).unwrap())
        .chain(
            ["astronaut.png", "camera.png"]
                .iter()
                .map(|f| std::fs::read(skimage_dir().join(f)).unwrap()),
        )
        .map(|bytes| Arc::new(analyse(&bytes, &DecodeLimits::default()).unwrap()))
        .collect();
    let mut lone = ocr_worker();
    let engine = lone.ocr.as_mut().unwrap();
    let expected: Vec<(Vec<_>, Vec<String>)> = images
        .iter()
        .map(|a| {
            let detections = lone.detector.classify(a.view()).unwrap().detections;
            let read = engine.read_view(&a.view(), Depth::AsConfigured).unwrap();
            (detections, read.lines.into_iter().map(|l| l.text).collect())
        })
        .collect();
    let different_words: std::collections::BTreeSet<_> = expected
        .iter()
        .map(|(_, words)| words)
        .filter(|words| !words.is_empty())
        .collect();
    assert!(
        different_words.len() >= 3,
        "the set has covers with different words: {expected:?}"
    );
    let labels = |d: &[coverguard::classify::Detection]| -> Vec<String> {
        d.iter().map(|d| d.label.clone()).collect()
    };

    let scheduler = Scheduler::start_observed(
        vec![ocr_worker(), ocr_worker()],
        &SchedulerConfig {
            workers: 2,
            max_batch: 4,
            queue_capacity: 64,
            pin_workers: false,
        },
        Arc::new(|_, _| {}),
    );
    for (i, got) in all_at_once(&scheduler, &images, 3).await {
        let words: Vec<String> = got.ocr.iter().map(|l| l.text.clone()).collect();
        assert_eq!(words, expected[i].1, "image {i}");
        assert_eq!(labels(&got.reference), labels(&expected[i].0), "image {i}");
    }
    let stats = scheduler.stats();
    assert_eq!(stats.images.load(Ordering::Relaxed), 18);
    assert_eq!(stats.ocr_images.load(Ordering::Relaxed), 18);
    assert_eq!(stats.queued.load(Ordering::Relaxed), 0);
    assert_eq!(scheduler.depth(), 0);
    scheduler.shutdown();
}
