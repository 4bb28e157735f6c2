//! Opaque access tokens, token introspection (RFC 7662, with the JWT response of RFC 9701)
//! and revocation (RFC 7009).
//!
//! - A client configured with `opaque_access_tokens` gets a random, high-entropy token that
//!   is not a JWS; the issuer keeps what a JWT would carry (client, scope, subject, times,
//!   `cnf.jkt` when DPoP-bound, an active flag).
//! - `POST /introspect` answers for any token the issuer issued, opaque or JWT (the JWT's
//!   signature is checked with a published key). The caller must authenticate as a
//!   configured client, as at the token endpoint (`client_secret_basic`,
//!   `client_secret_post`, `private_key_jwt` or federated). Unknown, expired or revoked
//!   tokens are `{"active":false}` and nothing more (RFC 7662 section 2.2). With
//!   `Accept: application/token-introspection+jwt` the answer is a JWT signed with the
//!   current key, `typ: token-introspection+jwt`, claims `iss`, `aud` (the caller's
//!   client id), `iat` and `token_introspection` (RFC 9701 section 5).
//! - `POST /revoke` (RFC 7009) revokes a token for an authenticated caller and answers
//!   200 whether or not the token was known (section 2.2).
//!
//! Fault knobs (see `IssuerHandle`): a delay, the next N answers failing with a status, the
//! endpoint down, and a foreign signing key for JWT answers. Every request is counted, and
//! so is the most that were in progress at once.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::client_auth::ASSERTION_ALGS;
use crate::config::{ClientConfig, ScopeFormat};
use crate::jose::{UnverifiedJws, signature_verifies};
use crate::state::{IssuerState, OpaqueToken, unix_now};
use crate::token_endpoint::{
    ClientAuthentication, OAuthError, Params, authentication_method, find_client, no_store,
};
use crate::user_tokens::RefreshRevocation;

/// The media type of an RFC 9701 introspection response.
pub(crate) const INTROSPECTION_JWT: &str = "application/token-introspection+jwt";

/// A new opaque token: 32 random bytes, base64url (43 characters, no dots, so never
/// mistaken for a JWS).
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // Only fails without an OS RNG; a test issuer then still issues a (predictable) token.
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Issues and remembers an opaque token; returns its value.
pub(crate) fn issue_opaque(
    state: &IssuerState,
    client_id: &str,
    scopes: &[String],
    now: u64,
    lifetime: Duration,
    jkt: Option<String>,
) -> String {
    let token = random_token();
    let entry = OpaqueToken {
        client_id: client_id.to_owned(),
        scopes: scopes.to_vec(),
        sub: client_id.to_owned(),
        iat: now,
        exp: now + lifetime.as_secs(),
        jkt,
        active: true,
    };
    state
        .tokens
        .opaque
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(token.clone(), entry);
    state
        .counters
        .opaque_tokens_issued
        .fetch_add(1, Ordering::SeqCst);
    token
}

/// Revokes `token` (opaque, JWT, or a refresh token with its family). Returns whether it
/// was an opaque or refresh token the issuer knew.
pub(crate) fn revoke(state: &IssuerState, token: &str) -> bool {
    if crate::user_tokens::revoke_refresh_token(state, token, None) == RefreshRevocation::Revoked {
        return true;
    }
    if let Some(entry) = state
        .tokens
        .opaque
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_mut(token)
    {
        entry.active = false;
        return true;
    }
    state
        .tokens
        .revoked_jwts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(token.to_owned());
    false
}

/// The RFC 7662 answer for `token`: `{"active":false}`, or the token's claims with
/// `active: true`.
pub(crate) fn introspect_token(state: &IssuerState, token: &str, now: u64) -> Value {
    let inactive = json!({ "active": false });
    let opaque = state
        .tokens
        .opaque
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(token)
        .cloned();
    if let Some(t) = opaque {
        if !t.active || t.exp <= now {
            return inactive;
        }
        let scope = match state.config.scope_format {
            ScopeFormat::String => json!(t.scopes.join(" ")),
            // RFC 7662's `scope` is a string; an issuer set to arrays still answers with
            // one there, as IdentityServer's introspection does.
            ScopeFormat::Array => json!(t.scopes.join(" ")),
        };
        let mut answer = json!({
            "active": true,
            "scope": scope,
            "client_id": t.client_id,
            "sub": t.sub,
            "exp": t.exp,
            "iat": t.iat,
            "iss": state.issuer,
            "token_type": if t.jkt.is_some() { "DPoP" } else { "Bearer" },
        });
        // The audience, as the issuer's JWTs name it (RFC 7662 section 2.2).
        let aud = crate::token_endpoint::audience(state, &t.scopes);
        if aud != json!([]) {
            answer["aud"] = aud;
        }
        if let Some(jkt) = t.jkt {
            answer["cnf"] = json!({ "jkt": jkt });
        }
        return answer;
    }
    match own_jwt_claims(state, token, now) {
        Some(mut claims) => {
            let dpop = claims.get("cnf").is_some();
            claims.insert("active".into(), Value::Bool(true));
            claims.insert(
                "token_type".into(),
                json!(if dpop { "DPoP" } else { "Bearer" }),
            );
            if let Some(Value::Array(scopes)) = claims.get("scope") {
                let joined: Vec<&str> = scopes.iter().filter_map(Value::as_str).collect();
                let joined = joined.join(" ");
                claims.insert("scope".into(), Value::String(joined));
            }
            Value::Object(claims)
        }
        None => inactive,
    }
}

/// The claims of a JWT this issuer signed (with a published key), not expired and not
/// revoked; `None` otherwise.
fn own_jwt_claims(
    state: &IssuerState,
    token: &str,
    now: u64,
) -> Option<serde_json::Map<String, Value>> {
    let jws = UnverifiedJws::parse(token).ok()?;
    let alg = jws.algorithm(&ASSERTION_ALGS).ok()?;
    let kid = jws.header.get("kid").and_then(Value::as_str);
    let signed_here = state.published_keys().iter().any(|k| {
        (kid.is_none() || Some(k.kid()) == kid)
            && serde_json::from_value(k.public_jwk().clone())
                .ok()
                .is_some_and(|jwk| signature_verifies(&jws, &jwk, alg))
    });
    if !signed_here || jws.claim_str("iss") != Some(state.issuer.as_str()) {
        return None;
    }
    let exp = jws.claim_time("exp").ok().flatten()?;
    if exp <= now
        || state
            .tokens
            .revoked_jwts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(token)
    {
        return None;
    }
    Some(jws.claims)
}

/// Counts one request in progress, and the most at once; uncounts it when dropped.
struct InFlight<'a>(&'a IssuerState);

impl<'a> InFlight<'a> {
    fn enter(state: &'a IssuerState) -> Self {
        let c = &state.counters;
        let now = c.introspection_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        c.introspection_max_in_flight
            .fetch_max(now, Ordering::SeqCst);
        InFlight(state)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0
            .counters
            .introspection_in_flight
            .fetch_sub(1, Ordering::SeqCst);
    }
}

/// Authenticates the caller of `/introspect` or `/revoke` as the token endpoint does.
async fn authenticate<'s>(
    state: &'s IssuerState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<&'s ClientConfig, OAuthError> {
    match authentication_method(headers, params)? {
        ClientAuthentication::Secret(creds) => find_client(state, &creds),
        ClientAuthentication::Assertion {
            client_id,
            assertion_type,
            assertion,
        } => {
            let now = unix_now();
            let auth =
                crate::client_auth::authenticate(state, client_id, assertion_type, assertion, now)
                    .await
                    .map_err(|d| OAuthError::invalid_client(d, false))?;
            if let Some(jti) = auth.single_use_jti {
                crate::client_auth::consume_jti(state, jti, now)
                    .map_err(|d| OAuthError::invalid_client(d, false))?;
            }
            Ok(auth.client)
        }
    }
}

/// The form body, checked: `application/x-www-form-urlencoded`, each parameter once,
/// `token` present.
fn form(headers: &HeaderMap, body: &[u8]) -> Result<Params, OAuthError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(OAuthError::invalid_request(
            "Content-Type must be application/x-www-form-urlencoded",
        ));
    }
    let params = Params::parse(body)?;
    if params.get("token").is_none_or(str::is_empty) {
        return Err(OAuthError::invalid_request("token is required"));
    }
    Ok(params)
}

/// Whether the caller asked for the RFC 9701 JWT answer.
fn wants_jwt(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|m| {
            m.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case(INTROSPECTION_JWT))
        })
}

/// `POST /introspect`.
pub(crate) async fn introspect(
    State(state): State<Arc<IssuerState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state
        .counters
        .introspection_requests
        .fetch_add(1, Ordering::SeqCst);
    let _in_flight = InFlight::enter(&state);
    let delay = state.faults.introspection_delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if !state.faults.introspection_available.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "introspection endpoint is down (fault injected)",
        )
            .into_response();
    }
    if let Some(status) = state.faults.take_introspection_failure() {
        return OAuthError::new(status, "temporarily_unavailable", "injected failure")
            .into_response();
    }
    match answer(&state, &headers, &body).await {
        Ok(response) => response,
        Err(error) => {
            tracing::info!(error = error.code, description = %error.description, "introspection request refused");
            error.into_response()
        }
    }
}

async fn answer(
    state: &IssuerState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, OAuthError> {
    let params = form(headers, body)?;
    let caller = authenticate(state, headers, &params).await?;
    let token = params.get("token").unwrap_or_default();
    let now = unix_now();
    let introspection = introspect_token(state, token, now);
    tracing::info!(caller = %caller.client_id, active = introspection["active"].as_bool().unwrap_or(false), "token introspected");
    let mut response = if wants_jwt(headers) {
        let foreign = state
            .faults
            .introspection_foreign_key
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let key = foreign.unwrap_or_else(|| state.current_key());
        let header_json = json!({
            "alg": key.alg().as_str(),
            "kid": key.kid(),
            "typ": "token-introspection+jwt",
        });
        let claims = json!({
            "iss": state.issuer,
            "aud": caller.client_id,
            "iat": now,
            "token_introspection": introspection,
        });
        let jwt = key.sign_json(&header_json, &claims).map_err(|e| {
            OAuthError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                e.to_string(),
            )
        })?;
        let mut response = jwt.into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(INTROSPECTION_JWT),
        );
        response
    } else {
        axum::Json(introspection).into_response()
    };
    no_store(response.headers_mut());
    Ok(response)
}

/// `POST /revoke` (RFC 7009): 200 for an authenticated caller, whatever the token.
pub(crate) async fn revoke_endpoint(
    State(state): State<Arc<IssuerState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let params = form(&headers, &body)?;
        let caller = authenticate(&state, &headers, &params).await?;
        let token = params.get("token").unwrap_or_default();
        // RFC 7009 section 2.1: a refresh token is revoked only for the client it was
        // issued to.
        match crate::user_tokens::revoke_refresh_token(&state, token, Some(&caller.client_id)) {
            RefreshRevocation::Revoked => {
                state
                    .users
                    .counters
                    .refresh_tokens_revoked
                    .fetch_add(1, Ordering::SeqCst);
                tracing::info!(caller = %caller.client_id, "refresh token revoked with its family");
                return Ok(StatusCode::OK.into_response());
            }
            RefreshRevocation::OtherClient => {
                return Err(OAuthError::invalid_request(
                    "the token was issued to another client",
                ));
            }
            RefreshRevocation::NotRefreshToken => {}
        }
        let known = revoke(&state, token);
        tracing::info!(caller = %caller.client_id, known, "token revoked");
        Ok::<_, OAuthError>(StatusCode::OK.into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
