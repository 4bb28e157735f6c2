//! The issuer's signing keys: fetched, parsed, cached and refreshed.
//!
//! Keys live in an [`ArcSwap`] so every request reads them without a lock. They change in
//! three ways:
//! - at start (or, in lazy mode, on first use);
//! - on a background interval (default 1 h, with up to 10 % random jitter so a fleet of
//!   replicas does not refresh in step);
//! - when a token names a `kid` the cache does not know. One refresh then runs for all the
//!   concurrent requests that need it (single flight), and the request that triggered it is
//!   validated against the refreshed keys. Such refreshes are rate-limited (default: at most
//!   one per 10 s), so a flood of garbage `kid`s cannot hammer the issuer.
//!
//! A failed refresh keeps the last good keys. Parsing skips keys this validator cannot or
//! must not use (`use: enc`, unknown `kty`, no `alg`, `alg` outside the allow-list, HMAC
//! keys) instead of rejecting the whole set.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use super::validated_cache::ValidatedCache;

/// A usable verification key.
pub(crate) struct VerifyKey {
    pub(crate) alg: Algorithm,
    pub(crate) key: DecodingKey,
}

/// An immutable snapshot of the key set.
#[derive(Default)]
pub(crate) struct KeySet {
    by_kid: HashMap<String, Arc<VerifyKey>>,
    /// Keys published without a `kid`.
    anonymous: Vec<Arc<VerifyKey>>,
}

impl KeySet {
    pub(crate) fn len(&self) -> usize {
        self.by_kid.len() + self.anonymous.len()
    }

    /// Whether replacing `old` with this set withdraws any key. Keys without a `kid`
    /// cannot be matched, so an old anonymous key counts as withdrawn.
    fn withdraws_keys_of(&self, old: &KeySet) -> bool {
        !old.anonymous.is_empty() || old.by_kid.keys().any(|kid| !self.by_kid.contains_key(kid))
    }

    /// The key for a token's `kid`. A token without `kid` is accepted only when the set
    /// has exactly one key: with several, guessing would mean trying keys in turn.
    pub(crate) fn find(&self, kid: Option<&str>) -> Option<Arc<VerifyKey>> {
        match kid {
            Some(kid) => self.by_kid.get(kid).cloned(),
            None if self.len() == 1 => self
                .by_kid
                .values()
                .chain(self.anonymous.iter())
                .next()
                .cloned(),
            None => None,
        }
    }
}

fn to_algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        // HMAC keys never verify access tokens from an issuer; encryption algorithms are
        // not signature algorithms.
        _ => return None,
    })
}

/// Parses a JWKS document, keeping only the keys usable for `allowed` algorithms.
/// Returns the set and how many keys were skipped.
pub(crate) fn parse_jwks(body: &[u8], allowed: &[Algorithm]) -> Result<(KeySet, usize), String> {
    #[derive(Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let doc: Document = serde_json::from_slice(body).map_err(|e| format!("not a JWK set: {e}"))?;
    let mut set = KeySet::default();
    let mut skipped = 0;
    for raw in doc.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw) else {
            skipped += 1; // unknown kty or malformed: not for us
            continue;
        };
        let common = &jwk.common;
        let usable_use = matches!(common.public_key_use, None | Some(PublicKeyUse::Signature));
        let alg = common.key_algorithm.and_then(to_algorithm);
        let (true, Some(alg)) = (usable_use, alg) else {
            skipped += 1;
            continue;
        };
        if !allowed.contains(&alg) {
            skipped += 1;
            continue;
        }
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            skipped += 1;
            continue;
        };
        let key = Arc::new(VerifyKey { alg, key });
        match &common.key_id {
            Some(kid) => {
                set.by_kid.insert(kid.clone(), key);
            }
            None => set.anonymous.push(key),
        }
    }
    Ok((set, skipped))
}

/// Why a key could not be found for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyLookupError {
    /// No key with that `kid` (after a refresh, or while refreshes are rate-limited).
    UnknownKey,
    /// No keys could ever be loaded (lazy start with the issuer down).
    NoKeys,
}

/// Timing knobs of the key cache.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyCacheTiming {
    pub(crate) refresh_interval: Duration,
    pub(crate) unknown_kid_min_interval: Duration,
}

pub(crate) struct KeyCache {
    http: reqwest::Client,
    jwks_uri: String,
    allowed: Vec<Algorithm>,
    keys: ArcSwap<KeySet>,
    /// Bumped by every successful refresh; lets waiters see that a refresh happened while
    /// they queued for the lock.
    generation: AtomicU64,
    /// Serialises refreshes (single flight). An async lock on purpose: it is held across
    /// the fetch.
    refresh_lock: tokio::sync::Mutex<()>,
    last_unknown_kid_refresh: Mutex<Option<Instant>>,
    timing: KeyCacheTiming,
    /// Cleared when a refresh withdraws a key.
    validated: Arc<ValidatedCache>,
}

impl KeyCache {
    pub(crate) fn new(
        http: reqwest::Client,
        jwks_uri: String,
        allowed: Vec<Algorithm>,
        timing: KeyCacheTiming,
        validated: Arc<ValidatedCache>,
    ) -> Self {
        KeyCache {
            http,
            jwks_uri,
            allowed,
            keys: ArcSwap::from_pointee(KeySet::default()),
            generation: AtomicU64::new(0),
            refresh_lock: tokio::sync::Mutex::new(()),
            last_unknown_kid_refresh: Mutex::new(None),
            timing,
            validated,
        }
    }

    pub(crate) fn jwks_uri(&self) -> &str {
        &self.jwks_uri
    }

    /// Number of usable keys now.
    pub(crate) fn key_count(&self) -> usize {
        self.keys.load().len()
    }

    /// Fetches the JWKS and swaps it in. On failure the previous keys stay.
    pub(crate) async fn refresh(&self, reason: &'static str) -> Result<usize, String> {
        let result = self.fetch().await;
        let outcome = if result.is_ok() { "success" } else { "failure" };
        metrics::counter!(crate::metrics::JWKS_REFRESHES, "reason" => reason, "outcome" => outcome)
            .increment(1);
        match result {
            Ok((set, skipped)) => {
                let count = set.len();
                let old = self.keys.swap(Arc::new(set));
                if self.keys.load().withdraws_keys_of(&old) {
                    self.validated.clear();
                    tracing::debug!(
                        reason,
                        "a signing key was withdrawn; validated-token cache cleared"
                    );
                }
                self.generation.fetch_add(1, Ordering::SeqCst);
                tracing::debug!(reason, keys = count, skipped, jwks_uri = %self.jwks_uri, "JWKS refreshed");
                Ok(count)
            }
            Err(error) => {
                tracing::warn!(reason, %error, jwks_uri = %self.jwks_uri, keys_kept = self.key_count(), "JWKS refresh failed; keeping the last good keys");
                Err(error)
            }
        }
    }

    async fn fetch(&self) -> Result<(KeySet, usize), String> {
        let response = self
            .http
            .get(&self.jwks_uri)
            .send()
            .await
            .map_err(|e| format!("GET {}: {e}", self.jwks_uri))?;
        if !response.status().is_success() {
            return Err(format!("GET {}: HTTP {}", self.jwks_uri, response.status()));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("GET {}: {e}", self.jwks_uri))?;
        let (set, skipped) = parse_jwks(&body, &self.allowed)?;
        if set.len() == 0 {
            return Err(format!(
                "{} has no usable signing key ({skipped} skipped: wrong use, type or algorithm)",
                self.jwks_uri
            ));
        }
        Ok((set, skipped))
    }

    /// The loaded key for a token's `kid`, without waiting; `None`: not loaded.
    pub(crate) fn loaded(&self, kid: Option<&str>) -> Option<Arc<VerifyKey>> {
        self.keys.load().find(kid)
    }

    /// The key for a token's `kid`; refreshes once (shared, rate-limited) when unknown.
    pub(crate) async fn key_for(
        &self,
        kid: Option<&str>,
    ) -> Result<Arc<VerifyKey>, KeyLookupError> {
        if let Some(key) = self.keys.load().find(kid) {
            return Ok(key);
        }
        let seen_generation = self.generation.load(Ordering::SeqCst);
        let _guard = self.refresh_lock.lock().await;
        // Someone else refreshed while this request queued: use their result.
        if self.generation.load(Ordering::SeqCst) != seen_generation {
            return self.lookup_after_refresh(kid);
        }
        let never_loaded = self.key_count() == 0;
        if !never_loaded && !self.take_unknown_kid_slot() {
            tracing::debug!("unknown kid; refresh skipped (rate-limited)");
            return Err(KeyLookupError::UnknownKey);
        }
        let reason = if never_loaded {
            "no_keys"
        } else {
            "unknown_kid"
        };
        let _ = self.refresh(reason).await;
        self.lookup_after_refresh(kid)
    }

    fn lookup_after_refresh(&self, kid: Option<&str>) -> Result<Arc<VerifyKey>, KeyLookupError> {
        let keys = self.keys.load();
        keys.find(kid).ok_or(if keys.len() == 0 {
            KeyLookupError::NoKeys
        } else {
            KeyLookupError::UnknownKey
        })
    }

    /// Claims the unknown-kid refresh slot if the rate limit allows one now.
    fn take_unknown_kid_slot(&self) -> bool {
        let mut last = self
            .last_unknown_kid_refresh
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match *last {
            Some(at) if now.duration_since(at) < self.timing.unknown_kid_min_interval => false,
            _ => {
                *last = Some(now);
                true
            }
        }
    }

    /// Starts the background refresh. It holds only a weak reference: dropping the
    /// validator ends it.
    pub(crate) fn spawn_background_refresh(self: &Arc<Self>) {
        let weak: Weak<Self> = Arc::downgrade(self);
        let interval = self.timing.refresh_interval;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(jittered(interval)).await;
                let Some(cache) = weak.upgrade() else { return };
                let _guard = cache.refresh_lock.lock().await;
                let _ = cache.refresh("interval").await;
            }
        });
    }
}

/// `interval` plus up to 10 % random jitter.
fn jittered(interval: Duration) -> Duration {
    let mut byte = [0u8; 1];
    // Jitter only de-synchronises replicas; if the RNG failed the interval is unjittered.
    let _ = aws_lc_rs::rand::fill(&mut byte);
    interval + interval.mul_f64(f64::from(byte[0]) / 255.0 * 0.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_keys_are_skipped_not_fatal() {
        let n = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";
        let jwks = serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "sig", "alg": "RS256", "use": "sig", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "alg": "RS256", "use": "enc", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "noalg", "n": n, "e": "AQAB"},
            {"kty": "oct", "kid": "hmac", "alg": "HS256", "k": "c2VjcmV0"},
            {"kty": "XYZ", "kid": "weird"},
            {"kty": "RSA", "kid": "ps", "alg": "PS512", "n": n, "e": "AQAB"},
        ]});
        let (set, skipped) = parse_jwks(jwks.to_string().as_bytes(), &[Algorithm::RS256]).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(skipped, 5);
        assert!(set.find(Some("sig")).is_some());
        assert!(set.find(None).is_some(), "single key: kid may be omitted");
        assert!(parse_jwks(b"{}", &[Algorithm::RS256]).is_err());
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let base = Duration::from_secs(3600);
        for _ in 0..100 {
            let j = jittered(base);
            assert!(j >= base && j <= base + Duration::from_secs(360));
        }
    }
}
