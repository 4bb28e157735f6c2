//! `just bench-fleet`: a fleet simulated in one process against a real shared engine, once
//! on a single `redis-server` and once on a Redis Cluster of three masters with a replica
//! each (six local `redis-server` processes, the same binary). Not a test: it prints
//! numbers and writes `target/bench-results/fleet.{md,svg}` for BENCHMARKS.md.
//!
//! - **Token requests per token lifetime**: R replicas (each a `TokenManager` with its own
//!   `RedisTokenCache`: its own in-process tier, connection and rejection listener) x 50
//!   named clients, started (each has reached the engine once), then every replica asking
//!   for every client's token at once on a cold fleet; counted at the mock issuer, for
//!   R = 1, 10 and 100, with the library's 50 ms bound on each engine operation and with
//!   1 s. (100 replicas on two cores make 5,000 calls at once: an answer can wait for the
//!   scheduler longer than 50 ms, and a bound missed counts as "engine down, fetch it
//!   yourself", by design.) Without a shared tier the count would be R x 50.
//! - **Warm `token()`**: ns per call on a replica with the shared cache beside one with
//!   the in-memory cache, interleaved batches in one run.
//! - **A miss that reads the shared tier**: a new replica's first `token()` for a client
//!   another replica fetched (one engine read, no token request), µs, median of 250.
//! - **What the engine holds**: keys and bytes (`MEMORY USAGE`) per client token, and per
//!   user session after 20 logins.
//!
//! `BENCH_FLEET_REPLICAS` (default 100) and `BENCH_FLEET_CLIENTS` (default 50) shrink it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mock_issuer::{IssuerHandle, TokenProfile};
use plotters::prelude::*;
use shared_auth::ScopeSet;
use shared_auth::client::{
    ClientCredentialsClient, ClientId, ClientSecret, ManagedClient, RedisCacheConfig,
    RedisTokenCache, TokenManager, TokenRequestParams,
};
use test_support::{BFF_ID, BFF_SECRET, READ, concurrently, log_in_at_issuer, login_callback};

#[allow(dead_code)] // the suites' helpers this benchmark does not need
#[path = "engine.rs"]
mod engine;
use engine::Engine;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn prefix() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "fleet{}-{}:",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// The shared cache, each engine operation bounded by `timeout` (the library's default is
/// 50 ms).
fn cache(url: &str, prefix: &str, timeout: Duration) -> RedisTokenCache {
    let mut config = RedisCacheConfig::new(url)
        .with_key_prefix(prefix)
        .with_encryption_key([42u8; 32])
        .unwrap();
    config.operation_timeout = timeout;
    RedisTokenCache::new(config).unwrap()
}

/// The library's default bound on each engine operation.
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);
/// A bound no answer of a live engine misses, even with 100 replicas on two cores.
const PATIENT_TIMEOUT: Duration = Duration::from_secs(1);

/// One replica: its own manager and shared-cache client, the `clients` named clients.
fn replica(
    issuer: &IssuerHandle,
    url: &str,
    prefix: &str,
    clients: usize,
    timeout: Duration,
) -> (RedisTokenCache, Vec<ManagedClient>) {
    let cache = cache(url, prefix, timeout);
    let manager = TokenManager::builder()
        .redis_cache(cache.clone())
        .build()
        .unwrap();
    let clients = (0..clients)
        .map(|i| {
            let client = ClientCredentialsClient::new(
                issuer.token_endpoint(),
                ClientId::new(BFF_ID),
                ClientSecret::new(BFF_SECRET),
            )
            .with_scope(ScopeSet::parse(READ).unwrap());
            manager.register(format!("client-{i:02}"), client).unwrap()
        })
        .collect();
    (cache, clients)
}

struct Row {
    engine: &'static str,
    /// (replicas, token requests) on a cold fleet, engine operations bounded by 50 ms.
    requests: Vec<(usize, u64)>,
    /// The same with operations bounded by 1 s.
    patient: Vec<(usize, u64)>,
    cold_fill: Duration,
    warm_shared_ns: f64,
    warm_memory_ns: f64,
    miss_us: f64,
    token_bytes: f64,
    token_keys: usize,
    session_bytes: f64,
    session_keys: f64,
}

/// ns per warm `token()` for each of two clients, in interleaved batches.
async fn warm_pair(a: &ManagedClient, b: &ManagedClient) -> (f64, f64) {
    a.token().await.unwrap();
    b.token().await.unwrap();
    let (mut ta, mut tb) = (Duration::ZERO, Duration::ZERO);
    const BATCH: u32 = 100_000;
    for _ in 0..10 {
        let t = Instant::now();
        for _ in 0..BATCH {
            std::hint::black_box(a.token().await.unwrap());
        }
        ta += t.elapsed();
        let t = Instant::now();
        for _ in 0..BATCH {
            std::hint::black_box(b.token().await.unwrap());
        }
        tb += t.elapsed();
    }
    let per = |d: Duration| d.as_nanos() as f64 / f64::from(BATCH * 10);
    (per(ta), per(tb))
}

/// Keys and their `MEMORY USAGE` under `pattern`.
async fn usage(engine: &Engine, pattern: &str) -> (usize, u64) {
    let keys = engine.keys(pattern).await;
    let mut conn = engine.conn().await;
    let mut bytes = 0u64;
    for key in &keys {
        let used: Option<u64> = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        bytes += used.unwrap_or(0);
    }
    (keys.len(), bytes)
}

async fn measure(
    engine_name: &'static str,
    engine: &Engine,
    replicas: usize,
    clients: usize,
) -> Row {
    let url = engine.url();
    let issuer = test_support::start_issuer(TokenProfile::Cognito).await;
    let mut requests = Vec::new();
    let mut patient = Vec::new();
    let mut cold_fill = Duration::ZERO;
    let mut sizes: Vec<usize> = vec![1, 10, replicas];
    sizes.retain(|&n| n <= replicas);
    sizes.dedup();
    let mut kept = Vec::new();
    let mut kept_prefix = String::new();
    for timeout in [DEFAULT_TIMEOUT, PATIENT_TIMEOUT] {
        for &fleet_size in &sizes {
            let prefix = prefix();
            let (caches, fleet): (Vec<_>, Vec<Vec<ManagedClient>>) = (0..fleet_size)
                .map(|_| replica(&issuer, &url, &prefix, clients, timeout))
                .unzip();
            // The replicas are started: each has reached the engine once (as a replica
            // does before its traffic arrives).
            let pings = caches.iter().map(|c| {
                let c = c.clone();
                async move {
                    for _ in 0..100 {
                        if c.ping().await {
                            return;
                        }
                    }
                }
            });
            concurrently(pings).await;
            let before = issuer.stats().token_requests;
            let started = Instant::now();
            let calls = fleet.iter().flatten().map(|c| {
                let c = c.clone();
                async move { c.token().await }
            });
            let answers = concurrently(calls).await;
            let took = started.elapsed();
            assert!(answers.iter().all(Result::is_ok), "a call failed");
            let made = issuer.stats().token_requests - before;
            println!(
                "{engine_name}, operations bounded by {timeout:?}: {fleet_size} replicas x {clients} clients, cold -> {made} token requests in {took:?}"
            );
            if timeout == DEFAULT_TIMEOUT {
                requests.push((fleet_size, made));
                if fleet_size == replicas {
                    cold_fill = took;
                    kept = fleet;
                    kept_prefix = prefix;
                }
            } else {
                patient.push((fleet_size, made));
            }
        }
    }

    // Warm: a shared-cache replica's client beside an in-memory manager's.
    let memory = TokenManager::builder()
        .build()
        .unwrap()
        .register(
            "memory",
            ClientCredentialsClient::new(
                issuer.token_endpoint(),
                ClientId::new(BFF_ID),
                ClientSecret::new(BFF_SECRET),
            ),
        )
        .unwrap();
    let (warm_shared_ns, warm_memory_ns) = warm_pair(&kept[0][0], &memory).await;
    println!(
        "{engine_name}: warm token() {warm_shared_ns:.1} ns shared, {warm_memory_ns:.1} ns in memory"
    );

    // A miss that reads the shared tier: new replicas, tokens already there.
    let mut samples = Vec::new();
    for _ in 0..(250 / clients).max(1) {
        let (_, fresh) = replica(&issuer, &url, &kept_prefix, clients, DEFAULT_TIMEOUT);
        for client in &fresh {
            let t = Instant::now();
            client.token().await.unwrap();
            samples.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    samples.sort_by(f64::total_cmp);
    let miss_us = samples[samples.len() / 2];
    println!(
        "{engine_name}: a miss read from the shared tier: {miss_us:.0} µs (median of {})",
        samples.len()
    );

    let (token_keys, token_bytes) = usage(engine, &format!("{kept_prefix}*")).await;
    println!("{engine_name}: {token_keys} keys, {token_bytes} bytes for {clients} clients");
    let (session_bytes, session_keys) = sessions(engine, &url).await;
    Row {
        engine: engine_name,
        requests,
        patient,
        cold_fill,
        warm_shared_ns,
        warm_memory_ns,
        miss_us,
        token_bytes: token_bytes as f64 / clients.max(1) as f64,
        token_keys,
        session_bytes,
        session_keys,
    }
}

/// 20 logins of one user (a session each) through a BFF's `UserSessions` in the engine:
/// bytes and keys per session.
async fn sessions(engine: &Engine, url: &str) -> (f64, f64) {
    use shared_auth::client::{SessionConfig, UserLoginConfig, UserSessions};
    const REDIRECT: &str = "http://127.0.0.1:9/bff/callback";
    let issuer = mock_issuer::start(
        test_support::issuer_config(TokenProfile::Cognito)
            .with_client(
                mock_issuer::ClientConfig::new("fleet-bff", "fleet-bff-secret-0123456789", [READ])
                    .with_grant_types(["authorization_code", "refresh_token"])
                    .with_redirect_uris([REDIRECT]),
            )
            .with_user(mock_issuer::UserConfig::new(
                "alice",
                "alice-fleet-password",
            )),
    )
    .await
    .unwrap();
    let prefix = prefix();
    let mut login = UserLoginConfig::new(
        issuer.issuer(),
        ClientId::new("fleet-bff"),
        ClientSecret::new("fleet-bff-secret-0123456789"),
        REDIRECT,
    );
    login.scope = ScopeSet::parse(&format!("offline_access {READ}")).unwrap();
    let mut config = SessionConfig::default();
    config.redis = Some(
        RedisCacheConfig::new(url)
            .with_key_prefix(prefix.clone())
            .with_encryption_key([7u8; 32])
            .unwrap(),
    );
    let sessions = UserSessions::discover(login, config).await.unwrap();
    const N: usize = 20;
    for _ in 0..N {
        let (authorize, login_id) = sessions.begin_login("/").await.unwrap();
        let location = log_in_at_issuer(&authorize, "alice", "alice-fleet-password").await;
        let (session, _) = sessions
            .complete_login(&login_id, &login_callback(&location))
            .await
            .unwrap();
        sessions
            .access_token(&session, &TokenRequestParams::default())
            .await
            .unwrap();
    }
    let (keys, bytes) = usage(engine, &format!("{prefix}*")).await;
    (bytes as f64 / N as f64, keys as f64 / N as f64)
}

fn table(rows: &[Row], clients: usize) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "A fleet in one process: replicas x {clients} named clients, every replica asking for every \
         client's token at once on a cold fleet (the replicas started: each has reached the \
         engine once); token requests counted at the issuer. Without a shared tier they would \
         be replicas x {clients}. With 100 replicas in one process on two cores, the 5,000 \
         concurrent calls saturate the CPU: an engine's answer can wait longer than the \
         library's 50 ms bound for the scheduler, and a missed bound counts as \"engine down, \
         fetch it yourself\" (by design: a slow engine must not slow the callers); the 1 s \
         column removes that, and shows the protocol itself. \
         Command: `just bench-fleet`.\n\n"
    ));
    out.push_str("| engine | token requests, operations bounded by 50 ms (the default) | the same, bounded by 1 s | cold fill, largest fleet | warm `token()` shared / in memory | a miss read from the shared tier | engine keys and bytes per client token, after the run | per user session (keys) |\n");
    out.push_str("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for r in rows {
        let list = |points: &[(usize, u64)]| {
            points
                .iter()
                .map(|(n, made)| format!("{n} replicas: {made}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "| {} | {} | {} | {:.0} ms | {:.0} ns / {:.0} ns | {:.0} µs | {:.2} keys, {:.0} bytes | {:.0} bytes ({:.0}) |\n",
            r.engine,
            list(&r.requests),
            list(&r.patient),
            r.cold_fill.as_secs_f64() * 1e3,
            r.warm_shared_ns,
            r.warm_memory_ns,
            r.miss_us,
            r.token_keys as f64 / clients as f64,
            r.token_bytes,
            r.session_bytes,
            r.session_keys,
        ));
    }
    out.push_str("\nThe engine holds one key per client token (its fetch lock lives only during a fetch, or its 3 s TTL when a release timed out; its 401 tombstone 30 s after a refusal), and one per user session (its renewal lock only during a refresh): both grow linearly with clients and sessions, and every key expires.\n");
    out
}

fn chart(path: &std::path::Path, rows: &[Row], clients: usize) {
    let root = SVGBackend::new(path, (760, 420)).into_drawing_area();
    root.fill(&WHITE).unwrap();
    let max_replicas = rows
        .iter()
        .flat_map(|r| r.requests.iter().map(|p| p.0))
        .max()
        .unwrap_or(1) as f64;
    let y_max = max_replicas * clients as f64 * 1.3;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Token requests for a cold fleet, {clients} named clients"),
            ("sans-serif", 16),
        )
        .margin(14)
        .x_label_area_size(42)
        .y_label_area_size(62)
        .build_cartesian_2d(
            (0.8f64..max_replicas * 1.5).log_scale(),
            (0.8f64..y_max).log_scale(),
        )
        .unwrap();
    chart
        .configure_mesh()
        .x_desc("replicas")
        .y_desc("token requests")
        .light_line_style(BLACK.mix(0.04))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .unwrap();
    let without: Vec<(f64, f64)> = rows[0]
        .requests
        .iter()
        .map(|&(n, _)| (n as f64, (n * clients) as f64))
        .collect();
    chart
        .draw_series(LineSeries::new(without, RED.mix(0.6).stroke_width(2)))
        .unwrap()
        .label("without a shared tier (replicas x clients)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], RED.mix(0.6)));
    let series = rows.iter().flat_map(|row| {
        [
            (&row.requests, format!("{}, 50 ms bound", row.engine)),
            (&row.patient, format!("{}, 1 s bound", row.engine)),
        ]
    });
    let colors = [BLUE, CYAN, GREEN, MAGENTA];
    for ((points, label), color) in series.zip(colors) {
        let points: Vec<(f64, f64)> = points
            .iter()
            .map(|&(n, made)| (n as f64, made as f64))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .unwrap()
            .label(format!("measured, {label}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))
            .unwrap();
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .border_style(BLACK.mix(0.2))
        .background_style(WHITE.mix(0.9))
        .draw()
        .unwrap();
    root.present().unwrap();
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes --bench; nothing to parse.
    let replicas = env_or("BENCH_FLEET_REPLICAS", 100);
    let clients = env_or("BENCH_FLEET_CLIENTS", 50);
    let single = Engine::redis_server().await;
    let single_row = measure("single node", &single, replicas, clients).await;
    drop(single);
    let cluster = Engine::cluster().await;
    let cluster_row = measure(
        "cluster (3 masters, 3 replicas)",
        &cluster,
        replicas,
        clients,
    )
    .await;
    let rows = [single_row, cluster_row];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-results");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("fleet.md"), table(&rows, clients)).unwrap();
    chart(&dir.join("fleet.svg"), &rows, clients);
    println!("fleet: wrote {}/fleet.{{md,svg}}", dir.display());
}
