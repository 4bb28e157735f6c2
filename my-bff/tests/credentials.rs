//! Keys instead of secrets, end to end: my-bff on an ephemeral port gets its token from a
//! real mock issuer with `private_key_jwt`, with a platform-written assertion file that
//! rotates, or bound to a DPoP key, and calls the real my-service, which checks the DPoP
//! proof in each of its modes, with server nonces at both ends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use axum::http::StatusCode;
use base64::Engine as _;
use mock_issuer::{ClientConfig, FederatedTrust, IssuerHandle, TokenProfile as IssuerProfile};
use my_bff::config::BffConfig;
use my_service::weather::READ_SCOPE;
use serde_json::json;
use shared_auth::client::{ClientDefinition, ClientId, ClientSecret, SigningKey, TokenSource};
use shared_auth::server::DpopMode;
use test_support::*;

const PATH: &str = "/weatherforecast";
const KEY_CLIENT: &str = "my-bff-by-key";
const PLATFORM_CLIENT: &str = "my-bff-by-platform";
const SUBJECT: &str = "system:serviceaccount:shop:my-bff";

/// A new P-256 key written to `file` as PKCS#8 PEM; returns its public JWK set (kid `k1`).
fn write_key(file: &TempFile) -> jsonwebtoken::jwk::JwkSet {
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let der = pair.to_pkcs8v1().unwrap();
    let body = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    file.write(&format!(
        "-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"
    ));
    let key = SigningKey::from_file(&file.0, None).unwrap();
    let mut jwk = key.public_jwk().clone();
    jwk["kid"] = json!("k1");
    serde_json::from_value(json!({ "keys": [jwk] })).unwrap()
}

/// my-service with DPoP in `mode`, server nonces on or off.
async fn start_my_service(issuer: &IssuerHandle, mode: DpopMode, nonces: bool) -> TestServer {
    let (listener, base) = bind().await;
    let mut validator = validator_config_for(issuer.issuer(), cognito());
    validator.dpop.mode = mode;
    validator.dpop.nonces = nonces;
    validator.dpop.public_base_url = Some(base);
    let config = my_service::config::ServiceConfig {
        validator,
        openapi_token_url: None,
        transaction_tokens: None,
    };
    serve_listener(listener, my_service::build(&config).await.unwrap())
}

fn bff_config(client: ClientDefinition, my_service: &str) -> BffConfig {
    BffConfig {
        client,
        my_service_base_url: my_service.to_owned(),
        my_service_timeout: Duration::from_secs(5),
        token_cache: None,
        login: None,
    }
}

fn secret_client(issuer: &IssuerHandle) -> ClientDefinition {
    let mut client = ClientDefinition::new(
        TokenSource::Endpoint(issuer.token_endpoint()),
        ClientId::new(BFF_ID),
        ClientSecret::new(BFF_SECRET),
    );
    client.scope = shared_auth::ScopeSet::parse(READ_SCOPE).unwrap();
    client
}

async fn start_bff(config: &BffConfig) -> TestServer {
    serve(my_bff::build(config).await.unwrap()).await
}

async fn call(bff: &TestServer) -> StatusCode {
    http()
        .get(format!("{}{PATH}", bff.base))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn private_key_jwt_from_the_variables_end_to_end() {
    let key_file = TempFile::new("bff-key.pem");
    let jwks = write_key(&key_file);
    let issuer = mock_issuer::start(
        issuer_config(IssuerProfile::Cognito)
            .with_client(ClientConfig::without_secret(KEY_CLIENT, [READ_SCOPE]).with_jwks(jwks)),
    )
    .await
    .unwrap();
    let service = start_my_service(&issuer, DpopMode::Allowed, false).await;
    let bff = start_bff(&key_client_config(&issuer, &key_file, &service, &[])).await;
    for _ in 0..5 {
        assert_eq!(call(&bff).await, StatusCode::OK);
    }
    let stats = issuer.stats();
    assert_eq!(
        stats.tokens_issued_assertion, 1,
        "five calls, one assertion"
    );
    assert_eq!(stats.client_assertions_refused, 0);
}

/// my-bff's configuration from its command line, as an operator sets it: `KEY_CLIENT` with
/// `private_key_jwt` from `key_file` (kid `k1`), plus `extra` arguments.
fn key_client_config(
    issuer: &IssuerHandle,
    key_file: &TempFile,
    service: &TestServer,
    extra: &[&str],
) -> BffConfig {
    let endpoint = issuer.token_endpoint();
    let mut argv = vec![
        "my-bff",
        "--token-endpoint",
        &endpoint,
        "--client-id",
        KEY_CLIENT,
        "--client-assertion-key-file",
        key_file.path(),
        "--client-assertion-key-id",
        "k1",
        "--scope",
        READ_SCOPE,
        "--my-service-base-url",
        &service.base,
    ];
    argv.extend_from_slice(extra);
    <my_bff::config::Args as clap::Parser>::try_parse_from(argv)
        .unwrap()
        .into_config()
        .unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A platform token for `audience` with a fresh `jti`, as the platform writes it.
fn platform_token(platform: &IssuerHandle, audience: &str, serial: u32) -> String {
    platform
        .sign_claims(&json!({
            "iss": platform.issuer(),
            "sub": SUBJECT,
            "aud": audience,
            "iat": now(),
            "exp": now() + 600,
            "jti": format!("svc-token-{serial}"),
        }))
        .unwrap()
}

#[tokio::test]
async fn an_assertion_file_that_rotates_between_calls() {
    let platform = start_issuer(IssuerProfile::Cognito).await;
    // Single use: were the old assertion sent again after the rotation, the issuer would
    // refuse it, so a second token proves the file was read again.
    let mut trust = FederatedTrust::new(platform.issuer(), platform.jwks_uri(), SUBJECT);
    trust.single_use = true;
    let issuer = mock_issuer::start(issuer_config(IssuerProfile::Cognito).with_client(
        ClientConfig::without_secret(PLATFORM_CLIENT, [READ_SCOPE]).with_federated(trust),
    ))
    .await
    .unwrap();
    // One-second tokens (cached for half of that): the next token request comes quickly.
    issuer.set_token_lifetime(Duration::from_secs(1));
    let service = start_my_service(&issuer, DpopMode::Allowed, false).await;
    let file = TempFile::new("sa-token");
    file.write(&platform_token(&platform, issuer.issuer(), 1));
    let mut client = ClientDefinition::new(
        TokenSource::Endpoint(issuer.token_endpoint()),
        ClientId::new(PLATFORM_CLIENT),
        shared_auth::client::ClientCredential::assertion_file(&file.0),
    );
    client.scope = shared_auth::ScopeSet::parse(READ_SCOPE).unwrap();
    let bff = start_bff(&bff_config(client, &service.base)).await;
    assert_eq!(call(&bff).await, StatusCode::OK);
    assert_eq!(issuer.stats().tokens_issued_federated, 1);

    file.write(&platform_token(&platform, issuer.issuer(), 2));
    eventually(
        Duration::from_secs(10),
        "a token from the rotated file",
        || async {
            assert_eq!(call(&bff).await, StatusCode::OK);
            issuer.stats().tokens_issued_federated >= 2
        },
    )
    .await;
    assert_eq!(
        issuer.stats().client_assertions_refused,
        0,
        "the old assertion was never sent again"
    );
}

#[tokio::test]
async fn dpop_in_each_server_mode_with_nonces_at_both_ends() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    issuer.require_dpop_nonce(true);
    for (mode, expected) in [
        (DpopMode::Allowed, StatusCode::OK),
        (DpopMode::Required, StatusCode::OK),
        // A DPoP-bound token is not a bearer token: a service without DPoP refuses it,
        // and my-bff reports the downstream refusal.
        (DpopMode::Off, StatusCode::BAD_GATEWAY),
    ] {
        let service = start_my_service(&issuer, mode, true).await;
        let mut client = secret_client(&issuer);
        client.dpop = Some(SigningKey::generate_es256().unwrap());
        let bff = start_bff(&bff_config(client, &service.base)).await;
        for _ in 0..3 {
            assert_eq!(call(&bff).await, expected, "{mode:?}");
        }
    }
    let stats = issuer.stats();
    assert!(stats.dpop_tokens_issued >= 3, "{stats:?}");
    assert_eq!(stats.dpop_proofs_refused, 0, "{stats:?}");

    // A bearer-only BFF against a service that requires DPoP: refused, reported as 502.
    let service = start_my_service(&issuer, DpopMode::Required, false).await;
    let bff = start_bff(&bff_config(secret_client(&issuer), &service.base)).await;
    assert_eq!(call(&bff).await, StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn private_key_jwt_and_dpop_together() {
    let key_file = TempFile::new("bff-key-dpop.pem");
    let jwks = write_key(&key_file);
    let issuer = mock_issuer::start(
        issuer_config(IssuerProfile::Cognito).with_client(
            ClientConfig::without_secret(KEY_CLIENT, [READ_SCOPE])
                .with_jwks(jwks)
                .with_dpop_bound_access_tokens(true),
        ),
    )
    .await
    .unwrap();
    let service = start_my_service(&issuer, DpopMode::Required, true).await;
    let config = key_client_config(
        &issuer,
        &key_file,
        &service,
        &["--dpop-key-file", "generate"],
    );
    let bff = start_bff(&config).await;
    for _ in 0..3 {
        assert_eq!(call(&bff).await, StatusCode::OK);
    }
    let stats = issuer.stats();
    assert_eq!(
        (stats.tokens_issued_assertion, stats.dpop_tokens_issued),
        (1, 1)
    );
}
