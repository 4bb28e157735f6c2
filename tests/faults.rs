//! The system under failure: mock issuer + my-service + my-bff on real sockets, a steady
//! stream of BFF requests from the test (bounded in rate, count and time), and one fault
//! per scenario. Each scenario prints requests sent / succeeded / failed and the token
//! requests the issuer saw. Scenarios are separate tests on separate ports, so they run
//! concurrently.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // tests print their counts

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mock_issuer::{IssuerHandle, TokenProfile as IssuerProfile};
use my_bff::my_service_client::MyServiceClient;
use serde_json::json;
use shared_auth::ManualClock;
use shared_auth::client::TokenManager;
use system_tests::*;

/// Requests per second of the steady stream.
const RATE: u32 = 100;

#[derive(Debug, Default)]
struct Report {
    sent: usize,
    ok: usize,
    /// (status, content type, latency) of each failure; status 0 = no answer.
    failures: Vec<(u16, String, Duration)>,
}

impl Report {
    fn print(&self, scenario: &str, token_requests: u64) {
        println!(
            "fault scenario {scenario}: sent {} succeeded {} failed {} token requests {token_requests}",
            self.sent,
            self.ok,
            self.failures.len()
        );
    }
}

/// GETs `url` at `RATE` per second for `duration`, each request in its own task, and waits
/// for all answers.
async fn drive(url: String, duration: Duration) -> Report {
    drive_counted(url, duration, Arc::default()).await
}

/// [`drive`] in the background, returned once a second's worth of answers has come back:
/// a scenario injects its fault when the load is under way, not after a fixed time.
async fn load_under_way(url: String, duration: Duration) -> tokio::task::JoinHandle<Report> {
    let answered = Arc::new(AtomicUsize::new(0));
    let load = tokio::spawn(drive_counted(url, duration, answered.clone()));
    eventually(Duration::from_secs(10), "load under way", || async {
        answered.load(Ordering::SeqCst) >= RATE as usize
    })
    .await;
    load
}

async fn drive_counted(url: String, duration: Duration, answered: Arc<AtomicUsize>) -> Report {
    let mut tasks = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / RATE);
    let started = Instant::now();
    while started.elapsed() < duration {
        tick.tick().await;
        let (client, url, answered) = (http(), url.clone(), answered.clone());
        tasks.spawn(async move {
            let at = Instant::now();
            let outcome = match client.get(&url).send().await {
                Ok(r) => {
                    let ct = r
                        .headers()
                        .get("content-type")
                        .map(|v| v.to_str().unwrap_or("").to_owned())
                        .unwrap_or_default();
                    (r.status().as_u16(), ct, at.elapsed())
                }
                Err(_) => (0, String::new(), at.elapsed()),
            };
            answered.fetch_add(1, Ordering::SeqCst);
            outcome
        });
    }
    let mut report = Report::default();
    while let Some(result) = tasks.join_next().await {
        let (status, ct, latency) = result.unwrap();
        report.sent += 1;
        if status == 200 {
            report.ok += 1;
        } else {
            report.failures.push((status, ct, latency));
        }
    }
    report
}

struct System {
    issuer: IssuerHandle,
    service: TestServer,
    bff: TestServer,
}

impl System {
    fn url(&self) -> String {
        format!("{}/weatherforecast", self.bff.base)
    }
}

async fn system() -> System {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let service = start_service(&issuer, cognito()).await;
    let bff = start_bff(&bff_config(&issuer, &service.base)).await;
    System {
        issuer,
        service,
        bff,
    }
}

/// Restarts an issuer on the same address (new keys, as a real restart without a key file).
async fn restart_issuer(addr: SocketAddr) -> IssuerHandle {
    mock_issuer::start_on(issuer_config(IssuerProfile::Cognito), addr)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_during_load_fails_nothing() {
    let sys = system().await;
    // Short tokens, so the BFF renews during the run and gets tokens signed by the new key.
    sys.issuer.set_token_lifetime(Duration::from_secs(4));
    let load = load_under_way(sys.url(), Duration::from_secs(8)).await;
    sys.issuer.rotate_key().unwrap();
    let report = load.await.unwrap();
    report.print("1 key rotation", sys.issuer.stats().token_requests);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_second_tokens_fail_nothing_and_are_renewed_on_schedule() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    issuer.set_token_lifetime(Duration::from_secs(5));
    let service = start_service(&issuer, cognito()).await;
    // my-bff with its token manager on a manual clock: 12 s of the BFF's time pass in
    // 100 ms steps, each with a burst of requests, and no step waits on the wall clock.
    let clock = Arc::new(ManualClock::starting_now());
    let config = bff_config(&issuer, &service.base);
    let client = config.client.client(Duration::from_secs(10)).await.unwrap();
    let manager = TokenManager::builder()
        .clock(clock.clone())
        .build()
        .unwrap();
    let tokens = manager.register("my-service", client).unwrap();
    let my_service =
        MyServiceClient::new(tokens.clone(), service.base.clone(), Duration::from_secs(5));
    let bff = serve(my_bff::router(my_service, tokens)).await;
    let url = format!("{}/weatherforecast", bff.base);
    let step = Duration::from_millis(100);
    let run = Duration::from_secs(12);
    let mut report = Report::default();
    for _ in 0..(run.as_millis() / step.as_millis()) {
        let statuses = concurrently((0..RATE / 10).map(|_| {
            let url = url.clone();
            async move {
                http()
                    .get(&url)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }
        }))
        .await;
        for status in statuses {
            report.sent += 1;
            if status == 200 {
                report.ok += 1;
            } else {
                report
                    .failures
                    .push((status, String::new(), Duration::ZERO));
            }
        }
        // A refresh ahead started by this burst finishes before the clock moves on.
        eventually(Duration::from_secs(10), "flights done", || async {
            manager.flights_in_progress() == 0
        })
        .await;
        clock.advance(step);
    }
    let made = issuer.stats().token_requests;
    report.print("2 five-second tokens", made);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    // Cached for half of 5 s, renewed ahead at 90 % of that (2.25 s, so at the first step
    // at or after it: every 2.3 s): requests at 0, 2.3, 4.6, 6.9, 9.2 and 11.5 s.
    assert_eq!(made, 6, "token requests in 12 s of 5-second tokens");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuer_down_while_the_token_is_valid_fails_nothing() {
    let System {
        issuer,
        service,
        bff,
    } = system().await;
    let url = format!("{}/weatherforecast", bff.base);
    assert_eq!(http().get(&url).send().await.unwrap().status(), 200); // token cached
    let addr = issuer.addr();
    let load = tokio::spawn(drive(url, Duration::from_secs(8)));
    issuer.shutdown().await;
    tokio::time::sleep(Duration::from_secs(6)).await; // the outage
    let issuer = restart_issuer(addr).await;
    let report = load.await.unwrap();
    report.print("3 issuer down, token valid", issuer.stats().token_requests);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    drop(service);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuer_down_without_a_token_is_a_quick_503_then_recovers() {
    let System {
        issuer,
        service,
        bff,
    } = system().await;
    let url = format!("{}/weatherforecast", bff.base);
    let addr = issuer.addr();
    issuer.shutdown().await;
    let report = drive(url.clone(), Duration::from_secs(3)).await;
    report.print("4a issuer down, no token", 0);
    assert_eq!(report.ok, 0);
    for (status, ct, latency) in &report.failures {
        assert_eq!(*status, 503);
        assert_eq!(ct, "application/problem+json");
        assert!(*latency < Duration::from_secs(2), "answered in {latency:?}");
    }
    // The issuer returns; the BFF recovers by itself (after its 5 s negative cache).
    let issuer = restart_issuer(addr).await;
    eventually(Duration::from_secs(15), "BFF recovers", || async {
        http().get(&url).send().await.unwrap().status() == 200
    })
    .await;
    let after = drive(url, Duration::from_secs(2)).await;
    after.print("4b issuer back", issuer.stats().token_requests);
    assert!(after.failures.is_empty());
    assert_eq!(issuer.stats().token_requests, 1);
    drop(service);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_down_and_an_unknown_kid_flood_fail_nothing_and_respect_the_rate_limit() {
    let sys = system().await;
    assert_eq!(http().get(sys.url()).send().await.unwrap().status(), 200);
    sys.issuer.set_jwks_available(false);
    let before = sys.issuer.stats().jwks_fetches;
    let run = Duration::from_secs(8);
    let load = tokio::spawn(drive(sys.url(), run));
    // Meanwhile, 50 garbage-kid tokens per second straight at my-service.
    let started = Instant::now();
    let mut flood = 0;
    while started.elapsed() < run {
        let (header, claims) = sys.issuer.token_template(BFF_ID, &[READ]);
        let mut header = header;
        header["kid"] = json!(format!("garbage-{flood}"));
        let token = sys.issuer.sign(&header, &claims).unwrap();
        let r = http()
            .get(format!("{}/weatherforecast", sys.service.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        flood += 1;
        tokio::time::sleep(Duration::from_millis(20)).await; // flood pacing
    }
    let report = load.await.unwrap();
    let fetches = sys.issuer.stats().jwks_fetches - before;
    report.print("5 JWKS down + kid flood", sys.issuer.stats().token_requests);
    println!("fault scenario 5: {flood} garbage-kid requests, {fetches} JWKS fetches");
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    // At most one unknown-kid refresh per 10 s window.
    assert!(fetches <= 1 + run.as_secs() / 10, "{fetches} JWKS fetches");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn my_service_restart_fails_only_in_the_gap_with_problem_json() {
    let sys = system().await;
    assert_eq!(http().get(sys.url()).send().await.unwrap().status(), 200);
    let addr = sys.service.addr;
    let load = load_under_way(sys.url(), Duration::from_secs(8)).await;
    let down_at = Instant::now();
    drop(sys.service); // my-service goes away
    tokio::time::sleep(Duration::from_secs(1)).await; // the gap
    let router = my_service::build(&service_config(&sys.issuer, cognito()))
        .await
        .unwrap();
    let _service = serve_on(router, addr).await;
    let gap = down_at.elapsed();
    let report = load.await.unwrap();
    report.print("6 my-service restart", sys.issuer.stats().token_requests);
    println!("fault scenario 6: gap {gap:?}");
    for (status, ct, _) in &report.failures {
        assert!([502, 503].contains(status), "status {status}");
        assert_eq!(ct, "application/problem+json");
    }
    // Only the gap fails: at most its length times the rate, plus in-flight slack.
    let gap_budget = (gap.as_secs_f64() * f64::from(RATE)) as usize + 20;
    assert!(
        report.failures.len() <= gap_budget,
        "{} failures for a {gap:?} gap",
        report.failures.len()
    );
    assert!(report.ok > report.sent / 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_issuer_and_500_concurrent_cold_requests_make_one_token_request() {
    let sys = system().await;
    sys.issuer.set_token_delay(Duration::from_secs(3));
    let url = sys.url();
    let statuses = concurrently((0..500).map(|_| {
        let url = url.clone();
        async move {
            http()
                .get(&url)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    }))
    .await;
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let report = Report {
        sent: 500,
        ok,
        failures: vec![],
    };
    report.print(
        "7 slow issuer, 500 concurrent",
        sys.issuer.stats().token_requests,
    );
    assert_eq!(
        ok,
        500,
        "{:?}",
        statuses.iter().filter(|s| **s != 200).collect::<Vec<_>>()
    );
    assert_eq!(sys.issuer.stats().token_requests, 1);
}
