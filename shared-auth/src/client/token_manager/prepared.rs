//! A cached token made ready to send: its `Authorization` value built once (and, for a
//! DPoP-bound token, the `ath` its proofs carry), kept hot for the warm path.

use reqwest::header::HeaderValue;

use crate::client::credentials::AccessToken;
use crate::client::error::TokenError;
use crate::client::token_cache::CachedToken;
use crate::client::token_endpoint::TokenType;

/// A token ready to send: the token, its `Authorization` value, its timing, and for a
/// DPoP-bound token the `ath` its proofs carry.
#[derive(Debug)]
pub(crate) struct PreparedToken {
    pub(super) token: AccessToken,
    pub(super) header: HeaderValue,
    pub(super) cached_until_ms: u64,
    pub(super) refresh_at_ms: u64,
    /// `Some` for a DPoP token: the hash of the token, computed once per token.
    pub(super) ath: Option<Box<str>>,
    /// The fleet's rejection counter when this token was last found not refused.
    pub(super) checked_rejections: std::sync::atomic::AtomicU64,
}

impl PreparedToken {
    pub(super) fn new(entry: &CachedToken) -> Result<Self, TokenError> {
        let (scheme, ath) = match entry.token_type {
            TokenType::DPoP => (
                "DPoP",
                Some(crate::client::dpop::ath(entry.access_token.secret())),
            ),
            _ => ("Bearer", None),
        };
        let mut header = HeaderValue::try_from(format!("{scheme} {}", entry.access_token.secret()))
            .map_err(|_| TokenError::InvalidResponse("access token is not header-safe".into()))?;
        // Sensitive: hyper keeps it out of HPACK tables and Debug output.
        header.set_sensitive(true);
        Ok(PreparedToken {
            token: entry.access_token.clone(),
            header,
            cached_until_ms: entry.cached_until_ms,
            refresh_at_ms: entry.refresh_at_ms,
            ath,
            checked_rejections: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The access token.
    pub(crate) fn token(&self) -> &AccessToken {
        &self.token
    }

    /// `Bearer <token>` or `DPoP <token>`, marked sensitive.
    pub(crate) fn header(&self) -> &HeaderValue {
        &self.header
    }

    /// For a DPoP-bound token, the `ath` of its proofs.
    pub(crate) fn dpop_ath(&self) -> Option<&str> {
        self.ath.as_deref()
    }
}
