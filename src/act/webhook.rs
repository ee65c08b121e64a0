//! The webhook report sink: a signed JSON POST per report, its answer classified by
//! [`classify_status`].

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::delivery::{classify_status, DeliveryOutcome, ReportSink};
use super::report::{
    OutboundReport, ReportError, IDEMPOTENCY_KEY_HEADER, REPORT_ID_HEADER, REPORT_KIND_HEADER,
    SIGNATURE_HEADER,
};

/// Shared secret for webhook signatures. Never printed.
#[derive(Clone)]
pub struct WebhookSecret(Zeroizing<Vec<u8>>);

impl WebhookSecret {
    pub fn new(secret: impl Into<Vec<u8>>) -> WebhookSecret {
        WebhookSecret(Zeroizing::new(secret.into()))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

type HmacSha256 = Hmac<Sha256>;

/// `sha256=<hex>` HMAC-SHA256 of `body` under `secret`: the value of [`SIGNATURE_HEADER`].
pub fn sign_body(secret: &WebhookSecret, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.as_bytes(), body))
    )
}

/// Check a [`SIGNATURE_HEADER`] value in constant time (for receivers and tests).
pub fn verify_signature(secret: &WebhookSecret, body: &[u8], header_value: &str) -> bool {
    let Some(hex_digest) = header_value.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(claimed) = hex::decode(hex_digest) else {
        return false;
    };
    match <HmacSha256 as Mac>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            mac.verify_slice(&claimed).is_ok()
        }
        Err(_) => false,
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length, so construction cannot fail; the zero
    // fallback is unreachable and would only ever produce a non-verifying signature.
    match <HmacSha256 as Mac>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message);
            mac.finalize().into_bytes().into()
        }
        Err(_) => [0u8; 32],
    }
}

/// Configuration of one webhook.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    pub name: String,
    pub url: String,
    pub secret: Option<WebhookSecret>,
    /// Whole-request timeout (connect, send, answer).
    pub timeout: Duration,
}

impl WebhookConfig {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
}

/// POSTs reports as JSON to one URL.
#[derive(Clone, Debug)]
pub struct WebhookSink {
    name: String,
    url: reqwest::Url,
    secret: Option<WebhookSecret>,
    client: reqwest::Client,
}

impl WebhookSink {
    pub fn new(config: WebhookConfig) -> Result<WebhookSink, ReportError> {
        let url = reqwest::Url::parse(&config.url).map_err(|e| ReportError::InvalidUrl {
            url: config.url.clone(),
            detail: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ReportError::InvalidUrl {
                url: config.url,
                detail: "scheme must be http or https".to_string(),
            });
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("coverguard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ReportError::Client {
                detail: e.to_string(),
            })?;
        Ok(WebhookSink {
            name: config.name,
            url,
            secret: config.secret,
            client,
        })
    }

    pub fn url(&self) -> &str {
        self.url.as_str()
    }
}

/// `Retry-After` in delta-seconds (the HTTP-date form is ignored: backoff still applies).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[async_trait]
impl ReportSink for WebhookSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, report: &OutboundReport) -> DeliveryOutcome {
        let mut request = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(IDEMPOTENCY_KEY_HEADER, &report.idempotency_key)
            .header(REPORT_ID_HEADER, &report.report_id)
            .header(REPORT_KIND_HEADER, report.kind.as_str());
        if let Some(secret) = &self.secret {
            request = request.header(SIGNATURE_HEADER, sign_body(secret, &report.body));
        }
        let outcome = match request.body(report.body.clone()).send().await {
            Ok(response) => {
                classify_status(response.status().as_u16(), retry_after(response.headers()))
            }
            Err(e) if e.is_builder() => DeliveryOutcome::Permanent {
                reason: format!("request could not be built: {e}"),
                status: None,
            },
            Err(e) => DeliveryOutcome::Retryable {
                reason: if e.is_timeout() {
                    "timed out".to_string()
                } else if e.is_connect() {
                    format!("connection failed: {e}")
                } else {
                    format!("request failed: {e}")
                },
                status: None,
                retry_after: None,
            },
        };
        match &outcome {
            DeliveryOutcome::Acknowledged { .. } => {
                tracing::info!(sink = %self.name, report_id = %report.report_id, kind = %report.kind, "report delivered")
            }
            DeliveryOutcome::Retryable { reason, .. } => {
                tracing::warn!(sink = %self.name, report_id = %report.report_id, %reason, "report delivery failed; will retry")
            }
            DeliveryOutcome::Permanent { reason, .. } => {
                tracing::error!(sink = %self.name, report_id = %report.report_id, %reason, "report refused by receiver; retrying slowly, needs an operator")
            }
        }
        outcome
    }
}
