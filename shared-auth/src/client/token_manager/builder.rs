//! Building a [`TokenManager`]: its cache, clock, lifetimes, retries and transport policy,
//! each with a default; and why a manager could not be built or a client not registered.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Inner, Slots, TokenManager};
use crate::client::token_cache::{InMemoryTokenCache, TokenCache};
use crate::client::token_endpoint::RetryPolicy;
use crate::clock::Clock;
use crate::issuer_http;

/// Why a [`TokenManager`] could not be built or a client not registered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A client's token endpoint may not be used (not https and not loopback, without the
    /// opt-in).
    #[error("client {client:?}: {source}")]
    TokenEndpoint {
        /// The client's name.
        client: String,
        /// What is wrong with the URL.
        source: issuer_http::UrlError,
    },
    /// A client with this name is registered already. Names label the metrics and the
    /// cache keys, so two clients may not share one.
    #[error("a client named {0:?} is registered already")]
    DuplicateClient(String),
    /// A client's extra parameters name one of the grant's own (`scope`, `client_id`, ...).
    #[error("client {client:?}: {reason}")]
    ExtraParameters {
        /// The client's name.
        client: String,
        /// Which parameter, and why.
        reason: String,
    },
    /// The HTTP client could not be built (TLS roots, ...).
    #[error("cannot build the HTTP client for token requests: {0}")]
    Http(String),
}

/// Builds a [`TokenManager`].
pub struct TokenManagerBuilder {
    pub(super) cache: Option<Arc<dyn TokenCache>>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) lifetime_buffer: Duration,
    pub(super) refresh_ahead: f64,
    pub(super) negative_ttl: Duration,
    pub(super) retry: RetryPolicy,
    pub(super) default_lifetime: Duration,
    pub(super) allow_insecure_http: bool,
}

impl TokenManagerBuilder {
    /// Shares tokens with every replica through Redis instead of the in-memory default
    /// (see [`RedisTokenCache`](crate::client::RedisTokenCache)).
    #[cfg(feature = "redis")]
    pub fn redis_cache(mut self, cache: crate::client::RedisTokenCache) -> Self {
        self.cache = Some(Arc::new(cache));
        self
    }

    /// Uses `cache` instead of the in-memory default (benchmarks and tests).
    #[cfg(feature = "internals")]
    pub fn cache(mut self, cache: Arc<dyn TokenCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Reads time from `clock` instead of the system clock (tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Tokens are used until this long before they expire (default 60 s).
    pub fn lifetime_buffer(mut self, buffer: Duration) -> Self {
        self.lifetime_buffer = buffer;
        self
    }

    /// Fraction of the cached life at the end of which a background renewal starts
    /// (default 0.1; 0 disables refresh ahead).
    pub fn refresh_ahead(mut self, fraction: f64) -> Self {
        self.refresh_ahead = fraction.clamp(0.0, 0.5);
        self
    }

    /// How long a failure is returned without a new request (default 5 s).
    pub fn negative_cache(mut self, ttl: Duration) -> Self {
        self.negative_ttl = ttl;
        self
    }

    /// Retry and timeout policy for token requests.
    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Lifetime assumed when the issuer sends no `expires_in` (default 5 min).
    pub fn default_lifetime(mut self, lifetime: Duration) -> Self {
        self.default_lifetime = lifetime;
        self
    }

    /// Allows token endpoints on plain `http` to non-loopback hosts (default false). For
    /// test networks only: the client secret crosses the network in clear.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Builds the manager; [`TokenManager::register`] then adds its clients. Fails if the
    /// HTTP client cannot be built: never a silent fallback to other settings.
    pub fn build(self) -> Result<TokenManager, BuildError> {
        // No global timeout: each attempt has its own (RetryPolicy). No redirects: a 307
        // would resend a client_secret_post secret elsewhere.
        let http =
            issuer_http::client(None, self.retry.attempt_timeout.min(Duration::from_secs(3)))
                .map_err(|e| BuildError::Http(e.to_string()))?;
        let clock = self.clock;
        let cache = self
            .cache
            .unwrap_or_else(|| Arc::new(InMemoryTokenCache::with_clock(10_000, clock.clone())));
        Ok(TokenManager(Arc::new(Inner {
            clients: Mutex::new(BTreeSet::new()),
            allow_insecure_http: self.allow_insecure_http,
            rejections: cache.rejections(),
            cache,
            clock,
            http,
            slots: Mutex::new(Slots::default()),
            lifetime_buffer: self.lifetime_buffer,
            refresh_ahead: self.refresh_ahead,
            negative_ttl: self.negative_ttl,
            retry: self.retry,
            default_lifetime: self.default_lifetime,
            flights_started: AtomicUsize::new(0),
        })))
    }
}
