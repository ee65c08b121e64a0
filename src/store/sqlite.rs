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
    /// Reads. On a file its connections are `query_only`, so a write that skips
    /// [`Self::begin_write`] fails at once instead of waiting unseen for the write lock.
    pool: SqlitePool,
    /// Writes, through [`Self::begin_write`] only.
    writer: SqlitePool,
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

        let pool_options = SqlitePoolOptions::new().acquire_timeout(ACQUIRE_TIMEOUT);
        if in_memory {
            // Each connection to :memory: is its own database: keep exactly one, forever,
            // for reads and writes alike.
            let pool = pool_options
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await?;
            sqlx::migrate!("migrations/sqlite").run(&pool).await?;
            return Ok(SqliteStore {
                writer: pool.clone(),
                pool,
            });
        }
        let writer = pool_options
            .clone()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&writer).await?;
        let pool = pool_options
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options.pragma("query_only", "ON"))
            .await?;
        Ok(SqliteStore { pool, writer })
    }
}

include!("sql/all.rs");

#[cfg(test)]
mod tests {
    use super::*;

    /// A write must begin on the writer, where its wait for the lock is counted and an import
    /// pauses for it; on the read pool it would wait unseen, so that pool refuses it.
    #[tokio::test]
    async fn only_the_writer_writes_to_a_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("coverguard.db");
        let store = SqliteStore::connect(path.to_str().expect("utf-8 temp path"))
            .await
            .expect("open sqlite store");
        let statement = "INSERT INTO in_flight (key, holder, until) VALUES ('k', 'h', '')";
        let refused = sqlx::query(statement)
            .execute(&store.pool)
            .await
            .expect_err("a write on the read pool");
        assert!(refused.to_string().contains("readonly"), "{refused}");
        let written = sqlx::query(statement).execute(&store.writer).await;
        assert_eq!(written.expect("a write on the writer").rows_affected(), 1);
    }
}
