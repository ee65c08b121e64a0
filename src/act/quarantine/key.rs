//! The quarantine's encryption key: parsed from configuration, identified by a short id
//! written into every object's header (so keys can rotate), never printed.

use std::fmt;

use aes_gcm::aead::KeyInit;
use aes_gcm::Aes256Gcm;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Environment variable the service reads the key from when the config has none.
pub const KEY_ENV_VAR: &str = "COVERGUARD_QUARANTINE_KEY";

/// Short public identifier of a key: the first 4 bytes of SHA-256 over a
/// domain label and the key. Identifies, never reveals, the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub u32);

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({:08x})", self.0)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// Why a quarantine key could not be loaded. Never contains the key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("environment variable {var} is not set")]
    MissingEnv { var: String },
    #[error("environment variable {var} is not valid UTF-8")]
    NotUnicode { var: String },
    #[error("quarantine key is neither 64 hex digits nor base64")]
    Malformed,
    #[error("quarantine key decodes to {bytes} bytes, expected 32")]
    WrongLength { bytes: usize },
    #[error("system random number generator failed: {detail}")]
    Random { detail: String },
}

/// A 256-bit AES key. Its bytes are wiped on drop and never printed:
/// `Debug` and `Display` show only the [`KeyId`].
#[derive(Clone)]
pub struct QuarantineKey {
    id: KeyId,
    bytes: Zeroizing<[u8; 32]>,
}

impl QuarantineKey {
    pub fn from_bytes(bytes: [u8; 32]) -> QuarantineKey {
        let bytes = Zeroizing::new(bytes);
        let mut hasher = Sha256::new();
        hasher.update(b"coverguard quarantine key id v1\0");
        hasher.update(bytes.as_slice());
        let digest = hasher.finalize();
        let id = KeyId(u32::from_be_bytes([
            digest[0], digest[1], digest[2], digest[3],
        ]));
        QuarantineKey { id, bytes }
    }

    /// Parse a key from config: 64 hex digits, or base64 (standard or URL-safe,
    /// padded or not) of 32 bytes. Surrounding whitespace is ignored.
    pub fn parse(encoded: &str) -> Result<QuarantineKey, KeyError> {
        let encoded = encoded.trim();
        if encoded.len() == 64 && encoded.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut bytes = Zeroizing::new([0u8; 32]);
            hex::decode_to_slice(encoded, bytes.as_mut_slice()).map_err(|_| KeyError::Malformed)?;
            return Ok(QuarantineKey::from_bytes(*bytes));
        }
        use base64::engine::general_purpose::{
            STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
        };
        let decoded = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(encoded).ok())
            .map(Zeroizing::new)
            .ok_or(KeyError::Malformed)?;
        let bytes: [u8; 32] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::WrongLength {
                bytes: decoded.len(),
            })?;
        Ok(QuarantineKey::from_bytes(bytes))
    }

    /// Read and parse the key from an environment variable (see [`KEY_ENV_VAR`]).
    pub fn from_env(var: &str) -> Result<QuarantineKey, KeyError> {
        match std::env::var(var) {
            Ok(value) => QuarantineKey::parse(&Zeroizing::new(value)),
            Err(std::env::VarError::NotPresent) => Err(KeyError::MissingEnv {
                var: var.to_string(),
            }),
            Err(std::env::VarError::NotUnicode(_)) => Err(KeyError::NotUnicode {
                var: var.to_string(),
            }),
        }
    }

    /// A fresh random key (tests, and a development default that must not outlive the process).
    pub fn generate() -> Result<QuarantineKey, KeyError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut_slice()).map_err(|e| KeyError::Random {
            detail: e.to_string(),
        })?;
        Ok(QuarantineKey::from_bytes(*bytes))
    }

    pub fn id(&self) -> KeyId {
        self.id
    }

    pub(super) fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&(*self.bytes).into())
    }
}

impl fmt::Debug for QuarantineKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuarantineKey")
            .field("id", &self.id)
            .field("bytes", &"<redacted>")
            .finish()
    }
}

impl fmt::Display for QuarantineKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "quarantine key {}", self.id)
    }
}
