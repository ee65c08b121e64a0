//! The backfill queue against a real NATS server with JetStream.
//!
//! These run only when COVERGUARD_TEST_NATS_URL is set (for example
//! `nats://127.0.0.1:4222`). Each test makes its own streams, named with a
//! fresh uuid, and deletes them afterwards, pass or fail.

use std::collections::HashSet;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use coverguard::backfill::jetstream::{
    Delivery, EnqueueSummary, JobQueue, JobQueueConfig, QueueError, QueueItem, QueueStatus, Worker,
};
use coverguard::backfill::manifest::{ItemContext, ItemSource, ManifestItem};
use coverguard::testing::{service_urls, NATS_URL_VAR};
use futures_util::FutureExt;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Item {
    artwork_id: String,
    url: String,
}

impl QueueItem for Item {
    fn artwork_id(&self) -> &str {
        &self.artwork_id
    }
}

fn item(id: &str) -> Item {
    Item {
        artwork_id: id.to_string(),
        url: format!("https://cdn.example/{id}.jpg"),
    }
}

/// Runs `body` on a fresh queue, then deletes its streams; without a server
/// to run on, prints a skip line instead.
async fn with_queue<F, Fut>(test: &str, ack_wait: Duration, max_deliver: i64, body: F)
where
    F: FnOnce(JobQueue) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some([url]) = service_urls([NATS_URL_VAR]) else {
        return;
    };
    let id = uuid::Uuid::now_v7().simple().to_string();
    let config = JobQueueConfig {
        stream: format!("CGTEST_{id}"),
        subject_prefix: format!("cgtest.{id}"),
        ack_wait,
        max_deliver,
        ..Default::default()
    };
    let queue = JobQueue::connect(&url, config)
        .await
        .unwrap_or_else(|e| panic!("{test}: {e}"));
    let outcome = AssertUnwindSafe(body(queue.clone())).catch_unwind().await;
    queue.delete().await.expect("delete the test streams");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

const WAIT: Duration = Duration::from_secs(5);

/// The next item, which must come within [`WAIT`].
async fn take<T: serde::de::DeserializeOwned>(worker: &Worker<T>) -> Delivery<T> {
    match worker.next(WAIT).await {
        Ok(Some(delivery)) => delivery,
        Ok(None) => panic!("worker {} got nothing within {WAIT:?}", worker.name()),
        Err(e) => panic!("worker {}: {e}", worker.name()),
    }
}

/// Whether `worker` gets nothing within `wait`.
async fn nothing_for<T: serde::de::DeserializeOwned>(worker: &Worker<T>, wait: Duration) -> bool {
    worker.next(wait).await.unwrap().is_none()
}

#[tokio::test]
async fn re_enqueueing_an_item_stores_it_once() {
    with_queue("dedup", Duration::from_secs(30), 5, |queue| async move {
        let first = queue.enqueue("job1", &item("a")).await.unwrap();
        let again = queue.enqueue("job1", &item("a")).await.unwrap();
        assert!(!first.duplicate);
        assert!(again.duplicate);
        assert_eq!(again.sequence, first.sequence);
        assert_eq!(queue.status().await.unwrap().queued, 1);

        // The pipelined path deduplicates the same way; another job's item
        // with the same artwork id is another message.
        let summary = queue
            .enqueue_all("job1", [item("a"), item("b"), item("c"), item("b")])
            .await
            .unwrap();
        assert_eq!(
            summary,
            EnqueueSummary {
                queued: 2,
                duplicates: 2
            }
        );
        assert!(!queue.enqueue("job2", &item("a")).await.unwrap().duplicate);
        assert_eq!(queue.status().await.unwrap().queued, 4);
    })
    .await;
}

#[tokio::test]
async fn manifest_items_travel_whole() {
    with_queue(
        "manifest items",
        Duration::from_secs(30),
        5,
        |queue| async move {
            let sent = ManifestItem {
                line: 7,
                artwork_id: "art-7".into(),
                source: ItemSource::Path("/srv/art/7.png".into()),
                owner_id: Some("owner".into()),
                context: ItemContext {
                    surface: Some("playlist_cover".into()),
                    owner_is_minor: true,
                    playlist_track_count: Some(0),
                    // The words travel with the item, emoji and all.
                    title: Some("add me on ｓｎａｐ 👻".into()),
                    description: None,
                },
            };
            queue.enqueue("job", &sent).await.unwrap();
            let delivery = take(&queue.worker::<ManifestItem>("w")).await;
            assert_eq!(delivery.item, sent);
            assert_eq!(delivery.job_id(), "job");
            assert_eq!(delivery.delivered_count(), 1);
            delivery.ack().await.unwrap();
            assert_eq!(queue.status().await.unwrap().queued, 0);
        },
    )
    .await;
}

#[tokio::test]
async fn two_workers_share_the_work() {
    with_queue("share", Duration::from_secs(30), 5, |queue| async move {
        let ids: Vec<String> = (0..20).map(|i| format!("art{i}")).collect();
        queue
            .enqueue_all("job", ids.iter().map(|id| item(id)))
            .await
            .unwrap();
        let run = |name: &'static str| {
            let worker = queue.worker::<Item>(name);
            tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(delivery) = worker.next(Duration::from_millis(700)).await.unwrap() {
                    // Work takes time, so the other worker gets its turn.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    got.push(delivery.item.artwork_id.clone());
                    delivery.ack().await.unwrap();
                }
                got
            })
        };
        let (a, b) = (run("a"), run("b"));
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        assert!(!a.is_empty() && !b.is_empty(), "a {a:?}, b {b:?}");
        let set_a: HashSet<_> = a.iter().collect();
        let set_b: HashSet<_> = b.iter().collect();
        assert!(set_a.is_disjoint(&set_b), "a {a:?}, b {b:?}");
        assert_eq!(a.len() + b.len(), ids.len(), "nothing delivered twice");
        let all: HashSet<_> = set_a.union(&set_b).copied().collect();
        assert_eq!(all, ids.iter().collect());
        let status = queue.status().await.unwrap();
        assert_eq!((status.queued, status.in_flight), (0, 0));
    })
    .await;
}

#[tokio::test]
async fn an_item_held_by_a_dead_worker_comes_back_after_ack_wait() {
    with_queue(
        "redelivery",
        Duration::from_secs(1),
        5,
        |queue| async move {
            queue.enqueue("job", &item("a")).await.unwrap();
            let first = queue.worker::<Item>("doomed");
            let delivery = take(&first).await;
            assert_eq!(delivery.delivered_count(), 1);
            // kill -9: the worker goes away without a word to the server.
            drop(delivery);
            drop(first);

            let second = queue.worker::<Item>("survivor");
            assert!(
                nothing_for(&second, Duration::from_millis(300)).await,
                "still within ack_wait, the item is the dead worker's"
            );
            let again = take(&second).await;
            assert_eq!(again.item, item("a"));
            assert_eq!(again.delivered_count(), 2);
            again.ack().await.unwrap();
            let status = queue.status().await.unwrap();
            assert_eq!((status.queued, status.redelivered), (0, 0));
        },
    )
    .await;
}

#[tokio::test]
async fn in_progress_keeps_a_long_item() {
    with_queue(
        "in progress",
        Duration::from_secs(1),
        5,
        |queue| async move {
            queue.enqueue("job", &item("slow")).await.unwrap();
            let slow = queue.worker::<Item>("slow");
            let other = queue.worker::<Item>("other");
            let delivery = take(&slow).await;
            for _ in 0..4 {
                tokio::time::sleep(Duration::from_millis(400)).await;
                delivery.in_progress().await.unwrap();
            }
            // 1.6 s in, past ack_wait, and nobody else has it.
            assert!(nothing_for(&other, Duration::from_millis(300)).await);
            delivery.ack().await.unwrap();
        },
    )
    .await;
}

#[tokio::test]
async fn a_poison_item_is_dead_lettered_after_max_deliver() {
    with_queue("poison", Duration::from_secs(30), 3, |queue| async move {
        queue.enqueue("job", &item("poison")).await.unwrap();
        let worker = queue.worker::<Item>("w");
        for attempt in 1..=2 {
            let delivery = take(&worker).await;
            assert_eq!(delivery.delivered_count(), attempt);
            delivery.nak(Duration::ZERO).await.unwrap();
        }
        // The third delivery is the last: the worker dead-letters it.
        assert!(nothing_for(&worker, Duration::from_secs(1)).await);

        let letters = queue.dead_letters(10).await.unwrap();
        assert_eq!(letters.len(), 1, "{letters:?}");
        let letter = &letters[0];
        assert_eq!(letter.delivered_count, 3);
        assert!(letter.reason.contains("max_deliver 3"), "{}", letter.reason);
        assert_eq!(letter.msg_id.as_deref(), Some("job:poison"));
        assert_eq!(letter.worker.as_deref(), Some("w"));
        assert!(letter.subject.ends_with(".items.job"), "{}", letter.subject);
        let payload: Item = serde_json::from_slice(&letter.payload).unwrap();
        assert_eq!(payload, item("poison"));

        let status = queue.status().await.unwrap();
        assert_eq!((status.queued, status.dead_letters), (0, 1));
    })
    .await;
}

#[tokio::test]
async fn a_worker_can_dead_letter_with_its_own_reason() {
    with_queue(
        "explicit dead letter",
        Duration::from_secs(30),
        5,
        |queue| async move {
            queue.enqueue("job", &item("bad")).await.unwrap();
            let delivery = take(&queue.worker::<Item>("w")).await;
            delivery
                .dead_letter("unsupported_format: looks like text\nsecond line")
                .await
                .unwrap();
            let letters = queue.dead_letters(10).await.unwrap();
            assert_eq!(letters.len(), 1);
            assert_eq!(
                letters[0].reason,
                "unsupported_format: looks like text second line"
            );
            assert_eq!(letters[0].delivered_count, 1);
            assert_eq!(queue.status().await.unwrap().queued, 0);
        },
    )
    .await;
}

#[tokio::test]
async fn an_undecodable_payload_is_dead_lettered() {
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Other {
        required: u32,
    }
    with_queue(
        "undecodable",
        Duration::from_secs(30),
        5,
        |queue| async move {
            queue.enqueue("job", &item("a")).await.unwrap();
            let worker = queue.worker::<Other>("w");
            assert!(nothing_for(&worker, Duration::from_secs(1)).await);
            let letters = queue.dead_letters(10).await.unwrap();
            assert_eq!(letters.len(), 1);
            assert!(
                letters[0].reason.starts_with("payload is not a valid item"),
                "{}",
                letters[0].reason
            );
        },
    )
    .await;
}

#[tokio::test]
async fn status_counts_follow_the_items() {
    with_queue("status", Duration::from_secs(30), 5, |queue| async move {
        let summary = queue
            .enqueue_all("job", [item("a"), item("b"), item("c")])
            .await
            .unwrap();
        assert_eq!(summary.queued, 3);
        assert_eq!(
            queue.status().await.unwrap(),
            QueueStatus {
                queued: 3,
                pending: 3,
                ..Default::default()
            }
        );

        let worker = queue.worker::<Item>("w");
        let held = take(&worker).await;
        assert_eq!(
            queue.status().await.unwrap(),
            QueueStatus {
                queued: 3,
                pending: 2,
                in_flight: 1,
                delivered: 1,
                ..Default::default()
            }
        );
        held.ack().await.unwrap();
        let doomed = take(&worker).await;
        doomed.dead_letter("test").await.unwrap();
        assert_eq!(
            queue.status().await.unwrap(),
            QueueStatus {
                queued: 1,
                pending: 1,
                in_flight: 0,
                delivered: 2,
                redelivered: 0,
                dead_letters: 1,
            }
        );
    })
    .await;
}

#[tokio::test]
async fn bad_ids_are_refused_without_publishing() {
    with_queue("bad ids", Duration::from_secs(30), 5, |queue| async move {
        assert!(matches!(
            queue.enqueue("job.with.dots", &item("a")).await,
            Err(QueueError::InvalidJobId { .. })
        ));
        assert!(matches!(
            queue.enqueue("job", &item("line\nbreak")).await,
            Err(QueueError::InvalidArtworkId { .. })
        ));
        assert_eq!(queue.status().await.unwrap().queued, 0);
    })
    .await;
}

#[tokio::test]
async fn a_second_process_joins_the_same_queue() {
    with_queue("join", Duration::from_secs(30), 5, |queue| async move {
        let url = std::env::var(NATS_URL_VAR).unwrap();
        // Same config: the streams and consumer are reused as they are.
        let same = JobQueue::connect(&url, queue.config().clone())
            .await
            .unwrap();
        // A changed ack_wait and max_deliver update the shared consumer in place.
        let changed = JobQueue::connect(
            &url,
            JobQueueConfig {
                ack_wait: Duration::from_secs(45),
                max_deliver: 7,
                ..queue.config().clone()
            },
        )
        .await
        .unwrap();
        queue.enqueue("job", &item("a")).await.unwrap();
        let delivery = take(&changed.worker::<Item>("elsewhere")).await;
        delivery.ack().await.unwrap();
        assert_eq!(same.status().await.unwrap().queued, 0);

        // Ask the server directly that the update took.
        let client = async_nats::connect(&url).await.unwrap();
        let info = async_nats::jetstream::new(client)
            .get_stream(&queue.config().stream)
            .await
            .unwrap()
            .consumer_info(coverguard::backfill::jetstream::CONSUMER)
            .await
            .unwrap();
        assert_eq!(info.config.ack_wait, Duration::from_secs(45));
        assert_eq!(info.config.max_deliver, 7);
    })
    .await;
}

#[tokio::test]
async fn connecting_to_nothing_is_a_typed_error() {
    // Port 1 on loopback: nothing listens there.
    match JobQueue::connect("nats://127.0.0.1:1", JobQueueConfig::default()).await {
        Err(QueueError::Connect { url, .. }) => assert_eq!(url, "nats://127.0.0.1:1"),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("connected to nothing"),
    }
}
