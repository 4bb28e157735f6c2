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
    ClientId, ClientSecret, LoginError, SessionConfig, UserLoginConfig, UserSessions,
    UserTokenError,
};
use shared_auth::server::{JwtValidator, MetadataSource, TokenProfile, ValidatorConfig};
use test_support::{concurrently, log_in_at_issuer, login_callback};

const CLIENT: &str = "web-bff";
const SECRET: &str = "web-bff-secret-0123456789";
const REDIRECT: &str = "http://127.0.0.1:9/bff/callback";
const ALICE_PASSWORD: &str = "alice-test-password";
const READ: &str = "MyService/weather_read";

async fn issuer() -> IssuerHandle {
    mock_issuer::start(
        IssuerConfig::new(IssuerProfile::Cognito)
            .with_resource_server("MyService", ["weather_read"])
            .with_client(
                ClientConfig::new(CLIENT, SECRET, [READ])
                    .with_grant_types(["authorization_code", "refresh_token"])
                    .with_redirect_uris([REDIRECT])
                    .with_post_logout_redirect_uris(["http://127.0.0.1:9/"]),
            )
            .with_user(UserConfig::new("alice", ALICE_PASSWORD).with_sub("alice-sub")),
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
    config.scope = shared_auth::ScopeSet::parse(&format!("offline_access {READ}")).unwrap();
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
    let (url, login_id) = sessions.begin_login("/after").await.unwrap();
    let location = log_in_at_issuer(&url, "alice", ALICE_PASSWORD).await;
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

    let token = sessions.access_token(&session, false).await.unwrap();
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
    let first = sessions.access_token(&session, false).await.unwrap();
    for round in 1..=3u64 {
        // Past the renewal point (a minute before expiry).
        clock.advance(RENEW_AFTER);
        let calls = (0..20).map(|_| {
            let (sessions, session) = (sessions.clone(), session.clone());
            async move { sessions.access_token(&session, false).await }
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
    let first = sessions.access_token(&session, false).await.unwrap();
    clock.advance(RENEW_AFTER);
    // Due for renewal, the issuer failing: the token still has time left, so it is served.
    issuer.fail_next_refreshes(1, 503);
    let kept = sessions.access_token(&session, false).await.unwrap();
    assert_eq!(kept.secret(), first.secret());
    // A renewal that must happen (forced) and fails: 503 for this call, session kept, and
    // the calls right after share that outcome rather than ask the issuer again.
    clock.advance(Duration::from_secs(5));
    issuer.fail_next_refreshes(1, 503);
    let e = sessions.access_token(&session, true).await.unwrap_err();
    assert!(matches!(e, UserTokenError::Unavailable(_)), "{e}");
    let asked = issuer.stats().refresh_requests;
    let e = sessions.access_token(&session, true).await.unwrap_err();
    assert!(matches!(e, UserTokenError::Unavailable(_)), "{e}");
    assert_eq!(
        sessions
            .access_token(&session, false)
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
    let e = sessions.access_token(&session, true).await.unwrap_err();
    assert!(matches!(e, UserTokenError::Unavailable(_)), "{e}");
    // The issuer back (after the back-off): renewed, same session.
    clock.advance(Duration::from_secs(5));
    let renewed = sessions.access_token(&session, false).await.unwrap();
    assert_ne!(renewed.secret(), first.secret());

    clock.advance(RENEW_AFTER);
    issuer.fail_next_refreshes(1, 400);
    let e = sessions.access_token(&session, false).await.unwrap_err();
    assert!(matches!(e, UserTokenError::Ended(_)), "{e}");
    assert_eq!(
        sessions.access_token(&session, false).await.unwrap_err(),
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
