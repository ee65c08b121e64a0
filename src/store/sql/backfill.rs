// Backfill jobs and their per-item checkpoints.

#[async_trait]
impl BackfillStore for Backend {
    async fn register_backfill_job(
        &self,
        job_id: &str,
        manifest: &str,
        total: i64,
    ) -> StoreResult<()> {
        require_nonempty("job id", job_id)?;
        self.write_one(
            sqlx::query(
                "INSERT INTO backfill_jobs (job_id, manifest, total, created_at) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (job_id) DO UPDATE SET total = excluded.total, \
                   manifest = excluded.manifest",
            )
            .bind(job_id)
            .bind(manifest)
            .bind(total)
            .bind(now_utc()),
        )
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
        self.write_one(
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
            .bind(now_utc()),
        )
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
        let fetched: Vec<BackfillItemRow> = sqlx::query_as(
            "SELECT job_id, artwork_id, state, screening_id, verdict, error_kind, error, attempts, \
               worker, updated_at FROM backfill_items \
             WHERE job_id = $1 AND artwork_id > $2 ORDER BY artwork_id LIMIT $3",
        )
        .bind(job_id)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(fetched)
    }
}
