//! Discovery (`/.well-known/openid-configuration`) and the key set (`/.well-known/jwks.json`).
//!
//! Validators find the token endpoint and the keys here. The JWKS lists the current key
//! and every retired key whose tokens may still be in use. Test knobs take either document
//! "down" (503, still counted as a fetch), so validators must live on what they already
//! have, and can drop `alg` from the published keys, as Microsoft Entra ID does.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::client_auth::ASSERTION_ALGS;
use crate::dpop::DPOP_ALGS;
use crate::state::IssuerState;

pub(crate) async fn openid_configuration(State(state): State<Arc<IssuerState>>) -> Response {
    state
        .counters
        .discovery_fetches
        .fetch_add(1, Ordering::SeqCst);
    if !state.faults.discovery_available.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "discovery document is down (fault injected)",
        )
            .into_response();
    }
    let alg = state.config.algorithm.as_str();
    let names = |algs: &[jsonwebtoken::Algorithm]| -> Vec<String> {
        algs.iter().map(|a| format!("{a:?}")).collect()
    };
    let mut document = json!({
        "issuer": state.issuer,
        "token_endpoint": state.token_endpoint(),
        "jwks_uri": state.jwks_uri(),
        "introspection_endpoint": state.introspection_endpoint(),
        "introspection_endpoint_auth_methods_supported":
            ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "revocation_endpoint": state.revocation_endpoint(),
        "revocation_endpoint_auth_methods_supported":
            ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "authorization_endpoint": state.root_url("/authorize"),
        "end_session_endpoint": state.root_url("/end_session"),
        "grant_types_supported": crate::config::GRANT_TYPES,
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "subject_types_supported": ["public"],
        "claims_supported": ["iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "nonce",
            "sid", "at_hash", "name", "preferred_username", "email"],
        "token_endpoint_auth_methods_supported":
            ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": names(&ASSERTION_ALGS),
        "dpop_signing_alg_values_supported": names(&DPOP_ALGS),
        "scopes_supported": state
            .config
            .all_scopes()
            .into_iter()
            .chain(crate::authorization::OIDC_SCOPES.map(str::to_owned))
            .collect::<Vec<_>>(),
        "response_types_supported": ["code"],
        "id_token_signing_alg_values_supported": [alg],
        "access_token_signing_alg_values_supported": [alg],
    });
    // RFC 8705 section 5: the mTLS endpoint, and certificate-bound tokens.
    if let Some(base) = state.mtls.as_ref().and_then(|m| m.base.get()) {
        document["mtls_endpoint_aliases"] =
            json!({"token_endpoint": format!("{base}/oauth2/token")});
        document["tls_client_certificate_bound_access_tokens"] = json!(true);
        if let Some(Value::Array(methods)) =
            document.get_mut("token_endpoint_auth_methods_supported")
        {
            methods.push(json!("tls_client_auth"));
            methods.push(json!("self_signed_tls_client_auth"));
        }
    }
    Json(document).into_response()
}

pub(crate) async fn jwks(State(state): State<Arc<IssuerState>>) -> Response {
    state.counters.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let delay = state.faults.jwks_delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if !state.faults.jwks_available.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "JWKS endpoint is down (fault injected)",
        )
            .into_response();
    }
    let publish_alg = state.faults.publish_alg.load(Ordering::SeqCst);
    let keys: Vec<Value> = state
        .published_keys()
        .iter()
        .map(|k| {
            let mut jwk = k.public_jwk().clone();
            if !publish_alg && let Value::Object(members) = &mut jwk {
                members.remove("alg");
            }
            jwk
        })
        .collect();
    let mut response = Json(json!({ "keys": keys })).into_response();
    // Keys change on rotation; let validators cache briefly, not for ever.
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=300"),
    );
    response
}
