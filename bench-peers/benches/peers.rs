//! shared-auth beside its peers, measured in one run on the same tokens and keys.
//!
//! Server side, one request through each crate's tower layer (same RS256 key, same
//! `at+jwt` token with issuer and audience checked), in front of a service that answers
//! at once:
//! - `server/ours_repeat`: our `JwtAuthLayer`, the same token on every request (a BFF reuses
//!   its token for an hour), so the validated-token cache answers;
//! - `server/ours_first_seen`: our layer with the validated-token cache turned off, so
//!   every request is a full validation;
//! - `server/tower_oauth2_resource_server`: tower-oauth2-resource-server 0.12.5 (jsonwebtoken
//!   11, aws-lc-rs backend);
//! - `server/jwt_authorizer`: jwt-authorizer 0.15.0 (axum 0.7, jsonwebtoken 9);
//! - `server/huskarl`: huskarl-axum 0.1.0's `ValidatorLayer::authenticated` around
//!   huskarl-resource-server 0.11.12's `Rfc9068Validator` (RustCrypto `rsa`);
//! - `server/axum_jwt_auth`: axum-jwt-auth 0.7.0's `Claims<T>` extractor run as a layer
//!   (jsonwebtoken 10, RustCrypto);
//! - `server/jsonwebtoken_decode`: a bare `jsonwebtoken::decode` with the same key, no layer;
//! - `server/raw_aws_lc`: the RS256 signature check alone, the floor.
//!
//! No peer keeps validated tokens, so each one's single line is its cost on a repeated and
//! on a first-seen token alike; `peers.sh` sets it beside both of ours.
//!
//! Client side, a warm cache asked for its token:
//! - `client/ours_token_hit`: `TokenManager::token`;
//! - `client/rwlock_option`: a hand-made `RwLock<Option<(token, expiry)>>`;
//! - `client/huskarl_in_memory`: huskarl 0.11's `InMemoryTokenCache`.
//!
//! Futures are polled once with a no-op waker; one that waits is driven to the end on the
//! runtime, so a crate is never charged for a runtime it does not need. `just bench-peers`
//! prints the table (criterion's median of its samples for each line).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::RwLock;
use std::task::{Context, Poll, Waker};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use criterion::{Criterion, criterion_group, criterion_main};
use huskarl::cache::{
    GrantTokenSource, InMemoryRefreshTokenStore, InMemoryTokenCache, TokenSource as _,
};
use huskarl::core::client_auth::ClientSecret as HuskarlSecret;
use huskarl::core::secrets::{ProvidedSecret, SecretString};
use huskarl::grant::client_credentials::{
    ClientCredentialsGrant, ClientCredentialsGrantParameters,
};
use mock_issuer::{ClientConfig, IssuerConfig, IssuerHandle, TokenProfile as IssuerProfile};
use serde_json::json;
use shared_auth::client::{ClientCredentialsClient, ClientId, ClientSecret, TokenManager};
use shared_auth::server::{
    JwtAuthLayer, JwtValidator, MetadataSource, TokenProfile, ValidatorConfig,
};
use tower::{Layer, Service};

const AUDIENCE: &str = "api1";
const CLIENT: &str = "bench";
const SECRET: &str = "bench-secret-0123";
const SCOPE: &str = "MyService/weather_read";

/// Polls once with a no-op waker; a future that waits is finished on the runtime.
fn run<F: Future>(rt: &tokio::runtime::Runtime, future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(v) => v,
        Poll::Pending => rt.block_on(future),
    }
}

/// One request through a tower service: `poll_ready`, then `call`.
fn through<S, B>(rt: &tokio::runtime::Runtime, svc: &mut S, token: &str, body: B) -> S::Response
where
    S: Service<http::Request<B>>,
    S::Error: std::fmt::Debug,
{
    let mut cx = Context::from_waker(Waker::noop());
    match svc.poll_ready(&mut cx) {
        Poll::Ready(r) => r.unwrap(),
        Poll::Pending => panic!("service not ready"),
    }
    let request = http::Request::builder()
        .uri("/weatherforecast")
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .body(body)
        .unwrap();
    run(rt, svc.call(request)).unwrap()
}

fn ok(who: &str, status: http::StatusCode) {
    assert_eq!(status, http::StatusCode::OK, "{who} refused the token");
}

struct Setup {
    runtime: tokio::runtime::Runtime,
    issuer: IssuerHandle,
    token: String,
}

fn setup() -> Setup {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let issuer = runtime.block_on(async {
        let config = IssuerConfig::new(IssuerProfile::Rfc9068)
            .with_resource_server("MyService", ["weather_read"])
            .with_client(ClientConfig::new(CLIENT, SECRET, [SCOPE]));
        mock_issuer::start(config).await.unwrap()
    });
    let (header, mut claims) = issuer.token_template(CLIENT, &[SCOPE]);
    claims["aud"] = json!(AUDIENCE);
    let token = issuer.sign(&header, &claims).unwrap();
    Setup {
        runtime,
        issuer,
        token,
    }
}

async fn validator(issuer: &IssuerHandle, validated_cache_capacity: usize) -> JwtValidator {
    let mut config = ValidatorConfig::new(
        MetadataSource::Authority(issuer.issuer().to_owned()),
        TokenProfile::Rfc9068 {
            audience: AUDIENCE.to_owned(),
        },
    );
    config.validated_cache_capacity = validated_cache_capacity;
    JwtValidator::new(config).await.unwrap()
}

fn bench_server(c: &mut Criterion, s: &Setup) {
    let rt = &s.runtime;
    let _entered = rt.enter();
    let token = s.token.as_str();

    type Body = axum::body::Body;
    let answer = || {
        tower::service_fn(|_: http::Request<Body>| async {
            Ok::<_, Infallible>(http::Response::new(Body::empty()))
        })
    };

    let (repeat, first_seen) = rt.block_on(async {
        (
            validator(&s.issuer, 10_000).await,
            validator(&s.issuer, 0).await,
        )
    });
    let mut ours_repeat = JwtAuthLayer::new(repeat).layer(answer());
    let mut ours_first_seen = JwtAuthLayer::new(first_seen).layer(answer());

    let tower_oauth2 = rt.block_on(async {
        use tower_oauth2_resource_server::{
            server::OAuth2ResourceServer, tenant::TenantConfiguration,
        };
        let tenant = TenantConfiguration::builder(s.issuer.issuer())
            .audiences(&[AUDIENCE])
            .build()
            .await
            .unwrap();
        <OAuth2ResourceServer>::builder()
            .add_tenant(tenant)
            .build()
            .await
            .unwrap()
    });
    let mut tower_oauth2 = tower_oauth2.into_layer().layer(answer());

    let jwt_authorizer = rt.block_on(async {
        use jwt_authorizer::{IntoLayer as _, JwtAuthorizer, Validation};
        let authorizer = JwtAuthorizer::<serde_json::Value>::from_oidc(s.issuer.issuer())
            .validation(Validation::new().iss(&[s.issuer.issuer()]).aud(&[AUDIENCE]))
            .build()
            .await
            .unwrap();
        authorizer.into_layer()
    });
    let mut jwt_authorizer = jwt_authorizer.layer(tower::service_fn(
        |_: http::Request<axum07::body::Body>| async {
            Ok::<_, Infallible>(axum07::response::Response::new(axum07::body::Body::empty()))
        },
    ));

    let huskarl = rt.block_on(async {
        use huskarl_axum::layers::ValidatorLayer;
        use huskarl_resource_server::validator::rfc9068::Rfc9068Validator;
        let validator = Rfc9068Validator::<()>::builder()
            .issuer(s.issuer.issuer())
            .audience(AUDIENCE)
            .allowed_signing_algorithms(vec!["RS256".to_owned()])
            .jwks_uri(s.issuer.jwks_uri().parse().unwrap())
            .jwks_source(huskarl_reqwest::ReqwestClient::from(reqwest::Client::new()))
            .build()
            .await
            .unwrap();
        ValidatorLayer::builder().validator(validator).build()
    });
    // `authenticated` is huskarl's order-safe composite: validation, then a 401 for a
    // request without a token (our layer and the other peers refuse those too).
    let mut huskarl = huskarl.authenticated().layer(answer());

    // axum-jwt-auth has no layer of its own: its integration is the `Claims<T>` extractor
    // over a decoder in the router's state. axum's `from_extractor_with_state` runs that
    // extractor in front of a service, which is how a route protects itself without a
    // handler argument; the work per request is the crate's own.
    let axum_jwt_auth = rt.block_on(async {
        let mut validation = jsonwebtoken10::Validation::new(jsonwebtoken10::Algorithm::RS256);
        validation.set_issuer(&[s.issuer.issuer()]);
        validation.set_audience(&[AUDIENCE]);
        let decoder = axum_jwt_auth::RemoteJwksDecoder::builder()
            .jwks_url(s.issuer.jwks_uri())
            .validation(validation)
            .build()
            .unwrap();
        // Fetches the key set now and refreshes it hourly in the background.
        decoder.initialize().await.unwrap();
        let decoder: axum_jwt_auth::Decoder<serde_json::Value> = std::sync::Arc::new(decoder);
        decoder
    });
    let mut axum_jwt_auth = axum::middleware::from_extractor_with_state::<
        axum_jwt_auth::Claims<serde_json::Value>,
        _,
    >(axum_jwt_auth)
    .layer(answer());

    let jwk = s.issuer.current_key().public_jwk().clone();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let n = b64.decode(jwk["n"].as_str().unwrap()).unwrap();
    let e = b64.decode(jwk["e"].as_str().unwrap()).unwrap();
    // The floor: the signature check alone, with the key parsed once beforehand, as our
    // validator parses it once per key set.
    let raw_key = aws_lc_rs::signature::RsaPublicKeyComponents {
        n: n.clone(),
        e: e.clone(),
    }
    .to_parsed_public_key(&aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256)
    .unwrap();
    let jwt_key = jsonwebtoken::DecodingKey::from_rsa_raw_components(&n, &e);
    let mut jwt_validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    jwt_validation.set_issuer(&[s.issuer.issuer()]);
    jwt_validation.set_audience(&[AUDIENCE]);

    // Every contender must accept the token before it is timed.
    ok(
        "ours_repeat",
        through(rt, &mut ours_repeat, token, Body::empty()).status(),
    );
    ok(
        "ours_first_seen",
        through(rt, &mut ours_first_seen, token, Body::empty()).status(),
    );
    // It loads its keys in the background after `build`: wait (bounded) until it has them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while through(rt, &mut tower_oauth2, token, Body::empty()).status() != http::StatusCode::OK
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    ok(
        "tower_oauth2",
        through(rt, &mut tower_oauth2, token, Body::empty()).status(),
    );
    ok(
        "jwt_authorizer",
        through(rt, &mut jwt_authorizer, token, axum07::body::Body::empty()).status(),
    );
    ok(
        "huskarl",
        through(rt, &mut huskarl, token, Body::empty()).status(),
    );
    ok(
        "axum_jwt_auth",
        through(rt, &mut axum_jwt_auth, token, Body::empty()).status(),
    );

    let mut group = c.benchmark_group("server");
    group.bench_function("ours_repeat", |b| {
        b.iter(|| black_box(through(rt, &mut ours_repeat, token, Body::empty())))
    });
    group.bench_function("ours_first_seen", |b| {
        b.iter(|| black_box(through(rt, &mut ours_first_seen, token, Body::empty())))
    });
    group.bench_function("tower_oauth2_resource_server", |b| {
        b.iter(|| black_box(through(rt, &mut tower_oauth2, token, Body::empty())))
    });
    group.bench_function("jwt_authorizer", |b| {
        b.iter(|| {
            black_box(through(
                rt,
                &mut jwt_authorizer,
                token,
                axum07::body::Body::empty(),
            ))
        })
    });
    group.bench_function("huskarl", |b| {
        b.iter(|| black_box(through(rt, &mut huskarl, token, Body::empty())))
    });
    group.bench_function("axum_jwt_auth", |b| {
        b.iter(|| black_box(through(rt, &mut axum_jwt_auth, token, Body::empty())))
    });
    group.bench_function("jsonwebtoken_decode", |b| {
        b.iter(|| {
            black_box(
                jsonwebtoken::decode::<serde_json::Value>(token, &jwt_key, &jwt_validation)
                    .unwrap(),
            )
        })
    });
    group.bench_function("raw_aws_lc", |b| {
        b.iter(|| {
            let (message, signature) = token.rsplit_once('.').unwrap();
            let signature = b64.decode(signature).unwrap();
            raw_key.verify_sig(message.as_bytes(), &signature).unwrap();
        })
    });
    group.finish();
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn bench_client(c: &mut Criterion, s: &Setup) {
    let rt = &s.runtime;
    let _entered = rt.enter();

    let ours = TokenManager::builder()
        .build()
        .unwrap()
        .register(
            "api",
            ClientCredentialsClient::new(
                s.issuer.token_endpoint(),
                ClientId::new(CLIENT),
                ClientSecret::new(SECRET),
            )
            .with_scope(shared_auth::ScopeSet::parse(SCOPE).unwrap()),
        )
        .unwrap();
    let token = rt.block_on(ours.token()).unwrap();

    let plain: RwLock<Option<(shared_auth::client::AccessToken, u64)>> =
        RwLock::new(Some((token.clone(), now_ms() + 3_600_000)));

    let grant = ClientCredentialsGrant::builder()
        .client_id(CLIENT)
        .client_auth(HuskarlSecret::new(ProvidedSecret::new(SecretString::from(
            SECRET,
        ))))
        .token_endpoint(s.issuer.token_endpoint().parse().unwrap())
        .http_client(huskarl_reqwest::ReqwestClient::from(reqwest::Client::new()))
        .build();
    let source = GrantTokenSource::builder()
        .grant(grant)
        .grant_parameters(
            ClientCredentialsGrantParameters::builder()
                .scope(vec![SCOPE.to_owned()])
                .build(),
        )
        .refresh_store(InMemoryRefreshTokenStore::default())
        .build();
    let huskarl = InMemoryTokenCache::builder().source(source).build();
    rt.block_on(huskarl.token()).unwrap();

    let mut group = c.benchmark_group("client");
    group.bench_function("ours_token_hit", |b| {
        b.iter(|| black_box(run(rt, ours.token()).unwrap()))
    });
    group.bench_function("rwlock_option", |b| {
        b.iter(|| {
            let guard = plain.read().unwrap();
            let (t, until) = guard.as_ref().unwrap();
            assert!(now_ms() < *until);
            black_box(t.clone())
        })
    });
    group.bench_function("huskarl_in_memory", |b| {
        b.iter(|| black_box(run(rt, huskarl.token()).unwrap()))
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let s = setup();
    bench_server(c, &s);
    bench_client(c, &s);
}

criterion_group!(group, benches);
criterion_main!(group);
