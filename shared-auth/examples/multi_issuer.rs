//! One API trusting two issuers at once, e.g. during a migration from Cognito to an
//! RFC 9068 authority (Keycloak, Entra ID, Auth0, ...).
//!
//! The [`ValidatorConfig`] names the main issuer; each further one is an [`IssuerConfig`]
//! in [`ValidatorConfig::additional_issuers`], with its own metadata, token profile
//! (audience, allowed clients) and keys. A token is routed to its issuer by its `iss`
//! claim before any key lookup, and verified with that issuer's keys only; a token from an
//! issuer not on the list is refused without any request to anyone.
//!
//! Run it (no other process needed; it exits non-zero if an answer is not the expected
//! one):
//!
//! ```text
//! cargo run -p shared-auth --example multi_issuer
//! ```
#![allow(clippy::print_stdout)]

use std::error::Error;

use axum::{Router, routing::get};
use reqwest::StatusCode;
use shared_auth::client::{ClientCredentialsClient, ClientId, ClientSecret, TokenManager};
use shared_auth::server::{
    IssuerConfig, JwtAuthLayer, JwtValidator, MetadataSource, Principal, TokenProfile,
    ValidatorConfig,
};

const CLIENT_ID: &str = "my-bff";
const CLIENT_SECRET: &str = "my-bff-example-secret";
const READ: &str = "MyService/weather_read";

/// Starts a local mock issuer that gives `my-bff` tokens in `profile`'s shape.
async fn start_issuer(
    profile: mock_issuer::TokenProfile,
) -> Result<mock_issuer::IssuerHandle, Box<dyn Error>> {
    let config = mock_issuer::IssuerConfig::new(profile)
        .with_resource_server("MyService", ["weather_read"])
        .with_client(mock_issuer::ClientConfig::new(
            CLIENT_ID,
            CLIENT_SECRET,
            [READ],
        ));
    Ok(mock_issuer::start(config).await?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // The issuers: local mocks here; in production, e.g. your new Keycloak realm (RFC 9068
    // tokens, audience `MyService`) and the Cognito user pool being retired. A third one
    // that the API does not trust, standing for any other authority.
    let new_issuer = start_issuer(mock_issuer::TokenProfile::Rfc9068).await?;
    let old_issuer = start_issuer(mock_issuer::TokenProfile::Cognito).await?;
    let untrusted = start_issuer(mock_issuer::TokenProfile::Rfc9068).await?;

    // --- Server half: the main issuer, plus one additional issuer with its own rules. ---
    let mut config = ValidatorConfig::new(
        MetadataSource::Authority(new_issuer.issuer().to_owned()),
        TokenProfile::Rfc9068 {
            audience: "MyService".to_owned(),
        },
    );
    config.additional_issuers = vec![IssuerConfig::new(
        MetadataSource::Authority(old_issuer.issuer().to_owned()),
        TokenProfile::Cognito {
            allowed_client_ids: vec![CLIENT_ID.to_owned()],
        },
    )];
    let validator = JwtValidator::new(config).await?;
    println!("the API trusts: {:?}", validator.issuers());
    let app = Router::new().route(
        "/whoami",
        get(|caller: Principal| async move {
            format!("{} from {}", caller.client_id(), caller.issuer())
        })
        .route_layer(JwtAuthLayer::new(validator)),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/whoami", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    // --- A token from each issuer (one TokenManager, one registered client each). ---
    let manager = TokenManager::builder().build()?;
    let http = reqwest::Client::new();
    for (name, issuer, trusted) in [
        ("new issuer (RFC 9068)", &new_issuer, true),
        ("old issuer (Cognito)", &old_issuer, true),
        ("untrusted issuer", &untrusted, false),
    ] {
        let client = manager.register(
            name,
            ClientCredentialsClient::new(
                issuer.token_endpoint(),
                ClientId::new(CLIENT_ID),
                ClientSecret::new(CLIENT_SECRET),
            ),
        )?;
        let token = client.token().await?;
        let response = http.get(&url).bearer_auth(token.secret()).send().await?;
        let status = response.status();
        println!(
            "token from the {name}: {status} {:?}",
            response.text().await?
        );
        if trusted {
            check(status == StatusCode::OK, "a trusted issuer's token passes")?;
        } else {
            check(
                status == StatusCode::UNAUTHORIZED,
                "an untrusted issuer's token is refused",
            )?;
        }
    }
    let untrusted_fetches = untrusted.stats();
    check(
        untrusted_fetches.jwks_fetches == 0 && untrusted_fetches.discovery_fetches == 0,
        "the untrusted issuer was never asked for its keys",
    )?;

    println!("ok: both trusted issuers' tokens pass, the third issuer's is refused");
    Ok(())
}

/// Fails the example (non-zero exit) when an expectation does not hold.
fn check(holds: bool, expectation: &str) -> Result<(), Box<dyn Error>> {
    if holds {
        Ok(())
    } else {
        Err(format!("expected: {expectation}").into())
    }
}
