//! DPoP at the token endpoint (RFC 9449): bound tokens, refused proofs, and nonces.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use mock_issuer::keys::SigningKey;
use mock_issuer::{Algorithm, ClientConfig, IssuerConfig, IssuerHandle, TokenProfile};
use serde_json::{Value, json};

const SCOPE: &str = "MyService/weather_read";
const CLIENT: &str = "dpop-client";
const SECRET: &str = "dpop-client-secret";
const BOUND: &str = "bound-client";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn unique_jti() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "proof-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn config() -> IssuerConfig {
    IssuerConfig::new(TokenProfile::Rfc9068)
        .with_resource_server("MyService", ["weather_read"])
        .with_client(ClientConfig::new(CLIENT, SECRET, [SCOPE]))
        .with_client(ClientConfig::new(BOUND, SECRET, [SCOPE]).with_dpop_bound_access_tokens(true))
}

/// The public JWK as a DPoP client sends it: the key members only.
fn proof_jwk(key: &SigningKey) -> Value {
    let mut jwk = key.public_jwk().clone();
    for member in ["kid", "alg", "use"] {
        jwk.as_object_mut().unwrap().remove(member);
    }
    jwk
}

fn proof_header(key: &SigningKey) -> Value {
    json!({"typ": "dpop+jwt", "alg": key.alg().as_str(), "jwk": proof_jwk(key)})
}

fn proof_claims(issuer: &IssuerHandle) -> Value {
    json!({
        "htm": "POST",
        "htu": issuer.token_endpoint(),
        "iat": now(),
        "jti": unique_jti(),
    })
}

fn proof(key: &SigningKey, issuer: &IssuerHandle) -> String {
    key.sign_json(&proof_header(key), &proof_claims(issuer))
        .unwrap()
}

struct Answer {
    status: u16,
    nonce: Option<String>,
    body: Value,
}

async fn post_to(url: &str, client: &str, proofs: &[&str]) -> Answer {
    let mut request = reqwest::Client::new()
        .post(url)
        .basic_auth(client, Some(SECRET))
        .form(&[("grant_type", "client_credentials")]);
    for proof in proofs {
        request = request.header("DPoP", *proof);
    }
    let response = request.send().await.unwrap();
    Answer {
        status: response.status().as_u16(),
        nonce: response
            .headers()
            .get("dpop-nonce")
            .map(|v| v.to_str().unwrap().to_owned()),
        body: response.json().await.unwrap(),
    }
}

async fn post(issuer: &IssuerHandle, proofs: &[&str]) -> Answer {
    post_to(&issuer.token_endpoint(), CLIENT, proofs).await
}

fn payload(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64URL.decode(part).unwrap()).unwrap()
}

/// Asserts a 400 with `code` whose description contains `needle`.
fn assert_refused(answer: &Answer, code: &str, needle: &str) {
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.body["error"], code, "{}", answer.body);
    let description = answer.body["error_description"].as_str().unwrap();
    assert!(
        description.contains(needle),
        "{description:?} should say {needle:?}"
    );
}

#[tokio::test]
async fn a_proof_binds_the_token_to_its_key() {
    let issuer = mock_issuer::start(config()).await.unwrap();
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let answer = post(&issuer, &[&proof(&key, &issuer)]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["token_type"], "DPoP");
    assert_eq!(answer.nonce, None, "no nonce unless nonces are required");
    let claims = payload(answer.body["access_token"].as_str().unwrap());
    // Two independent thumbprints: the issuer's key id (RFC 7638) and jsonwebtoken's.
    let jwk: Jwk = serde_json::from_value(proof_jwk(&key)).unwrap();
    let expected = jwk.thumbprint(ThumbprintHash::SHA256).unwrap();
    assert_eq!(expected, key.kid());
    assert_eq!(claims["cnf"], json!({ "jkt": expected }));

    // Without a proof the same client gets a plain bearer token.
    let answer = post(&issuer, &[]).await;
    assert_eq!(answer.body["token_type"], "Bearer");
    assert!(payload(answer.body["access_token"].as_str().unwrap())["cnf"].is_null());

    // An RSA proof key, sent to the /connect/token alias with a query in htu.
    let rsa = SigningKey::generate(Algorithm::RS256).unwrap();
    let alias = issuer
        .token_endpoint()
        .replace("/oauth2/token", "/connect/token");
    let mut claims = proof_claims(&issuer);
    claims["htu"] = json!(format!("{alias}?ignored=1"));
    let rsa_proof = rsa.sign_json(&proof_header(&rsa), &claims).unwrap();
    let answer = post_to(&alias, CLIENT, &[&rsa_proof]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let claims = payload(answer.body["access_token"].as_str().unwrap());
    assert_eq!(claims["cnf"]["jkt"], rsa.kid());

    let stats = issuer.stats();
    assert_eq!(stats.dpop_tokens_issued, 2);
    assert_eq!(stats.dpop_proofs_refused, 0);
}

#[tokio::test]
async fn bad_proofs_are_refused_with_the_reason() {
    let issuer = mock_issuer::start(config()).await.unwrap();
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let refused = |answer: Answer, needle: &str| {
        assert_refused(&answer, "invalid_dpop_proof", needle);
    };

    let replayed = proof(&key, &issuer);
    assert_eq!(post(&issuer, &[&replayed]).await.status, 200);
    refused(post(&issuer, &[&replayed]).await, "already used");

    let mut wrong_htu = proof_claims(&issuer);
    wrong_htu["htu"] = json!("https://elsewhere.example/oauth2/token");
    let token = key.sign_json(&proof_header(&key), &wrong_htu).unwrap();
    refused(post(&issuer, &[&token]).await, "htu");

    let mut wrong_htm = proof_claims(&issuer);
    wrong_htm["htm"] = json!("GET");
    let token = key.sign_json(&proof_header(&key), &wrong_htm).unwrap();
    refused(post(&issuer, &[&token]).await, "htm");

    let mut stale = proof_claims(&issuer);
    stale["iat"] = json!(now() - 600);
    let token = key.sign_json(&proof_header(&key), &stale).unwrap();
    refused(post(&issuer, &[&token]).await, "s old");

    let mut future = proof_claims(&issuer);
    future["iat"] = json!(now() + 600);
    let token = key.sign_json(&proof_header(&key), &future).unwrap();
    refused(post(&issuer, &[&token]).await, "in the future");

    // A time past u64 (capped at u64::MAX when read) is refused, not an overflow panic.
    let mut huge = proof_claims(&issuer);
    huge["iat"] = json!(1e300);
    let token = key.sign_json(&proof_header(&key), &huge).unwrap();
    refused(post(&issuer, &[&token]).await, "in the future");

    let mut no_jti = proof_claims(&issuer);
    no_jti.as_object_mut().unwrap().remove("jti");
    let token = key.sign_json(&proof_header(&key), &no_jti).unwrap();
    refused(post(&issuer, &[&token]).await, "jti is required");

    // A jwk with a private member (a made-up d: the check is on the member, not its value).
    let mut header = proof_header(&key);
    header["jwk"]["d"] = json!(B64URL.encode([7u8; 32]));
    let token = key.sign_json(&header, &proof_claims(&issuer)).unwrap();
    refused(post(&issuer, &[&token]).await, "private member \"d\"");

    let mut header = proof_header(&key);
    header["typ"] = json!("JWT");
    let token = key.sign_json(&header, &proof_claims(&issuer)).unwrap();
    refused(post(&issuer, &[&token]).await, "typ");

    // Signed by another key than the jwk in the header.
    let other = SigningKey::generate(Algorithm::ES256).unwrap();
    let token = other
        .sign_json(&proof_header(&key), &proof_claims(&issuer))
        .unwrap();
    refused(post(&issuer, &[&token]).await, "signature");

    // HS256 with a symmetric jwk.
    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.typ = Some("dpop+jwt".into());
    let token = jsonwebtoken::encode(
        &hs_header,
        &proof_claims(&issuer),
        &jsonwebtoken::EncodingKey::from_secret(b"a shared secret").unwrap(),
    )
    .unwrap();
    refused(post(&issuer, &[&token]).await, "alg HS256 is not allowed");

    let (a, b) = (proof(&key, &issuer), proof(&key, &issuer));
    refused(post(&issuer, &[&a, &b]).await, "more than one DPoP header");

    refused(post(&issuer, &["not-a-jws"]).await, "compact JWS");

    let stats = issuer.stats();
    assert_eq!(stats.dpop_proofs_refused, 13);
    assert_eq!(stats.dpop_tokens_issued, 1);
}

#[tokio::test]
async fn a_bound_client_must_send_a_proof() {
    let issuer = mock_issuer::start(config()).await.unwrap();
    let answer = post_to(&issuer.token_endpoint(), BOUND, &[]).await;
    assert_refused(&answer, "invalid_dpop_proof", "DPoP proof missing");
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let answer = post_to(&issuer.token_endpoint(), BOUND, &[&proof(&key, &issuer)]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["token_type"], "DPoP");
}

#[tokio::test]
async fn nonces_challenge_then_accept_and_rotate() {
    let issuer = mock_issuer::start(config()).await.unwrap();
    issuer.require_dpop_nonce(true);
    let key = SigningKey::generate(Algorithm::ES256).unwrap();

    let answer = post(&issuer, &[&proof(&key, &issuer)]).await;
    assert_refused(&answer, "use_dpop_nonce", "nonce");
    let nonce = answer
        .nonce
        .expect("a use_dpop_nonce answer carries DPoP-Nonce");
    assert_eq!(nonce, issuer.dpop_nonce());

    let mut claims = proof_claims(&issuer);
    claims["nonce"] = json!(nonce);
    let with_nonce = key.sign_json(&proof_header(&key), &claims).unwrap();
    let answer = post(&issuer, &[&with_nonce]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.nonce.as_deref(), Some(nonce.as_str()));

    let rotated = issuer.rotate_dpop_nonce();
    assert_ne!(rotated, nonce);
    let mut claims = proof_claims(&issuer);
    claims["nonce"] = json!(nonce);
    let old_nonce = key.sign_json(&proof_header(&key), &claims).unwrap();
    let answer = post(&issuer, &[&old_nonce]).await;
    assert_refused(&answer, "use_dpop_nonce", "not the current nonce");
    assert_eq!(answer.nonce.as_deref(), Some(rotated.as_str()));

    let stats = issuer.stats();
    assert_eq!(stats.dpop_nonce_challenges, 2);
    assert_eq!(stats.dpop_proofs_refused, 0);
    assert_eq!(stats.dpop_tokens_issued, 1);

    // Switched off, a proof without nonce is fine again and no nonce is sent.
    issuer.require_dpop_nonce(false);
    let answer = post(&issuer, &[&proof(&key, &issuer)]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.nonce, None);
}

#[tokio::test]
async fn nonces_can_be_required_from_the_config_and_are_exposed_to_browsers() {
    let mut config = config().with_dpop_nonce(true);
    config.cors_allowed_origins = vec!["http://127.0.0.1:7062".into()];
    let issuer = mock_issuer::start(config).await.unwrap();
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let response = reqwest::Client::new()
        .post(issuer.token_endpoint())
        .basic_auth(CLIENT, Some(SECRET))
        .header("Origin", "http://127.0.0.1:7062")
        .header("DPoP", proof(&key, &issuer))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let exposed = response
        .headers()
        .get("access-control-expose-headers")
        .map(|v| v.to_str().unwrap().to_ascii_lowercase());
    assert_eq!(exposed.as_deref(), Some("dpop-nonce"));
    assert!(response.headers().contains_key("dpop-nonce"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "use_dpop_nonce");
}

#[tokio::test]
async fn discovery_announces_dpop_algorithms() {
    let issuer = mock_issuer::start(config()).await.unwrap();
    let doc: Value = reqwest::get(issuer.discovery_url())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let algs = doc["dpop_signing_alg_values_supported"].as_array().unwrap();
    assert!(algs.contains(&json!("ES256")), "{doc}");
    assert!(algs.contains(&json!("RS256")), "{doc}");
    assert!(
        !algs.iter().any(|a| a.as_str().unwrap().starts_with("HS")),
        "{doc}"
    );
}
