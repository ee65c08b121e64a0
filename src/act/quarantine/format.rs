//! The quarantine's file format (version 1).
//!
//! Each object is one file `<root>/<ab>/<cd>/<sha256>` (the first two byte
//! pairs of the hash shard the directories):
//!
//! | offset | size | field |
//! | ---: | ---: | --- |
//! | 0 | 4 | magic `CGQV` |
//! | 4 | 1 | format version, `1` |
//! | 5 | 4 | key id, big endian ([`KeyId`]) |
//! | 9 | 8 | retention_until, Unix seconds, big endian |
//! | 17 | 12 | AES-GCM nonce, random per write |
//! | 29 | n + 16 | AES-256-GCM ciphertext of the n plaintext bytes, then the tag |
//!
//! The associated data is the 29-byte header followed by the ASCII hex SHA-256,
//! so a file moved to another object's name, or with an edited retention date
//! or key id, fails authentication instead of decrypting. The key id lets keys
//! rotate: a vault decrypts with any key it holds and encrypts with its current
//! one. Retention lives in the header so [`QuarantineVault::delete_expired`](super::QuarantineVault::delete_expired)
//! works from the files alone.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use super::key::KeyId;
use super::{io_error, ObjectKey, QuarantineError};

pub(super) const MAGIC: [u8; 4] = *b"CGQV";
pub(super) const FORMAT_VERSION: u8 = 1;
pub(super) const NONCE_LEN: usize = 12;
pub(super) const TAG_LEN: usize = 16;
pub(super) const HEADER_LEN: usize = 4 + 1 + 4 + 8 + NONCE_LEN;

/// The decoded fixed-size header of a quarantine file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Header {
    pub(super) key_id: KeyId,
    pub(super) retention_until: u64,
    pub(super) nonce: [u8; NONCE_LEN],
}

impl Header {
    pub(super) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(&MAGIC);
        out[4] = FORMAT_VERSION;
        out[5..9].copy_from_slice(&self.key_id.0.to_be_bytes());
        out[9..17].copy_from_slice(&self.retention_until.to_be_bytes());
        out[17..29].copy_from_slice(&self.nonce);
        out
    }

    pub(super) fn decode(path: &Path, bytes: &[u8]) -> Result<Header, QuarantineError> {
        let corrupt = |detail: &str| QuarantineError::Corrupt {
            path: path.to_path_buf(),
            detail: detail.to_string(),
        };
        if bytes.len() < HEADER_LEN {
            return Err(corrupt("shorter than the header"));
        }
        if bytes[0..4] != MAGIC {
            return Err(corrupt("bad magic"));
        }
        if bytes[4] != FORMAT_VERSION {
            return Err(QuarantineError::UnsupportedVersion {
                path: path.to_path_buf(),
                version: bytes[4],
            });
        }
        let mut key_id = [0u8; 4];
        key_id.copy_from_slice(&bytes[5..9]);
        let mut retention = [0u8; 8];
        retention.copy_from_slice(&bytes[9..17]);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&bytes[17..29]);
        Ok(Header {
            key_id: KeyId(u32::from_be_bytes(key_id)),
            retention_until: u64::from_be_bytes(retention),
            nonce,
        })
    }
}

/// Associated data: the header and the object key, binding the ciphertext to both.
pub(super) fn associated_data(header: &[u8; HEADER_LEN], key: &ObjectKey) -> Vec<u8> {
    let mut aad = Vec::with_capacity(HEADER_LEN + 64);
    aad.extend_from_slice(header);
    aad.extend_from_slice(key.sha256().as_bytes());
    aad
}

/// Read just the header of an object file; `None` when there is no file.
pub(super) fn read_header(path: &Path) -> Result<Option<Header>, QuarantineError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("open", path, e)),
    };
    let mut buf = [0u8; HEADER_LEN];
    match file.read_exact(&mut buf) {
        Ok(()) => Header::decode(path, &buf).map(Some),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(QuarantineError::Corrupt {
            path: path.to_path_buf(),
            detail: "shorter than the header".to_string(),
        }),
        Err(e) => Err(io_error("read", path, e)),
    }
}
