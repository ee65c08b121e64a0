//! Evidence between the vault and the row that points at it.
//!
//! Objects are named by the SHA-256 of their bytes, so screenings of the same bytes share
//! one object, and the store's row is written after the object. A screening that records
//! nothing (an `Idempotency-Key` race lost, a failed write) deletes the object it wrote
//! unless a row points at it, but another screening of the same bytes may have written
//! (or found) the object and not yet landed its row. Both sides therefore check after
//! their own step: the deleter looks for a row again after deleting and puts the bytes
//! back when one appeared, and a screening whose row landed puts its bytes again (a no-op
//! while the object is there). Whatever the interleaving, across processes too, the
//! last of the two steps leaves the object in place when a row points at it.

use std::time::SystemTime;

use crate::act::quarantine::{ObjectKey, QuarantineError, QuarantineVault};
use crate::store::{QuarantineWrite, Store, StoreError};

#[derive(Debug, thiserror::Error)]
enum DiscardError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] QuarantineError),
}

/// An encrypted copy written for a screening whose row is not yet recorded.
pub(crate) struct PendingEvidence<'a> {
    sha256: &'a str,
    bytes: &'a [u8],
    retention_until: SystemTime,
}

impl<'a> PendingEvidence<'a> {
    /// Write the encrypted copy: it exists before the row that points at it.
    pub(crate) async fn write(
        vault: &dyn QuarantineVault,
        sha256: &'a str,
        bytes: &'a [u8],
        retention_until: SystemTime,
    ) -> Result<(PendingEvidence<'a>, QuarantineWrite), QuarantineError> {
        let key = vault.put(sha256, bytes, retention_until).await?;
        let write = QuarantineWrite {
            object_key: key.sha256().to_string(),
            retention_until: chrono::DateTime::<chrono::Utc>::from(retention_until),
        };
        Ok((
            PendingEvidence {
                sha256,
                bytes,
                retention_until,
            },
            write,
        ))
    }

    /// The row landed: make sure the object it points at is still there, since a screening
    /// that recorded nothing may have deleted it before this row was visible.
    pub(crate) async fn recorded(self, vault: &dyn QuarantineVault) {
        if let Err(e) = vault
            .put(self.sha256, self.bytes, self.retention_until)
            .await
        {
            tracing::error!(
                sha256 = self.sha256,
                "a recorded screening's evidence could not be confirmed in the vault: {e}"
            );
        }
    }

    /// Nothing was recorded: delete the object unless a stored row points at it, since it
    /// would be an encrypted copy nothing can find, review or release, kept for the whole
    /// retention. A failure is logged, not answered: the file then stays until it expires.
    pub(crate) async fn unrecorded(self, vault: &dyn QuarantineVault, store: &dyn Store) {
        if let Err(e) = self.discard(vault, store).await {
            tracing::warn!(
                sha256 = self.sha256,
                "keeping evidence no screening recorded: {e}"
            );
        }
    }

    async fn discard(
        &self,
        vault: &dyn QuarantineVault,
        store: &dyn Store,
    ) -> Result<(), DiscardError> {
        if !store.quarantine_items(self.sha256).await?.is_empty() {
            return Ok(());
        }
        let key = ObjectKey::from_sha256(self.sha256)?;
        if !vault.delete(&key).await? {
            return Ok(());
        }
        // A row that landed between the check and the delete points at these bytes.
        if !store.quarantine_items(self.sha256).await?.is_empty() {
            vault
                .put(self.sha256, self.bytes, self.retention_until)
                .await?;
            tracing::info!(
                sha256 = self.sha256,
                "put back evidence another screening recorded meanwhile"
            );
        }
        Ok(())
    }
}
