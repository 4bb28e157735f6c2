//! The seed articles' two deployments, end to end on the mock issuer:
//! - AWS Cognito: discovery and keys under the user pool's path, the issuer URL with the
//!   pool id, the token endpoint on the domain root;
//! - IdentityServer / Duende: `/connect/token` with `client_secret_post`, RFC 9068 tokens
//!   for an API resource audience, scopes as a JSON array.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use axum::http::StatusCode;
use mock_issuer::{ResourceServer, ScopeFormat, TokenProfile as IssuerProfile};
use serde_json::{Value, json};
use shared_auth::server::{MetadataSource, TokenProfile};
use system_tests::*;

const POOL: &str = "eu-west-1_AbCdEf123";

async fn forecasts(bff: &TestServer) -> (StatusCode, Value) {
    let response = http()
        .get(format!("{}/weatherforecast", bff.base))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn cognito_pool_paths_work_end_to_end() {
    let issuer = mock_issuer::start(
        issuer_config(IssuerProfile::Cognito).with_path_prefix(format!("/{POOL}")),
    )
    .await
    .unwrap();
    // Cognito's shapes: https://cognito-idp.REGION.amazonaws.com/POOL is the issuer, its
    // metadata lives under it, and the token endpoint is on another host's root.
    assert_eq!(issuer.issuer(), format!("http://{}/{POOL}", issuer.addr()));
    let metadata = format!("{}/.well-known/openid-configuration", issuer.issuer());
    assert_eq!(
        issuer.token_endpoint(),
        format!("http://{}/oauth2/token", issuer.addr())
    );
    let root = http()
        .get(format!(
            "http://{}/.well-known/openid-configuration",
            issuer.addr()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(root.status(), StatusCode::NOT_FOUND, "nothing at the root");
    let discovery: Value = get_json(&metadata).await;
    assert_eq!(discovery["issuer"], issuer.issuer());
    assert_eq!(
        discovery["jwks_uri"],
        format!("{}/.well-known/jwks.json", issuer.issuer())
    );

    // my-service as the README configures it for Cognito: AUTH_METADATA_ADDRESS.
    let mut config = service_config(&issuer, cognito());
    config.validator.metadata = MetadataSource::MetadataAddress(metadata);
    let service = serve(my_service::build(&config).await.unwrap()).await;
    let bff = start_bff(&bff_config(&issuer, &service.base)).await;
    let (status, body) = forecasts(&bff).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body.as_array().unwrap().len(), 5);

    let token = fetch_token(&issuer, BFF_ID, BFF_SECRET, Some(READ)).await;
    let claims = verify(&token, &jwks(&issuer).await, issuer.issuer()).unwrap();
    assert_eq!(claims["iss"], issuer.issuer());
    assert_eq!(claims["token_use"], "access");
}

#[tokio::test]
async fn identityserver_shape_works_end_to_end() {
    let mut config = issuer_config(IssuerProfile::Rfc9068).with_scope_format(ScopeFormat::Array);
    // An API resource named like IdentityServer's samples: its tokens carry aud=api1.
    config.resource_servers = vec![ResourceServer {
        identifier: "MyService".into(),
        audience: Some("api1".into()),
        scopes: vec!["weather_read".into(), "weather_write".into()],
    }];
    let issuer = mock_issuer::start(config).await.unwrap();

    // The token is what IdentityServer issues by default: typ at+jwt, aud the API
    // resource, scope a JSON array.
    let token = fetch_token(&issuer, BFF_ID, BFF_SECRET, Some(READ)).await;
    assert_eq!(decode_part(&token, 0)["typ"], "at+jwt");
    let claims = decode_part(&token, 1);
    assert_eq!(claims["aud"], "api1");
    assert_eq!(claims["scope"], json!([READ]));

    let audience = TokenProfile::Rfc9068 {
        audience: "api1".into(),
    };
    let service = start_service(&issuer, audience).await;
    // my-bff against /connect/token with client_secret_post (credentials in the body).
    let mut bff = bff_config(&issuer, &service.base);
    bff.client.token_source =
        my_bff::config::TokenSource::Endpoint(format!("http://{}/connect/token", issuer.addr()));
    bff.client.credential_style = shared_auth::client::CredentialStyle::PostBody;
    let bff = start_bff(&bff).await;
    let before = issuer.stats().token_requests;
    let (status, body) = forecasts(&bff).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(issuer.stats().token_requests - before, 1);
    assert_eq!(
        issuer.stats().tokens_issued_post,
        1,
        "client_secret_post was used"
    );

    // The same token for another audience is refused.
    let other = start_service(
        &issuer,
        TokenProfile::Rfc9068 {
            audience: "api2".into(),
        },
    )
    .await;
    let refused = http()
        .get(format!("{}/weatherforecast", other.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
}
