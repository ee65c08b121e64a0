// Account takedowns and the events they publish.

impl Backend {
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
}

#[async_trait]
impl AccountStore for Backend {
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
        let mut changed = rows(changed, from_row::<ArtworkRow>)?;
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
}
