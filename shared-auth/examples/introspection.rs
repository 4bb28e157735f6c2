//! Opaque access tokens: tokens that are not JWTs, checked at the issuer's introspection
//! endpoint (RFC 7662) instead of locally.
//!
//! With an [`IntrospectionConfig`] in [`ValidatorConfig::introspection`], a token that is
//! not a JWS is sent to the issuer's introspection endpoint (discovered from its metadata,
//! or configured), authenticated with the API's own client credentials. Answers are
//! cached: an active token until `min(exp, max_cache)` (default 5 minutes, which is also
//! how long a revoked token can still pass), an inactive one briefly. JWTs are still
//! validated locally and never introspected.
//!
//! An issuer says `active` for any token it issued, to any API, so the validator checks the
//! answer's `aud` against this API's audience: introspection without an audience does not
//! start unless `IntrospectionConfig::any_audience` says so.
//!
//! The example calls the API twice with an opaque token (200, one introspection call in
//! all) and once with a token the issuer never issued (401).
//!
//! Run it (no other process needed; it exits non-zero if an answer is not the expected
//! one):
//!
//! ```text
//! cargo run -p shared-auth --example introspection
//! ```
#![allow(clippy::print_stdout)]

use std::error::Error;

use axum::{Router, routing::get};
use reqwest::StatusCode;
use shared_auth::client::{ClientCredentialsClient, ClientId, ClientSecret, TokenManager};
use shared_auth::server::{
    IntrospectionConfig, JwtAuthLayer, JwtValidator, MetadataSource, Principal, TokenProfile,
    ValidatorConfig,
};

/// The caller, which gets opaque tokens.
const CLIENT_ID: &str = "my-bff";
const CLIENT_SECRET: &str = "my-bff-example-secret";
/// The API's own client at the issuer, used only to call the introspection endpoint.
const API_CLIENT_ID: &str = "my-service";
const API_CLIENT_SECRET: &str = "my-service-introspection-secret";

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // The issuer: a local mock here; in production your Keycloak/Okta/PingFederate/...
    // authority. It issues opaque tokens to `my-bff` and lets `my-service` introspect.
    let issuer = mock_issuer::start(
        mock_issuer::IssuerConfig::new(mock_issuer::TokenProfile::Cognito)
            .with_resource_server("MyService", ["weather_read"])
            .with_client(
                mock_issuer::ClientConfig::new(
                    CLIENT_ID,
                    CLIENT_SECRET,
                    ["MyService/weather_read"],
                )
                .with_opaque_access_tokens(true),
            )
            .with_client(mock_issuer::ClientConfig::new(
                API_CLIENT_ID,
                API_CLIENT_SECRET,
                Vec::<String>::new(),
            )),
    )
    .await?;

    // --- Server half: the usual validator, plus introspection for opaque tokens. ---
    let mut config = ValidatorConfig::new(
        MetadataSource::Authority(issuer.issuer().to_owned()),
        TokenProfile::Generic {
            audience: Some("MyService".to_owned()),
        },
    );
    // The endpoint comes from the issuer's discovery document; `.with_endpoint(url)`
    // sets it instead. Other knobs (cache window, concurrency bound) are fields.
    config.introspection = Some(IntrospectionConfig::new(
        ClientId::new(API_CLIENT_ID),
        ClientSecret::new(API_CLIENT_SECRET),
    ));
    let validator = JwtValidator::new(config).await?;
    let app = Router::new().route(
        "/whoami",
        get(|caller: Principal| async move {
            format!("{} with scopes {}", caller.client_id(), caller.scopes())
        })
        .route_layer(JwtAuthLayer::new(validator)),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/whoami", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    // --- Client half: nothing changes for opaque tokens. ---
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
    check(
        !token.secret().contains('.'),
        "the issuer gave an opaque token",
    )?;
    println!("opaque token: {}... (not a JWT)", prefix(token.secret()));

    let http = reqwest::Client::new();
    // 1. and 2. Twice with the opaque token: the first call introspects, the second is
    //    answered from the cache.
    for call in 1..=2 {
        let response = http.get(&url).bearer_auth(token.secret()).send().await?;
        let status = response.status();
        let calls = issuer.stats().introspection_requests;
        println!(
            "call {call} with the opaque token: {status} {:?} (introspection calls: {calls})",
            response.text().await?
        );
        check(status == StatusCode::OK, "an active opaque token passes")?;
        check(calls == 1, "one introspection call for two requests")?;
    }

    // 3. A token the issuer never issued: the issuer answers `active: false`, 401.
    let response = http
        .get(&url)
        .bearer_auth("never-issued-by-anyone-0123456789")
        .send()
        .await?;
    let challenge = response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    println!("an unknown token: {} {challenge}", response.status());
    check(
        response.status() == StatusCode::UNAUTHORIZED && challenge.contains("invalid_token"),
        "an inactive token is 401 invalid_token",
    )?;

    println!("ok: opaque token accepted (introspected once), unknown token refused");
    Ok(())
}

/// The first characters of a token, for printing (never print whole tokens in services).
fn prefix(token: &str) -> &str {
    token.get(..8).unwrap_or(token)
}

/// Fails the example (non-zero exit) when an expectation does not hold.
fn check(holds: bool, expectation: &str) -> Result<(), Box<dyn Error>> {
    if holds {
        Ok(())
    } else {
        Err(format!("expected: {expectation}").into())
    }
}
