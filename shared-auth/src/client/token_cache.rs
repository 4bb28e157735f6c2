//! The token cache: keys, entries, and the backend trait.
//!
//! A [`CacheKey`] covers everything that changes what the issuer grants: client name,
//! effective scope, resource and extra parameters, so different scopes never share a token.
//! A [`CachedToken`] carries wall-clock times (Unix milliseconds) rather than `Instant`s, so
//! an entry means the same thing in another process. That is what a shared backend (Redis)
//! needs; entries serialize with [`CachedToken::to_bytes`].
//!
//! Lifetime rules (Duende's, plus refresh-ahead):
//! - a token is cached for `expires_in - buffer` (default buffer 60 s); a token shorter
//!   than twice the buffer is cached for half its life;
//! - in the last 10 % of that cached life the next caller still gets it, and one background
//!   renewal starts (refresh ahead).

// The wire format, the key's text and parts of the lock protocol serve the shared (Redis)
// cache or the benches (feature internals); without them the in-memory cache uses the rest.
#![cfg_attr(not(feature = "internals"), allow(dead_code))]

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use serde::{Deserialize, Serialize};

use super::credentials::{AccessToken, ClientCredentialsClient};
use super::token_endpoint::TokenType;
use crate::clock::{Clock, SystemClock};
use crate::scope::ScopeSet;

/// Identifies one cached token: client name, the client's identity (token endpoint and
/// client id), scope, resource, extra parameters.
#[derive(Clone)]
pub struct CacheKey {
    /// The fields, JSON-encoded: unambiguous whatever characters they hold.
    encoded: Arc<str>,
    name: Arc<str>,
}

impl PartialEq for CacheKey {
    fn eq(&self, other: &Self) -> bool {
        self.encoded == other.encoded
    }
}

impl Eq for CacheKey {}

impl std::hash::Hash for CacheKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.encoded.hash(state);
    }
}

impl CacheKey {
    /// Builds the key. The fields are encoded as one JSON array, whose string escaping
    /// makes the encoding injective: no choice of names, scopes, resources or parameters
    /// can make two different clients' keys equal (a separator character would need
    /// escaping that nothing enforced). The client's identity is part of it so that two
    /// deployments that name their clients alike never share a token through a shared
    /// cache.
    pub fn new(
        client_name: &str,
        client: &ClientCredentialsClient,
        scope: &ScopeSet,
        resource: Option<&str>,
        extra_params: &std::collections::BTreeMap<String, String>,
    ) -> Self {
        let fields = (
            client_name,
            &client.token_endpoint,
            client.client_id.as_str(),
            scope.to_string(),
            resource,
            // The client's own with a request's (a tenant's): two tenants' tokens differ.
            extra_params,
            // A DPoP-bound token is only of use with its key (RFC 9449): the key's
            // thumbprint keeps two keys' tokens apart, in memory and in a shared cache.
            client.dpop.as_ref().map(|k| k.thumbprint()),
            // So is a certificate-bound one with its certificate (RFC 8705).
            certificate_identity(client),
        );
        // Serializing strings, an option and a string map cannot fail.
        let encoded = serde_json::to_string(&fields).unwrap_or_default();
        CacheKey {
            encoded: encoded.into(),
            name: client_name.into(),
        }
    }

    /// The key of a token exchange (RFC 8693): the fields of [`CacheKey::new`] and the
    /// exchange's own, the SHA-256 of the subject token (base64url) and whether the
    /// client's token went as the actor. A longer array than `new`'s, so no exchange key
    /// equals a client-credentials key.
    pub(crate) fn exchange(
        client_name: &str,
        client: &ClientCredentialsClient,
        scope: &ScopeSet,
        resource: Option<&str>,
        extra_params: &std::collections::BTreeMap<String, String>,
        subject_sha256: &str,
        actor_token: bool,
    ) -> Self {
        let fields = (
            client_name,
            &client.token_endpoint,
            client.client_id.as_str(),
            scope.to_string(),
            resource,
            extra_params,
            client.dpop.as_ref().map(|k| k.thumbprint()),
            certificate_identity(client),
            (
                "urn:ietf:params:oauth:grant-type:token-exchange",
                actor_token,
            ),
        );
        // The subject's hash outside the JSON: were the encoding ever to fail, the key
        // would still be the subject's own, never one shared by every subject.
        let encoded = format!(
            "{}\n{subject_sha256}",
            serde_json::to_string(&fields).unwrap_or_default()
        );
        CacheKey {
            encoded: encoded.into(),
            name: client_name.into(),
        }
    }

    /// The key as a string (contains no secret).
    pub fn as_str(&self) -> &str {
        &self.encoded
    }

    /// The client name part.
    pub fn client_name(&self) -> &str {
        &self.name
    }
}

/// The client certificate's identity, for a client that authenticates with one.
fn certificate_identity(client: &ClientCredentialsClient) -> Option<&str> {
    match &client.credential {
        crate::endpoint_auth::ClientCredential::TlsClientCertificate(files) => {
            Some(files.identity())
        }
        _ => None,
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.encoded, f)
    }
}

/// Unix time in milliseconds, from the system clock (the shared backend: its entries must
/// mean the same in every process, so it reads the wall clock).
#[cfg(feature = "redis")]
pub(crate) fn now_ms() -> u64 {
    crate::clock::system_now_ms()
}

/// A cached access token with its timing.
#[derive(Clone, PartialEq, Eq)]
pub struct CachedToken {
    /// The token.
    pub access_token: AccessToken,
    /// When the issuer said it expires (Unix ms).
    pub expires_at_ms: u64,
    /// Until when it is served from the cache (Unix ms).
    pub cached_until_ms: u64,
    /// From when a background renewal should start (Unix ms).
    pub refresh_at_ms: u64,
    /// How the token is presented.
    pub token_type: TokenType,
}

impl fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedToken")
            .field("access_token", &self.access_token)
            .field("expires_at_ms", &self.expires_at_ms)
            .field("cached_until_ms", &self.cached_until_ms)
            .field("refresh_at_ms", &self.refresh_at_ms)
            .field("token_type", &self.token_type)
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
struct Wire<'a> {
    t: &'a str,
    e: u64,
    c: u64,
    r: u64,
    /// Absent in entries written before DPoP: Bearer.
    #[serde(default)]
    k: TokenType,
}

impl CachedToken {
    /// Applies the lifetime rules to a token obtained at `now_ms` that lives `expires_in`.
    pub fn new(
        access_token: AccessToken,
        now_ms: u64,
        expires_in: Duration,
        buffer: Duration,
        refresh_ahead: f64,
    ) -> Self {
        // Saturating everywhere: the lifetime comes from the issuer.
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let life = ms(expires_in);
        let buffer = ms(buffer);
        let cached_for = if life >= buffer.saturating_mul(2) {
            life - buffer
        } else {
            life / 2
        };
        let refresh_after = (cached_for as f64 * (1.0 - refresh_ahead.clamp(0.0, 1.0))) as u64;
        CachedToken {
            access_token,
            expires_at_ms: now_ms.saturating_add(life),
            cached_until_ms: now_ms.saturating_add(cached_for),
            refresh_at_ms: now_ms.saturating_add(refresh_after),
            token_type: TokenType::Bearer,
        }
    }

    /// The same entry, presented as `token_type`.
    pub fn with_token_type(mut self, token_type: TokenType) -> Self {
        self.token_type = token_type;
        self
    }

    /// Whether it may still be served.
    pub fn is_fresh(&self, now_ms: u64) -> bool {
        now_ms < self.cached_until_ms
    }

    /// Whether a background renewal should start.
    pub fn wants_refresh(&self, now_ms: u64) -> bool {
        now_ms >= self.refresh_at_ms
    }

    /// Remaining cached life, the TTL for a backend.
    pub fn ttl(&self, now_ms: u64) -> Duration {
        Duration::from_millis(self.cached_until_ms.saturating_sub(now_ms))
    }

    /// Serializes for a shared backend. The bytes contain the token: store them as a
    /// secret (a backend should encrypt them).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&Wire {
            t: self.access_token.secret(),
            e: self.expires_at_ms,
            c: self.cached_until_ms,
            r: self.refresh_at_ms,
            k: self.token_type,
        })
        .unwrap_or_default()
    }

    /// Parses what [`Self::to_bytes`] wrote; `None` for anything else.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let w: Wire<'_> = serde_json::from_slice(bytes).ok()?;
        (!w.t.is_empty() && w.r <= w.c && w.c <= w.e).then(|| CachedToken {
            access_token: AccessToken::new(w.t),
            expires_at_ms: w.e,
            cached_until_ms: w.c,
            refresh_at_ms: w.r,
            token_type: w.k,
        })
    }
}

/// A place to keep tokens. The in-memory [`InMemoryTokenCache`] is the default; a shared
/// backend (Redis) lets replicas share one token. Implementations expire entries at
/// [`CachedToken::cached_until_ms`] and must never fail a caller: a backend error is a miss.
#[async_trait::async_trait]
pub trait TokenCache: Send + Sync + 'static {
    /// The entry for `key`, if any.
    async fn get(&self, key: &CacheKey) -> Option<CachedToken>;
    /// Stores `token` for `key` until its `cached_until_ms`.
    async fn put(&self, key: &CacheKey, token: &CachedToken);
    /// Removes the entry for `key`.
    async fn remove(&self, key: &CacheKey);

    /// Called by the process's one in-flight request for `key`, just before it asks the
    /// issuer. A shared backend uses it for single flight across processes: it either
    /// grants this process the request ([`FetchTurn::Fetch`], holding a lease that
    /// [`end_fetch`](Self::end_fetch) releases) or, after waiting for the process that
    /// holds the lease, answers with the token it stored, if `wanted` accepts it. `budget`
    /// bounds both: how long a lease must outlive the holder's work, and how long this
    /// process may wait. The default (one process) grants at once.
    async fn begin_fetch(
        &self,
        key: &CacheKey,
        wanted: &(dyn for<'t> Fn(&'t CachedToken) -> bool + Send + Sync),
        budget: FetchBudget,
    ) -> FetchTurn {
        let _ = (key, wanted, budget);
        FetchTurn::Fetch(FetchLease::none())
    }

    /// Releases what [`begin_fetch`](Self::begin_fetch) granted, after the request (and
    /// the `put` of its token, if it succeeded).
    async fn end_fetch(&self, key: &CacheKey, lease: FetchLease) {
        let _ = (key, lease);
    }

    /// A downstream refused `token` (a 401 asking for a new one): claims the renewal of
    /// `key` for the whole fleet, at most one per `interval`, and tells the other
    /// processes that `token` is refused. `true`: this process renews. `false`: another
    /// process claimed it within the interval (its token is, or soon will be, in the
    /// cache). The default (one process) always answers `true`: the manager's own bound
    /// per key applies.
    async fn claim_rejection(
        &self,
        key: &CacheKey,
        token: &AccessToken,
        interval: Duration,
    ) -> bool {
        let _ = (key, token, interval);
        true
    }

    /// A counter that moves whenever the fleet reports a token refused (`None`: this cache
    /// never hears of other processes' refusals). Read on the warm path, once per call: a
    /// hot token is checked with [`is_rejected`](Self::is_rejected) only when it moved.
    fn rejections(&self) -> Option<Arc<std::sync::atomic::AtomicU64>> {
        None
    }

    /// Whether any process of the fleet reported `token` refused (lately).
    fn is_rejected(&self, token: &AccessToken) -> bool {
        let _ = token;
        false
    }
}

/// Time limits of a cross-process fetch, from the token manager's retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchBudget {
    /// How long this process may wait for another's token: its own whole budget. A wait
    /// never outlasts the caller's budget; what it used is taken from the request that
    /// may follow.
    pub max_wait: Duration,
}

/// The answer to [`TokenCache::begin_fetch`].
#[derive(Debug)]
pub enum FetchTurn {
    /// Request the token; give the lease back through [`TokenCache::end_fetch`].
    Fetch(FetchLease),
    /// Another process requested it meanwhile: this is its token.
    Cached(CachedToken),
}

/// Proof of a cross-process fetch lock (its random owner value), or none. A backend may
/// attach a keep-alive task (it extends the lock while the holder works); dropping the
/// lease stops it, so a holder that dies stops extending its lock, which then expires.
#[derive(Debug, Default)]
pub struct FetchLease {
    owner: Option<String>,
    _keep_alive: Option<AbortOnDrop>,
}

#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl FetchLease {
    /// No lock is held (a single-process backend, or the shared one was unreachable).
    pub fn none() -> Self {
        FetchLease::default()
    }

    /// A lock held under `owner`.
    pub fn held(owner: String) -> Self {
        FetchLease {
            owner: Some(owner),
            _keep_alive: None,
        }
    }

    /// A lock held under `owner`, kept alive by `task` until the lease is dropped.
    pub fn held_with_keep_alive(owner: String, task: tokio::task::JoinHandle<()>) -> Self {
        FetchLease {
            owner: Some(owner),
            _keep_alive: Some(AbortOnDrop(task)),
        }
    }

    /// The owner value, if a lock is held.
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }
}

/// Expires moka's copy when the entry's cached life ends, on the cache's clock. Reads go
/// through `is_fresh` on that clock as well, so the expiry only frees memory.
struct UntilCachedUntil(Arc<dyn Clock>);

impl moka::Expiry<CacheKey, CachedToken> for UntilCachedUntil {
    fn expire_after_create(
        &self,
        _key: &CacheKey,
        value: &CachedToken,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.ttl(self.0.now_unix_ms()))
    }

    fn expire_after_update(
        &self,
        _key: &CacheKey,
        value: &CachedToken,
        _updated_at: std::time::Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl(self.0.now_unix_ms()))
    }
}

/// The default backend: an in-process moka cache, bounded in size, with per-entry expiry.
#[derive(Clone)]
pub struct InMemoryTokenCache {
    cache: Cache<CacheKey, CachedToken>,
}

impl InMemoryTokenCache {
    /// A cache holding at most `capacity` tokens.
    pub fn new(capacity: u64) -> Self {
        Self::with_clock(capacity, Arc::new(SystemClock))
    }

    /// A cache holding at most `capacity` tokens, reading time from `clock`.
    pub fn with_clock(capacity: u64, clock: Arc<dyn Clock>) -> Self {
        InMemoryTokenCache {
            cache: Cache::builder()
                .max_capacity(capacity)
                .expire_after(UntilCachedUntil(clock))
                .build(),
        }
    }
}

impl Default for InMemoryTokenCache {
    fn default() -> Self {
        Self::new(10_000)
    }
}

#[async_trait::async_trait]
impl TokenCache for InMemoryTokenCache {
    async fn get(&self, key: &CacheKey) -> Option<CachedToken> {
        self.cache.get(key)
    }
    async fn put(&self, key: &CacheKey, token: &CachedToken) {
        self.cache.insert(key.clone(), token.clone());
    }
    async fn remove(&self, key: &CacheKey) {
        self.cache.invalidate(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn a_dpop_key_is_part_of_the_key_and_the_token_type_survives_the_wire() {
        use crate::client::{ClientId, ClientSecret, SigningKey};
        let client = ClientCredentialsClient::new(
            "https://issuer/token",
            ClientId::new("bff"),
            ClientSecret::new("s"),
        );
        let scope = ScopeSet::new();
        let bearer = CacheKey::new("api", &client, &scope, None, &client.extra_params);
        let one = client
            .clone()
            .with_dpop(SigningKey::generate_es256().unwrap());
        let other = client
            .clone()
            .with_dpop(SigningKey::generate_es256().unwrap());
        let key_one = CacheKey::new("api", &one, &scope, None, &one.extra_params);
        assert_ne!(bearer, key_one);
        assert_ne!(
            key_one,
            CacheKey::new("api", &other, &scope, None, &other.extra_params)
        );
        assert_eq!(
            key_one,
            CacheKey::new("api", &one, &scope, None, &one.extra_params)
        );

        let entry = CachedToken::new(AccessToken::new("t"), 0, Duration::from_secs(600), MIN, 0.1)
            .with_token_type(TokenType::DPoP);
        let back = CachedToken::from_bytes(&entry.to_bytes()).unwrap();
        assert_eq!(back.token_type, TokenType::DPoP);
        // An entry written before DPoP existed reads as Bearer.
        let old = br#"{"t":"tok","e":3,"c":2,"r":1}"#;
        assert_eq!(
            CachedToken::from_bytes(old).unwrap().token_type,
            TokenType::Bearer
        );
    }

    #[test]
    fn lifetime_rules() {
        let t = AccessToken::new("t");
        // 1 h token: cached 59 min, refresh ahead in the last 10 % of that.
        let c = CachedToken::new(t.clone(), 0, Duration::from_secs(3600), MIN, 0.1);
        assert_eq!(c.cached_until_ms, 3_540_000);
        assert_eq!(c.refresh_at_ms, 3_186_000);
        assert_eq!(c.expires_at_ms, 3_600_000);
        // 90 s token (shorter than twice the buffer): half its life.
        let c = CachedToken::new(t.clone(), 1000, Duration::from_secs(90), MIN, 0.1);
        assert_eq!(c.cached_until_ms, 1000 + 45_000);
        assert!(c.is_fresh(45_999) && !c.is_fresh(46_000));
        // Zero lifetime: never served from cache.
        assert!(!CachedToken::new(t.clone(), 5, Duration::ZERO, MIN, 0.1).is_fresh(5));
        // Absurd lifetimes and times saturate instead of overflowing.
        let c = CachedToken::new(t, u64::MAX - 5, Duration::MAX, MIN, 0.1);
        assert_eq!(c.expires_at_ms, u64::MAX);
        assert!(c.is_fresh(u64::MAX - 5));
    }

    #[test]
    fn keys_differ_by_client_scope_resource_and_params() {
        use crate::client::{ClientId, ClientSecret};
        let client = |id: &str| {
            ClientCredentialsClient::new(
                "http://as/token",
                ClientId::new(id),
                ClientSecret::new("s"),
            )
        };
        let c = client("id");
        let scope = |s: &str| ScopeSet::parse(s).unwrap();
        let a = CacheKey::new("c", &c, &scope("a"), None, &c.extra_params);
        let b = CacheKey::new("c", &c, &scope("b"), None, &c.extra_params);
        let r = CacheKey::new("c", &c, &scope("a"), Some("urn:x"), &c.extra_params);
        let with_audience = c.clone().with_extra_param("audience", "x");
        let p = CacheKey::new(
            "c",
            &with_audience,
            &scope("a"),
            None,
            &with_audience.extra_params,
        );
        let other = client("other");
        let other_client = CacheKey::new("c", &other, &scope("a"), None, &other.extra_params);
        let set: std::collections::HashSet<_> =
            [a.clone(), b, r, p, other_client].into_iter().collect();
        assert_eq!(set.len(), 5);
        // Separator characters inside fields cannot make two keys collide.
        let tricky = |name: &str, resource: &str| {
            CacheKey::new(name, &c, &scope("a"), Some(resource), &c.extra_params)
        };
        assert_ne!(tricky("c\u{1f}x", "y"), tricky("c", "x\u{1f}y"));
        assert_ne!(tricky("c\",\"x", "y"), tricky("c", "x\",\"y"));
        let p1 = c.clone().with_extra_param("a", "b\u{1f}c=d");
        let p2 = c
            .clone()
            .with_extra_param("a", "b")
            .with_extra_param("c", "d");
        assert_ne!(
            CacheKey::new("c", &p1, &scope("a"), None, &p1.extra_params),
            CacheKey::new("c", &p2, &scope("a"), None, &p2.extra_params)
        );
        assert_eq!(a.client_name(), "c");
        let same = client("id");
        assert_eq!(
            a,
            CacheKey::new("c", &same, &scope("a"), None, &same.extra_params)
        );
    }

    #[test]
    fn entries_round_trip_and_reject_garbage() {
        let c = CachedToken::new(
            AccessToken::new("tok"),
            10,
            Duration::from_secs(100),
            MIN,
            0.1,
        );
        assert_eq!(CachedToken::from_bytes(&c.to_bytes()), Some(c));
        assert_eq!(CachedToken::from_bytes(b"garbage"), None);
    }
}
