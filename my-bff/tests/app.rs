//! my-bff's spawn-app tests: the BFF on an ephemeral port against a real mock issuer
//! (test-support's `start_issuer`, which registers the BFF's client `BFF_ID`) and the real
//! my-service downstream: one cached token for many calls, token endpoint discovery, and
//! how each failure (no token, token refused, downstream down or slow) is answered.
//!
//! In a service started from this template, change the app below (crate, config, route) and
//! the downstream it calls.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use mock_issuer::{IssuerHandle, TokenProfile as IssuerProfile};
use my_bff::config::{BffConfig, TokenSource};
use my_service::weather::READ_SCOPE;
use serde_json::Value;
use shared_auth::client::{ClientDefinition, ClientId, ClientSecret, CredentialStyle};
use shared_auth::server::TokenProfile;
use test_support::*;

/// The BFF's route under test.
const PATH: &str = "/weatherforecast";

/// my-bff's configuration: the BFF's client at `issuer`'s token endpoint, asking for the
/// scope my-service reads with, and calling my-service at `my_service`.
fn bff_config(issuer: &IssuerHandle, my_service: &str) -> BffConfig {
    let mut client = ClientDefinition::new(
        TokenSource::Endpoint(issuer.token_endpoint()),
        ClientId::new(BFF_ID),
        ClientSecret::new(BFF_SECRET),
    );
    client.scope = shared_auth::ScopeSet::parse(READ_SCOPE).unwrap();
    BffConfig {
        client,
        my_service_base_url: my_service.to_owned(),
        my_service_timeout: Duration::from_secs(5),
        token_cache: None,
        login: None,
    }
}

/// Starts my-bff with `config`.
async fn start_bff(config: &BffConfig) -> TestServer {
    serve(my_bff::build(config).await.unwrap()).await
}

/// Starts the real my-service downstream, validating `issuer`'s tokens under `profile`.
async fn start_my_service(issuer: &IssuerHandle, profile: TokenProfile) -> TestServer {
    let config = my_service::config::ServiceConfig {
        validator: validator_config_for(issuer.issuer(), profile),
        openapi_token_url: None,
        transaction_tokens: None,
    };
    serve(my_service::build(&config).await.unwrap()).await
}

/// GETs the BFF's route.
async fn get(bff: &TestServer) -> reqwest::Response {
    http()
        .get(format!("{}{PATH}", bff.base))
        .send()
        .await
        .unwrap()
}

/// Asserts the BFF's problem+json answer with `status`, free of the BFF's secret.
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
    let service = start_my_service(&issuer, cognito()).await;
    // The secret comes from a file with a trailing newline, as mounted secrets do.
    let secret_file = std::env::temp_dir().join(format!("bff-secret-{}", std::process::id()));
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
        READ_SCOPE,
        "--my-service-base-url",
        &service.base,
        "--my-service-timeout-secs",
        "5",
    ])
    .unwrap();
    let config = args.into_config().unwrap();
    std::fs::remove_file(&secret_file).unwrap();
    let bff = start_bff(&config).await;

    let response = get(&bff).await;
    assert_eq!(response.status(), StatusCode::OK);
    let forecasts: Vec<Value> = response.json().await.unwrap();
    assert_eq!(forecasts.len(), 5);
    for _ in 0..20 {
        assert_eq!(get(&bff).await.status(), StatusCode::OK);
    }
    assert_eq!(issuer.stats().token_requests, 1, "21 BFF calls, one token");
    assert_eq!(get_status(format!("{}/readyz", bff.base)).await, 200);
    let doc: Value = get_json(format!("{}/api-docs/openapi.json", bff.base)).await;
    assert!(doc["paths"][PATH]["get"].is_object());
}

#[tokio::test]
async fn bff_discovers_the_token_endpoint_from_an_authority() {
    let issuer = start_issuer(IssuerProfile::Rfc9068).await;
    let service = start_my_service(
        &issuer,
        TokenProfile::Rfc9068 {
            audience: "MyService".into(),
        },
    )
    .await;
    let mut config = bff_config(&issuer, &service.base);
    config.client.token_source = TokenSource::Authority(issuer.issuer().to_owned());
    config.client.credential_style = CredentialStyle::PostBody;
    let bff = start_bff(&config).await;
    assert_eq!(get(&bff).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn no_token_means_503_quickly_and_no_call_downstream() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let service = start_my_service(&issuer, cognito()).await;
    let mut config = bff_config(&issuer, &service.base);
    config.client.credential = ClientSecret::new("wrong-secret").into();
    let bff = start_bff(&config).await;
    let started = Instant::now();
    let r = get(&bff).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(r.headers()["retry-after"], "5");
    assert_problem(r, 503).await;
    assert_eq!(get_status(format!("{}/readyz", bff.base)).await, 503);
}

#[tokio::test]
async fn my_service_refusing_our_token_is_502_after_one_renewal() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    // my-service accepts only another client: our token is refused with 401 each time.
    let service = start_my_service(
        &issuer,
        TokenProfile::Cognito {
            allowed_client_ids: vec!["someone-else".into()],
        },
    )
    .await;
    let bff = start_bff(&bff_config(&issuer, &service.base)).await;
    let body = assert_problem(get(&bff).await, 502).await;
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
    // Nothing listens on port 1 (privileged, unused): the connection is refused at once.
    // (A port freed by dropping a probe listener can be taken by another test's server
    // in the meantime, which then answers or stalls instead.)
    let bff = start_bff(&bff_config(
        &issuer,
        &format!("http://{}", test_support::CLOSED),
    ))
    .await;
    assert_problem(get(&bff).await, 502).await;

    // A downstream that never answers within the BFF's 1 s timeout, on the route of
    // my-service's that the BFF calls.
    let stalled = serve(axum::Router::new().route(
        "/weatherforecast",
        axum::routing::get(std::future::pending::<&'static str>),
    ))
    .await;
    let mut config = bff_config(&issuer, &stalled.base);
    config.my_service_timeout = Duration::from_secs(1);
    let bff = start_bff(&config).await;
    assert_problem(get(&bff).await, 504).await;
}

/// my-service's listener, taken before my-service runs: until `serve` is called, every
/// connection is accepted and closed at once (a service that is down, answering nothing),
/// and `first` is told of the first one.
struct NotYetServing {
    stop: tokio::sync::oneshot::Sender<()>,
    listener: tokio::task::JoinHandle<tokio::net::TcpListener>,
}

impl NotYetServing {
    async fn bind(first: std::sync::Arc<tokio::sync::Notify>) -> (Self, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let listener = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => return listener,
                    accepted = listener.accept() => {
                        drop(accepted);
                        first.notify_one();
                    }
                }
            }
        });
        (NotYetServing { stop, listener }, base)
    }

    /// Serves `router` on the listener from now on.
    async fn serve(self, router: axum::Router) -> tokio::task::JoinHandle<()> {
        self.stop.send(()).unwrap();
        let listener = self.listener.await.unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() })
    }
}

/// Started before my-service, a BFF that finds its issuer through my-service's protected
/// resource metadata does not exit: it is not ready (and its route answers 503) until
/// my-service answers, then it finds the issuer and calls my-service.
#[tokio::test]
async fn a_bff_started_before_my_service_waits_for_its_metadata() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let first_attempt = std::sync::Arc::new(tokio::sync::Notify::new());
    let (down, base) = NotYetServing::bind(first_attempt.clone()).await;
    let mut config = bff_config(&issuer, &base);
    config.client.token_source = TokenSource::ProtectedResource {
        resource: base.clone(),
        trusted_issuers: vec![issuer.issuer().to_owned()],
    };
    let bff = serve(
        my_bff::build(&config)
            .await
            .expect("starts with my-service down"),
    )
    .await;
    first_attempt.notified().await;
    assert_eq!(
        get_status(format!("{}/readyz", bff.base)).await,
        503,
        "not ready before the issuer is found"
    );
    let body = assert_problem(get(&bff).await, 503).await;
    assert!(
        body["detail"].as_str().unwrap().contains("issuer"),
        "{body}"
    );

    let mut validator = validator_config_for(issuer.issuer(), cognito());
    validator.resource = Some(shared_auth::server::ProtectedResource::new(base.clone()));
    let service = my_service::build(&my_service::config::ServiceConfig {
        validator,
        openapi_token_url: None,
        transaction_tokens: None,
    })
    .await
    .unwrap();
    let _serving = down.serve(service).await;
    eventually(Duration::from_secs(20), "my-bff ready", || async {
        get_status(format!("{}/readyz", bff.base)).await == 200
    })
    .await;
    assert_eq!(get(&bff).await.status(), StatusCode::OK);
}
