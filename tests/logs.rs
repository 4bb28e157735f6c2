//! Logs hold no secret and no token: the whole flow, and the client half's own events, at
//! TRACE. Its own test binary, because capturing means installing the process's global
//! subscriber (see `test_support::capture_logs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;

use axum::http::StatusCode;
use mock_issuer::{IssuerHandle, TokenProfile as IssuerProfile};
use shared_auth::client::{
    ClientCredentialsClient, ClientCredentialsMiddleware, ClientId, ClientSecret, TokenManager,
};
use system_tests::*;

fn client(issuer: &IssuerHandle, id: &str, secret: &str) -> ClientCredentialsClient {
    ClientCredentialsClient::new(
        issuer.token_endpoint(),
        ClientId::new(id),
        ClientSecret::new(secret),
    )
}

#[tokio::test]
async fn secrets_and_tokens_never_reach_logs_or_debug_output() {
    let captured = capture_logs();

    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let tokens = TokenManager::builder()
        .build()
        .unwrap()
        .register("api", client(&issuer, BFF_ID, BFF_SECRET))
        .unwrap();
    let (api, seen) = refusing_first("authorization").await;
    let response = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(ClientCredentialsMiddleware::new(tokens.clone()))
        .build()
        .get(format!("{}/data", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let token = tokens.token().await.unwrap();
    // A refused token request logs its failure: without the secret that was refused.
    const WRONG_SECRET: &str = "wrong-secret-never-logged-0123";
    let wrong = TokenManager::builder()
        .build()
        .unwrap()
        .register("bad", client(&issuer, BFF_ID, WRONG_SECRET))
        .unwrap();
    assert!(wrong.token().await.is_err());
    let debug = format!(
        "{tokens:?} {token:?} {:?}",
        client(&issuer, BFF_ID, BFF_SECRET)
    );

    let logs = captured.text();
    assert!(
        logs.contains("token cached"),
        "debug logs were captured: {logs}"
    );
    for text in [&logs, &debug] {
        assert!(!text.contains(BFF_SECRET), "secret leaked");
        assert!(!text.contains(WRONG_SECRET), "refused secret leaked");
        assert!(!text.contains(token.secret()), "token leaked");
        for seen in seen.lock().unwrap().iter() {
            assert!(
                !text.contains(seen.trim_start_matches("Bearer ")),
                "an earlier token leaked"
            );
        }
    }
}

#[tokio::test]
async fn trace_logs_of_the_whole_flow_hold_no_secret_and_no_token() {
    let captured = capture_logs();

    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let service = start_service(&issuer, cognito()).await;
    let bff = start_bff(&bff_config(&issuer, &service.base)).await;
    for _ in 0..3 {
        assert_eq!(
            http()
                .get(format!("{}/weatherforecast", bff.base))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    // A token my-service refuses, and a BFF whose secret is wrong: failures log too.
    let token = fetch_token(&issuer, BFF_ID, BFF_SECRET, None).await;
    let bad = format!("{}x", &token[..token.len() - 1]);
    let r = http()
        .get(format!("{}/weatherforecast", service.base))
        .bearer_auth(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let mut wrong = bff_config(&issuer, &service.base);
    wrong.client.credential = shared_auth::client::ClientSecret::new("wrong-secret-value").into();
    let bff2 = start_bff(&wrong).await;
    assert_eq!(
        http()
            .get(format!("{}/weatherforecast", bff2.base))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );

    let logs = captured.text();
    assert!(logs.contains("TRACE"), "trace-level events were captured");
    assert!(logs.contains("token cached"));
    assert!(logs.contains("token refused"), "the refusal was logged");
    assert!(
        !logs.contains(BFF_SECRET),
        "the client secret is in the logs"
    );
    assert!(
        !logs.contains("wrong-secret-value"),
        "a client secret is in the logs"
    );
    assert!(!contains_jwt(&logs), "an access token is in the logs");
    assert!(contains_jwt(&token), "the JWT detector works");
    println!("trace capture: {} lines checked", logs.lines().count());
}

/// Whether `text` contains something shaped like a JWS: two base64url JSON objects.
fn contains_jwt(text: &str) -> bool {
    text.match_indices("eyJ").any(|(i, _)| {
        let rest = &text[i..];
        let first: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        first.len() >= 10 && rest[first.len()..].starts_with(".eyJ")
    })
}

/// Introspection failures say what went wrong: the issuer's refusal of this API's
/// credentials once (with its `error` and `error_description`) however many calls it
/// refuses, and a plain JSON answer where a signed one was asked for names both.
#[tokio::test]
async fn introspection_failures_are_explained_once() {
    use shared_auth::server::{IntrospectionConfig, JwtValidator};
    let captured = capture_logs();
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let answer = Arc::new(std::sync::Mutex::new((
        StatusCode::UNAUTHORIZED,
        serde_json::json!({"error": "invalid_client", "error_description": "unknown client my-api"}),
    )));
    let served = answer.clone();
    let endpoint = serve(axum::Router::new().route(
        "/introspect",
        axum::routing::post(move || {
            let answer = served.lock().unwrap().clone();
            async move { (answer.0, axum::Json(answer.1)) }
        }),
    ))
    .await;
    let validator = |jwt_response: bool| {
        let mut config = validator_config_for(
            issuer.issuer(),
            shared_auth::server::TokenProfile::Generic {
                audience: Some("MyService".into()),
            },
        );
        let mut introspection =
            IntrospectionConfig::new(ClientId::new("my-api"), ClientSecret::new("s"))
                .with_endpoint(format!("{}/introspect", endpoint.base));
        introspection.jwt_response = jwt_response;
        config.introspection = Some(introspection);
        JwtValidator::new(config)
    };
    let refused = validator(false).await.unwrap();
    for n in 0..3 {
        let error = refused.validate(&format!("opaque-token-{n}")).await;
        assert!(error.is_err());
    }
    let text = captured.text();
    let refusals: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("refuses this API's introspection credentials"))
        .collect();
    assert_eq!(refusals.len(), 1, "{text}");
    assert!(
        refusals[0].contains("invalid_client") && refusals[0].contains("unknown client my-api"),
        "{}",
        refusals[0]
    );

    *answer.lock().unwrap() = (StatusCode::OK, serde_json::json!({"active": true}));
    let signed = validator(true).await.unwrap();
    assert!(signed.validate("opaque-token-signed").await.is_err());
    let text = captured.text();
    assert!(
        text.lines().any(|l| l.contains(
            "a signed answer (application/token-introspection+jwt, RFC 9701) was expected"
        ) && l.contains("application/json")),
        "{text}"
    );
}
