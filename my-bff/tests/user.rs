//! Users at my-bff over HTTP, as a browser without script meets them: log in at the mock
//! issuer's form, the session cookie, who am I, the forecasts fetched from the real
//! my-service with the user's token, the anti-forgery header, an absolute return URL and a
//! foreign logout refused, and sign-out with the refresh token revoked at the issuer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use mock_issuer::{ClientConfig, IssuerHandle, TokenProfile as IssuerProfile, UserConfig};
use my_bff::config::{BffConfig, LoginConfig, TokenSource};
use my_service::weather::READ_SCOPE;
use reqwest::StatusCode;
use serde_json::Value;
use shared_auth::client::{
    ClientDefinition, ClientId, ClientSecret, SessionConfig, UserLoginConfig,
};
use test_support::*;

const ALICE_PASSWORD: &str = "alice-test-password";
const TRUST_DOMAIN: &str = "https://trust.example";

/// A browser: no redirects followed, cookies kept by hand (name=value of every
/// `Set-Cookie`, removed when it is cleared).
struct Browser {
    http: reqwest::Client,
    cookies: std::collections::BTreeMap<String, String>,
}

impl Browser {
    fn new() -> Self {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Default::default(),
        }
    }

    async fn get(&mut self, url: &str, csrf: bool) -> reqwest::Response {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut request = self.http.get(url);
        if !cookie.is_empty() {
            request = request.header("cookie", cookie.join("; "));
        }
        if csrf {
            request = request.header("x-csrf", "1");
        }
        let response = request.send().await.unwrap();
        for set in response.headers().get_all("set-cookie") {
            let set = set.to_str().unwrap();
            let (pair, attributes) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                assert!(attributes.contains("HttpOnly"), "{set}");
                assert!(attributes.contains("SameSite=Lax"), "{set}");
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        response
    }
}

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// The issuer, with my-bff allowed to log users in at `bff`'s callback.
async fn issuer(bff: &str) -> IssuerHandle {
    let mut config = issuer_config(IssuerProfile::Cognito)
        .with_trust_domain(TRUST_DOMAIN)
        .with_user(
            UserConfig::new("alice", ALICE_PASSWORD)
                .with_sub("alice-sub")
                .with_name("Alice"),
        );
    config.clients.retain(|c| c.client_id != BFF_ID);
    mock_issuer::start(
        config.with_client(
            ClientConfig::new(BFF_ID, BFF_SECRET, [READ])
                .with_grant_types([
                    "client_credentials",
                    "authorization_code",
                    "refresh_token",
                    "urn:ietf:params:oauth:grant-type:token-exchange",
                ])
                .with_redirect_uris([format!("{bff}/bff/callback")])
                .with_post_logout_redirect_uris([format!("{bff}/")]),
        ),
    )
    .await
    .unwrap()
}

/// my-bff with user login, at `bff` (its listener already bound), calling `my_service`.
fn config(issuer: &IssuerHandle, bff: &str, my_service: &str) -> BffConfig {
    let client = ClientDefinition::new(
        TokenSource::Endpoint(issuer.token_endpoint()),
        ClientId::new(BFF_ID),
        ClientSecret::new(BFF_SECRET),
    );
    let mut user = UserLoginConfig::new(
        issuer.issuer(),
        ClientId::new(BFF_ID),
        ClientSecret::new(BFF_SECRET),
        format!("{bff}/bff/callback"),
    );
    user.scope =
        shared_auth::ScopeSet::parse(&format!("openid profile offline_access {READ_SCOPE}"))
            .unwrap();
    user.post_logout_redirect_uri = Some(format!("{bff}/"));
    BffConfig {
        client,
        my_service_base_url: my_service.to_owned(),
        my_service_timeout: Duration::from_secs(5),
        token_cache: None,
        login: Some(LoginConfig {
            user,
            sessions: SessionConfig::default(),
            secure_cookies: false,
            trust_domain: None,
        }),
    }
}

/// Waits until my-bff has found its login issuer (in the background): `/bff/user` answers
/// 401 (no session) instead of 503.
async fn login_ready(bff: &str) {
    let url = format!("{bff}/bff/user");
    eventually(Duration::from_secs(20), "user login ready", || {
        let url = url.clone();
        async move {
            let r = http().get(&url).header("x-csrf", "1").send().await.unwrap();
            r.status() != StatusCode::SERVICE_UNAVAILABLE
        }
    })
    .await;
}

/// Logs alice in through my-bff: follows the redirects by hand.
async fn log_in(browser: &mut Browser, bff: &str) {
    let start = browser
        .get(&format!("{bff}/bff/login?returnUrl=/after"), false)
        .await;
    assert!(start.status().is_redirection(), "{}", start.status());
    let back = log_in_at_issuer(&location(&start), "alice", ALICE_PASSWORD).await;
    assert!(back.starts_with(&format!("{bff}/bff/callback?")), "{back}");
    let done = browser.get(&back, false).await;
    assert!(done.status().is_redirection(), "{}", done.status());
    assert_eq!(location(&done), "/after");
    assert!(browser.cookies.contains_key("bff-session"));
}

#[tokio::test]
async fn a_user_logs_in_sees_the_forecasts_as_themselves_and_signs_out() {
    let (listener, bff) = bind().await;
    let issuer = issuer(&bff).await;
    let my_service = serve(
        my_service::build(&my_service::config::ServiceConfig {
            validator: validator_config_for(issuer.issuer(), cognito()),
            openapi_token_url: None,
            transaction_tokens: None,
        })
        .await
        .unwrap(),
    )
    .await;
    let app = my_bff::build(&config(&issuer, &bff, &my_service.base))
        .await
        .unwrap();
    let _bff = serve_listener(listener, app);
    login_ready(&bff).await;
    let mut browser = Browser::new();

    // Before login: the front end, and 401s it can act on.
    let page = browser.get(&format!("{bff}/"), false).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("/bff/login"));
    let r = browser.get(&format!("{bff}/bff/user"), true).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    // An absolute return URL would make the login an open redirect.
    let r = browser
        .get(
            &format!("{bff}/bff/login?returnUrl=https://evil.example/"),
            false,
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    log_in(&mut browser, &bff).await;
    // The anti-forgery header is required on every user API route.
    for path in ["/bff/user", "/bff/weatherforecast"] {
        let r = browser.get(&format!("{bff}{path}"), false).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["detail"].as_str().unwrap().contains("X-CSRF"),
            "{body}"
        );
    }
    // Logging in again while signed in: a fresh session id, and the old session ends.
    let old = browser.cookies["bff-session"].clone();
    log_in(&mut browser, &bff).await;
    assert_ne!(browser.cookies["bff-session"], old);
    let mut stale = Browser::new();
    stale.cookies.insert("bff-session".into(), old);
    let r = stale.get(&format!("{bff}/bff/user"), true).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "the replaced session");
    assert_eq!(
        issuer.stats().refresh_tokens_revoked,
        1,
        "its refresh token revoked"
    );

    let me: Value = browser
        .get(&format!("{bff}/bff/user"), true)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["claims"]["sub"], "alice-sub");
    assert_eq!(me["claims"]["name"], "Alice");
    let forecasts = browser
        .get(&format!("{bff}/bff/weatherforecast"), true)
        .await;
    assert_eq!(forecasts.status(), StatusCode::OK);
    assert_eq!(forecasts.json::<Vec<Value>>().await.unwrap().len(), 5);

    // Sign-out needs this session's own logout id.
    let r = browser
        .get(&format!("{bff}/bff/logout?sid=guessed"), false)
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let out = browser
        .get(
            &format!("{bff}{}", me["logoutUrl"].as_str().unwrap()),
            false,
        )
        .await;
    assert!(out.status().is_redirection());
    assert!(location(&out).starts_with(&issuer.end_session_endpoint()));
    assert!(
        !browser.cookies.contains_key("bff-session"),
        "the session cookie is cleared"
    );
    assert_eq!(issuer.stats().refresh_tokens_revoked, 2);
    let r = browser.get(&format!("{bff}/bff/user"), true).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// The user's call upstream carries the user's token and nothing of the browser's
/// request: no `Cookie` header reaches my-service.
#[tokio::test]
async fn the_browsers_cookies_never_go_upstream() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(
        Vec::<(Option<String>, Option<String>)>::new(),
    ));
    let recorded = seen.clone();
    let downstream = serve(axum::Router::new().route(
        "/weatherforecast",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let value = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
            recorded
                .lock()
                .unwrap()
                .push((value("cookie"), value("authorization")));
            async { axum::Json(Vec::<Value>::new()) }
        }),
    ))
    .await;
    let (listener, bff) = bind().await;
    let issuer = issuer(&bff).await;
    let app = my_bff::build(&config(&issuer, &bff, &downstream.base))
        .await
        .unwrap();
    let _bff = serve_listener(listener, app);
    login_ready(&bff).await;
    let mut browser = Browser::new();
    log_in(&mut browser, &bff).await;
    let r = browser
        .get(&format!("{bff}/bff/weatherforecast"), true)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, None, "no Cookie upstream");
    assert!(seen[0].1.as_deref().unwrap().starts_with("Bearer "));
}

/// The login issuer unreadable when my-bff starts (a deployment that starts both at once):
/// my-bff starts anyway, its user routes answer 503 with Retry-After, and login works once
/// the issuer answers.
#[tokio::test]
async fn a_bff_started_before_its_login_issuer_waits_for_it() {
    let (listener, bff) = bind().await;
    let issuer = issuer(&bff).await;
    issuer.set_discovery_available(false);
    let app = my_bff::build(&config(&issuer, &bff, "http://127.0.0.1:9"))
        .await
        .expect("starts with the login issuer unreadable");
    let _bff = serve_listener(listener, app);
    let r = Browser::new()
        .get(&format!("{bff}/bff/login?returnUrl=/"), false)
        .await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"));
    issuer.set_discovery_available(true);
    login_ready(&bff).await;
    let mut browser = Browser::new();
    log_in(&mut browser, &bff).await;
}

/// The first hop of a call chain: with BFF_TRUST_DOMAIN, a user's call goes with the BFF's
/// own token and a Transaction Token for the user, which my-service checks; my-service
/// sees the BFF as the caller and the user as the transaction's subject. Without it, the
/// user's own token goes, and my-service sees the user as the token's subject.
#[tokio::test]
async fn a_users_call_carries_a_transaction_token_my_service_checks() {
    let (listener, bff) = bind().await;
    let issuer = issuer(&bff).await;
    let mut txn = shared_auth::server::TransactionTokenConfig::new(
        shared_auth::server::MetadataSource::Authority(issuer.issuer().to_owned()),
        TRUST_DOMAIN,
    );
    txn.http_timeout = Duration::from_secs(2);
    let my_service = serve(
        my_service::build(&my_service::config::ServiceConfig {
            validator: validator_config_for(issuer.issuer(), cognito()),
            openapi_token_url: None,
            transaction_tokens: Some(txn),
        })
        .await
        .unwrap(),
    )
    .await;
    let mut with_txn = config(&issuer, &bff, &my_service.base);
    with_txn.login.as_mut().unwrap().trust_domain = Some(TRUST_DOMAIN.into());
    let _bff = serve_listener(listener, my_bff::build(&with_txn).await.unwrap());
    login_ready(&bff).await;
    let mut browser = Browser::new();
    log_in(&mut browser, &bff).await;

    let seen: Value = browser
        .get(&format!("{bff}/bff/whoami"), true)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seen["clientId"], BFF_ID, "{seen}");
    assert_eq!(seen["subject"], BFF_ID, "the token is the BFF's own");
    assert_eq!(seen["transaction"]["subject"], "alice-sub", "{seen}");
    assert_eq!(seen["transaction"]["requestingWorkload"], BFF_ID);
    let first_txn = seen["transaction"]["txn"].as_str().unwrap().to_owned();
    let forecasts = browser
        .get(&format!("{bff}/bff/weatherforecast"), true)
        .await;
    assert_eq!(forecasts.status(), StatusCode::OK);
    // Each user call is a transaction of its own.
    let again: Value = browser
        .get(&format!("{bff}/bff/whoami"), true)
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(again["transaction"]["txn"], first_txn.as_str());

    // A Transaction Token my-service cannot verify (signed by another issuer) is refused
    // at my-service, not trusted.
    let foreign =
        mock_issuer::start(issuer_config(IssuerProfile::Cognito).with_trust_domain(TRUST_DOMAIN))
            .await
            .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let key = foreign.current_key();
    let forged = foreign
        .sign(
            &serde_json::json!({"alg": key.alg().as_str(), "kid": key.kid(), "typ": "txntoken+jwt"}),
            &serde_json::json!({"iat": now, "exp": now + 60, "aud": TRUST_DOMAIN,
                "txn": "t-1", "sub": "mallory"}),
        )
        .unwrap();
    let own_token = fetch_token(&issuer, BFF_ID, BFF_SECRET, Some(READ)).await;
    let refused = http()
        .get(format!("{}/whoami", my_service.base))
        .bearer_auth(&own_token)
        .header("txn-token", forged)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    // No Transaction Token: the call passes, and my-service names no transaction.
    let plain: Value = http()
        .get(format!("{}/whoami", my_service.base))
        .bearer_auth(&own_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(plain["transaction"], Value::Null);
}
