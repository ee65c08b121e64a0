// API tokens, stored by the sha256 of their secret.

#[async_trait]
impl TokenStore for Backend {
    async fn put_token(&self, token_hash: &str, name: &str, role: TokenRole) -> StoreResult<()> {
        require_nonempty("token hash", token_hash)?;
        require_nonempty("token name", name)?;
        self.write_one(
            sqlx::query(
                "INSERT INTO api_tokens (token_hash, name, role, created_at, revoked) \
                 VALUES ($1, $2, $3, $4, FALSE) \
                 ON CONFLICT (token_hash) DO UPDATE SET name = excluded.name, role = excluded.role",
            )
            .bind(normalise_hash(token_hash))
            .bind(name)
            .bind(role.as_str())
            .bind(now_utc()),
        )
        .await?;
        Ok(())
    }

    async fn revoke_token(&self, token_hash: &str) -> StoreResult<bool> {
        let changed = self
            .write_one(
                sqlx::query(
                    "UPDATE api_tokens SET revoked = TRUE WHERE token_hash = $1 AND revoked = FALSE",
                )
                .bind(normalise_hash(token_hash)),
            )
            .await?;
        Ok(changed > 0)
    }

    async fn token_role(&self, token_hash: &str) -> StoreResult<Option<TokenRole>> {
        let row =
            sqlx::query("SELECT role FROM api_tokens WHERE token_hash = $1 AND revoked = FALSE")
                .bind(normalise_hash(token_hash))
                .fetch_optional(&self.pool)
                .await?;
        match row {
            Some(row) => Ok(Some(row.try_get("role")?)),
            None => Ok(None),
        }
    }

    async fn active_tokens(&self) -> StoreResult<Vec<(String, TokenRole)>> {
        let rows = sqlx::query("SELECT token_hash, role FROM api_tokens WHERE revoked = FALSE")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get::<String, _>("token_hash")?,
                    row.try_get("role")?,
                ))
            })
            .collect()
    }
}
