// Column lists, row mappers and the limits every part of the store shares.

const SCREENING_COLUMNS: &str = "id, artwork_id, owner_id, sha256, md5, pdq, pdq_quality, \
     verdict, model, policy_version, banks_version, analysis, view_pdq, record, context, created_at";
const ARTWORK_COLUMNS: &str = "artwork_id, owner_id, latest_screening_id, status, updated_at";
const BANK_COLUMNS: &str =
    "name, signal_types, pdq_threshold, action, allow_list, severity, created_at, category";
const ENTRY_COLUMNS: &str = "id, bank, signal, hash, external_id, disabled, added_at";
const QUARANTINE_COLUMNS: &str = "id, sha256, screening_id, artwork_id, owner_id, object_key, \
     retention_until, created_at, released_at";
const REVIEW_COLUMNS: &str = "id, screening_id, artwork_id, priority, state, reason, claimed_by, \
     claimed_at, decided_at, decision, note, created_at, level, verdict, owner_id, top_label, \
     top_score, labels, banks, reason_code";
const REPORT_COLUMNS: &str = "id, screening_id, idempotency_key, kind, payload, state, attempts, \
     next_attempt_at, last_error, created_at, delivered_at";
const AUDIT_COLUMNS: &str = "id, actor, action, subject, detail, at";

/// Longest delivery error kept per report; webhook bodies can be large.
const MAX_ERROR_CHARS: usize = 2000;
/// Rows per multi-row INSERT in bulk entry imports (well under both backends' bind limits).
const ENTRY_CHUNK: usize = 500;
/// Entries visible to screening and the admin API: not part of an unpublished import.
const VISIBLE: &str =
    "(import_id IS NULL OR import_id IN (SELECT id FROM bank_imports WHERE published = TRUE))";
/// Largest entry change logged per version; a bigger one is read by a rebuild instead, which
/// is then cheaper than patching the index entry by entry.
const MAX_LOGGED_CHANGES: usize = 1000;
/// Pause between the batches of an import while a writer of this process waits: SQLite's
/// busy handler polls with sleeps of up to 100 ms, so a shorter pause could miss it.
const IMPORT_GAP: std::time::Duration = std::time::Duration::from_millis(110);
/// Pause between the batches when no writer of this process waits, for other processes'.
const IMPORT_GAP_IDLE: std::time::Duration = std::time::Duration::from_millis(10);
/// Longest an import batch holds the write lock, commit included, as its pace foresees it.
const IMPORT_BATCH_TIME: std::time::Duration = std::time::Duration::from_millis(200);
/// Versions of the change log kept; an index further behind rebuilds.
const CHANGE_LOG_KEPT: i64 = 1024;

type Tx = sqlx::Transaction<'static, Db>;

/// A JSON column of a row that has no type of its own.
fn json_column<T: serde::de::DeserializeOwned>(row: &DbRow, column: &str) -> StoreResult<T> {
    Ok(row.try_get::<JsonText<T>, _>(column)?.0)
}

impl Backend {
    /// The row `sql` selects with `key` as `$1`, as `T`.
    async fn one_by_key<T>(&self, sql: &str, key: &str) -> StoreResult<Option<T>>
    where
        T: for<'r> sqlx::FromRow<'r, DbRow> + Send + Unpin,
    {
        Ok(sqlx::query_as(sql)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The rows `sql` selects as due at `now` (`$1`), at most `limit` (`$2`), as `T`.
    async fn due_rows<T>(&self, sql: &str, now: DateTime<Utc>, limit: i64) -> StoreResult<Vec<T>>
    where
        T: for<'r> sqlx::FromRow<'r, DbRow> + Send + Unpin,
    {
        Ok(sqlx::query_as(sql)
            .bind(now)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }
}

/// A row as `T`, by column name (`sqlx::FromRow`).
fn from_row<T: for<'r> sqlx::FromRow<'r, DbRow>>(row: &DbRow) -> StoreResult<T> {
    Ok(T::from_row(row)?)
}

fn rows<T>(rows: Vec<DbRow>, map: fn(&DbRow) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    rows.iter().map(map).collect()
}
