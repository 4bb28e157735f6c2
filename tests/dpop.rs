//! DPoP (RFC 9449) at the resource server, over HTTP: my-service's API behind the real
//! validation layer, a real mock issuer. Bound tokens are signed with the issuer's key
//! (its template plus `cnf.jkt`); proofs are made here with P-256 keys from aws-lc-rs, so
//! every property of a proof can be broken on its own. Each refusal is checked for its
//! status and its `WWW-Authenticate` challenge(s).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use mock_issuer::{IssuerHandle, TokenProfile as IssuerProfile};
use serde_json::{Value, json};
use shared_auth::server::{DpopConfig, DpopMode, JwtValidator, ReplayStoreConfig, SecretValue};
use shared_auth::{Clock, ManualClock};
use system_tests::*;

#[path = "dpop_prover.rs"]
mod dpop_prover;
use dpop_prover::{Prover, b64, now};

const ALGS: &str = "DPoP algs=\"ES256 ES384 PS256 PS384 PS512 RS256 RS384 RS512 EdDSA\"";

/// A token for the BFF with the read scope, bound to `jkt`.
fn bound_token(issuer: &IssuerHandle, jkt: &str) -> String {
    forge(issuer, &[READ], |_, c| c["cnf"] = json!({"jkt": jkt}))
}

/// my-service's API against `issuer`, with DPoP allowed and its own URL as the public URL,
/// then as `edit` sets the DPoP configuration.
async fn start(issuer: &IssuerHandle, edit: impl FnOnce(&mut DpopConfig)) -> TestServer {
    start_with(issuer, |config| edit(&mut config.dpop)).await
}

/// As [`start`], `edit` given the whole validator configuration (its clock, say).
async fn start_with(
    issuer: &IssuerHandle,
    edit: impl FnOnce(&mut shared_auth::server::ValidatorConfig),
) -> TestServer {
    let (listener, base) = bind().await;
    let mut config = validator_config_for(issuer.issuer(), cognito());
    config.dpop.mode = DpopMode::Allowed;
    config.dpop.public_base_url = Some(base);
    edit(&mut config);
    let validator = JwtValidator::new(config).await.unwrap();
    serve_listener(
        listener,
        my_service::router(validator, "http://127.0.0.1:1/token"),
    )
}

fn url(server: &TestServer) -> String {
    format!("{}/weatherforecast", server.base)
}

/// GET with an Authorization value and DPoP headers.
async fn get(url: &str, authorization: &str, proofs: &[&str]) -> reqwest::Response {
    let mut request = http().get(url).header("authorization", authorization);
    for proof in proofs {
        request = request.header("dpop", *proof);
    }
    request.send().await.unwrap()
}

/// Every `WWW-Authenticate` value, in order.
fn challenges(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// Asserts a DPoP refusal: `status`, one `DPoP algs="..", error="<error>"` challenge, and a
/// problem+json body with the same status.
async fn assert_dpop_refused(response: reqwest::Response, status: u16, error: &str, case: &str) {
    assert_eq!(response.status().as_u16(), status, "{case}");
    let challenges = challenges(&response);
    assert_eq!(challenges.len(), 1, "{case}: {challenges:?}");
    assert!(
        challenges[0].starts_with(&format!("{ALGS}, error=\"{error}\", error_description=\"")),
        "{case}: {challenges:?}"
    );
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "{case}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status, "{case}");
}

#[tokio::test]
async fn a_valid_dpop_request_passes_in_allowed_and_required_mode() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let prover = Prover::new();
    let token = bound_token(&issuer, &prover.jkt);
    for mode in [DpopMode::Allowed, DpopMode::Required] {
        let server = start(&issuer, |d| d.mode = mode).await;
        let url = url(&server);
        // Twice with fresh proofs: the second time the token comes from the validated
        // cache, the proof is checked again.
        for _ in 0..2 {
            let proof = prover.proof("GET", &url, &token);
            let r = get(&url, &format!("DPoP {token}"), &[&proof]).await;
            assert_eq!(r.status(), 200, "{mode:?}");
            assert!(challenges(&r).is_empty());
        }
        // The scheme is case-insensitive.
        let proof = prover.proof("GET", &url, &token);
        let r = get(&url, &format!("dpop {token}"), &[&proof]).await;
        assert_eq!(r.status(), 200, "{mode:?}");
    }
}

#[tokio::test]
async fn bearer_tokens_pass_when_allowed_and_are_refused_when_dpop_is_required() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let token = fetch_token(&issuer, BFF_ID, BFF_SECRET, None).await;
    let allowed = start(&issuer, |_| {}).await;
    let r = get(&url(&allowed), &format!("Bearer {token}"), &[]).await;
    assert_eq!(r.status(), 200);
    // No credentials: both schemes are offered, one challenge per header value.
    let r = http().get(url(&allowed)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(challenges(&r), ["Bearer", ALGS]);

    let required = start(&issuer, |d| d.mode = DpopMode::Required).await;
    let r = get(&url(&required), &format!("Bearer {token}"), &[]).await;
    assert_dpop_refused(r, 401, "invalid_token", "bearer under required").await;
    let r = http().get(url(&required)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(challenges(&r), [ALGS]);

    // Off: only Bearer is offered, and the DPoP scheme counts as no credentials.
    let off = start(&issuer, |d| d.mode = DpopMode::Off).await;
    let r = http().get(url(&off)).send().await.unwrap();
    assert_eq!(challenges(&r), ["Bearer"]);
    let prover = Prover::new();
    let bound = bound_token(&issuer, &prover.jkt);
    let proof = prover.proof("GET", &url(&off), &bound);
    let r = get(&url(&off), &format!("DPoP {bound}"), &[&proof]).await;
    assert_eq!(r.status(), 401);
    assert_eq!(challenges(&r), ["Bearer"]);
}

#[tokio::test]
async fn a_dpop_bound_token_sent_as_bearer_is_refused_in_every_mode() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let prover = Prover::new();
    let token = bound_token(&issuer, &prover.jkt);
    for mode in [DpopMode::Off, DpopMode::Allowed] {
        let server = start(&issuer, |d| d.mode = mode).await;
        // Twice: the second time the token could come from the validated-token cache.
        for _ in 0..2 {
            let r = get(&url(&server), &format!("Bearer {token}"), &[]).await;
            assert_eq!(r.status(), 401, "{mode:?}");
            let found = challenges(&r);
            assert!(
                found[0].starts_with("Bearer error=\"invalid_token\"")
                    && found[0].contains("DPoP-bound"),
                "{mode:?}: {found:?}"
            );
            match mode {
                DpopMode::Off => assert_eq!(found.len(), 1),
                _ => assert_eq!(found[1], ALGS),
            }
        }
        // The same token with a proof passes where DPoP is accepted.
        if mode == DpopMode::Allowed {
            let proof = prover.proof("GET", &url(&server), &token);
            let r = get(&url(&server), &format!("DPoP {token}"), &[&proof]).await;
            assert_eq!(r.status(), 200);
        }
    }
    let required = start(&issuer, |d| d.mode = DpopMode::Required).await;
    let r = get(&url(&required), &format!("Bearer {token}"), &[]).await;
    assert_dpop_refused(r, 401, "invalid_token", "bound bearer under required").await;
}

#[tokio::test]
async fn bad_proofs_are_refused_with_invalid_dpop_proof() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let server = start(&issuer, |_| {}).await;
    let url = url(&server);
    let prover = Prover::new();
    let other = Prover::new();
    let token = bound_token(&issuer, &prover.jkt);
    let auth = format!("DPoP {token}");
    let t = now();
    let proof = |edit: &dyn Fn(&mut Value, &mut Value)| {
        prover.proof_with("GET", &url, &token, t, |h, c| edit(h, c))
    };

    // A replay: the first use passes, the second is refused.
    let once = proof(&|_, _| {});
    assert_eq!(get(&url, &auth, &[&once]).await.status(), 200);
    assert_dpop_refused(
        get(&url, &auth, &[&once]).await,
        401,
        "invalid_dpop_proof",
        "replay",
    )
    .await;

    let hmac = {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(serde_json::from_value(prover.jwk.clone()).unwrap());
        let ath =
            b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref());
        jsonwebtoken::encode(
            &header,
            &json!({"jti": "hmac", "htm": "GET", "htu": url, "iat": t, "ath": ath}),
            &jsonwebtoken::EncodingKey::from_secret(b"a shared secret, not a key pair").unwrap(),
        )
        .unwrap()
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "another htu",
            proof(&|_, c| c["htu"] = json!(format!("{url}/other"))),
        ),
        (
            "another host",
            proof(&|_, c| c["htu"] = json!("http://evil.example/weatherforecast")),
        ),
        ("another htm", proof(&|_, c| c["htm"] = json!("POST"))),
        ("stale iat", proof(&|_, c| c["iat"] = json!(t - 120))),
        ("future iat", proof(&|_, c| c["iat"] = json!(t + 60))),
        (
            "private jwk member d",
            proof(&|h, _| h["jwk"]["d"] = json!(b64(&[1; 32]))),
        ),
        (
            "symmetric jwk member k",
            proof(&|h, _| h["jwk"]["k"] = json!(b64(&[1; 32]))),
        ),
        ("HS256", hmac),
        ("typ JWT", proof(&|h, _| h["typ"] = json!("JWT"))),
        (
            "no jwk",
            proof(&|h, _| drop(h.as_object_mut().unwrap().remove("jwk"))),
        ),
        (
            "ath mismatch",
            proof(&|_, c| c["ath"] = json!(b64(&[0; 32]))),
        ),
        (
            "missing ath",
            proof(&|_, c| drop(c.as_object_mut().unwrap().remove("ath"))),
        ),
        (
            "missing jti",
            proof(&|_, c| drop(c.as_object_mut().unwrap().remove("jti"))),
        ),
        (
            "signed by a key other than cnf.jkt",
            other.proof("GET", &url, &token),
        ),
        ("jwk of one key, signed by another", {
            let mut p = proof(&|_, _| {});
            let forged = other.proof("GET", &url, &token);
            let sig = forged.rsplit('.').next().unwrap().to_owned();
            let cut = p.rfind('.').unwrap();
            p.truncate(cut + 1);
            p.push_str(&sig);
            p
        }),
        ("not a JWS", "a.b".to_owned()),
        ("too large", "a".repeat(9 * 1024)),
    ];
    for (case, proof) in &cases {
        let r = get(&url, &auth, &[proof]).await;
        assert_dpop_refused(r, 401, "invalid_dpop_proof", case).await;
    }
    // No DPoP header with the DPoP scheme; two DPoP headers.
    assert_dpop_refused(
        get(&url, &auth, &[]).await,
        401,
        "invalid_dpop_proof",
        "no proof",
    )
    .await;
    let (a, b) = (proof(&|_, _| {}), proof(&|_, _| {}));
    assert_dpop_refused(
        get(&url, &auth, &[&a, &b]).await,
        400,
        "invalid_request",
        "two proofs",
    )
    .await;
    // A bad or unbound token under the DPoP scheme is invalid_token, in the DPoP challenge.
    let expired = forge(&issuer, &[READ], |_, c| {
        c["cnf"] = json!({"jkt": prover.jkt});
        c["exp"] = json!(t - 600);
    });
    let p = prover.proof("GET", &url, &expired);
    assert_dpop_refused(
        get(&url, &format!("DPoP {expired}"), &[&p]).await,
        401,
        "invalid_token",
        "expired",
    )
    .await;
    let unbound = forge(&issuer, &[READ], |_, _| {});
    let p = prover.proof("GET", &url, &unbound);
    assert_dpop_refused(
        get(&url, &format!("DPoP {unbound}"), &[&p]).await,
        401,
        "invalid_token",
        "unbound",
    )
    .await;
    // After all that, a good proof still passes.
    let good = proof(&|_, _| {});
    assert_eq!(get(&url, &auth, &[&good]).await.status(), 200);
}

#[tokio::test]
async fn with_nonces_a_proof_needs_the_servers_current_nonce() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let clock = Arc::new(ManualClock::starting_now());
    // The validator's one clock moves the nonces.
    let server = start_with(&issuer, |config| {
        config.dpop.nonces = true;
        config.dpop.nonce_lifetime = Duration::from_secs(60);
        config.clock = clock.clone();
    })
    .await;
    let url = url(&server);
    let prover = Prover::new();
    let token = bound_token(&issuer, &prover.jkt);
    let auth = format!("DPoP {token}");
    let iat = || clock.now_unix_ms() / 1000;
    let proof = |nonce: Option<&str>| {
        prover.proof_with("GET", &url, &token, iat(), |_, c| {
            if let Some(n) = nonce {
                c["nonce"] = json!(n);
            }
        })
    };
    let nonce_of = |r: &reqwest::Response| {
        r.headers()
            .get("dpop-nonce")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    // Without a nonce: use_dpop_nonce, and the nonce to use.
    let r = get(&url, &auth, &[&proof(None)]).await;
    let nonce = nonce_of(&r).expect("a DPoP-Nonce header");
    assert_dpop_refused(r, 401, "use_dpop_nonce", "no nonce").await;
    // A made-up nonce: the same.
    let r = get(&url, &auth, &[&proof(Some("made-up"))]).await;
    assert!(nonce_of(&r).is_some());
    assert_dpop_refused(r, 401, "use_dpop_nonce", "made-up nonce").await;
    // With it: 200, and no new nonce is due yet.
    let r = get(&url, &auth, &[&proof(Some(&nonce))]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(nonce_of(&r), None);
    // One bucket later it still passes, and the answer carries a fresh nonce.
    clock.advance(Duration::from_secs(60));
    let r = get(&url, &auth, &[&proof(Some(&nonce))]).await;
    assert_eq!(r.status(), 200);
    let fresh = nonce_of(&r).expect("a fresh nonce");
    assert_ne!(fresh, nonce);
    // Two buckets later the old one has expired; the fresh one passes.
    clock.advance(Duration::from_secs(60));
    let r = get(&url, &auth, &[&proof(Some(&nonce))]).await;
    assert_dpop_refused(r, 401, "use_dpop_nonce", "expired nonce").await;
    let r = get(&url, &auth, &[&proof(Some(&fresh))]).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn the_public_base_url_is_the_htu_behind_a_proxy_and_nesting_keeps_the_full_path() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let mut config = validator_config_for(issuer.issuer(), cognito());
    // The proxy serves this service under https://api.example.com/edge/ (and strips /edge).
    config.dpop.mode = DpopMode::Allowed;
    config.dpop.public_base_url = Some("https://API.example.com/edge/".into());
    let validator = JwtValidator::new(config).await.unwrap();
    // The API nested under /svc: its own router sees /weatherforecast.
    let server = serve(axum::Router::new().nest("/svc", my_service::api(&validator))).await;
    let socket_url = format!("{}/svc/weatherforecast", server.base);
    let prover = Prover::new();
    let token = bound_token(&issuer, &prover.jkt);
    let auth = format!("DPoP {token}");
    let public = prover.proof(
        "GET",
        "https://api.example.com:443/edge/svc/weatherforecast",
        &token,
    );
    assert_eq!(get(&socket_url, &auth, &[&public]).await.status(), 200);
    // The socket's own URL is not this service's public URL.
    let local = prover.proof("GET", &socket_url, &token);
    assert_dpop_refused(
        get(&socket_url, &auth, &[&local]).await,
        401,
        "invalid_dpop_proof",
        "socket URL",
    )
    .await;
    // Nor is the path without the nesting prefix (the nested router's own path).
    let short = prover.proof(
        "GET",
        "https://api.example.com/edge/weatherforecast",
        &token,
    );
    assert_dpop_refused(
        get(&socket_url, &auth, &[&short]).await,
        401,
        "invalid_dpop_proof",
        "short path",
    )
    .await;
}

/// A token and proof seen by another API (made for `http://other-api/...`) are refused
/// here even when the request says `Host: other-api`: the htu is compared with this API's
/// own URL, never with what the caller writes. Without a URL, DPoP does not start.
#[tokio::test]
async fn a_proof_for_another_api_is_refused_whatever_the_host_header_says() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let (listener, _) = bind().await;
    let mut config = validator_config_for(issuer.issuer(), cognito());
    config.dpop.mode = DpopMode::Allowed;
    config.resource = Some(shared_auth::server::ProtectedResource::new(format!(
        "http://{}",
        listener.local_addr().unwrap()
    )));
    let validator = JwtValidator::new(config).await.unwrap();
    let server = serve_listener(
        listener,
        my_service::router(validator, "http://127.0.0.1:1/token"),
    );
    let prover = Prover::new();
    let token = bound_token(&issuer, &prover.jkt);
    let elsewhere = prover.proof("GET", "http://other-api/weatherforecast", &token);
    let spoofed = http()
        .get(url(&server))
        .header("host", "other-api")
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", &elsewhere)
        .send()
        .await
        .unwrap();
    assert_dpop_refused(spoofed, 401, "invalid_dpop_proof", "spoofed Host").await;
    // The proof made for this API's URL (the resource's origin) passes.
    let here = prover.proof("GET", &url(&server), &token);
    assert_eq!(
        get(&url(&server), &format!("DPoP {token}"), &[&here])
            .await
            .status(),
        200
    );

    // DPoP on without this API's URL: no start.
    let mut config = validator_config_for(issuer.issuer(), cognito());
    config.dpop.mode = DpopMode::Allowed;
    let Err(e) = JwtValidator::new(config).await else {
        panic!("DPoP without the API's URL started");
    };
    assert!(e.to_string().contains("public base URL"), "{e}");
}

#[tokio::test]
async fn a_replay_store_that_cannot_answer_fails_closed_with_503() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    // A closed port: the Redis replay store cannot connect.
    let closed = test_support::CLOSED;
    let server = start(&issuer, |d| {
        d.replay_store = ReplayStoreConfig::Redis {
            url: SecretValue::new(format!("redis://{closed}")),
            key_prefix: "dpop-test:".into(),
            timeout: Duration::from_millis(200),
            per_key: 10_000,
        };
    })
    .await;
    let url = url(&server);
    let prover = Prover::new();
    let token = bound_token(&issuer, &prover.jkt);
    let started = std::time::Instant::now();
    let r = get(
        &url,
        &format!("DPoP {token}"),
        &[&prover.proof("GET", &url, &token)],
    )
    .await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded, never hangs"
    );
    // Bearer requests do not need the replay store.
    let bearer = fetch_token(&issuer, BFF_ID, BFF_SECRET, None).await;
    assert_eq!(
        get(&url, &format!("Bearer {bearer}"), &[]).await.status(),
        200
    );
}

/// Issue 25: an LRU store forgot the oldest live `jti` once it was full, so a proof could be
/// replayed after enough others. Full of unexpired entries, the store refuses new proofs
/// (503, `Retry-After`) and keeps every live one until its window has passed.
#[tokio::test]
async fn a_full_replay_store_refuses_new_proofs_rather_than_forget_live_ones() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let clock = Arc::new(ManualClock::starting_now());
    let server = start_with(&issuer, |config| {
        config.dpop.replay_store = ReplayStoreConfig::InMemory {
            capacity: 4,
            per_key: 4,
        };
        config.clock = clock.clone();
    })
    .await;
    let url = url(&server);
    let prover = Prover::new();
    let token = bound_token(&issuer, &prover.jkt);
    let auth = format!("DPoP {token}");
    let proof = |jti: &str| {
        let iat = clock.now_unix_ms() / 1000;
        prover.proof_with("GET", &url, &token, iat, |_, c| c["jti"] = json!(jti))
    };
    let earliest = proof("p-0");
    assert_eq!(get(&url, &auth, &[&earliest]).await.status(), 200);
    for i in 1..4 {
        assert_eq!(
            get(&url, &auth, &[&proof(&format!("p-{i}"))])
                .await
                .status(),
            200
        );
    }
    // Full of live entries: new proofs are refused, many times over (an LRU would have
    // evicted the earliest by now).
    for i in 4..40 {
        let r = get(&url, &auth, &[&proof(&format!("p-{i}"))]).await;
        assert_eq!(r.status(), 503, "proof {i} into a full store");
        let retry: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=66).contains(&retry), "Retry-After {retry}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["status"], 503);
    }
    // The earliest proof is still remembered.
    assert_dpop_refused(
        get(&url, &auth, &[&earliest]).await,
        401,
        "invalid_dpop_proof",
        "the earliest proof replayed into a full store",
    )
    .await;
    // Once the window (60 s max age + 5 s future skew) has passed, room again.
    clock.advance(Duration::from_secs(66));
    assert_eq!(get(&url, &auth, &[&proof("p-late")]).await.status(), 200);
}

/// One client's proof key past its share of the replay store gets in only while the store is
/// less than half full: then that client gets 503, and another client still gets in.
#[tokio::test]
async fn one_client_cannot_fill_the_replay_store_for_the_others() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let server = start(&issuer, |d| {
        d.replay_store = ReplayStoreConfig::InMemory {
            capacity: 10,
            per_key: 3,
        };
    })
    .await;
    let url = url(&server);
    let (busy, quiet) = (Prover::new(), Prover::new());
    let busy_token = bound_token(&issuer, &busy.jkt);
    let quiet_token = bound_token(&issuer, &quiet.jkt);
    // Its share (3), and past it while the store (10) is less than half full.
    for _ in 0..5 {
        let proof = busy.proof("GET", &url, &busy_token);
        let r = get(&url, &format!("DPoP {busy_token}"), &[&proof]).await;
        assert_eq!(r.status(), 200);
    }
    let proof = busy.proof("GET", &url, &busy_token);
    let r = get(&url, &format!("DPoP {busy_token}"), &[&proof]).await;
    assert_eq!(r.status(), 503, "past its share in a half-full store");
    assert!(r.headers().contains_key("retry-after"));
    let proof = quiet.proof("GET", &url, &quiet_token);
    let r = get(&url, &format!("DPoP {quiet_token}"), &[&proof]).await;
    assert_eq!(r.status(), 200, "another client still gets in");
}

/// A bound token signed with a key the service has not loaded yet: the request waits for
/// the key refresh (the boxed path), then its proof is checked in full, replay included.
#[tokio::test]
async fn a_dpop_request_that_waits_for_the_issuers_new_key_is_checked_in_full() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    // Two services, each with its own key cache, both started before the rotation.
    let (one, two) = (start(&issuer, |_| {}).await, start(&issuer, |_| {}).await);
    let fetches_at_start = issuer.stats().jwks_fetches;
    issuer.rotate_key().unwrap();
    let prover = Prover::new();
    let token = bound_token(&issuer, &prover.jkt);
    let auth = format!("DPoP {token}");
    let proof = prover.proof("GET", &url(&one), &token);
    assert_eq!(get(&url(&one), &auth, &[&proof]).await.status(), 200);
    assert_eq!(issuer.stats().jwks_fetches, fetches_at_start + 1);
    assert_dpop_refused(
        get(&url(&one), &auth, &[&proof]).await,
        401,
        "invalid_dpop_proof",
        "replay after the refresh",
    )
    .await;
    // The same wait with a proof made for the other service: refused once the key is in.
    assert_dpop_refused(
        get(
            &url(&two),
            &auth,
            &[&prover.proof("GET", &url(&one), &token)],
        )
        .await,
        401,
        "invalid_dpop_proof",
        "a proof for another URL, after the refresh",
    )
    .await;
    assert_eq!(issuer.stats().jwks_fetches, fetches_at_start + 2);
}
