//! Bank management (admin role): list, create, delete; add, remove and disable
//! entries given as hashes or as an image to hash; bulk import of HMA files.
//!
//! Every change is one store transaction that bumps the banks version (an import is staged
//! in short transactions and published by one), then the in-memory index catches up: a
//! change of single entries is applied as a delta, anything else is rebuilt off to the side,
//! and the new index is swapped in whole ([`crate::matching::index::SharedBankIndex`]): screening
//! never waits for a rebuild and never sees half an index. Listing reads per-bank counters,
//! not entries. Every change is written to the audit log.

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::auth::AdminToken;
use super::error::{ApiError, ErrorBody};
use super::{AppState, Caller, Ready};
use crate::matching::bank::{self, SignalType};
use crate::matching::image_entries::image_entries;
use crate::screening::analyse::analyse;
use crate::screening::policy::{BankAction, Verdict, DEFAULT_PDQ_THRESHOLD};
use crate::store::{BankChange, BankCounts, BankRow, BankSpec, EntryRow, EntryWrite};

/// `POST /v1/banks` body. Omitted fields take the defaults of a known-bad bank.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBank {
    pub name: String,
    /// Default `["pdq", "md5"]`, what industry hash lists carry.
    #[serde(default)]
    pub signal_types: Option<Vec<String>>,
    /// Default 31, the distance python-threatexchange uses for PDQ.
    #[serde(default)]
    pub pdq_threshold: Option<i64>,
    /// `block` (default), `review` or `allow`.
    #[serde(default)]
    pub action: Option<String>,
    /// An allow-list bank exempts its matches from classifier-only verdicts.
    #[serde(default)]
    pub allow_list: bool,
    /// Orders the review queue: higher is reviewed first. Default 1.
    #[serde(default)]
    pub severity: Option<i64>,
    /// e.g. `csam`: hits on such a bank also produce a CyberTipline report.
    #[serde(default)]
    pub category: Option<String>,
}

/// A bank as listed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BankView {
    pub name: String,
    pub signal_types: Vec<String>,
    pub pdq_threshold: i64,
    pub action: String,
    pub allow_list: bool,
    pub severity: i64,
    pub category: Option<String>,
    pub created_at: String,
    /// Entries of this bank, enabled or not.
    pub entries: usize,
    pub disabled_entries: usize,
}

/// A bank change's result.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChangeView {
    /// Rows changed: 0 for a repeat of a change already made.
    pub changed: u64,
    /// The banks version after the change; screenings record it.
    pub banks_version: i64,
    /// Hashes of an uploaded image that were not added, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    /// The entries that an image upload resolved to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<EntryWrite>,
}

/// `POST /v1/banks/{name}/entries` JSON body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddEntries {
    pub entries: Vec<EntryInput>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryInput {
    /// `pdq`, `md5` or `sha256`.
    pub signal: String,
    /// Hex: 64 digits for PDQ and SHA-256, 32 for MD5.
    pub hash: String,
    pub external_id: Option<String>,
}

/// Query of an image upload to `POST /v1/banks/{name}/entries`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ImageEntryQuery {
    /// Recorded with each entry, e.g. a case number.
    pub external_id: Option<String>,
}

/// `PATCH /v1/banks/{name}/entries/{signal}/{hash}` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryPatch {
    pub disabled: bool,
}

impl EntryPatch {
    fn parse(body: &[u8]) -> Result<EntryPatch, ApiError> {
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("JSON body: {e}")))
    }
}

impl CreateBank {
    fn into_spec(self) -> Result<BankSpec, ApiError> {
        let action = match self.action.as_deref() {
            Some(text) => text
                .parse::<BankAction>()
                .map_err(|e| invalid(e.to_string()))?,
            None if self.allow_list => BankAction::Allow,
            None => BankAction::Block,
        };
        let signal_types = self
            .signal_types
            .unwrap_or_else(|| vec!["pdq".into(), "md5".into()]);
        for s in &signal_types {
            if SignalType::parse(s).is_none() {
                return Err(invalid(format!(
                    "unknown signal type {s:?} (expected {})",
                    known_signals()
                )));
            }
        }
        Ok(BankSpec {
            name: self.name,
            signal_types,
            pdq_threshold: self
                .pdq_threshold
                .unwrap_or(i64::from(DEFAULT_PDQ_THRESHOLD)),
            action,
            allow_list: self.allow_list,
            severity: self.severity.unwrap_or(1),
            category: self.category,
        })
    }
}

/// The named bank, or 404.
pub(super) async fn find_bank(ready: &Ready, name: &str) -> Result<BankRow, ApiError> {
    ready
        .store
        .list_banks()
        .await?
        .into_iter()
        .find(|b| b.spec.name == name)
        .ok_or_else(|| ApiError::not_found(format!("no bank {name:?}")))
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
}

fn view(row: BankRow, counts: BankCounts) -> BankView {
    let count = |n: i64| usize::try_from(n).unwrap_or(0);
    let (total, disabled) = (count(counts.entries), count(counts.disabled));
    BankView {
        name: row.spec.name,
        signal_types: row.spec.signal_types,
        pdq_threshold: row.spec.pdq_threshold,
        action: row.spec.action.to_string(),
        allow_list: row.spec.allow_list,
        severity: row.spec.severity,
        category: row.spec.category,
        created_at: row.created_at.to_rfc3339(),
        entries: total,
        disabled_entries: disabled,
    }
}

/// After a change: audit it, and swap the new index in before answering, so the
/// caller's next screening on this instance sees it.
async fn changed(
    ready: &Ready,
    caller: &Caller,
    action: &str,
    subject: &str,
    detail: serde_json::Value,
    change: BankChange,
) -> Result<ChangeView, ApiError> {
    ready
        .store
        .append_audit(&caller.name, action, subject, &detail)
        .await?;
    ready.pipeline.banks.refresh(ready.store.as_ref()).await?;
    Ok(ChangeView {
        changed: change.changed,
        banks_version: change.banks_version,
        skipped: Vec::new(),
        entries: Vec::new(),
    })
}

/// List every bank with its entry counts.
#[utoipa::path(get, path = "/v1/banks", tag = "banks",
    responses((status = 200, body = [BankView]), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn list_banks(
    AdminToken { ready, .. }: AdminToken,
) -> Result<Json<Vec<BankView>>, ApiError> {
    let banks = ready.store.list_banks().await?;
    let counts = ready.store.bank_counts().await?;
    Ok(Json(
        banks
            .into_iter()
            .map(|b| {
                let n = counts.get(&b.spec.name).copied().unwrap_or_default();
                view(b, n)
            })
            .collect(),
    ))
}

/// Create a bank. The same settings again is a no-op; other settings for an
/// existing name are a conflict (409).
#[utoipa::path(post, path = "/v1/banks", tag = "banks", request_body = CreateBank,
    responses((status = 201, body = ChangeView), (status = 200, body = ChangeView, description = "already exists with these settings"),
        (status = 409), (status = 422)),
    security(("bearer" = [])))]
pub async fn create_bank(
    State(state): State<AppState>,
    AdminToken { ready, caller, .. }: AdminToken,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: CreateBank = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("JSON body: {e}")))?;
    let spec = request.into_spec()?;
    if spec.category.as_deref() == Some(crate::act::report::CSAM_BANK_CATEGORY)
        && state.config().reporter.is_none()
    {
        return Err(invalid(
            "a csam bank's hits must be reported to the CyberTipline: configure [reporter] first",
        ));
    }
    let change = ready.store.create_bank(&spec).await?;
    let detail = serde_json::to_value(&spec).unwrap_or_default();
    let out = changed(&ready, &caller, "bank.create", &spec.name, detail, change).await?;
    let status = if out.changed > 0 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(out)).into_response())
}

/// Delete a bank and its entries.
#[utoipa::path(delete, path = "/v1/banks/{name}", tag = "banks",
    params(("name" = String, Path)),
    responses((status = 200, body = ChangeView), (status = 404)),
    security(("bearer" = [])))]
pub async fn delete_bank(
    AdminToken { ready, caller, .. }: AdminToken,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<ChangeView>, ApiError> {
    let change = ready.store.delete_bank(&name).await?;
    if change.changed == 0 {
        return Err(ApiError::not_found(format!("no bank {name:?}")));
    }
    let out = changed(
        &ready,
        &caller,
        "bank.delete",
        &name,
        serde_json::json!({}),
        change,
    )
    .await?;
    Ok(Json(out))
}

/// Every entry of one bank, enabled or not.
#[utoipa::path(get, path = "/v1/banks/{name}/entries", tag = "banks",
    params(("name" = String, Path)),
    responses((status = 200, description = "the bank's entries"), (status = 404)),
    security(("bearer" = [])))]
pub async fn list_entries(
    AdminToken { ready, .. }: AdminToken,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<Vec<EntryRow>>, ApiError> {
    find_bank(&ready, &name).await?;
    Ok(Json(ready.store.list_bank_entries(&name).await?))
}

/// Add entries: JSON `{"entries": [{"signal", "hash", "external_id"}]}`, or an
/// image (`Content-Type: image/*`) whose hashes of the bank's signal types are added.
#[utoipa::path(post, path = "/v1/banks/{name}/entries", tag = "banks",
    params(("name" = String, Path), ImageEntryQuery),
    request_body(content((AddEntries = "application/json"), (Vec<u8> = "image/*"))),
    responses((status = 200, body = ChangeView), (status = 404), (status = 422)),
    security(("bearer" = [])))]
pub async fn add_entries(
    State(state): State<AppState>,
    AdminToken { ready, caller, .. }: AdminToken,
    headers: HeaderMap,
    UrlPath(name): UrlPath<String>,
    Query(query): Query<ImageEntryQuery>,
    body: Bytes,
) -> Result<Json<ChangeView>, ApiError> {
    let content_type = super::screening::content_type(&headers);
    let (entries, skipped, from_image) = if content_type.starts_with("application/json") {
        let request: AddEntries = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("JSON body: {e}")))?;
        let entries = request
            .entries
            .into_iter()
            .map(|e| {
                let signal = SignalType::parse(&e.signal).ok_or_else(|| {
                    invalid(format!(
                        "unknown signal type {:?} (expected {})",
                        e.signal,
                        known_signals()
                    ))
                })?;
                let hash = bank::normalise_hash(signal, e.hash.trim()).map_err(invalid)?;
                Ok(EntryWrite {
                    signal: signal.as_str().to_string(),
                    hash,
                    external_id: e.external_id,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        (entries, Vec::new(), false)
    } else if content_type.starts_with("image/") || content_type == "application/octet-stream" {
        let (entries, skipped) =
            entries_from_image(&ready, &state, &name, body, query.external_id).await?;
        (entries, skipped, true)
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Type {content_type:?}: send application/json entries or an image/*"),
        ));
    };
    if entries.is_empty() {
        return Err(invalid(if skipped.is_empty() {
            "no entries given".to_string()
        } else {
            format!("nothing to add: {}", skipped.join("; "))
        }));
    }
    let change = ready.store.add_entries(&name, &entries).await?;
    let detail = serde_json::json!({ "entries": entries, "from_image": from_image });
    let mut out = changed(&ready, &caller, "bank.add_entries", &name, detail, change).await?;
    out.skipped = skipped;
    if from_image {
        out.entries = entries;
    }
    Ok(Json(out))
}

/// Hash an uploaded image for the bank's signal types; a PDQ hash too weak to
/// match reliably is skipped with the reason.
async fn entries_from_image(
    ready: &Ready,
    state: &AppState,
    bank_name: &str,
    body: Bytes,
    external_id: Option<String>,
) -> Result<(Vec<EntryWrite>, Vec<String>), ApiError> {
    let bank = find_bank(ready, bank_name).await?;
    let limits = state.config().limits();
    let analysed = tokio::task::spawn_blocking(move || analyse(&body, &limits))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("hashing task failed: {e}"),
            )
        })??;
    // PDQ hashes below the policy's quality gate match noise: the gate matching applies.
    let min_quality = ready.pipeline.policy.pdq_min_quality;
    let built = image_entries(&analysed.exact, &analysed.pdq, min_quality, |signal| {
        crate::store::bank_holds(&bank.spec.signal_types, signal.as_str())
    });
    // The image's lines share one id, given or derived, so its matches name one entry and
    // one call disables them all.
    let external_id = external_id.or_else(|| {
        Some(crate::matching::image_entries::default_entry_id(
            &analysed.exact,
        ))
    });
    let entries = built
        .entries
        .into_iter()
        .map(|(signal, hash)| EntryWrite {
            signal: signal.as_str().to_string(),
            hash,
            external_id: external_id.clone(),
        })
        .collect();
    Ok((entries, built.skipped))
}

/// Bulk import of an HMA-format file (`<signal> <hash> [external id]` per line,
/// `#` comments): all lines or none; the first 20 bad lines are named, with the count.
/// Written in batches that screening never waits on, and matched from one version on, all
/// at once. Its body limit is `max_import_bytes`, not the image limit.
#[utoipa::path(post, path = "/v1/banks/{name}/import", tag = "banks",
    params(("name" = String, Path)),
    request_body(content = String, content_type = "text/plain"),
    responses((status = 200, body = ChangeView), (status = 404), (status = 422)),
    security(("bearer" = [])))]
pub async fn import_entries(
    AdminToken { ready, caller, .. }: AdminToken,
    UrlPath(name): UrlPath<String>,
    body: Bytes,
) -> Result<Json<ChangeView>, ApiError> {
    // A million lines take seconds to parse: off the async workers, and behind screenings.
    let entries = crate::matching::bank_work::run("import", move || parse_import_body(&body))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("import parsing task failed: {e}"),
            )
        })??;
    let change = ready.store.import_entries(&name, &entries).await?;
    let detail = serde_json::json!({ "lines": entries.len(), "added": change.changed });
    let out = changed(&ready, &caller, "bank.import", &name, detail, change).await?;
    Ok(Json(out))
}

/// The entries of an import body, or why none are imported.
fn parse_import_body(body: &[u8]) -> Result<Vec<EntryWrite>, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| invalid(format!("the import is not UTF-8 text: {e}")))?;
    let parsed = bank::parse_entries(text).map_err(|bad| {
        const SHOWN: usize = 20;
        let lines: Vec<String> = bad
            .iter()
            .take(SHOWN)
            .map(|b| format!("line {}: {}", b.line, b.detail))
            .collect();
        invalid(format!(
            "nothing was imported: {} malformed line(s): {}{}",
            bad.len(),
            lines.join("; "),
            if bad.len() > SHOWN { "; ..." } else { "" }
        ))
    })?;
    if parsed.is_empty() {
        return Err(invalid("the import has no entries"));
    }
    Ok(parsed
        .into_iter()
        .map(|e| EntryWrite {
            signal: e.signal.as_str().to_string(),
            hash: e.hash,
            external_id: e.external_id,
        })
        .collect())
}

/// Remove one entry.
#[utoipa::path(delete, path = "/v1/banks/{name}/entries/{signal}/{hash}", tag = "banks",
    params(("name" = String, Path), ("signal" = String, Path), ("hash" = String, Path)),
    responses((status = 200, body = ChangeView), (status = 404)),
    security(("bearer" = [])))]
pub async fn remove_entry(
    AdminToken { ready, caller, .. }: AdminToken,
    UrlPath((name, signal, hash)): UrlPath<(String, String, String)>,
) -> Result<Json<ChangeView>, ApiError> {
    let change = ready.store.remove_entry(&name, &signal, &hash).await?;
    if change.changed == 0 {
        return Err(ApiError::not_found(format!(
            "bank {name:?} has no {signal} entry {hash}"
        )));
    }
    let detail = serde_json::json!({ "signal": signal, "hash": hash });
    let out = changed(&ready, &caller, "bank.remove_entry", &name, detail, change).await?;
    Ok(Json(out))
}

/// Disable or re-enable one entry (kept for the record, matched only when enabled).
#[utoipa::path(patch, path = "/v1/banks/{name}/entries/{signal}/{hash}", tag = "banks",
    params(("name" = String, Path), ("signal" = String, Path), ("hash" = String, Path)),
    request_body = EntryPatch,
    responses((status = 200, body = ChangeView), (status = 404)),
    security(("bearer" = [])))]
pub async fn patch_entry(
    AdminToken { ready, caller, .. }: AdminToken,
    UrlPath((name, signal, hash)): UrlPath<(String, String, String)>,
    body: Bytes,
) -> Result<Json<ChangeView>, ApiError> {
    let patch = EntryPatch::parse(&body)?;
    let change = ready
        .store
        .set_entry_disabled(&name, &signal, &hash, patch.disabled)
        .await?;
    let action = if patch.disabled {
        "bank.disable_entry"
    } else {
        "bank.enable_entry"
    };
    let detail = serde_json::json!({ "signal": signal, "hash": hash });
    let out = changed(&ready, &caller, action, &name, detail, change).await?;
    Ok(Json(out))
}

/// Disable or re-enable every line of one entry id: an image-built entry's pdq, md5 and
/// region lines share it, so one call takes the whole picture out of matching.
#[utoipa::path(patch, path = "/v1/banks/{name}/entry-ids/{id}", tag = "banks",
    params(("name" = String, Path), ("id" = String, Path, description = "the entry id (external id) its lines share")),
    request_body = EntryPatch,
    responses((status = 200, body = ChangeView), (status = 404)),
    security(("bearer" = [])))]
pub async fn patch_entry_id(
    AdminToken { ready, caller, .. }: AdminToken,
    UrlPath((name, id)): UrlPath<(String, String)>,
    body: Bytes,
) -> Result<Json<ChangeView>, ApiError> {
    let patch = EntryPatch::parse(&body)?;
    let change = ready
        .store
        .set_entry_id_disabled(&name, &id, patch.disabled)
        .await?;
    let action = if patch.disabled {
        "bank.disable_entry_id"
    } else {
        "bank.enable_entry_id"
    };
    let detail = serde_json::json!({ "entry_id": id, "lines": change.changed });
    let out = changed(&ready, &caller, action, &name, detail, change).await?;
    Ok(Json(out))
}

/// What a retroactive match found.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RetroMatchView {
    /// Stored artworks compared.
    pub scanned: u64,
    /// Artworks newly taken out of public view, with their new screening ids.
    pub hits: Vec<RetroHitView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RetroHitView {
    pub artwork_id: String,
    pub screening_id: String,
    pub verdict: Verdict,
    /// The original bytes were fetched again and quarantined as evidence.
    pub evidence: bool,
    pub report_ids: Vec<String>,
}

/// Match this bank's current entries against the stored hashes of every artwork not
/// already quarantined, without fetching or inferring. Hits are quarantined, queued for
/// review and reported like any block.
#[utoipa::path(post, path = "/v1/banks/{name}/retro-match", tag = "banks",
    params(("name" = String, Path)),
    responses((status = 200, body = RetroMatchView), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn retro_match(
    AdminToken { ready, caller, .. }: AdminToken,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<RetroMatchView>, ApiError> {
    find_bank(&ready, &name).await?;
    let summary = ready
        .pipeline
        .retro_match(Some(&name), Some(&ready.http))
        .await?;
    let hits: Vec<RetroHitView> = summary
        .hits
        .into_iter()
        .map(|h| RetroHitView {
            artwork_id: h.artwork_id,
            screening_id: h.screening_id,
            verdict: h.verdict,
            evidence: h.evidence,
            report_ids: h.report_ids,
        })
        .collect();
    ready
        .store
        .append_audit(
            &caller.name,
            "bank.retro_match",
            &name,
            &serde_json::json!({
                "scanned": summary.scanned,
                "hits": hits.iter().map(|h| h.artwork_id.as_str()).collect::<Vec<_>>(),
            }),
        )
        .await?;
    Ok(Json(RetroMatchView {
        scanned: summary.scanned,
        hits,
    }))
}

fn known_signals() -> String {
    let known: Vec<&str> = SignalType::ALL.iter().map(SignalType::as_str).collect();
    known.join(", ")
}
