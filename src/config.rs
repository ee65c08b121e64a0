//! Service configuration: one TOML file, then environment overrides.
//!
//! With no file at all, `coverguard serve` runs on the embedded defaults: a
//! SQLite store and an encrypted quarantine under `./data`, listening on
//! loopback only.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::act::report::ReporterInfo;
use crate::decode::{DecodeLimits, Resolution};
use crate::fetch::DestinationPolicy;
use crate::screening::scheduler::SchedulerConfig;

/// Environment variables that override the file.
pub const ENV_LISTEN: &str = "COVERGUARD_LISTEN";
pub const ENV_DATA_DIR: &str = "COVERGUARD_DATA_DIR";
pub const ENV_DATABASE_URL: &str = "DATABASE_URL";
pub const ENV_QUARANTINE_KEY: &str = "COVERGUARD_QUARANTINE_KEY";

/// `Debug` is written by hand below: the quarantine key and a database URL's password
/// never print.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceConfig {
    /// Address to listen on.
    pub listen: String,
    /// Where the embedded defaults keep their files.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; default: SQLite at `<data_dir>/coverguard.db`.
    pub database_url: Option<String>,
    /// Quarantine directory; default `<data_dir>/quarantine`.
    pub quarantine_dir: Option<PathBuf>,
    /// AES-256 key, 64 hex digits or base64. Without one, a key is generated
    /// once into `<data_dir>/quarantine.key` (local development); a shared store
    /// (Postgres) refuses to run without one.
    pub quarantine_key: Option<String>,
    /// How long quarantined evidence is kept (US law: a year for reported content).
    pub retention_days: u32,
    /// Also quarantine `review` verdicts, not only `block` (the default): the encrypted copy is
    /// what reviewers look at in the console. Off, a review verdict only holds the artwork and
    /// the console can show the item's scores and matches but not its image.
    pub quarantine_on_review: bool,
    /// Default request deadline; callers may lower it.
    pub request_deadline_ms: u64,
    pub max_bytes: usize,
    /// Largest body of `POST /v1/banks/{name}/import` (an HMA hash list, ~80 bytes a line):
    /// larger than an image's, so a 1M-line list goes in one request. Default 256 MiB.
    pub max_import_bytes: usize,
    pub max_pixels: u64,
    pub max_side: u32,
    /// Most frames of one animation decoded; a longer one is refused (`animation_budget`).
    pub max_frames: u32,
    /// Most canvas pixels decoded over all frames of one animation.
    pub max_animation_pixels: u64,
    /// Most distinct frames and renderings screened beyond the reference decoding.
    pub max_views: u32,
    /// The page colours art is shown on: a translucent image is screened composited over
    /// each (default white, black and #121212).
    pub page_colours: Vec<crate::screening::views::PageColour>,
    /// How much of a JPEG screening decodes: `"full"` (the default: every pixel, so PDQ is
    /// bit-exact with Meta's reference and scores are the oracle's), or
    /// `{ long_side_at_least = N }` (the smallest DCT scale keeping the longer side at N px
    /// or more; see [`Resolution::FAST`] for what 1024 costs in PDQ drift).
    pub decode_resolution: Resolution,
    /// Seconds allowed to fetch an image by URL.
    pub url_timeout_secs: u64,
    /// `[url_fetch]`: where screening by URL may connect. By default only public
    /// addresses on ports 80 and 443; `allow_networks` and `allow_ports` widen it.
    pub url_fetch: DestinationPolicy,
    /// Policy overrides (same format as `scan --policy`).
    pub policy_file: Option<PathBuf>,
    /// A keyword list for the text rules (same format as `scan --keywords`).
    pub keyword_file: Option<PathBuf>,
    pub scheduler: SchedulerConfig,
    /// Intra-op threads per inference session (0: ONNX Runtime decides). Default 1, with
    /// one session per core (`[scheduler] workers`): see README: Performance.
    pub intra_threads: usize,
    pub webhooks: Vec<WebhookConfig>,
    /// How long a replica holds a report it is delivering before another may send it
    /// (60): longer than a delivery may take (10 s), and what the reports a replica was
    /// sending when it died wait before another sends them.
    pub outbox_lease_secs: u64,
    /// The reporting company's details for CyberTipline payloads; required before a
    /// `csam` bank can be created.
    pub reporter: Option<ReporterInfo>,
    /// API tokens; with none configured and none stored, one service and one
    /// admin token are generated and printed once at start-up (not on a shared
    /// store: `serve` refuses to start without them there).
    pub tokens: Vec<TokenConfig>,
    /// The reviewer console.
    pub review: ReviewConfig,
    /// `[statements]`: the grounds and reach statements of reasons state.
    pub statements: crate::review::statements::StatementsConfig,
    /// `[http]`: connection and request-reading limits.
    pub http: HttpConfig,
    /// `[owner_pattern]`: when one owner's empty playlists asking for contact or pictures
    /// are reviewed as one.
    pub owner_pattern: OwnerPatternConfig,
    /// `[ocr]`: reading the words in the artwork.
    pub ocr: OcrConfig,
}

/// `[ocr]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OcrConfig {
    /// Read the words in screened images (PP-OCRv4 on each inference worker).
    pub enabled: bool,
    /// Read only images the text gate finds rows of glyphs in (on by default); off reads
    /// every image in full, at several times the CPU (README: Text signals).
    pub gate: bool,
}

impl Default for OcrConfig {
    fn default() -> OcrConfig {
        OcrConfig {
            enabled: false,
            gate: true,
        }
    }
}

impl OcrConfig {
    /// How images are read, or `None` with OCR off.
    pub fn reading(&self) -> Option<crate::text::ocr::Reading> {
        use crate::text::ocr::{GateParams, Reading};
        self.enabled.then(|| {
            if self.gate {
                Reading::Gated(GateParams::default())
            } else {
                Reading::EveryImage
            }
        })
    }
}

/// `[owner_pattern]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OwnerPatternConfig {
    /// How far back an owner's uploads are read, in days.
    pub window_days: u32,
    /// Empty playlists asking for contact or pictures within the window that make it.
    pub min_playlists: usize,
}

impl Default for OwnerPatternConfig {
    fn default() -> Self {
        let d = crate::screening::owner_pattern::OwnerPatternSettings::default();
        OwnerPatternConfig {
            window_days: d.window.num_days() as u32,
            min_playlists: d.min_playlists,
        }
    }
}

impl OwnerPatternConfig {
    pub fn settings(&self) -> crate::screening::owner_pattern::OwnerPatternSettings {
        crate::screening::owner_pattern::OwnerPatternSettings {
            window: chrono::Duration::days(i64::from(self.window_days)),
            // One upload is never a pattern.
            min_playlists: self.min_playlists.max(2),
        }
    }
}

/// `[http]`: what a connection may hold before it has proved anything. Requests are
/// authenticated before their bodies are read; these bound the rest.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Most connections open at once; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// A request's head (line and headers) must arrive within this; an idle kept-alive
    /// connection is closed after it too.
    pub header_read_timeout_secs: u64,
    /// The whole body of a request other than a screening must arrive within this (a
    /// screening's body is read under its own deadline).
    pub body_read_timeout_secs: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_connections: 1024,
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 30,
        }
    }
}

/// `[review]`: the reviewer console and what its decisions write.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReviewConfig {
    /// The allow-list bank a release adds the image's hashes to (created on first release).
    pub allow_list_bank: String,
    /// PDQ distance the allow-list bank clears at when it is created. Tighter than the
    /// known-bad default: a release vouches for one image, not for everything that resembles it.
    pub allow_list_pdq_threshold: i64,
    /// A claim older than this no longer keeps other reviewers off the item.
    pub claim_lease_minutes: u32,
    /// How long a console login lasts.
    pub session_hours: u32,
    /// Set the cookie's `Secure` flag (keep on; browsers accept it on http://localhost).
    pub secure_cookies: bool,
    /// How long after a decision its owner may appeal it.
    pub appeal_window_days: u32,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        ReviewConfig {
            allow_list_bank: "allow-list".into(),
            allow_list_pdq_threshold: 8,
            claim_lease_minutes: 30,
            session_hours: 12,
            secure_cookies: true,
            appeal_window_days: 183,
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// Shared secret for the `X-Coverguard-Signature` HMAC.
    pub secret: Option<String>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub name: String,
    /// `service` or `admin`.
    pub role: crate::store::TokenRole,
    /// The bearer token itself; only its sha256 is stored.
    pub token: String,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A database URL with its password replaced.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("<redacted>"));
            parsed.to_string()
        }
        Ok(_) => url.to_string(),
        Err(_) => "<unparsable, redacted>".to_string(),
    }
}

impl std::fmt::Debug for ServiceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceConfig")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field("quarantine_dir", &self.quarantine_dir)
            .field(
                "quarantine_key",
                &self.quarantine_key.as_ref().map(|_| "<redacted>"),
            )
            .field("retention_days", &self.retention_days)
            .field("quarantine_on_review", &self.quarantine_on_review)
            .field("request_deadline_ms", &self.request_deadline_ms)
            .field("max_bytes", &self.max_bytes)
            .field("max_import_bytes", &self.max_import_bytes)
            .field("max_pixels", &self.max_pixels)
            .field("max_side", &self.max_side)
            .field("decode_resolution", &self.decode_resolution)
            .field("url_timeout_secs", &self.url_timeout_secs)
            .field("url_fetch", &self.url_fetch)
            .field("policy_file", &self.policy_file)
            .field("keyword_file", &self.keyword_file)
            .field("scheduler", &self.scheduler)
            .field("intra_threads", &self.intra_threads)
            .field("webhooks", &self.webhooks)
            .field("outbox_lease_secs", &self.outbox_lease_secs)
            .field("reporter", &self.reporter)
            .field("tokens", &self.tokens)
            .field("review", &self.review)
            .field("statements", &self.statements)
            .field("http", &self.http)
            .field("owner_pattern", &self.owner_pattern)
            .field("ocr", &self.ocr)
            .finish()
    }
}

impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl Default for ServiceConfig {
    fn default() -> Self {
        let limits = DecodeLimits::default();
        ServiceConfig {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            quarantine_dir: None,
            quarantine_key: None,
            retention_days: 365,
            quarantine_on_review: true,
            request_deadline_ms: 2000,
            max_bytes: limits.max_bytes,
            max_import_bytes: 256 << 20,
            max_pixels: limits.max_pixels,
            max_side: limits.max_side,
            max_frames: limits.max_frames,
            max_animation_pixels: limits.max_animation_pixels,
            max_views: limits.max_views,
            page_colours: crate::screening::views::DEFAULT_PAGE_COLOURS
                .iter()
                .map(|&c| crate::screening::views::PageColour(c))
                .collect(),
            decode_resolution: Resolution::Full,
            url_timeout_secs: 10,
            url_fetch: DestinationPolicy::default(),
            policy_file: None,
            keyword_file: None,
            scheduler: SchedulerConfig::default(),
            intra_threads: 1,
            webhooks: Vec::new(),
            outbox_lease_secs: crate::act::outbox::DEFAULT_LEASE.as_secs(),
            reporter: None,
            tokens: Vec::new(),
            review: ReviewConfig::default(),
            statements: Default::default(),
            http: HttpConfig::default(),
            owner_pattern: OwnerPatternConfig::default(),
            ocr: OcrConfig::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {detail}")]
    Parse { path: PathBuf, detail: String },
    #[error("config: {0}")]
    Invalid(String),
}

impl ServiceConfig {
    /// The file (if any) with environment overrides applied, validated.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
                let mut config: ServiceConfig =
                    toml::from_str(&text).map_err(|e| ConfigError::Parse {
                        path: path.to_path_buf(),
                        detail: e.to_string(),
                    })?;
                config.resolve_paths_from(path.parent().unwrap_or(Path::new("")));
                config
            }
            None => ServiceConfig::default(),
        };
        config.apply_env(|name| std::env::var(name).ok().filter(|v| !v.is_empty()));
        config.validate()?;
        Ok(config)
    }

    /// Relative paths in a config file name places beside the file, not in whatever folder
    /// a command happens to run from: `banks retro-match --config run/coverguard.toml` must
    /// open the store the service wrote, never a new empty one with a new quarantine key.
    fn resolve_paths_from(&mut self, folder: &Path) {
        // Joining an absolute path gives that path: only relative ones move.
        self.data_dir = folder.join(&self.data_dir);
        self.quarantine_dir = self.quarantine_dir.as_deref().map(|p| folder.join(p));
        self.policy_file = self.policy_file.as_deref().map(|p| folder.join(p));
        self.keyword_file = self.keyword_file.as_deref().map(|p| folder.join(p));
    }

    fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) {
        if let Some(v) = var(ENV_LISTEN) {
            self.listen = v;
        }
        if let Some(v) = var(ENV_DATA_DIR) {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = var(ENV_DATABASE_URL) {
            self.database_url = Some(v);
        }
        if let Some(v) = var(ENV_QUARANTINE_KEY) {
            self.quarantine_key = Some(v);
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.request_deadline_ms == 0 {
            return Err(ConfigError::Invalid(
                "request_deadline_ms must be above 0".into(),
            ));
        }
        let delivery = crate::act::webhook::WebhookConfig::DEFAULT_TIMEOUT.as_secs();
        if self.outbox_lease_secs <= delivery {
            return Err(ConfigError::Invalid(format!(
                "outbox_lease_secs must be above a delivery's timeout ({delivery} s), or \
                 another replica may send a report that is still being sent"
            )));
        }
        if self.retention_days == 0 {
            return Err(ConfigError::Invalid(
                "retention_days must be above 0: reported evidence must be kept".into(),
            ));
        }
        let http = &self.http;
        if http.max_connections == 0
            || http.header_read_timeout_secs == 0
            || http.body_read_timeout_secs == 0
        {
            return Err(ConfigError::Invalid(
                "http.max_connections, http.header_read_timeout_secs and \
                 http.body_read_timeout_secs must be above 0"
                    .into(),
            ));
        }
        let scope = &self.statements.territorial_scope;
        if scope.is_empty()
            || scope
                .iter()
                .any(|c| c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return Err(ConfigError::Invalid(format!(
                "statements.territorial_scope must list member states as two capital letters \
                 (e.g. \"DE\"), not {scope:?}"
            )));
        }
        if self.review.claim_lease_minutes == 0
            || self.review.session_hours == 0
            || self.review.appeal_window_days == 0
        {
            return Err(ConfigError::Invalid(
                "review.claim_lease_minutes, review.session_hours and review.appeal_window_days \
                 must be above 0"
                    .into(),
            ));
        }
        if !(0..=i64::from(crate::screening::policy::MAX_PDQ_THRESHOLD))
            .contains(&self.review.allow_list_pdq_threshold)
        {
            return Err(ConfigError::Invalid(format!(
                "review.allow_list_pdq_threshold must be between 0 and {}",
                crate::screening::policy::MAX_PDQ_THRESHOLD
            )));
        }
        // A key generated here would be this process's alone: the quarantine other processes
        // wrote could not be read, nor this one's by them.
        if self.shared_store() && self.quarantine_key.is_none() {
            return Err(ConfigError::Invalid(format!(
                "a store that several processes share (Postgres) needs quarantine_key \
                 (or {ENV_QUARANTINE_KEY}), the same in every process"
            )));
        }
        for t in &self.tokens {
            if t.token.len() < 16 {
                return Err(ConfigError::Invalid(format!(
                    "token {:?} is shorter than 16 characters",
                    t.name
                )));
            }
        }
        Ok(())
    }

    /// Whether other processes may use this store too (Postgres): then nothing that must be
    /// the same in every process is generated by one of them.
    pub fn shared_store(&self) -> bool {
        self.database_url
            .as_deref()
            .is_some_and(crate::store::is_shared_url)
    }

    /// What serving needs beyond [`ServiceConfig::load`]'s checks: on a shared store, tokens
    /// configured, since tokens generated and printed by one replica would be news to the
    /// others' operators.
    pub fn check_serving(&self) -> Result<(), ConfigError> {
        if self.shared_store() && self.tokens.is_empty() {
            return Err(ConfigError::Invalid(
                "serving from a store that several processes share (Postgres) needs [[tokens]] \
                 configured, the same in every replica"
                    .into(),
            ));
        }
        Ok(())
    }

    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!("sqlite://{}", self.data_dir.join("coverguard.db").display())
        })
    }

    pub fn quarantine_dir(&self) -> PathBuf {
        self.quarantine_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("quarantine"))
    }

    pub fn limits(&self) -> DecodeLimits {
        DecodeLimits {
            max_bytes: self.max_bytes,
            max_pixels: self.max_pixels,
            max_side: self.max_side,
            max_frames: self.max_frames,
            max_animation_pixels: self.max_animation_pixels,
            max_views: self.max_views,
        }
    }

    /// Which frames and renderings screening makes.
    pub fn view_settings(&self) -> crate::screening::views::ViewSettings {
        crate::screening::views::ViewSettings {
            page_colours: self.page_colours.iter().map(|c| c.0).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ocr_is_off_by_default_and_gated_when_on() {
        use crate::text::ocr::{GateParams, Reading};
        let parse = |text: &str| toml::from_str::<ServiceConfig>(text).map(|c| c.ocr.reading());
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(
            parse("[ocr]\nenabled = true\n").unwrap(),
            Some(Reading::Gated(GateParams::default()))
        );
        assert_eq!(
            parse("[ocr]\nenabled = true\ngate = false\n").unwrap(),
            Some(Reading::EveryImage)
        );
        assert!(parse("[ocr]\nenabled = true\ngated = false\n").is_err());
    }

    #[test]
    fn defaults_are_embedded_and_env_overrides_the_file() {
        let mut c: ServiceConfig =
            toml::from_str("listen = \"127.0.0.1:9000\"\n[scheduler]\nmax_batch = 4\n").unwrap();
        assert_eq!(c.scheduler.max_batch, 4);
        assert_eq!(
            c.scheduler.queue_capacity,
            SchedulerConfig::default().queue_capacity
        );
        assert!(c.database_url().starts_with("sqlite://"));
        assert_eq!(c.decode_resolution, Resolution::Full);
        c.apply_env(|name| (name == ENV_LISTEN).then(|| "0.0.0.0:1".to_string()));
        assert_eq!(c.listen, "0.0.0.0:1");
    }

    #[test]
    fn relative_paths_in_a_config_file_are_beside_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        let file = run.join("coverguard.toml");
        std::fs::write(
            &file,
            "quarantine_dir = \"vault\"\npolicy_file = \"/etc/coverguard/policy.toml\"\nkeyword_file = \"lists/terms.tsv\"\n",
        )
        .unwrap();
        let c = ServiceConfig::load(Some(&file)).unwrap();
        // The default ./data too: a command run from elsewhere opens the same store.
        assert_eq!(c.data_dir, run.join("./data"));
        assert_eq!(c.quarantine_dir(), run.join("vault"));
        assert_eq!(
            c.policy_file.as_deref(),
            Some(Path::new("/etc/coverguard/policy.toml"))
        );
        assert_eq!(c.keyword_file, Some(run.join("lists/terms.tsv")));
        assert!(c.database_url().contains(run.to_str().unwrap()));
        // Without a file, paths stay relative to where the command runs.
        assert_eq!(ServiceConfig::default().data_dir, PathBuf::from("./data"));
    }

    #[test]
    fn url_fetch_allow_lists_parse_and_default_to_public_web_ports() {
        let c: ServiceConfig = toml::from_str(
            "[url_fetch]\nallow_networks = [\"10.20.0.0/16\", \"fd00::/8\"]\nallow_ports = [8080]\n",
        )
        .unwrap();
        assert_eq!(c.url_fetch.allow_networks.len(), 2);
        // Widened, not replaced: public URLs keep working.
        assert_eq!(c.url_fetch.allow_ports, vec![80, 443, 8080]);
        assert_eq!(
            ServiceConfig::default().url_fetch.allow_ports,
            vec![80, 443]
        );
        assert!(ServiceConfig::default().url_fetch.allow_networks.is_empty());
        assert!(toml::from_str::<ServiceConfig>(
            "[url_fetch]\nallow_networks = [\"10.0.0.0/33\"]\n"
        )
        .is_err());
    }

    #[test]
    fn decode_resolution_is_full_or_a_minimum_long_side() {
        let parse = |text: &str| toml::from_str::<ServiceConfig>(text).map(|c| c.decode_resolution);
        assert_eq!(
            parse("decode_resolution = \"full\"").unwrap(),
            Resolution::Full
        );
        assert_eq!(
            parse("decode_resolution = { long_side_at_least = 1024 }").unwrap(),
            Resolution::FAST
        );
        assert!(parse("decode_resolution = \"half\"").is_err());
        assert!(parse("decode_resolution = { long_side_at_least = -1 }").is_err());
    }

    #[test]
    fn bad_settings_are_refused_and_tokens_never_print() {
        assert!(toml::from_str::<ServiceConfig>("no_such_key = 1").is_err());
        let token = |role: &str| {
            format!("[[tokens]]\nname = \"upload\"\nrole = \"{role}\"\ntoken = \"0123456789abcdef0123\"\n")
        };
        let refused = toml::from_str::<ServiceConfig>(&token("root"))
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("root") && refused.contains("service") && refused.contains("admin"),
            "{refused}"
        );
        let c: ServiceConfig = toml::from_str(&token("admin")).unwrap();
        assert_eq!(c.tokens[0].role, crate::store::TokenRole::Admin);
        for short in [0, 10] {
            let lease: ServiceConfig =
                toml::from_str(&format!("outbox_lease_secs = {short}")).unwrap();
            let refused = lease.validate().unwrap_err().to_string();
            assert!(refused.contains("outbox_lease_secs"), "{refused}");
        }
        let lease: ServiceConfig = toml::from_str("outbox_lease_secs = 11").unwrap();
        assert!(lease.validate().is_ok());
        let shown = format!("{:?}", c.tokens[0]);
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
    }

    #[test]
    fn a_shared_store_needs_the_key_and_tokens_every_replica_uses() {
        let on = |url: &str, key: Option<&str>, tokens: usize| ServiceConfig {
            database_url: Some(url.to_string()),
            quarantine_key: key.map(str::to_string),
            tokens: (0..tokens)
                .map(|i| TokenConfig {
                    name: format!("t{i}"),
                    role: crate::store::TokenRole::Service,
                    token: "0123456789abcdef0123".into(),
                })
                .collect(),
            ..ServiceConfig::default()
        };
        let key = "11".repeat(32);
        for url in ["postgres://db/cg", " postgresql://db/cg"] {
            let refused = on(url, None, 1).validate().unwrap_err().to_string();
            assert!(refused.contains("quarantine_key"), "{refused}");
            let refused = on(url, Some(&key), 0)
                .check_serving()
                .unwrap_err()
                .to_string();
            assert!(refused.contains("[[tokens]]"), "{refused}");
            let both = on(url, Some(&key), 1);
            assert!(both.validate().is_ok() && both.check_serving().is_ok());
        }
        // One machine's SQLite file may generate both, for local development.
        for alone in [on("sqlite://data/cg.db", None, 0), ServiceConfig::default()] {
            assert!(alone.validate().is_ok() && alone.check_serving().is_ok());
        }
    }

    #[test]
    fn the_whole_config_prints_without_its_secrets() {
        let c: ServiceConfig = toml::from_str(concat!(
            "database_url = \"postgres://cg:pg-pass-8812@db.internal:5432/cg\"\n",
            "quarantine_key = \"4444444444444444444444444444444444444444444444444444444444444444\"\n",
            "[[webhooks]]\nurl = \"https://hooks.example/r\"\nsecret = \"hook-secret-7781\"\n",
            "[[tokens]]\nname = \"upload\"\nrole = \"service\"\ntoken = \"svc-token-secret-0099\"\n",
        ))
        .unwrap();
        let shown = format!("{c:?}");
        for secret in [
            "pg-pass-8812",
            "4444444444",
            "hook-secret-7781",
            "svc-token-secret-0099",
        ] {
            assert!(!shown.contains(secret), "{secret} printed in {shown}");
        }
        assert!(
            shown.contains("db.internal") && shown.contains("hooks.example"),
            "{shown}"
        );
    }
}
