//! Decide stage: label scores and bank matches to a verdict, by policy.
//!
//! The built-in policy is compiled in and documented in the README; a TOML file
//! overrides any part of it. Precedence: `block` > `review` > `allow`. An
//! allow-list bank match (a reviewer released this art before) clears verdicts
//! that come from the classifier alone, never a known-bad bank match.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::matching::bank::{BankMatch, MatchParams, SignalThresholds};
use crate::names::named_enum;
use crate::text::TextSignalKind;

named_enum!(
    /// The screening outcome. The upload pipeline publishes only on `Allow`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
    #[derive(Serialize, Deserialize, utoipa::ToSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum Verdict ("verdict") {
        Allow => "allow",
        Review => "review",
        Block => "block",
    }
);

named_enum!(
    /// What a bank match does. One type for the policy file, the store's bank rows and
    /// the in-memory index, so a bank's action means the same wherever it is configured.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum BankAction ("bank action") {
        Block => "block",
        Review => "review",
        /// An allow-list: clears classifier-only review/block.
        Allow => "allow",
    }
);

/// Thresholds of one label; a score at or above a threshold triggers it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelRule {
    pub review: Option<f32>,
    pub block: Option<f32>,
}

/// Settings of one bank.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BankRule {
    pub action: BankAction,
    pub pdq_threshold: u32,
}

/// The full policy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Policy {
    pub labels: BTreeMap<String, LabelRule>,
    /// Banks not named in `banks` get this.
    pub default_bank: BankRule,
    pub banks: BTreeMap<String, BankRule>,
    /// PDQ hashes below this quality are not matched (the industry gate is 50).
    pub pdq_min_quality: u32,
    /// Whether an allow-list match clears the classifier's verdict. The strict profile sets it
    /// false: a release judged under adult thresholds says nothing about a minor's upload.
    /// Serialised only when false, so the default policy's version is unchanged.
    #[serde(skip_serializing_if = "is_true")]
    pub allow_list_clears_classifier: bool,
    /// Thresholds of the robust signals (turned pixels, trimmed frames, regions).
    pub signal_thresholds: SignalThresholds,
    /// What each kind of text signal leads to. Serialised only when changed, so the
    /// default policy's version is unchanged.
    #[serde(skip_serializing_if = "TextRules::is_default")]
    pub text: TextRules,
}

fn is_true(value: &bool) -> bool {
    *value
}

/// The verdict each kind of text signal leads to: `review` for every kind by default.
/// Rules over words are evidence for a person to weigh, not reason enough to block on
/// their own; a policy file may set `block` (or `allow`) for a kind, a choice a team makes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TextRules(BTreeMap<TextSignalKind, Verdict>);

impl Default for TextRules {
    fn default() -> Self {
        TextRules(
            TextSignalKind::ALL
                .into_iter()
                .map(|kind| (kind, Verdict::Review))
                .collect(),
        )
    }
}

impl TextRules {
    fn is_default(&self) -> bool {
        *self == TextRules::default()
    }

    pub fn action(&self, kind: TextSignalKind) -> Verdict {
        self.0.get(&kind).copied().unwrap_or(Verdict::Review)
    }
}

pub use crate::matching::params::{DEFAULT_PDQ_THRESHOLD, MAX_PDQ_THRESHOLD};

/// Overrides read from a policy file: every field optional, merged over the default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    labels: BTreeMap<String, LabelRuleFile>,
    default_bank: Option<BankRuleFile>,
    #[serde(default)]
    banks: BTreeMap<String, BankRuleFile>,
    pdq_min_quality: Option<u32>,
    signal_thresholds: Option<SignalThresholdsFile>,
    /// `[text]`: `phone = "block"`, ... per text signal kind.
    #[serde(default)]
    text: BTreeMap<TextSignalKind, Verdict>,
}

/// `[signal_thresholds]`: any of them, over the defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignalThresholdsFile {
    turned: Option<u32>,
    trimmed: Option<u32>,
    pdq_top75: Option<u32>,
    pdq_bottom75: Option<u32>,
    pdq_center90: Option<u32>,
    pdq_center80: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelRuleFile {
    review: Option<f32>,
    block: Option<f32>,
    /// `true` removes the rule the default has for this label.
    #[serde(default)]
    disabled: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BankRuleFile {
    action: Option<BankAction>,
    pdq_threshold: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy file {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("policy file {path} is not valid: {detail}")]
    Parse {
        path: std::path::PathBuf,
        detail: String,
    },
    #[error("policy: {0}")]
    Invalid(String),
}

/// Labels reviewed and blocked by default, with their thresholds.
///
/// Review at 0.40: NudeNet's explicit-label detections on real explicit images
/// mostly score 0.5-0.9, and a review only holds the image for a person. Block at
/// 0.90: an automatic takedown from the classifier alone needs near-certainty (the
/// oracle's colour chart scores BUTTOCKS_EXPOSED 0.835, a real false positive, and
/// must reach a reviewer, not an automatic block).
const DEFAULT_EXPLICIT_REVIEW: f32 = 0.40;
const DEFAULT_EXPLICIT_BLOCK: f32 = 0.90;

impl Policy {
    /// The built-in policy for a model whose explicit labels are `explicit_labels`.
    pub fn builtin(explicit_labels: &[String]) -> Self {
        let labels = explicit_labels
            .iter()
            .map(|l| {
                (
                    l.clone(),
                    LabelRule {
                        review: Some(DEFAULT_EXPLICIT_REVIEW),
                        block: Some(DEFAULT_EXPLICIT_BLOCK),
                    },
                )
            })
            .collect();
        Policy {
            labels,
            default_bank: BankRule {
                action: BankAction::Block,
                pdq_threshold: DEFAULT_PDQ_THRESHOLD,
            },
            banks: BTreeMap::new(),
            pdq_min_quality: 50,
            allow_list_clears_classifier: true,
            signal_thresholds: SignalThresholds::default(),
            text: TextRules::default(),
        }
    }

    /// The policy for `model`: the built-in one, with the file's overrides if a file is given.
    pub fn for_model(
        path: Option<&Path>,
        model: &crate::provision::ModelSpec,
    ) -> Result<Self, PolicyError> {
        match path {
            Some(path) => Self::from_file(path, &model.explicit_labels, &model.labels),
            None => Ok(Self::builtin(&model.explicit_labels)),
        }
    }

    /// The built-in policy with a TOML file's overrides; `known_labels` are the model's.
    pub fn from_file(
        path: &Path,
        explicit_labels: &[String],
        known_labels: &[String],
    ) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, explicit_labels, known_labels).map_err(|e| match e {
            PolicyError::Invalid(detail) => PolicyError::Parse {
                path: path.to_path_buf(),
                detail,
            },
            other => other,
        })
    }

    pub fn from_toml(
        text: &str,
        explicit_labels: &[String],
        known_labels: &[String],
    ) -> Result<Self, PolicyError> {
        let file: PolicyFile =
            toml::from_str(text).map_err(|e| PolicyError::Invalid(e.to_string()))?;
        let mut policy = Policy::builtin(explicit_labels);
        for (label, rule) in file.labels {
            if !known_labels.contains(&label) {
                return Err(PolicyError::Invalid(format!(
                    "unknown label {label:?}; the model's labels are {}",
                    known_labels.join(", ")
                )));
            }
            if rule.disabled {
                policy.labels.remove(&label);
                continue;
            }
            let current = policy.labels.get(&label).copied().unwrap_or(LabelRule {
                review: None,
                block: None,
            });
            policy.labels.insert(
                label,
                LabelRule {
                    review: rule.review.or(current.review),
                    block: rule.block.or(current.block),
                },
            );
        }
        if let Some(rule) = file.default_bank {
            policy.default_bank = merge_bank(policy.default_bank, rule);
        }
        for (name, rule) in file.banks {
            policy
                .banks
                .insert(name, merge_bank(policy.default_bank, rule));
        }
        if let Some(q) = file.pdq_min_quality {
            policy.pdq_min_quality = q;
        }
        if let Some(t) = file.signal_thresholds {
            let s = &mut policy.signal_thresholds;
            s.turned = t.turned.unwrap_or(s.turned);
            s.trimmed = t.trimmed.unwrap_or(s.trimmed);
            s.top75 = t.pdq_top75.unwrap_or(s.top75);
            s.bottom75 = t.pdq_bottom75.unwrap_or(s.bottom75);
            s.center90 = t.pdq_center90.unwrap_or(s.center90);
            s.center80 = t.pdq_center80.unwrap_or(s.center80);
        }
        policy.text.0.extend(file.text);
        policy.validate()?;
        Ok(policy)
    }

    fn validate(&self) -> Result<(), PolicyError> {
        for (label, rule) in &self.labels {
            for (name, v) in [("review", rule.review), ("block", rule.block)] {
                if let Some(v) = v {
                    if !(0.0..=1.0).contains(&v) {
                        return Err(PolicyError::Invalid(format!(
                            "labels.{label}.{name} = {v} is not within 0..1"
                        )));
                    }
                }
            }
            if let (Some(r), Some(b)) = (rule.review, rule.block) {
                if b < r {
                    return Err(PolicyError::Invalid(format!(
                        "labels.{label}: block threshold {b} is below review threshold {r}"
                    )));
                }
            }
        }
        for (name, rule) in std::iter::once(("default_bank", &self.default_bank))
            .chain(self.banks.iter().map(|(n, r)| (n.as_str(), r)))
        {
            if rule.pdq_threshold > MAX_PDQ_THRESHOLD {
                return Err(PolicyError::Invalid(format!(
                    "{name}: pdq_threshold {} is over {MAX_PDQ_THRESHOLD}; unrelated images would match",
                    rule.pdq_threshold
                )));
            }
        }
        for (name, threshold) in self.signal_thresholds.named() {
            if threshold > MAX_PDQ_THRESHOLD {
                return Err(PolicyError::Invalid(format!(
                    "signal_thresholds.{name} = {threshold} is over {MAX_PDQ_THRESHOLD}; unrelated images would match"
                )));
            }
        }
        if self.pdq_min_quality > 100 {
            return Err(PolicyError::Invalid(format!(
                "pdq_min_quality {} is over 100",
                self.pdq_min_quality
            )));
        }
        Ok(())
    }

    pub fn bank_rule(&self, bank: &str) -> BankRule {
        self.banks.get(bank).copied().unwrap_or(self.default_bank)
    }

    pub fn match_params(&self, bank: &str) -> MatchParams {
        MatchParams {
            pdq_threshold: self.bank_rule(bank).pdq_threshold,
            pdq_min_quality: self.pdq_min_quality,
            signals: self.signal_thresholds,
        }
    }

    /// Short stable digest of the effective policy: stored with each verdict so a
    /// policy change can find what to rescan.
    pub fn version(&self) -> String {
        let canonical = serde_json::to_vec(self).expect("policy serialises");
        hex::encode(&Sha256::digest(canonical)[..6])
    }

    /// The verdict and its reasons.
    pub fn decide(&self, label_scores: &BTreeMap<String, f32>, matches: &[BankMatch]) -> Decision {
        let mut bank_verdict = Verdict::Allow;
        let mut bank_reasons = Vec::new();
        let mut allow_listed = Vec::new();
        for m in matches {
            let how = match m.transform.as_deref() {
                Some(t) => format!("{} distance {} ({})", m.signal, m.distance, t),
                None => format!("exact {}", m.signal),
            };
            match self.bank_rule(&m.bank).action {
                // A robust signal sees part of the image: the rest may be anything.
                BankAction::Allow if m.robust => {}
                BankAction::Allow => allow_listed.push(format!(
                    "allow-list bank {} entry {} ({how})",
                    m.bank, m.entry
                )),
                action => {
                    let v = if action == BankAction::Block {
                        Verdict::Block
                    } else {
                        Verdict::Review
                    };
                    bank_verdict = bank_verdict.max(v);
                    bank_reasons.push(format!(
                        "{v}: bank {} entry {} matched by {how}",
                        m.bank, m.entry
                    ));
                }
            }
        }

        let mut model_verdict = Verdict::Allow;
        let mut model_reasons = Vec::new();
        for (label, score) in label_scores {
            let Some(rule) = self.labels.get(label) else {
                continue;
            };
            let hit = if rule.block.is_some_and(|t| *score >= t) {
                Some((Verdict::Block, rule.block))
            } else if rule.review.is_some_and(|t| *score >= t) {
                Some((Verdict::Review, rule.review))
            } else {
                None
            };
            if let Some((v, Some(threshold))) = hit {
                model_verdict = model_verdict.max(v);
                model_reasons.push(format!("{v}: {label} scored {score:.3} >= {threshold:.2}"));
            }
        }

        let mut reasons = bank_reasons;
        if !self.allow_list_clears_classifier
            && !allow_listed.is_empty()
            && model_verdict > Verdict::Allow
        {
            reasons.push(format!(
                "not cleared by {}: allow-list entries do not clear the strict profile",
                allow_listed.join(", ")
            ));
        }
        let verdict = if self.allow_list_clears_classifier
            && !allow_listed.is_empty()
            && model_verdict > Verdict::Allow
        {
            reasons.extend(
                model_reasons
                    .into_iter()
                    .map(|r| format!("cleared by {}: {r}", allow_listed.join(", "))),
            );
            bank_verdict
        } else {
            reasons.extend(model_reasons);
            bank_verdict.max(model_verdict)
        };
        // Keep the reasons that set the verdict first.
        reasons.sort_by_key(|r| std::cmp::Reverse(r.starts_with(verdict.as_str())));
        Decision { verdict, reasons }
    }
}

fn merge_bank(base: BankRule, file: BankRuleFile) -> BankRule {
    BankRule {
        action: file.action.unwrap_or(base.action),
        pdq_threshold: file.pdq_threshold.unwrap_or(base.pdq_threshold),
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub verdict: Verdict,
    pub reasons: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::bank::SignalType;

    fn labels() -> Vec<String> {
        [
            "FACE_FEMALE",
            "BUTTOCKS_EXPOSED",
            "FEMALE_BREAST_EXPOSED",
            "BELLY_EXPOSED",
        ]
        .map(String::from)
        .to_vec()
    }
    fn explicit() -> Vec<String> {
        ["BUTTOCKS_EXPOSED", "FEMALE_BREAST_EXPOSED"]
            .map(String::from)
            .to_vec()
    }
    fn scores(pairs: &[(&str, f32)]) -> BTreeMap<String, f32> {
        pairs.iter().map(|(l, s)| (l.to_string(), *s)).collect()
    }
    fn bank_match(bank: &str) -> BankMatch {
        BankMatch {
            bank: bank.into(),
            signal: SignalType::Pdq,
            distance: 4,
            transform: Some("rot90".into()),
            robust: false,
            entry: "e1".into(),
            frame: None,
            rendering: None,
        }
    }

    #[test]
    fn thresholds_map_scores_to_verdicts() {
        let p = Policy::builtin(&explicit());
        assert_eq!(
            p.decide(&scores(&[("FACE_FEMALE", 0.99)]), &[]).verdict,
            Verdict::Allow
        );
        assert_eq!(
            p.decide(&scores(&[("BUTTOCKS_EXPOSED", 0.835)]), &[])
                .verdict,
            Verdict::Review
        );
        let d = p.decide(&scores(&[("FEMALE_BREAST_EXPOSED", 0.95)]), &[]);
        assert_eq!(d.verdict, Verdict::Block);
        assert!(
            d.reasons[0].contains("FEMALE_BREAST_EXPOSED scored 0.950"),
            "{:?}",
            d.reasons
        );
        assert_eq!(
            p.decide(&scores(&[("BUTTOCKS_EXPOSED", 0.39)]), &[])
                .verdict,
            Verdict::Allow
        );
    }

    /// The built-in policy with an allow-list bank `released`.
    fn released_policy() -> Policy {
        Policy::from_toml(
            "[banks.released]\naction = \"allow\"\n",
            &explicit(),
            &labels(),
        )
        .unwrap()
    }

    #[test]
    fn a_robust_match_never_clears_an_allow_list() {
        // A cover whose top 75% is a released image may be explicit below it.
        let p = released_policy();
        let review = scores(&[("BUTTOCKS_EXPOSED", 0.8)]);
        for transform in ["region:top75", "trimmed", "turned:rot90"] {
            let mut m = bank_match("released");
            m.transform = Some(transform.into());
            m.robust = true;
            let d = p.decide(&review, &[m]);
            assert_eq!(d.verdict, Verdict::Review, "{transform}: {:?}", d.reasons);
        }
        // The same entry matched by the whole-image hash still clears.
        assert_eq!(
            p.decide(&review, &[bank_match("released")]).verdict,
            Verdict::Allow
        );
    }

    #[test]
    fn signal_thresholds_are_set_per_signal_and_bounded() {
        let p = Policy::from_toml(
            "[signal_thresholds]\ntrimmed = 20\npdq_top75 = 25\n",
            &explicit(),
            &labels(),
        )
        .unwrap();
        assert_eq!(p.signal_thresholds.trimmed, 20);
        assert_eq!(p.signal_thresholds.top75, 25);
        assert_eq!(p.signal_thresholds.turned, DEFAULT_PDQ_THRESHOLD);
        let err = Policy::from_toml("[signal_thresholds]\nturned = 80\n", &explicit(), &labels())
            .unwrap_err()
            .to_string();
        assert!(err.contains("signal_thresholds.turned = 80"), "{err}");
        assert!(
            Policy::from_toml("[signal_thresholds]\nregion = 3\n", &explicit(), &labels()).is_err()
        );
    }

    #[test]
    fn bank_matches_block_and_allow_list_only_clears_the_model() {
        let p = released_policy();
        let review = scores(&[("BUTTOCKS_EXPOSED", 0.8)]);
        assert_eq!(
            p.decide(&review, &[bank_match("released")]).verdict,
            Verdict::Allow
        );
        assert_eq!(
            p.decide(&scores(&[]), &[bank_match("known-bad")]).verdict,
            Verdict::Block
        );
        let both = p.decide(&review, &[bank_match("released"), bank_match("known-bad")]);
        assert_eq!(both.verdict, Verdict::Block);
        assert!(
            both.reasons[0].starts_with("block: bank known-bad"),
            "{:?}",
            both.reasons
        );
    }

    #[test]
    fn an_allow_list_does_not_clear_a_policy_that_says_so() {
        let mut p = Policy::from_toml(
            "[banks.released]\naction = \"allow\"\n",
            &explicit(),
            &labels(),
        )
        .unwrap();
        let before = p.version();
        p.allow_list_clears_classifier = false;
        assert_ne!(
            p.version(),
            before,
            "verdicts of the two must not share a cache"
        );
        let review = scores(&[("BUTTOCKS_EXPOSED", 0.8)]);
        let decided = p.decide(&review, &[bank_match("released")]);
        assert_eq!(decided.verdict, Verdict::Review, "{:?}", decided.reasons);
        assert!(
            decided
                .reasons
                .iter()
                .any(|r| r.starts_with("not cleared by")),
            "{:?}",
            decided.reasons
        );
        assert_eq!(
            p.decide(&scores(&[]), &[bank_match("released")]).verdict,
            Verdict::Allow
        );
    }

    #[test]
    fn overrides_merge_and_are_validated() {
        let p = Policy::from_toml(
            "pdq_min_quality = 70\n[labels.BELLY_EXPOSED]\nreview = 0.9\n[labels.BUTTOCKS_EXPOSED]\nblock = 0.8\n[default_bank]\npdq_threshold = 20\n",
            &explicit(),
            &labels(),
        )
        .unwrap();
        assert_eq!(
            p.labels["BUTTOCKS_EXPOSED"],
            LabelRule {
                review: Some(0.40),
                block: Some(0.8)
            }
        );
        assert_eq!(p.labels["BELLY_EXPOSED"].review, Some(0.9));
        assert_eq!(p.match_params("any").pdq_threshold, 20);
        assert_eq!(p.pdq_min_quality, 70);
        assert_ne!(p.version(), Policy::builtin(&explicit()).version());

        for bad in [
            "[labels.NOT_A_LABEL]\nreview = 0.5\n",
            "[labels.BELLY_EXPOSED]\nreview = 1.5\n",
            "[labels.BUTTOCKS_EXPOSED]\nblock = 0.1\n",
            "[default_bank]\npdq_threshold = 200\n",
            "surprise = 1\n",
        ] {
            assert!(
                Policy::from_toml(bad, &explicit(), &labels()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_label_can_be_disabled() {
        let p = Policy::from_toml(
            "[labels.BUTTOCKS_EXPOSED]\ndisabled = true\n",
            &explicit(),
            &labels(),
        )
        .unwrap();
        assert_eq!(
            p.decide(&scores(&[("BUTTOCKS_EXPOSED", 0.99)]), &[])
                .verdict,
            Verdict::Allow
        );
    }
}
