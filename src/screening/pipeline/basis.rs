//! What a verdict is made under now. The verdict cache reuses a stored verdict, and
//! `--stale-only` keeps one, only when it was made under the same versions.

use std::sync::Arc;

use super::{Analyser, Pipeline};
use crate::matching::index::BankIndex;
use crate::screening::context::ScreenContext;
use crate::screening::policy::Policy;
use crate::store::VerdictVersions;

/// The banks and policy a verdict in one context is decided under, and what analyses it.
pub(crate) struct Basis {
    pub banks: Arc<BankIndex>,
    /// The context's profile with the banks' rules.
    pub policy: Policy,
    pub analyser: Analyser,
    policy_version: String,
}

impl Basis {
    /// The versions a verdict made now carries.
    pub fn versions(&self) -> VerdictVersions<'_> {
        VerdictVersions {
            model: &self.analyser.model,
            analysis: &self.analyser.analysis,
            policy: &self.policy_version,
            banks: self.banks.banks_version(),
        }
    }
}

impl Pipeline {
    /// The policy a verdict in `context` is decided under with `banks`: the context's
    /// profile with the banks' rules.
    pub(crate) fn policy_for(&self, banks: &BankIndex, context: &ScreenContext) -> Policy {
        banks.policy_with_banks(&context.policy(&self.policy))
    }

    /// The basis of a verdict in `context` under `banks`.
    pub(crate) fn basis(&self, banks: Arc<BankIndex>, context: &ScreenContext) -> Basis {
        let policy = self.policy_for(&banks, context);
        Basis {
            policy_version: policy.version(),
            analyser: Analyser {
                model: self.scheduler.model_id().to_string(),
                analysis: self.analysis(context.ocr_depth()),
            },
            banks,
            policy,
        }
    }
}
