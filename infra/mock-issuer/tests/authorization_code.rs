//! Users logging in over HTTP: the authorization code flow with PKCE through the login
//! form, the code and refresh grants, refresh rotation and reuse detection, revocation,
//! RP-initiated logout, discovery and the fault knobs. The client is a plain HTTP client
//! that does not follow redirects, so every `Location` is looked at; tokens are verified
//! with `jsonwebtoken` against the published keys.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use mock_issuer::{ClientConfig, IssuerConfig, IssuerHandle, TokenProfile, UserConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::{READ, jwks, verify};

const CLIENT: &str = "web-bff";
const SECRET: &str = "web-bff-secret-0123456789";
const REDIRECT: &str = "http://127.0.0.1:9/bff/callback";
const POST_LOGOUT: &str = "http://127.0.0.1:9/";
const OTHER: &str = "other-web";
const OTHER_SECRET: &str = "other-web-secret-0123456789";
const OTHER_REDIRECT: &str = "http://127.0.0.1:9/other/callback";
const NO_REFRESH: &str = "no-refresh-web";
const NO_REFRESH_SECRET: &str = "no-refresh-secret-0123456789";
const NO_REFRESH_REDIRECT: &str = "http://127.0.0.1:9/nr/callback";
const ALICE_PASSWORD: &str = "alice-test-password";
/// RFC 7636 appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const SCOPE: &str = "openid profile email offline_access MyService/weather_read";

/// Changes to the standard authorization request: `None` removes the parameter.
type Changes<'a> = &'a [(&'a str, Option<&'a str>)];

fn config(profile: TokenProfile) -> IssuerConfig {
    IssuerConfig::new(profile)
        .with_resource_server("MyService", ["weather_read", "weather_write"])
        .with_client(
            ClientConfig::new(CLIENT, SECRET, [READ])
                .with_grant_types(["authorization_code", "refresh_token", "client_credentials"])
                .with_redirect_uris([REDIRECT])
                .with_post_logout_redirect_uris([POST_LOGOUT]),
        )
        .with_client(
            ClientConfig::new(OTHER, OTHER_SECRET, [READ])
                .with_grant_types(["authorization_code", "refresh_token"])
                .with_redirect_uris([OTHER_REDIRECT]),
        )
        .with_client(
            ClientConfig::new(NO_REFRESH, NO_REFRESH_SECRET, [READ])
                .with_grant_types(["authorization_code"])
                .with_redirect_uris([NO_REFRESH_REDIRECT]),
        )
        .with_user(
            UserConfig::new("alice", ALICE_PASSWORD)
                .with_sub("alice-sub")
                .with_name("Alice Example")
                .with_email("alice@example.test"),
        )
}

async fn start() -> IssuerHandle {
    mock_issuer::start(config(TokenProfile::Rfc9068))
        .await
        .unwrap()
}

/// A client that shows redirects instead of following them.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The authorization URL for `client` with the standard parameters, `changes` applied
/// (a value of `None` removes the parameter).
fn authorize_url(
    issuer: &IssuerHandle,
    client: &str,
    redirect: &str,
    changes: Changes<'_>,
) -> String {
    let mut params: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", redirect),
        ("scope", SCOPE),
        ("state", "state-123"),
        ("nonce", "nonce-456"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    for (name, value) in changes {
        params.retain(|(n, _)| n != name);
        if let Some(v) = value {
            params.push((name, v));
        }
    }
    reqwest::Url::parse_with_params(&issuer.authorization_endpoint(), &params)
        .unwrap()
        .into()
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The hidden fields of the login form.
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    html.split("<input type=\"hidden\" name=\"")
        .skip(1)
        .map(|rest| {
            let (name, rest) = rest.split_once("\" value=\"").unwrap();
            let (value, _) = rest.split_once('"').unwrap();
            (name.to_owned(), unescape(value))
        })
        .collect()
}

/// GETs the authorization URL; returns the response's status, `Location` and body.
async fn get(url: &str) -> (StatusCode, Option<String>, String) {
    let r = browser().get(url).send().await.unwrap();
    let status = r.status();
    let location = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    (status, location, r.text().await.unwrap())
}

/// Posts the login form with `fields` besides the hidden ones.
async fn post_form(
    issuer: &IssuerHandle,
    hidden: &[(String, String)],
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form: Vec<(&str, &str)> = hidden
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    form.extend_from_slice(fields);
    browser()
        .post(issuer.authorization_endpoint())
        .form(&form)
        .send()
        .await
        .unwrap()
}

fn query_of(location: &str) -> HashMap<String, String> {
    reqwest::Url::parse(location)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Logs alice in through the form and returns the redirect's query parameters.
async fn login_with(issuer: &IssuerHandle, url: &str) -> HashMap<String, String> {
    let (status, _, html) = get(url).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("id=\"username\"") && html.contains("id=\"password\""));
    assert!(html.contains("id=\"login\""));
    let hidden = hidden_fields(&html);
    let r = post_form(
        issuer,
        &hidden,
        &[("username", "alice"), ("password", ALICE_PASSWORD)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    query_of(&location)
}

/// Logs alice in to [`CLIENT`] with the standard request; returns the code.
async fn login(issuer: &IssuerHandle) -> String {
    let url = authorize_url(issuer, CLIENT, REDIRECT, &[]);
    login_with(issuer, &url).await["code"].clone()
}

async fn token_request(
    id: &str,
    secret: &str,
    issuer: &IssuerHandle,
    form: &[(&str, &str)],
) -> reqwest::Response {
    browser()
        .post(issuer.token_endpoint())
        .basic_auth(id, Some(secret))
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn redeem(issuer: &IssuerHandle, code: &str, verifier: &str) -> reqwest::Response {
    token_request(
        CLIENT,
        SECRET,
        issuer,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await
}

async fn refresh(issuer: &IssuerHandle, token: &str) -> reqwest::Response {
    token_request(
        CLIENT,
        SECRET,
        issuer,
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await
}

async fn ok_json(r: reqwest::Response) -> Value {
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    r.json().await.unwrap()
}

async fn assert_error(r: reqwest::Response, status: u16, code: &str) {
    assert_eq!(r.status().as_u16(), status);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
}

async fn introspect_active(issuer: &IssuerHandle, token: &str) -> bool {
    let body: Value = browser()
        .post(issuer.introspection_endpoint())
        .basic_auth(CLIENT, Some(SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["active"].as_bool().unwrap()
}

#[tokio::test]
async fn a_user_logs_in_with_pkce_and_gets_access_id_and_refresh_tokens() {
    let issuer = start().await;
    let url = authorize_url(&issuer, CLIENT, REDIRECT, &[]);
    let query = login_with(&issuer, &url).await;
    assert_eq!(query["state"], "state-123");
    assert_eq!(query["iss"], issuer.issuer(), "RFC 9207 iss");
    assert_eq!(issuer.stats().authorization_codes_issued, 1);

    let body = ok_json(redeem(&issuer, &query["code"], VERIFIER).await).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], SCOPE);
    assert!(
        body["refresh_token"]
            .as_str()
            .is_some_and(|t| t.len() >= 43)
    );

    let keys = jwks(&issuer).await;
    let access = verify(
        body["access_token"].as_str().unwrap(),
        &keys,
        issuer.issuer(),
    )
    .unwrap();
    assert_eq!(access["sub"], "alice-sub");
    assert_eq!(access["client_id"], CLIENT);
    assert_eq!(access["scope"], SCOPE);
    assert_eq!(access["aud"], "MyService");

    let id = verify(body["id_token"].as_str().unwrap(), &keys, issuer.issuer()).unwrap();
    let header = jsonwebtoken::decode_header(body["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    assert_eq!(id["sub"], "alice-sub");
    assert_eq!(id["aud"], CLIENT);
    assert_eq!(id["azp"], CLIENT);
    assert_eq!(id["nonce"], "nonce-456");
    assert_eq!(id["name"], "Alice Example");
    assert_eq!(id["email"], "alice@example.test");
    assert!(id["sid"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(id["auth_time"].as_u64().is_some());
    assert!(id["at_hash"].as_str().is_some());
}

#[tokio::test]
async fn the_login_form_is_shown_again_after_a_wrong_password() {
    let issuer = start().await;
    let (_, _, html) = get(&authorize_url(&issuer, CLIENT, REDIRECT, &[])).await;
    let hidden = hidden_fields(&html);
    let r = post_form(
        &issuer,
        &hidden,
        &[("username", "alice"), ("password", "wrong-password")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get("location").is_none());
    let html = r.text().await.unwrap();
    assert!(html.contains("Wrong username or password"));
    assert!(
        !html.contains("wrong-password"),
        "the password is not echoed"
    );
    assert_eq!(issuer.stats().login_failures, 1);
    let r = post_form(
        &issuer,
        &hidden,
        &[("username", "alice"), ("password", ALICE_PASSWORD)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // The form is spent: posting it again is refused.
    let r = post_form(
        &issuer,
        &hidden,
        &[("username", "alice"), ("password", ALICE_PASSWORD)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());
}

#[tokio::test]
async fn an_altered_or_unknown_login_form_is_refused() {
    let issuer = start().await;
    let (_, _, html) = get(&authorize_url(&issuer, CLIENT, REDIRECT, &[])).await;
    let mut hidden = hidden_fields(&html);
    for (k, v) in &mut hidden {
        if k == "scope" {
            *v = "openid MyService/weather_write".into();
        }
    }
    let r = post_form(
        &issuer,
        &hidden,
        &[("username", "alice"), ("password", ALICE_PASSWORD)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());
    let forged = [("login_token".to_owned(), "made-up".to_owned())];
    let r = post_form(
        &issuer,
        &forged,
        &[("username", "alice"), ("password", ALICE_PASSWORD)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(issuer.stats().authorization_codes_issued, 0);
}

#[tokio::test]
async fn a_code_is_single_use_and_a_replay_revokes_what_it_issued() {
    let issuer = start().await;
    let code = login(&issuer).await;
    let body = ok_json(redeem(&issuer, &code, VERIFIER).await).await;
    let access = body["access_token"].as_str().unwrap();
    let refresh_token = body["refresh_token"].as_str().unwrap();
    assert!(introspect_active(&issuer, access).await);

    assert_error(redeem(&issuer, &code, VERIFIER).await, 400, "invalid_grant").await;
    assert!(
        !introspect_active(&issuer, access).await,
        "access token revoked"
    );
    assert_error(refresh(&issuer, refresh_token).await, 400, "invalid_grant").await;
}

#[tokio::test]
async fn a_code_needs_the_right_verifier_client_and_redirect_uri() {
    let issuer = start().await;
    let other_verifier = "x".repeat(43);
    let code = login(&issuer).await;
    assert_error(
        redeem(&issuer, &code, &other_verifier).await,
        400,
        "invalid_grant",
    )
    .await;
    // One try per code: the right verifier does not help now.
    assert_error(redeem(&issuer, &code, VERIFIER).await, 400, "invalid_grant").await;

    let code = login(&issuer).await;
    let r = token_request(
        OTHER,
        OTHER_SECRET,
        &issuer,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_error(r, 400, "invalid_grant").await;

    let code = login(&issuer).await;
    let r = token_request(
        CLIENT,
        SECRET,
        &issuer,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9/bff/other"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_error(r, 400, "invalid_grant").await;

    let code = login(&issuer).await;
    let r = token_request(
        CLIENT,
        "wrong-secret-0123456",
        &issuer,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_error(r, 401, "invalid_client").await;
}

#[tokio::test]
async fn a_code_expires_after_a_minute_by_the_issuers_clock() {
    let issuer = start().await;
    let code = login(&issuer).await;
    issuer.advance_clock(Duration::from_secs(61));
    assert_error(redeem(&issuer, &code, VERIFIER).await, 400, "invalid_grant").await;
}

#[tokio::test]
async fn pkce_s256_is_required_and_plain_refused() {
    let issuer = start().await;
    let cases: [Changes<'_>; 4] = [
        &[
            ("code_challenge_method", Some("plain")),
            ("code_challenge", Some(VERIFIER)),
        ],
        &[("code_challenge_method", None)],
        &[("code_challenge", None)],
        &[("code_challenge", Some("too-short"))],
    ];
    for changes in cases {
        let (status, location, _) = get(&authorize_url(&issuer, CLIENT, REDIRECT, changes)).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{changes:?}");
        let location = location.unwrap();
        assert!(location.starts_with(REDIRECT), "{location}");
        let q = query_of(&location);
        assert_eq!(q["error"], "invalid_request", "{changes:?}");
        assert_eq!(q["state"], "state-123");
        assert_eq!(q["iss"], issuer.issuer());
    }
}

#[tokio::test]
async fn other_request_errors_are_redirected_to_the_verified_uri() {
    let issuer = start().await;
    let cases: [(Changes<'_>, &str); 5] = [
        (
            &[("response_type", Some("token"))],
            "unsupported_response_type",
        ),
        (
            &[("scope", Some("openid MyService/weather_write"))],
            "invalid_scope",
        ),
        (&[("scope", None)], "invalid_scope"),
        (&[("prompt", Some("none"))], "login_required"),
        (&[("request", Some("eyJ..."))], "request_not_supported"),
    ];
    for (changes, error) in cases {
        let (status, location, _) = get(&authorize_url(&issuer, CLIENT, REDIRECT, changes)).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{changes:?}");
        assert_eq!(query_of(&location.unwrap())["error"], error, "{changes:?}");
    }
}

#[tokio::test]
async fn an_unknown_client_or_redirect_uri_is_never_redirected() {
    let issuer = start().await;
    let urls = [
        authorize_url(&issuer, CLIENT, "http://127.0.0.1:9/bff/callback/", &[]),
        authorize_url(&issuer, CLIENT, "http://evil.example/bff/callback", &[]),
        authorize_url(&issuer, CLIENT, OTHER_REDIRECT, &[]),
        authorize_url(&issuer, "unknown-client", REDIRECT, &[]),
        authorize_url(&issuer, CLIENT, REDIRECT, &[("redirect_uri", None)]),
        format!(
            "{}&redirect_uri=x",
            authorize_url(&issuer, CLIENT, REDIRECT, &[])
        ),
    ];
    for url in urls {
        let (status, location, html) = get(&url).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}");
        assert_eq!(location, None, "{url}");
        assert!(html.contains("Sign-in error"));
    }
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let issuer = start().await;
    let code = login(&issuer).await;
    let first = ok_json(redeem(&issuer, &code, VERIFIER).await).await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_owned();

    let second = ok_json(refresh(&issuer, &rt1).await).await;
    let rt2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2, "rotation");
    let keys = jwks(&issuer).await;
    let access = verify(
        second["access_token"].as_str().unwrap(),
        &keys,
        issuer.issuer(),
    )
    .unwrap();
    assert_eq!(access["sub"], "alice-sub");
    let id = verify(second["id_token"].as_str().unwrap(), &keys, issuer.issuer()).unwrap();
    assert_eq!(
        id["sid"],
        verify(first["id_token"].as_str().unwrap(), &keys, issuer.issuer()).unwrap()["sid"]
    );
    let stats = issuer.stats();
    assert_eq!((stats.refreshes, stats.refresh_reuse_detections), (1, 0));

    // rt1 is spent: presenting it again is reuse, and rt2 stops working with it.
    assert_error(refresh(&issuer, &rt1).await, 400, "invalid_grant").await;
    assert_error(refresh(&issuer, &rt2).await, 400, "invalid_grant").await;
    assert!(!introspect_active(&issuer, second["access_token"].as_str().unwrap()).await);
    let stats = issuer.stats();
    assert_eq!(
        (
            stats.refreshes,
            stats.refresh_reuse_detections,
            stats.refresh_requests
        ),
        (1, 1, 3)
    );
}

#[tokio::test]
async fn a_refresh_may_narrow_the_scope_and_only_for_its_client() {
    let issuer = start().await;
    let code = login(&issuer).await;
    let body = ok_json(redeem(&issuer, &code, VERIFIER).await).await;
    let rt = body["refresh_token"].as_str().unwrap();

    let r = token_request(
        OTHER,
        OTHER_SECRET,
        &issuer,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await;
    assert_error(r, 400, "invalid_grant").await;

    let wider = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt),
        ("scope", "openid MyService/weather_write"),
    ];
    assert_error(
        token_request(CLIENT, SECRET, &issuer, &wider).await,
        400,
        "invalid_scope",
    )
    .await;

    let narrower = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt),
        ("scope", "MyService/weather_read"),
    ];
    let body = ok_json(token_request(CLIENT, SECRET, &issuer, &narrower).await).await;
    assert_eq!(body["scope"], "MyService/weather_read");
    assert!(body.get("id_token").is_none(), "no openid, no ID token");
    assert!(body["refresh_token"].as_str().is_some(), "still rotated");
}

#[tokio::test]
async fn no_refresh_token_without_offline_access_or_the_refresh_grant() {
    let issuer = start().await;
    let url = authorize_url(
        &issuer,
        CLIENT,
        REDIRECT,
        &[("scope", Some("openid MyService/weather_read"))],
    );
    let code = login_with(&issuer, &url).await["code"].clone();
    let body = ok_json(redeem(&issuer, &code, VERIFIER).await).await;
    assert!(body.get("refresh_token").is_none());

    let url = authorize_url(&issuer, NO_REFRESH, NO_REFRESH_REDIRECT, &[]);
    let code = login_with(&issuer, &url).await["code"].clone();
    let r = token_request(
        NO_REFRESH,
        NO_REFRESH_SECRET,
        &issuer,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", NO_REFRESH_REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    let body = ok_json(r).await;
    assert!(body.get("refresh_token").is_none());
    assert_eq!(
        body["scope"], "openid profile email MyService/weather_read",
        "offline_access dropped"
    );
}

#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_family() {
    let issuer = start().await;
    let code = login(&issuer).await;
    let body = ok_json(redeem(&issuer, &code, VERIFIER).await).await;
    let rt = body["refresh_token"].as_str().unwrap();
    let revoke = |id: &'static str, secret: &'static str, token: String| {
        let endpoint = issuer.revocation_endpoint();
        async move {
            browser()
                .post(endpoint)
                .basic_auth(id, Some(secret))
                .form(&[
                    ("token", token.as_str()),
                    ("token_type_hint", "refresh_token"),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        revoke(OTHER, OTHER_SECRET, rt.to_owned()).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(revoke(CLIENT, SECRET, rt.to_owned()).await, StatusCode::OK);
    assert_error(refresh(&issuer, rt).await, 400, "invalid_grant").await;
    assert!(!introspect_active(&issuer, body["access_token"].as_str().unwrap()).await);
}

#[tokio::test]
async fn end_session_ends_the_session_and_redirects_to_a_registered_uri() {
    let issuer = start().await;
    let code = login(&issuer).await;
    let body = ok_json(redeem(&issuer, &code, VERIFIER).await).await;
    let id_token = body["id_token"].as_str().unwrap();

    let url = |redirect: &str| {
        reqwest::Url::parse_with_params(
            &issuer.end_session_endpoint(),
            [
                ("id_token_hint", id_token),
                ("post_logout_redirect_uri", redirect),
                ("state", "bye"),
            ],
        )
        .unwrap()
        .to_string()
    };
    let (status, location, _) = get(&url("http://evil.example/")).await;
    assert_eq!((status, location), (StatusCode::BAD_REQUEST, None));
    assert_eq!(issuer.stats().sessions_ended, 0);

    let (status, location, _) = get(&url(POST_LOGOUT)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location.unwrap(), format!("{POST_LOGOUT}?state=bye"));
    assert_eq!(issuer.stats().sessions_ended, 1);
    assert_error(
        refresh(&issuer, body["refresh_token"].as_str().unwrap()).await,
        400,
        "invalid_grant",
    )
    .await;

    // The next authorization asks for the password again (no single sign-on).
    let (status, _, html) = get(&authorize_url(&issuer, CLIENT, REDIRECT, &[])).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"password\""));

    // A forged hint is refused.
    let forged = format!("{}x", &id_token[..id_token.len() - 1]);
    let u = reqwest::Url::parse_with_params(
        &issuer.end_session_endpoint(),
        [("id_token_hint", forged.as_str())],
    )
    .unwrap();
    let (status, location, _) = get(u.as_str()).await;
    assert_eq!((status, location), (StatusCode::BAD_REQUEST, None));
}

#[tokio::test]
async fn discovery_lists_the_user_flows() {
    let issuer = start().await;
    let doc: Value = test_support::get_json(issuer.discovery_url()).await;
    assert_eq!(
        doc["authorization_endpoint"],
        issuer.authorization_endpoint()
    );
    assert_eq!(doc["end_session_endpoint"], issuer.end_session_endpoint());
    assert_eq!(doc["revocation_endpoint"], issuer.revocation_endpoint());
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(doc["subject_types_supported"], json!(["public"]));
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    let grants = doc["grant_types_supported"].as_array().unwrap();
    for g in ["client_credentials", "authorization_code", "refresh_token"] {
        assert!(grants.contains(&json!(g)), "{g}");
    }
    let scopes = doc["scopes_supported"].as_array().unwrap();
    for s in ["openid", "offline_access", READ] {
        assert!(scopes.contains(&json!(s)), "{s}");
    }
}

#[tokio::test]
async fn refresh_faults_fail_delay_and_leave_the_token_valid() {
    let issuer = start().await;
    let code = login(&issuer).await;
    let body = ok_json(redeem(&issuer, &code, VERIFIER).await).await;
    let rt = body["refresh_token"].as_str().unwrap();

    issuer.fail_next_refreshes(2, 503);
    assert_error(refresh(&issuer, rt).await, 503, "temporarily_unavailable").await;
    assert_error(refresh(&issuer, rt).await, 503, "temporarily_unavailable").await;
    issuer.set_refresh_delay(Duration::from_millis(300));
    let started = Instant::now();
    let body = ok_json(refresh(&issuer, rt).await).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(body["refresh_token"].as_str().is_some());
    let stats = issuer.stats();
    assert_eq!((stats.refresh_requests, stats.refreshes), (3, 1));
}

#[tokio::test]
async fn user_tokens_honour_the_token_lifetime_and_refresh_tokens_theirs() {
    let issuer = start().await;
    issuer.set_token_lifetime(Duration::from_secs(30));
    issuer.set_refresh_token_lifetime(Duration::from_secs(120));
    let code = login(&issuer).await;
    let body = ok_json(redeem(&issuer, &code, VERIFIER).await).await;
    assert_eq!(body["expires_in"], 30);
    let keys = jwks(&issuer).await;
    for token in ["access_token", "id_token"] {
        let claims = verify(body[token].as_str().unwrap(), &keys, issuer.issuer()).unwrap();
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            30
        );
    }
    issuer.advance_clock(Duration::from_secs(121));
    assert_error(
        refresh(&issuer, body["refresh_token"].as_str().unwrap()).await,
        400,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn cognito_user_tokens_carry_the_user_and_the_client() {
    let issuer = mock_issuer::start(config(TokenProfile::Cognito))
        .await
        .unwrap();
    let code = login(&issuer).await;
    let body = ok_json(redeem(&issuer, &code, VERIFIER).await).await;
    let claims = verify(
        body["access_token"].as_str().unwrap(),
        &jwks(&issuer).await,
        issuer.issuer(),
    )
    .unwrap();
    assert_eq!(claims["sub"], "alice-sub");
    assert_eq!(claims["client_id"], CLIENT);
    assert_eq!(claims["username"], "alice");
    assert_eq!(claims["token_use"], "access");
}

#[tokio::test]
async fn cancel_is_access_denied_at_the_client() {
    let issuer = start().await;
    let (_, _, html) = get(&authorize_url(&issuer, CLIENT, REDIRECT, &[])).await;
    let r = post_form(&issuer, &hidden_fields(&html), &[("cancel", "1")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let q = query_of(r.headers()["location"].to_str().unwrap());
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "state-123");
    assert_eq!(issuer.stats().authorization_codes_issued, 0);
}
