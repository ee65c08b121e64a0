//! SQLite backend: the embedded default (a file under `./data`).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};

use super::*;

type Db = sqlx::Sqlite;
type DbRow = SqliteRow;
type Backend = SqliteStore;

const BACKEND_NAME: &str = "sqlite";
// Take the write lock at BEGIN: a deferred transaction that reads first and writes later can
// fail with SQLITE_BUSY at the upgrade without waiting for busy_timeout.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";
// In WAL mode a read transaction sees one snapshot from its first read on.
const BEGIN_SNAPSHOT: &str = "BEGIN";
// Stored as RFC 3339 text, so the date is its first ten characters.
const DAY_OF_CREATED: &str = "substr(created_at, 1, 10)";
// BEGIN IMMEDIATE already serialises writers.
const ROW_LOCK: &str = "";
const SHARE_LOCK: &str = "";

/// How long a connection waits for SQLite's write lock before the call reports unavailable.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_CONNECTIONS: u32 = 8;

pub(super) struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// `url` is `sqlite:…` (sqlx's SQLite URL syntax) or a plain file path.
    pub(super) async fn connect(url: &str) -> StoreResult<Self> {
        let options = if url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::Invalid(format!("SQLite URL: {e}")))?
        } else {
            SqliteConnectOptions::new().filename(url)
        };
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let options = options
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .journal_mode(if in_memory {
                SqliteJournalMode::Memory
            } else {
                SqliteJournalMode::Wal
            })
            // NORMAL is durable across application crashes in WAL mode; only an OS crash can
            // lose the last commits.
            .synchronous(SqliteSynchronous::Normal);

        if !in_memory {
            if let Some(parent) = options.get_filename().parent() {
                if !parent.as_os_str().is_empty() {
                    tokio::fs::create_dir_all(parent).await.map_err(|e| {
                        StoreError::unavailable(
                            format!("cannot create store directory {}", parent.display()),
                            e,
                        )
                    })?;
                }
            }
        }

        let mut pool_options = SqlitePoolOptions::new().acquire_timeout(ACQUIRE_TIMEOUT);
        pool_options = if in_memory {
            // Each connection to :memory: is its own database: keep exactly one, forever.
            pool_options
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            pool_options.max_connections(MAX_CONNECTIONS)
        };
        let pool = pool_options.connect_with(options).await?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        Ok(SqliteStore { pool })
    }
}

include!("sql/all.rs");
