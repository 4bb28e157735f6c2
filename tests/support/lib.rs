//! Helpers shared by the system test suites. The generic ones (the standard issuer setup,
//! an HTTP client, servers on ephemeral ports, independent token verification) come from
//! `test-support` and are re-exported; the ones here start my-service and my-bff.
//!
//! Test code: `unwrap`/`expect` are the assertions here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub use test_support::*;

pub mod up;

use mock_issuer::IssuerHandle;

/// my-service's configuration for `issuer` under `profile` (authority discovery).
pub fn service_config(
    issuer: &IssuerHandle,
    profile: shared_auth::server::TokenProfile,
) -> my_service::config::ServiceConfig {
    service_config_for(issuer.issuer(), profile)
}

/// my-service's configuration for the issuer at `authority` (which may be down).
pub fn service_config_for(
    authority: &str,
    profile: shared_auth::server::TokenProfile,
) -> my_service::config::ServiceConfig {
    my_service::config::ServiceConfig {
        validator: validator_config_for(authority, profile),
        openapi_token_url: None,
        transaction_tokens: None,
    }
}

/// Starts my-service against `issuer`, as its settings run it: DPoP allowed, proofs
/// checked against its own URL.
pub async fn start_service(
    issuer: &IssuerHandle,
    profile: shared_auth::server::TokenProfile,
) -> TestServer {
    let (listener, base) = bind().await;
    let mut config = service_config(issuer, profile);
    config.validator.dpop.mode = shared_auth::server::DpopMode::Allowed;
    config.validator.dpop.public_base_url = Some(base);
    let router = my_service::build(&config).await.unwrap();
    serve_listener(listener, router)
}

/// my-bff's configuration: the BFF client of `issuer`, calling my-service at `my_service`.
pub fn bff_config(issuer: &IssuerHandle, my_service: &str) -> my_bff::config::BffConfig {
    let mut client = shared_auth::client::ClientDefinition::new(
        my_bff::config::TokenSource::Endpoint(issuer.token_endpoint()),
        shared_auth::client::ClientId::new(BFF_ID),
        shared_auth::client::ClientSecret::new(BFF_SECRET),
    );
    client.scope = shared_auth::ScopeSet::parse(READ).unwrap();
    my_bff::config::BffConfig {
        client,
        my_service_base_url: my_service.to_owned(),
        my_service_timeout: std::time::Duration::from_secs(5),
        token_cache: None,
        login: None,
    }
}

/// Starts my-bff with `config`.
pub async fn start_bff(config: &my_bff::config::BffConfig) -> TestServer {
    serve(my_bff::build(config).await.unwrap()).await
}

/// A downstream API at `/data` that answers 401 to its first request and 200 after,
/// recording the value of `header` on each request (empty when absent).
pub async fn refusing_first(
    header: &'static str,
) -> (TestServer, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let recorded = seen.clone();
    let app = axum::Router::new().route(
        "/data",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let seen = recorded.clone();
            async move {
                let value = headers.get(header).map(|v| v.to_str().unwrap().to_owned());
                let mut seen = seen.lock().unwrap();
                seen.push(value.unwrap_or_default());
                if seen.len() == 1 {
                    axum::http::StatusCode::UNAUTHORIZED
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    (serve(app).await, seen)
}
