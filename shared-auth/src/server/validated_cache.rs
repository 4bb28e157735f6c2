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
//! - **Only successes are cached**, so garbage cannot fill it. It is bounded (default 10,000
//!   entries, S3-FIFO eviction): a flood of distinct *valid* tokens, which only the issuer
//!   can mint, evicts older entries instead of growing memory. At the bound it holds about
//!   `capacity x (token + claims)`, around 20 MB for 1 KB tokens with 1 KB of claims.

use std::sync::Arc;

use quick_cache::sync::Cache;

use super::principal::Principal;

#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) principal: Principal,
    pub(crate) exp: u64,
    pub(crate) nbf: Option<u64>,
}

pub(crate) struct ValidatedCache {
    /// Keyed by the token's bytes, so the auth layer can look a token up straight from the
    /// header, before any parsing: a hit means these exact bytes passed every check.
    cache: Option<Cache<Arc<[u8]>, Entry>>,
}

impl ValidatedCache {
    /// A cache of `capacity` tokens; 0 disables it.
    pub(crate) fn new(capacity: usize) -> Self {
        ValidatedCache {
            cache: (capacity > 0).then(|| Cache::new(capacity)),
        }
    }

    /// The cached principal for `token` if it is still within its validity window.
    pub(crate) fn get(&self, token: &[u8], now: u64, leeway: u64) -> Option<Principal> {
        let cache = self.cache.as_ref()?;
        let entry = cache.get(token)?;
        let live = now <= entry.exp.saturating_add(leeway)
            && entry
                .nbf
                .is_none_or(|nbf| nbf <= now.saturating_add(leeway));
        if live {
            Some(entry.principal)
        } else {
            cache.remove(token);
            None
        }
    }

    pub(crate) fn insert(&self, token: &[u8], entry: Entry) {
        if let Some(cache) = &self.cache {
            cache.insert(Arc::from(token), entry);
        }
    }

    /// Forgets everything (a signing key was withdrawn).
    pub(crate) fn clear(&self) {
        if let Some(cache) = &self.cache {
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
        cache.insert(b"tok", entry(1000, Some(500)));
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
            cache.insert(format!("token-{i}").as_bytes(), entry(u64::MAX, None));
        }
        assert!(cache.len() <= 110, "{} entries", cache.len());
        cache.clear();
        assert_eq!(cache.len(), 0);
        let off = ValidatedCache::new(0);
        off.insert(b"t", entry(u64::MAX, None));
        assert!(off.get(b"t", 0, 0).is_none());
    }
}
