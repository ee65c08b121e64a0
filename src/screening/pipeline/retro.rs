//! Retroactive matching: stored screenings against newly added bank entries.

use std::sync::Arc;

use serde::Serialize;

use super::writes::{review_write, screening_write, Analyser};
use super::{Pipeline, PipelineError, Submission};
use crate::matching::bank::BankMatch;
use crate::matching::index::BankIndex;
use crate::screening::policy::{Policy, Verdict};
use crate::screening::record::ScreeningRecord;
use crate::store::{ArtworkSignals, ArtworkStatus, ScreeningWrite, StoreError, ViewPdq};

/// One artwork that newly matches a bank, found by [`Pipeline::retro_match`].
#[derive(Clone, Debug, Serialize)]
pub struct RetroHit {
    pub artwork_id: String,
    pub screening_id: String,
    pub verdict: Verdict,
    pub matches: Vec<BankMatch>,
    /// The original bytes were found again (the recorded path or URL, with the same
    /// sha256) and are quarantined as evidence.
    pub evidence: bool,
    pub report_ids: Vec<String>,
}

/// What [`Pipeline::retro_match`] did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RetroSummary {
    /// Artworks compared.
    pub scanned: u64,
    pub hits: Vec<RetroHit>,
}

/// Stored artworks compared per store page.
const RETRO_PAGE: i64 = 10_000;

impl Pipeline {
    /// Retroactive match: compare the current banks (or one bank) with the stored
    /// hashes of every artwork not already quarantined, without fetching or inferring.
    /// A hit goes the normal way: a new screening that blocks (or holds for review),
    /// the artwork out of public view, a review row and reports. The original bytes are
    /// quarantined when the recorded source still yields them; `http` fetches URLs.
    ///
    /// PDQ is compared as stored (the image as uploaded); the rotations and flips that
    /// screening also tries need the pixels, so they are not tried here.
    pub async fn retro_match(
        &self,
        only_bank: Option<&str>,
        http: Option<&crate::fetch::HttpFetcher>,
    ) -> Result<RetroSummary, PipelineError> {
        let banks = self.banks().await?;
        let policy = banks.policy_with_banks(&self.policy);
        let prefilter = RetroPrefilter::new(&banks, &policy, only_bank);
        let mut summary = RetroSummary::default();
        // The next page is read while this one is matched.
        let next_page = |after: Option<String>| {
            let store = Arc::clone(&self.store);
            tokio::spawn(async move { store.artwork_signals(after.as_deref(), RETRO_PAGE).await })
        };
        let mut pending = next_page(None);
        loop {
            let page = pending
                .await
                .map_err(|e| PipelineError::Task(e.to_string()))??;
            let Some(last) = page.last() else { break };
            pending = next_page(Some(last.artwork_id.clone()));
            summary.scanned += page.len() as u64;
            for artwork in &page {
                if artwork.status == ArtworkStatus::Quarantined || !prefilter.may_match(artwork) {
                    continue;
                }
                let matches = retro_matches(artwork, &banks, &policy, only_bank);
                if matches.is_empty() {
                    continue;
                }
                let decision = policy.decide(&Default::default(), &matches);
                if decision.verdict == Verdict::Allow {
                    continue;
                }
                let hit = self
                    .record_retro_hit(artwork, matches, decision.reasons, &banks, &policy, http)
                    .await?;
                summary.hits.push(hit);
            }
        }
        Ok(summary)
    }

    async fn record_retro_hit(
        &self,
        artwork: &ArtworkSignals,
        matches: Vec<BankMatch>,
        reasons: Vec<String>,
        banks: &BankIndex,
        policy: &Policy,
        http: Option<&crate::fetch::HttpFetcher>,
    ) -> Result<RetroHit, PipelineError> {
        let previous = self
            .store
            .get_screening(&artwork.screening_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("screening {}", artwork.screening_id)))?;
        let mut record: ScreeningRecord = serde_json::from_value(previous.facts.record.clone())
            .map_err(|e| {
                StoreError::backend(
                    format!(
                        "screening {} holds a record this version cannot read",
                        previous.id
                    ),
                    e,
                )
            })?;
        // With the previous detections: a classifier verdict stricter than the bank's stays.
        let scores = crate::classify::label_scores(&record.detections);
        let decision = policy.decide(&scores, &matches);
        record.verdict = decision.verdict.max(Verdict::Review);
        // A view decided when none of the matches is of the reference decoding.
        record.decided_by = if matches.iter().any(|m| m.view().is_none()) {
            None
        } else {
            matches.iter().find_map(BankMatch::view)
        };
        record.matches = matches.clone();
        record.reasons = std::iter::once("retroactive match against the current banks".to_string())
            .chain(decision.reasons.into_iter().chain(reasons))
            .collect();
        record.policy = policy.version();
        // Derived from the earlier screening and the banks version: rerunning finds the
        // same id and writes nothing twice.
        let screening_id = {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(
                format!("retro\0{}\0{}", previous.id, banks.banks_version()).as_bytes(),
            );
            format!("rm_{}", &hex::encode(digest)[..32])
        };
        let submission = Submission {
            source: record.source.clone(),
            url: record
                .source
                .starts_with("http")
                .then(|| record.source.clone()),
            artwork_id: Some(artwork.artwork_id.clone()),
            owner_id: artwork.owner_id.clone(),
            context: serde_json::from_value(previous.facts.context.clone()).unwrap_or_default(),
            screening_id: Some(screening_id.clone()),
        };
        let reports = if record.verdict == Verdict::Block {
            self.reports(&screening_id, &submission, &record, banks)?
        } else {
            Vec::new()
        };
        let mut write = ScreeningWrite {
            review: Some(review_write(
                &record,
                banks,
                policy,
                &submission.context,
                record.reasons.get(1).cloned(),
            )),
            reports,
            ..screening_write(
                &record,
                screening_id,
                &submission,
                Analyser {
                    model: previous.facts.model.clone(),
                    analysis: previous.facts.analysis.clone(),
                },
                banks.banks_version(),
                previous.facts.context.clone(),
                // Out of public view whether or not the bytes were found again.
                ArtworkStatus::Quarantined,
            )?
        };
        let evidence = self.refetch(&record, http).await;
        let pending = match &evidence {
            Some(bytes) => Some(
                self.write_evidence(&record.sha256, bytes, &mut write)
                    .await?,
            ),
            None => {
                tracing::warn!(artwork = %artwork.artwork_id, source = %record.source, "retroactive hit: the original bytes could not be fetched again; the artwork is taken down without evidence bytes");
                None
            }
        };
        let recorded = self.store.record_screening(&write).await;
        // A rerun finds its earlier row, which points at the same bytes.
        let recorded = match (recorded, pending) {
            (Ok(recorded), Some(pending)) => {
                pending.recorded(self.vault.as_ref()).await;
                recorded
            }
            (Err(e), Some(pending)) => {
                pending
                    .unrecorded(self.vault.as_ref(), self.store.as_ref())
                    .await;
                return Err(e.into());
            }
            (recorded, None) => recorded?,
        };
        if !recorded.report_ids.is_empty() {
            self.reported.notify_one();
        }
        Ok(RetroHit {
            artwork_id: artwork.artwork_id.clone(),
            screening_id: recorded.screening_id,
            verdict: record.verdict,
            matches,
            evidence: evidence.is_some(),
            report_ids: recorded.report_ids,
        })
    }

    /// The original bytes again from the recorded source, if they still hash the same.
    async fn refetch(
        &self,
        record: &ScreeningRecord,
        http: Option<&crate::fetch::HttpFetcher>,
    ) -> Option<Vec<u8>> {
        let max = self.settings.limits.max_bytes;
        let bytes = if record.source.starts_with("http://") || record.source.starts_with("https://")
        {
            http?.get(&record.source, max).await.ok()?
        } else {
            let path = std::path::PathBuf::from(&record.source);
            if !path.is_file() {
                return None;
            }
            tokio::task::spawn_blocking(move || crate::fetch::read_file(&path, max))
                .await
                .ok()?
                .ok()?
        };
        (crate::hash::exact_hashes(&bytes).sha256 == record.sha256).then_some(bytes)
    }
}

/// The entries retroactive matching looks for, laid out for a scan of millions of
/// stored hashes: a hash-set probe for exact hashes and a popcount loop for PDQ. Only
/// the artworks it lets through go on to the full [`retro_matches`].
struct RetroPrefilter {
    exact: std::collections::HashSet<String>,
    /// (hash, the threshold of the bank holding it)
    pdq: Vec<(crate::hash::pdq::PdqHash, u32)>,
    min_quality: u32,
}

impl RetroPrefilter {
    fn new(banks: &BankIndex, policy: &Policy, only_bank: Option<&str>) -> Self {
        let mut exact = std::collections::HashSet::new();
        let mut pdq = Vec::new();
        for bank in banks.bank_set().banks() {
            let flags = banks.rules(&bank.name).is_some_and(|r| !r.allow_list);
            if !flags || only_bank.is_some_and(|b| b != bank.name) {
                continue;
            }
            exact.extend(bank.exact_hashes().map(str::to_string));
            let threshold = policy.match_params(&bank.name).pdq_threshold;
            pdq.extend(bank.pdq_hashes().map(|h| (*h, threshold)));
        }
        RetroPrefilter {
            exact,
            pdq,
            min_quality: policy.pdq_min_quality,
        }
    }

    fn may_match(&self, artwork: &ArtworkSignals) -> bool {
        if self.exact.contains(&artwork.md5) || self.exact.contains(&artwork.sha256) {
            return true;
        }
        if self.pdq.is_empty() {
            return false;
        }
        stored_pdq(artwork)
            .filter(|(_, quality, _)| *quality >= self.min_quality)
            .any(|(hash, _, _)| {
                self.pdq
                    .iter()
                    .any(|(entry, threshold)| entry.distance(&hash) <= *threshold)
            })
    }
}

/// Every PDQ stored for an artwork's latest screening: the reference decoding's (no view),
/// then each view's, with its quality. Unreadable hashes are skipped.
fn stored_pdq(
    artwork: &ArtworkSignals,
) -> impl Iterator<Item = (crate::hash::pdq::PdqHash, u32, Option<&ViewPdq>)> + '_ {
    let quality = |q: Option<i64>| q.and_then(|q| u32::try_from(q).ok()).unwrap_or(0);
    let reference = artwork
        .pdq
        .as_deref()
        .map(|h| (h, quality(artwork.pdq_quality), None));
    let views = artwork
        .view_pdq
        .iter()
        .map(move |v| (v.hash.as_str(), quality(Some(v.quality)), Some(v)));
    reference
        .into_iter()
        .chain(views)
        .filter_map(|(hex, quality, view)| {
            crate::hash::pdq::PdqHash::from_hex(hex)
                .ok()
                .map(|hash| (hash, quality, view))
        })
}

/// The bank matches of one stored artwork (non-allow-list banks only), of its reference
/// decoding and of every view it was screened in.
fn retro_matches(
    artwork: &ArtworkSignals,
    banks: &BankIndex,
    policy: &Policy,
    only_bank: Option<&str>,
) -> Vec<BankMatch> {
    let exact = crate::hash::ExactHashes {
        sha256: artwork.sha256.clone(),
        md5: artwork.md5.clone(),
    };
    let mut matches = banks.bank_set().match_signals(
        crate::matching::bank::Signals {
            exact: Some(&exact),
            pdq: None,
        },
        |bank| policy.match_params(bank),
    );
    for (hash, quality, view) in stored_pdq(artwork) {
        // Only the stored hash: every "transform" is the picture as it was screened.
        let pdq = crate::hash::PdqOutput {
            hash,
            quality,
            dihedral: [hash; 8],
            robust: None,
        };
        let found = banks.bank_set().match_signals(
            crate::matching::bank::Signals {
                exact: None,
                pdq: Some(&pdq),
            },
            |bank| policy.match_params(bank),
        );
        matches.extend(found.into_iter().map(|mut m| {
            if let Some(view) = view {
                m.frame = Some(view.frame);
                m.rendering = Some(view.rendering);
            }
            m
        }));
    }
    matches
        .into_iter()
        .filter(|m| only_bank.is_none_or(|b| b == m.bank))
        .filter(|m| banks.rules(&m.bank).is_some_and(|r| !r.allow_list))
        .collect()
}
