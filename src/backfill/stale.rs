//! `--stale-only`: what a stored verdict needs, judged per version it was made under.
//!
//! A verdict is made from the model's scores (model and analysis versions), the bank matches
//! of its hashes (banks version) and the policy that weighs both (policy version). Each
//! change is redone from the stage it touches and no earlier: a new model or analysis runs
//! the model again, new banks match the stored hashes again, a new policy decides again from
//! the stored scores. Inference, by far the dearest stage, runs only for the first.

use crate::store::VerdictVersions;

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

/// How out of date a verdict made under `stored` is against the versions it would be made
/// under `now`.
pub fn staleness(stored: &VerdictVersions<'_>, now: &VerdictVersions<'_>) -> Staleness {
    if stored.model != now.model || stored.analysis != now.analysis {
        Staleness::Model
    } else if stored.banks != now.banks {
        Staleness::Banks
    } else if stored.policy != now.policy {
        Staleness::Policy
    } else {
        Staleness::Current
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ScreeningFacts;

    fn row(model: &str, analysis: &str, policy: &str, banks: i64) -> ScreeningFacts {
        ScreeningFacts {
            artwork_id: None,
            owner_id: None,
            sha256: String::new(),
            md5: String::new(),
            pdq: None,
            pdq_quality: None,
            verdict: crate::screening::policy::Verdict::Allow,
            model: model.into(),
            policy_version: policy.into(),
            banks_version: banks,
            analysis: analysis.into(),
            view_pdq: Vec::new(),
            record: serde_json::Value::Null,
            context: serde_json::Value::Null,
        }
    }

    #[test]
    fn the_earliest_changed_stage_decides_what_is_redone() {
        let now = VerdictVersions {
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
            let stored = row.versions();
            assert_eq!(staleness(&stored, &now), expected, "{stored:?}");
        }
    }
}
