//! The server half: an axum API that accepts only valid access tokens with the right scope.
//!
//! - [`JwtValidator`] checks tokens of one issuer (discovery, keys, signature, claims);
//! - [`JwtAuthLayer`] on the matched routes (`route_layer`) authenticates each request and
//!   answers 401 with an RFC 6750 `WWW-Authenticate` challenge;
//! - [`RequireScopeLayer`] per handler answers 403 `insufficient_scope`;
//! - [`Principal`] is the authenticated caller, as a handler argument.
//!
//! The example calls the API with a token (200), without one (401), with a token that
//! lacks the route's scope (403), and on an unknown path (404: `route_layer` leaves it so).
//!
//! Run it (no other process needed; it exits non-zero if an answer is not the expected
//! one):
//!
//! ```text
//! cargo run -p shared-auth --example resource_server
//! ```
#![allow(clippy::print_stdout)]

use std::error::Error;

use axum::handler::Handler as _;
use axum::{Router, routing::get};
use reqwest::StatusCode;
use shared_auth::client::{ClientCredentialsClient, ClientId, ClientSecret, TokenManager};
use shared_auth::server::{
    JwtAuthLayer, JwtValidator, MetadataSource, Principal, RequireScopeLayer, TokenProfile,
    ValidatorConfig,
};

const READ: &str = "MyService/weather_read";
const WRITE: &str = "MyService/weather_write";
const CLIENT_ID: &str = "my-bff";
const CLIENT_SECRET: &str = "my-bff-example-secret";

/// The API: `GET /weatherforecast` needs the read scope, `POST` the write scope.
fn api(validator: JwtValidator) -> Router {
    Router::new().route(
        "/weatherforecast",
        get(list.layer(RequireScopeLayer::one(READ)))
            .post(create.layer(RequireScopeLayer::one(WRITE)))
            // On the method router, not the Router: only requests that match a route and
            // a method are authenticated, so an unknown path stays 404 and a wrong method
            // 405 instead of 401.
            .route_layer(JwtAuthLayer::new(validator)),
    )
}

async fn list(caller: Principal) -> String {
    format!(
        "[] (for {}, scopes {})",
        caller.client_id(),
        caller.scopes()
    )
}

async fn create() -> &'static str {
    "created"
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // The issuer: a local mock here; in production your Cognito/Keycloak/Entra/... authority.
    // Our caller may ask for the read scope only.
    let issuer = mock_issuer::start(
        mock_issuer::IssuerConfig::new(mock_issuer::TokenProfile::Cognito)
            .with_resource_server("MyService", ["weather_read", "weather_write"])
            .with_client(mock_issuer::ClientConfig::new(
                CLIENT_ID,
                CLIENT_SECRET,
                [READ],
            )),
    )
    .await?;

    // --- The server half starts here. ---
    // The validator discovers the issuer's metadata and keys at start (it fails fast if it
    // cannot) and refreshes the keys in the background.
    let validator = JwtValidator::new(ValidatorConfig::new(
        MetadataSource::Authority(issuer.issuer().to_owned()),
        // Cognito access tokens carry no audience: restrict the accepted clients instead.
        TokenProfile::Cognito {
            allowed_client_ids: vec![CLIENT_ID.to_owned()],
        },
    ))
    .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, api(validator)).await });
    println!("API at {base}, trusting {}", issuer.issuer());

    // A caller's token (the client half; see `client_credentials.rs`).
    let manager = TokenManager::builder().build()?;
    let caller = manager.register(
        "my-service",
        ClientCredentialsClient::new(
            issuer.token_endpoint(),
            ClientId::new(CLIENT_ID),
            ClientSecret::new(CLIENT_SECRET),
        ),
    )?;
    let token = caller.token().await?;
    let http = reqwest::Client::new();
    let url = format!("{base}/weatherforecast");

    // 1. With a token that has the read scope: 200.
    let response = http.get(&url).bearer_auth(token.secret()).send().await?;
    let status = response.status();
    println!(
        "GET  with token:          {status} {:?}",
        response.text().await?
    );
    check(status == StatusCode::OK, "GET with a read token is 200")?;

    // 2. Without a token: 401 and a challenge saying how to authenticate.
    let response = http.get(&url).send().await?;
    let challenge = challenges(&response);
    println!(
        "GET  without token:       {} {challenge}",
        response.status()
    );
    check(
        response.status() == StatusCode::UNAUTHORIZED && challenge.contains("Bearer"),
        "GET without a token is 401 with a Bearer challenge",
    )?;

    // 3. The same token on a route that needs the write scope: 403 insufficient_scope.
    let response = http.post(&url).bearer_auth(token.secret()).send().await?;
    let challenge = challenges(&response);
    println!(
        "POST with read token:     {} {challenge}",
        response.status()
    );
    check(
        response.status() == StatusCode::FORBIDDEN && challenge.contains("insufficient_scope"),
        "POST with a read-only token is 403 insufficient_scope",
    )?;

    // 4. A tampered token (one character in the middle of the signature changed): 401
    //    invalid_token.
    let mut tampered = token.secret().to_owned();
    let at = tampered.rfind('.').unwrap_or_default() + 10;
    let swap = if tampered.get(at..=at) == Some("A") {
        "B"
    } else {
        "A"
    };
    tampered.replace_range(at..=at, swap);
    let response = http.get(&url).bearer_auth(&tampered).send().await?;
    let challenge = challenges(&response);
    println!(
        "GET  with tampered token: {} {challenge}",
        response.status()
    );
    check(
        response.status() == StatusCode::UNAUTHORIZED && challenge.contains("invalid_token"),
        "a tampered token is 401 invalid_token",
    )?;

    // 5. An unknown path, without a token: 404, not 401 (auth is on matched routes only).
    let response = http.get(format!("{base}/nowhere")).send().await?;
    println!("GET  /nowhere:            {}", response.status());
    check(
        response.status() == StatusCode::NOT_FOUND,
        "an unknown path stays 404",
    )?;

    println!("ok: 200, 401, 403, 401, 404 as expected");
    Ok(())
}

/// Every `WWW-Authenticate` value of `response`, joined.
fn challenges(response: &reqwest::Response) -> String {
    let values: Vec<&str> = response
        .headers()
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    format!("WWW-Authenticate: {}", values.join(" | "))
}

/// Fails the example (non-zero exit) when an expectation does not hold.
fn check(holds: bool, expectation: &str) -> Result<(), Box<dyn Error>> {
    if holds {
        Ok(())
    } else {
        Err(format!("expected: {expectation}").into())
    }
}
