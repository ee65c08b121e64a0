//! API tokens held in memory, so checking a bearer token costs no store query: a caller
//! without a valid token is refused before anything is read or queued for it.
//!
//! Tokens are written to the store at start-up; the copy here is refreshed periodically
//! so a token revoked through the store (by another replica, say) stops working within
//! one refresh interval.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::store::{Store, StoreResult, TokenRole};

/// How often the in-memory copy is re-read from the store.
pub const REFRESH_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
pub struct TokenCache {
    /// By the sha256 hex of the token.
    roles: RwLock<Arc<HashMap<String, TokenRole>>>,
}

impl TokenCache {
    /// Role of the token whose sha256 hex is `hash`, if it is active.
    pub fn role(&self, hash: &str) -> Option<TokenRole> {
        self.roles
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(hash)
            .copied()
    }

    /// Replaces the copy with the store's active tokens.
    pub async fn refresh(&self, store: &dyn Store) -> StoreResult<()> {
        let roles: HashMap<String, TokenRole> = store
            .active_tokens()
            .await?
            .into_iter()
            .map(|(hash, role)| (hash.to_ascii_lowercase(), role))
            .collect();
        *self.roles.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(roles);
        Ok(())
    }

    /// Refreshes every [`REFRESH_EVERY`] until `shutdown` changes. A failed refresh keeps
    /// the last copy (a store outage does not lock every caller out).
    pub fn spawn_refresh(
        self: Arc<Self>,
        store: Arc<dyn Store>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(REFRESH_EVERY) => {}
                    _ = shutdown.changed() => return,
                }
                if let Err(e) = self.refresh(store.as_ref()).await {
                    tracing::warn!("refreshing API tokens from the store: {}", e.chain());
                }
            }
        })
    }
}
