//! RFC 9457 problem details: the one body shape of every error response, from the
//! server half's refusals and from a service's own handlers (my-service, my-bff), so a
//! caller reads one format whichever component answered.

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};
use serde_json::json;

/// `application/problem+json`.
pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

/// Builds an RFC 9457 problem response (`type` is `about:blank`, `title` the status text,
/// `Cache-Control: no-store`). `detail` is sent to the caller: never put a token, a secret
/// or an internal error in it.
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
