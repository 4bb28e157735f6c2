//! The token manager's single flight: per cache key, the token request in progress (a
//! [`Flight`] its callers wait on), the latest failure (the negative cache) and the last
//! renewal after a 401; and the map of those slots, swept of idle ones.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::{MAX_IDLE_SLOTS, REJECTION_RENEWAL_INTERVAL};
use crate::client::credentials::AccessToken;
use crate::client::error::TokenError;
use crate::client::token_cache::{CacheKey, CachedToken};

/// What a flight delivers to its callers.
pub(super) type Outcome = Result<CachedToken, TokenError>;

/// A token request in progress for one key; callers wait on `outcome`.
#[derive(Clone)]
pub(super) struct Flight {
    pub(super) outcome: watch::Receiver<Option<Outcome>>,
}

impl Flight {
    /// Waits for the outcome. The flight is a task of its own; only if that task died (a
    /// panic, or the runtime shutting down) does the channel close without one.
    pub(super) async fn wait(mut self) -> Outcome {
        match self.outcome.wait_for(Option::is_some).await {
            Ok(outcome) => outcome
                .clone()
                .unwrap_or_else(|| Err(TokenError::Transport("token request aborted".into()))),
            Err(_) => Err(TokenError::Transport("token request aborted".into())),
        }
    }
}

/// Per cache key: the flight in progress, and the latest failure.
#[derive(Default)]
pub(super) struct Slot {
    pub(super) flight: Mutex<Option<Flight>>,
    pub(super) failure: Mutex<Option<(u64, TokenError)>>,
    /// When a downstream 401 last caused a renewal of this key (Unix ms; 0: never). Per
    /// key, so that one tenant's rejected token does not hold back another's renewal.
    pub(super) last_rejection_renewal_ms: AtomicU64,
}

/// [`REJECTION_RENEWAL_INTERVAL`] in ms.
const REJECTION_INTERVAL_MS: u64 = REJECTION_RENEWAL_INTERVAL.as_millis() as u64;

impl Slot {
    pub(super) fn recent_failure(&self, now: u64) -> Option<TokenError> {
        let failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        match &*failure {
            Some((until, error)) if now < *until => Some(error.clone()),
            _ => None,
        }
    }

    /// Whether this key's once-per-interval renewal after a 401 is free (not taken).
    pub(super) fn rejection_renewal_due(&self, now: u64) -> bool {
        let previous = self.last_rejection_renewal_ms.load(Ordering::SeqCst);
        previous == 0 || now.saturating_sub(previous) >= REJECTION_INTERVAL_MS
    }

    /// Claims this key's once-per-interval renewal after a 401.
    pub(super) fn take_rejection_renewal(&self, now: u64) -> bool {
        let last = &self.last_rejection_renewal_ms;
        let previous = last.load(Ordering::SeqCst);
        let due = previous == 0 || now.saturating_sub(previous) >= REJECTION_INTERVAL_MS;
        due && last
            .compare_exchange(previous, now, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    pub(super) fn set_failure(&self, value: Option<(u64, TokenError)>) {
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = value;
    }

    pub(super) fn flight(&self) -> std::sync::MutexGuard<'_, Option<Flight>> {
        self.flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether nothing refers to this slot but the map: no flight, no remembered failure,
    /// no 401 renewal within the interval.
    pub(super) fn is_idle(self: &Arc<Self>, now: u64) -> bool {
        let last_rejection = self.last_rejection_renewal_ms.load(Ordering::SeqCst);
        Arc::strong_count(self) == 1
            && self.flight().is_none()
            && self.recent_failure(now).is_none()
            && (last_rejection == 0 || now.saturating_sub(last_rejection) >= REJECTION_INTERVAL_MS)
    }
}

/// The per-key slots, swept of idle ones when they pass a bound.
#[derive(Default)]
pub(super) struct Slots {
    pub(super) map: HashMap<CacheKey, Arc<Slot>>,
    /// Sweep when the map grows past this.
    pub(super) sweep_at: usize,
}

/// What a flight must come back with.
#[derive(Clone)]
pub(super) enum Want {
    /// Any fresh token (a cache miss).
    Fresh,
    /// A fresh token other than this one (a renewal after a 401, or a forced renewal of
    /// the cached token).
    Replace(Option<AccessToken>),
    /// A fresh token that is not yet due for renewal (refresh ahead).
    Renewed,
}

impl Slots {
    /// The key's slot, created if needed. Sweeps idle slots when the map passes its bound.
    pub(super) fn slot(&mut self, key: &CacheKey, now: u64) -> Arc<Slot> {
        if let Some(slot) = self.map.get(key) {
            return slot.clone();
        }
        if self.map.len() >= self.sweep_at.max(MAX_IDLE_SLOTS) {
            self.map.retain(|_, slot| !slot.is_idle(now));
            // Busy slots stay; sweep again only after as many new ones arrived.
            self.sweep_at = self.map.len() * 2;
        }
        self.map.entry(key.clone()).or_default().clone()
    }
}
