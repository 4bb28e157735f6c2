//! [`TokenManager`]: registered clients, cached tokens, one request at a time per cache
//! key.
//!
//! (The module documentation of [`crate::client`] shows it in use.)
//!
//! How a call is served:
//! 1. cache hit: the token is returned at once. In its last 10 % of cached life one
//!    background renewal starts, and callers keep getting the current token meanwhile;
//! 2. a recent failure for the key (the negative-cache window, default 5 s) is returned at
//!    once, so an outage does not turn every outbound call into a token request;
//! 3. otherwise the caller joins the key's one *flight*, or starts it: a spawned task that
//!    requests the token, stores it (or the failure), and hands the outcome to every caller
//!    waiting on it. That is the single flight: a thousand concurrent callers on a cold
//!    cache make one request. Because the flight is a task of its own, it survives its
//!    callers: a caller dropped mid-request (client disconnect, timeout) loses nothing,
//!    the request runs to its end, its token is cached, and a shared cache's fetch lock is
//!    released. Callers that share a flight share its outcome even when the issuer says
//!    `expires_in: 0`.
//!
//! A forced renewal that arrives while a flight is in progress joins it rather than
//! starting another. After a 401 from downstream, the token is renewed only if the cached
//! token is still the one that was rejected, and at most once per client per
//! [`REJECTION_RENEWAL_INTERVAL`]: a downstream that refuses every token does not turn
//! every call into a token request. Refresh ahead starts no flight while a recent failure
//! is remembered (the negative cache), so a failing issuer sees one attempt per window.
//!
//! The per-key flight map is bounded: idle keys (no flight, no caller, no remembered
//! failure) are evicted once it grows past [`MAX_IDLE_SLOTS`], so per-request scopes
//! cannot grow it without bound.
//!
//! The hot path: each client keeps its default-scope token, with a ready-made
//! `Authorization` header value, behind an `ArcSwap` in the [`ManagedClient`] handle
//! itself. A warm `token()` is an atomic load and a clock read (no map lookup); the cache backend is consulted only when
//! that token is missing or stale.
//!
//! The flight is hand-made from a tokio task and a `watch` channel. moka's `get_with`
//! coalesces loads but runs the load in the first caller's future (not cancel-safe) and
//! cannot express "join the in-flight renewal" or "renew unless already renewed".

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::sync::watch;
use tracing::Instrument as _;

use super::credentials::{AccessToken, ClientCredentialsClient};
use super::error::TokenError;
use super::token_cache::{CacheKey, CachedToken, FetchBudget, FetchTurn, TokenCache};
use super::token_endpoint::{Grant, RetryPolicy, request_token};
use crate::clock::{Clock, SystemClock};
use crate::issuer_http;
use crate::metrics::HotCounter;
use crate::scope::ScopeSet;

/// Default lifetime buffer: tokens are used until 60 s before they expire.
pub(crate) const DEFAULT_LIFETIME_BUFFER: Duration = Duration::from_secs(60);

/// After a downstream 401, a client's token is renewed at most once per this interval.
pub const REJECTION_RENEWAL_INTERVAL: Duration = Duration::from_secs(30);

/// Idle per-key flight slots kept before the map is swept.
pub(crate) const MAX_IDLE_SLOTS: usize = 1024;

mod builder;
pub use builder::{BuildError, TokenManagerBuilder};

mod prepared;
pub(crate) use prepared::PreparedToken;

mod params;
pub use params::TokenRequestParams;

mod exchange;
pub(crate) use exchange::ExchangeTarget;

mod renewal;
pub use exchange::{TokenExchange, TransactionTokenRequest};

/// A registered client: its name, definition, default cache key and hot token.
struct ClientEntry {
    name: String,
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

mod flight;
use flight::{Flight, Outcome, Slot, Slots, Want};

struct Inner {
    /// The names registered (each once).
    clients: Mutex<BTreeSet<String>>,
    allow_insecure_http: bool,
    cache: Arc<dyn TokenCache>,
    /// The cache's counter of the fleet's refused tokens, if it hears of them (a shared
    /// cache): a hot token is looked up among the refused only when it moved.
    rejections: Option<Arc<AtomicU64>>,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    slots: Mutex<Slots>,
    lifetime_buffer: Duration,
    refresh_ahead: f64,
    negative_ttl: Duration,
    retry: RetryPolicy,
    default_lifetime: Duration,
    /// Flights started (tests assert single flight without counting HTTP).
    flights_started: AtomicUsize,
}

/// Gets and caches client-credentials tokens for its registered clients. Cheap to clone.
///
/// [`register`](Self::register) a client to get its [`ManagedClient`] handle; the handle
/// gets the tokens and feeds the middleware.
#[derive(Clone)]
pub struct TokenManager(Arc<Inner>);

impl std::fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = self.0.clients.lock().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("TokenManager")
            .field("clients", &*names)
            .finish_non_exhaustive()
    }
}

/// A client registered with a [`TokenManager`]: gets its tokens, from the cache when it
/// can. Cheap to clone. Only [`TokenManager::register`] makes one, so a handle always
/// stands for a client that exists: nothing is looked up by name at run time.
#[derive(Clone)]
pub struct ManagedClient {
    manager: TokenManager,
    entry: Arc<ClientEntry>,
}

impl std::fmt::Debug for ManagedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedClient")
            .field("name", &self.entry.name)
            .finish_non_exhaustive()
    }
}

impl ManagedClient {
    /// The name it was registered under (the `client` label of the metrics).
    pub fn name(&self) -> &str {
        &self.entry.name
    }

    /// The manager it belongs to.
    pub fn manager(&self) -> &TokenManager {
        &self.manager
    }

    /// A token for the client's own scope and resource, from the cache if possible.
    ///
    /// For a client with a DPoP key the token is usually DPoP-bound: useless without a
    /// proof per request, which only [`ClientCredentialsMiddleware`](super::ClientCredentialsMiddleware)
    /// makes. Send such a client's requests through the middleware.
    pub async fn token(&self) -> Result<AccessToken, TokenError> {
        Ok(self.prepared().await?.token.clone())
    }

    /// A token with per-request scope, resource or extra parameters, or a forced renewal.
    pub async fn token_with(&self, params: &TokenRequestParams) -> Result<AccessToken, TokenError> {
        params.check()?;
        let target = TokenManager::target(&self.entry, params);
        Ok(self
            .manager
            .get(&target, params.force_renewal, None)
            .await?
            .access_token)
    }

    /// After downstream rejected `rejected` with 401: the token to retry with, or `None`
    /// when there is none worth a retry.
    /// - If the cached token was renewed since `rejected` was taken, that one (no request).
    /// - Otherwise a new token, unless this client already renewed after a 401 within
    ///   30 s (`REJECTION_RENEWAL_INTERVAL`): then `None`, and the 401 stands. A downstream
    ///   that refuses every token costs one token request per client per interval.
    pub async fn renew_rejected(
        &self,
        rejected: &AccessToken,
    ) -> Result<Option<AccessToken>, TokenError> {
        Ok(self
            .manager
            .renew_rejected(&self.entry, &TokenRequestParams::default(), rejected)
            .await?
            .map(|prepared| prepared.token.clone()))
    }

    /// The token with its ready-made `Authorization` value (what the middleware sends).
    /// Warm, this is an atomic load and a clock read.
    pub(crate) async fn prepared(&self) -> Result<Arc<PreparedToken>, TokenError> {
        self.manager.prepared(&self.entry).await
    }

    /// [`Self::prepared`] for per-request parameters (the middleware's derived ones): the
    /// hot token when they ask for nothing else.
    pub(crate) async fn prepared_with(
        &self,
        params: &TokenRequestParams,
    ) -> Result<Arc<PreparedToken>, TokenError> {
        if params.is_default() {
            return self.prepared().await;
        }
        params.check()?;
        let target = TokenManager::target(&self.entry, params);
        let token = self
            .manager
            .get(&target, params.force_renewal, None)
            .await?;
        Ok(Arc::new(PreparedToken::new(&token)?))
    }

    /// [`Self::renew_rejected`] for the token of `params`, returning the prepared token.
    pub(crate) async fn renew_rejected_prepared(
        &self,
        params: &TokenRequestParams,
        rejected: &AccessToken,
    ) -> Result<Option<Arc<PreparedToken>>, TokenError> {
        self.manager
            .renew_rejected(&self.entry, params, rejected)
            .await
    }

    /// The client's DPoP key, if its tokens are bound to one.
    pub(crate) fn dpop(&self) -> Option<&super::dpop::DpopKey> {
        self.entry.definition.dpop.as_ref()
    }

    /// Now, by the manager's clock (a DPoP proof's `iat`).
    pub(crate) fn now_ms(&self) -> u64 {
        self.manager.0.clock.now_unix_ms()
    }
}

/// What a request for a token is for.
struct Target<'a> {
    entry: &'a Arc<ClientEntry>,
    scope: ScopeSet,
    resource: Option<String>,
    /// The client's extra parameters with the request's.
    extra: Cow<'a, BTreeMap<String, String>>,
    key: CacheKey,
    /// A token exchange (RFC 8693) instead of the client-credentials grant.
    exchange: Option<Arc<ExchangeTarget>>,
}

impl TokenManager {
    /// A builder with the defaults (in-memory cache, 60 s buffer, refresh ahead at 10 %,
    /// 5 s negative cache, default retry policy, system clock).
    pub fn builder() -> TokenManagerBuilder {
        TokenManagerBuilder {
            cache: None,
            clock: Arc::new(SystemClock),
            lifetime_buffer: DEFAULT_LIFETIME_BUFFER,
            refresh_ahead: 0.1,
            negative_ttl: Duration::from_secs(5),
            retry: RetryPolicy::default(),
            default_lifetime: Duration::from_secs(300),
            allow_insecure_http: false,
        }
    }

    fn now(&self) -> u64 {
        self.0.clock.now_unix_ms()
    }

    /// Registers `client` under `name` and returns its handle. Fails if the name is taken
    /// or the token endpoint breaks the transport policy (not https and not loopback,
    /// without [`TokenManagerBuilder::allow_insecure_http`]).
    pub fn register(
        &self,
        name: impl Into<String>,
        client: ClientCredentialsClient,
    ) -> Result<ManagedClient, BuildError> {
        let name = name.into();
        issuer_http::check_url(&client.token_endpoint, self.0.allow_insecure_http).map_err(
            |source| BuildError::TokenEndpoint {
                client: name.clone(),
                source,
            },
        )?;
        super::token_endpoint::check_extra_params(&client.extra_params).map_err(|reason| {
            BuildError::ExtraParameters {
                client: name.clone(),
                reason,
            }
        })?;
        if !self
            .0
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.clone())
        {
            return Err(BuildError::DuplicateClient(name));
        }
        let default_key = CacheKey::new(
            &name,
            &client,
            &client.scope,
            client.resource.as_deref(),
            &client.extra_params,
        );
        let entry = ClientEntry {
            metrics: ClientMetrics::new(&name),
            name,
            definition: client,
            default_key,
            hot: ArcSwapOption::empty(),
        };
        Ok(ManagedClient {
            manager: self.clone(),
            entry: Arc::new(entry),
        })
    }

    /// See [`ManagedClient::prepared`].
    async fn prepared(&self, entry: &Arc<ClientEntry>) -> Result<Arc<PreparedToken>, TokenError> {
        if let Some(hot) = entry.hot.load_full() {
            let now = self.now();
            if now < hot.cached_until_ms && self.not_refused(&hot) {
                tracing::debug!(client = %entry.name, "token cache hit");
                crate::trace::token_hit(&entry.name);
                entry.metrics.hit.increment();
                if now >= hot.refresh_at_ms {
                    let target = Self::target(entry, &TokenRequestParams::default());
                    self.refresh_ahead(&target);
                }
                return Ok(hot);
            }
        }
        let target = Self::target(entry, &TokenRequestParams::default());
        let token = self.get(&target, false, None).await?;
        match entry.hot.load_full() {
            Some(hot) if hot.token == token.access_token => Ok(hot),
            _ => Ok(Arc::new(PreparedToken::new(&token)?)),
        }
    }

    /// Whether no process of the fleet has reported `hot` refused (a downstream 401). Free
    /// (one atomic load) unless the fleet's rejection counter moved since it was checked.
    fn not_refused(&self, hot: &PreparedToken) -> bool {
        let Some(counter) = &self.0.rejections else {
            return true;
        };
        let now = counter.load(Ordering::Relaxed);
        if hot.checked_rejections.load(Ordering::Relaxed) == now {
            return true;
        }
        if self.0.cache.is_rejected(&hot.token) {
            return false;
        }
        hot.checked_rejections.store(now, Ordering::Relaxed);
        true
    }

    /// Remembers `entry` as the client's hot token if it is for the default key.
    fn promote(&self, target: &Target<'_>, entry: &CachedToken) {
        if target.key == target.entry.default_key
            && let Ok(prepared) = PreparedToken::new(entry)
        {
            target.entry.hot.store(Some(Arc::new(prepared)));
        }
    }

    fn target<'a>(entry: &'a Arc<ClientEntry>, params: &TokenRequestParams) -> Target<'a> {
        let client = &entry.definition;
        let scope = params.scope.clone().unwrap_or_else(|| client.scope.clone());
        let resource = params.resource.clone().or_else(|| client.resource.clone());
        let extra = params.merged_extra(&client.extra_params);
        let key = if params.scope.is_none() && params.resource.is_none() && params.extra.is_empty()
        {
            entry.default_key.clone()
        } else {
            CacheKey::new(&entry.name, client, &scope, resource.as_deref(), &extra)
        };
        Target {
            entry,
            scope,
            resource,
            extra,
            key,
            exchange: None,
        }
    }

    /// The key's slot, created if needed (see [`Slots::slot`]).
    fn slot(&self, key: &CacheKey) -> Arc<Slot> {
        let now = self.now();
        let mut slots = self.0.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.slot(key, now)
    }

    async fn cached(&self, key: &CacheKey, now: u64) -> Option<CachedToken> {
        self.0.cache.get(key).await.filter(|t| t.is_fresh(now))
    }

    /// A token from the cache, or from the key's flight: an `oauth.token` span.
    async fn get(
        &self,
        target: &Target<'_>,
        force: bool,
        rejected: Option<&AccessToken>,
    ) -> Result<CachedToken, TokenError> {
        let span = crate::trace::token(&target.entry.name);
        self.get_traced(target, force, rejected, &span)
            .instrument(span.clone())
            .await
    }

    async fn get_traced(
        &self,
        target: &Target<'_>,
        force: bool,
        rejected: Option<&AccessToken>,
        span: &tracing::Span,
    ) -> Result<CachedToken, TokenError> {
        let name = target.entry.name.as_str();
        if !force {
            let now = self.now();
            if let Some(entry) = self.cached(&target.key, now).await {
                crate::trace::cache(span, "hit");
                tracing::debug!(client = name, "token cache hit");
                target.entry.metrics.hit.increment();
                self.promote(target, &entry);
                if entry.wants_refresh(now) {
                    self.refresh_ahead(target);
                }
                return Ok(entry);
            }
            tracing::debug!(client = name, "token cache miss");
            target.entry.metrics.miss.increment(1);
        } else {
            tracing::debug!(client = name, "token renewal forced");
        }
        let slot = self.slot(&target.key);
        if let Some(error) = slot.recent_failure(self.now()) {
            crate::trace::cache(span, "negative");
            tracing::debug!(client = name, %error, "recent token failure returned (negative cache)");
            return Err(error);
        }
        crate::trace::cache(span, if force { "renewal" } else { "miss" });
        let want = if force {
            Want::Replace(rejected.cloned())
        } else {
            Want::Fresh
        };
        let (flight, _) = self.join_or_start(target, &slot, want.clone());
        let token = flight.wait().await?;
        // A renewal that joined a flight which came back with the very token being
        // replaced (it was a plain cache fill) starts its own, once.
        if let Some(rejected) = rejected
            && token.access_token == *rejected
        {
            let (flight, _) = self.join_or_start(target, &slot, want);
            return flight.wait().await;
        }
        Ok(token)
    }

    /// The key's flight in progress, or a new one for `want` (`true`: started here).
    fn join_or_start(&self, target: &Target<'_>, slot: &Arc<Slot>, want: Want) -> (Flight, bool) {
        let mut current = slot.flight();
        if let Some(flight) = &*current {
            return (flight.clone(), false);
        }
        (self.start(&mut current, target, slot, want), true)
    }

    /// Starts a flight for `want` into the slot's (locked, empty) flight place.
    fn start(
        &self,
        current: &mut Option<Flight>,
        target: &Target<'_>,
        slot: &Arc<Slot>,
        want: Want,
    ) -> Flight {
        let (sender, receiver) = watch::channel(None);
        let flight = Flight { outcome: receiver };
        *current = Some(flight.clone());
        self.0.flights_started.fetch_add(1, Ordering::Relaxed);
        let manager = self.clone();
        let slot = slot.clone();
        let entry = target.entry.clone();
        let params = TokenRequestParams {
            scope: Some(target.scope.clone()),
            resource: target.resource.clone(),
            extra: target.extra.clone().into_owned(),
            force_renewal: false,
        };
        let (key, exchange, resource) = (
            target.key.clone(),
            target.exchange.clone(),
            target.resource.clone(),
        );
        // In the trace, under the caller that started it.
        let span = crate::trace::token_request(
            &target.entry.name,
            if target.exchange.is_some() {
                super::token_endpoint::TOKEN_EXCHANGE_GRANT
            } else {
                "client_credentials"
            },
        );
        // The flight runs on its own: no caller's cancellation can cut it short. It takes
        // the slot's lock only after this caller has released it.
        tokio::spawn(crate::trace::in_current_context(
            async move {
                let mut target = Self::target(&entry, &params);
                // An exchange's key, grant and resource are its own (the client's resource
                // is not an exchange's default).
                target.key = key;
                target.exchange = exchange;
                target.resource = resource;
                let outcome = manager.fly(&target, &slot, want).await;
                // Cache and failure are recorded before the slot is freed, so a caller that
                // arrives next finds them instead of starting another flight.
                *slot.flight() = None;
                let _ = sender.send(Some(outcome));
            }
            .instrument(span),
        ));
        flight
    }

    /// The body of a flight: look again, then request (or take another replica's token),
    /// store, and record success or failure.
    async fn fly(&self, target: &Target<'_>, slot: &Slot, want: Want) -> Outcome {
        let inner = &*self.0;
        let replaced = match &want {
            Want::Replace(Some(token)) => Some(token.clone()),
            Want::Replace(None) => inner.cache.get(&target.key).await.map(|t| t.access_token),
            Want::Fresh | Want::Renewed => None,
        };
        let renewed = matches!(want, Want::Renewed);
        let clock = inner.clock.clone();
        let cache = inner.cache.clone();
        let accept = move |t: &CachedToken| {
            let now = clock.now_unix_ms();
            t.is_fresh(now)
                && replaced.as_ref() != Some(&t.access_token)
                && !(renewed && t.wants_refresh(now))
                && !cache.is_rejected(&t.access_token)
        };
        // Look again: the cache may have been filled since the caller's look (by this
        // process, or by another replica through a shared cache).
        if let Some(entry) = inner.cache.get(&target.key).await
            && accept(&entry)
        {
            crate::trace::outcome("shared_cache");
            self.promote(target, &entry);
            return Ok(entry);
        }
        // The client's own policy if it has one, else the manager's.
        let retry = target.entry.definition.retry.unwrap_or(inner.retry);
        let budget = FetchBudget {
            max_wait: retry.total_budget,
        };
        let started = tokio::time::Instant::now();
        let lease = match inner.cache.begin_fetch(&target.key, &accept, budget).await {
            FetchTurn::Cached(entry) => {
                crate::trace::outcome("shared_cache");
                self.promote(target, &entry);
                slot.set_failure(None);
                return Ok(entry);
            }
            FetchTurn::Fetch(lease) => lease,
        };
        tracing::debug!(client = %target.entry.name, "requesting token");
        let client = &target.entry.definition;
        // What waiting for another replica used is taken from this request's budget; with
        // none left, no request is sent.
        let mut policy = retry;
        policy.total_budget = policy.total_budget.saturating_sub(started.elapsed());
        let result = if policy.total_budget.is_zero() {
            Err(TokenError::Timeout(retry.total_budget))
        } else {
            match &target.exchange {
                None => {
                    request_token(
                        &inner.http,
                        client,
                        Grant::ClientCredentials {
                            scope: &target.scope,
                            resource: target.resource.as_deref(),
                            extra: &target.extra,
                        },
                        &policy,
                        &target.entry.name,
                        inner.clock.as_ref(),
                    )
                    .await
                }
                Some(exchange) => self.exchange_token(target, exchange, &policy).await,
            }
        };
        let label = match &result {
            Ok(_) => "success",
            Err(TokenError::Rejected { .. }) => "rejected",
            Err(_) => "error",
        };
        crate::trace::outcome(label);
        let elapsed = started.elapsed();
        let name = target.entry.name.to_owned();
        metrics::counter!(crate::metrics::TOKEN_REQUESTS, "client" => name.clone(), "outcome" => label)
            .increment(1);
        metrics::histogram!(crate::metrics::TOKEN_REQUEST_DURATION, "client" => name, "outcome" => label)
            .record(elapsed.as_secs_f64());
        let outcome = match result {
            Ok(response) => {
                let now = self.now();
                let lifetime = response.expires_in.unwrap_or(inner.default_lifetime);
                let entry = CachedToken::new(
                    response.access_token,
                    now,
                    lifetime,
                    inner.lifetime_buffer,
                    inner.refresh_ahead,
                )
                .with_token_type(response.token_type);
                tracing::debug!(
                    client = %target.entry.name,
                    expires_in_secs = lifetime.as_secs(),
                    cached_for_secs = entry.ttl(now).as_secs(),
                    "token cached"
                );
                inner.cache.put(&target.key, &entry).await;
                self.promote(target, &entry);
                slot.set_failure(None);
                Ok(entry)
            }
            Err(error) => {
                tracing::warn!(client = %target.entry.name, %error, "token request failed");
                let ttl = u64::try_from(inner.negative_ttl.as_millis()).unwrap_or(u64::MAX);
                slot.set_failure(Some((self.now().saturating_add(ttl), error.clone())));
                Err(error)
            }
        };
        inner.cache.end_fetch(&target.key, lease).await;
        outcome
    }

    /// Starts one background renewal for the key, unless a flight is in progress or a
    /// recent failure is remembered (then the next attempt waits for the negative cache
    /// to lapse: one attempt per window, not one per call).
    fn refresh_ahead(&self, target: &Target<'_>) {
        let slot = self.slot(&target.key);
        if slot.recent_failure(self.now()).is_some() {
            return;
        }
        let (_, started) = self.join_or_start(target, &slot, Want::Renewed);
        if started {
            tracing::debug!(client = %target.entry.name, "refresh ahead started");
            target.entry.metrics.refresh_ahead.increment(1);
        }
    }

    /// Flights started since the manager was built: one per token request that was
    /// needed (cache fills, renewals, refreshes ahead), however many callers shared it.
    /// (Tests; feature `internals`.)
    #[cfg(any(test, feature = "internals"))]
    pub fn flights_started(&self) -> usize {
        self.0.flights_started.load(Ordering::Relaxed)
    }

    /// Flights in progress now: token requests under way (or waiting for another
    /// replica's token). Zero once every flight has stored its outcome and freed its key,
    /// which is what a test waits for before it moves a manual clock. (Tests; feature
    /// `internals`.)
    #[cfg(any(test, feature = "internals"))]
    pub fn flights_in_progress(&self) -> usize {
        let slots = self.0.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots
            .map
            .values()
            .filter(|slot| slot.flight().is_some())
            .count()
    }

    #[cfg(test)]
    fn idle(&self) -> bool {
        self.flights_in_progress() == 0
    }

    #[cfg(test)]
    fn slot_count(&self) -> usize {
        self.0
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .len()
    }
}

#[cfg(test)]
mod tests;
