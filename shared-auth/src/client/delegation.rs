//! Calls that carry who asked: a token exchanged on behalf of the caller
//! ([`TokenExchangeMiddleware`](super::TokenExchangeMiddleware), RFC 8693, with the
//! [`OnBehalfOf`] subject) and the Transaction Token passed on
//! ([`TransactionTokenMiddleware`], draft-ietf-oauth-transaction-tokens-08).
//!
//! ```no_run
//! use shared_auth::client::{
//!     AccessToken, OnBehalfOf, TokenExchange, TokenExchangeMiddleware, TokenManager,
//!     TransactionTokenMiddleware,
//! };
//! # async fn demo(client: shared_auth::client::ManagedClient, incoming: AccessToken) -> Result<(), Box<dyn std::error::Error>> {
//! let downstream = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     // A token for the Downstream API on behalf of the caller, issued to this service.
//!     .with(TokenExchangeMiddleware::new(client, TokenExchange::for_audience("Downstream")))
//!     // The request's Transaction Token, passed on unchanged (calls inside the trust
//!     // domain only).
//!     .with(TransactionTokenMiddleware)
//!     .build();
//! let answer = downstream
//!     .get("https://downstream.internal/orders")
//!     .with_extension(OnBehalfOf::new(incoming))
//!     .send()
//!     .await?;
//! # let _ = answer; Ok(()) }
//! ```

use http::{Extensions, HeaderValue};
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};

use super::credentials::AccessToken;
use super::error::TokenError;
use crate::transaction::{TXN_TOKEN_HEADER, TransactionToken};

/// The subject a request is made on behalf of: the access token the service received
/// from its caller (or a user's, at the BFF). Give it to the
/// [`TokenExchangeMiddleware`](super::TokenExchangeMiddleware)
/// with `RequestBuilder::with_extension(OnBehalfOf::new(token))`. Its `Debug` shows no
/// token.
#[derive(Clone)]
pub struct OnBehalfOf(pub(super) AccessToken);

impl OnBehalfOf {
    /// On behalf of the subject of `token`.
    pub fn new(token: AccessToken) -> Self {
        OnBehalfOf(token)
    }
}

impl std::fmt::Debug for OnBehalfOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnBehalfOf([REDACTED])")
    }
}

/// Sends the Transaction Token of the call being handled, unchanged, in the `Txn-Token`
/// header: the request's [`TransactionToken`] extension if it has one (at the edge, the
/// token just obtained with
/// [`ManagedClient::transaction_token`](super::ManagedClient::transaction_token)), else [`TransactionToken::current`] (the one the
/// server half checked for the request this task is handling). With neither, the request
/// goes without. A `Txn-Token` header already on the request is replaced: only a checked
/// or freshly issued token is passed on.
///
/// Add it only to clients that call services inside the trust domain, and build those
/// without redirects (`reqwest::redirect::Policy::none()`): a Transaction Token must not
/// leave the domain, and reqwest keeps headers it does not know for credentials (this one)
/// when it follows a redirect to another host.
#[derive(Clone, Copy, Debug, Default)]
pub struct TransactionTokenMiddleware;

#[async_trait::async_trait]
impl Middleware for TransactionTokenMiddleware {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let token = extensions
            .get::<TransactionToken>()
            .cloned()
            .or_else(TransactionToken::current);
        request.headers_mut().remove(TXN_TOKEN_HEADER);
        if let Some(token) = token {
            let mut value = HeaderValue::from_str(token.secret()).map_err(|_| {
                reqwest_middleware::Error::middleware(TokenError::InvalidParameters(
                    "the Transaction Token is not a valid header value".into(),
                ))
            })?;
            value.set_sensitive(true);
            request.headers_mut().insert(TXN_TOKEN_HEADER, value);
        }
        next.run(request, extensions).await
    }
}
