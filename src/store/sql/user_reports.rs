// Reports from the platform's report flow and the review items they are counted on.

const USER_REPORT_COLUMNS: &str =
    "id, reporter_kind, reporter_ref, category, subject_kind, subject_id, text, created_at";

#[async_trait]
impl UserReportStore for Backend {
    async fn put_user_report(&self, write: &UserReportWrite) -> StoreResult<(UserReportRow, bool)> {
        write.validate()?;
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO user_reports ({USER_REPORT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (reporter_ref, subject_kind, subject_id) DO NOTHING"
        ))
        .bind(new_id())
        .bind(write.reporter_kind.as_str())
        .bind(&write.reporter_ref)
        .bind(write.category.as_str())
        .bind(write.subject.as_str())
        .bind(&write.subject_id)
        .bind(&write.text)
        .bind(now_utc())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let row = sqlx::query(&format!(
            "SELECT {USER_REPORT_COLUMNS} FROM user_reports \
             WHERE reporter_ref = $1 AND subject_kind = $2 AND subject_id = $3"
        ))
        .bind(&write.reporter_ref)
        .bind(write.subject.as_str())
        .bind(&write.subject_id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((from_row::<UserReportRow>(&row)?, inserted))
    }

    async fn attach_user_report(
        &self,
        report_id: &str,
        artwork_id: &str,
        screening_id: &str,
        review: &ReviewWrite,
        priority: i64,
    ) -> StoreResult<Result<ReportAttached, AttachRefused>> {
        let now = now_utc();
        let mut tx = self.begin_write().await?;
        // The artwork row first, in the order screenings lock it: a screening committing
        // meanwhile waits, and one that committed first is seen.
        let latest: Option<String> = sqlx::query(&format!(
            "SELECT latest_screening_id FROM artworks WHERE artwork_id = $1{ROW_LOCK}"
        ))
        .bind(artwork_id)
        .fetch_optional(&mut *tx)
        .await?
        .map(|row| row.try_get("latest_screening_id"))
        .transpose()?
        .flatten();
        if latest.as_deref() != Some(screening_id) {
            return Ok(Err(AttachRefused::Superseded {
                screening_id: screening_id.to_string(),
                artwork_id: artwork_id.to_string(),
            }));
        }
        let existing = sqlx::query_as::<_, ReviewRow>(&format!(
            "SELECT {REVIEW_COLUMNS} FROM review_queue WHERE screening_id = $1{ROW_LOCK}"
        ))
        .bind(screening_id)
        .fetch_optional(&mut *tx)
        .await?;
        let (review_id, created) = match existing {
            Some(item) if item.state == ReviewState::Decided => {
                return Ok(Err(AttachRefused::Decided {
                    review_id: item.id,
                    screening_id: screening_id.to_string(),
                }));
            }
            Some(item) => (item.id, false),
            None => {
                let owner_id: Option<String> =
                    sqlx::query("SELECT owner_id FROM screenings WHERE id = $1")
                        .bind(screening_id)
                        .fetch_one(&mut *tx)
                        .await?
                        .try_get("owner_id")?;
                let id = Self::insert_review(
                    &mut tx,
                    screening_id,
                    Some(artwork_id),
                    owner_id.as_deref(),
                    review,
                    now,
                )
                .await?;
                (id, true)
            }
        };
        let counted_before: i64 = sqlx::query(
            "SELECT COALESCE(MAX(priority), 0) AS counted FROM user_report_items \
             WHERE review_id = $1",
        )
        .bind(&review_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("counted")?;
        let linked = sqlx::query(
            "INSERT INTO user_report_items (report_id, review_id, artwork_id, priority, \
               created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (report_id, review_id) DO NOTHING",
        )
        .bind(report_id)
        .bind(&review_id)
        .bind(artwork_id)
        .bind(priority)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        // The most any one report adds counts, once: a hundred reports from users do not
        // outrank one from a guardian.
        if linked && priority > counted_before {
            sqlx::query("UPDATE review_queue SET priority = priority + $2 WHERE id = $1")
                .bind(&review_id)
                .bind(priority - counted_before.max(0))
                .execute(&mut *tx)
                .await?;
        }
        let review = sqlx::query(&format!(
            "SELECT {REVIEW_COLUMNS} FROM review_queue WHERE id = $1"
        ))
        .bind(&review_id)
        .fetch_one(&mut *tx)
        .await?;
        let review = from_row::<ReviewRow>(&review)?;
        tx.commit().await?;
        Ok(Ok(ReportAttached {
            review,
            linked,
            created,
        }))
    }

    async fn user_report_items(&self, report_id: &str) -> StoreResult<Vec<(String, String)>> {
        let fetched = sqlx::query(
            "SELECT artwork_id, review_id FROM user_report_items WHERE report_id = $1 \
             ORDER BY artwork_id, created_at",
        )
        .bind(report_id)
        .fetch_all(&self.pool)
        .await?;
        rows(fetched, |row| {
            Ok((row.try_get("artwork_id")?, row.try_get("review_id")?))
        })
    }

    async fn review_user_reports(&self, review_id: &str) -> StoreResult<Vec<UserReportRow>> {
        let fetched: Vec<UserReportRow> = sqlx::query_as(
            "SELECT r.id, r.reporter_kind, r.reporter_ref, r.category, r.subject_kind, \
               r.subject_id, r.text, r.created_at \
             FROM user_reports r JOIN user_report_items i ON i.report_id = r.id \
             WHERE i.review_id = $1 ORDER BY r.created_at, r.id",
        )
        .bind(review_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(fetched)
    }

    async fn user_report_counts(
        &self,
        review_ids: &[String],
    ) -> StoreResult<std::collections::HashMap<String, i64>> {
        if review_ids.is_empty() {
            return Ok(std::collections::HashMap::new());
        }
        let mut query = sqlx::QueryBuilder::<Db>::new(
            "SELECT review_id, COUNT(*) AS reports FROM user_report_items WHERE review_id IN (",
        );
        let mut ids = query.separated(", ");
        for id in review_ids {
            ids.push_bind(id.clone());
        }
        query.push(") GROUP BY review_id");
        let fetched = query.build().fetch_all(&self.pool).await?;
        Ok(rows(fetched, |row| {
            Ok((row.try_get("review_id")?, row.try_get("reports")?))
        })?
        .into_iter()
        .collect())
    }
}
