//! The token manager's unit tests: flights, lifetimes and the slot map on a manual clock.

use super::*;
use crate::client::{ClientId, ClientSecret};
use crate::clock::ManualClock;
use mock_issuer::{ClientConfig, IssuerConfig, IssuerHandle, TokenProfile};

const ID: &str = "svc";
const SECRET: &str = "svc-secret-0123456789";

async fn issuer() -> IssuerHandle {
    let config = IssuerConfig::new(TokenProfile::Cognito)
        .with_resource_server("Api", ["read"])
        .with_client(ClientConfig::new(ID, SECRET, ["Api/read"]));
    mock_issuer::start(config).await.unwrap()
}

fn client(endpoint: String) -> ClientCredentialsClient {
    ClientCredentialsClient::new(endpoint, ClientId::new(ID), ClientSecret::new(SECRET))
}

fn no_retries() -> RetryPolicy {
    RetryPolicy {
        max_retries: 0,
        ..RetryPolicy::default()
    }
}

/// Waits for `condition` without a fixed sleep: yields, and backs off only while it
/// does not hold (bounded, so a broken test fails instead of hanging).
async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    for round in 0..2_000u32 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(u64::from(round.min(20)))).await;
    }
    panic!("{what}: never happened");
}

/// 100 callers, 99 dropped at different points while the request is in flight (the
/// caller that started it among them): the request completes once, and its token is
/// cached for everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flight_survives_its_callers() {
    let issuer = issuer().await;
    issuer.set_token_delay(Duration::from_millis(300));
    let manager = TokenManager::builder()
        .build()
        .unwrap()
        .register("api", client(issuer.token_endpoint()))
        .unwrap();
    let callers: Vec<_> = (0..100)
        .map(|_| {
            let manager = manager.clone();
            tokio::spawn(async move { manager.token().await })
        })
        .collect();
    until("the request is in flight", || {
        issuer.stats().token_requests == 1
    })
    .await;
    let mut callers = callers.into_iter();
    for (i, caller) in callers.by_ref().take(99).enumerate() {
        caller.abort();
        for _ in 0..i % 7 {
            tokio::task::yield_now().await;
        }
    }
    let survivor = callers.next().unwrap().await.unwrap().unwrap();
    assert_eq!(manager.token().await.unwrap(), survivor);
    assert_eq!(issuer.stats().token_requests, 1);
    assert_eq!(manager.manager().flights_started(), 1);
}

/// An issuer that says `expires_in: 0` still gets one request from concurrent callers:
/// they share the flight's outcome, and the lifetime is clamped. (The mock issuer
/// never says 0, so a token endpoint of our own does, slowly, counting requests.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expires_in_zero_does_not_defeat_single_flight() {
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    let app = axum::Router::new().route(
        "/token",
        axum::routing::post(move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(200)).await; // a slow issuer
                axum::Json(serde_json::json!({
                    "access_token": "header.payload.signature",
                    "token_type": "Bearer",
                    "expires_in": 0,
                }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/token", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let manager = TokenManager::builder()
        .build()
        .unwrap()
        .register("api", client(endpoint))
        .unwrap();
    let callers: Vec<_> = (0..50)
        .map(|_| {
            let manager = manager.clone();
            tokio::spawn(async move { manager.token().await })
        })
        .collect();
    for caller in callers {
        caller.await.unwrap().unwrap();
    }
    assert_eq!(requests.load(Ordering::SeqCst), 1);
}

/// In the refresh-ahead window with a failing issuer, a burst of calls makes one
/// background attempt per negative-cache window, not one per call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_ahead_makes_one_attempt_per_backoff_window() {
    let issuer = issuer().await;
    issuer.set_token_lifetime(Duration::from_secs(100));
    let clock = Arc::new(ManualClock::starting_now());
    let manager = TokenManager::builder()
        .clock(clock.clone())
        .lifetime_buffer(Duration::from_secs(10))
        .negative_cache(Duration::from_secs(5))
        .retry_policy(no_retries())
        .build()
        .unwrap()
        .register("api", client(issuer.token_endpoint()))
        .unwrap();
    let token = manager.token().await.unwrap();
    // Cached for 90 s; refresh ahead from 81 s.
    clock.advance(Duration::from_secs(82));
    issuer.fail_next_token_requests(1_000, 503);
    for _ in 0..20 {
        assert_eq!(manager.token().await.unwrap(), token, "still served");
    }
    // The issuer counts the failure before the flight has recorded it: wait for both,
    // so the failure's window is stamped before the clock moves.
    until("the background attempt failed", || {
        issuer.stats().token_errors == 1 && manager.manager().idle()
    })
    .await;
    for _ in 0..50 {
        assert_eq!(manager.token().await.unwrap(), token);
        tokio::task::yield_now().await;
    }
    let flights = manager.manager().flights_started();
    assert_eq!(
        issuer.stats().token_requests,
        2,
        "one attempt in the window"
    );
    // The window lapses: one more attempt, no more.
    clock.advance(Duration::from_secs(5));
    for _ in 0..20 {
        assert_eq!(manager.token().await.unwrap(), token);
    }
    until("the second attempt failed", || {
        issuer.stats().token_errors == 2 && manager.manager().idle()
    })
    .await;
    assert_eq!(manager.manager().flights_started(), flights + 1);
    assert_eq!(issuer.stats().token_requests, 3);
}

/// Per-request scopes make one slot each; idle ones are swept, so the map stays
/// bounded however many distinct keys pass through.
#[tokio::test]
async fn the_per_key_slot_map_stays_bounded() {
    // Nothing listens there: each request fails at once (connection refused).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}/token", closed.local_addr().unwrap());
    drop(closed);
    let clock = Arc::new(ManualClock::starting_now());
    let manager = TokenManager::builder()
        .clock(clock.clone())
        .retry_policy(no_retries())
        .build()
        .unwrap()
        .register("api", client(endpoint))
        .unwrap();
    for round in 0..2 {
        for i in 0..2_000 {
            let params = TokenRequestParams {
                scope: Some(ScopeSet::parse(&format!("s{round}-{i}")).unwrap()),
                ..Default::default()
            };
            assert!(manager.token_with(&params).await.is_err());
        }
        // The remembered failures lapse: their slots become idle.
        clock.advance(Duration::from_secs(6));
    }
    let slots = manager.manager().slot_count();
    assert!(slots <= 2 * MAX_IDLE_SLOTS, "{slots} slots for 4,000 keys");
}

/// Many requests rejected at once with the same token: one renewal, and every one of
/// them gets its token (none gives up because "renewed a moment ago").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_rejections_share_one_renewal() {
    let issuer = issuer().await;
    let manager = TokenManager::builder()
        .build()
        .unwrap()
        .register("api", client(issuer.token_endpoint()))
        .unwrap();
    let rejected = manager.token().await.unwrap();
    issuer.set_token_delay(Duration::from_millis(100));
    let callers: Vec<_> = (0..20)
        .map(|_| {
            let (manager, rejected) = (manager.clone(), rejected.clone());
            tokio::spawn(async move { manager.renew_rejected(&rejected).await })
        })
        .collect();
    let mut renewed = Vec::new();
    for caller in callers {
        renewed.push(
            caller
                .await
                .unwrap()
                .unwrap()
                .expect("a token to retry with"),
        );
    }
    assert!(renewed.iter().all(|t| *t == renewed[0] && *t != rejected));
    assert_eq!(
        issuer.stats().token_requests,
        2,
        "the first token, one renewal"
    );
    // Rejected again within the interval: no new request, the 401 stands.
    assert_eq!(manager.renew_rejected(&renewed[0]).await.unwrap(), None);
    assert_eq!(issuer.stats().token_requests, 2);
}

/// A registration error instead of a silent fallback: plain http to a remote host.
#[test]
fn an_insecure_token_endpoint_is_a_registration_error() {
    let error = TokenManager::builder()
        .build()
        .unwrap()
        .register("api", client("http://issuer.example/token".into()))
        .unwrap_err();
    assert!(error.to_string().contains("issuer.example"), "{error}");
    assert!(
        TokenManager::builder()
            .allow_insecure_http(true)
            .build()
            .unwrap()
            .register("api", client("http://issuer.example/token".into()))
            .is_ok()
    );
}

/// One name, one client: a second registration under a name is refused (names label
/// the metrics and the cache keys), and the first handle keeps working.
#[tokio::test]
async fn a_name_is_registered_once() {
    let issuer = issuer().await;
    let manager = TokenManager::builder().build().unwrap();
    let api = manager
        .register("api", client(issuer.token_endpoint()))
        .unwrap();
    let error = manager
        .register("api", client(issuer.token_endpoint()))
        .unwrap_err();
    assert!(
        matches!(&error, BuildError::DuplicateClient(name) if name == "api"),
        "{error}"
    );
    assert!(api.token().await.is_ok());
    assert_eq!(api.name(), "api");
    assert!(format!("{manager:?}").contains("\"api\""));
}
