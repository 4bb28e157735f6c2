//! Token exchange (RFC 8693) and Transaction Token requests through the token manager,
//! against a real mock issuer on a socket: one cache entry per subject token (a token
//! exchanged for one user is never served for another), single flight, the negative
//! cache, the middleware that will not send a call on behalf of nobody, and the answers a
//! Transaction Token request must get.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::routing::get;
use mock_issuer::{ClientConfig, IssuerConfig, IssuerHandle, TokenProfile};
use serde_json::json;
use shared_auth::client::{
    AccessToken, ClientCredentialsClient, ClientId, ClientSecret, ManagedClient, TokenError,
    TokenExchange, TokenExchangeMiddleware, TokenManager, TransactionTokenRequest,
};
use test_support::*;

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const TRUST_DOMAIN: &str = "https://trust.example";

async fn issuer(trust_domain: bool) -> IssuerHandle {
    let mut config = IssuerConfig::new(TokenProfile::Cognito)
        .with_resource_server("MyService", ["weather_read"])
        .with_resource_server("Downstream", ["read"])
        .with_client(
            ClientConfig::new(
                "my-service",
                "my-service-secret-0123456789",
                ["Downstream/read"],
            )
            .with_grant_types(["client_credentials", EXCHANGE]),
        );
    if trust_domain {
        config = config.with_trust_domain(TRUST_DOMAIN);
    }
    mock_issuer::start(config).await.unwrap()
}

fn service(issuer: &IssuerHandle) -> (TokenManager, ManagedClient) {
    let manager = TokenManager::builder().build().unwrap();
    let client = manager
        .register(
            "my-service",
            ClientCredentialsClient::new(
                issuer.token_endpoint(),
                ClientId::new("my-service"),
                ClientSecret::new("my-service-secret-0123456789"),
            ),
        )
        .unwrap();
    (manager, client)
}

/// An access token of `issuer` for `sub`, with `scope`.
fn subject(issuer: &IssuerHandle, sub: &str, scope: &str) -> AccessToken {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    AccessToken::new(
        issuer
            .sign_claims(&json!({
                "iss": issuer.issuer(), "sub": sub, "client_id": "my-bff",
                "token_use": "access", "scope": scope, "iat": now, "exp": now + 600,
            }))
            .unwrap(),
    )
}

fn sub_of(token: &AccessToken) -> String {
    decode_part(token.secret(), 1)["sub"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn each_subject_token_gets_its_own_exchanged_token_and_a_repeat_is_a_cache_hit() {
    let issuer = issuer(false).await;
    let (manager, client) = service(&issuer);
    let downstream = TokenExchange::for_audience("Downstream");
    let alice = subject(&issuer, "alice", "Downstream/read");
    let bob = subject(&issuer, "bob", "Downstream/read");
    // The same user with another token (another scope): a key made from claims (sub,
    // client) would call these one; the subject token's hash keeps them apart.
    let alice_again = subject(&issuer, "alice", "Downstream/read MyService/weather_read");

    let for_alice = client.exchange(&alice, &downstream).await.unwrap();
    let for_bob = client.exchange(&bob, &downstream).await.unwrap();
    let for_alice_again = client.exchange(&alice_again, &downstream).await.unwrap();
    assert_eq!(sub_of(&for_alice), "alice");
    assert_eq!(sub_of(&for_bob), "bob");
    assert_ne!(for_alice, for_alice_again);
    assert_eq!(
        decode_part(for_alice_again.secret(), 1)["scope"],
        "Downstream/read MyService/weather_read"
    );
    assert_eq!(manager.flights_started(), 3);
    assert_eq!(issuer.stats().token_requests, 3);

    // Repeats: cache hits, no request.
    for _ in 0..10 {
        assert_eq!(
            client.exchange(&alice, &downstream).await.unwrap(),
            for_alice
        );
        assert_eq!(client.exchange(&bob, &downstream).await.unwrap(), for_bob);
    }
    assert_eq!(issuer.stats().token_requests, 3);
    // Another audience or scope for the same subject is another token.
    let narrower = TokenExchange::for_audience("Downstream")
        .with_scope(shared_auth::ScopeSet::parse("Downstream/read").unwrap());
    assert_ne!(client.exchange(&alice, &narrower).await.unwrap(), for_alice);
    // The client's own token is untouched by all this.
    assert_eq!(sub_of(&client.token().await.unwrap()), "my-service");

    // An empty subject is refused before anything is sent.
    let before = issuer.stats().token_requests;
    let refused = client.exchange(&AccessToken::new(""), &downstream).await;
    assert!(
        matches!(refused, Err(TokenError::InvalidParameters(_))),
        "{refused:?}"
    );
    assert_eq!(issuer.stats().token_requests, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_exchanges_for_one_subject_make_one_request_and_a_refusal_is_remembered() {
    let issuer = issuer(false).await;
    issuer.set_token_delay(std::time::Duration::from_millis(100));
    let (manager, client) = service(&issuer);
    let alice = subject(&issuer, "alice", "Downstream/read");
    let downstream = TokenExchange::for_audience("Downstream");
    let tokens = concurrently((0..50).map(|_| {
        let (client, alice, downstream) = (client.clone(), alice.clone(), downstream.clone());
        async move { client.exchange(&alice, &downstream).await.unwrap() }
    }))
    .await;
    assert!(tokens.iter().all(|t| *t == tokens[0]));
    assert_eq!(manager.flights_started(), 1);
    assert_eq!(issuer.stats().token_requests, 1);

    // A subject the issuer refuses (not its token): one request, then the negative cache
    // answers for that subject only.
    let foreign = mock_issuer::start(IssuerConfig::new(TokenProfile::Cognito))
        .await
        .unwrap();
    let stranger = subject(&foreign, "eve", "Downstream/read");
    let first = client.exchange(&stranger, &downstream).await.unwrap_err();
    assert!(
        matches!(first, TokenError::Rejected { ref error, .. } if error == "invalid_request"),
        "{first:?}"
    );
    let again = client.exchange(&stranger, &downstream).await.unwrap_err();
    assert_eq!(again, first);
    assert_eq!(issuer.stats().token_requests, 2);
    // The refusal is remembered for that subject only: another user's first exchange
    // goes to the issuer and succeeds.
    let carol = subject(&issuer, "carol", "Downstream/read");
    assert_eq!(
        sub_of(&client.exchange(&carol, &downstream).await.unwrap()),
        "carol"
    );
    assert_eq!(issuer.stats().token_requests, 3);
    // Alice's cached token is unaffected.
    assert_eq!(
        client.exchange(&alice, &downstream).await.unwrap(),
        tokens[0]
    );
}

#[tokio::test]
async fn the_exchange_middleware_sends_no_request_on_behalf_of_nobody() {
    let issuer = issuer(false).await;
    let (_, client) = service(&issuer);
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let api = serve(axum::Router::new().route(
        "/",
        get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { "ok" }
        }),
    ))
    .await;
    let http = reqwest_middleware::ClientBuilder::new(http())
        .with(TokenExchangeMiddleware::new(
            client,
            TokenExchange::for_audience("Downstream"),
        ))
        .build();
    let error = http.get(format!("{}/", api.base)).send().await.unwrap_err();
    assert_eq!(TokenError::of(&error), Some(&TokenError::NoSubject));
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    assert_eq!(issuer.stats().token_requests, 0);
}

#[tokio::test]
async fn a_transaction_token_is_new_for_each_call_and_refused_where_no_service_runs() {
    let issuer = issuer(true).await;
    let (manager, client) = service(&issuer);
    let alice = subject(&issuer, "alice", "Downstream/read");
    let request = TransactionTokenRequest::new(TRUST_DOMAIN);
    let first = client.transaction_token(&alice, &request).await.unwrap();
    let second = client.transaction_token(&alice, &request).await.unwrap();
    assert_ne!(first, second, "never cached: each call is a transaction");
    assert_eq!(decode_part(first.secret(), 0)["typ"], "txntoken+jwt");
    assert_eq!(decode_part(first.secret(), 1)["sub"], "alice");
    assert_eq!(manager.flights_started(), 0);
    assert!(!format!("{first:?}").contains(first.secret()));

    // Another trust domain than the service's: invalid_target.
    let elsewhere = client
        .transaction_token(
            &alice,
            &TransactionTokenRequest::new("https://other.example"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(elsewhere, TokenError::Rejected { ref error, .. } if error == "invalid_target"),
        "{elsewhere:?}"
    );
    // An issuer with no Transaction Token Service.
    let plain = self::issuer(false).await;
    let (_, plain_client) = service(&plain);
    let refused = plain_client
        .transaction_token(&subject(&plain, "alice", "Downstream/read"), &request)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, TokenError::Rejected { ref error, .. } if error == "invalid_request"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn an_answer_that_is_not_a_transaction_token_is_refused() {
    // A token endpoint that ignores requested_token_type and sends an access token.
    let endpoint = serve(axum::Router::new().route(
        "/token",
        axum::routing::post(|| async {
            axum::Json(json!({"access_token": "a.b.c", "token_type": "Bearer", "expires_in": 60}))
        }),
    ))
    .await;
    let manager = TokenManager::builder().build().unwrap();
    let client = manager
        .register(
            "edge",
            ClientCredentialsClient::new(
                format!("{}/token", endpoint.base),
                ClientId::new("edge"),
                ClientSecret::new("edge-secret-0123456789"),
            ),
        )
        .unwrap();
    let error = client
        .transaction_token(
            &AccessToken::new("user.token.x"),
            &TransactionTokenRequest::new(TRUST_DOMAIN),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, TokenError::InvalidResponse(ref why) if why.contains("issued_token_type")),
        "{error:?}"
    );
}
