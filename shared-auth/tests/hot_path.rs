//! The repeated-token path allocates nothing and copies nothing, as counted by
//! allocation-counter (its global allocator counts the allocations of the measuring
//! thread only, so the runtime's other threads never blur a figure).
//!
//! A test binary of its own, because a global allocator is per binary.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use axum::body::Body;
use http::{Request, Response};
use mock_issuer::{ClientConfig, IssuerConfig, IssuerHandle, TokenProfile as Profile};
use serde_json::json;
use shared_auth::server::{
    JwtAuthLayer, JwtValidator, MetadataSource, Principal, TokenProfile, ValidatorConfig,
};
use tower::{Layer, Service};

/// The allocations `f` makes on this thread, and its result.
fn allocations<R>(f: impl FnOnce() -> R) -> (u64, R) {
    let mut result = None;
    let info = allocation_counter::measure(|| result = Some(f()));
    (info.count_total, result.unwrap())
}

async fn setup() -> (IssuerHandle, JwtValidator) {
    let issuer = mock_issuer::start(
        IssuerConfig::new(Profile::Cognito)
            .with_resource_server("Api", ["read"])
            .with_client(ClientConfig::new(
                "svc",
                "svc-secret-0123456789",
                ["Api/read"],
            )),
    )
    .await
    .unwrap();
    let validator = JwtValidator::new(ValidatorConfig::new(
        MetadataSource::Authority(issuer.issuer().to_owned()),
        TokenProfile::Cognito {
            allowed_client_ids: Vec::new(),
        },
    ))
    .await
    .unwrap();
    (issuer, validator)
}

/// `n` distinct valid tokens, each validated once.
async fn validated_tokens(
    issuer: &IssuerHandle,
    validator: &JwtValidator,
    n: usize,
) -> Vec<String> {
    let mut tokens = Vec::with_capacity(n);
    for i in 0..n {
        let (header, mut claims) = issuer.token_template("svc", &["Api/read"]);
        claims["jti"] = json!(format!("t-{i}"));
        // Claims a handler might read, so that a deep copy would show.
        claims["tenant"] = json!({"id": i, "tags": ["a", "b", "c"]});
        let token = issuer.sign(&header, &claims).unwrap();
        validator.validate(&token).await.unwrap();
        tokens.push(token);
    }
    tokens
}

#[tokio::test]
async fn a_repeated_token_is_looked_up_without_allocating_for_one_caller_or_hundreds() {
    let (issuer, validator) = setup().await;
    // More tokens than the 64 slots of the lock-free front: most lookups of the first
    // round miss it and are served by the main tier, which moves the entry to the front.
    let tokens = validated_tokens(&issuer, &validator, 300).await;
    for round in 0..3 {
        let (count, hits) = allocations(|| {
            tokens
                .iter()
                .filter(|t| validator.validated(t.as_bytes()).is_some())
                .count()
        });
        assert_eq!(hits, tokens.len(), "round {round}: every token is cached");
        assert_eq!(
            count, 0,
            "round {round}: {count} allocations for {hits} hits"
        );
    }
    // One caller: the same token again and again (front hits).
    let (count, _) = allocations(|| {
        for _ in 0..1000 {
            assert!(validator.validated(tokens[0].as_bytes()).is_some());
        }
    });
    assert_eq!(count, 0);
}

#[tokio::test]
async fn a_principal_is_cloned_by_reference_and_its_claims_parsed_once() {
    let (issuer, validator) = setup().await;
    let token = &validated_tokens(&issuer, &validator, 1).await[0];
    let principal = validator.validated(token.as_bytes()).unwrap();
    let (count, clones) = allocations(|| (0..100).map(|_| principal.clone()).collect::<Vec<_>>());
    assert_eq!(count, 1, "the Vec only: no clone allocates");
    // The claims map is built on first use, once, and shared by every clone and by the
    // cache entry.
    let (first, tenant) = allocations(|| clones[0].claim("tenant").cloned());
    assert!(first > 0, "built on first use");
    assert_eq!(tenant, Some(json!({"id": 0, "tags": ["a", "b", "c"]})));
    let again = validator.validated(token.as_bytes()).unwrap();
    let (count, _) = allocations(|| {
        assert_eq!(again.claims().len(), principal.claims().len());
        assert_eq!(again.client_id(), "svc");
    });
    assert_eq!(count, 0, "parsed once, for every holder of the principal");
}

#[derive(Clone)]
struct Ok200;

impl Service<Request<Body>> for Ok200 {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Body>, Infallible>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, _: Request<Body>) -> Self::Future {
        ready(Ok(Response::new(Body::empty())))
    }
}

fn request(token: &str) -> Request<Body> {
    Request::get("/weatherforecast")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn the_auth_layer_adds_no_allocation_beyond_handing_the_principal_over() {
    let (issuer, validator) = setup().await;
    let tokens = validated_tokens(&issuer, &validator, 100).await;
    let mut layered = JwtAuthLayer::new(validator.clone()).layer(Ok200);
    let mut bare = Ok200;
    // What putting a principal into a request's extensions costs (http's type map).
    let principal: Principal = validator.validated(tokens[0].as_bytes()).unwrap();
    let mut probe = request(&tokens[0]);
    let (handover, _) = allocations(|| probe.extensions_mut().insert(principal.clone()));
    for token in &tokens {
        // Requests are built outside the count.
        let (req, other) = (request(token), request(token));
        let (with_layer, response) = allocations(|| poll_ready_now(layered.call(req)));
        assert_eq!(response.unwrap().status(), 200);
        let (without, _) = allocations(|| poll_ready_now(bare.call(other)));
        assert_eq!(
            with_layer,
            without + handover,
            "the layer allocated beyond the extension insert ({handover})"
        );
    }
}

fn poll_ready_now<F: std::future::Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    match std::pin::pin!(future).poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the hot path waited"),
    }
}
