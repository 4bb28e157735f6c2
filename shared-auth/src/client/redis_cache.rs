//! [`RedisTokenCache`]: one token per fleet. Cargo feature `redis`.
//!
//! Replicas of a service that share a Redis share their tokens: a token fetched by any
//! replica is stored in Redis for its remaining cached life, and the others read it there
//! instead of asking the issuer (on AWS Cognito every token request is billed).
//!
//! - **Two tiers.** An in-process cache (L1, moka) stays in front; Redis (L2) is read on
//!   an L1 miss, and what it answers is kept in L1. The token manager's per-client hot slot
//!   sits in front of both, so a warm call never reaches this module.
//! - **Single flight across replicas.** Before a token request a replica takes a lock in
//!   Redis for the cache key (`SET lock owner NX PX ttl`, with a random owner value). The
//!   others poll the entry with backoff until the holder has stored its token, then use
//!   it. The lock is released with a compare-and-delete script, so a holder whose lock
//!   expired never frees another's.
//! - **The lock lives as long as the work.** Its TTL is short
//!   ([`RedisCacheConfig::lock_ttl`], default 3 s), and the holder extends it every third
//!   of that while its request runs (compare-and-`PEXPIRE`), so a slow issuer never sees a
//!   second replica's request while the first is still working, however long the retry
//!   budget. A holder that dies stops extending: its lock expires within one TTL and a
//!   waiter takes over. A waiter waits at most its own budget ([`FetchBudget`]), and what
//!   it waited is taken from the request it may then make. The lock is released by the
//!   token manager's flight task, which no caller's cancellation can stop.
//! - **Encryption at rest.** With a key, entries are sealed with AES-256-GCM (aws-lc-rs;
//!   a random 96-bit nonce per write) and the Redis key as associated data, so an entry
//!   moved to another key, or altered, fails to open and is a miss, never a token. Without
//!   a key entries are stored in clear and a warning is logged once.
//! - **Keys hold no secret**: `{prefix}token:{client name}:{{hash}}`, where the hash is
//!   SHA-256 of the full cache key (token endpoint, client id, scope, resource, extra
//!   parameters), cut to 128 bits; in braces, it is the hash tag the entry's lock and
//!   tombstone share (one cluster slot).
//! - **One 401 renewal per fleet.** The replica that meets a downstream 401 claims the
//!   renewal with a tombstone (`SET NX PX`, one renewal interval, holding a hash of the
//!   refused token) and publishes that hash on `{prefix}rejections`; every replica listens
//!   there, drops the refused token from its tiers (its hot token through a counter the
//!   warm path reads) and takes the renewed one from Redis. While the tombstone lives no
//!   other replica renews the entry after a 401.
//! - **Redis down or slow never fails a caller.** Every Redis operation has a short
//!   timeout (default 50 ms); a failure is a miss (or "fetch it yourself"), said once in
//!   the log and the `shared_auth_shared_engine_up` gauge, and once more when Redis is
//!   back. The connection is opened lazily and re-opened automatically, so Redis may start
//!   after the service. One URL is one server; several, comma-separated, a cluster.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use redis::AsyncCommands as _;

use crate::redis_engine::{Engine, Health};

use super::credentials::AccessToken;
mod seal;
pub(crate) use seal::{CacheEncryptionKey, open_value, seal_value};

use super::token_cache::{
    CacheKey, CachedToken, FetchBudget, FetchLease, FetchTurn, InMemoryTokenCache, TokenCache,
    now_ms,
};

/// Why a [`RedisTokenCache`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisCacheError {
    /// The URL is not a Redis URL. The URL itself is not repeated: it may hold a password.
    #[error("not a valid Redis URL (expected redis://host[:port][/db] or rediss://...)")]
    InvalidUrl,
    /// The encryption key is not 32 bytes of base64.
    #[error(
        "the cache encryption key must be 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`)"
    )]
    InvalidKey,
}

/// Settings of a [`RedisTokenCache`]. Its `Debug` hides the URL's user and password.
#[derive(Clone)]
#[non_exhaustive]
pub struct RedisCacheConfig {
    /// `redis://[user:password@]host[:port][/db]`, or `rediss://` for TLS (rustls): one
    /// Redis or Valkey server. Several, comma-separated: the nodes of a Redis Cluster
    /// (some of them are enough; the rest are discovered).
    pub url: String,
    /// Prepended to every Redis key (default `shared-auth:`).
    pub key_prefix: String,
    /// Seals entries at rest ([`Self::with_encryption_key`]); `None` stores them in clear
    /// (a warning is logged once).
    pub(crate) encryption_key: Option<CacheEncryptionKey>,
    /// Bound on each Redis operation (default 50 ms). Past it, the operation counts as a
    /// miss: a slow Redis never slows a caller by more than this per operation.
    pub operation_timeout: Duration,
    /// Time to live of the cross-replica fetch lock (default 3 s). The holder extends it
    /// every third of this while it works, so it bounds only what a holder that died
    /// costs the others.
    pub lock_ttl: Duration,
    /// Entries kept in the in-process tier (default 10,000; 0: no in-process tier, every
    /// read goes to Redis).
    pub l1_capacity: u64,
}

/// The URL (or each of a cluster's) without its credentials, for logs and `Debug`.
pub(crate) fn redacted_url(url: &str) -> String {
    if url.contains(',') {
        return url
            .split(',')
            .map(|one| redacted_url(one.trim()))
            .collect::<Vec<_>>()
            .join(",");
    }
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("REDACTED"));
            }
            if !parsed.username().is_empty() {
                let _ = parsed.set_username("REDACTED");
            }
            parsed.to_string()
        }
        Err(_) => "[not a URL]".to_owned(),
    }
}

impl fmt::Debug for RedisCacheConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCacheConfig")
            .field("url", &redacted_url(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("encryption_key", &self.encryption_key)
            .field("operation_timeout", &self.operation_timeout)
            .field("lock_ttl", &self.lock_ttl)
            .field("l1_capacity", &self.l1_capacity)
            .finish()
    }
}

impl RedisCacheConfig {
    /// Defaults for everything but the URL.
    pub fn new(url: impl Into<String>) -> Self {
        RedisCacheConfig {
            url: url.into(),
            key_prefix: "shared-auth:".to_owned(),
            encryption_key: None,
            operation_timeout: Duration::from_millis(50),
            lock_ttl: Duration::from_secs(3),
            l1_capacity: 10_000,
        }
    }

    /// Checks that `url` is a Redis URL (`redis://`, `rediss://` or `unix://`), or a
    /// comma-separated list of them (a cluster's nodes), without connecting. The error
    /// never repeats the URL, which may hold a password.
    pub fn check_url(url: &str) -> Result<(), RedisCacheError> {
        Engine::check(url).map_err(|_| RedisCacheError::InvalidUrl)
    }

    /// Whether entries are sealed (an encryption key is set).
    pub fn is_sealed(&self) -> bool {
        self.encryption_key.is_some()
    }

    /// Seals entries with AES-256-GCM under `key`: 32 raw bytes, or their base64
    /// (standard or URL-safe alphabet, padding optional: `openssl rand -base64 32`).
    /// Every replica needs the same key. Anything else is refused.
    pub fn with_encryption_key(mut self, key: impl AsRef<[u8]>) -> Result<Self, RedisCacheError> {
        let key = key.as_ref();
        let parsed = match key.len() {
            32 => CacheEncryptionKey::from_bytes(key)?,
            _ => CacheEncryptionKey::from_base64(
                std::str::from_utf8(key).map_err(|_| RedisCacheError::InvalidKey)?,
            )?,
        };
        self.encryption_key = Some(parsed);
        Ok(self)
    }

    /// Sets the key prefix.
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }
}

/// A token cache shared through Redis, with an in-process tier in front. See the module
/// documentation. Cheap to clone.
#[derive(Clone)]
pub struct RedisTokenCache(Arc<Inner>);

struct Inner {
    l1: Option<InMemoryTokenCache>,
    redis: Engine,
    prefix: String,
    seal: Option<CacheEncryptionKey>,
    op_timeout: Duration,
    lock_ttl: Duration,
    unlock: redis::Script,
    extend: redis::Script,
    health: Health,
    /// Hashes of the tokens the fleet reported refused (from this process or the channel).
    rejected: moka::sync::Cache<String, ()>,
    /// Moves with every token reported refused (see `TokenCache::rejections`).
    rejections: Arc<AtomicU64>,
    /// The tombstones this process set (their token hashes): its own concurrent callers
    /// rejected with the same token join its renewal instead of standing aside.
    claimed: moka::sync::Cache<String, ()>,
}

/// Releases the lock only if this process still owns it.
const UNLOCK: &str = r#"if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end"#;

/// Extends the lock only if this process still owns it.
const EXTEND: &str = r#"if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) else return 0 end"#;

/// A lazy connection to `url` (one server, or a cluster's nodes; made on first use,
/// reconnected automatically, each attempt bounded by a second), shared by the token cache
/// and the user sessions.
pub(crate) fn connect(url: &str) -> Result<Engine, RedisCacheError> {
    Engine::connect(url, Duration::from_secs(1)).map_err(|_| RedisCacheError::InvalidUrl)
}

/// A Redis operation that failed or timed out (already logged).
struct Unavailable;

/// A token's name in rejection notices and tombstones: 128 bits of its SHA-256, in hex
/// (never the token).
fn token_hash(token: &AccessToken) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.secret().as_bytes());
    hex(&digest.as_ref()[..16])
}

impl Inner {
    /// Remembers a token the fleet refused, and moves the counter the warm path watches.
    fn mark_rejected(&self, hash: String) {
        self.rejected.insert(hash, ());
        self.rejections.fetch_add(1, Ordering::SeqCst);
    }
}

/// Listens for the fleet's rejection notices while the cache lives: subscribes on one node
/// after another (a failure waits a second), and marks each notice's token refused.
/// Hand-rolled over redis-rs's pub/sub: a reconnect loop of a dozen lines.
async fn listen(cache: Weak<Inner>, nodes: Vec<String>, channel: String) {
    use futures_util::StreamExt as _;
    for node in nodes.iter().cycle() {
        let subscribed = async {
            let client = redis::Client::open(node.as_str())?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        if let Ok(Ok(pubsub)) = tokio::time::timeout(Duration::from_secs(2), subscribed).await {
            let mut notices = pubsub.into_on_message();
            loop {
                // Woken at least every 30 s: a cache dropped meanwhile ends the task (and
                // its connection) even when no notice comes.
                let notice =
                    match tokio::time::timeout(Duration::from_secs(30), notices.next()).await {
                        Ok(Some(notice)) => notice,
                        Ok(None) => break,
                        Err(_) if cache.strong_count() == 0 => return,
                        Err(_) => continue,
                    };
                let Some(inner) = cache.upgrade() else {
                    return;
                };
                if let Ok(hash) = notice.get_payload::<String>() {
                    tracing::debug!(
                        "a token was refused at another replica; it is not sent again here"
                    );
                    inner.mark_rejected(hash);
                }
            }
        }
        if cache.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

impl RedisTokenCache {
    /// Builds the cache. No connection is made yet: Redis is reached on first use and
    /// reconnected automatically, so the service starts (and works, per process) while
    /// Redis is down. Call from within a tokio runtime.
    pub fn new(config: RedisCacheConfig) -> Result<Self, RedisCacheError> {
        let redis = connect(&config.url)?;
        if config.encryption_key.is_none() {
            tracing::warn!(
                "token cache entries are stored in Redis unencrypted: anyone who can read \
                 Redis can read the tokens. Set an encryption key (AUTH_TOKEN_CACHE_KEY)."
            );
        }
        let cache = RedisTokenCache(Arc::new(Inner {
            l1: (config.l1_capacity > 0).then(|| InMemoryTokenCache::new(config.l1_capacity)),
            redis,
            prefix: config.key_prefix,
            seal: config.encryption_key,
            op_timeout: config.operation_timeout,
            lock_ttl: config.lock_ttl.max(Duration::from_millis(30)),
            unlock: redis::Script::new(UNLOCK),
            extend: redis::Script::new(EXTEND),
            health: Health::new(
                "token_cache",
                "each replica uses its in-process tier and asks the issuer itself (one request \
                 per token at a time), until it answers again",
            ),
            rejected: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(3600))
                .build(),
            rejections: Arc::new(AtomicU64::new(0)),
            claimed: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
        }));
        // The fleet's rejection notices, heard on the engine's pub/sub channel (a classic
        // PUBLISH reaches every node of a cluster, so one node is enough to listen on).
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let nodes: Vec<String> = config
                .url
                .split(',')
                .map(|u| u.trim().to_owned())
                .filter(|u| !u.is_empty())
                .collect();
            runtime.spawn(listen(Arc::downgrade(&cache.0), nodes, cache.channel()));
            // Connect now, in the background: the first lookups then do not pay for the
            // connection inside their 50 ms bound (a replica starting under load would
            // otherwise find Redis "down" and fetch for itself).
            let warm = cache.clone();
            runtime.spawn(async move {
                let mut conn = warm.0.redis.clone();
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    redis::cmd("PING").query_async::<String>(&mut conn),
                )
                .await;
            });
        }
        Ok(cache)
    }

    /// The channel rejection notices go on.
    fn channel(&self) -> String {
        format!("{}rejections", self.0.prefix)
    }

    /// The Redis key of an entry's 401 tombstone: `{prefix}rejected:{client name}:{{hash}}`
    /// (the entry's slot). Its value is the refused token's hash; it lives one renewal
    /// interval, and while it does no other process renews this entry after a 401.
    pub fn tombstone_key(&self, key: &CacheKey) -> String {
        format!("{}rejected:{}", self.0.prefix, self.suffix(key))
    }

    /// The Redis key of an entry: `{prefix}token:{client name}:{{hash}}`.
    pub fn entry_key(&self, key: &CacheKey) -> String {
        format!("{}token:{}", self.0.prefix, self.suffix(key))
    }

    /// The Redis key of an entry's fetch lock: `{prefix}lock:{client name}:{{hash}}`.
    pub fn lock_key(&self, key: &CacheKey) -> String {
        format!("{}lock:{}", self.0.prefix, self.suffix(key))
    }

    /// `{client name}:{{hash}}`: the hash is the hash tag, so that an entry, its lock and
    /// its tombstone share one Redis Cluster slot. (Were there a brace in the prefix or the
    /// client name, the first pair would be the tag instead; the keys of one entry differ
    /// only in their kind word, so they would still share a slot.)
    fn suffix(&self, key: &CacheKey) -> String {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key.as_str().as_bytes());
        format!("{}:{{{}}}", key.client_name(), hex(&digest.as_ref()[..16]))
    }

    /// Runs one Redis operation under the operation timeout; a failure is said once (see
    /// [`Health`]) and returned as [`Unavailable`].
    async fn run<T, F>(&self, what: &str, operation: F) -> Result<T, Unavailable>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        match tokio::time::timeout(self.0.op_timeout, operation).await {
            Ok(Ok(value)) => {
                self.0.health.answered();
                Ok(value)
            }
            Ok(Err(error)) => {
                self.0.health.failed(what, &error);
                Err(Unavailable)
            }
            Err(_) => {
                self.0.health.failed(
                    what,
                    &format_args!("no answer within {:?}", self.0.op_timeout),
                );
                Err(Unavailable)
            }
        }
    }

    fn encode(&self, redis_key: &str, token: &CachedToken) -> Option<Vec<u8>> {
        seal_value(self.0.seal.as_ref(), redis_key, token.to_bytes())
    }

    /// The entry in `value`, if it opens under `redis_key` (see [`open_value`]).
    fn decode(&self, redis_key: &str, value: &[u8]) -> Option<CachedToken> {
        CachedToken::from_bytes(&open_value(self.0.seal.as_ref(), redis_key, value)?)
    }

    /// The entry in Redis (not L1); `Err` if Redis did not answer.
    async fn remote(&self, key: &CacheKey) -> Result<Option<CachedToken>, Unavailable> {
        let redis_key = self.entry_key(key);
        let mut conn = self.0.redis.clone();
        let value: Option<Vec<u8>> = self.run("GET", conn.get(&redis_key)).await?;
        let Some(value) = value else {
            return Ok(None);
        };
        let entry = self.decode(&redis_key, &value);
        if entry.is_none() {
            tracing::warn!(
                client = key.client_name(),
                "a Redis token cache entry did not open (altered, moved, or another key); ignored"
            );
        }
        Ok(entry)
    }

    /// Keeps `entry` in the in-process tier, if there is one.
    async fn keep(&self, key: &CacheKey, entry: &CachedToken) {
        if let Some(l1) = &self.0.l1 {
            l1.put(key, entry).await;
        }
    }

    /// Whether Redis answers a PING now (for readiness checks and tests).
    pub async fn ping(&self) -> bool {
        let mut conn = self.0.redis.clone();
        let cmd = redis::cmd("PING");
        let answer: Result<String, _> = self.run("PING", cmd.query_async(&mut conn)).await;
        answer.is_ok()
    }

    /// `SET lock owner NX PX ttl`: whether this process now holds the lock.
    async fn try_lock(&self, lock_key: &str, owner: &str) -> Result<bool, Unavailable> {
        let mut conn = self.0.redis.clone();
        let ttl = u64::try_from(self.0.lock_ttl.as_millis()).unwrap_or(u64::MAX);
        let mut cmd = redis::cmd("SET");
        cmd.arg(lock_key).arg(owner).arg("NX").arg("PX").arg(ttl);
        let answer: Option<String> = self.run("SET NX", cmd.query_async(&mut conn)).await?;
        Ok(answer.is_some())
    }

    /// Extends this process's lock every third of its TTL until aborted (the lease's
    /// drop), or until the lock is found gone or owned by another.
    fn keep_alive(&self, lock_key: String, owner: String) -> tokio::task::JoinHandle<()> {
        let cache = self.clone();
        tokio::spawn(async move {
            let ttl = cache.0.lock_ttl;
            let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
            loop {
                tokio::time::sleep(ttl / 3).await;
                let mut conn = cache.0.redis.clone();
                let mut invocation = cache.0.extend.key(&lock_key);
                invocation.arg(&owner).arg(ttl_ms);
                let extended: Result<i64, _> = cache
                    .run("extend lock", invocation.invoke_async(&mut conn))
                    .await;
                if let Ok(0) = extended {
                    return; // expired meanwhile, or taken over: nothing to keep
                }
            }
        })
    }

    async fn unlock(&self, lock_key: &str, owner: &str) {
        let mut conn = self.0.redis.clone();
        let mut invocation = self.0.unlock.key(lock_key);
        invocation.arg(owner);
        let _: Result<i64, _> = self.run("unlock", invocation.invoke_async(&mut conn)).await;
    }
}

/// Lower-case hex, written into one string (Redis key names).
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[async_trait::async_trait]
impl TokenCache for RedisTokenCache {
    async fn get(&self, key: &CacheKey) -> Option<CachedToken> {
        let now = now_ms();
        // After any refusal in the fleet, an entry holding a refused token is no entry.
        let usable = |t: &CachedToken| {
            t.is_fresh(now)
                && (self.0.rejections.load(Ordering::Relaxed) == 0
                    || !self.is_rejected(&t.access_token))
        };
        if let Some(l1) = &self.0.l1
            && let Some(entry) = l1.get(key).await.filter(usable)
        {
            return Some(entry);
        }
        let entry = self.remote(key).await.ok().flatten()?;
        if usable(&entry) {
            self.keep(key, &entry).await;
            Some(entry)
        } else {
            None
        }
    }

    async fn put(&self, key: &CacheKey, token: &CachedToken) {
        // A token this process just got from the issuer is its answer, even if the fleet
        // refused it before (an issuer may hand out the same token until it expires):
        // kept refused, it would be fetched again on every call.
        if self.0.rejections.load(Ordering::Relaxed) > 0 {
            self.0.rejected.invalidate(&token_hash(&token.access_token));
        }
        self.keep(key, token).await;
        let ttl = token.ttl(now_ms());
        if ttl.is_zero() {
            return;
        }
        let redis_key = self.entry_key(key);
        let Some(value) = self.encode(&redis_key, token) else {
            return;
        };
        let mut conn = self.0.redis.clone();
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let _: Result<(), _> = self
            .run("SET", conn.pset_ex(&redis_key, value, ttl_ms))
            .await;
    }

    async fn remove(&self, key: &CacheKey) {
        if let Some(l1) = &self.0.l1 {
            l1.remove(key).await;
        }
        let mut conn = self.0.redis.clone();
        let _: Result<i64, _> = self.run("DEL", conn.del(self.entry_key(key))).await;
    }

    async fn begin_fetch(
        &self,
        key: &CacheKey,
        wanted: &(dyn for<'t> Fn(&'t CachedToken) -> bool + Send + Sync),
        budget: FetchBudget,
    ) -> FetchTurn {
        let lock_key = self.lock_key(key);
        let owner = crate::jose::compact::random(16);
        let deadline = Instant::now() + budget.max_wait;
        let mut pause = Duration::from_millis(5);
        loop {
            match self.try_lock(&lock_key, &owner).await {
                Ok(true) => {
                    // Whoever held the lock before may have stored the token just before
                    // releasing it: look once more before asking the issuer.
                    if let Ok(Some(entry)) = self.remote(key).await
                        && wanted(&entry)
                    {
                        self.unlock(&lock_key, &owner).await;
                        self.keep(key, &entry).await;
                        return FetchTurn::Cached(entry);
                    }
                    let keep_alive = self.keep_alive(lock_key, owner.clone());
                    return FetchTurn::Fetch(FetchLease::held_with_keep_alive(owner, keep_alive));
                }
                Ok(false) => {}
                // Redis is unreachable: every process for itself.
                Err(Unavailable) => return FetchTurn::Fetch(FetchLease::none()),
            }
            // Another replica is requesting this token: wait for it to appear.
            if let Ok(Some(entry)) = self.remote(key).await
                && wanted(&entry)
            {
                tracing::debug!(client = key.client_name(), "token from another replica");
                self.keep(key, &entry).await;
                return FetchTurn::Cached(entry);
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    client = key.client_name(),
                    waited_ms = budget.max_wait.as_millis() as u64,
                    "no token from the replica holding the fetch lock; requesting one"
                );
                return FetchTurn::Fetch(FetchLease::none());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            tokio::time::sleep(pause.min(left)).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    async fn end_fetch(&self, key: &CacheKey, lease: FetchLease) {
        if let Some(owner) = lease.owner() {
            self.unlock(&self.lock_key(key), owner).await;
        }
        drop(lease); // stops the keep-alive
    }

    /// The tombstone: `SET {prefix}rejected:... <token hash> NX PX interval`. Set here: this
    /// process renews, and tells the fleet on the channel. Already there for this token:
    /// another process renews it. There for another token: the entry was renewed after a
    /// 401 less than an interval ago, and is not again. Redis unavailable: this process
    /// decides alone.
    async fn claim_rejection(
        &self,
        key: &CacheKey,
        token: &AccessToken,
        interval: Duration,
    ) -> bool {
        let hash = token_hash(token);
        let tombstone = self.tombstone_key(key);
        let ttl = u64::try_from(interval.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut conn = self.0.redis.clone();
        let mut set = redis::cmd("SET");
        set.arg(&tombstone).arg(&hash).arg("NX").arg("PX").arg(ttl);
        let claimed: Option<String> = match self
            .run("SET NX tombstone", set.query_async(&mut conn))
            .await
        {
            Ok(answer) => answer,
            Err(Unavailable) => return true,
        };
        if claimed.is_some() {
            self.0.mark_rejected(hash.clone());
            self.0.claimed.insert(hash.clone(), ());
            let mut publish = redis::cmd("PUBLISH");
            publish.arg(self.channel()).arg(&hash);
            let _: Result<i64, _> = self.run("PUBLISH", publish.query_async(&mut conn)).await;
            return true;
        }
        // Set before. For this very token: it is refused (whoever renews it), and a caller
        // of this process that set it joins that renewal. For another token: an earlier
        // refusal of this entry within the interval; this token is not marked refused
        // (else every call would drop it and fetch anew), and no renewal is made.
        let held: Result<Option<String>, _> = self.run("GET tombstone", conn.get(&tombstone)).await;
        if matches!(&held, Ok(Some(h)) if *h == hash) {
            self.0.mark_rejected(hash.clone());
            return self.0.claimed.contains_key(&hash);
        }
        false
    }

    fn rejections(&self) -> Option<Arc<AtomicU64>> {
        Some(self.0.rejections.clone())
    }

    fn is_rejected(&self, token: &AccessToken) -> bool {
        self.0.rejected.contains_key(&token_hash(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::AccessToken;

    fn cache(seal: Option<CacheEncryptionKey>) -> RedisTokenCache {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = runtime.enter();
        let mut config = RedisCacheConfig::new("redis://127.0.0.1:1");
        config.encryption_key = seal;
        RedisTokenCache::new(config).unwrap()
    }

    fn entry() -> CachedToken {
        CachedToken::new(
            AccessToken::new("header.payload.signature"),
            now_ms(),
            Duration::from_secs(3600),
            Duration::from_secs(60),
            0.1,
        )
    }

    #[test]
    fn sealed_entries_open_only_under_their_own_key() {
        let key = CacheEncryptionKey::from_bytes(&[7; 32]).unwrap();
        let c = cache(Some(key));
        let e = entry();
        let sealed = c.encode("k1", &e).unwrap();
        assert_eq!(c.decode("k1", &sealed), Some(e));
        assert!(c.decode("k2", &sealed).is_none(), "moved to another key");
        let mut altered = sealed.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert!(c.decode("k1", &altered).is_none(), "altered");
        let plain = cache(None).encode("k1", &entry()).unwrap();
        assert!(
            c.decode("k1", &plain).is_none(),
            "clear text refused when a key is set"
        );
        assert!(!String::from_utf8_lossy(&sealed).contains("payload"));
    }

    #[test]
    fn keys_hold_no_scope_or_client_id() {
        use crate::client::{ClientCredentialsClient, ClientId, ClientSecret};
        let c = cache(None);
        let client = ClientCredentialsClient::new(
            "http://as/token",
            ClientId::new("client-id-123"),
            ClientSecret::new("secret"),
        );
        let key = CacheKey::new(
            "api",
            &client,
            &crate::ScopeSet::parse("read").unwrap(),
            Some("urn:r"),
            &client.extra_params,
        );
        let k = c.entry_key(&key);
        assert!(k.starts_with("shared-auth:token:api:"), "{k}");
        assert!(!k.contains("client-id-123") && !k.contains("urn:r") && !k.contains("secret"));
        assert_eq!(k.len(), "shared-auth:token:api:".len() + 34);
        let tag = |k: &str| k[k.find('{').unwrap()..].to_owned();
        assert!(tag(&k).ends_with('}'));
        assert_eq!(
            tag(&k),
            tag(&c.lock_key(&key)),
            "one slot for the entry and its lock"
        );
    }

    #[test]
    fn debug_hides_the_url_credentials() {
        let config = RedisCacheConfig::new("rediss://admin:hunter2@cache.example:6380/0");
        let printed = format!("{config:?}");
        assert!(
            !printed.contains("hunter2") && !printed.contains("admin"),
            "{printed}"
        );
        assert!(printed.contains("cache.example"), "{printed}");
        let printed = format!("{:?}", RedisCacheConfig::new("redis://:hunter2@h/0"));
        assert!(!printed.contains("hunter2"), "{printed}");
    }

    #[test]
    fn encryption_keys_must_be_32_bytes_of_base64() {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode([1u8; 32]);
        assert!(CacheEncryptionKey::from_base64(&b64).is_ok());
        assert!(CacheEncryptionKey::from_base64("c2hvcnQ=").is_err());
        assert!(CacheEncryptionKey::from_base64("not base64!").is_err());
        assert!(!format!("{:?}", CacheEncryptionKey::from_bytes(&[1; 32]).unwrap()).contains('1'));
    }

    #[test]
    fn urls_are_checked_without_being_echoed() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = runtime.enter();
        let err = RedisTokenCache::new(RedisCacheConfig::new("http://user:hunter2@x"))
            .err()
            .unwrap();
        assert!(!err.to_string().contains("hunter2"));
        assert!(
            RedisTokenCache::new(RedisCacheConfig::new("rediss://cache.example:6380/0")).is_ok()
        );
    }
}
