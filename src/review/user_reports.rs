//! A report from the platform's report flow put in front of a reviewer. Each artwork it
//! covers (one, or every stored artwork of an owner) is counted on the review item of its
//! latest screening, made when there is none. A report that a minor is involved first
//! decides the artwork again under the strict profile, from its stored hashes and scores,
//! since the owner's own context may have let it through under the adult one; an artwork
//! whose last item was decided is decided again too, so it is reviewed again. Priority rises
//! by who reported what ([`report_priority`]).
//!
//! Intake is resumable: a report is stored once per reporter and subject, and a repeat
//! only covers artworks not yet counted (an owner's new art, or the rest of an intake that
//! failed part way).

use std::sync::Arc;

use serde::Serialize;

use crate::matching::index::BankIndex;
use crate::screening::context::{self, ScreenContext};
use crate::screening::pipeline::{
    report_priority, stored_review_write, Pipeline, PipelineError, Submission,
};
use crate::screening::policy::Verdict;
use crate::screening::redecide::{self, RedecideError};
use crate::screening::text_only;
use crate::store::{
    AttachRefused, ReportSubject, ReviewRow, ReviewState, ScreeningRow, StoreError, UserReportRow,
    UserReportWrite,
};

/// Most artworks of one owner a report covers.
pub const MAX_OWNER_ARTWORKS: i64 = 10_000;

/// Times an artwork is tried again when a screening of it lands meanwhile.
const ATTEMPTS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(transparent)]
    Invalid(StoreError),
    #[error("no artwork {0:?} has been screened: a report names an artwork coverguard has seen")]
    UnknownArtwork(String),
    #[error("artwork {0} kept changing while the report was counted on it; send the report again")]
    Busy(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Redecide(#[from] RedecideError),
}

/// One covered artwork and the item the report is counted on.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReportedItem {
    pub artwork_id: String,
    pub review_id: String,
    pub screening_id: String,
    #[schema(value_type = Option<String>)]
    pub verdict: Option<Verdict>,
    pub priority: i64,
    /// The artwork was decided again for this report (under the strict profile when a
    /// minor is involved), as screening `screening_id`.
    pub redecided: bool,
}

/// What [`intake`] did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Intake {
    pub report: UserReportRow,
    /// False when this reporter had already reported this subject: the stored report is
    /// answered, and only artworks it did not cover yet were added.
    pub created: bool,
    /// Every covered artwork, the ones an earlier intake counted included.
    pub items: Vec<ReportedItem>,
}

/// Store `write` and count it on a review item of each artwork it covers.
pub async fn intake(pipeline: &Pipeline, write: UserReportWrite) -> Result<Intake, IntakeError> {
    write.validate().map_err(IntakeError::Invalid)?;
    let store = pipeline.store.as_ref();
    if write.subject == ReportSubject::Artwork
        && store.get_artwork(&write.subject_id).await?.is_none()
    {
        return Err(IntakeError::UnknownArtwork(write.subject_id));
    }
    let (report, created) = store.put_user_report(&write).await?;
    let artworks = match report.subject {
        ReportSubject::Artwork => vec![report.subject_id.clone()],
        ReportSubject::Owner => store
            .owner_artworks(&report.subject_id, MAX_OWNER_ARTWORKS, true)
            .await?
            .into_iter()
            .map(|a| a.artwork_id)
            .collect(),
    };
    let counted = store.user_report_items(&report.id).await?;
    let mut items = Vec::with_capacity(artworks.len());
    for artwork_id in artworks {
        let earlier = counted.iter().rev().find(|(a, _)| *a == artwork_id);
        let item = match earlier {
            Some((_, review_id)) => store
                .get_review(review_id)
                .await?
                .map(|review| item_of(artwork_id, review, false)),
            None => count_on_artwork(pipeline, &report, &artwork_id).await?,
        };
        items.extend(item);
    }
    Ok(Intake {
        report,
        created,
        items,
    })
}

fn item_of(artwork_id: String, review: ReviewRow, redecided: bool) -> ReportedItem {
    ReportedItem {
        artwork_id,
        review_id: review.id,
        screening_id: review.screening_id,
        verdict: review.verdict,
        priority: review.priority,
        redecided,
    }
}

/// Count `report` on the current item of `artwork_id`; `None` when the artwork has no
/// screening to review.
async fn count_on_artwork(
    pipeline: &Pipeline,
    report: &UserReportRow,
    artwork_id: &str,
) -> Result<Option<ReportedItem>, IntakeError> {
    let store = pipeline.store.as_ref();
    let priority = report_priority(report.reporter_kind, report.category);
    for _ in 0..ATTEMPTS {
        let Some(latest) = store.latest_for_artwork(artwork_id).await? else {
            return Ok(None);
        };
        // One index for the whole attempt: what is compared, decided and queued agree.
        let banks = pipeline.banks_for_screening().await?;
        let context: ScreenContext =
            serde_json::from_value(latest.facts.context.clone()).unwrap_or_default();
        // The strict profile, where the owner's own context did not ask for it.
        let strict = report.category.concerns_minor() && context.strict_reason().is_none();
        // An earlier report's re-decision (under the same banks' rules) is strict already:
        // deciding it again would only supersede the item earlier reports are counted on.
        let strict_pending =
            strict && latest.facts.policy_version != strict_version(pipeline, &banks);
        let decided = store
            .review_for_screening(&latest.id)
            .await?
            .is_some_and(|r| r.state == ReviewState::Decided);
        let (screening, redecided) = if strict_pending || decided {
            (
                redecide_for(
                    pipeline,
                    report,
                    &latest,
                    context,
                    strict,
                    Arc::clone(&banks),
                )
                .await?,
                true,
            )
        } else {
            (latest, false)
        };
        let review = stored_review_write(
            &screening,
            &banks,
            &pipeline.policy,
            format!(
                "review: reported by a {} ({})",
                report.reporter_kind.as_str().replace('_', " "),
                report.category.describe()
            ),
        );
        match store
            .attach_user_report(&report.id, artwork_id, &screening.id, &review, priority)
            .await?
        {
            Ok(attached) => {
                return Ok(Some(item_of(
                    artwork_id.to_string(),
                    attached.review,
                    redecided,
                )))
            }
            // Screened again, or decided, since it was read: count it on what is there now.
            Err(AttachRefused::Superseded { .. } | AttachRefused::Decided { .. }) => continue,
        }
    }
    Err(IntakeError::Busy(artwork_id.to_string()))
}

/// The version of the strict profile under the current banks, as a strict re-decision
/// records it.
fn strict_version(pipeline: &Pipeline, banks: &BankIndex) -> String {
    banks
        .policy_with_banks(&context::strict_policy(&pipeline.policy))
        .version()
}

/// `latest` decided again for `report` as a new screening of its artwork: under the strict
/// profile when `strict`, else under its own context's policy with the current banks. The
/// screening id derives from the report and `latest`, so an intake that is repeated after
/// a failure finds the screening it recorded.
async fn redecide_for(
    pipeline: &Pipeline,
    report: &UserReportRow,
    latest: &ScreeningRow,
    context: ScreenContext,
    strict: bool,
    banks: Arc<BankIndex>,
) -> Result<ScreeningRow, IntakeError> {
    let screening_id = {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!("report\0{}\0{}", report.id, latest.id));
        format!("ur_{}", &hex::encode(digest)[..32])
    };
    let source = latest
        .facts
        .record
        .get("source")
        .and_then(|s| s.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| text_only::source(latest.facts.artwork_id.as_deref()));
    let submission = Submission {
        url: source.starts_with("http").then(|| source.clone()),
        source,
        artwork_id: latest.facts.artwork_id.clone(),
        owner_id: latest.facts.owner_id.clone(),
        context,
        screening_id: Some(screening_id.clone()),
    };
    if latest.facts.has_image() {
        let policy = if strict {
            banks.policy_with_banks(&context::strict_policy(&pipeline.policy))
        } else {
            pipeline.policy_for(&banks, &submission.context)
        };
        let mut redecision =
            redecide::redecide(pipeline, latest, &submission, banks, policy).await?;
        if strict {
            redecision.record.reasons.push(format!(
                "decided under the strict profile: a {} reported that a minor is involved",
                report.reporter_kind.as_str().replace('_', " ")
            ));
        }
        redecide::record(
            pipeline,
            &redecision,
            screening_id.clone(),
            &submission,
            None,
        )
        .await?;
    } else {
        // Words alone: screened again as words, under their own context.
        text_only::screen(pipeline, &submission, false).await?;
    }
    store_row(pipeline, &screening_id).await
}

async fn store_row(pipeline: &Pipeline, id: &str) -> Result<ScreeningRow, IntakeError> {
    pipeline
        .store
        .get_screening(id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("screening {id}")).into())
}
