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
        verdict: row.try_get("verdict")?,
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

fn bank_from_row(row: &DbRow) -> StoreResult<BankRow> {
    let signal_types: String = row.try_get("signal_types")?;
    let signal_types: Vec<String> = serde_json::from_str(&signal_types)
        .map_err(|e| StoreError::backend("banks.signal_types holds invalid JSON", e))?;
    Ok(BankRow {
        spec: BankSpec {
            name: row.try_get("name")?,
            signal_types,
            pdq_threshold: row.try_get("pdq_threshold")?,
            action: row.try_get("action")?,
            allow_list: row.try_get("allow_list")?,
            severity: row.try_get("severity")?,
            category: row.try_get("category")?,
        },
        created_at: row.try_get("created_at")?,
    })
}

fn review_from_row(row: &DbRow) -> StoreResult<ReviewRow> {
    Ok(ReviewRow {
        id: row.try_get("id")?,
        screening_id: row.try_get("screening_id")?,
        artwork_id: row.try_get("artwork_id")?,
        priority: row.try_get("priority")?,
        state: row.try_get("state")?,
        reason: row.try_get("reason")?,
        claimed_by: row.try_get("claimed_by")?,
        claimed_at: row.try_get("claimed_at")?,
        decided_at: row.try_get("decided_at")?,
        decision: row.try_get("decision")?,
        note: row.try_get("note")?,
        created_at: row.try_get("created_at")?,
        level: row.try_get("level")?,
        verdict: row.try_get("verdict")?,
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
    Ok(ReportRow {
        id: row.try_get("id")?,
        screening_id: row.try_get("screening_id")?,
        idempotency_key: row.try_get("idempotency_key")?,
        kind: row.try_get("kind")?,
        payload: parse_json("payload", &payload)?,
        state: row.try_get("state")?,
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

/// A row as `T`, by column name (`sqlx::FromRow`).
fn from_row<T: for<'r> sqlx::FromRow<'r, DbRow>>(row: &DbRow) -> StoreResult<T> {
    Ok(T::from_row(row)?)
}

fn rows<T>(rows: Vec<DbRow>, map: fn(&DbRow) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    rows.iter().map(map).collect()
}
