//! Screenings of identical bytes in flight together run one after the other, so the later
//! ones find the first one's verdict cached: inferred once. Within a process an async lock per
//! key orders them; across replicas on one store, a claim in the store does. A claim lasts
//! [`CLAIM_LEASE`] at most, so a replica that dies holding one delays the others no longer.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::TimeDelta;

use crate::store::{self, Store, StoreError};

/// Longer than a screening usually takes. A screening that takes longer only costs its
/// waiters an inference of their own; a replica that died (or restarted) holding a claim
/// delays the next screening of those bytes by this much at most.
pub const CLAIM_LEASE: TimeDelta = TimeDelta::seconds(10);
/// How often a waiter asks again for a claim another replica holds: first, and at most.
const FIRST_POLL: Duration = Duration::from_millis(20);
const LONGEST_POLL: Duration = Duration::from_millis(250);
/// Locks remembered before the unused ones are dropped.
const LOCKS_KEPT: usize = 4096;

pub struct SameBytes {
    locks: std::sync::Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
    store: Arc<dyn Store>,
}

/// The turn of one screening of some bytes: the others wait until it is dropped.
pub struct BytesTurn {
    local: Option<tokio::sync::OwnedMutexGuard<()>>,
    store: Arc<dyn Store>,
    sha256: String,
    holder: String,
}

impl SameBytes {
    pub fn new(store: Arc<dyn Store>) -> Self {
        SameBytes {
            locks: Default::default(),
            store,
        }
    }

    /// Waits for this process's other requests under the idempotency key `id`. Replicas need
    /// no wait here: the store keeps one screening per key.
    pub(crate) async fn key(&self, id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        // The prefix keeps keys apart from hashes.
        self.local(&format!("key:{id}")).await
    }

    /// Waits for every other screening of the bytes `sha256`, in this process and in every
    /// replica on the store.
    pub(crate) async fn bytes(&self, sha256: &str) -> Result<BytesTurn, StoreError> {
        let local = self.local(sha256).await;
        let holder = store::new_id();
        let mut pause = FIRST_POLL;
        loop {
            let now = store::now_utc();
            if self
                .store
                .claim_in_flight(sha256, &holder, now, now + CLAIM_LEASE)
                .await?
            {
                break;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(LONGEST_POLL);
        }
        Ok(BytesTurn {
            local: Some(local),
            store: Arc::clone(&self.store),
            sha256: sha256.to_string(),
            holder,
        })
    }

    async fn local(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            if locks.len() > LOCKS_KEPT {
                locks.retain(|_, weak| weak.strong_count() > 0);
            }
            match locks.get(key).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(key.to_string(), Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }
}

impl Drop for BytesTurn {
    fn drop(&mut self) {
        // Released in a task of its own, which holds this process's lock until the claim is
        // gone, so a local waiter finds it free at once. Without a runtime, or if the release
        // fails, the lease ends the claim.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (local, store, sha256, holder) = (
            self.local.take(),
            Arc::clone(&self.store),
            std::mem::take(&mut self.sha256),
            std::mem::take(&mut self.holder),
        );
        runtime.spawn(async move {
            if let Err(e) = store
                .release_in_flight(&sha256, &holder, store::now_utc())
                .await
            {
                tracing::warn!(error = %e.chain(), "replicas screening the same bytes wait for the claim's lease");
            }
            drop(local);
        });
    }
}
