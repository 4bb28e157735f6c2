//! Wall-clock time, injectable so that tests move it instead of waiting for it.
//!
//! The [`TokenManager`](crate::client::TokenManager) (with its token cache) and the
//! [`JwtValidator`](crate::server::JwtValidator) (tokens, introspection, DPoP) read time
//! through a [`Clock`]: the system clock by default, a `ManualClock` (feature `test-util`)
//! in tests. Cached tokens carry Unix milliseconds, not `Instant`s, so that an entry means
//! the same in another process (a shared Redis cache).

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};
#[cfg(any(test, feature = "test-util"))]
use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

/// A source of wall-clock time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_unix_ms(&self) -> u64;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now_unix_ms(&self) -> u64 {
        system_now_ms()
    }
}

pub(crate) fn system_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A clock that moves only when told to (tests; feature `test-util`). It starts at the system time and should
/// only move forward: caches that also keep real-time expiry (moka) then never drop an
/// entry before this clock says it is stale.
#[cfg(any(test, feature = "test-util"))]
#[derive(Debug)]
pub struct ManualClock(AtomicU64);

#[cfg(any(test, feature = "test-util"))]
impl ManualClock {
    /// A clock standing at the current system time.
    pub fn starting_now() -> Self {
        ManualClock(AtomicU64::new(system_now_ms()))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
                Some(now.saturating_add(ms))
            });
    }
}

#[cfg(any(test, feature = "test-util"))]
impl Clock for ManualClock {
    fn now_unix_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}
