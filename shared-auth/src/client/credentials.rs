//! Client definitions: who the client is, where it gets tokens, and how it authenticates.
//!
//! Values are typed: a [`ClientSecret`] cannot be printed (its `Debug` is redacted and it
//! has no `Display`), and an [`AccessToken`] likewise. A [`ClientCredentialsClient`] is the
//! definition of one named client of the [`TokenManager`](super::TokenManager).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::error::TokenError;
use crate::endpoint_auth::{ClientCredential, ClientId, CredentialStyle};
use crate::scope::ScopeSet;

/// An access token. `Debug` is redacted; use [`AccessToken::secret`] to send it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(std::sync::Arc<str>);

impl AccessToken {
    /// Wraps a token.
    pub fn new(token: impl Into<std::sync::Arc<str>>) -> Self {
        AccessToken(token.into())
    }
    /// The token itself. Do not log it.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccessToken([REDACTED], {} bytes)", self.0.len())
    }
}

/// The definition of one client: token endpoint, credentials, scope, resource.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientCredentialsClient {
    /// The token endpoint URL.
    pub token_endpoint: String,
    /// The client id.
    pub client_id: ClientId,
    /// How the client authenticates.
    pub credential: ClientCredential,
    /// The issuer identifier, when known (from discovery): the default `aud` of a
    /// `private_key_jwt` assertion.
    pub issuer: Option<String>,
    /// Binds the tokens to this key (DPoP, RFC 9449): proofs at the token endpoint and on
    /// every request, with the nonces the servers gave (set with [`Self::with_dpop`]).
    pub(crate) dpop: Option<super::dpop::DpopKey>,
    /// Scopes to request (empty: the issuer's default for the client).
    pub scope: ScopeSet,
    /// RFC 8707 resource indicator, if any.
    pub resource: Option<String>,
    /// How a secret is sent.
    pub credential_style: CredentialStyle,
    /// Extra form parameters sent with every token request (e.g. `audience` for Auth0).
    pub extra_params: BTreeMap<String, String>,
    /// Retries and timeouts of this client's token requests (`None`: the token manager's
    /// [`RetryPolicy`](super::RetryPolicy)).
    pub retry: Option<super::RetryPolicy>,
}

impl ClientCredentialsClient {
    /// A client with no scope, resource or extra parameters; a secret goes in HTTP Basic.
    pub fn new(
        token_endpoint: impl Into<String>,
        client_id: ClientId,
        credential: impl Into<ClientCredential>,
    ) -> Self {
        ClientCredentialsClient {
            token_endpoint: token_endpoint.into(),
            client_id,
            credential: credential.into(),
            issuer: None,
            dpop: None,
            scope: ScopeSet::new(),
            resource: None,
            credential_style: CredentialStyle::default(),
            extra_params: BTreeMap::new(),
            retry: None,
        }
    }

    /// Sets the scopes to request.
    pub fn with_scope(mut self, scope: ScopeSet) -> Self {
        self.scope = scope;
        self
    }

    /// Sets the resource indicator.
    pub fn with_resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// Binds the client's tokens to `key` (DPoP, RFC 9449): its tokens carry the key's
    /// thumbprint ([`SigningKey::thumbprint`](crate::client::SigningKey::thumbprint)) as
    /// `cnf.jkt`, and each request carries a proof signed with it.
    /// `SigningKey::generate_es256()` makes one for this process only.
    pub fn with_dpop(mut self, key: crate::jose::SigningKey) -> Self {
        self.dpop = Some(super::dpop::DpopKey::new(key));
        self
    }

    /// Sets how a secret is sent.
    pub fn with_credential_style(mut self, style: CredentialStyle) -> Self {
        self.credential_style = style;
        self
    }

    /// Sets this client's retries and timeouts instead of the token manager's.
    pub fn with_retry_policy(mut self, retry: super::RetryPolicy) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Adds an extra form parameter.
    pub fn with_extra_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra_params.insert(name.into(), value.into());
        self
    }

    /// The `aud` of this client's `private_key_jwt` assertions (see
    /// [`ClientCredential::PrivateKeyJwt`]).
    pub fn assertion_audience(&self) -> &str {
        match &self.credential {
            ClientCredential::PrivateKeyJwt {
                audience: Some(aud),
                ..
            } => aud,
            _ => self.issuer.as_deref().unwrap_or(&self.token_endpoint),
        }
    }

    /// Builds a client whose token endpoint comes from the authority's discovery document
    /// (`{authority}/.well-known/openid-configuration`). The document's `issuer` must
    /// equal the authority (RFC 8414 section 3.3), and the authority and the token endpoint
    /// must be `https` (or loopback `http`) unless `allow_insecure_http` is set.
    pub async fn from_authority(
        authority: &str,
        client_id: ClientId,
        credential: impl Into<ClientCredential>,
        timeout: Duration,
        allow_insecure_http: bool,
    ) -> Result<Self, TokenError> {
        crate::issuer_http::check_url(authority, allow_insecure_http)
            .map_err(|e| TokenError::Discovery(e.to_string()))?;
        let http = crate::issuer_http::client(Some(timeout), timeout)
            .map_err(|e| TokenError::Transport(e.to_string()))?;
        let url = crate::discovery::authority_url(authority);
        let expected = crate::discovery::trim_slash(authority);
        let metadata = crate::discovery::fetch(
            &http,
            &url,
            Some(expected),
            allow_insecure_http,
            timeout,
            crate::discovery::Need::TokenEndpoint,
        )
        .await
        .map_err(|e| TokenError::Discovery(e.to_string()))?;
        let credential = credential.into();
        // A client with a certificate uses the mutual-TLS alias when there is one (RFC
        // 8705 section 5).
        let alias = match credential {
            ClientCredential::TlsClientCertificate(_) => metadata.mtls_token_endpoint,
            _ => None,
        };
        let token_endpoint = alias.or(metadata.token_endpoint).ok_or_else(|| {
            TokenError::Discovery(format!(
                "the discovery document at {url} has no token_endpoint"
            ))
        })?;
        let mut client = Self::new(token_endpoint, client_id, credential);
        client.issuer = Some(expected.to_owned());
        Ok(client)
    }

    /// Builds a client for the protected resource `resource` (an API's URL) from its
    /// OAuth 2.0 protected resource metadata (RFC 9728): the document at
    /// `{origin}/.well-known/oauth-protected-resource{path}` must name `resource` exactly
    /// (section 3.3). Of its `authorization_servers`, the first that is among
    /// `trusted_issuers` (compared as issuers are, a trailing slash aside) is then
    /// discovered as in [`from_authority`](Self::from_authority) (its document's `issuer`
    /// must equal that entry), and its token endpoint is used. `timeout` bounds each of the
    /// two requests.
    ///
    /// The credential only ever goes to an issuer the client trusts (section 7: whoever
    /// can answer at the resource's well-known path would otherwise receive it). With no
    /// `trusted_issuers`, only a credential useless anywhere else is accepted: a
    /// `private_key_jwt` credential whose assertions name the chosen server as their
    /// audience, or a client certificate (mutual TLS sends no replayable secret); a secret
    /// or an assertion file is refused before any request. A loopback
    /// server named by a resource that is not loopback, or a plain-http server named by an
    /// https resource, is refused whatever the trust.
    pub async fn from_protected_resource(
        resource: &str,
        trusted_issuers: &[String],
        client_id: ClientId,
        credential: impl Into<ClientCredential>,
        timeout: Duration,
        allow_insecure_http: bool,
    ) -> Result<Self, TokenError> {
        let credential = credential.into();
        if trusted_issuers.is_empty() && credential.replayable_elsewhere() {
            return Err(TokenError::Credential(format!(
                "the client's secret or assertion would go to whichever authorization server \
                 the protected resource {resource} names (RFC 9728 section 7): name the \
                 trusted issuers (or use private_key_jwt with the default audience)"
            )));
        }
        let http = crate::issuer_http::client(Some(timeout), timeout)
            .map_err(|e| TokenError::Transport(e.to_string()))?;
        let metadata =
            crate::discovery::fetch_resource(&http, resource, allow_insecure_http, timeout)
                .await
                .map_err(|e| TokenError::Discovery(e.to_string()))?;
        let servers = &metadata.authorization_servers;
        let trim = crate::discovery::trim_slash;
        let server = servers
            .iter()
            .find(|s| {
                trusted_issuers.is_empty() || trusted_issuers.iter().any(|t| trim(t) == trim(s))
            })
            .ok_or_else(|| {
                TokenError::Discovery(if servers.is_empty() {
                    format!("the protected resource {resource} names no authorization server")
                } else {
                    format!(
                        "the protected resource {resource} names none of the trusted issuers \
                         {trusted_issuers:?} among its authorization servers {servers:?}"
                    )
                })
            })?;
        if let Some(reason) = crate::issuer_http::downgrade(resource, server) {
            return Err(TokenError::Discovery(format!(
                "the protected resource {resource} names the authorization server {server}, \
                 refused: {reason} (RFC 9728 section 7)"
            )));
        }
        tracing::debug!(%resource, authorization_server = %server, "authorization server found through the protected resource metadata");
        Self::from_authority(server, client_id, credential, timeout, allow_insecure_http)
            .await
            .map_err(|e| match e {
                TokenError::Discovery(reason) => TokenError::Discovery(format!(
                    "authorization server {server} of the protected resource {resource}: {reason}"
                )),
                other => other,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint_auth::ClientSecret;

    #[test]
    fn secrets_and_tokens_never_print() {
        let client = ClientCredentialsClient::new(
            "http://issuer/token",
            ClientId::new("bff"),
            ClientSecret::new("super-secret-value"),
        );
        let printed = format!("{client:?}");
        assert!(!printed.contains("super-secret-value"), "{printed}");
        assert!(printed.contains("REDACTED"));
        let token = AccessToken::new("eyJ.secret.token");
        assert!(!format!("{token:?}").contains("secret"));
    }
}
