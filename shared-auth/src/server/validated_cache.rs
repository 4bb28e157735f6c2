//! The validated-token cache: a token seen before is not verified again.
//!
//! A BFF reuses one token for up to an hour, so almost every request carries a token that
//! this validator has already verified. Re-running RSA verification for it costs about
//! 25 µs; looking it up here costs about a hash of the token. The cache maps the **exact
//! token bytes** to the [`Principal`] that validation produced.
//!
//! Why this is safe:
//! - **Same bytes, same verdict.** A JWS's signature covers its header and payload.
//!   Identical bytes carry the identical signature over identical claims, so the
//!   signature, issuer, audience, type and profile checks cannot come out differently. The
//!   lookup compares the full token (a hash picks the bucket, equality decides), so a hash
//!   collision can never return another token's principal. The hasher is randomly seeded
//!   (foldhash), so collisions cannot be aimed at one bucket either.
//! - **Time is re-checked on every hit.** `exp` and `nbf` are compared with the clock (same
//!   leeway) on each hit; an expired entry is removed and the token refused.
//! - **Key removal clears it.** When a JWKS refresh drops a key, the whole cache is
//!   cleared, so no token signed by a withdrawn key outlives the refresh.
//! - **Lock-free front.** A BFF sends the same token thousands of times a second from
//!   several cores. Every read of the main cache takes its shard's lock, a shared
//!   cache line both cores write. So the last token seen per slot of a small direct-mapped
//!   array is kept behind an `ArcSwap` (a thread-local load, no shared write); the main
//!   cache is asked only on a front miss. A front hit compares the full token too; the
//!   slot is chosen by the token's last bytes (signature bytes), and a clash costs a miss,
//!   never a wrong answer.
//! - **Only successes are cached**, so garbage cannot fill it. It is bounded (default 10,000
//!   entries, S3-FIFO eviction): a flood of distinct *valid* tokens, which only the issuer
//!   can mint, evicts older entries instead of growing memory. At the bound it holds about
//!   `capacity x (token + claims)`, around 20 MB for 1 KB tokens with 1 KB of claims.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwapOption;
use quick_cache::sync::Cache;

use super::principal::Principal;

#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) principal: Principal,
    pub(crate) exp: u64,
    pub(crate) nbf: Option<u64>,
}

/// Slots of the lock-free front (a power of two).
const FRONT: usize = 64;

struct FrontEntry {
    token: Arc<[u8]>,
    entry: Entry,
    /// The epoch it was read in: an entry from before a `clear` is never served.
    epoch: u64,
}

pub(crate) struct ValidatedCache {
    /// Keyed by the token's bytes, so the auth layer can look a token up straight from the
    /// header, before any parsing: a hit means these exact bytes passed every check.
    cache: Option<Cache<Arc<[u8]>, Entry>>,
    front: Box<[ArcSwapOption<FrontEntry>]>,
    /// Bumped by every `clear`, before it clears: a lookup or validation that began
    /// earlier can then not put a token back that the clear removed.
    epoch: AtomicU64,
}

impl Entry {
    fn live(&self, now: u64, leeway: u64) -> bool {
        now <= self.exp.saturating_add(leeway)
            && self.nbf.is_none_or(|nbf| nbf <= now.saturating_add(leeway))
    }
}

/// The front slot of `token`: from its last 8 bytes, which for a JWS are signature bytes.
fn slot(token: &[u8]) -> usize {
    let tail = &token[token.len().saturating_sub(8)..];
    let mut word = [0u8; 8];
    word[..tail.len()].copy_from_slice(tail);
    let x = u64::from_le_bytes(word).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x >> 58) as usize % FRONT
}

impl ValidatedCache {
    /// A cache of `capacity` tokens; 0 disables it.
    pub(crate) fn new(capacity: usize) -> Self {
        ValidatedCache {
            cache: (capacity > 0).then(|| Cache::new(capacity)),
            front: (0..FRONT).map(|_| ArcSwapOption::empty()).collect(),
            epoch: AtomicU64::new(0),
        }
    }

    /// The current epoch; pass it to [`insert`](Self::insert) from before validation began.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The cached principal for `token` if it is still within its validity window.
    pub(crate) fn get(&self, token: &[u8], now: u64, leeway: u64) -> Option<Principal> {
        let cache = self.cache.as_ref()?;
        let slot = &self.front[slot(token)];
        let epoch = self.epoch();
        {
            let front = slot.load();
            if let Some(f) = front.as_ref()
                && f.epoch == epoch
                && *f.token == *token
            {
                if f.entry.live(now, leeway) {
                    return Some(f.entry.principal.clone());
                }
                slot.store(None);
            }
        }
        let entry = cache.get(token)?;
        if entry.live(now, leeway) {
            let principal = entry.principal.clone();
            slot.store(Some(Arc::new(FrontEntry {
                token: Arc::from(token),
                entry,
                epoch,
            })));
            Some(principal)
        } else {
            cache.remove(token);
            None
        }
    }

    /// Remembers a token validated since `epoch` began; dropped if a `clear` came since.
    pub(crate) fn insert(&self, token: &[u8], entry: Entry, epoch: u64) {
        if let Some(cache) = &self.cache {
            let token: Arc<[u8]> = Arc::from(token);
            self.front[slot(&token)].store(Some(Arc::new(FrontEntry {
                token: token.clone(),
                entry: entry.clone(),
                epoch,
            })));
            cache.insert(token.clone(), entry);
            // A clear that ran meanwhile may have missed this entry: take it back.
            if self.epoch() != epoch {
                cache.remove(&token);
            }
        }
    }

    /// Forgets everything (a signing key was withdrawn).
    pub(crate) fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(cache) = &self.cache {
            for slot in self.front.iter() {
                slot.store(None);
            }
            cache.clear();
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.cache.as_ref().map_or(0, Cache::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ScopeSet;

    fn entry(exp: u64, nbf: Option<u64>) -> Entry {
        Entry {
            principal: Principal::new(
                "c".into(),
                None,
                ScopeSet::new(),
                exp,
                "i".into(),
                Default::default(),
            ),
            exp,
            nbf,
        }
    }

    #[test]
    fn hits_recheck_time_and_evict_expired_entries() {
        let cache = ValidatedCache::new(10);
        cache.insert(b"tok", entry(1000, Some(500)), cache.epoch());
        assert!(cache.get(b"tok", 900, 60).is_some());
        assert!(cache.get(b"tok", 1059, 60).is_some(), "within leeway");
        assert!(cache.get(b"tok", 400, 60).is_none(), "before nbf - leeway");
        assert!(cache.get(b"tok", 1061, 60).is_none(), "expired");
        assert_eq!(cache.len(), 0, "expired entry removed");
        assert!(cache.get(b"other", 900, 60).is_none());
    }

    #[test]
    fn bounded_and_clearable() {
        let cache = ValidatedCache::new(100);
        for i in 0..10_000 {
            cache.insert(format!("token-{i}").as_bytes(), entry(u64::MAX, None), 0);
        }
        assert!(cache.len() <= 110, "{} entries", cache.len());
        cache.clear();
        assert_eq!(cache.len(), 0);
        let off = ValidatedCache::new(0);
        off.insert(b"t", entry(u64::MAX, None), 0);
        assert!(off.get(b"t", 0, 0).is_none());
    }

    #[test]
    fn nothing_validated_before_a_clear_survives_it() {
        let cache = ValidatedCache::new(100);
        let before = cache.epoch();
        cache.insert(b"a", entry(u64::MAX, None), before);
        assert!(cache.get(b"a", 0, 0).is_some(), "served from the front");
        cache.clear();
        assert!(
            cache.get(b"a", 0, 0).is_none(),
            "front and main cache cleared"
        );
        // A validation that began before the clear finishes after it.
        cache.insert(b"b", entry(u64::MAX, None), before);
        assert!(cache.get(b"b", 0, 0).is_none());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn front_slot_clashes_fall_back_to_the_main_cache() {
        let cache = ValidatedCache::new(100);
        // Same last 8 bytes: same front slot.
        cache.insert(b"one.12345678", entry(u64::MAX, None), 0);
        cache.insert(b"two.12345678", entry(u64::MAX, None), 0);
        for _ in 0..3 {
            assert!(cache.get(b"one.12345678", 0, 0).is_some());
            assert!(cache.get(b"two.12345678", 0, 0).is_some());
        }
        assert!(cache.get(b"three.12345678", 0, 0).is_none());
    }
}
