//! Keys instead of secrets, against a real mock issuer on a socket: `private_key_jwt`,
//! a platform-written assertion file that rotates, and DPoP-bound tokens with server nonces
//! at the token endpoint. What the issuer saw is read from its own counters; what it
//! issued, from the token itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::JwkSet;
use mock_issuer::{ClientConfig, FederatedTrust, IssuerHandle, TokenProfile};
use serde_json::{Value, json};
use shared_auth::client::{
    ClientCredential, ClientCredentialsClient, ClientId, ManagedClient, SigningKey, TokenError,
    TokenManager, TokenRequestParams,
};
use test_support::*;

const KEY_CLIENT: &str = "key-client";
const PLATFORM_CLIENT: &str = "platform-client";
const SUBJECT: &str = "system:serviceaccount:payments:my-bff";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The public half of `keys` as a JWK set (with each key's `kid`).
fn jwks(keys: &[&SigningKey]) -> JwkSet {
    let keys: Vec<Value> = keys
        .iter()
        .map(|k| {
            let mut jwk = k.public_jwk().clone();
            if let Some(kid) = k.key_id() {
                jwk["kid"] = json!(kid);
            }
            jwk
        })
        .collect();
    serde_json::from_value(json!({ "keys": keys })).unwrap()
}

/// An issuer that knows `KEY_CLIENT` by its public key and trusts `platform` for
/// `PLATFORM_CLIENT`, besides the usual clients.
async fn issuer_with(key: &SigningKey, platform: Option<&IssuerHandle>) -> IssuerHandle {
    let mut config = issuer_config(TokenProfile::Cognito)
        .with_client(ClientConfig::without_secret(KEY_CLIENT, [READ]).with_jwks(jwks(&[key])));
    if let Some(platform) = platform {
        config = config.with_client(
            ClientConfig::without_secret(PLATFORM_CLIENT, [READ]).with_federated(
                FederatedTrust::new(platform.issuer(), platform.jwks_uri(), SUBJECT),
            ),
        );
    }
    mock_issuer::start(config).await.unwrap()
}

fn register(client: ClientCredentialsClient) -> ManagedClient {
    // No negative cache: these tests renew right after a refusal on purpose.
    TokenManager::builder()
        .negative_cache(std::time::Duration::ZERO)
        .build()
        .unwrap()
        .register("api", client)
        .unwrap()
}

fn es256(kid: &str) -> SigningKey {
    SigningKey::generate_es256().unwrap().with_key_id(kid)
}

fn forced() -> TokenRequestParams {
    TokenRequestParams {
        force_renewal: true,
        ..TokenRequestParams::default()
    }
}

#[tokio::test]
async fn private_key_jwt_gets_a_token_and_only_on_a_cache_miss() {
    let key = es256("bff-key-1");
    let issuer = issuer_with(&key, None).await;
    let tokens = register(ClientCredentialsClient::new(
        issuer.token_endpoint(),
        ClientId::new(KEY_CLIENT),
        ClientCredential::private_key_jwt(key),
    ));
    let token = tokens.token().await.unwrap();
    assert_eq!(decode_part(token.secret(), 1)["client_id"], KEY_CLIENT);
    for _ in 0..5 {
        assert_eq!(tokens.token().await.unwrap(), token);
    }
    let stats = issuer.stats();
    assert_eq!(
        stats.tokens_issued_assertion, 1,
        "one assertion, one token request"
    );
    assert_eq!(stats.client_assertions_refused, 0);
    // A renewal signs a new assertion: a reused jti would be refused by the issuer.
    tokens.token_with(&forced()).await.unwrap();
    assert_eq!(issuer.stats().tokens_issued_assertion, 2);
}

#[tokio::test]
async fn a_key_the_issuer_does_not_know_is_refused_as_invalid_client() {
    let registered = es256("registered");
    let issuer = issuer_with(&registered, None).await;
    let tokens = register(ClientCredentialsClient::new(
        issuer.token_endpoint(),
        ClientId::new(KEY_CLIENT),
        ClientCredential::private_key_jwt(es256("registered")),
    ));
    match tokens.token().await.unwrap_err() {
        TokenError::Rejected {
            status: 401,
            error,
            description,
        } => {
            assert_eq!(error, "invalid_client");
            assert!(description.unwrap().contains("signature"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(issuer.stats().client_assertions_refused, 1);
}

/// A platform token for `audience`, as a Kubernetes kubelet would write it.
fn platform_token(platform: &IssuerHandle, subject: &str, audience: &str) -> String {
    let now = now();
    platform
        .sign_claims(&json!({
            "iss": platform.issuer(),
            "sub": subject,
            "aud": audience,
            "iat": now,
            "exp": now + 600,
            "jti": format!("{subject}-{}", rand_suffix()),
        }))
        .unwrap()
}

fn rand_suffix() -> String {
    SigningKey::generate_es256().unwrap().thumbprint()[..8].to_owned()
}

#[tokio::test]
async fn an_assertion_file_is_read_again_for_every_token_request() {
    let platform = start_issuer(TokenProfile::Cognito).await;
    let issuer = issuer_with(&es256("unused"), Some(&platform)).await;
    let file = TempFile::new("assertion");
    file.write(&platform_token(&platform, SUBJECT, issuer.issuer()));
    let tokens = register(ClientCredentialsClient::new(
        issuer.token_endpoint(),
        ClientId::new(PLATFORM_CLIENT),
        ClientCredential::assertion_file(&file.0),
    ));
    tokens.token().await.unwrap();
    assert_eq!(issuer.stats().tokens_issued_federated, 1);

    // The platform rotates the file to a token the issuer refuses: the next token request
    // sends it, so it was read again.
    file.write(&platform_token(
        &platform,
        "system:serviceaccount:other:intruder",
        issuer.issuer(),
    ));
    match tokens.token_with(&forced()).await.unwrap_err() {
        TokenError::Rejected {
            error, description, ..
        } => {
            assert_eq!(error, "invalid_client");
            assert!(description.unwrap().contains("sub"));
        }
        other => panic!("{other:?}"),
    }
    // And rotated again to a good one: the client recovers without a restart.
    file.write(&platform_token(&platform, SUBJECT, issuer.issuer()));
    tokens.token_with(&forced()).await.unwrap();
    assert_eq!(issuer.stats().tokens_issued_federated, 2);

    // The same platform token may be sent again until it rotates (not single use).
    tokens.token_with(&forced()).await.unwrap();
    assert_eq!(issuer.stats().tokens_issued_federated, 3);

    // A file that does not hold a JWT fails before any request, naming the file.
    file.write("not a token\n");
    let before = issuer.stats().token_requests;
    match tokens.token_with(&forced()).await.unwrap_err() {
        TokenError::Credential(reason) => assert!(reason.contains("assertion"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(issuer.stats().token_requests, before);
}

#[tokio::test]
async fn dpop_tokens_are_bound_to_the_clients_key_through_nonce_challenges() {
    let issuer = start_issuer(TokenProfile::Cognito).await;
    issuer.require_dpop_nonce(true);
    let key = SigningKey::generate_es256().unwrap();
    let tokens = register(
        ClientCredentialsClient::new(
            issuer.token_endpoint(),
            ClientId::new(BFF_ID),
            shared_auth::client::ClientSecret::new(BFF_SECRET),
        )
        .with_dpop(key.clone()),
    );
    let token = tokens.token().await.unwrap();
    assert_eq!(
        decode_part(token.secret(), 1)["cnf"]["jkt"],
        key.thumbprint()
    );
    let stats = issuer.stats();
    assert_eq!(
        stats.dpop_nonce_challenges, 1,
        "one use_dpop_nonce, answered once"
    );
    assert_eq!(stats.dpop_tokens_issued, 1);

    // The nonce is remembered: the next token request needs no challenge.
    tokens.token_with(&forced()).await.unwrap();
    assert_eq!(issuer.stats().dpop_nonce_challenges, 1);
    assert_eq!(issuer.stats().dpop_tokens_issued, 2);

    // A rotated nonce costs one more challenge, not a failure.
    issuer.rotate_dpop_nonce();
    tokens.token_with(&forced()).await.unwrap();
    assert_eq!(issuer.stats().dpop_nonce_challenges, 2);
    assert_eq!(issuer.stats().dpop_tokens_issued, 3);
    assert_eq!(issuer.stats().dpop_proofs_refused, 0);
}

#[tokio::test]
async fn private_key_jwt_and_dpop_together() {
    let key = es256("bff-key-2");
    let issuer = issuer_with(&key, None).await;
    let dpop = SigningKey::generate_es256().unwrap();
    let tokens = register(
        ClientCredentialsClient::new(
            issuer.token_endpoint(),
            ClientId::new(KEY_CLIENT),
            ClientCredential::private_key_jwt(key),
        )
        .with_dpop(dpop.clone()),
    );
    let token = tokens.token().await.unwrap();
    assert_eq!(
        decode_part(token.secret(), 1)["cnf"]["jkt"],
        dpop.thumbprint()
    );
    let stats = issuer.stats();
    assert_eq!(
        (stats.tokens_issued_assertion, stats.dpop_tokens_issued),
        (1, 1)
    );
}

/// A resource server that wants DPoP nonces, behind a barrier: the first `hold` requests
/// reach the auth layer only once all of them have arrived, so they are all refused with
/// the same fresh nonce before any client sees an answer.
async fn nonce_server(issuer: &IssuerHandle, hold: usize) -> TestServer {
    use axum::routing::get;
    use shared_auth::server::{JwtAuthLayer, JwtValidator};
    let (listener, base) = bind().await;
    let mut config = validator_config_for(issuer.issuer(), cognito());
    config.dpop.mode = shared_auth::server::DpopMode::Allowed;
    config.dpop.public_base_url = Some(base);
    config.dpop.nonces = true;
    let validator = JwtValidator::new(config).await.unwrap();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(hold));
    let arrived = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let app = axum::Router::new()
        .route("/data", get(|| async { "ok" }).post(|| async { "posted" }))
        .route_layer(JwtAuthLayer::new(validator))
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let (barrier, arrived) = (barrier.clone(), arrived.clone());
                async move {
                    if arrived.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < hold {
                        barrier.wait().await;
                    }
                    next.run(request).await
                }
            },
        ));
    serve_listener(listener, app)
}

fn dpop_api(issuer: &IssuerHandle) -> reqwest_middleware::ClientWithMiddleware {
    let tokens = register(
        ClientCredentialsClient::new(
            issuer.token_endpoint(),
            ClientId::new(BFF_ID),
            shared_auth::client::ClientSecret::new(BFF_SECRET),
        )
        .with_dpop(SigningKey::generate_es256().unwrap()),
    );
    reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(shared_auth::client::ClientCredentialsMiddleware::new(
            tokens,
        ))
        .build()
}

#[tokio::test]
async fn concurrent_requests_refused_with_one_nonce_all_retry_with_it() {
    let issuer = start_issuer(TokenProfile::Cognito).await;
    let api = dpop_api(&issuer);
    let server = nonce_server(&issuer, 2).await;
    let url = format!("{}/data", server.base);
    // Both go out without a nonce and are both refused with the same one. The first answer
    // read stores it; the second must retry all the same (its proof had no nonce).
    let (a, b) = tokio::join!(api.get(&url).send(), api.get(&url).send());
    assert_eq!(a.unwrap().status(), 200);
    assert_eq!(b.unwrap().status(), 200);
}

#[tokio::test]
async fn a_post_is_sent_again_with_the_nonce_it_was_refused_for() {
    // A use_dpop_nonce refusal comes before the handler runs: a POST (not replayable after
    // a 401 in general) is sent again with the nonce.
    let issuer = start_issuer(TokenProfile::Cognito).await;
    let api = dpop_api(&issuer);
    let server = nonce_server(&issuer, 1).await;
    let response = api
        .post(format!("{}/data", server.base))
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "posted");
}

/// The assertion's `iat` and `exp` are the manager's clock's: a manager whose clock runs
/// an hour ahead signs assertions the issuer refuses as not yet valid, and one on time
/// signs them the issuer accepts. (Assertions and DPoP proofs read no other clock.)
#[tokio::test]
async fn assertions_are_dated_by_the_managers_clock() {
    let key = es256("bff-key-clock");
    let issuer = issuer_with(&key, None).await;
    let client = ClientCredentialsClient::new(
        issuer.token_endpoint(),
        ClientId::new(KEY_CLIENT),
        ClientCredential::private_key_jwt(key),
    );
    let ahead = std::sync::Arc::new(shared_auth::ManualClock::starting_now());
    ahead.advance(std::time::Duration::from_secs(3600));
    let tokens = TokenManager::builder()
        .clock(ahead)
        .build()
        .unwrap()
        .register("api", client.clone())
        .unwrap();
    let refused = tokens.token().await.unwrap_err();
    assert!(refused.to_string().contains("invalid_client"), "{refused}");
    assert_eq!(issuer.stats().client_assertions_refused, 1);
    register(client).token().await.unwrap();
    assert_eq!(issuer.stats().tokens_issued_assertion, 1);
}
