//! Signing keys: generation, loading from PEM, JWK export and JWS signing.
//!
//! The issuer signs with exactly one *current* key. Rotation makes a new key current and
//! keeps the previous ones published in the JWKS until the last token they signed has
//! expired (plus the validators' usual clock leeway), so a rotation never breaks a token
//! that is still in use.
//!
//! Why the JWS is assembled here instead of with `jsonwebtoken::encode`: jsonwebtoken's
//! aws-lc backend takes RSA signing keys only as PKCS#1 DER while aws-lc-rs exports the keys
//! it generates only as PKCS#8, and tests need to sign arbitrary header and payload bytes
//! (forged `alg`, duplicate JSON keys, non-UTF-8 payloads) that an encoder built on typed
//! claims cannot produce. The cryptography itself is aws-lc-rs; what is written here is the
//! base64url framing of RFC 7515 section 7.1. Tests verify the result with `jsonwebtoken`,
//! an independent implementation.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The JWS algorithms the issuer can sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys (the default, as Cognito).
    #[default]
    RS256,
    /// ECDSA P-256 with SHA-256.
    ES256,
}

impl Algorithm {
    /// The JOSE name (`"RS256"`, `"ES256"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::ES256 => "ES256",
        }
    }
}

/// Why a key could not be made or loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read.
    #[error("cannot read key file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a PEM private key of the configured algorithm.
    #[error(
        "key file {path} is not a PEM private key usable for {alg} (expected PKCS#8 'PRIVATE KEY', PKCS#1 'RSA PRIVATE KEY' or SEC1 'EC PRIVATE KEY'): {reason}"
    )]
    Parse {
        /// The file.
        path: String,
        /// The configured algorithm.
        alg: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// Key generation or signing failed inside aws-lc.
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
    /// The key's material cannot compute signatures of this algorithm (an RSA key signs
    /// RS*/PS*, a P-256 key ES256 only).
    #[error("a {key} key cannot sign {alg:?} (an RSA key signs RS256..PS512, a P-256 key ES256)")]
    WrongKeyType {
        /// The algorithm the key is published for.
        key: &'static str,
        /// The algorithm asked for.
        alg: jsonwebtoken::Algorithm,
    },
}

enum KeyMaterial {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// One signing key with its public JWK and the latest expiry of the tokens it signed.
pub struct SigningKey {
    alg: Algorithm,
    kid: String,
    material: KeyMaterial,
    jwk: Value,
    /// Unix seconds: the latest `exp` this key has signed (0 = none yet).
    latest_exp: AtomicU64,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print private key material.
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a fresh key for `alg`.
    pub fn generate(alg: Algorithm) -> Result<Self, KeyError> {
        let material = match alg {
            Algorithm::RS256 => KeyMaterial::Rsa(
                RsaKeyPair::generate(KeySize::Rsa2048)
                    .map_err(|_| KeyError::Crypto("RSA key generation"))?,
            ),
            Algorithm::ES256 => KeyMaterial::Ec(
                EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(|_| KeyError::Crypto("EC key generation"))?,
            ),
        };
        Ok(Self::from_material(alg, material))
    }

    /// Loads a private key from a PEM file. The `kid` is the key's RFC 7638 thumbprint, so
    /// the same file always gives the same `kid`.
    pub fn from_pem_file(alg: Algorithm, path: &Path) -> Result<Self, KeyError> {
        let bytes = std::fs::read(path).map_err(|source| KeyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_pem(alg, &bytes).map_err(|reason| KeyError::Parse {
            path: path.display().to_string(),
            alg: alg.as_str(),
            reason,
        })
    }

    fn from_pem(alg: Algorithm, pem: &[u8]) -> Result<Self, String> {
        let der = PrivateKeyDer::from_pem_slice(pem).map_err(|e| e.to_string())?;
        let material = match (alg, &der) {
            (Algorithm::RS256, PrivateKeyDer::Pkcs1(k)) => {
                RsaKeyPair::from_der(k.secret_pkcs1_der()).map(KeyMaterial::Rsa)
            }
            (Algorithm::RS256, PrivateKeyDer::Pkcs8(k)) => {
                RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()).map(KeyMaterial::Rsa)
            }
            (Algorithm::ES256, PrivateKeyDer::Pkcs8(k)) => EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                k.secret_pkcs8_der(),
            )
            .map(KeyMaterial::Ec),
            (Algorithm::ES256, PrivateKeyDer::Sec1(k)) => EcdsaKeyPair::from_private_key_der(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                k.secret_sec1_der(),
            )
            .map(KeyMaterial::Ec),
            _ => return Err("the key type does not match the algorithm".to_owned()),
        }
        .map_err(|e| e.to_string())?;
        Ok(Self::from_material(alg, material))
    }

    fn from_material(alg: Algorithm, material: KeyMaterial) -> Self {
        // RFC 7638: the thumbprint is the SHA-256 of the required members, in lexical order,
        // with no whitespace. serde_json's map is ordered (BTreeMap), so `json!` gives exactly
        // that canonical form.
        let (mut jwk, thumbprint_input) = match &material {
            KeyMaterial::Rsa(k) => {
                let public: PublicKeyComponents<Vec<u8>> = k.public_key().into();
                let n = B64URL.encode(&public.n);
                let e = B64URL.encode(&public.e);
                let required = json!({"e": e, "kty": "RSA", "n": n});
                (required.clone(), required.to_string())
            }
            KeyMaterial::Ec(k) => {
                // Uncompressed SEC1 point: 0x04 || x (32 bytes) || y (32 bytes).
                let point = k.public_key().as_ref();
                let x = B64URL.encode(&point[1..33]);
                let y = B64URL.encode(&point[33..65]);
                let required = json!({"crv": "P-256", "kty": "EC", "x": x, "y": y});
                (required.clone(), required.to_string())
            }
        };
        let digest =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, thumbprint_input.as_bytes());
        let kid = B64URL.encode(digest.as_ref());
        if let Value::Object(map) = &mut jwk {
            map.insert("use".into(), json!("sig"));
            map.insert("alg".into(), json!(alg.as_str()));
            map.insert("kid".into(), json!(kid));
        }
        SigningKey {
            alg,
            kid,
            material,
            jwk,
            latest_exp: AtomicU64::new(0),
        }
    }

    /// The same key material under another `kid` (in the JWK too). Only the issuer's
    /// "new material, same kid" fault uses it: a `kid` is otherwise the key's thumbprint.
    pub(crate) fn with_kid(mut self, kid: String) -> Self {
        if let Value::Object(map) = &mut self.jwk {
            map.insert("kid".into(), json!(kid));
        }
        self.kid = kid;
        self
    }

    /// The key id published in the JWKS and put in every token header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm this key signs with.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The public JWK (with `kid`, `alg`, `use: sig`).
    pub fn public_jwk(&self) -> &Value {
        &self.jwk
    }

    /// The public key as DER SubjectPublicKeyInfo (what a PEM `PUBLIC KEY` holds). Tests use
    /// it to forge "HMAC keyed with the public key" tokens.
    pub fn public_key_der(&self) -> Result<Vec<u8>, KeyError> {
        use aws_lc_rs::encoding::AsDer as _;
        match &self.material {
            KeyMaterial::Rsa(k) => k
                .public_key()
                .as_der()
                .map(|d| d.as_ref().to_vec())
                .map_err(|_| KeyError::Crypto("public key export")),
            KeyMaterial::Ec(k) => k
                .public_key()
                .as_der()
                .map(|d| d.as_ref().to_vec())
                .map_err(|_| KeyError::Crypto("public key export")),
        }
    }

    /// The public key as PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn public_key_pem(&self) -> Result<String, KeyError> {
        let b64 = base64::engine::general_purpose::STANDARD.encode(self.public_key_der()?);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        Ok(format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        ))
    }

    /// Signs `header` and `payload` given as raw bytes and returns the compact JWS.
    ///
    /// The bytes are used as they are: callers that want a normal token serialize JSON;
    /// tests may pass anything.
    pub fn sign_raw(&self, header: &[u8], payload: &[u8]) -> Result<String, KeyError> {
        self.sign_raw_as(self.jws_alg(), header, payload)
    }

    /// The key's own algorithm as jsonwebtoken names it.
    fn jws_alg(&self) -> jsonwebtoken::Algorithm {
        match self.alg {
            Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
            Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
        }
    }

    /// Like [`Self::sign_raw`], but computes the signature with `alg` instead of the key's
    /// own algorithm: an RSA key also signs RS384, RS512 and PS256..PS512. A test hook
    /// only: RFC 8725 section 3.1 says a key is used with exactly one algorithm, and the
    /// conformance kit checks that a validator holds the key to the `alg` its JWK
    /// publishes. The header is used as given (its `alg` is the caller's business).
    pub fn sign_raw_as(
        &self,
        alg: jsonwebtoken::Algorithm,
        header: &[u8],
        payload: &[u8],
    ) -> Result<String, KeyError> {
        use jsonwebtoken::Algorithm as A;
        let signing_input = format!("{}.{}", B64URL.encode(header), B64URL.encode(payload));
        let rng = SystemRandom::new();
        let signature = match (&self.material, alg) {
            (KeyMaterial::Rsa(k), _) => {
                let padding: &'static dyn signature::RsaEncoding = match alg {
                    A::RS256 => &signature::RSA_PKCS1_SHA256,
                    A::RS384 => &signature::RSA_PKCS1_SHA384,
                    A::RS512 => &signature::RSA_PKCS1_SHA512,
                    A::PS256 => &signature::RSA_PSS_SHA256,
                    A::PS384 => &signature::RSA_PSS_SHA384,
                    A::PS512 => &signature::RSA_PSS_SHA512,
                    _ => return Err(self.wrong_key_type(alg)),
                };
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(padding, &rng, signing_input.as_bytes(), &mut sig)
                    .map_err(|_| KeyError::Crypto("RSA signing"))?;
                sig
            }
            (KeyMaterial::Ec(k), A::ES256) => k
                .sign(&rng, signing_input.as_bytes())
                .map_err(|_| KeyError::Crypto("ECDSA signing"))?
                .as_ref()
                .to_vec(),
            (KeyMaterial::Ec(_), _) => return Err(self.wrong_key_type(alg)),
        };
        Ok(format!("{signing_input}.{}", B64URL.encode(signature)))
    }

    fn wrong_key_type(&self, alg: jsonwebtoken::Algorithm) -> KeyError {
        KeyError::WrongKeyType {
            key: self.alg.as_str(),
            alg,
        }
    }

    /// Signs a JSON header and claims set, and records the token's `exp` so the key stays
    /// published until then.
    pub fn sign_json(&self, header: &Value, claims: &Value) -> Result<String, KeyError> {
        self.sign_json_as(self.jws_alg(), header, claims)
    }

    /// [`Self::sign_json`] with the signature computed under `alg` ([`Self::sign_raw_as`]).
    pub fn sign_json_as(
        &self,
        alg: jsonwebtoken::Algorithm,
        header: &Value,
        claims: &Value,
    ) -> Result<String, KeyError> {
        if let Some(exp) = claims.get("exp").and_then(Value::as_u64) {
            self.latest_exp.fetch_max(exp, Ordering::Relaxed);
        }
        self.sign_raw_as(
            alg,
            header.to_string().as_bytes(),
            claims.to_string().as_bytes(),
        )
    }

    /// Unix seconds of the latest `exp` this key signed (0 if none).
    pub fn latest_exp(&self) -> u64 {
        self.latest_exp.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_and_ec_keys_have_stable_thumbprint_kids() {
        for alg in [Algorithm::RS256, Algorithm::ES256] {
            let key = SigningKey::generate(alg).unwrap();
            assert_eq!(key.kid().len(), 43, "base64url of 32 bytes");
            assert_eq!(key.public_jwk()["kid"], key.kid());
            assert_eq!(key.public_jwk()["alg"], alg.as_str());
            let other = SigningKey::generate(alg).unwrap();
            assert_ne!(key.kid(), other.kid());
        }
    }

    /// The signatures under other algorithms are real ones: jsonwebtoken, an independent
    /// implementation, verifies each with the key's published `n` and `e` under that
    /// algorithm (and not under RS256).
    #[test]
    fn an_rsa_key_signs_under_other_rsa_algorithms_on_request() {
        use jsonwebtoken::Algorithm as A;
        let key = SigningKey::generate(Algorithm::RS256).unwrap();
        let jwk = key.public_jwk();
        let public = jsonwebtoken::DecodingKey::from_rsa_components(
            jwk["n"].as_str().unwrap(),
            jwk["e"].as_str().unwrap(),
        )
        .unwrap();
        for alg in [A::RS256, A::RS384, A::RS512, A::PS256, A::PS384, A::PS512] {
            let token = key
                .sign_json_as(
                    alg,
                    &json!({"alg": format!("{alg:?}")}),
                    &json!({"sub": "x"}),
                )
                .unwrap();
            let (input, sig) = token.rsplit_once('.').unwrap();
            let verifies = |a| jsonwebtoken::crypto::verify(sig, input.as_bytes(), &public, a);
            assert!(verifies(alg).unwrap(), "{alg:?}");
            if alg != A::RS256 {
                assert!(!verifies(A::RS256).unwrap_or(false), "{alg:?} under RS256");
            }
        }
        // The JWK still says RS256: only the signature changed.
        assert_eq!(jwk["alg"], "RS256");
    }

    #[test]
    fn a_key_refuses_algorithms_its_material_cannot_compute() {
        use jsonwebtoken::Algorithm as A;
        let ec = SigningKey::generate(Algorithm::ES256).unwrap();
        let err = ec.sign_raw_as(A::PS256, b"{}", b"{}").unwrap_err();
        assert!(
            err.to_string().contains("ES256 key cannot sign PS256"),
            "{err}"
        );
        let rsa = SigningKey::generate(Algorithm::RS256).unwrap();
        assert!(matches!(
            rsa.sign_raw_as(A::HS256, b"{}", b"{}"),
            Err(KeyError::WrongKeyType { .. })
        ));
    }

    #[test]
    fn pem_of_wrong_type_is_rejected_with_reason() {
        let err = SigningKey::from_pem(Algorithm::RS256, b"not a pem").unwrap_err();
        assert!(!err.is_empty());
    }
}
