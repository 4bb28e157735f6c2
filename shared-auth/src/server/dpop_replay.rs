//! Where the `jti`s of accepted DPoP proofs are remembered (RFC 9449 section 11.1), so that
//! a proof is accepted once.
//!
//! A proof is accepted only within its `iat` window (the proof max age, plus the small
//! future leeway), so a `jti` need be remembered only that long: after that the proof is
//! refused as stale anyway. The key is SHA-256 over the proof key's thumbprint and the
//! `jti` (two clients choosing the same `jti` do not collide; the stored key reveals
//! neither).
//!
//! - [`InMemoryReplayStore`] (the default): bounded (moka), per process. With several
//!   replicas behind a load balancer, a proof replayed to *another* replica is not seen:
//!   use a shared store then. At its bound, the least recently used (the oldest) entries
//!   are evicted early, so a proof older than what the store holds could be replayed
//!   within its window: size it for the proofs a window holds (default 100,000: about
//!   1,500 proofs a second for 65 s). LRU on purpose: moka's default admission policy
//!   (TinyLFU) would refuse to store new `jti`s, each seen once, at the bound, and leave
//!   the newest proofs unprotected.
//! - `RedisReplayStore` (feature `redis`): shared by every replica, `SET key 1 NX PX ttl`.
//!   When Redis fails or does not answer in time, the proof is refused with 503 and
//!   `Retry-After`: a replay check that cannot run never lets a proof through.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;

/// A replay check that could not run. The request is refused (503), never let through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayStoreError {
    /// The store did not answer (down, timed out, refused). The text is for logs. (Only
    /// a shared store fails so: the Redis one, or a bench's.)
    #[error("the DPoP replay store is unavailable: {0}")]
    #[cfg_attr(not(any(feature = "redis", feature = "internals")), allow(dead_code))]
    Unavailable(String),
}

/// Remembers DPoP proof identifiers for a while (see the module documentation).
#[async_trait::async_trait]
pub trait ReplayStore: Send + Sync + fmt::Debug + 'static {
    /// Records `key` for `ttl`. `Ok(true)`: first seen (accept the proof); `Ok(false)`:
    /// seen within its `ttl` (a replay). Must be atomic: of two concurrent calls with one
    /// key, at most one gets `Ok(true)`.
    async fn first_use(&self, key: &[u8; 32], ttl: Duration) -> Result<bool, ReplayStoreError>;
}

/// The key a proof is remembered under: SHA-256(`jkt` 0x00 `jti`).
pub(crate) fn replay_key(jkt: &str, jti: &str) -> [u8; 32] {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    context.update(jkt.as_bytes());
    context.update(&[0]);
    context.update(jti.as_bytes());
    let mut key = [0; 32];
    key.copy_from_slice(context.finish().as_ref());
    key
}

/// A bounded, per-process [`ReplayStore`] (moka). Entries expire by the injectable clock
/// (and, for memory, by moka's own timer at the longest `ttl`).
pub struct InMemoryReplayStore {
    /// Key -> when it may be forgotten (Unix ms, by `clock`).
    seen: moka::sync::Cache<[u8; 32], u64>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for InMemoryReplayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryReplayStore")
            .field("entries", &self.seen.entry_count())
            .finish_non_exhaustive()
    }
}

impl InMemoryReplayStore {
    /// At most `capacity` entries, none kept longer than `max_ttl` (the proof window).
    pub fn new(capacity: u64, max_ttl: Duration, clock: Arc<dyn Clock>) -> Self {
        InMemoryReplayStore {
            seen: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .eviction_policy(moka::policy::EvictionPolicy::lru())
                .time_to_live(max_ttl.max(Duration::from_secs(1)))
                .build(),
            clock,
        }
    }

    /// The synchronous check behind [`ReplayStore::first_use`].
    pub(crate) fn first_use_now(&self, key: &[u8; 32], ttl: Duration) -> bool {
        use moka::ops::compute::Op;
        let now = self.clock.now_unix_ms();
        let until = now.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        let mut first = false;
        // Atomic per key: concurrent calls with one key run one after the other.
        self.seen.entry(*key).and_compute_with(|entry| match entry {
            Some(entry) if *entry.value() >= now => Op::Nop,
            _ => {
                first = true;
                Op::Put(until)
            }
        });
        first
    }
}

#[async_trait::async_trait]
impl ReplayStore for InMemoryReplayStore {
    async fn first_use(&self, key: &[u8; 32], ttl: Duration) -> Result<bool, ReplayStoreError> {
        Ok(self.first_use_now(key, ttl))
    }
}

#[cfg(feature = "redis")]
pub use self::redis_store::RedisReplayStore;

#[cfg(feature = "redis")]
mod redis_store {
    use std::fmt;
    use std::time::Duration;

    use redis::aio::{ConnectionManager, ConnectionManagerConfig};

    use super::{ReplayStore, ReplayStoreError};

    /// A [`ReplayStore`] in Redis, shared by every replica (feature `redis`):
    /// `SET {prefix}dpop:{hex(key)} 1 NX PX {ttl}`. Every operation is bounded by a
    /// timeout; a failure or a timeout is [`ReplayStoreError::Unavailable`] (the request is
    /// refused with 503, never let through).
    #[derive(Clone)]
    pub struct RedisReplayStore {
        redis: ConnectionManager,
        prefix: String,
        timeout: Duration,
    }

    impl fmt::Debug for RedisReplayStore {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            // Never the URL: it may hold a password.
            f.debug_struct("RedisReplayStore")
                .field("prefix", &self.prefix)
                .field("timeout", &self.timeout)
                .finish_non_exhaustive()
        }
    }

    impl RedisReplayStore {
        /// Connects lazily (the first check connects; reconnects are automatic) to `url`
        /// (`redis://`, `rediss://`, `unix://`), keys under `prefix`, each operation bounded
        /// by `timeout`. Call from within a tokio runtime. The error never repeats the URL.
        pub fn new(url: &str, prefix: &str, timeout: Duration) -> Result<Self, ReplayStoreError> {
            let invalid = || ReplayStoreError::Unavailable("invalid Redis URL".to_owned());
            let client = redis::Client::open(url).map_err(|_| invalid())?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_secs(1));
            let redis =
                ConnectionManager::new_lazy_with_config(client, config).map_err(|_| invalid())?;
            Ok(RedisReplayStore {
                redis,
                prefix: prefix.to_owned(),
                timeout,
            })
        }

        /// The Redis key of a replay key.
        fn redis_key(&self, key: &[u8; 32]) -> String {
            use std::fmt::Write as _;
            let mut out = String::with_capacity(self.prefix.len() + 5 + 64);
            out.push_str(&self.prefix);
            out.push_str("dpop:");
            for b in key {
                let _ = write!(out, "{b:02x}");
            }
            out
        }
    }

    #[async_trait::async_trait]
    impl ReplayStore for RedisReplayStore {
        async fn first_use(&self, key: &[u8; 32], ttl: Duration) -> Result<bool, ReplayStoreError> {
            let mut cmd = redis::cmd("SET");
            cmd.arg(self.redis_key(key))
                .arg(1)
                .arg("NX")
                .arg("PX")
                .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1));
            let mut connection = self.redis.clone();
            match tokio::time::timeout(
                self.timeout,
                cmd.query_async::<Option<String>>(&mut connection),
            )
            .await
            {
                Ok(Ok(set)) => Ok(set.is_some()),
                Ok(Err(e)) => Err(ReplayStoreError::Unavailable(format!(
                    "Redis error: {:?}",
                    e.kind()
                ))),
                Err(_) => Err(ReplayStoreError::Unavailable(format!(
                    "no answer within {:?}",
                    self.timeout
                ))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn a_key_is_refused_within_its_ttl_and_accepted_after() {
        let clock = Arc::new(ManualClock::starting_now());
        let store = InMemoryReplayStore::new(100, Duration::from_secs(65), clock.clone());
        let key = replay_key("thumb", "jti-1");
        let ttl = Duration::from_secs(65);
        assert!(store.first_use_now(&key, ttl));
        assert!(!store.first_use_now(&key, ttl), "replay within the window");
        clock.advance(Duration::from_secs(64));
        assert!(!store.first_use_now(&key, ttl), "still within the window");
        clock.advance(Duration::from_secs(2));
        assert!(store.first_use_now(&key, ttl), "forgotten after the window");
        // Another key, and the same jti under another key thumbprint, are other entries.
        assert!(store.first_use_now(&replay_key("thumb", "jti-2"), ttl));
        assert!(store.first_use_now(&replay_key("other", "jti-1"), ttl));
    }

    #[test]
    fn the_key_separates_thumbprint_and_jti() {
        assert_ne!(replay_key("ab", "c"), replay_key("a", "bc"));
    }
}
