//! The JOSE core for tools outside the library (feature `jose`): the mock issuer reads
//! client assertions, DPoP proofs and tokens with it, so one set of parsing rules serves
//! the issuer and the validator alike. A compact JWS is read strictly (three base64url
//! parts; header and payload JSON objects, each name once at every depth, every string
//! valid), then verified with a JWK.

use serde_json::{Map, Value};

use super::compact::{self, Compact};
use super::json::{self, Jwk};
use super::jwk::{self, Base64, VerifyKey};
use super::{JoseError, SignatureAlgorithm};

/// Why a compact JWS could not be read; the text says which part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// Not three parts separated by dots.
    #[error("not a compact JWS (three base64url parts separated by '.')")]
    Shape,
    /// A part is not unpadded base64url.
    #[error("the {0} is not base64url")]
    Base64(&'static str),
    /// The header or the payload is not a strict JSON object.
    #[error("the {0} is not a JSON object (or repeats a member, or holds invalid text)")]
    Json(&'static str),
}

/// A compact JWS read by the core's rules and not yet verified.
#[derive(Debug)]
pub struct Unverified<'a> {
    /// `header.payload`: what the signature covers.
    pub signing_input: &'a str,
    /// The protected header.
    pub header: Map<String, Value>,
    /// The payload, a claims set.
    pub claims: Map<String, Value>,
    /// The signature's bytes.
    pub signature: Vec<u8>,
}

/// Reads a compact JWS: its parts, header and claims; nothing is verified.
pub fn read(jws: &str) -> Result<Unverified<'_>, ReadError> {
    let parts = Compact::split(jws).map_err(|_| ReadError::Shape)?;
    let decode = |part: &str, what: &'static str| {
        compact::decode(part).map_err(|e| match e {
            JoseError::Shape => ReadError::Shape,
            JoseError::Base64 => ReadError::Base64(what),
        })
    };
    let header =
        json::parse_map(&decode(parts.header, "header")?).map_err(|_| ReadError::Json("header"))?;
    let claims = json::parse_map(&decode(parts.payload, "payload")?)
        .map_err(|_| ReadError::Json("payload"))?;
    Ok(Unverified {
        signing_input: parts.signing_input,
        header,
        claims,
        signature: decode(parts.signature, "signature")?,
    })
}

/// Whether `signature` is `alg`'s signature of `signing_input` under the public key `jwk`
/// (a JSON object): a key of the family `alg` needs (RSA of at least 2048 bits, the EC
/// curve, Ed25519), with no private member. Members may be padded.
pub fn verifies(
    jwk: &Value,
    alg: SignatureAlgorithm,
    signing_input: &str,
    signature: &[u8],
) -> bool {
    jwk.as_object()
        .and_then(Jwk::from_map)
        .and_then(|jwk| VerifyKey::new(&jwk, &[alg], Base64::Padded))
        .is_some_and(|key| key.verifies(alg, signing_input.as_bytes(), signature))
}

/// The RFC 7638 SHA-256 thumbprint of a public JWK (a JSON object), base64url.
pub fn thumbprint(jwk: &Value) -> Option<String> {
    jwk.as_object()
        .and_then(Jwk::from_map)
        .and_then(|jwk| jwk::thumbprint(&jwk))
}
