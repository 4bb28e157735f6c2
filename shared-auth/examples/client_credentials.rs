//! The client half: a service calls another service with a client-credentials token.
//!
//! A [`TokenManager`] gets the token from the issuer's token endpoint and caches it; the
//! [`ClientCredentialsMiddleware`] puts it on every request of a `reqwest-middleware`
//! client. Two calls to a protected endpoint cost **one** token request: the second call
//! reuses the cached token.
//!
//! Run it (no other process needed; it exits non-zero if something does not happen as
//! described):
//!
//! ```text
//! cargo run -p shared-auth --example client_credentials
//! ```
#![allow(clippy::print_stdout)]

use std::error::Error;

use axum::{Router, routing::get};
use shared_auth::ScopeSet;
use shared_auth::client::{
    ClientCredentialsClient, ClientCredentialsMiddleware, ClientId, ClientSecret, TokenManager,
};
use shared_auth::server::{
    JwtAuthLayer, JwtValidator, MetadataSource, Principal, TokenProfile, ValidatorConfig,
};

const CLIENT_ID: &str = "my-bff";
const CLIENT_SECRET: &str = "my-bff-example-secret";
const SCOPE: &str = "MyService/weather_read";

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // The issuer: a local mock here; in production your Cognito/Keycloak/Entra/... authority.
    // It knows one API ("MyService", scope weather_read) and one client allowed that scope.
    let issuer = mock_issuer::start(
        mock_issuer::IssuerConfig::new(mock_issuer::TokenProfile::Cognito)
            .with_resource_server("MyService", ["weather_read"])
            .with_client(mock_issuer::ClientConfig::new(
                CLIENT_ID,
                CLIENT_SECRET,
                [SCOPE],
            )),
    )
    .await?;
    println!("issuer:         {}", issuer.issuer());

    // The service being called: one protected route (see `resource_server.rs` for that half).
    let api = start_protected_api(issuer.issuer()).await?;
    println!("protected API:  {api}/hello");

    // --- The client half starts here. ---
    // One TokenManager per process; each downstream API is a registered client, and the
    // returned handle is what the middleware uses.
    let manager = TokenManager::builder().build()?;
    let my_service = manager.register(
        "my-service",
        ClientCredentialsClient::new(
            issuer.token_endpoint(),
            ClientId::new(CLIENT_ID),
            // In production: from a secret store or the environment, never in code.
            ClientSecret::new(CLIENT_SECRET),
        )
        .with_scope(ScopeSet::parse(SCOPE)?),
    )?;
    let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(ClientCredentialsMiddleware::new(my_service))
        .build();

    // Two calls: the first fetches a token, the second reuses it from the cache.
    for call in 1..=2 {
        let response = http.get(format!("{api}/hello")).send().await?;
        let status = response.status();
        let body = response.text().await?;
        let token_requests = issuer.stats().token_requests;
        println!("call {call}: {status} {body:?} (token requests so far: {token_requests})");
        check(status == reqwest::StatusCode::OK, "the call is authorized")?;
        check(
            token_requests == 1,
            "one token request in all: the second call used the cached token",
        )?;
    }
    println!("ok: two authorized calls, one token request");
    Ok(())
}

/// Starts an API whose `/hello` route requires a valid token from `authority`, on an
/// ephemeral local port, and returns its base URL.
async fn start_protected_api(authority: &str) -> Result<String, Box<dyn Error>> {
    let validator = JwtValidator::new(ValidatorConfig::new(
        MetadataSource::Authority(authority.to_owned()),
        TokenProfile::Cognito {
            allowed_client_ids: vec![CLIENT_ID.to_owned()],
        },
    ))
    .await?;
    let app = Router::new().route(
        "/hello",
        get(|caller: Principal| async move { format!("hello, {}", caller.client_id()) })
            .route_layer(JwtAuthLayer::new(validator)),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(base)
}

/// Fails the example (non-zero exit) when an expectation does not hold.
fn check(holds: bool, expectation: &str) -> Result<(), Box<dyn Error>> {
    if holds {
        Ok(())
    } else {
        Err(format!("expected: {expectation}").into())
    }
}
