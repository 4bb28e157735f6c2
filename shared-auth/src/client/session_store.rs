//! Where [`UserSessions`](super::UserSessions) keeps sessions and logins in progress: in
//! this process (moka, bounded), or in Redis for a fleet of replicas (feature `redis`),
//! sealed with the token cache's AES-256-GCM key when one is set.
//!
//! The store also holds each session's renewal lock, so that across every replica one
//! refresh token is presented once: in this process a lock always succeeds (the session's
//! in-process lock already serialises its requests), in Redis it is `SET NX PX` with a
//! random owner, released only by its owner.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::TokenRequestParams;
use super::login::{LOGIN_WINDOW, PendingLogin, UserTokens};
use super::token_endpoint::TokenType;

/// A session as stored.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Session {
    pub(crate) tokens: UserTokens,
    pub(crate) created_ms: u64,
    pub(crate) last_seen_ms: u64,
    pub(crate) logout_id: String,
    /// After a failed renewal, no other is tried before this (Unix ms): the requests that
    /// waited for the failed one share its outcome instead of each asking again.
    pub(crate) renew_not_before_ms: u64,
    /// Access tokens asked for with other parameters (a narrower scope, a resource, a
    /// tenant), by [`params_key`]; each got with the session's one refresh token. At most
    /// [`MAX_OTHER_TOKENS`].
    #[serde(default)]
    pub(crate) other_tokens: BTreeMap<String, OtherToken>,
    /// When a downstream 401 last caused a renewal (Unix ms; 0: never): at most one per
    /// session per 30 s, so a downstream that refuses every token does not cost a refresh
    /// per request.
    #[serde(default)]
    pub(crate) rejection_renewed_ms: u64,
}

/// An access token of a session for other parameters than the login's.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct OtherToken {
    pub(crate) access_token: String,
    pub(crate) token_type: TokenType,
    pub(crate) expires_at_ms: u64,
}

/// A session keeps at most this many tokens for other parameters; the one that expires
/// first makes room (it is got again when asked for).
pub(crate) const MAX_OTHER_TOKENS: usize = 16;

/// The key of a session's token for `params`: `None` for the login's own (no scope,
/// resource or extra parameter asked for). Unambiguous, as the token cache's keys are.
pub(crate) fn params_key(params: &TokenRequestParams) -> Option<String> {
    if params.scope.is_none() && params.resource.is_none() && params.extra.is_empty() {
        return None;
    }
    let fields = (
        params.scope.as_ref().map(ToString::to_string),
        &params.resource,
        &params.extra,
    );
    Some(serde_json::to_string(&fields).unwrap_or_default())
}

impl Session {
    /// The access token for `key` (`None`: the login's) and when it expires (Unix ms).
    pub(crate) fn token(&self, key: Option<&str>) -> Option<(&str, TokenType, u64)> {
        match key {
            None => Some((
                &self.tokens.access_token,
                self.tokens.token_type,
                self.tokens.expires_at_ms,
            )),
            Some(key) => self
                .other_tokens
                .get(key)
                .map(|t| (t.access_token.as_str(), t.token_type, t.expires_at_ms)),
        }
    }

    /// Takes in what a refresh for `key` returned: the access token under its key, and
    /// for the whole session the rotated refresh token and the ID token.
    pub(crate) fn renewed(&mut self, key: Option<&str>, renewed: UserTokens, now_ms: u64) {
        let Some(key) = key else {
            self.tokens = renewed;
            return;
        };
        self.other_tokens.retain(|_, t| t.expires_at_ms > now_ms);
        if self.other_tokens.len() >= MAX_OTHER_TOKENS && !self.other_tokens.contains_key(key) {
            let first = self
                .other_tokens
                .iter()
                .min_by_key(|(_, t)| t.expires_at_ms)
                .map(|(k, _)| k.clone());
            if let Some(first) = first {
                self.other_tokens.remove(&first);
            }
        }
        self.other_tokens.insert(
            key.to_owned(),
            OtherToken {
                access_token: renewed.access_token,
                token_type: renewed.token_type,
                expires_at_ms: renewed.expires_at_ms,
            },
        );
        self.tokens.refresh_token = renewed.refresh_token;
        self.tokens.id_token = renewed.id_token;
        self.tokens.claims = renewed.claims;
    }
}

/// How long a renewal lock lives if its holder dies (longer than one refresh may take).
pub(crate) const RENEWAL_LOCK_TTL: Duration = Duration::from_secs(15);

/// The store did not answer (the text is for logs).
#[derive(Debug)]
pub(crate) struct StoreUnavailable(pub(crate) String);

pub(crate) enum Store {
    Memory {
        sessions: moka::future::Cache<String, Session>,
        pending: moka::future::Cache<String, PendingLogin>,
        /// The renewal locks held, and since when: a lock outlives its holder by at most
        /// [`RENEWAL_LOCK_TTL`], as in Redis. (Not left to the in-process per-session
        /// locks alone: those live in a bounded cache, and an evicted one would let two
        /// requests of a session renew at once.)
        held: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
    },
    #[cfg(feature = "redis")]
    Redis(redis_store::RedisSessions),
}

impl Store {
    pub(crate) fn memory(capacity: u64, idle: Duration) -> Self {
        Store::Memory {
            sessions: moka::future::Cache::builder()
                .max_capacity(capacity)
                // Memory only; the lifetimes are judged by the clock on every use.
                .time_to_idle(idle)
                .build(),
            pending: moka::future::Cache::builder()
                .max_capacity((capacity / 10).max(100))
                .time_to_live(LOGIN_WINDOW)
                .build(),
            held: std::sync::Mutex::default(),
        }
    }

    pub(crate) fn shared(&self) -> bool {
        !matches!(self, Store::Memory { .. })
    }

    pub(crate) async fn put_pending(
        &self,
        login_id: &str,
        pending: &PendingLogin,
    ) -> Result<(), StoreUnavailable> {
        match self {
            Store::Memory { pending: p, .. } => {
                p.insert(login_id.to_owned(), pending.clone()).await;
                Ok(())
            }
            #[cfg(feature = "redis")]
            Store::Redis(r) => r.put(&r.login_key(login_id), pending, LOGIN_WINDOW).await,
        }
    }

    /// The pending login, removed (a login completes once).
    pub(crate) async fn take_pending(
        &self,
        login_id: &str,
    ) -> Result<Option<PendingLogin>, StoreUnavailable> {
        match self {
            Store::Memory { pending, .. } => Ok(pending.remove(login_id).await),
            #[cfg(feature = "redis")]
            Store::Redis(r) => r.take(&r.login_key(login_id)).await,
        }
    }

    pub(crate) async fn load(&self, id: &str) -> Result<Option<Session>, StoreUnavailable> {
        match self {
            Store::Memory { sessions, .. } => Ok(sessions.get(id).await),
            #[cfg(feature = "redis")]
            Store::Redis(r) => r.get(&r.session_key(id)).await,
        }
    }

    /// Saves the session, to be kept `ttl` more.
    pub(crate) async fn save(
        &self,
        id: &str,
        session: &Session,
        ttl: Duration,
    ) -> Result<(), StoreUnavailable> {
        match self {
            Store::Memory { sessions, .. } => {
                let _ = ttl;
                sessions.insert(id.to_owned(), session.clone()).await;
                Ok(())
            }
            #[cfg(feature = "redis")]
            Store::Redis(r) => r.put(&r.session_key(id), session, ttl).await,
        }
    }

    /// The session, removed.
    pub(crate) async fn remove(&self, id: &str) -> Result<Option<Session>, StoreUnavailable> {
        match self {
            Store::Memory { sessions, .. } => Ok(sessions.remove(id).await),
            #[cfg(feature = "redis")]
            Store::Redis(r) => r.take(&r.session_key(id)).await,
        }
    }

    /// The session's renewal lock for the fleet: `Some(owner)` when taken (release it with
    /// [`unlock`](Self::unlock)), `None` when another replica holds it.
    pub(crate) async fn lock(&self, id: &str) -> Result<Option<String>, StoreUnavailable> {
        match self {
            Store::Memory { held, .. } => {
                let mut held = held.lock().unwrap_or_else(|e| e.into_inner());
                let now = std::time::Instant::now();
                held.retain(|_, since| now.duration_since(*since) < RENEWAL_LOCK_TTL);
                if held.contains_key(id) {
                    return Ok(None);
                }
                held.insert(id.to_owned(), now);
                Ok(Some(String::new()))
            }
            #[cfg(feature = "redis")]
            Store::Redis(r) => r.lock(id).await,
        }
    }

    pub(crate) async fn unlock(&self, id: &str, owner: &str) {
        match self {
            Store::Memory { held, .. } => {
                let _ = owner;
                held.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
            }
            #[cfg(feature = "redis")]
            Store::Redis(r) => r.unlock(id, owner).await,
        }
    }
}

#[cfg(feature = "redis")]
pub(crate) mod redis_store {
    use std::time::Duration;

    use crate::redis_engine::{Engine, Health};
    use redis::AsyncCommands as _;

    use super::StoreUnavailable;

    use super::RENEWAL_LOCK_TTL as LOCK_TTL;
    use crate::client::redis_cache::{
        CacheEncryptionKey, RedisCacheConfig, RedisCacheError, connect, hex, open_value, seal_value,
    };

    /// Releases the lock only if its owner still holds it.
    const UNLOCK: &str = r#"if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end"#;

    pub(crate) struct RedisSessions {
        redis: Engine,
        prefix: String,
        seal: Option<CacheEncryptionKey>,
        timeout: Duration,
        health: Health,
    }

    impl RedisSessions {
        pub(crate) fn new(config: &RedisCacheConfig) -> Result<Self, RedisCacheError> {
            let redis = connect(&config.url)?;
            if config.encryption_key.is_none() {
                tracing::warn!(
                    "user sessions are stored in Redis unencrypted: anyone who can read Redis \
                     can read the users' tokens. Set an encryption key (AUTH_TOKEN_CACHE_KEY)."
                );
            }
            Ok(RedisSessions {
                redis,
                prefix: config.key_prefix.clone(),
                seal: config.encryption_key.clone(),
                // Sessions are read on user requests, not on every machine call: a little
                // more room than the token cache's 50 ms.
                timeout: config.operation_timeout.max(Duration::from_millis(500)),
                health: Health::new(
                    "sessions",
                    "user requests answer 503 (the sessions are kept there) until it answers again",
                ),
            })
        }

        /// Keys hold a hash of the id, never the id (a cookie's value) itself.
        fn key(&self, kind: &str, id: &str) -> String {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, id.as_bytes());
            format!("{}{kind}:{{{}}}", self.prefix, hex(&digest.as_ref()[..16]))
        }

        pub(crate) fn session_key(&self, id: &str) -> String {
            self.key("session", id)
        }

        pub(crate) fn login_key(&self, id: &str) -> String {
            self.key("login", id)
        }

        fn lock_key(&self, id: &str) -> String {
            self.key("session-lock", id)
        }

        async fn run<T>(
            &self,
            operation: impl Future<Output = redis::RedisResult<T>>,
        ) -> Result<T, StoreUnavailable> {
            let outcome = match tokio::time::timeout(self.timeout, operation).await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(e)) => Err(StoreUnavailable(format!("Redis error: {:?}", e.kind()))),
                Err(_) => Err(StoreUnavailable(format!(
                    "no answer within {:?}",
                    self.timeout
                ))),
            };
            match &outcome {
                Ok(_) => self.health.answered(),
                Err(e) => self.health.failed("session store", &e.0),
            }
            outcome
        }

        pub(crate) async fn put<T: serde::Serialize>(
            &self,
            key: &str,
            value: &T,
            ttl: Duration,
        ) -> Result<(), StoreUnavailable> {
            let plain = serde_json::to_vec(value).map_err(|e| StoreUnavailable(e.to_string()))?;
            let sealed = seal_value(self.seal.as_ref(), key, plain)
                .ok_or_else(|| StoreUnavailable("sealing failed".into()))?;
            let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            let mut conn = self.redis.clone();
            self.run(conn.pset_ex::<_, _, ()>(key, sealed, ms)).await
        }

        async fn decoded<T: serde::de::DeserializeOwned>(
            &self,
            key: &str,
            value: Option<Vec<u8>>,
        ) -> Option<T> {
            let value = value?;
            let opened = open_value(self.seal.as_ref(), key, &value);
            let parsed = opened.and_then(|plain| serde_json::from_slice(&plain).ok());
            if parsed.is_none() {
                tracing::warn!(
                    "a stored session did not open (altered, moved, or another key); ignored"
                );
            }
            parsed
        }

        pub(crate) async fn get<T: serde::de::DeserializeOwned>(
            &self,
            key: &str,
        ) -> Result<Option<T>, StoreUnavailable> {
            let mut conn = self.redis.clone();
            let value: Option<Vec<u8>> = self.run(conn.get(key)).await?;
            Ok(self.decoded(key, value).await)
        }

        /// The value, deleted in the same command (GETDEL: a login completes once).
        pub(crate) async fn take<T: serde::de::DeserializeOwned>(
            &self,
            key: &str,
        ) -> Result<Option<T>, StoreUnavailable> {
            let mut conn = self.redis.clone();
            let value: Option<Vec<u8>> = self.run(conn.get_del(key)).await?;
            Ok(self.decoded(key, value).await)
        }

        pub(crate) async fn lock(&self, id: &str) -> Result<Option<String>, StoreUnavailable> {
            let owner = crate::jose::compact::random(16);
            let mut cmd = redis::cmd("SET");
            cmd.arg(self.lock_key(id))
                .arg(&owner)
                .arg("NX")
                .arg("PX")
                .arg(LOCK_TTL.as_millis() as u64);
            let mut conn = self.redis.clone();
            let set: Option<String> = self.run(cmd.query_async(&mut conn)).await?;
            Ok(set.map(|_| owner))
        }

        pub(crate) async fn unlock(&self, id: &str, owner: &str) {
            let script = redis::Script::new(UNLOCK);
            let mut invocation = script.key(self.lock_key(id));
            invocation.arg(owner);
            let mut conn = self.redis.clone();
            if let Err(error) = self.run(invocation.invoke_async::<i64>(&mut conn)).await {
                // It expires on its own.
                tracing::debug!(error = %error.0, "a session's renewal lock was not released");
            }
        }
    }
}
