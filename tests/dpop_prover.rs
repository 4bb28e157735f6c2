//! A DPoP client's key for the suites (`tests/dpop.rs`, `tests/redis.rs`): P-256 from
//! aws-lc-rs, proofs signed over whatever header and claims a test wants.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use serde_json::{Value, json};

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A client's DPoP key: makes proofs.
pub struct Prover {
    key: EcdsaKeyPair,
    pub jwk: Value,
    pub jkt: String,
}

impl Prover {
    pub fn new() -> Self {
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        // The uncompressed point: 0x04 || x || y.
        let point = key.public_key().as_ref().to_vec();
        let jwk =
            json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65])});
        let jkt = serde_json::from_value::<Jwk>(jwk.clone())
            .unwrap()
            .thumbprint(ThumbprintHash::SHA256)
            .unwrap();
        Prover { key, jwk, jkt }
    }

    /// Signs `header` and `claims` as they are (ES256).
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = self
            .key
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", b64(signature.as_ref()))
    }

    /// A proof for `method` `htu` and `token`, after `edit` changed header and claims.
    pub fn proof_with(
        &self,
        method: &str,
        htu: &str,
        token: &str,
        iat: u64,
        edit: impl FnOnce(&mut Value, &mut Value),
    ) -> String {
        static JTI: AtomicU64 = AtomicU64::new(0);
        let mut header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk});
        let ath =
            b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref());
        let mut claims = json!({
            "jti": format!("jti-{}-{}", std::process::id(), JTI.fetch_add(1, Ordering::SeqCst)),
            "htm": method,
            "htu": htu,
            "iat": iat,
            "ath": ath,
        });
        edit(&mut header, &mut claims);
        self.sign(&header, &claims)
    }

    pub fn proof(&self, method: &str, htu: &str, token: &str) -> String {
        self.proof_with(method, htu, token, now(), |_, _| {})
    }
}
