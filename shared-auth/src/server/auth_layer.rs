//! [`JwtAuthLayer`]: authenticate every request with a bearer access token.
//!
//! The Authorization header is parsed per RFC 6750 section 2.1: the scheme is
//! case-insensitive, exactly one token in the b64token alphabet, and a header over 16 KiB is
//! refused before any parsing. A request without bearer credentials gets a bare
//! `WWW-Authenticate: Bearer`; a bad token gets `error="invalid_token"`; a repeated or
//! malformed header gets `error="invalid_request"` (400). On success the [`Principal`] is
//! put into the request extensions.
//!
//! DPoP (RFC 9449, see the `dpop` module): `Authorization: DPoP <token>` (scheme
//! case-insensitive, same token syntax) with exactly one `DPoP` proof header, when the
//! validator's DPoP mode is allowed or required. The token is validated as a bearer one
//! is (a token validated before is looked up by its raw bytes), then the proof is checked
//! and its `jti` recorded. Like the bearer path, that runs without a box or a copy of the
//! token or the proof when nothing waits (the token's key is loaded, the replay store is
//! in memory); a key refresh or a shared (Redis) replay store is awaited in a boxed
//! future. The bearer paths are unchanged but for three reads: the mode, the scheme of a
//! token that missed the validated-token cache, and the principal's binding (a DPoP-bound
//! token sent as `Bearer` is refused).
//!
//! [`Principal`]: super::Principal

use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::OriginalUri;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use tower::{Layer, Service};
use tracing::Instrument as _;

use super::challenge;
use super::dpop::CheckedProof;
use super::dpop::{
    DpopMode, DpopVerifier, MAX_PROOF_LEN, ProofError, ProofInput, ReplayStoreError,
};
use super::error::ValidationError;
use super::principal::Principal;
use super::response_future::AuthFuture;
use super::validation::JwtValidator;

/// Largest Authorization header accepted (bytes). Real access tokens are 1-2 KiB.
pub(crate) const MAX_AUTHORIZATION_LEN: usize = 16 * 1024;

/// Layer that authenticates requests with a [`JwtValidator`].
#[derive(Clone, Debug)]
pub struct JwtAuthLayer {
    validator: JwtValidator,
}

impl JwtAuthLayer {
    /// Authenticates with `validator`.
    pub fn new(validator: JwtValidator) -> Self {
        JwtAuthLayer { validator }
    }
}

impl<S> Layer<S> for JwtAuthLayer {
    type Service = JwtAuth<S>;
    fn layer(&self, inner: S) -> Self::Service {
        JwtAuth {
            inner,
            validator: self.validator.clone(),
        }
    }
}

/// The service made by [`JwtAuthLayer`].
#[derive(Clone, Debug)]
pub struct JwtAuth<S> {
    inner: S,
    validator: JwtValidator,
}

/// Counts a refusal by its reason code.
fn rejected(reason: &'static str) {
    crate::trace::refused(reason);
    metrics::counter!(crate::metrics::VALIDATIONS, "outcome" => "rejected", "reason" => reason)
        .increment(1);
}

/// What the Authorization header holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Credentials<'a> {
    /// No bearer credentials (no header, or another scheme).
    Missing,
    /// A syntactically valid bearer token.
    Bearer(&'a str),
    /// A syntactically valid token under the `DPoP` scheme.
    Dpop(&'a str),
    /// `DPoP` followed by something that is not one token.
    MalformedDpop,
    /// Too large to look at.
    TooLarge,
    /// Header present but not `Bearer <one b64token>`.
    Malformed,
}

/// RFC 6750 section 2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty() && body.bytes().all(|b| B64TOKEN[usize::from(b)])
}

/// RFC 6750 `b64token` characters (before the trailing `=`s), as a table: the check runs
/// over every byte of every first-seen token, and one lookup per byte is cheaper than
/// the chain of range tests.
const B64TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] =
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        b += 1;
    }
    table
};

/// The bytes after a case-insensitive `Bearer ` prefix, unparsed.
fn bearer_bytes(value: &[u8]) -> Option<&[u8]> {
    let (scheme, token) = value.split_at_checked(7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then_some(token)
}

/// The same for `DPoP <token>`.
fn dpop_bytes(value: &[u8]) -> Option<&[u8]> {
    let (scheme, token) = value.split_at_checked(5)?;
    scheme.eq_ignore_ascii_case(b"dpop ").then_some(token)
}

pub(crate) fn parse_authorization(value: &[u8]) -> Credentials<'_> {
    if value.len() > MAX_AUTHORIZATION_LEN {
        return Credentials::TooLarge;
    }
    let Ok(value) = std::str::from_utf8(value) else {
        return Credentials::Malformed;
    };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let dpop = scheme.eq_ignore_ascii_case("dpop");
    if !dpop && !scheme.eq_ignore_ascii_case("bearer") {
        return Credentials::Missing;
    }
    let token = rest.trim_matches(' ');
    match (token.contains(' ') || !is_b64token(token), dpop) {
        (true, false) => Credentials::Malformed,
        (true, true) => Credentials::MalformedDpop,
        (false, false) => Credentials::Bearer(token),
        (false, true) => Credentials::Dpop(token),
    }
}

/// The 401 for a request without (usable) credentials, by mode.
fn missing(dpop: &DpopVerifier) -> Response<Body> {
    rejected("missing_token");
    match dpop.mode() {
        DpopMode::Off => challenge::missing_token(),
        DpopMode::Required => challenge::missing_token_dpop(&dpop.algs_param, false),
        _ => challenge::missing_token_dpop(&dpop.algs_param, true),
    }
}

/// The 401 for a DPoP-bound token sent as `Bearer`.
fn bound_as_bearer(dpop: &DpopVerifier) -> Response<Body> {
    tracing::debug!(reason = "dpop_bound_bearer", "token refused");
    rejected("dpop_bound_bearer");
    let algs = (dpop.mode() != DpopMode::Off).then_some(dpop.algs_param.as_str());
    challenge::bound_token_as_bearer(algs)
}

/// A refusal with the RFC 9728 pointer to the resource's metadata in its challenges,
/// when the validator has a protected resource configured (section 5.1). Every refusal of
/// this layer goes through here; the inner service's own answers do not.
fn pointed(validator: &JwtValidator, response: Response<Body>) -> Response<Body> {
    match validator.resource_metadata() {
        Some(published) => challenge::with_resource_metadata(response, published.challenge_param()),
        None => response,
    }
}

/// Counts a DPoP proof outcome.
fn proof_outcome(outcome: &'static str, reason: &'static str) {
    metrics::counter!(crate::metrics::DPOP_PROOFS, "outcome" => outcome, "reason" => reason)
        .increment(1);
}

/// The 401 (or 400) for a refused proof; the reason goes to the log.
fn proof_refusal(dpop: &DpopVerifier, error: ProofError) -> Response<Body> {
    tracing::debug!(reason = error.reason(), "DPoP proof refused");
    rejected("dpop_proof");
    proof_outcome("rejected", error.reason());
    match (error, dpop.nonce()) {
        (ProofError::Nonce, Some(nonce)) => challenge::use_dpop_nonce(&dpop.algs_param, &nonce),
        _ => challenge::dpop_error(
            StatusCode::UNAUTHORIZED,
            &dpop.algs_param,
            "invalid_dpop_proof",
            &error.to_string(),
        ),
    }
}

impl<S> Service<Request<Body>> for JwtAuth<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = AuthFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let mut values = request.headers().get_all(header::AUTHORIZATION).iter();
        let first = values.next();
        if values.next().is_some() {
            tracing::debug!(reason = "repeated_header", "request refused");
            rejected("repeated_header");
            return AuthFuture::ready(pointed(
                &self.validator,
                challenge::invalid_request("Send exactly one Authorization header."),
            ));
        }
        let dpop = self.validator.dpop();
        let bearer_allowed = dpop.mode() != DpopMode::Required;
        // Fast path: a token validated before is looked up by its raw bytes. A hit means
        // these exact bytes passed every check below when they were first seen. The ready
        // inner service is called directly: no clone, no allocation.
        if let Some(principal) = first
            .filter(|v| bearer_allowed && v.len() <= MAX_AUTHORIZATION_LEN)
            .and_then(|v| bearer_bytes(v.as_bytes()))
            .and_then(|token| self.validator.validated(token))
        {
            if principal.dpop_jkt().is_some() {
                return AuthFuture::ready(pointed(&self.validator, bound_as_bearer(dpop)));
            }
            if let Some(refused) = self.validator.certificates().refusal(&request, &principal) {
                return AuthFuture::ready(pointed(&self.validator, refused));
            }
            self.validator.metrics().accepted(&principal).increment();
            self.validator.metrics().cache_hits.increment();
            crate::trace::validated("cached");
            request.extensions_mut().insert(principal);
            return AuthFuture::inner(self.inner.call(request));
        }
        // The same for a DPoP-bound token validated before; its proof is checked in full.
        if let Some((token, principal)) = first
            .filter(|v| dpop.mode() != DpopMode::Off && v.len() <= MAX_AUTHORIZATION_LEN)
            .and_then(|v| dpop_bytes(v.as_bytes()))
            .and_then(|token| Some((token, self.validator.validated(token)?)))
        {
            let now = match proof_of(&request) {
                Ok(proof) => check_proof(&self.validator, &request, proof, token, principal),
                Err(error) => DpopNow::Respond(proof_header_refusal(&self.validator, error)),
            };
            return self.call_dpop(request, now);
        }
        let token = match first.map(|v| parse_authorization(v.as_bytes())) {
            None | Some(Credentials::Missing) => {
                return AuthFuture::ready(pointed(&self.validator, missing(dpop)));
            }
            // With DPoP off, the scheme is as unknown as any other.
            Some(Credentials::Dpop(_) | Credentials::MalformedDpop)
                if dpop.mode() == DpopMode::Off =>
            {
                return AuthFuture::ready(pointed(&self.validator, missing(dpop)));
            }
            Some(Credentials::MalformedDpop) => {
                tracing::debug!(reason = "malformed_header", "request refused");
                rejected("malformed_header");
                return AuthFuture::ready(pointed(
                    &self.validator,
                    challenge::dpop_error(
                        StatusCode::BAD_REQUEST,
                        &dpop.algs_param,
                        "invalid_request",
                        "The Authorization header must be 'DPoP' followed by one token.",
                    ),
                ));
            }
            Some(Credentials::Dpop(token)) => {
                let now = dpop_now(&self.validator, &request, token);
                return self.call_dpop(request, now);
            }
            Some(Credentials::Bearer(_)) if !bearer_allowed => {
                tracing::debug!(reason = "dpop_required", "token refused");
                rejected("dpop_required");
                return AuthFuture::ready(pointed(
                    &self.validator,
                    challenge::dpop_error(
                        StatusCode::UNAUTHORIZED,
                        &dpop.algs_param,
                        "invalid_token",
                        "DPoP is required: send a DPoP-bound access token with the DPoP scheme and a DPoP proof",
                    ),
                ));
            }
            Some(Credentials::TooLarge) => {
                tracing::debug!(reason = "too_large", "token refused");
                rejected("too_large");
                return AuthFuture::ready(pointed(
                    &self.validator,
                    challenge::invalid_token("the access token is too large"),
                ));
            }
            Some(Credentials::Malformed) => {
                tracing::debug!(reason = "malformed_header", "request refused");
                rejected("malformed_header");
                return AuthFuture::ready(pointed(
                    &self.validator,
                    challenge::invalid_request(
                        "The Authorization header must be 'Bearer' followed by one token.",
                    ),
                ));
            }
            Some(Credentials::Bearer(token)) => token,
        };
        // First sight of a token whose key is loaded: validated here and now, so again no
        // box and no copy of the token.
        match self.validator.verify_now(token) {
            Some(Ok(principal)) if principal.dpop_jkt().is_some() => {
                return AuthFuture::ready(pointed(&self.validator, bound_as_bearer(dpop)));
            }
            Some(Ok(principal)) => {
                if let Some(refused) = self.validator.certificates().refusal(&request, &principal) {
                    return AuthFuture::ready(pointed(&self.validator, refused));
                }
                self.validator.metrics().accepted(&principal).increment();
                crate::trace::validated("first_seen");
                request.extensions_mut().insert(principal);
                return AuthFuture::inner(self.inner.call(request));
            }
            Some(Err(error)) => return AuthFuture::ready(pointed(&self.validator, refusal(error))),
            None => {}
        }
        // Slow path: the token names a key that is not loaded, so validation waits for a
        // key refresh. The clone that was polled ready is the one to call (tower's usual
        // dance).
        let token = token.to_owned();
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let validator = self.validator.clone();
        AuthFuture::boxed(Box::pin(async move {
            let verified = validator
                .validate(&token)
                .instrument(crate::trace::verify())
                .await;
            match verified {
                Ok(principal) if principal.dpop_jkt().is_some() => {
                    Ok(pointed(&validator, bound_as_bearer(validator.dpop())))
                }
                Ok(principal) => {
                    if let Some(refused) = validator.certificates().refusal(&request, &principal) {
                        return Ok(pointed(&validator, refused));
                    }
                    validator.metrics().accepted(&principal).increment();
                    crate::trace::validated("first_seen");
                    request.extensions_mut().insert(principal);
                    inner.call(request).await
                }
                Err(error) => Ok(pointed(&validator, refusal(error))),
            }
        }))
    }
}

impl<S> JwtAuth<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    /// `Authorization: DPoP <token>`: the token, then the proof, then its `jti`. Like a
    /// bearer token, a token validated before, with a replay store that answers at once
    /// (in memory), is answered here and now: no box, no copy of the token or the proof.
    /// Otherwise what must wait is boxed: the key refresh (the whole check), or the shared
    /// replay store (only its answer).
    fn call_dpop(
        &mut self,
        mut request: Request<Body>,
        now: DpopNow,
    ) -> AuthFuture<S::Future, S::Error> {
        let pending = match now {
            DpopNow::Respond(response) => return AuthFuture::ready(response),
            DpopNow::Later(token) => return self.call_dpop_later(request, token),
            DpopNow::Pending(Pending::Accepted(principal, None)) => {
                accept(&self.validator, &principal);
                request.extensions_mut().insert(principal);
                return AuthFuture::inner(self.inner.call(request));
            }
            DpopNow::Pending(pending) => pending,
        };
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let validator = self.validator.clone();
        AuthFuture::boxed(Box::pin(finish_dpop(validator, inner, request, pending)))
    }

    /// The DPoP path when the token cannot be validated without waiting.
    fn call_dpop_later(
        &mut self,
        request: Request<Body>,
        token: String,
    ) -> AuthFuture<S::Future, S::Error> {
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let validator = self.validator.clone();
        AuthFuture::boxed(Box::pin(async move {
            let principal = match validator.validate(&token).await {
                Ok(principal) => principal,
                Err(error) => return Ok(token_refusal(&validator, error)),
            };
            // Read when the request came in; a borrow of the request cannot be held
            // across the await above.
            let now = match proof_of(&request) {
                Ok(proof) => check_proof(&validator, &request, proof, token.as_bytes(), principal),
                Err(error) => DpopNow::Respond(proof_header_refusal(&validator, error)),
            };
            match now {
                DpopNow::Pending(pending) => finish_dpop(validator, inner, request, pending).await,
                DpopNow::Respond(response) => Ok(response),
                // check_proof never defers the token's validation (done above).
                DpopNow::Later(_) => Ok(challenge::unavailable(1)),
            }
        }))
    }
}

/// What a DPoP request's checks decided without waiting (made while the token and the
/// proof are borrowed from the request).
enum DpopNow {
    /// The answer.
    Respond(Response<Body>),
    /// The token's key is not loaded (or the token is introspected): the whole check waits.
    Later(String),
    /// Past every check that does not wait.
    Pending(Pending),
}

/// The checks of a DPoP request that do not wait: the proof header, the token (when it
/// validates without waiting), the proof, the replay check (when the store answers at once).
fn dpop_now(validator: &JwtValidator, request: &Request<Body>, token: &str) -> DpopNow {
    let proof = match proof_of(request) {
        Ok(proof) => proof,
        Err(error) => return DpopNow::Respond(proof_header_refusal(validator, error)),
    };
    match validator.validate_now(token) {
        None => DpopNow::Later(token.to_owned()),
        Some(Err(error)) => DpopNow::Respond(token_refusal(validator, error)),
        Some(Ok(principal)) => check_proof(validator, request, proof, token.as_bytes(), principal),
    }
}

/// A DPoP request past every check that does not wait.
enum Pending {
    /// Accepted, with a fresh nonce to send back, if any.
    Accepted(Principal, Option<String>),
    /// Every check passed but the replay check, which needs the (shared) store's answer.
    ReplayCheck(Principal, CheckedProof),
}

/// Why a request's `DPoP` header cannot be read as one proof.
#[derive(Debug, Clone, Copy)]
enum ProofHeader {
    Repeated,
    Missing,
    Malformed,
}

/// The request's one `DPoP` header.
fn proof_of(request: &Request<Body>) -> Result<&str, ProofHeader> {
    let mut proofs = request.headers().get_all(DPOP).iter();
    let proof = proofs.next();
    if proofs.next().is_some() {
        return Err(ProofHeader::Repeated);
    }
    match proof.map(|p| (p.len() <= MAX_PROOF_LEN, p.to_str())) {
        None => Err(ProofHeader::Missing),
        Some((true, Ok(proof))) => Ok(proof),
        Some(_) => Err(ProofHeader::Malformed),
    }
}

/// The refusal of a request without one readable `DPoP` header.
fn proof_header_refusal(validator: &JwtValidator, error: ProofHeader) -> Response<Body> {
    let dpop = validator.dpop();
    let response = match error {
        ProofHeader::Repeated => {
            tracing::debug!(reason = "repeated_dpop_header", "request refused");
            rejected("repeated_header");
            proof_outcome("rejected", "repeated_header");
            challenge::dpop_error(
                StatusCode::BAD_REQUEST,
                &dpop.algs_param,
                "invalid_request",
                "Send exactly one DPoP header.",
            )
        }
        ProofHeader::Missing => proof_refusal(dpop, ProofError::Missing),
        ProofHeader::Malformed => proof_refusal(dpop, ProofError::Malformed),
    };
    pointed(validator, response)
}

/// The refusal of a DPoP request's token.
fn token_refusal(validator: &JwtValidator, error: ValidationError) -> Response<Body> {
    match error {
        ValidationError::KeysUnavailable { .. }
        | ValidationError::Overloaded { .. }
        | ValidationError::IntrospectionUnavailable { .. } => pointed(validator, refusal(error)),
        error => {
            tracing::debug!(reason = error.reason(), "token refused");
            rejected(error.reason());
            pointed(
                validator,
                challenge::dpop_error(
                    StatusCode::UNAUTHORIZED,
                    &validator.dpop().algs_param,
                    "invalid_token",
                    &error.to_string(),
                ),
            )
        }
    }
}

/// The checks after the token's: its binding, the proof against the request and the
/// token, and the replay check when the store answers without waiting.
fn check_proof(
    validator: &JwtValidator,
    request: &Request<Body>,
    proof: &str,
    token: &[u8],
    principal: Principal,
) -> DpopNow {
    let dpop = validator.dpop();
    let Some(jkt) = principal.dpop_jkt() else {
        tracing::debug!(reason = "not_dpop_bound", "token refused");
        rejected("not_dpop_bound");
        return DpopNow::Respond(pointed(
            validator,
            challenge::dpop_error(
                StatusCode::UNAUTHORIZED,
                &dpop.algs_param,
                "invalid_token",
                "the access token is not DPoP-bound (no cnf.jkt)",
            ),
        ));
    };
    // The path before any nesting: what the client addressed.
    let path = request
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| request.uri().path(), |u| u.0.path());
    let input = ProofInput {
        proof,
        method: request.method().as_str(),
        path,
        token,
        jkt,
    };
    let checked = match dpop.check(&input) {
        Ok(checked) => checked,
        Err(error) => return DpopNow::Respond(pointed(validator, proof_refusal(dpop, error))),
    };
    match dpop.first_use_now(jkt, &checked) {
        None => DpopNow::Pending(Pending::ReplayCheck(principal, checked)),
        Some(answer) => match replay_refusal(validator, answer) {
            Some(response) => DpopNow::Respond(response),
            None => DpopNow::Pending(Pending::Accepted(principal, checked.fresh_nonce)),
        },
    }
}

/// The refusal the replay store's answer calls for; `None` for a proof seen the first time.
fn replay_refusal(
    validator: &JwtValidator,
    answer: Result<bool, ReplayStoreError>,
) -> Option<Response<Body>> {
    match answer {
        Ok(true) => None,
        Ok(false) => Some(pointed(
            validator,
            proof_refusal(validator.dpop(), ProofError::Replay),
        )),
        Err(error) => {
            // Fail closed: a proof whose replay check cannot run, or that cannot be
            // remembered, is not accepted.
            if let ReplayStoreError::Unavailable(_) = error {
                tracing::warn!(%error, "request refused: the DPoP replay check could not run");
            } else {
                // The in-memory store logs once when it becomes full; the metric counts
                // every refusal.
                tracing::debug!(%error, "request refused: the DPoP proof cannot be remembered");
            }
            rejected(error.reason());
            proof_outcome("rejected", error.reason());
            Some(challenge::unavailable(error.retry_after()))
        }
    }
}

/// Counts an accepted DPoP request.
fn accept(validator: &JwtValidator, principal: &Principal) {
    validator.metrics().accepted(principal).increment();
    crate::trace::validated("accepted");
    proof_outcome("accepted", "ok");
}

/// The rest of a DPoP request that waits: the shared replay store's answer, then the inner
/// service, with a fresh nonce on its response.
async fn finish_dpop<S>(
    validator: JwtValidator,
    mut inner: S,
    mut request: Request<Body>,
    pending: Pending,
) -> Result<Response<Body>, S::Error>
where
    S: Service<Request<Body>, Response = Response<Body>>,
{
    let (principal, nonce) = match pending {
        Pending::Accepted(principal, nonce) => (principal, nonce),
        Pending::ReplayCheck(principal, checked) => {
            // Bound: check_proof made a ReplayCheck only for a token with a jkt.
            let jkt = principal.dpop_jkt().unwrap_or_default();
            let answer = validator.dpop().first_use(jkt, &checked).await;
            if let Some(response) = replay_refusal(&validator, answer) {
                return Ok(response);
            }
            (principal, checked.fresh_nonce)
        }
    };
    accept(&validator, &principal);
    request.extensions_mut().insert(principal);
    let mut response = inner.call(request).await?;
    if let Some(nonce) = nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
        response.headers_mut().insert(challenge::DPOP_NONCE, nonce);
    }
    Ok(response)
}

/// The `DPoP` request header.
const DPOP: header::HeaderName = header::HeaderName::from_static("dpop");

/// The response for a refused token; the reason goes to the log, never the token.
fn refusal(error: ValidationError) -> Response<Body> {
    rejected(error.reason());
    if let ValidationError::KeysUnavailable { retry_after } = error {
        tracing::warn!(
            retry_after,
            "request refused: the issuer's keys are not loaded"
        );
        challenge::unavailable(retry_after)
    } else if let ValidationError::Overloaded { retry_after } = error {
        // A flood of first-seen (often forged) tokens: not the caller's fault, and not
        // worth a log line each.
        tracing::debug!(
            retry_after,
            "request refused: signature verifications at their bound"
        );
        challenge::unavailable(retry_after)
    } else if let ValidationError::IntrospectionUnavailable { retry_after } = error {
        // Fail closed, and not with a 401: the token may well be good.
        tracing::warn!(
            retry_after,
            "request refused: the token could not be introspected"
        );
        challenge::unavailable(retry_after)
    } else {
        tracing::debug!(reason = error.reason(), "token refused");
        challenge::rejected(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_header_parsing_follows_rfc6750() {
        assert_eq!(
            parse_authorization(b"Bearer abc.def.ghi"),
            Credentials::Bearer("abc.def.ghi")
        );
        assert_eq!(
            parse_authorization(b"bearer abc"),
            Credentials::Bearer("abc")
        );
        assert_eq!(
            parse_authorization(b"BEARER abc=="),
            Credentials::Bearer("abc==")
        );
        assert_eq!(
            parse_authorization(b"Basic dXNlcjpwYXNz"),
            Credentials::Missing
        );
        assert_eq!(parse_authorization(b"Bearer"), Credentials::Malformed);
        assert_eq!(parse_authorization(b"Bearer a b"), Credentials::Malformed);
        assert_eq!(parse_authorization(b"Bearer a,b"), Credentials::Malformed);
        assert_eq!(parse_authorization(b"Bearer =abc"), Credentials::Malformed);
        assert_eq!(
            parse_authorization(b"DPoP abc.d"),
            Credentials::Dpop("abc.d")
        );
        assert_eq!(parse_authorization(b"dpop abc"), Credentials::Dpop("abc"));
        assert_eq!(parse_authorization(b"DPOP  abc "), Credentials::Dpop("abc"));
        assert_eq!(parse_authorization(b"DPoP a b"), Credentials::MalformedDpop);
        assert_eq!(parse_authorization(b"DPoP"), Credentials::MalformedDpop);
        assert_eq!(parse_authorization(b"DPoPx abc"), Credentials::Missing);
        let big = format!("Bearer {}", "a".repeat(MAX_AUTHORIZATION_LEN));
        assert_eq!(parse_authorization(big.as_bytes()), Credentials::TooLarge);
    }
}
