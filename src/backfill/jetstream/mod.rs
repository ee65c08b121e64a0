//! The backfill work queue, on NATS JetStream.
//!
//! One stream with work-queue retention holds the items of every job, one
//! message an item, on `<prefix>.items.<job_id>`. All workers pull from one
//! durable consumer, so each message goes to one worker at a time, and a
//! message leaves the stream when it is acknowledged. A second stream, with
//! limits retention, keeps dead letters on `<prefix>.dead` for a person to
//! inspect and replay.
//!
//! # Delivery is at least once
//!
//! A worker that dies, hangs or loses its connection never acks; after
//! `ack_wait` the server gives the message to another worker. A worker that
//! screened an item and then died before its ack landed means the item is
//! screened twice. So every item may be processed more than once, and the
//! writes downstream must be idempotent, keyed by what the item is and not by
//! the delivery: the artwork's state is keyed by artwork id, the quarantine by
//! bytes and artwork id, each report by a fixed idempotency key, and the same
//! bytes under the same model, policy and banks are answered from the store.
//! A repeat then leaves the outcome as it was (at most one more screening in
//! the history): exactly once in effect.
//!
//! Enqueueing is at least once too, and JetStream removes the repeats: each
//! message carries `Nats-Msg-Id: <job_id>:<artwork_id>`, so a job enqueued
//! again (after the enqueuer crashed, say) within the stream's duplicate window
//! adds nothing. The same holds for two manifest rows with the same artwork id:
//! the second is dropped, so check with
//! [`DuplicateIds`](super::manifest::DuplicateIds) first.
//!
//! # Poison items
//!
//! An item that fails every time (or crashes the worker every time) must not
//! go round forever. The server delivers a message at most `max_deliver`
//! times; the last of those deliveries is kept for the dead letter:
//! [`Worker::next`] dead-letters an item delivered `max_deliver` times instead
//! of handing it out, so even an item that kills its worker ends up in the
//! dead-letter stream, rather than stuck in the work stream unacked. A worker
//! that knows an item will never succeed calls [`Delivery::dead_letter`]
//! itself.
//!
//! `tests/jetstream.rs` runs all of this against a real server when
//! `COVERGUARD_TEST_NATS_URL` is set (`nats-server -js` is enough).

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::consumer::{pull, AckPolicy, PullConsumer};
use async_nats::jetstream::context::{PublishAckFuture, PublishError};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{self, RetentionPolicy, StorageType};
use async_nats::{HeaderMap, HeaderValue};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::manifest::ManifestItem;

mod worker;
#[cfg(test)]
use worker::header_text;
pub use worker::{Delivery, Worker};

type BoxError = async_nats::Error;

/// The name of the one durable consumer all workers share.
pub const CONSUMER: &str = "workers";

/// Dead-letter headers. The payload is the item's, byte for byte, so a dead
/// letter can be published back to the work subject unchanged.
pub const HEADER_REASON: &str = "Coverguard-Reason";
pub const HEADER_DELIVERED: &str = "Coverguard-Delivered";
pub const HEADER_SUBJECT: &str = "Coverguard-Subject";
pub const HEADER_WORKER: &str = "Coverguard-Worker";
const HEADER_MSG_ID: &str = "Nats-Msg-Id";

/// How many publish acks [`JobQueue::enqueue_all`] awaits at once: enough to
/// hide the round trip, few enough that a failure leaves little in doubt.
const MAX_IN_FLIGHT: usize = 256;

/// The shortest pull request: the server answers a shorter expiry with an
/// immediate timeout, so a tiny remaining wait would spin.
const MIN_PULL_EXPIRES: Duration = Duration::from_millis(50);

/// Where the queue lives and how it redelivers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobQueueConfig {
    /// The work stream's name; the dead letters go to `<stream>_DEAD`.
    pub stream: String,
    /// Subjects are `<prefix>.items.<job_id>` and `<prefix>.dead`.
    pub subject_prefix: String,
    /// How long a worker may hold an item without acking (or calling
    /// [`Delivery::in_progress`]) before it goes to another worker.
    pub ack_wait: Duration,
    /// Deliveries of one item before it is dead-lettered; at least 2, as the
    /// last delivery is the dead-lettering.
    pub max_deliver: i64,
    /// How long JetStream remembers a message id to drop a re-enqueue. The
    /// server keeps every id for this long, so it costs memory per item.
    pub duplicate_window: Duration,
}

impl Default for JobQueueConfig {
    fn default() -> Self {
        JobQueueConfig {
            stream: "COVERGUARD_BACKFILL".to_string(),
            subject_prefix: "coverguard.backfill".to_string(),
            ack_wait: Duration::from_secs(60),
            max_deliver: 5,
            // Covers re-running an enqueue that failed part way; past that,
            // the idempotent store makes a repeat harmless anyway.
            duplicate_window: Duration::from_secs(600),
        }
    }
}

impl JobQueueConfig {
    fn dead_stream(&self) -> String {
        format!("{}_DEAD", self.stream)
    }

    fn items_subject(&self, job_id: &str) -> String {
        format!("{}.items.{job_id}", self.subject_prefix)
    }

    fn dead_subject(&self) -> String {
        format!("{}.dead", self.subject_prefix)
    }

    fn validate(&self) -> Result<(), QueueError> {
        let bad = |detail: String| Err(QueueError::Config(detail));
        if self.stream.is_empty()
            || !self
                .stream
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return bad(format!(
                "stream name {:?} must be letters, digits, '_' and '-'",
                self.stream
            ));
        }
        if !self.subject_prefix.split('.').all(is_subject_token) {
            return bad(format!(
                "subject prefix {:?} must be dot-separated tokens of letters, digits, '_' and '-'",
                self.subject_prefix
            ));
        }
        if self.max_deliver < 2 {
            return bad(format!(
                "max_deliver is {}: it must be at least 2, as the last delivery dead-letters the item",
                self.max_deliver
            ));
        }
        if self.ack_wait.is_zero() {
            return bad("ack_wait must be more than zero".to_string());
        }
        if self.duplicate_window.is_zero() {
            return bad(
                "duplicate_window must be more than zero, or re-enqueues are not deduplicated"
                    .to_string(),
            );
        }
        Ok(())
    }
}

fn is_subject_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Something the queue can carry: it serialises, and it names its artwork,
/// which with the job id makes the message id that JetStream deduplicates by.
pub trait QueueItem: Serialize {
    fn artwork_id(&self) -> &str;
}

impl QueueItem for ManifestItem {
    fn artwork_id(&self) -> &str {
        &self.artwork_id
    }
}

impl<T: QueueItem + ?Sized> QueueItem for &T {
    fn artwork_id(&self) -> &str {
        (**self).artwork_id()
    }
}

/// What went wrong with the queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("invalid queue config: {0}")]
    Config(String),
    #[error(
        "cannot connect to NATS at {url}: {source} (is nats-server running there, with \
         JetStream enabled by -js?)"
    )]
    Connect {
        url: String,
        source: async_nats::ConnectError,
    },
    #[error(
        "cannot create or update stream {stream}: {source} (a stream's retention cannot change \
         once created, and no two streams may share subjects)"
    )]
    Stream { stream: String, source: BoxError },
    #[error("cannot create or update consumer {CONSUMER} on stream {stream}: {source}")]
    Consumer { stream: String, source: BoxError },
    #[error("job id {job_id:?} cannot be part of a subject: use letters, digits, '_' and '-'")]
    InvalidJobId { job_id: String },
    #[error("artwork id {artwork_id:?} cannot go in a Nats-Msg-Id header: it has a line break")]
    InvalidArtworkId { artwork_id: String },
    #[error("cannot encode the item for artwork {artwork_id:?}: {source}")]
    Encode {
        artwork_id: String,
        source: serde_json::Error,
    },
    #[error(
        "cannot enqueue artwork {artwork_id:?} of job {job_id} ({confirmed} confirmed before \
         it): {source}; enqueueing the job again is safe, as JetStream drops repeats within \
         the duplicate window"
    )]
    Publish {
        job_id: String,
        artwork_id: String,
        confirmed: u64,
        source: PublishError,
    },
    #[error("cannot pull from consumer {CONSUMER} on stream {stream}: {source}")]
    Fetch { stream: String, source: BoxError },
    #[error("a message from stream {stream} has no JetStream metadata: {source}")]
    Metadata { stream: String, source: BoxError },
    #[error(
        "cannot {action} message {sequence} of stream {stream}: {source}; it will be delivered \
         again after ack_wait"
    )]
    Ack {
        action: &'static str,
        stream: String,
        sequence: u64,
        source: BoxError,
    },
    #[error(
        "cannot dead-letter message {sequence} of stream {stream}: {source}; it stays in the \
         work stream and will be delivered again after ack_wait"
    )]
    DeadLetter {
        stream: String,
        sequence: u64,
        source: PublishError,
    },
    #[error("cannot read the state of {what}: {source}")]
    Status { what: String, source: BoxError },
}

/// The outcome of one [`JobQueue::enqueue`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Enqueued {
    /// The message's sequence in the work stream (the first one's, for a
    /// duplicate).
    pub sequence: u64,
    /// JetStream had already seen this message id within the duplicate window
    /// and stored nothing.
    pub duplicate: bool,
}

/// The outcome of [`JobQueue::enqueue_all`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EnqueueSummary {
    /// New messages stored.
    pub queued: u64,
    /// Items JetStream dropped as repeats.
    pub duplicates: u64,
}

/// For `coverguard backfill status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStatus {
    /// Messages in the work stream: not yet acked (or dead-lettered), whether
    /// delivered or not.
    pub queued: u64,
    /// Of those, never delivered yet.
    pub pending: u64,
    /// Delivered and not yet acked: being worked on, or held by a dead worker
    /// until `ack_wait` runs out.
    pub in_flight: u64,
    /// Deliveries so far, redeliveries included.
    pub delivered: u64,
    /// Messages delivered more than once.
    pub redelivered: u64,
    /// Messages in the dead-letter stream.
    pub dead_letters: u64,
}

/// A dead letter, read back by [`JobQueue::dead_letters`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// Its sequence in the dead-letter stream.
    pub sequence: u64,
    pub reason: String,
    pub delivered_count: u64,
    /// The work subject it was on (`<prefix>.items.<job_id>`).
    pub subject: String,
    /// The original `<job_id>:<artwork_id>`.
    pub msg_id: Option<String>,
    pub worker: Option<String>,
    /// The item, byte for byte.
    pub payload: Bytes,
}

/// A connection to the backfill queue.
#[derive(Clone)]
pub struct JobQueue {
    js: jetstream::Context,
    config: JobQueueConfig,
    consumer: PullConsumer,
}

impl JobQueue {
    /// Connects, and creates the work stream, the dead-letter stream and the
    /// shared consumer, or updates them to `config`.
    pub async fn connect(url: &str, config: JobQueueConfig) -> Result<Self, QueueError> {
        config.validate()?;
        let client = async_nats::ConnectOptions::new()
            .name("coverguard-backfill")
            .connect(url)
            .await
            .map_err(|source| QueueError::Connect {
                url: url.to_string(),
                source,
            })?;
        let js = jetstream::new(client);
        let stream_error = |stream: &str| {
            let stream = stream.to_string();
            move |source: jetstream::context::CreateStreamError| QueueError::Stream {
                stream,
                source: source.into(),
            }
        };
        js.create_or_update_stream(stream::Config {
            name: config.stream.clone(),
            subjects: vec![format!("{}.items.*", config.subject_prefix)],
            retention: RetentionPolicy::WorkQueue,
            storage: StorageType::File,
            duplicate_window: config.duplicate_window,
            ..Default::default()
        })
        .await
        .map_err(stream_error(&config.stream))?;
        js.create_or_update_stream(stream::Config {
            name: config.dead_stream(),
            subjects: vec![config.dead_subject()],
            retention: RetentionPolicy::Limits,
            storage: StorageType::File,
            duplicate_window: config.duplicate_window,
            ..Default::default()
        })
        .await
        .map_err(stream_error(&config.dead_stream()))?;
        let consumer_error = |source: BoxError| QueueError::Consumer {
            stream: config.stream.clone(),
            source,
        };
        let stream = js
            .get_stream_no_info(&config.stream)
            .await
            .map_err(|e| consumer_error(e.into()))?;
        let consumer = stream
            .create_consumer(pull::Config {
                durable_name: Some(CONSUMER.to_string()),
                description: Some("coverguard backfill workers".to_string()),
                ack_policy: AckPolicy::Explicit,
                ack_wait: config.ack_wait,
                max_deliver: config.max_deliver,
                ..Default::default()
            })
            .await
            .map_err(|e| consumer_error(e.into()))?;
        Ok(JobQueue {
            js,
            config,
            consumer,
        })
    }

    pub fn config(&self) -> &JobQueueConfig {
        &self.config
    }

    /// Publishes one item and waits for JetStream to store it.
    pub async fn enqueue(
        &self,
        job_id: &str,
        item: &impl QueueItem,
    ) -> Result<Enqueued, QueueError> {
        let ack = self.publish(job_id, item, 0).await?;
        let ack = ack.await.map_err(|source| QueueError::Publish {
            job_id: job_id.to_string(),
            artwork_id: item.artwork_id().to_string(),
            confirmed: 0,
            source,
        })?;
        Ok(Enqueued {
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }

    /// Publishes every item, awaiting up to 256 acks at once, and returns when
    /// all are stored. It stops at the first failure; the error says how many
    /// were confirmed, and enqueueing the job again is safe.
    pub async fn enqueue_all<I>(&self, job_id: &str, items: I) -> Result<EnqueueSummary, QueueError>
    where
        I: IntoIterator,
        I::Item: QueueItem,
    {
        let mut summary = EnqueueSummary::default();
        let mut in_flight: VecDeque<(String, PublishAckFuture)> = VecDeque::new();
        let settle = |summary: &mut EnqueueSummary, artwork_id: String, result| match result {
            Ok(jetstream::publish::PublishAck { duplicate, .. }) => {
                if duplicate {
                    summary.duplicates += 1;
                } else {
                    summary.queued += 1;
                }
                Ok(())
            }
            Err(source) => Err(QueueError::Publish {
                job_id: job_id.to_string(),
                confirmed: summary.queued + summary.duplicates,
                artwork_id,
                source,
            }),
        };
        for item in items {
            if in_flight.len() >= MAX_IN_FLIGHT {
                if let Some((artwork_id, ack)) = in_flight.pop_front() {
                    settle(&mut summary, artwork_id, ack.await)?;
                }
            }
            let confirmed = summary.queued + summary.duplicates;
            let ack = self.publish(job_id, &item, confirmed).await?;
            in_flight.push_back((item.artwork_id().to_string(), ack));
        }
        for (artwork_id, ack) in in_flight {
            settle(&mut summary, artwork_id, ack.await)?;
        }
        Ok(summary)
    }

    /// Sends one item; the returned future resolves to JetStream's ack.
    /// `confirmed` is only for the error message.
    async fn publish(
        &self,
        job_id: &str,
        item: &impl QueueItem,
        confirmed: u64,
    ) -> Result<PublishAckFuture, QueueError> {
        if !is_subject_token(job_id) {
            return Err(QueueError::InvalidJobId {
                job_id: job_id.to_string(),
            });
        }
        let artwork_id = item.artwork_id();
        // HeaderValue::from panics on a line break; parse refuses it instead.
        let msg_id: HeaderValue =
            format!("{job_id}:{artwork_id}")
                .parse()
                .map_err(|_| QueueError::InvalidArtworkId {
                    artwork_id: artwork_id.to_string(),
                })?;
        let payload = serde_json::to_vec(item).map_err(|source| QueueError::Encode {
            artwork_id: artwork_id.to_string(),
            source,
        })?;
        let mut headers = HeaderMap::new();
        headers.insert(HEADER_MSG_ID, msg_id);
        self.js
            .send_publish(
                self.config.items_subject(job_id),
                PublishMessage::build()
                    .payload(payload.into())
                    .headers(headers),
            )
            .await
            .map_err(|source| QueueError::Publish {
                job_id: job_id.to_string(),
                artwork_id: artwork_id.to_string(),
                confirmed,
                source,
            })
    }

    /// A worker pulling items of type `T` from the shared consumer. `name`
    /// identifies it in dead letters and logs.
    pub fn worker<T: DeserializeOwned>(&self, name: &str) -> Worker<T> {
        Worker {
            name: name.to_string(),
            queue: self.clone(),
            _item: PhantomData,
        }
    }

    /// Counts for `coverguard backfill status`.
    pub async fn status(&self) -> Result<QueueStatus, QueueError> {
        let status_error = |what: &str| {
            let what = what.to_string();
            move |source: BoxError| QueueError::Status { what, source }
        };
        let work = self.stream_messages(&self.config.stream).await?;
        let dead = self.stream_messages(&self.config.dead_stream()).await?;
        let consumer = self
            .consumer
            .get_info()
            .await
            .map_err(|e| status_error(&format!("consumer {CONSUMER}"))(e.into()))?;
        Ok(QueueStatus {
            queued: work,
            pending: consumer.num_pending,
            in_flight: consumer.num_ack_pending as u64,
            delivered: consumer.delivered.consumer_sequence,
            redelivered: consumer.num_redelivered as u64,
            dead_letters: dead,
        })
    }

    async fn stream_messages(&self, name: &str) -> Result<u64, QueueError> {
        let stream = self.stream(name).await?;
        let info = stream.get_info().await.map_err(|e| QueueError::Status {
            what: format!("stream {name}"),
            source: e.into(),
        })?;
        Ok(info.state.messages)
    }

    async fn stream(&self, name: &str) -> Result<stream::Stream<()>, QueueError> {
        self.js
            .get_stream_no_info(name)
            .await
            .map_err(|e| QueueError::Status {
                what: format!("stream {name}"),
                source: e.into(),
            })
    }

    /// Reads up to `max` dead letters, oldest first.
    pub async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let name = self.config.dead_stream();
        let stream = self.stream(&name).await?;
        let state = stream
            .get_info()
            .await
            .map_err(|e| QueueError::Status {
                what: format!("stream {name}"),
                source: e.into(),
            })?
            .state;
        let mut letters = Vec::new();
        if state.messages == 0 {
            return Ok(letters);
        }
        for sequence in state.first_sequence..=state.last_sequence {
            if letters.len() >= max {
                break;
            }
            let message = match stream.get_raw_message(sequence).await {
                Ok(m) => m,
                // Deleted by hand: a gap in the sequence, not an error.
                Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound => continue,
                Err(e) => {
                    return Err(QueueError::Status {
                        what: format!("message {sequence} of stream {name}"),
                        source: e.into(),
                    })
                }
            };
            let header = |name: &str| message.headers.get(name).map(|v| v.as_str().to_string());
            letters.push(DeadLetter {
                sequence,
                reason: header(HEADER_REASON).unwrap_or_default(),
                delivered_count: header(HEADER_DELIVERED)
                    .and_then(|d| d.parse().ok())
                    .unwrap_or(0),
                subject: header(HEADER_SUBJECT).unwrap_or_default(),
                msg_id: header(HEADER_MSG_ID),
                worker: header(HEADER_WORKER),
                payload: message.payload.clone(),
            });
        }
        Ok(letters)
    }

    /// Deletes both streams, and with them every queued item and dead letter.
    pub async fn delete(self) -> Result<(), QueueError> {
        for name in [self.config.stream.clone(), self.config.dead_stream()] {
            self.js
                .delete_stream(&name)
                .await
                .map_err(|e| QueueError::Stream {
                    stream: name.clone(),
                    source: e.into(),
                })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_checked_before_connecting() {
        assert!(JobQueueConfig::default().validate().is_ok());
        let cases = [
            JobQueueConfig {
                stream: "has.dot".into(),
                ..Default::default()
            },
            JobQueueConfig {
                subject_prefix: "a.*".into(),
                ..Default::default()
            },
            JobQueueConfig {
                subject_prefix: "a..b".into(),
                ..Default::default()
            },
            JobQueueConfig {
                max_deliver: 1,
                ..Default::default()
            },
            JobQueueConfig {
                max_deliver: -1,
                ..Default::default()
            },
            JobQueueConfig {
                ack_wait: Duration::ZERO,
                ..Default::default()
            },
            JobQueueConfig {
                duplicate_window: Duration::ZERO,
                ..Default::default()
            },
        ];
        for config in cases {
            assert!(
                matches!(config.validate(), Err(QueueError::Config(_))),
                "{config:?} should be refused"
            );
        }
    }

    #[test]
    fn subjects() {
        let config = JobQueueConfig::default();
        assert_eq!(
            config.items_subject("job-1"),
            "coverguard.backfill.items.job-1"
        );
        assert_eq!(config.dead_subject(), "coverguard.backfill.dead");
        assert_eq!(config.dead_stream(), "COVERGUARD_BACKFILL_DEAD");
        assert!(is_subject_token("job_2024-01"));
        for bad in ["", "a.b", "a*", ">", "a b"] {
            assert!(!is_subject_token(bad), "{bad:?}");
        }
    }

    #[test]
    fn header_text_drops_line_breaks() {
        assert_eq!(header_text("a\r\nb\tc").as_str(), "a  b c");
        assert_eq!(header_text("plain").as_str(), "plain");
    }
}
