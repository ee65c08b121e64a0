// The store implementation shared by both backends. Each backend file `include!`s this file
// after defining:
//   `Db` (the sqlx database), `DbRow` (its row type), `Backend` (struct with a `pool` field),
//   `BACKEND_NAME`, `BEGIN_WRITE` (starts a transaction that will write; SQLite takes the write
//   lock up front so it waits on busy_timeout instead of failing on lock upgrade),
//   `BEGIN_SNAPSHOT` (a transaction whose reads all see one snapshot) and `SHARE_LOCK`
//   (suffix that holds a read row lock until commit).
// The SQL here must stay portable between SQLite and Postgres: `$n` placeholders (SQLite reads
// them positionally), `ON CONFLICT`, `RETURNING`, TRUE/FALSE literals.

use sqlx::Row as _;

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
/// Longest an import batch keeps adding rows while it holds the write lock.
const IMPORT_BATCH_TIME: std::time::Duration = std::time::Duration::from_millis(200);
/// Rows an import batch adds between looks at the time (divides [`IMPORT_BATCH`]).
const IMPORT_STEP: usize = 2_000;
/// Versions of the change log kept; an index further behind rebuilds.
const CHANGE_LOG_KEPT: i64 = 1024;

type Tx = sqlx::Transaction<'static, Db>;

fn screening_from_row(row: &DbRow) -> StoreResult<ScreeningRow> {
    let record: String = row.try_get("record")?;
    let context: String = row.try_get("context")?;
    let view_pdq: String = row.try_get("view_pdq")?;
    Ok(ScreeningRow {
        id: row.try_get("id")?,
        artwork_id: row.try_get("artwork_id")?,
        owner_id: row.try_get("owner_id")?,
        sha256: row.try_get("sha256")?,
        md5: row.try_get("md5")?,
        pdq: row.try_get("pdq")?,
        pdq_quality: row.try_get("pdq_quality")?,
        verdict: row.try_get::<String, _>("verdict")?.parse()?,
        model: row.try_get("model")?,
        policy_version: row.try_get("policy_version")?,
        banks_version: row.try_get("banks_version")?,
        analysis: row.try_get("analysis")?,
        view_pdq: parse_view_pdq(&view_pdq)?,
        record: parse_json("record", &record)?,
        context: parse_json("context", &context)?,
        created_at: row.try_get("created_at")?,
    })
}

fn parse_view_pdq(text: &str) -> StoreResult<Vec<ViewPdq>> {
    serde_json::from_str(text).map_err(|e| StoreError::backend("stored view_pdq does not parse", e))
}

fn artwork_from_row(row: &DbRow) -> StoreResult<ArtworkRow> {
    let status: String = row.try_get("status")?;
    Ok(ArtworkRow {
        artwork_id: row.try_get("artwork_id")?,
        owner_id: row.try_get("owner_id")?,
        latest_screening_id: row.try_get("latest_screening_id")?,
        status: status.parse()?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn bank_from_row(row: &DbRow) -> StoreResult<BankRow> {
    let signal_types: String = row.try_get("signal_types")?;
    let signal_types: Vec<String> = serde_json::from_str(&signal_types)
        .map_err(|e| StoreError::backend("banks.signal_types holds invalid JSON", e))?;
    let action: String = row.try_get("action")?;
    Ok(BankRow {
        spec: BankSpec {
            name: row.try_get("name")?,
            signal_types,
            pdq_threshold: row.try_get("pdq_threshold")?,
            action: action.parse()?,
            allow_list: row.try_get("allow_list")?,
            severity: row.try_get("severity")?,
            category: row.try_get("category")?,
        },
        created_at: row.try_get("created_at")?,
    })
}

fn entry_from_row(row: &DbRow) -> StoreResult<EntryRow> {
    Ok(EntryRow {
        id: row.try_get("id")?,
        bank: row.try_get("bank")?,
        signal: row.try_get("signal")?,
        hash: row.try_get("hash")?,
        external_id: row.try_get("external_id")?,
        disabled: row.try_get("disabled")?,
        added_at: row.try_get("added_at")?,
    })
}

fn quarantine_from_row(row: &DbRow) -> StoreResult<QuarantineRow> {
    Ok(QuarantineRow {
        id: row.try_get("id")?,
        sha256: row.try_get("sha256")?,
        screening_id: row.try_get("screening_id")?,
        artwork_id: row.try_get("artwork_id")?,
        owner_id: row.try_get("owner_id")?,
        object_key: row.try_get("object_key")?,
        retention_until: row.try_get("retention_until")?,
        created_at: row.try_get("created_at")?,
        released_at: row.try_get("released_at")?,
    })
}

fn review_from_row(row: &DbRow) -> StoreResult<ReviewRow> {
    let state: String = row.try_get("state")?;
    Ok(ReviewRow {
        id: row.try_get("id")?,
        screening_id: row.try_get("screening_id")?,
        artwork_id: row.try_get("artwork_id")?,
        priority: row.try_get("priority")?,
        state: state.parse()?,
        reason: row.try_get("reason")?,
        claimed_by: row.try_get("claimed_by")?,
        claimed_at: row.try_get("claimed_at")?,
        decided_at: row.try_get("decided_at")?,
        decision: row.try_get("decision")?,
        note: row.try_get("note")?,
        created_at: row.try_get("created_at")?,
        level: row.try_get::<String, _>("level")?.parse()?,
        verdict: row
            .try_get::<Option<String>, _>("verdict")?
            .map(|v| v.parse())
            .transpose()?,
        owner_id: row.try_get("owner_id")?,
        top_label: row.try_get("top_label")?,
        top_score: row.try_get("top_score")?,
        labels: decode_list(&row.try_get::<String, _>("labels")?),
        banks: decode_list(&row.try_get::<String, _>("banks")?),
        reason_code: row.try_get("reason_code")?,
    })
}

/// `[a, b]` as `,a,b,` (empty as ``), so `LIKE '%,a,%'` finds one member on both backends.
fn encode_list(items: &[String]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let mut text = String::from(",");
    for item in items {
        text.push_str(&item.replace(',', "_"));
        text.push(',');
    }
    text
}

fn decode_list(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn report_from_row(row: &DbRow) -> StoreResult<ReportRow> {
    let payload: String = row.try_get("payload")?;
    let state: String = row.try_get("state")?;
    Ok(ReportRow {
        id: row.try_get("id")?,
        screening_id: row.try_get("screening_id")?,
        idempotency_key: row.try_get("idempotency_key")?,
        kind: row.try_get("kind")?,
        payload: parse_json("payload", &payload)?,
        state: state.parse()?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        delivered_at: row.try_get("delivered_at")?,
    })
}

fn audit_from_row(row: &DbRow) -> StoreResult<AuditRow> {
    let detail: String = row.try_get("detail")?;
    Ok(AuditRow {
        id: row.try_get("id")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        subject: row.try_get("subject")?,
        detail: parse_json("detail", &detail)?,
        at: row.try_get("at")?,
    })
}

fn rows<T>(rows: Vec<DbRow>, map: fn(&DbRow) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    rows.iter().map(map).collect()
}

/// Writers of this process waiting to begin a write transaction (on any store of this
/// backend: a count shared by two stores only lengthens an import's pauses).
static WRITERS_WAITING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Counts a writer as waiting until it began or gave up (a dropped future included).
struct WaitingWriter;

impl WaitingWriter {
    fn new() -> Self {
        WRITERS_WAITING.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        WaitingWriter
    }
}

impl Drop for WaitingWriter {
    fn drop(&mut self) {
        WRITERS_WAITING.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Backend {
    async fn begin_write(&self) -> StoreResult<Tx> {
        let _waiting = WaitingWriter::new();
        Ok(self.pool.begin_with(BEGIN_WRITE).await?)
    }

    /// How long an import pauses after a batch: long enough for a waiting writer to take
    /// the lock, short when none waits.
    fn import_gap() -> std::time::Duration {
        if WRITERS_WAITING.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            IMPORT_GAP
        } else {
            IMPORT_GAP_IDLE
        }
    }

    async fn current_banks_version(
        conn: &mut <Db as sqlx::Database>::Connection,
    ) -> StoreResult<i64> {
        let row = sqlx::query("SELECT value FROM counters WHERE name = 'banks_version'")
            .fetch_one(&mut *conn)
            .await?;
        Ok(row.try_get("value")?)
    }

    async fn bump_banks_version(tx: &mut Tx) -> StoreResult<i64> {
        let row = sqlx::query(
            "UPDATE counters SET value = value + 1 WHERE name = 'banks_version' RETURNING value",
        )
        .fetch_one(&mut **tx)
        .await?;
        Ok(row.try_get("value")?)
    }

    /// Bumps the version when something changed, else reads it; either way inside `tx`.
    async fn finish_bank_change(mut tx: Tx, changed: u64) -> StoreResult<BankChange> {
        let banks_version = if changed > 0 {
            Self::bump_banks_version(&mut tx).await?
        } else {
            Self::current_banks_version(&mut tx).await?
        };
        tx.commit().await?;
        Ok(BankChange {
            changed,
            banks_version,
        })
    }

    /// Bumps the version when something changed, logging `changes` as what it changed in the
    /// matched set (`None`: not logged, so other indexes rebuild).
    async fn finish_logged_change(
        mut tx: Tx,
        changed: u64,
        changes: Option<Vec<EntryChange>>,
    ) -> StoreResult<BankChange> {
        if changed == 0 {
            return Self::finish_bank_change(tx, 0).await;
        }
        let banks_version = Self::bump_banks_version(&mut tx).await?;
        if let Some(changes) = changes.filter(|c| c.len() <= MAX_LOGGED_CHANGES) {
            let ops = serde_json::to_string(&changes)
                .map_err(|e| StoreError::backend("the bank change log does not serialise", e))?;
            sqlx::query("INSERT INTO bank_changes (version, ops) VALUES ($1, $2)")
                .bind(banks_version)
                .bind(ops)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM bank_changes WHERE version <= $1")
                .bind(banks_version - CHANGE_LOG_KEPT)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(BankChange {
            changed,
            banks_version,
        })
    }

    /// Validates and inserts entries into `bank` inside `tx`; returns how many were new (the
    /// caller bumps the banks version when that is not 0).
    async fn insert_entries(tx: &mut Tx, bank: &str, entries: &[EntryWrite]) -> StoreResult<u64> {
        Ok(Self::insert_entry_rows(tx, bank, entries, None)
            .await?
            .len() as u64)
    }

    /// Inserts entries into `bank` inside `tx` and returns the new ones as changes. Outside an
    /// import they count at once; rows of `import_id` count when it is published.
    async fn insert_entry_rows(
        tx: &mut Tx,
        bank: &str,
        entries: &[EntryWrite],
        import_id: Option<&str>,
    ) -> StoreResult<Vec<EntryChange>> {
        let mut cleaned: Vec<(String, String, Option<String>)> = Vec::with_capacity(entries.len());
        let mut seen = std::collections::HashSet::new();
        for entry in entries {
            require_nonempty("entry signal", &entry.signal)?;
            require_nonempty("entry hash", &entry.hash)?;
            let signal = entry.signal.trim().to_string();
            let hash = normalise_hash(&entry.hash);
            if seen.insert((signal.clone(), hash.clone())) {
                cleaned.push((signal, hash, entry.external_id.clone()));
            }
        }

        let row = sqlx::query(&format!("SELECT {BANK_COLUMNS} FROM banks WHERE name = $1"))
            .bind(bank)
            .fetch_optional(&mut **tx)
            .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound(format!("bank {bank:?}")));
        };
        let bank_row = bank_from_row(&row)?;
        if let Some((signal, _, _)) = cleaned
            .iter()
            .find(|(signal, _, _)| !super::bank_holds(&bank_row.spec.signal_types, signal))
        {
            return Err(StoreError::Invalid(format!(
                "bank {bank:?} does not hold signal type {signal:?}"
            )));
        }

        let added_at = now_utc();
        let mut added = Vec::new();
        for chunk in cleaned.chunks(ENTRY_CHUNK) {
            let mut builder = sqlx::QueryBuilder::<Db>::new(format!(
                "INSERT INTO bank_entries ({ENTRY_COLUMNS}, import_id) "
            ));
            builder.push_values(chunk, |mut values, (signal, hash, external_id)| {
                values
                    .push_bind(new_id())
                    .push_bind(bank.to_string())
                    .push_bind(signal.clone())
                    .push_bind(hash.clone())
                    .push_bind(external_id.clone())
                    .push_bind(false)
                    .push_bind(added_at)
                    .push_bind(import_id);
            });
            builder.push(
                " ON CONFLICT (bank, signal, hash) DO NOTHING RETURNING id, signal, hash, external_id",
            );
            for row in builder.build().fetch_all(&mut **tx).await? {
                let id: String = row.try_get("id")?;
                let external_id: Option<String> = row.try_get("external_id")?;
                added.push(EntryChange {
                    bank: bank.to_string(),
                    signal: row.try_get("signal")?,
                    hash: row.try_get("hash")?,
                    matched_as: Some(external_id.unwrap_or(id)),
                });
            }
        }
        let count = added.len() as i64;
        let counter = match import_id {
            None => "UPDATE banks SET entry_count = entry_count + $2 WHERE name = $1",
            Some(_) => "UPDATE bank_imports SET added = added + $2 WHERE id = $1",
        };
        if count > 0 {
            sqlx::query(counter)
                .bind(import_id.unwrap_or(bank))
                .bind(count)
                .execute(&mut **tx)
                .await?;
        }
        Ok(added)
    }

    /// Deletes what an unpublished import staged, a batch per transaction, then its record.
    async fn discard_import(&self, import_id: &str) -> StoreResult<()> {
        loop {
            let mut tx = self.begin_write().await?;
            let deleted = sqlx::query(
                "DELETE FROM bank_entries WHERE id IN \
                 (SELECT id FROM bank_entries WHERE import_id = $1 LIMIT $2)",
            )
            .bind(import_id)
            .bind(IMPORT_BATCH as i64)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if deleted == 0 {
                sqlx::query("DELETE FROM bank_imports WHERE id = $1 AND published = FALSE")
                    .bind(import_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            if deleted == 0 {
                return Ok(());
            }
        }
    }

    /// Stages every batch under `import_id`, then publishes it.
    async fn stage_and_publish(
        &self,
        bank: &str,
        import_id: &str,
        entries: &[EntryWrite],
    ) -> StoreResult<BankChange> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO bank_imports (id, bank, added, published, created_at) \
             VALUES ($1, $2, 0, FALSE, $3)",
        )
        .bind(import_id)
        .bind(bank)
        .bind(now_utc())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut rest = entries;
        while !rest.is_empty() {
            let mut tx = self.begin_write().await?;
            // Rows go in by steps until the batch is full or has held the lock long enough:
            // in a large table each row costs more, and a screening waits for the whole batch.
            let (started, mut written) = (std::time::Instant::now(), 0);
            while !rest.is_empty()
                && written < IMPORT_BATCH
                && started.elapsed() < IMPORT_BATCH_TIME
            {
                let (step, after) = rest.split_at(rest.len().min(IMPORT_STEP));
                Self::insert_entry_rows(&mut tx, bank, step, Some(import_id)).await?;
                (written, rest) = (written + step.len(), after);
            }
            tx.commit().await?;
            // Without a gap the next batch takes the lock back before a waiting screening's
            // busy handler looks again, and the screening starves.
            tokio::time::sleep(Self::import_gap()).await;
        }
        let mut tx = self.begin_write().await?;
        let published = sqlx::query(
            "UPDATE bank_imports SET published = TRUE WHERE id = $1 AND published = FALSE \
             RETURNING added",
        )
        .bind(import_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(published) = published else {
            return Err(StoreError::Conflict(format!("import {import_id} vanished")));
        };
        let added: i64 = published.try_get("added")?;
        let bank_left =
            sqlx::query("UPDATE banks SET entry_count = entry_count + $2 WHERE name = $1")
                .bind(bank)
                .bind(added)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if bank_left == 0 {
            return Err(StoreError::NotFound(format!("bank {bank:?}")));
        }
        Self::finish_logged_change(tx, added as u64, None).await
    }

    /// Outbox rows for `screening_id`, idempotent on their keys; returns each key's row id.
    async fn insert_reports(
        tx: &mut Tx,
        screening_id: &str,
        reports: &[ReportWrite],
        created_at: DateTime<Utc>,
    ) -> StoreResult<Vec<String>> {
        let mut report_ids = Vec::with_capacity(reports.len());
        for report in reports {
            sqlx::query(&format!(
                "INSERT INTO reports ({REPORT_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, NULL, $6, NULL) \
                 ON CONFLICT (idempotency_key) DO NOTHING"
            ))
            .bind(new_id())
            .bind(screening_id)
            .bind(&report.idempotency_key)
            .bind(&report.kind)
            .bind(to_json_text(&report.payload))
            .bind(created_at)
            .execute(&mut **tx)
            .await?;
            let row = sqlx::query("SELECT id FROM reports WHERE idempotency_key = $1")
                .bind(&report.idempotency_key)
                .fetch_one(&mut **tx)
                .await?;
            report_ids.push(row.try_get::<String, _>("id")?);
        }
        Ok(report_ids)
    }

    /// The outbox row telling the webhooks to take down art that was public and is now
    /// held or quarantined (a new title, a rescan), in the transaction that changed it.
    /// One per screening; its reason is the record's first, which never quotes contact
    /// details.
    async fn insert_unpublish_event(
        tx: &mut Tx,
        screening_id: &str,
        write: &ScreeningWrite,
        status: ArtworkStatus,
        created_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let kind = crate::act::report::ReportKind::Unpublish;
        let payload = serde_json::json!({
            "schema": "coverguard.unpublish.v1",
            "artwork_id": write.artwork_id,
            "owner_id": write.owner_id,
            "screening_id": screening_id,
            "verdict": write.verdict,
            "status": status.as_str(),
            "reason": write.review.as_ref().and_then(|r| r.reason.clone()),
        });
        let report = ReportWrite {
            idempotency_key: crate::act::report::idempotency_key(kind, screening_id),
            kind: kind.as_str().to_string(),
            payload,
        };
        Self::insert_reports(tx, screening_id, std::slice::from_ref(&report), created_at).await?;
        Ok(())
    }

    /// The outbox row announcing an account event (`takedown` or `takedown_lifted`) to the
    /// webhooks, in the transaction that made the change: receivers hear of it exactly
    /// when it happened. `occurrence` tells this event from the owner's earlier ones (a
    /// retried takedown is the same occurrence, so it is announced once).
    async fn insert_account_event(
        tx: &mut Tx,
        owner_id: &str,
        event: &str,
        occurrence: DateTime<Utc>,
        actor: &str,
        detail: serde_json::Value,
        created_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let kind = crate::act::report::ReportKind::Account;
        let mut payload = serde_json::json!({
            "schema": "coverguard.account.v1",
            "event": event,
            "owner_id": owner_id,
            "actor": actor,
            "at": occurrence.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        });
        if let (Some(payload), serde_json::Value::Object(detail)) =
            (payload.as_object_mut(), detail)
        {
            payload.extend(detail);
        }
        let subject = format!(
            "{owner_id}\0{event}\0{}",
            occurrence.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        );
        sqlx::query(&format!(
            "INSERT INTO reports ({REPORT_COLUMNS}) \
             VALUES ($1, NULL, $2, $3, $4, 'pending', 0, $5, NULL, $5, NULL) \
             ON CONFLICT (idempotency_key) DO NOTHING"
        ))
        .bind(new_id())
        .bind(crate::act::report::idempotency_key(kind, &subject))
        .bind(kind.as_str())
        .bind(to_json_text(&payload))
        .bind(created_at)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn insert_audit(
        conn: &mut <Db as sqlx::Database>::Connection,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &serde_json::Value,
    ) -> StoreResult<String> {
        let id = new_id();
        sqlx::query(
            "INSERT INTO audit_log (id, actor, action, subject, detail, at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(actor)
        .bind(action)
        .bind(subject)
        .bind(to_json_text(detail))
        .bind(now_utc())
        .execute(&mut *conn)
        .await?;
        Ok(id)
    }

    async fn owner_taken_down(
        conn: &mut <Db as sqlx::Database>::Connection,
        owner_id: Option<&str>,
    ) -> StoreResult<bool> {
        let Some(owner_id) = owner_id else {
            return Ok(false);
        };
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM accounts WHERE owner_id = $1 AND taken_down_at IS NOT NULL",
        )
        .bind(owner_id)
        .fetch_one(&mut *conn)
        .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// Makes sure the owner's account row exists and locks it until the transaction ends, and
    /// says whether the account is taken down. A takedown writes the same row first, so a
    /// screening and a takedown of one owner are serialised: the takedown either sees the new
    /// artwork and quarantines it, or the screening sees the takedown.
    async fn lock_account(tx: &mut Tx, owner_id: &str) -> StoreResult<bool> {
        sqlx::query(
            "INSERT INTO accounts (owner_id, taken_down_at, taken_down_by) VALUES ($1, NULL, NULL) \
             ON CONFLICT (owner_id) DO NOTHING",
        )
        .bind(owner_id)
        .execute(&mut **tx)
        .await?;
        let row = sqlx::query(&format!(
            "SELECT CASE WHEN taken_down_at IS NULL THEN FALSE ELSE TRUE END AS taken_down \
             FROM accounts WHERE owner_id = $1{SHARE_LOCK}"
        ))
        .bind(owner_id)
        .fetch_one(&mut **tx)
        .await?;
        Ok(row.try_get("taken_down")?)
    }

    /// What a stored screening already wrote, for answering a retried `record_screening`.
    async fn describe_recorded(
        tx: &mut Tx,
        stored: &ScreeningRow,
        write: &ScreeningWrite,
    ) -> StoreResult<RecordedScreening> {
        let artwork_status = match &stored.artwork_id {
            Some(artwork_id) => {
                let row = sqlx::query("SELECT status FROM artworks WHERE artwork_id = $1")
                    .bind(artwork_id)
                    .fetch_optional(&mut **tx)
                    .await?;
                match row {
                    Some(row) => Some(row.try_get::<String, _>("status")?.parse()?),
                    None => None,
                }
            }
            None => None,
        };
        let quarantined = sqlx::query(
            "SELECT COUNT(*) AS n FROM quarantine_items WHERE screening_id = $1 AND released_at IS NULL",
        )
        .bind(&stored.id)
        .fetch_one(&mut **tx)
        .await?
        .try_get::<i64, _>("n")?
            > 0;
        let review_id = sqlx::query("SELECT id FROM review_queue WHERE screening_id = $1")
            .bind(&stored.id)
            .fetch_optional(&mut **tx)
            .await?
            .map(|r| r.try_get::<String, _>("id"))
            .transpose()?;
        let mut report_ids = Vec::with_capacity(write.reports.len());
        for report in &write.reports {
            let id = sqlx::query("SELECT id FROM reports WHERE idempotency_key = $1")
                .bind(&report.idempotency_key)
                .fetch_optional(&mut **tx)
                .await?
                .map(|r| r.try_get::<String, _>("id"))
                .transpose()?;
            report_ids.extend(id);
        }
        let owner_taken_down = Self::owner_taken_down(tx, stored.owner_id.as_deref()).await?;
        Ok(RecordedScreening {
            screening_id: stored.id.clone(),
            created: false,
            artwork_status,
            quarantined,
            report_ids,
            review_id,
            owner_taken_down,
        })
    }
}

#[async_trait]
impl Store for Backend {
    fn backend(&self) -> &'static str {
        BACKEND_NAME
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn record_screening(&self, write: &ScreeningWrite) -> StoreResult<RecordedScreening> {
        // Words screened alone have no hashes and no model; an image has all three.
        if !write.is_words_only() {
            require_nonempty("sha256", &write.sha256)?;
            require_nonempty("md5", &write.md5)?;
            require_nonempty("model", &write.model)?;
        }
        require_nonempty("policy_version", &write.policy_version)?;
        // Emptiness of the quarantine object key and the report idempotency key is checked by
        // the schema, inside the transaction, so such a write fails after the screening insert
        // and proves the rollback.
        let id = match &write.id {
            Some(id) => {
                require_nonempty("screening id", id)?;
                id.clone()
            }
            None => new_id(),
        };
        let created_at = write
            .created_at
            .map(|t| t.trunc_subsecs(6))
            .unwrap_or_else(now_utc);
        let sha256 = normalise_hash(&write.sha256);

        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO screenings (id, artwork_id, owner_id, sha256, md5, pdq, pdq_quality, \
             verdict, model, policy_version, banks_version, analysis, view_pdq, record, context, \
             created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&id)
        .bind(&write.artwork_id)
        .bind(&write.owner_id)
        .bind(&sha256)
        .bind(normalise_hash(&write.md5))
        .bind(write.pdq.as_deref().map(normalise_hash))
        .bind(write.pdq_quality)
        .bind(write.verdict.as_str())
        .bind(&write.model)
        .bind(&write.policy_version)
        .bind(write.banks_version)
        .bind(&write.analysis)
        .bind(
            serde_json::to_string(&write.view_pdq)
                .map_err(|e| StoreError::Invalid(format!("view_pdq does not serialise: {e}")))?,
        )
        .bind(to_json_text(&write.record))
        .bind(to_json_text(&write.context))
        .bind(created_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();

        if inserted == 0 {
            // A retry of a screening that committed: everything else committed with it.
            let row = sqlx::query(&format!(
                "SELECT {SCREENING_COLUMNS} FROM screenings WHERE id = $1"
            ))
            .bind(&id)
            .fetch_one(&mut *tx)
            .await?;
            let stored = screening_from_row(&row)?;
            if stored.sha256 != sha256 {
                return Err(StoreError::Conflict(format!(
                    "screening id {id} is already stored for other bytes"
                )));
            }
            let recorded = Self::describe_recorded(&mut tx, &stored, write).await?;
            tx.commit().await?;
            return Ok(recorded);
        }

        let owner_taken_down = match &write.owner_id {
            Some(owner_id) => Self::lock_account(&mut tx, owner_id).await?,
            None => false,
        };

        let artwork_status = match &write.artwork_id {
            Some(artwork_id) => {
                let before: Option<String> = sqlx::query(&format!(
                    "SELECT status FROM artworks WHERE artwork_id = $1{ROW_LOCK}"
                ))
                .bind(artwork_id)
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| row.try_get("status"))
                .transpose()?;
                // A taken-down owner's uploads are never published, and their quarantined
                // artworks stay quarantined whatever a later screening says.
                let requested =
                    if owner_taken_down && write.artwork_status == ArtworkStatus::Published {
                        ArtworkStatus::Held
                    } else {
                        write.artwork_status
                    };
                // Older screenings (backfill) never overwrite a newer artwork state.
                sqlx::query(&format!(
                    "INSERT INTO artworks ({ARTWORK_COLUMNS}) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (artwork_id) DO UPDATE SET \
                       owner_id = COALESCE(excluded.owner_id, artworks.owner_id), \
                       latest_screening_id = excluded.latest_screening_id, \
                       status = CASE WHEN $6 AND artworks.status = 'quarantined' \
                                     THEN artworks.status ELSE excluded.status END, \
                       updated_at = excluded.updated_at \
                     WHERE artworks.updated_at <= excluded.updated_at"
                ))
                .bind(artwork_id)
                .bind(&write.owner_id)
                .bind(&id)
                .bind(requested.as_str())
                .bind(created_at)
                .bind(owner_taken_down)
                .execute(&mut *tx)
                .await?;
                let status: String =
                    sqlx::query("SELECT status FROM artworks WHERE artwork_id = $1")
                        .bind(artwork_id)
                        .fetch_one(&mut *tx)
                        .await?
                        .try_get("status")?;
                let status: ArtworkStatus = status.parse()?;
                let was_public = before.as_deref() == Some(ArtworkStatus::Published.as_str());
                if was_public && status != ArtworkStatus::Published {
                    Self::insert_unpublish_event(&mut tx, &id, write, status, created_at).await?;
                }
                Some(status)
            }
            None => None,
        };

        let quarantined = match &write.quarantine {
            Some(q) => {
                let inserted = sqlx::query(&format!(
                    "INSERT INTO quarantine_items ({QUARANTINE_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL) ON CONFLICT DO NOTHING"
                ))
                .bind(new_id())
                .bind(&sha256)
                .bind(&id)
                .bind(&write.artwork_id)
                .bind(&write.owner_id)
                .bind(&q.object_key)
                .bind(q.retention_until.trunc_subsecs(6))
                .bind(created_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 0 {
                    // Same bytes for the same artwork: keep one item, re-quarantine it if it
                    // had been released, and never shorten its retention.
                    sqlx::query(
                        "UPDATE quarantine_items SET released_at = NULL, released_by = NULL, \
                           screening_id = $3, \
                           retention_until = CASE WHEN retention_until < $4 THEN $4 ELSE retention_until END \
                         WHERE sha256 = $1 AND COALESCE(artwork_id, '') = COALESCE($2, '') \
                           AND (released_at IS NOT NULL OR retention_until < $4)",
                    )
                    .bind(&sha256)
                    .bind(&write.artwork_id)
                    .bind(&id)
                    .bind(q.retention_until.trunc_subsecs(6))
                    .execute(&mut *tx)
                    .await?;
                }
                true
            }
            None => false,
        };

        let review_id = match &write.review {
            Some(review) => {
                let review_id = new_id();
                sqlx::query(&format!(
                    "INSERT INTO review_queue ({REVIEW_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, 'pending', $5, NULL, NULL, NULL, NULL, NULL, $6, \
                       'reviewer', $7, $8, $9, $10, $11, $12, NULL)"
                ))
                .bind(&review_id)
                .bind(&id)
                .bind(&write.artwork_id)
                .bind(review.priority)
                .bind(&review.reason)
                .bind(created_at)
                .bind(review.verdict.as_str())
                .bind(&write.owner_id)
                .bind(&review.top_label)
                .bind(review.top_score)
                .bind(encode_list(&review.labels))
                .bind(encode_list(&review.banks))
                .execute(&mut *tx)
                .await?;
                Some(review_id)
            }
            None => None,
        };

        let report_ids = Self::insert_reports(&mut tx, &id, &write.reports, created_at).await?;

        tx.commit().await?;
        Ok(RecordedScreening {
            screening_id: id,
            created: true,
            artwork_status,
            quarantined,
            report_ids,
            review_id,
            owner_taken_down,
        })
    }

    async fn get_screening(&self, id: &str) -> StoreResult<Option<ScreeningRow>> {
        sqlx::query(&format!(
            "SELECT {SCREENING_COLUMNS} FROM screenings WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(screening_from_row)
        .transpose()
    }

    async fn get_artwork(&self, artwork_id: &str) -> StoreResult<Option<ArtworkRow>> {
        sqlx::query(&format!(
            "SELECT {ARTWORK_COLUMNS} FROM artworks WHERE artwork_id = $1"
        ))
        .bind(artwork_id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(artwork_from_row)
        .transpose()
    }

    async fn set_artwork_status(
        &self,
        artwork_id: &str,
        status: ArtworkStatus,
        actor: &str,
    ) -> StoreResult<ArtworkRow> {
        require_nonempty("actor", actor)?;
        let mut tx = self.begin_write().await?;
        let owner_id: Option<String> =
            sqlx::query("SELECT owner_id FROM artworks WHERE artwork_id = $1")
                .bind(artwork_id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("artwork {artwork_id}")))?
                .try_get("owner_id")?;
        if let Some(owner_id) = &owner_id {
            if Self::lock_account(&mut tx, owner_id).await? && status == ArtworkStatus::Published {
                return Err(StoreError::Conflict(format!(
                    "owner of artwork {artwork_id} is taken down; it cannot be published"
                )));
            }
        }
        let row = sqlx::query(&format!(
            "UPDATE artworks SET status = $2, updated_at = $3 WHERE artwork_id = $1 \
             RETURNING {ARTWORK_COLUMNS}"
        ))
        .bind(artwork_id)
        .bind(status.as_str())
        .bind(now_utc())
        .fetch_one(&mut *tx)
        .await?;
        let artwork = artwork_from_row(&row)?;
        Self::insert_audit(
            &mut tx,
            actor,
            "artwork.status",
            artwork_id,
            &serde_json::json!({ "status": status.as_str() }),
        )
        .await?;
        tx.commit().await?;
        Ok(artwork)
    }

    async fn latest_for_artwork(&self, artwork_id: &str) -> StoreResult<Option<ScreeningRow>> {
        let columns = SCREENING_COLUMNS
            .split(", ")
            .map(|c| format!("s.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        sqlx::query(&format!(
            "SELECT {columns} FROM artworks a JOIN screenings s ON s.id = a.latest_screening_id \
             WHERE a.artwork_id = $1"
        ))
        .bind(artwork_id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(screening_from_row)
        .transpose()
    }

    async fn owner_screenings_since(
        &self,
        owner_id: &str,
        since: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<ScreeningRow>> {
        let fetched = sqlx::query(&format!(
            "SELECT {SCREENING_COLUMNS} FROM screenings \
             WHERE owner_id = $1 AND created_at >= $2 ORDER BY created_at, id LIMIT $3"
        ))
        .bind(owner_id)
        .bind(since)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows(fetched, screening_from_row)
    }

    async fn cached_verdict(
        &self,
        sha256: &str,
        model: &str,
        analysis: &str,
        policy_version: &str,
        banks_version: i64,
    ) -> StoreResult<Option<ScreeningRow>> {
        // Words screened alone are stored with no hash: no image's verdict.
        require_nonempty("sha256", sha256)?;
        sqlx::query(&format!(
            "SELECT {SCREENING_COLUMNS} FROM screenings \
             WHERE sha256 = $1 AND model = $2 AND policy_version = $3 AND banks_version = $4 \
               AND analysis = $5 \
             ORDER BY created_at DESC, id DESC LIMIT 1"
        ))
        .bind(normalise_hash(sha256))
        .bind(model)
        .bind(policy_version)
        .bind(banks_version)
        .bind(analysis)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(screening_from_row)
        .transpose()
    }

    async fn create_bank(&self, spec: &BankSpec) -> StoreResult<BankChange> {
        validate_bank_spec(spec)?;
        let signal_types = serde_json::to_string(&spec.signal_types)
            .map_err(|e| StoreError::Invalid(format!("signal types: {e}")))?;
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO banks ({BANK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (name) DO NOTHING"
        ))
        .bind(&spec.name)
        .bind(signal_types)
        .bind(spec.pdq_threshold)
        .bind(spec.action.as_str())
        .bind(spec.allow_list)
        .bind(spec.severity)
        .bind(now_utc())
        .bind(&spec.category)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            let row = sqlx::query(&format!("SELECT {BANK_COLUMNS} FROM banks WHERE name = $1"))
                .bind(&spec.name)
                .fetch_one(&mut *tx)
                .await?;
            let existing = bank_from_row(&row)?;
            if existing.spec != *spec {
                return Err(StoreError::Conflict(format!(
                    "bank {:?} already exists with other settings",
                    spec.name
                )));
            }
        }
        Self::finish_bank_change(tx, inserted).await
    }

    async fn list_banks(&self) -> StoreResult<Vec<BankRow>> {
        let fetched = sqlx::query(&format!("SELECT {BANK_COLUMNS} FROM banks ORDER BY name"))
            .fetch_all(&self.pool)
            .await?;
        rows(fetched, bank_from_row)
    }

    async fn delete_bank(&self, name: &str) -> StoreResult<BankChange> {
        let mut tx = self.begin_write().await?;
        // Entries go first explicitly rather than relying on ON DELETE CASCADE alone, so the
        // outcome does not depend on SQLite's foreign_keys pragma.
        sqlx::query("DELETE FROM bank_entries WHERE bank = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM bank_imports WHERE bank = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM banks WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        Self::finish_bank_change(tx, deleted).await
    }

    async fn add_entries(&self, bank: &str, entries: &[EntryWrite]) -> StoreResult<BankChange> {
        let mut tx = self.begin_write().await?;
        let added = Self::insert_entry_rows(&mut tx, bank, entries, None).await?;
        let count = added.len() as u64;
        Self::finish_logged_change(tx, count, Some(added)).await
    }

    async fn remove_entry(&self, bank: &str, signal: &str, hash: &str) -> StoreResult<BankChange> {
        let mut tx = self.begin_write().await?;
        let (signal, hash) = (signal.trim(), normalise_hash(hash));
        let removed = sqlx::query(&format!(
            "DELETE FROM bank_entries WHERE bank = $1 AND signal = $2 AND hash = $3 AND {VISIBLE} \
             RETURNING disabled"
        ))
        .bind(bank)
        .bind(signal)
        .bind(&hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(removed) = removed else {
            return Self::finish_bank_change(tx, 0).await;
        };
        let was_disabled: bool = removed.try_get("disabled")?;
        sqlx::query(
            "UPDATE banks SET entry_count = entry_count - 1, \
             disabled_count = disabled_count - $2 WHERE name = $1",
        )
        .bind(bank)
        .bind(i64::from(was_disabled))
        .execute(&mut *tx)
        .await?;
        // A disabled entry was not matched, so removing it changes nothing an index holds.
        let changes = if was_disabled {
            Vec::new()
        } else {
            vec![EntryChange {
                bank: bank.to_string(),
                signal: signal.to_string(),
                hash,
                matched_as: None,
            }]
        };
        Self::finish_logged_change(tx, 1, Some(changes)).await
    }

    async fn set_entry_disabled(
        &self,
        bank: &str,
        signal: &str,
        hash: &str,
        disabled: bool,
    ) -> StoreResult<BankChange> {
        let mut tx = self.begin_write().await?;
        let hash = normalise_hash(hash);
        let updated = sqlx::query(&format!(
            "UPDATE bank_entries SET disabled = $4 \
             WHERE bank = $1 AND signal = $2 AND hash = $3 AND disabled <> $4 AND {VISIBLE} \
             RETURNING id, external_id"
        ))
        .bind(bank)
        .bind(signal.trim())
        .bind(&hash)
        .bind(disabled)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(updated) = updated {
            sqlx::query("UPDATE banks SET disabled_count = disabled_count + $2 WHERE name = $1")
                .bind(bank)
                .bind(if disabled { 1i64 } else { -1 })
                .execute(&mut *tx)
                .await?;
            let id: String = updated.try_get("id")?;
            let external_id: Option<String> = updated.try_get("external_id")?;
            let change = EntryChange {
                bank: bank.to_string(),
                signal: signal.trim().to_string(),
                hash,
                matched_as: (!disabled).then(|| external_id.unwrap_or(id)),
            };
            return Self::finish_logged_change(tx, 1, Some(vec![change])).await;
        }
        {
            let exists = sqlx::query(&format!(
                "SELECT COUNT(*) AS n FROM bank_entries \
                 WHERE bank = $1 AND signal = $2 AND hash = $3 AND {VISIBLE}"
            ))
            .bind(bank)
            .bind(signal.trim())
            .bind(&hash)
            .fetch_one(&mut *tx)
            .await?
            .try_get::<i64, _>("n")?;
            if exists == 0 {
                return Err(StoreError::NotFound(format!(
                    "entry {signal}:{hash} in bank {bank:?}"
                )));
            }
        }
        Self::finish_bank_change(tx, 0).await
    }

    async fn set_entry_id_disabled(
        &self,
        bank: &str,
        entry_id: &str,
        disabled: bool,
    ) -> StoreResult<BankChange> {
        require_nonempty("entry id", entry_id)?;
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query(&format!(
            "UPDATE bank_entries SET disabled = $3 \
             WHERE bank = $1 AND external_id = $2 AND disabled <> $3 AND {VISIBLE} \
             RETURNING signal, hash"
        ))
        .bind(bank)
        .bind(entry_id)
        .bind(disabled)
        .fetch_all(&mut *tx)
        .await?;
        if updated.is_empty() {
            let exists = sqlx::query(&format!(
                "SELECT COUNT(*) AS n FROM bank_entries \
                 WHERE bank = $1 AND external_id = $2 AND {VISIBLE}"
            ))
            .bind(bank)
            .bind(entry_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get::<i64, _>("n")?;
            if exists == 0 {
                return Err(StoreError::NotFound(format!(
                    "entry id {entry_id:?} in bank {bank:?}"
                )));
            }
            return Self::finish_bank_change(tx, 0).await;
        }
        let count = updated.len() as i64;
        sqlx::query("UPDATE banks SET disabled_count = disabled_count + $2 WHERE name = $1")
            .bind(bank)
            .bind(if disabled { count } else { -count })
            .execute(&mut *tx)
            .await?;
        let changes = updated
            .iter()
            .map(|row| {
                Ok(EntryChange {
                    bank: bank.to_string(),
                    signal: row.try_get("signal")?,
                    hash: row.try_get("hash")?,
                    matched_as: (!disabled).then(|| entry_id.to_string()),
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Self::finish_logged_change(tx, count as u64, Some(changes)).await
    }

    async fn list_entries(&self) -> StoreResult<Vec<EntryRow>> {
        let fetched = sqlx::query(&format!(
            "SELECT {ENTRY_COLUMNS} FROM bank_entries WHERE disabled = FALSE AND {VISIBLE} \
             ORDER BY bank, signal, hash"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows(fetched, entry_from_row)
    }

    async fn list_bank_entries(&self, bank: &str) -> StoreResult<Vec<EntryRow>> {
        let fetched = sqlx::query(&format!(
            "SELECT {ENTRY_COLUMNS} FROM bank_entries WHERE bank = $1 AND {VISIBLE} \
             ORDER BY signal, hash"
        ))
        .bind(bank)
        .fetch_all(&self.pool)
        .await?;
        rows(fetched, entry_from_row)
    }

    async fn banks_version(&self) -> StoreResult<i64> {
        let mut conn = self.pool.acquire().await?;
        Self::current_banks_version(&mut conn).await
    }

    async fn import_entries(&self, bank: &str, entries: &[EntryWrite]) -> StoreResult<BankChange> {
        let import_id = new_id();
        match self.stage_and_publish(bank, &import_id, entries).await {
            Ok(change) => Ok(change),
            Err(err) => {
                // Staged rows are invisible already; deleting them only reclaims space, so a
                // failure here is logged and the import's own error reported.
                if let Err(cleanup) = self.discard_import(&import_id).await {
                    tracing::warn!(import_id, error = %cleanup, "staged import rows left behind");
                }
                Err(err)
            }
        }
    }

    async fn bank_counts(&self) -> StoreResult<BTreeMap<String, BankCounts>> {
        let fetched = sqlx::query("SELECT name, entry_count, disabled_count FROM banks")
            .fetch_all(&self.pool)
            .await?;
        fetched
            .iter()
            .map(|row| {
                Ok((
                    row.try_get("name")?,
                    BankCounts {
                        entries: row.try_get("entry_count")?,
                        disabled: row.try_get("disabled_count")?,
                    },
                ))
            })
            .collect()
    }

    async fn bank_changes_since(&self, version: i64) -> StoreResult<BankChangeLog> {
        let mut tx = self.pool.begin_with(BEGIN_SNAPSHOT).await?;
        let banks_version = Self::current_banks_version(&mut tx).await?;
        let enabled_entries: i64 = sqlx::query(
            "SELECT CAST(COALESCE(SUM(entry_count - disabled_count), 0) AS BIGINT) AS n FROM banks",
        )
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        let mut changes = None;
        // An index that was never loaded (version `i64::MIN`) is too far behind too.
        let behind = banks_version.checked_sub(version).filter(|d| *d >= 0);
        if let Some(behind) = behind.filter(|d| *d <= CHANGE_LOG_KEPT) {
            let fetched = sqlx::query(
                "SELECT version, ops FROM bank_changes WHERE version > $1 AND version <= $2 \
                 ORDER BY version",
            )
            .bind(version)
            .bind(banks_version)
            .fetch_all(&mut *tx)
            .await?;
            if fetched.len() as i64 == behind {
                let mut all = Vec::new();
                for row in &fetched {
                    let ops: String = row.try_get("ops")?;
                    let ops: Vec<EntryChange> = serde_json::from_str(&ops).map_err(|e| {
                        StoreError::backend("bank_changes.ops holds invalid JSON", e)
                    })?;
                    all.extend(ops);
                }
                changes = Some(all);
            }
        }
        tx.commit().await?;
        Ok(BankChangeLog {
            banks_version,
            changes,
            enabled_entries,
        })
    }

    async fn bank_snapshot(&self) -> StoreResult<BankSnapshot> {
        let mut tx = self.pool.begin_with(BEGIN_SNAPSHOT).await?;
        let banks_version = Self::current_banks_version(&mut tx).await?;
        let banks = sqlx::query(&format!("SELECT {BANK_COLUMNS} FROM banks ORDER BY name"))
            .fetch_all(&mut *tx)
            .await?;
        let entries = sqlx::query(&format!(
            "SELECT {ENTRY_COLUMNS} FROM bank_entries WHERE disabled = FALSE AND {VISIBLE} \
             ORDER BY bank, signal, hash"
        ))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        // A million rows take a while to decode: off the async workers, behind screenings.
        let entries =
            crate::matching::bank_work::run("snapshot", move || rows(entries, entry_from_row))
                .await
                .map_err(|e| StoreError::unavailable("the bank snapshot was not decoded", e))??;
        Ok(BankSnapshot {
            banks_version,
            banks: rows(banks, bank_from_row)?,
            entries,
        })
    }

    async fn takedown_account(&self, owner_id: &str, actor: &str) -> StoreResult<Vec<ArtworkRow>> {
        require_nonempty("owner id", owner_id)?;
        require_nonempty("actor", actor)?;
        let now = now_utc();
        let mut tx = self.begin_write().await?;
        // The first takedown's time and actor are kept on retries.
        let account = sqlx::query(
            "INSERT INTO accounts (owner_id, taken_down_at, taken_down_by) VALUES ($1, $2, $3) \
             ON CONFLICT (owner_id) DO UPDATE SET \
               taken_down_at = COALESCE(accounts.taken_down_at, excluded.taken_down_at), \
               taken_down_by = COALESCE(accounts.taken_down_by, excluded.taken_down_by) \
             RETURNING taken_down_at, taken_down_by",
        )
        .bind(owner_id)
        .bind(now)
        .bind(actor)
        .fetch_one(&mut *tx)
        .await?;
        let taken_down_at: DateTime<Utc> = account.try_get("taken_down_at")?;
        let taken_down_by: String = account.try_get("taken_down_by")?;
        let changed = sqlx::query(&format!(
            "UPDATE artworks SET status = 'quarantined', updated_at = $2 \
             WHERE owner_id = $1 AND status <> 'quarantined' RETURNING {ARTWORK_COLUMNS}"
        ))
        .bind(owner_id)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let mut changed = rows(changed, artwork_from_row)?;
        changed.sort_by(|a, b| a.artwork_id.cmp(&b.artwork_id));
        let ids: Vec<&str> = changed.iter().map(|a| a.artwork_id.as_str()).collect();
        Self::insert_audit(
            &mut tx,
            actor,
            "account.takedown",
            owner_id,
            &serde_json::json!({ "quarantined_artworks": ids }),
        )
        .await?;
        // Keyed by the takedown's own time: a retry announces nothing new, a takedown
        // after a lift is a new event.
        Self::insert_account_event(
            &mut tx,
            owner_id,
            "takedown",
            taken_down_at,
            &taken_down_by,
            serde_json::json!({ "action": "unpublish_owner", "quarantined_artworks": ids }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(changed)
    }

    async fn is_taken_down(&self, owner_id: &str) -> StoreResult<bool> {
        let mut conn = self.pool.acquire().await?;
        Self::owner_taken_down(&mut conn, Some(owner_id)).await
    }

    async fn quarantine_items(&self, sha256: &str) -> StoreResult<Vec<QuarantineRow>> {
        let fetched = sqlx::query(&format!(
            "SELECT {QUARANTINE_COLUMNS} FROM quarantine_items WHERE sha256 = $1 \
             ORDER BY created_at, id"
        ))
        .bind(normalise_hash(sha256))
        .fetch_all(&self.pool)
        .await?;
        rows(fetched, quarantine_from_row)
    }

    async fn release_quarantine(&self, item_id: &str, actor: &str) -> StoreResult<QuarantineRow> {
        require_nonempty("actor", actor)?;
        let now = now_utc();
        let mut tx = self.begin_write().await?;
        let released = sqlx::query(&format!(
            "UPDATE quarantine_items SET released_at = $2, released_by = $3 \
             WHERE id = $1 AND released_at IS NULL RETURNING {QUARANTINE_COLUMNS}"
        ))
        .bind(item_id)
        .bind(now)
        .bind(actor)
        .fetch_optional(&mut *tx)
        .await?;
        let item = match released {
            Some(row) => {
                let item = quarantine_from_row(&row)?;
                if let Some(artwork_id) = &item.artwork_id {
                    sqlx::query(
                        "UPDATE artworks SET status = 'released', updated_at = $2 \
                         WHERE artwork_id = $1 AND status = 'quarantined'",
                    )
                    .bind(artwork_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                Self::insert_audit(
                    &mut tx,
                    actor,
                    "quarantine.release",
                    &item.sha256,
                    &serde_json::json!({ "item_id": item.id, "artwork_id": item.artwork_id }),
                )
                .await?;
                item
            }
            None => {
                // Already released (a retry) or unknown.
                let row = sqlx::query(&format!(
                    "SELECT {QUARANTINE_COLUMNS} FROM quarantine_items WHERE id = $1"
                ))
                .bind(item_id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("quarantine item {item_id}")))?;
                quarantine_from_row(&row)?
            }
        };
        tx.commit().await?;
        Ok(item)
    }

    async fn expired_quarantine(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<QuarantineRow>> {
        let fetched = sqlx::query(&format!(
            "SELECT {QUARANTINE_COLUMNS} FROM quarantine_items \
             WHERE released_at IS NULL AND retention_until < $1 \
             ORDER BY retention_until, id LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows(fetched, quarantine_from_row)
    }

    async fn get_report(&self, id: &str) -> StoreResult<Option<ReportRow>> {
        sqlx::query(&format!(
            "SELECT {REPORT_COLUMNS} FROM reports WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(report_from_row)
        .transpose()
    }

    async fn due_reports(&self, now: DateTime<Utc>, limit: i64) -> StoreResult<Vec<ReportRow>> {
        let fetched = sqlx::query(&format!(
            "SELECT {REPORT_COLUMNS} FROM reports \
             WHERE state = 'pending' AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, id LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows(fetched, report_from_row)
    }

    async fn mark_report_delivered(&self, id: &str) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let changed = sqlx::query(
            "UPDATE reports SET state = 'delivered', delivered_at = $2, last_error = NULL \
             WHERE id = $1 AND state <> 'delivered'",
        )
        .bind(id)
        .bind(now_utc())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            let n = sqlx::query("SELECT COUNT(*) AS n FROM reports WHERE id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?
                .try_get::<i64, _>("n")?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("report {id}")));
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn mark_report_failed_attempt(
        &self,
        id: &str,
        error: &str,
        next_attempt_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
        let state = if next_attempt_at.is_some() {
            ReportState::Pending
        } else {
            ReportState::Failed
        };
        let mut tx = self.begin_write().await?;
        let changed = sqlx::query(
            "UPDATE reports SET attempts = attempts + 1, last_error = $2, state = $3, \
               next_attempt_at = COALESCE($4, next_attempt_at) \
             WHERE id = $1 AND state <> 'delivered'",
        )
        .bind(id)
        .bind(error)
        .bind(state.as_str())
        .bind(next_attempt_at.map(|t| t.trunc_subsecs(6)))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            let n = sqlx::query("SELECT COUNT(*) AS n FROM reports WHERE id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?
                .try_get::<i64, _>("n")?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("report {id}")));
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn append_audit(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &serde_json::Value,
    ) -> StoreResult<String> {
        require_nonempty("actor", actor)?;
        require_nonempty("action", action)?;
        let mut conn = self.pool.acquire().await?;
        Self::insert_audit(&mut conn, actor, action, subject, detail).await
    }

    async fn recent_audit(&self, limit: i64) -> StoreResult<Vec<AuditRow>> {
        let fetched = sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY at DESC, id DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows(fetched, audit_from_row)
    }

    async fn put_token(&self, token_hash: &str, name: &str, role: TokenRole) -> StoreResult<()> {
        require_nonempty("token hash", token_hash)?;
        require_nonempty("token name", name)?;
        sqlx::query(
            "INSERT INTO api_tokens (token_hash, name, role, created_at, revoked) \
             VALUES ($1, $2, $3, $4, FALSE) \
             ON CONFLICT (token_hash) DO UPDATE SET name = excluded.name, role = excluded.role",
        )
        .bind(normalise_hash(token_hash))
        .bind(name)
        .bind(role.as_str())
        .bind(now_utc())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn revoke_token(&self, token_hash: &str) -> StoreResult<bool> {
        let changed = sqlx::query(
            "UPDATE api_tokens SET revoked = TRUE WHERE token_hash = $1 AND revoked = FALSE",
        )
        .bind(normalise_hash(token_hash))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(changed > 0)
    }

    async fn token_role(&self, token_hash: &str) -> StoreResult<Option<TokenRole>> {
        let row =
            sqlx::query("SELECT role FROM api_tokens WHERE token_hash = $1 AND revoked = FALSE")
                .bind(normalise_hash(token_hash))
                .fetch_optional(&self.pool)
                .await?;
        match row {
            Some(row) => Ok(Some(row.try_get::<String, _>("role")?.parse()?)),
            None => Ok(None),
        }
    }

    async fn active_tokens(&self) -> StoreResult<Vec<(String, TokenRole)>> {
        let rows = sqlx::query("SELECT token_hash, role FROM api_tokens WHERE revoked = FALSE")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get::<String, _>("token_hash")?,
                    row.try_get::<String, _>("role")?.parse()?,
                ))
            })
            .collect()
    }

    async fn register_backfill_job(
        &self,
        job_id: &str,
        manifest: &str,
        total: i64,
    ) -> StoreResult<()> {
        require_nonempty("job id", job_id)?;
        sqlx::query(
            "INSERT INTO backfill_jobs (job_id, manifest, total, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (job_id) DO UPDATE SET total = excluded.total, manifest = excluded.manifest",
        )
        .bind(job_id)
        .bind(manifest)
        .bind(total)
        .bind(now_utc())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn record_backfill_item(&self, write: &BackfillItemWrite) -> StoreResult<()> {
        require_nonempty("job id", &write.job_id)?;
        require_nonempty("artwork id", &write.artwork_id)?;
        let (state, screening_id, verdict, kind, error) = match &write.outcome {
            BackfillOutcome::Done {
                screening_id,
                verdict,
            } => (
                "done",
                Some(screening_id.as_str()),
                Some(verdict.as_str()),
                None,
                None,
            ),
            BackfillOutcome::Failed { kind, error } => {
                let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
                ("failed", None, None, Some(kind.as_str()), Some(error))
            }
        };
        sqlx::query(
            "INSERT INTO backfill_items (job_id, artwork_id, state, screening_id, verdict, \
               error_kind, error, attempts, worker, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9) \
             ON CONFLICT (job_id, artwork_id) DO UPDATE SET state = excluded.state, \
               screening_id = excluded.screening_id, verdict = excluded.verdict, \
               error_kind = excluded.error_kind, error = excluded.error, \
               attempts = backfill_items.attempts + 1, worker = excluded.worker, \
               updated_at = excluded.updated_at \
             WHERE backfill_items.state <> 'done'",
        )
        .bind(&write.job_id)
        .bind(&write.artwork_id)
        .bind(state)
        .bind(screening_id)
        .bind(verdict)
        .bind(kind)
        .bind(error)
        .bind(&write.worker)
        .bind(now_utc())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn backfill_done(&self, job_id: &str) -> StoreResult<HashSet<String>> {
        let fetched = sqlx::query(
            "SELECT artwork_id FROM backfill_items WHERE job_id = $1 AND state = 'done'",
        )
        .bind(job_id)
        .fetch_all(&self.pool)
        .await?;
        fetched
            .iter()
            .map(|r| Ok(r.try_get::<String, _>("artwork_id")?))
            .collect()
    }

    async fn backfill_counts(&self, job_id: &str) -> StoreResult<BackfillCounts> {
        let total = sqlx::query("SELECT total FROM backfill_jobs WHERE job_id = $1")
            .bind(job_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get::<i64, _>("total"))
            .transpose()?;
        let grouped = sqlx::query(
            "SELECT state, COALESCE(verdict, error_kind, '') AS what, COUNT(*) AS n \
             FROM backfill_items WHERE job_id = $1 GROUP BY state, COALESCE(verdict, error_kind, '')",
        )
        .bind(job_id)
        .fetch_all(&self.pool)
        .await?;
        let mut counts = BackfillCounts {
            total,
            ..BackfillCounts::default()
        };
        for row in &grouped {
            let state: String = row.try_get("state")?;
            let what: String = row.try_get("what")?;
            let n: i64 = row.try_get("n")?;
            if state == "done" {
                counts.done += n;
                *counts.verdicts.entry(what).or_default() += n;
            } else {
                counts.failed += n;
                *counts.errors.entry(what).or_default() += n;
            }
        }
        Ok(counts)
    }

    async fn backfill_items(
        &self,
        job_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<BackfillItemRow>> {
        let fetched = sqlx::query(
            "SELECT job_id, artwork_id, state, screening_id, verdict, error_kind, error, attempts, \
               worker, updated_at FROM backfill_items \
             WHERE job_id = $1 AND artwork_id > $2 ORDER BY artwork_id LIMIT $3",
        )
        .bind(job_id)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows(fetched, |row| {
            Ok(BackfillItemRow {
                job_id: row.try_get("job_id")?,
                artwork_id: row.try_get("artwork_id")?,
                state: row.try_get("state")?,
                screening_id: row.try_get("screening_id")?,
                verdict: row
                    .try_get::<Option<String>, _>("verdict")?
                    .map(|v| v.parse())
                    .transpose()?,
                error_kind: row.try_get("error_kind")?,
                error: row.try_get("error")?,
                attempts: row.try_get("attempts")?,
                worker: row.try_get("worker")?,
                updated_at: row.try_get("updated_at")?,
            })
        })
    }

    async fn artwork_signals(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<ArtworkSignals>> {
        let fetched = sqlx::query(
            "SELECT a.artwork_id, a.owner_id, a.status, s.id AS screening_id, s.sha256, s.md5, \
               s.pdq, s.pdq_quality, s.view_pdq \
             FROM artworks a JOIN screenings s ON s.id = a.latest_screening_id \
             WHERE a.artwork_id > $1 ORDER BY a.artwork_id LIMIT $2",
        )
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows(fetched, |row| {
            let status: String = row.try_get("status")?;
            let view_pdq: String = row.try_get("view_pdq")?;
            Ok(ArtworkSignals {
                artwork_id: row.try_get("artwork_id")?,
                owner_id: row.try_get("owner_id")?,
                status: status.parse()?,
                screening_id: row.try_get("screening_id")?,
                sha256: row.try_get("sha256")?,
                md5: row.try_get("md5")?,
                pdq: row.try_get("pdq")?,
                pdq_quality: row.try_get("pdq_quality")?,
                view_pdq: parse_view_pdq(&view_pdq)?,
            })
        })
    }
}
