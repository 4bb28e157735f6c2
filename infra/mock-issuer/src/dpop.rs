//! DPoP proofs at the token endpoint (RFC 9449 sections 4, 5 and 8).
//!
//! A token request with a `DPoP` header gets a token bound to the proof's key: the token
//! carries `cnf.jkt`, the key's RFC 7638 SHA-256 thumbprint, and the response says
//! `token_type: DPoP`. The proof must be a JWS with `typ: dpop+jwt`, an asymmetric `alg`,
//! a public `jwk` (no private members) that verifies its signature, `htm: POST`, `htu` =
//! the URL the request was sent to (without query and fragment), an `iat` at most
//! [`IAT_PAST_SECS`] old and [`IAT_FUTURE_SECS`] ahead, and a `jti` not seen before
//! (remembered until the `iat` window has passed). Refusals are `400 invalid_dpop_proof`.
//!
//! With nonces required, a proof must also carry the issuer's current nonce (`nonce`
//! claim); without it, or with any other value, the answer is `400 use_dpop_nonce` with the
//! nonce in a `DPoP-Nonce` header. Only the current nonce is accepted: rotating it makes
//! the previous one stale at once, so a test can force exactly one challenge.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::HeaderMap;
use base64::Engine as _;
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::Jwk;
use serde_json::Value;

use crate::config::PRIVATE_JWK_MEMBERS;
use crate::jose::{ReplayError, UnverifiedJws, signature_verifies};
use crate::state::IssuerState;

/// Algorithms accepted for DPoP proofs: asymmetric only.
pub(crate) const DPOP_ALGS: [Algorithm; 5] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::RS256,
    Algorithm::PS256,
    Algorithm::EdDSA,
];

/// How old a proof's `iat` may be.
pub(crate) const IAT_PAST_SECS: u64 = 60;

/// How far ahead of the issuer's clock a proof's `iat` may be.
pub(crate) const IAT_FUTURE_SECS: u64 = 5;

/// Why a proof was refused: the `error` code and its description.
#[derive(Debug)]
pub(crate) enum ProofError {
    /// `invalid_dpop_proof`.
    Invalid(String),
    /// `use_dpop_nonce`: nonces are required and the proof lacks the current one.
    UseNonce(String),
}

/// A verified proof whose `jti` is still to be consumed.
pub(crate) struct VerifiedProof {
    /// RFC 7638 SHA-256 thumbprint of the proof key, base64url.
    pub(crate) jkt: String,
    jti: String,
    iat: u64,
}

/// The server nonce (RFC 9449 section 8): whether it is required, and its current value.
pub(crate) struct DpopNonce {
    required: AtomicBool,
    current: Mutex<String>,
}

impl DpopNonce {
    pub(crate) fn new(required: bool) -> Self {
        DpopNonce {
            required: AtomicBool::new(required),
            current: Mutex::new(random_nonce()),
        }
    }

    pub(crate) fn set_required(&self, required: bool) {
        self.required.store(required, Ordering::SeqCst);
    }

    /// The current nonce, if nonces are required.
    pub(crate) fn required_nonce(&self) -> Option<String> {
        self.required.load(Ordering::SeqCst).then(|| self.current())
    }

    pub(crate) fn current(&self) -> String {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the nonce; the previous one is no longer accepted. Returns the new one.
    pub(crate) fn rotate(&self) -> String {
        let fresh = random_nonce();
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = fresh.clone();
        fresh
    }
}

fn random_nonce() -> String {
    let mut bytes = [0u8; 16];
    // Only fails if the OS RNG is unavailable; a fixed nonce still works for a test issuer.
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Checks the request's `DPoP` header, if any, against `htu` (the URL the request was sent
/// to). `Ok(None)`: no proof was sent.
pub(crate) fn check(
    state: &IssuerState,
    headers: &HeaderMap,
    htu: &str,
    now: u64,
) -> Result<Option<VerifiedProof>, ProofError> {
    let invalid = |d: String| ProofError::Invalid(d);
    let mut values = headers.get_all("dpop").iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(invalid("more than one DPoP header".to_owned()));
    }
    let proof = value
        .to_str()
        .map_err(|_| invalid("the DPoP header is not ASCII".to_owned()))?;
    let jws = UnverifiedJws::parse(proof).map_err(|e| invalid(format!("DPoP proof: {e}")))?;
    if jws.header.get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
        return Err(invalid("DPoP proof typ must be dpop+jwt".to_owned()));
    }
    let alg = jws
        .algorithm(&DPOP_ALGS)
        .map_err(|e| invalid(format!("DPoP proof {e}")))?;
    let raw_jwk = jws
        .header
        .get("jwk")
        .filter(|j| j.is_object())
        .ok_or_else(|| invalid("DPoP proof header has no jwk".to_owned()))?;
    if let Some(member) = PRIVATE_JWK_MEMBERS
        .iter()
        .find(|m| raw_jwk.get(**m).is_some())
    {
        return Err(invalid(format!(
            "DPoP proof jwk has the private member {member:?}: it must be a public key"
        )));
    }
    let jwk: Jwk = serde_json::from_value(raw_jwk.clone())
        .map_err(|e| invalid(format!("DPoP proof jwk is not a JWK: {e}")))?;
    if !signature_verifies(&jws, &jwk, alg) {
        return Err(invalid(
            "DPoP proof signature does not verify with its jwk".to_owned(),
        ));
    }
    if jws.claim_str("htm") != Some("POST") {
        return Err(invalid(format!(
            "DPoP proof htm {:?} must be POST",
            jws.claim_str("htm")
        )));
    }
    let htu_ok = jws
        .claim_str("htu")
        .is_some_and(|given| same_url(given, htu));
    if !htu_ok {
        return Err(invalid(format!(
            "DPoP proof htu {:?} must be {htu:?}",
            jws.claim_str("htu")
        )));
    }
    let iat = jws
        .claim_time("iat")
        .map_err(|e| invalid(format!("DPoP proof {e}")))?
        .ok_or_else(|| invalid("DPoP proof iat is required".to_owned()))?;
    if iat.saturating_add(IAT_PAST_SECS) < now {
        return Err(invalid(format!(
            "DPoP proof iat is {} s old (at most {IAT_PAST_SECS} s accepted)",
            now.saturating_sub(iat)
        )));
    }
    if iat > now + IAT_FUTURE_SECS {
        return Err(invalid(format!(
            "DPoP proof iat is {} s in the future",
            iat - now
        )));
    }
    let jti = jws
        .claim_str("jti")
        .filter(|j| !j.is_empty())
        .ok_or_else(|| invalid("DPoP proof jti is required".to_owned()))?;
    if let Some(nonce) = state.dpop_nonce.required_nonce() {
        match jws.claim_str("nonce") {
            Some(given) if given == nonce => {}
            Some(_) => {
                return Err(ProofError::UseNonce(
                    "DPoP proof nonce is not the current nonce; use the one in DPoP-Nonce"
                        .to_owned(),
                ));
            }
            None => {
                return Err(ProofError::UseNonce(
                    "DPoP proof must carry the nonce given in DPoP-Nonce".to_owned(),
                ));
            }
        }
    }
    // The JOSE core's RFC 7638 thumbprint: the same function the validator compares with
    // cnf.jkt.
    let jkt = shared_auth::jose::thumbprint(raw_jwk)
        .ok_or_else(|| invalid("DPoP proof jwk has no thumbprint".to_owned()))?;
    Ok(Some(VerifiedProof {
        jti: format!("{jkt}\u{0}{jti}"),
        jkt,
        iat,
    }))
}

/// Records the proof's `jti`; a proof is good for one token request.
pub(crate) fn consume(
    state: &IssuerState,
    proof: &VerifiedProof,
    now: u64,
) -> Result<(), ProofError> {
    let until = proof.iat.saturating_add(IAT_PAST_SECS + IAT_FUTURE_SECS);
    match state.dpop_jtis.insert(proof.jti.clone(), until, now) {
        Ok(()) => Ok(()),
        Err(ReplayError::Replayed) => Err(ProofError::Invalid(
            "DPoP proof jti was already used (replayed proof)".to_owned(),
        )),
        Err(ReplayError::Full) => Err(ProofError::Invalid(
            "too many recent DPoP proofs to remember; try again later".to_owned(),
        )),
    }
}

/// RFC 9449 section 4.3: `htu` is compared without query and fragment, after URL
/// normalisation (scheme and host case, default port).
fn same_url(given: &str, expected: &str) -> bool {
    let normal = |s: &str| {
        url::Url::parse(s).ok().map(|mut u| {
            u.set_query(None);
            u.set_fragment(None);
            u
        })
    };
    matches!((normal(given), normal(expected)), (Some(a), Some(b)) if a == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htu_ignores_query_fragment_and_case() {
        assert!(same_url(
            "HTTP://Example.com:80/oauth2/token?x=1#f",
            "http://example.com/oauth2/token"
        ));
        assert!(!same_url(
            "http://example.com/connect/token",
            "http://example.com/oauth2/token"
        ));
        assert!(!same_url("not a url", "http://example.com/oauth2/token"));
    }

    #[test]
    fn rotation_replaces_the_nonce() {
        let nonce = DpopNonce::new(false);
        assert_eq!(nonce.required_nonce(), None);
        nonce.set_required(true);
        let first = nonce.required_nonce().unwrap();
        let second = nonce.rotate();
        assert_ne!(first, second);
        assert_eq!(nonce.required_nonce(), Some(second));
    }
}
