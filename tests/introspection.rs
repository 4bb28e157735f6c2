//! Opaque access tokens at my-service, checked at the mock issuer's `/introspect`
//! (RFC 7662, RFC 9701): active, inactive, revoked within and after the cache window, the
//! endpoint down, single flight, a flood of random tokens with the calls counted and
//! bounded, signed answers, and JWTs that never reach introspection.
//!
//! Concurrency is shown with the issuer's counters (calls, and the most in progress at
//! once) under its injected delay, never by timing alone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use mock_issuer::{ClientConfig, IssuerHandle, TokenProfile as IssuerProfile};
use reqwest::StatusCode;
use shared_auth::ManualClock;
use shared_auth::client::{ClientId, ClientSecret};
use shared_auth::server::IntrospectionConfig;
use system_tests::*;

/// my-service's client at the issuer, used only to call `/introspect`.
const RS_ID: &str = "my-service";
const RS_SECRET: &str = "my-service-introspection-secret";
/// A client the issuer gives opaque tokens through its token endpoint.
const OPAQUE_ID: &str = "opaque-client";
const OPAQUE_SECRET: &str = "opaque-client-secret-0123";

async fn issuer() -> IssuerHandle {
    let config = issuer_config(IssuerProfile::Cognito)
        .with_client(ClientConfig::new(RS_ID, RS_SECRET, Vec::<String>::new()))
        .with_client(
            ClientConfig::new(OPAQUE_ID, OPAQUE_SECRET, [READ]).with_opaque_access_tokens(true),
        );
    mock_issuer::start(config).await.unwrap()
}

/// Introspection as my-service's client. The mock issuer's opaque tokens carry no `aud`
/// (as Cognito-style tokens do not), so these suites accept any audience explicitly; the
/// audience rule has its own tests below.
fn introspection() -> IntrospectionConfig {
    let mut config = IntrospectionConfig::new(ClientId::new(RS_ID), ClientSecret::new(RS_SECRET));
    config.any_audience = true;
    config
}

/// my-service with introspection configured by `edit` (the endpoint is discovered unless
/// `edit` sets it).
async fn service(issuer: &IssuerHandle, edit: impl FnOnce(&mut IntrospectionConfig)) -> TestServer {
    let mut config = service_config(issuer, cognito());
    let mut introspection = introspection();
    edit(&mut introspection);
    config.validator.introspection = Some(introspection);
    serve(my_service::build(&config).await.unwrap()).await
}

async fn get(service: &TestServer, token: &str) -> reqwest::Response {
    http()
        .get(format!("{}/weatherforecast", service.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// A random token of the shape opaque tokens have (not a JWS).
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn calls(issuer: &IssuerHandle) -> u64 {
    issuer.stats().introspection_requests
}

#[tokio::test]
async fn an_active_opaque_token_is_accepted_at_the_discovered_endpoint() {
    let issuer = issuer().await;
    let service = service(&issuer, |_| {}).await;
    // From the token endpoint, for a client configured for opaque tokens.
    let token = fetch_token(&issuer, OPAQUE_ID, OPAQUE_SECRET, None).await;
    assert_eq!(token.split('.').count(), 1, "an opaque token");
    let response = get(&service, &token).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(calls(&issuer), 1);
    // Again: from the cache.
    assert_eq!(get(&service, &token).await.status(), StatusCode::OK);
    assert_eq!(calls(&issuer), 1);
    // The handle's tokens too.
    let token = issuer.issue_opaque_token(BFF_ID, &[READ], None);
    assert_eq!(get(&service, &token).await.status(), StatusCode::OK);
    assert_eq!(calls(&issuer), 2);
}

#[tokio::test]
async fn an_inactive_token_is_401_invalid_token_and_cached_briefly() {
    let issuer = issuer().await;
    let service = service(&issuer, |_| {}).await;
    let unknown = random_token();
    let response = get(&service, &unknown).await;
    assert_refused(response, 401, Some("invalid_token"), &unknown).await;
    assert_eq!(calls(&issuer), 1);
    // The negative cache (default 10 s) answers the repeat.
    let response = get(&service, &unknown).await;
    assert_refused(response, 401, Some("invalid_token"), &unknown).await;
    assert_eq!(calls(&issuer), 1);
    // A token revoked before its first use is inactive too.
    let revoked = issuer.issue_opaque_token(BFF_ID, &[READ], None);
    issuer.revoke(&revoked);
    assert_refused(
        get(&service, &revoked).await,
        401,
        Some("invalid_token"),
        &revoked,
    )
    .await;
    // Without the scope: accepted by introspection, refused by the route (403).
    let no_scope = issuer.issue_opaque_token(BFF_ID, &[], None);
    assert_eq!(
        get(&service, &no_scope).await.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn a_revoked_token_is_accepted_within_the_cache_window_and_refused_after_it() {
    const WINDOW: Duration = Duration::from_secs(300);
    let issuer = issuer().await;
    // The validator's clock: the window passes when the test moves it, not in real time.
    let clock = Arc::new(ManualClock::starting_now());
    let mut config = service_config(&issuer, cognito());
    let mut introspection = introspection();
    introspection.max_cache = WINDOW;
    introspection.negative_cache = Duration::from_secs(60);
    config.validator.introspection = Some(introspection);
    config.validator.clock = clock.clone();
    let service = serve(my_service::build(&config).await.unwrap()).await;
    let token = issuer.issue_opaque_token(BFF_ID, &[READ], None);
    assert_eq!(get(&service, &token).await.status(), StatusCode::OK);
    issuer.revoke(&token);
    // Within the window the cached answer stands (no new call), to its last second.
    clock.advance(WINDOW - Duration::from_secs(1));
    assert_eq!(get(&service, &token).await.status(), StatusCode::OK);
    assert_eq!(calls(&issuer), 1);
    // After it, introspected again, and refused.
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        get(&service, &token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(calls(&issuer), 2, "one call when the window closed");
    // The refusal is cached in turn (negative cache).
    assert_eq!(
        get(&service, &token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(calls(&issuer), 2);
}

#[tokio::test]
async fn the_endpoint_down_is_503_with_retry_after_never_200_or_401() {
    let issuer = issuer().await;
    let service = service(&issuer, |c| c.http_timeout = Duration::from_millis(500)).await;
    let token = issuer.issue_opaque_token(BFF_ID, &[READ], None);
    let unavailable = |response: reqwest::Response| async move {
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key("retry-after"));
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    };
    issuer.set_introspection_available(false);
    unavailable(get(&service, &token).await).await;
    issuer.set_introspection_available(true);
    issuer.fail_next_introspection_requests(1, 500);
    unavailable(get(&service, &token).await).await;
    // Slower than the timeout.
    issuer.set_introspection_delay(Duration::from_secs(3));
    unavailable(get(&service, &token).await).await;
    issuer.set_introspection_delay(Duration::ZERO);
    // Failures are not cached: the endpoint back, the token is accepted.
    assert_eq!(get(&service, &token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn concurrent_checks_of_one_token_share_one_call() {
    const N: usize = 16;
    let issuer = issuer().await;
    let service = service(&issuer, |c| c.http_timeout = Duration::from_secs(15)).await;
    let token = issuer.issue_opaque_token(BFF_ID, &[READ], None);
    // The first check holds the call open for 4 s; the others are sent once the issuer
    // has it in progress, so they arrive while it is in flight (not cached): without
    // single flight each would make its own call.
    issuer.set_introspection_delay(Duration::from_secs(4));
    let base = service.base.clone();
    let send = move |token: String, base: String| async move {
        http()
            .get(format!("{base}/weatherforecast"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
    };
    let first = tokio::spawn(send(token.clone(), base.clone()));
    eventually(
        Duration::from_secs(5),
        "the first call in progress",
        || async { calls(&issuer) == 1 },
    )
    .await;
    let rest = concurrently((1..N).map(|_| send(token.clone(), base.clone()))).await;
    let first = first.await.unwrap();
    assert_eq!(first, StatusCode::OK);
    assert!(rest.iter().all(|s| *s == StatusCode::OK), "{rest:?}");
    assert_eq!(calls(&issuer), 1, "{N} concurrent checks, one call");
    assert_eq!(issuer.stats().introspection_max_in_flight, 1);
}

#[tokio::test]
async fn a_flood_of_random_opaque_tokens_costs_bounded_introspection_calls() {
    // The bound: at most MAX_CONCURRENT calls at once, and at most one call per distinct
    // token per negative-cache window. Everything else is refused 503 by the wait.
    const TOKENS: usize = 40;
    const MAX_CONCURRENT: usize = 2;
    let issuer = issuer().await;
    let endpoint = issuer.introspection_endpoint();
    let service = service(&issuer, |c| {
        c.endpoint = Some(endpoint);
        c.max_concurrent = MAX_CONCURRENT;
        c.wait = Duration::from_millis(50);
        c.negative_cache = Duration::from_secs(60);
    })
    .await;
    // Each call is held 1 s, twenty times the 50 ms wait: the bound is reached.
    issuer.set_introspection_delay(Duration::from_secs(1));
    let tokens: Vec<String> = (0..TOKENS).map(|_| random_token()).collect();
    let base = service.base.clone();
    let send = |token: String| {
        let base = base.clone();
        async move {
            let status = http()
                .get(format!("{base}/weatherforecast"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .status();
            (token, status)
        }
    };
    let answers = concurrently(tokens.iter().cloned().map(send)).await;
    let stats = issuer.stats();
    assert!(
        answers
            .iter()
            .all(|(_, s)| *s == StatusCode::UNAUTHORIZED || *s == StatusCode::SERVICE_UNAVAILABLE),
        "never 200: {answers:?}"
    );
    let refused: Vec<&String> = answers
        .iter()
        .filter(|(_, s)| *s == StatusCode::UNAUTHORIZED)
        .map(|(t, _)| t)
        .collect();
    let overloaded = TOKENS - refused.len();
    assert!(
        stats.introspection_max_in_flight <= MAX_CONCURRENT as u64,
        "{stats:?}"
    );
    assert!(stats.introspection_requests <= TOKENS as u64, "{stats:?}");
    assert_eq!(
        stats.introspection_requests,
        refused.len() as u64,
        "one call per token answered 401, none for the {overloaded} refused 503"
    );
    assert!(overloaded > 0, "the bound was reached");
    // Again, the answered ones: all from the negative cache, no call.
    let before = stats.introspection_requests;
    let again = concurrently(refused.iter().map(|t| send((*t).clone()))).await;
    assert!(again.iter().all(|(_, s)| *s == StatusCode::UNAUTHORIZED));
    assert_eq!(calls(&issuer), before);
}

#[tokio::test]
async fn signed_rfc9701_answers_are_verified_and_a_foreign_signature_is_refused() {
    let issuer = issuer().await;
    let service = service(&issuer, |c| c.jwt_response = true).await;
    let good = issuer.issue_opaque_token(BFF_ID, &[READ], None);
    assert_eq!(get(&service, &good).await.status(), StatusCode::OK);
    let unknown = random_token();
    assert_refused(
        get(&service, &unknown).await,
        401,
        Some("invalid_token"),
        &unknown,
    )
    .await;
    // Signed with a key the JWKS does not hold (under the current kid): the answer cannot
    // be trusted either way, so the token is neither accepted nor called invalid: 503.
    issuer.sign_introspection_with_foreign_key(true).unwrap();
    let other = issuer.issue_opaque_token(BFF_ID, &[READ], None);
    let response = get(&service, &other).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn a_jwt_access_token_never_reaches_introspection() {
    let issuer = issuer().await;
    let service = service(&issuer, |_| {}).await;
    let jwt = fetch_token(&issuer, BFF_ID, BFF_SECRET, None).await;
    assert_eq!(get(&service, &jwt).await.status(), StatusCode::OK);
    // A JWS-shaped forgery is refused by the JWT path, not introspected.
    let forged = format!("{}x", &jwt[..jwt.len() - 1]);
    assert_eq!(
        get(&service, &forged).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(calls(&issuer), 0);
}

#[tokio::test]
async fn a_dpop_bound_opaque_token_sent_as_bearer_is_refused() {
    let issuer = issuer().await;
    let service = service(&issuer, |_| {}).await;
    let token = issuer.issue_opaque_token(BFF_ID, &[READ], Some("some-thumbprint"));
    assert_eq!(
        get(&service, &token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(calls(&issuer), 1);
}

#[tokio::test]
async fn without_introspection_an_opaque_token_is_refused_as_before() {
    let issuer = issuer().await;
    let service = start_service(&issuer, cognito()).await;
    let token = issuer.issue_opaque_token(BFF_ID, &[READ], None);
    assert_refused(
        get(&service, &token).await,
        401,
        Some("invalid_token"),
        &token,
    )
    .await;
    assert_eq!(calls(&issuer), 0);
}

/// my-service's introspection credential is a private_key_jwt key, configured as an
/// operator does (`AUTH_INTROSPECTION_CLIENT_ASSERTION_KEY_FILE`): the client half's
/// credential kinds serve the resource server too.
#[tokio::test]
async fn introspection_authenticates_with_a_private_key_jwt_from_settings() {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    use clap::Parser as _;
    const KEY_ID: &str = "my-service-by-key";
    let file = TempFile::new("introspection-key.pem");
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let der = pair.to_pkcs8v1().unwrap();
    let body = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    file.write(&format!(
        "-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"
    ));
    let public = shared_auth::client::SigningKey::from_file(&file.0, None)
        .unwrap()
        .public_jwk()
        .clone();
    let jwks = serde_json::from_value(serde_json::json!({ "keys": [public] })).unwrap();
    let config = issuer_config(IssuerProfile::Cognito)
        .with_client(ClientConfig::without_secret(KEY_ID, Vec::<String>::new()).with_jwks(jwks));
    let issuer = mock_issuer::start(config).await.unwrap();

    // my-service's settings as flags: introspection on, as `KEY_ID`, plus `extra`.
    let settings = |extra: &[&str]| {
        let mut args = vec![
            "my-service",
            "--authority",
            issuer.issuer(),
            "--introspection",
            "true",
            "--introspection-client-id",
            KEY_ID,
            "--introspection-client-assertion-key-file",
            file.path(),
            "--introspection-any-audience",
            "true",
            "--dpop",
            "off",
        ];
        args.extend_from_slice(extra);
        my_service::config::Args::try_parse_from(args)
            .unwrap()
            .into_config()
    };
    let service = serve(my_service::build(&settings(&[]).unwrap()).await.unwrap()).await;
    let token = issuer.issue_opaque_token(BFF_ID, &[READ], None);
    assert_eq!(get(&service, &token).await.status(), StatusCode::OK);
    assert_eq!(calls(&issuer), 1);

    // A secret and a key at once: refused at start, naming the variable.
    let e = settings(&["--introspection-client-secret", "also-a-secret"]).unwrap_err();
    assert!(e.setting.starts_with("AUTH_INTROSPECTION_CLIENT_"), "{e}");
    assert!(!e.to_string().contains("also-a-secret"), "{e}");
}

/// An introspection endpoint of the test's own, with the issuer's JWKS elsewhere: it
/// answers every call with the status and body last set, and counts the calls.
#[derive(Clone)]
struct Endpoint {
    answer: Arc<std::sync::Mutex<(u16, serde_json::Value)>>,
    calls: Arc<std::sync::atomic::AtomicU64>,
}

impl Endpoint {
    async fn start() -> (Endpoint, TestServer) {
        let endpoint = Endpoint {
            answer: Arc::new(std::sync::Mutex::new((
                200,
                serde_json::json!({"active": false}),
            ))),
            calls: Arc::default(),
        };
        let state = endpoint.clone();
        let router = axum::Router::new().route(
            "/introspect",
            axum::routing::post(move || {
                let state = state.clone();
                async move {
                    state
                        .calls
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let (status, body) = state.answer.lock().unwrap().clone();
                    (
                        axum::http::StatusCode::from_u16(status).unwrap(),
                        axum::Json(body),
                    )
                }
            }),
        );
        (endpoint, serve(router).await)
    }

    fn answer(&self, status: u16, body: serde_json::Value) {
        *self.answer.lock().unwrap() = (status, body);
    }
}

/// A validator for `issuer`'s keys under the generic profile with `audience`, introspecting
/// at `endpoint`, on `clock`.
async fn validator_at(
    issuer: &IssuerHandle,
    endpoint: &TestServer,
    audience: Option<&str>,
    clock: Arc<ManualClock>,
) -> Result<shared_auth::server::JwtValidator, shared_auth::server::StartError> {
    let mut config = validator_config_for(
        issuer.issuer(),
        shared_auth::server::TokenProfile::Generic {
            audience: audience.map(str::to_owned),
        },
    );
    config.clock = clock;
    let mut introspection =
        IntrospectionConfig::new(ClientId::new(RS_ID), ClientSecret::new(RS_SECRET))
            .with_endpoint(format!("{}/introspect", endpoint.base));
    introspection.negative_cache = Duration::ZERO;
    config.introspection = Some(introspection);
    shared_auth::server::JwtValidator::new(config).await
}

/// An active answer, as an issuer that serves several APIs writes it, plus `extra`.
fn active(extra: serde_json::Value) -> serde_json::Value {
    let mut answer = serde_json::json!({
        "active": true,
        "client_id": BFF_ID,
        "scope": READ,
        "exp": 4_000_000_000u64,
    });
    for (name, value) in extra.as_object().unwrap() {
        answer[name] = value.clone();
    }
    answer
}

/// Without an audience, introspection accepts whatever token the issuer says is active,
/// for any API: it does not start unless that is chosen. With the audience, a token for
/// another API is refused.
#[tokio::test]
async fn introspection_without_an_audience_is_an_explicit_choice() {
    let issuer = issuer().await;
    let (endpoint, server) = Endpoint::start().await;
    let clock = Arc::new(ManualClock::starting_now());
    let Err(e) = validator_at(&issuer, &server, None, clock.clone()).await else {
        panic!("no audience: no start");
    };
    assert!(e.to_string().contains("any_audience"), "{e}");

    let validator = validator_at(&issuer, &server, Some("MyService"), clock)
        .await
        .unwrap();
    endpoint.answer(200, active(serde_json::json!({"aud": "urn:other:api"})));
    assert_eq!(
        validator.validate(&random_token()).await.unwrap_err(),
        shared_auth::server::ValidationError::Audience
    );
    endpoint.answer(
        200,
        active(serde_json::json!({"aud": ["urn:other:api", "MyService"]})),
    );
    assert!(validator.validate(&random_token()).await.is_ok());
}

/// An active answer that describes a refresh token, in each way issuers write it, is not
/// an access token.
#[tokio::test]
async fn an_active_answer_for_a_refresh_token_is_refused() {
    let issuer = issuer().await;
    let (endpoint, server) = Endpoint::start().await;
    let clock = Arc::new(ManualClock::starting_now());
    let validator = validator_at(&issuer, &server, Some("MyService"), clock)
        .await
        .unwrap();
    for mark in [
        serde_json::json!({"token_type": "refresh_token"}),
        serde_json::json!({"token_use": "refresh_token"}),
        serde_json::json!({"typ": "Refresh"}),
        serde_json::json!({"typ": "Offline"}),
        serde_json::json!({"token_use": "id"}),
    ] {
        let mut answer = active(mark.clone());
        answer["aud"] = serde_json::json!("MyService");
        endpoint.answer(200, answer);
        assert_eq!(
            validator.validate(&random_token()).await.unwrap_err(),
            shared_auth::server::ValidationError::TokenUse,
            "{mark}"
        );
    }
    for access in [
        serde_json::json!({"token_type": "Bearer"}),
        serde_json::json!({"token_use": "access_token"}),
        serde_json::json!({"typ": "Bearer"}),
    ] {
        let mut answer = active(access.clone());
        answer["aud"] = serde_json::json!("MyService");
        endpoint.answer(200, answer);
        assert!(
            validator.validate(&random_token()).await.is_ok(),
            "{access}"
        );
    }
}

/// Wrong introspection credentials are not an outage: the validator is not ready while the
/// issuer refuses them, and readiness probes the endpoint (every 10 s by the validator's
/// clock) so that the fix is noticed without traffic.
#[tokio::test]
async fn refused_introspection_credentials_make_the_validator_not_ready_until_accepted() {
    let issuer = issuer().await;
    let (endpoint, server) = Endpoint::start().await;
    let clock = Arc::new(ManualClock::starting_now());
    let validator = validator_at(&issuer, &server, Some("MyService"), clock.clone())
        .await
        .unwrap();
    assert!(validator.is_ready());
    endpoint.answer(
        401,
        serde_json::json!({"error": "invalid_client", "error_description": "bad secret"}),
    );
    assert!(matches!(
        validator.validate(&random_token()).await.unwrap_err(),
        shared_auth::server::ValidationError::IntrospectionUnavailable { .. }
    ));
    assert!(!validator.is_ready());
    // Fixed at the issuer. No probe before the interval has passed.
    endpoint.answer(200, serde_json::json!({"active": false}));
    let before = endpoint.calls.load(std::sync::atomic::Ordering::SeqCst);
    assert!(!validator.is_ready());
    assert_eq!(
        endpoint.calls.load(std::sync::atomic::Ordering::SeqCst),
        before
    );
    clock.advance(Duration::from_secs(10));
    eventually(Duration::from_secs(10), "ready after the probe", || async {
        validator.is_ready()
    })
    .await;
    assert_eq!(
        endpoint.calls.load(std::sync::atomic::Ordering::SeqCst),
        before + 1
    );

    // The real issuer, with a wrong secret: 503 for the caller, and not ready.
    let mut config = service_config(&issuer, cognito());
    let mut wrong =
        IntrospectionConfig::new(ClientId::new(RS_ID), ClientSecret::new("wrong-secret"));
    wrong.any_audience = true;
    config.validator.introspection = Some(wrong);
    let service = serve(my_service::build(&config).await.unwrap()).await;
    let token = issuer.issue_opaque_token(BFF_ID, &[READ], None);
    assert_eq!(
        get(&service, &token).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(get_status(format!("{}/readyz", service.base)).await, 503);
}
