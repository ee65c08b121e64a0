//! `/v1/review/*`: the API the reviewer console runs on, and `/v1/users` to create its users.
//!
//! Every handler here needs a console session (reviewer or admin; see [`super::session`]), and
//! every change a CSRF token. Reviewers never see escalated items (they answer 404, as if the
//! item did not exist). Each look at an item, each image served (safe or revealed) and each
//! claim and decision is written to the audit log before the answer goes out.

pub mod appeals;
pub mod audit_log;
pub mod dashboard;
pub mod decisions;
pub mod item;
pub mod login;
pub mod queue;
pub mod users;

use axum::http::StatusCode;

use crate::http::error::ApiError;
use crate::http::session::Reviewer;
use crate::http::Ready;
use crate::review::ReviewError;
use crate::store::{ReviewRow, ScreeningRow, StoreError};

impl From<ReviewError> for ApiError {
    fn from(e: ReviewError) -> Self {
        match e {
            ReviewError::Decode(_) | ReviewError::Encode(_) | ReviewError::ViewNotInFile(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "evidence", e.to_string())
            }
            ReviewError::ViewNotScreened(_) => ApiError::not_found(e.to_string()),
            _ => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", e.to_string()),
        }
    }
}

fn store_error_for(reviewer: &Reviewer) -> impl Fn(StoreError) -> ApiError + '_ {
    move |e| {
        if let StoreError::NotFound(_) = e {
            // Same answer whether the item is missing or above the caller's level.
            ApiError::not_found(format!("no review item visible to {}", reviewer.username))
        } else {
            e.into()
        }
    }
}

/// The item (if the caller's role may see it) and its screening.
async fn visible_item(
    ready: &Ready,
    reviewer: &Reviewer,
    id: &str,
) -> Result<(ReviewRow, ScreeningRow), ApiError> {
    let review = ready
        .store
        .get_review(id)
        .await?
        .filter(|r| r.visible_to(reviewer.role))
        .ok_or_else(|| ApiError::not_found(format!("no review item {id}")))?;
    let screening = ready
        .store
        .get_screening(&review.screening_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("screening {}", review.screening_id)))?;
    Ok((review, screening))
}

async fn audit(
    ready: &Ready,
    reviewer: &Reviewer,
    action: &str,
    subject: &str,
    detail: serde_json::Value,
) -> Result<(), ApiError> {
    ready
        .store
        .append_audit(&reviewer.username, action, subject, &detail)
        .await?;
    Ok(())
}
