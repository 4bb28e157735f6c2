//! "A key is used with exactly one algorithm" (RFC 8725 section 3.1): the kit's
//! `key-one-alg-*` cases against two small targets that verify signatures for real with
//! the kit issuer's JWKS. One takes the key by `kid` and the algorithm from the token's
//! header (any RSA algorithm: the classic slip), so it accepts a PS256 or RS384 signature
//! made with the key its JWK publishes for RS256; the other holds each key to its JWK's
//! `alg`. The first fails the cases, the second passes them; both pass `alg-ps256` and
//! `alg-rs384`, whose signatures are RS256 ones under another name and verify nowhere.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use conformance::{CASES, Kit, Profile, Settings, Severity, Target, Verdict};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

/// Verifies the bearer token's signature with the kit's JWKS (fetched per request) and
/// checks the scope `A/b`; nothing else. `honour_jwk_alg`: refuse a key whose JWK names
/// another algorithm than the header.
async fn answer(jwks_uri: String, honour_jwk_alg: bool, headers: HeaderMap) -> Response {
    let refuse = || {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")],
        )
            .into_response()
    };
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return refuse();
    };
    let Ok(head) = jsonwebtoken::decode_header(token) else {
        return refuse();
    };
    let rsa = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ];
    if !rsa.contains(&head.alg) {
        return refuse();
    }
    // The kit takes its JWKS down in its last case: no keys, no acceptance.
    let jwks = match reqwest::get(&jwks_uri).await {
        Ok(r) => r.json::<JwkSet>().await.ok(),
        Err(_) => None,
    };
    let Some(jwks) = jwks else {
        return refuse();
    };
    let Some(jwk) = head.kid.as_deref().and_then(|kid| jwks.find(kid)) else {
        return refuse();
    };
    if honour_jwk_alg
        && jwk
            .common
            .key_algorithm
            .is_some_and(|a| a != jsonwebtoken::jwk::KeyAlgorithm::from(head.alg))
    {
        return refuse();
    }
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(head.alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    match jsonwebtoken::decode::<Value>(token, &key, &validation) {
        Ok(data) if data.claims["scope"] == "A/b" => (StatusCode::OK, "[]").into_response(),
        _ => refuse(),
    }
}

async fn run(honour_jwk_alg: bool) -> Vec<(&'static str, Verdict)> {
    let settings = Settings::new(Profile::Rfc9068, "A/b", None).unwrap();
    let kit = Kit::start(settings, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let jwks_uri = kit.issuer().jwks_uri();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/weatherforecast", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/weatherforecast",
        axum::routing::get(move |headers: HeaderMap| {
            answer(jwks_uri.clone(), honour_jwk_alg, headers)
        }),
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let report = kit.run(&Target::new(&url).unwrap(), CASES).await;
    server.abort();
    report.outcomes.iter().map(|o| (o.id, o.verdict)).collect()
}

fn verdict(outcomes: &[(&'static str, Verdict)], id: &str) -> Verdict {
    outcomes
        .iter()
        .find(|(i, _)| *i == id)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("no case {id} ran"))
}

#[tokio::test]
async fn a_validator_that_takes_the_algorithm_from_the_header_fails_key_one_alg() {
    let outcomes = run(false).await;
    assert_eq!(verdict(&outcomes, "valid-token"), Verdict::Pass);
    for id in ["key-one-alg-ps256", "key-one-alg-rs384"] {
        assert_eq!(
            verdict(&outcomes, id),
            Verdict::Fail(Severity::Should),
            "{id}"
        );
    }
    // Renamed RS256 signatures verify under no other algorithm: not what these cases test.
    assert_eq!(verdict(&outcomes, "alg-ps256"), Verdict::Pass);
    assert_eq!(verdict(&outcomes, "alg-rs384"), Verdict::Pass);
}

#[tokio::test]
async fn a_validator_that_holds_the_key_to_its_jwk_alg_passes_key_one_alg() {
    let outcomes = run(true).await;
    assert_eq!(verdict(&outcomes, "valid-token"), Verdict::Pass);
    for id in ["key-one-alg-ps256", "key-one-alg-rs384"] {
        assert_eq!(verdict(&outcomes, id), Verdict::Pass, "{id}");
    }
}
