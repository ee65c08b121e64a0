//! The audit log for admins, on screen and as CSV.

use axum::body::Body;
use axum::extract::Query;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::http::auth::AdminOrConsole;
use crate::http::error::{ApiError, ErrorBody};
use crate::store::{AuditFilter, AuditRow, StoreError};

use super::queue::given;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    /// Rows older than this audit id (paging).
    before: Option<String>,
    limit: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditView {
    #[schema(value_type = Vec<Object>)]
    rows: Vec<AuditRow>,
}

/// The audit log, newest first (admins).
#[utoipa::path(get, path = "/v1/review/audit", tag = "review",
    params(AuditQuery),
    responses((status = 200, body = AuditView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn audit_log(
    AdminOrConsole { ready, reader }: AdminOrConsole,
    Query(query): Query<AuditQuery>,
) -> Result<Json<AuditView>, ApiError> {
    reader.admin_name()?;
    let rows = ready
        .store
        .audit_rows(&AuditFilter {
            actor: given(&query.actor),
            action: given(&query.action),
            cursor: given(&query.before),
            limit: query.limit.unwrap_or(200),
            ..AuditFilter::default()
        })
        .await?;
    Ok(Json(AuditView { rows }))
}

/// Rows per store round trip while exporting.
const EXPORT_PAGE: i64 = 1000;

/// The whole audit log as CSV, oldest first, streamed (admins). The export is itself audited.
#[utoipa::path(get, path = "/v1/review/audit/export", tag = "review",
    responses((status = 200, content_type = "text/csv", body = String),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn audit_export(
    AdminOrConsole { ready, reader }: AdminOrConsole,
) -> Result<Response, ApiError> {
    ready
        .store
        .append_audit(
            reader.admin_name()?,
            "audit.export",
            "audit_log",
            &serde_json::json!({}),
        )
        .await?;
    let store = std::sync::Arc::clone(&ready.store);
    let header_line = crate::http::audit_csv::HEADER.to_string();
    let pages = futures_util::stream::unfold(
        (store, None::<String>, false),
        |(store, cursor, done)| async move {
            if done {
                return None;
            }
            let page = store
                .audit_rows(&AuditFilter {
                    cursor: cursor.clone(),
                    oldest_first: true,
                    limit: EXPORT_PAGE,
                    ..AuditFilter::default()
                })
                .await;
            match page {
                Ok(rows) => {
                    let last = rows.last().map(|r| r.id.clone());
                    let text = crate::http::audit_csv::rows(&rows)
                        .map_err(|e| StoreError::backend("audit rows do not write as CSV", e));
                    let done = (rows.len() as i64) < EXPORT_PAGE || text.is_err();
                    Some((text, (store, last.or(cursor), done)))
                }
                // The stream ends with an error: the client sees a broken download, never a
                // short file that looks complete.
                Err(e) => Some((Err(e), (store, cursor, true))),
            }
        },
    );
    let body = futures_util::stream::iter([Ok::<_, StoreError>(header_line)]).chain(pages);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"coverguard-audit.csv\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(body),
    )
        .into_response())
}
