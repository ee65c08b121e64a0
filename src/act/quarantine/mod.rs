//! Quarantine vault: the original bytes of an actioned upload, encrypted at rest.
//!
//! Objects are addressed by the SHA-256 of their plaintext ([`ObjectKey`]), so
//! the same image quarantined twice is one object. [`LocalVault`] keeps them in
//! a local directory; object storage can come later behind [`QuarantineVault`].
//!
//! The file format (version 1) is described in `format.rs`.
//!
//! Writes go to a temporary name in the object's directory, are fsynced,
//! renamed over the final name and the directory fsynced, so a crash leaves
//! either no object or a whole one under the final name.
//!
//! Reading back ([`QuarantineVault::get`]) returns plaintext: the caller is
//! responsible for authorising and auditing the read.

mod format;
pub mod key;

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, Payload};
use aes_gcm::Nonce;
use async_trait::async_trait;
use sha2::{Digest, Sha256};

use format::{associated_data, read_header, Header, HEADER_LEN, NONCE_LEN, TAG_LEN};
pub use key::{KeyError, KeyId, QuarantineKey, KEY_ENV_VAR};

/// Temporary files older than this are leftovers of a crashed write.
const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);
/// Puts of the same object serialise on one of these stripes (by first hash byte).
const LOCK_STRIPES: usize = 64;

/// Address of a quarantined object: the lowercase hex SHA-256 of its plaintext.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct ObjectKey(String);

impl ObjectKey {
    /// Accepts 64 hex digits (either case); anything else, including path
    /// separators, is refused, so a key can never name a path outside the vault.
    pub fn from_sha256(sha256: &str) -> Result<ObjectKey, QuarantineError> {
        if sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(ObjectKey(sha256.to_ascii_lowercase()))
        } else {
            Err(QuarantineError::InvalidKey {
                given: sha256.chars().take(80).collect(),
            })
        }
    }

    pub fn sha256(&self) -> &str {
        &self.0
    }

    fn stripe(&self) -> usize {
        usize::from_str_radix(&self.0[..2], 16).unwrap_or(0) % LOCK_STRIPES
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ObjectKey {
    type Error = QuarantineError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        ObjectKey::from_sha256(&value)
    }
}

impl From<ObjectKey> for String {
    fn from(key: ObjectKey) -> String {
        key.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QuarantineError {
    #[error("not a SHA-256 object key: {given:?}")]
    InvalidKey { given: String },
    #[error("bytes hash to {actual}, not to the object key {expected}")]
    HashMismatch { expected: String, actual: String },
    #[error("quarantine object {key} not found")]
    NotFound { key: ObjectKey },
    #[error("{path}: storage full while trying to {op}")]
    StorageFull {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: permission denied or read-only file system ({op}): {source}")]
    PermissionDenied {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {op}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: not a valid quarantine file: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error("{path}: quarantine file format version {version} is not supported")]
    UnsupportedVersion { path: PathBuf, version: u8 },
    #[error("{path}: encrypted with key {key_id}, which this vault does not hold")]
    UnknownKey { path: PathBuf, key_id: KeyId },
    #[error("{path}: authentication failed (tampered file or wrong key)")]
    Decrypt { path: PathBuf },
    #[error("encryption failed: {detail}")]
    Encrypt { detail: String },
    #[error("quarantine worker task failed: {detail}")]
    Task { detail: String },
}

impl QuarantineError {
    /// Stable machine-readable kind, as reported in JSON and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            QuarantineError::InvalidKey { .. } => "invalid_key",
            QuarantineError::HashMismatch { .. } => "hash_mismatch",
            QuarantineError::NotFound { .. } => "not_found",
            QuarantineError::StorageFull { .. } => "storage_full",
            QuarantineError::PermissionDenied { .. } => "permission_denied",
            QuarantineError::Io { .. } => "io",
            QuarantineError::Corrupt { .. } => "corrupt",
            QuarantineError::UnsupportedVersion { .. } => "unsupported_version",
            QuarantineError::UnknownKey { .. } => "unknown_key",
            QuarantineError::Decrypt { .. } => "decrypt",
            QuarantineError::Encrypt { .. } => "encrypt",
            QuarantineError::Task { .. } => "task",
        }
    }
}

/// Classify an I/O failure: a full disk and an unwritable place are their own kinds.
pub(super) fn io_error(op: &'static str, path: &Path, source: io::Error) -> QuarantineError {
    let path = path.to_path_buf();
    // ENOSPC (28) and EDQUOT (122 on Linux) both mean "no room".
    let full = source.kind() == io::ErrorKind::StorageFull
        || source.kind() == io::ErrorKind::QuotaExceeded
        || matches!(source.raw_os_error(), Some(28));
    if full {
        return QuarantineError::StorageFull { op, path, source };
    }
    match source.kind() {
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
            QuarantineError::PermissionDenied { op, path, source }
        }
        _ => QuarantineError::Io { op, path, source },
    }
}

/// What one expiry sweep did.
#[derive(Debug, Default)]
pub struct ExpiryReport {
    /// Objects whose retention date had passed, now deleted.
    pub deleted: Vec<ObjectKey>,
    /// Objects still within retention.
    pub kept: usize,
    /// Files with an unreadable header: left in place for an operator, never deleted blind.
    pub unreadable: Vec<PathBuf>,
    /// Leftover temporary files of crashed writes, removed.
    pub stale_temp_removed: usize,
    /// Deletions that failed; the sweep went on with the other objects.
    pub failed: Vec<QuarantineError>,
}

/// Where quarantined originals are kept. Object safe: the service holds an
/// `Arc<dyn QuarantineVault>`.
#[async_trait]
pub trait QuarantineVault: Send + Sync {
    /// Store `bytes` (whose SHA-256 must be `sha256`) encrypted, to be kept at
    /// least until `retention_until`. Storing the same object again is a no-op,
    /// except that a later retention date extends the existing one.
    async fn put(
        &self,
        sha256: &str,
        bytes: &[u8],
        retention_until: SystemTime,
    ) -> Result<ObjectKey, QuarantineError>;

    /// Decrypt and return an object. The caller authorises and audits the read.
    async fn get(&self, key: &ObjectKey) -> Result<Vec<u8>, QuarantineError>;

    /// Delete every object whose retention date is at or before `now`.
    async fn delete_expired(&self, now: SystemTime) -> Result<ExpiryReport, QuarantineError>;

    /// Delete one object now, whatever its retention: evidence written for a screening that
    /// was never recorded points at nothing and would otherwise be kept, unseen, for the
    /// whole retention period. True when there was an object to delete.
    async fn delete(&self, key: &ObjectKey) -> Result<bool, QuarantineError>;
}

/// A vault in a local directory. Cheap to clone; clones share keys and locks.
#[derive(Clone)]
pub struct LocalVault {
    inner: Arc<VaultInner>,
}

struct VaultInner {
    root: PathBuf,
    current_key: QuarantineKey,
    /// Old keys kept to decrypt objects written before a rotation.
    retired_keys: Vec<QuarantineKey>,
    /// Serialises puts of the same object within this process.
    put_locks: Vec<Mutex<()>>,
}

impl fmt::Debug for LocalVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalVault")
            .field("root", &self.inner.root)
            .field("current_key", &self.inner.current_key.id())
            .field(
                "retired_keys",
                &self
                    .inner
                    .retired_keys
                    .iter()
                    .map(|k| k.id())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl LocalVault {
    /// Open (creating if needed) a vault at `root` that encrypts with `key`.
    pub fn open(
        root: impl Into<PathBuf>,
        key: QuarantineKey,
    ) -> Result<LocalVault, QuarantineError> {
        LocalVault::open_with_retired_keys(root, key, Vec::new())
    }

    /// Remove temporary files that a crash left in the middle of a write, once they are an
    /// hour old (a younger one may be another process's write in progress). Objects are
    /// never touched. Returns how many were removed.
    pub async fn sweep_stale_temporaries(&self) -> Result<usize, QuarantineError> {
        let inner = Arc::clone(&self.inner);
        run_blocking(move || inner.delete_expired_blocking(None, SystemTime::now()))
            .await
            .map(|report| report.stale_temp_removed)
    }

    /// As [`LocalVault::open`], also decrypting objects written under `retired_keys`.
    pub fn open_with_retired_keys(
        root: impl Into<PathBuf>,
        current_key: QuarantineKey,
        retired_keys: Vec<QuarantineKey>,
    ) -> Result<LocalVault, QuarantineError> {
        let root = root.into();
        create_private_dir_all(&root)?;
        let meta = fs::metadata(&root).map_err(|e| io_error("stat vault root", &root, e))?;
        if !meta.is_dir() {
            return Err(QuarantineError::Io {
                op: "open vault root",
                path: root,
                source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
            });
        }
        Ok(LocalVault {
            inner: Arc::new(VaultInner {
                root,
                current_key,
                retired_keys,
                put_locks: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            }),
        })
    }

    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Where the object with this key lives (whether or not it exists).
    pub fn object_path(&self, key: &ObjectKey) -> PathBuf {
        self.inner.object_path(key)
    }

    /// The retention date recorded for an object, read from its header.
    pub async fn retention_until(&self, key: &ObjectKey) -> Result<SystemTime, QuarantineError> {
        let inner = Arc::clone(&self.inner);
        let key = key.clone();
        run_blocking(move || {
            let path = inner.object_path(&key);
            match read_header(&path)? {
                Some(header) => Ok(UNIX_EPOCH + Duration::from_secs(header.retention_until)),
                None => Err(QuarantineError::NotFound { key }),
            }
        })
        .await
    }
}

#[async_trait]
impl QuarantineVault for LocalVault {
    async fn put(
        &self,
        sha256: &str,
        bytes: &[u8],
        retention_until: SystemTime,
    ) -> Result<ObjectKey, QuarantineError> {
        let key = ObjectKey::from_sha256(sha256)?;
        let inner = Arc::clone(&self.inner);
        // Hashing, encryption and fsync are blocking work: keep them off the async runtime.
        let bytes = bytes.to_vec();
        let retention = unix_seconds(retention_until);
        let stored = key.clone();
        run_blocking(move || inner.put_blocking(&stored, &bytes, retention)).await?;
        Ok(key)
    }

    async fn get(&self, key: &ObjectKey) -> Result<Vec<u8>, QuarantineError> {
        let inner = Arc::clone(&self.inner);
        let key = key.clone();
        run_blocking(move || inner.get_blocking(&key)).await
    }

    async fn delete_expired(&self, now: SystemTime) -> Result<ExpiryReport, QuarantineError> {
        let inner = Arc::clone(&self.inner);
        let now = unix_seconds(now);
        run_blocking(move || inner.delete_expired_blocking(Some(now), SystemTime::now())).await
    }

    async fn delete(&self, key: &ObjectKey) -> Result<bool, QuarantineError> {
        let inner = Arc::clone(&self.inner);
        let key = key.clone();
        run_blocking(move || inner.delete_blocking(&key)).await
    }
}

async fn run_blocking<T, F>(work: F) -> Result<T, QuarantineError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, QuarantineError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| QuarantineError::Task {
            detail: e.to_string(),
        })?
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn random_bytes<const N: usize>() -> Result<[u8; N], QuarantineError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|e| QuarantineError::Encrypt {
        detail: format!("system random number generator failed: {e}"),
    })?;
    Ok(out)
}

/// `create_dir_all` with owner-only permissions on what it creates.
fn create_private_dir_all(dir: &Path) -> Result<(), QuarantineError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| io_error("create directory", dir, e))
}

/// fsync a directory so a rename or unlink in it is durable.
fn sync_dir(dir: &Path) -> Result<(), QuarantineError> {
    let handle = File::open(dir).map_err(|e| io_error("open directory for fsync", dir, e))?;
    handle
        .sync_all()
        .map_err(|e| io_error("fsync directory", dir, e))
}

/// Write `data` as `final_path` so that a crash never leaves a partial file there.
fn write_atomically(dir: &Path, final_path: &Path, data: &[u8]) -> Result<(), QuarantineError> {
    let name = final_path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("object");
    let temp_path = dir.join(format!(".{name}.{}.tmp", hex::encode(random_bytes::<8>()?)));
    let result = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options
            .open(&temp_path)
            .map_err(|e| io_error("create temporary file", &temp_path, e))?;
        file.write_all(data)
            .map_err(|e| io_error("write", &temp_path, e))?;
        file.sync_all()
            .map_err(|e| io_error("fsync", &temp_path, e))?;
        drop(file);
        fs::rename(&temp_path, final_path)
            .map_err(|e| io_error("rename into place", final_path, e))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        // Best effort: a leftover is swept by delete_expired later.
        let _ = fs::remove_file(&temp_path);
    }
    result
}

impl VaultInner {
    fn shard_dir(&self, key: &ObjectKey) -> PathBuf {
        let hex = key.sha256();
        self.root.join(&hex[0..2]).join(&hex[2..4])
    }

    fn object_path(&self, key: &ObjectKey) -> PathBuf {
        self.shard_dir(key).join(key.sha256())
    }

    fn key_for(&self, id: KeyId) -> Option<&QuarantineKey> {
        std::iter::once(&self.current_key)
            .chain(self.retired_keys.iter())
            .find(|k| k.id() == id)
    }

    /// Create the shard directories, fsyncing each parent whose entries changed.
    fn ensure_shard_dir(&self, dir: &Path) -> Result<(), QuarantineError> {
        if dir.is_dir() {
            return Ok(());
        }
        create_private_dir_all(dir)?;
        let mut parent = dir.parent();
        while let Some(p) = parent {
            sync_dir(p)?;
            if p == self.root {
                break;
            }
            parent = p.parent();
        }
        Ok(())
    }

    fn put_blocking(
        &self,
        key: &ObjectKey,
        bytes: &[u8],
        retention: u64,
    ) -> Result<(), QuarantineError> {
        let actual = hex::encode(Sha256::digest(bytes));
        if actual != key.sha256() {
            return Err(QuarantineError::HashMismatch {
                expected: key.sha256().to_string(),
                actual,
            });
        }
        let dir = self.shard_dir(key);
        self.ensure_shard_dir(&dir)?;
        let path = dir.join(key.sha256());

        let _guard = self.put_locks[key.stripe()]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut retention = retention;
        match read_header(&path) {
            Ok(Some(existing)) => {
                if existing.retention_until >= retention && self.key_for(existing.key_id).is_some()
                {
                    return Ok(());
                }
                // Rewrite to extend retention, or to re-encrypt under a key we hold.
                retention = retention.max(existing.retention_until);
            }
            Ok(None) => {}
            // An unreadable existing file is replaced by a good copy: we hold
            // bytes that hash to this key.
            Err(QuarantineError::Corrupt { .. })
            | Err(QuarantineError::UnsupportedVersion { .. }) => {}
            Err(other) => return Err(other),
        }
        let sealed = self.seal(key, bytes, retention)?;
        write_atomically(&dir, &path, &sealed)
    }

    fn seal(
        &self,
        key: &ObjectKey,
        plaintext: &[u8],
        retention: u64,
    ) -> Result<Vec<u8>, QuarantineError> {
        let header = Header {
            key_id: self.current_key.id(),
            retention_until: retention,
            nonce: random_bytes::<NONCE_LEN>()?,
        }
        .encode();
        let nonce =
            Nonce::<U12>::from(<[u8; NONCE_LEN]>::try_from(&header[17..29]).map_err(|_| {
                QuarantineError::Encrypt {
                    detail: "nonce length".to_string(),
                }
            })?);
        let aad = associated_data(&header, key);
        let ciphertext = self
            .current_key
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| QuarantineError::Encrypt {
                detail: "plaintext too long for AES-GCM".to_string(),
            })?;
        let mut out = Vec::with_capacity(HEADER_LEN + ciphertext.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    fn get_blocking(&self, key: &ObjectKey) -> Result<Vec<u8>, QuarantineError> {
        let path = self.object_path(key);
        let file = match fs::read(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(QuarantineError::NotFound { key: key.clone() })
            }
            Err(e) => return Err(io_error("read", &path, e)),
        };
        self.open_sealed(key, &path, &file)
    }

    fn open_sealed(
        &self,
        key: &ObjectKey,
        path: &Path,
        file: &[u8],
    ) -> Result<Vec<u8>, QuarantineError> {
        let header = Header::decode(path, file)?;
        let vault_key = self
            .key_for(header.key_id)
            .ok_or_else(|| QuarantineError::UnknownKey {
                path: path.to_path_buf(),
                key_id: header.key_id,
            })?;
        let ciphertext = &file[HEADER_LEN..];
        if ciphertext.len() < TAG_LEN {
            return Err(QuarantineError::Corrupt {
                path: path.to_path_buf(),
                detail: "truncated: shorter than the authentication tag".to_string(),
            });
        }
        let header_bytes = header.encode();
        let aad = associated_data(&header_bytes, key);
        let plaintext = vault_key
            .cipher()
            .decrypt(
                &Nonce::<U12>::from(header.nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| QuarantineError::Decrypt {
                path: path.to_path_buf(),
            })?;
        // Authenticated already; this guards against a bug writing the wrong bytes.
        let actual = hex::encode(Sha256::digest(&plaintext));
        if actual != key.sha256() {
            return Err(QuarantineError::Corrupt {
                path: path.to_path_buf(),
                detail: format!("plaintext hashes to {actual}"),
            });
        }
        Ok(plaintext)
    }

    /// Sweep every shard: stale temporary files always, and objects past their retention
    /// date when `now` is given (`None` leaves every object alone).
    fn delete_blocking(&self, key: &ObjectKey) -> Result<bool, QuarantineError> {
        let dir = self.shard_dir(key);
        let path = dir.join(key.sha256());
        // Under the put lock: a put of the same object finishes first, or starts after.
        let _guard = self.put_locks[key.stripe()]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match fs::remove_file(&path) {
            Ok(()) => {
                sync_dir(&dir)?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error("delete", &path, e)),
        }
    }

    fn delete_expired_blocking(
        &self,
        now: Option<u64>,
        wall_clock: SystemTime,
    ) -> Result<ExpiryReport, QuarantineError> {
        let mut report = ExpiryReport::default();
        for first in shard_entries(&self.root)? {
            for second in shard_entries(&first)? {
                self.sweep_shard(&second, now, wall_clock, &mut report)?;
            }
        }
        Ok(report)
    }

    fn sweep_shard(
        &self,
        dir: &Path,
        now: Option<u64>,
        wall_clock: SystemTime,
        report: &mut ExpiryReport,
    ) -> Result<(), QuarantineError> {
        let entries = fs::read_dir(dir).map_err(|e| io_error("list directory", dir, e))?;
        let mut removed_any = false;
        for entry in entries {
            let entry = entry.map_err(|e| io_error("list directory", dir, e))?;
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if name.starts_with('.') && name.ends_with(".tmp") {
                let age = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|modified| wall_clock.duration_since(modified).ok());
                if age.is_some_and(|age| age >= STALE_TEMP_AGE) && fs::remove_file(&path).is_ok() {
                    report.stale_temp_removed += 1;
                    removed_any = true;
                }
                continue;
            }
            let Ok(key) = ObjectKey::from_sha256(&name) else {
                continue;
            };
            let Some(now) = now else {
                continue;
            };
            match read_header(&path) {
                Ok(Some(header)) if header.retention_until <= now => {
                    // Hold the put lock so a concurrent put extending retention is not lost.
                    let _guard = self.put_locks[key.stripe()]
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    match read_header(&path) {
                        Ok(Some(again)) if again.retention_until <= now => {
                            match fs::remove_file(&path) {
                                Ok(()) => {
                                    removed_any = true;
                                    report.deleted.push(key);
                                }
                                Err(e) => report.failed.push(io_error("delete", &path, e)),
                            }
                        }
                        Ok(Some(_)) => report.kept += 1,
                        Ok(None) => {}
                        Err(_) => report.unreadable.push(path),
                    }
                }
                Ok(Some(_)) => report.kept += 1,
                Ok(None) => {}
                Err(_) => report.unreadable.push(path),
            }
        }
        if removed_any {
            sync_dir(dir)?;
        }
        Ok(())
    }
}

/// The two-hex-digit shard directories directly under `dir`.
fn shard_entries(dir: &Path) -> Result<Vec<PathBuf>, QuarantineError> {
    let mut out = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| io_error("list directory", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_error("list directory", dir, e))?;
        let is_shard = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.len() == 2 && n.bytes().all(|b| b.is_ascii_hexdigit()));
        if is_shard && entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Every 16-byte window of `haystack`, to check that no run of plaintext survives on disk.
#[cfg(test)]
fn windows16(haystack: &[u8]) -> std::collections::HashSet<[u8; 16]> {
    haystack
        .windows(16)
        .map(|w| <[u8; 16]>::try_from(w).unwrap_or([0; 16]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    const DAY: Duration = Duration::from_secs(86_400);

    fn sha256_hex(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    fn sample_image() -> Vec<u8> {
        // Recognisable, non-repeating plaintext: a fake PNG header then a counter.
        let mut bytes = b"\x89PNG\r\n\x1a\nIHDR cover art for the quarantine test".to_vec();
        for i in 0u32..1024 {
            bytes.extend_from_slice(&i.to_le_bytes());
        }
        bytes
    }

    /// The sample image and its sha256, the name a vault files it under.
    fn sample_with_sha() -> (Vec<u8>, String) {
        let image = sample_image();
        let sha = sha256_hex(&image);
        (image, sha)
    }

    fn vault(dir: &Path) -> LocalVault {
        LocalVault::open(dir.join("vault"), QuarantineKey::generate().unwrap()).unwrap()
    }

    /// A vault with a new key in a new temporary directory.
    /// Puts `bytes` under their own sha256, kept for a day.
    async fn keep_for_a_day(vault: &LocalVault, bytes: &[u8]) -> ObjectKey {
        vault
            .put(&sha256_hex(bytes), bytes, SystemTime::now() + DAY)
            .await
            .unwrap()
    }

    fn fresh_vault() -> (tempfile::TempDir, LocalVault) {
        let dir = tempfile::tempdir().unwrap();
        let vault = vault(dir.path());
        (dir, vault)
    }

    #[tokio::test]
    async fn delete_removes_one_object_whatever_its_retention() {
        let (_dir, vault) = fresh_vault();
        let image = sample_image();
        let other = b"other evidence".to_vec();
        let key = keep_for_a_day(&vault, &image).await;
        let kept = keep_for_a_day(&vault, &other).await;
        assert!(vault.delete(&key).await.unwrap());
        assert!(!vault.object_path(&key).exists());
        assert!(matches!(
            vault.get(&key).await,
            Err(QuarantineError::NotFound { .. })
        ));
        assert!(!vault.delete(&key).await.unwrap(), "already gone");
        assert_eq!(vault.get(&kept).await.unwrap(), other);
    }

    #[tokio::test]
    async fn round_trip() {
        let (dir, vault) = fresh_vault();
        let (image, sha) = sample_with_sha();
        let key = keep_for_a_day(&vault, &image).await;
        assert_eq!(key.sha256(), sha);
        let path = vault.object_path(&key);
        assert!(path.starts_with(dir.path().join("vault").join(&sha[0..2]).join(&sha[2..4])));
        assert_eq!(vault.get(&key).await.unwrap(), image);
        // Object safe: the service holds it as a trait object.
        let shared: Arc<dyn QuarantineVault> = Arc::new(vault.clone());
        assert_eq!(shared.get(&key).await.unwrap(), image);
        // Upper-case input names the same object.
        let upper = vault
            .put(&sha.to_ascii_uppercase(), &image, SystemTime::now() + DAY)
            .await
            .unwrap();
        assert_eq!(upper, key);
    }

    #[tokio::test]
    async fn ciphertext_on_disk_hides_the_plaintext() {
        let (_dir, vault) = fresh_vault();
        let image = sample_image();
        let key = keep_for_a_day(&vault, &image).await;
        let on_disk = fs::read(vault.object_path(&key)).unwrap();
        assert_ne!(on_disk, image);
        assert_eq!(on_disk.len(), HEADER_LEN + image.len() + TAG_LEN);
        assert_eq!(&on_disk[0..4], b"CGQV");
        let disk_windows = windows16(&on_disk);
        let leaked = image
            .windows(16)
            .filter(|w| disk_windows.contains(*w))
            .count();
        assert_eq!(leaked, 0, "a 16-byte run of plaintext is on disk");
    }

    #[tokio::test]
    async fn tampering_is_detected() {
        let (_dir, vault) = fresh_vault();
        let image = sample_image();
        let key = keep_for_a_day(&vault, &image).await;
        let path = vault.object_path(&key);
        let original = fs::read(&path).unwrap();

        // One ciphertext bit.
        let mut flipped = original.clone();
        flipped[HEADER_LEN + 100] ^= 0x01;
        fs::write(&path, &flipped).unwrap();
        assert!(matches!(
            vault.get(&key).await,
            Err(QuarantineError::Decrypt { .. })
        ));

        // The retention date in the header (authenticated as associated data).
        let mut retention_edited = original.clone();
        retention_edited[16] ^= 0x01;
        fs::write(&path, &retention_edited).unwrap();
        assert!(matches!(
            vault.get(&key).await,
            Err(QuarantineError::Decrypt { .. })
        ));

        // The tag.
        let mut tag_flipped = original.clone();
        let last = tag_flipped.len() - 1;
        tag_flipped[last] ^= 0x80;
        fs::write(&path, &tag_flipped).unwrap();
        assert!(matches!(
            vault.get(&key).await,
            Err(QuarantineError::Decrypt { .. })
        ));

        // Truncation.
        fs::write(&path, &original[..HEADER_LEN + 5]).unwrap();
        assert!(matches!(
            vault.get(&key).await,
            Err(QuarantineError::Corrupt { .. })
        ));
        fs::write(&path, &original[..10]).unwrap();
        assert!(matches!(
            vault.get(&key).await,
            Err(QuarantineError::Corrupt { .. })
        ));

        // Bad magic and an unknown version.
        let mut bad_magic = original.clone();
        bad_magic[0] = b'X';
        fs::write(&path, &bad_magic).unwrap();
        assert!(matches!(
            vault.get(&key).await,
            Err(QuarantineError::Corrupt { .. })
        ));
        let mut future_version = original.clone();
        future_version[4] = 9;
        fs::write(&path, &future_version).unwrap();
        assert!(matches!(
            vault.get(&key).await,
            Err(QuarantineError::UnsupportedVersion { version: 9, .. })
        ));

        // Another object's file under this name: the key is associated data.
        let other = b"another image".to_vec();
        let other_key = keep_for_a_day(&vault, &other).await;
        fs::copy(vault.object_path(&other_key), &path).unwrap();
        assert!(matches!(
            vault.get(&key).await,
            Err(QuarantineError::Decrypt { .. })
        ));

        // A put of the real bytes repairs a corrupt object.
        fs::write(&path, &original[..10]).unwrap();
        vault
            .put(key.sha256(), &image, SystemTime::now() + DAY)
            .await
            .unwrap();
        assert_eq!(vault.get(&key).await.unwrap(), image);
    }

    #[tokio::test]
    async fn wrong_key_is_an_error_and_retired_keys_still_decrypt() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("vault");
        let old_key = QuarantineKey::generate().unwrap();
        let writer = LocalVault::open(&root, old_key.clone()).unwrap();
        let image = sample_image();
        let key = keep_for_a_day(&writer, &image).await;

        let stranger = LocalVault::open(&root, QuarantineKey::generate().unwrap()).unwrap();
        match stranger.get(&key).await {
            Err(QuarantineError::UnknownKey { key_id, .. }) => assert_eq!(key_id, old_key.id()),
            other => panic!("expected UnknownKey, got {other:?}"),
        }

        // A different key that claims the same id (forged header) fails authentication.
        let forged = LocalVault::open(&root, QuarantineKey::generate().unwrap()).unwrap();
        let path = forged.object_path(&key);
        let mut file = fs::read(&path).unwrap();
        file[5..9].copy_from_slice(&forged.inner.current_key.id().0.to_be_bytes());
        fs::write(&path, &file).unwrap();
        assert!(matches!(
            forged.get(&key).await,
            Err(QuarantineError::Decrypt { .. })
        ));
        file[5..9].copy_from_slice(&old_key.id().0.to_be_bytes());
        fs::write(&path, &file).unwrap();

        // Rotation: the new vault encrypts with a new key and reads the old objects.
        let rotated = LocalVault::open_with_retired_keys(
            &root,
            QuarantineKey::generate().unwrap(),
            vec![old_key.clone()],
        )
        .unwrap();
        assert_eq!(rotated.get(&key).await.unwrap(), image);
    }

    #[tokio::test]
    async fn put_is_idempotent_and_only_extends_retention() {
        let (_dir, vault) = fresh_vault();
        let (image, sha) = sample_with_sha();
        let until = UNIX_EPOCH + Duration::from_secs(4_000_000_000);
        let first = vault.put(&sha, &image, until).await.unwrap();
        let path = vault.object_path(&first);
        let before = fs::read(&path).unwrap();

        let second = vault.put(&sha, &image, until).await.unwrap();
        assert_eq!(first, second);
        assert_eq!(
            fs::read(&path).unwrap(),
            before,
            "second put rewrote the file"
        );

        // An earlier retention never shortens the stored one.
        vault.put(&sha, &image, until - DAY).await.unwrap();
        assert_eq!(fs::read(&path).unwrap(), before);
        assert_eq!(vault.retention_until(&first).await.unwrap(), until);

        // A later one extends it.
        vault.put(&sha, &image, until + DAY).await.unwrap();
        assert_eq!(vault.retention_until(&first).await.unwrap(), until + DAY);
        assert_eq!(vault.get(&first).await.unwrap(), image);
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_puts_of_one_object_leave_one_valid_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("vault");
        let key_material = QuarantineKey::generate().unwrap();
        let (image, sha) = sample_with_sha();
        let shared = LocalVault::open(&root, key_material.clone()).unwrap();
        let mut tasks = Vec::new();
        for i in 0..8u64 {
            // Half share one vault, half open their own (as separate processes would),
            // so the in-process lock is not the only guard.
            let vault = if i % 2 == 0 {
                shared.clone()
            } else {
                LocalVault::open(&root, key_material.clone()).unwrap()
            };
            let image = image.clone();
            let sha = sha.clone();
            tasks.push(tokio::spawn(async move {
                vault
                    .put(
                        &sha,
                        &image,
                        UNIX_EPOCH + Duration::from_secs(4_000_000_000 + i),
                    )
                    .await
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let vault = LocalVault::open(&root, key_material).unwrap();
        let key = ObjectKey::from_sha256(&sha).unwrap();
        let shard: Vec<_> = fs::read_dir(vault.object_path(&key).parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            shard,
            vec![std::ffi::OsString::from(&sha)],
            "leftover temporary files"
        );
        assert_eq!(vault.get(&key).await.unwrap(), image);
    }

    #[tokio::test]
    async fn expired_objects_are_deleted_and_others_kept() {
        let (dir, vault) = fresh_vault();
        let now = SystemTime::now();
        let old = b"expired image".to_vec();
        let fresh = b"image still under retention".to_vec();
        let old_key = vault.put(&sha256_hex(&old), &old, now - DAY).await.unwrap();
        let fresh_key = vault
            .put(&sha256_hex(&fresh), &fresh, now + DAY)
            .await
            .unwrap();

        // A crashed write's leftover, old enough to sweep, and a garbage file to leave alone.
        let shard = vault
            .object_path(&fresh_key)
            .parent()
            .unwrap()
            .to_path_buf();
        let stale = shard.join(format!(".{}.deadbeef.tmp", fresh_key));
        let leave_stale = || {
            fs::write(&stale, b"partial").unwrap();
            let stale_file = File::options().write(true).open(&stale).unwrap();
            stale_file
                .set_modified(now - Duration::from_secs(7200))
                .unwrap();
        };
        leave_stale();
        let garbage_name = "ab".repeat(32);
        let garbage_dir = dir.path().join("vault").join("ab").join("ab");
        fs::create_dir_all(&garbage_dir).unwrap();
        fs::write(garbage_dir.join(&garbage_name), b"not a vault file").unwrap();

        // The start-up sweep takes the stale temporary file and nothing else, not even the
        // expired object.
        let young = shard.join(format!(".{}.0123.tmp", fresh_key));
        fs::write(&young, b"a write in progress").unwrap();
        assert_eq!(vault.sweep_stale_temporaries().await.unwrap(), 1);
        assert!(!stale.exists() && young.exists());
        assert!(vault.object_path(&old_key).exists());
        fs::remove_file(&young).unwrap();
        leave_stale();

        let report = vault.delete_expired(now).await.unwrap();
        assert_eq!(report.deleted, vec![old_key.clone()]);
        assert_eq!(report.kept, 1);
        assert_eq!(report.stale_temp_removed, 1);
        assert_eq!(report.unreadable, vec![garbage_dir.join(&garbage_name)]);
        assert!(report.failed.is_empty());
        assert!(!stale.exists());
        assert!(matches!(
            vault.get(&old_key).await,
            Err(QuarantineError::NotFound { .. })
        ));
        assert_eq!(vault.get(&fresh_key).await.unwrap(), fresh);

        // Once its date passes, the fresh one goes too.
        let later = vault.delete_expired(now + DAY + DAY).await.unwrap();
        assert_eq!(later.deleted, vec![fresh_key]);
    }

    #[tokio::test]
    async fn bad_keys_and_hashes_are_refused() {
        let (_dir, vault) = fresh_vault();
        let image = sample_image();
        let wrong = sha256_hex(b"something else");
        assert!(matches!(
            vault.put(&wrong, &image, SystemTime::now()).await,
            Err(QuarantineError::HashMismatch { .. })
        ));
        for bad in [
            "../../etc/passwd",
            "",
            &"g".repeat(64),
            &format!("{}/", &wrong[..63]),
        ] {
            assert!(matches!(
                vault.put(bad, &image, SystemTime::now()).await,
                Err(QuarantineError::InvalidKey { .. })
            ));
        }
        let missing = ObjectKey::from_sha256(&wrong).unwrap();
        assert!(matches!(
            vault.get(&missing).await,
            Err(QuarantineError::NotFound { .. })
        ));
        // Keys deserialise only when valid.
        assert!(serde_json::from_str::<ObjectKey>("\"../x\"").is_err());
        let round: ObjectKey =
            serde_json::from_str(&serde_json::to_string(&missing).unwrap()).unwrap();
        assert_eq!(round, missing);
    }

    #[test]
    fn key_never_prints_its_bytes() {
        let bytes: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(11));
        let hex_form = hex::encode(bytes);
        let b64_form = base64::engine::general_purpose::STANDARD.encode(bytes);
        let key = QuarantineKey::parse(&hex_form).unwrap();
        let from_b64 = QuarantineKey::parse(&b64_form).unwrap();
        assert_eq!(key.id(), from_b64.id());
        assert_eq!(key.id(), QuarantineKey::from_bytes(bytes).id());
        for shown in [
            format!("{key:?}"),
            format!("{key:#?}"),
            format!("{key}"),
            format!(
                "{:?}",
                LocalVault::open(tempfile::tempdir().unwrap().path(), key.clone()).unwrap()
            ),
        ] {
            assert!(!shown.contains(&hex_form), "{shown}");
            assert!(!shown.contains(&hex_form.to_ascii_uppercase()), "{shown}");
            assert!(!shown.contains(&b64_form[..20]), "{shown}");
            assert!(!shown.contains(&format!("{:?}", &bytes[..4])), "{shown}");
            assert!(shown.contains(&key.id().to_string()), "{shown}");
        }
        // Errors do not echo the input either.
        let almost = &hex_form[..62];
        let err = QuarantineKey::parse(almost).unwrap_err();
        assert!(!err.to_string().contains(almost));
        assert!(matches!(
            QuarantineKey::parse(&base64::engine::general_purpose::STANDARD.encode([1u8; 16])),
            Err(KeyError::WrongLength { bytes: 16 })
        ));
        assert!(matches!(
            QuarantineKey::parse("not a key!"),
            Err(KeyError::Malformed)
        ));
    }

    #[test]
    fn key_from_env() {
        let var = "COVERGUARD_QUARANTINE_KEY_TEST_ONLY";
        std::env::remove_var(var);
        assert!(matches!(
            QuarantineKey::from_env(var),
            Err(KeyError::MissingEnv { .. })
        ));
        let bytes = [7u8; 32];
        std::env::set_var(var, format!("  {}\n", hex::encode(bytes)));
        assert_eq!(
            QuarantineKey::from_env(var).unwrap().id(),
            QuarantineKey::from_bytes(bytes).id()
        );
        std::env::remove_var(var);
    }

    #[tokio::test]
    async fn unwritable_places_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let (image, sha) = sample_with_sha();

        // The vault root's parent is a file.
        let file = dir.path().join("a-file");
        fs::write(&file, b"x").unwrap();
        let err =
            LocalVault::open(file.join("vault"), QuarantineKey::generate().unwrap()).unwrap_err();
        assert_eq!(err.kind(), "io", "{err}");
        // The root itself is a file.
        let err = LocalVault::open(&file, QuarantineKey::generate().unwrap()).unwrap_err();
        assert_eq!(err.kind(), "io", "{err}");

        // The shard directory's place is taken by a file after opening.
        let vault = vault(dir.path());
        fs::write(vault.root().join(&sha[0..2]), b"x").unwrap();
        let err = vault
            .put(&sha, &image, SystemTime::now())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "io", "{err}");

        // A file system that refuses writes (even to root): /proc.
        #[cfg(target_os = "linux")]
        {
            let err = LocalVault::open(
                "/proc/coverguard-vault-test",
                QuarantineKey::generate().unwrap(),
            )
            .unwrap_err();
            assert!(matches!(err.kind(), "io" | "permission_denied"), "{err}");
        }

        // A read-only directory; root ignores mode bits, so check by probing.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let ro_dir = tempfile::tempdir().unwrap();
            let vault =
                LocalVault::open(ro_dir.path(), QuarantineKey::generate().unwrap()).unwrap();
            fs::set_permissions(ro_dir.path(), fs::Permissions::from_mode(0o500)).unwrap();
            let probe_writable = fs::write(ro_dir.path().join("probe"), b"").is_ok();
            let result = vault.put(&sha, &image, SystemTime::now()).await;
            fs::set_permissions(ro_dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
            if !probe_writable {
                assert_eq!(result.unwrap_err().kind(), "permission_denied");
            }
        }
    }

    /// A real ENOSPC (from /dev/full) maps to `StorageFull`, not a generic error.
    #[cfg(target_os = "linux")]
    #[test]
    fn disk_full_is_its_own_kind() {
        let path = Path::new("/dev/full");
        let mut full = OpenOptions::new().write(true).open(path).unwrap();
        let err = full
            .write_all(&[0u8; 4096])
            .and_then(|_| full.flush())
            .unwrap_err();
        let mapped = io_error("write", path, err);
        assert_eq!(mapped.kind(), "storage_full", "{mapped}");
    }
}
