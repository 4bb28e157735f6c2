//! User login and user tokens against the mock issuer over HTTP: the authorization code
//! flow with PKCE through the issuer's login form, the ID token checked, the session's
//! access token accepted by a resource server as the user's, one refresh per session
//! however many requests race across the token's expiry (counted at the issuer: no reuse
//! detection), a transient refresh failure that keeps the session, `invalid_grant` that
//! ends it, and sign-out that revokes the refresh token. Time moves with the manual clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use mock_issuer::{
    ClientConfig, IssuerConfig, IssuerHandle, TokenProfile as IssuerProfile, UserConfig,
};
use shared_auth::ManualClock;
use shared_auth::client::{
    ClientId, ClientSecret, LoginError, SessionConfig, TokenError, TokenRequestParams,
    UserLoginConfig, UserSession, UserSessions, UserTokenError, UserTokenMiddleware,
};
use shared_auth::server::{JwtValidator, MetadataSource, TokenProfile, ValidatorConfig};
use test_support::{concurrently, log_in_at_issuer, login_callback};

const CLIENT: &str = "web-bff";
const SECRET: &str = "web-bff-secret-0123456789";
const REDIRECT: &str = "http://127.0.0.1:9/bff/callback";
const ALICE_PASSWORD: &str = "alice-test-password";
const BOB_PASSWORD: &str = "bob-test-password";
const READ: &str = "MyService/weather_read";
const WRITE: &str = "MyService/weather_write";
/// Defined by the resource server, never granted to the client.
const ADMIN: &str = "MyService/weather_admin";

const FORCE: TokenRequestParams = TokenRequestParams {
    scope: None,
    resource: None,
    extra: std::collections::BTreeMap::new(),
    force_renewal: true,
};

async fn issuer() -> IssuerHandle {
    mock_issuer::start(
        IssuerConfig::new(IssuerProfile::Cognito)
            .with_resource_server(
                "MyService",
                ["weather_read", "weather_write", "weather_admin"],
            )
            .with_client(
                ClientConfig::new(CLIENT, SECRET, [READ, WRITE])
                    .with_grant_types(["authorization_code", "refresh_token"])
                    .with_redirect_uris([REDIRECT])
                    .with_post_logout_redirect_uris(["http://127.0.0.1:9/"]),
            )
            .with_user(UserConfig::new("alice", ALICE_PASSWORD).with_sub("alice-sub"))
            .with_user(UserConfig::new("bob", BOB_PASSWORD).with_sub("bob-sub")),
    )
    .await
    .unwrap()
}

/// How long after issue an access token is renewed: the issuer's tokens live an hour, and
/// the sessions renew them when less than `3600 s - RENEW_AFTER` is left. (The issuer
/// signs in real time, and the test's clock only ever runs ahead of it by a few of these
/// steps, so the ID tokens stay within their lifetime.)
const RENEW_AFTER: Duration = Duration::from_secs(15);

async fn sessions(issuer: &IssuerHandle, clock: Arc<ManualClock>) -> UserSessions {
    let mut config = UserLoginConfig::new(
        issuer.issuer(),
        ClientId::new(CLIENT),
        ClientSecret::new(SECRET),
        REDIRECT,
    );
    config.scope = shared_auth::ScopeSet::parse(&format!("offline_access {READ} {WRITE}")).unwrap();
    config.post_logout_redirect_uri = Some("http://127.0.0.1:9/".into());
    config.clock = clock.clone();
    let mut session_config = SessionConfig::default();
    session_config.renew_before = Duration::from_secs(3600) - RENEW_AFTER;
    UserSessions::discover(config, session_config)
        .await
        .unwrap()
}

/// alice logs in: the session id.
async fn log_in(sessions: &UserSessions) -> String {
    log_in_as(sessions, "alice", ALICE_PASSWORD).await
}

async fn log_in_as(sessions: &UserSessions, user: &str, password: &str) -> String {
    let (url, login_id) = sessions.begin_login("/after").await.unwrap();
    let location = log_in_at_issuer(&url, user, password).await;
    let (session, return_to) = sessions
        .complete_login(&login_id, &login_callback(&location))
        .await
        .unwrap();
    assert_eq!(return_to, "/after");
    session
}

#[tokio::test]
async fn a_user_logs_in_and_calls_an_api_as_themselves() {
    let issuer = issuer().await;
    let clock = Arc::new(ManualClock::starting_now());
    let sessions = sessions(&issuer, clock).await;
    let session = log_in(&sessions).await;
    let info = sessions.info(&session).await.unwrap();
    assert_eq!(info.claims["sub"], "alice-sub");
    assert_eq!(info.claims["aud"], CLIENT);

    let token = sessions
        .access_token(&session, &TokenRequestParams::default())
        .await
        .unwrap();
    assert!(!format!("{token:?}").contains(token.secret()));
    let validator = JwtValidator::new(ValidatorConfig::new(
        MetadataSource::Authority(issuer.issuer().to_owned()),
        TokenProfile::Cognito {
            allowed_client_ids: vec![CLIENT.to_owned()],
        },
    ))
    .await
    .unwrap();
    let principal = validator.validate(token.secret()).await.unwrap();
    assert_eq!(principal.subject(), Some("alice-sub"));
    assert_eq!(principal.client_id(), CLIENT);
    assert!(principal.has_scope(READ));
}

#[tokio::test]
async fn a_callback_is_completed_only_for_the_browser_that_began_it_and_only_once() {
    let issuer = issuer().await;
    let sessions = sessions(&issuer, Arc::new(ManualClock::starting_now())).await;
    let (url, login_id) = sessions.begin_login("/").await.unwrap();
    let location = log_in_at_issuer(&url, "alice", ALICE_PASSWORD).await;
    let good = login_callback(&location);

    // Another browser (another login id) cannot complete it: login CSRF.
    let e = sessions
        .complete_login("someone-else", &good)
        .await
        .unwrap_err();
    assert!(matches!(e, LoginError::Callback(_)), "{e}");
    // A wrong state is refused, and the login is then spent.
    let mut wrong = good.clone();
    wrong.state = Some("not-the-state".into());
    let e = sessions
        .complete_login(&login_id, &wrong)
        .await
        .unwrap_err();
    assert_eq!(e, LoginError::Callback("the state is not this login's"));
    let e = sessions.complete_login(&login_id, &good).await.unwrap_err();
    assert!(matches!(e, LoginError::Callback(_)), "{e}");

    // A code redeemed twice (a new login replaying the first one's code) is refused.
    let (url, login_id) = sessions.begin_login("/").await.unwrap();
    let location = log_in_at_issuer(&url, "alice", ALICE_PASSWORD).await;
    let first = login_callback(&location);
    sessions.complete_login(&login_id, &first).await.unwrap();
    let (_, replay_id) = sessions.begin_login("/").await.unwrap();
    let e = sessions
        .complete_login(&replay_id, &first)
        .await
        .unwrap_err();
    assert!(matches!(e, LoginError::Callback(_)), "{e}");

    // An absolute return URL is refused before anything is sent.
    for bad in ["https://evil.example/", "//evil.example/x"] {
        assert!(sessions.begin_login(bad).await.is_err(), "{bad}");
    }
}

/// Many requests of one session across the access token's renewal point: one refresh,
/// no reuse detection at the issuer, every request served.
#[tokio::test]
async fn one_refresh_per_session_however_many_requests_race() {
    let issuer = issuer().await;
    issuer.set_refresh_delay(Duration::from_millis(50));
    let clock = Arc::new(ManualClock::starting_now());
    let sessions = sessions(&issuer, clock.clone()).await;
    let session = log_in(&sessions).await;
    let first = sessions
        .access_token(&session, &TokenRequestParams::default())
        .await
        .unwrap();
    for round in 1..=3u64 {
        // Past the renewal point (a minute before expiry).
        clock.advance(RENEW_AFTER);
        let calls = (0..20).map(|_| {
            let (sessions, session) = (sessions.clone(), session.clone());
            async move {
                sessions
                    .access_token(&session, &TokenRequestParams::default())
                    .await
            }
        });
        let tokens = concurrently(calls).await;
        let tokens: Vec<String> = tokens
            .into_iter()
            .map(|t| t.unwrap().secret().to_owned())
            .collect();
        assert!(
            tokens.iter().all(|t| t == &tokens[0]),
            "one token per round"
        );
        assert_ne!(tokens[0], first.secret());
        let stats = issuer.stats();
        assert_eq!(stats.refreshes, round, "one refresh per round");
        assert_eq!(stats.refresh_reuse_detections, 0);
    }
}

#[tokio::test]
async fn a_transient_refresh_failure_keeps_the_session_and_invalid_grant_ends_it() {
    let issuer = issuer().await;
    let clock = Arc::new(ManualClock::starting_now());
    let sessions = sessions(&issuer, clock.clone()).await;
    let session = log_in(&sessions).await;
    let first = sessions
        .access_token(&session, &TokenRequestParams::default())
        .await
        .unwrap();
    clock.advance(RENEW_AFTER);
    // Due for renewal, the issuer failing: the token still has time left, so it is served.
    issuer.fail_next_refreshes(1, 503);
    let kept = sessions
        .access_token(&session, &TokenRequestParams::default())
        .await
        .unwrap();
    assert_eq!(kept.secret(), first.secret());
    // A renewal that must happen (forced) and fails: 503 for this call, session kept, and
    // the calls right after share that outcome rather than ask the issuer again.
    clock.advance(Duration::from_secs(5));
    issuer.fail_next_refreshes(1, 503);
    let e = sessions.access_token(&session, &FORCE).await.unwrap_err();
    assert!(matches!(e, UserTokenError::Unavailable(_)), "{e}");
    let asked = issuer.stats().refresh_requests;
    let e = sessions.access_token(&session, &FORCE).await.unwrap_err();
    assert!(matches!(e, UserTokenError::Unavailable(_)), "{e}");
    assert_eq!(
        sessions
            .access_token(&session, &TokenRequestParams::default())
            .await
            .unwrap()
            .secret(),
        first.secret()
    );
    assert_eq!(
        issuer.stats().refresh_requests,
        asked,
        "no second attempt within the back-off"
    );
    // The issuer refusing the BFF's own credentials is not the user's fault: kept.
    clock.advance(Duration::from_secs(5));
    issuer.fail_next_refreshes(1, 401);
    let e = sessions.access_token(&session, &FORCE).await.unwrap_err();
    assert!(matches!(e, UserTokenError::Unavailable(_)), "{e}");
    // The issuer back (after the back-off): renewed, same session.
    clock.advance(Duration::from_secs(5));
    let renewed = sessions
        .access_token(&session, &TokenRequestParams::default())
        .await
        .unwrap();
    assert_ne!(renewed.secret(), first.secret());

    clock.advance(RENEW_AFTER);
    issuer.fail_next_refreshes(1, 400);
    let e = sessions
        .access_token(&session, &TokenRequestParams::default())
        .await
        .unwrap_err();
    assert!(matches!(e, UserTokenError::Ended(_)), "{e}");
    assert_eq!(
        sessions
            .access_token(&session, &TokenRequestParams::default())
            .await
            .unwrap_err(),
        UserTokenError::NoSession
    );
}

#[tokio::test]
async fn sign_out_revokes_the_refresh_token_and_needs_the_sessions_own_logout_id() {
    let issuer = issuer().await;
    let clock = Arc::new(ManualClock::starting_now());
    let sessions = sessions(&issuer, clock.clone()).await;
    let session = log_in(&sessions).await;
    let info = sessions.info(&session).await.unwrap();
    assert_eq!(
        sessions.logout(&session, "guessed").await.unwrap_err(),
        UserTokenError::NoSession
    );
    assert!(sessions.info(&session).await.is_some(), "still signed in");
    let end = sessions
        .logout(&session, &info.logout_id)
        .await
        .unwrap()
        .unwrap();
    assert!(end.starts_with(&issuer.end_session_endpoint()), "{end}");
    assert!(end.contains("id_token_hint="), "{end}");
    assert!(sessions.info(&session).await.is_none());
    assert!(issuer.stats().refresh_tokens_revoked >= 1);
}

#[tokio::test]
async fn sessions_end_when_idle_or_too_old() {
    let issuer = issuer().await;
    let clock = Arc::new(ManualClock::starting_now());
    let sessions = sessions(&issuer, clock.clone()).await;
    let session = log_in(&sessions).await;
    clock.advance(Duration::from_secs(29 * 60));
    assert!(sessions.info(&session).await.is_some());
    clock.advance(Duration::from_secs(31 * 60));
    assert!(
        sessions.info(&session).await.is_none(),
        "idle for 31 minutes"
    );
}

async fn validator(issuer: &IssuerHandle) -> JwtValidator {
    JwtValidator::new(ValidatorConfig::new(
        MetadataSource::Authority(issuer.issuer().to_owned()),
        TokenProfile::Cognito {
            allowed_client_ids: vec![CLIENT.to_owned()],
        },
    ))
    .await
    .unwrap()
}

fn scoped(scope: &str) -> TokenRequestParams {
    TokenRequestParams {
        scope: Some(shared_auth::ScopeSet::parse(scope).unwrap()),
        ..Default::default()
    }
}

fn tenant(name: &str) -> TokenRequestParams {
    let mut params = TokenRequestParams::default();
    params.extra.insert("tenant".into(), name.into());
    params
}

/// Per-request parameters (Duende's `UserTokenRequestParameters`): a narrower scope gets
/// a token of its own, kept beside the login's; both are renewed with the session's one
/// rotating refresh token, and the issuer never sees it twice.
#[tokio::test]
async fn a_narrower_scope_gets_its_own_token_and_the_refresh_token_rotates_once() {
    let issuer = issuer().await;
    let clock = Arc::new(ManualClock::starting_now());
    let sessions = sessions(&issuer, clock.clone()).await;
    let session = log_in(&sessions).await;
    let validator = validator(&issuer).await;
    let own = sessions
        .access_token(&session, &TokenRequestParams::default())
        .await
        .unwrap();
    let read_only = sessions
        .access_token(&session, &scoped(READ))
        .await
        .unwrap();
    assert_ne!(own.secret(), read_only.secret());
    let principal = validator.validate(read_only.secret()).await.unwrap();
    assert_eq!(principal.subject(), Some("alice-sub"));
    assert!(principal.has_scope(READ) && !principal.has_scope(WRITE));
    let principal = validator.validate(own.secret()).await.unwrap();
    assert!(principal.has_scope(READ) && principal.has_scope(WRITE));
    assert_eq!(
        issuer.stats().refreshes,
        1,
        "the narrower token cost one refresh"
    );
    // Both kept: asked again, neither costs a request.
    for _ in 0..3 {
        let again = sessions
            .access_token(&session, &scoped(READ))
            .await
            .unwrap();
        assert_eq!(again.secret(), read_only.secret());
        let again = sessions
            .access_token(&session, &TokenRequestParams::default())
            .await
            .unwrap();
        assert_eq!(again.secret(), own.secret());
    }
    assert_eq!(issuer.stats().refreshes, 1);
    // Both due: each renewed with the refresh token the other's renewal rotated.
    clock.advance(RENEW_AFTER);
    let own_2 = sessions
        .access_token(&session, &TokenRequestParams::default())
        .await
        .unwrap();
    let read_only_2 = sessions
        .access_token(&session, &scoped(READ))
        .await
        .unwrap();
    assert_ne!(own_2.secret(), own.secret());
    assert_ne!(read_only_2.secret(), read_only.secret());
    let stats = issuer.stats();
    assert_eq!((stats.refreshes, stats.refresh_reuse_detections), (3, 0));

    // A scope the login was not granted: refused by the issuer (invalid_scope), the
    // session kept, and no back-off for the login's own token.
    let e = sessions
        .access_token(&session, &scoped(ADMIN))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, UserTokenError::Refused(TokenError::Rejected { error, .. }) if error == "invalid_scope"),
        "{e}"
    );
    let forced = sessions.access_token(&session, &FORCE).await.unwrap();
    assert_ne!(forced.secret(), own_2.secret());
    // Extra parameters named like the grant's own: refused before anything is sent.
    let asked = issuer.stats().refresh_requests;
    let mut bad = TokenRequestParams::default();
    bad.extra.insert("refresh_token".into(), "another".into());
    let e = sessions.access_token(&session, &bad).await.unwrap_err();
    assert!(
        matches!(e, UserTokenError::Refused(TokenError::InvalidParameters(_))),
        "{e}"
    );
    assert_eq!(issuer.stats().refresh_requests, asked);
    assert_eq!(issuer.stats().refresh_reuse_detections, 0);
}

/// The session's tokens are its user's: two users, each with two tenants, hold four
/// tokens, each for its user and reused for its own parameters only.
#[tokio::test]
async fn two_users_and_two_tenants_never_share_a_token() {
    let issuer = issuer().await;
    let clock = Arc::new(ManualClock::starting_now());
    let sessions = sessions(&issuer, clock).await;
    let validator = validator(&issuer).await;
    let alice = log_in(&sessions).await;
    let bob = log_in_as(&sessions, "bob", BOB_PASSWORD).await;
    let mut seen = std::collections::BTreeSet::new();
    for (session, sub) in [(&alice, "alice-sub"), (&bob, "bob-sub")] {
        for name in ["acme", "globex"] {
            let token = sessions.access_token(session, &tenant(name)).await.unwrap();
            let principal = validator.validate(token.secret()).await.unwrap();
            assert_eq!(principal.subject(), Some(sub));
            assert!(
                seen.insert(token.secret().to_owned()),
                "a token served twice"
            );
        }
    }
    assert_eq!(seen.len(), 4);
    // Asked again, each session and tenant gets its own token back.
    for session in [&alice, &bob] {
        for name in ["acme", "globex"] {
            let token = sessions.access_token(session, &tenant(name)).await.unwrap();
            assert!(seen.contains(token.secret()));
        }
    }
    let own_alice = sessions
        .access_token(&alice, &TokenRequestParams::default())
        .await
        .unwrap();
    assert!(!seen.contains(own_alice.secret()));
    let stats = issuer.stats();
    assert_eq!((stats.refreshes, stats.refresh_reuse_detections), (4, 0));
}

/// The user-token middleware: the session's token on the request, never the browser's
/// cookie; a per-request scope derived from the path; one renewal and retry on a 401
/// (then at most one per session per 30 s); and without a session, nothing sent.
#[tokio::test]
async fn the_user_middleware_sends_the_users_token_never_the_cookie_and_renews_once_on_a_401() {
    use axum::http::{HeaderMap, StatusCode};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let issuer = issuer().await;
    let clock = Arc::new(ManualClock::starting_now());
    let sessions = sessions(&issuer, clock.clone()).await;
    let validator = validator(&issuer).await;
    let session = log_in(&sessions).await;
    // A downstream that records what it got, and refuses the first `refuse` requests.
    /// (Authorization, Cookie) of each request.
    type Seen = Arc<std::sync::Mutex<Vec<(String, Option<String>)>>>;
    let seen: Seen = Arc::default();
    let refuse = Arc::new(AtomicUsize::new(1));
    let (recorded, refusing) = (seen.clone(), refuse.clone());
    let handler = move |headers: HeaderMap| {
        let (seen, refuse) = (recorded.clone(), refusing.clone());
        async move {
            let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
            let auth = header("authorization").unwrap_or_default();
            seen.lock().unwrap().push((auth, header("cookie")));
            let left = refuse.load(Ordering::SeqCst);
            if left > 0 {
                refuse.store(left - 1, Ordering::SeqCst);
                let mut response = axum::response::Response::new(axum::body::Body::empty());
                *response.status_mut() = StatusCode::UNAUTHORIZED;
                response.headers_mut().insert(
                    "www-authenticate",
                    r#"Bearer error="invalid_token""#.parse().unwrap(),
                );
                return response;
            }
            axum::response::Response::new(axum::body::Body::empty())
        }
    };
    let api = test_support::serve(
        axum::Router::new()
            .route("/data", axum::routing::get(handler.clone()))
            .route("/read/data", axum::routing::get(handler)),
    )
    .await;
    let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(
            UserTokenMiddleware::new(sessions.clone()).with_token_request(|request| {
                if request.url().path().starts_with("/read/") {
                    scoped(READ)
                } else {
                    TokenRequestParams::default()
                }
            }),
        )
        .build();
    let call = |path: &str| {
        http.get(format!("{}{path}", api.base))
            .header("cookie", "bff-session=the-browsers-cookie")
            .with_extension(UserSession::new(&session))
    };

    // Refused once: renewed, retried, served.
    let refreshes = issuer.stats().refreshes;
    let response = call("/data").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "one request, one retry");
    assert!(
        got.iter().all(|(_, cookie)| cookie.is_none()),
        "a cookie went upstream"
    );
    assert_ne!(got[0].0, got[1].0, "the retry carries a renewed token");
    let token = got[1].0.strip_prefix("Bearer ").unwrap();
    let principal = validator.validate(token).await.unwrap();
    assert_eq!(principal.subject(), Some("alice-sub"));
    assert_eq!(issuer.stats().refreshes, refreshes + 1);

    // The path derives a narrower scope.
    let response = call("/read/data").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let last = seen.lock().unwrap().last().unwrap().0.clone();
    let principal = validator
        .validate(last.strip_prefix("Bearer ").unwrap())
        .await
        .unwrap();
    assert!(principal.has_scope(READ) && !principal.has_scope(WRITE));

    // Refused again within 30 s: the login's token is not renewed again, the 401 stands.
    refuse.store(usize::MAX, Ordering::SeqCst);
    let refreshes = issuer.stats().refreshes;
    let before = seen.lock().unwrap().len();
    let response = call("/data").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(seen.lock().unwrap().len(), before + 1, "not retried");
    assert_eq!(issuer.stats().refreshes, refreshes);
    // 30 s on: one renewal and retry again. (The token is due by then too, so the call
    // starts with a renewal of its own: two refreshes, each with the token the one before
    // rotated.)
    clock.advance(Duration::from_secs(30));
    let response = call("/data").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(seen.lock().unwrap().len(), before + 3, "retried once");
    assert_eq!(issuer.stats().refreshes, refreshes + 2);

    // No session on the request: not sent.
    let before = seen.lock().unwrap().len();
    let e = http
        .get(format!("{}/data", api.base))
        .send()
        .await
        .unwrap_err();
    assert_eq!(UserTokenError::of(&e), Some(&UserTokenError::NoSession));
    let e = call("/data")
        .with_extension(UserSession::new("no-such-session"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(UserTokenError::of(&e), Some(&UserTokenError::NoSession));
    assert_eq!(seen.lock().unwrap().len(), before);
    assert_eq!(issuer.stats().refresh_reuse_detections, 0);
}
