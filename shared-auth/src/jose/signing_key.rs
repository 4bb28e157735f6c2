//! Private keys that sign: client assertions (`private_key_jwt`) and DPoP proofs.
//!
//! A [`SigningKey`] is read once, from a PEM file (PKCS#8, PKCS#1 RSA or SEC1 EC) or a JWK
//! file (a private JWK, or a JWK set holding one key), or generated, and then signs compact
//! JWS (RFC 7515 section 7.1) with aws-lc-rs. Its public JWK and RFC 7638 thumbprint are
//! computed once.
//!
//! Why the signing is not `jsonwebtoken::encode`: jsonwebtoken 12 makes a new signer from
//! the PKCS#8 bytes for every call, so each signature re-parses the key (for ES256 as long
//! again as the signature itself), and a DPoP proof is signed for every request. The
//! compact form is three base64url parts joined by dots; the header and claims are written
//! by serde_json. The thumbprint is the JOSE core's (`jwk::thumbprint`), the same code the
//! resource server uses to compare it with `cnf.jkt`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::compact::{decode, encode, encode_into};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPairComponents, PublicKeyComponents};
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject as _;
use serde_json::{Value, json};

use super::SignatureAlgorithm;

/// Why a key could not be loaded or used. Never contains key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The file could not be read.
    #[error("cannot read the key file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The bytes are not a private key in a supported form.
    #[error("not a usable private key: {0}")]
    Format(String),
    /// Signing failed (a broken key; does not happen with a key that loaded).
    #[error("signing failed")]
    Sign,
}

enum Pair {
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

struct Inner {
    pair: Pair,
    alg: SignatureAlgorithm,
    public_jwk: Value,
    thumbprint: String,
}

/// A private signing key (RS256/384/512, PS256/384/512, ES256, ES384 or EdDSA). Cheap to
/// clone. `Debug` shows the algorithm and thumbprint, never the key.
#[derive(Clone)]
pub struct SigningKey {
    inner: Arc<Inner>,
    kid: Option<Arc<str>>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.inner.alg)
            .field("kid", &self.kid)
            .field("jkt", &self.inner.thumbprint)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Reads a key file: a private JWK (or a JWK set with one key) when the content starts
    /// with `{`, else PEM. `rsa_alg` picks the algorithm of an RSA key from PEM (default
    /// RS256; a JWK's own `alg` wins); EC and Ed25519 keys imply theirs.
    pub fn from_file(path: &Path, rsa_alg: Option<SignatureAlgorithm>) -> Result<Self, KeyError> {
        let bytes = std::fs::read(path).map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        if bytes.trim_ascii_start().starts_with(b"{") {
            Self::from_jwk_with(&bytes, rsa_alg)
        } else {
            Self::from_pem(&bytes, rsa_alg)
        }
    }

    /// A key from PEM: PKCS#8 (RSA, EC P-256/P-384, Ed25519), PKCS#1 RSA or SEC1 EC.
    pub fn from_pem(pem: &[u8], rsa_alg: Option<SignatureAlgorithm>) -> Result<Self, KeyError> {
        let der = PrivateKeyDer::from_pem_slice(pem)
            .map_err(|e| KeyError::Format(format!("no PEM private key ({e})")))?;
        let rsa_alg = rsa_alg.unwrap_or(SignatureAlgorithm::RS256);
        let rejected = |e: aws_lc_rs::error::KeyRejected| KeyError::Format(e.to_string());
        let (pair, alg) = match &der {
            PrivateKeyDer::Pkcs1(k) => (
                Pair::Rsa(RsaKeyPair::from_der(k.secret_pkcs1_der()).map_err(rejected)?),
                rsa_alg,
            ),
            PrivateKeyDer::Sec1(k) => {
                ec_pair(|a| EcdsaKeyPair::from_private_key_der(a, k.secret_sec1_der()))?
            }
            PrivateKeyDer::Pkcs8(k) => {
                let der = k.secret_pkcs8_der();
                if let Ok(pair) = RsaKeyPair::from_pkcs8(der) {
                    (Pair::Rsa(pair), rsa_alg)
                } else if let Ok(pair) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
                    (Pair::Ed25519(pair), SignatureAlgorithm::EdDSA)
                } else {
                    ec_pair(|a| EcdsaKeyPair::from_pkcs8(a, der))?
                }
            }
            _ => return Err(KeyError::Format("unsupported PEM key type".into())),
        };
        Self::new(pair, alg, None)
    }

    /// A key from a private JWK (RFC 7517), or a JWK set holding exactly one key. Its
    /// `kid` and `alg` are used when present.
    pub fn from_jwk(json: &[u8]) -> Result<Self, KeyError> {
        Self::from_jwk_with(json, None)
    }

    /// [`Self::from_jwk`], with `rsa_alg` for an RSA JWK that names no `alg`.
    fn from_jwk_with(json: &[u8], rsa_alg: Option<SignatureAlgorithm>) -> Result<Self, KeyError> {
        let value: Value = serde_json::from_slice(json)
            .map_err(|e| KeyError::Format(format!("not JSON ({e})")))?;
        let jwk = match value.get("keys") {
            Some(Value::Array(keys)) if keys.len() == 1 => keys[0].clone(),
            Some(_) => {
                return Err(KeyError::Format(
                    "a JWK set must hold exactly one key".into(),
                ));
            }
            None => value,
        };
        let member = |name: &str| -> Result<Vec<u8>, KeyError> {
            let text = jwk
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| KeyError::Format(format!("the JWK has no `{name}`")))?;
            decode(text)
                .map_err(|_| KeyError::Format(format!("the JWK's `{name}` is not base64url")))
        };
        let text = |name: &str| jwk.get(name).and_then(Value::as_str);
        let named_alg = match text("alg") {
            None => None,
            Some(alg) => Some(parse_alg(alg)?),
        };
        let rejected = |e: aws_lc_rs::error::KeyRejected| KeyError::Format(e.to_string());
        let (pair, alg) = match text("kty") {
            Some("RSA") => {
                let (n, e, d) = (member("n")?, member("e")?, member("d")?);
                let (p, q, dp, dq, qi) = (
                    member("p")?,
                    member("q")?,
                    member("dp")?,
                    member("dq")?,
                    member("qi")?,
                );
                let components = KeyPairComponents {
                    public_key: PublicKeyComponents {
                        n: &n[..],
                        e: &e[..],
                    },
                    d: &d[..],
                    p: &p[..],
                    q: &q[..],
                    dP: &dp[..],
                    dQ: &dq[..],
                    qInv: &qi[..],
                };
                let alg = named_alg.or(rsa_alg).unwrap_or(SignatureAlgorithm::RS256);
                (
                    Pair::Rsa(RsaKeyPair::from_components(&components).map_err(rejected)?),
                    alg,
                )
            }
            Some("EC") => {
                let signing = match text("crv") {
                    Some("P-256") => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    Some("P-384") => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
                    other => {
                        return Err(KeyError::Format(format!("unsupported EC curve {other:?}")));
                    }
                };
                let mut point = vec![4u8];
                point.extend(member("x")?);
                point.extend(member("y")?);
                let pair =
                    EcdsaKeyPair::from_private_key_and_public_key(signing, &member("d")?, &point)
                        .map_err(rejected)?;
                let alg = if text("crv") == Some("P-256") {
                    SignatureAlgorithm::ES256
                } else {
                    SignatureAlgorithm::ES384
                };
                (Pair::Ecdsa(pair), alg)
            }
            Some("OKP") if text("crv") == Some("Ed25519") => {
                let pair = Ed25519KeyPair::from_seed_and_public_key(&member("d")?, &member("x")?)
                    .map_err(rejected)?;
                (Pair::Ed25519(pair), SignatureAlgorithm::EdDSA)
            }
            other => return Err(KeyError::Format(format!("unsupported key type {other:?}"))),
        };
        if let Some(named) = named_alg
            && named != alg
        {
            return Err(KeyError::Format(format!(
                "the JWK's alg {named:?} does not fit its key"
            )));
        }
        Self::new(pair, alg, text("kid").map(str::to_owned))
    }

    /// A new ES256 key (P-256), for a DPoP key made at start.
    pub fn generate_es256() -> Result<Self, KeyError> {
        let pair = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| KeyError::Format("key generation failed".into()))?;
        Self::new(Pair::Ecdsa(pair), SignatureAlgorithm::ES256, None)
    }

    /// Sets the key id written into the JWS header (`kid`).
    pub fn with_key_id(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(Arc::from(kid.into()));
        self
    }

    /// The signature algorithm.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.inner.alg
    }

    /// The key id, if any.
    pub fn key_id(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The RFC 7638 SHA-256 thumbprint of the public key (base64url): DPoP's `jkt`.
    pub fn thumbprint(&self) -> &str {
        &self.inner.thumbprint
    }

    /// The public key as a JWK (no private member).
    pub fn public_jwk(&self) -> &Value {
        &self.inner.public_jwk
    }

    fn new(pair: Pair, alg: SignatureAlgorithm, kid: Option<String>) -> Result<Self, KeyError> {
        let fits = match (&pair, alg) {
            (Pair::Rsa(_), a) => matches!(
                a,
                SignatureAlgorithm::RS256
                    | SignatureAlgorithm::RS384
                    | SignatureAlgorithm::RS512
                    | SignatureAlgorithm::PS256
                    | SignatureAlgorithm::PS384
                    | SignatureAlgorithm::PS512
            ),
            (Pair::Ecdsa(_), a) => {
                matches!(a, SignatureAlgorithm::ES256 | SignatureAlgorithm::ES384)
            }
            (Pair::Ed25519(_), a) => a == SignatureAlgorithm::EdDSA,
        };
        if !fits {
            return Err(KeyError::Format(format!("{alg:?} does not fit the key")));
        }
        let public_jwk = match &pair {
            Pair::Rsa(k) => {
                let public: PublicKeyComponents<Vec<u8>> = k.public_key().into();
                json!({"e": encode(&public.e), "kty": "RSA", "n": encode(&public.n)})
            }
            Pair::Ecdsa(k) => {
                // Uncompressed SEC1 point: 0x04 || x || y, coordinates of equal length.
                let point = &k.public_key().as_ref()[1..];
                let (x, y) = point.split_at(point.len() / 2);
                let crv = if alg == SignatureAlgorithm::ES256 {
                    "P-256"
                } else {
                    "P-384"
                };
                json!({"crv": crv, "kty": "EC", "x": encode(x), "y": encode(y)})
            }
            Pair::Ed25519(k) => {
                json!({"crv": "Ed25519", "kty": "OKP", "x": encode(k.public_key().as_ref())})
            }
        };
        let text = public_jwk.to_string();
        let thumbprint = serde_json::from_str::<super::json::Object<super::json::Jwk<'_>>>(&text)
            .ok()
            .and_then(|jwk| super::jwk::thumbprint(&jwk.0))
            .ok_or_else(|| KeyError::Format("no thumbprint for the public key".into()))?;
        Ok(SigningKey {
            inner: Arc::new(Inner {
                pair,
                alg,
                public_jwk,
                thumbprint,
            }),
            kid: kid.map(Arc::from),
        })
    }

    /// The base64url of a JWS protected header: `alg`, `kid` when set, and `extra`
    /// members (`typ`, `jwk`, ...).
    pub(crate) fn encoded_header(&self, extra: &[(&str, Value)]) -> String {
        let mut header = serde_json::Map::new();
        header.insert("alg".into(), Value::String(self.inner.alg.name().into()));
        if let Some(kid) = &self.kid {
            header.insert("kid".into(), Value::String(kid.to_string()));
        }
        for (name, value) in extra {
            header.insert((*name).into(), value.clone());
        }
        encode(Value::Object(header).to_string())
    }

    /// A compact JWS of `claims` under a header made by [`Self::encoded_header`].
    pub(crate) fn sign_compact(
        &self,
        encoded_header: &str,
        claims: &[u8],
    ) -> Result<String, KeyError> {
        let mut jws = String::with_capacity(encoded_header.len() + claims.len() * 4 / 3 + 400);
        jws.push_str(encoded_header);
        jws.push('.');
        encode_into(claims, &mut jws);
        let signature = self.sign(jws.as_bytes())?;
        jws.push('.');
        encode_into(signature, &mut jws);
        Ok(jws)
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let rng = SystemRandom::new();
        match &self.inner.pair {
            Pair::Ecdsa(k) => k
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyError::Sign),
            Pair::Ed25519(k) => Ok(k.sign(message).as_ref().to_vec()),
            Pair::Rsa(k) => {
                let padding: &'static dyn signature::RsaEncoding = match self.inner.alg {
                    SignatureAlgorithm::RS384 => &signature::RSA_PKCS1_SHA384,
                    SignatureAlgorithm::RS512 => &signature::RSA_PKCS1_SHA512,
                    SignatureAlgorithm::PS256 => &signature::RSA_PSS_SHA256,
                    SignatureAlgorithm::PS384 => &signature::RSA_PSS_SHA384,
                    SignatureAlgorithm::PS512 => &signature::RSA_PSS_SHA512,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut out = vec![0; k.public_modulus_len()];
                k.sign(padding, &rng, message, &mut out)
                    .map_err(|_| KeyError::Sign)?;
                Ok(out)
            }
        }
    }
}

fn ec_pair(
    load: impl Fn(
        &'static signature::EcdsaSigningAlgorithm,
    ) -> Result<EcdsaKeyPair, aws_lc_rs::error::KeyRejected>,
) -> Result<(Pair, SignatureAlgorithm), KeyError> {
    if let Ok(pair) = load(&signature::ECDSA_P256_SHA256_FIXED_SIGNING) {
        return Ok((Pair::Ecdsa(pair), SignatureAlgorithm::ES256));
    }
    load(&signature::ECDSA_P384_SHA384_FIXED_SIGNING)
        .map(|pair| (Pair::Ecdsa(pair), SignatureAlgorithm::ES384))
        .map_err(|e| {
            KeyError::Format(format!(
                "not an RSA, EC (P-256, P-384) or Ed25519 key ({e})"
            ))
        })
}

/// A JOSE algorithm name as a signing algorithm (no HMAC, no `none`).
pub(crate) fn parse_alg(name: &str) -> Result<SignatureAlgorithm, KeyError> {
    SignatureAlgorithm::from_name(name).ok_or_else(|| {
        KeyError::Format(format!(
            "{name:?} is not an asymmetric signature algorithm (RS256, PS256, ES256, EdDSA, ...)"
        ))
    })
}

/// 16 random bytes, base64url: a `jti` for an assertion or a proof.
pub(crate) fn random_jti() -> Result<String, KeyError> {
    use aws_lc_rs::rand::SecureRandom as _;
    let mut id = [0u8; 16];
    SystemRandom::new()
        .fill(&mut id)
        .map_err(|_| KeyError::Sign)?;
    Ok(encode(id))
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::encoding::{AsBigEndian as _, AsDer as _, Pkcs8V1Der};
    use aws_lc_rs::signature::KeyPair as _;

    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;

    /// RFC 7517 appendix A.2: an RSA private key as a JWK.
    static RFC7517_RSA: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| {
        json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "d": "X4cTteJY_gn4FYPsXB8rdXix5vwsg1FLN5E3EaG6RJoVH-HLLKD9M7dx5oo7GURknchnrRweUkC7hT5fJLM0WbFAKNLWY2vv7B6NqXSzUvxT0_YSfqijwp3RTzlBaCxWp4doFk5N2o8Gy_nHNKroADIkJ46pRUohsXywbReAdYaMwFs9tv8d_cPVY3i07a3t8MN6TNwm0dSawm9v47UiCl3Sk5ZiG7xojPLu4sbg1U2jx4IBTNBznbJSzFHK66jT8bgkuqsk0GjskDJk19Z4qwjwbsnn4j2WBii3RL-Us2lGVkY8fkFzme1z0HbIkfz0Y6mqnOYtqc0X4jfcKoAC8Q",
            "p": "83i-7IvMGXoMXCskv73TKr8637FiO7Z27zv8oj6pbWUQyLPQBQxtPVnwD20R-60eTDmD2ujnMt5PoqMrm8RfmNhVWDtjjMmCMjOpSXicFHj7XOuVIYQyqVWlWEh6dN36GVZYk93N8Bc9vY41xy8B9RzzOGVQzXvNEvn7O0nVbfs",
            "q": "3dfOR9cuYq-0S-mkFLzgItgMEfFzB2q3hWehMuG0oCuqnb3vobLyumqjVZQO1dIrdwgTnCdpYzBcOfW5r370AFXjiWft_NGEiovonizhKpo9VVS78TzFgxkIdrecRezsZ-1kYd_s1qDbxtkDEgfAITAG9LUnADun4vIcb6yelxk",
            "dp": "G4sPXkc6Ya9y8oJW9_ILj4xuppu0lzi_H7VTkS8xj5SdX3coE0oimYwxIi2emTAue0UOa5dpgFGyBJ4c8tQ2VF402XRugKDTP8akYhFo5tAA77Qe_NmtuYZc3C3m3I24G2GvR5sSDxUyAN2zq8Lfn9EUms6rY3Ob8YeiKkTiBj0",
            "dq": "s9lAH9fggBsoFR8Oac2R_E2gw282rT2kGOAhvIllETE1efrA6huUUvMfBcMpn8lqeW6vzznYY5SSQF7pMdC_agI3nG8Ibp1BUb0JUiraRNqUfLhcQb_d9GF4Dh7e74WbRsobRonujTYN1xCaP6TO61jvWrX-L18txXw494Q_cgk",
            "qi": "GyM_p6JrXySiz1toFgKbWV-JdI3jQ4ypu9rbMWx3rQJBfmt0FoYzgUIZEVFEcOqwemRN81zoDAaa-Bk0KWNGDjJHZDdDmFhW3AN7lI-puxk_mHZGJ11rxyR8O55XLSe3SPmRfKwZI6yU24ZxvQKFYItdldUKGzO6Ia6zTKhAVRU"
        })
    });

    fn pem(label: &str, der: &[u8]) -> Vec<u8> {
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n").into_bytes()
    }

    /// Signs a JWT and checks it with jsonwebtoken and the key's own public JWK, and that
    /// the thumbprint is jsonwebtoken's.
    fn round_trip(key: &SigningKey) {
        let header = key.encoded_header(&[]);
        let jws = key.sign_compact(&header, br#"{"sub":"x"}"#).unwrap();
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.public_jwk().clone()).unwrap();
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(key.algorithm().name().parse().unwrap());
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<Value>(&jws, &decoding, &validation)
            .unwrap_or_else(|e| panic!("{:?}: {e}", key.algorithm()));
        assert_eq!(data.claims["sub"], "x");
        assert_eq!(
            jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
                .unwrap(),
            key.thumbprint()
        );
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(key.public_jwk().get(private).is_none());
        }
    }

    #[test]
    fn rsa_pkcs8_pem_signs_rs256_or_ps256() {
        let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let der: Pkcs8V1Der<'_> = pair.as_der().unwrap();
        let pem = pem("PRIVATE KEY", der.as_ref());
        let rs = SigningKey::from_pem(&pem, None).unwrap();
        assert_eq!(rs.algorithm(), SignatureAlgorithm::RS256);
        round_trip(&rs);
        let ps = SigningKey::from_pem(&pem, Some(SignatureAlgorithm::PS256)).unwrap();
        assert_eq!(ps.algorithm(), SignatureAlgorithm::PS256);
        round_trip(&ps);
        assert_eq!(rs.thumbprint(), ps.thumbprint());
        // RFC 7517 appendix A.2's private RSA key as a JWK file without `alg`: the
        // algorithm asked for applies, as for PEM.
        let path = std::env::temp_dir().join(format!("rsa-jwk-{}.json", std::process::id()));
        std::fs::write(&path, RFC7517_RSA.to_string()).unwrap();
        let from_file = SigningKey::from_file(&path, Some(SignatureAlgorithm::PS256));
        std::fs::remove_file(&path).unwrap();
        let from_file = from_file.unwrap();
        assert_eq!(from_file.algorithm(), SignatureAlgorithm::PS256);
        round_trip(&from_file);
        // RFC 7638 section 3.1 computes this thumbprint for the same public key.
        assert_eq!(
            from_file.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn ec_keys_load_from_pkcs8_sec1_and_jwk() {
        let pair = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let pkcs8 = pair.to_pkcs8v1().unwrap();
        let from_pkcs8 = SigningKey::from_pem(&pem("PRIVATE KEY", pkcs8.as_ref()), None).unwrap();
        assert_eq!(from_pkcs8.algorithm(), SignatureAlgorithm::ES256);
        round_trip(&from_pkcs8);
        let sec1: aws_lc_rs::encoding::EcPrivateKeyRfc5915Der<'_> =
            pair.private_key().as_der().unwrap();
        let from_sec1 = SigningKey::from_pem(&pem("EC PRIVATE KEY", sec1.as_ref()), None).unwrap();
        assert_eq!(from_sec1.thumbprint(), from_pkcs8.thumbprint());

        let d: aws_lc_rs::encoding::EcPrivateKeyBin<'_> = pair.private_key().as_be_bytes().unwrap();
        let mut jwk = from_pkcs8.public_jwk().clone();
        jwk["d"] = Value::String(B64URL.encode(d.as_ref()));
        jwk["kid"] = Value::String("ec-1".into());
        let from_jwk = SigningKey::from_jwk(jwk.to_string().as_bytes()).unwrap();
        assert_eq!(from_jwk.thumbprint(), from_pkcs8.thumbprint());
        assert_eq!(from_jwk.key_id(), Some("ec-1"));
        round_trip(&from_jwk);
        let set = json!({"keys": [jwk]}).to_string();
        assert!(SigningKey::from_jwk(set.as_bytes()).is_ok());

        let p384 = EcdsaKeyPair::generate(&signature::ECDSA_P384_SHA384_FIXED_SIGNING).unwrap();
        let key = SigningKey::from_pem(
            &pem("PRIVATE KEY", p384.to_pkcs8v1().unwrap().as_ref()),
            None,
        )
        .unwrap();
        assert_eq!(key.algorithm(), SignatureAlgorithm::ES384);
        round_trip(&key);
    }

    #[test]
    fn ed25519_keys_load_from_pkcs8_and_jwk() {
        let pair = Ed25519KeyPair::generate().unwrap();
        let der: Pkcs8V1Der<'_> = pair.as_der().unwrap();
        let from_pem = SigningKey::from_pem(&pem("PRIVATE KEY", der.as_ref()), None).unwrap();
        assert_eq!(from_pem.algorithm(), SignatureAlgorithm::EdDSA);
        round_trip(&from_pem);
        let seed: aws_lc_rs::encoding::Curve25519SeedBin<'_> =
            pair.seed().unwrap().as_be_bytes().unwrap();
        let jwk = json!({
            "kty": "OKP", "crv": "Ed25519",
            "x": B64URL.encode(pair.public_key().as_ref()),
            "d": B64URL.encode(seed.as_ref()),
        });
        let from_jwk = SigningKey::from_jwk(jwk.to_string().as_bytes()).unwrap();
        assert_eq!(from_jwk.thumbprint(), from_pem.thumbprint());
    }

    #[test]
    fn what_is_not_a_usable_private_key_is_refused_with_a_reason() {
        let public_only = json!({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"});
        let e = SigningKey::from_jwk(public_only.to_string().as_bytes()).unwrap_err();
        assert!(e.to_string().contains("`d`"), "{e}");
        let hmac = json!({"kty": "oct", "k": "c2VjcmV0"});
        assert!(SigningKey::from_jwk(hmac.to_string().as_bytes()).is_err());
        assert!(SigningKey::from_pem(b"not a pem", None).is_err());
        let two = json!({"keys": [{}, {}]});
        assert!(SigningKey::from_jwk(two.to_string().as_bytes()).is_err());
        assert!(parse_alg("HS256").is_err());
        assert!(parse_alg("none").is_err());
        let err = SigningKey::from_file(Path::new("/nonexistent/key.pem"), None).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/key.pem"), "{err}");
    }

    #[test]
    fn debug_shows_no_key_material() {
        let key = SigningKey::generate_es256().unwrap().with_key_id("k1");
        let printed = format!("{key:?}");
        assert!(
            printed.contains("ES256") && printed.contains("k1"),
            "{printed}"
        );
        assert!(!printed.contains("\"d\""));
    }
}
