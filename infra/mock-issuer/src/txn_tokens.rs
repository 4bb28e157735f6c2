//! A Transaction Token Service (draft-ietf-oauth-transaction-tokens-08): the token
//! exchange profile that turns the token a request arrived with into a Transaction Token
//! for the call chain it starts, inside one trust domain.
//!
//! Served at the token endpoint when the issuer has a `trust_domain`, to clients
//! registered for the token-exchange grant:
//! - `requested_token_type=urn:ietf:params:oauth:token-type:txn_token`;
//! - `audience` must be the trust domain (else `invalid_target`);
//! - `subject_token`: an access token this issuer signed, unexpired (as for
//!   `crate::token_exchange`);
//! - `scope`: the subject's, or a subset (`invalid_scope` beyond it);
//! - `request_context` (who asked: the caller's address, how it authenticated) and
//!   `request_details` (what was asked): JSON objects, each at most 4 KiB, become the
//!   token's `rctx` and `tctx`.
//!
//! The token: header `typ: txntoken+jwt`; claims `iss`, `iat`, `exp` (60 s by default,
//! never after the subject token), `aud` (the trust domain), `txn` (a new unique id),
//! `sub` (the subject's), `scope`, `req_wl` (the calling client, the requesting workload),
//! `rctx`, `tctx`. The answer's `token_type` is `N_A` and `issued_token_type` the
//! Transaction Token type; no refresh token.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::config::ClientConfig;
use crate::state::{IssuerState, unix_now};
use crate::token_endpoint::{OAuthError, Params, no_store, random_id};
use crate::token_exchange::{narrowed_scopes, own_token};

/// The token type of a Transaction Token.
pub(crate) const TXN_TOKEN: &str = "urn:ietf:params:oauth:token-type:txn_token";
/// Its JWS `typ`.
const TYP: &str = "txntoken+jwt";
/// Largest `request_context` or `request_details` accepted.
const MAX_CONTEXT_BYTES: usize = 4096;

/// Issues a Transaction Token to an authenticated `client`.
pub(crate) fn grant(
    state: &IssuerState,
    client: &ClientConfig,
    params: &Params,
) -> Result<Response, OAuthError> {
    let Some(trust_domain) = state.config.trust_domain.as_deref() else {
        return Err(OAuthError::invalid_request(
            "this issuer runs no Transaction Token Service (no trust_domain configured)",
        ));
    };
    match params.get("audience") {
        Some(audience) if audience == trust_domain => {}
        Some(audience) => {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "invalid_target",
                format!("audience {audience:?} is not this service's trust domain"),
            ));
        }
        None => {
            return Err(OAuthError::invalid_request(
                "audience (the trust domain) is required for a Transaction Token",
            ));
        }
    }
    let now = unix_now();
    let subject = own_token(state, params, "subject_token", now)?;
    let sub = subject
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("the subject token names no sub"))?
        .to_owned();
    let scopes = narrowed_scopes(&subject, params)?;
    let rctx = context(params, "request_context")?;
    let tctx = context(params, "request_details")?;
    let subject_exp = subject.get("exp").and_then(Value::as_u64).unwrap_or(now);
    let lifetime = state
        .config
        .txn_token_lifetime
        .as_secs()
        .min(subject_exp.saturating_sub(now))
        .max(1);
    let key = state.current_key();
    let header = json!({"alg": key.alg().as_str(), "kid": key.kid(), "typ": TYP});
    let txn = random_id();
    let mut claims = json!({
        "iss": state.issuer,
        "iat": now,
        "exp": now + lifetime,
        "aud": trust_domain,
        "txn": txn,
        "sub": sub,
        "scope": scopes.join(" "),
        "req_wl": client.client_id,
    });
    if let Some(rctx) = rctx {
        claims["rctx"] = rctx;
    }
    if let Some(tctx) = tctx {
        claims["tctx"] = tctx;
    }
    let token = key.sign_json(&header, &claims).map_err(|e| {
        OAuthError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            e.to_string(),
        )
    })?;
    tracing::info!(client_id = %client.client_id, %sub, %txn, "transaction token issued");
    let mut response = axum::Json(json!({
        "access_token": token,
        "issued_token_type": TXN_TOKEN,
        "token_type": "N_A",
        "expires_in": lifetime,
    }))
    .into_response();
    no_store(response.headers_mut());
    Ok(response)
}

/// The JSON object in parameter `name`, if sent.
fn context(params: &Params, name: &str) -> Result<Option<Value>, OAuthError> {
    let Some(text) = params.get(name) else {
        return Ok(None);
    };
    if text.len() > MAX_CONTEXT_BYTES {
        return Err(OAuthError::invalid_request(format!(
            "{name} is longer than {MAX_CONTEXT_BYTES} bytes"
        )));
    }
    match serde_json::from_str::<Map<String, Value>>(text) {
        Ok(object) => Ok(Some(Value::Object(object))),
        Err(_) => Err(OAuthError::invalid_request(format!(
            "{name} is not a JSON object"
        ))),
    }
}
