//! `GET /metrics` on my-service and my-bff after a known sequence of calls: every count
//! checked. Its own test binary with one test, because the Prometheus recorder is global
//! to the process (both services, run here in one process, share it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::StatusCode;
use mock_issuer::TokenProfile as IssuerProfile;
use serde_json::json;
use system_tests::*;

/// The value of the sample `name{labels}` whose labels are exactly `labels`; 0 if absent
/// (Prometheus semantics for a counter never incremented).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let want: BTreeMap<&str, &str> = labels.iter().copied().collect();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (metric, label_text) = match series.split_once('{') {
            Some((m, rest)) => (m, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if metric != name {
            continue;
        }
        let have: BTreeMap<&str, &str> = label_text
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap();
                (k, v.trim_matches('"'))
            })
            .collect();
        if have == want {
            return value.parse().unwrap();
        }
    }
    0.0
}

async fn get(url: String) -> reqwest::Response {
    http().get(url).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_a_known_sequence_of_calls() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let service = start_service(&issuer, cognito()).await;
    let bff = start_bff(&bff_config(&issuer, &service.base)).await;

    // 1. Three BFF calls: one token request (a miss, then two hits); my-service verifies
    //    the token once and answers twice from the validated-token cache.
    for _ in 0..3 {
        assert_eq!(
            get(format!("{}/weatherforecast", bff.base)).await.status(),
            200
        );
    }

    // 2. Refusals at my-service: no token, a malformed one, an expired one, one whose
    //    kid is unknown (one JWKS refresh for it), and a read-only token on POST.
    let api = format!("{}/weatherforecast", service.base);
    assert_eq!(get(api.clone()).await.status(), 401);
    let bearer = |token: &str| http().get(&api).bearer_auth(token.to_owned());
    assert_eq!(bearer("abc").send().await.unwrap().status(), 401);
    let (header, mut claims) = issuer.token_template(BFF_ID, &[READ]);
    claims["exp"] = json!(1_000_000);
    claims["iat"] = json!(999_000);
    let expired = issuer.sign(&header, &claims).unwrap();
    assert_eq!(bearer(&expired).send().await.unwrap().status(), 401);
    let (mut header, claims) = issuer.token_template(BFF_ID, &[READ]);
    header["kid"] = json!("not-a-published-kid");
    let unknown = issuer.sign(&header, &claims).unwrap();
    assert_eq!(bearer(&unknown).send().await.unwrap().status(), 401);
    let read_only = fetch_token(&issuer, BFF_ID, BFF_SECRET, Some(READ)).await;
    let post = http()
        .post(&api)
        .bearer_auth(&read_only)
        .json(&json!({"date": "2026-01-01", "temperatureC": 20, "summary": "Mild"}))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::FORBIDDEN);

    // 3. A second BFF whose downstream answers 401 once: one renewal, one retry.
    let seen = Arc::new(AtomicUsize::new(0));
    let stub = serve(axum::Router::new().route(
        "/weatherforecast",
        axum::routing::get({
            let seen = seen.clone();
            move || async move {
                if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                    (StatusCode::UNAUTHORIZED, axum::Json(json!([])))
                } else {
                    (StatusCode::OK, axum::Json(json!([])))
                }
            }
        }),
    ))
    .await;
    let bff2 = start_bff(&bff_config(&issuer, &stub.base)).await;
    assert_eq!(
        get(format!("{}/weatherforecast", bff2.base)).await.status(),
        200
    );
    assert_eq!(seen.load(Ordering::SeqCst), 2);

    // Both services expose the same process-wide registry.
    let scrape = get(format!("{}/metrics", service.base)).await;
    assert_eq!(scrape.status(), 200);
    assert!(
        scrape.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = scrape.text().await.unwrap();
    assert_eq!(get(format!("{}/metrics", bff.base)).await.status(), 200);
    println!("{text}");
    for secret in [read_only.as_str(), expired.as_str(), BFF_SECRET] {
        assert!(!text.contains(secret), "a secret in /metrics");
    }

    let client = ("client", "my-service");
    let m = |name, labels: &[(&str, &str)]| sample(&text, name, labels);
    // Client side (both BFFs: 3 + 1 calls; the second BFF's first call is a miss too).
    assert_eq!(
        m(
            "shared_auth_token_cache_lookups_total",
            &[client, ("result", "hit")]
        ),
        2.0
    );
    assert_eq!(
        m(
            "shared_auth_token_cache_lookups_total",
            &[client, ("result", "miss")]
        ),
        2.0
    );
    // BFF 1: one; BFF 2: one, then the renewal after the 401.
    assert_eq!(
        m(
            "shared_auth_token_requests_total",
            &[client, ("outcome", "success")]
        ),
        3.0
    );
    assert_eq!(
        m(
            "shared_auth_token_requests_total",
            &[client, ("outcome", "error")]
        ),
        0.0
    );
    assert_eq!(
        m(
            "shared_auth_token_request_duration_seconds_count",
            &[client, ("outcome", "success")]
        ),
        3.0
    );
    assert_eq!(m("shared_auth_unauthorized_retries_total", &[client]), 1.0);
    assert_eq!(m("shared_auth_token_refresh_ahead_total", &[client]), 0.0);

    // Server side.
    let accepted = m(
        "shared_auth_validations_total",
        &[
            ("outcome", "accepted"),
            ("reason", "ok"),
            ("issuer", issuer.issuer()),
        ],
    );
    assert_eq!(accepted, 4.0, "3 BFF calls + the read-only POST");
    assert_eq!(m("shared_auth_validated_cache_hits_total", &[]), 2.0);
    for reason in ["missing_token", "malformed", "expired", "unknown_kid"] {
        let n = m(
            "shared_auth_validations_total",
            &[("outcome", "rejected"), ("reason", reason)],
        );
        assert_eq!(n, 1.0, "rejected {reason}");
    }
    assert_eq!(m("shared_auth_scope_denials_total", &[]), 1.0);
    for (reason, n) in [("start", 1.0), ("unknown_kid", 1.0), ("interval", 0.0)] {
        let got = m(
            "shared_auth_jwks_refreshes_total",
            &[
                ("reason", reason),
                ("outcome", "success"),
                ("issuer", issuer.issuer()),
            ],
        );
        assert_eq!(got, n, "JWKS refreshes for {reason}");
    }
}
