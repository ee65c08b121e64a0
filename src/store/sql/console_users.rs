// Console users and their sessions.

const CONSOLE_USER_COLUMNS: &str = "username, password_hash, role, settings, disabled";

fn settings_text(settings: &ConsoleSettings) -> StoreResult<String> {
    serde_json::to_string(settings)
        .map_err(|e| StoreError::Invalid(format!("settings do not serialise: {e}")))
}

impl Backend {
    /// Ends every session of `username`; returns how many there were.
    async fn end_sessions(tx: &mut Tx, username: &str) -> StoreResult<u64> {
        Ok(
            sqlx::query("DELETE FROM console_sessions WHERE username = $1")
                .bind(username)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
        )
    }
}

#[async_trait]
impl ConsoleUserStore for Backend {
    async fn put_console_user(
        &self,
        username: &str,
        password_hash: &str,
        role: ConsoleRole,
        actor: &str,
        existing: ExistingUser,
    ) -> StoreResult<()> {
        require_nonempty("username", username)?;
        require_nonempty("password hash", password_hash)?;
        let replace = existing == ExistingUser::Replace;
        let (on_conflict, action) = if replace {
            (
                "DO UPDATE SET password_hash = excluded.password_hash, role = excluded.role, \
                 disabled = FALSE",
                "console_user.put",
            )
        } else {
            ("DO NOTHING", "console_user.create")
        };
        let mut tx = self.begin_write().await?;
        let written = sqlx::query(&format!(
            "INSERT INTO console_users (username, password_hash, role, settings, disabled, created_at) \
             VALUES ($1, $2, $3, $4, FALSE, $5) ON CONFLICT (username) {on_conflict}"
        ))
        .bind(username)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(settings_text(&ConsoleSettings::default())?)
        .bind(now_utc())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if replace {
            // Whoever knew the old password may be logged in: the new one ends that.
            Self::end_sessions(&mut tx, username).await?;
        } else if written == 0 {
            return Err(StoreError::Conflict(format!(
                "console user {username:?} exists; reset their password with \
                 POST /v1/users/{username}/password"
            )));
        }
        Self::commit_audited(
            tx,
            actor,
            action,
            username,
            &serde_json::json!({ "role": role }),
        )
        .await?;
        Ok(())
    }

    async fn reset_console_password(
        &self,
        username: &str,
        password_hash: &str,
        actor: &str,
    ) -> StoreResult<()> {
        require_nonempty("password hash", password_hash)?;
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query(
            "UPDATE console_users SET password_hash = $2, disabled = FALSE WHERE username = $1",
        )
        .bind(username)
        .bind(password_hash)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(StoreError::NotFound(format!("console user {username:?}")));
        }
        let ended = Self::end_sessions(&mut tx, username).await?;
        Self::commit_audited(
            tx,
            actor,
            "console_user.password_reset",
            username,
            &serde_json::json!({ "sessions_ended": ended }),
        )
        .await?;
        Ok(())
    }

    async fn console_users(&self) -> StoreResult<Vec<ConsoleUserSummary>> {
        let fetched: Vec<ConsoleUserSummary> = sqlx::query_as(
            "SELECT username, role, disabled, created_at FROM console_users ORDER BY username",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(fetched)
    }

    async fn console_user(&self, username: &str) -> StoreResult<Option<ConsoleUserRow>> {
        self.one_by_key(
            &format!("SELECT {CONSOLE_USER_COLUMNS} FROM console_users WHERE username = $1"),
            username,
        )
        .await
    }

    async fn disable_console_user(&self, username: &str, actor: &str) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let disabled = sqlx::query("UPDATE console_users SET disabled = TRUE WHERE username = $1")
            .bind(username)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if disabled == 0 {
            return Err(StoreError::NotFound(format!("console user {username:?}")));
        }
        Self::end_sessions(&mut tx, username).await?;
        Self::commit_audited(
            tx,
            actor,
            "console_user.disable",
            username,
            &serde_json::json!({}),
        )
        .await?;
        Ok(())
    }

    async fn set_console_settings(
        &self,
        username: &str,
        settings: &ConsoleSettings,
    ) -> StoreResult<ConsoleUserRow> {
        settings.validate()?;
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query_as::<_, ConsoleUserRow>(&format!(
            "UPDATE console_users SET settings = $2 WHERE username = $1 \
             RETURNING {CONSOLE_USER_COLUMNS}"
        ))
        .bind(username)
        .bind(settings_text(settings)?)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("console user {username:?}")))?;
        tx.commit().await?;
        Ok(updated)
    }

    async fn create_session(&self, session: &SessionWrite) -> StoreResult<()> {
        require_nonempty("session token hash", &session.token_hash)?;
        require_nonempty("CSRF token", &session.csrf_token)?;
        let now = now_utc();
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM console_sessions WHERE expires_at < $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO console_sessions (token_hash, username, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&session.token_hash)
        .bind(&session.username)
        .bind(&session.csrf_token)
        .bind(now)
        .bind(session.expires_at.trunc_subsecs(6))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<SessionRow>> {
        let row = sqlx::query(
            "SELECT s.csrf_token, s.expires_at, u.username, u.password_hash, u.role, u.settings, \
               u.disabled \
             FROM console_sessions s JOIN console_users u ON u.username = s.username \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled = FALSE",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(SessionRow {
                user: from_row::<ConsoleUserRow>(&row)?,
                csrf_token: row.try_get("csrf_token")?,
                expires_at: row.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        self.write_one(
            sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1").bind(token_hash),
        )
        .await?;
        Ok(())
    }

    async fn login_count(&self, name: &str) -> StoreResult<LoginCount> {
        let row = sqlx::query(&format!(
            "SELECT {LOGIN_COUNT_COLUMNS} FROM login_counts WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map_or(Ok(LoginCount::default()), |row| {
            from_row::<LoginCount>(&row)
        })
    }

    async fn update_login_count(
        &self,
        name: &str,
        forget_before: DateTime<Utc>,
        update: &mut (dyn FnMut(LoginCount) -> LoginCount + Send),
    ) -> StoreResult<LoginCount> {
        require_nonempty("login name", name)?;
        let mut tx = self.begin_write().await?;
        // The row exists before it is locked, so two replicas counting a new name queue on it.
        sqlx::query(
            "INSERT INTO login_counts (name, failures, in_flight) VALUES ($1, 0, 0) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(&format!(
            "SELECT {LOGIN_COUNT_COLUMNS} FROM login_counts WHERE name = $1{ROW_LOCK}"
        ))
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        let count = update(from_row::<LoginCount>(&row)?);
        if count.is_empty() {
            sqlx::query("DELETE FROM login_counts WHERE name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await?;
        } else {
            sqlx::query(
                "UPDATE login_counts SET failures = $2, in_flight = $3, in_flight_until = $4, \
                 last_at = $5, locked_until = $6 WHERE name = $1",
            )
            .bind(name)
            .bind(i64::from(count.failures))
            .bind(i64::from(count.in_flight))
            .bind(count.in_flight_until)
            .bind(count.last_at)
            .bind(count.locked_until)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        // Names guessed once and never again would stay forever. A statement of its own,
        // after the commit, so it never holds other names' rows while this one is locked; the
        // count is stored whether or not it succeeds, and the next update tries again.
        let forget = self
            .write_one(
                sqlx::query("DELETE FROM login_counts WHERE last_at < $1").bind(forget_before),
            )
            .await;
        if let Err(e) = forget {
            tracing::warn!(error = %e.chain(), "old login counts left behind");
        }
        Ok(count)
    }
}

const LOGIN_COUNT_COLUMNS: &str = "failures, in_flight, in_flight_until, last_at, locked_until";
