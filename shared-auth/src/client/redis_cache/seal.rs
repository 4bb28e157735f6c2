//! Entries at rest: sealed with AES-256-GCM under the cache's key (a random nonce per
//! write, the Redis key as associated data), or marked as plain when no key is set.
//! Shared by the token cache and the user sessions.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine as _;

use super::RedisCacheError;

/// Version bytes in front of a stored value.
const PLAIN: u8 = 0;
const SEALED: u8 = 1;

/// A 256-bit AES-GCM key for entries at rest (set with
/// [`RedisCacheConfig::with_encryption_key`]).
#[derive(Clone)]
pub(crate) struct CacheEncryptionKey(Arc<RandomizedNonceKey>);

impl CacheEncryptionKey {
    /// From 32 raw bytes.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, RedisCacheError> {
        if bytes.len() != 32 {
            return Err(RedisCacheError::InvalidKey);
        }
        RandomizedNonceKey::new(&AES_256_GCM, bytes)
            .map(|k| CacheEncryptionKey(Arc::new(k)))
            .map_err(|_| RedisCacheError::InvalidKey)
    }

    /// From base64 (standard or URL-safe alphabet, padding optional) of 32 bytes.
    pub(crate) fn from_base64(text: &str) -> Result<Self, RedisCacheError> {
        use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
        let text = text.trim().trim_end_matches('=');
        let bytes = STANDARD_NO_PAD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text))
            .map_err(|_| RedisCacheError::InvalidKey)?;
        Self::from_bytes(&bytes)
    }
}

impl fmt::Debug for CacheEncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CacheEncryptionKey([redacted])")
    }
}

/// `plain` as stored under `redis_key`: sealed with AES-256-GCM (a random nonce, the Redis
/// key as associated data) when there is a key, else marked as plain. Shared by the token
/// cache and the user sessions.
pub(crate) fn seal_value(
    seal: Option<&CacheEncryptionKey>,
    redis_key: &str,
    plain: Vec<u8>,
) -> Option<Vec<u8>> {
    let Some(seal) = seal else {
        let mut out = Vec::with_capacity(plain.len() + 1);
        out.push(PLAIN);
        out.extend_from_slice(&plain);
        return Some(out);
    };
    let mut in_out = plain;
    let nonce = seal
        .0
        .seal_in_place_append_tag(Aad::from(redis_key.as_bytes()), &mut in_out)
        .ok()?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
    out.push(SEALED);
    out.extend_from_slice(nonce.as_ref());
    out.extend_from_slice(&in_out);
    Some(out)
}

/// The plain bytes of `value`, if it opens under `redis_key`. A sealed value needs the key
/// and an unsealed one is refused when a key is configured, so an attacker who can write
/// to Redis cannot plant an entry, nor move one to another key.
pub(crate) fn open_value(
    seal: Option<&CacheEncryptionKey>,
    redis_key: &str,
    value: &[u8],
) -> Option<Vec<u8>> {
    let (&version, rest) = value.split_first()?;
    match (version, seal) {
        (PLAIN, None) => Some(rest.to_vec()),
        (SEALED, Some(seal)) => {
            let (nonce, sealed) = rest.split_at_checked(NONCE_LEN)?;
            let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
            let mut in_out = sealed.to_vec();
            let plain = seal
                .0
                .open_in_place(nonce, Aad::from(redis_key.as_bytes()), &mut in_out)
                .ok()?;
            Some(plain.to_vec())
        }
        _ => None,
    }
}
