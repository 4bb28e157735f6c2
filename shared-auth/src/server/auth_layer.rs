//! [`JwtAuthLayer`]: authenticate every request with a bearer access token.
//!
//! The Authorization header is parsed per RFC 6750 section 2.1: the scheme is
//! case-insensitive, exactly one token in the b64token alphabet, and a header over 16 KiB is
//! refused before any parsing. A request without bearer credentials gets a bare
//! `WWW-Authenticate: Bearer`; a bad token gets `error="invalid_token"`; a repeated or
//! malformed header gets `error="invalid_request"` (400). On success the [`Principal`] is
//! put into the request extensions.
//!
//! [`Principal`]: super::Principal

use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{Request, Response, header};
use tower::{Layer, Service};

use super::challenge;
use super::error::ValidationError;
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

pub(crate) fn parse_authorization(value: &[u8]) -> Credentials<'_> {
    if value.len() > MAX_AUTHORIZATION_LEN {
        return Credentials::TooLarge;
    }
    let Ok(value) = std::str::from_utf8(value) else {
        return Credentials::Malformed;
    };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Credentials::Missing;
    }
    let token = rest.trim_matches(' ');
    if token.contains(' ') || !is_b64token(token) {
        return Credentials::Malformed;
    }
    Credentials::Bearer(token)
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
            return AuthFuture::ready(challenge::invalid_request(
                "Send exactly one Authorization header.",
            ));
        }
        // Fast path: a token validated before is looked up by its raw bytes. A hit means
        // these exact bytes passed every check below when they were first seen. The ready
        // inner service is called directly: no clone, no allocation.
        if let Some(principal) = first
            .filter(|v| v.len() <= MAX_AUTHORIZATION_LEN)
            .and_then(|v| bearer_bytes(v.as_bytes()))
            .and_then(|token| self.validator.validated(token))
        {
            self.validator.metrics().accepted.increment();
            self.validator.metrics().cache_hits.increment();
            request.extensions_mut().insert(principal);
            return AuthFuture::inner(self.inner.call(request));
        }
        let token = match first.map(|v| parse_authorization(v.as_bytes())) {
            None | Some(Credentials::Missing) => {
                rejected("missing_token");
                return AuthFuture::ready(challenge::missing_token());
            }
            Some(Credentials::TooLarge) => {
                tracing::debug!(reason = "too_large", "token refused");
                rejected("too_large");
                return AuthFuture::ready(challenge::invalid_token(
                    "the access token is too large",
                ));
            }
            Some(Credentials::Malformed) => {
                tracing::debug!(reason = "malformed_header", "request refused");
                rejected("malformed_header");
                return AuthFuture::ready(challenge::invalid_request(
                    "The Authorization header must be 'Bearer' followed by one token.",
                ));
            }
            Some(Credentials::Bearer(token)) => token,
        };
        // First sight of a token whose key is loaded: validated here and now, so again no
        // box and no copy of the token.
        match self.validator.verify_now(token) {
            Some(Ok(principal)) => {
                self.validator.metrics().accepted.increment();
                request.extensions_mut().insert(principal);
                return AuthFuture::inner(self.inner.call(request));
            }
            Some(Err(error)) => return AuthFuture::ready(refusal(error)),
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
            match validator.validate(&token).await {
                Ok(principal) => {
                    validator.metrics().accepted.increment();
                    request.extensions_mut().insert(principal);
                    inner.call(request).await
                }
                Err(error) => Ok(refusal(error)),
            }
        }))
    }
}

/// The response for a refused token; the reason goes to the log, never the token.
fn refusal(error: ValidationError) -> Response<Body> {
    rejected(error.reason());
    if let ValidationError::KeysUnavailable { retry_after } = error {
        tracing::warn!(
            retry_after,
            "request refused: the issuer's keys are not loaded"
        );
        challenge::keys_unavailable(retry_after)
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
        let big = format!("Bearer {}", "a".repeat(MAX_AUTHORIZATION_LEN));
        assert_eq!(parse_authorization(big.as_bytes()), Credentials::TooLarge);
    }
}
