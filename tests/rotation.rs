//! Key rotation under load: the most common complaint about JWT bearer validation
//! (dotnet/aspnetcore#28948: the issuer rotates its key and requests fail until the API
//! restarts), exercised end to end on real sockets.
//!
//! The mock issuer, my-service (refreshing its keys every second) and my-bff run while
//! bounded load flows: BFF requests, and callers that go straight to my-service with tokens
//! the test fetched. Meanwhile the issuer, in phases:
//! - (a) rotates: a new key signs; the first token with the new `kid` is accepted at once
//!   (an on-demand JWKS fetch), and the BFF renews onto the new key by itself;
//! - (b) withdraws the old key: its tokens, cached as validated, are refused within one
//!   refresh;
//! - (c) replaces the material under the current `kid`: its tokens are refused within one
//!   refresh too, although the `kid` did not change (only the validated-token cache's
//!   invalidation can refuse them); new tokens are accepted after that refresh, and the BFF,
//!   whose token was one of them, recovers by renewing;
//! - (d) serves no JWKS for two refresh attempts: the last good keys keep validating;
//! - (e) receives a flood of random `kid`s: each is refused, and the JWKS fetches stay
//!   within what the refresh interval and the unknown-`kid` rate limit allow.
//!
//! No request with a valid token may be refused at any point. The test prints its counts.
//! One test in its own binary: it reads my-service's `/metrics`, and the Prometheus
//! recorder is global to the process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // tests print their counts

use std::hash::BuildHasher as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use mock_issuer::{IssuerHandle, TokenProfile as IssuerProfile};
use serde_json::json;
use system_tests::*;

/// my-service's background JWKS refresh interval (jittered up to 10 % longer).
const REFRESH: Duration = Duration::from_secs(1);
/// my-service's minimum time between refreshes triggered by unknown `kid`s.
const UNKNOWN_KID_MIN: Duration = Duration::from_secs(1);
/// "Within one refresh": the longest jittered interval, plus time for the refresh itself and
/// for the test to look again. Shorter than two intervals.
const ONE_REFRESH: Duration = Duration::from_millis(1_900);
/// How long the issuer takes to answer a token request. A real one answers over a network
/// in tens of milliseconds; the mock on loopback in one or two, which would leave the
/// window of a token renewal, and whatever races it, to chance.
const TOKEN_LATENCY: Duration = Duration::from_millis(50);
/// Each load worker sends at most one request per tick...
const TICK: Duration = Duration::from_millis(10);
/// ...and at most this many in all (the test stops them well before).
const MAX_PER_WORKER: u32 = 4_000;
/// Load workers of each kind (BFF callers, direct callers).
const WORKERS: usize = 2;
/// Random-`kid` tokens in phase (e), one per tick.
const FLOOD: u32 = 300;
/// Requests of each kind that must succeed in a phase before it ends.
const PER_PHASE: u64 = 40;

const PHASES: [&str; 6] = [
    "warm-up",
    "a rotate",
    "b withdraw",
    "c replace",
    "d JWKS down",
    "e kid flood",
];

/// The load's shared state: which direct-caller tokens are valid now, and the counts.
struct Load {
    stop: AtomicBool,
    phase: AtomicUsize,
    /// Tokens the direct callers send; each must be accepted while it is listed here. A
    /// token is removed *before* the issuer invalidates it.
    valid: RwLock<Arc<Vec<String>>>,
    bff_ok: [AtomicU64; 6],
    direct_ok: [AtomicU64; 6],
    bff_failed: AtomicU64,
    direct_failed: AtomicU64,
    /// Refusals of tokens removed from `valid` while their request was in flight:
    /// expected, not failures.
    retired_in_flight: AtomicU64,
    failures: Mutex<Vec<String>>,
}

impl Load {
    fn new(tokens: &[String]) -> Self {
        Load {
            stop: AtomicBool::new(false),
            phase: AtomicUsize::new(0),
            valid: RwLock::new(Arc::new(tokens.to_vec())),
            bff_ok: Default::default(),
            direct_ok: Default::default(),
            bff_failed: AtomicU64::new(0),
            direct_failed: AtomicU64::new(0),
            retired_in_flight: AtomicU64::new(0),
            failures: Mutex::default(),
        }
    }

    fn phase(&self) -> usize {
        self.phase.load(Ordering::SeqCst)
    }

    fn enter(&self, phase: usize) {
        self.phase.store(phase, Ordering::SeqCst);
    }

    fn valid(&self) -> Arc<Vec<String>> {
        self.valid.read().unwrap().clone()
    }

    fn add(&self, tokens: &[String]) {
        let mut valid = self.valid.write().unwrap();
        let mut next = valid.to_vec();
        next.extend_from_slice(tokens);
        *valid = Arc::new(next);
    }

    fn retire(&self, tokens: &[String]) {
        let mut valid = self.valid.write().unwrap();
        let next = valid.iter().filter(|t| !tokens.contains(t)).cloned();
        *valid = Arc::new(next.collect());
    }

    fn fail(&self, what: String) {
        self.failures.lock().unwrap().push(what);
    }

    /// Whether both kinds of caller succeeded `PER_PHASE` times in the current phase.
    fn phase_ran(&self) -> bool {
        let phase = self.phase();
        self.bff_ok[phase].load(Ordering::SeqCst) >= PER_PHASE
            && self.direct_ok[phase].load(Ordering::SeqCst) >= PER_PHASE
    }
}

fn pacer() -> tokio::time::Interval {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

/// `GET {bff}/weatherforecast`, one at a time; every answer must be 200.
async fn bff_caller(load: Arc<Load>, url: String) {
    let mut tick = pacer();
    for _ in 0..MAX_PER_WORKER {
        tick.tick().await;
        if load.stop.load(Ordering::SeqCst) {
            break;
        }
        let status = http().get(&url).send().await.map(|r| r.status().as_u16());
        let phase = load.phase();
        if let Ok(200) = status {
            load.bff_ok[phase].fetch_add(1, Ordering::SeqCst);
        } else {
            load.bff_failed.fetch_add(1, Ordering::SeqCst);
            load.fail(format!("BFF, phase {}: {status:?}", PHASES[phase]));
        }
    }
}

/// `GET {service}/weatherforecast` with the valid tokens in turn; each must be accepted.
async fn direct_caller(load: Arc<Load>, url: String, mut next: usize) {
    let mut tick = pacer();
    for _ in 0..MAX_PER_WORKER {
        tick.tick().await;
        if load.stop.load(Ordering::SeqCst) {
            break;
        }
        let valid = load.valid();
        if valid.is_empty() {
            continue;
        }
        let token = &valid[next % valid.len()];
        next += 1;
        let status = http()
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .map(|r| r.status().as_u16());
        let phase = load.phase();
        if let Ok(200) = status {
            load.direct_ok[phase].fetch_add(1, Ordering::SeqCst);
        } else if !load.valid().contains(token) {
            load.retired_in_flight.fetch_add(1, Ordering::SeqCst);
        } else {
            load.direct_failed.fetch_add(1, Ordering::SeqCst);
            load.fail(format!(
                "direct, phase {}, kid {}: {status:?}",
                PHASES[phase],
                kid(token)
            ));
        }
    }
}

/// What my-service answers `token`: the status, and whether it carries
/// `WWW-Authenticate: Bearer error="invalid_token"`.
async fn answer(service: &TestServer, token: &str) -> (u16, bool) {
    let response = http()
        .get(format!("{}/weatherforecast", service.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer") && v.contains("error=\"invalid_token\""));
    (response.status().as_u16(), challenge)
}

/// Whether my-service refuses `token` as RFC 6750 says (401, `invalid_token`).
async fn refused(service: &TestServer, token: &str) -> bool {
    answer(service, token).await == (401, true)
}

async fn all_refused(service: &TestServer, tokens: &[String]) -> bool {
    for token in tokens {
        if !refused(service, token).await {
            return false;
        }
    }
    true
}

fn kid(token: &str) -> String {
    decode_part(token, 0)["kid"].as_str().unwrap().to_owned()
}

/// The test's own tokens: two for the BFF's client, two for the admin client. Counts the
/// BFF-client ones in `own`, so the BFF's own token requests can be told apart.
async fn fetch_tokens(issuer: &IssuerHandle, own: &mut u64) -> Vec<String> {
    let both = format!("{READ} {WRITE}");
    let mut tokens = Vec::new();
    for _ in 0..2 {
        tokens.push(fetch_token(issuer, BFF_ID, BFF_SECRET, Some(READ)).await);
        tokens.push(fetch_token(issuer, ADMIN_ID, ADMIN_SECRET, Some(&both)).await);
        *own += 1;
    }
    tokens
}

/// Tokens the issuer gave the BFF itself (not the test).
fn bff_renewals(issuer: &IssuerHandle, own: u64) -> u64 {
    issuer
        .stats()
        .tokens_issued
        .get(BFF_ID)
        .copied()
        .unwrap_or(0)
        - own
}

/// The sum of the samples of counter `name` whose labels include `labels`, from
/// my-service's `/metrics` (the BFF's counters are there too: one process, one recorder).
async fn counter(service: &TestServer, name: &str, labels: &[(&str, &str)]) -> u64 {
    let text = http()
        .get(format!("{}/metrics", service.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut sum = 0.0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (metric, label_text) = series.split_once('{').unwrap_or((series, ""));
        if metric == name
            && labels
                .iter()
                .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")))
        {
            sum += value.parse::<f64>().unwrap();
        }
    }
    sum as u64
}

/// JWKS fetches as the issuer counted them, and my-service's refreshes by kind.
#[derive(Debug, Clone, Copy, Default)]
struct Fetches {
    /// Requests the JWKS endpoint received.
    issuer: u64,
    /// Background refreshes.
    interval: u64,
    /// Refreshes for a token whose `kid` was not loaded.
    on_demand: u64,
    /// Refreshes of any kind that failed.
    failed: u64,
}

impl Fetches {
    async fn now(issuer: &IssuerHandle, service: &TestServer) -> Self {
        const NAME: &str = "shared_auth_jwks_refreshes_total";
        Fetches {
            issuer: issuer.stats().jwks_fetches,
            interval: counter(service, NAME, &[("reason", "interval")]).await,
            on_demand: counter(service, NAME, &[("reason", "unknown_kid")]).await,
            failed: counter(service, NAME, &[("outcome", "failure")]).await,
        }
    }

    fn since(self, earlier: Fetches) -> Fetches {
        Fetches {
            issuer: self.issuer - earlier.issuer,
            interval: self.interval - earlier.interval,
            on_demand: self.on_demand - earlier.on_demand,
            failed: self.failed - earlier.failed,
        }
    }
}

/// The most refreshes that can start in `elapsed` when they start at least `gap` apart.
fn at_most(elapsed: Duration, gap: Duration) -> u64 {
    (elapsed.as_millis() / gap.as_millis()) as u64 + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_under_load_refuses_no_valid_token_and_every_withdrawn_one() {
    let started = Instant::now();
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    issuer.set_token_delay(TOKEN_LATENCY);
    let mut own = 0;
    // The direct callers' first tokens: the issuer's default hour, signed by the first key.
    let first = fetch_tokens(&issuer, &mut own).await;
    let first_kid = kid(&first[0]);
    // The BFF's tokens live 4 s (cached for 2 s), so it renews by itself after the
    // rotation and holds no token of the old key when that key is withdrawn: a renewal
    // after a 401 there would use up the one per 30 s (REJECTION_RENEWAL_INTERVAL) that
    // phase (c) needs.
    issuer.set_token_lifetime(Duration::from_secs(4));
    let mut config = service_config(&issuer, cognito());
    config.validator.refresh_interval = REFRESH;
    config.validator.unknown_kid_min_interval = UNKNOWN_KID_MIN;
    let service = serve(my_service::build(&config).await.unwrap()).await;
    let service_up = Instant::now();
    let bff = start_bff(&bff_config(&issuer, &service.base)).await;

    let load = Arc::new(Load::new(&first));
    let mut workers = tokio::task::JoinSet::new();
    for i in 0..WORKERS {
        let url = format!("{}/weatherforecast", bff.base);
        workers.spawn(bff_caller(load.clone(), url));
        let url = format!("{}/weatherforecast", service.base);
        workers.spawn(direct_caller(load.clone(), url, i));
    }
    let phase_ran = || async {
        let phase = PHASES[load.phase()];
        eventually(Duration::from_secs(5), phase, || async { load.phase_ran() }).await;
    };
    let mut marks = vec![("start", Fetches::now(&issuer, &service).await)];
    phase_ran().await;
    marks.push((PHASES[0], Fetches::now(&issuer, &service).await));

    // (a) A new key signs. Its first token is accepted at once: my-service fetches the JWKS
    // for the unknown kid.
    load.enter(1);
    let new_kid = issuer.rotate_key().unwrap();
    issuer.set_token_lifetime(Duration::from_secs(3600));
    let bff_before = bff_renewals(&issuer, own);
    let rotated = fetch_tokens(&issuer, &mut own).await;
    assert_ne!(new_kid, first_kid);
    assert!(rotated.iter().all(|t| kid(t) == new_kid));
    assert_eq!(answer(&service, &rotated[0]).await, (200, false));
    load.add(&rotated);
    // The BFF's next token (an hour long) is signed by the new key.
    eventually(Duration::from_secs(5), "the BFF renews", || async {
        bff_renewals(&issuer, own) > bff_before
    })
    .await;
    phase_ran().await;
    marks.push((PHASES[1], Fetches::now(&issuer, &service).await));

    // (b) The old key is withdrawn. Its tokens were validated and cached; the next refresh
    // refuses them.
    load.enter(2);
    load.retire(&first);
    issuer.drop_previous_keys();
    let withdrawn_at = Instant::now();
    eventually(ONE_REFRESH, "tokens of the withdrawn key refused", || {
        all_refused(&service, &first)
    })
    .await;
    let withdrawn_refused_in = withdrawn_at.elapsed();
    phase_ran().await;
    assert!(all_refused(&service, &first).await, "refused for good");
    marks.push((PHASES[2], Fetches::now(&issuer, &service).await));

    // (c) New material under the current kid. The kid is known, so nothing but the
    // validated-token cache's invalidation on the next refresh can refuse the cached tokens.
    load.enter(3);
    load.retire(&rotated);
    issuer.replace_current_key_material().unwrap();
    let replaced_at = Instant::now();
    eventually(
        ONE_REFRESH,
        "tokens of the replaced material refused",
        || all_refused(&service, &rotated),
    )
    .await;
    let replaced_refused_in = replaced_at.elapsed();
    // Refused, so the refresh has loaded the new material: new tokens are accepted. Fetched
    // only now: until that refresh a token signed with the new material is refused too (its
    // kid is known, so nothing fetches the JWKS sooner).
    let replacing = fetch_tokens(&issuer, &mut own).await;
    for token in &replacing {
        assert_eq!(kid(token), new_kid, "the kid is reused");
        assert_eq!(answer(&service, token).await, (200, false));
    }
    load.add(&replacing);
    phase_ran().await;
    marks.push((PHASES[3], Fetches::now(&issuer, &service).await));

    // (d) No JWKS for two refresh attempts. What this exercises is refreshes failing (the
    // last good keys kept, the validated tokens kept, the backoff), not wall time, so two
    // one-second intervals stand in for a long outage. Tokens never seen before are
    // verified against the last good keys meanwhile.
    load.enter(4);
    let down_from = Fetches::now(&issuer, &service).await;
    issuer.set_jwks_available(false);
    let outage_at = Instant::now();
    let unseen = fetch_tokens(&issuer, &mut own).await;
    for token in &unseen {
        assert_eq!(answer(&service, token).await, (200, false));
    }
    load.add(&unseen);
    // A refusal is still a 401, not a 503: keys are loaded. (Known kid: no on-demand fetch.)
    assert!(refused(&service, &rotated[0]).await);
    eventually(Duration::from_secs(5), "two refreshes fail", || async {
        Fetches::now(&issuer, &service)
            .await
            .since(down_from)
            .failed
            >= 2
    })
    .await;
    phase_ran().await;
    issuer.set_jwks_available(true);
    let outage = outage_at.elapsed();
    let failed = Fetches::now(&issuer, &service)
        .await
        .since(down_from)
        .failed;
    // Back: a refresh succeeds before the flood.
    eventually(
        Duration::from_secs(5),
        "a refresh after the outage",
        || async {
            let since = Fetches::now(&issuer, &service).await.since(down_from);
            since.interval + since.on_demand > since.failed
        },
    )
    .await;
    marks.push((PHASES[4], Fetches::now(&issuer, &service).await));

    // (e) Random kids, one per tick, straight at my-service.
    load.enter(5);
    // The window measured encloses the two snapshots, so the bounds hold for what they count.
    let flood_at = Instant::now();
    let flood_from = Fetches::now(&issuer, &service).await;
    let random = std::hash::RandomState::new();
    let mut tick = pacer();
    for i in 0..FLOOD {
        tick.tick().await;
        let (mut header, claims) = issuer.token_template(ADMIN_ID, &[READ]);
        header["kid"] = json!(format!("{:016x}", random.hash_one(i)));
        let token = issuer.sign(&header, &claims).unwrap();
        assert!(refused(&service, &token).await, "random kid {i} accepted");
    }
    let in_flood = Fetches::now(&issuer, &service).await.since(flood_from);
    let flood = flood_at.elapsed();
    phase_ran().await;
    marks.push((PHASES[5], Fetches::now(&issuer, &service).await));

    load.stop.store(true, Ordering::SeqCst);
    while let Some(worker) = workers.join_next().await {
        worker.unwrap();
    }
    let total = Fetches::now(&issuer, &service).await.since(marks[0].1);
    let run = service_up.elapsed();
    let retries = counter(&service, "shared_auth_unauthorized_retries_total", &[]).await;
    let stats = issuer.stats();

    for (i, name) in PHASES.iter().enumerate() {
        let since = marks[i + 1].1.since(marks[i].1);
        println!(
            "rotation phase {name}: BFF ok {} direct ok {}; JWKS fetches {} (my-service: interval {} on-demand {} failed {})",
            load.bff_ok[i].load(Ordering::SeqCst),
            load.direct_ok[i].load(Ordering::SeqCst),
            since.issuer,
            since.interval,
            since.on_demand,
            since.failed
        );
    }
    println!(
        "rotation: BFF failed {} direct failed {}; refusals of tokens retired in flight {}; BFF retries after a 401 {retries}",
        load.bff_failed.load(Ordering::SeqCst),
        load.direct_failed.load(Ordering::SeqCst),
        load.retired_in_flight.load(Ordering::SeqCst)
    );
    println!(
        "rotation: withdrawn key refused after {withdrawn_refused_in:?}, replaced material after {replaced_refused_in:?}"
    );
    println!("rotation: JWKS down {outage:?}, {failed} refreshes failed");
    println!(
        "rotation: {FLOOD} random kids in {flood:?}: {} JWKS fetches, {} on-demand (at most {}), {} interval (at most {})",
        in_flood.issuer,
        in_flood.on_demand,
        at_most(flood, UNKNOWN_KID_MIN),
        in_flood.interval,
        at_most(flood, REFRESH)
    );
    println!(
        "rotation: {} JWKS fetches in {run:?} after start, {} on-demand (at most {}), {} interval (at most {}); {} discovery fetches, {} token requests (BFF's {}); test {:?}",
        total.issuer,
        total.on_demand,
        at_most(run, UNKNOWN_KID_MIN),
        total.interval,
        at_most(run, REFRESH),
        stats.discovery_fetches,
        stats.token_requests,
        bff_renewals(&issuer, own),
        started.elapsed()
    );

    let failures = load.failures.lock().unwrap();
    assert!(failures.is_empty(), "valid tokens refused: {failures:#?}");
    // The flood reached the rate limit: after the outage's two failures the gate stays
    // closed for twice the minimum interval, less than the flood lasts.
    assert!(in_flood.on_demand >= 1, "no on-demand refresh in the flood");
    assert!(
        in_flood.on_demand <= at_most(flood, UNKNOWN_KID_MIN),
        "{in_flood:?} in {flood:?}"
    );
    assert!(
        in_flood.interval <= at_most(flood, REFRESH),
        "{in_flood:?} in {flood:?}"
    );
    // Every fetch the issuer saw is one of those (one more may be in flight at each end).
    assert!(
        in_flood.issuer <= in_flood.on_demand + in_flood.interval + 2,
        "{in_flood:?}"
    );
    assert!(
        total.on_demand <= at_most(run, UNKNOWN_KID_MIN),
        "{total:?} in {run:?}"
    );
    assert!(
        total.interval <= at_most(run, REFRESH),
        "{total:?} in {run:?}"
    );
    assert!(
        total.issuer <= total.on_demand + total.interval + 2,
        "{total:?}"
    );
}
