//! The grants that carry a user: `authorization_code` (RFC 6749 section 4.1.3, PKCE per RFC
//! 7636 section 4.6) and `refresh_token` (section 6), with the tokens they issue.
//!
//! The token endpoint has already checked the form, the DPoP proof and the client's
//! authentication (as for client credentials: secret, `private_key_jwt` or federated) and
//! that the client may use the grant; this module checks the rest.
//!
//! - **Code**: single use. The first redemption attempt uses it up, whatever its outcome; a
//!   second is `invalid_grant` and revokes the tokens the first one issued (section 4.1.2).
//!   It must come from the client it was issued to, with the same `redirect_uri`, within 60
//!   seconds, with the `code_verifier` whose S256 hash is the `code_challenge`.
//! - **Tokens**: an access token in the issuer's profile (a JWT, or opaque for a client with
//!   `opaque_access_tokens`) with `sub` = the user, `client_id` = the client and the granted
//!   scopes; with `openid`, an ID token (`iss`, `sub`, `aud` = `azp` = the client, `exp`,
//!   `iat`, `auth_time`, `sid`, `nonce`, `at_hash`, and `name` / `email` with those scopes);
//!   with `offline_access` (only kept for clients allowed the refresh grant), an opaque
//!   refresh token. Lifetimes are the token lifetime (see `IssuerHandle::set_token_lifetime`)
//!   and the refresh token lifetime.
//! - **Refresh**: every use rotates the token (a new one is returned, the old one is spent).
//!   Tokens descending from one code form a family; presenting a spent token is reuse, and
//!   revokes the whole family, the current token and its access tokens included (OAuth 2.0
//!   Security BCP section 4.14.2). A refresh may ask for fewer scopes, never more, and only
//!   the client the family belongs to may use it. Every refusal is `invalid_grant` (or
//!   `invalid_scope`).

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::config::{ClientConfig, TokenProfile};
use crate::state::{IssuerState, unix_now};
use crate::token_endpoint::{OAuthError, Params, no_store, token_contents};
use crate::user_flows::{RefreshFamily, RefreshToken, lock, random_value};

fn invalid_grant(description: impl Into<String>) -> OAuthError {
    OAuthError::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

fn server_error(e: impl std::fmt::Display) -> OAuthError {
    OAuthError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        e.to_string(),
    )
}

/// Answers `grant_type=authorization_code` or `refresh_token` for an authenticated client.
/// `jkt`: the DPoP key the access token is bound to, if a proof came with the request.
pub(crate) async fn grant(
    state: &IssuerState,
    client: &ClientConfig,
    grant_type: &str,
    params: &Params,
    jkt: Option<String>,
) -> Result<Response, OAuthError> {
    match grant_type {
        "authorization_code" => redeem_code(state, client, params, jkt),
        _ => refresh(state, client, params, jkt).await,
    }
}

/// RFC 7636 section 4.1: 43 to 128 characters of `[A-Za-z0-9-._~]`.
fn verifier_well_formed(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// `BASE64URL(SHA-256(verifier))`, the S256 challenge.
pub(crate) fn s256(verifier: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

fn redeem_code(
    state: &IssuerState,
    client: &ClientConfig,
    params: &Params,
    jkt: Option<String>,
) -> Result<Response, OAuthError> {
    let code = params
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let redirect_uri = params
        .get("redirect_uri")
        .ok_or_else(|| OAuthError::invalid_request("redirect_uri is required"))?;
    let verifier = params
        .get("code_verifier")
        .ok_or_else(|| OAuthError::invalid_request("code_verifier is required (PKCE)"))?;
    let now = state.users.now();
    let mut codes = lock(&state.users.codes);
    let Some(entry) = codes.get_mut(code) else {
        return Err(invalid_grant("unknown or expired authorization code"));
    };
    if entry.redeemed {
        let access = entry.access_token.take();
        let family = entry.refresh_family.take();
        drop(codes);
        tracing::warn!(client_id = %client.client_id, "authorization code used again; revoking what it issued");
        if let Some(token) = access {
            crate::introspection::revoke(state, &token);
        }
        if let Some(family) = family {
            revoke_family(state, &family);
        }
        return Err(invalid_grant(
            "authorization code was already used; the tokens issued from it are revoked",
        ));
    }
    // One try per code, whatever its outcome.
    entry.redeemed = true;
    if entry.expires_at <= now {
        return Err(invalid_grant("authorization code expired"));
    }
    if entry.request.client_id != client.client_id {
        return Err(invalid_grant(
            "authorization code was issued to another client",
        ));
    }
    if entry.request.redirect_uri != redirect_uri {
        return Err(invalid_grant(
            "redirect_uri differs from the one in the authorization request",
        ));
    }
    if !verifier_well_formed(verifier) || s256(verifier) != entry.request.code_challenge {
        return Err(invalid_grant(
            "code_verifier does not match the code_challenge (S256)",
        ));
    }
    let grant = Grant {
        sub: entry.sub.clone(),
        sid: entry.sid.clone(),
        auth_time: entry.auth_time,
        scopes: entry.request.scopes.clone(),
        nonce: entry.request.nonce.clone(),
    };
    drop(codes);

    let family = if grant.scopes.iter().any(|s| s == "offline_access") {
        let family = random_value();
        lock(&state.users.refresh).families.insert(
            family.clone(),
            RefreshFamily {
                client_id: client.client_id.clone(),
                sub: grant.sub.clone(),
                sid: grant.sid.clone(),
                auth_time: grant.auth_time,
                scopes: grant.scopes.clone(),
                revoked: false,
                access_tokens: Vec::new(),
            },
        );
        Some(family)
    } else {
        None
    };
    let issued = issue(state, client, &grant, &grant.scopes, jkt, family.as_deref())?;
    if let Some(entry) = lock(&state.users.codes).get_mut(code) {
        entry.access_token = Some(issued.access_token.clone());
        entry.refresh_family = family;
    }
    tracing::info!(client_id = %client.client_id, sub = %grant.sub, scope = %grant.scopes.join(" "), refresh_token = issued.body.get("refresh_token").is_some(), "authorization code redeemed");
    Ok(issued.into_response())
}

async fn refresh(
    state: &IssuerState,
    client: &ClientConfig,
    params: &Params,
    jkt: Option<String>,
) -> Result<Response, OAuthError> {
    let flows = &state.users;
    flows
        .counters
        .refresh_requests
        .fetch_add(1, Ordering::SeqCst);
    let delay = flows.refresh_delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if let Some(status) = flows.take_refresh_failure() {
        return Err(match status.as_u16() {
            503 => OAuthError::new(status, "temporarily_unavailable", "injected failure"),
            400 => OAuthError::new(status, "invalid_grant", "injected failure"),
            401 => OAuthError::new(status, "invalid_client", "injected failure"),
            s if s >= 500 => OAuthError::new(status, "server_error", "injected failure"),
            _ => OAuthError::new(status, "invalid_request", "injected failure"),
        });
    }
    let presented = params
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let now = flows.now();
    let mut store = lock(&flows.refresh);
    let Some(token) = store.tokens.get(presented) else {
        return Err(invalid_grant("unknown refresh token"));
    };
    let family_id = token.family.clone();
    let (rotated, expires_at) = (token.rotated, token.expires_at);
    let Some(family) = store.families.get_mut(&family_id) else {
        return Err(invalid_grant("unknown refresh token"));
    };
    if family.client_id != client.client_id {
        return Err(invalid_grant("refresh token was issued to another client"));
    }
    if family.revoked {
        return Err(invalid_grant("refresh token was revoked"));
    }
    if rotated {
        family.revoked = true;
        let access_tokens = std::mem::take(&mut family.access_tokens);
        drop(store);
        flows
            .counters
            .refresh_reuse_detections
            .fetch_add(1, Ordering::SeqCst);
        tracing::warn!(client_id = %client.client_id, "refresh token reused: its family is revoked");
        for t in &access_tokens {
            crate::introspection::revoke(state, t);
        }
        return Err(invalid_grant(
            "refresh token was already used: every token of its family is now revoked (reuse \
             detection)",
        ));
    }
    if expires_at <= now {
        return Err(invalid_grant("refresh token expired"));
    }
    let scopes = match params.get("scope") {
        None => family.scopes.clone(),
        Some(requested) => {
            let mut scopes: Vec<String> = Vec::new();
            for s in requested.split(' ').filter(|s| !s.is_empty()) {
                if !family.scopes.iter().any(|g| g == s) {
                    return Err(OAuthError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_scope",
                        format!("scope {s:?} was not granted to this refresh token"),
                    ));
                }
                if !scopes.iter().any(|g| g == s) {
                    scopes.push(s.to_owned());
                }
            }
            scopes
        }
    };
    let grant = Grant {
        sub: family.sub.clone(),
        sid: family.sid.clone(),
        auth_time: family.auth_time,
        scopes: family.scopes.clone(),
        nonce: None,
    };
    if let Some(t) = store.tokens.get_mut(presented) {
        t.rotated = true;
    }
    drop(store);
    let issued = issue(state, client, &grant, &scopes, jkt, Some(&family_id))?;
    flows.counters.refreshes.fetch_add(1, Ordering::SeqCst);
    tracing::info!(client_id = %client.client_id, sub = %grant.sub, scope = %scopes.join(" "), "refresh token rotated");
    Ok(issued.into_response())
}

/// What a code or a refresh family grants.
struct Grant {
    sub: String,
    sid: String,
    auth_time: u64,
    /// Everything granted at login (decides whether a refresh token is issued).
    scopes: Vec<String>,
    nonce: Option<String>,
}

struct Issued {
    access_token: String,
    body: Value,
}

impl IntoResponse for Issued {
    fn into_response(self) -> Response {
        let mut response = axum::Json(self.body).into_response();
        no_store(response.headers_mut());
        response
    }
}

/// Issues the access token for `scopes`, an ID token with `openid`, and (for a family) a
/// new refresh token.
fn issue(
    state: &IssuerState,
    client: &ClientConfig,
    grant: &Grant,
    scopes: &[String],
    jkt: Option<String>,
    family: Option<&str>,
) -> Result<Issued, OAuthError> {
    let key = state.current_key();
    let now = unix_now();
    let lifetime = state.token_lifetime();
    let user = state.config.users.iter().find(|u| u.sub == grant.sub);
    let (header, mut claims) = token_contents(
        state,
        key.kid(),
        key.alg().as_str(),
        &client.client_id,
        scopes,
        now,
        lifetime,
    );
    claims["sub"] = json!(grant.sub);
    claims["auth_time"] = json!(grant.auth_time);
    if state.config.profile == TokenProfile::Cognito
        && let Some(user) = user
    {
        claims["username"] = json!(user.username);
    }
    if let Some(jkt) = &jkt {
        claims["cnf"] = json!({ "jkt": jkt });
    }
    let access_token = if client.opaque_access_tokens {
        let token = crate::introspection::issue_opaque(
            state,
            &client.client_id,
            scopes,
            now,
            lifetime,
            jkt.clone(),
        );
        if let Some(entry) = lock(&state.tokens.opaque).get_mut(&token) {
            entry.sub = grant.sub.clone();
        }
        token
    } else {
        key.sign_json(&header, &claims).map_err(server_error)?
    };
    let mut body = json!({
        "access_token": access_token,
        "token_type": if jkt.is_some() { "DPoP" } else { "Bearer" },
        "expires_in": lifetime.as_secs(),
        "scope": scopes.join(" "),
    });
    if scopes.iter().any(|s| s == "openid") {
        let at_hash = {
            let digest =
                aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access_token.as_bytes());
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16])
        };
        let mut id_claims = json!({
            "iss": state.issuer,
            "sub": grant.sub,
            "aud": client.client_id,
            "azp": client.client_id,
            "exp": now + lifetime.as_secs(),
            "iat": now,
            "auth_time": grant.auth_time,
            "sid": grant.sid,
            "at_hash": at_hash,
        });
        if let Some(nonce) = &grant.nonce {
            id_claims["nonce"] = json!(nonce);
        }
        if let Some(user) = user {
            if scopes.iter().any(|s| s == "profile") {
                id_claims["preferred_username"] = json!(user.username);
                if let Some(name) = &user.name {
                    id_claims["name"] = json!(name);
                }
            }
            if scopes.iter().any(|s| s == "email")
                && let Some(email) = &user.email
            {
                id_claims["email"] = json!(email);
            }
        }
        let id_header = json!({"alg": key.alg().as_str(), "kid": key.kid(), "typ": "JWT"});
        body["id_token"] = json!(
            key.sign_json(&id_header, &id_claims)
                .map_err(server_error)?
        );
    }
    if let Some(family_id) = family {
        let refresh_token = random_value();
        let lifetime = state.users.refresh_lifetime_secs.load(Ordering::SeqCst);
        let mut store = lock(&state.users.refresh);
        let now = state.users.now();
        // Spent tokens are kept until they expire, so their reuse is still recognised.
        store.tokens.retain(|_, t| t.expires_at > now);
        store.tokens.insert(
            refresh_token.clone(),
            RefreshToken {
                family: family_id.to_owned(),
                expires_at: now + lifetime,
                rotated: false,
            },
        );
        if let Some(f) = store.families.get_mut(family_id) {
            f.access_tokens.push(access_token.clone());
        }
        body["refresh_token"] = json!(refresh_token);
    }
    Ok(Issued { access_token, body })
}

/// Revokes a family of refresh tokens and the access tokens issued in it.
fn revoke_family(state: &IssuerState, family_id: &str) {
    let access_tokens = {
        let mut store = lock(&state.users.refresh);
        match store.families.get_mut(family_id) {
            Some(f) => {
                f.revoked = true;
                std::mem::take(&mut f.access_tokens)
            }
            None => return,
        }
    };
    for t in &access_tokens {
        crate::introspection::revoke(state, t);
    }
}

/// What revoking a token as a refresh token did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RefreshRevocation {
    /// Not a refresh token this issuer knows.
    NotRefreshToken,
    /// Revoked, with its whole family.
    Revoked,
    /// Issued to another client than the caller: left alone.
    OtherClient,
}

/// Revokes `token` and its family if it is a refresh token (RFC 7009). With `caller`, only
/// the client the token was issued to may.
pub(crate) fn revoke_refresh_token(
    state: &IssuerState,
    token: &str,
    caller: Option<&str>,
) -> RefreshRevocation {
    let family_id = {
        let store = lock(&state.users.refresh);
        let Some(family_id) = store.tokens.get(token).map(|t| t.family.clone()) else {
            return RefreshRevocation::NotRefreshToken;
        };
        let owner = store.families.get(&family_id).map(|f| f.client_id.as_str());
        if caller.is_some_and(|c| owner != Some(c)) {
            return RefreshRevocation::OtherClient;
        }
        family_id
    };
    revoke_family(state, &family_id);
    RefreshRevocation::Revoked
}

/// Revokes every refresh family of session `sid` (logout).
pub(crate) fn revoke_session(state: &IssuerState, sid: &str) {
    let families: Vec<String> = lock(&state.users.refresh)
        .families
        .iter()
        .filter(|(_, f)| f.sid == sid && !f.revoked)
        .map(|(id, _)| id.clone())
        .collect();
    for family in families {
        revoke_family(state, &family);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc7636_appendix_b() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(verifier_well_formed(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        ));
        assert!(!verifier_well_formed("short"));
        assert!(!verifier_well_formed(&"a+".repeat(30)));
    }
}
