//! `/introspect` (RFC 7662, RFC 9701 JWT answers), opaque tokens, revocation and the
//! introspection fault knobs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use jsonwebtoken::jwk::JwkSet;
use mock_issuer::keys::SigningKey;
use mock_issuer::{
    ASSERTION_TYPE_JWT_BEARER, Algorithm, ClientConfig, IssuerConfig, IssuerHandle, TokenProfile,
};
use serde_json::{Value, json};

const SCOPE: &str = "MyService/weather_read";
const OPAQUE: &str = "opaque-client";
const RS: &str = "my-service";
const SIGNER: &str = "signing-rs";
const SECRET: &str = "a-long-secret";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn issuer_with(signer: Option<&SigningKey>) -> IssuerHandle {
    let mut config = IssuerConfig::new(TokenProfile::Rfc9068)
        .with_resource_server("MyService", ["weather_read"])
        .with_client(ClientConfig::new(OPAQUE, SECRET, [SCOPE]).with_opaque_access_tokens(true))
        .with_client(ClientConfig::new("jwt-client", SECRET, [SCOPE]))
        .with_client(ClientConfig::new(RS, SECRET, Vec::<String>::new()));
    if let Some(key) = signer {
        let jwks: JwkSet =
            serde_json::from_value(json!({ "keys": [key.public_jwk().clone()] })).unwrap();
        config = config.with_client(
            ClientConfig::without_secret(SIGNER, Vec::<String>::new()).with_jwks(jwks),
        );
    }
    mock_issuer::start(config).await.unwrap()
}

async fn token_for(issuer: &IssuerHandle, client: &str) -> String {
    let body: Value = reqwest::Client::new()
        .post(issuer.token_endpoint())
        .basic_auth(client, Some(SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn introspect(issuer: &IssuerHandle, token: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(issuer.introspection_endpoint())
        .basic_auth(RS, Some(SECRET))
        .form(&[("token", token), ("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_opaque_token_is_active_with_its_claims_until_revoked() {
    let issuer = issuer_with(None).await;
    let token = token_for(&issuer, OPAQUE).await;
    assert_eq!(token.split('.').count(), 1, "not a JWS");
    assert!(token.len() >= 43, "at least 256 bits of randomness");
    assert_eq!(issuer.stats().opaque_tokens_issued, 1);

    let (status, answer) = introspect(&issuer, &token).await;
    assert_eq!(status, 200);
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["client_id"], OPAQUE);
    assert_eq!(answer["sub"], OPAQUE);
    assert_eq!(answer["scope"], SCOPE);
    assert_eq!(answer["iss"], issuer.issuer());
    assert_eq!(answer["token_type"], "Bearer");
    assert!(answer["exp"].as_u64().unwrap() > now());
    assert!(answer["iat"].as_u64().unwrap() <= now());

    issuer.revoke(&token);
    let (_, answer) = introspect(&issuer, &token).await;
    assert_eq!(answer, json!({"active": false}), "revoked: nothing else");
    assert_eq!(issuer.stats().introspection_requests, 2);
}

#[tokio::test]
async fn unknown_and_expired_tokens_are_inactive() {
    let issuer = issuer_with(None).await;
    let (status, answer) = introspect(&issuer, "no-such-token").await;
    assert_eq!((status, answer), (200, json!({"active": false})));
    // A JWT-shaped token not signed by the issuer.
    let forged = format!(
        "{}.{}.AAAA",
        B64URL.encode(r#"{"alg":"RS256","kid":"x"}"#),
        B64URL.encode(format!(
            r#"{{"iss":"{}","exp":9999999999}}"#,
            issuer.issuer()
        ))
    );
    assert_eq!(
        introspect(&issuer, &forged).await.1,
        json!({"active": false})
    );
    issuer.set_token_lifetime(Duration::from_secs(1));
    let token = issuer.issue_opaque_token(OPAQUE, &[SCOPE], None);
    // Poll until the token's exp has passed (whole seconds), with a deadline.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, answer) = introspect(&issuer, &token).await;
        if answer == json!({"active": false}) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_issuers_jwt_access_tokens_are_introspected_too() {
    let issuer = issuer_with(None).await;
    let jwt = token_for(&issuer, "jwt-client").await;
    assert_eq!(jwt.split('.').count(), 3);
    let (_, answer) = introspect(&issuer, &jwt).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["client_id"], "jwt-client");
    assert_eq!(answer["aud"], "MyService");
    issuer.revoke(&jwt);
    assert_eq!(introspect(&issuer, &jwt).await.1, json!({"active": false}));
}

#[tokio::test]
async fn the_caller_must_authenticate() {
    let issuer = issuer_with(None).await;
    let token = token_for(&issuer, OPAQUE).await;
    let http = reqwest::Client::new();
    let anonymous = http
        .post(issuer.introspection_endpoint())
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let wrong = http
        .post(issuer.introspection_endpoint())
        .basic_auth(RS, Some("wrong"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    // client_secret_post works as well as Basic.
    let post: Value = http
        .post(issuer.introspection_endpoint())
        .form(&[
            ("token", token.as_str()),
            ("client_id", RS),
            ("client_secret", SECRET),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(post["active"], true);
    // No token parameter: 400.
    let missing = http
        .post(issuer.introspection_endpoint())
        .basic_auth(RS, Some(SECRET))
        .form(&[("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
}

#[tokio::test]
async fn private_key_jwt_callers_are_accepted() {
    let key = SigningKey::generate(Algorithm::ES256).unwrap();
    let issuer = issuer_with(Some(&key)).await;
    let token = token_for(&issuer, OPAQUE).await;
    let claims = json!({
        "iss": SIGNER, "sub": SIGNER, "aud": issuer.issuer(),
        "iat": now(), "exp": now() + 60, "jti": "introspect-1",
    });
    let header = json!({"alg": "ES256", "kid": key.kid(), "typ": "JWT"});
    let assertion = key.sign_json(&header, &claims).unwrap();
    let answer: Value = reqwest::Client::new()
        .post(issuer.introspection_endpoint())
        .form(&[
            ("token", token.as_str()),
            ("client_assertion_type", ASSERTION_TYPE_JWT_BEARER),
            ("client_assertion", assertion.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["active"], true, "{answer}");
}

fn decode_jwt(jwt: &str) -> (Value, Value) {
    let mut parts = jwt.split('.');
    let header = serde_json::from_slice(&B64URL.decode(parts.next().unwrap()).unwrap()).unwrap();
    let claims = serde_json::from_slice(&B64URL.decode(parts.next().unwrap()).unwrap()).unwrap();
    (header, claims)
}

async fn introspect_jwt(issuer: &IssuerHandle, token: &str) -> (String, String) {
    let response = reqwest::Client::new()
        .post(issuer.introspection_endpoint())
        .basic_auth(RS, Some(SECRET))
        .header("accept", "application/token-introspection+jwt")
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    (content_type, response.text().await.unwrap())
}

#[tokio::test]
async fn rfc9701_answers_are_jwts_signed_with_the_current_key() {
    let issuer = issuer_with(None).await;
    let token = issuer.issue_opaque_token(OPAQUE, &[SCOPE], Some("thumbprint"));
    let (content_type, jwt) = introspect_jwt(&issuer, &token).await;
    assert_eq!(content_type, "application/token-introspection+jwt");
    let (header, claims) = decode_jwt(&jwt);
    assert_eq!(header["typ"], "token-introspection+jwt");
    assert_eq!(header["kid"], issuer.current_kid());
    assert_eq!(claims["iss"], issuer.issuer());
    assert_eq!(claims["aud"], RS);
    assert!(claims["iat"].as_u64().unwrap() <= now());
    let inner = &claims["token_introspection"];
    assert_eq!(inner["active"], true);
    assert_eq!(inner["cnf"]["jkt"], "thumbprint");
    assert_eq!(inner["token_type"], "DPoP");

    // The signature verifies with the published key.
    let jwk = issuer.current_key().public_jwk().clone();
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.set_audience(&[RS]);
    assert!(jsonwebtoken::decode::<Value>(&jwt, &key, &validation).is_ok());

    // With the foreign-key knob, the same kid but a key the JWKS does not hold.
    issuer.sign_introspection_with_foreign_key(true).unwrap();
    let (_, forged) = introspect_jwt(&issuer, &token).await;
    assert_eq!(decode_jwt(&forged).0["kid"], issuer.current_kid());
    assert!(jsonwebtoken::decode::<Value>(&forged, &key, &validation).is_err());
}

#[tokio::test]
async fn discovery_advertises_the_endpoints() {
    let issuer = issuer_with(None).await;
    let doc: Value = reqwest::get(issuer.discovery_url())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        doc["introspection_endpoint"],
        issuer.introspection_endpoint()
    );
    assert_eq!(doc["revocation_endpoint"], issuer.revocation_endpoint());
}

#[tokio::test]
async fn the_revocation_endpoint_revokes() {
    let issuer = issuer_with(None).await;
    let token = token_for(&issuer, OPAQUE).await;
    let status = reqwest::Client::new()
        .post(issuer.revocation_endpoint())
        .basic_auth(OPAQUE, Some(SECRET))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    assert_eq!(
        introspect(&issuer, &token).await.1,
        json!({"active": false})
    );
}

#[tokio::test]
async fn fault_knobs_fail_delay_and_take_the_endpoint_down() {
    let issuer = issuer_with(None).await;
    let token = token_for(&issuer, OPAQUE).await;
    issuer.fail_next_introspection_requests(2, 500);
    assert_eq!(introspect(&issuer, &token).await.0, 500);
    assert_eq!(introspect(&issuer, &token).await.0, 500);
    assert_eq!(introspect(&issuer, &token).await.0, 200);

    issuer.set_introspection_available(false);
    assert_eq!(introspect(&issuer, &token).await.0, 503);
    issuer.set_introspection_available(true);

    // Three requests held by the delay are in progress at once.
    issuer.set_introspection_delay(Duration::from_millis(300));
    let (a, b, c) = tokio::join!(
        introspect(&issuer, &token),
        introspect(&issuer, &token),
        introspect(&issuer, &token)
    );
    assert!([a.0, b.0, c.0].iter().all(|s| *s == 200));
    let stats = issuer.stats();
    assert_eq!(stats.introspection_requests, 7);
    assert_eq!(stats.introspection_max_in_flight, 3);
}
