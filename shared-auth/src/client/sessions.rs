//! [`UserSessions`]: the users of a backend-for-frontend, their logins in progress and
//! their tokens, kept on the server; the browser holds only an opaque session id.
//!
//! - **Logins** ([`begin_login`](UserSessions::begin_login),
//!   [`complete_login`](UserSessions::complete_login)): the pending login is kept here
//!   under a random login id that the BFF gives the browser in a short-lived cookie; the
//!   callback completes only the login of the browser that began it (no login CSRF), and
//!   only once.
//! - **Sessions**: a fresh random id at each login (no fixation), an idle and an absolute
//!   lifetime, judged by the clock.
//! - **User access tokens** ([`access_token`](UserSessions::access_token)): served from the
//!   session, renewed with the refresh token ahead of expiry, **one refresh per session at
//!   a time**: concurrent requests of one session wait for the renewal in flight and use
//!   its result (a failure included: the next attempt waits five seconds), so a rotating
//!   refresh token is never presented twice (the issuer would take that for theft and end
//!   the user's session everywhere). A failure that leaves the refresh token good (a 5xx
//!   or 429, or no connection) keeps the session ([`UserTokenError::Unavailable`], 503,
//!   the current token served while it lasts); `invalid_grant`, or an outcome that may
//!   have rotated the token (a timeout, a connection lost mid-request, a 200 whose content
//!   is refused, such as an ID token for another user), ends it ([`UserTokenError::Ended`]).
//! - **Sign-out** ([`logout`](UserSessions::logout)): the session dropped, the refresh
//!   token revoked at the issuer, and the issuer's end-session URL to send the browser to.
//!
//! Sessions live in this process (moka, bounded), or in Redis (`SessionConfig::redis`),
//! shared by every replica: then a user may land on any replica, and the renewal lock is
//! the fleet's.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::TokenRequestParams;
use super::error::TokenError;
use super::login::{Callback, LoginError, UserLogin, UserLoginConfig};
use super::session_store::{Session, Store, StoreUnavailable, params_key};
use super::token_endpoint::TokenType;
use crate::clock::Clock;

/// How sessions live.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionConfig {
    /// A session unused this long ends (default 30 minutes).
    pub idle_timeout: Duration,
    /// A session ends this long after its login, used or not (default 8 hours).
    pub absolute_timeout: Duration,
    /// The access token is renewed when it has less than this left (default 60 s).
    pub renew_before: Duration,
    /// Sessions held at most in this process (default 100,000); logins in progress, a
    /// tenth of that.
    pub capacity: u64,
    /// Keep sessions in this Redis instead (feature `redis`), shared by every replica and
    /// sealed with its encryption key when set: then a user may land on any replica, and one
    /// refresh token is still presented once across the fleet.
    #[cfg(feature = "redis")]
    pub redis: Option<super::RedisCacheConfig>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Duration::from_secs(8 * 3600),
            renew_before: Duration::from_secs(60),
            capacity: 100_000,
            #[cfg(feature = "redis")]
            redis: None,
        }
    }
}

/// Why no user access token could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UserTokenError {
    /// No session by that id (never was, ended, idle or past its lifetime): log in.
    #[error("no session")]
    NoSession,
    /// The issuer refused the refresh (`invalid_grant`: revoked, expired, or reused
    /// elsewhere): the session has ended; log in again.
    #[error("the session has ended: {0}")]
    Ended(TokenError),
    /// The renewal failed for now (issuer down, slow, 5xx): the session is kept; try
    /// again shortly.
    #[error("the access token cannot be renewed now: {0}")]
    Unavailable(TokenError),
    /// The request's parameters were refused (a scope the login did not grant:
    /// `invalid_scope`, `invalid_target`, or extra parameters named like the grant's own):
    /// the session is kept; the same parameters will be refused again.
    #[error("the token parameters are refused: {0}")]
    Refused(TokenError),
}

/// An access token for a user call.
#[derive(Clone)]
pub struct UserAccessToken {
    token: String,
    token_type: TokenType,
}

impl UserAccessToken {
    /// The token, for the `Authorization` header.
    pub fn secret(&self) -> &str {
        &self.token
    }

    /// `Authorization: Bearer ...` (this half sends user tokens as bearer tokens).
    pub fn authorization(&self) -> String {
        match self.token_type {
            TokenType::DPoP => format!("DPoP {}", self.token),
            _ => format!("Bearer {}", self.token),
        }
    }
}

impl fmt::Debug for UserAccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserAccessToken([REDACTED])")
    }
}

/// What `/bff/user` shows of a session.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The user's claims (from the ID token).
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// When the session ends if used before then (Unix seconds): the idle limit, or the
    /// absolute one if sooner.
    pub expires_at: u64,
    /// A value that signs this session out when presented to the logout route (not the
    /// session id: it can appear in a page).
    pub logout_id: String,
}

/// How long after a failed renewal the next may be tried.
const RENEW_BACKOFF_MS: u64 = 5_000;

/// What a failed renewal means for the session.
enum Failure {
    /// The issuer answered and did not rotate (a 5xx or 429, or the connection was never
    /// made): the refresh token is still good; try again later.
    Transient,
    /// The issuer refused what was asked for (`invalid_scope`, `invalid_target`), not the
    /// refresh token: the session goes on, and nothing waits.
    Refused,
    /// The session cannot go on: `invalid_grant`, or an outcome that may have rotated the
    /// refresh token (a timeout, a connection lost mid-request, or a 200 whose content is
    /// refused). Presenting that refresh token again could be a reuse.
    Ended,
}

fn failure(error: &TokenError) -> Failure {
    match error {
        TokenError::Rejected { error, .. } if error == "invalid_grant" => Failure::Ended,
        TokenError::Rejected { error, .. }
            if error == "invalid_scope" || error == "invalid_target" =>
        {
            Failure::Refused
        }
        TokenError::InvalidParameters(_) => Failure::Refused,
        TokenError::Rejected { .. } | TokenError::Http { .. } | TokenError::Credential(_) => {
            Failure::Transient
        }
        TokenError::Transport(reason)
            if reason.starts_with(super::token_endpoint::CONNECTION_FAILED) =>
        {
            Failure::Transient
        }
        // Discovery cannot fail here (the endpoints are known), so a new variant that may
        // have reached the issuer counts as one that did.
        _ => Failure::Ended,
    }
}

/// See the module documentation. Cheap to clone.
#[derive(Clone)]
pub struct UserSessions(Arc<Inner>);

struct Inner {
    login: UserLogin,
    config: SessionConfig,
    clock: Arc<dyn Clock>,
    store: Store,
    /// Each session's requests in this process, one at a time: with the store's renewal
    /// lock (across replicas), what makes one refresh per session.
    locks: moka::future::Cache<String, Arc<tokio::sync::Mutex<()>>>,
}

impl fmt::Debug for UserSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserSessions")
            .field("login", &self.0.login)
            .field("shared", &self.0.store.shared())
            .finish_non_exhaustive()
    }
}

impl UserSessions {
    /// Discovers the issuer of `login` and keeps its users' sessions as `config` says,
    /// on the login's clock. Sessions in Redis: no connection is made yet (Redis is reached
    /// on first use).
    pub async fn discover(
        login: UserLoginConfig,
        config: SessionConfig,
    ) -> Result<Self, LoginError> {
        let clock = login.clock.clone();
        #[cfg(feature = "redis")]
        let store = match &config.redis {
            Some(redis) => Store::Redis(
                super::session_store::redis_store::RedisSessions::new(redis)
                    .map_err(|e| LoginError::Discovery(format!("session store: {e}")))?,
            ),
            None => Store::memory(config.capacity, config.idle_timeout),
        };
        #[cfg(not(feature = "redis"))]
        let store = Store::memory(config.capacity, config.idle_timeout);
        let locks = moka::future::Cache::builder()
            .max_capacity(config.capacity)
            .time_to_idle(Duration::from_secs(600))
            .build();
        Ok(UserSessions(Arc::new(Inner {
            login: UserLogin::discover(login).await?,
            config,
            clock,
            store,
            locks,
        })))
    }

    /// How long a session is kept after `now`: to its idle or its absolute end.
    fn keep_for(&self, session: &Session, now: u64) -> Duration {
        let idle_end = now.saturating_add(self.0.config.idle_timeout.as_millis() as u64);
        let absolute_end = session
            .created_ms
            .saturating_add(self.0.config.absolute_timeout.as_millis() as u64);
        Duration::from_millis(idle_end.min(absolute_end).saturating_sub(now).max(1))
    }

    /// The issuer the users log in at.
    pub fn issuer(&self) -> &str {
        self.0.login.issuer()
    }

    /// Starts a login: the issuer URL to send the browser to, and the login id to give
    /// the browser (in a cookie) for the callback. `return_to` must be a local path.
    pub async fn begin_login(&self, return_to: &str) -> Result<(String, String), LoginError> {
        let (url, pending) = self.0.login.begin(return_to)?;
        let login_id = crate::jose::compact::random(32);
        self.0
            .store
            .put_pending(&login_id, &pending)
            .await
            .map_err(|e| LoginError::Discovery(format!("session store: {}", e.0)))?;
        Ok((url, login_id))
    }

    /// Completes the login of `login_id` (the browser's cookie) from the issuer's
    /// callback: a new session id and the local path to return to. A login is completed
    /// at most once, whatever the outcome.
    pub async fn complete_login(
        &self,
        login_id: &str,
        callback: &Callback,
    ) -> Result<(String, String), LoginError> {
        let pending = self
            .0
            .store
            .take_pending(login_id)
            .await
            .map_err(|e| LoginError::Discovery(format!("session store: {}", e.0)))?
            .ok_or(LoginError::Callback(
                "no login in progress for this browser",
            ))?;
        let tokens = self.0.login.complete(&pending, callback).await?;
        let now = self.0.clock.now_unix_ms();
        let session_id = crate::jose::compact::random(32);
        let session = Session {
            tokens,
            created_ms: now,
            last_seen_ms: now,
            logout_id: crate::jose::compact::random(32),
            renew_not_before_ms: 0,
            other_tokens: Default::default(),
            rejection_renewed_ms: 0,
        };
        tracing::debug!(subject = %session.tokens.subject(), "user logged in");
        metrics::counter!(crate::metrics::USER_LOGINS).increment(1);
        self.0
            .store
            .save(&session_id, &session, self.keep_for(&session, now))
            .await
            .map_err(|e| LoginError::Discovery(format!("session store: {}", e.0)))?;
        Ok((session_id, pending.return_to))
    }

    /// The session, if it exists and is within its lifetimes (an ended one is removed).
    /// The caller holds the session's in-process lock.
    async fn live(&self, session_id: &str, now: u64) -> Result<Option<Session>, UserTokenError> {
        let Some(session) = self.0.store.load(session_id).await.map_err(unavailable)? else {
            return Ok(None);
        };
        let idle = now.saturating_sub(session.last_seen_ms)
            > self.0.config.idle_timeout.as_millis() as u64;
        let old = now.saturating_sub(session.created_ms)
            > self.0.config.absolute_timeout.as_millis() as u64;
        if idle || old {
            let _ = self.0.store.remove(session_id).await;
            return Ok(None);
        }
        Ok(Some(session))
    }

    /// The session's in-process lock.
    async fn local_lock(&self, session_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.0
            .locks
            .get_with(session_id.to_owned(), async { Arc::default() })
            .await
    }

    /// Saves `session` as seen `now` (the idle limit starts again).
    async fn save(
        &self,
        session_id: &str,
        session: &mut Session,
        now: u64,
    ) -> Result<(), UserTokenError> {
        session.last_seen_ms = now;
        self.0
            .store
            .save(session_id, session, self.keep_for(session, now))
            .await
            .map_err(unavailable)
    }

    /// [`save`](Self::save) for a session that only was used: skipped when it was last
    /// saved less than a minute ago, so a busy user's requests do not each write to the
    /// store (the idle limit is then judged to the minute).
    async fn touch(
        &self,
        session_id: &str,
        session: &mut Session,
        now: u64,
    ) -> Result<(), UserTokenError> {
        if now.saturating_sub(session.last_seen_ms) < TOUCH_EVERY_MS {
            return Ok(());
        }
        // Under the fleet's lock, on the stored session read again: a copy read before
        // another replica rotated the refresh token must never be written back (the old
        // refresh token presented again would look like theft). A replica renewing now
        // saves the session anyway: then no touch is needed.
        let Some(owner) = self.0.store.lock(session_id).await.map_err(unavailable)? else {
            return Ok(());
        };
        let result = match self.live(session_id, now).await {
            Ok(Some(mut fresh)) => {
                let saved = self.save(session_id, &mut fresh, now).await;
                *session = fresh;
                saved
            }
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        self.0.store.unlock(session_id, &owner).await;
        result
    }

    /// The session's fleet lock for removing it (sign-out): waits a little for a renewal
    /// in progress, so that its save cannot bring the session back after the removal.
    async fn lock_for_removal(&self, session_id: &str) -> Option<String> {
        let mut pause = Duration::from_millis(20);
        for _ in 0..8 {
            match self.0.store.lock(session_id).await {
                Ok(Some(owner)) => return Some(owner),
                Ok(None) => {}
                Err(_) => return None,
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
        None
    }

    /// Who the session's user is, and until when the session lasts.
    pub async fn info(&self, session_id: &str) -> Option<SessionInfo> {
        let lock = self.local_lock(session_id).await;
        let _held = lock.lock().await;
        let now = self.0.clock.now_unix_ms();
        let mut session = self.live(session_id, now).await.ok()??;
        self.touch(session_id, &mut session, now).await.ok()?;
        let idle_end = session.last_seen_ms + self.0.config.idle_timeout.as_millis() as u64;
        let absolute_end = session.created_ms + self.0.config.absolute_timeout.as_millis() as u64;
        Some(SessionInfo {
            claims: session.tokens.claims().clone(),
            expires_at: idle_end.min(absolute_end) / 1000,
            logout_id: session.logout_id.clone(),
        })
    }

    /// The user's access token for a call, renewed first when it has less than
    /// `renew_before` left, or at once with `params.force_renewal`.
    ///
    /// `TokenRequestParams::default()` asks for the login's own token. A narrower `scope`,
    /// a `resource` (RFC 8707) or `extra` parameters (a tenant) ask for a token of their
    /// own, got with the session's refresh token and kept in the session beside the login's
    /// (Duende's `UserTokenRequestParameters`): two parameter sets never share a token, and
    /// the refresh token rotates once for whichever is renewed. One renewal per session at
    /// a time, across replicas when the sessions are in Redis: see the module documentation.
    pub async fn access_token(
        &self,
        session_id: &str,
        params: &TokenRequestParams,
    ) -> Result<UserAccessToken, UserTokenError> {
        let need = if params.force_renewal {
            Need::Force
        } else {
            Need::Current
        };
        match self.token(session_id, params, need).await? {
            Some(token) => Ok(token),
            // Only a replacement may come back empty.
            None => Err(UserTokenError::NoSession),
        }
    }

    /// After a downstream 401 for `rejected`: the token to retry with, or `None` when no
    /// retry is worth it. The session's token if it was renewed since `rejected` was
    /// taken; otherwise a renewal, at most one per session per 30 s (a downstream that
    /// refuses every token costs one refresh per user per 30 s, not one per call).
    pub(crate) async fn renew_rejected(
        &self,
        session_id: &str,
        params: &TokenRequestParams,
        rejected: &str,
    ) -> Result<Option<UserAccessToken>, UserTokenError> {
        self.token(session_id, params, Need::Replace(rejected.to_owned()))
            .await
    }

    async fn token(
        &self,
        session_id: &str,
        params: &TokenRequestParams,
        need: Need,
    ) -> Result<Option<UserAccessToken>, UserTokenError> {
        params.check().map_err(UserTokenError::Refused)?;
        let key = params_key(params);
        let key = key.as_deref();
        // This process's requests of the session, one at a time: the others wait here, then
        // find the renewed token.
        let lock = self.local_lock(session_id).await;
        let _held = lock.lock().await;
        let now = self.0.clock.now_unix_ms();
        let mut session = self
            .live(session_id, now)
            .await?
            .ok_or(UserTokenError::NoSession)?;
        let expires = |s: &Session| s.token(key).map_or(0, |(_, _, at)| at);
        let still_valid = |s: &Session| now < expires(s);
        let renew_before = self.0.config.renew_before.as_millis() as u64;
        match &need {
            Need::Current if now < expires(&session).saturating_sub(renew_before) => {
                self.touch(session_id, &mut session, now).await?;
                return Ok(Some(token_of(&session, key)));
            }
            Need::Replace(rejected) => {
                let renewed_since = session
                    .token(key)
                    .is_some_and(|(token, _, _)| token != rejected.as_str());
                if renewed_since && still_valid(&session) {
                    return Ok(Some(token_of(&session, key)));
                }
                let last = session.rejection_renewed_ms;
                if last != 0 && now.saturating_sub(last) < REJECTION_INTERVAL_MS {
                    tracing::debug!(subject = %session.tokens.subject(), "401 from downstream; renewal skipped (renewed after a 401 less than 30 s ago)");
                    return Ok(None);
                }
            }
            Need::Current | Need::Force => {}
        }
        let force = !matches!(need, Need::Current);
        if now < session.renew_not_before_ms {
            // A renewal just failed (this request may have waited for it): its outcome
            // stands until the back-off has passed.
            if still_valid(&session) && !force {
                return Ok(Some(token_of(&session, key)));
            }
            return Err(UserTokenError::Unavailable(TokenError::Http {
                status: 503,
            }));
        }
        if session.tokens.refresh_token.is_none() {
            if key.is_some() {
                return Err(UserTokenError::Refused(TokenError::InvalidParameters(
                    "the session has no refresh token (log in with offline_access) to get a \
                     token for other parameters"
                        .into(),
                )));
            }
            // Nothing to renew with (no offline_access): the login lasts as its token does.
            if still_valid(&session) && !force {
                return Ok(Some(token_of(&session, key)));
            }
            let _ = self.0.store.remove(session_id).await;
            return Err(UserTokenError::NoSession);
        }
        // The fleet's renewal lock; another replica holding it is renewing this session:
        // wait for its result (bounded), never renew beside it.
        let seen = expires(&session);
        let waited = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(20);
        let owner = loop {
            if let Some(owner) = self.0.store.lock(session_id).await.map_err(unavailable)? {
                break owner;
            }
            if waited.elapsed() > WAIT_FOR_OTHER_REPLICA {
                if still_valid(&session) && !force {
                    return Ok(Some(token_of(&session, key)));
                }
                return Err(UserTokenError::Unavailable(TokenError::Timeout(
                    WAIT_FOR_OTHER_REPLICA,
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(250));
            match self.live(session_id, now).await? {
                None => return Err(UserTokenError::NoSession),
                Some(fresh) if fresh.token(key).is_some() && expires(&fresh) != seen => {
                    return Ok(Some(token_of(&fresh, key)));
                }
                Some(fresh) => session = fresh,
            }
        };
        // The renewal runs as a task of its own: a caller that goes away (a browser that
        // closes the tab) must not cut it between the issuer's answer and the save, or the
        // rotated refresh token would be lost and the old one presented next time.
        let this = self.clone();
        let (id, key_owned, params_owned) = (
            session_id.to_owned(),
            key.map(str::to_owned),
            params.clone(),
        );
        // In the trace of the request that needed it.
        let renewal = tokio::spawn(crate::trace::in_current_context(
            tracing::Instrument::instrument(
                async move {
                    let result = this
                        .renew(&id, key_owned.as_deref(), &params_owned, seen, &need, now)
                        .await;
                    this.0.store.unlock(&id, &owner).await;
                    result
                },
                tracing::Span::current(),
            ),
        ));
        match renewal.await {
            Ok(result) => result.map(Some),
            Err(_) => Err(UserTokenError::Unavailable(TokenError::Transport(
                "the renewal task ended without an answer".into(),
            ))),
        }
    }

    /// The renewal itself, under the fleet's lock: the session read again first (another
    /// replica may have renewed it since this one looked).
    async fn renew(
        &self,
        session_id: &str,
        key: Option<&str>,
        params: &TokenRequestParams,
        seen: u64,
        need: &Need,
        now: u64,
    ) -> Result<UserAccessToken, UserTokenError> {
        let mut session = self
            .live(session_id, now)
            .await?
            .ok_or(UserTokenError::NoSession)?;
        let expires = session.token(key).map_or(0, |(_, _, at)| at);
        if expires != seen && !matches!(need, Need::Force) {
            return Ok(token_of(&session, key));
        }
        if matches!(need, Need::Replace(_)) {
            session.rejection_renewed_ms = now;
        }
        let still_valid = now < expires;
        match self.0.login.refresh(&session.tokens, params).await {
            Ok(renewed) => {
                metrics::counter!(crate::metrics::USER_TOKEN_REFRESHES, "outcome" => "success")
                    .increment(1);
                tracing::debug!(subject = %renewed.subject(), "user access token renewed");
                session.renewed(key, renewed, now);
                session.renew_not_before_ms = 0;
                self.save(session_id, &mut session, now).await?;
                Ok(token_of(&session, key))
            }
            Err(error) => match failure(&error) {
                Failure::Ended => {
                    metrics::counter!(crate::metrics::USER_TOKEN_REFRESHES, "outcome" => "ended")
                        .increment(1);
                    tracing::info!(%error, "the refresh failed in a way that ends the session");
                    let _ = self.0.store.remove(session_id).await;
                    Err(UserTokenError::Ended(error))
                }
                Failure::Refused => {
                    metrics::counter!(crate::metrics::USER_TOKEN_REFRESHES, "outcome" => "refused")
                        .increment(1);
                    tracing::debug!(%error, "the issuer refused the parameters of a user token; the session is kept");
                    self.save(session_id, &mut session, now).await?;
                    Err(UserTokenError::Refused(error))
                }
                Failure::Transient => {
                    metrics::counter!(crate::metrics::USER_TOKEN_REFRESHES, "outcome" => "error")
                        .increment(1);
                    tracing::warn!(%error, "the user access token could not be renewed; the session is kept");
                    session.renew_not_before_ms =
                        self.0.clock.now_unix_ms().saturating_add(RENEW_BACKOFF_MS);
                    self.save(session_id, &mut session, now).await?;
                    // Still usable for what is left of it.
                    if still_valid && matches!(need, Need::Current) {
                        return Ok(token_of(&session, key));
                    }
                    Err(UserTokenError::Unavailable(error))
                }
            },
        }
    }

    /// Ends a session the BFF itself retires (the browser logs in again while signed in, so
    /// its old session must not stay usable): drops it and revokes its refresh token. No
    /// end-session redirect: the user is still at the issuer.
    pub async fn end(&self, session_id: &str) {
        let owner = self.lock_for_removal(session_id).await;
        let removed = self.0.store.remove(session_id).await;
        if let Some(owner) = owner {
            self.0.store.unlock(session_id, &owner).await;
        }
        let Ok(Some(session)) = removed else {
            return;
        };
        if let Err(error) = self.0.login.revoke(&session.tokens).await {
            tracing::warn!(%error, "the refresh token of a replaced session could not be revoked");
        }
    }

    /// Signs the session out: drops it, revokes its refresh token at the issuer (a failure
    /// is logged, the sign-out goes on), and returns the issuer's end-session URL, if it
    /// has one. `logout_id` must be the session's own ([`SessionInfo::logout_id`]), so a
    /// page elsewhere cannot sign the user out.
    pub async fn logout(
        &self,
        session_id: &str,
        logout_id: &str,
    ) -> Result<Option<String>, UserTokenError> {
        let session = self
            .0
            .store
            .load(session_id)
            .await
            .map_err(unavailable)?
            .ok_or(UserTokenError::NoSession)?;
        let matches = aws_lc_rs::constant_time::verify_slices_are_equal(
            session.logout_id.as_bytes(),
            logout_id.as_bytes(),
        )
        .is_ok();
        if !matches {
            return Err(UserTokenError::NoSession);
        }
        let owner = self.lock_for_removal(session_id).await;
        // Removed as stored now: a renewal that ended meanwhile rotated the refresh token.
        let session = match self.0.store.remove(session_id).await {
            Ok(Some(current)) => current,
            _ => session,
        };
        if let Some(owner) = owner {
            self.0.store.unlock(session_id, &owner).await;
        }
        if let Err(error) = self.0.login.revoke(&session.tokens).await {
            tracing::warn!(%error, "the refresh token could not be revoked at sign-out");
        }
        metrics::counter!(crate::metrics::USER_LOGOUTS).increment(1);
        Ok(self.0.login.end_session_url(&session.tokens, None))
    }
}

/// A used session is saved again (its idle limit restarted) at most this often.
const TOUCH_EVERY_MS: u64 = 60_000;

/// How long a request waits for another replica's renewal of its session.
const WAIT_FOR_OTHER_REPLICA: Duration = Duration::from_secs(10);

fn unavailable(error: StoreUnavailable) -> UserTokenError {
    tracing::warn!(error = %error.0, "the session store did not answer");
    UserTokenError::Unavailable(TokenError::Transport(format!("session store: {}", error.0)))
}

/// The session's token for `key` (the caller made sure there is one).
fn token_of(session: &Session, key: Option<&str>) -> UserAccessToken {
    let (token, token_type) = session
        .token(key)
        .map_or((String::new(), TokenType::Bearer), |(t, ty, _)| {
            (t.to_owned(), ty)
        });
    UserAccessToken { token, token_type }
}

/// What [`UserSessions::token`] is asked for.
enum Need {
    /// The token, renewed when due.
    Current,
    /// A new token (`force_renewal`).
    Force,
    /// A token other than this one, which a downstream refused with 401.
    Replace(String),
}

/// After a downstream 401, a session's token is renewed at most once per this interval.
const REJECTION_INTERVAL_MS: u64 =
    super::token_manager::REJECTION_RENEWAL_INTERVAL.as_millis() as u64;
