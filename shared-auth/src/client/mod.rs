//! The client half: get, cache and attach OAuth 2.0 client-credentials tokens.
//!
//! - [`ClientCredentialsClient`] defines a client (token endpoint, id, secret, scope,
//!   resource, credential style);
//! - [`TokenManager`] caches tokens per client and scope, with single flight, refresh
//!   ahead, retries and a negative cache; registering a client returns its
//!   [`ManagedClient`] handle;
//! - [`ClientCredentialsMiddleware`] attaches them to `reqwest-middleware` requests and
//!   handles a downstream 401 with one renewal and one retry;
//! - [`TokenExchangeMiddleware`] sends a token exchanged (RFC 8693) on behalf of the
//!   caller, and [`TransactionTokenMiddleware`] passes the call's Transaction Token on;
//! - tokens are cached in memory by default; `RedisTokenCache` (feature `redis`,
//!   `TokenManagerBuilder::redis_cache`) shares them across replicas.
//!
//! ```no_run
//! use shared_auth::client::{
//!     ClientCredentialsClient, ClientCredentialsMiddleware, ClientId, ClientSecret, TokenManager,
//! };
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = TokenManager::builder().build()?;
//! // Registering returns the client's handle: nothing is looked up by name later.
//! let my_service = manager.register("my-service", ClientCredentialsClient::new(
//!     "https://issuer.example/oauth2/token",
//!     ClientId::new("my-bff"),
//!     ClientSecret::new("from-a-secret-store"),
//! ))?;
//! let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(ClientCredentialsMiddleware::new(my_service))
//!     .build();
//! let forecasts = http.get("https://my-service.example/weatherforecast").send().await?;
//! # let _ = forecasts; Ok(()) }
//! ```

mod credentials;
mod delegation;
mod dpop;
mod error;
mod login;
mod middleware;
#[cfg(feature = "redis")]
mod redis_cache;
mod session_store;
mod sessions;
pub(crate) mod settings;
mod token_cache;
#[cfg(feature = "redis")]
mod token_cache_settings;
pub(crate) mod token_endpoint;
mod token_manager;

pub use crate::endpoint_auth::{
    ClientCertificateFiles, ClientCredential, ClientId, ClientSecret, CredentialStyle,
};
pub use crate::jose::{KeyError, SigningKey};
/// With the `opentelemetry` feature: downstream calls as HTTP client spans carrying the
/// W3C trace context.
#[cfg(feature = "opentelemetry")]
pub use crate::trace::TracingMiddleware;
pub use credentials::{AccessToken, ClientCredentialsClient};
pub use delegation::{OnBehalfOf, TransactionTokenMiddleware};
pub use error::TokenError;
pub use login::{Callback, LoginError, UserLoginConfig};
pub use middleware::{
    ClientCredentialsMiddleware, ReplayOn401, TokenExchangeMiddleware, UserSession,
    UserTokenMiddleware,
};
#[cfg(feature = "redis")]
pub use redis_cache::{RedisCacheConfig, RedisCacheError, RedisTokenCache};
pub use sessions::{SessionConfig, SessionInfo, UserAccessToken, UserSessions, UserTokenError};
#[cfg(feature = "clap")]
pub use settings::ClientArgs;
#[cfg(all(feature = "clap", feature = "redis"))]
pub use settings::TokenCacheArgs;
pub use settings::{ClientDefinition, ClientSettings, TokenSource};
// The token cache's trait and its cross-replica lock protocol: mechanics, for this
// repository's benchmarks and tests only (feature `internals`, no stability promise).
#[cfg(feature = "internals")]
pub use token_cache::{
    CacheKey, CachedToken, FetchBudget, FetchLease, FetchTurn, InMemoryTokenCache, TokenCache,
};
#[cfg(feature = "redis")]
pub use token_cache_settings::TokenCacheSettings;
pub use token_endpoint::RetryPolicy;
#[cfg(feature = "internals")]
pub use token_endpoint::TokenType;
#[cfg(feature = "internals")]
pub use token_manager::REJECTION_RENEWAL_INTERVAL;
pub use token_manager::{
    BuildError, ManagedClient, TokenExchange, TokenManager, TokenManagerBuilder,
    TokenRequestParams, TransactionTokenRequest,
};
