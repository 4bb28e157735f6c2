//! Where the `jti`s of accepted DPoP proofs are remembered (RFC 9449 section 11.1), so that
//! a proof is accepted once.
//!
//! A proof is accepted only within its `iat` window (the proof max age, plus the small
//! future leeway), so a `jti` need be remembered only that long: after that the proof is
//! refused as stale anyway. Entries are per (`jkt`, `jti`): the key is SHA-256 over the
//! proof key's thumbprint and the `jti` (two clients choosing the same `jti` do not
//! collide; the stored key reveals neither).
//!
//! A live entry is never forgotten early: forgetting one would let its proof be replayed
//! within its window. So a store that cannot remember a new proof refuses it, and the
//! request gets 503 with `Retry-After` ([`ReplayStoreError`]), never a pass:
//!
//! - [`InMemoryReplayStore`] (the default): per process, at most `capacity` unexpired
//!   entries (default 100,000: about 1,500 proofs a second over a 65 s window). A proof key
//!   (`jkt`) holding `per_key` entries (default 10,000) or more gets another only while the
//!   store is less than half full: so one client cannot fill it for everyone (what keys
//!   hold past their share is at most half the store), and one busy client alone (a BFF
//!   calling its API) may use half the store, not a tenth of it. With several replicas
//!   behind a load balancer, a proof replayed to *another* replica is not seen: use a
//!   shared store then.
//! - `RedisReplayStore` (feature `redis`): shared by every replica, one
//!   `SET {prefix}dpop:{hex(key)} 1 NX PX {window}` per proof: the entry and its expiry are
//!   set in one atomic command. When Redis fails or does not answer in time, the proof is
//!   refused with 503 and `Retry-After`: a replay check that cannot run never lets a proof
//!   through. Redis bounds memory by eviction, which would forget live entries: run it
//!   with `maxmemory-policy noeviction` (then a full Redis refuses the `SET`, and so the
//!   proof) or without `maxmemory`.

use std::collections::hash_map::Entry as Slot;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::clock::Clock;

/// A replay check that could not run, or a proof that could not be remembered. The request
/// is refused (503 with `Retry-After`), never let through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayStoreError {
    /// The store did not answer (down, timed out, refused). The text is for logs. (Only
    /// a shared store fails so: the Redis one, or a bench's.)
    #[error("the DPoP replay store is unavailable: {0}")]
    #[cfg_attr(not(any(feature = "redis", feature = "internals")), allow(dead_code))]
    Unavailable(String),
    /// The store holds its capacity of unexpired entries: the proof cannot be remembered
    /// without forgetting a live one. Room again in `retry_after` seconds.
    #[error("the DPoP replay store is full of unexpired proofs (room in {retry_after} s)")]
    Full {
        /// Seconds until the oldest entry expires (for `Retry-After`).
        retry_after: u64,
    },
    /// The proof's key (`jkt`) holds its share of unexpired entries. Room again for it in
    /// `retry_after` seconds; other keys are not affected.
    #[error(
        "the DPoP proof key holds its bound of unexpired proofs in the replay store (room in {retry_after} s)"
    )]
    KeyFull {
        /// Seconds until the key's oldest entry expires (for `Retry-After`).
        retry_after: u64,
    },
}

impl ReplayStoreError {
    /// A stable reason code (logs and metrics).
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            ReplayStoreError::Unavailable(_) => "replay_store_unavailable",
            ReplayStoreError::Full { .. } => "replay_store_full",
            ReplayStoreError::KeyFull { .. } => "replay_store_key_full",
        }
    }

    /// Seconds for `Retry-After` (at least 1).
    pub(crate) fn retry_after(&self) -> u64 {
        match self {
            ReplayStoreError::Unavailable(_) => 1,
            ReplayStoreError::Full { retry_after } | ReplayStoreError::KeyFull { retry_after } => {
                (*retry_after).max(1)
            }
        }
    }
}

/// Remembers DPoP proof identifiers for a while (see the module documentation).
#[async_trait::async_trait]
pub trait ReplayStore: Send + Sync + fmt::Debug + 'static {
    /// Records `key` (`replay_key(jkt, jti)`) of a proof made with the key whose thumbprint
    /// is `jkt`, for `ttl`. `Ok(true)`: first seen (accept the proof); `Ok(false)`: seen
    /// within its `ttl` (a replay). Must be atomic: of two concurrent calls with one key, at
    /// most one gets `Ok(true)`. A store that cannot remember the key without forgetting a
    /// live one answers an error, never `Ok(true)`.
    async fn first_use(
        &self,
        jkt: &str,
        key: &[u8; 32],
        ttl: Duration,
    ) -> Result<bool, ReplayStoreError>;

    /// The same, for a store that answers without waiting (in memory); `None` (the
    /// default): call [`first_use`](Self::first_use). The auth layer then needs no boxed
    /// future for the request.
    fn first_use_now(
        &self,
        jkt: &str,
        key: &[u8; 32],
        ttl: Duration,
    ) -> Option<Result<bool, ReplayStoreError>> {
        let _ = (jkt, key, ttl);
        None
    }
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

/// A bounded, per-process [`ReplayStore`]: full of unexpired entries, it refuses new ones
/// rather than forget a live one. Entries expire by the injectable clock.
///
/// Hand-rolled (a set, a FIFO of expiry times, a count per key, under one mutex) rather
/// than a cache crate: a cache (moka, quick_cache) makes room by evicting, or, with an
/// admission policy, by silently not storing the new key, and either lets a live proof be
/// replayed; its entry count is eventually consistent, so "full" cannot be decided
/// exactly; and its expiry runs on its own clock, not the validator's. The structure is
/// simple because every entry of one verifier lives for the same window: entries expire in
/// the order they were made, so expiry is a pop from the front. The lock is held for a
/// set lookup and an insert, well under a microsecond (measured in the DPoP row of
/// `just bench`), beside the tens of microseconds of the proof's signature check.
pub struct InMemoryReplayStore {
    state: Mutex<State>,
    capacity: usize,
    per_key: usize,
    clock: Arc<dyn Clock>,
}

/// The live entries of an [`InMemoryReplayStore`].
#[derive(Default)]
struct State {
    /// Every entry's key (a map for its entry API: one probe per proof).
    seen: HashMap<[u8; 32], ()>,
    /// The same entries, oldest first.
    order: VecDeque<Entry>,
    /// Per proof key thumbprint, the expiry times of its entries, oldest first.
    per_key: HashMap<Arc<str>, VecDeque<u64>>,
    /// Whether the store's being full was logged (once until it has room again).
    full_logged: bool,
}

struct Entry {
    /// Forgotten once the clock is past this (Unix ms).
    until: u64,
    key: [u8; 32],
    jkt: Arc<str>,
}

impl State {
    /// Forgets the expired entries at the front. Entries made with a longer `ttl`, or
    /// before the clock was set back, may hold younger ones behind them: those are kept
    /// longer than needed, never forgotten early.
    fn expire(&mut self, now: u64) {
        while let Some(entry) = self.order.front() {
            if entry.until >= now {
                break;
            }
            let Some(entry) = self.order.pop_front() else {
                break;
            };
            self.seen.remove(&entry.key);
            if let Some(times) = self.per_key.get_mut(&entry.jkt) {
                times.pop_front();
                if times.is_empty() {
                    self.per_key.remove(&entry.jkt);
                }
            }
        }
    }
}

/// Whole seconds from `now` until just after `until` (both Unix ms), for `Retry-After`.
fn seconds_until_after(until: u64, now: u64) -> u64 {
    until
        .saturating_add(1)
        .saturating_sub(now)
        .div_ceil(1000)
        .max(1)
}

impl fmt::Debug for InMemoryReplayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = self.lock().seen.len();
        f.debug_struct("InMemoryReplayStore")
            .field("entries", &entries)
            .field("capacity", &self.capacity)
            .field("per_key", &self.per_key)
            .finish_non_exhaustive()
    }
}

impl InMemoryReplayStore {
    /// At most `capacity` unexpired entries; a proof key holding `per_key` or more gets
    /// another only while the store is less than half full (`per_key` at `capacity` or
    /// above: no bound per key). Time by `clock`.
    pub fn new(capacity: u64, per_key: u64, clock: Arc<dyn Clock>) -> Self {
        let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        InMemoryReplayStore {
            state: Mutex::new(State::default()),
            capacity: size(capacity),
            per_key: size(per_key),
            clock,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing in a critical section panics short of an allocation failure; the state
        // is consistent between statements.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The check behind [`ReplayStore::first_use`] and [`ReplayStore::first_use_now`].
    fn record(&self, jkt: &str, key: &[u8; 32], ttl: Duration) -> Result<bool, ReplayStoreError> {
        let now = self.clock.now_unix_ms();
        let until = now.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        let mut state = self.lock();
        state.expire(now);
        let State {
            seen,
            order,
            per_key,
            full_logged,
        } = &mut *state;
        let live = seen.len();
        // A replay is a replay (401) even when the store is full.
        let Slot::Vacant(slot) = seen.entry(*key) else {
            return Ok(false);
        };
        if live >= self.capacity {
            let oldest = order.front().map_or(until, |e| e.until);
            let retry_after = seconds_until_after(oldest, now);
            if !*full_logged {
                *full_logged = true;
                tracing::warn!(
                    capacity = self.capacity,
                    retry_after,
                    "the DPoP replay store is full of unexpired proofs: new DPoP requests get 503 until entries expire (raise the replay store capacity, or see which keys send the most proofs)"
                );
            }
            return Err(ReplayStoreError::Full { retry_after });
        }
        // Past its share, a key gets in only while the others have room to spare.
        let pressed = live.saturating_mul(2) >= self.capacity;
        let jkt = match per_key.get_key_value(jkt) {
            Some((_, times)) if times.len() >= self.per_key && pressed => {
                let oldest = times.front().copied().unwrap_or(until);
                return Err(ReplayStoreError::KeyFull {
                    retry_after: seconds_until_after(oldest, now),
                });
            }
            Some((jkt, _)) => jkt.clone(),
            None => Arc::from(jkt),
        };
        *full_logged = false;
        slot.insert(());
        per_key.entry(jkt.clone()).or_default().push_back(until);
        order.push_back(Entry {
            until,
            key: *key,
            jkt,
        });
        Ok(true)
    }
}

#[async_trait::async_trait]
impl ReplayStore for InMemoryReplayStore {
    async fn first_use(
        &self,
        jkt: &str,
        key: &[u8; 32],
        ttl: Duration,
    ) -> Result<bool, ReplayStoreError> {
        self.record(jkt, key, ttl)
    }

    fn first_use_now(
        &self,
        jkt: &str,
        key: &[u8; 32],
        ttl: Duration,
    ) -> Option<Result<bool, ReplayStoreError>> {
        Some(self.record(jkt, key, ttl))
    }
}

#[cfg(feature = "redis")]
pub use self::redis_store::RedisReplayStore;

#[cfg(feature = "redis")]
mod redis_store {
    use std::fmt;
    use std::time::Duration;

    use crate::redis_engine::{Engine, Health};

    use super::{ReplayStore, ReplayStoreError};

    /// A [`ReplayStore`] in Redis, shared by every replica (feature `redis`):
    /// `SET {prefix}dpop:{hex(key)} 1 NX PX {ttl}`. Every operation is bounded by a
    /// timeout; a failure or a timeout is [`ReplayStoreError::Unavailable`] (the request is
    /// refused with 503, never let through).
    #[derive(Clone)]
    pub struct RedisReplayStore {
        redis: Engine,
        prefix: String,
        timeout: Duration,
        per_key: u64,
        health: std::sync::Arc<Health>,
    }

    impl fmt::Debug for RedisReplayStore {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            // Never the URL: it may hold a password.
            f.debug_struct("RedisReplayStore")
                .field("prefix", &self.prefix)
                .field("timeout", &self.timeout)
                .field("per_key", &self.per_key)
                .finish_non_exhaustive()
        }
    }

    /// One proof, atomically: a replay (the entry exists) is 0; else the key's count in this
    /// window goes up (the counter lives one window from the key's first proof), and over
    /// the bound the answer is minus the milliseconds until the count expires; else the
    /// entry is set with its TTL and the answer is 1. Both keys carry the key's hash tag, so
    /// they share a Redis Cluster slot.
    const FIRST_USE: &str = r"
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if n > tonumber(ARGV[2]) then
  local left = redis.call('PTTL', KEYS[1])
  if left < 1 then left = 1 end
  return -left
end
redis.call('SET', KEYS[2], 1, 'PX', ARGV[1])
return 1
";

    impl RedisReplayStore {
        /// Connects lazily (the first check connects; reconnects are automatic) to `url`
        /// (`redis://`, `rediss://`, `unix://`), keys under `prefix`, each operation bounded
        /// by `timeout`, at most `per_key` proofs of one key per window. Call from within a
        /// tokio runtime. The error never repeats the URL.
        pub fn new(
            url: &str,
            prefix: &str,
            timeout: Duration,
            per_key: u64,
        ) -> Result<Self, ReplayStoreError> {
            let redis = Engine::connect(url, timeout)
                .map_err(|_| ReplayStoreError::Unavailable("invalid Redis URL".to_owned()))?;
            Ok(RedisReplayStore {
                redis,
                prefix: prefix.to_owned(),
                timeout,
                per_key: per_key.max(1),
                health: std::sync::Arc::new(Health::new(
                    "dpop_replay",
                    "DPoP requests are refused with 503 (a replay must never pass) until it \
                     answers again",
                )),
            })
        }

        /// The Redis keys of a proof: its key's counter and the entry, under the hash tag
        /// of the key (`{prefix}dpop-jkt:{tag}`, `{prefix}dpop:{tag}:{entry}`).
        fn redis_keys(&self, jkt: &str, key: &[u8; 32]) -> (String, String) {
            use std::fmt::Write as _;
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, jkt.as_bytes());
            let mut tag = String::with_capacity(34);
            tag.push('{');
            for b in &digest.as_ref()[..16] {
                let _ = write!(tag, "{b:02x}");
            }
            tag.push('}');
            let counter = format!("{}dpop-jkt:{tag}", self.prefix);
            let mut entry = String::with_capacity(self.prefix.len() + 40 + 64);
            let _ = write!(entry, "{}dpop:{tag}:", self.prefix);
            for b in key {
                let _ = write!(entry, "{b:02x}");
            }
            (counter, entry)
        }
    }

    #[async_trait::async_trait]
    impl ReplayStore for RedisReplayStore {
        async fn first_use(
            &self,
            jkt: &str,
            key: &[u8; 32],
            ttl: Duration,
        ) -> Result<bool, ReplayStoreError> {
            let (counter, entry) = self.redis_keys(jkt, key);
            let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            let script = redis::Script::new(FIRST_USE);
            let mut invocation = script.key(counter);
            invocation.key(entry).arg(ttl_ms).arg(self.per_key);
            let mut connection = self.redis.clone();
            let answer = tokio::time::timeout(
                self.timeout,
                invocation.invoke_async::<i64>(&mut connection),
            )
            .await;
            match answer {
                Ok(Ok(_)) => self.health.answered(),
                Ok(Err(ref e)) => self.health.failed("replay check", e),
                Err(_) => self.health.failed(
                    "replay check",
                    &format_args!("no answer within {:?}", self.timeout),
                ),
            }
            match answer {
                Ok(Ok(1)) => Ok(true),
                Ok(Ok(0)) => Ok(false),
                Ok(Ok(left_ms)) => Err(ReplayStoreError::KeyFull {
                    retry_after: left_ms.unsigned_abs().div_ceil(1000),
                }),
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

    const TTL: Duration = Duration::from_secs(65);

    fn store(capacity: u64, per_key: u64) -> (Arc<ManualClock>, InMemoryReplayStore) {
        let clock = Arc::new(ManualClock::starting_now());
        let store = InMemoryReplayStore::new(capacity, per_key, clock.clone());
        (clock, store)
    }

    fn first(store: &InMemoryReplayStore, jkt: &str, jti: &str) -> Result<bool, ReplayStoreError> {
        store.record(jkt, &replay_key(jkt, jti), TTL)
    }

    #[test]
    fn a_key_is_refused_within_its_ttl_and_accepted_after() {
        let (clock, store) = store(100, 100);
        assert_eq!(first(&store, "thumb", "jti-1"), Ok(true));
        assert_eq!(
            first(&store, "thumb", "jti-1"),
            Ok(false),
            "replay within the window"
        );
        clock.advance(Duration::from_secs(64));
        assert_eq!(
            first(&store, "thumb", "jti-1"),
            Ok(false),
            "still within the window"
        );
        clock.advance(Duration::from_secs(2));
        assert_eq!(
            first(&store, "thumb", "jti-1"),
            Ok(true),
            "forgotten after the window"
        );
        // Another key, and the same jti under another key thumbprint, are other entries.
        assert_eq!(first(&store, "thumb", "jti-2"), Ok(true));
        assert_eq!(first(&store, "other", "jti-1"), Ok(true));
    }

    /// Issue 25: the LRU store this replaced accepted the earliest proof again after
    /// 10,000 others had gone through a store of 100.
    #[test]
    fn a_full_store_forgets_no_live_entry_and_refuses_new_ones_until_the_oldest_expires() {
        let (clock, store) = store(100, 100);
        assert_eq!(first(&store, "thumb", "jti-0"), Ok(true));
        clock.advance(Duration::from_secs(10));
        for i in 1..100 {
            assert_eq!(first(&store, "thumb", &format!("jti-{i}")), Ok(true));
        }
        for i in 100..10_000 {
            // 55 s until the oldest (made 10 s ago, kept 65 s) expires.
            assert_eq!(
                first(&store, "thumb", &format!("jti-{i}")),
                Err(ReplayStoreError::Full { retry_after: 56 }),
                "proof {i} into a full store"
            );
        }
        assert_eq!(
            first(&store, "thumb", "jti-0"),
            Ok(false),
            "the earliest proof replayed"
        );
        assert_eq!(
            first(&store, "thumb", "jti-99"),
            Ok(false),
            "the latest proof replayed"
        );
        // The earliest expires: room for one, and that one only.
        clock.advance(Duration::from_secs(56));
        assert_eq!(first(&store, "thumb", "jti-0"), Ok(true));
        assert!(matches!(
            first(&store, "thumb", "late"),
            Err(ReplayStoreError::Full { .. })
        ));
        assert_eq!(first(&store, "thumb", "jti-1"), Ok(false), "still live");
        // The rest expire together.
        clock.advance(Duration::from_secs(10));
        for i in 0..99 {
            assert_eq!(first(&store, "thumb", &format!("new-{i}")), Ok(true));
        }
    }

    /// A key past its share gets in while the store is less than half full (one busy
    /// client alone is not held to a tenth of the store), then only keys under their share.
    #[test]
    fn a_key_past_its_share_fills_at_most_half_and_others_still_get_in() {
        let (clock, store) = store(10, 3);
        for i in 0..5 {
            assert_eq!(first(&store, "busy", &format!("jti-{i}")), Ok(true), "{i}");
        }
        assert_eq!(
            first(&store, "busy", "jti-5"),
            Err(ReplayStoreError::KeyFull { retry_after: 66 })
        );
        // A replay of that key is still a replay, not a 503.
        assert_eq!(first(&store, "busy", "jti-0"), Ok(false));
        // Others get their share each, and the rest of the store.
        for i in 0..3 {
            assert_eq!(first(&store, "quiet", &format!("jti-{i}")), Ok(true));
        }
        assert!(matches!(
            first(&store, "quiet", "jti-3"),
            Err(ReplayStoreError::KeyFull { .. })
        ));
        assert_eq!(first(&store, "third", "jti-0"), Ok(true));
        assert_eq!(first(&store, "third", "jti-1"), Ok(true));
        assert!(matches!(
            first(&store, "fourth", "jti-0"),
            Err(ReplayStoreError::Full { .. })
        ));
        clock.advance(Duration::from_secs(66));
        assert_eq!(first(&store, "busy", "jti-5"), Ok(true));
        // Expired keys leave nothing behind.
        clock.advance(Duration::from_secs(66));
        assert_eq!(first(&store, "other", "x"), Ok(true));
        let state = store.lock();
        assert_eq!(
            (state.seen.len(), state.order.len(), state.per_key.len()),
            (1, 1, 1)
        );
    }

    /// The reference deployment: one BFF, one DPoP key, every proof to one service. With
    /// the default bounds it gets half the store (about 770 proofs a second over the 65 s
    /// window); a hard share per key held it to 10,000 (about 150 a second).
    #[test]
    fn one_busy_client_alone_uses_half_of_the_default_store() {
        let crate::server::dpop::ReplayStoreConfig::InMemory { capacity, per_key } =
            crate::server::dpop::DpopConfig::default().replay_store
        else {
            panic!("the default store is in memory");
        };
        let (_clock, store) = store(capacity, per_key);
        for i in 0..capacity / 2 {
            assert_eq!(first(&store, "bff", &i.to_string()), Ok(true), "proof {i}");
        }
        assert!(matches!(
            first(&store, "bff", "one more"),
            Err(ReplayStoreError::KeyFull { .. })
        ));
        assert_eq!(first(&store, "another client", "jti"), Ok(true));
    }

    #[test]
    fn the_key_separates_thumbprint_and_jti() {
        assert_ne!(replay_key("ab", "c"), replay_key("a", "bc"));
    }
}
