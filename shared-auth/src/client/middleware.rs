//! [`ClientCredentialsMiddleware`]: `Authorization: Bearer` (or `DPoP` with a proof) for
//! every request of a `reqwest-middleware` client.
//!
//! - A DPoP-bound token (the client has a DPoP key, `with_dpop`, and the issuer bound
//!   the token) goes as `Authorization: DPoP <token>` with a fresh `DPoP` proof for the
//!   request's method and URL. A `DPoP-Nonce` in any answer is remembered for the origin;
//!   a 401 `DPoP error="use_dpop_nonce"` is answered by sending the request once more with
//!   a proof that carries the new nonce, whatever its method (the server refused it before
//!   it ran), when its body can be copied.
//! - If no token can be had, the request is **not sent**: the caller gets an error that
//!   wraps the [`TokenError`] (see [`TokenError::of`]). Duende sends it unauthenticated.
//! - On a 401 from downstream it renews the token and retries **once**, but only when all
//!   of these hold:
//!   - the challenge asks for it: `WWW-Authenticate: Bearer` (or `DPoP`) with `error="invalid_token"`
//!     or with no `error` (a 401 without a challenge counts as that); an
//!     `invalid_request` or any other error is the caller's to fix, and a new token
//!     would not change it;
//!   - the request may be sent twice: an idempotent method (GET, HEAD, OPTIONS, TRACE,
//!     PUT, DELETE), or any method whose request carries the [`ReplayOn401`] extension;
//!     and its body can be cloned;
//!   - the token manager has a token to retry with: one renewed since (no request), or a
//!     new one, at most once per client per
//!     [`REJECTION_RENEWAL_INTERVAL`](super::REJECTION_RENEWAL_INTERVAL). A downstream
//!     that rejects every token therefore costs one token request per client per 30 s,
//!     not one per call.
//!
//!   Otherwise the 401 is returned to the caller as it is, as is a second 401.

use std::sync::Arc;

use http::Extensions;
use reqwest::header::AUTHORIZATION;
use reqwest::{Request, Response, StatusCode};
use reqwest_middleware::{Middleware, Next};

use super::delegation::OnBehalfOf;
use super::error::TokenError;
use super::sessions::{UserSessions, UserTokenError};
use super::token_manager::{ManagedClient, PreparedToken, TokenExchange, TokenRequestParams};

/// Derives a request's token parameters from the request itself (`with_token_request`
/// of either middleware); none: the client's or the login's own.
#[derive(Clone, Default)]
struct Derive(Option<Arc<DeriveFn>>);

type DeriveFn = dyn Fn(&Request) -> TokenRequestParams + Send + Sync;

impl Derive {
    fn new(derive: impl Fn(&Request) -> TokenRequestParams + Send + Sync + 'static) -> Self {
        Derive(Some(Arc::new(derive)))
    }

    fn params(&self, request: &Request) -> TokenRequestParams {
        self.0
            .as_ref()
            .map_or_else(TokenRequestParams::default, |derive| derive(request))
    }

    fn is_set(&self) -> bool {
        self.0.is_some()
    }
}

/// Attaches a managed client-credentials token to every request.
#[derive(Clone)]
pub struct ClientCredentialsMiddleware {
    client: ManagedClient,
    derive: Derive,
    /// Set: each request's token is exchanged for this, on behalf of its [`OnBehalfOf`]
    /// subject (the `TokenExchangeMiddleware`).
    pub(super) exchange: Option<Arc<TokenExchange>>,
}

impl std::fmt::Debug for ClientCredentialsMiddleware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentialsMiddleware")
            .field("client", &self.client)
            .field("derives_parameters", &self.derive.is_set())
            .finish()
    }
}

impl ClientCredentialsMiddleware {
    /// Attaches the tokens of `client` (a handle from `TokenManager::register`).
    pub fn new(client: ManagedClient) -> Self {
        ClientCredentialsMiddleware {
            client,
            derive: Derive::default(),
            exchange: None,
        }
    }

    /// Derives each request's token parameters from the request (Duende's
    /// `ITokenRequestCustomizer`), for a multi-tenant service: a tenant header or a path
    /// segment becomes a scope, a resource or an extra form parameter. The derived
    /// parameters are part of the cache key, so two tenants never share a token; a request
    /// that derives nothing (`TokenRequestParams::default()`) takes the client's own token
    /// at the usual cost. The function runs on every request: keep it cheap, and derive
    /// only from what the service itself set (not from a value a caller chose freely,
    /// unless that caller may have any tenant's token).
    pub fn with_token_request(
        mut self,
        derive: impl Fn(&Request) -> TokenRequestParams + Send + Sync + 'static,
    ) -> Self {
        self.derive = Derive::new(derive);
        self
    }
}

impl TokenError {
    /// The `TokenError` inside a middleware error, if that is why a request was not sent
    /// (no token could be had: answer 503, not 502).
    pub fn of(error: &reqwest_middleware::Error) -> Option<&TokenError> {
        match error {
            reqwest_middleware::Error::Middleware(e) => e.downcast_ref::<TokenError>(),
            reqwest_middleware::Error::Reqwest(_) => None,
        }
    }
}

/// Marks a request with a non-idempotent method (POST, PATCH) as safe to send again after
/// a 401 and a token renewal. Add it with `RequestBuilder::with_extension(ReplayOn401)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayOn401;

/// Whether a 401's challenges allow a renewal: a `Bearer` or `DPoP` challenge whose
/// `error` is `invalid_token` or absent, or no challenge at all.
fn challenge_allows_renewal(headers: &http::HeaderMap) -> bool {
    let mut challenges = headers
        .get_all(http::header::WWW_AUTHENTICATE)
        .iter()
        .peekable();
    if challenges.peek().is_none() {
        return true;
    }
    challenges.any(|value| {
        let Ok(value) = value.to_str() else {
            return false;
        };
        let (scheme, params) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
        if !scheme.eq_ignore_ascii_case("bearer") && !scheme.eq_ignore_ascii_case("dpop") {
            return false;
        }
        match auth_param(params, "error") {
            None => true,
            Some(error) => error == "invalid_token",
        }
    })
}

/// Whether a 401 asks for a DPoP nonce (RFC 9449 section 9).
fn asks_for_dpop_nonce(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(http::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|value| {
            let (scheme, params) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
            scheme.eq_ignore_ascii_case("dpop")
                && auth_param(params, "error") == Some("use_dpop_nonce")
        })
}

/// The value of `name` in a challenge's comma-separated `auth-param`s (quoted or token).
fn auth_param<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = params;
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        if rest.is_empty() {
            return None;
        }
        let (key, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            // Quoted-string; our values of interest hold no escaped quote.
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim(), &after[end..])
        };
        if key.trim().eq_ignore_ascii_case(name) {
            return Some(value);
        }
        rest = tail;
    }
}

fn replayable(request: &Request, extensions: &Extensions) -> bool {
    use reqwest::Method;
    matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    ) || extensions.get::<ReplayOn401>().is_some()
}

impl ClientCredentialsMiddleware {
    /// Puts the token on `request`: for a DPoP token with a proof for this request
    /// (returning the nonce the proof carries), for a bearer token without any stale
    /// `DPoP` header from an earlier try.
    fn authorize(
        &self,
        request: &mut Request,
        prepared: &PreparedToken,
    ) -> reqwest_middleware::Result<Option<Arc<str>>> {
        request
            .headers_mut()
            .insert(AUTHORIZATION, prepared.header().clone());
        let (Some(ath), Some(key)) = (prepared.dpop_ath(), self.client.dpop()) else {
            request.headers_mut().remove(super::dpop::DPOP);
            return Ok(None);
        };
        let (proof, nonce) = key
            .proof(
                request.method().as_str(),
                request.url(),
                Some(ath),
                self.client.now_ms(),
            )
            .map_err(|e| {
                reqwest_middleware::Error::middleware(TokenError::Credential(format!(
                    "the DPoP proof could not be signed: {e}"
                )))
            })?;
        request.headers_mut().insert(super::dpop::DPOP, proof);
        Ok(nonce)
    }
}

#[async_trait::async_trait]
impl Middleware for ClientCredentialsMiddleware {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let params = self.derive.params(&request);
        let subject = match &self.exchange {
            None => None,
            Some(_) => Some(
                extensions
                    .get::<OnBehalfOf>()
                    .map(|s| s.0.clone())
                    .ok_or_else(|| reqwest_middleware::Error::middleware(TokenError::NoSubject))?,
            ),
        };
        let prepared = match (&self.exchange, &subject) {
            (Some(exchange), Some(subject)) => {
                self.client.exchange_prepared(subject, exchange).await
            }
            _ => self.client.prepared_with(&params).await,
        }
        .map_err(reqwest_middleware::Error::middleware)?;
        let sent_nonce = self.authorize(&mut request, &prepared)?;
        let dpop = self.client.dpop().filter(|_| prepared.dpop_ath().is_some());
        let replayable = replayable(&request, extensions);
        // One copy serves whichever retry comes. A `use_dpop_nonce` refusal comes from the
        // auth layer before the request ran (RFC 9449 section 9), so any method may be sent
        // again with the nonce; a renewal retry needs a replayable request.
        let mut copy = (dpop.is_some() || replayable)
            .then(|| request.try_clone())
            .flatten();
        let url = dpop.map(|_| request.url().clone());
        let mut response = next.clone().run(request, extensions).await?;
        if let (Some(key), Some(url)) = (dpop, &url) {
            let new_nonce = key.remember_nonce(url, response.headers(), sent_nonce.as_deref());
            if response.status() == StatusCode::UNAUTHORIZED
                && new_nonce
                && asks_for_dpop_nonce(response.headers())
            {
                if let Some(mut again) = copy.take() {
                    copy = replayable.then(|| again.try_clone()).flatten();
                    tracing::debug!(client = %self.client.name(), "401 use_dpop_nonce from downstream; retrying once with the new nonce");
                    metrics::counter!(crate::metrics::DPOP_NONCE_RETRIES, "client" => self.client.name().to_owned(), "at" => "resource")
                        .increment(1);
                    drop(response);
                    let sent = self.authorize(&mut again, &prepared)?;
                    response = next.clone().run(again, extensions).await?;
                    key.remember_nonce(url, response.headers(), sent.as_deref());
                } else {
                    tracing::debug!(client = %self.client.name(), "401 use_dpop_nonce from downstream; the body cannot be copied, not retried");
                }
            }
        }
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        if !challenge_allows_renewal(response.headers()) {
            tracing::debug!(client = %self.client.name(), "401 from downstream with a challenge a new token cannot answer; not retried");
            return Ok(response);
        }
        let Some(mut replay) = copy.filter(|_| replayable) else {
            tracing::debug!(client = %self.client.name(), "401 from downstream; request not replayable, not retried");
            return Ok(response);
        };
        let renewed = match (&self.exchange, &subject) {
            (Some(exchange), Some(subject)) => {
                self.client
                    .renew_rejected_exchange(subject, exchange, prepared.token())
                    .await
            }
            _ => {
                self.client
                    .renew_rejected_prepared(&params, prepared.token())
                    .await
            }
        }
        .map_err(reqwest_middleware::Error::middleware)?;
        let Some(renewed) = renewed else {
            return Ok(response);
        };
        tracing::debug!(client = %self.client.name(), "401 from downstream; retrying once with a renewed token");
        metrics::counter!(crate::metrics::UNAUTHORIZED_RETRIES, "client" => self.client.name().to_owned())
            .increment(1);
        drop(response);
        self.authorize(&mut replay, &renewed)?;
        next.run(replay, extensions).await
    }
}

/// Sends each request with a token exchanged (RFC 8693) for the request's
/// [`OnBehalfOf`] subject: a token for the downstream audience, on behalf of the caller,
/// issued to this client (its `act` names this service).
///
/// - Exchanged tokens are cached per subject token (and audience, resource, scope,
///   actor), with single flight and the negative cache: a caller's second request costs
///   what a cached client-credentials token costs.
/// - A request without [`OnBehalfOf`] is **not sent** ([`TokenError::NoSubject`]): it would
///   otherwise go with the service's own authority.
/// - DPoP, a downstream 401 (one renewal and one retry) and errors behave as for the
///   [`ClientCredentialsMiddleware`].
#[derive(Clone, Debug)]
pub struct TokenExchangeMiddleware(ClientCredentialsMiddleware);

impl TokenExchangeMiddleware {
    /// Exchanges with `client` (registered for the token-exchange grant at its issuer)
    /// for `exchange`.
    pub fn new(client: ManagedClient, exchange: TokenExchange) -> Self {
        let mut inner = ClientCredentialsMiddleware::new(client);
        inner.exchange = Some(Arc::new(exchange));
        TokenExchangeMiddleware(inner)
    }
}

#[async_trait::async_trait]
impl Middleware for TokenExchangeMiddleware {
    async fn handle(
        &self,
        request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        self.0.handle(request, extensions, next).await
    }
}

/// Which user's session a request is made for: give it to the
/// [`UserTokenMiddleware`] with `RequestBuilder::with_extension(UserSession::new(id))`.
/// The id is the browser's session cookie: never printed.
#[derive(Clone)]
pub struct UserSession(Arc<str>);

impl UserSession {
    /// The session of this id (from [`UserSessions::complete_login`]).
    pub fn new(session_id: &str) -> Self {
        UserSession(session_id.into())
    }
}

impl std::fmt::Debug for UserSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserSession([REDACTED])")
    }
}

/// Attaches the user's access token to every request made on a user's behalf: the
/// session named by the request's [`UserSession`] extension (no extension: the request is
/// not sent, [`UserTokenError::NoSession`]).
///
/// - The token comes from [`UserSessions::access_token`], renewed when due, one refresh
///   per session across the fleet; per-request parameters can be derived from the request
///   with [`with_token_request`](Self::with_token_request), as for client credentials.
/// - A `Cookie` header is removed before the request goes: the browser's cookies are for
///   the BFF, never for the API behind it.
/// - A 401 that asks for a new token (as for [`ClientCredentialsMiddleware`]) on a
///   replayable request is answered by one retry with the session's token renewed, at
///   most one renewal per session per 30 s; otherwise the 401 is returned as it is.
/// - If no token can be had, the request is not sent: the error wraps a
///   [`UserTokenError`] (see [`UserTokenError::of`]): `NoSession` and `Ended` mean "log
///   in" (401), `Unavailable` means "try again" (503), `Refused` is the caller's (400).
#[derive(Clone)]
pub struct UserTokenMiddleware {
    sessions: UserSessions,
    derive: Derive,
}

impl std::fmt::Debug for UserTokenMiddleware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserTokenMiddleware")
            .field("sessions", &self.sessions)
            .field("derives_parameters", &self.derive.is_set())
            .finish()
    }
}

impl UserTokenMiddleware {
    /// Attaches the tokens of `sessions`' users.
    pub fn new(sessions: UserSessions) -> Self {
        UserTokenMiddleware {
            sessions,
            derive: Derive::default(),
        }
    }

    /// Derives each request's token parameters from the request: see
    /// [`ClientCredentialsMiddleware::with_token_request`]. A user's token for other
    /// parameters is kept in the user's session beside the login's.
    pub fn with_token_request(
        mut self,
        derive: impl Fn(&Request) -> TokenRequestParams + Send + Sync + 'static,
    ) -> Self {
        self.derive = Derive::new(derive);
        self
    }
}

impl UserTokenError {
    /// The `UserTokenError` inside a middleware error, if that is why a request was not
    /// sent.
    pub fn of(error: &reqwest_middleware::Error) -> Option<&UserTokenError> {
        match error {
            reqwest_middleware::Error::Middleware(e) => e.downcast_ref::<UserTokenError>(),
            reqwest_middleware::Error::Reqwest(_) => None,
        }
    }
}

fn bearer(token: &super::UserAccessToken) -> reqwest_middleware::Result<http::HeaderValue> {
    let mut value = http::HeaderValue::try_from(token.authorization()).map_err(|_| {
        reqwest_middleware::Error::middleware(UserTokenError::Unavailable(
            TokenError::InvalidResponse("the access token is not a valid header value".into()),
        ))
    })?;
    value.set_sensitive(true);
    Ok(value)
}

#[async_trait::async_trait]
impl Middleware for UserTokenMiddleware {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let session = extensions
            .get::<UserSession>()
            .cloned()
            .ok_or_else(|| reqwest_middleware::Error::middleware(UserTokenError::NoSession))?;
        let params = self.derive.params(&request);
        let token = self
            .sessions
            .access_token(&session.0, &params)
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        request.headers_mut().remove(http::header::COOKIE);
        request.headers_mut().insert(AUTHORIZATION, bearer(&token)?);
        let replay = replayable(&request, extensions)
            .then(|| request.try_clone())
            .flatten();
        let response = next.clone().run(request, extensions).await?;
        if response.status() != StatusCode::UNAUTHORIZED
            || !challenge_allows_renewal(response.headers())
        {
            return Ok(response);
        }
        let Some(mut replay) = replay else {
            tracing::debug!(
                "401 from downstream for a user call; request not replayable, not retried"
            );
            return Ok(response);
        };
        let renewed = self
            .sessions
            .renew_rejected(&session.0, &params, token.secret())
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        let Some(renewed) = renewed else {
            return Ok(response);
        };
        tracing::debug!("401 from downstream for a user call; retrying once with a renewed token");
        metrics::counter!(crate::metrics::UNAUTHORIZED_RETRIES, "client" => "user").increment(1);
        drop(response);
        replay
            .headers_mut()
            .insert(AUTHORIZATION, bearer(&renewed)?);
        next.run(replay, extensions).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for v in values {
            map.append(http::header::WWW_AUTHENTICATE, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn only_invalid_token_or_a_bare_challenge_asks_for_a_new_token() {
        assert!(challenge_allows_renewal(&headers(&[])));
        assert!(challenge_allows_renewal(&headers(&["Bearer"])));
        assert!(challenge_allows_renewal(&headers(&[
            r#"Bearer realm="api", error="invalid_token", error_description="expired""#
        ])));
        assert!(challenge_allows_renewal(&headers(&[
            "bearer error=invalid_token"
        ])));
        assert!(!challenge_allows_renewal(&headers(&[
            r#"Bearer error="insufficient_scope", scope="a""#
        ])));
        assert!(!challenge_allows_renewal(&headers(&[
            r#"Bearer error="invalid_request""#
        ])));
        assert!(!challenge_allows_renewal(&headers(&["Basic realm=\"x\""])));
        assert!(challenge_allows_renewal(&headers(&[
            "Basic realm=\"x\"",
            r#"Bearer error="invalid_token""#
        ])));
    }

    #[test]
    fn a_dpop_challenge_counts_like_a_bearer_one() {
        assert!(challenge_allows_renewal(&headers(&[
            r#"DPoP algs="ES256", error="invalid_token""#
        ])));
        assert!(!challenge_allows_renewal(&headers(&[
            r#"DPoP algs="ES256", error="invalid_dpop_proof""#
        ])));
        assert!(asks_for_dpop_nonce(&headers(&[
            r#"DPoP error="use_dpop_nonce", error_description="fresh nonce""#
        ])));
        assert!(!asks_for_dpop_nonce(&headers(&[
            r#"Bearer error="use_dpop_nonce""#
        ])));
    }

    #[test]
    fn auth_params_are_read_quoted_or_bare() {
        let p = r#"realm="a, b", error="invalid_token", scope=x"#;
        assert_eq!(auth_param(p, "error"), Some("invalid_token"));
        assert_eq!(auth_param(p, "realm"), Some("a, b"));
        assert_eq!(auth_param(p, "scope"), Some("x"));
        assert_eq!(auth_param(p, "nope"), None);
        assert_eq!(auth_param("", "error"), None);
        assert_eq!(auth_param("garbage", "error"), None);
    }

    #[test]
    fn only_idempotent_methods_replay_unless_marked() {
        let request = |m: reqwest::Method| Request::new(m, "http://x/".parse().unwrap());
        let none = Extensions::new();
        assert!(replayable(&request(reqwest::Method::GET), &none));
        assert!(replayable(&request(reqwest::Method::PUT), &none));
        assert!(!replayable(&request(reqwest::Method::POST), &none));
        assert!(!replayable(&request(reqwest::Method::PATCH), &none));
        let mut marked = Extensions::new();
        marked.insert(ReplayOn401);
        assert!(replayable(&request(reqwest::Method::POST), &marked));
    }
}
