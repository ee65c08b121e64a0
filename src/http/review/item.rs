//! One item: its screening, views, history and decision options, and its image (safe or revealed).

use std::collections::BTreeMap;

use axum::extract::{Path as UrlPath, Query};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::act::quarantine::ObjectKey;
use crate::classify::{label_scores, Detection};
use crate::http::auth::ConsoleSession;
use crate::http::error::{ApiError, ErrorBody};
use crate::review::{self, ViewMode};
use crate::screening::record::{ScreeningRecord, ViewRecord};
use crate::screening::text_only::WordsRecord;
use crate::screening::views::ViewId;
use crate::store::{
    ArtworkRow, AuditFilter, BankAction, OwnerArtwork, ReviewDecision, ReviewRow, ScreeningRow,
    StoreError, UserReportRow,
};

use super::queue::bank_actions;
use super::{audit, visible_item};

/// A stored record as the console reads it: an image's, or words screened alone.
pub(super) enum ItemRecord {
    Image(Box<ScreeningRecord>),
    Words(WordsRecord),
}

impl ItemRecord {
    pub(super) fn read(screening: &ScreeningRow) -> Result<ItemRecord, StoreError> {
        let parsed = if screening.facts.has_image() {
            serde_json::from_value(screening.facts.record.clone())
                .map(|r| ItemRecord::Image(Box::new(r)))
        } else {
            serde_json::from_value(screening.facts.record.clone()).map(ItemRecord::Words)
        };
        parsed.map_err(|e| StoreError::backend("stored record does not parse", e))
    }

    pub(super) fn matches(&self) -> &[crate::matching::bank::BankMatch] {
        match self {
            ItemRecord::Image(record) => &record.matches,
            ItemRecord::Words(_) => &[],
        }
    }

    pub(super) fn detail(self, screening: ScreeningRow) -> ScreeningDetail {
        let record = match self {
            ItemRecord::Image(record) => *record,
            ItemRecord::Words(words) => {
                return ScreeningDetail {
                    id: screening.id,
                    verdict: screening.facts.verdict,
                    reasons: words.reasons,
                    has_image: false,
                    sha256: String::new(),
                    md5: String::new(),
                    pdq: None,
                    pdq_quality: None,
                    created_at: screening.created_at,
                    width: 0,
                    height: 0,
                    format: String::new(),
                    model: String::new(),
                    detections: Vec::new(),
                    scores: BTreeMap::new(),
                    matches: Vec::new(),
                    views: Vec::new(),
                    decided_by: None,
                    context: screening.facts.context,
                    text: words.text,
                }
            }
        };
        ScreeningDetail {
            id: screening.id,
            verdict: screening.facts.verdict,
            reasons: record.reasons,
            has_image: true,
            sha256: screening.facts.sha256,
            md5: screening.facts.md5,
            pdq: screening.facts.pdq,
            pdq_quality: screening.facts.pdq_quality,
            created_at: screening.created_at,
            width: record.width,
            height: record.height,
            format: record.format.as_str().to_string(),
            model: record.model,
            scores: label_scores(&record.detections),
            detections: record.detections,
            matches: record.matches,
            views: record.views.into_iter().map(ViewDetail::from).collect(),
            decided_by: record.decided_by,
            context: screening.facts.context,
            text: record.text,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScreeningDetail {
    id: String,
    verdict: crate::screening::policy::Verdict,
    reasons: Vec<String>,
    /// False for words screened alone (a title with no image): the image's fields below
    /// are then empty.
    has_image: bool,
    sha256: String,
    md5: String,
    pdq: Option<String>,
    pdq_quality: Option<i64>,
    created_at: DateTime<Utc>,
    width: u32,
    height: u32,
    format: String,
    model: String,
    #[schema(value_type = Vec<Object>)]
    detections: Vec<Detection>,
    /// The highest score per label.
    scores: BTreeMap<String, f32>,
    /// Every match; a view's names its `frame` and `rendering`.
    #[schema(value_type = Vec<Object>)]
    matches: Vec<crate::matching::bank::BankMatch>,
    /// Every frame or rendering screened beyond the reference decoding (whose detections
    /// and scores are the fields above), in the order the console steps through them.
    views: Vec<ViewDetail>,
    /// The view whose verdict the screening's is; absent when the reference decided.
    #[schema(value_type = Option<Object>)]
    decided_by: Option<ViewId>,
    context: serde_json::Value,
    /// Text signals of the title and description, with their spans.
    text: crate::text::TextRecord,
}

/// One view of the image: a frame, in a rendering. It has the reference's size, so its
/// boxes are in the same pixels.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ViewDetail {
    /// A 0-based frame index, or `"default"` (an APNG's default image).
    #[schema(value_type = serde_json::Value)]
    frame: crate::decode::FrameId,
    /// `opaque`, or `over_<rrggbb>`.
    #[schema(value_type = String)]
    rendering: crate::screening::views::Rendering,
    pdq: String,
    pdq_quality: u32,
    #[schema(value_type = Vec<Object>)]
    detections: Vec<Detection>,
    /// The highest score per label.
    scores: BTreeMap<String, f32>,
}

impl From<ViewRecord> for ViewDetail {
    fn from(view: ViewRecord) -> Self {
        ViewDetail {
            frame: view.frame,
            rendering: view.rendering,
            pdq: view.pdq.hash,
            pdq_quality: view.pdq.quality,
            scores: label_scores(&view.detections),
            detections: view.detections,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    at: DateTime<Utc>,
    actor: String,
    action: String,
    detail: serde_json::Value,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BankChoice {
    name: String,
    category: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DecisionOptions {
    reason_codes: BTreeMap<String, Vec<String>>,
    /// Known-bad banks a confirm can add the image's hashes to.
    banks: Vec<BankChoice>,
}

/// The artwork's screening since the item's: the item can no longer be decided.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SupersededBy {
    screening_id: String,
    /// The current screening's queue item, when there is one the caller may see.
    review_id: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ItemView {
    item: ReviewRow,
    /// Set when the artwork was screened again since: decisions answer 409 `superseded`.
    superseded_by: Option<SupersededBy>,
    /// The owner's account is taken down: a release answers 409 `owner_taken_down` until an
    /// admin lifts the takedown.
    owner_taken_down: bool,
    /// Every queue item of the artwork the caller may see, this one included, newest first.
    artwork_items: Vec<ReviewRow>,
    /// What each bank the matches name does on a match: `block`, `review` or `allow`.
    bank_actions: BTreeMap<String, String>,
    screening: ScreeningDetail,
    #[schema(value_type = Option<Object>)]
    artwork: Option<ArtworkRow>,
    /// Whether the image's bytes are kept (quarantined) and can be shown.
    evidence: bool,
    owner_artworks: Vec<OwnerArtwork>,
    /// What people reported about the artwork or its owner, counted on this item, oldest
    /// first.
    user_reports: Vec<UserReportRow>,
    history: Vec<HistoryEntry>,
    options: DecisionOptions,
}

/// One item with everything a reviewer needs to decide it. Audited as a view.
#[utoipa::path(get, path = "/v1/review/items/{id}", tag = "review",
    responses((status = 200, body = ItemView), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn item(
    ConsoleSession { ready, reviewer }: ConsoleSession,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<ItemView>, ApiError> {
    let (review, screening) = visible_item(&ready, &reviewer, &id).await?;
    let record = ItemRecord::read(&screening)?;
    let artwork = match &screening.facts.artwork_id {
        Some(artwork_id) => ready.store.get_artwork(artwork_id).await?,
        None => None,
    };
    let evidence = !ready
        .store
        .quarantine_items(&screening.facts.sha256)
        .await?
        .is_empty();
    let superseded_by = match artwork
        .as_ref()
        .and_then(|a| a.latest_screening_id.clone())
        .filter(|current| *current != screening.id)
    {
        Some(current) => {
            let review_id = ready
                .store
                .review_for_screening(&current)
                .await?
                .filter(|r| r.visible_to(reviewer.role))
                .map(|r| r.id);
            Some(SupersededBy {
                screening_id: current,
                review_id,
            })
        }
        None => None,
    };
    let (owner_artworks, owner_taken_down) = match &screening.facts.owner_id {
        Some(owner) => (
            ready
                .store
                .owner_artworks(owner, 50, reviewer.is_admin())
                .await?,
            ready.store.is_taken_down(owner).await?,
        ),
        None => (Vec::new(), false),
    };
    let artwork_items = match &screening.facts.artwork_id {
        Some(artwork_id) => {
            ready
                .store
                .artwork_reviews(artwork_id, reviewer.is_admin(), 50)
                .await?
        }
        None => Vec::new(),
    };
    let bank_actions = bank_actions(&ready, record.matches().iter().map(|m| &m.bank));
    let user_reports = ready.store.review_user_reports(&review.id).await?;
    let history = ready
        .store
        .audit_rows(&AuditFilter {
            subjects: vec![screening.id.clone()],
            oldest_first: true,
            limit: 500,
            ..AuditFilter::default()
        })
        .await?
        .into_iter()
        .map(|row| HistoryEntry {
            at: row.at,
            actor: row.actor,
            action: row.action,
            detail: row.detail,
        })
        .collect();
    let banks = ready
        .store
        .list_banks()
        .await?
        .into_iter()
        .filter(|b| !b.spec.allow_list && b.spec.action != BankAction::Allow)
        .map(|b| BankChoice {
            name: b.spec.name,
            category: b.spec.category,
        })
        .collect();
    let reason_codes = [
        ReviewDecision::Confirm,
        ReviewDecision::Release,
        ReviewDecision::Escalate,
    ]
    .into_iter()
    .map(|d| {
        (
            d.to_string(),
            review::reason_codes(d)
                .iter()
                .map(|c| c.to_string())
                .collect(),
        )
    })
    .collect();
    audit(
        &ready,
        &reviewer,
        "review.view",
        &screening.id,
        serde_json::json!({ "review_id": review.id }),
    )
    .await?;
    Ok(Json(ItemView {
        item: review,
        superseded_by,
        owner_taken_down,
        artwork_items,
        bank_actions,
        screening: record.detail(screening),
        artwork,
        evidence,
        owner_artworks,
        user_reports,
        history,
        options: DecisionOptions {
            reason_codes,
            banks,
        },
    }))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImageQuery {
    /// `safe` (blurred; the default) or `reveal`.
    #[serde(default)]
    #[param(value_type = Option<String>)]
    mode: ViewMode,
    /// With `rendering`, a view the screening screened: a 0-based frame index, or `default`
    /// (an APNG's default image). Without both, the reference decoding (first frame).
    frame: Option<String>,
    /// With `frame`: `opaque`, or `over_<rrggbb>` (composited over that page colour).
    rendering: Option<String>,
    /// Ignored; lets the console bust its cache after a settings change.
    #[serde(default, rename = "v")]
    _v: Option<String>,
}

/// The item's quarantined image as PNG: blurred (safe) by default, or revealed; grayscale
/// per the reviewer's settings for the mode (safe: grayscale by default; reveal: colour).
/// The reference decoding, or with `frame` and `rendering` one of the views the item's
/// screening lists (any other answers 404). Every call is audited before the bytes are sent.
#[utoipa::path(get, path = "/v1/review/items/{id}/image", tag = "review",
    params(ImageQuery),
    responses((status = 200, content_type = "image/png", body = Vec<u8>),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such item, no image kept, or a view the screening did not screen"),
        (status = 422, body = ErrorBody, description = "frame or rendering malformed, or one without the other")))]
pub async fn image(
    ConsoleSession { ready, reviewer }: ConsoleSession,
    UrlPath(id): UrlPath<String>,
    Query(query): Query<ImageQuery>,
) -> Result<Response, ApiError> {
    let view = review::parse_view(query.frame.as_deref(), query.rendering.as_deref())?;
    let (review, screening) = visible_item(&ready, &reviewer, &id).await?;
    if let Some(view) = view {
        review::check_screened(&screening, view)?;
    }
    if ready
        .store
        .quarantine_items(&screening.facts.sha256)
        .await?
        .is_empty()
    {
        return Err(ApiError::not_found(
            "no image is kept for this item (review verdicts are kept only with quarantine_on_review)",
        ));
    }
    let key = ObjectKey::from_sha256(&screening.facts.sha256).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "quarantine",
            e.to_string(),
        )
    })?;
    let bytes = ready.pipeline.vault.get(&key).await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "quarantine",
            e.to_string(),
        )
    })?;
    let limits = ready.pipeline.settings.limits.clone();
    let settings = reviewer.settings;
    let mode = query.mode;
    let png = tokio::task::spawn_blocking(move || {
        review::render_evidence(&bytes, &limits, view, &settings, mode)
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "evidence", e.to_string()))??;
    let mut detail = serde_json::json!({
        "review_id": review.id,
        "blur": settings.blur,
        "grayscale": mode.grayscale(&settings),
    });
    if let Some(view) = view {
        detail["frame"] = serde_json::json!(view.frame);
        detail["rendering"] = serde_json::json!(view.rendering);
    }
    // Written before the bytes leave: no audit row, no image.
    audit(
        &ready,
        &reviewer,
        match mode {
            ViewMode::Safe => "image.view",
            ViewMode::Reveal => "image.reveal",
        },
        &screening.id,
        detail,
    )
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        png,
    )
        .into_response())
}
