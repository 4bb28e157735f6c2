//! DPoP (RFC 9449): sender-constrained access tokens. The caller proves, on every request,
//! possession of the private key whose thumbprint the token carries (`cnf.jkt`), with a
//! fresh signed proof JWT in the `DPoP` header.
//!
//! [`DpopConfig`] says whether DPoP is off, allowed beside bearer tokens, or required.
//! The auth layer takes `Authorization: DPoP <token>` plus exactly one `DPoP: <proof>`
//! header, validates the token as usual (the validated-token cache serves the token's own
//! checks), then checks the proof **every time** (section 4.3):
//!
//! 1. at most 8 KiB, a compact JWS; header `typ` = `dpop+jwt`, `alg` in the allow-list
//!    (asymmetric only: HMAC and `none` cannot be named), no `crit`;
//! 2. header `jwk`: a public key only (any private member, `d` `p` `q` `dp` `dq` `qi` `oth`
//!    `k`, refuses the proof), of the type `alg` needs (EC P-256 for ES256, P-384 for
//!    ES384, RSA of at least 2048 bits for RS*/PS*, Ed25519 for EdDSA); the signature
//!    verifies with it;
//! 3. claims: `jti` a string of at most 256 bytes; `htm` = the request method; `htu` = the
//!    request URL (see below); `iat` within [now - max age, now + future leeway] by the
//!    injectable clock; `ath` = base64url(SHA-256(access token)), required; with nonces
//!    on, `nonce` a current server nonce (`dpop_nonce`);
//! 4. the token's `cnf.jkt` = the RFC 7638 SHA-256 thumbprint of the proof's `jwk`;
//! 5. the `jti` was not seen within the window (`dpop_replay`).
//!
//! **htu.** Both URLs are normalised per RFC 3986 section 6 (scheme and host lower case,
//! default port elided, dot segments removed) without query or fragment, then compared.
//! The expected URL is the API's own public URL plus the request's original path (axum's
//! `OriginalUri`, so nested routers see the full path): [`DpopConfig::public_base_url`]
//! (a service behind a proxy that strips a path prefix), else the origin of the RFC 9728
//! resource ([`ValidatorConfig::resource`](super::ValidatorConfig::resource)). The
//! request's `Host` (or `X-Forwarded-*`) never chooses it: the caller writes those, and a
//! proof made for another API would pass under that API's name. With DPoP on and neither
//! URL, the validator does not start.
//!
//! **Bearer tokens.** A token with `cnf.jkt` is DPoP-bound: presented as `Bearer` it is
//! refused in every mode (a stolen bound token is useless without the key). Under
//! [`DpopMode::Required`], every `Bearer` request is refused. Under [`DpopMode::Off`],
//! the `DPoP` scheme is not recognised: such a request is treated as one without
//! credentials (401 with the bare `Bearer` challenge), as any other unknown scheme is.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub use super::dpop_nonce::SecretValue;
use super::dpop_nonce::{NonceCheck, Nonces};
pub use super::dpop_replay::InMemoryReplayStore;
#[cfg(feature = "redis")]
use super::dpop_replay::RedisReplayStore;
use super::dpop_replay::replay_key;
pub use super::dpop_replay::{ReplayStore, ReplayStoreError};
use super::error::StartError;
use crate::clock::Clock;
use crate::jose::SignatureAlgorithm;
use crate::jose::compact::{Compact, STACK_PART, decode_part};
use crate::jose::json::{self, Claim};
use crate::jose::jwk::{Base64, VerifyKey};

/// Largest DPoP proof accepted (bytes), checked before any parsing.
pub(crate) const MAX_PROOF_LEN: usize = 8 * 1024;
/// Longest `jti` accepted (bytes).
const MAX_JTI_LEN: usize = 256;

/// Whether DPoP-bound tokens are accepted, and whether they are required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(rename_all = "lowercase")
)]
#[non_exhaustive]
pub enum DpopMode {
    /// Bearer tokens only (the default in code; my-service's settings default to
    /// `allowed`). The `DPoP` scheme is not recognised (treated as no credentials); a
    /// DPoP-bound token sent as `Bearer` is still refused.
    #[default]
    Off,
    /// Bearer tokens and DPoP: a 401 for a missing token offers both. Needs the API's
    /// public URL (see [`DpopConfig::public_base_url`]).
    Allowed,
    /// DPoP only: `Bearer` requests are refused.
    Required,
}

/// Where proof `jti`s are remembered: in memory (one process) or in Redis (every replica).
#[derive(Clone)]
#[non_exhaustive]
pub enum ReplayStoreConfig {
    /// Per process, bounded (the default). Full of unexpired entries, it refuses new
    /// proofs (503 with `Retry-After`) rather than forget a live one.
    InMemory {
        /// Most unexpired entries (default 100,000: about 1,500 proofs a second over the
        /// default 65 s window).
        capacity: u64,
        /// One proof key's (`jkt`) share: a key holding this many unexpired entries gets
        /// another only while the store is less than half full, so that one client cannot
        /// fill it for all (default 10,000; `capacity` or more: no bound per key).
        per_key: u64,
    },
    /// In Redis, shared by every replica (feature `redis`).
    #[cfg(feature = "redis")]
    Redis {
        /// `redis://`, `rediss://` or `unix://` URL (may hold a password: never logged).
        url: SecretValue,
        /// Key prefix (default `shared-auth:`).
        key_prefix: String,
        /// Bound on each operation (default 200 ms); beyond it the request gets 503.
        timeout: Duration,
        /// Most proofs of one key (`jkt`) per window, so that one client cannot fill the
        /// shared store for all (default 10,000); over it that client gets 503.
        per_key: u64,
    },
    /// A store of one's own (feature `internals`: this repository's benches).
    #[cfg(feature = "internals")]
    Custom(Arc<dyn ReplayStore>),
}

impl fmt::Debug for ReplayStoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayStoreConfig::InMemory { capacity, per_key } => f
                .debug_struct("InMemory")
                .field("capacity", capacity)
                .field("per_key", per_key)
                .finish(),
            #[cfg(feature = "redis")]
            ReplayStoreConfig::Redis {
                key_prefix,
                timeout,
                ..
            } => f
                .debug_struct("Redis")
                .field("key_prefix", key_prefix)
                .field("timeout", timeout)
                .finish_non_exhaustive(),
            #[cfg(feature = "internals")]
            ReplayStoreConfig::Custom(store) => f.debug_tuple("Custom").field(store).finish(),
        }
    }
}

/// DPoP settings of a validator ([`ValidatorConfig::dpop`](super::ValidatorConfig::dpop)).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DpopConfig {
    /// Off, allowed (default) or required.
    pub mode: DpopMode,
    /// Proof signature algorithms accepted (default: every asymmetric one,
    /// RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA). Also advertised in the
    /// `algs` of the `DPoP` challenge.
    pub algorithms: Vec<SignatureAlgorithm>,
    /// How old a proof's `iat` may be (default 60 s).
    pub max_age: Duration,
    /// How far in the future a proof's `iat` may be (default 5 s, clock skew).
    pub future_leeway: Duration,
    /// This API's public base URL (`https://api.example.com/orders`): the proofs' `htu`
    /// is checked against it plus the request's path. `None`: the origin of the RFC 9728
    /// resource ([`ValidatorConfig::resource`](super::ValidatorConfig::resource)); with
    /// neither, a validator with DPoP on does not start (the request's `Host` is the
    /// caller's to choose, so it never decides).
    pub public_base_url: Option<String>,
    /// Require server-issued nonces (RFC 9449 section 8; default false).
    pub nonces: bool,
    /// The nonce key (at least 32 bytes), shared by replicas; `None`: random per process
    /// (see the `dpop_nonce` module for the trade-off).
    pub nonce_secret: Option<SecretValue>,
    /// How long a nonce bucket lasts (default 5 min; a nonce is accepted for one to two).
    pub nonce_lifetime: Duration,
    /// Where proof `jti`s are remembered (default in memory).
    pub replay_store: ReplayStoreConfig,
}

impl Default for DpopConfig {
    fn default() -> Self {
        DpopConfig {
            mode: DpopMode::Off,
            algorithms: vec![
                SignatureAlgorithm::ES256,
                SignatureAlgorithm::ES384,
                SignatureAlgorithm::PS256,
                SignatureAlgorithm::PS384,
                SignatureAlgorithm::PS512,
                SignatureAlgorithm::RS256,
                SignatureAlgorithm::RS384,
                SignatureAlgorithm::RS512,
                SignatureAlgorithm::EdDSA,
            ],
            max_age: Duration::from_secs(60),
            future_leeway: Duration::from_secs(5),
            public_base_url: None,
            nonces: false,
            nonce_secret: None,
            nonce_lifetime: Duration::from_secs(300),
            replay_store: ReplayStoreConfig::InMemory {
                capacity: 100_000,
                per_key: 10_000,
            },
        }
    }
}

/// Why a proof was refused. The `Display` text is sent to the caller: short, fixed, never
/// taken from the request; the precise reason goes to the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ProofError {
    #[error("a DPoP proof is required with the DPoP scheme")]
    Missing,
    #[error("the DPoP proof is malformed")]
    Malformed,
    #[error("the DPoP proof's type (typ) must be dpop+jwt")]
    Type,
    #[error("the DPoP proof's signing algorithm is not accepted")]
    Algorithm,
    #[error("the DPoP proof's key is missing or not an acceptable public key")]
    Key,
    #[error("the DPoP proof's signature is invalid")]
    Signature,
    #[error("the DPoP proof lacks a required claim or a claim has the wrong type")]
    Claims,
    #[error("the DPoP proof does not match the request")]
    Request,
    #[error("the DPoP proof is not fresh")]
    Stale,
    #[error("the DPoP proof does not match the access token")]
    Token,
    #[error("the DPoP proof was already used")]
    Replay,
    #[error("a current DPoP nonce is required")]
    Nonce,
}

impl ProofError {
    /// A stable reason code (logs and metrics).
    pub(crate) fn reason(self) -> &'static str {
        match self {
            ProofError::Missing => "missing_proof",
            ProofError::Malformed => "malformed",
            ProofError::Type => "typ",
            ProofError::Algorithm => "algorithm",
            ProofError::Key => "jwk",
            ProofError::Signature => "signature",
            ProofError::Claims => "claims",
            ProofError::Request => "htm_htu",
            ProofError::Stale => "iat",
            ProofError::Token => "ath_jkt",
            ProofError::Replay => "replay",
            ProofError::Nonce => "nonce",
        }
    }
}

/// What the proof is checked against: the request and the token.
pub(crate) struct ProofInput<'a> {
    pub(crate) proof: &'a str,
    pub(crate) method: &'a str,
    /// The request's path (original, before nesting).
    pub(crate) path: &'a str,
    /// The access token's bytes (for `ath`).
    pub(crate) token: &'a [u8],
    /// The token's `cnf.jkt`.
    pub(crate) jkt: &'a str,
}

/// A proof that passed every check but the replay check.
pub(crate) struct CheckedProof {
    replay_key: [u8; 32],
    /// A fresh nonce to send back (nonces on and the proof's is from the previous bucket).
    pub(crate) fresh_nonce: Option<String>,
}

/// Checks proofs for one validator (built from a [`DpopConfig`] at start).
pub(crate) struct DpopVerifier {
    mode: DpopMode,
    algorithms: Vec<SignatureAlgorithm>,
    /// `algs="ES256 ..."`, for the challenges.
    pub(crate) algs_param: String,
    max_age_ms: u64,
    future_ms: u64,
    /// The API's normalised public base URL, without a trailing slash (`None` only with
    /// DPoP off).
    public_base: Option<String>,
    nonces: Option<Nonces>,
    store: Arc<dyn ReplayStore>,
    clock: Arc<dyn Clock>,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl DpopVerifier {
    /// Checks the configuration and builds the verifier (and the replay store), on the
    /// validator's clock (`iat` windows, nonces, replay expiry). `resource` is the API's
    /// RFC 9728 resource identifier, whose origin is the public URL when no base URL is
    /// configured. Inside a tokio runtime (the Redis store needs one).
    pub(crate) fn new(
        config: DpopConfig,
        resource: Option<&str>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        let fail = |reason: &str| StartError::Config(format!("DPoP: {reason}"));
        let algorithms = config.algorithms.clone();
        if algorithms.is_empty() && config.mode != DpopMode::Off {
            return Err(fail("no proof signature algorithm allowed"));
        }
        let names: Vec<&str> = algorithms.iter().map(|a| a.name()).collect();
        let public_base = config
            .public_base_url
            .as_deref()
            .map(|base| {
                let url = url::Url::parse(base)
                    .map_err(|_| fail("the public base URL is not an absolute URL"))?;
                if !matches!(url.scheme(), "http" | "https")
                    || url.query().is_some()
                    || url.fragment().is_some()
                    || !url.username().is_empty()
                    || url.host().is_none()
                {
                    return Err(fail(
                        "the public base URL must be http(s)://host[:port][/path], without query, fragment or user",
                    ));
                }
                Ok(String::from(url).trim_end_matches('/').to_owned())
            })
            .transpose()?
            .or_else(|| {
                let url = url::Url::parse(resource?).ok()?;
                Some(url.origin().ascii_serialization())
            });
        if public_base.is_none() && config.mode != DpopMode::Off {
            return Err(fail(
                "the API's public URL is unknown, so a proof's htu cannot be checked (the \
                 request's Host is the caller's to choose): set the public base URL or the \
                 protected resource, or turn DPoP off",
            ));
        }
        let nonces = config
            .nonces
            .then(|| {
                Nonces::new(
                    config.nonce_secret.as_ref().map(|s| s.expose().as_bytes()),
                    config.nonce_lifetime,
                    clock.clone(),
                )
                .map_err(|e| fail(&e))
            })
            .transpose()?;
        let store: Arc<dyn ReplayStore> = match config.replay_store {
            ReplayStoreConfig::InMemory { capacity, per_key } => {
                if capacity == 0 || per_key == 0 {
                    return Err(fail(
                        "the replay store's capacity and per-key bound must be at least 1",
                    ));
                }
                Arc::new(InMemoryReplayStore::new(capacity, per_key, clock.clone()))
            }
            #[cfg(feature = "redis")]
            ReplayStoreConfig::Redis {
                url,
                key_prefix,
                timeout,
                per_key,
            } => Arc::new(
                RedisReplayStore::new(url.expose(), &key_prefix, timeout, per_key)
                    .map_err(|e| fail(&e.to_string()))?,
            ),
            #[cfg(feature = "internals")]
            ReplayStoreConfig::Custom(store) => store,
        };
        Ok(DpopVerifier {
            mode: config.mode,
            algorithms,
            algs_param: format!("algs=\"{}\"", names.join(" ")),
            max_age_ms: millis(config.max_age),
            future_ms: millis(config.future_leeway),
            public_base,
            nonces,
            store,
            clock,
        })
    }

    pub(crate) fn mode(&self) -> DpopMode {
        self.mode
    }

    /// How long a `jti` is remembered: the whole `iat` window.
    fn window(&self) -> Duration {
        Duration::from_millis(self.max_age_ms.saturating_add(self.future_ms))
    }

    /// A nonce to hand out, with nonces on.
    pub(crate) fn nonce(&self) -> Option<String> {
        self.nonces.as_ref().map(Nonces::current)
    }

    /// Every check but the replay check, which is [`first_use`](Self::first_use).
    ///
    /// Hand-rolled on aws-lc-rs rather than `jsonwebtoken::decode`: this runs on every
    /// request, and jsonwebtoken decodes and parses the header twice more and the claims
    /// into a map, which measured 13 µs beyond the ES256 verification itself (a release
    /// loop over 3,000 proofs, beside raw verification of the same proofs). Here the JOSE
    /// core decodes and parses the header and the claims once each, strictly (objects only,
    /// a repeated member refused, every string checked), and the signature is checked by
    /// aws-lc-rs with the public key taken from the `jwk`.
    pub(crate) fn check(&self, input: &ProofInput<'_>) -> Result<CheckedProof, ProofError> {
        let proof = input.proof;
        if proof.len() > MAX_PROOF_LEN {
            return Err(ProofError::Malformed);
        }
        let parts = Compact::split(proof).map_err(|_| ProofError::Malformed)?;
        let mut buffer = [0u8; STACK_PART];
        let header_bytes =
            decode_part(parts.header, &mut buffer).map_err(|_| ProofError::Malformed)?;
        let header = json::parse_header(&header_bytes).map_err(|_| ProofError::Malformed)?;
        if header.typ() != Some("dpop+jwt") {
            return Err(ProofError::Type);
        }
        if header.crit {
            return Err(ProofError::Malformed);
        }
        let alg = header
            .alg()
            .and_then(SignatureAlgorithm::from_name)
            .filter(|a| self.algorithms.contains(a))
            .ok_or(ProofError::Algorithm)?;
        let jwk = header.jwk.as_ref().ok_or(ProofError::Key)?;
        // A public key of the type `alg` needs; any private member refuses it.
        let key = VerifyKey::new(&jwk.0, &[alg], Base64::Strict).ok_or(ProofError::Key)?;
        let mut signature_buffer = [0u8; STACK_PART];
        let signature = decode_part(parts.signature, &mut signature_buffer)
            .map_err(|_| ProofError::Malformed)?;
        if !key.verifies(alg, parts.signing_input.as_bytes(), &signature) {
            return Err(ProofError::Signature);
        }

        let mut claims_buffer = [0u8; STACK_PART];
        let claims_bytes =
            decode_part(parts.payload, &mut claims_buffer).map_err(|_| ProofError::Malformed)?;
        let claims: ProofClaims<'_> = json::parse(&claims_bytes).map_err(|_| ProofError::Claims)?;
        fn text<'a>(c: &'a Option<Claim<'_>>) -> Option<&'a str> {
            c.as_ref().and_then(Claim::as_str)
        }
        let jti = text(&claims.jti)
            .filter(|j| !j.is_empty() && j.len() <= MAX_JTI_LEN)
            .ok_or(ProofError::Claims)?;
        let htm = text(&claims.htm).ok_or(ProofError::Claims)?;
        let htu = text(&claims.htu).ok_or(ProofError::Claims)?;
        // RFC 7519 NumericDate: seconds, possibly with a fraction.
        let iat = claims
            .iat
            .as_ref()
            .and_then(Claim::numeric_date)
            .ok_or(ProofError::Claims)?;
        let ath = text(&claims.ath).ok_or(ProofError::Claims)?;
        let nonce = match &claims.nonce {
            None => None,
            Some(nonce) => Some(nonce.as_str().ok_or(ProofError::Claims)?),
        };
        if htm != input.method || !self.htu_matches(htu, input.path) {
            return Err(ProofError::Request);
        }
        let now = self.clock.now_unix_ms();
        let iat_ms = (iat * 1000.0) as u64;
        if iat_ms.saturating_add(self.max_age_ms) < now
            || iat_ms > now.saturating_add(self.future_ms)
        {
            return Err(ProofError::Stale);
        }
        if !ath_matches(ath, input.token) {
            return Err(ProofError::Token);
        }
        if !key.thumbprint_is(input.jkt) {
            return Err(ProofError::Token);
        }
        let fresh_nonce = match &self.nonces {
            None => None,
            Some(nonces) => match nonces.check(nonce) {
                NonceCheck::Current => None,
                NonceCheck::Previous => Some(nonces.current()),
                NonceCheck::Invalid => return Err(ProofError::Nonce),
            },
        };
        Ok(CheckedProof {
            replay_key: replay_key(input.jkt, jti),
            fresh_nonce,
        })
    }

    /// The replay check of a proof made with the key `jkt`, when the store answers without
    /// waiting (in memory); `None`: ask [`first_use`](Self::first_use).
    pub(crate) fn first_use_now(
        &self,
        jkt: &str,
        proof: &CheckedProof,
    ) -> Option<Result<bool, ReplayStoreError>> {
        self.store
            .first_use_now(jkt, &proof.replay_key, self.window())
    }

    /// The replay check of a proof made with the key `jkt`: `Ok(false)` for a replay.
    pub(crate) async fn first_use(
        &self,
        jkt: &str,
        proof: &CheckedProof,
    ) -> Result<bool, ReplayStoreError> {
        self.store
            .first_use(jkt, &proof.replay_key, self.window())
            .await
    }

    fn htu_matches(&self, htu: &str, path: &str) -> bool {
        let Some(base) = &self.public_base else {
            return false;
        };
        // The common case first: the client wrote the URL exactly as the API names it.
        if htu.strip_prefix(base.as_str()) == Some(path)
            && path.starts_with('/')
            && !path.contains("/.")
        {
            return true;
        }
        match (normalise_url(htu), normalise_url(&format!("{base}{path}"))) {
            (Some(proof), Some(expected)) => proof == expected,
            _ => false,
        }
    }
}

/// RFC 3986 section 6 normalisation of an `http(s)` URL, without query and fragment:
/// scheme and host lower case, default port elided, dot segments removed, an empty path
/// as `/`. `None` for anything else (another scheme, user info, no host).
pub(crate) fn normalise_url(url: &str) -> Option<String> {
    let mut url = url::Url::parse(url).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
        || url.host().is_none()
    {
        return None;
    }
    url.set_query(None);
    url.set_fragment(None);
    Some(url.into())
}

/// `ath` = base64url(SHA-256(token)), compared without allocating.
fn ath_matches(ath: &str, token: &[u8]) -> bool {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token);
    let mut encoded = [0u8; 43];
    URL_SAFE_NO_PAD
        .encode_slice(digest.as_ref(), &mut encoded)
        .is_ok_and(|n| n == 43 && ath.as_bytes() == encoded)
}

crate::jose::json::claims! {
    /// The claims of a proof that are checked.
    struct ProofClaims {
        jti = "jti",
        htm = "htm",
        htu = "htu",
        iat = "iat",
        ath = "ath",
        nonce = "nonce",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htu_normalisation_follows_rfc3986_section_6() {
        let n = |u: &str| normalise_url(u);
        assert_eq!(
            n("HTTPS://API.Example.COM:443/a/./b/../c?q=1#f").as_deref(),
            Some("https://api.example.com/a/c")
        );
        assert_eq!(
            n("http://example.com:80").as_deref(),
            Some("http://example.com/")
        );
        assert_eq!(
            n("http://example.com:8080/x").as_deref(),
            Some("http://example.com:8080/x")
        );
        assert_ne!(n("http://example.com/x"), n("https://example.com/x"));
        assert_ne!(n("http://example.com/x"), n("http://example.com/x/"));
        assert_eq!(n("ftp://example.com/x"), None);
        assert_eq!(n("http://user@example.com/x"), None);
        assert_eq!(n("/relative"), None);
    }

    fn verifier(
        public_base_url: Option<&str>,
        resource: Option<&str>,
    ) -> Result<DpopVerifier, StartError> {
        DpopVerifier::new(
            DpopConfig {
                mode: DpopMode::Allowed,
                public_base_url: public_base_url.map(str::to_owned),
                ..DpopConfig::default()
            },
            resource,
            Arc::new(crate::clock::SystemClock),
        )
    }

    #[test]
    fn htu_is_matched_against_the_apis_own_url_never_the_callers_host() {
        // The resource's origin, with the request's path.
        let v = verifier(None, Some("http://Example.com:80/orders")).unwrap();
        assert!(v.htu_matches("http://example.com/w", "/w"));
        assert!(v.htu_matches("HTTP://EXAMPLE.com:80/w?x=1", "/w"));
        assert!(!v.htu_matches("http://example.com/other", "/w"));
        assert!(!v.htu_matches("http://evil.example/w", "/w"));
        assert!(!v.htu_matches("https://example.com/w", "/w"));
        // The public base URL wins, path prefix included.
        let v = verifier(
            Some("https://API.example.com/orders/"),
            Some("http://127.0.0.1:1"),
        )
        .unwrap();
        assert!(v.htu_matches("https://api.example.com/orders/w", "/w"));
        assert!(!v.htu_matches("http://127.0.0.1:1/w", "/w"));
        assert!(verifier(Some("https://x.example/?q"), None).is_err());
        // DPoP on with neither: no start, and the error says what to set.
        let e = verifier(None, None).err().unwrap().to_string();
        assert!(
            e.contains("public base URL") && e.contains("protected resource"),
            "{e}"
        );
        // Off needs neither.
        assert!(
            DpopVerifier::new(
                DpopConfig::default(),
                None,
                Arc::new(crate::clock::SystemClock)
            )
            .is_ok()
        );
    }

    #[test]
    fn ath_is_the_base64url_sha256_of_the_token() {
        // RFC 9449 section 7.1's example.
        let token = b"Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
        assert!(ath_matches(
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo",
            token
        ));
        assert!(!ath_matches(
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEp",
            token
        ));
        assert!(!ath_matches("", token));
    }

    #[test]
    fn the_challenge_advertises_the_allowed_algorithms() {
        let v = verifier(Some("https://api.example"), None).unwrap();
        assert_eq!(
            v.algs_param,
            "algs=\"ES256 ES384 PS256 PS384 PS512 RS256 RS384 RS512 EdDSA\""
        );
    }
}
