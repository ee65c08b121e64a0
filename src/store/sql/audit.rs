// The audit log.

impl Backend {
    async fn insert_audit(
        conn: &mut <Db as sqlx::Database>::Connection,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &serde_json::Value,
    ) -> StoreResult<String> {
        let id = new_id();
        sqlx::query(
            "INSERT INTO audit_log (id, actor, action, subject, detail, at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(actor)
        .bind(action)
        .bind(subject)
        .bind(to_json_text(detail))
        .bind(now_utc())
        .execute(&mut *conn)
        .await?;
        Ok(id)
    }

    /// Writes the audit row and commits, so a change and its audit entry land together.
    async fn commit_audited(
        mut tx: Tx,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &serde_json::Value,
    ) -> StoreResult<()> {
        Self::insert_audit(&mut tx, actor, action, subject, detail).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl AuditStore for Backend {
    async fn append_audit(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &serde_json::Value,
    ) -> StoreResult<String> {
        require_nonempty("actor", actor)?;
        require_nonempty("action", action)?;
        let mut tx = self.begin_write().await?;
        let id = Self::insert_audit(&mut tx, actor, action, subject, detail).await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn recent_audit(&self, limit: i64) -> StoreResult<Vec<AuditRow>> {
        let fetched: Vec<AuditRow> = sqlx::query_as(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY at DESC, id DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(fetched)
    }
}
