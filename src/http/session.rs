//! Console logins: Argon2id passwords, session cookies and CSRF tokens.
//!
//! The cookie holds a random secret; the store keeps only its sha256, so a copy of the
//! database opens no session. The cookie is `HttpOnly`, `SameSite=Strict` and (by default)
//! `Secure` with the `__Host-` prefix, so other sites' pages never send it; every request
//! that changes something must also carry the session's CSRF token in `X-CSRF-Token`,
//! which a page can only learn from `/v1/review/me` or the login answer.

use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum_extra::extract::cookie::CookieJar;

use super::error::ApiError;
use super::{token_hash, Ready};
use crate::config::ReviewConfig;
use crate::http::login_throttle::NOT_A_USER_NAME;
use crate::store::valid_username;
use crate::store::{now_utc, ConsoleRole, ConsoleSettings, SessionWrite};

pub const CSRF_HEADER: &str = "x-csrf-token";
/// Shortest password the console accepts.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// A logged-in console user, as a handler sees them.
#[derive(Debug, Clone)]
pub struct Reviewer {
    pub username: String,
    pub role: ConsoleRole,
    pub settings: ConsoleSettings,
    pub csrf_token: String,
    pub token_hash: String,
}

impl Reviewer {
    pub fn is_admin(&self) -> bool {
        self.role == ConsoleRole::Admin
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this needs the admin role",
            ))
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("a password needs at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("no randomness for a salt: {0}")]
    Random(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// An Argon2id PHC string for `password` (default parameters, a fresh 16-byte salt).
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| PasswordError::Random(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches `phc`. A malformed stored hash never matches.
///
/// Works in reused memory: each check needs `m` KiB (19 MiB by default), and allocating it
/// per check leaves glibc holding freed copies in every thread's arena, hundreds of MiB
/// after a burst of logins.
pub fn verify_password(password: &str, phc: &str) -> bool {
    verify_in_pooled_memory(password.as_bytes(), phc).unwrap_or(false)
}

fn verify_in_pooled_memory(password: &[u8], phc: &str) -> Option<bool> {
    let parsed = PasswordHash::new(phc).ok()?;
    let expected = parsed.hash?;
    let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).ok()?,
        None => Version::default(),
    };
    let params = Params::try_from(&parsed).ok()?;
    let mut salt = [0u8; 64];
    let salt = parsed.salt?.decode_b64(&mut salt).ok()?;
    let mut computed = vec![0u8; expected.len()];
    let blocks_needed = params.block_count();
    let argon2 = Argon2::new(algorithm, version, params);
    let mut blocks = ARGON2_MEMORY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .pop()
        .unwrap_or_default();
    blocks.resize(blocks_needed, Block::default());
    let hashed =
        argon2.hash_password_into_with_memory(password, salt, &mut computed, &mut blocks[..]);
    let mut pool = ARGON2_MEMORY.lock().unwrap_or_else(|e| e.into_inner());
    if pool.len() < ARGON2_CONCURRENT {
        pool.push(blocks);
    }
    hashed.ok()?;
    Some(constant_time_eq(&computed, expected.as_bytes()))
}

/// Password checks (Argon2id) running at once (CPU-bound, single-lane: more than the cores
/// gains nothing), and how long a login waits for one.
const ARGON2_CONCURRENT: usize = 2;
static ARGON2_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(ARGON2_CONCURRENT);
/// Working memory of finished checks, kept for the next ones.
static ARGON2_MEMORY: std::sync::Mutex<Vec<Vec<Block>>> = std::sync::Mutex::new(Vec::new());
const ARGON2_WAIT: Duration = Duration::from_secs(10);

/// Same work as a real check, so an unknown user name answers as slowly as a wrong password.
fn burn_a_verification(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("not-a-real-password").unwrap_or_default());
    let _ = verify_password(password, dummy);
}

/// Byte comparison whose time does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

fn random_hex(bytes: usize) -> Result<String, ApiError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("no randomness for a session: {e}"),
        )
    })?;
    Ok(hex::encode(buf))
}

pub fn cookie_name(config: &ReviewConfig) -> &'static str {
    if config.secure_cookies {
        "__Host-cg_session"
    } else {
        "cg_session"
    }
}

fn cookie(config: &ReviewConfig, value: &str, max_age: Duration) -> Result<HeaderValue, ApiError> {
    let secure = if config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        cookie_name(config),
        max_age.as_secs()
    ))
    .map_err(|e| ApiError::bad_request(format!("cookie: {e}")))
}

fn session_secret(headers: &HeaderMap, name: &str) -> Option<String> {
    CookieJar::from_headers(headers)
        .get(name)
        .map(|cookie| cookie.value().trim().to_owned())
        .filter(|value| !value.is_empty())
}

fn unauthenticated(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
}

/// The session's user. Requests other than GET/HEAD must carry the session's CSRF token.
pub async fn authenticate(
    ready: &Ready,
    config: &ReviewConfig,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Reviewer, ApiError> {
    let secret = session_secret(headers, cookie_name(config))
        .ok_or_else(|| unauthenticated("log in to the console first"))?;
    let hash = token_hash(&secret);
    let session = ready
        .store
        .session(&hash, now_utc())
        .await?
        .ok_or_else(|| unauthenticated("the session expired or was ended; log in again"))?;
    if method != Method::GET && method != Method::HEAD {
        let sent = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !constant_time_eq(sent.as_bytes(), session.csrf_token.as_bytes()) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf",
                "missing or wrong X-CSRF-Token header",
            ));
        }
    }
    Ok(Reviewer {
        username: session.user.username,
        role: session.user.role,
        settings: session.user.settings,
        csrf_token: session.csrf_token,
        token_hash: hash,
    })
}

/// Checks the password; on success stores a new session and returns its user and cookie.
pub async fn login(
    ready: &Ready,
    config: &ReviewConfig,
    username: &str,
    password: &str,
) -> Result<(Reviewer, HeaderValue), ApiError> {
    let user = ready.store.console_user(username).await?;
    let password = password.to_string();
    let stored = user
        .as_ref()
        .filter(|u| !u.disabled)
        .map(|u| u.password_hash.clone());
    // Each check holds ~19 MiB for tens of milliseconds: bound how many run at once, so a
    // burst of logins queues instead of taking gigabytes.
    let _slot = tokio::time::timeout(ARGON2_WAIT, ARGON2_SLOTS.acquire())
        .await
        .map_err(|_| ApiError {
            retry_after_secs: Some(1),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "login_busy",
                "too many logins are being checked; try again after Retry-After seconds",
            )
        })?
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("password check slots: {e}"),
            )
        })?;
    let matched = tokio::task::spawn_blocking(move || match stored {
        Some(phc) => verify_password(&password, &phc),
        None => {
            burn_a_verification(&password);
            false
        }
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("password check failed: {e}"),
        )
    })?;
    let user = match (user, matched) {
        (Some(user), true) => user,
        _ => {
            // The name is the caller's text: kept only when it could be a user name.
            let named = if valid_username(username) {
                username
            } else {
                NOT_A_USER_NAME
            };
            ready
                .store
                .append_audit(named, "session.login_failed", named, &serde_json::json!({}))
                .await?;
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bad_credentials",
                "unknown user name or wrong password",
            ));
        }
    };
    let secret = random_hex(32)?;
    let csrf_token = random_hex(32)?;
    let ttl = Duration::from_secs(u64::from(config.session_hours) * 3600);
    let hash = token_hash(&secret);
    ready
        .store
        .create_session(&SessionWrite {
            token_hash: hash.clone(),
            username: user.username.clone(),
            csrf_token: csrf_token.clone(),
            expires_at: now_utc()
                + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(12)),
        })
        .await?;
    ready
        .store
        .append_audit(
            &user.username,
            "session.login",
            &user.username,
            &serde_json::json!({ "role": user.role }),
        )
        .await?;
    Ok((
        Reviewer {
            username: user.username,
            role: user.role,
            settings: user.settings,
            csrf_token,
            token_hash: hash,
        },
        cookie(config, &secret, ttl)?,
    ))
}

/// Ends the session; returns the cookie that clears it in the browser.
pub async fn logout(
    ready: &Ready,
    config: &ReviewConfig,
    reviewer: &Reviewer,
) -> Result<HeaderValue, ApiError> {
    ready.store.delete_session(&reviewer.token_hash).await?;
    ready
        .store
        .append_audit(
            &reviewer.username,
            "session.logout",
            &reviewer.username,
            &serde_json::json!({}),
        )
        .await?;
    cookie(config, "", Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header;

    #[test]
    fn passwords_round_trip_and_short_ones_are_refused() {
        let phc = hash_password("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &phc));
        assert!(!verify_password("correct horse batterz", &phc));
        assert!(!verify_password(
            "correct horse battery",
            "not a phc string"
        ));
        assert!(matches!(
            hash_password("short"),
            Err(PasswordError::TooShort)
        ));
        // Salted: the same password hashes differently each time.
        assert_ne!(phc, hash_password("correct horse battery").unwrap());
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; cg_session=abc"),
        );
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("__Host-cg_session=def"),
        );
        assert_eq!(
            session_secret(&headers, "cg_session").as_deref(),
            Some("abc")
        );
        assert_eq!(
            session_secret(&headers, "__Host-cg_session").as_deref(),
            Some("def")
        );
        assert_eq!(session_secret(&headers, "other"), None);
        // No space after the separator, and an emptied cookie (as logout sets it).
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1;cg_session=abc;__Host-cg_session="),
        );
        assert_eq!(
            session_secret(&headers, "cg_session").as_deref(),
            Some("abc")
        );
        assert_eq!(session_secret(&headers, "__Host-cg_session"), None);
        assert!(constant_time_eq(b"same", b"same"));
        assert!(!constant_time_eq(b"same", b"sane"));
        assert!(!constant_time_eq(b"same", b"same!"));
    }
}
