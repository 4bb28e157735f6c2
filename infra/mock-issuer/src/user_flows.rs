//! What the issuer remembers of its users' logins, and the test knobs of those flows.
//!
//! The authorization code flow (see [`crate::authorization`]), the code and refresh grants
//! (see [`crate::user_tokens`]) and logout (see [`crate::end_session`]) share this state:
//! login transactions (a login form waiting to be posted), authorization codes, refresh
//! token families and sessions (`sid`). All of it is in memory, behind `std` mutexes held
//! for short sections and never across an `.await`; a test issuer keeps records until they
//! expire and drops expired ones when it adds new ones.
//!
//! The records are judged by one clock: the system clock plus an offset that tests move
//! forward ([`crate::IssuerHandle::advance_clock`]), so "the code is 61 seconds old" needs no
//! sleep. Signed tokens keep real-time `iat`/`exp`, so validators still accept them.
//!
//! This module also adds the user-flow methods to [`crate::IssuerHandle`] (its own `impl`
//! block, so the handle's main block stays as it was).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use axum::http::StatusCode;

use crate::IssuerHandle;
use crate::state::unix_now;

/// How long an authorization code may be redeemed (RFC 6749 section 4.1.2 recommends at
/// most 10 minutes; a minute is what real servers use).
pub(crate) const CODE_LIFETIME_SECS: u64 = 60;

/// How long a login form may wait for the user.
pub(crate) const LOGIN_TRANSACTION_SECS: u64 = 600;

/// Default lifetime of each refresh token (sliding: every rotation starts a new one).
pub(crate) const DEFAULT_REFRESH_LIFETIME_SECS: u64 = 8 * 3600;

/// An authorization request that was checked and waits for the user to log in. Its key,
/// a random value, is the login form's anti-forgery token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuthorizationRequest {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    /// Granted scopes, in request order (`offline_access` already dropped when the client
    /// may not refresh).
    pub(crate) scopes: Vec<String>,
    /// The `scope` parameter as sent (the hidden field must carry it back unchanged).
    pub(crate) scope_param: String,
    pub(crate) state: Option<String>,
    pub(crate) nonce: Option<String>,
    pub(crate) code_challenge: String,
}

#[derive(Debug)]
pub(crate) struct LoginTransaction {
    pub(crate) request: AuthorizationRequest,
    pub(crate) expires_at: u64,
    pub(crate) failed_attempts: u32,
}

/// A code handed to the client, until it expires.
#[derive(Debug)]
pub(crate) struct AuthorizationCode {
    pub(crate) request: AuthorizationRequest,
    pub(crate) sub: String,
    pub(crate) sid: String,
    pub(crate) auth_time: u64,
    pub(crate) expires_at: u64,
    /// Set by the first redemption attempt: a code is good for one try.
    pub(crate) redeemed: bool,
    /// What the redemption issued, revoked if the code is presented again (RFC 6749
    /// section 4.1.2).
    pub(crate) access_token: Option<String>,
    pub(crate) refresh_family: Option<String>,
}

/// One refresh token.
#[derive(Debug)]
pub(crate) struct RefreshToken {
    pub(crate) family: String,
    pub(crate) expires_at: u64,
    /// Set when it was exchanged for a new one; presenting it again is reuse.
    pub(crate) rotated: bool,
}

/// The chain of refresh tokens that started with one authorization code.
#[derive(Debug)]
pub(crate) struct RefreshFamily {
    pub(crate) client_id: String,
    pub(crate) sub: String,
    pub(crate) sid: String,
    pub(crate) auth_time: u64,
    /// What the code granted; a refresh may ask for less, never more.
    pub(crate) scopes: Vec<String>,
    pub(crate) revoked: bool,
    /// Access tokens issued in this family (revoked with it, as RFC 7009 section 2.1
    /// suggests).
    pub(crate) access_tokens: Vec<String>,
}

#[derive(Default)]
pub(crate) struct RefreshStore {
    pub(crate) tokens: HashMap<String, RefreshToken>,
    pub(crate) families: HashMap<String, RefreshFamily>,
}

/// A logged-in session at the issuer (`sid`).
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) sub: String,
    pub(crate) ended: bool,
}

/// Counters of the user flows (read into [`crate::IssuerStats`]).
#[derive(Default)]
pub(crate) struct UserCounters {
    pub(crate) authorization_codes_issued: AtomicU64,
    pub(crate) login_failures: AtomicU64,
    pub(crate) refresh_requests: AtomicU64,
    pub(crate) refreshes: AtomicU64,
    pub(crate) refresh_reuse_detections: AtomicU64,
    pub(crate) sessions_ended: AtomicU64,
    pub(crate) refresh_tokens_revoked: AtomicU64,
}

/// Everything the user flows keep.
pub(crate) struct UserFlows {
    pub(crate) logins: Mutex<HashMap<String, LoginTransaction>>,
    pub(crate) codes: Mutex<HashMap<String, AuthorizationCode>>,
    pub(crate) refresh: Mutex<RefreshStore>,
    pub(crate) sessions: Mutex<HashMap<String, Session>>,
    pub(crate) counters: UserCounters,
    clock_offset_secs: AtomicU64,
    pub(crate) refresh_lifetime_secs: AtomicU64,
    pub(crate) refresh_delay_ms: AtomicU64,
    fail_next_refreshes: AtomicU32,
    refresh_fail_status: AtomicU32,
}

impl Default for UserFlows {
    fn default() -> Self {
        UserFlows {
            logins: Mutex::default(),
            codes: Mutex::default(),
            refresh: Mutex::default(),
            sessions: Mutex::default(),
            counters: UserCounters::default(),
            clock_offset_secs: AtomicU64::new(0),
            refresh_lifetime_secs: AtomicU64::new(DEFAULT_REFRESH_LIFETIME_SECS),
            refresh_delay_ms: AtomicU64::new(0),
            fail_next_refreshes: AtomicU32::new(0),
            refresh_fail_status: AtomicU32::new(503),
        }
    }
}

impl UserFlows {
    /// The clock the records are judged by: system time plus the tests' offset.
    pub(crate) fn now(&self) -> u64 {
        unix_now() + self.clock_offset_secs.load(Ordering::SeqCst)
    }

    /// Takes one injected refresh failure if any are left; returns its status.
    pub(crate) fn take_refresh_failure(&self) -> Option<StatusCode> {
        self.fail_next_refreshes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .ok()
            .map(|_| {
                u16::try_from(self.refresh_fail_status.load(Ordering::SeqCst))
                    .ok()
                    .and_then(|c| StatusCode::from_u16(c).ok())
                    .unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
            })
    }
}

/// Locks a mutex, going on with the data after a panic elsewhere: every section that
/// holds one of these locks leaves the maps consistent at each step.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A new random value for codes, refresh tokens, session ids and form tokens: 32 bytes,
/// base64url.
pub(crate) fn random_value() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    // Only fails without an OS RNG; a test issuer then still works (predictably).
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The user-flow endpoints and knobs of the handle.
impl IssuerHandle {
    /// `{issuer origin}/authorize`: where the authorization code flow starts (beside the
    /// token endpoint, outside a path prefix).
    pub fn authorization_endpoint(&self) -> String {
        self.state().root_url("/authorize")
    }

    /// `{issuer origin}/end_session` (OpenID Connect RP-Initiated Logout 1.0).
    pub fn end_session_endpoint(&self) -> String {
        self.state().root_url("/end_session")
    }

    /// Answers the next `n` refresh token grants with `status` before looking at the
    /// token, which stays valid: 503 is `temporarily_unavailable`, other 5xx
    /// `server_error`, 400 `invalid_grant` (the issuer "forgot" the token), 401
    /// `invalid_client`. Other token requests are not affected (but
    /// [`Self::fail_next_token_requests`] affects refreshes too).
    pub fn fail_next_refreshes(&self, n: u32, status: u16) {
        let flows = &self.state().users;
        flows
            .refresh_fail_status
            .store(u32::from(status), Ordering::SeqCst);
        flows.fail_next_refreshes.store(n, Ordering::SeqCst);
    }

    /// Delays every refresh token grant by `delay` (on top of [`Self::set_token_delay`]).
    pub fn set_refresh_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.state()
            .users
            .refresh_delay_ms
            .store(ms, Ordering::SeqCst);
    }

    /// Lifetime of refresh tokens issued from now on (whole seconds, at least 1; default
    /// 8 hours). Each rotation issues a token with a fresh lifetime.
    pub fn set_refresh_token_lifetime(&self, lifetime: Duration) {
        self.state()
            .users
            .refresh_lifetime_secs
            .store(lifetime.as_secs().max(1), Ordering::SeqCst);
    }

    /// Moves the clock that authorization codes, login forms and refresh tokens are judged
    /// by forward by `by` (whole seconds). Signed tokens keep real-time `iat` and `exp`.
    pub fn advance_clock(&self, by: Duration) {
        self.state()
            .users
            .clock_offset_secs
            .fetch_add(by.as_secs(), Ordering::SeqCst);
    }
}
