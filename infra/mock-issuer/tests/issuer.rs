//! The mock issuer over HTTP: discovery, JWKS, the token endpoint's grant, client
//! authentication, RFC 6749 errors, both token profiles, key rotation, CORS, the fault
//! knobs and the guarded admin endpoints. Tokens are verified with `jsonwebtoken`,
//! independently of the issuer's signer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use base64::Engine as _;
use mock_issuer::{AdminToken, Algorithm, IssuerHandle, TokenProfile};
use reqwest::StatusCode;
use serde_json::Value;
use test_support::*;

/// POSTs a client-credentials request with HTTP Basic (RFC 6749 form-encoding of both parts).
async fn basic_request(
    endpoint: &str,
    id: &str,
    secret: &str,
    scope: Option<&str>,
) -> reqwest::Response {
    let enc = |s: &str| form_urlencoded_encode(s);
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    http()
        .post(endpoint)
        .basic_auth(enc(id), Some(enc(secret)))
        .form(&form)
        .send()
        .await
        .unwrap()
}

fn form_urlencoded_encode(s: &str) -> String {
    // application/x-www-form-urlencoded byte serialisation (space -> '+').
    reqwest::Url::parse_with_params("http://x/", [("v", s)])
        .unwrap()
        .query()
        .unwrap()
        .trim_start_matches("v=")
        .to_owned()
}

async fn raw_post(endpoint: &str, headers: &[(&str, &str)], body: &str) -> reqwest::Response {
    let mut req = http().post(endpoint).body(body.to_owned());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

fn basic_header(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

/// Asserts an RFC 6749 section 5.2 error: status, `error` code, description, no-store.
async fn assert_oauth_error(
    response: reqwest::Response,
    status: u16,
    code: &str,
) -> reqwest::header::HeaderMap {
    assert_eq!(response.status().as_u16(), status, "status for {code}");
    let headers = response.headers().clone();
    assert_eq!(headers["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    headers
}

#[tokio::test]
async fn discovery_document_lists_endpoints_methods_and_scopes() {
    let issuer = start_issuer(TokenProfile::Cognito).await;
    let doc: Value = get_json(issuer.discovery_url()).await;
    assert_eq!(doc["issuer"], issuer.issuer());
    assert_eq!(
        doc["token_endpoint"],
        format!("{}/oauth2/token", issuer.issuer())
    );
    assert_eq!(
        doc["jwks_uri"],
        format!("{}/.well-known/jwks.json", issuer.issuer())
    );
    assert_eq!(
        doc["grant_types_supported"],
        serde_json::json!([
            "client_credentials",
            "authorization_code",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:token-exchange"
        ])
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        serde_json::json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt"
        ])
    );
    assert_eq!(
        doc["token_endpoint_auth_signing_alg_values_supported"],
        serde_json::json!(["RS256", "PS256", "ES256", "EdDSA"])
    );
    assert!(
        doc["dpop_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&"ES256".into())
    );
    // The resource servers' scopes, then OpenID Connect's (see tests/authorization_code.rs).
    assert_eq!(
        doc["scopes_supported"],
        serde_json::json!([READ, WRITE, "openid", "profile", "email", "offline_access"])
    );
    assert_eq!(issuer.stats().discovery_fetches, 1);
}

#[tokio::test]
async fn issued_tokens_verify_against_the_jwks_for_both_algorithms() {
    for alg in [Algorithm::RS256, Algorithm::ES256] {
        let mut config = issuer_config(TokenProfile::Cognito);
        config.algorithm = alg;
        let issuer = mock_issuer::start(config).await.unwrap();
        let response = basic_request(&issuer.token_endpoint(), BFF_ID, BFF_SECRET, None).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 3600);
        let token = body["access_token"].as_str().unwrap();
        let keys = jwks(&issuer).await;
        assert_eq!(keys.keys.len(), 1);
        let claims = verify(token, &keys, issuer.issuer()).unwrap();
        assert_eq!(claims["client_id"], BFF_ID);
        assert_eq!(decode_part(token, 0)["alg"], alg.as_str());
        // A flipped signature byte must not verify: the check above is not vacuous.
        let mut tampered = token.to_owned();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        assert!(verify(&tampered, &keys, issuer.issuer()).is_err());
        assert_eq!(issuer.stats().jwks_fetches, 1);
    }
}

#[tokio::test]
async fn both_client_authentication_methods_work() {
    let issuer = start_issuer(TokenProfile::Cognito).await;
    let endpoint = issuer.token_endpoint();
    // client_secret_basic, with id and secret that need form-urlencoding.
    let response = basic_request(&endpoint, ODD_ID, ODD_SECRET, Some(READ)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let token: Value = response.json().await.unwrap();
    let claims = decode_part(token["access_token"].as_str().unwrap(), 1);
    assert_eq!(claims["client_id"], ODD_ID);
    // client_secret_post.
    let response = http()
        .post(&endpoint)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", ODD_ID),
            ("client_secret", ODD_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // The IdentityServer path serves the same endpoint.
    let alias = format!("{}/connect/token", issuer.issuer());
    let response = basic_request(&alias, BFF_ID, BFF_SECRET, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(issuer.stats().tokens_issued[ODD_ID], 2);
    assert_eq!(issuer.stats().tokens_issued[BFF_ID], 1);
}

#[tokio::test]
async fn every_rfc6749_error_has_its_code_status_and_no_store() {
    let issuer = start_issuer(TokenProfile::Cognito).await;
    let ep = issuer.token_endpoint();
    let good_basic = basic_header(BFF_ID, BFF_SECRET);
    let wrong_basic = basic_header(BFF_ID, "wrong-secret");

    // invalid_request: no grant_type; both auth methods; repeated parameter; not a form;
    // client_secret without client_id.
    let r = raw_post(&ep, &[FORM, ("authorization", &good_basic)], "scope=x").await;
    assert_oauth_error(r, 400, "invalid_request").await;
    let body =
        format!("grant_type=client_credentials&client_id={BFF_ID}&client_secret={BFF_SECRET}");
    let r = raw_post(&ep, &[FORM, ("authorization", &good_basic)], &body).await;
    assert_oauth_error(r, 400, "invalid_request").await;
    let r = raw_post(
        &ep,
        &[FORM, ("authorization", &good_basic)],
        "grant_type=client_credentials&scope=a&scope=b",
    )
    .await;
    assert_oauth_error(r, 400, "invalid_request").await;
    let r = raw_post(
        &ep,
        &[
            ("content-type", "application/json"),
            ("authorization", &good_basic),
        ],
        r#"{"grant_type":"client_credentials"}"#,
    )
    .await;
    assert_oauth_error(r, 400, "invalid_request").await;
    let r = raw_post(
        &ep,
        &[FORM],
        "grant_type=client_credentials&client_secret=x",
    )
    .await;
    assert_oauth_error(r, 400, "invalid_request").await;

    // invalid_client: wrong secret over Basic -> 401 with a Basic challenge.
    let r = raw_post(
        &ep,
        &[FORM, ("authorization", &wrong_basic)],
        "grant_type=client_credentials",
    )
    .await;
    let h = assert_oauth_error(r, 401, "invalid_client").await;
    assert!(
        h["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic ")
    );
    // wrong secret in the body -> 401, no Basic challenge.
    let r = raw_post(
        &ep,
        &[FORM],
        &format!("grant_type=client_credentials&client_id={BFF_ID}&client_secret=nope"),
    )
    .await;
    let h = assert_oauth_error(r, 401, "invalid_client").await;
    assert!(h.get("www-authenticate").is_none());
    // unknown client, no authentication at all, malformed Basic, another scheme.
    let unknown = basic_header("nobody", BFF_SECRET);
    let r = raw_post(
        &ep,
        &[FORM, ("authorization", &unknown)],
        "grant_type=client_credentials",
    )
    .await;
    assert_oauth_error(r, 401, "invalid_client").await;
    let r = raw_post(
        &ep,
        &[FORM],
        &format!("grant_type=client_credentials&client_id={BFF_ID}"),
    )
    .await;
    assert_oauth_error(r, 401, "invalid_client").await;
    let r = raw_post(
        &ep,
        &[FORM, ("authorization", "Basic !!!")],
        "grant_type=client_credentials",
    )
    .await;
    assert_oauth_error(r, 401, "invalid_client").await;
    let r = raw_post(
        &ep,
        &[FORM, ("authorization", "Bearer abc")],
        "grant_type=client_credentials",
    )
    .await;
    assert_oauth_error(r, 401, "invalid_client").await;

    // unauthorized_client: valid client that may not use client credentials.
    let r = basic_request(&ep, NO_CC_ID, NO_CC_SECRET, None).await;
    assert_oauth_error(r, 400, "unauthorized_client").await;

    // unsupported_grant_type.
    let r = raw_post(
        &ep,
        &[FORM, ("authorization", &good_basic)],
        "grant_type=password",
    )
    .await;
    assert_oauth_error(r, 400, "unsupported_grant_type").await;

    // invalid_scope: a scope the client may not have, and one nobody defines.
    let r = basic_request(&ep, BFF_ID, BFF_SECRET, Some(WRITE)).await;
    assert_oauth_error(r, 400, "invalid_scope").await;
    let r = basic_request(&ep, BFF_ID, BFF_SECRET, Some("Other/thing")).await;
    assert_oauth_error(r, 400, "invalid_scope").await;

    let stats = issuer.stats();
    assert_eq!(stats.token_requests, 15);
    assert_eq!(stats.token_errors, 15);
    assert_eq!(stats.tokens_issued_total(), 0);
}

#[tokio::test]
async fn scope_defaults_to_all_allowed_and_is_narrowed_on_request() {
    let issuer = start_issuer(TokenProfile::Cognito).await;
    let ep = issuer.token_endpoint();
    let scope_of = |body: Value| {
        let claims = decode_part(body["access_token"].as_str().unwrap(), 1);
        assert_eq!(claims["scope"], body["scope"]);
        claims["scope"].as_str().unwrap().to_owned()
    };
    let all = basic_request(&ep, ADMIN_ID, ADMIN_SECRET, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(scope_of(all), format!("{READ} {WRITE}"));
    let one = basic_request(&ep, ADMIN_ID, ADMIN_SECRET, Some(WRITE))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(scope_of(one), WRITE);
}

#[tokio::test]
async fn cognito_profile_has_the_exact_cognito_header_and_claims() {
    let issuer = start_issuer(TokenProfile::Cognito).await;
    let body: Value = basic_request(&issuer.token_endpoint(), BFF_ID, BFF_SECRET, None)
        .await
        .json()
        .await
        .unwrap();
    let token = body["access_token"].as_str().unwrap();
    let header = decode_part(token, 0);
    let keys: BTreeSet<&str> = header
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, BTreeSet::from(["alg", "kid"]));
    assert_eq!(header["kid"], issuer.current_kid());
    let claims = verify(token, &jwks(&issuer).await, issuer.issuer()).unwrap();
    let names: BTreeSet<&str> = claims
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "sub",
            "token_use",
            "scope",
            "auth_time",
            "iss",
            "exp",
            "iat",
            "version",
            "jti",
            "client_id"
        ])
    );
    assert_eq!(claims["sub"], BFF_ID);
    assert_eq!(claims["client_id"], BFF_ID);
    assert_eq!(claims["token_use"], "access");
    assert_eq!(claims["scope"], READ);
    assert_eq!(claims["version"], 2);
    assert_eq!(claims["iss"], issuer.issuer());
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    assert_eq!(exp - iat, 3600);
}

#[tokio::test]
async fn rfc9068_profile_has_typ_at_jwt_and_audience() {
    let issuer = start_issuer(TokenProfile::Rfc9068).await;
    let body: Value = basic_request(&issuer.token_endpoint(), BFF_ID, BFF_SECRET, None)
        .await
        .json()
        .await
        .unwrap();
    let token = body["access_token"].as_str().unwrap();
    let header = decode_part(token, 0);
    assert_eq!(header["typ"], "at+jwt");
    let keys: BTreeSet<&str> = header
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, BTreeSet::from(["alg", "kid", "typ"]));
    let claims = verify(token, &jwks(&issuer).await, issuer.issuer()).unwrap();
    let names: BTreeSet<&str> = claims
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "iss",
            "sub",
            "client_id",
            "aud",
            "scope",
            "jti",
            "iat",
            "exp"
        ])
    );
    assert_eq!(claims["aud"], "MyService");
    assert_eq!(claims["sub"], BFF_ID);
    assert_eq!(claims["scope"], READ);
}

#[tokio::test]
async fn rotation_publishes_both_keys_and_signs_with_the_new_one() {
    let issuer = start_issuer(TokenProfile::Cognito).await;
    let ep = issuer.token_endpoint();
    let old: Value = basic_request(&ep, BFF_ID, BFF_SECRET, None)
        .await
        .json()
        .await
        .unwrap();
    let old_token = old["access_token"].as_str().unwrap().to_owned();
    let old_kid = issuer.current_kid();
    let new_kid = issuer.rotate_key().unwrap();
    assert_ne!(old_kid, new_kid);
    let new: Value = basic_request(&ep, BFF_ID, BFF_SECRET, None)
        .await
        .json()
        .await
        .unwrap();
    let new_token = new["access_token"].as_str().unwrap();
    assert_eq!(decode_part(new_token, 0)["kid"], new_kid);
    let keys = jwks(&issuer).await;
    assert_eq!(keys.keys.len(), 2);
    assert!(
        verify(&old_token, &keys, issuer.issuer()).is_ok(),
        "old token still verifies"
    );
    assert!(verify(new_token, &keys, issuer.issuer()).is_ok());
    // Once the retired key is dropped, its tokens no longer verify.
    issuer.drop_previous_keys();
    let keys = jwks(&issuer).await;
    assert_eq!(keys.keys.len(), 1);
    assert!(verify(&old_token, &keys, issuer.issuer()).is_err());
}

#[tokio::test]
async fn fault_knobs_fail_delay_shorten_and_take_jwks_down() {
    let issuer = start_issuer(TokenProfile::Cognito).await;
    let ep = issuer.token_endpoint();

    issuer.fail_next_token_requests(2, 503);
    for _ in 0..2 {
        let r = basic_request(&ep, BFF_ID, BFF_SECRET, None).await;
        assert_oauth_error(r, 503, "temporarily_unavailable").await;
    }
    issuer.fail_next_token_requests(1, 500);
    assert_oauth_error(
        basic_request(&ep, BFF_ID, BFF_SECRET, None).await,
        500,
        "server_error",
    )
    .await;
    assert_eq!(
        basic_request(&ep, BFF_ID, BFF_SECRET, None).await.status(),
        StatusCode::OK
    );

    issuer.set_token_lifetime(Duration::from_secs(3));
    let body: Value = basic_request(&ep, BFF_ID, BFF_SECRET, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["expires_in"], 3);

    issuer.set_token_delay(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(
        basic_request(&ep, BFF_ID, BFF_SECRET, None).await.status(),
        StatusCode::OK
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    issuer.set_token_delay(Duration::ZERO);

    issuer.set_jwks_available(false);
    let r = http().get(issuer.jwks_uri()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    issuer.set_jwks_available(true);
    let r = http().get(issuer.jwks_uri()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let stats = issuer.stats();
    assert_eq!(stats.token_requests, 6);
    assert_eq!(stats.token_errors, 3);
    assert_eq!(stats.tokens_issued[BFF_ID], 3);
    assert_eq!(stats.jwks_fetches, 2);
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let mut config = issuer_config(TokenProfile::Cognito);
    config.cors_allowed_origins = vec!["http://127.0.0.1:7062".into()];
    let issuer = mock_issuer::start(config).await.unwrap();
    let preflight = |origin: &'static str| {
        http()
            .request(reqwest::Method::OPTIONS, issuer.token_endpoint())
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                // What Swagger UI's Authorize sends.
                "accept,authorization,content-type,x-requested-with",
            )
            .send()
    };
    let ok = preflight("http://127.0.0.1:7062").await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "http://127.0.0.1:7062"
    );
    let allowed = ok.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    for h in [
        "accept",
        "authorization",
        "content-type",
        "x-requested-with",
    ] {
        assert!(allowed.contains(h), "{h} not allowed: {allowed}");
    }
    let other = preflight("http://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn shutdown_closes_the_port() {
    let issuer = start_issuer(TokenProfile::Cognito).await;
    let addr = issuer.addr();
    issuer.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn jwks_down_serves_no_keys_and_still_counts_every_fetch() {
    let issuer = start_issuer(TokenProfile::Cognito).await;
    issuer.set_jwks_available(false);
    for _ in 0..3 {
        let r = http().get(issuer.jwks_uri()).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(r.json::<Value>().await.is_err(), "no key set while down");
    }
    assert_eq!(issuer.stats().jwks_fetches, 3);
    issuer.set_jwks_available(true);
    assert_eq!(jwks(&issuer).await.keys.len(), 1);
    assert_eq!(issuer.stats().jwks_fetches, 4);
}

#[tokio::test]
async fn discovery_down_answers_503_counts_fetches_and_leaves_the_rest_up() {
    let issuer = start_issuer(TokenProfile::Cognito).await;
    issuer.set_discovery_available(false);
    for _ in 0..2 {
        let r = http().get(issuer.discovery_url()).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(issuer.stats().discovery_fetches, 2);
    // Only discovery is down: keys and tokens are still served.
    assert_eq!(jwks(&issuer).await.keys.len(), 1);
    let r = basic_request(&issuer.token_endpoint(), BFF_ID, BFF_SECRET, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    issuer.set_discovery_available(true);
    let r = http().get(issuer.discovery_url()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["issuer"], issuer.issuer());
    assert_eq!(issuer.stats().discovery_fetches, 3);
}

#[tokio::test]
async fn publish_alg_false_omits_alg_from_every_jwk_and_tokens_still_verify() {
    let issuer = start_issuer(TokenProfile::Cognito).await;
    let ep = issuer.token_endpoint();
    let token = |body: Value| body["access_token"].as_str().unwrap().to_owned();
    let old = token(
        basic_request(&ep, BFF_ID, BFF_SECRET, None)
            .await
            .json()
            .await
            .unwrap(),
    );
    issuer.rotate_key().unwrap(); // two keys published: the knob covers each
    let raw_keys = || async {
        let set: Value = get_json(issuer.jwks_uri()).await;
        set["keys"].as_array().unwrap().clone()
    };
    let published = raw_keys().await;
    assert_eq!(published.len(), 2);
    assert!(published.iter().all(|k| k["alg"] == "RS256"));

    issuer.set_publish_alg(false);
    let without = raw_keys().await;
    assert_eq!(without.len(), 2);
    for (with, without) in published.iter().zip(&without) {
        assert!(without.get("alg").is_none(), "{without}");
        let mut expected = with.clone();
        expected.as_object_mut().unwrap().remove("alg");
        assert_eq!(&expected, without, "only alg is dropped");
    }
    // Tokens still verify against the alg-less set (the algorithm comes from the header).
    let new = token(
        basic_request(&ep, BFF_ID, BFF_SECRET, None)
            .await
            .json()
            .await
            .unwrap(),
    );
    let keys = jwks(&issuer).await;
    assert!(verify(&old, &keys, issuer.issuer()).is_ok());
    assert!(verify(&new, &keys, issuer.issuer()).is_ok());

    issuer.set_publish_alg(true);
    assert_eq!(raw_keys().await, published);
}

#[tokio::test]
async fn replaced_key_material_keeps_the_kid_and_only_the_new_material_is_published() {
    for alg in [Algorithm::RS256, Algorithm::ES256] {
        let mut config = issuer_config(TokenProfile::Cognito);
        config.algorithm = alg;
        let issuer = mock_issuer::start(config).await.unwrap();
        let ep = issuer.token_endpoint();
        let fetch = || async {
            let body: Value = basic_request(&ep, BFF_ID, BFF_SECRET, None)
                .await
                .json()
                .await
                .unwrap();
            body["access_token"].as_str().unwrap().to_owned()
        };
        let old_token = fetch().await;
        let kid = issuer.current_kid();
        let before: Value = get_json(issuer.jwks_uri()).await;

        issuer.replace_current_key_material().unwrap();
        assert_eq!(issuer.current_kid(), kid, "kid kept");
        let after: Value = get_json(issuer.jwks_uri()).await;
        let (before, after) = (&before["keys"][0], &after["keys"][0]);
        assert_eq!(after["kid"], kid.as_str());
        assert_eq!(after["alg"], alg.as_str(), "same algorithm");
        assert_eq!(after["kty"], before["kty"]);
        assert_ne!(after, before, "different material under the same kid");
        let keys = jwks(&issuer).await;
        assert_eq!(keys.keys.len(), 1, "the old material is not published");

        let new_token = fetch().await;
        assert_eq!(decode_part(&new_token, 0)["kid"], kid.as_str());
        assert!(verify(&new_token, &keys, issuer.issuer()).is_ok());
        assert!(
            verify(&old_token, &keys, issuer.issuer()).is_err(),
            "a token signed with the replaced material no longer verifies"
        );
    }
}

/// An issuer serving the admin endpoints, and their token.
async fn start_admin_issuer(config: mock_issuer::IssuerConfig) -> (IssuerHandle, AdminToken) {
    let token = AdminToken::generate().unwrap();
    let issuer = mock_issuer::start_with_admin(config, token.clone())
        .await
        .unwrap();
    (issuer, token)
}

fn admin_url(issuer: &IssuerHandle, path: &str) -> String {
    format!("http://{}{path}", issuer.addr())
}

/// Asserts an RFC 9457 refusal and returns the response headers.
async fn assert_problem(response: reqwest::Response, status: u16) -> reqwest::header::HeaderMap {
    assert_eq!(response.status().as_u16(), status);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status);
    headers
}

#[tokio::test]
async fn admin_endpoints_refuse_requests_without_the_admin_token() {
    let (issuer, token) = start_admin_issuer(issuer_config(TokenProfile::Cognito)).await;
    let kid = issuer.current_kid();
    let rotate = admin_url(&issuer, "/admin/rotate-key");
    // What any web page can send without a preflight: a CORS-simple POST.
    let r = http()
        .post(&rotate)
        .header("origin", "http://evil.example")
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    let h = assert_problem(r, 401).await;
    assert!(
        h["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer ")
    );
    // A wrong token, another scheme, and the token without its scheme.
    let wrong = AdminToken::generate().unwrap();
    for auth in [
        format!("Bearer {}", wrong.expose_secret()),
        format!("Basic {}", token.expose_secret()),
        token.expose_secret().to_owned(),
    ] {
        let r = http()
            .post(&rotate)
            .header("authorization", auth)
            .send()
            .await
            .unwrap();
        assert_problem(r, 401).await;
    }
    let r = http()
        .get(admin_url(&issuer, "/admin/stats"))
        .send()
        .await
        .unwrap();
    assert_problem(r, 401).await;
    assert_eq!(issuer.current_kid(), kid, "no rotation happened");
    // Routing is untouched by the guard: a wrong method is 405, an unknown path 404.
    let r = http()
        .get(&rotate)
        .bearer_auth(token.expose_secret())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let r = http()
        .get(admin_url(&issuer, "/admin/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn admin_endpoints_refuse_a_non_loopback_host_even_with_the_token() {
    let (issuer, token) = start_admin_issuer(issuer_config(TokenProfile::Cognito)).await;
    let kid = issuer.current_kid();
    let port = issuer.addr().port();
    // What a DNS-rebinding page sends: its own host name, resolved to 127.0.0.1.
    for host in [
        format!("evil.example:{port}"),
        "evil.example".to_owned(),
        format!("localhost.evil.example:{port}"),
        format!("127.0.0.1.evil.example:{port}"),
    ] {
        for (method, path) in [
            (reqwest::Method::POST, "/admin/rotate-key"),
            (reqwest::Method::GET, "/admin/stats"),
        ] {
            let r = http()
                .request(method, admin_url(&issuer, path))
                .header("host", &host)
                .bearer_auth(token.expose_secret())
                .send()
                .await
                .unwrap();
            assert_problem(r, 403).await;
        }
    }
    assert_eq!(issuer.current_kid(), kid, "no rotation happened");
}

#[tokio::test]
async fn admin_endpoints_work_with_the_token_on_a_loopback_host() {
    let (issuer, token) = start_admin_issuer(issuer_config(TokenProfile::Cognito)).await;
    let r = basic_request(&issuer.token_endpoint(), BFF_ID, BFF_SECRET, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let port = issuer.addr().port();
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ] {
        let r = http()
            .get(admin_url(&issuer, "/admin/stats"))
            .header("host", &host)
            .bearer_auth(token.expose_secret())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "Host: {host}");
        let stats: Value = r.json().await.unwrap();
        assert_eq!(stats["tokens_issued"][BFF_ID], 1);
    }
    let old_kid = issuer.current_kid();
    let r = http()
        .post(admin_url(&issuer, "/admin/rotate-key"))
        .bearer_auth(token.expose_secret())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let rotated: Value = r.json().await.unwrap();
    assert_eq!(rotated["kid"], issuer.current_kid());
    assert_ne!(issuer.current_kid(), old_kid);
    assert_eq!(jwks(&issuer).await.keys.len(), 2);
}

#[tokio::test]
async fn admin_endpoints_approve_no_cors_preflight_from_any_origin() {
    const ALLOWED: &str = "http://127.0.0.1:7062";
    let mut config = issuer_config(TokenProfile::Cognito);
    config.cors_allowed_origins = vec![ALLOWED.into()];
    let (issuer, _token) = start_admin_issuer(config).await;
    let preflight = |url: String, origin: &'static str| {
        http()
            .request(reqwest::Method::OPTIONS, url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    // The CORS layer is on: the configured origin may call the token endpoint...
    let r = preflight(issuer.token_endpoint(), ALLOWED).await.unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], ALLOWED);
    // ...but no origin, foreign or configured, may call an admin endpoint.
    for origin in ["http://evil.example", ALLOWED] {
        for path in ["/admin/rotate-key", "/admin/stats"] {
            let r = preflight(admin_url(&issuer, path), origin).await.unwrap();
            assert!(
                r.headers().get("access-control-allow-origin").is_none(),
                "{origin} approved for {path}"
            );
            assert!(r.headers().get("access-control-allow-headers").is_none());
        }
    }
}
