//! A DPoP client's key for the suites (`tests/dpop.rs`, `tests/redis.rs`): the conformance
//! kit's prover (`conformance::dpop::Prover`, one construction of proofs in the repository)
//! with the suites' conveniences: an explicit `iat`, and panics instead of errors.
#![allow(dead_code, unused_imports)] // each suite uses part of it

use serde_json::Value;

pub use conformance::{b64, now};

/// A client's DPoP key: makes proofs.
pub struct Prover {
    inner: conformance::dpop::Prover,
    /// The public key as a JWK (the proof's `jwk` header).
    pub jwk: Value,
    /// Its RFC 7638 thumbprint (a bound token's `cnf.jkt`).
    pub jkt: String,
}

impl Prover {
    pub fn new() -> Self {
        let inner = conformance::dpop::Prover::new().unwrap();
        Prover {
            jwk: inner.jwk.clone(),
            jkt: inner.jkt.clone(),
            inner,
        }
    }

    /// A JWS over `header` and `claims`, signed with this key.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        self.inner.sign(header, claims).unwrap()
    }

    /// A proof for `method` `htu` and `token` issued at `iat`, after `edit` changed header
    /// and claims.
    pub fn proof_with(
        &self,
        method: &str,
        htu: &str,
        token: &str,
        iat: u64,
        edit: impl FnOnce(&mut Value, &mut Value),
    ) -> String {
        self.inner
            .proof_with(method, htu, token, |header, claims| {
                claims["iat"] = iat.into();
                edit(header, claims);
            })
            .unwrap()
    }

    /// A correct proof for `method` `htu` and `token`.
    pub fn proof(&self, method: &str, htu: &str, token: &str) -> String {
        self.inner.proof(method, htu, token).unwrap()
    }
}
