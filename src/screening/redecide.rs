//! A stored screening decided again from its stored hashes, scores and words read in its
//! artwork, for new banks, a new policy or new words around it: nothing is fetched,
//! decoded or inferred.

use std::sync::Arc;

use crate::matching::index::BankIndex;
use crate::screening::pipeline::{Analyser, Pipeline, PipelineError, Submission};
use crate::screening::policy::Policy;
use crate::screening::record::ScreeningRecord;
use crate::screening::rematch::{self, RematchError};
use crate::store::{RecordedScreening, ScreeningRow, StoreError};

/// Why a stored screening cannot be decided again without screening its bytes.
#[derive(Debug, thiserror::Error)]
pub enum RedecideError {
    #[error("screening {id} holds a record this version cannot read: {detail}")]
    Record { id: String, detail: String },
    #[error("screening {id}: {source}")]
    Rematch {
        id: String,
        #[source]
        source: RematchError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A stored screening decided again, not yet recorded.
pub struct Redecision {
    pub record: ScreeningRecord,
    model: String,
    analysis: String,
    banks: Arc<BankIndex>,
    policy: Policy,
}

impl Redecision {
    /// Whether recording it keeps an encrypted copy of the bytes.
    pub fn quarantines(&self, pipeline: &Pipeline) -> bool {
        pipeline.quarantines(self.record.verdict)
    }
}

/// `previous` decided again for `submission` under `banks` and `policy`, from its stored
/// hashes and scores: nothing is fetched, decoded or inferred.
pub async fn redecide(
    pipeline: &Pipeline,
    previous: &ScreeningRow,
    submission: &Submission,
    banks: Arc<BankIndex>,
    policy: Policy,
) -> Result<Redecision, RedecideError> {
    let stored: ScreeningRecord =
        serde_json::from_value(previous.facts.record.clone()).map_err(|e| {
            RedecideError::Record {
                id: previous.id.clone(),
                detail: e.to_string(),
            }
        })?;
    let mut record = rematch::redecide(&stored, banks.bank_set(), &policy).map_err(|source| {
        RedecideError::Rematch {
            id: previous.id.clone(),
            source,
        }
    })?;
    record.source = submission.source.clone();
    pipeline
        .apply_submission((&mut record).into(), submission, &policy)
        .await?;
    Ok(Redecision {
        record,
        model: previous.facts.model.clone(),
        analysis: previous.facts.analysis.clone(),
        banks,
        policy,
    })
}

/// Record a [`Redecision`] as screening `screening_id`, with what its verdict does (as
/// any screening's). `evidence` is the bytes, when the verdict quarantines and they were
/// found again with the stored sha256.
pub async fn record(
    pipeline: &Pipeline,
    redecision: &Redecision,
    screening_id: String,
    submission: &Submission,
    evidence: Option<&[u8]>,
) -> Result<RecordedScreening, PipelineError> {
    pipeline
        .record_decided(
            &redecision.record,
            screening_id,
            submission,
            // The scores are the previous screening's, made under the same (current) model.
            Analyser {
                model: redecision.model.clone(),
                analysis: redecision.analysis.clone(),
            },
            &redecision.banks,
            &redecision.policy,
            evidence,
        )
        .await
}
