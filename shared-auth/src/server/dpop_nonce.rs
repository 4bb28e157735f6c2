//! Server-issued DPoP nonces (RFC 9449 section 9): stateless, so any replica can check a
//! nonce another issued.
//!
//! Time is cut into buckets of the nonce lifetime; the nonce of a bucket is
//! base64url(HMAC-SHA256(secret, "dpop-nonce" || bucket number)). A proof's nonce is
//! accepted when it is the current bucket's or the previous one's, so a nonce lives one to
//! two lifetimes and a client that just got one never sees it expire at once. Nothing is
//! stored.
//!
//! Replicas: with the same secret (`NonceSecret`, from settings) every replica issues and
//! accepts the same nonces. Without one, each process draws a random secret at start:
//! a nonce issued by one replica is refused by another (the client is sent a new nonce
//! and retries), which behind a load balancer without affinity can repeat. Set a shared
//! secret when running several replicas with nonces on.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::clock::Clock;

/// The shortest secret accepted (bytes).
pub(crate) const MIN_SECRET_LEN: usize = 32;

/// A secret value from settings (the DPoP nonce key, a Redis URL with a password): never
/// shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize), serde(transparent))]
pub struct SecretValue(String);

impl SecretValue {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        SecretValue(value.into())
    }

    /// The value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

/// Issues and checks nonces (see the module documentation).
pub(crate) struct Nonces {
    key: hmac::Key,
    lifetime_ms: u64,
    clock: Arc<dyn Clock>,
}

/// A nonce's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NonceCheck {
    /// The current bucket's nonce.
    Current,
    /// The previous bucket's: still accepted, and a fresh one is due.
    Previous,
    /// Missing, expired or forged.
    Invalid,
}

impl Nonces {
    /// `secret`: at least [`MIN_SECRET_LEN`] bytes, or `None` for a random one.
    pub(crate) fn new(
        secret: Option<&[u8]>,
        lifetime: Duration,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, String> {
        let key = match secret {
            Some(s) if s.len() < MIN_SECRET_LEN => {
                return Err(format!(
                    "the DPoP nonce secret must be at least {MIN_SECRET_LEN} bytes"
                ));
            }
            Some(s) => hmac::Key::new(hmac::HMAC_SHA256, s),
            None => hmac::Key::generate(hmac::HMAC_SHA256, &aws_lc_rs::rand::SystemRandom::new())
                .map_err(|_| "cannot draw a random DPoP nonce secret".to_owned())?,
        };
        Ok(Nonces {
            key,
            lifetime_ms: u64::try_from(lifetime.as_millis())
                .unwrap_or(u64::MAX)
                .max(1000),
            clock,
        })
    }

    fn bucket(&self) -> u64 {
        self.clock.now_unix_ms() / self.lifetime_ms
    }

    fn tag(&self, bucket: u64) -> hmac::Tag {
        let mut message = [0u8; 18];
        message[..10].copy_from_slice(b"dpop-nonce");
        message[10..].copy_from_slice(&bucket.to_be_bytes());
        hmac::sign(&self.key, &message)
    }

    /// The nonce to hand out now.
    pub(crate) fn current(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.tag(self.bucket()))
    }

    /// Checks a proof's `nonce` claim.
    pub(crate) fn check(&self, nonce: Option<&str>) -> NonceCheck {
        let Some(bytes) = nonce
            .filter(|n| n.len() <= 64)
            .and_then(|n| URL_SAFE_NO_PAD.decode(n).ok())
        else {
            return NonceCheck::Invalid;
        };
        let bucket = self.bucket();
        let verify = |b: u64| {
            let mut message = [0u8; 18];
            message[..10].copy_from_slice(b"dpop-nonce");
            message[10..].copy_from_slice(&b.to_be_bytes());
            // Constant-time comparison.
            hmac::verify(&self.key, &message, &bytes).is_ok()
        };
        if verify(bucket) {
            NonceCheck::Current
        } else if bucket > 0 && verify(bucket - 1) {
            NonceCheck::Previous
        } else {
            NonceCheck::Invalid
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn a_nonce_lives_its_bucket_and_the_next_then_expires() {
        let clock = Arc::new(ManualClock::starting_now());
        let nonces = Nonces::new(Some(&[7; 32]), Duration::from_secs(60), clock.clone()).unwrap();
        let nonce = nonces.current();
        assert_eq!(nonces.check(Some(&nonce)), NonceCheck::Current);
        clock.advance(Duration::from_secs(60));
        assert_eq!(nonces.check(Some(&nonce)), NonceCheck::Previous);
        assert_ne!(nonces.current(), nonce, "a fresh nonce is issued");
        clock.advance(Duration::from_secs(60));
        assert_eq!(nonces.check(Some(&nonce)), NonceCheck::Invalid);
        assert_eq!(nonces.check(None), NonceCheck::Invalid);
        assert_eq!(nonces.check(Some("not a nonce")), NonceCheck::Invalid);
    }

    #[test]
    fn replicas_with_one_secret_share_nonces_and_others_do_not() {
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::starting_now());
        let a = Nonces::new(Some(&[1; 32]), Duration::from_secs(60), clock.clone()).unwrap();
        let b = Nonces::new(Some(&[1; 32]), Duration::from_secs(60), clock.clone()).unwrap();
        let c = Nonces::new(Some(&[2; 32]), Duration::from_secs(60), clock.clone()).unwrap();
        let random = Nonces::new(None, Duration::from_secs(60), clock.clone()).unwrap();
        assert_eq!(b.check(Some(&a.current())), NonceCheck::Current);
        assert_eq!(c.check(Some(&a.current())), NonceCheck::Invalid);
        assert_eq!(random.check(Some(&a.current())), NonceCheck::Invalid);
        assert!(Nonces::new(Some(&[1; 31]), Duration::from_secs(60), clock).is_err());
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let s = SecretValue::new("hunter2-hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
