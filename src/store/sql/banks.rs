// Hash banks: their specs, entries, versions, change log and staged imports.

impl Backend {
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
        let bank_row = from_row::<BankRow>(&row)?;
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
        let mut pace = super::pace::WritePace::new(IMPORT_BATCH_TIME);
        loop {
            let rows = pace.next_step(std::time::Duration::ZERO, 0);
            let (mut tx, began) = (self.begin_write().await?, std::time::Instant::now());
            let deleted = sqlx::query(
                "DELETE FROM bank_entries WHERE id IN \
                 (SELECT id FROM bank_entries WHERE import_id = $1 LIMIT $2)",
            )
            .bind(import_id)
            .bind(rows as i64)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            pace.wrote(deleted as usize, began.elapsed());
            if deleted == 0 {
                sqlx::query("DELETE FROM bank_imports WHERE id = $1 AND published = FALSE")
                    .bind(import_id)
                    .execute(&mut *tx)
                    .await?;
            }
            let began = std::time::Instant::now();
            tx.commit().await?;
            pace.committed(deleted as usize, began.elapsed());
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
        let (mut rest, mut pace) = (entries, super::pace::WritePace::new(IMPORT_BATCH_TIME));
        while !rest.is_empty() {
            let mut tx = self.begin_write().await?;
            // Rows go in by steps the pace sizes: in a large table or on a loaded machine each row
            // costs more, and a screening waits for the whole batch, commit included.
            let (started, mut written) = (std::time::Instant::now(), 0);
            loop {
                let rows = pace
                    .next_step(started.elapsed(), written)
                    .min(rest.len())
                    .min(IMPORT_BATCH - written);
                if rows == 0 {
                    break;
                }
                let (step, after) = rest.split_at(rows);
                let began = std::time::Instant::now();
                Self::insert_entry_rows(&mut tx, bank, step, Some(import_id)).await?;
                pace.wrote(rows, began.elapsed());
                (written, rest) = (written + rows, after);
            }
            let began = std::time::Instant::now();
            tx.commit().await?;
            pace.committed(written, began.elapsed());
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
}

#[async_trait]
impl BankStore for Backend {
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
            let existing = from_row::<BankRow>(&row)?;
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
        let fetched: Vec<BankRow> =
            sqlx::query_as(&format!("SELECT {BANK_COLUMNS} FROM banks ORDER BY name"))
                .fetch_all(&self.pool)
                .await?;
        Ok(fetched)
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
        let fetched: Vec<EntryRow> = sqlx::query_as(&format!(
            "SELECT {ENTRY_COLUMNS} FROM bank_entries WHERE disabled = FALSE AND {VISIBLE} \
             ORDER BY bank, signal, hash"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(fetched)
    }

    async fn list_bank_entries(&self, bank: &str) -> StoreResult<Vec<EntryRow>> {
        let fetched: Vec<EntryRow> = sqlx::query_as(&format!(
            "SELECT {ENTRY_COLUMNS} FROM bank_entries WHERE bank = $1 AND {VISIBLE} \
             ORDER BY signal, hash"
        ))
        .bind(bank)
        .fetch_all(&self.pool)
        .await?;
        Ok(fetched)
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
        let entries = crate::matching::bank_work::run("snapshot", move || {
            rows(entries, from_row::<EntryRow>)
        })
        .await
        .map_err(|e| StoreError::unavailable("the bank snapshot was not decoded", e))??;
        Ok(BankSnapshot {
            banks_version,
            banks: rows(banks, from_row::<BankRow>)?,
            entries,
        })
    }
}
