//! The client half against a real mock issuer on a socket: caching, single flight, refresh
//! ahead with short-lived tokens, scope overrides, retries, refusals, negative caching, the
//! middleware's 401 handling, and secrets kept out of logs. Token-request counts are read
//! from the issuer's own counters.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // tests print their counts

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use mock_issuer::{IssuerHandle, TokenProfile};
use shared_auth::ManualClock;
use shared_auth::ScopeSet;
use shared_auth::client::{
    ClientCredentialsClient, ClientCredentialsMiddleware, ClientId, ClientSecret, ClientSettings,
    CredentialStyle, ManagedClient, ReplayOn401, TokenError, TokenManager, TokenRequestParams,
};
use test_support::*;

fn client(issuer: &IssuerHandle, id: &str, secret: &str) -> ClientCredentialsClient {
    ClientCredentialsClient::new(
        issuer.token_endpoint(),
        ClientId::new(id),
        ClientSecret::new(secret),
    )
}

fn manager(issuer: &IssuerHandle) -> ManagedClient {
    TokenManager::builder()
        .build()
        .unwrap()
        .register("api", client(issuer, BFF_ID, BFF_SECRET))
        .unwrap()
}

fn requests(issuer: &IssuerHandle) -> u64 {
    issuer.stats().token_requests
}

#[tokio::test]
async fn first_call_requests_then_one_hundred_calls_hit_the_cache() {
    let issuer = start_issuer(TokenProfile::Cognito).await;
    let tokens = manager(&issuer);
    let first = tokens.token().await.unwrap();
    assert_eq!(requests(&issuer), 1);
    for _ in 0..100 {
        assert_eq!(tokens.token().await.unwrap(), first);
    }
    assert_eq!(requests(&issuer), 1);
    assert_eq!(issuer.stats().tokens_issued[BFF_ID], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_callers_on_a_cold_cache_make_one_request() {
    let issuer = start_issuer(TokenProfile::Cognito).await;
    // A slow issuer widens the window in which callers pile up.
    issuer.set_token_delay(Duration::from_millis(200));
    let tokens = manager(&issuer);
    let results = concurrently((0..1000).map(|_| {
        let tokens = tokens.clone();
        async move { tokens.token().await }
    }))
    .await;
    let first = results[0].clone().unwrap();
    assert!(results.iter().all(|r| r.as_ref().unwrap() == &first));
    assert_eq!(requests(&issuer), 1, "single flight");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_renewals_during_a_renewal_join_it() {
    let issuer = start_issuer(TokenProfile::Cognito).await;
    let tokens = manager(&issuer);
    let before = tokens.token().await.unwrap();
    issuer.set_token_delay(Duration::from_millis(300));
    let forced = TokenRequestParams {
        force_renewal: true,
        ..Default::default()
    };
    let results = concurrently((0..50).map(|_| {
        let (tokens, forced) = (tokens.clone(), forced.clone());
        async move { tokens.token_with(&forced).await.unwrap() }
    }))
    .await;
    assert_eq!(
        requests(&issuer),
        2,
        "one initial request, one shared renewal"
    );
    assert!(results.iter().all(|t| t == &results[0] && t != &before));
    assert_eq!(tokens.token().await.unwrap(), results[0]);
}

/// Five minutes of a call per second on a manual clock: the token is renewed in the
/// background ahead of its expiry, every call succeeds, and the renewals come exactly when
/// the lifetime rules say.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_tokens_are_renewed_ahead_and_no_call_fails() {
    let issuer = start_issuer(TokenProfile::Cognito).await;
    issuer.set_token_lifetime(Duration::from_secs(100));
    let clock = Arc::new(ManualClock::starting_now());
    let tokens = TokenManager::builder()
        .clock(clock.clone())
        .build()
        .unwrap()
        .register("api", client(&issuer, BFF_ID, BFF_SECRET))
        .unwrap();
    // A 100 s token is shorter than twice the 60 s buffer: cached for half its life
    // (50 s), renewed in the background from 90 % of that (45 s after each fetch).
    let mut failures = 0;
    for _second in 0..300 {
        if tokens.token().await.is_err() {
            failures += 1;
        }
        // A renewal may have started in the background: let it land (its token cached
        // and stamped with this second, its key freed) before the clock moves on.
        eventually(Duration::from_secs(5), "the renewal lands", || async {
            tokens.manager().flights_in_progress() == 0
        })
        .await;
        clock.advance(Duration::from_secs(1));
    }
    let made = requests(&issuer);
    println!("300 s of calls on a manual clock: {failures} failed, {made} token requests");
    assert_eq!(failures, 0);
    // At 0 s, then at 45, 90, ..., 270 s.
    assert_eq!(made, 7, "{made} token requests");
}

#[tokio::test]
async fn per_request_scope_override_gets_its_own_token() {
    let issuer = start_issuer(TokenProfile::Cognito).await;
    let tokens = TokenManager::builder()
        .build()
        .unwrap()
        .register(
            "api",
            client(&issuer, ADMIN_ID, ADMIN_SECRET).with_scope(ScopeSet::parse(READ).unwrap()),
        )
        .unwrap();
    let read = tokens.token().await.unwrap();
    let write_params = TokenRequestParams {
        scope: Some(ScopeSet::parse(WRITE).unwrap()),
        ..Default::default()
    };
    let write = tokens.token_with(&write_params).await.unwrap();
    assert_ne!(read, write);
    assert_eq!(decode_part(write.secret(), 1)["scope"], WRITE);
    assert_eq!(decode_part(read.secret(), 1)["scope"], READ);
    assert_eq!(tokens.token_with(&write_params).await.unwrap(), write);
    assert_eq!(tokens.token().await.unwrap(), read);
    assert_eq!(requests(&issuer), 2);
}

#[tokio::test]
async fn transient_issuer_failures_are_retried_within_the_budget() {
    let issuer = start_issuer(TokenProfile::Cognito).await;
    issuer.fail_next_token_requests(2, 503);
    let tokens = manager(&issuer);
    assert!(tokens.token().await.is_ok());
    let stats = issuer.stats();
    assert_eq!(stats.token_requests, 3, "two failures, one success");
    assert_eq!(stats.tokens_issued[BFF_ID], 1);
}

#[tokio::test]
async fn refusals_are_typed_not_retried_and_negatively_cached() {
    let issuer = start_issuer(TokenProfile::Cognito).await;
    let tokens = TokenManager::builder()
        .build()
        .unwrap()
        .register("api", client(&issuer, BFF_ID, "wrong-secret"))
        .unwrap();
    let error = tokens.token().await.unwrap_err();
    match &error {
        TokenError::Rejected {
            status,
            error,
            description,
        } => {
            assert_eq!(*status, 401);
            assert_eq!(error, "invalid_client");
            assert!(description.is_some());
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert_eq!(requests(&issuer), 1, "4xx is not retried");
    // Within the negative-cache window the error comes back without a request.
    assert_eq!(tokens.token().await.unwrap_err(), error);
    assert_eq!(requests(&issuer), 1);
}

#[tokio::test]
async fn issuer_down_fails_fast_with_a_transport_error() {
    let issuer = start_issuer(TokenProfile::Cognito).await;
    let tokens = manager(&issuer);
    issuer.shutdown().await;
    let started = Instant::now();
    let error = tokens.token().await.unwrap_err();
    assert!(matches!(error, TokenError::Transport(_)), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
}

/// The retry settings reach the token requests: zero retries is one request against a
/// failing issuer; two retries ride out two failures.
#[tokio::test]
async fn the_clients_retry_settings_are_the_ones_used() {
    let issuer = start_issuer(TokenProfile::Cognito).await;
    let manager = TokenManager::builder().build().unwrap();
    let client = |name: &str, retries: usize| {
        let mut settings = ClientSettings::default();
        settings.token_endpoint_url = issuer.token_endpoint().parse().ok();
        settings.client_id = Some(BFF_ID.into());
        settings.client_secret = Some(ClientSecret::new(BFF_SECRET));
        settings.token_request_retries = Some(retries);
        settings.token_request_timeout_secs = Some(2);
        let definition = settings.into_definition_named("", "").unwrap();
        assert_eq!(definition.retry.max_retries, retries);
        (name.to_owned(), definition)
    };
    let (name, none) = client("no-retries", 0);
    let none = manager
        .register(name, none.client(Duration::from_secs(2)).await.unwrap())
        .unwrap();
    issuer.fail_next_token_requests(1, 503);
    assert!(none.token().await.is_err());
    assert_eq!(requests(&issuer), 1, "no retry");

    let (name, two) = client("two-retries", 2);
    let two = manager
        .register(name, two.client(Duration::from_secs(2)).await.unwrap())
        .unwrap();
    issuer.fail_next_token_requests(2, 503);
    assert!(two.token().await.is_ok());
    assert_eq!(requests(&issuer), 4, "two failures and the success");

    // Out of range: named, not clamped.
    let mut settings = ClientSettings::default();
    settings.token_request_retries = Some(11);
    settings.token_endpoint_url = issuer.token_endpoint().parse().ok();
    settings.client_id = Some(BFF_ID.into());
    settings.client_secret = Some(ClientSecret::new(BFF_SECRET));
    let error = settings.into_definition_named("", "").unwrap_err();
    assert!(
        error.to_string().contains("token_request_retries"),
        "{error}"
    );
}

#[tokio::test]
async fn post_body_credentials_and_discovery_work() {
    let issuer = start_issuer(TokenProfile::Cognito).await;
    let discovered = ClientCredentialsClient::from_authority(
        issuer.issuer(),
        ClientId::new(ODD_ID),
        ClientSecret::new(ODD_SECRET),
        Duration::from_secs(5),
        false,
    )
    .await
    .unwrap();
    assert_eq!(discovered.token_endpoint, issuer.token_endpoint());
    for style in [CredentialStyle::BasicHeader, CredentialStyle::PostBody] {
        let tokens = TokenManager::builder()
            .build()
            .unwrap()
            .register("api", discovered.clone().with_credential_style(style))
            .unwrap();
        let token = tokens.token().await.unwrap();
        assert_eq!(
            decode_part(token.secret(), 1)["client_id"],
            ODD_ID,
            "{style:?}"
        );
    }
}

/// A downstream API that answers 401 to the first `reject_first` requests, then 200, and
/// records the bearer tokens it saw.
struct Downstream {
    server: TestServer,
    seen: Arc<std::sync::Mutex<Vec<String>>>,
}

async fn downstream(reject_first: usize) -> Downstream {
    answering(reject_first, None).await
}

/// A downstream that answers every request 401 with `challenge` (if any).
async fn refusing(challenge: Option<&'static str>) -> Downstream {
    answering(usize::MAX, challenge).await
}

/// The downstream of both: 401 (with `challenge`, if any) to the first `reject_first`
/// requests, then 200, on GET and POST, recording the Authorization headers.
async fn answering(reject_first: usize, challenge: Option<&'static str>) -> Downstream {
    let seen: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let count = Arc::new(AtomicUsize::new(0));
    let recorded = seen.clone();
    let handler = move |headers: HeaderMap| {
        let (seen, count) = (recorded.clone(), count.clone());
        async move {
            let auth = headers
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_owned());
            seen.lock().unwrap().push(auth.unwrap_or_default());
            let mut response = axum::response::Response::new(axum::body::Body::empty());
            if count.fetch_add(1, Ordering::SeqCst) < reject_first {
                *response.status_mut() = StatusCode::UNAUTHORIZED;
                if let Some(challenge) = challenge {
                    response
                        .headers_mut()
                        .insert("www-authenticate", challenge.parse().unwrap());
                }
            }
            response
        }
    };
    let app = axum::Router::new().route("/data", get(handler.clone()).post(handler));
    Downstream {
        server: serve(app).await,
        seen,
    }
}

fn api_client(tokens: &ManagedClient) -> reqwest_middleware::ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(ClientCredentialsMiddleware::new(tokens.clone()))
        .build()
}

#[tokio::test]
async fn middleware_renews_once_on_a_401_and_retries_once() {
    let issuer = start_issuer(TokenProfile::Cognito).await;
    let tokens = manager(&issuer);
    let api = downstream(1).await;
    let response = api_client(&tokens)
        .get(format!("{}/data", api.server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = api.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "one request, one retry");
    assert!(seen[0].starts_with("Bearer ") && seen[1].starts_with("Bearer "));
    assert_ne!(seen[0], seen[1], "the retry carries the renewed token");
    assert_eq!(requests(&issuer), 2);
}

#[tokio::test]
async fn middleware_surfaces_a_second_401_after_exactly_two_requests() {
    let issuer = start_issuer(TokenProfile::Cognito).await;
    let tokens = manager(&issuer);
    let api = downstream(usize::MAX).await;
    let response = api_client(&tokens)
        .get(format!("{}/data", api.server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(api.seen.lock().unwrap().len(), 2);
    assert_eq!(requests(&issuer), 2);
}

#[tokio::test]
async fn a_downstream_that_refuses_every_token_costs_one_renewal_per_window() {
    let issuer = start_issuer(TokenProfile::Cognito).await;
    let tokens = manager(&issuer);
    let api = refusing(Some(r#"Bearer error="invalid_token""#)).await;
    let http = api_client(&tokens);
    for _ in 0..20 {
        let response = http
            .get(format!("{}/data", api.server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    println!(
        "downstream always 401: 20 calls -> {} token requests, {} downstream requests",
        requests(&issuer),
        api.seen.lock().unwrap().len()
    );
    assert_eq!(requests(&issuer), 2, "the first token and one renewal");
    assert_eq!(
        api.seen.lock().unwrap().len(),
        21,
        "one retry, on the first call"
    );
}

#[tokio::test]
async fn only_invalid_token_or_a_bare_challenge_is_answered_with_a_new_token() {
    for (challenge, renews) in [
        (
            Some(r#"Bearer error="insufficient_scope", scope="x""#),
            false,
        ),
        (Some(r#"Bearer error="invalid_request""#), false),
        (Some(r#"Bearer realm="api""#), true),
        (
            Some(r#"Bearer error="invalid_token", error_description="expired""#),
            true,
        ),
        (None, true),
    ] {
        let issuer = start_issuer(TokenProfile::Cognito).await;
        let tokens = manager(&issuer);
        let api = refusing(challenge).await;
        let response = api_client(&tokens)
            .get(format!("{}/data", api.server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let expected = if renews { 2 } else { 1 };
        assert_eq!(requests(&issuer), expected, "{challenge:?}");
        assert_eq!(
            api.seen.lock().unwrap().len() as u64,
            expected,
            "{challenge:?}"
        );
    }
}

#[tokio::test]
async fn a_post_is_replayed_after_a_401_only_when_the_caller_says_so() {
    let issuer = start_issuer(TokenProfile::Cognito).await;
    let tokens = manager(&issuer);
    let api = refusing(None).await;
    let url = format!("{}/data", api.server.base);
    let http = api_client(&tokens);
    let plain = http.post(&url).body("{}").send().await.unwrap();
    assert_eq!(plain.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        api.seen.lock().unwrap().len(),
        1,
        "a POST is not sent twice"
    );
    assert_eq!(requests(&issuer), 1, "and costs no renewal");
    let marked = http
        .post(&url)
        .body("{}")
        .with_extension(ReplayOn401)
        .send()
        .await
        .unwrap();
    assert_eq!(marked.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        api.seen.lock().unwrap().len(),
        3,
        "the marked POST was retried once"
    );
    assert_eq!(requests(&issuer), 2);
}

#[tokio::test]
async fn middleware_does_not_send_the_request_without_a_token() {
    let issuer = start_issuer(TokenProfile::Cognito).await;
    let tokens = TokenManager::builder()
        .build()
        .unwrap()
        .register("api", client(&issuer, BFF_ID, "wrong-secret"))
        .unwrap();
    let api = downstream(0).await;
    let error = api_client(&tokens)
        .get(format!("{}/data", api.server.base))
        .send()
        .await
        .unwrap_err();
    let cause = TokenError::of(&error).expect("a token error");
    assert!(matches!(cause, TokenError::Rejected { error, .. } if error == "invalid_client"));
    assert!(
        api.seen.lock().unwrap().is_empty(),
        "no request reached the API"
    );
    assert_eq!(requests(&issuer), 1, "invalid_client is not retried");
}

/// A multi-tenant caller: the middleware derives the tenant of each outgoing request from
/// its `X-Tenant` header and asks for a token with a `tenant` parameter. Each tenant gets a
/// token of its own (the issuer writes the tenant into it), kept apart in the cache; a
/// request without a tenant takes the client's own token.
#[tokio::test]
async fn a_derived_tenant_parameter_gets_each_tenant_its_own_token() {
    let issuer = start_issuer(TokenProfile::Cognito).await;
    let tokens = manager(&issuer);
    let seen: Arc<std::sync::Mutex<Vec<(String, String)>>> = Arc::default();
    let recorded = seen.clone();
    let app = axum::Router::new().route(
        "/data",
        get(move |headers: HeaderMap| {
            let seen = recorded.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .map(|v| v.to_str().unwrap().to_owned())
                        .unwrap_or_default()
                };
                seen.lock()
                    .unwrap()
                    .push((header("x-tenant"), header("authorization")));
                StatusCode::OK
            }
        }),
    );
    let api = serve(app).await;
    let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(
            ClientCredentialsMiddleware::new(tokens.clone()).with_token_request(|request| {
                let mut params = TokenRequestParams::default();
                if let Some(tenant) = request.headers().get("x-tenant") {
                    let tenant = tenant.to_str().unwrap_or_default().to_owned();
                    params.extra.insert("tenant".into(), tenant);
                }
                params
            }),
        )
        .build();
    for tenant in ["acme", "globex", "acme", "", "globex", "acme", ""] {
        let mut request = http.get(format!("{}/data", api.base));
        if !tenant.is_empty() {
            request = request.header("x-tenant", tenant);
        }
        assert_eq!(request.send().await.unwrap().status(), StatusCode::OK);
    }
    let seen = seen.lock().unwrap().clone();
    let token_of = |tenant: &str| -> std::collections::BTreeSet<String> {
        seen.iter()
            .filter(|(t, _)| t == tenant)
            .map(|(_, auth)| auth.trim_start_matches("Bearer ").to_owned())
            .collect()
    };
    let (acme, globex, own) = (token_of("acme"), token_of("globex"), token_of(""));
    assert_eq!(
        (acme.len(), globex.len(), own.len()),
        (1, 1, 1),
        "one token per tenant, reused"
    );
    let claim = |set: &std::collections::BTreeSet<String>| {
        decode_part(set.iter().next().unwrap(), 1)["tenant"].clone()
    };
    assert_eq!(claim(&acme), "acme");
    assert_eq!(claim(&globex), "globex");
    assert_eq!(claim(&own), serde_json::Value::Null);
    assert_eq!(
        requests(&issuer),
        3,
        "one token request per tenant and one own"
    );
    // The client's own token is the hot one, untouched by the tenants'.
    assert_eq!(
        tokens.token().await.unwrap().secret(),
        own.iter().next().unwrap()
    );

    // A derived parameter named like the grant's own is refused before anything is sent.
    let refusing = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(
            ClientCredentialsMiddleware::new(tokens.clone()).with_token_request(|_| {
                let mut params = TokenRequestParams::default();
                params.extra.insert("scope".into(), "admin".into());
                params
            }),
        )
        .build();
    let e = refusing
        .get(format!("{}/data", api.base))
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(TokenError::of(&e), Some(TokenError::InvalidParameters(_))),
        "{e}"
    );
    assert_eq!(requests(&issuer), 3);
}

/// A 401 for one tenant's token renews that tenant's token, whatever another tenant's
/// renewal did a moment before: the once-per-30-s bound is per token, not per client.
#[tokio::test]
async fn a_rejected_tenant_token_is_renewed_beside_another_tenants_renewal() {
    let issuer = start_issuer(TokenProfile::Cognito).await;
    let tokens = manager(&issuer);
    let api = downstream(0).await;
    let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(
            ClientCredentialsMiddleware::new(tokens.clone()).with_token_request(|request| {
                let mut params = TokenRequestParams::default();
                let tenant = request.url().query().unwrap_or_default().to_owned();
                params.extra.insert("tenant".into(), tenant);
                params
            }),
        )
        .build();
    let acme = http.get(format!("{}/data?acme", api.server.base));
    assert_eq!(acme.send().await.unwrap().status(), StatusCode::OK);
    let rejected = refusing(Some(r#"Bearer error="invalid_token""#)).await;
    for tenant in ["acme", "globex"] {
        let response = http
            .get(format!("{}/data?{tenant}", rejected.server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let seen = rejected.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4, "each tenant's call retried once");
    assert_ne!(seen[0], seen[1], "acme's retry carries a renewed token");
    assert_ne!(seen[2], seen[3], "globex's retry carries a renewed token");
    // acme: first + renewal; globex: first + renewal.
    assert_eq!(requests(&issuer), 4);
}
