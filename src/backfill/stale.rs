//! `--stale-only`: what a stored verdict needs, judged per version it was made under.
//!
//! A verdict is made from the model's scores (model and analysis versions), the bank matches
//! of its hashes (banks version) and the policy that weighs both (policy version). Each
//! change is redone from the stage it touches and no earlier: a new model or analysis runs
//! the model again, new banks match the stored hashes again, a new policy decides again from
//! the stored scores. Inference, by far the dearest stage, runs only for the first.

use std::sync::Arc;

use crate::bank_index::BankIndex;
use crate::decide::Policy;
use crate::pipeline::{Analyser, Pipeline, PipelineError, Submission};
use crate::screen::ScreeningRecord;
use crate::screening::rematch::{self, RematchError};
use crate::store::{RecordedScreening, ScreeningRow, StoreError};

/// How out of date a stored verdict is, by the earliest stage to redo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Staleness {
    /// Made under the current model, analysis, banks and policy.
    Current,
    /// Only the policy changed: decide again from the stored scores and matches' hashes.
    Policy,
    /// The banks changed: match the stored hashes again, then decide.
    Banks,
    /// The model or the analysis changed: the scores are not the current model's.
    Model,
}

/// The versions a verdict made now would record.
pub struct CurrentVersions<'a> {
    pub model: &'a str,
    pub analysis: &'a str,
    pub policy: &'a str,
    pub banks: i64,
}

/// How out of date `row` is against `now`.
pub fn staleness(row: &ScreeningRow, now: &CurrentVersions<'_>) -> Staleness {
    if row.model != now.model || row.analysis != now.analysis {
        Staleness::Model
    } else if row.banks_version != now.banks {
        Staleness::Banks
    } else if row.policy_version != now.policy {
        Staleness::Policy
    } else {
        Staleness::Current
    }
}

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
        serde_json::from_value(previous.record.clone()).map_err(|e| RedecideError::Record {
            id: previous.id.clone(),
            detail: e.to_string(),
        })?;
    let mut record = rematch::redecide(&stored, banks.bank_set(), &policy).map_err(|source| {
        RedecideError::Rematch {
            id: previous.id.clone(),
            source,
        }
    })?;
    record.source = submission.source.clone();
    pipeline
        .apply_submission(&mut record, submission, &policy)
        .await?;
    Ok(Redecision {
        record,
        model: previous.model.clone(),
        analysis: previous.analysis.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(model: &str, analysis: &str, policy: &str, banks: i64) -> ScreeningRow {
        ScreeningRow {
            id: "s".into(),
            artwork_id: None,
            owner_id: None,
            sha256: String::new(),
            md5: String::new(),
            pdq: None,
            pdq_quality: None,
            verdict: "allow".into(),
            model: model.into(),
            policy_version: policy.into(),
            banks_version: banks,
            analysis: analysis.into(),
            view_pdq: Vec::new(),
            record: serde_json::Value::Null,
            context: serde_json::Value::Null,
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn the_earliest_changed_stage_decides_what_is_redone() {
        let now = CurrentVersions {
            model: "m2",
            analysis: "a2",
            policy: "p2",
            banks: 2,
        };
        let cases = [
            (row("m2", "a2", "p2", 2), Staleness::Current),
            (row("m2", "a2", "p1", 2), Staleness::Policy),
            (row("m2", "a2", "p2", 1), Staleness::Banks),
            // A new bank is a new rule too: both changed, the hashes are matched again.
            (row("m2", "a2", "p1", 1), Staleness::Banks),
            (row("m1", "a2", "p2", 2), Staleness::Model),
            (row("m2", "", "p1", 1), Staleness::Model),
        ];
        for (row, expected) in cases {
            assert_eq!(
                staleness(&row, &now),
                expected,
                "{} {} {} {}",
                row.model,
                row.analysis,
                row.policy_version,
                row.banks_version
            );
        }
    }
}
