//! The whole system on ephemeral ports: mock issuer, my-service and my-bff, talked to over
//! HTTP, plus how the BFF answers when a part fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // tests print their counts

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use mock_issuer::TokenProfile as IssuerProfile;
use serde_json::Value;
use system_tests::*;

async fn assert_problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status);
    let text = body.to_string();
    assert!(!text.contains(BFF_SECRET));
    body
}

#[tokio::test]
async fn bff_calls_my_service_with_one_cached_token() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let service = start_service(&issuer, cognito()).await;
    // The secret comes from a file with a trailing newline, as mounted secrets do.
    let secret_file = std::env::temp_dir().join(format!("flow-secret-{}", std::process::id()));
    std::fs::write(&secret_file, format!("{BFF_SECRET}\n")).unwrap();
    let endpoint = issuer.token_endpoint();
    let file = secret_file.to_str().unwrap();
    let args = <my_bff::config::Args as clap::Parser>::try_parse_from([
        "my-bff",
        "--token-endpoint",
        &endpoint,
        "--client-id",
        BFF_ID,
        "--client-secret-file",
        file,
        "--scope",
        READ,
        "--my-service-base-url",
        &service.base,
        "--my-service-timeout-secs",
        "5",
    ])
    .unwrap();
    let config = args.into_config().unwrap();
    std::fs::remove_file(&secret_file).unwrap();
    let bff = start_bff(&config).await;

    let response = http()
        .get(format!("{}/weatherforecast", bff.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let forecasts: Vec<Value> = response.json().await.unwrap();
    assert_eq!(forecasts.len(), 5);
    for _ in 0..20 {
        let r = http()
            .get(format!("{}/weatherforecast", bff.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    assert_eq!(issuer.stats().token_requests, 1, "21 BFF calls, one token");
    assert_eq!(
        http()
            .get(format!("{}/readyz", bff.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let doc: Value = get_json(format!("{}/api-docs/openapi.json", bff.base)).await;
    assert!(doc["paths"]["/weatherforecast"]["get"].is_object());
}

#[tokio::test]
async fn bff_discovers_the_token_endpoint_from_an_authority() {
    let issuer = start_issuer(IssuerProfile::Rfc9068).await;
    let service = start_service(
        &issuer,
        shared_auth::server::TokenProfile::Rfc9068 {
            audience: "MyService".into(),
        },
    )
    .await;
    let mut config = bff_config(&issuer, &service.base);
    config.client.token_source = my_bff::config::TokenSource::Authority(issuer.issuer().to_owned());
    config.client.credential_style = shared_auth::client::CredentialStyle::PostBody;
    let bff = start_bff(&config).await;
    let r = http()
        .get(format!("{}/weatherforecast", bff.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn no_token_means_503_quickly_and_no_call_downstream() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let service = start_service(&issuer, cognito()).await;
    let mut config = bff_config(&issuer, &service.base);
    config.client.client_secret = shared_auth::client::ClientSecret::new("wrong-secret");
    let bff = start_bff(&config).await;
    let started = Instant::now();
    let r = http()
        .get(format!("{}/weatherforecast", bff.base))
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(r.headers()["retry-after"], "5");
    assert_problem(r, 503).await;
    assert_eq!(
        http()
            .get(format!("{}/readyz", bff.base))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
}

#[tokio::test]
async fn my_service_refusing_our_token_is_502_after_one_renewal() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    // my-service accepts only another client: our token is refused with 401 each time.
    let mut service_config = service_config(&issuer, cognito());
    service_config.validator.profile = shared_auth::server::TokenProfile::Cognito {
        allowed_client_ids: vec!["someone-else".into()],
    };
    let service = serve(my_service::build(&service_config).await.unwrap()).await;
    let bff = start_bff(&bff_config(&issuer, &service.base)).await;
    let r = http()
        .get(format!("{}/weatherforecast", bff.base))
        .send()
        .await
        .unwrap();
    let body = assert_problem(r, 502).await;
    assert!(body["detail"].as_str().unwrap().contains("refused"));
    assert_eq!(
        issuer.stats().token_requests,
        2,
        "one token, one renewal after the 401"
    );
}

#[tokio::test]
async fn my_service_down_is_502_and_slow_is_504() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    // Nothing listens on this port once the probe listener is dropped.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let bff = start_bff(&bff_config(&issuer, &format!("http://{closed}"))).await;
    let r = http()
        .get(format!("{}/weatherforecast", bff.base))
        .send()
        .await
        .unwrap();
    assert_problem(r, 502).await;

    // A downstream that never answers within the BFF's 1 s timeout.
    let stalled = serve(axum::Router::new().route(
        "/weatherforecast",
        axum::routing::get(std::future::pending::<&'static str>),
    ))
    .await;
    let mut config = bff_config(&issuer, &stalled.base);
    config.my_service_timeout = Duration::from_secs(1);
    let bff = start_bff(&config).await;
    let r = http()
        .get(format!("{}/weatherforecast", bff.base))
        .send()
        .await
        .unwrap();
    assert_problem(r, 504).await;
}
