//! Statements of reasons: for every decision that restricted art or an account, what
//! Article 17 of the EU Digital Services Act asks the owner be told, in the shape of the
//! DSA Transparency Database's statement (its API's field names and values), so a platform
//! can submit them as they are. The facts are the stored screening record's reasons and
//! signals; the ground and category follow from what was found (a `csam` bank, a confirm
//! for a minor, words asking a minor for contact, or sexual content).
//!
//! Platform-side details that are not part of the database's schema (the ids, who decided,
//! how to appeal) are under `coverguard`: the platform keeps them and strips them before
//! submitting, since the database must receive no personal data.

use serde::{Deserialize, Serialize};

use crate::act::report::is_csam_category;
use crate::matching::index::BankIndex;
use crate::screening::record::ScreeningRecord;
use crate::screening::text_only::WordsRecord;
use crate::store::{ReporterKind, RestrictingDecision, RestrictionKind};

/// `[statements]`: what every statement says of the platform's grounds and reach.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatementsConfig {
    /// Member states (ISO 3166-1 alpha-2, as the database names them) where decisions apply.
    pub territorial_scope: Vec<String>,
    /// The terms-of-service ground a decision on incompatible content relies on.
    pub terms_ground: String,
    /// Where those terms are published (`decision_ground_reference_url`); optional.
    pub terms_url: Option<String>,
    /// The legal ground for child sexual abuse material.
    pub illegal_ground: String,
}

/// The member states of the EU.
const EU: [&str; 27] = [
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT",
    "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
];

impl Default for StatementsConfig {
    fn default() -> Self {
        StatementsConfig {
            territorial_scope: EU.iter().map(|c| c.to_string()).collect(),
            terms_ground: "Terms of service: sexual content, and the safety of minors".into(),
            terms_url: None,
            illegal_ground: "Directive 2011/93/EU on combating the sexual abuse and sexual \
                             exploitation of children, Article 5 (child pornography)"
                .into(),
        }
    }
}

/// A statement of reasons as the DSA Transparency Database's API names its fields.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Statement {
    /// Platform Unique Identifier: `coverguard:<kind>:<decision id>`, one per decision.
    pub puid: String,
    pub decision_visibility: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_account: Option<&'static str>,
    pub decision_ground: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_ground_reference_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub illegal_content_legal_ground: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub illegal_content_explanation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incompatible_content_ground: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incompatible_content_explanation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incompatible_content_illegal: Option<&'static str>,
    pub category: &'static str,
    pub category_specification: Vec<&'static str>,
    pub content_type: Vec<&'static str>,
    /// `YYYY-MM-DD`: when the content was screened.
    pub content_date: String,
    /// `YYYY-MM-DD`: when the decision applied.
    pub application_date: String,
    pub decision_facts: String,
    pub source_type: &'static str,
    /// `Yes` or `No`.
    pub automated_detection: &'static str,
    pub automated_decision: &'static str,
    pub territorial_scope: Vec<String>,
    /// Not part of the database's schema; strip before submitting.
    pub coverguard: PlatformSide,
}

/// What the platform keeps with a statement and the database must not receive.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PlatformSide {
    #[schema(value_type = String)]
    pub decision: RestrictionKind,
    pub decision_id: String,
    pub applied_at: chrono::DateTime<chrono::Utc>,
    pub screening_id: Option<String>,
    pub artwork_id: Option<String>,
    pub owner_id: Option<String>,
    pub decided_by: Option<String>,
    /// How the owner contests it.
    pub redress: String,
}

/// What the decision's facts say was found, most serious first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    ChildSexualAbuse,
    Grooming,
    Sexual,
    AccountTakedown,
}

/// The statement of `decision`.
pub fn statement(
    decision: &RestrictingDecision,
    banks: &BankIndex,
    config: &StatementsConfig,
    appeal_window_days: u32,
) -> Statement {
    let facts = Facts::of(decision);
    let found = facts.found(decision, banks);
    let illegal = found == Found::ChildSexualAbuse;
    let explanation = match found {
        Found::ChildSexualAbuse => "The image matches known child sexual abuse material, or a \
                                   reviewer found it sexualises a minor."
            .to_string(),
        Found::Grooming => "The words with the artwork ask for contact details or pictures, \
                            the pattern by which minors are groomed."
            .to_string(),
        Found::Sexual => "The artwork shows sexual content.".to_string(),
        Found::AccountTakedown => {
            "The account was taken down: all of its artwork is removed.".to_string()
        }
    };
    let (category, specification) = match found {
        Found::ChildSexualAbuse => (
            "STATEMENT_CATEGORY_PROTECTION_OF_MINORS",
            "KEYWORD_CHILD_SEXUAL_ABUSE_MATERIAL",
        ),
        Found::Grooming => (
            "STATEMENT_CATEGORY_PROTECTION_OF_MINORS",
            "KEYWORD_GROOMING_SEXUAL_ENTICEMENT_MINORS",
        ),
        Found::Sexual => (
            "STATEMENT_CATEGORY_PORNOGRAPHY_OR_SEXUALIZED_CONTENT",
            "KEYWORD_ADULT_SEXUAL_MATERIAL",
        ),
        Found::AccountTakedown => ("STATEMENT_CATEGORY_PROTECTION_OF_MINORS", "KEYWORD_OTHER"),
    };
    let automated_detection = match decision.kind {
        RestrictionKind::Takedown => false,
        // A reviewer's confirm was detected by screening unless only people reported it.
        RestrictionKind::ReviewConfirm => decision
            .screening
            .as_ref()
            .is_some_and(|s| s.facts.verdict != crate::screening::policy::Verdict::Allow),
        RestrictionKind::AutomatedBlock | RestrictionKind::ReviewHold => true,
    };
    let automated_decision = match decision.kind {
        RestrictionKind::AutomatedBlock | RestrictionKind::ReviewHold => "AUTOMATED_DECISION_FULLY",
        RestrictionKind::ReviewConfirm if automated_detection => "AUTOMATED_DECISION_PARTIALLY",
        RestrictionKind::ReviewConfirm | RestrictionKind::Takedown => {
            "AUTOMATED_DECISION_NOT_AUTOMATED"
        }
    };
    let source_type = if decision.reporters.contains(&ReporterKind::TrustedFlagger) {
        "SOURCE_TRUSTED_FLAGGER"
    } else if !decision.reporters.is_empty() {
        "SOURCE_ARTICLE_16"
    } else {
        "SOURCE_VOLUNTARY"
    };
    let screening = decision.screening.as_ref();
    let words_only = screening.is_some_and(|s| !s.facts.has_image());
    Statement {
        puid: format!("coverguard:{}:{}", decision.kind, decision.decision_id),
        decision_visibility: vec![match decision.kind {
            // Held out of view until a reviewer decides.
            RestrictionKind::ReviewHold => "DECISION_VISIBILITY_CONTENT_DISABLED",
            _ => "DECISION_VISIBILITY_CONTENT_REMOVED",
        }],
        decision_account: (decision.kind == RestrictionKind::Takedown)
            .then_some("DECISION_ACCOUNT_SUSPENDED"),
        decision_ground: if illegal {
            "DECISION_GROUND_ILLEGAL_CONTENT"
        } else {
            "DECISION_GROUND_INCOMPATIBLE_CONTENT"
        },
        decision_ground_reference_url: (!illegal).then(|| config.terms_url.clone()).flatten(),
        illegal_content_legal_ground: illegal.then(|| config.illegal_ground.clone()),
        illegal_content_explanation: illegal.then(|| explanation.clone()),
        incompatible_content_ground: (!illegal).then(|| config.terms_ground.clone()),
        incompatible_content_explanation: (!illegal).then(|| explanation.clone()),
        incompatible_content_illegal: (!illegal).then_some("No"),
        category,
        category_specification: vec![specification],
        content_type: vec![if words_only {
            "CONTENT_TYPE_TEXT"
        } else {
            "CONTENT_TYPE_IMAGE"
        }],
        content_date: screening
            .map_or(decision.at, |s| s.created_at)
            .format("%Y-%m-%d")
            .to_string(),
        application_date: decision.at.format("%Y-%m-%d").to_string(),
        decision_facts: facts.describe(decision),
        source_type,
        automated_detection: if automated_detection { "Yes" } else { "No" },
        automated_decision,
        territorial_scope: config.territorial_scope.clone(),
        coverguard: PlatformSide {
            decision: decision.kind,
            decision_id: decision.decision_id.clone(),
            applied_at: decision.at,
            screening_id: screening.map(|s| s.id.clone()),
            artwork_id: screening.and_then(|s| s.facts.artwork_id.clone()),
            owner_id: decision.owner_id.clone(),
            decided_by: decision.actor.clone(),
            redress: format!(
                "The owner may appeal within {appeal_window_days} days of the decision \
                 through the platform's appeal flow; a person other than the one who decided \
                 reviews it."
            ),
        },
    }
}

/// The stored record's reasons and what it found.
struct Facts {
    reasons: Vec<String>,
    banks: Vec<String>,
    asks_minor: bool,
}

impl Facts {
    fn of(decision: &RestrictingDecision) -> Facts {
        let Some(screening) = &decision.screening else {
            return Facts {
                reasons: Vec::new(),
                banks: Vec::new(),
                asks_minor: false,
            };
        };
        let (reasons, banks, signals) =
            match serde_json::from_value::<ScreeningRecord>(screening.facts.record.clone()) {
                Ok(record) => (
                    record.reasons,
                    record.matches.into_iter().map(|m| m.bank).collect(),
                    record.text.signals,
                ),
                Err(_) => {
                    match serde_json::from_value::<WordsRecord>(screening.facts.record.clone()) {
                        Ok(words) => (words.reasons, Vec::new(), words.text.signals),
                        Err(_) => (Vec::new(), Vec::new(), Vec::new()),
                    }
                }
            };
        Facts {
            reasons,
            banks,
            asks_minor: signals
                .iter()
                .any(|s| s.kind.is_contact() || s.kind.is_solicitation()),
        }
    }

    fn found(&self, decision: &RestrictingDecision, banks: &BankIndex) -> Found {
        if decision.kind == RestrictionKind::Takedown {
            return Found::AccountTakedown;
        }
        let reason_code = decision
            .review
            .as_ref()
            .and_then(|r| r.reason_code.as_deref());
        let csam_bank = self
            .banks
            .iter()
            .any(|bank| is_csam_category(banks.rules(bank).and_then(|r| r.category.as_deref())));
        if csam_bank || matches!(reason_code, Some("csam" | "sexualised_minor")) {
            Found::ChildSexualAbuse
        } else if self.asks_minor || reason_code == Some("grooming_or_contact_request") {
            Found::Grooming
        } else {
            Found::Sexual
        }
    }

    fn describe(&self, decision: &RestrictingDecision) -> String {
        let mut facts = match decision.kind {
            RestrictionKind::AutomatedBlock => {
                "Removed automatically when it was screened: ".to_string()
            }
            RestrictionKind::ReviewHold => {
                "Held out of view when it was screened, until a reviewer decides: ".to_string()
            }
            RestrictionKind::ReviewConfirm => {
                let mut said = "A reviewer confirmed its removal".to_string();
                if let Some(code) = decision
                    .review
                    .as_ref()
                    .and_then(|r| r.reason_code.as_ref())
                {
                    said.push_str(&format!(" ({code})"));
                }
                if !decision.reporters.is_empty() {
                    said.push_str(&format!(
                        " after {} report(s) from people",
                        decision.reporters.len()
                    ));
                }
                said.push_str(". Screening found: ");
                said
            }
            RestrictionKind::Takedown => {
                return "An administrator took the account down; all of its artwork is \
                        removed."
                    .to_string()
            }
        };
        if self.reasons.is_empty() {
            facts.push_str("nothing by itself.");
        } else {
            facts.push_str(&self.reasons.join("; "));
            facts.push('.');
        }
        facts
    }
}
