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
//! - **Key changes invalidate it, in every tier.** When a JWKS refresh withdraws a key or
//!   replaces the material under a `kid`, the cache's *epoch* is bumped. Every entry, in
//!   the main cache and in the front, records the epoch in which its validation *began*,
//!   and a lookup serves only entries of the current epoch. So no token validated with
//!   withdrawn material is served after the refresh, whatever a concurrent lookup,
//!   insert or clear is doing at that moment: a lookup that races with the bump may copy
//!   an old entry into the front, but the copy keeps the old epoch and is never served.
//!   The physical `clear` that follows only frees memory. The `tests::model` module checks
//!   this protocol exhaustively with loom over get/insert/clear interleavings.
//! - **Lock-free front.** A BFF sends the same token thousands of times a second from
//!   several cores. Every read of the main cache takes its shard's lock, a shared
//!   cache line both cores write. So the last token seen per slot of a small direct-mapped
//!   array is kept behind an `ArcSwap` (a thread-local load, no shared write); the main
//!   cache is asked only on a front miss. A front hit compares the full token too; the
//!   slot is chosen by the token's last bytes (signature bytes), and a clash costs a miss,
//!   never a wrong answer.
//! - **No copy on a hit.** A token and its entry are stored once, in one [`Cached`] behind
//!   an `Arc` that the main tier and the front share. A front hit clones the principal
//!   (one reference count); a main hit also moves the same `Arc` into the front. Neither
//!   allocates, copies the token or clones claims, whatever the number of distinct
//!   tokens: with hundreds of callers, most requests miss the 64-slot front and are served
//!   by the main tier.
//! - **Only successes are cached**, so garbage cannot fill it. It is bounded (default 10,000
//!   entries, S3-FIFO eviction): a flood of distinct *valid* tokens, which only the issuer
//!   can mint, evicts older entries instead of growing memory. An entry holds the token,
//!   its decoded claims and the principal: about 2.3 times the token's length on the heap
//!   (1.7 KB for a 737-byte token, measured by `just bench`'s growth sweep), so about
//!   17 MB at the default bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwapOption;
use quick_cache::OptionsBuilder;
use quick_cache::sync::Cache;

use super::principal::Principal;

#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) principal: Principal,
    pub(crate) exp: u64,
    pub(crate) nbf: Option<u64>,
    /// The epoch in which the validation that produced it began.
    pub(crate) epoch: u64,
}

/// The main tier holds `capacity + capacity / HEADROOM` entries (see `ValidatedCache::new`).
const HEADROOM: usize = 8;
/// The fewest entries per shard of the main tier (see `ValidatedCache::new`).
const SHARD_ITEMS: usize = 2048;

/// Slots of the lock-free front (a power of two).
const FRONT: usize = 64;

/// A validated token and its entry, allocated once at insertion and shared by both tiers.
pub(crate) struct Cached {
    token: Arc<[u8]>,
    entry: Entry,
}

/// The main tier: a bounded concurrent map from token bytes to entries.
pub(crate) trait MainTier: Send + Sync {
    fn get(&self, token: &[u8]) -> Option<Arc<Cached>>;
    fn insert(&self, token: Arc<[u8]>, cached: Arc<Cached>);
    fn remove(&self, token: &[u8]);
    fn clear(&self);
    #[cfg(test)]
    fn len(&self) -> usize;
}

/// One slot of the front tier: an atomically replaced, possibly empty entry.
pub(crate) trait FrontSlot: Send + Sync {
    fn empty() -> Self;
    /// Runs `f` on the current entry (without taking a reference count, for ArcSwap).
    fn with<R>(&self, f: impl FnOnce(Option<&Cached>) -> R) -> R;
    fn store(&self, entry: Option<Arc<Cached>>);
}

/// The epoch counter.
pub(crate) trait EpochCell: Send + Sync {
    fn new() -> Self;
    fn load(&self) -> u64;
    /// Bumps the epoch; everything recorded before is stale from now on.
    fn bump(&self);
}

impl MainTier for Cache<Arc<[u8]>, Arc<Cached>> {
    fn get(&self, token: &[u8]) -> Option<Arc<Cached>> {
        Cache::get(self, token)
    }
    fn insert(&self, token: Arc<[u8]>, cached: Arc<Cached>) {
        Cache::insert(self, token, cached);
    }
    fn remove(&self, token: &[u8]) {
        Cache::remove(self, token);
    }
    fn clear(&self) {
        Cache::clear(self);
    }
    #[cfg(test)]
    fn len(&self) -> usize {
        Cache::len(self)
    }
}

impl FrontSlot for ArcSwapOption<Cached> {
    fn empty() -> Self {
        ArcSwapOption::empty()
    }
    fn with<R>(&self, f: impl FnOnce(Option<&Cached>) -> R) -> R {
        f(self.load().as_deref())
    }
    fn store(&self, entry: Option<Arc<Cached>>) {
        ArcSwapOption::store(self, entry);
    }
}

impl EpochCell for AtomicU64 {
    fn new() -> Self {
        AtomicU64::new(0)
    }
    fn load(&self) -> u64 {
        // Acquire pairs with the bump's release: a reader that sees the new epoch also
        // sees the key set that was swapped in before the bump.
        AtomicU64::load(self, Ordering::Acquire)
    }
    fn bump(&self) {
        self.fetch_add(1, Ordering::AcqRel);
    }
}

/// The production tiers: quick_cache (S3-FIFO), ArcSwap slots and an atomic epoch.
pub(crate) type ValidatedCache =
    Tiered<Cache<Arc<[u8]>, Arc<Cached>>, ArcSwapOption<Cached>, AtomicU64>;

/// The validated-token cache over any implementation of its three primitives. Generic so
/// that the model checker runs this very code over its own (instrumented) primitives.
pub(crate) struct Tiered<M, F, E> {
    /// Keyed by the token's bytes, so the auth layer can look a token up straight from the
    /// header, before any parsing: a hit means these exact bytes passed every check.
    main: Option<M>,
    front: Box<[F]>,
    epoch: E,
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
        // quick_cache splits its capacity evenly over shards that tokens fill unevenly, so
        // a cache made for exactly `capacity` items, with its default of 4 shards per core,
        // evicts some before it holds them all (100 of 10,000 in the test below). Shards of
        // at least SHARD_ITEMS entries each, and the headroom, make `capacity` a promise:
        // a shard's fill then strays from its share by about 2 %, the headroom is 12.5 %.
        Tiered::with_main((capacity > 0).then(|| {
            let items = capacity + capacity / HEADROOM;
            let options = OptionsBuilder::new()
                .estimated_items_capacity(items)
                .weight_capacity(items as u64)
                .shards((items / SHARD_ITEMS).max(1))
                .build();
            match options {
                Ok(options) => Cache::with_options(
                    options,
                    Default::default(),
                    Default::default(),
                    Default::default(),
                ),
                // Not reachable with these options; the defaults are the fallback.
                Err(_) => Cache::new(items),
            }
        }))
    }
}

impl<M: MainTier, F: FrontSlot, E: EpochCell> Tiered<M, F, E> {
    pub(crate) fn with_main(main: Option<M>) -> Self {
        Tiered {
            main,
            front: (0..FRONT).map(|_| F::empty()).collect(),
            epoch: E::new(),
        }
    }

    /// The current epoch; record it before a validation begins and pass it to
    /// [`insert`](Self::insert).
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load()
    }

    /// The cached principal for `token` if it is still within its validity window and was
    /// validated in the current epoch.
    pub(crate) fn get(&self, token: &[u8], now: u64, leeway: u64) -> Option<Principal> {
        let main = self.main.as_ref()?;
        let slot = &self.front[slot(token)];
        let epoch = self.epoch.load();
        // The front: a hit needs the same bytes, the current epoch and a live entry.
        let front = slot.with(|f| match f {
            Some(f) if *f.token == *token && f.entry.epoch == epoch => {
                Some(f.entry.live(now, leeway).then(|| f.entry.principal.clone()))
            }
            _ => None,
        });
        match front {
            Some(Some(principal)) => return Some(principal),
            Some(None) => slot.store(None), // expired
            None => {}
        }
        let cached = main.get(token)?;
        if cached.entry.epoch != epoch {
            // Validated with key material that has changed since: never served again.
            main.remove(token);
            return None;
        }
        if !cached.entry.live(now, leeway) {
            main.remove(token);
            return None;
        }
        let principal = cached.entry.principal.clone();
        // The front gets the same entry, with its own epoch: if a bump raced with this
        // lookup, it is stale at once and never served.
        slot.store(Some(cached));
        Some(principal)
    }

    /// Remembers a token whose validation began in `entry.epoch`. An entry from an earlier
    /// epoch is dropped: key material changed while it was being validated.
    pub(crate) fn insert(&self, token: &[u8], entry: Entry) {
        let Some(main) = &self.main else { return };
        if entry.epoch != self.epoch.load() {
            return;
        }
        let token: Arc<[u8]> = Arc::from(token);
        let cached = Arc::new(Cached {
            token: token.clone(),
            entry,
        });
        self.front[slot(&token)].store(Some(cached.clone()));
        main.insert(token, cached);
    }

    /// Invalidates everything validated so far (key material was withdrawn or replaced),
    /// then frees it. Correctness rests on the bump alone; the clearing is for memory.
    pub(crate) fn clear(&self) {
        self.epoch.bump();
        if let Some(main) = &self.main {
            for slot in self.front.iter() {
                slot.store(None);
            }
            main.clear();
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.main.as_ref().map_or(0, M::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ScopeSet;

    /// An entry whose principal's client id records the epoch it was validated in.
    pub(super) fn entry(exp: u64, nbf: Option<u64>, epoch: u64) -> Entry {
        Entry {
            principal: Principal::new(
                epoch.to_string(),
                None,
                ScopeSet::new(),
                exp,
                "i".into(),
                Default::default(),
            ),
            exp,
            nbf,
            epoch,
        }
    }

    #[test]
    fn hits_recheck_time_and_evict_expired_entries() {
        let cache = ValidatedCache::new(10);
        cache.insert(b"tok", entry(1000, Some(500), cache.epoch()));
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
            cache.insert(format!("token-{i}").as_bytes(), entry(u64::MAX, None, 0));
        }
        assert!(
            cache.len() <= 100 + 100 / HEADROOM,
            "{} entries",
            cache.len()
        );
        cache.clear();
        assert_eq!(cache.len(), 0);
        let off = ValidatedCache::new(0);
        off.insert(b"t", entry(u64::MAX, None, 0));
        assert!(off.get(b"t", 0, 0).is_none());
    }

    #[test]
    fn holds_as_many_tokens_as_its_capacity_says() {
        // A fleet of exactly `capacity` callers, each token seen again and again, round
        // robin: the worst order for a cache that holds fewer than it says.
        for capacity in [100, 10_000] {
            let cache = ValidatedCache::new(capacity);
            let tokens: Vec<Vec<u8>> = (0..capacity)
                .map(|i| format!("header.payload.signature-{i}").into_bytes())
                .collect();
            for token in &tokens {
                cache.insert(token, entry(u64::MAX, None, 0));
            }
            for round in 0..3 {
                let misses = tokens
                    .iter()
                    .filter(|t| cache.get(t, 0, 0).is_none())
                    .count();
                assert_eq!(misses, 0, "capacity {capacity}, round {round}");
            }
        }
    }

    #[test]
    fn nothing_validated_before_a_clear_survives_it() {
        let cache = ValidatedCache::new(100);
        let before = cache.epoch();
        cache.insert(b"a", entry(u64::MAX, None, before));
        assert!(cache.get(b"a", 0, 0).is_some(), "served from the front");
        cache.clear();
        assert!(
            cache.get(b"a", 0, 0).is_none(),
            "front and main cache cleared"
        );
        // A validation that began before the clear finishes after it.
        cache.insert(b"b", entry(u64::MAX, None, before));
        assert!(cache.get(b"b", 0, 0).is_none());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn a_main_entry_of_an_old_epoch_is_never_served_or_promoted() {
        // The interleaving of the race: a lookup copies a main-cache entry into the front
        // while a clear runs. Here the clear's bump has happened, its sweep has not.
        let cache = ValidatedCache::new(100);
        cache.insert(b"tok", entry(u64::MAX, None, cache.epoch()));
        cache.front[slot(b"tok")].store(None);
        cache.epoch.bump(); // the clear's first step only
        assert!(cache.get(b"tok", 0, 0).is_none(), "old entry served");
        assert!(cache.get(b"tok", 0, 0).is_none(), "old entry promoted");
    }

    #[test]
    fn front_slot_clashes_fall_back_to_the_main_cache() {
        let cache = ValidatedCache::new(100);
        // Same last 8 bytes: same front slot.
        cache.insert(b"one.12345678", entry(u64::MAX, None, 0));
        cache.insert(b"two.12345678", entry(u64::MAX, None, 0));
        for _ in 0..3 {
            assert!(cache.get(b"one.12345678", 0, 0).is_some());
            assert!(cache.get(b"two.12345678", 0, 0).is_some());
        }
        assert!(cache.get(b"three.12345678", 0, 0).is_none());
    }

    /// Threads look tokens up while another inserts and clears. A lookup that starts after
    /// a clear has begun must never return what was validated before it.
    #[test]
    fn stress_no_lookup_returns_an_entry_older_than_the_epoch_it_started_in() {
        let cache = Arc::new(ValidatedCache::new(1_000));
        let tokens: Vec<Vec<u8>> = (0..8).map(|i| format!("tok-{i}").into_bytes()).collect();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let (cache, tokens, stop) = (cache.clone(), tokens.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut hits = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        for token in &tokens {
                            let started_in = cache.epoch();
                            if let Some(p) = cache.get(token, 0, 0) {
                                let validated_in: u64 = p.client_id().parse().unwrap();
                                assert!(
                                    validated_in >= started_in,
                                    "served an entry of epoch {validated_in} in epoch {started_in}"
                                );
                                hits += 1;
                            }
                        }
                    }
                    hits
                })
            })
            .collect();
        for round in 0..20_000u64 {
            let epoch = cache.epoch();
            let token = &tokens[(round % 8) as usize];
            cache.insert(token, entry(u64::MAX, None, epoch));
            if round % 7 == 0 {
                cache.clear();
            }
        }
        stop.store(true, Ordering::Relaxed);
        let hits: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
        assert!(hits > 0, "the readers never hit: the stress proved nothing");
    }
}

/// Model checking of the epoch protocol with loom: every interleaving of a lookup, an
/// insert and a clear, over the real [`Tiered`] code with loom's primitives in place of
/// quick_cache, ArcSwap and the atomic (each of which is linearizable, as a loom mutex is).
#[cfg(test)]
mod model {
    use std::collections::HashMap;
    use std::sync::Arc;

    use loom::sync::Mutex;
    use loom::sync::atomic::{AtomicU64, Ordering};

    use super::tests::entry;
    use super::*;

    #[derive(Default)]
    struct Main(Mutex<HashMap<Vec<u8>, Arc<Cached>>>);

    impl MainTier for Main {
        fn get(&self, token: &[u8]) -> Option<Arc<Cached>> {
            self.0.lock().unwrap().get(token).cloned()
        }
        fn insert(&self, token: Arc<[u8]>, cached: Arc<Cached>) {
            self.0.lock().unwrap().insert(token.to_vec(), cached);
        }
        fn remove(&self, token: &[u8]) {
            self.0.lock().unwrap().remove(token);
        }
        fn clear(&self) {
            self.0.lock().unwrap().clear();
        }
        fn len(&self) -> usize {
            self.0.lock().unwrap().len()
        }
    }

    struct Slot(Mutex<Option<Arc<Cached>>>);

    impl FrontSlot for Slot {
        fn empty() -> Self {
            Slot(Mutex::new(None))
        }
        fn with<R>(&self, f: impl FnOnce(Option<&Cached>) -> R) -> R {
            f(self.0.lock().unwrap().as_deref())
        }
        fn store(&self, entry: Option<Arc<Cached>>) {
            *self.0.lock().unwrap() = entry;
        }
    }

    struct Epoch(AtomicU64);

    impl EpochCell for Epoch {
        fn new() -> Self {
            Epoch(AtomicU64::new(0))
        }
        fn load(&self) -> u64 {
            self.0.load(Ordering::Acquire)
        }
        fn bump(&self) {
            self.0.fetch_add(1, Ordering::AcqRel);
        }
    }

    type Model = Tiered<Main, Slot, Epoch>;

    const TOKEN: &[u8] = b"header.payload.signature";

    /// Exhaustive up to three preemptions per execution (loom's usual bound: races need
    /// few), which keeps a debug-build run to seconds.
    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(f);
    }

    /// A token validated before a clear, looked up (and possibly promoted into the front)
    /// while the clear runs: once the clear has returned, no lookup serves it.
    #[test]
    fn a_lookup_racing_a_clear_cannot_resurrect_an_entry() {
        model(|| {
            let cache = Arc::new(Model::with_main(Some(Main::default())));
            cache.insert(TOKEN, entry(u64::MAX, None, cache.epoch()));
            // Only in the main tier, so the racing lookup takes the promoting path.
            cache.front[slot(TOKEN)].store(None);
            let reader = {
                let cache = cache.clone();
                loom::thread::spawn(move || {
                    let _ = cache.get(TOKEN, 0, 0);
                })
            };
            cache.clear();
            assert!(
                cache.get(TOKEN, 0, 0).is_none(),
                "served right after the clear"
            );
            reader.join().unwrap();
            assert!(
                cache.get(TOKEN, 0, 0).is_none(),
                "served after the lookup ended"
            );
        });
    }

    /// A validation that began before a clear inserts while the clear runs, and a lookup
    /// runs too: nothing from before the clear is served afterwards.
    #[test]
    fn an_insert_racing_a_clear_cannot_outlive_it() {
        model(|| {
            let cache = Arc::new(Model::with_main(Some(Main::default())));
            let before = cache.epoch();
            let writer = {
                let cache = cache.clone();
                loom::thread::spawn(move || cache.insert(TOKEN, entry(u64::MAX, None, before)))
            };
            let reader = {
                let cache = cache.clone();
                loom::thread::spawn(move || {
                    let _ = cache.get(TOKEN, 0, 0);
                })
            };
            cache.clear();
            let after_clear = cache.get(TOKEN, 0, 0).is_none();
            writer.join().unwrap();
            reader.join().unwrap();
            assert!(after_clear, "served right after the clear");
            assert!(cache.get(TOKEN, 0, 0).is_none(), "served after everything");
        });
    }
}
