//! Transaction Tokens (draft-ietf-oauth-transaction-tokens-08) at a service: the
//! `Txn-Token` header checked ([`TransactionTokenVerifier`]), exposed to handlers
//! ([`Transaction`]), required where a route needs it ([`TransactionTokenLayer`]), and
//! made [`TransactionToken::current`] while the handler runs, so the client half's
//! `TransactionTokenMiddleware` passes it on unchanged.
//!
//! A token passes when all of these hold: a compact JWS with header `typ: txntoken+jwt`,
//! an algorithm allowed and no `crit`; its signature verifies with a key of the
//! Transaction Token Service (from its discovery document or JWKS, refreshed as an
//! issuer's are); `aud` is the trust domain; `exp` is not past and `iat` not in the future
//! (with the leeway); `txn` and `sub` are present; `iss`, when present, is the service's.
//!
//! A refused token gets **403** with an RFC 9457 body that says why, never 401: the
//! caller's credential (its access token) is fine, and a 401 would make its client renew
//! that token for nothing. A Transaction Token Service whose keys are not loaded gives 503
//! with `Retry-After`.
//!
//! Checked tokens are remembered by their exact bytes (at most `cache_capacity`), until
//! their `exp`, and forgotten when the service's keys change, as the access-token cache
//! does (see the `validated_cache` module): a token passed on along a chain of calls is
//! verified once per service.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use quick_cache::sync::Cache;
use serde::Deserialize;
use tower::{Layer, Service};

use super::claims::TokenProfile;
use super::config::{IssuerConfig, MetadataSource, default_algorithms};
use super::error::StartError;
use super::issuer::start_issuer;
use super::response_future::AuthFuture;
use super::token_header::{TokenHeader, is_media_type};
use crate::clock::{Clock, SystemClock};
use crate::issuer_http;
use crate::jose::SignatureAlgorithm;
use crate::jose::compact::{self, Compact, STACK_PART, decode_part};
use crate::jwks::{KeyCache, KeyCacheTiming, KeyLookupError};
use crate::scope::ScopeSet;
use crate::transaction::{TXN_TOKEN_HEADER, TransactionToken};

/// What a [`TransactionTokenLayer`] checks tokens against.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TransactionTokenConfig {
    /// Where the Transaction Token Service's metadata and keys come from.
    pub metadata: MetadataSource,
    /// The trust domain: the `aud` every token must carry.
    pub trust_domain: String,
    /// Accepted signature algorithms (default as for access tokens).
    pub algorithms: Vec<SignatureAlgorithm>,
    /// Clock skew allowed on `exp` and `iat` (default 30 s: these tokens live minutes).
    pub leeway: Duration,
    /// Background key refresh interval (default 1 h).
    pub refresh_interval: Duration,
    /// Timeout of each metadata or key request (default 10 s).
    pub http_timeout: Duration,
    /// Start without the keys and load them in the background (default false).
    pub lazy: bool,
    /// Plain `http` to a host that is not loopback (default false).
    pub allow_insecure_http: bool,
    /// Checked tokens remembered (default 10,000; 0 disables).
    pub cache_capacity: usize,
    /// The clock of `exp` and `iat` (default the system clock).
    pub clock: Arc<dyn Clock>,
}

impl TransactionTokenConfig {
    /// Defaults for everything but the service's metadata and the trust domain.
    pub fn new(metadata: MetadataSource, trust_domain: impl Into<String>) -> Self {
        TransactionTokenConfig {
            metadata,
            trust_domain: trust_domain.into(),
            algorithms: default_algorithms(),
            leeway: Duration::from_secs(30),
            refresh_interval: Duration::from_secs(3600),
            http_timeout: Duration::from_secs(10),
            lazy: false,
            allow_insecure_http: false,
            cache_capacity: 10_000,
            clock: Arc::new(SystemClock),
        }
    }
}

/// Why a Transaction Token was refused (the 403's detail says it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransactionTokenError {
    /// The route requires one and the request carries none.
    #[error("the request carries no Txn-Token header")]
    Missing,
    /// Not one compact JWS (or the header came twice).
    #[error("the Txn-Token is not a compact JWS")]
    Malformed,
    /// The header's `typ` is not `txntoken+jwt`.
    #[error("the token's typ is not txntoken+jwt")]
    Type,
    /// An algorithm not allowed, or a `crit` header.
    #[error("the token's algorithm or header is not accepted")]
    Algorithm,
    /// No key of the Transaction Token Service has the token's `kid`.
    #[error("the token is signed with a key the Transaction Token Service does not publish")]
    UnknownKey,
    /// The signature does not verify: the token was altered or minted elsewhere.
    #[error("the token's signature does not verify")]
    Signature,
    /// `aud` is not this service's trust domain.
    #[error("the token is for another trust domain")]
    Audience,
    /// `iss` is not the Transaction Token Service.
    #[error("the token names another issuer")]
    Issuer,
    /// `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// A required claim is missing or of the wrong type.
    #[error("the token's claims are invalid: {0}")]
    Claims(&'static str),
    /// The service's keys are not loaded (yet): try again.
    #[error("the Transaction Token Service's keys are not available")]
    KeysUnavailable {
        /// Seconds until a retry may help.
        retry_after: u64,
    },
}

impl TransactionTokenError {
    /// 403 with an RFC 9457 body (503 with `Retry-After` while keys are unavailable).
    fn response(&self) -> Response<Body> {
        match self {
            TransactionTokenError::KeysUnavailable { retry_after } => {
                let mut response =
                    crate::problem(StatusCode::SERVICE_UNAVAILABLE, &self.to_string());
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
                response
            }
            _ => crate::problem(
                StatusCode::FORBIDDEN,
                &format!("Transaction Token refused: {self}"),
            ),
        }
    }
}

/// The checked Transaction Token of a request: who the transaction is for and its
/// context. A handler argument (403 when the request has none); cheap to clone. Its
/// `Debug` shows no token.
#[derive(Clone)]
pub struct Transaction(Arc<Checked>);

struct Checked {
    token: TransactionToken,
    txn: String,
    subject: String,
    scope: ScopeSet,
    requesting_workload: Option<String>,
    transaction_context: Option<serde_json::Value>,
    requester_context: Option<serde_json::Value>,
    expires_at: u64,
    /// The key-set epoch the check began in (see the module documentation).
    epoch: u64,
}

impl Transaction {
    /// The transaction's unique id (`txn`), the same at every service of the chain.
    pub fn txn(&self) -> &str {
        &self.0.txn
    }
    /// Who the transaction is for (`sub`): the user, or the workload that started it.
    pub fn subject(&self) -> &str {
        &self.0.subject
    }
    /// The scopes of the transaction (`scope`).
    pub fn scope(&self) -> &ScopeSet {
        &self.0.scope
    }
    /// The workload that asked for the token (`req_wl`), when named.
    pub fn requesting_workload(&self) -> Option<&str> {
        self.0.requesting_workload.as_deref()
    }
    /// What was asked (`tctx`), when given.
    pub fn transaction_context(&self) -> Option<&serde_json::Value> {
        self.0.transaction_context.as_ref()
    }
    /// Who asked (`rctx`: the caller's address, how it authenticated), when given.
    pub fn requester_context(&self) -> Option<&serde_json::Value> {
        self.0.requester_context.as_ref()
    }
    /// `exp`, in Unix seconds.
    pub fn expires_at(&self) -> u64 {
        self.0.expires_at
    }
    /// The token itself, to pass on by hand (the `TransactionTokenMiddleware` does it for
    /// calls made from the handler's task).
    pub fn token(&self) -> &TransactionToken {
        &self.0.token
    }
}

impl fmt::Debug for Transaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("txn", &self.0.txn)
            .field("subject", &self.0.subject)
            .field("scope", &self.0.scope.to_string())
            .field("expires_at", &self.0.expires_at)
            .finish_non_exhaustive()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Transaction {
    type Rejection = Response<Body>;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Transaction>()
            .cloned()
            .ok_or_else(|| TransactionTokenError::Missing.response())
    }
}

/// `Option<Transaction>` as a handler argument: the request's checked Transaction Token,
/// or `None` when it came without one (never a refusal).
impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for Transaction {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Transaction>().cloned())
    }
}

/// Checks Transaction Tokens (the [`TransactionTokenLayer`]'s checks; public for this
/// repository's benches, feature `internals`). Cheap to clone.
#[derive(Clone)]
pub struct TransactionTokenVerifier(Arc<Inner>);

struct Inner {
    keys: Arc<KeyCache>,
    algorithms: Vec<SignatureAlgorithm>,
    trust_domain: String,
    leeway: u64,
    clock: Arc<dyn Clock>,
    checked: Option<Cache<Arc<str>, Transaction>>,
    /// Bumped when the service's keys change: a check that began before is not served.
    epoch: Arc<AtomicU64>,
}

impl fmt::Debug for TransactionTokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransactionTokenVerifier")
            .field("trust_domain", &self.0.trust_domain)
            .finish_non_exhaustive()
    }
}

/// The claims read from a Transaction Token.
#[derive(Deserialize)]
struct Claims {
    txn: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    iss: Option<String>,
    exp: Option<serde_json::Number>,
    iat: Option<serde_json::Number>,
    scope: Option<String>,
    req_wl: Option<String>,
    tctx: Option<serde_json::Value>,
    rctx: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl TransactionTokenVerifier {
    /// Reads the Transaction Token Service's metadata and keys (unless lazy).
    pub async fn new(config: TransactionTokenConfig) -> Result<Self, StartError> {
        if config.trust_domain.is_empty() {
            return Err(StartError::Config(
                "the trust domain of Transaction Tokens is empty".into(),
            ));
        }
        let http = issuer_http::client(None, config.http_timeout.min(Duration::from_secs(5)))
            .map_err(|e| StartError::Config(format!("HTTP client: {e}")))?;
        let epoch = Arc::new(AtomicU64::new(0));
        let bump = epoch.clone();
        let mut service = IssuerConfig::new(
            config.metadata.clone(),
            TokenProfile::Generic {
                audience: Some(config.trust_domain.clone()),
            },
        );
        service.algorithms = config.algorithms.clone();
        service.lazy = config.lazy;
        let state = start_issuer(
            &service,
            &http,
            Box::new(move || {
                bump.fetch_add(1, Ordering::SeqCst);
            }),
            KeyCacheTiming {
                refresh_interval: config.refresh_interval,
                unknown_kid_min_interval: Duration::from_secs(10),
                http_timeout: config.http_timeout,
            },
            config.allow_insecure_http,
            "transaction-token-service",
        )
        .await?;
        Ok(TransactionTokenVerifier(Arc::new(Inner {
            keys: state.keys,
            algorithms: state.algorithms,
            trust_domain: config.trust_domain,
            leeway: config.leeway.as_secs(),
            clock: config.clock,
            checked: (config.cache_capacity > 0).then(|| Cache::new(config.cache_capacity)),
            epoch,
        })))
    }

    /// Checks `token` (see the module documentation), from the cache when it was checked
    /// before.
    #[cfg(feature = "internals")]
    pub async fn verify(&self, token: &str) -> Result<Transaction, TransactionTokenError> {
        if let Some(checked) = self.cached(token) {
            return Ok(checked);
        }
        self.verify_uncached(token).await
    }

    /// A token checked before and still valid, without waiting.
    pub(crate) fn cached(&self, token: &str) -> Option<Transaction> {
        let hit = self.0.checked.as_ref()?.get(token)?;
        let now = self.0.clock.now_unix_ms() / 1000;
        (hit.0.epoch == self.0.epoch.load(Ordering::SeqCst)
            && now <= hit.0.expires_at.saturating_add(self.0.leeway))
        .then_some(hit)
    }

    /// Checks `token` fully, whatever the cache holds (the bench's first-seen cost).
    pub async fn verify_uncached(&self, token: &str) -> Result<Transaction, TransactionTokenError> {
        let epoch = self.0.epoch.load(Ordering::SeqCst);
        let header = TokenHeader::parse(token).map_err(|_| TransactionTokenError::Algorithm)?;
        let typ_ok = Compact::header_part(token)
            .ok()
            .and_then(|part| compact::decode(part).ok())
            .and_then(|bytes| {
                crate::jose::json::parse_header(&bytes)
                    .ok()
                    .map(|h| h.typ().is_some_and(|t| is_media_type(t, "txntoken+jwt")))
            })
            .unwrap_or(false);
        if !typ_ok {
            return Err(TransactionTokenError::Type);
        }
        if !self.0.algorithms.contains(&header.alg) {
            return Err(TransactionTokenError::Algorithm);
        }
        let key = self
            .0
            .keys
            .key_for(header.kid())
            .await
            .map_err(|e| match e {
                KeyLookupError::UnknownKey => TransactionTokenError::UnknownKey,
                KeyLookupError::NoKeys { retry_after } => TransactionTokenError::KeysUnavailable {
                    retry_after: retry_after.as_secs().max(1),
                },
            })?;
        if !key.accepts(header.alg) {
            return Err(TransactionTokenError::Algorithm);
        }
        let parts = Compact::split(token).map_err(|_| TransactionTokenError::Malformed)?;
        let mut buffer = [0u8; STACK_PART];
        let signature = decode_part(parts.signature, &mut buffer)
            .map_err(|_| TransactionTokenError::Malformed)?;
        if !key.verifies(header.alg, parts.signing_input.as_bytes(), &signature) {
            return Err(TransactionTokenError::Signature);
        }
        let payload =
            compact::decode(parts.payload).map_err(|_| TransactionTokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| {
            TransactionTokenError::Claims("not a JSON object of the expected types")
        })?;
        let checked = self.check(claims, token, epoch)?;
        if let Some(cache) = &self.0.checked {
            cache.insert(Arc::from(token), checked.clone());
        }
        Ok(checked)
    }

    /// The claims' checks, after the signature.
    fn check(
        &self,
        claims: Claims,
        token: &str,
        epoch: u64,
    ) -> Result<Transaction, TransactionTokenError> {
        let now = self.0.clock.now_unix_ms() / 1000;
        let leeway = self.0.leeway;
        let seconds = |n: &serde_json::Number| n.as_f64().filter(|f| f.is_finite() && *f >= 0.0);
        let exp = claims
            .exp
            .as_ref()
            .and_then(seconds)
            .ok_or(TransactionTokenError::Claims("exp is missing"))? as u64;
        if now > exp.saturating_add(leeway) {
            return Err(TransactionTokenError::Expired);
        }
        let iat = claims
            .iat
            .as_ref()
            .and_then(seconds)
            .ok_or(TransactionTokenError::Claims("iat is missing"))? as u64;
        if iat > now.saturating_add(leeway) {
            return Err(TransactionTokenError::Claims("iat is in the future"));
        }
        let for_us = match &claims.aud {
            Some(Audience::One(aud)) => *aud == self.0.trust_domain,
            Some(Audience::Many(auds)) => auds.iter().any(|a| *a == self.0.trust_domain),
            None => false,
        };
        if !for_us {
            return Err(TransactionTokenError::Audience);
        }
        if let (Some(iss), Some(expected)) = (&claims.iss, self.0.keys.issuer())
            && iss != expected
        {
            return Err(TransactionTokenError::Issuer);
        }
        let txn = claims
            .txn
            .filter(|t| !t.is_empty())
            .ok_or(TransactionTokenError::Claims("txn is missing"))?;
        let subject = claims
            .sub
            .filter(|s| !s.is_empty())
            .ok_or(TransactionTokenError::Claims("sub is missing"))?;
        let scope = match claims.scope.as_deref() {
            None => ScopeSet::new(),
            Some(s) => ScopeSet::parse(s)
                .map_err(|_| TransactionTokenError::Claims("scope is not a scope list"))?,
        };
        Ok(Transaction(Arc::new(Checked {
            token: TransactionToken::new(token),
            txn,
            subject,
            scope,
            requesting_workload: claims.req_wl,
            transaction_context: claims.tctx,
            requester_context: claims.rctx,
            expires_at: exp,
            epoch,
        })))
    }
}

/// Checks the `Txn-Token` header of every request on the routes it wraps: a present token
/// must pass (403 otherwise); a missing one is refused only by a
/// [`required`](Self::required) layer (or by a handler that takes [`Transaction`]). A
/// checked token is put in the request's extensions as [`Transaction`] and is
/// [`TransactionToken::current`] while the inner service runs. Cheap to clone: one layer
/// (one key cache, one cache of checked tokens) serves every route.
#[derive(Clone, Debug)]
pub struct TransactionTokenLayer {
    verifier: TransactionTokenVerifier,
    required: bool,
}

impl TransactionTokenLayer {
    /// Reads the Transaction Token Service's metadata and keys (unless lazy) and checks a
    /// token when a request has one.
    pub async fn start(config: TransactionTokenConfig) -> Result<Self, StartError> {
        Ok(TransactionTokenLayer {
            verifier: TransactionTokenVerifier::new(config).await?,
            required: false,
        })
    }

    /// The checks themselves (this repository's benches; feature `internals`).
    #[cfg(feature = "internals")]
    pub fn verifier(&self) -> &TransactionTokenVerifier {
        &self.verifier
    }

    /// Refuses requests without a token too.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
}

impl<S> Layer<S> for TransactionTokenLayer {
    type Service = TransactionTokenService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TransactionTokenService {
            inner,
            verifier: self.verifier.clone(),
            required: self.required,
        }
    }
}

/// The service of [`TransactionTokenLayer`].
#[derive(Clone, Debug)]
pub struct TransactionTokenService<S> {
    inner: S,
    verifier: TransactionTokenVerifier,
    required: bool,
}

impl<S> Service<Request<Body>> for TransactionTokenService<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = AuthFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        /// What the request's header holds.
        enum Seen {
            Absent,
            Malformed,
            Checked(Transaction),
            New(String),
        }
        let seen = {
            let mut values = request.headers().get_all(TXN_TOKEN_HEADER).iter();
            match (values.next(), values.next()) {
                (None, _) => Seen::Absent,
                (Some(value), None) => match value.to_str() {
                    // A cached token is looked up by the header's bytes: no copy.
                    Ok(token) => match self.verifier.cached(token) {
                        Some(checked) => Seen::Checked(checked),
                        None => Seen::New(token.to_owned()),
                    },
                    Err(_) => Seen::Malformed,
                },
                (Some(_), Some(_)) => Seen::Malformed,
            }
        };
        let token = match seen {
            Seen::Absent if !self.required => return AuthFuture::inner(self.inner.call(request)),
            Seen::Absent => return AuthFuture::ready(TransactionTokenError::Missing.response()),
            Seen::Malformed => {
                return AuthFuture::ready(TransactionTokenError::Malformed.response());
            }
            Seen::Checked(checked) => {
                let current = checked.token().clone();
                request.extensions_mut().insert(checked);
                // The inner service was polled ready: called now, its future scoped.
                return AuthFuture::boxed(Box::pin(current.scope(self.inner.call(request))));
            }
            Seen::New(token) => token,
        };
        // The clone that was polled ready serves this request (tower's rule).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        AuthFuture::boxed(Box::pin(async move {
            match verifier.verify_uncached(&token).await {
                Ok(checked) => {
                    let current = checked.token().clone();
                    request.extensions_mut().insert(checked);
                    current.scope(inner.call(request)).await
                }
                Err(error) => {
                    tracing::debug!(%error, "Txn-Token refused");
                    Ok(error.response())
                }
            }
        }))
    }
}
