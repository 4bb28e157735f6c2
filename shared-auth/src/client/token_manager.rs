//! [`TokenManager`]: named clients, cached tokens, one request at a time per cache key.
//!
//! ```no_run
//! use shared_auth::client::{ClientCredentialsClient, ClientId, ClientSecret, TokenManager};
//! # async fn demo() -> Result<(), shared_auth::client::TokenError> {
//! let manager = TokenManager::builder()
//!     .client("my-service", ClientCredentialsClient::new(
//!         "http://127.0.0.1:7000/oauth2/token",
//!         ClientId::new("my-bff"),
//!         ClientSecret::new("my-bff-dev-secret-change-me"),
//!     ))
//!     .build();
//! let token = manager.token("my-service").await?;   // fetched once, then cached
//! # let _ = token; Ok(()) }
//! ```
//!
//! How a call is served:
//! 1. cache hit: the token is returned at once. In its last 10 % of cached life one
//!    background renewal starts, and callers keep getting the current token meanwhile;
//! 2. a recent failure for the key (the negative-cache window, default 5 s) is returned at
//!    once, so an outage does not turn every outbound call into a token request;
//! 3. otherwise the caller queues on the key's lock. The first one requests a token; the
//!    others find it in the cache (or its error) when their turn comes. That is the single
//!    flight: a thousand concurrent callers on a cold cache make one request.
//!
//! A forced renewal that arrives while a renewal is in flight joins it rather than starting
//! another. After a 401 from downstream, the middleware renews only if the cached token is
//! still the one that was rejected.
//!
//! The hot path: each client keeps its default-scope token, with a ready-made
//! `Authorization` header value, behind an `ArcSwap`. A warm `token()` or `prepared()` is a
//! map lookup, an atomic load and a clock read; the cache backend is consulted only when
//! that token is missing or stale.
//!
//! The per-key lock is hand-made from tokio primitives. moka's `get_with` coalesces loads
//! but cannot express "join the in-flight renewal" or "renew unless already renewed".

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use reqwest::header::HeaderValue;

use super::credentials::{AccessToken, ClientCredentialsClient};
use super::error::TokenError;
use super::token_cache::{
    CacheKey, CachedToken, FetchTurn, InMemoryTokenCache, TokenCache, now_ms,
};
use super::token_endpoint::{RetryPolicy, request_token};
use crate::metrics::HotCounter;
use crate::scope::ScopeSet;

/// Per-request options for [`TokenManager::token_with`].
#[derive(Debug, Clone, Default)]
pub struct TokenRequestParams {
    /// Scopes to request instead of the client's own.
    pub scope: Option<ScopeSet>,
    /// Resource indicator instead of the client's own.
    pub resource: Option<String>,
    /// Get a new token even if one is cached (joins a renewal already in flight).
    pub force_renewal: bool,
}

/// Default lifetime buffer: tokens are used until 60 s before they expire.
pub const DEFAULT_LIFETIME_BUFFER: Duration = Duration::from_secs(60);

/// Builds a [`TokenManager`].
pub struct TokenManagerBuilder {
    clients: HashMap<String, ClientCredentialsClient>,
    cache: Option<Arc<dyn TokenCache>>,
    lifetime_buffer: Duration,
    refresh_ahead: f64,
    negative_ttl: Duration,
    retry: RetryPolicy,
    default_lifetime: Duration,
}

impl TokenManagerBuilder {
    /// Registers a client under `name`.
    pub fn client(mut self, name: impl Into<String>, client: ClientCredentialsClient) -> Self {
        self.clients.insert(name.into(), client);
        self
    }

    /// Uses `cache` instead of the in-memory default.
    pub fn cache(mut self, cache: Arc<dyn TokenCache>) -> Self {
        self.cache = Some(cache);
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

    /// Builds the manager.
    pub fn build(self) -> TokenManager {
        // The client has no global timeout: each attempt has its own (RetryPolicy).
        let http = reqwest::Client::builder()
            .connect_timeout(self.retry.attempt_timeout.min(Duration::from_secs(3)))
            .build()
            .unwrap_or_default();
        let clients = self
            .clients
            .into_iter()
            .map(|(name, definition)| {
                let default_key = CacheKey::new(
                    &name,
                    &definition,
                    &definition.scope,
                    definition.resource.as_deref(),
                );
                let entry = ClientEntry {
                    metrics: ClientMetrics::new(&name),
                    definition,
                    default_key,
                    hot: ArcSwapOption::empty(),
                };
                (name, entry)
            })
            .collect();
        TokenManager(Arc::new(Inner {
            clients,
            cache: self
                .cache
                .unwrap_or_else(|| Arc::new(InMemoryTokenCache::default())),
            http,
            slots: Mutex::new(HashMap::new()),
            lifetime_buffer: self.lifetime_buffer,
            refresh_ahead: self.refresh_ahead,
            negative_ttl: self.negative_ttl,
            retry: self.retry,
            default_lifetime: self.default_lifetime,
        }))
    }
}

/// A token ready to send: the token, its `Authorization` value, its timing.
#[derive(Debug)]
pub struct PreparedToken {
    token: AccessToken,
    header: HeaderValue,
    cached_until_ms: u64,
    refresh_at_ms: u64,
}

impl PreparedToken {
    fn new(entry: &CachedToken) -> Result<Self, TokenError> {
        let mut header = HeaderValue::try_from(format!("Bearer {}", entry.access_token.secret()))
            .map_err(|_| {
            TokenError::InvalidResponse("access token is not header-safe".into())
        })?;
        // Sensitive: hyper keeps it out of HPACK tables and Debug output.
        header.set_sensitive(true);
        Ok(PreparedToken {
            token: entry.access_token.clone(),
            header,
            cached_until_ms: entry.cached_until_ms,
            refresh_at_ms: entry.refresh_at_ms,
        })
    }

    /// A prepared token with no cache timing (never served from the hot slot).
    fn for_token(token: AccessToken) -> Result<Self, TokenError> {
        Self::new(&CachedToken {
            access_token: token,
            expires_at_ms: 0,
            cached_until_ms: 0,
            refresh_at_ms: 0,
        })
    }

    /// The access token.
    pub fn token(&self) -> &AccessToken {
        &self.token
    }

    /// `Bearer <token>`, marked sensitive.
    pub fn header(&self) -> &HeaderValue {
        &self.header
    }
}

/// A registered client: its definition, its default cache key, its hot token.
struct ClientEntry {
    definition: ClientCredentialsClient,
    default_key: CacheKey,
    hot: ArcSwapOption<PreparedToken>,
    metrics: ClientMetrics,
}

/// A client's hot-path counters, registered once (see [`crate::metrics`]).
struct ClientMetrics {
    hit: HotCounter,
    miss: metrics::Counter,
    refresh_ahead: metrics::Counter,
}

impl ClientMetrics {
    fn new(client: &str) -> Self {
        use crate::metrics::{TOKEN_CACHE_LOOKUPS, TOKEN_REFRESH_AHEAD};
        let client = client.to_owned();
        ClientMetrics {
            hit: HotCounter::new(
                TOKEN_CACHE_LOOKUPS,
                &[("client", &client), ("result", "hit")],
            ),
            miss: metrics::counter!(TOKEN_CACHE_LOOKUPS, "client" => client.clone(), "result" => "miss"),
            refresh_ahead: metrics::counter!(TOKEN_REFRESH_AHEAD, "client" => client),
        }
    }
}

/// Per cache key: the single-flight lock and the latest failure.
#[derive(Default)]
struct Slot {
    /// Held by whoever requests a token for this key. An async lock on purpose: it is held
    /// across the token request.
    lock: tokio::sync::Mutex<()>,
    /// Bumped after every completed request (success or failure), so a waiter can tell
    /// that the request it queued behind has finished.
    generation: AtomicU64,
    refreshing: AtomicBool,
    failure: Mutex<Option<(u64, TokenError)>>,
}

impl Slot {
    fn recent_failure(&self, now: u64) -> Option<TokenError> {
        let failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        match &*failure {
            Some((until, error)) if now < *until => Some(error.clone()),
            _ => None,
        }
    }

    fn set_failure(&self, value: Option<(u64, TokenError)>) {
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = value;
    }
}

struct Inner {
    clients: HashMap<String, ClientEntry>,
    cache: Arc<dyn TokenCache>,
    http: reqwest::Client,
    slots: Mutex<HashMap<CacheKey, Arc<Slot>>>,
    lifetime_buffer: Duration,
    refresh_ahead: f64,
    negative_ttl: Duration,
    retry: RetryPolicy,
    default_lifetime: Duration,
}

/// Gets and caches client-credentials tokens for named clients. Cheap to clone.
#[derive(Clone)]
pub struct TokenManager(Arc<Inner>);

impl std::fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.0.clients.keys().collect();
        names.sort();
        f.debug_struct("TokenManager")
            .field("clients", &names)
            .finish_non_exhaustive()
    }
}

/// What a request for a token is for.
struct Target<'a> {
    name: &'a str,
    entry: &'a ClientEntry,
    client: &'a ClientCredentialsClient,
    scope: ScopeSet,
    resource: Option<String>,
    key: CacheKey,
}

impl TokenManager {
    /// A builder with the defaults (in-memory cache, 60 s buffer, refresh ahead at 10 %,
    /// 5 s negative cache, default retry policy).
    pub fn builder() -> TokenManagerBuilder {
        TokenManagerBuilder {
            clients: HashMap::new(),
            cache: None,
            lifetime_buffer: DEFAULT_LIFETIME_BUFFER,
            refresh_ahead: 0.1,
            negative_ttl: Duration::from_secs(5),
            retry: RetryPolicy::default(),
            default_lifetime: Duration::from_secs(300),
        }
    }

    /// A token for the client registered as `name`, from the cache if possible.
    pub async fn token(&self, name: &str) -> Result<AccessToken, TokenError> {
        Ok(self.prepared(name).await?.token.clone())
    }

    /// The token for `name` with its ready-made `Authorization` value (what the middleware
    /// sends). Warm, this is a map lookup, an atomic load and a clock read.
    pub async fn prepared(&self, name: &str) -> Result<Arc<PreparedToken>, TokenError> {
        let entry = self
            .0
            .clients
            .get(name)
            .ok_or_else(|| TokenError::UnknownClient(name.to_owned()))?;
        if let Some(hot) = entry.hot.load_full() {
            let now = now_ms();
            if now < hot.cached_until_ms {
                tracing::debug!(client = name, "token cache hit");
                entry.metrics.hit.increment();
                if now >= hot.refresh_at_ms {
                    let target = self.target(name, &TokenRequestParams::default())?;
                    self.refresh_ahead(&target);
                }
                return Ok(hot);
            }
        }
        let target = self.target(name, &TokenRequestParams::default())?;
        let token = self.get(&target, false, None).await?;
        match entry.hot.load_full() {
            Some(hot) if hot.token == token => Ok(hot),
            _ => Ok(Arc::new(PreparedToken::for_token(token)?)),
        }
    }

    /// A token with per-request scope/resource, or a forced renewal.
    pub async fn token_with(
        &self,
        name: &str,
        params: &TokenRequestParams,
    ) -> Result<AccessToken, TokenError> {
        let target = self.target(name, params)?;
        self.get(&target, params.force_renewal, None).await
    }

    /// After downstream rejected `rejected` with 401: a new token, unless the cached token
    /// was already renewed since (then that one).
    pub async fn renew_rejected(
        &self,
        name: &str,
        rejected: &AccessToken,
    ) -> Result<AccessToken, TokenError> {
        let target = self.target(name, &TokenRequestParams::default())?;
        self.get(&target, true, Some(rejected)).await
    }

    /// Names of the registered clients.
    pub fn client_names(&self) -> impl Iterator<Item = &str> {
        self.0.clients.keys().map(String::as_str)
    }

    /// [`Self::renew_rejected`], returning the prepared token.
    pub async fn renew_rejected_prepared(
        &self,
        name: &str,
        rejected: &AccessToken,
    ) -> Result<Arc<PreparedToken>, TokenError> {
        let token = self.renew_rejected(name, rejected).await?;
        let hot = self.0.clients.get(name).and_then(|e| e.hot.load_full());
        match hot {
            Some(hot) if hot.token == token => Ok(hot),
            _ => Ok(Arc::new(PreparedToken::for_token(token)?)),
        }
    }

    /// Remembers `entry` as the client's hot token if it is for the default key.
    fn promote(&self, target: &Target<'_>, entry: &CachedToken) {
        if target.key == target.entry.default_key
            && let Ok(prepared) = PreparedToken::new(entry)
        {
            target.entry.hot.store(Some(Arc::new(prepared)));
        }
    }

    fn target<'a>(
        &'a self,
        name: &'a str,
        params: &TokenRequestParams,
    ) -> Result<Target<'a>, TokenError> {
        let entry = self
            .0
            .clients
            .get(name)
            .ok_or_else(|| TokenError::UnknownClient(name.to_owned()))?;
        let client = &entry.definition;
        let scope = params.scope.clone().unwrap_or_else(|| client.scope.clone());
        let resource = params.resource.clone().or_else(|| client.resource.clone());
        let key = if params.scope.is_none() && params.resource.is_none() {
            entry.default_key.clone()
        } else {
            CacheKey::new(name, client, &scope, resource.as_deref())
        };
        Ok(Target {
            name,
            entry,
            client,
            scope,
            resource,
            key,
        })
    }

    fn slot(&self, key: &CacheKey) -> Arc<Slot> {
        let mut slots = self.0.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(key.clone()).or_default().clone()
    }

    async fn cached(&self, key: &CacheKey, now: u64) -> Option<CachedToken> {
        self.0.cache.get(key).await.filter(|t| t.is_fresh(now))
    }

    async fn get(
        &self,
        target: &Target<'_>,
        force: bool,
        rejected: Option<&AccessToken>,
    ) -> Result<AccessToken, TokenError> {
        let name = target.name;
        if !force {
            if let Some(entry) = self.cached(&target.key, now_ms()).await {
                tracing::debug!(client = name, "token cache hit");
                target.entry.metrics.hit.increment();
                self.promote(target, &entry);
                if entry.wants_refresh(now_ms()) {
                    self.refresh_ahead(target);
                }
                return Ok(entry.access_token);
            }
            tracing::debug!(client = name, "token cache miss");
            target.entry.metrics.miss.increment(1);
        } else {
            tracing::debug!(client = name, "token renewal forced");
        }
        let slot = self.slot(&target.key);
        if let Some(error) = slot.recent_failure(now_ms()) {
            tracing::debug!(client = name, %error, "recent token failure returned (negative cache)");
            return Err(error);
        }
        let seen = slot.generation.load(Ordering::SeqCst);
        let _turn = slot.lock.lock().await;
        let now = now_ms();
        let usable = |t: &CachedToken| rejected != Some(&t.access_token);
        if slot.generation.load(Ordering::SeqCst) != seen {
            // The request this caller queued behind has finished: share its outcome.
            if let Some(entry) = self.cached(&target.key, now).await.filter(|t| usable(t)) {
                self.promote(target, &entry);
                return Ok(entry.access_token);
            }
            if let Some(error) = slot.recent_failure(now) {
                return Err(error);
            }
        } else if !force || rejected.is_some() {
            // Double check: the cache may have been filled since the first look (by this
            // process, or by another replica through a shared cache).
            if let Some(entry) = self.cached(&target.key, now).await.filter(|t| usable(t)) {
                self.promote(target, &entry);
                return Ok(entry.access_token);
            }
        }
        // What a token stored meanwhile by another replica must be to be used instead of
        // requesting one: fresh, and for a renewal not the token being replaced.
        let replaced = match rejected {
            Some(token) => Some(token.clone()),
            None if force => self.0.cache.get(&target.key).await.map(|t| t.access_token),
            None => None,
        };
        let wanted = move |t: &CachedToken| {
            t.is_fresh(now_ms()) && replaced.as_ref() != Some(&t.access_token)
        };
        self.fetch(target, &slot, &wanted).await
    }

    /// Requests a token and stores it, unless a shared cache hands over one that another
    /// replica requested meanwhile and that `wanted` accepts. Call with the slot's lock
    /// held.
    async fn fetch(
        &self,
        target: &Target<'_>,
        slot: &Slot,
        wanted: &(dyn for<'t> Fn(&'t CachedToken) -> bool + Send + Sync),
    ) -> Result<AccessToken, TokenError> {
        let inner = &*self.0;
        let lease = match inner.cache.begin_fetch(&target.key, wanted).await {
            FetchTurn::Cached(entry) => {
                self.promote(target, &entry);
                slot.set_failure(None);
                slot.generation.fetch_add(1, Ordering::SeqCst);
                return Ok(entry.access_token);
            }
            FetchTurn::Fetch(lease) => lease,
        };
        tracing::debug!(client = target.name, "requesting token");
        let started = std::time::Instant::now();
        let result = request_token(
            &inner.http,
            target.client,
            &target.scope,
            target.resource.as_deref(),
            &inner.retry,
            target.name,
        )
        .await;
        let label = match &result {
            Ok(_) => "success",
            Err(TokenError::Rejected { .. }) => "rejected",
            Err(_) => "error",
        };
        let client = target.name.to_owned();
        metrics::counter!(crate::metrics::TOKEN_REQUESTS, "client" => client.clone(), "outcome" => label)
            .increment(1);
        metrics::histogram!(crate::metrics::TOKEN_REQUEST_DURATION, "client" => client, "outcome" => label)
            .record(started.elapsed().as_secs_f64());
        let outcome = match result {
            Ok(response) => {
                let now = now_ms();
                let lifetime = response.expires_in.unwrap_or(inner.default_lifetime);
                let entry = CachedToken::new(
                    response.access_token,
                    now,
                    lifetime,
                    inner.lifetime_buffer,
                    inner.refresh_ahead,
                );
                tracing::debug!(
                    client = target.name,
                    expires_in_secs = lifetime.as_secs(),
                    cached_for_secs = entry.ttl(now).as_secs(),
                    "token cached"
                );
                inner.cache.put(&target.key, &entry).await;
                self.promote(target, &entry);
                slot.set_failure(None);
                Ok(entry.access_token)
            }
            Err(error) => {
                tracing::warn!(client = target.name, %error, "token request failed");
                let until = now_ms() + inner.negative_ttl.as_millis() as u64;
                slot.set_failure(Some((until, error.clone())));
                Err(error)
            }
        };
        inner.cache.end_fetch(&target.key, lease).await;
        slot.generation.fetch_add(1, Ordering::SeqCst);
        outcome
    }

    /// Starts one background renewal for the key, unless one is running.
    fn refresh_ahead(&self, target: &Target<'_>) {
        let slot = self.slot(&target.key);
        if slot.refreshing.swap(true, Ordering::SeqCst) {
            return;
        }
        tracing::debug!(client = target.name, "refresh ahead started");
        target.entry.metrics.refresh_ahead.increment(1);
        let manager = self.clone();
        let name = target.name.to_owned();
        let params = TokenRequestParams {
            scope: Some(target.scope.clone()),
            resource: target.resource.clone(),
            force_renewal: false,
        };
        tokio::spawn(async move {
            if let Ok(target) = manager.target(&name, &params) {
                let _turn = slot.lock.lock().await;
                // Skip if someone renewed while this task waited for the lock.
                let renewed = manager
                    .cached(&target.key, now_ms())
                    .await
                    .is_some_and(|t| !t.wants_refresh(now_ms()));
                if !renewed {
                    let wanted =
                        |t: &CachedToken| t.is_fresh(now_ms()) && !t.wants_refresh(now_ms());
                    let _ = manager.fetch(&target, &slot, &wanted).await;
                }
            }
            slot.refreshing.store(false, Ordering::SeqCst);
        });
    }
}
