//! Client assertions at the token endpoint: `private_key_jwt` (RFC 7523 section 2.2) and
//! federated assertions minted by a second issuer playing the platform.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};

use jsonwebtoken::jwk::JwkSet;
use mock_issuer::keys::SigningKey;
use mock_issuer::{
    ASSERTION_TYPE_JWT_BEARER, ASSERTION_TYPE_JWT_SPIFFE, Algorithm, ClientConfig, FederatedTrust,
    IssuerConfig, IssuerHandle, TokenProfile,
};
use serde_json::{Value, json};

const SCOPE: &str = "MyService/weather_read";
const SIGNER: &str = "signing-client";
const WORKLOAD: &str = "workload-client";
const SUBJECT: &str = "system:serviceaccount:ns:my-bff";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn unique_jti() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "jti-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn jwks_of(keys: &[&SigningKey]) -> JwkSet {
    let keys: Vec<Value> = keys.iter().map(|k| k.public_jwk().clone()).collect();
    serde_json::from_value(json!({ "keys": keys })).unwrap()
}

fn config() -> IssuerConfig {
    IssuerConfig::new(TokenProfile::Rfc9068).with_resource_server("MyService", ["weather_read"])
}

/// Claims of a good assertion for `SIGNER` to `issuer`.
fn claims(issuer: &IssuerHandle) -> Value {
    json!({
        "iss": SIGNER,
        "sub": SIGNER,
        "aud": issuer.token_endpoint(),
        "iat": now(),
        "exp": now() + 60,
        "jti": unique_jti(),
    })
}

fn sign(key: &SigningKey, claims: &Value) -> String {
    let header = json!({"alg": key.alg().as_str(), "kid": key.kid(), "typ": "JWT"});
    key.sign_json(&header, claims).unwrap()
}

async fn post(issuer: &IssuerHandle, form: &[(&str, &str)]) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(issuer.token_endpoint())
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn post_assertion(issuer: &IssuerHandle, assertion: &str) -> (u16, Value) {
    post(
        issuer,
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE_JWT_BEARER),
            ("client_assertion", assertion),
        ],
    )
    .await
}

/// Asserts a 401 invalid_client whose description contains `needle`.
fn assert_refused(answer: &(u16, Value), needle: &str) {
    assert_eq!(answer.0, 401, "{answer:?}");
    assert_eq!(answer.1["error"], "invalid_client", "{answer:?}");
    let description = answer.1["error_description"].as_str().unwrap();
    assert!(
        description.contains(needle),
        "{description:?} should say {needle:?}"
    );
}

async fn signing_issuer() -> (IssuerHandle, SigningKey) {
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let client = ClientConfig::without_secret(SIGNER, [SCOPE]).with_jwks(jwks_of(&[&key]));
    let issuer = mock_issuer::start(config().with_client(client))
        .await
        .unwrap();
    (issuer, key)
}

#[tokio::test]
async fn private_key_jwt_gets_a_token_and_is_counted() {
    let (issuer, key) = signing_issuer().await;
    let (status, body) = post_assertion(&issuer, &sign(&key, &claims(&issuer))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    // The issuer identifier is an accepted audience too, as an array member.
    let mut by_issuer = claims(&issuer);
    by_issuer["aud"] = json!(["someone-else", issuer.issuer()]);
    let (status, body) = post_assertion(&issuer, &sign(&key, &by_issuer)).await;
    assert_eq!(status, 200, "{body}");
    let stats = issuer.stats();
    assert_eq!(stats.tokens_issued_assertion, 2);
    assert_eq!(stats.tokens_issued_federated, 0);
    assert_eq!(stats.tokens_issued[SIGNER], 2);
    assert_eq!(stats.client_assertions_refused, 0);
}

#[tokio::test]
async fn rsa_keys_and_a_matching_client_id_work_too() {
    let key = SigningKey::generate(Algorithm::RS256).unwrap();
    let client = ClientConfig::without_secret(SIGNER, [SCOPE]).with_jwks(jwks_of(&[&key]));
    let issuer = mock_issuer::start(config().with_client(client))
        .await
        .unwrap();
    // No kid in the header: every registered key that fits RS256 is tried.
    let token = key
        .sign_json(&json!({"alg": "RS256"}), &claims(&issuer))
        .unwrap();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", SIGNER),
        ("client_assertion_type", ASSERTION_TYPE_JWT_BEARER),
        ("client_assertion", token.as_str()),
    ];
    let (status, body) = post(&issuer, &form).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn bad_private_key_jwt_assertions_are_refused_with_the_reason() {
    let (issuer, key) = signing_issuer().await;
    let mut wrong_aud = claims(&issuer);
    wrong_aud["aud"] = json!("https://somewhere-else.example");
    assert_refused(
        &post_assertion(&issuer, &sign(&key, &wrong_aud)).await,
        "aud",
    );

    let mut expired = claims(&issuer);
    expired["exp"] = json!(now() - 120);
    assert_refused(
        &post_assertion(&issuer, &sign(&key, &expired)).await,
        "expired",
    );

    let mut no_exp = claims(&issuer);
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_refused(
        &post_assertion(&issuer, &sign(&key, &no_exp)).await,
        "exp is required",
    );

    let mut too_long = claims(&issuer);
    too_long["exp"] = json!(now() + 24 * 3600);
    assert_refused(
        &post_assertion(&issuer, &sign(&key, &too_long)).await,
        "in the future",
    );

    let mut future_iat = claims(&issuer);
    future_iat["iat"] = json!(now() + 600);
    assert_refused(
        &post_assertion(&issuer, &sign(&key, &future_iat)).await,
        "iat is",
    );

    let mut no_jti = claims(&issuer);
    no_jti.as_object_mut().unwrap().remove("jti");
    assert_refused(
        &post_assertion(&issuer, &sign(&key, &no_jti)).await,
        "jti is required",
    );

    let mut wrong_sub = claims(&issuer);
    wrong_sub["sub"] = json!("someone");
    assert_refused(
        &post_assertion(&issuer, &sign(&key, &wrong_sub)).await,
        "sub",
    );

    // Signed by a key the client never registered: same kid, other material, and no kid.
    let stranger = SigningKey::generate(Algorithm::ES256).unwrap();
    let forged = stranger
        .sign_json(&json!({"alg": "ES256", "kid": key.kid()}), &claims(&issuer))
        .unwrap();
    assert_refused(&post_assertion(&issuer, &forged).await, "signature");
    let forged = stranger
        .sign_json(&json!({"alg": "ES256"}), &claims(&issuer))
        .unwrap();
    assert_refused(&post_assertion(&issuer, &forged).await, "signature");
    let unknown_kid = sign(&stranger, &claims(&issuer));
    assert_refused(&post_assertion(&issuer, &unknown_kid).await, "kid");

    // HS256, keyed with the public key as a confused verifier would: refused by alg.
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims(&issuer),
        &jsonwebtoken::EncodingKey::from_secret(&key.public_key_der().unwrap()).unwrap(),
    )
    .unwrap();
    assert_refused(
        &post_assertion(&issuer, &hs).await,
        "alg HS256 is not allowed",
    );

    let mut unknown = claims(&issuer);
    unknown["iss"] = json!("nobody");
    unknown["sub"] = json!("nobody");
    assert_refused(
        &post_assertion(&issuer, &sign(&key, &unknown)).await,
        "unknown client",
    );

    assert_refused(
        &post_assertion(&issuer, "not.a-jwt").await,
        "client assertion",
    );

    let stats = issuer.stats();
    assert_eq!(stats.client_assertions_refused, 13);
    assert_eq!(stats.tokens_issued_total(), 0);
}

#[tokio::test]
async fn a_reused_jti_is_refused() {
    let (issuer, key) = signing_issuer().await;
    let assertion = sign(&key, &claims(&issuer));
    assert_eq!(post_assertion(&issuer, &assertion).await.0, 200);
    assert_refused(&post_assertion(&issuer, &assertion).await, "already used");
    assert_eq!(issuer.stats().client_assertions_refused, 1);
}

#[tokio::test]
async fn mixing_methods_or_halves_is_an_invalid_request() {
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let client = ClientConfig::new(SIGNER, "a-long-secret", [SCOPE]).with_jwks(jwks_of(&[&key]));
    let issuer = mock_issuer::start(config().with_client(client))
        .await
        .unwrap();
    let assertion = sign(&key, &claims(&issuer));
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", SIGNER),
        ("client_secret", "a-long-secret"),
        ("client_assertion_type", ASSERTION_TYPE_JWT_BEARER),
        ("client_assertion", assertion.as_str()),
    ];
    let (status, body) = post(&issuer, &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, body) = post(
        &issuer,
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion", assertion.as_str()),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    // The secret still works on its own.
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", SIGNER),
        ("client_secret", "a-long-secret"),
    ];
    assert_eq!(post(&issuer, &form).await.0, 200);
    // The same assertion was never consumed by the refused requests.
    assert_eq!(post_assertion(&issuer, &assertion).await.0, 200);
}

#[tokio::test]
async fn a_client_without_a_secret_cannot_use_one() {
    let (issuer, _key) = signing_issuer().await;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", SIGNER),
        ("client_secret", "unknown-client-dummy-secret"),
    ];
    let answer = post(&issuer, &form).await;
    assert_refused(&answer, "unknown client or wrong secret");
}

async fn platform_and_issuer(single_use: bool) -> (IssuerHandle, IssuerHandle) {
    let platform = mock_issuer::start(config()).await.unwrap();
    let mut trust = FederatedTrust::new(platform.issuer(), platform.jwks_uri(), SUBJECT);
    trust.single_use = single_use;
    let client = ClientConfig::without_secret(WORKLOAD, [SCOPE]).with_federated(trust);
    let issuer = mock_issuer::start(config().with_client(client))
        .await
        .unwrap();
    (platform, issuer)
}

fn platform_claims(platform: &IssuerHandle, issuer: &IssuerHandle) -> Value {
    json!({
        "iss": platform.issuer(),
        "sub": SUBJECT,
        "aud": [issuer.issuer()],
        "iat": now(),
        "exp": now() + 3600,
        "jti": unique_jti(),
    })
}

async fn post_federated(issuer: &IssuerHandle, assertion: &str) -> (u16, Value) {
    post(
        issuer,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", WORKLOAD),
            ("client_assertion_type", ASSERTION_TYPE_JWT_BEARER),
            ("client_assertion", assertion),
        ],
    )
    .await
}

#[tokio::test]
async fn a_platform_token_authenticates_again_and_again() {
    let (platform, issuer) = platform_and_issuer(false).await;
    let token = platform
        .sign_claims(&platform_claims(&platform, &issuer))
        .unwrap();
    for _ in 0..2 {
        let (status, body) = post_federated(&issuer, &token).await;
        assert_eq!(status, 200, "{body}");
    }
    let stats = issuer.stats();
    assert_eq!(stats.tokens_issued_federated, 2);
    assert_eq!(stats.tokens_issued_assertion, 2);
    // The platform's keys were fetched once and cached.
    assert_eq!(platform.stats().jwks_fetches, 1);
}

#[tokio::test]
async fn single_use_federated_tokens_are_refused_the_second_time() {
    let (platform, issuer) = platform_and_issuer(true).await;
    let token = platform
        .sign_claims(&platform_claims(&platform, &issuer))
        .unwrap();
    assert_eq!(post_federated(&issuer, &token).await.0, 200);
    assert_refused(&post_federated(&issuer, &token).await, "already used");
}

#[tokio::test]
async fn wrong_platform_claims_are_refused() {
    let (platform, issuer) = platform_and_issuer(false).await;
    let mut wrong_sub = platform_claims(&platform, &issuer);
    wrong_sub["sub"] = json!("system:serviceaccount:ns:intruder");
    let token = platform.sign_claims(&wrong_sub).unwrap();
    assert_refused(&post_federated(&issuer, &token).await, "federated subject");

    let mut wrong_iss = platform_claims(&platform, &issuer);
    wrong_iss["iss"] = json!("https://other-platform.example");
    let token = platform.sign_claims(&wrong_iss).unwrap();
    assert_refused(&post_federated(&issuer, &token).await, "federated issuer");

    let mut wrong_aud = platform_claims(&platform, &issuer);
    wrong_aud["aud"] = json!("https://somewhere-else.example");
    let token = platform.sign_claims(&wrong_aud).unwrap();
    assert_refused(&post_federated(&issuer, &token).await, "aud");

    let mut expired = platform_claims(&platform, &issuer);
    expired["exp"] = json!(now() - 60);
    let token = platform.sign_claims(&expired).unwrap();
    assert_refused(&post_federated(&issuer, &token).await, "expired");

    // Right claims, signed by another issuer's key under the platform's kid.
    let impostor = mock_issuer::start(config()).await.unwrap();
    let header = json!({"alg": "RS256", "kid": platform.current_kid()});
    let token = impostor
        .sign(&header, &platform_claims(&platform, &issuer))
        .unwrap();
    assert_refused(&post_federated(&issuer, &token).await, "signature");

    // The federated client has no keys of its own: without client_id it is not found.
    let token = platform
        .sign_claims(&platform_claims(&platform, &issuer))
        .unwrap();
    assert_refused(&post_assertion(&issuer, &token).await, "client_id");

    // A SPIFFE assertion type the trust does not name.
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", WORKLOAD),
        ("client_assertion_type", ASSERTION_TYPE_JWT_SPIFFE),
        ("client_assertion", token.as_str()),
    ];
    assert_refused(&post(&issuer, &form).await, "client_assertion_type");
    assert_eq!(issuer.stats().client_assertions_refused, 7);
}

#[tokio::test]
async fn an_unreachable_platform_jwks_is_a_refusal_not_a_hang() {
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let platform = mock_issuer::start(config()).await.unwrap();
    let trust = FederatedTrust::new(
        platform.issuer(),
        format!("http://127.0.0.1:{port}/jwks"),
        SUBJECT,
    );
    let client = ClientConfig::without_secret(WORKLOAD, [SCOPE]).with_federated(trust);
    let issuer = mock_issuer::start(config().with_client(client))
        .await
        .unwrap();
    let token = platform
        .sign_claims(&platform_claims(&platform, &issuer))
        .unwrap();
    assert_refused(&post_federated(&issuer, &token).await, "cannot fetch");
}

#[tokio::test]
async fn discovery_announces_private_key_jwt() {
    let (issuer, _key) = signing_issuer().await;
    let doc: Value = reqwest::get(issuer.discovery_url())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let methods = doc["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    assert!(methods.contains(&json!("private_key_jwt")), "{doc}");
    assert!(methods.contains(&json!("client_secret_basic")), "{doc}");
    let algs = doc["token_endpoint_auth_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(algs.contains(&json!("ES256")), "{doc}");
    assert!(
        !algs.iter().any(|a| a.as_str().unwrap().starts_with("HS")),
        "{doc}"
    );
}
