// Appeals against automatic blocks, reviewers' confirms and account takedowns, and their
// decisions.

const APPEAL_COLUMNS: &str = "id, decision_ref, kind, owner_id, artwork_id, screening_id, \
     review_id, original_actor, decided_originally_at, text, level, state, outcome, \
     reason_code, note, decided_by, decided_at, created_at";

impl Backend {
    /// Disables the known-bad entries `(bank, entry id)` inside `tx`; the lines disabled.
    /// Allow-list banks are left alone: a reversal never takes an allowance away.
    async fn disable_entry_ids_in(tx: &mut Tx, entries: &[(String, String)]) -> StoreResult<u64> {
        let mut disabled = 0;
        for (bank, entry_id) in entries {
            let count = sqlx::query(&format!(
                "UPDATE bank_entries SET disabled = TRUE \
                 WHERE bank = $1 AND (external_id = $2 OR (external_id IS NULL AND id = $2)) \
                   AND disabled = FALSE AND {VISIBLE} \
                   AND bank IN (SELECT name FROM banks WHERE allow_list = FALSE)"
            ))
            .bind(bank)
            .bind(entry_id)
            .execute(&mut **tx)
            .await?
            .rows_affected();
            if count > 0 {
                sqlx::query(
                    "UPDATE banks SET disabled_count = disabled_count + $2 WHERE name = $1",
                )
                .bind(bank)
                .bind(count as i64)
                .execute(&mut **tx)
                .await?;
            }
            disabled += count;
        }
        Ok(disabled)
    }

    /// Why a reversal of `appeal` must not be applied, if it must not: its artwork was
    /// screened again, or its owner is taken down. Locks the rows it reads, in the order
    /// screenings lock them.
    async fn reversal_refused(
        tx: &mut Tx,
        appeal: &AppealRow,
    ) -> StoreResult<Option<AppealRefused>> {
        let (Some(artwork_id), Some(screening_id)) =
            (&appeal.filing.artwork_id, &appeal.filing.screening_id)
        else {
            return Ok(None);
        };
        if Self::lock_account(tx, &appeal.filing.owner_id).await? {
            return Ok(Some(AppealRefused::OwnerTakenDown {
                owner_id: appeal.filing.owner_id.clone(),
            }));
        }
        let current: Option<String> = sqlx::query(&format!(
            "SELECT latest_screening_id FROM artworks WHERE artwork_id = $1{ROW_LOCK}"
        ))
        .bind(artwork_id)
        .fetch_optional(&mut **tx)
        .await?
        .map(|row| row.try_get("latest_screening_id"))
        .transpose()?
        .flatten();
        Ok(current
            .filter(|c| c != screening_id)
            .map(|current_screening_id| AppealRefused::Superseded {
                artwork_id: artwork_id.clone(),
                current_screening_id,
            }))
    }
}

#[async_trait]
impl AppealStore for Backend {
    async fn put_appeal(&self, write: &AppealWrite) -> StoreResult<(AppealRow, bool)> {
        let filing = &write.filing;
        require_nonempty("owner id", &filing.owner_id)?;
        require_nonempty("decision", &write.decision_ref)?;
        let now = now_utc();
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO appeals ({APPEAL_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending', NULL, NULL, NULL, \
               NULL, NULL, $12) \
             ON CONFLICT (decision_ref) DO NOTHING"
        ))
        .bind(new_id())
        .bind(&write.decision_ref)
        .bind(filing.kind.as_str())
        .bind(&filing.owner_id)
        .bind(&filing.artwork_id)
        .bind(&filing.screening_id)
        .bind(&filing.review_id)
        .bind(&filing.original_actor)
        .bind(filing.decided_originally_at)
        .bind(&filing.text)
        .bind(filing.level.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let row = sqlx::query(&format!(
            "SELECT {APPEAL_COLUMNS} FROM appeals WHERE decision_ref = $1"
        ))
        .bind(&write.decision_ref)
        .fetch_one(&mut *tx)
        .await?;
        let appeal = from_row::<AppealRow>(&row)?;
        if inserted {
            Self::insert_audit(
                &mut tx,
                &format!("owner:{}", filing.owner_id),
                "appeal.file",
                &appeal.id,
                &serde_json::json!({
                    "kind": filing.kind,
                    "artwork_id": filing.artwork_id,
                    "screening_id": filing.screening_id,
                    "review_id": filing.review_id,
                }),
            )
            .await?;
        }
        tx.commit().await?;
        Ok((appeal, inserted))
    }

    async fn get_appeal(&self, id: &str) -> StoreResult<Option<AppealRow>> {
        self.one_by_key(
            &format!("SELECT {APPEAL_COLUMNS} FROM appeals WHERE id = $1"),
            id,
        )
        .await
    }

    async fn appeals(
        &self,
        state: AppealState,
        include_admin_level: bool,
        limit: i64,
    ) -> StoreResult<Vec<AppealRow>> {
        let order = match state {
            AppealState::Pending => "created_at, id",
            AppealState::Decided => "decided_at DESC, id DESC",
        };
        let fetched: Vec<AppealRow> = sqlx::query_as(&format!(
            "SELECT {APPEAL_COLUMNS} FROM appeals \
             WHERE state = $1 AND ($2 OR level = 'reviewer') ORDER BY {order} LIMIT $3"
        ))
        .bind(state.as_str())
        .bind(include_admin_level)
        .bind(limit.clamp(1, 1000))
        .fetch_all(&self.pool)
        .await?;
        Ok(fetched)
    }

    async fn takedown_of(&self, owner_id: &str) -> StoreResult<Option<(DateTime<Utc>, String)>> {
        let row = sqlx::query(
            "SELECT taken_down_at, taken_down_by FROM accounts \
             WHERE owner_id = $1 AND taken_down_at IS NOT NULL",
        )
        .bind(owner_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok((
                row.try_get("taken_down_at")?,
                row.try_get::<Option<String>, _>("taken_down_by")?
                    .unwrap_or_default(),
            ))
        })
        .transpose()
    }

    async fn decide_appeal(
        &self,
        write: &AppealDecisionWrite,
    ) -> StoreResult<Result<AppealDecided, AppealRefused>> {
        require_nonempty("decider", &write.decider)?;
        require_nonempty("reason code", &write.reason_code)?;
        let now = now_utc();
        let id = &write.appeal_id;
        let mut tx = self.begin_write().await?;
        let appeal = sqlx::query_as::<_, AppealRow>(&format!(
            "SELECT {APPEAL_COLUMNS} FROM appeals WHERE id = $1{ROW_LOCK}"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .filter(|a| a.visible_to(write.decider_role))
        .ok_or_else(|| StoreError::NotFound(format!("appeal {id}")))?;
        if appeal.state == AppealState::Decided {
            if appeal.outcome == Some(write.outcome)
                && appeal.decided_by.as_deref() == Some(write.decider.as_str())
            {
                return Ok(Ok(AppealDecided {
                    appeal,
                    released_items: 0,
                    bank_entries_added: 0,
                    entries_disabled: 0,
                    takedown_lifted: false,
                    report_ids: Vec::new(),
                    retried: true,
                }));
            }
            return Err(StoreError::Conflict(format!(
                "appeal {id} was already decided ({}) by {}",
                appeal.outcome.map_or("?", |o| o.as_str()),
                appeal.decided_by.as_deref().unwrap_or("someone else")
            )));
        }
        if appeal.filing.original_actor.as_deref() == Some(write.decider.as_str()) {
            return Ok(Err(AppealRefused::SameDecider {
                decider: write.decider.clone(),
            }));
        }
        let reversed = write.outcome == AppealOutcome::Reversed;
        if reversed {
            if let Some(refused) = Self::reversal_refused(&mut tx, &appeal).await? {
                return Ok(Err(refused));
            }
        }

        let (mut released_items, mut bank_entries_added, mut entries_disabled) = (0, 0, 0);
        let mut takedown_lifted = false;
        if reversed {
            match (&appeal.filing.kind, &appeal.filing.screening_id) {
                (AppealKind::Takedown, _) => {
                    takedown_lifted =
                        Self::lift_takedown_in(&mut tx, &appeal.filing.owner_id, &write.decider)
                            .await?;
                }
                (_, Some(screening_id)) => {
                    released_items =
                        Self::release_screened_art(&mut tx, screening_id, &write.decider, now)
                            .await?;
                }
                (_, None) => {}
            }
            if let Some((bank, entries)) = &write.allow_entries {
                bank_entries_added = Self::insert_entries(&mut tx, bank, entries).await?;
            }
            entries_disabled = Self::disable_entry_ids_in(&mut tx, &write.disable_entries).await?;
            if bank_entries_added + entries_disabled > 0 {
                // Not logged entry by entry: other indexes rebuild, as after a release.
                Self::bump_banks_version(&mut tx).await?;
            }
        }
        let report_ids = Self::insert_reports_about(
            &mut tx,
            appeal.filing.screening_id.as_deref(),
            &write.reports,
            now,
        )
        .await?;
        let updated = sqlx::query(&format!(
            "UPDATE appeals SET state = 'decided', outcome = $2, reason_code = $3, note = $4, \
               decided_by = $5, decided_at = $6 \
             WHERE id = $1 RETURNING {APPEAL_COLUMNS}"
        ))
        .bind(id)
        .bind(write.outcome.as_str())
        .bind(&write.reason_code)
        .bind(&write.note)
        .bind(&write.decider)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        Self::insert_audit(
            &mut tx,
            &write.decider,
            &format!("appeal.{}", write.outcome),
            id,
            &serde_json::json!({
                "kind": appeal.filing.kind,
                "artwork_id": appeal.filing.artwork_id,
                "reason_code": write.reason_code,
                "note": write.note,
                "released_items": released_items,
                "bank_entries_added": bank_entries_added,
                "entries_disabled": entries_disabled,
                "takedown_lifted": takedown_lifted,
                "report_ids": report_ids,
            }),
        )
        .await?;
        let appeal = from_row::<AppealRow>(&updated)?;
        tx.commit().await?;
        Ok(Ok(AppealDecided {
            appeal,
            released_items,
            bank_entries_added,
            entries_disabled,
            takedown_lifted,
            report_ids,
            retried: false,
        }))
    }
}
