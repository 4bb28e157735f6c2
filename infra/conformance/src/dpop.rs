//! DPoP proofs (RFC 9449 section 4) made by the kit: a P-256 key from aws-lc-rs, and
//! proofs signed over whatever header and claims a case wants, so each property of a proof
//! can be broken on its own. The same construction as the system suites' prover
//! (`tests/dpop_prover.rs`), without panics.

use std::sync::atomic::{AtomicU64, Ordering};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use serde_json::{Value, json};

use crate::{BuildError, b64, now};

/// A client's DPoP key.
pub struct Prover {
    key: EcdsaKeyPair,
    /// The public key as a JWK (the proof's `jwk` header).
    pub jwk: Value,
    /// Its RFC 7638 thumbprint (a bound token's `cnf.jkt`).
    pub jkt: String,
}

impl Prover {
    /// A fresh key.
    pub fn new() -> Result<Self, BuildError> {
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| BuildError("cannot generate a P-256 key".into()))?;
        // The uncompressed point: 0x04 || x || y.
        let point = key.public_key().as_ref();
        let (x, y) = match (point.get(1..33), point.get(33..65)) {
            (Some(x), Some(y)) => (x, y),
            _ => return Err(BuildError("unexpected P-256 public key encoding".into())),
        };
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y)});
        let jkt = serde_json::from_value::<Jwk>(jwk.clone())
            .map_err(|e| BuildError(format!("JWK: {e}")))?
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| BuildError(format!("JWK thumbprint: {e}")))?;
        Ok(Prover { key, jwk, jkt })
    }

    /// Signs `header` and `claims` as they are (ES256).
    pub fn sign(&self, header: &Value, claims: &Value) -> Result<String, BuildError> {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = self
            .key
            .sign(&SystemRandom::new(), input.as_bytes())
            .map_err(|_| BuildError("ES256 signing failed".into()))?;
        Ok(format!("{input}.{}", b64(signature.as_ref())))
    }

    /// A proof for `method` `htu` and `token`, after `edit` changed header and claims.
    pub fn proof_with(
        &self,
        method: &str,
        htu: &str,
        token: &str,
        edit: impl FnOnce(&mut Value, &mut Value),
    ) -> Result<String, BuildError> {
        static JTI: AtomicU64 = AtomicU64::new(0);
        let mut header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk});
        let mut claims = json!({
            "jti": format!("kit-{}-{}-{}", std::process::id(), now(), JTI.fetch_add(1, Ordering::SeqCst)),
            "htm": method,
            "htu": htu,
            "iat": now(),
            "ath": ath(token),
        });
        edit(&mut header, &mut claims);
        self.sign(&header, &claims)
    }

    /// A correct proof for `method` `htu` and `token`.
    pub fn proof(&self, method: &str, htu: &str, token: &str) -> Result<String, BuildError> {
        self.proof_with(method, htu, token, |_, _| {})
    }
}

/// `ath`: base64url of the SHA-256 of the access token.
pub fn ath(token: &str) -> String {
    b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref())
}
