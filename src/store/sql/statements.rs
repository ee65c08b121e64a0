// The decisions that restricted art or an account, for statements of reasons.

#[async_trait]
impl StatementStore for Backend {
    async fn restricting_decisions(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<RestrictingDecision>> {
        let limit = limit.clamp(1, 1_000_000);
        // One snapshot, so a decision committing meanwhile is read whole or not at all.
        let mut tx = self.pool.begin_with(BEGIN_SNAPSHOT).await?;
        let mut found = Vec::new();

        let screened = sqlx::query(&format!(
            "SELECT {SCREENING_COLUMNS} FROM screenings \
             WHERE verdict IN ('block', 'review') AND created_at >= $1 AND created_at < $2 \
             ORDER BY created_at, id LIMIT $3"
        ))
        .bind(from)
        .bind(to)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        for row in &screened {
            let screening = from_row::<ScreeningRow>(row)?;
            found.push(RestrictingDecision {
                kind: if screening.facts.verdict == Verdict::Block {
                    RestrictionKind::AutomatedBlock
                } else {
                    RestrictionKind::ReviewHold
                },
                decision_id: screening.id.clone(),
                at: screening.created_at,
                owner_id: screening.facts.owner_id.clone(),
                screening: Some(screening),
                review: None,
                actor: None,
                reporters: Vec::new(),
            });
        }

        let confirmed = sqlx::query(&format!(
            "SELECT {REVIEW_COLUMNS} FROM review_queue \
             WHERE state = 'decided' AND decision = 'confirm' \
               AND decided_at >= $1 AND decided_at < $2 \
             ORDER BY decided_at, id LIMIT $3"
        ))
        .bind(from)
        .bind(to)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        for row in &confirmed {
            let review = from_row::<ReviewRow>(row)?;
            let screening = sqlx::query(&format!(
                "SELECT {SCREENING_COLUMNS} FROM screenings WHERE id = $1"
            ))
            .bind(&review.screening_id)
            .fetch_one(&mut *tx)
            .await?;
            let reporters = sqlx::query(
                "SELECT r.reporter_kind FROM user_reports r \
                 JOIN user_report_items i ON i.report_id = r.id WHERE i.review_id = $1",
            )
            .bind(&review.id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| Ok(r.try_get("reporter_kind")?))
            .collect::<StoreResult<Vec<ReporterKind>>>()?;
            found.push(RestrictingDecision {
                kind: RestrictionKind::ReviewConfirm,
                decision_id: review.id.clone(),
                at: review.decided_at.unwrap_or(review.created_at),
                owner_id: review.owner_id.clone(),
                screening: Some(from_row::<ScreeningRow>(&screening)?),
                actor: review.claimed_by.clone(),
                review: Some(review),
                reporters,
            });
        }

        // A takedown's outbox event is written once per takedown (a retry finds it), and
        // stays when the takedown is lifted: it is the record of the decision.
        let events = sqlx::query(
            "SELECT id, payload, created_at FROM reports \
             WHERE kind = 'account' AND created_at >= $1 AND created_at < $2 \
             ORDER BY created_at, id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&mut *tx)
        .await?;
        for row in &events {
            let payload = json_column::<serde_json::Value>(row, "payload")?;
            if payload["event"] != "takedown" {
                continue;
            }
            found.push(RestrictingDecision {
                kind: RestrictionKind::Takedown,
                decision_id: row.try_get("id")?,
                at: row.try_get("created_at")?,
                screening: None,
                review: None,
                owner_id: payload["owner_id"].as_str().map(str::to_string),
                actor: payload["actor"].as_str().map(str::to_string),
                reporters: Vec::new(),
            });
        }
        tx.commit().await?;
        found.sort_by(|a, b| {
            a.at.cmp(&b.at)
                .then_with(|| a.decision_id.cmp(&b.decision_id))
        });
        found.truncate(limit as usize);
        Ok(found)
    }
}
