//! `POST /v1/reports`: reports from the platform's report flow, about an artwork or an
//! owner, put in front of reviewers.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::Deserialize;

use super::auth::ServiceToken;
use super::error::{ApiError, ErrorBody};
use crate::review::user_reports::{self, Intake, IntakeError};
use crate::store::{ReportCategory, ReportSubject, ReporterKind, UserReportWrite};

/// A report as the platform's report flow sends it: about one artwork (`artwork_id`) or
/// about an owner (`owner_id`: every stored artwork of theirs), not both.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    /// `user`, `guardian` (a parent or guardian), `trusted_flagger` or `law_enforcement`.
    #[schema(value_type = String)]
    reporter_kind: ReporterKind,
    /// The platform's reference for the reporter. The same reporter reporting the same
    /// artwork or owner again is the same report.
    reporter_ref: String,
    /// `minor_sexual` (sexual content involving a minor), `adult_nudity`, `grooming`
    /// (grooming or a contact request) or `other`.
    #[schema(value_type = String)]
    category: ReportCategory,
    artwork_id: Option<String>,
    owner_id: Option<String>,
    /// What the reporter wrote; at most 4,000 characters.
    text: Option<String>,
}

impl ReportRequest {
    fn into_write(self) -> Result<UserReportWrite, ApiError> {
        let (subject, subject_id) = match (self.artwork_id, self.owner_id) {
            (Some(artwork), None) => (ReportSubject::Artwork, artwork),
            (None, Some(owner)) => (ReportSubject::Owner, owner),
            _ => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid",
                    "a report names either artwork_id or owner_id",
                ))
            }
        };
        Ok(UserReportWrite {
            reporter_kind: self.reporter_kind,
            reporter_ref: self.reporter_ref,
            category: self.category,
            subject,
            subject_id,
            text: self.text.filter(|t| !t.trim().is_empty()),
        })
    }
}

/// Report an artwork or an owner. Each covered artwork is counted on the review item of its
/// latest screening (made if there is none); when a minor is involved (`minor_sexual`,
/// `grooming`) it is first decided again under the strict profile from its stored scores.
/// A guardian's, trusted flagger's or the police's report about a minor is reviewed ahead
/// of everything but bank hits. Answers 201 for a new report, 200 for one this reporter
/// already made (it then covers only the owner's artworks it did not cover yet).
#[utoipa::path(post, path = "/v1/reports", tag = "reports", request_body = ReportRequest,
    responses((status = 201, body = Intake), (status = 200, body = Intake, description = "the same reporter had reported this already"),
        (status = 404, body = ErrorBody, description = "`unknown_artwork`: no such artwork was screened"),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn report(
    ServiceToken { ready, .. }: ServiceToken,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: ReportRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("JSON body: {e}")))?;
    let intake = user_reports::intake(&ready.pipeline, request.into_write()?)
        .await
        .map_err(|e| match e {
            e @ IntakeError::UnknownArtwork(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_artwork", e.to_string())
            }
            e @ IntakeError::Busy(_) => ApiError::unavailable("busy", e.to_string()),
            IntakeError::Invalid(e) | IntakeError::Store(e) => e.into(),
            IntakeError::Pipeline(e) => e.into(),
            e @ IntakeError::Redecide(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store", e.to_string())
            }
        })?;
    if intake.items.iter().any(|i| i.redecided) {
        // A decision made again may have written reports to send.
        ready.pipeline.reported.notify_one();
    }
    let status = if intake.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(intake)).into_response())
}
