//! The worker's side of the queue: pulling items, and each delivery's ack, nak, progress
//! and dead letter.

use std::marker::PhantomData;
use std::time::Duration;

use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, AckKind};
use async_nats::{HeaderMap, HeaderValue};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::{
    BoxError, JobQueue, QueueError, HEADER_DELIVERED, HEADER_MSG_ID, HEADER_REASON, HEADER_SUBJECT,
    HEADER_WORKER, MIN_PULL_EXPIRES,
};

/// Pulls items from the shared consumer. See the [queue's docs](super) for the
/// delivery contract.
pub struct Worker<T> {
    pub(super) name: String,
    pub(super) queue: JobQueue,
    pub(super) _item: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Worker<T> {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The next item, or `None` if none came within `wait`.
    ///
    /// Items on their last delivery (`max_deliver`), and payloads that do not
    /// decode as `T`, are dead-lettered here and never returned.
    pub async fn next(&self, wait: Duration) -> Result<Option<Delivery<T>>, QueueError> {
        let deadline = Instant::now() + wait;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if let Some(delivery) = self.pull_one(remaining.max(MIN_PULL_EXPIRES)).await? {
                return Ok(Some(delivery));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
        }
    }

    /// One pull request for one message. `None` when it expired empty, or
    /// when the message was dead-lettered.
    async fn pull_one(&self, expires: Duration) -> Result<Option<Delivery<T>>, QueueError> {
        let stream = &self.queue.config.stream;
        let fetch_error = |source: BoxError| QueueError::Fetch {
            stream: stream.clone(),
            source,
        };
        let mut batch = self
            .queue
            .consumer
            .batch()
            .max_messages(1)
            .expires(expires)
            .messages()
            .await
            .map_err(|e| fetch_error(e.into()))?;
        let Some(message) = batch.next().await.transpose().map_err(fetch_error)? else {
            return Ok(None);
        };
        let (sequence, delivered_count) = {
            let info = message.info().map_err(|source| QueueError::Metadata {
                stream: stream.clone(),
                source,
            })?;
            (info.stream_sequence, info.delivered.max(0) as u64)
        };
        let raw = Received {
            delivered_count,
            sequence,
            message,
            worker: self.name.clone(),
            queue: self.queue.clone(),
        };
        let max_deliver = self.queue.config.max_deliver as u64;
        if delivered_count >= max_deliver {
            let reason = format!(
                "delivered {delivered_count} times (max_deliver {max_deliver}) without an ack: \
                 each earlier attempt failed, timed out or crashed its worker"
            );
            tracing::warn!(sequence, worker = %self.name, "dead-lettering: {reason}");
            raw.dead_letter(&reason).await?;
            return Ok(None);
        }
        match serde_json::from_slice::<T>(&raw.message.payload) {
            Ok(item) => Ok(Some(Delivery { item, raw })),
            Err(e) => {
                let reason = format!("payload is not a valid item: {e}");
                tracing::warn!(sequence, worker = %self.name, "dead-lettering: {reason}");
                raw.dead_letter(&reason).await?;
                Ok(None)
            }
        }
    }
}

/// One delivered item. Finish it with one of [`ack`](Self::ack),
/// [`nak`](Self::nak) or [`dead_letter`](Self::dead_letter); dropping it
/// unfinished leaves it to be redelivered after `ack_wait`, as if the worker
/// had died.
pub struct Delivery<T> {
    pub item: T,
    raw: Received,
}

/// A message as pulled, before its payload is decoded.
struct Received {
    delivered_count: u64,
    sequence: u64,
    message: jetstream::Message,
    worker: String,
    queue: JobQueue,
}

impl<T> Delivery<T> {
    /// The raw payload, as enqueued.
    pub fn payload(&self) -> &Bytes {
        &self.raw.message.payload
    }

    /// 1 on the first delivery, 2 on the first redelivery, …
    pub fn delivered_count(&self) -> u64 {
        self.raw.delivered_count
    }

    /// The message's sequence in the work stream.
    pub fn sequence(&self) -> u64 {
        self.raw.sequence
    }

    /// The job the item belongs to (the last token of its subject).
    pub fn job_id(&self) -> &str {
        let subject = self.raw.message.subject.as_str();
        subject.rsplit('.').next().unwrap_or(subject)
    }

    /// Done: the item leaves the queue. Waits for the server to confirm, so an
    /// `Ok` means it will not be redelivered.
    pub async fn ack(self) -> Result<(), QueueError> {
        let raw = self.raw;
        raw.message
            .double_ack()
            .await
            .map_err(|e| raw.ack_error("ack", e))
    }

    /// Not now: deliver it again after `delay` (to any worker). This counts as
    /// a delivery towards `max_deliver`.
    pub async fn nak(self, delay: Duration) -> Result<(), QueueError> {
        let raw = self.raw;
        let delay = (!delay.is_zero()).then_some(delay);
        raw.message
            .ack_with(AckKind::Nak(delay))
            .await
            .map_err(|e| raw.ack_error("nak", e))
    }

    /// Still working: restarts the `ack_wait` clock. Call it more often than
    /// `ack_wait` on items that take long.
    pub async fn in_progress(&self) -> Result<(), QueueError> {
        self.raw
            .message
            .ack_with(AckKind::Progress)
            .await
            .map_err(|e| self.raw.ack_error("extend the ack wait of", e))
    }

    /// Gives up on the item for good: publishes its payload, `reason` and
    /// delivery count to the dead-letter stream, then terminates the message
    /// so it is never delivered again. If the publish fails, the message is
    /// left alone and comes back after `ack_wait`.
    pub async fn dead_letter(self, reason: &str) -> Result<(), QueueError> {
        self.raw.dead_letter(reason).await
    }
}

impl Received {
    fn ack_error(&self, action: &'static str, source: BoxError) -> QueueError {
        QueueError::Ack {
            action,
            stream: self.queue.config.stream.clone(),
            sequence: self.sequence,
            source,
        }
    }

    async fn dead_letter(self, reason: &str) -> Result<(), QueueError> {
        let config = &self.queue.config;
        let mut headers = HeaderMap::new();
        headers.insert(HEADER_REASON, header_text(reason));
        headers.insert(
            HEADER_DELIVERED,
            header_text(&self.delivered_count.to_string()),
        );
        headers.insert(HEADER_SUBJECT, header_text(self.message.subject.as_str()));
        headers.insert(HEADER_WORKER, header_text(&self.worker));
        // The original id: if the TERM below is lost and the item comes back,
        // the dead-letter stream drops the second copy.
        let original_id = self
            .message
            .headers
            .as_ref()
            .and_then(|h| h.get(HEADER_MSG_ID))
            .map(|v| v.as_str().to_string())
            .unwrap_or_else(|| format!("seq:{}", self.sequence));
        headers.insert(HEADER_MSG_ID, header_text(&original_id));
        let dead_error = |source| QueueError::DeadLetter {
            stream: config.stream.clone(),
            sequence: self.sequence,
            source,
        };
        self.queue
            .js
            .send_publish(
                config.dead_subject(),
                PublishMessage::build()
                    .payload(self.message.payload.clone())
                    .headers(headers),
            )
            .await
            .map_err(dead_error)?
            .await
            .map_err(dead_error)?;
        self.message
            .double_ack_with(AckKind::Term)
            .await
            .map_err(|e| self.ack_error("terminate", e))
    }
}

/// A header value from free text: line breaks (which NATS headers cannot
/// hold) become spaces.
pub(super) fn header_text(text: &str) -> HeaderValue {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    // No control characters are left, so this parse cannot fail; an empty
    // value is the fallback all the same.
    clean.parse().unwrap_or_default()
}
