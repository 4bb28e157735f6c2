//! [`TokenRequestParams`]: what one request asks for beyond a client's own token.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::client::error::TokenError;
use crate::scope::ScopeSet;

/// Per-request options for a token:
/// [`token_with`](crate::client::ManagedClient::token_with), the middleware's
/// [`with_token_request`](crate::client::ClientCredentialsMiddleware::with_token_request)
/// (derived from each outgoing request: a tenant, a path), and user tokens
/// ([`access_token`](crate::client::UserSessions::access_token)).
///
/// Every field but `force_renewal` is part of the cache key: two tenants, or two scopes,
/// never share a token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenRequestParams {
    /// Scopes to request instead of the client's own (for a user: a subset of the login's).
    pub scope: Option<ScopeSet>,
    /// Resource indicator (RFC 8707) instead of the client's own.
    pub resource: Option<String>,
    /// Extra form parameters, added to the client's own (a request's value wins for the
    /// same name): a tenant, an organization. Names of the grant's own parameters
    /// (`scope`, `resource`, `client_id`, `grant_type`, ...) are refused with
    /// [`TokenError::InvalidParameters`].
    pub extra: BTreeMap<String, String>,
    /// Get a new token even if one is cached (joins a renewal already in flight).
    pub force_renewal: bool,
}

impl TokenRequestParams {
    /// Whether these ask for the client's own token (nothing overridden, nothing forced).
    pub(crate) fn is_default(&self) -> bool {
        self.scope.is_none()
            && self.resource.is_none()
            && self.extra.is_empty()
            && !self.force_renewal
    }

    /// The client's own extra parameters `own` with these (these win for one name).
    pub(crate) fn merged_extra<'a>(
        &self,
        own: &'a BTreeMap<String, String>,
    ) -> Cow<'a, BTreeMap<String, String>> {
        if self.extra.is_empty() {
            return Cow::Borrowed(own);
        }
        let mut merged = own.clone();
        merged.extend(self.extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        Cow::Owned(merged)
    }

    /// Refuses extra parameters named like the grant's own.
    pub(crate) fn check(&self) -> Result<(), TokenError> {
        crate::client::token_endpoint::check_extra_params(&self.extra)
            .map_err(TokenError::InvalidParameters)
    }
}
