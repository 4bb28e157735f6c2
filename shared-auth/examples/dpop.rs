//! DPoP (RFC 9449): access tokens bound to a key the client holds, so a stolen token is
//! useless without that key.
//!
//! - The client gives its [`ClientCredentialsClient`] a DPoP key (a [`SigningKey`]): the token request
//!   carries a DPoP proof, and the issuer binds the token to the key (`cnf.jkt`). The
//!   [`ClientCredentialsMiddleware`] then sends `Authorization: DPoP <token>` with a fresh
//!   proof for each request's method and URL.
//! - The resource server requires DPoP (`DpopConfig::mode` = `DpopMode::Required`): it checks the
//!   proof (signature, method, URL, age, replay, token hash) and that the token is bound
//!   to the proof's key.
//!
//! The example calls the API through the middleware (200), then replays the same token
//! without a proof, as a thief would (401).
//!
//! Run it (no other process needed; it exits non-zero if an answer is not the expected
//! one):
//!
//! ```text
//! cargo run -p shared-auth --example dpop
//! ```
#![allow(clippy::print_stdout)]

use std::error::Error;

use axum::{Router, routing::get};
use reqwest::StatusCode;
use shared_auth::client::{
    ClientCredentialsClient, ClientCredentialsMiddleware, ClientId, ClientSecret, SigningKey,
    TokenManager,
};
use shared_auth::server::{
    DpopMode, JwtAuthLayer, JwtValidator, MetadataSource, Principal, TokenProfile, ValidatorConfig,
};

const CLIENT_ID: &str = "my-bff";
const CLIENT_SECRET: &str = "my-bff-example-secret";

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // The issuer: a local mock here; in production your Keycloak/Okta/... authority with
    // DPoP support. This client must prove a key on every token request.
    let issuer = mock_issuer::start(
        mock_issuer::IssuerConfig::new(mock_issuer::TokenProfile::Cognito)
            .with_resource_server("MyService", ["weather_read"])
            .with_client(
                mock_issuer::ClientConfig::new(
                    CLIENT_ID,
                    CLIENT_SECRET,
                    ["MyService/weather_read"],
                )
                .with_dpop_bound_access_tokens(true),
            ),
    )
    .await?;

    // --- Server half: a validator that accepts DPoP-bound tokens only. ---
    let mut config = ValidatorConfig::new(
        MetadataSource::Authority(issuer.issuer().to_owned()),
        TokenProfile::Cognito {
            allowed_client_ids: vec![CLIENT_ID.to_owned()],
        },
    );
    // `config.dpop` is a `DpopConfig` with defaults (in-memory replay store, no server
    // nonces, mode `Off`); `Allowed` takes bearer and DPoP tokens, `Required` refuses bearer.
    config.dpop.mode = DpopMode::Required;
    // A proof names the URL it was made for (`htu`): it is compared with this API's own
    // URL, never with the request's Host header (which the caller writes).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    config.dpop.public_base_url = Some(base.clone());
    let validator = JwtValidator::new(config).await?;
    let app = Router::new().route(
        "/whoami",
        get(|caller: Principal| async move {
            // The thumbprint of the key the token is bound to (checked against the proof).
            caller.dpop_jkt().unwrap_or("not bound").to_owned()
        })
        .route_layer(JwtAuthLayer::new(validator)),
    );
    let url = format!("{base}/whoami");
    tokio::spawn(async move { axum::serve(listener, app).await });

    // --- Client half: the same client-credentials setup, plus a DPoP key. ---
    // A fresh ES256 key per process: nothing to distribute; its tokens die with it.
    let key = SigningKey::generate_es256()?;
    println!("client DPoP key thumbprint: {}", key.thumbprint());
    let manager = TokenManager::builder().build()?;
    let my_service = manager.register(
        "my-service",
        ClientCredentialsClient::new(
            issuer.token_endpoint(),
            ClientId::new(CLIENT_ID),
            ClientSecret::new(CLIENT_SECRET),
        )
        .with_dpop(key.clone()),
    )?;
    let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(ClientCredentialsMiddleware::new(my_service.clone()))
        .build();

    // 1. Through the middleware: DPoP scheme plus a proof for this request. 200.
    let response = http.get(&url).send().await?;
    let status = response.status();
    let bound_to = response.text().await?;
    println!("with the middleware (DPoP + proof): {status}, token bound to {bound_to}");
    check(status == StatusCode::OK, "the DPoP request is accepted")?;
    check(
        bound_to == key.thumbprint(),
        "the token is bound to the client's key",
    )?;

    // 2. The same token, stolen and replayed without a proof (as Bearer): 401.
    let stolen = my_service.token().await?;
    let response = reqwest::Client::new()
        .get(&url)
        .bearer_auth(stolen.secret())
        .send()
        .await?;
    println!(
        "the same token as Bearer, no proof: {} {}",
        response.status(),
        challenges(&response)
    );
    check(
        response.status() == StatusCode::UNAUTHORIZED,
        "a bound token without its proof is refused",
    )?;

    // 3. And as DPoP but without the proof only the key holder can make: 401.
    let response = reqwest::Client::new()
        .get(&url)
        .header("authorization", format!("DPoP {}", stolen.secret()))
        .send()
        .await?;
    println!(
        "the same token as DPoP, no proof:   {} {}",
        response.status(),
        challenges(&response)
    );
    check(
        response.status() == StatusCode::UNAUTHORIZED,
        "a DPoP token without a proof is refused",
    )?;

    println!("ok: accepted with its proof, refused without");
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
