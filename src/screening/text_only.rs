//! Screening words with no new image: a playlist's title or description changes without
//! its cover, and an empty playlist may have no cover at all (the messages of the case
//! were titles). When the artwork has an image screened before, that screening is decided
//! again under the new words: its hashes, scores and the lines read in it are stored, so
//! nothing is fetched or inferred. Without one, the words are the whole screening, stored
//! with no hashes. Either way the owner pattern sees it.

use serde::{Deserialize, Serialize};

use crate::screening::pipeline::{self, Pipeline, PipelineError, Screened, Submission};
use crate::screening::policy::{Policy, Verdict};
use crate::screening::redecide::{self, RedecideError};
use crate::screening::text::Decision;
use crate::store::{
    self, RecordedScreening, ReviewWrite, ScreeningFacts, ScreeningWrite, StoreError,
};
use crate::text::TextRecord;

/// The record of a screening of words alone: what an image's record says of its words,
/// without the image's fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WordsRecord {
    /// `text:<artwork_id>`.
    pub source: String,
    pub verdict: Verdict,
    pub reasons: Vec<String>,
    #[serde(default)]
    pub text: TextRecord,
    pub policy: String,
}

impl<'a> From<&'a mut WordsRecord> for Decision<'a> {
    fn from(record: &'a mut WordsRecord) -> Self {
        Decision {
            verdict: &mut record.verdict,
            reasons: &mut record.reasons,
            text: &mut record.text,
        }
    }
}

/// A words-only screening as `POST /v1/screen` answers it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct WordsResponse {
    #[serde(flatten)]
    pub record: WordsRecord,
    pub screening_id: String,
    /// Always false: there are no bytes to keep. A quarantining verdict still takes the
    /// artwork out of view.
    pub quarantined: bool,
}

/// What screening words did.
pub enum Outcome {
    /// The artwork's stored image screening, decided again under the new words.
    Redecided(Box<Screened>),
    /// No image screened for the artwork: the words were screened alone.
    WordsOnly {
        response: WordsResponse,
        /// False when the screening id was already recorded: nothing new was written.
        created: bool,
    },
}

/// The `source` of a words-only screening of `artwork_id`.
pub fn source(artwork_id: Option<&str>) -> String {
    format!("text:{}", artwork_id.unwrap_or_default())
}

/// Screen `submission`'s title and description for its artwork and record the verdict.
/// `bound_to_request` as for [`Pipeline::screen_for_key`]: a screening already stored
/// under the key must be of this same request.
pub async fn screen(
    pipeline: &Pipeline,
    submission: &Submission,
    bound_to_request: bool,
) -> Result<Outcome, PipelineError> {
    let _same_key = match (&submission.screening_id, bound_to_request) {
        (Some(id), true) => Some(pipeline.same_bytes.key(id).await),
        _ => None,
    };
    let previous = match &submission.artwork_id {
        Some(artwork_id) => pipeline.store.latest_for_artwork(artwork_id).await?,
        None => None,
    }
    .filter(|row| row.facts.has_image());
    // Decided again, the image's screening keeps saying where its bytes came from.
    let submission = Submission {
        source: previous
            .as_ref()
            .and_then(|row| row.facts.record.get("source")?.as_str().map(str::to_string))
            .unwrap_or_else(|| source(submission.artwork_id.as_deref())),
        ..submission.clone()
    };
    let sha256 = previous
        .as_ref()
        .map_or_else(String::new, |row| row.facts.sha256.clone());
    if let (Some(id), true) = (&submission.screening_id, bound_to_request) {
        pipeline
            .check_same_request(id, &sha256, &submission)
            .await?;
    }
    let banks = pipeline.banks_for_screening().await?;
    let policy = pipeline.policy_for(&banks, &submission.context);
    let banks_version = banks.banks_version();
    let screening_id = submission
        .screening_id
        .clone()
        .unwrap_or_else(store::new_id);
    let outcome = match previous {
        Some(row) => {
            let mut redecision = redecide::redecide(pipeline, &row, &submission, banks, policy)
                .await
                .map_err(stored)?;
            // The new words decide whether the owner's uploads make the pattern now.
            redecision.record.text.owner_pattern.clear();
            pipeline
                .apply_owner_pattern((&mut redecision.record).into(), &submission)
                .await?;
            let recorded = redecide::record(pipeline, &redecision, screening_id, &submission, None)
                .await
                .map_err(|e| pipeline::key_taken(e, &submission, bound_to_request))?;
            Outcome::Redecided(Box::new(Screened {
                record: redecision.record,
                screening_id: recorded.screening_id,
                created: recorded.created,
                quarantined: recorded.quarantined,
                report_ids: recorded.report_ids,
                cached: false,
            }))
        }
        None => {
            let write = Written {
                screening_id,
                banks_version,
                bound_to_request,
            };
            words_only(pipeline, &submission, &policy, write).await?
        }
    };
    let (id, created) = match &outcome {
        Outcome::Redecided(s) => (&s.screening_id, s.created),
        Outcome::WordsOnly { response, created } => (&response.screening_id, *created),
    };
    if bound_to_request && !created {
        // Another instance stored the key first; answer its record only if it is of
        // this same request.
        pipeline
            .check_same_request(id, &sha256, &submission)
            .await?;
    }
    Ok(outcome)
}

/// How a words-only screening is written: its id, the banks version it was decided
/// under, and whether the id is bound to the caller's request.
struct Written {
    screening_id: String,
    banks_version: i64,
    bound_to_request: bool,
}

/// The words screened alone, recorded with no hashes, and what the verdict does to the
/// artwork. A `block` (only where a policy file sets it for a kind) makes no hit report:
/// there is no image to report, and the verdict and the review item carry the words.
async fn words_only(
    pipeline: &Pipeline,
    submission: &Submission,
    policy: &Policy,
    written: Written,
) -> Result<Outcome, PipelineError> {
    let Written {
        screening_id,
        banks_version,
        bound_to_request,
    } = written;
    let mut record = WordsRecord {
        source: submission.source.clone(),
        verdict: Verdict::Allow,
        reasons: Vec::new(),
        text: TextRecord::default(),
        policy: policy.version(),
    };
    pipeline
        .apply_submission((&mut record).into(), submission, policy)
        .await?;
    pipeline
        .apply_owner_pattern((&mut record).into(), submission)
        .await?;
    let quarantine = pipeline.quarantines(record.verdict);
    let review = (record.verdict != Verdict::Allow).then(|| ReviewWrite {
        priority: pipeline::text_priority(&record.text, &submission.context),
        reason: record.reasons.first().cloned(),
        verdict: record.verdict,
        top_label: None,
        top_score: None,
        labels: Vec::new(),
        banks: Vec::new(),
    });
    let json = |what: &str, e: serde_json::Error| {
        StoreError::Invalid(format!("the {what} does not serialise: {e}"))
    };
    let write = ScreeningWrite {
        id: Some(screening_id),
        facts: ScreeningFacts {
            artwork_id: submission.artwork_id.clone(),
            owner_id: submission.owner_id.clone(),
            sha256: String::new(),
            md5: String::new(),
            pdq: None,
            pdq_quality: None,
            verdict: record.verdict,
            model: String::new(),
            policy_version: record.policy.clone(),
            banks_version,
            analysis: WORDS_ANALYSIS.to_string(),
            view_pdq: Vec::new(),
            record: serde_json::to_value(&record).map_err(|e| json("record", e))?,
            context: serde_json::to_value(&submission.context).map_err(|e| json("context", e))?,
        },
        artwork_status: pipeline::artwork_status(record.verdict, quarantine),
        quarantine: None,
        review,
        reports: Vec::new(),
        created_at: None,
    };
    let recorded: RecordedScreening = pipeline
        .store
        .record_screening(&write)
        .await
        .map_err(|e| pipeline::key_taken(e.into(), submission, bound_to_request))?;
    if !recorded.created {
        // A retry: answer what was recorded the first time.
        record = store::read_record(pipeline.store.as_ref(), &recorded.screening_id).await?;
    }
    Ok(Outcome::WordsOnly {
        response: WordsResponse {
            record,
            screening_id: recorded.screening_id,
            quarantined: false,
        },
        created: recorded.created,
    })
}

/// The `analysis` of a words-only screening: no bytes were analysed.
pub const WORDS_ANALYSIS: &str = "words";

/// A stored record that no longer reads is the store's failure, not the caller's.
fn stored(e: RedecideError) -> PipelineError {
    match e {
        RedecideError::Store(e) => e.into(),
        other => StoreError::backend("a stored screening no longer reads", other).into(),
    }
}
