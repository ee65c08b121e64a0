// Quarantine items: listing, release, and the retention sweep.

#[async_trait]
impl QuarantineStore for Backend {
    async fn quarantine_items(&self, sha256: &str) -> StoreResult<Vec<QuarantineRow>> {
        let fetched: Vec<QuarantineRow> = sqlx::query_as(&format!(
            "SELECT {QUARANTINE_COLUMNS} FROM quarantine_items WHERE sha256 = $1 \
             ORDER BY created_at, id"
        ))
        .bind(normalise_hash(sha256))
        .fetch_all(&self.pool)
        .await?;
        Ok(fetched)
    }

    async fn release_quarantine(&self, item_id: &str, actor: &str) -> StoreResult<QuarantineRow> {
        require_nonempty("actor", actor)?;
        let now = now_utc();
        let mut tx = self.begin_write().await?;
        let released = sqlx::query(&format!(
            "UPDATE quarantine_items SET released_at = $2, released_by = $3 \
             WHERE id = $1 AND released_at IS NULL RETURNING {QUARANTINE_COLUMNS}"
        ))
        .bind(item_id)
        .bind(now)
        .bind(actor)
        .fetch_optional(&mut *tx)
        .await?;
        let item = match released {
            Some(row) => {
                let item = from_row::<QuarantineRow>(&row)?;
                if let Some(artwork_id) = &item.artwork_id {
                    sqlx::query(
                        "UPDATE artworks SET status = 'released', updated_at = $2 \
                         WHERE artwork_id = $1 AND status = 'quarantined'",
                    )
                    .bind(artwork_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                Self::insert_audit(
                    &mut tx,
                    actor,
                    "quarantine.release",
                    &item.sha256,
                    &serde_json::json!({ "item_id": item.id, "artwork_id": item.artwork_id }),
                )
                .await?;
                item
            }
            None => {
                // Already released (a retry) or unknown.
                let row = sqlx::query(&format!(
                    "SELECT {QUARANTINE_COLUMNS} FROM quarantine_items WHERE id = $1"
                ))
                .bind(item_id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("quarantine item {item_id}")))?;
                from_row::<QuarantineRow>(&row)?
            }
        };
        tx.commit().await?;
        Ok(item)
    }

    async fn expired_quarantine(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<QuarantineRow>> {
        self.due_rows(
            &format!(
                "SELECT {QUARANTINE_COLUMNS} FROM quarantine_items \
                 WHERE released_at IS NULL AND retention_until < $1 \
                 ORDER BY retention_until, id LIMIT $2"
            ),
            now,
            limit,
        )
        .await
    }
}
