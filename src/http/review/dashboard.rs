//! The dashboard figures.

use std::collections::BTreeMap;

use axum::Json;
use serde::Serialize;

use crate::classify::{label_scores, Detection};
use crate::http::auth::ConsoleSession;
use crate::http::error::{ApiError, ErrorBody};
use crate::store::now_utc;

/// Screenings sampled for the score distributions.
const SCORE_SAMPLE: i64 = 5000;
/// Days of verdict counts on the dashboard.
const DASHBOARD_DAYS: i64 = 14;
const QUEUE_AGE_BUCKETS: [&str; 5] = ["<1h", "1-6h", "6-24h", "1-3d", ">3d"];

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct DayVerdicts {
    day: String,
    allow: i64,
    review: i64,
    block: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScoreHistogram {
    label: String,
    /// Bin i counts images whose highest score for the label is in [i/10, (i+1)/10).
    bins: [u64; 10],
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgeBucket {
    bucket: &'static str,
    count: i64,
}

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct ReviewerDecisions {
    reviewer: String,
    confirm: i64,
    release: i64,
    escalate: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatsView {
    verdicts_per_day: Vec<DayVerdicts>,
    /// Over the latest screenings (at most 5000), each image's highest score over its views.
    score_histograms: Vec<ScoreHistogram>,
    queue_age: Vec<AgeBucket>,
    decisions_by_reviewer: Vec<ReviewerDecisions>,
}

/// Figures for the dashboard.
#[utoipa::path(get, path = "/v1/review/stats", tag = "review",
    responses((status = 200, body = StatsView), (status = 401, body = ErrorBody)))]
pub async fn stats(
    ConsoleSession { ready, .. }: ConsoleSession,
) -> Result<Json<StatsView>, ApiError> {
    let now = now_utc();
    let cutoffs = [1, 6, 24, 72].map(|hours| now - chrono::Duration::hours(hours));
    let counts = ready
        .store
        .review_counts(now - chrono::Duration::days(DASHBOARD_DAYS), &cutoffs)
        .await?;

    let mut days: BTreeMap<String, DayVerdicts> = BTreeMap::new();
    for (day, verdict, n) in counts.verdicts_per_day {
        let entry = days.entry(day.clone()).or_insert_with(|| DayVerdicts {
            day,
            ..DayVerdicts::default()
        });
        match verdict.as_str() {
            "allow" => entry.allow += n,
            "review" => entry.review += n,
            "block" => entry.block += n,
            _ => {}
        }
    }

    let mut histograms: BTreeMap<String, [u64; 10]> = BTreeMap::new();
    for record in ready.store.recent_records(SCORE_SAMPLE).await? {
        let Ok(mut detections) =
            serde_json::from_value::<Vec<Detection>>(record["detections"].clone())
        else {
            continue;
        };
        // An image scores what its highest-scoring view scores: a frame can decide it.
        let views = record["views"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        for view in views {
            if let Ok(more) = serde_json::from_value::<Vec<Detection>>(view["detections"].clone()) {
                detections.extend(more);
            }
        }
        for (label, score) in label_scores(&detections) {
            let bin = ((score * 10.0) as usize).min(9);
            histograms.entry(label).or_default()[bin] += 1;
        }
    }

    let mut by_reviewer: BTreeMap<String, ReviewerDecisions> = BTreeMap::new();
    for (name, decision, n) in counts.decisions {
        let entry = by_reviewer
            .entry(name.clone())
            .or_insert_with(|| ReviewerDecisions {
                reviewer: name,
                ..ReviewerDecisions::default()
            });
        match decision.as_str() {
            "confirm" => entry.confirm += n,
            "release" => entry.release += n,
            "escalate" => entry.escalate += n,
            _ => {}
        }
    }

    Ok(Json(StatsView {
        verdicts_per_day: days.into_values().collect(),
        score_histograms: histograms
            .into_iter()
            .map(|(label, bins)| ScoreHistogram { label, bins })
            .collect(),
        queue_age: QUEUE_AGE_BUCKETS
            .iter()
            .zip(counts.queue_age)
            .map(|(bucket, count)| AgeBucket { bucket, count })
            .collect(),
        decisions_by_reviewer: by_reviewer.into_values().collect(),
    }))
}
