//! Fetch stage: the bytes of one input (a file or an http(s) URL), capped.
//!
//! The byte cap is enforced while reading, never after: a file is refused from
//! its metadata and a response from its Content-Length or as soon as the
//! streamed body passes the cap. Where a URL may lead is [`destination`]'s job.

pub mod destination;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

pub use destination::{DestinationPolicy, Refusal};
use destination::{GuardedResolver, Lookup, SystemLookup};

/// Where an input comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Url(String),
}

impl Source {
    /// Classify a command-line input: `http://` / `https://` are URLs, anything else a path.
    pub fn parse(input: &str) -> Source {
        let lower = input.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            Source::Url(input.to_string())
        } else {
            Source::File(PathBuf::from(input))
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{path}: no such file")]
    NotFound { path: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} is {size} bytes, over the limit of {max} bytes (max_bytes)")]
    TooLarge { what: String, size: u64, max: usize },
    #[error("{what} is over the limit of {max} bytes (max_bytes)")]
    TooLargeStreamed { what: String, max: usize },
    #[error("{url}: not a valid http(s) URL: {detail}")]
    InvalidUrl { url: String, detail: String },
    #[error("{url}: server answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: refused destination: {reason}")]
    Blocked { url: String, reason: Refusal },
    #[error("{url}: timed out (no data for {read_seconds} s, or over {seconds} s in all)")]
    Timeout {
        url: String,
        seconds: u64,
        read_seconds: u64,
    },
    #[error("{url}: {detail}")]
    Http { url: String, detail: String },
}

impl FetchError {
    /// Stable machine-readable kind, as reported in JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::NotFound { .. } => "not_found",
            FetchError::Io { .. } => "io",
            FetchError::TooLarge { .. } | FetchError::TooLargeStreamed { .. } => "too_large",
            FetchError::InvalidUrl { .. } => "invalid_url",
            FetchError::Blocked { .. } => "blocked_destination",
            FetchError::Status { .. } => "http_status",
            FetchError::Timeout { .. } => "timeout",
            FetchError::Http { .. } => "fetch",
        }
    }
}

/// Read a file, refusing it from its size before reading.
pub fn read_file(path: &Path, max_bytes: usize) -> Result<Vec<u8>, FetchError> {
    let io = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::NotFound {
            FetchError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            FetchError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let too_large = || FetchError::TooLarge {
        what: path.display().to_string(),
        size,
        max: max_bytes,
    };
    if size > max_bytes as u64 {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(size as usize);
    // `take` guards against a file that grows while we read it.
    file.take(max_bytes as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() > max_bytes {
        return Err(FetchError::TooLargeStreamed {
            what: path.display().to_string(),
            max: max_bytes,
        });
    }
    Ok(bytes)
}

/// HTTP fetching settings.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    pub connect_timeout: Duration,
    /// Whole-request deadline, body included.
    pub timeout: Duration,
    /// Longest wait for the next bytes of a response: a server trickling its body
    /// is dropped long before the whole-request deadline.
    pub read_timeout: Duration,
    pub max_redirects: usize,
    /// Where URLs may lead.
    pub destinations: DestinationPolicy,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(20),
            read_timeout: Duration::from_secs(5),
            max_redirects: 5,
            destinations: DestinationPolicy::default(),
        }
    }
}

/// A redirect that went further than `max_redirects`.
#[derive(Debug, thiserror::Error)]
#[error("more than {0} redirects")]
struct TooManyRedirects(usize);

/// A reusable HTTP client.
#[derive(Clone, Debug)]
pub struct HttpFetcher {
    client: reqwest::Client,
    options: HttpOptions,
    policy: Arc<DestinationPolicy>,
}

impl HttpFetcher {
    pub fn new(options: HttpOptions) -> Result<Self, FetchError> {
        Self::with_lookup(options, Arc::new(SystemLookup))
    }

    /// A fetcher whose names are looked up by `lookup` (tests play a hostile DNS server).
    pub fn with_lookup(
        mut options: HttpOptions,
        lookup: Arc<dyn Lookup>,
    ) -> Result<Self, FetchError> {
        // A read timeout beyond the whole-request deadline never fires.
        options.read_timeout = options.read_timeout.min(options.timeout);
        let policy = Arc::new(options.destinations.clone());
        let hop_policy = Arc::clone(&policy);
        let max_redirects = options.max_redirects;
        // Each hop is checked like the first URL; its name is checked when resolved.
        let redirect = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > max_redirects {
                return attempt.error(TooManyRedirects(max_redirects));
            }
            match hop_policy.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refusal) => attempt.error(refusal),
            }
        });
        let client = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .timeout(options.timeout)
            .read_timeout(options.read_timeout)
            .redirect(redirect)
            .dns_resolver(Arc::new(GuardedResolver {
                policy: Arc::clone(&policy),
                lookup,
            }))
            // A proxy would resolve and connect on our behalf, past the resolver's check.
            .no_proxy()
            .user_agent(concat!("coverguard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchError::Http {
                url: String::new(),
                detail: e.to_string(),
            })?;
        Ok(HttpFetcher {
            client,
            options,
            policy,
        })
    }

    /// GET `url`, streaming at most `max_bytes`.
    pub async fn get(&self, url: &str, max_bytes: usize) -> Result<Vec<u8>, FetchError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| FetchError::InvalidUrl {
            url: url.to_string(),
            detail: e.to_string(),
        })?;
        self.policy
            .check_url(&parsed)
            .map_err(|reason| FetchError::Blocked {
                url: url.to_string(),
                reason,
            })?;
        let map = |e: reqwest::Error| self.map_error(url, e);
        let response = match self.client.get(parsed.clone()).send().await {
            // A kept-alive connection the origin closed as idle just as the request went down
            // it: nothing was answered, and a GET may be sent again (on a new connection).
            Err(e) if closed_unanswered(&e) => self.client.get(parsed).send().await,
            sent => sent,
        }
        .map_err(map)?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status {
                url: url.to_string(),
                status: status.as_u16(),
            });
        }
        if let Some(len) = response.content_length() {
            if len > max_bytes as u64 {
                return Err(FetchError::TooLarge {
                    what: url.to_string(),
                    size: len,
                    max: max_bytes,
                });
            }
        }
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(map)?;
            if body.len() + chunk.len() > max_bytes {
                return Err(FetchError::TooLargeStreamed {
                    what: url.to_string(),
                    max: max_bytes,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn map_error(&self, url: &str, e: reqwest::Error) -> FetchError {
        // A refusal from the resolver or the redirect policy arrives wrapped.
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            if let Some(reason) = s.downcast_ref::<Refusal>() {
                return FetchError::Blocked {
                    url: url.to_string(),
                    reason: reason.clone(),
                };
            }
            source = s.source();
        }
        if e.is_timeout() {
            FetchError::Timeout {
                url: url.to_string(),
                seconds: self.options.timeout.as_secs(),
                read_seconds: self.options.read_timeout.as_secs(),
            }
        } else {
            // The source chain carries the useful part (connection refused, DNS...).
            FetchError::Http {
                url: url.to_string(),
                detail: crate::error_chain::chain(&e),
            }
        }
    }
}

/// Whether a request failed because its connection closed before any answer came: not a
/// refusal, a timeout or a failed connect, but a close (or reset) under the request.
fn closed_unanswered(e: &reqwest::Error) -> bool {
    if !e.is_request() || e.is_timeout() || e.is_connect() || e.is_redirect() {
        return false;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_incomplete_message)
        {
            return true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            );
        }
        source = s.source();
    }
    false
}

/// Expand command-line inputs: directories become the files below them (sorted,
/// so runs are repeatable), each named as the directory joined with its relative path.
pub fn expand_inputs(inputs: &[String]) -> Vec<(String, Source)> {
    let mut out = Vec::new();
    for input in inputs {
        let source = Source::parse(input);
        match &source {
            Source::File(path) if path.is_dir() => {
                let mut files: Vec<PathBuf> = walkdir::WalkDir::new(path)
                    .follow_links(false)
                    .into_iter()
                    .filter_map(|e| e.ok())
                    .filter(|e| e.file_type().is_file())
                    .map(|e| e.into_path())
                    .collect();
                files.sort();
                for file in files {
                    let relative = file.strip_prefix(path).unwrap_or(&file);
                    let shown = Path::new(input).join(relative);
                    out.push((shown.display().to_string(), Source::File(file)));
                }
            }
            _ => out.push((input.clone(), source)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_paths_are_told_apart() {
        assert_eq!(
            Source::parse("HTTPS://x/y.png"),
            Source::Url("HTTPS://x/y.png".into())
        );
        assert_eq!(
            Source::parse("./http.png"),
            Source::File("./http.png".into())
        );
    }

    #[test]
    fn oversized_file_is_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.bin");
        std::fs::write(&path, vec![0u8; 1001]).unwrap();
        let err = read_file(&path, 1000).unwrap_err();
        assert_eq!(err.kind(), "too_large");
        assert_eq!(read_file(&path, 1001).unwrap().len(), 1001);
        assert_eq!(
            read_file(&dir.path().join("none"), 10).unwrap_err().kind(),
            "not_found"
        );
    }

    #[test]
    fn directories_expand_sorted_with_their_given_prefix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/b.png"), b"x").unwrap();
        std::fs::write(dir.path().join("a.png"), b"x").unwrap();
        let given = dir.path().display().to_string();
        let names: Vec<String> = expand_inputs(std::slice::from_ref(&given))
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            names,
            vec![format!("{given}/a.png"), format!("{given}/sub/b.png")]
        );
    }

    #[tokio::test]
    async fn non_http_schemes_are_refused() {
        let f = HttpFetcher::new(HttpOptions::default()).unwrap();
        assert_eq!(
            f.get("ftp://example.invalid/x", 10)
                .await
                .unwrap_err()
                .kind(),
            "blocked_destination"
        );
    }
}
