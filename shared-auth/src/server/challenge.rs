//! Refusals at the HTTP edge: RFC 6750 `WWW-Authenticate: Bearer` challenges with RFC 9457
//! `application/problem+json` bodies.
//!
//! Every text here is fixed or comes from a [`ValidationError`]'s `Display`, never from the
//! request: no token, header value or claim is ever echoed back.

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};

use super::error::ValidationError;
pub(crate) use crate::problem::problem;

fn with_challenge(mut response: Response<Body>, challenge: String) -> Response<Body> {
    // The challenge is built from fixed strings and validated scope tokens (RFC 6749 3.3
    // characters), so it is always a valid header value; fall back to the bare scheme.
    let value = HeaderValue::from_str(&challenge).unwrap_or(HeaderValue::from_static("Bearer"));
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, value);
    response
}

/// Adds one more `WWW-Authenticate` value (RFC 9110 section 11.6.1: a challenge per
/// header line, so that parsers that split scheme from parameters per value read each).
fn append_challenge(mut response: Response<Body>, challenge: &str) -> Response<Body> {
    if let Ok(value) = HeaderValue::from_str(challenge) {
        response
            .headers_mut()
            .append(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// Adds `param` (RFC 9728 section 5.1's `resource_metadata="..."`) to every challenge of
/// `response`: after the scheme of a bare one (`Bearer resource_metadata="..."`), after the
/// last parameter of the others (`Bearer error="invalid_token", ..., resource_metadata=
/// "..."`), so that the error stays first for parsers and tests that look there. A response
/// without challenges (503) is left as it is.
pub(crate) fn with_resource_metadata(mut response: Response<Body>, param: &str) -> Response<Body> {
    let headers = response.headers_mut();
    let values: Vec<HeaderValue> = headers
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|value| {
            let challenge = value.to_str().ok()?;
            let joined = if challenge.contains(' ') {
                format!("{challenge}, {param}")
            } else {
                format!("{challenge} {param}")
            };
            // Both parts are valid header text, so is their join; keep the old value if not.
            Some(HeaderValue::from_str(&joined).unwrap_or_else(|_| value.clone()))
        })
        .collect();
    if values.is_empty() {
        return response;
    }
    headers.remove(header::WWW_AUTHENTICATE);
    for value in values {
        headers.append(header::WWW_AUTHENTICATE, value);
    }
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

/// 401 for a request without credentials where DPoP is accepted (RFC 9449 section 7.1):
/// `algs` is the `algs="..."` parameter. With `bearer_too`, a bare `Bearer` challenge
/// first, then `DPoP algs="..."`, as two header values; without, only the `DPoP` one.
pub(crate) fn missing_token_dpop(algs: &str, bearer_too: bool) -> Response<Body> {
    if bearer_too {
        append_challenge(
            with_challenge(
                problem(
                    StatusCode::UNAUTHORIZED,
                    "An access token is required (Bearer or DPoP).",
                ),
                "Bearer".to_owned(),
            ),
            &format!("DPoP {algs}"),
        )
    } else {
        with_challenge(
            problem(
                StatusCode::UNAUTHORIZED,
                "A DPoP-bound access token and a DPoP proof are required.",
            ),
            format!("DPoP {algs}"),
        )
    }
}

/// A refusal under the `DPoP` scheme: `DPoP algs="...", error="..",
/// error_description=".."` with a problem body of the same description.
pub(crate) fn dpop_error(
    status: StatusCode,
    algs: &str,
    error: &str,
    description: &str,
) -> Response<Body> {
    with_challenge(
        problem(status, description),
        format!("DPoP {algs}, error=\"{error}\", error_description=\"{description}\""),
    )
}

/// 401 `use_dpop_nonce` with the nonce to use in `DPoP-Nonce` (RFC 9449 section 9).
pub(crate) fn use_dpop_nonce(algs: &str, nonce: &str) -> Response<Body> {
    let mut response = dpop_error(
        StatusCode::UNAUTHORIZED,
        algs,
        "use_dpop_nonce",
        "a current DPoP nonce is required: retry with the nonce of the DPoP-Nonce header",
    );
    if let Ok(value) = HeaderValue::from_str(nonce) {
        response.headers_mut().insert(DPOP_NONCE, value);
    }
    response
}

/// The `DPoP-Nonce` response header.
pub(crate) const DPOP_NONCE: header::HeaderName = header::HeaderName::from_static("dpop-nonce");

/// 401 `invalid_token` for a DPoP-bound token sent as `Bearer`; where DPoP is accepted,
/// the `DPoP` challenge follows as a second value.
pub(crate) fn bound_token_as_bearer(algs: Option<&str>) -> Response<Body> {
    let response = invalid_token(
        "the access token is DPoP-bound: send it with the DPoP scheme and a DPoP proof",
    );
    match algs {
        Some(algs) => append_challenge(response, &format!("DPoP {algs}")),
        None => response,
    }
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

/// 503 with `Retry-After` when a token cannot be checked now through no fault of the
/// caller: the issuer's keys are not loaded yet (lazy start with the issuer down; then
/// `Retry-After` is when the key cache may try again), the DPoP replay store does not
/// answer, or signature verifications are at their bound.
pub(crate) fn unavailable(retry_after_secs: u64) -> Response<Body> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::PROBLEM_JSON;

    const ALGS: &str = "algs=\"ES256 EdDSA\"";

    fn challenges(response: &Response<Body>) -> Vec<&str> {
        response
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    #[test]
    fn dpop_challenges_follow_rfc9449_section_7_1() {
        // Allowed: one challenge per header value, Bearer first (RFC 9110 section 11.6.1).
        let r = missing_token_dpop(ALGS, true);
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(challenges(&r), ["Bearer", "DPoP algs=\"ES256 EdDSA\""]);
        // Required: DPoP only.
        let r = missing_token_dpop(ALGS, false);
        assert_eq!(challenges(&r), ["DPoP algs=\"ES256 EdDSA\""]);
        let r = dpop_error(
            StatusCode::UNAUTHORIZED,
            ALGS,
            "invalid_dpop_proof",
            "the DPoP proof is not fresh",
        );
        assert_eq!(
            challenges(&r),
            [
                "DPoP algs=\"ES256 EdDSA\", error=\"invalid_dpop_proof\", error_description=\"the DPoP proof is not fresh\""
            ]
        );
        assert_eq!(r.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let r = use_dpop_nonce(ALGS, "n0nce");
        assert!(
            challenges(&r)[0].starts_with("DPoP algs=\"ES256 EdDSA\", error=\"use_dpop_nonce\"")
        );
        assert_eq!(r.headers()[DPOP_NONCE], "n0nce");
        // A bound token sent as Bearer: invalid_token saying why, then the DPoP offer.
        let r = bound_token_as_bearer(Some(ALGS));
        let found = challenges(&r);
        assert!(
            found[0].starts_with("Bearer error=\"invalid_token\"")
                && found[0].contains("DPoP-bound")
        );
        assert_eq!(found[1], "DPoP algs=\"ES256 EdDSA\"");
        assert_eq!(challenges(&bound_token_as_bearer(None)).len(), 1);
    }

    #[test]
    fn the_resource_metadata_parameter_joins_every_challenge() {
        const META: &str =
            "resource_metadata=\"https://api.example/.well-known/oauth-protected-resource\"";
        let r = with_resource_metadata(missing_token_dpop(ALGS, true), META);
        assert_eq!(
            challenges(&r),
            [
                format!("Bearer {META}"),
                format!("DPoP algs=\"ES256 EdDSA\", {META}")
            ]
        );
        let r = with_resource_metadata(invalid_token("the access token expired"), META);
        assert_eq!(
            challenges(&r),
            [format!(
                "Bearer error=\"invalid_token\", error_description=\"the access token expired\", {META}"
            )]
        );
        let r = with_resource_metadata(unavailable(3), META);
        assert!(challenges(&r).is_empty());
    }
}
