// The rows transparency counts are made of.

#[async_trait]
impl TransparencyStore for Backend {
    async fn transparency_rows(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<TransparencyRows> {
        let mut tx = self.pool.begin_with(BEGIN_SNAPSHOT).await?;
        let mut rows = TransparencyRows::default();
        for row in sqlx::query(
            "SELECT verdict, COUNT(*) AS n FROM screenings \
             WHERE created_at >= $1 AND created_at < $2 GROUP BY verdict",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&mut *tx)
        .await?
        {
            rows.verdicts
                .insert(row.try_get("verdict")?, row.try_get::<i64, _>("n")? as u64);
        }
        for row in sqlx::query(
            "SELECT record, context FROM screenings \
             WHERE verdict = 'block' AND created_at >= $1 AND created_at < $2",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&mut *tx)
        .await?
        {
            rows.blocks
                .push((json_column(&row, "record")?, json_column(&row, "context")?));
        }
        rows.queued = sqlx::query(
            "SELECT COUNT(*) AS n FROM review_queue WHERE created_at >= $1 AND created_at < $2",
        )
        .bind(from)
        .bind(to)
        .fetch_one(&mut *tx)
        .await?
        .try_get::<i64, _>("n")? as u64;
        for row in sqlx::query(
            "SELECT decision, reason_code, created_at, decided_at FROM review_queue \
             WHERE state = 'decided' AND decided_at >= $1 AND decided_at < $2",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&mut *tx)
        .await?
        {
            let queued: DateTime<Utc> = row.try_get("created_at")?;
            let decided: DateTime<Utc> = row.try_get("decided_at")?;
            rows.decisions.push((
                row.try_get("decision")?,
                row.try_get("reason_code")?,
                (decided - queued).num_seconds().max(0),
            ));
        }
        for row in sqlx::query(
            "SELECT r.id, r.category, q.decision FROM user_reports r \
             LEFT JOIN user_report_items i ON i.report_id = r.id \
             LEFT JOIN review_queue q ON q.id = i.review_id \
             WHERE r.created_at >= $1 AND r.created_at < $2",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&mut *tx)
        .await?
        {
            rows.user_reports.push((
                row.try_get("id")?,
                row.try_get("category")?,
                row.try_get("decision")?,
            ));
        }
        for row in sqlx::query(
            "SELECT state, outcome FROM appeals WHERE created_at >= $1 AND created_at < $2",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&mut *tx)
        .await?
        {
            rows.appeals
                .push((row.try_get("state")?, row.try_get("outcome")?));
        }
        for row in sqlx::query(
            "SELECT kind, state, COUNT(*) AS n FROM reports \
             WHERE created_at >= $1 AND created_at < $2 GROUP BY kind, state",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&mut *tx)
        .await?
        {
            rows.outbox.insert(
                (row.try_get("kind")?, row.try_get("state")?),
                row.try_get::<i64, _>("n")? as u64,
            );
        }
        tx.commit().await?;
        Ok(rows)
    }
}
