//! Transparency counts for a period: screenings and verdicts, what blocked (bank category,
//! model label, text signal, context), reviews and how long they waited, decisions by
//! reason code, user reports by category and outcome, appeals and how many were reversed,
//! and the reports sent. Counted here from the store's rows, so each figure is a count of
//! rows a reader can check.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::matching::index::BankIndex;
use crate::screening::context::ScreenContext;
use crate::store::TransparencyRows;

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TransparencyCounts {
    pub from: DateTime<Utc>,
    /// The end of the period (exclusive).
    pub to: DateTime<Utc>,
    pub screenings: u64,
    /// Screenings by verdict (`allow`, `review`, `block`).
    pub verdicts: BTreeMap<String, u64>,
    /// Blocks by what set them: `bank:<category>` (a known-bad bank's category, or its
    /// name when it has none), `model:<label>`, `text:<kind>` and `context:<why strict>`.
    /// A block with several signals counts under each.
    pub blocks_by_signal: BTreeMap<String, u64>,
    pub reviews: ReviewFigures,
    /// Decisions by `<decision>:<reason code>`.
    pub decisions_by_reason: BTreeMap<String, u64>,
    pub user_reports: UserReportFigures,
    pub appeals: AppealFigures,
    /// Outbox rows written, by kind (`hit`, `cybertipline`, `decision`, `appeal`, …) and
    /// state (`delivered`, `pending`, `failed`).
    pub reports_sent: BTreeMap<String, BTreeMap<String, u64>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ReviewFigures {
    /// Items queued in the period.
    pub queued: u64,
    /// Items decided in the period (escalations are not decisions).
    pub decided: u64,
    /// Median time from queued to decided, of the items decided in the period.
    pub median_seconds_to_decision: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct UserReportFigures {
    pub reports: u64,
    pub by_category: BTreeMap<String, u64>,
    /// By what became of the art reported: `confirmed` (any item it is counted on),
    /// else `released`, else `pending` (not decided yet, or covering no stored art).
    pub by_outcome: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AppealFigures {
    pub filed: u64,
    pub decided: u64,
    pub upheld: u64,
    pub reversed: u64,
    /// Reversed of decided; absent with none decided.
    pub reversal_rate: Option<f64>,
}

/// Counts `rows`, read for `[from, to)`; bank categories as `banks` names them now.
pub fn count(
    rows: &TransparencyRows,
    banks: &BankIndex,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> TransparencyCounts {
    let mut blocks_by_signal = BTreeMap::new();
    for (record, context) in &rows.blocks {
        for signal in block_signals(record, context, banks) {
            *blocks_by_signal.entry(signal).or_insert(0) += 1;
        }
    }
    let decided: Vec<_> = rows
        .decisions
        .iter()
        .filter(|(d, _, _)| d != "escalate")
        .collect();
    let mut decisions_by_reason = BTreeMap::new();
    for (decision, reason, _) in &rows.decisions {
        let key = format!("{decision}:{}", reason.as_deref().unwrap_or("none"));
        *decisions_by_reason.entry(key).or_insert(0) += 1;
    }

    // A report counted on several items (an owner's art) has one outcome: the strongest.
    let mut reports: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    for (id, category, decision) in &rows.user_reports {
        let outcome = match decision.as_deref() {
            Some("confirm") => "confirmed",
            Some("release") => "released",
            _ => "pending",
        };
        let rank = |o: &str| {
            ["pending", "released", "confirmed"]
                .iter()
                .position(|x| *x == o)
        };
        let entry = reports.entry(id).or_insert((category, outcome));
        if rank(outcome) > rank(entry.1) {
            entry.1 = outcome;
        }
    }
    let mut by_category = BTreeMap::new();
    let mut by_outcome = BTreeMap::new();
    for (category, outcome) in reports.values() {
        *by_category.entry(category.to_string()).or_insert(0) += 1;
        *by_outcome.entry(outcome.to_string()).or_insert(0) += 1;
    }

    let outcome_count = |o: &str| {
        rows.appeals
            .iter()
            .filter(|(_, outcome)| outcome.as_deref() == Some(o))
            .count() as u64
    };
    let (upheld, reversed) = (outcome_count("upheld"), outcome_count("reversed"));
    let appeals_decided = rows.appeals.iter().filter(|(s, _)| s == "decided").count() as u64;

    let mut reports_sent: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for ((kind, state), n) in &rows.outbox {
        reports_sent
            .entry(kind.clone())
            .or_default()
            .insert(state.clone(), *n);
    }
    TransparencyCounts {
        from,
        to,
        screenings: rows.verdicts.values().sum(),
        verdicts: rows.verdicts.clone(),
        blocks_by_signal,
        reviews: ReviewFigures {
            queued: rows.queued,
            decided: decided.len() as u64,
            median_seconds_to_decision: median(
                &decided.iter().map(|(_, _, s)| *s).collect::<Vec<_>>(),
            ),
        },
        decisions_by_reason,
        user_reports: UserReportFigures {
            reports: reports.len() as u64,
            by_category,
            by_outcome,
        },
        appeals: AppealFigures {
            filed: rows.appeals.len() as u64,
            decided: appeals_decided,
            upheld,
            reversed,
            reversal_rate: (appeals_decided > 0).then(|| reversed as f64 / appeals_decided as f64),
        },
        reports_sent,
    }
}

/// The lower median, in whole seconds.
fn median(values: &[i64]) -> Option<i64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    (!sorted.is_empty()).then(|| sorted[(sorted.len() - 1) / 2])
}

/// What set a block: the reasons that start `block:` name a bank entry, a model label or
/// words; the context names why the strict profile applied.
fn block_signals(
    record: &serde_json::Value,
    context: &serde_json::Value,
    banks: &BankIndex,
) -> Vec<String> {
    let mut signals = Vec::new();
    let reasons: Vec<String> = record["reasons"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for reason in reasons.iter().filter_map(|r| r.strip_prefix("block: ")) {
        if let Some(rest) = reason.strip_prefix("bank ") {
            let bank = rest.split(' ').next().unwrap_or_default();
            let category = banks
                .rules(bank)
                .and_then(|r| r.category.clone())
                .unwrap_or_else(|| bank.to_string());
            signals.push(format!("bank:{category}"));
        } else if let Some((label, _)) = reason.split_once(" scored ") {
            signals.push(format!("model:{label}"));
        } else if [" in title (", " in description (", " in ocr ("]
            .iter()
            .any(|s| reason.contains(s))
        {
            if let Some(found) = record["text"]["signals"].as_array() {
                signals.extend(
                    found
                        .iter()
                        .filter_map(|s| s["kind"].as_str())
                        .map(|k| format!("text:{k}")),
                );
            }
        }
    }
    if let Some(why) = serde_json::from_value::<ScreenContext>(context.clone())
        .ok()
        .and_then(|c| c.strict_reason())
    {
        signals.push(format!("context:{why}"));
    }
    signals.sort();
    signals.dedup();
    signals
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_block_counts_under_every_signal_that_set_it() {
        let rows = TransparencyRows {
            verdicts: [("allow".into(), 3), ("block".into(), 2)].into(),
            blocks: vec![
                (
                    json!({"reasons": ["block: bank hotline entry e1 matched by exact md5",
                                       "block: BUTTOCKS_EXPOSED scored 0.950 >= 0.90",
                                       "review: FACE scored 0.5 >= 0.40"]}),
                    json!({"owner_is_minor": true}),
                ),
                (
                    json!({"reasons": ["block: BUTTOCKS_EXPOSED scored 0.990 >= 0.90"]}),
                    json!({}),
                ),
            ],
            queued: 4,
            decisions: vec![
                ("confirm".into(), Some("adult_explicit".into()), 30),
                ("release".into(), Some("not_explicit".into()), 90),
                ("escalate".into(), Some("age_unclear".into()), 10),
                ("confirm".into(), Some("adult_explicit".into()), 60),
            ],
            user_reports: vec![
                ("r1".into(), "minor_sexual".into(), Some("release".into())),
                ("r1".into(), "minor_sexual".into(), Some("confirm".into())),
                ("r2".into(), "other".into(), None),
            ],
            appeals: vec![
                ("decided".into(), Some("reversed".into())),
                ("decided".into(), Some("upheld".into())),
                ("decided".into(), Some("upheld".into())),
                ("pending".into(), None),
            ],
            outbox: [(("hit".into(), "delivered".into()), 2)].into(),
        };
        let now = Utc::now();
        let counts = count(&rows, &BankIndex::empty(), now, now);
        assert_eq!(counts.screenings, 5);
        assert_eq!(
            counts.blocks_by_signal,
            [
                ("bank:hotline".to_string(), 1),
                ("context:owner is a minor".to_string(), 1),
                ("model:BUTTOCKS_EXPOSED".to_string(), 2),
            ]
            .into()
        );
        assert_eq!(counts.reviews.decided, 3, "an escalation is no decision");
        assert_eq!(counts.reviews.median_seconds_to_decision, Some(60));
        assert_eq!(counts.decisions_by_reason["confirm:adult_explicit"], 2);
        assert_eq!(counts.user_reports.reports, 2);
        assert_eq!(
            counts.user_reports.by_outcome,
            [("confirmed".to_string(), 1), ("pending".to_string(), 1)].into()
        );
        assert_eq!(counts.appeals.filed, 4);
        assert_eq!(counts.appeals.reversal_rate, Some(1.0 / 3.0));
        assert_eq!(counts.reports_sent["hit"]["delivered"], 2);
    }
}
