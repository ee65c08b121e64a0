// The review queue: items, claims, decisions, and what the console shows around them.

/// A LIKE pattern that finds `item` in an `ListText::encode` column, with LIKE's wildcards escaped
/// (labels contain `_`).
fn list_member_pattern(item: &str) -> String {
    let escaped = item
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        // `ListText::encode` stored a comma inside an item as `_`.
        .replace(['_', ','], "\\_");
    format!("%,{escaped},%")
}

impl Backend {
    /// The item, locked until commit; not found too when `role` may not see it.
    async fn review_for_update(tx: &mut Tx, id: &str, role: ConsoleRole) -> StoreResult<ReviewRow> {
        sqlx::query_as::<_, ReviewRow>(&format!(
            "SELECT {REVIEW_COLUMNS} FROM review_queue WHERE id = $1{ROW_LOCK}"
        ))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .filter(|r| r.visible_to(role))
        .ok_or_else(|| StoreError::NotFound(format!("review item {id}")))
    }
}

impl Backend {
    /// Why `decision` on `review` must not be applied, if it must not. Locks the artwork and
    /// account rows it reads, so a screening or takedown committing meanwhile waits for this
    /// transaction (and one that committed first is seen).
    async fn decision_refused(
        tx: &mut Tx,
        review: &ReviewRow,
        decision: ReviewDecision,
    ) -> StoreResult<Option<DecisionRefused>> {
        let screening = sqlx::query("SELECT artwork_id, owner_id FROM screenings WHERE id = $1")
            .bind(&review.screening_id)
            .fetch_one(&mut **tx)
            .await?;
        let artwork_id: Option<String> = screening.try_get("artwork_id")?;
        let owner_id: Option<String> = screening.try_get("owner_id")?;
        // The account before the artwork, in the order screenings and takedowns lock them.
        let taken_down = match (&owner_id, decision) {
            (Some(owner_id), ReviewDecision::Release) => Self::lock_account(tx, owner_id).await?,
            _ => false,
        };
        if let Some(artwork_id) = artwork_id {
            let current: Option<String> = sqlx::query(&format!(
                "SELECT latest_screening_id FROM artworks WHERE artwork_id = $1{ROW_LOCK}"
            ))
            .bind(&artwork_id)
            .fetch_optional(&mut **tx)
            .await?
            .map(|row| row.try_get("latest_screening_id"))
            .transpose()?
            .flatten();
            if let Some(current) = current.filter(|c| *c != review.screening_id) {
                let current_review_id =
                    sqlx::query("SELECT id FROM review_queue WHERE screening_id = $1")
                        .bind(&current)
                        .fetch_optional(&mut **tx)
                        .await?
                        .map(|row| row.try_get::<String, _>("id"))
                        .transpose()?;
                return Ok(Some(DecisionRefused::Superseded {
                    review_id: review.id.clone(),
                    screening_id: review.screening_id.clone(),
                    artwork_id,
                    current_screening_id: current,
                    current_review_id,
                }));
            }
        }
        Ok(owner_id
            .filter(|_| taken_down)
            .map(|owner_id| DecisionRefused::OwnerTakenDown { owner_id }))
    }
}

/// Someone other than `reviewer` holds a claim that has not lapsed.
fn claimed_by_other(review: &ReviewRow, reviewer: &str, lease_cutoff: DateTime<Utc>) -> bool {
    review.state == ReviewState::Claimed
        && review.claimed_by.as_deref() != Some(reviewer)
        && review.claimed_at.is_some_and(|at| at > lease_cutoff)
}

#[async_trait]
impl ReviewStore for Backend {
    async fn review_queue(&self, filter: &ReviewFilter) -> StoreResult<Vec<ReviewRow>> {
        let mut query = sqlx::QueryBuilder::<Db>::new(format!(
            "SELECT {REVIEW_COLUMNS} FROM review_queue WHERE "
        ));
        query.push(match filter.state {
            QueueState::Open => "state <> 'decided'",
            QueueState::Pending => "state = 'pending'",
            QueueState::Claimed => "state = 'claimed'",
            QueueState::Decided => "state = 'decided'",
            QueueState::Escalated => "state <> 'decided' AND level = 'admin'",
        });
        if !filter.include_admin_level {
            query.push(" AND level = 'reviewer'");
        }
        if let Some(verdict) = &filter.verdict {
            query.push(" AND verdict = ").push_bind(verdict.as_str());
        }
        if let Some(owner) = &filter.owner {
            query.push(" AND owner_id = ").push_bind(owner.clone());
        }
        if let Some(label) = &filter.label {
            query
                .push(" AND labels LIKE ")
                .push_bind(list_member_pattern(label))
                .push(" ESCAPE '\\'");
        }
        if let Some(bank) = &filter.bank {
            query
                .push(" AND banks LIKE ")
                .push_bind(list_member_pattern(bank))
                .push(" ESCAPE '\\'");
        }
        if filter.reported {
            query.push(
                " AND EXISTS (SELECT 1 FROM user_report_items reported \
                 WHERE reported.review_id = review_queue.id)",
            );
        }
        if let Some(from) = filter.from {
            query.push(" AND created_at >= ").push_bind(from);
        }
        if let Some(to) = filter.to {
            query.push(" AND created_at < ").push_bind(to);
        }
        let decided = filter.state == QueueState::Decided;
        if !decided {
            // An earlier item of an artwork screened again is superseded: list the latest.
            query.push(
                " AND (artwork_id IS NULL OR NOT EXISTS (SELECT 1 FROM review_queue newer \
                 WHERE newer.artwork_id = review_queue.artwork_id AND newer.state <> 'decided' \
                 AND (newer.created_at > review_queue.created_at \
                   OR (newer.created_at = review_queue.created_at AND newer.id > review_queue.id))",
            );
            if !filter.include_admin_level {
                query.push(" AND newer.level = 'reviewer'");
            }
            query.push("))");
        }
        if let Some(after) = &filter.after {
            let last = self.get_review(after).await?.ok_or_else(|| {
                StoreError::Invalid(format!("after={after:?} is not a queue item"))
            })?;
            if decided {
                let at = last.decided_at.unwrap_or(last.created_at);
                query
                    .push(" AND (decided_at < ")
                    .push_bind(at)
                    .push(" OR (decided_at = ")
                    .push_bind(at)
                    .push(" AND id < ")
                    .push_bind(last.id)
                    .push("))");
            } else {
                query
                    .push(" AND (priority < ")
                    .push_bind(last.priority)
                    .push(" OR (priority = ")
                    .push_bind(last.priority)
                    .push(" AND (created_at > ")
                    .push_bind(last.created_at)
                    .push(" OR (created_at = ")
                    .push_bind(last.created_at)
                    .push(" AND id > ")
                    .push_bind(last.id)
                    .push("))))");
            }
        }
        query.push(if decided {
            " ORDER BY decided_at DESC, id DESC LIMIT "
        } else {
            " ORDER BY priority DESC, created_at, id LIMIT "
        });
        query.push_bind(filter.limit.clamp(1, 1000));
        let fetched = query.build().fetch_all(&self.pool).await?;
        rows(fetched, from_row::<ReviewRow>)
    }

    async fn artwork_reviews(
        &self,
        artwork_id: &str,
        include_admin_level: bool,
        limit: i64,
    ) -> StoreResult<Vec<ReviewRow>> {
        let level = if include_admin_level {
            ""
        } else {
            " AND level = 'reviewer'"
        };
        let fetched: Vec<ReviewRow> = sqlx::query_as(&format!(
            "SELECT {REVIEW_COLUMNS} FROM review_queue WHERE artwork_id = $1{level} \
             ORDER BY created_at DESC, id DESC LIMIT $2"
        ))
        .bind(artwork_id)
        .bind(limit.clamp(1, 1000))
        .fetch_all(&self.pool)
        .await?;
        Ok(fetched)
    }

    async fn get_review(&self, id: &str) -> StoreResult<Option<ReviewRow>> {
        self.one_by_key(
            &format!("SELECT {REVIEW_COLUMNS} FROM review_queue WHERE id = $1"),
            id,
        )
        .await
    }

    async fn claim_review_item(
        &self,
        id: &str,
        reviewer: &str,
        role: ConsoleRole,
        lease_cutoff: DateTime<Utc>,
    ) -> StoreResult<ReviewRow> {
        require_nonempty("reviewer", reviewer)?;
        let mut tx = self.begin_write().await?;
        let review = Self::review_for_update(&mut tx, id, role).await?;
        if review.state == ReviewState::Decided {
            return Err(StoreError::Conflict(format!(
                "review item {id} is already decided"
            )));
        }
        if claimed_by_other(&review, reviewer, lease_cutoff) {
            return Err(StoreError::Conflict(format!(
                "review item {id} is claimed by {}",
                review.claimed_by.as_deref().unwrap_or("someone else")
            )));
        }
        let row = sqlx::query(&format!(
            "UPDATE review_queue SET state = 'claimed', claimed_by = $2, claimed_at = $3 \
             WHERE id = $1 RETURNING {REVIEW_COLUMNS}"
        ))
        .bind(id)
        .bind(reviewer)
        .bind(now_utc())
        .fetch_one(&mut *tx)
        .await?;
        Self::commit_audited(
            tx,
            reviewer,
            "review.claim",
            &review.screening_id,
            &serde_json::json!({ "review_id": id }),
        )
        .await?;
        from_row::<ReviewRow>(&row)
    }

    async fn unclaim_review_item(
        &self,
        id: &str,
        reviewer: &str,
        role: ConsoleRole,
    ) -> StoreResult<ReviewRow> {
        let mut tx = self.begin_write().await?;
        let review = Self::review_for_update(&mut tx, id, role).await?;
        if review.state != ReviewState::Claimed {
            return Ok(review);
        }
        if review.claimed_by.as_deref() != Some(reviewer) && role != ConsoleRole::Admin {
            return Err(StoreError::Conflict(format!(
                "review item {id} is claimed by someone else"
            )));
        }
        let row = sqlx::query(&format!(
            "UPDATE review_queue SET state = 'pending', claimed_by = NULL, claimed_at = NULL \
             WHERE id = $1 RETURNING {REVIEW_COLUMNS}"
        ))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        Self::commit_audited(
            tx,
            reviewer,
            "review.unclaim",
            &review.screening_id,
            &serde_json::json!({ "review_id": id }),
        )
        .await?;
        from_row::<ReviewRow>(&row)
    }

    async fn apply_decision(
        &self,
        write: &DecisionWrite,
    ) -> StoreResult<Result<DecisionApplied, DecisionRefused>> {
        require_nonempty("reviewer", &write.reviewer)?;
        require_nonempty("reason code", &write.reason_code)?;
        let now = now_utc();
        let lease = chrono::Duration::from_std(write.claim_lease)
            .map_err(|e| StoreError::Invalid(format!("claim lease: {e}")))?;
        let id = &write.review_id;
        let mut tx = self.begin_write().await?;
        let review = Self::review_for_update(&mut tx, id, write.reviewer_role).await?;
        if review.state == ReviewState::Decided {
            // The same decision again by the same reviewer is a client retry: report it,
            // change nothing. Another reviewer deciding at the same time lost the race, and
            // must be told so rather than believe their decision was recorded.
            if review.decision == Some(write.decision)
                && review.claimed_by.as_deref() == Some(write.reviewer.as_str())
            {
                let banks_version = Self::current_banks_version(&mut tx).await?;
                return Ok(Ok(DecisionApplied {
                    review,
                    bank_entries_added: 0,
                    banks_version,
                    report_ids: Vec::new(),
                    released_items: 0,
                    retried: true,
                }));
            }
            return Err(StoreError::Conflict(format!(
                "review item {id} was already decided ({}) by {}",
                review.decision.map_or("?", |d| d.as_str()),
                review.claimed_by.as_deref().unwrap_or("someone else")
            )));
        }
        if claimed_by_other(&review, &write.reviewer, now - lease) {
            return Err(StoreError::Conflict(format!(
                "review item {id} is claimed by {}",
                review.claimed_by.as_deref().unwrap_or("someone else")
            )));
        }
        if write.decision == ReviewDecision::Escalate && review.level == ReviewLevel::Admin {
            return Err(StoreError::Invalid(format!(
                "review item {id} is already escalated to admins"
            )));
        }
        if let Some(refused) = Self::decision_refused(&mut tx, &review, write.decision).await? {
            return Ok(Err(refused));
        }

        let updated = if write.decision == ReviewDecision::Escalate {
            sqlx::query(&format!(
                "UPDATE review_queue SET level = 'admin', state = 'pending', claimed_by = NULL, \
                   claimed_at = NULL, reason_code = $2, note = $3 \
                 WHERE id = $1 RETURNING {REVIEW_COLUMNS}"
            ))
            .bind(id)
            .bind(&write.reason_code)
            .bind(&write.note)
            .fetch_one(&mut *tx)
            .await?
        } else {
            sqlx::query(&format!(
                "UPDATE review_queue SET state = 'decided', decided_at = $2, decision = $3, \
                   reason_code = $4, note = $5, claimed_by = $6, \
                   claimed_at = COALESCE(claimed_at, $2) \
                 WHERE id = $1 RETURNING {REVIEW_COLUMNS}"
            ))
            .bind(id)
            .bind(now)
            .bind(write.decision.as_str())
            .bind(&write.reason_code)
            .bind(&write.note)
            .bind(&write.reviewer)
            .fetch_one(&mut *tx)
            .await?
        };
        let decided = from_row::<ReviewRow>(&updated)?;

        let (bank, bank_entries_added) = match &write.bank_entries {
            Some((bank, entries)) => (
                Some(bank.as_str()),
                Self::insert_entries(&mut tx, bank, entries).await?,
            ),
            None => (None, 0),
        };
        let banks_version = if bank_entries_added > 0 {
            Self::bump_banks_version(&mut tx).await?
        } else {
            Self::current_banks_version(&mut tx).await?
        };
        let report_ids =
            Self::insert_reports(&mut tx, &review.screening_id, &write.reports, now).await?;

        if write.decision == ReviewDecision::Confirm {
            // A confirm on art the screening let through (a user report's item) takes it
            // out of view, as a block would have.
            sqlx::query(
                "UPDATE artworks SET status = 'quarantined', updated_at = $2 \
                 WHERE artwork_id = (SELECT artwork_id FROM screenings WHERE id = $1) \
                   AND status IN ('published', 'released')",
            )
            .bind(&review.screening_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let released_items = if write.decision == ReviewDecision::Release {
            Self::release_screened_art(&mut tx, &review.screening_id, &write.reviewer, now).await?
        } else {
            0
        };

        Self::insert_audit(
            &mut tx,
            &write.reviewer,
            &format!("review.{}", write.decision),
            &review.screening_id,
            &serde_json::json!({
                "review_id": id,
                "reason_code": write.reason_code,
                "note": write.note,
                "bank": bank,
                "bank_entries_added": bank_entries_added,
                "report_ids": report_ids,
                "released_items": released_items,
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(Ok(DecisionApplied {
            review: decided,
            bank_entries_added,
            banks_version,
            report_ids,
            released_items,
            retried: false,
        }))
    }

    async fn review_for_screening(&self, screening_id: &str) -> StoreResult<Option<ReviewRow>> {
        self.one_by_key(
            &format!("SELECT {REVIEW_COLUMNS} FROM review_queue WHERE screening_id = $1"),
            screening_id,
        )
        .await
    }

    async fn lift_takedown(&self, owner_id: &str, actor: &str) -> StoreResult<bool> {
        require_nonempty("owner id", owner_id)?;
        require_nonempty("actor", actor)?;
        let mut tx = self.begin_write().await?;
        let lifted = Self::lift_takedown_in(&mut tx, owner_id, actor).await?;
        tx.commit().await?;
        Ok(lifted)
    }

    async fn owner_artworks(
        &self,
        owner_id: &str,
        limit: i64,
        include_admin_level: bool,
    ) -> StoreResult<Vec<OwnerArtwork>> {
        let fetched: Vec<OwnerArtwork> = sqlx::query_as(
            "SELECT a.artwork_id, a.status, s.verdict, a.latest_screening_id, a.updated_at \
             FROM artworks a LEFT JOIN screenings s ON s.id = a.latest_screening_id \
             WHERE a.owner_id = $1 AND ($3 OR NOT EXISTS ( \
               SELECT 1 FROM review_queue q WHERE q.artwork_id = a.artwork_id \
                 AND q.level = 'admin')) \
             ORDER BY a.updated_at DESC, a.artwork_id LIMIT $2",
        )
        .bind(owner_id)
        .bind(limit.clamp(1, 1000))
        .bind(include_admin_level)
        .fetch_all(&self.pool)
        .await?;
        Ok(fetched)
    }

    async fn audit_rows(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRow>> {
        let mut query = sqlx::QueryBuilder::<Db>::new(format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE TRUE"
        ));
        if let Some(actor) = &filter.actor {
            query.push(" AND actor = ").push_bind(actor.clone());
        }
        if let Some(action) = &filter.action {
            query.push(" AND action = ").push_bind(action.clone());
        }
        if !filter.subjects.is_empty() {
            query.push(" AND subject IN (");
            let mut list = query.separated(", ");
            for subject in &filter.subjects {
                list.push_bind(subject.clone());
            }
            query.push(")");
        }
        if let Some(cursor) = &filter.cursor {
            query
                .push(if filter.oldest_first {
                    " AND id > "
                } else {
                    " AND id < "
                })
                .push_bind(cursor.clone());
        }
        query.push(if filter.oldest_first {
            " ORDER BY id LIMIT "
        } else {
            " ORDER BY id DESC LIMIT "
        });
        query.push_bind(filter.limit.clamp(1, 10_000));
        let fetched = query.build().fetch_all(&self.pool).await?;
        rows(fetched, from_row::<AuditRow>)
    }

    async fn review_counts(
        &self,
        since: DateTime<Utc>,
        queue_age_cutoffs: &[DateTime<Utc>],
    ) -> StoreResult<ReviewCounts> {
        let mut counts = ReviewCounts::default();
        let per_day = sqlx::query(&format!(
            "SELECT {DAY_OF_CREATED} AS day, verdict, COUNT(*) AS n FROM screenings \
             WHERE created_at >= $1 GROUP BY 1, 2 ORDER BY 1, 2"
        ))
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        for row in &per_day {
            counts.verdicts_per_day.push((
                row.try_get("day")?,
                row.try_get("verdict")?,
                row.try_get("n")?,
            ));
        }

        // Open items created at or after each cut-off; the buckets are the differences.
        let mut at_or_after = Vec::with_capacity(queue_age_cutoffs.len() + 1);
        for cutoff in queue_age_cutoffs {
            let row = sqlx::query(
                "SELECT COUNT(*) AS n FROM review_queue WHERE state <> 'decided' AND created_at >= $1",
            )
            .bind(*cutoff)
            .fetch_one(&self.pool)
            .await?;
            at_or_after.push(row.try_get::<i64, _>("n")?);
        }
        let all: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM review_queue WHERE state <> 'decided'")
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?;
        at_or_after.push(all);
        let mut previous = 0;
        for n in at_or_after {
            counts.queue_age.push(n - previous);
            previous = n;
        }

        let decided = sqlx::query(
            "SELECT claimed_by, decision, COUNT(*) AS n FROM review_queue \
             WHERE state = 'decided' AND decided_at >= $1 GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        for row in &decided {
            let reviewer: Option<String> = row.try_get("claimed_by")?;
            let decision: Option<String> = row.try_get("decision")?;
            counts.decisions.push((
                reviewer.unwrap_or_default(),
                decision.unwrap_or_default(),
                row.try_get("n")?,
            ));
        }
        let escalated = sqlx::query(
            "SELECT actor, COUNT(*) AS n FROM audit_log \
             WHERE action = 'review.escalate' AND at >= $1 GROUP BY 1 ORDER BY 1",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        for row in &escalated {
            counts
                .decisions
                .push((row.try_get("actor")?, "escalate".into(), row.try_get("n")?));
        }
        Ok(counts)
    }

    async fn recent_records(&self, limit: i64) -> StoreResult<Vec<serde_json::Value>> {
        let fetched =
            sqlx::query("SELECT record FROM screenings ORDER BY created_at DESC, id DESC LIMIT $1")
                .bind(limit.clamp(1, 100_000))
                .fetch_all(&self.pool)
                .await?;
        fetched
            .iter()
            .map(|row| json_column(row, "record"))
            .collect()
    }
}

impl Backend {
    /// Lifts `owner_id`'s takedown inside `tx`, with its audit row and account event; false
    /// when the account was not taken down.
    async fn lift_takedown_in(tx: &mut Tx, owner_id: &str, actor: &str) -> StoreResult<bool> {
        let lifted = sqlx::query(
            "UPDATE accounts SET taken_down_at = NULL, taken_down_by = NULL \
             WHERE owner_id = $1 AND taken_down_at IS NOT NULL",
        )
        .bind(owner_id)
        .execute(&mut **tx)
        .await?
        .rows_affected()
            > 0;
        if lifted {
            Self::insert_audit(
                tx,
                actor,
                "account.takedown_lift",
                owner_id,
                &serde_json::json!({}),
            )
            .await?;
            let now = now_utc();
            let detail = serde_json::json!({ "action": "resume_owner" });
            Self::insert_account_event(tx, owner_id, "takedown_lifted", now, actor, detail, now)
                .await?;
        }
        Ok(lifted)
    }
}

impl Backend {
    /// Lifts the quarantine of screening `screening_id`'s bytes of its artwork and makes the
    /// artwork `released`, inside `tx`; the quarantine items lifted.
    async fn release_screened_art(
        tx: &mut Tx,
        screening_id: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let screening = sqlx::query("SELECT sha256, artwork_id FROM screenings WHERE id = $1")
            .bind(screening_id)
            .fetch_one(&mut **tx)
            .await?;
        let sha256: String = screening.try_get("sha256")?;
        let artwork_id: Option<String> = screening.try_get("artwork_id")?;
        let released = sqlx::query(
            "UPDATE quarantine_items SET released_at = $3, released_by = $4 \
             WHERE sha256 = $1 AND COALESCE(artwork_id, '') = COALESCE($2, '') \
               AND released_at IS NULL",
        )
        .bind(&sha256)
        .bind(&artwork_id)
        .bind(now)
        .bind(actor)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if let Some(artwork_id) = &artwork_id {
            sqlx::query(
                "UPDATE artworks SET status = 'released', updated_at = $2 \
                 WHERE artwork_id = $1 AND status IN ('quarantined', 'held')",
            )
            .bind(artwork_id)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
        Ok(released)
    }
}
