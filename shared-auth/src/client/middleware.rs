//! [`ClientCredentialsMiddleware`]: `Authorization: Bearer` for every request of a
//! `reqwest-middleware` client.
//!
//! ```no_run
//! use shared_auth::client::{ClientCredentialsMiddleware, TokenManager};
//! # fn demo(manager: TokenManager) {
//! let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(ClientCredentialsMiddleware::new(manager, "my-service"))
//!     .build();
//! # let _ = http; }
//! ```
//!
//! - If no token can be had, the request is **not sent**: the caller gets an error that
//!   wraps the [`TokenError`] (see [`token_error`]). Duende sends it unauthenticated.
//! - On a 401 from downstream it renews the token (unless it was already renewed since
//!   this request's token was taken) and retries **once**, and only when the request body
//!   can be replayed (`try_clone`). A second 401 is returned to the caller as it is.

use http::Extensions;
use reqwest::header::AUTHORIZATION;
use reqwest::{Request, Response, StatusCode};
use reqwest_middleware::{Middleware, Next};

use super::error::TokenError;
use super::token_manager::TokenManager;

/// Attaches a managed client-credentials token to every request.
#[derive(Clone, Debug)]
pub struct ClientCredentialsMiddleware {
    manager: TokenManager,
    client_name: String,
}

impl ClientCredentialsMiddleware {
    /// Uses the client registered as `client_name` in `manager`.
    pub fn new(manager: TokenManager, client_name: impl Into<String>) -> Self {
        ClientCredentialsMiddleware {
            manager,
            client_name: client_name.into(),
        }
    }
}

/// The [`TokenError`] inside a middleware error, if that is why a request was not sent.
pub fn token_error(error: &reqwest_middleware::Error) -> Option<&TokenError> {
    match error {
        reqwest_middleware::Error::Middleware(e) => e.downcast_ref::<TokenError>(),
        reqwest_middleware::Error::Reqwest(_) => None,
    }
}

#[async_trait::async_trait]
impl Middleware for ClientCredentialsMiddleware {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let prepared = self
            .manager
            .prepared(&self.client_name)
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        request
            .headers_mut()
            .insert(AUTHORIZATION, prepared.header().clone());
        let replay = request.try_clone();
        let response = next.clone().run(request, extensions).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let Some(mut replay) = replay else {
            tracing::debug!(client = %self.client_name, "401 from downstream; body not replayable, not retried");
            return Ok(response);
        };
        tracing::debug!(client = %self.client_name, "401 from downstream; renewing the token and retrying once");
        metrics::counter!(crate::metrics::UNAUTHORIZED_RETRIES, "client" => self.client_name.to_string())
            .increment(1);
        drop(response);
        let renewed = self
            .manager
            .renew_rejected_prepared(&self.client_name, prepared.token())
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        replay
            .headers_mut()
            .insert(AUTHORIZATION, renewed.header().clone());
        next.run(replay, extensions).await
    }
}
