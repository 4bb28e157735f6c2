//! JOSE pieces shared by client assertions and DPoP proofs: reading a compact JWS before
//! its key is known, checking a signature with a given JWK, and a bounded replay store.
//!
//! Reading and verifying are shared-auth's JOSE core (feature `jose`): the issuer reads
//! what clients send by the same strict rules the validator reads tokens by (objects only,
//! each name once at every depth, every string valid). The header is kept in its raw form
//! because the key to verify with depends on it (`kid`, or the `jwk` of a DPoP proof),
//! and a DPoP proof's `jwk` must be checked for private members.

use std::collections::HashMap;
use std::sync::Mutex;

use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use serde_json::{Map, Value};
use shared_auth::jose::SignatureAlgorithm;

/// A compact JWS split and decoded, not yet verified.
#[derive(Debug)]
pub(crate) struct UnverifiedJws<'a> {
    /// The protected header, as JSON.
    pub(crate) header: Map<String, Value>,
    /// The payload, as a JSON object.
    pub(crate) claims: Map<String, Value>,
    /// What the signature covers, and the signature.
    signing_input: &'a str,
    signature: Vec<u8>,
}

impl<'a> UnverifiedJws<'a> {
    /// Splits `token` into header, payload and signature and reads the first two as JSON
    /// objects. The error says what is malformed.
    pub(crate) fn parse(token: &'a str) -> Result<Self, String> {
        let read = shared_auth::jose::read(token).map_err(|e| e.to_string())?;
        Ok(UnverifiedJws {
            header: read.header,
            claims: read.claims,
            signing_input: read.signing_input,
            signature: read.signature,
        })
    }

    /// The header's `alg` if it is one of `allowed`; the error names what was found.
    pub(crate) fn algorithm(&self, allowed: &[Algorithm]) -> Result<Algorithm, String> {
        let alg = self.header.get("alg").and_then(Value::as_str);
        let names = allowed
            .iter()
            .map(|a| format!("{a:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        allowed
            .iter()
            .copied()
            .find(|a| Some(format!("{a:?}").as_str()) == alg)
            .ok_or_else(|| match alg {
                Some(alg) => format!("alg {alg} is not allowed (allowed: {names})"),
                None => format!("the header has no alg (allowed: {names})"),
            })
    }

    /// A string claim.
    pub(crate) fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// A numeric date claim (seconds since the epoch; fractions are cut off). `Err` when
    /// the claim is there but not a number.
    pub(crate) fn claim_time(&self, name: &str) -> Result<Option<u64>, String> {
        match self.claims.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .or_else(|| {
                    v.as_f64()
                        .filter(|f| f.is_finite() && *f >= 0.0)
                        // Truncation is intended: NumericDate may have fractions.
                        .map(|f| f as u64)
                })
                .map(Some)
                .ok_or_else(|| format!("{name} is not a number of seconds")),
        }
    }

    /// Whether `aud` (a string or an array of strings) contains one of `accepted`.
    pub(crate) fn audience_matches(&self, accepted: &[&str]) -> bool {
        match self.claims.get("aud") {
            Some(Value::String(s)) => accepted.contains(&s.as_str()),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .any(|s| accepted.contains(&s)),
            _ => false,
        }
    }
}

/// Whether `jwk` can verify `alg` signatures: its type (and curve) fit the algorithm, and
/// its `alg` and `use` members, when present, do not say otherwise.
pub(crate) fn key_fits(jwk: &Jwk, alg: Algorithm) -> bool {
    if jwk
        .common
        .key_algorithm
        .is_some_and(|ka| ka != jsonwebtoken::jwk::KeyAlgorithm::from(alg))
    {
        return false;
    }
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return false;
    }
    match (&jwk.algorithm, alg) {
        (
            AlgorithmParameters::RSA(_),
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512,
        ) => true,
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES384) => p.curve == EllipticCurve::P384,
        (AlgorithmParameters::OctetKeyPair(p), Algorithm::EdDSA) => {
            p.curve == EllipticCurve::Ed25519
        }
        _ => false,
    }
}

/// Checks the JWS signature of `jws` with `jwk` for `alg` (only the signature: the caller
/// checks the claims), with shared-auth's JOSE core. `false` for a key that does not fit
/// `alg`.
pub(crate) fn signature_verifies(jws: &UnverifiedJws<'_>, jwk: &Jwk, alg: Algorithm) -> bool {
    if !key_fits(jwk, alg) {
        return false;
    }
    let (Ok(jwk), Some(alg)) = (
        serde_json::to_value(jwk),
        SignatureAlgorithm::from_name(&format!("{alg:?}")),
    ) else {
        return false;
    };
    shared_auth::jose::verifies(&jwk, alg, jws.signing_input, &jws.signature)
}

/// Why a value could not be recorded in a [`ReplayCache`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReplayError {
    /// Already recorded and not yet expired.
    Replayed,
    /// The store is full of unexpired entries.
    Full,
}

/// One-time values (`jti`) remembered until they expire, at most `capacity` at a time.
pub(crate) struct ReplayCache {
    seen: Mutex<HashMap<String, u64>>,
    capacity: usize,
}

impl ReplayCache {
    pub(crate) fn new(capacity: usize) -> Self {
        ReplayCache {
            seen: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// Records `key` as used until `until` (Unix seconds). Refuses a key recorded before
    /// whose time has not passed, and refuses everything while the store is full of
    /// unexpired keys (failing closed: a full store must not let a replay through).
    pub(crate) fn insert(&self, key: String, until: u64, now: u64) -> Result<(), ReplayError> {
        // A poisoned lock means a panic while inserting into a map; the map is still valid.
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.get(&key).is_some_and(|&t| t >= now) {
            return Err(ReplayError::Replayed);
        }
        if seen.len() >= self.capacity {
            seen.retain(|_, t| *t >= now);
            if seen.len() >= self.capacity {
                return Err(ReplayError::Full);
            }
        }
        seen.insert(key, until);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_cache_refuses_until_expiry_and_when_full() {
        let cache = ReplayCache::new(2);
        assert_eq!(cache.insert("a".into(), 100, 10), Ok(()));
        assert_eq!(
            cache.insert("a".into(), 100, 50),
            Err(ReplayError::Replayed)
        );
        assert_eq!(cache.insert("b".into(), 100, 50), Ok(()));
        assert_eq!(cache.insert("c".into(), 100, 50), Err(ReplayError::Full));
        // After expiry both the old key and the space come back.
        assert_eq!(cache.insert("a".into(), 300, 101), Ok(()));
        assert_eq!(cache.insert("c".into(), 300, 101), Ok(()));
    }

    fn shared_auth_b64(bytes: &[u8]) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn malformed_tokens_say_why() {
        assert!(
            UnverifiedJws::parse("a.b")
                .unwrap_err()
                .contains("compact JWS")
        );
        assert!(
            UnverifiedJws::parse("!!.e30.x")
                .unwrap_err()
                .contains("header")
        );
        let header = shared_auth_b64(br#"{"alg":"HS256"}"#);
        let token = format!("{header}.e30.sig");
        let jws = UnverifiedJws::parse(&token).unwrap();
        let err = jws.algorithm(&[Algorithm::ES256]).unwrap_err();
        assert!(err.contains("HS256"), "{err}");
    }
}
