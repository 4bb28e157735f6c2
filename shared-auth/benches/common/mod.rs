//! What a bench target needs around the code it measures: a runtime, an in-process mock
//! issuer with one client, a validator that trusts it, tokens it signs, and a way to
//! complete a future that never waits. The same set-up as `auth.rs` (which takes only the
//! inner service from here, and keeps its own copies of the rest for now), so numbers from the two targets describe the same tokens and keys.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use mock_issuer::{ClientConfig, IssuerConfig, IssuerHandle, TokenProfile as IssuerProfile};
use serde_json::json;
use shared_auth::client::{ClientCredentialsClient, ClientId, ClientSecret};
use shared_auth::server::{JwtValidator, MetadataSource, TokenProfile, ValidatorConfig};

/// The issuer's one client, whose tokens every bench mints or requests.
const CLIENT_ID: &str = "bench";
const CLIENT_SECRET: &str = "bench-secret-0123";
const SCOPE: &str = "MyService/weather_read";

/// Completes a future that never waits (panics if it does). Hot paths never wait, so
/// polling once with a no-op waker measures them without any runtime overhead.
pub fn ready<F: Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the hot path waited"),
    }
}

/// The runtime the issuer serves on and the validator refreshes its keys on.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A Cognito-profile mock issuer on a loopback port, with the one client.
pub fn start_issuer(runtime: &tokio::runtime::Runtime) -> IssuerHandle {
    runtime.block_on(async {
        let config = IssuerConfig::new(IssuerProfile::Cognito)
            .with_resource_server("MyService", ["weather_read"])
            .with_client(ClientConfig::new(CLIENT_ID, CLIENT_SECRET, [SCOPE]));
        mock_issuer::start(config).await.unwrap()
    })
}

/// A validator for `issuer`'s tokens whose validated-token cache holds `capacity` tokens.
pub fn validator(
    runtime: &tokio::runtime::Runtime,
    issuer: &IssuerHandle,
    capacity: usize,
) -> JwtValidator {
    let mut config = ValidatorConfig::new(
        MetadataSource::Authority(issuer.issuer().to_owned()),
        TokenProfile::Cognito {
            allowed_client_ids: vec![],
        },
    );
    config.validated_cache_capacity = capacity;
    runtime.block_on(JwtValidator::new(config)).unwrap()
}

/// Signs `count` distinct valid access tokens (each its own `jti`), spread over every
/// core: RSA signing takes about a millisecond, so 100,000 tokens on one thread would
/// take minutes.
pub fn mint(issuer: &IssuerHandle, count: usize) -> Vec<String> {
    let (header, claims) = issuer.token_template(CLIENT_ID, &[SCOPE]);
    let key = issuer.current_key();
    let jti = claims["jti"].as_str().unwrap().to_owned();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = count.div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..count)
            .step_by(chunk)
            .map(|start| {
                let (header, mut claims, key, jti) = (&header, claims.clone(), &key, &jti);
                scope.spawn(move || {
                    (start..(start + chunk).min(count))
                        .map(|i| {
                            // Fixed width: every token has the same length.
                            claims["jti"] = json!(format!("{jti}-{i:06}"));
                            key.sign_json(header, &claims).unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    })
}

/// A client-credentials client of the issuer's one client (many names may share it: each
/// name is its own cache entry).
pub fn client(issuer: &IssuerHandle) -> ClientCredentialsClient {
    ClientCredentialsClient::new(
        issuer.token_endpoint(),
        ClientId::new(CLIENT_ID),
        ClientSecret::new(CLIENT_SECRET),
    )
}

/// The inner service of an auth layer: 200 at once, so only the layer is measured (the
/// `growth` target does not use it).
#[allow(dead_code)]
#[derive(Clone)]
pub struct Ok200;

impl tower::Service<http::Request<axum::body::Body>> for Ok200 {
    type Response = http::Response<axum::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, _: http::Request<axum::body::Body>) -> Self::Future {
        std::future::ready(Ok(http::Response::new(axum::body::Body::empty())))
    }
}
