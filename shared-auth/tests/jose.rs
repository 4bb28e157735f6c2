//! The JOSE core's parsing, seen through the validator: what a compact JWS must be before
//! anything in it is trusted. Each case is signed by the issuer's real key, so only the
//! parse stands between it and acceptance.
//!
//! - a JOSE header is a JSON object (RFC 7515 section 4): an array is refused;
//! - `crit` present is refused whatever its value, `null` included (absent and `null`
//!   are different things, and this validator understands no extension);
//! - the payload is UTF-8 and holds no unpaired surrogate anywhere, in claims the
//!   validator reads and in claims it does not (two parsers must never disagree on
//!   whether a token is well-formed), so `Principal::claims()` always has the claims;
//! - NumericDate (RFC 7519 section 2) may have a fraction; NaN-like, negative and
//!   out-of-range values are refused.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use mock_issuer::{ClientConfig, IssuerConfig, IssuerHandle, TokenProfile as Profile};
use serde_json::{Value, json};
use shared_auth::server::{
    JwtValidator, MetadataSource, TokenProfile, ValidationError, ValidatorConfig,
};

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

/// The issuer's header and claims of a valid token, as JSON text.
fn template(issuer: &IssuerHandle) -> (Value, Value) {
    issuer.token_template("svc", &["Api/read"])
}

/// A token of exactly these header and payload bytes, signed by the issuer's key.
fn signed(issuer: &IssuerHandle, header: &[u8], payload: &[u8]) -> String {
    issuer.sign_raw(header, payload).unwrap()
}

#[tokio::test]
async fn the_template_itself_is_accepted() {
    let (issuer, validator) = setup().await;
    let (header, claims) = template(&issuer);
    let token = signed(
        &issuer,
        header.to_string().as_bytes(),
        claims.to_string().as_bytes(),
    );
    validator.validate(&token).await.unwrap();
}

#[tokio::test]
async fn a_header_that_is_a_json_array_is_refused() {
    let (issuer, validator) = setup().await;
    let (header, claims) = template(&issuer);
    // serde's derive reads a struct from a sequence in field order: alg, kid, typ, crit.
    let array = json!([header["alg"], header["kid"], Value::Null, Value::Null]);
    let token = signed(
        &issuer,
        array.to_string().as_bytes(),
        claims.to_string().as_bytes(),
    );
    assert_eq!(
        validator.validate(&token).await.unwrap_err(),
        ValidationError::Malformed
    );
}

#[tokio::test]
async fn crit_null_is_refused_as_crit_is() {
    let (issuer, validator) = setup().await;
    let (mut header, claims) = template(&issuer);
    header["crit"] = Value::Null;
    let token = signed(
        &issuer,
        header.to_string().as_bytes(),
        claims.to_string().as_bytes(),
    );
    assert_eq!(
        validator.validate(&token).await.unwrap_err(),
        ValidationError::CriticalHeader
    );
}

/// The claims' JSON text with `"note":<raw>` added as the last member.
fn with_raw_claim(claims: &Value, raw: &[u8]) -> Vec<u8> {
    let text = claims.to_string();
    let mut out = text.as_bytes()[..text.len() - 1].to_vec();
    out.extend_from_slice(br#","note":"#);
    out.extend_from_slice(raw);
    out.push(b'}');
    out
}

#[tokio::test]
async fn invalid_utf8_in_an_unread_claim_is_refused() {
    let (issuer, validator) = setup().await;
    let (header, claims) = template(&issuer);
    let payload = with_raw_claim(&claims, b"\"a\xff\xfeb\"");
    assert!(std::str::from_utf8(&payload).is_err());
    let token = signed(&issuer, header.to_string().as_bytes(), &payload);
    assert_eq!(
        validator.validate(&token).await.unwrap_err(),
        ValidationError::Claims
    );
}

#[tokio::test]
async fn an_unpaired_surrogate_anywhere_is_refused() {
    let (issuer, validator) = setup().await;
    let (header, claims) = template(&issuer);
    for raw in [
        &br#""\ud800""#[..],
        br#""x\udc00y""#,
        br#"{"deep":["\ud800"]}"#,
        br#"{"\ud800":1}"#,
    ] {
        let payload = with_raw_claim(&claims, raw);
        let token = signed(&issuer, header.to_string().as_bytes(), &payload);
        assert_eq!(
            validator.validate(&token).await.unwrap_err(),
            ValidationError::Claims,
            "{}",
            String::from_utf8_lossy(raw)
        );
    }
    // A surrogate pair is one character: fine.
    let payload = with_raw_claim(&claims, br#""\ud83d\ude00""#);
    let token = signed(&issuer, header.to_string().as_bytes(), &payload);
    let principal = validator.validate(&token).await.unwrap();
    assert_eq!(principal.claim("note"), Some(&json!("\u{1f600}")));
}

#[tokio::test]
async fn a_repeated_name_in_a_nested_object_is_refused() {
    let (issuer, validator) = setup().await;
    let (header, claims) = template(&issuer);
    let payload = with_raw_claim(&claims, br#"{"role":"user","role":"admin"}"#);
    let token = signed(&issuer, header.to_string().as_bytes(), &payload);
    assert_eq!(
        validator.validate(&token).await.unwrap_err(),
        ValidationError::Claims
    );
}

#[tokio::test]
async fn an_accepted_token_always_has_its_claims() {
    let (issuer, validator) = setup().await;
    let (header, claims) = template(&issuer);
    let payload = with_raw_claim(&claims, br#"{"tenant":"a\u00e9\n","tags":[1,2.5,null]}"#);
    let token = signed(&issuer, header.to_string().as_bytes(), &payload);
    let principal = validator.validate(&token).await.unwrap();
    assert_eq!(
        principal.claims().len(),
        claims.as_object().unwrap().len() + 1
    );
    assert_eq!(
        principal.claim("note").unwrap()["tenant"],
        json!("a\u{e9}\n")
    );
}

#[tokio::test]
async fn numeric_dates_may_have_a_fraction() {
    let (issuer, validator) = setup().await;
    let (header, mut claims) = template(&issuer);
    let exp = claims["exp"].as_u64().unwrap() as f64 + 0.5;
    let iat = claims["iat"].as_u64().unwrap() as f64 - 0.25;
    claims["exp"] = json!(exp);
    claims["iat"] = json!(iat);
    claims["nbf"] = json!(iat);
    let token = signed(
        &issuer,
        header.to_string().as_bytes(),
        claims.to_string().as_bytes(),
    );
    let principal = validator.validate(&token).await.unwrap();
    assert_eq!(principal.expires_at(), exp as u64);

    // Expired by a fraction more than the leeway (60 s): refused.
    claims["exp"] = json!(iat - 60.5);
    let token = signed(
        &issuer,
        header.to_string().as_bytes(),
        claims.to_string().as_bytes(),
    );
    assert_eq!(
        validator.validate(&token).await.unwrap_err(),
        ValidationError::Expired
    );
}

#[tokio::test]
async fn numeric_dates_out_of_range_are_refused() {
    let (issuer, validator) = setup().await;
    let (header, claims) = template(&issuer);
    for (name, raw) in [
        ("exp", &b"-1"[..]),
        ("exp", b"1e400"),
        ("exp", b"1e300"),
        ("exp", b"18446744073709551616"),
        ("exp", b"\"4102444800\""),
        ("nbf", b"-0.5"),
        ("iat", b"1e20"),
        ("exp", b"true"),
    ] {
        let mut claims = claims.clone();
        claims.as_object_mut().unwrap().remove(name);
        let text = claims.to_string();
        let mut payload = text.as_bytes()[..text.len() - 1].to_vec();
        payload.extend_from_slice(format!(",\"{name}\":").as_bytes());
        payload.extend_from_slice(raw);
        payload.push(b'}');
        let token = signed(&issuer, header.to_string().as_bytes(), &payload);
        assert_eq!(
            validator.validate(&token).await.unwrap_err(),
            ValidationError::Claims,
            "{name}: {}",
            String::from_utf8_lossy(raw)
        );
    }
}

/// DPoP proofs go through the same core: the auth layer, a DPoP-bound token, and proofs
/// whose header is changed one way at a time.
mod dpop {
    use super::*;
    use axum::body::Body;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use http::{Request, StatusCode};
    use mock_issuer::keys::SigningKey;
    use shared_auth::server::{DpopConfig, JwtAuthLayer};
    use tower::{Layer, ServiceExt};

    const HTU: &str = "http://api.test/x";

    fn thumbprint(jwk: &Value) -> String {
        let canonical = json!({"crv": jwk["crv"], "kty": "EC", "x": jwk["x"], "y": jwk["y"]});
        B64.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            canonical.to_string().as_bytes(),
        ))
    }

    fn public_jwk(key: &SigningKey) -> Value {
        let jwk = key.public_jwk();
        json!({"kty": "EC", "crv": jwk["crv"], "x": jwk["x"], "y": jwk["y"]})
    }

    async fn setup() -> (IssuerHandle, JwtValidator, SigningKey, String) {
        let (issuer, _) = super::setup().await;
        let mut config = ValidatorConfig::new(
            MetadataSource::Authority(issuer.issuer().to_owned()),
            TokenProfile::Cognito {
                allowed_client_ids: Vec::new(),
            },
        );
        let mut dpop = DpopConfig::default();
        dpop.mode = shared_auth::server::DpopMode::Allowed;
        dpop.public_base_url = Some("http://api.test".into());
        config.dpop = dpop;
        let validator = JwtValidator::new(config).await.unwrap();
        let key = SigningKey::generate(mock_issuer::Algorithm::ES256).unwrap();
        let (header, mut claims) = template(&issuer);
        claims["cnf"] = json!({"jkt": thumbprint(&public_jwk(&key))});
        let token = issuer.sign(&header, &claims).unwrap();
        (issuer, validator, key, token)
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn proof(key: &SigningKey, token: &str, jti: &str, header: &[u8]) -> String {
        let ath = B64.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            token.as_bytes(),
        ));
        let claims = json!({"jti": jti, "htm": "GET", "htu": HTU, "iat": now(), "ath": ath});
        key.sign_raw(header, claims.to_string().as_bytes()).unwrap()
    }

    async fn status(validator: &JwtValidator, token: &str, proof: &str) -> StatusCode {
        let inner = tower::service_fn(|_: Request<Body>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(Body::empty()))
        });
        let request = Request::get(HTU)
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
            .body(Body::empty())
            .unwrap();
        JwtAuthLayer::new(validator.clone())
            .layer(inner)
            .oneshot(request)
            .await
            .unwrap()
            .status()
    }

    #[tokio::test]
    async fn a_well_formed_proof_passes() {
        let (_issuer, validator, key, token) = setup().await;
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": public_jwk(&key)});
        let good = proof(&key, &token, "good", header.to_string().as_bytes());
        assert_eq!(status(&validator, &token, &good).await, StatusCode::OK);
    }

    #[tokio::test]
    async fn a_proof_header_that_is_a_json_array_is_refused() {
        let (_issuer, validator, key, token) = setup().await;
        // The derive's field order of the old proof header: typ, alg, jwk, crit.
        let array = json!(["dpop+jwt", "ES256", public_jwk(&key), null]);
        let bad = proof(&key, &token, "array", array.to_string().as_bytes());
        assert_eq!(
            status(&validator, &token, &bad).await,
            StatusCode::UNAUTHORIZED
        );
    }

    #[tokio::test]
    async fn a_proof_with_crit_null_is_refused() {
        let (_issuer, validator, key, token) = setup().await;
        let header =
            json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": public_jwk(&key), "crit": null});
        let bad = proof(&key, &token, "crit", header.to_string().as_bytes());
        assert_eq!(
            status(&validator, &token, &bad).await,
            StatusCode::UNAUTHORIZED
        );
    }

    #[tokio::test]
    async fn a_proof_whose_jwk_is_an_array_is_refused() {
        let (_issuer, validator, key, token) = setup().await;
        let jwk = public_jwk(&key);
        // The derive's field order of the old proof jwk: kty, crv, x, y, ...
        let array = json!([jwk["kty"], jwk["crv"], jwk["x"], jwk["y"]]);
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": array});
        let bad = proof(&key, &token, "jwk-array", header.to_string().as_bytes());
        assert_eq!(
            status(&validator, &token, &bad).await,
            StatusCode::UNAUTHORIZED
        );
    }

    #[tokio::test]
    async fn a_proof_with_a_lone_surrogate_in_an_unread_claim_is_refused() {
        let (_issuer, validator, key, token) = setup().await;
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": public_jwk(&key)});
        let ath = B64.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            token.as_bytes(),
        ));
        let claims = format!(
            r#"{{"jti":"s","htm":"GET","htu":"{HTU}","iat":{},"ath":"{ath}","x":"\ud800"}}"#,
            now()
        );
        let bad = key
            .sign_raw(header.to_string().as_bytes(), claims.as_bytes())
            .unwrap();
        assert_eq!(
            status(&validator, &token, &bad).await,
            StatusCode::UNAUTHORIZED
        );
    }
}
