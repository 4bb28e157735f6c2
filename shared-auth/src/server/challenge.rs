//! Refusals at the HTTP edge: RFC 6750 `WWW-Authenticate: Bearer` challenges with RFC 9457
//! `application/problem+json` bodies.
//!
//! Every text here is fixed or comes from a [`ValidationError`]'s `Display`, never from the
//! request: no token, header value or claim is ever echoed back.

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};
use serde_json::json;

use super::error::ValidationError;

/// `application/problem+json`.
pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

/// Builds an RFC 9457 problem response (`type` is `about:blank`, `title` the status text).
pub fn problem(status: StatusCode, detail: &str) -> Response<Body> {
    let body = json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn with_challenge(mut response: Response<Body>, challenge: String) -> Response<Body> {
    // The challenge is built from fixed strings and validated scope tokens (RFC 6749 3.3
    // characters), so it is always a valid header value; fall back to the bare scheme.
    let value = HeaderValue::from_str(&challenge).unwrap_or(HeaderValue::from_static("Bearer"));
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, value);
    response
}

/// 401 with a bare `Bearer` challenge: no credentials were sent (RFC 6750 section 3.1).
pub(crate) fn missing_token() -> Response<Body> {
    with_challenge(
        problem(
            StatusCode::UNAUTHORIZED,
            "A bearer access token is required.",
        ),
        "Bearer".to_owned(),
    )
}

/// 400 `invalid_request`: the Authorization header is malformed or repeated.
pub(crate) fn invalid_request(description: &'static str) -> Response<Body> {
    with_challenge(
        problem(StatusCode::BAD_REQUEST, description),
        format!("Bearer error=\"invalid_request\", error_description=\"{description}\""),
    )
}

/// 401 `invalid_token` with a short description.
pub(crate) fn invalid_token(description: &str) -> Response<Body> {
    with_challenge(
        problem(StatusCode::UNAUTHORIZED, description),
        format!("Bearer error=\"invalid_token\", error_description=\"{description}\""),
    )
}

/// 401 for a validation failure.
pub(crate) fn rejected(error: ValidationError) -> Response<Body> {
    invalid_token(&error.to_string())
}

/// 403 `insufficient_scope`, naming the scope(s) needed (space-separated).
pub(crate) fn insufficient_scope(required: &str, detail: &str) -> Response<Body> {
    let challenge = if required.is_empty() {
        "Bearer error=\"insufficient_scope\"".to_owned()
    } else {
        format!("Bearer error=\"insufficient_scope\", scope=\"{required}\"")
    };
    with_challenge(problem(StatusCode::FORBIDDEN, detail), challenge)
}

/// 503 when the issuer's keys are not loaded yet (lazy start with the issuer down), with
/// `Retry-After`: when the key cache may try the issuer again.
pub(crate) fn keys_unavailable(retry_after_secs: u64) -> Response<Body> {
    let mut r = problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "Token validation is temporarily unavailable.",
    );
    r.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(retry_after_secs.max(1)),
    );
    r
}
