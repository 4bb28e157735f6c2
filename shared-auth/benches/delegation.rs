//! What delegation costs, each figure beside its reference from interleaved batches in
//! the same run (the fastest batch of each: interference only ever adds time):
//!
//! - **A Txn-Token beside the access token, cached**: a request through the auth layer and
//!   the Transaction Token layer, both tokens seen before, against the auth layer alone
//!   with the same access token: what a service pays per request to check the
//!   transaction.
//! - **A Txn-Token first seen**: the full check of a Transaction Token never seen (RS256
//!   signature, header, claims) against the first-seen validation of an access token.
//! - **An exchange on a cache hit**: `ManagedClient::exchange` for a subject whose token
//!   is cached, against a cached client-credentials token asked for with per-request
//!   parameters (`token_with`, the same cache path) and the hot `token()`.
//!
//! Prints its lines and writes `target/bench-results/delegation.md` (`just bench`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

// The shared set-up: this target uses its runtime, `ready` and `mint` only.
#[allow(dead_code)]
mod common;

use std::hint::black_box;
use std::task::{Context, Poll, Waker};

use std::time::Instant;

use common::{Ok200, ready};
use mock_issuer::{ClientConfig, IssuerConfig, IssuerHandle, TokenProfile as IssuerProfile};
use serde_json::json;
use shared_auth::client::{
    AccessToken, ClientCredentialsClient, ClientId, ClientSecret, TokenExchange, TokenManager,
    TokenRequestParams,
};
use shared_auth::server::{
    JwtAuthLayer, JwtValidator, MetadataSource, TokenProfile, TransactionTokenConfig,
    TransactionTokenLayer, ValidatorConfig,
};
use tower::{Layer as _, Service as _};

const ROUNDS: usize = 41;
const TRUST_DOMAIN: &str = "https://trust.example";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The fastest per-item time (µs) of each of `runs`, from `ROUNDS` rounds in which each
/// runs one batch, in a rotating order.
fn interleaved<const N: usize>(runs: [&mut dyn FnMut() -> usize; N]) -> [f64; N] {
    let mut best = [f64::MAX; N];
    for round in 0..ROUNDS {
        for k in 0..N {
            let which = (round + k) % N;
            let start = Instant::now();
            let items = runs[which]();
            let per = start.elapsed().as_secs_f64() / items as f64 * 1e6;
            best[which] = best[which].min(per);
        }
    }
    best
}

fn issuer(runtime: &tokio::runtime::Runtime) -> IssuerHandle {
    runtime.block_on(async {
        mock_issuer::start(
            IssuerConfig::new(IssuerProfile::Cognito)
                .with_resource_server("MyService", ["weather_read"])
                .with_resource_server("Downstream", ["read"])
                .with_trust_domain(TRUST_DOMAIN)
                .with_client(
                    ClientConfig::new("bench", "bench-secret-0123", ["MyService/weather_read"])
                        .with_grant_types(["client_credentials", EXCHANGE]),
                ),
        )
        .await
        .unwrap()
    })
}

fn main() {
    let runtime = common::runtime();
    let _entered = runtime.enter();
    let issuer = issuer(&runtime);
    let mut lines = Vec::new();

    // The server side: the auth layer alone, and with the Transaction Token layer.
    let validator = runtime
        .block_on(JwtValidator::new(ValidatorConfig::new(
            MetadataSource::Authority(issuer.issuer().to_owned()),
            TokenProfile::Cognito {
                allowed_client_ids: vec![],
            },
        )))
        .unwrap();
    let txn_layer = runtime
        .block_on(TransactionTokenLayer::start(TransactionTokenConfig::new(
            MetadataSource::Authority(issuer.issuer().to_owned()),
            TRUST_DOMAIN,
        )))
        .unwrap();
    let access = common::mint(&issuer, 1).remove(0);
    let manager = TokenManager::builder().build().unwrap();
    let client = manager
        .register(
            "bench",
            ClientCredentialsClient::new(
                issuer.token_endpoint(),
                ClientId::new("bench"),
                ClientSecret::new("bench-secret-0123"),
            ),
        )
        .unwrap();
    let user = |sub: &str| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        AccessToken::new(
            issuer
                .sign_claims(&json!({
                    "iss": issuer.issuer(), "sub": sub, "client_id": "my-bff",
                    "token_use": "access", "scope": "MyService/weather_read Downstream/read",
                    "iat": now, "exp": now + 3600,
                }))
                .unwrap(),
        )
    };
    let alice = user("alice");
    let request = runtime
        .block_on(client.transaction_token(
            &alice,
            &shared_auth::client::TransactionTokenRequest::new(TRUST_DOMAIN),
        ))
        .unwrap();
    let txn_token = request.secret().to_owned();
    let auth = JwtAuthLayer::new(validator.clone());
    let mut alone = auth.layer(Ok200);
    let mut both = auth.layer(txn_layer.layer(Ok200));
    let call = |service: &mut dyn FnMut(http::Request<axum::body::Body>) -> http::StatusCode,
                txn: bool| {
        let mut builder = http::Request::get("/weatherforecast")
            .header(http::header::AUTHORIZATION, format!("Bearer {access}"));
        if txn {
            builder = builder.header("txn-token", &txn_token);
        }
        service(builder.body(axum::body::Body::empty()).unwrap())
    };
    let mut through_alone = |req| {
        assert!(matches!(
            alone.poll_ready(&mut Context::from_waker(Waker::noop())),
            Poll::Ready(Ok(()))
        ));
        ready(alone.call(req)).unwrap().status()
    };
    let mut through_both = |req| {
        assert!(matches!(
            both.poll_ready(&mut Context::from_waker(Waker::noop())),
            Poll::Ready(Ok(()))
        ));
        ready(both.call(req)).unwrap().status()
    };
    // Warm both caches, and check both pass.
    assert_eq!(
        runtime.block_on(async { call(&mut through_alone, false) }),
        200
    );
    assert_eq!(
        runtime.block_on(async { call(&mut through_both, true) }),
        200
    );
    const BATCH: usize = 1024;
    let [both_us, alone_us] = interleaved([
        &mut || {
            for _ in 0..BATCH {
                assert_eq!(call(&mut through_both, true), 200);
            }
            BATCH
        },
        &mut || {
            for _ in 0..BATCH {
                assert_eq!(call(&mut through_alone, false), 200);
            }
            BATCH
        },
    ]);
    lines.push(format!(
        "| a request with a cached Txn-Token beside a cached access token (auth layer + Transaction Token layer) | {:.2} µs | the auth layer alone {:.2} µs | +{:.0} ns |",
        both_us,
        alone_us,
        (both_us - alone_us) * 1000.0
    ));

    // First seen: fresh Transaction Tokens and fresh access tokens, checked in full.
    const FRESH: usize = 128;
    let verifier = txn_layer.verifier().clone();
    let fresh_txn: Vec<String> = (0..FRESH)
        .map(|_| {
            runtime
                .block_on(client.transaction_token(
                    &alice,
                    &shared_auth::client::TransactionTokenRequest::new(TRUST_DOMAIN),
                ))
                .unwrap()
                .secret()
                .to_owned()
        })
        .collect();
    let fresh_access = common::mint(&issuer, FRESH);
    let [txn_first, access_first] = interleaved([
        &mut || {
            for token in &fresh_txn {
                black_box(ready(verifier.verify_uncached(token)).unwrap());
            }
            FRESH
        },
        &mut || {
            for token in &fresh_access {
                black_box(ready(validator.validate_uncached(token)).unwrap());
            }
            FRESH
        },
    ]);
    lines.push(format!(
        "| check a first-seen Txn-Token (RS256) | {txn_first:.1} µs | validate a first-seen access token {access_first:.1} µs | {:.2}x |",
        txn_first / access_first
    ));

    // The client side: an exchange served from the cache, beside a cached
    // client-credentials token by the same path and by the hot path.
    let downstream = TokenExchange::for_audience("Downstream");
    runtime
        .block_on(client.exchange(&alice, &downstream))
        .unwrap();
    let params = TokenRequestParams {
        scope: Some(shared_auth::ScopeSet::parse("MyService/weather_read").unwrap()),
        ..TokenRequestParams::default()
    };
    runtime.block_on(client.token_with(&params)).unwrap();
    runtime.block_on(client.token()).unwrap();
    let flights = manager.flights_started();
    let [exchange_ns, with_ns, hot_ns, sha_ns] = interleaved([
        &mut || {
            for _ in 0..BATCH {
                black_box(ready(client.exchange(&alice, &downstream)).unwrap());
            }
            BATCH
        },
        &mut || {
            for _ in 0..BATCH {
                black_box(ready(client.token_with(&params)).unwrap());
            }
            BATCH
        },
        &mut || {
            for _ in 0..BATCH {
                black_box(ready(client.token()).unwrap());
            }
            BATCH
        },
        // What the exchange's key costs beyond `token_with`'s: the subject token's hash.
        &mut || {
            for _ in 0..BATCH {
                black_box(aws_lc_rs::digest::digest(
                    &aws_lc_rs::digest::SHA256,
                    black_box(alice.secret().as_bytes()),
                ));
            }
            BATCH
        },
    ])
    .map(|us| us * 1000.0);
    assert_eq!(
        manager.flights_started(),
        flights,
        "every call was a cache hit"
    );
    lines.push(format!(
        "| an exchange on a cache hit (`exchange`) | {exchange_ns:.0} ns | a cached client-credentials token with per-request parameters (`token_with`) {with_ns:.0} ns; the hot `token()` {hot_ns:.0} ns | +{:.0} ns over `token_with`, of which {sha_ns:.0} ns the SHA-256 of the {}-byte subject token |",
        exchange_ns - with_ns,
        alice.secret().len(),
    ));

    let mut table = format!(
        "Measured {} on {} cores; command: `just bench` (shared-auth/benches/delegation.rs: fastest of {ROUNDS} interleaved batches each).\n\n| what | ours | reference, same run | difference |\n| --- | ---: | ---: | ---: |\n",
        time_now(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    for line in &lines {
        println!("{line}");
        table.push_str(line);
        table.push('\n');
    }
    // Where bench.sh and report.sh look: the workspace's `target/bench-results`.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-results");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("delegation.md"), table).unwrap();
}

/// Now, as `YYYY-MM-DDTHH:MMZ` (from `date`).
fn time_now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%MZ"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}
