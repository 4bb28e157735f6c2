//! Admin endpoints (`--admin`): counters and key rotation over HTTP, for scripts and load
//! tests that run outside the test process.
//!
//! The issuer is a local tool, so its admin endpoints are a target for any web page the
//! developer has open: a page can send a CORS-"simple" `POST /admin/rotate-key` to
//! `127.0.0.1` without asking, and through DNS rebinding (its own name re-pointed at
//! `127.0.0.1`) it can even read `/admin/stats`. Two checks close both doors, in a
//! `route_layer` on the admin routes only (an unknown path stays 404, a wrong method 405):
//!
//! - the `Host` must name a loopback host (`localhost`, `127.0.0.0/8`, `[::1]`). A rebound
//!   page's requests carry the page's own host name, so they are refused with 403;
//! - the request must carry `Authorization: Bearer <admin token>`, a random token made at
//!   start (or given by the operator). A cross-origin page can only send that header after
//!   a CORS preflight, and the admin routes sit outside the CORS layer, so no preflight is
//!   ever approved; a missing or wrong token is refused with 401.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use subtle::ConstantTimeEq as _;

use crate::state::{IssuerState, IssuerStats};

/// The shortest admin token accepted from the operator: 16 characters. Generated tokens
/// are 64 (32 random bytes, hex).
const MIN_TOKEN_LEN: usize = 16;

/// Bytes of randomness in a generated token.
const GENERATED_TOKEN_BYTES: usize = 32;

/// The bearer token the admin endpoints require.
///
/// `Debug` prints no part of it, and there is no `Display`: showing it takes an explicit
/// [`AdminToken::expose_secret`].
#[derive(Clone)]
pub struct AdminToken(Arc<str>);

/// Why an admin token could not be made or was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminTokenError {
    /// A token given by the operator does not have the expected form.
    #[error(
        "must be at least {MIN_TOKEN_LEN} characters of A-Z a-z 0-9 - . _ ~ + / (e.g. `openssl rand -hex 32`)"
    )]
    Invalid,
    /// The system random generator failed.
    #[error("cannot generate an admin token: the system random generator failed")]
    Random,
}

impl AdminToken {
    /// A fresh token: 32 bytes from the system random generator, hex-encoded.
    pub fn generate() -> Result<Self, AdminTokenError> {
        let mut bytes = [0u8; GENERATED_TOKEN_BYTES];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| AdminTokenError::Random)?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(AdminToken(hex.into()))
    }

    /// A token chosen by the operator. It must be at least 16 characters of the RFC 6750
    /// `b64token` alphabet, so it fits in an `Authorization: Bearer` header as it is.
    pub fn new(value: impl Into<String>) -> Result<Self, AdminTokenError> {
        let value = value.into();
        let b64token = value.len() >= MIN_TOKEN_LEN
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
        if !b64token {
            return Err(AdminTokenError::Invalid);
        }
        Ok(AdminToken(value.into()))
    }

    /// The token itself, to print at start or hand to a script.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison with a presented token (its length is not secret).
    fn matches(&self, presented: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(presented).into()
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken([redacted])")
    }
}

/// The admin routes, guarded by [`require_admin`] with `token`.
pub(crate) fn routes(token: AdminToken) -> Router<Arc<IssuerState>> {
    Router::new()
        .route("/admin/stats", get(stats))
        .route("/admin/rotate-key", post(rotate_key))
        .route_layer(middleware::from_fn_with_state(token, require_admin))
}

/// Lets a request through only if it is addressed to a loopback host and carries the admin
/// token (see the module documentation for why both).
async fn require_admin(State(token): State<AdminToken>, request: Request, next: Next) -> Response {
    let uri_host_ok = request
        .uri()
        .authority()
        .is_none_or(|a| is_loopback_host(a.as_str()));
    let host_ok = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(is_loopback_host);
    if !(host_ok && uri_host_ok) {
        tracing::warn!(
            host = ?request.headers().get(header::HOST),
            "admin request refused: not addressed to a loopback host (DNS rebinding?)"
        );
        return problem(
            StatusCode::FORBIDDEN,
            "the admin endpoints answer only requests addressed to localhost, 127.0.0.0/8 or [::1]",
            None,
        );
    }
    match bearer_token(request.headers()) {
        Some(presented) if token.matches(presented) => next.run(request).await,
        Some(_) => {
            tracing::warn!("admin request refused: wrong admin token");
            problem(
                StatusCode::UNAUTHORIZED,
                "the admin token is not valid",
                Some(r#"Bearer realm="mock-issuer admin", error="invalid_token""#),
            )
        }
        None => problem(
            StatusCode::UNAUTHORIZED,
            "send Authorization: Bearer <admin token> (printed at start unless given by --admin-token)",
            Some(r#"Bearer realm="mock-issuer admin""#),
        ),
    }
}

/// The token of the one `Authorization: Bearer` header, if there is exactly one.
fn bearer_token(headers: &HeaderMap) -> Option<&[u8]> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let value = value.as_bytes();
    let (scheme, token) = value.split_at_checked(b"Bearer ".len())?;
    if !scheme.eq_ignore_ascii_case(b"Bearer ") {
        return None;
    }
    let token = token.trim_ascii_start();
    (!token.is_empty()).then_some(token)
}

/// Whether an HTTP `Host` (or URI authority) names a loopback host: `localhost`, an IPv4
/// address in 127.0.0.0/8 or `[::1]`, with an optional port. Anything else (another name,
/// user info, a malformed port) is not.
fn is_loopback_host(authority: &str) -> bool {
    let (host, port) = match authority.strip_prefix('[') {
        // IPv6 literal: `[addr]` or `[addr]:port`.
        Some(rest) => match rest.split_once(']') {
            Some((addr, after)) => {
                let port = match after {
                    "" => None,
                    p => match p.strip_prefix(':') {
                        Some(p) => Some(p),
                        None => return false,
                    },
                };
                return port_ok(port) && addr.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
            }
            None => return false,
        },
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    port_ok(port)
        && (host.eq_ignore_ascii_case("localhost")
            || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback()))
}

fn port_ok(port: Option<&str>) -> bool {
    // Digits only: `u16::from_str` would also take a leading `+`.
    port.is_none_or(|p| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok()
    })
}

/// An RFC 9457 problem response, with an RFC 6750 challenge for 401.
fn problem(status: StatusCode, detail: &str, challenge: Option<&'static str>) -> Response {
    let body = json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    let mut response = (status, Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if let Some(challenge) = challenge {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    response
}

async fn stats(State(state): State<Arc<IssuerState>>) -> Json<IssuerStats> {
    Json(state.stats())
}

async fn rotate_key(State(state): State<Arc<IssuerState>>) -> Response {
    match state.rotate_key() {
        Ok(kid) => Json(json!({ "kid": kid })).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "admin key rotation failed");
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "key rotation failed (see the issuer's log)",
                None,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn loopback_hosts_are_recognised_and_nothing_else() {
        for ok in [
            "localhost",
            "LocalHost:7000",
            "127.0.0.1",
            "127.0.0.1:7000",
            "127.8.9.10:1",
            "[::1]",
            "[::1]:7000",
            "[0:0:0:0:0:0:0:1]:80",
        ] {
            assert!(is_loopback_host(ok), "{ok} is loopback");
        }
        for refused in [
            "",
            "evil.example",
            "evil.example:7000",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "localhost.",
            "0.0.0.0:7000",
            "10.0.0.1",
            "[::]:7000",
            "[::ffff:7f00:1]",
            "[::1]7000",
            "[::1",
            "::1",
            "user@localhost",
            "localhost:",
            "localhost:+80",
            "localhost:99999",
            "localhost:80:80",
        ] {
            assert!(!is_loopback_host(refused), "{refused:?} is not loopback");
        }
    }

    #[test]
    fn bearer_token_takes_one_header_and_any_scheme_case() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer_token(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer abc"),
        );
        assert_eq!(bearer_token(&h), Some(&b"abc"[..]));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer_token(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer_token(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        h.append(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer_token(&h), None, "two headers are ambiguous");
    }

    #[test]
    fn tokens_are_random_checked_and_never_printed() {
        let a = AdminToken::generate().unwrap();
        let b = AdminToken::generate().unwrap();
        assert_eq!(a.expose_secret().len(), 64);
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(a.matches(a.expose_secret().as_bytes()));
        assert!(!a.matches(b.expose_secret().as_bytes()));
        assert!(!a.matches(&a.expose_secret().as_bytes()[..63]));
        assert!(!format!("{a:?}").contains(a.expose_secret()));
        assert!(AdminToken::new("short").is_err());
        assert!(AdminToken::new("sixteen chars ok").is_err(), "no spaces");
        assert!(AdminToken::new("sixteen-chars-ok").is_ok());
    }
}
