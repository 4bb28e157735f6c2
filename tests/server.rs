//! my-service behind the real validation layer, against a real mock issuer on a socket:
//! valid and invalid tokens for each profile, forged tokens, key refresh on unknown `kid`,
//! the refresh rate limit, JWKS outages and key rotation. Every refusal is checked for an
//! RFC 6750 challenge, an RFC 9457 body, and no echo of the token. my-service's own API
//! (its routes, scopes and documents) is tested in `my-service/tests/app.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use mock_issuer::TokenProfile as IssuerProfile;
use mock_issuer::keys::{Algorithm, SigningKey};
use reqwest::StatusCode;
use serde_json::{Value, json};
use shared_auth::server::TokenProfile;
use system_tests::*;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn rfc9068() -> TokenProfile {
    TokenProfile::Rfc9068 {
        audience: "MyService".into(),
    }
}

async fn get_with(base: &str, token: &str) -> reqwest::Response {
    http()
        .get(format!("{base}/weatherforecast"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn time_issuer_and_token_use_violations_are_invalid_token() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let service = start_service(&issuer, cognito()).await;
    let t = now();
    let cases: Vec<(&str, String)> = vec![
        (
            "expired",
            forge(&issuer, &[READ], |_, c| c["exp"] = json!(t - 120)),
        ),
        (
            "nbf in future",
            forge(&issuer, &[READ], |_, c| c["nbf"] = json!(t + 600)),
        ),
        (
            "iat in future",
            forge(&issuer, &[READ], |_, c| c["iat"] = json!(t + 600)),
        ),
        (
            "no exp",
            forge(&issuer, &[READ], |_, c| {
                drop(c.as_object_mut().unwrap().remove("exp"))
            }),
        ),
        (
            "wrong issuer",
            forge(&issuer, &[READ], |_, c| {
                c["iss"] = json!("http://evil.example")
            }),
        ),
        (
            "issuer with trailing slash",
            forge(&issuer, &[READ], |_, c| {
                c["iss"] = json!(format!("{}/", issuer.issuer()))
            }),
        ),
        (
            "token_use id",
            forge(&issuer, &[READ], |_, c| c["token_use"] = json!("id")),
        ),
        (
            "no token_use",
            forge(&issuer, &[READ], |_, c| {
                drop(c.as_object_mut().unwrap().remove("token_use"))
            }),
        ),
    ];
    for (name, token) in cases {
        let r = get_with(&service.base, &token).await;
        assert_eq!(r.status(), 401, "{name}");
        assert_refused(r, 401, Some("invalid_token"), &token).await;
    }
    // Expired by less than the leeway (60 s) is still accepted.
    let recent = forge(&issuer, &[READ], |_, c| c["exp"] = json!(t - 20));
    assert_eq!(
        get_with(&service.base, &recent).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn rfc9068_requires_typ_and_audience() {
    let issuer = start_issuer(IssuerProfile::Rfc9068).await;
    let service = start_service(&issuer, rfc9068()).await;
    let token = fetch_token(&issuer, BFF_ID, BFF_SECRET, None).await;
    assert_eq!(
        get_with(&service.base, &token).await.status(),
        StatusCode::OK
    );
    let ok_variants = [
        forge(&issuer, &[READ], |h, _| {
            h["typ"] = json!("application/AT+JWT")
        }),
        forge(&issuer, &[READ], |_, c| {
            c["aud"] = json!(["other", "MyService"])
        }),
        forge(&issuer, &[READ], |_, c| c["scope"] = json!([READ, "other"])),
        forge(&issuer, &[READ], |_, c| {
            c.as_object_mut().unwrap().remove("scope");
            c["scp"] = json!(READ);
        }),
    ];
    for token in ok_variants {
        assert_eq!(
            get_with(&service.base, &token).await.status(),
            StatusCode::OK
        );
    }
    let bad = [
        (
            "missing aud",
            forge(&issuer, &[READ], |_, c| {
                drop(c.as_object_mut().unwrap().remove("aud"))
            }),
        ),
        (
            "wrong aud",
            forge(&issuer, &[READ], |_, c| c["aud"] = json!("OtherService")),
        ),
        (
            "aud array without ours",
            forge(&issuer, &[READ], |_, c| c["aud"] = json!(["a", "b"])),
        ),
        (
            "typ JWT",
            forge(&issuer, &[READ], |h, _| h["typ"] = json!("JWT")),
        ),
        (
            "no typ",
            forge(&issuer, &[READ], |h, _| {
                drop(h.as_object_mut().unwrap().remove("typ"))
            }),
        ),
    ];
    for (name, token) in bad {
        let r = get_with(&service.base, &token).await;
        assert_eq!(r.status(), 401, "{name}");
        assert_refused(r, 401, Some("invalid_token"), &token).await;
    }
}

#[tokio::test]
async fn forged_algorithms_and_foreign_keys_never_verify() {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let service = start_service(&issuer, cognito()).await;
    let (header, claims) = issuer.token_template(BFF_ID, &[READ]);
    let payload = b64(claims.to_string().as_bytes());

    // alg none, with and without a signature part.
    let none_header = b64(json!({"alg": "none", "kid": issuer.current_kid()})
        .to_string()
        .as_bytes());
    let mut forged = vec![
        format!("{none_header}.{payload}."),
        format!("{none_header}.{payload}.c2ln"),
    ];

    // HS256 "signed" with the issuer's public key material (JWK JSON and raw modulus).
    let jwks: Value = get_json(issuer.jwks_uri()).await;
    let jwk = &jwks["keys"][0];
    let modulus = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(jwk["n"].as_str().unwrap())
        .unwrap();
    for secret in [jwk.to_string().into_bytes(), modulus] {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        h.kid = Some(issuer.current_kid());
        forged.push(
            jsonwebtoken::encode(
                &h,
                &claims,
                &jsonwebtoken::EncodingKey::from_secret(&secret).unwrap(),
            )
            .unwrap(),
        );
    }
    // A header alg that differs from the key's (RS384 on an RS256 key).
    let mut h = header.clone();
    h["alg"] = json!("RS384");
    forged.push(issuer.sign(&h, &claims).unwrap());
    // A signature from another key that claims the issuer's kid.
    let other = SigningKey::generate(Algorithm::RS256).unwrap();
    forged.push(other.sign_json(&header, &claims).unwrap());
    // crit with an unknown extension.
    let mut h = header.clone();
    h["crit"] = json!(["exp-ext"]);
    h["exp-ext"] = json!(true);
    forged.push(issuer.sign(&h, &claims).unwrap());
    // One flipped bit in the payload of a valid token.
    let valid = issuer.sign(&header, &claims).unwrap();
    let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
    let mut bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&parts[1])
        .unwrap();
    bytes[10] ^= 0x01;
    parts[1] = b64(&bytes);
    forged.push(parts.join("."));

    for token in &forged {
        let r = get_with(&service.base, token).await;
        assert_eq!(r.status(), 401, "{token}");
        assert_refused(r, 401, Some("invalid_token"), token).await;
    }
    assert_eq!(
        get_with(&service.base, &valid).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn unknown_kid_refreshes_once_and_the_same_request_succeeds() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let service = start_service(&issuer, cognito()).await;
    let fetches_at_start = issuer.stats().jwks_fetches;
    let old = fetch_token(&issuer, BFF_ID, BFF_SECRET, None).await;
    issuer.rotate_key().unwrap();
    let new = fetch_token(&issuer, BFF_ID, BFF_SECRET, None).await;
    // The service has never seen the new kid: this very request triggers the refresh.
    assert_eq!(get_with(&service.base, &new).await.status(), StatusCode::OK);
    assert_eq!(issuer.stats().jwks_fetches, fetches_at_start + 1);
    // Both keys are now known: old and new tokens work, with no further fetch.
    assert_eq!(get_with(&service.base, &old).await.status(), StatusCode::OK);
    assert_eq!(get_with(&service.base, &new).await.status(), StatusCode::OK);
    assert_eq!(issuer.stats().jwks_fetches, fetches_at_start + 1);
}

#[tokio::test]
async fn a_flood_of_unknown_kids_costs_at_most_one_jwks_fetch_per_window() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let service = start_service(&issuer, cognito()).await;
    let before = issuer.stats().jwks_fetches;
    let tokens: Vec<String> = (0..200)
        .map(|i| {
            forge(&issuer, &[READ], |h, _| {
                h["kid"] = json!(format!("garbage-{i}"))
            })
        })
        .collect();
    let flood = |tokens: Vec<String>| {
        let base = service.base.clone();
        concurrently(tokens.into_iter().map(move |t| {
            let base = base.clone();
            async move { get_with(&base, &t).await.status() }
        }))
    };
    let statuses = flood(tokens.clone()).await;
    assert!(statuses.iter().all(|s| *s == 401));
    let after_flood = issuer.stats().jwks_fetches;
    assert!(
        after_flood - before <= 1,
        "{} fetches",
        after_flood - before
    );
    // A second wave inside the same 10 s window fetches nothing.
    let statuses = flood(tokens.clone()).await;
    assert!(statuses.iter().all(|s| *s == 401));
    assert_eq!(issuer.stats().jwks_fetches, after_flood);
    // Valid tokens are unaffected.
    let token = fetch_token(&issuer, BFF_ID, BFF_SECRET, None).await;
    assert_eq!(
        get_with(&service.base, &token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn jwks_down_after_start_keeps_validating_with_the_last_good_keys() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let service = start_service(&issuer, cognito()).await;
    let token = fetch_token(&issuer, BFF_ID, BFF_SECRET, None).await;
    issuer.set_jwks_available(false);
    assert_eq!(
        get_with(&service.base, &token).await.status(),
        StatusCode::OK
    );
    // An unknown kid while the JWKS is down: refused, and the known keys survive.
    let unknown = forge(&issuer, &[READ], |h, _| h["kid"] = json!("not-there"));
    assert_eq!(get_with(&service.base, &unknown).await.status(), 401);
    assert_eq!(
        get_with(&service.base, &token).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        http()
            .get(format!("{}/readyz", service.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn rotation_keeps_old_and_new_tokens_valid() {
    let issuer = start_issuer(IssuerProfile::Rfc9068).await;
    let service = start_service(&issuer, rfc9068()).await;
    let old = fetch_token(&issuer, BFF_ID, BFF_SECRET, None).await;
    issuer.rotate_key().unwrap();
    let new = fetch_token(&issuer, BFF_ID, BFF_SECRET, None).await;
    assert_ne!(decode_part(&old, 0)["kid"], decode_part(&new, 0)["kid"]);
    assert_eq!(get_with(&service.base, &new).await.status(), StatusCode::OK);
    assert_eq!(get_with(&service.base, &old).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn start_fails_clearly_when_the_issuer_is_unreachable_or_mismatched() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    // Discovery names a different issuer than the configured authority.
    let mut config = service_config(&issuer, cognito());
    config.validator.metadata = shared_auth::server::MetadataSource::Authority(
        issuer.issuer().replace("127.0.0.1", "localhost"),
    );
    let err = my_service::build(&config).await.unwrap_err().to_string();
    assert!(err.contains("names issuer"), "{err}");
    // A trailing slash on the authority is fine.
    config.validator.metadata =
        shared_auth::server::MetadataSource::Authority(format!("{}/", issuer.issuer()));
    assert!(my_service::build(&config).await.is_ok());
    // The explicit metadata address (Cognito style) derives the expected issuer.
    config.validator.metadata =
        shared_auth::server::MetadataSource::MetadataAddress(issuer.discovery_url());
    assert!(my_service::build(&config).await.is_ok());
    // Unreachable issuer: start fails, unless lazy; lazy answers 503 until keys load.
    let addr = issuer.addr();
    issuer.shutdown().await;
    let mut config = service_config_for(&format!("http://{addr}"), cognito());
    let err = my_service::build(&config).await.unwrap_err().to_string();
    assert!(err.contains("discovery document"), "{err}");
    config.validator.metadata = shared_auth::server::MetadataSource::Jwks {
        jwks_uri: format!("http://{addr}/.well-known/jwks.json"),
        issuer: format!("http://{addr}"),
    };
    let err = my_service::build(&config).await.unwrap_err().to_string();
    assert!(err.contains("signing keys"), "{err}");
    config.validator.lazy = true;
    let service = serve(my_service::build(&config).await.unwrap()).await;
    assert_eq!(
        http()
            .get(format!("{}/readyz", service.base))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
    assert_eq!(
        http()
            .get(format!("{}/healthz", service.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = get_with(&service.base, "a.b.c").await;
    assert_eq!(
        r.status(),
        401,
        "malformed tokens are refused before any key is needed"
    );
}

/// The validator, my-service's router around it, and the server, so a test can look into
/// the validator (its validated-token cache) while talking HTTP to the service.
async fn service_with(
    config: shared_auth::server::ValidatorConfig,
) -> (shared_auth::server::JwtValidator, TestServer) {
    let validator = shared_auth::server::JwtValidator::new(config)
        .await
        .unwrap();
    let server = serve(my_service::router(validator.clone(), "http://unused/token")).await;
    (validator, server)
}

fn validator_config(
    issuer: &mock_issuer::IssuerHandle,
    profile: TokenProfile,
) -> shared_auth::server::ValidatorConfig {
    service_config(issuer, profile).validator
}

#[tokio::test]
async fn a_repeated_token_is_answered_from_the_validated_token_cache() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let (validator, service) = service_with(validator_config(&issuer, cognito())).await;
    let token = fetch_token(&issuer, BFF_ID, BFF_SECRET, None).await;
    assert!(
        validator.validated(token.as_bytes()).is_none(),
        "not yet seen"
    );
    assert_eq!(
        get_with(&service.base, &token).await.status(),
        StatusCode::OK
    );
    let cached = validator
        .validated(token.as_bytes())
        .expect("the accepted token is in the validated-token cache");
    assert_eq!(cached.client_id(), BFF_ID);
    // A hit needs no key: with the JWKS gone and the key set emptied of this kid, the
    // repeated token is still answered (from the cache), a fresh one is not.
    assert_eq!(
        get_with(&service.base, &token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn iss_must_be_one_string() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let service = start_service(&issuer, cognito()).await;
    let iss = issuer.issuer().to_owned();
    let bad = [
        ("array with ours", json!([iss])),
        ("array, evil first", json!(["https://evil.example", iss])),
        ("array, ours first", json!([iss, "https://evil.example"])),
        ("number", json!(1)),
        ("object", json!({ "iss": iss })),
        ("other string", json!("https://evil.example")),
        ("ours plus a slash", json!(format!("{iss}/"))),
    ];
    for (name, value) in bad {
        let token = forge(&issuer, &[READ], |_, c| c["iss"] = value.clone());
        let r = get_with(&service.base, &token).await;
        assert_eq!(r.status(), 401, "{name}");
        assert_refused(r, 401, Some("invalid_token"), &token).await;
    }
    let ok = forge(&issuer, &[READ], |_, c| c["iss"] = json!(iss));
    assert_eq!(get_with(&service.base, &ok).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn rfc9068_requires_every_claim_of_section_2_2() {
    let issuer = start_issuer(IssuerProfile::Rfc9068).await;
    let service = start_service(&issuer, rfc9068()).await;
    let whole = forge(&issuer, &[READ], |_, _| {});
    assert_eq!(
        get_with(&service.base, &whole).await.status(),
        StatusCode::OK
    );
    for claim in ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"] {
        let token = forge(&issuer, &[READ], |_, c| {
            assert!(
                c.as_object_mut().unwrap().remove(claim).is_some(),
                "{claim}"
            );
        });
        let r = get_with(&service.base, &token).await;
        assert_eq!(r.status(), 401, "without {claim}");
        assert_refused(r, 401, Some("invalid_token"), &token).await;
    }
    for (claim, value) in [
        ("jti", json!(7)),
        ("sub", json!(["a"])),
        ("iat", json!("now")),
    ] {
        let token = forge(&issuer, &[READ], |_, c| c[claim] = value.clone());
        assert_eq!(
            get_with(&service.base, &token).await.status(),
            401,
            "{claim} mistyped"
        );
    }
}

#[tokio::test]
async fn other_profiles_refuse_the_types_of_other_jwts() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let generic = TokenProfile::Generic { audience: None };
    for profile in [cognito(), generic] {
        let service = start_service(&issuer, profile.clone()).await;
        for typ in [
            "logout+jwt",
            "secevent+jwt",
            "application/dpop+jwt",
            "id_token+jwt",
            "vc+sd-jwt",
        ] {
            let token = forge(&issuer, &[READ], |h, _| h["typ"] = json!(typ));
            let r = get_with(&service.base, &token).await;
            assert_eq!(r.status(), 401, "{typ} under {profile:?}");
            assert_refused(r, 401, Some("invalid_token"), &token).await;
        }
        for typ in ["JWT", "at+jwt", "application/at+jwt"] {
            let token = forge(&issuer, &[READ], |h, _| h["typ"] = json!(typ));
            assert_eq!(get_with(&service.base, &token).await.status(), 200, "{typ}");
        }
    }
}

#[tokio::test]
async fn keys_published_without_alg_verify_within_their_family() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    // Entra ID publishes its keys so: kty, n, e, kid, no alg.
    issuer.set_publish_alg(false);
    assert!(
        jwks(&issuer)
            .await
            .keys
            .iter()
            .all(|k| k.common.key_algorithm.is_none())
    );
    let service = start_service(&issuer, cognito()).await;
    let token = fetch_token(&issuer, BFF_ID, BFF_SECRET, None).await;
    assert_eq!(
        get_with(&service.base, &token).await.status(),
        StatusCode::OK
    );
    // The header's alg stays bound to the key's family: an EC or HMAC alg on the RSA kid
    // is refused before any signature check.
    for alg in ["ES256", "HS256", "EdDSA"] {
        let forged = forge(&issuer, &[READ], |h, _| h["alg"] = json!(alg));
        let r = get_with(&service.base, &forged).await;
        assert_eq!(r.status(), 401, "{alg}");
    }
}

#[tokio::test]
async fn new_material_under_an_old_kid_invalidates_what_the_old_material_signed() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let mut config = validator_config(&issuer, cognito());
    config.refresh_interval = std::time::Duration::from_millis(200);
    let (validator, service) = service_with(config).await;
    let old = fetch_token(&issuer, BFF_ID, BFF_SECRET, None).await;
    assert_eq!(get_with(&service.base, &old).await.status(), StatusCode::OK);
    assert!(validator.validated(old.as_bytes()).is_some(), "cached");
    issuer.replace_current_key_material().unwrap();
    let new = fetch_token(&issuer, BFF_ID, BFF_SECRET, None).await;
    assert_eq!(
        decode_part(&old, 0)["kid"],
        decode_part(&new, 0)["kid"],
        "same kid"
    );
    // Once the service has refreshed, the new material verifies...
    eventually(
        std::time::Duration::from_secs(10),
        "the service picks up the new material",
        || async { get_with(&service.base, &new).await.status() == StatusCode::OK },
    )
    .await;
    // ...and the token signed with the old material is no longer served from the cache.
    assert!(
        validator.validated(old.as_bytes()).is_none(),
        "still cached"
    );
    let r = get_with(&service.base, &old).await;
    assert_refused(r, 401, Some("invalid_token"), &old).await;
}

/// The issuer puts new material under the kid in use, and the service is not due a
/// background refresh for an hour: the first token of the new material makes it refresh
/// once (gated like an unknown kid), and is accepted; forged signatures under a known kid
/// cost no more than that one refresh per window.
#[tokio::test]
async fn a_bad_signature_under_a_known_kid_takes_one_gated_refresh() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let (validator, service) = service_with(validator_config(&issuer, cognito())).await;
    let old = fetch_token(&issuer, BFF_ID, BFF_SECRET, None).await;
    assert_eq!(get_with(&service.base, &old).await.status(), StatusCode::OK);
    issuer.replace_current_key_material().unwrap();
    let before = issuer.stats().jwks_fetches;
    let new = fetch_token(&issuer, BFF_ID, BFF_SECRET, None).await;
    assert_eq!(get_with(&service.base, &new).await.status(), StatusCode::OK);
    assert_eq!(issuer.stats().jwks_fetches, before + 1, "one refresh");
    assert!(validator.validated(old.as_bytes()).is_none());
    assert_eq!(get_with(&service.base, &old).await.status(), 401);
    // Forged signatures under the known kid, inside the same 10 s window: no fetch.
    let forged: Vec<String> = (0..50)
        .map(|i| {
            let mut parts: Vec<String> = new.split('.').map(str::to_owned).collect();
            parts[2] = format!("{}{i}", &parts[2][..parts[2].len() - 3]);
            parts.join(".")
        })
        .collect();
    for token in &forged {
        assert_eq!(get_with(&service.base, token).await.status(), 401);
    }
    assert_eq!(issuer.stats().jwks_fetches, before + 1, "the gate held");
}

#[tokio::test]
async fn no_keys_means_one_shared_fetch_and_a_quick_503_with_retry_after() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let token = fetch_token(&issuer, BFF_ID, BFF_SECRET, None).await;
    issuer.set_jwks_available(false);
    let mut config = validator_config(&issuer, cognito());
    config.lazy = true;
    config.unknown_kid_min_interval = std::time::Duration::from_secs(2);
    let (validator, service) = service_with(config).await;
    eventually(
        std::time::Duration::from_secs(5),
        "the start attempt ran",
        || async { issuer.stats().jwks_fetches >= 1 },
    )
    .await;
    let before = issuer.stats().jwks_fetches;
    let base = service.base.clone();
    let answers = concurrently((0..50).map(|_| {
        let (base, token) = (base.clone(), token.clone());
        async move {
            let started = std::time::Instant::now();
            let r = get_with(&base, &token).await;
            (
                r.status(),
                r.headers().get("retry-after").cloned(),
                started.elapsed(),
            )
        }
    }))
    .await;
    let fetches = issuer.stats().jwks_fetches - before;
    println!("no keys: 50 requests -> {fetches} JWKS fetch(es)");
    assert!(fetches <= 1, "{fetches} JWKS fetches for 50 requests");
    for (status, retry_after, took) in &answers {
        assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE);
        let secs: u64 = retry_after
            .as_ref()
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=2).contains(&secs), "Retry-After {secs}");
        assert!(*took < std::time::Duration::from_secs(2), "{took:?}");
    }
    assert!(!validator.is_ready());
    // The JWKS comes back: the service recovers by itself within the backoff.
    issuer.set_jwks_available(true);
    eventually(
        std::time::Duration::from_secs(15),
        "keys loaded",
        || async { get_with(&service.base, &token).await.status() == StatusCode::OK },
    )
    .await;
}

#[tokio::test]
async fn lazy_start_defers_discovery_too() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    issuer.set_discovery_available(false);
    let mut config = validator_config(&issuer, cognito());
    config.lazy = true;
    config.unknown_kid_min_interval = std::time::Duration::from_millis(500);
    let (validator, service) = service_with(config).await;
    assert!(validator.issuer().is_none(), "not discovered yet");
    let token = fetch_token(&issuer, BFF_ID, BFF_SECRET, None).await;
    let r = get_with(&service.base, &token).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"));
    issuer.set_discovery_available(true);
    eventually(
        std::time::Duration::from_secs(15),
        "discovered and keys loaded",
        || async { get_with(&service.base, &token).await.status() == StatusCode::OK },
    )
    .await;
    assert_eq!(validator.issuer(), Some(issuer.issuer()));
}

#[tokio::test]
async fn a_withdrawn_key_evicts_the_tokens_it_signed_from_the_validated_cache() {
    let issuer = start_issuer(IssuerProfile::Cognito).await;
    let service = start_service(&issuer, cognito()).await;
    let old = fetch_token(&issuer, BFF_ID, BFF_SECRET, None).await;
    assert_eq!(get_with(&service.base, &old).await.status(), StatusCode::OK);
    assert_eq!(
        get_with(&service.base, &old).await.status(),
        StatusCode::OK,
        "served from the cache"
    );
    // The issuer withdraws the old key; a token with the new kid makes the service refresh.
    issuer.rotate_key().unwrap();
    issuer.drop_previous_keys();
    let new = fetch_token(&issuer, BFF_ID, BFF_SECRET, None).await;
    assert_eq!(get_with(&service.base, &new).await.status(), StatusCode::OK);
    // The old token was cached as valid, but its key is gone: refused.
    let r = get_with(&service.base, &old).await;
    assert_refused(r, 401, Some("invalid_token"), &old).await;
}
