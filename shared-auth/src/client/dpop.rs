//! DPoP for the client (RFC 9449): the key a client's tokens are bound to, the proofs it
//! signs, and the server nonces it remembers.
//!
//! - A proof (section 4.2) is a JWS with header `typ: dpop+jwt`, the algorithm and the
//!   public `jwk`, and claims `jti` (random), `htm`, `htu` (the URL without query and
//!   fragment), `iat`, `ath` (the SHA-256 of the access token, for resource requests) and
//!   `nonce` when the server gave one. The header is encoded once per key; a proof costs
//!   one signature and a few hundred bytes of formatting.
//! - Nonces (section 8 and 9): a `DPoP-Nonce` response header from a token endpoint or a
//!   resource server is remembered per origin (scheme, host, port) and sent in later
//!   proofs to that origin; a `use_dpop_nonce` refusal is retried once with the new nonce
//!   (by the token request and by [`ClientCredentialsMiddleware`](super::ClientCredentialsMiddleware)).
//! - The key's thumbprint is part of the token cache key: a bound token is only ever
//!   served to a client that holds its key. With a shared Redis cache, replicas share bound
//!   tokens only when they share the DPoP key (the same key file); each replica with its
//!   own (generated) key fetches its own tokens. That is the fleet trade-off: one key
//!   everywhere means one token for the fleet but a key to distribute; a key per replica
//!   means nothing to distribute but one token request per replica.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use aws_lc_rs::digest;
use http::HeaderValue;
use serde::Serialize;
use serde_json::Value;
use url::{Position, Url};

use crate::jose::{KeyError, SigningKey};

/// The `DPoP-Nonce` header.
pub(crate) const DPOP_NONCE: &str = "dpop-nonce";
/// The `DPoP` header.
pub(crate) const DPOP: &str = "dpop";

/// Most origins whose nonce is remembered; past it the memory starts again (a nonce that
/// is forgotten costs one `use_dpop_nonce` round trip, nothing more).
const MAX_NONCE_ORIGINS: usize = 256;
/// Longest nonce kept; a longer one is ignored (a server has no reason to send one).
const MAX_NONCE_LEN: usize = 512;

/// A client's DPoP key: proofs for its token requests and API requests. Cheap to clone;
/// clones share the remembered nonces.
#[derive(Clone)]
pub(crate) struct DpopKey(Arc<Inner>);

struct Inner {
    key: SigningKey,
    header: String,
    nonces: RwLock<HashMap<Box<str>, Arc<str>>>,
}

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("DpopKey").field(&self.0.key).finish()
    }
}

#[derive(Serialize)]
struct ProofClaims<'a> {
    jti: &'a str,
    htm: &'a str,
    htu: &'a str,
    iat: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    ath: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
}

impl DpopKey {
    /// Proofs signed with `key`.
    pub(crate) fn new(key: SigningKey) -> Self {
        let header = key.encoded_header(&[
            ("typ", Value::String("dpop+jwt".into())),
            ("jwk", key.public_jwk().clone()),
        ]);
        DpopKey(Arc::new(Inner {
            key,
            header,
            nonces: RwLock::new(HashMap::new()),
        }))
    }

    /// A new ES256 key, made now: nothing to distribute, but the tokens bound to it die
    /// with the process.
    #[cfg(test)]
    pub(crate) fn generate() -> Result<Self, KeyError> {
        Ok(Self::new(SigningKey::generate_es256()?))
    }

    /// The key's RFC 7638 thumbprint: the `cnf.jkt` of the tokens bound to it.
    pub(crate) fn thumbprint(&self) -> &str {
        self.0.key.thumbprint()
    }

    /// A proof for `method` on `url` (query and fragment are not part of `htu`), with
    /// `ath` for a resource request and the origin's nonce if one is known; and that nonce:
    /// a `use_dpop_nonce` answer with another one deserves one more try, whatever other
    /// requests remembered meanwhile.
    pub(crate) fn proof(
        &self,
        method: &str,
        url: &Url,
        ath: Option<&str>,
        now_ms: u64,
    ) -> Result<(HeaderValue, Option<Arc<str>>), KeyError> {
        let nonce = self.nonce(url);
        let jti = crate::jose::random_jti()?;
        // RFC 9449 section 4.2: htu without query and fragment (and never user info).
        let without_user;
        let htu = if url.username().is_empty() && url.password().is_none() {
            &url[..Position::AfterPath]
        } else {
            let mut clean = url.clone();
            let _ = clean.set_username("");
            let _ = clean.set_password(None);
            without_user = clean;
            &without_user[..Position::AfterPath]
        };
        let claims = ProofClaims {
            jti: &jti,
            htm: method,
            htu,
            iat: now_ms / 1000,
            ath,
            nonce: nonce.as_deref(),
        };
        // Strings and integers: serialization cannot fail.
        let claims = serde_json::to_vec(&claims).unwrap_or_default();
        let proof = self.0.key.sign_compact(&self.0.header, &claims)?;
        // base64url and dots only: always a valid header value.
        let proof = HeaderValue::try_from(proof).map_err(|_| KeyError::Sign)?;
        Ok((proof, nonce))
    }

    fn nonce(&self, url: &Url) -> Option<Arc<str>> {
        let nonces = self.0.nonces.read().unwrap_or_else(|e| e.into_inner());
        if nonces.is_empty() {
            return None;
        }
        nonces.get(origin(url)).cloned()
    }

    /// Remembers the `DPoP-Nonce` of a response from `url`'s origin. Returns true when the
    /// response holds a valid nonce other than `sent` (the one the request's proof
    /// carried): then a `use_dpop_nonce` refusal is worth one more try with it.
    pub(crate) fn remember_nonce(
        &self,
        url: &Url,
        headers: &http::HeaderMap,
        sent: Option<&str>,
    ) -> bool {
        let Some(nonce) = headers.get(DPOP_NONCE).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        // RFC 9449 section 8.1: nonce = 1*NQCHAR (visible ASCII without `"` and `\`).
        if nonce.is_empty()
            || nonce.len() > MAX_NONCE_LEN
            || !nonce
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
        {
            return false;
        }
        let origin = origin(url);
        let mut nonces = self.0.nonces.write().unwrap_or_else(|e| e.into_inner());
        if nonces.get(origin).is_none_or(|known| &**known != nonce) {
            if nonces.len() >= MAX_NONCE_ORIGINS {
                nonces.clear();
            }
            nonces.insert(origin.into(), nonce.into());
        }
        sent != Some(nonce)
    }
}

/// The origin a nonce belongs to: scheme, host and port (user info is not part of it, but
/// `url`'s serialization puts it before the host, so a URL with it is keyed as written).
fn origin(url: &Url) -> &str {
    &url[..Position::BeforePath]
}

/// `ath`: base64url of the SHA-256 of the access token (RFC 9449 section 4.2).
pub(crate) fn ath(token: &str) -> Box<str> {
    crate::jose::compact::encode(digest::digest(&digest::SHA256, token.as_bytes())).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;

    fn decode(part: &str) -> Value {
        serde_json::from_slice(&B64URL.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn a_proof_carries_what_rfc_9449_asks_and_no_query() {
        let key = DpopKey::generate().unwrap();
        let url = Url::parse("https://API.example:443/a/b?q=1#frag").unwrap();
        let proof = key
            .proof("GET", &url, Some("hash"), crate::clock::system_now_ms())
            .unwrap()
            .0;
        let parts: Vec<&str> = proof.to_str().unwrap().split('.').collect();
        assert_eq!(parts.len(), 3);
        let header = decode(parts[0]);
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert!(header["jwk"].get("d").is_none(), "no private member");
        let claims = decode(parts[1]);
        assert_eq!(claims["htm"], "GET");
        assert_eq!(claims["htu"], "https://api.example/a/b");
        assert_eq!(claims["ath"], "hash");
        assert!(claims.get("nonce").is_none());
        let other = key
            .proof("GET", &url, None, crate::clock::system_now_ms())
            .unwrap()
            .0;
        assert_ne!(
            decode(other.to_str().unwrap().split('.').nth(1).unwrap())["jti"],
            claims["jti"],
            "a fresh jti per proof"
        );
    }

    #[test]
    fn the_signature_verifies_with_the_published_jwk() {
        let key = DpopKey::generate().unwrap();
        let url = Url::parse("http://127.0.0.1:1/x").unwrap();
        let proof = key
            .proof("POST", &url, None, crate::clock::system_now_ms())
            .unwrap()
            .0;
        let proof = proof.to_str().unwrap();
        let jwk: jsonwebtoken::jwk::Jwk =
            serde_json::from_value(key.0.key.public_jwk().clone()).unwrap();
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        jsonwebtoken::decode::<Value>(proof, &decoding, &validation).unwrap();
        assert_eq!(
            jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
                .unwrap(),
            key.thumbprint()
        );
    }

    #[test]
    fn nonces_are_remembered_per_origin() {
        let key = DpopKey::generate().unwrap();
        let a = Url::parse("https://a.example/token").unwrap();
        let a_other_path = Url::parse("https://a.example/api?x").unwrap();
        let b = Url::parse("https://b.example/api").unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert(DPOP_NONCE, "n-1".parse().unwrap());
        assert!(key.remember_nonce(&a, &headers, None));
        // Another request that sent no nonce gets the same answer: it too retries, even
        // though the nonce is remembered already.
        assert!(key.remember_nonce(&a, &headers, None));
        assert!(
            !key.remember_nonce(&a, &headers, Some("n-1")),
            "the nonce it sent"
        );
        let nonce_of = |url: &Url| {
            let proof = key
                .proof("GET", url, None, crate::clock::system_now_ms())
                .unwrap()
                .0;
            decode(proof.to_str().unwrap().split('.').nth(1).unwrap())
                .get("nonce")
                .cloned()
        };
        assert_eq!(nonce_of(&a_other_path), Some(Value::from("n-1")));
        assert_eq!(nonce_of(&b), None);
        headers.insert(DPOP_NONCE, "bad\"nonce".parse().unwrap());
        assert!(
            !key.remember_nonce(&b, &headers, None),
            "not an NQCHAR string"
        );
    }

    #[test]
    fn htu_never_carries_user_info() {
        let key = DpopKey::generate().unwrap();
        let url = Url::parse("https://user:pw@api.example/x?q").unwrap();
        let (proof, _) = key
            .proof("GET", &url, None, crate::clock::system_now_ms())
            .unwrap();
        let claims = decode(proof.to_str().unwrap().split('.').nth(1).unwrap());
        assert_eq!(claims["htu"], "https://api.example/x");
    }

    #[test]
    fn ath_is_the_base64url_sha256_of_the_token() {
        // RFC 9449 section 4.3's example... computed independently: SHA-256("abc").
        assert_eq!(&*ath("abc"), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
    }
}
