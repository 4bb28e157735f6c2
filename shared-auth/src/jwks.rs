//! The issuer's signing keys: discovered, fetched, parsed, cached and refreshed. A base
//! module: the server half verifies tokens with them, the client half ID tokens.
//!
//! Keys live in an [`ArcSwap`] so every request reads them without a lock. They change in
//! three ways:
//! - at start (in lazy mode, in the background: the service starts while the issuer is
//!   down, and discovery is deferred as well);
//! - on a background interval (default 1 h, with up to 10 % random jitter so a fleet of
//!   replicas does not refresh in step; while no key is loaded, as soon as the backoff
//!   allows);
//! - on demand, when a token names a `kid` the cache does not know, when no key is
//!   loaded at all, or when a token's signature fails under a known `kid` (the issuer may
//!   have put new material under it; the token is checked again if it did). One refresh then runs for all the concurrent requests that need it
//!   (single flight), and those requests are validated against its result. On-demand
//!   refreshes pass a gate: at most one per `unknown_kid_min_interval` (default 10 s),
//!   and after failures the interval doubles up to a minute. A request that finds the gate
//!   closed is answered at once (unknown key, or 503 with `Retry-After` when no key is
//!   loaded), so a flood of garbage `kid`s, or traffic during an outage, cannot hammer the
//!   issuer.
//!
//! A failed refresh keeps the last good keys. Parsing skips keys this validator cannot or
//! must not use (`use: enc`, unknown `kty`, an `alg` outside the allow-list or of another
//! key family, HMAC keys) instead of rejecting the whole set. A key without `alg` (Entra ID
//! publishes its keys so) gets the algorithms of its family (`kty`, `crv`) that the
//! allow-list admits, never HMAC; a token's header `alg` must be one of them.
//!
//! When a refresh withdraws a key, or publishes other material (RFC 7638 thumbprint) or
//! another `alg` under a known `kid`, the key cache tells its observer (the validator bumps
//! the validated-token cache's epoch), so nothing validated with the old material is
//! served from a cache again. The key cache knows nothing of that cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde_json::Value;
use tokio::time::Instant;

use crate::discovery::{self, DiscoveryError};
use crate::issuer_http::{self, MAX_METADATA_BYTES};
use crate::jose::SignatureAlgorithm;
use crate::jose::json::{Claim, Jwk};
use crate::jose::jwk::{self, Base64};

/// A usable verification key, with what identifies its material: the RFC 7638 thumbprint
/// plus the algorithms (equal material, equal string).
pub(crate) struct VerifyKey {
    key: jwk::VerifyKey,
    material: String,
}

impl VerifyKey {
    /// Whether a token whose header names `alg` may be verified with this key.
    pub(crate) fn accepts(&self, alg: SignatureAlgorithm) -> bool {
        self.key.accepts(alg)
    }

    /// Whether `signature` is `alg`'s signature of `message` under this key.
    pub(crate) fn verifies(
        &self,
        alg: SignatureAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        self.key.verifies(alg, message, signature)
    }
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

    /// Whether replacing `old` with this set withdraws a key or changes the material or
    /// algorithms under a `kid`. Keys without a `kid` are matched by material.
    fn invalidates(&self, old: &KeySet) -> bool {
        let kid_changed = old.by_kid.iter().any(|(kid, key)| {
            self.by_kid
                .get(kid)
                .is_none_or(|new| new.material != key.material)
        });
        let anonymous_gone = old.anonymous.iter().any(|key| {
            !self
                .anonymous
                .iter()
                .any(|new| new.material == key.material)
        });
        kid_changed || anonymous_gone
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

crate::jose::json::claims! {
    /// A JWKS document: `keys`, each entry read as a JSON value by the strict rules (an
    /// entry this crate cannot use is skipped, not fatal).
    struct Document {
        keys = "keys",
    }
}

/// Parses a JWKS document, keeping only the keys usable for `allowed` algorithms.
/// Returns the set and how many keys were skipped.
pub(crate) fn parse_jwks(
    body: &[u8],
    allowed: &[SignatureAlgorithm],
) -> Result<(KeySet, usize), String> {
    let doc: Document<'_> =
        crate::jose::json::parse(body).map_err(|e| format!("not a JWK set: {e}"))?;
    let Some(Claim::Other(Value::Array(entries))) = doc.keys else {
        return Err("not a JWK set: no `keys` array".into());
    };
    let mut set = KeySet::default();
    let mut skipped = 0;
    for entry in &entries {
        let Some(jwk) = entry.as_object().and_then(Jwk::from_map) else {
            skipped += 1; // not a JWK
            continue;
        };
        let algs = jwk::usable_algorithms(&jwk, allowed);
        let Some(key) = jwk::VerifyKey::new(&jwk, &algs, Base64::Padded) else {
            skipped += 1; // HMAC, `use: enc`, another family, broken members
            continue;
        };
        let material = format!("{}:{algs:?}", key.thumbprint());
        let key = Arc::new(VerifyKey { key, material });
        match jwk.kid.as_ref() {
            Some(kid) => {
                set.by_kid.insert(kid.0.to_string(), key);
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
    /// No keys are loaded; the next on-demand attempt is allowed in `retry_after`.
    NoKeys { retry_after: Duration },
}

/// Timing knobs of the key cache.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyCacheTiming {
    pub(crate) refresh_interval: Duration,
    pub(crate) unknown_kid_min_interval: Duration,
    pub(crate) http_timeout: Duration,
}

/// Where the key set comes from.
#[derive(Debug, Clone)]
pub(crate) enum KeySource {
    /// A JWKS URL, known up front.
    Jwks(String),
    /// A discovery document whose `jwks_uri` names the JWKS. `expected_issuer`: `None`
    /// when the operator opted out of the issuer check.
    Discovery {
        url: String,
        expected_issuer: Option<String>,
    },
}

/// Why a refresh failed.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum RefreshError {
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error("{0}")]
    Keys(String),
}

/// The on-demand refresh gate: when the next attempt may run, and how many failed in a
/// row (for the backoff).
#[derive(Debug, Default)]
struct Gate {
    next: Option<Instant>,
    failures: u32,
}

/// The on-demand backoff never grows past this (or past the minimum interval, if that is
/// configured longer).
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What the discovery document gave, once.
struct Resolved {
    jwks_uri: String,
    token_endpoint: Option<String>,
}

pub(crate) struct KeyCache {
    http: reqwest::Client,
    source: KeySource,
    allowed: Vec<SignatureAlgorithm>,
    allow_insecure_http: bool,
    /// The expected `iss`: known at construction unless it comes from discovery.
    /// Shared with every principal of this issuer (one reference count, no copy).
    issuer: OnceLock<Arc<str>>,
    resolved: OnceLock<Resolved>,
    keys: ArcSwap<KeySet>,
    /// Bumped after every refresh attempt, success or failure; lets a request that queued
    /// behind an attempt use its outcome instead of starting another.
    attempts: AtomicU64,
    /// Serialises refreshes (single flight). An async lock on purpose: it is held across
    /// the fetch.
    refresh_lock: tokio::sync::Mutex<()>,
    gate: Mutex<Gate>,
    timing: KeyCacheTiming,
    /// The issuer's name in metrics and logs (see `validation::issuer_label`).
    label: String,
    /// Called after a refresh withdrew or replaced key material.
    on_invalidate: Box<dyn Fn() + Send + Sync>,
}

impl KeyCache {
    pub(crate) fn new(
        http: reqwest::Client,
        source: KeySource,
        issuer: Option<String>,
        allowed: Vec<SignatureAlgorithm>,
        allow_insecure_http: bool,
        timing: KeyCacheTiming,
        on_invalidate: Box<dyn Fn() + Send + Sync>,
    ) -> Self {
        let known_issuer = OnceLock::new();
        if let Some(issuer) = issuer {
            let _ = known_issuer.set(issuer.into());
        }
        KeyCache {
            http,
            source,
            allowed,
            allow_insecure_http,
            issuer: known_issuer,
            resolved: OnceLock::new(),
            keys: ArcSwap::from_pointee(KeySet::default()),
            attempts: AtomicU64::new(0),
            refresh_lock: tokio::sync::Mutex::new(()),
            gate: Mutex::new(Gate::default()),
            timing,
            label: String::new(),
            on_invalidate,
        }
    }

    /// Names the issuer in this cache's metrics and logs.
    pub(crate) fn labelled(mut self, label: String) -> Self {
        self.label = label;
        self
    }

    /// The expected `iss`, once known (at once, unless it comes from discovery).
    pub(crate) fn shared_issuer(&self) -> Option<&Arc<str>> {
        self.issuer.get()
    }

    /// The issuer identifier, once known.
    pub(crate) fn issuer(&self) -> Option<&str> {
        self.issuer.get().map(|i| &**i)
    }

    /// The JWKS URL, once known.
    pub(crate) fn jwks_uri(&self) -> Option<&str> {
        match &self.source {
            KeySource::Jwks(uri) => Some(uri),
            KeySource::Discovery { .. } => self.resolved.get().map(|r| r.jwks_uri.as_str()),
        }
    }

    /// The discovered token endpoint, once discovered.
    pub(crate) fn token_endpoint(&self) -> Option<&str> {
        self.resolved.get()?.token_endpoint.as_deref()
    }

    /// Number of usable keys now.
    pub(crate) fn key_count(&self) -> usize {
        self.keys.load().len()
    }

    /// The JWKS URL, discovering it first if needed.
    async fn resolve(&self) -> Result<String, RefreshError> {
        let (url, expected) = match &self.source {
            KeySource::Jwks(uri) => return Ok(uri.clone()),
            KeySource::Discovery {
                url,
                expected_issuer,
            } => (url, expected_issuer),
        };
        if let Some(resolved) = self.resolved.get() {
            return Ok(resolved.jwks_uri.clone());
        }
        let metadata = discovery::fetch(
            &self.http,
            url,
            expected.as_deref(),
            self.allow_insecure_http,
            self.timing.http_timeout,
            discovery::Need::Keys,
        )
        .await?;
        let jwks_uri = metadata.jwks_uri.ok_or_else(|| {
            RefreshError::Keys(format!("the discovery document at {url} has no jwks_uri"))
        })?;
        let _ = self.issuer.set(metadata.issuer.into());
        let _ = self.resolved.set(Resolved {
            jwks_uri: jwks_uri.clone(),
            token_endpoint: metadata.token_endpoint,
        });
        Ok(jwks_uri)
    }

    /// Fetches the JWKS (discovering it first if needed) and swaps it in. On failure the
    /// previous keys stay. Call with the refresh lock held.
    async fn refresh(&self, reason: &'static str) -> Result<usize, RefreshError> {
        let result = self.fetch().await;
        self.attempts.fetch_add(1, Ordering::SeqCst);
        self.record(result.is_ok());
        let outcome = if result.is_ok() { "success" } else { "failure" };
        metrics::counter!(crate::metrics::JWKS_REFRESHES, "reason" => reason, "outcome" => outcome, "issuer" => self.label.clone())
            .increment(1);
        match result {
            Ok((set, skipped)) => {
                let count = set.len();
                let old = self.keys.swap(Arc::new(set));
                if self.keys.load().invalidates(&old) {
                    (self.on_invalidate)();
                    tracing::debug!(
                        reason,
                        "signing key material was withdrawn or replaced; validated tokens invalidated"
                    );
                }
                tracing::debug!(reason, keys = count, skipped, jwks_uri = ?self.jwks_uri(), "JWKS refreshed");
                Ok(count)
            }
            Err(error) => {
                tracing::warn!(reason, issuer = %self.label, %error, keys_kept = self.key_count(), "JWKS refresh failed; keeping the last good keys");
                Err(error)
            }
        }
    }

    /// Refreshes now, under the refresh lock (start and background refreshes).
    pub(crate) async fn refresh_now(&self, reason: &'static str) -> Result<usize, RefreshError> {
        let _guard = self.refresh_lock.lock().await;
        self.refresh(reason).await
    }

    async fn fetch(&self) -> Result<(KeySet, usize), RefreshError> {
        let uri = self.resolve().await?;
        let fail = |reason: String| RefreshError::Keys(format!("GET {uri}: {reason}"));
        let body = issuer_http::get_capped(
            &self.http,
            &uri,
            self.timing.http_timeout,
            MAX_METADATA_BYTES,
        )
        .await
        .map_err(fail)?;
        let (set, skipped) = parse_jwks(&body, &self.allowed).map_err(fail)?;
        if set.len() == 0 {
            return Err(fail(format!(
                "no usable signing key ({skipped} skipped: wrong use, type or algorithm)"
            )));
        }
        Ok((set, skipped))
    }

    /// The loaded key for a token's `kid`, without waiting; `None`: not loaded.
    pub(crate) fn loaded(&self, kid: Option<&str>) -> Option<Arc<VerifyKey>> {
        self.keys.load().find(kid)
    }

    /// The key for a token's `kid`. When it is not loaded, one refresh runs for all the
    /// requests that need it, if the gate allows one; otherwise the answer comes at once.
    pub(crate) async fn key_for(
        &self,
        kid: Option<&str>,
    ) -> Result<Arc<VerifyKey>, KeyLookupError> {
        if let Some(key) = self.loaded(kid) {
            return Ok(key);
        }
        let seen = self.attempts.load(Ordering::SeqCst);
        let _guard = self.refresh_lock.lock().await;
        // An attempt finished while this request queued: its outcome is the answer.
        if self.attempts.load(Ordering::SeqCst) != seen {
            return self.lookup(kid);
        }
        if !self.take_gate() {
            tracing::debug!("key not loaded; on-demand refresh skipped (rate-limited)");
            return self.lookup(kid);
        }
        let reason = if self.key_count() == 0 {
            "no_keys"
        } else {
            "unknown_kid"
        };
        let _ = self.refresh(reason).await;
        self.lookup(kid)
    }

    /// Whether an on-demand refresh could run now (a cheap look, no claim).
    pub(crate) fn gate_open(&self) -> bool {
        self.gate().next.is_none_or(|next| Instant::now() >= next)
    }

    /// A token under a known `kid` failed its signature check with `used`. If the gate
    /// allows, refresh once (shared, like an unknown `kid`): when the issuer has put new
    /// material under that `kid`, the new key is returned so the token can be checked
    /// again. `None`: same material, or no refresh allowed now.
    pub(crate) async fn changed_key(
        &self,
        kid: Option<&str>,
        used: &VerifyKey,
    ) -> Option<Arc<VerifyKey>> {
        let changed = |cache: &Self| cache.loaded(kid).filter(|k| k.material != used.material);
        if let Some(key) = changed(self) {
            return Some(key);
        }
        let seen = self.attempts.load(Ordering::SeqCst);
        let _guard = self.refresh_lock.lock().await;
        if self.attempts.load(Ordering::SeqCst) == seen && self.take_gate() {
            let _ = self.refresh("signature_mismatch").await;
        }
        changed(self)
    }

    fn lookup(&self, kid: Option<&str>) -> Result<Arc<VerifyKey>, KeyLookupError> {
        let keys = self.keys.load();
        keys.find(kid).ok_or_else(|| {
            if keys.len() == 0 {
                KeyLookupError::NoKeys {
                    retry_after: self.retry_after(),
                }
            } else {
                KeyLookupError::UnknownKey
            }
        })
    }

    fn gate(&self) -> std::sync::MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims the on-demand refresh slot if the gate is open now.
    fn take_gate(&self) -> bool {
        let mut gate = self.gate();
        let now = Instant::now();
        if gate.next.is_some_and(|next| now < next) {
            return false;
        }
        gate.next = Some(now + self.timing.unknown_kid_min_interval);
        true
    }

    /// Accounts an attempt of any kind. A success resets the backoff (the gate stays as
    /// its last on-demand claim left it, so a key rotated right after a start or an
    /// interval refresh is still fetched at once, and it opens if failures had closed
    /// it); a failure closes the gate for the minimum interval doubled per consecutive
    /// failure, capped.
    fn record(&self, success: bool) {
        let mut gate = self.gate();
        if success {
            // Recovered from failures: their backoff no longer applies, so a rotation
            // seen right after an outage is fetched at once.
            if gate.failures > 0 {
                gate.next = None;
            }
            gate.failures = 0;
            return;
        }
        let min = self.timing.unknown_kid_min_interval;
        gate.failures = gate.failures.saturating_add(1);
        let factor = 1u32 << (gate.failures - 1).min(16);
        let wait = min.saturating_mul(factor).min(MAX_BACKOFF.max(min));
        gate.next = Some(Instant::now() + wait);
    }

    /// Until the gate opens again (at least 1 s, for a `Retry-After`).
    fn retry_after(&self) -> Duration {
        let next = self.gate().next;
        let left = next.map_or(Duration::ZERO, |n| {
            n.saturating_duration_since(Instant::now())
        });
        Duration::from_secs(left.as_secs_f64().ceil().max(1.0) as u64)
    }

    /// Starts the background refresh. It holds only a weak reference: dropping the
    /// validator ends it. `load_first`: load the keys at once (lazy start).
    pub(crate) fn spawn_background_refresh(self: &Arc<Self>, load_first: bool) {
        let weak: Weak<Self> = Arc::downgrade(self);
        let interval = self.timing.refresh_interval;
        tokio::spawn(async move {
            if load_first {
                let Some(cache) = weak.upgrade() else { return };
                let _ = cache.refresh_now("start").await;
            }
            loop {
                // With keys: the interval. Without (lazy start, issuer down): as soon as
                // the on-demand gate allows, so the service recovers without traffic.
                let pause = match weak.upgrade() {
                    Some(cache) if cache.key_count() == 0 => cache.retry_after(),
                    Some(_) => jittered(interval),
                    None => return,
                };
                tokio::time::sleep(pause).await;
                let Some(cache) = weak.upgrade() else { return };
                let reason = if cache.key_count() == 0 {
                    "no_keys"
                } else {
                    "interval"
                };
                let _ = cache.refresh_now(reason).await;
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

    const N: &str = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";
    /// Another modulus (the first with its first character changed).
    const N2: &str = "tXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";

    fn key_set(keys: serde_json::Value, allowed: &[SignatureAlgorithm]) -> (KeySet, usize) {
        parse_jwks(
            serde_json::json!({ "keys": keys }).to_string().as_bytes(),
            allowed,
        )
        .unwrap()
    }

    #[test]
    fn unusable_keys_are_skipped_not_fatal() {
        let (set, skipped) = key_set(
            serde_json::json!([
                {"kty": "RSA", "kid": "sig", "alg": "RS256", "use": "sig", "n": N, "e": "AQAB"},
                {"kty": "RSA", "kid": "enc", "alg": "RS256", "use": "enc", "n": N, "e": "AQAB"},
                {"kty": "oct", "kid": "hmac", "alg": "HS256", "k": "c2VjcmV0"},
                {"kty": "oct", "kid": "hmac-noalg", "k": "c2VjcmV0"},
                {"kty": "XYZ", "kid": "weird"},
                {"kty": "RSA", "kid": "ps", "alg": "PS512", "n": N, "e": "AQAB"},
                {"kty": "RSA", "kid": "wrong-family", "alg": "ES256", "n": N, "e": "AQAB"},
            ]),
            &[SignatureAlgorithm::RS256],
        );
        assert_eq!(set.len(), 1);
        assert_eq!(skipped, 6);
        assert!(set.find(Some("sig")).is_some());
        assert!(set.find(None).is_some(), "single key: kid may be omitted");
        assert!(parse_jwks(b"{}", &[SignatureAlgorithm::RS256]).is_err());
    }

    #[test]
    fn a_key_without_alg_takes_the_allowed_algorithms_of_its_family() {
        let allowed = [
            SignatureAlgorithm::RS256,
            SignatureAlgorithm::PS256,
            SignatureAlgorithm::ES256,
        ];
        let (set, skipped) = key_set(
            serde_json::json!([{"kty": "RSA", "kid": "entra", "use": "sig", "n": N, "e": "AQAB"}]),
            &allowed,
        );
        assert_eq!((set.len(), skipped), (1, 0));
        let key = set.find(Some("entra")).unwrap();
        assert!(key.accepts(SignatureAlgorithm::RS256) && key.accepts(SignatureAlgorithm::PS256));
        assert!(!key.accepts(SignatureAlgorithm::ES256), "another family");
        assert!(!key.accepts(SignatureAlgorithm::RS512), "not allowed");
        // A key with alg accepts exactly that one.
        let (set, _) = key_set(
            serde_json::json!([{"kty": "RSA", "kid": "k", "alg": "PS256", "n": N, "e": "AQAB"}]),
            &allowed,
        );
        let key = set.find(Some("k")).unwrap();
        assert!(key.accepts(SignatureAlgorithm::PS256) && !key.accepts(SignatureAlgorithm::RS256));
    }

    #[test]
    fn replaced_material_or_alg_under_a_kid_invalidates_withdrawal_too() {
        let all = [SignatureAlgorithm::RS256, SignatureAlgorithm::PS256];
        let key = |kid: &str, n: &str, alg: Option<&str>| {
            let mut k = serde_json::json!({"kty": "RSA", "kid": kid, "n": n, "e": "AQAB"});
            if let Some(alg) = alg {
                k["alg"] = alg.into();
            }
            k
        };
        let (old, _) = key_set(serde_json::json!([key("a", N, Some("RS256"))]), &all);
        let same = key_set(serde_json::json!([key("a", N, Some("RS256"))]), &all).0;
        let added = key_set(
            serde_json::json!([key("a", N, Some("RS256")), key("b", N2, Some("RS256"))]),
            &all,
        )
        .0;
        let new_material = key_set(serde_json::json!([key("a", N2, Some("RS256"))]), &all).0;
        let new_alg = key_set(serde_json::json!([key("a", N, Some("PS256"))]), &all).0;
        let withdrawn = key_set(serde_json::json!([key("b", N2, Some("RS256"))]), &all).0;
        assert!(!same.invalidates(&old));
        assert!(!added.invalidates(&old));
        assert!(new_material.invalidates(&old));
        assert!(new_alg.invalidates(&old));
        assert!(withdrawn.invalidates(&old));
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
