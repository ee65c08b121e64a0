//! Reports of hits: their payloads and the envelope they are delivered in.
//!
//! A hit (a bank match or a detection that led to `review`/`block`) becomes a
//! [`HitReport`]. A hit on a CSAM-category bank also becomes a
//! [`CyberTiplineReport`]: a JSON analogue of the report NCMEC's CyberTipline
//! Reporting API takes (its sections `reporter`, `incidentSummary`,
//! `internetDetails`, `personOrUserReported`, and per uploaded file
//! `fileDetails` with `originalFileHash`). Submitting to NCMEC itself (XML
//! against their current XSD, the submit/upload/fileinfo/finish sequence,
//! credentials) is out of scope here: a submission adapter can take this
//! payload from a webhook or implement [`ReportSink`](super::delivery::ReportSink) later.
//!
//! Delivery: each report is wrapped once into an [`OutboundReport`] whose body bytes and
//! idempotency key never change, so every retry sends the same bytes under the same key;
//! [`super::delivery`] classifies answers and schedules retries, [`super::webhook`] POSTs.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const HIT_REPORT_SCHEMA: &str = "coverguard.hit_report.v1";
pub const CYBERTIPLINE_SCHEMA: &str = "coverguard.cybertipline_report.v1";
/// Bank category whose hits produce a CyberTipline-shaped report.
pub const CSAM_BANK_CATEGORY: &str = "csam";

/// Whether a bank's `category` is [`CSAM_BANK_CATEGORY`] (in any case).
pub fn is_csam_category(category: Option<&str>) -> bool {
    category.is_some_and(|c| c.eq_ignore_ascii_case(CSAM_BANK_CATEGORY))
}
/// The CyberTipline schema's incident type for apparent CSAM, as enumerated
/// when this was written. The submission adapter must check it against the
/// XSD that NCMEC's API serves at the time of submission.
pub const INCIDENT_TYPE_CHILD_PORNOGRAPHY: &str =
    "Child Pornography (possession, manufacture, and distribution)";

pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";
pub const SIGNATURE_HEADER: &str = "X-Coverguard-Signature";
pub const REPORT_ID_HEADER: &str = "X-Coverguard-Report-Id";
pub const REPORT_KIND_HEADER: &str = "X-Coverguard-Report-Kind";

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("could not serialise the report: {detail}")]
    Serialize { detail: String },
    #[error("webhook URL {url:?} is not usable: {detail}")]
    InvalidUrl { url: String, detail: String },
    #[error("reporter information is incomplete: {detail}")]
    InvalidReporter { detail: String },
    #[error(
        "the hit has no match on a {CSAM_BANK_CATEGORY:?} bank; no CyberTipline report applies"
    )]
    NotCsamBankHit,
    #[error("could not build the HTTP client: {detail}")]
    Client { detail: String },
}

impl ReportError {
    /// Stable machine-readable kind.
    pub fn kind(&self) -> &'static str {
        match self {
            ReportError::Serialize { .. } => "serialize",
            ReportError::InvalidUrl { .. } => "invalid_url",
            ReportError::InvalidReporter { .. } => "invalid_reporter",
            ReportError::NotCsamBankHit => "not_csam_bank_hit",
            ReportError::Client { .. } => "client",
        }
    }
}

// ---------------------------------------------------------------------------
// Payloads
// ---------------------------------------------------------------------------

/// PDQ hash and quality of the screened image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PdqSummary {
    pub hash: String,
    pub quality: u32,
}

/// One bank match, as reported.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportMatch {
    pub bank: String,
    /// The bank's category from configuration (e.g. `csam`); decides whether a
    /// CyberTipline report applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_category: Option<String>,
    /// Signal type: `sha256`, `md5`, `pdq`, ...
    pub signal: String,
    pub distance: u32,
    pub entry: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<String>,
}

/// Detections of one label, folded: how many boxes and the highest score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectionSummary {
    pub label: String,
    pub count: u32,
    pub max_score: f32,
}

/// Fold `(label, score)` detections into one summary per label, sorted by label.
pub fn summarise_detections<'a>(
    detections: impl IntoIterator<Item = (&'a str, f32)>,
) -> Vec<DetectionSummary> {
    let mut by_label: std::collections::BTreeMap<&str, DetectionSummary> = Default::default();
    for (label, score) in detections {
        let summary = by_label.entry(label).or_insert_with(|| DetectionSummary {
            label: label.to_string(),
            count: 0,
            max_score: f32::NEG_INFINITY,
        });
        summary.count += 1;
        summary.max_score = summary.max_score.max(score);
    }
    by_label.into_values().collect()
}

/// Where the upload came from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportSource {
    /// Product surface: `playlist_cover`, `track_art`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surface: Option<String>,
    /// The URL the image was fetched from, when screened by URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Whether the image was publicly visible when reported. Pre-publication
    /// screening means false; a takedown of stored artwork may mean true.
    #[serde(default)]
    pub publicly_available: bool,
}

/// What a hit report says. Timestamps are RFC 3339 UTC ([`rfc3339_utc`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HitReport {
    pub schema: String,
    pub screening_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artwork_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    pub sha256: String,
    pub md5: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pdq: Option<PdqSummary>,
    /// `review` or `block`.
    pub verdict: String,
    pub reasons: Vec<String>,
    pub matches: Vec<ReportMatch>,
    pub detections: Vec<DetectionSummary>,
    pub uploaded_at: String,
    pub source: ReportSource,
}

impl HitReport {
    /// Whether any match is on a CSAM-category bank (case-insensitive).
    pub fn is_csam_bank_hit(&self) -> bool {
        self.csam_matches().next().is_some()
    }

    fn csam_matches(&self) -> impl Iterator<Item = &ReportMatch> {
        self.matches
            .iter()
            .filter(|m| is_csam_category(m.bank_category.as_deref()))
    }
}

/// The reporting company's details, from configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReporterInfo {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Name of the service the owner account belongs to (`espService`).
    pub esp_service: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms_of_service: Option<String>,
}

/// JSON analogue of a CyberTipline report: the report document and its files.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CyberTiplineReport {
    pub schema: String,
    pub report: CyberTiplineBody,
    pub files: Vec<CyberTiplineFile>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CyberTiplineBody {
    pub incident_summary: IncidentSummary,
    pub internet_details: Vec<InternetDetails>,
    pub reporter: Reporter,
    pub person_or_user_reported: PersonOrUserReported,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_info: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IncidentSummary {
    pub incident_type: String,
    /// When the incident happened: the upload time.
    pub incident_date_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_date_time_description: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InternetDetails {
    pub web_page_incident: WebPageIncident,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebPageIncident {
    pub url: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_info: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reporter {
    pub reporting_person: ReportingPerson,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms_of_service: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportingPerson {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// The uploader's account ("reportedPerson"; NCMEC names the section `personOrUserReported`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonOrUserReported {
    /// The service's own id of the account.
    pub esp_identifier: String,
    pub esp_service: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CyberTiplineFile {
    pub file_details: FileDetails,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location_of_file: Option<String>,
    /// False: the match was automated; nobody at the service looked at the image.
    pub file_viewed_by_esp: bool,
    pub exif_viewed_by_esp: bool,
    pub publicly_available: bool,
    pub original_file_hash: Vec<FileHash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_info: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileHash {
    pub hash_type: String,
    pub value: String,
}

/// Build the CyberTipline-shaped report for a hit on a CSAM-category bank.
pub fn build_cybertipline_report(
    hit: &HitReport,
    reporter: &ReporterInfo,
) -> Result<CyberTiplineReport, ReportError> {
    if !hit.is_csam_bank_hit() {
        return Err(ReportError::NotCsamBankHit);
    }
    for (field, value) in [
        ("first_name", &reporter.first_name),
        ("last_name", &reporter.last_name),
        ("email", &reporter.email),
        ("esp_service", &reporter.esp_service),
    ] {
        if value.trim().is_empty() {
            return Err(ReportError::InvalidReporter {
                detail: format!("{field} is empty"),
            });
        }
    }
    if !reporter.email.contains('@') {
        return Err(ReportError::InvalidReporter {
            detail: "email has no '@'".to_string(),
        });
    }

    let surface = hit
        .source
        .surface
        .as_deref()
        .unwrap_or("unspecified surface");
    let mut hashes = vec![
        FileHash {
            hash_type: "SHA256".to_string(),
            value: hit.sha256.clone(),
        },
        FileHash {
            hash_type: "MD5".to_string(),
            value: hit.md5.clone(),
        },
    ];
    if let Some(pdq) = &hit.pdq {
        hashes.push(FileHash {
            hash_type: "PDQ".to_string(),
            value: pdq.hash.clone(),
        });
    }
    let match_lines: Vec<String> = hit
        .csam_matches()
        .map(|m| {
            format!(
                "matched bank {:?} entry {:?} by {} at distance {}",
                m.bank, m.entry, m.signal, m.distance
            )
        })
        .collect();
    let mut artwork = format!("Uploaded as {surface} at {}", hit.uploaded_at);
    if let Some(artwork_id) = &hit.artwork_id {
        artwork.push_str(&format!(", artwork id {artwork_id}"));
    }
    artwork.push_str(&format!(", screening id {}", hit.screening_id));

    Ok(CyberTiplineReport {
        schema: CYBERTIPLINE_SCHEMA.to_string(),
        report: CyberTiplineBody {
            incident_summary: IncidentSummary {
                incident_type: INCIDENT_TYPE_CHILD_PORNOGRAPHY.to_string(),
                incident_date_time: hit.uploaded_at.clone(),
                incident_date_time_description: Some(format!(
                    "Time the image was uploaded as {surface}; detected by automated hash matching before publication was allowed"
                )),
            },
            internet_details: hit
                .source
                .url
                .iter()
                .map(|url| InternetDetails {
                    web_page_incident: WebPageIncident {
                        url: vec![url.clone()],
                        additional_info: Some(format!("Image fetched from this URL for the {surface} upload")),
                    },
                })
                .collect(),
            reporter: Reporter {
                reporting_person: ReportingPerson {
                    first_name: reporter.first_name.clone(),
                    last_name: reporter.last_name.clone(),
                    email: reporter.email.clone(),
                    phone: reporter.phone.clone(),
                },
                company_template: reporter.company_template.clone(),
                terms_of_service: reporter.terms_of_service.clone(),
            },
            person_or_user_reported: PersonOrUserReported {
                esp_identifier: hit.owner_id.clone().unwrap_or_else(|| "unknown".to_string()),
                esp_service: reporter.esp_service.clone(),
            },
            additional_info: Some(artwork),
        },
        files: vec![CyberTiplineFile {
            file_details: FileDetails {
                location_of_file: hit.source.url.clone(),
                file_viewed_by_esp: false,
                exif_viewed_by_esp: false,
                publicly_available: hit.source.publicly_available,
                original_file_hash: hashes,
                additional_info: Some(match_lines.join("; ")),
            },
        }],
    })
}

/// RFC 3339 UTC timestamp with second precision, e.g. `2026-11-23T11:09:40Z`.
/// Times before 1970 are clamped to the epoch.
pub fn rfc3339_utc(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (the era-based
/// method: 400-year eras of 146 097 days, years starting in March).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

// ---------------------------------------------------------------------------
// Outbound envelope
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    Hit,
    Cybertipline,
    /// A reviewer's confirm or release; on release it tells the caller to publish.
    Decision,
    /// An account takedown, or its lift: about an owner, not one screening.
    Account,
    /// Art that was public is now held or quarantined: take it down.
    Unpublish,
    /// The outcome of an owner's appeal: publish again, or keep removed.
    Appeal,
}

impl ReportKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ReportKind::Hit => "hit",
            ReportKind::Cybertipline => "cybertipline",
            ReportKind::Decision => "decision",
            ReportKind::Account => "account",
            ReportKind::Unpublish => "unpublish",
            ReportKind::Appeal => "appeal",
        }
    }
}

impl fmt::Display for ReportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The idempotency key of the report of `kind` about `subject_id` (the
/// screening id: one report of each kind per screening). Derived, not random,
/// so re-creating the outbox row after a crash yields the same key.
pub fn idempotency_key(kind: ReportKind, subject_id: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"coverguard report v1\0");
    hasher.update(kind.as_str().as_bytes());
    hasher.update(b"\0");
    hasher.update(subject_id.as_bytes());
    format!("cgr_{}", hex::encode(hasher.finalize()))
}

/// The envelope every sink receives, serialised once.
#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    report_id: &'a str,
    kind: ReportKind,
    idempotency_key: &'a str,
    created_at: &'a str,
    payload: &'a T,
}

/// A report ready to deliver: fixed body bytes and idempotency key. The outbox
/// stores these fields and rebuilds it with [`OutboundReport::from_stored`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundReport {
    pub report_id: String,
    pub kind: ReportKind,
    pub idempotency_key: String,
    /// JSON: `{"report_id", "kind", "idempotency_key", "created_at", "payload"}`.
    pub body: Vec<u8>,
}

impl OutboundReport {
    pub fn hit(
        report_id: &str,
        hit: &HitReport,
        created_at: SystemTime,
    ) -> Result<OutboundReport, ReportError> {
        OutboundReport::wrap(
            report_id,
            ReportKind::Hit,
            &hit.screening_id,
            hit,
            created_at,
        )
    }

    /// `screening_id` is the subject of the idempotency key.
    pub fn cybertipline(
        report_id: &str,
        screening_id: &str,
        report: &CyberTiplineReport,
        created_at: SystemTime,
    ) -> Result<OutboundReport, ReportError> {
        OutboundReport::wrap(
            report_id,
            ReportKind::Cybertipline,
            screening_id,
            report,
            created_at,
        )
    }

    fn wrap<T: Serialize>(
        report_id: &str,
        kind: ReportKind,
        subject_id: &str,
        payload: &T,
        created_at: SystemTime,
    ) -> Result<OutboundReport, ReportError> {
        let idempotency_key = idempotency_key(kind, subject_id);
        let created_at = rfc3339_utc(created_at);
        let body = serde_json::to_vec(&Envelope {
            report_id,
            kind,
            idempotency_key: &idempotency_key,
            created_at: &created_at,
            payload,
        })
        .map_err(|e| ReportError::Serialize {
            detail: e.to_string(),
        })?;
        Ok(OutboundReport {
            report_id: report_id.to_string(),
            kind,
            idempotency_key,
            body,
        })
    }

    pub fn from_stored(
        report_id: String,
        kind: ReportKind,
        idempotency_key: String,
        body: Vec<u8>,
    ) -> OutboundReport {
        OutboundReport {
            report_id,
            kind,
            idempotency_key,
            body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    use crate::act::delivery::{
        classify_status, deliver_with_retries, next_attempt_delay, next_attempt_delay_with_jitter,
        retry_delay, DeliveryOutcome, ReportSink, BACKOFF_MAX, BACKOFF_MIN,
        PERMANENT_FAILURE_RETRY,
    };
    use crate::act::test_webhook::{Reply, TestWebhook};
    use crate::act::webhook::{
        sign_body, verify_signature, WebhookConfig, WebhookSecret, WebhookSink,
    };

    fn sample_hit(category: Option<&str>) -> HitReport {
        HitReport {
            schema: HIT_REPORT_SCHEMA.to_string(),
            screening_id: "scr_0001".to_string(),
            artwork_id: Some("art_42".to_string()),
            owner_id: Some("user_7".to_string()),
            sha256: "a".repeat(64),
            md5: "b".repeat(32),
            pdq: Some(PdqSummary {
                hash: "c".repeat(64),
                quality: 100,
            }),
            verdict: "block".to_string(),
            reasons: vec!["bank match".to_string()],
            matches: vec![ReportMatch {
                bank: "known-bad".to_string(),
                bank_category: category.map(str::to_string),
                signal: "pdq".to_string(),
                distance: 4,
                entry: "entry-1".to_string(),
                transform: Some("rotate90".to_string()),
            }],
            detections: summarise_detections([
                ("FEMALE_BREAST_EXPOSED", 0.8),
                ("FEMALE_BREAST_EXPOSED", 0.9),
            ]),
            uploaded_at: rfc3339_utc(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            source: ReportSource {
                surface: Some("playlist_cover".to_string()),
                url: Some("https://uploads.invalid/img.png".to_string()),
                publicly_available: false,
            },
        }
    }

    fn reporter() -> ReporterInfo {
        ReporterInfo {
            first_name: "Trust".to_string(),
            last_name: "Safety".to_string(),
            email: "safety@example.org".to_string(),
            phone: None,
            esp_service: "Example Music playlists".to_string(),
            company_template: None,
            terms_of_service: None,
        }
    }

    fn outbound() -> OutboundReport {
        OutboundReport::hit(
            "rep_1",
            &sample_hit(None),
            UNIX_EPOCH + Duration::from_secs(1_700_000_100),
        )
        .unwrap()
    }

    fn sink(url: &str, secret: Option<&str>, timeout: Duration) -> WebhookSink {
        WebhookSink::new(WebhookConfig {
            name: "test".to_string(),
            url: url.to_string(),
            secret: secret.map(WebhookSecret::new),
            timeout,
        })
        .unwrap()
    }

    const FAST_RETRY: fn(u32, &DeliveryOutcome) -> Option<Duration> =
        |_, _| Some(Duration::from_millis(10));

    #[tokio::test]
    async fn delivery_sends_json_with_idempotency_key_and_signature() {
        let server = TestWebhook::start(vec![Reply::Status(202)]);
        let sink = sink(server.url(), Some("s3cret"), Duration::from_secs(5));
        let report = outbound();
        assert_eq!(
            sink.deliver(&report).await,
            DeliveryOutcome::Acknowledged { status: 202 }
        );

        let requests = server.requests();
        assert_eq!(requests.len(), 1);
        let request = &requests[0];
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/hook");
        assert_eq!(request.headers["content-type"], "application/json");
        assert_eq!(request.headers["idempotency-key"], report.idempotency_key);
        assert_eq!(request.headers["x-coverguard-report-kind"], "hit");
        assert_eq!(request.headers["x-coverguard-report-id"], "rep_1");
        assert_eq!(request.body, report.body);
        let signature = &request.headers["x-coverguard-signature"];
        assert!(verify_signature(
            &WebhookSecret::new("s3cret"),
            &request.body,
            signature
        ));
        assert!(!verify_signature(
            &WebhookSecret::new("other"),
            &request.body,
            signature
        ));

        let json: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(json["kind"], "hit");
        assert_eq!(json["report_id"], "rep_1");
        assert_eq!(json["idempotency_key"], report.idempotency_key.as_str());
        assert_eq!(json["created_at"], "2023-11-14T22:15:00Z");
        assert_eq!(json["payload"]["schema"], HIT_REPORT_SCHEMA);
        assert_eq!(json["payload"]["screening_id"], "scr_0001");
        assert_eq!(json["payload"]["uploaded_at"], "2023-11-14T22:13:20Z");
        assert_eq!(json["payload"]["detections"][0]["count"], 2);
    }

    #[tokio::test]
    async fn no_signature_header_without_a_secret() {
        let server = TestWebhook::start(vec![]);
        let sink = sink(server.url(), None, Duration::from_secs(5));
        assert!(sink.deliver(&outbound()).await.is_acknowledged());
        assert!(!server.requests()[0]
            .headers
            .contains_key("x-coverguard-signature"));
    }

    #[tokio::test]
    async fn server_failing_twice_then_succeeding_is_delivered_on_the_third_attempt() {
        let server = TestWebhook::start(vec![
            Reply::Status(503),
            Reply::Status(500),
            Reply::Status(200),
        ]);
        let sink = sink(server.url(), Some("k"), Duration::from_secs(5));
        let report = outbound();
        let result = deliver_with_retries(&sink, &report, 5, FAST_RETRY).await;
        assert_eq!(
            result.outcome,
            DeliveryOutcome::Acknowledged { status: 200 }
        );
        assert_eq!(result.attempts, 3);

        let requests = server.requests();
        assert_eq!(requests.len(), 3);
        for request in &requests {
            assert_eq!(request.headers["idempotency-key"], report.idempotency_key);
            assert_eq!(
                request.body, report.body,
                "retries must send identical bytes"
            );
            assert_eq!(
                request.headers["x-coverguard-signature"],
                requests[0].headers["x-coverguard-signature"]
            );
        }
        // Rebuilt from the outbox's stored fields: same key, same bytes.
        let again = outbound();
        assert_eq!(again, report);
    }

    #[tokio::test]
    async fn retries_stop_at_max_attempts_and_on_permanent_failure() {
        let server = TestWebhook::start(vec![Reply::Status(502); 3]);
        let sink = sink(server.url(), None, Duration::from_secs(5));
        let result = deliver_with_retries(&sink, &outbound(), 2, FAST_RETRY).await;
        assert_eq!(result.attempts, 2);
        assert_eq!(result.outcome.kind(), "retryable");

        let server = TestWebhook::start(vec![Reply::Status(400), Reply::Status(200)]);
        let sink = self::sink(server.url(), None, Duration::from_secs(5));
        let result = deliver_with_retries(&sink, &outbound(), 5, FAST_RETRY).await;
        assert_eq!(result.attempts, 1);
        assert_eq!(
            result.outcome,
            DeliveryOutcome::Permanent {
                reason: "HTTP 400".to_string(),
                status: Some(400)
            }
        );
    }

    #[tokio::test]
    async fn client_errors_are_permanent_and_throttling_is_retryable() {
        let server = TestWebhook::start(vec![
            Reply::Status(404),
            Reply::Status(401),
            Reply::StatusWithRetryAfter(429, 7),
            Reply::Status(408),
            Reply::Status(301),
        ]);
        let sink = sink(server.url(), None, Duration::from_secs(5));
        let report = outbound();
        assert!(matches!(
            sink.deliver(&report).await,
            DeliveryOutcome::Permanent {
                status: Some(404),
                ..
            }
        ));
        assert!(matches!(
            sink.deliver(&report).await,
            DeliveryOutcome::Permanent {
                status: Some(401),
                ..
            }
        ));
        let throttled = sink.deliver(&report).await;
        assert_eq!(
            throttled,
            DeliveryOutcome::Retryable {
                reason: "HTTP 429".to_string(),
                status: Some(429),
                retry_after: Some(Duration::from_secs(7)),
            }
        );
        assert!(retry_delay(&throttled, 1).unwrap() >= Duration::from_secs(7));
        assert!(matches!(
            sink.deliver(&report).await,
            DeliveryOutcome::Retryable {
                status: Some(408),
                ..
            }
        ));
        // Redirects are not followed.
        assert!(matches!(
            sink.deliver(&report).await,
            DeliveryOutcome::Permanent {
                status: Some(301),
                ..
            }
        ));
        assert_eq!(server.requests().len(), 5);

        for status in [200, 201, 204, 299] {
            assert!(classify_status(status, None).is_acknowledged());
        }
        for status in [408, 429, 500, 502, 503, 504, 599] {
            assert_eq!(
                classify_status(status, None).kind(),
                "retryable",
                "{status}"
            );
        }
        for status in [300, 304, 400, 401, 403, 404, 409, 410, 413, 422] {
            assert_eq!(
                classify_status(status, None).kind(),
                "permanent",
                "{status}"
            );
        }
        let permanent = classify_status(410, None);
        assert_eq!(retry_delay(&permanent, 1), Some(PERMANENT_FAILURE_RETRY));
        assert_eq!(retry_delay(&classify_status(200, None), 1), None);
    }

    #[tokio::test]
    async fn a_slow_receiver_times_out_as_retryable() {
        let server = TestWebhook::start(vec![Reply::Stall(Duration::from_millis(1500))]);
        let sink = sink(server.url(), None, Duration::from_millis(300));
        let started = Instant::now();
        let outcome = sink.deliver(&outbound()).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        match outcome {
            DeliveryOutcome::Retryable {
                reason,
                status: None,
                ..
            } => assert_eq!(reason, "timed out"),
            other => panic!("expected a retryable timeout, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_dead_receiver_is_retryable() {
        // Bound but not listening: the port is held, and connections to it are refused.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
        let url = format!("http://{}/hook", socket.local_addr().unwrap());
        let sink = sink(&url, None, Duration::from_secs(2));
        assert_eq!(sink.deliver(&outbound()).await.kind(), "retryable");
    }

    #[test]
    fn bad_webhook_urls_are_refused() {
        for url in ["not a url", "ftp://example.org/hook", "file:///etc/passwd"] {
            let err = WebhookSink::new(WebhookConfig {
                name: "x".to_string(),
                url: url.to_string(),
                secret: None,
                timeout: WebhookConfig::DEFAULT_TIMEOUT,
            })
            .unwrap_err();
            assert_eq!(err.kind(), "invalid_url", "{url}");
        }
    }

    #[test]
    fn hmac_matches_rfc4231_and_secrets_are_not_printed() {
        // RFC 4231 test case 2.
        let secret = WebhookSecret::new("Jefe");
        let signature = sign_body(&secret, b"what do ya want for nothing?");
        assert_eq!(
            signature,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(verify_signature(
            &secret,
            b"what do ya want for nothing?",
            &signature
        ));
        assert!(!verify_signature(
            &secret,
            b"what do ya want for nothing!",
            &signature
        ));
        assert!(!verify_signature(
            &secret,
            b"what do ya want for nothing?",
            &signature[7..]
        ));
        assert!(!verify_signature(
            &secret,
            b"what do ya want for nothing?",
            "sha256=zz"
        ));
        let config = WebhookConfig {
            name: "x".to_string(),
            url: "http://127.0.0.1:9/".to_string(),
            secret: Some(secret.clone()),
            timeout: WebhookConfig::DEFAULT_TIMEOUT,
        };
        assert!(!format!("{secret:?} {config:?}").contains("Jefe"));
        let sink = WebhookSink::new(config).unwrap();
        assert!(!format!("{sink:?}").contains("Jefe"));
    }

    #[test]
    fn backoff_doubles_within_bounds_with_jitter() {
        assert_eq!(next_attempt_delay_with_jitter(0, 0.5), BACKOFF_MIN);
        assert_eq!(next_attempt_delay_with_jitter(1, 0.0), BACKOFF_MIN);
        assert_eq!(next_attempt_delay_with_jitter(1, 1.0), BACKOFF_MIN);
        assert_eq!(
            next_attempt_delay_with_jitter(2, 0.0),
            Duration::from_secs(5)
        );
        assert_eq!(
            next_attempt_delay_with_jitter(2, 1.0),
            Duration::from_secs(10)
        );
        assert_eq!(
            next_attempt_delay_with_jitter(3, 0.0),
            Duration::from_secs(10)
        );
        assert_eq!(
            next_attempt_delay_with_jitter(3, 1.0),
            Duration::from_secs(20)
        );
        assert_eq!(
            next_attempt_delay_with_jitter(5, 0.5),
            Duration::from_secs(60)
        );
        for attempts in [12, 30, 1000, u32::MAX] {
            assert_eq!(next_attempt_delay_with_jitter(attempts, 1.0), BACKOFF_MAX);
            assert_eq!(
                next_attempt_delay_with_jitter(attempts, 0.0),
                BACKOFF_MAX / 2
            );
        }
        assert_eq!(
            next_attempt_delay_with_jitter(4, f64::NAN),
            Duration::from_secs(40)
        );
        let mut distinct = std::collections::HashSet::new();
        for attempts in 1..40 {
            let delay = next_attempt_delay(attempts);
            assert!(
                (BACKOFF_MIN..=BACKOFF_MAX).contains(&delay),
                "{attempts}: {delay:?}"
            );
            distinct.insert(delay);
        }
        assert!(distinct.len() > 10, "jitter should spread delays");
    }

    #[test]
    fn cybertipline_report_for_a_csam_bank_hit() {
        assert!(matches!(
            build_cybertipline_report(&sample_hit(Some("adult")), &reporter()),
            Err(ReportError::NotCsamBankHit)
        ));
        assert!(matches!(
            build_cybertipline_report(&sample_hit(None), &reporter()),
            Err(ReportError::NotCsamBankHit)
        ));
        let mut incomplete = reporter();
        incomplete.email = " ".to_string();
        assert!(matches!(
            build_cybertipline_report(&sample_hit(Some("CSAM")), &incomplete),
            Err(ReportError::InvalidReporter { .. })
        ));

        let hit = sample_hit(Some("CSAM"));
        let report = build_cybertipline_report(&hit, &reporter()).unwrap();
        let json = serde_json::to_value(&report).unwrap();
        let body = &json["report"];
        assert_eq!(json["schema"], CYBERTIPLINE_SCHEMA);
        assert_eq!(
            body["incidentSummary"]["incidentType"],
            INCIDENT_TYPE_CHILD_PORNOGRAPHY
        );
        assert_eq!(
            body["incidentSummary"]["incidentDateTime"],
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            body["reporter"]["reportingPerson"]["email"],
            "safety@example.org"
        );
        assert_eq!(body["personOrUserReported"]["espIdentifier"], "user_7");
        assert_eq!(
            body["personOrUserReported"]["espService"],
            "Example Music playlists"
        );
        assert_eq!(
            body["internetDetails"][0]["webPageIncident"]["url"][0],
            "https://uploads.invalid/img.png"
        );
        assert!(body["additionalInfo"].as_str().unwrap().contains("art_42"));
        let file = &json["files"][0]["fileDetails"];
        assert_eq!(file["fileViewedByEsp"], false);
        assert_eq!(file["publiclyAvailable"], false);
        assert_eq!(file["locationOfFile"], "https://uploads.invalid/img.png");
        let hashes = file["originalFileHash"].as_array().unwrap();
        assert_eq!(
            hashes[0],
            serde_json::json!({"hashType": "SHA256", "value": hit.sha256})
        );
        assert_eq!(
            hashes[1],
            serde_json::json!({"hashType": "MD5", "value": hit.md5})
        );
        assert_eq!(hashes[2]["hashType"], "PDQ");
        assert!(file["additionalInfo"]
            .as_str()
            .unwrap()
            .contains("known-bad"));
        assert!(body.get("phone").is_none());

        // It rides the same envelope under its own idempotency key.
        let outbound =
            OutboundReport::cybertipline("rep_2", &hit.screening_id, &report, SystemTime::now())
                .unwrap();
        assert_eq!(outbound.kind, ReportKind::Cybertipline);
        assert_ne!(
            outbound.idempotency_key,
            idempotency_key(ReportKind::Hit, &hit.screening_id)
        );
        let parsed: serde_json::Value = serde_json::from_slice(&outbound.body).unwrap();
        assert_eq!(parsed["payload"], json);
        let back: CyberTiplineReport = serde_json::from_value(parsed["payload"].clone()).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn hit_report_round_trips_and_keys_are_stable() {
        let hit = sample_hit(Some("csam"));
        let json = serde_json::to_string(&hit).unwrap();
        assert_eq!(serde_json::from_str::<HitReport>(&json).unwrap(), hit);
        assert!(hit.is_csam_bank_hit());
        let a = idempotency_key(ReportKind::Hit, "scr_1");
        assert_eq!(a, idempotency_key(ReportKind::Hit, "scr_1"));
        assert_ne!(a, idempotency_key(ReportKind::Hit, "scr_2"));
        assert!(a.starts_with("cgr_") && a.len() == 4 + 64);
        let summary = summarise_detections([("b", 0.2), ("a", 0.5), ("b", 0.7)]);
        assert_eq!(
            summary
                .iter()
                .map(|s| (s.label.as_str(), s.count))
                .collect::<Vec<_>>(),
            [("a", 1), ("b", 2)]
        );
        assert_eq!(summary[1].max_score, 0.7);
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let at = |secs: u64| rfc3339_utc(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(at(4_102_444_799), "2099-12-31T23:59:59Z");
        assert_eq!(at(4_107_542_400), "2100-03-01T00:00:00Z");
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00Z"
        );
    }
}
