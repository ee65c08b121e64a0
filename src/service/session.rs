//! Console logins: Argon2id passwords, session cookies and CSRF tokens.
//!
//! The cookie holds a random secret; the store keeps only its sha256, so a copy of the
//! database opens no session. The cookie is `HttpOnly`, `SameSite=Strict` and (by default)
//! `Secure` with the `__Host-` prefix, so other sites' pages never send it; every request
//! that changes something must also carry the session's CSRF token in `X-CSRF-Token`,
//! which a page can only learn from `/v1/review/me` or the login answer.

use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};

use super::error::ApiError;
use super::{token_hash, Ready};
use crate::config::ReviewConfig;
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
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .and_then(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed))
        .is_ok()
}

/// Same work as a real check, so an unknown user name answers as slowly as a wrong password.
fn burn_a_verification(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("not-a-real-password").unwrap_or_default());
    let _ = verify_password(password, dummy);
}

/// Byte comparison whose time does not depend on where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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

fn session_secret<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
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
    let hash = token_hash(secret);
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
            let named = if super::review::valid_username(username) {
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

/// Stands for a login name that cannot be a user name, wherever the caller's text is kept
/// (audit rows, the login throttle): it can never log in, and its text is not worth keeping.
const NOT_A_USER_NAME: &str = "(not a valid user name)";

/// Slows password guessing at the console login, per user name.
///
/// The first [`LoginThrottle::FREE_FAILURES`] failures cost nothing; each further one
/// locks the name for twice as long as the last (1 s, 2 s, 4 s ... up to 15 min), and
/// while it is locked every attempt is refused unchecked, right password or not, so
/// guessing gains nothing from the lock. A success, or 15 minutes without a failure,
/// forgets the name. Unknown names count like real ones: the throttle does not tell
/// which names exist. It is per process; Argon2id's cost bounds what several processes
/// together can try.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    names: std::sync::Mutex<std::collections::HashMap<String, Failures>>,
}

#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    last: std::time::Instant,
    locked_until: Option<std::time::Instant>,
}

impl LoginThrottle {
    pub const FREE_FAILURES: u32 = 5;
    const LONGEST_LOCK: Duration = Duration::from_secs(15 * 60);
    const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
    /// Names remembered at once; beyond it the longest-quiet name is forgotten first.
    const CAPACITY: usize = 10_000;

    /// The name as the throttle remembers it. Anything that cannot be a user name shares
    /// one key (it can never log in), so a caller cannot fill memory with long names.
    fn key(username: &str) -> String {
        let trimmed = username.trim();
        let name = (trimmed.len() <= 64).then(|| trimmed.to_ascii_lowercase());
        match name {
            Some(name) if super::review::valid_username(&name) => name,
            _ => NOT_A_USER_NAME.to_string(),
        }
    }

    /// `Err(wait)` while `username` is locked.
    pub fn check(&self, username: &str, now: std::time::Instant) -> Result<(), Duration> {
        let names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        match names.get(&Self::key(username)).and_then(|f| f.locked_until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    pub fn failed(&self, username: &str, now: std::time::Instant) {
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        if names.len() >= Self::CAPACITY {
            names.retain(|_, f| now.duration_since(f.last) < Self::FORGET_AFTER);
            if names.len() >= Self::CAPACITY {
                if let Some(oldest) = names
                    .iter()
                    .min_by_key(|(_, f)| f.last)
                    .map(|(k, _)| k.clone())
                {
                    names.remove(&oldest);
                }
            }
        }
        let entry = names.entry(Self::key(username)).or_insert(Failures {
            count: 0,
            last: now,
            locked_until: None,
        });
        if now.duration_since(entry.last) >= Self::FORGET_AFTER {
            entry.count = 0;
        }
        entry.count += 1;
        entry.last = now;
        if entry.count > Self::FREE_FAILURES {
            let doublings = (entry.count - Self::FREE_FAILURES - 1).min(20);
            let lock = Duration::from_secs(1u64 << doublings).min(Self::LONGEST_LOCK);
            entry.locked_until = Some(now + lock);
        }
    }

    pub fn succeeded(&self, username: &str) {
        self.names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&Self::key(username));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(session_secret(&headers, "cg_session"), Some("abc"));
        assert_eq!(session_secret(&headers, "__Host-cg_session"), Some("def"));
        assert_eq!(session_secret(&headers, "other"), None);
        assert!(constant_time_eq(b"same", b"same"));
        assert!(!constant_time_eq(b"same", b"sane"));
        assert!(!constant_time_eq(b"same", b"same!"));
    }

    #[test]
    fn the_login_throttle_locks_a_name_for_doubling_times_after_five_failures() {
        let throttle = LoginThrottle::default();
        let t0 = std::time::Instant::now();
        for i in 0..LoginThrottle::FREE_FAILURES {
            assert_eq!(throttle.check("Ana", t0), Ok(()), "failure {i} is free");
            throttle.failed("ana", t0);
        }
        assert_eq!(throttle.check("ana", t0), Ok(()));
        throttle.failed("ana", t0);
        assert_eq!(throttle.check("ANA", t0), Err(Duration::from_secs(1)));
        assert_eq!(
            throttle.check("bo", t0),
            Ok(()),
            "other names are not affected"
        );
        // Names that cannot exist share one entry, however many and however long.
        for i in 0..100 {
            throttle.failed(&format!("{}{i}", "X".repeat(100)), t0);
        }
        assert_eq!(throttle.names.lock().unwrap().len(), 2);
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(throttle.check("ana", t1), Ok(()));
        throttle.failed("ana", t1);
        assert_eq!(throttle.check("ana", t1), Err(Duration::from_secs(2)));
        // Doubling stops at 15 minutes.
        let mut t = t1;
        for _ in 0..30 {
            t += Duration::from_secs(1);
            throttle.failed("ana", t);
        }
        assert_eq!(throttle.check("ana", t), Err(Duration::from_secs(900)));
        // A success forgets the name; so do 15 quiet minutes.
        throttle.succeeded("ana");
        assert_eq!(throttle.check("ana", t), Ok(()));
        for _ in 0..6 {
            throttle.failed("cy", t0);
        }
        let later = t0 + Duration::from_secs(16 * 60);
        assert_eq!(throttle.check("cy", later), Ok(()));
        throttle.failed("cy", later);
        assert_eq!(
            throttle.check("cy", later),
            Ok(()),
            "the count started again"
        );
    }
}
