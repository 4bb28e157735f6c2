//! Token exchange (RFC 8693) through the token manager: a token for another audience on
//! behalf of the subject of a token this service holds, cached, single flight, with the
//! negative cache; and Transaction Tokens (draft-ietf-oauth-transaction-tokens-08), which
//! are never cached (each names one transaction).
//!
//! The cache key of an exchanged token holds everything that makes it differ: the client,
//! its endpoint and id, the scope, resource and audience asked for, whether the client's
//! own token went as the actor, and the SHA-256 of the subject token. The subject's hash is always there (an empty subject token is refused before
//! anything else), so a token exchanged for one user is never served for another: the key
//! cannot collapse to a shared value when some claim is missing, because it reads no claim.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{ManagedClient, PreparedToken, Target, TokenManager};
use crate::client::credentials::AccessToken;
use crate::client::error::TokenError;
use crate::client::token_cache::CacheKey;
use crate::client::token_endpoint::{
    ACCESS_TOKEN_TYPE, Grant, RetryPolicy, TXN_TOKEN_TYPE, TokenResponse, request_token,
};
use crate::scope::ScopeSet;
use crate::transaction::TransactionToken;

/// What a token exchange asks for (RFC 8693 section 2.1), beside the subject token:
/// [`ManagedClient::exchange`], and the
/// [`TokenExchangeMiddleware`](crate::client::TokenExchangeMiddleware).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenExchange {
    /// `audience`: the API the new token is for (the issuer's name for it).
    pub audience: Option<String>,
    /// `resource` (RFC 8707): the API's URL, instead of or beside the audience.
    pub resource: Option<String>,
    /// The scopes to ask for (default: none sent, the issuer decides, usually the subject
    /// token's).
    pub scope: Option<ScopeSet>,
    /// Send this client's own client-credentials token as `actor_token`, so the issuer
    /// names this service in the new token's `act` from a token it issued rather than
    /// from the client authentication alone (default false).
    pub actor_token: bool,
}

impl TokenExchange {
    /// An exchange for the API called `audience`.
    pub fn for_audience(audience: impl Into<String>) -> Self {
        TokenExchange {
            audience: Some(audience.into()),
            ..TokenExchange::default()
        }
    }

    /// Asks for `scope`.
    pub fn with_scope(mut self, scope: ScopeSet) -> Self {
        self.scope = Some(scope);
        self
    }

    /// Asks for the resource `resource` (RFC 8707).
    pub fn with_resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// Sends the client's own token as the actor token.
    pub fn with_actor_token(mut self) -> Self {
        self.actor_token = true;
        self
    }
}

/// What a Transaction Token is asked for with
/// ([`ManagedClient::transaction_token`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TransactionTokenRequest {
    /// The trust domain (the Transaction Token Service's `audience`).
    pub trust_domain: String,
    /// The scopes the transaction needs (default: none sent, the subject token's).
    pub scope: Option<ScopeSet>,
    /// `request_context`: who asked (the caller's address, how it authenticated); the
    /// token's `rctx`.
    pub request_context: Option<serde_json::Map<String, serde_json::Value>>,
    /// `request_details`: what was asked (the operation, its parameters); the token's
    /// `tctx`.
    pub request_details: Option<serde_json::Map<String, serde_json::Value>>,
}

impl TransactionTokenRequest {
    /// A request for a Transaction Token of `trust_domain`.
    pub fn new(trust_domain: impl Into<String>) -> Self {
        TransactionTokenRequest {
            trust_domain: trust_domain.into(),
            scope: None,
            request_context: None,
            request_details: None,
        }
    }

    /// Asks for `scope`.
    pub fn with_scope(mut self, scope: ScopeSet) -> Self {
        self.scope = Some(scope);
        self
    }

    /// Sends `context` as `request_context`.
    pub fn with_request_context(
        mut self,
        context: serde_json::Map<String, serde_json::Value>,
    ) -> Self {
        self.request_context = Some(context);
        self
    }

    /// Sends `details` as `request_details`.
    pub fn with_request_details(
        mut self,
        details: serde_json::Map<String, serde_json::Value>,
    ) -> Self {
        self.request_details = Some(details);
        self
    }
}

/// The exchange a flight makes: the subject token and whether the actor token goes.
pub(crate) struct ExchangeTarget {
    subject: AccessToken,
    actor_token: bool,
}

impl ManagedClient {
    /// A token for `exchange`'s audience on behalf of the subject of `subject` (an access
    /// token this service received or holds), issued to this client: RFC 8693 token
    /// exchange, cached per subject token (see the module documentation), with single
    /// flight and the negative cache as for the client's own token.
    pub async fn exchange(
        &self,
        subject: &AccessToken,
        exchange: &TokenExchange,
    ) -> Result<AccessToken, TokenError> {
        let target = exchange_target(&self.entry, subject, exchange)?;
        Ok(self.manager.get(&target, false, None).await?.access_token)
    }

    /// [`Self::exchange`], prepared to send.
    pub(crate) async fn exchange_prepared(
        &self,
        subject: &AccessToken,
        exchange: &TokenExchange,
    ) -> Result<Arc<PreparedToken>, TokenError> {
        let target = exchange_target(&self.entry, subject, exchange)?;
        let token = self.manager.get(&target, false, None).await?;
        Ok(Arc::new(PreparedToken::new(&token)?))
    }

    /// After downstream refused an exchanged token with 401: as
    /// [`Self::renew_rejected`], for that exchange.
    pub(crate) async fn renew_rejected_exchange(
        &self,
        subject: &AccessToken,
        exchange: &TokenExchange,
        rejected: &AccessToken,
    ) -> Result<Option<Arc<PreparedToken>>, TokenError> {
        let target = exchange_target(&self.entry, subject, exchange)?;
        self.manager.renew_rejected_target(&target, rejected).await
    }

    /// A new Transaction Token for a request made on behalf of the subject of `subject`
    /// (the user's access token, at the edge of the trust domain), from the Transaction
    /// Token Service at this client's token endpoint. Never cached: each names one
    /// transaction. Retried and bounded as the client's other token requests.
    pub async fn transaction_token(
        &self,
        subject: &AccessToken,
        request: &TransactionTokenRequest,
    ) -> Result<TransactionToken, TokenError> {
        check_subject(subject)?;
        if request.trust_domain.is_empty() {
            return Err(TokenError::InvalidParameters(
                "a Transaction Token needs a trust domain".into(),
            ));
        }
        let mut extra = self.entry.definition.extra_params.clone();
        extra.insert("audience".into(), request.trust_domain.clone());
        for (name, value) in [
            ("request_context", &request.request_context),
            ("request_details", &request.request_details),
        ] {
            if let Some(value) = value {
                extra.insert(
                    name.into(),
                    serde_json::Value::from(value.clone()).to_string(),
                );
            }
        }
        let scope = request.scope.clone().unwrap_or_default();
        let inner = &*self.manager.0;
        let retry = self.entry.definition.retry.unwrap_or(inner.retry);
        let response = request_token(
            &inner.http,
            &self.entry.definition,
            Grant::TokenExchange {
                subject_token: subject.secret(),
                actor_token: None,
                requested_token_type: TXN_TOKEN_TYPE,
                scope: &scope,
                resource: None,
                extra: &extra,
            },
            &retry,
            &self.entry.name,
            inner.clock.as_ref(),
        )
        .await;
        let outcome = match &response {
            Ok(_) => "success",
            Err(TokenError::Rejected { .. }) => "rejected",
            Err(_) => "error",
        };
        metrics::counter!(crate::metrics::TOKEN_REQUESTS, "client" => self.entry.name.clone(), "outcome" => outcome)
            .increment(1);
        Ok(TransactionToken::new(response?.access_token.secret()))
    }
}

impl TokenManager {
    /// The token request of an exchange flight (the actor token first, when asked for).
    pub(super) async fn exchange_token(
        &self,
        target: &Target<'_>,
        exchange: &ExchangeTarget,
        policy: &RetryPolicy,
    ) -> Result<TokenResponse, TokenError> {
        let actor = match exchange.actor_token {
            true => Some(self.prepared(target.entry).await?.token.clone()),
            false => None,
        };
        let inner = &*self.0;
        request_token(
            &inner.http,
            &target.entry.definition,
            Grant::TokenExchange {
                subject_token: exchange.subject.secret(),
                actor_token: actor.as_ref().map(AccessToken::secret),
                requested_token_type: ACCESS_TOKEN_TYPE,
                scope: &target.scope,
                resource: target.resource.as_deref(),
                extra: &target.extra,
            },
            policy,
            &target.entry.name,
            inner.clock.as_ref(),
        )
        .await
    }
}

/// Refuses an empty subject token: there is nothing to exchange, and nothing to key on.
fn check_subject(subject: &AccessToken) -> Result<(), TokenError> {
    if subject.secret().is_empty() {
        return Err(TokenError::InvalidParameters(
            "the subject token of an exchange is empty".into(),
        ));
    }
    Ok(())
}

/// The target of an exchange, keyed as the module documentation says.
fn exchange_target<'a>(
    entry: &'a Arc<super::ClientEntry>,
    subject: &AccessToken,
    exchange: &TokenExchange,
) -> Result<Target<'a>, TokenError> {
    check_subject(subject)?;
    let client = &entry.definition;
    // The exchange's scope is its own, not the client's: none asked, none sent.
    let scope = exchange.scope.clone().unwrap_or_default();
    let resource = exchange.resource.clone();
    // The client's own extra parameters, but not its `audience` (Auth0's name for the API
    // of its client-credentials tokens): an exchange's audience is the exchange's.
    let mut extra: BTreeMap<String, String> = client.extra_params.clone();
    extra.retain(|name, _| !name.eq_ignore_ascii_case("audience"));
    if let Some(audience) = &exchange.audience {
        extra.insert("audience".into(), audience.clone());
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, subject.secret().as_bytes());
    let key = CacheKey::exchange(
        &entry.name,
        client,
        &scope,
        resource.as_deref(),
        &extra,
        &crate::jose::compact::encode(digest.as_ref()),
        exchange.actor_token,
    );
    Ok(Target {
        entry,
        scope,
        resource,
        extra: std::borrow::Cow::Owned(extra),
        key,
        exchange: Some(Arc::new(ExchangeTarget {
            subject: subject.clone(),
            actor_token: exchange.actor_token,
        })),
    })
}
