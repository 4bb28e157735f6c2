//! my-service's spawn-app tests: the service's HTTP API as a caller sees it, the real app on
//! an ephemeral port against a real mock issuer that knows the service's own scopes, with a
//! read-only client (`BFF_ID`) and a read-write one (`ADMIN_ID`). The validation library
//! itself is tested in `tests/` at the workspace root.
//!
//! In a service started from this template, change the app below (crate, config, route and
//! scopes) and the requests and bodies of the tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mock_issuer::{ClientConfig, IssuerConfig, IssuerHandle, TokenProfile as IssuerProfile};
use my_service::config::ServiceConfig;
use my_service::weather::{READ_SCOPE, WRITE_SCOPE};
use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::*;

/// The protected resource under test.
const PATH: &str = "/weatherforecast";

/// Starts a mock issuer (Cognito-shaped tokens) for the resource server that
/// [`READ_SCOPE`] and [`WRITE_SCOPE`] belong to: `BFF_ID` may read, `ADMIN_ID` may read
/// and write.
async fn start_issuer() -> IssuerHandle {
    let (resource, read) = READ_SCOPE.split_once('/').unwrap();
    let (_, write) = WRITE_SCOPE.split_once('/').unwrap();
    let config = IssuerConfig::new(IssuerProfile::Cognito)
        .with_resource_server(resource, [read, write])
        .with_client(ClientConfig::new(BFF_ID, BFF_SECRET, [READ_SCOPE]))
        .with_client(ClientConfig::new(
            ADMIN_ID,
            ADMIN_SECRET,
            [READ_SCOPE, WRITE_SCOPE],
        ));
    mock_issuer::start(config).await.unwrap()
}

/// Starts my-service against `issuer` (discovery from its authority, Cognito-shaped tokens
/// from any client), as `main.rs` would with `AUTH_AUTHORITY` set.
async fn start_service(issuer: &IssuerHandle) -> TestServer {
    let config = ServiceConfig {
        validator: validator_config_for(issuer.issuer(), cognito()),
        openapi_token_url: None,
        transaction_tokens: None,
    };
    serve(my_service::build(&config).await.unwrap()).await
}

/// GETs the resource with `token` as the bearer token.
async fn get_with(base: &str, token: &str) -> reqwest::Response {
    http()
        .get(format!("{base}{PATH}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn valid_token_reads_five_forecasts() {
    let issuer = start_issuer().await;
    let service = start_service(&issuer).await;
    let token = fetch_token(&issuer, BFF_ID, BFF_SECRET, None).await;
    let response = get_with(&service.base, &token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let forecasts: Vec<Value> = response.json().await.unwrap();
    assert_eq!(forecasts.len(), 5);
    for f in &forecasts {
        let c = f["temperatureC"].as_i64().unwrap();
        assert!((-20..55).contains(&c));
        assert!(f["summary"].is_string() && f["date"].is_string() && f["temperatureF"].is_i64());
    }
    // Scheme is case-insensitive (RFC 6750 / RFC 9110).
    let lower = http()
        .get(format!("{}{PATH}", service.base))
        .header("authorization", format!("bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status(), StatusCode::OK);
}

#[tokio::test]
async fn missing_or_non_bearer_credentials_get_a_bare_challenge() {
    let issuer = start_issuer().await;
    let service = start_service(&issuer).await;
    let url = format!("{}{PATH}", service.base);
    let r = http().get(&url).send().await.unwrap();
    assert_refused(r, 401, None, "").await;
    let r = http()
        .get(&url)
        .header("authorization", "Basic bXk6c2VjcmV0")
        .send()
        .await
        .unwrap();
    assert_refused(r, 401, None, "").await;
    // Two Authorization headers, or two tokens: invalid_request.
    let token = fetch_token(&issuer, BFF_ID, BFF_SECRET, None).await;
    let r = http()
        .get(&url)
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_refused(r, 400, Some("invalid_request"), &token).await;
    let r = http()
        .get(&url)
        .header("authorization", format!("Bearer {token} {token}"))
        .send()
        .await
        .unwrap();
    assert_refused(r, 400, Some("invalid_request"), &token).await;
    // Unknown paths and wrong methods are not turned into 401 (route_layer).
    assert_eq!(get_status(format!("{}/nope", service.base)).await, 404);
    assert_eq!(http().delete(&url).send().await.unwrap().status(), 405);
}

#[tokio::test]
async fn wrong_scope_gets_403_insufficient_scope_naming_the_scope() {
    let issuer = start_issuer().await;
    let service = start_service(&issuer).await;
    let read_only = fetch_token(&issuer, BFF_ID, BFF_SECRET, None).await;
    let r = http()
        .post(format!("{}{PATH}", service.base))
        .bearer_auth(&read_only)
        .json(&json!({"date": "2026-11-23", "temperatureC": 18, "summary": "Cool"}))
        .send()
        .await
        .unwrap();
    let challenge = assert_refused(r, 403, Some("insufficient_scope"), &read_only).await;
    assert!(
        challenge.contains(&format!("scope=\"{WRITE_SCOPE}\"")),
        "{challenge}"
    );
    // A scope that merely contains ours as a substring does not count.
    let write_only = fetch_token(&issuer, ADMIN_ID, ADMIN_SECRET, Some(WRITE_SCOPE)).await;
    let r = get_with(&service.base, &write_only).await;
    let challenge = assert_refused(r, 403, Some("insufficient_scope"), &write_only).await;
    assert!(challenge.contains(&format!("scope=\"{READ_SCOPE}\"")));
    let substring = forge(&issuer, &[&format!("{READ_SCOPE}_all")], |_, _| {});
    assert_refused(
        get_with(&service.base, &substring).await,
        403,
        Some("insufficient_scope"),
        &substring,
    )
    .await;
}

#[tokio::test]
async fn write_scope_creates_and_bad_bodies_get_422_problem_json() {
    let issuer = start_issuer().await;
    let service = start_service(&issuer).await;
    let token = fetch_token(&issuer, ADMIN_ID, ADMIN_SECRET, None).await;
    let post = |body: Value| {
        http()
            .post(format!("{}{PATH}", service.base))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let r = post(json!({"date": "2026-11-23", "temperatureC": 18, "summary": "Cool"}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["temperatureF"], 64);
    for bad in [
        json!({"date": "2026-13-40", "temperatureC": 18, "summary": "x"}),
        json!({"date": "2026-11-23", "temperatureC": 99, "summary": "x"}),
        json!({"date": "2026-11-23", "temperatureC": 1, "summary": " "}),
        json!({"date": "2026-11-23", "temperatureC": "warm", "summary": "x"}),
        json!({"date": "2026-11-23"}),
    ] {
        let r = post(bad.clone()).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
}

#[tokio::test]
async fn openapi_and_swagger_ui_are_served_with_the_discovered_token_url() {
    let issuer = start_issuer().await;
    let service = start_service(&issuer).await;
    let doc: Value = get_json(format!("{}/api-docs/openapi.json", service.base)).await;
    assert_eq!(
        doc["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]["tokenUrl"],
        issuer.token_endpoint()
    );
    let ui = http()
        .get(format!("{}/swagger-ui/", service.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ui.status(), StatusCode::OK);
    assert!(ui.text().await.unwrap().contains("swagger-ui"));
}

#[tokio::test]
async fn with_auth_resource_the_protected_resource_metadata_lists_the_scopes() {
    use clap::Parser as _;
    let issuer = start_issuer().await;
    // The identifier is the URL clients are given; the document is served whatever the
    // listening port.
    let resource = "http://localhost:7062";
    let args = my_service::config::Args::try_parse_from([
        "my-service",
        "--authority",
        issuer.issuer(),
        "--resource",
        resource,
    ])
    .unwrap();
    let service = serve(
        my_service::build(&args.into_config().unwrap())
            .await
            .unwrap(),
    )
    .await;
    let doc = get_json(format!(
        "{}/.well-known/oauth-protected-resource",
        service.base
    ))
    .await;
    assert_eq!(doc["resource"], resource);
    assert_eq!(doc["authorization_servers"], json!([issuer.issuer()]));
    assert_eq!(doc["scopes_supported"], json!([READ_SCOPE, WRITE_SCOPE]));
    let response = http()
        .get(format!("{}{PATH}", service.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer resource_metadata=\"http://localhost:7062/.well-known/oauth-protected-resource\""
    );
}
