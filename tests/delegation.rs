//! Calls that carry who asked, through a chain of three services built from the library:
//! an edge (the BFF's part: the user's token exchanged for a Transaction Token), a middle
//! service (my-service's part: it checks both tokens, exchanges the caller's token for the
//! downstream API on behalf of the user, and passes the Transaction Token on), and a
//! downstream resource server that requires both.
//!
//! The last service sees the transaction the edge started (same `txn`, same subject) and a
//! token exchanged by the middle service for the user; a Transaction Token of another
//! trust domain, an expired one, a tampered one and a missing one are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router, handler::Handler};
use mock_issuer::{ClientConfig, IssuerConfig, IssuerHandle, TokenProfile};
use serde_json::{Value, json};
use shared_auth::client::{
    AccessToken, ClientCredentialsClient, ClientCredentialsMiddleware, ClientId, ClientSecret,
    ManagedClient, OnBehalfOf, TokenExchange, TokenExchangeMiddleware, TokenManager,
    TransactionTokenMiddleware, TransactionTokenRequest,
};
use shared_auth::server::{
    JwtAuthLayer, JwtValidator, MetadataSource, Principal, RequireScopeLayer, Transaction,
    TransactionTokenConfig, TransactionTokenLayer,
};
use shared_auth::{Clock as _, ManualClock};
use system_tests::{cognito, decode_part, http, serve, validator_config_for};

const TRUST_DOMAIN: &str = "https://trust.example";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

async fn issuer() -> IssuerHandle {
    mock_issuer::start(
        IssuerConfig::new(TokenProfile::Cognito)
            .with_resource_server("MyService", ["weather_read"])
            .with_resource_server("Downstream", ["read"])
            .with_trust_domain(TRUST_DOMAIN)
            .with_client(
                ClientConfig::new(
                    "my-bff",
                    "my-bff-secret-0123456789",
                    ["MyService/weather_read"],
                )
                .with_grant_types(["client_credentials", EXCHANGE]),
            )
            .with_client(
                ClientConfig::new(
                    "my-service",
                    "my-service-secret-0123456789",
                    ["Downstream/read"],
                )
                .with_grant_types(["client_credentials", EXCHANGE]),
            ),
    )
    .await
    .unwrap()
}

/// The user's access token, as the BFF holds it after login.
fn user_token(issuer: &IssuerHandle, sub: &str) -> AccessToken {
    let now = now();
    AccessToken::new(
        issuer
            .sign_claims(&json!({
                "iss": issuer.issuer(),
                "sub": sub,
                "client_id": "my-bff",
                "token_use": "access",
                "scope": "MyService/weather_read Downstream/read",
                "iat": now,
                "exp": now + 600,
            }))
            .unwrap(),
    )
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn client(issuer: &IssuerHandle, manager: &TokenManager, id: &str, secret: &str) -> ManagedClient {
    manager
        .register(
            id,
            ClientCredentialsClient::new(
                issuer.token_endpoint(),
                ClientId::new(id),
                ClientSecret::new(secret),
            ),
        )
        .unwrap()
}

async fn txn_layer(
    issuer: &IssuerHandle,
    trust_domain: &str,
    clock: Option<Arc<ManualClock>>,
) -> TransactionTokenLayer {
    let mut config = TransactionTokenConfig::new(
        MetadataSource::Authority(issuer.issuer().to_owned()),
        trust_domain,
    );
    if let Some(clock) = clock {
        config.clock = clock;
    }
    TransactionTokenLayer::start(config).await.unwrap()
}

async fn validator(issuer: &IssuerHandle) -> JwtValidator {
    JwtValidator::new(validator_config_for(issuer.issuer(), cognito()))
        .await
        .unwrap()
}

/// The downstream resource server: an access token exchanged by my-service for a user,
/// and a Transaction Token, both required. It answers what it saw.
async fn downstream(issuer: &IssuerHandle, txn: TransactionTokenLayer) -> system_tests::TestServer {
    async fn orders(principal: Principal, transaction: Transaction) -> Json<Value> {
        Json(json!({
            "txn": transaction.txn(),
            "transaction_subject": transaction.subject(),
            "requesting_workload": transaction.requesting_workload(),
            "tctx": transaction.transaction_context(),
            "token_subject": principal.subject(),
            "actor": principal.actor(),
            "client_id": principal.client_id(),
        }))
    }
    let router = Router::new().route(
        "/orders",
        get(orders.layer(RequireScopeLayer::actor("my-service")))
            .route_layer(txn.required())
            .route_layer(JwtAuthLayer::new(validator(issuer).await)),
    );
    serve(router).await
}

/// The middle service: checks the caller's token and Transaction Token, then calls the
/// downstream API on behalf of the caller's subject, passing the Transaction Token on.
async fn middle(
    issuer: &IssuerHandle,
    txn: TransactionTokenLayer,
    downstream_base: String,
) -> system_tests::TestServer {
    let manager = TokenManager::builder()
        .allow_insecure_http(true)
        .build()
        .unwrap();
    let tokens = client(
        issuer,
        &manager,
        "my-service",
        "my-service-secret-0123456789",
    );
    let onward = reqwest_middleware::ClientBuilder::new(http())
        .with(TokenExchangeMiddleware::new(
            tokens,
            TokenExchange::for_audience("Downstream"),
        ))
        .with(TransactionTokenMiddleware)
        .build();
    #[derive(Clone)]
    struct Middle {
        onward: reqwest_middleware::ClientWithMiddleware,
        downstream: String,
    }
    async fn forecast(
        State(state): State<Middle>,
        principal: Principal,
        transaction: Transaction,
        headers: HeaderMap,
    ) -> Json<Value> {
        let incoming = headers["authorization"]
            .to_str()
            .unwrap()
            .strip_prefix("Bearer ")
            .unwrap()
            .to_owned();
        let answer: Value = state
            .onward
            .get(format!("{}/orders", state.downstream))
            .with_extension(OnBehalfOf::new(AccessToken::new(incoming)))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Json(json!({
            "seen_here": {"txn": transaction.txn(), "subject": principal.subject()},
            "downstream": answer,
        }))
    }
    let router = Router::new()
        .route(
            "/forecast",
            get(forecast)
                .route_layer(txn.required())
                .route_layer(JwtAuthLayer::new(validator(issuer).await)),
        )
        .with_state(Middle {
            onward,
            downstream: downstream_base,
        });
    serve(router).await
}

#[tokio::test]
async fn the_last_service_sees_the_transaction_and_the_user_the_edge_started() {
    let issuer = issuer().await;
    let last = downstream(&issuer, txn_layer(&issuer, TRUST_DOMAIN, None).await).await;
    let mid = middle(
        &issuer,
        txn_layer(&issuer, TRUST_DOMAIN, None).await,
        last.base.clone(),
    )
    .await;

    // The edge: the user's token for a Transaction Token, sent beside the user's token.
    let manager = TokenManager::builder()
        .allow_insecure_http(true)
        .build()
        .unwrap();
    let bff = client(&issuer, &manager, "my-bff", "my-bff-secret-0123456789");
    let alice = user_token(&issuer, "alice");
    let mut details = serde_json::Map::new();
    details.insert("action".into(), json!("GET /forecast"));
    let txn_token = bff
        .transaction_token(
            &alice,
            &TransactionTokenRequest::new(TRUST_DOMAIN).with_request_details(details),
        )
        .await
        .unwrap();
    let txn = decode_part(txn_token.secret(), 1)["txn"]
        .as_str()
        .unwrap()
        .to_owned();
    let edge = reqwest_middleware::ClientBuilder::new(http())
        .with(TransactionTokenMiddleware)
        .build();
    let answer: Value = edge
        .get(format!("{}/forecast", mid.base))
        .bearer_auth(alice.secret())
        .with_extension(txn_token.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        answer["seen_here"],
        json!({"txn": txn, "subject": "alice"}),
        "{answer}"
    );
    let last_saw = &answer["downstream"];
    assert_eq!(last_saw["txn"], json!(txn), "{answer}");
    assert_eq!(last_saw["transaction_subject"], "alice");
    assert_eq!(last_saw["requesting_workload"], "my-bff");
    assert_eq!(last_saw["tctx"], json!({"action": "GET /forecast"}));
    // The token the last service got was exchanged by my-service for alice.
    assert_eq!(last_saw["token_subject"], "alice");
    assert_eq!(last_saw["actor"], "my-service");
    assert_eq!(last_saw["client_id"], "my-service");

    // Another user through the same middle service: their own exchanged token, never
    // alice's (the exchange cache is keyed by the subject token).
    let bob = user_token(&issuer, "bob");
    let bob_txn = bff
        .transaction_token(&bob, &TransactionTokenRequest::new(TRUST_DOMAIN))
        .await
        .unwrap();
    let answer: Value = edge
        .get(format!("{}/forecast", mid.base))
        .bearer_auth(bob.secret())
        .with_extension(bob_txn)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["downstream"]["token_subject"], "bob", "{answer}");
    assert_eq!(answer["downstream"]["transaction_subject"], "bob");
    assert_ne!(answer["downstream"]["txn"], json!(txn));
}

/// A request straight to the downstream service with my-service's own token and the
/// given Txn-Token header: the status and the problem's detail.
async fn at_downstream(issuer: &IssuerHandle, base: &str, txn_tokens: &[&str]) -> (u16, String) {
    let manager = TokenManager::builder()
        .allow_insecure_http(true)
        .build()
        .unwrap();
    let service = client(
        issuer,
        &manager,
        "my-service",
        "my-service-secret-0123456789",
    );
    let exchanged = service
        .exchange(
            &user_token(issuer, "alice"),
            &TokenExchange::for_audience("Downstream"),
        )
        .await
        .unwrap();
    let mut request = http()
        .get(format!("{base}/orders"))
        .bearer_auth(exchanged.secret());
    for token in txn_tokens {
        request = request.header("txn-token", *token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (
        status,
        body["detail"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn a_transaction_token_of_another_domain_expired_tampered_or_missing_is_refused() {
    let issuer = issuer().await;
    let clock = Arc::new(ManualClock::starting_now());
    let last = downstream(
        &issuer,
        txn_layer(&issuer, TRUST_DOMAIN, Some(clock.clone())).await,
    )
    .await;
    let manager = TokenManager::builder()
        .allow_insecure_http(true)
        .build()
        .unwrap();
    let bff = client(&issuer, &manager, "my-bff", "my-bff-secret-0123456789");
    let good = bff
        .transaction_token(
            &user_token(&issuer, "alice"),
            &TransactionTokenRequest::new(TRUST_DOMAIN),
        )
        .await
        .unwrap();
    let (status, detail) = at_downstream(&issuer, &last.base, &[good.secret()]).await;
    assert_eq!(status, 200, "{detail}");

    // Missing where the route requires it.
    let (status, detail) = at_downstream(&issuer, &last.base, &[]).await;
    assert_eq!(status, 403);
    assert!(detail.contains("no Txn-Token"), "{detail}");

    // Another trust domain: signed by the same service, for another audience.
    let mut claims = decode_part(good.secret(), 1);
    claims["aud"] = json!("https://other-domain.example");
    let header = decode_part(good.secret(), 0);
    let other = issuer.sign(&header, &claims).unwrap();
    let (status, detail) = at_downstream(&issuer, &last.base, &[&other]).await;
    assert_eq!(status, 403);
    assert!(detail.contains("another trust domain"), "{detail}");

    // An access token (or any JWT not typed txntoken+jwt) in the header.
    let mut untyped = header.clone();
    untyped["typ"] = json!("JWT");
    let untyped = issuer
        .sign(&untyped, &decode_part(good.secret(), 1))
        .unwrap();
    let (status, detail) = at_downstream(&issuer, &last.base, &[&untyped]).await;
    assert_eq!(status, 403);
    assert!(detail.contains("typ"), "{detail}");

    // Replaced mid-chain: another subject written into the payload, signature kept.
    let parts: Vec<&str> = good.secret().split('.').collect();
    let mut forged_claims = decode_part(good.secret(), 1);
    forged_claims["sub"] = json!("mallory");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        base64_url(&serde_json::to_vec(&forged_claims).unwrap()),
        parts[2]
    );
    let (status, detail) = at_downstream(&issuer, &last.base, &[&forged]).await;
    assert_eq!(status, 403);
    assert!(detail.contains("signature"), "{detail}");

    // Expired: the clock moves past exp and the leeway; the cached check does not save it.
    let exp = decode_part(good.secret(), 1)["exp"].as_u64().unwrap();
    let past = (exp + 30 + 1) * 1000 - clock.now_unix_ms().min((exp + 31) * 1000);
    clock.advance(Duration::from_millis(past + 1));
    let (status, detail) = at_downstream(&issuer, &last.base, &[good.secret()]).await;
    assert_eq!(status, 403);
    assert!(detail.contains("expired"), "{detail}");

    // The header twice.
    let (status, detail) =
        at_downstream(&issuer, &last.base, &[good.secret(), good.secret()]).await;
    assert_eq!(status, 403);
    assert!(detail.contains("not a compact JWS"), "{detail}");
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn the_edge_sends_its_own_credential_and_the_transaction_token() {
    // The reference edge: the BFF's client-credentials token in Authorization, the
    // Transaction Token beside it; the service sees the user through the transaction.
    let issuer = issuer().await;
    let txn = txn_layer(&issuer, TRUST_DOMAIN, None).await;
    async fn whoami(principal: Principal, transaction: Transaction) -> Json<Value> {
        Json(json!({"caller": principal.client_id(), "for": transaction.subject()}))
    }
    let auth = JwtAuthLayer::new(validator(&issuer).await);
    let service = serve(
        Router::new()
            .route(
                "/whoami",
                get(whoami)
                    .route_layer(txn.clone())
                    .route_layer(auth.clone()),
            )
            .route(
                "/forecast",
                get((|| async { "forecast" })
                    .layer(RequireScopeLayer::one("MyService/weather_read")))
                .route_layer(txn)
                .route_layer(auth),
            ),
    )
    .await;
    let manager = TokenManager::builder()
        .allow_insecure_http(true)
        .build()
        .unwrap();
    let bff = client(&issuer, &manager, "my-bff", "my-bff-secret-0123456789");
    let txn_token = bff
        .transaction_token(
            &user_token(&issuer, "alice"),
            &TransactionTokenRequest::new(TRUST_DOMAIN),
        )
        .await
        .unwrap();
    let http = reqwest_middleware::ClientBuilder::new(http())
        .with(ClientCredentialsMiddleware::new(bff))
        .with(TransactionTokenMiddleware)
        .build();
    let answer: Value = http
        .get(format!("{}/whoami", service.base))
        .with_extension(txn_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer, json!({"caller": "my-bff", "for": "alice"}));
    // Without a Transaction Token, the optional layer lets the call through, and a handler
    // that needs the transaction refuses it.
    let response = http
        .get(format!("{}/whoami", service.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);

    // A scope route needs the scope in the transaction too: the BFF's own token grants
    // MyService/weather_read, a transaction for Downstream/read only does not.
    let narrow = bff_transaction(&issuer, &manager, Some("Downstream/read")).await;
    let response = http
        .get(format!("{}/forecast", service.base))
        .with_extension(narrow)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    let detail: Value = response.json().await.unwrap();
    assert!(
        detail["detail"]
            .as_str()
            .unwrap()
            .contains("Transaction Token"),
        "{detail}"
    );
    let granted = bff_transaction(&issuer, &manager, None).await;
    let response = http
        .get(format!("{}/forecast", service.base))
        .with_extension(granted)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

/// A Transaction Token for alice from my-bff's client, with `scope` if given.
async fn bff_transaction(
    issuer: &IssuerHandle,
    manager: &TokenManager,
    scope: Option<&str>,
) -> shared_auth::TransactionToken {
    let edge = manager
        .register(
            format!("edge-{}", scope.unwrap_or("all")),
            ClientCredentialsClient::new(
                issuer.token_endpoint(),
                ClientId::new("my-bff"),
                ClientSecret::new("my-bff-secret-0123456789"),
            ),
        )
        .unwrap();
    let mut request = TransactionTokenRequest::new(TRUST_DOMAIN);
    if let Some(scope) = scope {
        request = request.with_scope(shared_auth::ScopeSet::parse(scope).unwrap());
    }
    edge.transaction_token(&user_token(issuer, "alice"), &request)
        .await
        .unwrap()
}
