//! RFC 8693 token exchange, for clients registered for it (`allowed_grant_types` holds
//! `urn:ietf:params:oauth:grant-type:token-exchange`): a service trades the token it
//! received (the subject) for one meant for another API, issued to it, on behalf of the
//! subject.
//!
//! - The subject token (and the actor token, when one is sent) must be an access token
//!   this issuer signed, unexpired (of its profile: `token_use: access` under Cognito, `typ:
//!   at+jwt` under RFC 9068; never a Transaction Token or an ID token): `subject_token_type` (`actor_token_type`) is
//!   `urn:ietf:params:oauth:token-type:access_token` or `...:jwt`.
//! - The actor is the actor token's `sub`, else the calling client. A subject token with
//!   `may_act` must name that actor there.
//! - The new token: `sub` = the subject's, `client_id` = the calling client, `scope` =
//!   the subject's, or the subset asked for (`invalid_scope` beyond it), `aud` = the
//!   `audience` asked for (a configured resource server, else `invalid_target`), and
//!   `act` = the actor, with the subject's own `act` nested inside (RFC 8693 section 4.1):
//!   at most 8 deep. It expires no later than the subject token. No refresh token.
//! - Every refusal is `400 invalid_request` (RFC 8693 section 2.2.2) unless said above.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::config::ClientConfig;
use crate::jose::UnverifiedJws;
use crate::state::{IssuerState, unix_now};
use crate::token_endpoint::{OAuthError, Params, no_store, token_contents};

/// The grant type.
pub(crate) const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The token types a subject or actor token may be.
pub(crate) const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
/// The longest delegation chain issued.
const MAX_CHAIN: usize = 8;

/// Handles a token-exchange request of an authenticated `client`.
pub(crate) fn grant(
    state: &IssuerState,
    client: &ClientConfig,
    params: &Params,
) -> Result<Response, OAuthError> {
    let now = unix_now();
    match params.get("requested_token_type") {
        None | Some(ACCESS_TOKEN) => {}
        Some(crate::txn_tokens::TXN_TOKEN) => {
            return crate::txn_tokens::grant(state, client, params);
        }
        Some(requested) => {
            return Err(OAuthError::invalid_request(format!(
                "requested_token_type {requested:?} is not issued here (only {ACCESS_TOKEN} \
                 and {})",
                crate::txn_tokens::TXN_TOKEN
            )));
        }
    }
    let subject = own_token(state, params, "subject_token", now)?;
    let subject_sub = subject
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("the subject token names no sub"))?
        .to_owned();
    let actor = match params.get("actor_token") {
        Some(_) => own_token(state, params, "actor_token", now)?
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| OAuthError::invalid_request("the actor token names no sub"))?
            .to_owned(),
        None => client.client_id.clone(),
    };
    if let Some(may_act) = subject.get("may_act")
        && may_act.get("sub").and_then(Value::as_str) != Some(actor.as_str())
    {
        return Err(OAuthError::invalid_request(format!(
            "the subject token's may_act does not name the actor {actor:?}"
        )));
    }
    let scopes = narrowed_scopes(&subject, params)?;
    let audience = match params.get("audience") {
        None => None,
        Some(audience) => {
            let known =
                state.config.resource_servers.iter().any(|rs| {
                    rs.identifier == audience || rs.audience.as_deref() == Some(audience)
                });
            if !known {
                return Err(OAuthError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_target",
                    format!("audience {audience:?} is not an API of this issuer"),
                ));
            }
            Some(audience.to_owned())
        }
    };
    let mut act = Map::new();
    act.insert("sub".into(), json!(actor));
    if let Some(prior) = subject.get("act") {
        let mut depth = 1;
        let mut link = prior;
        while let Some(next) = link.get("act") {
            depth += 1;
            link = next;
        }
        if depth + 1 > MAX_CHAIN {
            return Err(OAuthError::invalid_request(format!(
                "the delegation chain would be longer than {MAX_CHAIN}"
            )));
        }
        act.insert("act".into(), prior.clone());
    }
    let subject_exp = subject.get("exp").and_then(Value::as_u64).unwrap_or(now);
    let lifetime = state.token_lifetime().min(std::time::Duration::from_secs(
        subject_exp.saturating_sub(now).max(1),
    ));
    let key = state.current_key();
    let (header, mut claims) = token_contents(
        state,
        key.kid(),
        key.alg().as_str(),
        &client.client_id,
        &scopes,
        now,
        lifetime,
    );
    claims["sub"] = json!(subject_sub);
    claims["act"] = Value::Object(act);
    if let Some(audience) = &audience {
        claims["aud"] = json!(audience);
    }
    let access_token = key.sign_json(&header, &claims).map_err(|e| {
        OAuthError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            e.to_string(),
        )
    })?;
    tracing::info!(client_id = %client.client_id, sub = %subject_sub, actor = %actor, audience = ?audience, "token exchanged");
    let mut body = json!({
        "access_token": access_token,
        "issued_token_type": ACCESS_TOKEN,
        "token_type": "Bearer",
        "expires_in": lifetime.as_secs(),
    });
    if !scopes.is_empty() {
        body["scope"] = json!(scopes.join(" "));
    }
    let mut response = axum::Json(body).into_response();
    no_store(response.headers_mut());
    Ok(response)
}

/// The claims of the token in parameter `name` (with its type in `{name}_type`): an
/// access token this issuer signed, with a published key, and not expired.
pub(crate) fn own_token(
    state: &IssuerState,
    params: &Params,
    name: &str,
    now: u64,
) -> Result<Map<String, Value>, OAuthError> {
    let refuse = |why: String| OAuthError::invalid_request(format!("{name}: {why}"));
    let token = params
        .get(name)
        .ok_or_else(|| refuse("is required".into()))?;
    let type_name = format!("{name}_type");
    match params.get(&type_name) {
        Some(ACCESS_TOKEN | JWT) => {}
        Some(other) => return Err(refuse(format!("{type_name} {other:?} is not accepted"))),
        None => return Err(refuse(format!("{type_name} is required"))),
    }
    let jws = UnverifiedJws::parse(token).map_err(refuse)?;
    let kid = jws.header.get("kid").and_then(Value::as_str).unwrap_or("");
    let keys = state
        .keyring
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .published(now);
    let verified = keys.iter().any(|key| {
        key.kid() == kid
            && serde_json::from_value::<jsonwebtoken::jwk::Jwk>(key.public_jwk().clone())
                .ok()
                .zip(key.alg().as_str().parse::<jsonwebtoken::Algorithm>().ok())
                .is_some_and(|(jwk, alg)| crate::jose::signature_verifies(&jws, &jwk, alg))
    });
    if !verified {
        return Err(refuse("not signed by this issuer".into()));
    }
    if jws.claim_str("iss") != Some(state.issuer.as_str()) {
        return Err(refuse("issued by another issuer".into()));
    }
    // An access token of this issuer's profile, nothing else it signs: not a Transaction
    // Token (which must not leave its trust domain as an access token, nor mint another),
    // not an ID token.
    let typ = jws
        .header
        .get("typ")
        .and_then(Value::as_str)
        .map(|t| t.trim_start_matches("application/").to_ascii_lowercase());
    let access = match state.config.profile {
        crate::config::TokenProfile::Cognito => {
            jws.claim_str("token_use") == Some("access")
                && typ.as_deref().is_none_or(|t| t == "jwt" || t == "at+jwt")
        }
        crate::config::TokenProfile::Rfc9068 => typ.as_deref() == Some("at+jwt"),
    };
    if !access {
        return Err(refuse("not an access token of this issuer".into()));
    }
    match jws.claim_time("exp").map_err(refuse)? {
        Some(exp) if exp > now => {}
        _ => return Err(refuse("expired".into())),
    }
    Ok(jws.claims)
}

/// The subject token's scopes, or the subset `scope` asks for (`invalid_scope` beyond
/// them).
pub(crate) fn narrowed_scopes(
    subject: &Map<String, Value>,
    params: &Params,
) -> Result<Vec<String>, OAuthError> {
    let granted: Vec<String> = match subject.get("scope") {
        Some(Value::String(s)) => s
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    let Some(requested) = params.get("scope") else {
        return Ok(granted);
    };
    let mut scopes = Vec::new();
    for s in requested.split(' ').filter(|s| !s.is_empty()) {
        if !granted.iter().any(|g| g == s) {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                format!("scope {s:?} is not in the subject token"),
            ));
        }
        scopes.push(s.to_owned());
    }
    Ok(scopes)
}
