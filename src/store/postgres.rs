//! Postgres backend, selected by a `postgres://` store URL.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};

use super::*;

type Db = sqlx::Postgres;
type DbRow = PgRow;
type Backend = PgStore;

const BACKEND_NAME: &str = "postgres";
const BEGIN_WRITE: &str = "BEGIN";
// Read committed would let the bank list and the entry list come from different versions.
const BEGIN_SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
// Timestamps are TIMESTAMPTZ; the dashboard's days are UTC days.
const DAY_OF_CREATED: &str = "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')";
// A claim or decision reads the row, then writes it: hold it meanwhile.
const ROW_LOCK: &str = " FOR UPDATE";
const SHARE_LOCK: &str = " FOR SHARE";

const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_CONNECTIONS: u32 = 8;

pub(super) struct PgStore {
    pool: PgPool,
    /// The same pool: Postgres writers queue on row locks, not on one database lock.
    writer: PgPool,
}

impl PgStore {
    pub(super) async fn connect(url: &str) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Invalid(format!("Postgres URL: {e}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Ok(PgStore {
            writer: pool.clone(),
            pool,
        })
    }
}

include!("sql/all.rs");
