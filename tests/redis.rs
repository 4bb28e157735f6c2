//! One token per fleet: token managers ("replicas": separate instances, separate
//! in-process caches) sharing a real engine, and the other fleet-wide structures (user
//! sessions, the DPoP replay store) with them. Each test runs on each engine it names at
//! the bottom (`redis7::...`, `valkey::...`, `cluster::...`):
//! - Redis 7.0 in a container (testcontainers; Docker, or podman as `.ci/run` sets it up:
//!   `infra/containers/setup-container-engine.sh`, `just containers`);
//! - Valkey 8.1 as a local process (`infra/engines/valkey.sh` provides it);
//! - a Redis Cluster of three masters with a replica each, six local processes.
//!
//! Everything listens on 127.0.0.1 only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // tests print their counts

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mock_issuer::{IssuerHandle, TokenProfile as IssuerProfile};
use redis::AsyncCommands as _;
use shared_auth::client::{
    AccessToken, ClientCredentialsClient, ClientId, ClientSecret, ManagedClient, RedisCacheConfig,
    RedisTokenCache, TokenError, TokenManager, TokenRequestParams,
};
use system_tests::*;

#[path = "engine.rs"]
mod engine;
use engine::Engine;

#[path = "dpop_prover.rs"]
mod dpop_prover;

/// A prefix of its own per test, so tests never see each other's keys.
fn prefix() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "t{}-{}:",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

const SEAL: [u8; 32] = [42; 32];

fn cache(redis: &Engine, prefix: &str) -> RedisTokenCache {
    RedisTokenCache::new(
        RedisCacheConfig::new(redis.url())
            .with_key_prefix(prefix)
            .with_encryption_key(SEAL)
            .unwrap(),
    )
    .unwrap()
}

/// One replica's two clients: same credentials and scope, two names (so two cache keys).
#[derive(Clone)]
struct Replica {
    api: ManagedClient,
    api_b: ManagedClient,
}

impl Replica {
    async fn token(&self) -> Result<AccessToken, TokenError> {
        self.api.token().await
    }
}

/// One replica: a token manager of its own with its own Redis-backed cache.
fn replica(issuer: &IssuerHandle, cache: RedisTokenCache) -> Replica {
    let client = |scope: &str| {
        ClientCredentialsClient::new(
            issuer.token_endpoint(),
            ClientId::new(BFF_ID),
            ClientSecret::new(BFF_SECRET),
        )
        .with_scope(shared_auth::ScopeSet::parse(scope).unwrap())
    };
    let manager = TokenManager::builder().redis_cache(cache).build().unwrap();
    Replica {
        api: manager.register("api", client(READ)).unwrap(),
        api_b: manager.register("api-b", client(READ)).unwrap(),
    }
}

fn requests(issuer: &IssuerHandle) -> u64 {
    issuer.stats().token_requests
}

async fn four_replicas_and_a_thousand_callers_make_one_token_request(redis: Engine) {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    // The request is slow, so every caller of every replica arrives while it is in flight.
    issuer.set_token_delay(Duration::from_millis(300));
    let prefix = prefix();
    let replicas: Vec<Replica> = (0..4)
        .map(|_| replica(&issuer, cache(&redis, &prefix)))
        .collect();
    let calls = replicas.iter().flat_map(|m| {
        (0..250).map(move |_| {
            let m = m.clone();
            async move { m.token().await }
        })
    });
    let tokens = concurrently(calls).await;
    let made = requests(&issuer);
    println!("4 replicas x 250 callers on a cold cache -> {made} token request(s)");
    assert_eq!(made, 1);
    assert_eq!(tokens.len(), 1000);
    let first = tokens[0].as_ref().unwrap();
    assert!(tokens.iter().all(|t| t.as_ref().unwrap() == first));
    // One entry, and the lock was released once the token was stored.
    let keys = redis.keys(&prefix).await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(
        keys[0].starts_with(&format!("{prefix}token:api:")),
        "{keys:?}"
    );
    assert_every_key_expires(&redis, &prefix).await;
}

async fn a_replica_started_later_makes_no_request(redis: Engine) {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let prefix = prefix();
    let first = replica(&issuer, cache(&redis, &prefix));
    let token = first.token().await.unwrap();
    assert_eq!(requests(&issuer), 1);

    let second = replica(&issuer, cache(&redis, &prefix));
    assert_eq!(second.token().await.unwrap(), token);
    println!(
        "second replica after the first -> {} more token request(s)",
        requests(&issuer) - 1
    );
    assert_eq!(requests(&issuer), 1);
}

async fn the_redis_entry_lives_as_long_as_the_token_is_cached(redis: Engine) {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    issuer.set_token_lifetime(Duration::from_secs(3600));
    let prefix = prefix();
    let manager = replica(&issuer, cache(&redis, &prefix));
    manager.token().await.unwrap();
    let keys = redis.keys(&prefix).await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    let ttl_ms: i64 = redis.conn().await.pttl(&keys[0]).await.unwrap();
    // Cached life = 3600 s - the 60 s buffer.
    let expected = 3_540_000;
    println!("Redis PTTL {ttl_ms} ms; cached life {expected} ms");
    assert!(
        (expected - 5_000..=expected).contains(&ttl_ms),
        "PTTL {ttl_ms}"
    );
}

async fn sealed_entries_hide_the_token_and_refuse_tampering_and_moves(redis: Engine) {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let prefix = prefix();
    let manager = replica(&issuer, cache(&redis, &prefix));
    let token_a = manager.token().await.unwrap();
    manager.api_b.token().await.unwrap();
    assert_eq!(requests(&issuer), 2);
    let mut conn = redis.conn().await;
    let keys = redis.keys(&prefix).await;
    assert_eq!(keys.len(), 2);
    let (key_a, key_b) = if keys[0].contains(":api:") {
        (keys[0].clone(), keys[1].clone())
    } else {
        (keys[1].clone(), keys[0].clone())
    };

    // Neither the token nor its claims are readable in Redis.
    let raw: Vec<u8> = conn.get(&key_a).await.unwrap();
    let text = String::from_utf8_lossy(&raw);
    let payload = token_a.secret().split('.').nth(1).unwrap();
    for secret in [token_a.secret(), payload, BFF_ID, READ, "access_token"] {
        assert!(!text.contains(secret), "{secret:?} readable in Redis");
    }
    let claims = decode_part(token_a.secret(), 1);
    assert!(!text.contains(claims["jti"].as_str().unwrap()));

    // An altered entry is a miss: a new replica requests a token of its own.
    let mut altered = raw.clone();
    let middle = altered.len() / 2;
    altered[middle] ^= 0x01;
    let _: () = conn.set(&key_a, altered).await.unwrap();
    let fresh = replica(&issuer, cache(&redis, &prefix));
    let got = fresh.token().await.unwrap();
    assert_ne!(got, token_a);
    assert_eq!(requests(&issuer), 3);
    verify(got.secret(), &jwks(&issuer).await, issuer.issuer()).unwrap();

    // An entry moved under another client's key is a miss too.
    let raw_a: Vec<u8> = conn.get(&key_a).await.unwrap();
    let _: () = conn.set(&key_b, raw_a).await.unwrap();
    let fresh = replica(&issuer, cache(&redis, &prefix));
    let got_b = fresh.api_b.token().await.unwrap();
    assert_ne!(
        got_b, got,
        "a token moved to another key must not be served"
    );
    assert_eq!(requests(&issuer), 4);

    // Without the key, a reader gets nothing either.
    let other_key = RedisTokenCache::new(
        RedisCacheConfig::new(redis.url())
            .with_key_prefix(&prefix)
            .with_encryption_key([7; 32])
            .unwrap(),
    )
    .unwrap();
    let outsider = replica(&issuer, other_key);
    assert_ne!(outsider.token().await.unwrap(), got);
    assert_eq!(requests(&issuer), 5);
}

/// Waits (bounded) until every cache reaches Redis again.
async fn until_reachable(caches: &[RedisTokenCache]) {
    for cache in caches {
        eventually(Duration::from_secs(15), "Redis back", || cache.ping()).await;
    }
}

fn with_scope(scope: &str) -> TokenRequestParams {
    TokenRequestParams {
        scope: Some(shared_auth::ScopeSet::parse(scope).unwrap()),
        ..TokenRequestParams::default()
    }
}

/// Two replicas sharing `redis` under `prefix`, each with the client's token (one request).
async fn warm_fleet(
    redis: &Engine,
    issuer: &IssuerHandle,
    prefix: &str,
) -> (Vec<RedisTokenCache>, Vec<Replica>) {
    let caches: Vec<RedisTokenCache> = (0..2).map(|_| cache(redis, prefix)).collect();
    let replicas: Vec<Replica> = caches.iter().map(|c| replica(issuer, c.clone())).collect();
    for r in &replicas {
        r.token().await.unwrap();
    }
    (caches, replicas)
}

async fn redis_down_costs_no_call_and_redis_back_shares_again(mut redis: Engine) {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let prefix = prefix();
    let (caches, replicas) = warm_fleet(&redis, &issuer, &prefix).await;
    assert_eq!(requests(&issuer), 1, "shared while Redis is up");

    // Rounds of concurrent calls on both replicas run on while the engine stops: the warm
    // token, and from the round after the stop a key neither replica has (each asks the
    // issuer for it once, itself).
    let (rounds_tx, mut rounds) = tokio::sync::mpsc::unbounded_channel::<(usize, usize, bool)>();
    let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let caller = {
        let (replicas, stopped, done) = (replicas.clone(), stopped.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::SeqCst) {
                let new_key = stopped.load(Ordering::SeqCst);
                let calls = replicas.iter().flat_map(|r| {
                    (0..10).map(move |i| {
                        let r = r.clone();
                        async move {
                            if new_key && i == 0 {
                                r.api.token_with(&with_scope("")).await
                            } else {
                                r.token().await
                            }
                        }
                    })
                });
                let answers = concurrently(calls).await;
                let failed = answers.iter().filter(|a| a.is_err()).count();
                let _ = rounds_tx.send((answers.len(), failed, new_key));
            }
        })
    };
    let (mut calls, mut failed, mut after_stop) = (0, 0, 0);
    let mut round = |(n, f, stopped): (usize, usize, bool)| {
        calls += n;
        failed += f;
        usize::from(stopped)
    };
    round(rounds.recv().await.unwrap());
    let started = Instant::now();
    redis.stop().await;
    stopped.store(true, Ordering::SeqCst);
    // Five whole rounds begun after the stop.
    while after_stop < 5 {
        after_stop += round(rounds.recv().await.unwrap());
    }
    done.store(true, Ordering::SeqCst);
    caller.await.unwrap();
    while let Ok(r) = rounds.try_recv() {
        round(r);
    }
    let down_requests = requests(&issuer) - 1;
    println!(
        "Redis stopped during the calls: {calls} calls, {failed} failed, {down_requests} token request(s), {:?}",
        started.elapsed()
    );
    assert_eq!(failed, 0);
    assert_eq!(
        down_requests, 2,
        "one per replica for the new key while Redis is down"
    );

    redis.start().await;
    until_reachable(&caches).await;
    let before = requests(&issuer);
    // A client neither replica has a token for yet, from both at once.
    let calls = replicas.iter().flat_map(|r| {
        (0..20).map(move |_| {
            let r = r.clone();
            async move { r.api_b.token().await }
        })
    });
    let answers = concurrently(calls).await;
    let after = requests(&issuer) - before;
    println!("Redis back: 2 replicas x 20 calls on a new key -> {after} token request(s)");
    assert!(answers.iter().all(Result::is_ok));
    assert_eq!(after, 1, "shared again once Redis is back");
}

async fn a_crashed_lock_holder_delays_the_others_by_one_lock_lifetime(redis: Engine) {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let prefix = prefix();
    let lock_ttl = Duration::from_secs(1);
    let short_lock = || {
        let mut config = RedisCacheConfig::new(redis.url())
            .with_key_prefix(&prefix)
            .with_encryption_key(SEAL)
            .unwrap();
        config.lock_ttl = lock_ttl;
        RedisTokenCache::new(config).unwrap()
    };

    // Replica A runs in a runtime of its own, takes the lock and hangs in its token
    // request...
    issuer.set_token_delay(Duration::from_secs(60));
    let replica_a = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let a = {
        let _guard = replica_a.enter();
        replica(&issuer, short_lock())
    };
    let a_thread = {
        let a = a.clone();
        let handle = replica_a.handle().clone();
        std::thread::spawn(move || handle.block_on(async move { a.token().await }))
    };
    eventually(
        Duration::from_secs(10),
        "replica A sends its request",
        || async { requests(&issuer) > 0 },
    )
    .await;
    eventually(
        Duration::from_secs(10),
        "replica A holds the lock",
        || async {
            redis
                .keys(&prefix)
                .await
                .iter()
                .any(|k| k.contains(":lock:"))
        },
    )
    .await;
    // ...and dies with it: its runtime goes, tasks and lock keep-alive included (a token
    // request survives a dropped caller, not a dead process).
    replica_a.shutdown_background();
    let _ = a_thread.join();
    drop(a);
    issuer.set_token_delay(Duration::ZERO);

    let b = replica(&issuer, short_lock());
    let started = Instant::now();
    let token = tokio::time::timeout(Duration::from_secs(8), b.token())
        .await
        .expect("replica B deadlocked behind a dead lock holder")
        .unwrap();
    let waited = started.elapsed();
    println!(
        "lock holder killed: replica B got its token after {waited:?} (lock TTL {lock_ttl:?})"
    );
    verify(token.secret(), &jwks(&issuer).await, issuer.issuer()).unwrap();
    // It waited behind the dead holder's lock (no longer extended: it expires within one
    // TTL of the crash, and at least two thirds of one, the keep-alive's period), and not
    // much longer.
    assert!(waited >= lock_ttl / 2, "{waited:?}: the lock was ignored");
    assert!(waited <= lock_ttl + Duration::from_secs(3), "{waited:?}");
    assert_eq!(requests(&issuer), 2, "A's (abandoned) request and B's");
    assert!(
        !redis
            .keys(&prefix)
            .await
            .iter()
            .any(|k| k.contains(":lock:")),
        "B released its lock"
    );
}

/// The issuer takes longer than the lock's TTL to answer: the holder extends its lock
/// while it works, so the other replica waits for its token instead of asking too.
async fn a_slow_issuer_gets_one_request_per_fleet_however_long_it_takes(redis: Engine) {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let prefix = prefix();
    let lock_ttl = Duration::from_millis(600);
    let slow = Duration::from_millis(2_500);
    issuer.set_token_delay(slow);
    let make = || {
        let mut config = RedisCacheConfig::new(redis.url())
            .with_key_prefix(&prefix)
            .with_encryption_key(SEAL)
            .unwrap();
        config.lock_ttl = lock_ttl;
        let client = ClientCredentialsClient::new(
            issuer.token_endpoint(),
            ClientId::new(BFF_ID),
            ClientSecret::new(BFF_SECRET),
        );
        TokenManager::builder()
            .redis_cache(RedisTokenCache::new(config).unwrap())
            .retry_policy(shared_auth::client::RetryPolicy {
                attempt_timeout: Duration::from_secs(5),
                total_budget: Duration::from_secs(8),
                ..Default::default()
            })
            .build()
            .unwrap()
            .register("api", client)
            .unwrap()
    };
    let (a, b) = (make(), make());
    let first = tokio::spawn({
        let a = a.clone();
        async move { a.token().await }
    });
    eventually(
        Duration::from_secs(5),
        "replica A sends its request",
        || async { requests(&issuer) == 1 },
    )
    .await;
    let second = b.token().await.unwrap();
    let first = first.await.unwrap().unwrap();
    println!(
        "issuer answering in {slow:?} with a lock TTL of {lock_ttl:?}: {} token request(s) for 2 replicas",
        requests(&issuer)
    );
    assert_eq!(first, second, "B took A's token");
    assert_eq!(requests(&issuer), 1, "one request for the fleet");
}

/// 100 callers across two replicas; 99 are dropped at random points (the first included),
/// while the request is in flight. The request still completes exactly once, its token is
/// cached for the fleet, and the Redis fetch lock is released.
async fn dropped_callers_lose_no_fetch_and_leave_no_lock(redis: Engine) {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    issuer.set_token_delay(Duration::from_millis(500));
    let prefix = prefix();
    let replicas = [
        replica(&issuer, cache(&redis, &prefix)),
        replica(&issuer, cache(&redis, &prefix)),
    ];
    let callers: Vec<_> = (0..100)
        .map(|i| {
            let manager = replicas[i % 2].clone();
            tokio::spawn(async move { manager.token().await })
        })
        .collect();
    eventually(
        Duration::from_secs(5),
        "the token request is in flight",
        || async { requests(&issuer) == 1 },
    )
    .await;
    // Drop all but one, in a shuffled order, yielding between drops.
    let mut order: Vec<usize> = (0..100).collect();
    let mut seed = 0x9E37_79B9_u64;
    for i in (1..order.len()).rev() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        order.swap(i, (seed >> 33) as usize % (i + 1));
    }
    let survivor = order[99];
    let mut callers: Vec<Option<_>> = callers.into_iter().map(Some).collect();
    for &i in &order[..99] {
        callers[i].take().unwrap().abort();
        tokio::task::yield_now().await;
    }
    let token = callers[survivor].take().unwrap().await.unwrap().unwrap();
    verify(token.secret(), &jwks(&issuer).await, issuer.issuer()).unwrap();
    eventually(
        Duration::from_secs(5),
        "the fetch lock is released",
        || async {
            !redis
                .keys(&prefix)
                .await
                .iter()
                .any(|k| k.contains(":lock:"))
        },
    )
    .await;
    // Both replicas now answer from the cache.
    for manager in &replicas {
        assert_eq!(manager.token().await.unwrap(), token);
    }
    assert_eq!(requests(&issuer), 1, "exactly one token request");
}

async fn two_bffs_sharing_redis_make_one_token_request(redis: Engine) {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let service = start_service(&issuer, cognito()).await;
    let prefix = prefix();
    let mut config = bff_config(&issuer, &service.base);
    config.token_cache = Some(
        RedisCacheConfig::new(redis.url())
            .with_key_prefix(&prefix)
            .with_encryption_key(SEAL)
            .unwrap(),
    );
    let bff_a = start_bff(&config).await;
    let bff_b = start_bff(&config).await;
    let mut statuses = HashMap::new();
    for bff in [&bff_a, &bff_b, &bff_a, &bff_b] {
        let status = http()
            .get(format!("{}/weatherforecast", bff.base))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        *statuses.entry(status).or_insert(0) += 1;
    }
    println!(
        "two my-bff instances sharing Redis -> {} token request(s)",
        requests(&issuer)
    );
    assert_eq!(statuses, HashMap::from([(200, 4)]));
    assert_eq!(requests(&issuer), 1);
}

async fn a_stalled_redis_slows_a_call_by_the_operation_timeouts_only(redis: Engine) {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let prefix = prefix();
    let manager = replica(&issuer, cache(&redis, &prefix));
    manager.token().await.unwrap();
    // Redis stops answering for 3 s (a blocked server, as under a slow disk or a big key).
    assert!(
        cache(&redis, &prefix).ping().await,
        "a fresh cache reaches Redis"
    );
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(3000)
        .arg("ALL")
        .query_async(&mut redis.conn().await)
        .await
        .unwrap();
    assert!(!cache(&redis, &prefix).ping().await, "Redis is stalled");
    let started = Instant::now();
    let token = manager.api_b.token().await.unwrap();
    let took = started.elapsed();
    println!("Redis stalled: a call on a new key took {took:?} (token request included)");
    verify(token.secret(), &jwks(&issuer).await, issuer.issuer()).unwrap();
    // A get, a second look under the process lock, the lock attempt and the put: four
    // 50 ms bounds, plus the token request itself; far from the 3 s stall.
    assert!(took < Duration::from_millis(1_000), "{took:?}");
    assert!(manager.token().await.is_ok(), "a warm call is untouched");
}

/// Two replicas of a DPoP resource server behind one public URL, sharing a Redis replay
/// store: a proof accepted by one is a replay at the other, and one client's key holds at
/// most its share of the store.
async fn a_dpop_proof_replayed_to_another_replica_is_refused(redis: Engine) {
    use shared_auth::server::{JwtValidator, ReplayStoreConfig, SecretValue};
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let prefix = prefix();
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let mut config = validator_config_for(issuer.issuer(), cognito());
        config.dpop.mode = shared_auth::server::DpopMode::Allowed;
        config.dpop.public_base_url = Some("https://api.example.com".into());
        config.dpop.replay_store = ReplayStoreConfig::Redis {
            url: SecretValue::new(redis.url()),
            key_prefix: prefix.clone(),
            timeout: Duration::from_secs(1),
            per_key: 3,
        };
        let validator = JwtValidator::new(config).await.unwrap();
        replicas.push(serve(my_service::router(validator, "http://127.0.0.1:1/token")).await);
    }
    let prover = dpop_prover::Prover::new();
    let token = forge(&issuer, &[READ], |_, c| {
        c["cnf"] = serde_json::json!({"jkt": prover.jkt})
    });
    let send = |replica: &TestServer, proof: &str| {
        http()
            .get(format!("{}/weatherforecast", replica.base))
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
            .send()
    };
    let proof = prover.proof("GET", "https://api.example.com/weatherforecast", &token);
    assert_eq!(send(&replicas[0], &proof).await.unwrap().status(), 200);
    let replay = send(&replicas[1], &proof).await.unwrap();
    assert_eq!(replay.status(), 401);
    let challenge = replay.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains("error=\"invalid_dpop_proof\""),
        "{challenge}"
    );
    // And at the first replica again.
    assert_eq!(send(&replicas[0], &proof).await.unwrap().status(), 401);
    // A fresh proof passes at either; one key per jti, kept no longer than the window.
    let fresh = prover.proof("GET", "https://api.example.com/weatherforecast", &token);
    assert_eq!(send(&replicas[1], &fresh).await.unwrap().status(), 200);
    let keys = redis.keys(&format!("{prefix}dpop:")).await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    let ttl: i64 = redis.conn().await.pttl(&keys[0]).await.unwrap();
    assert!(ttl > 0 && ttl <= 65_000, "{ttl}");

    // One key's share of the shared store (3 proofs per window here), across replicas:
    // the third accepted proof fills it, the next is 503 with Retry-After, and another
    // client's key still gets in.
    let third = prover.proof("GET", "https://api.example.com/weatherforecast", &token);
    assert_eq!(send(&replicas[0], &third).await.unwrap().status(), 200);
    let over = prover.proof("GET", "https://api.example.com/weatherforecast", &token);
    let refused = send(&replicas[1], &over).await.unwrap();
    assert_eq!(refused.status(), 503);
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=65).contains(&retry), "{retry}");
    let other = dpop_prover::Prover::new();
    let other_token = forge(&issuer, &[READ], |_, c| {
        c["cnf"] = serde_json::json!({"jkt": other.jkt})
    });
    let proof = other.proof(
        "GET",
        "https://api.example.com/weatherforecast",
        &other_token,
    );
    let response = http()
        .get(format!("{}/weatherforecast", replicas[1].base))
        .header("authorization", format!("DPoP {other_token}"))
        .header("dpop", proof)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "another client still gets in");
    assert_every_key_expires(&redis, &prefix).await;
}

/// Two BFF replicas share their users' sessions through Redis (sealed): a login begun at
/// one completes at the other, and twenty concurrent requests of one user spread over both,
/// past the access token's renewal point, make one refresh at the issuer per renewal, with
/// no reuse detection, and every request gets the same renewed token. The test's clock
/// decides when renewal is due.
async fn two_replicas_share_user_sessions_and_renew_each_token_once(redis: Engine) {
    use shared_auth::ManualClock;
    use shared_auth::client::{SessionConfig, UserLoginConfig, UserSessions};
    const PASSWORD: &str = "alice-fleet-password";
    const REDIRECT: &str = "http://127.0.0.1:9/bff/callback";
    let issuer = mock_issuer::start(
        issuer_config(IssuerProfile::Cognito)
            .with_client(
                mock_issuer::ClientConfig::new("fleet-bff", "fleet-bff-secret-0123456789", [READ])
                    .with_grant_types(["authorization_code", "refresh_token"])
                    .with_redirect_uris([REDIRECT]),
            )
            .with_user(mock_issuer::UserConfig::new("alice", PASSWORD)),
    )
    .await
    .unwrap();
    // Each refresh takes a while, so the requests of a round all arrive during it.
    issuer.set_refresh_delay(Duration::from_millis(100));
    let clock = Arc::new(ManualClock::starting_now());
    let prefix = prefix();
    let key = [7u8; 32];
    let replica = || async {
        let mut login = UserLoginConfig::new(
            issuer.issuer(),
            ClientId::new("fleet-bff"),
            ClientSecret::new("fleet-bff-secret-0123456789"),
            REDIRECT,
        );
        login.scope = shared_auth::ScopeSet::parse(&format!("offline_access {READ}")).unwrap();
        login.clock = clock.clone();
        let mut sessions = SessionConfig::default();
        // Renewal due 15 s after each token is issued (the issuer signs in real time; the
        // test's clock only runs a few steps ahead).
        sessions.renew_before = Duration::from_secs(3600 - 15);
        sessions.redis = Some(
            RedisCacheConfig::new(redis.url())
                .with_key_prefix(prefix.clone())
                .with_encryption_key(key)
                .unwrap(),
        );
        UserSessions::discover(login, sessions).await.unwrap()
    };
    let (a, b) = (replica().await, replica().await);

    let (url, login_id) = a.begin_login("/").await.unwrap();
    let location = log_in_at_issuer(&url, "alice", PASSWORD).await;
    let (session, _) = b
        .complete_login(&login_id, &login_callback(&location))
        .await
        .unwrap();
    assert_eq!(a.info(&session).await.unwrap().claims["sub"], "alice");
    // Stored sealed: the session's Redis value shows no token and no claim.
    let first = a
        .access_token(&session, &TokenRequestParams::default())
        .await
        .unwrap();
    for stored in redis.keys(&format!("{prefix}session:")).await {
        let value: Vec<u8> = redis.conn().await.get(&stored).await.unwrap();
        let text = String::from_utf8_lossy(&value);
        assert!(
            !text.contains(first.secret()) && !text.contains("alice"),
            "{stored}"
        );
    }

    for round in 1..=3u64 {
        clock.advance(Duration::from_secs(15));
        let calls = (0..20).map(|i| {
            let (replica, session) = (
                if i % 2 == 0 { a.clone() } else { b.clone() },
                session.clone(),
            );
            async move {
                replica
                    .access_token(&session, &TokenRequestParams::default())
                    .await
            }
        });
        let tokens: Vec<String> = concurrently(calls)
            .await
            .into_iter()
            .map(|t| t.unwrap().secret().to_owned())
            .collect();
        assert!(
            tokens.iter().all(|t| t == &tokens[0]),
            "round {round}: one token"
        );
        assert_ne!(tokens[0], first.secret());
        let stats = issuer.stats();
        assert_eq!(
            stats.refreshes, round,
            "one refresh per renewal across both replicas"
        );
        assert_eq!(stats.refresh_reuse_detections, 0);
    }
    // Sessions, their renewal locks (released) and the logins: every key expires.
    assert_every_key_expires(&redis, &prefix).await;
}

/// Every key under `prefix` carries a TTL: nothing this crate writes can fill a
/// `noeviction` instance.
async fn assert_every_key_expires(redis: &Engine, prefix: &str) {
    let keys = redis.keys(prefix).await;
    assert!(!keys.is_empty());
    let mut conn = redis.conn().await;
    for key in keys {
        let ttl: i64 = conn.pttl(&key).await.unwrap();
        assert!(ttl > 0, "{key} has no TTL ({ttl})");
    }
}

/// A cluster master crashes while two replicas keep calling: no call fails (a shared-tier
/// failure is a miss, the replica asks the issuer itself, once per key), and once the
/// master's replica is promoted the fleet shares tokens again.
async fn a_master_killed_mid_load_fails_no_call_and_sharing_resumes(mut redis: Engine) {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let prefix = prefix();
    let (caches, replicas) = warm_fleet(&redis, &issuer, &prefix).await;
    assert_eq!(requests(&issuer), 1, "shared before the crash");
    let entry = redis.keys(&format!("{prefix}token:")).await.remove(0);
    let master = redis.master_of(&entry).await;
    redis.kill_node(master);
    let started = Instant::now();
    // Calls go on through the failover, until a replica has taken the slot over: the warm
    // token from each replica's own tiers, and a new key (a scope neither replica has)
    // from the issuer, at most once per replica.
    let (mut calls_made, mut failed) = (0, 0);
    loop {
        let calls = replicas.iter().flat_map(|r| {
            (0..8).map(move |i| {
                let r = r.clone();
                async move {
                    match i % 4 {
                        0 => r.api.token_with(&with_scope("")).await,
                        _ => r.token().await,
                    }
                }
            })
        });
        let answers = concurrently(calls).await;
        calls_made += answers.len();
        failed += answers.iter().filter(|a| a.is_err()).count();
        if redis.master_of(&entry).await != master {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no failover of {master}:\n{}",
            redis.describe().await
        );
    }
    let during = requests(&issuer) - 1;
    println!(
        "master killed: {calls_made} calls through the failover ({:?}), {failed} failed, {during} token request(s)",
        started.elapsed()
    );
    assert_eq!(failed, 0);
    assert!(
        during <= 2,
        "at most one per replica for the new key: {during}"
    );

    redis.until_cluster_ok().await;
    until_reachable(&caches).await;
    // After the failover, keys no replica has, in the slots that moved to the promoted
    // replica, from both replicas at once. Each replica's cluster client learns the new
    // topology from its first failure on a moved slot (at most one extra token request
    // per replica, once); from then on the fleet shares again.
    let promoted = redis.master_of(&entry).await;
    assert_ne!(promoted, master, "a replica took over");
    let client = ClientCredentialsClient::new(
        issuer.token_endpoint(),
        ClientId::new(BFF_ID),
        ClientSecret::new(BFF_SECRET),
    )
    .with_scope(shared_auth::ScopeSet::parse(READ).unwrap());
    let mut moved = Vec::new();
    for n in 0.. {
        let mut params = TokenRequestParams::default();
        params.extra.insert("n".into(), n.to_string());
        let key =
            shared_auth::client::CacheKey::new("api", &client, &client.scope, None, &params.extra);
        if redis.master_of(&caches[0].entry_key(&key)).await == promoted {
            moved.push(params);
        }
        if moved.len() == 2 {
            break;
        }
    }
    let mut made = Vec::new();
    for params in &moved {
        let before = requests(&issuer);
        let calls = replicas.iter().flat_map(|r| {
            (0..20).map(move |_| {
                let (r, params) = (r.clone(), params.clone());
                async move { r.api.token_with(&params).await }
            })
        });
        let answers = concurrently(calls).await;
        assert!(answers.iter().all(Result::is_ok));
        made.push(requests(&issuer) - before);
    }
    println!(
        "after the failover: 2 replicas x 20 calls on two new keys in moved slots -> {made:?} token request(s)"
    );
    assert!(made[0] <= 2, "{made:?}");
    assert_eq!(made[1], 1, "shared again after the failover: {made:?}");
}

/// One 401 renewal per fleet: three replicas share a token; a downstream refuses it (and
/// only it). The replica that meets the 401 renews it and leaves a tombstone beside the
/// renewed token; the others hear of it and never send the refused token again, without
/// a 401 of their own. A downstream that then refuses every token costs no further
/// renewal anywhere in the fleet within 30 s.
async fn a_token_refused_at_one_replica_is_dropped_by_all_without_their_own_401(redis: Engine) {
    use shared_auth::client::ClientCredentialsMiddleware;
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let prefix = prefix();
    let replicas: Vec<Replica> = (0..3)
        .map(|_| replica(&issuer, cache(&redis, &prefix)))
        .collect();
    let mut first = None;
    for r in &replicas {
        let token = r.token().await.unwrap();
        assert_eq!(first.get_or_insert_with(|| token.clone()), &token);
    }
    let refused_token = first.unwrap();
    assert_eq!(requests(&issuer), 1);
    // The downstream: refuses `refused` (or every token, once `refuse_all` is set).
    #[derive(Default)]
    struct Seen {
        refuse_all: bool,
        unauthorized: usize,
        sent: Vec<String>,
    }
    let seen = Arc::new(std::sync::Mutex::new(Seen::default()));
    let (state, refused) = (seen.clone(), refused_token.secret().to_owned());
    let app = axum::Router::new().route(
        "/data",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let (seen, refused) = (state.clone(), refused.clone());
            async move {
                let token =
                    headers["authorization"].to_str().unwrap()["Bearer ".len()..].to_owned();
                let mut seen = seen.lock().unwrap();
                let refuse = seen.refuse_all || token == refused;
                seen.sent.push(token);
                if refuse {
                    seen.unauthorized += 1;
                    (
                        axum::http::StatusCode::UNAUTHORIZED,
                        [("www-authenticate", r#"Bearer error="invalid_token""#)],
                    )
                        .into_response()
                } else {
                    axum::http::StatusCode::OK.into_response()
                }
            }
        }),
    );
    use axum::response::IntoResponse as _;
    let api = serve(app).await;
    let call = |r: &Replica| {
        let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(ClientCredentialsMiddleware::new(r.api.clone()))
            .build();
        let url = format!("{}/data", api.base);
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    };

    assert_eq!(call(&replicas[0]).await, 200, "renewed and retried");
    assert_eq!(requests(&issuer), 2, "one renewal");
    // The others hear of the refusal: their next token is the renewed one, from the
    // shared cache (no request).
    for r in &replicas[1..] {
        eventually(Duration::from_secs(10), "the refusal heard", || async {
            r.token().await.unwrap() != refused_token
        })
        .await;
    }
    for r in &replicas[1..] {
        assert_eq!(call(r).await, 200);
    }
    {
        let seen = seen.lock().unwrap();
        println!(
            "3 replicas, one token refused: {} downstream 401(s), {} token request(s)",
            seen.unauthorized,
            requests(&issuer)
        );
        assert_eq!(seen.unauthorized, 1, "one 401 for the whole fleet");
        let refused_sends = seen
            .sent
            .iter()
            .filter(|t| **t == *refused_token.secret())
            .count();
        assert_eq!(refused_sends, 1, "the refused token sent once");
    }
    assert_eq!(requests(&issuer), 2);

    // Now every token is refused: each replica's call is a 401, and no replica renews
    // (the fleet renewed after a 401 less than 30 s ago).
    seen.lock().unwrap().refuse_all = true;
    for _ in 0..3 {
        for r in &replicas {
            assert_eq!(call(r).await, 401);
        }
    }
    assert_eq!(
        requests(&issuer),
        2,
        "at most one renewal per fleet per 30 s"
    );
    // And the token refused by everyone is still each replica's token: not fetched anew.
    for r in &replicas {
        r.token().await.unwrap();
    }
    assert_eq!(requests(&issuer), 2, "no fetch per call");
}

/// An issuer may answer a renewal with the very token the fleet refused (some hand out one
/// token until it expires): the process that stores it takes it as the issuer's answer,
/// so a refused token is never fetched again on every call.
async fn a_refused_token_the_issuer_hands_out_again_is_used_not_refetched(redis: Engine) {
    use shared_auth::client::{CacheKey, CachedToken, TokenCache as _};
    let prefix = prefix();
    let (one, other) = (cache(&redis, &prefix), cache(&redis, &prefix));
    let client = ClientCredentialsClient::new(
        "http://127.0.0.1:9/token",
        ClientId::new(BFF_ID),
        ClientSecret::new(BFF_SECRET),
    );
    let key = CacheKey::new("api", &client, &client.scope, None, &client.extra_params);
    let token = AccessToken::new("the-one-token");
    let entry = CachedToken::new(
        token.clone(),
        u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap(),
        Duration::from_secs(3600),
        Duration::from_secs(60),
        0.1,
    );
    one.put(&key, &entry).await;
    assert!(
        one.claim_rejection(&key, &token, Duration::from_secs(30))
            .await
    );
    assert!(one.is_rejected(&token));
    // Refused: neither tier answers with it.
    assert_eq!(one.get(&key).await, None);
    // The issuer hands the same token out again; stored, it is the answer.
    one.put(&key, &entry).await;
    assert_eq!(one.get(&key).await, Some(entry.clone()));
    // The other replica heard of the refusal; until it stores the issuer's answer itself,
    // the entry is no entry there.
    eventually(Duration::from_secs(10), "the notice heard", || async {
        other.is_rejected(&token)
    })
    .await;
    assert_eq!(other.get(&key).await, None);
    other.put(&key, &entry).await;
    assert_eq!(other.get(&key).await, Some(entry));
}

/// The engines' own start: a port chosen free and then taken by another test's server before
/// this one binds it (the race that made cluster nodes "not up within 15s") moves the server
/// to the next port, and the other server's answer on the taken port is not taken for its own.
#[tokio::test]
async fn a_server_whose_port_was_taken_starts_on_another() {
    let free = || std::iter::repeat_with(test_support::containers::free_port);
    let other = engine::Node::spawn_on("redis-server".into(), free(), &[]).await;
    let node = engine::Node::spawn_on(
        "redis-server".into(),
        std::iter::once(other.port).chain(free()),
        &[],
    )
    .await;
    assert_ne!(node.port, other.port);
}

/// Runs each named test on each named engine, one test per pair (`valkey::name`, ...).
macro_rules! on_engines {
    ($($engine:ident: [$($name:ident),* $(,)?]),* $(,)?) => {$(
        mod $engine {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Engine::$engine().await).await
                }
            )*
        }
    )*};
}

on_engines! {
    redis7: [
        four_replicas_and_a_thousand_callers_make_one_token_request,
        a_replica_started_later_makes_no_request,
        the_redis_entry_lives_as_long_as_the_token_is_cached,
        sealed_entries_hide_the_token_and_refuse_tampering_and_moves,
        redis_down_costs_no_call_and_redis_back_shares_again,
        a_crashed_lock_holder_delays_the_others_by_one_lock_lifetime,
        a_slow_issuer_gets_one_request_per_fleet_however_long_it_takes,
        dropped_callers_lose_no_fetch_and_leave_no_lock,
        two_bffs_sharing_redis_make_one_token_request,
        a_stalled_redis_slows_a_call_by_the_operation_timeouts_only,
        a_dpop_proof_replayed_to_another_replica_is_refused,
        two_replicas_share_user_sessions_and_renew_each_token_once,
        a_token_refused_at_one_replica_is_dropped_by_all_without_their_own_401,
        a_refused_token_the_issuer_hands_out_again_is_used_not_refetched,
    ],
    valkey: [
        four_replicas_and_a_thousand_callers_make_one_token_request,
        the_redis_entry_lives_as_long_as_the_token_is_cached,
        sealed_entries_hide_the_token_and_refuse_tampering_and_moves,
        redis_down_costs_no_call_and_redis_back_shares_again,
        a_crashed_lock_holder_delays_the_others_by_one_lock_lifetime,
        a_stalled_redis_slows_a_call_by_the_operation_timeouts_only,
        a_dpop_proof_replayed_to_another_replica_is_refused,
        two_replicas_share_user_sessions_and_renew_each_token_once,
        a_token_refused_at_one_replica_is_dropped_by_all_without_their_own_401,
    ],
    cluster: [
        four_replicas_and_a_thousand_callers_make_one_token_request,
        a_replica_started_later_makes_no_request,
        the_redis_entry_lives_as_long_as_the_token_is_cached,
        sealed_entries_hide_the_token_and_refuse_tampering_and_moves,
        a_crashed_lock_holder_delays_the_others_by_one_lock_lifetime,
        a_slow_issuer_gets_one_request_per_fleet_however_long_it_takes,
        dropped_callers_lose_no_fetch_and_leave_no_lock,
        two_bffs_sharing_redis_make_one_token_request,
        a_dpop_proof_replayed_to_another_replica_is_refused,
        two_replicas_share_user_sessions_and_renew_each_token_once,
        a_master_killed_mid_load_fails_no_call_and_sharing_resumes,
        a_token_refused_at_one_replica_is_dropped_by_all_without_their_own_401,
    ],
}
