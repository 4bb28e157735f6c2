//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): `GET` or `POST
//! /end_session`.
//!
//! - `id_token_hint`: an ID token this issuer signed (an expired one is fine: logging out
//!   is what one does after a session timed out). Its `sid` names the session to end and
//!   its `aud` the client. A token the issuer did not sign is refused with an error page.
//! - `client_id`: names the client when there is no hint; with a hint it must be the
//!   hint's audience.
//! - `post_logout_redirect_uri`: must be registered for that client
//!   (`post_logout_redirect_uris`, compared exactly), else an error page and no redirect;
//!   the user is sent there with `state`. Without it, a "signed out" page.
//!
//! Ending a session revokes the refresh tokens issued under it (every family started by a
//! login of that session). The issuer keeps no single sign-on cookie, so the next
//! authorization shows the login form anyway.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde_json::Value;

use crate::authorization::{Params, error_page, escape, html_page, see_other, with_query};
use crate::client_auth::ASSERTION_ALGS;
use crate::jose::{UnverifiedJws, signature_verifies};
use crate::state::IssuerState;
use crate::user_flows::lock;

/// `GET /end_session`.
pub(crate) async fn end_session_get(State(state): State<Arc<IssuerState>>, uri: Uri) -> Response {
    end_session(&state, &Params::parse(uri.query().unwrap_or("").as_bytes()))
}

/// `POST /end_session` (form-encoded, as the specification allows).
pub(crate) async fn end_session_post(
    State(state): State<Arc<IssuerState>>,
    body: Bytes,
) -> Response {
    end_session(&state, &Params::parse(&body))
}

/// The claims of an ID token this issuer signed with a published key; expiry not checked.
fn id_token_claims(state: &IssuerState, token: &str) -> Option<serde_json::Map<String, Value>> {
    let jws = UnverifiedJws::parse(token).ok()?;
    let alg = jws.algorithm(&ASSERTION_ALGS).ok()?;
    let kid = jws.header.get("kid").and_then(Value::as_str)?;
    let signed_here = state.published_keys().iter().any(|k| {
        k.kid() == kid
            && serde_json::from_value(k.public_jwk().clone())
                .ok()
                .is_some_and(|jwk| signature_verifies(&jws, &jwk, alg))
    });
    let ours = signed_here
        && jws.claim_str("iss") == Some(state.issuer.as_str())
        && jws.claim_str("sid").is_some()
        && jws.claim_str("aud").is_some();
    ours.then_some(jws.claims)
}

fn end_session(state: &IssuerState, params: &Params) -> Response {
    if let Some(name) = params.repeated() {
        return error_page(&format!("parameter {name} is repeated"));
    }
    let get = |name: &str| params.single(name).ok().flatten();
    let hint = match get("id_token_hint") {
        Some(token) => match id_token_claims(state, token) {
            Some(claims) => Some(claims),
            None => {
                return error_page("id_token_hint is not an ID token this issuer signed");
            }
        },
        None => None,
    };
    let hint_str = |name: &str| {
        hint.as_ref()
            .and_then(|c| c.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let hint_client = hint_str("aud");
    let client_id = match (get("client_id"), hint_client.as_deref()) {
        (Some(a), Some(b)) if a != b => {
            return error_page("client_id is not the audience of id_token_hint");
        }
        (Some(a), _) => Some(a.to_owned()),
        (None, b) => b.map(str::to_owned),
    };
    let redirect = match get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let registered = client_id
                .as_deref()
                .and_then(|id| state.config.client(id))
                .is_some_and(|c| c.post_logout_redirect_uris.iter().any(|r| r == uri));
            if !registered {
                tracing::info!(client_id = ?client_id, "logout redirect refused: post_logout_redirect_uri not registered");
                return error_page(
                    "post_logout_redirect_uri is not registered for this client (or no client \
                     was named: send id_token_hint or client_id)",
                );
            }
            Some(uri)
        }
    };
    if let Some(sid) = hint_str("sid") {
        let ended_now = match lock(&state.users.sessions).get_mut(&sid) {
            Some(session) if !session.ended => {
                session.ended = true;
                tracing::info!(sub = %session.sub, client_id = ?client_id, "session ended");
                true
            }
            _ => false,
        };
        if ended_now {
            state
                .users
                .counters
                .sessions_ended
                .fetch_add(1, Ordering::SeqCst);
            crate::user_tokens::revoke_session(state, &sid);
        }
    }
    match redirect {
        Some(uri) => {
            let pairs: Vec<(&str, &str)> = get("state").map(|s| ("state", s)).into_iter().collect();
            see_other(&with_query(uri, &pairs))
        }
        None => html_page(
            StatusCode::OK,
            "Signed out",
            &format!(
                "<h1>Signed out</h1><p id=\"signed-out\">You are signed out{}.</p>",
                client_id
                    .map(|c| format!(" of {}", escape(&c)))
                    .unwrap_or_default()
            ),
        ),
    }
}
