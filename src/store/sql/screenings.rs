// Screenings and the artworks they describe.

impl Backend {
    /// What a stored screening already wrote, for answering a retried `record_screening`.
    async fn describe_recorded(
        tx: &mut Tx,
        stored: &ScreeningRow,
        write: &ScreeningWrite,
    ) -> StoreResult<RecordedScreening> {
        let artwork_status = match &stored.facts.artwork_id {
            Some(artwork_id) => {
                let row = sqlx::query("SELECT status FROM artworks WHERE artwork_id = $1")
                    .bind(artwork_id)
                    .fetch_optional(&mut **tx)
                    .await?;
                match row {
                    Some(row) => Some(row.try_get("status")?),
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
        let owner_taken_down = Self::owner_taken_down(tx, stored.facts.owner_id.as_deref()).await?;
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
impl ScreeningStore for Backend {
    async fn record_screening(&self, write: &ScreeningWrite) -> StoreResult<RecordedScreening> {
        let facts = &write.facts;
        // Words screened alone have no hashes and no model; an image has all three.
        if !facts.is_words_only() {
            require_nonempty("sha256", &facts.sha256)?;
            require_nonempty("md5", &facts.md5)?;
            require_nonempty("model", &facts.model)?;
        }
        require_nonempty("policy_version", &facts.policy_version)?;
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
        let sha256 = normalise_hash(&facts.sha256);

        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO screenings (id, artwork_id, owner_id, sha256, md5, pdq, pdq_quality, \
             verdict, model, policy_version, banks_version, analysis, view_pdq, record, context, \
             created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&id)
        .bind(&facts.artwork_id)
        .bind(&facts.owner_id)
        .bind(&sha256)
        .bind(normalise_hash(&facts.md5))
        .bind(facts.pdq.as_deref().map(normalise_hash))
        .bind(facts.pdq_quality)
        .bind(facts.verdict.as_str())
        .bind(&facts.model)
        .bind(&facts.policy_version)
        .bind(facts.banks_version)
        .bind(&facts.analysis)
        .bind(
            serde_json::to_string(&facts.view_pdq)
                .map_err(|e| StoreError::Invalid(format!("view_pdq does not serialise: {e}")))?,
        )
        .bind(to_json_text(&facts.record))
        .bind(to_json_text(&facts.context))
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
            let stored = from_row::<ScreeningRow>(&row)?;
            if stored.facts.sha256 != sha256 {
                return Err(StoreError::Conflict(format!(
                    "screening id {id} is already stored for other bytes"
                )));
            }
            let recorded = Self::describe_recorded(&mut tx, &stored, write).await?;
            tx.commit().await?;
            return Ok(recorded);
        }

        let owner_taken_down = match &facts.owner_id {
            Some(owner_id) => Self::lock_account(&mut tx, owner_id).await?,
            None => false,
        };

        let artwork_status = match &facts.artwork_id {
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
                .bind(&facts.owner_id)
                .bind(&id)
                .bind(requested.as_str())
                .bind(created_at)
                .bind(owner_taken_down)
                .execute(&mut *tx)
                .await?;
                let status: ArtworkStatus =
                    sqlx::query("SELECT status FROM artworks WHERE artwork_id = $1")
                        .bind(artwork_id)
                        .fetch_one(&mut *tx)
                        .await?
                        .try_get("status")?;
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
                .bind(&facts.artwork_id)
                .bind(&facts.owner_id)
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
                    .bind(&facts.artwork_id)
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
            Some(review) => Some(
                Self::insert_review(
                    &mut tx,
                    &id,
                    facts.artwork_id.as_deref(),
                    facts.owner_id.as_deref(),
                    review,
                    created_at,
                )
                .await?,
            ),
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
        self.one_by_key(
            &format!("SELECT {SCREENING_COLUMNS} FROM screenings WHERE id = $1"),
            id,
        )
        .await
    }

    async fn get_artwork(&self, artwork_id: &str) -> StoreResult<Option<ArtworkRow>> {
        self.one_by_key(
            &format!("SELECT {ARTWORK_COLUMNS} FROM artworks WHERE artwork_id = $1"),
            artwork_id,
        )
        .await
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
        let artwork = from_row::<ArtworkRow>(&row)?;
        Self::commit_audited(
            tx,
            actor,
            "artwork.status",
            artwork_id,
            &serde_json::json!({ "status": status.as_str() }),
        )
        .await?;
        Ok(artwork)
    }

    async fn latest_for_artwork(&self, artwork_id: &str) -> StoreResult<Option<ScreeningRow>> {
        let columns = SCREENING_COLUMNS
            .split(", ")
            .map(|c| format!("s.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        self.one_by_key(
            &format!(
                "SELECT {columns} FROM artworks a JOIN screenings s ON s.id = a.latest_screening_id \
                 WHERE a.artwork_id = $1"
            ),
            artwork_id,
        )
        .await
    }

    async fn owner_screenings_since(
        &self,
        owner_id: &str,
        since: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<ScreeningRow>> {
        let fetched: Vec<ScreeningRow> = sqlx::query_as(&format!(
            "SELECT {SCREENING_COLUMNS} FROM screenings \
             WHERE owner_id = $1 AND created_at >= $2 ORDER BY created_at, id LIMIT $3"
        ))
        .bind(owner_id)
        .bind(since)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(fetched)
    }

    async fn cached_verdict(
        &self,
        sha256: &str,
        versions: &VerdictVersions<'_>,
    ) -> StoreResult<Option<ScreeningRow>> {
        // Words screened alone are stored with no hash: no image's verdict.
        require_nonempty("sha256", sha256)?;
        Ok(sqlx::query_as::<_, ScreeningRow>(&format!(
            "SELECT {SCREENING_COLUMNS} FROM screenings \
             WHERE sha256 = $1 AND model = $2 AND policy_version = $3 AND banks_version = $4 \
               AND analysis = $5 \
             ORDER BY created_at DESC, id DESC LIMIT 1"
        ))
        .bind(normalise_hash(sha256))
        .bind(versions.model)
        .bind(versions.policy)
        .bind(versions.banks)
        .bind(versions.analysis)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn artwork_signals(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<ArtworkSignals>> {
        let fetched: Vec<ArtworkSignals> = sqlx::query_as(
            "SELECT a.artwork_id, a.owner_id, a.status, s.id AS screening_id, s.sha256, s.md5, \
               s.pdq, s.pdq_quality, s.view_pdq \
             FROM artworks a JOIN screenings s ON s.id = a.latest_screening_id \
             WHERE a.artwork_id > $1 ORDER BY a.artwork_id LIMIT $2",
        )
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(fetched)
    }

    async fn claim_in_flight(
        &self,
        key: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        require_nonempty("in-flight key", key)?;
        require_nonempty("in-flight holder", holder)?;
        // One statement: of two replicas claiming at once, the second finds the first's row
        // (Postgres waits for its insert to commit; SQLite serialises writers).
        let claimed = self
            .write_one(
                sqlx::query(
                    "INSERT INTO in_flight (key, holder, until) VALUES ($1, $2, $4) \
                     ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, \
                       until = excluded.until \
                     WHERE in_flight.until <= $3",
                )
                .bind(key)
                .bind(holder)
                .bind(now)
                .bind(until),
            )
            .await?;
        Ok(claimed == 1)
    }

    async fn release_in_flight(
        &self,
        key: &str,
        holder: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        // Claims that ran out (their holder died) go too: no screening of those bytes may
        // come to overwrite them. The table holds only the claims in flight, so this is cheap.
        self.write_one(
            sqlx::query("DELETE FROM in_flight WHERE (key = $1 AND holder = $2) OR until <= $3")
                .bind(key)
                .bind(holder)
                .bind(now),
        )
        .await?;
        Ok(())
    }
}

impl Backend {
    /// A pending queue item for screening `screening_id`; its id.
    async fn insert_review(
        tx: &mut Tx,
        screening_id: &str,
        artwork_id: Option<&str>,
        owner_id: Option<&str>,
        review: &ReviewWrite,
        created_at: DateTime<Utc>,
    ) -> StoreResult<String> {
        let review_id = new_id();
        sqlx::query(&format!(
            "INSERT INTO review_queue ({REVIEW_COLUMNS}) \
             VALUES ($1, $2, $3, $4, 'pending', $5, NULL, NULL, NULL, NULL, NULL, $6, \
               'reviewer', $7, $8, $9, $10, $11, $12, NULL)"
        ))
        .bind(&review_id)
        .bind(screening_id)
        .bind(artwork_id)
        .bind(review.priority)
        .bind(&review.reason)
        .bind(created_at)
        .bind(review.verdict.as_str())
        .bind(owner_id)
        .bind(&review.top_label)
        .bind(review.top_score)
        .bind(ListText::encode(&review.labels))
        .bind(ListText::encode(&review.banks))
        .execute(&mut **tx)
        .await?;
        Ok(review_id)
    }
}
