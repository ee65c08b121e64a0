// The outbox of reports and events that the delivery loop sends.

impl Backend {
    /// Outbox rows for `screening_id`, idempotent on their keys; returns each key's row id.
    async fn insert_reports(
        tx: &mut Tx,
        screening_id: &str,
        reports: &[ReportWrite],
        created_at: DateTime<Utc>,
    ) -> StoreResult<Vec<String>> {
        Self::insert_reports_about(tx, Some(screening_id), reports, created_at).await
    }

    /// [`insert_reports`](Self::insert_reports) for rows about a screening, or about none
    /// (an account's event).
    async fn insert_reports_about(
        tx: &mut Tx,
        screening_id: Option<&str>,
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
            "artwork_id": write.facts.artwork_id,
            "owner_id": write.facts.owner_id,
            "screening_id": screening_id,
            "verdict": write.facts.verdict,
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

    /// Commits an update of report `id` that changed `changed` rows. None changed is fine
    /// for a delivered report (the update skips those) and `NotFound` for an unknown id.
    async fn finish_report_update(mut tx: Tx, id: &str, changed: u64) -> StoreResult<()> {
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
}

#[async_trait]
impl OutboxStore for Backend {
    async fn get_report(&self, id: &str) -> StoreResult<Option<ReportRow>> {
        self.one_by_key(
            &format!("SELECT {REPORT_COLUMNS} FROM reports WHERE id = $1"),
            id,
        )
        .await
    }

    async fn due_reports(&self, now: DateTime<Utc>, limit: i64) -> StoreResult<Vec<ReportRow>> {
        self.due_rows(
            &format!(
                "SELECT {REPORT_COLUMNS} FROM reports \
                 WHERE state = 'pending' AND next_attempt_at <= $1 \
                 ORDER BY next_attempt_at, id LIMIT $2"
            ),
            now,
            limit,
        )
        .await
    }

    async fn lease_report(
        &self,
        id: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        // One conditional update: of two replicas racing for the row, the second finds it
        // no longer due (Postgres re-reads the row after the first commits; SQLite
        // serialises writers).
        let mut tx = self.begin_write().await?;
        let leased = sqlx::query(
            "UPDATE reports SET next_attempt_at = $3 \
             WHERE id = $1 AND state = 'pending' AND next_attempt_at <= $2",
        )
        .bind(id)
        .bind(now)
        .bind(until.trunc_subsecs(6))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(leased == 1)
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
        Self::finish_report_update(tx, id, changed).await
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
        Self::finish_report_update(tx, id, changed).await
    }
}
